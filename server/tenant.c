#include "tenant.h"

#include "alert.h"
#include "app.h"
#include "buf.h"
#include "clock.h"
#include "kpi.h"
#include "log.h"
#include "pub.h"
#include "sensors.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define SEC_US INT64_C(1000000)
#define EVALUATE_US SEC_US	  /* time-driven KPIs looked at */
#define HISTORY_US (300 * SEC_US) /* a KPI record every 5 minutes */

static void schedule_publish(struct tenant *t);

void tenant_touch(struct tenant *t)
{
	t->dirty = true;
	schedule_publish(t);
}

/* ---- a province's roll-up ---- */

static json_int_t int_of(json_t *snap, const char *key)
{
	return json_integer_value(json_object_get(snap, key));
}

/* A member's headline numbers, as it published them last. */
static json_t *member_summary(const struct tenant *m)
{
	json_t *s = m->published, *levels;

	levels = json_object_get(s, "sensors.by_level");
	return json_pack(
	    "{s:s, s:s, s:s, s:I, s:I, s:I, s:O, s:I, s:I, s:I}", "id",
	    m->info.id, "name", m->info.name, "head", m->info.head,
	    "calls_today", int_of(s, "calls.received_today"), "reports_open",
	    int_of(s, "reports.open"), "reports_overdue",
	    int_of(s, "reports.overdue"), "sla_met_30d",
	    json_object_get(s, "reports.sla_met_30d")
		? json_object_get(s, "reports.sla_met_30d")
		: json_null(),
	    "gauges_siaga", int_of(levels, "siaga"), "gauges_awas",
	    int_of(levels, "awas"), "alerts_active",
	    (json_int_t)json_array_size(json_object_get(s, "alerts.active")));
}

/* Worst first: gauges at awas, then at siaga, active alerts, overdue
 * reports; then by name. */
static int worse_first(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	static const char *const keys[] = {"gauges_awas", "gauges_siaga",
					   "alerts_active", "reports_overdue"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_int_t d = int_of(y, keys[i]) - int_of(x, keys[i]);
		if (d)
			return d > 0 ? 1 : -1;
	}
	return strcmp(json_string_value(json_object_get(x, "name")),
		      json_string_value(json_object_get(y, "name")));
}

static int severity_rank(json_t *alert)
{
	const char *s = json_string_value(json_object_get(alert, "severity"));

	if (!s)
		return 0; /* offline */
	return strcmp(s, "awas") == 0 ? 3 : strcmp(s, "siaga") == 0 ? 2 : 1;
}

/* The most severe first, then the newest, then the greater id.  A
 * province's members share its zone (Indonesia's zones follow provinces):
 * the times' text orders them. */
static int alert_first(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int d = severity_rank(y) - severity_rank(x);
	const char *rx, *ry;
	json_int_t ix, iy;

	if (d)
		return d;
	rx = json_string_value(json_object_get(x, "raised_at"));
	ry = json_string_value(json_object_get(y, "raised_at"));
	if ((d = strcmp(ry ? ry : "", rx ? rx : "")))
		return d;
	ix = json_integer_value(json_object_get(x, "id"));
	iy = json_integer_value(json_object_get(y, "id"));
	return (iy > ix) - (iy < ix);
}

