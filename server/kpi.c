#include "kpi.h"

#include "sensors.h"

#include "hmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEC_US INT64_C(1000000)
#define HOUR_US (3600 * SEC_US)
#define DAY_US (24 * HOUR_US)
#define DAYS 64 /* day counters kept, a ring */
#define SERVICE_LEVEL_US (20 * SEC_US)

/*
 * How the aggregator stays incremental.  Every call and ticket contributes
 * to counters.  Applying a new summary first withdraws the entity's old
 * contributions, then adds the new ones, so each counter always equals the
 * sum over the entities held.  Contributions of three kinds:
 *
 *  - plain counters (open tickets, by category, district, agency);
 *  - day counters, in a ring of days in the tenant's zone ("today");
 *  - window memberships: the entity counts while t + width >= now.  Each
 *    membership pushes (t + width) on a min-heap; kpi_advance pops what has
 *    expired and withdraws it.  A membership withdrawn earlier bumps a
 *    generation number, so its stale heap entry is ignored when popped.
 */

enum win_kind {
	/* calls */
	W_WAITING,
	W_ACTIVE,
	W_ANSWERED,
	W_ABANDONED,
	/* tickets */
	W_NOTDUE = 0,
	W_RESOLVED,
	W_COUNT = 4
};

struct ent {
	uint32_t gen[W_COUNT];
	uint8_t in; /* bit per window kind: counted now */
	bool ticket;
	bool held; /* has a state whose contributions are counted */
	bool dead; /* pruned from its map; freed at refs == 0 */
	int refs;  /* heap entries pointing here */
	char *id;
};

struct call {
	struct ent e;
	struct kpi_call s; /* strings of s are not used */
};

struct agency {
	char *name;
	int64_t open, notdue, resolved30, met30;
};

struct district {
	char *name;
	int64_t open;
};

struct ticket {
	struct ent e;
	struct kpi_ticket s; /* s.district and s.agency point below */
	struct district *district;
	struct agency *agency;
	bool within_sla;
	/* Node of the order-statistic tree of resolution times. */
	struct ticket *left, *right;
	uint32_t prio;
	size_t size;
	int64_t dur_us;
};

struct heap_item {
	int64_t expire_us;
	struct ent *e;
	uint32_t gen;
	uint8_t kind;
};

struct day {
	int64_t day;
	int64_t calls;
	int64_t calls_cat[EV_CC_COUNT];
	int64_t reports;
	int64_t resolved;
};

struct kpi {
	struct kpi_config cfg;
	int64_t now;
	struct hmap calls, tickets, agencies, districts;
	struct heap_item *heap;
	size_t heap_len, heap_cap;
	struct day days[DAYS];
	uint32_t rng;

	/* calls */
	int64_t waiting, active, answered, abandoned, answered_fast;
	int64_t wait_sum_us;
	/* tickets */
	int64_t open, notdue, unassigned, resolved30, met30;
	int64_t open_cat[EV_RC_COUNT];
	struct ticket *tree;
};

static int64_t local_day(const struct kpi *k, int64_t us)
{
	return kpi_floor_div(us + (int64_t)k->cfg.tz_offset_s * SEC_US, DAY_US);
}

/* The counters of a day, or NULL when the day has left the ring. */
static struct day *day_get(struct kpi *k, int64_t day, bool create)
{
	struct day *d = &k->days[(day % DAYS + DAYS) % DAYS];

	if (d->day == day)
		return d;
	if (!create || day < d->day)
		return NULL;
	memset(d, 0, sizeof(*d));
	d->day = day;
	return d;
}

/* ---- the heap of window expiries ---- */

static bool heap_less(const struct heap_item *a, const struct heap_item *b)
{
	return a->expire_us < b->expire_us;
}

/* Makes room for n more entries, so that the pushes that follow cannot
 * fail half-way through an update. */
static int heap_reserve(struct kpi *k, size_t n)
{
	if (k->heap_len + n > k->heap_cap) {
		size_t cap = k->heap_cap ? k->heap_cap * 2 : 1024;
		struct heap_item *h = realloc(k->heap, cap * sizeof(*h));
		if (!h)
			return -1;
		k->heap = h;
		k->heap_cap = cap;
	}
	return 0;
}

