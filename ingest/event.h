/*
 * ingest/event.h - agencies' events: bytes in, typed events or a precise
 * error out.
 *
 * Pure code: no loop, socket or database.  Everything here is callable from a
 * unit test or a fuzzer with nothing but a buffer.  The rules are those of
 * the ingest contract (docs/api.md); rules that need the database (a sensor
 * must be registered, a key may post a type) are checked by the server.
 */
#ifndef KENDALI_INGEST_EVENT_H
#define KENDALI_INGEST_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_ID_MAX 128
#define EV_DISTRICT_MAX 64
#define EV_SUBJECT_MAX 64 /* call_id, ticket, sensor_id */
#define EV_AGENCY_MAX 32
#define EV_TITLE_MAX 200
#define EV_FUTURE_SKEW_US (5 * 60 * INT64_C(1000000))

enum ev_type { EV_CALL, EV_REPORT, EV_SENSOR, EV_TYPE_COUNT };

/*
 * Statuses are listed in lifecycle order: on a tie of occurred_at the status
 * with the greater value wins (the KPI catalogue's rule).
 */
enum ev_call_status {
	EV_CALL_RECEIVED,
	EV_CALL_ANSWERED,
	EV_CALL_ABANDONED,
	EV_CALL_CLOSED,
	EV_CALL_STATUS_COUNT
};

enum ev_report_status {
	EV_REPORT_RECEIVED,
	EV_REPORT_DISPATCHED,
	EV_REPORT_IN_PROGRESS,
	EV_REPORT_RESOLVED,
	EV_REPORT_REJECTED,
	EV_REPORT_STATUS_COUNT
};

enum ev_call_category {
	EV_CC_EMERGENCY,
	EV_CC_FIRE,
	EV_CC_MEDICAL,
	EV_CC_POLICE,
	EV_CC_DISASTER,
	EV_CC_COMPLAINT,
	EV_CC_INFO,
	EV_CC_OTHER,
	EV_CC_COUNT
};

enum ev_report_category {
	EV_RC_FLOOD,
	EV_RC_ROAD,
	EV_RC_DRAINAGE,
	EV_RC_WASTE,
	EV_RC_STREETLIGHT,
	EV_RC_TRAFFIC,
	EV_RC_PUBLIC_ORDER,
	EV_RC_HEALTH,
	EV_RC_ADMINISTRATION,
	EV_RC_OTHER,
	EV_RC_COUNT
};

/*
 * One validated event.  Strings are NUL-terminated, valid UTF-8 without
 * control characters, and owned by the batch that holds the event.  Optional
 * strings are NULL when absent; category is -1 when absent.
 */
struct ev_event {
	const char *id;
	enum ev_type type;
	int64_t occurred_us; /* microseconds since the Unix epoch, UTC */
	const char *district;
	bool has_location;
	double lat, lon;

	const char *subject; /* call.call_id, report.ticket, sensor.sensor_id */
	int status;   /* enum ev_call_status / ev_report_status; 0 for sensor */
	int category; /* enum ev_call_category / ev_report_category or -1 */
	const char *agency; /* report only */
	const char *title;  /* report only */
	double value;	    /* sensor only, finite */
};

/* A parsed request: n events and the memory behind their strings. */
struct ev_batch {
	struct ev_event *events;
	size_t n;
	void *mem; /* private */
};

enum ev_format { EV_FORMAT_JSON, EV_FORMAT_NDJSON };

struct ev_limits {
	size_t max_events; /* per request; the contract says 1000 */
	int max_depth;	   /* JSON nesting of one event */
};

/*
 * Where a request went wrong, ready to become an RFC 9457 problem.  status is
 * the HTTP status, code the problem code of docs/api.md.  index is the 0-based
 * position of the offending event (-1 when not about one event), field its
 * dotted path ("report.status"; empty when not about a field), line and column
 * (1-based; 0 when unknown) locate a syntax error, detail says in a sentence
 * what is wrong and how to fix it.
 */
struct ev_error {
	int status;
	const char
	    *code; /* static string: "bad_json", "invalid_event", "too_large" */
	long index;
	char field[64];
	long line, column;
	char detail[256];
};

/*
 * Parses and validates a request body: one event object or an array of them
 * (EV_FORMAT_JSON), or one object per non-empty line (EV_FORMAT_NDJSON). now_us
 * is the server clock, for the rule on future times.
 *
 * Returns 0 and fills *out (the caller frees it with ev_batch_free), or a
 * negative number, fills *err and leaves *out empty.  An empty array or an
 * empty NDJSON body is a 422.  More events than limits->max_events is a 413.
 */
int ev_parse_batch(const char *body, size_t len, enum ev_format fmt,
		   int64_t now_us, const struct ev_limits *limits,
		   struct ev_batch *out, struct ev_error *err)
    __attribute__((warn_unused_result));

void ev_batch_free(struct ev_batch *b);

/* A sensor's registry entry, from PUT /api/v1/sensors/{id}. */
#define EV_THRESHOLDS 3 /* waspada, siaga, awas */

struct ev_sensor_def {
	char sensor_id[EV_SUBJECT_MAX + 1];
	char name[201];
	char metric[65];
	char unit[33];
	char district[EV_DISTRICT_MAX + 1]; /* "" when absent */
	bool has_location;
	double lat, lon;
	/* Thresholds in the order of ev_threshold_names; NAN when the gauge's
	 * ladder does not have that level.  Those given ascend strictly. */
	double thresholds[EV_THRESHOLDS];
	int offline_after_s; /* 60..604800, default 900 */
};

/*
 * The names of the levels a gauge's ladder may have above normal, lowest
 * first: "waspada", "siaga", "awas".  The one list of them; the KPIs' level
 * names (server/kpi.c) are "normal" followed by these.
 */
extern const char *const ev_threshold_names[EV_THRESHOLDS];

/*
 * Parses the body of a sensor registration for sensor_id (from the URL, which
 * must itself be a valid subject).  Returns 0 or a negative number with *err
 * filled (status 400 or 422, index -1).
 */
int ev_parse_sensor_def(const char *sensor_id, const char *body, size_t len,
			struct ev_sensor_def *out, struct ev_error *err)
    __attribute__((warn_unused_result));

/*
 * Whether the n bytes at s are a valid subject (call_id, ticket, sensor_id):
 * 1 to EV_SUBJECT_MAX letters, digits, '.', '_', ':' or '-'.  No comma, so
 * a subject is never part of another in a comma-separated list.
 */
bool ev_subject_valid(const char *s, size_t n);

/* The first control character (U+0000..U+001F, U+007F) of s[0..n), or -1:
 * text the API takes has none. */
int ev_control_char(const char *s, size_t n);

/* Names as they appear on the wire; NULL for an out-of-range value. */
const char *ev_type_name(enum ev_type t);
const char *ev_status_name(enum ev_type t, int status);
const char *ev_category_name(enum ev_type t, int category);
int ev_status_count(enum ev_type t);
int ev_category_count(enum ev_type t);

/*
 * RFC 3339 times.  ev_time_parse accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)"
 * (also 't' and 'z', and a space for 'T'), with an offset required, and
 * returns 0 with microseconds since the epoch, or -1.  ev_time_format writes
 * the time in the given UTC offset with millisecond precision, e.g.
 * "2026-11-23T08:15:00.000+07:00", and returns its length.
 */
int ev_time_parse(const char *s, size_t len, int64_t *us)
    __attribute__((warn_unused_result));
size_t ev_time_format(int64_t us, int offset_s, char buf[40]);

#endif
