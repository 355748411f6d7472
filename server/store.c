#include "store.h"

#include "buf.h"
#include "hmap.h"
#include "log.h"
#include "pgbin.h"
#include "pgconn.h"
#include "sqltext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_MAX_EVENTS 20000 /* one statement stays a few MB at most */
#define WRITER_QUEUE 256       /* statements waiting on the connection */

/*
 * One statement stores a group: the events, then the merged summary of
 * every call and ticket they touch.  Summaries merge with order-independent
 * rules (min, max, latest by kd_key), so events may come late and out of
 * order.  A single statement is a single transaction, and its result
 * arrives after COMMIT.
 *
 * The events go in with a plain INSERT: a resent event (the client did not
 * see its 202) then fails the whole statement on the primary key, and the
 * group is written again by the careful statement, which skips duplicates
 * (ON CONFLICT DO NOTHING) and merges only the events it stored.  Skipping
 * costs: the speculative insertion of ON CONFLICT doubles the cost of an
 * event's row, and the careful statement must read each event's order key
 * back from what it stored.  So the plain one runs first, and the careful
 * one alone for a while after a duplicate (CAREFUL_MS), since a client
 * catching up resends many.
 *
 * Parameters and results are binary (pgbin.h): per event its tenant,
 * poster, event_id, type, occurred_at, its order key (kd_key), subject,
 * status, rank, category, district, agency, title, value, lat, lon; per
 * request its poster, number of events, peer and ($20) tenant, for the
 * audit.  A group mixes tenants: each row carries its own.  Result
 * rows: see enum sql_row_col (sqltext.h).
 */
#define SQL_EVENTS                                                             \
	"WITH aud AS ("                                                        \
	" INSERT INTO audit (tenant, actor, action, detail, peer)"             \
	" SELECT tenant, actor, 'events.post',"                                \
	"  jsonb_build_object('events', n), peer"                              \
	"  FROM unnest($20::text[], $17::text[], $18::int4[], $19::text[])"    \
	"  AS r(tenant, actor, n, peer)"                                       \
	"), e AS ("                                                            \
	" SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"            \
	"  $4::text[], $5::timestamptz[], $6::int8[], $7::text[], $8::text[]," \
	"  $9::int2[], $10::text[], $11::text[], $12::text[], $13::text[],"    \
	"  $14::float8[], $15::float8[], $16::float8[])"                       \
	" AS u(tenant, poster, event_id, type, occurred_at, key, subject,"     \
	"  status, rank, category, district, agency, title, value, lat, lon)"  \
	"), ins AS ("                                                          \
	" INSERT INTO events (tenant, poster, event_id, type, occurred_at,"    \
	"  subject, status, rank, category, district, agency, title, value,"   \
	"  lat, lon)"                                                          \
	" SELECT tenant, poster, event_id, type, occurred_at, subject,"        \
	"  status, rank, category, district, agency, title, value, lat, lon"   \
	"  FROM e"

