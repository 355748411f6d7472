#include "api.h"

#include "access.h"
#include "alert.h"
#include "app.h"
#include "http.h"
#include "keys.h"
#include "kpi.h"
#include "limit.h"
#include "log.h"
#include "pgconn.h"
#include "pub.h"
#include "reqtext.h"
#include "store.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BUCKETS 5000
#define MINUTE_US INT64_C(60000000)

static void not_found(struct http_req *r)
{
	http_problem(r, 404, "not_found", "Not found",
		     "There is no API at this address; see docs/api.md.", NULL);
}

static void method_not_allowed(struct http_req *r, const char *allowed)
{
	char detail[96];

	snprintf(detail, sizeof(detail), "Use %s at this address.", allowed);
	http_problem(r, 405, "method_not_allowed", "Method not allowed", detail,
		     NULL);
}

static void unauthorized_key(struct http_req *r)
{
	http_problem(r, 401, "unauthorized", "Unauthorized",
		     r->client.bearer[0]
			 ? "The API key is unknown or revoked. Ask the command "
			   "centre for a valid key."
			 : "Send the agency's API key as \"Authorization: "
			   "Bearer <key>\".",
		     NULL);
}

/*
 * The key of the request, allowed by its rate; NULL when the request has
 * been answered (401 or 429).  Called once per request, from its headers.
 */
static const struct key_info *authorize(struct http_req *r)
{
	const struct key_info *k = keys_check(r->app->keys, r->client.bearer);
	int wait_s;

	if (!k) {
		unauthorized_key(r);
		return NULL;
	}
	if ((wait_s = limit_take(r->app->limiter, k->key_id, app_now())) > 0) {
		char detail[160];

		snprintf(detail, sizeof(detail),
			 "This key sent more than %.0f requests a second. "
			 "Retry after %d s, and send events in batches.",
			 r->app->cfg.rate_limit, wait_s);
		r->app->rejected++;
		r->retry_after_s = wait_s;
		http_problem(r, 429, "rate_limited", "Too many requests",
			     detail, NULL);
		return NULL;
	}
	return k;
}

/*
 * The key again once the body is in: the keys may have been read again
 * meanwhile (a revocation), and the one found before is not kept.
 */
static const struct key_info *key_after_body(struct http_req *r)
{
	const struct key_info *k = keys_check(r->app->keys, r->client.bearer);

	if (!k)
		unauthorized_key(r);
	return k;
}

