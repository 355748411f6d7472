/*
 * ingest/event.c - request bodies to validated events (see event.h).
 *
 * The body is parsed with jansson and then checked field by field, in a fixed
 * order, so that a request always gets the same error: syntax errors of the
 * whole body first (400), then the batch size (413), then the events in order,
 * each field in the order of the contract's tables (422).
 *
 * All lengths of strings are in bytes of UTF-8, not in characters: that is
 * what the database columns and the wire limits are about, and it cannot be
 * gamed with combining characters.
 *
 * Every error detail and field is valid UTF-8 without control characters, at
 * most 255 bytes, so the server can put it into a JSON problem as it is; user
 * values are quoted back at most QUOTE_MAX bytes long.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"

/*
 * Used when the caller passes no limits.  The depth leaves room for unknown
 * fields a poster adds for its own use: an event proper needs 2.
 */
static const struct ev_limits default_limits = {1000, 16};

/* The sensor registry's bodies have the same shape as events. */
#define SENSOR_DEF_MAX_DEPTH 16

/* How many bytes of a wrong value a detail quotes back. */
#define QUOTE_MAX 40

#define NO_POS ((size_t)-1)

/*
 * JSON_ALLOW_NUL lets a "\u0000" through the parser so that it is reported as
 * a 422 on its field instead of a bare syntax error; the validation then
 * rejects it everywhere in the event (see check_nul()).  Integers are read as
 * doubles so that a reading of 1e20 written without an exponent is a number
 * and not an overflow.
 */
#define JSON_FLAGS                                                             \
	(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL |           \
	 JSON_DECODE_INT_AS_REAL)

/* The names on the wire, laid out by hand rather than packed. */
/* clang-format off */
static const char *const type_names[EV_TYPE_COUNT] = {
	"call", "report", "sensor",
};

static const char *const call_status_names[EV_CALL_STATUS_COUNT] = {
	"received", "answered", "abandoned", "closed",
};

static const char *const report_status_names[EV_REPORT_STATUS_COUNT] = {
	"received", "dispatched", "in_progress", "resolved", "rejected",
};

static const char *const call_category_names[EV_CC_COUNT] = {
	"emergency", "fire", "medical", "police",
	"disaster", "complaint", "info", "other",
};

static const char *const report_category_names[EV_RC_COUNT] = {
	"flood", "road", "drainage", "waste", "streetlight",
	"traffic", "public_order", "health", "administration", "other",
};

const char *const ev_threshold_names[EV_THRESHOLDS] = {"waspada", "siaga",
							     "awas"};
/* clang-format on */
/* clang-format on */

struct name_table {
	const char *const *names;
	int n;
};

static struct name_table status_table(enum ev_type t)
{
	switch (t) {
	case EV_CALL:
		return (struct name_table){call_status_names,
					   EV_CALL_STATUS_COUNT};
	case EV_REPORT:
		return (struct name_table){report_status_names,
					   EV_REPORT_STATUS_COUNT};
	default:
		return (struct name_table){NULL, 0};
	}
}

static struct name_table category_table(enum ev_type t)
{
	switch (t) {
	case EV_CALL:
		return (struct name_table){call_category_names, EV_CC_COUNT};
	case EV_REPORT:
		return (struct name_table){report_category_names, EV_RC_COUNT};
	default:
		return (struct name_table){NULL, 0};
	}
}

const char *ev_type_name(enum ev_type t)
{
	return (unsigned)t < EV_TYPE_COUNT ? type_names[t] : NULL;
}

const char *ev_status_name(enum ev_type t, int status)
{
	struct name_table tab = status_table(t);

	return status >= 0 && status < tab.n ? tab.names[status] : NULL;
}

const char *ev_category_name(enum ev_type t, int category)
{
	struct name_table tab = category_table(t);

	return category >= 0 && category < tab.n ? tab.names[category] : NULL;
}

int ev_status_count(enum ev_type t)
{
	return status_table(t).n;
}

int ev_category_count(enum ev_type t)
{
	return category_table(t).n;
}

/* Text for details ------------------------------------------------------ */

/*
 * Length of the well-formed UTF-8 sequence at p (n bytes available), or 0.
 * Overlong forms and surrogates count as malformed, as they do for jansson,
 * which will be asked to encode the detail.
 */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		len = 2;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		len = 3;
		lo = p[0] == 0xE0 ? 0xA0 : lo;
		hi = p[0] == 0xED ? 0x9F : hi;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		len = 4;
		lo = p[0] == 0xF0 ? 0x90 : lo;
		hi = p[0] == 0xF4 ? 0x8F : hi;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/*
 * Copies s into out[size], cutting it if needed before a whole UTF-8
 * sequence; s must be well-formed.
 */
