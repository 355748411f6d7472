"""
Tenants on the command line (docs/operations.md, "Tenants"): `kendali tenant
create` and `list`, the refusals of each bad argument with nothing stored, and
`--tenant` on `key`, `token` and `user`, which write, list and revoke only in
the tenant named, refuse an unknown one with exit code 2, and must be told
which tenant once the database has several.
"""

import subprocess
from pathlib import Path

import pytest

from harness import (KEY_RE, TOKEN_RE, assert_problem, ev_reading, free_port, kendali_cli, key_id,
                     sanitized_env, wait_until)

EVENT = {"id": "t-1", "type": "call", "occurred_at": "2026-12-01T08:00:00+07:00",
         "call": {"call_id": "C-1", "status": "received", "category": "info"}}


def cli(db, *args, input=None):
    return kendali_cli(db, *args, check=False, input=input)


def tenants(db):
    return db.rows("SELECT id, kind, name, head, time_zone FROM tenants ORDER BY id")


def members(db):
    return db.rows("SELECT province, member FROM tenant_members ORDER BY 1, 2")


def last_line(cp):
    lines = [ln.strip() for ln in cp.stdout.splitlines() if ln.strip()]
    assert lines, f"nothing printed: {cp.stderr}"
    return lines[-1]


@pytest.fixture
def db(fresh_database, kendali_bin):
    kendali_cli(fresh_database, "migrate")
    return fresh_database


def test_create_and_list(db):
    """A regency, one in another zone, and a province of two members; `list`
    shows each with its kind, zone, head, name and members."""
    assert tenants(db) == [("semarang", "local", "Kota Semarang", "Wali Kota", "Asia/Jakarta")]
    cp = cli(db, "tenant", "create", "batang", "--name", "Kabupaten Batang", "--head", "Bupati")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == ('Created tenant batang, "Kabupaten Batang" (head: Bupati, '
                         "time zone Asia/Jakarta).\n")
    kendali_cli(db, "tenant", "create", "kota-makassar", "--name", "Kota Makassar",
                "--head", "Wali Kota", "--tz", "Asia/Makassar")
    cp = cli(db, "tenant", "create", "jateng", "--name", "Provinsi Jawa Tengah", "--head", "Gubernur",
             "--province", "--members", "semarang,batang")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == ('Created province jateng, "Provinsi Jawa Tengah" (head: Gubernur, '
                         "time zone Asia/Jakarta, members semarang,batang).\n")
    assert tenants(db) == [
        ("batang", "local", "Kabupaten Batang", "Bupati", "Asia/Jakarta"),
        ("jateng", "province", "Provinsi Jawa Tengah", "Gubernur", "Asia/Jakarta"),
        ("kota-makassar", "local", "Kota Makassar", "Wali Kota", "Asia/Makassar"),
        ("semarang", "local", "Kota Semarang", "Wali Kota", "Asia/Jakarta"),
    ]
    assert members(db) == [("jateng", "batang"), ("jateng", "semarang")]

    cp = cli(db, "tenant", "list")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[0].split() == ["TENANT", "KIND", "TIME_ZONE", "HEAD", "NAME", "MEMBERS"]
    body = [line.split() for line in cp.stdout.splitlines()[1:]]
    # Locals first, then provinces, each by id; the head and name may hold
    # spaces, so the row is checked by its fixed columns and its end.
    assert [(r[0], r[1], r[2], r[-1]) for r in body] == [
        ("batang", "local", "Asia/Jakarta", "-"),
        ("kota-makassar", "local", "Asia/Makassar", "-"),
        ("semarang", "local", "Asia/Jakarta", "-"),
        ("jateng", "province", "Asia/Jakarta", "batang,semarang"),
    ]
    assert "Provinsi Jawa Tengah" in cp.stdout.splitlines()[4]
    assert "Gubernur" in cp.stdout.splitlines()[4]


