/*
 * tests/unit/wsmsg/test_wsmsg.c - table-driven unit test of what a screen
 * may send over the websocket (ingest/wsmsg.h, docs/api.md 8.4): valid
 * subscriptions and every way a message can be wrong, and the topic of a
 * KPI key.  The cases are in cases.json, beside this file; TAP.
 *
 *   test_wsmsg tests/unit/wsmsg/cases.json
 *
 * Each message is handed over in a buffer of exactly its length, not
 * NUL-terminated, as the websocket delivers it, so that a read past the end
 * shows under AddressSanitizer.  Besides what a case expects, every error
 * must be a sentence the server can send as it is: printable ASCII that fits
 * its buffer whole; and a buffer too small for it must cut the same sentence
 * short, still terminated, with the same verdict.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "wsmsg.h"

/* The size of the error buffer in server/pub.c. */
#define SERVER_ERRLEN 160

static const char *const topic_names[] = {"calls", "reports", "sensors",
					  "alerts"};

/* The bit of a topic's name, or 0. */
static unsigned topic_bit(const char *name)
{
	for (int i = 0; name && i < 4; i++)
		if (strcmp(name, topic_names[i]) == 0)
			return 1u << i;
	return 0;
}

/* A subscription for messages: "calls,alerts", and any unknown bits. */
static void topics_str(unsigned mask, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < 4; i++)
		if (mask & (1u << i))
			used +=
			    (size_t)snprintf(buf + used, len - used, "%s%s",
					     used ? "," : "", topic_names[i]);
	if (mask & ~(unsigned)WS_TOPIC_ALL)
		snprintf(buf + used, len - used, "%s0x%x", used ? "," : "",
			 mask & ~(unsigned)WS_TOPIC_ALL);
}

/* The bytes of a string of hex digits, malloc'd, with their count in *len. */
static char *from_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	char *s = malloc(n ? n : 1);
	unsigned byte;

	if (!s || strlen(hex) % 2 != 0) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
			free(s);
			return NULL;
		}
		s[i] = (char)byte;
	}
	*len = n;
	return s;
}

/* A part of "message_parts": a string, or [string, times]. */
static const char *part_of(const json_t *part, size_t *n, json_int_t *times)
{
	const json_t *str =
	    json_is_array(part) ? json_array_get(part, 0) : part;

	*n = json_string_length(str);
	*times = json_is_array(part)
		     ? json_integer_value(json_array_get(part, 1))
		     : 1;
	return json_is_string(str) && *times >= 0 ? json_string_value(str)
						  : NULL;
}

/* The bytes of "message_parts", for long messages, malloc'd; NULL when a
 * part is neither a string nor [string, times]. */
static char *from_parts(const json_t *parts, size_t *len)
{
	size_t total = 0, n, i;
	const json_t *part;
	json_int_t times;
	char *s, *p;

	json_array_foreach (parts, i, part) {
		if (!part_of(part, &n, &times))
			return NULL;
		total += n * (size_t)times;
	}
	s = p = malloc(total ? total : 1);
	if (!s)
		return NULL;
	json_array_foreach (parts, i, part) {
		const char *str = part_of(part, &n, &times);

		for (json_int_t k = 0; k < times; k++, p += n)
			memcpy(p, str, n);
	}
	*len = total;
	return s;
}

/*
 * The message of a case, malloc'd with its length in *len: "message" (a
 * string, NULs allowed), "message_parts" for long ones, or "message_hex"
 * for bytes that are not UTF-8.  "len" takes only that many bytes of it.
 */
static char *message_of(const json_t *c, size_t *len)
{
	const json_t *v = json_object_get(c, "message");
	const json_t *parts = json_object_get(c, "message_parts");
	const json_t *hex = json_object_get(c, "message_hex");
	const json_t *cut = json_object_get(c, "len");
	char *s = NULL;

	if (json_is_string(v)) {
		*len = json_string_length(v);
		s = malloc(*len ? *len : 1);
		if (s)
			memcpy(s, json_string_value(v), *len);
	} else if (json_is_string(hex)) {
		s = from_hex(json_string_value(hex), len);
	} else if (json_is_array(parts)) {
		s = from_parts(parts, len);
	}
	if (s && json_is_integer(cut) && json_integer_value(cut) >= 0 &&
	    (size_t)json_integer_value(cut) <= *len)
		*len = (size_t)json_integer_value(cut);
	return s;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7E)
			return false;
	return true;
}

/* Parses with an error buffer of errlen bytes, filled with 'X' first so
 * that a missing terminator shows. */
static int parse(const char *msg, size_t len, struct ws_msg *m, char *err,
		 size_t errlen)
{
	memset(err, 'X', errlen);
	return ws_msg_parse(msg, len, m, err, errlen);
}