/* The summaries of the calls and tickets in stored events src. */
#define SQL_SUMMARIES(src)                                                     \
	"), cn AS ("                                                           \
	" SELECT tenant, subject,"                                             \
	"  min(occurred_at) FILTER (WHERE status = 'received') AS recv_min,"   \
	"  min(occurred_at) AS first_at, max(key) AS status_key,"              \
	"  max(key) FILTER (WHERE category IS NOT NULL) AS category_key,"      \
	"  (array_agg(category ORDER BY key DESC, category DESC)"              \
	"   FILTER (WHERE category IS NOT NULL))[1] AS category,"              \
	"  min(occurred_at) FILTER (WHERE status = 'answered') AS "            \
	"answered_at,"                                                         \
	"  min(occurred_at) FILTER (WHERE status = 'abandoned')"               \
	"  AS abandoned_at"                                                    \
	" FROM " src " WHERE type = 'call' GROUP BY tenant, subject"           \
	"), cu AS ("                                                           \
	" INSERT INTO calls AS c (tenant, call_id, recv_min, first_at,"        \
	"  status_key, category_key, category, answered_at, abandoned_at)"     \
	" SELECT tenant, subject, recv_min, first_at, status_key,"             \
	"  category_key, category, answered_at, abandoned_at FROM cn"          \
	" ON CONFLICT (tenant, call_id) DO UPDATE SET"                         \
	"  recv_min = LEAST(c.recv_min, EXCLUDED.recv_min),"                   \
	"  first_at = LEAST(c.first_at, EXCLUDED.first_at),"                   \
	"  status_key = GREATEST(c.status_key, EXCLUDED.status_key),"          \
	"  category = CASE WHEN kd_newer(EXCLUDED.category_key,"               \
	"   EXCLUDED.category, c.category_key, c.category)"                    \
	"   THEN EXCLUDED.category ELSE c.category END,"                       \
	"  category_key = GREATEST(c.category_key, EXCLUDED.category_key),"    \
	"  answered_at = LEAST(c.answered_at, EXCLUDED.answered_at),"          \
	"  abandoned_at = LEAST(c.abandoned_at, EXCLUDED.abandoned_at)"        \
	" RETURNING call_id, received_at, status, category, answered_at,"      \
	"  abandoned_at, tenant"                                               \
	"), tn AS ("                                                           \
	" SELECT tenant, subject,"                                             \
	"  min(occurred_at) FILTER (WHERE status = 'received') AS recv_min,"   \
	"  min(occurred_at) AS first_at, max(key) AS status_key,"              \
	"  max(key) FILTER (WHERE category IS NOT NULL) AS category_key,"      \
	"  (array_agg(category ORDER BY key DESC, category DESC)"              \
	"   FILTER (WHERE category IS NOT NULL))[1] AS category,"              \
	"  max(key) FILTER (WHERE district IS NOT NULL) AS district_key,"      \
	"  (array_agg(district ORDER BY key DESC, district DESC)"              \
	"   FILTER (WHERE district IS NOT NULL))[1] AS district,"              \
	"  max(key) FILTER (WHERE agency IS NOT NULL) AS agency_key,"          \
	"  (array_agg(agency ORDER BY key DESC, agency DESC)"                  \
	"   FILTER (WHERE agency IS NOT NULL))[1] AS agency,"                  \
	"  bool_or(status = 'dispatched') AS dispatched,"                      \
	"  max(occurred_at) FILTER (WHERE status = 'resolved') AS resolved_at" \
	" FROM " src " WHERE type = 'report' GROUP BY tenant, subject"         \
	"), tu AS ("                                                           \
	" INSERT INTO tickets AS t (tenant, ticket, recv_min, first_at,"       \
	"  status_key, category_key, category, district_key, district,"        \
	"  agency_key, agency, dispatched, resolved_at)"                       \
	" SELECT tenant, subject, recv_min, first_at, status_key,"             \
	"  category_key, category, district_key, district, agency_key, "       \
	"agency,"                                                              \
	"  dispatched, resolved_at FROM tn"                                    \
	" ON CONFLICT (tenant, ticket) DO UPDATE SET"                          \
	"  recv_min = LEAST(t.recv_min, EXCLUDED.recv_min),"                   \
	"  first_at = LEAST(t.first_at, EXCLUDED.first_at),"                   \
	"  status_key = GREATEST(t.status_key, EXCLUDED.status_key),"          \
	"  category = CASE WHEN kd_newer(EXCLUDED.category_key,"               \
	"   EXCLUDED.category, t.category_key, t.category)"                    \
	"   THEN EXCLUDED.category ELSE t.category END,"                       \
	"  category_key = GREATEST(t.category_key, EXCLUDED.category_key),"    \
	"  district = CASE WHEN kd_newer(EXCLUDED.district_key,"               \
	"   EXCLUDED.district, t.district_key, t.district)"                    \
	"   THEN EXCLUDED.district ELSE t.district END,"                       \
	"  district_key = GREATEST(t.district_key, EXCLUDED.district_key),"    \
	"  agency = CASE WHEN kd_newer(EXCLUDED.agency_key,"                   \
	"   EXCLUDED.agency, t.agency_key, t.agency)"                          \
	"   THEN EXCLUDED.agency ELSE t.agency END,"                           \
	"  agency_key = GREATEST(t.agency_key, EXCLUDED.agency_key),"          \
	"  dispatched = t.dispatched OR EXCLUDED.dispatched,"                  \
	"  resolved_at = GREATEST(t.resolved_at, EXCLUDED.resolved_at)"        \
	" RETURNING ticket, received_at, status, category, district, agency,"  \
	"  dispatched, resolved_at, tenant"                                    \
	")" SQL_CALL_ROW "cu UNION ALL" SQL_TICKET_ROW "tu"

