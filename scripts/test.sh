#!/usr/bin/env bash
# The whole test suite against real services, exactly as CI runs it:
# formatting, lints, unit and integration tests (real PostgreSQL and Redis, started here when
# needed), then the deployment checks.
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

step "services"
scripts/services.sh start
drop_test_databases
trap drop_test_databases EXIT

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
