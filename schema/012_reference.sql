-- The reference data of each regency or city, as `kendali tenant import`
-- loads it (docs/reference-data.md): its kecamatan with their Kemendagri
-- codes, its agencies (perangkat daerah, OPD), and which set of files they
-- came from.  Its gauges go to the sensor registry (sensors).  An import
-- replaces a tenant's districts and agencies in one transaction.

-- The set imported last: its version (a newer one replaces it), its region
-- (the regency's or city's Kemendagri code, "33.25", which does not
-- change), each file's source, and its gauges as the files defined them
-- (the registry may have changed them since through the API).
CREATE TABLE reference_sets (
	tenant		text PRIMARY KEY REFERENCES tenants (id),
	version		integer NOT NULL CHECK (version >= 1),
	region_code	text NOT NULL CHECK (region_code ~ '^[0-9]{2}\.[0-9]{2}$'),
	region_name	text NOT NULL
				CHECK (octet_length(region_name) BETWEEN 1 AND 200),
	sources		jsonb NOT NULL,
	gauges		jsonb NOT NULL DEFAULT '[]',
	imported_at	timestamptz NOT NULL DEFAULT now()
);

-- Kecamatan.  Events name a district by its name, so names are unique in a
-- tenant too; checked at commit, so that an import may swap two names.
CREATE TABLE districts (
	tenant		text NOT NULL REFERENCES tenants (id),
	code		text NOT NULL
				CHECK (code ~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}$'),
	name		text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 64),
	lat		double precision CHECK (lat BETWEEN -90 AND 90),
	lon		double precision CHECK (lon BETWEEN -180 AND 180),
	PRIMARY KEY (tenant, code),
	CONSTRAINT districts_name UNIQUE (tenant, name)
		DEFERRABLE INITIALLY DEFERRED
);

-- Agencies, by the code a report's `agency` gives, with the report
-- categories each usually handles.
CREATE TABLE agencies (
	tenant		text NOT NULL REFERENCES tenants (id),
	code		text NOT NULL
				CHECK (code ~ '^[A-Za-z0-9._-]{1,32}$'),
	name		text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 200),
	handles		text[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (tenant, code)
);
