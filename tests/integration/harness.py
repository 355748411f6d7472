"""
Building blocks of the integration suite: a private PostgreSQL cluster, the
kendali server process and its command line, an HTTP client, a websocket
client, problem-details assertions and the KPI comparison.

conftest.py turns these into fixtures; the test modules import what they need
from here directly.  Nothing in this file knows about a particular machine:
every path is computed from __file__ or from the environment.
"""

import asyncio
import glob
import http.client
import json
import math
import os
import pwd
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA_FILE = REPO / "data" / "semarang.json"

WIB = timezone(timedelta(hours=7), "WIB")
UTC = timezone.utc

# The KPI catalogue (docs/spec/kpis.md, docs/kpis.md): every key the snapshot
# must carry.
CATALOGUE = [
    "calls.received_today",
    "calls.waiting",
    "calls.active",
    "calls.answered_1h",
    "calls.abandoned_1h",
    "calls.abandon_rate_1h",
    "calls.asa_1h_s",
    "calls.service_level_1h",
    "calls.by_category_today",
    "reports.received_today",
    "reports.open",
    "reports.overdue",
    "reports.unassigned",
    "reports.resolved_today",
    "reports.sla_met_30d",
    "reports.resolution_p50_30d_h",
    "reports.by_agency",
    "reports.by_category_open",
    "reports.by_district_open",
    "sensors.total",
    "sensors.offline",
    "sensors.by_level",
    "sensors.latest",
    "alerts.active",
]

PROBLEM_CT = "application/problem+json"


# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------


def kendali_bin_path():
    """The server binary: $KENDALI_BIN, else <repo>/build/server/kendali."""
    return Path(os.environ.get("KENDALI_BIN") or REPO / "build" / "server" / "kendali")


def log_dir_override():
    """$KENDALI_IT_LOGDIR, where every server's stderr and stdout and the
    command line's stderr go instead of the session's temporary directory,
    so that a caller (scripts/test.sh under sanitizers) can read them after
    the run; None when unset."""
    d = os.environ.get("KENDALI_IT_LOGDIR")
    return Path(d) if d else None


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_time(s):
    """RFC 3339 text -> aware datetime (raises ValueError on anything else)."""
    if not isinstance(s, str):
        raise ValueError(f"not a time string: {s!r}")
    t = datetime.fromisoformat(s.replace("z", "Z").replace("t", "T"))
    if t.tzinfo is None:
        raise ValueError(f"time without an offset: {s!r}")
    return t


def fmt_time(t, tz=WIB):
    """Aware datetime -> RFC 3339 in the given zone, millisecond precision."""
    return t.astimezone(tz).isoformat(timespec="milliseconds")


def utcnow():
    return datetime.now(UTC)


def wib_midnight(t):
    """00:00 WIB of the WIB day that contains t."""
    local = t.astimezone(WIB)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def near_wib_midnight(t, within_s):
    """True when t is within within_s seconds of a WIB midnight."""
    m0 = wib_midnight(t)
    m1 = m0 + timedelta(days=1)
    return (t - m0).total_seconds() < within_s or (m1 - t).total_seconds() < within_s


def load_semarang():
    with open(DATA_FILE, encoding="utf-8") as f:
        return json.load(f)


