/*
 * tests/unit/hmap/test_hmap.c - unit tests of server/hmap.c, the string map
 * under the limiter, the KPI aggregator and the connection counts: look-ups,
 * replacement, growth, removal (also inside a chain that wraps around the
 * end of the table), and removal of the current entry while iterating, as
 * server/kpi.c and server/limit.c do it.  The expectations come from a
 * plain array of what each key should hold, never from the map.  Prints TAP.
 */
#include "hmap.h"
#include "tap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 2000

/* The map borrows its keys, so they live here for the whole program. */
static char keys[NKEYS][16];
/* Values are pointers into this array: value of key i is &vals[i]. */
static int vals[NKEYS];

/* A small deterministic generator, so that a failure can be replayed. */
static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static bool power_of_two(size_t x)
{
	return x && (x & (x - 1)) == 0;
}

/* What the header promises of the shape after every change. */
static void check_shape(const struct hmap *m, size_t want_len, struct note *n)
{
	if (m->len != want_len)
		note_add(n, "len %zu, want %zu", m->len, want_len);
	if (m->cap != 0 && !power_of_two(m->cap))
		note_add(n, "cap %zu is not a power of two", m->cap);
	/* Open addressing needs free slots: never fuller than 3/4. */
	if (m->len * 4 > m->cap * 3)
		note_add(n, "%zu entries in %zu slots, over 3/4", m->len,
			 m->cap);
}

static void empty_map(struct tap *t)
{
	struct hmap m = {0};
	struct note n = {0};
	const char *k;
	void *v;
	size_t pos = 0;

	if (hmap_get(&m, "a") != NULL)
		note_add(&n, "get on an empty map found something");
	if (hmap_del(&m, "a") != NULL)
		note_add(&n, "del on an empty map removed something");
	if (hmap_next(&m, &pos, &k, &v))
		note_add(&n, "next on an empty map gave an entry");
	hmap_free(&m);
	/* A freed map is empty again and usable. */
	if (hmap_put(&m, keys[0], &vals[0]) < 0)
		note_add(&n, "put after free: out of memory");
	if (hmap_get(&m, keys[0]) != &vals[0])
		note_add(&n, "get after put after free");
	check_shape(&m, 1, &n);
	hmap_free(&m);
	if (m.slots || m.cap || m.len)
		note_add(&n, "free left cap %zu, len %zu", m.cap, m.len);
	tap_case(t, "empty map: get, del, next find nothing; free resets", &n);
}

static void insert_and_grow(struct tap *t)
{
	struct hmap m = {0};
	struct note n = {0};
	char other[16];

	for (size_t i = 0; i < NKEYS; i++) {
		size_t cap = m.cap;

		if (hmap_put(&m, keys[i], &vals[i]) < 0) {
			note_add(&n, "put %zu: out of memory", i);
			break;
		}
		check_shape(&m, i + 1, &n);
		if (cap != 0 && m.cap != cap && m.cap != 2 * cap)
			note_add(&n, "grew from %zu to %zu slots, not doubled",
				 cap, m.cap);
		if (cap != 0 && m.cap == 2 * cap && i * 4 < cap * 3)
			note_add(&n, "grew at %zu entries in %zu slots", i,
				 cap);
	}
	for (size_t i = 0; i < NKEYS; i++) {
		/* Keys are compared by content, not by address. */
		memcpy(other, keys[i], sizeof(other));
		if (hmap_get(&m, other) != &vals[i])
			note_add(&n, "%s not found after %d inserts", keys[i],
				 NKEYS);
	}
	if (hmap_get(&m, "absent") != NULL || hmap_get(&m, "") != NULL)
		note_add(&n, "a key never inserted was found");
	hmap_free(&m);
	tap_case(t, "insert 2000 keys: each found, growth by doubling at 3/4",
		 &n);
}

static void replace(struct tap *t)
{
	struct hmap m = {0};
	struct note n = {0};
	char copy[16];
	int other = 0;

	for (size_t i = 0; i < 10; i++)
		if (hmap_put(&m, keys[i], &vals[i]) < 0)
			note_add(&n, "put %zu: out of memory", i);
	/* Replacing by an equal key at another address keeps one entry. */
	memcpy(copy, keys[3], sizeof(copy));
	if (hmap_put(&m, copy, &other) < 0)
		note_add(&n, "replace: out of memory");
	check_shape(&m, 10, &n);
	if (hmap_get(&m, keys[3]) != &other)
		note_add(&n, "the replaced value is not the new one");
	if (hmap_del(&m, keys[3]) != &other)
		note_add(&n, "del did not return the new value");
	if (hmap_get(&m, keys[3]) != NULL)
		note_add(&n, "a replaced key survived its removal");
	check_shape(&m, 9, &n);
	hmap_free(&m);
	tap_case(t, "put on a present key replaces its value, len unchanged",
		 &n);
}

/*
 * Random puts and dels over a key space small enough that the map is often
 * near 3/4 full, so that removals happen inside long probe chains; after
 * every operation the map must agree with a plain array of what is in it.
 */
