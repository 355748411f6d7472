#include "idset.h"

#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int idset_parse(struct idset *s, const char *list)
{
	size_t cap = 1, n = 0;
	const char *p;

	s->ids = NULL;
	s->n = 0;
	for (p = list; *p; p++)
		cap += *p == ',';
	if (!(s->ids = calloc(cap, sizeof(*s->ids))))
		return -1;
	for (p = list;; p++) {
		size_t len = strcspn(p, ",");

		if (len && !(s->ids[n++] = strndup(p, len))) {
			s->n = n;
			idset_free(s);
			return -1;
		}
		p += len;
		if (!*p)
			break;
	}
	qsort(s->ids, n, sizeof(*s->ids), compare);
	/* A duplicate would be harmless for lookups; dropping it keeps the
	 * set a set. */
	s->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (s->n && strcmp(s->ids[s->n - 1], s->ids[i]) == 0)
			free(s->ids[i]);
		else
			s->ids[s->n++] = s->ids[i];
	}
	return 0;
}

bool idset_has(const struct idset *s, const char *id)
{
	return s->n &&
	       bsearch(&id, s->ids, s->n, sizeof(*s->ids), compare) != NULL;
}

void idset_free(struct idset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
	s->ids = NULL;
	s->n = 0;
}
