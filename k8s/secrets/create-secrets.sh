#!/usr/bin/env bash
# Writes the values of the beryl-secrets Secret, or rotates the JWT signing key or the audit chain key.
#
#   DATABASE_PASSWORD=... EMISSIONS_API_KEY=... PAYMENTS_API_KEY=... PAYMENTS_WEBHOOK_SECRET=... \
#     k8s/secrets/create-secrets.sh
#                                                                  create (or fill the empty Secret)
#   k8s/secrets/create-secrets.sh --rotate-jwt [--restart]         new jwt-secret-key, the old one
#                                                                  kept as jwt-secret-key-previous
#                                                                  until jwt-secret-key-previous-until
#   k8s/secrets/create-secrets.sh --rotate-audit [--restart]       new audit-hmac-key (added when
#                                                                  missing), the old one kept as
#                                                                  audit-hmac-key-previous
#
# Environment: NAMESPACE (default beryl), DATABASE_PASSWORD, EMISSIONS_API_KEY, PAYMENTS_API_KEY and
# PAYMENTS_WEBHOOK_SECRET (required to
# create), JWT_SECRET_KEY (default: 32 random bytes, hex), REDIS_URL_SECRET (optional redis-url
# key, a URL with password), JWT_PREVIOUS_WINDOW_SECS (how long the previous key stays
# accepted, default 86400: the longest token lifetime).
# Values never appear on a command line: they go through files in a private temporary directory.
set -Eeuo pipefail

NAMESPACE="${NAMESPACE:-beryl}"
SECRET=beryl-secrets
KUBECTL="${KUBECTL:-kubectl}"
DEPLOYMENTS=(beryl-core-api graphql-gateway event-bus)

usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
	printf 'create-secrets: error: %s\n' "$*" >&2
	exit 1
}

# Number of keys the Secret holds, or -1 when it does not exist.
secret_key_count() {
	if ! "${KUBECTL}" get secret "${SECRET}" -n "${NAMESPACE}" >/dev/null 2>&1; then
		echo -1
		return
	fi
	"${KUBECTL}" get secret "${SECRET}" -n "${NAMESPACE}" -o go-template='{{len .data}}' 2>/dev/null || echo 0
}

create() {
	[[ -n "${DATABASE_PASSWORD:-}" ]] || die "set DATABASE_PASSWORD"
	[[ -n "${EMISSIONS_API_KEY:-}" ]] || die "set EMISSIONS_API_KEY"
	[[ -n "${PAYMENTS_API_KEY:-}" ]] || die "set PAYMENTS_API_KEY"
	[[ -n "${PAYMENTS_WEBHOOK_SECRET:-}" ]] || die "set PAYMENTS_WEBHOOK_SECRET"
	local count
	count=$(secret_key_count)
	if [[ ${count} -gt 0 ]]; then
		die "secret ${NAMESPACE}/${SECRET} already holds ${count} keys; rotate with --rotate-jwt or edit it deliberately"
	fi
	local dir
	dir=$(mktemp -d)
	trap 'rm -rf "${dir}"' EXIT
	chmod 700 "${dir}"
	# One file per key: --from-file on a directory makes a key of every file in it.
	mkdir "${dir}/values"
	printf '%s' "${JWT_SECRET_KEY:-$(openssl rand -hex 32)}" >"${dir}/values/jwt-secret-key"
	printf '%s' "${DATABASE_PASSWORD}" >"${dir}/values/database-password"
	printf '%s' "$(openssl rand -hex 32)" >"${dir}/values/audit-hmac-key"
	printf '%s' "$(openssl rand -hex 32)" >"${dir}/values/privacy-master-key"
	printf '%s' "$(openssl rand -hex 32)" >"${dir}/values/privacy-blind-index-key"
	printf '%s' "${EMISSIONS_API_KEY}" >"${dir}/values/emissions-api-key"
	printf '%s' "${PAYMENTS_API_KEY}" >"${dir}/values/payments-api-key"
	printf '%s' "${PAYMENTS_WEBHOOK_SECRET}" >"${dir}/values/payments-webhook-secret"
	if [[ -n "${REDIS_URL_SECRET:-}" ]]; then
		printf '%s' "${REDIS_URL_SECRET}" >"${dir}/values/redis-url"
	fi
	[[ $(wc -c <"${dir}/values/jwt-secret-key") -ge 32 ]] || die "JWT_SECRET_KEY must be at least 32 bytes"
	"${KUBECTL}" create secret generic "${SECRET}" -n "${NAMESPACE}" --from-file="${dir}/values" \
		--dry-run=client -o yaml >"${dir}/secret.yaml"
	"${KUBECTL}" label --local -f "${dir}/secret.yaml" -o yaml \
		app.kubernetes.io/part-of=beryl-ecosystem >"${dir}/labelled.yaml"
	if [[ ${count} -eq -1 ]]; then
		"${KUBECTL}" create -f "${dir}/labelled.yaml"
	else
		# The empty Secret from `kubectl apply -f k8s/secrets/`: replace writes the values without
		# recording them in the last-applied annotation, so later applies keep them.
		"${KUBECTL}" replace -f "${dir}/labelled.yaml"
	fi
	echo "secret ${NAMESPACE}/${SECRET} written; restart the workloads to load it:"
	echo "  ${KUBECTL} rollout restart deployment ${DEPLOYMENTS[*]} -n ${NAMESPACE}"
}

