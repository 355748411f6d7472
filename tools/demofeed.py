#!/usr/bin/env python3
"""demofeed - a live demo feed for kendali, simulating Kota Semarang.

Plays the three kinds of source a city command centre receives, through the
public HTTP API exactly as an agency's system would:

  * the 112 call centre: calls received -> answered -> closed (some abandoned),
    volumes following the hour of day in WIB;
  * citizen complaints (Lapor): tickets received -> dispatched to an agency
    (OPD) that handles the category -> in_progress -> resolved, some rejected,
    a few reopened, some left to run past the 72 h SLA;
  * river water-level gauges: a slow tidal/diurnal baseline well below the
    alert levels, a rising-water episode on a couple of rivers (siaga, then
    awas, then receding; compressed to ~10 minutes every ~30 minutes), and one
    gauge that goes silent so that it shows offline.

It registers every gauge first (PUT /api/v1/sensors/{id}), can post days of
history quickly (--backfill-days), then runs live, posting a batch about once a
second.  Python 3 standard library only.

  tools/demofeed.py --url http://127.0.0.1:8080 --key KEY --backfill-days 3
  tools/demofeed.py --dry-run --backfill-days 2     # self-check, no server
  tools/demofeed.py --key BATANG_KEY --data data/tenants/batang --scale 0.4

--data is Semarang's city file (data/semarang.json, the default) or a tenant's
reference set (a directory of docs/reference-data.md's format: its kecamatan,
agencies and gauges); the set has no coordinates, so its kecamatan are placed
around the regency's centre (REGION_CENTRES, or --centre) and each gauge's
river is its name before " - ".  The first river of a set floods unless
--flood-rivers says otherwise.

Event ids are random per run (call-<uuid>-<n>, report-<uuid>-<n>) and stable
across retries, so a batch re-sent after an error is never stored twice;
sensor readings use sensor-<sensor_id>-<unix time>.  --seed makes the
simulated content (volumes, categories, levels) reproducible, not the ids.
"""

import argparse
import collections
import concurrent.futures
import datetime
import heapq
import http.client
import json
import math
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "data", "semarang.json")

# Approximate centres of the regencies whose reference sets are shipped
# (Kemendagri code -> lat, lon), for a set without coordinates.
REGION_CENTRES = {"33.74": (-6.99, 110.42), "33.25": (-6.96, 109.83),
                  "33.18": (-6.75, 111.04), "33.10": (-7.70, 110.60),
                  "33.17": (-6.80, 111.45), "33.08": (-7.48, 110.22)}

WIB_OFFSET = 7 * 3600
WIB = datetime.timezone(datetime.timedelta(seconds=WIB_OFFSET), "WIB")
HOUR = 3600.0
DAY = 86400.0
SLA_S = 72 * HOUR

# --- the API's field rules (docs/spec/api.md) --------------------------------

CALL_STATUSES = ("received", "answered", "closed", "abandoned")
CALL_CATEGORIES = ("emergency", "fire", "medical", "police", "disaster",
                   "complaint", "info", "other")
REPORT_STATUSES = ("received", "dispatched", "in_progress", "resolved",
                   "rejected")
REPORT_CATEGORIES = ("flood", "road", "drainage", "waste", "streetlight",
                     "traffic", "public_order", "health", "administration",
                     "other")
# Tie-break order of statuses with the same occurred_at (docs/kpis.md).
CALL_RANK = {"received": 0, "answered": 1, "abandoned": 2, "closed": 3}
REPORT_RANK = {"received": 0, "dispatched": 1, "in_progress": 2,
               "resolved": 3, "rejected": 4}
LEVELS = ("waspada", "siaga", "awas")
MAX_BATCH_EVENTS = 1000
MAX_BODY_BYTES = 1 << 20
FUTURE_SKEW_S = 300

# --- what Semarang looks like -------------------------------------------------

# Relative call volume by hour of day (WIB, 00..23): low at night, a peak
# mid-morning and a higher one in the evening.
CALL_PROFILE = [0.35, 0.25, 0.20, 0.18, 0.22, 0.40, 0.70, 1.00, 1.35, 1.60,
                1.70, 1.55, 1.30, 1.25, 1.30, 1.35, 1.45, 1.60, 1.75, 1.80,
                1.55, 1.20, 0.85, 0.55]
# Citizen reports come from an app: office hours and after work.
REPORT_PROFILE = [0.15, 0.08, 0.05, 0.05, 0.10, 0.30, 0.70, 1.20, 1.60, 1.75,
                  1.70, 1.50, 1.20, 1.35, 1.45, 1.35, 1.20, 1.10, 1.20, 1.40,
                  1.45, 1.20, 0.75, 0.35]

# Share of calls per category at a 112 centre: many information requests,
# complaints and hang-ups besides the real emergencies.
CALL_MIX = {"info": 0.24, "complaint": 0.18, "medical": 0.16, "police": 0.10,
            "other": 0.14, "emergency": 0.08, "fire": 0.06, "disaster": 0.04}
# Median call handling time in seconds (answer -> close).
CALL_HANDLING_S = {"emergency": 300, "fire": 240, "medical": 270,
                   "police": 240, "disaster": 300, "complaint": 200,
                   "info": 100, "other": 60}

REPORT_MIX = {"road": 0.20, "waste": 0.14, "drainage": 0.12,
              "streetlight": 0.10, "public_order": 0.10, "flood": 0.08,
              "traffic": 0.08, "administration": 0.08, "other": 0.06,
              "health": 0.04}
# Median hours from work started to resolved, per category.
REPORT_FIX_H = {"flood": 10, "road": 28, "drainage": 22, "waste": 12,
                "streetlight": 22, "traffic": 8, "public_order": 16,
                "health": 14, "administration": 30, "other": 24}
REPORT_TITLES = {
    "flood": ["Genangan air setinggi lutut", "Air meluap dari saluran ke jalan",
              "Rob masuk ke permukiman warga"],
    "road": ["Jalan berlubang membahayakan pengendara",
             "Aspal rusak bekas galian belum diperbaiki", "Paving jalan amblas"],
    "drainage": ["Saluran air tersumbat sampah", "Gorong-gorong mampet",
                 "Selokan meluap saat hujan"],
    "waste": ["Sampah menumpuk belum diangkut", "TPS liar di pinggir jalan",
              "Pembakaran sampah mengganggu warga"],
    "streetlight": ["Lampu PJU mati", "Lampu penerangan jalan berkedip",
                    "Tiang PJU miring hampir roboh"],
    "traffic": ["Lampu lalu lintas mati", "Parkir liar menyebabkan macet",
                "Rambu lalu lintas roboh"],
    "public_order": ["PKL berjualan di trotoar", "Bangunan liar di bantaran sungai",
                     "Balap liar pada malam hari"],
    "health": ["Kasus DBD di lingkungan RT", "Antrean panjang di puskesmas",
               "Genangan menjadi sarang nyamuk"],
    "administration": ["KTP-el belum jadi", "Kesulitan mengurus akta kelahiran",
                       "Tagihan PBB tidak sesuai"],
    "other": ["Air PDAM tidak mengalir", "Bantuan sosial belum diterima",
              "Pohon tumbang menutup jalan"],
}
# Approximate population of each kecamatan (thousands); only used to weight
# where calls and reports come from.  Unknown names weigh 80.
DISTRICT_WEIGHT = {"Pedurungan": 193, "Tembalang": 189, "Semarang Barat": 149,
                   "Banyumanik": 142, "Ngaliyan": 141, "Genuk": 123,
                   "Semarang Utara": 118, "Gunungpati": 98, "Mijen": 80,
                   "Candisari": 76, "Gayamsari": 71, "Semarang Timur": 68,
                   "Semarang Selatan": 62, "Gajahmungkur": 60,
                   "Semarang Tengah": 55, "Tugu": 32}

DEFAULT_FLOOD_RIVERS = "Kali Beringin,Banjir Kanal Timur"   # Semarang's
DEFAULT_SILENT_GAUGE = "SMG-SIANGKER-BANDARA"


# --- small helpers ----------------------------------------------------------

def log(msg):
    stamp = time.strftime("%H:%M:%S")
    print(f"demofeed {stamp} {msg}", file=sys.stderr, flush=True)


