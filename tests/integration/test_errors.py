"""
Every error of the ingest contract (docs/spec/api.md): the status, an RFC 9457
problem (Content-Type application/problem+json; type, title, status, detail,
code, and index / field / line / column where the contract says), and
nothing stored: the events table has the same number of rows before and
after (read directly from PostgreSQL), and the KPIs did not move.

The invalid event of a batch is never the first one, so a server that
stored the events before the bad one would be caught.
"""

import json
import time
from datetime import timedelta

import pytest

from harness import (assert_problem, ago, ev_call, ev_reading, ev_report, fmt_time, json_equal_diff,
                     create_key, kendali_cli, key_id, raw_request, sensor_body, utcnow)

MiB = 1024 * 1024
GAUGE = "SMG-BKB-MUARA"          # registered by the baseline


@pytest.fixture(scope="module")
def baseline(api, keys):
    """A little data, far from every window edge, so that KPIs are not all
    zero; and the gauge the sensor cases use."""
    r = api.put(f"/api/v1/sensors/{GAUGE}",
                sensor_body("Muara Banjir Kanal Barat", {"siaga": 180, "awas": 240}, 3600),
                key=keys["sensors"])
    assert r.status in (200, 201, 204), r
    events = [ev_call(status="received", category="fire", at=ago(minutes=10), call_id="base-1"),
              ev_call(status="answered", category=None, at=ago(minutes=9), call_id="base-1"),
              ev_call(status="received", category="info", at=ago(minutes=8), call_id="base-2")]
    r = api.post_events(events, key=keys["calls"])
    assert r.status == 202, r
    r = api.post_events([ev_report(status="received", category="flood", at=ago(hours=2),
                                   district="Genuk")], key=keys["reports"])
    assert r.status == 202, r
    r = api.post_events([ev_reading(GAUGE, 120.5, at=ago(minutes=3))], key=keys["sensors"])
    assert r.status == 202, r
    time.sleep(0.5)
    return True


class Guard:
    """Records the events row count and the KPIs, then checks that a
    rejected request changed neither."""

    def __init__(self, api, database):
        self.api, self.database = api, database

    def __enter__(self):
        self.n = self.database.count_events()
        self.kpis = self.api.kpis()["kpis"]
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return False
        n = self.database.count_events()
        assert n == self.n, f"a rejected request stored {n - self.n} event(s)"
        diffs = json_equal_diff(self.api.kpis()["kpis"], self.kpis)
        assert not diffs, "KPIs changed after a rejected request:\n  " + "\n  ".join(diffs)
        return False


@pytest.fixture
def nothing_stored(api, database, baseline):
    return Guard(api, database)


def good_calls(n):
    return [ev_call(at=ago(minutes=20)) for _ in range(n)]


# --------------------------------------------------------------------------
# 400 bad_json
# --------------------------------------------------------------------------


def test_bad_json_reports_line_and_column(api, keys, nothing_stored):
    good = json.dumps(ev_call())
    lines = ["[", "  " + good + ",", '  {"id": "x", "type": ,', "]"]
    body = "\n".join(lines)
    with nothing_stored:
        r = api.post("/api/v1/events", body, key=keys["all"], content_type="application/json", fresh=True)
        p = assert_problem(r, 400, "bad_json", line=int, column=int)
    assert p["line"] == 3, p
    assert 1 <= p["column"] <= len(lines[2]) + 1, p


@pytest.mark.parametrize("body,line", [
    ('{"id": "a", "type": "call"', 1),                       # truncated
    ("", None),                                              # empty body
    ("[1, 2,]", 1),                                          # trailing comma
    ("{'id': 'single quotes'}", 1),
    ('[\n{"id": "a"}\n{"id": "b"}\n]', 3),                   # missing comma
    ('{"id": "a", "id": "b", "type": "call"}', 1),           # a repeated key (docs/api.md)
    ('{"id": "a", "type": "sensor", "sensor": {"sensor_id": "X", "value": 1e999}}', 1),  # not a double
    ('{"id": "a", "x_deep": ' + "[" * 40 + "]" * 40 + "}", 1),                       # nested too deep
])
def test_bad_json_variants(api, keys, nothing_stored, body, line):
    with nothing_stored:
        r = api.post("/api/v1/events", body, key=keys["all"], content_type="application/json", fresh=True)
        p = assert_problem(r, 400, "bad_json", line=int, column=int)
    if line is not None:
        assert p["line"] == line, p


