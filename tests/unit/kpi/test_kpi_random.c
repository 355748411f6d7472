/*
 * tests/unit/kpi/test_kpi_random.c - the KPI aggregator against a brute-force
 * recomputation, over thousands of random summaries.
 *
 * Usage: test_kpi_random [seed]
 *
 * Each round moves the clock forward, applies random call and ticket
 * summaries (new ids and updates of earlier ones) and sensor readings, then
 * compares the whole snapshot with one recomputed here with plain loops over
 * the latest summary of each id, straight from the definitions of
 * docs/kpis.md.  The times are drawn mostly on a minute grid and at the
 * edges of the windows (exactly 1 h, 24 h, 72 h, 30 days, midnight, and a
 * microsecond either side), so that the edges are met often as the clock
 * moves.  Every few rounds kpi_prune must leave the snapshot as it was and
 * keep every call and ticket that a KPI still counts.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kpi.h"
#include "sensors.h"
#include "kpitest.h"

/* The sensor registry the aggregator reads sensors.* from. */
static struct sensors *registry;

#define ROUNDS 100
#define CALLS_PER_ROUND 30
#define TICKETS_PER_ROUND 30
#define READINGS_PER_ROUND 6
#define MAX_IDS (ROUNDS * (CALLS_PER_ROUND + TICKETS_PER_ROUND))
#define RECENT_IDS 300 /* updates pick among the latest ids */
#define NSENSORS 8
#define PRUNE_EVERY 7

/* ---- a small deterministic generator (xorshift64*) ---- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* A number in [0, n). */
static int64_t rnd(int64_t n)
{
	return (int64_t)(rnd64() % (uint64_t)n);
}

/* ---- what the test keeps: the latest summary of each id ---- */

static const char *const agencies[] = {"bpbd", "damkar", "dinkes", "dishub",
				       "pupr"};
static const char *const districts[] = {"Andir",    "Coblong", "Lengkong",
					"Sukajadi", "Sumur",   "Ujungberung"};

struct call_rec {
	char id[16];
	struct kpi_call s;
};

struct ticket_rec {
	char id[16];
	struct kpi_ticket s;
};

struct sensor_rec {
	struct ev_sensor_def def;
	bool has;
	int64_t at;
	double value;
};

static struct call_rec calls[MAX_IDS];
static struct ticket_rec tickets[MAX_IDS];
static struct sensor_rec sensors[NSENSORS];
static int ncalls, ntickets;
static int64_t sla_us[EV_RC_COUNT];

/* The day of a time in WIB, as a number of days since 1970-01-01. */
static int64_t wib_day(int64_t us)
{
	int64_t t = us + (int64_t)KT_WIB * KT_SEC;
	int64_t d = t / KT_DAY;

	return t % KT_DAY < 0 ? d - 1 : d;
}

static int64_t sla_of(int category)
{
	/* Only one category has an SLA of its own, and "other" keeps 72 h,
	 * so a ticket without a category is 72 h whichever rule applies. */
	return category >= 0 ? sla_us[category] : 72 * KT_HOUR;
}

/* ---- random summaries ---- */

/* How long ago something happened: window edges, or anywhere. */
static int64_t call_age(int64_t now)
{
	int64_t midnight = now - (now + (int64_t)KT_WIB * KT_SEC) % KT_DAY;

	switch (rnd(12)) {
	case 0:
		return 0;
	case 1:
		return -rnd(6) * KT_MIN; /* up to 5 min in the future */
	case 2:
		return KT_HOUR + rnd(3) - 1;
	case 3:
		return KT_DAY + rnd(3) - 1;
	case 4:
		return now - midnight + rnd(3) - 1;
	case 5:
		return rnd(120) * KT_MIN;
	case 6:
		return rnd(48) * KT_HOUR;
	case 7:
		return rnd(3 * 1440) * KT_MIN;
	case 8:
		return rnd(40) * KT_DAY + rnd(1440) * KT_MIN;
	default:
		return rnd(90) * KT_MIN + rnd(2) * rnd(KT_MIN);
	}
}

