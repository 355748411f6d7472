/*
 * server/api_screens.c - what screens and people read (KPIs now and at a
 * past time, series, the sensor registry, alerts) and their
 * acknowledgements of alerts.  Current state is answered from memory;
 * history goes to the reader connection.
 */
#include "api_routes.h"

#include "access.h"
#include "alert.h"
#include "app.h"
#include "http.h"
#include "keys.h"
#include "kpi.h"
#include "pgconn.h"
#include "reqtext.h"
#include "store.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 5000
#define MINUTE_US INT64_C(60000000)

/* ---- the sensor registry ---- */

json_t *api_sensor_json(struct app *a, int i, int64_t now)
{
	const struct ev_sensor_def *d = kpi_sensor_def(a->kpi, i);
	struct kpi_sensor_view v;
	json_t *th = json_object();
	static const char *const names[3] = {"waspada", "siaga", "awas"};
	char at[40];

	kpi_sensor_view(a->kpi, i, now, &v);
	for (int t = 0; t < 3; t++)
		if (!isnan(d->thresholds[t]))
			json_object_set_new(th, names[t],
					    json_real(d->thresholds[t]));
	if (v.has_reading)
		ev_time_format(v.at_us, a->tz_offset_s, at);
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:b}",
	    "sensor_id", d->sensor_id, "name", d->name, "metric", d->metric,
	    "unit", d->unit, "district",
	    d->district[0] ? json_string(d->district) : json_null(), "location",
	    d->has_location
		? json_pack("{s:f, s:f}", "lat", d->lat, "lon", d->lon)
		: json_null(),
	    "thresholds", th, "offline_after_s", d->offline_after_s, "value",
	    v.has_reading ? json_real(v.value) : json_null(), "at",
	    v.has_reading ? json_string(at) : json_null(), "level",
	    v.has_reading ? json_string(kpi_level_name(v.level)) : json_null(),
	    "online", v.online);
}

int api_sensor_index(struct app *a, const char *id)
{
	for (int i = 0; i < kpi_sensor_count(a->kpi); i++)
		if (strcmp(kpi_sensor_def(a->kpi, i)->sensor_id, id) == 0)
			return i;
	return -1;
}

/*
 * The registry is read by screens, and by sensor gateways checking what
 * they registered.
 */
bool api_sensor_reader(struct http_req *r)
{
	const struct key_info *k;

	if (strncmp(r->client.bearer, "kd_", 3) != 0)
		return access_allow(r, CAN_READ);
	if (!(k = api_authorize(r)))
		return false;
	if (k->types & (1u << EV_SENSOR))
		return true;
	http_problem(r, 403, "forbidden", "Forbidden",
		     "This key may not post sensor readings, so it may not "
		     "read the sensor registry either.",
		     NULL);
	return false;
}

void api_get_sensors(struct http_req *r)
{
	struct app *a = r->app;
	json_t *arr = json_array();
	int64_t now = app_now();

	for (int i = 0; i < kpi_sensor_count(a->kpi); i++)
		json_array_append_new(arr, api_sensor_json(a, i, now));
	http_respond_json(r, 200, json_pack("{s:o}", "sensors", arr));
}

/* ---- reads ---- */

static void history_done(void *arg, PGresult *res, const char *error)
{
	struct http_req *r = arg;
	struct app *a = r->app;
	json_error_t jerr;
	json_t *kpis;
	char at[40];

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_unavailable(
		    r, "The database cannot answer now; retry later.");
		return;
	}
	if (PQntuples(res) == 0) {
		http_problem(r, 404, "not_found", "No record",
			     "No KPIs were recorded in the 15 minutes up to "
			     "that time (they are recorded every 5 minutes "
			     "while the server runs).",
			     NULL);
		return;
	}
	kpis = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
	ev_time_format(strtoll(PQgetvalue(res, 0, 0), NULL, 10), a->tz_offset_s,
		       at);
	http_respond_json(r, 200,
			  json_pack("{s:s, s:o}", "at", at, "kpis",
				    kpis ? kpis : json_object()));
}

