"""
The provincial roll-up (docs/api.md section 2.5): a province is a tenant of
kind `province` whose screens and people have the role `province`.  With it,
GET /api/v1/kpis and the websocket carry `province.members` (one summary per
member, worst first) and `province.alerts` (the members' active alerts), each
number equal to what the member itself publishes; `?tenant=MEMBER` reads a
member's summary, read-only; nothing else of any tenant is reachable.
"""

import json
import time

import pytest

from harness import (Server, WsClient, assert_problem, ev_call, ev_reading, ev_report,
                     kendali_cli, sensor_body, wait_until)

SUMMARY_KEYS = ("id", "name", "head", "calls_today", "reports_open", "reports_overdue",
                "sla_met_30d", "gauges_siaga", "gauges_awas", "alerts_active")


def last_line(cp):
    return cp.stdout.strip().splitlines()[-1].strip()


def cli(db, *args):
    return kendali_cli(db, *args, check=False)


class World:
    pass


@pytest.fixture(scope="module")
def world(database, work_dir, kendali_bin):
    """Semarang and Batang, members of Jawa Tengah, and Pati, a regency of
    no province; a province token and user; agency keys and wall tokens of
    the members; one server."""
    w = World()
    db = w.db = database
    kendali_cli(db, "migrate")
    kendali_cli(db, "tenant", "create", "batang", "--name", "Kabupaten Batang", "--head", "Bupati")
    kendali_cli(db, "tenant", "create", "pati", "--name", "Kabupaten Pati", "--head", "Bupati")
    kendali_cli(db, "tenant", "create", "jateng", "--name", "Provinsi Jawa Tengah", "--head",
                "Gubernur", "--province", "--members", "semarang,batang")
    w.prov = last_line(kendali_cli(db, "token", "create", "--tenant", "jateng", "--name", "gub",
                                   "--role", "province"))
    w.key = {t: last_line(kendali_cli(db, "key", "create", "--tenant", t, "--poster", "feed",
                                      "--types", "call,report,sensor"))
             for t in ("semarang", "batang", "pati")}
    w.wall = {t: last_line(kendali_cli(db, "token", "create", "--tenant", t, "--name", "wall",
                                       "--role", "operator"))
              for t in ("semarang", "batang", "pati")}
    w.srv = Server(db, work_dir / "logs", name=f"province-{db.name}", anonymous=False)
    w.srv.start()
    w.http = w.srv.http()
    yield w
    w.srv.close()


def kpis_of(w, credential, tenant=None):
    path = "/api/v1/kpis" + (f"?tenant={tenant}" if tenant else "")
    r = w.http.get(path, key=credential)
    assert r.status == 200, f"GET {path}: {r}"
    return r.json["kpis"]


def expected_summary(w, tenant, name, head):
    """What the roll-up must say of a member: from the member's own KPIs,
    read with its own token."""
    k = kpis_of(w, w.wall[tenant])
    return {"id": tenant, "name": name, "head": head,
            "calls_today": k["calls.received_today"], "reports_open": k["reports.open"],
            "reports_overdue": k["reports.overdue"], "sla_met_30d": k["reports.sla_met_30d"],
            "gauges_siaga": k["sensors.by_level"]["siaga"],
            "gauges_awas": k["sensors.by_level"]["awas"],
            "alerts_active": len(k["alerts.active"])}


MEMBERS = {"semarang": ("Kota Semarang", "Wali Kota"), "batang": ("Kabupaten Batang", "Bupati")}


def worst_first(rows):
    return sorted(rows, key=lambda m: (-m["gauges_awas"], -m["gauges_siaga"],
                                       -m["alerts_active"], -m["reports_overdue"], m["name"]))


def test_role_province_belongs_to_provinces_only(world):
    """The command line and the database refuse a province role in a city,
    and a city's roles in a province; nothing is stored."""
    db = world.db
    before = db.scalar("SELECT count(*) FROM screen_tokens")
    for tenant, role in (("semarang", "province"), ("jateng", "wall"), ("jateng", "admin")):
        cp = cli(db, "token", "create", "--tenant", tenant, "--name", "x", "--role", role)
        assert cp.returncode == 2, (tenant, role, cp.stdout, cp.stderr)
        assert "province" in cp.stderr, cp.stderr
    assert db.scalar("SELECT count(*) FROM screen_tokens") == before
    with pytest.raises(Exception, match="does not belong"):
        db.execute("INSERT INTO screen_tokens (token_id, tenant, name, role, secret_sha256)"
                   " VALUES ('abcdefabcdef', 'semarang', 'x', 'province', '\\x00')")


