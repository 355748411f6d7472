-- Core tables: tenants, API keys, the event log, the per-call and
-- per-ticket summaries the KPIs are rebuilt from, the sensor registry and
-- alerts.  Every table carries the tenant.

CREATE TABLE tenants (
	id		text PRIMARY KEY,
	name		text NOT NULL,
	time_zone	text NOT NULL
);
INSERT INTO tenants (id, name, time_zone)
VALUES ('semarang', 'Kota Semarang', 'Asia/Jakarta');

CREATE TABLE api_keys (
	key_id		text PRIMARY KEY,
	tenant		text NOT NULL REFERENCES tenants (id),
	poster		text NOT NULL,
	types		text[] NOT NULL,
	secret_sha256	bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	revoked_at	timestamptz
);

-- Microseconds since the epoch <-> timestamptz, exactly.
CREATE FUNCTION kd_ts(bigint) RETURNS timestamptz
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN timestamptz 'epoch' + $1 * interval '1 microsecond';
CREATE FUNCTION kd_us(timestamptz) RETURNS bigint
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN (extract(epoch FROM $1) * 1000000)::bigint;

-- The order of "latest": an event's time, then its lifecycle rank (0..7),
-- packed into one bigint so that max() picks the latest event.
CREATE FUNCTION kd_key(timestamptz, smallint) RETURNS bigint
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN kd_us($1) * 8 + $2;

-- Whether an attribute given with order key knew and value vnew replaces
-- the one held (kold, vold): the later key wins, a tie goes to the greater
-- value, and an event that gives no value never clears one.
CREATE FUNCTION kd_newer(knew bigint, vnew text, kold bigint, vold text)
	RETURNS boolean
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN knew IS NOT NULL AND (kold IS NULL OR knew > kold
		OR (knew = kold AND vnew > vold));

CREATE TABLE events (
	tenant		text NOT NULL REFERENCES tenants (id),
	poster		text NOT NULL,
	event_id	text NOT NULL,
	type		text NOT NULL CHECK (type IN ('call', 'report', 'sensor')),
	occurred_at	timestamptz NOT NULL,
	stored_at	timestamptz NOT NULL DEFAULT now(),
	subject		text NOT NULL,
	status		text,
	rank		smallint NOT NULL DEFAULT 0,
	category	text,
	district	text,
	agency		text,
	title		text,
	value		double precision,
	lat		double precision,
	lon		double precision,
	PRIMARY KEY (tenant, poster, event_id)
);
CREATE INDEX events_subject ON events (tenant, type, subject, occurred_at);
CREATE INDEX events_time ON events (tenant, type, occurred_at);

-- One row per call, merged from its events in the same statement that
-- stores them (see server/store.c).
CREATE TABLE calls (
	tenant		text NOT NULL REFERENCES tenants (id),
	call_id		text NOT NULL,
	recv_min	timestamptz,	-- earliest "received" event
	first_at	timestamptz NOT NULL,	-- earliest event of any status
	received_at	timestamptz GENERATED ALWAYS AS
				(coalesce(recv_min, first_at)) STORED,
	status_key	bigint NOT NULL,	-- kd_key of the latest event
	status		smallint GENERATED ALWAYS AS
				((status_key % 8)::smallint) STORED,
	category_key	bigint,
	category	text,
	answered_at	timestamptz,	-- earliest "answered" event
	abandoned_at	timestamptz,	-- earliest "abandoned" event
	PRIMARY KEY (tenant, call_id)
);
CREATE INDEX calls_received ON calls (tenant, received_at);
CREATE INDEX calls_answered ON calls (tenant, answered_at);
CREATE INDEX calls_abandoned ON calls (tenant, abandoned_at);

CREATE TABLE tickets (
	tenant		text NOT NULL REFERENCES tenants (id),
	ticket		text NOT NULL,
	recv_min	timestamptz,
	first_at	timestamptz NOT NULL,
	received_at	timestamptz GENERATED ALWAYS AS
				(coalesce(recv_min, first_at)) STORED,
	status_key	bigint NOT NULL,
	status		smallint GENERATED ALWAYS AS
				((status_key % 8)::smallint) STORED,
	category_key	bigint,
	category	text,
	district_key	bigint,
	district	text,
	agency_key	bigint,
	agency		text,
	dispatched	boolean NOT NULL DEFAULT false,
	resolved_at	timestamptz,	-- latest "resolved" event
	PRIMARY KEY (tenant, ticket)
);
-- Status ranks 3 and 4 are resolved and rejected (ingest/event.h).
CREATE INDEX tickets_open ON tickets (tenant) WHERE status NOT IN (3, 4);
CREATE INDEX tickets_resolved ON tickets (tenant, resolved_at)
	WHERE status = 3;
CREATE INDEX tickets_received ON tickets (tenant, received_at);

CREATE TABLE sensors (
	tenant		text NOT NULL REFERENCES tenants (id),
	sensor_id	text NOT NULL,
	name		text NOT NULL,
	metric		text NOT NULL,
	unit		text NOT NULL,
	district	text,
	lat		double precision,
	lon		double precision,
	waspada		double precision,
	siaga		double precision,
	awas		double precision,
	offline_after_s	integer NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant, sensor_id)
);

CREATE TABLE alerts (
	id		bigserial PRIMARY KEY,
	tenant		text NOT NULL REFERENCES tenants (id),
	kind		text NOT NULL CHECK (kind IN ('level', 'offline')),
	sensor_id	text NOT NULL,
	severity	text NOT NULL,
	message		text NOT NULL,
	raised_at	timestamptz NOT NULL,
	cleared_at	timestamptz,
	acked_by	text,
	acked_at	timestamptz,
	ack_note	text
);
-- At most one active alert of each kind per sensor.
CREATE UNIQUE INDEX alerts_active ON alerts (tenant, sensor_id, kind)
	WHERE cleared_at IS NULL;
CREATE INDEX alerts_raised ON alerts (tenant, raised_at);
