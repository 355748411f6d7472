/*
 * tests/fuzz/fuzz_ingest.c - libFuzzer target for the ingest library.
 *
 * Build and run from the top of the tree with tests/fuzz/run.sh ingest (not
 * part of the meson build), or by hand:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -Iingest \
 *       ingest/event.c ingest/time.c tests/fuzz/fuzz_ingest.c \
 *       -ljansson -lm -o fuzz_ingest
 *   mkdir -p /tmp/fuzz-corpus
 *   ./fuzz_ingest -max_total_time=30 -dict=tests/fuzz/ingest.dict \
 *       /tmp/fuzz-corpus tests/fuzz/corpus/ingest
 *
 * (The first directory collects what the fuzzer finds, so that the seeds in
 * the tree stay as they are.)  Each input is read as a JSON body, an NDJSON
 * body, a sensor definition and an RFC 3339 time, and every result is checked
 * for what the server relies on: an error is a known status with a short,
 * clean detail; an event has its required strings within their limits and
 * its numbers in range.  A broken promise aborts, so the fuzzer reports it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2026-11-23T08:00:00+07:00 */
#define NOW_US INT64_C(1795395600000000)

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* Valid UTF-8 without control characters, shorter than max bytes. */
static bool clean(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strnlen(s, max);

	if (n >= max)
		return false;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t len = c < 0x80	? 1
			     : c < 0xC2 ? 0
			     : c < 0xE0 ? 2
			     : c < 0xF0 ? 3
			     : c < 0xF5 ? 4
					: 0;

		if (len == 0 || i + len > n || c < 0x20 || c == 0x7F)
			return false;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

static void check_error(const struct ev_error *e)
{
	check(e->status == 400 || e->status == 413 || e->status == 422 ||
	      e->status == 500);
	check(e->code && e->code[0]);
	check(clean(e->detail, sizeof e->detail) && e->detail[0]);
	check(clean(e->field, sizeof e->field));
	check(e->status == 400 ? e->line >= 1 && e->column >= 1
			       : e->line == 0 && e->column == 0);
}

static void check_string(const char *s, size_t max, bool required)
{
	if (!s) {
		check(!required);
		return;
	}
	check(s[0] && clean(s, max + 1));
}

static void check_event(const struct ev_event *e)
{
	check((unsigned)e->type < EV_TYPE_COUNT);
	check_string(e->id, EV_ID_MAX, true);
	check(e->occurred_us <= NOW_US + EV_FUTURE_SKEW_US);
	check_string(e->district, EV_DISTRICT_MAX, false);
	if (e->has_location)
		check(fabs(e->lat) <= 90 && fabs(e->lon) <= 180);
	check_string(e->subject, EV_SUBJECT_MAX, true);
	check(e->status == 0 || ev_status_name(e->type, e->status));
	check(e->category == -1 || ev_category_name(e->type, e->category));
	check(e->type == EV_REPORT || (!e->agency && !e->title));
	check_string(e->agency, EV_AGENCY_MAX, false);
	check_string(e->title, EV_TITLE_MAX, false);
	check(isfinite(e->value));
}

static void batch(const uint8_t *data, size_t size, enum ev_format fmt)
{
	const struct ev_limits lim = {1000, 16};
	struct ev_batch b;
	struct ev_error err;

	if (ev_parse_batch((const char *)data, size, fmt, NOW_US, &lim, &b,
			   &err) < 0) {
		check(!b.events && b.n == 0 && !b.mem);
		check_error(&err);
		return;
	}
	check(b.n >= 1 && b.n <= lim.max_events);
	for (size_t i = 0; i < b.n; i++)
		check_event(&b.events[i]);
	ev_batch_free(&b);
}

static void sensor_def(const uint8_t *data, size_t size)
{
	struct ev_sensor_def d;
	struct ev_error err;
	double prev = -INFINITY;
	int given = 0;

	if (ev_parse_sensor_def("fuzz-01", (const char *)data, size, &d, &err) <
	    0) {
		check_error(&err);
		check(err.index == -1);
		return;
	}
	check(strcmp(d.sensor_id, "fuzz-01") == 0);
	check(d.name[0] && d.metric[0] && d.unit[0]);
	check(d.offline_after_s >= 60 && d.offline_after_s <= 604800);
	for (int i = 0; i < 3; i++) {
		if (isnan(d.thresholds[i]))
			continue;
		check(d.thresholds[i] > prev);
		prev = d.thresholds[i];
		given++;
	}
	check(given > 0);
}

static void time_round_trip(const uint8_t *data, size_t size)
{
	int64_t us, back;
	char buf[40];
	size_t len;

	if (ev_time_parse((const char *)data, size, &us) < 0)
		return;
	len = ev_time_format(us, 0, buf);
	check(len == strlen(buf) && len < sizeof buf);
	if (us >= 0) {
		check(ev_time_parse(buf, len, &back) == 0);
		check(back == us - us % 1000);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	batch(data, size, EV_FORMAT_JSON);
	batch(data, size, EV_FORMAT_NDJSON);
	sensor_def(data, size);
	time_round_trip(data, size);
	return 0;
}
