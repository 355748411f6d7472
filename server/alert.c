#include "alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct alerts {
	int tz_offset_s;
	alert_change_cb cb;
	void *arg;
	struct alert *list; /* active ones, and cleared ones not yet stored */
};

const char *alert_kind_name(enum alert_kind k)
{
	return k == ALERT_LEVEL ? "level" : "offline";
}

enum alert_kind alert_kind_parse(const char *name)
{
	return name && strcmp(name, "level") == 0 ? ALERT_LEVEL : ALERT_OFFLINE;
}

struct alerts *alerts_new(int tz_offset_s, alert_change_cb cb, void *arg)
{
	struct alerts *as = calloc(1, sizeof(*as));

	if (!as)
		return NULL;
	as->tz_offset_s = tz_offset_s;
	as->cb = cb;
	as->arg = arg;
	return as;
}

void alerts_free(struct alerts *as)
{
	if (!as)
		return;
	while (as->list) {
		struct alert *next = as->list->next;
		free(as->list);
		as->list = next;
	}
	free(as);
}

int alerts_load(struct alerts *as, const struct alert *a)
{
	struct alert *x = malloc(sizeof(*x));

	if (!x)
		return -1;
	*x = *a;
	x->dirty = x->saving = false;
	x->reading_level = x->severity;
	x->next = as->list;
	as->list = x;
	return 0;
}

static struct alert *active(struct alerts *as, const char *sensor_id,
			    enum alert_kind kind)
{
	for (struct alert *a = as->list; a; a = a->next)
		if (a->kind == kind && a->cleared_us == KPI_NONE &&
		    strcmp(a->sensor_id, sensor_id) == 0)
			return a;
	return NULL;
}

static void changed(struct alerts *as, struct alert *a)
{
	a->dirty = true;
	as->cb(as->arg, a);
}

static void level_message(struct alert *a, const struct sensor_view *v)
{
	const char *lvl = a->severity == KPI_AWAS ? "AWAS" : "SIAGA";

	snprintf(a->message, sizeof(a->message), "%s: %s %.0f %s", v->name, lvl,
		 v->value, v->unit);
}

static void raise_alert(struct alerts *as, const struct sensor_view *v,
			enum alert_kind kind, enum kpi_level severity,
			int64_t now)
{
	struct alert *a = calloc(1, sizeof(*a));

	if (!a)
		return; /* retried at the next check */
	a->kind = kind;
	a->severity = severity;
	a->reading_level = v->level;
	snprintf(a->sensor_id, sizeof(a->sensor_id), "%s", v->sensor_id);
	if (kind == ALERT_LEVEL)
		level_message(a, v);
	else
		snprintf(a->message, sizeof(a->message),
			 "%s: tidak ada data (offline)", v->name);
	a->raised_us = now;
	a->cleared_us = KPI_NONE;
	a->acked_us = KPI_NONE;
	a->next = as->list;
	as->list = a;
	changed(as, a);
}

void alerts_check(struct alerts *as, const struct sensor_view *v, int64_t now)
{
	struct alert *lv = active(as, v->sensor_id, ALERT_LEVEL);
	struct alert *off = active(as, v->sensor_id, ALERT_OFFLINE);
	bool high = v->has_reading && v->level >= KPI_SIAGA;
	bool silent = !v->online && now - v->silent_since_us >
					(int64_t)v->offline_after_s * 1000000;

	if (high && !lv) {
		raise_alert(as, v, ALERT_LEVEL, v->level, now);
	} else if (high && v->level == KPI_AWAS &&
		   lv->reading_level < KPI_AWAS &&
		   (lv->severity < KPI_AWAS || lv->acked_us != KPI_NONE)) {
		/* A new danger needs a new acknowledgement: a rise to awas
		 * from siaga, or again after a fall back to siaga once the
		 * first was acknowledged. */
		lv->severity = KPI_AWAS;
		lv->acked_us = KPI_NONE;
		lv->acked_by[0] = '\0';
		lv->note[0] = '\0';
		level_message(lv, v);
		changed(as, lv);
	} else if (!high && lv) {
		lv->cleared_us = now;
		changed(as, lv);
	}
	if (lv && v->has_reading)
		lv->reading_level = v->level;

	if (silent && !off)
		raise_alert(as, v, ALERT_OFFLINE, KPI_NORMAL, now);
	else if (v->online && off) {
		off->cleared_us = now;
		changed(as, off);
	}
}