def test_invalid_utf8_is_bad_json(api, keys, nothing_stored):
    e = json.dumps(ev_call()).encode()
    body = b"[" + e + b"," + e.replace(b'"medical"', b'"medic\xff"') + b"]"
    with nothing_stored:
        r = api.post("/api/v1/events", body, key=keys["all"], content_type="application/json", fresh=True)
        assert_problem(r, 400, "bad_json")


def test_ndjson_bad_line_in_the_middle(api, keys, nothing_stored):
    lines = [json.dumps(e) for e in good_calls(2)] + ['{"id": "broken", "type": "call", '] + \
            [json.dumps(e) for e in good_calls(2)]
    with nothing_stored:
        r = api.post("/api/v1/events", "\n".join(lines) + "\n", key=keys["all"],
                     content_type="application/x-ndjson", fresh=True)
        p = assert_problem(r, 400, "bad_json", line=int, column=int)
    assert p["line"] == 3, p


def test_ndjson_invalid_event_in_the_middle(api, keys, nothing_stored):
    evs = good_calls(4)
    evs[2]["call"]["status"] = "ringing"
    with nothing_stored:
        r = api.post_events(evs, "ndjson", key=keys["all"], fresh=True)
        assert_problem(r, 422, "invalid_event", index=2, field="call.status")


