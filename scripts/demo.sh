#!/usr/bin/env bash
# The kendali demo, from a fresh Debian 12 machine (run as root, or with sudo):
#
#   installs what is missing, builds, starts a private PostgreSQL (unless
#   DATABASE_URL is set), migrates, makes three tenants (Kota Semarang,
#   Kabupaten Batang, Kabupaten Pati) with their reference data and the
#   province of Jawa Tengah over them, creates an API key for each demo feed
#   and a screen token for each regency and the province, starts the server,
#   posts a few days of Semarang's simulated history the first time, then
#   feeds the three live: 112 calls, citizen reports and river gauges, each
#   regency with its own floods.
#
# Environment:
#   DATABASE_URL        use this PostgreSQL instead of the private one in .run/pg
#   KENDALI_LISTEN      address the server listens on (default 127.0.0.1:8080)
#   DEMO_BACKFILL_DAYS  days of history posted on the first run on a database
#                       (default 3; 0: none)
#   PGPORT_KENDALI      port of the private PostgreSQL (default 55432)
#
# Ctrl-C stops the feed, the server, and the private PostgreSQL if this script
# started it.  The server's log is .run/kendali.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

LISTEN=${KENDALI_LISTEN:-127.0.0.1:8080}
BACKFILL_DAYS=${DEMO_BACKFILL_DAYS:-3}
BIN=$ROOT/build/server/kendali
RUN=$ROOT/.run
KEY_FILE=$RUN/demo.key
SERVER_LOG=$RUN/kendali.log
PY=/usr/bin/python3

server_pid=
feed_pid=
feed_pids=()
started_pg=0
# The regencies beside Semarang: id, name, the share of Semarang's volume
# their feed posts, and when their first flood rises (s).
REGENCIES=("batang|Kabupaten Batang|0.4|150" "pati|Kabupaten Pati|0.5|300")

say() { printf 'demo: %s\n' "$*"; }
die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

cleanup() {
	local rc=$?
	trap '' HUP INT TERM
	trap - EXIT
	if [[ -n $feed_pid || -n $server_pid ]] || ((started_pg)); then
		echo
		say "stopping"
	fi
	stop_child "$feed_pid" 10
	for pid in "${feed_pids[@]}"; do
		stop_child "$pid" 10
	done
	if [[ -n $server_pid ]]; then
		stop_child "$server_pid" 15
		say "server stopped"
	fi
	if ((started_pg)); then
		scripts/pg.sh stop || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $BACKFILL_DAYS =~ ^[0-9]+([.][0-9]+)?$ ]] ||
	die "DEMO_BACKFILL_DAYS=$BACKFILL_DAYS is not a number of days"
[[ $LISTEN == *:* ]] || die "KENDALI_LISTEN=$LISTEN: expected HOST:PORT"

mkdir -p "$RUN"
say "checking dependencies"
scripts/deps.sh
say "building (log: .run/build.log)"
scripts/build.sh >"$RUN/build.log" 2>&1 || {
	tail -n 40 "$RUN/build.log" >&2
	die "the build failed (full log: .run/build.log)"
}
[[ -x $BIN ]] || die "the build produced no $BIN"

if [[ -z ${DATABASE_URL:-} ]]; then
	if ! scripts/pg.sh status >/dev/null 2>&1; then
		started_pg=1
	fi
	DATABASE_URL=$(scripts/pg.sh start)
	say "using the private PostgreSQL: $DATABASE_URL"
else
	say "using DATABASE_URL from the environment"
fi
export DATABASE_URL

say "migrating the database"
"$BIN" migrate
# Semarang's kecamatan, agencies and gauges (again: nothing changes); the
# regencies and the province, the first time.
"$BIN" tenant import semarang data/tenants/semarang >/dev/null
tenants=$("$BIN" tenant list)
for r in "${REGENCIES[@]}"; do
	IFS='|' read -r id name _ _ <<<"$r"
	if ! awk -v id="$id" 'NR > 1 && $1 == id { found = 1 } END { exit !found }' <<<"$tenants"; then
		"$BIN" tenant create "$id" --name "$name" --head Bupati >/dev/null
		say "created the tenant $id ($name)"
	fi
	"$BIN" tenant import "$id" "data/tenants/$id" >/dev/null
