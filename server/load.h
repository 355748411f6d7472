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

/* The live agency keys, screen tokens and sessions, into keys and auth. */
int load_credentials(PGconn *conn, const char *tenant, struct keys *keys,
		     struct auth *auth, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The names of the tenant's kecamatan (schema/012), into names (each key
 * its own value, to be freed with hmap_free_all); none when not imported. */
int load_districts(PGconn *conn, const char *tenant, struct hmap *names,
		   char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The tenant id, with its UTC offset now, into *t. */
int load_tenant(PGconn *conn, const char *id, struct tenant_info *t, char *err,
		size_t errlen) __attribute__((warn_unused_result));

#endif