_limited = {}
_limited_lock = threading.Lock()


def log_limited(key, msg, every=10.0):
    """Logs msg at most once every `every` seconds per key, with a count of
    the ones held back."""
    now = time.monotonic()
    with _limited_lock:
        last, held = _limited.get(key, (-1e9, 0))
        if now - last < every:
            _limited[key] = (last, held + 1)
            return
        _limited[key] = (now, 0)
    log(msg + (f" (and {held} more like it)" if held else ""))


def say(msg):
    print(msg, flush=True)


def rfc3339(t):
    """Whole seconds, in WIB: 2026-11-23T08:15:00+07:00."""
    return datetime.datetime.fromtimestamp(int(t), WIB).isoformat()


def wib_hour(t):
    return ((t + WIB_OFFSET) % DAY) / HOUR


def wib_day_start(t):
    return math.floor((t + WIB_OFFSET) / DAY) * DAY - WIB_OFFSET


def profile_at(profile, t):
    h = wib_hour(t)
    i = int(h) % 24
    f = h - int(h)
    return profile[i] * (1 - f) + profile[(i + 1) % 24] * f


def normalised(profile):
    mean = sum(profile) / len(profile)
    return [p / mean for p in profile]


CALL_PROFILE = normalised(CALL_PROFILE)
REPORT_PROFILE = normalised(REPORT_PROFILE)


def weighted(rng, mix):
    keys = list(mix)
    return rng.choices(keys, weights=[mix[k] for k in keys])[0]


def lognorm(rng, median, sigma, lo, hi):
    return min(hi, max(lo, median * math.exp(rng.gauss(0.0, sigma))))


def daytime(rng, m):
    """Moves a time that falls at night (22:00-06:00 WIB) to the next
    morning, 06:30 plus up to two hours: agencies' crews work by day."""
    h = wib_hour(m)
    if 6.0 <= h < 22.0:
        return m
    start = wib_day_start(m)
    if h >= 22.0:
        start += DAY
    return start + 6.5 * HOUR + rng.uniform(0, 2 * HOUR)


def gauge_label(g):
    river, name = g.get("river", ""), g["name"]
    if river and river.lower() not in name.lower():
        return f"{river} - {name}"
    return name


def level_of(thresholds, v):
    for name in ("awas", "siaga", "waspada"):
        if name in thresholds and v >= thresholds[name]:
            return name
    return "normal"


# --- the simulation -----------------------------------------------------------

class Stream:
    """A non-homogeneous Poisson process by thinning, in model time."""

    def __init__(self, rng, rate_fn, rate_max, make, start):
        self.rng, self.rate_fn, self.rate_max, self.make = rng, rate_fn, rate_max, make
        self.next = start + rng.expovariate(rate_max) if rate_max > 0 else math.inf

    def advance(self, until, catch_up_limit=None):
        if catch_up_limit is not None and self.next < until - catch_up_limit:
            self.next = until - catch_up_limit
        while self.next <= until:
            m = self.next
            if self.rng.random() * self.rate_max < self.rate_fn(m):
                self.make(m)
            self.next += self.rng.expovariate(self.rate_max)


class Gauge:
    def __init__(self, g, rng, index):
        self.id = g["id"]
        self.raw = g
        self.index = index
        self.district = g.get("district")
        self.lat, self.lon = g.get("lat"), g.get("lon")
        self.thresholds = {k: v for k, v in g.get("thresholds", {}).items() if k in LEVELS}
        given = [self.thresholds[k] for k in LEVELS if k in self.thresholds]
        self.lowest = given[0] if given else 200.0
        self.highest = given[-1] if given else 300.0
        self.siaga = self.thresholds.get("siaga", self.highest)
        # Baseline: 30-50 % of the lowest alert level; near the coast the
        # tide shows (semi-diurnal M2 plus diurnal K1), inland an afternoon
        # rain bump.  All of it stays well under the first alert level.
        self.base = self.lowest * rng.uniform(0.30, 0.48)
        coastal = self.lat is not None and self.lat > -6.972
        self.tide = self.lowest * (0.10 if coastal else 0.03)
        self.rain = self.lowest * (0.03 if coastal else 0.07)
        self.phase1 = rng.uniform(0, 44714.0)
        self.phase2 = rng.uniform(0, 86164.0)
        self.noise = max(0.3, self.lowest * 0.004)
        self.episodes = []          # (start, rise, hold, fall, peak), model time
        self.live_flood = None      # (first_start, period, duration, peak)
        self.silent_since = math.inf
        self.enabled = True         # False: the server did not take its registration
        self.next_w = math.inf      # wall time of the next live reading

    def baseline(self, m):
        tide = self.tide * (0.7 * math.cos(2 * math.pi * (m - self.phase1) / 44714.0)
                            + 0.3 * math.cos(2 * math.pi * (m - self.phase2) / 86164.0))
        h = wib_hour(m)
        rain = self.rain * max(0.0, math.cos(math.pi * (h - 16.0) / 12.0)) ** 4
        return self.base + tide + rain

    @staticmethod
    def _bump(x, rise, hold, fall):
        """0 -> 1 (smoothstep) over rise, 1 over hold, 1 -> 0 over fall."""
        def smooth(u):
            return u * u * (3 - 2 * u)
        if x < 0 or x >= rise + hold + fall:
            return 0.0
        if x < rise:
            return smooth(x / rise)
        if x < rise + hold:
            return 1.0
        return smooth(1.0 - (x - rise - hold) / fall)

    def in_episode(self, m):
        for (start, rise, hold, fall, _) in self.episodes:
            if start <= m < start + rise + hold + fall:
                return True
        if self.live_flood is not None:
            first, period, duration, _ = self.live_flood
            return m >= first and (m - first) % period < duration
        return False

    def level(self, m):
        v = self.baseline(m)
        s = 0.0
        peak = v
        for (start, rise, hold, fall, pk) in self.episodes:
            b = self._bump(m - start, rise, hold, fall)
            if b > s:
                s, peak = b, pk
        if self.live_flood is not None:
            first, period, duration, pk = self.live_flood
            if m >= first:
                x = (m - first) % period
                b = self._bump(x, 0.4 * duration, 0.2 * duration, 0.4 * duration)
                if b > s:
                    s, peak = b, pk
        return v + (peak - v) * s

    def reading(self, rng, m):
        v = self.level(m) + rng.gauss(0.0, self.noise)
        return round(max(0.0, v), 1)


