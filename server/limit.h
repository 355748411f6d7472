/*
 * server/limit.h - token buckets by a key string: each request takes a
 * token, tokens come back at `rate` per second up to `burst`.  The server
 * has two limiters: one by agency key id (--rate-limit, for keys that
 * passed authentication, so as many buckets as keys in use), one by client
 * address for logins (as many as addresses that tried to log in lately).
 *
 * A bucket unused for ten minutes is forgotten (it would be full again by
 * then anyway); idle buckets are swept every 4096 takes.
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
