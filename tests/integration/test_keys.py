"""
Agency keys: a new or revoked key takes effect at once, also on an open
keep-alive connection; a key over its rate gets 429 with Retry-After while
other keys carry on; a key limited to some sensors reaches only those;
writes and acknowledgements are audited; the pages carry their security
headers.  Screen tokens, logins and roles are in test_roles.py.
"""

import datetime
import time
import uuid

from harness import create_key, kendali_cli, key_id


def call_event():
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    n = uuid.uuid4().hex[:12]
    return {"id": f"acc-{n}", "type": "call", "occurred_at": now,
            "call": {"call_id": f"ACC-{n}", "status": "received", "category": "info"}}


def wait_status(client, want, deadline_s):
    """Posts until the answer is `want` or the deadline passes; returns the
    last answer and the seconds it took."""
    t0 = time.monotonic()
    while True:
        r = client.post_events([call_event()])
        if r.status == want or time.monotonic() - t0 > deadline_s:
            return r, time.monotonic() - t0
        time.sleep(0.02)


def test_new_and_revoked_keys_take_effect_at_once(fresh_database, make_server):
    srv = make_server(fresh_database)
    key = create_key(fresh_database, "access-test", ["call"])
    client = srv.http()
    client.key = key
    try:
        # No restart and no polling period: the server hears of the key.
        r, took = wait_status(client, 202, 2.0)
        assert r.status == 202, f"a new key was not accepted within 2 s: {r.status} {r.body!r}"
        kendali_cli(fresh_database, "key", "revoke", key_id(key))
        # The same keep-alive connection, right after the revocation.
        r, took = wait_status(client, 401, 1.0)
        assert r.status == 401, f"a revoked key still works {took:.2f} s after revoke"
        assert r.json["code"] == "unauthorized"
    finally:
        client.close()


def test_rate_limit_per_key(fresh_database, make_server):
    srv = make_server(fresh_database, "--rate-limit", "5")
    slow = create_key(fresh_database, "busy-agency", ["call"])
    other = create_key(fresh_database, "quiet-agency", ["call"])
    client = srv.http()
    try:
        client.key = slow
        wait_status(client, 202, 2.0)
        statuses = [client.post_events([call_event()]).status for _ in range(30)]
        assert 429 in statuses, f"30 quick requests at a limit of 5/s were all let through: {statuses}"
        assert statuses.count(202) <= 12, f"more than the burst (10) passed at once: {statuses}"
        r = client.post_events([call_event()])
        assert r.status == 429
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json["code"] == "rate_limited" and r.json["status"] == 429
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 2
        # Another key is not held back by the first one's traffic.
        assert client.post_events([call_event()], key=other).status == 202
        time.sleep(retry)
        assert client.post_events([call_event()]).status == 202, "the bucket did not refill"
    finally:
        client.close()


# docs/security.md, "Pages", word for word.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def test_pages_carry_security_headers(server):
    client = server.http()
    try:
        for path in ("/", "/mayor", "/login", "/js/live.js", "/css/wall.css", "/favicon.svg"):
            r = client.get(path)
            assert r.status == 200, path
            assert r.headers.get("Content-Security-Policy") == PAGE_CSP, (path, r.headers)
            assert r.headers.get("X-Frame-Options") == "DENY", path
            assert r.headers.get("X-Content-Type-Options") == "nosniff", path
            assert r.headers.get("Referrer-Policy") == "no-referrer", path
            # Plain HTTP here: no HSTS, which only an HTTPS answer carries.
            assert r.headers.get("Strict-Transport-Security") is None, path
    finally:
        client.close()


def audit_rows(database):
    conn = database.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT actor, action, detail, peer FROM audit ORDER BY id")
            return cur.fetchall()
    finally:
        conn.close()


