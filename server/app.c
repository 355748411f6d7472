#include "app.h"

#include "access.h"
#include "alert.h"
#include "api.h"
#include "auth.h"
#include "clock.h"
#include "http.h"
#include "keys.h"
#include "kpi.h"
#include "limit.h"
#include "load.h"
#include "log.h"
#include "migrate.h"
#include "pgconn.h"
#include "pub.h"
#include "reads.h"
#include "sensors.h"
#include "store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC_US INT64_C(1000000)
#define EVALUATE_US SEC_US /* time-driven KPIs looked at */
/* Keys change through NOTIFY at once; this is only a safety net. */
#define KEYS_REFRESH_US (60 * SEC_US)
#define EXPIRY_CHECK_US SEC_US /* sessions ending by the clock */
#define PRUNE_US (600 * SEC_US)
/* The schema is read again this often: a restore may put an older one. */
#define SCHEMA_CHECK_US (10 * SEC_US)
/* Logins per client address: 10 in a row, then one every 6 s. */
#define LOGIN_RATE (1.0 / 6)
#define LOGIN_BURST 10
#define HISTORY_US (300 * SEC_US)
#define READER_QUEUE 64
#define STOP_GRACE_MS 2000 /* longest a stop waits for screens and writes */
/* Not ready for this long: screens are told their data is stale.  Shorter
 * losses (a connection killed and made again) pass unseen. */
#define DB_DOWN_AFTER_US SEC_US

static void schedule_publish(struct app *a);

void app_touch(struct app *a)
{
	a->dirty = true;
	schedule_publish(a);
}

json_t *app_snapshot(struct app *a, int64_t now)
{
	json_t *s = kpi_snapshot(a->kpi, now);

	json_object_set_new(s, "alerts.active", alerts_active_json(a->alerts));
	return s;
}

/* ---- committed state in: the store's sink ---- */

static void sink_call(void *arg, const struct kpi_call *c)
{
	struct app *a = arg;

	if (kpi_apply_call(a->kpi, c, clock_now_us()) < 0)
		log_error("out of memory applying call %s", c->call_id);
	app_touch(a);
}

static void sink_ticket(void *arg, const struct kpi_ticket *t)
{
	struct app *a = arg;

	if (kpi_apply_ticket(a->kpi, t, clock_now_us()) < 0)
		log_error("out of memory applying ticket %s", t->ticket);
	app_touch(a);
}

static void sink_reading(void *arg, const char *sensor_id, int64_t at_us,
			 double value)
{
	struct app *a = arg;

	if (sensors_apply_reading(a->sensors, sensor_id, at_us, value))
		app_touch(a);
}

/* ---- alerts: stored, then shown ---- */

struct alert_save {
	struct app *app;
	struct alert *alert;
};

static void alert_saved(void *arg, bool ok, int64_t id)
{
	struct alert_save *s = arg;

	alerts_save_done(s->app->alerts, s->alert, ok, id);
	if (ok)
		app_alerts_flush(s->app);
	free(s);
}

void app_alerts_flush(struct app *a)
{
	struct alert *al;

	while (!a->stopping && (al = alerts_next_unsaved(a->alerts))) {
		struct alert_save *s = malloc(sizeof(*s));

		alert_save_begin(al);
		if (!s || store_save_alert(a->store, al, alert_saved, s) < 0) {
			free(s);
			/* Marked dirty again: the next tick retries. */
			alerts_save_done(a->alerts, al, false, 0);
			return;
		}
		s->app = a;
		s->alert = al;
	}
}

static void on_alert_change(void *arg, struct alert *al)
{
	struct app *a = arg;

	a->dirty = true;
	if (al->id != 0) {
		json_t *j = alert_json(a->alerts, al);
		pub_alert(a->pub, j);
		json_decref(j);
	}
}

static void check_alerts(struct app *a, int64_t now)
{
	for (int i = 0; i < sensors_count(a->sensors); i++) {
		struct sensor_view v;

		sensors_view(a->sensors, i, now, &v);
		alerts_check(a->alerts, &v, now);
	}
	app_alerts_flush(a);
}

/* ---- publishing ---- */

