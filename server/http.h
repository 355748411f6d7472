/*
 * server/http.h - the HTTP front: one libwebsockets context on the app's
 * libuv loop, serving the API through the handler its creator gives it
 * (api.c's router), the pages of web-static/ and, through the publisher's
 * protocol, the websocket.
 *
 * A request is a struct http_req, allocated apart from lws' per-session data
 * because it may outlive the connection while the database works on it.
 * Every request ends with exactly one http_respond* call; if the client has
 * gone by then, that call frees the request.
 */
#ifndef KENDALI_HTTP_H
#define KENDALI_HTTP_H

#include "auth.h"
#include "buf.h"
#include "reqtext.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct app;
struct pub_door;
struct tenant;
struct lws;

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_OTHER };

/*
 * Where a request is; http.c's set_phase changes it, along these arrows
 * only:
 *
 *	HEADERS -> READING -> WAITING -> READY -> SENT
 *	HEADERS -> WAITING, READY or SENT (a file);  READING -> READY
 */
enum http_phase {
	HTTP_HEADERS, /* its line and headers are in: being decided */
	HTTP_READING, /* its body is arriving */
	HTTP_WAITING, /* with a handler, no response yet: it outlives its
			 connection (a read of the database, say) */
	HTTP_READY,   /* response set, not written */
	HTTP_SENT     /* written (a file: being sent) */
};

/*
 * Who is asking, as the request's headers say (also read for websocket
 * upgrades): the credential from "Authorization: Bearer" or from the
 * session cookie, the Origin and Host headers and the peer's address.
 */
struct http_client {
	char bearer[512];		      /* after "Bearer " */
	char cookie[AUTH_CREDENTIAL_LEN + 1]; /* kendali_session, if sane */
	char origin[128];
	char host[128];
	char peer[64];
	/* ?tenant=: the member a province's identity looks at (else none) */
	char tenant[AUTH_TENANT_MAX + 1];
	bool tls;      /* the connection is HTTPS or WSS */
	bool proxied;  /* X-Forwarded-For, Forwarded, X-Real-IP or Via */
	bool loopback; /* the peer is 127.0.0.0/8 and not a proxy for another */
};

#define HTTP_SESSION_COOKIE "kendali_session"

/* Reads the client's headers of a request or upgrade. */
void http_client_of(struct lws *wsi, struct http_client *c);

/*
 * Whether the Origin header, if any, names this server: the Host header's
 * host, by the scheme the connection uses.  Browsers send it on cross-site
 * requests and on every websocket upgrade.
 */
bool http_same_origin(const struct http_client *c);

struct http_req {
	struct lws *wsi; /* NULL once the client has gone */
	struct app *app;
	enum http_method method;
	enum http_phase phase;
	char path[256];
	char content_type[128];
	struct http_client client; /* credential, origin, peer */
	struct route route;	   /* of an API path (reqtext.h) */
	struct identity who;	   /* set by the API's access checks */
	struct tenant *tenant;	   /* the credential's, set with who */
	int64_t content_length;	   /* -1 when not given */
	size_t body_max;	   /* the route's limit, in bytes */
	struct buf body;
	bool too_large;
	bool close_after; /* the body was not read: close after replying */
	size_t dropped;	  /* bytes of such a body read and dropped */
	bool body_ended;  /* lws saw the end of the body */
	int status;
	const char *resp_type;
	struct buf resp;
	int retry_after_s;
	char location[320];   /* a Location header, if not empty */
	char set_cookie[256]; /* a Set-Cookie header, if not empty */
};

struct http_config {
	const char *host;
	int port;
	const char *static_dir;
	size_t max_body;
	int request_timeout_s;
	const char *tls_cert; /* PEM files; both NULL: plain HTTP */
	const char *tls_key;
	int max_conns_per_ip; /* 0: no limit */
	int ws_ping_s;	      /* ping a silent screen after this; drop at 3x */
	/* Host names the server answers to besides IP addresses and
	 * "localhost" (--host-name); others are refused (DNS rebinding). */
	const char *const *host_names;
	size_t n_host_names;
};

/*
 * What the front's creator (app.c) plugs into it: the front parses, limits
 * and answers, and knows no route, page rule or credential.
 */
struct http_handler {
	/* A request under /api/ or a health path (r->route matched), from its
	 * headers: true when its body is to be read, and body follows. */
	bool (*begin)(struct http_req *r);
	void (*body)(struct http_req *r);
	/* Whether r may be served the page file rel ("/index.html", ...);
	 * false when it has been answered instead (login, 403). */
	bool (*page)(struct http_req *r, const char *rel);
	/* Whether an upgrade to /ws from client c may proceed: 0, or the
	 * status to refuse it with (401, 403) and a detail for a person. */
	int (*upgrade)(struct app *app, const struct http_client *c,
		       char *detail, size_t len);
	struct app *app; /* given to every request as r->app */
};

struct http;

/*
 * Creates the lws context on loop and starts listening, serving requests
 * through handler (copied).  Screens' websockets go through door (kept: it
 * must outlive the context) to the publishers it admits them to.  Returns
 * NULL with err filled.
 */
struct http *http_new(uv_loop_t *loop, const struct http_handler *handler,
		      const struct http_config *cfg, struct pub_door *door,
		      char *err, size_t errlen);
/* The lws context the publishers serve their screens through. */
struct lws_context *http_lws_context(struct http *h);
/*
 * Stops listening and closes every connection.  lws finishes on the loop:
 * run it until its handles close, then call http_free.
 */
void http_close(struct http *h);
void http_free(struct http *h);

void http_respond(struct http_req *r, int status, const char *type,
		  const char *body, size_t len);
/* Sends a JSON body; takes ownership of body. */
void http_respond_json(struct http_req *r, int status, json_t *body);
/*
 * Sends an RFC 9457 problem (application/problem+json) with type
 * "/problems/<code>"; extra, if not NULL, is merged in (ownership taken).
 */
void http_problem(struct http_req *r, int status, const char *code,
		  const char *title, const char *detail, json_t *extra);

/*
 * Percent-encodes n bytes of s (all but RFC 3986's unreserved characters)
 * into out, truncated to fit len; returns the length written.
 */
size_t http_url_encode(const char *s, size_t n, char *out, size_t len);

/* The query string without the argument skip, re-encoded, into buf. */
const char *http_query_except(struct http_req *r, const char *skip, char *buf,
			      size_t len);

/*
 * 503 "unavailable" with Retry-After: the database cannot serve the request
 * now, and nothing of it was stored.
 */
#define HTTP_RETRY_AFTER_S 2
void http_unavailable(struct http_req *r, const char *detail);

/* A query-string argument ("name" without "="), or NULL if absent. */
const char *http_arg(struct http_req *r, const char *name, char *buf, int len);

#endif