def test_rollup_equals_each_members_own_kpis(world):
    """Interleaved feeds of both members (and of Pati, no member): each
    summary equals the member's own KPIs, worst first; Pati is not in it;
    the alerts are exactly the members' active alerts, each naming its
    member."""
    w = world
    h = w.http
    for t, sid, value in (("semarang", "SMG-G1", 50), ("batang", "BTG-G1", 420), ("pati", "PTI-G1", 500)):
        r = h.put(f"/api/v1/sensors/{sid}", sensor_body(f"gauge {sid}", {"siaga": 300, "awas": 400}),
                  key=w.key[t])
        assert r.status == 201, r
        assert h.post_events([ev_reading(sid, value)], key=w.key[t]).status == 202
    for i in range(6):
        for t in ("semarang", "batang", "pati"):
            if t == "batang" and i % 2:
                continue
            r = h.post_events([ev_call(status="received"), ev_report(status="received")], key=w.key[t])
            assert r.status == 202, r

    def current():
        got = kpis_of(w, w.prov)
        want = [expected_summary(w, t, *MEMBERS[t]) for t in MEMBERS]
        return got, want
    assert wait_until(lambda: (lambda g, e: g["province.members"] == worst_first(e))(*current()), 3), \
        current()
    got, want = current()
    assert [m["id"] for m in got["province.members"]] == ["batang", "semarang"]   # batang at awas
    assert all(tuple(m) == SUMMARY_KEYS for m in got["province.members"])
    assert want[0]["calls_today"] == 6 and want[1]["calls_today"] == 3
    # The alerts: batang's awas gauge, none of Pati's.
    alerts = got["province.alerts"]
    own = {t: kpis_of(w, w.wall[t])["alerts.active"] for t in MEMBERS}
    assert sorted(a["id"] for a in alerts) == sorted(a["id"] for t in MEMBERS for a in own[t])
    for a in alerts:
        t = a["tenant"]
        mine = next(x for x in own[t] if x["id"] == a["id"])
        assert {k: v for k, v in a.items() if k not in ("tenant", "tenant_name")} == mine
        assert a["tenant_name"] == MEMBERS[t][0]
    assert [a["sensor_id"] for a in alerts] == ["BTG-G1"]


def test_rollup_is_live_over_the_websocket(world):
    """A province screen's snapshot is the roll-up, and a member's new call
    reaches it as a kpis delta within 1 s of the 202."""
    w = world
    ws = WsClient(w.srv.ws_url, headers={"Authorization": f"Bearer {w.prov}"}).start()
    try:
        assert set(ws.state) == {"province.members", "province.alerts"}, ws.state.keys()
        before = {m["id"]: m["calls_today"] for m in ws.state["province.members"]}
        r = w.http.post_events([ev_call(status="received")], key=w.key["semarang"])
        assert r.status == 202, r
        t0 = time.monotonic()
        assert ws.wait(lambda: {m["id"]: m["calls_today"] for m in ws.state["province.members"]}
                       .get("semarang") == before["semarang"] + 1, 1.0), \
            (before, ws.state["province.members"], ws.messages[-3:])
        assert time.monotonic() - t0 <= 1.0
        # Pati is no member: its calls change nothing.
        n = len(ws.messages)
        assert w.http.post_events([ev_call(status="received")], key=w.key["pati"]).status == 202
        time.sleep(0.8)
        assert not [m for _, m in ws.messages[n:] if m.get("type") == "kpis" and m.get("kpis")]
        assert not ws.violations, ws.violations
    finally:
        ws.close()


