/*
 * tests/unit/ingest/test_ingest_events.c - ev_parse_batch() against a case
 * file.
 *
 * Usage: test_ingest_events tests/data/ingest/events.json
 *
 * The case file holds the clock, the limits, the base events, the cases and
 * the names of the wire; the cases whose bodies are too big or too odd to
 * write by hand (a thousand events, a hundred thousand brackets) are made
 * here, with their expectations written out next to them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static bool same_str(const json_t *want, const char *got)
{
	if (json_is_null(want))
		return got == NULL;
	return got && json_is_string(want) &&
	       strlen(got) == json_string_length(want) &&
	       memcmp(got, json_string_value(want), strlen(got)) == 0;
}

static void check_event(const json_t *want, const struct ev_event *ev, size_t i,
			struct note *n)
{
	const json_t *v;

	if ((v = json_object_get(want, "id")) && !same_str(v, ev->id))
		note_add(n, "event %zu: id: expected %s, got %s", i,
			 json_string_value(v), ev->id);
	if ((v = json_object_get(want, "type")) &&
	    !same_str(v, ev_type_name(ev->type)))
		note_add(n, "event %zu: type: expected %s, got %d", i,
			 json_string_value(v), ev->type);
	if ((v = json_object_get(want, "occurred_us")) &&
	    json_integer_value(v) != ev->occurred_us)
		note_add(n, "event %zu: occurred_us: expected %lld, got %lld",
			 i, (long long)json_integer_value(v),
			 (long long)ev->occurred_us);
	if ((v = json_object_get(want, "district")) &&
	    !same_str(v, ev->district))
		note_add(n, "event %zu: district: expected %s, got %s", i,
			 json_is_null(v) ? "null" : json_string_value(v),
			 ev->district ? ev->district : "NULL");
	if ((v = json_object_get(want, "location"))) {
		if (json_is_null(v)
			? ev->has_location
			: !ev->has_location ||
			      ev->lat !=
				  json_number_value(json_array_get(v, 0)) ||
			      ev->lon !=
				  json_number_value(json_array_get(v, 1)))
			note_add(n, "event %zu: location: got %s %.17g %.17g",
				 i, ev->has_location ? "present" : "absent",
				 ev->lat, ev->lon);
	}
	if ((v = json_object_get(want, "subject")) && !same_str(v, ev->subject))
		note_add(n, "event %zu: subject: expected %s, got %s", i,
			 json_string_value(v), ev->subject);
	if ((v = json_object_get(want, "status"))) {
		if (json_is_null(v)
			? ev->status != 0
			: !same_str(v, ev_status_name(ev->type, ev->status)))
			note_add(n, "event %zu: status: expected %s, got %d", i,
				 json_is_null(v) ? "0" : json_string_value(v),
				 ev->status);
	}
	if ((v = json_object_get(want, "category"))) {
		if (json_is_null(v) ? ev->category != -1
				    : !same_str(v, ev_category_name(
						       ev->type, ev->category)))
			note_add(n, "event %zu: category: expected %s, got %d",
				 i,
				 json_is_null(v) ? "-1" : json_string_value(v),
				 ev->category);
	}
	if ((v = json_object_get(want, "agency")) && !same_str(v, ev->agency))
		note_add(n, "event %zu: agency: got %s", i,
			 ev->agency ? ev->agency : "NULL");
	if ((v = json_object_get(want, "title")) && !same_str(v, ev->title))
		note_add(n, "event %zu: title: got %s", i,
			 ev->title ? ev->title : "NULL");
	if ((v = json_object_get(want, "value")) &&
	    json_number_value(v) != ev->value)
		note_add(n, "event %zu: value: expected %.17g, got %.17g", i,
			 json_number_value(v), ev->value);
}

static void check_batch(const json_t *c, const struct ev_batch *b,
			struct note *n)
{
	const json_t *want = json_object_get(c, "expect_events");
	const json_t *want_n = json_object_get(c, "expect_n");

	if (want_n && (size_t)json_integer_value(want_n) != b->n)
		note_add(n, "expected %lld events, got %zu",
			 (long long)json_integer_value(want_n), b->n);
	if (!want)
		return;
	if (json_array_size(want) != b->n) {
		note_add(n, "expected %zu events, got %zu",
			 json_array_size(want), b->n);
		return;
	}
	for (size_t i = 0; i < b->n; i++)
		check_event(json_array_get(want, i), &b->events[i], i, n);
}

static void read_limits(const json_t *j, struct ev_limits *lim)
{
	const json_t *v;

	if ((v = json_object_get(j, "max_events")))
		lim->max_events = (size_t)json_integer_value(v);
	if ((v = json_object_get(j, "max_depth")))
		lim->max_depth = (int)json_integer_value(v);
}

/*
 * Parses a body that sits alone in a buffer of exactly its size, so that the
 * sanitizers catch a read past its end.
 */
