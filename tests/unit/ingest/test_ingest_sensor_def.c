/*
 * tests/unit/ingest/test_ingest_sensor_def.c - ev_parse_sensor_def() against a
 * case file.
 *
 * Usage: test_ingest_sensor_def tests/data/ingest/sensors.json
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static void check_str(struct note *n, const json_t *want, const char *key,
		      const char *got)
{
	const json_t *v = json_object_get(want, key);

	if (v && strcmp(json_string_value(v), got) != 0)
		note_add(n, "%s: expected \"%s\", got \"%s\"", key,
			 json_string_value(v), got);
}

static void check_def(struct note *n, const json_t *want,
		      const struct ev_sensor_def *d)
{
	const json_t *v;

	check_str(n, want, "sensor_id", d->sensor_id);
	check_str(n, want, "name", d->name);
	check_str(n, want, "metric", d->metric);
	check_str(n, want, "unit", d->unit);
	check_str(n, want, "district", d->district);
	if ((v = json_object_get(want, "location"))) {
		if (json_is_null(v)
			? d->has_location
			: !d->has_location ||
			      d->lat !=
				  json_number_value(json_array_get(v, 0)) ||
			      d->lon != json_number_value(json_array_get(v, 1)))
			note_add(n, "location: got %s %.17g %.17g",
				 d->has_location ? "present" : "absent", d->lat,
				 d->lon);
	}
	if ((v = json_object_get(want, "thresholds"))) {
		for (size_t i = 0; i < 3; i++) {
			const json_t *w = json_array_get(v, i);
			bool good = json_is_null(w) ? isnan(d->thresholds[i])
						    : d->thresholds[i] ==
							  json_number_value(w);

			if (!good)
				note_add(n, "thresholds[%zu]: got %.17g", i,
					 d->thresholds[i]);
		}
	}
	if ((v = json_object_get(want, "offline_after_s")) &&
	    json_integer_value(v) != d->offline_after_s)
		note_add(n, "offline_after_s: expected %lld, got %d",
			 (long long)json_integer_value(v), d->offline_after_s);
}

static void run_case(struct tap *t, const json_t *c, const json_t *file)
{
	const char *name = tl_str(c, "name", "(unnamed)");
	const json_t *id = json_object_get(c, "sensor_id");
	struct note n = {"", 0};
	struct ev_sensor_def def;
	struct ev_error err;
	size_t len;
	char *body, *exact;
	int rc;

	body = tl_body(c, json_object_get(file, "bases"), false, &len, &n);
	if (body) {
		/* Alone in its buffer, so that a read past it is caught. */
		exact = malloc(len ? len : 1);
		memcpy(exact, body, len);
		rc = ev_parse_sensor_def(json_string_value(id), exact, len,
					 &def, &err);
		tl_expect(c, rc, &err, &n);
		if (rc == 0)
			check_def(&n, json_object_get(c, "expect_def"), &def);
		free(exact);
		free(body);
	}
	tap_case(t, name, &n);
}

int main(int argc, char **argv)
{
	struct tap t = {0, 0};
	json_t *file, *cases;

	if (argc != 2) {
		fprintf(stderr, "usage: %s sensors.json\n", argv[0]);
		return 2;
	}
	file = tl_load(argv[1]);
	cases = json_object_get(file, "cases");
	for (size_t i = 0; i < json_array_size(cases); i++)
		run_case(&t, json_array_get(cases, i), file);
	json_decref(file);
	return tap_done(&t);
}
