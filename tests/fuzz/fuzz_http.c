/*
 * tests/fuzz/fuzz_http.c - libFuzzer target for the server's HTTP path as a
 * client's connection meets it: libwebsockets' parser of requests, then the
 * server's front (server/http.c), router, handlers and access checks
 * (server/api*.c, server/access.c, server/app.c) and, after an upgrade, the
 * publisher's websocket (server/pub.c).
 *
 * fuzz-meson: server/libkendali_server.a
 * fuzz-packages: libwebsockets libuv libpq libcrypto libsystemd
 * fuzz-ldflags: -Wl,--wrap=lws_create_context -Wl,--wrap=log_msg
 *
 * Build and run from the top of the tree with tests/fuzz/run.sh http: it
 * builds the server's library with clang and the sanitizers (meson, in
 * build-fuzz/meson) and links this file to it.  The pages are read from
 * web-static/ of the current directory.  FUZZ_HTTP_LOG=1 in the environment
 * writes the server's log and every answer to stderr.
 *
 * The server is set up as app_serve (server/app.c) sets it up, with the
 * defaults of `kendali serve`, as it runs once its database is lost: both
 * database connections point at a socket that does not exist, so what needs
 * the database is answered 503 and nothing is stored.  What it would have
 * read from the database is put in memory instead: three agency keys (all
 * types; sensor only, scoped to wl-001 and wl-002; call only), a screen
 * token of every role and a login session, spelled out in http.dict, and
 * two gauges, wl-001 (with a reading) and SMG-BKB-SIMONGAN.  The context
 * listens nowhere: each input is what a client sends on one connection
 * (requests, pipelined or not, websocket frames after an upgrade), written
 * to a socket pair whose other end the server adopts.  Once the server has
 * had a few loop turns without answering more, the client ends its stream,
 * and the loop turns until the server closes the connection; the answers
 * are read and dropped.
 *
 * What aborts, besides the sanitizers: the server logging an error (every
 * log_error reachable here is a broken invariant, such as a request
 * answered twice); a first answer that is not HTTP/1.0 or 1.1, or has status
 * 500; a connection on which nothing moves for TURNS_MAX loop turns
 * (the server neither closes it after the client's end nor reads what is
 * left to send); and a connection, screen or descriptor left behind (libuv
 * handles, pub's screens or open descriptors not back to their number before
 * the input), since nothing may carry over from one input to the next.  For the
 * same reason the rate limits start full at every input.  A server that
 * never returns to the loop is libFuzzer's timeout (-timeout, 10 s in
 * run.sh).
 *
 * Not reached: anything that needs the database to answer (a stored
 * alert to acknowledge, a login checked, events committed), and what
 * depends on the client's address (the peer of a socket pair has none, so
 * neither --anonymous-loopback nor /metrics from the machine itself).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <libwebsockets.h>
#include <uv.h>

#include "access.h"
#include "alert.h"
#include "api.h"
#include "app.h"
#include "auth.h"
#include "clock.h"
#include "http.h"
#include "keys.h"
#include "kpi.h"
#include "limit.h"
#include "log.h"
#include "pgconn.h"
#include "pub.h"
#include "sensors.h"
#include "store.h"
#include "tenant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A database that cannot be reached: a Unix socket in no directory. */
#define NO_DATABASE "host=/nonexistent/kendali-fuzz port=5432"
/* Loop turns without a byte from the server before the client's end. */
#define QUIET_TURNS 3
/* Loop turns without a byte either way within which the server must close
 * the connection (after the client's end) or read more of it. */
#define TURNS_MAX 2000

struct lws_context *
__real_lws_create_context(const struct lws_context_creation_info *info);
struct lws_context *
__wrap_lws_create_context(const struct lws_context_creation_info *info);
void __wrap_log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static uv_loop_t loop;
static struct app app;
static struct lws_context *context; /* the one http_new created */
static struct lws_vhost *vhost;
static int handles;  /* libuv handles between inputs */
static bool verbose; /* FUZZ_HTTP_LOG: the server's log and answers */

