#!/usr/bin/env bash
# Restart benchmark: how long kendali takes, with a long history stored, from
# starting the process to a ready server and to the first snapshot that
# equals what the server showed before it was stopped.  See
# tests/bench/README.md.
#
#   DATABASE_URL=postgresql://... tests/bench/restart.sh
#   tests/bench/restart.sh          (no DATABASE_URL: uses scripts/pg.sh)
#
# DATABASE_URL names the PostgreSQL to use; the history goes into a scratch
# database kendali_restart created next to it (the role must be allowed to
# create databases).
#
# Settings, from the environment (defaults in brackets):
#   BUILD_DIR [build], or KENDALI: the server's path
#   RESTART_EVENTS [10000000]  events in the history (about; the history is
#                              built from calls, tickets and readings)
#   RESTART_DAYS [730]         days the history spans
#   RESTART_LIVE_MIN [120]     the last minutes of the history, posted
#                              through the server
#   RESTART_RUNS [3]           restarts measured
#   RESTART_COMPARE            a smaller number of events, e.g. 100000: a
#                              second database with as many events a day
#                              over fewer days, measured the same way
#   RESTART_REUSE              1: use kendali_restart as a previous run left
#                              it (extended up to now) instead of building
#                              it again; implies BENCH_KEEP
#   BENCH_KEEP                 1: keep the scratch databases
#   RESTART_CHECK [1]          0: skip recomputing every summary from the
#                              events at the end
#   RESTART_TIMEOUT [120]      longest wait for one start, in seconds
#   BENCH_OUT                  a directory to keep the results in (the
#                              table, each start's figures, the server's
#                              logs, the query plans)
#   PYTHON                     a Python 3 with the websockets module
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
build=${BUILD_DIR:-$root/build}
[[ $build == /* ]] || build=$root/$build
kendali=${KENDALI:-$build/server/kendali}
if [[ -z ${PYTHON:-} ]]; then
	# Debian's python3 is the one with python3-websockets (scripts/deps.sh).
	if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

events=${RESTART_EVENTS:-10000000}
days=${RESTART_DAYS:-730}
live_min=${RESTART_LIVE_MIN:-120}
runs=${RESTART_RUNS:-3}
compare=${RESTART_COMPARE:-}
reuse=${RESTART_REUSE:-0}
keep=${BENCH_KEEP:-0}
check=${RESTART_CHECK:-1}
start_timeout=${RESTART_TIMEOUT:-120}
((reuse)) && keep=1
main_db=kendali_restart
small_db=kendali_restart_small
tenant=semarang
# Calls do not start in a band around an hour before the live part ends,
# so that none leaves the one-hour windows during this many minutes of
# measuring (see "What is compared" in the README).
band_min=15

bench_prefix=restart
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

for v in events live_min runs start_timeout; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a positive integer"
done
if ! [[ $days =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v d="$days" 'BEGIN { exit !(d >= 1) }'; then
	die "RESTART_DAYS=$days is not a number of days (1 or more)"
fi
if [[ -n $compare ]]; then
	[[ $compare =~ ^[1-9][0-9]*$ ]] || die "RESTART_COMPARE=$compare is not a positive integer"
fi
[[ -x $kendali ]] || die "no $kendali; build first: ninja -C ${build#"$root"/}"
for tool in psql curl awk; do
	command -v "$tool" >/dev/null || die "$tool is needed and not on PATH"
done
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 7)' 2>/dev/null ||
	die "$PYTHON is not a Python 3.7 or later (set PYTHON)"
if ! "$PYTHON" -c 'import websockets' 2>/dev/null; then
	say "no websockets module for $PYTHON: the websocket snapshot is not measured (apt-get install python3-websockets)"
fi
# The gauges, districts and agencies of the history.
data_file=$root/data/semarang.json
[[ -r $data_file ]] || die "no $data_file"

bench_workdir restart

server_pid=
probe_pid=
started_pg=0
admin_url=
made_dbs=()
kept_dbs=()
db_url=
key_ids=()

psql_q() { psql_at "$db_url" "$@"; }

stop_server() {
	local t
	[[ -n $server_pid ]] || return 0
	t=$EPOCHREALTIME
	kill -TERM "$server_pid" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$probe_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$probe_pid" 2>/dev/null; then
		say "the server did not stop in 15 s; killing it"
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	wait "$probe_pid" 2>/dev/null || true
	server_pid=
	probe_pid=
	stop_began=$t
}

cleanup() {
	local rc=$? db
	trap '' INT TERM
	trap - EXIT
	stop_server
	if ((keep)); then
		for db in "${kept_dbs[@]}"; do
			say "database $db kept"
		done
		for k in "${key_ids[@]}"; do
			DATABASE_URL=${k% *} "$kendali" key revoke "${k##* }" >/dev/null 2>&1 || true
		done
	else
		for db in "${made_dbs[@]}"; do
			psql_at "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" ||
				say "could not drop database $db"
		done
	fi
	bench_release
	exit "$rc"
}
bench_traps cleanup

# ---- the PostgreSQL ----

if [[ -z ${DATABASE_URL:-} ]]; then
	bench_private_pg
	say "using the private PostgreSQL of scripts/pg.sh"
else
	admin_url=$DATABASE_URL
	[[ $admin_url == postgres*://*/* ]] ||
		die "DATABASE_URL must be a URI with a database (postgresql://user@host/db)"
	say "using the PostgreSQL of DATABASE_URL (scratch databases $main_db${compare:+ and $small_db})"
fi