static int64_t wait_us(void)
{
	switch (rnd(6)) {
	case 0:
		return 20 * KT_SEC;
	case 1:
		return 20 * KT_SEC + 1;
	case 2:
		return 20 * KT_SEC - 1;
	case 3:
		return rnd(60) * KT_SEC;
	case 4:
		return 0;
	default:
		return rnd(600 * KT_SEC);
	}
}

static void random_call(struct call_rec *c, bool update, int64_t now)
{
	struct kpi_call *s = &c->s;
	int64_t received = s->received_us;

	/* An update keeps the received time, or moves it earlier when an
	 * earlier event arrived late, or is a summary unlike the last. */
	if (!update || rnd(4) == 0)
		received = now - call_age(now);
	else if (rnd(8) == 0)
		received -= rnd(30) * KT_MIN;
	s->call_id = c->id;
	s->received_us = received;
	s->status = (int)rnd(EV_CALL_STATUS_COUNT);
	s->category = (int)rnd(EV_CC_COUNT + 1) - 1;
	s->answered_us = KPI_NONE;
	s->abandoned_us = KPI_NONE;
	if (s->status == EV_CALL_ANSWERED ||
	    (s->status == EV_CALL_CLOSED && rnd(2))) {
		if (rnd(5) == 0) {
			/* Answered at the edge of the hour. */
			s->answered_us = now - KT_HOUR + rnd(3) - 1;
			s->received_us = s->answered_us - wait_us();
		} else {
			s->answered_us = s->received_us + wait_us();
		}
	} else if (s->status == EV_CALL_ABANDONED ||
		   s->status == EV_CALL_CLOSED) {
		if (rnd(5) == 0) {
			s->abandoned_us = now - KT_HOUR + rnd(3) - 1;
			s->received_us = s->abandoned_us - rnd(120) * KT_SEC;
		} else {
			s->abandoned_us = s->received_us + rnd(300) * KT_SEC;
		}
		/* Answered, then the caller hung up on hold. */
		if (rnd(6) == 0)
			s->answered_us = s->received_us + wait_us();
	}
}

static int64_t ticket_age(int64_t now, int category)
{
	int64_t midnight = now - (now + (int64_t)KT_WIB * KT_SEC) % KT_DAY;

	switch (rnd(10)) {
	case 0:
		return 0;
	case 1:
		return -rnd(6) * KT_MIN;
	case 2:
		return sla_of(category) + rnd(3) - 1;
	case 3:
		return 72 * KT_HOUR + rnd(3) - 1;
	case 4:
		return now - midnight + rnd(3) - 1;
	case 5:
		return rnd(100) * KT_HOUR;
	case 6:
		return rnd(40) * KT_DAY + rnd(1440) * KT_MIN;
	default:
		return rnd(6 * 1440) * KT_MIN;
	}
}

/* How long ago a ticket was resolved. */
static int64_t resolved_age(int64_t now)
{
	int64_t midnight = now - (now + (int64_t)KT_WIB * KT_SEC) % KT_DAY;

	switch (rnd(7)) {
	case 0:
		return 0;
	case 1:
		return 30 * KT_DAY + rnd(3) - 1;
	case 2:
		return now - midnight + rnd(3) - 1;
	case 3:
		return rnd(120) * KT_MIN;
	case 4:
		return rnd(35) * KT_DAY + rnd(1440) * KT_MIN;
	default:
		return rnd(4 * 1440) * KT_MIN;
	}
}

static int64_t resolution_us(int category)
{
	switch (rnd(6)) {
	case 0:
		return sla_of(category) + rnd(3) - 1;
	case 1:
		return 72 * KT_HOUR + rnd(3) - 1;
	case 2:
		return rnd(10) * KT_HOUR; /* equal durations, for the median */
	case 3:
		return rnd(200) * KT_HOUR + rnd(60) * KT_MIN;
	default:
		return rnd(600) * KT_MIN;
	}
}

