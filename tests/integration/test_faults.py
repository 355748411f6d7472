"""
Faults under load: while clients post continuously, PostgreSQL's connections
are killed (pg_terminate_backend), PostgreSQL is restarted, and the server is
killed with SIGKILL and started again.  At the end every event that got a
202 is in the database exactly once, every other answer was a 503 with
Retry-After (or a connection cut by the kill), the server resumed by itself
after each database fault, and the KPIs on the websocket equal an
independent computation from what the database holds.

This module runs its own PostgreSQL cluster, since it stops it.
"""

import copy
import http.client
import random
import select
import socket
import threading
import time
import urllib.parse

import pytest

import reference
from harness import (Http, PgCluster, Server, WsClient, ago, assert_problem, create_key, kendali_cli,
                     near_wib_midnight, parse_time, utcnow)

PHASE_S = 1.5          # load between faults


@pytest.fixture(scope="module")
def own_pg(work_dir):
    cluster = PgCluster(work_dir / "pg-faults").init().start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def db(own_pg):
    return own_pg.create_database()


POSTERS = {"call": "callcentre-112", "report": "lapor-hendi"}


@pytest.fixture(scope="module")
def keys(db, kendali_bin):
    kendali_cli(db, "migrate")
    return {etype: create_key(db, poster, [etype]) for etype, poster in POSTERS.items()}


@pytest.fixture(scope="module")
def srv(db, keys, work_dir):
    s = Server(db, work_dir / "logs", ["--rate-limit", "0"], name=f"faults-{db.name}")
    s.start()
    yield s
    s.close()


class Poster(threading.Thread):
    """Posts batches of 1..20 events of one type as fast as answers come,
    over one keep-alive connection (a new one after a cut), and records
    what each answer said."""

    def __init__(self, port, etype, key, tag):
        super().__init__(daemon=True)
        self.port, self.etype, self.key, self.tag = port, etype, key, tag
        self.stop = threading.Event()
        self.poster = POSTERS[etype]
        self.sent = {}              # event id -> the event as posted
        self.acked = []             # event ids that got a 202
        self.refused = []           # event ids answered 503
        self.cut = []               # event ids whose request got no answer
        self.unsure = []            # the ids of each request answered 503 or cut
        self.bad = []               # anything else: (status, body)
        self.retry_after_missing = 0
        self.acked_at = []          # monotonic time of each 202
        self.n = 0
        self.rng = random.Random(tag)

    def event(self):
        self.n += 1
        eid = f"{self.tag}-{self.n}"
        if self.etype == "call":
            cid = f"{self.tag}-c{self.rng.randrange(400)}"
            status = self.rng.choice(["received", "answered", "closed", "abandoned"])
            body = {"call_id": cid, "status": status, "category": self.rng.choice(["medical", "fire", "info"])}
        else:
            tid = f"{self.tag}-t{self.rng.randrange(400)}"
            status = self.rng.choice(["received", "dispatched", "in_progress", "resolved"])
            body = {"ticket": tid, "status": status, "category": self.rng.choice(["road", "flood", "waste"])}
            if status != "received":
                body["agency"] = self.rng.choice(["DPU", "BPBD", "DLH"])
        at = ago(seconds=self.rng.randrange(1, 3 * 3600))
        return {"id": eid, "type": self.etype, "occurred_at": at, self.etype: body}

    def run(self):
        http = Http("127.0.0.1", self.port, key=self.key, timeout=15)
        while not self.stop.is_set():
            events = [self.event() for _ in range(self.rng.randrange(1, 21))]
            ids = [e["id"] for e in events]
            for e in events:
                self.sent[e["id"]] = e
            try:
                r = http.post_events(events)
            except OSError:
                # The server was killed, or refused while down: unknown
                # outcome, like any client whose connection is cut.
                self.cut.extend(ids)
                self.unsure.append(ids)
                http.close()
                time.sleep(0.05)
                continue
            if r.status == 202:
                self.acked.extend(ids)
                self.acked_at.append(time.monotonic())
            elif r.status == 503:
                self.refused.extend(ids)
                self.unsure.append(ids)
                if not r.headers.get("Retry-After"):
                    self.retry_after_missing += 1
                time.sleep(0.05)
            else:
                self.bad.append((r.status, r.raw[:300]))
        http.close()

    def acked_between(self, t0, t1):
        return sum(1 for t in self.acked_at if t0 <= t < t1)


