#!/usr/bin/env bash
# tests/bench/tenants.sh - does a tenant cost anything?  One server serving
# TENANTS_N tenants (35: Central Java's regencies and cities), each with 17
# gauges, against the same server serving one, in one run on one PostgreSQL:
#
#   start-up     from exec to GET /readyz answering 200, and the server's own
#                "state rebuilt in" figure;
#   memory       the server's RSS once ready, and per tenant beyond the first;
#   under load   BENCH_LOAD_RATE events/s, each loadgen connection posting
#                with the next tenant's key in turn, for BENCH_DURATION s,
#                while BENCH_SCREENS screens watch, spread over the tenants:
#                those of the first tenant (BENCH_SCREENS / TENANTS_N) are the
#                screen simulator's (screens.js load, probing with a gauge of
#                that tenant), the others bystanders (hold.js), each with the
#                next tenant's screen token in turn.  Measured: the server's
#                CPU per event acknowledged, the acknowledgements' p99, and
#                event-to-screen p50 and p99 on the simulator's screens.
#
# The one-tenant run has the same screens and the same load, all in its one
# tenant.  The last line gives the ratios of the two.
#
#   tests/bench/tenants.sh          (no DATABASE_URL: uses scripts/pg.sh)
#
# Settings, from the environment (defaults in brackets):
#   BUILD_DIR [build], or KENDALI and LOADGEN: the programs' paths
#   TENANTS_N [35]          tenants of the many-tenant run
#   TENANT_GAUGES [17]      gauges per tenant
#   BENCH_SCREENS [1000]    screens watching, in all
#   BENCH_LOAD_RATE [2000]  events/s posted, in all
#   BENCH_DURATION [30]     seconds measured under load
#   BENCH_OUT               a directory to keep the results in
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
build=${BUILD_DIR:-$root/build}
[[ $build == /* ]] || build=$root/$build
kendali=${KENDALI:-$build/server/kendali}
loadgen=${LOADGEN:-$build/tests/bench/loadgen}
many=${TENANTS_N:-35}
gauges=${TENANT_GAUGES:-17}
screens=${BENCH_SCREENS:-1000}
rate=${BENCH_LOAD_RATE:-2000}
duration=${BENCH_DURATION:-30}

bench_prefix=tenants
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

for v in many gauges screens rate duration; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive integer"
done
((many >= 2 && many <= 200)) || die "TENANTS_N=$many: 2 to 200"
((screens >= many)) || die "BENCH_SCREENS=$screens: at least one a tenant"
[[ -x $kendali ]] || die "no $kendali; build first: ninja -C ${build#"$root"/}"
[[ -x $loadgen ]] || die "no $loadgen; build first"
command -v node >/dev/null || die "node is needed (scripts/deps.sh --browser)"
if [[ ! -d $here/node_modules/ws ]]; then
	say "installing the npm packages of tests/bench"
	npm ci --prefix "$here" --no-audit --no-fund >&2
fi
if (($(ulimit -n) < screens + 200)); then
	ulimit -n $((screens + 200)) || die "holding $screens screens needs ulimit -n $((screens + 200))"
fi

bench_workdir tenants
server_pid=
hold_pid=
sim_pid=
started_pg=0
admin_url=
db_url=

cleanup() {
	local rc=$?
	trap '' INT TERM
	trap - EXIT
	for pid in "$sim_pid" "$hold_pid" "$server_pid"; do
		[[ -n $pid ]] && stop_pid "$pid"
	done
	if [[ -n $admin_url ]]; then
		psql_at "$admin_url" -c "DROP DATABASE IF EXISTS kendali_tenants WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	bench_release
	exit "$rc"
}
bench_traps cleanup

if [[ -n ${DATABASE_URL:-} ]]; then
	admin_url=$DATABASE_URL
else
	bench_private_pg
fi
db_url=$(printf '%s\n' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\\1kendali_tenants#")

# A fresh database of n tenants (semarang, then t02, t03, ...), each with
# its gauges, an agency key and a wall token: keys in $work/keys-n, tokens
# in $work/tokens-n, one a line, the first tenant's first.
make_db() {
	local n=$1 t
	psql_at "$admin_url" -c "DROP DATABASE IF EXISTS kendali_tenants WITH (FORCE)" \
		-c "CREATE DATABASE kendali_tenants" >/dev/null
	DATABASE_URL=$db_url "$kendali" migrate >/dev/null 2>&1
	: >"$work/keys-$n"
	: >"$work/tokens-$n"
	for ((i = 1; i <= n; i++)); do
		if ((i == 1)); then
			t=semarang
		else
			t=$(printf 't%02d' "$i")
			DATABASE_URL=$db_url "$kendali" tenant create "$t" --name "Kabupaten Bench $i" \
				--head Bupati >/dev/null
		fi
		psql_at "$db_url" -c "INSERT INTO sensors (tenant, sensor_id, name, metric, unit,
			siaga, awas, offline_after_s) SELECT '$t', 'G-' || g, 'Gauge ' || g,
			'water_level', 'cm', 300, 400, 900 FROM generate_series(1, $gauges) g" >/dev/null
		DATABASE_URL=$db_url "$kendali" key create --tenant "$t" --poster bench \
			--types call,report,sensor | tail -n 1 >>"$work/keys-$n"
		DATABASE_URL=$db_url "$kendali" token create --tenant "$t" --name wall \
			--role wall | tail -n 1 >>"$work/tokens-$n"
	done
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# One configuration: n tenants.  Writes $work/result-n:
# start_s rebuilt_s rss_kib cpu_us_per_event ack_p99_ms screen_p50_ms screen_p99_ms events_per_s
run_config() {
	local n=$1 port url t0 t1 c0 c1 sim_screens keys=() rebuilt
	make_db "$n"
	mapfile -t keys <"$work/keys-$n"
	port=$(free_port)
	url=http://127.0.0.1:$port
	say "$n tenant(s): starting the server"
	t0=$EPOCHREALTIME
	DATABASE_URL=$db_url "$kendali" serve --listen "127.0.0.1:$port" --rate-limit 0 \
		--max-conns-per-ip 0 >"$work/server-$n.log" 2>&1 &
	server_pid=$!
	wait_ready "$url" "$server_pid" "$work/server-$n.log"
	t1=$EPOCHREALTIME
	rebuilt=$(sed -nE 's/.*state rebuilt in ([0-9.]+) s.*/\1/p' "$work/server-$n.log" | head -n 1)
	sleep 1
	local rss
	rss=$(rss_kib "$server_pid")

	# The simulator's screens are the first tenant's share; the others
	# watch the other tenants (or, with one tenant, the same one).
	sim_screens=$((screens / many))
	if ((n == 1)); then
		cp "$work/tokens-1" "$work/bystanders-1"
	else
		tail -n +2 "$work/tokens-$n" >"$work/bystanders-$n"
	fi
	rm -f "$work/hold.ready" "$work/sim.ready"
	node "$here/hold.js" --url "$url" --tokens "$work/bystanders-$n" \
		--screens $((screens - sim_screens)) --ready-file "$work/hold.ready" \
		>"$work/hold-$n.json" &
	hold_pid=$!
	for _ in $(seq 600); do
		[[ -e $work/hold.ready ]] && break
		sleep 0.1
	done
	node "$here/screens.js" load --url "$url" --key "${keys[0]}" \
		--token "$(head -n 1 "$work/tokens-$n")" --screens "$sim_screens" --settle 2 \
		--duration "$duration" --ready-file "$work/sim.ready" --server-pid "$server_pid" \
		--json "$work/screens-$n.json" >"$work/screens-$n.txt" &
	sim_pid=$!
	for _ in $(seq 600); do
		[[ -e $work/sim.ready ]] && break
		kill -0 "$sim_pid" 2>/dev/null || die "the screen simulator stopped ($work/screens-$n.txt)"
		sleep 0.1
	done
	local args=()
	for k in "${keys[@]}"; do
		args+=(--key "$k")
	done
	say "$n tenant(s): $(cat "$work/hold.ready") bystanders, $sim_screens simulated screens, $rate events/s for $duration s"
	sleep 2
	c0=$(cpu_s "$server_pid")
	"$loadgen" --url "$url" --rate "$rate" --duration "$duration" --warmup 0 \
		--connections $((2 * many)) --type mix --json "$work/load-$n.json" "${args[@]}" \
		>"$work/load-$n.txt" 2>&1 || say "loadgen failed ($work/load-$n.txt)"
	c1=$(cpu_s "$server_pid")
	wait "$sim_pid" || say "the screen simulator failed ($work/screens-$n.txt)"
	sim_pid=
	stop_pid "$hold_pid"
	hold_pid=
	stop_pid "$server_pid"
	server_pid=
	local acked p99 sp50 sp99 eps
	acked=$(sed -nE 's/^  "events_acked": ([0-9]+),/\1/p' "$work/load-$n.json")
	p99=$(sed -nE 's/^  "latency_p99_ms": ([0-9.]+),/\1/p' "$work/load-$n.json")
	eps=$(sed -nE 's/^  "events_per_s": ([0-9.]+),/\1/p' "$work/load-$n.json")
	sp50=$(node -e 'const j=require(process.argv[1]); console.log(j.delay_p50_ms)' "$work/screens-$n.json")
	sp99=$(node -e 'const j=require(process.argv[1]); console.log(j.delay_p99_ms)' "$work/screens-$n.json")
	awk -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v r="${rebuilt:-0}" \
		-v rss="$rss" -v c0="$c0" -v c1="$c1" -v n="${acked:-0}" -v p99="${p99:-0}" \
		-v sp50="${sp50:-0}" -v sp99="${sp99:-0}" -v eps="${eps:-0}" \
		'BEGIN { printf "%.3f %.3f %d %.1f %.1f %.1f %.1f %.0f\n", s, r, rss,
			n ? 1e6 * (c1 - c0) / n : 0, p99, sp50, sp99, eps }' >"$work/result-$n"
}

