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
#include "clock.h"
#include "http.h"
#include "keys.h"
#include "kpi.h"
#include "reads.h"
#include "sensors.h"
#include "reqtext.h"
#include "store.h"
#include "tenant.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 5000
#define MAX_ALERTS_READ 1000 /* GET /api/v1/alerts?state=all */
#define MINUTE_US INT64_C(60000000)

/* ---- the sensor registry ---- */

json_t *api_sensor_json(struct tenant *tn, int i, int64_t now)
{
	const struct ev_sensor_def *d = sensors_def(tn->sensors, i);
	json_t *o = sensors_entry_json(tn->sensors, i, now);
	json_t *th = json_object();

	for (int t = 0; t < EV_THRESHOLDS; t++)
		if (!isnan(d->thresholds[t]))
			json_object_set_new(th, ev_threshold_names[t],
					    json_real(d->thresholds[t]));
	json_object_set_new(o, "district",
			    d->district[0] ? json_string(d->district)
					   : json_null());
	json_object_set_new(o, "location",
			    d->has_location ? json_pack("{s:f, s:f}", "lat",
							d->lat, "lon", d->lon)
					    : json_null());
	json_object_set_new(o, "thresholds", th);
	json_object_set_new(o, "offline_after_s",
			    json_integer(d->offline_after_s));
	return o;
}

/*
 * The registry is read by screens, and by sensor gateways checking what
 * they registered.
 */
bool api_sensor_reader(struct http_req *r)
{
	const struct key_info *k;

	if (!keys_is_key(r->client.bearer))
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
	struct tenant *t = r->tenant;
	json_t *arr = json_array();
	int64_t now = clock_now_us();

	for (int i = 0; i < sensors_count(t->sensors); i++)
		json_array_append_new(arr, api_sensor_json(t, i, now));
	http_respond_json(r, 200, json_pack("{s:o}", "sensors", arr));
}

/* ---- reads ---- */

static void unanswered(struct http_req *r)
{
	http_unavailable(r, "The database cannot answer now; retry later.");
}

static void history_done(void *arg, bool ok, bool found, int64_t at_us,
			 const char *text)
{
	struct http_req *r = arg;
	json_error_t jerr;
	json_t *kpis;
	char at[40];

	if (!ok) {
		unanswered(r);
		return;
	}
	if (!found) {
		/* Nothing recorded in the 15 minutes up to that time (a new
		 * database, the server stopped then): an answer, not an
		 * error, on every page load of a city's first day. */
		http_respond_json(r, 200,
				  json_pack("{s:n, s:n}", "at", "kpis"));
		return;
	}
	kpis = json_loads(text, 0, &jerr);
	ev_time_format(at_us, r->tenant->info.tz_offset_s, at);
	http_respond_json(r, 200,
			  json_pack("{s:s, s:o}", "at", at, "kpis",
				    kpis ? kpis : json_object()));
}

/* GET /api/v1/kpis?at=<time>: the record at or before that time. */
static void get_kpis_at(struct http_req *r, const char *when)
{
	int64_t us;

	if (ev_time_parse(when, strlen(when), &us) < 0) {
		http_problem(r, 400, "bad_request", "Bad request",
			     "at must be an RFC 3339 time with an offset, e.g. "
			     "2026-11-22T09:00:00+07:00.",
			     NULL);
		return;
	}
	if (reads_kpis_at(r->app->reader, r->tenant->info.id, us, history_done,
			  r) < 0)
		unanswered(r);
}

void api_get_kpis(struct http_req *r)
{
	struct tenant *t = r->tenant;
	int64_t now = clock_now_us();
	char at[40], when[64];

	if (http_arg(r, "at", when, sizeof(when))) {
		get_kpis_at(r, when);
		return;
	}

	ev_time_format(now, t->info.tz_offset_s, at);
	http_respond_json(r, 200,
			  json_pack("{s:s, s:I, s:o}", "at", at, "seq",
				    (json_int_t)t->seq, "kpis",
				    tenant_snapshot(t, now)));
}

#define MAX_WINDOW_S (30 * 24 * 3600)

struct series {
	struct http_req *r;
	char name[80];
	enum reads_series kind;
	int64_t start_us, step_us;
	int n;
};

static json_t *bucket_json(enum reads_series kind, const struct reads_bucket *b)
{
	switch (kind) {
	case READS_SENSOR:
		return b ? json_pack("{s:f, s:f, s:f}", "min", b->min, "max",
				     b->max, "last", b->last)
			 : json_pack("{s:n, s:n, s:n}", "min", "max", "last");
	case READS_REPORTS_SLA_MET:
		return json_pack("{s:I, s:I, s:o}", "resolved",
				 (json_int_t)(b ? b->count : 0), "met",
				 (json_int_t)(b ? b->met : 0), "ratio",
				 b && b->count > 0 ? json_real((double)b->met /
							       (double)b->count)
						   : json_null());
	default:
		return json_pack("{s:I}", "count",
				 (json_int_t)(b ? b->count : 0));
	}
}

