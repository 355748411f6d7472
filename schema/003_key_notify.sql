-- A running server learns of new, changed and revoked API keys at once:
-- every change to api_keys notifies the channel kendali_keys, which the
-- server listens to.
CREATE FUNCTION kd_keys_changed() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('kendali_keys',
		coalesce(NEW.tenant, OLD.tenant));
	RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_notify
	AFTER INSERT OR UPDATE OR DELETE ON api_keys
	FOR EACH ROW EXECUTE FUNCTION kd_keys_changed();
