/*
 * server/api_ops.c - what the city's ops team and its monitoring read:
 * /healthz (the process answers), /readyz (it can serve: the database is
 * reachable and the state is loaded) and /metrics (Prometheus text).
 */
#include "api_routes.h"

#include "app.h"
#include "http.h"
#include "kpi.h"
#include "pub.h"
#include "store.h"

void api_healthz(struct http_req *r)
{
	http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct http_req *r)
{
	struct app *a = r->app;
	bool ok = app_ready(a);

	if (!ok)
		r->retry_after_s = HTTP_RETRY_AFTER_S;
	http_respond_json(r, ok ? 200 : 503,
			  json_pack("{s:b, s:b}", "ready", ok, "database", ok));
}

void api_metrics(struct http_req *r)
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
