"""
The core acceptance test: a month of the city (dataset.py) is sent to the
server the way agencies send it (shuffled; JSON arrays of 1..200 events,
single objects, NDJSON; re-posts mixed in; part of it from several
connections at once), then

- every request's {"accepted", "duplicates"} is exactly what was new,
- GET /api/v1/kpis equals the independent reference (reference.py)
  computed at the response's `at`,
- a websocket that listened all along holds the same state (snapshot +
  deltas),
- the series agree with the reference bucket by bucket,
- a restart changes nothing, and re-posting everything stores nothing.

Tests of this module run in file order and share the posted data.
"""

import threading
import time
import urllib.parse
from datetime import timedelta

import pytest

import dataset
import reference
from harness import (CATALOGUE, WsClient, assert_problem, compare_kpis, deep_diff,
                     json_equal_diff, near_wib_midnight, parse_time, utcnow, wib_midnight)

CONVERGE_S = 10.0        # time-driven KPIs (offline alerts) are pushed at least every 5 s

# docs/api.md 5.1: an alert object is the catalogue's members plus
# cleared_at, note and active (the Note under 5.1), nothing else.
ALERT_MEMBERS = {"id", "kind", "severity", "sensor_id", "message", "raised_at", "cleared_at",
                 "acked_by", "acked_at", "note", "active"}
# docs/api.md 4.2: a sensor as PUT answers it and GET /api/v1/sensors lists it.
SENSOR_MEMBERS = ["sensor_id", "name", "metric", "unit", "district", "location", "thresholds",
                  "offline_after_s", "value", "at", "level", "online"]
# docs/api.md 8.2: the members of each websocket message while the database is up.
WS_MEMBERS = {"snapshot": {"seq", "type", "at", "kpis", "database"},
              "kpis": {"seq", "type", "at", "kpis"},
              "alert": {"seq", "type", "alert"}}


class World:
    """What the module posted and what it saw."""

    def __init__(self, ds, sensors, registered, ws, sequential, concurrent, post_started):
        self.ds = ds
        self.sensors = sensors            # registry bodies + registered_at
        self.registered = registered      # {sensor_id: the PUT's Resp}
        self.ws = ws
        self.sequential = sequential      # [(Request, Resp)]
        self.concurrent = concurrent      # [(Request, Resp or exception)]
        self.post_started = post_started
        self.events = ds.all_events()     # every event is distinct (re-posts are identical)

    def expected(self, now):
        return reference.compute_kpis(self.events, self.sensors, now)


@pytest.fixture(scope="module")
def world(server, keys, api):
    ds = dataset.Dataset(seed=20261123)
    sensors = {}
    registered = {}
    for sid, body in ds.sensors.items():
        r = api.put(f"/api/v1/sensors/{urllib.parse.quote(sid)}", body, key=keys["sensors"])
        assert r.status == 201, f"PUT /api/v1/sensors/{sid} (new): {r}"
        sensors[sid] = dict(body, registered_at=utcnow())
        registered[sid] = r

    ws = WsClient(server.ws_url).start()
    sequential, concurrent_plan = dataset.plan_requests(ds, threads=4)
    started = utcnow()

    seq_results = []
    for req in sequential:
        seq_results.append((req, api.post_events(req.events, req.fmt, key=keys[req.poster])))

    conc_results = []
    lock = threading.Lock()

    def worker(reqs):
        client = server.http()
        try:
            for req in reqs:
                try:
                    resp = client.post_events(req.events, req.fmt, key=keys[req.poster])
                except Exception as e:  # recorded, asserted by the test
                    resp = e
                with lock:
                    conc_results.append((req, resp))
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(reqs,)) for reqs in concurrent_plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    w = World(ds, sensors, registered, ws, seq_results, conc_results, started)
    yield w
    ws.close()


