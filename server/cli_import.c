/*
 * server/cli_import.c - `kendali tenant import ID DIR`: a regency's or
 * city's reference data (docs/reference-data.md) from the files of DIR:
 * districts.json (its kecamatan and their Kemendagri codes), agencies.json
 * (its perangkat daerah) and, when present, gauges.json (its river gauges).
 *
 * Every file is read and checked before the database is touched.  Then one
 * transaction replaces the tenant's districts and agencies, upserts its
 * gauges into the sensor registry with the rules of PUT /api/v1/sensors/{id}
 * (ev_parse_sensor_def) and records the set's version, or changes nothing.
 * A refusal names the file, the entry and the field (exit code 2); the
 * database's refusal is exit code 1.
 */
#include "cli.h"

#include "event.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The format this kendali reads, and the limits of docs/reference-data.md. */
#define REF_FORMAT "kendali-reference/1"
#define REF_FORMAT_STEM "kendali-reference/"
#define REF_FILE_MAX (1024 * 1024)
#define REF_DIR_MAX 1024
#define REF_DISTRICTS_MAX 500
#define REF_AGENCIES_MAX 500
#define REF_GAUGES_MAX 1000
#define REF_NAME_MAX 200 /* region, agency and source names */
#define REF_NOTE_MAX 2000
#define REF_SOURCE_VERSION_MAX 64
#define REF_LICENCE_MAX 64
#define REF_URL_MAX 500
#define REF_AGENCY_CODE_MAX EV_AGENCY_MAX

/* The room for a value a message shows (shown()). */
#define SHOWN 256

enum ref_kind { REF_DISTRICTS, REF_AGENCIES, REF_GAUGES, REF_KINDS };

static const char *const file_names[REF_KINDS] = {
    "districts.json", "agencies.json", "gauges.json"};
/* The member holding each file's entries. */
static const char *const list_names[REF_KINDS] = {"districts", "agencies",
						  "gauges"};
static const size_t list_min[REF_KINDS] = {1, 1, 0};
static const size_t list_max[REF_KINDS] = {REF_DISTRICTS_MAX, REF_AGENCIES_MAX,
					   REF_GAUGES_MAX};

/* A set of files, read and checked. */
struct ref_set {
	char path[REF_KINDS][REF_DIR_MAX + 32]; /* as the messages name them */
	json_t *root[REF_KINDS];		/* NULL: gauges.json absent */
	int version;
	const char *region_code, *region_name; /* of districts.json */
	/* The rows to store, as JSON for jsonb_to_recordset. */
	json_t *districts, *agencies, *gauges;
	json_t *sources; /* {"districts": {...}, ...} */
	size_t gauges_changed;
};

/* ---- refusals ---- */

/*
 * Says why the file's entry or field at path ("" for the file as a whole)
 * is refused.  Returns 2, the exit code.
 */
