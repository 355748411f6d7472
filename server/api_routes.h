/*
 * server/api_routes.h - the handlers api.c routes to, one file per
 * audience: api_ingest.c (agencies' writes: events, the sensor registry),
 * api_screens.c (what screens and people read, and their
 * acknowledgements), api_ops.c (health and metrics, for the city's ops
 * team).  Each answers its request exactly once.  *_begin functions decide
 * from the request's headers whether its body is to be read.
 */
#ifndef KENDALI_API_ROUTES_H
#define KENDALI_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct app;
struct http_req;
struct key_info;
struct tenant;

/* api_ingest.c */
/* The request's agency key, allowed by its rate; NULL when the request has
 * been answered (401 or 429).  Called once per request. */
const struct key_info *api_authorize(struct http_req *r);
void api_post_events(struct http_req *r);
bool api_sensor_begin(struct http_req *r);
void api_put_sensor(struct http_req *r);

/* api_screens.c */
/* The tenant's sensor of registry index i as the API shows it (new
 * reference). */
json_t *api_sensor_json(struct tenant *t, int i, int64_t now);
bool api_sensor_reader(struct http_req *r);
void api_get_sensors(struct http_req *r);
void api_get_kpis(struct http_req *r);
void api_get_series(struct http_req *r);
void api_get_alerts(struct http_req *r);
void api_ack_alert(struct http_req *r);

/* api_ops.c */
void api_healthz(struct http_req *r);
void api_readyz(struct http_req *r);
void api_metrics(struct http_req *r);

#endif
