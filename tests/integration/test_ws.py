"""
The websocket protocol (docs/api.md 8, docs/spec/ws.md): subprotocol
situation.v1, a snapshot first with every KPI of the catalogue, then `kpis`
deltas with only the changed keys, `seq` rising by one per message on each
connection, changes pushed no later than 250 ms after their commit and
coalesced (never two kpis messages less than 250 ms apart; a change after a
quiet interval at once), time-driven changes pushed without any event within
a second (plus the publish interval) of becoming due, junk answered with
{"type":"error"} without disturbing other clients, and subscriptions that
narrow the stream.  Gaps between messages are measured on kernel receive
timestamps (RawScreen, test_ws_timing.py); more timing and flow control is in
test_ws_timing.py.
"""

import asyncio
import json
import re
import time
from datetime import timedelta

import pytest

from harness import (CATALOGUE, SUBPROTOCOL, WsClient, ago, ev_call, ev_reading, fmt_time, json_equal_diff,
                     parse_time, raw_ws_connect, sensor_body, utcnow, ws_first_messages)
from test_ws_timing import EVALUATE_S, LATE_S, OP_TEXT, PUBLISH_S, SANITIZED, RawScreen

# Two kpis messages may arrive this much closer than the publish interval:
# the gaps are the kernel's receive timestamps (RawScreen), so this process's
# scheduling is not in them; libuv's loop clock counts whole milliseconds, so
# the server's 250 ms can come out up to 1 ms short (249.0 ms seen), and 1 ms
# more covers its own work between the timer and the write.
GAP_ALLOW_S = 0.002
# docs/api.md 8.2: a change committed when the last message is older than
# the publish interval is sent at once, "a few milliseconds after its 202";
# measured from the 202 to the kernel's receipt of the frame.  Room for a
# loaded 2-core machine (and several times that under the sanitizers).
QUIET_S = 0.25 if SANITIZED else 0.05

GAUGE = "SMG-SRINGIN-TERBOYO"


@pytest.fixture(scope="module")
def setup(api, keys):
    r = api.put(f"/api/v1/sensors/{GAUGE}", sensor_body("Kali Sringin - Terboyo", {"siaga": 140, "awas": 190},
                                                         3600, district="Genuk"), key=keys["sensors"])
    assert r.status in (200, 201, 204), r
    r = api.post_events([ev_reading(GAUGE, 80, at=ago(minutes=3))], key=keys["sensors"])
    assert r.status == 202, r
    r = api.post_events([ev_call(at=ago(minutes=15), category="fire")], key=keys["calls"])
    assert r.status == 202, r
    time.sleep(0.5)
    return True


@pytest.fixture
def client(server, setup):
    c = WsClient(server.ws_url).start()
    yield c
    c.close()


def post_call(api, keys, **kw):
    """Posts a call received 30 s ago; returns the monotonic time of the 202."""
    r = api.post_events([ev_call(at=ago(seconds=30), **kw)], key=keys["calls"])
    assert r.status == 202, r
    return time.monotonic()


def raw_state(screen):
    """A RawScreen's state: its last snapshot with the kpis deltas after it
    merged in."""
    state = {}
    for _, m in screen.received():
        if m.get("type") == "snapshot":
            state = dict(m["kpis"])
        elif m.get("type") == "kpis":
            state.update(m["kpis"])
    return state


def raw_kpis(screen, start=0):
    """(kernel stamp, message) of a RawScreen's kpis messages with keys (an
    empty one is a heartbeat)."""
    return [(t, m) for t, m in screen.received()[start:] if m.get("type") == "kpis" and m.get("kpis")]


def test_snapshot_first(server, api, setup):
    proto, (first,) = asyncio.run(ws_first_messages(server.ws_url, 1))
    assert proto == SUBPROTOCOL
    assert first["type"] == "snapshot", first
    assert type(first["seq"]) is int
    assert first["at"].endswith("+07:00") and abs((parse_time(first["at"]) - utcnow()).total_seconds()) < 10
    missing = [k for k in CATALOGUE if k not in first["kpis"]]
    assert not missing, f"snapshot lacks {missing}"
    body = api.kpis()
    assert not json_equal_diff(first["kpis"], body["kpis"]), json_equal_diff(first["kpis"], body["kpis"])