class Sim:
    """Generates events in model time.  Model time equals wall time up to
    t0 (the start of the live part); after it, it runs `speed` times as fast.
    Every event is stamped with the wall time at which it happens."""

    def __init__(self, data, args, rng, t0):
        self.rng = rng
        self.args = args
        self.t0 = t0
        self.speed = args.speed
        self.seq = 0
        self.heap = []               # (wall time, seq, event)
        self.collect = None          # list of (model time, seq, event) during backfill
        self.collect_until = -math.inf

        self.districts = {d["name"]: d for d in data["districts"]}
        self.district_mix = {name: DISTRICT_WEIGHT.get(name, 80) for name in self.districts}
        self.handlers = collections.defaultdict(list)
        for a in data["agencies"]:
            for c in a.get("handles", []):
                self.handlers[c].append(a["code"])
        self.all_agencies = [a["code"] for a in data["agencies"]]
        self.call_mix = {k: v for k, v in CALL_MIX.items()
                         if k in data.get("call_categories", CALL_CATEGORIES)}

        self.gauges = [Gauge(g, rng, i) for i, g in enumerate(data["gauges"])]
        self.by_river = collections.defaultdict(list)
        for g in self.gauges:
            self.by_river[g.raw.get("river", g.id)].append(g)

        scale = args.scale
        self.call_rate = args.calls_per_day * scale / DAY
        self.report_rate = args.reports_per_day * scale / DAY
        self.flood_call_rate = 12.0 * scale / HOUR       # per gauge at siaga or more
        self.flood_report_rate = 5.0 * scale / HOUR
        self.streams = []

        self._setup_live_flood()
        self._setup_silent(args)

    # -- time ---------------------------------------------------------------
    def model(self, w):
        return w if w <= self.t0 else self.t0 + (w - self.t0) * self.speed

    def wall(self, m):
        return m if m <= self.t0 else self.t0 + (m - self.t0) / self.speed

    # -- where events go ----------------------------------------------------
    def _push(self, m, ev):
        self.seq += 1
        if self.collect is not None and m <= self.collect_until:
            self.collect.append((m, self.seq, ev))
        else:
            heapq.heappush(self.heap, (self.wall(m), self.seq, ev))

    def _emit(self, items):
        for m, ev in items:
            self._push(m, ev)

    def pop_due(self, w):
        out = []
        while self.heap and self.heap[0][0] <= w:
            out.append(heapq.heappop(self.heap)[2])
        return out

    def _envelope(self, kind, eid, m, district=None, loc=None):
        ev = {"id": eid, "type": kind, "occurred_at": rfc3339(self.wall(m))}
        if district:
            ev["district"] = district
        if loc:
            ev["location"] = {"lat": loc[0], "lon": loc[1]}
        return ev

    def _jitter(self, lat, lon, sigma=0.008):
        return (round(lat + self.rng.gauss(0, sigma), 5),
                round(lon + self.rng.gauss(0, sigma), 5))

    def _district(self):
        name = weighted(self.rng, self.district_mix)
        d = self.districts[name]
        return name, self._jitter(d["lat"], d["lon"])

    # -- calls --------------------------------------------------------------
    def make_call(self, m0, category=None, place=None):
        rng = self.rng
        u = uuid.uuid4()
        day = datetime.datetime.fromtimestamp(int(self.wall(m0)), WIB).strftime("%Y%m%d")
        call_id = f"112-{day}-{u.hex[:10]}"
        cat = category or weighted(rng, self.call_mix)
        district, loc = place or self._district()
        if rng.random() < 0.08:
            district = None          # caller could not say where
        if rng.random() < 0.25:
            loc = None               # no caller location
        n = 0
        items = []

        def ev(m, status, **extra):
            nonlocal n
            n += 1
            e = self._envelope("call", f"call-{u}-{n}", m,
                               district if status == "received" else None,
                               loc if status == "received" else None)
            body = {"call_id": call_id, "status": status}
            body.update(extra)
            e["call"] = body
            items.append((m, e))

        ev(m0, "received", category=cat)
        load = profile_at(CALL_PROFILE, m0)
        wait = lognorm(rng, 9.0 * (0.6 + 0.4 * load), 0.75, 2.0, 240.0)
        patience = 4.0 + rng.expovariate(1.0 / (35.0 if cat == "other" else 110.0))
        if patience < wait:
            ev(m0 + patience, "abandoned")
        else:
            ev(m0 + wait, "answered")
            handling = lognorm(rng, CALL_HANDLING_S[cat], 0.6, 20.0, 1800.0)
            final = cat
            if rng.random() < 0.05:  # the operator reclassifies the call
                final = weighted(rng, self.call_mix)
            ev(m0 + wait + handling, "closed", category=final)
        self._emit(items)

    # -- citizen reports ----------------------------------------------------
    def report_events(self, m0, category=None, place=None):
        rng = self.rng
        u = uuid.uuid4()
        day = datetime.datetime.fromtimestamp(int(self.wall(m0)), WIB).strftime("%y%m%d")
        ticket = f"LPR-{day}-{u.hex[:8].upper()}"
        cat = category or weighted(rng, REPORT_MIX)
        district, loc = place or self._district()
        title = f"{rng.choice(REPORT_TITLES.get(cat, REPORT_TITLES['other']))} di {district}"
        n = 0
        items = []

        def ev(m, status, **extra):
            nonlocal n
            n += 1
            first = status == "received" and n == 1
            e = self._envelope("report", f"report-{u}-{n}", m,
                               district if first else None, loc if first else None)
            body = {"ticket": ticket, "status": status}
            body.update(extra)
            e["report"] = body
            items.append((m, e))
            return m

        t = ev(m0, "received", category=cat, title=title)
        r = rng.random()
        if r < 0.06:                 # not a valid complaint: rejected on review
            ev(t + lognorm(rng, 1.5 * HOUR, 0.9, 300, 2 * DAY), "rejected")
            return items
        if r < 0.075:                # lost in the queue: never dispatched,
            if rng.random() < 0.5:   # until an administrator closes it weeks later
                ev(t + rng.uniform(10, 25) * DAY, "rejected")
            return items
        handlers = self.handlers.get(cat) or self.all_agencies
        agency = rng.choice(handlers)
        t = daytime(rng, t + lognorm(rng, 40 * 60, 1.0, 180, 20 * HOUR))
        wrong = [a for a in self.all_agencies if a not in handlers]
        if wrong and rng.random() < 0.05:
            # sent to the wrong agency first, then on to the right one
            t = ev(t, "dispatched", agency=rng.choice(wrong))
            t = daytime(rng, t + lognorm(rng, 3 * HOUR, 0.8, 600, 2 * DAY))
        t = ev(t, "dispatched", agency=agency)
        if rng.random() < 0.03:      # the agency says it is not theirs
            ev(daytime(rng, t + lognorm(rng, DAY, 0.7, HOUR, 5 * DAY)), "rejected")
            return items
        t = ev(daytime(rng, t + lognorm(rng, 5 * HOUR, 1.0, 600, 4 * DAY)), "in_progress")
        if rng.random() < 0.02:      # stalled: resolved only weeks later, if ever
            if rng.random() < 0.6:
                ev(daytime(rng, t + rng.uniform(7, 20) * DAY), "resolved")
            return items
        t = ev(daytime(rng, t + lognorm(rng, REPORT_FIX_H[cat] * HOUR, 0.85, 1800, 14 * DAY)),
               "resolved")
        if rng.random() < 0.04:      # the citizen says it is not fixed: reopened
            t = ev(t + lognorm(rng, DAY, 0.7, HOUR, 5 * DAY), "in_progress")
            if rng.random() < 0.7:
                ev(daytime(rng, t + lognorm(rng, DAY, 0.8, HOUR, 7 * DAY)), "resolved")
        return items

    def make_report(self, m0, category=None, place=None):
        self._emit(self.report_events(m0, category, place))

    def make_backlog_report(self, m0):
        """A report from before the history window, kept only if it is still
        open when the window starts (with its earlier events): the queue a
        real system carries."""
        items = self.report_events(m0)
        last = max(items, key=lambda it: it[0])
        still_open = last[1]["report"]["status"] not in ("resolved", "rejected")
        if still_open or last[0] > self.window_start:
            self._emit(items)

    # -- floods -------------------------------------------------------------
    def flooding(self, m):
        """Gauges at siaga or above at model time m (to the quarter minute)."""
        key = int(m // 15)
        if key != getattr(self, "_flood_key", None):
            self._flood_key = key
            self._flood_val = [g for g in self.flood_prone
                               if g.in_episode(m) and g.level(m) >= g.siaga]
        return self._flood_val

    def _flood_place(self, m):
        hit = self.flooding(m)
        if not hit:
            return None
        g = self.rng.choice(hit)
        if g.lat is None:
            return self._district()
        return g.district or self._district()[0], self._jitter(g.lat, g.lon, 0.01)

    def make_flood_call(self, m):
        place = self._flood_place(m)
        if place:
            cat = weighted(self.rng, {"disaster": 0.6, "emergency": 0.25, "info": 0.15})
            self.make_call(m, cat, place)

    def make_flood_report(self, m):
        place = self._flood_place(m)
        if place:
            self.make_report(m, weighted(self.rng, {"flood": 0.8, "drainage": 0.2}), place)

    def _setup_live_flood(self):
        a = self.args
        names = [r.strip() for r in (a.flood_rivers or "").split(",") if r.strip()]
        if len(names) == 1 and names[0].lower() == "none":
            names = []
        self.flood_prone = []
        for k, river in enumerate(names):
            gauges = self.by_river.get(river)
            if not gauges:
                log(f"warning: no gauge on river {river!r} in the data file; "
                    f"rivers: {', '.join(sorted(self.by_river))}")
                continue
            # downstream gauges (closer to the coast, greater latitude) later
            gauges = sorted(gauges, key=lambda g: g.lat if g.lat is not None else 0)
            for j, g in enumerate(gauges):
                first = self.t0 + a.flood_first + k * 90.0 + j * 45.0
                peak = g.highest + 0.12 * max(g.highest - g.siaga, 0.1 * g.highest)
                g.live_flood = (first, a.flood_period, a.flood_duration, peak)
                self.flood_prone.append(g)

    def _setup_silent(self, args):
        self.silent = None
        if args.silent_gauge and args.silent_gauge.lower() != "none":
            for g in self.gauges:
                if g.id == args.silent_gauge:
                    self.silent = g
            if self.silent is None:
                log(f"warning: --silent-gauge {args.silent_gauge}: no such gauge in the data file")
        if self.silent is not None:
            # Quiet for the last 5 hours of any history, and from the start
            # of the live part.
            self.silent.silent_since = self.t0 - (5 * HOUR if args.backfill_days > 0 else 0)

    def reading_event(self, g, w):
        m = self.model(w)
        value = g.reading(self.rng, m)
        ev = {"id": f"sensor-{g.id}-{int(w)}", "type": "sensor",
              "occurred_at": rfc3339(w), "sensor": {"sensor_id": g.id, "value": value}}
        return m, ev

    # -- registry -----------------------------------------------------------
    def sensor_defs(self):
        out = []
        for g in self.gauges:
            body = {"name": gauge_label(g.raw), "metric": "water_level", "unit": "cm",
                    "thresholds": dict(g.raw.get("thresholds", {})),
                    "offline_after_s": self.args.offline_after}
            if g.lat is not None and g.lon is not None:
                body["location"] = {"lat": g.lat, "lon": g.lon}
            if g.district:
                body["district"] = g.district
            out.append((g.id, body))
        return out

    # -- history ------------------------------------------------------------
    def backfill(self, days):
        """Returns the events of `days` days before t0, oldest first; the
        later events of lifecycles started in that window wait in the heap."""
        rng = self.rng
        t0 = self.t0
        ws = t0 - days * DAY
        self.window_start = ws
        self.collect = []
        self.collect_until = t0

        # Past floods: an afternoon of heavy rain about every other day, on one
        # river, up to siaga (never awas), receding well before now.
        n_ep = max(1, int(round(days / 2))) if days >= 1 else 0
        rivers = sorted(self.by_river)
        for _ in range(n_ep):
            river = rng.choice(rivers)
            gauges = sorted(self.by_river[river], key=lambda g: g.lat or 0)
            lo, hi = ws + 2 * HOUR, t0 - 8 * HOUR
            if hi <= lo:
                break
            start = rng.uniform(lo, hi)
            day0 = wib_day_start(start)
            afternoon = day0 + rng.uniform(13, 16) * HOUR
            if lo <= afternoon <= hi:
                start = afternoon
            for j, g in enumerate(gauges):
                top = g.siaga + 0.3 * (g.highest - g.siaga) if g.highest > g.siaga \
                    else g.siaga * 1.05
                g.episodes.append((start + j * 1800.0, 2 * HOUR, 1 * HOUR, 2 * HOUR, top))
            self.flood_prone_history = getattr(self, "flood_prone_history", []) + gauges

        # Tickets from the week before the window that are still open in it.
        if days > 0:
            backlog = Stream(rng, lambda m: self.report_rate * profile_at(REPORT_PROFILE, m),
                             self.report_rate * max(REPORT_PROFILE), self.make_backlog_report,
                             ws - 7 * DAY)
            backlog.advance(ws)

        self._make_streams(ws)
        for s in self.streams:
            s.advance(t0)

        # Hourly readings, and a last one now.
        for g in self.gauges:
            if not g.enabled:
                continue
            h = math.ceil(ws / HOUR) * HOUR
            while h <= t0:
                if h < g.silent_since:
                    m, ev = self.reading_event(g, h)
                    self.collect.append((m, self._next_seq(), ev))
                h += HOUR
            if int(t0) % int(HOUR) and t0 < g.silent_since:
                m, ev = self.reading_event(g, t0)
                self.collect.append((m, self._next_seq(), ev))

        out = self.collect
        self.collect = None
        out.sort(key=lambda it: (it[0], it[1]))
        events = [ev for _, _, ev in out]
        # Each gauge's newest reading goes first (the caller posts it on its
        # own): the older history that follows never becomes a gauge's latest
        # reading, so it raises no offline or level alert on the way.
        newest = {}
        for i, ev in enumerate(events):
            if ev["type"] == "sensor":
                newest[ev["sensor"]["sensor_id"]] = i
        front = sorted(newest.values())
        taken = set(front)
        self.backfill_front = len(front)
        return [events[i] for i in front] + [ev for i, ev in enumerate(events) if i not in taken]

    def _next_seq(self):
        self.seq += 1
        return self.seq

    def _make_streams(self, start):
        rng = self.rng
        flood_gauges = list({g.id: g for g in self.flood_prone
                             + getattr(self, "flood_prone_history", [])}.values())
        self.flood_prone = flood_gauges
        n_fg = max(1, len(flood_gauges))
        self.streams = [
            Stream(rng, lambda m: self.call_rate * profile_at(CALL_PROFILE, m),
                   self.call_rate * max(CALL_PROFILE), self.make_call, start),
            Stream(rng, lambda m: self.report_rate * profile_at(REPORT_PROFILE, m),
                   self.report_rate * max(REPORT_PROFILE), self.make_report, start),
            Stream(rng, lambda m: self.flood_call_rate * len(self.flooding(m)),
                   self.flood_call_rate * n_fg, self.make_flood_call, start),
            Stream(rng, lambda m: self.flood_report_rate * len(self.flooding(m)),
                   self.flood_report_rate * n_fg, self.make_flood_report, start),
        ]

    # -- live ---------------------------------------------------------------
    def start_live(self):
        if not self.streams:
            self._make_streams(self.t0)
        n = len(self.gauges)
        step = self.reading_step = max(1.0, self.args.sensor_interval / self.speed)
        for g in self.gauges:
            g.next_w = max(math.floor(self.t0) + 1.0,
                           self.t0 + (g.index + 1) * step / (n + 1))

    def advance_to(self, w):
        """Generates everything that happens up to wall time w."""
        m = self.model(w)
        for s in self.streams:
            s.advance(m, catch_up_limit=HOUR * self.speed)
        step = self.reading_step
        for g in self.gauges:
            if w - g.next_w > 600:   # we were stopped for a while: skip ahead
                g.next_w = w - (w - g.next_w) % step
            while g.next_w <= w:
                if g.enabled and self.model(g.next_w) < g.silent_since:
                    m_r, ev = self.reading_event(g, g.next_w)
                    heapq.heappush(self.heap, (float(int(g.next_w)), self._next_seq(), ev))
                g.next_w += step


# --- checking events against the API's rules ----------------------------------

RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
SENSOR_ID_RE = re.compile(r"^[A-Za-z0-9._:-]+$")


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_str(errs, where, v, lo, hi, required=True):
    if v is None:
        if required:
            errs.append(f"{where}: missing")
        return
    if not isinstance(v, str):
        errs.append(f"{where}: not a string")
        return
    n = len(v.encode("utf-8"))
    if n < lo or n > hi:
        errs.append(f"{where}: length {n} not in {lo}..{hi}")
    if CONTROL_RE.search(v):
        errs.append(f"{where}: control character")


def _check_location(errs, where, loc):
    if not isinstance(loc, dict):
        errs.append(f"{where}: not an object")
        return
    for k, lo, hi in (("lat", -90, 90), ("lon", -180, 180)):
        v = loc.get(k)
        if not _is_num(v) or not lo <= v <= hi:
            errs.append(f"{where}.{k}: not a number in {lo}..{hi}")


def parse_time(s):
    if not isinstance(s, str) or not RFC3339_RE.match(s):
        return None
    try:
        d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return d.timestamp() if d.tzinfo else None


def check_event(ev, now, sensors):
    """The API's rules for one event (docs/spec/api.md).  Returns problems."""
    errs = []
    if not isinstance(ev, dict):
        return ["event: not an object"]
    _check_str(errs, "id", ev.get("id"), 1, 128)
    typ = ev.get("type")
    if typ not in ("call", "report", "sensor"):
        errs.append(f"type: {typ!r} is not call, report or sensor")
    at = ev.get("occurred_at")
    t = parse_time(at)
    if t is None:
        errs.append(f"occurred_at: {at!r} is not RFC 3339 with an offset")
    else:
        if not at.endswith("+07:00"):
            errs.append(f"occurred_at: {at!r} is not in WIB (+07:00)")
        if now is not None and t > now + FUTURE_SKEW_S:
            errs.append(f"occurred_at: {at} is more than 5 min in the future")
    if "district" in ev:
        _check_str(errs, "district", ev["district"], 1, 64)
    if "location" in ev:
        _check_location(errs, "location", ev["location"])
    for k in ("call", "report", "sensor"):
        if k != typ and k in ev:
            errs.append(f"{k}: present in an event of type {typ}")
    body = ev.get(typ) if typ in ("call", "report", "sensor") else None
    if typ in ("call", "report", "sensor") and not isinstance(body, dict):
        errs.append(f"{typ}: missing or not an object")
        return errs
    if typ == "call":
        _check_str(errs, "call.call_id", body.get("call_id"), 1, 64)
        st = body.get("status")
        if st not in CALL_STATUSES:
            errs.append(f"call.status: {st!r}")
        cat = body.get("category")
        if cat is not None and cat not in CALL_CATEGORIES:
            errs.append(f"call.category: {cat!r}")
        if st == "received" and cat is None:
            errs.append("call.category: required on received")
    elif typ == "report":
        _check_str(errs, "report.ticket", body.get("ticket"), 1, 64)
        st = body.get("status")
        if st not in REPORT_STATUSES:
            errs.append(f"report.status: {st!r}")
        cat = body.get("category")
        if cat is not None and cat not in REPORT_CATEGORIES:
            errs.append(f"report.category: {cat!r}")
        if st == "received" and cat is None:
            errs.append("report.category: required on received")
        _check_str(errs, "report.agency", body.get("agency"), 1, 32,
                   required=(st == "dispatched"))
        _check_str(errs, "report.title", body.get("title"), 1, 200, required=False)
    elif typ == "sensor":
        sid = body.get("sensor_id")
        _check_str(errs, "sensor.sensor_id", sid, 1, 64)
        if isinstance(sid, str) and not SENSOR_ID_RE.match(sid):
            errs.append(f"sensor.sensor_id: {sid!r} has characters other than A-Z a-z 0-9 . _ : -")
        if sensors is not None and sid not in sensors:
            errs.append(f"sensor.sensor_id: {sid!r} is not registered")
        if not _is_num(body.get("value")):
            errs.append("sensor.value: not a finite number")
    return errs


def check_sensor_def(sid, body):
    errs = []
    _check_str(errs, "sensor_id", sid, 1, 64)
    if isinstance(sid, str) and not SENSOR_ID_RE.match(sid):
        errs.append(f"sensor_id: {sid!r} has characters other than A-Z a-z 0-9 . _ : -")
    _check_str(errs, "name", body.get("name"), 1, 200)
    _check_str(errs, "metric", body.get("metric"), 1, 64)
    _check_str(errs, "unit", body.get("unit"), 0, 32)
    if "district" in body:
        _check_str(errs, "district", body["district"], 1, 64)
    if "location" in body:
        _check_location(errs, "location", body["location"])
    th = body.get("thresholds", {})
    if not isinstance(th, dict):
        errs.append("thresholds: not an object")
    else:
        for k, v in th.items():
            if k not in LEVELS:
                errs.append(f"thresholds.{k}: not waspada, siaga or awas")
            elif not _is_num(v):
                errs.append(f"thresholds.{k}: not a number")
        vals = [th[k] for k in LEVELS if k in th and _is_num(th[k])]
        if any(a >= b for a, b in zip(vals, vals[1:])):
            errs.append("thresholds: do not ascend")
    oa = body.get("offline_after_s")
    if not isinstance(oa, int) or isinstance(oa, bool) or not 60 <= oa <= 604800:
        errs.append("offline_after_s: not an integer in 60..604800")
    return errs


# --- HTTP ------------------------------------------------------------------------

class Stop(Exception):
    pass


class KeyRefused(Exception):
    pass


class Client:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, url, key, timeout=30.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"--url {url!r}: expected http://HOST:PORT")
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.base = u.path.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def request(self, method, path, body, ctype="application/json"):
        """Returns (status, headers, body bytes); raises OSError or
        http.client.HTTPException when the connection fails.  A request on a
        reused connection that the server had closed is retried once."""
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self.conn = cls(self.host, self.port, timeout=self.timeout)
            headers = {"Authorization": f"Bearer {self.key}",
                       "Content-Type": ctype, "Accept": "application/json",
                       "User-Agent": "kendali-demofeed/1"}
            try:
                self.conn.request(method, self.base + path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, resp.headers, data
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                self.close()
                if fresh or attempt:
                    raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        raise http.client.HTTPException("unreachable")


def problem_text(status, data, batch=None):
    try:
        p = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        p = None
    if not isinstance(p, dict):
        text = data.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
        return f"HTTP {status}: {text or '(empty body)'}", None
    code = p.get("code") or p.get("type") or "?"
    detail = p.get("detail") or p.get("title") or ""
    msg = f"HTTP {status} {code}: {detail}"
    idx = p.get("index")
    if isinstance(idx, int) and not isinstance(idx, bool):
        msg += f" [event {idx}"
        if batch is not None and 0 <= idx < len(batch):
            msg += f" id={batch[idx].get('id')}"
        msg += "]"
    else:
        idx = None
    if p.get("field"):
        msg += f" field={p['field']}"
    return msg, idx


def retry_after(headers, default):
    v = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.2, min(120.0, float(v)))
    except (TypeError, ValueError):
        return default


