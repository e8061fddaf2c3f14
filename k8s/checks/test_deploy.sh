#!/usr/bin/env bash
# deploy.sh against a cluster played by fake-kubectl: the order of application, the waits, the
# health checks, the automatic rollback and the refusals, one scenario at a time.
#
#   k8s/checks/test_deploy.sh REAL_KUBECTL
#
# A small HTTP server on a free loopback port answers /health/ready for the service being
# port-forwarded, with the status the scenario sets. Exits non-zero when a scenario fails.
#
# The expectations are single-quoted on purpose: expect() evaluates them after each run.
# shellcheck disable=SC2016,SC2034
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "${HERE}/../.." && pwd)
REAL_KUBECTL=${1:?usage: test_deploy.sh REAL_KUBECTL}
WORK=$(mktemp -d)
SERVER_PID=""
PASSED=0
FAILED=0

cleanup() {
	if [[ -n ${SERVER_PID} ]]; then
		kill "${SERVER_PID}" 2>/dev/null || true
		wait "${SERVER_PID}" 2>/dev/null || true
	fi
	rm -rf "${WORK}"
}
trap cleanup EXIT

# Health server: GET /health/ready answers FAKE_STATE/health-<service being forwarded> (or 200).
start_health_server() {
	python3 - "${WORK}" >"${WORK}/server.log" 2>&1 <<-'PY' &
		import http.server, pathlib, socketserver, sys
		work = pathlib.Path(sys.argv[1])
		class Handler(http.server.BaseHTTPRequestHandler):
		    def do_GET(self):
		        state = pathlib.Path((work / "state-dir").read_text().strip())
		        service = (state / "current").read_text().strip() if (state / "current").exists() else "?"
		        health = state / f"health-{service}"
		        status = int(health.read_text()) if health.exists() else 200
		        self.send_response(status if self.path == "/health/ready" else 404)
		        self.end_headers()
		        self.wfile.write(b'{"status":"ok"}' if status == 200 else b'{"status":"down"}')
		    def log_message(self, *args):
		        pass
		with socketserver.TCPServer(("127.0.0.1", 0), Handler) as server:
		    (work / "port").write_text(str(server.server_address[1]))
		    server.serve_forever()
	PY
	SERVER_PID=$!
	for _ in $(seq 1 50); do
		[[ -s "${WORK}/port" ]] && return 0
		sleep 0.1
	done
	echo "test_deploy: health server did not start: $(cat "${WORK}/server.log")" >&2
	exit 1
}

# new_state: a cluster where the three deployments exist at revision 4.
new_state() {
	STATE="${WORK}/state-$1"
	mkdir -p "${STATE}"
	printf '%s' "${STATE}" >"${WORK}/state-dir"
	cat "${WORK}/port" >"${STATE}/health-port"
	local deployment
	for deployment in beryl-core-api graphql-gateway event-bus; do
		echo 4 >"${STATE}/rev-${deployment}"
	done
}

# run_deploy ARGS...: deploy.sh with the fake kubectl; sets STATUS and OUTPUT.
run_deploy() {
	set +e
	OUTPUT=$(FAKE_STATE="${STATE}" REAL_KUBECTL="${REAL_KUBECTL}" KUBECTL="${HERE}/fake-kubectl" \
		HEALTH_TIMEOUT=3 ROLLOUT_TIMEOUT=5s ENVIRONMENT=production IMAGE_TAG=2.0.0 \
		"${ROOT}/deploy.sh" "$@" 2>&1)
	STATUS=$?
	set -e
}

expect() {
	local name=$1 condition=$2
	if eval "${condition}"; then
		PASSED=$((PASSED + 1))
		printf '  ok    %s\n' "${name}"
	else
		FAILED=$((FAILED + 1))
		printf '  FAIL  %s (%s)\n' "${name}" "${condition}"
		printf '%s\n' "${OUTPUT}" | sed 's/^/        | /' | tail -n 25
	fi
}

calls() { cat "${STATE}/calls"; }
# True when a port-forward started by deploy.sh still runs.
port_forward_alive() {
	local pid
	while read -r pid; do
		kill -0 "${pid}" 2>/dev/null && return 0
	done <"${STATE}/port-forward-pids"
	return 1
}
# Line number of the first call matching a pattern (0 when absent).
first_call() { grep -n -m1 -- "$1" "${STATE}/calls" | cut -d: -f1 || echo 0; }

start_health_server

echo "scenario: successful deploy"
new_state ok
run_deploy
expect "exits 0" '[[ ${STATUS} -eq 0 ]]'
expect "applies in the document's order" '(( $(first_call "applied Namespace") < $(first_call "applied ConfigMap") && $(first_call "applied ConfigMap") < $(first_call "get secret beryl-secrets") && $(first_call "get secret beryl-secrets") < $(first_call "applied Deployment") && $(first_call "applied Deployment") < $(first_call "applied Service$") && $(first_call "applied Service$") < $(first_call "applied Ingress") ))'
expect "annotates the pod templates with the configuration hash" 'calls | grep -q "^deployments carry the config hash"'
expect "never applies the Secret (its values live in the cluster only)" '! calls | grep -q "^applied Secret"'
expect "applies server-side" 'calls | grep -q "^apply --server-side --field-manager=beryl-deploy"'
expect "waits for the three rollouts" '[[ $(calls | grep -c "^rollout status") -eq 3 ]]'
expect "checks /health/ready of the three services" '[[ $(calls | grep -c "^port-forward service/") -eq 3 ]]'
expect "does not roll back" '! calls | grep -q "rollout undo"'
expect "leaves no port-forward running" '! port_forward_alive'