static int heap_push(struct kpi *k, struct heap_item it)
{
	if (heap_reserve(k, 1) < 0)
		return -1;
	size_t i = k->heap_len++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(&it, &k->heap[p]))
			break;
		k->heap[i] = k->heap[p];
		i = p;
	}
	k->heap[i] = it;
	it.e->refs++;
	return 0;
}

static struct heap_item heap_pop(struct kpi *k)
{
	struct heap_item top = k->heap[0];
	struct heap_item last = k->heap[--k->heap_len];
	size_t i = 0, n = k->heap_len;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && heap_less(&k->heap[c + 1], &k->heap[c]))
			c++;
		if (!heap_less(&k->heap[c], &last))
			break;
		k->heap[i] = k->heap[c];
		i = c;
	}
	if (n > 0)
		k->heap[i] = last;
	return top;
}

/* ---- the order-statistic tree (a treap) of resolution times ---- */

static size_t tsize(const struct ticket *t)
{
	return t ? t->size : 0;
}

static void tfix(struct ticket *t)
{
	t->size = 1 + tsize(t->left) + tsize(t->right);
}

static bool tless(const struct ticket *a, const struct ticket *b)
{
	return a->dur_us < b->dur_us || (a->dur_us == b->dur_us && a < b);
}

static void tsplit(struct ticket *t, const struct ticket *key,
		   struct ticket **l, struct ticket **r)
{
	if (!t) {
		*l = *r = NULL;
	} else if (tless(t, key)) {
		tsplit(t->right, key, &t->right, r);
		*l = t;
		tfix(t);
	} else {
		tsplit(t->left, key, l, &t->left);
		*r = t;
		tfix(t);
	}
}

static struct ticket *tmerge(struct ticket *l, struct ticket *r)
{
	if (!l || !r)
		return l ? l : r;
	if (l->prio > r->prio) {
		l->right = tmerge(l->right, r);
		tfix(l);
		return l;
	}
	r->left = tmerge(l, r->left);
	tfix(r);
	return r;
}

static void tree_insert(struct kpi *k, struct ticket *t)
{
	struct ticket *l, *r;

	k->rng = k->rng * 1103515245u + 12345u;
	t->prio = k->rng;
	t->left = t->right = NULL;
	t->size = 1;
	tsplit(k->tree, t, &l, &r);
	k->tree = tmerge(tmerge(l, t), r);
}

static struct ticket *tremove(struct ticket *root, struct ticket *t)
{
	if (root == t)
		return tmerge(t->left, t->right);
	if (tless(t, root))
		root->left = tremove(root->left, t);
	else
		root->right = tremove(root->right, t);
	tfix(root);
	return root;
}

static int64_t tree_kth(const struct ticket *t, size_t i)
{
	for (;;) {
		size_t ls = tsize(t->left);
		if (i < ls) {
			t = t->left;
		} else if (i == ls) {
			return t->dur_us;
		} else {
			i -= ls + 1;
			t = t->right;
		}
	}
}

/* ---- contributions of calls ---- */

static bool call_eligible(const struct call *c, int kind, int64_t *t,
			  int64_t *width)
{
	const struct kpi_call *s = &c->s;

	switch (kind) {
	case W_WAITING:
		*t = s->received_us;
		*width = HOUR_US;
		return s->status == EV_CALL_RECEIVED;
	case W_ACTIVE:
		*t = s->received_us;
		*width = DAY_US;
		return s->status == EV_CALL_RECEIVED ||
		       s->status == EV_CALL_ANSWERED;
	case W_ANSWERED:
		*t = s->answered_us;
		*width = HOUR_US;
		return s->answered_us != KPI_NONE;
	default:
		*t = s->abandoned_us;
		*width = HOUR_US;
		return s->abandoned_us != KPI_NONE;
	}
}

static void call_window(struct kpi *k, struct call *c, int kind, int sign)
{
	const struct kpi_call *s = &c->s;
	int64_t wait;

	switch (kind) {
	case W_WAITING:
		k->waiting += sign;
		break;
	case W_ACTIVE:
		k->active += sign;
		break;
	case W_ANSWERED:
		wait = s->answered_us - s->received_us;
		k->answered += sign;
		k->wait_sum_us += sign * wait;
		if (wait <= SERVICE_LEVEL_US)
			k->answered_fast += sign;
		break;
	default:
		k->abandoned += sign;
		break;
	}
}