static int parse(const char *body, size_t len, enum ev_format fmt, int64_t now,
		 const struct ev_limits *lim, struct ev_batch *b,
		 struct ev_error *err)
{
	char *exact = malloc(len ? len : 1);
	int rc;

	memcpy(exact, body, len);
	rc = ev_parse_batch(exact, len, fmt, now, lim, b, err);
	free(exact);
	return rc;
}

static void run_case(struct tap *t, const json_t *c, const json_t *file)
{
	const char *name = tl_str(c, "name", "(unnamed)");
	bool ndjson = strcmp(tl_str(c, "format", "json"), "ndjson") == 0;
	int64_t now = json_integer_value(json_object_get(file, "now_us"));
	struct ev_limits lim = {0, 0};
	struct note n = {"", 0};
	struct ev_batch b;
	struct ev_error err;
	size_t len;
	char *body;
	int rc;

	read_limits(json_object_get(file, "limits"), &lim);
	read_limits(json_object_get(c, "limits"), &lim);
	if (json_object_get(c, "now_us"))
		now = json_integer_value(json_object_get(c, "now_us"));

	body = tl_body(c, json_object_get(file, "bases"), ndjson, &len, &n);
	if (body) {
		rc =
		    parse(body, len, ndjson ? EV_FORMAT_NDJSON : EV_FORMAT_JSON,
			  now, &lim, &b, &err);
		tl_expect(c, rc, &err, &n);
		if (rc == 0)
			check_batch(c, &b, &n);
		else if (b.events || b.n || b.mem)
			note_add(&n, "the batch is not empty after an error");
		ev_batch_free(&b);
		free(body);
	}
	tap_case(t, name, &n);
}

static void check_names(struct tap *t, const json_t *names)
{
	const json_t *types = json_object_get(names, "types");
	struct note n = {"", 0};

	if (json_array_size(types) != EV_TYPE_COUNT)
		note_add(&n, "case file: names.types has %zu names",
			 json_array_size(types));
	for (int ti = 0; ti < EV_TYPE_COUNT; ti++) {
		enum ev_type ty = (enum ev_type)ti;
		const char *tn = json_string_value(json_array_get(types, ti));
		const json_t *tab = json_object_get(names, tn ? tn : "");
		const json_t *st = json_object_get(tab, "statuses");
		const json_t *ca = json_object_get(tab, "categories");

		if (!same_str(json_array_get(types, ti), ev_type_name(ty)))
			note_add(&n, "ev_type_name(%d): expected %s", ti, tn);
		if ((size_t)ev_status_count(ty) != json_array_size(st))
			note_add(&n,
				 "ev_status_count(%s): expected %zu, got %d",
				 tn, json_array_size(st), ev_status_count(ty));
		if ((size_t)ev_category_count(ty) != json_array_size(ca))
			note_add(
			    &n, "ev_category_count(%s): expected %zu, got %d",
			    tn, json_array_size(ca), ev_category_count(ty));
		for (int i = 0; i < (int)json_array_size(st); i++)
			if (!same_str(json_array_get(st, i),
				      ev_status_name(ty, i)))
				note_add(&n, "ev_status_name(%s, %d): got %s",
					 tn, i, ev_status_name(ty, i));
		for (int i = 0; i < (int)json_array_size(ca); i++)
			if (!same_str(json_array_get(ca, i),
				      ev_category_name(ty, i)))
				note_add(&n, "ev_category_name(%s, %d): got %s",
					 tn, i, ev_category_name(ty, i));
		if (ev_status_name(ty, -1) ||
		    ev_status_name(ty, (int)json_array_size(st)) ||
		    ev_category_name(ty, -1) ||
		    ev_category_name(ty, (int)json_array_size(ca)))
			note_add(&n, "%s: a name out of range is not NULL", tn);
	}
	if (ev_type_name(EV_TYPE_COUNT) || ev_type_name((enum ev_type) - 1))
		note_add(&n, "ev_type_name out of range is not NULL");
	if (ev_status_name(EV_TYPE_COUNT, 0) || ev_status_count(EV_TYPE_COUNT))
		note_add(&n, "ev_status_* of a bad type is not NULL/0");
	tap_case(t, "names of types, statuses and categories", &n);
}

