#include "http.h"

#include "log.h"
#include "pub.h"

#include "hmap.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct http {
	struct lws_context *ctx;
	struct http_config cfg;
	struct lws_protocols protocols[3];
	lws_retry_bo_t retry;
	struct http_handler handler;
	/* Open connections by peer address, and the address of each
	 * connection by its socket (for --max-conns-per-ip). */
	struct hmap conns_by_ip;   /* of struct ip_conns */
	struct ip_conns *accepted; /* counted, its wsi not yet created */
	struct hmap counted;	   /* of struct counted */
};

struct http_pss {
	struct http_req *req;
};

static struct http *http_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static void req_free(struct http_req *r)
{
	buf_free(&r->body);
	buf_free(&r->resp);
	free(r);
}

static bool may_become(enum http_phase from, enum http_phase to)
{
	switch (to) {
	case HTTP_HEADERS:
		return false;
	case HTTP_READING:
		return from == HTTP_HEADERS;
	case HTTP_WAITING:
		return from == HTTP_HEADERS || from == HTTP_READING;
	case HTTP_READY:
		return from == HTTP_HEADERS || from == HTTP_READING ||
		       from == HTTP_WAITING;
	case HTTP_SENT:
		return from == HTTP_HEADERS || from == HTTP_READY;
	}
	return false;
}

/* The one place a request's phase changes; false (and logged, a bug) for a
 * move the diagram in http.h does not draw, such as a second answer. */
static bool set_phase(struct http_req *r, enum http_phase to)
{
	if (!may_become(r->phase, to)) {
		log_error("request %s: no move from phase %d to %d", r->path,
			  (int)r->phase, (int)to);
		return false;
	}
	r->phase = to;
	return true;
}

void http_respond(struct http_req *r, int status, const char *type,
		  const char *body, size_t len)
{
	if (!r->wsi) {
		req_free(r);
		return;
	}
	if (!set_phase(r, HTTP_READY))
		return;
	r->status = status;
	r->resp_type = type;
	buf_reset(&r->resp);
	buf_add(&r->resp, body, len);
	lws_callback_on_writable(r->wsi);
}

void http_respond_json(struct http_req *r, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_DUMP_FLAGS) : NULL;

	json_decref(body);
	if (!text) {
		http_respond(r, 500, "text/plain", "out of memory", 13);
		return;
	}
	http_respond(r, status, "application/json", text, strlen(text));
	free(text);
}

/* The text of a problem (RFC 9457); extra is merged in (ownership taken). */
static char *problem_text(int status, const char *code, const char *title,
			  const char *detail, json_t *extra)
{
	char type[96];
	json_t *p;
	char *text;

	snprintf(type, sizeof(type), "/problems/%s", code);
	p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", title,
		      "status", status, "detail", detail, "code", code);
	if (p && extra)
		json_object_update(p, extra);
	json_decref(extra);
	text = p ? json_dumps(p, JSON_DUMP_FLAGS) : NULL;
	json_decref(p);
	return text;
}

void http_problem(struct http_req *r, int status, const char *code,
		  const char *title, const char *detail, json_t *extra)
{
	char *text = problem_text(status, code, title, detail, extra);

	if (!text) {
		http_respond(r, 500, "text/plain", "out of memory", 13);
		return;
	}
	http_respond(r, status, "application/problem+json", text, strlen(text));
	free(text);
}

size_t http_url_encode(const char *s, size_t n, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || strchr("-._~", c);
		if (o + (plain ? 1 : 3) >= len)
			break;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (len)
		out[o] = '\0';
	return o;
}

const char *http_query_except(struct http_req *r, const char *skip, char *buf,
			      size_t len)
{
	/* A fragment of the query is at most the 4 KiB of all headers. */
	char frag[4097];
	size_t o = 0, n = strlen(skip);

	buf[0] = '\0';
	for (int i = 0; r->wsi; i++) {
		int fl = lws_hdr_copy_fragment(r->wsi, frag, sizeof(frag),
					       WSI_TOKEN_HTTP_URI_ARGS, i);
		if (fl < 0)
			break;
		if (strncmp(frag, skip, n) == 0 && frag[n] == '=')
			continue;
		const char *eq = strchr(frag, '=');
		size_t kl = eq ? (size_t)(eq - frag) : (size_t)fl;
		if (o && o + 1 < len)
			buf[o++] = '&';
		o += http_url_encode(frag, kl, buf + o, len - o);
		if (eq && o + 1 < len) {
			buf[o++] = '=';
			o += http_url_encode(eq + 1, strlen(eq + 1), buf + o,
					     len - o);
		}
		buf[o] = '\0';
	}
	return buf;
}

