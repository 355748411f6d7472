/*
 * server/cli.h - `kendali tenant|key|token|user ...` on a blocking
 * connection to a migrated database (main.c checks the schema first).  Each
 * returns the process exit code: 0, 1 (the database refused), 2 (usage, or
 * an unknown tenant).
 */
#ifndef KENDALI_CLI_H
#define KENDALI_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>

#define CLI_TENANT_ID_MAX 32

/* The tenant a command works on. */
struct cli_tenant {
	char id[CLI_TENANT_ID_MAX + 1];
	bool province;
};

/* Whether s is a tenant id: 1 to 32 of a-z 0-9 -, a letter first. */
bool cli_tenant_id_valid(const char *s);

/*
 * The tenant named by --tenant (given), or without one the database's only
 * tenant, into *t.  Returns 0, or the exit code after saying why: 2 for a
 * tenant that does not exist or none given among several.
 */
int cli_tenant_pick(PGconn *conn, const char *given, struct cli_tenant *t);

int cli_tenant(PGconn *conn, int argc, char **argv);
/*
 * `kendali tenant import ID DIR`: the reference data of DIR
 * (docs/reference-data.md) for the regency or city ID, all or nothing.
 */
int cli_tenant_import(PGconn *conn, const char *id, const char *dir);
int cli_key(PGconn *conn, const struct cli_tenant *t, int argc, char **argv);
int cli_token(PGconn *conn, const struct cli_tenant *t, int argc, char **argv);
int cli_user(PGconn *conn, const struct cli_tenant *t, int argc, char **argv);

#endif