static void stop(const char *what)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	abort();
}

/* http_new keeps its context to itself; the loop's user learns it here. */
struct lws_context *
__wrap_lws_create_context(const struct lws_context_creation_info *info)
{
	context = __real_lws_create_context(info);
	return context;
}

/* Errors abort; the rest is written only when verbose. */
void __wrap_log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level < LOG_ERROR && !verbose)
		return;
	va_start(ap, fmt);
	fputs("fuzz_http: the server's log: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (level >= LOG_ERROR)
		stop("the server logged an error");
}

/* Credentials, as http.dict spells them; secrets are what they hash. */
#define SECRET "0123456789abcdef0123456789abcdef0123456789abcdef"

#define NKEYCOLS 6
static const char *const key_rows[][NKEYCOLS] = {
    /* key id, poster, types, secret, sensors (NULL: any), tenant */
    {"fuzzkeyall01", "dinas-fuzz", "call,report,sensor", "secretall", NULL,
     "semarang"},
    {"fuzzkeyscop1", "bpbd-fuzz", "sensor", "secretscope", "wl-001,wl-002",
     "semarang"},
    {"fuzzkeycall1", "psc-fuzz", "call", "secretcall", NULL, "semarang"},
};

static const struct {
	enum auth_kind kind;
	const char *id, *name;
	enum auth_role role;
} idents[] = {
    {AUTH_SCREEN, "fuzzwall0001", "wall-fuzz", ROLE_WALL},
    {AUTH_SCREEN, "fuzzoper0001", "oper-fuzz", ROLE_OPERATOR},
    {AUTH_SCREEN, "fuzzmayor001", "mayor-fuzz", ROLE_MAYOR},
    {AUTH_SCREEN, "fuzzadmin001", "admin-fuzz", ROLE_ADMIN},
    {AUTH_USER, "fuzzsess0001", "operator", ROLE_OPERATOR},
};

static void load_keys(struct keys *ks)
{
	PGresAttDesc cols[NKEYCOLS];
	static const char *const names[NKEYCOLS] = {
	    "key_id", "poster", "types", "sha256", "sensors", "tenant"};
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	memset(cols, 0, sizeof(cols));
	for (int c = 0; c < NKEYCOLS; c++)
		cols[c].name = (char *)names[c];
	if (!r || !PQsetResultAttrs(r, NKEYCOLS, cols))
		stop("no result for the keys");
	for (int i = 0; i < (int)(sizeof(key_rows) / sizeof(key_rows[0]));
	     i++) {
		unsigned char sha[32];
		char hex[65];

		auth_sha256(key_rows[i][3], sha);
		auth_hex(sha, 32, hex);
		for (int c = 0; c < NKEYCOLS; c++) {
			const char *v = c == 3 ? hex : key_rows[i][c];
			if (!PQsetvalue(r, i, c, (char *)v,
					v ? (int)strlen(v) : -1))
				stop("no row for a key");
		}
	}
	if (keys_replace(ks, r) < 0 ||
	    keys_count(ks) != (int)(sizeof(key_rows) / sizeof(key_rows[0])))
		stop("keys not loaded");
	PQclear(r);
}

/* Registered gauges, as if loaded: wl-001 within the scoped key's sensors
 * and with a reading, SMG-BKB-SIMONGAN outside them. */