static void call_days(struct kpi *k, struct call *c, int sign)
{
	struct day *d = day_get(k, local_day(k, c->s.received_us), sign > 0);

	if (!d)
		return;
	d->calls += sign;
	if (c->s.category >= 0)
		d->calls_cat[c->s.category] += sign;
}

/* ---- contributions of tickets ---- */

static bool ticket_open(const struct kpi_ticket *s)
{
	return s->status != EV_REPORT_RESOLVED &&
	       s->status != EV_REPORT_REJECTED;
}

static int64_t ticket_sla(const struct kpi *k, const struct kpi_ticket *s)
{
	return s->category >= 0 ? k->cfg.sla_us[s->category]
				: k->cfg.sla_us[EV_RC_OTHER];
}

static bool ticket_eligible(const struct kpi *k, const struct ticket *t,
			    int kind, int64_t *at, int64_t *width)
{
	const struct kpi_ticket *s = &t->s;

	if (kind == W_NOTDUE) {
		/* Not yet overdue while received_at >= now - SLA. */
		*at = s->received_us;
		*width = ticket_sla(k, s);
		return ticket_open(s);
	}
	*at = s->resolved_us;
	*width = 30 * DAY_US;
	return s->status == EV_REPORT_RESOLVED && s->resolved_us != KPI_NONE;
}

static void ticket_window(struct kpi *k, struct ticket *t, int kind, int sign)
{
	if (kind == W_NOTDUE) {
		k->notdue += sign;
		if (t->agency)
			t->agency->notdue += sign;
		return;
	}
	k->resolved30 += sign;
	k->met30 += sign * t->within_sla;
	if (t->agency) {
		t->agency->resolved30 += sign;
		t->agency->met30 += sign * t->within_sla;
	}
	if (sign > 0)
		tree_insert(k, t);
	else
		k->tree = tremove(k->tree, t);
}

static void ticket_plain(struct kpi *k, struct ticket *t, int sign)
{
	const struct kpi_ticket *s = &t->s;
	struct day *d;

	if ((d = day_get(k, local_day(k, s->received_us), sign > 0)))
		d->reports += sign;
	if (s->status == EV_REPORT_RESOLVED && s->resolved_us != KPI_NONE &&
	    (d = day_get(k, local_day(k, s->resolved_us), sign > 0)))
		d->resolved += sign;
	if (!ticket_open(s))
		return;
	k->open += sign;
	if (!s->dispatched)
		k->unassigned += sign;
	if (s->category >= 0)
		k->open_cat[s->category] += sign;
	if (t->district)
		t->district->open += sign;
	if (t->agency)
		t->agency->open += sign;
}

/* ---- memberships, common to both ---- */

static bool eligible(const struct kpi *k, struct ent *e, int kind, int64_t *t,
		     int64_t *width)
{
	if (e->ticket)
		return ticket_eligible(k, (struct ticket *)e, kind, t, width);
	if (kind > W_ABANDONED)
		return false;
	return call_eligible((struct call *)e, kind, t, width);
}

static void window(struct kpi *k, struct ent *e, int kind, int sign)
{
	if (e->ticket)
		ticket_window(k, (struct ticket *)e, kind, sign);
	else
		call_window(k, (struct call *)e, kind, sign);
}

static int kinds(const struct ent *e)
{
	return e->ticket ? 2 : 4;
}

static void withdraw(struct kpi *k, struct ent *e)
{
	if (!e->held)
		return;
	for (int kind = 0; kind < kinds(e); kind++) {
		if (e->in & (1u << kind)) {
			window(k, e, kind, -1);
			e->in &= (uint8_t) ~(1u << kind);
		}
		e->gen[kind]++;
	}
	if (e->ticket)
		ticket_plain(k, (struct ticket *)e, -1);
	else
		call_days(k, (struct call *)e, -1);
}