static const char FAST_SQL[] = SQL_EVENTS SQL_SUMMARIES("e");

/* The careful statement's insert skips what is stored and says what it
 * stored, with each event's order key read back from it. */
#define SQL_SKIP_STORED                                                        \
	" ON CONFLICT DO NOTHING"                                              \
	" RETURNING tenant, poster, event_id, type, subject, occurred_at,"     \
	"  rank, status, category, district, agency, value"                    \
	"), k AS ("                                                            \
	" SELECT *, kd_key(occurred_at, rank) AS key FROM ins"

#define SQL_STORED_ROWS                                                        \
	" UNION ALL SELECT 'e', event_id, poster, type, subject, occurred_at," \
	"  value, NULL, NULL, NULL, NULL, NULL, NULL, NULL, tenant FROM ins"

static const char CAREFUL_SQL[] =
    SQL_EVENTS SQL_SKIP_STORED SQL_SUMMARIES("k") SQL_STORED_ROWS;

/* After a duplicate, how long groups go to the careful statement first. */
#define CAREFUL_MS 1000

#define NCOLS 15 /* per event */
#define NPARAMS (1 + NCOLS + 4)

struct job {
	struct job *next;
	char *tenant;
	char *poster;
	char *peer;
	struct ev_batch batch;
	store_done_cb cb;
	void *arg;
	bool solo; /* retried alone after its group failed */
	size_t accepted;
};

struct group {
	struct store *s;
	struct job *jobs;
	size_t events;
	bool careful;
};

struct store {
	uv_loop_t *loop;
	struct store_sink sink;
	struct pgc *conn;
	uv_check_t check;
	struct job *head, *tail;
	size_t pending_events, max_pending_events;
	bool in_flight;
	uint64_t careful_until; /* uv_now: careful statement first till then */
	uint64_t groups, written, rewritten;
};

static void flush(struct store *s);

static void job_done(struct job *j, enum store_status st, const char *error)
{
	size_t n = j->batch.n;

	j->cb(j->arg, st, j->accepted, st == STORE_OK ? n - j->accepted : 0,
	      error);
	ev_batch_free(&j->batch);
	free(j->tenant);
	free(j->poster);
	free(j->peer);
	free(j);
}

/* Ends every job of a list without storing it. */
static void fail_jobs(struct job *jobs, const char *error)
{
	for (struct job *j = jobs, *next; j; j = next) {
		next = j->next;
		job_done(j, STORE_UNAVAILABLE, error);
	}
}

static const uint32_t col_types[NCOLS] = {
    PGBIN_TEXT, PGBIN_TEXT, PGBIN_TEXT,	  PGBIN_TIMESTAMPTZ, PGBIN_INT8,
    PGBIN_TEXT, PGBIN_TEXT, PGBIN_INT2,	  PGBIN_TEXT,	     PGBIN_TEXT,
    PGBIN_TEXT, PGBIN_TEXT, PGBIN_FLOAT8, PGBIN_FLOAT8,	     PGBIN_FLOAT8};

static void float_or_null(struct pgbin_arr *a, double v, bool null)
{
	if (null)
		pgbin_arr_null(a);
	else
		pgbin_arr_float8(a, v);
}

static void add_event(struct pgbin_arr *col, const char *poster,
		      const struct ev_event *e)
{
	int rank = e->type == EV_SENSOR ? 0 : e->status;

	pgbin_arr_text(&col[0], poster);
	pgbin_arr_text(&col[1], e->id);
	pgbin_arr_text(&col[2], ev_type_name(e->type));
	pgbin_arr_timestamptz(&col[3], e->occurred_us);
	pgbin_arr_int8(&col[4], e->occurred_us * 8 + rank); /* kd_key */
	pgbin_arr_text(&col[5], e->subject);
	pgbin_arr_text(&col[6], e->type == EV_SENSOR
				    ? NULL
				    : ev_status_name(e->type, e->status));
	pgbin_arr_int2(&col[7], (int16_t)rank);
	pgbin_arr_text(&col[8], e->category >= 0
				    ? ev_category_name(e->type, e->category)
				    : NULL);
	pgbin_arr_text(&col[9], e->district);
	pgbin_arr_text(&col[10], e->agency);
	pgbin_arr_text(&col[11], e->title);
	float_or_null(&col[12], e->value, e->type != EV_SENSOR);
	float_or_null(&col[13], e->lat, !e->has_location);
	float_or_null(&col[14], e->lon, !e->has_location);
}