static void load_sensors(struct sensors *ss, int64_t now)
{
	static const char *const defs[][2] = {
	    {"wl-001", "{\"name\":\"Kali Garang\",\"metric\":\"water_level\","
		       "\"unit\":\"cm\",\"thresholds\":{\"waspada\":100,"
		       "\"siaga\":200,\"awas\":300}}"},
	    {"SMG-BKB-SIMONGAN",
	     "{\"name\":\"Banjir Kanal Barat\",\"metric\":\"water_level\","
	     "\"unit\":\"cm\",\"district\":\"Semarang Barat\","
	     "\"location\":{\"lat\":-6.998,\"lon\":110.396},"
	     "\"thresholds\":{\"siaga\":300,\"awas\":400},"
	     "\"offline_after_s\":900}"},
	};

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct ev_sensor_def d;
		struct ev_error e;

		if (ev_parse_sensor_def(defs[i][0], defs[i][1],
					strlen(defs[i][1]), &d, &e) < 0 ||
		    sensors_define(ss, &d, now) < 0)
			stop("sensor not defined");
	}
	sensors_apply_reading(ss, "wl-001", now - 60 * INT64_C(1000000), 42);
}

static void load_identities(struct auth *au)
{
	for (size_t i = 0; i < sizeof(idents) / sizeof(idents[0]); i++) {
		struct identity w = {.kind = idents[i].kind,
				     .role = idents[i].role,
				     .can = auth_role_can(idents[i].role)};

		snprintf(w.id, sizeof(w.id), "%s", idents[i].id);
		snprintf(w.name, sizeof(w.name), "%s", idents[i].name);
		snprintf(w.tenant, sizeof(w.tenant), "semarang");
		auth_sha256(SECRET, w.sha256);
		if (auth_add(au, &w) < 0)
			stop("identity not added");
	}
}

/* The store's sink: nothing is ever committed without a database. */
static void sink_call(void *arg, const char *tenant, const struct kpi_call *c)
{
	stop("a call committed without a database");
}

static void sink_ticket(void *arg, const char *tenant,
			const struct kpi_ticket *t)
{
	stop("a ticket committed without a database");
}

static void sink_reading(void *arg, const char *tenant, const char *id,
			 int64_t at, double v)
{
	stop("a reading committed without a database");
}

static struct pub *ws_admit(void *arg, struct lws *wsi, char *id, size_t len)
{
	return access_ws_admit(arg, wsi, id, len);
}

static void count_handle(uv_handle_t *h, void *arg)
{
	(*(int *)arg)++;
}

static int count_handles(void)
{
	int n = 0;

	uv_walk(&loop, count_handle, &n);
	return n;
}

/* The configuration of `kendali serve` without options, with no database
 * and listening nowhere. */
static void configure(struct config *cfg)
{
	app_config_defaults(cfg);
	cfg->database_url = NO_DATABASE;
	cfg->port = CONTEXT_PORT_NO_LISTEN_SERVER;
	cfg->static_dir = "web-static";
}

/*
 * The rate limits as app_serve sets them, with full buckets: each input
 * starts from them, or whether a request is refused for its rate would
 * depend on the inputs before it and on the clock.
 */
static void fresh_limits(struct app *a)
{
	limit_free(a->limiter);
	limit_free(a->login_limiter);
	a->limiter = limit_new(a->cfg.rate_limit, 2 * a->cfg.rate_limit);
	a->login_limiter = limit_new(1.0 / 6, 10); /* LOGIN_RATE, _BURST */
	if (!a->limiter || !a->login_limiter)
		stop("out of memory");
}

