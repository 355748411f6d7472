"""
Security findings, fixed and pinned down (docs/security.md):

- sensor ids in the path are validated before the key's scope is looked at:
  an empty id, a comma (also URL-encoded) or 65 characters is `422
  invalid_event` (field `sensor_id`), never a crash; a key limited with
  `--sensors` matches whole ids only;
- websocket upgrades: the subprotocol `situation.v1` on `/ws` only (else
  `400`, or `404` for another path), an identity (`401`), no foreign Origin
  (`403`, and under TLS `http://` is a foreign scheme); every refusal is an
  HTTP status, then the connection is closed;
- a body is not read before the caller is identified and the address
  exists: `401`, `404`, `405` and `413` (small endpoints take 4096 bytes, a
  sensor definition 16384) come from the headers alone, then the
  connection is closed; `--max-logins` bounds the password checks running
  at once (beyond: `503` with Retry-After);
- the Host header must name this server (`421 unknown_host`, against DNS
  rebinding), and a request carrying X-Forwarded-For or Forwarded is not
  "from loopback" (`--anonymous-loopback`, `/metrics`);
- `?token=` does not replace the session of a person already logged in, and
  the token's cookie lasts 30 days;
- series durations that overflow are `400`;
- a user name failing 5 logins in a row waits (`429`, known or not);
- user names hold no spaces or control characters, at the command line
  (exit 2) or at login (`422 invalid_login`, nothing audited);
- a long Cookie header still carries the session;
- a revocation heard while the reader's queue is full is not lost.

Tests that log in connect from addresses of their own in 127.0.0.0/8
(next_source()), since logins are rate-limited per address.
"""

import http.client
import itertools
import socket
import ssl
import threading
import time

import pytest

from harness import (Resp, TlsServer, assert_problem, parse_response_head, create_token, create_user, ev_reading,
                     insecure_context, kendali_cli, login, sensor_body, session_set_cookie, token_id,
                     wait_until)

SUBPROTOCOL = "situation.v1"
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
EVIL = "evil.example"
ANSWER_S = 2.0           # an answer from the headers alone
CLOSE_S = 3.0            # the connection closed after a refusal
SMALL_MAX = 4096         # login, logout, acknowledgement bodies
SENSOR_MAX = 16384       # a sensor definition
MIB = 1048576
THIRTY_DAYS_S = 30 * 24 * 3600
GAUGE = sensor_body("Security gauge", {"siaga": 100, "awas": 200})

_sources = itertools.count(10)


def next_source():
    """A loopback address of its own (127.1.0.12, 127.1.0.13, ...) for a
    request that logs in: the login limit per address of one test does not
    touch another.  Linux routes all of 127.0.0.0/8 to lo."""
    n = next(_sources)
    return f"127.1.{n // 250}.{n % 250 + 2}"




# --------------------------------------------------------------------------
# Requests on a plain (or TLS) socket
# --------------------------------------------------------------------------


class Raw:
    """What came back on a raw socket: status (None: closed before any
    status line), headers (lower-case names), body, and the socket, still
    open, to see whether the server closes it."""

    def __init__(self, status, headers, body, sock):
        self.status, self.headers, self.body, self.sock = status, headers, body, sock

    def resp(self):
        """As a harness Resp, for assert_problem."""
        msg = http.client.HTTPMessage()
        for k, v in self.headers.items():
            msg[k] = v
        return Resp(self.status, msg, self.body)

    def __repr__(self):
        return f"<Raw {self.status} {self.headers} {self.body[:300]!r}>"


def connect(port, source=None, tls=None, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname="localhost")
    return s


