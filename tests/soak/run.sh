#!/usr/bin/env bash
# The soak run: an hour of a simulated Semarang against kendali, a flood night
# in its last third, 50 screens on the websocket, the server's memory and
# latency recorded every 10 s, and checks at the end.  Its own command, not
# part of scripts/test.sh or CI.  See tests/soak/README.md.
#
#   tests/soak/run.sh [--minutes N] [--out DIR] [options]
#
#   --minutes N    length of the run, at least 1 (default 60; 5 for a trial)
#   --out DIR      where the results go (default .run/soak/<date>-<time>)
#   --screens N    websocket screens that read (default 50)
#   --stalled N    websocket screens that never read (default 5)
#   --scale X      multiplies the call and report volumes (default 1)
#   --port N       the server's port on 127.0.0.1 (default: a free one)
#   --pg-port N    the private PostgreSQL's port (default: a free one)
#   --keep-db      keep the private PostgreSQL's data directory
#
# Environment:
#   KENDALI_BIN    a server binary already built; unset, scripts/build.sh
#                  builds build/server/kendali
#   DATABASE_URL   a scratch database to use instead of a private cluster
#                  (the run's events stay in it)
#
# Without DATABASE_URL a PostgreSQL cluster of its own is started under
# DIR/pg (scripts/pg.sh with KENDALI_PG_DIR), and stopped at the end.  The
# results: DIR/soak.csv, DIR/summary.txt, the server's log DIR/kendali.log.
# Exit status 0 when every check passed.  Ctrl-C ends the load early and
# still runs the checks; a second Ctrl-C skips them.  Either way the server
# and the private PostgreSQL are stopped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
PY=/usr/bin/python3

minutes=60
out=
screens=50
stalled=5
scale=1
port=
pg_port=
keep_db=0

server_pid=
driver_pid=
started_pg=0

say() { printf 'soak: %s\n' "$*"; }
die() {
	printf 'soak: error: %s\n' "$*" >&2
	exit 1
}
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit "${1:-0}"
}

while (($#)); do
	case $1 in
	--minutes | --out | --screens | --stalled | --scale | --port | --pg-port)
		(($# >= 2)) || die "$1 needs a value"
		case $1 in
		--minutes) minutes=$2 ;;
		--out) out=$2 ;;
		--screens) screens=$2 ;;
		--stalled) stalled=$2 ;;
		--scale) scale=$2 ;;
		--port) port=$2 ;;
		--pg-port) pg_port=$2 ;;
		esac
		shift 2
		;;
	--keep-db)
		keep_db=1
		shift
		;;
	-h | --help) usage ;;
	*)
		printf 'soak: unknown argument: %s\n\n' "$1" >&2
		usage 2
		;;
	esac
done

if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] ||
	! awk -v m="$minutes" 'BEGIN { exit !(m >= 1) }'; then
	die "--minutes $minutes: expected a number of minutes, at least 1"
fi
[[ $screens =~ ^[1-9][0-9]*$ ]] || die "--screens $screens: expected a positive integer"
[[ $stalled =~ ^[0-9]+$ ]] || die "--stalled $stalled: expected an integer"
[[ $scale =~ ^[0-9]*[.]?[0-9]+$ ]] || die "--scale $scale: expected a positive number"
for v in port pg_port; do
	[[ -z ${!v} || ${!v} =~ ^[1-9][0-9]{0,4}$ ]] || die "--${v/_/-} ${!v}: expected a port number"
done