static void random_against_model(struct tap *t)
{
	enum { SPACE = 300, OPS = 50000 };
	struct hmap m = {0};
	struct note n = {0};
	bool in[SPACE] = {false};
	size_t len = 0;

	for (int op = 0; op < OPS && n.lines == 0; op++) {
		size_t i = rng() % SPACE;

		if (rng() % 2) {
			if (hmap_put(&m, keys[i], &vals[i]) < 0)
				note_add(&n, "op %d: out of memory", op);
			len += !in[i];
			in[i] = true;
		} else {
			void *got = hmap_del(&m, keys[i]);

			if (got != (in[i] ? &vals[i] : NULL))
				note_add(&n, "op %d: del %s returned %p", op,
					 keys[i], got);
			len -= in[i];
			in[i] = false;
		}
		check_shape(&m, len, &n);
		/* Checking every key after every operation is what catches
		 * a chain broken by a removal. */
		for (size_t j = 0; j < SPACE; j++)
			if (hmap_get(&m, keys[j]) != (in[j] ? &vals[j] : NULL))
				note_add(&n, "op %d: %s %s", op, keys[j],
					 in[j] ? "lost" : "still there");
	}
	hmap_free(&m);
	tap_case(t, "50000 random puts and dels agree with a model", &n);
}

/*
 * Keys that all have the last slot of a fresh table as their home (the
 * table a map of one entry has): the chain they form wraps around to slot
 * 0.  They are picked by where the map says they landed (the slot's hash,
 * which the header shows), so the test depends neither on the hash function
 * nor on the first size of the table.  Returns how many were found and that
 * size in *cap.
 */
static size_t keys_homed_last(size_t want, size_t out[], size_t *cap)
{
	size_t found = 0;

	*cap = 0;
	for (size_t i = 0; i < NKEYS && found < want; i++) {
		struct hmap probe = {0};

		if (hmap_put(&probe, keys[i], &vals[i]) == 0) {
			size_t mask = probe.cap - 1;

			*cap = probe.cap;
			for (size_t s = 0; s < probe.cap; s++)
				if (probe.slots[s].key &&
				    (probe.slots[s].hash & mask) == mask)
					out[found++] = i;
		}
		hmap_free(&probe);
	}
	return found;
}

static void wrapped_chain(struct tap *t)
{
	size_t idx[5], cap;
	struct hmap m = {0};
	struct note n = {0};

	/* Five in one chain fit a table of 8 slots or more without growing. */
	if (keys_homed_last(5, idx, &cap) != 5 || cap < 8) {
		note_add(&n, "no 5 keys with the same home among %d", NKEYS);
		tap_case(t, "removal inside a chain that wraps around", &n);
		return;
	}
	/* The five share one home, so they stay in one chain whatever is
	 * removed; each removal point is tried on a fresh map. */
	for (size_t del = 0; del < 5; del++) {
		for (size_t i = 0; i < 5; i++)
			if (hmap_put(&m, keys[idx[i]], &vals[idx[i]]) < 0)
				note_add(&n, "put: out of memory");
		if (m.cap != cap)
			note_add(&n, "cap %zu, want %zu", m.cap, cap);
		if (hmap_del(&m, keys[idx[del]]) != &vals[idx[del]])
			note_add(&n, "del of chain member %zu failed", del);
		for (size_t i = 0; i < 5; i++) {
			void *want = i == del ? NULL : &vals[idx[i]];

			if (hmap_get(&m, keys[idx[i]]) != want)
				note_add(&n,
					 "chain member %zu %s after removing "
					 "member %zu",
					 i, want ? "lost" : "still there", del);
		}
		check_shape(&m, 4, &n);
		hmap_free(&m);
	}
	tap_case(t, "removal inside a chain that wraps around the table", &n);
}

/*
 * hmap.h does not say whether an entry may be removed while iterating.
 * server/kpi.c (prune_map) and server/limit.c (sweep) remove the entry
 * just returned and step the position back by one, since a removal shifts
 * later entries back into the freed slot.  That pattern must visit every
 * entry and leave exactly the kept ones.  An entry may be seen twice: one
 * at the start of the table that belongs to a chain wrapping around the
 * end moves back across the end when a slot there is freed.  The callers
 * decide the same on the second look, so that is harmless to them; what is
 * checked is "at least once", and the second looks are counted.
 *
 * Iterates over the entries of the keys idx[0..count), removing those with
 * drop[i]; returns how many entries were seen twice.
 */
static size_t iterate_removing(const size_t idx[], const bool drop[],
			       size_t count, struct note *n)
{
	static int seen[NKEYS];
	struct hmap m = {0};
	const char *k;
	void *v;
	size_t pos = 0, kept = 0, twice = 0;

	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < count; i++)
		if (hmap_put(&m, keys[idx[i]], &vals[idx[i]]) < 0)
			note_add(n, "put %zu: out of memory", i);
	while (hmap_next(&m, &pos, &k, &v)) {
		size_t key = (size_t)((int *)v - vals), i = 0;

		while (i < count && idx[i] != key)
			i++;
		if (i == count || strcmp(k, keys[key]) != 0) {
			note_add(n, "entry %s with a value not its own", k);
			break;
		}
		twice += seen[i]++ == 1;
		if (drop[i]) {
			/* Stepping back onto an entry that stayed would
			 * loop for ever. */
			if (hmap_del(&m, k) != v) {
				note_add(n, "del %s during iteration failed",
					 k);
				break;
			}
			pos--;
		}
	}
	for (size_t i = 0; i < count; i++) {
		void *want = drop[i] ? NULL : &vals[idx[i]];

		if (!seen[i])
			note_add(n, "%s never visited", keys[idx[i]]);
		if (hmap_get(&m, keys[idx[i]]) != want)
			note_add(n, "%s %s", keys[idx[i]],
				 want ? "lost" : "still there");
		kept += !drop[i];
	}
	check_shape(&m, kept, n);
	hmap_free(&m);
	return twice;
}

