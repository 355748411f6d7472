"""
The clock: the server keeps counting right across midnight WIB, and clients
whose clocks are off are judged by the server's clock alone.

- Across midnight: a server whose clock (libfaketime, LD_PRELOAD) starts 15 s
  before 00:00 WIB is given calls and reports of the evening, one of them a
  minute in the future.  Before midnight the day's KPIs count them; at
  midnight, with no event at all, the server pushes the new day's KPIs
  (today's counts drop yesterday's events, the 1 h and 24 h windows keep
  them); events of the new day then count for it.  At every step the
  websocket and GET /api/v1/kpis equal the reference at the server's time.
- Skewed clocks under load: posters whose clocks are 2 h late to 1 h ahead
  post batches at once; occurred_at up to 5 min in the server's future is
  accepted, beyond it the whole batch is refused with a 422 naming
  occurred_at and nothing of it is stored.  At the end every accepted event
  is stored exactly once, nothing else is, and the websocket's KPIs equal
  the reference over the stored events.
"""

import glob
import os
import random
import re
import threading
import time
from datetime import timedelta

import pytest

import reference
from harness import (UTC, Http, Server, WsClient, assert_problem, compare_kpis, create_key, fmt_time,
                     kendali_cli, near_wib_midnight, parse_time, utcnow, wib_midnight)

LEAD_S = 15             # the fake clock starts this long before midnight
RESET_WITHIN_S = 6      # time-driven KPIs are pushed at least every 5 s


# --------------------------------------------------------------------------
# A server at a chosen time
# --------------------------------------------------------------------------


