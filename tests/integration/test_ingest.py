"""
What the ingest contract accepts, at its limits: the largest batch and body,
media types with parameters, every field at its maximum, old and slightly
future times, unknown fields, the three body formats and their counts,
idempotency per (poster, id), and a per-category SLA configured at start.
"""

import json
import re
import threading
import time
from datetime import timedelta

import pytest

import reference
from harness import (ago, ev_call, ev_reading, ev_report, fmt_time, parse_time,
                     raw_request, sensor_body, unique_id, utcnow, compare_kpis, create_key,
                     kendali_cli, near_wib_midnight)

MiB = 1024 * 1024


def counts(r):
    assert r.status == 202, r
    assert r.content_type == "application/json", r.headers.get("Content-Type")
    assert type(r.json.get("accepted")) is int and type(r.json.get("duplicates")) is int, r.json
    return r.json["accepted"], r.json["duplicates"]


def calls_n(n, minutes=20):
    return [ev_call(at=ago(minutes=minutes)) for _ in range(n)]


def test_batch_of_1000(api, keys, database):
    n0 = database.count_events()
    assert counts(api.post_events(calls_n(1000), key=keys["calls"])) == (1000, 0)
    assert database.count_events() == n0 + 1000


def test_ndjson_of_1000_lines(api, keys, database):
    n0 = database.count_events()
    assert counts(api.post_events(calls_n(1000), "ndjson", key=keys["calls"])) == (1000, 0)
    assert database.count_events() == n0 + 1000


def test_body_of_exactly_1mib(server, keys, database):
    events = calls_n(3)
    body = json.dumps(events).encode()
    body = body[:-1] + b" " * (MiB - len(body)) + b"]"
    assert len(body) == MiB
    r = raw_request(server.host, server.port, "POST", "/api/v1/events",
                    {"Authorization": f"Bearer {keys['calls']}", "Content-Type": "application/json"}, body)
    assert counts(r) == (3, 0)


@pytest.mark.parametrize("ctype,fmt", [
    ("application/json; charset=utf-8", "json"),
    ("application/json;charset=UTF-8", "json"),
    ("Application/JSON", "json"),
    ("application/x-ndjson; charset=utf-8", "ndjson"),
])
def test_media_type_parameters(api, keys, ctype, fmt):
    evs = calls_n(2)
    body = json.dumps(evs) if fmt == "json" else "\n".join(json.dumps(e) for e in evs)
    r = api.post("/api/v1/events", body, key=keys["calls"], content_type=ctype)
    assert counts(r) == (2, 0)


def test_ndjson_blank_lines_are_skipped(api, keys):
    evs = calls_n(3)
    body = "\n" + json.dumps(evs[0]) + "\n\n" + json.dumps(evs[1]) + "\n   \n" + json.dumps(evs[2]) + "\n\n"
    r = api.post("/api/v1/events", body, key=keys["calls"], content_type="application/x-ndjson")
    assert counts(r) == (3, 0)


def test_byte_order_mark_is_ignored(api, keys):
    body = "\ufeff" + json.dumps(calls_n(2))
    r = api.post("/api/v1/events", body, key=keys["calls"], content_type="application/json")
    assert counts(r) == (2, 0)


def test_same_id_twice_in_one_request(api, keys, database):
    """docs/api.md: the first is stored, the second counts as a duplicate."""
    e = ev_call()
    twin = dict(e, call=dict(e["call"], category="police"))
    n0 = database.count_events()
    assert counts(api.post_events([e, ev_call(), twin], key=keys["calls"])) == (2, 1)
    assert database.count_events() == n0 + 2


def metric(api, name):
    r = api.get("/metrics")
    assert r.status == 200, r
    m = re.search(rf"^{name} (\S+)$", r.raw.decode(), re.M)
    assert m, f"no {name} in /metrics"
    return float(m.group(1))


