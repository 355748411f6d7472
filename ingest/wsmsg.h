/*
 * ingest/wsmsg.h - what a screen may send over the websocket: bytes in, a
 * typed message or a sentence saying what is wrong out.
 *
 * Pure code, like event.h: no socket, so it is unit-tested and fuzzed on
 * its own.  The protocol is docs/spec/ws.md.
 */
#ifndef KENDALI_INGEST_WSMSG_H
#define KENDALI_INGEST_WSMSG_H

#include <stddef.h>

/* Topics a screen subscribes to, one bit each. */
enum ws_topic {
	WS_TOPIC_CALLS = 1,
	WS_TOPIC_REPORTS = 2,
	WS_TOPIC_SENSORS = 4,
	WS_TOPIC_ALERTS = 8,
	WS_TOPIC_ALL = 15
};

enum ws_msg_type { WS_MSG_SUBSCRIBE };

struct ws_msg {
	enum ws_msg_type type;
	unsigned topics; /* enum ws_topic bits; 0 for an empty list */
};

/*
 * Parses one text message.  Returns 0 with *out filled, or -1 with a
 * sentence for the screen in err (NUL-terminated, at most errlen bytes).
 */
int ws_msg_parse(const char *data, size_t len, struct ws_msg *out, char *err,
		 size_t errlen) __attribute__((warn_unused_result));

/* The topic of a KPI key ("calls.waiting" -> WS_TOPIC_CALLS), or 0; a
 * province's roll-up keys ("province.members") are of every topic. */
unsigned ws_topic_of_key(const char *key);

#endif
