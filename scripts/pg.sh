#!/usr/bin/env bash
# A private PostgreSQL cluster for kendali, kept under the project directory:
#
#   .run/pg/data   the cluster (initdb -A trust, superuser postgres, UTF8)
#   .run/pg/sock   its unix socket; it also listens on 127.0.0.1
#   .run/pg/log    the server log
#
#   scripts/pg.sh start    create it if missing, start it, create database
#                          kendali if missing, print its DATABASE_URL
#   scripts/pg.sh stop     stop it
#   scripts/pg.sh url      print its DATABASE_URL
#   scripts/pg.sh status   say whether it runs
#
# The port is PGPORT_KENDALI, else 55432.  KENDALI_PG_DIR puts the cluster
# (data, sock, log) in another directory instead of .run/pg, e.g. one per
# soak run (tests/soak/run.sh).  Authentication is "trust": any
# local user who can reach the socket or 127.0.0.1 is superuser.  It is a
# cluster for demos and development, not for production.
#
# PostgreSQL refuses to run as root.  As root, the cluster belongs to the
# unprivileged system user kendali-pg (created if missing), which must be able
# to traverse every directory down to the project.  Messages go to stderr; the
# URL alone goes to stdout.  Sourcing this file defines the pg_* functions.
set -euo pipefail

PG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PG_DIR=${KENDALI_PG_DIR:-$PG_ROOT/.run/pg}
[[ $PG_DIR == /* ]] || PG_DIR=$PWD/$PG_DIR
PG_PARENT=$(dirname "$PG_DIR") # made traversable for the cluster's owner
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/sock
PG_LOG=$PG_DIR/log
PG_OS_USER=kendali-pg
PG_DB=kendali

pg_say() { echo "pg: $*" >&2; }
pg_die() {
	echo "pg: error: $*" >&2
	exit 1
}

# The newest PostgreSQL server installed (Debian keeps them off PATH).
pg_bindir() {
	local d best=
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x $d/initdb && -x $d/pg_ctl ]] || continue
		if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n 1) == "$d" ]]; then
			best=$d
		fi
	done
	[[ -n $best ]] || pg_die "no PostgreSQL server in /usr/lib/postgresql/*/bin; run scripts/deps.sh"
	printf '%s\n' "$best"
}

pg_is_root() { ((EUID == 0)); }

# Runs a command as the cluster's owner, from a directory that owner can enter.
pg_as() {
	if pg_is_root; then
		(cd "$PG_DIR" && runuser -u "$PG_OS_USER" -- "$@")
	else
		(cd "$PG_DIR" && "$@")
	fi
}

pg_port() {
	if [[ -f $PG_DIR/port ]] && pg_running; then
		cat "$PG_DIR/port"
	else
		printf '%s\n' "${PGPORT_KENDALI:-55432}"
	fi
}

# Percent-encodes a string for a URL's query (keeps / and unreserved bytes).
pg_urlencode() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9/._~-]) out+=$c ;;
		*) printf -v c '%%%02X' "'$c" && out+=$c ;;
		esac
	done
	printf '%s' "$out"
}

pg_url() {
	printf 'postgresql://postgres@/%s?host=%s&port=%s\n' \
		"$PG_DB" "$(pg_urlencode "$PG_SOCK")" "$(pg_port)"
}

pg_running() {
	[[ -f $PG_DATA/PG_VERSION && -d $PG_DIR ]] || return 1
	pg_as "$(pg_bindir)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_ensure_os_user() {
	if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
		pg_say "creating system user $PG_OS_USER (PostgreSQL does not run as root)"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$PG_OS_USER"
	fi
}

# Fails clearly when kendali-pg cannot reach the directory above the
# cluster's parent (the project directory, for .run/pg).
pg_check_traversal() {
	local path=/ part top
	local -a parts
	top=$(dirname "$PG_PARENT")
	IFS=/ read -r -a parts <<<"${top#/}"
	for part in "" "${parts[@]}"; do
		[[ -n $part ]] && path=${path%/}/$part
		if ! runuser -u "$PG_OS_USER" -- test -x "$path"; then
			pg_die "user $PG_OS_USER cannot enter $path ($(stat -c '%A %U:%G' "$path")).
  PostgreSQL refuses to run as root, so the private cluster runs as $PG_OS_USER,
  which must be able to traverse every directory down to $top.
  Put the project where other users can reach it (e.g. under /srv or /opt),
  or point DATABASE_URL at a PostgreSQL of your own instead."
		fi
	done
}

