"""
Past values: GET /api/v1/kpis?at=<time> answers the latest record at or
before that time, within 15 minutes (docs/api.md, section 4).  No record is
an answer (kpis null), not an error: the mayor's page asks for "the same
time yesterday" on every load, and a new database has none.
"""

import datetime
import json
import urllib.parse

WIB = datetime.timezone(datetime.timedelta(hours=7))


def at_query(t):
    return "/api/v1/kpis?at=" + urllib.parse.quote(t.isoformat(timespec="seconds"))


def test_past_values(fresh_database, make_server):
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