echo "scenario: a rollout does not complete"
new_state rollout
echo graphql-gateway >"${STATE}/rollout-fail"
run_deploy
expect "exits 1" '[[ ${STATUS} -eq 1 ]]'
expect "undoes the three new revisions" '[[ $(calls | grep -c "^rollout undo deployment/.* --to-revision=4") -eq 3 ]]'
expect "says the previous revisions were restored" 'grep -q "previous revisions were restored" <<<"${OUTPUT}"'

echo "scenario: health check fails after the rollout"
new_state health
echo 503 >"${STATE}/health-event-bus"
run_deploy
expect "exits 1" '[[ ${STATUS} -eq 1 ]]'
expect "rolls back" '[[ $(calls | grep -c "^rollout undo") -eq 3 ]]'
expect "reports the failing service" 'grep -q "service/event-bus: /health/ready answered 503" <<<"${OUTPUT}"'

echo "scenario: first deploy fails (nothing to roll back to)"
new_state first
rm -f "${STATE}"/rev-*
echo beryl-core-api >"${STATE}/rollout-fail"
run_deploy
expect "exits 1" '[[ ${STATUS} -eq 1 ]]'
expect "explains there is no previous revision" 'grep -q "did not exist before this run" <<<"${OUTPUT}"'

echo "scenario: cluster older than 1.24"
new_state old
echo v1.23.17 >"${STATE}/server-version"
run_deploy
expect "exits 1" '[[ ${STATUS} -eq 1 ]]'
expect "applies nothing" '! calls | grep -q "^apply"'
expect "names the version" 'grep -q "Kubernetes server version 1.23 is too old" <<<"${OUTPUT}"'

echo "scenario: KEDA not installed"
new_state crd
echo scaledobjects.keda.sh >"${STATE}/missing-crd"
run_deploy
expect "exits 1 before applying" '[[ ${STATUS} -eq 1 ]] && ! calls | grep -q "^apply"'

echo "scenario: secret without its values"
new_state secret
echo database-password >"${STATE}/missing-secret-key"
run_deploy
expect "exits 1" '[[ ${STATUS} -eq 1 ]]'
expect "stops before the deployments" '! calls | grep -q "applied Deployment"'
expect "points at create-secrets.sh" 'grep -q "create-secrets.sh" <<<"${OUTPUT}"'

echo "scenario: --rollback"
new_state rollback
run_deploy --rollback
expect "exits 0" '[[ ${STATUS} -eq 0 ]]'
expect "undoes the three deployments, waits and checks health" '[[ $(calls | grep -c "^rollout undo") -eq 3 && $(calls | grep -c "^rollout status") -eq 3 && $(calls | grep -c "^port-forward") -eq 3 ]]'

echo "scenario: --dry-run"
new_state dry
# A tools directory holding only the validators (those of the real one), and python3 and npm that
# refuse to install anything: a dry run that wants a linter, checkov or a package fails.
TOOLS_REAL=${BERYL_TOOLS_DIR:-${HOME}/.cache/beryl-tools}
mkdir -p "${WORK}/validators" "${WORK}/no-install"
for group in venv node; do
	ln -sfn "${TOOLS_REAL}/${group}" "${WORK}/validators/${group}"
	cp "${TOOLS_REAL}/.stamp-${group}" "${WORK}/validators/"
done
printf '%s\n' '#!/usr/bin/env bash' \
	'if [[ " $* " == *" -m venv "* ]]; then echo "refused: python3 $*" >&2; exit 1; fi' \
	'exec /usr/bin/python3 "$@"' >"${WORK}/no-install/python3"
printf '%s\n' '#!/bin/sh' 'echo "refused: npm $*" >&2' 'exit 1' >"${WORK}/no-install/npm"
chmod +x "${WORK}/no-install/python3" "${WORK}/no-install/npm"
PATH="${WORK}/no-install:${PATH}" BERYL_TOOLS_DIR="${WORK}/validators" run_deploy --dry-run
expect "exits 0" '[[ ${STATUS} -eq 0 ]]'
expect "touches no cluster (only client version and kustomize)" '! calls | grep -vqE "^(version --client|kustomize )"'
expect "installs nothing beyond the validators (no linters, no checkov)" '! grep -q "refused:" <<<"${OUTPUT}" && [[ ! -e "${WORK}/validators/checkov" && ! -e "${WORK}/validators/linters" ]]'

echo "scenario: --verify"
new_state verify
run_deploy --verify
expect "exits 0 and changes nothing" '[[ ${STATUS} -eq 0 ]] && ! calls | grep -qE "^(apply|rollout undo)"'

if ((FAILED > 0)); then
	echo "test_deploy: ${FAILED} of $((PASSED + FAILED)) expectations failed" >&2
	exit 1
fi
echo "test_deploy: all ${PASSED} expectations met"
