/*
 * server/sensors.h - the sensor registry: each gauge's definition (its
 * ladder of thresholds, its offline delay) and its latest committed
 * reading, and what they say at a time: level, online or not.  The API
 * registers into it, committed readings update it, the alert rules and the
 * KPIs' sensors.* keys read it.  Like the aggregator, it knows nothing of
 * libpq or websockets.
 */
#ifndef KENDALI_SENSORS_H
#define KENDALI_SENSORS_H

#include "event.h"
#include "kpi.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* One sensor at a time, as the alert rules and the KPIs see it. */
struct sensor_view {
	const char *sensor_id; /* borrowed from the registry */
	const char *name;
	const char *unit;
	bool has_reading;
	double value;
	int64_t at_us;
	enum kpi_level level; /* of the latest reading; NORMAL if none */
	bool online;
	int64_t silent_since_us; /* latest reading, else registration */
	int offline_after_s;
};

struct sensors;

/* tz_offset_s: the tenant's, for the times written.  NULL when out of
 * memory. */
struct sensors *sensors_new(int tz_offset_s);
void sensors_free(struct sensors *s);

/* Registers or redefines a sensor.  Returns 0 or -1 (out of memory). */
int sensors_define(struct sensors *s, const struct ev_sensor_def *def,
		   int64_t registered_us) __attribute__((warn_unused_result));
bool sensors_known(const struct sensors *s, const char *sensor_id);
/* A committed reading; an older one than the latest changes nothing.
 * Returns true when it became the latest. */
bool sensors_apply_reading(struct sensors *s, const char *sensor_id,
			   int64_t at_us, double value);

/* Number of sensors; they are numbered 0.. in sensor_id order. */
int sensors_count(const struct sensors *s);
/* The number of a sensor, -1 if unknown. */
int sensors_index(const struct sensors *s, const char *sensor_id);
/* The definition of sensor i (borrowed). */
const struct ev_sensor_def *sensors_def(const struct sensors *s, int i);
/* Sensor i at now. */
void sensors_view(const struct sensors *s, int i, int64_t now,
		  struct sensor_view *out);
/* Sensor i as an entry of sensors.latest, its latest reading and level at
 * now (new reference); the registry's answer adds the definition to it. */
json_t *sensors_entry_json(const struct sensors *s, int i, int64_t now);
/* Sets sensors.total, sensors.offline, sensors.by_level and
 * sensors.latest of docs/kpis.md in o. */
void sensors_kpis(const struct sensors *s, int64_t now, json_t *o);

#endif
