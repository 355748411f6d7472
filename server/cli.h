/*
 * server/cli.h - `kendali key|token|user ...` on a blocking connection to
 * a migrated database (main.c checks the schema first).  Each returns the
 * process exit code: 0, 1 (the database refused), 2 (usage).
 */
#ifndef KENDALI_CLI_H
#define KENDALI_CLI_H

#include <libpq-fe.h>

int cli_key(PGconn *conn, const char *tenant, int argc, char **argv);
int cli_token(PGconn *conn, const char *tenant, int argc, char **argv);
int cli_user(PGconn *conn, const char *tenant, int argc, char **argv);

#endif
