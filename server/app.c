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
#include "notify.h"
#include "pgconn.h"
#include "pub.h"
#include "reads.h"
#include "sensors.h"
#include "store.h"
#include "tenant.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEC_US INT64_C(1000000)
/* Keys change through NOTIFY at once; this is only a safety net. */
#define KEYS_REFRESH_US (60 * SEC_US)
#define EXPIRY_CHECK_US SEC_US /* sessions ending by the clock */
#define PRUNE_US (600 * SEC_US)
/* The schema is read again this often: a restore may put an older one. */
#define SCHEMA_CHECK_US (10 * SEC_US)
/* Logins per client address: 10 in a row, then one every 6 s. */
#define LOGIN_RATE (1.0 / 6)
#define LOGIN_BURST 10
#define READER_QUEUE 64
#define STOP_GRACE_MS 2000 /* longest a stop waits for screens and writes */
/* Not ready for this long: screens are told their data is stale.  Shorter
 * losses (a connection killed and made again) pass unseen. */
#define DB_DOWN_AFTER_US SEC_US

static void refresh_tenants(struct app *a);

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
	a->keys_owed = reads_keys(a->reader, keys_loaded, a) < 0;
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
		for (size_t i = 0; i < a->tenants.n; i++)
			pub_revalidate(a->tenants.list[i]->pub, credential_live,
				       a);
		return;
	}
	log_warn("refreshing screen tokens and sessions failed: %s",
		 r ? PQresultErrorMessage(r) : error);
}

static struct pub *ws_admit(void *arg, struct lws *wsi, char *id, size_t len)
{
	return access_ws_admit(arg, wsi, id, len);
}

static void refresh_auth(struct app *a)
{
	a->auth_owed = reads_credentials(a->reader, auth_loaded, a) < 0;
	if (a->auth_owed)
		log_debug("sessions not refreshed yet: reader busy or away");
}

/* ---- tenants created while the server runs ---- */

/* A read of one tenant's reference data (kecamatan or sensors). */
struct ref_read {
	struct app *app;
	char tenant[AUTH_TENANT_MAX + 1];
};

/* The tenant a reference read was for, if its answer is good. */
static struct tenant *ref_tenant(struct ref_read *q, PGresult *r,
				 const char *error, const char *what)
{
	struct tenant *t = tenants_get(&q->app->tenants, q->tenant);

	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warn("reading the %s of %s failed: %s", what, q->tenant,
			 r ? PQresultErrorMessage(r) : error);
		return NULL;
	}
	return t;
}

static void tickets_read(void *arg, PGresult *r, const char *error)
{
	struct ref_read *q = arg;
	struct store_sink sink = tenants_sink(&q->app->tenants);

	if (ref_tenant(q, r, error, "tickets"))
		store_apply_rows(&sink, r);
	free(q);
}

static void districts_read(void *arg, PGresult *r, const char *error)
{
	struct ref_read *q = arg;
	struct tenant *t = ref_tenant(q, r, error, "kecamatan");
	struct hmap next = {0};

	if (t && load_district_rows(r, &next) == 0) {
		hmap_free_all(&t->districts, NULL);
		t->districts = next;
		/* Each ticket's district is "other" or its own anew, as a
		 * start would count it. */
		if (reads_tenant_tickets(q->app->reader, q->tenant,
					 tickets_read, q) == 0)
			return;
		log_warn("the tickets of %s not read again: reader busy",
			 q->tenant);
	} else {
		hmap_free_all(&next, NULL);
		if (t)
			log_error("out of memory reading the kecamatan of %s",
				  q->tenant);
	}
	free(q);
}

static void sensors_read(void *arg, PGresult *r, const char *error)
{
	struct ref_read *q = arg;
	struct tenant *t = ref_tenant(q, r, error, "sensors");

	if (t && load_sensor_rows(r, t->sensors) < 0)
		log_error("out of memory reading the sensors of %s", q->tenant);
	if (t)
		tenant_touch(t);
	free(q);
}

/* Reads a tenant's kecamatan and sensors again: `kendali tenant import`
 * changed them (NOTIFY kendali_reference), or the tenant is new. */
static void refresh_reference(struct app *a, const char *tenant)
{
	for (int k = 0; k < 2; k++) {
		struct ref_read *q = calloc(1, sizeof(*q));
		int rc;

		if (!q)
			return;
		q->app = a;
		snprintf(q->tenant, sizeof(q->tenant), "%s", tenant);
		rc = k == 0 ? reads_tenant_districts(a->reader, tenant,
						     districts_read, q)
			    : reads_tenant_sensors(a->reader, tenant,
						   sensors_read, q);
		if (rc < 0) {
			log_warn("the reference data of %s not read: reader "
				 "busy or away (read at the next change or "
				 "start)",
				 tenant);
			free(q);
		}
	}
}

