/*
 * tests/unit/kpi/test_kpi_cases.c - the KPI aggregator against scenarios worked
 * out by hand from docs/kpis.md.
 *
 * Usage: test_kpi_cases tests/unit/kpi/cases.json
 *
 * The file is {"cases": [case, ...]}.  A case has a "name", optionally
 * "sla_h" ({report category: hours}, overriding the 72 h of the others) and
 * "steps", run in order on one aggregator.  Every step has "op" and "at",
 * the clock passed to the aggregator (RFC 3339; never earlier than the
 * previous step's).  By op, the other members of a step:
 *
 *   call        call_id, received, status, category?, answered?, abandoned?
 *   ticket      ticket, received, status, category?, district?, agency?,
 *               dispatched? (false), resolved?
 *   sensor_def  sensor_id, name?, metric?, unit?, thresholds ([waspada,
 *               siaga, awas], null for a level the ladder lacks),
 *               offline_after_s? (900); registered at "at"
 *   reading     sensor_id, occurred, value, expect_latest? (what
 *               sensors_apply_reading must return)
 *   advance     (moves the clock only)
 *   snapshot    expect: {KPI key: value}
 *   prune       checks that the whole snapshot at "at" is the same after
 *               kpi_prune as before
 *
 * A snapshot or prune step may also give expect_calls_held and
 * expect_tickets_held.  Absent times and categories are KPI_NONE and -1;
 * absent strings are NULL.  Each case is one TAP test; a failing one lists
 * every step, key, expected and actual value that differ.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kpi.h"
#include "sensors.h"
#include "kpitest.h"

struct ctx {
	struct sensors *s; /* the registry k reads sensors.* from */
	struct kpi *k;
	struct note *n;
	char where[96]; /* "step 3 (call @time)", for the notes */
	bool bad;	/* the case file is malformed: stop the case */
};

static void bad(struct ctx *x, const char *what, const char *key)
{
	note_add(x->n, "%s: case file: %s \"%s\"", x->where, what, key);
	x->bad = true;
}

/* A time member, KPI_NONE when absent or null. */
static int64_t get_time(struct ctx *x, const json_t *step, const char *key,
			bool required)
{
	const json_t *v = json_object_get(step, key);
	int64_t us;

	if (!v || json_is_null(v)) {
		if (required)
			bad(x, "missing time", key);
		return KPI_NONE;
	}
	if (!json_is_string(v) ||
	    ev_time_parse(json_string_value(v), json_string_length(v), &us)) {
		bad(x, "bad time in", key);
		return KPI_NONE;
	}
	return us;
}