/* The keys whose values differ between two snapshots (new reference). */
static json_t *diff(json_t *old, json_t *cur)
{
	json_t *changed = json_object();
	const char *key;
	json_t *v;

	json_object_foreach (cur, key, v)
		if (!old || !json_equal(json_object_get(old, key), v))
			json_object_set(changed, key, v);
	return changed;
}

static void publish(struct app *a, int64_t now, bool force)
{
	json_t *snap = app_snapshot(a, now);
	json_t *changed = diff(a->published, snap);
	char at[40];

	a->dirty = false;
	a->last_eval_us = now;
	if (json_object_size(changed) > 0 || force) {
		a->seq++;
		a->last_sent_ms = uv_now(a->loop);
	}
	/* Even when nothing changed, the state is now known to hold at this
	 * time: new screens and heartbeats carry it, so a quiet city does
	 * not look like old data. */
	ev_time_format(now, a->tz_offset_s, at);
	pub_state(a->pub, snap, changed, at);
	json_decref(a->published);
	a->published = snap;
	json_decref(changed);
}

static void publish_cb(uv_timer_t *t)
{
	struct app *a = t->data;
	int64_t now = clock_now_us();

	a->publish_armed = false;
	check_alerts(a, now);
	publish(a, now, false);
}

/*
 * Something to show: published at once when the last kpis message is a
 * publish interval old, else as soon as it is, so that screens get at most
 * one message per interval and a change in a quiet city shows without
 * waiting for a tick.  Every change of a commit's result is applied before
 * the timer fires.
 */
static void schedule_publish(struct app *a)
{
	uint64_t now, due;

	if (a->publish_armed || a->stopping || !a->loop)
		return;
	now = uv_now(a->loop);
	due = a->last_sent_ms + (uint64_t)a->cfg.publish_ms;
	a->publish_armed = true;
	uv_timer_start(&a->publish, publish_cb, due > now ? due - now : 0, 0);
}

/*
 * Every HISTORY_US, on the boundary, the KPIs that are not lists go to
 * kpi_history, for "the same time yesterday" on the mayor's page.
 */
static void record_history(struct app *a, int64_t now)
{
	int64_t slot = now - now % HISTORY_US;
	json_t *rec;
	const char *key;
	json_t *v;
	char *text;

	if (slot <= a->last_history_us || !a->published)
		return;
	a->last_history_us = slot;
	rec = json_object();
	json_object_foreach (a->published, key, v)
		if (!json_is_array(v))
			json_object_set(rec, key, v);
	text = json_dumps(rec, JSON_DUMP_FLAGS);
	json_decref(rec);
	if (text)
		store_save_history(a->store, slot, text);
	free(text);
}

static void keys_loaded(void *arg, PGresult *r, const char *error)
{
	struct app *a = arg;

	if (r && keys_replace(a->keys, r) == 0)
		return;
	log_warn("refreshing API keys failed: %s",
		 r ? PQresultErrorMessage(r) : error);
}

/*
 * A re-read that cannot be queued now (the reader's queue is full, or the
 * database is away) is owed, and tried again at every tick until it is:
 * a revocation must never wait for the next periodic refresh.
 */
static void refresh_keys(struct app *a)
{
	a->last_keys_us = clock_now_us();
	a->keys_owed = reads_keys(a->reader, a->cfg.tenant, keys_loaded, a) < 0;
	if (a->keys_owed)
		log_debug("keys not refreshed yet: reader busy or away");
}

/* Websockets of credentials revoked or expired are closed. */
static bool credential_live(void *arg, const char *id)
{
	struct app *a = arg;

	return auth_live(a->auth, id, clock_now_us());
}

static void auth_loaded(void *arg, PGresult *r, const char *error)
{
	struct app *a = arg;

	if (r && auth_replace(a->auth, r) == 0) {
		pub_revalidate(a->pub, credential_live, a);
		return;
	}
	log_warn("refreshing screen tokens and sessions failed: %s",
		 r ? PQresultErrorMessage(r) : error);
}

static bool ws_admit(void *arg, struct lws *wsi, char *id, size_t len)
{
	return access_ws_admit(arg, wsi, id, len);
}

static void refresh_auth(struct app *a)
{
	a->auth_owed =
	    reads_credentials(a->reader, a->cfg.tenant, auth_loaded, a) < 0;
	if (a->auth_owed)
		log_debug("sessions not refreshed yet: reader busy or away");
}

