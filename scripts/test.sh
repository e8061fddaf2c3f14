#!/usr/bin/env bash
# The whole test suite against real services, exactly as CI runs it:
# formatting, lints, unit and integration tests (real PostgreSQL and Redis, started here when
# needed, and a Kafka-compatible broker built once into a cache and started for the run), then
# the deployment checks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

drop_test_databases() {
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'beryl_test_%'" 2>/dev/null |
    while read -r db; do
      [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
}

KAFKA_PORT=${BERYL_TEST_KAFKA_PORT:-19092}
KAFKA_DIR=target/kafka-test

cleanup() {
  drop_test_databases
  scripts/kafka.sh stop "$KAFKA_PORT" "$KAFKA_DIR" || true
}

step "services"
scripts/services.sh start
scripts/kafka.sh install
scripts/kafka.sh stop "$KAFKA_PORT" "$KAFKA_DIR"
rm -rf "$KAFKA_DIR"
scripts/kafka.sh start "$KAFKA_PORT" "$KAFKA_DIR"
drop_test_databases
trap cleanup EXIT
export BERYL_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
BERYL_TANSU_BIN=$(scripts/kafka.sh bin)
export BERYL_TANSU_BIN

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked

if [ -x scripts/check-deploy.sh ]; then
  step "deployment checks"
  scripts/check-deploy.sh
fi

step "all checks passed"
