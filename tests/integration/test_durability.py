"""
"A 202 means committed: a crash of the server or of PostgreSQL right after it
loses nothing", and "503 ... the database cannot take writes now; nothing of
the request stored".

This module runs its own PostgreSQL cluster, since it crashes and stops it.
"""

import pytest

from harness import PgCluster, Server, ago, assert_problem, create_key, ev_call, kendali_cli


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
