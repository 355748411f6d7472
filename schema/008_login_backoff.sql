-- Failed logins per account name (docs/security.md, "Password guessing"):
-- after 5 failures in a row the name waits 1, 2, 4, ... up to 30 s between
-- attempts, on every server of the database.  A name that has no user gets
-- a row too, so that the answers do not tell which accounts exist.  A
-- successful login deletes the row; rows idle for a day are pruned.

CREATE TABLE login_failures (
	tenant		text NOT NULL,
	username	text NOT NULL,
	failures	int NOT NULL,
	last_at		timestamptz NOT NULL,
	wait_until	timestamptz NOT NULL,
	PRIMARY KEY (tenant, username)
);
CREATE INDEX login_failures_age ON login_failures (last_at);