/* GET /api/v1/kpis?at=<time>: the record at or before that time. */
static void get_kpis_at(struct http_req *r, const char *when)
{
	struct app *a = r->app;
	int64_t us;
	char p2[24];
	const char *params[2] = {a->cfg.tenant, p2};

	if (ev_time_parse(when, strlen(when), &us) < 0) {
		http_problem(r, 400, "bad_request", "Bad request",
			     "at must be an RFC 3339 time with an offset, e.g. "
			     "2026-11-22T09:00:00+07:00.",
			     NULL);
		return;
	}
	snprintf(p2, sizeof(p2), "%lld", (long long)us);
	if (pgc_query(a->reader,
		      "SELECT kd_us(at), kpis::text FROM kpi_history"
		      " WHERE tenant = $1 AND at <= kd_ts($2)"
		      " AND at > kd_ts($2) - interval '15 minutes'"
		      " ORDER BY at DESC LIMIT 1",
		      2, params, history_done, r) < 0)
		http_unavailable(
		    r, "The database cannot answer now; retry later.");
}

void api_get_kpis(struct http_req *r)
{
	struct app *a = r->app;
	int64_t now = app_now();
	char at[40], when[64];

	if (http_arg(r, "at", when, sizeof(when))) {
		get_kpis_at(r, when);
		return;
	}

	ev_time_format(now, a->tz_offset_s, at);
	http_respond_json(r, 200,
			  json_pack("{s:s, s:I, s:o}", "at", at, "seq",
				    (json_int_t)a->seq, "kpis",
				    app_snapshot(a, now)));
}

#define MAX_WINDOW_S (30 * 24 * 3600)

enum series_kind { SERIES_COUNT, SERIES_SENSOR, SERIES_SLA };

struct series {
	struct http_req *r;
	char name[80];
	enum series_kind kind;
	int64_t start_us, step_us;
	int n;
};

static int64_t floor_div64(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void series_done(void *arg, PGresult *res, const char *error)
{
	struct series *q = arg;
	struct app *a = q->r->app;
	json_t **buckets;
	json_t *arr;
	char t[40];

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_unavailable(
		    q->r, "The database cannot answer now; retry later.");
		free(q);
		return;
	}
	buckets = calloc((size_t)q->n, sizeof(*buckets));
	arr = json_array();
	for (int i = 0; buckets && i < PQntuples(res); i++) {
		long long b = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (b < 0 || b >= q->n)
			continue;
		if (q->kind == SERIES_SENSOR)
			buckets[b] = json_pack(
			    "{s:f, s:f, s:f}", "min",
			    strtod(PQgetvalue(res, i, 1), NULL), "max",
			    strtod(PQgetvalue(res, i, 2), NULL), "last",
			    strtod(PQgetvalue(res, i, 3), NULL));
		else if (q->kind == SERIES_SLA) {
			long long n = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			long long met =
			    strtoll(PQgetvalue(res, i, 2), NULL, 10);
			buckets[b] = json_pack(
			    "{s:I, s:I, s:o}", "resolved", (json_int_t)n, "met",
			    (json_int_t)met, "ratio",
			    n > 0 ? json_real((double)met / (double)n)
				  : json_null());
		} else
			buckets[b] =
			    json_pack("{s:I}", "count",
				      (json_int_t)strtoll(PQgetvalue(res, i, 1),
							  NULL, 10));
	}
	for (int i = 0; buckets && i < q->n; i++) {
		json_t *b = buckets[i];
		if (!b && q->kind == SERIES_SENSOR)
			b = json_pack("{s:n, s:n, s:n}", "min", "max", "last");
		else if (!b && q->kind == SERIES_SLA)
			b = json_pack("{s:i, s:i, s:n}", "resolved", 0, "met",
				      0, "ratio");
		else if (!b)
			b = json_pack("{s:i}", "count", 0);
		ev_time_format(q->start_us + i * q->step_us, a->tz_offset_s, t);
		json_object_set_new(b, "t", json_string(t));
		json_array_append_new(arr, b);
	}
	free(buckets);
	http_respond_json(
	    q->r, 200,
	    json_pack("{s:s, s:I, s:o}", "name", q->name, "step_s",
		      (json_int_t)(q->step_us / 1000000), "buckets", arr));
	free(q);
}