url_of() { printf '%s\n' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\\1$1#"; }

# ---- the history, in SQL ----
#
# Every call, ticket and reading comes from a function of its number: call
# k is the (k mod cd)-th call of day k / cd, and its times, category,
# district and fate are drawn from hashes of k.  So the same event can be
# made again at any time: the bulk load inserts the events before the live
# part, the live part posts the events of its two hours through the server,
# and a later run (RESTART_REUSE) inserts those in between.  Each call's and
# ticket's summary row is computed from the same generated events, with the
# rules of the server's merge (server/store.c, SQL_SUMMARIES).

sql_schema() {
	cat <<'EOF'
CREATE SCHEMA restart;
-- What the history is made of; one row.
CREATE TABLE restart.params AS
WITH j AS (SELECT :'data'::jsonb AS d),
-- People by kecamatan (thousands): where calls and reports come from.
dw(name, w) AS (VALUES ('Pedurungan', 193), ('Tembalang', 189),
	('Semarang Barat', 149), ('Banyumanik', 142), ('Ngaliyan', 141),
	('Genuk', 123), ('Semarang Utara', 118), ('Gunungpati', 98),
	('Mijen', 80), ('Candisari', 76), ('Gayamsari', 71),
	('Semarang Timur', 68), ('Semarang Selatan', 62), ('Gajahmungkur', 60),
	('Semarang Tengah', 55), ('Tugu', 32)),
dist AS (
	SELECT x.ord, x.v->>'name' AS name, (x.v->>'lat')::float8 AS lat,
		(x.v->>'lon')::float8 AS lon, coalesce(dw.w, 80)::float8 AS w
	FROM j, jsonb_array_elements(j.d->'districts') WITH ORDINALITY x(v, ord)
	LEFT JOIN dw ON dw.name = x.v->>'name'),
distc AS (SELECT *, (sum(w) OVER (ORDER BY ord) - w) / sum(w) OVER () AS lo FROM dist),
-- Call categories: share, median handling time (s).
callcat(ord, name, w, handling) AS (VALUES (1, 'info', .24, 100),
	(2, 'complaint', .18, 200), (3, 'medical', .16, 270), (4, 'police', .10, 240),
	(5, 'other', .14, 60), (6, 'emergency', .08, 300), (7, 'fire', .06, 240),
	(8, 'disaster', .04, 300)),
callc AS (SELECT *, (sum(w) OVER (ORDER BY ord) - w) / sum(w) OVER () AS lo FROM callcat),
-- Report categories: share, median hours to fix, three titles.
repcat(ord, name, w, fix_h, t1, t2, t3) AS (VALUES
	(1, 'road', .20, 28, 'Jalan berlubang membahayakan pengendara',
		'Aspal rusak bekas galian belum diperbaiki', 'Paving jalan amblas'),
	(2, 'waste', .14, 12, 'Sampah menumpuk belum diangkut',
		'TPS liar di pinggir jalan', 'Pembakaran sampah mengganggu warga'),
	(3, 'drainage', .12, 22, 'Saluran air tersumbat sampah',
		'Gorong-gorong mampet', 'Selokan meluap saat hujan'),
	(4, 'streetlight', .10, 22, 'Lampu PJU mati',
		'Lampu penerangan jalan berkedip', 'Tiang PJU miring hampir roboh'),
	(5, 'public_order', .10, 16, 'PKL berjualan di trotoar',
		'Bangunan liar di bantaran sungai', 'Balap liar pada malam hari'),
	(6, 'flood', .08, 10, 'Genangan air setinggi lutut',
		'Air meluap dari saluran ke jalan', 'Rob masuk ke permukiman warga'),
	(7, 'traffic', .08, 8, 'Lampu lalu lintas mati',
		'Parkir liar menyebabkan macet', 'Rambu lalu lintas roboh'),
	(8, 'administration', .08, 30, 'KTP-el belum jadi',
		'Kesulitan mengurus akta kelahiran', 'Tagihan PBB tidak sesuai'),
	(9, 'other', .06, 24, 'Air PDAM tidak mengalir',
		'Bantuan sosial belum diterima', 'Pohon tumbang menutup jalan'),
	(10, 'health', .04, 14, 'Kasus DBD di lingkungan RT',
		'Antrean panjang di puskesmas', 'Genangan menjadi sarang nyamuk')),
repc AS (
	SELECT *, (sum(w) OVER (ORDER BY ord) - w) / sum(w) OVER () AS lo,
		(SELECT coalesce(string_agg(a->>'code', ',' ORDER BY o), '')
		 FROM j, jsonb_array_elements(j.d->'agencies') WITH ORDINALITY y(a, o)
		 WHERE a->'handles' ? repcat.name) AS handlers
	FROM repcat),
-- Relative volume by hour of the day (WIB): calls, then reports.
cprof AS (SELECT o, (sum(v) OVER (ORDER BY o) - v) / sum(v) OVER () AS lo
	FROM unnest(ARRAY[0.35, 0.25, 0.20, 0.18, 0.22, 0.40, 0.70, 1.00, 1.35,
		1.60, 1.70, 1.55, 1.30, 1.25, 1.30, 1.35, 1.45, 1.60, 1.75, 1.80,
		1.55, 1.20, 0.85, 0.55]::float8[]) WITH ORDINALITY u(v, o)),
rprof AS (SELECT o, (sum(v) OVER (ORDER BY o) - v) / sum(v) OVER () AS lo
	FROM unnest(ARRAY[0.15, 0.08, 0.05, 0.05, 0.10, 0.30, 0.70, 1.20, 1.60,
		1.75, 1.70, 1.50, 1.20, 1.35, 1.45, 1.35, 1.20, 1.10, 1.20, 1.40,
		1.45, 1.20, 0.75, 0.35]::float8[]) WITH ORDINALITY u(v, o)),
-- Events a day: the gauges' readings every 5 minutes, the rest 85 % in
-- calls (2.94 events each on average) and 15 % in tickets (3.92).
rate AS (
	SELECT :events::float8 / :days AS per_day,
		jsonb_array_length(d->'gauges') * 86400.0 / 300 AS readings
	FROM j)
SELECT :events::bigint AS n_events, :days::float8 AS days,
	extract(epoch FROM date_trunc('day', (to_timestamp(:hist_end) - :days * interval '1 day')
		AT TIME ZONE 'Asia/Jakarta') AT TIME ZONE 'Asia/Jakarta')::float8 AS a_epoch,
	date_trunc('day', (to_timestamp(:hist_end) - :days * interval '1 day')
		AT TIME ZONE 'Asia/Jakarta')::date AS a_date,
	300 AS reading_s,
	round(0.85 * (rate.per_day - rate.readings) / 2.94)::int AS cd,
	round(0.15 * (rate.per_day - rate.readings) / 3.92)::int AS td,
	(SELECT array_agg(name ORDER BY ord) FROM callc) AS call_names,
	(SELECT array_agg(lo::float8 ORDER BY ord) FROM callc) AS call_cum,
	(SELECT array_agg(handling::float8 ORDER BY ord) FROM callc) AS call_handling,
	(SELECT array_agg(lo ORDER BY o) FROM cprof) AS call_prof,
	(SELECT array_agg(name ORDER BY ord) FROM repc) AS rep_names,
	(SELECT array_agg(lo::float8 ORDER BY ord) FROM repc) AS rep_cum,
	(SELECT array_agg(fix_h::float8 ORDER BY ord) FROM repc) AS rep_fix_h,
	(SELECT array_agg(t ORDER BY ord, i) FROM repc,
		LATERAL (VALUES (1, t1), (2, t2), (3, t3)) v(i, t)) AS rep_titles,
	(SELECT array_agg(handlers ORDER BY ord) FROM repc) AS rep_handlers,
	(SELECT array_agg(a->>'code' ORDER BY o)
		FROM j, jsonb_array_elements(j.d->'agencies') WITH ORDINALITY y(a, o)) AS agencies,
	(SELECT array_agg(lo ORDER BY o) FROM rprof) AS rep_prof,
	(SELECT array_agg(name ORDER BY ord) FROM distc) AS dist_names,
	(SELECT array_agg(lo ORDER BY ord) FROM distc) AS dist_cum,
	(SELECT array_agg(lat ORDER BY ord) FROM distc) AS dist_lat,
	(SELECT array_agg(lon ORDER BY ord) FROM distc) AS dist_lon,
	-- A gauge that went silent three days before the history's end, and
	-- one whose river rises to siaga in the live part.
	'SMG-SIANGKER-BANDARA'::text AS silent_gauge,
	:hist_end - 3 * 86400.0 AS silent_since,
	'SMG-BERINGIN-MANGKANG'::text AS flood_gauge
FROM rate;

CREATE TABLE restart.gauges AS
SELECT x.ord::int AS idx, g->>'id' AS sensor_id,
	CASE WHEN g->>'river' IS NOT NULL
		AND position(lower(g->>'river') IN lower(g->>'name')) = 0
		THEN (g->>'river') || ' - ' || (g->>'name') ELSE g->>'name' END AS name,
	g->>'district' AS district, (g->>'lat')::float8 AS lat, (g->>'lon')::float8 AS lon,
	(g->'thresholds'->>'waspada')::float8 AS waspada,
	(g->'thresholds'->>'siaga')::float8 AS siaga,
	(g->'thresholds'->>'awas')::float8 AS awas
FROM jsonb_array_elements(:'data'::jsonb->'gauges') WITH ORDINALITY x(g, ord);

-- One row per run of the script: bulk events in [bulk_from, bulk_to), live
-- ones in [bulk_to, live_to) (epoch seconds); no call starts in
-- [band_lo, band_hi).
CREATE TABLE restart.runs (
	run		int PRIMARY KEY,
	bulk_from	float8 NOT NULL,
	bulk_to		float8 NOT NULL,
	live_to		float8,
	band_lo		float8,
	band_hi		float8,
	bulk_events	bigint,
	live_events	bigint,
	build_s		float8
);

-- A number in (0, 1) for (k, s), always the same.
CREATE FUNCTION restart.u(k bigint, s bigint) RETURNS float8
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN (((hashint8extended(k, s) >> 11) & 9007199254740991)::float8 + 0.5)
		/ 9007199254740992.0;
CREATE FUNCTION restart.z(k bigint, s bigint) RETURNS float8
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN sqrt(-2 * ln(restart.u(k, s))) * cos(2 * pi() * restart.u(k, s + 1000));
-- Log-normal with median med, clamped to [lo, hi].
CREATE FUNCTION restart.lnorm(k bigint, s bigint, med float8, sigma float8,
		lo float8, hi float8) RETURNS float8
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN least(hi, greatest(lo, med * exp(sigma * restart.z(k, s))));

ALTER TABLE restart.gauges
	ADD COLUMN lowest float8, ADD COLUMN base float8, ADD COLUMN tide float8,
	ADD COLUMN phase1 float8, ADD COLUMN phase2 float8, ADD COLUMN noise float8;
UPDATE restart.gauges SET lowest = coalesce(waspada, siaga, awas, 200);
-- A baseline at 30-48 % of the lowest alert level, the tide near the coast.
UPDATE restart.gauges SET base = lowest * (0.30 + 0.18 * restart.u(idx, 900)),
	tide = lowest * CASE WHEN lat > -6.972 THEN 0.10 ELSE 0.03 END,
	phase1 = 44714 * restart.u(idx, 901), phase2 = 86164 * restart.u(idx, 902),
	noise = greatest(0.3, lowest * 0.004);

-- The events of calls k_lo .. k_hi - 1.  A call is received, then answered
-- and closed (its category may change at the close), or abandoned.  The
-- OFFSET 0 fences keep each drawn value computed once.
CREATE FUNCTION restart.call_events(k_lo bigint, k_hi bigint)
	RETURNS TABLE (k bigint, n int, call_id text, t timestamptz, status text,
		rank smallint, category text, district text, lat float8, lon float8)
	LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT c.k, e.n, c.call_id, to_timestamp(e.t), e.status, e.rank::smallint,
		e.category, e.district, e.lat, e.lon
	FROM (
		SELECT b.k, b.call_id, b.t0, b.cat, b.fcat, b.dist, b.lat, b.lon,
			b.abandon,
			CASE WHEN b.abandon THEN b.t0 + 4 + 80 * b.u8 END AS t_ab,
			CASE WHEN NOT b.abandon THEN b.t0 + b.wait END AS t_ans,
			CASE WHEN NOT b.abandon THEN b.t0 + b.wait
				+ restart.lnorm(b.k, 10, b.handling, 0.6, 20, 1800) END AS t_close
		FROM (
			SELECT a.k,
				'112-' || to_char(a.a_date + a.d::int, 'YYYYMMDD') || '-'
					|| lpad(a.j::text, 6, '0') AS call_id,
				a.a_epoch + a.d * 86400.0 + 3600 * ((a.h - 1)
					+ (a.pos - a.call_prof[a.h])
					/ (coalesce(a.call_prof[a.h + 1], 1) - a.call_prof[a.h])) AS t0,
				a.call_names[a.ci] AS cat,
				a.call_handling[a.ci] AS handling,
				CASE WHEN a.u11 < 0.05
					THEN a.call_names[width_bucket(a.u12, a.call_cum)]
					ELSE a.call_names[a.ci] END AS fcat,
				CASE WHEN a.u3 >= 0.08 THEN a.dist_names[a.di] END AS dist,
				CASE WHEN a.u5 >= 0.25 THEN round((a.dist_lat[a.di]
					+ 0.008 * a.z6)::numeric, 5)::float8 END AS lat,
				CASE WHEN a.u5 >= 0.25 THEN round((a.dist_lon[a.di]
					+ 0.008 * a.z13)::numeric, 5)::float8 END AS lon,
				a.u7 < CASE a.call_names[a.ci] WHEN 'other' THEN 0.15
					ELSE 0.05 END AS abandon,
				a.u8, a.wait
			FROM (
				SELECT q.*, width_bucket(q.pos, q.call_prof) AS h,
					width_bucket(q.u2, q.call_cum) AS ci,
					width_bucket(q.u4, q.dist_cum) AS di
				FROM (
					SELECT g.k, g.k / p.cd AS d, g.k % p.cd AS j,
						((g.k % p.cd) + restart.u(g.k, 1)) / p.cd AS pos,
						restart.u(g.k, 2) AS u2, restart.u(g.k, 3) AS u3,
						restart.u(g.k, 4) AS u4, restart.u(g.k, 5) AS u5,
						restart.u(g.k, 7) AS u7, restart.u(g.k, 8) AS u8,
						restart.u(g.k, 11) AS u11, restart.u(g.k, 12) AS u12,
						restart.z(g.k, 6) AS z6, restart.z(g.k, 13) AS z13,
						restart.lnorm(g.k, 9, 10, 0.75, 2, 240) AS wait,
						p.a_epoch, p.a_date, p.call_prof, p.call_cum,
						p.call_names, p.call_handling, p.dist_cum,
						p.dist_names, p.dist_lat, p.dist_lon
					FROM restart.params p, generate_series(k_lo, k_hi - 1) g(k)
					OFFSET 0
				) q
				OFFSET 0
			) a
			OFFSET 0
		) b
		WHERE NOT EXISTS (SELECT 1 FROM restart.runs r
			WHERE b.t0 >= r.band_lo AND b.t0 < r.band_hi)
		OFFSET 0
	) c
	CROSS JOIN LATERAL (VALUES
		(1, c.t0, 'received', 0, c.cat, c.dist, c.lat, c.lon),
		(2, coalesce(c.t_ans, c.t_ab),
			CASE WHEN c.abandon THEN 'abandoned' ELSE 'answered' END,
			CASE WHEN c.abandon THEN 2 ELSE 1 END, NULL, NULL,
			NULL::float8, NULL::float8),
		(3, c.t_close, 'closed', 3, c.fcat, NULL, NULL, NULL)
	) e(n, t, status, rank, category, district, lat, lon)
	WHERE e.t IS NOT NULL;
END;

-- The events of tickets k_lo .. k_hi - 1: received; then rejected on
-- review (6 %), lost in the queue (1.5 %, most rejected weeks later), or
-- dispatched (5 % first to a wrong agency), rejected by the agency (3 %),
-- in progress, resolved (2 % stall for weeks, a fifth of them for good),
-- reopened by the citizen (4 %) and mostly resolved again.
CREATE FUNCTION restart.ticket_events(k_lo bigint, k_hi bigint)
	RETURNS TABLE (k bigint, n int, ticket text, t timestamptz, status text,
		rank smallint, category text, district text, agency text, title text,
		lat float8, lon float8)
	LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT c.k, e.n, c.ticket, to_timestamp(e.t), e.status, e.rank::smallint,
		e.category, e.district, e.agency, e.title, e.lat, e.lon
	FROM (
		SELECT b.*,
			CASE WHEN b.work AND NOT b.agrej THEN b.t_prog
				+ CASE WHEN b.stalled THEN CASE WHEN b.u128 < 0.8
						THEN 86400 * (7 + 13 * b.u129) END
					ELSE restart.lnorm(b.k, 130, b.fix_h * 3600, 0.85,
						1800, 1209600) END
			END AS t_res
		FROM (
			SELECT a.k, a.ticket, a.t0, a.cat, a.dist, a.lat, a.lon, a.title,
				a.work, a.agrej, a.stalled, a.u128, a.u129, a.fix_h,
				a.reopen, a.u135,
				CASE WHEN a.r < 0.06 THEN a.t0
					+ restart.lnorm(a.k, 111, 5400, 0.9, 300, 172800) END AS t_rej0,
				CASE WHEN a.r >= 0.06 AND a.r < 0.075 AND a.u113 < 0.9
					THEN a.t0 + 86400 * (10 + 50 * a.u114) END AS t_lostrej,
				CASE WHEN a.work THEN a.t0 + a.l118 END AS t_d1,
				CASE WHEN a.work THEN CASE WHEN a.wrong THEN a.wrong_ag
					ELSE a.ag END END AS ag1,
				CASE WHEN a.work AND a.wrong THEN a.t0 + a.l118 + a.l120 END AS t_d2,
				a.ag,
				CASE WHEN a.work AND a.agrej THEN a.t0 + a.l118
					+ CASE WHEN a.wrong THEN a.l120 ELSE 0 END + a.l123 END AS t_agrej,
				CASE WHEN a.work AND NOT a.agrej THEN a.t0 + a.l118
					+ CASE WHEN a.wrong THEN a.l120 ELSE 0 END + a.l125 END AS t_prog
			FROM (
				SELECT q.k,
					'LPR-' || to_char(q.a_date + q.d::int, 'YYMMDD') || '-'
						|| lpad(q.j::text, 5, '0') AS ticket,
					q.a_epoch + q.d * 86400.0 + 3600 * ((q.h - 1)
						+ (q.pos - q.rep_prof[q.h])
						/ (coalesce(q.rep_prof[q.h + 1], 1) - q.rep_prof[q.h])) AS t0,
					q.rep_names[q.ci] AS cat, q.rep_fix_h[q.ci] AS fix_h,
					q.dist_names[q.di] AS dist,
					CASE WHEN q.u104 >= 0.25 THEN round((q.dist_lat[q.di]
						+ 0.008 * q.z105)::numeric, 5)::float8 END AS lat,
					CASE WHEN q.u104 >= 0.25 THEN round((q.dist_lon[q.di]
						+ 0.008 * q.z107)::numeric, 5)::float8 END AS lon,
					q.rep_titles[(q.ci - 1) * 3 + 1 + floor(3 * q.u109)::int]
						|| ' di ' || q.dist_names[q.di] AS title,
					q.r, q.r >= 0.075 AS work, q.u113, q.u114,
					q.handlers[1 + floor(cardinality(q.handlers) * q.u115)::int] AS ag,
					q.agencies[1 + floor(cardinality(q.agencies) * q.u116)::int] AS wrong_ag,
					q.u117 < 0.05 AND NOT (q.agencies[1 + floor(cardinality(q.agencies)
						* q.u116)::int] = ANY (q.handlers)) AS wrong,
					q.u122 < 0.03 AS agrej, q.u127 < 0.02 AS stalled,
					q.u127 >= 0.02 AND q.u132 < 0.04 AS reopen,
					q.u128, q.u129, q.u135, q.l118, q.l120, q.l123, q.l125
				FROM (
					SELECT s.*, width_bucket(s.pos, s.rep_prof) AS h,
						width_bucket(s.u102, s.rep_cum) AS ci,
						width_bucket(s.u103, s.dist_cum) AS di,
						string_to_array(s.rep_handlers[width_bucket(s.u102,
							s.rep_cum)], ',') AS handlers
					FROM (
						SELECT g.k, g.k / p.td AS d, g.k % p.td AS j,
							((g.k % p.td) + restart.u(g.k, 101)) / p.td AS pos,
							restart.u(g.k, 102) AS u102, restart.u(g.k, 103) AS u103,
							restart.u(g.k, 104) AS u104, restart.z(g.k, 105) AS z105,
							restart.z(g.k, 107) AS z107, restart.u(g.k, 109) AS u109,
							restart.u(g.k, 110) AS r, restart.u(g.k, 113) AS u113,
							restart.u(g.k, 114) AS u114, restart.u(g.k, 115) AS u115,
							restart.u(g.k, 116) AS u116, restart.u(g.k, 117) AS u117,
							restart.u(g.k, 122) AS u122, restart.u(g.k, 127) AS u127,
							restart.u(g.k, 128) AS u128, restart.u(g.k, 129) AS u129,
							restart.u(g.k, 132) AS u132, restart.u(g.k, 135) AS u135,
							restart.lnorm(g.k, 118, 2400, 1.0, 180, 72000) AS l118,
							restart.lnorm(g.k, 120, 10800, 0.8, 600, 172800) AS l120,
							restart.lnorm(g.k, 123, 86400, 0.7, 3600, 432000) AS l123,
							restart.lnorm(g.k, 125, 18000, 1.0, 600, 345600) AS l125,
							p.a_epoch, p.a_date, p.rep_prof, p.rep_cum, p.rep_names,
							p.rep_fix_h, p.rep_titles, p.rep_handlers, p.agencies,
							p.dist_cum, p.dist_names, p.dist_lat, p.dist_lon
						FROM restart.params p, generate_series(k_lo, k_hi - 1) g(k)
						OFFSET 0
					) s
					OFFSET 0
				) q
				OFFSET 0
			) a
			OFFSET 0
		) b
		OFFSET 0
	) c
	CROSS JOIN LATERAL (
		SELECT CASE WHEN c.reopen AND c.t_res IS NOT NULL THEN c.t_res
			+ restart.lnorm(c.k, 133, 86400, 0.7, 3600, 432000) END AS t_reo
	) o
	CROSS JOIN LATERAL (VALUES
		(1, c.t0, 'received', 0, c.cat, c.dist, NULL, c.title, c.lat, c.lon),
		(2, c.t_rej0, 'rejected', 4, NULL, NULL, NULL, NULL, NULL::float8, NULL::float8),
		(3, c.t_lostrej, 'rejected', 4, NULL, NULL, NULL, NULL, NULL, NULL),
		(4, c.t_d1, 'dispatched', 1, NULL, NULL, c.ag1, NULL, NULL, NULL),
		(5, c.t_d2, 'dispatched', 1, NULL, NULL, c.ag, NULL, NULL, NULL),
		(6, c.t_agrej, 'rejected', 4, NULL, NULL, NULL, NULL, NULL, NULL),
		(7, c.t_prog, 'in_progress', 2, NULL, NULL, NULL, NULL, NULL, NULL),
		(8, c.t_res, 'resolved', 3, NULL, NULL, NULL, NULL, NULL, NULL),
		(9, o.t_reo, 'in_progress', 2, NULL, NULL, NULL, NULL, NULL, NULL),
		(10, CASE WHEN c.u135 < 0.9 THEN o.t_reo
			+ restart.lnorm(c.k, 136, 86400, 0.8, 3600, 604800) END,
			'resolved', 3, NULL, NULL, NULL, NULL, NULL, NULL)
	) e(n, t, status, rank, category, district, agency, title, lat, lon)
	WHERE e.t IS NOT NULL;
END;

-- Every gauge's readings in [t_lo, t_hi), one every reading_s seconds: the
-- baseline, the tide, noise, and now and then a flood about as high as
-- siaga.  The silent gauge has none after silent_since.
CREATE FUNCTION restart.readings(t_lo float8, t_hi float8)
	RETURNS TABLE (idx int, sensor_id text, t timestamptz, value float8)
	LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT x.idx, x.sensor_id, to_timestamp(x.ts),
		round(greatest(0, x.base
			+ x.tide * (0.7 * cos(2 * pi() * (x.ts - x.phase1) / 44714)
				+ 0.3 * cos(2 * pi() * (x.ts - x.phase2) / 86164))
			+ CASE WHEN restart.u(x.idx * 1000000 + x.ep, 301) < 0.04
				THEN (x.siaga * (0.85 + 0.4 * restart.u(x.idx * 1000000 + x.ep, 303))
					- x.base) * exp(-least(50, power((x.ts - (x.ep
					+ restart.u(x.idx * 1000000 + x.ep, 302)) * 259200) / 7200, 2)))
				ELSE 0 END
			+ x.noise * restart.z(x.idx * 10000000000 + x.slot, 300))::numeric, 1)::float8
	FROM (
		SELECT g.idx, g.sensor_id, g.base, g.tide, g.phase1, g.phase2, g.noise,
			coalesce(g.siaga, g.awas, g.lowest) AS siaga,
			s.slot, s.slot * p.reading_s::float8 AS ts,
			floor(s.slot * p.reading_s / 259200.0)::bigint AS ep
		FROM restart.params p
		CROSS JOIN restart.gauges g
		CROSS JOIN generate_series(ceil(t_lo / p.reading_s)::bigint,
			ceil(t_hi / p.reading_s)::bigint - 1) s(slot)
		WHERE g.sensor_id <> p.silent_gauge OR s.slot * p.reading_s < p.silent_since
		OFFSET 0
	) x;
END;

-- The gauges are registered at the start of the history.
INSERT INTO sensors (tenant, sensor_id, name, metric, unit, district, lat, lon,
	waspada, siaga, awas, offline_after_s, created_at, updated_at)
SELECT :'tenant', g.sensor_id, g.name, 'water_level', 'cm', g.district, g.lat,
	g.lon, g.waspada, g.siaga, g.awas, 900, to_timestamp(p.a_epoch),
	to_timestamp(p.a_epoch)
FROM restart.gauges g, restart.params p
ON CONFLICT (tenant, sensor_id) DO NOTHING;
EOF
}

# Calls k_lo .. k_hi - 1: their events in [t_lo, t_hi), and the summary of
# each call with an event there, over all its events before t_hi.
sql_bulk_calls() {
	cat <<'EOF'
WITH ev AS MATERIALIZED (
	SELECT * FROM restart.call_events(:k_lo, :k_hi) WHERE t < to_timestamp(:t_hi)
), ins AS (
	INSERT INTO events (tenant, poster, event_id, type, occurred_at, stored_at,
		subject, status, rank, category, district, lat, lon)
	SELECT :'tenant', 'callcentre', call_id || '/' || n, 'call', t,
		t + interval '2 s', call_id, status, rank, category, district, lat, lon
	FROM ev WHERE t >= to_timestamp(:t_lo)
	ON CONFLICT DO NOTHING
	RETURNING 1
), up AS (
	INSERT INTO calls AS c (tenant, call_id, recv_min, first_at, status_key,
		category_key, category, answered_at, abandoned_at)
	SELECT :'tenant', call_id,
		min(t) FILTER (WHERE status = 'received'), min(t),
		max(kd_key(t, rank)),
		max(kd_key(t, rank)) FILTER (WHERE category IS NOT NULL),
		(array_agg(category ORDER BY kd_key(t, rank) DESC, category DESC)
			FILTER (WHERE category IS NOT NULL))[1],
		min(t) FILTER (WHERE status = 'answered'),
		min(t) FILTER (WHERE status = 'abandoned')
	FROM ev GROUP BY call_id HAVING max(t) >= to_timestamp(:t_lo)
	ON CONFLICT (tenant, call_id) DO UPDATE SET
		recv_min = EXCLUDED.recv_min, first_at = EXCLUDED.first_at,
		status_key = EXCLUDED.status_key, category_key = EXCLUDED.category_key,
		category = EXCLUDED.category, answered_at = EXCLUDED.answered_at,
		abandoned_at = EXCLUDED.abandoned_at
	RETURNING 1
)
SELECT (SELECT count(*) FROM ins) || ' ' || (SELECT count(*) FROM up);
EOF
}

sql_bulk_tickets() {
	cat <<'EOF'
WITH ev AS MATERIALIZED (
	SELECT * FROM restart.ticket_events(:k_lo, :k_hi) WHERE t < to_timestamp(:t_hi)
), ins AS (
	INSERT INTO events (tenant, poster, event_id, type, occurred_at, stored_at,
		subject, status, rank, category, district, agency, title, lat, lon)
	SELECT :'tenant', 'lapor', ticket || '/' || n, 'report', t,
		t + interval '2 s', ticket, status, rank, category, district, agency,
		title, lat, lon
	FROM ev WHERE t >= to_timestamp(:t_lo)
	ON CONFLICT DO NOTHING
	RETURNING 1
), up AS (
	INSERT INTO tickets AS c (tenant, ticket, recv_min, first_at, status_key,
		category_key, category, district_key, district, agency_key, agency,
		dispatched, resolved_at)
	SELECT :'tenant', ticket,
		min(t) FILTER (WHERE status = 'received'), min(t),
		max(kd_key(t, rank)),
		max(kd_key(t, rank)) FILTER (WHERE category IS NOT NULL),
		(array_agg(category ORDER BY kd_key(t, rank) DESC, category DESC)
			FILTER (WHERE category IS NOT NULL))[1],
		max(kd_key(t, rank)) FILTER (WHERE district IS NOT NULL),
		(array_agg(district ORDER BY kd_key(t, rank) DESC, district DESC)
			FILTER (WHERE district IS NOT NULL))[1],
		max(kd_key(t, rank)) FILTER (WHERE agency IS NOT NULL),
		(array_agg(agency ORDER BY kd_key(t, rank) DESC, agency DESC)
			FILTER (WHERE agency IS NOT NULL))[1],
		bool_or(status = 'dispatched'),
		max(t) FILTER (WHERE status = 'resolved')
	FROM ev GROUP BY ticket HAVING max(t) >= to_timestamp(:t_lo)
	ON CONFLICT (tenant, ticket) DO UPDATE SET
		recv_min = EXCLUDED.recv_min, first_at = EXCLUDED.first_at,
		status_key = EXCLUDED.status_key, category_key = EXCLUDED.category_key,
		category = EXCLUDED.category, district_key = EXCLUDED.district_key,
		district = EXCLUDED.district, agency_key = EXCLUDED.agency_key,
		agency = EXCLUDED.agency, dispatched = EXCLUDED.dispatched,
		resolved_at = EXCLUDED.resolved_at
	RETURNING 1
)
SELECT (SELECT count(*) FROM ins) || ' ' || (SELECT count(*) FROM up);
EOF
}

# Readings in [t_lo, t_hi), and the level alerts of the floods that ended
# in that time (raised when the flood reached siaga, cleared when it fell
# below, most acknowledged).
sql_bulk_readings() {
	cat <<'EOF'
WITH ins AS (
	INSERT INTO events (tenant, poster, event_id, type, occurred_at, stored_at,
		subject, rank, value)
	SELECT :'tenant', 'bpbd', sensor_id || '@' || to_char(t AT TIME ZONE
			'Asia/Jakarta', 'YYYY-MM-DD"T"HH24:MI:SS') || '+07:00',
		'sensor', t, t + interval '2 s', sensor_id, 0, value
	FROM restart.readings(:t_lo, :t_hi)
	ON CONFLICT DO NOTHING
	RETURNING 1
), fl AS (
	SELECT g.sensor_id, g.name, g.base, coalesce(g.siaga, g.awas) AS siaga, g.awas,
		(e.ep + restart.u(g.idx * 1000000 + e.ep, 302)) * 259200 AS c,
		coalesce(g.siaga, g.awas) * (0.85 + 0.4 * restart.u(g.idx * 1000000 + e.ep, 303)) AS peak,
		restart.u(g.idx * 1000000 + e.ep, 304) AS ua
	FROM restart.gauges g, restart.params p,
		generate_series(floor(:t_lo / 259200.0)::bigint - 1,
			floor(:t_hi / 259200.0)::bigint) e(ep)
	WHERE restart.u(g.idx * 1000000 + e.ep, 301) < 0.04
		AND (g.sensor_id <> p.silent_gauge OR e.ep * 259200 < p.silent_since)
), al AS (
	SELECT *, 7200 * sqrt(ln((peak - base) / (siaga - base))) AS half
	FROM fl WHERE peak >= siaga
), ins_al AS (
	INSERT INTO alerts (tenant, kind, sensor_id, severity, message, raised_at,
		cleared_at, acked_by, acked_at)
	SELECT :'tenant', 'level', sensor_id,
		CASE WHEN peak >= awas THEN 'awas' ELSE 'siaga' END,
		name || ': ' || CASE WHEN peak >= awas THEN 'AWAS' ELSE 'SIAGA' END
			|| ' ' || round(siaga) || ' cm',
		to_timestamp(c - half), to_timestamp(c + half),
		CASE WHEN ua < 0.85 THEN 'operator' END,
		CASE WHEN ua < 0.85 THEN to_timestamp(c - half + 120 + 800 * ua) END
	FROM al WHERE c + half >= :t_lo AND c + half < :t_hi
	RETURNING 1
)
SELECT (SELECT count(*) FROM ins) || ' ' || (SELECT count(*) FROM ins_al);
EOF
}

# The live part: every event in [b, p), one JSON object a line after its
# poster, in time order.  The flood gauge's river rises over the last 90
# minutes to 12 % above siaga.
sql_live() {
	cat <<'EOF'
SELECT poster || E'\t' || j FROM (
	SELECT 'callcentre' AS poster, t, json_strip_nulls(json_build_object(
		'id', call_id || '/' || n, 'type', 'call',
		'occurred_at', to_char(t AT TIME ZONE 'Asia/Jakarta',
			'YYYY-MM-DD"T"HH24:MI:SS.US') || '+07:00',
		'district', district,
		'location', CASE WHEN lat IS NOT NULL
			THEN json_build_object('lat', lat, 'lon', lon) END,
		'call', json_build_object('call_id', call_id, 'status', status,
			'category', category)))::text AS j
	FROM restart.call_events(:kc_lo, :kc_hi)
	WHERE t >= to_timestamp(:b) AND t < to_timestamp(:p)
	UNION ALL
	SELECT 'lapor', t, json_strip_nulls(json_build_object(
		'id', ticket || '/' || n, 'type', 'report',
		'occurred_at', to_char(t AT TIME ZONE 'Asia/Jakarta',
			'YYYY-MM-DD"T"HH24:MI:SS.US') || '+07:00',
		'district', district,
		'location', CASE WHEN lat IS NOT NULL
			THEN json_build_object('lat', lat, 'lon', lon) END,
		'report', json_build_object('ticket', ticket, 'status', status,
			'category', category, 'agency', agency, 'title', title)))::text
	FROM restart.ticket_events(:kt_lo, :kt_hi)
	WHERE t >= to_timestamp(:b) AND t < to_timestamp(:p)
	UNION ALL
	SELECT 'bpbd', r.t, json_build_object(
		'id', r.sensor_id || '@' || to_char(r.t AT TIME ZONE 'Asia/Jakarta',
			'YYYY-MM-DD"T"HH24:MI:SS') || '+07:00',
		'type', 'sensor',
		'occurred_at', to_char(r.t AT TIME ZONE 'Asia/Jakarta',
			'YYYY-MM-DD"T"HH24:MI:SS') || '+07:00',
		'sensor', json_build_object('sensor_id', r.sensor_id, 'value',
			CASE WHEN r.sensor_id = p.flood_gauge
				AND extract(epoch FROM r.t) >= :p - 5400
			THEN round((r.value + (1.12 * g.siaga - r.value) * (3 - 2 * x.s) * x.s * x.s)::numeric, 1)
			ELSE r.value END))::text
	FROM restart.readings(:b, :p) r
	JOIN restart.gauges g USING (idx)
	CROSS JOIN restart.params p
	CROSS JOIN LATERAL (SELECT least(1, greatest(0,
		(extract(epoch FROM r.t)::float8 - (:p - 5400)) / 5400)) AS s) x
) l
ORDER BY poster, t;
EOF
}

# Recomputes every call's and ticket's summary from the stored events with
# the rules of the server's merge, and counts the rows that differ.
sql_check() {
	cat <<'EOF'
WITH rc AS (
	SELECT subject AS call_id,
		min(occurred_at) FILTER (WHERE status = 'received') AS recv_min,
		min(occurred_at) AS first_at,
		max(kd_key(occurred_at, rank)) AS status_key,
		max(kd_key(occurred_at, rank)) FILTER (WHERE category IS NOT NULL) AS category_key,
		(array_agg(category ORDER BY kd_key(occurred_at, rank) DESC, category DESC)
			FILTER (WHERE category IS NOT NULL))[1] AS category,
		min(occurred_at) FILTER (WHERE status = 'answered') AS answered_at,
		min(occurred_at) FILTER (WHERE status = 'abandoned') AS abandoned_at
	FROM events WHERE tenant = :'tenant' AND type = 'call' GROUP BY subject
), sc AS (
	SELECT call_id, recv_min, first_at, status_key, category_key, category,
		answered_at, abandoned_at
	FROM calls WHERE tenant = :'tenant'
), rt AS (
	SELECT subject AS ticket,
		min(occurred_at) FILTER (WHERE status = 'received') AS recv_min,
		min(occurred_at) AS first_at,
		max(kd_key(occurred_at, rank)) AS status_key,
		max(kd_key(occurred_at, rank)) FILTER (WHERE category IS NOT NULL) AS category_key,
		(array_agg(category ORDER BY kd_key(occurred_at, rank) DESC, category DESC)
			FILTER (WHERE category IS NOT NULL))[1] AS category,
		max(kd_key(occurred_at, rank)) FILTER (WHERE district IS NOT NULL) AS district_key,
		(array_agg(district ORDER BY kd_key(occurred_at, rank) DESC, district DESC)
			FILTER (WHERE district IS NOT NULL))[1] AS district,
		max(kd_key(occurred_at, rank)) FILTER (WHERE agency IS NOT NULL) AS agency_key,
		(array_agg(agency ORDER BY kd_key(occurred_at, rank) DESC, agency DESC)
			FILTER (WHERE agency IS NOT NULL))[1] AS agency,
		bool_or(status = 'dispatched') AS dispatched,
		max(occurred_at) FILTER (WHERE status = 'resolved') AS resolved_at
	FROM events WHERE tenant = :'tenant' AND type = 'report' GROUP BY subject
), st AS (
	SELECT ticket, recv_min, first_at, status_key, category_key, category,
		district_key, district, agency_key, agency, dispatched, resolved_at
	FROM tickets WHERE tenant = :'tenant'
)
SELECT (SELECT count(*) FROM sc) || ' ' || (SELECT count(*) FROM
		((TABLE rc EXCEPT ALL TABLE sc) UNION ALL (TABLE sc EXCEPT ALL TABLE rc)) d)
	|| ' ' || (SELECT count(*) FROM st) || ' ' || (SELECT count(*) FROM
		((TABLE rt EXCEPT ALL TABLE st) UNION ALL (TABLE st EXCEPT ALL TABLE rt)) d);
EOF
}

# What may legitimately change between two snapshots computed at :'pre' and
# :'post' with the same events: the items that cross the edge of a window
# of docs/kpis.md in between (the SLA is the default 72 h).  One line per
# edge crossed.
sql_edges() {
	cat <<'EOF'
WITH w AS (SELECT :'pre'::timestamptz AS pre, :'post'::timestamptz AS post)
SELECT n || ' ' || what FROM (
	SELECT 'day (WIB) changed' AS what,
		((pre AT TIME ZONE 'Asia/Jakarta')::date
			<> (post AT TIME ZONE 'Asia/Jakarta')::date)::int AS n FROM w
	UNION ALL
	SELECT 'calls received, answered or abandoned an hour before', count(*)
	FROM calls, w WHERE tenant = :'tenant' AND (
		(received_at >= pre - interval '1 h' AND received_at < post - interval '1 h')
		OR (answered_at >= pre - interval '1 h' AND answered_at < post - interval '1 h')
		OR (abandoned_at >= pre - interval '1 h' AND abandoned_at < post - interval '1 h'))
	UNION ALL
	SELECT 'active calls received 24 h before', count(*)
	FROM calls, w WHERE tenant = :'tenant' AND status IN (0, 1)
		AND received_at >= pre - interval '24 h' AND received_at < post - interval '24 h'
	UNION ALL
	SELECT 'open tickets becoming overdue (72 h)', count(*)
	FROM tickets, w WHERE tenant = :'tenant' AND status NOT IN (3, 4)
		AND received_at >= pre - interval '72 h' AND received_at < post - interval '72 h'
	UNION ALL
	SELECT 'resolved tickets leaving the 30 days', count(*)
	FROM tickets, w WHERE tenant = :'tenant' AND status = 3
		AND resolved_at >= pre - interval '30 days' AND resolved_at < post - interval '30 days'
	UNION ALL
	SELECT 'sensors going offline', count(*)
	FROM sensors s CROSS JOIN w
	LEFT JOIN LATERAL (SELECT max(occurred_at) AS m FROM events e
		WHERE e.tenant = s.tenant AND e.type = 'sensor'
			AND e.subject = s.sensor_id) r ON true
	WHERE s.tenant = :'tenant'
		AND coalesce(r.m, s.created_at) + s.offline_after_s * interval '1 s' >= pre
		AND coalesce(r.m, s.created_at) + s.offline_after_s * interval '1 s' < post
) x WHERE n > 0;
EOF
}

# ---- the start-up probe ----
#
# Starts the server and stays its parent until it exits.  From just before
# the start it measures: /readyz answering 200, the first GET
# /api/v1/kpis, the first websocket snapshot, and whether each snapshot's
# kpis equal the ones given (--pre).  It writes name=value lines to
# --result once it has them, then waits for the server and writes its exit
# time to --result.exit.
cat >"$work/probe.py" <<'EOF'
import asyncio, json, os, subprocess, sys, time

args = {"pre": None, "extra": []}
argv = sys.argv[1:]
while argv:
    if argv[0] == "--":
        args["extra"] = argv[1:]
        break
    args[argv[0].lstrip("-")] = argv[1]
    argv = argv[2:]
port, timeout = int(args["port"]), float(args["timeout"])
pre = None
if args["pre"]:
    with open(args["pre"]) as f:
        pre = json.load(f)["kpis"]
try:
    import websockets
except ImportError:
    websockets = None

res = {}
log = open(args["log"], "ab")
t0 = time.monotonic()
res["start_epoch"] = time.time()
proc = subprocess.Popen([args["kendali"], "serve", "--listen",
                         f"127.0.0.1:{port}", "--anonymous-loopback"]
                        + args["extra"], stdout=log, stderr=subprocess.STDOUT)
res["pid"] = proc.pid


class Exited(Exception):
    pass


class Unequal(Exception):
    """A snapshot came but none equal to the one before within 5 s."""


def since():
    return time.monotonic() - t0


def differing(kpis):
    return ",".join(sorted(k for k in set(kpis) | set(pre)
                           if kpis.get(k) != pre.get(k)))


async def get(path):
    r, w = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), 2)
    try:
        w.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                .encode())
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        n = 0
        for h in lines[1:]:
            if h.lower().startswith("content-length:"):
                n = int(h.split(":", 1)[1])
        return int(lines[0].split()[1]), await asyncio.wait_for(
            r.readexactly(n), 5)
    finally:
        w.close()


