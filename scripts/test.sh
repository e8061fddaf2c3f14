#!/usr/bin/env bash
# The whole test suite against real services, exactly as CI runs it:
# formatting, lints, unit and integration tests (real PostgreSQL and Redis, started here when
# needed, and a Kafka-compatible broker built once into a cache and started for the run), the
# schemathesis fuzzing of the REST API against its OpenAPI document, then the deployment checks.
# Each step prints how long it took, and the run its total.
set -euo pipefail
cd "$(dirname "$0")/.."

STEP=""
STEP_STARTED=$SECONDS
# End the current step, printing its duration.
end_step() {
	if [ -n "$STEP" ]; then
		printf '==> %s (%d s)\n' "$STEP" $((SECONDS - STEP_STARTED))
	fi
	STEP=""
}
step() {
	end_step
	STEP="$*"
	STEP_STARTED=$SECONDS
	printf '\n==> %s\n' "$*"
}

drop_test_databases() {
	psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
		"SELECT datname FROM pg_database WHERE datname LIKE 'beryl_test_%'" 2>/dev/null |
		while read -r db; do
			if [ -n "$db" ]; then
				psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
			fi
		done
}

KAFKA_PORT=${BERYL_TEST_KAFKA_PORT:-19092}
KAFKA_DIR=target/kafka-test

SERVICES_STARTED=false
cleanup() {
	local status=$?
	if [ -n "$STEP" ]; then
		printf '==> %s failed after %d s (%d s in total)\n' "$STEP" $((SECONDS - STEP_STARTED)) "$SECONDS"
	fi
	if [ "$SERVICES_STARTED" = true ]; then
		drop_test_databases
		scripts/kafka.sh stop "$KAFKA_PORT" "$KAFKA_DIR" || true
	fi
	return "$status"
}
trap cleanup EXIT

step "services"
scripts/services.sh start
scripts/kafka.sh install
scripts/kafka.sh stop "$KAFKA_PORT" "$KAFKA_DIR"
rm -rf "$KAFKA_DIR"
scripts/kafka.sh start "$KAFKA_PORT" "$KAFKA_DIR"
SERVICES_STARTED=true
drop_test_databases
export BERYL_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
BERYL_TANSU_BIN=$(scripts/kafka.sh bin)
export BERYL_TANSU_BIN

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked

step "schemathesis"
scripts/schemathesis.sh

if [ -x scripts/check-deploy.sh ]; then
	step "deployment checks"
	scripts/check-deploy.sh
fi

end_step
printf '\n==> all checks passed (%d s in total)\n' "$SECONDS"
