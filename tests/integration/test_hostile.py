"""
Hostile clients: half-sent requests, bodies that never finish, screens that
flood or send oversized messages.  Each is cut off within its bound, nothing
of it is stored, and the server keeps serving everyone else.

The websocket limits (docs/api.md 8.4, docs/security.md) are pinned at both
sides of each edge: 5 messages the server did not understand are answered,
the 6th closes (1008 "too many bad messages"); 20 messages within a second
are read, the 21st within one second closes (1008 "too many messages"),
whenever that second begins; a message of 4096 bytes is read, one of 4097
closes (1009 "message too large").
"""

import asyncio
import datetime
import json
import socket
import time
import uuid

import websockets

from harness import create_key

TIMEOUT_S = 2

# docs/api.md 8.4, limits on what a screen sends
BAD_MAX = 5            # messages not understood; the 6th closes
RATE_MAX = 20          # messages within one second; more closes
SIZE_MAX = 4096        # bytes of a message; over closes
SUBSCRIBE = json.dumps({"type": "subscribe", "topics": ["calls"]})


def call_event():
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    n = uuid.uuid4().hex[:12]
    return {"id": f"h-{n}", "type": "call", "occurred_at": now,
            "call": {"call_id": f"H-{n}", "status": "received", "category": "info"}}


def events_stored(database):
    conn = database.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM events")
            return cur.fetchone()[0]
    finally:
        conn.close()


def still_serving(srv, key):
    client = srv.http(key=key)
    try:
        assert client.get("/readyz").status == 200
        assert client.post_events([call_event()]).status == 202
    finally:
        client.close()


def closed_within(sock, limit_s):
    """Seconds until the server closes the socket (reads EOF), or None."""
    sock.settimeout(limit_s)
    t0 = time.monotonic()
    try:
        while sock.recv(4096):
            pass
        return time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionResetError:
        return time.monotonic() - t0


def padded(obj, size):
    """obj as JSON text of exactly size bytes (ASCII), padded with a "pad"
    member."""
    text = json.dumps(dict(obj, pad=""))
    text = json.dumps(dict(obj, pad="x" * (size - len(text))))
    assert len(text.encode()) == size
    return text


def test_half_sent_requests_are_cut_off(fresh_database, make_server):
    srv = make_server(fresh_database, "--request-timeout", str(TIMEOUT_S))
    key = create_key(fresh_database, "hostile", ["call"], server=srv)
    still_serving(srv, key)
    before = events_stored(fresh_database)

    # Half a request line, then silence.
    head = socket.create_connection(("127.0.0.1", srv.port))
    head.sendall(b"POST /api/v1/eve")
    # Complete headers, a body promised but only begun.
    body = json.dumps([call_event()]).encode()
    part = socket.create_connection(("127.0.0.1", srv.port))
    part.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + key.encode() + b"\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
    try:
        # Others are served while both hang.
        t0 = time.monotonic()
        still_serving(srv, key)
        assert time.monotonic() - t0 < 1.0, "a hanging client delayed the others"
        for name, sock in (("half a request line", head), ("half a body", part)):
            took = closed_within(sock, TIMEOUT_S + 8)
            assert took is not None, f"{name} held its connection past the timeout"
    finally:
        head.close()
        part.close()
    assert events_stored(fresh_database) == before + 1, "the half-sent body stored something"
    still_serving(srv, key)