# Restart the workloads so that they load the Secret again (with "true"), or say how to.
restart_workloads() {
	if [[ $1 == true ]]; then
		local deployment
		for deployment in "${DEPLOYMENTS[@]}"; do
			"${KUBECTL}" rollout restart "deployment/${deployment}" -n "${NAMESPACE}"
			"${KUBECTL}" rollout status "deployment/${deployment}" -n "${NAMESPACE}" --timeout=300s
		done
	else
		echo "restart the workloads to load it: ${KUBECTL} rollout restart deployment ${DEPLOYMENTS[*]} -n ${NAMESPACE}"
	fi
}

rotate_jwt() {
	local restart=$1 current new until patch
	current=$("${KUBECTL}" get secret "${SECRET}" -n "${NAMESPACE}" -o go-template='{{index .data "jwt-secret-key"}}') ||
		die "cannot read ${NAMESPACE}/${SECRET}"
	[[ -n "${current}" ]] || die "${NAMESPACE}/${SECRET} has no jwt-secret-key to rotate"
	# base64 of the key without a trailing newline (`openssl rand -hex 32 | base64` would add one).
	new=$(printf '%s' "$(openssl rand -hex 32)" | base64 -w0)
	# The current key stays valid as JWT_SECRET_KEY_PREVIOUS until JWT_SECRET_KEY_PREVIOUS_UNTIL:
	# tokens signed before the rotation keep working while they expire, and not a moment longer
	# (the window is the longest token lifetime, auth.max_token_lifetime_secs).
	until=$(date -u -d "+${JWT_PREVIOUS_WINDOW_SECS:-86400} seconds" +%Y-%m-%dT%H:%M:%SZ)
	until=$(printf '%s' "${until}" | base64 -w0)
	patch=$(printf '[{"op":"add","path":"/data/jwt-secret-key-previous","value":"%s"},{"op":"add","path":"/data/jwt-secret-key-previous-until","value":"%s"},{"op":"replace","path":"/data/jwt-secret-key","value":"%s"}]' "${current}" "${until}" "${new}")
	"${KUBECTL}" patch secret "${SECRET}" -n "${NAMESPACE}" --type=json -p "${patch}" >/dev/null
	echo "jwt-secret-key rotated in ${NAMESPACE}/${SECRET} (previous key kept as jwt-secret-key-previous until jwt-secret-key-previous-until)"
	restart_workloads "${restart}"
}

rotate_audit() {
	local restart=$1 current new patch
	current=$("${KUBECTL}" get secret "${SECRET}" -n "${NAMESPACE}" -o go-template='{{with index .data "audit-hmac-key"}}{{.}}{{end}}') ||
		die "cannot read ${NAMESPACE}/${SECRET}"
	new=$(printf '%s' "$(openssl rand -hex 32)" | base64 -w0)
	# Records sealed before the rotation name the old key: it stays as the previous key so that
	# `audit verify` and the writer's restart read them.
	if [[ -n "${current}" ]]; then
		patch=$(printf '[{"op":"add","path":"/data/audit-hmac-key-previous","value":"%s"},{"op":"add","path":"/data/audit-hmac-key","value":"%s"}]' "${current}" "${new}")
	else
		patch=$(printf '[{"op":"add","path":"/data/audit-hmac-key","value":"%s"}]' "${new}")
	fi
	"${KUBECTL}" patch secret "${SECRET}" -n "${NAMESPACE}" --type=json -p "${patch}" >/dev/null
	echo "audit-hmac-key rotated in ${NAMESPACE}/${SECRET} (previous key kept as audit-hmac-key-previous)"
	restart_workloads "${restart}"
}

main() {
	local mode=create restart=false
	while [[ $# -gt 0 ]]; do
		case $1 in
		--rotate-jwt) mode=rotate ;;
		--rotate-audit) mode=rotate-audit ;;
		--restart) restart=true ;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown argument: $1 (see --help)" ;;
		esac
		shift
	done
	command -v "${KUBECTL}" >/dev/null 2>&1 || die "kubectl not found"
	command -v openssl >/dev/null 2>&1 || die "openssl not found"
	if [[ ${mode} == rotate ]]; then
		rotate_jwt "${restart}"
	elif [[ ${mode} == rotate-audit ]]; then
		rotate_audit "${restart}"
	else
		create
	fi
}

main "$@"
