#!/usr/bin/env bash
# Checks of everything that deploys and observes beryl-core-api, offline: the Dockerfile, the
# Kubernetes manifests (plain folders and rendered overlays), deploy.sh, the CI workflows, the
# alert rules and the dashboards, and, against the real service and a real Prometheus server, the
# probes, the configuration, the alerts and the metric names.
#
#   scripts/check-deploy.sh              every check
#   scripts/check-deploy.sh --no-live    everything but the live check (no service binary needed)
#
# Tools are installed by scripts/install-deploy-tools.sh into BERYL_TOOLS_DIR (default
# ~/.cache/beryl-tools). The live check uses BERYL_BIN, or builds beryl-core-api into the target dir
# with cargo, PostgreSQL and Redis (scripts/services.sh starts them), and starts its own
# Kafka-compatible broker (tansu, from BERYL_TANSU_BIN or scripts/kafka.sh, which builds it once).
# Runs every check, prints a summary, exits 1 when any failed.
set -Euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}" || exit 1
LIVE=true
case "${1:-}" in
--no-live) LIVE=false ;;
"") ;;
-h | --help)
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
	exit 0
	;;
*)
	echo "unknown argument: $1 (see --help)" >&2
	exit 2
	;;
esac

WORK=$(mktemp -d)
trap 'rm -rf "${WORK}"' EXIT
RESULTS=()
FAILURES=0
STARTED=${SECONDS}

# run NAME DESCRIPTION COMMAND...: runs a check, keeps its output, records pass/fail and time.
run() {
	local name=$1 description=$2 start status
	shift 2
	start=${SECONDS}
	printf '\n--- %s: %s\n' "${name}" "${description}"
	"$@" >"${WORK}/${name}.log" 2>&1
	status=$?
	if ((status == 0)); then
		tail -n 4 "${WORK}/${name}.log"
		RESULTS+=("$(printf 'PASS  %-18s %4ss  %s' "${name}" "$((SECONDS - start))" "${description}")")
	else
		tail -n 40 "${WORK}/${name}.log"
		RESULTS+=("$(printf 'FAIL  %-18s %4ss  %s' "${name}" "$((SECONDS - start))" "${description}")")
		FAILURES=$((FAILURES + 1))
	fi
}

printf '==> installing tools (scripts/install-deploy-tools.sh)\n'
if ! TOOLS=$(scripts/install-deploy-tools.sh); then
	echo "check-deploy: cannot install the tools" >&2
	exit 1
fi
export PATH="${TOOLS}/venv/bin:${TOOLS}/linters/bin:${TOOLS}/checkov/bin:${PATH}"
export NODE_PATH="${TOOLS}/node/node_modules"
export PYTHONDONTWRITEBYTECODE=1
PY="${TOOLS}/venv/bin/python"
KUBECTL="${TOOLS}/venv/bin/kubectl"