static int category_of(enum ev_type t, const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < ev_category_count(t); i++)
		if (strcmp(ev_category_name(t, i), name) == 0)
			return i;
	return -1;
}

static const char *col(PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

/* A timestamptz column of a binary result, in microseconds since 1970. */
static int64_t out_us(PGresult *r, int row, enum sql_row_col c)
{
	return PQgetisnull(r, row, c)
		   ? KPI_NONE
		   : pgbin_timestamptz(PQgetvalue(r, row, c));
}

/* Passes binary result rows (enum sql_row_col) on to the sink. */
void store_apply_rows(const struct store_sink *sink, PGresult *r)
{
	for (int i = 0; i < PQntuples(r); i++) {
		char kind = PQgetvalue(r, i, OUT_KIND)[0];
		int status =
		    kind == 'e' ? 0 : pgbin_int2(PQgetvalue(r, i, OUT_STATUS));

		if (kind == 'c') {
			struct kpi_call c = {
			    .call_id = PQgetvalue(r, i, OUT_ID),
			    .received_us = out_us(r, i, OUT_AT),
			    .status = status,
			    .category =
				category_of(EV_CALL, col(r, i, OUT_CATEGORY)),
			    .answered_us = out_us(r, i, OUT_DONE_AT),
			    .abandoned_us = out_us(r, i, OUT_ABANDONED_AT),
			};
			sink->call(sink->arg, PQgetvalue(r, i, OUT_TENANT), &c);
		} else if (kind == 't') {
			struct kpi_ticket t = {
			    .ticket = PQgetvalue(r, i, OUT_ID),
			    .received_us = out_us(r, i, OUT_AT),
			    .status = status,
			    .category =
				category_of(EV_REPORT, col(r, i, OUT_CATEGORY)),
			    .district = col(r, i, OUT_DISTRICT),
			    .agency = col(r, i, OUT_AGENCY),
			    .dispatched =
				pgbin_bool(PQgetvalue(r, i, OUT_DISPATCHED)),
			    .resolved_us = out_us(r, i, OUT_DONE_AT),
			};
			sink->ticket(sink->arg, PQgetvalue(r, i, OUT_TENANT),
				     &t);
		} else if (strcmp(PQgetvalue(r, i, OUT_TYPE), "sensor") == 0) {
			sink->reading(
			    sink->arg, PQgetvalue(r, i, OUT_TENANT),
			    PQgetvalue(r, i, OUT_SUBJECT), out_us(r, i, OUT_AT),
			    pgbin_float8(PQgetvalue(r, i, OUT_VALUE)));
		}
	}
}

/* The readings of a group the plain statement stored: all of them. */
static void apply_readings(struct store *s, const struct group *g)
{
	for (const struct job *j = g->jobs; j; j = j->next)
		for (size_t i = 0; i < j->batch.n; i++) {
			const struct ev_event *e = &j->batch.events[i];

			if (e->type == EV_SENSOR)
				s->sink.reading(s->sink.arg, j->tenant,
						e->subject, e->occurred_us,
						e->value);
		}
}

/*
 * Credits each event the careful statement stored to the first request of
 * the group that sent it.
 */
static int credit(struct group *g, PGresult *r)
{
	struct hmap first = {0};
	struct buf keys = {0};
	int rc = 0;

	/* Keys are "tenant\x1fposter\x1fid", kept in one buffer; offsets are
	 * stored until the buffer stops moving. */
	size_t *offs = malloc((g->events + 1) * sizeof(*offs));
	struct job **owner = malloc((g->events + 1) * sizeof(*owner));
	size_t n = 0;
	if (!offs || !owner) {
		rc = -1;
		goto out;
	}
	for (struct job *j = g->jobs; j; j = j->next) {
		for (size_t i = 0; i < j->batch.n; i++) {
			offs[n] = keys.len;
			owner[n++] = j;
			buf_printf(&keys, "%s\x1f%s\x1f%s", j->tenant,
				   j->poster, j->batch.events[i].id);
			buf_add(&keys, "", 1);
		}
	}
	if (keys.oom) {
		rc = -1;
		goto out;
	}
	for (size_t i = n; i-- > 0;)
		if (hmap_put(&first, keys.p + offs[i], owner[i]) < 0) {
			rc = -1;
			goto out;
		}
	struct buf key = {0};
	for (int i = 0; i < PQntuples(r); i++) {
		if (PQgetvalue(r, i, OUT_KIND)[0] != 'e')
			continue;
		buf_reset(&key);
		buf_printf(&key, "%s\x1f%s\x1f%s", PQgetvalue(r, i, OUT_TENANT),
			   PQgetvalue(r, i, OUT_POSTER),
			   PQgetvalue(r, i, OUT_ID));
		struct job *j = key.oom ? NULL : hmap_get(&first, key.p);
		if (j)
			j->accepted++;
	}
	buf_free(&key);
out:
	hmap_free(&first);
	buf_free(&keys);
	free(offs);
	free(owner);
	return rc;
}

/* Puts the jobs of a failed group back at the head, each to run alone. */
static void requeue_solo(struct store *s, struct job *jobs)
{
	struct job *last = jobs;

	for (struct job *j = jobs; j; j = j->next) {
		j->solo = true;
		j->accepted = 0;
		last = j;
		s->pending_events += j->batch.n;
	}
	last->next = s->head;
	s->head = jobs;
	if (!s->tail)
		s->tail = last;
}

/* Whether the plain statement failed because an event was stored before. */
static bool duplicate_event(PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);

	return state && strcmp(state, "23505") == 0 && constraint &&
	       strcmp(constraint, "events_pkey") == 0;
}