/* n copies of a small call event, as an array or as lines. */
static char *many_events(size_t count, bool ndjson, size_t blank_every,
			 size_t *len)
{
	size_t cap = count * 200 + 16, l = 0;
	char *s = malloc(cap);

	if (!ndjson)
		s[l++] = '[';
	for (size_t i = 0; i < count; i++) {
		if (!ndjson && i)
			s[l++] = ',';
		l += (size_t)snprintf(
		    s + l, cap - l,
		    "{\"id\":\"gen-%zu\",\"type\":\"call\",\"occurred_at\":"
		    "\"2026-11-23T07:00:00+07:00\",\"call\":{\"call_id\":"
		    "\"C%zu\",\"status\":\"answered\"}}",
		    i, i);
		if (ndjson) {
			s[l++] = '\n';
			if (blank_every && i % blank_every == 0) {
				memcpy(s + l, " \r\n\n", 4);
				l += 4;
			}
		}
	}
	if (!ndjson)
		s[l++] = ']';
	*len = l;
	return s;
}

/* Checks an outcome against a status and, for a success, a count. */
static void expect(struct note *n, int rc, const struct ev_error *err,
		   const struct ev_batch *b, int status, const char *code,
		   long index, size_t count)
{
	if (status == 0) {
		if (rc != 0)
			note_add(n, "expected success, got %d %s: %s",
				 err->status, err->code, err->detail);
		else if (b->n != count)
			note_add(n, "expected %zu events, got %zu", count,
				 b->n);
		return;
	}
	if (rc >= 0) {
		note_add(n, "expected %d %s, got success", status, code);
		return;
	}
	if (err->status != status || strcmp(err->code, code) ||
	    err->index != index)
		note_add(n, "expected %d %s index %ld, got %d %s index %ld: %s",
			 status, code, index, err->status, err->code,
			 err->index, err->detail);
	if (!tl_clean_text(err->detail) || strlen(err->detail) > 255)
		note_add(n, "detail is not clean text");
}

