/*
 * server/app.h - the root: one struct owns the loop, the configuration and
 * every module, and wires them together.  Modules never reach each other
 * but through the functions here and their own headers.
 */
#ifndef KENDALI_APP_H
#define KENDALI_APP_H

#include "counters.h"
#include "event.h"
#include "pub.h"
#include "tenant.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct config {
	const char *database_url;
	const char *tenant; /* the default tenant (struct app's tenant) */
	const char *host;
	int port;
	const char *static_dir;
	size_t max_body;
	size_t max_batch;
	int publish_ms;
	int request_timeout_s;
	size_t max_pending_events;
	double rate_limit; /* requests per second per key; 0: off */
	const char *tls_cert, *tls_key; /* serve HTTPS and WSS when set */
	int64_t sla_us[EV_RC_COUNT];
	bool migrate;
	bool anonymous_loopback; /* reads and acks from 127/8 without login */
	int session_hours;	 /* a login lasts this long */
	int max_conns_per_ip;	 /* 0: no limit */
	int ws_ping_s;		 /* screens: ping when silent, drop at 3x */
	int db_timeout_s;	 /* a database unanswered this long is lost */
	int max_logins;		 /* logins checked at once; beyond, 503 */
	const char *const *host_names; /* --host-name, besides addresses */
	size_t n_host_names;
};

struct app {
	uv_loop_t *loop;
	struct config cfg;
	/* Every tenant of kind local in the database; each request, screen
	 * and committed row goes to its credential's or its own. */
	struct tenants tenants;
	/* The default: the tenant of anonymous reads (--anonymous-loopback)
	 * and of logins that name none (--tenant). */
	struct tenant *tenant;
	struct pub_door door; /* screens to their tenant's publisher */
	struct store *store;
	struct pgc *reader; /* reads that must not wait behind writes */
	struct keys *keys;
	struct auth *auth; /* screen tokens and sessions */
	struct limiter *limiter;
	struct limiter *login_limiter; /* per client address */
	int logins_in_flight;	       /* from the body read to the answer */
	struct http *http;
	uv_timer_t tick;
	uv_signal_t sigint, sigterm;
	bool stopping;
	bool reader_listening;	   /* LISTEN issued on the current connection */
	bool keys_owed, auth_owed; /* a re-read not queued yet: retry */
	bool tenants_owed;	   /* ditto, of the tenants */
	uint64_t stop_ms;	   /* loop time the stop began (monotonic) */

	int64_t last_prune_us;
	int64_t last_schema_us;
	int schema_missing; /* migrations the database lacks; -1 until known */
	int64_t last_keys_us;
	int64_t last_expiry_us;
	int64_t db_lost_us; /* since when not ready, 0 when ready */
	bool db_down_told;  /* screens were told the data is stale */

	/* Counters for /metrics. */
	uint64_t requests, rejected;
};

/* Both database connections are up: events can be committed and read. */
bool app_ready(const struct app *a);

/* The configuration before any option, every default written once (main.c
 * prints them in `kendali --help`); the database from DATABASE_URL. */
void app_config_defaults(struct config *cfg);

/* Runs `kendali serve`; returns the process exit code. */
int app_serve(const struct config *cfg);

#endif
