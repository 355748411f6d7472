"""
Slow and dead screens among many: 250 websocket clients, 150 of which
complete the handshake and then never read (with a small receive buffer, so
that they stall at once), while events change the KPIs several times a
second.  The 100 reading screens keep getting every change within the
bound, end with the same state as GET /api/v1/kpis, and the server's memory
stays bounded.
"""

import asyncio
import base64
import json
import os
import socket
import threading
import time

import pytest

from harness import ev_report, json_equal_diff

SUBPROTOCOL = "situation.v1"
READERS = 100
STALLED = 150
LOAD_S = 6.0
MAX_GAP_S = 1.5           # a reading screen hears something at least this often
RSS_GROWTH_MAX = 24 << 20  # bytes over the whole load (seen: 3 MiB)
RSS_LATE_GROWTH_MAX = 4 << 20  # over its second half: bounded means it levels off


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def stalled_screen(port):
    """Opens a websocket and never reads past the handshake."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode())
    head = b""
    s.settimeout(5)
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "the server closed the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    return s


class Readers:
    """READERS websocket screens on one asyncio loop in a thread; each
    keeps its state and the times it received messages."""

    def __init__(self, url, n):
        self.url, self.n = url, n
        self.states = [dict() for _ in range(n)]
        self.times = [[] for _ in range(n)]
        self.closed = [None] * n
        self.ready = threading.Event()
        self.stop = None
        self.loop = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self.main()), daemon=True)

    async def one(self, i, connected):
        import websockets
        try:
            async with websockets.connect(self.url, subprotocols=[SUBPROTOCOL],
                                          max_size=None, open_timeout=20) as ws:
                connected.append(i)
                if len(connected) == self.n:
                    self.ready.set()
                while not self.stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    m = json.loads(raw)
                    self.times[i].append(time.monotonic())
                    if m.get("type") in ("snapshot", "kpis"):
                        if m["type"] == "snapshot":
                            self.states[i] = {}
                        self.states[i].update(m["kpis"])
        except Exception as e:   # recorded, asserted by the test
            self.closed[i] = repr(e)

    async def main(self):
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        connected = []
        await asyncio.gather(*(self.one(i, connected) for i in range(self.n)))

    def start(self):
        self.thread.start()
        assert self.ready.wait(30), "the reading screens did not all connect"

    def close(self):
        if self.loop:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture
def busy_server(fresh_database, make_server):
    # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
    # default) and RSS grows with every allocation: keep it small here so
    # that RSS means what the server holds.
    asan = os.environ.get("ASAN_OPTIONS")
    env = {"ASAN_OPTIONS": f"{asan}:quarantine_size_mb=1"} if asan else None
    return make_server(fresh_database, "--publish-ms", "100", "--rate-limit", "0", env=env)


def test_stalled_screens_do_not_delay_or_bloat(busy_server, fresh_database):
    from harness import create_key
    srv = busy_server
    key = create_key(fresh_database, "lapor-hendi", ["report"], server=srv)
    api = srv.http(key=key)
    pid = srv.proc.pid

    readers = Readers(srv.ws_url, READERS)
    readers.start()
    stalled = [stalled_screen(srv.port) for _ in range(STALLED)]
    try:
        rss0 = rss(pid)
        t0 = time.monotonic()
        posted = 0
        rss_half = None
        while time.monotonic() - t0 < LOAD_S:
            r = api.post_events([ev_report(title="x" * 150) for _ in range(5)])
            assert r.status == 202, r
            posted += 5
            time.sleep(0.02)
            if rss_half is None and time.monotonic() - t0 >= LOAD_S / 2:
                rss_half = rss(pid)
        t1 = time.monotonic()
        rss1 = rss(pid)
        final = api.kpis()["kpis"]
        time.sleep(1.0)          # the last change reaches the readers
        growth = rss1 - rss0
        print(f"\n{posted} reports posted; server RSS {rss0 / 2**20:.1f} MiB -> "
              f"{rss_half / 2**20:.1f} MiB -> {rss1 / 2**20:.1f} MiB "
              f"with {READERS} reading and {STALLED} stalled screens")
        assert growth < RSS_GROWTH_MAX, f"server memory grew by {growth >> 20} MiB"
        assert rss1 - rss_half < RSS_LATE_GROWTH_MAX, \
            f"server memory still growing: {(rss1 - rss_half) / 2**20:.1f} MiB in the second half"

        gaps = []
        for i in range(READERS):
            assert readers.closed[i] is None, f"reader {i} closed: {readers.closed[i]}"
            ts = [t for t in readers.times[i] if t0 <= t <= t1] + [t0, t1]
            ts.sort()
            gaps.append(max(b - a for a, b in zip(ts, ts[1:])))
            diff = json_equal_diff(readers.states[i], final)
            assert not diff, f"reader {i} differs from GET /api/v1/kpis: {diff[:5]}"
        assert max(gaps) < MAX_GAP_S, f"a reading screen waited {max(gaps):.2f} s for news"
        # The stalled ones cost the server nothing it cannot bound: it is
        # still serving, and answers at once.
        t = time.monotonic()
        assert api.get("/healthz").status == 200
        assert time.monotonic() - t < 0.5
    finally:
        readers.close()
        for s in stalled:
            s.close()
        api.close()