static void random_ticket(struct ticket_rec *t, bool update, int64_t now)
{
	struct kpi_ticket *s = &t->s;
	int64_t received = s->received_us, resolved = s->resolved_us;

	s->ticket = t->id;
	s->status = (int)rnd(EV_REPORT_STATUS_COUNT);
	if (!update || rnd(3) == 0)
		s->category = (int)rnd(EV_RC_COUNT + 1) - 1;
	if (!update || rnd(4) == 0) {
		int64_t i = rnd(7);
		s->district = i < 6 ? districts[i] : NULL;
	}
	if (!update || rnd(4) == 0) {
		int64_t i = rnd(6);
		s->agency = i < 5 ? agencies[i] : NULL;
	}
	s->dispatched =
	    s->status != EV_REPORT_RECEIVED ? rnd(8) != 0 : rnd(8) == 0;
	if (update && rnd(2)) {
		/* The same ticket moving on: received_at stays, resolved_at
		 * is the latest resolution, kept when reopened. */
		if (s->status == EV_REPORT_RESOLVED) {
			resolved = now - rnd(3) * rnd(KT_HOUR);
			if (resolved < received)
				resolved = received;
		}
	} else if (s->status == EV_REPORT_RESOLVED || rnd(4) == 0) {
		resolved = now - resolved_age(now);
		received = resolved - resolution_us(s->category);
	} else {
		received = now - ticket_age(now, s->category);
		resolved = KPI_NONE;
	}
	s->received_us = received;
	s->resolved_us = resolved;
	if (s->status == EV_REPORT_RESOLVED && s->resolved_us == KPI_NONE)
		s->resolved_us = received + resolution_us(s->category);
	if (s->resolved_us > now + 5 * KT_MIN)
		s->resolved_us = now;
}

/* ---- sensors ---- */

static void define_sensor(struct kpi *k, int i, int64_t now, struct note *n)
{
	struct sensor_rec *r = &sensors[i];
	static const int offline[] = {60, 600, 900, 3600};
	double base = (double)(1 + rnd(4)) * 50.0;

	memset(&r->def, 0, sizeof r->def);
	snprintf(r->def.sensor_id, sizeof r->def.sensor_id, "sensor-%02d",
		 (i * 5) % NSENSORS); /* defined out of id order */
	snprintf(r->def.name, sizeof r->def.name, "Sensor %d", i);
	snprintf(r->def.metric, sizeof r->def.metric, "water_level");
	snprintf(r->def.unit, sizeof r->def.unit, "cm");
	r->def.thresholds[0] = base;
	r->def.thresholds[1] = base + 50;
	r->def.thresholds[2] = base + 100;
	switch (rnd(4)) {
	case 0:
		r->def.thresholds[0] = NAN; /* no waspada */
		break;
	case 1:
		r->def.thresholds[2] = NAN; /* no awas */
		break;
	default:
		break;
	}
	r->def.offline_after_s = offline[rnd(4)];
	if (sensors_define(registry, &r->def, now) != 0)
		note_add(n, "sensors_define failed");
}

static void random_reading(struct kpi *k, int64_t now, struct note *n)
{
	/* The last sensor never reports. */
	struct sensor_rec *r = &sensors[rnd(NSENSORS - 1)];
	int64_t off = (int64_t)r->def.offline_after_s * KT_SEC;
	int64_t at;
	double v;
	bool want, got;

	switch (rnd(5)) {
	case 0:
		at = now;
		break;
	case 1:
		at = now - off + rnd(3) - 1;
		break;
	case 2:
		at = r->has ? r->at : now; /* a tie of times */
		break;
	case 3:
		at = now - rnd(2 * KT_DAY);
		break;
	default:
		at = now - rnd(3600) * KT_SEC;
		break;
	}
	if (rnd(2)) {
		double th = r->def.thresholds[rnd(3)];
		v = (isnan(th) ? 100.0 : th) + (double)(rnd(3) - 1) * 0.001;
	} else {
		v = (double)rnd(40000) / 100.0;
	}
	want = !r->has || at > r->at || (at == r->at && v > r->value);
	got = sensors_apply_reading(registry, r->def.sensor_id, at, v);
	/* The same reading twice is neither older nor newer: either answer
	 * is acceptable, and the state is the same. */
	if (r->has && at == r->at && v == r->value)
		return;
	if (got != want) {
		char t[40];
		note_add(n, "sensors_apply_reading(%s, %s, %g): expected %s",
			 r->def.sensor_id, kt_time_str(at, t), v,
			 want ? "true" : "false");
	}
	if (want) {
		r->has = true;
		r->at = at;
		r->value = v;
	}
}

