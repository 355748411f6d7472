-- A time as the command line prints it: UTC in ISO 8601 ("2026-12-07T08:00:00Z"),
-- or "-" for none, whatever the session's time zone.

CREATE FUNCTION kd_utc_text(timestamptz) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN coalesce(to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '-');
