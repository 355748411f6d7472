"""
Sensors and their alerts, step by step: registry entries with 3- and 4-level
ladders, readings rising through siaga and awas, alerts raised, escalated,
acknowledged, kept on the way down, cleared below siaga and raised again;
late older readings that must not become the latest; ties of occurred_at;
offline alerts for a silent gauge, cleared by its next reading.

Each transition must reach a websocket listener as {"type": "alert"} at
once, and GET /api/v1/alerts and the KPIs must agree.  Tests run in file
order and build on each other.  The last one waits for a gauge that never
reported to go offline 60 s after its registration (the shortest
offline_after_s), so this module takes about a minute.
"""

import time
from datetime import timedelta

import pytest

import reference
from harness import (WsClient, compare_kpis, ev_reading, fmt_time, parse_time, sensor_body, utcnow,
                     assert_problem, wait_until)

S3 = "SMG-TEST-LADDER3"      # Normal / Siaga 200 / Awas 260
S4 = "SMG-TEST-LADDER4"      # Waspada 150 / Siaga 220 / Awas 300
SOFF = "SMG-TEST-SILENT"     # offline_after_s 900
SNEVER = "SMG-TEST-NEVER"    # offline_after_s 60, never reports until the last test
PUSH_S = 2.0                 # an alert message arrives "at once"

T0 = utcnow() - timedelta(minutes=40)


def t(minutes):
    """T0 + minutes, RFC 3339 (the readings of this module are 40..10 min old)."""
    return fmt_time(T0 + timedelta(minutes=minutes))


class Ctx:
    pass


@pytest.fixture(scope="module")
def ctx(server, keys, api):
    c = Ctx()
    c.api = api
    c.key = keys["sensors"]
    c.readings = []          # every reading posted (for the reference)
    c.registry = {}
    c.ws = WsClient(server.ws_url).start()
    yield c
    c.ws.close()


def post(ctx, sensor_id, value, at):
    e = ev_reading(sensor_id, value, at=at)
    r = ctx.api.post_events([e], key=ctx.key)
    assert r.status == 202 and r.json["accepted"] == 1, r
    ctx.readings.append(e)
    return e


def active(ctx, sensor_id=None, kind="level"):
    return [a for a in ctx.api.alerts("active")
            if (sensor_id is None or a["sensor_id"] == sensor_id) and a["kind"] == kind]


def wait_alert_msg(ctx, start, pred, what):
    """An {"type":"alert"} message after message index `start` matching pred."""
    found = ctx.ws.wait_message(lambda m: m.get("type") == "alert" and isinstance(m.get("alert"), dict)
                                and pred(m["alert"]), PUSH_S, start)
    assert found, f"no alert message for {what} within {PUSH_S} s; alert messages seen: {ctx.ws.alerts[-5:]}"
    return found[2]["alert"]




def latest_of(ctx, sensor_id):
    return {x["sensor_id"]: x for x in ctx.api.kpis()["kpis"]["sensors.latest"]}[sensor_id]


def sensor_kpis_match(ctx):
    """sensors.* KPIs against the reference (alerts are checked step by step)."""
    body = ctx.api.kpis()
    want = reference.compute_kpis(ctx.readings, ctx.registry, parse_time(body["at"]))
    return compare_kpis(body["kpis"], want, ["sensors.total", "sensors.offline", "sensors.by_level",
                                             "sensors.latest"])


