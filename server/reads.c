#include "reads.h"

#include "buf.h"
#include "log.h"
#include "migrate.h"
#include "load.h"
#include "event.h"
#include "sqltext.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *col(PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static int64_t us_or_none(PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c)
		   ? KPI_NONE
		   : strtoll(PQgetvalue(r, row, c), NULL, 10);
}

static bool rows_ok(PGresult *r)
{
	return r && PQresultStatus(r) == PGRES_TUPLES_OK;
}

/* A statement's callback and its argument, for the typed callbacks. */
struct pending {
	void (*cb)(void);
	void *arg;
};

static struct pending *pending_new(void (*cb)(void), void *arg)
{
	struct pending *q = malloc(sizeof(*q));

	if (q)
		*q = (struct pending){cb, arg};
	return q;
}

static int queue(struct pgc *c, const char *sql, int n, const char *const *p,
		 pgc_result_cb done, struct pending *q)
{
	if (!q)
		return -1;
	if (pgc_query(c, sql, n, p, done, q) < 0) {
		free(q);
		return -1;
	}
	return 0;
}

/* ---- alerts ---- */

void reads_alert_row(PGresult *r, int i, struct alert *a)
{
	memset(a, 0, sizeof(*a));
	a->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	a->kind = alert_kind_parse(PQgetvalue(r, i, 1));
	/* An offline alert has no level: its severity is NULL. */
	a->severity = kpi_level_parse(col(r, i, 2));
	snprintf(a->sensor_id, sizeof(a->sensor_id), "%s", PQgetvalue(r, i, 3));
	snprintf(a->message, sizeof(a->message), "%s", PQgetvalue(r, i, 4));
	a->raised_us = us_or_none(r, i, 5);
	a->cleared_us = us_or_none(r, i, 6);
	snprintf(a->acked_by, sizeof(a->acked_by), "%s", PQgetvalue(r, i, 7));
	a->acked_us = us_or_none(r, i, 8);
	snprintf(a->note, sizeof(a->note), "%s", PQgetvalue(r, i, 9));
}

static void alerts_done(void *arg, PGresult *r, const char *error)
{
	struct pending *q = arg;
	reads_alerts_cb cb = (reads_alerts_cb)q->cb;
	int n = rows_ok(r) ? PQntuples(r) : 0;
	struct alert *list = n ? calloc((size_t)n, sizeof(*list)) : NULL;

	if (!rows_ok(r) || (n && !list)) {
		cb(q->arg, false, NULL, 0);
	} else {
		for (int i = 0; i < n; i++)
			reads_alert_row(r, i, &list[i]);
		cb(q->arg, true, list, (size_t)n);
	}
	free(list);
	free(q);
}

int reads_alerts_all(struct pgc *c, const char *tenant, int limit,
		     reads_alerts_cb cb, void *arg)
{
	char lim[16];
	const char *p[2] = {tenant, lim};

	snprintf(lim, sizeof(lim), "%d", limit);
	return queue(c,
		     "SELECT " READS_ALERT_COLUMNS " FROM alerts"
		     " WHERE tenant = $1 ORDER BY raised_at DESC, id DESC"
		     " LIMIT $2",
		     2, p, alerts_done, pending_new((void (*)(void))cb, arg));
}

/* ---- the KPI history ---- */

static void kpis_at_done(void *arg, PGresult *r, const char *error)
{
	struct pending *q = arg;
	reads_kpis_at_cb cb = (reads_kpis_at_cb)q->cb;

	if (!rows_ok(r))
		cb(q->arg, false, false, KPI_NONE, NULL);
	else if (PQntuples(r) == 0)
		cb(q->arg, true, false, KPI_NONE, NULL);
	else
		cb(q->arg, true, true, us_or_none(r, 0, 0),
		   PQgetvalue(r, 0, 1));
	free(q);
}

int reads_kpis_at(struct pgc *c, const char *tenant, int64_t at_us,
		  reads_kpis_at_cb cb, void *arg)
{
	char at[24];
	const char *p[2] = {tenant, at};

	snprintf(at, sizeof(at), "%lld", (long long)at_us);
	return queue(c,
		     "SELECT kd_us(at), kpis::text FROM kpi_history"
		     " WHERE tenant = $1 AND at <= kd_ts($2)"
		     " AND at > kd_ts($2) - interval '15 minutes'"
		     " ORDER BY at DESC LIMIT 1",
		     2, p, kpis_at_done, pending_new((void (*)(void))cb, arg));
}

/* ---- series ---- */

/*
 * Each statement: $1 tenant, $2 start, $3 step, $4 end (microseconds);
 * rows of (bucket, ...) for the buckets with something in them.
 */
