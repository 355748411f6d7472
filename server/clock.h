/*
 * server/clock.h - the server's clock.  Every module asks it, not the
 * system, for the time: one place to change what "now" is.
 */
#ifndef KENDALI_CLOCK_H
#define KENDALI_CLOCK_H

#include <stdint.h>

/* The wall clock, microseconds since 1970 (UTC). */
int64_t clock_now_us(void);

#endif