class NetworkPath:
    """A TCP path from the server to PostgreSQL's unix socket that the test
    can cut the way a network fails: freeze() stops carrying bytes both
    ways on every connection, old and new, without closing anything (no
    reset, no FIN: packets simply go nowhere); thaw() carries them again
    (connections frozen meanwhile are dropped, as their peers have long
    given up on them)."""

    def __init__(self, unix_path):
        self.unix_path = str(unix_path)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.closing = threading.Event()
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.unix_path)
            pair = [client, upstream, self.frozen.is_set()]
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self._relay, args=(pair,), daemon=True).start()

    def _relay(self, pair):
        a, b, _ = pair
        try:
            while not self.closing.is_set():
                if self.frozen.is_set() or pair[2]:
                    if not self.frozen.is_set():
                        break           # born or caught frozen: dropped on thaw
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([a, b], [], [], 0.1)
                if self.frozen.is_set():
                    pair[2] = True
                    continue
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            pass
        finally:
            a.close()
            b.close()

    def freeze(self):
        self.frozen.set()

    def thaw(self):
        self.frozen.clear()

    def close(self):
        self.closing.set()
        self.listener.close()


def stop_posters(posters):
    for p in posters:
        p.stop.set()
    for p in posters:
        p.join(30)


def check_posters(posters, db):
    """Every answer was a 202 or a 503 with Retry-After, and every
    acknowledged event is stored exactly once.  Returns what is stored."""
    for p in posters:
        assert not p.bad, f"{p.etype}: answers other than 202/503: {p.bad[:5]}"
        assert p.retry_after_missing == 0, f"{p.etype}: 503 without Retry-After"
    stored = stored_ids(db, posters)
    acked = {(p.poster, i) for p in posters for i in p.acked}
    sent = {(p.poster, i) for p in posters for i in p.sent}
    lost = sorted(acked - stored)
    assert not lost, f"{len(lost)} acknowledged events are not in the database: {lost[:10]}"
    phantom = sorted(stored - sent)
    assert not phantom, f"{len(phantom)} stored events nobody posted: {phantom[:10]}"
    # A request answered 503 or cut off had an unknown outcome, but a
    # request is one transaction: all of its events are stored, or none.
    for p in posters:
        for ids in p.unsure:
            kept = sum((p.poster, i) in stored for i in ids)
            assert kept in (0, len(ids)), \
                f"{p.etype}: {kept} of the {len(ids)} events of one unanswered request stored"
    return stored


def stored_ids(db, posters):
    """The (poster, event id) of every stored event these posters' ids look
    like ("<tag>-<n>"; other tests of the module use other tags): the
    primary key, so each is there once or not at all."""
    with db.connect() as c, c.cursor() as cur:
        cur.execute("SELECT poster, event_id FROM events WHERE event_id LIKE ANY(%s)",
                    ([f"{p.tag}-%" for p in posters],))
        return set(cur.fetchall())


def posted_and_stored(posters, stored):
    """The events as the clients posted them, of those the database holds:
    every acknowledged one, and those of unanswered requests that made it."""
    return [e for p in posters for i, e in p.sent.items() if (p.poster, i) in stored]


def terminate_server_connections(own_pg, db):
    with own_pg.connect() as c:
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = %s AND pid <> pg_backend_pid()", (db.name,))
            return cur.fetchone()[0]