void http_unavailable(struct http_req *r, const char *detail)
{
	r->retry_after_s = HTTP_RETRY_AFTER_S;
	http_problem(r, 503, "unavailable", "Service unavailable", detail,
		     NULL);
}

static const char *wsi_arg(struct lws *wsi, const char *name, char *buf,
			   int len)
{
	/* A fragment of the query is at most the 4 KiB of all headers. */
	char frag[4097];
	size_t n = strlen(name);

	/* lws keeps each "k=v" of the query as a fragment, already
	 * URL-decoded. */
	for (int i = 0;; i++) {
		int fl = lws_hdr_copy_fragment(wsi, frag, sizeof(frag),
					       WSI_TOKEN_HTTP_URI_ARGS, i);
		if (fl < 0)
			return NULL;
		if ((size_t)fl > n && strncmp(frag, name, n) == 0 &&
		    frag[n] == '=') {
			/* A value cut short would be another value: one that
			 * does not fit reads as empty, which no argument
			 * accepts. */
			if (fl - (int)n - 1 >= len ||
			    fl >= (int)sizeof(frag) - 1)
				buf[0] = '\0';
			else
				snprintf(buf, (size_t)len, "%s", frag + n + 1);
			return buf;
		}
	}
}

const char *http_arg(struct http_req *r, const char *name, char *buf, int len)
{
	return r->wsi ? wsi_arg(r->wsi, name, buf, len) : NULL;
}

/* ---- who is asking ---- */

static void copy_header(struct lws *wsi, enum lws_token_indexes t, char *dst,
			size_t len)
{
	if (lws_hdr_copy(wsi, dst, (int)len, t) < 0)
		dst[0] = '\0';
}

/*
 * A Cookie header may carry other sites' cookies of the same host: it is read
 * whole, up to the limit of all headers.
 */
#define COOKIE_HEADER_MAX 4096

/* Headers a proxy adds: the peer is then the proxy, not the client. */
static bool proxied(struct lws *wsi)
{
	return lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR) > 0 ||
	       lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_X_REAL_IP) > 0 ||
	       lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_VIA) > 0 ||
	       lws_hdr_custom_length(wsi, "forwarded:", 10) > 0 ||
	       lws_hdr_custom_length(wsi, "x-forwarded-proto:", 18) > 0;
}

/*
 * Whether the browser reached us over TLS: our own, or a proxy's in front
 * that says so.  The header only chooses which scheme an Origin must have;
 * a page of another site cannot add it to a request (no CORS here).
 */
static bool over_tls(struct lws *wsi)
{
	char proto[8];

	if (lws_is_ssl(wsi))
		return true;
	return lws_hdr_custom_copy(wsi, proto, sizeof(proto),
				   "x-forwarded-proto:", 18) == 5 &&
	       strncasecmp(proto, "https", 5) == 0;
}

void http_client_of(struct lws *wsi, struct http_client *c)
{
	char auth[sizeof(c->bearer)], *cookie;
	const char *b = auth;
	struct in_addr in;

	copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof(auth));
	c->bearer[0] = '\0';
	if (strncasecmp(auth, "Bearer ", 7) == 0) {
		for (b += 7; *b == ' '; b++)
			;
		memmove(c->bearer, b, strlen(b) + 1);
	}
	c->cookie[0] = '\0';
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE) > 0 &&
	    (cookie = malloc(COOKIE_HEADER_MAX + 1))) {
		copy_header(wsi, WSI_TOKEN_HTTP_COOKIE, cookie,
			    COOKIE_HEADER_MAX + 1);
		if (reqtext_cookie(cookie, HTTP_SESSION_COOKIE, c->cookie,
				   sizeof(c->cookie)) < 0)
			c->cookie[0] = '\0';
		free(cookie);
	}
	copy_header(wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof(c->origin));
	copy_header(wsi, WSI_TOKEN_HOST, c->host, sizeof(c->host));
	if (!wsi_arg(wsi, "tenant", c->tenant, (int)sizeof(c->tenant)))
		c->tenant[0] = '\0';
	lws_get_peer_simple(wsi, c->peer, sizeof(c->peer));
	c->tls = over_tls(wsi);
	c->proxied = proxied(wsi);
	c->loopback = !c->proxied && inet_pton(AF_INET, c->peer, &in) == 1 &&
		      (ntohl(in.s_addr) >> 24) == 127;
}

