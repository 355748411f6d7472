"""
Past values: GET /api/v1/kpis?at=<time> answers the latest record at or
before that time, within 15 minutes (docs/api.md 5.1).  No record is
an answer (kpis null), not an error: the mayor's page asks for "the same
time yesterday" on every load, and a new database has none.  And the alert
history: GET /api/v1/alerts?state=all, newest first, at most 1,000.

How the records come to be (docs/api.md 5.1: "While it runs, the server
records the KPIs every 5 minutes (the keys whose values are not lists), and
keeps the records for 400 days"), with the server's wall clock stopped and
moved by the test (libfaketime, see test_windows.ServerClock), so that every
time is known to the microsecond:

- a record on each 5-minute mark the clock reaches, none in between, each
  holding exactly the keys of GET /api/v1/kpis whose values are not lists,
  with their values at that mark (the reference's, and GET's at that
  instant), and read back with ?at=;
- the record of a mark holds the values of that mark even when a window
  edge passed a millisecond before it;
- no record bears a time before the server started;
- a record 401 days old is removed when the next one is written, one 399
  days old is kept and still answers ?at=.

503 unavailable with Retry-After: 2 for ?at= while the database is away is
checked in test_faults.py (test_screens_told_while_database_down).
"""

import datetime
import json
import time
import urllib.parse
from datetime import timedelta

import reference
from harness import (CATALOGUE, UTC, create_key, deep_diff, ev_call, ev_report, fmt_time,
                     json_equal_diff, kendali_cli, utcnow, wait_until, ws_snapshot)
from test_windows import HOUR, MS, ServerClock

WIB = datetime.timezone(datetime.timedelta(hours=7))


def at_query(t):
    """GET /api/v1/kpis?at=<t>, to the millisecond, its offset URL-encoded."""
    return "/api/v1/kpis?at=" + urllib.parse.quote(t.isoformat(timespec="milliseconds"))


def test_past_values(fresh_database, make_server):
    """?at= answers the record at or before that time within 15 minutes, its
    time in WIB; none before it or more than 15 minutes after it; a new
    database has none; a malformed time is a 400 bad_request (docs/api.md
    5.1)."""
    srv = make_server(fresh_database)
    api = srv.http()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    # A new database: nothing recorded yet.
    r = api.get(at_query(now - datetime.timedelta(days=1)))
    assert r.status == 200 and r.json == {"at": None, "kpis": None}, r

    recorded = now - datetime.timedelta(days=1)
    kpis = {"reports.open": 41, "calls.received_today": 1234, "reports.sla_met_30d": 0.875}
    fresh_database.execute("INSERT INTO kpi_history (tenant, at, kpis) VALUES ('semarang', %s, %s)",
                           (recorded, json.dumps(kpis)))
    # At the record's time, and up to 15 minutes after it: that record, its
    # time written in WIB.
    for later in (datetime.timedelta(0), datetime.timedelta(minutes=14, seconds=59)):
        r = api.get(at_query((recorded + later).astimezone(WIB)))
        assert r.status == 200, r
        assert r.json == {"at": recorded.astimezone(WIB).isoformat(timespec="milliseconds"), "kpis": kpis}, r
    # Before it, or more than 15 minutes after it: none.
    for t in (recorded - datetime.timedelta(seconds=1), recorded + datetime.timedelta(minutes=15, seconds=1)):
        r = api.get(at_query(t))
        assert r.status == 200 and r.json == {"at": None, "kpis": None}, (t, r)

    r = api.get("/api/v1/kpis?at=yesterday")
    assert r.status == 400 and r.json["code"] == "bad_request", r