static void schema_checked(void *arg, PGresult *r, const char *error)
{
	struct app *a = arg;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const struct migration *first;
	int missing;

	if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
		missing = migrate_missing(r, &first);
	else if (state && strcmp(state, MIGRATE_NO_TABLE) == 0)
		missing = migrate_missing(NULL, &first);
	else
		return; /* unknown: the connection's own state says enough */
	if (missing && a->schema_missing != missing)
		log_error("the database's schema lacks %d migration(s) of this "
			  "kendali, from %s: not ready until `kendali "
			  "migrate` runs",
			  missing, first->name);
	else if (!missing && a->schema_missing > 0)
		log_info("the database's schema is up to date again");
	a->schema_missing = missing;
}

/* Reads which migrations the database has (/readyz needs them all). */
static void check_schema(struct app *a, int64_t now)
{
	a->last_schema_us = now;
	if (reads_schema(a->reader, schema_checked, a) < 0)
		log_debug("schema not checked: reader busy or away");
}

/*
 * Each time the reader connects it listens for key changes, and reads the
 * keys again: changes made while it was away were not notified.  It reads
 * the schema's version too: the database may have been restored.
 */
static void reader_state(void *arg, enum pgc_state state)
{
	struct app *a = arg;

	if (state == PGC_WAITING)
		a->reader_listening = false;
	if (state != PGC_IDLE || a->reader_listening || a->stopping)
		return;
	a->reader_listening = true;
	if (reads_listen(a->reader) == 0) {
		refresh_keys(a);
		refresh_auth(a);
	}
	check_schema(a, clock_now_us());
}

/*
 * A key, screen token, user or session was created, changed or revoked:
 * revocation takes effect now.
 */
static void credentials_notified(void *arg, const char *channel,
				 const char *payload)
{
	struct app *a = arg;

	if (payload && strcmp(payload, a->cfg.tenant) != 0)
		return;
	if (strcmp(channel, "kendali_auth") == 0)
		refresh_auth(a);
	else
		refresh_keys(a);
}

/*
 * Sessions over for a month are of no use, nor failed logins a day old;
 * the audit keeps the trail.
 */
static void prune_sessions(struct app *a)
{
	if (reads_prune(a->reader, a->cfg.tenant) < 0)
		log_debug("sessions not pruned: database unavailable");
}

/*
 * Screens are told when nothing new can be committed (the same condition
 * as /readyz), so that they do not present the last numbers as live, and
 * when it can again.
 */
bool app_ready(const struct app *a)
{
	return store_ready(a->store) && pgc_connected(a->reader);
}

static void watch_database(struct app *a, int64_t now)
{
	bool ready = app_ready(a);
	char at[40], since[40];

	if (ready) {
		a->db_lost_us = 0;
		if (a->db_down_told) {
			a->db_down_told = false;
			ev_time_format(now, a->tz_offset_s, at);
			pub_database(a->pub, true, NULL, at);
			log_info("database back: screens told their data is "
				 "current");
		}
		return;
	}
	if (!a->db_lost_us)
		a->db_lost_us = now;
	if (a->db_down_told || now - a->db_lost_us < DB_DOWN_AFTER_US)
		return;
	a->db_down_told = true;
	ev_time_format(now, a->tz_offset_s, at);
	ev_time_format(a->db_lost_us, a->tz_offset_s, since);
	pub_database(a->pub, false, since, at);
	log_warn("database unreachable since %s: screens told their data is "
		 "stale",
		 since);
}

/*
 * The one periodic job, every publish interval: the database's state,
 * alerts, a publication if anything changed or a second has passed (windows
 * slide), keys and pruning now and then.
 */