bool http_same_origin(const struct http_client *c)
{
	return reqtext_same_origin(c->origin, c->host, c->tls);
}

static bool host_allowed(const struct http *h, const struct http_client *c)
{
	return reqtext_host_allowed(c->host, h->cfg.host_names,
				    h->cfg.n_host_names);
}

#define UNKNOWN_HOST_DETAIL                                                    \
	"This server does not answer to this host name; use its address, or "  \
	"the name its operators gave with --host-name."

/* ---- connections per address ---- */

struct ip_conns {
	char ip[INET6_ADDRSTRLEN]; /* the key */
	int n;
};

/*
 * Counted from accept to the end of the connection.  lws tells the peer's
 * address at accept (LWS_CALLBACK_FILTER_NETWORK_CONNECTION, where a
 * connection over the limit is refused before anything is read) and
 * creates the connection's wsi right after (LWS_CALLBACK_WSI_CREATE), when
 * the address is tied to it; the wsi's end (LWS_CALLBACK_WSI_DESTROY)
 * gives the count back.
 */
static int conn_open(struct http *h, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN];
	struct ip_conns *c;

	h->accepted = NULL;
	if (h->cfg.max_conns_per_ip <= 0)
		return 0;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  ip, sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
			  sizeof(ip));
	else
		return 0;
	c = hmap_get(&h->conns_by_ip, ip);
	if (c && c->n >= h->cfg.max_conns_per_ip) {
		log_warn("refused a connection from %s: it has %d open", ip,
			 c->n);
		return -1;
	}
	if (!c) {
		if (!(c = calloc(1, sizeof(*c))))
			return -1;
		memcpy(c->ip, ip, sizeof(ip));
		if (hmap_put(&h->conns_by_ip, c->ip, c) < 0) {
			free(c);
			return -1;
		}
	}
	c->n++;
	h->accepted = c;
	return 0;
}

/* A counted connection, by its wsi (lws keeps no user pointer of ours
 * on a wsi across accept and upgrade). */
struct counted {
	char wsi[24]; /* the key: the wsi's address as text */
	struct ip_conns *ip;
};

static void conn_bind(struct http *h, struct lws *wsi)
{
	struct ip_conns *ip = h->accepted;
	struct counted *c;

	h->accepted = NULL;
	if (!ip)
		return;
	c = calloc(1, sizeof(*c));
	if (c) {
		snprintf(c->wsi, sizeof(c->wsi), "%p", (void *)wsi);
		c->ip = ip;
		if (hmap_put(&h->counted, c->wsi, c) == 0)
			return;
		free(c);
	}
	/* Out of memory: uncounted rather than counted forever. */
	if (--ip->n == 0) {
		hmap_del(&h->conns_by_ip, ip->ip);
		free(ip);
	}
}

static void conn_closed(struct http *h, struct lws *wsi)
{
	char key[24];
	struct counted *c;

	if (!h->counted.len)
		return;
	snprintf(key, sizeof(key), "%p", (void *)wsi);
	if (!(c = hmap_del(&h->counted, key)))
		return;
	if (--c->ip->n == 0) {
		hmap_del(&h->conns_by_ip, c->ip->ip);
		free(c->ip);
	}
	free(c);
}

/* ---- static files ---- */

static const char *mime_of(const char *path)
{
	static const struct {
		const char *ext, *mime;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].mime;
	return NULL;
}

/* Only plain names below the static root: no "..", no hidden files. */
static bool safe_path(const char *p)
{
	if (p[0] != '/' || strstr(p, "/.") || strstr(p, "//"))
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/._-", *p)))
			return false;
	return true;
}

/*
 * The file of the static root at a page's or file's path ("/" is
 * /index.html), and its type; NULL when there is none.
 */