/* The media type without parameters, compared case-insensitively. */
static bool media_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	return strncasecmp(ct, type, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void problem_from(struct http_req *r, const struct ev_error *e)
{
	json_t *extra = json_object();
	const char *title = e->status == 400   ? "Malformed body"
			    : e->status == 413 ? "Request too large"
			    : e->status == 422 ? "Invalid event"
					       : "Internal error";

	if (e->index >= 0)
		json_object_set_new(extra, "index", json_integer(e->index));
	if (e->field[0])
		json_object_set_new(extra, "field", json_string(e->field));
	if (e->line > 0) {
		json_object_set_new(extra, "line", json_integer(e->line));
		json_object_set_new(extra, "column", json_integer(e->column));
	}
	http_problem(r, e->status, e->code, title, e->detail, extra);
}

/* ---- POST /api/v1/events ---- */

static void events_done(void *arg, enum store_status st, size_t accepted,
			size_t duplicates, const char *error)
{
	struct http_req *r = arg;
	struct app *a = r->app;

	if (st == STORE_OK) {
		/* The answer to every post, written without building a JSON
		 * tree: jansson's dump of one allocates a table to detect
		 * cycles. */
		char body[64];
		int n = snprintf(body, sizeof(body),
				 "{\"accepted\":%zu,\"duplicates\":%zu}",
				 accepted, duplicates);

		a->events_accepted += accepted;
		a->events_duplicate += duplicates;
		http_respond(r, 202, "application/json", body, (size_t)n);
	} else if (st == STORE_UNAVAILABLE) {
		http_unavailable(r,
				 "The database cannot take writes now; nothing "
				 "of this request was stored. Retry later.");
	} else {
		log_error("storing events failed: %s", error ? error : "?");
		http_problem(r, 500, "internal", "Internal error",
			     "This request could not be stored, and nothing "
			     "of it was. The cause is in the command centre's "
			     "log.",
			     NULL);
	}
}

static void post_events(struct http_req *r)
{
	struct app *a = r->app;
	const struct key_info *key;
	enum ev_format fmt;
	struct ev_limits lim = {a->cfg.max_batch, 32};
	struct ev_batch batch = {0};
	struct ev_error err = {0};
	char detail[200];

	if (!(key = key_after_body(r)))
		return;
	if (media_is(r->content_type, "application/json")) {
		fmt = EV_FORMAT_JSON;
	} else if (media_is(r->content_type, "application/x-ndjson")) {
		fmt = EV_FORMAT_NDJSON;
	} else {
		http_problem(r, 415, "unsupported_media_type",
			     "Unsupported media type",
			     "Send events as application/json (one object or "
			     "an array) or application/x-ndjson.",
			     NULL);
		return;
	}
	int parsed = ev_parse_batch(r->body.p ? r->body.p : "", r->body.len,
				    fmt, app_now(), &lim, &batch, &err);
	/* The events hold their own copies: the body's memory is not kept
	 * while they wait for the database. */
	buf_free(&r->body);
	if (parsed < 0) {
		a->rejected++;
		problem_from(r, &err);
		return;
	}
	for (size_t i = 0; i < batch.n; i++) {
		const struct ev_event *e = &batch.events[i];

		if (!(key->types & (1u << e->type))) {
			snprintf(detail, sizeof(detail),
				 "This key may not post \"%s\" events; ask "
				 "for a key with that type.",
				 ev_type_name(e->type));
			ev_batch_free(&batch);
			a->rejected++;
			http_problem(
			    r, 403, "forbidden", "Forbidden", detail,
			    json_pack("{s:I}", "index", (json_int_t)i));
			return;
		}
		if (e->type == EV_SENSOR &&
		    !keys_sensor_allowed(key, e->subject)) {
			snprintf(detail, sizeof(detail),
				 "This key may not post readings of sensor "
				 "\"%.64s\"; ask for a key that lists it.",
				 e->subject);
			ev_batch_free(&batch);
			a->rejected++;
			http_problem(r, 403, "forbidden", "Forbidden", detail,
				     json_pack("{s:I, s:s}", "index",
					       (json_int_t)i, "field",
					       "sensor.sensor_id"));
			return;
		}
		if (e->type == EV_SENSOR &&
		    !kpi_sensor_known(a->kpi, e->subject)) {
			snprintf(detail, sizeof(detail),
				 "Sensor \"%.64s\" is not registered; register "
				 "it with PUT /api/v1/sensors/{id} first.",
				 e->subject);
			ev_batch_free(&batch);
			a->rejected++;
			http_problem(
			    r, 422, "invalid_event", "Invalid event", detail,
			    json_pack("{s:I, s:s}", "index", (json_int_t)i,
				      "field", "sensor.sensor_id"));
			return;
		}
	}
	int rc = store_submit(a->store, key->poster, r->client.peer, &batch,
			      events_done, r);
	if (rc < 0) {
		ev_batch_free(&batch);
		events_done(r, (enum store_status)rc, 0, 0, "out of memory");
	}
}

/* ---- the sensor registry ---- */

static json_t *sensor_json(struct app *a, int i, int64_t now)
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

static int sensor_index(struct app *a, const char *id)
{
	for (int i = 0; i < kpi_sensor_count(a->kpi); i++)
		if (strcmp(kpi_sensor_def(a->kpi, i)->sensor_id, id) == 0)
			return i;
	return -1;
}

struct put_sensor {
	struct http_req *r;
	struct ev_sensor_def def;
};

static void sensor_stored(void *arg, bool ok, bool created,
			  int64_t registered_us, const char *error)
{
	struct put_sensor *ps = arg;
	struct http_req *r = ps->r;
	struct app *a = r->app;

	if (!ok) {
		log_warn("storing sensor %s failed: %s", ps->def.sensor_id,
			 error ? error : "?");
		http_unavailable(r, "The sensor could not be stored now; retry "
				    "later.");
	} else if (kpi_sensor_define(a->kpi, &ps->def, registered_us) < 0) {
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
	} else {
		app_touch(a);
		http_respond_json(
		    r, created ? 201 : 200,
		    sensor_json(a, sensor_index(a, ps->def.sensor_id),
				app_now()));
	}
	free(ps);
}

static void out_of_scope(struct http_req *r)
{
	http_problem(r, 403, "forbidden", "Forbidden",
		     "This key may not register this sensor; ask for a key "
		     "that lists it.",
		     NULL);
}

/*
 * PUT /api/v1/sensors/{id} from its headers: the key, then the id, then the
 * key's scope, which is only ever asked about a valid id.
 */
static bool put_sensor_begin(struct http_req *r)
{
	const struct key_info *key;
	char id[EV_SUBJECT_MAX + 1];

	if (!(key = authorize(r)))
		return false;
	if (!(key->types & (1u << EV_SENSOR))) {
		http_problem(r, 403, "forbidden", "Forbidden",
			     "This key may not register sensors; ask for a "
			     "key with the sensor type.",
			     NULL);
		return false;
	}
	if (!ev_subject_valid(r->route.param, r->route.param_len)) {
		http_problem(r, 422, "invalid_event", "Invalid event",
			     "The sensor id in the URL must be 1 to 64 "
			     "letters, digits, '.', '_', ':' or '-'.",
			     json_pack("{s:s}", "field", "sensor_id"));
		return false;
	}
	memcpy(id, r->route.param, r->route.param_len);
	id[r->route.param_len] = '\0';
	if (!keys_sensor_allowed(key, id)) {
		out_of_scope(r);
		return false;
	}
	return true;
}

static void put_sensor(struct http_req *r)
{
	const struct key_info *key;
	struct ev_error err = {0};
	struct put_sensor *ps;
	char id[EV_SUBJECT_MAX + 1];

	/* put_sensor_begin checked the id and the scope. */
	snprintf(id, sizeof(id), "%.*s", (int)r->route.param_len,
		 r->route.param);
	if (!(key = key_after_body(r)))
		return;
	if (!keys_sensor_allowed(key, id)) {
		out_of_scope(r);
		return;
	}
	if (!media_is(r->content_type, "application/json")) {
		http_problem(r, 415, "unsupported_media_type",
			     "Unsupported media type",
			     "Send the sensor as application/json.", NULL);
		return;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps) {
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
		return;
	}
	ps->r = r;
	int parsed = ev_parse_sensor_def(id, r->body.p ? r->body.p : "",
					 r->body.len, &ps->def, &err);
	buf_free(&r->body);
	if (parsed < 0) {
		free(ps);
		problem_from(r, &err);
		return;
	}
	if (store_put_sensor(r->app->store, &ps->def, key->poster,
			     r->client.peer, sensor_stored, ps) < 0) {
		free(ps);
		http_unavailable(r,
				 "The database cannot take writes now; retry "
				 "later.");
	}
}

/*
 * The registry is read by screens, and by sensor gateways checking what
 * they registered.
 */
static bool sensor_reader(struct http_req *r)
{
	const struct key_info *k;

	if (strncmp(r->client.bearer, "kd_", 3) != 0)
		return access_allow(r, CAN_READ);
	if (!(k = authorize(r)))
		return false;
	if (k->types & (1u << EV_SENSOR))
		return true;
	http_problem(r, 403, "forbidden", "Forbidden",
		     "This key may not post sensor readings, so it may not "
		     "read the sensor registry either.",
		     NULL);
	return false;
}

static void get_sensors(struct http_req *r)
{
	struct app *a = r->app;
	json_t *arr = json_array();
	int64_t now = app_now();

	for (int i = 0; i < kpi_sensor_count(a->kpi); i++)
		json_array_append_new(arr, sensor_json(a, i, now));
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

static void get_kpis(struct http_req *r)
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

static void get_series(struct http_req *r)
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

static void get_alerts(struct http_req *r)
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

static void ack_alert(struct http_req *r)
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

/* ---- health ---- */

static void readyz(struct http_req *r)
{
	struct app *a = r->app;
	bool ok = app_ready(a);

	if (!ok)
		r->retry_after_s = HTTP_RETRY_AFTER_S;
	http_respond_json(r, ok ? 200 : 503,
			  json_pack("{s:b, s:b}", "ready", ok, "database", ok));
}

static void metrics(struct http_req *r)
{
	struct app *a = r->app;
	struct buf b = {0};
	uint64_t pushes, push_us;

	pub_push_time(a->pub, &pushes, &push_us);
	buf_printf(&b,
		   "# TYPE kendali_events_accepted_total counter\n"
		   "kendali_events_accepted_total %llu\n"
		   "# TYPE kendali_events_duplicate_total counter\n"
		   "kendali_events_duplicate_total %llu\n"
		   "# TYPE kendali_requests_rejected_total counter\n"
		   "kendali_requests_rejected_total %llu\n"
		   "# TYPE kendali_commit_groups_total counter\n"
		   "kendali_commit_groups_total %llu\n"
		   "# TYPE kendali_commit_groups_rewritten_total counter\n"
		   "kendali_commit_groups_rewritten_total %llu\n"
		   "# TYPE kendali_store_pending_events gauge\n"
		   "kendali_store_pending_events %zu\n"
		   "# TYPE kendali_ws_clients gauge\n"
		   "kendali_ws_clients %zu\n"
		   "# TYPE kendali_ws_messages_total counter\n"
		   "kendali_ws_messages_total %llu\n"
		   "# TYPE kendali_ws_snapshots_total counter\n"
		   "kendali_ws_snapshots_total %llu\n"
		   "# TYPE kendali_ws_push_seconds summary\n"
		   "kendali_ws_push_seconds_sum %.6f\n"
		   "kendali_ws_push_seconds_count %llu\n"
		   "# TYPE kendali_calls_held gauge\n"
		   "kendali_calls_held %zu\n"
		   "# TYPE kendali_tickets_held gauge\n"
		   "kendali_tickets_held %zu\n"
		   "# TYPE kendali_database_up gauge\n"
		   "kendali_database_up %d\n",
		   (unsigned long long)a->events_accepted,
		   (unsigned long long)a->events_duplicate,
		   (unsigned long long)a->rejected,
		   (unsigned long long)store_groups(a->store),
		   (unsigned long long)store_groups_rewritten(a->store),
		   store_pending(a->store), pub_clients(a->pub),
		   (unsigned long long)pub_messages_sent(a->pub),
		   (unsigned long long)pub_snapshots_sent(a->pub),
		   (double)push_us / 1e6, (unsigned long long)pushes,
		   kpi_calls_held(a->kpi), kpi_tickets_held(a->kpi),
		   store_ready(a->store) ? 1 : 0);
	http_respond(r, 200, "text/plain; version=0.0.4", b.p ? b.p : "",
		     b.len);
	buf_free(&b);
}

static unsigned method_bit(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
	case HTTP_HEAD:
		return ROUTE_GET;
	case HTTP_POST:
		return ROUTE_POST;
	case HTTP_PUT:
		return ROUTE_PUT;
	default:
		return 0;
	}
}

bool api_begin(struct http_req *r)
{
	const struct route *rt = &r->route;
	unsigned m = method_bit(r->method);

	r->app->requests++;
	if (rt->id == ROUTE_NONE) {
		not_found(r);
		return false;
	}
	if (!(rt->methods & m)) {
		method_not_allowed(r, rt->allowed);
		return false;
	}
	switch (rt->id) {
	/* Writes: the caller is known, and may, before the body is read. */
	case ROUTE_EVENTS:
		return authorize(r) != NULL;
	case ROUTE_SENSOR:
		return put_sensor_begin(r);
	case ROUTE_ALERT_ACK:
		return access_allow(r, CAN_ACK);
	case ROUTE_LOGOUT:
		return access_allow(r, 0);
	case ROUTE_SESSION:
		if (m == ROUTE_POST)
			return access_login_begin(r);
		access_whoami(r);
		return false;
	/* Reads: answered now. */
	case ROUTE_KPIS:
		if (access_allow(r, CAN_READ))
			get_kpis(r);
		return false;
	case ROUTE_SENSORS:
		if (sensor_reader(r))
			get_sensors(r);
		return false;
	case ROUTE_SERIES:
		if (access_allow(r, CAN_READ))
			get_series(r);
		return false;
	case ROUTE_ALERTS:
		if (access_allow(r, CAN_READ))
			get_alerts(r);
		return false;
	case ROUTE_HEALTHZ:
		http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
		return false;
	case ROUTE_READYZ:
		readyz(r);
		return false;
	case ROUTE_METRICS:
		/* Scraped from the machine itself, or with an admin's
		 * token from elsewhere. */
		if (r->client.loopback || access_allow(r, CAN_ADMIN))
			metrics(r);
		return false;
	case ROUTE_NONE:
		break;
	}
	not_found(r);
	return false;
}

void api_body(struct http_req *r)
{
	switch (r->route.id) {
	case ROUTE_EVENTS:
		post_events(r);
		return;
	case ROUTE_SENSOR:
		put_sensor(r);
		return;
	case ROUTE_ALERT_ACK:
		ack_alert(r);
		return;
	case ROUTE_SESSION:
		access_login(r);
		return;
	case ROUTE_LOGOUT:
		access_logout(r);
		return;
	default:
		/* api_begin reads no body for the other routes. */
		not_found(r);
	}
}
