-- The KPIs as they stood every five minutes, so that a page can compare
-- now with the same time yesterday.  Only values that are not lists are
-- kept (counts, ratios, small maps); rows older than 400 days are deleted
-- by the server.
CREATE TABLE kpi_history (
	tenant		text NOT NULL REFERENCES tenants (id),
	at		timestamptz NOT NULL,
	kpis		jsonb NOT NULL,
	PRIMARY KEY (tenant, at)
);