@pytest.mark.parametrize("args, code, says", [
    (["Batang", "--name", "B", "--head", "Bupati"], 2, "a tenant id has 1 to 32"),
    (["1batang", "--name", "B", "--head", "Bupati"], 2, "a tenant id has 1 to 32"),
    (["b" * 33, "--name", "B", "--head", "Bupati"], 2, "a tenant id has 1 to 32"),
    (["bat_ang", "--name", "B", "--head", "Bupati"], 2, "a tenant id has 1 to 32"),
    (["batang", "--head", "Bupati"], 2, "usage: kendali tenant create"),
    (["batang", "--name", "B"], 2, "usage: kendali tenant create"),
    (["batang", "--name", "B", "--head", "Bupati", "--members", "semarang"], 2, "usage"),
    (["batang", "--name", "B", "--head", "Bupati", "--colour", "red"], 2, "usage"),
    (["batang", "--name", "", "--head", "Bupati"], 2, "--name takes 1 to 200 bytes"),
    (["batang", "--name", "x" * 201, "--head", "Bupati"], 2, "--name takes 1 to 200 bytes"),
    (["batang", "--name", "B", "--head", "h" * 65], 2, "--head 1 to 64"),
    (["batang", "--name", "B", "--head", "Bupati", "--tz", "Asia/Nowhere"], 2,
     "Asia/Nowhere is not a time zone with one offset all year"),
    (["batang", "--name", "B", "--head", "Bupati", "--tz", "Europe/Berlin"], 2,
     "Europe/Berlin is not a time zone with one offset all year"),
    (["semarang", "--name", "Kota Semarang", "--head", "Wali Kota"], 1, "there is already a tenant semarang"),
    (["jateng", "--name", "J", "--head", "Gubernur", "--province", "--members", "semarang,pati"], 2,
     "--members: no tenant pati"),
    (["jateng", "--name", "J", "--head", "Gubernur", "--province", "--members", "semarang,,batang"], 2,
     "--members takes a comma-separated list"),
    (["jateng", "--name", "J", "--head", "Gubernur", "--province", "--members", "Semarang"], 2,
     "--members takes a comma-separated list"),
])
def test_bad_creations_are_refused_and_store_nothing(db, args, code, says):
    before = (tenants(db), members(db))
    cp = cli(db, "tenant", "create", *args)
    assert cp.returncode == code, (cp.stdout, cp.stderr)
    assert says in cp.stderr, cp.stderr
    assert cp.stdout == ""
    assert (tenants(db), members(db)) == before


def test_members_must_be_free_regencies(db):
    """A province's members are regencies or cities, each in one province;
    a refused province is not created without them."""
    kendali_cli(db, "tenant", "create", "jateng", "--name", "Provinsi Jawa Tengah", "--head", "Gubernur",
                "--province", "--members", "semarang")
    kendali_cli(db, "tenant", "create", "batang", "--name", "Kabupaten Batang", "--head", "Bupati")
    before = (tenants(db), members(db))
    cp = cli(db, "tenant", "create", "jatim", "--name", "Provinsi Jawa Timur", "--head", "Gubernur",
             "--province", "--members", "batang,semarang")
    assert (cp.returncode, cp.stderr) == (2, "kendali: --members: semarang is already a member of jateng\n")
    cp = cli(db, "tenant", "create", "jatim", "--name", "Provinsi Jawa Timur", "--head", "Gubernur",
             "--province", "--members", "jateng")
    assert (cp.returncode, cp.stderr) == (2, "kendali: --members: jateng is a province\n")
    assert (tenants(db), members(db)) == before
    # The database holds the same rules, whoever writes.
    with pytest.raises(Exception, match="is a province, not a regency or city"):
        db.execute("INSERT INTO tenant_members (province, member) VALUES ('jateng', 'jateng')")
    with pytest.raises(Exception, match="batang is not a province"):
        db.execute("INSERT INTO tenant_members (province, member) VALUES ('batang', 'semarang')")


