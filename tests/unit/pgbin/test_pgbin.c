/*
 * Unit tests of server/pgbin.c against bytes worked out by hand from
 * PostgreSQL's array_send and the types' send functions: big-endian
 * integers, IEEE doubles, timestamps in microseconds from 2000-01-01 UTC.
 * The integration tests check the same formats against PostgreSQL itself.
 * Prints TAP.
 */
#include "pgbin.h"
#include "tap.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* Compares what an array holds with the expected bytes. */
static void same(struct note *n, struct pgbin_arr *a, const unsigned char *want,
		 size_t len)
{
	if (pgbin_arr_end(a) < 0) {
		note_add(n, "pgbin_arr_end failed");
		return;
	}
	if (a->b.len != len) {
		note_add(n, "%zu bytes, want %zu", a->b.len, len);
		return;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)a->b.p[i] != want[i]) {
			note_add(n, "byte %zu is %02x, want %02x", i,
				 (unsigned char)a->b.p[i], want[i]);
			return;
		}
}

#define HEADER(nulls, oid_hi, oid_lo, count)                                   \
	0, 0, 0, 1, 0, 0, 0, nulls, 0, 0, oid_hi, oid_lo, 0, 0, 0, count, 0,   \
	    0, 0, 1

static void text_array(struct tap *t)
{
	static const unsigned char want[] = {HEADER(1, 0, 25, 3),
					     0,
					     0,
					     0,
					     2,
					     'k',
					     'd',
					     0xff,
					     0xff,
					     0xff,
					     0xff,
					     0,
					     0,
					     0,
					     6,
					     'J',
					     'a',
					     'w',
					     'a',
					     0xc2,
					     0xb2};
	struct pgbin_arr a;
	struct note n = {0};

	pgbin_arr_start(&a, PGBIN_TEXT);
	pgbin_arr_text(&a, "kd");
	pgbin_arr_text(&a, NULL);
	pgbin_arr_text(&a, "Jawa\xc2\xb2"); /* UTF-8 bytes go as they are */
	same(&n, &a, want, sizeof(want));
	pgbin_arr_free(&a);
	tap_case(t, "text[]: lengths, a NULL, UTF-8", &n);
}

static void integer_arrays(struct tap *t)
{
	static const unsigned char want2[] = {HEADER(0, 0, 21, 2),
					      0,
					      0,
					      0,
					      2,
					      0x00,
					      0x07,
					      0,
					      0,
					      0,
					      2,
					      0xff,
					      0xfe};
	static const unsigned char want4[] = {
	    HEADER(0, 0, 23, 1), 0, 0, 0, 4, 0x00, 0x01, 0xe2, 0x40};
	static const unsigned char want8[] = {HEADER(0, 0, 20, 1),
					      0,
					      0,
					      0,
					      8,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xfd};
	struct pgbin_arr a;
	struct note n = {0};

	pgbin_arr_start(&a, PGBIN_INT2);
	pgbin_arr_int2(&a, 7);
	pgbin_arr_int2(&a, -2);
	same(&n, &a, want2, sizeof(want2));
	pgbin_arr_free(&a);
	pgbin_arr_start(&a, PGBIN_INT4);
	pgbin_arr_int4(&a, 123456);
	same(&n, &a, want4, sizeof(want4));
	pgbin_arr_free(&a);
	pgbin_arr_start(&a, PGBIN_INT8);
	pgbin_arr_int8(&a, -3);
	same(&n, &a, want8, sizeof(want8));
	pgbin_arr_free(&a);
	tap_case(t, "int2[], int4[], int8[]: big-endian, negatives", &n);
}