def test_screens_that_flood_or_overflow_are_closed(fresh_database, make_server):
    """Each abuse gets its own close code at once (a screen is told why),
    every time: a close begun in the middle of a frame must not lose the
    server's place in the stream, which showed as a close seen only after
    lws' 5 s timeout, or none (1006), now and then."""
    srv = make_server(fresh_database)
    key = create_key(fresh_database, "hostile-ws", ["call"], server=srv)

    async def scenario():
        url = f"ws://127.0.0.1:{srv.port}/ws"
        async with websockets.connect(url, subprotocols=["situation.v1"]) as calm:
            assert json.loads(await calm.recv())["type"] == "snapshot"

            async def closed(send):
                """(close code, reason, seconds from the first byte sent to
                the close frame); the server's heartbeats (every 5 s) and
                error replies are read past."""
                async with websockets.connect(url, subprotocols=["situation.v1"],
                                              max_size=None) as ws:
                    await ws.recv()
                    start = time.monotonic()
                    try:
                        await send(ws)
                        while time.monotonic() - start < 10:
                            await asyncio.wait_for(ws.recv(), 10)
                    except websockets.ConnectionClosed:
                        pass
                    return ws.close_code, ws.close_reason, time.monotonic() - start

            async def flood(ws):
                for _ in range(RATE_MAX + 1):
                    await ws.send(SUBSCRIBE)

            def oversized(size):
                async def send(ws):
                    await ws.send(padded({"type": "subscribe", "topics": ["calls"]}, size))
                return send

            async def junk(ws):
                for i in range(BAD_MAX + 1):
                    await ws.send(f"junk {i}")

            cases = [(flood, 1008, "too many messages"),
                     (oversized(SIZE_MAX + 1), 1009, "message too large"),
                     (oversized(300_000), 1009, "message too large"),
                     (junk, 1008, "too many bad messages")]
            for _ in range(25):
                for send, code, reason in cases:
                    got_code, got_reason, took = await closed(send)
                    assert (got_code, got_reason) == (code, reason)
                    assert took < TIMEOUT_S, f"closed with {code} after {took:.1f} s"
            # The calm screen is still there and still hears from the server.
            message = json.loads(await asyncio.wait_for(calm.recv(), 8))
            assert message["type"] in ("kpis", "alert")
    asyncio.run(scenario())
    still_serving(srv, key)


async def ws_screen(url):
    """A websocket screen past its snapshot."""
    ws = await websockets.connect(url, subprotocols=["situation.v1"], max_size=None,
                                  ping_interval=None, close_timeout=2)
    first = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert first["type"] == "snapshot", first
    return ws


async def ws_errors(ws, n, timeout=3):
    """The next n error replies (heartbeats and kpis messages are read past);
    fewer when the connection closes or time runs out."""
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n:
            m = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
            if m.get("type") == "error":
                got.append(m)
    except (asyncio.TimeoutError, websockets.ConnectionClosed):
        pass
    return got


async def ws_open_for(ws, seconds):
    """True when the connection answers a ping and no close comes for
    `seconds` after it (messages are read past)."""
    try:
        await asyncio.wait_for(await ws.ping(), 2)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                break
        return ws.open
    except (websockets.ConnectionClosed, asyncio.TimeoutError):
        return False