static const char *const SERIES_SQL[] = {
    [READS_CALLS_RECEIVED] =
	"SELECT (kd_us(received_at) - $2) / $3, count(*)"
	" FROM calls WHERE tenant = $1"
	" AND received_at >= kd_ts($2) AND received_at < kd_ts($4)"
	" GROUP BY 1",
    [READS_REPORTS_RECEIVED] =
	"SELECT (kd_us(received_at) - $2) / $3, count(*)"
	" FROM tickets WHERE tenant = $1"
	" AND received_at >= kd_ts($2) AND received_at < kd_ts($4)"
	" GROUP BY 1",
    [READS_REPORTS_RESOLVED] =
	"SELECT (kd_us(resolved_at) - $2) / $3, count(*)"
	" FROM tickets WHERE tenant = $1 AND status = " SQL_RESOLVED
	" AND resolved_at >= kd_ts($2) AND resolved_at < kd_ts($4)"
	" GROUP BY 1",
    /* Per bucket of resolved_at: tickets resolved (latest status) and
     * those within their category's SLA ($5 categories, $6 SLAs). */
    [READS_REPORTS_SLA_MET] =
	"SELECT (kd_us(t.resolved_at) - $2) / $3, count(*),"
	" count(*) FILTER (WHERE kd_us(t.resolved_at)"
	"  - kd_us(t.received_at) <= s.sla_us)"
	" FROM tickets t JOIN unnest($5::text[], $6::int8[])"
	"  AS s(category, sla_us)"
	"  ON s.category = coalesce(t.category, 'other')"
	" WHERE t.tenant = $1 AND t.status = " SQL_RESOLVED
	" AND t.resolved_at >= kd_ts($2)"
	" AND t.resolved_at < kd_ts($4) GROUP BY 1",
    /* $5 the sensor: min, max and last reading of each bucket. */
    [READS_SENSOR] = "SELECT (kd_us(occurred_at) - $2) / $3, min(value),"
		     " max(value), (array_agg(value ORDER BY occurred_at DESC,"
		     " value DESC))[1] FROM events WHERE tenant = $1"
		     " AND type = 'sensor' AND subject = $5"
		     " AND occurred_at >= kd_ts($2) AND occurred_at < kd_ts($4)"
		     " GROUP BY 1",
};

struct series_q {
	enum reads_series kind;
	int n;
	reads_series_cb cb;
	void *arg;
};

static void series_done(void *arg, PGresult *r, const char *error)
{
	struct series_q *q = arg;
	int rows = rows_ok(r) ? PQntuples(r) : 0;
	struct reads_bucket *b = rows ? calloc((size_t)rows, sizeof(*b)) : NULL;
	size_t n = 0;

	if (!rows_ok(r) || (rows && !b)) {
		q->cb(q->arg, false, NULL, 0);
		free(b);
		free(q);
		return;
	}
	for (int i = 0; i < rows; i++) {
		long long index = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		struct reads_bucket *x = &b[n];

		if (index < 0 || index >= q->n)
			continue;
		x->index = (int)index;
		if (q->kind == READS_SENSOR) {
			x->min = strtod(PQgetvalue(r, i, 1), NULL);
			x->max = strtod(PQgetvalue(r, i, 2), NULL);
			x->last = strtod(PQgetvalue(r, i, 3), NULL);
		} else {
			x->count = strtoll(PQgetvalue(r, i, 1), NULL, 10);
			if (q->kind == READS_REPORTS_SLA_MET)
				x->met = strtoll(PQgetvalue(r, i, 2), NULL, 10);
		}
		n++;
	}
	q->cb(q->arg, true, b, n);
	free(b);
	free(q);
}

int reads_series(struct pgc *c, const struct reads_series_q *sq,
		 reads_series_cb cb, void *arg)
{
	struct series_q *q = malloc(sizeof(*q));
	char start[24], step[24], end[24];
	struct buf cats = {0}, slas = {0};
	const char *p[6] = {sq->tenant, start, step, end, sq->sensor_id, NULL};
	int np = sq->kind == READS_SENSOR ? 5 : 4, rc;

	if (!q)
		return -1;
	*q = (struct series_q){sq->kind, sq->n, cb, arg};
	snprintf(start, sizeof(start), "%lld", (long long)sq->start_us);
	snprintf(step, sizeof(step), "%lld", (long long)sq->step_us);
	snprintf(end, sizeof(end), "%lld",
		 (long long)(sq->start_us + (int64_t)sq->n * sq->step_us));
	if (sq->kind == READS_REPORTS_SLA_MET) {
		/* Two arrays in PostgreSQL's text form: the categories and
		 * their SLAs. */
		buf_str(&cats, "{");
		buf_str(&slas, "{");
		for (int i = 0; i < EV_RC_COUNT; i++) {
			buf_printf(&cats, "%s%s", i ? "," : "",
				   ev_category_name(EV_REPORT, i));
			buf_printf(&slas, "%s%lld", i ? "," : "",
				   (long long)sq->sla_us[i]);
		}
		buf_str(&cats, "}");
		buf_str(&slas, "}");
		p[4] = cats.p;
		p[5] = slas.p;
		np = 6;
	}
	rc = cats.oom || slas.oom
		 ? -1
		 : pgc_query(c, SERIES_SQL[sq->kind], np, p, series_done, q);
	buf_free(&cats);
	buf_free(&slas);
	if (rc < 0)
		free(q);
	return rc < 0 ? -1 : 0;
}