static const char *get_str(struct ctx *x, const json_t *step, const char *key,
			   bool required)
{
	const json_t *v = json_object_get(step, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (required || (v && !json_is_null(v)))
		bad(x, "missing or bad string", key);
	return NULL;
}

/* The enum value of a status or category name, or -1 when absent. */
static int get_enum(struct ctx *x, const json_t *step, const char *key,
		    enum ev_type type, bool status)
{
	const char *s = get_str(x, step, key, status);
	int n = status ? ev_status_count(type) : ev_category_count(type);

	if (!s)
		return -1;
	for (int i = 0; i < n; i++) {
		const char *name = status ? ev_status_name(type, i)
					  : ev_category_name(type, i);
		if (strcmp(s, name) == 0)
			return i;
	}
	bad(x, "unknown name in", key);
	return -1;
}

static void do_call(struct ctx *x, const json_t *step, int64_t now)
{
	struct kpi_call c = {
	    .call_id = get_str(x, step, "call_id", true),
	    .received_us = get_time(x, step, "received", true),
	    .status = get_enum(x, step, "status", EV_CALL, true),
	    .category = get_enum(x, step, "category", EV_CALL, false),
	    .answered_us = get_time(x, step, "answered", false),
	    .abandoned_us = get_time(x, step, "abandoned", false),
	};

	if (!x->bad && kpi_apply_call(x->k, &c, now) != 0)
		note_add(x->n, "%s: kpi_apply_call failed", x->where);
}

static void do_ticket(struct ctx *x, const json_t *step, int64_t now)
{
	struct kpi_ticket t = {
	    .ticket = get_str(x, step, "ticket", true),
	    .received_us = get_time(x, step, "received", true),
	    .status = get_enum(x, step, "status", EV_REPORT, true),
	    .category = get_enum(x, step, "category", EV_REPORT, false),
	    .district = get_str(x, step, "district", false),
	    .agency = get_str(x, step, "agency", false),
	    .dispatched = json_is_true(json_object_get(step, "dispatched")),
	    .resolved_us = get_time(x, step, "resolved", false),
	};

	if (!x->bad && kpi_apply_ticket(x->k, &t, now) != 0)
		note_add(x->n, "%s: kpi_apply_ticket failed", x->where);
}

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void do_sensor_def(struct ctx *x, const json_t *step, int64_t now)
{
	struct ev_sensor_def d;
	const char *id = get_str(x, step, "sensor_id", true);
	const json_t *th = json_object_get(step, "thresholds");
	const json_t *off = json_object_get(step, "offline_after_s");

	memset(&d, 0, sizeof d);
	copy(d.sensor_id, sizeof d.sensor_id, id);
	copy(d.name, sizeof d.name, get_str(x, step, "name", false));
	if (!d.name[0])
		copy(d.name, sizeof d.name, id);
	copy(d.metric, sizeof d.metric, get_str(x, step, "metric", false));
	if (!d.metric[0])
		copy(d.metric, sizeof d.metric, "water_level");
	copy(d.unit, sizeof d.unit, get_str(x, step, "unit", false));
	if (!d.unit[0])
		copy(d.unit, sizeof d.unit, "cm");
	if (!json_is_array(th) || json_array_size(th) != 3) {
		bad(x, "thresholds must be an array of 3 in", "thresholds");
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		const json_t *v = json_array_get(th, i);

		d.thresholds[i] = json_is_null(v) ? NAN : json_number_value(v);
	}
	d.offline_after_s = off ? (int)json_integer_value(off) : 900;
	if (!x->bad && sensors_define(x->s, &d, now) != 0)
		note_add(x->n, "%s: sensors_define failed", x->where);
}

static void do_reading(struct ctx *x, const json_t *step)
{
	const char *id = get_str(x, step, "sensor_id", true);
	int64_t at = get_time(x, step, "occurred", true);
	const json_t *value = json_object_get(step, "value");
	const json_t *want = json_object_get(step, "expect_latest");
	bool got;

	if (!json_is_number(value))
		bad(x, "missing number", "value");
	if (x->bad)
		return;
	got = sensors_apply_reading(x->s, id, at, json_number_value(value));
	if (want && json_is_true(want) != got)
		note_add(x->n, "%s: sensors_apply_reading: expected %s, got %s",
			 x->where, json_is_true(want) ? "true" : "false",
			 got ? "true" : "false");
}

static void check_count(struct ctx *x, const json_t *step, const char *key,
			const char *what, size_t got)
{
	const json_t *v = json_object_get(step, key);

	if (v && (size_t)json_integer_value(v) != got)
		note_add(x->n, "%s: %s: expected %lld, got %zu", x->where, what,
			 (long long)json_integer_value(v), got);
}

static void check_held(struct ctx *x, const json_t *step)
{
	check_count(x, step, "expect_calls_held", "kpi_calls_held",
		    kpi_calls_held(x->k));
	check_count(x, step, "expect_tickets_held", "kpi_tickets_held",
		    kpi_tickets_held(x->k));
}

static void do_snapshot(struct ctx *x, const json_t *step, int64_t now)
{
	json_t *snap = kpi_snapshot(x->k, now);
	const json_t *expect = json_object_get(step, "expect");
	const char *key;
	json_t *want;
	char prefix[160];

	kt_check_keys(snap, x->where, x->n);
	json_object_foreach ((json_t *)expect, key, want) {
		snprintf(prefix, sizeof prefix, "%s: %s", x->where, key);
		kt_match(want, json_object_get(snap, key), prefix, x->n);
	}
	json_decref(snap);
	check_held(x, step);
}

static void do_prune(struct ctx *x, const json_t *step, int64_t now)
{
	json_t *before = kpi_snapshot(x->k, now);
	json_t *after;
	char prefix[160];

	kpi_prune(x->k, now);
	after = kpi_snapshot(x->k, now);
	snprintf(prefix, sizeof prefix, "%s: snapshot after prune", x->where);
	kt_match(before, after, prefix, x->n);
	json_decref(before);
	json_decref(after);
	check_held(x, step);
}

static void run_case(struct tap *tap, const json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const json_t *steps = json_object_get(c, "steps");
	const json_t *sla = json_object_get(c, "sla_h");
	struct kpi_config cfg = {.tz_offset_s = KT_WIB};
	struct note note = {"", 0, 0};
	struct ctx x = {.n = &note};
	int64_t last = INT64_MIN;
	const char *key;
	json_t *v;

	if (!name)
		name = "(unnamed)";
	for (int i = 0; i < EV_RC_COUNT; i++)
		cfg.sla_us[i] = 72 * KT_HOUR;
	json_object_foreach ((json_t *)sla, key, v) {
		int i = 0;

		while (i < EV_RC_COUNT &&
		       strcmp(ev_category_name(EV_REPORT, i), key) != 0)
			i++;
		if (i == EV_RC_COUNT) {
			snprintf(x.where, sizeof x.where, "sla_h");
			bad(&x, "unknown category", key);
			break;
		}
		cfg.sla_us[i] =
		    (int64_t)(json_number_value(v) * 3600.0) * KT_SEC;
	}
	x.s = sensors_new(KT_WIB);
	cfg.sensors = x.s;
	x.k = x.s ? kpi_new(&cfg) : NULL;
	if (!x.k) {
		note_add(&note, "kpi_new failed");
		x.bad = true;
	}
	for (size_t i = 0; !x.bad && i < json_array_size(steps); i++) {
		const json_t *step = json_array_get(steps, i);
		const char *op = json_string_value(json_object_get(step, "op"));
		char t[40];
		int64_t now;

		snprintf(x.where, sizeof x.where, "step %zu (%s)", i + 1,
			 op ? op : "?");
		now = get_time(&x, step, "at", true);
		if (x.bad)
			break;
		if (now < last) {
			bad(&x, "the clock goes back at", kt_time_str(now, t));
			break;
		}
		last = now;
		snprintf(x.where, sizeof x.where, "step %zu (%s @%s)", i + 1,
			 op ? op : "?", kt_time_str(now, t));
		if (!op)
			bad(&x, "missing", "op");
		else if (strcmp(op, "call") == 0)
			do_call(&x, step, now);
		else if (strcmp(op, "ticket") == 0)
			do_ticket(&x, step, now);
		else if (strcmp(op, "sensor_def") == 0)
			do_sensor_def(&x, step, now);
		else if (strcmp(op, "reading") == 0)
			do_reading(&x, step);
		else if (strcmp(op, "advance") == 0)
			kpi_advance(x.k, now);
		else if (strcmp(op, "snapshot") == 0)
			do_snapshot(&x, step, now);
		else if (strcmp(op, "prune") == 0)
			do_prune(&x, step, now);
		else
			bad(&x, "unknown op", op);
	}
	kpi_free(x.k);
	sensors_free(x.s);
	tap_case(tap, name, &note);
}

int main(int argc, char **argv)
{
	json_t *root, *cases;
	struct tap tap = {0, 0};

	if (argc != 2) {
		fprintf(stderr, "usage: %s cases.json\n", argv[0]);
		return 2;
	}
	if (!(cases = tap_load_cases(argv[1], 0, &root)))
		return 1;
	for (size_t i = 0; i < json_array_size(cases); i++)
		run_case(&tap, json_array_get(cases, i));
	json_decref(root);
	return tap_done(&tap);
}
