/*
 * tests/unit/request/test_request.c - table-driven unit test of what the server
 * reads of a request before anything else (server/reqtext.h), of an agency
 * key's sensor scope (server/idset.h) and of the escaping of log lines
 * (log_escape).  The cases are in cases.json, beside this file; TAP.
 *
 *   test_request tests/unit/request/cases.json
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"
#include "log.h"
#include "reqtext.h"
#include "tap.h"

static const char *const route_names[] = {
    [ROUTE_NONE] = "none",	 [ROUTE_EVENTS] = "events",
    [ROUTE_KPIS] = "kpis",	 [ROUTE_SENSORS] = "sensors",
    [ROUTE_SENSOR] = "sensor",	 [ROUTE_SERIES] = "series",
    [ROUTE_ALERTS] = "alerts",	 [ROUTE_ALERT_ACK] = "alert_ack",
    [ROUTE_SESSION] = "session", [ROUTE_LOGOUT] = "logout",
    [ROUTE_HEALTHZ] = "healthz", [ROUTE_READYZ] = "readyz",
    [ROUTE_METRICS] = "metrics",
};

/*
 * A string member, or one built of ["prefix", "unit", count, "suffix"] in
 * member_repeat (for long inputs); malloc'd.
 */
static char *text_of(const json_t *c, const char *key)
{
	char rkey[64];
	const json_t *v = json_object_get(c, key), *rep;

	if (json_is_string(v))
		return strdup(json_string_value(v));
	snprintf(rkey, sizeof(rkey), "%s_repeat", key);
	rep = json_object_get(c, rkey);
	if (!json_is_array(rep) || json_array_size(rep) != 4)
		return NULL;
	const char *pre = json_string_value(json_array_get(rep, 0));
	const char *unit = json_string_value(json_array_get(rep, 1));
	json_int_t n = json_integer_value(json_array_get(rep, 2));
	const char *post = json_string_value(json_array_get(rep, 3));
	size_t len = strlen(pre) + strlen(unit) * (size_t)n + strlen(post);
	char *s = malloc(len + 1), *p = s;
	if (!s)
		return NULL;
	p += sprintf(p, "%s", pre);
	for (json_int_t i = 0; i < n; i++)
		p += sprintf(p, "%s", unit);
	sprintf(p, "%s", post);
	return s;
}

static void route_case(const json_t *c, struct note *n)
{
	const char *path = json_string_value(json_object_get(c, "path"));
	const char *want = json_string_value(json_object_get(c, "route"));
	const json_t *param = json_object_get(c, "param");
	const json_t *methods = json_object_get(c, "methods");
	const json_t *body = json_object_get(c, "body_max");
	const json_t *api = json_object_get(c, "api");
	struct route r = route_match(path);
	const json_t *m;
	size_t i;

	if (strcmp(route_names[r.id], want) != 0)
		note_add(n, "route %s, expected %s", route_names[r.id], want);
	if (json_is_string(param) &&
	    (!r.param || r.param_len != json_string_length(param) ||
	     strncmp(r.param, json_string_value(param), r.param_len) != 0))
		note_add(n, "param \"%.*s\", expected \"%s\"",
			 r.param ? (int)r.param_len : 6,
			 r.param ? r.param : "(none)",
			 json_string_value(param));
	if (!param && r.param)
		note_add(n, "param \"%.*s\", expected none", (int)r.param_len,
			 r.param);
	if (json_is_array(methods)) {
		unsigned bits = 0;
		json_array_foreach (methods, i, m) {
			const char *s = json_string_value(m);
			bits |= strcmp(s, "GET") == 0	 ? ROUTE_GET
				: strcmp(s, "POST") == 0 ? ROUTE_POST
							 : ROUTE_PUT;
		}
		if (bits != r.methods)
			note_add(n, "methods %#x, expected %#x", r.methods,
				 bits);
	}
	if (json_is_integer(body) &&
	    r.body_max != (size_t)json_integer_value(body))
		note_add(n, "body_max %zu, expected %lld", r.body_max,
			 (long long)json_integer_value(body));
	if (json_is_boolean(api) && route_is_api(path) != json_is_true(api))
		note_add(n, "route_is_api %d", route_is_api(path));
	if (r.id != ROUTE_NONE && !route_is_api(path))
		note_add(n, "a route that is not the API's");
}