done
if ! awk 'NR > 1 && $1 == "jateng" { found = 1 } END { exit !found }' <<<"$tenants"; then
	"$BIN" tenant create jateng --name "Provinsi Jawa Tengah" --head Gubernur \
		--province --members semarang,batang,pati >/dev/null
	say "created the province jateng over semarang, batang and pati"
fi

# A credential kept in FILE (a key, kd_..., or a screen token, st_...) while
# `kendali KIND list --tenant TENANT` still lists it live; else a new one from
# the command that follows, kept there.  Prints it.
credential() {
	local kind=$1 tenant=$2 file=$3 stored id made
	shift 3
	if [[ -s $file ]]; then
		stored=$(tr -d '[:space:]' <"$file")
		id=${stored#??_}
		id=${id%%_*}
		if "$BIN" "$kind" list --tenant "$tenant" |
			awk -v id="$id" 'NR > 1 && $1 == id && $NF == "-" { found = 1 } END { exit !found }'; then
			printf '%s\n' "$stored"
			return
		fi
	fi
	made=$("$BIN" "$kind" create --tenant "$tenant" "$@" | tail -n 1 | tr -d '[:space:]')
	[[ -n $made ]] || die "kendali $kind create printed nothing"
	(
		umask 077
		printf '%s\n' "$made" >"$file"
	)
	printf '%s\n' "$made"
}
declare -A feed_key screen_token
for r in "${REGENCIES[@]}"; do
	IFS='|' read -r id _ _ _ <<<"$r"
	feed_key[$id]=$(credential key "$id" "$RUN/demo-$id.key" --poster demo-feed \
		--types call,report,sensor)
	screen_token[$id]=$(credential token "$id" "$RUN/demo-$id.token" --name demo-screen \
		--role admin)
done
screen_token[jateng]=$(credential token jateng "$RUN/demo-jateng.token" --name demo-screen \
	--role province)

# The demo feed's key: reuse the stored one while the server still lists it
# (not revoked), else create one.  A database that never had a key of the
# demo feed has not had its history either.
keys=$("$BIN" key list --tenant semarang)
fresh_db=1
if awk 'NR > 1 && $2 == "demo-feed" { found = 1 } END { exit !found }' <<<"$keys"; then
	fresh_db=0
fi
key=
if [[ -s $KEY_FILE ]]; then
	stored=$(tr -d '[:space:]' <"$KEY_FILE")
	id=${stored#kd_}
	id=${id%%_*}
	if awk -v id="$id" 'NR > 1 && $1 == id && $NF == "-" { found = 1 } END { exit !found }' \
		<<<"$keys"; then
		key=$stored
	fi
fi
if [[ -z $key ]]; then
	key=$("$BIN" key create --tenant semarang --poster demo-feed --types call,report,sensor |
		tail -n 1 |
		tr -d '[:space:]')
	[[ -n $key ]] || die "kendali key create printed no key"
	(
		umask 077
		printf '%s\n' "$key" >"$KEY_FILE"
	)
	say "created an API key for the demo feed (stored in .run/demo.key)"
else
	say "reusing the demo feed's API key from .run/demo.key"
fi

# Where to reach the server from this machine.
host=${LISTEN%:*}
port=${LISTEN##*:}
case $host in
"" | 0.0.0.0 | "*") url_host=127.0.0.1 ;;
"[::]" | "::") url_host="[::1]" ;;
*) url_host=$host ;;
esac
URL="http://$url_host:$port"

say "starting the server on $LISTEN (log: .run/kendali.log)"
# In a session of its own, so that Ctrl-C reaches only this script, which then
# stops everything in order: the feed, the server, the database.  Browsers on
# this machine need no login (--anonymous-loopback); others do.
# Browsers may also name this machine by its host name (addresses and
# localhost always work; other names are refused, against DNS rebinding).
names=()
if host=$(hostname 2>/dev/null) && [[ $host =~ ^[A-Za-z0-9.-]+$ ]]; then
	names=(--host-name "$host")