/* ---- logins and sessions ---- */

static void login_read(void *arg, PGresult *r, const char *error)
{
	struct pending *q = arg;
	reads_login_cb cb = (reads_login_cb)q->cb;
	struct reads_login l = {0};

	if (!rows_ok(r) || PQntuples(r) != 1) {
		log_warn("reading a login: %s",
			 error ? error : PQresultErrorMessage(r));
		cb(q->arg, false, NULL);
		free(q);
		return;
	}
	l.user = !PQgetisnull(r, 0, 0);
	if (l.user) {
		snprintf(l.password, sizeof(l.password), "%s",
			 PQgetvalue(r, 0, 0));
		snprintf(l.role, sizeof(l.role), "%s", PQgetvalue(r, 0, 1));
		l.disabled = PQgetvalue(r, 0, 2)[0] == 't';
	}
	l.wait_s = PQgetisnull(r, 0, 3) ? 0 : atoi(PQgetvalue(r, 0, 3));
	cb(q->arg, true, &l);
	OPENSSL_cleanse(&l, sizeof(l));
	free(q);
}

int reads_login(struct pgc *c, const char *tenant, const char *username,
		reads_login_cb cb, void *arg)
{
	const char *p[2] = {tenant, username};

	/* One row whether or not the name is a user's or has failed. */
	return queue(c,
		     "SELECT u.password_hash, u.role,"
		     " u.disabled_at IS NOT NULL,"
		     " ceil(extract(epoch FROM f.wait_until - now()))::int"
		     " FROM (SELECT 1) AS one"
		     " LEFT JOIN users u ON u.tenant = $1 AND u.username = $2"
		     " LEFT JOIN login_failures f"
		     "  ON f.tenant = $1 AND f.username = $2",
		     2, p, login_read, pending_new((void (*)(void))cb, arg));
}

static void failure_recorded(void *arg, PGresult *r, const char *error)
{
	(void)arg;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		log_warn("a failed login was not recorded: %s",
			 error ? error : PQresultErrorMessage(r));
}

int reads_login_failed(struct pgc *c, const char *tenant, const char *username,
		       const char *peer, const char *why)
{
	const char *p[4] = {tenant, username, peer, why};

	return pgc_query(
	    c,
	    "WITH f AS (INSERT INTO login_failures AS f (tenant,"
	    " username, failures, last_at, wait_until)"
	    " VALUES ($1, $2, 1, now(), now())"
	    " ON CONFLICT (tenant, username) DO UPDATE SET"
	    " failures = f.failures + 1, last_at = now(),"
	    " wait_until = now() + CASE WHEN f.failures + 1 >= 5"
	    " THEN least(30, 2 ^ least(f.failures - 4, 10))"
	    " * interval '1 s' ELSE interval '0' END)"
	    " INSERT INTO audit (tenant, actor, action, detail, peer)"
	    " VALUES ($1, 'user:' || $2, 'session.login_failed',"
	    " jsonb_build_object('reason', $4::text), $3)",
	    4, p, failure_recorded, NULL);
}

static void session_opened(void *arg, PGresult *r, const char *error)
{
	struct pending *q = arg;
	reads_session_cb cb = (reads_session_cb)q->cb;

	if (!rows_ok(r) || PQntuples(r) != 1) {
		log_warn("a session was not stored: %s",
			 error ? error : PQresultErrorMessage(r));
		cb(q->arg, false, KPI_NONE);
	} else {
		cb(q->arg, true, us_or_none(r, 0, 0));
	}
	free(q);
}

