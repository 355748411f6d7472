#!/usr/bin/env python3
"""
The soak run's driver (see tests/soak/README.md): a simulated Semarang posted
to a running kendali for an hour, a flood night in the last third, screens on
the websocket, memory and latency recorded every 10 s, and checks at the end.
tests/soak/run.sh starts PostgreSQL and the server, then runs this.

The city is tools/demofeed.py's simulation, imported, not a second one: a Sim
for the normal period, and from the start of the flood night a second Sim
(same seed, so the same gauges) with floods on five rivers, more calls and
reports, and gauges reporting every 3 s.  The first Sim stops starting new
calls and tickets then, but still posts the later steps of those it started.

Three agency systems post, each with its own key and connections: the 112
call centre and the Lapor gateway one event per request (as each call or
ticket changes), the gauge gateway one batch per second.  Nothing is retried:
the soak expects every answer to be a 202.

The checks reuse tests/integration: reference.py computes the KPIs from the
database independently, harness.py's websocket client and comparison check
a new screen against it.
"""

import argparse
import asyncio
import collections
import csv
import datetime
import http.client
import json
import math
import os
import queue
import random
import signal
import sys
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import demofeed  # noqa: E402
import harness  # noqa: E402
import psycopg2  # noqa: E402
import reference  # noqa: E402
import websockets  # noqa: E402

# --- the load, in events per second of wall-clock time, at --scale 1 ---------

CALLS_PER_S = 1.4           # normal period: about 5,000 calls an hour
REPORTS_PER_S = 0.3         # and about 1,100 citizen reports
GAUGE_EVERY_S = 60.0        # each gauge reports once a minute
FLOOD_CALLS_X = 9.0         # flood night: calls about the rain, everywhere
FLOOD_REPORTS_X = 3.0
FLOOD_LOCAL_X = 1.0         # plus calls from where the rivers overflow, at most
                            # this many times the normal rate, when every
                            # flooding gauge is at siaga or above (demofeed's
                            # flood streams; their reports come with them)
FLOOD_GAUGE_EVERY_S = 3.0
FLOOD_RIVERS = ("Banjir Kanal Timur", "Kali Babon", "Kali Tenggang", "Kali Sringin",
                "Kali Beringin")
FLOOD_FIRST_S = 30.0        # simulated seconds into the flood night
MODEL_MINUTES = 60.0        # a run shorter than this plays the hour faster

TICK_S = 0.1                # the simulation hands out what is due this often
GRACE_S = 3.0               # how long a screen may take to show a reading
GAUGE_WORKERS, CALL_WORKERS, REPORT_WORKERS = 1, 4, 2

# Memory check (README.md, "The checks"): over the second half, the RSS may
# grow by what the data held for the KPIs explains, plus this much.
LEAK_MIB_PER_10MIN = 1.0
HELD_ITEM_BYTES = 320       # a call or ticket held in memory (measured 200-300)
LEAK_MIN_MIB = 1.0          # short runs: a table resize is not a leak
WARMUP_S = 60.0             # after the load rises, left out of the fit
MAX_SCREEN_GAP_S = 15.0     # docs/api.md 8.5: a screen treats this as stale
STALLED_RELOAD_S = 180.0    # a stalled screen's watchdog reloads it this often

WIB = demofeed.WIB
SUBPROTOCOL = harness.SUBPROTOCOL


def log(msg):
    print(f"soak: {msg}", flush=True)


def pct(values, q):
    """Nearest-rank percentile of sorted values; None over nothing."""
    if not values:
        return None
    return values[max(0, math.ceil(q * len(values)) - 1)]


def fmt(v, nd=1):
    return "" if v is None else f"{v:.{nd}f}"


def epoch_of(text):
    return datetime.datetime.fromisoformat(text).timestamp()


# --- the city ----------------------------------------------------------------

def flood_gauges(data):
    return [g["id"] for g in data["gauges"] if g.get("river") in FLOOD_RIVERS
            and g["id"] != demofeed.DEFAULT_SILENT_GAUGE]


class Plan:
    """Times and rates of a run of `minutes` minutes: the normal period for
    the first two thirds, the flood night for the last.  A run shorter than an
    hour plays the hour faster (demofeed's --speed) with the volumes divided
    as much, so the server sees the same events per second."""

    def __init__(self, minutes, scale, interval, data):
        self.duration = minutes * 60.0
        self.interval = interval
        self.flood_at = round(self.duration * 2 / 3 / interval) * interval
        self.speed = max(1.0, MODEL_MINUTES / minutes)
        self.scale = scale
        self.n_flood = len(flood_gauges(data))
        self.offline_after = max(180, round(600 / self.speed))

    def phase(self, elapsed):
        return "flood" if elapsed >= self.flood_at else "normal"

    def sim_args(self, flood):
        """demofeed's options for one of the two Sims.  Its volumes are
        calls_per_day * scale per simulated day, and the simulation runs
        `speed` times as fast as the clock."""
        sp = self.speed
        calls, reports = CALLS_PER_S * self.scale, REPORTS_PER_S * self.scale
        if flood:
            # demofeed's flood streams add 12 * scale calls and 5 * scale
            # reports an hour (simulated) per gauge at siaga or above.
            local = FLOOD_LOCAL_X * calls / self.n_flood
            sim_scale = local * 3600.0 / 12.0 / sp
            calls, reports = FLOOD_CALLS_X * calls, FLOOD_REPORTS_X * reports
            duration = (self.duration - self.flood_at) * sp
            extra = ["--flood-rivers", ",".join(FLOOD_RIVERS),
                     "--flood-first", str(FLOOD_FIRST_S),
                     "--flood-duration", str(duration),
                     "--flood-period", str(4 * duration),
                     "--sensor-interval", str(FLOOD_GAUGE_EVERY_S * sp)]
        else:
            sim_scale = 1.0
            extra = ["--flood-rivers", "none", "--sensor-interval", str(GAUGE_EVERY_S * sp)]
        per_day = 86400.0 / (sim_scale * sp)
        return demofeed.parse_args([
            "--key", "-", "--speed", str(sp), "--scale", str(sim_scale),
            "--calls-per-day", str(calls * per_day), "--reports-per-day", str(reports * per_day),
            "--offline-after", str(self.offline_after), *extra])


