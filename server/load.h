/*
 * server/load.h - the start-up load of the state (blocking; before the
 * loop runs).
 */
#ifndef KENDALI_LOAD_H
#define KENDALI_LOAD_H

#include "alert.h"
#include "auth.h"
#include "hmap.h"
#include "keys.h"
#include "sensors.h"
#include "kpi.h"
#include "store.h"
#include "sqltext.h"
#include "tenant.h"

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Reads what the KPIs need (the registry and latest readings, calls and
 * tickets still inside a window or open, active alerts) and feeds it to
 * the sink, the registry and alerts.  Cost grows with what is open or recent,
 * not with the history.  Returns 0 or -1 with err filled.
 */
int load_state(PGconn *conn, const char *tenant, struct sensors *sensors,
	       struct alerts *as, const struct store_sink *sink, char *err,
	       size_t errlen) __attribute__((warn_unused_result));

/* The live agency keys, screen tokens and sessions of every tenant, into
 * keys and auth. */
int load_credentials(PGconn *conn, struct keys *keys, struct auth *auth,
		     char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The names of the tenant's kecamatan (schema/012), into names (each key
 * its own value, to be freed with hmap_free_all); none when not imported. */
int load_districts(PGconn *conn, const char *tenant, struct hmap *names,
		   char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The tenant id, with its UTC offset now, into *t. */
int load_tenant(PGconn *conn, const char *id, struct tenant_info *t, char *err,
		size_t errlen) __attribute__((warn_unused_result));

/*
 * Tenants as load_tenant_row reads them, followed by a WHERE: the start-up
 * load reads them with it, and the server again when a tenant is created
 * (NOTIFY kendali_tenants).
 */
#define LOAD_TENANTS_SQL                                                       \
	"SELECT id, name, head, kind, time_zone,"                              \
	" extract(epoch FROM (now() AT TIME ZONE time_zone)"                   \
	" - (now() AT TIME ZONE 'UTC'))::int FROM tenants"
void load_tenant_row(PGresult *r, int i, struct tenant_info *t);
/* Every tenant, by id, into *out (rows of LOAD_TENANTS_SQL; PQclear it). */
int load_tenants(PGconn *conn, PGresult **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The provinces' members, into the tenants served. */
int load_members(PGconn *conn, struct tenants *ts, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A tenant's kecamatan ($1) and sensors ($1), and their rows into a
 * tenant's table (-1: out of memory). */
#define LOAD_DISTRICTS_SQL "SELECT name FROM districts WHERE tenant = $1"
#define LOAD_SENSORS_SQL                                                       \
	"SELECT sensor_id, name, metric, unit, district, lat, lon, waspada,"   \
	" siaga, awas, offline_after_s, kd_us(created_at) FROM sensors"        \
	" WHERE tenant = $1"
/* The tickets a KPI can still count ($1: the tenant), in the writer's
 * result layout (sqltext.h), binary: at start-up, and again when the
 * tenant's kecamatan change (each ticket's district is counted anew). */
#define LOAD_TICKETS_SQL                                                       \
	SQL_TICKET_ROW                                                         \
	"tickets WHERE tenant = $1 AND status NOT IN " SQL_TICKET_CLOSED       \
	" UNION" SQL_TICKET_ROW "tickets WHERE tenant = $1"                    \
	" AND status = " SQL_RESOLVED                                          \
	" AND resolved_at >= now() - interval '31 days'"                       \
	" UNION" SQL_TICKET_ROW "tickets WHERE tenant = $1"                    \
	" AND received_at >= now() - interval '49 h'"
int load_district_rows(PGresult *r, struct hmap *names)
    __attribute__((warn_unused_result));
int load_sensor_rows(PGresult *r, struct sensors *k)
    __attribute__((warn_unused_result));

#endif
