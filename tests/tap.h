/*
 * tests/tap.h - TAP output for the C test programs: one "ok"/"not ok" line
 * per case, the reasons of a failure as "#" lines, then the plan.
 */
#ifndef KENDALI_TAP_H
#define KENDALI_TAP_H

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

/* Prints the plan and the summary; returns the exit status. */
int tap_done(const struct tap *t);

#endif