static void copy_utf8(char *out, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

struct text {
	char *p;
	size_t size, len;
	bool full;
};

/* Appends whole units only, so that the text stays well-formed when full. */
static void text_put(struct text *t, const char *s, size_t n)
{
	if (t->full || t->len + n >= t->size) {
		t->full = true;
		return;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

/*
 * Writes up to max bytes of s (n bytes of anything) into t: well-formed UTF-8
 * is kept, anything else becomes '?'.  Quoted, the text is put between double
 * quotes and control characters are escaped as in JSON; unquoted they become
 * '?'.  A cut is marked with "...".
 */
static void text_clean(struct text *t, const char *s, size_t n, size_t max,
		       bool quoted)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	if (quoted)
		text_put(t, "\"", 1);
	while (i < n) {
		size_t len = utf8_len(u + i, n - i);

		if (i + (len ? len : 1) > max)
			break;
		if (len == 0) {
			text_put(t, "?", 1);
			i++;
			continue;
		}
		if (u[i] < 0x20 || u[i] == 0x7F) {
			char esc[8];

			if (quoted)
				snprintf(esc, sizeof esc, "\\u%04X", u[i]);
			else
				snprintf(esc, sizeof esc, "?");
			text_put(t, esc, strlen(esc));
		} else if (quoted && (u[i] == '"' || u[i] == '\\')) {
			text_put(t, "\\", 1);
			text_put(t, s + i, 1);
		} else {
			text_put(t, s + i, len);
		}
		i += len;
	}
	if (i < n)
		text_put(t, "...", 3);
	if (quoted)
		text_put(t, "\"", 1);
}

static void quote(char *out, size_t size, const char *s, size_t n)
{
	struct text t = {out, size, 0, false};

	out[0] = '\0';
	text_clean(&t, s, n, QUOTE_MAX, true);
}

/*
 * A number as a person would write it: whole numbers in full (200, not
 * 2e+02), others in the shortest "%g" form that reads back as the same
 * double.
 */
static void fmt_number(char *buf, size_t size, double d)
{
	if (d == floor(d) && fabs(d) < 1e15) {
		snprintf(buf, size, "%.0f", d);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/* What a wrong value was, for "...; got <this>." */
static void describe(char *buf, size_t size, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		quote(buf, size, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		fmt_number(buf, size, json_number_value(v));
		break;
	case JSON_OBJECT:
		snprintf(buf, size, "an object");
		break;
	case JSON_ARRAY:
		snprintf(buf, size, "an array");
		break;
	case JSON_TRUE:
		snprintf(buf, size, "true");
		break;
	case JSON_FALSE:
		snprintf(buf, size, "false");
		break;
	default:
		snprintf(buf, size, "null");
		break;
	}
}

static const char *kind_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static void join_names(char *buf, size_t size, const char *const *names, int n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? ", " : "", names[i]);
}

/* Errors ---------------------------------------------------------------- */

__attribute__((format(printf, 5, 0))) static void
verror(struct ev_error *err, int status, const char *code, const char *field,
       const char *fmt, va_list ap)
{
	char tmp[1024];

	err->status = status;
	err->code = code;
	err->index = -1;
	err->line = 0;
	err->column = 0;
	copy_utf8(err->field, sizeof err->field, field);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	copy_utf8(err->detail, sizeof err->detail, tmp);
}

__attribute__((format(printf, 5, 6))) static int
fail(struct ev_error *err, int status, const char *code, const char *field,
     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(err, status, code, field, fmt, ap);
	va_end(ap);
	return -1;
}

/* A 422 about one field; the caller adds the index of the event. */
__attribute__((format(printf, 3, 4))) static int
invalid(struct ev_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(err, 422, "invalid_event", field, fmt, ap);
	va_end(ap);
	return -1;
}

static int out_of_memory(struct ev_error *err)
{
	return fail(err, 500, "internal", "",
		    "The server ran out of memory while reading the request; "
		    "try again later.");
}

/* Syntax ---------------------------------------------------------------- */

/*
 * Offset of the first '[' or '{' that opens a container deeper than max (the
 * outermost being at depth 1), or NO_POS.  This runs on the raw bytes because
 * jansson has no depth limit of its own below 2048 and keeps no positions in
 * what it builds; on a malformed body the scan just goes on, and the earlier
 * of its finding and jansson's error is reported.
 */
static size_t too_deep_at(const char *p, size_t len, int max)
{
	bool in_string = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return i;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return NO_POS;
}

/* Line and column (1-based, in characters as jansson counts) of p[off]. */
static void locate(const char *p, size_t off, long *line, long *column)
{
	*line = 1;
	*column = 0;
	for (size_t i = 0; i <= off; i++) {
		if (p[i] == '\n') {
			++*line;
			*column = 0;
		} else if (((unsigned char)p[i] & 0xC0) != 0x80) {
			++*column;
		}
	}
}

/*
 * Skips a UTF-8 byte order mark at the start of a body.  RFC 8259 lets a
 * parser ignore one, and some Windows software writes one; columns on line 1
 * are then counted without it, as an editor shows the line.
 */
static void skip_bom(const char **body, size_t *len)
{
	if (*len >= 3 && memcmp(*body, "\xEF\xBB\xBF", 3) == 0) {
		*body += 3;
		*len -= 3;
	}
}

/* JSON's white space; not strchr(), which would also match a NUL byte. */
static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_ws(p[i]))
			return false;
	return true;
}

/* The token jansson quotes in "... near '<token>'", or "". */
static void near_token(char *buf, size_t size, const char *text)
{
	const char *s = strstr(text, "near '");
	const char *e;
	struct text t = {buf, size, 0, false};

	buf[0] = '\0';
	if (!s)
		return;
	s += 6;
	e = strrchr(s, '\'');
	if (!e)
		e = s + strlen(s);
	text_clean(&t, s, (size_t)(e - s), QUOTE_MAX, false);
}

/*
 * Fills err with a 400 for a syntax error at line/column.  ndjson says whether
 * the line is one event's line of an NDJSON body, which changes the advice.
 */
static int syntax_error(struct ev_error *err, const json_error_t *je, long line,
			long column, bool ndjson)
{
	char where[96], what[200], tok[64];
	struct text t = {what, sizeof what, 0, false};

	if (column < 1)
		column = 1;
	if (ndjson)
		snprintf(where, sizeof where,
			 "Line %ld of the body is not valid JSON at column %ld",
			 line, column);
	else
		snprintf(where, sizeof where,
			 "The body is not valid JSON at line %ld, column %ld",
			 line, column);
	what[0] = '\0';
	text_clean(&t, je->text, strnlen(je->text, sizeof je->text),
		   sizeof je->text, false);
	near_token(tok, sizeof tok, je->text);

	switch (json_error_code(je)) {
	case json_error_out_of_memory:
		return out_of_memory(err);
	case json_error_duplicate_key:
		fail(
		    err, 400, "bad_json", "",
		    "%s: the key %s appears twice in one object; send each key "
		    "once.",
		    where, tok);
		break;
	case json_error_invalid_utf8:
		fail(
		    err, 400, "bad_json", "",
		    "%s: the text is not UTF-8 (%s); encode the body as UTF-8.",
		    where, what);
		break;
	case json_error_premature_end_of_input:
		fail(err, 400, "bad_json", "",
		     "%s: it ends too early (%s); check for a missing quote, "
		     "brace or bracket.",
		     where, what);
		break;
	case json_error_end_of_input_expected:
		fail(err, 400, "bad_json", "",
		     ndjson
			 ? "%s: there is more after the event object (%s); "
			   "put exactly one event on each line."
			 : "%s: there is more after the JSON value (%s); send "
			   "one event object or one array of them.",
		     where, what);
		break;
	case json_error_null_byte_in_key:
		fail(err, 400, "bad_json", "",
		     "%s: an object key contains \\u0000; remove it.", where);
		break;
	case json_error_numeric_overflow:
		fail(err, 400, "bad_json", "",
		     "%s: the number %s is too large; send a finite number.",
		     where, tok);
		break;
	case json_error_stack_overflow:
		fail(err, 400, "bad_json", "",
		     "%s: it is nested too deeply; flatten the event.", where);
		break;
	default:
		fail(err, 400, "bad_json", "", "%s: %s; fix the syntax.", where,
		     what);
		break;
	}
	err->line = line;
	err->column = column;
	return -1;
}

/*
 * Parses p[0..len) as one JSON value, whose containers may nest max_depth
 * deep (no limit but jansson's when max_depth <= 0) below outer levels of
 * wrapping (the array around a batch).  first_line is the line of the body p
 * starts on, for the error's position.
 */
static json_t *load_value(const char *p, size_t len, int max_depth, int outer,
			  long first_line, bool ndjson, struct ev_error *err)
{
	size_t deep =
	    max_depth > 0 ? too_deep_at(p, len, max_depth + outer) : NO_POS;
	json_error_t je;
	json_t *v;

	v = json_loadb(p, len, JSON_FLAGS, &je);
	if (v && deep == NO_POS)
		return v;
	if (deep != NO_POS && (v || (size_t)je.position > deep)) {
		long line, column;

		json_decref(v);
		locate(p, deep, &line, &column);
		line += first_line - 1;
		if (ndjson)
			fail(err, 400, "bad_json", "",
			     "The event on line %ld nests objects and arrays "
			     "more than %d deep at column %ld; flatten it.",
			     line, max_depth, column);
		else
			fail(err, 400, "bad_json", "",
			     "An event nests objects and arrays more than %d "
			     "deep at line %ld, column %ld; flatten it.",
			     max_depth, line, column);
		err->line = line;
		err->column = column;
		return NULL;
	}
	syntax_error(err, &je, first_line + je.line - 1, je.column, ndjson);
	return NULL;
}

/* Fields ---------------------------------------------------------------- */

/* A member, or NULL when it is absent or null: null means "not given". */
static json_t *member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/* "prefix.key", cut to 63 bytes; built for every nested field read, so
 * without snprintf. */
static const char *path_of(char buf[64], const char *prefix, const char *key)
{
	size_t p, k;

	if (!prefix)
		return key;
	p = strnlen(prefix, 62);
	k = strnlen(key, 62 - p);
	memcpy(buf, prefix, p);
	buf[p] = '.';
	memcpy(buf + p + 1, key, k);
	buf[p + 1 + k] = '\0';
	return buf;
}

int ev_control_char(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7F)
			return c;
	}
	return -1;
}

