-- A sensor gateway's key may be limited to its own gauges: NULL allows
-- every sensor, a list allows those only.
ALTER TABLE api_keys ADD COLUMN sensors text[];
