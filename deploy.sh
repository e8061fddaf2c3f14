#!/usr/bin/env bash
# Deploys beryl-core-api to Kubernetes: renders k8s/overlays/$ENVIRONMENT with the requested image,
# applies it in the order of the infrastructure document, waits for every rollout, checks health
# through the cluster and rolls back what it changed when a rollout or a health check fails.
#
# Usage: ./deploy.sh [--dry-run | --rollback | --verify] [--help]
#
#   (no option)  deploy
#   --dry-run    render and validate offline; prints the plan; touches no cluster
#   --rollback   undo the last rollout of the three deployments, then wait and check health
#   --verify     check versions, rollouts and health of what runs now; change nothing
#   -h, --help   this text
#
# Environment:
#   NAMESPACE        namespace of the workloads; must be the overlay's (default: beryl)
#   ENVIRONMENT      staging | production (default: staging)
#   IMAGE_TAG        image tag to deploy (default: latest)
#   IMAGE_DIGEST     image digest (sha256:...); when set, deploys REGISTRY/REPO@IMAGE_DIGEST, immutable
#   REGISTRY         image registry (default: ghcr.io)
#   REPO             image repository (default: generalhaypi/beryl_ecosysteme/beryl-core-api)
#   KUBECTL          kubectl command (default: kubectl)
#   ROLLOUT_TIMEOUT  time allowed to each rollout (default: 300s)
#   HEALTH_TIMEOUT   seconds allowed to each health check (default: 120)
#   PUBLIC_HEALTH_URLS  space-separated URLs that must answer 2xx after the rollout (optional),
#                       e.g. "https://api.beryl-ecosystem.com/health https://graphql.beryl-ecosystem.com/health"
#   PROMETHEUS_SERVICE  namespace/service of the cluster's Prometheus (optional, e.g.
#                       beryl-monitoring/prometheus-operated): --verify then also checks that it
#                       scrapes the three services, has loaded the alert rules and has no critical
#                       alert firing for NAMESPACE
#   BERYL_TOOLS_DIR  where scripts/install-deploy-tools.sh keeps the validators (--dry-run)
#
# Exit status: 0 success, 1 failure (after a rollback when one was possible), 2 usage error.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAMESPACE="${NAMESPACE:-beryl}"
ENVIRONMENT="${ENVIRONMENT:-staging}"
IMAGE_TAG="${IMAGE_TAG:-latest}"
IMAGE_DIGEST="${IMAGE_DIGEST:-}"
REGISTRY="${REGISTRY:-ghcr.io}"
REPO="${REPO:-generalhaypi/beryl_ecosysteme/beryl-core-api}"
KUBECTL="${KUBECTL:-kubectl}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300s}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-120}"
PUBLIC_HEALTH_URLS="${PUBLIC_HEALTH_URLS:-}"
PROMETHEUS_SERVICE="${PROMETHEUS_SERVICE:-}"
IMAGE_REF=""

# The image name the manifests carry; replaced by REGISTRY/REPO:IMAGE_TAG (or @IMAGE_DIGEST) when rendering.
MANIFEST_IMAGE=ghcr.io/generalhaypi/beryl_ecosysteme/beryl-core-api
DEPLOYMENTS=(beryl-core-api graphql-gateway event-bus)
MIN_KUBE_MINOR=24
REQUIRED_SECRET_KEYS=(jwt-secret-key database-password audit-hmac-key privacy-master-key privacy-blind-index-key)
REQUIRED_CRDS=(
	certificates.cert-manager.io
	clusterissuers.cert-manager.io
	servicemonitors.monitoring.coreos.com
	prometheusrules.monitoring.coreos.com
	scaledobjects.keda.sh
)
# Namespaces the manifests use without creating them (platform services).
PLATFORM_NAMESPACES=(ingress-nginx beryl-monitoring)

# Application order: the document's (namespaces, configmaps, secrets, deployments, services,
# ingress), with identities, storage and network policies before the pods that need them, and
# the objects that only refer to running workloads last. Every kind rendered must appear here.
STEPS=(
	"namespaces:Namespace"
	"configmaps:ConfigMap"
	"secrets:Secret"
	"identities, storage and network policies:ServiceAccount Role RoleBinding PersistentVolumeClaim NetworkPolicy"
	"deployments:Deployment"
	"services:Service"
	"ingress:Ingress ClusterIssuer Certificate"
	"availability and autoscaling:PodDisruptionBudget HorizontalPodAutoscaler ScaledObject"
	"monitoring:ServiceMonitor PrometheusRule"
)

