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
from harness import (CATALOGUE, WsClient, assert_problem, compare_kpis, json_equal_diff,
                     near_wib_midnight, parse_time, utcnow, wib_midnight)

CONVERGE_S = 10.0        # time-driven KPIs (offline alerts) are pushed at least every 5 s


class World:
    """What the module posted and what it saw."""

    def __init__(self, ds, sensors, ws, sequential, concurrent, post_started):
        self.ds = ds
        self.sensors = sensors            # registry bodies + registered_at
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
    for sid, body in ds.sensors.items():
        r = api.put(f"/api/v1/sensors/{urllib.parse.quote(sid)}", body, key=keys["sensors"])
        assert r.status == 201, f"PUT /api/v1/sensors/{sid} (new): {r}"
        sensors[sid] = dict(body, registered_at=utcnow())

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

    w = World(ds, sensors, ws, seq_results, conc_results, started)
    yield w
    ws.close()


def converge_get(api, world, timeout=CONVERGE_S):
    """GET /api/v1/kpis until it equals the reference at its own `at`;
    returns the body, or fails with the last differences."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.kpis()
        assert set(body) >= {"at", "seq", "kpis"}, f"GET /api/v1/kpis: {list(body)}"
        assert type(body["seq"]) is int, body["seq"]
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


# --------------------------------------------------------------------------
# Posting
# --------------------------------------------------------------------------


def counts(resp):
    """(accepted, duplicates) of a 202 body."""
    body = resp.json or {}
    return body.get("accepted"), body.get("duplicates")


def test_sequential_requests_count_exactly(world):
    bad = []
    for req, resp in world.sequential:
        want = {"accepted": req.new, "duplicates": req.dups}
        body = resp.json if resp.status == 202 else None
        if resp.status != 202 or not isinstance(body, dict) or \
                {k: body.get(k) for k in want} != want or \
                not all(type(body.get(k)) is int for k in want):
            bad.append(f"{req}: expected 202 {want}, got {resp!r}")
    assert not bad, f"{len(bad)} of {len(world.sequential)} requests:\n" + "\n".join(bad[:20])


def test_concurrent_requests_totals(world):
    """Requests sent in parallel overlap on purpose: whichever commits first
    counts an event as accepted, so only the totals are exact."""
    errors = [(req, r) for req, r in world.concurrent if not hasattr(r, "status") or r.status != 202]
    assert not errors, "non-202 in the concurrent phase:\n" + "\n".join(f"{q}: {r!r}" for q, r in errors[:10])
    already = {(req.poster, e["id"]) for req, _ in world.sequential for e in req.events}
    sent = [(req.poster, e["id"]) for req, _ in world.concurrent for e in req.events]
    new = set(sent) - already
    accepted = sum(r.json["accepted"] for _, r in world.concurrent)
    duplicates = sum(r.json["duplicates"] for _, r in world.concurrent)
    assert (accepted, duplicates) == (len(new), len(sent) - len(new)), \
        f"accepted/duplicates totals over {len(world.concurrent)} parallel requests"
    for req, r in world.concurrent:
        assert r.json["accepted"] + r.json["duplicates"] == len(req.events), (req, r.json)


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
    diffs = compare_kpis(again["kpis"], world.expected(parse_time(again["at"])))
    assert not diffs, "KPIs changed on a second GET:\n  " + "\n  ".join(diffs)
    assert again["seq"] >= body["seq"]


def test_websocket_accumulated_state_matches_reference(world):
    ws = world.ws
    assert ws.subprotocol == "situation.v1"
    assert ws.snapshot["type"] == "snapshot"
    missing = [k for k in CATALOGUE if k not in ws.snapshot["kpis"]]
    assert not missing, f"snapshot lacks {missing}"
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


def test_get_and_websocket_agree(world, api):
    converge_get(api, world)
    body = api.kpis()
    ok = world.ws.wait(lambda: not json_equal_diff(world.ws.state, body["kpis"]), 3.0)
    assert ok, "websocket state != GET /api/v1/kpis:\n  " + "\n  ".join(
        json_equal_diff(world.ws.state, body["kpis"])[:30])


def test_sensor_listing(world, api):
    listed = api.sensors()
    ids = sorted(s.get("sensor_id", s.get("id")) for s in listed)
    assert ids == sorted(world.sensors), listed
    by_id = {s.get("sensor_id", s.get("id")): s for s in listed}
    exp = {r["sensor_id"]: r for r in world.expected(utcnow())["sensors.latest"]}
    for sid, s in by_id.items():
        # the latest reading may be flat in the item or nested under "latest"
        latest = s["latest"] if isinstance(s.get("latest"), dict) else s
        want = exp[sid]
        if want["value"] is None:
            assert latest.get("value") is None, (sid, s)
        else:
            assert latest.get("value") == pytest.approx(want["value"]), (sid, s)
        assert latest.get("level") == want["level"], (sid, s)


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
    assert body.get("name") == name, body.get("name")
    assert body.get("step_s") == step_s and type(body["step_s"]) is int
    buckets = body["buckets"]
    n = window_s // step_s
    assert len(buckets) in (n, n + 1), f"{name}: {len(buckets)} buckets for {window_s}/{step_s}"
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
    wrong = []
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
    assert r.json.get("detail"), r


# --------------------------------------------------------------------------
# Restart and re-posting
# --------------------------------------------------------------------------


def test_restart_keeps_kpis(world, api, server):
    before = converge_get(api, world)
    rc = server.restart()
    assert rc is not None, "the server did not stop within 10 s of SIGTERM"
    api.close()
    assert world.ws.wait(lambda: world.ws.closed, 5), "the websocket stayed open across a restart"
    after = api.kpis()
    diffs = json_equal_diff(after["kpis"], before["kpis"])
    if diffs:
        # time-driven values are recomputed at start; give them a moment
        time.sleep(1.0)
        after = api.kpis()
        diffs = json_equal_diff(after["kpis"], before["kpis"])
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
            assert r.status == 202 and counts(r) == (0, len(chunk)), r
    assert database.count_events() == n_before
    after = converge_get(api, world)
    diffs = json_equal_diff(after["kpis"], before["kpis"])
    assert not diffs, "KPIs changed by re-posting:\n  " + "\n  ".join(diffs[:30])
