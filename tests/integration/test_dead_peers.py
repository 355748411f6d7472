"""
Dead peers are found by ping (docs/api.md 8.5, --ws-ping S): a screen silent
for S seconds is pinged, and dropped when nothing at all has arrived from it
for 3S.  With --ws-ping 1, a peer that completed the upgrade and then went
dead (never reads, never answers) is gone within a few seconds, while a
screen that only answers pings (as browsers do by themselves) stays, and
keeps getting its heartbeats.  With the default (20 s) a silent screen is
left alone for as long.

Connections are counted with `kendali_ws_clients` of GET /metrics.
"""

import re
import socket
import time

from harness import WsClient, raw_ws_connect

WATCH_S = 8.0           # how long the live screen is watched
DROP_WITHIN_S = 6.0     # 3 x 1 s of silence, plus the timer's granularity
HEARTBEAT_S = 5.0

CLIENTS_RE = re.compile(r"^kendali_ws_clients (\d+)$", re.M)


def ws_clients(srv):
    """kendali_ws_clients of GET /metrics (open from the machine itself)."""
    http = srv.http()
    try:
        r = http.get("/metrics")
    finally:
        http.close()
    assert r.status == 200, f"GET /metrics: {r}"
    m = CLIENTS_RE.search(r.raw.decode("utf-8", "replace"))
    assert m, f"no kendali_ws_clients in /metrics:\n{r.raw[:2000].decode('utf-8', 'replace')}"
    return int(m.group(1))


def wait_clients(srv, n, timeout):
    """Waits until the server counts n websocket connections; returns the
    count last seen."""
    deadline = time.monotonic() + timeout
    while True:
        got = ws_clients(srv)
        if got == n or time.monotonic() >= deadline:
            return got
        time.sleep(0.1)


def closed_by_server(sock, timeout):
    """True when the server has closed the dead peer's connection: reading
    what it sent ends with EOF or a reset within timeout seconds."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def heartbeats(client, since):
    return [m for t, m in client.messages
            if t >= since and m.get("type") == "kpis" and m.get("kpis") == {}]


def test_dead_peer_dropped_live_screen_kept(fresh_database, make_server):
    pinging = make_server(fresh_database, "--ws-ping", "1", name=f"ping1-{fresh_database.name}")
    default = make_server(fresh_database, name=f"pingdefault-{fresh_database.name}")
    assert ws_clients(pinging) == 0 and ws_clients(default) == 0

    dead = raw_ws_connect(pinging.host, pinging.port)
    dead_t0 = time.monotonic()
    live = WsClient(pinging.ws_url).start()
    quiet = WsClient(default.ws_url).start()       # silent too, under the default
    t0 = time.monotonic()
    try:
        assert wait_clients(pinging, 2, 3) == 2, "the server does not count both screens"
        assert wait_clients(default, 1, 3) == 1

        got = wait_clients(pinging, 1, DROP_WITHIN_S)
        dropped_after = time.monotonic() - dead_t0
        assert got == 1, f"the dead peer was not dropped within {DROP_WITHIN_S} s " \
                         f"(kendali_ws_clients {got}) with --ws-ping 1"
        assert closed_by_server(dead, 3), "the dead peer's connection is still open"

        time.sleep(max(0.0, WATCH_S - (time.monotonic() - t0)))
        watched = time.monotonic() - t0
        problems = []
        for c, srv, what in ((live, pinging, "--ws-ping 1"), (quiet, default, "default --ws-ping")):
            if c.closed:
                problems.append(f"{what}: a screen that answers pings was dropped within "
                                f"{watched:.1f} s, close code {c.close_code}")
            elif ws_clients(srv) != 1:
                problems.append(f"{what}: the live screen is no longer counted")
            if not heartbeats(c, t0):
                got = [(round(t - t0, 1), m.get("type"), m.get("kpis") == {}) for t, m in c.messages]
                problems.append(f"{what}: no heartbeat in {watched:.1f} s (one is due after "
                                f"{HEARTBEAT_S} s without a message); received (s, type, empty): {got}")
            problems += [f"{what}: {v}" for v in c.violations[:5]]
        assert not problems, "\n".join(problems)
        print(f"\ndead peer dropped after {dropped_after:.1f} s; live screens kept for {watched:.1f} s")
    finally:
        dead.close()
        live.close()
        quiet.close()
