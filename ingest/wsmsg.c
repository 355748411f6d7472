#include "wsmsg.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *const topic_names[] = {"calls", "reports", "sensors",
					  "alerts"};

#define TOPICS_HINT "topics among calls, reports, sensors, alerts"

unsigned ws_topic_of_key(const char *key)
{
	/* A province's roll-up (province.members, province.alerts) is of
	 * every topic: each member's calls, reports, gauges and alerts. */
	if (strncmp(key, "province.", 9) == 0)
		return WS_TOPIC_ALL;
	for (int i = 0; i < 4; i++) {
		size_t n = strlen(topic_names[i]);
		if (strncmp(key, topic_names[i], n) == 0 && key[n] == '.')
			return 1u << i;
	}
	return 0;
}

static unsigned topic_bit(const json_t *t)
{
	const char *name = json_string_value(t);

	for (int i = 0; name && i < 4; i++)
		if (strcmp(name, topic_names[i]) == 0)
			return 1u << i;
	return 0;
}

int ws_msg_parse(const char *data, size_t len, struct ws_msg *out, char *err,
		 size_t errlen)
{
	json_error_t jerr;
	json_t *m = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *topics = json_object_get(m, "topics");
	const char *type = json_string_value(json_object_get(m, "type"));
	unsigned mask = 0;
	size_t i;
	json_t *t;

	if (!json_is_object(m)) {
		snprintf(err, errlen,
			 "not a JSON object: send {\"type\": \"subscribe\", "
			 "\"topics\": [...]} with " TOPICS_HINT);
		goto fail;
	}
	if (!type || strcmp(type, "subscribe") != 0) {
		snprintf(err, errlen,
			 "unknown message type: the only one is \"subscribe\", "
			 "with " TOPICS_HINT);
		goto fail;
	}
	if (!json_is_array(topics)) {
		snprintf(err, errlen,
			 "subscribe needs \"topics\": a list of "
			 "calls, reports, sensors, alerts");
		goto fail;
	}
	json_array_foreach (topics, i, t) {
		unsigned bit = topic_bit(t);

		if (!bit) {
			snprintf(
			    err, errlen,
			    "unknown topic at position %zu: use " TOPICS_HINT,
			    i);
			goto fail;
		}
		mask |= bit;
	}
	json_decref(m);
	out->type = WS_MSG_SUBSCRIBE;
	out->topics = mask;
	return 0;
fail:
	json_decref(m);
	return -1;
}
