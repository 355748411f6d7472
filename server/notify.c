#include "notify.h"

#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* Sends one notification; a failure is logged once (a NOTIFY_SOCKET that
 * cannot be reached), never fatal. */
static void send_state(const char *state)
{
	static bool warned;
	int rc = sd_notify(0, state);

	if (rc < 0 && !warned) {
		warned = true;
		log_warn("cannot notify systemd (%s): %s", state,
			 strerror(-rc));
	}
}

void notify_ready(void)
{
	send_state("READY=1");
}

void notify_stopping(void)
{
	send_state("STOPPING=1");
}

uint64_t notify_watchdog_usec(void)
{
	static bool asked;
	static uint64_t usec;

	if (!asked) {
		asked = true;
		/* WATCHDOG_USEC, for this process (WATCHDOG_PID) only. */
		if (sd_watchdog_enabled(0, &usec) <= 0)
			usec = 0;
	}
	return usec;
}

/* Microseconds of the monotonic clock: the interval between two pings
 * must not follow the wall clock when it is set. */
static uint64_t monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void notify_watchdog(void)
{
	static bool sent;
	static uint64_t last_us;
	uint64_t usec = notify_watchdog_usec(), now;

	if (usec == 0)
		return;
	now = monotonic_us();
	if (sent && now - last_us < usec / 2)
		return;
	sent = true;
	last_us = now;
	send_state("WATCHDOG=1");
}

void notify_status(const char *fmt, ...)
{
	char line[256] = "STATUS=";
	size_t n = strlen(line);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One line: a newline would start another assignment. */
	line[n + strcspn(line + n, "\n")] = '\0';
	send_state(line);
}
