"""
An independent implementation of the KPI catalogue (docs/kpis.md), for
checking the server.

compute_kpis(events, sensors, now) takes
  - events: the distinct events as posted (dicts of the ingest contract;
    the caller removes re-posted duplicates: the first copy of a
    (poster, id) is the one that counts),
  - sensors: {sensor_id: registry entry as PUT, plus optionally
    "registered_at" (aware datetime)},
  - now: an aware datetime,
and returns the kpis object with every catalogue key.  Times come back as
aware datetimes (compare them as instants), ratios and medians as floats or
None, alerts.active as the data-determined part of the alerts (see
level_alert / active_alerts).

Everything is brute force over all events, written to be read next to the
documentation: each rule carries the sentence it implements.  Only the
standard library is used.
"""

from datetime import datetime, timedelta, timezone

WIB = timezone(timedelta(hours=7))

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DEFAULT_SLA = timedelta(hours=72)

# "Lifecycle order (for ties of occurred_at)"
CALL_RANK = {"received": 0, "answered": 1, "abandoned": 2, "closed": 3}
REPORT_RANK = {"received": 0, "dispatched": 1, "in_progress": 2, "resolved": 3, "rejected": 4}

LEVELS = ["normal", "waspada", "siaga", "awas"]


# --------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------


def parse_time(s):
    """RFC 3339 -> aware datetime."""
    t = datetime.fromisoformat(s.replace("z", "Z").replace("t", "T"))
    assert t.tzinfo is not None, f"time without offset: {s}"
    return t


def today_bounds(now):
    """"Today" is [00:00 WIB today, 00:00 WIB tomorrow)."""
    start = now.astimezone(WIB).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + DAY


def is_today(t, now):
    start, end = today_bounds(now)
    return start <= t < end


def in_last(t, now, span):
    """"In the last D" means t >= now - D (future times are inside)."""
    return t >= now - span


