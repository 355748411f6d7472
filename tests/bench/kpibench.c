/*
 * kpibench - the aggregator's cost per event against the state it holds.
 *
 *   build/tests/bench/kpibench [OPEN_TICKETS ...]   (default 1000 1000000)
 *
 * For each size, an aggregator (server/kpi.c) is filled with that many open
 * tickets received over the last 60 days (so that some are overdue) and as
 * many calls over the last two days, then takes the same stream of 400,000
 * summaries, as committed events return them: new calls and their answers,
 * new tickets, tickets dispatched, in progress and resolved, while the clock
 * moves 1 ms per summary.  It prints, per size, the time per applied
 * summary, the time of one snapshot (what every publication builds) and of
 * moving the clock by a second, and the process's memory.  The cost per
 * event should not depend on the size: each application is O(log n), and a
 * snapshot reads only counters and the per-agency, per-district and
 * per-sensor tables.
 */
#include "kpi.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC INT64_C(1000000)
#define DAY (86400 * SEC)
#define STREAM 400000

static const char *const agencies[] = {
    "DPU", "BPBD", "DLH", "DISHUB", "DINKES", "SATPOL-PP", "DISPERKIM"};
static const char *const districts[] = {"Genuk",    "Tugu",	 "Mijen",
					"Ngaliyan", "Tembalang", "Banyumanik"};
#define NAGENCIES (sizeof(agencies) / sizeof(*agencies))
#define NDISTRICTS (sizeof(districts) / sizeof(*districts))

