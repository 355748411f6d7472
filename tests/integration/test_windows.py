"""
The KPI windows at their edges, end to end: events posted over HTTP, KPIs
read with GET /api/v1/kpis, at an instant the test knows to the millisecond.

The server's wall clock is stopped (libfaketime, LD_PRELOAD) at an instant
the test sets; its monotonic clock stays real, so its timers run as usual.
For every edge that docs/kpis.md defines, events lie exactly on it and 1 ms
outside it (and, for the windows, the SLA and the day's end, 1 ms inside
it), and the KPIs must count those on and inside the edge, not those
outside:

- "in the last D" means t >= now - D: the 1 h windows (calls.waiting,
  calls.answered_1h, calls.abandoned_1h and the ratios over them), the 24 h
  window of calls.active, the 30 days of the resolved tickets
  (reports.sla_met_30d, resolved_30d of reports.by_agency), and times up to
  5 minutes in the future are inside every window;
- the service level's 20 s: a wait of 20.000 s is within it, 20.001 s is not;
- "today" is [00:00 WIB today, 00:00 WIB tomorrow);
- overdue: open and received_at < now - SLA (strict), for the 72 h default
  and for a category's own --sla-hours; within SLA: resolved_at -
  received_at <= SLA;
- a sensor is offline when now - at > offline_after_s, and an offline alert
  is raised then;
- occurred_at at most 300 s ahead of the server's clock (docs/api.md 3.2):
  exactly 300 s is accepted, 300.001 s refused.

The expectation is the reference (reference.py, an independent
implementation of docs/kpis.md) over the events as posted, at the server's
instant, and, for each edge, the counts worked out by hand below.
"""

import os
import time
from datetime import timedelta
from pathlib import Path

import reference
from harness import (UTC, assert_problem, compare_kpis, create_key, ev_call, ev_reading,
                     ev_report, fmt_time, kendali_cli, sensor_body, utcnow, wib_midnight)
from test_clock import faketime_library

