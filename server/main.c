/*
 * kendali - the command centre's backend.  This file reads the command
 * line and dispatches to the subcommands; the server itself is app.c.
 */
#include "app.h"
#include "auth.h"
#include "cli.h"
#include "event.h"
#include "keys.h"
#include "log.h"
#include "migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KENDALI_VERSION
#define KENDALI_VERSION "dev"
#endif

static void help(FILE *f)
{
	struct config d;

	app_config_defaults(&d);
	fprintf(f,
		"kendali %s - backend of a city command centre (ruang "
		"kendali)\n\n",
		KENDALI_VERSION);
	fputs("Usage:\n"
	      "  kendali serve [options]      run the server (migrates first)\n"
	      "  kendali migrate              apply the schema migrations and "
	      "exit\n"
	      "  kendali tenant create ID --name NAME --head HEAD [--tz ZONE]\n"
	      "                 [--province --members ID,ID,...]\n"
	      "                               create a regency or city (or a "
	      "province\n"
	      "                               seeing its members together)\n"
	      "  kendali tenant list          list the tenants\n"
	      "  kendali tenant import ID DIR load a tenant's kecamatan, "
	      "agencies and gauges\n"
	      "                               (docs/reference-data.md)\n"
	      "  kendali key create --poster NAME --types call,report,sensor\n"
	      "                               create an API key for an agency "
	      "system;\n"
	      "                               the key is printed alone on the "
	      "last line\n"
	      "  kendali key list             list keys (never their secrets)\n"
	      "  kendali key revoke KEY_ID    revoke a key\n"
	      "  kendali token create --name NAME --role ROLE\n"
	      "                               create a wall screen's or "
	      "tablet's token\n"
	      "                               (roles: wall, operator, mayor, "
	      "admin)\n"
	      "  kendali token list | revoke TOKEN_ID\n"
	      "  kendali user add NAME --role ROLE\n"
	      "                               create a login (password asked, "
	      "or one\n"
	      "                               line of stdin)\n"
	      "  kendali user passwd|disable|enable NAME | list\n"
	      "  kendali --help | --version\n"
	      "\n"
	      "key, token and user take --tenant ID, the tenant they work on "
	      "(needed\n"
	      "when the database has more than one).  tenant, key, token and "
	      "user need\n"
	      "the schema `kendali migrate` makes; they never migrate "
	      "themselves.\n"
	      "\n"
	      "The database is taken from DATABASE_URL (a libpq connection "
	      "string or\n"
	      "URI, e.g. postgresql://kendali@localhost/kendali); if unset, "
	      "libpq's\n"
	      "defaults (PGHOST, PGDATABASE, ...) apply.\n"
	      "\n"
	      "Options of serve:\n",
	      f);
	fprintf(
	    f,
	    "  --listen HOST:PORT     address to listen on (default %s:%d)\n"
	    "  --static DIR           the pages' directory (default %s)\n"
	    "  --tenant ID            tenant served (default %s)\n"
	    "  --publish-ms N         websocket coalescing interval "
	    "(default %d)\n"
	    "  --max-body BYTES       largest request body (default %zu)\n"
	    "  --max-batch N          most events per request (default "
	    "%zu)\n"
	    "  --sla-hours CAT=H      report SLA for a category (default "
	    "%lld h each)\n"
	    "  --request-timeout S    longest a request may take (default "
	    "%d)\n",
	    d.host, d.port, d.static_dir, d.tenant, d.publish_ms, d.max_body,
	    d.max_batch, (long long)(d.sla_us[0] / (INT64_C(3600) * 1000000)),
	    d.request_timeout_s);
	fprintf(
	    f,
	    "  --db-timeout S         a connection attempt or statement "
	    "the database\n"
	    "                         leaves unanswered for S seconds "
	    "fails, and the\n"
	    "                         connection is made again (default "
	    "%d)\n"
	    "  --ws-ping S            ping a screen silent for S seconds, "
	    "drop it\n"
	    "                         when silent for 3S (default %d)\n"
	    "  --rate-limit N         requests per second per API key, in\n"
	    "                         bursts of up to 2N (default %.0f; 0: "
	    "off)\n"
	    "  --session-hours N      how long a login lasts (default %d)\n",
	    d.db_timeout_s, d.ws_ping_s, d.rate_limit, d.session_hours);
	fprintf(f,
		"  --anonymous-loopback   let requests from this machine "
		"(127.0.0.0/8)\n"
		"                         read and acknowledge without a login "
		"(demo)\n"
		"  --max-conns-per-ip N   open connections per client address\n"
		"                         (default %d; 0: no limit)\n"
		"  --max-logins N         logins checked at once; more get 503 "
		"(default %d)\n"
		"  --host-name NAME       a host name browsers use for this "
		"server\n"
		"                         (repeatable; IP addresses and "
		"localhost always\n"
		"                         work, other names are refused)\n"
		"  --tls-cert FILE        serve HTTPS and WSS with this "
		"certificate (PEM)\n"
		"  --tls-key FILE         and this private key (PEM)\n"
		"  --no-migrate           do not apply migrations at start-up\n"
		"  --log-level LEVEL      debug, info, warn or error (default "
		"info)\n",
		d.max_conns_per_ip, d.max_logins);
}

