#include "migrate.h"

#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An arbitrary, fixed key for pg_advisory_lock: "kendali" in ASCII. */
#define MIGRATE_LOCK_KEY "30229347312954473"

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/*
 * 1 when the migration is recorded, 0 when not, -1 when that cannot be
 * known (say the role may not read schema_migrations, as after a restore
 * that left the tables to another owner): never guess "not applied".
 */
static int applied(PGconn *conn, int version, char *err, size_t errlen)
{
	char v[16];
	const char *params[1] = {v};
	PGresult *r;
	int found;

	snprintf(v, sizeof(v), "%d", version);
	r = PQexecParams(conn,
			 "SELECT 1 FROM schema_migrations WHERE version = $1",
			 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen,
			 "cannot read schema_migrations: %s(does this role "
			 "own the database's tables?)",
			 PQresultErrorMessage(r));
		found = -1;
	} else {
		found = PQntuples(r) > 0;
	}
	PQclear(r);
	return found;
}

static int apply_one(PGconn *conn, const struct migration *m, char *err,
		     size_t errlen)
{
	char v[16];
	const char *params[2] = {v, m->name};
	PGresult *r;

	if (exec_ok(conn, "BEGIN", err, errlen) < 0)
		return -1;
	if (exec_ok(conn, m->sql, err, errlen) < 0)
		goto fail;
	snprintf(v, sizeof(v), "%d", m->version);
	r = PQexecParams(conn,
			 "INSERT INTO schema_migrations (version, name) "
			 "VALUES ($1, $2)",
			 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (exec_ok(conn, "COMMIT", err, errlen) < 0)
		goto fail;
	return 0;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

int migrate_run(PGconn *conn, char *err, size_t errlen)
{
	int n = 0;

	if (exec_ok(conn, "SET client_min_messages TO warning", err, errlen) <
		0 ||
	    exec_ok(conn,
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " version integer PRIMARY KEY,"
		    " name text NOT NULL,"
		    " applied_at timestamptz NOT NULL DEFAULT now())",
		    err, errlen) < 0)
		return -1;
	if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err,
		    errlen) < 0)
		return -1;
	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];

		int done = applied(conn, m->version, err, errlen);

		if (done < 0) {
			n = -1;
			break;
		}
		if (done)
			continue;
		if (apply_one(conn, m, err, errlen) < 0) {
			char why[512];
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "migration %s failed: %s",
				 m->name, why);
			n = -1;
			break;
		}
		log_info("applied migration %s", m->name);
		n++;
	}
	PQclear(
	    PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return n;
}

int migrate_missing(PGresult *r, const struct migration **first)
{
	int missing = 0;

	*first = NULL;
	for (int i = 0; i < migrations_count; i++) {
		bool found = false;

		for (int j = 0; r && j < PQntuples(r) && !found; j++)
			found =
			    atoi(PQgetvalue(r, j, 0)) == migrations[i].version;
		if (found)
			continue;
		if (!missing++)
			*first = &migrations[i];
	}
	return missing;
}

int migrate_pending(PGconn *conn, int *missing, const struct migration **first,
		    char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, MIGRATE_VERSIONS_SQL);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	int rc = 0;

	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		*missing = migrate_missing(r, first);
	} else if (state && strcmp(state, MIGRATE_NO_TABLE) == 0) {
		*missing = migrate_missing(NULL, first);
	} else {
		snprintf(err, errlen, "cannot read schema_migrations: %s",
			 PQresultErrorMessage(r));
		rc = -1;
	}
	PQclear(r);
	return rc;
}
