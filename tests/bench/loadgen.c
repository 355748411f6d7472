/*
 * loadgen - a load generator for kendali's ingest endpoint,
 * POST /api/v1/events.
 *
 * It keeps N keep-alive HTTP/1.1 connections to a loopback server and posts
 * realistic, valid events on them.  In the closed loop (the default) every
 * connection has one request in flight at a time and sends the next as soon
 * as the previous is answered, which measures the most the server takes.  In
 * the open loop (--rate) requests are due on a fixed schedule whatever the
 * server does, and a request's latency counts from the time it was due, so a
 * server that falls behind shows it in the latency rather than in a silently
 * lower offered load.
 *
 * Only libuv and libm: the requests are written by hand and the answers are
 * read by a minimal parser (status line, Content-Length, body), which is all
 * the server's answers need.
 */
/* POSIX and BSD interfaces (gmtime_r, strncasecmp) even under -std=c11. */
#define _DEFAULT_SOURCE

#include <uv.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#define NS_PER_MS UINT64_C(1000000)
#define RETRY_DELAY_MS 100     /* before reconnecting after an error */
#define TICK_MS 100	       /* housekeeping: timeouts and stalls */
#define MAX_RESPONSE (1 << 20) /* larger answers are not the server's */
#define MAX_STATUS 600

enum ev_kind { KIND_CALL, KIND_REPORT, KIND_MIX };

static const char *const kind_names[] = {"call", "report", "mix"};

#define MAX_KEYS 256

struct options {
	const char *url;
	char host[64]; /* numeric address, for the Host header */
	int port;
	char path[256];
	struct sockaddr_storage addr;
	/* Connection i posts with keys[i % nkeys]: keys of several tenants
	 * spread the load over them. */
	const char *keys[MAX_KEYS];
	int nkeys;
	int connections;
	int batch;
	double duration_s;
	uint64_t events; /* 0: run for duration_s */
	double rate;	 /* events per second; 0: closed loop */
	double warmup_s;
	bool warmup_set;
	double timeout_s;
	enum ev_kind kind;
	const char *ids_path;
	const char *json_path;
};

/* Counters of one part of the run: the measured window, or all of it. */
struct stats {
	uint64_t requests;	     /* answered, whatever the status */
	uint64_t events;	     /* sum of "accepted" */
	uint64_t duplicates;	     /* sum of "duplicates" */
	uint64_t status[MAX_STATUS]; /* answers other than 202 */
	uint64_t connect;	     /* failed connection attempts */
	uint64_t io;	   /* connection lost with a request in flight */
	uint64_t timeout;  /* no answer within --timeout */
	uint64_t protocol; /* an answer that is not HTTP as expected */
	uint64_t mismatch; /* 202 whose counts do not add up */
};

enum conn_state {
	CONN_CLOSED,
	CONN_CONNECTING,
	CONN_READY,
	CONN_CLOSING,
	CONN_WAITING, /* for the reconnect timer */
};

struct conn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_timer_t retry;
	enum conn_state state;
	const char *key;  /* its API key */
	bool busy;	  /* a request is in flight */
	bool writing;	  /* its write has not completed yet */
	bool want_next;	  /* answered before the write completed */
	bool close_after; /* the server said Connection: close */
	unsigned retry_ms;

	char head[1024];
	size_t head_len;
	char *body;
	size_t body_len, body_cap;

	uint64_t first_event; /* the request's events are numbered */
	int nevents;	      /* first_event .. first_event + nevents - 1 */
	uint64_t start_ns;    /* sent, or due in the open loop */
	uint64_t sent_ns;

	char *in;
	size_t in_len, in_cap;
	size_t head_end; /* 0 until the answer's headers are in */
	size_t content_length;
	int status;
};

enum phase { PHASE_PROBE, PHASE_RUN, PHASE_DONE };

static struct options opt = {
    .url = "http://127.0.0.1:8080",
    .connections = 64,
    .batch = 1,
    .duration_s = 10,
    .warmup_s = 2,
    .timeout_s = 30,
    .kind = KIND_MIX,
};

static uv_loop_t *loop;
static struct conn *conns;
static uv_timer_t tick_timer, deadline_timer, pace_timer;
static uv_signal_t sigint;
static enum phase phase = PHASE_PROBE;
static bool stopping;
static int exit_code;
static char runid[9];
static FILE *ids_file;

static uint64_t t0_ns, warmup_end_ns, deadline_ns, meas_end_ns;
static uint64_t last_progress_ns;
static uint64_t next_event; /* the number of the next event to send */
static unsigned inflight;
static unsigned next_scan; /* where the open loop looks for idle ones */

/* The open loop's schedule: request k is due at t0 + k * interval. */
static uint64_t interval_ns;
static uint64_t k_sent, k_max;
static uint64_t unsent; /* due before the deadline, never sent */

static struct stats meas, all;
static uint32_t *lat_us; /* latencies of the measured requests */
static size_t lat_n, lat_cap;
static struct rusage ru_start, ru_end;
static uint64_t ru_wall_start, ru_wall_end;

static void conn_open(struct conn *c);
static void conn_next(struct conn *c);
static void conn_close(struct conn *c, unsigned retry_ms);
static void finish(void);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory");
	return p;
}

/* ---- options ---- */