static void cookie_case(const json_t *c, struct note *n)
{
	char *header = text_of(c, "header"), out[160];
	const json_t *want = json_object_get(c, "value");
	int got = reqtext_cookie(header, "kendali_session", out, sizeof(out));

	if (json_is_null(want) && got >= 0)
		note_add(n, "found \"%s\", expected none", out);
	if (json_is_string(want) &&
	    (got < 0 || strcmp(out, json_string_value(want)) != 0))
		note_add(n, "found %s, expected \"%s\"", got < 0 ? "none" : out,
			 json_string_value(want));
	if (got >= 0 && (size_t)got != strlen(out))
		note_add(n, "length %d for \"%s\"", got, out);
	free(header);
}

static void host_case(const json_t *c, struct note *n)
{
	const json_t *names = json_object_get(c, "names");
	const char *list[4];
	size_t count = 0;

	for (; count < json_array_size(names) && count < 4; count++)
		list[count] = json_string_value(json_array_get(names, count));
	bool got = reqtext_host_allowed(
	    json_string_value(json_object_get(c, "host")), list, count);
	if (got != json_is_true(json_object_get(c, "allowed")))
		note_add(n, "allowed %d", got);
}

static void origin_case(const json_t *c, struct note *n)
{
	bool got =
	    reqtext_same_origin(json_string_value(json_object_get(c, "origin")),
				json_string_value(json_object_get(c, "host")),
				json_is_true(json_object_get(c, "tls")));

	if (got != json_is_true(json_object_get(c, "same")))
		note_add(n, "same %d", got);
}

static void duration_case(const json_t *c, struct note *n)
{
	int64_t got = reqtext_duration_us(
	    json_string_value(json_object_get(c, "text")),
	    json_integer_value(json_object_get(c, "max_s")));
	json_int_t want = json_integer_value(json_object_get(c, "us"));

	if (got != want)
		note_add(n, "%lld us, expected %lld", (long long)got,
			 (long long)want);
}

static void username_case(const json_t *c, struct note *n)
{
	char *s = text_of(c, "text");
	bool got = reqtext_username_valid(s, strlen(s));

	if (got != json_is_true(json_object_get(c, "valid")))
		note_add(n, "valid %d", got);
	free(s);
}

static void scope_case(const json_t *c, struct note *n)
{
	struct idset set;
	const json_t *size = json_object_get(c, "size");

	if (idset_parse(&set, json_string_value(json_object_get(c, "list"))) <
	    0) {
		note_add(n, "out of memory");
		return;
	}
	bool got = idset_has(&set, json_string_value(json_object_get(c, "id")));
	if (got != json_is_true(json_object_get(c, "has")))
		note_add(n, "has %d", got);
	if (json_is_integer(size) && set.n != (size_t)json_integer_value(size))
		note_add(n, "%zu items, expected %lld", set.n,
			 (long long)json_integer_value(size));
	idset_free(&set);
}

static void log_escape_case(const json_t *c, struct note *n)
{
	const char *in = json_string_value(json_object_get(c, "text"));
	const char *want = json_string_value(json_object_get(c, "escaped"));
	char out[512];
	size_t len = log_escape(in, out, sizeof(out));

	if (strcmp(out, want) != 0 || len != strlen(want))
		note_add(n, "\"%s\" (%zu), expected \"%s\"", out, len, want);
}

int main(int argc, char **argv)
{
	static const struct tap_kind kinds[] = {
	    {"route", route_case},	 {"cookie", cookie_case},
	    {"host", host_case},	 {"origin", origin_case},
	    {"duration", duration_case}, {"username", username_case},
	    {"scope", scope_case},	 {"log_escape", log_escape_case},
	};
	struct tap t = {0};
	json_t *root, *cases;

	if (argc != 2) {
		fprintf(stderr, "usage: test_request CASES.json\n");
		return 2;
	}
	if (!(cases = tap_load_cases(argv[1], 0, &root)))
		return 1;
	tap_run_kinds(&t, cases, kinds, sizeof(kinds) / sizeof(kinds[0]));
	json_decref(root);
	return tap_done(&t);
}
