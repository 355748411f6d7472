#include "pub.h"

#include "buf.h"
#include "wsmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 64		 /* messages kept for screens behind */
#define FANOUT_CHUNK 256 /* screens offered a message per loop turn */
/* Screens are scanned for pings, heartbeats and stalls this often at most:
 * a scan of 10,000 screens costs about 10 ms, and ticks come every
 * --publish-ms (50 ms when tuned for latency). */
#define SCAN_US (500 * INT64_C(1000))
#define STALL_US (30 * INT64_C(1000000)) /* no write for this long: dropped */
#define MAX_ERRORS 5	/* junk messages before a screen is closed */
#define MAX_RX_PER_S 20 /* messages a screen may send per second */
/* lws' own value for a close frame, which its header keeps private. */
#define PUB_WRITE_CLOSE ((enum lws_write_protocol)4)

/*
 * A message shared by every screen.  Its text for each subscription mask is
 * built once, on first use, and freed with the message.
 */
struct msg {
	int refs;
	json_t *body;	 /* {"type", "at"?, "kpis" or "alert"} */
	unsigned topics; /* topics the message is about */
	bool everyone;	 /* sent whatever the subscription */
	char *text[WS_TOPIC_ALL + 1];
	bool empty[WS_TOPIC_ALL + 1]; /* nothing of it for that mask */
};

/*
 * Where a screen's connection is.  Only sess_to() changes it, and only
 * along the arrows:
 *
 *	OPEN --> CLOSING --> CLOSE_SENT	  a close frame owed, then written
 *	OPEN --> BROKEN			  a write outside its turn failed
 *	OPEN --> DROPPED		  stalled or silent: lws kills it
 *
 * A screen leaves every state but OPEN only by lws closing it.  Once out
 * of OPEN, nothing it sends is read: a close begun in the middle of a
 * frame is written at the screen's next writable turn, between frames,
 * so lws keeps parsing the rest of the frame and the peer's reply.
 */
enum sess_state {
	SESS_OPEN,
	SESS_CLOSING,
	SESS_CLOSE_SENT,
	SESS_BROKEN,
	SESS_DROPPED
};

struct sess {
	struct sess *prev, *next;
	struct lws *wsi;
	uint64_t tail; /* next ring position to send */
	uint64_t seq;  /* of the last message sent */
	unsigned mask;
	enum sess_state state;
	bool need_snapshot;
	bool need_heartbeat;
	bool need_ping;
	unsigned short close_code; /* of the close frame owed or sent */
	const char *close_why;	   /* its reason, a static string */
	struct pub *pub;	   /* its tenant's publisher */
	char id[PUB_ID_MAX];	   /* the screen's credential, "" if none */
	int errors;		   /* bad messages received */
	int errors_sent;	   /* of their replies, those sent */
	char *error[MAX_ERRORS];   /* the replies, each sent in turn before
				      anything else */
	struct buf rx;
	int64_t last_write_us; /* last writable turn: it takes messages */
	int64_t last_sent_us;  /* last message sent: heartbeats count from it */
	int64_t last_rx_us;    /* last frame received, pongs included */
	int64_t last_ping_us;  /* last ping sent */
	/* When the last MAX_RX_PER_S messages came, in a ring: one more
	 * within a second of the oldest is one too many. */
	int64_t rx_at_us[MAX_RX_PER_S];
	unsigned rx_n; /* messages received */
};