static void tick_cb(uv_timer_t *t)
{
	struct app *a = t->data;
	int64_t now = clock_now_us();

	watch_database(a, now);
	check_alerts(a, now);
	if (a->dirty || now - a->last_eval_us >= EVALUATE_US)
		schedule_publish(a);
	pub_tick(a->pub);
	record_history(a, now);
	if (now - a->last_keys_us >= KEYS_REFRESH_US) {
		refresh_keys(a);
		refresh_auth(a);
	} else {
		if (a->keys_owed)
			refresh_keys(a);
		if (a->auth_owed)
			refresh_auth(a);
	}
	if (now - a->last_expiry_us >= EXPIRY_CHECK_US) {
		/* Sessions end by the clock, without any NOTIFY. */
		a->last_expiry_us = now;
		pub_revalidate(a->pub, credential_live, a);
	}
	if (now - a->last_schema_us >= SCHEMA_CHECK_US)
		check_schema(a, now);
	if (now - a->last_prune_us >= PRUNE_US) {
		a->last_prune_us = now;
		kpi_prune(a->kpi, now);
		prune_sessions(a);
	}
}

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

/*
 * Stopping happens in two steps.  First screens are told the server is
 * going away and the writer finishes what it has queued, so that every
 * request already accepted is answered; then, once that is done or after
 * STOP_GRACE_MS at most, every connection is closed.
 */
static void stop_finish(struct app *a)
{
	uv_timer_stop(&a->tick);
	uv_close((uv_handle_t *)&a->tick, close_cb);
	uv_timer_stop(&a->publish);
	uv_close((uv_handle_t *)&a->publish, close_cb);
	http_close(a->http);
	store_close(a->store);
	pgc_close(a->reader);
}

static void stop_wait_cb(uv_timer_t *t)
{
	struct app *a = t->data;
	int64_t waited = clock_now_us() - a->stop_us;

	if ((pub_clients(a->pub) == 0 && store_idle(a->store)) ||
	    waited >= STOP_GRACE_MS * 1000)
		stop_finish(a);
}

static void stop(struct app *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	a->stop_us = clock_now_us();
	log_info("stopping");
	uv_close((uv_handle_t *)&a->sigint, close_cb);
	uv_close((uv_handle_t *)&a->sigterm, close_cb);
	pub_close_all(a->pub);
	/* The tick timer now only watches for the end of the grace time. */
	uv_timer_start(&a->tick, stop_wait_cb, 20, 20);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	(void)signum;
	stop(s->data);
}

/* ---- start-up ---- */