def readyz(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/readyz")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except OSError as e:
        return repr(e)


def test_faults_under_load(srv, keys, db, own_pg):
    posters = [Poster(srv.port, "call", keys["call"], "fc"),
               Poster(srv.port, "report", keys["report"], "fr")]
    for p in posters:
        p.start()
    marks = {}
    try:
        time.sleep(PHASE_S)

        # 1. PostgreSQL kills the server's connections.
        assert terminate_server_connections(own_pg, db) >= 1
        marks["terminated"] = time.monotonic()
        srv.wait_ready(timeout=30)
        time.sleep(PHASE_S)

        # 2. PostgreSQL stops and comes back.
        marks["pg_stop"] = time.monotonic()
        own_pg.stop(mode="fast")
        # Both connections see the socket close at once.
        deadline = time.monotonic() + 5
        while readyz(srv.port) != 503:
            assert time.monotonic() < deadline, "/readyz still ready 5 s after PostgreSQL stopped"
            time.sleep(0.05)
        time.sleep(0.5)
        own_pg.start()
        srv.wait_ready(timeout=30)
        marks["pg_back"] = time.monotonic()
        time.sleep(PHASE_S)

        # 3. The server is killed under load and started again.
        marks["kill"] = time.monotonic()
        srv.kill()
        srv.start()
        marks["restarted"] = time.monotonic()
        time.sleep(PHASE_S)
    finally:
        stop_posters(posters)
    end = time.monotonic()

    stored = check_posters(posters, db)
    for p in posters:
        # The server resumed by itself after each database fault.
        assert p.acked_between(marks["terminated"], marks["pg_stop"]) > 0, \
            f"{p.etype}: nothing acknowledged after the connections were killed"
        assert p.acked_between(marks["pg_back"], marks["kill"]) > 0, \
            f"{p.etype}: nothing acknowledged after PostgreSQL came back"
        assert p.acked_between(marks["restarted"], end) > 0, \
            f"{p.etype}: nothing acknowledged after the server restarted"

    acked = [i for p in posters for i in p.acked]
    print(f"\nfaults under load: {len(acked)} events acknowledged, "
          f"{sum(len(p.refused) for p in posters)} refused (503), "
          f"{sum(len(p.cut) for p in posters)} cut, {len(stored)} stored")
    assert len(acked) > 100, f"too little load to mean anything: {len(acked)} acknowledged"
    # A request answered 503 stored nothing, except one whose commit was
    # under way when its connection died (the outcome a client must retry):
    # at most one request of each poster per database fault (two faults).
    for p in posters:
        refused = set(p.refused)
        made_it = [ids for ids in p.unsure
                   if ids[0] in refused and (p.poster, ids[0]) in stored]
        assert len(made_it) <= 2, \
            f"{p.etype}: {len(made_it)} requests answered 503 were stored: {made_it[:3]}"

    # The KPIs on a new screen equal an independent computation from what
    # the clients posted (not from what the database holds: that would
    # compare the server with its own storage).
    events = posted_and_stored(posters, stored)
    ws = WsClient(srv.ws_url)
    ws.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            now = utcnow()
            if near_wib_midnight(now, 10):
                time.sleep(1)
                continue
            expected = reference.compute_kpis(events, {}, now)
            try:
                ws.wait_state(expected, timeout=2.0)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
        assert not ws.violations, ws.violations[:10]
    finally:
        ws.close()


def test_screens_told_while_database_down(srv, own_pg):
    """While PostgreSQL is away the screens are told their numbers are only
    the last known ones (a status message at once, whatever the
    subscription, and the snapshot of a screen that joins meanwhile), and
    told again when it is back."""
    srv.wait_ready(timeout=30)
    ws = WsClient(srv.ws_url).start()
    quiet = WsClient(srv.ws_url).start()
    late = None
    try:
        quiet.send({"type": "subscribe", "topics": []})
        assert ws.snapshot["database"] == "up" and "down_since" not in ws.snapshot
        stopped = utcnow()
        own_pg.stop(mode="fast")
        try:
            for c in (ws, quiet):
                assert c.wait(lambda c=c: c.database == "down", 10), \
                    f"no status down within 10 s: {c.messages[-3:]}"
            down = ws.statuses[-1]
            assert down["type"] == "status" and down["database"] == "down"
            since = parse_time(down["down_since"])
            assert since.utcoffset().total_seconds() == 7 * 3600, down
            assert abs((since - stopped).total_seconds()) < 5, (down, stopped)
            assert parse_time(down["at"]) >= since
            assert quiet.statuses[-1]["down_since"] == down["down_since"]
            # A screen that joins now is told in its first message.
            late = WsClient(srv.ws_url).start()
            assert late.snapshot["database"] == "down", late.snapshot
            assert late.snapshot["down_since"] == down["down_since"]
            # What needs the database answers 503 with Retry-After: 2,
            # and what is held in memory goes on (docs/api.md).
            api = srv.http()
            try:
                for method, path, body in (
                        ("POST", "/api/v1/session", {"username": "petugas", "password": "x" * 12}),
                        ("GET", "/api/v1/kpis?at=" + urllib.parse.quote(utcnow().isoformat()), None),
                        ("GET", "/api/v1/alerts?state=all", None),
                        ("GET", "/api/v1/series?name=calls.received&window=1h&step=5m", None)):
                    r = api.request(method, path, body, fresh=True)
                    assert_problem(r, 503, "unavailable")
                    assert r.headers.get("Retry-After") == "2", (path, r.headers)
                assert api.get("/api/v1/kpis", fresh=True).status == 200
                assert api.get("/api/v1/alerts", fresh=True).status == 200
            finally:
                api.close()
        finally:
            own_pg.start()
        srv.wait_ready(timeout=30)
        for c in (ws, quiet, late):
            assert c.wait(lambda c=c: c.database == "up", 10), \
                f"no status up within 10 s of the database's return: {c.messages[-3:]}"
            up = c.statuses[-1]
            assert up["database"] == "up" and "down_since" not in up, up
        again = WsClient(srv.ws_url).start()
        assert again.snapshot["database"] == "up" and "down_since" not in again.snapshot
        again.close()
        for c in (ws, quiet, late):
            assert not c.violations, c.violations[:5]
    finally:
        for c in (ws, quiet, late):
            if c is not None:
                c.close()


def test_network_cut_under_load(own_pg, db, keys, work_dir):
    """The network between the server and PostgreSQL goes silent under load
    (nothing closed, nothing answered) and comes back: the statement in
    flight and the connection attempts meanwhile give up after --db-timeout,
    posts are refused with 503, /readyz and the screens say so, and once the
    path is back the server resumes by itself and loses nothing."""
    path = NetworkPath(own_pg.sock / f".s.PGSQL.{own_pg.port}")
    via = copy.copy(db)
    via.url = f"postgresql://postgres@127.0.0.1:{path.port}/{db.name}"
    s = Server(via, work_dir / "logs", ["--rate-limit", "0", "--db-timeout", "2"],
               name=f"cut-{db.name}")
    try:
        s.start()
        network_cut(s, path, db, keys)
    finally:
        s.close()
        path.close()


def network_cut(s, path, db, keys):
    posters = [Poster(s.port, "call", keys["call"], "nc"),
               Poster(s.port, "report", keys["report"], "nr")]
    ws = None
    try:
        ws = WsClient(s.ws_url).start()
        for p in posters:
            p.start()
        time.sleep(PHASE_S)
        cut = time.monotonic()
        path.freeze()
        # The writer's statement or next attempt times out after 2 s.
        deadline = time.monotonic() + 15
        while readyz(s.port) != 503:
            assert time.monotonic() < deadline, "/readyz still ready 15 s after the network went silent"
            time.sleep(0.2)
        noticed = time.monotonic() - cut
        # The statement under way gives up after --db-timeout (2 s); the
        # rest is /readyz polled every 0.2 s, and slack for the sanitizers.
        assert noticed <= 2 + 2, f"the cut was noticed after {noticed:.1f} s, not within --db-timeout"
        assert ws.wait(lambda: ws.database == "down", 10), "screens not told the data is stale"
        time.sleep(1.0)
        refused_during = sum(len(p.refused) for p in posters)
        path.thaw()
        back = time.monotonic()
        s.wait_ready(timeout=30)
        ready_after = time.monotonic() - back
        assert ws.wait(lambda: ws.database == "up", 10), "screens not told the data is current again"
        time.sleep(PHASE_S)
    finally:
        stop_posters(posters)
        if ws is not None:
            ws.close()
        path.thaw()
    print(f"\nnetwork cut: noticed after {noticed:.1f} s, ready {ready_after:.1f} s after "
          f"the path came back; {sum(len(p.acked) for p in posters)} acknowledged, "
          f"{refused_during} refused while cut")
    check_posters(posters, db)
    for p in posters:
        assert p.acked_between(back, time.monotonic()) > 0, \
            f"{p.etype}: nothing acknowledged after the network came back"
    assert refused_during > 0, "nothing was refused while the network was cut"


def test_a_blip_shows_no_band(srv, db, own_pg):
    """A database gone for less than a second (its connections killed and
    made again at once) tells no screen that the data is stale: the band
    is for outages of a second or more (docs/operations.md)."""
    srv.wait_ready(timeout=30)
    ws = WsClient(srv.ws_url).start()
    try:
        assert ws.snapshot["database"] == "up"
        start = len(ws.messages)
        assert terminate_server_connections(own_pg, db) >= 1
        srv.wait_ready(timeout=5)
        time.sleep(2.0)      # past the 1 s after which an outage is told
        told = [m for _, m in ws.messages[start:] if m.get("type") == "status"]
        assert told == [], f"a blip was told to the screens: {told}"
        assert ws.database == "up" and not ws.violations, ws.violations[:5]
    finally:
        ws.close()


def test_sigterm_under_load_loses_nothing(db, keys, work_dir):
    """SIGTERM while clients post: the server stops taking work, answers
    what it accepted, exits 0, and every event it answered 202 is stored
    (docs/operations.md, Stopping)."""
    s = Server(db, work_dir / "logs", ["--rate-limit", "0"], name=f"sigterm-{db.name}")
    s.start()
    posters = [Poster(s.port, "call", keys["call"], "tc"),
               Poster(s.port, "report", keys["report"], "tr")]
    try:
        for p in posters:
            p.start()
        time.sleep(PHASE_S)
        rc = s.stop(timeout=s.STOP_TIMEOUT)
        assert rc == 0, f"the server exited {rc} on SIGTERM under load"
        time.sleep(0.5)
    finally:
        stop_posters(posters)
        s.close()
    acked = sum(len(p.acked) for p in posters)
    assert acked > 50, f"too little load to mean anything: {acked} acknowledged"
    check_posters(posters, db)
