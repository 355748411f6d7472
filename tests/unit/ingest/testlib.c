/*
 * tests/unit/ingest/testlib.c - case files for the ingest tests.
 *
 * How a case builds its body (the first member present wins):
 *   "body": "..."          the bytes of the string, as they are;
 *   "body_hex": "7b7d"     bytes written in hex, for what JSON cannot hold
 *                          (invalid UTF-8);
 *   "events": [e, ...]     an array (JSON) or one line per element (NDJSON);
 *   "event": e             one event, or the case itself when it has "base".
 * An event e is either any JSON value, taken as it is, or an object
 * {"base": name, "set": {path: value}, "del": [path]}: the named base event
 * of the file's "bases", with members set or removed at dotted paths
 * ("call.status").  Anywhere in a value, {"$repeat": s, "count": n} stands
 * for the string s written n times, for the long strings of the boundaries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

json_t *tl_load(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, JSON_ALLOW_NUL, &je);

	if (!j) {
		fprintf(stderr, "%s:%d:%d: %s\n", path, je.line, je.column,
			je.text);
		exit(2);
	}
	return j;
}

const char *tl_str(const json_t *obj, const char *key, const char *def)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

/* Replaces every {"$repeat": s, "count": n} in v; returns a new reference. */
static json_t *expand(json_t *v)
{
	json_t *r, *m;
	const char *key;

	if (json_is_object(v) && json_object_get(v, "$repeat")) {
		const char *s = tl_str(v, "$repeat", "");
		size_t len = strlen(s);
		json_int_t count =
		    json_integer_value(json_object_get(v, "count"));
		char *buf = malloc(len * (size_t)count + 1);

		for (json_int_t i = 0; i < count; i++)
			memcpy(buf + len * (size_t)i, s, len);
		buf[len * (size_t)count] = '\0';
		r = json_string(buf);
		free(buf);
		return r;
	}
	if (json_is_object(v)) {
		r = json_object();
		json_object_foreach (v, key, m) {
			json_object_set_new(r, key, expand(m));
		}
		return r;
	}
	if (json_is_array(v)) {
		r = json_array();
		for (size_t i = 0; i < json_array_size(v); i++)
			json_array_append_new(r, expand(json_array_get(v, i)));
		return r;
	}
	return json_incref(v);
}

/*
 * The object holding the last part of a dotted path, created on the way when
 * create is set, and the last part in *last (a pointer into buf).
 */
static json_t *walk(json_t *root, const char *path, bool create, char *buf,
		    size_t size, const char **last)
{
	char *p, *dot;

	snprintf(buf, size, "%s", path);
	p = buf;
	while ((dot = strchr(p, '.')) != NULL) {
		json_t *next;

		*dot = '\0';
		next = json_object_get(root, p);
		if (!json_is_object(next)) {
			if (!create)
				return NULL;
			next = json_object();
			json_object_set_new(root, p, next);
		}
		root = next;
		p = dot + 1;
	}
	*last = p;
	return root;
}

static json_t *build_event(const json_t *spec, const json_t *bases,
			   struct note *n)
{
	const char *base_name = tl_str(spec, "base", NULL);
	json_t *base, *ev, *set, *del, *v;
	const char *path;
	char buf[256];

	if (!base_name)
		return expand((json_t *)spec);
	base = json_object_get(bases, base_name);
	if (!base) {
		note_add(n, "case file: no base named \"%s\"", base_name);
		return NULL;
	}
	ev = json_deep_copy(base);
	set = json_object_get(spec, "set");
	json_object_foreach (set, path, v) {
		const char *last;
		json_t *obj = walk(ev, path, true, buf, sizeof buf, &last);

		json_object_set_new(obj, last, expand(v));
	}
	del = json_object_get(spec, "del");
	for (size_t i = 0; i < json_array_size(del); i++) {
		const char *last;
		json_t *obj =
		    walk(ev, json_string_value(json_array_get(del, i)), false,
			 buf, sizeof buf, &last);

		if (obj)
			json_object_del(obj, last);
	}
	return ev;
}

static char *dump(const json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	*len = s ? strlen(s) : 0;
	return s;
}

static char *from_hex(const char *hex, size_t *len, struct note *n)
{
	size_t hl = strlen(hex);
	char *out = malloc(hl / 2 + 1);

	if (hl % 2) {
		note_add(n, "case file: odd number of hex digits");
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < hl / 2; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
			note_add(n, "case file: bad hex at %zu", 2 * i);
			free(out);
			return NULL;
		}
		out[i] = (char)b;
	}
	out[hl / 2] = '\0';
	*len = hl / 2;
	return out;
}

char *tl_body(const json_t *c, const json_t *bases, bool ndjson, size_t *len,
	      struct note *n)
{
	const json_t *v;