def backoff(attempt):
    return min(30.0, 0.5 * 2 ** min(attempt, 6)) * random.uniform(0.8, 1.2)


class Outcome:
    OK, RETRY, DROP_ONE, SPLIT, DROP = range(5)

    def __init__(self, kind, msg="", delay=0.0, index=None, accepted=0, dups=0, fatal=False):
        self.kind, self.msg, self.delay, self.index = kind, msg, delay, index
        self.accepted, self.dups, self.fatal = accepted, dups, fatal


def post_once(client, batch, attempt):
    """One POST of a batch; says what to do next."""
    body = json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    try:
        status, headers, data = client.request("POST", "/api/v1/events", body)
    except (OSError, http.client.HTTPException) as e:
        return Outcome(Outcome.RETRY, f"cannot reach {client.host}:{client.port}: {e}",
                       backoff(attempt))
    if status == 202:
        try:
            r = json.loads(data)
            return Outcome(Outcome.OK, accepted=int(r.get("accepted", len(batch))),
                           dups=int(r.get("duplicates", 0)))
        except (ValueError, TypeError, AttributeError):
            return Outcome(Outcome.OK, accepted=len(batch))
    if 200 <= status < 300:
        return Outcome(Outcome.OK, accepted=len(batch))
    msg, idx = problem_text(status, data, batch)
    if status in (429, 503):
        return Outcome(Outcome.RETRY, msg, retry_after(headers, backoff(attempt)))
    if status in (502, 504):
        return Outcome(Outcome.RETRY, msg, backoff(attempt))
    if status == 413:
        return Outcome(Outcome.SPLIT if len(batch) > 1 else Outcome.DROP, msg)
    if status in (403, 422) and idx is not None and 0 <= idx < len(batch):
        return Outcome(Outcome.DROP_ONE, msg, index=idx)
    if status == 401:
        # The key is unknown or revoked: nothing will get through with it.
        return Outcome(Outcome.RETRY, msg, min(60.0, backoff(attempt + 3) * 2), fatal=True)
    if status >= 500 and attempt < 3:
        return Outcome(Outcome.RETRY, msg, backoff(attempt))
    return Outcome(Outcome.DROP, msg)


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = self.dups = self.dropped = self.errors = 0
        self.unauthorized = False

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


