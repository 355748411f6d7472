"""
A seeded, realistic month of Semarang's command centre, relative to the
moment of generation t0:

- a few hundred 112 calls (call centre) over ~35 days with their
  lifecycles: answered and closed, abandoned, still waiting, calls with no
  received event, two received events, ties of occurred_at, category changes,
  waits of exactly 20 s and 20.001 s, calls across midnight WIB (and one at
  midnight exactly), calls a few minutes in the future;
- a couple of hundred citizen tickets (LAPOR!) with dispatch, progress,
  resolution, rejection, reopening (resolved then in_progress), re-dispatch,
  district changes, tickets with no received event, ties, SLA at exactly 72 h
  and 72 h + 1 ms, overdue tickets;
- six river gauges of data/semarang.json (3- and 4-level ladders) with a
  day of readings: one rises into awas, one ends on a tie of occurred_at that
  lifts it to siaga, one passed through awas hours ago and is back to normal,
  one has been silent longer than its offline_after_s, one never reports.

Every event time keeps clear of the sliding window edges (now - 1 h,
- 24 h, - 72 h, - 30 d) by at least 2 minutes for any `now` in
[t0, t0 + 12 min], so a comparison made a few minutes after t0 cannot flip
a value.  No event is more than 4 minutes ahead of t0.

Each event belongs to a poster ("calls", "reports", "sensors"), and the
posters use overlapping id spaces on purpose: ids are unique per poster only.
"""

import random
from datetime import datetime, timedelta, timezone

from harness import load_semarang

WIB = timezone(timedelta(hours=7))
UTC = timezone.utc

SEC = 1000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR

CALL_CATEGORIES = ["emergency", "fire", "medical", "police", "disaster", "complaint", "info", "other"]
REPORT_CATEGORIES = ["flood", "road", "drainage", "waste", "streetlight", "traffic",
                     "public_order", "health", "administration", "other"]

TITLES = {
    "flood": ["Banjir setinggi lutut di Jl. Kaligawe", "Genangan air di depan pasar", "Rob masuk rumah warga"],
    "road": ["Jalan berlubang di Jl. Majapahit", "Aspal mengelupas – Jl. Setiabudi", "Jembatan retak"],
    "drainage": ["Saluran air tersumbat", "Gorong-gorong ambles"],
    "waste": ["Sampah menumpuk di TPS", "Pembuangan sampah liar di sungai"],
    "streetlight": ["Lampu PJU mati – Jl. Pemuda", "Lampu jalan berkedip"],
    "traffic": ["Lampu lalu lintas mati di simpang", "Parkir liar di bahu jalan"],
    "public_order": ["PKL menutup trotoar", "Reklame tanpa izin"],
    "health": ["Sarang nyamuk DBD di lahan kosong", "Antrean puskesmas"],
    "administration": ["KTP-el belum jadi", "Layanan KK lambat"],
    "other": ["Pohon tumbang", "Anjing liar berkeliaran"],
}

# The gauges used, their ladder and behaviour (see the module docstring).
GAUGES = [
    # id, offline_after_s, profile
    ("SMG-BKB-SIMONGAN", 3600, "peaked"),          # 3-level: through awas 6-8 h ago, normal now
    ("SMG-GARANG-KALIGARANG", 3600, "rising"),     # 3-level: ends in awas (last reading in the future)
    ("SMG-KREO-JATIBARANG", 3600, "tie_siaga"),    # 4-level: ends on a tie -> siaga, never awas
    ("SMG-SEMARANG-BOEZEM", 3600, "waspada"),      # 4-level: excursion to siaga, ends waspada
    ("SMG-BANGER-POMPA", 900, "silent"),           # 3-level: silent for 3 h > 900 s
    ("SMG-BABON-GENUK", 3600, "never"),            # 3-level: never reports
]

SLIDING_WINDOWS = [1 * HOUR, 24 * HOUR, 72 * HOUR, 30 * DAY]
EDGE_BEFORE = 2 * MIN      # keep this far before an edge (as seen at t0)
EDGE_AFTER = 12 * MIN      # and this far after it (edges move forward with time)
MAX_FUTURE = 4 * MIN


def to_dt(ms):
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(dt):
    return int(round(dt.timestamp() * 1000))