static int level_of(const double th[3], double v)
{
	for (int l = 2; l >= 0; l--)
		if (!isnan(th[l]) && v >= th[l])
			return l + 1;
	return 0;
}

/* ---- the brute force ---- */

static json_t *ratio(int64_t num, int64_t den)
{
	return den ? json_real((double)num / (double)den) : json_null();
}

struct agency_row {
	const char *name;
	int64_t open, overdue, resolved, met;
};

static int agency_row_cmp(const void *a, const void *b)
{
	const struct agency_row *x = a, *y = b;

	if (x->overdue != y->overdue)
		return x->overdue > y->overdue ? -1 : 1;
	if (x->open != y->open)
		return x->open > y->open ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int int64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static bool ticket_open(const struct kpi_ticket *s)
{
	return s->status != EV_REPORT_RESOLVED &&
	       s->status != EV_REPORT_REJECTED;
}

static bool resolved_30d(const struct kpi_ticket *s, int64_t now)
{
	return s->status == EV_REPORT_RESOLVED && s->resolved_us != KPI_NONE &&
	       s->resolved_us >= now - 30 * KT_DAY;
}

static void expect_calls(json_t *o, int64_t now)
{
	int64_t today = wib_day(now);
	int64_t received = 0, waiting = 0, active = 0, answered = 0;
	int64_t abandoned = 0, fast = 0, wait_sum = 0;
	int64_t by_cat[EV_CC_COUNT] = {0};
	json_t *cat = json_object();

	for (int i = 0; i < ncalls; i++) {
		const struct kpi_call *s = &calls[i].s;

		if (wib_day(s->received_us) == today) {
			received++;
			if (s->category >= 0)
				by_cat[s->category]++;
		}
		if (s->status == EV_CALL_RECEIVED &&
		    s->received_us >= now - KT_HOUR)
			waiting++;
		if ((s->status == EV_CALL_RECEIVED ||
		     s->status == EV_CALL_ANSWERED) &&
		    s->received_us >= now - KT_DAY)
			active++;
		if (s->answered_us != KPI_NONE &&
		    s->answered_us >= now - KT_HOUR) {
			int64_t w = s->answered_us - s->received_us;

			answered++;
			wait_sum += w;
			fast += w <= 20 * KT_SEC;
		}
		if (s->abandoned_us != KPI_NONE &&
		    s->abandoned_us >= now - KT_HOUR)
			abandoned++;
	}
	for (int c = 0; c < EV_CC_COUNT; c++)
		if (by_cat[c])
			json_object_set_new(cat, ev_category_name(EV_CALL, c),
					    json_integer(by_cat[c]));
	json_object_set_new(o, "calls.received_today", json_integer(received));
	json_object_set_new(o, "calls.waiting", json_integer(waiting));
	json_object_set_new(o, "calls.active", json_integer(active));
	json_object_set_new(o, "calls.answered_1h", json_integer(answered));
	json_object_set_new(o, "calls.abandoned_1h", json_integer(abandoned));
	json_object_set_new(o, "calls.abandon_rate_1h",
			    ratio(abandoned, answered + abandoned));
	json_object_set_new(
	    o, "calls.asa_1h_s",
	    answered ? json_real((double)wait_sum / (double)answered / 1e6)
		     : json_null());
	json_object_set_new(o, "calls.service_level_1h",
			    ratio(fast, answered + abandoned));
	json_object_set_new(o, "calls.by_category_today", cat);
}

static void expect_tickets(json_t *o, int64_t now)
{
	static int64_t durs[MAX_IDS];
	struct agency_row rows[5];
	int64_t today = wib_day(now);
	int64_t received = 0, open = 0, overdue = 0, unassigned = 0;
	int64_t resolved_today = 0, resolved = 0, met = 0;
	int64_t by_cat[EV_RC_COUNT] = {0}, by_district[6] = {0};
	json_t *cat = json_object(), *dist = json_object();
	json_t *list = json_array();
	size_t ndurs = 0, nrows = 0;

	for (int a = 0; a < 5; a++)
		rows[a] = (struct agency_row){agencies[a], 0, 0, 0, 0};
	for (int i = 0; i < ntickets; i++) {
		const struct kpi_ticket *s = &tickets[i].s;
		struct agency_row *row = NULL;

		for (int a = 0; a < 5; a++)
			if (s->agency && strcmp(s->agency, agencies[a]) == 0)
				row = &rows[a];
		if (wib_day(s->received_us) == today)
			received++;
		if (s->status == EV_REPORT_RESOLVED &&
		    s->resolved_us != KPI_NONE &&
		    wib_day(s->resolved_us) == today)
			resolved_today++;
		if (ticket_open(s)) {
			bool late = s->received_us < now - sla_of(s->category);

			open++;
			overdue += late;
			unassigned += !s->dispatched;
			if (s->category >= 0)
				by_cat[s->category]++;
			for (int d = 0; d < 6; d++)
				if (s->district &&
				    strcmp(s->district, districts[d]) == 0)
					by_district[d]++;
			if (row) {
				row->open++;
				row->overdue += late;
			}
		}
		if (resolved_30d(s, now)) {
			int64_t dur = s->resolved_us - s->received_us;
			bool within = dur <= sla_of(s->category);

			resolved++;
			met += within;
			durs[ndurs++] = dur;
			if (row) {
				row->resolved++;
				row->met += within;
			}
		}
	}
	for (int c = 0; c < EV_RC_COUNT; c++)
		if (by_cat[c])
			json_object_set_new(cat, ev_category_name(EV_REPORT, c),
					    json_integer(by_cat[c]));
	for (int d = 0; d < 6; d++)
		if (by_district[d])
			json_object_set_new(dist, districts[d],
					    json_integer(by_district[d]));
	for (int a = 0; a < 5; a++)
		if (rows[a].open || rows[a].resolved)
			rows[nrows++] = rows[a];
	qsort(rows, nrows, sizeof rows[0], agency_row_cmp);
	for (size_t a = 0; a < nrows; a++)
		json_array_append_new(
		    list, json_pack("{s:s, s:I, s:I, s:I, s:o}", "agency",
				    rows[a].name, "open",
				    (json_int_t)rows[a].open, "overdue",
				    (json_int_t)rows[a].overdue, "resolved_30d",
				    (json_int_t)rows[a].resolved, "sla_met_30d",
				    ratio(rows[a].met, rows[a].resolved)));
	json_object_set_new(o, "reports.received_today",
			    json_integer(received));
	json_object_set_new(o, "reports.open", json_integer(open));
	json_object_set_new(o, "reports.overdue", json_integer(overdue));
	json_object_set_new(o, "reports.unassigned", json_integer(unassigned));
	json_object_set_new(o, "reports.resolved_today",
			    json_integer(resolved_today));
	json_object_set_new(o, "reports.sla_met_30d", ratio(met, resolved));
	if (ndurs == 0) {
		json_object_set_new(o, "reports.resolution_p50_30d_h",
				    json_null());
	} else {
		double mid;

		qsort(durs, ndurs, sizeof durs[0], int64_cmp);
		if (ndurs % 2)
			mid = (double)durs[ndurs / 2];
		else
			mid = ((double)durs[ndurs / 2 - 1] +
			       (double)durs[ndurs / 2]) /
			      2.0;
		json_object_set_new(o, "reports.resolution_p50_30d_h",
				    json_real(mid / (double)KT_HOUR));
	}
	json_object_set_new(o, "reports.by_agency", list);
	json_object_set_new(o, "reports.by_category_open", cat);
	json_object_set_new(o, "reports.by_district_open", dist);
}

static int sensor_rec_cmp(const void *a, const void *b)
{
	const struct sensor_rec *x = *(struct sensor_rec *const *)a;
	const struct sensor_rec *y = *(struct sensor_rec *const *)b;

	return strcmp(x->def.sensor_id, y->def.sensor_id);
}

static void sensors_in_order(struct sensor_rec *order[NSENSORS])
{
	for (int i = 0; i < NSENSORS; i++)
		order[i] = &sensors[i];
	qsort(order, NSENSORS, sizeof order[0], sensor_rec_cmp);
}

static bool sensor_online(const struct sensor_rec *r, int64_t now)
{
	return r->has &&
	       now - r->at <= (int64_t)r->def.offline_after_s * KT_SEC;
}

static void expect_sensors(json_t *o, int64_t now)
{
	static const char *const names[] = {"normal", "waspada", "siaga",
					    "awas"};
	struct sensor_rec *order[NSENSORS];
	int64_t by_level[4] = {0}, offline = 0;
	json_t *latest = json_array();

	sensors_in_order(order);
	for (int i = 0; i < NSENSORS; i++) {
		const struct sensor_rec *r = order[i];
		bool online = sensor_online(r, now);
		int level = r->has ? level_of(r->def.thresholds, r->value) : 0;
		char at[40];

		if (online)
			by_level[level]++;
		else
			offline++;
		if (r->has)
			ev_time_format(r->at, KT_WIB, at);
		json_array_append_new(
		    latest,
		    json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}",
			      "sensor_id", r->def.sensor_id, "name",
			      r->def.name, "metric", r->def.metric, "unit",
			      r->def.unit, "value",
			      r->has ? json_real(r->value) : json_null(), "at",
			      r->has ? json_string(at) : json_null(), "level",
			      r->has ? json_string(names[level]) : json_null(),
			      "online", online));
	}
	json_object_set_new(o, "sensors.total", json_integer(NSENSORS));
	json_object_set_new(o, "sensors.offline", json_integer(offline));
	json_object_set_new(o, "sensors.by_level",
			    json_pack("{s:I, s:I, s:I, s:I}", "normal",
				      (json_int_t)by_level[0], "waspada",
				      (json_int_t)by_level[1], "siaga",
				      (json_int_t)by_level[2], "awas",
				      (json_int_t)by_level[3]));
	json_object_set_new(o, "sensors.latest", latest);
}