int reads_session_open(struct pgc *c, const char *tenant, const char *id,
		       const char *username, const char *digest_hex, int hours,
		       const char *peer, reads_session_cb cb, void *arg)
{
	char h[16];
	const char *p[6] = {id, tenant, username, digest_hex, h, peer};

	snprintf(h, sizeof(h), "%d", hours);
	return queue(c,
		     "WITH s AS (INSERT INTO sessions (session_id, tenant,"
		     " username, secret_sha256, expires_at, peer)"
		     " VALUES ($1, $2, $3, $4, now() + $5::int *"
		     " interval '1 hour', $6) RETURNING expires_at),"
		     " a AS (INSERT INTO audit (tenant, actor, action,"
		     " detail, peer) VALUES ($2, 'user:' || $3,"
		     " 'session.login', jsonb_build_object('session', $1),"
		     " $6)),"
		     " f AS (DELETE FROM login_failures"
		     " WHERE tenant = $2 AND username = $3)"
		     " SELECT kd_us(expires_at) FROM s",
		     6, p, session_opened,
		     pending_new((void (*)(void))cb, arg));
}

static void session_ended(void *arg, PGresult *r, const char *error)
{
	struct pending *q = arg;
	reads_done_cb cb = (reads_done_cb)q->cb;

	if (!rows_ok(r))
		log_warn("a logout was not stored: %s",
			 error ? error : PQresultErrorMessage(r));
	cb(q->arg, rows_ok(r));
	free(q);
}

int reads_session_end(struct pgc *c, const char *tenant, const char *id,
		      const char *actor, const char *peer, reads_done_cb cb,
		      void *arg)
{
	const char *p[4] = {id, tenant, actor, peer};

	return queue(c,
		     "WITH s AS (UPDATE sessions SET ended_at = now()"
		     " WHERE session_id = $1 AND tenant = $2),"
		     " a AS (INSERT INTO audit (tenant, actor, action, detail,"
		     " peer) VALUES ($2, $3, 'session.logout',"
		     " jsonb_build_object('session', $1), $4))"
		     " SELECT 1",
		     4, p, session_ended, pending_new((void (*)(void))cb, arg));
}

/* ---- credentials ---- */

int reads_keys(struct pgc *c, pgc_result_cb cb, void *arg)
{
	return pgc_query(c, READS_KEYS_SQL, 0, NULL, cb, arg);
}

int reads_credentials(struct pgc *c, pgc_result_cb cb, void *arg)
{
	return pgc_query(c, READS_CREDENTIALS_SQL, 0, NULL, cb, arg);
}

static void command_done(void *arg, PGresult *r, const char *error)
{
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		log_warn("%s failed: %s", (const char *)arg,
			 r ? PQresultErrorMessage(r) : error);
}

int reads_listen(struct pgc *c)
{
	if (pgc_query(c, "LISTEN kendali_keys", 0, NULL, command_done,
		      "LISTEN kendali_keys") < 0)
		return -1;
	if (pgc_query(c, "LISTEN kendali_auth", 0, NULL, command_done,
		      "LISTEN kendali_auth") < 0)
		return -1;
	if (pgc_query(c, "LISTEN kendali_tenants", 0, NULL, command_done,
		      "LISTEN kendali_tenants") < 0)
		return -1;
	return pgc_query(c, "LISTEN kendali_reference", 0, NULL, command_done,
			 "LISTEN kendali_reference");
}

int reads_prune(struct pgc *c)
{
	return pgc_query(
	    c,
	    "WITH f AS (DELETE FROM login_failures"
	    " WHERE last_at < now() - interval '1 day')"
	    " DELETE FROM sessions WHERE coalesce(ended_at, expires_at)"
	    " < now() - interval '30 days'",
	    0, NULL, command_done, "pruning old sessions");
}

int reads_tenants(struct pgc *c, pgc_result_cb cb, void *arg)
{
	return pgc_query(c, LOAD_TENANTS_SQL, 0, NULL, cb, arg);
}

int reads_members(struct pgc *c, pgc_result_cb cb, void *arg)
{
	return pgc_query(c, TENANT_MEMBERS_SQL, 0, NULL, cb, arg);
}

int reads_tenant_districts(struct pgc *c, const char *tenant, pgc_result_cb cb,
			   void *arg)
{
	const char *p[1] = {tenant};

	return pgc_query(c, LOAD_DISTRICTS_SQL, 1, p, cb, arg);
}

int reads_tenant_tickets(struct pgc *c, const char *tenant, pgc_result_cb cb,
			 void *arg)
{
	struct pgc_param p[1] = {{.value = tenant}};

	return pgc_query_params(c, NULL, LOAD_TICKETS_SQL, 1, p, true, cb, arg);
}

int reads_tenant_sensors(struct pgc *c, const char *tenant, pgc_result_cb cb,
			 void *arg)
{
	const char *p[1] = {tenant};

	return pgc_query(c, LOAD_SENSORS_SQL, 1, p, cb, arg);
}

int reads_schema(struct pgc *c, pgc_result_cb cb, void *arg)
{
	return pgc_query(c, MIGRATE_VERSIONS_SQL, 0, NULL, cb, arg);
}