static int bad(const char *what, const char *value)
{
	fprintf(stderr, "kendali: invalid %s \"%s\" (see kendali --help)\n",
		what, value);
	return 2;
}

static int parse_listen(const char *s, struct config *cfg, char *host,
			size_t len)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= len)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	cfg->host = host;
	cfg->port = (int)port;
	return 0;
}

static long parse_long(const char *s, long min, long max, bool *ok)
{
	char *end;
	long v = strtol(s, &end, 10);

	*ok = *s && !*end && v >= min && v <= max;
	return v;
}

static int parse_sla(const char *s, struct config *cfg)
{
	const char *eq = strchr(s, '=');
	bool ok;

	if (!eq)
		return -1;
	long h = parse_long(eq + 1, 1, 24 * 365, &ok);
	if (!ok)
		return -1;
	for (int c = 0; c < EV_RC_COUNT; c++) {
		const char *name = ev_category_name(EV_REPORT, c);
		if (strlen(name) == (size_t)(eq - s) &&
		    strncmp(name, s, (size_t)(eq - s)) == 0) {
			cfg->sla_us[c] = (int64_t)h * 3600 * 1000000;
			return 0;
		}
	}
	return -1;
}

#define HOST_NAMES_MAX 16

/* A DNS name: letters, digits, '-' and '.', at most 253 bytes. */
static bool host_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 253 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

static int serve(int argc, char **argv, struct config *cfg)
{
	static char host[256];
	static const char *host_names[HOST_NAMES_MAX];
	bool ok = true;

	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--no-migrate") == 0) {
			cfg->migrate = false;
			continue;
		}
		if (strcmp(o, "--anonymous-loopback") == 0) {
			cfg->anonymous_loopback = true;
			continue;
		}
		if (!v)
			return bad("option (missing value)", o);
		i++;
		if (strcmp(o, "--listen") == 0) {
			if (parse_listen(v, cfg, host, sizeof(host)) < 0)
				return bad("--listen", v);
		} else if (strcmp(o, "--static") == 0) {
			cfg->static_dir = v;
		} else if (strcmp(o, "--tenant") == 0) {
			cfg->tenant = v;
		} else if (strcmp(o, "--publish-ms") == 0) {
			cfg->publish_ms = (int)parse_long(v, 10, 5000, &ok);
		} else if (strcmp(o, "--max-body") == 0) {
			cfg->max_body =
			    (size_t)parse_long(v, 1024, 64 << 20, &ok);
		} else if (strcmp(o, "--max-batch") == 0) {
			cfg->max_batch = (size_t)parse_long(v, 1, 100000, &ok);
		} else if (strcmp(o, "--tls-cert") == 0) {
			cfg->tls_cert = v;
		} else if (strcmp(o, "--tls-key") == 0) {
			cfg->tls_key = v;
		} else if (strcmp(o, "--rate-limit") == 0) {
			cfg->rate_limit =
			    (double)parse_long(v, 0, 1000000, &ok);
		} else if (strcmp(o, "--session-hours") == 0) {
			cfg->session_hours =
			    (int)parse_long(v, 1, 24 * 30, &ok);
		} else if (strcmp(o, "--max-conns-per-ip") == 0) {
			cfg->max_conns_per_ip =
			    (int)parse_long(v, 0, 1000000, &ok);
		} else if (strcmp(o, "--max-logins") == 0) {
			cfg->max_logins = (int)parse_long(v, 1, 1000, &ok);
		} else if (strcmp(o, "--host-name") == 0) {
			if (!host_name_ok(v) ||
			    cfg->n_host_names >= HOST_NAMES_MAX)
				return bad("--host-name (a DNS name, at most "
					   "16 of them)",
					   v);
			host_names[cfg->n_host_names++] = v;
			cfg->host_names = host_names;
		} else if (strcmp(o, "--db-timeout") == 0) {
			cfg->db_timeout_s = (int)parse_long(v, 1, 3600, &ok);
		} else if (strcmp(o, "--ws-ping") == 0) {
			cfg->ws_ping_s = (int)parse_long(v, 1, 3600, &ok);
		} else if (strcmp(o, "--request-timeout") == 0) {
			cfg->request_timeout_s =
			    (int)parse_long(v, 1, 3600, &ok);
		} else if (strcmp(o, "--sla-hours") == 0) {
			if (parse_sla(v, cfg) < 0)
				return bad("--sla-hours (CATEGORY=HOURS)", v);
		} else if (strcmp(o, "--log-level") == 0) {
			static const char *const lv[] = {"debug", "info",
							 "warn", "error"};
			int found = -1;
			for (int l = 0; l < 4; l++)
				if (strcmp(v, lv[l]) == 0)
					found = l;
			if (found < 0)
				return bad("--log-level", v);
			log_set_level((enum log_level)found);
		} else {
			return bad("option", o);
		}
		if (!ok)
			return bad(o, v);
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr,
			"kendali: --tls-cert and --tls-key go together\n");
		return 2;
	}
	return app_serve(cfg);
}