WORK_DIR=""
PORT_FORWARD_PID=""
declare -A REVISION_BEFORE=()

if [[ -t 1 ]]; then
	BOLD=$'\e[1m' RED=$'\e[31m' GREEN=$'\e[32m' YELLOW=$'\e[33m' RESET=$'\e[0m'
else
	BOLD="" RED="" GREEN="" YELLOW="" RESET=""
fi

log() { printf '%s==>%s %s\n' "${BOLD}" "${RESET}" "$*"; }
ok() { printf '%s ok%s %s\n' "${GREEN}" "${RESET}" "$*"; }
warn() { printf '%swarning:%s %s\n' "${YELLOW}" "${RESET}" "$*" >&2; }
fail() {
	printf '%serror:%s %s\n' "${RED}" "${RESET}" "$*" >&2
	exit 1
}

usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

cleanup() {
	if [[ -n ${PORT_FORWARD_PID} ]]; then
		kill "${PORT_FORWARD_PID}" 2>/dev/null || true
		wait "${PORT_FORWARD_PID}" 2>/dev/null || true
	fi
	if [[ -n ${WORK_DIR} ]]; then
		rm -rf "${WORK_DIR}"
	fi
}
trap cleanup EXIT

kube() { "${KUBECTL}" "$@"; }

# --- versions -------------------------------------------------------------------------------