def test_register_ladders(ctx):
    for sid, th, off in ((S3, {"siaga": 200, "awas": 260}, 3600),
                         (S4, {"waspada": 150, "siaga": 220, "awas": 300}, 3600),
                         (SNEVER, {"siaga": 100, "awas": 150}, 60)):
        body = sensor_body(sid.title(), th, off)
        r = ctx.api.put(f"/api/v1/sensors/{sid}", body, key=ctx.key)
        assert r.status == 201 and r.json["sensor_id"] == sid, r      # new: 201 (docs/api.md 4.2)
        ctx.registry[sid] = dict(body, registered_at=utcnow())
    listed = {s.get("sensor_id", s.get("id")): s for s in ctx.api.sensors()}
    assert set(listed) == {S3, S4, SNEVER}
    for sid in (S3, S4, SNEVER):
        assert listed[sid].get("thresholds") in (None, ctx.registry[sid]["thresholds"]), listed[sid]
    diffs = wait_until(lambda: not sensor_kpis_match(ctx) or None, what="sensor KPIs after registration") \
        and sensor_kpis_match(ctx)
    assert not diffs, diffs
    k = ctx.api.kpis()["kpis"]
    assert k["sensors.total"] == 3 and k["sensors.offline"] == 3      # never reported


def test_normal_reading_raises_nothing(ctx):
    post(ctx, S3, 100, t(0))
    wait_until(lambda: latest_of(ctx, S3)["value"] == 100, what="latest 100")
    row = latest_of(ctx, S3)
    assert row["level"] == "normal" and row["online"] is True
    assert active(ctx, S3) == []
    assert not sensor_kpis_match(ctx)


def test_siaga_raises_an_alert(ctx):
    start = len(ctx.ws.messages)
    post(ctx, S3, 210, t(2))
    msg = wait_alert_msg(ctx, start, lambda a: a.get("sensor_id") == S3 and a.get("kind") == "level",
                         "the rise to siaga")
    assert msg.get("severity") == "siaga", msg
    alerts = wait_until(lambda: active(ctx, S3), what="an active level alert")
    assert len(alerts) == 1
    a = alerts[0]
    assert a["severity"] == "siaga" and a["acked_by"] is None and a["acked_at"] is None
    # docs/api.md 5.3: "<name>: SIAGA <value rounded> <unit>".
    assert a["message"] == f"{S3.title()}: SIAGA 210 cm", a
    assert msg["message"] == a["message"], msg
    assert parse_time(a["raised_at"])
    assert str(a["id"]) == str(msg["id"])
    ctx.first_id = a["id"]
    k = ctx.api.kpis()["kpis"]
    assert [x["id"] for x in k["alerts.active"]] == [a["id"]]


def test_acknowledge(ctx):
    start = len(ctx.ws.messages)
    r = ctx.api.post(f"/api/v1/alerts/{ctx.first_id}/ack", {"by": "operator1", "note": "petugas dikirim"},
                     key=ctx.key)
    assert r.status == 200 and r.json["id"] == ctx.first_id and r.json["acked_by"] == "operator1", r
    assert r.json["note"] == "petugas dikirim", r
    wait_alert_msg(ctx, start, lambda a: str(a.get("id")) == str(ctx.first_id) and a.get("acked_by") == "operator1",
                   "the acknowledgement")
    a = active(ctx, S3)[0]
    assert a["acked_by"] == "operator1" and a["acked_at"].endswith("+07:00")
    assert abs((parse_time(a["acked_at"]) - utcnow()).total_seconds()) < 30
    # acknowledged alerts stay on the wall
    assert [x["id"] for x in ctx.api.kpis()["kpis"]["alerts.active"]] == [ctx.first_id]


def test_awas_escalates_and_resets_the_acknowledgement(ctx):
    start = len(ctx.ws.messages)
    post(ctx, S3, 270, t(4))
    msg = wait_alert_msg(ctx, start, lambda a: str(a.get("id")) == str(ctx.first_id) and a.get("severity") == "awas",
                         "the escalation to awas")
    assert msg.get("acked_by") is None, msg
    a = active(ctx, S3)
    assert len(a) == 1 and a[0]["id"] == ctx.first_id, a
    assert a[0]["severity"] == "awas" and a[0]["acked_by"] is None and a[0]["acked_at"] is None
    assert a[0]["message"] == msg["message"] == f"{S3.title()}: AWAS 270 cm", (a, msg)