async def poll(once, interval):
    while since() < timeout:
        if proc.poll() is not None:
            raise Exited()
        try:
            v = await once()
            if v is not None:
                return v
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                ValueError, IndexError):
            pass
        except Unequal:
            return None
        except Exception as e:
            if websockets is None or not isinstance(
                    e, websockets.exceptions.WebSocketException):
                raise
        await asyncio.sleep(interval)
    return None


def settle(first):
    if since() > res[first] + 5:
        raise Unequal()


async def ready():
    async def once():
        st, _ = await get("/readyz")
        return since() if st == 200 else None
    res["ready_s"] = await poll(once, 0.005)


async def kpis():
    async def once():
        st, body = await get("/api/v1/kpis")
        if st != 200:
            return None
        snap = json.loads(body)
        if "kpis_first_s" not in res:
            res["kpis_first_s"] = since()
            res["kpis_first_at"] = snap["at"]
            if pre is not None:
                res["kpis_first_equal"] = int(snap["kpis"] == pre)
                if snap["kpis"] != pre:
                    res["kpis_first_diff"] = differing(snap["kpis"])
        if pre is None or snap["kpis"] == pre:
            return since()
        settle("kpis_first_s")
        return None
    res["kpis_equal_s"] = await poll(once, 0.01)


async def ws():
    if websockets is None:
        return
    async def once():
        async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws", subprotocols=["situation.v1"],
                open_timeout=2, max_size=None) as c:
            state = None
            while since() < timeout:
                m = json.loads(await asyncio.wait_for(c.recv(), 2))
                if m.get("type") == "snapshot":
                    state = dict(m["kpis"])
                    if "ws_first_s" not in res:
                        res["ws_first_s"] = since()
                        res["ws_first_at"] = m["at"]
                        if pre is not None:
                            res["ws_first_equal"] = int(state == pre)
                elif m.get("type") == "kpis" and state is not None:
                    state.update(m["kpis"])
                if state is not None and (pre is None or state == pre):
                    return since()
                if state is not None:
                    settle("ws_first_s")
        return None
    res["ws_equal_s"] = await poll(once, 0.005)