static int send_group(struct group *g);

static void group_cb(void *arg, PGresult *r, const char *error)
{
	struct group *g = arg;
	struct store *s = g->s;
	struct job *j, *next;

	s->in_flight = false;
	if (!r) {
		fail_jobs(g->jobs, error);
	} else if (PQresultStatus(r) != PGRES_TUPLES_OK && !g->careful &&
		   duplicate_event(r)) {
		/* Nothing was stored: the same group goes again, carefully,
		 * ahead of anything queued since. */
		s->careful_until = uv_now(s->loop) + CAREFUL_MS;
		s->rewritten++;
		g->careful = true;
		if (send_group(g) == 0) {
			s->in_flight = true;
			return;
		}
		fail_jobs(g->jobs, "database unavailable");
	} else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorMessage(r);
		if (g->jobs->next) {
			log_warn("group of %zu events failed, retrying its "
				 "requests alone: %s",
				 g->events, msg);
			requeue_solo(s, g->jobs);
		} else {
			log_error("request of %zu events failed: %s", g->events,
				  msg);
			job_done(g->jobs, STORE_FAILED, msg);
		}
	} else if (!g->careful || credit(g, r) == 0) {
		/* The plain statement stored every event; the careful one
		 * credited each request with what it stored. */
		s->groups++;
		store_apply_rows(&s->sink, r);
		if (!g->careful)
			apply_readings(s, g);
		for (j = g->jobs; j; j = next) {
			next = j->next;
			if (!g->careful)
				j->accepted = j->batch.n;
			s->written += j->accepted;
			job_done(j, STORE_OK, NULL);
		}
	} else {
		/* Committed, but the counts cannot be told: the client
		 * retries and gets duplicates, which loses nothing. */
		store_apply_rows(&s->sink, r);
		fail_jobs(g->jobs, "out of memory");
	}
	free(g);
	flush(s);
}

