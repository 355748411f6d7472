/*
 * tests/fuzz/fuzz_wsmsg.c - libFuzzer target for what a screen may send over
 * the websocket (ingest/wsmsg.h).
 *
 * Build and run from the top of the tree with tests/fuzz/run.sh wsmsg, or by
 * hand, on a copy of the seeds since the fuzzer adds what it finds to them:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -Iingest \
 *       ingest/event.c ingest/time.c ingest/wsmsg.c tests/fuzz/fuzz_wsmsg.c \
 *       $(pkg-config --cflags --libs jansson) -lm -o fuzz_wsmsg
 *   cp -r tests/fuzz/corpus/wsmsg CORPUS
 *   ./fuzz_wsmsg -max_total_time=30 -dict=tests/fuzz/wsmsg.dict CORPUS
 *
 * Each input is parsed as one text message, with an error buffer of the size
 * the server uses and, again, with a tiny one; and read as a KPI key.  The
 * checks are what the server relies on: a subscription names only known
 * topics; an error is a short sentence of printable ASCII that fits the
 * server's buffer, so that it goes into a JSON reply whole; a smaller buffer
 * truncates the same sentence and is never overrun (the buffers are on the
 * heap, exactly sized, so that AddressSanitizer sees every byte past them).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The size of the error buffer in server/pub.c. */
#define SERVER_ERRLEN 160

static const char *const names[] = {"calls", "reports", "sensors", "alerts"};

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* A sentence the server can put in a JSON string as it is. */
static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7E)
			return false;
	return true;
}

static int parse(const uint8_t *data, size_t size, size_t errlen,
		 struct ws_msg *m, char **err)
{
	/* The message is handed over in a buffer of its exact size, as the
	 * server does, so that a read past its end is caught. */
	char *copy = malloc(size ? size : 1);
	int rc;

	check(copy != NULL);
	memcpy(copy, data, size);
	*err = malloc(errlen);
	check(*err != NULL);
	memset(*err, 'X', errlen);
	memset(m, 0xA5, sizeof *m);
	rc = ws_msg_parse(copy, size, m, *err, errlen);
	free(copy);
	check(rc == 0 || rc == -1);
	return rc;
}

static void message(const uint8_t *data, size_t size)
{
	struct ws_msg m, m2;
	char *err, *err2;
	int rc, rc2;

	rc = parse(data, size, SERVER_ERRLEN, &m, &err);
	if (rc == 0) {
		check(m.type == WS_MSG_SUBSCRIBE);
		check((m.topics & ~(unsigned)WS_TOPIC_ALL) == 0);
	} else {
		size_t n = strnlen(err, SERVER_ERRLEN);

		check(n > 0 && n < SERVER_ERRLEN - 1);
		check(printable(err));
	}

	/* The same message with a buffer too small for any sentence: the same
	 * verdict, and the sentence cut short, still terminated. */
	rc2 = parse(data, size, 8, &m2, &err2);
	check(rc2 == rc);
	if (rc == 0) {
		check(m2.type == m.type && m2.topics == m.topics);
	} else {
		check(strnlen(err2, 8) == 7);
		check(strncmp(err2, err, 7) == 0);
	}
	free(err);
	free(err2);
}

static void key(const uint8_t *data, size_t size)
{
	char *k = malloc(size + 1);
	unsigned bit, want = 0;

	check(k != NULL);
	memcpy(k, data, size);
	k[size] = '\0';
	bit = ws_topic_of_key(k);

	/* A key belongs to a topic when it is the topic's name, a dot and
	 * anything: at most one topic, since no name is a prefix of another.
	 * A province's roll-up ("province." and anything) is of every topic. */
	for (int i = 0; i < 4; i++) {
		size_t n = strlen(names[i]);

		if (strncmp(k, names[i], n) == 0 && k[n] == '.')
			want = 1u << i;
	}
	if (strncmp(k, "province.", 9) == 0)
		want = WS_TOPIC_ALL;
	check(bit == want);
	free(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	message(data, size);
	key(data, size);
	return 0;
}