/* What the alert rules read: the same state through sensors_view. */
static void check_views(struct kpi *k, int64_t now, struct note *n)
{
	struct sensor_rec *order[NSENSORS];

	if (sensors_count(registry) != NSENSORS) {
		note_add(n, "sensors_count: expected %d, got %d", NSENSORS,
			 sensors_count(registry));
		return;
	}
	if (sensors_known(registry, "sensor-99"))
		note_add(n, "sensors_known: sensor-99 is not registered");
	sensors_in_order(order);
	for (int i = 0; i < NSENSORS; i++) {
		const struct sensor_rec *r = order[i];
		const char *id = r->def.sensor_id;
		struct sensor_view v;
		int level = r->has ? level_of(r->def.thresholds, r->value) : 0;

		sensors_view(registry, i, now, &v);
		if (strcmp(v.sensor_id, id) != 0 ||
		    strcmp(sensors_def(registry, i)->sensor_id, id) != 0) {
			note_add(n, "sensor %d: expected %s, got %s", i, id,
				 v.sensor_id);
			continue;
		}
		if (!sensors_known(registry, id))
			note_add(n, "sensors_known(%s) is false", id);
		if (v.has_reading != r->has ||
		    (r->has && (v.value != r->value || v.at_us != r->at ||
				v.silent_since_us != r->at)))
			note_add(n, "view of %s: wrong latest reading", id);
		if ((int)v.level != level)
			note_add(n, "view of %s: level %d, expected %d", id,
				 (int)v.level, level);
		if (v.online != sensor_online(r, now))
			note_add(n, "view of %s: online %d, expected %d", id,
				 v.online, !v.online);
		if (v.offline_after_s != r->def.offline_after_s ||
		    strcmp(v.name, r->def.name) != 0 ||
		    strcmp(v.unit, r->def.unit) != 0)
			note_add(n, "view of %s: wrong registry entry", id);
	}
}

