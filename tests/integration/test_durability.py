"""
"A 202 means committed: a crash of the server or of PostgreSQL right after it
loses nothing", and "503 ... the database cannot take writes now; nothing of
the request stored": also for a logout (the session is kept), and for the
write queue's bound (200 000 events waiting to be written).

This module runs its own PostgreSQL cluster, since it crashes and stops it.
"""

import http.client
import re
import socket
import time

import pytest

from harness import (PgCluster, Resp, Server, ago, assert_problem, create_key, create_user,
                     ev_call, kendali_cli, login)


@pytest.fixture(scope="module")
def own_pg(work_dir):
    cluster = PgCluster(work_dir / "pg-durability").init().start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def db(own_pg):
    return own_pg.create_database()


@pytest.fixture(scope="module")
def key(db, kendali_bin):
    kendali_cli(db, "migrate")
    return create_key(db, "callcentre-112", ["call"])


@pytest.fixture(scope="module")
def srv(db, key, work_dir):
    s = Server(db, work_dir / "logs", name=f"durability-{db.name}")
    s.start()
    yield s
    s.close()


def batch(n):
    return [ev_call(at=ago(minutes=10)) for _ in range(n)]


def test_server_killed_right_after_202(srv, key, db):
    n0 = db.count_events()
    api = srv.http(key=key)
    # 200 new calls received 10 minutes ago: each is waiting and active
    # (docs/kpis.md), so both counts rise by exactly 200.
    before = api.kpis()["kpis"]
    r = api.post_events(batch(200))
    srv.kill()                      # SIGKILL the moment the 202 is read
    api.close()
    assert r.status == 202 and r.json["accepted"] == 200, r
    assert db.count_events() == n0 + 200
    srv.start()
    api = srv.http(key=key)
    try:
        after = api.kpis()["kpis"]
        for k in ("calls.waiting", "calls.active"):
            assert after[k] == before[k] + 200, (k, before[k], after[k])
    finally:
        api.close()


def test_postgres_crash_right_after_202(srv, key, db, own_pg):
    n0 = db.count_events()
    api = srv.http(key=key)
    events = batch(100)
    r = api.post_events(events)
    own_pg.stop(mode="immediate")   # no checkpoint, no flush: recovery from WAL only
    api.close()
    assert r.status == 202 and r.json["accepted"] == 100, r
    own_pg.start()
    assert db.count_events() == n0 + 100, "committed events were lost in a PostgreSQL crash"
    srv.wait_ready(timeout=30)      # the server reconnects by itself
    api = srv.http(key=key)
    try:
        r = api.post_events(events)
        assert r.status == 202 and r.json == {"accepted": 0, "duplicates": 100}, r
    finally:
        api.close()


def test_database_down_gives_503_and_stores_nothing(srv, key, db, own_pg):
    n0 = db.count_events()
    events = batch(5)
    own_pg.stop(mode="fast")
    api = srv.http(key=key)
    try:
        r = api.post_events(events, fresh=True)
        assert_problem(r, 503, "unavailable")
        assert r.headers.get("Retry-After") == "2", "a 503 carries Retry-After: 2 (docs/api.md)"
        ready = api.get("/readyz", fresh=True)
        assert ready.status != 200, "not ready while the database is down"
        assert api.get("/healthz", fresh=True).status == 200, "the process is up"
    finally:
        own_pg.start()
    srv.wait_ready(timeout=30)
    assert db.count_events() == n0, "a 503 request stored something"
    try:
        r = api.post_events(events)
        assert r.status == 202 and (r.json["accepted"], r.json["duplicates"]) == (5, 0), r
        assert db.count_events() == n0 + 5
    finally:
        api.close()


