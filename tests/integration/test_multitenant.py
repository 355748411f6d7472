"""
One server, every tenant: a `kendali serve` serves each local tenant of its
database, and the tenant of a request is the tenant of its credential (an
agency key, a screen token, a login).  `serve --tenant` only names the
default tenant: the one anonymous access reads and logins that name no
tenant go to.

The module's server (no anonymous access) serves semarang (made by
migrate) and batang (made with `kendali tenant create` before it starts).
Both get the same poster names, the same event ids, the same call and
ticket ids and the same sensor id GAUGE-1 with other thresholds, fed
concurrently, so that anything keyed without the tenant shows.  A model of
each tenant (its events, its registry, its acknowledgements) is kept as the
tests post; expectations come from reference.py over that tenant's events
alone, and from PostgreSQL.

- each tenant's KPIs, series, past values, alerts, sensors and session, read
  with its own token or login, are its own; the rows carry their tenant;
- another tenant's key, token or login never reads, writes, acknowledges or
  hears anything of the other: another tenant's sensor or alert gets the
  answer of one that does not exist, and the other tenant's rows in
  PostgreSQL stay as they were;
- a tenant created while the server runs is served within about a second;
- a login may name its tenant (`"tenant"`); a wrong or unknown tenant is
  answered as a wrong password is;
- anonymous access reads the default tenant.

Logins are rate-limited per address: each test that logs in uses loopback
addresses of its own.
"""

import itertools
import json
import random
import re
import threading
import time
import urllib.parse
from datetime import timedelta

import pytest

import reference
from harness import (WIB, Http, Server, WsClient, assert_problem, compare_kpis, fmt_time, kendali_cli,
                     near_wib_midnight, parse_time, sensor_body, session_set_cookie, utcnow, wait_until,
                     wib_midnight)

SM, BT, KD = "semarang", "batang", "kendal"

TENANT_INFO = {
    SM: {"id": "semarang", "name": "Kota Semarang", "head": "Wali Kota", "kind": "local",
         "time_zone": "Asia/Jakarta", "zone": "WIB", "utc_offset": "+07:00"},
    BT: {"id": "batang", "name": "Kabupaten Batang", "head": "Bupati", "kind": "local",
         "time_zone": "Asia/Jakarta", "zone": "WIB", "utc_offset": "+07:00"},
    KD: {"id": "kendal", "name": "Kabupaten Kendal", "head": "Bupati", "kind": "local",
         "time_zone": "Asia/Jakarta", "zone": "WIB", "utc_offset": "+07:00"},
}

# The same poster names in every tenant: event ids are unique per poster of
# a tenant, not across tenants.
CALLS_POSTER = "callcentre-112"
REPORTS_POSTER = "lapor"

# Tokens: (name, role) per tenant.
TOKENS = {
    SM: {"wall": ("wall-smg", "wall"), "ops": ("ops-smg", "operator"), "mayor": ("mayor-smg", "mayor")},
    BT: {"wall": ("wall-btg", "wall"), "ops": ("ops-btg", "operator"), "mayor": ("mayor-btg", "mayor")},
}
# Users: the same name "ani" in both tenants, with other passwords and roles.
USERS = {
    SM: {"ani": ("operator", "ani-semarang-pw-1")},
    BT: {"ani": ("mayor", "ani-batang-pw-2"), "budi": ("operator", "budi-batang-pw-3")},
}
CAN = {"wall": ["read", "wall"], "operator": ["read", "ack", "wall"], "mayor": ["read", "mayor"]}

# GAUGE-1 exists in both tenants with other thresholds: the same readings
# are normal in semarang and awas in batang.
OFFLINE_S = 3600
SENSORS = {
    SM: {"GAUGE-1": {"siaga": 200, "awas": 300},
         "SMG-ONLY": {"waspada": 50, "siaga": 100, "awas": 150}},
    BT: {"GAUGE-1": {"siaga": 100, "awas": 150},
         "BTG-ONLY": {"siaga": 10, "awas": 20},
         "BTG-QUIET": {"siaga": 1, "awas": 2}},             # never reports
}
READINGS = {      # (sensor, value, minutes ago)
    SM: [("GAUGE-1", 121, 9), ("SMG-ONLY", 120, 6), ("GAUGE-1", 181, 4)],
    BT: [("GAUGE-1", 133, 8), ("BTG-ONLY", 5, 5), ("GAUGE-1", 177, 3)],
}

CALL_CATS = ["emergency", "fire", "medical", "police", "disaster", "complaint", "info", "other"]
REPORT_CATS = ["flood", "road", "drainage", "waste", "streetlight", "traffic", "public_order", "health",
               "administration", "other"]
AGENCIES = ["DPU", "DLH", "BPBD", "DISHUB", "DINKES"]
DISTRICTS = {SM: ["Pedurungan", "Tembalang", "Semarang Utara", "Genuk"],
             BT: ["Batang", "Warungasem", "Kandeman"],
             KD: ["Kendal", "Kaliwungu"]}

CONVERGE_S = 5.0
QUIET_S = 0.6        # how long another tenant's screen is watched for stray messages
NEW_TENANT_S = 3.0   # "within about a second", with room for a loaded machine

_sources = itertools.count(2)


def next_source():
    """A loopback address of this module's own (127.61.0.2, ...), so that
    the login rate limit per address of one test does not touch another."""
    n = next(_sources)
    return f"127.61.{n // 250}.{n % 250 + 2}"


def last_line(cp):
    lines = [ln.strip() for ln in cp.stdout.splitlines() if ln.strip()]
    assert lines, f"nothing printed on stdout: {cp.stderr}"
    return lines[-1]


def bearer(cred):
    return {"Authorization": f"Bearer {cred}"}


def cookie(value):
    return {"Cookie": f"kendali_session={value}"}


# --------------------------------------------------------------------------
# Feeds
# --------------------------------------------------------------------------


def gen_feed(rng, tenant, n_calls, n_tickets, base):
    """(call events, report events) of one tenant, times before base; ids
    c-0000... and r-0000... and call/ticket ids C-000.../T-000..., the same
    in every tenant.  No time lies near a KPI window's edge (1 h, 24 h,
    72 h), so nothing moves while the module runs."""
    def at(minutes):
        return fmt_time(base - timedelta(minutes=minutes))

    calls, reports = [], []
    cn = itertools.count()
    rn = itertools.count()

    def call(cid, status, m, category=None):
        body = {"call_id": cid, "status": status}
        if category:
            body["category"] = category
        e = {"id": f"c-{next(cn):04d}", "type": "call", "occurred_at": at(m), "call": body}
        if rng.random() < 0.3:
            e["district"] = rng.choice(DISTRICTS[tenant])
        calls.append(e)

    for i in range(n_calls):
        cid = f"C-{i:03d}"
        recv = rng.uniform(3, 50) if rng.random() < 0.5 else rng.uniform(70, 20 * 60)
        call(cid, "received", recv, rng.choice(CALL_CATS))
        x = rng.random()
        if x < 0.45:
            answered = recv - rng.randint(2, 60) / 60.0
            call(cid, "answered", answered, rng.choice(CALL_CATS) if rng.random() < 0.2 else None)
            closed = answered - rng.uniform(1, 10)
            if closed > 0.5 and rng.random() < 0.5:
                call(cid, "closed", closed)
        elif x < 0.65:
            call(cid, "abandoned", recv - rng.randint(10, 90) / 60.0)

    def report(ticket, status, h, **extra):
        body = {"ticket": ticket, "status": status}
        body.update({k: v for k, v in extra.items() if k != "district" and v is not None})
        e = {"id": f"r-{next(rn):04d}", "type": "report", "occurred_at": at(h * 60), "report": body}
        if extra.get("district"):
            e["district"] = extra["district"]
        reports.append(e)

    for i in range(n_tickets):
        tk = f"T-{i:03d}"
        recv = rng.uniform(0.2, 70) if rng.random() < 0.7 else rng.uniform(74, 120)
        report(tk, "received", recv, category=rng.choice(REPORT_CATS),
               district=rng.choice(DISTRICTS[tenant]) if rng.random() < 0.8 else None,
               title=f"Laporan {tenant} {i}")
        x = rng.random()
        if x < 0.6 and recv > 0.3:
            disp = recv - rng.uniform(0.05, min(0.25, recv - 0.1))
            report(tk, "dispatched", disp, agency=rng.choice(AGENCIES))
            if rng.random() < 0.6:
                res = disp - rng.uniform(0.5, 100)
                if res > 0.05:
                    report(tk, "resolved", res)
        elif x < 0.7:
            report(tk, "rejected", recv - 0.05)
    return calls, reports