def send_blocking(client, batch, counters, stop, what="batch"):
    """Sends one batch, retrying until it is stored, given up, or stop is set."""
    work = [batch]
    while work:
        cur = work.pop()
        attempt = 0
        while cur:
            if stop.is_set():
                raise Stop()
            out = post_once(client, cur, attempt)
            if out.kind == Outcome.OK:
                counters.add(accepted=out.accepted, dups=out.dups)
                break
            counters.add(errors=1)
            if out.fatal:
                counters.unauthorized = True
                raise KeyRefused(out.msg)
            if out.kind == Outcome.RETRY:
                log_limited("retry", f"{out.msg}; retrying in {out.delay:.1f} s")
                attempt += 1
                if stop.wait(out.delay):
                    raise Stop()
            elif out.kind == Outcome.DROP_ONE:
                log_limited("drop-one", f"{out.msg}; dropping that event, re-sending the rest")
                counters.add(dropped=1)
                cur = cur[:out.index] + cur[out.index + 1:]
            elif out.kind == Outcome.SPLIT:
                log(f"{out.msg}; splitting the {what} in two")
                half = len(cur) // 2
                work.append(cur[half:])
                cur = cur[:half]
                attempt = 0
            else:
                log(f"{out.msg}; dropping {len(cur)} event(s)")
                counters.add(dropped=len(cur))
                break