def faketime_library():
    """libfaketime's preload library (Debian's package libfaketime); the
    test fails, never skips, without it."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
                   + glob.glob("/usr/lib/faketime/libfaketime.so.1")
                   + glob.glob("/usr/local/lib/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is not installed (no /usr/lib/*/faketime/libfaketime.so.1): "
                    "run scripts/deps.sh, which installs the Debian package libfaketime",
                    pytrace=False)
    return found[0]


def faketime_env(start):
    """Environment that starts the server's clock at `start` (whole
    seconds, then ticking).  Only the wall clock is faked: libuv's timers
    run on the monotonic one.  An AddressSanitizer build must be told that
    libfaketime comes first on purpose."""
    preload = [faketime_library()]
    if os.environ.get("LD_PRELOAD"):
        preload.append(os.environ["LD_PRELOAD"])
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {
        "LD_PRELOAD": ":".join(preload),
        # "@" takes the process's local time; TZ makes that UTC.
        "TZ": "UTC",
        "FAKETIME": "@" + start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
    }


class FakeClock:
    """The server's time as the test sees it: the real clock shifted by the
    difference between the fake start and the moment the server was
    launched."""

    def __init__(self, fake_start, real_start):
        self.offset = fake_start - real_start

    def now(self):
        return utcnow() + self.offset


LOG_PROBLEM = re.compile(r"^\S+Z error |\] E: |AddressSanitizer|LeakSanitizer|runtime error:")


def log_problems(srv):
    """Error lines of the server's stderr (its log, libwebsockets' errors,
    sanitizer reports) since its last start."""
    text = srv.stderr_path.read_text(errors="replace")
    text = text[text.rfind("===== start #"):]
    return [ln for ln in text.splitlines() if LOG_PROBLEM.search(ln)]


def stop_cleanly(srv):
    rc = srv.stop()
    problems = log_problems(srv)
    assert rc == 0, f"the server exited {rc} when stopped; stderr:\n{srv.stderr_tail(60)}"
    assert not problems, "errors in the server's log:\n" + "\n".join(problems[:20])


# --------------------------------------------------------------------------
# Across midnight WIB
# --------------------------------------------------------------------------


def call(eid, call_id, status, at, category=None):
    body = {"call_id": call_id, "status": status}
    if category:
        body["category"] = category
    return {"id": eid, "type": "call", "occurred_at": fmt_time(at), "call": body}


def report(eid, ticket, status, at, category=None, agency=None, district=None):
    body = {"ticket": ticket, "status": status}
    if category:
        body["category"] = category
    if agency:
        body["agency"] = agency
    e = {"id": eid, "type": "report", "occurred_at": fmt_time(at), "report": body}
    if district:
        e["district"] = district
    return e


def post(api, key, events):
    r = api.post_events(events, key=key)
    assert r.status == 202, r
    assert r.json == {"accepted": len(events), "duplicates": 0}, r
    return r


def test_day_rolls_over_at_midnight_wib(fresh_database, work_dir, kendali_bin):
    db = fresh_database
    kendali_cli(db, "migrate")
    key_calls = create_key(db, "callcentre-112", ["call"])
    key_reports = create_key(db, "lapor-hendi", ["report"])

    # The nearest 00:00 WIB (past or future): the server's clock stays
    # within 12 h of the database's.
    real = utcnow()
    midnight = wib_midnight(real)
    if (real - midnight) > timedelta(hours=12):
        midnight += timedelta(days=1)
    fake_start = midnight - timedelta(seconds=LEAD_S)
    srv = Server(db, work_dir / "logs", name=f"midnight-{db.name}", env=faketime_env(fake_start))
    launched = utcnow()
    clock = FakeClock(fake_start, launched)
    srv.start()
    api = srv.http()
    ws = None
    try:
        ws = WsClient(srv.ws_url).start()
        at = parse_time(ws.snapshot["at"])
        lag = (clock.now() - at).total_seconds()
        assert -1.0 < lag < 3.0, (
            f"the server's clock is not the fake one (snapshot at {ws.snapshot['at']}, expected about "
            f"{fmt_time(clock.now())}): is libfaketime preloaded?")

        m = midnight
        evening = [
            # call A: answered after 30 s, well inside the hour
            call("a1", "A", "received", m - timedelta(minutes=50), "medical"),
            call("a2", "A", "answered", m - timedelta(minutes=49, seconds=30)),
            # call B: abandoned
            call("b1", "B", "received", m - timedelta(minutes=20), "fire"),
            call("b2", "B", "abandoned", m - timedelta(minutes=19)),
            # call C: the last second of the day, still waiting
            call("c1", "C", "received", m - timedelta(seconds=1), "police"),
            # call F: a minute into tomorrow, from a clock a little ahead
            # (up to 5 min ahead is accepted)
            call("f1", "F", "received", m + timedelta(minutes=1), "info"),
        ]
        tickets = [
            # T1: received two hours ago, resolved half a minute before midnight
            report("t1a", "T1", "received", m - timedelta(hours=2), "road", district="Tembalang"),
            report("t1b", "T1", "dispatched", m - timedelta(minutes=90), agency="DPU"),
            report("t1c", "T1", "resolved", m - timedelta(seconds=30)),
            # T2: received 20 s before midnight, still open and unassigned
            report("t2a", "T2", "received", m - timedelta(seconds=20), "flood", district="Genuk"),
            # T3: received three days and an hour ago, open: overdue
            report("t3a", "T3", "received", m - timedelta(days=3, hours=1), "drainage",
                   district="Genuk"),
        ]
        post(api, key_calls, evening)
        post(api, key_reports, tickets)
        events = evening + tickets

        def matches(now_ok):
            """True when the websocket's state is the reference's at the
            server's current time, and that time passes now_ok."""
            now = clock.now()
            return now_ok(now) and not compare_kpis(ws.state, reference.compute_kpis(events, {}, now))

        def diffs_now():
            return compare_kpis(ws.state, reference.compute_kpis(events, {}, clock.now()))

        # 1. Before midnight: the evening counts for today.
        before = lambda now: now < m - timedelta(seconds=0.5)  # noqa: E731
        assert ws.wait(lambda: matches(before), max(0.1, (m - clock.now()).total_seconds() - 1)), (
            f"before midnight (server time {fmt_time(clock.now())}) the websocket differs from the "
            f"reference:\n  " + "\n  ".join(diffs_now()))
        assert ws.state["calls.received_today"] == 3, ws.state
        assert ws.state["calls.by_category_today"] == {"medical": 1, "fire": 1, "police": 1}, ws.state
        assert ws.state["reports.received_today"] == 2, ws.state
        assert ws.state["reports.resolved_today"] == 1, ws.state
        body = api.kpis()
        at = parse_time(body["at"])
        assert at < m, f"GET /api/v1/kpis answered at {body['at']}, expected before midnight"
        got = compare_kpis(body["kpis"], reference.compute_kpis(events, {}, at))
        assert not got, "GET /api/v1/kpis before midnight:\n  " + "\n  ".join(got)

        # 2. Midnight passes with no event: the new day is pushed.
        start = len(ws.messages)
        after = lambda now: now >= m  # noqa: E731
        wait_s = (m - clock.now()).total_seconds() + RESET_WITHIN_S
        assert ws.wait(lambda: matches(after), wait_s), (
            f"{RESET_WITHIN_S} s after midnight (server time {fmt_time(clock.now())}) the websocket "
            f"still differs from the reference: the new day was not pushed without an event\n  "
            + "\n  ".join(diffs_now()))
        assert ws.state["calls.received_today"] == 1, ws.state        # F alone
        assert ws.state["calls.by_category_today"] == {"info": 1}, ws.state
        assert ws.state["reports.received_today"] == 0, ws.state
        assert ws.state["reports.resolved_today"] == 0, ws.state
        # the windows still hold yesterday's calls
        assert ws.state["calls.answered_1h"] == 1 and ws.state["calls.abandoned_1h"] == 1, ws.state
        assert ws.state["calls.waiting"] == 2 and ws.state["calls.active"] == 3, ws.state
        assert ws.state["reports.open"] == 2 and ws.state["reports.overdue"] == 1, ws.state
        reset = [(t, msg) for t, msg in ws.messages[start:]
                 if msg.get("type") == "kpis" and "calls.received_today" in msg.get("kpis", {})]
        assert reset, f"no kpis message carried the new day: {ws.messages[start:]}"
        reset_at = parse_time(reset[0][1]["at"])
        assert m <= reset_at <= m + timedelta(seconds=RESET_WITHIN_S), \
            f"the new day was pushed with at {reset[0][1]['at']}, midnight is {fmt_time(m)}"
        assert all(msg.get("type") != "snapshot" for _, msg in ws.messages[start:]), \
            "the new day came as a snapshot, not as a kpis delta"
        print(f"\nmidnight: the new day was pushed at {reset[0][1]['at']}")
        body = api.kpis()
        at = parse_time(body["at"])
        assert at >= m, f"GET /api/v1/kpis answered at {body['at']}, expected after midnight"
        got = compare_kpis(body["kpis"], reference.compute_kpis(events, {}, at))
        assert not got, "GET /api/v1/kpis after midnight:\n  " + "\n  ".join(got)

        # 3. The new day's events count for it.
        while clock.now() < m + timedelta(seconds=2):
            time.sleep(0.1)
        now = clock.now()
        morning_calls = [
            call("c2", "C", "answered", now),                             # yesterday's call
            call("g1", "G", "received", now - timedelta(seconds=1), "medical"),
            call("g2", "G", "answered", now),
        ]
        morning_tickets = [
            report("t2b", "T2", "dispatched", now, agency="BPBD"),       # yesterday's ticket
            report("t4a", "T4", "received", now - timedelta(seconds=1), "waste", district="Candisari"),
            report("t4b", "T4", "resolved", now),
        ]
        post(api, key_calls, morning_calls)
        post(api, key_reports, morning_tickets)
        events = events + morning_calls + morning_tickets
        assert ws.wait(lambda: matches(after), 3.0), (
            "after the morning's events the websocket differs from the reference:\n  "
            + "\n  ".join(diffs_now()))
        assert ws.state["calls.received_today"] == 2, ws.state       # F and G
        assert ws.state["calls.by_category_today"] == {"info": 1, "medical": 1}, ws.state
        assert ws.state["reports.received_today"] == 1, ws.state     # T4
        assert ws.state["reports.resolved_today"] == 1, ws.state     # T4 (T1 was yesterday)
        assert ws.state["calls.answered_1h"] == 3, ws.state
        body = api.kpis()
        got = compare_kpis(body["kpis"], reference.compute_kpis(events, {}, parse_time(body["at"])))
        assert not got, "GET /api/v1/kpis in the morning:\n  " + "\n  ".join(got)
        assert not ws.violations, ws.violations[:10]
        assert not ws.closed, f"the websocket closed (code {ws.close_code})"
    finally:
        if ws is not None:
            ws.close()
        api.close()
        try:
            stop_cleanly(srv)
        finally:
            srv.close()