static int refuse(const char *file, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(const char *file, const char *path, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kendali: %s: ", file);
	if (path && path[0])
		fprintf(stderr, "%s: ", path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/*
 * v as a message shows it: a short string or number as JSON (control
 * characters escaped), anything else by its kind.
 */
static const char *shown(char *buf, size_t len, const json_t *v)
{
	char *s;

	/* 40 bytes, escaped as JSON, fit in SHOWN. */
	if (json_is_string(v) && json_string_length(v) > 40) {
		snprintf(buf, len, "a string of %zu bytes",
			 json_string_length(v));
		return buf;
	}
	if (json_is_object(v) || json_is_array(v)) {
		snprintf(buf, len, "%s",
			 json_is_object(v) ? "an object" : "an array");
		return buf;
	}
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	snprintf(buf, len, "%s", s ? s : "a value");
	free(s);
	return buf;
}

/*
 * "prefix.key", or key alone without a prefix, as a message shows it: a
 * member's name may hold anything, so control characters become '?' and
 * a name too long is cut between two characters.
 */
static const char *path_of(char *buf, size_t len, const char *prefix,
			   const char *key)
{
	int wrote = prefix && prefix[0]
			? snprintf(buf, len, "%s.%s", prefix, key)
			: snprintf(buf, len, "%s", key);
	size_t n = strlen(buf), i = n;

	if (wrote >= 0 && (size_t)wrote >= len && n > 0) {
		unsigned char c;

		while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
			i--;
		c = i > 0 ? (unsigned char)buf[i - 1] : 0;
		/* The lead byte at i - 1 begins a character of this many
		 * bytes; a shorter tail was cut. */
		if (i > 0 && c >= 0xC0 &&
		    n - (i - 1) < (c >= 0xF0   ? 4u
				   : c >= 0xE0 ? 3u
					       : 2u))
			buf[i - 1] = '\0';
	}
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '?';
	return buf;
}

/* ---- members ---- */

/* A member; NULL when absent or null (null means "not given"). */
static json_t *member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/* Refuses any member of obj (at path) that is not among names. */
static int only_members(const char *file, const char *path, const json_t *obj,
			const char *const *names, const char *list)
{
	const char *key;
	json_t *v;

	json_object_foreach ((json_t *)obj, key, v) {
		const char *const *n = names;
		char pb[128], got[SHOWN];
		json_t *k;

		while (*n && strcmp(*n, key) != 0)
			n++;
		if (*n)
			continue;
		k = json_string(key);
		shown(got, sizeof(got), k);
		json_decref(k);
		return refuse(file, path_of(pb, sizeof(pb), path, key),
			      "%s is not a member of %s, which takes %s", got,
			      path && path[0] ? path : "the file", list);
	}
	return 0;
}

/*
 * A string member of 1..max bytes without control characters; *out NULL
 * when an optional one is absent.
 */
static int get_text(const char *file, const char *prefix, const json_t *obj,
		    const char *key, size_t max, bool required,
		    const char **out)
{
	json_t *v = member(obj, key);
	char pb[128], got[SHOWN];
	const char *path = path_of(pb, sizeof(pb), prefix, key);
	size_t n;
	int c;

	*out = NULL;
	if (!v)
		return required ? refuse(file, path,
					 "missing; give a string of 1 to %zu "
					 "bytes",
					 max)
				: 0;
	if (!json_is_string(v))
		return refuse(file, path,
			      "must be a string of 1 to %zu bytes; got %s", max,
			      shown(got, sizeof(got), v));
	n = json_string_length(v);
	if (n == 0 || n > max)
		return refuse(file, path,
			      "must be a string of 1 to %zu bytes; got %zu "
			      "bytes",
			      max, n);
	if ((c = ev_control_char(json_string_value(v), n)) >= 0)
		return refuse(file, path,
			      "contains the control character U+%04X; remove "
			      "it",
			      (unsigned)c);
	*out = json_string_value(v);
	return 0;
}

/* A required number in [lo, hi]. */
static int get_number(const char *file, const char *prefix, const json_t *obj,
		      const char *key, double lo, double hi, double *out)
{
	json_t *v = member(obj, key);
	char pb[128], got[SHOWN];
	const char *path = path_of(pb, sizeof(pb), prefix, key);

	if (!v)
		return refuse(file, path,
			      "missing; give a number from %g to %g", lo, hi);
	if (!json_is_number(v) || json_number_value(v) < lo ||
	    json_number_value(v) > hi)
		return refuse(file, path,
			      "must be a number from %g to %g; got %s", lo, hi,
			      shown(got, sizeof(got), v));
	*out = json_number_value(v);
	return 0;
}

/* An optional "location": {"lat", "lon"}, the rule of events' locations.
 * *has is false when it is absent. */
static int get_location(const char *file, const char *prefix, const json_t *obj,
			bool *has, double *lat, double *lon)
{
	static const char *const names[] = {"lat", "lon", NULL};
	json_t *v = member(obj, "location");
	char pb[128], got[SHOWN];
	const char *path = path_of(pb, sizeof(pb), prefix, "location");
	int rc;

	*has = false;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return refuse(file, path,
			      "must be an object like {\"lat\": -6.98, "
			      "\"lon\": 110.41}; got %s",
			      shown(got, sizeof(got), v));
	if ((rc = only_members(file, path, v, names, "lat and lon")) ||
	    (rc = get_number(file, path, v, "lat", -90, 90, lat)) ||
	    (rc = get_number(file, path, v, "lon", -180, 180, lon)))
		return rc;
	*has = true;
	return 0;
}

/* The entries' "seen" sets: a value already in seen (at another entry's
 * index) is refused; otherwise it is added with this index. */
static int unique(const char *file, const char *path, json_t *seen,
		  const char *value, const char *list, size_t i,
		  const char *what)
{
	json_t *was = json_object_get(seen, value), *s;
	char got[SHOWN];

	if (was) {
		s = json_string(value);
		shown(got, sizeof(got), s);
		json_decref(s);
		return refuse(file, path, "%s is already the %s of %s[%lld]",
			      got, what, list,
			      (long long)json_integer_value(was));
	}
	json_object_set_new(seen, value, json_integer((json_int_t)i));
	return 0;
}

/* ---- files ---- */

/*
 * Reads the file at path into *root: at most REF_FILE_MAX bytes of JSON, an
 * object.  *root stays NULL for an absent file when optional.
 */
static int read_file(const char *path, bool optional, json_t **root)
{
	struct stat st;
	json_error_t je;
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd;

	*root = NULL;
	/* Not blocking on a FIFO, which is then refused. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT && optional)
		return 0;
	if (fd < 0)
		return refuse(path, "", "cannot open it: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return refuse(path, "", "not a regular file");
	}
	if (st.st_size > REF_FILE_MAX) {
		close(fd);
		return refuse(path, "",
			      "it is %lld bytes, over the limit of %d bytes "
			      "of a reference file",
			      (long long)st.st_size, REF_FILE_MAX);
	}
	if (!(buf = malloc(REF_FILE_MAX + 1))) {
		close(fd);
		fprintf(stderr, "kendali: out of memory\n");
		return 1;
	}
	/* One byte more than the limit tells a file that grew. */
	while (len <= REF_FILE_MAX &&
	       (n = read(fd, buf + len, REF_FILE_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			close(fd);
			return refuse(path, "", "cannot read it: %s",
				      strerror(e));
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > REF_FILE_MAX) {
		free(buf);
		return refuse(path, "",
			      "over the limit of %d bytes of a reference file",
			      REF_FILE_MAX);
	}
	*root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (!*root) {
		/* jansson's text quotes the input near the error. */
		for (char *p = je.text; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7F)
				*p = '?';
		return refuse(path, "",
			      "not valid JSON at line %d, column %d: %s",
			      je.line, je.column, je.text);
	}
	if (!json_is_object(*root)) {
		char got[SHOWN];

		refuse(path, "", "must be a JSON object; it is %s",
		       shown(got, sizeof(got), *root));
		json_decref(*root);
		*root = NULL;
		return 2;
	}
	return 0;
}

/* Refuses a .json file of dir that is not one of file_names (a misspelt
 * gauges file would be left out unseen). */
static int stray_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return refuse(dir, "", "cannot open the directory: %s",
			      strerror(errno));
	while (!rc && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char name[128];
		int k = 0;

		if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		while (k < REF_KINDS && strcmp(e->d_name, file_names[k]) != 0)
			k++;
		if (k == REF_KINDS)
			rc = refuse(
			    dir, "",
			    "%s is not a reference file: a directory "
			    "holds districts.json, agencies.json and "
			    "gauges.json only",
			    path_of(name, sizeof(name), NULL, e->d_name));
	}
	closedir(d);
	return rc;
}

/* ---- the members every file has ---- */

static int check_format(const char *file, const json_t *root)
{
	json_t *v = json_object_get(root, "format");
	const char *s = json_string_value(v);
	char got[SHOWN];

	if (!v)
		return refuse(file, "format",
			      "missing; a reference file begins with "
			      "\"format\": \"" REF_FORMAT "\"");
	if (s && strcmp(s, REF_FORMAT) == 0)
		return 0;
	if (s && strncmp(s, REF_FORMAT_STEM, strlen(REF_FORMAT_STEM)) == 0)
		return refuse(file, "format",
			      "%s is not a version of the format this kendali "
			      "reads (" REF_FORMAT ")",
			      shown(got, sizeof(got), v));
	return refuse(file, "format", "must be \"" REF_FORMAT "\"; got %s",
		      shown(got, sizeof(got), v));
}

static int get_version(const char *file, const json_t *root, int *out)
{
	json_t *v = json_object_get(root, "version");
	char got[SHOWN];

	if (!v)
		return refuse(file, "version",
			      "missing; give the set's version, a whole "
			      "number from 1 to %d",
			      INT_MAX);
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > INT_MAX)
		return refuse(file, "version",
			      "must be a whole number from 1 to %d; got %s",
			      INT_MAX, shown(got, sizeof(got), v));
	*out = (int)json_integer_value(v);
	return 0;
}

/* Whether s is n groups of two digits joined by '.'. */
static bool code_form(const char *s, int groups)
{
	size_t n = strlen(s);

	if (n != (size_t)groups * 3 - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (i % 3 == 2 ? s[i] != '.' : (s[i] < '0' || s[i] > '9'))
			return false;
	return true;
}

static int get_region(const char *file, const json_t *root, const char **code,
		      const char **name)
{
	static const char *const names[] = {"code", "name", NULL};
	json_t *v = member(root, "region");
	char got[SHOWN];
	int rc;

	if (!v)
		return refuse(file, "region",
			      "missing; give the regency or city, like "
			      "{\"code\": \"33.25\", \"name\": \"Kabupaten "
			      "Batang\"}");
	if (!json_is_object(v))
		return refuse(file, "region",
			      "must be an object like {\"code\": \"33.25\", "
			      "\"name\": \"Kabupaten Batang\"}; got %s",
			      shown(got, sizeof(got), v));
	if ((rc = only_members(file, "region", v, names, "code and name")) ||
	    (rc = get_text(file, "region", v, "code", 5, true, code)) ||
	    (rc =
		 get_text(file, "region", v, "name", REF_NAME_MAX, true, name)))
		return rc;
	if (!code_form(*code, 2))
		return refuse(
		    file, "region.code",
		    "must be the Kemendagri code of a regency or "
		    "city, two digits, a dot and two digits, like "
		    "\"33.25\"; got %s",
		    shown(got, sizeof(got), json_object_get(v, "code")));
	return 0;
}

static int get_source(const char *file, const json_t *root, json_t **out)
{
	static const char *const names[] = {"name", "version", "licence",
					    "url",  "note",    NULL};
	static const size_t max[] = {REF_NAME_MAX, REF_SOURCE_VERSION_MAX,
				     REF_LICENCE_MAX, REF_URL_MAX,
				     REF_NOTE_MAX};
	json_t *v = member(root, "source");
	const char *s;
	char got[SHOWN];
	int rc;

	if (!v)
		return refuse(file, "source",
			      "missing; say where the data comes from, like "
			      "{\"name\": \"idn-area-data\", \"version\": "
			      "\"4.0.1\", \"licence\": \"ODbL-1.0\"}");
	if (!json_is_object(v))
		return refuse(file, "source", "must be an object; got %s",
			      shown(got, sizeof(got), v));
	if ((rc = only_members(file, "source", v, names,
			       "name, version, licence, url and note")))
		return rc;
	*out = json_object();
	for (int i = 0; names[i]; i++) {
		if ((rc = get_text(file, "source", v, names[i], max[i], i == 0,
				   &s)))
			return rc;
		if (s)
			json_object_set_new(*out, names[i], json_string(s));
	}
	return 0;
}

/*
 * The members every file has (format, version, region, source, note) and
 * its list of entries, into *list.  A set's files agree on version and
 * region: those of districts.json are the set's.
 */
static int check_header(struct ref_set *s, int k, json_t **list)
{
	const char *file = s->path[k], *note, *code = NULL, *name = NULL;
	const char *const names[] = {"format", "version", "region",
				     "source", "note",	  list_names[k],
				     NULL};
	json_t *root = s->root[k], *source = NULL;
	char what[128], got[SHOWN];
	int rc, version = 0;

	if ((rc = check_format(file, root)))
		return rc;
	snprintf(what, sizeof(what),
		 "format, version, region, source, note and %s", list_names[k]);
	if ((rc = only_members(file, "", root, names, what)) ||
	    (rc = get_version(file, root, &version)) ||
	    (rc = get_region(file, root, &code, &name)) ||
	    (rc = get_text(file, NULL, root, "note", REF_NOTE_MAX, false,
			   &note)) ||
	    (rc = get_source(file, root, &source))) {
		json_decref(source);
		return rc;
	}
	json_object_set_new(s->sources, list_names[k], source);
	if (k == REF_DISTRICTS) {
		s->version = version;
		s->region_code = code;
		s->region_name = name;
	} else if (version != s->version) {
		return refuse(file, "version",
			      "%d, but %s is version %d: the files of a set "
			      "have one version",
			      version, file_names[REF_DISTRICTS], s->version);
	} else if (strcmp(code, s->region_code) != 0 ||
		   strcmp(name, s->region_name) != 0) {
		return refuse(file, "region",
			      "%s %s is not the region of %s (%s %s)", code,
			      name, file_names[REF_DISTRICTS], s->region_code,
			      s->region_name);
	}

	*list = member(root, list_names[k]);
	if (!*list)
		return refuse(file, list_names[k],
			      "missing; give an array of %zu to %zu entries",
			      list_min[k], list_max[k]);
	if (!json_is_array(*list))
		return refuse(file, list_names[k],
			      "must be an array of %zu to %zu entries; got %s",
			      list_min[k], list_max[k],
			      shown(got, sizeof(got), *list));
	if (json_array_size(*list) < list_min[k] ||
	    json_array_size(*list) > list_max[k])
		return refuse(file, list_names[k],
			      "must be an array of %zu to %zu entries; got %zu",
			      list_min[k], list_max[k], json_array_size(*list));
	return 0;
}

/* ---- entries ---- */

/* Entry i of list as an object, its path ("districts[3]") into path. */
static int entry(const char *file, const json_t *list, const char *name,
		 size_t i, char *path, size_t len, json_t **out)
{
	char got[SHOWN];

	snprintf(path, len, "%s[%zu]", name, i);
	*out = json_array_get(list, i);
	if (!json_is_object(*out))
		return refuse(file, path, "must be an object; got %s",
			      shown(got, sizeof(got), *out));
	return 0;
}

static int check_districts(struct ref_set *s, const json_t *list, json_t *names)
{
	static const char *const members[] = {"code", "name", "location", NULL};
	const char *file = s->path[REF_DISTRICTS];
	json_t *codes = json_object(), *row;
	int rc = 0;

	for (size_t i = 0; !rc && i < json_array_size(list); i++) {
		const char *code, *name;
		char path[64], pb[128], got[SHOWN];
		double lat = 0, lon = 0;
		bool has;
		json_t *e;

		if ((rc = entry(file, list, "districts", i, path, sizeof(path),
				&e)) ||
		    (rc = only_members(file, path, e, members,
				       "code, name and location")) ||
		    (rc = get_text(file, path, e, "code", 8, true, &code)) ||
		    (rc = get_text(file, path, e, "name", EV_DISTRICT_MAX, true,
				   &name)) ||
		    (rc = get_location(file, path, e, &has, &lat, &lon)))
			break;
		path_of(pb, sizeof(pb), path, "code");
		if (!code_form(code, 3)) {
			rc = refuse(file, pb,
				    "must be a kecamatan's Kemendagri code, "
				    "like \"%s.01\"; got %s",
				    s->region_code,
				    shown(got, sizeof(got),
					  json_object_get(e, "code")));
			break;
		}
		if (strncmp(code, s->region_code, 5) != 0) {
			rc = refuse(file, pb,
				    "%s is not a kecamatan of region %s (%s): "
				    "the codes of its kecamatan begin with "
				    "\"%s.\"",
				    code, s->region_code, s->region_name,
				    s->region_code);
			break;
		}
		if ((rc = unique(file, pb, codes, code, "districts", i,
				 "code")) ||
		    (rc = unique(file, path_of(pb, sizeof(pb), path, "name"),
				 names, name, "districts", i, "name")))
			break;
		row = json_pack("{s:s, s:s, s:o, s:o}", "code", code, "name",
				name, "lat", has ? json_real(lat) : json_null(),
				"lon", has ? json_real(lon) : json_null());
		json_array_append_new(s->districts, row);
	}
	json_decref(codes);
	return rc;
}

/* Whether s is 1..REF_AGENCY_CODE_MAX of A-Z a-z 0-9 . _ - */
static bool agency_code_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= REF_AGENCY_CODE_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789._-") == n;
}

/* An agency's "handles": report categories, each once. */
static int get_handles(const char *file, const char *prefix, const json_t *e,
		       json_t **out)
{
	json_t *v = member(e, "handles"), *seen;
	int n = ev_category_count(EV_REPORT), rc = 0;
	char pb[128], got[SHOWN], names[256] = "";

	*out = json_array();
	if (!v)
		return 0;
	for (int c = 0; c < n; c++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", c ? ", " : "", ev_category_name(EV_REPORT, c));
	path_of(pb, sizeof(pb), prefix, "handles");
	if (!json_is_array(v) || json_array_size(v) > (size_t)n)
		return refuse(file, pb,
			      "must be an array of at most %d report "
			      "categories (%s); got %s",
			      n, names, shown(got, sizeof(got), v));
	seen = json_object();
	for (size_t i = 0; !rc && i < json_array_size(v); i++) {
		json_t *h = json_array_get(v, i);
		const char *name = json_string_value(h);
		char hp[160];
		int c = 0;

		snprintf(hp, sizeof(hp), "%s[%zu]", pb, i);
		while (name && c < n &&
		       strcmp(name, ev_category_name(EV_REPORT, c)) != 0)
			c++;
		if (!name || c == n)
			rc = refuse(file, hp,
				    "must be a report category (%s); got %s",
				    names, shown(got, sizeof(got), h));
		else if (!(rc =
			       unique(file, hp, seen, name, pb, i, "category")))
			json_array_append_new(*out, json_string(name));
	}
	json_decref(seen);
	return rc;
}

static int check_agencies(struct ref_set *s, const json_t *list)
{
	static const char *const members[] = {"code", "name", "handles", NULL};
	const char *file = s->path[REF_AGENCIES];
	json_t *codes = json_object(), *handles = NULL;
	int rc = 0;

	for (size_t i = 0; !rc && i < json_array_size(list); i++) {
		const char *code, *name;
		char path[64], pb[128], got[SHOWN],
		    upper[REF_AGENCY_CODE_MAX + 1];
		json_t *e;

		if ((rc = entry(file, list, "agencies", i, path, sizeof(path),
				&e)) ||
		    (rc = only_members(file, path, e, members,
				       "code, name and handles")) ||
		    (rc = get_text(file, path, e, "code", REF_AGENCY_CODE_MAX,
				   true, &code)) ||
		    (rc = get_text(file, path, e, "name", REF_NAME_MAX, true,
				   &name)))
			break;
		path_of(pb, sizeof(pb), path, "code");
		if (!agency_code_valid(code)) {
			rc = refuse(file, pb,
				    "must be 1 to %d letters, digits, '.', "
				    "'_' or '-', like \"DPUPR\"; got %s",
				    REF_AGENCY_CODE_MAX,
				    shown(got, sizeof(got),
					  json_object_get(e, "code")));
			break;
		}
		/* "DLH" and "dlh" would be one agency on a screen. */
		for (size_t j = 0; j <= strlen(code); j++)
			upper[j] = (code[j] >= 'a' && code[j] <= 'z')
				       ? (char)(code[j] - 'a' + 'A')
				       : code[j];
		if ((rc = unique(file, pb, codes, upper, "agencies", i,
				 "code (in any case)")) ||
		    (rc = get_handles(file, path, e, &handles)))
			break;
		json_array_append_new(
		    s->agencies, json_pack("{s:s, s:s, s:o}", "code", code,
					   "name", name, "handles", handles));
		handles = NULL;
	}
	json_decref(handles);
	json_decref(codes);
	return rc;
}

static json_t *real_or_null(double d)
{
	return isnan(d) ? json_null() : json_real(d);
}

/*
 * Gauges: each the body of PUT /api/v1/sensors/{sensor_id} with its
 * sensor_id, read by the same code under the same rules; a district named
 * must be one of districts.json.
 */
static int check_gauges(struct ref_set *s, const json_t *list,
			const json_t *district_names)
{
	static const char *const members[] = {
	    "sensor_id", "name",       "metric",	  "unit", "district",
	    "location",	 "thresholds", "offline_after_s", NULL};
	static const char *const loc[] = {"lat", "lon", NULL};
	const char *file = s->path[REF_GAUGES];
	json_t *ids = json_object();
	int rc = 0;

	for (size_t i = 0; !rc && i < json_array_size(list); i++) {
		struct ev_sensor_def def;
		struct ev_error err;
		char path[64], pb[128], got[SHOWN], *body;
		const char *id;
		json_t *e, *copy;

		if ((rc = entry(file, list, "gauges", i, path, sizeof(path),
				&e)) ||
		    (rc = only_members(file, path, e, members,
				       "sensor_id, name, metric, unit, "
				       "district, location, thresholds and "
				       "offline_after_s")) ||
		    (rc = get_text(file, path, e, "sensor_id", EV_SUBJECT_MAX,
				   true, &id)))
			break;
		if (!ev_subject_valid(id, strlen(id))) {
			rc = refuse(file,
				    path_of(pb, sizeof(pb), path, "sensor_id"),
				    "must be 1 to %d letters, digits, '.', "
				    "'_', ':' or '-'; got %s",
				    EV_SUBJECT_MAX,
				    shown(got, sizeof(got),
					  json_object_get(e, "sensor_id")));
			break;
		}
		if (json_is_object(member(e, "location")) &&
		    (rc = only_members(
			 file, path_of(pb, sizeof(pb), path, "location"),
			 member(e, "location"), loc, "lat and lon")))
			break;
		copy = json_copy(e);
		json_object_del(copy, "sensor_id");
		body = json_dumps(copy, JSON_COMPACT);
		json_decref(copy);
		if (!body) {
			fprintf(stderr, "kendali: out of memory\n");
			rc = 1;
			break;
		}
		if (ev_parse_sensor_def(id, body, strlen(body), &def, &err)) {
			free(body);
			rc = refuse(file,
				    err.field[0] ? path_of(pb, sizeof(pb), path,
							   err.field)
						 : path,
				    "%s", err.detail);
			break;
		}
		free(body);
		if ((rc = unique(file,
				 path_of(pb, sizeof(pb), path, "sensor_id"),
				 ids, id, "gauges", i, "sensor_id")))
			break;
		if (def.district[0] &&
		    !json_object_get(district_names, def.district)) {
			rc = refuse(file,
				    path_of(pb, sizeof(pb), path, "district"),
				    "%s is not the name of a district of %s",
				    shown(got, sizeof(got),
					  json_object_get(e, "district")),
				    file_names[REF_DISTRICTS]);
			break;
		}
		json_array_append_new(
		    s->gauges,
		    json_pack(
			"{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, "
			"s:o, s:i}",
			"sensor_id", def.sensor_id, "name", def.name, "metric",
			def.metric, "unit", def.unit, "district",
			def.district[0] ? json_string(def.district)
					: json_null(),
			"lat",
			def.has_location ? json_real(def.lat) : json_null(),
			"lon",
			def.has_location ? json_real(def.lon) : json_null(),
			"waspada", real_or_null(def.thresholds[0]), "siaga",
			real_or_null(def.thresholds[1]), "awas",
			real_or_null(def.thresholds[2]), "offline_after_s",
			def.offline_after_s));
	}
	json_decref(ids);
	return rc;
}

/* Reads and checks every file of dir into s.  Returns 0 or the exit code
 * (said why). */
static int read_set(const char *dir, struct ref_set *s)
{
	json_t *list, *names;
	size_t n = strlen(dir);
	int rc;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0 || n > REF_DIR_MAX) {
		fprintf(stderr,
			"kendali: DIR is a directory's path of 1 to %d "
			"bytes\n",
			REF_DIR_MAX);
		return 2;
	}
	if ((rc = stray_files(dir)))
		return rc;
	for (int k = 0; k < REF_KINDS; k++) {
		snprintf(s->path[k], sizeof(s->path[k]), "%.*s%s%s", (int)n,
			 dir, dir[n - 1] == '/' ? "" : "/", file_names[k]);
		if ((rc = read_file(s->path[k], k == REF_GAUGES, &s->root[k])))
			return rc;
	}
	s->districts = json_array();
	s->agencies = json_array();
	s->gauges = json_array();
	s->sources = json_object();
	names = json_object();
	rc = check_header(s, REF_DISTRICTS, &list);
	if (!rc)
		rc = check_districts(s, list, names);
	if (!rc && !(rc = check_header(s, REF_AGENCIES, &list)))
		rc = check_agencies(s, list);
	if (!rc && s->root[REF_GAUGES] &&
	    !(rc = check_header(s, REF_GAUGES, &list)))
		rc = check_gauges(s, list, names);
	json_decref(names);
	return rc;
}

static void free_set(struct ref_set *s)
{
	for (int k = 0; k < REF_KINDS; k++)
		json_decref(s->root[k]);
	json_decref(s->districts);
	json_decref(s->agencies);
	json_decref(s->gauges);
	json_decref(s->sources);
}

/* ---- the database ---- */

/* The tenant (locked against another import of it) and its set. */
static const char LOCK_SQL[] =
    "SELECT t.kind, r.version, r.region_code, r.region_name, r.sources,"
    " r.gauges"
    " FROM tenants t LEFT JOIN reference_sets r ON r.tenant = t.id"
    " WHERE t.id = $1 FOR NO KEY UPDATE OF t";

/* $1 tenant, $2 the rows: each statement counts the rows it changed. */
static const char DISTRICTS_DELETE_SQL[] =
    "DELETE FROM districts d WHERE d.tenant = $1 AND d.code NOT IN"
    " (SELECT x.code FROM jsonb_to_recordset($2::jsonb) AS x(code text))";
static const char DISTRICTS_UPSERT_SQL[] =
    "INSERT INTO districts (tenant, code, name, lat, lon)"
    " SELECT $1, x.code, x.name, x.lat, x.lon"
    " FROM jsonb_to_recordset($2::jsonb)"
    "  AS x(code text, name text, lat float8, lon float8)"
    " ON CONFLICT (tenant, code) DO UPDATE SET name = EXCLUDED.name,"
    " lat = EXCLUDED.lat, lon = EXCLUDED.lon"
    " WHERE (districts.name, districts.lat, districts.lon)"
    "  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.lat, EXCLUDED.lon)";
static const char AGENCIES_DELETE_SQL[] =
    "DELETE FROM agencies a WHERE a.tenant = $1 AND a.code NOT IN"
    " (SELECT x.code FROM jsonb_to_recordset($2::jsonb) AS x(code text))";
static const char AGENCIES_UPSERT_SQL[] =
    "INSERT INTO agencies (tenant, code, name, handles)"
    " SELECT $1, x.code, x.name, x.handles"
    " FROM jsonb_to_recordset($2::jsonb)"
    "  AS x(code text, name text, handles text[])"
    " ON CONFLICT (tenant, code) DO UPDATE SET name = EXCLUDED.name,"
    " handles = EXCLUDED.handles"
    " WHERE (agencies.name, agencies.handles)"
    "  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.handles)";
/* As PUT /api/v1/sensors/{id} stores one (store.c), changing updated_at
 * only when the definition changes. */
static const char GAUGES_UPSERT_SQL[] =
    "INSERT INTO sensors (tenant, sensor_id, name, metric, unit, district,"
    " lat, lon, waspada, siaga, awas, offline_after_s)"
    " SELECT $1, x.sensor_id, x.name, x.metric, x.unit, x.district, x.lat,"
    " x.lon, x.waspada, x.siaga, x.awas, x.offline_after_s"
    " FROM jsonb_to_recordset($2::jsonb) AS x(sensor_id text, name text,"
    "  metric text, unit text, district text, lat float8, lon float8,"
    "  waspada float8, siaga float8, awas float8, offline_after_s integer)"
    " ON CONFLICT (tenant, sensor_id) DO UPDATE SET"
    " name = EXCLUDED.name, metric = EXCLUDED.metric,"
    " unit = EXCLUDED.unit, district = EXCLUDED.district,"
    " lat = EXCLUDED.lat, lon = EXCLUDED.lon,"
    " waspada = EXCLUDED.waspada, siaga = EXCLUDED.siaga,"
    " awas = EXCLUDED.awas, offline_after_s = EXCLUDED.offline_after_s,"
    " updated_at = now()"
    " WHERE (sensors.name, sensors.metric, sensors.unit, sensors.district,"
    "  sensors.lat, sensors.lon, sensors.waspada, sensors.siaga,"
    "  sensors.awas, sensors.offline_after_s)"
    " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.metric, EXCLUDED.unit,"
    "  EXCLUDED.district, EXCLUDED.lat, EXCLUDED.lon, EXCLUDED.waspada,"
    "  EXCLUDED.siaga, EXCLUDED.awas, EXCLUDED.offline_after_s)";
/* $1 tenant, $2 version, $3 region code, $4 its name, $5 sources, $6 the
 * gauges. */
static const char SET_UPSERT_SQL[] =
    "INSERT INTO reference_sets (tenant, version, region_code, region_name,"
    " sources, gauges) VALUES ($1, $2::integer, $3, $4, $5::jsonb,"
    " $6::jsonb)"
    " ON CONFLICT (tenant) DO UPDATE SET version = EXCLUDED.version,"
    " region_name = EXCLUDED.region_name, sources = EXCLUDED.sources,"
    " gauges = EXCLUDED.gauges, imported_at = now()"
    " WHERE (reference_sets.version, reference_sets.region_name,"
    "  reference_sets.sources, reference_sets.gauges) IS DISTINCT FROM"
    " (EXCLUDED.version, EXCLUDED.region_name, EXCLUDED.sources,"
    "  EXCLUDED.gauges)";
static const char AUDIT_SQL[] =
    "INSERT INTO audit (tenant, actor, action, detail) VALUES ($1, $2,"
    " 'reference.import', jsonb_build_object('version', $3::integer,"
    " 'region', $4::text, 'districts', $5::integer, 'agencies',"
    " $6::integer, 'gauges', $7::integer))";

static int db_error(PGresult *r)
{
	fprintf(stderr, "kendali: %s", PQresultErrorMessage(r));
	PQclear(r);
	return 1;
}

/* Runs sql; adds the rows it changed to *changed (when not NULL).
 * Returns 0 or 1 (said). */
static int run(PGconn *conn, const char *sql, int n, const char *const *p,
	       long *changed)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		return db_error(r);
	if (changed)
		*changed += strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

/* Who imports, for the audit: "cli:" and the user running kendali. */
static void actor(char *buf, size_t len)
{
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name)
		snprintf(buf, len, "cli:%.64s", pw->pw_name);
	else
		snprintf(buf, len, "cli:uid %u", (unsigned)geteuid());
}

/* Whether the JSON text stored equals v. */
static bool same_json(const char *stored, const json_t *v)
{
	json_t *old = json_loads(stored, JSON_DECODE_ANY, NULL);
	bool same = old && json_equal(old, (json_t *)v);

	json_decref(old);
	return same;
}

/*
 * The set imported already has the version of s but other content (row 0
 * of LOCK_SQL's r): says which file differs.  Returns 2.
 */
static int same_version_differs(const char *tenant, const struct ref_set *s,
				PGresult *r, bool districts, bool agencies)
{
	json_t *sources = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
	int k = REF_DISTRICTS;
	const char *field = "districts";

	if (districts)
		;
	else if (agencies)
		k = REF_AGENCIES, field = "agencies";
	else if (strcmp(PQgetvalue(r, 0, 3), s->region_name) != 0)
		field = "region.name";
	else if (!same_json(PQgetvalue(r, 0, 5), s->gauges))
		k = REF_GAUGES, field = "gauges";
	else
		for (k = 0, field = "source"; k < REF_KINDS - 1; k++)
			if (!json_equal(
				json_object_get(sources, list_names[k]),
				json_object_get(s->sources, list_names[k])))
				break;
	json_decref(sources);
	return refuse(s->path[k], field,
		      "differs from version %d of %s's reference data, "
		      "imported already: give the changed set a higher "
		      "version",
		      s->version, tenant);
}

/*
 * Writes the set for tenant inside a transaction that is open.  Returns 0
 * with *done telling whether to commit (false: the set is imported already,
 * nothing changed), or the exit code (said why).
 */
static int write_set(PGconn *conn, const char *tenant, struct ref_set *s,
		     bool *done)
{
	char version[16], n_d[16], n_a[16], n_g[16], who[80];
	char *districts_rows = json_dumps(s->districts, JSON_COMPACT),
	     *agencies_rows = json_dumps(s->agencies, JSON_COMPACT),
	     *gauges_rows = json_dumps(s->gauges, JSON_COMPACT),
	     *sources = json_dumps(s->sources, JSON_COMPACT);
	const char *lock[1] = {tenant};
	const char *d[2] = {tenant, districts_rows};
	const char *a[2] = {tenant, agencies_rows};
	const char *g[2] = {tenant, gauges_rows};
	const char *sp[6] = {tenant,	     version, s->region_code,
			     s->region_name, sources, gauges_rows};
	const char *au[7] = {tenant, who, version, s->region_code,
			     n_d,    n_a, n_g};
	long districts = 0, agencies = 0, set = 0, gauges = 0;
	PGresult *r = NULL;
	int rc = 1, stored = 0;

	*done = false;
	snprintf(version, sizeof(version), "%d", s->version);
	snprintf(n_d, sizeof(n_d), "%zu", json_array_size(s->districts));
	snprintf(n_a, sizeof(n_a), "%zu", json_array_size(s->agencies));
	snprintf(n_g, sizeof(n_g), "%zu", json_array_size(s->gauges));
	actor(who, sizeof(who));
	if (!districts_rows || !agencies_rows || !gauges_rows || !sources) {
		fprintf(stderr, "kendali: out of memory\n");
		goto out;
	}
	r = PQexecParams(conn, LOCK_SQL, 1, NULL, lock, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = db_error(r);
		r = NULL;
		goto out;
	}
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "local") != 0) {
		fprintf(stderr, "kendali: %s is %s\n", tenant,
			PQntuples(r) ? "a province: it takes no reference data"
				     : "no longer a tenant");
		rc = 2;
		goto out;
	}
	if (!PQgetisnull(r, 0, 1)) {
		stored = atoi(PQgetvalue(r, 0, 1));
		if (strcmp(PQgetvalue(r, 0, 2), s->region_code) != 0) {
			rc = refuse(s->path[REF_DISTRICTS], "region.code",
				    "%s is not the region of %s's reference "
				    "data, %s (%s), and a tenant's region does "
				    "not change",
				    s->region_code, tenant, PQgetvalue(r, 0, 2),
				    PQgetvalue(r, 0, 3));
			goto out;
		}
		if (s->version < stored) {
			rc = refuse(s->path[REF_DISTRICTS], "version",
				    "%d is older than version %d of %s's "
				    "reference data, imported already",
				    s->version, stored, tenant);
			goto out;
		}
	}
	if (run(conn, DISTRICTS_DELETE_SQL, 2, d, &districts) ||
	    run(conn, DISTRICTS_UPSERT_SQL, 2, d, &districts) ||
	    run(conn, AGENCIES_DELETE_SQL, 2, a, &agencies) ||
	    run(conn, AGENCIES_UPSERT_SQL, 2, a, &agencies) ||
	    run(conn, SET_UPSERT_SQL, 6, sp, &set))
		goto out;
	if (stored == s->version) {
		/* The same version again changes nothing, the registry's
		 * gauges included: they may have changed since through the
		 * API.  The same version with other content is refused. */
		rc = districts || agencies || set
			 ? same_version_differs(tenant, s, r, districts,
						agencies)
			 : 0;
		goto out;
	}
	if (run(conn, GAUGES_UPSERT_SQL, 2, g, &gauges) ||
	    run(conn, AUDIT_SQL, 7, au, NULL))
		goto out;
	s->gauges_changed = (size_t)gauges;
	*done = true;
	rc = 0;
out:
	PQclear(r);
	free(districts_rows);
	free(agencies_rows);
	free(gauges_rows);
	free(sources);
	return rc;
}

