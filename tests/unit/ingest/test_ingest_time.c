/*
 * tests/unit/ingest/test_ingest_time.c - ev_time_parse() and ev_time_format().
 *
 * Usage: test_ingest_time tests/data/ingest/times.json
 *
 * The case file has times and microseconds worked out with another calendar
 * implementation.  Here, a day-by-day walk of a naive calendar checks every
 * date from 1970 to 2500 both ways, and a pseudo-random sample checks that a
 * formatted time reads back as itself, cut to the millisecond.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define US_PER_DAY (INT64_C(86400) * 1000000)

/* Parses s from a buffer of exactly its length, without a final NUL. */
static int parse_exact(const char *s, size_t len, int64_t *us)
{
	char *buf = malloc(len ? len : 1);
	int rc;

	memcpy(buf, s, len);
	rc = ev_time_parse(buf, len, us);
	free(buf);
	return rc;
}

static void run_parse(struct tap *t, const json_t *c)
{
	const json_t *in = json_object_get(c, "in");
	const char *s = json_string_value(in);
	size_t len = json_string_length(in);
	struct note n = {"", 0};
	char name[160];
	int64_t us = 0;
	int rc;

	snprintf(name, sizeof name, "parse \"%s\"%s%s", s,
		 json_object_get(c, "note") ? ": " : "", tl_str(c, "note", ""));
	rc = parse_exact(s, len, &us);
	if (json_is_true(json_object_get(c, "error"))) {
		if (rc == 0)
			note_add(&n, "expected an error, got %" PRId64, us);
	} else {
		int64_t want = json_integer_value(json_object_get(c, "us"));

		if (rc != 0)
			note_add(&n, "expected %" PRId64 ", got an error",
				 want);
		else if (us != want)
			note_add(&n, "expected %" PRId64 ", got %" PRId64, want,
				 us);
	}
	tap_case(t, name, &n);
}

static void run_format(struct tap *t, const json_t *c)
{
	int64_t us = json_integer_value(json_object_get(c, "us"));
	int off = (int)json_integer_value(json_object_get(c, "offset_s"));
	const char *want = tl_str(c, "out", "");
	struct note n = {"", 0};
	char buf[40], name[120];
	size_t len;

	memset(buf, 'x', sizeof buf);
	len = ev_time_format(us, off, buf);
	snprintf(name, sizeof name, "format %" PRId64 " at %d s", us, off);
	if (strcmp(buf, want) != 0)
		note_add(&n, "expected %s, got %s", want, buf);
	if (len != strlen(want))
		note_add(&n, "returned %zu, expected %zu", len, strlen(want));
	tap_case(t, name, &n);
}

static int month_days(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : d[m - 1];
}

/* Every day of 1970..2500 against a calendar that just counts days. */
static void run_calendar(struct tap *t)
{
	struct note n = {"", 0};
	int y = 1970, m = 1, d = 1;
	int64_t day = 0;

	while (y <= 2500 && n.len < 1000) {
		char want[64], got[40];
		int64_t us = day * US_PER_DAY + 43200 * INT64_C(1000000);
		int64_t back;

		snprintf(want, sizeof want, "%04d-%02d-%02dT12:00:00.000+00:00",
			 y, m, d);
		ev_time_format(us, 0, got);
		if (strcmp(want, got))
			note_add(&n, "day %" PRId64 ": expected %s, got %s",
				 day, want, got);
		if (ev_time_parse(want, strlen(want), &back) || back != us)
			note_add(&n, "%s did not read back as %" PRId64, want,
				 us);
		if (++d > month_days(y, m)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
		day++;
	}
	tap_case(t, "every day from 1970 to 2500, both ways", &n);
}

/* Format then parse: the same time, cut to the millisecond. */
static void run_round_trips(struct tap *t)
{
	static const int offsets[] = {0, 25200, -12600, 20700, 86340, -86340};
	const int64_t span = INT64_C(253402300799999999); /* to 9999 */
	struct note n = {"", 0};
	uint64_t x = 88172645463325252u;

	for (int i = 0; i < 200000 && n.len < 1000; i++) {
		int off = offsets[i % 6];
		int64_t us, back, want;
		char buf[40];
		size_t len;

		/* xorshift64: the same sequence on every run. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		us = (int64_t)(x % (uint64_t)span);
		if (i < 1000)
			us = (int64_t)(x % 4000000000) - 2000000000;
		len = ev_time_format(us, off, buf);
		if (len != 29 || strlen(buf) != 29) {
			note_add(&n, "%" PRId64 " at %d: length %zu of %s", us,
				 off, len, buf);
			continue;
		}
		if (strncmp(buf, "1969", 4) == 0)
			continue; /* Not a year ev_time_parse() accepts. */
		want = us / 1000 * 1000;
		if (us < 0 && us % 1000)
			want -= 1000;
		if (ev_time_parse(buf, len, &back) || back != want)
			note_add(&n,
				 "%" PRId64 " at %d: %s read back as %" PRId64,
				 us, off, buf, back);
	}
	tap_case(t, "200000 times formatted and read back", &n);
}

/* Only len bytes are read: a longer buffer or a shorter len is not used. */
static void run_lengths(struct tap *t)
{
	const char *s = "2026-11-23T01:15:00Zjunk";
	struct note n = {"", 0};
	int64_t us;

	if (ev_time_parse(s, 20, &us) || us != INT64_C(1795396500000000))
		note_add(&n, "the first 20 bytes are a valid time");
	for (size_t len = 0; len < 20; len++)
		if (ev_time_parse(s, len, &us) == 0)
			note_add(&n, "the first %zu bytes are no time", len);
	if (ev_time_parse(s, strlen(s), &us) == 0)
		note_add(&n, "the whole string is no time");
	tap_case(t, "only len bytes are read", &n);
}

int main(int argc, char **argv)
{
	struct tap t = {0, 0};
	json_t *file, *cases;

	if (argc != 2) {
		fprintf(stderr, "usage: %s times.json\n", argv[0]);
		return 2;
	}
	file = tl_load(argv[1]);
	cases = json_object_get(file, "parse");
	for (size_t i = 0; i < json_array_size(cases); i++)
		run_parse(&t, json_array_get(cases, i));
	cases = json_object_get(file, "format");
	for (size_t i = 0; i < json_array_size(cases); i++)
		run_format(&t, json_array_get(cases, i));
	run_calendar(&t);
	run_round_trips(&t);
	run_lengths(&t);
	json_decref(file);
	return tap_done(&t);
}
