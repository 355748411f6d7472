"""
Unit tests of reference.py: hand-made scenarios whose numbers were worked
out by hand from docs/kpis.md (the working is in the comments).  They need
neither PostgreSQL nor the server.

All scenarios use now = 2026-11-23 10:00 WIB, so:
  now - 1 h  = 2026-11-23 09:00 WIB      today = [11-23 00:00, 11-24 00:00) WIB
  now - 24 h = 2026-11-22 10:00 WIB      now - 72 h = 2026-11-20 10:00 WIB
  now - 30 d = 2026-10-24 10:00 WIB
"""

from datetime import datetime, timedelta

import pytest

import reference as ref
from reference import WIB

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=WIB)

_n = [0]


def _id():
    _n[0] += 1
    return f"ev-{_n[0]}"


def T(text):
    """'11-23 09:30:15.250' (WIB) -> RFC 3339; a full RFC 3339 text is kept."""
    if "T" in text:
        return text
    md, hms = text.split(" ")
    return f"2026-{md}T{hms}+07:00"


def call(t, call_id, status, category=None):
    c = {"call_id": call_id, "status": status}
    if category is not None:
        c["category"] = category
    return {"id": _id(), "type": "call", "occurred_at": T(t), "call": c}


def rep(t, ticket, status, category=None, agency=None, district=None):
    r = {"ticket": ticket, "status": status}
    if category is not None:
        r["category"] = category
    if agency is not None:
        r["agency"] = agency
    e = {"id": _id(), "type": "report", "occurred_at": T(t), "report": r}
    if district is not None:
        e["district"] = district
    return e


def reading(t, sensor_id, value):
    return {"id": _id(), "type": "sensor", "occurred_at": T(t),
            "sensor": {"sensor_id": sensor_id, "value": value}}


def at(text):
    return ref.parse_time(T(text))


def subset(kpis, prefix):
    return {k: v for k, v in kpis.items() if k.startswith(prefix)}


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------


def test_median_odd_even_empty():
    assert ref.median([]) is None
    assert ref.median([5]) == 5.0
    assert ref.median([3, 1, 2]) == 2.0
    assert ref.median([4, 1, 3, 2]) == 2.5          # (2 + 3) / 2
    assert ref.median([1.5, 78, 10, 24]) == 17.0    # (10 + 24) / 2


def test_ratio_over_nothing_is_none():
    assert ref.ratio(0, 0) is None
    assert ref.ratio(0, 3) == 0.0
    assert ref.ratio(1, 4) == 0.25


def test_level_ladders():
    three = {"siaga": 300, "awas": 400}                     # Semarang: Normal / Siaga / Awas
    four = {"waspada": 150, "siaga": 220, "awas": 300}
    assert ref.level_of(299.99, three) == "normal"          # no waspada on this gauge
    assert ref.level_of(300, three) == "siaga"              # a threshold is reached at equality
    assert ref.level_of(400, three) == "awas"
    assert ref.level_of(149.5, four) == "normal"
    assert ref.level_of(150, four) == "waspada"
    assert ref.level_of(219.999, four) == "waspada"
    assert ref.level_of(220, four) == "siaga"
    assert ref.level_of(10_000, four) == "awas"
    assert ref.level_of(1000, {"waspada": 150}) == "waspada"
    assert ref.level_of(-5, {}) == "normal"


def test_today_bounds_are_wib():
    start, end = ref.today_bounds(NOW)
    assert start == datetime(2026, 11, 23, 0, 0, tzinfo=WIB)
    assert end == datetime(2026, 11, 24, 0, 0, tzinfo=WIB)
    # 23:30 UTC on the 22nd is already 06:30 on the 23rd in WIB
    assert ref.is_today(ref.parse_time("2026-11-22T23:30:00Z"), NOW)
    assert not ref.is_today(ref.parse_time("2026-11-22T16:59:59.999Z"), NOW)
    assert ref.is_today(ref.parse_time("2026-11-22T17:00:00Z"), NOW)
    assert not ref.is_today(ref.parse_time("2026-11-23T17:00:00Z"), NOW)