static const char *static_file(const struct http *h, const char *path,
			       char *file, size_t len, const char **mime)
{
	const char *rel = path;
	struct stat st;

	if (strcmp(rel, "/") == 0)
		rel = "/index.html";
	else if (strcmp(rel, "/mayor") == 0 || strcmp(rel, "/mayor/") == 0)
		rel = "/mayor.html";
	else if (strcmp(rel, "/provinsi") == 0 ||
		 strcmp(rel, "/provinsi/") == 0)
		rel = "/provinsi.html";
	else if (strcmp(rel, "/login") == 0)
		rel = "/login.html";
	*mime = mime_of(rel);
	snprintf(file, len, "%s%s", h->cfg.static_dir, rel);
	if (!safe_path(rel) || !*mime || stat(file, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return NULL;
	return rel;
}

static void no_page(struct http_req *r)
{
	http_problem(r, 404, "not_found", "Not found",
		     "There is no page or file at this address.", NULL);
}

static int serve_static(struct http *h, struct http_req *r)
{
	char file[1024];
	const char *rel, *mime;
	int n;

	if (!(rel = static_file(h, r->path, file, sizeof(file), &mime))) {
		no_page(r);
		return 0;
	}
	/* The pages with data need an identity that may see them; the
	 * scripts, styles and the login page hold no data. */
	if (!h->handler.page(r, rel))
		return 0;
	/* The pages load nothing but their own files and open the websocket
	 * back to this server; the policy says exactly that. */
	static const char headers[] =
	    "cache-control: no-cache\x0d\x0a"
	    "x-content-type-options: nosniff\x0d\x0a"
	    "referrer-policy: no-referrer\x0d\x0a"
	    "x-frame-options: DENY\x0d\x0a"
	    "content-security-policy: default-src 'none'; script-src 'self'; "
	    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
	    "font-src 'self'; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'\x0d\x0a";
	static const char tls_headers[] =
	    "strict-transport-security: max-age=31536000\x0d\x0a";
	char all[sizeof(headers) + sizeof(tls_headers) + sizeof(r->set_cookie) +
		 16];
	snprintf(all, sizeof(all), "%s%s%s%s%s", headers,
		 h->cfg.tls_cert ? tls_headers : "",
		 r->set_cookie[0] ? "set-cookie: " : "", r->set_cookie,
		 r->set_cookie[0] ? "\x0d\x0a" : "");
	set_phase(r, HTTP_SENT);
	n = lws_serve_http_file(r->wsi, file, mime, all, (int)strlen(all));
	if (n < 0 || (n > 0 && lws_http_transaction_completed(r->wsi)))
		return -1;
	return 0;
}

/* ---- the protocol callback ---- */

static enum http_method method_of(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return HTTP_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return HTTP_POST;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI))
		return HTTP_PUT;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI))
		return HTTP_HEAD;
	return HTTP_OTHER;
}

/*
 * Everything is decided from the request line and headers before a byte of
 * a body is read: the host, the route, the caller's credential and the
 * route's limit.  A request refused then is answered at once and its
 * connection closed after the answer, since its body was never read.
 */
/*
 * A connection must bring a request the server answers within a bound:
 * its first within the request timeout of its opening, a next one within
 * the keep-alive time and the request timeout after an answer.  lws bounds
 * half-sent ones itself, but not every other: a CONNECT, which lws takes
 * and never hands on, would otherwise hold its connection for ever.  The
 * timer is stopped while a request is being answered.
 */
#define KEEPALIVE_S 30
static void guard(struct lws *wsi, int seconds)
{
	lws_set_timer_usecs(wsi, (lws_usec_t)seconds * LWS_USEC_PER_SEC);
}

/* Stops the guard.  lws 4.1 does not cancel a timer with
 * LWS_SET_TIMER_USEC_CANCEL (it fires at once): it is put off a day. */
static void unguard(struct lws *wsi)
{
	guard(wsi, 24 * 3600);
}

