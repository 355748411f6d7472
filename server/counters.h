/*
 * server/counters.h - the counters of /metrics that have a label: events
 * stored and events found already stored, per poster (the agency key's
 * poster name); events naming an unknown district, per district name.  Each
 * tenant has its own tables (struct tenant).
 *
 * Posters are named by the keys the city's admins create: a few hundred at
 * most.  The table is still bounded, so that /metrics stays small whatever
 * the keys table holds: past COUNTERS_POSTERS_MAX posters, new ones are
 * counted together under COUNTERS_OTHER (and a warning is logged once).  A
 * row is never removed, since a counter must not go back: a poster keeps its
 * row, revoked or not, for the life of the process.
 */
#ifndef KENDALI_COUNTERS_H
#define KENDALI_COUNTERS_H

#include "hmap.h"

#include <stdbool.h>
#include <stdint.h>

#define COUNTERS_POSTERS_MAX 1000
/* The label value of the posters past the bound; a poster of that very
 * name shares its row, so that no two rows have the same label. */
#define COUNTERS_OTHER "_other"

struct poster_count {
	uint64_t accepted, duplicate;
	const char *poster; /* the label value, NUL-terminated */
};

/* All zeros is an empty table. */
struct counters {
	struct hmap posters;	   /* poster -> struct poster_count */
	struct poster_count other; /* poster is NULL until first used */
	bool warned;		   /* the bound was reached and logged */
	const char *label;	   /* what a row counts: "poster" when NULL */
};

/*
 * The row of poster, added if new.  Never NULL: past the bound, or when
 * memory runs out, the row of COUNTERS_OTHER.  A row stays where it is
 * until counters_free, so a request may hold it while it waits.
 */
struct poster_count *counters_poster(struct counters *c, const char *poster);

/* Iteration, COUNTERS_OTHER last if used:
 * for (size_t i = 0; (row = counters_next(c, &i));) ... */
const struct poster_count *counters_next(const struct counters *c, size_t *pos);

void counters_free(struct counters *c);

#endif
