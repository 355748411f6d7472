"""
TLS: with --tls-cert and --tls-key the server speaks HTTPS and WSS only,
pages carry Strict-Transport-Security, the API works as over HTTP, and the
session cookie (of a login or of a screen token) carries `Secure`.
"""

import asyncio
import http.client
import json

import pytest
import websockets

from harness import (TlsServer, create_token, create_user, insecure_context, kendali_cli, parse_set_cookie,
                     SESSION_COOKIE)


def test_https_and_wss(fresh_database, tmp_path):
    kendali_cli(fresh_database, "migrate")
    password = create_user(fresh_database, "tls-operator", "operator")
    wall_token = create_token(fresh_database, "tls-wall", "wall")
    with TlsServer(fresh_database, tmp_path, "--anonymous-loopback") as port:
        ctx = insecure_context()
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        assert r.status == 200 and r.version == 11
        assert r.getheader("Strict-Transport-Security", "").startswith("max-age=")
        c.request("GET", "/api/v1/kpis")
        r = c.getresponse()
        assert r.status == 200 and "kpis" in json.loads(r.read())

        async def first_message():
            async with websockets.connect(f"wss://127.0.0.1:{port}/ws",
                                          subprotocols=["situation.v1"], ssl=ctx) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert asyncio.run(first_message())["type"] == "snapshot"

        # The session cookie carries Secure under TLS (docs/security.md),
        # with the attributes it has over plain HTTP.
        def session_cookie(resp):
            found = [parse_set_cookie(h) for h in resp.headers.get_all("Set-Cookie") or []]
            found = [(v, a) for n, v, a in found if n == SESSION_COOKIE]
            assert found, f"no {SESSION_COOKIE} cookie set: {resp.headers.get_all('Set-Cookie')}"
            return found[0]

        c.request("POST", "/api/v1/session", body=json.dumps({"username": "tls-operator", "password": password}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        value, attrs = session_cookie(r)
        assert value and attrs.get("secure") is True, f"login: the cookie lacks Secure under TLS: {attrs}"
        assert attrs.get("httponly") is True and str(attrs.get("samesite", "")).lower() == "strict" \
            and attrs.get("path") == "/", f"login: {attrs}"
        c.request("GET", f"/?token={wall_token}")
        r = c.getresponse()
        r.read()
        assert r.status == 303, r.status
        value, attrs = session_cookie(r)
        assert value and attrs.get("secure") is True, f"?token=: the cookie lacks Secure under TLS: {attrs}"

        # Plain HTTP to the TLS port gets no answer.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/readyz")
            plain.getresponse().read()