void api_get_series(struct http_req *r)
{
	struct app *a = r->app;
	char name[80], window[16], step[16];
	const char *nm = http_arg(r, "name", name, sizeof(name));
	const char *w = http_arg(r, "window", window, sizeof(window));
	const char *st = http_arg(r, "step", step, sizeof(step));
	int64_t win_us = w ? reqtext_duration_us(w, MAX_WINDOW_S)
			   : 24 * 3600 * INT64_C(1000000);
	int64_t step_us =
	    st ? reqtext_duration_us(st, MAX_WINDOW_S) : 5 * MINUTE_US;
	int64_t off_us = (int64_t)a->tz_offset_s * 1000000, now = app_now();
	const char *sql;
	char p2[24], p3[24], p4[24];
	struct series *q;

	if (!nm) {
		http_problem(r, 400, "bad_request", "Bad request",
			     "Give the series: name=calls.received, "
			     "reports.received, reports.resolved, "
			     "reports.sla_met or sensor:<sensor_id>.",
			     NULL);
		return;
	}
	if (!win_us || !step_us || step_us < MINUTE_US || step_us > win_us ||
	    (win_us + step_us - 1) / step_us > MAX_BUCKETS) {
		http_problem(r, 400, "bad_request", "Bad request",
			     "window must be at most 30d, step at least 1m and "
			     "at most the window, and window/step at most 5000 "
			     "(e.g. window=24h&step=5m).",
			     NULL);
		return;
	}
	if (strcmp(nm, "calls.received") == 0)
		sql =
		    "SELECT (kd_us(received_at) - $2) / $3, count(*)"
		    " FROM calls WHERE tenant = $1"
		    " AND received_at >= kd_ts($2) AND received_at < kd_ts($4)"
		    " GROUP BY 1";
	else if (strcmp(nm, "reports.received") == 0)
		sql =
		    "SELECT (kd_us(received_at) - $2) / $3, count(*)"
		    " FROM tickets WHERE tenant = $1"
		    " AND received_at >= kd_ts($2) AND received_at < kd_ts($4)"
		    " GROUP BY 1";
	else if (strcmp(nm, "reports.resolved") == 0)
		sql =
		    "SELECT (kd_us(resolved_at) - $2) / $3, count(*)"
		    " FROM tickets WHERE tenant = $1 AND status = 3"
		    " AND resolved_at >= kd_ts($2) AND resolved_at < kd_ts($4)"
		    " GROUP BY 1";
	else if (strcmp(nm, "reports.sla_met") == 0)
		/* Per bucket of resolved_at: tickets resolved (latest status)
		 * and those within their category's SLA ($5, $6). */
		sql = "SELECT (kd_us(t.resolved_at) - $2) / $3, count(*),"
		      " count(*) FILTER (WHERE kd_us(t.resolved_at)"
		      "  - kd_us(t.received_at) <= s.sla_us)"
		      " FROM tickets t JOIN unnest($5::text[], $6::int8[])"
		      "  AS s(category, sla_us)"
		      "  ON s.category = coalesce(t.category, 'other')"
		      " WHERE t.tenant = $1 AND t.status = 3"
		      " AND t.resolved_at >= kd_ts($2)"
		      " AND t.resolved_at < kd_ts($4) GROUP BY 1";
	else if (strncmp(nm, "sensor:", 7) == 0 &&
		 kpi_sensor_known(a->kpi, nm + 7))
		sql =
		    "SELECT (kd_us(occurred_at) - $2) / $3, min(value),"
		    " max(value), (array_agg(value ORDER BY occurred_at DESC,"
		    " value DESC))[1] FROM events WHERE tenant = $1"
		    " AND type = 'sensor' AND subject = $5"
		    " AND occurred_at >= kd_ts($2) AND occurred_at < kd_ts($4)"
		    " GROUP BY 1";
	else {
		http_problem(r, 404, "not_found", "Unknown series",
			     "Series are calls.received, reports.received, "
			     "reports.resolved, reports.sla_met and "
			     "sensor:<registered sensor>.",
			     NULL);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
		return;
	}
	q->r = r;
	snprintf(q->name, sizeof(q->name), "%s", nm);
	q->kind = strncmp(nm, "sensor:", 7) == 0       ? SERIES_SENSOR
		  : strcmp(nm, "reports.sla_met") == 0 ? SERIES_SLA
						       : SERIES_COUNT;
	q->step_us = step_us;
	q->n = (int)((win_us + step_us - 1) / step_us);
	/* Buckets align to the step in the tenant's zone; the last one
	 * holds now. */
	q->start_us = floor_div64(now + off_us, step_us) * step_us - off_us -
		      (int64_t)(q->n - 1) * step_us;
	snprintf(p2, sizeof(p2), "%lld", (long long)q->start_us);
	snprintf(p3, sizeof(p3), "%lld", (long long)step_us);
	snprintf(p4, sizeof(p4), "%lld",
		 (long long)(q->start_us + (int64_t)q->n * step_us));
	struct buf cats = {0}, slas = {0};
	const char *params[6] = {a->cfg.tenant, p2, p3, p4, nm + 7, NULL};
	int nparams = q->kind == SERIES_SENSOR ? 5 : 4;
	if (q->kind == SERIES_SLA) {
		buf_str(&cats, "{");
		buf_str(&slas, "{");
		for (int c = 0; c < EV_RC_COUNT; c++) {
			buf_printf(&cats, "%s%s", c ? "," : "",
				   ev_category_name(EV_REPORT, c));
			buf_printf(&slas, "%s%lld", c ? "," : "",
				   (long long)a->cfg.sla_us[c]);
		}
		buf_str(&cats, "}");
		buf_str(&slas, "}");
		params[4] = cats.p;
		params[5] = slas.p;
		nparams = 6;
	}
	int rc = pgc_query(a->reader, sql, nparams, params, series_done, q);
	buf_free(&cats);
	buf_free(&slas);
	if (rc < 0) {
		free(q);
		http_unavailable(
		    r, "The database cannot answer now; retry later.");
	}
}

