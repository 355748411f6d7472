# Shared by tests/bench/run.sh, restart.sh and ab.sh; sourced, not run;
# root is the tree's top.
#
#   bench_prefix=NAME     the word before the scripts' messages
#   say MSG / die MSG     a message on stderr / and exit 1
#   psql_at URL ARGS      psql without ~/.psqlrc, notices or a partial run
#   free_port             a port of 127.0.0.1 nothing answers on, below
#                         the ephemeral range
#   bench_workdir KIND    sets work (BENCH_OUT, else a new temporary
#                         directory) and keep_work
#   bench_private_pg      starts the private PostgreSQL of scripts/pg.sh
#                         when needed: sets admin_url and started_pg
#   bench_traps FN        FN on exit; INT and TERM exit 130 and 143
#   bench_release         the end of FN: stops the PostgreSQL started
#                         here, removes the work directory unless kept
#   stop_pid PID          SIGTERM, SIGKILL after 15 s, and wait
#                         (stop_child of scripts/lib.sh)
#   wait_ready URL PID LOG  until URL/readyz answers while PID lives
#   cpu_s PID / pg_cpu_s  CPU seconds of a process / of every local
#                         PostgreSQL process together

say() { echo "$bench_prefix: $*" >&2; }
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
stop_pid() { stop_child "$1" 15; }
die() {
	echo "$bench_prefix: error: $*" >&2
	exit 1
}

psql_at() {
	local url=$1
	shift
	PGOPTIONS=--client-min-messages=warning psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"
}

free_port() {
	# Below the ephemeral range: thousands of screens just closed leave
	# their client ports there, in use though nothing listens on them.
	local p low=32768
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
	((low > 11000)) || die "the ephemeral port range starts at $low: no room below it"
	for _ in $(seq 50); do
		p=$((10000 + RANDOM % (low - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "found no free port"
}

bench_workdir() {
	if [[ -n ${BENCH_OUT:-} ]]; then
		work=$BENCH_OUT
		mkdir -p "$work"
		keep_work=1
	else
		work=$(mktemp -d "${TMPDIR:-/tmp}/kendali-$1.XXXXXX")
		keep_work=0
	fi
}

bench_private_pg() {
	[[ -x $root/scripts/pg.sh ]] ||
		die "set DATABASE_URL (no scripts/pg.sh to start a PostgreSQL)"
	if ! "$root/scripts/pg.sh" status >/dev/null 2>&1; then
		started_pg=1
	fi
	admin_url=$("$root/scripts/pg.sh" start | tail -n 1)
	[[ $admin_url == postgres*://* ]] || die "scripts/pg.sh start printed no DATABASE_URL"
}

bench_traps() {
	# shellcheck disable=SC2064 # the function named now
	trap "$1" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

bench_release() {
	if ((started_pg)); then
		"$root/scripts/pg.sh" stop || true
	fi
	if ((keep_work)); then
		say "results kept in $work"
	else
		rm -rf "$work"
	fi
}


# Waits until $1/readyz answers 200 while process $2 lives (log $3).
wait_ready() {
	for _ in $(seq 300); do
		if ! kill -0 "$2" 2>/dev/null; then
			tail -n 20 "$3" >&2
			die "the server exited at start-up (log: $3)"
		fi
		if curl -sf -o /dev/null --max-time 2 "$1/readyz"; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$3" >&2
	die "the server was not ready after 30 s (log: $3)"
}

# CPU seconds (user + system) of a process, and of every local PostgreSQL
# process together.
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_cpu_s() {
	local p sum=0
	for p in $(pgrep -x postgres) $(pgrep '^postgres:' 2>/dev/null); do
		sum=$(awk -v a="$sum" -v b="$(cpu_s "$p")" 'BEGIN { printf "%.2f", a + b }')
	done
	echo "$sum"
}
