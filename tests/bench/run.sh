#!/usr/bin/env bash
# Ingest benchmark: kendali's POST /api/v1/events against PostgreSQL's own
# bulk load on the same database, in one run.  See tests/bench/README.md.
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
scratch_db=kendali_bench

say() { echo "bench: $*" >&2; }
die() {
	echo "bench: error: $*" >&2
	exit 1
}

for v in duration warmup; do
	[[ ${!v} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_${v^^}=${!v} is not a number of seconds"
done
for v in conns_single batch conns_batch; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive integer"
done
[[ -x $kendali ]] || die "no $kendali; build first: ninja -C ${build#"$root"/}"
[[ -x $loadgen ]] || die "no $loadgen; build first: ninja -C ${build#"$root"/} (tests/meson.build must have subdir('bench'))"
for tool in psql curl awk; do
	command -v "$tool" >/dev/null || die "$tool is needed and not on PATH"
done

if [[ -n ${BENCH_OUT:-} ]]; then
	work=$BENCH_OUT
	mkdir -p "$work"
	keep_work=1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/kendali-bench.XXXXXX")
	keep_work=0
fi

server_pid=
started_pg=0
made_db=0
admin_url=
key_id=

# psql without ~/.psqlrc and without notices ("does not exist, skipping").
psql_at() {
	local url=$1
	shift
	PGOPTIONS=--client-min-messages=warning psql "$url" -X -q -v ON_ERROR_STOP=1 "$@"
}
psql_q() { psql_at "$DATABASE_URL" "$@"; }

cleanup() {
	local rc=$?
	trap '' INT TERM
	trap - EXIT
	if [[ -n $server_pid ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 150); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$server_pid" 2>/dev/null; then
			say "the server did not stop in 15 s; killing it"
			kill -KILL "$server_pid" 2>/dev/null || true
		fi
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
	if ((made_db)); then
		psql_at "$admin_url" -c "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" ||
			say "could not drop database $scratch_db"
	elif [[ -n ${DATABASE_URL:-} ]]; then
		psql_q -c "DROP TABLE IF EXISTS bench_copy, bench_copy_idx, bench_insert" 2>/dev/null || true
		if [[ -n $key_id ]]; then
			"$kendali" key revoke "$key_id" >/dev/null 2>&1 ||
				say "could not revoke the benchmark's key $key_id"
		fi
	fi
	if ((started_pg)); then
		"$root/scripts/pg.sh" stop || true
	fi
	if ((keep_work)); then
		say "results kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the database ----

if [[ -z ${DATABASE_URL:-} ]]; then
	[[ -x $root/scripts/pg.sh ]] ||
		die "set DATABASE_URL to a database migrated by 'kendali migrate' (no scripts/pg.sh to start one)"
	if ! "$root/scripts/pg.sh" status >/dev/null 2>&1; then
		started_pg=1
	fi
	admin_url=$("$root/scripts/pg.sh" start | tail -n 1)
	[[ $admin_url == postgres*://* ]] || die "scripts/pg.sh start printed no DATABASE_URL"
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

# A free port: one that nothing answers on.
port=
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 40000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[[ -n $port ]] || die "found no free port"
url=http://127.0.0.1:$port

say "starting the server on 127.0.0.1:$port"
"$kendali" serve --listen "127.0.0.1:$port" --log-level warn --rate-limit 0 >"$work/server.log" 2>&1 &
server_pid=$!
ready=0
for _ in $(seq 300); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		tail -n 20 "$work/server.log" >&2
		server_pid=
		die "the server exited at start-up"
	fi
	if curl -sf -o /dev/null --max-time 2 "$url/readyz"; then
		ready=1
		break
	fi
	sleep 0.1
done
((ready)) || {
	tail -n 20 "$work/server.log" >&2
	die "the server was not ready after 30 s"
}

# ---- the server runs ----

# A checkpoint before each timed part, so that none pays for the previous
# part's dirty pages (needs superuser or pg_checkpoint; skipped otherwise).
checkpoint() {
	psql_q -c CHECKPOINT 2>/dev/null ||
		say "CHECKPOINT not allowed for this role; timings may include one"
}

run_loadgen() {
	local name=$1
	shift
	checkpoint
	say "run $name: $*"
	"$loadgen" --url "$url" --duration "$duration" --warmup "$warmup" \
		--type "$type" --json "$work/$name.json" "$@"
	echo
}

# A member of loadgen's JSON (one member a line).
jget() { sed -nE "s/^  \"$2\": \"?([^\",]*)\"?,?$/\\1/p" "$work/$1.json"; }

run_loadgen single --connections "$conns_single" --batch 1
run_loadgen batch --connections "$conns_batch" --batch "$batch"

# Every acknowledged event must be in the table: a 202 means committed.
for run in single batch; do
	acked=$(jget "$run" total_events_acked)
	stored=$(psql_q -tA -c "SELECT count(*) FROM events
		WHERE poster = 'bench' AND event_id LIKE '$(jget "$run" run)-%'")
	if ((stored < acked)); then
		die "run $run: $acked events acknowledged but only $stored stored"
	fi
done

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

row() {
	# name events/s p50 p99
	awk -v name="$1" -v eps="$2" -v p50="$3" -v p99="$4" -v base="$copy_eps" 'BEGIN {
		printf "%-46s %12.1f %9s %9s %8.3f\n", name, eps, p50, p99,
			(base > 0 ? eps / base : 0) }'
}

echo
echo "kendali ingest benchmark: $type events, ${duration} s measured per server run; baselines $n rows"
printf '%-46s %12s %9s %9s %8s\n' "" "events/s" "p50 ms" "p99 ms" "vs COPY"
row "server: 1 event/request, $conns_single connections" \
	"$(jget single events_per_s)" "$(jget single latency_p50_ms)" "$(jget single latency_p99_ms)"
row "server: $batch events/request, $conns_batch connections" \
	"$(jget batch events_per_s)" "$(jget batch latency_p50_ms)" "$(jget batch latency_p99_ms)"
row "COPY, one transaction (no indexes)" "$copy_eps" - -
row "COPY, one transaction (the events indexes)" "$(rate "$idx_ms")" - -
row "INSERT, $batch rows a statement (autocommit)" "$(rate "$insert_ms")" - -
for run in single batch; do
	errs=$(jget "$run" total_errors)
	if ((errs > 0)); then
		echo "note: run $run had $errs errors (see its summary above)"
	fi
done