static const char usage_text[] =
    "Usage: loadgen [options]\n"
    "\n"
    "Posts events to kendali's POST /api/v1/events and reports the\n"
    "throughput and the latency of the acknowledgements.\n"
    "\n"
    "  --url URL        loopback server (http://127.0.0.1:8080)\n"
    "  --key KEY        API key (default: $KENDALI_KEY); given again,\n"
    "                   each connection takes the next key in turn\n"
    "  --connections N  keep-alive connections (64)\n"
    "  --batch N        events per request, an array when > 1 (1)\n"
    "  --duration S     seconds measured, after the warm-up (10)\n"
    "  --events N       send N events in all instead\n"
    "  --rate R         open loop at R events/s in all; latency\n"
    "                   counts from the time a request was due\n"
    "  --type T         call, report or mix (mix)\n"
    "  --warmup S       seconds run first and left out (2; 0 with\n"
    "                   --events)\n"
    "  --timeout S      longest wait for an answer (30)\n"
    "  --ids FILE       write every acknowledged event id, one a line\n"
    "  --json FILE      write the summary as JSON too\n"
    "  --help\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static double parse_num(const char *name, const char *v, double min, double max)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < min || d > max)
		die("invalid %s \"%s\" (expected a number from %g to %g)", name,
		    v, min, max);
	return d;
}

/*
 * The target must be this machine: a load generator aimed at someone
 * else's server is an attack, so the address is checked, not trusted.
 */
static void parse_url(const char *url)
{
	const char *p = url, *host, *host_end, *rest;
	char name[64];
	size_t n;
	long port = 80;

	if (strncmp(p, "http://", 7) != 0)
		die("--url must start with http:// (got \"%s\")", url);
	p += 7;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			die("--url: unclosed [ in \"%s\"", url);
		rest = host_end + 1;
	} else {
		host = p;
		host_end = p + strcspn(p, ":/");
		rest = host_end;
	}
	n = (size_t)(host_end - host);
	if (n == 0 || n >= sizeof(name))
		die("--url: bad host in \"%s\"", url);
	memcpy(name, host, n);
	name[n] = '\0';
	if (*rest == ':') {
		char *end;
		port = strtol(rest + 1, &end, 10);
		if (end == rest + 1 || port < 1 || port > 65535)
			die("--url: bad port in \"%s\"", url);
		rest = end;
	}
	if (*rest && *rest != '/')
		die("--url: cannot read \"%s\"", url);
	/* The URL's path, if any, prefixes the API's. */
	n = strlen(rest);
	while (n > 0 && rest[n - 1] == '/')
		n--;
	if (n + sizeof("/api/v1/events") > sizeof(opt.path))
		die("--url: path too long");
	memcpy(opt.path, rest, n);
	strcpy(opt.path + n, "/api/v1/events");
	for (const char *s = opt.path; *s; s++)
		if (*s <= ' ' || *s >= 127)
			die("--url: the path may not contain \"%c\"", *s);

	if (strcmp(name, "localhost") == 0)
		strcpy(name, "127.0.0.1");
	struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
	if (uv_ip4_addr(name, (int)port, a4) == 0) {
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
			die("%s is not a loopback address; loadgen only "
			    "targets this machine (127.0.0.0/8, ::1)",
			    name);
		snprintf(opt.host, sizeof(opt.host), "%s:%ld", name, port);
	} else if (uv_ip6_addr(name, (int)port, a6) == 0) {
		static const unsigned char lo[16] = {[15] = 1};
		if (memcmp(&a6->sin6_addr, lo, 16) != 0)
			die("%s is not a loopback address; loadgen only "
			    "targets this machine (127.0.0.0/8, ::1)",
			    name);
		snprintf(opt.host, sizeof(opt.host), "[%s]:%ld", name, port);
	} else {
		die("--url: \"%s\" is not localhost or a numeric loopback "
		    "address",
		    name);
	}
	opt.port = (int)port;
}

static void parse_options(int argc, char **argv)
{
	const char *type = "mix";

	for (int i = 1; i < argc; i++) {
		char *o = argv[i], *v = NULL, *eq;

		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strncmp(o, "--", 2) != 0) {
			usage(stderr);
			die("unexpected argument \"%s\"", o);
		}
		eq = strchr(o, '=');
		if (eq) {
			*eq = '\0';
			v = eq + 1;
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			die("%s needs a value", o);
		}
		if (strcmp(o, "--url") == 0) {
			opt.url = v;
		} else if (strcmp(o, "--key") == 0) {
			if (opt.nkeys == MAX_KEYS)
				die("at most %d --key", MAX_KEYS);
			opt.keys[opt.nkeys++] = v;
		} else if (strcmp(o, "--connections") == 0) {
			opt.connections = (int)parse_num(o, v, 1, 10000);
		} else if (strcmp(o, "--batch") == 0) {
			opt.batch = (int)parse_num(o, v, 1, 100000);
		} else if (strcmp(o, "--duration") == 0) {
			opt.duration_s = parse_num(o, v, 0.1, 86400);
		} else if (strcmp(o, "--events") == 0) {
			opt.events = (uint64_t)parse_num(o, v, 1, 1e12);
		} else if (strcmp(o, "--rate") == 0) {
			opt.rate = parse_num(o, v, 0.001, 1e9);
		} else if (strcmp(o, "--warmup") == 0) {
			opt.warmup_s = parse_num(o, v, 0, 3600);
			opt.warmup_set = true;
		} else if (strcmp(o, "--timeout") == 0) {
			opt.timeout_s = parse_num(o, v, 0.1, 3600);
		} else if (strcmp(o, "--type") == 0) {
			type = v;
		} else if (strcmp(o, "--ids") == 0) {
			opt.ids_path = v;
		} else if (strcmp(o, "--json") == 0) {
			opt.json_path = v;
		} else {
			usage(stderr);
			die("unknown option %s", o);
		}
	}
	if (strcmp(type, "call") == 0)
		opt.kind = KIND_CALL;
	else if (strcmp(type, "report") == 0)
		opt.kind = KIND_REPORT;
	else if (strcmp(type, "mix") == 0)
		opt.kind = KIND_MIX;
	else
		die("--type must be call, report or mix (got \"%s\")", type);
	if (opt.events && !opt.warmup_set)
		opt.warmup_s = 0;
	if (!opt.nkeys && getenv("KENDALI_KEY"))
		opt.keys[opt.nkeys++] = getenv("KENDALI_KEY");
	if (!opt.nkeys || !*opt.keys[0])
		die("no API key: give --key KEY or set KENDALI_KEY");
	for (int k = 0; k < opt.nkeys; k++) {
		if (strlen(opt.keys[k]) > 512)
			die("an API key is longer than 512 characters");
		for (const char *s = opt.keys[k]; *s; s++)
			if (*s <= ' ' || *s >= 127)
				die("an API key may only hold printable ASCII");
	}
	parse_url(opt.url);
}