static uint64_t rng = 88172645463325252u;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t below(int64_t n)
{
	return (int64_t)(next() % (uint64_t)n);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void die_oom(void)
{
	fprintf(stderr, "kpibench: out of memory\n");
	exit(1);
}

static struct kpi_ticket ticket(const char *id, int64_t received, int status)
{
	struct kpi_ticket t = {
	    .ticket = id,
	    .received_us = received,
	    .status = status,
	    .category = (int)below(EV_RC_COUNT),
	    .district = districts[below(NDISTRICTS)],
	    .agency = status == EV_REPORT_RECEIVED ? NULL
						   : agencies[below(NAGENCIES)],
	    .dispatched = status != EV_REPORT_RECEIVED,
	    .resolved_us = KPI_NONE,
	};
	return t;
}

static struct kpi_call call(const char *id, int64_t received, int status,
			    int64_t now)
{
	struct kpi_call c = {
	    .call_id = id,
	    .received_us = received,
	    .status = status,
	    .category = (int)below(EV_CC_COUNT),
	    .answered_us = status == EV_CALL_RECEIVED
			       ? KPI_NONE
			       : received + below(60 * SEC),
	    .abandoned_us = KPI_NONE,
	};
	if (c.answered_us != KPI_NONE && c.answered_us > now)
		c.answered_us = now;
	return c;
}

static void run(long open)
{
	struct kpi_config cfg = {.tz_offset_s = 7 * 3600};
	struct kpi *k;
	int64_t now = INT64_C(1764547200) * SEC; /* 2025-12-01 00:00 UTC */
	char id[32];
	long base_rss = rss_kib();
	double t0, t_apply, t_snap = 0, t_adv = 0;
	long next_ticket = open, next_call = open;
	int snaps = 0;
	/* When each ticket and call was received: a summary keeps it. */
	int64_t *trecv = malloc(sizeof(int64_t) * (size_t)(open + STREAM));
	int64_t *crecv = malloc(sizeof(int64_t) * (size_t)(open + STREAM));

	if (!trecv || !crecv)
		die_oom();

	for (int c = 0; c < EV_RC_COUNT; c++)
		cfg.sla_us[c] = 3 * DAY;
	k = kpi_new(&cfg);
	if (!k)
		die_oom();
	for (long i = 0; i < open; i++) {
		snprintf(id, sizeof(id), "t%ld", i);
		trecv[i] = now - below(60 * DAY);
		struct kpi_ticket t = ticket(id, trecv[i], (int)below(3));
		if (kpi_apply_ticket(k, &t, now) < 0)
			die_oom();
		snprintf(id, sizeof(id), "c%ld", i);
		crecv[i] = now - below(2 * DAY);
		struct kpi_call c = call(id, crecv[i], EV_CALL_CLOSED, now);
		if (kpi_apply_call(k, &c, now) < 0)
			die_oom();
	}
	long full_rss = rss_kib();

	t0 = now_s();
	for (long i = 0; i < STREAM; i++) {
		long r = (long)below(10);

		now += 1000;
		if (r < 3) { /* a new call, received now */
			crecv[next_call] = now;
			snprintf(id, sizeof(id), "c%ld", next_call++);
			struct kpi_call c =
			    call(id, now, EV_CALL_RECEIVED, now);
			if (kpi_apply_call(k, &c, now) < 0)
				die_oom();
		} else if (r < 5) { /* a recent call answered */
			long n = next_call - 1 - (long)below(50);
			snprintf(id, sizeof(id), "c%ld", n);
			struct kpi_call c =
			    call(id, crecv[n], EV_CALL_ANSWERED, now);
			if (kpi_apply_call(k, &c, now) < 0)
				die_oom();
		} else if (r < 7) { /* a new ticket */
			trecv[next_ticket] = now;
			snprintf(id, sizeof(id), "t%ld", next_ticket++);
			struct kpi_ticket t =
			    ticket(id, now, EV_REPORT_RECEIVED);
			if (kpi_apply_ticket(k, &t, now) < 0)
				die_oom();
		} else { /* any ticket moves on, some resolved */
			long n = (long)below(next_ticket);
			snprintf(id, sizeof(id), "t%ld", n);
			struct kpi_ticket t = ticket(
			    id, trecv[n],
			    r == 9 ? EV_REPORT_RESOLVED
				   : (int)(EV_REPORT_DISPATCHED + below(2)));
			if (t.status == EV_REPORT_RESOLVED)
				t.resolved_us = now;
			if (kpi_apply_ticket(k, &t, now) < 0)
				die_oom();
		}
	}
	t_apply = now_s() - t0;

	for (int i = 0; i < 20; i++) {
		double a = now_s();
		now += SEC;
		kpi_advance(k, now);
		double b = now_s();
		json_t *s = kpi_snapshot(k, now);
		double c = now_s();
		json_decref(s);
		t_adv += b - a;
		t_snap += c - b;
		snaps++;
	}
	printf("%12ld %12zu %14.3f %12.1f %14.1f %10.0f %10.0f\n", open,
	       kpi_tickets_held(k), t_apply * 1e9 / STREAM,
	       t_snap * 1e6 / snaps, t_adv * 1e6 / snaps,
	       (double)(full_rss - base_rss) / 1024,
	       (double)(rss_kib() - base_rss) / 1024);
	fflush(stdout);
	kpi_free(k);
	free(trecv);
	free(crecv);
}

int main(int argc, char **argv)
{
	static const long defaults[] = {1000, 1000000};

	printf("kpibench: %d summaries applied per size, the clock moving 1 ms "
	       "each\n",
	       STREAM);
	printf("%12s %12s %14s %12s %14s %10s %10s\n", "open tickets",
	       "tickets held", "ns/summary", "snapshot us", "advance 1s us",
	       "MiB filled", "MiB after");
	if (argc < 2) {
		for (size_t i = 0; i < sizeof(defaults) / sizeof(*defaults);
		     i++)
			run(defaults[i]);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		char *end;
		long n = strtol(argv[i], &end, 10);

		if (*end || n < 1 || n > 100000000) {
			fprintf(stderr, "kpibench: %s is not a size\n",
				argv[i]);
			return 2;
		}
		run(n);
	}
	return 0;
}
