#!/usr/bin/env bash
# Fuzz the REST API against its own OpenAPI document with schemathesis: every check, every
# operation, about 100 generated cases per operation (1,500 to 2,200 requests), against the
# service binary started here in embedded mode (no PostgreSQL, Redis or Kafka) on a free loopback
# port, with an admin token. Exits non-zero when schemathesis reports any failure or error.
#
# schemathesis is installed once from PyPI into a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/beryl-core-api/tools; its settings are scripts/schemathesis.toml.
# It runs in <target dir>/schemathesis, where it keeps the failures it found (`st replay <id>`
# from there replays one, against a service started by hand).
#
#   SCHEMATHESIS_MAX_EXAMPLES  cases per operation and phase (default 100)
#   SCHEMATHESIS_SEED          replay a run (default: a new seed, printed in the summary)
#   SCHEMATHESIS_WORKERS       concurrent workers (default 2; 1 under an interpreter with
#                              python/cpython#106905)
#   PYTHON                     interpreter for the virtualenv (default: the newest python3.1x
#                              found, else Debian's python3 and python3-venv, installed as root)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VERSION=4.32.5
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/beryl-core-api/tools"
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-100}
WORKERS=${SCHEMATHESIS_WORKERS:-2}

say() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

apt_install() {
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		say "needs Python 3.10 or later with venv (install python3-venv, or set PYTHON)"
		exit 1
	fi
	say "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

usable() {
	command -v "$1" >/dev/null 2>&1 &&
		"$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

find_python() {
	if [ -n "${PYTHON:-}" ]; then
		echo "$PYTHON"
		return
	fi
	local candidate
	for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
		if usable "$candidate"; then
			echo "$candidate"
			return
		fi
	done
	apt_install python3 python3-venv
	if usable python3; then
		echo python3
	else
		say "python3 with venv is still not usable"
		exit 1
	fi
}

install() {
	local python version
	python=$(find_python)
	version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	VENV="$TOOLS/schemathesis-$VERSION-py$version"
	# CPython before 3.11.8 (and 3.12.0) can raise a spurious "AST constructor recursion depth
	# mismatch" when threads parse code at once (python/cpython#106905); schemathesis then stops
	# with an error that is no finding. One worker there.
	if "$python" -c 'import sys; v = sys.version_info[:3]; sys.exit(not ((3, 11) <= v < (3, 11, 8) or v == (3, 12, 0)))'; then
		WORKERS=${SCHEMATHESIS_WORKERS:-1}
	fi
	if "$VENV/bin/st" --version 2>/dev/null | grep -qF "$VERSION"; then
		return
	fi
	say "installing schemathesis $VERSION into $VENV"
	rm -rf "$VENV"
	mkdir -p "$TOOLS"
	"$python" -m venv "$VENV"
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
}

install

cargo build --locked --quiet --bin beryl-core-api
target_dir=$(cargo metadata --format-version 1 --no-deps |
	"$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
WORK=$(mktemp -d "${TMPDIR:-/tmp}/beryl-schemathesis.XXXXXX")
# A copy of its own: a target directory shared with other checkouts may be rebuilt meanwhile.
cp "$target_dir/debug/beryl-core-api" "$WORK/beryl-core-api"

SERVICE_PID=""
stop() {
	if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
		kill -TERM "$SERVICE_PID" 2>/dev/null || true
		for _ in $(seq 1 60); do
			kill -0 "$SERVICE_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$SERVICE_PID" 2>/dev/null || true
		wait "$SERVICE_PID" 2>/dev/null || true
	fi
	SERVICE_PID=""
}
cleanup() {
	stop
	rm -rf "$WORK"
}
trap cleanup EXIT

# The service as tests run it, from a clean environment: embedded stores, a key of this run's
# own, fault injection off. Rate limits are off: the fuzzer sends every request as one subject
# from one address, and would otherwise mostly test the limiter (429 stays documented).
KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
service_env=(
	env -i "PATH=$PATH" "HOME=${HOME:-/tmp}"
	ENVIRONMENT=test "CONFIG_DIR=$ROOT/config" "JWT_SECRET_KEY=$KEY"
	LOG_FORMAT=json "LOG_LEVEL=warn,beryl_core_api::startup=info"
	HOST=127.0.0.1 PORT=0 BERYL__RATE_LIMIT__ENABLED=false
)
"${service_env[@]}" "$WORK/beryl-core-api" serve >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!

address=""
for _ in $(seq 1 100); do
	address=$(sed -n 's/.*"message":"listening","address":"\([0-9.:]*\)".*/\1/p' "$WORK/service.log" | head -n 1)
	[ -n "$address" ] && break
	kill -0 "$SERVICE_PID" 2>/dev/null || break
	sleep 0.2
done
if [ -z "$address" ]; then
	say "the service did not start:"
	cat "$WORK/service.log" >&2
	exit 1
fi
BASE="http://$address"
for _ in $(seq 1 100); do
	"$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
		"$BASE/health/ready" 2>/dev/null && break
	sleep 0.2
done

TOKEN=$("${service_env[@]}" "$WORK/beryl-core-api" token mint --subject schemathesis --scope admin --ttl-secs 3600)

say "fuzzing $BASE with schemathesis $VERSION, workers: $WORKERS"
seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
status=0
mkdir -p "$target_dir/schemathesis"
cd "$target_dir/schemathesis"
"$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" run "$BASE/api/openapi.json" \
	--url "$BASE" \
	--checks all \
	--max-examples "$MAX_EXAMPLES" \
	--workers "$WORKERS" \
	--header "Authorization: Bearer $TOKEN" \
	--generation-database none \
	${seed[@]+"${seed[@]}"} || status=$?

if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
	say "the service died during the run:"
	tail -n 50 "$WORK/service.log" >&2
	exit 1
fi
if [ "$status" -ne 0 ]; then
	say "schemathesis reported failures (exit $status); the service's warnings and errors:"
	tail -n 50 "$WORK/service.log" >&2
	exit "$status"
fi
