"""
TLS: with --tls-cert and --tls-key the server speaks HTTPS and WSS only,
pages carry Strict-Transport-Security, and the API works as over HTTP.
"""

import asyncio
import http.client
import json
import shutil
import ssl
import subprocess
import time

import pytest
import websockets

from harness import free_port, kendali_cli, require_binary, sanitized_env


def self_signed(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate (scripts/deps.sh installs it)")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_https_and_wss(fresh_database, tmp_path):
    cert, key = self_signed(tmp_path)
    kendali_cli(fresh_database, "migrate")
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([str(require_binary()), "serve", "--listen", f"127.0.0.1:{port}",
                             "--tls-cert", str(cert), "--tls-key", str(key)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env=sanitized_env(DATABASE_URL=fresh_database.url))
    try:
        ctx = insecure_context()
        deadline = time.monotonic() + 15
        while True:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=ctx)
                c.request("GET", "/readyz")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)

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

        # Plain HTTP to the TLS port gets no answer.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/readyz")
            plain.getresponse().read()
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
        log.close()
    # A clean stop exits 0; under the sanitizers a leak or error would not.
    assert code == 0, f"the server exited {code}: {(tmp_path / 'server.log').read_text()[-2000:]}"