def converge_get(api, world, timeout=CONVERGE_S):
    """GET /api/v1/kpis until it equals the reference at its own `at`;
    returns the body, or fails with the last differences."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.kpis()
        assert_kpis_shape(body)
        at = parse_time(body["at"])
        assert body["at"].endswith("+07:00"), f"`at` must be written in WIB: {body['at']}"
        assert abs((at - utcnow()).total_seconds()) < 10, f"`at` is not the current time: {body['at']}"
        if near_wib_midnight(at, 10):
            time.sleep(1)            # a day boundary: wait until it has passed
            deadline += 1
            continue
        diffs = compare_kpis(body["kpis"], world.expected(at))
        if not diffs:
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"GET /api/v1/kpis differs from the reference at {body['at']}:\n  "
                        + "\n  ".join(diffs), pytrace=False)
        time.sleep(0.25)


def assert_kpis_shape(body):
    """docs/api.md 5.1: GET /api/v1/kpis is {"at", "seq", "kpis"} and
    nothing else; `seq` an integer; `kpis` holds every key of the catalogue
    (docs/spec/kpis.md) and no other; every alert object of alerts.active
    has exactly ALERT_MEMBERS."""
    assert isinstance(body, dict) and set(body) == {"at", "seq", "kpis"}, \
        f"GET /api/v1/kpis must be {{at, seq, kpis}}: {sorted(body) if isinstance(body, dict) else body!r}"
    assert type(body["seq"]) is int, body["seq"]
    kpis = body["kpis"]
    assert isinstance(kpis, dict) and set(kpis) == set(CATALOGUE), \
        (f"kpis keys differ from the catalogue: missing {sorted(set(CATALOGUE) - set(kpis))}, "
         f"not in it {sorted(set(kpis) - set(CATALOGUE))}")
    for a in kpis["alerts.active"]:
        assert isinstance(a, dict) and set(a) == ALERT_MEMBERS, f"an alert object's members: {a}"


# --------------------------------------------------------------------------
# Posting
# --------------------------------------------------------------------------


def accepted_problem(resp, accepted, duplicates):
    """What is wrong with a response to POST /api/v1/events that must be
    docs/api.md 3.5's `202 Accepted`, `Content-Type: application/json`,
    {"accepted": accepted, "duplicates": duplicates} (integers, nothing
    else), with section 1's Cache-Control: no-store and
    X-Content-Type-Options: nosniff; None when nothing is."""
    if not hasattr(resp, "status"):
        return f"no response: {resp!r}"
    want = {"accepted": accepted, "duplicates": duplicates}
    if resp.status != 202 or resp.content_type != "application/json":
        return f"expected 202 application/json {want}, got {resp!r}"
    body = resp.json
    if body != want or not all(type(body[k]) is int for k in want):
        return f"expected {want}, got {resp.raw[:300]!r}"
    if resp.headers.get("Cache-Control") != "no-store" or \
            resp.headers.get("X-Content-Type-Options") != "nosniff":
        return (f"Cache-Control {resp.headers.get('Cache-Control')!r}, X-Content-Type-Options "
                f"{resp.headers.get('X-Content-Type-Options')!r}; expected no-store, nosniff")
    return None


def test_sequential_requests_count_exactly(world):
    """docs/api.md 3.5: each request's answer is 202 with exactly the
    events of it that were new (`accepted`) and those already stored
    (`duplicates`)."""
    bad = []
    for req, resp in world.sequential:
        problem = accepted_problem(resp, req.new, req.dups)
        if problem:
            bad.append(f"{req}: {problem}")
    assert not bad, f"{len(bad)} of {len(world.sequential)} requests:\n" + "\n".join(bad[:20])


def test_concurrent_requests_totals(world):
    """Requests sent in parallel overlap on purpose: whichever commits first
    counts an event as accepted, so only the totals are exact."""
    errors = []
    for req, r in world.concurrent:
        # Which of two overlapping requests stored an event is not known,
        # so each body is checked for its shape and its sum here.
        body = r.json if hasattr(r, "status") else None
        n = body.get("accepted") if isinstance(body, dict) and type(body.get("accepted")) is int else None
        problem = accepted_problem(r, n, len(req.events) - n) if n is not None else f"{r!r}"
        if problem:
            errors.append(f"{req}: {problem}")
    assert not errors, "the concurrent phase:\n" + "\n".join(errors[:10])
    already = {(req.poster, e["id"]) for req, _ in world.sequential for e in req.events}
    sent = [(req.poster, e["id"]) for req, _ in world.concurrent for e in req.events]
    new = set(sent) - already
    accepted = sum(r.json["accepted"] for _, r in world.concurrent)
    duplicates = sum(r.json["duplicates"] for _, r in world.concurrent)
    assert (accepted, duplicates) == (len(new), len(sent) - len(new)), \
        f"accepted/duplicates totals over {len(world.concurrent)} parallel requests"


def test_database_holds_each_event_once(world, database):
    """Every event of the data set, readings included, is stored once: as
    many rows as distinct (poster, event id) pairs sent."""
    n = database.count_events()
    pairs = database.scalar("SELECT count(DISTINCT (poster, event_id)) FROM events")
    assert n == pairs == len(world.ds), \
        f"events table has {n} rows, {pairs} distinct (poster, id); the dataset has {len(world.ds)} events"


# --------------------------------------------------------------------------
# KPIs
# --------------------------------------------------------------------------


def test_kpis_match_reference(world, api):
    body = converge_get(api, world)
    # Once equal, it stays equal: a second look right away.
    again = api.kpis()
    assert_kpis_shape(again)
    diffs = compare_kpis(again["kpis"], world.expected(parse_time(again["at"])))
    assert not diffs, "KPIs changed on a second GET:\n  " + "\n  ".join(diffs)
    assert again["seq"] >= body["seq"]


def test_websocket_accumulated_state_matches_reference(world):
    ws = world.ws
    assert ws.subprotocol == "situation.v1"
    assert ws.snapshot["type"] == "snapshot"
    assert ws.snapshot["database"] == "up", ws.snapshot["database"]
    assert set(ws.snapshot["kpis"]) == set(CATALOGUE), \
        (f"the snapshot's kpis differ from the catalogue: missing "
         f"{sorted(set(CATALOGUE) - set(ws.snapshot['kpis']))}, not in it "
         f"{sorted(set(ws.snapshot['kpis']) - set(CATALOGUE))}")
    deadline = time.monotonic() + CONVERGE_S
    while True:
        now = utcnow()
        if near_wib_midnight(now, 10):
            time.sleep(1)
            continue
        try:
            ws.wait_state(world.expected(now), timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    assert not ws.violations, "websocket protocol violations:\n" + "\n".join(ws.violations[:20])
    assert not ws.closed, f"the websocket closed: {ws.close_code} {ws.failure!r}"
    kinds = {m.get("type") for _, m in ws.messages}
    assert "kpis" in kinds
    with ws.cond:
        messages = [m for _, m in ws.messages]
    wrong = []
    for m in messages:
        members = WS_MEMBERS.get(m.get("type"))
        if members is None or set(m) != members:
            wrong.append(f"{m.get('type')}: members {sorted(m)}, expected {sorted(members or [])}")
        elif m["type"] == "alert" and set(m["alert"]) != ALERT_MEMBERS:
            wrong.append(f"alert object members {sorted(m['alert'])}")
        elif m["type"] == "kpis" and not set(m["kpis"]) <= set(CATALOGUE):
            wrong.append(f"kpis message with keys outside the catalogue: {sorted(set(m['kpis']) - set(CATALOGUE))}")
    assert not wrong, f"{len(wrong)} of {len(messages)} websocket messages (docs/api.md 8.2):\n" + \
        "\n".join(wrong[:10])


def test_get_and_websocket_agree(world, api):
    converge_get(api, world)
    body = api.kpis()
    ok = world.ws.wait(lambda: not json_equal_diff(world.ws.state, body["kpis"]), 3.0)
    assert ok, "websocket state != GET /api/v1/kpis:\n  " + "\n  ".join(
        json_equal_diff(world.ws.state, body["kpis"])[:30])


def registry_entry(body, latest):
    """A sensor as docs/api.md 4.1/4.2 give it: the registry entry PUT
    (`thresholds` and `location` numbers as doubles), and the latest
    reading's value, at, level and online (all null and false for one that
    never reported)."""
    loc = body.get("location")
    return {"sensor_id": latest["sensor_id"], "name": body["name"], "metric": body["metric"],
            "unit": body["unit"], "district": body.get("district"),
            "location": None if loc is None else {"lat": float(loc["lat"]), "lon": float(loc["lon"])},
            "thresholds": {k: float(v) for k, v in body["thresholds"].items()},
            "offline_after_s": body.get("offline_after_s", 900),
            "value": latest["value"], "at": latest["at"], "level": latest["level"],
            "online": latest["online"]}


def doubles_problem(item):
    """docs/api.md section 1: sensor values, thresholds and coordinates are
    JSON numbers written with a fraction (so read as floats)."""
    nums = list(item["thresholds"].values()) + [item["value"]]
    if item["location"] is not None:
        nums += [item["location"]["lat"], item["location"]["lon"]]
    bad = [x for x in nums if x is not None and type(x) is not float]
    return f"{item['sensor_id']}: numbers written without a fraction: {bad}" if bad else None


def test_sensor_registration_answers(world):
    """docs/api.md 4.1: a PUT of a new sensor answers 201 with the sensor
    as GET /api/v1/sensors shows it: every member of SENSOR_MEMBERS, in its
    registry values, and no reading yet (value, at, level null; online
    false)."""
    bad = []
    for sid, r in world.registered.items():
        want = registry_entry(world.ds.sensors[sid], {"sensor_id": sid, "value": None, "at": None,
                                                      "level": None, "online": False})
        diffs = deep_diff(r.json, want) if r.content_type == "application/json" else [f"{r!r}"]
        problem = diffs or doubles_problem(r.json)
        if problem:
            bad.append(f"PUT /api/v1/sensors/{sid}: {problem}")
    assert not bad, "\n".join(bad)


def test_sensor_listing(world, api):
    """docs/api.md 4.2: GET /api/v1/sensors is {"sensors": [...]}, every
    registered sensor ordered by sensor_id, each with exactly the members
    of SENSOR_MEMBERS: its registry entry and its latest reading (greatest
    occurred_at) as the reference computes it."""
    r = api.get("/api/v1/sensors")
    now = utcnow()
    assert r.status == 200 and r.content_type == "application/json", r
    assert isinstance(r.json, dict) and set(r.json) == {"sensors"}, f"expected {{\"sensors\": [...]}}: {r!r}"
    latest = world.expected(now)["sensors.latest"]            # ordered by sensor_id
    want = [registry_entry(world.ds.sensors[row["sensor_id"]], row) for row in latest]
    diffs = deep_diff(r.json["sensors"], want, "sensors")
    assert not diffs, "GET /api/v1/sensors differs:\n  " + "\n  ".join(diffs)
    bad = [p for p in map(doubles_problem, r.json["sensors"]) if p]
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------


def get_series(api, name, window, step):
    before = utcnow()
    r = api.get(f"/api/v1/series?name={urllib.parse.quote(name)}&window={window}&step={step}")
    after = utcnow()
    assert r.status == 200, f"series {name} {window}/{step}: {r}"
    return r.json, before, after


def check_buckets(body, name, window_s, step_s, before, after, value_keys):
    """Shape of a series: every bucket present, oldest first, aligned to
    the step in WIB, covering [now - window, now]; returns [(start, bucket)]."""
    assert isinstance(body, dict) and set(body) == {"name", "step_s", "buckets"}, \
        f"a series is {{name, step_s, buckets}}: {sorted(body) if isinstance(body, dict) else body!r}"
    assert body["name"] == name, body["name"]
    assert body["step_s"] == step_s and type(body["step_s"]) is int, body["step_s"]
    buckets = body["buckets"]
    n = -(-window_s // step_s)                     # ceil(window / step), docs/api.md 5.2
    assert len(buckets) == n, f"{name}: {len(buckets)} buckets for {window_s}/{step_s}, expected {n}"
    out = []
    for b in buckets:
        assert set(b) == {"t"} | set(value_keys), b
        assert b["t"].endswith("+07:00"), f"bucket times are written in WIB: {b['t']}"
        t = parse_time(b["t"])
        into_day = (t - wib_midnight(t)).total_seconds()
        assert into_day % step_s == 0, f"bucket {b['t']} not aligned to {step_s} s in WIB"
        out.append((t, b))
    for (t0, _), (t1, _) in zip(out, out[1:]):
        assert (t1 - t0).total_seconds() == step_s, f"gap or disorder between {t0} and {t1}"
    step = timedelta(seconds=step_s)
    first, last = out[0][0], out[-1][0]
    assert last <= after and last + step > before, f"the last bucket {last} does not hold now"
    assert first <= before - timedelta(seconds=window_s) + step, f"the window is not covered from {first}"
    return out


def full_buckets(out, window_s, step_s, before, after):
    """Buckets entirely inside the window whatever the request's instant."""
    step = timedelta(seconds=step_s)
    lo = after - timedelta(seconds=window_s)
    return [(t, b) for t, b in out if t >= lo and t + step <= before]


