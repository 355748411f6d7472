/*
 * server/tenant.h - a tenant (a city or regency; schema/011) as the server
 * keeps it: what its pages are titled with, and its live state: the sensor
 * registry, the KPIs, the alerts and the screens watching them, published
 * together.  The process (app.c) owns the connections, the credentials and
 * the clock's tick, and hands each tenant what is its own.
 */
#ifndef KENDALI_TENANT_H
#define KENDALI_TENANT_H

#include "counters.h"
#include "hmap.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct app;
struct lws_context;
struct store_sink;

/* A tenant as the pages show it. */
struct tenant_info {
	char id[33];
	char name[201];
	char head[65]; /* "Wali Kota", "Bupati", "Gubernur" */
	bool province;
	char time_zone[64]; /* "Asia/Jakarta" */
	char zone[16];	    /* "WIB", "WITA", "WIT", else "UTC+05:30" */
	int tz_offset_s;    /* its UTC offset now (WIB: 25200) */
};

struct tenant {
	struct app *app;
	struct tenant_info info;
	struct sensors *sensors; /* the registry; the KPIs read it */
	struct kpi *kpi;
	struct alerts *alerts;
	struct pub *pub; /* its screens */
	/* Its kecamatan by name (each key its own value), read at start-up
	 * from `kendali tenant import`'s data; empty when none was. */
	struct hmap districts;
	/* A province's members, tenants of the same registry (schema/011's
	 * tenant_members); none for a city or regency. */
	struct tenant **members;
	size_t n_members;
	struct tenant *province; /* a member's, told of each change */

	/* Counters for /metrics, labelled with the tenant: events accepted
	 * and duplicate per poster (api_ingest.c counts them), and events
	 * naming a district that is none of its kecamatan, by that name. */
	struct counters by_poster;
	struct counters unknown_districts;

	uv_timer_t publish; /* the next publication, when one is due */
	bool publish_armed, timer_open;
	json_t *published;	 /* the last snapshot sent to screens */
	uint64_t seq;		 /* state version: +1 per publication */
	bool dirty;		 /* state changed since published */
	int64_t last_eval_us;	 /* last snapshot built */
	uint64_t last_sent_ns;	 /* uv_hrtime of the last kpis message */
	int64_t last_history_us; /* slot of the last KPI record */
};

/* A tenant with an empty state; NULL when out of memory. */
struct tenant *tenant_new(struct app *a, const struct tenant_info *info);
/* Frees it once tenant_close's callbacks have run (or it never started). */
void tenant_free(struct tenant *t);

/* Its publication timer runs on loop from now on, and its screens are
 * served through ctx. */
void tenant_start(struct tenant *t, uv_loop_t *loop, struct lws_context *ctx);
/* Stops and closes the timer, and lets its screens' context go (the loop
 * must run to finish closing). */
void tenant_close(struct tenant *t);

/*
 * Whether an event's district is one of the tenant's kecamatan: any is
 * while none were imported, and an event without one (NULL, "") is too.
 */
bool tenant_district_known(const struct tenant *t, const char *district);

/* The district key of reports.by_district_open for tickets whose district
 * is not one of the tenant's kecamatan. */
#define TENANT_OTHER_DISTRICT "other"

/*
 * The tenants a process serves: every tenant of kind local in its
 * database, in the order they were added (list), and by id.
 */
struct tenants {
	struct tenant **list;
	size_t n;
	struct hmap by_id;
};

/* The tenant of that id, or NULL (none, or not served). */
struct tenant *tenants_get(const struct tenants *ts, const char *id);
/* Takes t; -1 (t not taken) when out of memory or its id is taken. */
int tenants_add(struct tenants *ts, struct tenant *t)
    __attribute__((warn_unused_result));
/* Frees every tenant (their timers closed, or never started). */
void tenants_free(struct tenants *ts);

/* Where the store sends the committed calls, tickets and readings: each to
 * the tenant its row names. */
struct store_sink tenants_sink(struct tenants *ts);

/* Every province's members, from rows (province, member) of
 * TENANT_MEMBERS_SQL; members not served are left out.  -1 when out of
 * memory (the lists are then as they were). */
#define TENANT_MEMBERS_SQL "SELECT province, member FROM tenant_members"
int tenants_set_members(struct tenants *ts, PGresult *r)
    __attribute__((warn_unused_result));
/* Whether m is one of province p's members. */
bool tenant_has_member(const struct tenant *p, const char *m);

/*
 * The current snapshot (new reference): a city's or regency's KPIs,
 * alerts.active included; a province's roll-up of its members, from what
 * each published last (docs/api.md 2.5): province.members, one summary per
 * member, worst first, and province.alerts, their active alerts.
 */
json_t *tenant_snapshot(struct tenant *t, int64_t now);

/* Marks the state changed, to be published soon. */
void tenant_touch(struct tenant *t);

/* Stores and publishes dirty alerts. */
void tenant_alerts_flush(struct tenant *t);

/*
 * Publishes the state now (force: a kpis message even when nothing
 * changed), alerts first brought up to date.
 */
void tenant_publish(struct tenant *t, int64_t now, bool force);

/*
 * The periodic job: alerts by the clock, a publication if anything changed
 * or the time-driven KPIs are due, the screens' upkeep, the 5-minute KPI
 * record, and now and then pruning the KPIs' memory (prune).
 */
void tenant_tick(struct tenant *t, int64_t now, bool prune);

/* Tells the screens whether the database can be reached (since: when it
 * was lost). */
void tenant_database(struct tenant *t, bool up, int64_t since_us, int64_t now);

#endif
