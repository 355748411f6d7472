#include "hmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

static struct hmap_slot *find(const struct hmap *m, const char *key,
			      size_t hash)
{
	size_t mask = m->cap - 1;

	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct hmap_slot *s = &m->slots[i];

		if (!s->key || (s->hash == hash && strcmp(s->key, key) == 0))
			return s;
	}
}

void *hmap_get(const struct hmap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	struct hmap_slot *s = find(m, key, hash_str(key));
	return s->key ? s->value : NULL;
}

static int grow(struct hmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct hmap_slot *old = m->slots;
	size_t old_cap = m->cap;

	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		return -1;
	}
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].key)
			*find(m, old[i].key, old[i].hash) = old[i];
	free(old);
	return 0;
}

int hmap_put(struct hmap *m, const char *key, void *value)
{
	if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0)
		return -1;
	size_t hash = hash_str(key);
	struct hmap_slot *s = find(m, key, hash);
	if (!s->key)
		m->len++;
	s->key = key;
	s->value = value;
	s->hash = hash;
	return 0;
}

void *hmap_del(struct hmap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	size_t mask = m->cap - 1;
	struct hmap_slot *s = find(m, key, hash_str(key));
	if (!s->key)
		return NULL;
	void *value = s->value;
	size_t i = (size_t)(s - m->slots);

	/* Backward-shift deletion keeps every probe chain unbroken without
	 * tombstones. */
	for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;
		size_t dist_j = (j - home) & mask;
		size_t dist_i = (i - home) & mask;

		if (dist_i < dist_j) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].key = NULL;
	m->slots[i].value = NULL;
	m->len--;
	return value;
}

void hmap_free(struct hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

void hmap_free_all(struct hmap *m, void (*free_value)(void *))
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			(free_value ? free_value : free)(m->slots[i].value);
	hmap_free(m);
}

int hmap_next(const struct hmap *m, size_t *pos, const char **key, void **value)
{
	for (; *pos < m->cap; (*pos)++) {
		struct hmap_slot *s = &m->slots[*pos];

		if (s->key) {
			*key = s->key;
			*value = s->value;
			(*pos)++;
			return 1;
		}
	}
	return 0;
}
