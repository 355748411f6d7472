/*
 * tests/unit/kpi/kpitest.c - what the KPI tests share.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "kpitest.h"

const char *const kt_keys[] = {
    "calls.received_today",
    "calls.waiting",
    "calls.active",
    "calls.answered_1h",
    "calls.abandoned_1h",
    "calls.abandon_rate_1h",
    "calls.asa_1h_s",
    "calls.service_level_1h",
    "calls.by_category_today",
    "reports.received_today",
    "reports.open",
    "reports.overdue",
    "reports.unassigned",
    "reports.resolved_today",
    "reports.sla_met_30d",
    "reports.resolution_p50_30d_h",
    "reports.by_agency",
    "reports.by_category_open",
    "reports.by_district_open",
    "sensors.total",
    "sensors.offline",
    "sensors.by_level",
    "sensors.latest",
};
const size_t kt_nkeys = sizeof kt_keys / sizeof kt_keys[0];

static void mismatch(const json_t *want, const json_t *got, const char *path,
		     struct note *n)
{
	char *w =
	    want ? json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	/* want is NULL for a key that should not be there, got for one that
	 * is missing. */
	note_add(n, "%s: expected %s, got %s", path,
		 want ? (w ? w : "?") : "(nothing)",
		 got ? (g ? g : "?") : "(missing)");
	free(w);
	free(g);
}

static bool close_enough(double w, double g)
{
	return fabs(w - g) <= 1e-9 * fmax(1.0, fabs(w));
}

static bool match_at(const json_t *want, const json_t *got, const char *path,
		     struct note *n)
{
	char sub[256];
	bool ok = true;

	if (!got) {
		mismatch(want, got, path, n);
		return false;
	}
	switch (json_typeof(want)) {
	case JSON_INTEGER:
		ok = json_is_integer(got) &&
		     json_integer_value(got) == json_integer_value(want);
		break;
	case JSON_REAL:
		ok =
		    json_is_number(got) &&
		    close_enough(json_real_value(want), json_number_value(got));
		break;
	case JSON_OBJECT: {
		const char *key;
		json_t *v;

		if (!json_is_object(got)) {
			ok = false;
			break;
		}
		json_object_foreach ((json_t *)want, key, v) {
			snprintf(sub, sizeof sub, "%s.%s", path, key);
			ok &= match_at(v, json_object_get(got, key), sub, n);
		}
		json_object_foreach ((json_t *)got, key, v) {
			if (json_object_get(want, key))
				continue;
			snprintf(sub, sizeof sub, "%s.%s", path, key);
			mismatch(NULL, v, sub, n);
			ok = false;
		}
		return ok;
	}
	case JSON_ARRAY:
		if (!json_is_array(got) ||
		    json_array_size(got) != json_array_size(want)) {
			ok = false;
			break;
		}
		for (size_t i = 0; i < json_array_size(want); i++) {
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			ok &= match_at(json_array_get(want, i),
				       json_array_get(got, i), sub, n);
		}
		return ok;
	default:
		/* Strings, booleans and null. */
		ok = json_equal((json_t *)want, (json_t *)got);
		break;
	}
	if (!ok)
		mismatch(want, got, path, n);
	return ok;
}

bool kt_match(const json_t *want, const json_t *got, const char *prefix,
	      struct note *n)
{
	return match_at(want, got, prefix, n);
}

void kt_check_keys(const json_t *snap, const char *prefix, struct note *n)
{
	const char *key;
	json_t *v;

	if (!json_is_object(snap)) {
		note_add(n, "%s: the snapshot is not an object", prefix);
		return;
	}
	for (size_t i = 0; i < kt_nkeys; i++)
		if (!json_object_get(snap, kt_keys[i]))
			note_add(n, "%s: key %s is missing", prefix,
				 kt_keys[i]);
	json_object_foreach ((json_t *)snap, key, v) {
		size_t i = 0;

		while (i < kt_nkeys && strcmp(kt_keys[i], key) != 0)
			i++;
		if (i == kt_nkeys)
			note_add(n, "%s: key %s is not in the catalogue",
				 prefix, key);
	}
}

const char *kt_time_str(int64_t us, char buf[40])
{
	char head[40];
	size_t len = ev_time_format(us, KT_WIB, head);
	int64_t sub = us % 1000;

	/* The format stops at milliseconds, but the edges of the tests are a
	 * microsecond wide: put the last three digits before the offset. */
	if (sub < 0)
		sub += 1000;
	snprintf(buf, 40, "%.*s%03d%s", (int)(len - 6), head, (int)sub,
		 head + len - 6);
	return buf;
}