def median(values):
    """PostgreSQL's percentile_cont(0.5): the middle value, or the mean of the
    two middle values for an even count; None over nothing."""
    if not values:
        return None
    v = sorted(values)
    n = len(v)
    if n % 2 == 1:
        return float(v[n // 2])
    return (v[n // 2 - 1] + v[n // 2]) / 2.0


def ratio(num, den):
    """A ratio over nothing is null."""
    return None if den == 0 else num / den


# --------------------------------------------------------------------------
# Grouping and "latest" rules
# --------------------------------------------------------------------------


def _group(events, etype, subject):
    groups = {}
    for e in events:
        if e["type"] != etype:
            continue
        body = e[etype]
        groups.setdefault(body[subject], []).append(
            {"t": parse_time(e["occurred_at"]), "status": body.get("status"), "event": e})
    return groups


def latest_status(items, rank):
    """The status of the event with the greatest (occurred_at, lifecycle rank)."""
    best = max(items, key=lambda it: (it["t"], rank[it["status"]]))
    return best["status"]


def latest_attr(items, rank, getter):
    """Latest value of an attribute: among the events that give it, the one
    with the greatest (occurred_at, lifecycle rank); if still tied, the
    greatest value (byte order).  Events that do not give it do not clear it."""
    given = [(it["t"], rank[it["status"]], getter(it["event"]).encode("utf-8"), getter(it["event"]))
             for it in items if getter(it["event"]) is not None]
    if not given:
        return None
    return max(given)[3]


def earliest(items, status=None):
    ts = [it["t"] for it in items if status is None or it["status"] == status]
    return min(ts) if ts else None


def received_time(items):
    """The earliest occurred_at of its received events; if none, of all."""
    return earliest(items, "received") or earliest(items)


# --------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------


def calls_table(events):
    """One row per call (events with the same call.call_id)."""
    rows = []
    for call_id, items in _group(events, "call", "call_id").items():
        recv = received_time(items)
        answered = earliest(items, "answered")
        rows.append({
            "call_id": call_id,
            "received": recv,
            "answered": answered,
            "abandoned": earliest(items, "abandoned"),
            "status": latest_status(items, CALL_RANK),
            "category": latest_attr(items, CALL_RANK, lambda e: e["call"].get("category")),
            "wait": None if answered is None else (answered - recv).total_seconds(),
        })
    return rows


def call_kpis(events, now):
    calls = calls_table(events)
    answered_1h = [c for c in calls if c["answered"] is not None and in_last(c["answered"], now, HOUR)]
    abandoned_1h = [c for c in calls if c["abandoned"] is not None and in_last(c["abandoned"], now, HOUR)]
    handled = len(answered_1h) + len(abandoned_1h)
    today = [c for c in calls if is_today(c["received"], now)]
    by_cat = {}
    for c in today:
        if c["category"] is not None:
            by_cat[c["category"]] = by_cat.get(c["category"], 0) + 1
    return {
        "calls.received_today": len(today),
        "calls.waiting": sum(1 for c in calls
                             if c["status"] == "received" and in_last(c["received"], now, HOUR)),
        "calls.active": sum(1 for c in calls
                            if c["status"] in ("received", "answered") and in_last(c["received"], now, DAY)),
        "calls.answered_1h": len(answered_1h),
        "calls.abandoned_1h": len(abandoned_1h),
        "calls.abandon_rate_1h": ratio(len(abandoned_1h), handled),
        "calls.asa_1h_s": (sum(c["wait"] for c in answered_1h) / len(answered_1h)) if answered_1h else None,
        "calls.service_level_1h": ratio(sum(1 for c in answered_1h if c["wait"] <= 20), handled),
        "calls.by_category_today": by_cat,
    }


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------


def tickets_table(events, now, sla_hours=None):
    """One row per ticket (events with the same report.ticket)."""
    sla_hours = sla_hours or {}
    rows = []
    for ticket, items in _group(events, "report", "ticket").items():
        recv = received_time(items)
        resolved_ts = [it["t"] for it in items if it["status"] == "resolved"]
        resolved_at = max(resolved_ts) if resolved_ts else None
        status = latest_status(items, REPORT_RANK)
        category = latest_attr(items, REPORT_RANK, lambda e: e["report"].get("category"))
        sla = timedelta(hours=sla_hours[category]) if category in sla_hours else DEFAULT_SLA
        is_open = status not in ("resolved", "rejected")
        resolved_30d = status == "resolved" and in_last(resolved_at, now, 30 * DAY)
        rows.append({
            "ticket": ticket,
            "received_at": recv,
            "resolved_at": resolved_at,
            "status": status,
            "category": category,
            "district": latest_attr(items, REPORT_RANK, lambda e: e.get("district")),
            "agency": latest_attr(items, REPORT_RANK, lambda e: e["report"].get("agency")),
            "dispatched": any(it["status"] == "dispatched" for it in items),
            "open": is_open,
            "overdue": is_open and recv < now - sla,
            "resolved_30d": resolved_30d,
            "within_sla": resolved_at is not None and (resolved_at - recv) <= sla,
            "resolution_h": None if resolved_at is None else (resolved_at - recv).total_seconds() / 3600.0,
        })
    return rows


def report_kpis(events, now, sla_hours=None):
    tickets = tickets_table(events, now, sla_hours)
    open_ = [t for t in tickets if t["open"]]
    res30 = [t for t in tickets if t["resolved_30d"]]

    agencies = {}
    for t in tickets:
        a = t["agency"]
        if a is None:
            continue
        row = agencies.setdefault(a, {"agency": a, "open": 0, "overdue": 0, "resolved_30d": 0, "_met": 0})
        row["open"] += t["open"]
        row["overdue"] += t["overdue"]
        row["resolved_30d"] += t["resolved_30d"]
        row["_met"] += t["resolved_30d"] and t["within_sla"]
    by_agency = []
    for row in agencies.values():
        if row["open"] == 0 and row["resolved_30d"] == 0:
            continue
        by_agency.append({"agency": row["agency"], "open": row["open"], "overdue": row["overdue"],
                          "resolved_30d": row["resolved_30d"],
                          "sla_met_30d": ratio(row["_met"], row["resolved_30d"])})
    # ordered by overdue desc, open desc, agency asc (byte order)
    by_agency.sort(key=lambda r: (-r["overdue"], -r["open"], r["agency"].encode("utf-8")))

    def count_by(rows, attr):
        out = {}
        for t in rows:
            if t[attr] is not None:
                out[t[attr]] = out.get(t[attr], 0) + 1
        return out

    return {
        "reports.received_today": sum(1 for t in tickets if is_today(t["received_at"], now)),
        "reports.open": len(open_),
        "reports.overdue": sum(1 for t in tickets if t["overdue"]),
        "reports.unassigned": sum(1 for t in open_ if not t["dispatched"]),
        "reports.resolved_today": sum(1 for t in tickets
                                      if t["status"] == "resolved" and is_today(t["resolved_at"], now)),
        "reports.sla_met_30d": ratio(sum(1 for t in res30 if t["within_sla"]), len(res30)),
        "reports.resolution_p50_30d_h": median([t["resolution_h"] for t in res30]),
        "reports.by_agency": by_agency,
        "reports.by_category_open": count_by(open_, "category"),
        "reports.by_district_open": count_by(open_, "district"),
    }


# --------------------------------------------------------------------------
# Sensors and alerts
# --------------------------------------------------------------------------


def level_of(value, thresholds):
    """awas if >= awas, else siaga if >= siaga, else waspada if >= waspada,
    else normal; a threshold the gauge does not have is skipped."""
    for level in ("awas", "siaga", "waspada"):
        th = thresholds.get(level)
        if th is not None and value >= th:
            return level
    return "normal"


def readings_of(events, sensor_id):
    """The sensor's readings as (occurred_at, value), oldest first; on a tie
    of occurred_at the smaller value first (so the last one is the latest:
    greatest occurred_at, then the greater value)."""
    rs = [(parse_time(e["occurred_at"]), float(e["sensor"]["value"]))
          for e in events if e["type"] == "sensor" and e["sensor"]["sensor_id"] == sensor_id]
    return sorted(rs)


def offline_after(entry):
    return entry.get("offline_after_s", 900)


def sensor_rows(events, sensors, now):
    rows = []
    for sid in sorted(sensors, key=lambda s: s.encode("utf-8")):
        entry = sensors[sid]
        rs = readings_of(events, sid)
        if rs:
            at, value = rs[-1]
            # offline: now - at > offline_after_s
            online = (now - at).total_seconds() <= offline_after(entry)
            level = level_of(value, entry.get("thresholds", {}))
        else:
            at = value = level = None
            online = False
        rows.append({"sensor_id": sid, "name": entry.get("name"), "metric": entry.get("metric"),
                     "unit": entry.get("unit"), "value": value, "at": at, "level": level,
                     "online": online})
    return rows


def level_alert(readings, thresholds):
    """The level alert left active after the readings, applied one by one in
    occurred_at order (each becomes the latest reading), or None.

    Raised at siaga or awas when none is active (severity = that level); a
    rise to awas escalates it; falling to siaga keeps it (and its severity);
    below siaga clears it.

    The server applies readings in arrival order, and a late older reading
    never becomes the latest, so for data sent out of order only part of
    this is a function of the data: whether a level alert is active (the
    latest reading is siaga or awas) and, when the latest reading is awas,
    its severity.  When the latest reading is siaga the severity also
    depends on arrival order if the sensor ever read awas; the dataset
    generator avoids that case."""
    active = None
    for _, value in readings:
        lv = level_of(value, thresholds)
        if lv in ("siaga", "awas"):
            if active is None:
                active = lv
            elif lv == "awas":
                active = "awas"
        else:
            active = None
    return active


def active_alerts(events, sensors, now):
    """alerts.active as far as it is a function of the data: one item
    {kind, severity, sensor_id} per active alert (ids, messages and
    raised_at are the server's)."""
    out = []
    for sid in sorted(sensors):
        entry = sensors[sid]
        rs = readings_of(events, sid)
        sev = level_alert(rs, entry.get("thresholds", {}))
        if sev is not None:
            out.append({"kind": "level", "severity": sev, "sensor_id": sid})
        # offline: no reading for offline_after_s, counted from registration
        # if it never reported
        if rs:
            since = rs[-1][0]
        else:
            since = entry.get("registered_at")
        if since is not None and (now - since).total_seconds() > offline_after(entry):
            out.append({"kind": "offline", "severity": None, "sensor_id": sid})
    return out


def sensor_kpis(events, sensors, now):
    rows = sensor_rows(events, sensors, now)
    by_level = {lv: 0 for lv in LEVELS}
    for r in rows:
        if r["online"]:
            by_level[r["level"]] += 1
    return {
        "sensors.total": len(sensors),
        "sensors.offline": sum(1 for r in rows if not r["online"]),
        "sensors.by_level": by_level,
        "sensors.latest": rows,
        "alerts.active": active_alerts(events, sensors, now),
    }


# --------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------


def compute_kpis(events, sensors, now, sla_hours=None):
    assert now.tzinfo is not None
    kpis = {}
    kpis.update(call_kpis(events, now))
    kpis.update(report_kpis(events, now, sla_hours))
    kpis.update(sensor_kpis(events, sensors, now))
    return kpis


def distinct_events(posted):
    """From (poster, event) pairs in the order the server committed them,
    the events that count: the first of each (poster, id)."""
    seen = set()
    out = []
    for poster, e in posted:
        k = (poster, e["id"])
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


# --------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------


def series_times(events, name, now=None):
    """The times a count series buckets: a call's received time, a ticket's
    received_at, resolved_at of tickets whose latest status is resolved."""
    if name == "calls.received":
        return [c["received"] for c in calls_table(events)]
    if name == "reports.received":
        return [t["received_at"] for t in tickets_table(events, now or datetime.now(WIB))]
    if name == "reports.resolved":
        return [t["resolved_at"] for t in tickets_table(events, now or datetime.now(WIB))
                if t["status"] == "resolved"]
    raise ValueError(name)


def count_in(times, start, end):
    """How many of the times fall in [start, end)."""
    return sum(1 for t in times if start <= t < end)


def sensor_bucket(events, sensor_id, start, end):
    """{min, max, last} of a sensor's readings with occurred_at in
    [start, end) (last: the latest reading of the bucket); None values when
    the bucket is empty."""
    rs = [(t, v) for t, v in readings_of(events, sensor_id) if start <= t < end]
    if not rs:
        return {"min": None, "max": None, "last": None}
    vals = [v for _, v in rs]
    return {"min": min(vals), "max": max(vals), "last": rs[-1][1]}