static int begin(struct http *h, struct lws *wsi, struct http_pss *pss,
		 const char *path, size_t len)
{
	unguard(wsi);
	struct http_req *r = calloc(1, sizeof(*r));
	char cl[32], *end;

	if (!r)
		return -1;
	pss->req = r;
	r->wsi = wsi;
	r->app = h->handler.app;
	r->method = method_of(wsi);
	r->content_length = -1;
	copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof(cl));
	if (cl[0]) {
		long long v = strtoll(cl, &end, 10);
		r->content_length = end != cl && !*end && v >= 0 ? v : -1;
	}
	/* A body announced but not read would be taken for the next
	 * request: any answer given before it closes the connection. */
	r->close_after = r->content_length != 0 &&
			 (r->method == HTTP_POST || r->method == HTTP_PUT ||
			  r->content_length > 0);
	if (len >= sizeof(r->path)) {
		http_problem(r, 414, "uri_too_long", "URI too long",
			     "The address is longer than 255 bytes.", NULL);
		return 0;
	}
	memcpy(r->path, path, len);
	r->path[len] = '\0';
	copy_header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, r->content_type,
		    sizeof(r->content_type));
	http_client_of(wsi, &r->client);
	if (!host_allowed(h, &r->client)) {
		http_problem(r, 421, "unknown_host", "Unknown host",
			     UNKNOWN_HOST_DETAIL, NULL);
		return 0;
	}
	if (!route_is_api(r->path)) {
		char file[1024];
		const char *mime;

		if (r->method == HTTP_GET || r->method == HTTP_HEAD)
			return serve_static(h, r);
		/* Another method: at an address with nothing, the answer
		 * of any address with nothing. */
		if (!static_file(h, r->path, file, sizeof(file), &mime))
			no_page(r);
		else
			http_problem(r, 405, "method_not_allowed",
				     "Method not allowed",
				     "Pages are read with GET.", NULL);
		return 0;
	}
	r->route = route_match(r->path);
	if (!h->handler.begin(r)) {
		/* Answered, or waiting on the database: from here on it
		 * outlives its connection (detached). */
		if (r->phase == HTTP_HEADERS)
			set_phase(r, HTTP_WAITING);
		return 0;
	}
	set_phase(r, HTTP_READING);
	r->body_max = r->route.body_max == ROUTE_BODY_CONFIG
			  ? h->cfg.max_body
			  : r->route.body_max;
	if (r->content_length > (int64_t)r->body_max) {
		char detail[160];
		snprintf(
		    detail, sizeof(detail),
		    "The body is %lld bytes; the limit here is %zu bytes.%s",
		    (long long)r->content_length, r->body_max,
		    r->route.id == ROUTE_EVENTS
			? " Send fewer events per request."
			: "");
		http_problem(r, 413, "too_large", "Request too large", detail,
			     NULL);
		return 0;
	}
	if (r->content_length < 0) {
		http_problem(r, 411, "length_required", "Length required",
			     "Send the body with a Content-Length header; "
			     "chunked uploads are not accepted.",
			     NULL);
		return 0;
	}
	r->close_after = false;
	if (r->content_length == 0) {
		set_phase(r, HTTP_WAITING);
		h->handler.body(r);
		return 0;
	}
	/* The body must be in within the request timeout: lws restarts its
	 * own timeout at every piece of it, so a body sent a byte at a time
	 * would never end without this timer (LWS_CALLBACK_TIMER). */
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
			h->cfg.request_timeout_s);
	guard(wsi, h->cfg.request_timeout_s);
	return 0;
}

/*
 * A request answered before its body (refused from its headers) has its
 * body read and dropped, within these bounds, before the connection
 * closes: a client that writes the whole body before it reads gets the
 * answer rather than a reset (what nginx calls a lingering close).
 */
#define LINGER_MAX_BYTES (8 << 20)
#define LINGER_S 5

static int body(struct http_req *r, const void *in, size_t len)
{
	if (r->phase != HTTP_READING) {
		r->dropped += len;
		return r->dropped > LINGER_MAX_BYTES ? -1 : 0;
	}
	if (r->too_large)
		return 0;
	if (r->body.len + len > r->body_max) {
		r->too_large = true;
		buf_free(&r->body);
		return 0;
	}
	buf_add(&r->body, in, len);
	return 0;
}

static int body_done(struct http *h, struct http_req *r)
{
	char detail[128];

	/* lws reports the end of an empty body too, after begin() handled
	 * the request already: handle each request once.  The end of a
	 * dropped body ends its connection, once the answer is out. */
	if (r->phase != HTTP_READING) {
		/* A second end of the same body: libwebsockets 4.1 repeats it
		 * without end for a request with a body pipelined behind
		 * another (docs/security.md, "Known limits").  Closing the
		 * connection is the only way out of its loop. */
		if (r->body_ended)
			return -1;
		r->body_ended = true;
		return r->phase == HTTP_SENT && r->close_after ? -1 : 0;
	}
	unguard(r->wsi);
	set_phase(r, HTTP_WAITING);
	/* Waiting on the database must not hold the request forever. */
	lws_set_timeout(r->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
			h->cfg.request_timeout_s);
	if (r->too_large || r->body.oom) {
		snprintf(detail, sizeof(detail),
			 "The body is larger than the limit of %zu bytes.",
			 r->body_max);
		http_problem(r, 413, "too_large", "Request too large", detail,
			     NULL);
		return 0;
	}
	h->handler.body(r);
	return 0;
}

