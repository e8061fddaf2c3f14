#!/usr/bin/env bash
# A Kafka-compatible broker for development and tests: tansu (crates.io), built once into a cache
# shared between runs, started on loopback with SQLite storage, stopped by PID.
#
#   scripts/kafka.sh install                 build tansu into the cache unless it is there
#   scripts/kafka.sh start [port] [dir]      start a broker (default 9092, dir target/kafka-<port>)
#   scripts/kafka.sh stop [port] [dir]       stop the broker started with the same arguments
#   scripts/kafka.sh status [port]           whether a broker answers on the port
#   scripts/kafka.sh bin                     print the broker binary's path
#
# BERYL_TOOLS_DIR overrides the cache (default ~/.cache/beryl-core-api/tools).
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
TOOLS_DIR=${BERYL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/beryl-core-api/tools}
TANSU="$TOOLS_DIR/bin/tansu"

log() { printf '[kafka] %s\n' "$*" >&2; }

installed() { [ -x "$TANSU" ] && "$TANSU" --version 2>/dev/null | grep -q "$TANSU_VERSION"; }

install() {
	if installed; then return 0; fi
	log "building tansu $TANSU_VERSION into $TOOLS_DIR (once; 11 to 20 minutes on 2 cores)"
	mkdir -p "$TOOLS_DIR"
	cargo install tansu --version "$TANSU_VERSION" --locked --features libsql --root "$TOOLS_DIR" --quiet
	installed || {
		log "tansu did not install"
		return 1
	}
}

# tansu 0.6's SQLite schema has no index for a record's headers: every record fetched scans
# every header stored, so fetches slow down as headered records accumulate. The index is added
# once the broker has made its schema (it is kept in the database file across restarts).
index_headers() {
	local db=$1
	python3 - "$db" <<'PY'
import sqlite3, sys, time
deadline = time.time() + 20
while True:
    try:
        c = sqlite3.connect(sys.argv[1], timeout=10)
        c.execute("CREATE INDEX IF NOT EXISTS header_record ON header (topition, offset_id)")
        c.commit()
        break
    except sqlite3.OperationalError as e:
        if time.time() > deadline:
            sys.exit(f"cannot index the broker's headers: {e}")
        time.sleep(0.1)
PY
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
	local port=${1:-9092}
	local dir=${2:-target/kafka-$port}
	install
	mkdir -p "$dir"
	if [ -f "$dir/tansu.pid" ] && kill -0 "$(cat "$dir/tansu.pid")" 2>/dev/null; then
		log "broker already running on $port (pid $(cat "$dir/tansu.pid"))"
		return 0
	fi
	if port_open "$port"; then
		log "port $port is taken by another process"
		return 1
	fi
	local abs
	abs=$(cd "$dir" && pwd)
	# tansu reads the SQLite path relative to its working directory.
	(
		cd "$abs"
		exec "$TANSU" broker \
			--listener-url "tcp://127.0.0.1:$port" \
			--advertised-listener-url "tcp://127.0.0.1:$port" \
			--storage-engine "sqlite://tansu.db" \
			>"$abs/tansu.log" 2>&1
	) &
	echo $! >"$abs/tansu.pid"
	for _ in $(seq 1 100); do
		if port_open "$port"; then
			index_headers "$abs/tansu.db"
			log "broker up on 127.0.0.1:$port (pid $(cat "$abs/tansu.pid"), data $abs)"
			return 0
		fi
		kill -0 "$(cat "$abs/tansu.pid")" 2>/dev/null || break
		sleep 0.1
	done
	log "broker did not start; see $abs/tansu.log"
	tail -n 20 "$abs/tansu.log" >&2 || true
	return 1
}

stop() {
	local port=${1:-9092}
	local dir=${2:-target/kafka-$port}
	[ -f "$dir/tansu.pid" ] || return 0
	local pid
	pid=$(cat "$dir/tansu.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		log "broker on $port stopped"
	fi
	rm -f "$dir/tansu.pid"
}

case "${1:-start}" in
install) install ;;
start) start "${2:-}" "${3:-}" ;;
stop) stop "${2:-}" "${3:-}" ;;
status) port_open "${2:-9092}" && echo "kafka: up" || echo "kafka: down" ;;
bin) install && echo "$TANSU" ;;
*)
	echo "usage: $0 install|start [port] [dir]|stop [port] [dir]|status [port]|bin" >&2
	exit 2
	;;
esac
