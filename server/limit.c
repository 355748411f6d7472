#include "limit.h"

#include "hmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_US (600 * INT64_C(1000000))
#define SWEEP_EVERY 4096 /* takes between sweeps of idle buckets */

/*
 * Each bucket is kept as the generic cell rate algorithm keeps it: the time
 * its next token is due (tat_us), one token every interval_us, a burst
 * allowed as that time running ahead of the clock by up to (burst - 1)
 * intervals.  Equal to the bucket of limit.h, with no running sum: adding
 * fractions of a token as they came, 0.5 + 0.1 + 0.3 + 0.1 fell short of
 * one token, and a request due at 1 s was refused.
 */
struct bucket {
	char *key;
	double tat_us;
	int64_t last_us; /* of the last request, for forgetting idle ones */
};

struct limiter {
	double rate, burst;
	double interval_us, ahead_us; /* 1 / rate; (burst - 1) / rate */
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
	if (rate > 0) {
		l->interval_us = 1e6 / rate;
		l->ahead_us = (l->burst - 1) * l->interval_us;
	}
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
		b->tat_us = (double)now_us; /* a full bucket */
	}
	/* A wall clock stepped back has not given time back. */
	if (now_us > b->last_us)
		b->last_us = now_us;
	double now = (double)b->last_us;
	/* Idle time gives back tokens up to the burst, no more. */
	double tat = b->tat_us > now ? b->tat_us : now;
	double early = tat - now - l->ahead_us;

	if (early <= 0) {
		b->tat_us = tat + l->interval_us;
		return 0;
	}
	/* Refused: it takes nothing; its answer is the whole seconds until
	 * a token is back. */
	return (int)ceil(early / 1e6);
}