async def main():
    try:
        await asyncio.gather(ready(), kpis(), ws())
        res["ok"] = 1
    except Exited:
        res["ok"] = 0

asyncio.run(main())
with open(args["result"] + ".tmp", "w") as f:
    for k, v in res.items():
        if v is not None:
            f.write(f"{k}={v}\n")
os.rename(args["result"] + ".tmp", args["result"])
rc = proc.wait()
with open(args["result"] + ".exit", "w") as f:
    f.write(f"exit_epoch={time.time()}\nrc={rc}\n")
EOF

# The start-up queries as the server sends them: every SELECT with the
# tenant as its only parameter, built from adjacent string literals in the
# start-up part of server/store.c and in the headers that define the key
# and session queries.  Printed as a psql script that explains each one.
cat >"$work/queries.py" <<'EOF'
import re, sys
root = sys.argv[1]
lit = re.compile(r'(?:"(?:[^"\\\n]|\\.)*"(?:\s|\\\n)*)+')
n = 0
for path, marker in (("server/store.c", "---- start-up ----"),
                     ("server/keys.h", None), ("server/auth.h", None)):
    text = open(f"{root}/{path}").read()
    if marker:
        text = text[text.index(marker):]
    for m in lit.finditer(text):
        s = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(0)))
        s = s.replace('\\"', '"').replace("\\\\", "\\")
        if s.lstrip().upper().startswith("SELECT") and "$1" in s \
                and "$2" not in s:
            n += 1
            tables = ", ".join(dict.fromkeys(
                re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", s)))
            print(f"\\echo '@@ q{n}: {tables}'")
            print(f"\\echo '@@ sql: {s.replace(chr(39), chr(39) * 2)}'")
            print(f"PREPARE q{n}(text) AS {s};")
            print(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE q{n}(:'tenant');")
EOF

# ---- one database ----

# name=value lines of a probe's result (or .exit) file.
rget() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# start_server NAME [PRE]: starts the server under the probe, waits for
# the probe's figures (in $work/NAME.res).
start_server() {
	local name=$1 pre=${2:-}
	port=$(free_port)
	url=http://127.0.0.1:$port
	rm -f "$work/$name.res" "$work/$name.res.exit"
	DATABASE_URL=$db_url "$PYTHON" "$work/probe.py" --kendali "$kendali" --port "$port" \
		--log "$work/$name.log" --result "$work/$name.res" \
		--timeout "$start_timeout" ${pre:+--pre "$pre"} -- --rate-limit 0 &
	probe_pid=$!
	while [[ ! -f $work/$name.res ]]; do
		if ! kill -0 "$probe_pid" 2>/dev/null; then
			probe_pid=
			tail -n 20 "$work/$name.log" >&2 || true
			die "the start-up probe failed"
		fi
		sleep 0.05
	done
	server_pid=$(rget "$work/$name.res" pid)
	if [[ $(rget "$work/$name.res" ok) != 1 ]] || ! kill -0 "$server_pid" 2>/dev/null; then
		tail -n 20 "$work/$name.log" >&2 || true
		die "the server did not start (log: $work/$name.log)"
	fi
	[[ -n $(rget "$work/$name.res" ready_s) ]] ||
		die "the server was not ready after $start_timeout s (log: $work/$name.log)"
	rebuilt_line=$(grep -o 'state rebuilt in .*' "$work/$name.log" | tail -n 1 || true)
}

ask_db() { psql_q -tA "$@"; }

# prepare_db DB EVENTS DAYS: creates (or reuses) DB and brings its history
# up to now minus the live part; sets db_url, built_s, bulk_events.
prepare_db() {
	local db=$1 n=$2 d=$3 exists=0 t0 b prev_to run lo hi out cd td a_epoch
	db_url=$(url_of "$db")
	if [[ $(psql_at "$admin_url" -tA -c "SELECT 1 FROM pg_database WHERE datname = '$db'") == 1 ]]; then
		exists=1
	fi
	local had='' redo=0
	if ((exists)) && ((reuse)) &&
		[[ $(ask_db -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'restart'") == 1 ]]; then
		had=$(ask_db -c "SELECT n_events || ' ' || days FROM restart.params")
		if ! awk -v h="$had" -v n="$n" -v d="$d" 'BEGIN { split(h, a, " ");
			exit !(a[1] == n && (a[2] - d) ^ 2 < 1e-6) }'; then
			say "$db holds a history of ${had% *} events over ${had#* } days, not $n over $d: building it again"
			had=
			redo=1
		fi
	fi
	if [[ -n $had ]]; then
		say "$db: reusing its history, extended up to now"
	else
		if ((exists)); then
			if ((reuse && !redo)); then
				say "$db holds no history of this benchmark; building it"
			fi
			psql_at "$admin_url" -c "DROP DATABASE $db WITH (FORCE)"
		fi
		psql_at "$admin_url" -c "CREATE DATABASE $db"
		exists=0
	fi
	if ((keep)); then kept_dbs+=("$db"); else made_dbs+=("$db"); fi
	DATABASE_URL=$db_url "$kendali" migrate >&2

	t0=$EPOCHREALTIME
	b=$(awk -v t="$t0" -v m="$live_min" 'BEGIN { printf "%.6f", t - 60 * m }')
	if ((!exists)); then
		say "$db: building a history of about $n events over $d days"
		sql_schema | psql_q -v data="$(cat "$data_file")" -v events="$n" \
			-v days="$d" -v hist_end="$b" -v tenant="$tenant"
		prev_to=$(ask_db -c "SELECT a_epoch FROM restart.params")
		run=1
	else
		# From where the previous run's bulk load ended: what it posted
		# live is skipped (ON CONFLICT), what it did not post is added.
		# The live part starts after the previous one when that was less
		# than RESTART_LIVE_MIN ago.
		prev_to=$(ask_db -c "SELECT bulk_to FROM restart.runs ORDER BY run DESC LIMIT 1")
		b=$(ask_db -c "SELECT greatest($b, max(live_to) FILTER (WHERE live_events IS NOT NULL)) FROM restart.runs")
		run=$(ask_db -c "SELECT max(run) + 1 FROM restart.runs")
	fi
	ask_db -c "INSERT INTO restart.runs (run, bulk_from, bulk_to) VALUES ($run, $prev_to, $b)" >/dev/null
	read -r cd td a_epoch < <(ask_db -F ' ' -c "SELECT cd, td, a_epoch FROM restart.params")
	awk -v a="$cd" 'BEGIN { exit !(a >= 1) }' ||
		die "$n events over $d days leave nothing besides the gauges' readings (17 gauges, every 5 minutes: 4896 a day); give fewer days or more events"

	# Calls and tickets by ranges of their numbers (each call or ticket
	# whole in one range), readings by ranges of time, so that every
	# statement stays a few hundred MB.
	local day_lo day_hi
	day_lo=$(awk -v t="$prev_to" -v a="$a_epoch" 'BEGIN { d = int((t - a) / 86400) - 70; print (d < 0 ? 0 : d) }')
	day_hi=$(awk -v t="$b" -v a="$a_epoch" 'BEGIN { print int((t - a) / 86400) + 1 }')
	bulk_events=0
	local opts=(-v tenant="$tenant" -v t_lo="$prev_to" -v t_hi="$b")
	for ((lo = day_lo; lo < day_hi; lo += 100)); do
		hi=$((lo + 100 < day_hi ? lo + 100 : day_hi))
		out=$({ echo "SET work_mem = '256MB';"; sql_bulk_calls; } |
			psql_q -tA "${opts[@]}" -v k_lo=$((lo * cd)) -v k_hi=$((hi * cd)) | tail -n 1)
		bulk_events=$((bulk_events + ${out% *}))
		say "$db: calls of days $lo-$hi: ${out% *} events, ${out#* } summaries"
	done
	for ((lo = day_lo; lo < day_hi; lo += 200)); do
		hi=$((lo + 200 < day_hi ? lo + 200 : day_hi))
		out=$({ echo "SET work_mem = '256MB';"; sql_bulk_tickets; } |
			psql_q -tA "${opts[@]}" -v k_lo=$((lo * td)) -v k_hi=$((hi * td)) | tail -n 1)
		bulk_events=$((bulk_events + ${out% *}))
		say "$db: tickets of days $lo-$hi: ${out% *} events, ${out#* } summaries"
	done
	local r_lo r_hi
	r_lo=$prev_to
	while awk -v a="$r_lo" -v b="$b" 'BEGIN { exit !(a < b) }'; do
		r_hi=$(awk -v a="$r_lo" -v b="$b" 'BEGIN { h = a + 100 * 86400; printf "%.6f", (h < b ? h : b) }')
		out=$(sql_bulk_readings | psql_q -tA -v tenant="$tenant" -v t_lo="$r_lo" -v t_hi="$r_hi" | tail -n 1)
		bulk_events=$((bulk_events + ${out% *}))
		say "$db: readings up to $(date -u -d "@${r_hi%.*}" +%F): ${out% *}, and ${out#* } level alerts"
		r_lo=$r_hi
	done
	say "$db: VACUUM ANALYZE"
	psql_q -c "VACUUM (ANALYZE) events, calls, tickets, sensors, alerts"
	psql_q -c CHECKPOINT 2>/dev/null ||
		say "CHECKPOINT not allowed for this role; a start may meet one"
	built_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	ask_db -c "UPDATE restart.runs SET bulk_events = $bulk_events, build_s = $built_s WHERE run = $run" >/dev/null
	cur_run=$run
	bulk_to=$b
	say "$db: $bulk_events events inserted in $built_s s"
}

# post_live: posts every event in [bulk_to, now) through the running server,
# with one key per poster.
post_live() {
	local p a_epoch cd td d_b d_p kc_lo kc_hi kt_lo kt_hi poster key n f acc
	p=$(awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.3f", t }')
	# No call starts from 65 minutes before p (a call is answered or
	# abandoned within 4 minutes of its start) to band_min minutes after
	# p's hour-old mark: none crosses the one-hour windows while measuring.
	# The band starts at the live part's start at the earliest: calls
	# before it are stored already and must stay what they are.
	ask_db -c "UPDATE restart.runs SET live_to = $p,
		band_lo = greatest($p - 3900, $bulk_to),
		band_hi = greatest($p - 3600 + 60 * $band_min, $bulk_to) WHERE run = $cur_run" >/dev/null
	read -r cd td a_epoch < <(ask_db -F ' ' -c "SELECT cd, td, a_epoch FROM restart.params")
	d_b=$(awk -v t="$bulk_to" -v a="$a_epoch" 'BEGIN { print int((t - a) / 86400) }')
	d_p=$(awk -v t="$p" -v a="$a_epoch" 'BEGIN { print int((t - a) / 86400) + 1 }')
	kc_lo=$(((d_b > 1 ? d_b - 1 : 0) * cd))
	kc_hi=$((d_p * cd))
	kt_lo=$(((d_b > 70 ? d_b - 70 : 0) * td))
	kt_hi=$((d_p * td))
	sql_live | psql_q -tA -v b="$bulk_to" -v p="$p" -v kc_lo="$kc_lo" \
		-v kc_hi="$kc_hi" -v kt_lo="$kt_lo" -v kt_hi="$kt_hi" >"$work/live.tsv"
	live_events=0
	for poster in callcentre lapor bpbd; do
		case $poster in
		callcentre) types=call ;;
		lapor) types=report ;;
		bpbd) types=sensor ;;
		esac
		key=$(DATABASE_URL=$db_url "$kendali" key create --poster "$poster" --types "$types" | tail -n 1)
		[[ $key == kd_*_* ]] || die "kendali key create printed no key"
		k=${key#kd_}
		key_ids+=("$db_url ${k%%_*}")
		rm -f "$work"/live-"$poster".*
		awk -F '\t' -v p="$poster" '$1 == p { print $2 }' "$work/live.tsv" |
			split -l 1000 - "$work/live-$poster."
		for f in "$work"/live-"$poster".*; do
			[[ -s $f ]] || continue
			n=$(wc -l <"$f")
			acc=$(curl -sS --max-time 60 -H "Authorization: Bearer $key" \
				-H 'Content-Type: application/x-ndjson' --data-binary "@$f" \
				-w '\n%{http_code}' "$url/api/v1/events")
			[[ ${acc##*$'\n'} == 202 ]] || die "posting the live part: ${acc//$'\n'/ }"
			acc=${acc%$'\n'*}
			[[ $acc == "{\"accepted\":$n,\"duplicates\":0}" ]] ||
				die "posting $n live events: $acc"
			live_events=$((live_events + n))
		done
	done
	ask_db -c "UPDATE restart.runs SET live_events = $live_events WHERE run = $cur_run" >/dev/null
	say "live part: $live_events events of the last $(awk -v a="$bulk_to" -v b="$p" 'BEGIN { printf "%.0f", (b - a) / 60 }') minutes posted through the server"
	# The server publishes on a timer; let it show them.
	sleep 1
}

# measure_db LABEL DB EVENTS DAYS: one database, its first start and the
# restarts; the figures go to $work/LABEL.*.
measure_db() {
	local label=$1 db=$2 n=$3 d=$4 i pre post edges res
	prepare_db "$db" "$n" "$d"
	say "$db: first start after the load"
	start_server "$label-first"
	printf '%s\n' "$rebuilt_line" >"$work/$label.first"
	say "  $rebuilt_line"
	post_live
	for ((i = 1; i <= runs; i++)); do
		curl -sf --max-time 10 "$url/api/v1/kpis" >"$work/$label-$i.pre.json" ||
			die "GET /api/v1/kpis failed before restart $i"
		stop_server
		res=$work/$label-$((i - 1)).res
		((i > 1)) || res=$work/$label-first.res
		printf 'stop_s=%s\n' "$(awk -v a="$stop_began" -v b="$(rget "$res.exit" exit_epoch)" \
			'BEGIN { printf "%.3f", b - a }')" >>"$res"
		start_server "$label-$i" "$work/$label-$i.pre.json"
		res=$work/$label-$i.res
		printf 'rebuilt=%s\n' "$rebuilt_line" >>"$res"
		say "restart $i: ${rebuilt_line:-no 'state rebuilt' line}; ready $(rget "$res" ready_s | cut -c1-6) s"
		if [[ $(rget "$res" ws_first_equal) == 0 || $(rget "$res" kpis_first_equal) == 0 ]]; then
			pre=$(sed -nE 's/^\{"at":"([^"]*)".*/\1/p' "$work/$label-$i.pre.json")
			post=$(rget "$res" kpis_first_at)
			edges=$(sql_edges | psql_q -tA -v tenant="$tenant" -v pre="$pre" -v post="$post")
			say "restart $i: the first snapshot differs from the one before in: $(rget "$res" kpis_first_diff)"
			if [[ -n $edges ]]; then
				say "  between $pre and $post, items crossed a window's edge: ${edges//$'\n'/; }"
			else
				say "  no item crossed a window's edge between $pre and $post: the restart lost or changed state"
			fi
			printf 'edges=%s\n' "${edges//$'\n'/; }" >>"$res"
		fi
	done
	# The state at the end, for the table.
	{
		printf 'held=%s\n' "$(sed -nE 's/.*: ([0-9]+) calls, ([0-9]+) tickets, ([0-9]+) sensors.*/\1 calls, \2 tickets, \3 sensors/p' <<<"$rebuilt_line")"
		printf 'events=%s\n' "$(ask_db -c "SELECT count(*) FROM events")"
		printf 'built_s=%s\nbulk_events=%s\n' "$built_s" "$bulk_events"
		printf 'span_days=%s\n' "$(ask_db -c "SELECT round(((extract(epoch FROM now()) - a_epoch) / 86400)::numeric, 1) FROM restart.params")"
		printf 'live_events=%s\n' "$live_events"
	} >"$work/$label.sum"
}

# explain_db LABEL: the plan of every start-up query, a line each in
# $work/LABEL.plans (the whole plans in $work/LABEL.explain).
explain_db() {
	local label=$1
	"$PYTHON" "$work/queries.py" "$root" >"$work/queries.sql"
	[[ -s $work/queries.sql ]] || die "found no start-up query in server/store.c"
	psql_q -v tenant="$tenant" -f "$work/queries.sql" >"$work/$label.explain"
	awk '
	function flush() {
		if (name != "")
			printf "%-28s %9s ms  %s\n", name, ms, scans
		name = ""; scans = ""; ms = "?"
	}
	/^@@ q[0-9]+: / { flush(); name = substr($0, 4); next }
	/^@@ sql: / { next }
	/(Seq Scan on|Index Scan|Index Only Scan|Bitmap Index Scan|Bitmap Heap Scan)/ {
		s = $0; rows = ""
		if (match(s, /actual time=[^)]* rows=[0-9]+ loops=[0-9]+/)) {
			rows = substr(s, RSTART, RLENGTH); sub(/.* rows=/, "", rows)
			loops = rows; sub(/ .*/, "", rows); sub(/.*=/, "", loops)
			rows = rows " rows" (loops > 1 ? " x " loops " loops" : "")
		}
		sub(/^ *(-> *)?/, "", s); sub(/  \(.*/, "", s)
		if (s ~ /^Seq Scan on (events|calls|tickets)( |$)/)
			s = "SEQUENTIAL: " s
		scans = scans (scans != "" ? "; " : "") s (rows != "" ? " (" rows ")" : "")
	}
	/Execution Time:/ { ms = $3 }
	END { flush() }' "$work/$label.explain" >"$work/$label.plans"
}

# check_db LABEL: every summary recomputed from the stored events.
check_db() {
	local label=$1 out
	((check)) || return 0
	say "checking every call's and ticket's summary against its events"
	out=$({ echo "SET work_mem = '256MB';"; sql_check; } | psql_q -tA -v tenant="$tenant" | tail -n 1)
	read -r c_n c_bad t_n t_bad <<<"$out"
	printf 'check=%s of %s calls and %s of %s tickets as the events say\n' \
		"$((c_n - c_bad))" "$c_n" "$((t_n - t_bad))" "$t_n" >>"$work/$label.sum"
	if ((c_bad || t_bad)); then
		say "summaries that differ from their events: $c_bad calls, $t_bad tickets"
	fi
}

finish_db() {
	local label=$1 last
	last=$work/$label-$runs.res
	stop_server
	printf 'stop_s=%s\n' "$(awk -v a="$stop_began" -v b="$(rget "$last.exit" exit_epoch)" \
		'BEGIN { printf "%.3f", b - a }')" >>"$last"
	explain_db "$label"
	check_db "$label"
}

measure_db main "$main_db" "$events" "$days"
finish_db main
labels=(main)
if [[ -n $compare ]]; then
	# As many events a day, over fewer days.
	small_days=$(awk -v d="$days" -v n="$events" -v c="$compare" 'BEGIN { printf "%.4f", d * c / n }')
	measure_db small "$small_db" "$compare" "$small_days"
	finish_db small
	labels+=(small)
fi

# ---- the table ----

# min median max of a figure over the restarts of LABEL ("-" when missing).
stats() {
	local label=$1 key=$2 i v
	for ((i = 1; i <= runs; i++)); do
		if [[ $key == rebuilt_s ]]; then
			v=$(rget "$work/$label-$i.res" rebuilt | sed -nE 's/^state rebuilt in ([0-9.]+) s.*/\1/p')
		else
			v=$(rget "$work/$label-$i.res" "$key")
		fi
		echo "${v:--}"
	done | sort -g | awk '
		{ v[NR] = $1; if ($1 == "-") miss = 1 }
		END {
			if (miss || NR == 0) { printf "%8s %8s %8s", "-", "-", "-"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%8.3f %8.3f %8.3f", v[1], m, v[NR]
		}'
}

count_equal() {
	local label=$1 key=$2 i n=0
	for ((i = 1; i <= runs; i++)); do
		[[ $(rget "$work/$label-$i.res" "$key") == 1 ]] && n=$((n + 1))
	done
	echo "$n of $runs"
}

sget() { rget "$work/$1.sum" "$2"; }

# 10012345 -> 10,012,345
num() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

table() {
	local l row i res
	printf '\nkendali restart benchmark: %s restarts per database; seconds from starting the process\n' "$runs"
	printf '%-36s' ""
	for l in "${labels[@]}"; do
		printf ' %26s' "$(num "$(sget "$l" events)") events"
	done
	printf '\n%-36s' ""
	for l in "${labels[@]}"; do
		printf ' %8s %8s %8s' min median max
	done
	echo
	for row in "rebuilt_s|state rebuilt (the server's log)" \
		"ws_first_s|first websocket snapshot" \
		"ws_equal_s|  equal to the one before" \
		"kpis_first_s|first GET /api/v1/kpis" \
		"kpis_equal_s|  equal to the one before" \
		"ready_s|/readyz 200" \
		"stop_s|stop (SIGTERM to exit)"; do
		printf '%-36s' "${row#*|}"
		for l in "${labels[@]}"; do
			printf ' %s' "$(stats "$l" "${row%%|*}")"
		done
		echo
	done
	for l in "${labels[@]}"; do
		echo
		printf '%s events over %s days: %s loaded in bulk (in %s s, VACUUM ANALYZE included), %s posted through the server\n' \
			"$(num "$(sget "$l" events)")" "$(sget "$l" span_days)" \
			"$(num "$(sget "$l" bulk_events)")" "$(sget "$l" built_s)" \
			"$(num "$(sget "$l" live_events)")"
		printf '  held at start-up: %s\n' "$(sget "$l" held)"
		printf '  first snapshot equal to the one before: websocket %s, GET %s\n' \
			"$(count_equal "$l" ws_first_equal)" "$(count_equal "$l" kpis_first_equal)"
		for ((i = 1; i <= runs; i++)); do
			res=$work/$l-$i.res
			if [[ -n $(rget "$res" kpis_first_diff) ]]; then
				printf '  restart %s differs in: %s (%s)\n' "$i" "$(rget "$res" kpis_first_diff)" \
					"$(e=$(rget "$res" edges); echo "${e:-no item crossed the edge of a window}")"
			fi
		done
		printf '  first start after the build (not counted above): %s\n' "$(cat "$work/$l.first")"
		if [[ -n $(sget "$l" check) ]]; then
			printf '  summaries: %s\n' "$(sget "$l" check)"
		fi
		printf '  start-up queries (EXPLAIN ANALYZE: time, then each scan and the rows it read):\n'
		sed 's/^/    /' "$work/$l.plans"
	done
}

if [[ -n ${BENCH_OUT:-} ]]; then
	table | tee "$work/restart.txt"
else
	table
fi
