#!/usr/bin/env bash
# Builds the real Dockerfile without a Docker engine and without pulling from an image registry,
# runs the image and checks its health: podman with vfs storage, and the base image the Dockerfile
# names (docker.io/library/rust:1.95-bookworm) made here from Debian packages with debootstrap
# and the machine's Rust toolchain.
#
#   scripts/image-build.sh              base image (once), build, run, health check, size
#   scripts/image-build.sh --base-only  only make the base image
#   scripts/image-build.sh --clean      remove the work directory (images, storage)
#
# Slow (a release build of the service on top of cargo-chef) and large (vfs storage copies
# every layer: about 11 GB). Not part of scripts/check-deploy.sh.
#
# Environment: BERYL_IMAGE_WORK (default /var/tmp/beryl-image-build), IMAGE (default
# beryl-core-api:local), DEBIAN_MIRROR (default: the first deb.debian.org-style URI of apt's
# sources), RUST_TOOLCHAIN_DIR (default: the active rustup toolchain), DATABASE_URL and REDIS_URL
# for the run (default: the local PostgreSQL and Redis of scripts/services.sh; empty: embedded).
# Root is required (debootstrap, podman storage).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK="${BERYL_IMAGE_WORK:-/var/tmp/beryl-image-build}"
IMAGE="${IMAGE:-beryl-core-api:local}"
RUST_IMAGE=docker.io/library/rust:1.95-bookworm
SUITE=bookworm
MAX_IMAGE_MB=40
CONTAINER=beryl-image-check
DATABASE_URL="${DATABASE_URL-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${REDIS_URL-redis://127.0.0.1:6379/14}"

log() { printf '==> %s\n' "$*"; }
die() {
	printf 'image-build: error: %s\n' "$*" >&2
	exit 1
}

podman_() {
	CONTAINERS_CONF="${WORK}/containers.conf" CONTAINERS_STORAGE_CONF="${WORK}/storage.conf" podman "$@"
}

# Podman's configuration, in the work directory only: vfs storage there; runc with cgroupfs
# (crun refuses hybrid cgroup hierarchies); resource limits below this shell's, since a sandbox
# without CAP_SYS_RESOURCE lets the runtime lower limits but not raise them, nor even set them to
# their current hard values.
write_podman_config() {
	local nofile nproc=4096
	nofile=$(ulimit -Hn)
	[[ ${nofile} == unlimited ]] && nofile=1048576
	nofile=$((nofile / 2))
	cat >"${WORK}/storage.conf" <<-EOF
		[storage]
		driver = "vfs"
		graphroot = "${WORK}/storage"
		runroot = "${WORK}/run"
	EOF
	cat >"${WORK}/containers.conf" <<-EOF
		[containers]
		default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
	EOF
}

