/*
 * tests/unit/ingest/testlib.h - case files for the ingest tests.
 *
 * A case file is JSON.  Each case names itself, builds a request body from
 * its members and states what the parser must answer; see the comment at the
 * top of testlib.c for the members.
 */
#ifndef KENDALI_TESTLIB_H
#define KENDALI_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "event.h"
#include "tap.h"

/* Loads a case file or exits. */
json_t *tl_load(const char *path);

/* A string member or def. */
const char *tl_str(const json_t *obj, const char *key, const char *def);

/*
 * Builds the request body of a case (malloc'd, *len bytes) from its members
 * body, body_hex, events or event/base+set+del; bases holds the named
 * events.  Returns NULL with a note when the case is malformed.
 */
char *tl_body(const json_t *c, const json_t *bases, bool ndjson, size_t *len,
	      struct note *n);

/*
 * Compares the outcome of a parse with the case's expect_status (0 for
 * success), expect_code, expect_index, expect_field, expect_line,
 * expect_column and expect_detail_contains, and checks what every error must
 * satisfy whatever the case.
 */
void tl_expect(const json_t *c, int rc, const struct ev_error *err,
	       struct note *n);

/* Whether s is valid UTF-8 without control characters. */
bool tl_clean_text(const char *s);

#endif