def make_sim(plan, data, seed, flood):
    # The same seed gives both Sims the same gauges (baselines and tides),
    # so the water level goes on smoothly when the flood night begins.
    return demofeed.Sim(data, plan.sim_args(flood), random.Random(seed), time.time())


# --- what the posters were told ----------------------------------------------

class Acks:
    """Every answer, until the sampler takes it; every acknowledged event id;
    the gauge readings acknowledged, for the screen delays."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []       # (ack time, latency s, type, events, status)
        self.readings = []      # (ack time, sensor_id, occurred_at epoch)
        self.acked = collections.defaultdict(set)   # key -> event ids
        self.statuses = collections.Counter()
        self.events = collections.Counter()         # acknowledged, by type
        self.duplicates = 0
        self.first_errors = []

    def record(self, key, kind, events, status, data, t_enq, t_ack):
        with self.lock:
            self.statuses[status] += 1
            self.answers.append((t_ack, t_ack - t_enq, kind, len(events), status))
            if status != 202:
                if len(self.first_errors) < 10:
                    self.first_errors.append(f"{kind}: {status} {data[:200]!r}")
                return
            self.events[kind] += len(events)
            try:
                self.duplicates += int(json.loads(data).get("duplicates", 0))
            except (ValueError, AttributeError, TypeError):
                pass
            self.acked[key].update(e["id"] for e in events)
            if kind == "sensor":
                for e in events:
                    self.readings.append((t_ack, e["sensor"]["sensor_id"],
                                          epoch_of(e["occurred_at"])))

    def take(self, until):
        """The answers and readings acknowledged before `until` (monotonic)."""
        with self.lock:
            a = [x for x in self.answers if x[0] < until]
            self.answers = [x for x in self.answers if x[0] >= until]
            r = [x for x in self.readings if x[0] < until]
            self.readings = [x for x in self.readings if x[0] >= until]
        return a, r


class Poster:
    """One agency system: a queue of requests and `workers` threads, each
    with its own keep-alive connection (demofeed.Client)."""

    def __init__(self, kind, key, url, workers, acks):
        self.kind, self.key, self.url, self.acks = kind, key, url, acks
        self.q = queue.Queue()
        self.workers = [threading.Thread(target=self.work, daemon=True) for _ in range(workers)]

    def start(self):
        for w in self.workers:
            w.start()

    def submit(self, events):
        self.q.put((time.monotonic(), events))

    def work(self):
        client = demofeed.Client(self.url, self.key)
        try:
            while True:
                item = self.q.get()
                if item is None:
                    return
                t_enq, events = item
                body = json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode()
                try:
                    status, _, data = client.request("POST", "/api/v1/events", body)
                except (OSError, http.client.HTTPException) as e:
                    status, data = "cut", repr(e).encode()
                self.acks.record(self.key, self.kind, events, status, data, t_enq, time.monotonic())
        finally:
            client.close()

    def finish(self, timeout):
        for _ in self.workers:
            self.q.put(None)
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.join(max(0.1, deadline - time.monotonic()))


# --- screens -----------------------------------------------------------------

class Reader:
    """One reading screen: its state (snapshot, then kpis merged), and the
    times it first showed each gauge reading (sensors.latest[].at)."""

    def __init__(self, index, narrow):
        self.index = index
        self.narrow = narrow            # subscribed to sensors and alerts only
        self.state = {}
        self.last_seq = None
        self.gaps = 0
        self.messages = 0
        self.reconnects = 0
        self.last_error = None
        self.connected = False
        self.last_msg = None
        self.max_gap = 0.0
        self.last_at = {}               # sensor_id -> the `at` text last shown
        self.shown = collections.defaultdict(collections.deque)  # sid -> (at epoch, time)

    @property
    def topics(self):
        return ("sensors", "alerts") if self.narrow else None


class Screens:
    """The wall screens: `readers` websocket clients on one asyncio loop in
    a thread (every fifth subscribed to sensors and alerts, like a flood
    desk), and `stalled` ones that open the websocket and never read: hung
    kiosks, whose watchdog reloads the page every STALLED_RELOAD_S seconds.
    The server should drop each long before that; a client cannot see it
    (its full receive window holds the FIN back), so the server's own count
    of websocket clients tells."""

    def __init__(self, host, port, readers, stalled):
        self.host, self.port = host, port
        self.url = f"ws://{host}:{port}/ws"
        self.readers = [Reader(i, i % 5 == 4) for i in range(readers)]
        self.lock = threading.Lock()
        self.n_stalled = stalled
        self.stalled = []           # [socket, when to reload it]
        self.stalled_reloads = 0
        self.stalled_failures = 0
        self.loop = None
        self.tasks = []
        self.thread = threading.Thread(target=self._main, daemon=True)

    def start(self, timeout=30):
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r.connected and r.state for r in self.readers):
                break
            time.sleep(0.1)
        missing = [r.index for r in self.readers if not (r.connected and r.state)]
        if missing:
            raise RuntimeError(f"screens {missing[:10]} did not connect within {timeout} s: "
                               f"{self.readers[missing[0]].last_error}")
        now = time.monotonic()
        for i in range(self.n_stalled):
            # Staggered, so that they do not all come back at once.
            self.stalled.append([harness.raw_ws_connect(self.host, self.port),
                                 now + STALLED_RELOAD_S * (i + 1) / self.n_stalled])

    def _main(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.tasks = [self.loop.create_task(self._reader(r)) for r in self.readers]
        try:
            self.loop.run_until_complete(asyncio.gather(*self.tasks, return_exceptions=True))
        finally:
            self.loop.close()

    async def _reader(self, r):
        while True:
            try:
                async with websockets.connect(self.url, subprotocols=[SUBPROTOCOL],
                                              max_size=None, open_timeout=20, close_timeout=2,
                                              ping_interval=None) as ws:
                    r.last_seq = None
                    r.connected = True
                    first = True
                    async for raw in ws:
                        self._handle(r, raw, time.monotonic())
                        if r.narrow and first:
                            await ws.send(json.dumps({"type": "subscribe",
                                                      "topics": list(r.topics)}))
                        first = False
                    r.last_error = f"closed {ws.close_code} {ws.close_reason!r}"
            except asyncio.CancelledError:
                return
            except Exception as e:  # counted, then the screen reconnects
                r.last_error = repr(e)
            r.connected = False
            r.reconnects += 1
            await asyncio.sleep(1.0)

    def _handle(self, r, raw, now):
        msg = json.loads(raw)
        seq = msg.get("seq")
        with self.lock:
            r.messages += 1
            if r.last_msg is not None:
                r.max_gap = max(r.max_gap, now - r.last_msg)
            r.last_msg = now
            if type(seq) is int:
                if r.last_seq is not None and seq != r.last_seq + 1:
                    r.gaps += 1
                r.last_seq = seq
            kind = msg.get("type")
            if kind not in ("snapshot", "kpis"):
                return
            kpis = msg.get("kpis") or {}
            if kind == "snapshot":
                r.state = dict(kpis)
            else:
                r.state.update(kpis)
            for row in kpis.get("sensors.latest") or ():
                sid, at = row.get("sensor_id"), row.get("at")
                if at and r.last_at.get(sid) != at:
                    r.last_at[sid] = at
                    r.shown[sid].append((epoch_of(at), now))

    def screen_delays(self, readings):
        """For each acknowledged reading (ack time, sensor, occurred_at) and
        each reading screen: the time from the 202 to the first message that
        showed that reading or a later one of the same gauge.  Returns
        (delays in s, pairs not shown within GRACE_S, largest silence of a
        screen since the last call)."""
        delays, late = [], 0
        readings = sorted(readings, key=lambda x: x[2])
        with self.lock:
            for r in self.readers:
                for t_ack, sid, at in readings:
                    shown = r.shown[sid]
                    # Entries older than this reading belong to earlier ones.
                    while shown and shown[0][0] < at - 0.0005:
                        shown.popleft()
                    if shown:
                        delays.append(shown[0][1] - t_ack)
                    else:
                        late += 1
            now = time.monotonic()
            gap = 0.0
            for r in self.readers:
                silent = now - r.last_msg if r.last_msg is not None else 0.0
                gap = max(gap, r.max_gap, silent)
                r.max_gap = 0.0
        return delays, late, gap

    def reload_stalled(self):
        """The watchdogs: stalled screens due for it reconnect (and stall
        again)."""
        now = time.monotonic()
        for entry in self.stalled:
            if now < entry[1]:
                continue
            if entry[0] is not None:
                entry[0].close()
            entry[1] = now + STALLED_RELOAD_S
            self.stalled_reloads += 1
            try:
                entry[0] = harness.raw_ws_connect(self.host, self.port)
            except (OSError, AssertionError):
                entry[0] = None
                self.stalled_failures += 1

    def connected_readers(self):
        with self.lock:
            return sum(1 for r in self.readers if r.connected)

    def states(self):
        """Copies of the readers' states, taken between two messages."""
        with self.lock:
            return [(r, dict(r.state)) for r in self.readers]

    def sample_state(self):
        with self.lock:
            return dict(self.readers[0].state) if self.readers else {}

    def close(self):
        if self.loop is not None and self.loop.is_running():
            for t in self.tasks:
                self.loop.call_soon_threadsafe(t.cancel)
        self.thread.join(10)
        for sock, _ in self.stalled:
            if sock is not None:
                sock.close()


