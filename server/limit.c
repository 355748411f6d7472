#include "limit.h"

#include "hmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_US (600 * INT64_C(1000000))
#define SWEEP_EVERY 4096 /* takes between sweeps of idle buckets */

struct bucket {
	char *key;
	double tokens;
	int64_t last_us;
};

struct limiter {
	double rate, burst;
	struct hmap buckets;
	unsigned takes;
};

struct limiter *limit_new(double rate, double burst)
{
	struct limiter *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->rate = rate;
	l->burst = burst < 1 ? 1 : burst;
	return l;
}

static void bucket_free(void *v)
{
	struct bucket *b = v;

	free(b->key);
	free(b);
}

void limit_free(struct limiter *l)
{
	if (!l)
		return;
	hmap_free_all(&l->buckets, bucket_free);
	free(l);
}

static void sweep(struct limiter *l, int64_t now_us)
{
	const char *k;
	void *v;
	size_t pos = 0;

	while (hmap_next(&l->buckets, &pos, &k, &v)) {
		struct bucket *b = v;

		if (now_us - b->last_us < IDLE_US)
			continue;
		hmap_del(&l->buckets, k);
		bucket_free(b);
		pos--; /* a later entry may have moved into this slot */
	}
}

int limit_take(struct limiter *l, const char *key, int64_t now_us)
{
	struct bucket *b;

	if (l->rate <= 0)
		return 0;
	if (++l->takes % SWEEP_EVERY == 0)
		sweep(l, now_us);
	b = hmap_get(&l->buckets, key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b || !(b->key = strdup(key)) ||
		    hmap_put(&l->buckets, b->key, b) < 0) {
			if (b)
				free(b->key);
			free(b);
			return 0; /* out of memory: do not refuse work */
		}
		b->tokens = l->burst;
		b->last_us = now_us;
	}
	if (now_us > b->last_us) {
		b->tokens += l->rate * (double)(now_us - b->last_us) / 1e6;
		if (b->tokens > l->burst)
			b->tokens = l->burst;
		b->last_us = now_us;
	}
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	return (int)ceil((1 - b->tokens) / l->rate);
}
