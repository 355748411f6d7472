-- Who did what, when, from where: every accepted write (events posted,
-- sensors registered) and every acknowledgement.  Rows of event writes are
-- inserted by the same statement that stores the events, so the trail and
-- the data commit together.
CREATE TABLE audit (
	id		bigserial PRIMARY KEY,
	tenant		text NOT NULL REFERENCES tenants (id),
	at		timestamptz NOT NULL DEFAULT now(),
	actor		text NOT NULL,	-- the poster of a key, or an operator
	action		text NOT NULL,	-- events.post, sensor.put, alert.ack
	detail		jsonb NOT NULL DEFAULT '{}',
	peer		text		-- the client's address
);
CREATE INDEX audit_at ON audit (tenant, at);
