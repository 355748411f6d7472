/*
 * server/alert.h - the alert rules of docs/kpis.md: level alerts raised,
 * escalated and cleared by a sensor's latest reading, offline alerts by its
 * silence, and operators' acknowledgements.
 *
 * The module owns every alert in memory.  Each change marks the alert dirty
 * and calls the change callback; the owner stores the alert's full state
 * (alert_save_begin / alert_save_done) and publishes it.  An alert gets its
 * id from its first store; until then it is not shown.
 */
#ifndef KENDALI_ALERT_H
#define KENDALI_ALERT_H

#include "kpi.h"
#include "sensors.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum alert_kind { ALERT_LEVEL, ALERT_OFFLINE };

struct alert {
	int64_t id; /* 0 until first stored */
	enum alert_kind kind;
	enum kpi_level severity; /* level alerts; unused for offline */
	/* Level alerts: the level of the latest reading seen, so that every
	 * rise to awas, also a second one after a fall to siaga, needs a new
	 * acknowledgement.  Not stored: loaded as the severity. */
	enum kpi_level reading_level;
	char sensor_id[65];
	char message[200];
	int64_t raised_us;
	int64_t cleared_us; /* KPI_NONE while active */
	int64_t acked_us;   /* KPI_NONE when not acknowledged */
	char acked_by[65];
	char note[201];
	bool dirty;  /* changed since last stored */
	bool saving; /* a store is in flight */
	struct alert *next;
};

struct alerts;

/* Called after every change of an alert (borrowed pointer). */
typedef void (*alert_change_cb)(void *arg, struct alert *a);

struct alerts *alerts_new(int tz_offset_s, alert_change_cb cb, void *arg);
void alerts_free(struct alerts *as);

/* Adds an alert read from the database at start-up (copied). */
int alerts_load(struct alerts *as, const struct alert *a)
    __attribute__((warn_unused_result));

/* Applies the rules to one sensor at clock now. */
void alerts_check(struct alerts *as, const struct sensor_view *v, int64_t now);

/* Finds an alert, active or recently cleared, by id; NULL if unknown. */
struct alert *alerts_find(struct alerts *as, int64_t id);

/* Records an acknowledgement (by and note are copied, truncated). */
void alerts_ack(struct alerts *as, struct alert *a, const char *by,
		const char *note, int64_t now);

/*
 * Storing: the owner takes the next alert that needs storing, marks the
 * store begun, and reports its end; on success with the id from the
 * database (ignored when the alert already has one).  Cleared alerts are
 * freed once stored.
 */
struct alert *alerts_next_unsaved(struct alerts *as);
void alert_save_begin(struct alert *a);
void alerts_save_done(struct alerts *as, struct alert *a, bool ok, int64_t id);

/* The alert as the API and the websocket show it (new reference). */
json_t *alert_json(const struct alerts *as, const struct alert *a);
/* alerts.active: stored, not cleared, newest first (new reference). */
json_t *alerts_active_json(const struct alerts *as);

const char *alert_kind_name(enum alert_kind k);
/* The kind a stored name gives ("level" or "offline"). */
enum alert_kind alert_kind_parse(const char *name);

#endif
