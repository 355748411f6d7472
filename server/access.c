#include "access.h"

#include "app.h"
#include "buf.h"
#include "clock.h"
#include "http.h"
#include "keys.h"
#include "limit.h"
#include "log.h"
#include "reads.h"
#include "reqtext.h"
#include "store.h"
#include "tenant.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * A screen's token cookie lasts 30 days and is renewed whenever the screen
 * loads a page or asks who it is: a screen in use keeps it, a browser that
 * was only handed one (by another site) loses it.
 */
#define TOKEN_COOKIE_S (30 * 24 * 3600)
#define USERNAME_MAX REQTEXT_USERNAME_MAX
#define LOGIN_BUSY_RETRY_S 1

enum access_result access_identify(struct app *a, const struct http_client *c,
				   struct identity *who)
{
	const struct identity *w;
	int64_t now = clock_now_us();

	if (c->bearer[0]) {
		/* A credential sent on purpose must be good.  An agency's
		 * key does not read, but reads as anyone else where anonymous
		 * access is on. */
		if (keys_is_key(c->bearer)) {
			if (!a->cfg.anonymous_loopback || !c->loopback)
				return ACCESS_API_KEY;
			w = auth_anonymous();
		} else if (!(w = auth_check(a->auth, c->bearer, now))) {
			return ACCESS_BAD;
		}
	} else {
		/* A stale cookie is as good as none: the browser keeps it
		 * after a revocation until the login page replaces it. */
		w = c->cookie[0] ? auth_check(a->auth, c->cookie, now) : NULL;
		if (!w && a->cfg.anonymous_loopback && c->loopback)
			w = auth_anonymous();
		if (!w)
			return c->cookie[0] ? ACCESS_BAD : ACCESS_NONE;
	}
	*who = *w;
	/* Anonymous reads are the default tenant's.  A credential of a
	 * tenant not served yet (created since the tenants were last read)
	 * is none for now. */
	if (who->kind == AUTH_ANONYMOUS)
		snprintf(who->tenant, sizeof(who->tenant), "%s",
			 a->tenant->info.id);
	memcpy(who->home, who->tenant, sizeof(who->home));
	struct tenant *t = tenants_get(&a->tenants, who->tenant);
	if (!t)
		return ACCESS_BAD;
	/* A province's identity asking for a member (?tenant=) reads that
	 * member's summary, and nothing else of it (docs/api.md 2.5). */
	if ((who->can & CAN_PROVINCE) && c->tenant[0] &&
	    tenant_has_member(t, c->tenant)) {
		snprintf(who->tenant, sizeof(who->tenant), "%s", c->tenant);
		who->can = CAN_READ | CAN_MAYOR;
	}
	return ACCESS_OK;
}

struct tenant *access_tenant(struct app *a, const struct identity *who)
{
	return tenants_get(&a->tenants, who->tenant);
}

static void forbidden(struct http_req *r, const char *detail)
{
	http_problem(r, 403, "forbidden", "Forbidden", detail, NULL);
}

/* Requests that change something must come from this server's pages. */
static bool same_site(struct http_req *r)
{
	if (http_same_origin(&r->client))
		return true;
	forbidden(r, "This request came from another web site (Origin "
		     "header); use the command centre's own pages.");
	return false;
}

bool access_allow(struct http_req *r, unsigned need)
{
	char detail[200];

	switch (access_identify(r->app, &r->client, &r->who)) {
	case ACCESS_API_KEY:
		forbidden(r, "An agency's API key posts events; reading needs "
			     "a screen token or a login (docs/security.md).");
		return false;
	case ACCESS_NONE:
	case ACCESS_BAD:
		http_problem(r, 401, "unauthorized", "Unauthorized",
			     r->client.bearer[0] || r->client.cookie[0]
				 ? "The screen token or session is unknown, "
				   "revoked or expired. Log in again at "
				   "/login, or ask for a new screen token."
				 : "Log in at /login, or send a screen token "
				   "as \"Authorization: Bearer st_...\".",
			     NULL);
		return false;
	case ACCESS_OK:
		break;
	}
	r->tenant = access_tenant(r->app, &r->who);
	if ((r->who.can & need) != need) {
		snprintf(detail, sizeof(detail),
			 "The role \"%s\" may not do this; ask the command "
			 "centre's admin for an account that may.",
			 auth_identity_role(&r->who));
		forbidden(r, detail);
		return false;
	}
	if (r->method == HTTP_POST && !same_site(r))
		return false;
	return true;
}

