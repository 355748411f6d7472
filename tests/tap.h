/*
 * tests/tap.h - TAP output for the C test programs: one "ok"/"not ok" line
 * per case, the reasons of a failure as "#" lines, then the plan.
 */
#ifndef KENDALI_TAP_H
#define KENDALI_TAP_H

#include <jansson.h>
#include <stddef.h>

struct tap {
	int n, failed;
	int todo; /* failing cases marked as a known bug (tap_todo) */
};

/* What went wrong in one case, one line per mismatch. */
struct note {
	char s[16384];
	size_t len;
	int lines;
};

/*
 * Adds a line to the note.  Past NOTE_MAX_LINES lines a note only counts,
 * so that one broken counter does not bury the first difference.
 */
#define NOTE_MAX_LINES 40
void note_add(struct note *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports one case: "ok" when the note is empty, else its lines. */
void tap_case(struct tap *t, const char *name, const struct note *n);

/*
 * Reports a case that shows a known bug of the code under test, not yet
 * fixed, with TAP's TODO directive; why says which bug.  Its failure does not
 * fail the program (meson counts an expected failure).  Its pass does, as an
 * unexpected pass: the bug is gone, and the mark must be taken off.
 */
void tap_todo(struct tap *t, const char *name, const struct note *n,
	      const char *why);

/*
 * The "cases" array of a JSON cases file read with json_load_file's flags;
 * *root holds the whole file (json_decref it when done).  A file missing,
 * unreadable or without cases is a broken test, never a pass: NULL, after
 * a "Bail out!" line.
 */
json_t *tap_load_cases(const char *path, size_t flags, json_t **root);

/* A kind of case of a data-driven test, and the function that checks one. */
struct tap_kind {
	const char *kind;
	void (*run)(const json_t *c, struct note *n);
};

/* Reports each case through the function of its "kind", titled
 * "<kind>: <name>"; an unknown kind fails its case. */
void tap_run_kinds(struct tap *t, const json_t *cases,
		   const struct tap_kind *kinds, size_t nkinds);

/* Prints the plan and the summary; returns the exit status. */
int tap_done(const struct tap *t);

#endif