static int startup_db(struct app *a)
{
	struct store_sink sink = {sink_call, sink_ticket, sink_reading, a};
	char err[512];
	PGconn *conn = PQconnectdb(a->cfg.database_url);
	int rc = -1, n;
	int64_t t0 = clock_now_us();

	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("cannot connect to the database: %s",
			  PQerrorMessage(conn));
		goto out;
	}
	if (a->cfg.migrate && (n = migrate_run(conn, err, sizeof(err))) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (load_tenant(conn, a->cfg.tenant, &a->tenant, err, sizeof(err)) <
	    0) {
		log_error("%s (`kendali tenant list` shows them)", err);
		goto out;
	}
	if (a->tenant.province) {
		log_error("%s is a province: serve its members", a->tenant.id);
		goto out;
	}
	a->tz_offset_s = a->tenant.tz_offset_s;
	a->sensors = sensors_new(a->tz_offset_s);
	struct kpi_config kc = {.tz_offset_s = a->tz_offset_s,
				.sensors = a->sensors};
	memcpy(kc.sla_us, a->cfg.sla_us, sizeof(kc.sla_us));
	a->kpi = kpi_new(&kc);
	a->alerts = alerts_new(a->tz_offset_s, on_alert_change, a);
	a->keys = keys_new();
	a->auth = auth_new();
	if (!a->sensors || !a->kpi || !a->alerts || !a->keys || !a->auth) {
		log_error("out of memory");
		goto out;
	}
	if (load_credentials(conn, a->cfg.tenant, a->keys, a->auth, err,
			     sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	kpi_advance(a->kpi, clock_now_us());
	if (load_state(conn, a->cfg.tenant, a->sensors, a->alerts, &sink, err,
		       sizeof(err)) < 0) {
		log_error("cannot load the state: %s", err);
		goto out;
	}
	log_info("state rebuilt in %.3f s: %zu calls, %zu tickets, %d "
		 "sensors, %d keys, %d screen tokens and sessions",
		 (double)(clock_now_us() - t0) / 1e6, kpi_calls_held(a->kpi),
		 kpi_tickets_held(a->kpi), sensors_count(a->sensors),
		 keys_count(a->keys), auth_count(a->auth));
	rc = 0;
out:
	PQfinish(conn);
	return rc;
}

int app_serve(const struct config *cfg)
{
	struct app app = {0};
	struct app *a = &app;
	uv_loop_t loop;
	char err[256];
	int rc = 1;

	a->cfg = *cfg;
	a->schema_missing = -1;
	if (startup_db(a) < 0)
		goto out;
	if (uv_loop_init(&loop) != 0)
		goto out;
	a->loop = &loop;
	uv_timer_init(&loop, &a->publish);
	a->publish.data = a;
	struct store_sink sink = {sink_call, sink_ticket, sink_reading, a};
	a->store = store_new(&loop, cfg->database_url, cfg->tenant, &sink,
			     cfg->max_pending_events,
			     (unsigned)cfg->db_timeout_s * 1000);
	a->reader =
	    pgc_new(&loop, cfg->database_url, "reader", READER_QUEUE,
		    (unsigned)cfg->db_timeout_s * 1000, reader_state, a);
	if (a->reader)
		pgc_on_notify(a->reader, credentials_notified, a);
	a->pub = pub_new();
	if (a->pub)
		pub_set_admit(a->pub, ws_admit, a);
	a->limiter = limit_new(cfg->rate_limit, 2 * cfg->rate_limit);
	a->login_limiter = limit_new(LOGIN_RATE, LOGIN_BURST);
	if (!a->store || !a->reader || !a->pub || !a->limiter ||
	    !a->login_limiter) {
		log_error("out of memory");
		goto out_loop;
	}
	struct http_config hc = {
	    .host = cfg->host,
	    .port = cfg->port,
	    .static_dir = cfg->static_dir,
	    .max_body = cfg->max_body,
	    .request_timeout_s = cfg->request_timeout_s,
	    .ws_ping_s = cfg->ws_ping_s,
	    .tls_cert = cfg->tls_cert,
	    .tls_key = cfg->tls_key,
	    .max_conns_per_ip = cfg->max_conns_per_ip,
	    .host_names = cfg->host_names,
	    .n_host_names = cfg->n_host_names,
	};
	const struct http_handler handler = {
	    .begin = api_begin,
	    .body = api_body,
	    .page = access_page_file,
	    .upgrade = access_upgrade,
	    .app = a,
	};
	a->http = http_new(&loop, &handler, &hc, a->pub, err, sizeof(err));
	if (!a->http) {
		log_error("%s", err);
		goto out_loop;
	}
	/* The first snapshot exists before any screen can connect. */
	a->last_keys_us = a->last_prune_us = a->last_expiry_us = clock_now_us();
	check_alerts(a, clock_now_us());
	publish(a, clock_now_us(), true);

	uv_timer_init(&loop, &a->tick);
	a->tick.data = a;
	uv_timer_start(&a->tick, tick_cb, (uint64_t)cfg->publish_ms,
		       (uint64_t)cfg->publish_ms);
	uv_signal_init(&loop, &a->sigint);
	uv_signal_init(&loop, &a->sigterm);
	a->sigint.data = a->sigterm.data = a;
	uv_signal_start(&a->sigint, signal_cb, SIGINT);
	uv_signal_start(&a->sigterm, signal_cb, SIGTERM);
	signal(SIGPIPE, SIG_IGN);

	log_info("kendali listening on %s://%s:%d (tenant %s, UTC%+d)",
		 cfg->tls_cert ? "https" : "http", cfg->host, cfg->port,
		 cfg->tenant, a->tz_offset_s / 3600);
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = 0;
out_loop:
	if (!a->stopping) {
		/* Start-up failed half-way: close what was opened. */
		a->stopping = true;
		uv_close((uv_handle_t *)&a->publish, close_cb);
		http_close(a->http);
		if (a->store)
			store_close(a->store);
		if (a->reader)
			pgc_close(a->reader);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	http_free(a->http);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		log_warn("some handles were still open at exit");
	pub_free(a->pub);
	limit_free(a->limiter);
	limit_free(a->login_limiter);
out:
	json_decref(a->published);
	kpi_free(a->kpi);
	sensors_free(a->sensors);
	alerts_free(a->alerts);
	keys_free(a->keys);
	auth_free(a->auth);
	counters_free(&a->by_poster);
	return rc;
}
