#!/usr/bin/env bash
# Make sure the services the test suite talks to are running on this machine:
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379.
# Installs them from Debian packages when missing, with the OpenSSL headers the build links
# librdkafka against. Idempotent.
#
#   scripts/services.sh start     start whatever is not running
#   scripts/services.sh status    print what is running
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		log "need root to install $*"
		return 1
	fi
	if [ -z "${BERYL_APT_UPDATED:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		export BERYL_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

start_postgres() {
	if postgres_up; then return 0; fi
	if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
		log "installing PostgreSQL"
		apt_install postgresql
		local version
		version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
		local hba="/etc/postgresql/$version/main/pg_hba.conf"
		# A throwaway test server: trust loopback connections, as the tests expect.
		sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
		sed -i -E 's/^(local\s+all\s+postgres\s+)\S+/\1trust/' "$hba"
	fi
	local version
	version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)
	log "starting PostgreSQL $version"
	pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
	for _ in $(seq 1 50); do
		postgres_up && return 0
		sleep 0.2
	done
	log "PostgreSQL did not come up"
	return 1
}

start_redis() {
	if redis_up; then return 0; fi
	if ! command -v redis-server >/dev/null 2>&1; then
		log "installing Redis"
		apt_install redis-server
	fi
	log "starting Redis"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	for _ in $(seq 1 50); do
		redis_up && return 0
		sleep 0.2
	done
	log "Redis did not come up"
	return 1
}

case "${1:-start}" in
start)
	# The build links librdkafka with OpenSSL (TLS and SASL/SCRAM to the brokers).
	command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
	pkg-config --exists openssl || apt_install libssl-dev
	command -v pg_isready >/dev/null 2>&1 || apt_install postgresql-client
	command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
	start_postgres
	start_redis
	log "PostgreSQL and Redis are up"
	;;
status)
	postgres_up && echo "postgres: up" || echo "postgres: down"
	redis_up && echo "redis: up" || echo "redis: down"
	;;
*)
	echo "usage: $0 start|status" >&2
	exit 2
	;;
esac