#define HEADERS_MAX 1024

/* Appends the response's headers at *p; 0, or -1 when they do not fit. */
static int add_headers(struct lws *wsi, const struct http_req *r,
		       unsigned char **p, unsigned char *end)
{
	char ra[16];

	if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->resp_type,
					r->resp.len, p, end) ||
	    lws_add_http_header_by_name(
		wsi, (const unsigned char *)"cache-control:",
		(const unsigned char *)"no-store", 8, p, end) ||
	    lws_add_http_header_by_name(
		wsi, (const unsigned char *)"x-content-type-options:",
		(const unsigned char *)"nosniff", 7, p, end))
		return -1;
	if (r->retry_after_s > 0) {
		int n = snprintf(ra, sizeof(ra), "%d", r->retry_after_s);
		if (lws_add_http_header_by_name(
			wsi, (const unsigned char *)"retry-after:",
			(const unsigned char *)ra, n, p, end))
			return -1;
	}
	if (r->location[0] &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"location:",
					(const unsigned char *)r->location,
					(int)strlen(r->location), p, end))
		return -1;
	if (r->set_cookie[0] && lws_add_http_header_by_name(
				    wsi, (const unsigned char *)"set-cookie:",
				    (const unsigned char *)r->set_cookie,
				    (int)strlen(r->set_cookie), p, end))
		return -1;
	if (r->close_after && lws_add_http_header_by_name(
				  wsi, (const unsigned char *)"connection:",
				  (const unsigned char *)"close", 5, p, end))
		return -1;
	return lws_finalize_http_header(wsi, p, end);
}

/*
 * After answering a request whose body was not read: closes now when no
 * body is coming (or too much is), else tells the client it is done (FIN,
 * when the answer has left whole) and drops the body as it comes, closing
 * at its end or after LINGER_S.
 */
static int linger(struct lws *wsi, struct http_req *r)
{
	if (r->body_ended || r->content_length <= 0 ||
	    r->content_length - (int64_t)r->dropped > LINGER_MAX_BYTES)
		return -1;
	if (!lws_is_ssl(wsi) && !lws_send_pipe_choked(wsi))
		shutdown(lws_get_socket_fd(wsi), SHUT_WR);
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, LINGER_S);
	return 0;
}

/*
 * Writes the response, headers and body in one write: one send and one
 * segment on the wire rather than two, which on a busy ingest is a
 * syscall and a wake-up of the client fewer per request.  lws keeps what
 * the socket does not take and sends it before anything else.
 */
static int write_response(struct lws *wsi, struct http_req *r)
{
	unsigned char *b, *start, *p;
	int len, n;

	if (r->phase != HTTP_READY)
		return 0;
	b = malloc(LWS_PRE + HEADERS_MAX + r->resp.len);
	if (!b)
		return -1;
	start = p = b + LWS_PRE;
	if (add_headers(wsi, r, &p, start + HEADERS_MAX) < 0) {
		free(b);
		return -1;
	}
	/* A HEAD gets the headers of its GET, Content-Length included, and
	 * no body (RFC 9110, 9.3.2). */
	size_t body = r->method == HTTP_HEAD ? 0 : r->resp.len;
	if (body)
		memcpy(p, r->resp.p, body);
	len = (int)(p - start) + (int)body;
	set_phase(r, HTTP_SENT);
	n = lws_write(wsi, start, (size_t)len, LWS_WRITE_HTTP_FINAL);
	free(b);
	if (n < len)
		return -1;
	if (r->close_after)
		return linger(wsi, r);
	if (lws_http_transaction_completed(wsi))
		return -1;
	guard(wsi, KEEPALIVE_S + http_of(wsi)->cfg.request_timeout_s);
	return 0;
}

/* The request forgets the connection; it is freed now or when answered. */
static void detach(struct http_pss *pss)
{
	struct http_req *r = pss ? pss->req : NULL;

	if (!r)
		return;
	pss->req = NULL;
	r->wsi = NULL;
	if (r->phase != HTTP_WAITING)
		req_free(r);
}