def sanitized_env(**extra):
    """The process environment without libpq variables that could redirect
    a connection, plus the given variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


# --------------------------------------------------------------------------
# A private PostgreSQL cluster
# --------------------------------------------------------------------------

PG_USER = "kendali-pg"  # unprivileged account PostgreSQL runs as when we are root


def find_pg_bindir():
    """The bin directory of the highest PostgreSQL installed under
    /usr/lib/postgresql (never PATH)."""
    candidates = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(d).parent.name
        try:
            key = tuple(int(x) for x in version.split("."))
        except ValueError:
            continue
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            candidates.append((key, d))
    if not candidates:
        pytest.fail("no PostgreSQL server found under /usr/lib/postgresql/*/bin "
                    "(install the postgresql package)")
    return Path(max(candidates)[1])


def ensure_pg_user():
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", PG_USER], check=True)


class PgCluster:
    """A throwaway PostgreSQL cluster listening only on a unix socket in its
    own directory.  When the tests run as root the cluster runs as the
    unprivileged account kendali-pg (PostgreSQL refuses root)."""

    def __init__(self, base_dir):
        self.bindir = find_pg_bindir()
        self.base = Path(base_dir)
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self._db_counter = 0
        self._lock = threading.Lock()
        self.running = False

    # -- commands ---------------------------------------------------------

    def _cmd(self, prog, *args):
        cmd = [str(self.bindir / prog), *map(str, args)]
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return cmd

    def _run(self, prog, *args, timeout=120):
        cp = subprocess.run(self._cmd(prog, *args), capture_output=True, text=True,
                            timeout=timeout, env=sanitized_env(LC_ALL="C.UTF-8"))
        if cp.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{prog} {' '.join(map(str, args))} failed ({cp.returncode}):\n"
                               f"{cp.stdout}\n{cp.stderr}\n--- postgres.log ---\n{log}")
        return cp

    def init(self):
        self.base.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        os.chmod(self.base, 0o755)
        os.chmod(self.sock, 0o755)
        if self.as_root:
            ensure_pg_user()
            shutil.chown(self.base, PG_USER)
            shutil.chown(self.sock, PG_USER)
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        # Where to listen.  The cluster's own time zone is deliberately UTC:
        # the server must compute WIB days itself, not inherit them.
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write("\n# integration tests\n")
            f.write("listen_addresses = ''\n")
            f.write(f"unix_socket_directories = '{self.sock}'\n")
            f.write(f"port = {self.port}\n")
            f.write("timezone = 'UTC'\n")
            f.write("log_min_messages = warning\n")
        return self

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                  "-o", "-c fsync=on -c max_connections=50", "start")
        self.running = True
        return self

    def stop(self, mode="fast"):
        if self.running:
            self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- databases --------------------------------------------------------

    def url(self, dbname):
        host = urllib.parse.quote(str(self.sock), safe="/")
        return f"postgresql://postgres@/{dbname}?host={host}&port={self.port}"

    def connect(self, dbname="postgres"):
        conn = psycopg2.connect(host=str(self.sock), port=self.port, user="postgres",
                                dbname=dbname)
        return conn

    def create_database(self):
        with self._lock:
            self._db_counter += 1
            name = f"kd_{self._db_counter}"
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return Database(self, name)


class Database:
    """One database of a cluster, with a DATABASE_URL for the server."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.url = cluster.url(name)

    def connect(self):
        return self.cluster.connect(self.name)

    def rows(self, sql, params=None):
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def scalar(self, sql, params=None):
        return self.rows(sql, params)[0][0]

    def execute(self, sql, params=None):
        """Runs one statement and commits it; returns the rows it changed."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                n = cur.rowcount
            conn.commit()
            return n
        finally:
            conn.close()

    def count_events(self):
        return self.scalar("SELECT count(*) FROM events")


def stored_events(conn):
    """The events of the tenant semarang as reference.py reads them (conn: a
    psycopg2 connection), in the order they were stored."""
    out = []
    with conn.cursor() as cur:
        cur.execute("SELECT event_id, type, occurred_at, subject, status, category, agency,"
                    " district, title, value FROM events WHERE tenant = 'semarang'"
                    " ORDER BY stored_at, event_id")
        for eid, etype, at, subject, status, category, agency, district, title, value in cur:
            if etype == "sensor":
                body = {"sensor_id": subject, "value": value}
            elif etype == "call":
                body = {"call_id": subject, "status": status}
                if category:
                    body["category"] = category
            else:
                body = {"ticket": subject, "status": status}
                for k, v in (("category", category), ("agency", agency), ("title", title)):
                    if v:
                        body[k] = v
            e = {"id": eid, "type": etype, "occurred_at": at.isoformat(), etype: body}
            if district:
                e["district"] = district
            out.append(e)
    return out


def stored_sensors(conn):
    """The sensor registry of the tenant semarang as reference.py reads it."""
    out = {}
    with conn.cursor() as cur:
        cur.execute("SELECT sensor_id, name, metric, unit, waspada, siaga, awas, offline_after_s,"
                    " created_at FROM sensors WHERE tenant = 'semarang'")
        for sid, name, metric, unit, wa, si, aw, off, created in cur:
            th = {k: v for k, v in (("waspada", wa), ("siaga", si), ("awas", aw)) if v is not None}
            out[sid] = {"name": name, "metric": metric, "unit": unit, "thresholds": th,
                        "offline_after_s": off, "registered_at": created}
    return out


# --------------------------------------------------------------------------
# The server and its command line
# --------------------------------------------------------------------------

# Servers alive during the current test, so that conftest can print their
# stderr when a test fails.
LIVE_SERVERS = []


def require_binary():
    path = kendali_bin_path()
    if not path.exists():
        pytest.fail(f"the server binary {path} does not exist: build it first "
                    f"(meson/ninja into build/) or set KENDALI_BIN to its path", pytrace=False)
    if not os.access(path, os.X_OK):
        pytest.fail(f"the server binary {path} is not executable", pytrace=False)
    return path


def kendali_cli(database, *args, check=True, timeout=60, input=None):
    """Runs `kendali ARGS` against a database (with `input` on stdin, else
    an empty stdin); returns CompletedProcess."""
    binary = require_binary()
    cp = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                        timeout=timeout, env=sanitized_env(DATABASE_URL=database.url),
                        input=input if input is not None else "")
    logs = log_dir_override()
    if logs is not None and cp.stderr:
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "cli.stderr", "a") as f:
            f.write(f"\n===== kendali {' '.join(map(str, args))} (exit {cp.returncode}) =====\n")
            f.write(cp.stderr)
    if check and cp.returncode != 0:
        pytest.fail(f"`kendali {' '.join(map(str, args))}` exited {cp.returncode}\n"
                    f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}", pytrace=False)
    return cp


KEY_RE = re.compile(r"^kd_([^_]+)_(.+)$")


def create_key(database, poster, types, server=None):
    """`kendali key create`; returns the key (alone on the last stdout line).

    server: a running Server; returns only once it accepts the key.  A
    running server hears of a new key by NOTIFY and then reads the keys, so
    for a few milliseconds (longer under ASan, or while the server is still
    connecting its reader) the new key is unknown to it."""
    cp = kendali_cli(database, "key", "create", "--poster", poster, "--types", ",".join(types))
    lines = [ln.strip() for ln in cp.stdout.splitlines() if ln.strip()]
    assert lines, f"`key create` printed nothing on stdout (stderr: {cp.stderr})"
    key = lines[-1]
    assert KEY_RE.match(key), f"the last stdout line of `key create` is not a key: {key!r}"
    if server is not None:
        server.wait_key(key)
    return key


def key_id(key):
    """The key id: the part between the first and the second underscore."""
    return key.split("_", 2)[1]


# --------------------------------------------------------------------------
# Screens and people (docs/security.md, "Screens and people")
# --------------------------------------------------------------------------

ROLES = ("wall", "operator", "mayor", "admin")
SESSION_COOKIE = "kendali_session"
TOKEN_RE = re.compile(r"^st_[A-Za-z0-9_\-]+$")


def create_token(database, name, role):
    """`kendali token create --name NAME --role ROLE`; returns the screen
    token (alone on the last stdout line, st_...)."""
    cp = kendali_cli(database, "token", "create", "--name", name, "--role", role)
    lines = [ln.strip() for ln in cp.stdout.splitlines() if ln.strip()]
    assert lines, f"`token create` printed nothing on stdout (stderr: {cp.stderr})"
    token = lines[-1]
    assert TOKEN_RE.match(token), f"the last stdout line of `token create` is not a token: {token!r}"
    return token


def token_id(database, name):
    """The id of the (newest) screen token named `name`, as `token list`
    and `token revoke` know it (read from the database)."""
    conn = database.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT token_id FROM screen_tokens WHERE name = %s"
                        " ORDER BY created_at DESC LIMIT 1", (name,))
            row = cur.fetchone()
    finally:
        conn.close()
    assert row, f"no screen token named {name!r} in the database"
    return row[0]


def create_user(database, name, role, password=None):
    """`kendali user add NAME --role ROLE` with the password on stdin (one
    line); returns the password (a random one unless given)."""
    if password is None:
        password = "pw-" + os.urandom(9).hex()
    kendali_cli(database, "user", "add", name, "--role", role, input=password + "\n")
    return password


def parse_set_cookie(header):
    """'name=value; Attr; Attr=x' -> (name, value, {attr-lower: value or True})."""
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), value.strip(), attrs


def session_set_cookie(resp):
    """The kendali_session Set-Cookie of a response: (value, attrs), or None."""
    for h in resp.headers.get_all("Set-Cookie") or []:
        name, value, attrs = parse_set_cookie(h)
        if name == SESSION_COOKIE:
            return value, attrs
    return None


def cookie_header(value):
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


def login(target, username, password, source=None):
    """POST /api/v1/session on a Server (or with an Http client); asserts
    200 and returns (cookie value, the response)."""
    client = target.http(source=source) if isinstance(target, Server) else target
    try:
        r = client.post("/api/v1/session", {"username": username, "password": password}, key=None)
    finally:
        if client is not target:
            client.close()
    assert r.status == 200, f"login of {username!r} failed: {r}"
    sc = session_set_cookie(r)
    assert sc is not None, f"a successful login sets no {SESSION_COOKIE} cookie: {r.headers.get_all('Set-Cookie')}"
    assert sc[0], f"a successful login sets an empty cookie: {r.headers.get_all('Set-Cookie')}"
    return sc[0], r


class Server:
    """`kendali serve` on a free port of 127.0.0.1 with a given database."""

    READY_TIMEOUT = 15.0

    def __init__(self, database, log_dir, extra_args=(), name="kendali", anonymous=True,
                 listen_host="127.0.0.1", env=None):
        """anonymous: pass --anonymous-loopback (reads without a credential
        from 127.0.0.0/8), as every test written before docs/security.md's
        "Screens and people" expects.  listen_host: the address to listen on
        (the harness always reaches the server on 127.0.0.1).  env: extra
        environment variables of the server process (e.g. LD_PRELOAD), on
        top of the test's own environment."""
        self.binary = require_binary()
        self.database = database
        self.anonymous = anonymous
        self.listen_host = listen_host
        self.extra_args = (["--anonymous-loopback"] if anonymous else []) + list(extra_args)
        self.port = free_port()
        self.log_dir = log_dir_override() or Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.env = dict(env or {})
        self.proc = None
        self.starts = 0

    @property
    def host(self):
        return "127.0.0.1"

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def stderr_path(self):
        return self.log_dir / f"{self.name}.stderr"

    def stderr_tail(self, n=80):
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no stderr file)"
        return "\n".join(lines[-n:])

    def start(self):
        self.starts += 1
        with open(self.stderr_path, "a") as err, open(self.log_dir / f"{self.name}.stdout", "a") as out:
            err.write(f"\n===== start #{self.starts} at {utcnow().isoformat()} =====\n")
            err.flush()
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--listen", f"{self.listen_host}:{self.port}", *self.extra_args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=sanitized_env(DATABASE_URL=self.database.url, **self.env))
        if self not in LIVE_SERVERS:
            LIVE_SERVERS.append(self)
        self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.READY_TIMEOUT)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"kendali serve exited with {self.proc.returncode} before it was ready;"
                            f" stderr:\n{self.stderr_tail()}", pytrace=False)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                last = resp.status
                if resp.status == 200:
                    return
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        pytest.fail(f"kendali serve not ready within {timeout or self.READY_TIMEOUT} s "
                    f"(last /readyz: {last}); stderr:\n{self.stderr_tail()}", pytrace=False)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit code, or None when the process
        had to be killed (SIGKILL) after `timeout` seconds."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return None
        return proc.returncode

    def kill(self):
        """SIGKILL: a crash."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self):
        rc = self.stop(timeout=self.STOP_TIMEOUT)
        self.check_exit(rc)
        self.start()
        return rc

    # A stop under the sanitizers ends with the leak check of the whole
    # heap, which takes seconds for a server that held a lot.
    STOP_TIMEOUT = 30.0

    def check_exit(self, rc):
        """A server's exit status is part of the result: a clean stop
        (SIGTERM) exits 0; under the sanitizers a leak or an error at exit
        exits 23, and a server that had to be killed may have lost its
        report.  Either fails the test."""
        if rc is None:
            pytest.fail(f"{self.name} did not stop within {self.STOP_TIMEOUT:.0f} s of SIGTERM "
                        f"and was killed; stderr:\n{self.stderr_tail()}", pytrace=False)
        if rc != 0:
            pytest.fail(f"{self.name} exited {rc} when stopped; stderr:\n{self.stderr_tail()}",
                        pytrace=False)

    def close(self):
        """Stops the server if it still runs, and checks its exit."""
        running = self.proc is not None
        rc = self.stop(timeout=self.STOP_TIMEOUT)
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)
        if running:
            self.check_exit(rc)

    def http(self, **kw):
        return Http(self.host, self.port, **kw)

    def wait_key(self, key, timeout=5.0):
        """Waits until the server knows `key`: an empty batch posted with it
        is refused for being empty, not for the key (401).  Nothing is
        stored."""
        http = self.http(key=key)
        deadline = time.monotonic() + timeout
        try:
            while True:
                r = http.post("/api/v1/events", "[]", fresh=True, content_type="application/json")
                if r.status != 401:
                    assert r.status < 500, f"an empty batch got {r}"
                    return
                assert time.monotonic() < deadline, \
                    f"the server did not know a new key within {timeout} s: {r}"
                time.sleep(0.02)
        finally:
            http.close()


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.raw = body
        self.json = None
        ctype = (headers.get("Content-Type") or "").lower()
        if body and "json" in ctype:
            try:
                self.json = json.loads(body)
            except ValueError:
                self.json = None

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def __iter__(self):  # allows: status, headers, body = http.get(...)
        return iter((self.status, self.headers, self.json))

    def __repr__(self):
        text = self.raw[:600].decode("utf-8", "replace") if self.raw else ""
        return f"<Resp {self.status} {self.headers.get('Content-Type')} {text}>"


class Http:
    """A keep-alive HTTP/1.1 client for one server.  GETs are retried once on
    a stale connection; other methods are never retried (a retried POST
    would blur the accepted/duplicate counts)."""

    def __init__(self, host, port, key=None, timeout=30, cookie=None, source=None):
        """key: sent as `Authorization: Bearer` (an agency key or a screen
        token); cookie: sent as the kendali_session cookie; source: the local
        address to connect from (e.g. another 127.0.0.0/8 address, so that
        per-address limits of one test do not touch another)."""
        self.host, self.port, self.key, self.timeout = host, port, key, timeout
        self.cookie = cookie
        self.source = source
        self.conn = None
        self._last_use = 0.0

    def _new_conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                          source_address=(self.source, 0) if self.source else None)

    IDLE_REUSE_S = 20.0      # the server closes keep-alive connections idle for 30 s

    def _conn(self, fresh):
        if fresh:
            return self._new_conn()
        if self.conn is not None:
            # Reconnect rather than reuse a connection the server may have
            # closed: idle for long, or readable (EOF) while idle.
            sock = self.conn.sock
            stale = time.monotonic() - self._last_use > self.IDLE_REUSE_S
            if sock is not None and not stale:
                readable, _, _ = select.select([sock], [], [], 0)
                stale = bool(readable)
            if stale:
                self.conn.close()
                self.conn = None
        if self.conn is None:
            self.conn = self._new_conn()
        self._last_use = time.monotonic()
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, key=..., fresh=False,
                content_type=None, cookie=...):
        hdrs = {}
        k = self.key if key is ... else key
        if k is not None:
            hdrs["Authorization"] = f"Bearer {k}"
        c = self.cookie if cookie is ... else cookie
        if c is not None:
            hdrs["Cookie"] = f"{SESSION_COOKIE}={c}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            content_type = content_type or "application/json"
        if isinstance(body, str):
            body = body.encode("utf-8")
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        attempts = 2 if method == "GET" and not fresh else 1
        for attempt in range(attempts):
            conn = self._conn(fresh)
            try:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                self._last_use = time.monotonic()
                resp = Resp(r.status, r.headers, data)
                if fresh or r.will_close:
                    conn.close()
                    if not fresh:
                        self.conn = None
                return resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not fresh:
                    self.conn = None
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    # -- API shortcuts ----------------------------------------------------

    def post_events(self, events, fmt="json", key=..., fresh=False):
        """Posts events as a JSON array ('json'), a single object ('object'),
        or NDJSON ('ndjson')."""
        if fmt == "object":
            assert len(events) == 1
            return self.post("/api/v1/events", json.dumps(events[0]), key=key, fresh=fresh,
                             content_type="application/json")
        if fmt == "ndjson":
            body = "\n".join(json.dumps(e) for e in events) + "\n"
            return self.post("/api/v1/events", body, key=key, fresh=fresh,
                             content_type="application/x-ndjson")
        return self.post("/api/v1/events", json.dumps(events), key=key, fresh=fresh,
                         content_type="application/json")

    def kpis(self):
        r = self.get("/api/v1/kpis")
        assert r.status == 200, f"GET /api/v1/kpis: {r}"
        assert r.json is not None, f"GET /api/v1/kpis did not return JSON: {r}"
        return r.json

    def alerts(self, state="active"):
        r = self.get(f"/api/v1/alerts?state={state}")
        assert r.status == 200, f"GET /api/v1/alerts?state={state}: {r}"
        return unwrap_list(r.json, "alerts")

    def sensors(self):
        r = self.get("/api/v1/sensors")
        assert r.status == 200, f"GET /api/v1/sensors: {r}"
        return unwrap_list(r.json, "sensors")


def unwrap_list(body, name):
    """A listing may be a bare JSON array or an object holding the array
    under its name; both are accepted."""
    if isinstance(body, list):
        return body
    assert isinstance(body, dict) and isinstance(body.get(name), list), \
        f"expected a list (or {{{name!r}: [...]}}), got {body!r}"[:2000]
    return body[name]


def raw_request(host, port, method, path, headers, body, timeout=30):
    """Sends a request over a plain socket, stopping the upload as soon as
    the server answers (a server may reject a large body from its headers
    alone and close).  Returns a Resp."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}",
                f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        view = memoryview(body)
        sent = 0
        try:
            while sent < len(body):
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break  # the server has answered early
                n = sock.send(view[sent:sent + 65536])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass  # read what the server said before it closed
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
        return Resp(resp.status, resp.headers, data)
    finally:
        sock.close()