/*
 * A string of 1..max bytes without control characters.  *out is NULL when an
 * optional string is not given.
 */
static int get_string(const json_t *obj, const char *prefix, const char *key,
		      size_t max, bool required, const char **out,
		      struct ev_error *err)
{
	json_t *v = member(obj, key);
	char pb[64], got[256];
	const char *path = path_of(pb, prefix, key);
	size_t n;
	int c;

	*out = NULL;
	if (!v) {
		if (!required)
			return 0;
		return invalid(err, path,
			       "%s is missing; add a string of 1 to %zu bytes.",
			       path, max);
	}
	if (!json_is_string(v)) {
		describe(got, sizeof got, v);
		return invalid(err, path,
			       "%s must be a string of 1 to %zu bytes; got %s.",
			       path, max, got);
	}
	n = json_string_length(v);
	if (n == 0)
		return invalid(err, path,
			       required ? "%s must not be empty; give 1 to %zu "
					  "bytes."
					: "%s must not be empty; give 1 to %zu "
					  "bytes, or leave the field out.",
			       path, max);
	if (n > max)
		return invalid(err, path,
			       "%s is %zu bytes long, over the limit of %zu "
			       "bytes of UTF-8; shorten it.",
			       path, n, max);
	c = ev_control_char(json_string_value(v), n);
	if (c >= 0)
		return invalid(err, path,
			       "%s contains the control character U+%04X; "
			       "remove it.",
			       path, (unsigned)c);
	*out = json_string_value(v);
	return 0;
}