struct pub {
	struct lws_context *ctx;
	uv_idle_t fanout; /* runs while a fan-out is under way */
	bool fanout_open;
	struct sess *fan_next; /* next screen of the fan-out under way */
	bool fan_again;	       /* a message came during it */
	int64_t fan_start_us;
	int64_t ping_us; /* ping a screen silent this long, drop at 3x */
	int64_t last_scan_us;
	struct msg *ring[RING];
	uint64_t head;	      /* position of the next message */
	struct msg *snapshot; /* the current whole state */
	struct sess *sessions;
	size_t nsessions;
	char at[40]; /* time of the current state */
	bool db_down;
	char down_since[40];
	uint64_t sent, snapshots;
	uint64_t pushes, push_us; /* fan-outs, and their time to the last */
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Moves s to state to if the diagram above allows it; false if not. */
static bool sess_to(struct sess *s, enum sess_state to)
{
	bool ok;

	switch (to) {
	case SESS_CLOSING:
	case SESS_BROKEN:
	case SESS_DROPPED:
		ok = s->state == SESS_OPEN;
		break;
	case SESS_CLOSE_SENT:
		ok = s->state == SESS_CLOSING;
		break;
	default:
		ok = false;
	}
	if (ok)
		s->state = to;
	return ok;
}

/* Owes the screen a close frame with code and why (a static string), sent
 * from its next writable turn. */
static void close_screen(struct sess *s, unsigned short code, const char *why)
{
	if (!sess_to(s, SESS_CLOSING))
		return;
	s->close_code = code;
	s->close_why = why;
	lws_callback_on_writable(s->wsi);
}

static unsigned topics_of(json_t *kpis)
{
	const char *key;
	json_t *v;
	unsigned t = 0;

	json_object_foreach (kpis, key, v)
		t |= ws_topic_of_key(key);
	return t;
}

static struct msg *msg_new(json_t *body, unsigned topics)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (!m) {
		json_decref(body);
		return NULL;
	}
	m->refs = 1;
	m->body = body;
	m->topics = topics;
	return m;
}

static void msg_unref(struct msg *m)
{
	if (!m || --m->refs > 0)
		return;
	for (int i = 0; i <= WS_TOPIC_ALL; i++)
		free(m->text[i]);
	json_decref(m->body);
	free(m);
}

/*
 * The message's text for a subscription mask, or NULL when the mask leaves
 * nothing of it.  A kpis message with no keys at all is a heartbeat and
 * goes to everyone.
 */
static const char *msg_text(struct msg *m, unsigned mask)
{
	json_t *kpis, *body;

	if (m->text[mask] || m->empty[mask])
		return m->text[mask];
	kpis = json_object_get(m->body, "kpis");
	if (!kpis) {
		if (!m->everyone && !(m->topics & mask)) {
			m->empty[mask] = true;
			return NULL;
		}
		m->text[mask] = json_dumps(m->body, JSON_DUMP_FLAGS);
		return m->text[mask];
	}
	if (json_object_size(kpis) > 0 && !(m->topics & mask)) {
		m->empty[mask] = true;
		return NULL;
	}
	body = json_copy(m->body);
	if (mask != WS_TOPIC_ALL) {
		json_t *sub = json_object();
		const char *key;
		json_t *v;

		json_object_foreach (kpis, key, v)
			if (ws_topic_of_key(key) & mask)
				json_object_set(sub, key, v);
		json_object_set_new(body, "kpis", sub);
	}
	m->text[mask] = json_dumps(body, JSON_DUMP_FLAGS);
	json_decref(body);
	return m->text[mask];
}

struct pub *pub_new(void)
{
	return calloc(1, sizeof(struct pub));
}

void pub_free(struct pub *p)
{
	if (!p)
		return;
	for (int i = 0; i < RING; i++)
		msg_unref(p->ring[i]);
	msg_unref(p->snapshot);
	free(p);
}

static void fanout_cb(uv_idle_t *h);

void pub_set_context(struct pub *p, struct lws_context *ctx, uv_loop_t *loop)
{
	p->ctx = ctx;
	if (ctx && !p->fanout_open) {
		uv_idle_init(loop, &p->fanout);
		p->fanout.data = p;
		p->fanout_open = true;
	} else if (!ctx && p->fanout_open) {
		p->fan_next = NULL;
		uv_close((uv_handle_t *)&p->fanout, NULL);
		p->fanout_open = false;
	}
}