static void float_and_time_arrays(struct tap *t)
{
	/* -6.99 is 0xC01BF5C28F5C28F6 in IEEE 754. */
	static const unsigned char wantf[] = {HEADER(1, 0x02, 0xbd, 2),
					      0,
					      0,
					      0,
					      8,
					      0xc0,
					      0x1b,
					      0xf5,
					      0xc2,
					      0x8f,
					      0x5c,
					      0x28,
					      0xf6,
					      0xff,
					      0xff,
					      0xff,
					      0xff};
	/* 1999-12-31T23:59:59.999999Z is 1 µs before PostgreSQL's epoch;
	 * 2026-11-23T00:00:00Z is 848707200 s after it. */
	static const unsigned char wantt[] = {HEADER(0, 0x04, 0xa0, 2),
					      0,
					      0,
					      0,
					      8,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0xff,
					      0,
					      0,
					      0,
					      8,
					      0x00,
					      0x03,
					      0x03,
					      0xe5,
					      0x0b,
					      0x2c,
					      0xa0,
					      0x00};
	struct pgbin_arr a;
	struct note n = {0};

	pgbin_arr_start(&a, PGBIN_FLOAT8);
	pgbin_arr_float8(&a, -6.99);
	pgbin_arr_null(&a);
	same(&n, &a, wantf, sizeof(wantf));
	pgbin_arr_free(&a);
	pgbin_arr_start(&a, PGBIN_TIMESTAMPTZ);
	pgbin_arr_timestamptz(&a, INT64_C(946684799999999));
	pgbin_arr_timestamptz(&a, INT64_C(1795392000000000));
	same(&n, &a, wantt, sizeof(wantt));
	pgbin_arr_free(&a);
	tap_case(t, "float8[] with a NULL, timestamptz[] around 2000", &n);
}

static void empty_array(struct tap *t)
{
	static const unsigned char want[] = {HEADER(0, 0, 25, 0)};
	struct pgbin_arr a;
	struct note n = {0};

	pgbin_arr_start(&a, PGBIN_TEXT);
	same(&n, &a, want, sizeof(want));
	pgbin_arr_free(&a);
	tap_case(t, "an empty array", &n);
}

static void many_elements(struct tap *t)
{
	struct pgbin_arr a;
	struct note n = {0};

	/* 70000 elements: the count takes three bytes of its four. */
	pgbin_arr_start(&a, PGBIN_INT2);
	for (int i = 0; i < 70000; i++)
		pgbin_arr_int2(&a, 1);
	if (pgbin_arr_end(&a) < 0)
		note_add(&n, "pgbin_arr_end failed");
	else if (a.b.len != 20 + 70000 * 6 ||
		 memcmp(a.b.p + 12, "\x00\x01\x11\x70", 4) != 0)
		note_add(&n, "%zu bytes, or the count is wrong", a.b.len);
	pgbin_arr_free(&a);
	tap_case(t, "70000 elements", &n);
}

static void result_values(struct tap *t)
{
	struct note n = {0};

	if (pgbin_int2("\xff\xfe") != -2)
		note_add(&n, "int2 -2 read as %d", pgbin_int2("\xff\xfe"));
	if (pgbin_float8("\xc0\x1b\xf5\xc2\x8f\x5c\x28\xf6") != -6.99)
		note_add(&n, "float8 -6.99 read wrong");
	if (!isnan(pgbin_float8("\x7f\xf8\x00\x00\x00\x00\x00\x00")))
		note_add(&n, "float8 NaN read wrong");
	if (!pgbin_bool("\x01") || pgbin_bool("\x00"))
		note_add(&n, "bool read wrong");
	if (pgbin_timestamptz("\xff\xff\xff\xff\xff\xff\xff\xff") !=
	    INT64_C(946684799999999))
		note_add(&n, "timestamptz -1 read as %" PRId64,
			 pgbin_timestamptz("\xff\xff\xff\xff\xff\xff\xff\xff"));
	if (pgbin_timestamptz("\x00\x03\x03\xe5\x0b\x2c\xa0\x00") !=
	    INT64_C(1795392000000000))
		note_add(&n, "timestamptz of 2026-11-23 read wrong");
	/* 1970-01-01: the most negative time an event may have. */
	if (pgbin_timestamptz("\xff\xfc\xa2\xfe\xc4\xc8\x20\x00") != 0)
		note_add(&n, "timestamptz of 1970-01-01 read wrong");
	tap_case(t, "int2, float8, bool and timestamptz values read", &n);
}

int main(void)
{
	struct tap t = {0};

	text_array(&t);
	integer_arrays(&t);
	float_and_time_arrays(&t);
	empty_array(&t);
	many_elements(&t);
	result_values(&t);
	return tap_done(&t);
}