static bool is_subject_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
	       c == '-';
}

bool ev_subject_valid(const char *s, size_t n)
{
	if (n < 1 || n > EV_SUBJECT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_subject_char(s[i]))
			return false;
	return true;
}

/* One of names; *out is -1 when an optional value is not given. */
static int get_enum(const json_t *obj, const char *prefix, const char *key,
		    const char *const *names, int n, bool required, int *out,
		    struct ev_error *err)
{
	json_t *v = member(obj, key);
	char pb[64], got[256], allowed[160];
	const char *path = path_of(pb, prefix, key);

	*out = -1;
	if (!v && !required)
		return 0;
	if (!v) {
		join_names(allowed, sizeof allowed, names, n);
		return invalid(err, path, "%s is missing; use one of %s.", path,
			       allowed);
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);

		/* Compared with the length: "received\u0000x" is no status. */
		for (int i = 0; i < n; i++) {
			if (strlen(names[i]) == len &&
			    memcmp(names[i], s, len) == 0) {
				*out = i;
				return 0;
			}
		}
	}
	describe(got, sizeof got, v);
	join_names(allowed, sizeof allowed, names, n);
	return invalid(err, path, "%s must be one of %s; got %s.", path,
		       allowed, got);
}

/*
 * A finite number in [lo, hi]; what says it in words ("a number from -90 to
 * 90").  *present is false when an optional number is not given.
 */
static int get_number(const json_t *obj, const char *prefix, const char *key,
		      double lo, double hi, const char *what, bool required,
		      double *out, bool *present, struct ev_error *err)
{
	json_t *v = member(obj, key);
	char pb[64], got[256];
	const char *path = path_of(pb, prefix, key);
	double d;

	*present = false;
	if (!v) {
		if (!required)
			return 0;
		return invalid(err, path, "%s is missing; add %s.", path, what);
	}
	if (!json_is_number(v)) {
		describe(got, sizeof got, v);
		return invalid(err, path, "%s must be %s; got %s.", path, what,
			       got);
	}
	d = json_number_value(v);
	if (!isfinite(d) || d < lo || d > hi) {
		describe(got, sizeof got, v);
		return invalid(err, path, "%s must be %s; got %s.", path, what,
			       got);
	}
	*out = d;
	*present = true;
	return 0;
}

static int get_location(const json_t *obj, bool *has, double *lat, double *lon,
			struct ev_error *err)
{
	json_t *loc = member(obj, "location");
	char got[256];
	bool present;

