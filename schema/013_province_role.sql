-- The provincial roll-up (docs/api.md section 2.5): a province's screens and
-- people have the role `province`, which reads its members' summaries and
-- nothing else; a city's or regency's never have it.
ALTER TABLE screen_tokens DROP CONSTRAINT screen_tokens_role_check,
	ADD CONSTRAINT screen_tokens_role_check
		CHECK (role IN ('wall', 'operator', 'mayor', 'admin', 'province'));
ALTER TABLE users DROP CONSTRAINT users_role_check,
	ADD CONSTRAINT users_role_check
		CHECK (role IN ('wall', 'operator', 'mayor', 'admin', 'province'));

-- The role `province` belongs to a province, and only it.
CREATE FUNCTION kd_check_role_kind() RETURNS trigger
	LANGUAGE plpgsql AS $$
DECLARE
	k text;
BEGIN
	SELECT kind INTO k FROM tenants WHERE id = NEW.tenant;
	IF (k = 'province') <> (NEW.role = 'province') THEN
		RAISE EXCEPTION 'the role % does not belong to a tenant of kind %',
			NEW.role, k USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER screen_tokens_role_kind BEFORE INSERT OR UPDATE ON screen_tokens
	FOR EACH ROW EXECUTE FUNCTION kd_check_role_kind();
CREATE TRIGGER users_role_kind BEFORE INSERT OR UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION kd_check_role_kind();
