/*
 * server/api.h - the HTTP API of docs/api.md: ingest, the sensor registry,
 * reads, alerts, health and metrics.  Each handler validates fully before
 * anything reaches the database and answers with exactly one response.
 */
#ifndef KENDALI_API_H
#define KENDALI_API_H

#include <stdbool.h>

struct http_req;

/*
 * Takes a request whose path is under /api/ or a health endpoint, with
 * r->route matched, from its request line and headers alone.  Returns true
 * when its body is to be read (the caller is identified and may send it);
 * api_body follows once the body is in.  Otherwise the request has been
 * answered, or will be without its body (a read waiting on the database).
 */
bool api_begin(struct http_req *r);

/* Handles a request api_begin let read its body, with r->body. */
void api_body(struct http_req *r);

#endif