def test_alert_history_is_capped_newest_first(fresh_database, make_server):
    """GET /api/v1/alerts?state=all: the tenant's alerts, active or cleared,
    newest raised first, at most 1,000 (docs/api.md 5.3)."""
    srv = make_server(fresh_database)
    api = srv.http()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    fresh_database.execute(
        "INSERT INTO alerts (tenant, kind, sensor_id, severity, message, raised_at, cleared_at)"
        " SELECT 'semarang', 'level', 'HIST-' || i, 'siaga', 'HIST-' || i || ': SIAGA 210 cm',"
        " %s - i * interval '1 minute', %s - i * interval '1 minute' + interval '30 s'"
        " FROM generate_series(1, 1005) AS i", (now, now))
    r = api.get("/api/v1/alerts?state=all")
    assert r.status == 200, r
    alerts = r.json["alerts"]
    assert len(alerts) == 1000, len(alerts)
    # Newest first: HIST-1 (raised a minute ago) down to HIST-1000.
    assert [a["sensor_id"] for a in alerts] == [f"HIST-{i}" for i in range(1, 1001)]
    first = alerts[0]
    assert first["active"] is False and first["severity"] == "siaga" and first["kind"] == "level"
    assert first["raised_at"] == (now - datetime.timedelta(minutes=1)).astimezone(WIB).isoformat(
        timespec="milliseconds"), first
    # None of them is active, so the active list is empty.
    assert api.get("/api/v1/alerts").json["alerts"] == []


# --------------------------------------------------------------------------
# How the records come to be: the server's clock set by the test
# --------------------------------------------------------------------------

MARK = timedelta(minutes=5)
# How long a step of the clock may take to be seen (a tick comes every
# 250 ms; the rest is slack for a loaded machine and the sanitizers).  Not a
# documented bound: docs/api.md does not say how soon after the mark a
# record is written, only its time.
SEEN_WITHIN_S = 10.0


def last_mark(t):
    """The 5-minute mark at or before t (marks fall on whole 5 minutes of
    UTC, and so of WIB)."""
    t = t.astimezone(UTC)
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


def records(db):
    """kpi_history as [(at, kpis)], oldest first (kpis read from its JSON
    text, so that numbers stay as written)."""
    return [(at, json.loads(text)) for at, text in db.rows(
        "SELECT at, kpis::text FROM kpi_history WHERE tenant = 'semarang' ORDER BY at")]


def record_times(db):
    return [at for at, _ in records(db)]


def wait_record(db, at):
    """The record at `at`, once the server has written it."""
    deadline = time.monotonic() + SEEN_WITHIN_S
    while True:
        found = [k for t, k in records(db) if t == at]
        if found:
            return found[0]
        assert time.monotonic() < deadline, (
            f"no KPI record at {fmt_time(at)} within {SEEN_WITHIN_S} s of the server's clock "
            f"reaching it; records: {[fmt_time(t) for t in record_times(db)]}")
        time.sleep(0.05)


def published_at(srv):
    """The time of the server's last published state: the `at` of the
    snapshot a new screen receives."""
    return ws_snapshot(srv.ws_url)["at"]


def step(clock, srv, t):
    """Moves the server's clock to t (at least 1 s after the instant before)
    and waits until the server has evaluated its state there: the
    time-driven KPIs are evaluated (and published) once the clock has moved
    a second, by the same periodic tick that writes the records."""
    clock.set(t)
    deadline = time.monotonic() + SEEN_WITHIN_S
    while published_at(srv) != fmt_time(t):
        assert time.monotonic() < deadline, \
            f"the server published nothing at {fmt_time(t)} within {SEEN_WITHIN_S} s"
        time.sleep(0.05)


def not_lists(kpis):
    return {k: v for k, v in kpis.items() if not isinstance(v, list)}


def expected_record(events, at):
    """The record of the mark `at`: the catalogue's keys whose values are
    not lists, with the reference's values at that instant."""
    want = not_lists(reference.compute_kpis(events, {}, at))
    assert set(want) == set(CATALOGUE) - {"reports.by_agency", "sensors.latest", "alerts.active"}
    return want


def check_record(api, events, at, rec):
    """The record at `at` holds exactly the keys of GET /api/v1/kpis whose
    values are not lists, with the values the reference gives at `at` and
    GET /api/v1/kpis answers at that instant (the server's clock stands
    at it), and ?at= answers it."""
    diffs = deep_diff(rec, expected_record(events, at), "record")
    assert not diffs, f"the record at {fmt_time(at)} differs from the reference at that " \
                      f"time:\n  " + "\n  ".join(diffs)
    body = api.kpis()
    assert body["at"] == fmt_time(at), body["at"]
    diffs = json_equal_diff(rec, not_lists(body["kpis"]), "record")
    assert not diffs, f"the record at {fmt_time(at)} differs from GET /api/v1/kpis then:\n  " \
                      + "\n  ".join(diffs)
    r = api.get(at_query(at))
    assert r.status == 200 and set(r.json) == {"at", "kpis"}, r
    assert r.json["at"] == fmt_time(at), r.json["at"]
    assert not json_equal_diff(r.json["kpis"], rec), (r.json, rec)


