/*
 * server/sqltext.h - SQL text shared by the writer (store.c), the start-up
 * load (load.c) and the reads (reads.c).
 */
#ifndef KENDALI_SQLTEXT_H
#define KENDALI_SQLTEXT_H

#include "event.h"

/*
 * Statuses are stored as their enum value (int2).  Statement text names
 * them through these, which the build checks against the enums.
 */
#define SQL_RESOLVED "3" /* EV_REPORT_RESOLVED */
#define SQL_REJECTED "4" /* EV_REPORT_REJECTED */
#define SQL_TICKET_CLOSED "(" SQL_RESOLVED ", " SQL_REJECTED ")"
_Static_assert(EV_REPORT_RESOLVED == 3 && EV_REPORT_REJECTED == 4,
	       "SQL_RESOLVED and SQL_REJECTED follow enum ev_report_status");

/*
 * A call's and a ticket's result row (enum sql_row_col) from a relation
 * with the columns of calls or tickets, followed by its name: the writer's
 * statements and the start-up load both give their rows to
 * store_apply_rows.
 */
#define SQL_CALL_ROW                                                           \
	" SELECT 'c'::text, call_id, NULL::text, NULL::text, NULL::text,"      \
	"  received_at, NULL::float8, status, category, NULL::text,"           \
	"  NULL::text, NULL::bool, answered_at, abandoned_at, tenant FROM "
#define SQL_TICKET_ROW                                                         \
	" SELECT 't'::text, ticket, NULL::text, NULL::text, NULL::text,"       \
	"  received_at, NULL::float8, status, category, district, agency,"     \
	"  dispatched, resolved_at, NULL::timestamptz, tenant FROM "

/* Columns of a result row; kind 'c' is a call, 't' a ticket, 'e' an event
 * the careful statement stored. */
enum sql_row_col {
	OUT_KIND,
	OUT_ID,	     /* call_id, ticket or event_id */
	OUT_POSTER,  /* e */
	OUT_TYPE,    /* e */
	OUT_SUBJECT, /* e */
	OUT_AT,	     /* c, t: received_at; e: occurred_at */
	OUT_VALUE,   /* e */
	OUT_STATUS,  /* c, t */
	OUT_CATEGORY,
	OUT_DISTRICT, /* t */
	OUT_AGENCY,   /* t */
	OUT_DISPATCHED,
	OUT_DONE_AT, /* c: answered_at; t: resolved_at */
	OUT_ABANDONED_AT,
	OUT_TENANT
};

#endif
