/*
 * server/sensors.c - the sensor registry.  Sensors are kept in a hash by id
 * and in a list sorted by id, the order of sensors.latest and of the
 * registry's answer.
 */
#include "sensors.h"

#include "hmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEC_US INT64_C(1000000)

struct sensor {
	struct ev_sensor_def def;
	int64_t registered_us;
	bool has_reading;
	double value;
	int64_t at_us;
};

struct sensors {
	int tz_offset_s;
	struct hmap by_id;
	struct sensor **list; /* sorted by id */
	int n;
};

struct sensors *sensors_new(int tz_offset_s)
{
	struct sensors *s = calloc(1, sizeof(*s));

	if (s)
		s->tz_offset_s = tz_offset_s;
	return s;
}

void sensors_free(struct sensors *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		free(s->list[i]);
	free(s->list);
	hmap_free(&s->by_id);
	free(s);
}

int sensors_index(const struct sensors *s, const char *sensor_id)
{
	int lo = 0, hi = s->n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(s->list[mid]->def.sensor_id, sensor_id);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int sensor_cmp(const void *a, const void *b)
{
	const struct sensor *x = *(struct sensor *const *)a;
	const struct sensor *y = *(struct sensor *const *)b;
	return strcmp(x->def.sensor_id, y->def.sensor_id);
}

int sensors_define(struct sensors *k, const struct ev_sensor_def *def,
		   int64_t registered_us)
{
	struct sensor *s = hmap_get(&k->by_id, def->sensor_id);
	struct sensor **list;

	if (s) {
		s->def = *def;
		return 0;
	}
	list = realloc(k->list, (size_t)(k->n + 1) * sizeof(*list));
	if (!list)
		return -1;
	k->list = list;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->def = *def;
	s->registered_us = registered_us;
	if (hmap_put(&k->by_id, s->def.sensor_id, s) < 0) {
		free(s);
		return -1;
	}
	list[k->n++] = s;
	qsort(list, (size_t)k->n, sizeof(*list), sensor_cmp);
	return 0;
}

bool sensors_known(const struct sensors *k, const char *sensor_id)
{
	return hmap_get(&k->by_id, sensor_id) != NULL;
}

bool sensors_apply_reading(struct sensors *k, const char *sensor_id,
			   int64_t at_us, double value)
{
	struct sensor *s = hmap_get(&k->by_id, sensor_id);

	if (!s)
		return false;
	if (s->has_reading &&
	    (at_us < s->at_us || (at_us == s->at_us && value <= s->value)))
		return false;
	s->has_reading = true;
	s->at_us = at_us;
	s->value = value;
	return true;
}

const struct ev_sensor_def *sensors_def(const struct sensors *k, int i)
{
	return &k->list[i]->def;
}

int sensors_count(const struct sensors *k)
{
	return k->n;
}

void sensors_view(const struct sensors *k, int i, int64_t now,
		  struct sensor_view *v)
{
	const struct sensor *s = k->list[i];

	v->sensor_id = s->def.sensor_id;
	v->name = s->def.name;
	v->unit = s->def.unit;
	v->has_reading = s->has_reading;
	v->value = s->value;
	v->at_us = s->has_reading ? s->at_us : KPI_NONE;
	v->level = s->has_reading ? kpi_level_of(s->def.thresholds, s->value)
				  : KPI_NORMAL;
	v->offline_after_s = s->def.offline_after_s;
	v->online = s->has_reading &&
		    now - s->at_us <= (int64_t)s->def.offline_after_s * SEC_US;
	v->silent_since_us = s->has_reading ? s->at_us : s->registered_us;
}

json_t *sensors_entry_json(const struct sensors *k, int i, int64_t now)
{
	struct sensor_view v;
	char at[40];

	sensors_view(k, i, now, &v);
	if (v.has_reading)
		ev_time_format(v.at_us, k->tz_offset_s, at);
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}",
			 "sensor_id", v.sensor_id, "name", v.name, "metric",
			 k->list[i]->def.metric, "unit", v.unit, "value",
			 v.has_reading ? json_real(v.value) : json_null(), "at",
			 v.has_reading ? json_string(at) : json_null(), "level",
			 v.has_reading ? json_string(kpi_level_name(v.level))
				       : json_null(),
			 "online", v.online);
}

void sensors_kpis(const struct sensors *k, int64_t now, json_t *o)
{
	json_t *latest = json_array();
	int64_t by_level[KPI_LEVEL_COUNT] = {0};
	int offline = 0;

	for (int i = 0; i < k->n; i++) {
		struct sensor_view v;

		sensors_view(k, i, now, &v);
		if (v.online)
			by_level[v.level]++;
		else
			offline++;
		json_array_append_new(latest, sensors_entry_json(k, i, now));
	}
	json_object_set_new(o, "sensors.total", json_integer(k->n));
	json_object_set_new(o, "sensors.offline", json_integer(offline));
	json_t *levels = json_object();
	for (int l = 0; l < KPI_LEVEL_COUNT; l++)
		json_object_set_new(levels, kpi_level_name((enum kpi_level)l),
				    json_integer(by_level[l]));
	json_object_set_new(o, "sensors.by_level", levels);
	json_object_set_new(o, "sensors.latest", latest);
}