def test_a_member_is_read_through_tenant_read_only(world):
    """?tenant=MEMBER reads the member's KPIs, alerts and session (role
    province, can read and mayor), and opens its mayor page; it cannot
    acknowledge, see the wall page or post; a tenant that is no member
    (Pati) answers as the province itself, none of Pati's data."""
    w = world
    h = w.http
    for t in MEMBERS:
        assert kpis_of(w, w.prov, t)["calls.received_today"] == \
            kpis_of(w, w.wall[t])["calls.received_today"]
        r = h.get(f"/api/v1/session?tenant={t}", key=w.prov)
        assert r.status == 200 and r.json["tenant"]["id"] == t, r
        assert (r.json["role"], r.json["can"]) == ("province", ["read", "mayor"]), r.json
        r = h.get(f"/api/v1/alerts?tenant={t}", key=w.prov)
        assert r.status == 200 and r.json == h.get("/api/v1/alerts", key=w.wall[t]).json, r
        assert h.get(f"/mayor?tenant={t}", key=w.prov).status == 200
        r = h.get(f"/?tenant={t}", key=w.prov)
        assert r.status == 303 and "denied=1" in r.headers["Location"], r
    alert_id = kpis_of(w, w.wall["batang"])["alerts.active"][0]["id"]
    r = h.post(f"/api/v1/alerts/{alert_id}/ack?tenant=batang", {"note": "x"}, key=w.prov)
    assert_problem(r, 403, "forbidden")
    assert w.db.scalar("SELECT count(*) FROM alerts WHERE acked_at IS NOT NULL") == 0
    # Not a member: the province's own answers, nothing of Pati.
    pati = kpis_of(w, w.prov, "pati")
    assert set(pati) == {"province.members", "province.alerts"}
    r = h.get("/api/v1/session?tenant=pati", key=w.prov)
    assert r.json["tenant"]["id"] == "jateng", r
    assert_problem(h.post_events([ev_call()], key=w.prov), 401, "unauthorized")


def test_pages_by_role(world):
    """/provinsi is the province's page: 200 for its token, a denied
    redirect for a member's operator; the province may not open the wall."""
    w = world
    h = w.http
    r = h.get("/provinsi", key=w.prov)
    assert r.status == 200 and b"<html" in r.raw[:200].lower(), r
    r = h.get("/provinsi", key=w.wall["semarang"])
    assert r.status == 303 and r.headers["Location"].startswith("/login?next=%2Fprovinsi"), r
    assert "denied=1" in r.headers["Location"]
    r = h.get("/", key=w.prov)
    assert r.status == 303 and "denied=1" in r.headers["Location"], r


def test_a_province_created_while_running_is_served(world):
    """A new province, its members and its token work within a second,
    without a restart."""
    w = world
    kendali_cli(w.db, "tenant", "create", "jatim", "--name", "Provinsi Jawa Timur", "--head",
                "Gubernur", "--province", "--members", "pati")
    tok = last_line(kendali_cli(w.db, "token", "create", "--tenant", "jatim", "--name", "g",
                                "--role", "province"))
    got = wait_until(lambda: (lambda r: r.status == 200 and r.json["kpis"]["province.members"])(
        w.http.get("/api/v1/kpis", key=tok)), 3, "the new province's roll-up")
    assert [m["id"] for m in got] == ["pati"]
    want = expected_summary(w, "pati", "Kabupaten Pati", "Bupati")
    assert got == [want], (got, want)


def test_a_governor_logs_out_from_a_members_summary(world):
    """A province's user reading a member (its pages send `?tenant=` on
    every request, the logout too) ends its own session: in PostgreSQL,
    in its province, with the audit row there; the cookie no longer
    reads anything."""
    w = world
    kendali_cli(w.db, "user", "add", "gubernur", "--tenant", "jateng", "--role", "province",
                input="gubernur-pw-1\n")
    c = w.srv.http()
    try:
        r = c.post("/api/v1/session", {"username": "gubernur", "password": "gubernur-pw-1",
                                       "tenant": "jateng"}, key=None)
        assert r.status == 200, r
        cookie = next(v.split(";")[0].split("=", 1)[1] for v in r.headers.get_all("Set-Cookie")
                      if v.startswith("kendali_session="))
        r = c.get("/api/v1/session?tenant=batang", key=None, cookie=cookie)
        assert r.status == 200 and r.json["tenant"]["id"] == "batang", r
        r = c.post("/api/v1/logout?tenant=batang", {}, key=None, cookie=cookie)
        assert r.status == 200 and r.json == {"logged_out": True}, r
    finally:
        c.close()
    assert w.db.rows("SELECT tenant, ended_at IS NOT NULL FROM sessions WHERE username = 'gubernur'") == \
        [("jateng", True)]
    assert w.db.rows("SELECT tenant FROM audit WHERE action = 'session.logout'") == [("jateng",)]
    r = w.http.get("/api/v1/session?tenant=batang", key=None, cookie=cookie)
    assert r.status == 401, r
