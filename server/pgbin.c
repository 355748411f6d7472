#include "pgbin.h"

#include <string.h>

/* PostgreSQL counts timestamps from 2000-01-01 00:00 UTC. */
#define PG_EPOCH_US INT64_C(946684800000000)
#define HEADER 20 /* ndim, flags, element type, length, lower bound */

static void put32(struct buf *b, uint32_t v)
{
	unsigned char p[4] = {v >> 24, v >> 16, v >> 8, v};

	buf_add(b, p, 4);
}

static void put64(struct buf *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void pgbin_arr_start(struct pgbin_arr *a, uint32_t elem_oid)
{
	memset(a, 0, sizeof(*a));
	put32(&a->b, 1); /* one dimension */
	put32(&a->b, 0); /* has nulls: set by pgbin_arr_end */
	put32(&a->b, elem_oid);
	put32(&a->b, 0); /* its length: set by pgbin_arr_end */
	put32(&a->b, 1); /* its lower bound */
}

void pgbin_arr_null(struct pgbin_arr *a)
{
	put32(&a->b, UINT32_MAX); /* length -1 */
	a->nulls = true;
	a->n++;
}

void pgbin_arr_text(struct pgbin_arr *a, const char *v)
{
	size_t len;

	if (!v) {
		pgbin_arr_null(a);
		return;
	}
	len = strlen(v);
	put32(&a->b, (uint32_t)len);
	buf_add(&a->b, v, len);
	a->n++;
}

void pgbin_arr_int2(struct pgbin_arr *a, int16_t v)
{
	unsigned char p[2] = {(uint16_t)v >> 8, (uint16_t)v};

	put32(&a->b, 2);
	buf_add(&a->b, p, 2);
	a->n++;
}

void pgbin_arr_int4(struct pgbin_arr *a, int32_t v)
{
	put32(&a->b, 4);
	put32(&a->b, (uint32_t)v);
	a->n++;
}

void pgbin_arr_int8(struct pgbin_arr *a, int64_t v)
{
	put32(&a->b, 8);
	put64(&a->b, (uint64_t)v);
	a->n++;
}

void pgbin_arr_float8(struct pgbin_arr *a, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	put32(&a->b, 8);
	put64(&a->b, bits);
	a->n++;
}

void pgbin_arr_timestamptz(struct pgbin_arr *a, int64_t unix_us)
{
	pgbin_arr_int8(a, unix_us - PG_EPOCH_US);
}

int pgbin_arr_end(struct pgbin_arr *a)
{
	unsigned char *p = (unsigned char *)a->b.p;

	if (a->b.oom || a->b.len < HEADER)
		return -1;
	p[7] = a->nulls;
	p[12] = (unsigned char)(a->n >> 24);
	p[13] = (unsigned char)(a->n >> 16);
	p[14] = (unsigned char)(a->n >> 8);
	p[15] = (unsigned char)a->n;
	return 0;
}

void pgbin_arr_free(struct pgbin_arr *a)
{
	buf_free(&a->b);
	a->n = 0;
}

int16_t pgbin_int2(const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
}

double pgbin_float8(const char *v)
{
	uint64_t bits = get64(v);
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

bool pgbin_bool(const char *v)
{
	return v[0] != 0;
}

int64_t pgbin_timestamptz(const char *v)
{
	return (int64_t)get64(v) + PG_EPOCH_US;
}