def test_logout_while_database_down_gives_503_and_keeps_the_session(srv, db, own_pg):
    """docs/api.md 2.3 (Log out: "503 unavailable with Retry-After: 2 (the
    session could not be ended now; the cookie is kept)") and
    docs/operations.md ("people stay identified while the database is away
    ..., but logins and logouts answer 503 until it is back"): with
    PostgreSQL stopped, a logout with the session's cookie gets 503
    `unavailable`, `Retry-After: 2` and no Set-Cookie, and the session still
    identifies its user; once the database is back the same session still
    works, and a logout then gets 200 {"logged_out":true} with the cookie
    cleared (`kendali_session=; Path=/; Max-Age=0; HttpOnly;
    SameSite=Strict`), after which the session is refused (401)."""
    name = "durability-op"
    password = create_user(db, name, "operator")
    cookie, r = login(srv, name, password)
    identity = r.json
    assert identity["kind"] == "user" and identity["name"] == name, identity
    by_cookie = srv.http(cookie=cookie)
    # As a bearer, a session no longer good is a 401 (docs/api.md 2.2), not
    # anonymous access, which this server's --anonymous-loopback would give
    # a cookie no longer good.
    by_bearer = srv.http(key=cookie)
    try:
        own_pg.stop(mode="fast")
        try:
            r = by_cookie.post("/api/v1/logout", {}, key=None, fresh=True)
            assert_problem(r, 503, "unavailable")
            assert r.headers.get_all("Retry-After") == ["2"], \
                f"a logout refused for the database carries Retry-After: 2: {r.headers.get_all('Retry-After')}"
            assert r.headers.get_all("Set-Cookie") is None, \
                f"the cookie is kept on a 503 logout: {r.headers.get_all('Set-Cookie')}"
            who = by_bearer.get("/api/v1/session", fresh=True)
            assert who.status == 200 and who.json == identity, \
                f"the session still identifies its user while the database is down: {who}"
        finally:
            own_pg.start()
        srv.wait_ready(timeout=30)
        who = by_bearer.get("/api/v1/session", fresh=True)
        assert who.status == 200 and who.json == identity, f"a refused logout ended the session: {who}"
        r = by_cookie.post("/api/v1/logout", {}, key=None, fresh=True)
        assert r.status == 200 and r.json == {"logged_out": True}, r
        assert r.headers.get_all("Set-Cookie") == \
            ["kendali_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"], r.headers.get_all("Set-Cookie")
        assert_problem(by_bearer.get("/api/v1/session", fresh=True), 401, "unauthorized")
    finally:
        by_cookie.close()
        by_bearer.close()


# --------------------------------------------------------------------------
# The write queue's bound
# --------------------------------------------------------------------------

QUEUE_MAX = 200_000          # docs/api.md section 10: events waiting to be written (all posters)
BATCH = 1000                 # docs/api.md section 10: events per request (the default)


def compact_events(tag, n, at):
    """A JSON array of n new calls with ids `q-<tag>-<i>`, and the ids."""
    ids = [f"q-{tag}-{i}" for i in range(n)]
    body = ",".join('{"id":"%s","type":"call","occurred_at":"%s","call":{"call_id":"%s",'
                    '"status":"received","category":"info"}}' % (i, at, i) for i in ids)
    return f"[{body}]".encode(), ids