static void series_done(void *arg, bool ok, const struct reads_bucket *b,
			size_t n)
{
	struct series *q = arg;
	const struct reads_bucket **at = NULL;
	json_t *arr;
	char t[40];

	if (!ok || !(at = calloc((size_t)q->n, sizeof(*at)))) {
		if (ok)
			http_problem(q->r, 500, "internal", "Internal error",
				     "Out of memory.", NULL);
		else
			unanswered(q->r);
		free(q);
		return;
	}
	for (size_t i = 0; i < n; i++)
		at[b[i].index] = &b[i];
	arr = json_array();
	for (int i = 0; i < q->n; i++) {
		json_t *x = bucket_json(q->kind, at[i]);

		ev_time_format(q->start_us + i * q->step_us,
			       q->r->tenant->info.tz_offset_s, t);
		json_object_set_new(x, "t", json_string(t));
		json_array_append_new(arr, x);
	}
	free(at);
	http_respond_json(
	    q->r, 200,
	    json_pack("{s:s, s:I, s:o}", "name", q->name, "step_s",
		      (json_int_t)(q->step_us / 1000000), "buckets", arr));
	free(q);
}

void api_get_series(struct http_req *r)
{
	struct app *a = r->app;
	struct tenant *tn = r->tenant;
	char name[80], window[16], step[16];
	const char *nm = http_arg(r, "name", name, sizeof(name));
	const char *w = http_arg(r, "window", window, sizeof(window));
	const char *st = http_arg(r, "step", step, sizeof(step));
	int64_t win_us = w ? reqtext_duration_us(w, MAX_WINDOW_S)
			   : 24 * 3600 * INT64_C(1000000);
	int64_t step_us =
	    st ? reqtext_duration_us(st, MAX_WINDOW_S) : 5 * MINUTE_US;
	int64_t off_us = (int64_t)tn->info.tz_offset_s * 1000000,
		now = clock_now_us();
	enum reads_series kind;
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
		kind = READS_CALLS_RECEIVED;
	else if (strcmp(nm, "reports.received") == 0)
		kind = READS_REPORTS_RECEIVED;
	else if (strcmp(nm, "reports.resolved") == 0)
		kind = READS_REPORTS_RESOLVED;
	else if (strcmp(nm, "reports.sla_met") == 0)
		kind = READS_REPORTS_SLA_MET;
	else if (strncmp(nm, "sensor:", 7) == 0 &&
		 sensors_known(tn->sensors, nm + 7))
		kind = READS_SENSOR;
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
	q->kind = kind;
	q->step_us = step_us;
	q->n = (int)((win_us + step_us - 1) / step_us);
	/* Buckets align to the step in the tenant's zone; the last one
	 * holds now. */
	q->start_us = kpi_floor_div(now + off_us, step_us) * step_us - off_us -
		      (int64_t)(q->n - 1) * step_us;
	struct reads_series_q sq = {
	    .kind = kind,
	    .tenant = tn->info.id,
	    .sensor_id = kind == READS_SENSOR ? nm + 7 : NULL,
	    .sla_us = a->cfg.sla_us,
	    .start_us = q->start_us,
	    .step_us = step_us,
	    .n = q->n,
	};
	if (reads_series(a->reader, &sq, series_done, q) < 0) {
		free(q);
		unanswered(r);
	}
}

/* ---- alerts ---- */

static void alerts_all_done(void *arg, bool ok, const struct alert *list,
			    size_t n)
{
	struct http_req *r = arg;
	json_t *arr;

	if (!ok) {
		unanswered(r);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr,
				      alert_json(r->tenant->alerts, &list[i]));
	http_respond_json(r, 200, json_pack("{s:o}", "alerts", arr));
}

void api_get_alerts(struct http_req *r)
{
	struct app *a = r->app;
	char state[16];
	const char *s = http_arg(r, "state", state, sizeof(state));

	if (!s || strcmp(s, "active") == 0) {
		http_respond_json(
		    r, 200,
		    json_pack("{s:o}", "alerts",
			      alerts_active_json(r->tenant->alerts)));
		return;
	}
	if (strcmp(s, "all") != 0) {
		http_problem(r, 400, "bad_request", "Bad request",
			     "state is active or all.", NULL);
		return;
	}
	if (reads_alerts_all(a->reader, r->tenant->info.id, MAX_ALERTS_READ,
			     alerts_all_done, r) < 0)
		unanswered(r);
}

void api_ack_alert(struct http_req *r)
{
	struct app *a = r->app;
	struct tenant *t;
	char id_text[24], *end;
	long long id;
	struct alert *al;
	json_error_t jerr;
	json_t *body;
	const char *by, *note;

	if (!access_allow(r, CAN_ACK))
		return;
	t = r->tenant;
	snprintf(id_text, sizeof(id_text), "%.*s",
		 (int)(r->route.param_len < 23 ? r->route.param_len : 23),
		 r->route.param);
	id = strtoll(id_text, &end, 10);
	if (r->route.param_len > 19 || !isdigit((unsigned char)id_text[0]) ||
	    *end || id <= 0 || !(al = alerts_find(t->alerts, id))) {
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
	    (json_object_get(body, "note") && !note &&
	     !json_is_null(json_object_get(body, "note"))) ||
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
	alerts_ack(t->alerts, al, by, note, clock_now_us());
	json_t *detail = json_pack("{s:I, s:s, s:s?}", "alert_id",
				   (json_int_t)id, "by", by, "note", note);
	char *dtext = json_dumps(detail, JSON_COMPACT), actor[96];
	access_actor(&r->who, by, actor, sizeof(actor));
	store_audit(a->store, r->tenant->info.id, actor, "alert.ack",
		    dtext ? dtext : "{}", r->client.peer);
	free(dtext);
	json_decref(detail);
	json_decref(body);
	tenant_alerts_flush(t);
	http_respond_json(r, 200, alert_json(t->alerts, al));
}