static void run_generated(struct tap *t, int64_t now)
{
	const struct ev_limits lim = {1000, 8};
	struct ev_batch b;
	struct ev_error err;
	size_t len;
	char *s;
	int rc;

	static const struct {
		const char *name;
		size_t count;
		bool ndjson;
		size_t blank_every;
		int status;
	} sizes[] = {
	    {"1000 events in an array: ok", 1000, false, 0, 0},
	    {"1001 events in an array: 413", 1001, false, 0, 413},
	    {"1000 NDJSON lines: ok", 1000, true, 0, 0},
	    {"1001 NDJSON lines: 413", 1001, true, 0, 413},
	    {"1000 NDJSON lines and 334 blank ones: ok", 1000, true, 3, 0},
	    {"1001 NDJSON lines and blank ones: 413", 1001, true, 3, 413},
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct note n = {"", 0};

		s = many_events(sizes[i].count, sizes[i].ndjson,
				sizes[i].blank_every, &len);
		rc = parse(s, len,
			   sizes[i].ndjson ? EV_FORMAT_NDJSON : EV_FORMAT_JSON,
			   now, &lim, &b, &err);
		expect(&n, rc, &err, &b, sizes[i].status,
		       sizes[i].status ? "too_large" : "", -1, sizes[i].count);
		if (rc == 0 && b.n == 1000 &&
		    (strcmp(b.events[999].id, "gen-999") ||
		     strcmp(b.events[999].subject, "C999") ||
		     b.events[999].status != EV_CALL_ANSWERED))
			note_add(&n, "event 999 is not the 1000th line");
		ev_batch_free(&b);
		free(s);
		tap_case(t, sizes[i].name, &n);
	}

	/* No limits: the contract's 1000 events. */
	{
		struct note n = {"", 0};

		s = many_events(1001, false, 0, &len);
		rc = parse(s, len, EV_FORMAT_JSON, now, NULL, &b, &err);
		expect(&n, rc, &err, &b, 413, "too_large", -1, 0);
		ev_batch_free(&b);
		free(s);
		s = many_events(1000, true, 0, &len);
		rc = parse(s, len, EV_FORMAT_NDJSON, now, NULL, &b, &err);
		expect(&n, rc, &err, &b, 0, "", -1, 1000);
		ev_batch_free(&b);
		free(s);
		tap_case(t, "no limits given: 1000 events at most", &n);
	}

	/* Nesting far beyond any limit must not crash or take long. */
	static const struct {
		const char *name, *open;
		bool ndjson;
		int max_depth;
	} deep[] = {
	    {"100000 '[' in a JSON body: 400", "[", false, 8},
	    {"100000 '{\"a\":' in a JSON body: 400", "{\"a\":", false, 8},
	    {"100000 '[' on an NDJSON line: 400", "[", true, 8},
	    {"100000 '[' and no depth limit: 400 from jansson", "[", false, 0},
	};
	for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
		struct note n = {"", 0};
		const struct ev_limits dl = {1000, deep[i].max_depth};
		size_t ol = strlen(deep[i].open), count = 100000;

		len = ol * count;
		s = malloc(len);
		for (size_t k = 0; k < count; k++)
			memcpy(s + k * ol, deep[i].open, ol);
		rc = parse(s, len,
			   deep[i].ndjson ? EV_FORMAT_NDJSON : EV_FORMAT_JSON,
			   now, &dl, &b, &err);
		expect(&n, rc, &err, &b, 400, "bad_json", -1, 0);
		if (rc < 0 && err.line != 1)
			note_add(&n, "expected line 1, got %ld", err.line);
		ev_batch_free(&b);
		free(s);
		tap_case(t, deep[i].name, &n);
	}

	/* The future check must not overflow at the ends of the clock. */
	{
		struct note n = {"", 0};

		s = many_events(1, false, 0, &len);
		rc = parse(s, len, EV_FORMAT_JSON, INT64_MAX, &lim, &b, &err);
		expect(&n, rc, &err, &b, 0, "", -1, 1);
		ev_batch_free(&b);
		rc = parse(s, len, EV_FORMAT_JSON, INT64_MAX - 1000, &lim, &b,
			   &err);
		expect(&n, rc, &err, &b, 0, "", -1, 1);
		ev_batch_free(&b);
		rc = parse(s, len, EV_FORMAT_JSON, INT64_MIN, &lim, &b, &err);
		expect(&n, rc, &err, &b, 422, "invalid_event", 0, 0);
		if (rc < 0 && strcmp(err.field, "occurred_at"))
			note_add(&n, "expected field occurred_at, got %s",
				 err.field);
		ev_batch_free(&b);
		free(s);
		tap_case(t, "a clock at INT64_MAX or INT64_MIN", &n);
	}

	/* A NULL body is an empty one. */
	{
		struct note n = {"", 0};

		rc = ev_parse_batch(NULL, 0, EV_FORMAT_JSON, now, &lim, &b,
				    &err);
		expect(&n, rc, &err, &b, 400, "bad_json", -1, 0);
		rc = ev_parse_batch(NULL, 0, EV_FORMAT_NDJSON, now, &lim, &b,
				    &err);
		expect(&n, rc, &err, &b, 422, "invalid_event", -1, 0);
		tap_case(t, "a NULL body", &n);
	}

	/* Freeing twice, or a batch that was never filled, is harmless. */
	{
		struct note n = {"", 0};
		struct ev_batch z = {NULL, 0, NULL};

		ev_batch_free(&z);
		ev_batch_free(NULL);
		s = many_events(2, false, 0, &len);
		rc = parse(s, len, EV_FORMAT_JSON, now, &lim, &b, &err);
		expect(&n, rc, &err, &b, 0, "", -1, 2);
		ev_batch_free(&b);
		ev_batch_free(&b);
		if (b.events || b.n || b.mem)
			note_add(&n, "the batch is not empty after a free");
		free(s);
		tap_case(t, "ev_batch_free on empty and freed batches", &n);
	}

	/*
	 * The strings of a batch outlive the body: the server frees the
	 * request's buffer before it writes the events.
	 */
	{
		struct note n = {"", 0};

		s = many_events(3, true, 0, &len);
		rc = ev_parse_batch(s, len, EV_FORMAT_NDJSON, now, &lim, &b,
				    &err);
		memset(s, 'x', len);
		free(s);
		expect(&n, rc, &err, &b, 0, "", -1, 3);
		if (rc == 0 && (strcmp(b.events[2].id, "gen-2") ||
				strcmp(b.events[2].subject, "C2")))
			note_add(&n, "the strings changed with the body");
		ev_batch_free(&b);
		tap_case(t, "the batch owns its strings", &n);
	}
}

int main(int argc, char **argv)
{
	struct tap t = {0, 0};
	json_t *file, *cases;

	if (argc != 2) {
		fprintf(stderr, "usage: %s events.json\n", argv[0]);
		return 2;
	}
	file = tl_load(argv[1]);
	cases = json_object_get(file, "cases");
	for (size_t i = 0; i < json_array_size(cases); i++)
		run_case(&t, json_array_get(cases, i), file);
	check_names(&t, json_object_get(file, "names"));
	run_generated(&t, json_integer_value(json_object_get(file, "now_us")));
	json_decref(file);
	return tap_done(&t);
}