def test_distinct_events_first_copy_wins():
    a1 = {"id": "x", "v": 1}
    a2 = {"id": "x", "v": 2}
    b = {"id": "x", "v": 3}
    got = ref.distinct_events([("p1", a1), ("p1", a2), ("p2", b)])
    assert got == [a1, b]    # same id from another poster is another event


# --------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------


def test_calls_windows_and_service_level():
    events = [
        # c1: wait 15 s, closed                         -> answered_1h, SL yes
        call("11-23 09:30:00", "c1", "received", "medical"),
        call("11-23 09:30:15", "c1", "answered"),
        call("11-23 09:40:00", "c1", "closed"),
        # c2: received exactly now-1h, wait exactly 20 s -> answered_1h, SL yes (<= 20)
        call("11-23 09:00:00", "c2", "received", "fire"),
        call("11-23 09:00:20", "c2", "answered"),
        # c3: answered 1 ms before now-1h               -> not answered_1h; active
        call("11-23 08:59:30", "c3", "received", "fire"),
        call("11-23 08:59:59.999", "c3", "answered"),
        # c4: abandoned                                 -> abandoned_1h
        call("11-23 09:50:00", "c4", "received", "police"),
        call("11-23 09:51:00", "c4", "abandoned"),
        # c5: waiting
        call("11-23 09:55:00", "c5", "received", "info"),
        # c6: wait 20.001 s                             -> answered_1h, SL no
        call("11-23 09:58:00", "c6", "received", "medical"),
        call("11-23 09:58:20.001", "c6", "answered"),
        # c7: 3 minutes in the future: inside every window, waiting
        call("11-23 10:03:00", "c7", "received", "other"),
        # c8: received exactly now-1h (written in UTC) -> waiting (>=)
        call("2026-11-23T02:00:00Z", "c8", "received", "disaster"),
        # c9: received 1 ms before now-1h              -> not waiting, active
        call("11-23 08:59:59.999", "c9", "received", "disaster"),
    ]
    k = ref.compute_kpis(events, {}, NOW)
    assert subset(k, "calls.") == {
        "calls.received_today": 9,
        "calls.waiting": 3,                     # c5, c7, c8
        "calls.active": 7,                      # c2 c3 c5 c6 c7 c8 c9 (c1 closed, c4 abandoned)
        "calls.answered_1h": 3,                 # c1 c2 c6
        "calls.abandoned_1h": 1,                # c4
        "calls.abandon_rate_1h": 0.25,          # 1 / (3 + 1)
        "calls.asa_1h_s": pytest.approx(55.001 / 3, rel=1e-12),   # (15 + 20 + 20.001) / 3
        "calls.service_level_1h": 0.5,          # (c1, c2) / 4
        "calls.by_category_today": {"medical": 2, "fire": 2, "police": 1, "info": 1,
                                    "other": 1, "disaster": 2},
    }


def test_calls_midnight_wib_and_empty_denominators():
    events = [
        # m1: received 1 ms before midnight WIB, answered after it -> yesterday's call
        call("2026-11-22T23:59:59.999+07:00", "m1", "received", "fire"),
        call("2026-11-23T00:00:10+07:00", "m1", "answered"),
        # m2 and m3: received exactly at midnight WIB, written in UTC and in -05:00
        call("2026-11-22T17:00:00Z", "m2", "received", "medical"),
        call("2026-11-22T12:00:00-05:00", "m3", "received", "info"),
    ]
    k = ref.compute_kpis(events, {}, NOW)
    assert subset(k, "calls.") == {
        "calls.received_today": 2,              # m2, m3
        "calls.waiting": 0,                     # received long before now-1h
        "calls.active": 3,                      # m1 answered, m2/m3 received, all within 24 h
        "calls.answered_1h": 0,
        "calls.abandoned_1h": 0,
        "calls.abandon_rate_1h": None,          # 0 / 0
        "calls.asa_1h_s": None,                 # mean over nothing
        "calls.service_level_1h": None,
        "calls.by_category_today": {"medical": 1, "info": 1},
    }