/* ---- websocket upgrades ---- */

/*
 * Answers a refused upgrade with a problem and hangs up: the request was
 * read whole, and the answer fits one write.
 */
static int refuse_upgrade(struct lws *wsi, const char *peer, int status,
			  const char *code, const char *title,
			  const char *detail)
{
	unsigned char buf[LWS_PRE + 1536], *start = buf + LWS_PRE, *p = start;
	unsigned char *end = buf + sizeof(buf);
	char *text = problem_text(status, code, title, detail, NULL);
	size_t n = text ? strlen(text) : 0;

	log_info("websocket upgrade from %s refused: %d %s", peer, status,
		 code);
	if (text && n < 1024 &&
	    !lws_add_http_common_headers(wsi, (unsigned)status,
					 "application/problem+json", n, &p,
					 end - n) &&
	    !lws_add_http_header_by_name(
		wsi, (const unsigned char *)"connection:",
		(const unsigned char *)"close", 5, &p, end - n) &&
	    !lws_finalize_http_header(wsi, &p, end - n)) {
		/* An upgrade asked with HEAD gets the headers alone. */
		if (method_of(wsi) != HTTP_HEAD) {
			memcpy(p, text, n);
			p += n;
		}
		lws_write(wsi, start, (size_t)(p - start),
			  LWS_WRITE_HTTP_FINAL);
	}
	free(text);
	return -1;
}

/* Whether Sec-WebSocket-Protocol lists name. */
static bool offers(struct lws *wsi, const char *name)
{
	char list[256];
	size_t n = strlen(name);

	if (lws_hdr_copy(wsi, list, sizeof(list), WSI_TOKEN_PROTOCOL) <= 0)
		return false;
	for (const char *p = list; *p;) {
		size_t len;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/*
 * Every upgrade is decided here, with a status when refused: only the
 * screens' protocol, at /ws, with a credential that may read, from this
 * site.  (lws would otherwise hand an upgrade naming no subprotocol, or
 * "http", to the plain HTTP protocol.)
 */
static int confirm_upgrade(struct http *h, struct lws *wsi, const char *upgrade)
{
	struct http_client c;
	char uri[16], detail[200];
	int status;

	/* An Upgrade other than websocket (or h2c): libwebsockets 4.1 has
	 * already answered its own 403, ended the request (resetting the
	 * headers, or freeing them with `upgrade` in them) and asks us
	 * anyway.  The headers are gone: hang up without reading them or
	 * `upgrade`, so the 403 is the one answer (docs/api.md 9). */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_UPGRADE) <= 0)
		return -1;
	http_client_of(wsi, &c);
	if (!host_allowed(h, &c))
		return refuse_upgrade(wsi, c.peer, 421, "unknown_host",
				      "Unknown host", UNKNOWN_HOST_DETAIL);
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, "/ws") != 0)
		return refuse_upgrade(
		    wsi, c.peer, 404, "not_found", "Not found",
		    "The websocket of the screens is at /ws.");
	if (!upgrade || strcasecmp(upgrade, "websocket") != 0 ||
	    !offers(wsi, PUB_PROTOCOL))
		return refuse_upgrade(
		    wsi, c.peer, 400, "bad_upgrade", "Bad upgrade",
		    "Open a websocket asking for the subprotocol "
		    "situation.v1 (Sec-WebSocket-Protocol); see docs/api.md.");
	status = h->handler.upgrade(h->handler.app, &c, detail, sizeof(detail));
	if (status)
		return refuse_upgrade(
		    wsi, c.peer, status,
		    status == 401 ? "unauthorized" : "forbidden",
		    status == 401 ? "Unauthorized" : "Forbidden", detail);
	/* A screen now: pub.c bounds it (pings, the stall). */
	unguard(wsi);
	return 0;
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason,
		   void *user, void *in, size_t len)
{
	struct http_pss *pss = user;
	struct http *h = http_of(wsi);
	struct http_req *r = pss ? pss->req : NULL;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
		const struct lws_filter_network_conn_args *fa = user;
		return conn_open(h, (const struct sockaddr *)&fa->cli_addr);
	}
	case LWS_CALLBACK_WSI_CREATE:
		conn_bind(h, wsi);
		guard(wsi, h->cfg.request_timeout_s);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		conn_closed(h, wsi);
		return 0;
	case LWS_CALLBACK_HTTP:
		detach(pss);
		return begin(h, wsi, pss, in, len);
	case LWS_CALLBACK_HTTP_BODY:
		return r ? body(r, in, len) : -1;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return r ? body_done(h, r) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return r ? write_response(wsi, r) : 0;
	case LWS_CALLBACK_TIMER:
		/* No request within its bound (guard), or a body not in
		 * within the request timeout: the connection closes without
		 * an answer (docs/api.md, "Timeouts").  One waiting on the
		 * database is bounded by its own timeout. */
		return r && (r->phase == HTTP_WAITING || r->phase == HTTP_READY)
			   ? 0
			   : -1;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return confirm_upgrade(h, wsi, in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* Never a websocket of the plain HTTP protocol. */
		return -1;
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		if (lws_http_transaction_completed(wsi))
			return -1;
		guard(wsi, KEEPALIVE_S + h->cfg.request_timeout_s);
		return 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		detach(pss);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* The websocket's own protocol, which also sees the end of its wsi. */
static int ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
		 void *in, size_t len)
{
	if (reason == LWS_CALLBACK_WSI_DESTROY)
		conn_closed(http_of(wsi), wsi);
	return pub_ws_cb(wsi, reason, user, in, len);
}

