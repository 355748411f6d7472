/*
 * tests/unit/kpi/kpitest.h - what the KPI tests share: the list of
 * KPI keys, and a comparison of expected and actual JSON values that
 * reports every difference with its path.
 */
#ifndef KENDALI_KPITEST_H
#define KENDALI_KPITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tap.h"

#define KT_SEC INT64_C(1000000)
#define KT_MIN (60 * KT_SEC)
#define KT_HOUR (3600 * KT_SEC)
#define KT_DAY (24 * KT_HOUR)
#define KT_WIB 25200

/* Every key of the snapshot: the whole catalogue but alerts.active. */
extern const char *const kt_keys[];
extern const size_t kt_nkeys;

/*
 * Compares got with want and notes each difference, prefixed with prefix
 * and the path inside the value.  An integer must be matched by an integer
 * of the same value (counts are never fractions), a real by any number
 * within a relative 1e-9 (ratios, means and medians are computed in
 * floating point), objects by objects with exactly the same keys, arrays
 * element by element.  Returns true when they match.
 */
bool kt_match(const json_t *want, const json_t *got, const char *prefix,
	      struct note *n);

/* Checks that a snapshot holds exactly the catalogue's keys. */
void kt_check_keys(const json_t *snap, const char *prefix, struct note *n);

/* A time as RFC 3339 in WIB with microseconds, for messages. */
const char *kt_time_str(int64_t us, char buf[40]);

#endif
