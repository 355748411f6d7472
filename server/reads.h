/*
 * server/reads.h - the statements of the reader connection (what the API
 * reads, and the logins' and sessions' own rows, which must not wait
 * behind the writer's groups), with each statement's SQL and the decoding
 * of its rows in this one place, and typed results.  A schema change touches
 * one statement here per table read; the start-up load (load.c) decodes alerts
 * with the same decoder.
 *
 * Each function queues one statement and returns 0, or -1 when the
 * connection takes no more work (its callback is then never called).  The
 * callback gets ok = false when the database could not answer.
 */
#ifndef KENDALI_READS_H
#define KENDALI_READS_H

#include "alert.h"
#include "auth.h"
#include "pgconn.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgc;

/* ---- alerts ---- */

/* The columns reads_alert_row decodes, in its order, for a FROM alerts. */
#define READS_ALERT_COLUMNS                                                    \
	"id, kind, severity, sensor_id, message, kd_us(raised_at),"            \
	" kd_us(cleared_at), acked_by, kd_us(acked_at), ack_note"

/* Row i of a text result of "SELECT " READS_ALERT_COLUMNS " FROM alerts". */
void reads_alert_row(PGresult *r, int i, struct alert *out);

/* list: the rows decoded, borrowed for the call. */
typedef void (*reads_alerts_cb)(void *arg, bool ok, const struct alert *list,
				size_t n);
/* The tenant's alerts, active or cleared, newest first, at most limit. */
int reads_alerts_all(struct pgc *c, const char *tenant, int limit,
		     reads_alerts_cb cb, void *arg);

/* ---- the KPI history ---- */

/*
 * found: a record exists in the 15 minutes up to the time asked; at_us its
 * time, kpis its JSON object as text (borrowed for the call).
 */
typedef void (*reads_kpis_at_cb)(void *arg, bool ok, bool found, int64_t at_us,
				 const char *kpis);
int reads_kpis_at(struct pgc *c, const char *tenant, int64_t at_us,
		  reads_kpis_at_cb cb, void *arg);

/* ---- series ---- */

enum reads_series {
	READS_CALLS_RECEIVED,
	READS_REPORTS_RECEIVED,
	READS_REPORTS_RESOLVED,
	READS_REPORTS_SLA_MET,
	READS_SENSOR
};

struct reads_series_q {
	enum reads_series kind;
	const char *tenant;
	const char *sensor_id; /* READS_SENSOR */
	const int64_t *sla_us; /* READS_REPORTS_SLA_MET: per report category */
	int64_t start_us;      /* of the first bucket */
	int64_t step_us;
	int n; /* buckets */
};

/* One bucket with something in it; the others are empty. */
struct reads_bucket {
	int index;     /* 0 .. n - 1 */
	int64_t count; /* rows counted; tickets resolved for SLA_MET */
	int64_t met;   /* SLA_MET: of those, resolved within their SLA */
	double min, max, last; /* READS_SENSOR */
};

typedef void (*reads_series_cb)(void *arg, bool ok,
				const struct reads_bucket *b, size_t n);
int reads_series(struct pgc *c, const struct reads_series_q *q,
		 reads_series_cb cb, void *arg);

/* ---- credentials ---- */

/*
 * The live agency keys of every tenant, the rows keys_replace decodes, and
 * the live screen tokens and sessions, the rows auth_replace decodes: each
 * module builds its own table from them, each credential naming its
 * tenant.  The start-up load reads them with these too.
 */
#define READS_KEYS_SQL                                                         \
	"SELECT key_id, poster, array_to_string(types, ','),"                  \
	" encode(secret_sha256, 'hex'), array_to_string(sensors, ','), tenant" \
	" FROM api_keys WHERE revoked_at IS NULL"
#define READS_CREDENTIALS_SQL                                                  \
	"SELECT 's', token_id, name, role, encode(secret_sha256, 'hex'), 0,"   \
	" tenant FROM screen_tokens WHERE revoked_at IS NULL"                  \
	" UNION ALL"                                                           \
	" SELECT 'u', s.session_id, u.username, u.role,"                       \
	" encode(s.secret_sha256, 'hex'), kd_us(s.expires_at), s.tenant"       \
	" FROM sessions s JOIN users u USING (tenant, username)"               \
	" WHERE s.ended_at IS NULL"                                            \
	" AND s.expires_at > now() AND u.disabled_at IS NULL"
int reads_keys(struct pgc *c, pgc_result_cb cb, void *arg);
int reads_credentials(struct pgc *c, pgc_result_cb cb, void *arg);

/* LISTEN to the channels the credentials', the tenants' and their
 * reference data's changes are notified on (schema/003, 006, 011; `kendali
 * tenant import`). */
int reads_listen(struct pgc *c);

/* Forgets sessions over for a month and failed logins a day old, of every
 * tenant (the audit keeps the trail); a failure is logged. */
int reads_prune(struct pgc *c);

/* The tenants a server serves (rows of LOAD_TENANTS_SQL, load.h), and a
 * tenant's kecamatan and sensors (LOAD_DISTRICTS_SQL, LOAD_SENSORS_SQL):
 * for a tenant created while the server runs. */
int reads_tenants(struct pgc *c, pgc_result_cb cb, void *arg);
/* The provinces' members (TENANT_MEMBERS_SQL, tenant.h). */
int reads_members(struct pgc *c, pgc_result_cb cb, void *arg);
int reads_tenant_districts(struct pgc *c, const char *tenant, pgc_result_cb cb,
			   void *arg);
int reads_tenant_sensors(struct pgc *c, const char *tenant, pgc_result_cb cb,
			 void *arg);
/* LOAD_TICKETS_SQL (load.h), binary. */
int reads_tenant_tickets(struct pgc *c, const char *tenant, pgc_result_cb cb,
			 void *arg);

/* MIGRATE_VERSIONS_SQL, for /readyz. */
int reads_schema(struct pgc *c, pgc_result_cb cb, void *arg);

/* ---- logins and sessions ---- */

/* What a login needs to know of a user name, in one read. */
struct reads_login {
	bool user;		      /* the name is a user's */
	bool disabled;		      /* ... whose account is disabled */
	char role[16];		      /* ... with this role */
	char password[AUTH_HASH_LEN]; /* ... and this stored hash */
	int wait_s; /* the name waits this long after failures */
};
typedef void (*reads_login_cb)(void *arg, bool ok, const struct reads_login *l);
int reads_login(struct pgc *c, const char *tenant, const char *username,
		reads_login_cb cb, void *arg);

/*
 * Counts a failed login against the name (from the fifth in a row it waits
 * 1, 2, 4, ... up to 30 s: schema/008) and audits it, in one statement;
 * why is the audit's reason.  A failure of its own is logged.
 */
int reads_login_failed(struct pgc *c, const char *tenant, const char *username,
		       const char *peer, const char *why);

/* A session opened: ok, and when it ends. */
typedef void (*reads_session_cb)(void *arg, bool ok, int64_t expires_us);
/*
 * Opens session id for username (its secret's SHA-256 as "\\x<hex>"),
 * lasting hours, audits it and forgets the name's failures.
 */
int reads_session_open(struct pgc *c, const char *tenant, const char *id,
		       const char *username, const char *digest_hex, int hours,
		       const char *peer, reads_session_cb cb, void *arg);

typedef void (*reads_done_cb)(void *arg, bool ok);
/* Ends session id, audited as actor. */
int reads_session_end(struct pgc *c, const char *tenant, const char *id,
		      const char *actor, const char *peer, reads_done_cb cb,
		      void *arg);

#endif