@pytest.mark.parametrize("name,window,window_s,step,step_s", [
    ("calls.received", "24h", 86400, "1h", 3600),
    ("calls.received", "24h", 86400, "5m", 300),
    ("reports.received", "720h", 720 * 3600, "24h", 86400),
    ("reports.resolved", "720h", 720 * 3600, "24h", 86400),
    ("reports.resolved", "168h", 168 * 3600, "6h", 21600),
])
def test_count_series(world, api, name, window, window_s, step, step_s):
    body, before, after = get_series(api, name, window, step)
    out = check_buckets(body, name, window_s, step_s, before, after, ["count"])
    times = reference.series_times(world.events, name, after)
    full = full_buckets(out, window_s, step_s, before, after)
    assert len(full) >= len(out) - 2
    wrong = []
    for t, b in out:
        assert type(b["count"]) is int and b["count"] >= 0, b
    for t, b in full:
        want = reference.count_in(times, t, t + timedelta(seconds=step_s))
        if b["count"] != want:
            wrong.append(f"{b['t']}: {b['count']} != {want}")
    assert not wrong, f"{name} {window}/{step} buckets differ from the reference:\n" + "\n".join(wrong)
    assert sum(b["count"] for _, b in full) > 0


@pytest.mark.parametrize("sensor_id", ["SMG-KREO-JATIBARANG", "SMG-BKB-SIMONGAN", "SMG-BABON-GENUK"])
def test_sensor_series(world, api, sensor_id):
    name = f"sensor:{sensor_id}"
    body, before, after = get_series(api, name, "24h", "1h")
    out = check_buckets(body, name, 86400, 3600, before, after, ["min", "max", "last"])
    wrong = [f"{b['t']}.{k}: {b[k]!r} is not a number written with a fraction (docs/api.md section 1)"
             for _, b in out for k in ("min", "max", "last") if b[k] is not None and type(b[k]) is not float]
    for t, b in full_buckets(out, 86400, 3600, before, after):
        want = reference.sensor_bucket(world.events, sensor_id, t, t + timedelta(hours=1))
        for k in ("min", "max", "last"):
            if (want[k] is None) != (b[k] is None) or \
                    (want[k] is not None and abs(b[k] - want[k]) > 1e-9 * max(1, abs(want[k]))):
                wrong.append(f"{b['t']}.{k}: {b[k]} != {want[k]}")
    assert not wrong, f"{name} differs from the reference:\n" + "\n".join(wrong)


