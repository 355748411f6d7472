/*
 * server/store.h - the database writer: events in, committed summaries out.
 *
 * Requests are group-committed: every request that arrives while the
 * previous group is in flight joins the next one, and one statement stores
 * the whole group (events, and the merged call and ticket summaries) in a
 * single transaction.  Each request is answered after that commit.  If a
 * group fails, each of its requests is retried alone, so one bad request
 * never fails the others and a request is always all-or-nothing.
 *
 * What the database returns (new events and the merged summaries) goes to
 * the sink, the only way committed state leaves this module.
 */
#ifndef KENDALI_STORE_H
#define KENDALI_STORE_H

#include "alert.h"
#include "event.h"
#include "kpi.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Each committed row names its tenant (one group mixes tenants). */
struct store_sink {
	void (*call)(void *arg, const char *tenant, const struct kpi_call *c);
	void (*ticket)(void *arg, const char *tenant,
		       const struct kpi_ticket *t);
	void (*reading)(void *arg, const char *tenant, const char *sensor_id,
			int64_t at_us, double value);
	void *arg;
};

enum store_status {
	STORE_OK = 0,
	STORE_UNAVAILABLE = -1, /* no connection, or outcome unknown: 503 */
	STORE_FAILED = -2	/* the database refused the request: 500 */
};

/* Called once per submitted request. */
typedef void (*store_done_cb)(void *arg, enum store_status status,
			      size_t accepted, size_t duplicates,
			      const char *error);

struct store;

struct store *store_new(uv_loop_t *loop, const char *conninfo,
			const struct store_sink *sink,
			size_t max_pending_events, unsigned timeout_ms);

/*
 * Queues a request's events, all of one tenant, for the next group (which
 * may hold other tenants' requests); the audit trail records
 * the poster, the number of events and the client's address (peer) in the
 * same transaction.  Takes ownership of the
 * batch's contents (the caller's *batch is emptied).  Returns 0,
 * STORE_UNAVAILABLE when the database is unreachable or the queue is full,
 * or STORE_FAILED when out of memory; then cb is never called and the batch
 * is left with the caller.
 */
int store_submit(struct store *s, const char *tenant, const char *poster,
		 const char *peer, struct ev_batch *batch, store_done_cb cb,
		 void *arg) __attribute__((warn_unused_result));

/* Upserts a sensor; cb gets ok and whether it was new. */
typedef void (*store_sensor_cb)(void *arg, bool ok, bool created,
				int64_t registered_us, const char *error);
int store_put_sensor(struct store *s, const char *tenant,
		     const struct ev_sensor_def *def, const char *actor,
		     const char *peer, store_sensor_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* Writes an alert's full state (insert when it has no id yet). */
typedef void (*store_alert_cb)(void *arg, bool ok, int64_t id);
int store_save_alert(struct store *s, const char *tenant, const struct alert *a,
		     store_alert_cb cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * Records the KPIs at a point in time (kpis is a JSON object as text,
 * copied) and deletes records older than 400 days.  Fire and forget: a
 * failure is logged, and the next record is written all the same.
 */
void store_save_history(struct store *s, const char *tenant, int64_t at_us,
			const char *kpis);

/* Appends to the audit trail (detail: a JSON object as text). */
void store_audit(struct store *s, const char *tenant, const char *actor,
		 const char *action, const char *detail, const char *peer);

bool store_ready(const struct store *s);
/* Nothing queued and nothing in flight. */
bool store_idle(const struct store *s);
size_t store_pending(const struct store *s);
uint64_t store_groups(const struct store *s);
/* Groups written again by the careful statement after a duplicate. */
uint64_t store_groups_rewritten(const struct store *s);
/* Answers what is queued with STORE_UNAVAILABLE and closes the connection. */
void store_close(struct store *s);

/* Passes result rows of the writer's layout (enum sql_row_col in
 * sqltext.h, binary) on to the sink: for the writer and the start-up load. */
void store_apply_rows(const struct store_sink *sink, PGresult *r);

#endif