struct alert *alerts_find(struct alerts *as, int64_t id)
{
	for (struct alert *a = as->list; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

void alerts_ack(struct alerts *as, struct alert *a, const char *by,
		const char *note, int64_t now)
{
	a->acked_us = now;
	snprintf(a->acked_by, sizeof(a->acked_by), "%s", by);
	snprintf(a->note, sizeof(a->note), "%s", note ? note : "");
	changed(as, a);
}

struct alert *alerts_next_unsaved(struct alerts *as)
{
	for (struct alert *a = as->list; a; a = a->next)
		if (a->dirty && !a->saving)
			return a;
	return NULL;
}

void alert_save_begin(struct alert *a)
{
	a->saving = true;
	a->dirty = false;
}

void alerts_save_done(struct alerts *as, struct alert *a, bool ok, int64_t id)
{
	bool first = ok && a->id == 0;

	a->saving = false;
	if (!ok) {
		a->dirty = true;
		return;
	}
	if (first) {
		a->id = id;
		as->cb(as->arg, a);
	}
	if (a->cleared_us != KPI_NONE && !a->dirty) {
		for (struct alert **p = &as->list; *p; p = &(*p)->next) {
			if (*p == a) {
				*p = a->next;
				free(a);
				return;
			}
		}
	}
}

static json_t *time_or_null(const struct alerts *as, int64_t us)
{
	char buf[40];

	if (us == KPI_NONE)
		return json_null();
	ev_time_format(us, as->tz_offset_s, buf);
	return json_string(buf);
}

/* A level alert's level; null for an offline one, which says nothing of the
 * water. */
static json_t *alert_severity_json(const struct alert *a)
{
	return a->kind == ALERT_OFFLINE
		   ? json_null()
		   : json_string(kpi_level_name(a->severity));
}

json_t *alert_json(const struct alerts *as, const struct alert *a)
{
	return json_pack(
	    "{s:I, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:b}", "id",
	    (json_int_t)a->id, "kind", alert_kind_name(a->kind), "severity",
	    alert_severity_json(a), "sensor_id", a->sensor_id, "message",
	    a->message, "raised_at", time_or_null(as, a->raised_us),
	    "cleared_at", time_or_null(as, a->cleared_us), "acked_by",
	    a->acked_us == KPI_NONE ? json_null() : json_string(a->acked_by),
	    "acked_at", time_or_null(as, a->acked_us), "note",
	    a->note[0] ? json_string(a->note) : json_null(), "active",
	    a->cleared_us == KPI_NONE);
}

static int newest_first(const void *x, const void *y)
{
	const struct alert *a = *(struct alert *const *)x;
	const struct alert *b = *(struct alert *const *)y;

	if (a->raised_us != b->raised_us)
		return a->raised_us > b->raised_us ? -1 : 1;
	return a->id > b->id ? -1 : a->id < b->id;
}

json_t *alerts_active_json(const struct alerts *as)
{
	json_t *arr = json_array();
	struct alert **list;
	size_t n = 0, cap = 0;

	for (struct alert *a = as->list; a; a = a->next)
		cap++;
	list = malloc((cap + 1) * sizeof(*list));
	if (!list)
		return arr;
	for (struct alert *a = as->list; a; a = a->next)
		if (a->id != 0 && a->cleared_us == KPI_NONE)
			list[n++] = a;
	qsort(list, n, sizeof(*list), newest_first);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, alert_json(as, list[i]));
	free(list);
	return arr;
}