def test_back_to_siaga_keeps_it(ctx):
    post(ctx, S3, 230, t(6))
    wait_until(lambda: latest_of(ctx, S3)["value"] == 230, what="latest 230")
    a = active(ctx, S3)
    assert len(a) == 1 and a[0]["id"] == ctx.first_id and a[0]["severity"] == "awas", a
    assert latest_of(ctx, S3)["level"] == "siaga"


def test_late_older_reading_does_not_replace_the_latest(ctx):
    # 100 (normal) but older than the latest (230): it must not clear anything
    post(ctx, S3, 100, t(5))
    time.sleep(0.6)
    row = latest_of(ctx, S3)
    assert row["value"] == 230 and row["at"] == latest_of(ctx, S3)["at"], row
    assert parse_time(row["at"]) == parse_time(t(6))
    a = active(ctx, S3)
    assert len(a) == 1 and a[0]["id"] == ctx.first_id, a
    assert not sensor_kpis_match(ctx)


def test_below_siaga_clears(ctx):
    start = len(ctx.ws.messages)
    post(ctx, S3, 150, t(8))
    wait_alert_msg(ctx, start, lambda a: str(a.get("id")) == str(ctx.first_id), "the clearing")
    wait_until(lambda: not active(ctx, S3), what="the alert cleared")
    everything = ctx.api.alerts("all")
    mine = [a for a in everything if a["id"] == ctx.first_id]
    assert len(mine) == 1, everything
    assert mine[0]["severity"] == "awas" and mine[0]["sensor_id"] == S3
    assert ctx.api.kpis()["kpis"]["alerts.active"] == []


def test_late_older_awas_reading_raises_nothing(ctx):
    post(ctx, S3, 300, t(7))
    time.sleep(0.6)
    assert latest_of(ctx, S3)["value"] == 150
    assert active(ctx, S3) == []


def test_tie_of_occurred_at_greater_value_wins(ctx):
    start = len(ctx.ws.messages)
    post(ctx, S3, 205, t(8))        # same instant as 150: the greater value is the latest
    msg = wait_alert_msg(ctx, start, lambda a: a.get("sensor_id") == S3 and a.get("kind") == "level"
                         and a.get("severity") == "siaga", "a new alert after the tie")
    assert str(msg["id"]) != str(ctx.first_id)
    row = latest_of(ctx, S3)
    assert row["value"] == 205 and row["level"] == "siaga"
    post(ctx, S3, 120, t(8))        # same instant, smaller: changes nothing
    time.sleep(0.6)
    assert latest_of(ctx, S3)["value"] == 205
    a = active(ctx, S3)
    assert len(a) == 1 and a[0]["severity"] == "siaga" and a[0]["id"] != ctx.first_id
    ctx.second_id = a[0]["id"]
    everything = ctx.api.alerts("all")
    ids = [x["id"] for x in everything]
    assert ids.index(ctx.second_id) < ids.index(ctx.first_id), "newest first"
    assert not sensor_kpis_match(ctx)


def test_four_level_ladder(ctx):
    post(ctx, S4, 160, t(10))
    wait_until(lambda: latest_of(ctx, S4)["value"] == 160, what="S4 160")
    assert latest_of(ctx, S4)["level"] == "waspada"
    assert active(ctx, S4) == []            # waspada raises no alert
    k = ctx.api.kpis()["kpis"]
    assert k["sensors.by_level"] == {"normal": 0, "waspada": 1, "siaga": 1, "awas": 0}
    assert k["sensors.offline"] == 1                                   # SNEVER
    start = len(ctx.ws.messages)
    post(ctx, S4, 300, t(12))               # straight to awas: raised at awas
    wait_alert_msg(ctx, start, lambda a: a.get("sensor_id") == S4 and a.get("severity") == "awas", "S4 awas")
    a = active(ctx, S4)
    assert len(a) == 1 and a[0]["severity"] == "awas"
    post(ctx, S4, 149.9, t(14))             # below waspada: cleared
    wait_until(lambda: not active(ctx, S4), what="S4 cleared")
    assert latest_of(ctx, S4)["level"] == "normal"
    assert not sensor_kpis_match(ctx)