SHELL_SCRIPTS=(deploy.sh scripts/*.sh k8s/secrets/create-secrets.sh k8s/checks/test_deploy.sh k8s/checks/fake-kubectl)
# The folders of the infrastructure document, applied with `kubectl apply -f <folder>`, and the
# files beside them.
PLAIN_DIRS=(k8s/namespaces k8s/configmaps k8s/secrets k8s/deployments k8s/services k8s/ingress)
PLAIN_FILES=(k8s/network-policies.yaml k8s/pdb.yaml k8s/hpa.yaml k8s/certificates.yaml
	k8s/monitoring-config.yaml k8s/pvc.yaml k8s/rbac.yaml)
OVERLAYS=(staging production)

render_overlays() {
	local overlay
	"${KUBECTL}" kustomize --load-restrictor LoadRestrictionsNone k8s/base >"${WORK}/rendered-base.yaml" || return 1
	for overlay in "${OVERLAYS[@]}"; do
		"${KUBECTL}" kustomize --load-restrictor LoadRestrictionsNone "k8s/overlays/${overlay}" >"${WORK}/rendered-${overlay}.yaml" || return 1
		printf 'k8s/overlays/%s: %s objects\n' "${overlay}" "$(grep -c '^kind: ' "${WORK}/rendered-${overlay}.yaml")"
	done
	# The production overlay changes nothing but the image tag.
	local image='image: ghcr.io/generalhaypi/beryl_ecosysteme/beryl-core-api:'
	if ! diff <(grep -v "${image}" "${WORK}/rendered-base.yaml") <(grep -v "${image}" "${WORK}/rendered-production.yaml"); then
		echo "production differs from the base beyond the image tag"
		return 1
	fi
	echo "base and production identical apart from the image tag"
}

# Every manifest of the plain folders is in the kustomize base and the reverse; no folder that
# `kubectl apply -f` reads holds anything but Kubernetes objects.
check_layout() {
	local listed on_disk status=0 dir
	listed=$(sed -n 's#^  - \.\./##p' k8s/base/kustomization.yaml | sort)
	on_disk=$( (find "${PLAIN_DIRS[@]}" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' \) && printf '%s\n' "${PLAIN_FILES[@]}") | sed 's#^k8s/##' | sort)
	if [[ ${listed} != "${on_disk}" ]]; then
		echo "k8s/base/kustomization.yaml and the plain folders differ:"
		diff <(echo "${listed}") <(echo "${on_disk}")
		status=1
	fi
	for dir in "${PLAIN_DIRS[@]}"; do
		if ls "${dir}"/kustomization.* "${dir}"/Kustomization >/dev/null 2>&1; then
			echo "${dir} holds a kustomization file, which \`kubectl apply -f ${dir}/\` would try to apply"
			status=1
		fi
	done
	((status == 0)) && echo "${#PLAIN_DIRS[@]} folders and ${#PLAIN_FILES[@]} files, all in k8s/base, nothing else"
	return "${status}"
}

validate_schemas() {
	"${PY}" k8s/checks/validate_manifests.py "${PLAIN_DIRS[@]}" "${PLAIN_FILES[@]}" &&
		"${PY}" k8s/checks/validate_manifests.py "${WORK}"/rendered-{staging,production}.yaml
}

validate_crds() {
	node k8s/checks/validate_crds.mjs "${PLAIN_DIRS[@]}" "${PLAIN_FILES[@]}" &&
		node k8s/checks/validate_crds.mjs "${WORK}"/rendered-{staging,production}.yaml &&
		refuses_unknown_fields
}

# validate_crds.mjs reports every misspelled field of k8s/checks/fixtures/unknown-fields.yaml.
refuses_unknown_fields() {
	local fixture=k8s/checks/fixtures/unknown-fields.yaml output field missing=0 expected
	if output=$(node k8s/checks/validate_crds.mjs "${fixture}" 2>&1); then
		echo "validate_crds.mjs accepted ${fixture}, whose fields are misspelled"
		return 1
	fi
	read -r -a expected <<<"$(sed -n 's/^# EXPECTED: //p' "${fixture}" | tr '\n' ' ')"
	for field in "${expected[@]}"; do
		if ! grep -qF "unknown field ${field}" <<<"${output}"; then
			echo "validate_crds.mjs did not report ${field} of ${fixture}"
			missing=1
		fi
	done
	((missing == 0)) && echo "all ${#expected[@]} misspelled fields of ${fixture} refused"
}

check_references() {
	"${PY}" k8s/checks/check_references.py "${PLAIN_DIRS[@]}" "${PLAIN_FILES[@]}" &&
		"${PY}" k8s/checks/check_references.py "${WORK}/rendered-staging.yaml" &&
		"${PY}" k8s/checks/check_references.py "${WORK}/rendered-production.yaml"
}

run_checkov() {
	checkov --config-file .checkov.yaml --framework kubernetes -f "${WORK}"/rendered-{staging,production}.yaml -d k8s &&
		checkov --config-file .checkov.yaml --framework dockerfile -f Dockerfile &&
		checkov --config-file .checkov.yaml --framework github_actions -d .github/workflows
}

run_shell_lint() {
	shellcheck "${SHELL_SCRIPTS[@]}" && shfmt -d "${SHELL_SCRIPTS[@]}" &&
		echo "shellcheck and shfmt clean: ${SHELL_SCRIPTS[*]}"
}

run_promtool() {
	promtool check rules monitoring/alerts.yaml && promtool test rules monitoring/tests/alerts_test.yaml
}

run_dry_runs() {
	local environment
	for environment in "${OVERLAYS[@]}"; do
		KUBECTL="${KUBECTL}" ENVIRONMENT="${environment}" IMAGE_TAG=check-deploy ./deploy.sh --dry-run || return 1
	done
}

run_live() {
	local binary=${BERYL_BIN:-}
	if [[ -z ${binary} ]]; then
		cargo build --quiet --bin beryl-core-api || return 1
		binary=${CARGO_TARGET_DIR:-target}/debug/beryl-core-api
	fi
	if [[ -x scripts/services.sh ]]; then
		scripts/services.sh start || return 1
	fi
	"${PY}" monitoring/tools/live_check.py --binary "${binary}" --node-modules "${NODE_PATH}" \
		--rendered "${WORK}/rendered-production.yaml" --rendered "${WORK}/rendered-staging.yaml"
}

run sync "rules and dashboards embedded in k8s/ identical to monitoring/" "${PY}" monitoring/tools/sync.py --check
run yamllint "YAML style (.yamllint)" yamllint -c .yamllint k8s monitoring .github .yamllint .hadolint.yaml .checkov.yaml
run shell "shellcheck + shfmt on every script" run_shell_lint
run hadolint "Dockerfile (hadolint, failure threshold warning)" hadolint --config .hadolint.yaml --failure-threshold warning Dockerfile
run actionlint "GitHub workflows (actionlint, shellcheck of run steps)" actionlint .github/workflows/ci-cd.yml .github/workflows/manual-deploy.yml
run kustomize "kubectl kustomize of the base and both overlays" render_overlays
run layout "plain folders = kustomize base; folders hold only objects" check_layout
run schemas "strict schemas, Kubernetes 1.25 and 1.37, plain + rendered" validate_schemas
run crds "cert-manager, Prometheus Operator, KEDA schemas (kubernetes-models)" validate_crds
run references "selectors, ports, names, probes, resources, security, limits" check_references
run checkov "checkov: manifests, Dockerfile, workflows" run_checkov
run promtool "promtool check rules + unit tests of every alert" run_promtool
run monitoring "alert annotations and runbooks, dashboard structure" "${PY}" monitoring/tools/lint_monitoring.py
run dry-run "deploy.sh --dry-run for staging and production" run_dry_runs
run deploy-logic "deploy.sh against a fake cluster: order, waits, rollback" k8s/checks/test_deploy.sh "${KUBECTL}"
if [[ ${LIVE} == true ]]; then
	run live "service + Prometheus: config, probes, fault -> alert, metric names" run_live
fi

printf '\ncheck-deploy summary\n'
printf '  %s\n' "${RESULTS[@]}"
if ((FAILURES > 0)); then
	printf 'check-deploy: %d of %d checks failed (%ss)\n' "${FAILURES}" "${#RESULTS[@]}" "$((SECONDS - STARTED))"
	exit 1
fi
printf 'check-deploy: all %d checks passed (%ss)\n' "${#RESULTS[@]}" "$((SECONDS - STARTED))"
