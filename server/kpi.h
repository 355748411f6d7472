/*
 * server/kpi.h - the KPI aggregator: every key of docs/kpis.md kept current
 * as committed state arrives and as the clock moves.
 *
 * Its input is what the database returns when events commit: the merged
 * summary of each call and ticket the events touched (calls and tickets
 * tables); the sensors.* keys are read from the registry (sensors.h).
 * Applying a summary replaces the
 * previous one, so the order of application does not matter and the same
 * rows give the same KPIs on any server.  Each application costs O(log n):
 * windows expire through a heap, the median through an order-statistic tree.
 * The aggregator knows nothing of libpq or websockets.
 */
#ifndef KENDALI_KPI_H
#define KENDALI_KPI_H

#include "event.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define KPI_NONE INT64_MIN /* a time that does not exist */

enum kpi_level {
	KPI_NORMAL,
	KPI_WASPADA,
	KPI_SIAGA,
	KPI_AWAS,
	KPI_LEVEL_COUNT
};

struct sensors;

struct kpi_config {
	int tz_offset_s;	     /* the tenant's UTC offset (WIB: 25200) */
	int64_t sla_us[EV_RC_COUNT]; /* per report category */
	/* The sensor registry (sensors.h) the sensors.* keys are read from
	 * (borrowed); NULL: the snapshot has none. */
	const struct sensors *sensors;
};

/* A call as the calls table holds it.  Strings are borrowed. */
struct kpi_call {
	const char *call_id;
	int64_t received_us;
	int status;	      /* enum ev_call_status */
	int category;	      /* enum ev_call_category or -1 */
	int64_t answered_us;  /* KPI_NONE when never answered */
	int64_t abandoned_us; /* KPI_NONE when never abandoned */
};

/* A ticket as the tickets table holds it.  Strings are borrowed, or NULL. */
struct kpi_ticket {
	const char *ticket;
	int64_t received_us;
	int status;   /* enum ev_report_status */
	int category; /* enum ev_report_category or -1 */
	const char *district;
	const char *agency;
	bool dispatched;
	int64_t resolved_us; /* KPI_NONE when never resolved */
};

struct kpi;

/* Returns a new aggregator, or NULL when out of memory. */
struct kpi *kpi_new(const struct kpi_config *cfg);
void kpi_free(struct kpi *k);

/*
 * Replace the state of one call or ticket with its new summary, at clock
 * now.  Return 0, or -1 when out of memory (the state is then unchanged).
 */
int kpi_apply_call(struct kpi *k, const struct kpi_call *c, int64_t now)
    __attribute__((warn_unused_result));
int kpi_apply_ticket(struct kpi *k, const struct kpi_ticket *t, int64_t now)
    __attribute__((warn_unused_result));

/* Moves the clock: windows slide, tickets fall overdue. */
void kpi_advance(struct kpi *k, int64_t now);

/* Forgets calls and tickets that no KPI can count any more. */
void kpi_prune(struct kpi *k, int64_t now);

/* a / b rounded down (C rounds towards zero): the day or bucket holding a
 * time before 1970 too. */
static inline int64_t kpi_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

enum kpi_level kpi_level_of(const double thresholds[3], double value);
const char *kpi_level_name(enum kpi_level l);
/* The level a name gives ("awas", ...); KPI_NORMAL for anything else. */
enum kpi_level kpi_level_parse(const char *name);

/*
 * Every KPI of the catalogue except alerts.active, as a new JSON object
 * keyed by the full KPI names; at is formatted in the tenant's zone.
 */
json_t *kpi_snapshot(struct kpi *k, int64_t now);

/* Sizes, for /metrics. */
size_t kpi_calls_held(const struct kpi *k);
size_t kpi_tickets_held(const struct kpi *k);

#endif