/* Open descriptors: libFuzzer opens some of its own between inputs (the
 * symbolizer's pipes), never during one. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		stop("no /proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int connection(const uint8_t *data, size_t size);

static void setup(void)
{
	struct app *a = &app;
	struct store_sink sink = {sink_call, sink_ticket, sink_reading, a};
	char err[256];

	verbose = getenv("FUZZ_HTTP_LOG") != NULL;
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0)
		stop("no loop");
	configure(&a->cfg);
	a->loop = &loop;
	/* The schema was up to date when the database was last seen. */
	a->schema_missing = 0;
	static const struct tenant_info semarang = {
	    .id = "semarang",
	    .name = "Kota Semarang",
	    .head = "Wali Kota",
	    .time_zone = "Asia/Jakarta",
	    .zone = "WIB",
	    .tz_offset_s = 7 * 3600,
	};
	a->tenant = tenant_new(a, &semarang);
	a->keys = keys_new();
	a->auth = auth_new();
	if (!a->tenant || !a->keys || !a->auth ||
	    tenants_add(&a->tenants, a->tenant) < 0)
		stop("out of memory");
	load_keys(a->keys);
	load_identities(a->auth);
	load_sensors(a->tenant->sensors, clock_now_us());
	kpi_advance(a->tenant->kpi, clock_now_us());

	a->store = store_new(&loop, a->cfg.database_url, &sink,
			     a->cfg.max_pending_events,
			     (unsigned)a->cfg.db_timeout_s * 1000);
	a->reader = pgc_new(&loop, a->cfg.database_url, "reader", 64,
			    (unsigned)a->cfg.db_timeout_s * 1000, NULL, NULL);
	if (!a->store || !a->reader)
		stop("out of memory");
	fresh_limits(a);
	a->door = (struct pub_door){ws_admit, a};
	struct http_config hc = {
	    .host = a->cfg.host,
	    .port = a->cfg.port,
	    .static_dir = a->cfg.static_dir,
	    .max_body = a->cfg.max_body,
	    .request_timeout_s = a->cfg.request_timeout_s,
	    .ws_ping_s = a->cfg.ws_ping_s,
	    .max_conns_per_ip = a->cfg.max_conns_per_ip,
	};
	const struct http_handler handler = {
	    .begin = api_begin,
	    .body = api_body,
	    .page = access_page_file,
	    .upgrade = access_upgrade,
	    .app = a,
	};
	a->http = http_new(&loop, &handler, &hc, &a->door, err, sizeof(err));
	if (!a->http || !context)
		stop(err);
	tenant_start(a->tenant, &loop, http_lws_context(a->http));
	vhost = lws_get_vhost_by_name(context, "kendali");
	if (!vhost)
		stop("no vhost");
	/* The first snapshot, as app_serve publishes before any screen. */
	tenant_touch(a->tenant);
	uv_run(&loop, UV_RUN_NOWAIT);
	if (!a->tenant->published || a->tenant->seq != 1)
		stop("nothing published");
	if (app_ready(a))
		stop("ready without a database");
	/* A first connection makes what lws keeps for every later one. */
	static const char first[] = "GET /healthz HTTP/1.1\r\n"
				    "Host: 127.0.0.1:8080\r\n\r\n";
	if (connection((const uint8_t *)first, sizeof(first) - 1) != 200)
		stop("/healthz does not answer 200");
	handles = count_handles();
}

/* The client's side of a connection. */
struct client {
	int fd;
	char head[16]; /* the start of the first answer */
	size_t head_len;
	size_t received; /* bytes of answers */
	int status;	 /* of the first answer, once read */
};