MS = timedelta(milliseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FLOOD_SLA_H = 5          # --sla-hours flood=5; every other category keeps 72 h
OFFLINE_AFTER_S = 600


# --------------------------------------------------------------------------
# The server's clock, set by the test
# --------------------------------------------------------------------------


class ServerClock:
    """The wall clock of a server started with env(): it stands still at the
    instant last given to set(), to the microsecond, and jumps when set
    again (libfaketime reads the file named by FAKETIME_TIMESTAMP_FILE at
    every call, FAKETIME_NO_CACHE).  Only the wall clock is faked: libuv's
    timers, and with them the server's tick, run on the real monotonic
    clock.  The test fails, never skips, without libfaketime."""

    def __init__(self, directory, at):
        self.path = Path(directory) / "server-clock.rc"
        self.library = faketime_library()
        self.now = None
        self.set(at)

    def set(self, at):
        """Stops the server's clock at `at` (an aware datetime).  The file
        is replaced whole, so that the server never reads half of it."""
        text = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "\n"
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.write_text(text)
        os.replace(tmp, self.path)
        self.now = at

    def env(self):
        preload = [self.library]
        if os.environ.get("LD_PRELOAD"):
            preload.append(os.environ["LD_PRELOAD"])
        asan = os.environ.get("ASAN_OPTIONS", "")
        return {
            "LD_PRELOAD": ":".join(preload),
            # The file's time is read as the process's local time.
            "TZ": "UTC",
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # libfaketime comes before the sanitizers' runtime on purpose.
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
        }


def assert_server_time(api, at):
    """GET /api/v1/kpis answers `at` (its `at` is the time the snapshot was
    computed, docs/api.md 5.1): the server's clock is the one set."""
    body = api.kpis()
    assert body["at"] == fmt_time(at), (
        f"the server's clock is not the one set: GET /api/v1/kpis answered at {body['at']}, "
        f"expected {fmt_time(at)} (is libfaketime preloaded?)")
    return body


def poll_kpis(api, expected, timeout, keys=None):
    """GET /api/v1/kpis until its kpis equal `expected` (the server applies a
    commit's result, and raises time-driven alerts, within a tick); returns
    the last body and its differences."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.kpis()
        diffs = compare_kpis(body["kpis"], expected, keys)
        if not diffs or time.monotonic() > deadline:
            return body, diffs
        time.sleep(0.1)


# --------------------------------------------------------------------------
# The events around every edge
# --------------------------------------------------------------------------


def edge_events(now):
    """(calls, reports, readings) placed around the edges of `now`, which is
    three minutes before a midnight WIB (so that the 1 h windows are inside
    today, the 24 h one starts yesterday, and tomorrow is less than 5 min
    ahead)."""
    day0 = wib_midnight(now)              # 00:00 WIB today
    day1 = day0 + DAY                     # 00:00 WIB tomorrow, 3 min ahead
    assert timedelta(0) < day1 - now < timedelta(minutes=5)
    h1, d1, d30 = now - HOUR, now - DAY, now - 30 * DAY

    calls = []

    def call(cid, status, at, category=None):
        calls.append(ev_call(call_id=cid, status=status, category=category, at=fmt_time(at),
                             eid=f"{cid}/{status}"))

    # calls.waiting: status received, received in the last hour.
    call("W+", "received", h1 + MS, "other")
    call("W0", "received", h1, "other")
    call("W-", "received", h1 - MS, "other")
    # calls.answered_1h (and asa_1h_s, service_level_1h): answered in the
    # last 60 min; closed since, so not waiting or active.  Waits of 10,
    # 15 and 40 s tell which were counted.
    for cid, at, wait in (("A+", h1 + MS, 10), ("A0", h1, 15), ("A-", h1 - MS, 40)):
        call(cid, "received", at - timedelta(seconds=wait), "other")
        call(cid, "answered", at)
        call(cid, "closed", now - timedelta(minutes=1))
    # The service level's 20 s: a wait of exactly 20 s is within it.
    for cid, received, wait in (("SL20", now - timedelta(minutes=10), timedelta(seconds=20)),
                                ("SL20+", now - timedelta(minutes=9), timedelta(seconds=20) + MS)):
        call(cid, "received", received, "other")
        call(cid, "answered", received + wait)
        call(cid, "closed", now - timedelta(minutes=1))
    # calls.abandoned_1h: abandoned in the last 60 min.
    for cid, at in (("B+", h1 + MS), ("B0", h1), ("B-", h1 - MS)):
        call(cid, "received", at - timedelta(seconds=30), "other")
        call(cid, "abandoned", at)
    # calls.active: received or answered, received in the last 24 h.
    for cid, at in (("C+", d1 + MS), ("C0", d1), ("C-", d1 - MS)):
        call(cid, "received", at, "other")
        call(cid, "answered", at + timedelta(seconds=5))
    # calls.received_today and by_category_today: [00:00 today, 00:00
    # tomorrow); each edge's call has a category of its own, and is closed
    # at once (closed ranks after received on a tie).
    for cid, at, category in (("D0", day0, "medical"), ("D-", day0 - MS, "fire"),
                              ("D1-", day1 - MS, "police"), ("D1", day1, "disaster")):
        call(cid, "received", at, category)
        call(cid, "closed", at)
    # Exactly 5 minutes ahead: accepted, and inside every "last D" window
    # (waiting, active); tomorrow, so not today.
    call("F300", "received", now + timedelta(seconds=300), "emergency")

    reports = []

    def report(ticket, status, at, category=None, agency=None, district=None):
        extra = {"district": district} if district else {}
        reports.append(ev_report(ticket=ticket, status=status, category=category, agency=agency,
                                 at=fmt_time(at), eid=f"{ticket}/{status}", **extra))

    # reports.overdue: open and received_at < now - SLA (strict).  Each
    # ticket's agency names it in reports.by_agency.
    for sla, category, prefix in ((timedelta(hours=72), "road", "OD"),
                                  (timedelta(hours=FLOOD_SLA_H), "flood", "FL")):
        for suffix, received in (("PLUS", now - sla + MS), ("EDGE", now - sla),
                                 ("MINUS", now - sla - MS)):
            ticket = f"{prefix}-{suffix}"
            report(ticket, "received", received, category, district="Genuk")
            report(ticket, "dispatched", received + timedelta(minutes=30), agency=ticket)
    # Resolved in the last 30 days (latest status resolved): 10 h of work
    # each, within the SLA.
    for suffix, resolved in (("PLUS", d30 + MS), ("EDGE", d30), ("MINUS", d30 - MS)):
        ticket = f"RS-{suffix}"
        report(ticket, "received", resolved - timedelta(hours=10), "road")
        report(ticket, "dispatched", resolved - timedelta(hours=9), agency=ticket)
        report(ticket, "resolved", resolved)
    # Within SLA: resolved_at - received_at <= SLA, for 72 h and for flood's 5 h.
    for ticket, category, received, took in (
            ("SL-MET", "road", now - 4 * DAY, timedelta(hours=72)),
            ("SL-MISS", "road", now - 4 * DAY, timedelta(hours=72) + MS),
            ("FL-MET", "flood", now - 2 * DAY, timedelta(hours=FLOOD_SLA_H)),
            ("FL-MISS", "flood", now - 2 * DAY, timedelta(hours=FLOOD_SLA_H) + MS)):
        report(ticket, "received", received, category)
        report(ticket, "dispatched", received + timedelta(minutes=1), agency=ticket)
        report(ticket, "resolved", received + took)
    # Today: received_today and resolved_today.
    report("TD0", "received", day0, "waste", district="Tembalang")
    report("TD-", "received", day0 - MS, "drainage", district="Tembalang")
    report("TR0", "received", day0 - timedelta(hours=2), "streetlight")
    report("TR0", "resolved", day0)
    report("TR-", "received", day0 - timedelta(hours=2), "streetlight")
    report("TR-", "resolved", day0 - MS)

    # A sensor is offline when now - at > offline_after_s.
    readings = [ev_reading("EDGE-ON", 50, at=fmt_time(now - timedelta(seconds=OFFLINE_AFTER_S)),
                           eid="EDGE-ON/1"),
                ev_reading("EDGE-OFF", 50, at=fmt_time(now - timedelta(seconds=OFFLINE_AFTER_S) - MS),
                           eid="EDGE-OFF/1")]
    return calls, reports, readings


def test_window_edges_to_the_millisecond(fresh_database, make_server, tmp_path):
    """Every window edge of docs/kpis.md through POST /api/v1/events and
    GET /api/v1/kpis, with the server's clock stopped at a known instant:
    1 ms inside and on the edge count, 1 ms outside does not."""
    db = fresh_database
    # Three minutes before the midnight WIB nearest to the real time (the
    # server's clock stays within 12 h of the database's), on a whole second.
    real = utcnow()
    midnight = wib_midnight(real)
    if real - midnight > timedelta(hours=12):
        midnight += DAY
    now = midnight - timedelta(minutes=3)
    clock = ServerClock(tmp_path, now)

    kendali_cli(db, "migrate")
    key = create_key(db, "ops-console", ["call", "report", "sensor"])
    srv = make_server(db, "--sla-hours", f"flood={FLOOD_SLA_H}", env=clock.env())
    api = srv.http(key=key)
    try:
        assert_server_time(api, now)

        sensors = {}
        for sid in ("EDGE-ON", "EDGE-OFF"):
            body = sensor_body(sid.title(), {"siaga": 100, "awas": 200},
                               offline_after_s=OFFLINE_AFTER_S)
            r = api.put(f"/api/v1/sensors/{sid}", body)
            assert r.status == 201, r
            sensors[sid] = dict(body, registered_at=now)

        calls, reports, readings = edge_events(now)
        for batch in (calls, reports, readings):
            r = api.post_events(batch)
            assert r.status == 202, r
            assert r.json == {"accepted": len(batch), "duplicates": 0}, r

        # 300 s ahead of the server's clock is the limit (docs/api.md 3.2):
        # 1 ms further is refused, naming occurred_at.
        late = ev_call(call_id="F300+", status="received", category="emergency",
                       at=fmt_time(now + timedelta(seconds=300) + MS), eid="F300+/received")
        r = api.post_events([late])
        assert_problem(r, 422, "invalid_event", index=0, field="occurred_at")
        assert db.scalar("SELECT count(*) FROM events WHERE event_id = %s", ("F300+/received",)) == 0

        events = calls + reports + readings
        want = reference.compute_kpis(events, sensors, now, sla_hours={"flood": FLOOD_SLA_H})
        body, diffs = poll_kpis(api, want, timeout=5.0)
        assert body["at"] == fmt_time(now), body["at"]
        assert not diffs, (f"GET /api/v1/kpis at {body['at']} differs from the reference:\n  "
                           + "\n  ".join(diffs))
        k = body["kpis"]

        # The same, edge by edge, as worked out by hand.
        # 1 h: W+ and W0 wait, W- does not; F300 (5 min ahead) waits too.
        assert k["calls.waiting"] == 3, k["calls.waiting"]
        # A+, A0 and both service-level calls; not A- (its 40 s wait would
        # show in the mean).
        assert k["calls.answered_1h"] == 4, k["calls.answered_1h"]
        assert abs(k["calls.asa_1h_s"] - (10 + 15 + 20 + 20.001) / 4) < 1e-6, k["calls.asa_1h_s"]
        # B+ and B0; not B-.
        assert k["calls.abandoned_1h"] == 2, k["calls.abandoned_1h"]
        assert abs(k["calls.abandon_rate_1h"] - 2 / 6) < 1e-9, k["calls.abandon_rate_1h"]
        # Waits <= 20 s: A+ (10), A0 (15), SL20 (20.000); not SL20+ (20.001).
        assert abs(k["calls.service_level_1h"] - 3 / 6) < 1e-9, k["calls.service_level_1h"]
        # 24 h: C+ and C0, not C-; W+, W0, W- and F300 are received.
        assert k["calls.active"] == 6, k["calls.active"]
        # Today: D0 (00:00:00.000) and D1- (23:59:59.999), not D- (yesterday)
        # nor D1 (tomorrow), and the eleven calls of the last hour.
        assert k["calls.received_today"] == 13, k["calls.received_today"]
        assert k["calls.by_category_today"] == {"other": 11, "medical": 1, "police": 1}, \
            k["calls.by_category_today"]
        # Overdue: only the tickets received 1 ms before now - SLA.
        assert k["reports.overdue"] == 2, k["reports.overdue"]
        by_agency = {a["agency"]: (a["open"], a["overdue"], a["resolved_30d"], a["sla_met_30d"])
                     for a in k["reports.by_agency"]}
        assert by_agency == {
            "OD-MINUS": (1, 1, 0, None), "FL-MINUS": (1, 1, 0, None),
            "OD-EDGE": (1, 0, 0, None), "OD-PLUS": (1, 0, 0, None),
            "FL-EDGE": (1, 0, 0, None), "FL-PLUS": (1, 0, 0, None),
            # resolved 30 d ago to the millisecond counts, 1 ms more does not
            # (RS-MINUS has nothing open or resolved in 30 days: not listed)
            "RS-PLUS": (0, 0, 1, 1.0), "RS-EDGE": (0, 0, 1, 1.0),
            # resolved in exactly the SLA is within it, 1 ms more is not
            "SL-MET": (0, 0, 1, 1.0), "SL-MISS": (0, 0, 1, 0.0),
            "FL-MET": (0, 0, 1, 1.0), "FL-MISS": (0, 0, 1, 0.0),
        }, k["reports.by_agency"]
        # Resolved in 30 days: RS-PLUS, RS-EDGE, the four SLA tickets, TR0
        # and TR-; within SLA all but SL-MISS and FL-MISS.
        assert abs(k["reports.sla_met_30d"] - 6 / 8) < 1e-9, k["reports.sla_met_30d"]
        # Today: TD0 received at 00:00:00.000 (and the three flood tickets
        # of 5 h ago), TR0 resolved then; not TD- nor TR- (1 ms before).
        assert k["reports.received_today"] == 4, k["reports.received_today"]
        assert k["reports.resolved_today"] == 1, k["reports.resolved_today"]
        # Sensors: a reading exactly offline_after_s old is online, 1 ms
        # older is not, and only that one has an offline alert.
        online = {s["sensor_id"]: s["online"] for s in k["sensors.latest"]}
        assert online == {"EDGE-OFF": False, "EDGE-ON": True}, k["sensors.latest"]
        assert k["sensors.offline"] == 1 and k["sensors.by_level"]["normal"] == 1, k
        alerts = [(a["kind"], a["sensor_id"]) for a in k["alerts.active"]]
        assert alerts == [("offline", "EDGE-OFF")], k["alerts.active"]

        # The clock stood still throughout: the same instant is answered.
        assert_server_time(api, now)
    finally:
        api.close()