# --------------------------------------------------------------------------
# 401 unauthorized
# --------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [
    None,
    "Bearer kd_000000000000_00000000000000000000000000000000",
    "Bearer not-a-key",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "kd_000000000000_0000",
])
def test_unauthorized(api, nothing_stored, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    with nothing_stored:
        r = api.post("/api/v1/events", json.dumps(good_calls(2)), key=None, headers=headers,
                     content_type="application/json", fresh=True)
        assert_problem(r, 401, "unauthorized")


def test_right_key_id_wrong_secret(api, keys, nothing_stored):
    kid = key_id(keys["calls"])
    secret = keys["calls"].split("_", 2)[2]
    forged = f"kd_{kid}_{secret[::-1] if secret[::-1] != secret else secret + 'x'}"
    with nothing_stored:
        r = api.post_events(good_calls(2), key=forged, fresh=True)
        assert_problem(r, 401, "unauthorized")


def test_revoked_key(api, keys, database, nothing_stored):
    key = keys["revocable"]
    r = api.post_events(good_calls(1), key=key, fresh=True)
    assert r.status == 202, f"the key works before it is revoked: {r}"
    listing = kendali_cli(database, "key", "list").stdout
    assert key_id(key) in listing, listing
    assert key.split("_", 2)[2] not in listing, "key list must not print secrets"
    kendali_cli(database, "key", "revoke", key_id(key))
    # The server may take a moment to learn of the revocation ("within about
    # 5 s"); then the key is refused and nothing is stored.
    deadline = time.monotonic() + 7
    accepted_after_revoke = 0
    while time.monotonic() < deadline:
        r = api.post_events(good_calls(1), key=key, fresh=True)
        if r.status != 202:
            break
        accepted_after_revoke += 1
        time.sleep(0.25)
    with nothing_stored:
        r = api.post_events(good_calls(1), key=key, fresh=True)
        assert r.status == 401, (f"a revoked key is still accepted 7 s after `kendali key revoke` "
                                 f"({accepted_after_revoke} requests accepted meanwhile): {r}")
        assert_problem(r, 401, "unauthorized")


def test_key_created_while_running(api, database, baseline):
    """A key made with `kendali key create` while the server runs works
    (within about 5 s): agencies are given keys without a restart."""
    key = create_key(database, "late-agency", ["call"])
    deadline = time.monotonic() + 7
    event = good_calls(1)
    while True:
        r = api.post_events(event, key=key, fresh=True)
        if r.status == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert r.status == 202, f"a key created while the server runs is refused 7 s later: {r}"


# --------------------------------------------------------------------------
# 403 forbidden
# --------------------------------------------------------------------------


def test_key_lacking_the_type(api, keys, nothing_stored):
    batch = good_calls(2) + [ev_report()] + good_calls(1)
    with nothing_stored:
        r = api.post_events(batch, key=keys["calls"], fresh=True)
        assert_problem(r, 403, "forbidden", index=2)


def test_sensor_key_posting_a_call(api, keys, nothing_stored):
    with nothing_stored:
        r = api.post_events([ev_call()], "object", key=keys["sensors"], fresh=True)
        assert_problem(r, 403, "forbidden", index=0)


def test_report_key_posting_a_reading_in_ndjson(api, keys, nothing_stored):
    batch = [ev_report(), ev_report(), ev_report(), ev_reading(GAUGE, 100)]
    with nothing_stored:
        r = api.post_events(batch, "ndjson", key=keys["reports"], fresh=True)
        assert_problem(r, 403, "forbidden", index=3)


def test_registering_a_sensor_needs_the_sensor_type(api, keys, database):
    r = api.put("/api/v1/sensors/SMG-TEST-FORBIDDEN", sensor_body("x", {"siaga": 1, "awas": 2}),
                key=keys["calls"], fresh=True)
    assert_problem(r, 403, "forbidden")
    r = api.put("/api/v1/sensors/SMG-TEST-FORBIDDEN", sensor_body("x", {"siaga": 1, "awas": 2}),
                key=None, fresh=True)
    assert_problem(r, 401, "unauthorized")
    assert database.scalar("SELECT count(*) FROM sensors WHERE sensor_id = %s",
                           ("SMG-TEST-FORBIDDEN",)) == 0


# --------------------------------------------------------------------------
# 413 too_large, 415 unsupported_media_type
# --------------------------------------------------------------------------


def padded_body(n_bytes):
    """A valid JSON array of three events padded with whitespace to n bytes."""
    body = json.dumps(good_calls(3)).encode()
    assert len(body) < n_bytes
    return body[:-1] + b" " * (n_bytes - len(body)) + b"]"


def test_body_over_1mib(server, keys, nothing_stored):
    body = padded_body(MiB + 1)
    with nothing_stored:
        r = raw_request(server.host, server.port, "POST", "/api/v1/events",
                        {"Authorization": f"Bearer {keys['calls']}", "Content-Type": "application/json"},
                        body)
        assert_problem(r, 413, "too_large")


def test_batch_of_1001(api, keys, nothing_stored):
    with nothing_stored:
        r = api.post_events(good_calls(1001), key=keys["calls"], fresh=True)
        assert_problem(r, 413, "too_large")


def test_ndjson_of_1001_lines(api, keys, nothing_stored):
    with nothing_stored:
        r = api.post_events(good_calls(1001), "ndjson", key=keys["calls"], fresh=True)
        assert_problem(r, 413, "too_large")


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])
def test_unsupported_media_type(api, keys, nothing_stored, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    with nothing_stored:
        r = api.post("/api/v1/events", json.dumps(good_calls(2)), key=keys["calls"], headers=headers,
                     fresh=True)
        assert_problem(r, 415, "unsupported_media_type")


# --------------------------------------------------------------------------
# 422 invalid_event
# --------------------------------------------------------------------------


def future(minutes):
    return fmt_time(utcnow() + timedelta(minutes=minutes))


def _set(path, value):
    """A mutation setting a dotted path (value `...` deletes it)."""
    def mutate(e):
        obj = e
        parts = path.split(".")
        for p in parts[:-1]:
            obj = obj[p]
        if value is ...:
            del obj[parts[-1]]
        else:
            obj[parts[-1]] = value
        return e
    return mutate


# (name, make a valid event, mutation, acceptable `field` values)
INVALID = [
    ("id missing", ev_call, _set("id", ...), {"id"}),
    ("id empty", ev_call, _set("id", ""), {"id"}),
    ("id 129 chars", ev_call, _set("id", "x" * 129), {"id"}),
    ("id not a string", ev_call, _set("id", 12345), {"id"}),
    ("type missing", ev_call, _set("type", ...), {"type"}),
    ("type unknown", ev_call, _set("type", "alarm"), {"type"}),
    ("occurred_at missing", ev_call, _set("occurred_at", ...), {"occurred_at"}),
    ("occurred_at not a time", ev_call, _set("occurred_at", "yesterday"), {"occurred_at"}),
    ("occurred_at without offset", ev_call, _set("occurred_at", "2026-11-23T08:15:00"), {"occurred_at"}),
    ("occurred_at impossible date", ev_call, _set("occurred_at", "2026-02-30T08:15:00+07:00"), {"occurred_at"}),
    ("occurred_at not a string", ev_call, _set("occurred_at", 1763885700), {"occurred_at"}),
    ("occurred_at 10 min ahead", ev_call, lambda e: _set("occurred_at", future(10))(e), {"occurred_at"}),
    ("district 65 chars", ev_call, _set("district", "D" * 65), {"district"}),
    ("district not a string", ev_call, _set("district", 42), {"district"}),
    ("lat 91", ev_call, _set("location", {"lat": 91, "lon": 110.4}), {"location.lat"}),
    ("lon -181", ev_call, _set("location", {"lat": -7, "lon": -181}), {"location.lon"}),
    ("lat not a number", ev_call, _set("location", {"lat": "-7", "lon": 110.4}), {"location.lat"}),
    ("location not an object", ev_call, _set("location", "Simpang Lima"), {"location"}),
    ("call object missing", ev_call, _set("call", ...), {"call"}),
    ("call not an object", ev_call, _set("call", "x"), {"call"}),
    ("call and report both given", ev_call, _set("report", {"ticket": "T", "status": "received",
                                                           "category": "road"}), {"report", "call"}),
    ("call_id missing", ev_call, _set("call.call_id", ...), {"call.call_id"}),
    ("call_id 65 chars", ev_call, _set("call.call_id", "c" * 65), {"call.call_id"}),
    ("call status unknown", ev_call, _set("call.status", "ringing"), {"call.status"}),
    ("call category unknown", ev_call, _set("call.category", "weather"), {"call.category"}),
    ("call received without category", ev_call, _set("call.category", ...), {"call.category"}),
    ("ticket missing", ev_report, _set("report.ticket", ...), {"report.ticket"}),
    ("ticket 65 chars", ev_report, _set("report.ticket", "T" * 65), {"report.ticket"}),
    ("report status unknown", ev_report, _set("report.status", "done"), {"report.status"}),
    ("report category unknown", ev_report, _set("report.category", "noise"), {"report.category"}),
    ("report received without category", ev_report, _set("report.category", ...), {"report.category"}),
    ("dispatched without agency",
     lambda: ev_report(status="dispatched", category=None), lambda e: e, {"report.agency"}),
    ("agency 33 chars",
     lambda: ev_report(status="dispatched", agency="A" * 33), lambda e: e, {"report.agency"}),
    ("title 201 chars", ev_report, _set("report.title", "t" * 201), {"report.title"}),
    ("title not a string", ev_report, _set("report.title", 5), {"report.title"}),
    ("reading value not a number", lambda: ev_reading(GAUGE, 1), _set("sensor.value", "abc"), {"sensor.value"}),
    ("reading value missing", lambda: ev_reading(GAUGE, 1), _set("sensor.value", ...), {"sensor.value"}),
    ("reading of an unregistered sensor", lambda: ev_reading("SMG-NOT-REGISTERED", 1), lambda e: e,
     {"sensor.sensor_id"}),
    # null means "not given" (docs/api.md): a received call with a null category lacks it
    ("call category null on received", ev_call, _set("call.category", None), {"call.category"}),
    ("id null", ev_call, _set("id", None), {"id"}),
    # lengths are bytes of UTF-8 (docs/api.md): 33 x "é" is 66 bytes, 67 x "☂" is 201
    ("district 66 bytes in 33 chars", ev_call, _set("district", "é" * 33), {"district"}),
    ("title 201 bytes in 67 chars", ev_report, _set("report.title", "☂" * 67), {"report.title"}),
    ("id 129 bytes in 43 chars", ev_call, _set("id", "☂" * 43), {"id"}),
]


@pytest.mark.parametrize("name,make,mutate,fields", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_event_in_a_batch(api, keys, nothing_stored, name, make, mutate, fields):
    bad = mutate(make())
    batch = good_calls(2) + [bad] + good_calls(1)
    with nothing_stored:
        r = api.post_events(batch, key=keys["all"], fresh=True)
        p = assert_problem(r, 422, "invalid_event", index=2, field=set(fields))
    assert p["index"] == 2


@pytest.mark.parametrize("name,make,mutate,fields",
                         [c for c in INVALID if c[0] in ("call status unknown", "occurred_at 10 min ahead",
                                                         "reading of an unregistered sensor")])
def test_invalid_single_object(api, keys, nothing_stored, name, make, mutate, fields):
    with nothing_stored:
        r = api.post_events([mutate(make())], "object", key=keys["all"], fresh=True)
        assert_problem(r, 422, "invalid_event", index=0, field=set(fields))


def test_event_that_is_not_an_object(api, keys, nothing_stored):
    body = json.dumps(good_calls(2) + [42])
    with nothing_stored:
        r = api.post("/api/v1/events", body, key=keys["all"], content_type="application/json", fresh=True)
        assert_problem(r, 422, "invalid_event", index=2)


@pytest.mark.parametrize("body,ctype", [("[]", "application/json"), ("\n", "application/x-ndjson")])
def test_empty_batch(api, keys, nothing_stored, body, ctype):
    with nothing_stored:
        r = api.post("/api/v1/events", body, key=keys["all"], content_type=ctype, fresh=True)
        assert_problem(r, 422, "invalid_event")


def test_invalid_sensor_registration(api, keys, database):
    def body(**kw):
        b = sensor_body("x", {"siaga": 150, "awas": 200})
        b.update(kw)
        return b
    cases = [
        ("thresholds not ascending", body(thresholds={"waspada": 200, "siaga": 150, "awas": 300}), 422),
        ("thresholds equal", body(thresholds={"siaga": 150, "awas": 150}), 422),
        ("threshold not a number", body(thresholds={"siaga": "high", "awas": 300}), 422),
        ("no threshold", body(thresholds={}), 422),
        ("unknown level", body(thresholds={"siaga": 150, "bahaya": 400}), 422),
        ("offline_after_s too small", body(offline_after_s=30), 422),     # docs/api.md: 60..604800
        ("name missing", {k: v for k, v in body().items() if k != "name"}, 422),
        ("not an object", [1, 2], 422),
        ("not JSON", "{oops", 400),
    ]
    for name, b, status in cases:
        r = api.put("/api/v1/sensors/SMG-TEST-INVALID", b if isinstance(b, str) else json.dumps(b),
                    key=keys["sensors"], content_type="application/json", fresh=True)
        try:
            assert_problem(r, status, "invalid_event" if status == 422 else "bad_json")
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    r = api.put("/api/v1/sensors/bad%20id!", json.dumps(body()), key=keys["sensors"],
                content_type="application/json", fresh=True)
    assert_problem(r, 422, "invalid_event")
    assert database.scalar("SELECT count(*) FROM sensors WHERE sensor_id = %s", ("SMG-TEST-INVALID",)) == 0


def test_order_of_checks(server, api, keys, nothing_stored):
    """A request always gets the same error, whatever else is wrong with it
    (docs/api.md 3.6: key, size, content type, syntax, count, fields,
    permission)."""
    with nothing_stored:
        r = raw_request(server.host, server.port, "POST", "/api/v1/events",
                        {"Content-Type": "text/plain"}, padded_body(MiB + 1))
        assert_problem(r, 401, "unauthorized")                      # key before the size
        r = raw_request(server.host, server.port, "POST", "/api/v1/events",
                        {"Content-Type": "text/plain", "Authorization": f"Bearer {keys['calls']}"},
                        padded_body(MiB + 1))
        assert_problem(r, 413, "too_large")                         # size before content type
        r = api.post("/api/v1/events", "{oops", key="kd_000000000000_00", content_type="text/plain",
                     fresh=True)
        assert_problem(r, 401, "unauthorized")                      # key before content type
        r = api.post("/api/v1/events", "{oops", key=keys["calls"], content_type="text/plain", fresh=True)
        assert_problem(r, 415, "unsupported_media_type")            # content type before syntax
        bad = good_calls(1001)
        body = json.dumps(bad)[:-1] + ",]"
        r = api.post("/api/v1/events", body, key=keys["calls"], content_type="application/json", fresh=True)
        assert_problem(r, 400, "bad_json")                          # syntax before the count
        bad[5]["call"]["status"] = "ringing"
        r = api.post_events(bad, key=keys["calls"], fresh=True)
        assert_problem(r, 413, "too_large")                         # count before the fields
        batch = [ev_report(), ev_call(category="weather")]
        r = api.post_events(batch, key=keys["calls"], fresh=True)
        assert_problem(r, 422, "invalid_event", index=1, field="call.category")   # fields before permission
        batch = [ev_call(), ev_call(call_id="c" * 65)]
        r = api.post_events(batch, key=keys["calls"], fresh=True)
        assert_problem(r, 422, "invalid_event", index=1, field="call.call_id")


def test_server_still_accepts_after_all_errors(api, keys, baseline):
    r = api.post_events(good_calls(3), key=keys["calls"])
    assert r.status == 202 and r.json["accepted"] == 3, r


def raw_exchange(port, request, timeout=5.0):
    """Sends raw request bytes and reads until the server closes (or
    timeout); returns (status, headers, rest), status None when nothing came
    back."""
    import socket
    from harness import parse_response_head
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    if not data:
        return None, {}, b""
    return parse_response_head(data)


def test_http_limits_of_the_request_text(server, keys, nothing_stored):
    """docs/api.md, errors: 411 length_required for a body without
    Content-Length (the connection then closed), 414 uri_too_long past 255
    bytes of path, and headers over 4 KiB closing the connection."""
    key = keys["calls"]
    host = f"127.0.0.1:{server.port}"
    # A body announced as chunked: no Content-Length.
    status, headers, rest = raw_exchange(server.port, (
        f"POST /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n[]\r\n0\r\n\r\n").encode())
    assert status == 411 and json.loads(rest)["code"] == "length_required", (status, rest[:200])
    assert headers.get("connection", "").lower() == "close", headers
    # 255 bytes of path are read; 256 are too many.
    for n, want in ((255, 404), (256, 414)):
        path = "/" + "p" * (n - 1)
        status, _, rest = raw_exchange(server.port, (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode())
        assert status == want, (n, status, rest[:200])
        if want == 414:
            assert json.loads(rest)["code"] == "uri_too_long", rest[:200]
    # 4 KiB of headers at most: past that the connection is closed, with
    # nothing served (docs/security.md, limits).
    status, _, _ = raw_exchange(server.port, (
        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Pad: {'x' * 6000}\r\n"
        "Connection: close\r\n\r\n").encode())
    assert status is None, f"a request with 6 KiB of headers got {status}, not a closed connection"
    # And the server goes on serving.
    status, _, _ = raw_exchange(server.port, (
        f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode())
    assert status == 200