/* ---- cookies and redirects ---- */

static void set_cookie(struct http_req *r, const char *value, long max_age_s)
{
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Strict%s",
		 HTTP_SESSION_COOKIE, value, max_age_s,
		 r->app->cfg.tls_cert ? "; Secure" : "");
}

/* To the login page, which comes back to next (URL-encoded) after. */
static void to_login(struct http_req *r, const char *next, const char *extra)
{
	snprintf(r->location, sizeof(r->location), "/login?next=%s%s", next,
		 extra);
	http_respond(r, 303, "text/plain; charset=utf-8", "", 0);
}

/* The page's canonical path ("/", "/mayor" or "/provinsi"), from what was
 * asked. */
static const char *page_path(const struct http_req *r)
{
	if (strncmp(r->path, "/mayor", 6) == 0)
		return "/mayor";
	return strncmp(r->path, "/provinsi", 9) == 0 ? "/provinsi" : "/";
}

/* A screen that shows itself with its cookie keeps it 30 more days. */
static void renew_screen_cookie(struct http_req *r)
{
	if (r->who.kind == AUTH_SCREEN && !r->client.bearer[0] &&
	    r->client.cookie[0])
		set_cookie(r, r->client.cookie, TOKEN_COOKIE_S);
}

bool access_page(struct http_req *r, unsigned need)
{
	char token[AUTH_CREDENTIAL_LEN + 2], query[80], target[96], next[290];
	const char *page = page_path(r);
	const struct identity *w;
	enum access_result known;

	/* The page as asked, other arguments (?lang=en) kept. */
	http_query_except(r, "token", query, sizeof(query));
	snprintf(target, sizeof(target), "%s%s%s", page, query[0] ? "?" : "",
		 query);
	http_url_encode(target, strlen(target), next, sizeof(next));
	known = access_identify(r->app, &r->client, &r->who);
	if (http_arg(r, "token", token, sizeof(token))) {
		/* A link may not replace a credential the browser holds:
		 * another site could otherwise swap a person's session for a
		 * screen token of its choosing. */
		if (known == ACCESS_OK && r->who.kind != AUTH_ANONYMOUS) {
			snprintf(r->location, sizeof(r->location), "%s",
				 target);
			http_respond(r, 303, "text/plain; charset=utf-8", "",
				     0);
			return false;
		}
		w = auth_check(r->app->auth, token, clock_now_us());
		if (!w || w->kind != AUTH_SCREEN) {
			to_login(r, next, "&error=token");
			return false;
		}
		/* The token becomes the screen's cookie; the address
		 * loses it, so that it is not on the screen or in the
		 * history. */
		set_cookie(r, token, TOKEN_COOKIE_S);
		OPENSSL_cleanse(token, sizeof(token));
		snprintf(r->location, sizeof(r->location), "%s", target);
		http_respond(r, 303, "text/plain; charset=utf-8", "", 0);
		return false;
	}
	switch (known) {
	case ACCESS_OK:
		if ((r->who.can & need) == need) {
			renew_screen_cookie(r);
			return true;
		}
		to_login(r, next, "&denied=1");
		return false;
	default:
		to_login(r, next, "");
		return false;
	}
}

/* ---- /api/v1/session ---- */

static json_t *identity_json(struct app *a, const struct identity *w)
{
	const struct tenant *tn = access_tenant(a, w);
	json_t *can = json_array();
	char at[40];

	for (int i = 0; i < CAN_COUNT; i++)
		if (w->can & (1u << i))
			json_array_append_new(can,
					      json_string(auth_can_name(i)));
	const struct tenant_info *t = tn ? &tn->info : &a->tenant->info;
	char offset[16];

	snprintf(offset, sizeof(offset), "%c%02d:%02d",
		 t->tz_offset_s < 0 ? '-' : '+', abs(t->tz_offset_s) / 3600,
		 abs(t->tz_offset_s) / 60 % 60);
	if (w->expires_us)
		ev_time_format(w->expires_us, t->tz_offset_s, at);
	return json_pack("{s:s, s:s?, s:s, s:o, s:s?, s:{s:s, s:s, s:s, s:s, "
			 "s:s, s:s, s:s}}",
			 "kind",
			 w->kind == AUTH_USER	  ? "user"
			 : w->kind == AUTH_SCREEN ? "screen"
						  : "anonymous",
			 "name", w->kind == AUTH_ANONYMOUS ? NULL : w->name,
			 "role", auth_identity_role(w), "can", can,
			 "expires_at", w->expires_us ? at : NULL, "tenant",
			 "id", t->id, "name", t->name, "head", t->head, "kind",
			 t->province ? "province" : "local", "time_zone",
			 t->time_zone, "zone", t->zone, "utc_offset", offset);
}