def test_credentials_go_to_the_tenant_named(db):
    """With one tenant, key/token/user need no --tenant; with several they do
    (exit 2, nothing written), and each writes, lists and revokes in its own."""
    key_sm = last_line(kendali_cli(db, "key", "create", "--poster", "lapor", "--types", "report"))
    assert KEY_RE.match(key_sm)
    kendali_cli(db, "tenant", "create", "batang", "--name", "Kabupaten Batang", "--head", "Bupati")
    kendali_cli(db, "tenant", "create", "jateng", "--name", "Provinsi Jawa Tengah", "--head", "Gubernur",
                "--province", "--members", "semarang,batang")
    count = ("SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM screen_tokens)"
             " + (SELECT count(*) FROM users)")
    n = db.scalar(count)

    for args in (["key", "create", "--poster", "x", "--types", "call"],
                 ["token", "create", "--name", "wall-1", "--role", "wall"],
                 ["user", "add", "ani", "--role", "operator"],
                 ["key", "list"], ["token", "list"], ["user", "list"]):
        cp = cli(db, *args, input="password-1\n")
        assert cp.returncode == 2, (args, cp.stdout, cp.stderr)
        assert cp.stderr == ("kendali: this database has 3 tenants: say which with --tenant ID "
                             "(`kendali tenant list` shows them)\n"), cp.stderr
        for bad in ("pati", "Batang", ""):
            cp = cli(db, *args, "--tenant", bad, input="password-1\n")
            assert cp.returncode == 2, (args, bad, cp.stderr)
            assert "no tenant" in cp.stderr and "`kendali tenant list` shows them" in cp.stderr, cp.stderr
        cp = cli(db, *args, "--tenant")
        assert (cp.returncode, cp.stderr) == (2, "kendali: --tenant needs a tenant id\n")
    cp = cli(db, "key", "create", "--tenant", "jateng", "--poster", "x", "--types", "call")
    assert cp.returncode == 2 and "jateng is a province" in cp.stderr, cp.stderr
    assert db.scalar(count) == n, "a refused command wrote something"

    # --tenant goes anywhere after the subcommand.
    key_bt = last_line(kendali_cli(db, "key", "--tenant", "batang", "create", "--poster", "lapor",
                                   "--types", "report,call"))
    token_bt = last_line(kendali_cli(db, "token", "create", "--name", "wall-1", "--role", "wall",
                                     "--tenant", "batang"))
    assert TOKEN_RE.match(token_bt)
    kendali_cli(db, "user", "add", "ani", "--tenant", "batang", "--role", "operator", input="password-1\n")
    kendali_cli(db, "user", "add", "ani", "--tenant", "semarang", "--role", "mayor", input="password-2\n")
    assert db.rows("SELECT tenant, poster FROM api_keys ORDER BY tenant") == [
        ("batang", "lapor"), ("semarang", "lapor")]
    assert db.rows("SELECT tenant, name, role FROM screen_tokens") == [("batang", "wall-1", "wall")]
    assert db.rows("SELECT tenant, username, role FROM users ORDER BY tenant") == [
        ("batang", "ani", "operator"), ("semarang", "ani", "mayor")]

    listing = kendali_cli(db, "key", "list", "--tenant", "batang").stdout
    assert key_id(key_bt) in listing and key_id(key_sm) not in listing
    listing = kendali_cli(db, "user", "list", "--tenant", "semarang").stdout.splitlines()
    assert [ln.split()[:2] for ln in listing[1:]] == [["ani", "mayor"]]

    # Another tenant's key, token or user cannot be revoked or disabled.
    cp = cli(db, "key", "revoke", key_id(key_bt), "--tenant", "semarang")
    assert (cp.returncode, cp.stderr) == (1, f"kendali: no active key {key_id(key_bt)}\n")
    tid = db.scalar("SELECT token_id FROM screen_tokens")
    cp = cli(db, "token", "revoke", tid, "--tenant", "semarang")
    assert (cp.returncode, cp.stderr) == (1, f"kendali: no active screen token {tid}\n")
    assert db.rows("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL") == [(0,)]
    assert db.rows("SELECT count(*) FROM screen_tokens WHERE revoked_at IS NOT NULL") == [(0,)]
    kendali_cli(db, "user", "disable", "ani", "--tenant", "batang")
    assert db.rows("SELECT tenant FROM users WHERE disabled_at IS NOT NULL") == [("batang",)]
    kendali_cli(db, "key", "revoke", key_id(key_bt), "--tenant", "batang")
    assert db.rows("SELECT tenant FROM api_keys WHERE revoked_at IS NOT NULL") == [("batang",)]


def test_each_key_posts_into_its_own_tenant(db, make_server):
    """One server serves every tenant: a key of Batang, created (with Batang
    itself) while the server runs, posts into Batang, and Semarang's key
    into Semarang; each tenant's KPIs count only its own call.  A key of
    no tenant served (revoked) is refused, nothing stored."""
    srv = make_server(db, migrate=False)
    kendali_cli(db, "tenant", "create", "batang", "--name", "Kabupaten Batang", "--head", "Bupati")
    key_bt = last_line(kendali_cli(db, "key", "create", "--tenant", "batang", "--poster", "cc",
                                   "--types", "call"))
    key_sm = last_line(kendali_cli(db, "key", "create", "--tenant", "semarang", "--poster", "cc",
                                   "--types", "call"))
    srv.wait_key(key_sm)
    srv.wait_key(key_bt)
    http = srv.http()
    r = http.post_events([EVENT], key=key_bt)
    assert r.status == 202 and r.json == {"accepted": 1, "duplicates": 0}, r
    r = http.post_events([EVENT], key=key_sm)
    assert r.status == 202 and r.json == {"accepted": 1, "duplicates": 0}, r
    assert db.rows("SELECT tenant, poster, event_id FROM events ORDER BY tenant") == [
        ("batang", "cc", "t-1"), ("semarang", "cc", "t-1")]
    assert db.rows("SELECT tenant, call_id FROM calls ORDER BY tenant") == [
        ("batang", "C-1"), ("semarang", "C-1")]
    # The same poster in two tenants: a counter each.
    assert metrics_of(srv, "kendali_events_accepted_total") == {
        'tenant="semarang",poster="cc"': 1, 'tenant="batang",poster="cc"': 1}
    kendali_cli(db, "key", "revoke", key_id(key_bt), "--tenant", "batang")
    # Until the revocation reaches the server (NOTIFY) the key still
    # works: wait with empty batches, which store nothing either way.
    wait_until(lambda: http.post("/api/v1/events", "[]", key=key_bt,
                                 content_type="application/json").status == 401,
               what="the revoked key refused")
    assert_problem(http.post_events([dict(EVENT, id="t-2")], key=key_bt), 401, "unauthorized")
    assert db.count_events() == 2