/* A JSON array of the n items, sorted by cmp (items' references taken). */
static json_t *sorted_array(json_t **items, size_t n,
			    int (*cmp)(const void *, const void *))
{
	json_t *out = json_array();

	qsort(items, n, sizeof(*items), cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(out, items[i]);
	return out;
}

static json_t *rollup(const struct tenant *p)
{
	size_t n_alerts = 0, k = 0;
	json_t **members = calloc(p->n_members + 1, sizeof(*members));
	json_t **alerts, *a, *snap;
	size_t i, j;

	for (i = 0; i < p->n_members; i++)
		n_alerts += json_array_size(
		    json_object_get(p->members[i]->published, "alerts.active"));
	alerts = calloc(n_alerts + 1, sizeof(*alerts));
	if (!members || !alerts) {
		/* Out of memory: an empty snapshot, never none (every caller
		 * reads one). */
		free(members);
		free(alerts);
		return json_object();
	}
	for (i = 0; i < p->n_members; i++) {
		const struct tenant *m = p->members[i];

		members[i] = member_summary(m);
		json_array_foreach (
		    json_object_get(m->published, "alerts.active"), j, a) {
			alerts[k] = json_deep_copy(a);
			json_object_set_new(alerts[k], "tenant",
					    json_string(m->info.id));
			json_object_set_new(alerts[k++], "tenant_name",
					    json_string(m->info.name));
		}
	}
	snap =
	    json_pack("{s:o, s:o}", "province.members",
		      sorted_array(members, p->n_members, worse_first),
		      "province.alerts", sorted_array(alerts, k, alert_first));
	free(members);
	free(alerts);
	return snap;
}

bool tenant_has_member(const struct tenant *p, const char *m)
{
	for (size_t i = 0; i < p->n_members; i++)
		if (strcmp(p->members[i]->info.id, m) == 0)
			return true;
	return false;
}

json_t *tenant_snapshot(struct tenant *t, int64_t now)
{
	if (t->info.province)
		return rollup(t);
	json_t *s = kpi_snapshot(t->kpi, now);

	json_object_set_new(s, "alerts.active", alerts_active_json(t->alerts));
	return s;
}

/* ---- committed state in: the store's sink ---- */

/* A committed row's tenant; NULL for one not served (logged: a row of a
 * tenant this server does not know yet is read again at its start). */
static struct tenant *sink_tenant(void *arg, const char *id)
{
	struct tenant *t = tenants_get(arg, id);

	if (!t)
		log_warn("committed data of tenant %s, which is not served "
			 "here",
			 id);
	return t;
}

static void sink_call(void *arg, const char *tenant, const struct kpi_call *c)
{
	struct tenant *t = sink_tenant(arg, tenant);

	if (!t)
		return;
	if (kpi_apply_call(t->kpi, c, clock_now_us()) < 0)
		log_error("out of memory applying call %s", c->call_id);
	tenant_touch(t);
}

bool tenant_district_known(const struct tenant *t, const char *district)
{
	return !district || !district[0] || t->districts.len == 0 ||
	       hmap_get(&t->districts, district);
}

static void sink_ticket(void *arg, const char *tenant,
			const struct kpi_ticket *tk)
{
	struct tenant *t = sink_tenant(arg, tenant);
	struct kpi_ticket mapped = *tk;

	if (!t)
		return;
	/* A misspelt or foreign kecamatan is counted apart, not as a
	 * district of its own (/metrics names it). */
	if (!tenant_district_known(t, tk->district))
		mapped.district = TENANT_OTHER_DISTRICT;
	if (kpi_apply_ticket(t->kpi, &mapped, clock_now_us()) < 0)
		log_error("out of memory applying ticket %s", tk->ticket);
	tenant_touch(t);
}

static void sink_reading(void *arg, const char *tenant, const char *sensor_id,
			 int64_t at_us, double value)
{
	struct tenant *t = sink_tenant(arg, tenant);

	if (t && sensors_apply_reading(t->sensors, sensor_id, at_us, value))
		tenant_touch(t);
}

struct store_sink tenants_sink(struct tenants *ts)
{
	return (struct store_sink){sink_call, sink_ticket, sink_reading, ts};
}

/* ---- the tenants served ---- */

struct tenant *tenants_get(const struct tenants *ts, const char *id)
{
	return id ? hmap_get(&ts->by_id, id) : NULL;
}

int tenants_add(struct tenants *ts, struct tenant *t)
{
	struct tenant **list;

	if (tenants_get(ts, t->info.id))
		return -1;
	list = realloc(ts->list, (ts->n + 1) * sizeof(*list));
	if (!list)
		return -1;
	ts->list = list;
	if (hmap_put(&ts->by_id, t->info.id, t) < 0)
		return -1;
	ts->list[ts->n++] = t;
	return 0;
}

int tenants_set_members(struct tenants *ts, PGresult *r)
{
	struct tenant ***lists = calloc(ts->n + 1, sizeof(*lists));
	size_t *counts = calloc(ts->n + 1, sizeof(*counts));
	int rc = -1;

	if (!lists || !counts)
		goto out;
	for (int i = 0; i < PQntuples(r); i++) {
		struct tenant *p = tenants_get(ts, PQgetvalue(r, i, 0));
		struct tenant *m = tenants_get(ts, PQgetvalue(r, i, 1));
		size_t k;

		if (!p || !m || !p->info.province)
			continue;
		for (k = 0; ts->list[k] != p; k++)
			;
		struct tenant **grown =
		    realloc(lists[k], (counts[k] + 1) * sizeof(*grown));
		if (!grown)
			goto out;
		lists[k] = grown;
		lists[k][counts[k]++] = m;
	}
	for (size_t k = 0; k < ts->n; k++) {
		free(ts->list[k]->members);
		ts->list[k]->members = lists[k];
		ts->list[k]->n_members = counts[k];
		ts->list[k]->province = NULL;
		lists[k] = NULL;
	}
	for (size_t k = 0; k < ts->n; k++)
		for (size_t i = 0; i < ts->list[k]->n_members; i++)
			ts->list[k]->members[i]->province = ts->list[k];
	rc = 0;
out:
	for (size_t k = 0; lists && k < ts->n; k++)
		free(lists[k]);
	free(lists);
	free(counts);
	return rc;
}

void tenants_free(struct tenants *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		tenant_free(ts->list[i]);
	free(ts->list);
	hmap_free(&ts->by_id);
	memset(ts, 0, sizeof(*ts));
}

/* ---- alerts: stored, then shown ---- */

struct alert_save {
	struct tenant *tenant;
	struct alert *alert;
};

static void alert_saved(void *arg, bool ok, int64_t id)
{
	struct alert_save *s = arg;

	alerts_save_done(s->tenant->alerts, s->alert, ok, id);
	if (ok)
		tenant_alerts_flush(s->tenant);
	free(s);
}

void tenant_alerts_flush(struct tenant *t)
{
	struct alert *al;

	while (!t->app->stopping && (al = alerts_next_unsaved(t->alerts))) {
		struct alert_save *s = malloc(sizeof(*s));

		alert_save_begin(al);
		if (!s || store_save_alert(t->app->store, t->info.id, al,
					   alert_saved, s) < 0) {
			free(s);
			/* Marked dirty again: the next tick retries. */
			alerts_save_done(t->alerts, al, false, 0);
			return;
		}
		s->tenant = t;
		s->alert = al;
	}
}

static void on_alert_change(void *arg, struct alert *al)
{
	struct tenant *t = arg;

	t->dirty = true;
	if (al->id != 0) {
		json_t *j = alert_json(t->alerts, al);
		pub_alert(t->pub, j);
		json_decref(j);
	}
}

static void check_alerts(struct tenant *t, int64_t now)
{
	for (int i = 0; i < sensors_count(t->sensors); i++) {
		struct sensor_view v;

		sensors_view(t->sensors, i, now, &v);
		alerts_check(t->alerts, &v, now);
	}
	tenant_alerts_flush(t);
}

/* ---- publishing ---- */

/* The keys whose values differ between two snapshots (new reference). */
static json_t *diff(json_t *old, json_t *cur)
{
	json_t *changed = json_object();
	const char *key;
	json_t *v;

	json_object_foreach (cur, key, v)
		if (!old || !json_equal(json_object_get(old, key), v))
			json_object_set(changed, key, v);
	return changed;
}

static void publish(struct tenant *t, int64_t now, bool force)
{
	json_t *snap = tenant_snapshot(t, now);
	json_t *changed = diff(t->published, snap);
	char at[40];

	t->dirty = false;
	t->last_eval_us = now;
	if (json_object_size(changed) > 0 || force) {
		t->seq++;
		t->last_sent_ns = uv_hrtime();
	}
	/* Even when nothing changed, the state is now known to hold at this
	 * time: new screens and heartbeats carry it, so a quiet city does
	 * not look like old data. */
	ev_time_format(now, t->info.tz_offset_s, at);
	pub_state(t->pub, snap, changed, at);
	json_decref(t->published);
	t->published = snap;
	/* Its province's roll-up follows at once, not at the next tick. */
	if (t->province && json_object_size(changed) > 0)
		tenant_touch(t->province);
	json_decref(changed);
}

void tenant_publish(struct tenant *t, int64_t now, bool force)
{
	check_alerts(t, now);
	publish(t, now, force);
}

static void publish_cb(uv_timer_t *timer)
{
	struct tenant *t = timer->data;

	t->publish_armed = false;
	tenant_publish(t, clock_now_us(), false);
}

/*
 * Something to show: published at once when the last kpis message is a
 * publish interval old, else as soon as it is, so that screens get at most
 * one message per interval and a change in a quiet city shows without
 * waiting for a tick.  Every change of a commit's result is applied before
 * the timer fires.
 */
static void schedule_publish(struct tenant *t)
{
	struct app *a = t->app;
	uint64_t now_ns, due_ns, wait_ms = 0;

	if (t->publish_armed || a->stopping || !t->timer_open)
		return;
	now_ns = uv_hrtime();
	due_ns = t->last_sent_ns + (uint64_t)a->cfg.publish_ms * 1000000;
	if (t->last_sent_ns && due_ns > now_ns)
		/* A timer of N ms on a loop whose clock counts whole ms may
		 * fire up to 1 ms short of N: one more keeps the interval
		 * whole.  The loop's clock is brought up to now first. */
		wait_ms = (due_ns - now_ns + 999999) / 1000000 + 1;
	t->publish_armed = true;
	uv_update_time(a->loop);
	uv_timer_start(&t->publish, publish_cb, wait_ms, 0);
}

/*
 * Every HISTORY_US, on the boundary, the KPIs that are not lists go to
 * kpi_history, for "the same time yesterday" on the mayor's page: as they
 * are at the first tick on or after the boundary (within a publish
 * interval of it), never as last published, which may be a second older.
 */
static void record_history(struct tenant *t, int64_t now)
{
	int64_t slot = now - now % HISTORY_US;
	json_t *snap, *rec;
	const char *key;
	json_t *v;
	char *text;

	if (slot <= t->last_history_us)
		return;
	t->last_history_us = slot;
	snap = kpi_snapshot(t->kpi, now);
	rec = json_object();
	json_object_foreach (snap, key, v)
		if (!json_is_array(v))
			json_object_set(rec, key, v);
	json_decref(snap);
	text = json_dumps(rec, JSON_DUMP_FLAGS);
	json_decref(rec);
	if (text)
		store_save_history(t->app->store, t->info.id, slot, text);
	free(text);
}

void tenant_tick(struct tenant *t, int64_t now, bool prune)
{
	/* A province has no gauges, KPIs or record of its own: its roll-up
	 * follows its members' publications (each touches it), and is looked
	 * at again every second like any snapshot (a membership changed). */
	if (!t->info.province)
		check_alerts(t, now);
	if (t->dirty || now - t->last_eval_us >= EVALUATE_US)
		schedule_publish(t);
	pub_tick(t->pub);
	if (t->info.province)
		return;
	record_history(t, now);
	if (prune)
		kpi_prune(t->kpi, now);
}

void tenant_database(struct tenant *t, bool up, int64_t since_us, int64_t now)
{
	char at[40], since[40];

	ev_time_format(now, t->info.tz_offset_s, at);
	if (!up)
		ev_time_format(since_us, t->info.tz_offset_s, since);
	pub_database(t->pub, up, up ? NULL : since, at);
}

/* ---- life ---- */

struct tenant *tenant_new(struct app *a, const struct tenant_info *info)
{
	struct tenant *t = calloc(1, sizeof(*t));
	struct kpi_config kc = {.tz_offset_s = info->tz_offset_s};

	if (!t)
		return NULL;
	t->app = a;
	t->info = *info;
	t->unknown_districts.label = "district";
	/* The first record is at the next boundary, or now if this is one:
	 * a record says what the server saw at its time. */
	int64_t now = clock_now_us();
	t->last_history_us = now - now % HISTORY_US - (now % HISTORY_US == 0);
	t->sensors = sensors_new(info->tz_offset_s);
	kc.sensors = t->sensors;
	memcpy(kc.sla_us, a->cfg.sla_us, sizeof(kc.sla_us));
	t->kpi = t->sensors ? kpi_new(&kc) : NULL;
	t->alerts = alerts_new(info->tz_offset_s, on_alert_change, t);
	t->pub = pub_new();
	if (!t->kpi || !t->alerts || !t->pub) {
		tenant_free(t);
		return NULL;
	}
	return t;
}

void tenant_start(struct tenant *t, uv_loop_t *loop, struct lws_context *ctx)
{
	uv_timer_init(loop, &t->publish);
	t->publish.data = t;
	t->timer_open = true;
	pub_set_context(t->pub, ctx, loop);
	pub_set_ping(t->pub, t->app->cfg.ws_ping_s);
}

static void timer_closed(uv_handle_t *h)
{
	(void)h;
}

void tenant_close(struct tenant *t)
{
	if (!t->timer_open)
		return;
	t->timer_open = false;
	pub_set_context(t->pub, NULL, NULL);
	uv_timer_stop(&t->publish);
	uv_close((uv_handle_t *)&t->publish, timer_closed);
}

void tenant_free(struct tenant *t)
{
	if (!t)
		return;
	json_decref(t->published);
	free(t->members);
	counters_free(&t->by_poster);
	counters_free(&t->unknown_districts);
	hmap_free_all(&t->districts, NULL);
	pub_free(t->pub);
	alerts_free(t->alerts);
	kpi_free(t->kpi);
	sensors_free(t->sensors);
	free(t);
}
