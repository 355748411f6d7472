/*
 * server/api_ops.c - what the city's ops team and its monitoring read:
 * /healthz (the process answers), /readyz (it can serve: the database is
 * reachable and has this binary's schema) and /metrics (Prometheus text).
 *
 * /metrics follows Prometheus' text format 0.0.4 and its naming: every
 * family has one HELP and one TYPE line before its samples, names carry
 * their base unit (_seconds) and counters end in _total.  docs/api.md lists
 * the families; tests/integration/test_metrics.py parses them strictly.
 */
#include "api_routes.h"

#include "app.h"
#include "http.h"
#include "kpi.h"
#include "pub.h"
#include "store.h"
#include "tenant.h"

#include <stdbool.h>
#include <stdio.h>

/* server/meson.build defines it, as for main.c's --version. */
#ifndef KENDALI_VERSION
#define KENDALI_VERSION "dev"
#endif

void api_healthz(struct http_req *r)
{
	http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/*
 * Ready: the writer and the reader are connected, and the database has
 * every migration of this binary (a restore may bring back an older
 * schema, which only `kendali migrate` changes).
 */
void api_readyz(struct http_req *r)
{
	struct app *a = r->app;
	bool db = app_ready(a), schema = a->schema_missing == 0;
	bool ok = db && schema;

	if (!ok)
		r->retry_after_s = HTTP_RETRY_AFTER_S;
	http_respond_json(r, ok ? 200 : 503,
			  json_pack("{s:b, s:b, s:b}", "ready", ok, "database",
				    db, "schema", schema));
}

/* The HELP and TYPE lines of a family, before its samples. */
static void family(struct buf *b, const char *name, const char *type,
		   const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value between its quotes: the text format escapes backslash,
 * double quote and newline, and nothing else. */
static void label_value(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_str(b, "\\\\");
		else if (*s == '"')
			buf_str(b, "\\\"");
		else if (*s == '\n')
			buf_str(b, "\\n");
		else
			buf_add(b, s, 1);
	}
}

/*
 * A counter with one sample per row of c (a poster, a district), labelled
 * label, and none before the first: there is no unlabelled total beside
 * it, which Prometheus gives as sum(name).
 */
/* A counter per tenant and label value: the tenants' posters, or
 * (districts) their unknown districts. */
static void per_label(struct buf *b, const struct app *a, bool districts,
		      const char *name, bool duplicate, const char *help)
{
	const struct poster_count *row;

	family(b, name, "counter", help);
	for (size_t t = 0; t < a->tenants.n; t++) {
		const struct tenant *tn = a->tenants.list[t];
		const struct counters *c =
		    districts ? &tn->unknown_districts : &tn->by_poster;

		for (size_t i = 0; (row = counters_next(c, &i));) {
			buf_printf(b, "%s{tenant=\"", name);
			label_value(b, tn->info.id);
			buf_printf(b, "\",%s=\"",
				   districts ? "district" : "poster");
			label_value(b, row->poster);
			buf_printf(b, "\"} %llu\n",
				   (unsigned long long)(duplicate
							    ? row->duplicate
							    : row->accepted));
		}
	}
}

static void counter(struct buf *b, const char *name, uint64_t v,
		    const char *help)
{
	family(b, name, "counter", help);
	buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, size_t v, const char *help)
{
	family(b, name, "gauge", help);
	buf_printf(b, "%s %zu\n", name, v);
}

static void build_info(struct buf *b)
{
	family(b, "kendali_build_info", "gauge",
	       "Always 1; its version label is the running kendali's "
	       "(kendali --version). Check it after a deployment.");
	buf_str(b, "kendali_build_info{version=\"");
	label_value(b, KENDALI_VERSION);
	buf_str(b, "\"} 1\n");
}

static void ingest_metrics(struct buf *b, struct app *a)
{
	char help[512];

	/* The bound and the bucket of counters.h, said where operators
	 * look. */
	snprintf(help, sizeof(help),
		 "Events stored, per tenant and poster (the poster of the "
		 "agency's key). An agency that stops rising has stopped "
		 "sending. A tenant's posters past its first %d are counted "
		 "as poster=\"%s\".",
		 COUNTERS_POSTERS_MAX, COUNTERS_OTHER);
	per_label(b, a, false, "kendali_events_accepted_total", false, help);
	per_label(b, a, false, "kendali_events_duplicate_total", true,
		  "Events posted again (same poster and id) and not stored "
		  "twice, per tenant and poster. A steady rise means that "
		  "agency resends what was already stored.");
	snprintf(help, sizeof(help),
		 "Events accepted whose district is none of the tenant's "
		 "kecamatan (kendali tenant import), by that name, resent "
		 "ones included: a misspelling to fix at its agency. Their "
		 "reports count under \"%s\". A tenant's names past its "
		 "first %d are counted as district=\"%s\".",
		 TENANT_OTHER_DISTRICT, COUNTERS_POSTERS_MAX, COUNTERS_OTHER);
	per_label(b, a, true, "kendali_events_unknown_district_total", false,
		  help);
	counter(b, "kendali_requests_rejected_total", a->rejected,
		"Agency requests refused: POST /api/v1/events for its content "
		"(400, 403, 413 for too many events, 422) and either ingest "
		"route for its key's rate (429). Each answer tells the agency "
		"why.");
	counter(b, "kendali_commit_groups_total", store_groups(a->store),
		"Database transactions that stored events; concurrent "
		"requests are committed together.");
	counter(b, "kendali_commit_groups_rewritten_total",
		store_groups_rewritten(a->store),
		"Commit groups written a second time because one of their "
		"events was stored before (a resent event).");
	gauge(b, "kendali_store_pending_events", store_pending(a->store),
	      "Events waiting to be written to the database. A queue that "
	      "keeps growing means the database is slow; at its bound, posts "
	      "are refused with 503.");
}

/* The process's screens are those of every tenant it serves. */
static void screen_metrics(struct buf *b, struct app *a)
{
	uint64_t pushes = 0, push_us = 0, sent = 0, snapshots = 0;
	size_t clients = 0;

	for (size_t i = 0; i < a->tenants.n; i++) {
		const struct pub *p = a->tenants.list[i]->pub;
		uint64_t n, us;

		pub_push_time(p, &n, &us);
		pushes += n;
		push_us += us;
		clients += pub_clients(p);
		sent += pub_messages_sent(p);
		snapshots += pub_snapshots_sent(p);
	}
	gauge(b, "kendali_ws_clients", clients,
	      "Open websocket connections of screens.");
	counter(b, "kendali_ws_messages_total", sent,
		"Websocket messages sent to screens.");
	counter(b, "kendali_ws_snapshots_total", snapshots,
		"Websocket snapshots sent to screens: one per connection, and "
		"one per screen that fell too far behind. Far more than the "
		"connections made means screens cannot keep up.");
	family(b, "kendali_ws_push_seconds", "summary",
	       "Time from a message to the last screen's turn to get it, "
	       "per fan-out; a mean (sum / count) that grows with the "
	       "screens means the server cannot keep up.");
	buf_printf(b,
		   "kendali_ws_push_seconds_sum %.6f\n"
		   "kendali_ws_push_seconds_count %llu\n",
		   (double)push_us / 1e6, (unsigned long long)pushes);
}

static void state_metrics(struct buf *b, struct app *a)
{
	size_t calls = 0, tickets = 0;

	for (size_t i = 0; i < a->tenants.n; i++) {
		calls += kpi_calls_held(a->tenants.list[i]->kpi);
		tickets += kpi_tickets_held(a->tenants.list[i]->kpi);
	}
	gauge(b, "kendali_tenants", a->tenants.n,
	      "Tenants served (every city and regency of the database).");
	gauge(b, "kendali_calls_held", calls,
	      "Calls held in memory for the KPIs, of every tenant.");
	gauge(b, "kendali_tickets_held", tickets,
	      "Tickets held in memory for the KPIs, of every tenant.");
	gauge(b, "kendali_database_up", store_ready(a->store) ? 1 : 0,
	      "1 when the writer's database connection is up, else 0: "
	      "then nothing can be stored; check PostgreSQL.");
}

void api_metrics(struct http_req *r)
{
	struct app *a = r->app;
	struct buf b = {0};

	build_info(&b);
	ingest_metrics(&b, a);
	screen_metrics(&b, a);
	state_metrics(&b, a);
	if (b.oom)
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
	else
		http_respond(r, 200, "text/plain; version=0.0.4", b.p, b.len);
	buf_free(&b);
}
