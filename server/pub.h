/*
 * server/pub.h - the publisher: KPI snapshots, deltas and alerts to every
 * websocket screen (protocol "situation.v1", docs/spec/ws.md).
 *
 * Messages go into one ring shared by all screens; each screen has its own
 * position in it and is written only when it can take more.  A screen that
 * falls more than the ring behind is sent a fresh snapshot instead of what
 * it missed (the latest state, never every intermediate one); a screen that
 * stays stalled is closed.  The publisher knows nothing of the database.
 */
#ifndef KENDALI_PUB_H
#define KENDALI_PUB_H

#include <jansson.h>
#include <libwebsockets.h>
#include <uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUB_PROTOCOL "situation.v1"
#define PUB_RX_MAX 4096 /* largest message a screen may send */
/*
 * What lws reads of a screen's frame at a time, and allocates for every
 * screen: screens send a few small subscribe messages, which pub.c
 * reassembles up to PUB_RX_MAX, so a small buffer saves ~4 KiB a screen.
 */
#define PUB_RX_CHUNK 256
/*
 * The most lws hands the kernel in one send to a screen.  Unset, lws 4.1
 * caps each send at the rx buffer's size (256 bytes above), and a message
 * then leaves in 256-byte sends, each after its own writable turn: a 3 KB
 * kpis message cost a dozen sends and poll rounds per screen, which made
 * the fan-out, not the database, the limit of a city with 1,000 screens
 * (tests/bench/tenants.sh).  Nothing is allocated for it.
 */
#define PUB_TX_CHUNK (256 * 1024)

struct pub;

struct pub *pub_new(void);
void pub_free(struct pub *p);
/* Screens are served through ctx, on loop; NULL, NULL when it closes. */
void pub_set_context(struct pub *p, struct lws_context *ctx, uv_loop_t *loop);

/*
 * Publishes the state as evaluated at time at (in the tenant's zone): kpis
 * is the whole snapshot (borrowed; the publisher keeps its own reference),
 * changed the keys that differ from the previous one (borrowed).  Screens
 * get a kpis message only when changed is not empty; new screens and
 * heartbeats carry the latest at.
 */
void pub_state(struct pub *p, json_t *kpis, json_t *changed, const char *at);

/*
 * Called at every tick, scans the screens every 500 ms at most: drops screens
 * that have taken nothing for 30 s or sent nothing for three ping intervals,
 * pings screens silent for one, and sends a heartbeat (a kpis message with no
 * keys) to screens that have been sent nothing for PUB_HEARTBEAT_US.
 */
#define PUB_HEARTBEAT_US (5 * INT64_C(1000000))
void pub_tick(struct pub *p);

/* The ping interval, in seconds (0: no pings). */
void pub_set_ping(struct pub *p, int seconds);

/*
 * Says whether the state on the screens is current.  up false: the
 * database cannot be reached since since (a time in the tenant's zone), so
 * nothing new can be committed and the numbers are the last known ones;
 * up true: it is back.  Every screen hears a status message at once,
 * whatever its topics, and every later snapshot says the same.
 */
void pub_database(struct pub *p, bool up, const char *since, const char *at);

/* Publishes an alert message at once (alert borrowed). */
void pub_alert(struct pub *p, json_t *alert);

/*
 * Who may connect, and to which publisher (a tenant's screens): the lws
 * protocol's user pointer is a door, whose admit is asked at each
 * upgrade; it fills id (up to PUB_ID_MAX bytes, "" for none) with the
 * screen's credential and returns the publisher the screen joins, or NULL
 * to refuse.
 */
#define PUB_ID_MAX 16
typedef struct pub *(*pub_admit_fn)(void *arg, struct lws *wsi, char *id,
				    size_t len);
struct pub_door {
	pub_admit_fn admit;
	void *arg;
};

/*
 * Closes (1008, "access revoked") every screen whose credential live()
 * says is no longer good.
 */
void pub_revalidate(struct pub *p, bool (*live)(void *arg, const char *id),
		    void *arg);

/* Closes every screen with "going away" (on shutdown). */
void pub_close_all(struct pub *p);

size_t pub_clients(const struct pub *p);
/* Per-session data size for the lws protocol entry. */
size_t pub_session_size(void);
uint64_t pub_messages_sent(const struct pub *p);
/* Fan-outs of a message to every screen, and their total time from the
 * message to the last screen's turn (a screen whose socket is full gets it
 * later, when it reads). */
void pub_push_time(const struct pub *p, uint64_t *pushes, uint64_t *us);
uint64_t pub_snapshots_sent(const struct pub *p);

/* The lws protocol callback; the protocol's user pointer is the door. */
int pub_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
	      void *in, size_t len);

#endif