def test_calls_today_ends_at_next_midnight():
    now = datetime(2026, 11, 23, 23, 58, tzinfo=WIB)
    events = [
        call("2026-11-24T00:00:00+07:00", "n1", "received", "fire"),   # 2 min ahead: tomorrow
        call("2026-11-23T23:57:00+07:00", "n2", "received", "fire"),
    ]
    k = ref.compute_kpis(events, {}, now)
    assert k["calls.received_today"] == 1
    assert k["calls.by_category_today"] == {"fire": 1}
    assert k["calls.waiting"] == 2


def test_calls_ties_and_latest_category():
    events = [
        # t1: two received at the same time (fire, medical) and answered at that time:
        #     status answered (rank), category medical (greatest value), wait 0
        call("11-23 09:40:00", "t1", "received", "fire"),
        call("11-23 09:40:00", "t1", "received", "medical"),
        call("11-23 09:40:00", "t1", "answered"),
        # t2: no received event: received time = earliest event (answered) -> wait 0, no category
        call("11-23 09:45:00", "t2", "answered"),
        call("11-23 09:46:00", "t2", "closed"),
        # t3: category changed on a later event -> medical; wait 60
        call("11-23 09:41:00", "t3", "received", "fire"),
        call("11-23 09:42:00", "t3", "answered", "medical"),
        # t4: received and abandoned at the same time -> abandoned (not waiting)
        call("11-23 09:43:00", "t4", "received", "police"),
        call("11-23 09:43:00", "t4", "abandoned"),
        # t5: two received events: the earliest counts -> wait 30
        call("11-23 09:44:10", "t5", "received", "info"),
        call("11-23 09:44:00", "t5", "received", "info"),
        call("11-23 09:44:30", "t5", "answered"),
        # t6: a tie of occurred_at between ranks: the later rank's category wins
        #     even though "fire" > "emergency" in byte order
        call("11-23 09:50:00", "t6", "received", "fire"),
        call("11-23 09:50:00", "t6", "answered", "emergency"),
    ]
    k = ref.compute_kpis(events, {}, NOW)
    assert subset(k, "calls.") == {
        "calls.received_today": 6,
        "calls.waiting": 0,
        "calls.active": 4,                      # t1 t3 t5 t6 answered; t2 closed; t4 abandoned
        "calls.answered_1h": 5,                 # t1 t2 t3 t5 t6
        "calls.abandoned_1h": 1,                # t4
        "calls.abandon_rate_1h": 1 / 6,
        "calls.asa_1h_s": 18.0,                 # (0 + 0 + 60 + 30 + 0) / 5
        "calls.service_level_1h": 0.5,          # (t1, t2, t6) / 6
        "calls.by_category_today": {"medical": 2, "police": 1, "info": 1, "emergency": 1},
    }


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------