def test_alerts_kpi_equals_alert_listing(ctx):
    listing = ctx.api.alerts("active")
    k = ctx.api.kpis()["kpis"]["alerts.active"]
    assert [a["id"] for a in k] == [a["id"] for a in listing]
    for a, b in zip(k, listing):
        for key in ("id", "kind", "severity", "sensor_id", "message", "raised_at", "acked_by", "acked_at"):
            assert a[key] == b[key], (key, a, b)


def test_silent_sensor_goes_offline_and_comes_back(ctx):
    body = sensor_body("Silent gauge", {"siaga": 100, "awas": 150}, 900)
    r = ctx.api.put(f"/api/v1/sensors/{SOFF}", body, key=ctx.key)
    assert r.status == 201, r
    ctx.registry[SOFF] = dict(body, registered_at=utcnow())
    start = len(ctx.ws.messages)
    post(ctx, SOFF, 50, fmt_time(utcnow() - timedelta(hours=2)))     # last heard of 2 h ago
    # time-driven: raised within the server's periodic check (<= 5 s)
    found = ctx.ws.wait_message(lambda m: m.get("type") == "alert" and isinstance(m.get("alert"), dict)
                                and m["alert"].get("sensor_id") == SOFF
                                and m["alert"].get("kind") == "offline", 8.0, start)
    assert found, "no offline alert message within 8 s for a sensor silent for 2 h (offline_after_s 900)"
    # An offline alert says nothing about the water: no level, in the
    # message pushed, the API's list, or its text.
    assert found[2]["alert"]["severity"] is None, found
    a = active(ctx, SOFF, kind="offline")
    assert len(a) == 1 and a[0]["severity"] is None, a
    assert not any(w in a[0]["message"].lower() for w in ("waspada", "siaga", "awas")), a
    assert a[0]["message"] == "Silent gauge: tidak ada data (offline)", a
    off_id = a[0]["id"]
    assert latest_of(ctx, SOFF)["online"] is False
    assert not sensor_kpis_match(ctx)
    start = len(ctx.ws.messages)
    post(ctx, SOFF, 55, fmt_time(utcnow() - timedelta(seconds=5)))   # its next reading clears it
    wait_alert_msg(ctx, start, lambda a: str(a.get("id")) == str(off_id), "the offline alert clearing")
    wait_until(lambda: not active(ctx, SOFF, kind="offline"), what="offline alert cleared")
    # A cleared alert stays readable with state=all, which reads the
    # database: the clear is stored right after the screens are told, so it
    # shows there within moments, inactive, with its clearing time in WIB.
    stored = wait_until(lambda: [x for x in ctx.api.alerts("all")
                                 if x["id"] == off_id and x["active"] is False],
                        timeout=2.0, what="the cleared offline alert in state=all")
    assert len(stored) == 1 and stored[0]["severity"] is None and stored[0]["kind"] == "offline", stored
    assert stored[0]["cleared_at"].endswith("+07:00"), stored
    assert parse_time(stored[0]["cleared_at"]) >= parse_time(stored[0]["raised_at"]), stored
    assert latest_of(ctx, SOFF)["online"] is True
    assert not sensor_kpis_match(ctx)


def test_ack_errors(ctx):
    r = ctx.api.post("/api/v1/alerts/999999999/ack", {"by": "operator1"}, key=ctx.key)
    assert_problem(r, 404, "not_found")
    # The list takes state=active (the default) or all, nothing else.
    for state in ("cleared", "ALL", ""):
        assert_problem(ctx.api.get(f"/api/v1/alerts?state={state}", key=ctx.key), 400,
                       "bad_request")
    # Anonymous access names itself in `by`, which is required: 422
    # invalid_ack, field "by" (docs/api.md 5.4).
    r = ctx.api.post(f"/api/v1/alerts/{ctx.second_id}/ack", {"note": "no operator"}, key=ctx.key)
    assert_problem(r, 422, "invalid_ack", field="by")
    r = ctx.api.post(f"/api/v1/alerts/{ctx.second_id}/ack", {"by": ""}, key=ctx.key)
    assert_problem(r, 422, "invalid_ack", field="by")
    # A body that is not JSON: 400 bad_json, with where.
    r = ctx.api.post(f"/api/v1/alerts/{ctx.second_id}/ack", "{not json", key=ctx.key,
                     content_type="application/json")
    assert_problem(r, 400, "bad_json")
    assert r.json["line"] == 1 and r.json["column"] >= 1, r
    assert active(ctx, S3)[0]["acked_by"] is None