static int contribute(struct kpi *k, struct ent *e)
{
	int rc = 0;

	e->held = true;
	if (e->ticket)
		ticket_plain(k, (struct ticket *)e, +1);
	else
		call_days(k, (struct call *)e, +1);
	for (int kind = 0; kind < kinds(e); kind++) {
		int64_t t, width;

		if (!eligible(k, e, kind, &t, &width) || t + width < k->now)
			continue;
		struct heap_item it = {t + width, e, e->gen[kind],
				       (uint8_t)kind};
		if (heap_push(k, it) < 0) {
			rc = -1;
			continue;
		}
		window(k, e, kind, +1);
		e->in |= (uint8_t)(1u << kind);
	}
	return rc;
}

static void ent_release(struct ent *e)
{
	if (e->dead && e->refs == 0) {
		free(e->id);
		free(e);
	}
}

void kpi_advance(struct kpi *k, int64_t now)
{
	if (now > k->now)
		k->now = now;
	while (k->heap_len > 0 && k->heap[0].expire_us < k->now) {
		struct heap_item it = heap_pop(k);
		struct ent *e = it.e;

		e->refs--;
		if (it.gen == e->gen[it.kind] && (e->in & (1u << it.kind))) {
			window(k, e, it.kind, -1);
			e->in &= (uint8_t) ~(1u << it.kind);
			e->gen[it.kind]++;
		}
		ent_release(e);
	}
}

/* ---- applying summaries ---- */

static struct ent *ent_lookup(struct hmap *m, const char *id, size_t size,
			      bool ticket)
{
	struct ent *e = hmap_get(m, id);

	if (e)
		return e;
	e = calloc(1, size);
	if (!e)
		return NULL;
	e->ticket = ticket;
	e->id = strdup(id);
	if (!e->id || hmap_put(m, e->id, e) < 0) {
		free(e->id);
		free(e);
		return NULL;
	}
	return e;
}

int kpi_apply_call(struct kpi *k, const struct kpi_call *c, int64_t now)
{
	struct call *x = (struct call *)ent_lookup(&k->calls, c->call_id,
						   sizeof(struct call), false);

	if (!x || heap_reserve(k, W_COUNT) < 0)
		return -1;
	kpi_advance(k, now);
	withdraw(k, &x->e);
	x->s = *c;
	x->s.call_id = x->e.id;
	return contribute(k, &x->e);
}

static struct agency *agency_get(struct kpi *k, const char *name)
{
	struct agency *a = hmap_get(&k->agencies, name);

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->name = strdup(name)) ||
	    hmap_put(&k->agencies, a->name, a) < 0) {
		if (a)
			free(a->name);
		free(a);
		return NULL;
	}
	return a;
}

static struct district *district_get(struct kpi *k, const char *name)
{
	struct district *d = hmap_get(&k->districts, name);

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->name = strdup(name)) ||
	    hmap_put(&k->districts, d->name, d) < 0) {
		if (d)
			free(d->name);
		free(d);
		return NULL;
	}
	return d;
}

int kpi_apply_ticket(struct kpi *k, const struct kpi_ticket *t, int64_t now)
{
	struct ticket *x;
	struct agency *a = NULL;
	struct district *d = NULL;

	if ((t->agency && !(a = agency_get(k, t->agency))) ||
	    (t->district && !(d = district_get(k, t->district))))
		return -1;
	x = (struct ticket *)ent_lookup(&k->tickets, t->ticket,
					sizeof(struct ticket), true);
	if (!x || heap_reserve(k, W_COUNT) < 0)
		return -1;
	kpi_advance(k, now);
	withdraw(k, &x->e);
	x->s = *t;
	x->s.ticket = x->e.id;
	x->agency = a;
	x->district = d;
	x->s.agency = a ? a->name : NULL;
	x->s.district = d ? d->name : NULL;
	if (t->resolved_us != KPI_NONE) {
		x->dur_us = t->resolved_us - t->received_us;
		x->within_sla = x->dur_us <= ticket_sla(k, t);
	}
	return contribute(k, &x->e);
}

/*
 * An entity no KPI can count any more: in no window, and its days older
 * than yesterday (the ring may still hold them, but only today is shown).
 * If a later event touches it again, the database returns its full
 * summary, so nothing is lost by forgetting it.
 */