/* ---- events ---- */

/*
 * A stateless mix of the event's number, so that the three events of one
 * call agree on its category and place without any table of calls.
 */
static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static const char *const districts[] = {
    "Banyumanik",
    "Candisari",
    "Gajahmungkur",
    "Gayamsari",
    "Genuk",
    "Gunungpati",
    "Mijen",
    "Ngaliyan",
    "Pedurungan",
    "Semarang Barat",
    "Semarang Selatan",
    "Semarang Tengah",
    "Semarang Timur",
    "Semarang Utara",
    "Tembalang",
    "Tugu",
};

static const char *const call_categories[] = {
    "emergency", "fire",      "medical", "police",
    "disaster",	 "complaint", "info",	 "other",
};

static const char *const report_categories[] = {
    "flood",   "road",	       "drainage", "waste",	     "streetlight",
    "traffic", "public_order", "health",   "administration", "other",
};

/* A title a citizen might give, one for each report category above. */
static const char *const report_titles[] = {
    "Banjir setinggi lutut di jalan",
    "Jalan berlubang membahayakan pengendara",
    "Saluran air tersumbat sampah",
    "Sampah menumpuk belum diangkut",
    "Lampu jalan mati sejak kemarin",
    "Lampu lalu lintas tidak menyala",
    "Pedagang kaki lima menutup trotoar",
    "Genangan air jadi sarang nyamuk",
    "Antrean layanan KTP terlalu lama",
    "Pohon tumbang menutup jalan",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void body_reserve(struct conn *c, size_t more)
{
	if (c->body_len + more <= c->body_cap)
		return;
	c->body_cap = c->body_cap * 2 > c->body_len + more
			  ? c->body_cap * 2
			  : c->body_len + more + 4096;
	c->body = xrealloc(c->body, c->body_cap);
}

static void body_add(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void body_add(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = c->body_cap - c->body_len;
		va_start(ap, fmt);
		n = vsnprintf(c->body + c->body_len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			die("cannot format an event");
		if ((size_t)n < room)
			break;
		body_reserve(c, (size_t)n + 1);
	}
	c->body_len += (size_t)n;
}

/* Somewhere in Semarang, from the number of the call or ticket. */
static void add_place(struct conn *c, uint64_t h)
{
	double lat = -7.10 + (double)((h >> 16) % 1700) / 10000.0;
	double lon = 110.30 + (double)((h >> 32) % 2000) / 10000.0;

	body_add(c,
		 ",\"district\":\"%s\",\"location\":{\"lat\":%.4f,"
		 "\"lon\":%.4f}",
		 districts[h % COUNT(districts)], lat, lon);
}

/*
 * Event n of the run.  Calls go through received, answered and closed (three
 * consecutive numbers); reports arrive as received.  The mix repeats one
 * call's three events and one report.
 */
static void add_event(struct conn *c, uint64_t n, const char *now)
{
	static const char *const call_status[] = {"received", "answered",
						  "closed"};
	bool call;
	uint64_t subject;
	unsigned step;

	switch (opt.kind) {
	case KIND_CALL:
		call = true;
		subject = n / 3;
		step = (unsigned)(n % 3);
		break;
	case KIND_REPORT:
		call = false;
		subject = n;
		step = 0;
		break;
	default:
		call = n % 4 != 3;
		subject = n / 4;
		step = (unsigned)(n % 4);
		break;
	}
	uint64_t h = mix64(subject ^ (call ? 0 : UINT64_C(1) << 63));

	body_add(c,
		 "{\"id\":\"lg-%s-%" PRIu64 "\",\"type\":\"%s\","
		 "\"occurred_at\":\"%s\"",
		 runid, n, call ? "call" : "report", now);
	if (call) {
		if (step == 0)
			add_place(c, h);
		body_add(c,
			 ",\"call\":{\"call_id\":\"lg-%s-c%" PRIu64 "\","
			 "\"status\":\"%s\"",
			 runid, subject, call_status[step]);
		if (step == 0)
			body_add(
			    c, ",\"category\":\"%s\"",
			    call_categories[(h >> 8) % COUNT(call_categories)]);
		body_add(c, "}}");
	} else {
		unsigned cat = (unsigned)((h >> 8) % COUNT(report_categories));
		add_place(c, h);
		body_add(c,
			 ",\"report\":{\"ticket\":\"lg-%s-r%" PRIu64 "\","
			 "\"status\":\"received\",\"category\":\"%s\","
			 "\"title\":\"%s\"}}",
			 runid, subject, report_categories[cat],
			 report_titles[cat]);
	}
}

/* Now in RFC 3339, UTC, to the microsecond: the server keeps microseconds. */
static void format_now(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000) % 1000000);
}