# --------------------------------------------------------------------------
# Skewed client clocks under load
# --------------------------------------------------------------------------

LOAD_S = 4.0
# Each poster's clock, off from the server's by this much.
ACCEPTED_SKEWS = [timedelta(hours=-2), timedelta(minutes=-3), timedelta(minutes=2),
                  timedelta(minutes=4)]
REFUSED_SKEWS = [timedelta(minutes=6), timedelta(hours=1)]
JITTER_S = 30           # an event occurred up to this long before its poster's "now"


class SkewedPoster(threading.Thread):
    """Posts batches of 1..15 calls and reports stamped by a clock that is
    `skew` off, as fast as answers come.  A poster with a good clock puts,
    in one batch out of four, one event from a clock 6 min ahead at a random
    place: the whole batch must be refused."""

    def __init__(self, port, key, tag, skew):
        super().__init__(daemon=True)
        self.port, self.key, self.tag, self.skew = port, key, tag, skew
        self.stop = threading.Event()
        self.rng = random.Random(tag)
        self.n = 0
        self.acked = []             # events of 202'd batches
        self.refused = []           # (events, index of the bad one, response, body)
        self.bad = []               # anything unexpected

    def at(self, skew):
        return fmt_time(utcnow() + skew - timedelta(seconds=self.rng.uniform(0, JITTER_S)))

    def event(self, skew):
        self.n += 1
        eid = f"{self.tag}-{self.n}"
        if self.rng.random() < 0.5:
            status = self.rng.choice(["received", "answered", "closed", "abandoned"])
            body = {"call_id": f"{self.tag}-c{self.rng.randrange(60)}", "status": status,
                    "category": self.rng.choice(["medical", "fire", "info", "police"])}
            return {"id": eid, "type": "call", "occurred_at": self.at(skew), "call": body}
        status = self.rng.choice(["received", "dispatched", "in_progress", "resolved", "rejected"])
        body = {"ticket": f"{self.tag}-t{self.rng.randrange(60)}", "status": status,
                "category": self.rng.choice(["road", "flood", "waste", "drainage"])}
        if status != "received":
            body["agency"] = self.rng.choice(["DPU", "BPBD", "DLH"])
        e = {"id": eid, "type": "report", "occurred_at": self.at(skew), "report": body}
        if self.rng.random() < 0.5:
            e["district"] = self.rng.choice(["Genuk", "Tembalang", "Pedurungan"])
        return e

    def batch(self):
        events = [self.event(self.skew) for _ in range(self.rng.randrange(1, 16))]
        bad = None
        if self.skew in REFUSED_SKEWS:
            bad = 0
        elif self.rng.random() < 0.25:
            bad = self.rng.randrange(len(events) + 1)
            events.insert(bad, self.event(timedelta(minutes=6)))
        return events, bad

    def run(self):
        http = Http("127.0.0.1", self.port, key=self.key, timeout=15)
        try:
            while not self.stop.is_set():
                events, bad = self.batch()
                r = http.post_events(events)
                if r.status == 202 and bad is None:
                    self.acked.extend(events)
                elif r.status == 422 and bad is not None:
                    self.refused.append((events, bad, r))
                else:
                    self.bad.append((r.status, bad, r.raw[:300]))
        except Exception as e:  # recorded for the test to see
            self.bad.append(("exception", None, repr(e)))
        finally:
            http.close()