# --------------------------------------------------------------------------
# Problem details (RFC 9457)
# --------------------------------------------------------------------------


def assert_problem(resp, status, code, **members):
    """Checks an error response: status, Content-Type application/problem+json,
    the standard members, the problem code, and the given extension members
    (a value of `int` means 'any integer'; a set means 'any of these'; `code`
    may be a set too)."""
    assert resp.status == status, f"expected {status} {code}, got {resp!r}"
    assert resp.content_type == PROBLEM_CT, \
        f"Content-Type of a {status} must be {PROBLEM_CT}, got {resp.headers.get('Content-Type')!r}"
    p = resp.json
    assert isinstance(p, dict), f"problem body is not a JSON object: {resp.raw[:300]!r}"
    for name, typ in (("type", str), ("title", str), ("detail", str), ("code", str)):
        assert isinstance(p.get(name), typ) and p[name], f"problem member {name!r} missing or empty: {p}"
    assert p.get("status") == status and type(p["status"]) is int, \
        f"problem 'status' must be the integer {status}: {p}"
    codes = code if isinstance(code, (set, frozenset)) else {code}
    assert p["code"] in codes, f"expected problem code {code!r}: {p}"
    assert p["type"] == f"/problems/{p['code']}", f"problem 'type' must be /problems/{p['code']}: {p}"
    for name, want in members.items():
        assert name in p, f"problem member {name!r} missing: {p}"
        got = p[name]
        if want is int:
            assert type(got) is int, f"problem member {name!r} must be an integer: {p}"
        elif isinstance(want, (set, frozenset)):
            assert got in want, f"problem member {name!r} = {got!r}, expected one of {sorted(want)}: {p}"
        else:
            assert got == want and type(got) is type(want), \
                f"problem member {name!r} = {got!r}, expected {want!r}: {p}"
    return p