/* Serves a tenant from now on: its state is empty (it is new), its
 * reference data on its way. */
static int add_tenant(struct app *a, const struct tenant_info *info)
{
	struct tenant *t = tenant_new(a, info);

	if (!t || tenants_add(&a->tenants, t) < 0) {
		tenant_free(t);
		return -1;
	}
	kpi_advance(t->kpi, clock_now_us());
	if (a->http) {
		tenant_start(t, a->loop, http_lws_context(a->http));
		tenant_publish(t, clock_now_us(), true);
	}
	return 0;
}

static void members_read(void *arg, PGresult *r, const char *error)
{
	struct app *a = arg;

	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
		log_warn("reading the provinces' members failed: %s",
			 r ? PQresultErrorMessage(r) : error);
	else if (tenants_set_members(&a->tenants, r) < 0)
		log_error("out of memory reading the provinces' members");
}

static void tenants_read(void *arg, PGresult *r, const char *error)
{
	struct app *a = arg;

	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warn("reading the tenants failed: %s",
			 r ? PQresultErrorMessage(r) : error);
		return;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct tenant_info info;
		struct tenant *t;

		load_tenant_row(r, i, &info);
		if ((t = tenants_get(&a->tenants, info.id))) {
			/* A new name or head shows at the pages' next
			 * load; a new zone at the next start. */
			memcpy(t->info.name, info.name, sizeof(info.name));
			memcpy(t->info.head, info.head, sizeof(info.head));
			continue;
		}
		if (a->stopping)
			return;
		if (add_tenant(a, &info) < 0) {
			log_error("out of memory serving tenant %s", info.id);
			continue;
		}
		log_info("serving tenant %s (%s), created while running",
			 info.id, info.name);
		if (!info.province)
			refresh_reference(a, info.id);
	}
	/* New members, or a new province's. */
	if (reads_members(a->reader, members_read, a) < 0)
		log_warn("the provinces' members not read: reader busy");
}

static void refresh_tenants(struct app *a)
{
	a->tenants_owed = reads_tenants(a->reader, tenants_read, a) < 0;
	if (a->tenants_owed)
		log_debug("tenants not refreshed yet: reader busy or away");
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
		refresh_tenants(a);
		refresh_keys(a);
		refresh_auth(a);
	}
	check_schema(a, clock_now_us());
}

/*
 * A tenant was created or changed, or a key, screen token, user or session
 * of any tenant was created, changed or revoked: a new tenant is served
 * now, and a revocation takes effect now.
 */