struct http *http_new(uv_loop_t *loop, const struct http_handler *handler,
		      const struct http_config *cfg, struct pub_door *door,
		      char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct http *h = calloc(1, sizeof(*h));
	void *loops[1] = {loop};

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = *cfg;
	h->handler = *handler;
	h->protocols[0] = (struct lws_protocols){
	    .name = "http",
	    .callback = http_cb,
	    .per_session_data_size = sizeof(struct http_pss),
	};
	h->protocols[1] = (struct lws_protocols){
	    .name = PUB_PROTOCOL,
	    .callback = ws_cb,
	    .per_session_data_size = pub_session_size(),
	    .rx_buffer_size = PUB_RX_CHUNK,
	    .tx_packet_size = PUB_TX_CHUNK,
	    .user = door,
	};
	/* Pings find dead screens: pub sends them (pub_set_ping); lws' own
	 * validity timers, which its default policy arms on every
	 * connection, stay off (see pub_tick). */
	memset(&h->retry, 0, sizeof(h->retry));

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV |
		       LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	info.foreign_loops = loops;
	info.iface = cfg->host;
	info.port = cfg->port;
	info.protocols = h->protocols;
	info.user = h;
	info.gid = -1;
	info.uid = -1;
	info.keepalive_timeout = KEEPALIVE_S;
	/* A request line and headers must be in within the request timeout
	 * of their first byte (lws' own bound on them is 10 s otherwise). */
	info.timeout_secs_ah_idle = (unsigned)cfg->request_timeout_s;
	info.timeout_secs = (unsigned)cfg->request_timeout_s;
	info.max_http_header_data = 4096;
	info.retry_and_idle_policy = &h->retry;
	info.vhost_name = "kendali";
	info.server_string = "kendali";
	info.pcontext = &h->ctx;
	if (cfg->tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		/* HTTP/1.1 only: the request and file handling here is written
		 * for it, and screens and agencies gain nothing from h2. */
		info.alpn = "http/1.1";
	}

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	h->ctx = lws_create_context(&info);
	if (!h->ctx) {
		snprintf(
		    err, errlen,
		    "cannot listen on %s:%d (in use, a TLS certificate or "
		    "key that cannot be read, or the libuv event library of "
		    "libwebsockets is missing)",
		    cfg->host, cfg->port);
		free(h);
		return NULL;
	}
	return h;
}

struct lws_context *http_lws_context(struct http *h)
{
	return h->ctx;
}

void http_close(struct http *h)
{
	if (h && h->ctx)
		lws_context_destroy(h->ctx);
}

void http_free(struct http *h)
{
	if (!h)
		return;
	hmap_free_all(&h->conns_by_ip, NULL);
	hmap_free_all(&h->counted, NULL);
	/* With a foreign loop the first destroy only begins; lws clears
	 * h->ctx (info.pcontext) when it is done, else this completes it. */
	if (h->ctx)
		lws_context_destroy(h->ctx);
	free(h);
}
