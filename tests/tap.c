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