# --------------------------------------------------------------------------
# The world: one server, two tenants, a model of each
# --------------------------------------------------------------------------


class World:
    def __init__(self):
        self.posted = {}      # tenant -> [(poster, event)] in the order posted
        self.registry = {}    # tenant -> {sensor_id: entry}
        self.acks = {}        # tenant -> {(sensor_id, kind): acked_by}
        self.keys = {}        # tenant -> {"calls"|"reports"|"sensors": key}
        self.posters = {}     # tenant -> {"calls"|"reports"|"sensors": poster}
        self.tokens = {}      # tenant -> {"wall"|"ops"|"mayor": token}
        self.sessions = {}    # (tenant, username) -> session cookie value
        self.lock = threading.Lock()

    def events(self, tenant):
        return [e for _, e in self.posted.get(tenant, [])]

    def expected(self, tenant, now):
        k = reference.compute_kpis(self.events(tenant), self.registry.get(tenant, {}), now)
        for a in k["alerts.active"]:
            by = self.acks.get(tenant, {}).get((a["sensor_id"], a["kind"]))
            if by is not None:
                a["acked_by"] = by
        return k

    def http(self, **kw):
        return self.srv.http(**kw)


def post(w, tenant, which, events, http=None, fmt="json", accepted=None):
    """Posts events with the tenant's key `which`; asserts 202 with every
    event accepted (or `accepted`), and adds them to the tenant's model."""
    client = http or w.http()
    try:
        r = client.post_events(events, key=w.keys[tenant][which], fmt=fmt)
    finally:
        if http is None:
            client.close()
    n = len(events) if accepted is None else accepted
    assert r.status == 202 and r.json == {"accepted": n, "duplicates": len(events) - n}, \
        f"{tenant}: POST /api/v1/events with its {which} key: {r}"
    with w.lock:
        w.posted.setdefault(tenant, []).extend((w.posters[tenant][which], e) for e in events)
    return r


def put_sensor(w, tenant, sid, thresholds, key=None, extra=None, want_status=201):
    body = sensor_body(f"{sid} ({tenant})", thresholds, OFFLINE_S, district=DISTRICTS[tenant][0])
    body.update(extra or {})
    c = w.http()
    try:
        r = c.put(f"/api/v1/sensors/{sid}", body, key=key or w.keys[tenant]["sensors"])
    finally:
        c.close()
    assert r.status == want_status, f"{tenant}: PUT /api/v1/sensors/{sid}: expected {want_status}, got {r}"
    assert r.json["sensor_id"] == sid, r
    w.registry.setdefault(tenant, {})[sid] = dict(body, registered_at=utcnow())
    return r


def reading(sid, value, minutes_ago, tenant):
    return {"id": f"{tenant}-{sid}@{minutes_ago:.4f}-{value}", "type": "sensor",
            "occurred_at": fmt_time(utcnow() - timedelta(minutes=minutes_ago)),
            "sensor": {"sensor_id": sid, "value": value}}


def away_from_midnight(margin_s=90):
    """Waits out a WIB midnight that is less than margin_s away: "today"
    changes then, and messages with it."""
    now = utcnow()
    if near_wib_midnight(now, margin_s):
        nxt = wib_midnight(now) + timedelta(days=1)
        if (nxt - now).total_seconds() < margin_s:
            time.sleep((nxt - now).total_seconds() + 2)