static void credentials_notified(void *arg, const char *channel,
				 const char *payload)
{
	struct app *a = arg;

	if (strcmp(channel, "kendali_tenants") == 0)
		refresh_tenants(a);
	else if (strcmp(channel, "kendali_reference") == 0)
		refresh_reference(a, payload ? payload : "");
	else if (strcmp(channel, "kendali_auth") == 0)
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
	if (reads_prune(a->reader) < 0)
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

	if (ready) {
		a->db_lost_us = 0;
		if (a->db_down_told) {
			a->db_down_told = false;
			for (size_t i = 0; i < a->tenants.n; i++)
				tenant_database(a->tenants.list[i], true, 0,
						now);
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
	for (size_t i = 0; i < a->tenants.n; i++)
		tenant_database(a->tenants.list[i], false, a->db_lost_us, now);
	log_warn("database unreachable for %.1f s: screens told their data "
		 "is stale",
		 (double)(now - a->db_lost_us) / 1e6);
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

	bool prune = now - a->last_prune_us >= PRUNE_US;

	watch_database(a, now);
	for (size_t i = 0; i < a->tenants.n; i++)
		tenant_tick(a->tenants.list[i], now, prune);
	notify_watchdog(); /* the loop still turns */
	if (now - a->last_keys_us >= KEYS_REFRESH_US) {
		refresh_tenants(a);
		refresh_keys(a);
		refresh_auth(a);
	} else {
		if (a->tenants_owed)
			refresh_tenants(a);
		if (a->keys_owed)
			refresh_keys(a);
		if (a->auth_owed)
			refresh_auth(a);
	}
	if (now - a->last_expiry_us >= EXPIRY_CHECK_US) {
		/* Sessions end by the clock, without any NOTIFY. */
		a->last_expiry_us = now;
		for (size_t i = 0; i < a->tenants.n; i++)
			pub_revalidate(a->tenants.list[i]->pub, credential_live,
				       a);
	}
	if (now - a->last_schema_us >= SCHEMA_CHECK_US)
		check_schema(a, now);
	if (prune) {
		a->last_prune_us = now;
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
	for (size_t i = 0; i < a->tenants.n; i++)
		tenant_close(a->tenants.list[i]);
	http_close(a->http);
	store_close(a->store);
	pgc_close(a->reader);
}

static void stop_wait_cb(uv_timer_t *t)
{
	struct app *a = t->data;
	uint64_t waited_ms = uv_now(a->loop) - a->stop_ms;
	size_t screens = 0;

	for (size_t i = 0; i < a->tenants.n; i++)
		screens += pub_clients(a->tenants.list[i]->pub);
	if ((screens == 0 && store_idle(a->store)) ||
	    waited_ms >= STOP_GRACE_MS)
		stop_finish(a);
}

static void stop(struct app *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	a->stop_ms = uv_now(a->loop);
	log_info("stopping");
	notify_stopping();
	uv_close((uv_handle_t *)&a->sigint, close_cb);
	uv_close((uv_handle_t *)&a->sigterm, close_cb);
	for (size_t i = 0; i < a->tenants.n; i++)
		pub_close_all(a->tenants.list[i]->pub);
	/* The tick timer now only watches for the end of the grace time. */
	uv_timer_start(&a->tick, stop_wait_cb, 20, 20);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	(void)signum;
	stop(s->data);
}

/* ---- start-up ---- */

/* One tenant's state, from the database. */
static int load_one(struct app *a, PGconn *conn, struct tenant *t, char *err,
		    size_t errlen)
{
	struct store_sink sink = tenants_sink(&a->tenants);

	if (t->info.province)
		return 0; /* its members' state is its roll-up */
	if (load_districts(conn, t->info.id, &t->districts, err, errlen) < 0)
		return -1;
	kpi_advance(t->kpi, clock_now_us());
	return load_state(conn, t->info.id, t->sensors, t->alerts, &sink, err,
			  errlen);
}

static int startup_db(struct app *a)
{
	struct tenant_info info;
	char err[512];
	PGconn *conn = PQconnectdb(a->cfg.database_url);
	PGresult *list = NULL;
	int rc = -1, n;
	int64_t t0 = clock_now_us();
	size_t calls = 0, tickets = 0;
	int sensors = 0;

	if (PQstatus(conn) != CONNECTION_OK) {
		log_error("cannot connect to the database: %s",
			  PQerrorMessage(conn));
		goto out;
	}
	if (a->cfg.migrate && (n = migrate_run(conn, err, sizeof(err))) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (load_tenant(conn, a->cfg.tenant, &info, err, sizeof(err)) < 0) {
		log_error("%s (`kendali tenant list` shows them)", err);
		goto out;
	}
	if (info.province) {
		log_error("%s is a province: name one of its members as the "
			  "default tenant",
			  info.id);
		goto out;
	}
	a->keys = keys_new();
	a->auth = auth_new();
	if (!a->keys || !a->auth ||
	    load_tenants(conn, &list, err, sizeof(err)) < 0) {
		log_error("%s", a->keys && a->auth ? err : "out of memory");
		goto out;
	}
	/* Every tenant first, so that each committed row finds its own. */
	for (int i = 0; i < PQntuples(list); i++) {
		load_tenant_row(list, i, &info);
		if (add_tenant(a, &info) < 0) {
			log_error("out of memory");
			goto out;
		}
	}
	a->tenant = tenants_get(&a->tenants, a->cfg.tenant);
	if (load_members(conn, &a->tenants, err, sizeof(err)) < 0 ||
	    load_credentials(conn, a->keys, a->auth, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	for (size_t i = 0; i < a->tenants.n; i++) {
		struct tenant *t = a->tenants.list[i];

		if (load_one(a, conn, t, err, sizeof(err)) < 0) {
			log_error("cannot load the state of %s: %s", t->info.id,
				  err);
			goto out;
		}
		calls += kpi_calls_held(t->kpi);
		tickets += kpi_tickets_held(t->kpi);
		sensors += sensors_count(t->sensors);
	}
	log_info("state rebuilt in %.3f s: %zu tenant(s), %zu calls, %zu "
		 "tickets, %d sensors, %d keys, %d screen tokens and sessions",
		 (double)(clock_now_us() - t0) / 1e6, a->tenants.n, calls,
		 tickets, sensors, keys_count(a->keys), auth_count(a->auth));
	rc = 0;
out:
	PQclear(list);
	PQfinish(conn);
	return rc;
}

#ifndef KENDALI_STATIC_DIR
#define KENDALI_STATIC_DIR "web-static"
#endif
/*
 * The pages' directory when `serve` has no --static: an installed kendali,
 * PREFIX/bin/kendali, serves PREFIX/share/kendali/web-static when that
 * directory exists (/usr/share/kendali/web-static for the package's
 * /usr/bin/kendali); one run from its build directory has none there and
 * serves the web-static of the tree it was built from, KENDALI_STATIC_DIR.
 */
static const char *default_static_dir(void)
{
	static char dir[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;
	char *slash;

	if (n <= 0)
		return KENDALI_STATIC_DIR;
	exe[n] = '\0';
	/* PREFIX/bin/kendali -> PREFIX */
	for (int up = 0; up < 2; up++) {
		if (!(slash = strrchr(exe, '/')))
			return KENDALI_STATIC_DIR;
		*slash = '\0';
	}
	if ((size_t)snprintf(dir, sizeof(dir), "%s/share/kendali/web-static",
			     exe) >= sizeof(dir) ||
	    stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return KENDALI_STATIC_DIR;
	return dir;
}

/* The configuration before any option: every default is written here once,
 * and `kendali --help` prints them from it. */
void app_config_defaults(struct config *cfg)
{
	const char *url = getenv("DATABASE_URL");

	*cfg = (struct config){
	    .database_url = url ? url : "",
	    .tenant = "semarang",
	    .host = "127.0.0.1",
	    .port = 8080,
	    .static_dir = default_static_dir(),
	    .max_body = 1 << 20,
	    .max_batch = 1000,
	    .publish_ms = 250,
	    .request_timeout_s = 30,
	    .ws_ping_s = 20,
	    .db_timeout_s = 15,
	    .max_pending_events = 200000,
	    .rate_limit = 1000,
	    .migrate = true,
	    .session_hours = 12,
	    .max_conns_per_ip = 256,
	    .max_logins = 8,
	};
	for (int c = 0; c < EV_RC_COUNT; c++)
		cfg->sla_us[c] = INT64_C(72) * 3600 * 1000000;
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
	struct store_sink sink = tenants_sink(&a->tenants);
	a->store =
	    store_new(&loop, cfg->database_url, &sink, cfg->max_pending_events,
		      (unsigned)cfg->db_timeout_s * 1000);
	a->reader =
	    pgc_new(&loop, cfg->database_url, "reader", READER_QUEUE,
		    (unsigned)cfg->db_timeout_s * 1000, reader_state, a);
	if (a->reader)
		pgc_on_notify(a->reader, credentials_notified, a);
	a->door = (struct pub_door){ws_admit, a};
	a->limiter = limit_new(cfg->rate_limit, 2 * cfg->rate_limit);
	a->login_limiter = limit_new(LOGIN_RATE, LOGIN_BURST);
	if (!a->store || !a->reader || !a->limiter || !a->login_limiter) {
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
	a->http = http_new(&loop, &handler, &hc, &a->door, err, sizeof(err));
	if (!a->http) {
		log_error("%s", err);
		goto out_loop;
	}
	/* The first snapshots exist before any screen can connect. */
	a->last_keys_us = a->last_prune_us = a->last_expiry_us = clock_now_us();
	for (size_t i = 0; i < a->tenants.n; i++) {
		tenant_start(a->tenants.list[i], &loop,
			     http_lws_context(a->http));
		tenant_publish(a->tenants.list[i], clock_now_us(), true);
	}

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

	log_info("kendali listening on %s://%s:%d (%zu tenant(s); default "
		 "tenant %s, UTC%+d)",
		 cfg->tls_cert ? "https" : "http", cfg->host, cfg->port,
		 a->tenants.n, cfg->tenant, a->tenant->info.tz_offset_s / 3600);
	notify_status("serving %zu tenant(s) on %s:%d", a->tenants.n, cfg->host,
		      cfg->port);
	notify_ready();
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = 0;
out_loop:
	if (!a->stopping) {
		/* Start-up failed half-way: close what was opened. */
		a->stopping = true;
		for (size_t i = 0; i < a->tenants.n; i++)
			tenant_close(a->tenants.list[i]);
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
	limit_free(a->limiter);
	limit_free(a->login_limiter);
out:
	tenants_free(&a->tenants);
	keys_free(a->keys);
	auth_free(a->auth);
	return rc;
}
