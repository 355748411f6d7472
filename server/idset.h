/*
 * server/idset.h - a set of ids (sensor ids of a key's scope), parsed from a
 * comma-separated list and looked up exactly: an id is in the set only when
 * it equals one of the list's items, never as a part of one.
 *
 * Pure code, with no I/O: the fuzz target of requests calls it directly.
 */
#ifndef KENDALI_IDSET_H
#define KENDALI_IDSET_H

#include <stdbool.h>
#include <stddef.h>

struct idset {
	char **ids; /* sorted, without duplicates or empty items */
	size_t n;
};

/*
 * Fills s (which it owns until idset_free) with the items of the
 * comma-separated list; empty items are left out.  Returns 0, or -1 when out
 * of memory (s is then empty).
 */
int idset_parse(struct idset *s, const char *list)
    __attribute__((warn_unused_result));

/* Whether id is one of the set's items. */
bool idset_has(const struct idset *s, const char *id);

void idset_free(struct idset *s);

#endif