def converge(w, tenant, client, timeout=CONVERGE_S, what=""):
    """GET /api/v1/kpis with `client` (a credential of `tenant`) until it
    equals the tenant's model at its own `at`; returns the body."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/api/v1/kpis")
        assert r.status == 200 and isinstance(r.json, dict), f"{tenant}{what}: GET /api/v1/kpis: {r}"
        body = r.json
        at = parse_time(body["at"])
        if near_wib_midnight(at, 10):
            time.sleep(1)
            deadline += 1
            continue
        diffs = compare_kpis(body["kpis"], w.expected(tenant, at))
        if not diffs:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"{tenant}{what}: GET /api/v1/kpis differs from the model of its own events at "
                        f"{body['at']}:\n  " + "\n  ".join(diffs), pytrace=False)
        time.sleep(0.2)


def login_req(w, body, source):
    c = w.http(source=source)
    try:
        return c.post("/api/v1/session", body, key=None)
    finally:
        c.close()


def login_ok(w, body, source):
    r = login_req(w, body, source)
    assert r.status == 200, f"login {body}: {r}"
    sc = session_set_cookie(r)
    assert sc and sc[0], f"login {body}: no session cookie: {r.headers.get_all('Set-Cookie')}"
    return sc[0], r


# --------------------------------------------------------------------------
# PostgreSQL: every row of a tenant
# --------------------------------------------------------------------------


def tenant_tables(db):
    return [r[0] for r in db.rows(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'tenant' ORDER BY 1")]


def _plain(v):
    return bytes(v) if isinstance(v, memoryview) else v


def snapshot(db, tenant):
    """Every row of every table that has a `tenant` column, for the
    tenant, and its row of `tenants` (kpi_history: the rows older than an
    hour, since the server records every tenant's KPIs at each 5-minute
    mark while it runs)."""
    out = {}
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            for t in tenant_tables(db):
                sql = f'SELECT * FROM "{t}" WHERE tenant = %s'
                if t == "kpi_history":
                    sql += " AND at < now() - interval '1 hour'"
                cur.execute(sql, (tenant,))
                out[t] = sorted(repr(tuple(map(_plain, row))) for row in cur.fetchall())
            cur.execute("SELECT * FROM tenants WHERE id = %s", (tenant,))
            out["tenants"] = [repr(tuple(map(_plain, row))) for row in cur.fetchall()]
    finally:
        conn.close()
    return out


def snapshot_diff(before, after):
    diffs = []
    for t in sorted(set(before) | set(after)):
        b, a = set(before.get(t, [])), set(after.get(t, []))
        if b != a:
            diffs.append(f"{t}: rows gone {sorted(b - a)[:5]}, rows new {sorted(a - b)[:5]}")
    return diffs


def assert_unchanged(db, tenant, before, what):
    diffs = snapshot_diff(before, snapshot(db, tenant))
    assert not diffs, f"{what} changed rows of {tenant}:\n  " + "\n  ".join(diffs)


def same_answer(r, ref, what, subst=None):
    """r is answered exactly as ref (another tenant's object vs one that does
    not exist): status, content type, the whole problem body; subst maps
    text of r's detail to ref's (an id the detail names)."""
    assert r.status == ref.status and r.content_type == ref.content_type, \
        f"{what}: {r!r}, while one that does not exist gets {ref!r}"
    a, b = dict(r.json or {}), dict(ref.json or {})
    if subst and isinstance(a.get("detail"), str):
        for x, y in subst.items():
            a["detail"] = re.sub(r"(?<![A-Za-z0-9_.:-])" + re.escape(x) + r"(?![A-Za-z0-9_.:-])", y, a["detail"])
    assert a == b, f"{what}: {r.json}, while one that does not exist gets {ref.json}"


# --------------------------------------------------------------------------
# The module's fixture
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(database, work_dir, kendali_bin):
    w = World()
    db = w.db = database
    kendali_cli(db, "migrate")
    kendali_cli(db, "tenant", "create", BT, "--name", "Kabupaten Batang", "--head", "Bupati")
    for t in (SM, BT):
        w.posters[t] = {"calls": CALLS_POSTER, "reports": REPORTS_POSTER, "sensors": f"bpbd-{t}"}
        w.keys[t] = {
            which: last_line(kendali_cli(db, "key", "create", "--tenant", t, "--poster", w.posters[t][which],
                                         "--types", typ))
            for which, typ in (("calls", "call"), ("reports", "report"), ("sensors", "sensor"))}
        w.tokens[t] = {k: last_line(kendali_cli(db, "token", "create", "--tenant", t, "--name", name,
                                                "--role", role))
                       for k, (name, role) in TOKENS[t].items()}
        for user, (role, pw) in USERS[t].items():
            kendali_cli(db, "user", "add", user, "--tenant", t, "--role", role, input=pw + "\n")
        w.acks[t] = {}

    # Past KPIs, straight into the table: ?at= must find each tenant's own.
    w.hist_base = (utcnow() - timedelta(days=2)).replace(microsecond=0)
    w.history = {
        SM: [(w.hist_base, {"reports.open": 11, "calls.received_today": 5})],
        BT: [(w.hist_base + timedelta(seconds=60), {"reports.open": 22, "calls.received_today": 7}),
             (w.hist_base - timedelta(days=1), {"reports.open": 33})],
    }
    for t, recs in w.history.items():
        for at, k in recs:
            db.execute("INSERT INTO kpi_history (tenant, at, kpis) VALUES (%s, %s, %s)",
                       (t, at, json.dumps(k)))

    w.srv = Server(db, work_dir / "logs", name=f"multitenant-{db.name}", anonymous=False)
    w.srv.start()
    try:
        src = next_source()
        for t in (SM, BT):
            for user, (role, pw) in USERS[t].items():
                w.sessions[(t, user)] = login_ok(w, {"username": user, "password": pw, "tenant": t}, src)[0]

        # Sensors first (readings need them), then the feeds of both
        # tenants at once: four posters' threads, batches interleaved.
        for t in (SM, BT):
            for sid, th in SENSORS[t].items():
                put_sensor(w, t, sid, th)
        base = utcnow()
        feeds = {}
        for t, seed, nc, nt in ((SM, 11, 70, 45), (BT, 23, 45, 30)):
            calls, reports = gen_feed(random.Random(seed), t, nc, nt, base)
            feeds[(t, "calls")] = calls
            feeds[(t, "reports")] = reports
        failures = []

        def worker(t, which, events):
            c = w.http()
            try:
                for i in range(0, len(events), 6):
                    post(w, t, which, events[i:i + 6], http=c, fmt="ndjson" if i % 12 else "json")
            except BaseException as e:       # reported by the fixture
                failures.append(f"{t}/{which}: {e}")
            finally:
                c.close()
        threads = [threading.Thread(target=worker, args=(t, which, evs)) for (t, which), evs in feeds.items()]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not failures, "\n".join(failures)
        w.shared_ids = ({e["id"] for e in feeds[(SM, "calls")]} & {e["id"] for e in feeds[(BT, "calls")]})
        assert len(w.shared_ids) >= 40

        for t in (SM, BT):
            for sid, value, m in READINGS[t]:
                post(w, t, "sensors", [reading(sid, value, m, t)])

        w.clients = {t: w.http(key=w.tokens[t]["wall"]) for t in (SM, BT)}
        for t in (SM, BT):
            converge(w, t, w.clients[t], timeout=10)
        yield w
    finally:
        for c in getattr(w, "clients", {}).values():
            c.close()
        w.srv.close()


def alert_id(w, tenant, sensor_id, kind="level"):
    c = w.http(key=w.tokens[tenant]["wall"])
    try:
        r = c.get("/api/v1/alerts")
    finally:
        c.close()
    assert r.status == 200, r
    ids = [a["id"] for a in r.json["alerts"] if a["sensor_id"] == sensor_id and a["kind"] == kind]
    assert len(ids) == 1, f"{tenant}: expected one active {kind} alert of {sensor_id}: {r.json}"
    return ids[0]


# --------------------------------------------------------------------------
# 1. Each tenant's KPIs from its own events; rows carry their tenant
# --------------------------------------------------------------------------


def test_each_tenant_kpis_are_its_own_events(world):
    """GET /api/v1/kpis with each tenant's token, and with each tenant's
    login, equals the reference over that tenant's events and registry
    alone; the two differ (the feeds and GAUGE-1's thresholds do)."""
    w = world
    bodies = {}
    for t in (SM, BT):
        bodies[t] = converge(w, t, w.clients[t], what=" (wall token)")
        user = "ani"
        c = w.http(cookie=w.sessions[(t, user)])
        try:
            converge(w, t, c, what=f" (login {user})")
        finally:
            c.close()
    ks, kb = bodies[SM]["kpis"], bodies[BT]["kpis"]
    assert ks["calls.received_today"] != kb["calls.received_today"] or ks["reports.open"] != kb["reports.open"]
    g_s = {x["sensor_id"]: x for x in ks["sensors.latest"]}["GAUGE-1"]
    g_b = {x["sensor_id"]: x for x in kb["sensors.latest"]}["GAUGE-1"]
    assert (g_s["value"], g_s["level"]) == (181.0, "normal"), g_s
    assert (g_b["value"], g_b["level"]) == (177.0, "awas"), g_b
    assert {(a["sensor_id"], a["severity"]) for a in ks["alerts.active"]} >= {("SMG-ONLY", "siaga")}
    assert ("GAUGE-1", "awas") in {(a["sensor_id"], a["severity"]) for a in kb["alerts.active"]}
    assert "GAUGE-1" not in {a["sensor_id"] for a in ks["alerts.active"]}


def test_same_poster_and_event_ids_are_separate_per_tenant(world):
    """Both tenants posted the ids c-0000... under the poster callcentre-112
    (every one accepted, none a duplicate); re-posting is a duplicate only
    within its own tenant."""
    w = world
    shared = sorted(w.shared_ids)[:5]
    for t in (SM, BT):
        mine = [e for p, e in w.posted[t] if p == CALLS_POSTER and e["id"] in shared]
        c = w.http()
        try:
            r = c.post_events(mine, key=w.keys[t]["calls"])
        finally:
            c.close()
        assert r.status == 202 and r.json == {"accepted": 0, "duplicates": len(mine)}, r
    rows = w.db.rows("SELECT tenant, count(*) FROM events WHERE poster = %s AND event_id = ANY(%s)"
                     " GROUP BY tenant ORDER BY tenant", (CALLS_POSTER, sorted(w.shared_ids)))
    assert rows == [(BT, len(w.shared_ids)), (SM, len(w.shared_ids))], rows


def test_rows_carry_their_tenant(world):
    """events, calls, tickets, sensors, alerts, audit and sessions in
    PostgreSQL: each tenant's rows are exactly its own."""
    w = world
    db = w.db
    for t in (SM, BT):
        events = w.events(t)
        want = sorted((p, e["id"], e["type"], e[e["type"]].get("call_id") or e[e["type"]].get("ticket")
                       or e[e["type"]].get("sensor_id"), e[e["type"]].get("status"))
                      for p, e in w.posted[t])
        got = sorted(db.rows("SELECT poster, event_id, type, subject, status FROM events WHERE tenant = %s", (t,)))
        assert got == want, f"{t}: events rows differ from what was posted with its keys"
        values = sorted(db.rows("SELECT subject, value FROM events WHERE tenant = %s AND type = 'sensor'", (t,)))
        assert values == sorted((e["sensor"]["sensor_id"], float(e["sensor"]["value"]))
                                for e in events if e["type"] == "sensor"), values

        now = utcnow()
        calls = sorted((c["call_id"], reference.CALL_RANK[c["status"]], c["category"])
                       for c in reference.calls_table(events))
        assert sorted(db.rows("SELECT call_id, status, category FROM calls WHERE tenant = %s", (t,))) == calls, t
        tickets = sorted((k["ticket"], reference.REPORT_RANK[k["status"]], k["category"], k["agency"], k["district"])
                         for k in reference.tickets_table(events, now))
        assert sorted(db.rows("SELECT ticket, status, category, agency, district FROM tickets WHERE tenant = %s",
                              (t,))) == tickets, t
        sensors = sorted((sid, e["thresholds"].get("waspada"), e["thresholds"].get("siaga"),
                          e["thresholds"].get("awas"), e["offline_after_s"])
                         for sid, e in w.registry[t].items())
        assert sorted(db.rows("SELECT sensor_id, waspada, siaga, awas, offline_after_s FROM sensors"
                              " WHERE tenant = %s", (t,))) == sensors, t
        active = sorted((a["kind"], a["sensor_id"], a["severity"]) for a in w.expected(t, utcnow())["alerts.active"])
        wait_until(lambda: sorted(db.rows("SELECT kind, sensor_id, severity FROM alerts"
                                          " WHERE tenant = %s AND cleared_at IS NULL", (t,))) == active,
                   3.0, f"{t}: active alerts stored as {active}")
        # The gateway of each tenant has a poster of its own: its audit rows
        # (sensor.put, events.post) are all in its tenant.
        aud = db.rows("SELECT tenant, action, count(*) FROM audit WHERE actor = %s GROUP BY 1, 2 ORDER BY 1, 2",
                      (w.posters[t]["sensors"],))
        assert {r[0] for r in aud} == {t} and {r[1] for r in aud} >= {"sensor.put", "events.post"}, aud
        for user in USERS[t]:
            sid = w.sessions[(t, user)].split("_")[1]
            assert db.rows("SELECT tenant, username FROM sessions WHERE session_id = %s", (sid,)) == [(t, user)]
    aud = db.rows("SELECT tenant, count(*) FROM audit WHERE action = 'session.login' GROUP BY 1 ORDER BY 1")
    assert dict(aud).get(BT, 0) >= 2 and dict(aud).get(SM, 0) >= 1, aud
    for table in tenant_tables(db):
        tenants = {r[0] for r in db.rows(f'SELECT DISTINCT tenant FROM "{table}"')}
        assert tenants <= {SM, BT, KD}, f"{table} holds rows of {tenants}"


# --------------------------------------------------------------------------
# 2. Isolation, endpoint by endpoint
# --------------------------------------------------------------------------


def test_events_post_isolation(world):
    """POST /api/v1/events: batang's key writes into batang only, whatever
    the event says (an id semarang used, a "tenant" member, a sensor only
    semarang has: refused as a sensor that does not exist); screen tokens
    and logins of either tenant cannot post; semarang's rows do not move."""
    w = world
    db = w.db
    before = snapshot(db, SM)
    # An id semarang's call centre used and batang's did not: new in batang.
    sm_ids = {e["id"] for p, e in w.posted[SM] if p == CALLS_POSTER}
    bt_ids = {e["id"] for p, e in w.posted[BT] if p == CALLS_POSTER}
    only_sm = sorted(sm_ids - bt_ids)[-1]
    ev = {"id": only_sm, "type": "call", "occurred_at": fmt_time(utcnow() - timedelta(minutes=2)),
          "call": {"call_id": "C-ISO-1", "status": "received", "category": "fire"}}
    post(w, BT, "calls", [ev])
    c = w.http()
    try:
        r = c.post_events([ev], key=w.keys[BT]["calls"])
        assert r.status == 202 and r.json == {"accepted": 0, "duplicates": 1}, r
        # A "tenant" member is one the server does not know: ignored.
        ev2 = {"id": "iso-tenant-member", "type": "report", "tenant": SM,
               "occurred_at": fmt_time(utcnow() - timedelta(minutes=2)),
               "report": {"ticket": "T-ISO-1", "status": "received", "category": "road"}}
        post(w, BT, "reports", [ev2], http=c)
        assert db.rows("SELECT tenant FROM events WHERE event_id = 'iso-tenant-member'") == [(BT,)]

        # A reading of semarang's own sensor, with batang's key: as if it
        # did not exist.
        mine = c.post_events([reading("SMG-ONLY", 140, 1, BT)], key=w.keys[BT]["sensors"])
        none = c.post_events([reading("NOPE-GAUGE", 140, 1, BT)], key=w.keys[BT]["sensors"])
        assert_problem(none, 422, "invalid_event", field="sensor.sensor_id")
        same_answer(mine, none, "a reading of another tenant's sensor", {"SMG-ONLY": "NOPE-GAUGE"})

        # Screen tokens and logins read; they do not write.
        creds = [bearer(w.tokens[t][k]) for t in (SM, BT) for k in ("wall", "ops")] + \
                [cookie(w.sessions[(SM, "ani")]), cookie(w.sessions[(BT, "budi")])]
        for h in creds:
            r = c.post("/api/v1/events", [ev_iso_call()], key=None, headers=h, fresh=True)
            assert_problem(r, 401, "unauthorized")
    finally:
        c.close()
    assert db.rows("SELECT count(*) FROM events WHERE event_id LIKE 'iso-call-%%'") == [(0,)]
    assert db.rows("SELECT tenant, subject FROM events WHERE poster = %s AND event_id = %s ORDER BY 1",
                   (CALLS_POSTER, only_sm)) == [(BT, "C-ISO-1"), (SM, [e for e in w.events(SM)
                                                                       if e["id"] == only_sm][0]["call"]["call_id"])]
    converge(w, BT, w.clients[BT])
    converge(w, SM, w.clients[SM])
    time.sleep(0.3)        # audit rows are written right after the answer
    assert_unchanged(db, SM, before, "batang's posts")


_iso = itertools.count()


def ev_iso_call():
    return {"id": f"iso-call-{next(_iso)}", "type": "call", "occurred_at": fmt_time(utcnow()),
            "call": {"call_id": "C-ISO-X", "status": "received", "category": "info"}}


def test_sensor_put_and_get_isolation(world):
    """PUT /api/v1/sensors/{id} with semarang's key changes semarang's
    GAUGE-1 only, and creates its own BTG-ONLY (201, as for any new id);
    GET /api/v1/sensors with each tenant's key, token or login lists that
    tenant's registry alone; batang's rows do not move."""
    w = world
    db = w.db
    before = snapshot(db, BT)
    put_sensor(w, SM, "GAUGE-1", {"waspada": 100, "siaga": 250, "awas": 350}, extra={"tenant": BT},
               want_status=200)
    put_sensor(w, SM, "BTG-ONLY", {"siaga": 500, "awas": 600}, want_status=201)
    c = w.http()
    try:
        mine = c.post_events([reading("BTG-QUIET", 3, 1, SM)], key=w.keys[SM]["sensors"])
        none = c.post_events([reading("NOPE-GAUGE-2", 3, 1, SM)], key=w.keys[SM]["sensors"])
        assert_problem(none, 422, "invalid_event", field="sensor.sensor_id")
        same_answer(mine, none, "a reading of another tenant's sensor", {"BTG-QUIET": "NOPE-GAUGE-2"})

        for t in (SM, BT):
            now = utcnow()
            rows = {x["sensor_id"]: x for x in reference.sensor_rows(w.events(t), w.registry[t], now)}
            for h in (bearer(w.keys[t]["sensors"]), bearer(w.tokens[t]["wall"]), cookie(w.sessions[(t, "ani")])):
                r = c.get("/api/v1/sensors", key=None, headers=h)
                assert r.status == 200, r
                got = r.json["sensors"]
                assert [s["sensor_id"] for s in got] == sorted(w.registry[t], key=lambda s: s.encode()), \
                    f"{t}: GET /api/v1/sensors lists {[s['sensor_id'] for s in got]}"
                for s in got:
                    reg = w.registry[t][s["sensor_id"]]
                    want = {k: float(v) for k, v in reg["thresholds"].items()}
                    assert s["thresholds"] == want and s["name"] == reg["name"], (t, s)
                    row = rows[s["sensor_id"]]
                    assert (s["value"], s["level"], s["online"]) == (row["value"], row["level"], row["online"]), \
                        (t, s, row)
    finally:
        c.close()
    g = {x["sensor_id"]: x for x in converge(w, SM, w.clients[SM])["kpis"]["sensors.latest"]}["GAUGE-1"]
    assert g["level"] == "waspada", g
    converge(w, BT, w.clients[BT])
    assert db.rows("SELECT tenant, siaga, awas FROM sensors WHERE sensor_id = 'GAUGE-1' ORDER BY 1") == \
        [(BT, 100.0, 150.0), (SM, 250.0, 350.0)]
    time.sleep(0.3)
    assert_unchanged(db, BT, before, "semarang's sensor registrations")


def test_reads_isolation(world):
    """GET /api/v1/kpis and /api/v1/alerts with every token and login of
    each tenant: its own; a ?tenant= naming the other is no way in; a
    bearer token counts before another tenant's cookie; agency keys do not
    read.  Nothing is written."""
    w = world
    db = w.db
    before = {t: snapshot(db, t) for t in (SM, BT)}
    other = {SM: BT, BT: SM}
    for t in (SM, BT):
        creds = [bearer(w.tokens[t][k]) for k in ("wall", "ops", "mayor")] + \
                [cookie(w.sessions[(t, u)]) for u in USERS[t]] + \
                [{**bearer(w.tokens[t]["wall"]), **cookie(w.sessions[(other[t], "ani")])}]
        for h in creds:
            c = HeaderHttp(w.srv.host, w.srv.port, h)
            try:
                converge(w, t, c, what=f" ({sorted(h)})")
                for path in (f"/api/v1/kpis?tenant={other[t]}", f"/api/v1/alerts?tenant={other[t]}"):
                    r = c.get(path)
                    if r.status == 200:
                        if path.startswith("/api/v1/kpis"):
                            diffs = compare_kpis(r.json["kpis"], w.expected(t, parse_time(r.json["at"])))
                        else:
                            diffs = reference_alerts_diff(w, t, r.json["alerts"])
                        assert not diffs, f"{t}: GET {path}: {diffs}"
                    else:
                        assert 400 <= r.status < 500 and r.content_type == "application/problem+json", r
                r = c.get("/api/v1/alerts")
                assert r.status == 200, r
                assert not reference_alerts_diff(w, t, r.json["alerts"]), \
                    f"{t}: GET /api/v1/alerts: {reference_alerts_diff(w, t, r.json['alerts'])}"
            finally:
                c.close()
        c = w.http()
        try:
            for which in ("calls", "sensors"):
                for path in ("/api/v1/kpis", "/api/v1/alerts", "/api/v1/series?name=calls.received"):
                    assert_problem(c.get(path, key=w.keys[t][which]), 403, "forbidden")
        finally:
            c.close()
    for t in (SM, BT):
        assert_unchanged(db, t, before[t], "reads")


class HeaderHttp(Http):
    """An Http client that sends the given headers (a credential) with
    every request."""

    def __init__(self, host, port, headers):
        super().__init__(host, port)
        self.extra = dict(headers)

    def request(self, method, path, **kw):
        kw["headers"] = {**self.extra, **(kw.get("headers") or {})}
        kw.setdefault("key", None)
        return super().request(method, path, **kw)


def reference_alerts_diff(w, t, alerts):
    from harness import alerts_diff
    return alerts_diff(alerts, w.expected(t, utcnow())["alerts.active"], "alerts")


def test_alerts_all_isolation(world):
    """GET /api/v1/alerts?state=all: exactly the tenant's alerts in
    PostgreSQL, none of the other's."""
    w = world
    for t in (SM, BT):
        def same():
            r = w.clients[t].get("/api/v1/alerts?state=all")
            assert r.status == 200, r
            got = sorted(a["id"] for a in r.json["alerts"])
            ids = sorted(x[0] for x in w.db.rows("SELECT id FROM alerts WHERE tenant = %s", (t,)))
            return got == ids and got
        assert wait_until(same, 3.0, f"{t}: alerts?state=all equals its rows")
        r = w.clients[t].get("/api/v1/alerts?state=all")
        assert {a["sensor_id"] for a in r.json["alerts"]} <= set(w.registry[t]), r.json


def series_expect(w, t, name, start, end, now):
    events = w.events(t)
    if name in ("calls.received", "reports.received", "reports.resolved"):
        return {"count": reference.count_in(reference.series_times(events, name, now), start, end)}
    if name == "reports.sla_met":
        rows = [k for k in reference.tickets_table(events, now)
                if k["status"] == "resolved" and start <= k["resolved_at"] < end]
        met = sum(1 for k in rows if k["within_sla"])
        return {"resolved": len(rows), "met": met, "ratio": reference.ratio(met, len(rows))}
    return reference.sensor_bucket(events, name[len("sensor:"):], start, end)


def close(a, b):
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


@pytest.mark.parametrize("name", ["calls.received", "reports.received", "reports.resolved", "reports.sla_met",
                                  "sensor:GAUGE-1"])
def test_series_isolation(world, name):
    """GET /api/v1/series over 7 days, hourly, with each tenant's token:
    every bucket from that tenant's events alone (GAUGE-1: its own
    readings); another tenant's sensor is an unknown series."""
    w = world
    for t in (SM, BT):
        now = utcnow()
        r = w.clients[t].get(f"/api/v1/series?name={urllib.parse.quote(name)}&window=7d&step=1h")
        assert r.status == 200 and r.json["name"] == name and r.json["step_s"] == 3600, r
        buckets = r.json["buckets"]
        assert len(buckets) == 168, len(buckets)
        wrong, nonempty = [], 0
        for b in buckets:
            start = parse_time(b["t"])
            want = series_expect(w, t, name, start, start + timedelta(hours=1), now)
            got = {k: b.get(k) for k in want}
            if not all(close(got[k], want[k]) if k in ("ratio", "min", "max", "last") else got[k] == want[k]
                       for k in want):
                wrong.append(f"{b['t']}: {got} != {want}")
            nonempty += any(v for v in want.values())
        assert not wrong, f"{t}: series {name} differs from its own events:\n" + "\n".join(wrong)
        assert nonempty, f"{t}: series {name} has nothing to compare"
    c = w.http()
    try:
        for t, theirs in ((SM, "BTG-QUIET"), (BT, "SMG-ONLY")):
            h = bearer(w.tokens[t]["wall"])
            mine = c.get(f"/api/v1/series?name=sensor:{theirs}&window=24h&step=1h", key=None, headers=h)
            none = c.get("/api/v1/series?name=sensor:NOPE-GAUGE&window=24h&step=1h", key=None, headers=h)
            assert_problem(none, 404, "not_found")
            same_answer(mine, none, f"{t}: the series of another tenant's sensor", {theirs: "NOPE-GAUGE"})
    finally:
        c.close()


def test_kpi_history_isolation(world):
    """GET /api/v1/kpis?at= finds the tenant's own record, never the
    other's, even when the other's is the nearer one."""
    w = world
    base = w.hist_base
    sm_rec, bt_rec, bt_old = w.history[SM][0], w.history[BT][0], w.history[BT][1]

    def rec(r):
        return {"at": r[0].astimezone(WIB).isoformat(timespec="milliseconds"), "kpis": r[1]}
    nothing = {"at": None, "kpis": None}
    cases = [
        (base + timedelta(seconds=120), {SM: rec(sm_rec), BT: rec(bt_rec)}),
        (base + timedelta(seconds=30), {SM: rec(sm_rec), BT: nothing}),
        (bt_old[0] + timedelta(seconds=60), {SM: nothing, BT: rec(bt_old)}),
    ]
    for at, want in cases:
        q = "/api/v1/kpis?at=" + urllib.parse.quote(at.astimezone(WIB).isoformat(timespec="milliseconds"))
        for t in (SM, BT):
            r = w.clients[t].get(q)
            assert r.status == 200 and r.json == want[t], f"{t}: GET {q}: {r}, expected {want[t]}"
            c = w.http(cookie=w.sessions[(t, "ani")])
            try:
                r = c.get(q)
            finally:
                c.close()
            assert r.status == 200 and r.json == want[t], f"{t} (login): GET {q}: {r}, expected {want[t]}"


def test_ack_isolation(world):
    """POST /api/v1/alerts/{id}/ack on the other tenant's alert, with an
    operator's token or login: the 404 of an id that does not exist, and
    nothing changes; an agency key: the 403 it always gets; the tenant's
    own operator acknowledges it (200) without touching the other."""
    w = world
    db = w.db
    ids = {SM: alert_id(w, SM, "SMG-ONLY"), BT: alert_id(w, BT, "GAUGE-1")}
    wait_until(lambda: db.rows("SELECT count(*) FROM alerts WHERE id = ANY(%s)", (list(ids.values()),))[0][0] == 2,
               3.0, "the alerts stored")
    nowhere = db.scalar("SELECT coalesce(max(id), 0) FROM alerts") + 100000
    before = {t: snapshot(db, t) for t in (SM, BT)}
    attempts = {SM: [bearer(w.tokens[SM]["ops"]), cookie(w.sessions[(SM, "ani")])],
                BT: [bearer(w.tokens[BT]["ops"]), cookie(w.sessions[(BT, "budi")])]}
    c = w.http()
    try:
        for t, theirs in ((SM, BT), (BT, SM)):
            for h in attempts[t]:
                body = {"note": f"acknowledged from {t}", "by": "intruder"}
                none = c.post(f"/api/v1/alerts/{nowhere}/ack", body, key=None, headers=h)
                assert_problem(none, 404, "not_found")
                r = c.post(f"/api/v1/alerts/{ids[theirs]}/ack", body, key=None, headers=h)
                same_answer(r, none, f"{t} acknowledging {theirs}'s alert", {str(ids[theirs]): str(nowhere)})
            for which in ("sensors", "calls"):
                none = c.post(f"/api/v1/alerts/{nowhere}/ack", {}, key=w.keys[t][which])
                assert_problem(none, 403, "forbidden")
                r = c.post(f"/api/v1/alerts/{ids[theirs]}/ack", {}, key=w.keys[t][which])
                same_answer(r, none, f"{t}'s agency key acknowledging {theirs}'s alert")
        time.sleep(0.5)            # an acknowledgement is stored right after its 200
        for t in (SM, BT):
            assert_unchanged(db, t, before[t], "refused acknowledgements")
            for a in w.clients[t].alerts():
                assert a["acked_by"] is None or w.acks[t].get((a["sensor_id"], a["kind"])) == a["acked_by"], a

        # The tenant's own operator may: batang's alert, batang's name.
        r = c.post(f"/api/v1/alerts/{ids[BT]}/ack", {"note": "BPBD Batang menuju lokasi"}, key=None,
                   headers=bearer(w.tokens[BT]["ops"]))
        assert r.status == 200 and r.json["acked_by"] == TOKENS[BT]["ops"][0], r
        w.acks[BT][("GAUGE-1", "level")] = TOKENS[BT]["ops"][0]
    finally:
        c.close()
    wait_until(lambda: db.rows("SELECT tenant, acked_by FROM alerts WHERE id = %s", (ids[BT],))
               == [(BT, TOKENS[BT]["ops"][0])], 3.0, "the acknowledgement stored")
    wait_until(lambda: db.rows("SELECT DISTINCT tenant FROM audit WHERE action = 'alert.ack'") == [(BT,)],
               3.0, "the alert.ack audit rows, all in batang")
    converge(w, BT, w.clients[BT])
    converge(w, SM, w.clients[SM])
    assert_unchanged(db, SM, before[SM], "batang's acknowledgement")


def test_session_isolation(world):
    """GET /api/v1/session: each token and login names its own tenant in
    full; a bearer token counts before another tenant's cookie; an agency
    key is refused."""
    w = world
    c = w.http()
    try:
        for t in (SM, BT):
            cases = [(bearer(w.tokens[t][k]), "screen", TOKENS[t][k][0], TOKENS[t][k][1]) for k in TOKENS[t]]
            cases += [(cookie(w.sessions[(t, u)]), "user", u, USERS[t][u][0]) for u in USERS[t]]
            cases += [(bearer(w.sessions[(t, u)]), "user", u, USERS[t][u][0]) for u in USERS[t]]
            other = BT if t == SM else SM
            cases.append(({**bearer(w.tokens[t]["wall"]), **cookie(w.sessions[(other, "ani")])},
                          "screen", TOKENS[t]["wall"][0], "wall"))
            for h, kind, name, role in cases:
                r = c.get("/api/v1/session", key=None, headers=h)
                assert r.status == 200, (h, r)
                s = r.json
                assert (s["kind"], s["name"], s["role"]) == (kind, name, role), s
                assert sorted(s["can"]) == sorted(CAN[role]), s
                assert s["tenant"] == TENANT_INFO[t], f"{kind} {name} of {t}: {s}"
            for which in ("calls", "sensors"):
                assert_problem(c.get("/api/v1/session", key=w.keys[t][which]), 403, "forbidden")
    finally:
        c.close()


def test_pages_isolation(world):
    """The pages / and /mayor answer each tenant's credentials by role alone
    and hold no tenant's data: the same bytes for either tenant."""
    w = world
    c = w.http()
    try:
        pages = {}
        for t in (SM, BT):
            for page, h, ok in (("/", bearer(w.tokens[t]["wall"]), True),
                                ("/mayor", bearer(w.tokens[t]["mayor"]), True),
                                ("/mayor", bearer(w.tokens[t]["wall"]), False),
                                ("/", cookie(w.sessions[(t, "ani")]), USERS[t]["ani"][0] == "operator"),
                                ("/mayor", cookie(w.sessions[(t, "ani")]), USERS[t]["ani"][0] == "mayor")):
                r = c.get(page, key=None, headers=h)
                if ok:
                    assert r.status == 200 and r.content_type == "text/html", (t, page, r)
                    pages.setdefault(page, set()).add(r.raw)
                else:
                    assert r.status == 303 and "denied=1" in r.headers.get("Location", ""), (t, page, r)
        for page, bodies in pages.items():
            assert len(bodies) == 1, f"{page} differs between the tenants' credentials"
            body = next(iter(bodies))
            assert b"Kabupaten Batang" not in body and b"Kota Semarang" not in body, page
    finally:
        c.close()


SNAPSHOT_TRIES = 4


def own_screen(url, headers, expected, what):
    """A started WsClient whose snapshot equals expected(at).  A snapshot is
    the state last published, which may trail a change committed less than
    a publish interval (250 ms) before: a screen whose snapshot differs is
    closed and opened again a little later, a few times; a snapshot of
    another tenant's state never matches."""
    diffs = []
    for attempt in range(SNAPSHOT_TRIES):
        ws = WsClient(url, headers=headers).start()
        diffs = compare_kpis(ws.snapshot["kpis"], expected(parse_time(ws.snapshot["at"])))
        if not diffs:
            return ws
        ws.close()
        time.sleep(0.3)
    pytest.fail(f"{what}: {SNAPSHOT_TRIES} websocket snapshots differ from the tenant's own model; the last:\n  "
                + "\n  ".join(diffs), pytrace=False)


def quiet(ws, start):
    """Messages since index start other than heartbeats (kpis with {})."""
    return [m for _, m in ws.messages[start:] if not (m.get("type") == "kpis" and m.get("kpis") == {})]


def test_websocket_isolation(world):
    """/ws with each tenant's token and login: the snapshot is the tenant's
    own, and what the other tenant posts or acknowledges never reaches it,
    while its own changes do."""
    w = world
    away_from_midnight()
    screens = {}
    try:
        for t, creds in ((SM, [bearer(w.tokens[SM]["wall"]), cookie(w.sessions[(SM, "ani")])]),
                         (BT, [bearer(w.tokens[BT]["mayor"]), cookie(w.sessions[(BT, "budi")])])):
            screens[t] = []
            for h in creds:
                screens[t].append(own_screen(w.srv.ws_url, h, lambda at, t=t: w.expected(t, at), t))

        def change(t, events, alert_sensor, ack=None):
            other = BT if t == SM else SM
            marks = {x: [len(ws.messages) for ws in screens[x]] for x in (SM, BT)}
            if events:
                post(w, t, "calls", [e for e in events if e["type"] == "call"])
                post(w, t, "sensors", [e for e in events if e["type"] == "sensor"])
            if ack:
                aid, h, name = ack
                c = w.http()
                try:
                    r = c.post(f"/api/v1/alerts/{aid}/ack", {}, key=None, headers=h)
                finally:
                    c.close()
                assert r.status == 200 and r.json["acked_by"] == name, r
            for ws, start in zip(screens[t], marks[t]):
                got = ws.wait_message(lambda m: m.get("type") == "alert"
                                      and m["alert"].get("sensor_id") == alert_sensor, 3.0, start)
                assert got, f"{t}: no alert message for {alert_sensor}: {quiet(ws, start)}"
                ws.wait_state(w.expected(t, utcnow()), timeout=3.0)
            time.sleep(QUIET_S)
            for ws, start in zip(screens[other], marks[other]):
                stray = quiet(ws, start)
                assert not stray, f"{other}'s screen heard {t}'s change: {stray}"
                assert not compare_kpis(ws.state, w.expected(other, utcnow()))

        # semarang: a new call and SMG-ONLY rising to awas.
        change(SM, [ev_live_call(), reading("SMG-ONLY", 160, 0.5, SM)], "SMG-ONLY")
        # batang: a new call and BTG-ONLY rising to siaga.
        change(BT, [ev_live_call(), reading("BTG-ONLY", 15, 0.4, BT)], "BTG-ONLY")
        # batang's operator acknowledges batang's GAUGE-1.
        aid = alert_id(w, BT, "GAUGE-1")
        name = TOKENS[BT]["ops"][0]
        w.acks[BT][("GAUGE-1", "level")] = name
        change(BT, [], "GAUGE-1", ack=(aid, bearer(w.tokens[BT]["ops"]), name))
        for wss in screens.values():
            for ws in wss:
                assert not ws.violations, ws.violations
                assert not ws.errors, ws.errors
    finally:
        for wss in screens.values():
            for ws in wss:
                ws.close()


_live = itertools.count()


def ev_live_call():
    return {"id": f"live-{next(_live)}-{time.monotonic_ns()}", "type": "call",
            "occurred_at": fmt_time(utcnow() - timedelta(seconds=20)),
            "call": {"call_id": f"C-LIVE-{next(_live)}", "status": "received", "category": "disaster"}}


# --------------------------------------------------------------------------
# 3. A tenant created while the server runs
# --------------------------------------------------------------------------


def test_tenant_created_while_running(world):
    """`kendali tenant create` while the server runs: a key, a token and a
    user made for it right after work within about a second; its KPIs are
    its events (the same poster and ids as the others'), its session names
    it, its websocket shows it, and the other tenants are unchanged."""
    w = world
    db = w.db
    before = {t: snapshot(db, t) for t in (SM, BT)}
    kendali_cli(db, "tenant", "create", KD, "--name", "Kabupaten Kendal", "--head", "Bupati")
    key = last_line(kendali_cli(db, "key", "create", "--tenant", KD, "--poster", CALLS_POSTER,
                                "--types", "call,report,sensor"))
    t0 = time.monotonic()
    w.srv.wait_key(key, timeout=NEW_TENANT_S)
    key_s = time.monotonic() - t0
    token = last_line(kendali_cli(db, "token", "create", "--tenant", KD, "--name", "wall-kdl",
                                  "--role", "operator"))
    t0 = time.monotonic()
    c = w.http(key=token)
    try:
        wait_until(lambda: c.get("/api/v1/session").status == 200, NEW_TENANT_S,
                   "the new tenant's screen token known")
        token_s = time.monotonic() - t0
        r = c.get("/api/v1/session")
        assert r.json["tenant"] == TENANT_INFO[KD] and r.json["name"] == "wall-kdl", r

        w.keys[KD] = {"calls": key, "reports": key, "sensors": key}
        w.posters[KD] = {"calls": CALLS_POSTER, "reports": CALLS_POSTER, "sensors": CALLS_POSTER}
        w.acks[KD] = {}
        put_sensor(w, KD, "GAUGE-1", {"siaga": 50, "awas": 70})
        calls, reports = gen_feed(random.Random(37), KD, 12, 8, utcnow())
        post(w, KD, "calls", calls + reports)
        post(w, KD, "sensors", [reading("GAUGE-1", 60, 1, KD)])
        body = converge(w, KD, c)
        assert body["kpis"]["calls.received_today"] >= 1 or body["kpis"]["reports.open"] >= 1
        assert [(a["sensor_id"], a["severity"]) for a in body["kpis"]["alerts.active"]] == [("GAUGE-1", "siaga")]

        own_screen(w.srv.ws_url, bearer(token), lambda at: w.expected(KD, at), KD).close()
    finally:
        c.close()

    kendali_cli(db, "user", "add", "ani", "--tenant", KD, "--role", "mayor", input="ani-kendal-pw-4\n")
    src = next_source()
    for attempt in range(4):
        r = login_req(w, {"username": "ani", "password": "ani-kendal-pw-4", "tenant": KD}, src)
        if r.status == 200:
            break
        time.sleep(0.5)
    assert r.status == 200 and r.json["tenant"] == TENANT_INFO[KD], r

    for t in (SM, BT):
        converge(w, t, w.clients[t])
    assert db.rows("SELECT DISTINCT tenant FROM events WHERE tenant NOT IN (%s, %s)", (SM, BT)) == [(KD,)]
    time.sleep(0.3)
    for t in (SM, BT):
        assert_unchanged(db, t, before[t], "the new tenant and its posts")
    print(f"new tenant: key served after {key_s:.3f} s, token after {token_s:.3f} s")


# --------------------------------------------------------------------------
# 4. Logins that name their tenant
# --------------------------------------------------------------------------


def test_login_names_the_tenant(world):
    """The same user name in two tenants: "tenant" picks the account;
    without it (or null) the default tenant's; the session, its rows and
    its audit are that tenant's."""
    w = world
    db = w.db
    src = next_source()
    pw_bt = USERS[BT]["ani"][1]
    pw_sm = USERS[SM]["ani"][1]

    value, r = login_ok(w, {"username": "ani", "password": pw_bt, "tenant": BT}, src)
    assert (r.json["kind"], r.json["name"], r.json["role"]) == ("user", "ani", "mayor"), r
    assert r.json.get("tenant", TENANT_INFO[BT]) == TENANT_INFO[BT], r
    c = w.http(cookie=value)
    try:
        s = c.get("/api/v1/session")
        assert s.status == 200 and s.json["tenant"] == TENANT_INFO[BT] and s.json["role"] == "mayor", s
        converge(w, BT, c)
    finally:
        c.close()
    sid = value.split("_")[1]
    assert db.rows("SELECT tenant, username FROM sessions WHERE session_id = %s", (sid,)) == [(BT, "ani")]
    wait_until(lambda: db.rows("SELECT tenant, actor FROM audit WHERE action = 'session.login'"
                               " AND detail->>'session' = %s", (sid,)) == [(BT, "user:ani")],
               3.0, "the login's audit row, in batang")

    for body in ({"username": "ani", "password": pw_sm},
                 {"username": "ani", "password": pw_sm, "tenant": SM}):
        value, r = login_ok(w, body, src)
        c = w.http(cookie=value)
        try:
            s = c.get("/api/v1/session")
        finally:
            c.close()
        assert s.status == 200 and s.json["tenant"] == TENANT_INFO[SM] and s.json["role"] == "operator", (body, s)
        assert db.rows("SELECT tenant, username FROM sessions WHERE session_id = %s",
                       (value.split("_")[1],)) == [(SM, "ani")]


def test_login_tenant_null_is_the_default(world):
    """docs/api.md section 1: a member whose value is null is treated as
    absent, so {"tenant": null} logs in to the default tenant."""
    w = world
    src = next_source()
    value, r = login_ok(w, {"username": "ani", "password": USERS[SM]["ani"][1], "tenant": None}, src)
    c = w.http(cookie=value)
    try:
        s = c.get("/api/v1/session")
    finally:
        c.close()
    assert s.status == 200 and s.json["tenant"] == TENANT_INFO[SM] and s.json["role"] == "operator", s


def test_login_refusals_are_identical(world):
    """A password of the same name in another tenant, a user of another
    tenant, an unknown tenant: 401 login_failed, the very answer of a wrong
    password, no cookie, no session; then the right login still works."""
    w = world
    db = w.db
    src = next_source()
    pw_bt = USERS[BT]["ani"][1]
    pw_sm = USERS[SM]["ani"][1]
    sessions_before = db.scalar("SELECT count(*) FROM sessions")

    def attempt(body):
        t0 = time.monotonic()
        r = login_req(w, body, src)
        return r, time.monotonic() - t0
    wrong, t_wrong = attempt({"username": "ani", "password": "not-the-password", "tenant": BT})
    assert_problem(wrong, 401, "login_failed")
    unknown, t_unknown = attempt({"username": "ani", "password": pw_bt, "tenant": "pati"})
    cases = [
        ("an unknown tenant", unknown),
        ("the other tenant's password", attempt({"username": "ani", "password": pw_sm, "tenant": BT})[0]),
        ("batang's password without a tenant", attempt({"username": "ani", "password": pw_bt})[0]),
        ("a user of batang alone, no tenant", attempt({"username": "budi", "password": USERS[BT]["budi"][1]})[0]),
        ("a user of batang alone, in semarang",
         attempt({"username": "budi", "password": USERS[BT]["budi"][1], "tenant": SM})[0]),
    ]
    for what, r in cases:
        assert_problem(r, 401, "login_failed")
        assert r.json == wrong.json, f"{what}: {r.json}, a wrong password: {wrong.json}"
        sc = session_set_cookie(r)
        assert sc is None or not sc[0], f"{what}: a cookie: {r.headers.get_all('Set-Cookie')}"
    # "in the same time": an unknown tenant costs what a wrong password does
    t_wrong = min(t_wrong, attempt({"username": "ani", "password": "not-the-password", "tenant": BT})[1])
    t_unknown = min(t_unknown, attempt({"username": "ani", "password": pw_bt, "tenant": "pati"})[1])
    assert t_unknown > 0.5 * t_wrong, \
        f"an unknown tenant is answered much faster ({t_unknown:.3f} s) than a wrong password ({t_wrong:.3f} s)"
    assert db.scalar("SELECT count(*) FROM sessions") == sessions_before
    value, r = login_ok(w, {"username": "ani", "password": pw_bt, "tenant": BT}, src)
    assert db.rows("SELECT tenant FROM sessions WHERE session_id = %s", (value.split("_")[1],)) == [(BT,)]


# --------------------------------------------------------------------------
# 5. Anonymous access reads the default tenant
# --------------------------------------------------------------------------


def test_anonymous_and_unnamed_logins_go_to_the_default_tenant(fresh_database, make_server):
    """--anonymous-loopback reads the default tenant, semarang unless
    `serve --tenant` names another; so does a login without "tenant"."""
    db = fresh_database
    kendali_cli(db, "migrate")
    kendali_cli(db, "tenant", "create", BT, "--name", "Kabupaten Batang", "--head", "Bupati")
    keys = {t: last_line(kendali_cli(db, "key", "create", "--tenant", t, "--poster", CALLS_POSTER,
                                     "--types", "call")) for t in (SM, BT)}
    kendali_cli(db, "user", "add", "ani", "--tenant", BT, "--role", "operator", input="ani-anon-pw-5\n")
    kendali_cli(db, "user", "add", "sari", "--tenant", SM, "--role", "operator", input="sari-anon-pw-6\n")
    events = {SM: [], BT: []}
    for t, n in ((SM, 3), (BT, 1)):
        for i in range(n):
            events[t].append({"id": f"a-{i}", "type": "call",
                              "occurred_at": fmt_time(utcnow() - timedelta(minutes=10 + i)),
                              "call": {"call_id": f"C-{i}", "status": "received",
                                       "category": "fire" if t == SM else "police"}})

    srv = make_server(db, migrate=False)
    c = srv.http()
    try:
        for t in (SM, BT):
            r = c.post_events(events[t], key=keys[t])
            assert r.status == 202 and r.json == {"accepted": len(events[t]), "duplicates": 0}, r
        _check_anonymous(srv, SM, events)
    finally:
        c.close()
    srv.close()

    srv = make_server(db, "--tenant", BT, migrate=False)
    _check_anonymous(srv, BT, events)
    src = next_source()
    c = srv.http(source=src)
    try:
        r = c.post("/api/v1/session", {"username": "ani", "password": "ani-anon-pw-5"}, key=None)
        assert r.status == 200, r
        value = session_set_cookie(r)[0]
        s = c.get("/api/v1/session", key=None, headers=cookie(value))
        assert s.status == 200 and s.json["tenant"] == TENANT_INFO[BT] and s.json["kind"] == "user", s
        r = c.post("/api/v1/session", {"username": "sari", "password": "sari-anon-pw-6"}, key=None)
        assert_problem(r, 401, "login_failed")
        r = c.post("/api/v1/session", {"username": "sari", "password": "sari-anon-pw-6", "tenant": SM}, key=None)
        assert r.status == 200, r
        s = c.get("/api/v1/session", key=None, headers=cookie(session_set_cookie(r)[0]))
        assert s.status == 200 and s.json["tenant"] == TENANT_INFO[SM], s
    finally:
        c.close()


def _check_anonymous(srv, tenant, events):
    c = srv.http()
    try:
        s = c.get("/api/v1/session", key=None)
        assert s.status == 200 and s.json["kind"] == "anonymous" and s.json["tenant"] == TENANT_INFO[tenant], s

        def matches():
            body = c.kpis()
            return not compare_kpis(body["kpis"], reference.compute_kpis(events[tenant], {}, parse_time(body["at"])))
        wait_until(matches, CONVERGE_S, f"anonymous KPIs are {tenant}'s")
        own_screen(srv.ws_url, {}, lambda at: reference.compute_kpis(events[tenant], {}, at),
                   f"anonymous, default {tenant}").close()
    finally:
        c.close()