# A port on 127.0.0.1 that nothing answers on, below the range the kernel
# gives clients' connections (which would take it from under a listener).
free_port() {
	local p lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	((lo > 21000)) || lo=32768
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % (lo - 20000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	die "found no free port"
}


cleanup() {
	local rc=$?
	trap '' HUP INT TERM
	trap - EXIT
	if [[ -n $driver_pid ]]; then
		stop_child "$driver_pid" 10
	fi
	if [[ -n $server_pid ]]; then
		stop_child "$server_pid" 15
		if [[ $stopped_rc == 0 ]]; then
			say "server stopped (exit 0)"
		else
			say "server stopped with exit status $stopped_rc"
		fi
	fi
	if ((started_pg)); then
		KENDALI_PG_DIR=$out/pg "$ROOT/scripts/pg.sh" stop || true
		if ((!keep_db)); then
			rm -rf "$out/pg/data"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$ROOT"
out=${out:-$ROOT/.run/soak/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
say "results in $out"

"$PY" -c 'import websockets, psycopg2, pytest' 2>/dev/null ||
	die "$PY needs python3-websockets, python3-psycopg2 and python3-pytest (scripts/deps.sh)"

if [[ -n ${KENDALI_BIN:-} ]]; then
	BIN=$KENDALI_BIN
	[[ -x $BIN ]] || die "KENDALI_BIN=$BIN is not an executable"
else
	say "building (log: $out/build.log)"
	scripts/build.sh >"$out/build.log" 2>&1 || {
		tail -n 40 "$out/build.log" >&2
		die "the build failed (log: $out/build.log)"
	}
	BIN=$ROOT/build/server/kendali
fi

pg_pid=
if [[ -z ${DATABASE_URL:-} ]]; then
	started_pg=1
	DATABASE_URL=$(KENDALI_PG_DIR=$out/pg PGPORT_KENDALI=${pg_port:-$(free_port)} \
		scripts/pg.sh start)
	pg_pid=$(head -n 1 "$out/pg/data/postmaster.pid")
	say "private PostgreSQL: $DATABASE_URL"
else
	say "using DATABASE_URL from the environment"
fi
export DATABASE_URL

"$BIN" migrate
# One key per agency system, as in production.
new_key() {
	local key
	key=$("$BIN" key create --poster "$1" --types "$2" | tail -n 1 | tr -d '[:space:]')
	[[ $key == kd_*_* ]] || die "kendali key create printed no key"
	printf '%s\n' "$key"
}
SOAK_KEY_CALL=$(new_key callcentre-112 call)
SOAK_KEY_REPORT=$(new_key lapor-gateway report)
SOAK_KEY_SENSOR=$(new_key bpbd-gauges sensor)
export SOAK_KEY_CALL SOAK_KEY_REPORT SOAK_KEY_SENSOR

port=${port:-$(free_port)}
url=http://127.0.0.1:$port
say "starting the server on 127.0.0.1:$port (log: $out/kendali.log)"
# In sessions of their own, so that Ctrl-C reaches only this script, which
# then stops everything in order: the load, the server, the database.
setsid "$BIN" serve --listen "127.0.0.1:$port" --anonymous-loopback \
	>"$out/kendali.log" 2>&1 </dev/null &
server_pid=$!
ready=0
for _ in $(seq 150); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		tail -n 20 "$out/kendali.log" >&2
		server_pid=
		die "the server exited while starting (log: $out/kendali.log)"
	fi
	if "$PY" - "$url/readyz" <<'EOF' 2>/dev/null; then
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
		ready=1
		break
	fi
	sleep 0.2
done
((ready)) || die "the server was not ready within 30 s (log: $out/kendali.log)"

PYTHONDONTWRITEBYTECODE=1 setsid "$PY" "$ROOT/tests/soak/soak.py" --url "$url" --minutes "$minutes" --out "$out" \
	--server-pid "$server_pid" ${pg_pid:+--pg-pid "$pg_pid"} --screens "$screens" \
	--stalled "$stalled" --scale "$scale" </dev/null &
driver_pid=$!

# Ctrl-C (or a TERM to this script) asks the driver to end the load; a
# second one makes it skip the checks.  Either way, wait for it to finish.
trap 'kill -TERM "$driver_pid" 2>/dev/null || true' HUP INT TERM
rc=0
while :; do
	wait "$driver_pid" && rc=0 || rc=$?
	kill -0 "$driver_pid" 2>/dev/null || break
done
driver_pid=

trap '' HUP INT TERM
stop_child "$server_pid" 15
server_pid=
if [[ $stopped_rc == 0 ]]; then
	line="PASS  the server stopped cleanly on SIGTERM: exit 0"
else
	line="FAIL  the server stopped cleanly on SIGTERM: exit status $stopped_rc"
	((rc != 0)) || rc=1
fi
echo "$line"
if [[ -f $out/summary.txt ]]; then
	echo "$line" >>"$out/summary.txt"
fi
say "results: $out/summary.txt, $out/soak.csv (server log $out/kendali.log)"
exit "$rc"
