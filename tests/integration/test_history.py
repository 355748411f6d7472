"""
Past values: GET /api/v1/kpis?at=<time> answers the latest record at or
before that time, within 15 minutes (docs/api.md, section 4).  No record is
an answer (kpis null), not an error: the mayor's page asks for "the same
time yesterday" on every load, and a new database has none.  And the alert
history: GET /api/v1/alerts?state=all, newest first, at most 1,000.
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
