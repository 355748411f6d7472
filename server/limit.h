/*
 * server/limit.h - a token bucket per API key: each request takes a token,
 * tokens come back at `rate` per second up to `burst`.
 *
 * The buckets are held for keys that passed authentication, so there are as
 * many as there are keys in use; a bucket unused for ten minutes is
 * forgotten (it would be full again by then anyway).
 */
#ifndef KENDALI_LIMIT_H
#define KENDALI_LIMIT_H

#include <stdint.h>

struct limiter;

/* rate <= 0 turns limiting off.  Returns NULL when out of memory. */
struct limiter *limit_new(double rate, double burst);
void limit_free(struct limiter *l);

/*
 * Takes one token from key's bucket at time now.  Returns 0 when the
 * request may proceed, else the whole seconds until a token is back (for
 * Retry-After, at least 1).
 */
int limit_take(struct limiter *l, const char *key, int64_t now_us);

#endif
