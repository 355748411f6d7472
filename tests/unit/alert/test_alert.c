/*
 * tests/unit/alert/test_alert.c - table-driven unit test of the alert rules
 * (server/alert.h): gauge readings in, alerts raised, escalated, cleared,
 * acknowledged and shown out.  The scenarios are in cases.json, beside this
 * file, worked out from docs/kpis.md and docs/api.md; TAP.
 *
 *   test_alert tests/unit/alert/cases.json
 *
 * The test plays the server's part around the module: sensors are
 * registered from the body of their PUT (ev_parse_sensor_def) in the sensor
 * registry (sensors.h), readings go there too, and after each step every
 * sensor's view is checked (alerts_check), as the server's tick does, and
 * what needs storing is stored, with ids handed out here.  What changed is read
 * from the change callback, by comparing each alert as the API shows it
 * (alert_json) with how it looked before; what is on the wall is
 * alerts_active_json.
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "event.h"
#include "kpi.h"
#include "sensors.h"
#include "tap.h"

#define SEC INT64_C(1000000)
#define WIB 25200
/* t = 0 of every scenario. */
#define T0_TEXT "2026-11-23T08:00:00+07:00"

struct harness {
	struct sensors *reg;
	struct alerts *as;
	int64_t t0, now;
	json_t *seen;	 /* id -> the alert's JSON as last seen */
	json_t *changes; /* what the callback saw during this step */
	bool storing;	 /* the callback while storing is not a change */
	int64_t last_id;
	struct note *n;
};

static int64_t us_of(const json_t *seconds)
{
	return (int64_t)llround(json_number_value(seconds) * 1e6);
}

static const char *time_str(int64_t us, char buf[40])
{
	ev_time_format(us, WIB, buf);
	return buf;
}

