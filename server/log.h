/*
 * server/log.h - one line per event on stderr, with a UTC timestamp and a
 * level; operators read it with journalctl or docker logs.
 */
#ifndef KENDALI_LOG_H
#define KENDALI_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/*
 * Writes in to out (len bytes with the NUL) with control characters, a
 * newline among them, as \xNN and a backslash doubled; returns the length.
 * log_msg escapes every message so, less its trailing newlines, so that
 * text from a client cannot forge a line.  A message is cut at 2047 bytes.
 */
size_t log_escape(const char *in, char *out, size_t len);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
