#!/usr/bin/env bash
# The benchmark suite: kendali's POST /api/v1/events against PostgreSQL's
# own bulk load of the same rows and against a plain reference stack
# (Node.js, pg, ws), then its screens (memory per idle screen, the time a
# push takes to reach them all, event-to-screen delay under load), in one
# run on one database.  See tests/bench/README.md.
#
#   DATABASE_URL=postgresql://... tests/bench/run.sh
#   tests/bench/run.sh          (no DATABASE_URL: uses scripts/pg.sh)
#
# Settings, from the environment (defaults in brackets):
#   BUILD_DIR [build], or KENDALI and LOADGEN: the two programs' paths
#   BENCH_DURATION [15]      seconds measured in each server run
#   BENCH_WARMUP [2]         seconds run before each, not measured
#   BENCH_CONNECTIONS [64]   connections of the single-event run
#   BENCH_BATCH [500]        events per request of the batch run, and rows
#                            per statement of the INSERT baseline
#   BENCH_BATCH_CONNECTIONS [8]  connections of the batch run
#   BENCH_TYPE [mix]         call, report or mix
#   BENCH_OUT                a directory to keep the results in (JSON)
#   BENCH_REFERENCE [1]      also run the reference stack (needs node, npm)
#   BENCH_SCREENS [1]        also run the screen simulator (needs node, npm)
#   BENCH_IDLE_SCREENS [10000]  idle screens held
#   BENCH_LOAD_SCREENS [1000]   screens during the load, of which
#   BENCH_STALLED [100]         never read
#   BENCH_LOAD_RATE [2000]      events/s of that load
#   BENCH_PUBLISH_MS [250]      the screens' server's --publish-ms
#
# The table is printed and written to .run/bench/<time>.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
build=${BUILD_DIR:-$root/build}
[[ $build == /* ]] || build=$root/$build
kendali=${KENDALI:-$build/server/kendali}
loadgen=${LOADGEN:-$build/tests/bench/loadgen}

duration=${BENCH_DURATION:-15}
warmup=${BENCH_WARMUP:-2}
conns_single=${BENCH_CONNECTIONS:-64}
batch=${BENCH_BATCH:-500}
conns_batch=${BENCH_BATCH_CONNECTIONS:-8}
type=${BENCH_TYPE:-mix}
with_reference=${BENCH_REFERENCE:-1}
with_screens=${BENCH_SCREENS:-1}
idle_screens=${BENCH_IDLE_SCREENS:-10000}
load_screens=${BENCH_LOAD_SCREENS:-1000}
stalled=${BENCH_STALLED:-100}
load_rate=${BENCH_LOAD_RATE:-2000}
publish_ms=${BENCH_PUBLISH_MS:-250}
scratch_db=kendali_bench

bench_prefix=bench
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

for v in duration warmup; do
	[[ ${!v} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_${v^^}=${!v} is not a number of seconds"
done
for v in conns_single batch conns_batch idle_screens load_screens load_rate publish_ms; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive integer"
done
[[ -x $kendali ]] || die "no $kendali; build first: ninja -C ${build#"$root"/}"
[[ -x $loadgen ]] || die "no $loadgen; build first: ninja -C ${build#"$root"/} (tests/meson.build must have subdir('bench'))"
for tool in psql curl awk; do
	command -v "$tool" >/dev/null || die "$tool is needed and not on PATH"
done

bench_workdir bench

server_pid=
ref_pid=
started_pg=0
made_db=0
admin_url=
key_id=

psql_q() { psql_at "$DATABASE_URL" "$@"; }

cleanup() {
	local rc=$?
	trap '' INT TERM
	trap - EXIT
	stop_pid "$server_pid"
	server_pid=
	stop_pid "$ref_pid"
	ref_pid=
	if ((made_db)); then
		psql_at "$admin_url" -c "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" ||
			say "could not drop database $scratch_db"
	elif [[ -n ${DATABASE_URL:-} ]]; then
		psql_q -c "DROP TABLE IF EXISTS bench_copy, bench_copy_idx, bench_insert, ref_events" 2>/dev/null || true
		if [[ -n $key_id ]]; then
			"$kendali" key revoke "$key_id" >/dev/null 2>&1 ||
				say "could not revoke the benchmark's key $key_id"
		fi
	fi
	bench_release
	exit "$rc"
}
bench_traps cleanup

# ---- the database ----

if [[ -z ${DATABASE_URL:-} ]]; then
	bench_private_pg
	# A database of its own, so that the benchmark's events never land
	# among the development data; it is dropped at the end.
	DATABASE_URL=$(printf '%s\n' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\\1$scratch_db#")
	psql_at "$admin_url" \
		-c "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" \
		-c "CREATE DATABASE $scratch_db"
	made_db=1
	say "using a scratch database $scratch_db on the private PostgreSQL"
else
	say "using DATABASE_URL from the environment (its events table gets the benchmark's events)"
fi
export DATABASE_URL

"$kendali" migrate >&2
key=$("$kendali" key create --poster bench --types call,report,sensor | tail -n 1)
[[ $key == kd_*_* ]] || die "kendali key create printed no key"
key_id=${key#kd_}
key_id=${key_id%%_*}
export KENDALI_KEY=$key

# ---- the server ----

# Starts kendali with extra options on a new port: sets port, url, server_pid.
start_server() {
	port=$(free_port)
	url=http://127.0.0.1:$port
	say "starting the server on 127.0.0.1:$port $*"
	"$kendali" serve --listen "127.0.0.1:$port" --log-level warn --rate-limit 0 "$@" \
		>>"$work/server.log" 2>&1 &
	server_pid=$!
	wait_ready "$url" "$server_pid" "$work/server.log"
}

# Node.js and the npm packages of tests/bench, installed when missing.
node_ready() {
	command -v node >/dev/null && command -v npm >/dev/null || {
		say "node and npm are needed for $1 (scripts/deps.sh --browser installs them); skipped"
		return 1
	}
	if [[ ! -d $here/node_modules/ws || ! -d $here/node_modules/pg ]]; then
		say "installing the npm packages of tests/bench"
		npm ci --prefix "$here" --no-audit --no-fund >&2 || {
			say "npm ci failed; $1 skipped"
			return 1
		}
	fi
}

# ---- the screens ----

# First, on a server fresh on a fresh database, so that its memory counts
# only what the screens add (memory freed by earlier runs would be reused
# and hide it); it lets screens in without a token and any number of them.
ran_screens=0
if ((with_screens)) && node_ready "the screen simulator"; then
	need=$((idle_screens > load_screens ? idle_screens : load_screens))
	if (($(ulimit -n) < need + 100)); then
		ulimit -n $((need + 100)) 2>/dev/null || {
			say "open files are limited to $(ulimit -n); holding $need screens needs $((need + 100)) (ulimit -n); screens skipped"
			with_screens=0
		}
	fi
fi
if ((with_screens)) && node_ready "the screen simulator"; then
	probe_key=$("$kendali" key create --poster bench-screens --types sensor | tail -n 1)
	start_server --anonymous-loopback --max-conns-per-ip 0 --publish-ms "$publish_ms"
	say "screens: $idle_screens idle"
	node "$here/screens.js" idle --url "$url" --key "$probe_key" --screens "$idle_screens" \
		--pushes 20 --server-pid "$server_pid" --json "$work/screens-idle.json"
	say "screens: $load_screens ($stalled never reading) while loadgen posts $load_rate events/s"
	rm -f "$work/screens.ready"
	node "$here/screens.js" load --url "$url" --key "$probe_key" --screens "$load_screens" \
		--stalled "$stalled" --settle 3 --duration 30 --ready-file "$work/screens.ready" \
		--server-pid "$server_pid" --json "$work/screens-load.json" &
	sim_pid=$!
	for _ in $(seq 600); do
		[[ -e $work/screens.ready ]] && break
		kill -0 "$sim_pid" 2>/dev/null || break
		sleep 0.1
	done
	"$loadgen" --url "$url" --rate "$load_rate" --duration 35 --warmup 2 --type "$type" \
		--json "$work/screens-load-lg.json" || say "loadgen under the screens failed"
	wait "$sim_pid" || say "the screen simulator failed"
	ran_screens=1
	stop_pid "$server_pid"
	server_pid=
fi

# ---- the ingest runs ----

start_server

# A checkpoint before each timed part, so that none pays for the previous
# part's dirty pages (needs superuser or pg_checkpoint; skipped otherwise).
checkpoint() {
	psql_q -c CHECKPOINT 2>/dev/null ||
		say "CHECKPOINT not allowed for this role; timings may include one"
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo -; }

# Runs loadgen against $url (process $pid) and keeps, beside its JSON, the
# server's and PostgreSQL's CPU share during the run and the server's RSS
# after it.
run_loadgen() {
	local name=$1 pid=$2 c0 p0 t0 c1 p1 t1
	shift 2
	checkpoint
	say "run $name: $*"
	c0=$(cpu_s "$pid") p0=$(pg_cpu_s) t0=$(date +%s.%N)
	"$loadgen" --url "$url" --duration "$duration" --warmup "$warmup" \
		--type "$type" --json "$work/$name.json" "$@"
	c1=$(cpu_s "$pid") p1=$(pg_cpu_s) t1=$(date +%s.%N)
	awk -v c0="$c0" -v c1="$c1" -v p0="$p0" -v p1="$p1" -v t0="$t0" -v t1="$t1" -v rss="$(rss_mib "$pid")" \
		'BEGIN { printf "%.0f%% %.0f%% %s\n", 100 * (c1 - c0) / (t1 - t0), 100 * (p1 - p0) / (t1 - t0), rss }' \
		>"$work/$name.cpu"
	echo
}
# The server's CPU share, PostgreSQL's and the server's RSS of a run.
cpu_of() { cat "$work/$1.cpu" 2>/dev/null || echo "- - -"; }

# A member of loadgen's JSON (one member a line).
jget() { sed -nE "s/^  \"$2\": \"?([^\",]*)\"?,?$/\\1/p" "$work/$1.json" 2>/dev/null; }

run_loadgen single "$server_pid" --connections "$conns_single" --batch 1
run_loadgen batch "$server_pid" --connections "$conns_batch" --batch "$batch"

# Every acknowledged event must be in the table: a 202 means committed.
for run in single batch; do
	acked=$(jget "$run" total_events_acked)
	stored=$(psql_q -tA -c "SELECT count(*) FROM events
		WHERE poster = 'bench' AND event_id LIKE '$(jget "$run" run)-%'")
	if ((stored < acked)); then
		die "run $run: $acked events acknowledged but only $stored stored"
	fi
done

# ---- the reference stack ----

ran_reference=0
if ((with_reference)) && node_ready "the reference stack"; then
	ref_port=$(free_port)
	kendali_url=$url
	url=http://127.0.0.1:$ref_port
	say "starting the reference stack on 127.0.0.1:$ref_port"
	REF_KEY=$key node "$here/reference/server.js" --listen "127.0.0.1:$ref_port" --reset \
		>"$work/reference.log" 2>&1 &
	ref_pid=$!
	wait_ready "$url" "$ref_pid" "$work/reference.log"
	run_loadgen ref-single "$ref_pid" --connections "$conns_single" --batch 1
	run_loadgen ref-batch "$ref_pid" --connections "$conns_batch" --batch "$batch"
	stop_pid "$ref_pid"
	ref_pid=
	psql_q -c "DROP TABLE IF EXISTS ref_events"
	url=$kendali_url
	ran_reference=1
fi

# ---- the baselines ----

# As many rows as the larger server run stored in its measured window, of
# the same shape: per four events, one call received, answered and closed,
# and one report received.
n=$(jget single events_acked)
nb=$(jget batch events_acked)
((nb > n)) && n=$nb
((n >= 1000)) || n=1000
now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)

gen_rows() {
	awk -v n="$n" -v now="$now" -v mode="$1" -v per="$batch" '
	BEGIN {
		split("emergency fire medical police disaster complaint info other", cc, " ")
		split("flood road drainage waste streetlight traffic public_order health administration other", rc, " ")
		split("Banyumanik|Candisari|Gajahmungkur|Gayamsari|Genuk|Gunungpati|Mijen|Ngaliyan|Pedurungan|Semarang Barat|Semarang Selatan|Semarang Tengah|Semarang Timur|Semarang Utara|Tembalang|Tugu", d, "|")
		split("received answered closed", cs, " ")
		split("0 1 3", rank, " ")
		cols = "(tenant, poster, event_id, type, occurred_at, subject, status, rank, category, district, title, lat, lon)"
		for (i = 0; i < n; i++) {
			r = i % 4; g = int(i / 4)
			lat = sprintf("%.4f", -7.10 + (g * 7919 % 1700) / 10000)
			lon = sprintf("%.4f", 110.30 + (g * 104729 % 2000) / 10000)
			if (r < 3) {
				f[1] = "call"; f[2] = "c" g; f[3] = cs[r + 1]; f[4] = rank[r + 1]
				f[5] = r == 0 ? cc[g % 8 + 1] : ""
				f[6] = r == 0 ? d[g % 16 + 1] : ""
				f[7] = ""
				if (r) { lat = ""; lon = "" }
			} else {
				f[1] = "report"; f[2] = "r" g; f[3] = "received"; f[4] = 0
				f[5] = rc[g % 10 + 1]; f[6] = d[g % 16 + 1]
				f[7] = "Laporan warga " g
			}
			if (mode == "copy") {
				printf "semarang\tbench-copy\tbc-%d\t%s\t%s\tbc-%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
					i, f[1], now, f[2], f[3], f[4],
					nul(f[5]), nul(f[6]), nul(f[7]), nul(lat), nul(lon)
			} else {
				if (i % per == 0)
					printf "INSERT INTO bench_insert %s VALUES\n", cols
				printf "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)%s\n",
					"'\''semarang'\''", "'\''bench-copy'\''", q("bc-" i), q(f[1]),
					q(now), q("bc-" f[2]), q(f[3]), f[4], q(f[5]), q(f[6]),
					q(f[7]), (lat == "" ? "NULL" : lat), (lon == "" ? "NULL" : lon),
					(i % per == per - 1 || i == n - 1) ? ";" : ","
			}
		}
	}
	function nul(s) { return s == "" ? "\\N" : s }
	function q(s) { return s == "" ? "NULL" : "'\''" s "'\''" }'
}

say "baselines: $n rows each"
gen_rows copy >"$work/rows.tsv"
gen_rows insert >"$work/insert.sql"

cols="tenant, poster, event_id, type, occurred_at, subject, status, rank, category, district, title, lat, lon"
psql_q <<EOF
DROP TABLE IF EXISTS bench_copy, bench_copy_idx, bench_insert;
CREATE TABLE bench_copy (LIKE events INCLUDING DEFAULTS);
CREATE TABLE bench_copy_idx (LIKE events INCLUDING ALL);
CREATE TABLE bench_insert (LIKE events INCLUDING DEFAULTS);
EOF
checkpoint

# psql's \timing gives each statement's time as its client sees it, without
# psql's start-up and connection; the sum covers every statement.
timed_ms() { psql_q | awk '/^Time: / { s += $2 } END { printf "%.3f\n", s }'; }

copy_ms=$(printf '\\timing on\n\\copy bench_copy (%s) FROM %s\n' "$cols" "'$work/rows.tsv'" | timed_ms)
idx_ms=$(printf '\\timing on\n\\copy bench_copy_idx (%s) FROM %s\n' "$cols" "'$work/rows.tsv'" | timed_ms)
insert_ms=$({
	printf '\\timing on\n'
	cat "$work/insert.sql"
} | timed_ms)

for t in bench_copy bench_copy_idx bench_insert; do
	got=$(psql_q -tA -c "SELECT count(*) FROM $t")
	((got == n)) || die "$t holds $got rows, not $n"
done
psql_q -c "DROP TABLE bench_copy, bench_copy_idx, bench_insert"

# ---- the table ----

rate() { awk -v n="$n" -v ms="$1" 'BEGIN { printf "%.1f", (ms > 0 ? n * 1000 / ms : 0) }'; }
copy_eps=$(rate "$copy_ms")

idx_eps=$(rate "$idx_ms")
row() {
	# name events/s p50 p99 [server-cpu pg-cpu rss]
	awk -v name="$1" -v eps="$2" -v p50="$3" -v p99="$4" -v base="$copy_eps" -v ibase="$idx_eps" \
		-v cpu="${5:--}" -v pcpu="${6:--}" -v rss="${7:--}" 'BEGIN {
		printf "%-44s %10.1f %8s %8s %7.3f %7.3f %6s %6s %7s\n", name, eps, p50, p99,
			(base > 0 ? eps / base : 0), (ibase > 0 ? eps / ibase : 0), cpu, pcpu, rss }'
}
run_row() {
	# name run
	# shellcheck disable=SC2046
	row "$1" "$(jget "$2" events_per_s)" "$(jget "$2" latency_p50_ms)" "$(jget "$2" latency_p99_ms)" \
		$(cpu_of "$2")
}

table() {
	echo "kendali benchmark, $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs, $(uname -r)"
	echo "ingest: $type events, ${duration} s measured per run; baselines $n rows; CPU: share of one core during the run"
	printf '%-44s %10s %8s %8s %7s %7s %6s %6s %7s\n' "" "events/s" "p50 ms" "p99 ms" "vs COPY" "vs COPY" \
		"server" "PG" "server"
	printf '%-44s %10s %8s %8s %7s %7s %6s %6s %7s\n' "" "" "" "" "" "indexed" "CPU" "CPU" "RSS MiB"
	run_row "kendali: 1 event/request, $conns_single connections" single
	run_row "kendali: $batch events/request, $conns_batch connections" batch
	if ((ran_reference)); then
		run_row "reference: 1 event/request, $conns_single connections" ref-single
		run_row "reference: $batch events/request, $conns_batch conn." ref-batch
	fi
	row "COPY, one transaction (no indexes)" "$copy_eps" - -
	row "COPY, one transaction (the events indexes)" "$idx_eps" - -
	row "INSERT, $batch rows a statement (autocommit)" "$(rate "$insert_ms")" - -
	if ((ran_screens)); then
		echo
		echo "screens (kendali, --publish-ms $publish_ms)"
		printf '  %-56s %s\n' "$idle_screens idle screens: server memory per screen" \
			"$(jget screens-idle kib_per_connection) KiB"
		printf '  %-56s %s / %s / %s ms\n' "a push reaches every screen, p50 / p99 / max" \
			"$(jget screens-idle reach_all_p50_ms)" "$(jget screens-idle reach_all_p99_ms)" \
			"$(jget screens-idle reach_all_max_ms)"
		printf '  %-56s %s ms\n' "first to last screen of a push, p50" "$(jget screens-idle spread_p50_ms)"
		printf '  %-56s %s ms\n' "  the server's own fan-out to them all, mean" \
			"$(jget screens-idle server_fan_out_mean_ms)"
		printf '  %-56s %s / %s / %s ms\n' \
			"event-to-screen at $load_rate ev/s, $load_screens screens ($stalled stalled)" \
			"$(jget screens-load delay_p50_ms)" "$(jget screens-load delay_p99_ms)" \
			"$(jget screens-load delay_max_ms)"
		printf '  %-56s %s events/s, ack p99 %s ms\n' "  the load meanwhile" \
			"$(jget screens-load-lg events_per_s)" "$(jget screens-load-lg latency_p99_ms)"
		printf '  %-56s %s missing, %s seq gaps\n' "  deliveries to reading screens" \
			"$(jget screens-load missing)" "$(jget screens-load seq_gaps)"
	fi
}

echo
mkdir -p "$root/.run/bench"
result=$root/.run/bench/$(date -u +%Y%m%dT%H%M%SZ).txt
table | tee "$result"
say "table written to ${result#"$root"/}"
for run in single batch; do
	errs=$(jget "$run" total_errors)
	if ((errs > 0)); then
		echo "note: run $run had $errs errors (see its summary above)"
	fi
done