# --------------------------------------------------------------------------
# KPI comparison
# --------------------------------------------------------------------------

REL_TOL = 1e-6
ABS_TOL = 1e-9


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _time_diff(actual, expected, path, diffs):
    if actual is None:
        diffs.append(f"{path}: expected time {expected.isoformat()}, got null")
        return
    try:
        t = parse_time(actual)
    except ValueError:
        diffs.append(f"{path}: not an RFC 3339 time: {actual!r}")
        return
    if not actual.endswith("+07:00"):
        diffs.append(f"{path}: times are written in WIB (+07:00): {actual!r}")
    if abs((t - expected).total_seconds()) > 0.0005:
        diffs.append(f"{path}: expected {fmt_time(expected)}, got {actual}")


def deep_diff(actual, expected, path="", diffs=None):
    """Differences between a JSON value and an expectation.  An expected
    integer (a count) must be that integer exactly; other numbers compare
    with a relative tolerance; an expected datetime matches an RFC 3339
    string of the same instant; everything else compares exactly (None only
    equals null, dict keys must match exactly, lists in order)."""
    if diffs is None:
        diffs = []
    if isinstance(expected, datetime):
        _time_diff(actual, expected, path, diffs)
    elif expected is None:
        if actual is not None:
            diffs.append(f"{path}: expected null, got {actual!r}")
    elif isinstance(expected, bool):
        if actual is not expected:
            diffs.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, int):
        # A count is an integer, written as one ("5", never "5.0"), and
        # equal exactly.
        if not isinstance(actual, int) or isinstance(actual, bool) or actual != expected:
            diffs.append(f"{path}: expected the integer {expected!r}, got {actual!r}")
    elif _is_num(expected):
        if not _is_num(actual):
            diffs.append(f"{path}: expected {expected!r}, got {actual!r}")
        elif not math.isclose(actual, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            diffs.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, str):
        if actual != expected:
            diffs.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            diffs.append(f"{path}: expected an object, got {actual!r}"[:500])
        else:
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            if missing:
                diffs.append(f"{path}: missing keys {missing} (expected {_short(expected)}, got {_short(actual)})")
            if extra:
                diffs.append(f"{path}: unexpected keys {extra} (expected {_short(expected)}, got {_short(actual)})")
            for k in expected:
                if k in actual:
                    deep_diff(actual[k], expected[k], f"{path}.{k}" if path else k, diffs)
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            diffs.append(f"{path}: expected a list, got {actual!r}"[:500])
        elif len(actual) != len(expected):
            diffs.append(f"{path}: expected {len(expected)} items, got {len(actual)}:"
                         f" expected {_short(expected)}, got {_short(actual)}")
        else:
            for i, (a, e) in enumerate(zip(actual, expected)):
                deep_diff(a, e, f"{path}[{i}]", diffs)
    else:
        raise TypeError(f"unsupported expectation at {path}: {expected!r}")
    return diffs