install_tools() {
	local missing=() tool
	for tool in podman debootstrap runc; do
		command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
	done
	if ((${#missing[@]} > 0)); then
		log "apt-get install ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		echo "${DEBIAN_MIRROR}"
		return
	fi
	local uri
	uri=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -oE 'https?://[^ ]+' | head -n1) || true
	echo "${uri:-http://deb.debian.org/debian}"
}

rust_toolchain_dir() {
	if [[ -n ${RUST_TOOLCHAIN_DIR:-} ]]; then
		echo "${RUST_TOOLCHAIN_DIR}"
		return
	fi
	local sysroot
	sysroot=$(rustc --print sysroot) || die "rustc not found; set RUST_TOOLCHAIN_DIR"
	readlink -f "${sysroot}"
}

# docker.io/library/rust:1.95-bookworm, locally: Debian bookworm (minbase) with the Rust
# toolchain of this machine at /usr/local/rust and CARGO_HOME=/usr/local/cargo, like the
# official image's layout.
make_rust_image() {
	if podman_ image exists "${RUST_IMAGE}"; then
		log "base image ${RUST_IMAGE} already present"
		return
	fi
	local rootfs="${WORK}/rootfs-${SUITE}" toolchain version
	toolchain=$(rust_toolchain_dir)
	version=$("${toolchain}/bin/rustc" --version)
	[[ ${version} == "rustc 1.95."* ]] || die "the toolchain at ${toolchain} is ${version}, the Dockerfile expects 1.95"
	if [[ ! -f "${rootfs}/.complete" ]]; then
		log "debootstrap ${SUITE} (minbase) from $(debian_mirror)"
		rm -rf "${rootfs}"
		debootstrap --variant=minbase --include=ca-certificates,libc6-dev,gcc "${SUITE}" "${rootfs}" "$(debian_mirror)" \
			>"${WORK}/debootstrap.log" 2>&1 || die "debootstrap failed: see ${WORK}/debootstrap.log"
		rm -rf "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/lib/apt/lists/"*
		touch "${rootfs}/.complete"
	fi
	log "adding ${version} from ${toolchain}"
	mkdir -p "${rootfs}/usr/local/rust" "${rootfs}/usr/local/cargo/bin"
	tar -C "${toolchain}" --exclude=./share/doc --exclude=./lib/rustlib/src --exclude='./lib/rustlib/*/analysis' -cf - . |
		tar -C "${rootfs}/usr/local/rust" -xf -
	log "importing ${RUST_IMAGE}"
	tar --exclude=./.complete -C "${rootfs}" -cf - . | podman_ import \
		--change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV CARGO_HOME=/usr/local/cargo' \
		--change 'ENV RUST_VERSION=1.95.0' \
		--change 'CMD ["bash"]' \
		- "${RUST_IMAGE}" >/dev/null
	podman_ run --rm --network host "${RUST_IMAGE}" cargo --version
}

build_image() {
	log "podman build ${IMAGE} (network: host, base images local only)"
	local revision created
	revision=$(git -C "${ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)
	created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	# The build's RUN steps trust what this machine trusts: its network may inspect TLS with a CA
	# of its own, which cargo and apt inside the build must accept to reach the registries.
	podman_ build --network host --pull=never --layers \
		--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
		--build-arg "REVISION=${revision}" --build-arg "CREATED=${created}" \
		--build-arg "VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "${ROOT}/Cargo.toml" | head -n1)" \
		-t "${IMAGE}" -f "${ROOT}/Dockerfile" "${ROOT}"
}

report_size() {
	local bytes mb
	bytes=$(podman_ image inspect --format '{{.Size}}' "${IMAGE}")
	mb=$((bytes / 1000 / 1000))
	log "image ${IMAGE}: ${bytes} bytes (${mb} MB); target < ${MAX_IMAGE_MB} MB"
	# shellcheck disable=SC2016 # a Go template, not shell
	podman_ image inspect --format '{{range $k, $v := .Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}' "${IMAGE}" | sed 's/^/    /'
	podman_ image inspect --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}}' "${IMAGE}" | sed 's/^/    /'
	((mb < MAX_IMAGE_MB)) || die "image is ${mb} MB, over the ${MAX_IMAGE_MB} MB target"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

run_and_check() {
	local port status path code
	port=$(free_port)
	podman_ rm -f "${CONTAINER}" >/dev/null 2>&1 || true
	log "running ${IMAGE} read-only, as in the cluster (non-root, no capabilities, tmpfs /tmp), on 127.0.0.1:${port}"
	podman_ run -d --name "${CONTAINER}" --network host --read-only --tmpfs /tmp \
		--tmpfs /var/log/beryl/audit:rw,mode=1777 \
		--cap-drop ALL --security-opt no-new-privileges \
		-e ENVIRONMENT=development -e HOST=127.0.0.1 -e PORT="${port}" -e LOG_FORMAT=json \
		-e AUDIT_ENABLED=true -e AUDIT_LOG_FILE=/var/log/beryl/audit/image-check.log \
		-e DATABASE_URL="${DATABASE_URL}" -e REDIS_URL="${REDIS_URL}" \
		"${IMAGE}" >/dev/null
	status=1
	for _ in $(seq 1 60); do
		if curl -fsS -o /dev/null "http://127.0.0.1:${port}/health/startup" 2>/dev/null; then
			status=0
			break
		fi
		sleep 1
	done
	if ((status != 0)); then
		podman_ logs "${CONTAINER}" | tail -n 30
		die "the container never answered /health/startup"
	fi
	for path in /health/startup /health/live /health/ready /metrics; do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port}${path}")
		printf '    GET %-16s %s\n' "${path}" "${code}"
		[[ ${code} == 200 ]] || status=1
	done
	printf '    GET /health          %s\n' "$(curl -s "http://127.0.0.1:${port}/health" | head -c 400)"
	printf '    user in the container: %s\n' "$(podman_ top "${CONTAINER}" user huser args 2>/dev/null | tail -n +2 | head -n1)"
	log "stopping (SIGTERM, 30 s grace as in the pods)"
	podman_ stop -t 30 "${CONTAINER}" >/dev/null
	code=$(podman_ inspect --format '{{.State.ExitCode}}' "${CONTAINER}")
	printf '    exit status after SIGTERM: %s\n' "${code}"
	podman_ rm "${CONTAINER}" >/dev/null
	[[ ${code} == 0 ]] || status=1
	((status == 0)) || die "the container is not healthy"
	log "container healthy"
}

main() {
	case "${1:-}" in
	--clean)
		rm -rf "${WORK}"
		exit 0
		;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	--base-only | "") ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	[[ ${EUID} -eq 0 ]] || die "run as root (debootstrap and podman's storage)"
	mkdir -p "${WORK}"
	install_tools
	write_podman_config
	make_rust_image
	[[ ${1:-} == --base-only ]] && exit 0
	[[ -d "${ROOT}/config" ]] || die "config/ is missing: the image carries it as /app/config"
	build_image
	report_size
	run_and_check
}

main "$@"
