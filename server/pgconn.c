#include "pgconn.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000

/*
 * TCP settings under the caller's connection string (which overrides them):
 * an idle connection whose network went silent is found after 10 + 3 x 5 s,
 * one with data unacknowledged after 20 s.  Unix sockets ignore them.
 */
static const char *const tcp_keys[] = {"keepalives",
				       "keepalives_idle",
				       "keepalives_interval",
				       "keepalives_count",
				       "tcp_user_timeout",
				       "dbname",
				       NULL};

struct pgc_job {
	struct pgc_job *next;
	const char *name; /* of a prepared statement, or NULL */
	bool preparing;	  /* the PREPARE is in flight, then the execution */
	char *sql;
	int nparams;
	char **params;
	int *lengths; /* of binary parameters; NULL when all are text */
	int *formats;
	int result_format;
	pgc_result_cb cb;
	void *arg;
};

/*
 * A poll handle lives apart from the connection because libuv frees it only
 * in its close callback; the libpq connection it watched, if it is being
 * dropped, is finished there too, never before the handle is closed.
 */
struct pgc_poll {
	uv_poll_t handle;
	PGconn *finish;
};

struct pgc {
	uv_loop_t *loop;
	char *conninfo;
	char *name;
	enum pgc_state state;
	PGconn *conn;
	struct pgc_poll *poll;
	int sock;
	int poll_events;
	uv_timer_t timer;    /* the next connection attempt */
	uv_timer_t deadline; /* an attempt or a query unanswered */
	unsigned timeout_ms;
	unsigned backoff_ms;
	struct pgc_job *head, *tail, *current;
	size_t queued, max_queue;
	PGresult *result;
	const char *prepared[PGC_PREPARED_MAX]; /* on this connection */
	int nprepared;
	pgc_state_cb state_cb;
	void *state_arg;
	pgc_notify_cb notify_cb;
	void *notify_arg;
	int open_handles;
};

static void start_connect(struct pgc *c);
static void run_next(struct pgc *c);
static void on_poll(uv_poll_t *h, int status, int events);

/*
 * The one place the state changes, along these arrows only (as PgBouncer's
 * change_client_state): a connection is waited for, made, used, lost, and
 * once closed stays closed, whatever a late callback asks.
 *
 *	WAITING -> CONNECTING -> IDLE <-> BUSY
 *	CONNECTING, IDLE, BUSY -> WAITING (lost);  any -> CLOSED
 */
static bool may_become(enum pgc_state from, enum pgc_state to)
{
	switch (to) {
	case PGC_CONNECTING:
		return from == PGC_WAITING;
	case PGC_IDLE:
		return from == PGC_CONNECTING || from == PGC_BUSY;
	case PGC_BUSY:
		return from == PGC_IDLE;
	case PGC_WAITING:
		return from == PGC_CONNECTING || from == PGC_IDLE ||
		       from == PGC_BUSY;
	case PGC_CLOSED:
		return true;
	}
	return false;
}

static void set_state(struct pgc *c, enum pgc_state s)
{
	if (c->state == s)
		return;
	if (!may_become(c->state, s)) {
		log_error("%s: no change of state from %d to %d", c->name,
			  (int)c->state, (int)s);
		return;
	}
	c->state = s;
	if (c->state_cb)
		c->state_cb(c->state_arg, s);
}

static void job_free(struct pgc_job *j)
{
	for (int i = 0; i < j->nparams; i++)
		free(j->params[i]);
	free(j->params);
	free(j->lengths);
	free(j->formats);
	free(j->sql);
	free(j);
}

static void job_finish(struct pgc_job *j, PGresult *res, const char *error)
{
	j->cb(j->arg, res, error);
	job_free(j);
}

static void pgc_maybe_free(struct pgc *c)
{
	if (c->state == PGC_CLOSED && c->open_handles == 0) {
		free(c->conninfo);
		free(c->name);
		free(c);
	}
}

static void poll_closed_cb(uv_handle_t *h)
{
	struct pgc_poll *p = (struct pgc_poll *)h;
	struct pgc *c = h->data;

	if (p->finish)
		PQfinish(p->finish);
	free(p);
	c->open_handles--;
	pgc_maybe_free(c);
}