def _short(x, n=700):
    text = json.dumps(x, default=str, sort_keys=True)
    return text if len(text) <= n else text[:n] + "..."


ALERT_KEYS = {"id", "kind", "severity", "sensor_id", "message", "raised_at", "acked_by", "acked_at"}


def alerts_diff(actual, expected, path="alerts.active"):
    """alerts.active against the reference's data-determined part: the same
    multiset of (kind, severity, sensor_id, acked_by) (acked_by is None unless
    the expectation says otherwise), each item complete, acked_at set exactly
    when acked_by is, times in WIB, ordered newest raised_at first (then
    greater id).  Ids, messages and raised_at values are the server's own."""
    diffs = []
    if not isinstance(actual, list):
        return [f"{path}: expected a list, got {actual!r}"]
    for i, a in enumerate(actual):
        if not isinstance(a, dict):
            diffs.append(f"{path}[{i}]: not an object: {a!r}")
            continue
        missing = ALERT_KEYS - set(a)
        if missing:
            diffs.append(f"{path}[{i}]: missing keys {sorted(missing)}: {a}")
            continue
        if not isinstance(a["message"], str) or not a["message"]:
            diffs.append(f"{path}[{i}]: message must be a non-empty string: {a}")
        for tk in ("raised_at", "acked_at"):
            if a[tk] is None and tk == "acked_at":
                continue
            try:
                parse_time(a[tk])
                if not a[tk].endswith("+07:00"):
                    diffs.append(f"{path}[{i}].{tk} not in WIB: {a[tk]!r}")
            except ValueError:
                diffs.append(f"{path}[{i}].{tk} not a time: {a[tk]!r}")
        if (a["acked_by"] is None) != (a["acked_at"] is None):
            diffs.append(f"{path}[{i}]: acked_by and acked_at must be both set or both null: {a}")
    if diffs:
        return diffs
    got_set = sorted((a["kind"], a["severity"], a["sensor_id"], a["acked_by"] or "") for a in actual)
    want_set = sorted((e["kind"], e["severity"], e["sensor_id"], e.get("acked_by") or "")
                      for e in expected)
    if got_set != want_set:
        diffs.append(f"{path}: expected (kind, severity, sensor, acked_by) {want_set}, got {got_set}")
    keys = [(parse_time(a["raised_at"]), a["id"]) for a in actual]
    for i in range(1, len(keys)):
        (t0, id0), (t1, id1) = keys[i - 1], keys[i]
        try:
            ordered = t0 > t1 or (t0 == t1 and id0 > id1)
        except TypeError:
            ordered = t0 >= t1
        if not ordered:
            diffs.append(f"{path}: not ordered newest raised_at first (then greater id):"
                         f" item {i - 1} {actual[i - 1]} before item {i} {actual[i]}")
    return diffs


