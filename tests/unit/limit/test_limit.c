/*
 * tests/unit/limit/test_limit.c - unit tests of server/limit.c, the token
 * bucket per API key (and per address for logins): each request takes a
 * token, tokens come back at `rate` per second up to `burst`, and a refused
 * request is told the whole seconds until a token is back (Retry-After, at
 * least 1).  The clock is the now_us each call passes, so every step below
 * says its time.  The expected answers are worked out by hand from that
 * definition (limit.h).  Prints TAP.
 */
#include "limit.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>

#define SEC INT64_C(1000000)
#define MAX_STEPS 16

/* One request: the key, the time it arrives, and the answer it must get
 * (0: let through; else the Retry-After in seconds). */
struct step {
	const char *key;
	int64_t at_us;
	int want;
};

struct scenario {
	const char *name;
	double rate, burst;
	struct step steps[MAX_STEPS];
	const char *bug; /* a known bug of the code this case shows, or NULL */
};

static const struct scenario scenarios[] = {
    {"burst 3 at rate 1: three at once, the fourth waits 1 s",
     1,
     3,
     {{"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}, {"a", 0, 1}}},
    {"rate 1: the token is back after exactly 1 s, not 1 us before",
     1,
     1,
     {{"a", 0, 0},
      {"a", SEC - 1, 1},
      {"a", SEC, 0},
      {"a", SEC, 1},
      {"a", 2 * SEC, 0}}},
    /* 333333 us at 3 per second is 0.999999 of a token: not yet one. */
    {"rate 3: the token is back after 333334 us, not 333333",
     3,
     1,
     {{"a", 0, 0}, {"a", 333333, 1}, {"a", 333334, 0}, {"a", 333334, 1}}},
    /* One token per 10 s: Retry-After is the wait rounded up. */
    {"rate 0.1: Retry-After 10, then 8 for 7.5 s, 1 for 1 s, then through",
     0.1,
     1,
     {{"a", 0, 0},
      {"a", 0, 10},
      {"a", 2500000, 8},
      {"a", 9 * SEC, 1},
      {"a", 10 * SEC, 0}}},
    {"rate 1 per hour: Retry-After 3600",
     1.0 / 3600,
     1,
     {{"a", 0, 0}, {"a", 0, 3600}, {"a", 3599 * SEC, 1}, {"a", 3600 * SEC, 0}}},
    {"refill stops at burst: 100 s idle gives back 2 tokens, not 100",
     1,
     2,
     {{"a", 0, 0},
      {"a", 0, 0},
      {"a", 0, 1},
      {"a", 100 * SEC, 0},
      {"a", 100 * SEC, 0},
      {"a", 100 * SEC, 1}}},
    /* Were a refusal to take a token, the bucket would go below zero and
     * the request at 1 s would be refused too.  The times are binary
     * fractions of a second, so that rounding plays no part. */
    {"a refused request takes no token",
     1,
     1,
     {{"a", 0, 0},
      {"a", 500000, 1},
      {"a", 500000, 1},
      {"a", 750000, 1},
      {"a", SEC, 0}}},
    /* The same with refusals at 0.5, 0.6 and 0.9 s: one token is owed at
     * 1 s however the second was cut.  server/limit.c adds each piece of
     * refill to a double, and 0.5 + 0.1 + 0.3 + 0.1 comes to 1 - 2^-53
     * there: the request at 1 s is refused with Retry-After 1. */
    {"a refused request takes no token, refusals at tenths of a second",
     1,
     1,
     {{"a", 0, 0},
      {"a", 500000, 1},
      {"a", 600000, 1},
      {"a", 900000, 1},
      {"a", SEC, 0}}},
    {"keys have their own buckets",
     1,
     2,
     {{"a", 0, 0},
      {"a", 0, 0},
      {"a", 0, 1},
      {"b", 0, 0},
      {"b", 0, 0},
      {"b", 0, 1},
      {"a", 0, 1},
      {"ab", 0, 0}}},
    /* Tokens come back with time that passed; a clock stepped back (the
     * server reads the wall clock) has not passed any, and must not count
     * the same second twice when it comes forward again. */
    {"a clock stepped back gives no token",
     1,
     1,
     {{"a", 10 * SEC, 0},
      {"a", 5 * SEC, 1},
      {"a", 10 * SEC, 1},
      {"a", 10 * SEC + SEC / 2, 1},
      {"a", 11 * SEC, 0}}},
    {"rate 0 turns limiting off",
     0,
     1,
     {{"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}}},
    {"a negative rate turns limiting off",
     -1,
     1,
     {{"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}, {"a", 0, 0}}},
};

static void run_scenario(struct tap *t, const struct scenario *s)
{
	struct limiter *l = limit_new(s->rate, s->burst);
	struct note n = {0};

	if (!l) {
		note_add(&n, "limit_new: out of memory");
		tap_case(t, s->name, &n);
		return;
	}
	for (int i = 0; i < MAX_STEPS && s->steps[i].key; i++) {
		const struct step *st = &s->steps[i];
		int got = limit_take(l, st->key, st->at_us);

		if (got != st->want)
			note_add(&n, "step %d (%s at %lld us): %d, want %d",
				 i + 1, st->key, (long long)st->at_us, got,
				 st->want);
	}
	limit_free(l);
	if (s->bug)
		tap_todo(t, s->name, &n, s->bug);
	else
		tap_case(t, s->name, &n);
}

/*
 * Buckets unused for ten minutes are forgotten, swept every 4096 takes
 * (limit.h).  A forgotten bucket would be full again anyway, so what can be
 * checked is that forgetting never touches a bucket in use: thousands of
 * keys go idle, then more than 4096 requests follow, and the drained
 * buckets of recent keys must still be empty.  The sweep also removes map
 * entries while iterating over them.
 */
static void idle_buckets(struct tap *t)
{
	enum { OLD = 3000, RECENT = 100, FILLER = 10000 };
	const int64_t later = 601 * SEC;
	struct limiter *l = limit_new(1, 2);
	struct note n = {0};
	char key[32];
	int got;

	if (!l) {
		note_add(&n, "limit_new: out of memory");
		tap_case(t, "idle buckets forgotten, busy ones kept", &n);
		return;
	}
	for (int i = 0; i < OLD; i++) {
		snprintf(key, sizeof(key), "old-%d", i);
		if ((got = limit_take(l, key, 0)) != 0)
			note_add(&n, "%s at 0: %d, want 0", key, got);
	}
	for (int i = 0; i < RECENT; i++) {
		snprintf(key, sizeof(key), "recent-%d", i);
		for (int j = 0; j < 2; j++)
			if ((got = limit_take(l, key, later)) != 0)
				note_add(&n, "%s: take %d: %d, want 0", key,
					 j + 1, got);
	}
	/* One key, refused after its burst: only the count of calls matters. */
	for (int i = 0; i < FILLER; i++)
		(void)limit_take(l, "filler", later);
	for (int i = 0; i < RECENT; i++) {
		snprintf(key, sizeof(key), "recent-%d", i);
		if ((got = limit_take(l, key, later)) != 1)
			note_add(&n, "%s after the sweep: %d, want 1", key,
				 got);
	}
	/* Forgotten or not, an old key has its full burst back. */
	for (int i = 0; i < OLD; i += 7) {
		snprintf(key, sizeof(key), "old-%d", i);
		for (int j = 0; j < 3; j++)
			if ((got = limit_take(l, key, later)) !=
			    (j < 2 ? 0 : 1))
				note_add(&n, "%s: take %d: %d, want %d", key,
					 j + 1, got, j < 2 ? 0 : 1);
	}
	limit_free(l);
	tap_case(t, "idle buckets forgotten, drained recent ones kept", &n);
}

int main(void)
{
	struct tap t = {0};

	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_scenario(&t, &scenarios[i]);
	idle_buckets(&t);
	return tap_done(&t);
}