pg_check_socket_path() {
	local port=$1 sock="$PG_SOCK/.s.PGSQL.$1"
	if ((${#sock} > 100)); then
		pg_die "the socket path $sock is too long for a unix socket (${#sock} > 100 bytes);
  move the project to a shorter path, or point DATABASE_URL at a PostgreSQL of your own."
	fi
}

pg_sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

pg_start() {
	local bin port
	bin=$(pg_bindir)
	if pg_is_root; then
		pg_ensure_os_user
		pg_check_traversal
		mkdir -p "$PG_DIR"
		chmod a+x "$PG_PARENT"
		if [[ $(stat -c %U "$PG_DIR") != "$PG_OS_USER" ]]; then
			chown -R "$PG_OS_USER:" "$PG_DIR"
		fi
	elif ! mkdir -p "$PG_DIR" || [[ ! -O $PG_DIR ]]; then
		pg_die "$PG_DIR belongs to $(stat -c %U "$PG_DIR"); run this as root (it was set up by root)"
	fi

	if pg_running; then
		port=$(cat "$PG_DIR/port" 2>/dev/null || echo "${PGPORT_KENDALI:-55432}")
		if [[ -n ${PGPORT_KENDALI:-} && $PGPORT_KENDALI != "$port" ]]; then
			pg_say "already running on port $port (PGPORT_KENDALI=$PGPORT_KENDALI applies at the next start)"
		else
			pg_say "already running on port $port"
		fi
	else
		port=${PGPORT_KENDALI:-55432}
		if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
			pg_die "PGPORT_KENDALI=$port is not a port number"
		fi
		pg_check_socket_path "$port"
		pg_as mkdir -p "$PG_SOCK"
		if [[ ! -f $PG_DATA/PG_VERSION ]]; then
			pg_say "creating the cluster in $PG_DATA"
			pg_as "$bin/initdb" -D "$PG_DATA" -A trust -U postgres --encoding=UTF8 \
				--locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || {
				tail -n 20 "$PG_DIR/initdb.log" >&2
				pg_die "initdb failed (see $PG_DIR/initdb.log)"
			}
			pg_as sh -c "echo \"include_if_exists = 'kendali.conf'\" >> \"\$1\"" sh \
				"$PG_DATA/postgresql.conf"
		fi
		# Settings that depend on where the project is and on the port.
		pg_as sh -c 'cat > "$1"' sh "$PG_DATA/kendali.conf" <<EOF
# Written by scripts/pg.sh at every start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = $(pg_sql_quote "$PG_SOCK")
EOF
		pg_say "starting PostgreSQL on port $port (log: $PG_LOG)"
		if ! pg_as "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null; then
			tail -n 20 "$PG_LOG" >&2 || true
			pg_die "PostgreSQL did not start (see $PG_LOG; if the port is taken, set PGPORT_KENDALI)"
		fi
		printf '%s\n' "$port" >"$PG_DIR/port"
	fi

	local exists
	exists=$(pg_as "$bin/psql" -X -q -h "$PG_SOCK" -p "$port" -U postgres -d postgres -tA \
		-c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
	if [[ $exists != 1 ]]; then
		pg_say "creating database $PG_DB"
		pg_as "$bin/createdb" -h "$PG_SOCK" -p "$port" -U postgres "$PG_DB"
	fi
	pg_url
}

pg_stop() {
	if pg_running; then
		pg_say "stopping PostgreSQL"
		pg_as "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
		rm -f "$PG_DIR/port"
	else
		pg_say "not running"
	fi
}

pg_status() {
	if pg_running; then
		pg_say "running on port $(pg_port), data in $PG_DATA"
	else
		pg_say "not running"
		return 3
	fi
}

pg_main() {
	case "${1:-}" in
	start) pg_start ;;
	stop) pg_stop ;;
	url) pg_url ;;
	status) pg_status ;;
	*)
		echo "usage: scripts/pg.sh start|stop|url|status" >&2
		exit 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	pg_main "$@"
fi
