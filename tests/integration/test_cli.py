"""
The command line and the process: migrations are idempotent, keys are
created, listed (without secrets) and revoked, the server answers its
health endpoints and stops cleanly on SIGTERM.
"""

import copy
import re

from harness import KEY_RE, create_key, kendali_cli, key_id, wait_until


def tables(database):
    conn = database.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, column_name, data_type FROM information_schema.columns"
                        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                        " ORDER BY 1, 2")
            return cur.fetchall()
    finally:
        conn.close()


def test_migrate_is_idempotent(fresh_database, kendali_bin):
    kendali_cli(fresh_database, "migrate")
    first = tables(fresh_database)
    assert any(t == "events" for t, _, _ in first), "migrate creates the events table"
    kendali_cli(fresh_database, "migrate")
    assert tables(fresh_database) == first


def test_migrate_refuses_tables_it_cannot_read(fresh_database, kendali_bin):
    """Tables left to another owner (a restore done as the superuser) make
    migrate stop with the reason, not try to create them again."""
    kendali_cli(fresh_database, "migrate")
    role = f"outsider_{fresh_database.name}"
    conn = fresh_database.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN")
            cur.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
        before = tables(fresh_database)
        outsider = copy.copy(fresh_database)
        outsider.url = fresh_database.url.replace("postgres@", f"{role}@", 1)
        cp = kendali_cli(outsider, "migrate", check=False)
        assert cp.returncode != 0
        assert "cannot read schema_migrations" in cp.stderr and "permission denied" in cp.stderr, cp.stderr
        assert "already exists" not in cp.stderr, cp.stderr
        assert tables(fresh_database) == before
    finally:
        with conn.cursor() as cur:
            cur.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
            cur.execute(f"DROP ROLE {role}")
        conn.close()


def test_commands_never_migrate(fresh_database, kendali_bin):
    """Only `kendali migrate` (and `serve`) change the schema: `key`,
    `token` and `user` on a database without it, or behind the binary,
    refuse with the command to run and leave the database as it was."""
    for args in (("key", "create", "--poster", "x", "--types", "call"), ("key", "list"),
                 ("token", "list"), ("user", "list")):
        cp = kendali_cli(fresh_database, *args, check=False)
        assert cp.returncode == 1, (args, cp)
        assert "run `kendali migrate` first" in cp.stderr, (args, cp.stderr)
    assert tables(fresh_database) == [], "a command other than migrate created tables"

    kendali_cli(fresh_database, "migrate")
    kendali_cli(fresh_database, "key", "list")
    latest = fresh_database.rows("SELECT max(version), (array_agg(name ORDER BY version DESC))[1]"
                                  " FROM schema_migrations")[0]
    fresh_database.execute("DELETE FROM schema_migrations WHERE version = %s", (latest[0],))
    cp = kendali_cli(fresh_database, "key", "list", check=False)
    assert cp.returncode == 1 and "1 migration(s) missing, from " + latest[1] in cp.stderr, cp.stderr
    assert fresh_database.rows("SELECT count(*) FROM schema_migrations WHERE version = %s",
                                (latest[0],))[0][0] == 0, "the command migrated"


def test_readyz_is_503_while_the_schema_is_behind(fresh_database, make_server):
    """A restore may bring back an older schema under a running server: it
    is not ready (and says why) until the schema has every migration."""
    srv = make_server(fresh_database)
    api = srv.http()
    r = api.get("/readyz")
    assert r.status == 200 and r.json == {"ready": True, "database": True, "schema": True}, r
    latest = fresh_database.rows("SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1")[0]
    fresh_database.execute("DELETE FROM schema_migrations WHERE version = %s", (latest[0],))
    r = wait_until(lambda: (lambda x: x if x.status == 503 else None)(api.get("/readyz", fresh=True)),
                   timeout=15, what="/readyz 503 once the schema is behind")
    assert r.json == {"ready": False, "database": True, "schema": False}, r
    assert r.headers.get("retry-after"), r
    fresh_database.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", latest)
    wait_until(lambda: api.get("/readyz", fresh=True).status == 200, timeout=15,
               what="/readyz 200 once the schema is whole again")


def test_keys_create_list_revoke(fresh_database, kendali_bin):
    kendali_cli(fresh_database, "migrate")
    a = create_key(fresh_database, "callcentre-112", ["call"])
    b = create_key(fresh_database, "bpbd-gateway", ["sensor", "report"])
    assert a != b and KEY_RE.match(a) and KEY_RE.match(b)
    assert key_id(a) != key_id(b)
    listing = kendali_cli(fresh_database, "key", "list").stdout
    for k, poster in ((a, "callcentre-112"), (b, "bpbd-gateway")):
        assert key_id(k) in listing and poster in listing, listing
        assert k.split("_", 2)[2] not in listing, "key list must never print a secret"
    kendali_cli(fresh_database, "key", "revoke", key_id(a))
    cp = kendali_cli(fresh_database, "key", "revoke", "nosuchkeyid", check=False)
    assert cp.returncode != 0, "revoking an unknown key is an error"
    cp = kendali_cli(fresh_database, "key", "create", "--poster", "x", "--types", "call,weather", check=False)
    assert cp.returncode != 0, "an unknown event type is refused"


def test_health_endpoints(api):
    r = api.get("/healthz")
    assert r.status == 200, r
    r = api.get("/readyz")
    assert r.status == 200, r
    r = api.get("/metrics")
    assert r.status == 200 and r.content_type == "text/plain", r
    text = r.raw.decode()
    assert re.search(r"^# TYPE \w+ (counter|gauge|histogram|summary)", text, re.M), text[:500]


def test_unknown_route_and_wrong_method_are_problems(api):
    r = api.get("/api/v1/nothing-here")
    assert r.status == 404 and r.content_type == "application/problem+json", r
    r = api.get("/api/v1/events")
    assert r.status == 405 and r.content_type == "application/problem+json", r
    # Outside the API, any method at an address with nothing gets what a
    # GET there gets; at a page, another method is a 405.
    g = api.get("/no-such-page")
    for method in ("POST", "PUT"):
        r = api.request(method, "/no-such-page", "{}", content_type="application/json", fresh=True)
        assert (r.status, r.json) == (g.status, g.json) == (404, g.json), f"{method}: {r} vs GET: {g}"
    r = api.post("/mayor", "{}", content_type="application/json", fresh=True)
    assert r.status == 405 and r.json["code"] == "method_not_allowed", r


def test_sigterm_stops_cleanly(fresh_database, make_server):
    srv = make_server(fresh_database)
    proc = srv.proc
    rc = srv.stop(timeout=10)
    assert rc is not None, "still running 10 s after SIGTERM"
    assert rc == 0, f"exit status {rc} after SIGTERM"
    assert proc.poll() is not None