def test_change_pushed_within_the_interval_with_only_changed_keys(api, keys, client):
    """docs/spec/ws.md: a change reaches the screens no later than 250 ms
    after it was committed (measured from its 202, which follows the
    commit), in a kpis message holding the keys that changed and only
    those."""
    before = dict(client.state)
    start = len(client.messages)
    t202 = post_call(api, keys, category="medical")
    found = client.wait_message(lambda m: m.get("type") == "kpis" and "calls.waiting" in m.get("kpis", {}),
                                3.0, start)
    assert found, "no kpis message after a new call"
    _, t_msg, msg = found
    assert t_msg - t202 <= PUBLISH_S + LATE_S, f"pushed {t_msg - t202:.3f} s after the 202"
    delta = msg["kpis"]
    assert msg["at"].endswith("+07:00")
    # every key in a delta changed, and those that must change are there
    for k, v in delta.items():
        assert k in CATALOGUE, f"{k} is not a catalogue key"
        assert json_equal_diff(before.get(k), v), f"unchanged key {k} in a delta"
    for k in ("calls.waiting", "calls.active"):
        assert k in delta, f"{k} changed but is not in the delta {sorted(delta)}"
    assert not any(k.startswith(("reports.", "sensors.")) for k in delta), sorted(delta)
    assert not client.violations, client.violations
    # the accumulated state is GET's
    assert client.wait(lambda: not json_equal_diff(client.state, api.kpis()["kpis"]), 2.0)


def test_seq_rises_by_one_per_connection(api, keys, client, server):
    other = WsClient(server.ws_url).start()
    try:
        for _ in range(5):
            post_call(api, keys)
            time.sleep(0.3)
        time.sleep(0.5)
        for c in (client, other):
            seqs = [m["seq"] for _, m in c.messages]
            assert len(seqs) >= 4, seqs
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
            assert not c.violations, c.violations
    finally:
        other.close()


def test_coalescing(api, keys, server, setup):
    """docs/api.md 8.2: a screen gets at most one kpis message per 250 ms,
    and under continuous load every change within 250 ms of its commit.
    Calls are posted back to back for 2 s: no two kpis messages reach the
    screen less than 250 ms apart (kernel receive stamps, GAP_ALLOW_S), and
    the first message showing the n-th call (calls.active) comes no later
    than 250 ms after that call's 202 (+ LATE_S)."""
    screen = RawScreen(server)
    try:
        screen.next(5)                          # the snapshot
        screen.start_reading()
        start = len(screen.received())
        base = api.kpis()["kpis"]["calls.active"]
        acks = []                               # wall-clock time of each 202
        t_begin = time.monotonic()
        while time.monotonic() - t_begin < 2.0:
            post_call(api, keys)
            acks.append(time.time())
        n = len(acks)
        assert n >= 10, "too few posts to judge coalescing"
        assert wait_for(lambda: any(m["kpis"].get("calls.active") == base + n for _, m in raw_kpis(screen, start)),
                        PUBLISH_S + LATE_S + 2), "the last call never reached the screen"
        msgs = raw_kpis(screen, start)
        gaps = [b[0] - a[0] for a, b in zip(msgs, msgs[1:])]
        close = [round(g, 4) for g in gaps if g < PUBLISH_S - GAP_ALLOW_S]
        assert not close, f"kpis messages closer than {PUBLISH_S * 1000:.0f} ms: {close} " \
                          f"({len(msgs)} messages for {n} calls)"
        late = []
        for i, t202 in enumerate(acks, 1):
            t_msg = next(t for t, m in msgs if m["kpis"].get("calls.active", 0) >= base + i)
            if t_msg - t202 > PUBLISH_S + LATE_S:
                late.append((i, round(t_msg - t202, 3)))
        assert not late, f"calls shown later than {PUBLISH_S} s after their 202: {late[:10]}"
        print(f"\n{n} calls, {len(msgs)} kpis messages, smallest gap {min(gaps) * 1000:.2f} ms")
        assert not screen.violations, screen.violations[:5]
        assert wait_for(lambda: not json_equal_diff(raw_state(screen), api.kpis()["kpis"]), 2.0), \
            json_equal_diff(raw_state(screen), api.kpis()["kpis"])
    finally:
        screen.shut()