def register_sensors(client, defs, stop):
    """PUTs every gauge; returns the ids the server took."""
    ok = set()
    for sid, body in defs:
        path = "/api/v1/sensors/" + urllib.parse.quote(sid, safe="")
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            if stop.is_set():
                raise Stop()
            try:
                status, headers, resp = client.request("PUT", path, data)
            except (OSError, http.client.HTTPException) as e:
                delay = backoff(attempt)
                log(f"cannot reach {client.host}:{client.port}: {e}; retrying in {delay:.1f} s")
                attempt += 1
                if stop.wait(delay):
                    raise Stop()
                continue
            if 200 <= status < 300:
                ok.add(sid)
                break
            msg, _ = problem_text(status, resp)
            if status == 401:
                # A running server loads new keys every few seconds.
                if attempt >= 4:
                    raise KeyRefused(msg)
                delay = 2.0 ** attempt
                log(f"PUT sensor {sid}: {msg}; trying again in {delay:.0f} s "
                    f"(a new key takes a few seconds to be known)")
                attempt += 1
                if stop.wait(delay):
                    raise Stop()
                continue
            if status in (429, 503, 502, 504) or (status >= 500 and attempt < 3):
                delay = retry_after(headers, backoff(attempt)) if status in (429, 503) \
                    else backoff(attempt)
                log(f"PUT sensor {sid}: {msg}; retrying in {delay:.1f} s")
                attempt += 1
                if stop.wait(delay):
                    raise Stop()
                continue
            log_limited("put", f"PUT sensor {sid}: {msg}; not sending its readings")
            break
    return ok


