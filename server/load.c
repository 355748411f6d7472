/*
 * server/load.c - the start-up load: on a blocking connection, before the
 * loop runs, what the KPIs need, in queries whose cost grows with what is
 * open or recent, not with the history.  The writer beside it (store.c)
 * never blocks.
 */
#include "load.h"

#include "hmap.h"

#include "reads.h"
#include "sqltext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t parse_us(const char *v)
{
	return (v && *v) ? strtoll(v, NULL, 10) : KPI_NONE;
}

static const char *col(PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

/* A query's rows in text (format 0) or binary (1); NULL with err set. */
static PGresult *query_as(PGconn *conn, const char *sql, int n,
			  const char *const *p, int format, char *err,
			  size_t errlen)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, format);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

static PGresult *query(PGconn *conn, const char *sql, int n,
		       const char *const *p, char *err, size_t errlen)
{
	return query_as(conn, sql, n, p, 0, err, errlen);
}

/*
 * The name Indonesians give a zone's time: WIB, WITA, WIT for the offsets
 * of Indonesia's zones, else the offset itself.
 */
static void zone_label(const char *tz, int offset_s, char *out, size_t len)
{
	int m = abs(offset_s) / 60;

	if (strncmp(tz, "Asia/", 5) == 0 && offset_s == 7 * 3600)
		snprintf(out, len, "WIB");
	else if (strncmp(tz, "Asia/", 5) == 0 && offset_s == 8 * 3600)
		snprintf(out, len, "WITA");
	else if (strncmp(tz, "Asia/", 5) == 0 && offset_s == 9 * 3600)
		snprintf(out, len, "WIT");
	else
		snprintf(out, len, "UTC%c%02d:%02d", offset_s < 0 ? '-' : '+',
			 m / 60 % 100, m % 60);
}

void load_tenant_row(PGresult *r, int i, struct tenant_info *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", PQgetvalue(r, i, 0));
	snprintf(t->name, sizeof(t->name), "%s", PQgetvalue(r, i, 1));
	snprintf(t->head, sizeof(t->head), "%s", PQgetvalue(r, i, 2));
	t->province = strcmp(PQgetvalue(r, i, 3), "province") == 0;
	snprintf(t->time_zone, sizeof(t->time_zone), "%s", PQgetvalue(r, i, 4));
	t->tz_offset_s = atoi(PQgetvalue(r, i, 5));
	zone_label(t->time_zone, t->tz_offset_s, t->zone, sizeof(t->zone));
}

int load_tenant(PGconn *conn, const char *id, struct tenant_info *t, char *err,
		size_t errlen)
{
	const char *p[1] = {id};
	PGresult *r =
	    query(conn, LOAD_TENANTS_SQL " WHERE id = $1", 1, p, err, errlen);

	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "unknown tenant \"%s\"", id);
		PQclear(r);
		return -1;
	}
	load_tenant_row(r, 0, t);
	PQclear(r);
	return 0;
}

int load_tenants(PGconn *conn, PGresult **out, char *err, size_t errlen)
{
	*out =
	    query(conn, LOAD_TENANTS_SQL " ORDER BY id", 0, NULL, err, errlen);
	return *out ? 0 : -1;
}

int load_members(PGconn *conn, struct tenants *ts, char *err, size_t errlen)
{
	PGresult *r = query(conn, TENANT_MEMBERS_SQL, 0, NULL, err, errlen);
	int rc;

	if (!r)
		return -1;
	if ((rc = tenants_set_members(ts, r)) < 0)
		snprintf(err, errlen, "out of memory");
	PQclear(r);
	return rc;
}

int load_district_rows(PGresult *r, struct hmap *names)
{
	for (int i = 0; i < PQntuples(r); i++) {
		char *name = strdup(PQgetvalue(r, i, 0));

		if (!name || hmap_put(names, name, name) < 0) {
			free(name);
			return -1;
		}
	}
	return 0;
}

int load_districts(PGconn *conn, const char *tenant, struct hmap *names,
		   char *err, size_t errlen)
{
	const char *p[1] = {tenant};
	PGresult *r = query(conn, LOAD_DISTRICTS_SQL, 1, p, err, errlen);
	int rc;

	if (!r)
		return -1;
	if ((rc = load_district_rows(r, names)) < 0)
		snprintf(err, errlen, "out of memory");
	PQclear(r);
	return rc;
}

static double dbl_or_nan(const char *v)
{
	return v ? strtod(v, NULL) : NAN;
}

static int load_sensors(PGconn *conn, const char *tenant, struct sensors *k,
			char *err, size_t errlen)
{
	const char *p[1] = {tenant};
	PGresult *r = query(conn, LOAD_SENSORS_SQL, 1, p, err, errlen);
	int rc;

	if (!r)
		return -1;
	if ((rc = load_sensor_rows(r, k)) < 0)
		snprintf(err, errlen, "out of memory");
	PQclear(r);
	return rc;
}