def test_skewed_client_clocks_under_load(fresh_database, make_server):
    db = fresh_database
    kendali_cli(db, "migrate")
    key = create_key(db, "ops-console", ["call", "report"])
    srv = make_server(db, "--rate-limit", "0")
    while near_wib_midnight(utcnow(), 30):
        time.sleep(1)      # today's counts are compared at the end
    ws = WsClient(srv.ws_url).start()
    skews = ACCEPTED_SKEWS + REFUSED_SKEWS
    posters = [SkewedPoster(srv.port, key, f"sk{i}", skew) for i, skew in enumerate(skews)]
    try:
        for p in posters:
            p.start()
        time.sleep(LOAD_S)
    finally:
        for p in posters:
            p.stop.set()
        for p in posters:
            p.join(30)
    try:
        for p in posters:
            assert not p.is_alive(), f"poster {p.tag} still running"
            assert not p.bad, f"poster {p.tag} ({p.skew}): unexpected answers {p.bad[:3]}"
            if p.skew in ACCEPTED_SKEWS:
                assert p.acked, f"poster {p.tag} ({p.skew}): nothing accepted"
            else:
                assert not p.acked and p.refused, f"poster {p.tag} ({p.skew})"
        mixed = [x for p in posters if p.skew in ACCEPTED_SKEWS for x in p.refused]
        assert mixed, "no batch mixed a bad event among good ones"
        for events, bad, r in [x for p in posters for x in p.refused]:
            assert_problem(r, 422, "invalid_event", index=bad,
                           field="occurred_at")

        acked = [e for p in posters for e in p.acked]
        refused = [e for p in posters for events, _, _ in p.refused for e in events]
        with db.connect() as c, c.cursor() as cur:
            cur.execute("SELECT event_id, count(*) FROM events GROUP BY event_id")
            stored = dict(cur.fetchall())
        print(f"\nskewed clocks: {len(acked)} events accepted, {len(refused)} in "
              f"{sum(len(p.refused) for p in posters)} refused batches "
              f"({len(mixed)} mixed), {len(stored)} stored")
        assert len(acked) > 200, f"too little load to mean anything: {len(acked)} accepted"
        lost = [e["id"] for e in acked if e["id"] not in stored]
        assert not lost, f"{len(lost)} accepted events are not stored: {lost[:10]}"
        twice = {i: n for i, n in stored.items() if n != 1}
        assert not twice, f"events stored more than once: {list(twice.items())[:10]}"
        leaked = [e["id"] for e in refused if e["id"] in stored]
        assert not leaked, f"{len(leaked)} events of refused batches were stored: {leaked[:10]}"
        assert len(stored) == len(acked), "stored events that no 202 accounted for"

        def ok():
            now = utcnow()
            return not compare_kpis(ws.state, reference.compute_kpis(acked, {}, now))
        if not ws.wait(ok, 5.0):
            diffs = compare_kpis(ws.state, reference.compute_kpis(acked, {}, utcnow()))
            raise AssertionError("websocket KPIs differ from the reference over the stored "
                                 "events:\n  " + "\n  ".join(diffs))
        assert not ws.violations, ws.violations[:10]
        problems = log_problems(srv)
        assert not problems, "errors in the server's log:\n" + "\n".join(problems[:20])
    finally:
        ws.close()
