-- Tenants as the command line creates them: each regency or city with its
-- head's title ("Wali Kota", "Bupati"), and provinces, whose members are
-- the regencies and cities they see together.  A tenant id is what every
-- table's `tenant` holds: 1 to 32 lower-case letters, digits and '-',
-- beginning with a letter.

ALTER TABLE tenants
	ADD COLUMN head text NOT NULL DEFAULT 'Wali Kota'
		CHECK (octet_length(head) BETWEEN 1 AND 64),
	ADD COLUMN kind text NOT NULL DEFAULT 'local'
		CHECK (kind IN ('local', 'province')),
	ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
	ADD CONSTRAINT tenants_id_form CHECK (id ~ '^[a-z][a-z0-9-]{0,31}$'),
	ADD CONSTRAINT tenants_name_length
		CHECK (octet_length(name) BETWEEN 1 AND 200);
ALTER TABLE tenants ALTER COLUMN head DROP DEFAULT;

-- A province's members: local tenants only, each in at most one province.
CREATE TABLE tenant_members (
	province	text NOT NULL REFERENCES tenants (id),
	member		text NOT NULL REFERENCES tenants (id),
	PRIMARY KEY (province, member),
	UNIQUE (member)
);

CREATE FUNCTION kd_check_membership() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT kind FROM tenants WHERE id = NEW.province) <> 'province' THEN
		RAISE EXCEPTION 'tenant % is not a province', NEW.province;
	END IF;
	IF (SELECT kind FROM tenants WHERE id = NEW.member) <> 'local' THEN
		RAISE EXCEPTION 'tenant % is a province, not a regency or city',
			NEW.member;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER tenant_members_kinds BEFORE INSERT OR UPDATE ON tenant_members
	FOR EACH ROW EXECUTE FUNCTION kd_check_membership();

-- Servers learn of a new tenant, or a changed one, without a restart.
CREATE FUNCTION kd_notify_tenants() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('kendali_tenants', '');
	RETURN NULL;
END $$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
	FOR EACH STATEMENT EXECUTE FUNCTION kd_notify_tenants();
CREATE TRIGGER tenant_members_notify
	AFTER INSERT OR UPDATE OR DELETE ON tenant_members
	FOR EACH STATEMENT EXECUTE FUNCTION kd_notify_tenants();