fi
setsid "$BIN" serve --listen "$LISTEN" --anonymous-loopback "${names[@]}" \
	>"$SERVER_LOG" 2>&1 </dev/null &
server_pid=$!

# Waits for GET /readyz to answer 200.
ready=0
for ((i = 0; i < 120; i++)); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		tail -n 30 "$SERVER_LOG" >&2 || true
		server_pid=
		die "the server exited while starting (log: $SERVER_LOG)"
	fi
	if "$PY" - "$URL/readyz" <<'EOF' 2>/dev/null; then
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
	sleep 0.5
done
((ready)) || {
	tail -n 30 "$SERVER_LOG" >&2 || true
	die "the server was not ready within 60 s (log: $SERVER_LOG)"
}

banner() {
	local line='================================================================'
	echo
	echo "$line"
	echo "  kendali is running: three tenants and their province"
	echo
	echo "  Kota Semarang (no login from this machine)"
	echo "    Wall screen:    $URL/"
	echo "    Mayor's page:   $URL/mayor"
	for r in "${REGENCIES[@]}"; do
		IFS='|' read -r id name _ _ <<<"$r"
		echo "  $name"
		echo "    Wall screen:    $URL/?token=${screen_token[$id]}"
		echo "    Bupati's page:  $URL/mayor?token=${screen_token[$id]}"
	done
	echo "  Provinsi Jawa Tengah"
	echo "    Roll-up:        $URL/provinsi?token=${screen_token[jateng]}"
	echo "  (a token link sets the screen's cookie: one tenant per browser profile)"
	echo
	echo "  API $URL/api/v1/   server log .run/kendali.log"
	echo "  No login from this machine.  Other machines need a login or a"
	echo "  screen token (docs/security.md), for example:"
	echo "    DATABASE_URL='$DATABASE_URL' build/server/kendali user add operator1 --tenant semarang --role operator"
	if [[ $url_host != "$host" ]]; then
		echo "  (listening on $LISTEN: other machines use this machine's address)"
	fi
	echo "  Ctrl-C stops the feed, the server and the demo database."
	echo "$line"
	echo
}
banner

export KENDALI_URL=$URL KENDALI_KEY=$key
if ((fresh_db)) && [[ $BACKFILL_DAYS != 0 ]]; then
	say "posting $BACKFILL_DAYS days of history (first run on this database only)"
	"$PY" tools/demofeed.py --backfill-days "$BACKFILL_DAYS" --backfill-only &
	feed_pid=$!
	rc=0
	wait "$feed_pid" || rc=$?
	feed_pid=
	if ((rc != 0)); then
		say "the history was not fully posted (exit $rc); to post it by hand:"
		say "  KENDALI_URL=$URL KENDALI_KEY=\$(cat .run/demo.key) tools/demofeed.py --backfill-days $BACKFILL_DAYS --backfill-only"
	fi
	banner
fi

say "feeding live events: Semarang, and each regency with its own floods"
"$PY" tools/demofeed.py &
feed_pid=$!
for r in "${REGENCIES[@]}"; do
	IFS='|' read -r id _ scale first <<<"$r"
	KENDALI_KEY=${feed_key[$id]} "$PY" tools/demofeed.py --data "data/tenants/$id" \
		--scale "$scale" --flood-first "$first" --status-every 0 &
	feed_pids+=($!)
done

# Runs until Ctrl-C, or until the server or a feed stops by itself.
rc=0
wait -n "$server_pid" "$feed_pid" "${feed_pids[@]}" || rc=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
	tail -n 20 "$SERVER_LOG" >&2 || true
	say "the server stopped (exit $rc; log: $SERVER_LOG)"
	server_pid=
else
	say "the feed stopped (exit $rc)"
fi
exit 1