def test_resent_events_among_concurrent_requests(server, keys, database):
    """A resent event fails its group's plain INSERT (server/store.c); the group
    is written again, skipping what was stored before, so every request of it,
    fresh or resent, gets its exact counts and every event is stored once."""
    api = server.http(key=keys["all"])
    rewritten0 = metric(api, "kendali_commit_groups_rewritten_total")
    sent = [[ev_call(at=ago(minutes=5)) for _ in range(20)] for _ in range(6)]
    for batch in sent:
        assert counts(api.post_events(batch)) == (20, 0)
    api.close()
    n0 = database.count_events()
    # After a duplicate, groups go to the careful statement directly for a
    # second: let an earlier test's duplicate age out, so that the first
    # resend below fails a plain write.
    time.sleep(1.2)

    # Per round, at once: three fresh batches and one that resends half of an
    # earlier batch with ten new events; the server groups what arrives
    # together.
    plans = []
    for rnd in range(6):
        plans += [("fresh", [ev_call(at=ago(minutes=4)) for _ in range(15)]) for _ in range(3)]
        plans.append(("resend", sent[rnd][:10] + [ev_call(at=ago(minutes=4)) for _ in range(10)]))
    results = [None] * len(plans)

    def post(i):
        http = server.http(key=keys["all"])
        try:
            results[i] = counts(http.post_events(plans[i][1]))
        finally:
            http.close()

    for rnd in range(6):
        threads = [threading.Thread(target=post, args=(i,)) for i in range(rnd * 4, rnd * 4 + 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for (kind, _), got in zip(plans, results):
        assert got == ((15, 0) if kind == "fresh" else (10, 10)), (kind, got)
    assert database.count_events() == n0 + 6 * (3 * 15 + 10)
    api = server.http(key=keys["all"])
    try:
        assert metric(api, "kendali_commit_groups_rewritten_total") >= rewritten0 + 1
    finally:
        api.close()


def test_times_before_2000_and_resent_readings(api, keys, database):
    """PostgreSQL counts time from 2000 (server/pgbin.c sends and reads it in
    binary): a reading of 1995, to the microsecond, is stored and shown at its
    time, by the plain write and, resent with a new one, by the careful one."""
    sid = unique_id("SMG-OLD").upper()
    r = api.put(f"/api/v1/sensors/{sid}", sensor_body("Lama", {"siaga": 100, "awas": 200}, 3600),
                key=keys["sensors"])
    assert r.status in (200, 201), r
    old = ev_reading(sid, 12.5, at="1995-06-01T01:02:03.456789Z")
    assert counts(api.post_events([old], key=keys["sensors"])) == (1, 0)
    newer = ev_reading(sid, 50.25, at="1999-12-31T23:59:59.999999+07:00")
    assert counts(api.post_events([old, newer], key=keys["sensors"])) == (1, 1)
    stored = {row[0]: row[1] for row in database.rows(
        "SELECT event_id, kd_us(occurred_at) FROM events WHERE subject = %s", (sid,))}
    assert stored == {old["id"]: 801968523456789, newer["id"]: 946659599999999}, stored
    latest = {x["sensor_id"]: x for x in api.kpis()["kpis"]["sensors.latest"]}[sid]
    assert latest["value"] == 50.25 and latest["level"] == "normal", latest
    # shown to the millisecond
    shown = parse_time(newer["occurred_at"]).replace(microsecond=999000)
    assert parse_time(latest["at"]) == shown, latest


def test_ndjson_line_endings(api, keys):
    evs = calls_n(3)
    # CRLF line ends, and no newline after the last line
    body = "\r\n".join(json.dumps(e) for e in evs)
    r = api.post("/api/v1/events", body, key=keys["calls"], content_type="application/x-ndjson")
    assert counts(r) == (3, 0)


def test_fields_at_their_limits(api, keys, database):
    r = api.put("/api/v1/sensors/SMG-LIMITS", sensor_body("Limits", {"siaga": 10, "awas": 20}, 3600),
                key=keys["sensors"])
    assert r.status in (200, 201, 204), r
    evs = [
        ev_call(eid="i" * 128, call_id="c" * 64, district="D" * 64,
                location={"lat": 90, "lon": 180}),
        ev_call(location={"lat": -90, "lon": -180}, at=fmt_time(utcnow() + timedelta(minutes=4))),
        ev_call(at="2024-01-01T00:00:00+07:00"),                 # backfill from long ago
        # microseconds and a zone written as Z
        ev_call(at=(utcnow() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        ev_report(status="dispatched", agency="A" * 32, category=None, ticket="T" * 64),
        ev_report(title="t" * 200),
        ev_report(title="Jalan berlubang – Jl. Pemuda, dekat Tugu Muda ☂"),
        # limits count bytes of UTF-8: 64 bytes in 32 characters, 200 bytes in 68
        ev_call(district="é" * 32),
        ev_report(title="☂" * 66 + "ab"),
        ev_call(district=None, location=None),                     # null means not given
        ev_reading("SMG-LIMITS", -3),                              # integer, negative
        ev_reading("SMG-LIMITS", 1.5e2),
        ev_call(x_vendor={"anything": [1, 2, {"deep": None}]}, x_flag=True),   # unknown fields
    ]
    evs[-1]["call"]["x_inner"] = "ignored too"
    n0 = database.count_events()
    assert counts(api.post_events(evs, key=keys["all"])) == (len(evs), 0)
    assert database.count_events() == n0 + len(evs)


def test_formats_and_their_counts(api, keys):
    one = ev_call()
    assert counts(api.post_events([one], "object", key=keys["calls"])) == (1, 0)
    assert counts(api.post_events([one], "object", key=keys["calls"])) == (0, 1)
    assert counts(api.post_events([one], "json", key=keys["calls"])) == (0, 1)
    more = calls_n(4)
    assert counts(api.post_events(more + [one], "ndjson", key=keys["calls"])) == (4, 1)
    assert counts(api.post_events(more[:2] + calls_n(3), "json", key=keys["calls"])) == (3, 2)


def test_same_id_from_another_poster_is_another_event(api, keys, database):
    eid = unique_id("shared")
    n0 = database.count_events()
    assert counts(api.post_events([ev_call(eid=eid)], key=keys["calls"])) == (1, 0)
    assert counts(api.post_events([ev_call(eid=eid)], key=keys["all"])) == (1, 0)
    assert counts(api.post_events([ev_report(eid=eid)], key=keys["reports"])) == (1, 0)
    assert database.count_events() == n0 + 3


def test_repost_with_other_content_is_a_duplicate_and_the_first_wins(api, keys):
    before = api.kpis()["kpis"]
    cid = unique_id("call")
    eid = unique_id("ev")
    first = ev_call(eid=eid, call_id=cid, category="disaster", at=ago(minutes=3))
    assert counts(api.post_events([first], key=keys["calls"])) == (1, 0)
    second = ev_call(eid=eid, call_id=cid, category="complaint", at=ago(minutes=2))
    assert counts(api.post_events([second], key=keys["calls"])) == (0, 1)
    time.sleep(0.6)
    after = api.kpis()["kpis"]
    # waiting is windowed on the last hour: the call is in it, counted once
    assert after["calls.waiting"] == before["calls.waiting"] + 1
    assert after["calls.active"] == before["calls.active"] + 1
    if not near_wib_midnight(utcnow(), 300):
        cats_b, cats_a = before["calls.by_category_today"], after["calls.by_category_today"]
        assert cats_a.get("disaster", 0) == cats_b.get("disaster", 0) + 1
        assert cats_a.get("complaint", 0) == cats_b.get("complaint", 0)


def test_sensor_registry_update_is_idempotent(api, keys):
    body = sensor_body("Kali Tenggang - Kaligawe", {"siaga": 140, "awas": 190}, 900, district="Gayamsari")
    # 201 when created, 200 when replaced (docs/api.md)
    for status in (201, 200):
        r = api.put("/api/v1/sensors/SMG-TENGGANG-KALIGAWE", body, key=keys["sensors"])
        assert r.status == status, r
    body["thresholds"] = {"waspada": 100, "siaga": 140, "awas": 190}
    r = api.put("/api/v1/sensors/SMG-TENGGANG-KALIGAWE", body, key=keys["sensors"])
    assert r.status in (200, 201, 204), r
    listed = [s for s in api.sensors() if s.get("sensor_id", s.get("id")) == "SMG-TENGGANG-KALIGAWE"]
    assert len(listed) == 1, listed
    latest = {x["sensor_id"]: x for x in api.kpis()["kpis"]["sensors.latest"]}
    assert "SMG-TENGGANG-KALIGAWE" in latest


# --------------------------------------------------------------------------
# A per-category SLA (--sla-hours) on a server of its own
# --------------------------------------------------------------------------


def test_sla_hours_per_category(fresh_database, make_server):
    kendali_cli(fresh_database, "migrate")
    key = create_key(fresh_database, "lapor-hendi", ["report"])
    srv = make_server(fresh_database, "--sla-hours", "flood=24")
    api = srv.http(key=key)
    try:
        now = utcnow()
        t = lambda h: fmt_time(now - timedelta(hours=h))  # noqa: E731
        events = [
            # open, received 30 h ago: overdue for flood (24 h), not for road (72 h)
            ev_report(ticket="F-open", category="flood", at=t(30), district="Genuk"),
            ev_report(ticket="R-open", category="road", at=t(30), district="Genuk"),
            # resolved 25 h after received: over the flood SLA, within the road SLA
            ev_report(ticket="F-done", category="flood", at=t(50)),
            ev_report(ticket="F-done", status="dispatched", category=None, agency="BPBD", at=t(49)),
            ev_report(ticket="F-done", status="resolved", category=None, at=t(25)),
            ev_report(ticket="R-done", category="road", at=t(50)),
            ev_report(ticket="R-done", status="dispatched", category=None, agency="DPU", at=t(49)),
            ev_report(ticket="R-done", status="resolved", category=None, at=t(25)),
        ]
        r = api.post_events(events)
        assert counts(r) == (len(events), 0)
        deadline = time.monotonic() + 5
        while True:
            body = api.kpis()
            at = parse_time(body["at"])
            want = reference.compute_kpis(events, {}, at, sla_hours={"flood": 24})
            diffs = compare_kpis(body["kpis"], want)
            if not diffs or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert not diffs, "with --sla-hours flood=24:\n  " + "\n  ".join(diffs)
        assert want["reports.overdue"] == 1 and want["reports.sla_met_30d"] == 0.5
    finally:
        api.close()