static json_t *expected(int64_t now)
{
	json_t *o = json_object();

	expect_calls(o, now);
	expect_tickets(o, now);
	expect_sensors(o, now);
	return o;
}

/* ---- what kpi_prune may forget ---- */

/* Whether a KPI counts the call now; such a call must stay held. */
static bool call_live(const struct kpi_call *s, int64_t now)
{
	return wib_day(s->received_us) >= wib_day(now) ||
	       ((s->status == EV_CALL_RECEIVED ||
		 s->status == EV_CALL_ANSWERED) &&
		s->received_us >= now - KT_DAY) ||
	       (s->answered_us != KPI_NONE &&
		s->answered_us >= now - KT_HOUR) ||
	       (s->abandoned_us != KPI_NONE &&
		s->abandoned_us >= now - KT_HOUR);
}

static bool ticket_live(const struct kpi_ticket *s, int64_t now)
{
	return ticket_open(s) || wib_day(s->received_us) >= wib_day(now) ||
	       resolved_30d(s, now) ||
	       (s->status == EV_REPORT_RESOLVED && s->resolved_us != KPI_NONE &&
		wib_day(s->resolved_us) >= wib_day(now));
}

/*
 * What a pruning may keep besides: anything touching yesterday too, as a
 * margin, but nothing older that no KPI counts.
 */