def scenario_reports():
    return [
        # r1: received exactly now-72h: not overdue (strict <)
        rep("11-20 10:00:00", "r1", "received", "road", district="Candisari"),
        rep("11-20 11:00:00", "r1", "dispatched", agency="DPU"),
        # r2: received 1 ms earlier: overdue
        rep("11-20 09:59:59.999", "r2", "received", "drainage"),
        rep("11-20 12:00:00", "r2", "dispatched", agency="DPU"),
        # r3: resolved exactly 72 h after received: within SLA
        rep("11-15 08:00:00", "r3", "received", "waste"),
        rep("11-15 08:30:00", "r3", "dispatched", agency="DLH"),
        rep("11-18 08:00:00", "r3", "resolved"),
        # r4: 72 h + 1 ms: not within SLA
        rep("11-15 08:00:00", "r4", "received", "waste"),
        rep("11-15 09:00:00", "r4", "dispatched", agency="DLH"),
        rep("11-18 08:00:00.001", "r4", "resolved"),
        # r5: reopened (resolved, then in_progress later): open
        rep("11-21 08:00:00", "r5", "received", "road", district="Genuk"),
        rep("11-21 09:00:00", "r5", "dispatched", agency="DPU"),
        rep("11-22 08:00:00", "r5", "resolved"),
        rep("11-22 12:00:00", "r5", "in_progress"),
        # r6: received today, never dispatched: open, unassigned
        rep("11-23 08:00:00", "r6", "received", "waste", district="Genuk"),
        # r7: resolved today, 13 h
        rep("11-22 20:00:00", "r7", "received", "flood", district="Tugu"),
        rep("11-22 21:00:00", "r7", "dispatched", agency="BPBD"),
        rep("11-23 09:00:00", "r7", "resolved"),
        # r8: rejected: not open
        rep("11-23 01:00:00", "r8", "received", "other"),
        rep("11-23 02:00:00", "r8", "rejected"),
        # r9: no received event: received_at = first event; no category
        rep("11-22 10:00:00", "r9", "dispatched", agency="DPU", district="Pedurungan"),
        rep("11-22 11:00:00", "r9", "in_progress"),
        # r10: dispatched twice at one instant: DPU > DISPERKIM (byte order);
        #      in_progress and resolved at one instant: resolved (rank); 2 h
        rep("11-23 03:00:00", "r10", "received", "drainage"),
        rep("11-23 04:00:00", "r10", "dispatched", agency="DISPERKIM"),
        rep("11-23 04:00:00", "r10", "dispatched", agency="DPU"),
        rep("11-23 05:00:00", "r10", "resolved"),
        rep("11-23 05:00:00", "r10", "in_progress"),
        # r11: resolved long before the 30-day window
        rep("2026-10-01T10:00:00+07:00", "r11", "received", "road"),
        rep("2026-10-01T11:00:00+07:00", "r11", "dispatched", agency="DISHUB"),
        rep("2026-10-05T10:00:00+07:00", "r11", "resolved"),
        # r12: resolved, reopened, resolved again: resolved_at = the latest (144 h)
        rep("11-10 10:00:00", "r12", "received", "road"),
        rep("11-10 11:00:00", "r12", "dispatched", agency="DPU"),
        rep("11-11 10:00:00", "r12", "resolved"),
        rep("11-12 10:00:00", "r12", "in_progress"),
        rep("11-16 10:00:00", "r12", "resolved"),
        # r13: district changed by a later event; an event without district keeps it
        rep("11-22 06:00:00", "r13", "received", "flood", district="Tembalang"),
        rep("11-22 07:00:00", "r13", "dispatched", agency="BPBD", district="Banyumanik"),
        rep("11-22 08:00:00", "r13", "in_progress"),
    ]


def test_reports_scenario():
    k = ref.compute_kpis(scenario_reports(), {}, NOW)
    assert subset(k, "reports.") == {
        "reports.received_today": 3,            # r6 r8 r10
        "reports.open": 6,                      # r1 r2 r5 r6 r9 r13
        "reports.overdue": 1,                   # r2
        "reports.unassigned": 1,                # r6
        "reports.resolved_today": 2,            # r7 r10
        "reports.sla_met_30d": 0.6,             # r3 r7 r10 of r3 r4 r7 r10 r12
        "reports.resolution_p50_30d_h": 72.0,   # 2, 13, 72, 72.0000003, 144
        "reports.by_agency": [
            {"agency": "DPU", "open": 4, "overdue": 1, "resolved_30d": 2, "sla_met_30d": 0.5},
            {"agency": "BPBD", "open": 1, "overdue": 0, "resolved_30d": 1, "sla_met_30d": 1.0},
            {"agency": "DLH", "open": 0, "overdue": 0, "resolved_30d": 2, "sla_met_30d": 0.5},
        ],
        "reports.by_category_open": {"road": 2, "drainage": 1, "waste": 1, "flood": 1},
        "reports.by_district_open": {"Candisari": 1, "Genuk": 2, "Pedurungan": 1, "Banyumanik": 1},
    }


