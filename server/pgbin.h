/*
 * server/pgbin.h - PostgreSQL's binary wire formats, for the statements
 * that carry thousands of values: one-dimensional arrays as parameters
 * (array_recv's format) and the scalar types read back from results.
 *
 * Binary values skip PostgreSQL's text parsing and formatting: an array
 * literal is parsed character by character, and a timestamp printed as
 * microseconds goes through numeric arithmetic, each costing a few
 * microseconds an event in the writer's statement.
 */
#ifndef KENDALI_PGBIN_H
#define KENDALI_PGBIN_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

/* Type OIDs of the elements used here (pg_type.dat). */
#define PGBIN_BOOL 16
#define PGBIN_INT8 20
#define PGBIN_INT2 21
#define PGBIN_INT4 23
#define PGBIN_TEXT 25
#define PGBIN_FLOAT8 701
#define PGBIN_TIMESTAMPTZ 1184

/*
 * An array being built.  Appends fail only when memory runs out, which
 * pgbin_arr_end reports; the element functions must match the element type
 * given to pgbin_arr_start (PostgreSQL refuses a mismatch).
 */
struct pgbin_arr {
	struct buf b;
	uint32_t n;
	bool nulls;
};

void pgbin_arr_start(struct pgbin_arr *a, uint32_t elem_oid);
void pgbin_arr_null(struct pgbin_arr *a);
void pgbin_arr_text(struct pgbin_arr *a, const char *v); /* NULL: SQL NULL */
void pgbin_arr_int2(struct pgbin_arr *a, int16_t v);
void pgbin_arr_int4(struct pgbin_arr *a, int32_t v);
void pgbin_arr_int8(struct pgbin_arr *a, int64_t v);
void pgbin_arr_float8(struct pgbin_arr *a, double v);
void pgbin_arr_timestamptz(struct pgbin_arr *a, int64_t unix_us);

/*
 * Completes the array: a->b.p and a->b.len are then the parameter's value
 * and length.  Returns 0, or -1 when memory ran out.
 */
int pgbin_arr_end(struct pgbin_arr *a) __attribute__((warn_unused_result));
void pgbin_arr_free(struct pgbin_arr *a);

/* Values of a binary result; v points at PQgetvalue's bytes. */
int16_t pgbin_int2(const char *v);
double pgbin_float8(const char *v);
bool pgbin_bool(const char *v);
int64_t pgbin_timestamptz(const char *v); /* microseconds since 1970 */

#endif
