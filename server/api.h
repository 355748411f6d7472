/*
 * server/api.h - the HTTP API of docs/api.md: ingest, the sensor registry,
 * reads, alerts, health and metrics.  Each handler validates fully before
 * anything reaches the database and answers with exactly one response.
 */
#ifndef KENDALI_API_H
#define KENDALI_API_H

struct http_req;

/* Handles a request whose path is under /api/ or a health endpoint. */
void api_route(struct http_req *r);

#endif