def start_at(db, make_server, tmp_path, t):
    """A server on `db` whose clock stands at t: (its clock, the server)."""
    kendali_cli(db, "migrate")
    clock = ServerClock(tmp_path, t)
    srv = make_server(db, env=clock.env())
    return clock, srv


def post(api, key, events):
    r = api.post_events(events, key=key)
    assert r.status == 202 and r.json == {"accepted": len(events), "duplicates": 0}, r


def test_a_record_on_every_five_minute_mark(fresh_database, make_server, tmp_path):
    """A server started on a 5-minute mark B0, its clock then moved through
    the next two marks (1 s after each mark, half-way, 1 ms before the next,
    on it): records at B0, B0 + 5 min and B0 + 10 min and at no other time,
    each with exactly the keys whose values are not lists, valued at its
    mark; read back with ?at= (docs/api.md 5.1)."""
    db = fresh_database
    b0 = last_mark(utcnow())
    b1, b2 = b0 + MARK, b0 + 2 * MARK
    clock, srv = start_at(db, make_server, tmp_path, b0)
    key = create_key(db, "ops-console", ["call", "report"], server=srv)
    api = srv.http()
    try:
        assert api.kpis()["at"] == fmt_time(b0), "the server's clock is not the one set"
        # Started on the mark: its record, of a city with nothing yet.
        check_record(api, [], b0, wait_record(db, b0))

        # Events whose windows close between the marks, so that every
        # record differs from the one before (and none closes in the
        # second before a mark).
        events = [
            ev_call(call_id="H-ANS", status="received", category="medical",
                    at=fmt_time(b0 - timedelta(minutes=58)), eid="H-ANS/1"),
            # answered 57 min before B0: in the last hour until B0 + 3 min
            ev_call(call_id="H-ANS", status="answered", category=None,
                    at=fmt_time(b0 - timedelta(minutes=57)), eid="H-ANS/2"),
            ev_call(call_id="H-ABN", status="received", category="fire",
                    at=fmt_time(b0 - timedelta(minutes=53)), eid="H-ABN/1"),
            # abandoned 52 min before B0: in the last hour until B0 + 8 min
            ev_call(call_id="H-ABN", status="abandoned", category=None,
                    at=fmt_time(b0 - timedelta(minutes=52)), eid="H-ABN/2"),
            # 2 min ahead of the server's clock: waiting from now on
            ev_call(call_id="H-WAIT", status="received", category="police",
                    at=fmt_time(b0 + timedelta(minutes=2)), eid="H-WAIT/1"),
            # open, received 72 h - 4 min before B0: overdue from B0 + 4 min
            ev_report(ticket="H-T", status="received", category="road",
                      at=fmt_time(b0 - timedelta(hours=72) + timedelta(minutes=4)), eid="H-T/1",
                      district="Genuk"),
        ]
        post(api, key, events)
        # Published with the events before the clock moves on.
        want = not_lists(reference.compute_kpis(events, {}, b0))
        wait_until(lambda: not json_equal_diff(not_lists(ws_snapshot(srv.ws_url)["kpis"]), want),
                   timeout=SEEN_WITHIN_S, what="the events published")

        for mark in (b1, b2):
            before = mark - MARK
            for t in (before + timedelta(seconds=1), before + timedelta(seconds=150), mark - MS):
                step(clock, srv, t)
            clock.set(mark)
            check_record(api, events, mark, wait_record(db, mark))
        # The records differ from each other: each was taken at its mark.
        recs = dict(records(db))
        assert recs[b1]["calls.abandoned_1h"] == 1 and recs[b2]["calls.abandoned_1h"] == 0, recs
        assert recs[b1]["reports.overdue"] == 1 and recs[b1]["calls.waiting"] == 1, recs[b1]

        # None in between: exactly the three marks (the records are written
        # in order on one connection, so a stray one would be in by now).
        assert record_times(db) == [b0, b1, b2], [fmt_time(t) for t in record_times(db)]
        # ?at= between two marks: the earlier one; the last one until 15
        # minutes after it, to the millisecond.
        r = api.get(at_query(b2 - MS))
        assert r.status == 200 and r.json["at"] == fmt_time(b1), r
        r = api.get(at_query(b2 + timedelta(minutes=15) - MS))
        assert r.status == 200 and r.json["at"] == fmt_time(b2), r
        r = api.get(at_query(b2 + timedelta(minutes=15) + MS))
        assert r.status == 200 and r.json == {"at": None, "kpis": None}, r
    finally:
        api.close()