static int writeable(struct pub *p, struct sess *s);

/*
 * Gives a screen what it is owed.  When its socket has room and nothing
 * else is queued for it, the message is written from here; otherwise it
 * waits for the screen's writable turn.  Writing at once spares each screen
 * an epoll round trip (asking for POLLOUT, waking, dropping it again),
 * which was most of the cost of a push to 10,000 screens.  A screen that
 * does not read fills its socket; lws keeps the rest of that one message,
 * and the screen is then left to the writable turn that never comes, and
 * to pub_tick.
 */
/* A reply to a bad message is waiting to be sent. */
static bool error_owed(const struct sess *s)
{
	return s->errors_sent < s->errors && s->errors_sent < MAX_ERRORS &&
	       s->error[s->errors_sent];
}

static void offer(struct pub *p, struct sess *s)
{
	if (s->state != SESS_OPEN || error_owed(s) || s->need_snapshot ||
	    lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	if (writeable(p, s) < 0 && sess_to(s, SESS_BROKEN))
		/* Closed from its next turn, the only place lws allows. */
		lws_callback_on_writable(s->wsi);
}

/*
 * Walks the screens FANOUT_CHUNK at a time, one chunk per loop turn, so
 * that agencies' requests and the database's answers are served between
 * chunks: with 10,000 screens a whole fan-out takes about 100 ms.
 */
static void fanout_cb(uv_idle_t *h)
{
	struct pub *p = h->data;

	for (int n = 0; p->fan_next && n < FANOUT_CHUNK; n++) {
		struct sess *s = p->fan_next;
		p->fan_next = s->next;
		offer(p, s);
	}
	if (p->fan_next)
		return;
	p->pushes++;
	p->push_us += (uint64_t)(mono_us() - p->fan_start_us);
	if (p->fan_again) {
		/* Screens passed before it still owe the newer message. */
		p->fan_again = false;
		p->fan_next = p->sessions;
		p->fan_start_us = mono_us();
		return;
	}
	uv_idle_stop(h);
}

/* Offers every screen what it is owed, starting now or, when a fan-out is
 * under way, again after it. */
static void fan_out(struct pub *p)
{
	if (!p->ctx || !p->sessions)
		return;
	if (p->fan_next) {
		p->fan_again = true;
		return;
	}
	p->fan_next = p->sessions;
	p->fan_start_us = mono_us();
	uv_idle_start(&p->fanout, fanout_cb);
}

static void push(struct pub *p, struct msg *m)
{
	struct msg **slot = &p->ring[p->head % RING];

	msg_unref(*slot);
	*slot = m;
	p->head++;
	fan_out(p);
}

/*
 * Screens are pinged here rather than by lws' validity timers: lws 4.1
 * keeps those in one sorted list, so each re-arm walks every screen's, and
 * with 10,000 screens a wave of pings held the loop for seconds.
 */
void pub_tick(struct pub *p)
{
	int64_t now = mono_us();
	bool owed = false;

	if (now - p->last_scan_us < SCAN_US)
		return;
	p->last_scan_us = now;
	for (struct sess *s = p->sessions; s; s = s->next) {
		bool behind = s->tail < p->head || s->need_snapshot;
		int64_t silent = now - s->last_rx_us;

		if (s->state != SESS_OPEN)
			continue;
		if ((behind && now - s->last_write_us > STALL_US) ||
		    (p->ping_us && silent >= 3 * p->ping_us)) {
			/* It has taken nothing, or said nothing, for too
			 * long: drop it. */
			sess_to(s, SESS_DROPPED);
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
			continue;
		}
		if (p->ping_us && silent >= p->ping_us &&
		    now - s->last_ping_us >= p->ping_us) {
			s->need_ping = true;
			owed = true;
		}
		if (!behind && !s->need_heartbeat &&
		    now - s->last_sent_us >= PUB_HEARTBEAT_US) {
			/* A screen subscribed to quiet topics still hears
			 * that the link is alive. */
			s->need_heartbeat = true;
			owed = true;
		}
	}
	if (owed)
		fan_out(p);
}

void pub_set_ping(struct pub *p, int seconds)
{
	p->ping_us = (int64_t)seconds * 1000000;
}

/* Adds what a snapshot says of the database to a snapshot or status body. */
static json_t *with_database(const struct pub *p, json_t *body)
{
	if (!body)
		return NULL;
	json_object_set_new(body, "database",
			    json_string(p->db_down ? "down" : "up"));
	if (p->db_down)
		json_object_set_new(body, "down_since",
				    json_string(p->down_since));
	return body;
}

void pub_state(struct pub *p, json_t *kpis, json_t *changed, const char *at)
{
	struct msg *snap = msg_new(
	    with_database(p, json_pack("{s:s, s:s, s:O}", "type", "snapshot",
				       "at", at, "kpis", kpis)),
	    WS_TOPIC_ALL);
	struct msg *delta = NULL;

	if (json_object_size(changed) > 0)
		delta = msg_new(json_pack("{s:s, s:s, s:O}", "type", "kpis",
					  "at", at, "kpis", changed),
				topics_of(changed));
	if (snap) {
		msg_unref(p->snapshot);
		p->snapshot = snap;
	}
	snprintf(p->at, sizeof(p->at), "%s", at);
	if (delta)
		push(p, delta);
}

void pub_database(struct pub *p, bool up, const char *since, const char *at)
{
	struct msg *m, *snap;

	p->db_down = !up;
	snprintf(p->down_since, sizeof(p->down_since), "%s", up ? "" : since);
	m = msg_new(with_database(
			p, json_pack("{s:s, s:s}", "type", "status", "at", at)),
		    WS_TOPIC_ALL);
	if (!m)
		return;
	m->everyone = true;
	if (p->snapshot) {
		/* Screens that join or resynchronise from now on are told
		 * too. */
		snap = msg_new(with_database(p, json_copy(p->snapshot->body)),
			       WS_TOPIC_ALL);
		if (snap) {
			if (up)
				json_object_del(snap->body, "down_since");
			msg_unref(p->snapshot);
			p->snapshot = snap;
		}
	}
	push(p, m);
}

void pub_alert(struct pub *p, json_t *alert)
{
	struct msg *m =
	    msg_new(json_pack("{s:s, s:O}", "type", "alert", "alert", alert),
		    WS_TOPIC_ALERTS);
	if (m)
		push(p, m);
}

void pub_revalidate(struct pub *p, bool (*live)(void *arg, const char *id),
		    void *arg)
{
	for (struct sess *s = p->sessions; s; s = s->next) {
		if (s->state != SESS_OPEN || !s->id[0] || live(arg, s->id))
			continue;
		close_screen(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			     "access revoked");
	}
}

void pub_close_all(struct pub *p)
{
	for (struct sess *s = p->sessions; s; s = s->next)
		close_screen(s, LWS_CLOSE_STATUS_GOINGAWAY, "server stopping");
}

size_t pub_clients(const struct pub *p)
{
	return p->nsessions;
}

size_t pub_session_size(void)
{
	return sizeof(struct sess);
}

uint64_t pub_messages_sent(const struct pub *p)
{
	return p->sent;
}

void pub_push_time(const struct pub *p, uint64_t *pushes, uint64_t *us)
{
	*pushes = p->pushes;
	*us = p->push_us;
}

uint64_t pub_snapshots_sent(const struct pub *p)
{
	return p->snapshots;
}

/* One lws_write of "{"seq":n," + the message text after its "{". */
static int send_text(struct pub *p, struct sess *s, const char *text)
{
	char head[40];
	size_t text_len = strlen(text + 1);
	int hl = snprintf(head, sizeof(head), "{\"seq\":%llu,",
			  (unsigned long long)(s->seq + 1));
	size_t n = (size_t)hl + text_len;
	unsigned char *b = malloc(LWS_PRE + n);
	int rc;

	if (!b)
		return -1;
	memcpy(b + LWS_PRE, head, (size_t)hl);
	memcpy(b + LWS_PRE + hl, text + 1, text_len);
	rc = lws_write(s->wsi, b + LWS_PRE, n, LWS_WRITE_TEXT);
	free(b);
	if (rc < (int)n)
		return -1;
	s->seq++;
	s->need_heartbeat = false;
	s->last_write_us = s->last_sent_us = mono_us();
	p->sent++;
	return 0;
}

static int writeable(struct pub *p, struct sess *s)
{
	const char *text = NULL;

	switch (s->state) {
	case SESS_OPEN:
		break;
	case SESS_CLOSING: {
		/* The close frame is written here rather than left to
		 * lws_close_reason, which in lws 4.1 closes a server's
		 * socket without sending it, and from a receive callback
		 * in the middle of a frame loses its place in the stream;
		 * the peer's reply, or the timeout, ends the connection. */
		unsigned char b[LWS_PRE + 2 + 32];
		size_t n = strlen(s->close_why);

		if (n > 32)
			n = 32;
		b[LWS_PRE] = (unsigned char)(s->close_code >> 8);
		b[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
		memcpy(b + LWS_PRE + 2, s->close_why, n);
		sess_to(s, SESS_CLOSE_SENT);
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 1);
		return lws_write(s->wsi, b + LWS_PRE, 2 + n, PUB_WRITE_CLOSE) <
			       0
			   ? -1
			   : 0;
	}
	case SESS_BROKEN:
		return -1;
	default:
		return 0;
	}
	if (s->need_ping) {
		/* Not empty: lws 4.1 passes on no empty pong. */
		unsigned char b[LWS_PRE + 2] = {[LWS_PRE] = 'k', 'd'};

		s->need_ping = false;
		s->last_ping_us = mono_us();
		if (lws_write(s->wsi, b + LWS_PRE, 2, LWS_WRITE_PING) < 0)
			return -1;
	} else if (error_owed(s)) {
		char *text = s->error[s->errors_sent];
		int rc = send_text(p, s, text);

		free(text);
		s->error[s->errors_sent++] = NULL;
		if (rc < 0)
			return -1;
	} else {
		while (!s->need_snapshot && s->tail < p->head) {
			if (p->head - s->tail > RING) {
				/* Too far behind: the latest state replaces
				 * what it missed. */
				s->need_snapshot = true;
				break;
			}
			text = msg_text(p->ring[s->tail % RING], s->mask);
			s->tail++;
			if (text)
				break;
		}
		if (!text && !s->need_snapshot && s->need_heartbeat) {
			json_t *hb = json_pack("{s:s, s:s, s:{}}", "type",
					       "kpis", "at", p->at, "kpis");
			char *t = json_dumps(hb, JSON_DUMP_FLAGS);
			int rc = t ? send_text(p, s, t) : -1;
			json_decref(hb);
			free(t);
			s->need_heartbeat = false;
			return rc;
		}
		if (s->need_snapshot && p->snapshot) {
			text = msg_text(p->snapshot, s->mask);
			s->tail = p->head;
			s->need_snapshot = false;
			p->snapshots++;
		}
		if (!text) {
			s->last_write_us = mono_us();
			return 0;
		}
		if (send_text(p, s, text) < 0)
			return -1;
	}
	if (error_owed(s) || s->need_snapshot || s->tail < p->head ||
	    s->need_heartbeat)
		lws_callback_on_writable(s->wsi);
	return 0;
}

static void reply_error(struct sess *s, const char *message)
{
	json_t *e =
	    json_pack("{s:s, s:s}", "type", "error", "message", message);

	/* One reply per bad message, however many came in one read. */
	s->error[s->errors - 1] = json_dumps(e, JSON_DUMP_FLAGS);
	json_decref(e);
	lws_callback_on_writable(s->wsi);
}

static void handle_message(struct sess *s, const char *data, size_t len)
{
	struct ws_msg m;
	char err[160];

	if (ws_msg_parse(data, len, &m, err, sizeof(err)) == 0)
		s->mask = m.topics;
	else if (++s->errors > MAX_ERRORS)
		close_screen(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			     "too many bad messages");
	else
		reply_error(s, err);
}

/* Returns -1 when lws should drop the connection at once. */
static int receive(struct sess *s, const void *in, size_t len)
{
	int64_t now = mono_us();

	s->last_rx_us = now;
	if (s->state != SESS_OPEN)
		return 0; /* the rest of a frame, or more, after a close */
	if (s->rx.len + len > PUB_RX_MAX) {
		buf_reset(&s->rx);
		close_screen(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
			     "message too large");
		return 0;
	}
	buf_add(&s->rx, in, len);
	if (s->rx.oom)
		return -1;
	if (!lws_is_final_fragment(s->wsi))
		return 0;
	/* Any one second, not seconds counted from a first message: the
	 * oldest of the last MAX_RX_PER_S is this one's MAX_RX_PER_S-th
	 * predecessor. */
	int64_t *oldest = &s->rx_at_us[s->rx_n % MAX_RX_PER_S];
	if (s->rx_n >= MAX_RX_PER_S && now - *oldest <= 1000000) {
		close_screen(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			     "too many messages");
	} else {
		*oldest = now;
		s->rx_n++;
		handle_message(s, s->rx.p, s->rx.len);
	}
	buf_reset(&s->rx);
	return 0;
}

int pub_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	      void *in, size_t len)
{
	const struct pub_door *door = lws_get_protocol(wsi)->user;
	struct sess *s = user;
	struct pub *p = s ? s->pub : NULL;
	char uri[64];

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* lws routes upgrades by subprotocol, not path. */
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <
			0 ||
		    strcmp(uri, "/ws") != 0)
			return 1;
		if (!s)
			return 1;
		memset(s, 0, sizeof(*s));
		/* Refused, lws 4.1 drops the connection without a status. */
		s->pub = door->admit(door->arg, wsi, s->id, sizeof(s->id));
		return s->pub ? 0 : 1;
	case LWS_CALLBACK_ESTABLISHED: {
		char id[PUB_ID_MAX];
		if (!p)
			return -1;
		memcpy(id, s->id, sizeof(id));
		memset(s, 0, sizeof(*s));
		memcpy(s->id, id, sizeof(id));
		s->pub = p;
		s->wsi = wsi;
		s->mask = WS_TOPIC_ALL;
		s->need_snapshot = true;
		s->last_write_us = s->last_sent_us = s->last_rx_us = mono_us();
		s->next = p->sessions;
		if (p->sessions)
			p->sessions->prev = s;
		p->sessions = s;
		p->nsessions++;
		lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!s->wsi)
			return 0;
		return writeable(p, s);
	case LWS_CALLBACK_RECEIVE:
		return s->wsi ? receive(s, in, len) : -1;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s->wsi)
			s->last_rx_us = mono_us();
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* The peer answers our close: echoing it would be a second
		 * close frame, which browsers take as an error (1006). */
		return s && s->state == SESS_CLOSE_SENT ? 1 : 0;
	case LWS_CALLBACK_CLOSED:
		/* Also called for upgrades that never became sessions. */
		if (!s || !s->wsi)
			return 0;
		if (p->fan_next == s)
			p->fan_next = s->next;
		if (s->prev)
			s->prev->next = s->next;
		else
			p->sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		p->nsessions--;
		for (int e = s->errors_sent; e < MAX_ERRORS; e++)
			free(s->error[e]);
		buf_free(&s->rx);
		s->wsi = NULL;
		return 0;
	default:
		return 0;
	}
}