def test_reports_even_median_and_null_agency_sla():
    events = [
        rep("11-20 12:00:00", "e1", "received", "road"),
        rep("11-20 13:00:00", "e1", "dispatched", agency="DLH"),
        rep("11-21 12:00:00", "e1", "resolved"),                  # 24 h
        rep("11-20 12:00:00", "e2", "received", "waste"),
        rep("11-20 12:30:00", "e2", "dispatched", agency="DLH"),
        rep("11-20 22:00:00", "e2", "resolved"),                  # 10 h
        rep("11-19 00:00:00", "e3", "received", "traffic"),
        rep("11-19 01:00:00", "e3", "dispatched", agency="DISHUB"),
        rep("11-22 06:00:00", "e3", "resolved"),                  # 78 h: over SLA
        rep("11-22 00:00:00", "e4", "received", "streetlight"),
        rep("11-22 00:10:00", "e4", "dispatched", agency="DISHUB"),
        rep("11-22 01:30:00", "e4", "resolved"),                  # 1.5 h
        rep("11-23 07:00:00", "e5", "received", "public_order"),
        rep("11-23 07:10:00", "e5", "dispatched", agency="SATPOLPP"),
        rep("11-23 07:30:00", "e6", "received", "health"),
        rep("11-23 07:40:00", "e6", "dispatched", agency="DINKES"),
    ]
    k = ref.compute_kpis(events, {}, NOW)
    assert k["reports.resolution_p50_30d_h"] == 17.0            # (10 + 24) / 2
    assert k["reports.sla_met_30d"] == 0.75
    assert k["reports.open"] == 2 and k["reports.overdue"] == 0 and k["reports.unassigned"] == 0
    assert k["reports.received_today"] == 2 and k["reports.resolved_today"] == 0
    # overdue and open tie at the top: agency name ascending breaks it
    assert k["reports.by_agency"] == [
        {"agency": "DINKES", "open": 1, "overdue": 0, "resolved_30d": 0, "sla_met_30d": None},
        {"agency": "SATPOLPP", "open": 1, "overdue": 0, "resolved_30d": 0, "sla_met_30d": None},
        {"agency": "DISHUB", "open": 0, "overdue": 0, "resolved_30d": 2, "sla_met_30d": 0.5},
        {"agency": "DLH", "open": 0, "overdue": 0, "resolved_30d": 2, "sla_met_30d": 1.0},
    ]
    assert k["reports.by_category_open"] == {"public_order": 1, "health": 1}
    assert k["reports.by_district_open"] == {}


def scenario_30d_edge():
    return [
        # f1: resolved exactly now-30d: inside the 30-day window (24 h)
        rep("2026-10-23T10:00:00+07:00", "f1", "received", "road"),
        rep("2026-10-23T11:00:00+07:00", "f1", "dispatched", agency="DPU"),
        rep("2026-10-24T10:00:00+07:00", "f1", "resolved"),
        # f2: resolved 1 ms earlier: outside
        rep("2026-10-24T09:00:00+07:00", "f2", "received", "road"),
        rep("2026-10-24T09:10:00+07:00", "f2", "dispatched", agency="DLH"),
        rep("2026-10-24T09:59:59.999+07:00", "f2", "resolved"),
        # f3: open road ticket received 10 h ago, never dispatched
        rep("11-23 00:00:00", "f3", "received", "road"),
    ]


def test_reports_30_day_edge():
    k = ref.compute_kpis(scenario_30d_edge(), {}, NOW)
    assert k["reports.sla_met_30d"] == 1.0
    assert k["reports.resolution_p50_30d_h"] == 24.0
    assert k["reports.by_agency"] == [
        {"agency": "DPU", "open": 0, "overdue": 0, "resolved_30d": 1, "sla_met_30d": 1.0}]
    assert k["reports.overdue"] == 0 and k["reports.unassigned"] == 1