int cli_tenant_import(PGconn *conn, const char *id, const char *dir)
{
	struct ref_set s;
	struct cli_tenant t;
	bool done;
	int rc;

	memset(&s, 0, sizeof(s));
	if ((rc = cli_tenant_pick(conn, id, &t)) != 0)
		return rc;
	if (t.province) {
		fprintf(stderr,
			"kendali: %s is a province: it takes no reference "
			"data; import each member's\n",
			t.id);
		return 2;
	}
	if ((rc = read_set(dir, &s)) != 0) {
		free_set(&s);
		return rc;
	}
	/* Servers read the tenant's kecamatan and gauges again once this
	 * commits (the notification goes with the commit). */
	const char *p[1] = {t.id};
	if ((rc = run(conn, "BEGIN", 0, NULL, NULL)) == 0 &&
	    (rc = write_set(conn, t.id, &s, &done)) == 0 && done &&
	    (rc = run(conn, "SELECT pg_notify('kendali_reference', $1)", 1, p,
		      NULL)) == 0)
		rc = run(conn, "COMMIT", 0, NULL, NULL);
	if (rc || !done)
		run(conn, "ROLLBACK", 0, NULL, NULL);
	if (rc == 0 && done) {
		printf("Imported version %d of the reference data of %s "
		       "(%s, %s): %zu districts, %zu agencies, %zu gauges.\n",
		       s.version, t.id, s.region_name, s.region_code,
		       json_array_size(s.districts),
		       json_array_size(s.agencies), json_array_size(s.gauges));
		if (s.gauges_changed)
			printf("%zu gauge(s) new or changed: running servers "
			       "read them now.\n",
			       s.gauges_changed);
	} else if (rc == 0) {
		printf("Version %d of the reference data of %s is imported "
		       "already: nothing changed.\n",
		       s.version, t.id);
	}
	free_set(&s);
	return rc;
}