/* Stops watching the socket; finishes the connection too if asked. */
static void drop_poll(struct pgc *c, PGconn *finish)
{
	if (c->poll) {
		uv_poll_stop(&c->poll->handle);
		c->poll->finish = finish;
		uv_close((uv_handle_t *)&c->poll->handle, poll_closed_cb);
		c->poll = NULL;
	} else if (finish) {
		PQfinish(finish);
	}
	c->sock = -1;
	c->poll_events = 0;
}

static int watch(struct pgc *c, int events)
{
	int sock = PQsocket(c->conn);

	if (sock < 0)
		return -1;
	if (c->poll && sock != c->sock)
		drop_poll(c, NULL);
	if (!c->poll) {
		c->poll = calloc(1, sizeof(*c->poll));
		if (!c->poll)
			return -1;
		if (uv_poll_init(c->loop, &c->poll->handle, sock) != 0) {
			free(c->poll);
			c->poll = NULL;
			return -1;
		}
		c->poll->handle.data = c;
		c->open_handles++;
		c->sock = sock;
		c->poll_events = 0;
	}
	if (events != c->poll_events) {
		if (uv_poll_start(&c->poll->handle, events, on_poll) != 0)
			return -1;
		c->poll_events = events;
	}
	return 0;
}

static void fail_queue(struct pgc *c, const char *error)
{
	struct pgc_job *j = c->head;

	c->head = c->tail = NULL;
	c->queued = 0;
	while (j) {
		struct pgc_job *next = j->next;
		job_finish(j, NULL, error);
		j = next;
	}
}

static void timer_cb(uv_timer_t *t)
{
	start_connect(t->data);
}

static void deadline_cb(uv_timer_t *t);

/* Gives the attempt or query now under way timeout_ms to be answered. */
static void arm_deadline(struct pgc *c)
{
	if (c->timeout_ms)
		uv_timer_start(&c->deadline, deadline_cb, c->timeout_ms, 0);
}

/*
 * The one sink for a lost or failed connection: the query in flight fails
 * (its outcome is unknown), so does everything queued, and a new attempt is
 * scheduled with a growing delay.
 */
static void broken(struct pgc *c, const char *why)
{
	char error[256];

	snprintf(error, sizeof(error), "%s",
		 why ? why
		     : (c->conn ? PQerrorMessage(c->conn) : "no connection"));
	error[strcspn(error, "\n")] = '\0';
	if (c->state != PGC_WAITING)
		log_warn("database %s: %s; retrying in %u ms", c->name, error,
			 c->backoff_ms);
	if (c->result) {
		PQclear(c->result);
		c->result = NULL;
	}
	drop_poll(c, c->conn);
	c->conn = NULL;
	c->nprepared = 0;
	uv_timer_stop(&c->deadline);
	set_state(c, PGC_WAITING);
	if (c->current) {
		struct pgc_job *j = c->current;
		c->current = NULL;
		job_finish(j, NULL, error);
	}
	fail_queue(c, error);
	uv_timer_start(&c->timer, timer_cb, c->backoff_ms, 0);
	c->backoff_ms *= 2;
	if (c->backoff_ms > BACKOFF_MAX_MS)
		c->backoff_ms = BACKOFF_MAX_MS;
}

static void deadline_cb(uv_timer_t *t)
{
	struct pgc *c = t->data;
	char why[96];

	if (c->state != PGC_CONNECTING && c->state != PGC_BUSY)
		return;
	snprintf(why, sizeof(why), "no answer %s within %u ms",
		 c->state == PGC_CONNECTING ? "to the connection attempt"
					    : "to a query",
		 c->timeout_ms);
	broken(c, why);
}

static void start_connect(struct pgc *c)
{
	const char *values[] = {"1",	 "10",	      "5", "3",
				"20000", c->conninfo, NULL};

	if (c->state == PGC_CLOSED)
		return;
	c->conn = PQconnectStartParams(tcp_keys, values, 1);
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		broken(c, NULL);
		return;
	}
	PQsetnonblocking(c->conn, 1);
	set_state(c, PGC_CONNECTING);
	arm_deadline(c);
	/* libpq asks to wait for writability first after PQconnectStart. */
	if (watch(c, UV_WRITABLE) < 0)
		broken(c, "cannot watch the database socket");
}

