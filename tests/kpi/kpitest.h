/*
 * tests/kpi/kpitest.h - what the KPI tests share: TAP output, the list of
 * KPI keys, and a comparison of expected and actual JSON values that
 * reports every difference with its path.
 */
#ifndef KENDALI_KPITEST_H
#define KENDALI_KPITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define KT_SEC INT64_C(1000000)
#define KT_MIN (60 * KT_SEC)
#define KT_HOUR (3600 * KT_SEC)
#define KT_DAY (24 * KT_HOUR)
#define KT_WIB 25200

/* Every key of the snapshot: the whole catalogue but alerts.active. */
extern const char *const kt_keys[];
extern const size_t kt_nkeys;

/* The mismatches of one test, one line each. */
struct kt_note {
	char s[16384];
	size_t len;
	int lines;
};

void kt_note_add(struct kt_note *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct kt_tap {
	int n, failed;
};

/* Reports one test as ok, or as not ok followed by the note's lines. */
void kt_tap_case(struct kt_tap *t, const char *name, const struct kt_note *n);
/* Prints the plan and returns the exit status. */
int kt_tap_done(const struct kt_tap *t);

/*
 * Compares got with want and notes each difference, prefixed with prefix
 * and the path inside the value.  An integer must be matched by an integer
 * of the same value (counts are never fractions), a real by any number
 * within a relative 1e-9 (ratios, means and medians are computed in
 * floating point), objects by objects with exactly the same keys, arrays
 * element by element.  Returns true when they match.
 */
bool kt_match(const json_t *want, const json_t *got, const char *prefix,
	      struct kt_note *n);

/* Checks that a snapshot holds exactly the catalogue's keys. */
void kt_check_keys(const json_t *snap, const char *prefix, struct kt_note *n);

/* A time as RFC 3339 in WIB with microseconds, for messages. */
const char *kt_time_str(int64_t us, char buf[40]);

#endif