class Dataset:
    def __init__(self, seed=20261123, t0=None, n_calls=300, n_tickets=220):
        self.rng = random.Random(seed)
        now = t0 or datetime.now(UTC)
        self.t0_ms = to_ms(now) // SEC * SEC              # whole seconds
        self.t0 = to_dt(self.t0_ms)
        m0 = self.t0.astimezone(WIB).replace(hour=0, minute=0, second=0, microsecond=0)
        self.m0_ms = to_ms(m0)                           # 00:00 WIB of t0's day
        self.city = load_semarang()
        self.districts = self.city["districts"]
        self.zones = [(self.t0_ms - d - EDGE_BEFORE, self.t0_ms - d + EDGE_AFTER) for d in SLIDING_WINDOWS]
        self.next_id = {"calls": 0, "reports": 0, "sensors": 0}
        self.events = {"calls": [], "reports": [], "sensors": []}
        self.features = {}        # name -> how many entities show that feature
        self.sensors = {}         # sensor_id -> registry body (PUT)
        self._calls(n_calls)
        self._tickets(n_tickets)
        self._sensors()

    # -- helpers --------------------------------------------------------------

    def safe(self, ms):
        """Clear of every sliding window edge and at most 4 min ahead."""
        if ms > self.t0_ms + MAX_FUTURE:
            return False
        return not any(lo <= ms <= hi for lo, hi in self.zones)

    def feature(self, name, n=1):
        self.features[name] = self.features.get(name, 0) + n

    def new_id(self, poster):
        self.next_id[poster] += 1
        # the same id strings are used by every poster: unique per poster only
        return f"ev-{self.next_id[poster]:05d}"

    def fmt(self, ms):
        """RFC 3339 in a variety of offsets and precisions (same instant)."""
        r = self.rng.random()
        if r < 0.55:
            tz = WIB
        elif r < 0.80:
            tz = UTC
        elif r < 0.90:
            tz = timezone(timedelta(hours=9))            # WIT
        else:
            tz = timezone(timedelta(hours=-3, minutes=-30))
        dt = to_dt(ms).astimezone(tz)
        frac = ms % 1000
        style = self.rng.random()
        if frac == 0 and style < 0.5:
            text = dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif style < 0.9:
            text = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}"
        else:
            text = dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}000"
        off = dt.utcoffset()
        if tz is UTC and self.rng.random() < 0.7:
            return text + "Z"
        total = int(off.total_seconds() // 60)
        sign = "+" if total >= 0 else "-"
        total = abs(total)
        return f"{text}{sign}{total // 60:02d}:{total % 60:02d}"

    def where(self, event, p_district=0.8, p_location=0.5, district=None):
        if district is None and self.rng.random() < p_district:
            district = self.rng.choice(self.districts)["name"]
        if district is not None:
            event["district"] = district
            if self.rng.random() < p_location:
                d = next(x for x in self.districts if x["name"] == district)
                event["location"] = {"lat": round(d["lat"] + self.rng.uniform(-0.01, 0.01), 6),
                                     "lon": round(d["lon"] + self.rng.uniform(-0.01, 0.01), 6)}
        if self.rng.random() < 0.05:
            event["x_source"] = {"system": "simulator", "rev": 3}   # unknown: must be ignored
        return event

    def rand_ms(self, lo, hi):
        return self.rng.randint(int(lo), int(hi))

    # -- calls ----------------------------------------------------------------

    CALL_KINDS = [
        ("answered_closed", 34), ("answered_open", 8), ("abandoned", 12), ("waiting", 8),
        ("no_received", 4), ("double_received", 4), ("tie_received_answered", 3),
        ("tie_received_abandoned", 2), ("category_change", 4), ("category_tie", 2),
        ("rank_category_tie", 2), ("wait_20", 2), ("wait_20_001", 2),
    ]

    def _wait_ms(self):
        if self.rng.random() < 0.6:
            return self.rand_ms(1 * SEC, 20 * SEC)
        return self.rand_ms(20 * SEC + 1, 150 * SEC)

    def _call_steps(self, kind, r):
        """(offset from r in ms, status, category or None) for one call."""
        rng = self.rng
        cat = rng.choice(CALL_CATEGORIES)
        w = self._wait_ms()
        talk = self.rand_ms(30 * SEC, 15 * MIN)
        if kind == "answered_closed":
            return [(0, "received", cat), (w, "answered", None), (w + talk, "closed", None)]
        if kind == "answered_open":
            return [(0, "received", cat), (w, "answered", None)]
        if kind == "abandoned":
            return [(0, "received", cat), (self.rand_ms(5 * SEC, 3 * MIN), "abandoned", None)]
        if kind == "waiting":
            return [(0, "received", cat)]
        if kind == "no_received":
            # the call centre lost the received event: received time = first event;
            # sometimes no category at all
            c = cat if rng.random() < 0.5 else None
            return [(0, "answered", c), (talk, "closed", None)]
        if kind == "double_received":
            return [(0, "received", cat), (self.rand_ms(1 * SEC, 30 * SEC), "received", cat),
                    (w + 30 * SEC, "answered", None)]
        if kind == "tie_received_answered":
            return [(0, "received", cat), (0, "answered", None), (talk, "closed", None)]
        if kind == "tie_received_abandoned":
            return [(0, "received", cat), (0, "abandoned", None)]
        if kind == "category_change":
            other = rng.choice([c for c in CALL_CATEGORIES if c != cat])
            return [(0, "received", cat), (w, "answered", other), (w + talk, "closed", None)]
        if kind == "category_tie":
            a, b = rng.sample(CALL_CATEGORIES, 2)
            return [(0, "received", a), (0, "received", b), (w, "answered", None)]
        if kind == "rank_category_tie":
            a, b = rng.sample(CALL_CATEGORIES, 2)
            return [(0, "received", a), (0, "answered", b)]
        if kind == "wait_20":
            return [(0, "received", cat), (20 * SEC, "answered", None), (20 * SEC + talk, "closed", None)]
        if kind == "wait_20_001":
            return [(0, "received", cat), (20 * SEC + 1, "answered", None)]
        raise ValueError(kind)

    def _call_time(self):
        r = self.rng.random()
        t0 = self.t0_ms
        if r < 0.40:
            return self.rand_ms(t0 - 2 * HOUR, t0), "recent"
        if r < 0.70:
            return self.rand_ms(t0 - 24 * HOUR, t0 - 2 * HOUR), "day"
        if r < 0.96:
            return self.rand_ms(t0 - 35 * DAY, t0 - 24 * HOUR), "old"
        return self.rand_ms(t0 + 20 * SEC, t0 + 210 * SEC), "future"

    def _add_call(self, call_id, r, steps, district_event=True):
        """Adds a call's events; False (nothing added) if a time is unsafe."""
        times = [r + off for off, _, _ in steps]
        if not all(self.safe(t) for t in times):
            return False
        for (off, status, cat), t in zip(steps, times):
            body = {"call_id": call_id, "status": status}
            if cat is not None:
                body["category"] = cat
            e = {"id": self.new_id("calls"), "type": "call", "occurred_at": self.fmt(t), "call": body}
            self.events["calls"].append(self.where(e, p_district=0.6) if district_event else e)
        return True

    def _calls(self, n):
        kinds, weights = zip(*self.CALL_KINDS)
        made = 0
        i = 0
        while made < n:
            i += 1
            kind = self.rng.choices(kinds, weights)[0]
            for _ in range(50):
                r, when = self._call_time()
                steps = self._call_steps(kind, r)
                # lifecycle steps past t0 + 4 min have not happened yet
                steps = [s for s in steps if r + s[0] <= self.t0_ms + MAX_FUTURE]
                if steps and self._add_call(f"112-{i:05d}", r, steps):
                    self.feature(f"call:{kind}")
                    self.feature(f"call_when:{when}")
                    made += 1
                    break
        # Across midnight WIB: received before 00:00, answered after.
        m0 = self.m0_ms
        for j in range(3):
            for _ in range(50):
                r = m0 - self.rand_ms(5 * SEC, 8 * MIN)
                a = m0 + self.rand_ms(1 * SEC, 2 * MIN)
                steps = [(0, "received", self.rng.choice(CALL_CATEGORIES)), (a - r, "answered", None)]
                if self._add_call(f"112-mid-{j}", r, steps):
                    self.feature("call:across_midnight")
                    break
        # Exactly at 00:00 WIB (today) and 1 ms before (yesterday).
        for name, r in (("112-mid-exact", m0), ("112-mid-before", m0 - 1)):
            if self._add_call(name, r, [(0, "received", "info")]):
                self.feature("call:" + name)

    # -- tickets --------------------------------------------------------------

    TICKET_KINDS = [
        ("new_open", 10), ("dispatched_open", 12), ("in_progress_open", 14), ("resolved", 40),
        ("resolved_fast", 10), ("rejected", 6), ("reopened", 5), ("reopened_resolved", 4),
        ("no_received", 4), ("redispatch", 4), ("district_change", 4), ("tie_status", 3),
        ("agency_tie", 2), ("sla_exact", 1), ("sla_exact_plus", 1),
    ]

    def _agency_for(self, category):
        handlers = [a["code"] for a in self.city["agencies"] if category in a["handles"]]
        return self.rng.choice(handlers or [a["code"] for a in self.city["agencies"]])

    def _ticket_steps(self, kind):
        """(offset ms, status, fields) for one ticket; fields may hold
        category, agency, district, title."""
        rng = self.rng
        cat = rng.choice(REPORT_CATEGORIES)
        dist = rng.choice(self.districts)["name"]
        ag = self._agency_for(cat)
        recv = {"category": cat, "district": dist}
        if rng.random() < 0.7:
            recv["title"] = rng.choice(TITLES[cat])
        d = self.rand_ms(5 * MIN, 12 * HOUR)
        p = d + self.rand_ms(10 * MIN, 24 * HOUR)
        s = p + self.rand_ms(1 * HOUR, 5 * DAY)
        if kind == "new_open":
            return [(0, "received", recv)]
        if kind == "dispatched_open":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag})]
        if kind == "in_progress_open":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (p, "in_progress", {})]
        if kind == "resolved":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (p, "in_progress", {}),
                    (s, "resolved", {})]
        if kind == "resolved_fast":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}),
                    (d + self.rand_ms(10 * MIN, 6 * HOUR), "resolved", {})]
        if kind == "rejected":
            if rng.random() < 0.5:
                return [(0, "received", recv), (d, "rejected", {})]
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (p, "rejected", {})]
        if kind == "reopened":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (s, "resolved", {}),
                    (s + self.rand_ms(2 * HOUR, 2 * DAY), "in_progress", {})]
        if kind == "reopened_resolved":
            r2 = s + self.rand_ms(2 * HOUR, 2 * DAY)
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (s, "resolved", {}),
                    (r2, "in_progress", {}), (r2 + self.rand_ms(1 * HOUR, 3 * DAY), "resolved", {})]
        if kind == "no_received":
            # no received event, no category: received_at is the dispatch time
            steps = [(0, "dispatched", {"agency": ag, "district": dist}), (p - d, "in_progress", {})]
            if rng.random() < 0.5:
                steps.append((s - d, "resolved", {}))
            return steps
        if kind == "redispatch":
            other = rng.choice([a["code"] for a in self.city["agencies"] if a["code"] != ag])
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}),
                    (p, "dispatched", {"agency": other}), (p + self.rand_ms(1 * HOUR, 1 * DAY), "in_progress", {})]
        if kind == "district_change":
            other = rng.choice([x["name"] for x in self.districts if x["name"] != dist])
            return [(0, "received", recv), (d, "dispatched", {"agency": ag, "district": other}),
                    (p, "in_progress", {})]
        if kind == "tie_status":
            if rng.random() < 0.5:
                return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (d, "in_progress", {})]
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (s, "in_progress", {}),
                    (s, "resolved", {})]
        if kind == "agency_tie":
            a, b = rng.sample([x["code"] for x in self.city["agencies"]], 2)
            return [(0, "received", recv), (d, "dispatched", {"agency": a}), (d, "dispatched", {"agency": b}),
                    (p, "in_progress", {})]
        if kind == "sla_exact":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (72 * HOUR, "resolved", {})]
        if kind == "sla_exact_plus":
            return [(0, "received", recv), (d, "dispatched", {"agency": ag}), (72 * HOUR + 1, "resolved", {})]
        raise ValueError(kind)

    def _ticket_time(self, kind):
        t0 = self.t0_ms
        if kind in ("sla_exact", "sla_exact_plus"):
            return self.rand_ms(t0 - 20 * DAY, t0 - 4 * DAY)
        r = self.rng.random()
        if r < 0.15:
            return self.rand_ms(t0 - 10 * HOUR, t0)
        if r < 0.50:
            return self.rand_ms(t0 - 7 * DAY, t0 - 10 * HOUR)
        return self.rand_ms(t0 - 35 * DAY, t0 - 7 * DAY)

    def _tickets(self, n):
        kinds, weights = zip(*self.TICKET_KINDS)
        # the exact-SLA kinds at least once each
        plan = ["sla_exact", "sla_exact_plus"] + [self.rng.choices(kinds, weights)[0] for _ in range(n - 2)]
        for i, kind in enumerate(plan, 1):
            for _ in range(50):
                r = self._ticket_time(kind)
                steps = self._ticket_steps(kind)
                steps = [s for s in steps if r + s[0] <= self.t0_ms + MAX_FUTURE]
                if kind in ("sla_exact", "sla_exact_plus") and len(steps) < 3:
                    continue
                if not steps or not all(self.safe(r + off) for off, _, _ in steps):
                    continue
                ticket = f"LPR-{i:05d}"
                for off, status, fields in steps:
                    body = {"ticket": ticket, "status": status}
                    for k in ("category", "agency", "title"):
                        if k in fields:
                            body[k] = fields[k]
                    e = {"id": self.new_id("reports"), "type": "report", "occurred_at": self.fmt(r + off),
                         "report": body}
                    self.where(e, p_district=0.0, p_location=0.4, district=fields.get("district"))
                    self.events["reports"].append(e)
                self.feature(f"ticket:{kind}")
                break

    # -- sensors --------------------------------------------------------------

    def _sensors(self):
        gauges = {g["id"]: g for g in self.city["gauges"]}
        for sid, offline_after_s, profile in GAUGES:
            g = gauges[sid]
            self.sensors[sid] = {
                "name": f"{g['name']} ({g['river']})",
                "metric": "water_level",
                "unit": "cm",
                "location": {"lat": g["lat"], "lon": g["lon"]},
                "district": g["district"],
                "thresholds": dict(g["thresholds"]),
                "offline_after_s": offline_after_s,
            }
            self._readings(sid, g["thresholds"], profile)

    def _reading(self, sid, ms, value):
        assert self.safe(ms), "reading times are chosen clear of the window edges"
        v = round(value, 1)
        if v == int(v) and self.rng.random() < 0.5:
            v = int(v)                                   # JSON integers are numbers too
        self.events["sensors"].append({"id": self.new_id("sensors"), "type": "sensor",
                                       "occurred_at": self.fmt(ms),
                                       "sensor": {"sensor_id": sid, "value": v}})

    def _history(self, start, end, step=30 * MIN):
        """Reading times every `step` in [start, end], skipping unsafe ones."""
        t = start
        while t <= end:
            jittered = t + self.rng.randint(-90 * SEC, 90 * SEC)
            if self.safe(jittered):
                yield jittered
            t += step

    def _readings(self, sid, th, profile):
        t0 = self.t0_ms
        noise = lambda: self.rng.uniform(-4, 4)  # noqa: E731
        if profile == "never":
            return
        if profile == "peaked":
            # normal, then up through siaga (300) and awas (400) 8..6 h ago, normal now
            for t in self._history(t0 - 24 * HOUR, t0 - 30 * MIN):
                hours_ago = (t0 - t) / HOUR
                v = 420 if 6.5 <= hours_ago <= 7.5 else 330 if 6 <= hours_ago <= 8 else 180
                self._reading(sid, t, v + noise())
            self._reading(sid, t0 - 12 * MIN, 185.3)
            self.feature("sensor:peaked")
        elif profile == "rising":
            # 3-level, siaga 250 / awas 350: flat, then rising into awas
            for t in self._history(t0 - 24 * HOUR, t0 - 3 * HOUR):
                self._reading(sid, t, 150 + noise())
            for mins, v in ((150, 190), (120, 215), (95, 240), (40, 262), (20, 318), (8, 349.9)):
                self._reading(sid, t0 - mins * MIN, v)
            self._reading(sid, t0 + 3 * MIN, 362.5)      # the latest reading is 3 min ahead
            self.feature("sensor:rising_future")
        elif profile == "tie_siaga":
            # 4-level, waspada 150 / siaga 220 / awas 300: below siaga all day,
            # then two readings at one instant: the greater (siaga) wins
            for t in self._history(t0 - 24 * HOUR, t0 - 20 * MIN):
                self._reading(sid, t, 170 + 35 * self.rng.random())
            tie = t0 - 7 * MIN
            self._reading(sid, tie, 214.0)
            self._reading(sid, tie, 226.5)
            self.feature("sensor:tie")
        elif profile == "waspada":
            # 4-level, waspada 90 / siaga 120 / awas 150: an excursion to siaga 5 h ago
            for t in self._history(t0 - 24 * HOUR, t0 - 15 * MIN):
                hours_ago = (t0 - t) / HOUR
                v = 130 if 4.5 <= hours_ago <= 5.5 else 80
                self._reading(sid, t, v + noise())
            pair = t0 - 10 * HOUR + 7 * MIN
            if self.safe(pair):
                self._reading(sid, pair, 70)
                self._reading(sid, pair, 80)
            self._reading(sid, t0 - 4 * MIN, 97.5)
        elif profile == "silent":
            for t in self._history(t0 - 24 * HOUR, t0 - 3 * HOUR):
                self._reading(sid, t, 70 + noise())
            self.feature("sensor:silent")
        else:
            raise ValueError(profile)

    # -- views ----------------------------------------------------------------

    def posted(self):
        """All (poster, event) pairs."""
        return [(p, e) for p in ("calls", "reports", "sensors") for e in self.events[p]]

    def all_events(self):
        return [e for _, e in self.posted()]

    def __len__(self):
        return sum(len(v) for v in self.events.values())