static void connect_step(struct pgc *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		if (watch(c, UV_READABLE) < 0)
			broken(c, "cannot watch the database socket");
		return;
	case PGRES_POLLING_WRITING:
		if (watch(c, UV_WRITABLE) < 0)
			broken(c, "cannot watch the database socket");
		return;
	case PGRES_POLLING_OK:
		if (watch(c, UV_READABLE) < 0) {
			broken(c, "cannot watch the database socket");
			return;
		}
		log_info("database %s: connected", c->name);
		uv_timer_stop(&c->deadline);
		c->backoff_ms = BACKOFF_MIN_MS;
		set_state(c, PGC_IDLE);
		run_next(c);
		return;
	default:
		broken(c, NULL);
		return;
	}
}

static void flush(struct pgc *c)
{
	int r = PQflush(c->conn);

	if (r < 0)
		broken(c, NULL);
	else if (watch(c, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
		broken(c, "cannot watch the database socket");
}

static bool is_prepared(const struct pgc *c, const char *name)
{
	for (int i = 0; i < c->nprepared; i++)
		if (strcmp(c->prepared[i], name) == 0)
			return true;
	return false;
}

/* Sends the current job: its PREPARE first when its name is new here. */
static int send_job(struct pgc *c, struct pgc_job *j)
{
	if (!j->name ||
	    (!is_prepared(c, j->name) && c->nprepared == PGC_PREPARED_MAX))
		return PQsendQueryParams(c->conn, j->sql, j->nparams, NULL,
					 (const char *const *)j->params,
					 j->lengths, j->formats,
					 j->result_format);
	j->preparing = !is_prepared(c, j->name);
	if (j->preparing)
		return PQsendPrepare(c->conn, j->name, j->sql, j->nparams,
				     NULL);
	return PQsendQueryPrepared(c->conn, j->name, j->nparams,
				   (const char *const *)j->params, j->lengths,
				   j->formats, j->result_format);
}

static void run_next(struct pgc *c)
{
	struct pgc_job *j = c->head;

	if (c->state != PGC_IDLE || !j)
		return;
	c->head = j->next;
	if (!c->head)
		c->tail = NULL;
	c->queued--;
	c->current = j;
	set_state(c, PGC_BUSY);
	arm_deadline(c);
	if (!send_job(c, j)) {
		broken(c, NULL);
		return;
	}
	flush(c);
}

/*
 * The PREPARE of the current job is done: on success the statement is
 * known here and the job is sent again, to run; true then.
 */
static bool prepared(struct pgc *c, struct pgc_job *j, PGresult *r)
{
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		return false;
	PQclear(r);
	c->prepared[c->nprepared++] = j->name;
	arm_deadline(c);
	if (!send_job(c, j))
		broken(c, NULL);
	else
		flush(c);
	return true;
}

static void notices(struct pgc *c)
{
	PGnotify *n;

	while (c->conn && (n = PQnotifies(c->conn))) {
		if (c->notify_cb)
			c->notify_cb(c->notify_arg, n->relname, n->extra);
		PQfreemem(n);
	}
}

static void read_results(struct pgc *c)
{
	if (!PQconsumeInput(c->conn)) {
		broken(c, NULL);
		return;
	}
	notices(c);
	if (c->state != PGC_BUSY) {
		if (PQstatus(c->conn) == CONNECTION_BAD)
			broken(c, NULL);
		return;
	}
	while (!PQisBusy(c->conn)) {
		PGresult *res = PQgetResult(c->conn);

		if (res) {
			/* A statement yields one result; keep an error
			 * over anything that came before it. */
			if (c->result)
				PQclear(c->result);
			c->result = res;
			continue;
		}
		struct pgc_job *j = c->current;
		PGresult *r = c->result;
		c->result = NULL;
		if (j->preparing && prepared(c, j, r))
			return;
		c->current = NULL;
		uv_timer_stop(&c->deadline);
		set_state(c, PGC_IDLE);
		if (r)
			job_finish(j, r, NULL);
		else
			job_finish(j, NULL, "no result");
		if (r)
			PQclear(r);
		if (c->state != PGC_IDLE)
			return;
		if (PQstatus(c->conn) == CONNECTION_BAD) {
			broken(c, NULL);
			return;
		}
		run_next(c);
		return;
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pgc *c = h->data;

	if (c->state == PGC_CLOSED)
		return;
	if (status < 0) {
		broken(c, uv_strerror(status));
		return;
	}
	if (c->state == PGC_CONNECTING) {
		connect_step(c);
		return;
	}
	if (events & UV_WRITABLE) {
		flush(c);
		if (c->state != PGC_BUSY)
			return;
	}
	if (events & UV_READABLE)
		read_results(c);
}

static void timer_closed_cb(uv_handle_t *h)
{
	struct pgc *c = h->data;

	c->open_handles--;
	pgc_maybe_free(c);
}

struct pgc *pgc_new(uv_loop_t *loop, const char *conninfo, const char *name,
		    size_t max_queue, unsigned timeout_ms,
		    pgc_state_cb state_cb, void *arg)
{
	struct pgc *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->conninfo = strdup(conninfo);
	c->name = strdup(name);
	if (!c->conninfo || !c->name) {
		free(c->conninfo);
		free(c->name);
		free(c);
		return NULL;
	}
	c->sock = -1;
	c->max_queue = max_queue;
	c->timeout_ms = timeout_ms;
	c->state = PGC_WAITING;
	c->state_cb = state_cb;
	c->state_arg = arg;
	c->backoff_ms = BACKOFF_MIN_MS;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	uv_timer_init(loop, &c->deadline);
	c->deadline.data = c;
	c->open_handles = 2;
	start_connect(c);
	return c;
}

int pgc_query(struct pgc *c, const char *sql, int nparams,
	      const char *const *params, pgc_result_cb cb, void *arg)
{
	return pgc_query_prepared(c, NULL, sql, nparams, params, cb, arg);
}

int pgc_query_prepared(struct pgc *c, const char *name, const char *sql,
		       int nparams, const char *const *params, pgc_result_cb cb,
		       void *arg)
{
	struct pgc_param p[nparams > 0 ? nparams : 1];

	for (int i = 0; i < nparams; i++)
		p[i] = (struct pgc_param){.value = params[i]};
	return pgc_query_params(c, name, sql, nparams, p, false, cb, arg);
}

static char *memdup(const char *v, int len)
{
	size_t n = len > 0 ? (size_t)len : 0;
	char *p = malloc(n + 1);

	if (p)
		memcpy(p, v, n);
	return p;
}

int pgc_query_params(struct pgc *c, const char *name, const char *sql,
		     int nparams, const struct pgc_param *params,
		     bool binary_result, pgc_result_cb cb, void *arg)
{
	struct pgc_job *j;
	bool binary = false;

	if (c->state == PGC_WAITING || c->state == PGC_CLOSED ||
	    c->queued >= c->max_queue || nparams < 0)
		return -1;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	for (int i = 0; i < nparams; i++)
		binary |= params[i].binary;
	j->sql = strdup(sql);
	j->params = nparams ? calloc((size_t)nparams, sizeof(char *)) : NULL;
	if (binary) {
		j->lengths = calloc((size_t)nparams, sizeof(int));
		j->formats = calloc((size_t)nparams, sizeof(int));
	}
	if (!j->sql || (nparams && !j->params) ||
	    (binary && (!j->lengths || !j->formats)))
		goto fail;
	j->nparams = nparams;
	for (int i = 0; i < nparams; i++) {
		const struct pgc_param *p = &params[i];

		if (!p->value)
			continue;
		if (p->binary) {
			j->lengths[i] = p->length;
			j->formats[i] = 1;
			j->params[i] = memdup(p->value, p->length);
		} else {
			j->params[i] = strdup(p->value);
		}
		if (!j->params[i])
			goto fail;
	}
	j->result_format = binary_result;
	j->name = name;
	j->cb = cb;
	j->arg = arg;
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	c->queued++;
	run_next(c);
	return 0;
fail:
	job_free(j);
	return -1;
}

void pgc_on_notify(struct pgc *c, pgc_notify_cb cb, void *arg)
{
	c->notify_cb = cb;
	c->notify_arg = arg;
}

enum pgc_state pgc_state(const struct pgc *c)
{
	return c->state;
}

bool pgc_connected(const struct pgc *c)
{
	return c->state == PGC_IDLE || c->state == PGC_BUSY;
}

void pgc_close(struct pgc *c)
{
	struct pgc_job *cur = c->current;

	c->current = NULL;
	set_state(c, PGC_CLOSED);
	if (cur)
		job_finish(cur, NULL, "server shutting down");
	fail_queue(c, "server shutting down");
	if (c->result) {
		PQclear(c->result);
		c->result = NULL;
	}
	drop_poll(c, c->conn);
	c->conn = NULL;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
	uv_timer_stop(&c->deadline);
	uv_close((uv_handle_t *)&c->deadline, timer_closed_cb);
}