	*has = false;
	if (!loc)
		return 0;
	if (!json_is_object(loc)) {
		describe(got, sizeof got, loc);
		return invalid(err, "location",
			       "location must be an object like {\"lat\": "
			       "-6.98, \"lon\": 110.41}; got %s.",
			       got);
	}
	if (get_number(loc, "location", "lat", -90, 90,
		       "a number from -90 to 90", true, lat, &present, err) ||
	    get_number(loc, "location", "lon", -180, 180,
		       "a number from -180 to 180", true, lon, &present, err))
		return -1;
	*has = true;
	return 0;
}

static int get_time(const json_t *obj, int64_t now_us, int64_t *out,
		    struct ev_error *err)
{
	json_t *v = member(obj, "occurred_at");
	char got[256];

	if (!v)
		return invalid(err, "occurred_at",
			       "occurred_at is missing; add the time of the "
			       "event in RFC 3339 with an offset, like "
			       "2026-11-23T08:15:00+07:00.");
	if (!json_is_string(v) ||
	    ev_time_parse(json_string_value(v), json_string_length(v), out)) {
		describe(got, sizeof got, v);
		return invalid(
		    err, "occurred_at",
		    "occurred_at must be a time in RFC 3339 with an "
		    "offset, like 2026-11-23T08:15:00+07:00; got %s.",
		    got);
	}
	if (now_us <= INT64_MAX - EV_FUTURE_SKEW_US &&
	    *out > now_us + EV_FUTURE_SKEW_US) {
		/* The difference is positive but may not fit an int64_t
		 * (a clock near INT64_MIN): unsigned arithmetic is exact. */
		fmt_number(got, sizeof got,
			   (double)((uint64_t)*out - (uint64_t)now_us) / 1e6);
		return invalid(
		    err, "occurred_at",
		    "occurred_at is %s s ahead of the server's clock, "
		    "more than the %d s allowed; check the sending "
		    "system's clock.",
		    got, (int)(EV_FUTURE_SKEW_US / 1000000));
	}
	return 0;
}