class LiveSender:
    """Posts live events without ever blocking the simulation for long:
    failed batches wait for their retry time while new events queue up."""

    MAX_PENDING = 200_000

    def __init__(self, client, batch_size, counters):
        self.client = client
        self.batch_size = batch_size
        self.counters = counters
        self.pending = collections.deque()
        self.cur = None
        self.attempt = 0
        self.next_try = 0.0

    def add(self, events):
        self.pending.extend(events)
        over = len(self.pending) - self.MAX_PENDING
        if over > 0:
            for _ in range(over):
                self.pending.popleft()
            self.counters.add(dropped=over)
            log_limited("overflow", f"{over} oldest queued event(s) dropped: the server "
                        f"has not taken events for a while")

    def queued(self):
        return len(self.pending) + (len(self.cur) if self.cur else 0)

    def pump(self, budget_s, retries=True):
        deadline = time.monotonic() + budget_s
        while (self.cur or self.pending) and time.monotonic() < deadline:
            if time.monotonic() < self.next_try:
                return
            if not self.cur:
                n = min(self.batch_size, len(self.pending))
                self.cur = [self.pending.popleft() for _ in range(n)]
                self.attempt = 0
            out = post_once(self.client, self.cur, self.attempt)
            if out.kind == Outcome.OK:
                self.counters.add(accepted=out.accepted, dups=out.dups)
                self.cur = None
                continue
            self.counters.add(errors=1)
            if out.kind == Outcome.RETRY:
                if not retries:
                    return
                self.attempt += 1
                self.next_try = time.monotonic() + out.delay
                log_limited("retry", f"{out.msg}; retrying in {out.delay:.1f} s "
                            f"({self.queued()} events queued)")
            elif out.kind == Outcome.DROP_ONE:
                log_limited("drop-one", f"{out.msg}; dropping that event, re-sending the rest")
                self.counters.add(dropped=1)
                del self.cur[out.index]
            elif out.kind == Outcome.SPLIT:
                log(f"{out.msg}; splitting the batch")
                half = len(self.cur) // 2
                self.pending.extendleft(reversed(self.cur[half:]))
                self.cur = self.cur[:half]
                self.batch_size = max(1, self.batch_size // 2)
            else:
                log(f"{out.msg}; dropping {len(self.cur)} event(s)")
                self.counters.add(dropped=len(self.cur))
                self.cur = None


# --- dry run -----------------------------------------------------------------------

class DryRun:
    """Checks events as the server would, and keeps counts; no network."""

    def __init__(self, registered, batch_size):
        self.registered = registered
        self.batch_size = batch_size
        self.errors = []
        self.n_errors = 0
        self.ids = set()
        self.by_type = collections.Counter()
        self.by_status = collections.Counter()
        self.calls = collections.defaultdict(list)
        self.tickets = collections.defaultdict(list)
        self.readings = collections.defaultdict(list)
        self.max_batch = 0
        self.max_body = 0
        self.batches = 0

    def error(self, msg):
        self.n_errors += 1
        if len(self.errors) < 20:
            self.errors.append(msg)

    def post(self, events, now):
        for i in range(0, len(events), self.batch_size):
            batch = events[i:i + self.batch_size]
            body = json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode()
            self.batches += 1
            self.max_batch = max(self.max_batch, len(batch))
            self.max_body = max(self.max_body, len(body))
            if len(batch) > MAX_BATCH_EVENTS or len(body) > MAX_BODY_BYTES:
                self.error(f"batch of {len(batch)} events, {len(body)} bytes: too large")
            for ev in batch:
                self.check(ev, now)

    def check(self, ev, now):
        for e in check_event(ev, now, self.registered):
            self.error(f"{ev.get('id')}: {e}")
        eid = ev.get("id")
        if eid in self.ids:
            self.error(f"{eid}: id used twice")
        self.ids.add(eid)
        typ = ev.get("type")
        self.by_type[typ] += 1
        t = parse_time(ev.get("occurred_at"))
        body = ev.get(typ) or {}
        if typ == "call":
            self.by_status["call." + str(body.get("status"))] += 1
            self.calls[body.get("call_id")].append((t, CALL_RANK.get(body.get("status"), 9), body))
        elif typ == "report":
            self.by_status["report." + str(body.get("status"))] += 1
            self.tickets[body.get("ticket")].append(
                (t, REPORT_RANK.get(body.get("status"), 9), body))
        elif typ == "sensor":
            self.readings[body.get("sensor_id")].append((t, body.get("value")))

    def check_lifecycles(self):
        for cid, evs in self.calls.items():
            evs.sort(key=lambda x: (x[0], x[1]))
            sts = [b["status"] for _, _, b in evs]
            if sts[0] != "received" or sts.count("received") != 1:
                self.error(f"call {cid}: statuses {sts}")
            elif sts not in (["received", "abandoned"], ["received", "answered", "closed"],
                             ["received", "answered"], ["received"]):
                self.error(f"call {cid}: unexpected lifecycle {sts}")
        for tk, evs in self.tickets.items():
            evs.sort(key=lambda x: (x[0], x[1]))
            sts = [b["status"] for _, _, b in evs]
            if sts[0] != "received" or sts.count("received") != 1:
                self.error(f"ticket {tk}: statuses {sts}")
            if "in_progress" in sts and "dispatched" not in sts[:sts.index("in_progress")]:
                self.error(f"ticket {tk}: in progress before dispatched {sts}")


def dry_run(sim, args, defs):
    ok = True
    registered = set()
    for sid, body in defs:
        for e in check_sensor_def(sid, body):
            ok = False
            say(f"  sensor {sid}: {e}")
        registered.add(sid)
    d = DryRun(registered, args.batch_size)
    t0 = sim.t0
    started = time.monotonic()
    if args.backfill_days > 0:
        hist = sim.backfill(args.backfill_days)
        d.post(hist[:sim.backfill_front], t0)
        d.post(hist[sim.backfill_front:], t0)
        say(f"backfill: {len(hist)} events over {args.backfill_days:g} day(s), "
            f"{len(sim.heap)} later lifecycle events waiting for the live part")
    n_hist = sum(d.by_type.values())

    # Live, on a simulated wall clock: one tick per second.
    sim.start_live()
    minutes = args.dry_run_minutes
    w = t0
    live_levels = collections.defaultdict(list)
    last_reading = {}
    ticks = int(minutes * 60 / args.interval)
    for _ in range(ticks):
        w += args.interval
        sim.advance_to(w)
        due = sim.pop_due(w)
        d.post(due, w)
        for ev in due:
            if ev["type"] == "sensor":
                sid = ev["sensor"]["sensor_id"]
                g = next(x for x in sim.gauges if x.id == sid)
                live_levels[sid].append(level_of(g.thresholds, ev["sensor"]["value"]))
                last_reading[sid] = w
    n_live = sum(d.by_type.values()) - n_hist
    d.check_lifecycles()
    elapsed = time.monotonic() - started

    # What the screens would show at the end.
    now = w
    open_, overdue, unassigned, resolved, rejected, reopened = 0, 0, 0, 0, 0, 0
    for evs in d.tickets.values():
        sts = [b["status"] for _, _, b in evs]
        latest = sts[-1]
        recv = evs[0][0]
        if latest in ("resolved", "rejected"):
            resolved += latest == "resolved"
            rejected += latest == "rejected"
        else:
            open_ += 1
            overdue += recv < now - SLA_S
            unassigned += "dispatched" not in sts
        if "resolved" in sts and "in_progress" in sts[sts.index("resolved"):]:
            reopened += 1
    abandoned = sum(1 for evs in d.calls.values()
                    if any(b["status"] == "abandoned" for _, _, b in evs))
    say(f"events: {n_hist} history + {n_live} live ({minutes:g} simulated minutes at "
        f"speed {args.speed:g}) in {d.batches} batches (largest {d.max_batch} events, "
        f"{d.max_body} bytes), generated in {elapsed:.1f} s")
    say("  by type: " + ", ".join(f"{k} {v}" for k, v in sorted(d.by_type.items())))
    say(f"  calls: {len(d.calls)} ({abandoned} abandoned, "
        f"{100.0 * abandoned / max(1, len(d.calls)):.1f} %); "
        + ", ".join(f"{k[5:]} {v}" for k, v in sorted(d.by_status.items()) if k.startswith("call.")))
    say(f"  tickets: {len(d.tickets)}; open {open_} (overdue {overdue}, never dispatched "
        f"{unassigned}), resolved {resolved}, rejected {rejected}, reopened {reopened}")
    say(f"  sensors: {len(registered)} registered, {sum(len(v) for v in d.readings.values())} "
        f"readings")

    checks = []
    episode_end = args.flood_first + args.flood_duration + 400
    if minutes * 60 * args.speed >= episode_end:
        for g in sim.flood_prone:
            if g.live_flood is None:
                continue
            seq = live_levels.get(g.id, [])
            rose = "awas" in seq and "siaga" in seq
            fell = rose and any(lv in ("normal", "waspada") for lv in seq[seq.index("awas"):])
            checks.append((f"flood on {g.id}: reached siaga, then awas, then receded",
                           rose and fell))
    calm = [g for g in sim.gauges if g.live_flood is None and g is not sim.silent
            and not g.episodes]
    checks.append(("gauges without a flood stay below their first alert level",
                   all(set(live_levels.get(g.id, [])) <= {"normal"} for g in calm)))
    if sim.silent is not None:
        last = max((t for t, _ in d.readings.get(sim.silent.id, [])), default=None)
        quiet = last is None or last <= sim.wall(sim.silent.silent_since)
        checks.append((f"{sim.silent.id} stops reporting (offline "
                       f"{args.offline_after} s after its last reading)", quiet))
    checks.append(("every event obeys the API's field rules", d.n_errors == 0))
    for name, good in checks:
        say(f"  {'ok  ' if good else 'FAIL'} {name}")
        ok = ok and good
    for e in d.errors:
        say(f"  error: {e}")
    if d.n_errors > len(d.errors):
        say(f"  ... and {d.n_errors - len(d.errors)} more errors")
    say("dry run: OK" if ok else "dry run: FAILED")
    return 0 if ok else 1


# --- running against a server ------------------------------------------------------

def run_backfill(sim, args, counters, stop):
    t_gen = time.monotonic()
    events = sim.backfill(args.backfill_days)
    kinds = collections.Counter(ev["type"] for ev in events)
    say(f"backfill: {len(events)} events over {args.backfill_days:g} day(s) "
        f"(calls {kinds['call']}, reports {kinds['report']}, readings {kinds['sensor']}), "
        f"generated in {time.monotonic() - t_gen:.1f} s; posting with "
        f"{args.connections} connection(s)")
    front = sim.backfill_front
    batches = [events[i:i + args.batch_size] for i in range(front, len(events), args.batch_size)]
    local = threading.local()
    clients = []
    clients_lock = threading.Lock()

    def work(batch):
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = Client(args.url, args.key)
            with clients_lock:
                clients.append(c)
        send_blocking(c, batch, counters, stop)
        return len(batch)

    started = time.monotonic()
    if front:
        c = Client(args.url, args.key)
        try:
            send_blocking(c, events[:front], counters, stop)
        finally:
            c.close()
    done = front
    last_print = started
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=args.connections)
    try:
        futs = [ex.submit(work, b) for b in batches]
        for f in concurrent.futures.as_completed(futs):
            try:
                done += f.result()
            except Stop:
                continue
            except KeyRefused:
                stop.set()
                raise
            now = time.monotonic()
            if now - last_print >= 2.0 or done == len(events):
                rate = done / max(now - started, 1e-6)
                say(f"backfill: {done}/{len(events)} events "
                    f"({100.0 * done / max(1, len(events)):.0f} %), {rate:.0f} events/s")
                last_print = now
    except KeyboardInterrupt:
        stop.set()
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
        for c in clients:
            c.close()
    took = time.monotonic() - started
    say(f"backfill: done in {took:.1f} s ({len(events) / max(took, 1e-6):.0f} events/s): "
        f"accepted {counters.accepted}, duplicates {counters.dups}, dropped {counters.dropped}")
    return counters.dropped == 0