def tenant_of(srv):
    r = srv.http().get("/api/v1/session", key=None)
    assert r.status == 200, r
    return r.json["tenant"]


def test_the_session_names_the_tenant_and_its_zone(db, make_server):
    """GET /api/v1/session carries the tenant the pages are titled with and
    the zone their clocks follow; the server writes its times in that zone,
    and counts "today" in it."""
    kendali_cli(db, "tenant", "create", "batang", "--name", "Kabupaten Batang", "--head", "Bupati")
    kendali_cli(db, "tenant", "create", "kota-makassar", "--name", "Kota Makassar", "--head", "Wali Kota",
                "--tz", "Asia/Makassar")
    kendali_cli(db, "tenant", "create", "jayapura", "--name", "Kota Jayapura", "--head", "Wali Kota",
                "--tz", "Asia/Jayapura")
    kendali_cli(db, "tenant", "create", "kolkata", "--name", "Test Kolkata", "--head", "Mayor",
                "--tz", "Asia/Kolkata")
    want = {
        None: {"id": "semarang", "name": "Kota Semarang", "head": "Wali Kota", "kind": "local",
               "time_zone": "Asia/Jakarta", "zone": "WIB", "utc_offset": "+07:00"},
        "batang": {"id": "batang", "name": "Kabupaten Batang", "head": "Bupati", "kind": "local",
                   "time_zone": "Asia/Jakarta", "zone": "WIB", "utc_offset": "+07:00"},
        "kota-makassar": {"id": "kota-makassar", "name": "Kota Makassar", "head": "Wali Kota",
                          "kind": "local", "time_zone": "Asia/Makassar", "zone": "WITA",
                          "utc_offset": "+08:00"},
        "jayapura": {"id": "jayapura", "name": "Kota Jayapura", "head": "Wali Kota", "kind": "local",
                     "time_zone": "Asia/Jayapura", "zone": "WIT", "utc_offset": "+09:00"},
        "kolkata": {"id": "kolkata", "name": "Test Kolkata", "head": "Mayor", "kind": "local",
                    "time_zone": "Asia/Kolkata", "zone": "UTC+05:30", "utc_offset": "+05:30"},
    }
    for tenant, expected in want.items():
        srv = make_server(db, *(["--tenant", tenant] if tenant else []), migrate=False)
        assert tenant_of(srv) == expected
        r = srv.http().get("/api/v1/kpis", key=None)
        assert r.status == 200 and r.json["at"].endswith(expected["utc_offset"]), r
        srv.close()


def test_a_province_or_unknown_tenant_is_not_the_default(db, kendali_bin):
    """`serve --tenant` names the default tenant (anonymous reads, logins
    naming none): a province or no tenant there stops the server at once,
    with the reason."""
    kendali_cli(db, "tenant", "create", "jateng", "--name", "Provinsi Jawa Tengah", "--head", "Gubernur",
                "--province", "--members", "semarang")
    for tenant, says in (("jateng", "jateng is a province: name one of its members as the default tenant"),
                         ("pati", 'unknown tenant "pati" (`kendali tenant list` shows them)')):
        cp = subprocess.run([str(kendali_bin), "serve", "--listen", f"127.0.0.1:{free_port()}",
                             "--tenant", tenant], capture_output=True, text=True, timeout=30,
                            env=sanitized_env(DATABASE_URL=db.url))
        assert cp.returncode == 1, (cp.returncode, cp.stderr)
        assert says in cp.stderr, cp.stderr


