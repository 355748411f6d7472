/*
 * server/access.h - who may read and act (docs/security.md): identifies
 * the screen or person behind a request or websocket upgrade, guards the
 * pages and the read and ack APIs by role, and serves logins, logouts and
 * "who am I" (/api/v1/session).
 *
 * Identifying never waits: credentials are held in memory (auth.c).  A
 * login waits on the database and on scrypt, which runs on libuv's thread
 * pool.
 */
#ifndef KENDALI_ACCESS_H
#define KENDALI_ACCESS_H

#include "auth.h"

#include <stdbool.h>
#include <stddef.h>

struct app;
struct http_client;
struct http_req;
struct lws;
struct pub;
struct tenant;

enum access_result {
	ACCESS_NONE,	/* no credential (and no anonymous access) */
	ACCESS_OK,	/* who is filled */
	ACCESS_BAD,	/* a credential that is unknown, revoked or expired */
	ACCESS_API_KEY, /* an agency's key: for writing, not reading */
};

enum access_result access_identify(struct app *a, const struct http_client *c,
				   struct identity *who);

/*
 * Whether the request's identity may do need (CAN_*); r->who is set.
 * Otherwise the request has been answered: 401 without a valid identity,
 * 403 when the role may not, or the request came from another site.
 */
bool access_allow(struct http_req *r, unsigned need);

/*
 * For a page needing need: whether to serve it.  Otherwise the request
 * has been answered with a redirect: to the login page, or, for
 * "?token=st_...", to the page itself with the token as the cookie.
 */
bool access_page(struct http_req *r, unsigned need);

/* The HTTP front's page guard: the wall (/index.html) needs CAN_WALL, the
 * mayor's page CAN_MAYOR; scripts, styles and the login page hold no data
 * and need nothing. */
bool access_page_file(struct http_req *r, const char *rel);

/* The HTTP front's upgrade guard: access_ws_allow without the id. */
int access_upgrade(struct app *a, const struct http_client *c, char *detail,
		   size_t dlen);

/* The audit trail's actor: "user:<name>", "screen:<name>" or
 * "anonymous:<name>"; name NULL takes the identity's. */
void access_actor(const struct identity *w, const char *name, char *out,
		  size_t len);

/*
 * A login (POST /api/v1/session) from its headers: whether its body may be
 * read (from this site, within the address's rate).  Otherwise it has been
 * answered (403, 429).
 */
bool access_login_begin(struct http_req *r);
/*
 * The login with its body: 200 and the session's cookie, 401, 422, 429
 * while the name waits after failures, 503 beyond --max-logins logins in
 * flight.
 */
void access_login(struct http_req *r);
/* POST /api/v1/logout. */
void access_logout(struct http_req *r);
/* GET /api/v1/session: who is asking. */
void access_whoami(struct http_req *r);

/*
 * Whether a websocket upgrade may proceed (a read identity, from this
 * site): 0, with the credential's id (empty when anonymous) in id unless id
 * is NULL and its tenant's publisher in *pub unless pub is NULL; else the
 * status to refuse it with (401, 403) and why in detail.
 */
int access_ws_allow(struct app *a, const struct http_client *c, char *id,
		    size_t len, struct pub **pub, char *detail, size_t dlen);
/* access_ws_allow for an upgrade's headers: the publisher of the screen's
 * tenant, or NULL when it may not proceed (struct pub_door's admit). */
struct pub *access_ws_admit(struct app *a, struct lws *wsi, char *id,
			    size_t len);

/* The tenant of an identity that access_identify found (never NULL then). */
struct tenant *access_tenant(struct app *a, const struct identity *who);

#endif