static bool forgettable(const struct kpi *k, const struct ent *e)
{
	int64_t today = local_day(k, k->now);

	if (e->in)
		return false;
	if (!e->ticket)
		return local_day(k, ((const struct call *)e)->s.received_us) <
		       today - 1;
	const struct kpi_ticket *s = &((const struct ticket *)e)->s;
	if (ticket_open(s))
		return false;
	if (local_day(k, s->received_us) >= today - 1)
		return false;
	return s->resolved_us == KPI_NONE ||
	       local_day(k, s->resolved_us) < today - 1;
}

static void prune_map(struct kpi *k, struct hmap *m)
{
	const char *key;
	void *v;
	size_t pos = 0;

	while (hmap_next(m, &pos, &key, &v)) {
		struct ent *e = v;

		if (!forgettable(k, e))
			continue;
		/* Deletion shifts later slots back: look at this slot again. */
		hmap_del(m, key);
		pos--;
		e->dead = true;
		ent_release(e);
	}
}

void kpi_prune(struct kpi *k, int64_t now)
{
	kpi_advance(k, now);
	prune_map(k, &k->calls);
	prune_map(k, &k->tickets);
}

size_t kpi_calls_held(const struct kpi *k)
{
	return k->calls.len;
}

size_t kpi_tickets_held(const struct kpi *k)
{
	return k->tickets.len;
}

/* ---- levels ---- */

enum kpi_level kpi_level_of(const double th[3], double v)
{
	if (!isnan(th[2]) && v >= th[2])
		return KPI_AWAS;
	if (!isnan(th[1]) && v >= th[1])
		return KPI_SIAGA;
	if (!isnan(th[0]) && v >= th[0])
		return KPI_WASPADA;
	return KPI_NORMAL;
}

const char *kpi_level_name(enum kpi_level l)
{
	_Static_assert(KPI_LEVEL_COUNT == 1 + EV_THRESHOLDS,
		       "a level is normal or one of a ladder's thresholds");
	if (l == KPI_NORMAL)
		return "normal";
	return (unsigned)l < KPI_LEVEL_COUNT ? ev_threshold_names[l - 1] : NULL;
}

enum kpi_level kpi_level_parse(const char *name)
{
	for (int l = KPI_LEVEL_COUNT - 1; l > KPI_NORMAL; l--)
		if (name &&
		    strcmp(name, kpi_level_name((enum kpi_level)l)) == 0)
			return (enum kpi_level)l;
	return KPI_NORMAL;
}

/* ---- the snapshot ---- */

static json_t *ratio(int64_t num, int64_t den)
{
	return den > 0 ? json_real((double)num / (double)den) : json_null();
}

static int agency_cmp(const void *a, const void *b)
{
	const struct agency *x = *(struct agency *const *)a;
	const struct agency *y = *(struct agency *const *)b;
	int64_t ox = x->open - x->notdue, oy = y->open - y->notdue;

	if (ox != oy)
		return ox > oy ? -1 : 1;
	if (x->open != y->open)
		return x->open > y->open ? -1 : 1;
	return strcmp(x->name, y->name);
}

static json_t *by_agency(struct kpi *k)
{
	struct agency **list = malloc((k->agencies.len + 1) * sizeof(*list));
	json_t *arr = json_array();
	const char *key;
	void *v;
	size_t pos = 0, n = 0;

	if (!list)
		return arr;
	while (hmap_next(&k->agencies, &pos, &key, &v)) {
		struct agency *a = v;
		if (a->open > 0 || a->resolved30 > 0)
			list[n++] = a;
	}
	qsort(list, n, sizeof(*list), agency_cmp);
	for (size_t i = 0; i < n; i++) {
		struct agency *a = list[i];
		json_array_append_new(
		    arr,
		    json_pack("{s:s, s:I, s:I, s:I, s:o}", "agency", a->name,
			      "open", (json_int_t)a->open, "overdue",
			      (json_int_t)(a->open - a->notdue), "resolved_30d",
			      (json_int_t)a->resolved30, "sla_met_30d",
			      ratio(a->met30, a->resolved30)));
	}
	free(list);
	return arr;
}

static json_t *by_district(struct kpi *k)
{
	json_t *o = json_object();
	const char *key;
	void *v;
	size_t pos = 0;

	while (hmap_next(&k->districts, &pos, &key, &v)) {
		struct district *d = v;
		if (d->open > 0)
			json_object_set_new(o, d->name, json_integer(d->open));
	}
	return o;
}