/* Whether a "\u0000" is anywhere in v. */
static bool has_nul(const json_t *v)
{
	if (json_is_string(v))
		return strlen(json_string_value(v)) != json_string_length(v);
	if (json_is_object(v)) {
		const char *key;
		json_t *m;

		json_object_foreach ((json_t *)v, key, m) {
			if (has_nul(m))
				return true;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (has_nul(json_array_get(v, i)))
				return true;
	}
	return false;
}

/*
 * Rejects a "\u0000" anywhere in the event, also in fields this code ignores:
 * PostgreSQL can store it neither in text nor in jsonb, so an event carrying
 * one could never be stored whole.  path (size 256) is the value's path,
 * built only down to the value that has one: every event is checked.
 */
static int check_nul(const json_t *v, char *path, size_t plen,
		     struct ev_error *err)
{
	if (json_is_string(v)) {
		if (!has_nul(v))
			return 0;
		return invalid(err, path,
			       "%s contains the character U+0000, which cannot "
			       "be stored; remove it.",
			       path);
	}
	if (json_is_object(v)) {
		const char *key;
		json_t *m;

		json_object_foreach ((json_t *)v, key, m) {
			struct text t = {path, 256, plen, false};

			if (!has_nul(m))
				continue;
			if (plen)
				text_put(&t, ".", 1);
			text_clean(&t, key, strlen(key), 256, false);
			return check_nul(m, path, t.len, err);
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (!has_nul(json_array_get(v, i)))
				continue;
			int n = snprintf(path + plen, 256 - plen, "[%zu]", i);

			if (n < 0 || (size_t)n >= 256 - plen)
				n = 0;
			return check_nul(json_array_get(v, i), path, plen + n,
					 err);
		}
	}
	return 0;
}

/* Events ---------------------------------------------------------------- */

static int parse_call(const json_t *c, struct ev_event *ev,
		      struct ev_error *err)
{
	char allowed[160];

	if (get_string(c, "call", "call_id", EV_SUBJECT_MAX, true, &ev->subject,
		       err) ||
	    get_enum(c, "call", "status", call_status_names,
		     EV_CALL_STATUS_COUNT, true, &ev->status, err) ||
	    get_enum(c, "call", "category", call_category_names, EV_CC_COUNT,
		     false, &ev->category, err))
		return -1;
	if (ev->status == EV_CALL_RECEIVED && ev->category < 0) {
		join_names(allowed, sizeof allowed, call_category_names,
			   EV_CC_COUNT);
		return invalid(err, "call.category",
			       "call.category is required when call.status is "
			       "received; use one of %s.",
			       allowed);
	}
	return 0;
}

static int parse_report(const json_t *r, struct ev_event *ev,
			struct ev_error *err)
{
	char allowed[160];

	if (get_string(r, "report", "ticket", EV_SUBJECT_MAX, true,
		       &ev->subject, err) ||
	    get_enum(r, "report", "status", report_status_names,
		     EV_REPORT_STATUS_COUNT, true, &ev->status, err) ||
	    get_enum(r, "report", "category", report_category_names,
		     EV_RC_COUNT, false, &ev->category, err))
		return -1;
	if (ev->status == EV_REPORT_RECEIVED && ev->category < 0) {
		join_names(allowed, sizeof allowed, report_category_names,
			   EV_RC_COUNT);
		return invalid(err, "report.category",
			       "report.category is required when report.status "
			       "is received; use one of %s.",
			       allowed);
	}
	if (get_string(r, "report", "agency", EV_AGENCY_MAX, false, &ev->agency,
		       err))
		return -1;
	if (ev->status == EV_REPORT_DISPATCHED && !ev->agency)
		return invalid(
		    err, "report.agency",
		    "report.agency is required when report.status is "
		    "dispatched; give the code of the agency the "
		    "ticket goes to (1 to 32 bytes).");
	return get_string(r, "report", "title", EV_TITLE_MAX, false, &ev->title,
			  err);
}

static int parse_sensor(const json_t *s, struct ev_event *ev,
			struct ev_error *err)
{
	bool present;

	if (get_string(s, "sensor", "sensor_id", EV_SUBJECT_MAX, true,
		       &ev->subject, err))
		return -1;
	if (!ev_subject_valid(ev->subject, strlen(ev->subject))) {
		char got[256];

		quote(got, sizeof got, ev->subject, strlen(ev->subject));
		return invalid(err, "sensor.sensor_id",
			       "sensor.sensor_id may only contain letters, "
			       "digits, '.', '_', ':' and '-'; got %s.",
			       got);
	}
	return get_number(s, "sensor", "value", -HUGE_VAL, HUGE_VAL,
			  "a finite number", true, &ev->value, &present, err);
}

static int parse_event(const json_t *o, int64_t now_us, struct ev_event *ev,
		       struct ev_error *err)
{
	char path[256] = "";
	const json_t *body;
	int type;

	memset(ev, 0, sizeof *ev);
	ev->category = -1;
	if (get_string(o, NULL, "id", EV_ID_MAX, true, &ev->id, err) ||
	    get_enum(o, NULL, "type", type_names, EV_TYPE_COUNT, true, &type,
		     err))
		return -1;
	ev->type = (enum ev_type)type;
	if (get_time(o, now_us, &ev->occurred_us, err) ||
	    get_string(o, NULL, "district", EV_DISTRICT_MAX, false,
		       &ev->district, err) ||
	    get_location(o, &ev->has_location, &ev->lat, &ev->lon, err))
		return -1;

	for (int t = 0; t < EV_TYPE_COUNT; t++)
		if (t != type && member(o, type_names[t]))
			return invalid(err, type_names[t],
				       "An event of type %s must not have a %s "
				       "object; remove it, or set type to %s.",
				       type_names[type], type_names[t],
				       type_names[t]);
	body = member(o, type_names[type]);
	if (!body)
		return invalid(err, type_names[type],
			       "An event of type %s needs a %s object; add it.",
			       type_names[type], type_names[type]);
	if (!json_is_object(body)) {
		char got[256];

		describe(got, sizeof got, body);
		return invalid(err, type_names[type],
			       "%s must be an object; got %s.",
			       type_names[type], got);
	}

	switch (ev->type) {
	case EV_CALL:
		if (parse_call(body, ev, err))
			return -1;
		break;
	case EV_REPORT:
		if (parse_report(body, ev, err))
			return -1;
		break;
	default:
		if (parse_sensor(body, ev, err))
			return -1;
		break;
	}
	return check_nul(o, path, 0, err);
}

/* How the events were laid out in the body, for the advice in errors. */
enum body_shape { SHAPE_SINGLE, SHAPE_ARRAY, SHAPE_LINES };

static const char *const not_object[] = {
    [SHAPE_SINGLE] = "The body must be an event object or an array of them",
    [SHAPE_ARRAY] = "Each element of the array must be an event object",
    [SHAPE_LINES] = "Each line must hold one event object",
};

/*
 * Reads a JSON body into an array of the values that should be events: the
 * array itself, or a new one holding the single value.
 */
static json_t *load_json(const char *body, size_t len, int max_depth,
			 enum body_shape *shape, struct ev_error *err)
{
	json_t *root, *arr;
	size_t i = 0;

	if (is_blank(body, len)) {
		fail(err, 400, "bad_json", "",
		     "The body is empty; send an event object or an array of "
		     "them.");
		err->line = 1;
		err->column = 1;
		return NULL;
	}
	/* The array around the events is not part of an event's depth. */
	while (i < len && is_ws(body[i]))
		i++;
	root = load_value(body, len, max_depth, i < len && body[i] == '[', 1,
			  false, err);
	*shape = SHAPE_ARRAY;
	if (!root || json_is_array(root))
		return root;
	*shape = SHAPE_SINGLE;
	arr = json_array();
	if (!arr || json_array_append_new(arr, root)) {
		json_decref(arr);
		out_of_memory(err);
		return NULL;
	}
	return arr;
}

static size_t line_end(const char *body, size_t len, size_t start)
{
	const char *nl = memchr(body + start, '\n', len - start);

	return nl ? (size_t)(nl - body) : len;
}

/*
 * Reads an NDJSON body into an array of one value per non-blank line.  The
 * number of events is checked before anything is parsed, which spares the
 * work on a body that is refused anyway.
 */
static json_t *load_ndjson(const char *body, size_t len,
			   const struct ev_limits *limits, struct ev_error *err)
{
	size_t start, end, n = 0;
	json_t *arr;
	long line;

	for (start = 0; start < len; start = end + 1) {
		end = line_end(body, len, start);
		n += !is_blank(body + start, end - start);
	}
	if (n == 0) {
		fail(err, 422, "invalid_event", "",
		     "The body has no events; send one event object per line.");
		return NULL;
	}
	if (n > limits->max_events) {
		fail(err, 413, "too_large", "",
		     "The request has %zu events, more than the %zu allowed; "
		     "split it into several requests.",
		     n, limits->max_events);
		return NULL;
	}
	arr = json_array();
	if (!arr) {
		out_of_memory(err);
		return NULL;
	}
	for (start = 0, line = 1; start < len; start = end + 1, line++) {
		json_t *v;

		end = line_end(body, len, start);
		if (is_blank(body + start, end - start))
			continue;
		v = load_value(body + start, end - start, limits->max_depth, 0,
			       line, true, err);
		if (!v || json_array_append_new(arr, v)) {
			if (v)
				out_of_memory(err);
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int ev_parse_batch(const char *body, size_t len, enum ev_format fmt,
		   int64_t now_us, const struct ev_limits *limits,
		   struct ev_batch *out, struct ev_error *err)
{
	struct ev_event *events;
	enum body_shape shape = SHAPE_SINGLE;
	json_t *root;
	size_t n;

	memset(out, 0, sizeof *out);
	memset(err, 0, sizeof *err);
	err->index = -1;
	err->code = "";
	if (!limits)
		limits = &default_limits;
	if (!body) {
		body = "";
		len = 0;
	}
	skip_bom(&body, &len);

	if (fmt == EV_FORMAT_NDJSON) {
		root = load_ndjson(body, len, limits, err);
		shape = SHAPE_LINES;
	} else {
		root = load_json(body, len, limits->max_depth, &shape, err);
	}
	if (!root)
		return -1;

	n = json_array_size(root);
	if (n == 0) {
		json_decref(root);
		return fail(err, 422, "invalid_event", "",
			    "The array has no events; send at least one.");
	}
	if (n > limits->max_events) {
		json_decref(root);
		return fail(err, 413, "too_large", "",
			    "The request has %zu events, more than the %zu "
			    "allowed; split it into several requests.",
			    n, limits->max_events);
	}
	events = calloc(n, sizeof *events);
	if (!events) {
		json_decref(root);
		return out_of_memory(err);
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(root, i);
		int rc;

		if (!json_is_object(v))
			rc = invalid(err, "", "%s; it is %s.",
				     not_object[shape], kind_of(v));
		else
			rc = parse_event(v, now_us, &events[i], err);
		if (rc) {
			err->index = (long)i;
			free(events);
			json_decref(root);
			return -1;
		}
	}
	out->events = events;
	out->n = n;
	out->mem = root;
	return 0;
}

void ev_batch_free(struct ev_batch *b)
{
	if (!b)
		return;
	json_decref((json_t *)b->mem);
	free(b->events);
	memset(b, 0, sizeof *b);
}

/* Sensor registry ------------------------------------------------------- */

static int get_thresholds(const json_t *obj, double th[EV_THRESHOLDS],
			  struct ev_error *err)
{
	json_t *t = member(obj, "thresholds"), *v;
	const char *key;
	char got[256], pb[64];
	int prev = -1;
	bool present;

	if (!t)
		return invalid(err, "thresholds",
			       "thresholds is missing; add an object with at "
			       "least one of waspada, siaga and awas, like "
			       "{\"siaga\": 200, \"awas\": 250}.");
	if (!json_is_object(t)) {
		describe(got, sizeof got, t);
		return invalid(err, "thresholds",
			       "thresholds must be an object like {\"siaga\": "
			       "200, \"awas\": 250}; got %s.",
			       got);
	}
	json_object_foreach (t, key, v) {
		int i = 0;

		while (i < EV_THRESHOLDS &&
		       strcmp(key, ev_threshold_names[i]) != 0)
			i++;
		if (i == 3) {
			struct text tx = {pb, sizeof pb, 0, false};

			text_put(&tx, "thresholds.", 11);
			text_clean(&tx, key, strlen(key), 40, false);
			quote(got, sizeof got, key, strlen(key));
			return invalid(
			    err, pb,
			    "thresholds has the unknown level %s; "
			    "the levels are waspada, siaga and awas.",
			    got);
		}
	}
	for (int i = 0; i < EV_THRESHOLDS; i++) {
		if (get_number(t, "thresholds", ev_threshold_names[i],
			       -HUGE_VAL, HUGE_VAL, "a finite number", false,
			       &th[i], &present, err))
			return -1;
		if (!present)
			continue;
		if (prev >= 0 && !(th[i] > th[prev])) {
			char a[32], b[32];

			fmt_number(a, sizeof a, th[i]);
			fmt_number(b, sizeof b, th[prev]);
			return invalid(
			    err,
			    path_of(pb, "thresholds", ev_threshold_names[i]),
			    "thresholds.%s (%s) must be greater than "
			    "thresholds.%s (%s): the levels ascend "
			    "waspada < siaga < awas.",
			    ev_threshold_names[i], a, ev_threshold_names[prev],
			    b);
		}
		prev = i;
	}
	if (prev < 0)
		return invalid(
		    err, "thresholds",
		    "thresholds must give at least one of waspada, "
		    "siaga and awas, like {\"siaga\": 200, \"awas\": "
		    "250}.");
	return 0;
}

static int get_offline_after(const json_t *obj, int *out, struct ev_error *err)
{
	const char *what = "a whole number of seconds from 60 to 604800";
	json_t *v = member(obj, "offline_after_s");
	bool present;
	double d;

	if (get_number(obj, NULL, "offline_after_s", 60, 604800, what, false,
		       &d, &present, err))
		return -1;
	if (!present)
		return 0;
	if (d != floor(d)) {
		char got[256];

		describe(got, sizeof got, v);
		return invalid(err, "offline_after_s",
			       "offline_after_s must be %s; got %s.", what,
			       got);
	}
	*out = (int)d;
	return 0;
}

/* An empty definition with the defaults of what a body may leave out. */
static void sensor_def_init(struct ev_sensor_def *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 0; i < EV_THRESHOLDS; i++)
		out->thresholds[i] = NAN;
	out->offline_after_s = 900;
}

/* Copies a validated string into a fixed field (size > its limit). */
static void copy_field(char *dst, const char *src)
{
	if (src)
		strcpy(dst, src);
}

int ev_parse_sensor_def(const char *sensor_id, const char *body, size_t len,
			struct ev_sensor_def *out, struct ev_error *err)
{
	const char *name, *metric, *unit, *district;
	char path[256] = "", got[256];
	json_t *root;
	int rc;

	sensor_def_init(out);
	memset(err, 0, sizeof *err);
	err->index = -1;
	err->code = "";

	if (!sensor_id)
		sensor_id = "";
	if (!ev_subject_valid(sensor_id, strlen(sensor_id))) {
		quote(got, sizeof got, sensor_id, strlen(sensor_id));
		return fail(err, 422, "invalid_event", "sensor_id",
			    "The sensor id in the URL must be 1 to 64 letters, "
			    "digits, '.', '_', ':' or '-'; got %s.",
			    got);
	}
	if (!body) {
		body = "";
		len = 0;
	}
	skip_bom(&body, &len);
	if (is_blank(body, len)) {
		fail(err, 400, "bad_json", "",
		     "The body is empty; send a JSON object describing the "
		     "sensor.");
		err->line = 1;
		err->column = 1;
		return -1;
	}
	root = load_value(body, len, SENSOR_DEF_MAX_DEPTH, 0, 1, false, err);
	if (!root)
		return -1;
	if (!json_is_object(root)) {
		rc = invalid(err, "",
			     "The body must be a JSON object describing the "
			     "sensor; it is %s.",
			     kind_of(root));
		json_decref(root);
		return rc;
	}

	if (get_string(root, NULL, "name", sizeof out->name - 1, true, &name,
		       err) ||
	    get_string(root, NULL, "metric", sizeof out->metric - 1, true,
		       &metric, err) ||
	    get_string(root, NULL, "unit", sizeof out->unit - 1, true, &unit,
		       err) ||
	    get_string(root, NULL, "district", EV_DISTRICT_MAX, false,
		       &district, err) ||
	    get_location(root, &out->has_location, &out->lat, &out->lon, err) ||
	    get_thresholds(root, out->thresholds, err) ||
	    get_offline_after(root, &out->offline_after_s, err) ||
	    check_nul(root, path, 0, err)) {
		json_decref(root);
		sensor_def_init(out);
		return -1;
	}
	copy_field(out->sensor_id, sensor_id);
	copy_field(out->name, name);
	copy_field(out->metric, metric);
	copy_field(out->unit, unit);
	copy_field(out->district, district);
	json_decref(root);
	return 0;
}