void access_actor(const struct identity *w, const char *name, char *out,
		  size_t len)
{
	snprintf(out, len, "%s:%s",
		 w->kind == AUTH_USER	  ? "user"
		 : w->kind == AUTH_SCREEN ? "screen"
					  : "anonymous",
		 name ? name : w->name);
}

struct login {
	uv_work_t work;
	struct app *app;
	struct http_req *r;
	char tenant[AUTH_TENANT_MAX + 1]; /* "" when none served is named */
	char username[USERNAME_MAX + 1];
	char password[AUTH_PASSWORD_MAX + 1];
	char stored[AUTH_HASH_LEN];
	int role;
	bool usable; /* a user that exists and is enabled */
	bool ok;
	struct identity who;
	char credential[AUTH_CREDENTIAL_LEN + 1];
};

static void login_free(struct login *l)
{
	struct app *a = l->app;

	a->logins_in_flight--;
	OPENSSL_cleanse(l, sizeof(*l));
	free(l);
}

/*
 * The failure counts against the name, on every server of the database
 * (schema/008_login_backoff.sql): from the fifth in a row, the name waits
 * 1, 2, 4, ... up to 30 s before its next attempt; attempts refused while
 * it waits do not count.  The audit row goes with it, in one statement.
 */
static void login_failed(struct login *l)
{
	struct http_req *r = l->r;

	/* A name in no tenant served has nothing to count against. */
	if (l->tenant[0] &&
	    reads_login_failed(
		l->app->reader, l->tenant, l->username, r->client.peer,
		l->usable ? "password" : "unknown or disabled") < 0)
		log_warn("a failed login of %s was not recorded: database "
			 "busy",
			 l->username);
	http_problem(r, 401, "login_failed", "Login failed",
		     "The user name or the password is wrong.", NULL);
	login_free(l);
}

static void session_stored(void *arg, bool ok, int64_t expires_us)
{
	struct login *l = arg;
	struct http_req *r = l->r;
	struct app *a = l->app;

	if (!ok) {
		http_unavailable(r,
				 "The database cannot open a session now; try "
				 "again in a moment.");
		login_free(l);
		return;
	}
	l->who.expires_us = expires_us;
	/* This server knows the session at once; others by NOTIFY. */
	if (auth_add(a->auth, &l->who) < 0)
		log_warn("session of %s not held: out of memory", l->username);
	set_cookie(r, l->credential,
		   (long)((l->who.expires_us - clock_now_us()) / 1000000));
	log_info("%s logged in from %s", l->username, r->client.peer);
	http_respond_json(r, 200, identity_json(a, &l->who));
	login_free(l);
}

static void verify_work(uv_work_t *w)
{
	struct login *l = w->data;

	l->ok = auth_password_verify(l->password, l->stored) && l->usable;
}

static void verify_done(uv_work_t *w, int status)
{
	struct login *l = w->data;
	struct http_req *r = l->r;
	struct app *a = l->app;
	char digest_hex[2 + 64 + 1] = "\\x";

	OPENSSL_cleanse(l->password, sizeof(l->password));
	if (status != 0 || !l->ok) {
		login_failed(l);
		return;
	}
	l->who.kind = AUTH_USER;
	l->who.role = (enum auth_role)l->role;
	l->who.can = auth_role_can(l->who.role);
	snprintf(l->who.name, sizeof(l->who.name), "%s", l->username);
	snprintf(l->who.tenant, sizeof(l->who.tenant), "%s", l->tenant);
	if (auth_mint("ss", l->credential, l->who.id, l->who.sha256) < 0) {
		http_problem(r, 500, "internal", "Internal error",
			     "No random bytes for a session.", NULL);
		login_free(l);
		return;
	}
	auth_hex(l->who.sha256, 32, digest_hex + 2);
	if (reads_session_open(a->reader, l->tenant, l->who.id, l->username,
			       digest_hex, a->cfg.session_hours, r->client.peer,
			       session_stored, l) < 0)
		session_stored(l, false, 0);
}