def send_post(port, key, body):
    """Sends POST /api/v1/events whole on a new connection, without reading
    the answer; returns the socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    return sock


def answer(sock, timeout):
    """The response on a socket of send_post (waiting at most timeout s)."""
    sock.settimeout(timeout)
    r = http.client.HTTPResponse(sock, method="POST")
    r.begin()
    return Resp(r.status, r.headers, r.read())


def pending_events(srv):
    """kendali_store_pending_events of GET /metrics: events waiting to be
    written (docs/api.md section 6)."""
    c = srv.http()
    try:
        r = c.get("/metrics", fresh=True)
    finally:
        c.close()
    assert r.status == 200, r
    m = re.search(r"^kendali_store_pending_events (\S+)$", r.raw.decode(), re.M)
    assert m, "no kendali_store_pending_events in /metrics"
    return float(m.group(1))


def wait_pending(srv, n, timeout):
    deadline = time.monotonic() + timeout
    while True:
        got = pending_events(srv)
        if got == n:
            return
        assert time.monotonic() < deadline, f"events waiting to be written: {got}, expected {n}"
        time.sleep(0.1)


def test_write_queue_bound_refuses_whole_requests(own_pg, make_server):
    """docs/api.md section 10 ("events waiting to be written (all posters):
    200 000; beyond, 503") and 3.7 (503 `unavailable`, the server's write
    queue is full, nothing stored, `Retry-After: 2`); docs/operations.md
    ("PostgreSQL is slow: requests queue behind the writer ... with 200 000
    events waiting, new requests are refused").  The events table is locked
    (ACCESS EXCLUSIVE) from another session, so the writer's first group
    (one event) waits on the lock and everything posted after it waits to
    be written: 199 batches of 1000 and one of 500 (199 500 waiting, as
    kendali_store_pending_events says); then a batch of 1000, which would go
    over, gets 503 at once, whole; one of 500, which fills the queue to
    exactly 200 000, is taken; one more event gets 503.  After the lock is
    released every request taken gets 202 with all its events accepted,
    the stored events are exactly those (each once), nothing of the refused
    requests is stored, and the refused batch re-posted gets 202.

    --db-timeout and --request-timeout are raised so that neither the
    waiting statement nor the waiting requests are given up while the
    queue fills (slower under the sanitizers)."""
    db2 = own_pg.create_database()
    srv = make_server(db2, "--db-timeout", "900", "--request-timeout", "900")
    key = create_key(db2, "queue-filler", ["call"], server=srv)
    at = ago(minutes=10)
    held = []                    # (socket, ids) of requests taken, not yet answered
    locker = db2.connect()
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        body, ids = compact_events("first", 1, at)
        held.append((send_post(srv.port, key, body), ids))
        deadline = time.monotonic() + 30
        while not db2.scalar("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                             " WHERE c.relname = 'events' AND NOT l.granted"):
            assert time.monotonic() < deadline, "the writer's statement never waited on the lock"
            time.sleep(0.05)
        assert pending_events(srv) == 0, "the first group is being written, not waiting"

        for b in range(199):
            body, ids = compact_events(f"fill{b}", BATCH, at)
            held.append((send_post(srv.port, key, body), ids))
        body, ids = compact_events("fill-half", 500, at)
        held.append((send_post(srv.port, key, body), ids))
        wait_pending(srv, QUEUE_MAX - 500, timeout=120)

        over_body, over_ids = compact_events("over", BATCH, at)
        r = answer(send_post(srv.port, key, over_body), timeout=30)
        assert_problem(r, 503, "unavailable")
        assert r.headers.get_all("Retry-After") == ["2"], r.headers.get_all("Retry-After")
        assert pending_events(srv) == QUEUE_MAX - 500, "a refused request changed the queue"

        body, ids = compact_events("fits", 500, at)
        held.append((send_post(srv.port, key, body), ids))
        wait_pending(srv, QUEUE_MAX, timeout=60)

        one_body, one_ids = compact_events("one-more", 1, at)
        r = answer(send_post(srv.port, key, one_body), timeout=30)
        assert_problem(r, 503, "unavailable")
        assert r.headers.get_all("Retry-After") == ["2"], r.headers.get_all("Retry-After")
        assert pending_events(srv) == QUEUE_MAX
    finally:
        locker.rollback()
        locker.close()

    bad = []
    try:
        for sock, ids in held:
            r = answer(sock, timeout=300)
            if r.status != 202 or r.json != {"accepted": len(ids), "duplicates": 0}:
                bad.append(f"{ids[0]}…: {r!r}")
    finally:
        for sock, _ in held:
            sock.close()
    assert not bad, f"{len(bad)} of {len(held)} requests taken into the queue:\n" + "\n".join(bad[:10])
    taken = {i for _, ids in held for i in ids}
    assert len(taken) == 1 + QUEUE_MAX
    stored = [row[0] for row in db2.rows("SELECT event_id FROM events")]
    assert len(stored) == len(set(stored)) == len(taken) and set(stored) == taken, \
        (f"{len(stored)} rows ({len(set(stored))} distinct) for {len(taken)} events answered 202; "
         f"missing {sorted(taken - set(stored))[:5]}, unexpected {sorted(set(stored) - taken)[:5]}")
    wait_pending(srv, 0, timeout=10)

    c = srv.http(key=key)
    try:
        r = c.post("/api/v1/events", over_body, content_type="application/json", fresh=True)
    finally:
        c.close()
    assert r.status == 202 and r.json == {"accepted": BATCH, "duplicates": 0}, r
    assert db2.scalar("SELECT count(*) FROM events WHERE event_id = ANY(%s)", (over_ids + one_ids,)) == BATCH