/* Sends a group's statement: 0, or -1 when it could not be queued. */
static int send_group(struct group *g)
{
	struct store *s = g->s;
	/* Per event its tenant and NCOLS columns; per request its poster,
	 * number of events, peer and tenant. */
	struct pgbin_arr tenants, cols[NCOLS], req[4];
	struct pgc_param params[NPARAMS];
	bool oom = false;
	int rc;

	for (int c = 0; c < NCOLS; c++)
		pgbin_arr_start(&cols[c], col_types[c]);
	pgbin_arr_start(&req[0], PGBIN_TEXT);
	pgbin_arr_start(&req[1], PGBIN_INT4);
	pgbin_arr_start(&req[2], PGBIN_TEXT);
	pgbin_arr_start(&req[3], PGBIN_TEXT);
	pgbin_arr_start(&tenants, PGBIN_TEXT);
	for (const struct job *j = g->jobs; j; j = j->next) {
		for (size_t i = 0; i < j->batch.n; i++) {
			pgbin_arr_text(&tenants, j->tenant);
			add_event(cols, j->poster, &j->batch.events[i]);
		}
		pgbin_arr_text(&req[0], j->poster);
		pgbin_arr_int4(&req[1], (int32_t)j->batch.n);
		pgbin_arr_text(&req[2], j->peer);
		pgbin_arr_text(&req[3], j->tenant);
	}
	for (int c = 0; c < NPARAMS; c++) {
		struct pgbin_arr *a = c == 0	   ? &tenants
				      : c <= NCOLS ? &cols[c - 1]
						   : &req[c - 1 - NCOLS];

		oom |= pgbin_arr_end(a) < 0;
		params[c] = (struct pgc_param){
		    .value = a->b.p, .length = (int)a->b.len, .binary = true};
	}
	rc = oom ? -1
		 : pgc_query_params(
		       s->conn, g->careful ? "kd_insert_careful" : "kd_insert",
		       g->careful ? CAREFUL_SQL : FAST_SQL, NPARAMS, params,
		       true, group_cb, g);
	for (int c = 0; c < NCOLS; c++)
		pgbin_arr_free(&cols[c]);
	for (int c = 0; c < 4; c++)
		pgbin_arr_free(&req[c]);
	pgbin_arr_free(&tenants);
	return rc;
}

/* Sends the next group if none is in flight. */
static void flush(struct store *s)
{
	struct group *g;
	struct job **tailp;

	if (s->in_flight || !s->head)
		return;
	g = calloc(1, sizeof(*g));
	if (!g)
		return;
	g->s = s;
	g->careful = uv_now(s->loop) < s->careful_until;
	tailp = &g->jobs;
	/* A job retried alone goes alone; others fill the group. */
	while (s->head) {
		struct job *j = s->head;

		if (g->jobs &&
		    (j->solo || g->events + j->batch.n > GROUP_MAX_EVENTS))
			break;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		j->next = NULL;
		*tailp = j;
		tailp = &j->next;
		g->events += j->batch.n;
		s->pending_events -= j->batch.n;
		if (j->solo)
			break;
	}
	if (send_group(g) < 0) {
		fail_jobs(g->jobs, "database unavailable");
		free(g);
	} else {
		s->in_flight = true;
	}
}

/*
 * Runs once per loop iteration, after I/O: everything that arrived in this
 * turn goes into one group.
 */
static void check_cb(uv_check_t *h)
{
	struct store *s = h->data;

	if (!s->head)
		uv_check_stop(&s->check);
	flush(s);
}

int store_submit(struct store *s, const char *tenant, const char *poster,
		 const char *peer, struct ev_batch *batch, store_done_cb cb,
		 void *arg)
{
	struct job *j;

	if (!pgc_connected(s->conn) && pgc_state(s->conn) != PGC_CONNECTING)
		return STORE_UNAVAILABLE;
	if (s->pending_events + batch->n > s->max_pending_events)
		return STORE_UNAVAILABLE;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->tenant = strdup(tenant)) ||
	    !(j->poster = strdup(poster)) || !(j->peer = strdup(peer))) {
		if (j) {
			free(j->tenant);
			free(j->poster);
		}
		free(j);
		return STORE_FAILED; /* out of memory: a 500, not a 503 */
	}
	j->batch = *batch;
	memset(batch, 0, sizeof(*batch));
	j->cb = cb;
	j->arg = arg;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->pending_events += j->batch.n;
	uv_check_start(&s->check, check_cb);
	return 0;
}

struct sensor_req {
	store_sensor_cb cb;
	void *arg;
};

static void sensor_cb(void *arg, PGresult *r, const char *error)
{
	struct sensor_req *q = arg;

	if (!r)
		q->cb(q->arg, false, false, 0, error);
	else if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		q->cb(q->arg, false, false, 0, PQresultErrorMessage(r));
	else
		q->cb(q->arg, true, PQgetvalue(r, 0, 1)[0] == 't',
		      strtoll(PQgetvalue(r, 0, 0), NULL, 10), NULL);
	free(q);
}

