/*
 * server/pgconn.h - one PostgreSQL connection driven by libpq without ever
 * blocking the libuv loop.
 *
 * The connection connects by itself (PQconnectStart/PQconnectPoll on a
 * uv_poll of libpq's socket) and reconnects with backoff when it is lost.
 * Queries wait in a FIFO and run one at a time; each gets exactly one
 * callback.  The queue is bounded: pgc_query refuses work past max_queue.
 *
 * A peer that stops answering is a lost connection too: a connection
 * attempt or a query unanswered for timeout_ms fails like a dropped socket
 * (a network cut seen from this side, or a database stalled), and over TCP
 * keepalives and a user timeout find a silent network within about 20 s
 * unless the connection string sets its own.
 */
#ifndef KENDALI_PGCONN_H
#define KENDALI_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

enum pgc_state {
	PGC_WAITING, /* no connection; a timer will start the next attempt */
	PGC_CONNECTING,
	PGC_IDLE,
	PGC_BUSY,  /* a query is in flight */
	PGC_CLOSED /* pgc_close was called */
};

struct pgc;

/* A NOTIFY received on a channel the connection LISTENs to (borrowed). */
typedef void (*pgc_notify_cb)(void *arg, const char *channel,
			      const char *payload);

/*
 * The result of one query.  res is borrowed (freed after the callback
 * returns) and is NULL when the query could not run or its outcome is
 * unknown because the connection failed; then error says why.  When res is
 * not NULL the caller checks PQresultStatus itself.
 */
typedef void (*pgc_result_cb)(void *arg, PGresult *res, const char *error);

/* Called on every change of state, e.g. for /readyz.  May be NULL. */
typedef void (*pgc_state_cb)(void *arg, enum pgc_state state);

/*
 * Creates the connection and starts connecting.  conninfo is copied.
 * Returns NULL when out of memory.
 */
struct pgc *pgc_new(uv_loop_t *loop, const char *conninfo, const char *name,
		    size_t max_queue, unsigned timeout_ms,
		    pgc_state_cb state_cb, void *arg);

/*
 * Queues a query with text parameters (copied; NULL entries are SQL NULLs).
 * Returns 0, or -1 when the queue is full, the connection is closed or
 * memory is short; then cb is never called.
 */
int pgc_query(struct pgc *c, const char *sql, int nparams,
	      const char *const *params, pgc_result_cb cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * Like pgc_query, for a statement run often: it is prepared once on each
 * connection under name (a string that outlives the connection, at most
 * PGC_PREPARED_MAX of them), then executed by name, so that PostgreSQL
 * parses and plans it once rather than at every call.
 */
#define PGC_PREPARED_MAX 8
int pgc_query_prepared(struct pgc *c, const char *name, const char *sql,
		       int nparams, const char *const *params, pgc_result_cb cb,
		       void *arg) __attribute__((warn_unused_result));

/*
 * One parameter of pgc_query_params: text, NUL-terminated (length is then
 * ignored), or length bytes in PostgreSQL's binary format for the
 * parameter's type.  A NULL value is an SQL NULL.
 */
struct pgc_param {
	const char *value;
	int length;
	bool binary;
};

/*
 * Like pgc_query_prepared (name NULL: not prepared), with parameters in
 * either format (copied) and, when binary_result, every column of the
 * result in binary (pgbin.h reads them).
 */
int pgc_query_params(struct pgc *c, const char *name, const char *sql,
		     int nparams, const struct pgc_param *params,
		     bool binary_result, pgc_result_cb cb, void *arg)
    __attribute__((warn_unused_result));

/*
 * Calls cb for every notification the connection receives; the owner
 * issues the LISTEN (again after each reconnection, seen in the state
 * callback).
 */
void pgc_on_notify(struct pgc *c, pgc_notify_cb cb, void *arg);

enum pgc_state pgc_state(const struct pgc *c);
bool pgc_connected(const struct pgc *c);

/*
 * Fails every queued query (callback with res NULL), closes the socket and
 * frees the connection once libuv has released its handles.
 */
void pgc_close(struct pgc *c);

#endif
