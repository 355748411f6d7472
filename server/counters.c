#include "counters.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

/* The row of COUNTERS_OTHER, marked used so that it is written. */
static struct poster_count *other(struct counters *c)
{
	c->other.poster = COUNTERS_OTHER;
	return &c->other;
}

/* A poster left without a row of its own: said once, not per request. */
static struct poster_count *overflow(struct counters *c)
{
	if (!c->warned) {
		const char *what = c->label ? c->label : "poster";

		log_warn("metrics: more than %d %ss, or out of memory; "
			 "further ones are counted as %s=\"%s\"",
			 COUNTERS_POSTERS_MAX, what, what, COUNTERS_OTHER);
		c->warned = true;
	}
	return other(c);
}

struct poster_count *counters_poster(struct counters *c, const char *poster)
{
	struct poster_count *row = hmap_get(&c->posters, poster);
	size_t n;

	if (row)
		return row;
	if (strcmp(poster, COUNTERS_OTHER) == 0)
		return other(c);
	if (c->posters.len >= COUNTERS_POSTERS_MAX)
		return overflow(c);
	/* The name lives right after the row: one allocation, and the map
	 * borrows its key from the row. */
	n = strlen(poster);
	row = calloc(1, sizeof(*row) + n + 1);
	if (!row)
		return overflow(c);
	memcpy(row + 1, poster, n + 1);
	row->poster = (const char *)(row + 1);
	if (hmap_put(&c->posters, row->poster, row) < 0) {
		free(row);
		return overflow(c);
	}
	return row;
}

const struct poster_count *counters_next(const struct counters *c, size_t *pos)
{
	const char *key;
	void *row;

	if (hmap_next(&c->posters, pos, &key, &row))
		return row;
	/* Past the map's slots: the other row, once. */
	if (*pos == c->posters.cap && c->other.poster) {
		(*pos)++;
		return &c->other;
	}
	return NULL;
}

void counters_free(struct counters *c)
{
	size_t i = 0;
	const char *key;
	void *row;

	while (hmap_next(&c->posters, &i, &key, &row))
		free(row);
	hmap_free(&c->posters);
	memset(c, 0, sizeof(*c));
}