static json_t *median_h(const struct kpi *k)
{
	size_t n = tsize(k->tree);
	double mid;

	if (n == 0)
		return json_null();
	if (n % 2)
		mid = (double)tree_kth(k->tree, n / 2);
	else
		mid = ((double)tree_kth(k->tree, n / 2 - 1) +
		       (double)tree_kth(k->tree, n / 2)) /
		      2.0;
	return json_real(mid / (double)HOUR_US);
}

json_t *kpi_snapshot(struct kpi *k, int64_t now)
{
	json_t *o = json_object();
	json_t *cat = json_object();
	json_t *open_cat = json_object();
	int64_t today = local_day(k, now);
	struct day *d;
	struct day none = {0};

	kpi_advance(k, now);
	d = day_get(k, today, false);
	if (!d)
		d = &none;

	json_object_set_new(o, "calls.received_today", json_integer(d->calls));
	json_object_set_new(o, "calls.waiting", json_integer(k->waiting));
	json_object_set_new(o, "calls.active", json_integer(k->active));
	json_object_set_new(o, "calls.answered_1h", json_integer(k->answered));
	json_object_set_new(o, "calls.abandoned_1h",
			    json_integer(k->abandoned));
	json_object_set_new(o, "calls.abandon_rate_1h",
			    ratio(k->abandoned, k->answered + k->abandoned));
	json_object_set_new(
	    o, "calls.asa_1h_s",
	    k->answered > 0
		? json_real((double)k->wait_sum_us / (double)k->answered / 1e6)
		: json_null());
	json_object_set_new(
	    o, "calls.service_level_1h",
	    ratio(k->answered_fast, k->answered + k->abandoned));
	for (int c = 0; c < EV_CC_COUNT; c++)
		if (d->calls_cat[c] > 0)
			json_object_set_new(cat, ev_category_name(EV_CALL, c),
					    json_integer(d->calls_cat[c]));
	json_object_set_new(o, "calls.by_category_today", cat);

	json_object_set_new(o, "reports.received_today",
			    json_integer(d->reports));
	json_object_set_new(o, "reports.open", json_integer(k->open));
	json_object_set_new(o, "reports.overdue",
			    json_integer(k->open - k->notdue));
	json_object_set_new(o, "reports.unassigned",
			    json_integer(k->unassigned));
	json_object_set_new(o, "reports.resolved_today",
			    json_integer(d->resolved));
	json_object_set_new(o, "reports.sla_met_30d",
			    ratio(k->met30, k->resolved30));
	json_object_set_new(o, "reports.resolution_p50_30d_h", median_h(k));
	json_object_set_new(o, "reports.by_agency", by_agency(k));
	for (int c = 0; c < EV_RC_COUNT; c++)
		if (k->open_cat[c] > 0)
			json_object_set_new(open_cat,
					    ev_category_name(EV_REPORT, c),
					    json_integer(k->open_cat[c]));
	json_object_set_new(o, "reports.by_category_open", open_cat);
	json_object_set_new(o, "reports.by_district_open", by_district(k));

	if (k->cfg.sensors)
		sensors_kpis(k->cfg.sensors, now, o);
	return o;
}

/* ---- life cycle ---- */

struct kpi *kpi_new(const struct kpi_config *cfg)
{
	struct kpi *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->cfg = *cfg;
	k->now = INT64_MIN;
	k->rng = 2463534242u;
	for (int i = 0; i < DAYS; i++)
		k->days[i].day = INT64_MIN;
	return k;
}

static void ent_free(void *v)
{
	free(((struct ent *)v)->id);
	free(v);
}

/* An agency or a district: both begin with their name. */
static void named_free(void *v)
{
	free(*(char **)v);
	free(v);
}

void kpi_free(struct kpi *k)
{
	if (!k)
		return;
	/* Entities already pruned live only in the heap. */
	for (size_t i = 0; i < k->heap_len; i++) {
		struct ent *e = k->heap[i].e;
		if (e->dead && --e->refs == 0) {
			free(e->id);
			free(e);
		}
	}
	free(k->heap);
	hmap_free_all(&k->calls, ent_free);
	hmap_free_all(&k->tickets, ent_free);
	hmap_free_all(&k->agencies, named_free);
	hmap_free_all(&k->districts, named_free);
	free(k);
}
