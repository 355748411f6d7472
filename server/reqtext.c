#include "reqtext.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- routes ---- */

#define API "/api/v1/"

static const struct route routes[] = {
    {ROUTE_EVENTS, ROUTE_POST, "POST", ROUTE_BODY_CONFIG, NULL, 0},
    {ROUTE_KPIS, ROUTE_GET, "GET", 0, NULL, 0},
    {ROUTE_SENSORS, ROUTE_GET, "GET", 0, NULL, 0},
    {ROUTE_SENSOR, ROUTE_PUT, "PUT", ROUTE_BODY_SENSOR, NULL, 0},
    {ROUTE_SERIES, ROUTE_GET, "GET", 0, NULL, 0},
    {ROUTE_ALERTS, ROUTE_GET, "GET", 0, NULL, 0},
    {ROUTE_ALERT_ACK, ROUTE_POST, "POST", ROUTE_BODY_SMALL, NULL, 0},
    {ROUTE_SESSION, ROUTE_GET | ROUTE_POST, "GET (who am I) or POST (log in)",
     ROUTE_BODY_SMALL, NULL, 0},
    {ROUTE_LOGOUT, ROUTE_POST, "POST", ROUTE_BODY_SMALL, NULL, 0},
    {ROUTE_HEALTHZ, ROUTE_GET, "GET", 0, NULL, 0},
    {ROUTE_READYZ, ROUTE_GET, "GET", 0, NULL, 0},
    {ROUTE_METRICS, ROUTE_GET, "GET", 0, NULL, 0},
};

/* The fixed paths; those with an {id} are matched in route_match. */
static const struct {
	const char *path;
	enum route_id id;
} fixed[] = {
    {API "events", ROUTE_EVENTS},   {API "kpis", ROUTE_KPIS},
    {API "sensors", ROUTE_SENSORS}, {API "series", ROUTE_SERIES},
    {API "alerts", ROUTE_ALERTS},   {API "session", ROUTE_SESSION},
    {API "logout", ROUTE_LOGOUT},   {"/healthz", ROUTE_HEALTHZ},
    {"/readyz", ROUTE_READYZ},	    {"/metrics", ROUTE_METRICS},
};

bool route_is_api(const char *path)
{
	return strncmp(path, "/api/", 5) == 0 ||
	       strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	       strcmp(path, "/metrics") == 0;
}

static struct route found(enum route_id id, const char *param, size_t len)
{
	struct route r = {0};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].id == id)
			r = routes[i];
	r.param = param;
	r.param_len = len;
	return r;
}

struct route route_match(const char *path)
{
	static const char sensors[] = API "sensors/", alerts[] = API "alerts/";
	const size_t ns = sizeof(sensors) - 1, na = sizeof(alerts) - 1;
	struct route none = {0};
	const char *id;
	size_t n;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(path, fixed[i].path) == 0)
			return found(fixed[i].id, NULL, 0);
	if (strncmp(path, sensors, ns) == 0) {
		id = path + ns;
		n = strlen(id);
		return memchr(id, '/', n) ? none : found(ROUTE_SENSOR, id, n);
	}
	if (strncmp(path, alerts, na) == 0) {
		id = path + na;
		n = strcspn(id, "/");
		return strcmp(id + n, "/ack") == 0
			   ? found(ROUTE_ALERT_ACK, id, n)
			   : none;
	}
	return none;
}

/* ---- headers ---- */

int reqtext_cookie(const char *header, const char *name, char *out, size_t len)
{
	const size_t n = strlen(name);
	const char *p = header;

	/* RFC 6265: pairs separated by ";" and optional spaces. */
	while (*p) {
		size_t pair;

		p += strspn(p, " \t;");
		pair = strcspn(p, ";");
		if (pair > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t v = strcspn(p + n + 1, "; \t");

			if (v >= len)
				return -1;
			memcpy(out, p + n + 1, v);
			out[v] = '\0';
			return (int)v;
		}
		p += pair;
	}
	return -1;
}

/* The host part of a Host header: "[v6]" or a name or v4, without port. */
static bool host_part(const char *host, char *out, size_t len)
{
	size_t n;

	if (host[0] == '[') {
		n = strcspn(host + 1, "]");
		if (host[1 + n] != ']' || n >= len)
			return false;
		memcpy(out, host + 1, n);
		out[n] = '\0';
		host += n + 2;
	} else {
		n = strcspn(host, ":");
		if (n >= len)
			return false;
		memcpy(out, host, n);
		out[n] = '\0';
		host += n;
	}
	if (*host == '\0')
		return true;
	/* A port: 1 to 5 digits, and nothing after them. */
	n = strlen(++host);
	return host[-1] == ':' && n >= 1 && n <= 5 &&
	       strspn(host, "0123456789") == n;
}

bool reqtext_host_allowed(const char *host, const char *const *names, size_t n)
{
	char name[256];
	unsigned char addr[16];

	if (!host[0])
		return true;
	if (!host_part(host, name, sizeof(name)) || !name[0])
		return false;
	if (inet_pton(AF_INET, name, addr) == 1 ||
	    inet_pton(AF_INET6, name, addr) == 1 ||
	    strcasecmp(name, "localhost") == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

bool reqtext_same_origin(const char *origin, const char *host, bool tls)
{
	const char *scheme = tls ? "https://" : "http://";
	size_t n = strlen(scheme);

	if (!origin[0])
		return true;
	return strncasecmp(origin, scheme, n) == 0 && host[0] &&
	       strcasecmp(origin + n, host) == 0;
}

int64_t reqtext_duration_us(const char *s, int64_t max_s)
{
	int64_t unit = 1, v = 0;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*p))
		return 0;
	/* Digit by digit, stopping before the value can pass max_s. */
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (*p - '0');
		if (v > max_s)
			return 0;
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return 0;
	}
	if (*p && p[1])
		return 0;
	if (v <= 0 || v > max_s / unit)
		return 0;
	return v * unit * 1000000;
}

bool reqtext_username_valid(const char *s, size_t n)
{
	if (n < 1 || n > REQTEXT_USERNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '@' || c == '-'))
			return false;
	}
	return true;
}
