-- Screens and people (docs/security.md): screen tokens, users with scrypt
-- password hashes, and login sessions.  Secrets are kept only as SHA-256;
-- every change notifies kendali_auth so that running servers re-read them
-- (revocation takes effect at once).

CREATE TABLE screen_tokens (
	token_id	text PRIMARY KEY,
	tenant		text NOT NULL REFERENCES tenants (id),
	name		text NOT NULL,
	role		text NOT NULL
			CHECK (role IN ('wall', 'operator', 'mayor', 'admin')),
	secret_sha256	bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	revoked_at	timestamptz
);

CREATE TABLE users (
	tenant		text NOT NULL REFERENCES tenants (id),
	username	text NOT NULL,
	role		text NOT NULL
			CHECK (role IN ('wall', 'operator', 'mayor', 'admin')),
	password_hash	text NOT NULL,	-- scrypt$<log2 N>$<r>$<p>$<salt>$<hash>
	created_at	timestamptz NOT NULL DEFAULT now(),
	disabled_at	timestamptz,
	PRIMARY KEY (tenant, username)
);

CREATE TABLE sessions (
	session_id	text PRIMARY KEY,
	tenant		text NOT NULL,
	username	text NOT NULL,
	secret_sha256	bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL,
	ended_at	timestamptz,
	peer		text,
	FOREIGN KEY (tenant, username) REFERENCES users (tenant, username)
);
CREATE INDEX sessions_live ON sessions (tenant, expires_at)
	WHERE ended_at IS NULL;

CREATE FUNCTION kd_auth_changed() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('kendali_auth', coalesce(NEW.tenant, OLD.tenant));
	RETURN NULL;
END;
$$;

CREATE TRIGGER screen_tokens_notify
	AFTER INSERT OR UPDATE OR DELETE ON screen_tokens
	FOR EACH ROW EXECUTE FUNCTION kd_auth_changed();
CREATE TRIGGER users_notify
	AFTER INSERT OR UPDATE OR DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION kd_auth_changed();
CREATE TRIGGER sessions_notify
	AFTER INSERT OR UPDATE OR DELETE ON sessions
	FOR EACH ROW EXECUTE FUNCTION kd_auth_changed();