static void build_request(struct conn *c, uint64_t first, int count)
{
	char now[64];

	format_now(now, sizeof(now));
	c->body_len = 0;
	body_reserve(c, (size_t)count * 400 + 2);
	if (count > 1)
		body_add(c, "[");
	for (int i = 0; i < count; i++) {
		if (i)
			body_add(c, ",");
		add_event(c, first + (uint64_t)i, now);
	}
	if (count > 1)
		body_add(c, "]");
	int n = snprintf(c->head, sizeof(c->head),
			 "POST %s HTTP/1.1\r\n"
			 "Host: %s\r\n"
			 "Authorization: Bearer %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n"
			 "\r\n",
			 opt.path, opt.host, c->key, c->body_len);
	if (n < 0 || (size_t)n >= sizeof(c->head))
		die("request header too long");
	c->head_len = (size_t)n;
	c->first_event = first;
	c->nevents = count;
}

/* ---- statistics ---- */

static void record_latency(uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (lat_n == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 65536;
		lat_us = xrealloc(lat_us, lat_cap * sizeof(*lat_us));
	}
	lat_us[lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The nearest-rank percentile, in milliseconds, of the sorted latencies. */
static double percentile(double p)
{
	size_t i;

	if (!lat_n)
		return 0;
	i = (size_t)ceil(p * (double)lat_n);
	if (i > 0)
		i--;
	if (i >= lat_n)
		i = lat_n - 1;
	return lat_us[i] / 1000.0;
}

static uint64_t errors_of(const struct stats *s)
{
	uint64_t n = s->connect + s->io + s->timeout + s->protocol;

	for (int i = 0; i < MAX_STATUS; i++)
		n += s->status[i];
	return n;
}

/* Counts go to the whole run, and to the window when measured. */
#define COUNT_BOTH(field, measured)                                            \
	do {                                                                   \
		all.field++;                                                   \
		if (measured)                                                  \
			meas.field++;                                          \
	} while (0)

/*
 * Whether something that happens at ns falls in the measured window: after
 * the warm-up and, when running for a time, not after the deadline.  A
 * request counts by the time of its answer (or failure), which makes the
 * throughput exact over a fixed time, and in the open loop still shows a
 * server that falls behind: its answers come ever later after they were
 * due, and what never got sent is counted apart.
 */
static bool in_window(uint64_t ns)
{
	return phase == PHASE_RUN && ns >= warmup_end_ns &&
	       (opt.events || ns <= deadline_ns);
}

/* ---- connections ---- */

static void on_retry(uv_timer_t *t)
{
	struct conn *c = t->data;

	c->state = CONN_CLOSED;
	conn_open(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	unsigned ms = c->retry_ms;

	c->state = CONN_CLOSED;
	c->in_len = 0;
	c->head_end = 0;
	c->writing = c->want_next = c->close_after = false;
	if (phase != PHASE_RUN || stopping)
		return;
	if (ms == 0) {
		conn_open(c);
	} else {
		c->state = CONN_WAITING;
		uv_timer_start(&c->retry, on_retry, ms, 0);
	}
}

/*
 * Closes the connection and, unless the run is over, opens it again after
 * retry_ms.  A request in flight is lost: the caller has counted it.
 */
static void conn_close(struct conn *c, unsigned retry_ms)
{
	if (c->state != CONN_CONNECTING && c->state != CONN_READY)
		return;
	if (c->busy) {
		c->busy = false;
		inflight--;
	}
	c->state = CONN_CLOSING;
	c->retry_ms = retry_ms;
	uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* A request is over, answered or not: the run may be too. */
static void check_done(void)
{
	if (phase != PHASE_RUN || inflight)
		return;
	if (stopping || (opt.events && next_event >= opt.events))
		finish();
}

static void conn_lost(struct conn *c, const char *why)
{
	if (c->busy)
		COUNT_BOTH(io, in_window(uv_hrtime()));
	if (phase == PHASE_PROBE) {
		fprintf(stderr,
			"loadgen: the connection to %s was lost during the "
			"first request (%s)\n",
			opt.host, why);
		exit_code = 1;
		conn_close(c, 0);
		finish();
		return;
	}
	conn_close(c, RETRY_DELAY_MS);
	check_done();
}

static void on_write(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	c->writing = false;
	if (status < 0) {
		if (status != UV_ECANCELED && c->state == CONN_READY)
			conn_lost(c, uv_strerror(status));
		return;
	}
	if (c->want_next) {
		c->want_next = false;
		conn_next(c);
	}
}

static void send_request(struct conn *c, uint64_t start_ns)
{
	uv_buf_t bufs[2];
	int r;

	c->busy = true;
	inflight++;
	c->sent_ns = uv_hrtime();
	c->start_ns = start_ns ? start_ns : c->sent_ns;
	bufs[0] = uv_buf_init(c->head, (unsigned)c->head_len);
	bufs[1] = uv_buf_init(c->body, (unsigned)c->body_len);
	c->writing = true;
	r = uv_write(&c->write, (uv_stream_t *)&c->tcp, bufs, 2, on_write);
	if (r < 0) {
		c->writing = false;
		conn_lost(c, uv_strerror(r));
	}
}

/* How many events the next request carries; 0 when all are sent. */
static int next_count(void)
{
	uint64_t left;

	if (!opt.events)
		return opt.batch;
	if (next_event >= opt.events)
		return 0;
	left = opt.events - next_event;
	return left < (uint64_t)opt.batch ? (int)left : opt.batch;
}

/* The open loop: requests due by now, capped by the last one there is. */
static uint64_t due_now(uint64_t now)
{
	uint64_t k = now >= t0_ns ? (now - t0_ns) / interval_ns + 1 : 0;

	return k < k_max ? k : k_max;
}

/* Gives an idle, connected connection its next request, if there is one. */
static void conn_next(struct conn *c)
{
	uint64_t now = uv_hrtime(), start = 0;
	int count;

	if (c->state != CONN_READY || c->busy)
		return;
	if (c->writing) {
		c->want_next = true;
		return;
	}
	if (c->close_after) {
		conn_close(c, 0);
		return;
	}
	if (phase == PHASE_PROBE) {
		count = next_count();
	} else {
		if (phase != PHASE_RUN || stopping)
			return;
		if (!opt.events && now >= deadline_ns)
			return;
		if (opt.rate > 0) {
			if (k_sent >= due_now(now))
				return;
			start = t0_ns + k_sent * interval_ns;
			k_sent++;
		}
		count = next_count();
		if (!count)
			return;
	}
	build_request(c, next_event, count);
	next_event += (uint64_t)count;
	send_request(c, start);
}

static void write_ids(const struct conn *c)
{
	for (int i = 0; i < c->nevents; i++)
		fprintf(ids_file, "lg-%s-%" PRIu64 "\n", runid,
			c->first_event + (uint64_t)i);
}

/* The number after "name": in a small JSON object, or -1. */
static long long json_number(const char *body, size_t len, const char *name)
{
	char pat[40];
	const char *p, *end = body + len;
	size_t n;

	n = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", name);
	for (p = body; p + n <= end; p++) {
		if (memcmp(p, pat, n) != 0)
			continue;
		p += n;
		while (p < end && (*p == ' ' || *p == ':'))
			p++;
		if (p < end && *p >= '0' && *p <= '9') {
			long long v = 0;
			while (p < end && *p >= '0' && *p <= '9')
				v = v * 10 + (*p++ - '0');
			return v;
		}
		return -1;
	}
	return -1;
}

static void start_run(void);

static void on_answer(struct conn *c, const char *body, size_t len)
{
	uint64_t now = uv_hrtime();
	bool m = in_window(now);

	c->busy = false;
	inflight--;
	last_progress_ns = now;
	if (phase == PHASE_PROBE && c->status != 202) {
		fprintf(stderr,
			"loadgen: the server answered the first request with "
			"HTTP %d:\n%.*s\n",
			c->status, (int)len, body);
		if (c->status == 401)
			fprintf(stderr, "loadgen: check --key / KENDALI_KEY\n");
		exit_code = 1;
		finish();
		return;
	}
	COUNT_BOTH(requests, m);
	if (m) {
		record_latency(now - c->start_ns);
		meas_end_ns = now;
	}
	if (c->status == 202) {
		long long acc = json_number(body, len, "accepted");
		long long dup = json_number(body, len, "duplicates");
		if (acc < 0 || dup < 0 || acc + dup != c->nevents) {
			COUNT_BOTH(mismatch, m);
			if (acc < 0)
				acc = 0;
			if (dup < 0)
				dup = 0;
		}
		all.events += (uint64_t)acc;
		all.duplicates += (uint64_t)dup;
		if (m) {
			meas.events += (uint64_t)acc;
			meas.duplicates += (uint64_t)dup;
		}
		if (ids_file)
			write_ids(c);
	} else {
		int s = c->status > 0 && c->status < MAX_STATUS ? c->status : 0;
		COUNT_BOTH(status[s], m);
	}
	if (phase == PHASE_PROBE) {
		start_run();
		return;
	}
	conn_next(c);
	check_done();
}

/*
 * Reads the answer's status line and headers once they are all in: 1 when
 * they are, 0 when more is needed, -1 when it is not HTTP.
 */
static int parse_head(struct conn *c)
{
	char *p = c->in, *end = c->in + c->in_len, *eoh = NULL;
	bool have_length = false;

	for (char *q = p; q + 4 <= end; q++)
		if (q[0] == '\r' && q[1] == '\n' && q[2] == '\r' &&
		    q[3] == '\n') {
			eoh = q;
			break;
		}
	if (!eoh)
		return c->in_len > 16384 ? -1 : 0;
	if (eoh - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	c->status = atoi(p + 9);
	if (c->status < 100 || c->status > 999)
		return -1;
	c->close_after = p[7] == '0'; /* HTTP/1.0 closes by default */
	for (char *line = (char *)memchr(p, '\n', (size_t)(eoh + 2 - p)) + 1;
	     line < eoh;) {
		char *eol = memchr(line, '\r', (size_t)(eoh - line));
		size_t n = (size_t)((eol ? eol : eoh) - line);
		if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
			char *e;
			unsigned long long v = strtoull(line + 15, &e, 10);
			if (e == line + 15 || v > MAX_RESPONSE)
				return -1;
			c->content_length = (size_t)v;
			have_length = true;
		} else if (n > 11 &&
			   strncasecmp(line, "connection:", 11) == 0) {
			for (size_t i = 11; i + 5 <= n; i++)
				if (strncasecmp(line + i, "close", 5) == 0)
					c->close_after = true;
		} else if (n > 18 &&
			   strncasecmp(line, "transfer-encoding:", 18) == 0) {
			/* The server always sends a length; no chunks here. */
			return -1;
		}
		line += n + 2;
	}
	if (!have_length) {
		/* Only answers without a body may leave it out. */
		if (c->status != 204 && c->status != 304 && c->status >= 200)
			return -1;
		c->content_length = 0;
	}
	c->head_end = (size_t)(eoh - p) + 4;
	return 1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	if (c->in_cap - c->in_len < 16384) {
		c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
		c->in = xrealloc(c->in, c->in_cap);
	}
	*buf =
	    uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf; /* it is c->in, grown by on_alloc */
	if (nread == 0)
		return;
	if (nread < 0) {
		/* An idle keep-alive connection may be closed at any time;
		 * only a request in flight makes it an error. */
		if (c->busy)
			conn_lost(c, uv_strerror((int)nread));
		else if (c->state == CONN_READY)
			conn_close(c, nread == UV_EOF ? 0 : RETRY_DELAY_MS);
		return;
	}
	c->in_len += (size_t)nread;
	while (c->in_len > 0 && c->state == CONN_READY) {
		if (!c->busy || (!c->head_end && parse_head(c) < 0) ||
		    c->in_len > MAX_RESPONSE + 16384) {
			COUNT_BOTH(protocol, c->busy && in_window(uv_hrtime()));
			if (phase == PHASE_PROBE) {
				fprintf(
				    stderr,
				    "loadgen: %s did not answer in HTTP/1.1 "
				    "as expected\n",
				    opt.host);
				exit_code = 1;
				finish();
				return;
			}
			conn_close(c, RETRY_DELAY_MS);
			check_done();
			return;
		}
		if (!c->head_end || c->in_len < c->head_end + c->content_length)
			return;
		size_t used = c->head_end + c->content_length;
		/* The answer is parsed before the buffer moves: on_answer
		 * may send the next request but never reads. */
		on_answer(c, c->in + c->head_end, c->content_length);
		c->head_end = 0;
		if (c->state == CONN_READY || c->state == CONN_CLOSING) {
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
		}
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	if (status == UV_ECANCELED || c->state != CONN_CONNECTING)
		return;
	if (status < 0) {
		COUNT_BOTH(connect, in_window(uv_hrtime()));
		if (phase == PHASE_PROBE) {
			fprintf(stderr, "loadgen: cannot connect to %s: %s\n",
				opt.host, uv_strerror(status));
			exit_code = 1;
			conn_close(c, 0);
			finish();
			return;
		}
		conn_close(c, RETRY_DELAY_MS);
		return;
	}
	c->state = CONN_READY;
	uv_tcp_nodelay(&c->tcp, 1);
	status = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (status < 0) {
		conn_lost(c, uv_strerror(status));
		return;
	}
	conn_next(c);
}

static void conn_open(struct conn *c)
{
	int r;

	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->connect.data = c;
	c->write.data = c;
	c->state = CONN_CONNECTING;
	r = uv_tcp_connect(&c->connect, &c->tcp,
			   (const struct sockaddr *)&opt.addr, on_connect);
	if (r < 0) {
		/* Out of ports or descriptors: retrying later is all one
		 * can do, and the error counts like a refused connection. */
		COUNT_BOTH(connect, in_window(uv_hrtime()));
		if (phase == PHASE_PROBE)
			die("cannot connect to %s: %s", opt.host,
			    uv_strerror(r));
		conn_close(c, RETRY_DELAY_MS);
	}
}

/* ---- the run ---- */

/* Sends what the open loop's schedule has made due on idle connections. */
static void on_pace(uv_timer_t *t)
{
	uint64_t now = uv_hrtime(), due = due_now(now);
	unsigned n = (unsigned)opt.connections;

	for (unsigned i = 0; i < n && k_sent < due; i++) {
		struct conn *c = &conns[(next_scan + i) % n];
		if (c->state == CONN_READY && !c->busy && !c->writing)
			conn_next(c);
	}
	next_scan = (next_scan + 1) % n;
	if (stopping || k_sent >= k_max)
		return;
	/* Wake up when the next request is due, or at once if some are
	 * already waiting for a connection to be free. */
	uint64_t next = t0_ns + due * interval_ns;
	uint64_t ms = next > now ? (next - now + NS_PER_MS - 1) / NS_PER_MS : 1;
	uv_timer_start(t, on_pace, ms ? ms : 1, 0);
}

static void on_deadline(uv_timer_t *t)
{
	(void)t;
	if (opt.rate > 0) {
		/* Requests due strictly before the deadline. */
		uint64_t due =
		    (deadline_ns - t0_ns + interval_ns - 1) / interval_ns;
		unsent = due > k_sent ? due - k_sent : 0;
	}
	stopping = true;
	check_done();
}

static void on_tick(uv_timer_t *t)
{
	uint64_t now = uv_hrtime(), limit = (uint64_t)(opt.timeout_s * 1e9);
	unsigned down = 0;

	(void)t;
	for (int i = 0; i < opt.connections; i++) {
		struct conn *c = &conns[i];
		if (c->busy && now - c->sent_ns > limit) {
			COUNT_BOTH(timeout, in_window(now));
			conn_close(c, RETRY_DELAY_MS);
			if (phase == PHASE_PROBE) {
				fprintf(stderr,
					"loadgen: no answer to the first "
					"request in %.0f s\n",
					opt.timeout_s);
				exit_code = 1;
				finish();
				return;
			}
		}
		if (c->state != CONN_READY)
			down++;
	}
	/* Waiting with nothing asked and every connection up is not a
	 * stall; waiting on answers or on connections for longer than the
	 * timeout is. */
	if (!inflight && !down)
		last_progress_ns = now;
	if (now - last_progress_ns > limit) {
		fprintf(stderr,
			"loadgen: no answer from %s for %.0f s; giving up\n",
			opt.host, opt.timeout_s);
		exit_code = 1;
		finish();
		return;
	}
	check_done();
}

static void on_sigint(uv_signal_t *s, int signum)
{
	(void)signum;
	fprintf(stderr, "loadgen: interrupted; finishing\n");
	if (phase == PHASE_PROBE) {
		exit_code = 1;
		finish();
		return;
	}
	stopping = true;
	uv_signal_stop(s);
	check_done();
}

static void start_run(void)
{
	uint64_t now = uv_hrtime();

	phase = PHASE_RUN;
	getrusage(RUSAGE_SELF, &ru_start);
	ru_wall_start = now;
	t0_ns = now;
	warmup_end_ns = t0_ns + (uint64_t)(opt.warmup_s * 1e9);
	deadline_ns = warmup_end_ns + (uint64_t)(opt.duration_s * 1e9);
	meas_end_ns = warmup_end_ns;
	last_progress_ns = now;
	if (!opt.events)
		uv_timer_start(&deadline_timer, on_deadline,
			       (deadline_ns - now + NS_PER_MS - 1) / NS_PER_MS,
			       0);
	if (opt.rate > 0) {
		interval_ns = (uint64_t)((double)opt.batch * 1e9 / opt.rate);
		if (interval_ns == 0)
			interval_ns = 1;
		k_max = UINT64_MAX;
		if (opt.events) {
			uint64_t left = opt.events - next_event;
			k_max = (left + (uint64_t)opt.batch - 1) /
				(uint64_t)opt.batch;
		}
		uv_timer_start(&pace_timer, on_pace, 1, 0);
	}
	for (int i = 1; i < opt.connections; i++)
		conn_open(&conns[i]);
	if (opt.events && next_event >= opt.events) {
		check_done();
		return;
	}
	conn_next(&conns[0]);
}

static void close_if_open(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h))
		uv_close(h, NULL);
}

/* Ends the run: every handle is closed, so uv_run returns. */
static void finish(void)
{
	if (phase == PHASE_DONE)
		return;
	if (phase == PHASE_RUN) {
		getrusage(RUSAGE_SELF, &ru_end);
		ru_wall_end = uv_hrtime();
	}
	phase = PHASE_DONE;
	stopping = true;
	close_if_open((uv_handle_t *)&tick_timer);
	close_if_open((uv_handle_t *)&deadline_timer);
	close_if_open((uv_handle_t *)&pace_timer);
	close_if_open((uv_handle_t *)&sigint);
	for (int i = 0; i < opt.connections; i++) {
		struct conn *c = &conns[i];
		if (c->busy) {
			c->busy = false;
			inflight--;
		}
		close_if_open((uv_handle_t *)&c->retry);
		if (c->state == CONN_CONNECTING || c->state == CONN_READY) {
			c->state = CONN_CLOSING;
			uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
		}
	}
}

/* ---- the report ---- */

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void print_row(const char *name, uint64_t m, uint64_t a)
{
	printf("  %-26s %14" PRIu64 " %14" PRIu64 "\n", name, m, a);
}

/*
 * The measured window: the set duration, cut short by an interrupt; with
 * --events, up to the last answer that counted.
 */
static double window_s(void)
{
	uint64_t end = opt.events ? meas_end_ns : deadline_ns;

	if (!opt.events && ru_wall_end < end)
		end = ru_wall_end;
	return end > warmup_end_ns ? (double)(end - warmup_end_ns) / 1e9 : 0;
}

static void report(void)
{
	double window = window_s();
	double eps = window > 0 ? (double)meas.events / window : 0;
	double rps = window > 0 ? (double)meas.requests / window : 0;
	double user = tv_s(ru_end.ru_utime) - tv_s(ru_start.ru_utime);
	double sys = tv_s(ru_end.ru_stime) - tv_s(ru_start.ru_stime);
	double wall = (double)(ru_wall_end - ru_wall_start) / 1e9;
	double sum = 0;
	char mode[64];

	qsort(lat_us, lat_n, sizeof(*lat_us), cmp_u32);
	for (size_t i = 0; i < lat_n; i++)
		sum += lat_us[i];
	double mean = lat_n ? sum / (double)lat_n / 1000.0 : 0;
	double p50 = percentile(0.50), p99 = percentile(0.99);
	double p999 = percentile(0.999), max = percentile(1.0);

	if (opt.rate > 0)
		snprintf(mode, sizeof(mode), "open loop at %g events/s",
			 opt.rate);
	else
		snprintf(mode, sizeof(mode), "closed loop");
	printf("loadgen: %s%s, %d connections, batch %d, type %s, %s\n",
	       opt.host, opt.path, opt.connections, opt.batch,
	       kind_names[opt.kind], mode);
	printf("  run lg-%s: %.1f s warm-up, %.2f s measured\n", runid,
	       opt.warmup_s, window);
	printf("  %-26s %14s %14s\n", "", "measured", "whole run");
	print_row("requests answered", meas.requests, all.requests);
	print_row("events acknowledged", meas.events, all.events);
	print_row("duplicates", meas.duplicates, all.duplicates);
	print_row("errors", errors_of(&meas), errors_of(&all));
	for (int i = 0; i < MAX_STATUS; i++) {
		char name[32];
		if (!all.status[i])
			continue;
		snprintf(name, sizeof(name), "  HTTP %d", i);
		print_row(name, meas.status[i], all.status[i]);
	}
	if (all.connect)
		print_row("  connect failed", meas.connect, all.connect);
	if (all.io)
		print_row("  connection lost", meas.io, all.io);
	if (all.timeout)
		print_row("  timed out", meas.timeout, all.timeout);
	if (all.protocol)
		print_row("  bad HTTP", meas.protocol, all.protocol);
	if (all.mismatch)
		print_row("202 with wrong counts", meas.mismatch, all.mismatch);
	if (opt.rate > 0)
		print_row("due but never sent", unsent, unsent);
	printf("  %-26s %14.1f\n", "events/s", eps);
	printf("  %-26s %14.1f\n", "requests/s", rps);
	printf("  %-26s %14.3f\n", "ack latency p50 ms", p50);
	printf("  %-26s %14.3f\n", "ack latency p99 ms", p99);
	printf("  %-26s %14.3f\n", "ack latency p99.9 ms", p999);
	printf("  %-26s %14.3f\n", "ack latency max ms", max);
	printf("  %-26s %14.2f (%.0f%% of one core)\n", "client CPU s",
	       user + sys, wall > 0 ? 100 * (user + sys) / wall : 0);
	if (!lat_n)
		printf("  (no request was answered in the measured "
		       "window)\n");

	if (!opt.json_path)
		return;
	FILE *f = fopen(opt.json_path, "w");
	if (!f) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", opt.json_path,
			strerror(errno));
		exit_code = exit_code ? exit_code : 1;
		return;
	}
	/* One member a line, so that a shell script can pick one with sed. */
	fprintf(f, "{\n");
	fprintf(f, "  \"url\": \"http://%s%s\",\n", opt.host, opt.path);
	fprintf(f, "  \"run\": \"lg-%s\",\n", runid);
	fprintf(f, "  \"mode\": \"%s\",\n", opt.rate > 0 ? "open" : "closed");
	fprintf(f, "  \"rate\": %g,\n", opt.rate);
	fprintf(f, "  \"connections\": %d,\n", opt.connections);
	fprintf(f, "  \"batch\": %d,\n", opt.batch);
	fprintf(f, "  \"type\": \"%s\",\n", kind_names[opt.kind]);
	fprintf(f, "  \"warmup_s\": %g,\n", opt.warmup_s);
	fprintf(f, "  \"window_s\": %.6f,\n", window);
	fprintf(f, "  \"requests\": %" PRIu64 ",\n", meas.requests);
	fprintf(f, "  \"events_acked\": %" PRIu64 ",\n", meas.events);
	fprintf(f, "  \"duplicates\": %" PRIu64 ",\n", meas.duplicates);
	fprintf(f, "  \"errors_total\": %" PRIu64 ",\n", errors_of(&meas));
	fprintf(f, "  \"errors\": {");
	const char *sep = "";
	for (int i = 0; i < MAX_STATUS; i++) {
		if (meas.status[i]) {
			fprintf(f, "%s\"%d\": %" PRIu64, sep, i,
				meas.status[i]);
			sep = ", ";
		}
	}
	fprintf(f,
		"%s\"connect\": %" PRIu64 ", \"io\": %" PRIu64
		", \"timeout\": %" PRIu64 ", \"protocol\": %" PRIu64 "},\n",
		sep, meas.connect, meas.io, meas.timeout, meas.protocol);
	fprintf(f, "  \"mismatch\": %" PRIu64 ",\n", meas.mismatch);
	fprintf(f, "  \"unsent\": %" PRIu64 ",\n", unsent);
	fprintf(f, "  \"events_per_s\": %.1f,\n", eps);
	fprintf(f, "  \"requests_per_s\": %.1f,\n", rps);
	fprintf(f, "  \"latency_p50_ms\": %.3f,\n", p50);
	fprintf(f, "  \"latency_p99_ms\": %.3f,\n", p99);
	fprintf(f, "  \"latency_p999_ms\": %.3f,\n", p999);
	fprintf(f, "  \"latency_max_ms\": %.3f,\n", max);
	fprintf(f, "  \"latency_mean_ms\": %.3f,\n", mean);
	fprintf(f, "  \"cpu_user_s\": %.3f,\n", user);
	fprintf(f, "  \"cpu_sys_s\": %.3f,\n", sys);
	fprintf(f, "  \"total_requests\": %" PRIu64 ",\n", all.requests);
	fprintf(f, "  \"total_events_acked\": %" PRIu64 ",\n", all.events);
	fprintf(f, "  \"total_duplicates\": %" PRIu64 ",\n", all.duplicates);
	fprintf(f, "  \"total_errors\": %" PRIu64 "\n", errors_of(&all));
	fprintf(f, "}\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", opt.json_path,
			strerror(errno));
		exit_code = exit_code ? exit_code : 1;
	}
}