def test_reports_sla_per_category():
    # --sla-hours road=8: f1 (24 h) is no longer within SLA, f3 (10 h old) is overdue
    k = ref.compute_kpis(scenario_30d_edge(), {}, NOW, sla_hours={"road": 8})
    assert k["reports.sla_met_30d"] == 0.0
    assert k["reports.overdue"] == 1
    assert k["reports.by_agency"] == [
        {"agency": "DPU", "open": 0, "overdue": 0, "resolved_30d": 1, "sla_met_30d": 0.0}]


# --------------------------------------------------------------------------
# Sensors and alerts
# --------------------------------------------------------------------------


def scenario_sensors():
    def reg(name, thresholds, offline_after_s, registered_at="11-23 08:00:00"):
        return {"name": name, "metric": "water_level", "unit": "cm", "thresholds": thresholds,
                "offline_after_s": offline_after_s, "registered_at": at(registered_at)}
    sensors = {
        "A": reg("A", {"siaga": 200, "awas": 260}, 900),
        "B": reg("B", {"waspada": 150, "siaga": 220, "awas": 300}, 900),
        "C": reg("C", {"siaga": 100, "awas": 150}, 600),
        "D": reg("D", {"waspada": 150, "siaga": 220, "awas": 300}, 900, "11-23 09:40:00"),
        "E": reg("E", {"waspada": 150, "siaga": 220, "awas": 300}, 3600, "11-23 09:30:00"),
        "F": reg("F", {"siaga": 200, "awas": 260}, 3600),
    }
    events = [
        # A: awas, then normal, then siaga: the alert cleared and was raised again at siaga;
        #    the list order is not time order (a late older reading)
        reading("11-23 09:55:00", "A", 210),
        reading("11-23 09:40:00", "A", 300),
        reading("11-23 09:50:00", "A", 150),
        # B: two readings at one instant: the greater value is the latest; 900 s old: online
        reading("11-23 09:45:00", "B", 150),
        reading("11-23 09:45:00", "B", 149.5),
        # C: 600.001 s old with offline_after_s 600: offline; level awas
        reading("11-23 09:49:59.999", "C", 170),
        # F: siaga, awas (escalation), siaga (keeps it): severity awas
        reading("11-23 09:00:00", "F", 210),
        reading("11-23 09:10:00", "F", 270),
        reading("11-23 09:20:00", "F", 220),
    ]
    return sensors, events


def test_sensors_scenario():
    sensors, events = scenario_sensors()
    k = ref.compute_kpis(events, sensors, NOW)
    assert k["sensors.total"] == 6
    assert k["sensors.offline"] == 3                             # C, D and E (never reported)
    assert k["sensors.by_level"] == {"normal": 0, "waspada": 1, "siaga": 2, "awas": 0}   # A F siaga, B

    def row(sid, value, t, level, online):
        return {"sensor_id": sid, "name": sid, "metric": "water_level", "unit": "cm",
                "value": value, "at": None if t is None else at(t), "level": level, "online": online}
    assert k["sensors.latest"] == [
        row("A", 210.0, "11-23 09:55:00", "siaga", True),
        row("B", 150.0, "11-23 09:45:00", "waspada", True),
        row("C", 170.0, "11-23 09:49:59.999", "awas", False),
        row("D", None, None, None, False),
        row("E", None, None, None, False),
        row("F", 220.0, "11-23 09:20:00", "siaga", True),
    ]
    assert k["alerts.active"] == [
        {"kind": "level", "severity": "siaga", "sensor_id": "A"},
        {"kind": "level", "severity": "awas", "sensor_id": "C"},
        {"kind": "offline", "severity": None, "sensor_id": "C"},
        {"kind": "offline", "severity": None, "sensor_id": "D"},   # 20 min since registration > 900 s
        {"kind": "level", "severity": "awas", "sensor_id": "F"},
    ]


def test_level_alert_sequence():
    th = {"siaga": 200, "awas": 260}
    r = lambda *vals: [(i, v) for i, v in enumerate(vals)]  # noqa: E731
    assert ref.level_alert(r(), th) is None
    assert ref.level_alert(r(100, 199.9), th) is None
    assert ref.level_alert(r(100, 200), th) == "siaga"
    assert ref.level_alert(r(210, 270, 220), th) == "awas"    # escalated, kept on the way down
    assert ref.level_alert(r(270, 150, 210), th) == "siaga"   # cleared, raised again
    assert ref.level_alert(r(270, 150), th) is None


