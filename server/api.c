#include "api.h"

#include "access.h"
#include "api_routes.h"
#include "app.h"
#include "http.h"
#include "reqtext.h"

#include <stdio.h>

static void not_found(struct http_req *r)
{
	http_problem(r, 404, "not_found", "Not found",
		     "There is no API at this address; see docs/api.md.", NULL);
}

static void method_not_allowed(struct http_req *r, const char *allowed)
{
	char detail[96];

	snprintf(detail, sizeof(detail), "Use %s at this address.", allowed);
	http_problem(r, 405, "method_not_allowed", "Method not allowed", detail,
		     NULL);
}

static unsigned method_bit(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
	case HTTP_HEAD:
		return ROUTE_GET;
	case HTTP_POST:
		return ROUTE_POST;
	case HTTP_PUT:
		return ROUTE_PUT;
	default:
		return 0;
	}
}

bool api_begin(struct http_req *r)
{
	const struct route *rt = &r->route;
	unsigned m = method_bit(r->method);

	r->app->requests++;
	if (rt->id == ROUTE_NONE) {
		not_found(r);
		return false;
	}
	if (!(rt->methods & m)) {
		method_not_allowed(r, rt->allowed);
		return false;
	}
	switch (rt->id) {
	/* Writes: the caller is known, and may, before the body is read. */
	case ROUTE_EVENTS:
		return api_authorize(r) != NULL;
	case ROUTE_SENSOR:
		return api_sensor_begin(r);
	case ROUTE_ALERT_ACK:
		return access_allow(r, CAN_ACK);
	case ROUTE_LOGOUT:
		return access_allow(r, 0);
	case ROUTE_SESSION:
		if (m == ROUTE_POST)
			return access_login_begin(r);
		access_whoami(r);
		return false;
	/* Reads: answered now. */
	case ROUTE_KPIS:
		if (access_allow(r, CAN_READ))
			api_get_kpis(r);
		return false;
	case ROUTE_SENSORS:
		if (api_sensor_reader(r))
			api_get_sensors(r);
		return false;
	case ROUTE_SERIES:
		if (access_allow(r, CAN_READ))
			api_get_series(r);
		return false;
	case ROUTE_ALERTS:
		if (access_allow(r, CAN_READ))
			api_get_alerts(r);
		return false;
	case ROUTE_HEALTHZ:
		api_healthz(r);
		return false;
	case ROUTE_READYZ:
		api_readyz(r);
		return false;
	case ROUTE_METRICS:
		/* Scraped from the machine itself, or with an admin's
		 * token from elsewhere. */
		if (r->client.loopback || access_allow(r, CAN_ADMIN))
			api_metrics(r);
		return false;
	case ROUTE_NONE:
		break;
	}
	not_found(r);
	return false;
}

void api_body(struct http_req *r)
{
	switch (r->route.id) {
	case ROUTE_EVENTS:
		api_post_events(r);
		return;
	case ROUTE_SENSOR:
		api_put_sensor(r);
		return;
	case ROUTE_ALERT_ACK:
		api_ack_alert(r);
		return;
	case ROUTE_SESSION:
		access_login(r);
		return;
	case ROUTE_LOGOUT:
		access_logout(r);
		return;
	default:
		/* api_begin reads no body for the other routes. */
		not_found(r);
	}
}