def metrics_of(srv, name):
    """A labelled counter of /metrics: {label text (inside the braces): value}."""
    r = srv.http().get("/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.raw.decode().splitlines():
        if line.startswith(name + "{"):
            label, value = line[len(name) + 1:].split("} ")
            out[label] = int(value)
    return out


def metrics_unknown(srv, tenant="semarang"):
    """kendali_events_unknown_district_total by district, from /metrics:
    every sample labelled with its tenant first (all of tenant)."""
    out = {}
    head = f'tenant="{tenant}",district="'
    for label, value in metrics_of(srv, "kendali_events_unknown_district_total").items():
        assert label.startswith(head) and label.endswith('"'), label
        out[label[len(head):-1]] = value
    return out


def report(eid, ticket, district):
    e = {"id": eid, "type": "report", "occurred_at": "2026-12-01T08:00:00+07:00",
         "report": {"ticket": ticket, "status": "received", "category": "road"}}
    if district is not None:
        e["district"] = district
    return e


def test_a_district_not_of_the_tenant_counts_as_other(db, make_server):
    """Once Semarang's kecamatan are imported, a report naming another
    district is stored as sent, counted under "other", and named in
    /metrics, resent or not; the count survives a restart, since it comes
    from the stored events and the imported names.  The running server
    reads the import at once: a report it counted under its own misspelt
    district before moves to "other" within a second."""
    srv = make_server(db, migrate=False)
    repo = Path(__file__).resolve().parent.parent.parent
    # Before any import every district is a kecamatan of its own.
    key = last_line(kendali_cli(db, "key", "create", "--poster", "lapor", "--types", "report,call"))
    gauge_key = last_line(kendali_cli(db, "key", "create", "--poster", "bpbd", "--types", "sensor"))
    srv.wait_key(key)
    srv.wait_key(gauge_key)
    http = srv.http()
    reading = ev_reading("SMG-BKB-SIMONGAN", 310)
    assert_problem(http.post_events([reading], key=gauge_key), 422, "invalid_event")
    assert http.post_events([report("r0", "T-0", "Pedurungn")], key=key).status == 202
    assert wait_until(lambda: http.kpis()["kpis"]["reports.by_district_open"] == {"Pedurungn": 1}, 5)
    assert metrics_unknown(srv) == {}

    kendali_cli(db, "tenant", "import", "semarang", repo / "data" / "tenants" / "semarang")
    assert wait_until(lambda: http.kpis()["kpis"]["reports.by_district_open"] == {"other": 1}, 2), \
        http.kpis()["kpis"]["reports.by_district_open"]
    # An imported gauge takes readings at once (siaga from 300 cm).
    r = http.post_events([reading], key=gauge_key)
    assert (r.status, r.json) == (202, {"accepted": 1, "duplicates": 0}), r
    assert wait_until(lambda: http.kpis()["kpis"]["sensors.by_level"]["siaga"] == 1, 2)
    batch = [report("r1", "T-1", "Pedurungan"), report("r2", "T-2", "Pedurungn"),
             report("r3", "T-3", "Batang"), report("r4", "T-4", None),
             {"id": "c1", "type": "call", "occurred_at": "2026-12-01T08:00:00+07:00",
              "district": "Semarang Utra",
              "call": {"call_id": "C-1", "status": "received", "category": "info"}}]
    r = http.post_events(batch, key=key)
    assert (r.status, r.json) == (202, {"accepted": 5, "duplicates": 0}), r
    want = {"Pedurungan": 1, "other": 3}     # T-0 (before the import) is "other" now too
    assert wait_until(lambda: http.kpis()["kpis"]["reports.by_district_open"] == want, 5), \
        http.kpis()["kpis"]["reports.by_district_open"]
    assert metrics_unknown(srv) == {"Pedurungn": 1, "Batang": 1, "Semarang Utra": 1}
    r = http.post_events(batch[1:3], key=key)
    assert (r.status, r.json) == (202, {"accepted": 0, "duplicates": 2}), r
    assert metrics_unknown(srv) == {"Pedurungn": 2, "Batang": 2, "Semarang Utra": 1}
    assert db.rows("SELECT event_id, district FROM events WHERE type <> 'sensor' ORDER BY event_id") == [
        ("c1", "Semarang Utra"), ("r0", "Pedurungn"), ("r1", "Pedurungan"), ("r2", "Pedurungn"),
        ("r3", "Batang"), ("r4", None)]
    srv.restart()
    assert srv.http().kpis()["kpis"]["reports.by_district_open"] == want
    assert metrics_unknown(srv) == {}