int load_sensor_rows(PGresult *r, struct sensors *k)
{
	for (int i = 0; i < PQntuples(r); i++) {
		struct ev_sensor_def d = {0};

		snprintf(d.sensor_id, sizeof(d.sensor_id), "%s", col(r, i, 0));
		snprintf(d.name, sizeof(d.name), "%s", col(r, i, 1));
		snprintf(d.metric, sizeof(d.metric), "%s", col(r, i, 2));
		snprintf(d.unit, sizeof(d.unit), "%s", col(r, i, 3));
		snprintf(d.district, sizeof(d.district), "%s",
			 col(r, i, 4) ? col(r, i, 4) : "");
		d.has_location = col(r, i, 5) && col(r, i, 6);
		d.lat = dbl_or_nan(col(r, i, 5));
		d.lon = dbl_or_nan(col(r, i, 6));
		for (int t = 0; t < EV_THRESHOLDS; t++)
			d.thresholds[t] = dbl_or_nan(col(r, i, 7 + t));
		d.offline_after_s = atoi(col(r, i, 10));
		if (sensors_define(k, &d, parse_us(col(r, i, 11))) < 0)
			return -1;
	}
	return 0;
}

/* Rows of the writer's result layout (enum out_col), to the sink. */
static int load_rows(PGconn *conn, const char *sql, const char *tenant,
		     const struct store_sink *sink, char *err, size_t errlen)
{
	const char *p[1] = {tenant};
	PGresult *r = query_as(conn, sql, 1, p, 1, err, errlen);

	if (!r)
		return -1;
	store_apply_rows(sink, r);
	PQclear(r);
	return 0;
}

static int load_alerts(PGconn *conn, const char *tenant, struct alerts *as,
		       char *err, size_t errlen)
{
	const char *p[1] = {tenant};
	PGresult *r = query(conn,
			    "SELECT " READS_ALERT_COLUMNS " FROM alerts"
			    " WHERE tenant = $1 AND cleared_at IS NULL",
			    1, p, err, errlen);

	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct alert a;

		reads_alert_row(r, i, &a);
		if (alerts_load(as, &a) < 0) {
			snprintf(err, errlen, "out of memory");
			PQclear(r);
			return -1;
		}
	}
	PQclear(r);
	return 0;
}

int load_state(PGconn *conn, const char *tenant, struct sensors *k,
	       struct alerts *as, const struct store_sink *sink, char *err,
	       size_t errlen)
{
	/*
	 * Only what a KPI can still count: calls inside the longest call
	 * window (24 h, plus "today" and a margin), open tickets, tickets
	 * resolved within 30 days, and tickets received since yesterday.
	 * Each arm has its own index.
	 */
	static const char calls_sql[] =
	    SQL_CALL_ROW "calls WHERE tenant = $1"
			 " AND received_at >= now() - interval '49 h'"
			 " UNION" SQL_CALL_ROW "calls WHERE tenant = $1"
			 " AND answered_at >= now() - interval '2 h'"
			 " UNION" SQL_CALL_ROW "calls WHERE tenant = $1"
			 " AND abandoned_at >= now() - interval '2 h'";
	static const char tickets_sql[] = LOAD_TICKETS_SQL;
	/* Each gauge's latest reading, as the careful statement's rows of
	 * stored readings. */
	static const char readings_sql[] =
	    "SELECT 'e'::text, NULL::text, NULL::text, 'sensor'::text,"
	    " s.sensor_id, r.occurred_at, r.value, NULL::int2, NULL::text,"
	    " NULL::text, NULL::text, NULL::bool, NULL::timestamptz,"
	    " NULL::timestamptz, s.tenant FROM sensors s"
	    " CROSS JOIN LATERAL (SELECT e.occurred_at, e.value FROM events e"
	    " WHERE e.tenant = s.tenant AND e.type = 'sensor'"
	    " AND e.subject = s.sensor_id"
	    " ORDER BY e.occurred_at DESC, e.value DESC LIMIT 1) r"
	    " WHERE s.tenant = $1";

	if (load_sensors(conn, tenant, k, err, errlen) < 0 ||
	    load_rows(conn, readings_sql, tenant, sink, err, errlen) < 0 ||
	    load_rows(conn, calls_sql, tenant, sink, err, errlen) < 0 ||
	    load_rows(conn, tickets_sql, tenant, sink, err, errlen) < 0 ||
	    load_alerts(conn, tenant, as, err, errlen) < 0)
		return -1;
	return 0;
}

int load_credentials(PGconn *conn, struct keys *keys, struct auth *auth,
		     char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, READS_KEYS_SQL);
	int rc = keys_replace(keys, r);

	if (rc < 0)
		snprintf(err, errlen, "cannot read API keys: %s",
			 PQresultErrorMessage(r));
	PQclear(r);
	if (rc < 0)
		return -1;
	r = PQexec(conn, READS_CREDENTIALS_SQL);
	rc = auth_replace(auth, r);
	if (rc < 0)
		snprintf(err, errlen,
			 "cannot read screen tokens and sessions: %s",
			 PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}