# --------------------------------------------------------------------------
# How the dataset is sent
# --------------------------------------------------------------------------


class Request:
    def __init__(self, poster, events, fmt, new, dups):
        self.poster, self.events, self.fmt = poster, events, fmt
        self.new, self.dups = new, dups       # expected "accepted" and "duplicates"

    def __repr__(self):
        return f"<Request {self.poster} {self.fmt} n={len(self.events)} new={self.new} dups={self.dups}>"


def _size(rng):
    r = rng.random()
    if r < 0.6:
        return rng.randint(1, 20)
    return rng.randint(1, 200)


def plan_requests(ds, seed=7, sequential_share=0.6, threads=4):
    """Splits the dataset into requests.

    Returns (sequential, concurrent): `sequential` is a list of Requests
    sent one after another, each with the exact accepted/duplicates counts
    expected; `concurrent` is a list of `threads` lists of Requests sent in
    parallel, some of them overlapping each other (so only the totals of the
    concurrent phase are exact).  Formats: JSON array (1..200 events), single
    object, NDJSON; re-posts of already sent events are mixed in."""
    rng = random.Random(seed)
    queues = {p: list(evs) for p, evs in ds.events.items()}
    for q in queues.values():
        rng.shuffle(q)
    sent = {p: [] for p in queues}
    total = len(ds)
    target = int(total * sequential_share)
    n_sent = 0
    sequential = []

    def pick_poster():
        live = [p for p in queues if queues[p]]
        return rng.choices(live, [len(queues[p]) for p in live])[0]

    while n_sent < target:
        p = pick_poster()
        fmt = rng.choices(["json", "object", "ndjson"], [5, 2, 3])[0]
        if fmt == "object":
            if sent[p] and rng.random() < 0.2:
                fresh, dups = [], [rng.choice(sent[p])]        # a single re-post
            else:
                fresh, dups = [queues[p].pop()], []
        else:
            fresh = [queues[p].pop() for _ in range(min(_size(rng), len(queues[p])))]
            dups = []
            if sent[p] and rng.random() < 0.3:                 # some re-posts mixed in
                dups = rng.sample(sent[p], min(len(sent[p]), rng.randint(1, 12)))
            if sent[p] and rng.random() < 0.05:                # a whole batch of re-posts
                queues[p].extend(fresh)
                fresh = []
                dups = rng.sample(sent[p], min(len(sent[p]), rng.randint(1, 40)))
        batch = fresh + dups
        if not batch:
            continue
        rng.shuffle(batch)
        sequential.append(Request(p, batch, fmt, len(fresh), len(dups)))
        sent[p].extend(fresh)
        n_sent += len(fresh)

    # The rest goes in parallel, with overlaps between the threads.
    batches = []
    for p in queues:
        q = queues[p]
        while q:
            fmt = rng.choices(["json", "object", "ndjson"], [5, 1, 3])[0]
            k = 1 if fmt == "object" else min(_size(rng), len(q))
            batches.append([p, [q.pop() for _ in range(k)], fmt])
    rng.shuffle(batches)
    # Overlaps: a copy of some events of another batch of the same poster,
    # or of events sent in the sequential phase.
    for b in batches:
        if b[2] == "object" or rng.random() > 0.25:
            continue
        others = [x for x in batches if x is not b and x[0] == b[0]]
        pool = [e for x in others for e in x[1]] + sent[b[0]]
        extra = [e for e in rng.sample(pool, min(len(pool), rng.randint(1, 8))) if e not in b[1]]
        b[1] = b[1] + extra
        rng.shuffle(b[1])
    concurrent = [[] for _ in range(threads)]
    for i, (p, evs, fmt) in enumerate(batches):
        concurrent[i % threads].append(Request(p, evs, fmt, None, None))
    return sequential, concurrent
