#!/usr/bin/env bash
# tests/bench/ab.sh - is a change faster?  Runs two builds of the server in
# turns under the same load and prints each turn and the means.
#
#   tests/bench/ab.sh OLD_KENDALI NEW_KENDALI
#
# OLD_KENDALI and NEW_KENDALI are two kendali binaries, e.g. a release build
# of the commit before a change (git worktree add) and one of the change.
# Figures on a shared machine move by ±20 % from one run to the next, more
# than most changes; running the two in turns, several times, each on a
# fresh database (so that neither pays for the other's rows, e.g. open
# tickets piling up), is what lets a 10 % effect show.
#
# Per turn and binary: a new scratch database kendali_ab on the private
# PostgreSQL of scripts/pg.sh (or on the server of BENCH_AB_ADMIN_URL, a
# role that may create databases), `kendali migrate`, a key, a CHECKPOINT,
# the server on a free port, then loadgen: BENCH_WARMUP (2) s of warm-up and
# BENCH_DURATION (10) s measured.  Settings from the environment:
#
#   BENCH_AB_ROUNDS [4]     turns of each binary
#   BENCH_AB_MODE [single]  single: one event a request over 64 connections;
#                           batch: 500 events a request over 8
#   BENCH_TYPE [mix]        call, report or mix
#   LOADGEN                 the load generator (by default the one built
#                           beside NEW_KENDALI: BUILD/tests/bench/loadgen)
#
# Each line gives events/s, the acknowledgements' p99 and the server's CPU
# per event; the last two lines the means of each binary and their ratio.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
bench_prefix=ab
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

(($# == 2)) || die "usage: tests/bench/ab.sh OLD_KENDALI NEW_KENDALI"
bins=("$1" "$2")
names=(old new)
for b in "${bins[@]}"; do
	[[ -x $b ]] || die "$b is not an executable"
done
# By default the load generator of the new binary's build.
loadgen=${LOADGEN:-$(dirname "$2")/../tests/bench/loadgen}
[[ -x $loadgen ]] || die "no $loadgen; build it (ninja), or set LOADGEN"
rounds=${BENCH_AB_ROUNDS:-4}
mode=${BENCH_AB_MODE:-single}
duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
type=${BENCH_TYPE:-mix}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_AB_ROUNDS=$rounds is not a positive number"
case $mode in
single) load=(--connections 64 --batch 1) ;;
batch) load=(--connections 8 --batch 500) ;;
*) die "BENCH_AB_MODE=$mode: single or batch" ;;
esac
for v in duration warmup; do
	[[ ${!v} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_${v^^}=${!v} is not a number of seconds"
done

started_pg=0 server_pid='' made_db=0
bench_workdir ab
cleanup() {
	local rc=$?
	trap '' INT TERM
	trap - EXIT
	stop_pid "$server_pid"
	if ((made_db)); then
		psql_at "$admin_url" -c "DROP DATABASE IF EXISTS kendali_ab WITH (FORCE)" ||
			say "could not drop database kendali_ab"
	fi
	bench_release
	exit "$rc"
}
bench_traps cleanup

if [[ -n ${BENCH_AB_ADMIN_URL:-} ]]; then
	admin_url=$BENCH_AB_ADMIN_URL
else
	bench_private_pg
fi
db_url=$(printf '%s\n' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\\1kendali_ab#")

# One turn of binary $1 (index): prints "events/s p99 cpu-us-per-event".
# Run in this shell, not a subshell, so that cleanup sees its server.
turn() {
	local bin=${bins[$1]} port url c0 c1 eps p99
	psql_at "$admin_url" -c "DROP DATABASE IF EXISTS kendali_ab WITH (FORCE)" \
		-c "CREATE DATABASE kendali_ab"
	made_db=1
	DATABASE_URL=$db_url "$bin" migrate >>"$work/migrate.log" 2>&1 ||
		die "$bin migrate failed (log: $work/migrate.log)"
	KENDALI_KEY=$(DATABASE_URL=$db_url "$bin" key create --poster bench \
		--types call,report,sensor | tail -n 1)
	[[ $KENDALI_KEY == kd_*_* ]] || die "$bin key create printed no key"
	export KENDALI_KEY
	psql_at "$db_url" -c CHECKPOINT 2>/dev/null || true
	port=$(free_port)
	url=http://127.0.0.1:$port
	DATABASE_URL=$db_url "$bin" serve --listen "127.0.0.1:$port" \
		--log-level warn --rate-limit 0 >>"$work/server-${names[$1]}.log" 2>&1 &
	server_pid=$!
	wait_ready "$url" "$server_pid" "$work/server-${names[$1]}.log"
	c0=$(cpu_s "$server_pid")
	"$loadgen" --url "$url" --duration "$duration" --warmup "$warmup" \
		--type "$type" "${load[@]}" --json "$work/lg.json" >/dev/null
	c1=$(cpu_s "$server_pid")
	stop_pid "$server_pid"
	server_pid=
	eps=$(sed -nE 's/^  "events_per_s": ([0-9.]+),$/\1/p' "$work/lg.json")
	p99=$(sed -nE 's/^  "latency_p99_ms": ([0-9.]+),$/\1/p' "$work/lg.json")
	# The server's CPU over warm-up and window, per event of the window
	# scaled to the whole run.
	awk -v e="$eps" -v p="$p99" -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
		-v t="$(awk -v d="$duration" -v w="$warmup" 'BEGIN { print d + w }')" \
		'BEGIN { printf "%.1f %.3f %.1f\n", e, p, (e > 0 ? c * 1e6 / (e * t) : 0) }'
}

say "$mode, $rounds turns of each, ${duration} s measured each; old: ${bins[0]}; new: ${bins[1]}"
printf '%-5s %-4s %12s %10s %14s\n' turn "" events/s "p99 ms" "CPU us/event"
sum=(0 0) cpu=(0 0)
for r in $(seq "$rounds"); do
	for i in 0 1; do
		turn "$i" >"$work/turn"
		read -r eps p99 us <"$work/turn"
		printf '%-5s %-4s %12s %10s %14s\n' "$r" "${names[$i]}" "$eps" "$p99" "$us"
		sum[i]=$(awk -v a="${sum[i]}" -v b="$eps" 'BEGIN { print a + b }')
		cpu[i]=$(awk -v a="${cpu[i]}" -v b="$us" 'BEGIN { print a + b }')
	done
done
for i in 0 1; do
	awk -v n="${names[$i]}" -v s="${sum[i]}" -v c="${cpu[i]}" -v r="$rounds" \
		'BEGIN { printf "mean  %-4s %12.1f %10s %14.1f\n", n, s / r, "", c / r }'
done
awk -v a="${sum[0]}" -v b="${sum[1]}" -v c="${cpu[0]}" -v d="${cpu[1]}" \
	'BEGIN { printf "new/old     %12.3f %10s %14.3f\n", (a > 0 ? b / a : 0), "", (c > 0 ? d / c : 0) }'