def test_writes_and_acks_are_audited(fresh_database, make_server):
    srv = make_server(fresh_database)
    key = create_key(fresh_database, "gateway-7", ["call", "sensor"])
    client = srv.http()
    client.key = key
    try:
        wait_status(client, 202, 2.0)
        before = len(audit_rows(fresh_database))
        assert client.post_events([call_event(), call_event(), call_event()]).status == 202
        r = client.put("/api/v1/sensors/AUD-1", {"name": "Audit gauge", "metric": "water_level",
                                                "unit": "cm", "thresholds": {"siaga": 10, "awas": 20}})
        assert r.status == 201
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        r = client.post_events([{"id": "aud-reading", "type": "sensor", "occurred_at": now,
                                 "sensor": {"sensor_id": "AUD-1", "value": 25}}])
        assert r.status == 202
        # A rejected request leaves no trail: nothing of it was stored.
        assert client.post_events([{"id": "x"}]).status == 422
        deadline = time.monotonic() + 5
        alert_id = None
        while alert_id is None and time.monotonic() < deadline:
            alerts = client.get("/api/v1/alerts?state=active").json["alerts"]
            alert_id = next((a["id"] for a in alerts if a["sensor_id"] == "AUD-1"), None)
            time.sleep(0.1)
        assert alert_id, "an awas reading raised no alert"
        r = client.post(f"/api/v1/alerts/{alert_id}/ack", {"by": "operator.pagi", "note": "cek"})
        assert r.status == 200
        time.sleep(0.5)
        rows = audit_rows(fresh_database)[before:]
        actions = [(actor, action) for actor, action, _, _ in rows]
        assert len(actions) == 4, rows
        # an anonymous acknowledgement (from loopback) is written as
        # anonymous:<by>; identities as user:<name> or screen:<name>
        assert actions[3][0] in ("operator.pagi", "anonymous:operator.pagi"), rows
        actions[3] = ("operator.pagi", actions[3][1])
        assert actions == [("gateway-7", "events.post"), ("gateway-7", "sensor.put"),
                           ("gateway-7", "events.post"), ("operator.pagi", "alert.ack")], rows
        assert rows[0][2] == {"events": 3}
        assert rows[1][2] == {"sensor_id": "AUD-1"}
        assert rows[3][2]["alert_id"] == alert_id and rows[3][2]["note"] == "cek", rows[3]
        assert set(rows[3][2]) <= {"alert_id", "note", "by"}, rows[3]
        assert all(peer == "127.0.0.1" for _, _, _, peer in rows), rows
    finally:
        client.close()


def test_sensor_scope_of_a_key(fresh_database, make_server):
    srv = make_server(fresh_database)
    admin = create_key(fresh_database, "bpbd-admin", ["sensor"])
    cp = kendali_cli(fresh_database, "key", "create", "--poster", "gateway-barat",
                     "--types", "sensor", "--sensors", "SC-A,SC-B")
    scoped = cp.stdout.strip().splitlines()[-1]
    bad = kendali_cli(fresh_database, "key", "create", "--poster", "x", "--types", "sensor",
                      "--sensors", "SC-A,,SC-B", check=False)
    assert bad.returncode != 0, "an empty id in --sensors is refused"
    client = srv.http()
    try:
        gauge = {"name": "Scope gauge", "metric": "water_level", "unit": "cm",
                 "thresholds": {"siaga": 100, "awas": 200}}
        client.key = admin
        wait_status_put = time.monotonic() + 2
        while client.put("/api/v1/sensors/SC-C", gauge).status == 401:
            assert time.monotonic() < wait_status_put, "the new key never worked"
            time.sleep(0.05)
        client.key = scoped
        deadline = time.monotonic() + 2
        while (r := client.put("/api/v1/sensors/SC-A", gauge)).status == 401:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert r.status == 201, r.body
        r = client.put("/api/v1/sensors/SC-C", gauge)
        assert r.status == 403 and r.json["code"] == "forbidden", r.body
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        ok = {"id": "sc-1", "type": "sensor", "occurred_at": now,
              "sensor": {"sensor_id": "SC-A", "value": 10}}
        other = {"id": "sc-2", "type": "sensor", "occurred_at": now,
                 "sensor": {"sensor_id": "SC-C", "value": 10}}
        r = client.post_events([ok, other])
        assert r.status == 403, r.body
        assert r.json["index"] == 1 and r.json["field"] == "sensor.sensor_id"
        conn = fresh_database.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM events")
                assert cur.fetchone()[0] == 0, "nothing of a refused request is stored"
        finally:
            conn.close()
        assert client.post_events([ok]).status == 202
    finally:
        client.close()
