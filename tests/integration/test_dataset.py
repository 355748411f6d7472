"""
The dataset generator, checked without the server: it is deterministic, its
events keep to the ingest contract, it exercises the edges it promises, and
its times keep clear of the sliding window edges (so that the KPI comparison
cannot flip a value because a few seconds or minutes passed).
"""

import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

import dataset
import reference
from harness import parse_time

T0 = datetime(2026, 11, 23, 3, 17, 42, tzinfo=timezone.utc)   # 10:17:42 WIB

CALL_STATUSES = {"received", "answered", "closed", "abandoned"}
REPORT_STATUSES = {"received", "dispatched", "in_progress", "resolved", "rejected"}


@pytest.fixture(scope="module")
def ds():
    return dataset.Dataset(t0=T0)


def check_event(e, t0, sensors):
    """The ingest contract of docs/spec/api.md for one event (raises)."""
    assert isinstance(e["id"], str) and 1 <= len(e["id"]) <= 128
    t = parse_time(e["occurred_at"])
    assert t <= t0 + timedelta(minutes=4), e
    assert e["type"] in ("call", "report", "sensor")
    assert [k for k in ("call", "report", "sensor") if k in e] == [e["type"]]
    if "district" in e:
        assert isinstance(e["district"], str) and len(e["district"]) <= 64
    if "location" in e:
        assert -90 <= e["location"]["lat"] <= 90 and -180 <= e["location"]["lon"] <= 180
    body = e[e["type"]]
    if e["type"] == "call":
        assert len(body["call_id"]) <= 64 and body["status"] in CALL_STATUSES
        if body["status"] == "received":
            assert body["category"] in dataset.CALL_CATEGORIES
        elif "category" in body:
            assert body["category"] in dataset.CALL_CATEGORIES
    elif e["type"] == "report":
        assert len(body["ticket"]) <= 64 and body["status"] in REPORT_STATUSES
        if body["status"] == "received":
            assert body["category"] in dataset.REPORT_CATEGORIES
        if body["status"] == "dispatched":
            assert 1 <= len(body["agency"]) <= 32
        assert len(body.get("title", "")) <= 200
    else:
        assert body["sensor_id"] in sensors
        assert isinstance(body["value"], (int, float)) and math.isfinite(body["value"])


def test_deterministic():
    a = dataset.Dataset(t0=T0)
    b = dataset.Dataset(t0=T0)
    assert a.posted() == b.posted() and a.sensors == b.sensors


def test_events_follow_the_contract(ds):
    for e in ds.all_events():
        check_event(e, ds.t0, ds.sensors)


def test_ids_unique_per_poster_and_shared_across_posters(ds):
    per_poster = {p: [e["id"] for e in evs] for p, evs in ds.events.items()}
    for p, ids in per_poster.items():
        assert len(ids) == len(set(ids)), p
    shared = set(per_poster["calls"]) & set(per_poster["reports"]) & set(per_poster["sensors"])
    assert len(shared) > 100          # the same id strings under different posters


def test_times_clear_of_sliding_edges(ds):
    margin_before = timedelta(minutes=2)
    for e in ds.all_events():
        t = parse_time(e["occurred_at"])
        for span in (timedelta(hours=1), timedelta(hours=24), timedelta(hours=72), timedelta(days=30)):
            edge = ds.t0 - span
            assert not (edge - margin_before <= t <= edge + timedelta(minutes=12)), (e, span)


def test_edges_are_exercised(ds):
    f = ds.features
    for name in ("call:no_received", "call:double_received", "call:tie_received_answered",
                 "call:tie_received_abandoned", "call:category_tie", "call:rank_category_tie",
                 "call:wait_20", "call:wait_20_001", "call:across_midnight", "call_when:future",
                 "call:112-mid-exact", "call:112-mid-before",
                 "ticket:reopened", "ticket:reopened_resolved", "ticket:no_received",
                 "ticket:redispatch", "ticket:district_change", "ticket:tie_status",
                 "ticket:agency_tie", "ticket:sla_exact", "ticket:sla_exact_plus", "ticket:rejected",
                 "sensor:tie", "sensor:silent", "sensor:rising_future", "sensor:peaked"):
        assert f.get(name, 0) > 0, name
    offsets = Counter(e["occurred_at"][-6:] if not e["occurred_at"].endswith("Z") else "Z"
                      for e in ds.all_events())
    assert {"+07:00", "Z", "+09:00", "-03:30"} <= set(offsets)
    ladders = Counter(len(s["thresholds"]) for s in ds.sensors.values())
    assert ladders[2] >= 3 and ladders[3] >= 2
    never = [sid for sid in ds.sensors
             if not any(e["sensor"]["sensor_id"] == sid for e in ds.events["sensors"])]
    assert len(never) == 1