def run_live(sim, args, client, counters, stop):
    sender = LiveSender(client, args.batch_size, counters)
    sim.start_live()
    say(f"live: feeding {args.url} (speed {args.speed:g}, scale {args.scale:g}); "
        f"Ctrl-C to stop")
    sent = collections.Counter()
    last_status = time.monotonic()
    accepted0 = counters.accepted
    next_tick = time.time()
    try:
        while not stop.is_set():
            w = time.time()
            sim.advance_to(w)
            due = sim.pop_due(w)
            for ev in due:
                sent[ev["type"]] += 1
            sender.add(due)
            sender.pump(budget_s=max(0.2, args.interval * 0.8))
            mono = time.monotonic()
            if args.status_every > 0 and mono - last_status >= args.status_every:
                levels = collections.Counter()
                for g in sim.gauges:
                    if g.enabled and g is not sim.silent:
                        levels[level_of(g.thresholds, g.level(sim.model(w)))] += 1
                flood = ", ".join(f"{k} {levels[k]}" for k in ("siaga", "awas") if levels[k])
                say(f"live {datetime.datetime.fromtimestamp(w, WIB):%H:%M:%S} WIB, "
                    f"last {mono - last_status:.0f} s: {sum(sent.values())} events "
                    f"(calls {sent['call']}, reports {sent['report']}, readings {sent['sensor']}), "
                    f"{counters.accepted - accepted0} stored; queued {sender.queued()}, "
                    f"dropped {counters.dropped}, errors {counters.errors}"
                    + (f"; gauges in {flood}" if flood else ""))
                sent.clear()
                accepted0 = counters.accepted
                last_status = mono
            next_tick += args.interval
            delay = next_tick - time.time()
            if delay < -5 * args.interval:
                next_tick = time.time()
            elif delay > 0:
                stop.wait(delay)
    except KeyboardInterrupt:
        pass
    # Deliver what is already due, briefly, without retrying.
    sender.pump(budget_s=3.0, retries=False)
    say(f"live: stopped; stored {counters.accepted} events in all, duplicates "
        f"{counters.dups}, dropped {counters.dropped}, unsent {sender.queued()}")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Simulates Semarang's call centre, citizen reports and river gauges "
                    "and posts them to kendali's API.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", default=os.environ.get("KENDALI_URL", "http://127.0.0.1:8080"),
                   help="server base URL (env KENDALI_URL)")
    p.add_argument("--key", default=os.environ.get("KENDALI_KEY"),
                   help="API key with types call,report,sensor (env KENDALI_KEY)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="city data file, or a tenant's reference set (a directory)")
    p.add_argument("--centre", default=None,
                   help="LAT,LON of a reference set's regency (default: by its region code)")
    p.add_argument("--backfill-days", type=float, default=0.0,
                   help="post this many days of history before going live")
    p.add_argument("--backfill-only", action="store_true",
                   help="exit after the backfill")
    p.add_argument("--speed", type=float, default=1.0,
                   help="live time compression: the simulation runs X times as fast as the "
                        "clock (events still carry the real time they are posted at)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies call and report volumes")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed for the simulated content (ids stay unique)")
    p.add_argument("--calls-per-day", type=float, default=400.0,
                   help="calls to the 112 centre per day at scale 1")
    p.add_argument("--reports-per-day", type=float, default=200.0,
                   help="citizen reports per day at scale 1")
    p.add_argument("--sensor-interval", type=float, default=30.0,
                   help="live: simulated seconds between two readings of a gauge "
                        "(at least 1 s of real time)")
    p.add_argument("--offline-after", type=int, default=600,
                   help="offline_after_s registered for every gauge")
    p.add_argument("--flood-rivers", default=None,
                   help="live: rivers with a rising-water episode (comma-separated; 'none')")
    p.add_argument("--flood-period", type=float, default=1800.0,
                   help="live: simulated seconds between the starts of two episodes")
    p.add_argument("--flood-duration", type=float, default=600.0,
                   help="live: simulated seconds an episode lasts (rise, peak, recede)")
    p.add_argument("--flood-first", type=float, default=60.0,
                   help="live: simulated seconds before the first episode starts")
    p.add_argument("--silent-gauge", default=None,
                   help="a gauge that stops reporting ('none')")
    p.add_argument("--connections", type=int, default=4,
                   help="concurrent connections for the backfill")
    p.add_argument("--batch-size", type=int, default=500,
                   help="events per request (the API takes up to 1000)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="live: seconds between two batches")
    p.add_argument("--status-every", type=float, default=60.0,
                   help="live: seconds between two status lines (0: none)")
    p.add_argument("--dry-run", action="store_true",
                   help="no server: generate, check every event against the API's rules, "
                        "print counts")
    p.add_argument("--dry-run-minutes", type=float, default=40.0,
                   help="dry run: simulated minutes of the live part")
    a = p.parse_args(argv)
    if a.speed <= 0 or a.scale < 0 or a.backfill_days < 0 or a.interval <= 0:
        p.error("--speed and --interval must be > 0, --scale and --backfill-days >= 0")
    if not 1 <= a.batch_size <= MAX_BATCH_EVENTS:
        p.error(f"--batch-size must be in 1..{MAX_BATCH_EVENTS}")
    if a.connections < 1:
        p.error("--connections must be >= 1")
    if a.sensor_interval < 1:
        p.error("--sensor-interval must be >= 1 s")
    if not 60 <= a.offline_after <= 604800:
        p.error("--offline-after must be in 60..604800")
    if a.flood_duration <= 0 or a.flood_period < a.flood_duration:
        p.error("--flood-duration must be > 0 and <= --flood-period")
    if a.backfill_only and a.backfill_days <= 0:
        p.error("--backfill-only needs --backfill-days N")
    if not a.dry_run and not a.key:
        p.error("an API key is needed: --key KEY or env KENDALI_KEY "
                "(create one with: kendali key create --poster NAME --types call,report,sensor)")
    return a


def reference_set(directory, centre=None):
    """A tenant's reference set (docs/reference-data.md) as a city data file:
    kecamatan placed evenly on a ring around the regency's centre, each
    gauge at its kecamatan (or its own location) on the river its name
    begins with."""
    def load(name):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return json.load(f)
    districts = load("districts.json")
    region = districts.get("region") or {}
    region = region.get("code", "") if isinstance(region, dict) else str(region)
    if centre is None:
        centre = REGION_CENTRES.get(region)
        if centre is None:
            raise ValueError(f"no centre known for region {region!r}: give --centre LAT,LON")
    names = [d["name"] for d in districts["districts"]]
    ring = {}
    for i, name in enumerate(names):
        angle = 2 * math.pi * i / max(1, len(names))
        ring[name] = {"name": name, "lat": round(centre[0] + 0.12 * math.sin(angle), 4),
                      "lon": round(centre[1] + 0.15 * math.cos(angle), 4)}
    gauges = []
    for g in load("gauges.json")["gauges"]:
        at = g.get("location") or ring.get(g.get("district")) or {"lat": centre[0], "lon": centre[1]}
        gauges.append({"id": g["sensor_id"], "name": g["name"], "river": g["name"].split(" - ")[0],
                       "district": g.get("district"), "lat": at["lat"], "lon": at["lon"],
                       "thresholds": g.get("thresholds", {})})
    return {"districts": list(ring.values()), "agencies": load("agencies.json")["agencies"],
            "gauges": gauges}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if os.path.isdir(args.data):
            centre = tuple(float(x) for x in args.centre.split(",")) if args.centre else None
            data = reference_set(args.data, centre)
        else:
            with open(args.data, encoding="utf-8") as f:
                data = json.load(f)
        for k in ("districts", "agencies", "gauges"):
            if not data.get(k):
                raise ValueError(f"no {k!r} in it")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"demofeed: cannot use data file {args.data}: {e}", file=sys.stderr)
        return 2
    # Semarang floods on its two flood-prone rivers, and its airport gauge
    # goes silent; a reference set floods on its first river.
    semarang = not os.path.isdir(args.data)
    if args.flood_rivers is None:
        args.flood_rivers = DEFAULT_FLOOD_RIVERS if semarang else data["gauges"][0]["river"]
    if args.silent_gauge is None:
        args.silent_gauge = DEFAULT_SILENT_GAUGE if semarang else "none"
    rng = random.Random(args.seed)
    t0 = time.time()
    sim = Sim(data, args, rng, t0)
    defs = sim.sensor_defs()

    if args.dry_run:
        return dry_run(sim, args, defs)

    stop = threading.Event()

    def on_term(signum, frame):
        if stop.is_set():
            return          # already stopping: a second TERM must not cut the cleanup
        stop.set()
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    try:
        client = Client(args.url, args.key)
    except ValueError as e:
        print(f"demofeed: {e}", file=sys.stderr)
        return 2
    counters = Counters()
    try:
        taken = register_sensors(client, defs, stop)
        for g in sim.gauges:
            g.enabled = g.id in taken
        say(f"sensors: {len(taken)}/{len(defs)} gauges registered")
        if args.backfill_days > 0:
            good = run_backfill(sim, args, counters, stop)
            if args.backfill_only:
                return 0 if good else 1
        run_live(sim, args, client, counters, stop)
    except (KeyboardInterrupt, Stop):
        stop.set()
        say("demofeed: interrupted")
        return 130
    except KeyRefused as e:
        stop.set()
        print(f"demofeed: the server refused the key: {e}", file=sys.stderr)
        return 2
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
