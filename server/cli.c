/*
 * server/cli.c - `kendali tenant|key|token|user ...`: the command line of
 * the tenants and their credentials, on a blocking connection, apart from
 * the modules that hold them (keys.c, auth.c).  Output goes to stdout (a new
 * key or token alone on the last line), errors to stderr; each returns the exit
 * code.
 */
#include "cli.h"

#include "auth.h"
#include "keys.h"
#include "reqtext.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* ---- shared ---- */

static bool good_name(const char *s)
{
	return reqtext_username_valid(s, strlen(s));
}

/* Whether role is one of the tenant's kind; says which are when not. */
static bool good_role(const char *role, const struct cli_tenant *t)
{
	int r = auth_role_parse(role);

	if (t->province && r == ROLE_PROVINCE)
		return true;
	if (t->province) {
		fprintf(stderr,
			"kendali: %s is a province: its --role is "
			"province\n",
			t->id);
		return false;
	}
	if (r >= 0 && r != ROLE_PROVINCE)
		return true;
	fprintf(stderr,
		"kendali: --role is one of wall, operator, mayor, admin (the "
		"role province is a province's)\n");
	return false;
}

static int db_error(PGresult *r)
{
	fprintf(stderr, "kendali: %s", PQresultErrorMessage(r));
	PQclear(r);
	return 1;
}

static PGresult *exec(PGconn *conn, const char *sql, int n,
		      const char *const *params)
{
	return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

/*
 * The listings ($1: the tenant).  kd_utc_text (schema/010) writes a time in
 * UTC as ISO 8601, or "-" for none.
 */
static const char TOKEN_LIST_SQL[] =
    "SELECT token_id, name, role, kd_utc_text(created_at),"
    " kd_utc_text(revoked_at)"
    " FROM screen_tokens WHERE tenant = $1"
    " ORDER BY created_at, token_id";
static const char USER_LIST_SQL[] =
    "SELECT username, role, kd_utc_text(created_at),"
    " kd_utc_text(disabled_at),"
    " (SELECT count(*) FROM sessions s"
    "  WHERE s.tenant = u.tenant AND s.username = u.username"
    "  AND s.ended_at IS NULL AND s.expires_at > now())"
    " FROM users u WHERE tenant = $1 ORDER BY username";
static const char KEY_LIST_SQL[] =
    "SELECT key_id, poster, array_to_string(types, ','),"
    " kd_utc_text(created_at), kd_utc_text(revoked_at)"
    " FROM api_keys WHERE tenant = $1 ORDER BY created_at, key_id";

/*
 * An option of a subcommand: "--name VALUE", its value going to *value, or
 * a flag "--name" alone, which sets *value to its own name.
 */
struct opt {
	const char *name;
	const char **value;
	bool flag;
};

/* Reads argv's options into opts (ended by a NULL name); false on anything
 * that is not one of them with its value. */
static bool parse_opts(int argc, char **argv, const struct opt *opts)
{
	for (int i = 0; i < argc; i++) {
		const struct opt *o = opts;

		while (o->name && strcmp(argv[i], o->name) != 0)
			o++;
		if (!o->name || (!o->flag && i + 1 >= argc))
			return false;
		*o->value = o->flag ? o->name : argv[++i];
	}
	return true;
}

/*
 * Runs a listing ($1: the tenant, unless NULL) and prints its ncols columns as
 * a table under heads, padded to widths (all but the last).  Returns the exit
 * code.
 */
static int cli_list(PGconn *conn, const char *sql, const char *tenant,
		    int ncols, const char *const *heads, const int *widths)
{
	const char *p[1] = {tenant};
	PGresult *r = exec(conn, sql, tenant ? 1 : 0, p);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != ncols)
		return db_error(r);
	for (int i = -1; i < PQntuples(r); i++)
		for (int c = 0; c < ncols; c++)
			printf(c + 1 < ncols ? "%-*s " : "%.*s\n",
			       c + 1 < ncols ? widths[c] : INT_MAX,
			       i < 0 ? heads[c] : PQgetvalue(r, i, c));
	PQclear(r);
	return 0;
}

