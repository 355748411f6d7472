"""
The harness itself, without the server: the private PostgreSQL cluster and
its per-module databases, and the offline helpers (problem checks, KPI
comparison).  These run even before the server is built.
"""

import os
import stat
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

import harness
from harness import WIB, alerts_diff, compare_kpis, deep_diff


def test_cluster_settings(pg, database):
    conn = database.connect()
    try:
        with conn.cursor() as cur:
            def show(name):
                cur.execute(f"SHOW {name}")
                return cur.fetchone()[0]
            assert show("fsync") == "on"
            assert show("max_connections") == "50"
            assert show("listen_addresses") == ""
            assert show("unix_socket_directories") == str(pg.sock)
            assert show("server_encoding") == "UTF8"
            cur.execute("SELECT current_database(), current_user")
            assert cur.fetchone() == (database.name, "postgres")
    finally:
        conn.close()
    # Only a unix socket, in the cluster's own directory.
    assert (pg.sock / f".s.PGSQL.{pg.port}").exists()
    assert str(pg.bindir).startswith("/usr/lib/postgresql/")


def test_database_url_works_with_libpq(database):
    # The server gets DATABASE_URL; libpq (here through psycopg2) must accept it.
    conn = psycopg2.connect(database.url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone()[0] == database.name
    finally:
        conn.close()


def test_databases_are_isolated(pg, database, fresh_database):
    assert database.name != fresh_database.name
    c1 = database.connect()
    try:
        with c1, c1.cursor() as cur:
            cur.execute("CREATE TABLE probe (x int)")
            cur.execute("INSERT INTO probe VALUES (1)")
    finally:
        c1.close()
    c2 = fresh_database.connect()
    try:
        with c2.cursor() as cur:
            cur.execute("SELECT to_regclass('probe')")
            assert cur.fetchone()[0] is None
    finally:
        c2.close()


def test_work_dir_is_traversable(pg):
    mode = os.stat(pg.base).st_mode
    assert mode & stat.S_IXOTH and mode & stat.S_IROTH
    if os.geteuid() == 0:
        assert pg.as_root and Path(pg.data).owner() == harness.PG_USER


# -- offline helpers ---------------------------------------------------------


class FakeResp(harness.Resp):
    def __init__(self, status, ctype, body):
        import email.message
        h = email.message.Message()
        h["Content-Type"] = ctype
        super().__init__(status, h, body.encode())


def test_assert_problem_accepts_a_good_problem():
    r = FakeResp(422, "application/problem+json",
                 '{"type": "/problems/invalid_event", "title": "Invalid event", "status": 422,'
                 ' "detail": "report.status must be one of ...", "code": "invalid_event",'
                 ' "index": 2, "field": "report.status"}')
    harness.assert_problem(r, 422, "invalid_event", index=2, field="report.status")
    with pytest.raises(AssertionError):
        harness.assert_problem(r, 422, "invalid_event", index=1)
    with pytest.raises(AssertionError):
        harness.assert_problem(FakeResp(422, "application/json", r.raw.decode()), 422, "invalid_event")


def test_deep_diff_rules():
    t = datetime(2026, 11, 23, 8, 15, tzinfo=WIB)
    assert deep_diff(1.0000000001, 1.0) == []
    assert deep_diff(1.01, 1.0) != []
    assert deep_diff(0, None) != []                 # null is not zero
    assert deep_diff(None, 0) != []
    assert deep_diff(True, 1) != []
    assert deep_diff("2026-11-23T08:15:00.000+07:00", t) == []
    assert deep_diff("2026-11-23T01:15:00.000Z", t) != []            # same instant, not WIB
    assert deep_diff("2026-11-23T08:15:00.001+07:00", t) != []
    assert deep_diff({"a": 1, "b": 2}, {"a": 1}) != []               # extra key
    assert deep_diff([1, 2], [2, 1]) != []                           # order matters
    assert deep_diff(5, 5) == []
    assert deep_diff(5.0, 5) != []                   # a count is written as an integer
    assert deep_diff(5, 4) != []                     # and equal exactly, whatever its size
    assert deep_diff(100001, 100000) != []
    assert deep_diff(True, 1) != []


def test_alerts_diff_rules():
    a1 = {"id": 7, "kind": "level", "severity": "awas", "sensor_id": "S", "message": "m",
          "raised_at": "2026-11-23T08:15:00.000+07:00", "acked_by": None, "acked_at": None}
    a2 = dict(a1, id=6, kind="offline", severity=None,
              raised_at="2026-11-23T08:10:00.000+07:00")
    want = [{"kind": "offline", "severity": None, "sensor_id": "S"},
            {"kind": "level", "severity": "awas", "sensor_id": "S"}]
    assert alerts_diff([a1, a2], want) == []
    assert alerts_diff([a2, a1], want) != []                         # oldest first
    assert alerts_diff([a1], want) != []
    acked = dict(a1, acked_by="operator1", acked_at="2026-11-23T08:16:00.000+07:00")
    assert alerts_diff([acked, a2], want) != []
    want_acked = [dict(want[0]), dict(want[1], acked_by="operator1")]
    assert alerts_diff([acked, a2], want_acked) == []


def test_compare_kpis_reports_missing_keys():
    import reference
    now = datetime.now(WIB)
    exp = reference.compute_kpis([], {}, now)
    act = {k: v for k, v in exp.items()}
    act["alerts.active"] = []
    act["sensors.latest"] = []
    assert compare_kpis(act, exp) == []
    del act["calls.waiting"]
    assert compare_kpis(act, exp) == ["calls.waiting: missing"]


def test_near_midnight():
    m = datetime(2026, 11, 24, 0, 0, tzinfo=WIB)
    assert harness.near_wib_midnight(m - timedelta(seconds=5), 10)
    assert harness.near_wib_midnight(m + timedelta(seconds=5), 10)
    assert not harness.near_wib_midnight(m + timedelta(hours=3), 10)


@pytest.mark.parametrize("script, want", [
    ("trap 'exit 0' TERM; while :; do sleep 0.05; done", None),
    ("trap 'exit 23' TERM; while :; do sleep 0.05; done", "exited 23"),   # a leak report
    ("trap '' TERM; while :; do sleep 0.05; done", "did not stop"),       # killed: report lost
])
def test_a_server_exit_is_part_of_the_result(tmp_path, fresh_database, script, want, monkeypatch):
    """Server.close() passes a clean stop only: a sanitizer's exit 23, or a
    server that had to be killed, fails the test that ran it."""
    import subprocess
    srv = harness.Server(fresh_database, tmp_path, name="exit-check")
    monkeypatch.setattr(harness.Server, "STOP_TIMEOUT", 1.0)
    srv.proc = subprocess.Popen(["sh", "-c", script])
    time.sleep(0.5)          # the shell has set its trap
    if want is None:
        srv.close()
        return
    with pytest.raises(pytest.fail.Exception, match=want):
        srv.close()