static bool recent(int64_t us, int64_t now)
{
	return us != KPI_NONE && wib_day(us) >= wib_day(now) - 1;
}

static void check_prune(struct kpi *k, int64_t now, struct note *n)
{
	json_t *before = kpi_snapshot(k, now), *after;
	size_t live_calls = 0, max_calls = 0, live_tickets = 0;
	size_t max_tickets = 0, held;

	kpi_prune(k, now);
	after = kpi_snapshot(k, now);
	kt_match(before, after, "snapshot after prune", n);
	json_decref(before);
	json_decref(after);
	for (int i = 0; i < ncalls; i++) {
		const struct kpi_call *s = &calls[i].s;
		bool live = call_live(s, now);

		live_calls += live;
		max_calls += live || recent(s->received_us, now);
	}
	for (int i = 0; i < ntickets; i++) {
		const struct kpi_ticket *s = &tickets[i].s;
		bool live = ticket_live(s, now);

		live_tickets += live;
		max_tickets += live || recent(s->received_us, now) ||
			       recent(s->resolved_us, now);
	}
	held = kpi_calls_held(k);
	if (held < live_calls || held > max_calls)
		note_add(n,
			 "kpi_calls_held after prune: %zu, expected %zu to "
			 "%zu",
			 held, live_calls, max_calls);
	held = kpi_tickets_held(k);
	if (held < live_tickets || held > max_tickets)
		note_add(n,
			 "kpi_tickets_held after prune: %zu, expected %zu to "
			 "%zu",
			 held, live_tickets, max_tickets);
}

/* ---- the rounds ---- */

static int64_t step_us(void)
{
	static const int64_t steps[] = {
	    0,		1,	     KT_MIN,	 17 * KT_MIN,
	    KT_HOUR,	6 * KT_HOUR, KT_DAY,	 3 * KT_DAY,
	    7 * KT_DAY, KT_HOUR - 1, KT_DAY + 1, 59 * KT_MIN,
	};

	return steps[rnd(sizeof steps / sizeof steps[0])];
}