def compare_kpis(actual, expected, keys=None):
    """Differences between a kpis object (from GET or the websocket) and the
    reference's expectation.  Only the catalogue keys are compared (or the
    given subset)."""
    diffs = []
    if not isinstance(actual, dict):
        return [f"kpis is not an object: {actual!r}"[:500]]
    for k in keys or CATALOGUE:
        if k not in actual:
            diffs.append(f"{k}: missing")
            continue
        if k == "alerts.active":
            diffs += alerts_diff(actual[k], expected[k])
        else:
            deep_diff(actual[k], expected[k], k, diffs)
    return diffs


def json_equal_diff(a, b, path=""):
    """Differences between two JSON values (numbers with tolerance)."""
    diffs = []
    if _is_num(a) and _is_num(b):
        if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            diffs.append(f"{path}: {a!r} != {b!r}")
    elif isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            diffs.append(f"{path}: keys {sorted(a)} != {sorted(b)}")
        for k in set(a) & set(b):
            diffs += json_equal_diff(a[k], b[k], f"{path}.{k}" if path else k)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: {len(a)} items != {len(b)} items: {_short(a)} vs {_short(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diffs += json_equal_diff(x, y, f"{path}[{i}]")
    elif a != b or type(a) is not type(b):
        diffs.append(f"{path}: {a!r} != {b!r}")
    return diffs


# --------------------------------------------------------------------------
# Websocket client
# --------------------------------------------------------------------------

SUBPROTOCOL = "situation.v1"


class WsClient:
    """A websocket client running its own asyncio loop in a thread, so that a
    synchronous test can post events while it listens.

    It reads the snapshot, then applies every `kpis` delta to `state`,
    records `alert` and `error` messages, and checks that `seq` rises by
    exactly one per message (violations are collected in `violations`)."""

    def __init__(self, url, subprotocols=(SUBPROTOCOL,), connect_timeout=10, headers=None,
                 origin=None):
        self.url = url
        self.headers = dict(headers or {})   # e.g. Authorization or Cookie
        self.origin = origin
        self.subprotocols = list(subprotocols)
        self.connect_timeout = connect_timeout
        self.cond = threading.Condition()
        self.messages = []      # (monotonic receive time, message)
        self.snapshot = None
        self.state = {}
        self.last_at = None
        self.alerts = []        # alert messages' "alert" objects
        self.errors = []        # {"type":"error"} messages
        self.statuses = []      # {"type":"status"} messages
        self.database = None    # "up" or "down", as the last snapshot or status said
        self.violations = []
        self.last_seq = None
        self.closed = False
        self.close_code = None
        self.failure = None
        self.subprotocol = None
        self._ws = None
        self._loop = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    # -- lifecycle ----------------------------------------------------------

    def start(self, wait_snapshot=True, timeout=10):
        self._thread.start()
        if not self._connected.wait(self.connect_timeout + 1):
            raise AssertionError(f"websocket {self.url}: no connection within {self.connect_timeout} s")
        if self.failure is not None:
            raise AssertionError(f"websocket {self.url}: {self.failure!r}")
        if wait_snapshot and not self.wait(lambda: self.snapshot is not None, timeout):
            raise AssertionError(f"websocket: no snapshot within {timeout} s; messages: "
                                 f"{self.messages[:3]} failure: {self.failure!r}")
        return self

    def _main(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._run())
        except BaseException as e:  # recorded for the test to see
            self.failure = e
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()
            self._connected.set()
            self._loop.close()

    async def _run(self):
        import websockets
        async with websockets.connect(self.url, subprotocols=self.subprotocols,
                                      open_timeout=self.connect_timeout, max_size=None,
                                      close_timeout=2, ping_interval=None,
                                      extra_headers=self.headers, origin=self.origin) as ws:
            self._ws = ws
            self.subprotocol = ws.subprotocol
            self._connected.set()
            try:
                async for raw in ws:
                    self._handle(raw)
            except websockets.ConnectionClosed:
                pass
            self.close_code = ws.close_code

    def _handle(self, raw):
        now = time.monotonic()
        with self.cond:
            try:
                msg = json.loads(raw)
            except ValueError:
                self.violations.append(f"not JSON: {raw[:200]!r}")
                self.cond.notify_all()
                return
            if isinstance(raw, bytes):
                self.violations.append("binary frame (text frames expected)")
            self.messages.append((now, msg))
            if not isinstance(msg, dict):
                self.violations.append(f"message is not an object: {msg!r}"[:300])
                self.cond.notify_all()
                return
            kind = msg.get("type")
            seq = msg.get("seq")
            # Every message is numbered, errors too (docs/api.md 8.2: the
            # contract's example leaves seq out; the server never does).
            if type(seq) is not int:
                self.violations.append(f"{kind} message without an integer seq: {_short(msg, 300)}")
            elif self.last_seq is not None and seq != self.last_seq + 1:
                self.violations.append(f"seq went from {self.last_seq} to {seq} ({kind})")
            if type(seq) is int:
                self.last_seq = seq
            if self.snapshot is None and kind != "error":
                if kind != "snapshot":
                    self.violations.append(f"first message is {kind!r}, not a snapshot")
            if kind in ("snapshot", "status"):
                if msg.get("database") not in ("up", "down"):
                    self.violations.append(f"{kind} without database up or down: {_short(msg, 300)}")
                self.database = msg.get("database")
            if kind == "snapshot":
                self.snapshot = msg
                self.state = dict(msg.get("kpis") or {})
                self.last_at = msg.get("at")
            elif kind == "kpis":
                delta = msg.get("kpis")
                if not isinstance(delta, dict):
                    self.violations.append(f"kpis message without a kpis object: {_short(msg, 300)}")
                else:
                    for k, v in delta.items():
                        if k in self.state and not json_equal_diff(self.state[k], v):
                            self.violations.append(f"kpis message seq {seq} carries unchanged key {k}")
                    self.state.update(delta)
                self.last_at = msg.get("at")
            elif kind == "alert":
                self.alerts.append(msg.get("alert"))
            elif kind == "error":
                self.errors.append(msg)
            elif kind == "status":
                self.statuses.append(msg)
            self.cond.notify_all()

    def send(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        fut = asyncio.run_coroutine_threadsafe(self._ws.send(text), self._loop)
        fut.result(5)

    def close(self):
        if self._loop is not None and not self.closed and self._ws is not None:
            try:
                fut = asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop)
                fut.result(5)
            except Exception:
                pass
        self._thread.join(5)

    # -- waiting ------------------------------------------------------------

    def wait(self, predicate, timeout):
        """Waits until predicate() (called under the lock) is true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if predicate():
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not predicate()):
                    return predicate()
                self.cond.wait(min(left, 0.1))

    def wait_state(self, expected, timeout=5.0, keys=None):
        """Waits until the accumulated state matches the expectation (see
        compare_kpis); raises AssertionError with the differences if not."""
        diffs = []

        def ok():
            nonlocal diffs
            diffs = compare_kpis(self.state, expected, keys)
            return not diffs
        if not self.wait(ok, timeout):
            raise AssertionError("websocket state differs from the expectation after "
                                 f"{timeout} s:\n  " + "\n  ".join(diffs))

    def wait_message(self, predicate, timeout, start=0):
        """Waits for a message (index >= start) satisfying predicate; returns
        (index, receive time, message) or None."""
        found = []

        def scan():
            for i in range(start, len(self.messages)):
                t, m = self.messages[i]
                if predicate(m):
                    found.append((i, t, m))
                    return True
            return False
        self.wait(scan, timeout)
        return found[0] if found else None


async def ws_first_messages(url, n=1, timeout=5.0, subprotocols=(SUBPROTOCOL,)):
    """Connects, returns (negotiated subprotocol, the first n messages)."""
    import websockets
    async with websockets.connect(url, subprotocols=list(subprotocols), open_timeout=timeout,
                                  max_size=None, close_timeout=2) as ws:
        out = []
        for _ in range(n):
            out.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
        return ws.subprotocol, out


def ws_snapshot(url, timeout=5.0):
    """The snapshot a new connection receives (synchronous)."""
    proto, msgs = asyncio.run(ws_first_messages(url, 1, timeout))
    return msgs[0]


# --------------------------------------------------------------------------
# Event builders for hand-made requests
# --------------------------------------------------------------------------

_counter = [0]


def unique_id(prefix="t"):
    """A process-unique event id."""
    _counter[0] += 1
    return f"{prefix}-{os.getpid()}-{_counter[0]}"


def ago(**kw):
    """RFC 3339 (WIB, ms) of now - timedelta(**kw)."""
    return fmt_time(utcnow() - timedelta(**kw))


def ev_call(call_id=None, status="received", category="medical", at=None, eid=None, **extra):
    body = {"call_id": call_id or unique_id("call"), "status": status}
    if category is not None:
        body["category"] = category
    e = {"id": eid or unique_id("ev"), "type": "call", "occurred_at": at or ago(minutes=5), "call": body}
    e.update(extra)
    return e


def ev_report(ticket=None, status="received", category="road", agency=None, at=None, eid=None, **extra):
    body = {"ticket": ticket or unique_id("LPR"), "status": status}
    if category is not None:
        body["category"] = category
    if agency is not None:
        body["agency"] = agency
    e = {"id": eid or unique_id("ev"), "type": "report", "occurred_at": at or ago(minutes=5), "report": body}
    e.update(extra)
    return e


def ev_reading(sensor_id, value, at=None, eid=None):
    return {"id": eid or unique_id("ev"), "type": "sensor", "occurred_at": at or ago(minutes=1),
            "sensor": {"sensor_id": sensor_id, "value": value}}


def sensor_body(name, thresholds, offline_after_s=900, district="Semarang Barat",
                lat=-6.99, lon=110.4):
    return {"name": name, "metric": "water_level", "unit": "cm",
            "location": {"lat": lat, "lon": lon}, "district": district,
            "thresholds": thresholds, "offline_after_s": offline_after_s}


def ws_handshake(host, port, headers=None, path="/ws", timeout=5, source=None):
    """A websocket upgrade request on a plain socket (with extra headers,
    e.g. Origin, Cookie, Authorization).  Returns (status, headers dict with
    lower-case names, body bytes of a refusal); the socket is closed.  A
    connection closed (or reset) before any status line gives status None."""
    import base64
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 f"Sec-WebSocket-Protocol: {SUBPROTOCOL}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if data:
                    raise AssertionError(f"websocket handshake: connection closed after {data!r}")
                return None, {}, b""
            data += chunk
        status, hdrs, body = parse_response_head(data)
        if status != 101:
            n = int(hdrs.get("content-length", "0") or 0)
            while len(body) < n:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
        return status, hdrs, body
    finally:
        s.close()


def raw_ws_connect(host, port, path="/ws", rcvbuf=4096):
    """A websocket handshake on a plain socket that is then never read: a
    stalled screen.  Returns the socket (close it when done)."""
    import base64
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise AssertionError(f"websocket handshake closed: {head!r}")
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    assert b" 101 " in status, f"websocket handshake refused: {head!r}"
    return s


def parse_response_head(data):
    """(status, headers with lower-case names, what follows the head) of
    raw response bytes holding at least the whole head."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest


def wait_until(fn, timeout=3.0, what=""):
    """Polls fn until it returns something true (which is returned), or
    fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            assert v, f"not within {timeout} s: {what}"
            return v
        time.sleep(0.05)


def self_signed(tmp_path):
    """(certificate, key) of a fresh self-signed certificate for localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AssertionError("openssl is needed to make a test certificate (scripts/deps.sh installs it)")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


def insecure_context():
    """A client TLS context that takes the test's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsServer:
    """`kendali serve` with TLS on a migrated database, as a context
    manager giving its port; extra_args go to serve.  Its log is
    tmp_path/server.log."""

    def __init__(self, database, tmp_path, *extra_args):
        self.database, self.tmp_path, self.extra_args = database, tmp_path, extra_args
        self.port = free_port()

    def __enter__(self):
        cert, key = self_signed(self.tmp_path)
        self.log = open(self.tmp_path / "server.log", "w")
        self.proc = subprocess.Popen(
            [str(require_binary()), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--tls-cert", str(cert), "--tls-key", str(key), *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
            env=sanitized_env(DATABASE_URL=self.database.url))
        try:
            self._wait_ready()
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise
        return self.port

    def _wait_ready(self):
        ctx = insecure_context()
        deadline = time.monotonic() + 15
        while True:
            assert self.proc.poll() is None, (self.tmp_path / "server.log").read_text()
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
                c.request("GET", "/readyz")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, (self.tmp_path / "server.log").read_text()
            time.sleep(0.1)

    def __exit__(self, exc_type, exc, tb):
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = "killed after 10 s"
        self.log.close()
        # A clean stop exits 0; under the sanitizers a leak or error would not.
        if exc_type is None:
            assert code == 0, \
                f"the server exited {code}: {(self.tmp_path / 'server.log').read_text()[-2000:]}"