static void message_case(const json_t *c, struct note *n)
{
	const json_t *want_topics = json_object_get(c, "topics");
	const json_t *want_error = json_object_get(c, "error");
	char err[SERVER_ERRLEN], small[8], tiny[1], got[64], want[64];
	struct ws_msg m = {0}, m2 = {0};
	size_t len = 0, i;
	char *msg = message_of(c, &len);
	const json_t *v;
	unsigned mask = 0;
	int rc;

	if (!msg) {
		note_add(n, "the case has no message");
		return;
	}
	if (json_is_array(want_topics) == json_is_array(want_error)) {
		note_add(n, "the case needs either \"topics\" or \"error\"");
		free(msg);
		return;
	}
	rc = parse(msg, len, &m, err, sizeof(err));
	if (json_is_array(want_topics)) {
		json_array_foreach (want_topics, i, v) {
			unsigned bit = topic_bit(json_string_value(v));

			if (!bit)
				note_add(n, "the case names no topic at %zu",
					 i);
			mask |= bit;
		}
		if (rc != 0) {
			note_add(n, "refused (%d): \"%.*s\"", rc,
				 (int)sizeof(err), err);
		} else {
			topics_str(m.topics, got, sizeof(got));
			topics_str(mask, want, sizeof(want));
			if (m.type != WS_MSG_SUBSCRIBE)
				note_add(n, "type %d, want subscribe", m.type);
			if (m.topics != mask)
				note_add(n, "topics [%s], want [%s]", got,
					 want);
		}
	} else if (rc != -1) {
		note_add(n, "returned %d, want -1 and an error", rc);
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		note_add(n, "the error is not terminated in its buffer");
	} else {
		size_t elen = strlen(err);

		/* A sentence that filled the buffer may have been cut. */
		if (elen == 0 || elen >= sizeof(err) - 1)
			note_add(n, "error of %zu bytes, not 1 to %zu", elen,
				 sizeof(err) - 2);
		if (!printable(err))
			note_add(n, "error not printable ASCII: \"%s\"", err);
		json_array_foreach (want_error, i, v) {
			const char *part = json_string_value(v);

			if (!part || !strstr(err, part))
				note_add(n, "error \"%s\" does not say \"%s\"",
					 err, part ? part : "(not a string)");
		}
		/* Too small a buffer: the same verdict, the sentence cut. */
		if (parse(msg, len, &m2, small, sizeof(small)) != -1)
			note_add(n, "with an 8-byte buffer: not refused");
		else if (memchr(small, '\0', sizeof(small)) == NULL ||
			 strncmp(small, err, strlen(small)) != 0 ||
			 strlen(small) != (elen < 7 ? elen : 7))
			note_add(n, "with an 8-byte buffer: \"%.8s\"", small);
		if (parse(msg, len, &m2, tiny, sizeof(tiny)) != -1 ||
		    tiny[0] != '\0')
			note_add(n,
				 "with a 1-byte buffer: not refused with \"\"");
	}
	if (rc == 0 && (parse(msg, len, &m2, tiny, sizeof(tiny)) != 0 ||
			m2.topics != m.topics))
		note_add(n, "with a 1-byte error buffer: another verdict");
	free(msg);
}

static void key_case(const json_t *c, struct note *n)
{
	const char *key = json_string_value(json_object_get(c, "key"));
	const json_t *topic = json_object_get(c, "topic");
	/* "all": a province's roll-up, of every topic. */
	unsigned want = !json_is_string(topic) ? 0
			: strcmp(json_string_value(topic), "all") == 0
			    ? WS_TOPIC_ALL
			    : topic_bit(json_string_value(topic));
	unsigned got;

	if (!key || (!json_is_null(topic) && !want)) {
		note_add(n, "the case needs \"key\" and \"topic\" (or null)");
		return;
	}
	got = ws_topic_of_key(key);
	if (got != want)
		note_add(n, "topic %#x, want %#x", got, want);
}

int main(int argc, char **argv)
{
	static const struct tap_kind kinds[] = {
	    {"message", message_case},
	    {"key", key_case},
	};
	struct tap t = {0};
	json_t *root, *cases;

	if (argc != 2) {
		fprintf(stderr, "usage: test_wsmsg CASES.json\n");
		return 2;
	}
	/* A message may hold NUL bytes: "\u0000" in the cases file. */
	if (!(cases = tap_load_cases(argv[1], JSON_ALLOW_NUL, &root)))
		return 1;
	tap_run_kinds(&t, cases, kinds, sizeof(kinds) / sizeof(kinds[0]));
	json_decref(root);
	return tap_done(&t);
}