static const char *num_or_null(char *buf, size_t n, double v)
{
	if (isnan(v))
		return NULL;
	snprintf(buf, n, "%.17g", v);
	return buf;
}

int store_put_sensor(struct store *s, const char *tenant,
		     const struct ev_sensor_def *d, const char *actor,
		     const char *peer, store_sensor_cb cb, void *arg)
{
	char lat[32], lon[32], th[3][32], off[16];
	struct sensor_req *q = malloc(sizeof(*q));
	const char *p[14];

	if (!q)
		return STORE_UNAVAILABLE;
	q->cb = cb;
	q->arg = arg;
	snprintf(off, sizeof(off), "%d", d->offline_after_s);
	p[0] = tenant;
	p[1] = d->sensor_id;
	p[2] = d->name;
	p[3] = d->metric;
	p[4] = d->unit;
	p[5] = d->district[0] ? d->district : NULL;
	p[6] = d->has_location ? num_or_null(lat, sizeof(lat), d->lat) : NULL;
	p[7] = d->has_location ? num_or_null(lon, sizeof(lon), d->lon) : NULL;
	for (int i = 0; i < 3; i++)
		p[8 + i] = num_or_null(th[i], sizeof(th[i]), d->thresholds[i]);
	p[11] = off;
	p[12] = actor;
	p[13] = peer;
	if (pgc_query(s->conn,
		      "WITH aud AS (INSERT INTO audit (tenant, actor, action,"
		      " detail, peer) VALUES ($1, $13, 'sensor.put',"
		      " jsonb_build_object('sensor_id', $2::text), $14))"
		      " INSERT INTO sensors (tenant, sensor_id, name, metric,"
		      " unit, district, lat, lon, waspada, siaga, awas,"
		      " offline_after_s) VALUES ($1, $2, $3, $4, $5, $6, $7,"
		      " $8, $9, $10, $11, $12)"
		      " ON CONFLICT (tenant, sensor_id) DO UPDATE SET"
		      " name = EXCLUDED.name, metric = EXCLUDED.metric,"
		      " unit = EXCLUDED.unit, district = EXCLUDED.district,"
		      " lat = EXCLUDED.lat, lon = EXCLUDED.lon,"
		      " waspada = EXCLUDED.waspada, siaga = EXCLUDED.siaga,"
		      " awas = EXCLUDED.awas,"
		      " offline_after_s = EXCLUDED.offline_after_s,"
		      " updated_at = now()"
		      " RETURNING kd_us(created_at), (xmax = 0)",
		      14, p, sensor_cb, q) < 0) {
		free(q);
		return STORE_UNAVAILABLE;
	}
	return 0;
}

struct alert_req {
	store_alert_cb cb;
	void *arg;
};

static void alert_cb(void *arg, PGresult *r, const char *error)
{
	struct alert_req *q = arg;
	bool ok = r && (PQresultStatus(r) == PGRES_TUPLES_OK ||
			PQresultStatus(r) == PGRES_COMMAND_OK);
	int64_t id = 0;

	if (ok && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (!ok)
		log_warn("storing an alert failed: %s",
			 r ? PQresultErrorMessage(r) : error);
	q->cb(q->arg, ok, id);
	free(q);
}

static const char *us_or_null(char *buf, size_t n, int64_t us)
{
	if (us == KPI_NONE)
		return NULL;
	snprintf(buf, n, "%lld", (long long)us);
	return buf;
}

int store_save_alert(struct store *s, const char *tenant, const struct alert *a,
		     store_alert_cb cb, void *arg)
{
	char id[24], raised[24], cleared[24], acked[24];
	struct alert_req *q = malloc(sizeof(*q));
	const char *p[10];
	int rc;

	if (!q)
		return STORE_UNAVAILABLE;
	q->cb = cb;
	q->arg = arg;
	p[1] = a->kind == ALERT_OFFLINE ? NULL : kpi_level_name(a->severity);
	p[2] = a->message;
	p[3] = us_or_null(cleared, sizeof(cleared), a->cleared_us);
	p[4] = a->acked_us == KPI_NONE ? NULL : a->acked_by;
	p[5] = us_or_null(acked, sizeof(acked), a->acked_us);
	p[6] = a->note[0] ? a->note : NULL;
	if (a->id == 0) {
		p[0] = tenant;
		p[7] = alert_kind_name(a->kind);
		p[8] = a->sensor_id;
		p[9] = us_or_null(raised, sizeof(raised), a->raised_us);
		rc =
		    pgc_query(s->conn,
			      "INSERT INTO alerts (tenant, severity, message,"
			      " cleared_at, acked_by, acked_at, ack_note, kind,"
			      " sensor_id, raised_at) VALUES ($1, $2, $3,"
			      " kd_ts($4), $5, kd_ts($6), $7, $8, $9,"
			      " kd_ts($10)) RETURNING id",
			      10, p, alert_cb, q);
	} else {
		snprintf(id, sizeof(id), "%lld", (long long)a->id);
		p[0] = id;
		rc = pgc_query(s->conn,
			       "UPDATE alerts SET severity = $2, message = $3,"
			       " cleared_at = kd_ts($4), acked_by = $5,"
			       " acked_at = kd_ts($6), ack_note = $7"
			       " WHERE id = $1",
			       7, p, alert_cb, q);
	}
	if (rc < 0) {
		free(q);
		return STORE_UNAVAILABLE;
	}
	return 0;
}

static void history_cb(void *arg, PGresult *r, const char *error)
{
	(void)arg;
	if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK &&
		   PQresultStatus(r) != PGRES_TUPLES_OK))
		log_warn("recording KPI history failed: %s",
			 r ? PQresultErrorMessage(r) : error);
}