int main(int argc, char **argv)
{
	unsigned char rnd[4];
	int r;

	parse_options(argc, argv);
	/* A fresh run id keeps every run's event ids new, so each run
	 * measures inserts rather than duplicates. */
	r = uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL);
	if (r < 0)
		die("no random numbers: %s", uv_strerror(r));
	snprintf(runid, sizeof(runid), "%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3]);
	if (opt.ids_path) {
		ids_file = fopen(opt.ids_path, "w");
		if (!ids_file)
			die("cannot write %s: %s", opt.ids_path,
			    strerror(errno));
	}

	loop = uv_default_loop();
	conns = calloc((size_t)opt.connections, sizeof(*conns));
	if (!conns)
		die("out of memory");
	for (int i = 0; i < opt.connections; i++) {
		uv_timer_init(loop, &conns[i].retry);
		conns[i].retry.data = &conns[i];
		conns[i].key = opt.keys[i % opt.nkeys];
	}
	uv_timer_init(loop, &tick_timer);
	uv_timer_init(loop, &deadline_timer);
	uv_timer_init(loop, &pace_timer);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigint, on_sigint, SIGINT);

	/* One request first, alone: a wrong key or URL then ends the run
	 * with the server's explanation instead of N connections' worth of
	 * errors. */
	last_progress_ns = uv_hrtime();
	uv_timer_start(&tick_timer, on_tick, TICK_MS, TICK_MS);
	conn_open(&conns[0]);
	uv_run(loop, UV_RUN_DEFAULT);

	if (ids_file && fclose(ids_file) != 0) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", opt.ids_path,
			strerror(errno));
		exit_code = exit_code ? exit_code : 1;
	}
	if (ru_wall_start)
		report();
	uv_loop_close(loop);
	for (int i = 0; i < opt.connections; i++) {
		free(conns[i].body);
		free(conns[i].in);
	}
	free(conns);
	free(lat_us);
	return exit_code;
}