/* Reads what the server wrote; false at the end of its stream. */
static bool drain(struct client *c)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
		if (verbose)
			fwrite(buf, 1, (size_t)n, stderr);
		c->received += (size_t)n;
		for (ssize_t i = 0; i < n && c->head_len < sizeof(c->head) - 1;
		     i++)
			c->head[c->head_len++] = buf[i];
		c->head[c->head_len] = '\0';
		if (c->status == 0 && c->head_len >= 12) {
			/* lws answers in the request's version. */
			if (strncmp(c->head, "HTTP/1.", 7) != 0 ||
			    (c->head[7] != '0' && c->head[7] != '1') ||
			    c->head[8] != ' ' || c->head[9] < '1' ||
			    c->head[9] > '5')
				stop("an answer that is not HTTP/1.x");
			c->status = atoi(c->head + 9);
		}
	}
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* One client connection sending data; the status of the first answer. */
static int connection(const uint8_t *data, size_t size)
{
	struct client c = {0};
	int sv[2], quiet = 0;
	size_t off = 0;
	bool shut = false;
	lws_sock_file_fd_type fd;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0)
		stop("no socket pair");
	c.fd = sv[1];
	fd.sockfd = sv[0];
	if (!lws_adopt_descriptor_vhost(
		vhost, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, fd, NULL, NULL))
		stop("socket not adopted");
	for (;;) {
		size_t before = c.received, sent = off;

		if (off < size) {
			ssize_t n = write(c.fd, data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			else if (errno != EAGAIN && errno != EINTR)
				off = size; /* the server closed: EPIPE */
		}
		/* The end of the stream once the server has had its turns to
		 * answer: lws drops what it has not written yet when it reads
		 * the end. */
		if (off == size && !shut && quiet >= QUIET_TURNS) {
			shutdown(c.fd, SHUT_WR);
			shut = true;
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		if (!drain(&c))
			break;
		quiet = c.received == before && off == sent ? quiet + 1 : 0;
		if (quiet > TURNS_MAX)
			stop(shut ? "the connection is still open after the "
				    "client's end"
				  : "the server reads no more of the request");
	}
	close(c.fd);
	if (c.status == 500)
		stop("status 500");
	return c.status;
}

/* Where needle (lower case) is in hay, case aside, or NULL. */
static const uint8_t *find_ci(const uint8_t *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; k <= n && i <= n - k; i++) {
		size_t j = 0;

		while (j < k && tolower(hay[i + j]) == needle[j])
			j++;
		if (j == k)
			return hay + i;
	}
	return NULL;
}

/*
 * The input as sent, or cut after its first request (headers and the body
 * its Content-Length gives) when what follows names a body of its own:
 * libwebsockets 4.1.6 reads freed memory when a request with a body is
 * pipelined behind another (its lws_http_action walks the buffered input
 * that the reader is still parsing; docs/security.md, "Known limits").
 * That bug is not ours to fix here, and found it would stop every run at
 * once; test_security.py checks what the server does about its other
 * half, a connection that spun without end.  Pipelined requests without a
 * body are sent whole.  A first Content-Length this cannot read as
 * libwebsockets would (past 2^63, say: found by a full run) leaves its
 * end unknown: then the first head alone is sent, if anything after it
 * names a body.
 */
static bool names_body(const uint8_t *data, size_t size)
{
	return find_ci(data, size, "content-length") ||
	       find_ci(data, size, "transfer-encoding");
}

static size_t sent_part(const uint8_t *data, size_t size)
{
	const uint8_t *end = find_ci(data, size, "\r\n\r\n");
	size_t head, body = 0, digits = 0;
	const uint8_t *cl;

	if (!end)
		return size;
	head = (size_t)(end - data) + 4;
	if ((cl = find_ci(data, head, "content-length:")) != NULL) {
		const uint8_t *v = cl + 15;

		while (v < data + head && *v == ' ')
			v++;
		for (; v < data + head && isdigit(*v) && body <= size; v++) {
			body = body * 10 + (size_t)(*v - '0');
			digits++;
		}
		/* Not a plain small number: where this request ends is
		 * libwebsockets' guess. */
		if (body > size - head || digits > 18 ||
		    (v < data + head && *v != '\r'))
			return names_body(data + head, size - head) ? head
								    : size;
	}
	if (!names_body(data + head + body, size - head - body))
		return size;
	return head + body;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	int n, fds;

	if (!ready) {
		setup();
		ready = true;
	}
	fds = open_fds();
	connection(data, sent_part(data, size));
	/* The server's side closes on the loop: its handles go in a turn. */
	n = count_handles();
	for (int i = 0; i < 10 && n != handles; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		n = count_handles();
	}
	if (n != handles)
		stop("libuv handles left behind by a connection");
	if (pub_clients(app.tenant->pub) != 0)
		stop("a screen left behind by a connection");
	if (open_fds() != fds)
		stop("a file descriptor left open by a connection");
	/* Here rather than before the next input, so that what an input
	 * allocates is freed within it: libFuzzer looks for leaks in an
	 * input that frees less than it allocates. */
	fresh_limits(&app);
	return 0;
}