run_config 1
run_config "$many"

read -r s1 r1 m1 c1 a1 q1 p1 e1 <"$work/result-1"
read -r sn rn mn cn an qn pn en <"$work/result-$many"
{
	printf '%-9s %9s %10s %9s %10s %9s %9s %9s %9s\n' tenants "start s" "rebuilt s" "RSS MiB" \
		"events/s" "CPU us/ev" "ack p99" "scr p50" "scr p99"
	for row in "1 $s1 $r1 $m1 $e1 $c1 $a1 $q1 $p1" "$many $sn $rn $mn $en $cn $an $qn $pn"; do
		read -r t s r m e c a q p <<<"$row"
		printf '%-9s %9.3f %10.3f %9.1f %10.0f %9.1f %9.1f %9.1f %9.1f\n' \
			"$t" "$s" "$r" "$(awk -v m="$m" 'BEGIN { print m / 1024 }')" "$e" "$c" "$a" "$q" "$p"
	done
	awk -v m1="$m1" -v mn="$mn" -v n="$many" -v c1="$c1" -v cn="$cn" -v p1="$p1" -v pn="$pn" \
		'BEGIN { printf "memory per tenant beyond the first: %.0f KiB; CPU per event x%.2f; screen p99 x%.2f\n",
			(mn - m1) / (n - 1), c1 ? cn / c1 : 0, p1 ? pn / p1 : 0 }'
} | tee "$work/tenants.txt"