void store_save_history(struct store *s, const char *tenant, int64_t at_us,
			const char *kpis)
{
	char at[24];
	const char *p[3] = {tenant, at, kpis};

	snprintf(at, sizeof(at), "%lld", (long long)at_us);
	if (pgc_query(s->conn,
		      "WITH old AS (DELETE FROM kpi_history WHERE tenant = $1"
		      " AND at < kd_ts($2) - interval '400 days')"
		      " INSERT INTO kpi_history (tenant, at, kpis)"
		      " VALUES ($1, kd_ts($2), $3::jsonb)"
		      " ON CONFLICT DO NOTHING",
		      3, p, history_cb, NULL) < 0)
		log_warn("recording KPI history skipped: database unavailable");
}

static void audit_cb(void *arg, PGresult *r, const char *error)
{
	(void)arg;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		log_warn("writing the audit trail failed: %s",
			 r ? PQresultErrorMessage(r) : error);
}

void store_audit(struct store *s, const char *tenant, const char *actor,
		 const char *action, const char *detail, const char *peer)
{
	const char *p[5] = {tenant, actor, action, detail, peer};

	if (pgc_query(s->conn,
		      "INSERT INTO audit (tenant, actor, action, detail, peer)"
		      " VALUES ($1, $2, $3, $4::jsonb, $5)",
		      5, p, audit_cb, NULL) < 0)
		log_warn("audit of %s by %s not written: database unavailable",
			 action, actor);
}

struct store *store_new(uv_loop_t *loop, const char *conninfo,
			const struct store_sink *sink,
			size_t max_pending_events, unsigned timeout_ms)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = loop;
	s->sink = *sink;
	s->max_pending_events = max_pending_events;
	s->conn = pgc_new(loop, conninfo, "writer", WRITER_QUEUE, timeout_ms,
			  NULL, NULL);
	if (!s->conn) {
		free(s);
		return NULL;
	}
	uv_check_init(loop, &s->check);
	s->check.data = s;
	return s;
}

bool store_ready(const struct store *s)
{
	return pgc_connected(s->conn);
}

bool store_idle(const struct store *s)
{
	return !s->head && !s->in_flight;
}

size_t store_pending(const struct store *s)
{
	return s->pending_events;
}

uint64_t store_groups(const struct store *s)
{
	return s->groups;
}

uint64_t store_groups_rewritten(const struct store *s)
{
	return s->rewritten;
}

static void check_closed_cb(uv_handle_t *h)
{
	struct store *s = h->data;

	free(s);
}

void store_close(struct store *s)
{
	fail_jobs(s->head, "server shutting down");
	s->head = s->tail = NULL;
	/* Fails the group in flight too, through group_cb. */
	pgc_close(s->conn);
	uv_check_stop(&s->check);
	uv_close((uv_handle_t *)&s->check, check_closed_cb);
}
