#include "reads.h"

#include "buf.h"
#include "event.h"
#include "pgconn.h"
#include "sqltext.h"

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

struct alerts_q {
	reads_alerts_cb cb;
	void *arg;
};

static void alerts_done(void *arg, PGresult *r, const char *error)
{
	struct alerts_q *q = arg;
	int n = rows_ok(r) ? PQntuples(r) : 0;
	struct alert *list = n ? calloc((size_t)n, sizeof(*list)) : NULL;

	if (!rows_ok(r) || (n && !list)) {
		q->cb(q->arg, false, NULL, 0);
	} else {
		for (int i = 0; i < n; i++)
			reads_alert_row(r, i, &list[i]);
		q->cb(q->arg, true, list, (size_t)n);
	}
	free(list);
	free(q);
}

int reads_alerts_all(struct pgc *c, const char *tenant, int limit,
		     reads_alerts_cb cb, void *arg)
{
	struct alerts_q *q = malloc(sizeof(*q));
	char lim[16];
	const char *p[2] = {tenant, lim};

	if (!q)
		return -1;
	q->cb = cb;
	q->arg = arg;
	snprintf(lim, sizeof(lim), "%d", limit);
	if (pgc_query(c,
		      "SELECT " READS_ALERT_COLUMNS " FROM alerts"
		      " WHERE tenant = $1 ORDER BY raised_at DESC, id DESC"
		      " LIMIT $2",
		      2, p, alerts_done, q) < 0) {
		free(q);
		return -1;
	}
	return 0;
}

/* ---- the KPI history ---- */

struct kpis_at_q {
	reads_kpis_at_cb cb;
	void *arg;
};

static void kpis_at_done(void *arg, PGresult *r, const char *error)
{
	struct kpis_at_q *q = arg;

	if (!rows_ok(r))
		q->cb(q->arg, false, false, KPI_NONE, NULL);
	else if (PQntuples(r) == 0)
		q->cb(q->arg, true, false, KPI_NONE, NULL);
	else
		q->cb(q->arg, true, true, us_or_none(r, 0, 0),
		      PQgetvalue(r, 0, 1));
	free(q);
}

int reads_kpis_at(struct pgc *c, const char *tenant, int64_t at_us,
		  reads_kpis_at_cb cb, void *arg)
{
	struct kpis_at_q *q = malloc(sizeof(*q));
	char at[24];
	const char *p[2] = {tenant, at};

	if (!q)
		return -1;
	q->cb = cb;
	q->arg = arg;
	snprintf(at, sizeof(at), "%lld", (long long)at_us);
	if (pgc_query(c,
		      "SELECT kd_us(at), kpis::text FROM kpi_history"
		      " WHERE tenant = $1 AND at <= kd_ts($2)"
		      " AND at > kd_ts($2) - interval '15 minutes'"
		      " ORDER BY at DESC LIMIT 1",
		      2, p, kpis_at_done, q) < 0) {
		free(q);
		return -1;
	}
	return 0;
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