static int pick(int n, bool *update)
{
	int recent_ids = n < RECENT_IDS ? n : RECENT_IDS;

	*update = n > 0 && (n >= MAX_IDS || rnd(2) == 0);
	return *update ? n - 1 - (int)rnd(recent_ids) : n;
}

int main(int argc, char **argv)
{
	struct tap tap = {0, 0};
	struct kpi_config cfg = {.tz_offset_s = KT_WIB};
	struct kpi *k;
	int64_t now;
	const char *start = "2026-11-01T06:00:00+07:00";
	bool pruned = false;

	rng_state = argc > 1 ? strtoull(argv[1], NULL, 0) : 20261123;
	if (rng_state == 0)
		rng_state = 1;
	printf("# seed %" PRIu64 "\n", rng_state);
	if (ev_time_parse(start, strlen(start), &now) != 0)
		return 2;
	for (int c = 0; c < EV_RC_COUNT; c++)
		sla_us[c] = 72 * KT_HOUR;
	sla_us[EV_RC_ROAD] = 24 * KT_HOUR;
	memcpy(cfg.sla_us, sla_us, sizeof sla_us);
	registry = sensors_new(KT_WIB);
	cfg.sensors = registry;
	k = registry ? kpi_new(&cfg) : NULL;
	if (!k)
		return 2;

	struct note setup = {"", 0, 0};
	for (int i = 0; i < NSENSORS; i++)
		define_sensor(k, i, now, &setup);
	tap_case(&tap, "define sensors", &setup);

	for (int round = 1; round <= ROUNDS; round++) {
		struct note n = {"", 0, 0};
		char name[120], t[40];
		json_t *want, *got;

		now += step_us();
		for (int i = 0; i < CALLS_PER_ROUND; i++) {
			bool update;
			int j = pick(ncalls, &update);
			struct call_rec *c = &calls[j];

			if (!update) {
				snprintf(c->id, sizeof c->id, "call-%d", j);
				ncalls++;
			}
			random_call(c, update, now);
			if (kpi_apply_call(k, &c->s, now) != 0)
				note_add(&n, "kpi_apply_call failed");
		}
		for (int i = 0; i < TICKETS_PER_ROUND; i++) {
			bool update;
			int j = pick(ntickets, &update);
			struct ticket_rec *tr = &tickets[j];

			if (!update) {
				snprintf(tr->id, sizeof tr->id, "T-%05d", j);
				ntickets++;
			}
			random_ticket(tr, update, now);
			if (kpi_apply_ticket(k, &tr->s, now) != 0)
				note_add(&n, "kpi_apply_ticket failed");
		}
		for (int i = 0; i < READINGS_PER_ROUND; i++)
			random_reading(k, now, &n);
		if (rnd(10) == 0)
			define_sensor(k, (int)rnd(NSENSORS), now, &n);

		/* Nothing is forgotten before the first prune. */
		if (!pruned && (kpi_calls_held(k) != (size_t)ncalls ||
				kpi_tickets_held(k) != (size_t)ntickets))
			note_add(&n,
				 "held %zu calls and %zu tickets, "
				 "expected %d and %d",
				 kpi_calls_held(k), kpi_tickets_held(k), ncalls,
				 ntickets);

		want = expected(now);
		got = kpi_snapshot(k, now);
		kt_check_keys(got, "snapshot", &n);
		kt_match(want, got, "snapshot", &n);
		json_decref(want);
		json_decref(got);
		check_views(k, now, &n);
		if (round % PRUNE_EVERY == 0) {
			check_prune(k, now, &n);
			pruned = true;
		}
		snprintf(name, sizeof name,
			 "round %d @%s: %d calls, %d tickets", round,
			 kt_time_str(now, t), ncalls, ntickets);
		tap_case(&tap, name, &n);
	}
	kpi_free(k);
	sensors_free(registry);
	return tap_done(&tap);
}