/*
 * Runs a statement meant to change one row, p[0] naming it, and says
 * missing or done.  Returns the exit code.
 */
static int cli_update(PGconn *conn, const char *sql, int n,
		      const char *const *p, const char *missing,
		      const char *done)
{
	PGresult *r = exec(conn, sql, n, p);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		return db_error(r);
	if (strcmp(PQcmdTuples(r), "1") != 0) {
		fprintf(stderr, "kendali: %s %s\n", missing, p[0]);
		PQclear(r);
		return 1;
	}
	PQclear(r);
	printf("%s %s.\n", done, p[0]);
	return 0;
}

/* ---- kendali token ---- */

static int token_usage(void)
{
	fprintf(stderr, "usage: kendali token create --name NAME --role "
			"wall|operator|mayor|admin|province\n"
			"       kendali token list\n"
			"       kendali token revoke TOKEN_ID\n");
	return 2;
}

static int token_create(PGconn *conn, const struct cli_tenant *t, int argc,
			char **argv)
{
	const char *tenant = t->id;
	const char *name = NULL, *role = NULL;
	char cred[AUTH_CREDENTIAL_LEN + 1], id[AUTH_ID_LEN + 1],
	    digest_hex[2 + 64 + 1] = "\\x";
	unsigned char digest[32];
	PGresult *r;

	const struct opt opts[] = {{"--name", &name}, {"--role", &role}, {0}};

	if (!parse_opts(argc, argv, opts) || !name || !role)
		return token_usage();
	if (!good_name(name)) {
		fprintf(stderr, "kendali: --name takes 1 to 64 letters, "
				"digits and . _ - @\n");
		return 2;
	}
	if (!good_role(role, t))
		return 2;
	if (auth_mint("st", cred, id, digest) < 0) {
		fprintf(stderr, "kendali: no random bytes\n");
		return 1;
	}
	auth_hex(digest, 32, digest_hex + 2);
	const char *p[5] = {id, tenant, name, role, digest_hex};
	r = exec(conn,
		 "INSERT INTO screen_tokens (token_id, tenant, name, role,"
		 " secret_sha256) VALUES ($1, $2, $3, $4, $5)",
		 5, p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return db_error(r);
	PQclear(r);
	printf("Created screen token %s for \"%s\" (role %s, tenant %s).\n"
	       "It is shown only now. Open the page once with "
	       "?token=<token>, or send it\n"
	       "as \"Authorization: Bearer <token>\":\n%s\n",
	       id, name, role, tenant, cred);
	OPENSSL_cleanse(cred, sizeof(cred));
	return 0;
}

static int token_list(PGconn *conn, const char *tenant)
{
	static const char *const heads[] = {"TOKEN_ID", "NAME", "ROLE",
					    "CREATED", "REVOKED"};
	static const int widths[] = {14, 24, 9, 21};

	return cli_list(conn, TOKEN_LIST_SQL, tenant, 5, heads, widths);
}

int cli_token(PGconn *conn, const struct cli_tenant *t, int argc, char **argv)
{
	const char *tenant = t->id;

	if (argc >= 1 && strcmp(argv[0], "create") == 0)
		return token_create(conn, t, argc - 1, argv + 1);
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return token_list(conn, tenant);
	if (argc == 2 && strcmp(argv[0], "revoke") == 0) {
		const char *p[2] = {argv[1], tenant};
		return cli_update(conn,
				  "UPDATE screen_tokens SET revoked_at = now()"
				  " WHERE token_id = $1 AND tenant = $2"
				  " AND revoked_at IS NULL",
				  2, p, "no active screen token",
				  "Revoked screen token");
	}
	return token_usage();
}

/* ---- kendali user ---- */

static int user_usage(void)
{
	fprintf(stderr,
		"usage: kendali user add NAME --role "
		"wall|operator|mayor|admin|province\n"
		"       kendali user passwd NAME\n"
		"       kendali user list\n"
		"       kendali user disable NAME\n"
		"       kendali user enable NAME\n"
		"The password is asked for on a terminal, else read as one "
		"line from stdin.\n");
	return 2;
}

/* One line of stdin, without echo on a terminal.  Returns 0 or -1. */
static int read_line(const char *prompt, char *out, size_t len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char *ok;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ok = fgets(out, (int)len, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (!ok)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* Asks for a new password and hashes it into stored.  Returns 0 or 2. */
static int new_password(char *stored, size_t len)
{
	char pw[AUTH_PASSWORD_MAX + 2], again[AUTH_PASSWORD_MAX + 2];
	int rc = 0;

	if (read_line("Password: ", pw, sizeof(pw)) < 0) {
		fprintf(stderr, "kendali: no password given\n");
		return 2;
	}
	if (strlen(pw) < AUTH_PASSWORD_MIN || strlen(pw) > AUTH_PASSWORD_MAX) {
		fprintf(stderr, "kendali: a password has %d to %d characters\n",
			AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
		rc = 2;
	} else if (isatty(STDIN_FILENO) &&
		   (read_line("Again: ", again, sizeof(again)) < 0 ||
		    strcmp(pw, again) != 0)) {
		fprintf(stderr, "kendali: the passwords differ\n");
		rc = 2;
	} else if (auth_password_hash(pw, stored, len) < 0) {
		fprintf(stderr, "kendali: cannot hash the password\n");
		rc = 1;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(again, sizeof(again));
	return rc;
}

static int user_add(PGconn *conn, const struct cli_tenant *t, int argc,
		    char **argv)
{
	const char *tenant = t->id;
	const char *name = argc > 0 ? argv[0] : NULL, *role = NULL;
	char stored[AUTH_HASH_LEN];
	PGresult *r;
	int rc;

	const struct opt opts[] = {{"--role", &role}, {0}};

	if (argc < 1 || !parse_opts(argc - 1, argv + 1, opts) || !name ||
	    !role || name[0] == '-')
		return user_usage();
	if (!good_name(name)) {
		fprintf(stderr, "kendali: a user name has 1 to 64 letters, "
				"digits and . _ - @\n");
		return 2;
	}
	if (!good_role(role, t))
		return 2;
	if ((rc = new_password(stored, sizeof(stored))) != 0)
		return rc;
	const char *p[4] = {name, tenant, role, stored};
	r = exec(conn,
		 "INSERT INTO users (username, tenant, role, password_hash)"
		 " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
		 4, p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return db_error(r);
	if (strcmp(PQcmdTuples(r), "1") != 0) {
		fprintf(stderr, "kendali: there is already a user %s\n", name);
		PQclear(r);
		return 1;
	}
	PQclear(r);
	printf("Created user %s (role %s, tenant %s).\n", name, role, tenant);
	return 0;
}

static int user_passwd(PGconn *conn, const char *tenant, const char *name)
{
	char stored[AUTH_HASH_LEN];
	int rc = new_password(stored, sizeof(stored));

	if (rc)
		return rc;
	/* A new password ends the sessions opened with the old one. */
	const char *p[3] = {name, tenant, stored};
	return cli_update(conn,
			  "WITH u AS (UPDATE users SET password_hash = $3"
			  " WHERE username = $1 AND tenant = $2"
			  " RETURNING username, tenant),"
			  " s AS (UPDATE sessions SET ended_at = now()"
			  " FROM u WHERE sessions.username = u.username"
			  " AND sessions.tenant = u.tenant"
			  " AND ended_at IS NULL)"
			  " SELECT 1 FROM u",
			  3, p, "no user", "Changed the password of");
}

static int user_list(PGconn *conn, const char *tenant)
{
	static const char *const heads[] = {"USER", "ROLE", "CREATED",
					    "DISABLED", "SESSIONS"};
	static const int widths[] = {24, 9, 21, 21};

	return cli_list(conn, USER_LIST_SQL, tenant, 5, heads, widths);
}

int cli_user(PGconn *conn, const struct cli_tenant *t, int argc, char **argv)
{
	const char *tenant = t->id;
	const char *cmd = argc > 0 ? argv[0] : "";

	if (strcmp(cmd, "add") == 0)
		return user_add(conn, t, argc - 1, argv + 1);
	if (strcmp(cmd, "list") == 0 && argc == 1)
		return user_list(conn, tenant);
	if (argc != 2)
		return user_usage();
	const char *p[2] = {argv[1], tenant};
	if (strcmp(cmd, "passwd") == 0)
		return user_passwd(conn, tenant, argv[1]);
	if (strcmp(cmd, "disable") == 0)
		return cli_update(
		    conn,
		    "WITH u AS (UPDATE users SET disabled_at = now()"
		    " WHERE username = $1 AND tenant = $2"
		    " AND disabled_at IS NULL RETURNING username, tenant),"
		    " s AS (UPDATE sessions SET ended_at = now()"
		    " FROM u WHERE sessions.username = u.username"
		    " AND sessions.tenant = u.tenant AND ended_at IS NULL)"
		    " SELECT 1 FROM u",
		    2, p, "no enabled user", "Disabled user");
	if (strcmp(cmd, "enable") == 0)
		return cli_update(conn,
				  "UPDATE users SET disabled_at = NULL"
				  " WHERE username = $1 AND tenant = $2"
				  " AND disabled_at IS NOT NULL",
				  2, p, "no disabled user", "Enabled user");
	return user_usage();
}

/* ---- kendali key ---- */

static int key_usage(void)
{
	fprintf(stderr, "usage: kendali key create --poster NAME --types "
			"call,report,sensor\n"
			"                          [--sensors ID,ID,...]\n"
			"       kendali key list\n"
			"       kendali key revoke KEY_ID\n");
	return 2;
}

static int key_create(PGconn *conn, const char *tenant, int argc, char **argv)
{
	const char *poster = NULL, *types = NULL, *sensors = NULL;
	unsigned char idb[KEY_ID_LEN / 2], secretb[24], digest[32];
	char id[KEY_ID_LEN + 1], secret[49], digest_hex[70], pg_types[64];
	unsigned mask;
	PGresult *r;

	const struct opt opts[] = {{"--poster", &poster},
				   {"--types", &types},
				   {"--sensors", &sensors},
				   {0}};

	if (!parse_opts(argc, argv, opts) || !poster || !types)
		return key_usage();
	if (strlen(poster) < 1 || strlen(poster) > 64) {
		fprintf(stderr,
			"kendali: --poster must be 1 to 64 characters\n");
		return 2;
	}
	mask = keys_parse_types(types);
	/* Every name given must be a type; an empty mask is useless. */
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s", types);
	int named = 0;
	for (char *save, *t = strtok_r(tmp, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		named++;
	if (!mask || __builtin_popcount(mask) != named) {
		fprintf(stderr, "kendali: --types takes a comma-separated list "
				"of call, report, sensor\n");
		return 2;
	}
	if (sensors && (!sensors[0] || strlen(sensors) > 4000 ||
			strspn(sensors, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"abcdefghijklmnopqrstuvwxyz0123456789"
					"._:-,") != strlen(sensors) ||
			sensors[0] == ',' || strstr(sensors, ",,") ||
			sensors[strlen(sensors) - 1] == ',')) {
		fprintf(stderr, "kendali: --sensors takes a comma-separated "
				"list of sensor ids\n");
		return 2;
	}
	if (RAND_bytes(idb, sizeof(idb)) != 1 ||
	    RAND_bytes(secretb, sizeof(secretb)) != 1) {
		fprintf(stderr, "kendali: no random bytes\n");
		return 1;
	}
	auth_hex(idb, sizeof(idb), id);
	auth_hex(secretb, sizeof(secretb), secret);
	auth_sha256(secret, digest);
	strcpy(digest_hex, "\\x");
	auth_hex(digest, 32, digest_hex + 2);
	snprintf(pg_types, sizeof(pg_types), "{%s}", types);
	char *pg_sensors = NULL;
	if (sensors) {
		pg_sensors = malloc(strlen(sensors) + 3);
		if (!pg_sensors)
			return 1;
		sprintf(pg_sensors, "{%s}", sensors);
	}
	const char *p[6] = {id,	      tenant,	  poster,
			    pg_types, digest_hex, pg_sensors};
	r = PQexecParams(conn,
			 "INSERT INTO api_keys (key_id, tenant, poster, types,"
			 " secret_sha256, sensors)"
			 " VALUES ($1, $2, $3, $4, $5, $6)",
			 6, NULL, p, NULL, NULL, 0);
	free(pg_sensors);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "kendali: %s", PQresultErrorMessage(r));
		PQclear(r);
		return 1;
	}
	PQclear(r);
	printf("Created key %s for poster \"%s\" (types %s, sensors %s, "
	       "tenant %s).\n"
	       "It is shown only now; store it in the agency's "
	       "system:\n" KEY_PREFIX "%s_%s\n",
	       id, poster, types, sensors ? sensors : "all", tenant, id,
	       secret);
	return 0;
}

static int key_list(PGconn *conn, const char *tenant)
{
	static const char *const heads[] = {"KEY_ID", "POSTER", "TYPES",
					    "CREATED", "REVOKED"};
	static const int widths[] = {14, 24, 20, 21};

	return cli_list(conn, KEY_LIST_SQL, tenant, 5, heads, widths);
}

static int key_revoke(PGconn *conn, const char *tenant, const char *id)
{
	const char *p[2] = {id, tenant};

	return cli_update(conn,
			  "UPDATE api_keys SET revoked_at = now()"
			  " WHERE key_id = $1 AND tenant = $2"
			  " AND revoked_at IS NULL",
			  2, p, "no active key", "Revoked key");
}

int cli_key(PGconn *conn, const struct cli_tenant *t, int argc, char **argv)
{
	const char *tenant = t->id;

	if (argc < 1)
		return key_usage();
	if (strcmp(argv[0], "create") == 0 && t->province) {
		fprintf(stderr,
			"kendali: %s is a province: agencies post to its "
			"members, so keys belong to them (--tenant MEMBER)\n",
			tenant);
		return 2;
	}
	if (strcmp(argv[0], "create") == 0)
		return key_create(conn, tenant, argc - 1, argv + 1);
	if (strcmp(argv[0], "list") == 0 && argc == 1)
		return key_list(conn, tenant);
	if (strcmp(argv[0], "revoke") == 0 && argc == 2)
		return key_revoke(conn, tenant, argv[1]);
	return key_usage();
}

/* ---- kendali tenant ---- */

static int tenant_usage(void)
{
	fprintf(
	    stderr,
	    "usage: kendali tenant create ID --name NAME --head HEAD "
	    "[--tz ZONE]\n"
	    "                             [--province --members ID,ID,...]\n"
	    "       kendali tenant list\n"
	    "       kendali tenant import ID DIR\n"
	    "ID: 1 to 32 lower-case letters, digits and -, beginning with "
	    "a letter.\n"
	    "HEAD: the head's title, e.g. \"Wali Kota\", \"Bupati\", "
	    "\"Gubernur\".\n"
	    "ZONE: the tenant's time zone (default Asia/Jakarta), one "
	    "whose offset\n"
	    "does not change during the year, e.g. Asia/Makassar, "
	    "Asia/Jayapura.\n"
	    "DIR: the regency's or city's districts.json, agencies.json "
	    "and\n"
	    "gauges.json (docs/reference-data.md), imported all or "
	    "nothing.\n");
	return 2;
}

bool cli_tenant_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > CLI_TENANT_ID_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/*
 * Whether zone is a time zone PostgreSQL knows whose offset is the same on
 * the first of every month this year: the server keeps a tenant's offset,
 * not its rules (every zone of Indonesia qualifies).  -1 on a database
 * error (printed).
 */
static int fixed_zone(PGconn *conn, const char *zone)
{
	static const char sql[] =
	    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_timezone_names"
	    "  WHERE name = $1) THEN"
	    " (SELECT count(DISTINCT (d AT TIME ZONE $1) - (d AT TIME ZONE"
	    "  'UTC')) FROM generate_series(date_trunc('year', now()),"
	    "  date_trunc('year', now()) + interval '11 months',"
	    "  interval '1 month') d) = 1"
	    " ELSE false END";
	const char *p[1] = {zone};
	PGresult *r = exec(conn, sql, 1, p);
	int ok;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		db_error(r);
		return -1;
	}
	ok = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return ok;
}

/* Checks each id of the comma-separated members: an existing regency or
 * city in no other province.  Returns 0 or the exit code (said). */
static int check_members(PGconn *conn, const char *members)
{
	static const char sql[] =
	    "SELECT t.kind, m.province FROM tenants t"
	    " LEFT JOIN tenant_members m ON m.member = t.id WHERE t.id = $1";
	char *list = strdup(members), *save = NULL;
	int rc = 0;

	if (!list)
		return 1;
	for (char *id = strtok_r(list, ",", &save); id && !rc;
	     id = strtok_r(NULL, ",", &save)) {
		const char *p[1] = {id};
		PGresult *r = exec(conn, sql, 1, p);

		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			rc = db_error(r);
			break;
		}
		if (PQntuples(r) != 1)
			fprintf(stderr, "kendali: --members: no tenant %s\n",
				id);
		else if (strcmp(PQgetvalue(r, 0, 0), "local") != 0)
			fprintf(stderr,
				"kendali: --members: %s is a province\n", id);
		else if (!PQgetisnull(r, 0, 1))
			fprintf(stderr,
				"kendali: --members: %s is already a member "
				"of %s\n",
				id, PQgetvalue(r, 0, 1));
		else {
			PQclear(r);
			continue;
		}
		PQclear(r);
		rc = 2;
	}
	free(list);
	return rc;
}

static bool good_member_list(const char *s)
{
	size_t n = strlen(s);
	char *list, *save = NULL;
	bool ok = n > 0 && n <= 4000 && s[0] != ',' && s[n - 1] != ',' &&
		  !strstr(s, ",,");

	if (!ok || !(list = strdup(s)))
		return false;
	for (char *id = strtok_r(list, ",", &save); id && ok;
	     id = strtok_r(NULL, ",", &save))
		ok = cli_tenant_id_valid(id);
	free(list);
	return ok;
}

/* Runs sql with n parameters inside the current transaction; 0 or 1. */
static int run(PGconn *conn, const char *sql, int n, const char *const *p)
{
	PGresult *r = exec(conn, sql, n, p);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		return db_error(r);
	PQclear(r);
	return 0;
}

static int tenant_create(PGconn *conn, int argc, char **argv)
{
	const char *id = argc > 0 ? argv[0] : NULL, *name = NULL, *head = NULL,
		   *tz = "Asia/Jakarta", *province = NULL, *members = NULL;
	int rc;

	const struct opt opts[] = {
	    {"--name", &name, false},	    {"--head", &head, false},
	    {"--tz", &tz, false},	    {"--province", &province, true},
	    {"--members", &members, false}, {0}};

	if (argc < 1 || id[0] == '-' || !parse_opts(argc - 1, argv + 1, opts) ||
	    !name || !head || (members && !province))
		return tenant_usage();
	if (!cli_tenant_id_valid(id)) {
		fprintf(stderr,
			"kendali: a tenant id has 1 to %d lower-case "
			"letters, digits and -, beginning with a "
			"letter\n",
			CLI_TENANT_ID_MAX);
		return 2;
	}
	if (!name[0] || strlen(name) > 200 || !head[0] || strlen(head) > 64) {
		fprintf(stderr, "kendali: --name takes 1 to 200 bytes, --head "
				"1 to 64\n");
		return 2;
	}
	if (members && !good_member_list(members)) {
		fprintf(stderr, "kendali: --members takes a comma-separated "
				"list of tenant ids\n");
		return 2;
	}
	if ((rc = fixed_zone(conn, tz)) <= 0) {
		if (rc == 0)
			fprintf(stderr,
				"kendali: --tz: %s is not a time zone with "
				"one offset all year (e.g. Asia/Jakarta, "
				"Asia/Makassar, Asia/Jayapura)\n",
				tz);
		return rc < 0 ? 1 : 2;
	}
	if (members && (rc = check_members(conn, members)) != 0)
		return rc;

	/* The tenant and its members together, or nothing. */
	const char *p[5] = {id, name, head, tz,
			    province ? "province" : "local"};
	const char *m[2] = {id, members};
	if ((rc = run(conn, "BEGIN", 0, NULL)) != 0)
		return rc;
	PGresult *r =
	    exec(conn,
		 "INSERT INTO tenants (id, name, head, time_zone, kind)"
		 " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
		 5, p);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = db_error(r);
	else if (strcmp(PQcmdTuples(r), "1") != 0) {
		fprintf(stderr, "kendali: there is already a tenant %s\n", id);
		PQclear(r);
		rc = 1;
	} else {
		PQclear(r);
		if (members)
			rc = run(conn,
				 "INSERT INTO tenant_members (province, member)"
				 " SELECT $1, unnest(string_to_array($2, ','))",
				 2, m);
	}
	if (rc) {
		run(conn, "ROLLBACK", 0, NULL);
		return rc;
	}
	if ((rc = run(conn, "COMMIT", 0, NULL)) != 0)
		return rc;
	printf("Created %s %s, \"%s\" (head: %s, time zone %s%s%s).\n",
	       province ? "province" : "tenant", id, name, head, tz,
	       members ? ", members " : "", members ? members : "");
	return 0;
}

static const char TENANT_LIST_SQL[] =
    "SELECT t.id, t.kind, t.time_zone, t.head, t.name,"
    " coalesce((SELECT string_agg(m.member, ',' ORDER BY m.member)"
    "  FROM tenant_members m WHERE m.province = t.id), '-')"
    " FROM tenants t ORDER BY t.kind, t.id";

int cli_tenant(PGconn *conn, int argc, char **argv)
{
	static const char *const heads[] = {"TENANT", "KIND", "TIME_ZONE",
					    "HEAD",   "NAME", "MEMBERS"};
	static const int widths[] = {16, 8, 14, 12, 28};

	if (argc >= 1 && strcmp(argv[0], "create") == 0)
		return tenant_create(conn, argc - 1, argv + 1);
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return cli_list(conn, TENANT_LIST_SQL, NULL, 6, heads, widths);
	if (argc == 3 && strcmp(argv[0], "import") == 0)
		return cli_tenant_import(conn, argv[1], argv[2]);
	return tenant_usage();
}

int cli_tenant_pick(PGconn *conn, const char *given, struct cli_tenant *t)
{
	const char *p[1] = {given};
	PGresult *r;

	if (given && !cli_tenant_id_valid(given)) {
		fprintf(stderr,
			"kendali: --tenant: no tenant \"%s\" "
			"(`kendali tenant list` shows them)\n",
			given);
		return 2;
	}
	r = exec(conn,
		 given ? "SELECT id, kind FROM tenants WHERE id = $1"
		       : "SELECT id, kind FROM tenants ORDER BY id",
		 given ? 1 : 0, given ? p : NULL);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return db_error(r);
	if (PQntuples(r) != 1) {
		if (given)
			fprintf(stderr,
				"kendali: --tenant: no tenant %s "
				"(`kendali tenant list` shows them)\n",
				given);
		else
			fprintf(stderr,
				"kendali: this database has %d tenants: say "
				"which with --tenant ID (`kendali tenant "
				"list` shows them)\n",
				PQntuples(r));
		PQclear(r);
		return 2;
	}
	snprintf(t->id, sizeof(t->id), "%s", PQgetvalue(r, 0, 0));
	t->province = strcmp(PQgetvalue(r, 0, 1), "province") == 0;
	PQclear(r);
	return 0;
}