# --- the processes -----------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pg_pss(postmaster):
    """Proportional set size of the postmaster and its children, summed:
    shared buffers count once in all, not once per backend."""
    pids = [postmaster]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def metrics(host, port):
    c = http.client.HTTPConnection(host, port, timeout=5)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# --- the record --------------------------------------------------------------

COLUMNS = ["elapsed_s", "phase", "events_per_s", "calls_per_s", "reports_per_s",
           "readings_per_s", "requests", "ack_p50_ms", "ack_p99_ms", "ack_max_ms",
           "screen_p50_ms", "screen_p99_ms", "screen_max_ms", "screen_samples", "screen_late",
           "screen_max_gap_s", "rss_mib", "cpu_pct", "pg_mib", "ws_clients", "calls_held",
           "tickets_held", "gauges_siaga", "gauges_awas", "alerts_active", "stalled_held",
           "errors", "errors_5xx", "driver_cpu_pct"]


class Sampler(threading.Thread):
    """Every `interval` seconds: one CSV row about the interval just ended.
    Answers count in the interval their 202 came in; screen delays are those
    of the readings acknowledged in it, taken GRACE_S seconds later."""

    def __init__(self, plan, screens, acks, args, t0, csv_path):
        super().__init__(daemon=True)
        self.plan, self.screens, self.acks, self.args, self.t0 = plan, screens, acks, args, t0
        self.rows = []
        self.load_ended = threading.Event()     # no more load; its end in load_end
        self.load_end = None
        self.drained = threading.Event()        # every request answered
        self.server_gone = False
        self.failure = None
        self.f = open(csv_path, "w", newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(COLUMNS)
        self.f.flush()
        self.prev_cpu = self.prev_drv = None
        self.prev_t = None

    def end_load(self, at):
        if not self.load_ended.is_set():
            self.load_end = at
            self.load_ended.set()

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported as a failed check
            self.failure = repr(e)
            raise
        finally:
            self.f.close()

    def _run(self):
        prev = 0.0
        k = 0
        self._cpu_mark()
        while True:
            k += 1
            edge = min(k * self.plan.interval, self.plan.duration)
            while not self.load_ended.is_set() and time.monotonic() - self.t0 < edge:
                self.load_ended.wait(0.2)
            final = edge >= self.plan.duration or self.load_ended.is_set()
            if final:
                # The last row ends with the load, and waits for the
                # answers to every request sent.
                self.load_ended.wait()
                edge = max(prev + 1.0, min(edge, self.load_end))
                self.drained.wait(60)
            self.row(prev, edge, final)
            prev = edge
            if final:
                return

    def _cpu_mark(self):
        self.prev_t = time.monotonic()
        try:
            self.prev_cpu = proc_cpu_s(self.args.server_pid)
        except OSError:
            self.prev_cpu = None
        t = os.times()
        self.prev_drv = t.user + t.system

    def row(self, start, end, final):
        now = time.monotonic()
        dt = now - self.prev_t
        srv = self.args.server_pid
        try:
            rss = proc_rss(srv)
            cpu_s = proc_cpu_s(srv)
            cpu = 100.0 * (cpu_s - self.prev_cpu) / dt if self.prev_cpu is not None else None
            self.prev_cpu = cpu_s
        except OSError:
            rss = cpu = None
            self.server_gone = True
        t = os.times()
        drv = 100.0 * (t.user + t.system - self.prev_drv) / dt
        self.prev_drv, self.prev_t = t.user + t.system, now
        pg = pg_pss(self.args.pg_pid) if self.args.pg_pid else None
        readers = self.screens.connected_readers()
        try:
            m = metrics(self.args.host, self.args.port)
        except OSError:
            m = {}
        clients = m.get("kendali_ws_clients")
        held = None if clients is None else max(0, round(clients) - readers)
        self.screens.reload_stalled()
        # Screens get GRACE_S to show the last readings of the interval.
        shown_by = time.monotonic() if final else self.t0 + end
        time.sleep(max(0.0, shown_by + GRACE_S - time.monotonic()))
        answers, readings = self.acks.take(math.inf if final else self.t0 + end)
        delays, late, gap = self.screens.screen_delays(readings)
        state = self.screens.sample_state()

        span = end - start
        ok = [a for a in answers if a[4] == 202]
        lat = sorted(a[1] * 1000 for a in answers)
        scr = sorted(d * 1000 for d in delays)
        by_type = collections.Counter()
        for a in ok:
            by_type[a[2]] += a[3]
        levels = state.get("sensors.by_level") or {}
        errors = sum(1 for a in answers if a[4] != 202)
        e5xx = sum(1 for a in answers if isinstance(a[4], int) and a[4] >= 500)
        row = {
            "elapsed_s": round(end), "phase": self.plan.phase(start),
            "events_per_s": sum(by_type.values()) / span,
            "calls_per_s": by_type["call"] / span, "reports_per_s": by_type["report"] / span,
            "readings_per_s": by_type["sensor"] / span, "requests": len(answers),
            "ack_p50_ms": pct(lat, 0.5), "ack_p99_ms": pct(lat, 0.99),
            "ack_max_ms": lat[-1] if lat else None,
            "screen_p50_ms": pct(scr, 0.5), "screen_p99_ms": pct(scr, 0.99),
            "screen_max_ms": scr[-1] if scr else None, "screen_samples": len(scr),
            "screen_late": late, "screen_max_gap_s": gap,
            "rss_mib": rss / 2**20 if rss is not None else None, "cpu_pct": cpu,
            "pg_mib": pg / 2**20 if pg is not None else None,
            "ws_clients": m.get("kendali_ws_clients"), "calls_held": m.get("kendali_calls_held"),
            "tickets_held": m.get("kendali_tickets_held"),
            "gauges_siaga": levels.get("siaga"), "gauges_awas": levels.get("awas"),
            "alerts_active": len(state.get("alerts.active") or ()),
            "stalled_held": held,
            "errors": errors, "errors_5xx": e5xx, "driver_cpu_pct": drv,
            # kept for the summary, not written
            "_lat": lat, "_scr": scr, "_start": start,
        }
        self.rows.append(row)
        self.w.writerow([self._cell(row[c]) for c in COLUMNS])
        self.f.flush()
        if len(self.rows) % max(1, round(60 / self.plan.interval)) == 0 or final:
            log(f"{end / 60:5.1f} min {row['phase']:6}: {row['events_per_s']:5.1f} ev/s, "
                f"ack p99 {fmt(row['ack_p99_ms'])} ms, "
                f"screen p99 {fmt(row['screen_p99_ms'], 0)} ms, "
                f"RSS {fmt(row['rss_mib'])} MiB, {fmt(row['ws_clients'], 0)} screens, "
                f"{row['gauges_siaga'] or 0} siaga / {row['gauges_awas'] or 0} awas, "
                f"{errors} errors")

    @staticmethod
    def _cell(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.3f}".rstrip("0").rstrip(".") if not v.is_integer() else str(int(v))
        return str(v)


# --- the load ----------------------------------------------------------------

def run_load(plan, data, seed, posters, gauge_ids, stop, t0, sampler):
    """Hands every simulated event to its poster when it is due, until the
    run's end or `stop`."""
    sims = [make_sim(plan, data, seed, flood=False)]
    for g in sims[0].gauges:
        g.enabled = g.id in gauge_ids
    sims[0].start_live()
    flood = False
    while not stop.is_set():
        elapsed = time.monotonic() - t0
        if elapsed >= plan.duration:
            break
        if not flood and elapsed >= plan.flood_at:
            flood = True
            normal = sims[0]
            normal.streams = []             # no new calls or tickets from it
            for g in normal.gauges:
                g.enabled = False
            sim = make_sim(plan, data, seed, flood=True)
            for g in sim.gauges:
                g.enabled = g.id in gauge_ids
            sim.start_live()
            sims.append(sim)
            log(f"{elapsed / 60:5.1f} min: the flood night begins")
        w = time.time()
        readings = []
        for sim in sims:
            sim.advance_to(w)
            for ev in sim.pop_due(w):
                if ev["type"] == "sensor":
                    readings.append(ev)
                else:
                    posters[ev["type"]].submit([ev])
        if readings:
            posters["sensor"].submit(readings)
        stop.wait(TICK_S)
    sampler.end_load(min(time.monotonic() - t0, plan.duration))


# --- the checks --------------------------------------------------------------

def check_exactly_once(conn, acks):
    """Every acknowledged event is in `events` once; nothing else of ours is."""
    with conn.cursor() as cur:
        missing = extra = 0
        for key, ids in acks.acked.items():
            cur.execute("SELECT poster FROM api_keys WHERE key_id = %s", (harness.key_id(key),))
            poster = cur.fetchone()[0]
            cur.execute("SELECT event_id FROM events WHERE tenant = 'semarang' AND poster = %s",
                        (poster,))
            stored = {r[0] for r in cur}
            missing += len(ids - stored)
            extra += len(stored - ids)
        cur.execute("SELECT count(*) FROM (SELECT event_id FROM events"
                    " GROUP BY tenant, event_id HAVING count(*) > 1) d")
        twice = cur.fetchone()[0]
    n = sum(len(v) for v in acks.acked.values())
    ok = missing == 0 and twice == 0 and extra == 0
    return ok, (f"{n} acknowledged events: {missing} missing, {twice} ids stored more than once, "
                f"{extra} stored without a 202")


def check_kpis(conn, ws):
    """The KPIs of a new screen equal reference.py's computation from the
    database (retried while the time-driven KPIs move under it)."""
    events = harness.stored_events(conn)
    sensors = harness.stored_sensors(conn)
    deadline = time.monotonic() + 30
    last = []
    while time.monotonic() < deadline:
        now = harness.utcnow()
        if harness.near_wib_midnight(now, 10):
            time.sleep(1)
            continue
        expected = reference.compute_kpis(events, sensors, now)
        try:
            ws.wait_state(expected, timeout=2.0)
            return True, f"{len(events)} events, {len(sensors)} sensors: every catalogue key equal"
        except AssertionError as e:
            last = str(e).splitlines()[1:6]
    return False, "differences: " + "; ".join(x.strip() for x in last)


def check_screens_agree(screens, ws):
    """Every reading screen, after the whole run of deltas, holds what a new
    screen holds (each for its topics)."""
    diffs = []
    for _ in range(30):
        with ws.cond:
            fresh = dict(ws.state)
        diffs = []
        for r, state in screens.states():
            keys = [k for k in harness.CATALOGUE
                    if r.topics is None or k.split(".")[0] in r.topics]
            d = harness.json_equal_diff({k: state.get(k) for k in keys},
                                        {k: fresh.get(k) for k in keys})
            if d:
                diffs.append(f"screen {r.index}: {d[0]}")
        if not diffs:
            return True, f"{len(screens.readers)} screens equal a new one"
        time.sleep(0.2)
    return False, f"{len(diffs)} differ: " + "; ".join(diffs[:3])


def phase_slope(rows, column):
    """Least-squares slope of a column over elapsed_s, with a level of its
    own for each phase (the within-phase slope): a one-off step when the
    load rises tenfold is not growth over time.  None with too few points."""
    groups = collections.defaultdict(list)
    for r in rows:
        v = column(r)
        if v is not None:
            groups[r["phase"]].append((r["elapsed_s"], v))
    sxy = sxx = 0.0
    n = 0
    for pts in groups.values():
        mx = sum(x for x, _ in pts) / len(pts)
        my = sum(y for _, y in pts) / len(pts)
        sxx += sum((x - mx) ** 2 for x, _ in pts)
        sxy += sum((x - mx) * (y - my) for x, y in pts)
        n += len(pts)
    return sxy / sxx if n >= 4 and sxx else None


def check_memory(plan, rows):
    """Over the second half of the run, the server's RSS grows by no more
    than what the calls and tickets it holds for the KPIs explain, plus
    LEAK_MIB_PER_10MIN (README.md, "The checks")."""
    half = [r for r in rows if r["elapsed_s"] >= plan.duration / 2
            and not plan.flood_at <= r["_start"] < plan.flood_at + WARMUP_S]
    rss = phase_slope(half, lambda r: r["rss_mib"])
    held = phase_slope(half, lambda r: None if r["calls_held"] is None
                       else r["calls_held"] + r["tickets_held"])
    window = sum(r["elapsed_s"] - r["_start"] for r in half)
    if rss is None or held is None or window < 60:
        return None, "too few samples in the second half to judge (a run of 5 minutes or more)"
    explained = held * HELD_ITEM_BYTES / 2**20
    unexplained = (rss - explained) * window
    limit = max(LEAK_MIN_MIB, LEAK_MIB_PER_10MIN * window / 600)
    text = (f"{window / 60:.1f} min of the second half: RSS {rss * 600:+.2f} MiB/10 min, of which "
            f"{explained * 600:+.2f} for {held * 600:+.0f} calls and tickets held "
            f"({HELD_ITEM_BYTES} B each); unexplained {unexplained:+.2f} MiB in all "
            f"(limit {limit:.2f})")
    return unexplained < limit, text


def check_stalled(args, rows, screens):
    """The server drops stalled screens: on average it holds well under
    all of them, which it would hold if it waited for their watchdogs."""
    held = [r["stalled_held"] for r in rows if r["stalled_held"] is not None]
    mean = sum(held) / len(held) if held else None
    ok = mean is not None and mean < 0.75 * args.stalled and not screens.stalled_failures
    return ok, (f"the server held {fmt(mean, 1)} of the {args.stalled} on average "
                f"(most {max(held, default=0)}); {screens.stalled_reloads} reloads, "
                f"{screens.stalled_failures} failed")


def check_no_clients_left(args):
    """Once every screen has gone, the server counts no websocket client."""
    deadline = time.monotonic() + 10
    n = None
    while time.monotonic() < deadline:
        n = metrics(args.host, args.port).get("kendali_ws_clients")
        if n == 0:
            break
        time.sleep(0.2)
    return n == 0, f"kendali_ws_clients {fmt(n, 0)} after every screen closed"


# --- the summary -------------------------------------------------------------

def span_table(plan, rows):
    span = 300 if plan.duration >= 1200 else 60
    lines = [f"{'minutes':>9} {'phase':12} {'ev/s':>6} {'ack ms p50/p99/max':>20} "
             f"{'screen ms p50/p99':>18} {'RSS MiB':>8} {'CPU %':>6} {'PG MiB':>7} "
             f"{'screens':>7} {'siaga/awas':>10} {'errors':>6}"]
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(int(r["_start"] // span), []).append(r)
    for g, rs in groups.items():
        secs = rs[-1]["elapsed_s"] - rs[0]["_start"]
        ev = sum(r["events_per_s"] * (r["elapsed_s"] - r["_start"]) for r in rs) / secs
        lat = sorted(x for r in rs for x in r["_lat"])
        scr = sorted(x for r in rs for x in r["_scr"])
        cpus = [r["cpu_pct"] for r in rs if r["cpu_pct"] is not None]
        last = rs[-1]
        phases = "/".join(sorted({r["phase"] for r in rs}, reverse=True))
        sa = f"{last['gauges_siaga'] or 0}/{last['gauges_awas'] or 0}"
        lines.append(
            f"{rs[0]['_start'] / 60:4.0f}-{last['elapsed_s'] / 60:<4.0f} {phases:12} "
            f"{ev:6.1f} {fmt(pct(lat, .5)):>6}/{fmt(pct(lat, .99)):>6}/"
            f"{fmt(lat[-1] if lat else None, 0):>6} "
            f"{fmt(pct(scr, .5), 0):>8}/{fmt(pct(scr, .99), 0):>8} {fmt(last['rss_mib']):>8} "
            f"{fmt(sum(cpus) / len(cpus) if cpus else None):>6} {fmt(last['pg_mib'], 0):>7} "
            f"{fmt(last['ws_clients'], 0):>7} {sa:>10} {sum(r['errors'] for r in rs):>6}")
    return lines


def phase_lines(plan, rows):
    out = []
    for ph in ("normal", "flood"):
        rs = [r for r in rows if r["phase"] == ph]
        if not rs:
            continue
        secs = sum(r["elapsed_s"] - r["_start"] for r in rs)
        ev = sum(r["events_per_s"] * (r["elapsed_s"] - r["_start"]) for r in rs)
        lat = sorted(x for r in rs for x in r["_lat"])
        scr = sorted(x for r in rs for x in r["_scr"])
        peak = max(r["events_per_s"] for r in rs)
        calls = sum(r["calls_per_s"] * (r["elapsed_s"] - r["_start"]) for r in rs) / secs
        reports = sum(r["reports_per_s"] * (r["elapsed_s"] - r["_start"]) for r in rs) / secs
        readings = sum(r["readings_per_s"] * (r["elapsed_s"] - r["_start"]) for r in rs) / secs
        out.append(f"  {ph:6}: {ev / secs:5.1f} events/s on average (peak {peak:.1f} in 10 s; "
                   f"calls {calls:.1f}, reports {reports:.2f}, readings {readings:.2f}); "
                   f"ack p50 {fmt(pct(lat, .5))} ms, p99 {fmt(pct(lat, .99))} ms, "
                   f"max {fmt(lat[-1] if lat else None)} ms; screen p50 {fmt(pct(scr, .5), 0)} ms, "
                   f"p99 {fmt(pct(scr, .99), 0)} ms, max {fmt(scr[-1] if scr else None, 0)} ms")
    return out


# --- main --------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="The soak run's driver; see tests/soak/README.md.")
    p.add_argument("--url", required=True, help="the server, http://127.0.0.1:PORT")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--out", required=True, help="directory for soak.csv and summary.txt")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--pg-pid", type=int, default=None, help="the postmaster, to record its memory")
    p.add_argument("--screens", type=int, default=50)
    p.add_argument("--stalled", type=int, default=5)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies call and report volumes")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between two records")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.minutes < 1 or a.screens < 1 or a.stalled < 0 or a.scale <= 0 or a.interval < 1:
        p.error("--minutes >= 1, --screens >= 1, --stalled >= 0, --scale > 0, --interval >= 1")
    u = urllib.parse.urlsplit(a.url)
    a.host, a.port = u.hostname, u.port
    a.database_url = os.environ.get("DATABASE_URL")
    a.keys = {t: os.environ.get(f"SOAK_KEY_{t.upper()}") for t in ("call", "report", "sensor")}
    if not a.database_url or not all(a.keys.values()):
        p.error("DATABASE_URL, SOAK_KEY_CALL, SOAK_KEY_REPORT and SOAK_KEY_SENSOR must be set")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(demofeed.DEFAULT_DATA, encoding="utf-8") as f:
        data = json.load(f)
    # The same load whatever the hour the run starts: demofeed's volumes
    # follow the hour of day in WIB (3 am is a tenth of the evening peak).
    demofeed.CALL_PROFILE = [1.0] * 24
    demofeed.REPORT_PROFILE = [1.0] * 24
    plan = Plan(args.minutes, args.scale, args.interval, data)

    stop = threading.Event()
    interrupted = []

    def on_signal(signum, frame):
        if not stop.is_set():
            interrupted.append(signum)
            stop.set()
            log("interrupted: ending the load, then the checks (again to skip them)")
            return
        raise KeyboardInterrupt()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    log(f"{args.minutes:g} minutes: normal for {plan.flood_at / 60:.3g}, flood night for "
        f"{(plan.duration - plan.flood_at) / 60:.3g}; simulated time {plan.speed:.3g}x the clock; "
        f"{args.screens} screens and {args.stalled} stalled ones; results in {out}")

    acks = Acks()
    client = demofeed.Client(args.url, args.keys["sensor"])
    try:
        gauge_ids = demofeed.register_sensors(client, make_sim(plan, data, args.seed, False)
                                              .sensor_defs(), stop)
    finally:
        client.close()
    log(f"{len(gauge_ids)} gauges registered")

    screens = Screens(args.host, args.port, args.screens, args.stalled)
    screens.start()
    posters = {"call": Poster("call", args.keys["call"], args.url, CALL_WORKERS, acks),
               "report": Poster("report", args.keys["report"], args.url, REPORT_WORKERS, acks),
               "sensor": Poster("sensor", args.keys["sensor"], args.url, GAUGE_WORKERS, acks)}
    for p in posters.values():
        p.start()
    t0 = time.monotonic()
    started = datetime.datetime.now(WIB)
    sampler = Sampler(plan, screens, acks, args, t0, out / "soak.csv")
    sampler.start()
    try:
        run_load(plan, data, args.seed, posters, gauge_ids, stop, t0, sampler)
    finally:
        sampler.end_load(time.monotonic() - t0)
        for p in posters.values():
            p.finish(timeout=35)
        sampler.drained.set()
    sampler.join()
    elapsed = time.monotonic() - t0

    checks = []
    aborted = False
    try:
        conn = psycopg2.connect(args.database_url)
        conn.autocommit = True
        ws = None
        try:
            checks.append(("every acknowledged event stored exactly once",
                           *check_exactly_once(conn, acks)))
            ws = harness.WsClient(f"ws://{args.host}:{args.port}/ws").start()
            checks.append(("the KPIs of a new screen equal reference.py's from the database",
                           *check_kpis(conn, ws)))
            checks.append(("the reading screens hold what a new screen holds",
                           *check_screens_agree(screens, ws)))
        finally:
            if ws is not None:
                ws.close()
            conn.close()
    except KeyboardInterrupt:
        aborted = True
    except Exception as e:  # reported as a failed check
        checks.append(("database and screen checks ran", False, repr(e)))
    screens.close()
    if not aborted:
        try:
            checks.append(("no websocket left behind", *check_no_clients_left(args)))
        except (OSError, KeyboardInterrupt) as e:
            checks.append(("no websocket left behind", False, repr(e)))

    rows = sampler.rows
    checks.append(("server RSS did not keep growing", *check_memory(plan, rows)))
    st = acks.statuses
    n5 = sum(v for k, v in st.items() if isinstance(k, int) and k >= 500)
    other = sum(v for k, v in st.items() if k != 202) - n5
    checks.append(("no 5xx answer", n5 == 0, f"{n5} of {sum(st.values())} requests"))
    checks.append(("no other error (4xx, connection cut)", other == 0,
                   f"{other}; answers: {dict(st)}" + (f"; first: {acks.first_errors[:3]}"
                                                      if acks.first_errors else "")))
    late = sum(r["screen_late"] for r in rows)
    samples = sum(r["screen_samples"] for r in rows)
    checks.append((f"every reading shown on every reading screen within {GRACE_S:g} s",
                   late == 0, f"{samples} shown, {late} not"))
    gaps = sum(r.gaps for r in screens.readers)
    reconnects = sum(r.reconnects for r in screens.readers)
    max_gap = max((r["screen_max_gap_s"] for r in rows), default=0.0)
    checks.append(("reading screens: no seq gap, no reconnect, never silent for "
                   f"{MAX_SCREEN_GAP_S:g} s", gaps == 0 and reconnects == 0
                   and max_gap < MAX_SCREEN_GAP_S,
                   f"{gaps} gaps, {reconnects} reconnects, longest silence {max_gap:.1f} s"))
    if elapsed >= STALLED_RELOAD_S + 60 and args.stalled:
        checks.append(("stalled screens dropped by the server",
                       *check_stalled(args, rows, screens)))
    if sampler.server_gone:
        checks.append(("the server ran to the end", False, "its process went away"))
    if sampler.failure:
        checks.append(("the record was kept to the end", False, sampler.failure))

    lines = [f"kendali soak run, started {started:%Y-%m-%d %H:%M} WIB, "
             f"{elapsed / 60:.1f} of {args.minutes:g} minutes"
             + (" (interrupted)" if interrupted else ""),
             f"  load: normal {plan.flood_at / 60:.3g} min, flood night "
             f"{(plan.duration - plan.flood_at) / 60:.3g} min (floods on "
             f"{', '.join(FLOOD_RIVERS)}); simulated time {plan.speed:.3g}x the clock, "
             f"scale {args.scale:g}",
             f"  screens: {args.screens} reading ({sum(r.narrow for r in screens.readers)} of them "
             f"sensors and alerts only), {args.stalled} never reading (reloaded every "
             f"{STALLED_RELOAD_S:g} s)",
             f"  acknowledged: {sum(acks.events.values())} events (calls {acks.events['call']}, "
             f"reports {acks.events['report']}, readings {acks.events['sensor']}) in "
             f"{sum(st.values())} requests; duplicates {acks.duplicates}", ""]
    lines += phase_lines(plan, rows)
    rss_rows = [r for r in rows if r["rss_mib"] is not None]
    if rss_rows:
        mid = min(rss_rows, key=lambda r: abs(r["elapsed_s"] - plan.duration / 2))
        lines.append(f"  server RSS: {rss_rows[0]['rss_mib']:.1f} MiB at "
                     f"{rss_rows[0]['elapsed_s'] / 60:.1f} min, {mid['rss_mib']:.1f} at "
                     f"{mid['elapsed_s'] / 60:.1f}, {rss_rows[-1]['rss_mib']:.1f} at the end "
                     f"(max {max(r['rss_mib'] for r in rss_rows):.1f})")
    lines.append("")
    lines += span_table(plan, rows)
    lines.append("")
    if aborted:
        checks.append(("database and screen checks ran", False, "skipped (interrupted twice)"))
    for name, ok, detail in checks:
        lines.append(f"{'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  {name}: {detail}")
    passed = sum(1 for _, ok, _ in checks if ok)
    failed = sum(1 for _, ok, _ in checks if ok is False)
    skipped = len(checks) - passed - failed
    lines.append(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    print()
    print(text, end="", flush=True)
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("aborted")
        sys.exit(130)