/* 429 with Retry-After: too many of what, wait_s seconds to wait. */
static void too_many(struct http_req *r, const char *what, int wait_s)
{
	char detail[160];

	snprintf(detail, sizeof(detail), "Too many %s. Try again in %d s.",
		 what, wait_s);
	r->retry_after_s = wait_s;
	http_problem(r, 429, "rate_limited", "Too many requests", detail, NULL);
}

static void user_read(void *arg, bool ok, const struct reads_login *u)
{
	struct login *l = arg;
	struct http_req *r = l->r;

	if (!ok) {
		http_unavailable(r, "The database cannot check logins now; try "
				    "again in a moment.");
		login_free(l);
		return;
	}
	/* A name that failed too often waits, whether or not it is a
	 * user's: the answer tells nothing about which accounts exist. */
	if (u->wait_s > 0) {
		too_many(r, "failed logins for this user name", u->wait_s);
		login_free(l);
		return;
	}
	/* An unknown or disabled user costs the same scrypt as a known
	 * one: the answer's time tells nothing. */
	l->usable = u->user && !u->disabled &&
		    (l->role = auth_role_parse(u->role)) >= 0;
	snprintf(l->stored, sizeof(l->stored), "%s",
		 u->user ? u->password : auth_password_dummy());
	l->work.data = l;
	if (uv_queue_work(l->app->loop, &l->work, verify_work, verify_done) <
	    0) {
		login_failed(l);
	}
}

bool access_login_begin(struct http_req *r)
{
	struct app *a = r->app;
	int wait_s;

	if (!same_site(r))
		return false;
	if ((wait_s = limit_take(a->login_limiter, r->client.peer,
				 clock_now_us())) > 0) {
		too_many(r, "login attempts from this address", wait_s);
		return false;
	}
	return true;
}

void access_login(struct http_req *r)
{
	struct app *a = r->app;
	json_error_t jerr;
	json_t *body, *u, *pw, *tn;
	struct login *l;

	body = json_loadb(r->body.p ? r->body.p : "", r->body.len,
			  JSON_REJECT_DUPLICATES, &jerr);
	buf_free(&r->body);
	u = json_object_get(body, "username");
	pw = json_object_get(body, "password");
	tn = json_object_get(body, "tenant");
	if (json_is_null(tn))
		tn = NULL; /* a null member is an absent one (docs/api.md 1) */
	if (!json_is_object(body) || !json_is_string(u) ||
	    !json_is_string(pw) || (tn && !json_is_string(tn)) ||
	    (tn && (json_string_length(tn) > AUTH_TENANT_MAX ||
		    strlen(json_string_value(tn)) != json_string_length(tn))) ||
	    !reqtext_username_valid(json_string_value(u),
				    json_string_length(u)) ||
	    json_string_length(pw) > AUTH_PASSWORD_MAX ||
	    strlen(json_string_value(pw)) != json_string_length(pw)) {
		json_decref(body);
		http_problem(r, 422, "invalid_login", "Invalid login",
			     "Send {\"username\": \"<1 to 64 letters, digits, "
			     "'.', '_', '@' or '-'>\", \"password\": \"<up "
			     "to 128 characters>\"} as JSON, with "
			     "\"tenant\": \"<its id>\" for a user of another "
			     "tenant than this server's default.",
			     NULL);
		return;
	}
	/* Each login holds a thread of the pool for its scrypt: beyond the
	 * cap, a flood is turned away at once instead of making every login
	 * wait behind it until it times out. */
	if (a->logins_in_flight >= a->cfg.max_logins) {
		json_decref(body);
		r->retry_after_s = LOGIN_BUSY_RETRY_S;
		http_problem(r, 503, "unavailable", "Service unavailable",
			     "The server is checking too many logins at once; "
			     "try again in a moment.",
			     NULL);
		return;
	}
	if (!(l = calloc(1, sizeof(*l)))) {
		json_decref(body);
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
		return;
	}
	a->logins_in_flight++;
	l->app = a;
	l->r = r;
	snprintf(l->username, sizeof(l->username), "%s", json_string_value(u));
	snprintf(l->password, sizeof(l->password), "%s", json_string_value(pw));
	/* A tenant not served answers as a wrong password does, after the
	 * same scrypt: which tenants exist is not told. */
	const char *tenant = tn ? json_string_value(tn) : a->tenant->info.id;
	if (tenants_get(&a->tenants, tenant))
		snprintf(l->tenant, sizeof(l->tenant), "%s", tenant);
	json_decref(body);
	if (!l->tenant[0])
		user_read(l, true, &(struct reads_login){0});
	else if (reads_login(a->reader, l->tenant, l->username, user_read, l) <
		 0)
		user_read(l, false, NULL);
}

