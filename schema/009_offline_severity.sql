-- An offline alert says nothing about the water (docs/spec/kpis.md): it has
-- no severity.  Earlier versions stored 'waspada', which a screen showed as
-- a flood warning.  A level alert always has one.

ALTER TABLE alerts ALTER COLUMN severity DROP NOT NULL;
UPDATE alerts SET severity = NULL WHERE kind = 'offline';
ALTER TABLE alerts ADD CONSTRAINT alerts_severity_of_kind
	CHECK ((kind = 'offline') = (severity IS NULL));