# Prints "MAJOR MINOR" of the clientVersion or serverVersion block of `kubectl version -o json`.
version_of() {
	local block=$1 json=$2 git
	git=$(printf '%s' "${json}" | tr -d ' \n\t' | grep -o "\"${block}\":{[^}]*}" | grep -o '"gitVersion":"v[0-9]*\.[0-9]*' | head -n1) || true
	git=${git#*\"v}
	[[ ${git} =~ ^([0-9]+)\.([0-9]+)$ ]] || return 1
	printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

require_version() {
	local what=$1 major=$2 minor=$3
	if ((major < 1 || (major == 1 && minor < MIN_KUBE_MINOR))); then
		fail "${what} version ${major}.${minor} is too old: 1.${MIN_KUBE_MINOR} or later is required"
	fi
	ok "${what} ${major}.${minor} (>= 1.${MIN_KUBE_MINOR})"
}

check_client() {
	command -v "${KUBECTL}" >/dev/null 2>&1 || fail "kubectl not found (KUBECTL=${KUBECTL}); install kubectl 1.${MIN_KUBE_MINOR} or later"
	local json version
	json=$(kube version --client -o json 2>/dev/null) || fail "'${KUBECTL} version --client' failed"
	version=$(version_of clientVersion "${json}") || fail "cannot read the kubectl client version"
	# shellcheck disable=SC2086 # two words: major minor
	require_version "kubectl client" ${version}
}

check_cluster() {
	local json version
	json=$(kube version -o json 2>/dev/null) || fail "cannot reach the cluster of context '$(kube config current-context 2>/dev/null || echo none)'; check KUBECONFIG"
	version=$(version_of serverVersion "${json}") || fail "cannot read the Kubernetes server version"
	# shellcheck disable=SC2086 # two words: major minor
	require_version "Kubernetes server" ${version}

	local crd missing=()
	for crd in "${REQUIRED_CRDS[@]}"; do
		kube get crd "${crd}" >/dev/null 2>&1 || missing+=("${crd}")
	done
	((${#missing[@]} == 0)) || fail "custom resources not installed: ${missing[*]} (cert-manager, Prometheus Operator and KEDA are prerequisites)"
	ok "cert-manager, Prometheus Operator and KEDA resources installed"

	local ns
	for ns in "${PLATFORM_NAMESPACES[@]}"; do
		kube get namespace "${ns}" >/dev/null 2>&1 || fail "namespace ${ns} not found (ingress-nginx and the monitoring stack are prerequisites)"
	done
	ok "namespaces ${PLATFORM_NAMESPACES[*]} exist"
}

check_storage_class() {
	local rendered=$1 class
	class=$(awk '/^kind: PersistentVolumeClaim$/{p=1} p && /^  storageClassName: /{print $2; exit}' "${rendered}")
	[[ -n ${class} ]] || return 0
	kube get storageclass "${class}" >/dev/null 2>&1 ||
		fail "storage class ${class} not found: the audit volume needs a ReadWriteMany class with reclaimPolicy Retain (see k8s/pvc.yaml)"
	ok "storage class ${class} exists"
}

# --- rendering ------------------------------------------------------------------------------

validate_inputs() {
	case ${ENVIRONMENT} in
	staging | production) ;;
	*) fail "ENVIRONMENT must be staging or production, not '${ENVIRONMENT}'" ;;
	esac
	[[ -d "${ROOT}/k8s/overlays/${ENVIRONMENT}" ]] || fail "overlay k8s/overlays/${ENVIRONMENT} not found"
	[[ ${IMAGE_TAG} =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "IMAGE_TAG '${IMAGE_TAG}' is not a valid image tag"
	[[ ${REGISTRY}/${REPO} =~ ^[a-z0-9._:/-]+$ ]] || fail "REGISTRY/REPO '${REGISTRY}/${REPO}' is not a valid image name (lower case only)"
	if [[ -n ${IMAGE_DIGEST} ]]; then
		[[ ${IMAGE_DIGEST} =~ ^sha256:[0-9a-f]{64}$ ]] || fail "IMAGE_DIGEST '${IMAGE_DIGEST}' is not sha256:<64 hex digits>"
		IMAGE_REF="${REGISTRY}/${REPO}@${IMAGE_DIGEST}"
	else
		IMAGE_REF="${REGISTRY}/${REPO}:${IMAGE_TAG}"
		if [[ ${ENVIRONMENT} == production && ${IMAGE_TAG} == latest ]]; then
			warn "deploying the moving tag 'latest' to production; prefer an immutable tag (git sha or version) or IMAGE_DIGEST"
		fi
	fi
}

# Renders the overlay with the image replaced and the pod templates annotated with a hash of the
# ConfigMaps they load, so that a configuration change rolls the pods (and is checked, and rolled
# back, like an image change); prints the path of the rendered file.
render() {
	local overlay="${ROOT}/k8s/overlays/${ENVIRONMENT}" dir="${WORK_DIR}/kustomize" relative version hash
	mkdir -p "${dir}"
	if [[ -n ${IMAGE_DIGEST} ]]; then
		version="digest: \"${IMAGE_DIGEST}\""
	else
		version="newTag: \"${IMAGE_TAG}\""
	fi
	relative=$(realpath --relative-to="${dir}" "${overlay}")
	kube kustomize --load-restrictor LoadRestrictionsNone "${overlay}" >"${WORK_DIR}/plain.yaml" ||
		fail "kustomize could not render k8s/overlays/${ENVIRONMENT}"
	hash=$(select_kinds "${WORK_DIR}/plain.yaml" ConfigMap |
		awk '/^---$/ { if (keep) exit; doc = ""; next } { doc = doc $0 "\n" } /^  name: beryl-config$/ { keep = 1 } END { if (keep) printf "%s", doc }' |
		sha256sum | cut -c1-16)
	cat >"${dir}/kustomization.yaml" <<-EOF
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		resources:
		  - ${relative}
		images:
		  - name: ${MANIFEST_IMAGE}
		    newName: ${REGISTRY}/${REPO}
		    ${version}
		patches:
		  - target:
		      kind: Deployment
		    patch: |-
		      - op: add
		        path: /spec/template/metadata/annotations
		        value:
		          beryl-ecosystem.com/config-hash: "${hash}"
	EOF
	kube kustomize --load-restrictor LoadRestrictionsNone "${dir}" >"${WORK_DIR}/rendered.yaml" ||
		fail "kustomize could not render k8s/overlays/${ENVIRONMENT}"
	printf '%s\n' "${WORK_DIR}/rendered.yaml"
}

# Prints the documents of a rendered stream whose kind is one of the given kinds.
select_kinds() {
	local file=$1
	shift
	awk -v want=" $* " '
		function flush() {
			if (doc != "" && index(want, " " kind " ") > 0) printf "---\n%s", doc
			doc = ""; kind = ""
		}
		/^---$/ { flush(); next }
		{ doc = doc $0 "\n"; if ($0 ~ /^kind: /) kind = substr($0, 7) }
		END { flush() }
	' "${file}"
}

# Checks that every rendered kind has a step, and that the workloads are in NAMESPACE.
check_rendered() {
	local rendered=$1 step kinds all="" kind
	for step in "${STEPS[@]}"; do
		all+=" ${step#*:}"
	done
	while read -r kind; do
		[[ " ${all} " == *" ${kind} "* ]] || fail "rendered kind ${kind} has no place in the application order (STEPS in deploy.sh)"
	done < <(awk '/^kind: /{print substr($0, 7)}' "${rendered}" | sort -u)

	local namespaces
	namespaces=$(select_kinds "${rendered}" Deployment | awk '/^  namespace: /{print $2}' | sort -u)
	[[ ${namespaces} == "${NAMESPACE}" ]] ||
		fail "the ${ENVIRONMENT} overlay deploys into namespace '${namespaces//$'\n'/ }', not NAMESPACE=${NAMESPACE}; set NAMESPACE to it, or change the manifests"
	local image_count
	image_count=$(grep -cF "image: ${IMAGE_REF}" "${rendered}" || true)
	[[ ${image_count} -eq ${#DEPLOYMENTS[@]} ]] ||
		fail "expected ${#DEPLOYMENTS[@]} containers on ${IMAGE_REF}, found ${image_count}"
	kinds=$(awk '/^kind: /{print substr($0, 7)}' "${rendered}" | wc -l)
	ok "rendered k8s/overlays/${ENVIRONMENT}: ${kinds} objects, image ${IMAGE_REF}, namespace ${NAMESPACE}"
}

# Offline schema validation of the rendered objects, with the validators of scripts/check-deploy.sh.
validate_offline() {
	local rendered=$1 tools
	tools=$("${ROOT}/scripts/install-deploy-tools.sh" --validators) ||
		fail "cannot install the offline validators (scripts/install-deploy-tools.sh --validators)"
	"${tools}/venv/bin/python" "${ROOT}/k8s/checks/validate_manifests.py" "${rendered}" ||
		fail "the rendered manifests do not validate"
	NODE_PATH="${tools}/node/node_modules" node "${ROOT}/k8s/checks/validate_crds.mjs" "${rendered}" ||
		fail "the rendered custom resources do not validate"
	"${tools}/venv/bin/python" "${ROOT}/k8s/checks/check_references.py" "${rendered}" ||
		fail "the rendered manifests refer to objects they do not define"
}

# --- applying -------------------------------------------------------------------------------

revision_of() {
	kube get deployment "$1" -n "${NAMESPACE}" -o go-template='{{index .metadata.annotations "deployment.kubernetes.io/revision"}}' 2>/dev/null || true
}

record_revisions() {
	local deployment
	for deployment in "${DEPLOYMENTS[@]}"; do
		REVISION_BEFORE[${deployment}]=$(revision_of "${deployment}")
	done
}

check_secret() {
	local key value missing=()
	for key in "${REQUIRED_SECRET_KEYS[@]}"; do
		value=$(kube get secret beryl-secrets -n "${NAMESPACE}" -o go-template="{{index .data \"${key}\"}}" 2>/dev/null || true)
		[[ -n ${value} && ${value} != "<no value>" ]] || missing+=("${key}")
	done
	((${#missing[@]} == 0)) ||
		fail "secret ${NAMESPACE}/beryl-secrets lacks ${missing[*]}: write it with k8s/secrets/create-secrets.sh before deploying"
	ok "secret beryl-secrets holds ${REQUIRED_SECRET_KEYS[*]}"
}

apply_steps() {
	local rendered=$1 step name kinds file
	local i=0
	for step in "${STEPS[@]}"; do
		i=$((i + 1))
		name=${step%%:*}
		kinds=${step#*:}
		file="${WORK_DIR}/step-${i}.yaml"
		# shellcheck disable=SC2086 # kinds is a list of words
		select_kinds "${rendered}" ${kinds} >"${file}"
		[[ -s ${file} ]] || continue
		if [[ ${name} == secrets ]]; then
			# Never applied: the values live only in the cluster (k8s/secrets/create-secrets.sh),
			# and an apply must not risk them. Checked instead.
			log "step ${i}/${#STEPS[@]}: ${name} (checked, not applied)"
			check_secret
			continue
		fi
		log "apply ${i}/${#STEPS[@]}: ${name}"
		# Server-side apply: fields others own (the ingress controller's other settings, replica
		# counts the autoscalers set) stay theirs.
		kube apply --server-side --field-manager=beryl-deploy --force-conflicts -f "${file}" ||
			return 1
	done
}

wait_rollouts() {
	local deployment
	for deployment in "${DEPLOYMENTS[@]}"; do
		log "waiting for deployment/${deployment} (timeout ${ROLLOUT_TIMEOUT})"
		if ! kube rollout status "deployment/${deployment}" -n "${NAMESPACE}" --timeout="${ROLLOUT_TIMEOUT}"; then
			warn "deployment/${deployment} did not complete its rollout"
			kube get pods -n "${NAMESPACE}" -l "app=${deployment}" -o wide >&2 || true
			return 1
		fi
	done
}

# --- health -----------------------------------------------------------------------------------

stop_port_forward() {
	if [[ -n ${PORT_FORWARD_PID} ]]; then
		kill "${PORT_FORWARD_PID}" 2>/dev/null || true
		wait "${PORT_FORWARD_PID}" 2>/dev/null || true
		PORT_FORWARD_PID=""
	fi
}

# Starts `kubectl port-forward` to NAMESPACE/TARGET:REMOTE_PORT on a free local port; sets
# FORWARDED_PORT. The pods accept traffic only from the ingress controller and Prometheus; a
# port-forward goes through the kubelet.
FORWARDED_PORT=""
port_forward() {
	local namespace=$1 target=$2 remote=$3 out="${WORK_DIR}/port-forward.log" deadline
	FORWARDED_PORT=""
	# Started directly (not through kube()) so that $! is the kubectl process itself.
	"${KUBECTL}" port-forward "${target}" ":${remote}" -n "${namespace}" >"${out}" 2>&1 &
	PORT_FORWARD_PID=$!
	deadline=$((SECONDS + 20))
	while [[ -z ${FORWARDED_PORT} && ${SECONDS} -lt ${deadline} ]]; do
		FORWARDED_PORT=$(grep -o '127\.0\.0\.1:[0-9]*' "${out}" 2>/dev/null | head -n1 | cut -d: -f2) || true
		kill -0 "${PORT_FORWARD_PID}" 2>/dev/null || break
		[[ -n ${FORWARDED_PORT} ]] || sleep 0.5
	done
	if [[ -z ${FORWARDED_PORT} ]]; then
		warn "port-forward to ${namespace}/${target} failed: $(tr '\n' ' ' <"${out}")"
		stop_port_forward
		return 1
	fi
}

# GET /health/ready of a service until it answers 200 or HEALTH_TIMEOUT passes.
check_service_health() {
	local service=$1 deadline status body="${WORK_DIR}/ready-$1.json"
	port_forward "${NAMESPACE}" "service/${service}" 8000 || return 1
	deadline=$((SECONDS + HEALTH_TIMEOUT))
	while :; do
		status=$(curl -s -o "${body}" -w '%{http_code}' --max-time 5 "http://127.0.0.1:${FORWARDED_PORT}/health/ready" || true)
		if [[ ${status} == 200 ]]; then
			ok "service/${service}: /health/ready 200"
			stop_port_forward
			return 0
		fi
		if ((SECONDS >= deadline)); then
			warn "service/${service}: /health/ready answered ${status:-nothing} for ${HEALTH_TIMEOUT}s: $(head -c 600 "${body}" 2>/dev/null)"
			stop_port_forward
			return 1
		fi
		sleep 2
	done
}

# Instant query against the forwarded Prometheus; prints the sample values, one per line.
prometheus_values() {
	curl -fsS --max-time 10 --get --data-urlencode "query=$1" "http://127.0.0.1:${FORWARDED_PORT}/api/v1/query" |
		grep -o '"value":\[[^]]*\]' | sed 's/.*,"\(.*\)"\]/\1/'
}

# The cluster's Prometheus scrapes the three services, has the rules and no critical alert firing.
check_prometheus() {
	[[ -n ${PROMETHEUS_SERVICE} ]] || return 0
	[[ ${PROMETHEUS_SERVICE} == */* ]] || fail "PROMETHEUS_SERVICE must be namespace/service, not '${PROMETHEUS_SERVICE}'"
	port_forward "${PROMETHEUS_SERVICE%%/*}" "service/${PROMETHEUS_SERVICE#*/}" 9090 || return 1
	local deployment values status=0 rules firing
	for deployment in "${DEPLOYMENTS[@]}"; do
		values=$(prometheus_values "min(up{namespace=\"${NAMESPACE}\",service=\"${deployment}\"})" || true)
		if [[ ${values} == 1 ]]; then
			ok "Prometheus scrapes every pod of ${deployment}"
		else
			warn "Prometheus: up{service=\"${deployment}\"} is '${values:-absent}' (ServiceMonitor not picked up, or a target down)"
			status=1
		fi
	done
	rules=$(curl -fsS --max-time 10 "http://127.0.0.1:${FORWARDED_PORT}/api/v1/rules" | grep -o '"name":"beryl-core-api\.[a-z]*"' | sort -u | wc -l || true)
	if ((rules >= 2)); then
		ok "Prometheus has loaded the beryl-core-api rule groups"
	else
		warn "Prometheus has not loaded the rule groups of k8s/monitoring-config.yaml (PrometheusRule not selected?)"
		status=1
	fi
	firing=$(prometheus_values "count(ALERTS{namespace=\"${NAMESPACE}\",alertstate=\"firing\",severity=\"critical\"})" || true)
	if [[ -z ${firing} ]]; then
		ok "no critical alert firing in ${NAMESPACE}"
	else
		warn "${firing} critical alert(s) firing in ${NAMESPACE}"
		status=1
	fi
	stop_port_forward
	return "${status}"
}

check_public_health() {
	local url
	for url in ${PUBLIC_HEALTH_URLS}; do
		if curl -fsS --max-time 10 -o /dev/null "${url}"; then
			ok "${url}"
		else
			warn "${url} does not answer 2xx"
			return 1
		fi
	done
}

check_health() {
	command -v curl >/dev/null 2>&1 || fail "curl not found"
	local deployment
	for deployment in "${DEPLOYMENTS[@]}"; do
		check_service_health "${deployment}" || return 1
	done
	check_public_health || return 1
}

# --- rollback ---------------------------------------------------------------------------------

# Undo the deployments whose revision this run changed; returns 1 when one cannot be undone.
roll_back_changed() {
	local deployment before after status=0
	for deployment in "${DEPLOYMENTS[@]}"; do
		before=${REVISION_BEFORE[${deployment}]:-}
		after=$(revision_of "${deployment}")
		if [[ -z ${before} ]]; then
			warn "deployment/${deployment} did not exist before this run: nothing to roll back to (scale it or delete it by hand)"
			status=1
			continue
		fi
		if [[ ${after} == "${before}" ]]; then
			continue
		fi
		log "rolling back deployment/${deployment} from revision ${after} to ${before}"
		if kube rollout undo "deployment/${deployment}" -n "${NAMESPACE}" --to-revision="${before}" &&
			kube rollout status "deployment/${deployment}" -n "${NAMESPACE}" --timeout="${ROLLOUT_TIMEOUT}"; then
			ok "deployment/${deployment} back on revision ${before}"
		else
			warn "rollback of deployment/${deployment} failed"
			status=1
		fi
	done
	return "${status}"
}

# --- commands ---------------------------------------------------------------------------------

cmd_dry_run() {
	log "dry run: ${ENVIRONMENT}, ${IMAGE_REF}, namespace ${NAMESPACE} (no cluster access)"
	check_client
	local rendered step i=0 kinds file count
	rendered=$(render)
	check_rendered "${rendered}"
	validate_offline "${rendered}"
	ok "offline validation passed"
	log "plan"
	for step in "${STEPS[@]}"; do
		i=$((i + 1))
		kinds=${step#*:}
		file="${WORK_DIR}/plan-${i}.yaml"
		# shellcheck disable=SC2086 # kinds is a list of words
		select_kinds "${rendered}" ${kinds} >"${file}"
		count=$(grep -c '^kind: ' "${file}" || true)
		if [[ ${step%%:*} == secrets ]]; then
			printf '  %d. %-45s %3d objects (checked for their keys, never applied)\n' "${i}" "${step%%:*}" "${count}"
		else
			printf '  %d. %-45s %3d objects\n' "${i}" "${step%%:*}" "${count}"
		fi
	done
	printf '  then: rollout status of %s, /health/ready of each service, rollback on failure\n' "${DEPLOYMENTS[*]}"
	ok "dry run complete; rendered manifests: kubectl kustomize --load-restrictor LoadRestrictionsNone k8s/overlays/${ENVIRONMENT}"
}

cmd_deploy() {
	log "deploying ${IMAGE_REF} to ${ENVIRONMENT} (namespace ${NAMESPACE}, context $(kube config current-context 2>/dev/null || echo none))"
	check_client
	check_cluster
	local rendered
	rendered=$(render)
	check_rendered "${rendered}"
	check_storage_class "${rendered}"
	record_revisions
	if ! apply_steps "${rendered}"; then
		warn "apply failed"
		roll_back_changed || true
		fail "deployment of ${IMAGE_REF} to ${ENVIRONMENT} failed while applying manifests"
	fi
	if wait_rollouts && check_health; then
		ok "${IMAGE_REF} deployed to ${ENVIRONMENT} and healthy"
		return 0
	fi
	warn "rollout or health check failed: rolling back"
	if roll_back_changed; then
		check_health || warn "still unhealthy after the rollback"
		fail "deployment of ${IMAGE_REF} to ${ENVIRONMENT} failed; the previous revisions were restored"
	fi
	fail "deployment of ${IMAGE_REF} to ${ENVIRONMENT} failed and could not be fully rolled back; see the messages above"
}

cmd_rollback() {
	log "rolling back ${DEPLOYMENTS[*]} in ${NAMESPACE} (context $(kube config current-context 2>/dev/null || echo none))"
	check_client
	check_cluster
	local deployment status=0
	for deployment in "${DEPLOYMENTS[@]}"; do
		log "deployment/${deployment}: revision $(revision_of "${deployment}") -> previous"
		if ! kube rollout undo "deployment/${deployment}" -n "${NAMESPACE}"; then
			warn "rollout undo of deployment/${deployment} failed"
			status=1
		fi
	done
	((status == 0)) || fail "rollback failed"
	wait_rollouts || fail "rollback did not complete"
	check_health || fail "unhealthy after the rollback"
	ok "rolled back; images now:"
	for deployment in "${DEPLOYMENTS[@]}"; do
		printf '  %s %s\n' "${deployment}" "$(kube get deployment "${deployment}" -n "${NAMESPACE}" -o go-template='{{range .spec.template.spec.containers}}{{.image}}{{end}}')"
	done
}

cmd_verify() {
	log "verifying ${ENVIRONMENT} (namespace ${NAMESPACE})"
	check_client
	check_cluster
	wait_rollouts || fail "a rollout is not complete"
	check_health || fail "health check failed"
	check_prometheus || fail "monitoring check failed"
	ok "all deployments rolled out and healthy"
}

main() {
	local mode=deploy
	while [[ $# -gt 0 ]]; do
		case $1 in
		--dry-run) mode=dry-run ;;
		--rollback) mode=rollback ;;
		--verify) mode=verify ;;
		-h | --help)
			usage
			exit 0
			;;
		*)
			printf 'unknown argument: %s\n\n' "$1" >&2
			usage >&2
			exit 2
			;;
		esac
		shift
	done
	validate_inputs
	WORK_DIR=$(mktemp -d)
	case ${mode} in
	dry-run) cmd_dry_run ;;
	deploy) cmd_deploy ;;
	rollback) cmd_rollback ;;
	verify) cmd_verify ;;
	esac
}

main "$@"
