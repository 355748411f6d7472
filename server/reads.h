/*
 * server/reads.h - what the API reads from the database on the reader
 * connection, with each statement's SQL and the decoding of its rows in
 * this one place, and typed results.  A schema change touches one
 * statement here per table read; the start-up load (load.c) decodes
 * alerts with the same decoder.
 *
 * Each function queues one statement and returns 0, or -1 when the
 * connection takes no more work (its callback is then never called).  The
 * callback gets ok = false when the database could not answer.
 */
#ifndef KENDALI_READS_H
#define KENDALI_READS_H

#include "alert.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgc;

/* ---- alerts ---- */

/* The columns reads_alert_row decodes, in its order, for a FROM alerts. */
#define READS_ALERT_COLUMNS                                                    \
	"id, kind, severity, sensor_id, message, kd_us(raised_at),"            \
	" kd_us(cleared_at), acked_by, kd_us(acked_at), ack_note"

/* Row i of a text result of "SELECT " READS_ALERT_COLUMNS " FROM alerts". */
void reads_alert_row(PGresult *r, int i, struct alert *out);

/* list: the rows decoded, borrowed for the call. */
typedef void (*reads_alerts_cb)(void *arg, bool ok, const struct alert *list,
				size_t n);
/* The tenant's alerts, active or cleared, newest first, at most limit. */
int reads_alerts_all(struct pgc *c, const char *tenant, int limit,
		     reads_alerts_cb cb, void *arg);

/* ---- the KPI history ---- */

/*
 * found: a record exists in the 15 minutes up to the time asked; at_us its
 * time, kpis its JSON object as text (borrowed for the call).
 */
typedef void (*reads_kpis_at_cb)(void *arg, bool ok, bool found, int64_t at_us,
				 const char *kpis);
int reads_kpis_at(struct pgc *c, const char *tenant, int64_t at_us,
		  reads_kpis_at_cb cb, void *arg);

/* ---- series ---- */

enum reads_series {
	READS_CALLS_RECEIVED,
	READS_REPORTS_RECEIVED,
	READS_REPORTS_RESOLVED,
	READS_REPORTS_SLA_MET,
	READS_SENSOR
};

struct reads_series_q {
	enum reads_series kind;
	const char *tenant;
	const char *sensor_id; /* READS_SENSOR */
	const int64_t *sla_us; /* READS_REPORTS_SLA_MET: per report category */
	int64_t start_us;      /* of the first bucket */
	int64_t step_us;
	int n; /* buckets */
};

/* One bucket with something in it; the others are empty. */
struct reads_bucket {
	int index;     /* 0 .. n - 1 */
	int64_t count; /* rows counted; tickets resolved for SLA_MET */
	int64_t met;   /* SLA_MET: of those, resolved within their SLA */
	double min, max, last; /* READS_SENSOR */
};

typedef void (*reads_series_cb)(void *arg, bool ok,
				const struct reads_bucket *b, size_t n);
int reads_series(struct pgc *c, const struct reads_series_q *q,
		 reads_series_cb cb, void *arg);

#endif