def test_reference_values_are_not_trivial(ds):
    sensors = {sid: dict(body, registered_at=ds.t0) for sid, body in ds.sensors.items()}
    k = reference.compute_kpis(ds.all_events(), sensors, ds.t0)
    assert k["calls.answered_1h"] > 10 and k["calls.abandoned_1h"] > 0 and k["calls.waiting"] > 0
    assert 0 < k["calls.service_level_1h"] < 1 and 0 < k["calls.abandon_rate_1h"] < 1
    assert k["calls.received_today"] > 0
    assert k["reports.open"] > 20 and k["reports.overdue"] > 5 and k["reports.unassigned"] > 0
    assert 0 < k["reports.sla_met_30d"] < 1 and k["reports.resolution_p50_30d_h"] > 0
    assert len(k["reports.by_agency"]) >= 5
    assert k["sensors.total"] == 6 and k["sensors.offline"] == 2
    assert k["sensors.by_level"] == {"normal": 1, "waspada": 1, "siaga": 1, "awas": 1}
    got = sorted((a["kind"], a["severity"] or "", a["sensor_id"]) for a in k["alerts.active"])
    assert got == [("level", "awas", "SMG-GARANG-KALIGARANG"), ("level", "siaga", "SMG-KREO-JATIBARANG"),
                   ("offline", "", "SMG-BANGER-POMPA")]


@pytest.mark.parametrize("hour_wib", [0, 1, 3, 10, 23])
def test_values_stable_for_minutes(hour_wib):
    """The margins work: the reference gives the same numbers at t0 and at
    t0 + 10 min (the 'today' keys excepted when the WIB day changes), for
    runs at several hours of the day, midnight included."""
    t0 = datetime(2026, 11, 23, hour_wib, 0, 30, tzinfo=dataset.WIB) - timedelta(minutes=3)
    ds = dataset.Dataset(t0=t0)
    sensors = {sid: dict(body, registered_at=ds.t0) for sid, body in ds.sensors.items()}
    a = reference.compute_kpis(ds.all_events(), sensors, ds.t0)
    later = ds.t0 + timedelta(minutes=10)
    b = reference.compute_kpis(ds.all_events(), sensors, later)
    day_changed = reference.today_bounds(ds.t0) != reference.today_bounds(later)
    for key in a:
        if day_changed and key in ("calls.received_today", "calls.by_category_today",
                                   "reports.received_today", "reports.resolved_today"):
            continue
        assert a[key] == b[key], key


def test_plan_sends_everything_once_and_counts_add_up(ds):
    seq, conc = dataset.plan_requests(ds)
    everything = {(p, e["id"]) for p, e in ds.posted()}
    first_seen = set()
    for r in seq:
        keys = [(r.poster, e["id"]) for e in r.events]
        assert len(keys) == len(set(keys)), "no event twice in one request"
        new = [k for k in keys if k not in first_seen]
        assert (len(new), len(keys) - len(new)) == (r.new, r.dups)
        first_seen.update(new)
        if r.fmt == "object":
            assert len(r.events) == 1
        assert 1 <= len(r.events) <= 200 + 40
    for thread in conc:
        for r in thread:
            keys = [(r.poster, e["id"]) for e in r.events]
            assert len(keys) == len(set(keys))
            first_seen.update(keys)
    assert first_seen == everything
    fmts = Counter(r.fmt for r in seq)
    assert fmts["json"] and fmts["object"] and fmts["ndjson"]
    assert sum(r.dups for r in seq) > 0
    assert sum(1 for t in conc for r in t) >= 8
