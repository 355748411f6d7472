/*
 * server/api_ingest.c - what agencies send: POST /api/v1/events and
 * PUT /api/v1/sensors/{id}.  The key and its rate are checked from the
 * headers (api_authorize), and again once the body is in, in case the key
 * was revoked meanwhile; the body is validated whole before anything of it
 * reaches the store.
 */
#include "api_routes.h"

#include "app.h"
#include "clock.h"
#include "http.h"
#include "keys.h"
#include "kpi.h"
#include "limit.h"
#include "log.h"
#include "sensors.h"
#include "store.h"
#include "tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
const struct key_info *api_authorize(struct http_req *r)
{
	const struct key_info *k = keys_check(r->app->keys, r->client.bearer);
	int wait_s;

	/* A key of a tenant not served here (none: the command line gives
	 * a province no key) is as unknown. */
	if (!k || !(r->tenant = tenants_get(&r->app->tenants, k->tenant)) ||
	    r->tenant->info.province) {
		unauthorized_key(r);
		return NULL;
	}
	if ((wait_s = limit_take(r->app->limiter, k->key_id, clock_now_us())) >
	    0) {
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

/*
 * A post while the store works on it, with the row of /metrics its counts
 * go to: the key is not kept meanwhile (the keys may be read again), and
 * the row stays where it is.
 */
struct post_events {
	struct http_req *r;
	struct poster_count *count;
	size_t n_unknown; /* events naming no kecamatan of the tenant */
	struct poster_count *unknown[]; /* their rows, by district name */
};

static void events_done(void *arg, enum store_status st, size_t accepted,
			size_t duplicates, const char *error)
{
	struct post_events *pe = arg;
	struct http_req *r = pe->r;
	struct poster_count *count = pe->count;

	if (st == STORE_OK) {
		/* The answer to every post, written without building a JSON
		 * tree: jansson's dump of one allocates a table to detect
		 * cycles. */
		char body[64];
		int n = snprintf(body, sizeof(body),
				 "{\"accepted\":%zu,\"duplicates\":%zu}",
				 accepted, duplicates);

		count->accepted += accepted;
		count->duplicate += duplicates;
		for (size_t i = 0; i < pe->n_unknown; i++)
			pe->unknown[i]->accepted++;
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
	free(pe);
}

void api_post_events(struct http_req *r)
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
				    fmt, clock_now_us(), &lim, &batch, &err);
	/* The events hold their own copies: the body's memory is not kept
	 * while they wait for the database. */
	buf_free(&r->body);
	if (parsed < 0) {
		a->rejected++;
		problem_from(r, &err);
		return;
	}
	size_t n_unknown = 0;
	for (size_t i = 0; i < batch.n; i++) {
		const struct ev_event *e = &batch.events[i];

		n_unknown += !tenant_district_known(r->tenant, e->district);
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
		    !sensors_known(r->tenant->sensors, e->subject)) {
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
	struct post_events *pe =
	    malloc(sizeof(*pe) + n_unknown * sizeof(pe->unknown[0]));
	if (!pe) {
		ev_batch_free(&batch);
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
		return;
	}
	pe->r = r;
	pe->count = counters_poster(&r->tenant->by_poster, key->poster);
	pe->n_unknown = 0;
	for (size_t i = 0; i < batch.n && pe->n_unknown < n_unknown; i++)
		if (!tenant_district_known(r->tenant, batch.events[i].district))
			pe->unknown[pe->n_unknown++] =
			    counters_poster(&r->tenant->unknown_districts,
					    batch.events[i].district);
	int rc = store_submit(a->store, r->tenant->info.id, key->poster,
			      r->client.peer, &batch, events_done, pe);
	if (rc < 0) {
		ev_batch_free(&batch);
		events_done(pe, (enum store_status)rc, 0, 0, "out of memory");
	}
}

/* ---- the sensor registry ---- */

struct put_sensor {
	struct http_req *r;
	struct ev_sensor_def def;
};

static void sensor_stored(void *arg, bool ok, bool created,
			  int64_t registered_us, const char *error)
{
	struct put_sensor *ps = arg;
	struct http_req *r = ps->r;
	struct tenant *t = r->tenant;

	if (!ok) {
		log_warn("storing sensor %s failed: %s", ps->def.sensor_id,
			 error ? error : "?");
		http_unavailable(r, "The sensor could not be stored now; retry "
				    "later.");
	} else if (sensors_define(t->sensors, &ps->def, registered_us) < 0) {
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
	} else {
		tenant_touch(t);
		http_respond_json(
		    r, created ? 201 : 200,
		    api_sensor_json(
			t, sensors_index(t->sensors, ps->def.sensor_id),
			clock_now_us()));
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
bool api_sensor_begin(struct http_req *r)
{
	const struct key_info *key;
	char id[EV_SUBJECT_MAX + 1];

	if (!(key = api_authorize(r)))
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

void api_put_sensor(struct http_req *r)
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
	if (store_put_sensor(r->app->store, r->tenant->info.id, &ps->def,
			     key->poster, r->client.peer, sensor_stored,
			     ps) < 0) {
		free(ps);
		http_unavailable(r,
				 "The database cannot take writes now; retry "
				 "later.");
	}
}
