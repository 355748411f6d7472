/*
 * server/notify.h - what the server tells systemd when it runs as a
 * Type=notify service (the package's kendali.service): ready, stopping,
 * alive, and a status line for `systemctl status`.  Started any other way
 * (no NOTIFY_SOCKET in the environment), every call does nothing.
 */
#ifndef KENDALI_NOTIFY_H
#define KENDALI_NOTIFY_H

#include <stdint.h>

/* READY=1: listening, with the state loaded.  Once, before the loop runs. */
void notify_ready(void);

/* STOPPING=1: a stop has begun (SIGTERM, SIGINT). */
void notify_stopping(void);

/* The watchdog interval systemd asks for (WatchdogSec=), in microseconds;
 * 0 when it asks for none. */
uint64_t notify_watchdog_usec(void);

/*
 * WATCHDOG=1, "the loop still turns".  Sends at most once per half of the
 * interval and nothing when there is no watchdog, so it may be called from
 * every tick of the loop.
 */
void notify_watchdog(void);

/* STATUS=..., one line shown by `systemctl status` (printf format). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