static PGconn *connect_blocking(const struct config *cfg)
{
	PGconn *conn = PQconnectdb(cfg->database_url);

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "kendali: cannot connect to the database: %s",
			PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static int migrate(const struct config *cfg)
{
	char err[512];
	PGconn *conn = connect_blocking(cfg);
	int n;

	if (!conn)
		return 1;
	n = migrate_run(conn, err, sizeof(err));
	PQfinish(conn);
	if (n < 0) {
		fprintf(stderr, "kendali: %s\n", err);
		return 1;
	}
	printf("%d migration(s) applied; schema at version %d.\n", n,
	       migrations[migrations_count - 1].version);
	return 0;
}

/*
 * Takes "--tenant ID" out of argv (anywhere after the subcommand) into
 * *tenant.  Returns the new argc, or -1 when --tenant has no value.
 */
static int take_tenant(int argc, char **argv, const char **tenant)
{
	int n = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--tenant") != 0) {
			argv[n++] = argv[i];
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		*tenant = argv[++i];
	}
	return n;
}

/*
 * `kendali tenant|key|token|user ...`: on a migrated database, key, token
 * and user on the tenant --tenant names (or the only one).
 */
static int admin_cli(const char *cmd, int argc, char **argv,
		     const struct config *cfg)
{
	const char *given = NULL;
	struct cli_tenant tenant;
	PGconn *conn;
	char err[512];
	int rc;

	if (strcmp(cmd, "tenant") != 0 &&
	    (argc = take_tenant(argc, argv, &given)) < 0) {
		fprintf(stderr, "kendali: --tenant needs a tenant id\n");
		return 2;
	}
	if (!(conn = connect_blocking(cfg)))
		return 1;
	/* Only `kendali migrate` migrates: a command that writes a key
	 * must not change the schema under a running server's feet. */
	const struct migration *first;
	int missing;
	if (migrate_pending(conn, &missing, &first, err, sizeof(err)) < 0) {
		fprintf(stderr, "kendali: %s", err);
		PQfinish(conn);
		return 1;
	}
	if (missing) {
		fprintf(stderr,
			"kendali: the database's schema is behind this "
			"kendali (%d migration(s) missing, from %s); run "
			"`kendali migrate` first.\n",
			missing, first->name);
		PQfinish(conn);
		return 1;
	}
	if (strcmp(cmd, "tenant") == 0)
		rc = cli_tenant(conn, argc, argv);
	else if ((rc = cli_tenant_pick(conn, given, &tenant)) != 0)
		; /* said why */
	else if (strcmp(cmd, "key") == 0)
		rc = cli_key(conn, &tenant, argc, argv);
	else if (strcmp(cmd, "token") == 0)
		rc = cli_token(conn, &tenant, argc, argv);
	else
		rc = cli_user(conn, &tenant, argc, argv);
	PQfinish(conn);
	return rc;
}

int main(int argc, char **argv)
{
	struct config cfg;

	app_config_defaults(&cfg);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		help(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kendali %s\n", KENDALI_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2, &cfg);
	if (strcmp(argv[1], "migrate") == 0 && argc == 2)
		return migrate(&cfg);
	if (strcmp(argv[1], "tenant") == 0 || strcmp(argv[1], "key") == 0 ||
	    strcmp(argv[1], "token") == 0 || strcmp(argv[1], "user") == 0)
		return admin_cli(argv[1], argc - 2, argv + 2, &cfg);
	help(stderr);
	return 2;
}