def test_new_thresholds_apply_at_once(ctx):
    """The KPIs are a function of the registry too: lowering S4's ladder
    turns its latest reading (149.9) into siaga, with an alert."""
    body = sensor_body(S4.title(), {"waspada": 100, "siaga": 140, "awas": 200}, 3600)
    start = len(ctx.ws.messages)
    r = ctx.api.put(f"/api/v1/sensors/{S4}", body, key=ctx.key)
    assert r.status in (200, 201), r
    ctx.registry[S4] = dict(body, registered_at=ctx.registry[S4]["registered_at"])
    wait_until(lambda: latest_of(ctx, S4)["level"] == "siaga", what="S4 level with the new thresholds")
    wait_alert_msg(ctx, start, lambda a: a.get("sensor_id") == S4 and a.get("severity") == "siaga",
                   "the alert from new thresholds")
    assert not sensor_kpis_match(ctx)
    # and back: the old ladder clears it
    body = sensor_body(S4.title(), {"waspada": 150, "siaga": 220, "awas": 300}, 3600)
    r = ctx.api.put(f"/api/v1/sensors/{S4}", body, key=ctx.key)
    assert r.status in (200, 201), r
    ctx.registry[S4] = dict(body, registered_at=ctx.registry[S4]["registered_at"])
    wait_until(lambda: not active(ctx, S4), what="S4 alert cleared by the restored thresholds")
    assert not sensor_kpis_match(ctx)


def test_websocket_saw_no_protocol_violation(ctx):
    assert not ctx.ws.violations, ctx.ws.violations[:10]
    assert ctx.ws.state.get("alerts.active") == ctx.api.kpis()["kpis"]["alerts.active"] or \
        ctx.ws.wait(lambda: ctx.ws.state.get("alerts.active") == ctx.api.kpis()["kpis"]["alerts.active"], 2)


def test_never_reporting_sensor_goes_offline_after_registration(ctx):
    """offline: no reading for offline_after_s, counted from its registration
    if it never reported (60 s here)."""
    registered = ctx.registry[SNEVER]["registered_at"]
    due = registered + timedelta(seconds=60)
    # not before it is due
    early = [a for a in ctx.api.alerts("active") if a["sensor_id"] == SNEVER]
    if utcnow() < due - timedelta(seconds=1):
        assert not early, f"offline alert raised before offline_after_s elapsed: {early}"
    wait_s = max(0.0, (due - utcnow()).total_seconds()) + 8.0
    found = ctx.ws.wait_message(lambda m: m.get("type") == "alert" and isinstance(m.get("alert"), dict)
                                and m["alert"].get("sensor_id") == SNEVER
                                and m["alert"].get("kind") == "offline", wait_s, 0)
    assert found, f"no offline alert for a never-reporting sensor 8 s after it was due ({fmt_time(due)})"
    a = found[2]["alert"]
    assert a["severity"] is None, a
    assert parse_time(a["raised_at"]) >= due - timedelta(seconds=1), \
        f"raised at {a['raised_at']}, before it was due at {fmt_time(due)}"
    # its first reading clears it
    start = len(ctx.ws.messages)
    post(ctx, SNEVER, 20, fmt_time(utcnow() - timedelta(seconds=2)))
    wait_alert_msg(ctx, start, lambda x: str(x.get("id")) == str(a["id"]), "the clearing by a first reading")
    wait_until(lambda: not active(ctx, SNEVER, kind="offline"), what="offline alert of SNEVER cleared")
    assert not sensor_kpis_match(ctx)