@pytest.mark.parametrize("query, status, code", [
    ("name=calls.received&window=24h&step=30s", 400, "bad_request"),        # step below 1 min
    ("name=calls.received&window=800h&step=1h", 400, "bad_request"),        # window above 30 days
    ("name=calls.nonsense&window=24h&step=1h", 404, "not_found"),           # no such series
    ("name=sensor:NO-SUCH-GAUGE&window=24h&step=1h", 404, "not_found"),     # no such sensor
    ("name=calls.received&window=banana&step=1h", 400, "bad_request"),
])
def test_series_bad_queries(api, world, query, status, code):
    """docs/api.md 5.2: 400 bad_request for a window or step out of range
    or unreadable, 404 not_found for an unknown series or sensor."""
    r = api.get(f"/api/v1/series?{query}")
    assert_problem(r, status, code)


# --------------------------------------------------------------------------
# Restart and re-posting
# --------------------------------------------------------------------------


RESTART_SETTLE_S = 3.0   # time-driven values are re-evaluated at least once a second (docs/api.md 8.2)


def test_restart_keeps_kpis(world, api, server):
    before = converge_get(api, world)
    server.restart()                 # fails the test unless the stop was clean
    api.close()
    assert world.ws.wait(lambda: world.ws.closed, 5), "the websocket stayed open across a restart"
    deadline = time.monotonic() + RESTART_SETTLE_S
    while True:
        after = api.kpis()
        assert_kpis_shape(after)
        diffs = json_equal_diff(after["kpis"], before["kpis"])
        if not diffs or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not diffs, "KPIs after restart differ from before:\n  " + "\n  ".join(diffs[:30])
    converge_get(api, world)
    # A new websocket gets the same state as a snapshot.
    ws = WsClient(server.ws_url).start()
    try:
        d = json_equal_diff(ws.snapshot["kpis"], after["kpis"])
        assert not d, "snapshot after restart != GET:\n  " + "\n  ".join(d[:30])
    finally:
        ws.close()


def test_reposting_everything_stores_nothing(world, api, keys, database):
    n_before = database.count_events()
    before = converge_get(api, world)
    for poster, events in world.ds.events.items():
        for i in range(0, len(events), 500):
            chunk = events[i:i + 500]
            r = api.post_events(chunk, "ndjson" if i % 1000 else "json", key=keys[poster])
            problem = accepted_problem(r, 0, len(chunk))
            assert problem is None, problem
    assert database.count_events() == n_before
    after = converge_get(api, world)
    diffs = json_equal_diff(after["kpis"], before["kpis"])
    assert not diffs, "KPIs changed by re-posting:\n  " + "\n  ".join(diffs[:30])