/* A level's place on the ladder, from its name; -1 for none (offline). */
static int rank(const char *level)
{
	static const char *const ladder[] = {"normal", "waspada", "siaga",
					     "awas"};

	for (int i = 0; level && i < 4; i++)
		if (strcmp(level, ladder[i]) == 0)
			return i;
	return -1;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Two members equal, null included. */
static bool same(const json_t *a, const json_t *b, const char *key)
{
	return json_equal(json_object_get(a, key), json_object_get(b, key));
}

/*
 * A time a change must carry: the step's clock, exactly in the struct and
 * to the millisecond in the JSON.
 */
static void check_now(struct harness *h, const char *change, const char *what,
		      int64_t us, const json_t *j)
{
	const char *text = str(j, what);
	char want[40];

	time_str(h->now, want);
	if (us != h->now || !text || strcmp(text, want) != 0)
		note_add(h->n, "%s: %s t %.6f (%s), want t %.6f (%s)", change,
			 what, (double)(us - h->t0) / 1e6, text ? text : "null",
			 (double)(h->now - h->t0) / 1e6, want);
}

/*
 * The change callback: names the change by comparing the alert with how it
 * looked before ("G: escalate level awas"), and checks the times a raise or
 * a clear must carry.
 */
static void on_change(void *arg, struct alert *a)
{
	struct harness *h = arg;
	json_t *j, *prev;
	char name[160], key[32];
	const char *sev, *kind, *sensor;

	if (h->storing)
		return;
	j = alert_json(h->as, a);
	sev = str(j, "severity");
	kind = str(j, "kind");
	sensor = str(j, "sensor_id");
	snprintf(key, sizeof(key), "%lld", (long long)a->id);
	prev = a->id ? json_object_get(h->seen, key) : NULL;
	if (a->id == 0) {
		snprintf(name, sizeof(name), "%s: raise %s%s%s", sensor, kind,
			 sev ? " " : "", sev ? sev : "");
		check_now(h, name, "raised_at", a->raised_us, j);
	} else if (!prev) {
		snprintf(name, sizeof(name), "%s: change of unknown alert %s",
			 sensor, key);
	} else if (json_is_true(json_object_get(prev, "active")) &&
		   !json_is_true(json_object_get(j, "active"))) {
		snprintf(name, sizeof(name), "%s: clear %s", sensor, kind);
		check_now(h, name, "cleared_at", a->cleared_us, j);
	} else if (rank(sev) > rank(str(prev, "severity")) ||
		   (!json_is_null(json_object_get(prev, "acked_at")) &&
		    json_is_null(json_object_get(j, "acked_at")))) {
		/* Severity up, or the acknowledgement reset by a new rise. */
		snprintf(name, sizeof(name), "%s: escalate %s %s", sensor, kind,
			 sev ? sev : "null");
	} else if (rank(sev) < rank(str(prev, "severity"))) {
		snprintf(name, sizeof(name), "%s: de-escalate %s %s", sensor,
			 kind, sev ? sev : "null");
	} else if (!json_is_null(json_object_get(j, "acked_at")) &&
		   (!same(prev, j, "acked_at") || !same(prev, j, "acked_by") ||
		    !same(prev, j, "note"))) {
		snprintf(name, sizeof(name), "%s: ack %s", sensor, kind);
		check_now(h, name, "acked_at", a->acked_us, j);
	} else {
		snprintf(name, sizeof(name), "%s: %s changed, nothing to see",
			 sensor, kind);
	}
	json_array_append_new(h->changes, json_string(name));
	if (a->id)
		json_object_set(h->seen, key, j);
	json_decref(j);
}

/* Stores what needs storing, as the server does after each check; a
 * failed store is retried at the next step. */
static void store(struct harness *h, bool ok)
{
	struct alert *a;

	h->storing = true;
	while ((a = alerts_next_unsaved(h->as))) {
		alert_save_begin(a);
		if (!ok) {
			alerts_save_done(h->as, a, false, 0);
			break;
		}
		alerts_save_done(h->as, a, true, a->id ? 0 : ++h->last_id);
	}
	h->storing = false;
}

/* Remembers how every active alert looks now, for the next changes. */
static void remember(struct harness *h)
{
	json_t *list = alerts_active_json(h->as), *j;
	char key[32];
	size_t i;

	json_array_foreach (list, i, j) {
		snprintf(
		    key, sizeof(key), "%lld",
		    (long long)json_integer_value(json_object_get(j, "id")));
		json_object_set(h->seen, key, j);
	}
	json_decref(list);
}

/* Registers or redefines a sensor from the body of its PUT, with name,
 * metric and unit filled in when the case leaves them out. */
static int define(struct harness *h, const char *id, const json_t *body)
{
	json_t *b = json_deep_copy(body);
	struct ev_sensor_def def;
	struct ev_error err;
	char *text;
	int rc;

	if (!json_object_get(b, "name"))
		json_object_set_new(b, "name", json_string(id));
	if (!json_object_get(b, "metric"))
		json_object_set_new(b, "metric", json_string("water_level"));
	if (!json_object_get(b, "unit"))
		json_object_set_new(b, "unit", json_string("cm"));
	text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	if (!text)
		return -1;
	rc = ev_parse_sensor_def(id, text, strlen(text), &def, &err);
	free(text);
	if (rc < 0) {
		note_add(h->n, "sensor %s refused: %s", id, err.detail);
		return -1;
	}
	if (sensors_define(h->reg, &def, h->t0) < 0) {
		note_add(h->n, "sensor %s: out of memory", id);
		return -1;
	}
	return 0;
}

static int load(struct harness *h, const json_t *l)
{
	struct alert a = {0};
	const char *kind = str(l, "kind"), *by = str(l, "acked_by");

	a.id = json_integer_value(json_object_get(l, "id"));
	if (!kind || a.id <= 0 || !str(l, "sensor")) {
		note_add(h->n, "a loaded alert needs sensor, kind and id");
		return -1;
	}
	a.kind = alert_kind_parse(kind);
	/* An offline alert has no level; the field is unused then. */
	a.severity = rank(str(l, "severity")) > 0
			 ? (enum kpi_level)rank(str(l, "severity"))
			 : KPI_NORMAL;
	snprintf(a.sensor_id, sizeof(a.sensor_id), "%s", str(l, "sensor"));
	a.raised_us = h->t0 + us_of(json_object_get(l, "raised"));
	a.cleared_us = KPI_NONE;
	a.acked_us = by ? a.raised_us + SEC : KPI_NONE;
	snprintf(a.acked_by, sizeof(a.acked_by), "%s", by ? by : "");
	if (a.id > h->last_id)
		h->last_id = a.id;
	return alerts_load(h->as, &a);
}

/* The sensor a step names, or the case's only one. */
static const char *step_sensor(const json_t *c, const json_t *step)
{
	const json_t *sensors = json_object_get(c, "sensors");

	if (str(step, "sensor"))
		return str(step, "sensor");
	if (json_object_size(sensors) == 1)
		return json_object_iter_key(
		    json_object_iter((json_t *)sensors));
	return NULL;
}

static void ack(struct harness *h, const json_t *step, const char *sensor)
{
	json_t *list = alerts_active_json(h->as), *j;
	struct alert *a = NULL;
	size_t i;

	json_array_foreach (list, i, j) {
		if (strcmp(str(j, "sensor_id"), sensor) == 0 &&
		    strcmp(str(j, "kind"), str(step, "ack")) == 0)
			a = alerts_find(h->as, json_integer_value(
						   json_object_get(j, "id")));
	}
	json_decref(list);
	if (!a)
		note_add(h->n, "no active %s alert of %s to acknowledge",
			 str(step, "ack"), sensor);
	else
		alerts_ack(h->as, a, str(step, "by") ? str(step, "by") : "",
			   str(step, "note"), h->now);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The changes of a step against those expected, in any order. */
static void check_changes(struct harness *h, const json_t *want,
			  const char *label)
{
	const char *w[16], *g[16];
	size_t nw = json_array_size(want), ng = json_array_size(h->changes);
	bool equal = nw == ng;

	if (nw > 16 || ng > 16) {
		note_add(h->n, "%s: more than 16 changes", label);
		return;
	}
	for (size_t i = 0; i < nw; i++)
		if (!(w[i] = json_string_value(json_array_get(want, i)))) {
			note_add(h->n, "%s: a change that is not a string",
				 label);
			return;
		}
	for (size_t i = 0; i < ng; i++)
		g[i] = json_string_value(json_array_get(h->changes, i));
	qsort(w, nw, sizeof(w[0]), cmp_str);
	qsort(g, ng, sizeof(g[0]), cmp_str);
	for (size_t i = 0; equal && i < nw; i++)
		equal = strcmp(w[i], g[i]) == 0;
	if (!equal) {
		char *ws = json_dumps(want, JSON_COMPACT);
		char *gs = json_dumps(h->changes, JSON_COMPACT);

		note_add(h->n, "%s: changes %s, want %s", label, gs, ws);
		free(ws);
		free(gs);
	}
}

/* Whether an alert on the wall is the one a case describes. */
static bool matches(struct harness *h, const json_t *want, const json_t *got)
{
	int64_t raised = h->t0 + us_of(json_object_get(want, "raised"));
	struct alert *a =
	    alerts_find(h->as, json_integer_value(json_object_get(got, "id")));
	char at[40];

	if ((json_object_get(want, "message") && !same(want, got, "message")) ||
	    (json_object_get(want, "note") && !same(want, got, "note")))
		return false;
	return a && a->raised_us == raised &&
	       strcmp(str(got, "raised_at") ? str(got, "raised_at") : "",
		      time_str(raised, at)) == 0 &&
	       json_equal(json_object_get(want, "sensor"),
			  json_object_get(got, "sensor_id")) &&
	       same(want, got, "kind") && same(want, got, "severity") &&
	       same(want, got, "acked_by");
}

/*
 * alerts.active against the list expected, in any order; then its own order
 * (newest raised_at first, then greater id first) and what every entry on
 * it must be: stored, active, not cleared.
 */
static void check_active(struct harness *h, const json_t *want,
			 const char *label)
{
	json_t *got = alerts_active_json(h->as), *g, *w;
	bool used[64] = {false};
	size_t i, k;
	struct alert *prev = NULL;

	json_array_foreach (want, i, w) {
		for (k = 0; k < json_array_size(got) && k < 64; k++)
			if (!used[k] && matches(h, w, json_array_get(got, k)))
				break;
		if (k < json_array_size(got) && k < 64) {
			used[k] = true;
		} else {
			char *s = json_dumps(w, JSON_COMPACT);
			note_add(h->n, "%s: not on the wall: %s", label, s);
			free(s);
		}
	}
	json_array_foreach (got, k, g) {
		struct alert *a = alerts_find(
		    h->as, json_integer_value(json_object_get(g, "id")));

		if (k >= 64 || !used[k]) {
			char *s = json_dumps(g, JSON_COMPACT);
			note_add(h->n, "%s: on the wall, not expected: %s",
				 label, s);
			free(s);
		}
		if (!a || !json_is_true(json_object_get(g, "active")) ||
		    !json_is_null(json_object_get(g, "cleared_at")))
			note_add(h->n, "%s: alert %lld not active and stored",
				 label,
				 (long long)json_integer_value(
				     json_object_get(g, "id")));
		else if (prev && (prev->raised_us < a->raised_us ||
				  (prev->raised_us == a->raised_us &&
				   prev->id < a->id)))
			note_add(h->n, "%s: alert %lld listed before %lld",
				 label, (long long)prev->id, (long long)a->id);
		prev = a;
	}
	json_decref(got);
}

static bool known_keys(const json_t *o, const char *const keys[],
		       const char *what, struct note *n)
{
	const char *key;
	const json_t *v;
	bool ok = true;

	json_object_foreach ((json_t *)o, key, v) {
		size_t i = 0;

		while (keys[i] && strcmp(keys[i], key) != 0)
			i++;
		if (!keys[i]) {
			note_add(n, "%s: unknown member \"%s\"", what, key);
			ok = false;
		}
	}
	return ok;
}

/*
 * One step of a case: its one action at its time, then the rules over every
 * sensor and the store, as the server's tick runs them; then what changed
 * and what is on the wall against what the step expects.
 */
static void step(struct harness *h, const json_t *c, const json_t *s,
		 size_t index)
{
	static const char *const keys[] = {
	    "t",  "reading", "sensor", "at",	  "define", "ack",
	    "by", "note",    "store",  "changes", "active", NULL};
	const char *sensor = step_sensor(c, s);
	const json_t *reading = json_object_get(s, "reading");
	const json_t *redefine = json_object_get(s, "define");
	const char *ack_kind = str(s, "ack");
	const json_t *want_changes = json_object_get(s, "changes");
	const json_t *want_active = json_object_get(s, "active");
	int actions =
	    (reading != NULL) + (redefine != NULL) + (ack_kind != NULL);
	json_t *none = json_array();
	char label[80];

	snprintf(label, sizeof(label), "step %zu (t %g)", index + 1,
		 json_number_value(json_object_get(s, "t")));
	if (!known_keys(s, keys, label, h->n))
		goto done;
	if (!json_is_number(json_object_get(s, "t")) || actions > 1 ||
	    (reading && !json_is_number(reading))) {
		note_add(h->n, "%s: needs t, and one thing at most to do",
			 label);
		goto done;
	}
	if (actions && !sensor) {
		note_add(h->n, "%s: which sensor? there are several", label);
		goto done;
	}
	h->now = h->t0 + us_of(json_object_get(s, "t"));
	json_array_clear(h->changes);
	if (reading) {
		const json_t *at = json_object_get(s, "at");

		(void)sensors_apply_reading(h->reg, sensor,
					    at ? h->t0 + us_of(at) : h->now,
					    json_number_value(reading));
	} else if (redefine && define(h, sensor, redefine) < 0) {
		goto done;
	} else if (ack_kind) {
		ack(h, s, sensor);
	}
	for (int i = 0; i < sensors_count(h->reg); i++) {
		struct sensor_view v;

		sensors_view(h->reg, i, h->now, &v);
		alerts_check(h->as, &v, h->now);
	}
	store(h, !json_is_false(json_object_get(s, "store")));
	check_changes(h, want_changes ? want_changes : none, label);
	if (want_active)
		check_active(h, want_active, label);
	remember(h);
done:
	json_decref(none);
}

static void run_case(const json_t *c, int64_t t0, struct note *n)
{
	static const char *const keys[] = {"name",   "bug",   "sensors",
					   "loaded", "steps", NULL};
	struct harness h = {.t0 = t0, .n = n};
	const json_t *sensors = json_object_get(c, "sensors");
	const json_t *steps = json_object_get(c, "steps"), *v;
	const char *id;
	size_t i;

	if (!known_keys(c, keys, "case", n))
		return;
	if (json_object_size(sensors) == 0 || json_array_size(steps) == 0) {
		note_add(n, "a case needs sensors and steps");
		return;
	}
	h.reg = sensors_new(WIB);
	h.as = alerts_new(WIB, on_change, &h);
	h.seen = json_object();
	h.changes = json_array();
	if (!h.reg || !h.as) {
		note_add(n, "out of memory");
		goto done;
	}
	json_object_foreach ((json_t *)sensors, id, v) {
		if (define(&h, id, v) < 0)
			goto done;
	}
	json_array_foreach (json_object_get(c, "loaded"), i, v) {
		if (load(&h, v) < 0)
			goto done;
	}
	remember(&h);
	json_array_foreach (steps, i, v) {
		step(&h, c, v, i);
	}
done:
	json_decref(h.seen);
	json_decref(h.changes);
	alerts_free(h.as);
	sensors_free(h.reg);
}

int main(int argc, char **argv)
{
	struct tap t = {0};
	json_t *root, *cases, *c;
	int64_t t0;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: test_alert CASES.json\n");
		return 2;
	}
	if (ev_time_parse(T0_TEXT, strlen(T0_TEXT), &t0) < 0) {
		printf("Bail out! %s is not a time\n", T0_TEXT);
		return 1;
	}
	if (!(cases = tap_load_cases(argv[1], 0, &root)))
		return 1;
	json_array_foreach (cases, i, c) {
		const char *name = str(c, "name"), *bug = str(c, "bug");
		struct note n = {0};

		run_case(c, t0, &n);
		if (bug)
			tap_todo(&t, name ? name : "?", &n, bug);
		else
			tap_case(&t, name ? name : "?", &n);
	}
	json_decref(root);
	return tap_done(&t);
}
