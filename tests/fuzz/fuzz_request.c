/*
 * tests/fuzz/fuzz_request.c - libFuzzer target for the text of a request
 * that the server reads before anything else: the path's route and id, the
 * Cookie, Host and Origin headers, durations of query arguments, user names,
 * sensor ids and an agency key's sensor scope (server/reqtext.h,
 * server/idset.h, ev_subject_valid).
 *
 * fuzz-sources: server/reqtext.c server/idset.c
 *
 * Build and run from the top of the tree with tests/fuzz/run.sh request.
 * The input is cut at its first NUL or newline into two strings, a and b
 * (b empty when there is no cut), and every function is called with them.
 * The checks are what the server relies on, each against an expectation
 * computed here independently: a route's id is one segment of the path it
 * was found in; a cookie's value is a pair of the header; a duration is a
 * whole number of seconds within its maximum; the key's scope holds an id
 * exactly when the comma-separated list has it as an item, never as a part
 * of one (the crash of an empty id or one led by a comma was that).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "idset.h"
#include "reqtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void route(const char *path)
{
	struct route r = route_match(path);
	size_t n = strlen(path);

	if (r.id == ROUTE_NONE) {
		check(!r.param && !r.methods);
		return;
	}
	check(route_is_api(path));
	check(r.methods && r.allowed && r.allowed[0]);
	if (!r.param) {
		check(r.id != ROUTE_SENSOR && r.id != ROUTE_ALERT_ACK);
		return;
	}
	check(r.param > path && r.param + r.param_len <= path + n);
	check(r.param[-1] == '/');
	check(!memchr(r.param, '/', r.param_len));
	if (r.id == ROUTE_SENSOR)
		check(r.param + r.param_len == path + n);
	else
		check(r.id == ROUTE_ALERT_ACK &&
		      strcmp(r.param + r.param_len, "/ack") == 0);
}

static void cookie(const char *header, const char *name)
{
	char out[24];
	int n;

	if (!name[0] || strchr(name, '=') || strchr(name, ';'))
		return;
	n = reqtext_cookie(header, name, out, sizeof(out));
	if (n < 0)
		return;
	check((size_t)n == strlen(out) && (size_t)n < sizeof(out));
	check(!strpbrk(out, "; \t"));
	/* "name=value" is in the header, at the start of a pair. */
	size_t nl = strlen(name);
	bool seen = false;
	for (const char *p = header; (p = strstr(p, name)); p++)
		if ((p == header || strchr("; \t", p[-1])) && p[nl] == '=' &&
		    strncmp(p + nl + 1, out, (size_t)n) == 0)
			seen = true;
	check(seen);
}

static void host_and_origin(const char *a, const char *b)
{
	const char *names[1] = {b};

	/* Without names, only an address literal or localhost passes. */
	if (reqtext_host_allowed(a, NULL, 0) && a[0])
		check(!strpbrk(a, "/ @\t") && strlen(a) < 270);
	if (reqtext_host_allowed(a, names, 1) && a[0] &&
	    !reqtext_host_allowed(a, NULL, 0))
		check(strncasecmp(a, b, strlen(b)) == 0 ||
		      (a[0] == '[' && strncasecmp(a + 1, b, strlen(b)) == 0));
	for (int tls = 0; tls < 2; tls++) {
		if (!reqtext_same_origin(a, b, tls) || !a[0])
			continue;
		const char *scheme = tls ? "https://" : "http://";
		check(strncasecmp(a, scheme, strlen(scheme)) == 0);
		check(strcasecmp(a + strlen(scheme), b) == 0 && b[0]);
	}
}

static void duration(const char *s)
{
	static const int64_t maxes[] = {1,     59,	   60,
					86400, 30 * 86400, INT64_C(1) << 40};

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		int64_t us = reqtext_duration_us(s, maxes[i]);

		check(us >= 0 && us % 1000000 == 0);
		check(us / 1000000 <= maxes[i]);
		if (us)
			check(s[0] >= '0' && s[0] <= '9');
	}
}

/* Whether id is an item of the comma-separated list, the slow way. */
static bool listed(const char *list, const char *id)
{
	size_t n = strlen(id);

	if (!n)
		return false;
	for (const char *p = list;;) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, id, n) == 0)
			return true;
		if (!p[len])
			return false;
		p += len + 1;
	}
}

static void scope(const char *list, const char *id)
{
	struct idset s;

	if (idset_parse(&s, list) < 0)
		return;
	check(idset_has(&s, id) == listed(list, id));
	for (size_t i = 0; i < s.n; i++) {
		check(s.ids[i][0] && !strchr(s.ids[i], ','));
		check(listed(list, s.ids[i]) && idset_has(&s, s.ids[i]));
		check(i == 0 || strcmp(s.ids[i - 1], s.ids[i]) < 0);
	}
	idset_free(&s);
	/* A valid id holds no comma, so it can never straddle two items. */
	if (ev_subject_valid(id, strlen(id)))
		check(!strchr(id, ',') && id[0]);
}

static void username(const char *s)
{
	if (!reqtext_username_valid(s, strlen(s)))
		return;
	for (const char *p = s; *p; p++)
		check((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._@-", *p));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = malloc(size + 1), *b;
	size_t cut;

	if (!a)
		return 0;
	memcpy(a, data, size);
	a[size] = '\0';
	cut = strcspn(a, "\n");
	if (cut < size && a[cut] == '\n') {
		a[cut] = '\0';
		b = a + cut + 1;
	} else {
		b = a + strlen(a); /* "" */
	}
	route(a);
	cookie(a, b);
	cookie(a, "kendali_session");
	host_and_origin(a, b);
	duration(a);
	scope(a, b);
	scope(b, a);
	username(a);
	free(a);
	return 0;
}
