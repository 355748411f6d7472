/*
 * tests/tap.c - TAP output for the C test programs.
 */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void note_add(struct note *n, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (++n->lines > NOTE_MAX_LINES) {
		if (n->lines == NOTE_MAX_LINES + 1)
			note_add(n, "(further differences not shown)");
		return;
	}
	if (n->len >= sizeof n->s - 1)
		return;
	va_start(ap, fmt);
	w = vsnprintf(n->s + n->len, sizeof n->s - n->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		n->len += (size_t)w;
	if (n->len >= sizeof n->s - 1) {
		n->len = sizeof n->s - 1;
		return;
	}
	n->s[n->len++] = '\n';
	n->s[n->len] = '\0';
}

void tap_case(struct tap *t, const char *name, const struct note *n)
{
	t->n++;
	if (n->len == 0) {
		printf("ok %d - %s\n", t->n, name);
		return;
	}
	t->failed++;
	printf("not ok %d - %s\n", t->n, name);
	for (const char *p = n->s; *p;) {
		const char *e = strchr(p, '\n');
		int len = e ? (int)(e - p) : (int)strlen(p);

		printf("#   %.*s\n", len, p);
		p += len + (e != NULL);
	}
	fflush(stdout);
}

void tap_todo(struct tap *t, const char *name, const struct note *n,
	      const char *why)
{
	char title[512];

	snprintf(title, sizeof(title), "%s # TODO %s", name, why);
	if (n->len != 0) {
		/* The expected failure: counted apart, not as a failure. */
		tap_case(t, title, n);
		t->failed--;
		t->todo++;
		return;
	}
	/* A pass is news: the bug is gone and the mark must go too.  The
	 * case is printed as "ok" (meson: an unexpected pass) and counted as
	 * a failure, so that the program fails as well. */
	t->n++;
	t->failed++;
	printf("ok %d - %s\n#   passes now: take its TODO mark off\n", t->n,
	       title);
	fflush(stdout);
}

int tap_done(const struct tap *t)
{
	printf("1..%d\n", t->n);
	printf("# %d tests, %d passed, %d failed", t->n,
	       t->n - t->failed - t->todo, t->failed);
	if (t->todo)
		printf(", %d known bugs (TODO)", t->todo);
	printf("\n");
	return t->failed ? 1 : 0;
}

json_t *tap_load_cases(const char *path, size_t flags, json_t **root)
{
	json_error_t err;
	json_t *cases;

	*root = json_load_file(path, flags, &err);
	cases = json_object_get(*root, "cases");
	if (json_is_array(cases) && json_array_size(cases) > 0)
		return cases;
	printf("Bail out! no cases in %s (%s)\n", path,
	       !*root		      ? err.text
	       : json_is_array(cases) ? "\"cases\" is empty"
				      : "no \"cases\" array");
	json_decref(*root);
	*root = NULL;
	return NULL;
}

void tap_run_kinds(struct tap *t, const json_t *cases,
		   const struct tap_kind *kinds, size_t nkinds)
{
	size_t i;
	json_t *c;

	json_array_foreach ((json_t *)cases, i, c) {
		const char *kind =
		    json_string_value(json_object_get(c, "kind"));
		const char *name =
		    json_string_value(json_object_get(c, "name"));
		char title[200];
		struct note n = {0};
		size_t k = 0;

		while (k < nkinds &&
		       !(kind && strcmp(kind, kinds[k].kind) == 0))
			k++;
		if (k == nkinds)
			note_add(&n, "unknown kind %s", kind ? kind : "(none)");
		else
			kinds[k].run(c, &n);
		snprintf(title, sizeof(title), "%s: %s", kind ? kind : "?",
			 name ? name : "?");
		tap_case(t, title, &n);
	}
}
