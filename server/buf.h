/*
 * server/buf.h - a growable byte buffer.  Appends fail only when memory
 * runs out; a failed buffer stays failed (oom) so a caller checks once at
 * the end instead of after every append.
 */
#ifndef KENDALI_BUF_H
#define KENDALI_BUF_H

#include <stdbool.h>

/*
 * How every JSON document leaves the server: compact, and with 15
 * significant digits so that a stored -6.998 reads back as -6.998 rather
 * than its nearest double written out in full.
 */
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
#include <stddef.h>

struct buf {
	char *p; /* NUL-terminated when len > 0 */
	size_t len, cap;
	bool oom;
};

void buf_add(struct buf *b, const void *data, size_t len);
void buf_str(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b); /* empties, keeps the memory */
void buf_free(struct buf *b);

#endif