def test_a_record_holds_the_values_of_its_mark(fresh_database, make_server, tmp_path):
    """The record of the mark B1 holds the KPIs at B1, also when the server's
    last look before the mark (1 ms before it) saw a call answered 1 h + 1 ms
    before B1 still inside the last hour: at B1 it is not (docs/api.md 5.1,
    docs/kpis.md "in the last D")."""
    db = fresh_database
    b0 = last_mark(utcnow())
    b1 = b0 + MARK
    clock, srv = start_at(db, make_server, tmp_path, b0)
    key = create_key(db, "ops-console", ["call"], server=srv)
    api = srv.http()
    try:
        answered = b1 - HOUR - MS
        events = [ev_call(call_id="EDGE", status="received", category="medical",
                          at=fmt_time(answered - timedelta(seconds=30)), eid="EDGE/1"),
                  ev_call(call_id="EDGE", status="answered", category=None,
                          at=fmt_time(answered), eid="EDGE/2")]
        post(api, key, events)
        step(clock, srv, b1 - MS)
        k = api.kpis()["kpis"]
        assert k["calls.answered_1h"] == 1, "1 ms before the mark the call is in the last hour"
        clock.set(b1)
        rec = wait_record(db, b1)
        assert api.kpis()["kpis"]["calls.answered_1h"] == 0, "at the mark it is not"
        check_record(api, events, b1, rec)
    finally:
        api.close()


def test_no_record_before_the_server_started(fresh_database, make_server, tmp_path):
    """A server started 2 min after a mark B0 was not running at B0: no
    record bears a time before its start, and ?at= a minute after B0 (before
    the start) answers none (docs/api.md 5.1: "While it runs, the server
    records ...", and no record "when the server was not running then")."""
    db = fresh_database
    b0 = last_mark(utcnow())
    started = b0 + timedelta(minutes=2)
    clock, srv = start_at(db, make_server, tmp_path, started)
    api = srv.http()
    try:
        # A second on, the server has evaluated its state: the periodic
        # tick that writes the records has run.
        step(clock, srv, started + timedelta(seconds=1))
        early = [fmt_time(t) for t in record_times(db) if t < started]
        assert not early, f"records before the server started at {fmt_time(started)}: {early}"
        r = api.get(at_query(b0 + timedelta(minutes=1)))
        assert r.status == 200 and r.json == {"at": None, "kpis": None}, r
    finally:
        api.close()


def test_records_are_kept_400_days(fresh_database, make_server, tmp_path):
    """Records 401 days old are removed, 399 days old kept and answered by
    ?at=, once the server has written its next record (docs/api.md 5.1:
    "keeps the records for 400 days")."""
    db = fresh_database
    b0 = last_mark(utcnow())
    b1 = b0 + MARK
    clock, srv = start_at(db, make_server, tmp_path, b0)
    api = srv.http()
    try:
        wait_record(db, b0)
        old = {401: b1 - timedelta(days=401), 399: b1 - timedelta(days=399)}
        for days, at in old.items():
            db.execute("INSERT INTO kpi_history (tenant, at, kpis) VALUES ('semarang', %s, %s)",
                       (at, json.dumps({"reports.open": days})))
        clock.set(b1)
        wait_record(db, b1)
        assert record_times(db) == [old[399], b0, b1], [fmt_time(t) for t in record_times(db)]
        r = api.get(at_query(old[399] + timedelta(minutes=1)))
        assert r.status == 200 and r.json == {"at": fmt_time(old[399]),
                                              "kpis": {"reports.open": 399}}, r
        r = api.get(at_query(old[401] + timedelta(minutes=1)))
        assert r.status == 200 and r.json == {"at": None, "kpis": None}, r
    finally:
        api.close()