def _recv(sock, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
    except (socket.timeout, ssl.SSLWantReadError):
        raise TimeoutError


def read_answer(sock, within):
    """Reads one response (head, and the body its Content-Length gives;
    none after a 101) within `within` seconds.  AssertionError when nothing
    complete arrived in time."""
    deadline = time.monotonic() + within
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = _recv(sock, deadline)
            if not chunk:
                if data:
                    raise AssertionError(f"connection closed inside the response head: {data!r}")
                return Raw(None, {}, b"", sock)
            data += chunk
        status, headers, body = parse_response_head(data)
        if status != 101:
            n = int(headers.get("content-length", "0") or 0)
            while len(body) < n:
                chunk = _recv(sock, deadline)
                if not chunk:
                    break
                body += chunk
        return Raw(status, headers, body, sock)
    except TimeoutError:
        raise AssertionError(f"no complete answer within {within} s (got {data[:300]!r})") from None


def closed_within(sock, limit_s):
    """True when the server closes the socket (EOF or reset) within limit_s,
    whatever else it sends first."""
    deadline = time.monotonic() + limit_s
    try:
        while _recv(sock, deadline):
            pass
        return True
    except TimeoutError:
        return False
    except (OSError, ssl.SSLError):
        return True


def send_head(port, method, path, headers, source=None, tls=None):
    """Sends a request line and headers only (no byte of any body they
    announce); returns the socket."""
    s = connect(port, source=source, tls=tls)
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(k.lower() == "host" for k in headers):
        lines.append(f"Host: 127.0.0.1:{port}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return s


def body_first(port, method, path, headers, length=MIB, source=None):
    """A request whose body is announced (Content-Length) but never sent:
    the answer must come from the headers alone, within ANSWER_S, and the
    connection be closed after it.  Returns the answer as a Resp."""
    hdrs = {"Content-Type": "application/json", "Content-Length": str(length)}
    hdrs.update(headers)
    s = send_head(port, method, path, hdrs, source=source)
    try:
        got = read_answer(s, ANSWER_S)
        assert got.status is not None, f"{method} {path}: closed without an answer"
        assert closed_within(s, CLOSE_S), \
            f"{method} {path}: the connection stayed open after {got.status} (the body would be read next)"
        return got.resp()
    finally:
        s.close()


def upgrade(port, path="/ws", protocol=SUBPROTOCOL, headers=None, host=None, tls=None):
    """A websocket upgrade on a raw socket; returns the Raw answer (socket
    open: close it)."""
    hdrs = {"Host": host or f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": WS_KEY, "Sec-WebSocket-Version": "13"}
    if protocol is not None:
        hdrs["Sec-WebSocket-Protocol"] = protocol
    hdrs.update(headers or {})
    s = send_head(port, "GET", path, hdrs, tls=tls)
    try:
        return read_answer(s, 5.0)
    except BaseException:
        s.close()
        raise


def assert_upgrade_refused(port, want, what, **kw):
    """The upgrade is answered `want` (an HTTP status, not a dropped
    connection nor a 101), then the connection is closed."""
    got = upgrade(port, **kw)
    try:
        assert got.status == want, f"{what}: expected {want}, got {got!r}"
        assert closed_within(got.sock, CLOSE_S), f"{what}: the connection stayed open after {want}"
    finally:
        got.sock.close()


def assert_upgraded(port, what, **kw):
    got = upgrade(port, **kw)
    try:
        assert got.status == 101, f"{what}: expected 101, got {got!r}"
        assert got.headers.get("sec-websocket-protocol") == SUBPROTOCOL, got
    finally:
        got.sock.close()


def bearer(credential):
    return {"Authorization": f"Bearer {credential}"}


# --------------------------------------------------------------------------
# Servers and credentials
# --------------------------------------------------------------------------


def sensor_key(database, sensors=None):
    """`kendali key create --types sensor [--sensors ...]`, before the
    server starts; the key (alone on the last line)."""
    args = ["key", "create", "--poster", "gw", "--types", "sensor"]
    if sensors:
        args += ["--sensors", sensors]
    cp = kendali_cli(database, *args)
    key = cp.stdout.strip().splitlines()[-1].strip()
    assert key.startswith("kd_"), f"`key create` printed no key: {cp.stdout!r}"
    return key


class World:
    """A database with a wall and an operator screen token, an operator user
    and a sensor gateway's key for SMG-1 and SMG-2, and a server on it that
    demands an identity."""


@pytest.fixture
def world(fresh_database, make_server):
    w = World()
    w.db = fresh_database
    kendali_cli(w.db, "migrate")
    w.wall = create_token(w.db, "sec-wall", "wall")
    w.operator_token = create_token(w.db, "sec-operator", "operator")
    w.user, w.password = "sec-op", create_user(w.db, "sec-op", "operator")
    w.key = sensor_key(w.db, "SMG-1,SMG-2")
    w.srv = make_server(w.db, "--request-timeout", "5", anonymous=False, migrate=False)
    return w


def put_sensor(srv, sensor_id, key, body=GAUGE):
    c = srv.http(key=key)
    try:
        return c.put(f"/api/v1/sensors/{sensor_id}", body)
    finally:
        c.close()


def assert_healthy(srv, key, sensor_id="SMG-2"):
    """The server answers /readyz and registers a sensor."""
    c = srv.http()
    try:
        r = c.get("/readyz", key=None)
        assert r.status == 200, f"GET /readyz: {r}"
    finally:
        c.close()
    r = put_sensor(srv, sensor_id, key)
    assert r.status in (200, 201), f"PUT /api/v1/sensors/{sensor_id}: {r}"
    return r


# --------------------------------------------------------------------------
# A. Sensor ids and the scope of a key
# --------------------------------------------------------------------------


def test_empty_sensor_id_is_invalid_and_does_not_crash(world):
    srv = world.srv
    assert_problem(put_sensor(srv, "", None), 401, "unauthorized")
    try:
        r = put_sensor(srv, "", world.key)
    except (http.client.RemoteDisconnected, ConnectionError) as e:
        time.sleep(0.2)
        pytest.fail(f"PUT /api/v1/sensors/ with a scoped key: no answer ({e!r}); "
                    f"the server's exit status: {srv.proc.poll()}")
    assert_problem(r, 422, "invalid_event", field="sensor_id")
    r = assert_healthy(srv, world.key, "SMG-2")
    assert r.status == 201, r


def test_malformed_sensor_ids_are_invalid_not_forbidden(world):
    """A comma (also URL-encoded) or 65 characters: the id is invalid (422),
    before the key's scope is looked at (today a comma that lines up with
    the key's list was 403)."""
    for sensor_id in (",SMG-1", "SMG-1,", "S" * 65, "SMG-1%2CSMG-2"):
        r = put_sensor(world.srv, sensor_id, world.key)
        assert r.status == 422, f"PUT /api/v1/sensors/{sensor_id}: {r}"
        assert_problem(r, 422, "invalid_event", field="sensor_id")
    assert world.db.scalar("SELECT count(*) FROM sensors") == 0, "a refused sensor was stored"
    assert_healthy(world.srv, world.key)


def test_key_scope_matches_whole_sensor_ids(world):
    """Regression guard: parts of an allowed id are not allowed (today's
    code already refuses them)."""
    for sensor_id in ("SMG", "MG-1", "SMG-1X", "SMG-"):
        assert_problem(put_sensor(world.srv, sensor_id, world.key), 403, "forbidden")
    assert put_sensor(world.srv, "SMG-2", world.key).status == 201
    assert put_sensor(world.srv, "SMG-2", world.key).status == 200
    c = world.srv.http(key=world.key)
    try:
        assert_problem(c.post_events([ev_reading("SMG", 10)]), 403, "forbidden")
    finally:
        c.close()
    assert world.db.scalar("SELECT count(*) FROM sensors") == 1
    assert_healthy(world.srv, world.key)


# --------------------------------------------------------------------------
# B. Websocket upgrades
# --------------------------------------------------------------------------


def test_upgrade_without_the_subprotocol_is_refused(world):
    assert_upgrade_refused(world.srv.port, 400, "no Sec-WebSocket-Protocol", protocol=None,
                           headers=bearer(world.wall))


def test_upgrade_to_the_http_protocol_is_refused(world):
    assert_upgrade_refused(world.srv.port, 400, "Sec-WebSocket-Protocol: http", protocol="http",
                           headers=bearer(world.wall))


@pytest.mark.parametrize("path", ["/other", "/", "/api/v1/kpis"])
def test_upgrade_elsewhere_than_ws_is_not_found(world, path):
    assert_upgrade_refused(world.srv.port, 404, f"an upgrade to {path}", path=path,
                           headers=bearer(world.wall))


def test_upgrade_without_identity_is_unauthorized(world):
    assert_upgrade_refused(world.srv.port, 401, "an upgrade without a credential")
    assert_upgraded(world.srv.port, "an upgrade with a wall token", headers=bearer(world.wall))


def test_upgrade_from_another_origin_is_forbidden(world):
    assert_upgrade_refused(world.srv.port, 403, f"an upgrade from http://{EVIL}",
                           headers=dict(bearer(world.wall), Origin=f"http://{EVIL}"))
    assert_upgraded(world.srv.port, "an upgrade with a wall token", headers=bearer(world.wall))


@pytest.mark.parametrize("path", ["/ws", "/mayor"])
@pytest.mark.parametrize("then", [b"", b"GET /healthz HTTP/1.1\r\nHost: %b\r\n\r\n"],
                         ids=["alone", "pipelined"])
def test_upgrade_to_another_protocol_gets_one_refusal_then_the_end(world, path, then):
    """docs/api.md section 9: an `Upgrade` other than websocket is refused by
    libwebsockets itself (its 403 page), and the connection closes.  Found
    by the request-parsing fuzz: on a connection kept alive by an earlier
    request, libwebsockets then asked the server anyway, with the
    request's headers gone, and a second answer (a 404) followed the 403;
    with nothing pipelined, the headers it passed had been freed."""
    port = world.srv.port
    host = f"127.0.0.1:{port}".encode()
    first = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: application/json\r\n"
           f"Authorization: Bearer {world.wall}\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=CLOSE_S)
    got = b""
    try:
        s.sendall(first)
        r = read_answer(s, CLOSE_S)
        assert r.status == 200, f"GET /healthz: {r!r}"
        s.sendall(req + (then.replace(b"%b", host) if then else b""))
        deadline = time.monotonic() + CLOSE_S
        while True:
            assert time.monotonic() < deadline, f"{path}: still open after {got!r}"
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = dict(ln.split(b": ", 1) for ln in lines[1:])
    assert lines[0] in (b"HTTP/1.0 403 Forbidden", b"HTTP/1.1 403 Forbidden"), got
    assert fields.get(b"content-type") == b"text/html", got
    assert int(fields[b"content-length"]) == len(body), f"more than the one refusal: {got!r}"
    assert_healthy(world.srv, world.key)


# --------------------------------------------------------------------------
# C. Nothing of a body is read before the caller is identified
# --------------------------------------------------------------------------


def test_ack_without_identity_is_refused_before_the_body(world):
    assert_problem(body_first(world.srv.port, "POST", "/api/v1/alerts/1/ack", {}), 401, "unauthorized")


def test_events_without_key_are_refused_before_the_body(world):
    assert_problem(body_first(world.srv.port, "POST", "/api/v1/events", {}), 401, "unauthorized")


def test_events_with_unknown_key_are_refused_before_the_body(world):
    r = body_first(world.srv.port, "POST", "/api/v1/events", bearer("kd_000000000000_wrong"))
    assert_problem(r, 401, "unauthorized")


def test_logout_without_identity_is_refused_before_the_body(world):
    assert_problem(body_first(world.srv.port, "POST", "/api/v1/logout", {}), 401, "unauthorized")


def test_unknown_address_is_answered_before_the_body(world):
    assert_problem(body_first(world.srv.port, "POST", "/api/v1/nowhere", {}), 404, "not_found")


def test_post_to_a_page_is_answered_before_the_body(world):
    assert_problem(body_first(world.srv.port, "POST", "/", {}), 405, "method_not_allowed")


def test_small_endpoints_refuse_large_bodies_from_the_headers(world):
    port = world.srv.port
    r = body_first(port, "POST", "/api/v1/session", {}, length=SMALL_MAX + 1, source=next_source())
    assert_problem(r, 413, "too_large")
    r = body_first(port, "POST", "/api/v1/alerts/1/ack", bearer(world.operator_token),
                   length=SMALL_MAX + 1)
    assert_problem(r, 413, "too_large")
    r = body_first(port, "PUT", "/api/v1/sensors/SMG-1", bearer(world.key), length=SENSOR_MAX + 1)
    assert_problem(r, 413, "too_large")
    # control: a login of ordinary size works
    cookie, _ = login(world.srv, world.user, world.password, source=next_source())
    assert cookie


def post_whole_body(port, path, headers, length):
    """POST a body of length bytes the way http.client does: all of it is
    written before the answer is read."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("POST", path, body=b"x" * length,
                  headers=dict({"Content-Type": "application/json"}, **headers))
        r = c.getresponse()
        return Resp(r.status, r.msg, r.read())
    finally:
        c.close()


def test_a_client_that_writes_its_body_first_still_gets_the_answer(world):
    """Refused from its headers, a request's body is read and dropped
    before the connection closes (a lingering close): a client that writes
    its whole body before reading gets the problem, not a broken pipe."""
    port = world.srv.port
    assert_problem(post_whole_body(port, "/api/v1/events", {}, MIB), 401, "unauthorized")
    assert_problem(post_whole_body(port, "/api/v1/events", bearer(world.key), 2 * MIB), 413, "too_large")
    assert_problem(post_whole_body(port, "/api/v1/alerts/1/ack", {}, 64 * 1024), 401, "unauthorized")
    assert_healthy(world.srv, world.key)


def test_concurrent_password_checks_are_capped(fresh_database, make_server):
    kendali_cli(fresh_database, "migrate")
    password = create_user(fresh_database, "cap-op", "operator")
    srv = make_server(fresh_database, "--max-logins", "2", anonymous=False, migrate=False)
    n = 12
    barrier = threading.Barrier(n)
    answers = [None] * n

    def attempt(i):
        c = srv.http(source=f"127.0.0.{100 + i}", timeout=15)
        try:
            barrier.wait(5)
            answers[i] = c.post("/api/v1/session", {"username": f"nobody-{i}", "password": "wrong-password"},
                                key=None, fresh=True)
        finally:
            c.close()
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert all(a is not None for a in answers), f"some logins got no answer: {answers}"
    for a in answers:
        if a.status == 503:
            assert_problem(a, 503, "unavailable")
            retry = a.headers.get("Retry-After")
            assert retry and retry.isdigit() and int(retry) >= 1, f"a 503 without Retry-After: {a.headers}"
        else:
            assert_problem(a, 401, "login_failed")
    statuses = [a.status for a in answers]
    assert 503 in statuses, f"12 password checks at once with --max-logins 2 were all run: {statuses}"
    cookie, _ = login(srv, "cap-op", password, source="127.0.0.99")
    assert cookie


# --------------------------------------------------------------------------
# D. Host header and proxies
# --------------------------------------------------------------------------


@pytest.fixture
def anon_srv(fresh_database, make_server):
    return make_server(fresh_database)


def get(srv, path, headers):
    c = srv.http()
    try:
        return c.get(path, key=None, headers=headers, fresh=True)
    finally:
        c.close()


def test_foreign_host_header_is_misdirected(anon_srv):
    port = anon_srv.port
    for host in (EVIL, f"{EVIL}:{port}"):
        assert_problem(get(anon_srv, "/api/v1/kpis", {"Host": host}), 421, "unknown_host")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        r = get(anon_srv, "/api/v1/kpis", {"Host": host})
        assert r.status == 200, f"Host {host}: {r}"


def test_host_name_option_names_this_server(fresh_database, make_server):
    srv = make_server(fresh_database, "--host-name", "kendali.example")
    r = get(srv, "/api/v1/kpis", {"Host": f"kendali.example:{srv.port}"})
    assert r.status == 200, f"Host kendali.example:{srv.port}: {r}"
    assert_problem(get(srv, "/api/v1/kpis", {"Host": EVIL}), 421, "unknown_host")


def test_upgrade_with_foreign_host_is_misdirected(anon_srv):
    assert_upgrade_refused(anon_srv.port, 421, f"an upgrade with Host: {EVIL}", host=EVIL)
    assert_upgraded(anon_srv.port, "an anonymous upgrade from loopback")


def test_proxied_requests_are_not_loopback(anon_srv):
    assert get(anon_srv, "/api/v1/kpis", {}).status == 200, "anonymous from loopback"
    for hdr in ({"X-Forwarded-For": "203.0.113.5"}, {"Forwarded": "for=203.0.113.5"}):
        assert_problem(get(anon_srv, "/api/v1/kpis", hdr), 401, "unauthorized")
    assert get(anon_srv, "/metrics", {}).status == 200, "/metrics from loopback"
    r = get(anon_srv, "/metrics", {"X-Forwarded-For": "203.0.113.5"})
    assert r.status == 401, f"/metrics of a proxied request: {r}"


# --------------------------------------------------------------------------
# E. Under TLS the Origin's scheme counts
# --------------------------------------------------------------------------


@pytest.fixture
def tls_server(fresh_database, tmp_path):
    """(port, wall token) of `kendali serve` with TLS, no anonymous access."""
    kendali_cli(fresh_database, "migrate")
    token = create_token(fresh_database, "tls-wall", "wall")
    with TlsServer(fresh_database, tmp_path) as port:
        yield port, token


def test_tls_upgrade_from_a_plain_http_origin_is_forbidden(tls_server):
    port, token = tls_server
    ctx = insecure_context()
    assert_upgrade_refused(port, 403, "an upgrade under TLS from an http:// Origin", tls=ctx,
                           headers=dict(bearer(token), Origin=f"http://127.0.0.1:{port}"))
    assert_upgraded(port, "an upgrade under TLS from the https:// Origin", tls=ctx,
                    headers=dict(bearer(token), Origin=f"https://127.0.0.1:{port}"))


def test_origin_scheme_follows_a_tls_proxy(world):
    """Behind a proxy that serves TLS and says so (X-Forwarded-Proto:
    https), the pages' Origin is https://: that one is the site's own, an
    http:// one is not."""
    port = world.srv.port
    host = f"127.0.0.1:{port}"
    via_tls = dict(bearer(world.wall), **{"X-Forwarded-Proto": "https"})
    assert_upgraded(port, "an upgrade through a TLS proxy from its https:// Origin",
                    headers=dict(via_tls, Origin=f"https://{host}"))
    assert_upgrade_refused(port, 403, "an upgrade through a TLS proxy from an http:// Origin",
                           headers=dict(via_tls, Origin=f"http://{host}"))
    assert_upgrade_refused(port, 403, "a plain upgrade from an https:// Origin",
                           headers=dict(bearer(world.wall), Origin=f"https://{host}"))


# --------------------------------------------------------------------------
# F. ?token= does not replace a person's session
# --------------------------------------------------------------------------


def set_cookies(r):
    return r.headers.get_all("Set-Cookie") or []


def test_token_in_the_address_keeps_a_persons_session(world):
    src = next_source()
    cookie, _ = login(world.srv, world.user, world.password, source=src)
    c = world.srv.http(source=src, cookie=cookie)
    try:
        r = c.get(f"/?token={world.wall}", key=None)
        assert r.status == 303 and r.headers.get("Location") == "/", f"GET /?token= with a session: {r}"
        assert not set_cookies(r), f"a planted token replaced the session's cookie: {set_cookies(r)}"
        s = c.get("/api/v1/session", key=None)
        assert s.status == 200 and s.json["kind"] == "user" and s.json["name"] == world.user, s
    finally:
        c.close()


def test_token_in_the_address_becomes_a_30_day_cookie(world):
    src = next_source()
    cookie, _ = login(world.srv, world.user, world.password, source=src)
    c = world.srv.http(source=src)
    try:
        assert c.post("/api/v1/logout", None, key=None, cookie=cookie).status == 200
        for held in (None, cookie, "ss_000000000000_" + "0" * 48):
            r = c.get(f"/?token={world.wall}", key=None, cookie=held)
            assert r.status == 303 and r.headers.get("Location") == "/", f"GET /?token= (cookie {held!r}): {r}"
            sc = session_set_cookie(r)
            assert sc is not None, f"the token was not set as the cookie (cookie {held!r}): {set_cookies(r)}"
            value, attrs = sc
            assert value == world.wall, sc
            assert attrs.get("max-age") == str(THIRTY_DAYS_S), \
                f"a screen token's cookie lasts 30 days (Max-Age={THIRTY_DAYS_S}): {attrs}"
    finally:
        c.close()


# --------------------------------------------------------------------------
# G. Durations
# --------------------------------------------------------------------------


def test_series_durations_do_not_overflow(anon_srv):
    c = anon_srv.http()
    try:
        def series(q):
            return c.get(f"/api/v1/series?name=calls.received&{q}", key=None)
        assert_problem(series("window=213503983d&step=1h"), 400, "bad_request")
        assert_problem(series("window=31d&step=1h"), 400, "bad_request")
        assert_problem(series("window=30d&step=999999999999d"), 400, "bad_request")
        r = series("window=30d&step=1d")
        assert r.status == 200 and len(r.json["buckets"]) == 30, r
    finally:
        c.close()


# --------------------------------------------------------------------------
# H. Logins per account
# --------------------------------------------------------------------------


def try_login(srv, username, password):
    """One login attempt from an address of its own."""
    c = srv.http(source=next_source())
    try:
        return c.post("/api/v1/session", {"username": username, "password": password}, key=None)
    finally:
        c.close()


def five_failures_then_wait(srv, username):
    """Five wrong passwords in a row (each from another address) are 401;
    the sixth, at once, is 429.  Returns its Retry-After."""
    for i in range(5):
        assert_problem(try_login(srv, username, "wrong-password"), 401, "login_failed")
    r = try_login(srv, username, "wrong-password")
    assert_problem(r, 429, "rate_limited")
    retry = r.headers.get("Retry-After")
    assert retry and retry.isdigit() and 1 <= int(retry) <= 30, f"Retry-After {retry!r}"
    return int(retry)


def test_failed_logins_of_one_account_back_off(world):
    retry = five_failures_then_wait(world.srv, world.user)
    time.sleep(retry)
    r = try_login(world.srv, world.user, world.password)
    assert r.status == 200, f"the right password after Retry-After ({retry} s): {r}"
    assert_problem(try_login(world.srv, world.user, "wrong-password"), 401, "login_failed")


def test_failed_logins_of_an_unknown_name_back_off(world):
    five_failures_then_wait(world.srv, "nobody-at-all")


# --------------------------------------------------------------------------
# I. User names
# --------------------------------------------------------------------------


def test_user_names_with_spaces_or_controls_are_refused(world):
    """At the command line (exit 2, nothing stored) and at login (422
    invalid_login, nothing audited)."""
    for name in ("bad\nname", "bad name"):
        cp = kendali_cli(world.db, "user", "add", name, "--role", "operator",
                         input="long-enough-pw\n", check=False)
        assert cp.returncode == 2, f"`user add {name!r}` exited {cp.returncode}: {cp.stderr!r}"
    assert world.db.scalar("SELECT count(*) FROM users WHERE username LIKE 'bad%'") == 0
    src = next_source()
    c = world.srv.http(source=src)
    try:
        for name in ("a\nb", "x y"):
            r = c.post("/api/v1/session", {"username": name, "password": "wrong-password"}, key=None)
            assert_problem(r, 422, "invalid_login")
        # a failed login of a well-formed name is audited; once its row is
        # there, a row of the two above would be too
        assert_problem(c.post("/api/v1/session", {"username": "well-formed", "password": "wrong-password"},
                              key=None), 401, "login_failed")
        wait_until(lambda: world.db.scalar("SELECT count(*) FROM audit WHERE actor = 'user:well-formed'"),
                   3.0, "the audit row of a failed login")
        rows = world.db.rows("SELECT actor FROM audit WHERE actor LIKE 'user:a%' OR actor LIKE 'user:x%'")
        assert rows == [], f"a malformed login was audited: {rows}"
    finally:
        c.close()


# --------------------------------------------------------------------------
# J. A long Cookie header
# --------------------------------------------------------------------------


def test_long_cookie_header_carries_the_session(world):
    src = next_source()
    cookie, _ = login(world.srv, world.user, world.password, source=src)
    c = world.srv.http(source=src)
    try:
        r = c.get("/api/v1/session", key=None, cookie=None,
                  headers={"Cookie": f"other={'x' * 3000}; kendali_session={cookie}"})
        assert r.status == 200 and r.json["name"] == world.user, r
    finally:
        c.close()


# --------------------------------------------------------------------------
# K. A revocation heard while the reader's queue is full
# --------------------------------------------------------------------------

READER_QUEUE = 64        # server/app.c


def test_revocation_is_not_lost_when_the_reader_is_busy(world):
    """The server re-reads credentials on the reader connection when
    PostgreSQL notifies kendali_auth.  GET /api/v1/alerts?state=all reads
    `alerts` on the same connection: with `alerts` locked here, its queries
    wait there until the queue (64) is full and further ones get 503.  The
    token is revoked (the notice is delivered to the reader once its current
    query ends), the lock released: the re-read, refused by the full queue
    at that moment, must be retried (within a second), so that the token is
    refused within 3 s, not after the 60 s refresh."""
    srv, db = world.srv, world.db
    hdr = bearer(world.wall)
    c = srv.http()
    try:
        assert c.get("/api/v1/session", key=None, headers=hdr).status == 200
    finally:
        c.close()
    n = READER_QUEUE + 24
    statuses = []
    lock = db.connect()
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE")

        def read_alerts():
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
            try:
                conn.request("GET", "/api/v1/alerts?state=all", headers=hdr)
                r = conn.getresponse()
                r.read()
                statuses.append(r.status)
            except OSError as e:
                statuses.append(repr(e))
            finally:
                conn.close()
        threads = [threading.Thread(target=read_alerts) for _ in range(n)]
        for t in threads:
            t.start()
        # the queue is full once the requests beyond it have had their 503
        wait_until(lambda: statuses.count(503) >= n - READER_QUEUE - 2, 5.0,
                   f"503s for the requests beyond the reader's queue (got {statuses})")
        time.sleep(0.3)
        assert len(statuses) < n - READER_QUEUE + 2, \
            f"the reader's queries did not wait for the lock: {statuses}"
        kendali_cli(db, "token", "revoke", token_id(db, "sec-wall"))
    finally:
        lock.rollback()
        lock.close()
    for t in threads:
        t.join(15)
    assert statuses.count(200) >= READER_QUEUE, f"the queued reads were not answered: {statuses}"
    c = srv.http()
    try:
        t0 = time.monotonic()
        while (r := c.get("/api/v1/session", key=None, headers=hdr)).status == 200:
            assert time.monotonic() - t0 < 3.0, \
                "a token revoked while the reader's queue was full still works 3 s later"
            time.sleep(0.05)
        assert_problem(r, 401, "unauthorized")
    finally:
        c.close()


def test_a_body_pipelined_behind_a_request_does_not_stop_the_server(world):
    """A request with a body sent in the same write as a request before it
    (HTTP pipelining): libwebsockets 4.1 reports the end of that body again
    and again, which once spun the whole server at 100 % CPU, deaf to every
    other client, for 111 bytes without any credential.  The connection
    must end, and the server keep answering others at once."""
    attack = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
              b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\r\nx")
    for _ in range(3):
        s = socket.create_connection((world.srv.host, world.srv.port), timeout=5)
        try:
            s.sendall(attack)
            got = b""
            try:
                while chunk := s.recv(65536):
                    got += chunk
            except TimeoutError:
                pytest.fail("the pipelined connection was neither answered nor closed within 5 s")
            assert got.startswith(b"HTTP/1.1 200 "), got[:200]
        finally:
            s.close()
        t0 = time.monotonic()
        r = world.srv.http().get("/healthz", key=None)
        assert r.status == 200, r
        assert time.monotonic() - t0 < 1.0, "the server was slow to answer another client"
