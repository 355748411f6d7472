/*
 * server/reqtext.h - the text of a request, read without a socket: the
 * route of a path, the session cookie of a Cookie header, the Host and
 * Origin checks, durations in query arguments and user names.
 *
 * Pure code: the fuzz target of requests (tests/fuzz/fuzz_request.c) calls
 * every function here with arbitrary bytes.
 */
#ifndef KENDALI_REQTEXT_H
#define KENDALI_REQTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- routes ---- */

enum route_id {
	ROUTE_NONE,	 /* no API at this path: 404 */
	ROUTE_EVENTS,	 /* /api/v1/events */
	ROUTE_KPIS,	 /* /api/v1/kpis */
	ROUTE_SENSORS,	 /* /api/v1/sensors */
	ROUTE_SENSOR,	 /* /api/v1/sensors/{id} */
	ROUTE_SERIES,	 /* /api/v1/series */
	ROUTE_ALERTS,	 /* /api/v1/alerts */
	ROUTE_ALERT_ACK, /* /api/v1/alerts/{id}/ack */
	ROUTE_SESSION,	 /* /api/v1/session */
	ROUTE_LOGOUT,	 /* /api/v1/logout */
	ROUTE_HEALTHZ,	 /* /healthz */
	ROUTE_READYZ,	 /* /readyz */
	ROUTE_METRICS,	 /* /metrics */
};

/* Methods, as bits of route.methods (HEAD goes with GET). */
#define ROUTE_GET 1u
#define ROUTE_POST 2u
#define ROUTE_PUT 4u

/*
 * The most a route reads of a body before anything else: small endpoints
 * (a login, a logout, an acknowledgement) take a few KiB, a sensor's
 * registration a little more; ROUTE_BODY_CONFIG is the server's --max-body.
 */
#define ROUTE_BODY_SMALL 4096
#define ROUTE_BODY_SENSOR 16384
#define ROUTE_BODY_CONFIG 0

struct route {
	enum route_id id;
	unsigned methods;    /* ROUTE_GET | ... */
	const char *allowed; /* the methods in words, for a 405 */
	size_t body_max;     /* for POST and PUT: bytes, or ROUTE_BODY_CONFIG */
	const char *param;   /* {id} of the path, into the path; else NULL */
	size_t param_len;    /* may be 0: an empty id is the handler's 4xx */
};

/*
 * Whether path (without the query) is the API's or a health endpoint's:
 * those are answered as problem+json, the others are pages and files.
 */
bool route_is_api(const char *path);

/*
 * The route of an API path; id ROUTE_NONE when there is none.  A {id} is one
 * path segment (no '/').
 */
struct route route_match(const char *path);

/* ---- headers ---- */

/*
 * The value of cookie name in a Cookie header ("a=1; b=2"), copied into out
 * (len bytes with the NUL).  Returns its length, or -1 when the cookie is
 * absent or its value does not fit.
 */
int reqtext_cookie(const char *header, const char *name, char *out, size_t len);

/*
 * Whether a Host header ("name" or "name:port") names this server: a name
 * of names (compared without case), or an IP address literal, which no DNS
 * rebinding can make point elsewhere.  An empty header (HTTP/1.0) passes:
 * browsers always send one.
 */
bool reqtext_host_allowed(const char *host, const char *const *names, size_t n);

/*
 * Whether an Origin header names this server: empty (not a browser's
 * cross-site request), or the scheme the server serves (https when tls)
 * followed by exactly the Host header.
 */
bool reqtext_same_origin(const char *origin, const char *host, bool tls);

/*
 * A duration of a query argument: "90s", "5m", "24h", "30d" or plain
 * seconds.  Returns microseconds, or 0 when malformed, not positive or
 * above max_s seconds.
 */
int64_t reqtext_duration_us(const char *s, int64_t max_s);

/*
 * User names: 1 to 64 of letters, digits, '.', '_', '@' and '-', so that a
 * name is safe in a log line, the audit table and a cookie-less URL.
 */
#define REQTEXT_USERNAME_MAX 64
bool reqtext_username_valid(const char *s, size_t n);

#endif
