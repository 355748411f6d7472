/*
 * server/hmap.h - a hash map from NUL-terminated strings to pointers.
 *
 * Open addressing with linear probing; it grows by doubling when 3/4 full.
 * The map borrows its keys: each key must live as long as its entry, which
 * is natural when the key is a member of the value.
 */
#ifndef KENDALI_HMAP_H
#define KENDALI_HMAP_H

#include <stddef.h>

struct hmap_slot {
	const char *key;
	void *value;
	size_t hash;
};

struct hmap {
	struct hmap_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t len;
};

/* Returns the value or NULL. */
void *hmap_get(const struct hmap *m, const char *key);
/* Inserts or replaces; returns 0, or -1 when out of memory. */
int hmap_put(struct hmap *m, const char *key, void *value)
    __attribute__((warn_unused_result));
/* Removes and returns the value, or NULL when absent. */
void *hmap_del(struct hmap *m, const char *key);
void hmap_free(struct hmap *m);
/* Frees every value with free_value (free() when NULL), then the map. */
void hmap_free_all(struct hmap *m, void (*free_value)(void *));

/*
 * Iteration: for (size_t i = 0; hmap_next(m, &i, &k, &v);) ...
 * To remove the entry just returned, hmap_del it and step i back by one:
 * the deletion may move a later entry of its chain into that slot.  Every
 * entry is then visited, though one whose chain wraps around the end of
 * the table may be visited twice (callers that remove must not mind).
 */
int hmap_next(const struct hmap *m, size_t *pos, const char **key,
	      void **value);

#endif