async def ws_close_of(ws):
    """(code, reason) of the close that must follow within TIMEOUT_S, or
    "still open"."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except (asyncio.TimeoutError, websockets.ConnectionClosed):
        pass
    return (ws.close_code, ws.close_reason) if ws.closed else "still open"


def test_screen_limits_at_their_edges(fresh_database, make_server):
    """docs/api.md 8.4, each edge from both sides, each on a connection of
    its own:
    - 5 messages the server did not understand, one after the other, get 5
      error replies and the connection stays open (a ping is answered, no
      close follows); the 6th closes it with 1008 "too many bad messages";
    - 20 messages sent at once are read and the connection stays open for
      the rest of that second and after it (a bad message then gets its
      error reply); 21 at once close it with 1008 "too many messages";
    - a message of exactly 4096 bytes is read (an unknown type in it gets
      its error reply) and the connection stays open; 4097 bytes close it
      with 1009 "message too large"."""
    srv = make_server(fresh_database)
    url = f"ws://127.0.0.1:{srv.port}/ws"

    async def scenario():
        problems = []
        # bad messages: the 5th is answered, the 6th closes
        # (each sent after the reply to the one before: test_ws.py checks
        # replies to bad messages sent together)
        ws = await ws_screen(url)
        got = []
        for i in range(BAD_MAX):
            await ws.send(f"junk {i}")
            got += await ws_errors(ws, 1)
        if len(got) != BAD_MAX:
            problems.append(f"{BAD_MAX} bad messages got {len(got)} error replies "
                            f"(close {ws.close_code} {ws.close_reason!r})")
        elif not await ws_open_for(ws, 0.5):
            problems.append(f"closed after {BAD_MAX} bad messages: {ws.close_code} {ws.close_reason!r}")
        else:
            await ws.send(f"junk {BAD_MAX}")
            got = await ws_close_of(ws)
            if got != (1008, "too many bad messages"):
                problems.append(f"bad message {BAD_MAX + 1}: {got}")
        await ws.close()

        # 20 at once are read; the connection lives on
        ws = await ws_screen(url)
        t0 = time.monotonic()
        for _ in range(RATE_MAX):
            await ws.send(SUBSCRIBE)
        if not await ws_open_for(ws, max(0.0, 1.1 - (time.monotonic() - t0))):
            problems.append(f"closed after {RATE_MAX} messages in a second: {ws.close_code} {ws.close_reason!r}")
        else:
            await ws.send("junk after the second")
            if len(await ws_errors(ws, 1)) != 1:
                problems.append(f"no error reply after {RATE_MAX} messages and a second: "
                                f"{ws.close_code} {ws.close_reason!r}")
        await ws.close()

        # 21 at once close it
        ws = await ws_screen(url)
        for _ in range(RATE_MAX + 1):
            await ws.send(SUBSCRIBE)
        got = await ws_close_of(ws)
        if got != (1008, "too many messages"):
            problems.append(f"{RATE_MAX + 1} messages at once: {got}")
        await ws.close()

        # 4096 bytes are read; 4097 close it
        ws = await ws_screen(url)
        await ws.send(padded({"type": "nonsense"}, SIZE_MAX))
        got = await ws_errors(ws, 1)
        if len(got) != 1:
            problems.append(f"a message of {SIZE_MAX} bytes got no error reply: {ws.close_code} {ws.close_reason!r}")
        elif not await ws_open_for(ws, 0.5):
            problems.append(f"closed after a message of {SIZE_MAX} bytes: {ws.close_code} {ws.close_reason!r}")
        await ws.close()
        ws = await ws_screen(url)
        await ws.send(padded({"type": "nonsense"}, SIZE_MAX + 1))
        got = await ws_close_of(ws)
        if got != (1009, "message too large"):
            problems.append(f"a message of {SIZE_MAX + 1} bytes: {got}")
        await ws.close()
        return problems

    problems = asyncio.run(scenario())
    assert not problems, "\n".join(problems)


def test_flood_across_a_second_boundary_is_closed(fresh_database, make_server):
    """docs/api.md 8.4: "more than 20 messages within one second" close the
    connection with 1008 "too many messages", whenever that second starts.
    One message, then 19 at 0.95 s, then 20 at 1.05 s: never more than 20
    in a second counted from the first message, but 39 within 0.1 s."""
    srv = make_server(fresh_database)
    url = f"ws://127.0.0.1:{srv.port}/ws"

    async def scenario():
        ws = await ws_screen(url)
        t0 = time.monotonic()
        await ws.send(SUBSCRIBE)
        await asyncio.sleep(0.95 - (time.monotonic() - t0))
        for _ in range(RATE_MAX - 1):
            await ws.send(SUBSCRIBE)
        await asyncio.sleep(max(0.0, 1.05 - (time.monotonic() - t0)))
        try:
            for _ in range(RATE_MAX):
                await ws.send(SUBSCRIBE)
        except websockets.ConnectionClosed:
            pass
        got = await ws_close_of(ws)
        await ws.close()
        return got

    got = asyncio.run(scenario())
    assert got == (1008, "too many messages"), \
        f"{2 * RATE_MAX} messages, {2 * RATE_MAX - 1} of them within 0.1 s (at 0, 0.95 and 1.05 s): {got}"