/* ---- alerts ---- */

static void alerts_all_done(void *arg, PGresult *res, const char *error)
{
	struct http_req *r = arg;
	struct app *a = r->app;
	json_t *arr;

	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_unavailable(
		    r, "The database cannot answer now; retry later.");
		return;
	}
	arr = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		struct alert x = {0};

		x.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		x.kind = alert_kind_parse(PQgetvalue(res, i, 1));
		x.severity = kpi_level_parse(PQgetvalue(res, i, 2));
		snprintf(x.sensor_id, sizeof(x.sensor_id), "%s",
			 PQgetvalue(res, i, 3));
		snprintf(x.message, sizeof(x.message), "%s",
			 PQgetvalue(res, i, 4));
		x.raised_us = strtoll(PQgetvalue(res, i, 5), NULL, 10);
		x.cleared_us = PQgetisnull(res, i, 6)
				   ? KPI_NONE
				   : strtoll(PQgetvalue(res, i, 6), NULL, 10);
		x.acked_us = PQgetisnull(res, i, 8)
				 ? KPI_NONE
				 : strtoll(PQgetvalue(res, i, 8), NULL, 10);
		snprintf(x.acked_by, sizeof(x.acked_by), "%s",
			 PQgetvalue(res, i, 7));
		snprintf(x.note, sizeof(x.note), "%s", PQgetvalue(res, i, 9));
		json_array_append_new(arr, alert_json(a->alerts, &x));
	}
	http_respond_json(r, 200, json_pack("{s:o}", "alerts", arr));
}