struct logout {
	struct http_req *r;
	char id[AUTH_ID_LEN + 1];
};

static void logout_done(void *arg, bool ok)
{
	struct logout *o = arg;
	struct http_req *r = o->r;

	if (!ok) {
		http_unavailable(r,
				 "The database cannot end the session now; try "
				 "again in a moment.");
	} else {
		auth_remove(r->app->auth, o->id);
		set_cookie(r, "", 0);
		http_respond_json(r, 200, json_pack("{s:b}", "logged_out", 1));
	}
	free(o);
}

void access_logout(struct http_req *r)
{
	struct app *a = r->app;
	struct logout *o;
	char actor[80];

	if (!access_allow(r, 0))
		return;
	if (r->who.kind != AUTH_USER) {
		/* A screen forgets its token; nothing to end. */
		set_cookie(r, "", 0);
		http_respond_json(r, 200, json_pack("{s:b}", "logged_out", 1));
		return;
	}
	if (!(o = calloc(1, sizeof(*o)))) {
		http_problem(r, 500, "internal", "Internal error",
			     "Out of memory.", NULL);
		return;
	}
	o->r = r;
	memcpy(o->id, r->who.id, sizeof(o->id));
	access_actor(&r->who, NULL, actor, sizeof(actor));
	/* The session's own tenant, whichever member a province reads. */
	if (reads_session_end(a->reader, r->who.home, o->id, actor,
			      r->client.peer, logout_done, o) < 0)
		logout_done(o, false);
}

void access_whoami(struct http_req *r)
{
	if (!access_allow(r, 0))
		return;
	renew_screen_cookie(r);
	http_respond_json(r, 200, identity_json(r->app, &r->who));
}

/* ---- the websocket ---- */

int access_ws_allow(struct app *a, const struct http_client *c, char *id,
		    size_t len, struct pub **pub, char *detail, size_t dlen)
{
	struct identity who;

	if (!http_same_origin(c)) {
		snprintf(detail, dlen,
			 "This websocket was opened from another web site "
			 "(Origin header); use the command centre's own "
			 "pages.");
		return 403;
	}
	switch (access_identify(a, c, &who)) {
	case ACCESS_OK:
		if (who.can & CAN_READ) {
			if (id)
				snprintf(id, len, "%s", who.id);
			if (pub)
				*pub = access_tenant(a, &who)->pub;
			return 0;
		}
		snprintf(detail, dlen,
			 "The role \"%s\" may not watch the screens.",
			 auth_identity_role(&who));
		return 403;
	case ACCESS_API_KEY:
		snprintf(detail, dlen,
			 "An agency's API key posts events; the websocket "
			 "needs a screen token or a login.");
		return 403;
	default:
		snprintf(detail, dlen,
			 "Log in at /login, or send a screen token as "
			 "\"Authorization: Bearer st_...\".");
		return 401;
	}
}

struct pub *access_ws_admit(struct app *a, struct lws *wsi, char *id,
			    size_t len)
{
	struct http_client c;
	struct pub *pub = NULL;
	char detail[200];

	http_client_of(wsi, &c);
	return access_ws_allow(a, &c, id, len, &pub, detail, sizeof(detail)) ==
		       0
		   ? pub
		   : NULL;
}

bool access_page_file(struct http_req *r, const char *rel)
{
	if (strcmp(rel, "/index.html") == 0)
		return access_page(r, CAN_WALL);
	if (strcmp(rel, "/mayor.html") == 0)
		return access_page(r, CAN_MAYOR);
	if (strcmp(rel, "/provinsi.html") == 0)
		return access_page(r, CAN_PROVINCE);
	return true;
}

int access_upgrade(struct app *a, const struct http_client *c, char *detail,
		   size_t dlen)
{
	return access_ws_allow(a, c, NULL, 0, NULL, detail, dlen);
}