	if ((v = json_object_get(c, "body")) != NULL) {
		char *s;

		*len = json_string_length(v);
		s = malloc(*len + 1);
		memcpy(s, json_string_value(v), *len);
		s[*len] = '\0';
		return s;
	}
	if ((v = json_object_get(c, "body_hex")) != NULL)
		return from_hex(json_string_value(v), len, n);
	if ((v = json_object_get(c, "events")) != NULL) {
		json_t *arr = json_array();
		char *s = NULL;

		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *ev =
			    build_event(json_array_get(v, i), bases, n);

			if (!ev) {
				json_decref(arr);
				return NULL;
			}
			json_array_append_new(arr, ev);
		}
		if (!ndjson) {
			s = dump(arr, len);
		} else {
			/* One line per event, the lines joined by "\n". */
			size_t total = 0;

			s = malloc(1);
			s[0] = '\0';
			for (size_t i = 0; i < json_array_size(arr); i++) {
				size_t l;
				char *line = dump(json_array_get(arr, i), &l);

				s = realloc(s, total + l + 2);
				memcpy(s + total, line, l);
				total += l;
				s[total++] = '\n';
				s[total] = '\0';
				free(line);
			}
			*len = total;
		}
		json_decref(arr);
		return s;
	}
	v = json_object_get(c, "event");
	if (!v && json_object_get(c, "base"))
		v = c;
	if (v) {
		json_t *ev = build_event(v, bases, n);
		char *s;

		if (!ev)
			return NULL;
		s = dump(ev, len);
		json_decref(ev);
		return s;
	}
	note_add(n, "case file: the case has no body");
	return NULL;
}

/* Length of the valid UTF-8 sequence at p, or 0 (a test-side copy). */
static size_t seq_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		len = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		len = 3;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xE0)
		lo = 0xA0;
	if (p[0] == 0xED)
		hi = 0x9F;
	if (p[0] == 0xF0)
		lo = 0x90;
	if (p[0] == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

bool tl_clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t l = seq_len(p);

		if (l == 0 || *p < 0x20 || *p == 0x7F)
			return false;
		p += l;
	}
	return true;
}

static bool has(const json_t *c, const char *key)
{
	return json_object_get(c, key) != NULL;
}

static long integer(const json_t *c, const char *key)
{
	return (long)json_integer_value(json_object_get(c, key));
}

void tl_expect(const json_t *c, int rc, const struct ev_error *err,
	       struct note *n)
{
	long want_status = integer(c, "expect_status");
	const json_t *contains = json_object_get(c, "expect_detail_contains");

	if (!has(c, "expect_status")) {
		note_add(n, "case file: no expect_status");
		return;
	}
	if (want_status == 0) {
		if (rc != 0)
			note_add(n,
				 "expected success, got %d %s at index %ld "
				 "field \"%s\": %s",
				 err->status, err->code, err->index, err->field,
				 err->detail);
		return;
	}
	if (rc >= 0) {
		note_add(n, "expected %ld %s, got success", want_status,
			 tl_str(c, "expect_code", "?"));
		return;
	}
	if (err->status != want_status)
		note_add(n, "status: expected %ld, got %d (%s)", want_status,
			 err->status, err->detail);
	if (!err->code || strcmp(err->code, tl_str(c, "expect_code", "")))
		note_add(n, "code: expected \"%s\", got \"%s\"",
			 tl_str(c, "expect_code", ""),
			 err->code ? err->code : "(null)");
	if (!has(c, "expect_code") || !has(c, "expect_index") ||
	    !has(c, "expect_field"))
		note_add(n, "case file: an error case needs expect_code, "
			    "expect_index and expect_field");
	if (has(c, "expect_index") && err->index != integer(c, "expect_index"))
		note_add(n, "index: expected %ld, got %ld",
			 integer(c, "expect_index"), err->index);
	if (has(c, "expect_field") &&
	    strcmp(err->field, tl_str(c, "expect_field", "")))
		note_add(n, "field: expected \"%s\", got \"%s\" (%s)",
			 tl_str(c, "expect_field", ""), err->field,
			 err->detail);
	if (has(c, "expect_line") && err->line != integer(c, "expect_line"))
		note_add(n, "line: expected %ld, got %ld",
			 integer(c, "expect_line"), err->line);
	if (has(c, "expect_column") &&
	    err->column != integer(c, "expect_column"))
		note_add(n, "column: expected %ld, got %ld (%s)",
			 integer(c, "expect_column"), err->column, err->detail);
	for (size_t i = 0; i < json_array_size(contains); i++) {
		const char *s = json_string_value(json_array_get(contains, i));

		if (!strstr(err->detail, s))
			note_add(n,
				 "detail: expected it to contain <%s>, got "
				 "<%s>",
				 s, err->detail);
	}

	/* What every error must satisfy, whatever the case says. */
	if (strlen(err->detail) < 10 || strlen(err->detail) > 255 ||
	    !tl_clean_text(err->detail))
		note_add(n, "detail is empty, too long or not clean text: <%s>",
			 err->detail);
	if (!tl_clean_text(err->field))
		note_add(n, "field is not clean text");
	if (err->status == 400 && (err->line < 1 || err->column < 1))
		note_add(n, "a 400 needs a line and a column, got %ld:%ld",
			 err->line, err->column);
	if (err->status != 400 && (err->line != 0 || err->column != 0))
		note_add(n, "only a 400 has a line and a column, got %ld:%ld",
			 err->line, err->column);
	if (err->status != 422 && (err->index != -1 || err->field[0]))
		note_add(n,
			 "a %d is not about an event, got index %ld field "
			 "\"%s\"",
			 err->status, err->index, err->field);
}