void api_get_alerts(struct http_req *r)
{
	struct app *a = r->app;
	char state[16];
	const char *s = http_arg(r, "state", state, sizeof(state));
	const char *params[1] = {a->cfg.tenant};

	if (!s || strcmp(s, "active") == 0) {
		http_respond_json(r, 200,
				  json_pack("{s:o}", "alerts",
					    alerts_active_json(a->alerts)));
		return;
	}
	if (strcmp(s, "all") != 0) {
		http_problem(r, 400, "bad_request", "Bad request",
			     "state is active or all.", NULL);
		return;
	}
	if (pgc_query(a->reader,
		      "SELECT id, kind, severity, sensor_id, message,"
		      " kd_us(raised_at), kd_us(cleared_at), acked_by,"
		      " kd_us(acked_at), ack_note FROM alerts WHERE tenant = $1"
		      " ORDER BY raised_at DESC, id DESC LIMIT 1000",
		      1, params, alerts_all_done, r) < 0)
		http_unavailable(
		    r, "The database cannot answer now; retry later.");
}

void api_ack_alert(struct http_req *r)
{
	struct app *a = r->app;
	char id_text[24], *end;
	long long id;
	struct alert *al;
	json_error_t jerr;
	json_t *body;
	const char *by, *note;

	if (!access_allow(r, CAN_ACK))
		return;
	snprintf(id_text, sizeof(id_text), "%.*s",
		 (int)(r->route.param_len < 23 ? r->route.param_len : 23),
		 r->route.param);
	id = strtoll(id_text, &end, 10);
	if (r->route.param_len > 19 || !isdigit((unsigned char)id_text[0]) ||
	    *end || id <= 0 || !(al = alerts_find(a->alerts, id))) {
		http_problem(r, 404, "not_found", "Unknown alert",
			     "No active alert has this id; see GET "
			     "/api/v1/alerts.",
			     NULL);
		return;
	}
	body = json_loadb(r->body.p ? r->body.p : "", r->body.len,
			  JSON_REJECT_DUPLICATES, &jerr);
	buf_free(&r->body);
	if (!body) {
		char detail[200];
		snprintf(detail, sizeof(detail),
			 "The body is not JSON (%.120s). Send %s.", jerr.text,
			 r->who.kind == AUTH_ANONYMOUS
			     ? "{\"by\": \"<operator>\"}"
			     : "{} or {\"note\": \"...\"}");
		http_problem(r, 400, "bad_json", "Malformed body", detail,
			     json_pack("{s:i, s:i}", "line", jerr.line,
				       "column", jerr.column));
		return;
	}
	/* A screen or a person acknowledges under its own name; only
	 * anonymous access (a demonstration) names itself in the body. */
	bool named = r->who.kind != AUTH_ANONYMOUS;
	by = named ? r->who.name
		   : json_string_value(json_object_get(body, "by"));
	note = json_string_value(json_object_get(body, "note"));
	if (!json_is_object(body) || !by || !by[0] || strlen(by) > 64 ||
	    (json_object_get(body, "note") && !note) ||
	    (note && strlen(note) > 200)) {
		bool by_ok = by && by[0] && strlen(by) <= 64;
		json_decref(body);
		http_problem(
		    r, 422, "invalid_ack", "Invalid acknowledgement",
		    named ? "Send {\"note\": \"<optional, up to 200 "
			    "characters>\"}."
			  : "Send {\"by\": \"<operator, 1..64 characters>\", "
			    "\"note\": \"<optional, up to 200>\"}.",
		    json_pack("{s:s}", "field", by_ok ? "note" : "by"));
		return;
	}
	if (al->cleared_us != KPI_NONE) {
		json_decref(body);
		http_problem(r, 409, "conflict", "Alert already cleared",
			     "This alert has cleared; there is nothing to "
			     "acknowledge.",
			     NULL);
		return;
	}
	alerts_ack(a->alerts, al, by, note, app_now());
	json_t *detail = json_pack("{s:I, s:s, s:s?}", "alert_id",
				   (json_int_t)id, "by", by, "note", note);
	char *dtext = json_dumps(detail, JSON_COMPACT), actor[96];
	access_actor(&r->who, by, actor, sizeof(actor));
	store_audit(a->store, actor, "alert.ack", dtext ? dtext : "{}",
		    r->client.peer);
	free(dtext);
	json_decref(detail);
	json_decref(body);
	app_alerts_flush(a);
	http_respond_json(r, 200, alert_json(a->alerts, al));
}