def wait_for(predicate, timeout):
    """Polls predicate every 10 ms until it is true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.01)
    return True


def test_quiet_change_shows_at_once_busy_ones_coalesce(fresh_database, make_server):
    """docs/api.md 8.2, with a long interval (--publish-ms 1000): a change
    committed when the last message is older than the interval is sent at
    once, "a few milliseconds after its 202" (QUIET_S), not at the next
    tick; changes that follow it wait until the interval since that message
    has passed: in a burst, no two kpis messages less than 1 s apart
    (kernel receive stamps, GAP_ALLOW_S), each change shown within 1 s of
    its 202 (+ LATE_S)."""
    from harness import create_key
    srv = make_server(fresh_database, "--publish-ms", "1000")
    api = srv.http(key=create_key(fresh_database, "callcentre-112", ["call"], server=srv))
    screen = RawScreen(srv)
    try:
        screen.next(5)                          # the snapshot
        screen.start_reading()
        delays = []
        for i in range(3):
            time.sleep(1.3)              # quiet: the last message is over 1 s old
            start = len(screen.received())
            r = api.post_events([ev_call(at=ago(seconds=30))])
            assert r.status == 202, r
            acked = time.time()
            assert wait_for(lambda: raw_kpis(screen, start), 3.0), f"quiet change {i} never reached the screen"
            delays.append(round(raw_kpis(screen, start)[0][0] - acked, 4))
        assert max(delays) <= QUIET_S, f"quiet changes reached the screen {delays} s after their 202"

        # A burst: the first change at once, the rest at most one message a
        # second after it.
        time.sleep(1.3)
        start = len(screen.received())
        base = api.kpis()["kpis"]["calls.active"]
        acks = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            assert api.post_events([ev_call(at=ago(seconds=30))]).status == 202
            acks.append(time.time())
            time.sleep(0.05)
        n = len(acks)
        assert wait_for(lambda: any(m["kpis"].get("calls.active") == base + n for _, m in raw_kpis(screen, start)),
                        1.0 + LATE_S + 2), "the burst's last call never reached the screen"
        msgs = raw_kpis(screen, start)
        gaps = [round(b[0] - a[0], 4) for a, b in zip(msgs, msgs[1:])]
        assert msgs[0][0] - acks[0] <= QUIET_S, f"the burst's first change came {msgs[0][0] - acks[0]:.3f} s " \
                                                f"after its 202"
        assert gaps and min(gaps) >= 1.0 - GAP_ALLOW_S, f"burst messages {len(msgs)}, gaps {gaps}"
        late = []
        for i, t202 in enumerate(acks, 1):
            t_msg = next(t for t, m in msgs if m["kpis"].get("calls.active", 0) >= base + i)
            if t_msg - t202 > 1.0 + LATE_S:
                late.append((i, round(t_msg - t202, 3)))
        assert not late, f"burst calls shown later than 1 s after their 202: {late}"
        print(f"\nquiet delays {delays} s; burst gaps {gaps} s")
        assert not screen.violations, screen.violations[:5]
        assert wait_for(lambda: not json_equal_diff(raw_state(screen), api.kpis()["kpis"]), 2.0), \
            json_equal_diff(raw_state(screen), api.kpis()["kpis"])
    finally:
        screen.shut()
        api.close()


def test_time_driven_change_is_pushed(api, keys, client):
    """docs/api.md 8.2: time-driven KPIs are re-evaluated at least once a
    second and sent when they change, with no event needed.  A call
    received 59 min 57 s ago is waiting (docs/kpis.md: received time
    `>= now - 1 h`); 3 s later it is not: the screen must show
    calls.waiting one lower after that moment and no later than 1 s + one
    publish interval (+ LATE_S) after it, with nothing posted meanwhile."""
    start = len(client.messages)
    at = fmt_time(utcnow() - timedelta(minutes=59, seconds=57))
    r = api.post_events([ev_call(at=at)], key=keys["calls"])
    assert r.status == 202, r
    # wall clock -> monotonic: the moment the call leaves the hour
    wall0, mono0 = utcnow(), time.monotonic()
    due = mono0 + (parse_time(at) + timedelta(hours=1) - wall0).total_seconds()
    assert client.wait(lambda: client.state.get("calls.waiting") == api.kpis()["kpis"]["calls.waiting"], 1.5), \
        f"the screen shows calls.waiting {client.state.get('calls.waiting')}, GET /api/v1/kpis another"
    peak = client.state["calls.waiting"]
    rise = client.wait_message(lambda m: m.get("type") == "kpis" and m.get("kpis", {}).get("calls.waiting") == peak,
                               0, start)
    assert rise, f"no kpis message brought calls.waiting to {peak}"
    found = client.wait_message(
        lambda m: m.get("type") == "kpis" and m.get("kpis", {}).get("calls.waiting") == peak - 1,
        due - time.monotonic() + EVALUATE_S + PUBLISH_S + 3, rise[0] + 1)
    assert found, f"calls.waiting stayed {client.state.get('calls.waiting')} after the call left the hour"
    _, t_msg, msg = found
    assert msg["kpis"]["calls.waiting"] == peak - 1, f"calls.waiting went from {peak} to {msg['kpis']}"
    late = t_msg - due
    assert late >= -0.005, f"the call left calls.waiting {-late:.3f} s before its hour was over"
    assert late <= EVALUATE_S + PUBLISH_S + LATE_S, \
        f"the call left calls.waiting {late:.3f} s after its hour was over " \
        f"(bound {EVALUATE_S + PUBLISH_S + LATE_S:.2f} s)"


def test_junk_gets_an_error_and_others_are_untouched(api, keys, server, client):
    junk = WsClient(server.ws_url).start()
    try:
        junk.send("this is not json")
        assert junk.wait(lambda: junk.errors, 3.0), f"no error message; got {junk.messages[-3:]}"
        err = junk.errors[0]
        assert err["type"] == "error" and isinstance(err.get("message"), str) and err["message"]
        assert not junk.violations, junk.violations      # numbered in turn, as every message
    finally:
        junk.close()
    start = len(client.messages)
    post_call(api, keys)
    assert client.wait_message(lambda m: m.get("type") == "kpis" and m.get("kpis"), 2.0, start), \
        "the other client got nothing"
    assert not client.closed


def test_bad_messages_sent_together_each_get_their_error(server, setup):
    """docs/api.md 8.4: anything the server does not understand is answered
    with an error message (and 8.3: numbered like every message).  Five bad
    messages written at once (one TCP write, so the server reads them in
    one go) get five error replies, seq rising by one, and the connection
    stays open (5 bad messages are allowed)."""
    screen = RawScreen(server)
    try:
        assert screen.next(5)[1]["type"] == "snapshot"
        screen.sock.sendall(b"".join(screen.encode_frame(OP_TEXT, f"junk {i}".encode()) for i in range(5)))
        got = []
        deadline = time.monotonic() + 3
        while len(got) < 5 and (m := screen.next(max(0.0, deadline - time.monotonic()))) is not None:
            if m[1].get("type") == "error":
                got.append(m[1])
        assert len(got) == 5, f"5 bad messages written together got {len(got)} error replies: {got}"
        assert not screen.violations, screen.violations[:5]
        assert screen.closed_with is None and not screen.eof, screen.closed_with
    finally:
        screen.shut()


@pytest.mark.parametrize("payload", [{"type": "nonsense"}, {"type": "subscribe", "topics": "calls"},
                                     {"type": "subscribe", "topics": ["weather"]}, [1, 2, 3]])
def test_invalid_messages_get_an_error(server, setup, payload):
    c = WsClient(server.ws_url).start()
    try:
        c.send(json.dumps(payload))
        assert c.wait(lambda: c.errors, 3.0), f"no error for {payload}; got {c.messages[-3:]}"
    finally:
        c.close()


@pytest.mark.parametrize("pad", [0, 3000], ids=["small", "read-in-pieces"])
def test_subscribe_narrows_to_sensors(api, keys, server, setup, pad):
    """pad: spaces inside the message, so that the server reads it in
    several pieces (it reads 256 bytes of a screen's frame at a time)."""
    c = WsClient(server.ws_url).start()
    try:
        c.send('{"type": "subscribe",' + " " * pad + '"topics": ["sensors"]}')
        time.sleep(0.6)
        start = len(c.messages)
        post_call(api, keys)
        time.sleep(1.0)
        # (an empty `kpis` message is a heartbeat, which goes to everyone)
        leaked = [m for _, m in c.messages[start:] if m.get("type") == "kpis" and m.get("kpis")]
        assert not leaked, f"calls deltas reached a sensors-only subscriber: {leaked}"
        r = api.post_events([ev_reading(GAUGE, 95.5, at=ago(seconds=20))], key=keys["sensors"])
        assert r.status == 202, r
        found = c.wait_message(lambda m: m.get("type") == "kpis" and m.get("kpis"), 2.0, start)
        assert found, "no sensors delta for a sensors subscriber"
        for _, m in c.messages[start:]:
            if m.get("type") == "kpis":
                assert all(k.startswith("sensors.") for k in m["kpis"]), sorted(m["kpis"])
        assert "sensors.latest" in found[2]["kpis"]
        assert not c.errors and not c.violations, (c.errors, c.violations)
    finally:
        c.close()


def test_reconnect_gets_a_fresh_snapshot(api, keys, server, client):
    post_call(api, keys)
    time.sleep(0.6)
    again = WsClient(server.ws_url).start()
    try:
        assert not json_equal_diff(again.snapshot["kpis"], api.kpis()["kpis"])
        assert not json_equal_diff(again.snapshot["kpis"], client.state)
    finally:
        again.close()


def test_alert_messages_only_with_the_alerts_topic(api, keys, server, setup, client):
    narrow = WsClient(server.ws_url).start()
    try:
        narrow.send({"type": "subscribe", "topics": ["sensors"]})
        time.sleep(0.6)
        start_n, start_c = len(narrow.messages), len(client.messages)
        r = api.post_events([ev_reading(GAUGE, 150, at=ago(seconds=10))], key=keys["sensors"])   # siaga
        assert r.status == 202, r
        got = client.wait_message(lambda m: m.get("type") == "alert" and m["alert"].get("sensor_id") == GAUGE,
                                  2.0, start_c)
        assert got, "a default subscriber gets the alert message"
        assert narrow.wait_message(lambda m: m.get("type") == "kpis" and "sensors.latest" in m.get("kpis", {}),
                                   2.0, start_n)
        time.sleep(0.5)
        kinds = {m.get("type") for _, m in narrow.messages[start_n:]}
        assert "alert" not in kinds, "alert messages reached a sensors-only subscriber"
        assert not narrow.violations, narrow.violations
    finally:
        narrow.close()
        r = api.post_events([ev_reading(GAUGE, 80, at=ago(seconds=5))], key=keys["sensors"])      # clears
        assert r.status == 202, r


def test_stalled_screen_does_not_delay_the_others(api, keys, server, client):
    """A screen that never reads must not hold back the others."""
    stalled = [raw_ws_connect(server.host, server.port) for _ in range(3)]
    try:
        late = []
        for i in range(12):
            start = len(client.messages)
            t202 = post_call(api, keys, category="complaint")
            found = client.wait_message(lambda m: m.get("type") == "kpis" and "calls.active" in m.get("kpis", {}),
                                        3.0, start)
            assert found, f"change {i} never reached a healthy screen while others stall"
            if found[1] - t202 > 1.0:
                late.append(round(found[1] - t202, 3))
            time.sleep(0.2)
        assert not late, f"changes reached a healthy screen late while others stall: {late}"
        assert not client.violations, client.violations
        assert api.get("/healthz").status == 200
    finally:
        for s in stalled:
            s.close()


def test_server_stop_closes_screens_with_1001(fresh_database, make_server):
    """docs/api.md 8.5: when the server stops it closes every connection with
    code 1001, reason "server stopping", so screens know to reconnect."""
    srv = make_server(fresh_database)
    c = WsClient(srv.ws_url).start()
    try:
        assert srv.stop() is not None
        assert c.wait(lambda: c.closed, 5), "the websocket stayed open after the server stopped"
        assert c.close_code == 1001, f"close code {c.close_code} (1006: no close frame) when the server stopped"
    finally:
        c.close()


def test_fan_out_to_many_screens(fresh_database, make_server):
    """A message goes out to screens a chunk at a time (256 a loop turn),
    written at once where the socket has room.  With 600 screens and
    messages that come while a fan-out is under way (a reading that
    crosses a threshold pushes its alert and its kpis change close
    together), every screen still gets every message in order (seq without
    gaps) and ends with the API's count and the alert; /metrics counts the
    fan-outs and their time."""
    import websockets
    from harness import create_key
    screens, calls = 600, 12
    srv = make_server(fresh_database, "--max-conns-per-ip", "0", "--publish-ms", "50")
    api = srv.http(key=create_key(fresh_database, "ops-console", ["call", "sensor"], server=srv))
    r = api.put(f"/api/v1/sensors/{GAUGE}", sensor_body("Kali Sringin - Terboyo", {"siaga": 140, "awas": 190},
                                                         3600, district="Genuk"))
    assert r.status in (200, 201, 204), r

    def metric(name):
        http = srv.http()
        try:
            text = http.get("/metrics").raw.decode()
        finally:
            http.close()
        return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))

    async def screen(ready, done):
        async with websockets.connect(srv.ws_url, subprotocols=[SUBPROTOCOL], open_timeout=30,
                                      max_size=None, ping_interval=None, close_timeout=2) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot", first
            state, seqs, alerts = dict(first["kpis"]), [first["seq"]], 0
            ready.release()
            while True:
                try:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                except asyncio.TimeoutError:
                    return state, seqs, alerts
                seqs.append(m["seq"])
                if m["type"] == "kpis":
                    state.update(m["kpis"])
                elif m["type"] == "alert" and m["alert"].get("sensor_id") == GAUGE:
                    alerts += 1
                if done.is_set() and alerts and state.get("calls.received_today") == calls:
                    return state, seqs, alerts

    async def run():
        ready, done = asyncio.Semaphore(0), asyncio.Event()
        tasks = [asyncio.create_task(screen(ready, done)) for _ in range(screens)]
        for _ in range(screens):
            await asyncio.wait_for(ready.acquire(), 60)
        before = metric("kendali_ws_push_seconds_count")
        for _ in range(calls):
            r = await asyncio.to_thread(api.post_events, [ev_call(at=ago(seconds=30))])
            assert r.status == 202, r
            await asyncio.sleep(0.02)
        r = await asyncio.to_thread(api.post_events, [ev_reading(GAUGE, 250, at=ago(seconds=5))])
        assert r.status == 202, r
        done.set()
        return before, await asyncio.gather(*tasks)

    try:
        before, results = asyncio.run(asyncio.wait_for(run(), 120))
        assert api.kpis()["kpis"]["calls.received_today"] == calls
        gaps = [s for _, s, _ in results if s != list(range(s[0], s[0] + len(s)))]
        assert not gaps, f"{len(gaps)} screens saw seq gaps, e.g. {gaps[0]}"
        behind = [st.get("calls.received_today") for st, _, _ in results
                  if st.get("calls.received_today") != calls]
        assert not behind, f"{len(behind)} of {screens} screens did not reach {calls} calls: {behind[:10]}"
        no_alert = sum(1 for _, _, a in results if a != 1)
        assert not no_alert, f"{no_alert} of {screens} screens did not get the alert exactly once"
        assert metric("kendali_ws_push_seconds_count") > before
        assert metric("kendali_ws_push_seconds_sum") > 0
    finally:
        api.close()