static void remove_while_iterating(struct tap *t)
{
	enum { COUNT = 1500 };
	static size_t idx[COUNT];
	static bool drop[COUNT];
	struct note n = {0};
	size_t twice, cap;

	/* Two keys out of three removed, in a map of many chains. */
	for (size_t i = 0; i < COUNT; i++) {
		idx[i] = i;
		drop[i] = i % 3 != 0;
	}
	twice = iterate_removing(idx, drop, COUNT, &n);
	printf("# %zu of %d entries seen twice\n", twice, COUNT);
	tap_case(t, "remove the current entry while iterating (pos--)", &n);

	/* A chain that starts in the last slot and goes on at slot 0: its
	 * first member, in the last slot, is removed when the iteration
	 * reaches the end, after slots 0..3 were visited. */
	memset(&n, 0, sizeof(n));
	if (keys_homed_last(5, idx, &cap) != 5 || cap < 8) {
		note_add(&n, "no 5 keys with the same home among %d", NKEYS);
	} else {
		memset(drop, 0, 5 * sizeof(drop[0]));
		drop[0] = true;
		twice = iterate_removing(idx, drop, 5, &n);
		printf("# %zu of 5 entries of the wrapped chain seen twice\n",
		       twice);
	}
	tap_case(t, "remove while iterating, in a chain that wraps around", &n);
}

static void iterate_all(struct tap *t)
{
	static int seen[NKEYS];
	struct hmap m = {0};
	struct note n = {0};
	const char *k;
	void *v;
	size_t pos = 0, count = 0;

	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < 700; i++)
		if (hmap_put(&m, keys[i], &vals[i]) < 0)
			note_add(&n, "put %zu: out of memory", i);
	for (size_t i = 0; i < 700; i += 2)
		(void)hmap_del(&m, keys[i]);
	while (hmap_next(&m, &pos, &k, &v)) {
		size_t i = (size_t)((int *)v - vals);

		count++;
		if (i >= 700 || i % 2 == 0 || strcmp(k, keys[i]) != 0)
			note_add(&n, "unexpected entry %s", k);
		else if (seen[i]++)
			note_add(&n, "%s visited twice", k);
	}
	if (count != 350 || m.len != 350)
		note_add(&n, "%zu entries visited, len %zu, want 350", count,
			 m.len);
	hmap_free(&m);
	tap_case(t, "iteration visits each entry once", &n);
}

/* Counts the values hmap_free_all hands to it. */
static int freed[NKEYS];

static void count_free(void *v)
{
	freed[(int *)v - vals]++;
}

static void free_all(struct tap *t)
{
	struct hmap m = {0};
	struct note n = {0};

	memset(freed, 0, sizeof(freed));
	for (size_t i = 0; i < 300; i++)
		if (hmap_put(&m, keys[i], &vals[i]) < 0)
			note_add(&n, "put %zu: out of memory", i);
	for (size_t i = 0; i < 300; i += 3)
		(void)hmap_del(&m, keys[i]);
	hmap_free_all(&m, count_free);
	for (size_t i = 0; i < 300; i++)
		if (freed[i] != (i % 3 != 0))
			note_add(&n, "%s freed %d times, want %d", keys[i],
				 freed[i], i % 3 != 0);
	if (m.slots || m.cap || m.len)
		note_add(&n, "free_all left cap %zu, len %zu", m.cap, m.len);
	/* Without a function, free(): the sanitizers see a wrong one. */
	for (size_t i = 0; i < 50; i++) {
		int *p = malloc(sizeof(*p));

		if (!p || hmap_put(&m, keys[i], p) < 0) {
			note_add(&n, "put %zu: out of memory", i);
			free(p);
		}
	}
	hmap_free_all(&m, NULL);
	if (m.slots || m.cap || m.len)
		note_add(&n, "free_all left cap %zu, len %zu", m.cap, m.len);
	hmap_free_all(&m, count_free); /* an empty map: nothing to free */
	tap_case(t, "free_all frees each value once, then the map", &n);
}

int main(void)
{
	struct tap t = {0};

	for (size_t i = 0; i < NKEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%zu", i);
		vals[i] = (int)i;
	}
	empty_map(&t);
	insert_and_grow(&t);
	replace(&t);
	random_against_model(&t);
	wrapped_chain(&t);
	remove_while_iterating(&t);
	iterate_all(&t);
	free_all(&t);
	return tap_done(&t);
}