# --------------------------------------------------------------------------
# The empty city and the whole object
# --------------------------------------------------------------------------


def test_empty():
    k = ref.compute_kpis([], {}, NOW)
    assert k == {
        "calls.received_today": 0, "calls.waiting": 0, "calls.active": 0,
        "calls.answered_1h": 0, "calls.abandoned_1h": 0, "calls.abandon_rate_1h": None,
        "calls.asa_1h_s": None, "calls.service_level_1h": None, "calls.by_category_today": {},
        "reports.received_today": 0, "reports.open": 0, "reports.overdue": 0,
        "reports.unassigned": 0, "reports.resolved_today": 0, "reports.sla_met_30d": None,
        "reports.resolution_p50_30d_h": None, "reports.by_agency": [],
        "reports.by_category_open": {}, "reports.by_district_open": {},
        "sensors.total": 0, "sensors.offline": 0,
        "sensors.by_level": {"normal": 0, "waspada": 0, "siaga": 0, "awas": 0},
        "sensors.latest": [], "alerts.active": [],
    }


def test_catalogue_keys_match_harness():
    from harness import CATALOGUE
    assert sorted(ref.compute_kpis([], {}, NOW)) == sorted(CATALOGUE)


def test_all_scenarios_together_are_independent():
    # The scenarios use disjoint ids, so together their counts add up.
    sensors, sensor_events = scenario_sensors()
    events = scenario_reports() + sensor_events
    k = ref.compute_kpis(events, sensors, NOW)
    assert k["reports.open"] == 6 and k["sensors.offline"] == 3


# --------------------------------------------------------------------------
# Series helpers
# --------------------------------------------------------------------------


def test_series_helpers():
    events = [
        call("11-23 09:00:00", "s1", "received", "fire"),       # bucket [09:00, 10:00)
        call("11-23 09:59:59.999", "s2", "received", "fire"),   # same bucket
        call("11-23 10:00:00", "s3", "received", "fire"),       # next bucket
        call("11-23 09:30:00", "s4", "answered"),               # received time = 09:30
        reading("11-23 09:10:00", "G", 5),
        reading("11-23 09:50:00", "G", 3),
        reading("11-23 09:50:00", "G", 4),                      # tie: the greater value is last
        reading("11-23 09:20:00", "G", 9),
    ]
    times = ref.series_times(events, "calls.received")
    assert ref.count_in(times, at("11-23 09:00:00"), at("11-23 10:00:00")) == 3
    assert ref.count_in(times, at("11-23 10:00:00"), at("11-23 11:00:00")) == 1
    assert ref.sensor_bucket(events, "G", at("11-23 09:00:00"), at("11-23 10:00:00")) == \
        {"min": 3.0, "max": 9.0, "last": 4.0}
    assert ref.sensor_bucket(events, "G", at("11-23 10:00:00"), at("11-23 11:00:00")) == \
        {"min": None, "max": None, "last": None}


def test_reports_series_times():
    evs = scenario_reports()
    resolved = ref.series_times(evs, "reports.resolved", NOW)
    # resolved now: r3 r4 r7 r10 r11 r12 (r5 was reopened)
    assert len(resolved) == 6
    assert at("11-16 10:00:00") in resolved and at("11-22 08:00:00") not in resolved
    received = ref.series_times(evs, "reports.received", NOW)
    assert len(received) == 13 and at("11-22 10:00:00") in received      # r9: its first event


def test_time_offsets_parse_to_instants():
    a = ref.parse_time("2026-11-23T08:15:00+07:00")
    b = ref.parse_time("2026-11-23T01:15:00Z")
    c = ref.parse_time("2026-11-22T20:15:00.000-05:00")
    assert a == b == c
    assert a - timedelta(milliseconds=1) == ref.parse_time("2026-11-23T01:14:59.999Z")
