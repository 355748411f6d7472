"""
Backup and restore, with the commands docs/operations.md gives ("Backups
and restore"):

- `pg_dump -Fc` of the server's database while the server runs and two
  agencies keep posting: every request is accepted, and the dump holds
  whole requests only (everything answered before it began, nothing sent
  after it ended);
- `createdb -O ROLE` of a new database and `pg_restore --no-owner
  --no-privileges --single-transaction --exit-on-error` into it, as another
  role than the one that owned the original (a rebuilt PostgreSQL):
  `kendali migrate` then applies nothing, every object belongs to the
  restoring role, and a server started on it
  - shows on its websocket the KPIs an independent computation
    (reference.py) gives over the events the restored database holds, with
    the acknowledged alert still acknowledged and every alert as it was;
  - takes the agencies' keys, the screen's token and the operator's session
    of the backup; a key revoked before the backup stays revoked, one
    revoked after it works again, one created after it is unknown;
  - counts events of the backup posted again as duplicates and stores the
    ones posted after the backup, after which it holds what the original
    holds and shows the same KPIs;
  - still has its triggers (a key created or revoked reaches the running
    server at once) and its sequences (new audit rows and alerts get new
    ids);
- continuous archiving: a base backup (`pg_basebackup`), WAL archived by
  `archive_command`, and recovery to a point in time (`restore_command`,
  `recovery_target_time`, `recovery.signal`) after an operator's mistake:
  agencies get `503` with `Retry-After` while PostgreSQL is down, and the
  server restarted on the recovered cluster holds what was committed up to
  the target and nothing after it.

The clusters here are the module's own.  In the dump and restore the
server, `kendali` and pg_dump / pg_restore connect as roles that are not
superusers, as they should in production (createdb runs as the superuser).
PostgreSQL's client programs are those of the cluster's own version.
"""

import os
import random
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

import dataset
import reference
from harness import (PG_USER, Database, Http, PgCluster, Server, WsClient, assert_problem, ago,
                     compare_kpis, create_key, create_token, create_user, ev_call, ev_reading,
                     json_equal_diff, kendali_cli, key_id, login, near_wib_midnight, parse_time,
                     sanitized_env, utcnow)

APP_ROLE = "kendali"            # owns the original database, as the server's role does
RESTORE_ROLE = "kendali_dr"     # the role of the rebuilt PostgreSQL the backup goes to
OPERATOR = "budi"
ACKED_GAUGE = "SMG-GARANG-KALIGARANG"    # dataset.py: ends in awas
SPARE_GAUGE = "SMG-SEMARANG-BOEZEM"      # dataset.py: ends in waspada
CONVERGE_S = 10.0

KEYS = {
    "calls": ("callcentre-112", ["call"]),
    "reports": ("lapor-hendi", ["report"]),
    "sensors": ("bpbd-gateway", ["sensor"]),
}


# --------------------------------------------------------------------------
# PostgreSQL's client programs, and roles
# --------------------------------------------------------------------------


def pg_tool(cluster, prog, *args, timeout=60):
    """Runs one of PostgreSQL's client programs (of the cluster's version)
    as the invoking user; fails the test with its output when it fails."""
    cmd = [str(cluster.bindir / prog), *map(str, args)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                        env=sanitized_env(LC_ALL="C.UTF-8"))
    if cp.returncode != 0:
        pytest.fail(f"`{prog} {' '.join(map(str, args))}` exited {cp.returncode}\n"
                    f"stdout:\n{cp.stdout[-3000:]}\nstderr:\n{cp.stderr[-3000:]}", pytrace=False)
    return cp


def as_pg_user(cmd):
    """A command line run as the account the cluster runs as (root runs
    the clusters as kendali-pg)."""
    cmd = [str(c) for c in cmd]
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else cmd


def run_as_pg_user(cmd, timeout=120):
    cp = subprocess.run(as_pg_user(cmd), capture_output=True, text=True, timeout=timeout,
                        env=sanitized_env(LC_ALL="C.UTF-8"))
    if cp.returncode != 0:
        pytest.fail(f"`{' '.join(map(str, cmd))}` exited {cp.returncode}\n"
                    f"stdout:\n{cp.stdout[-3000:]}\nstderr:\n{cp.stderr[-3000:]}", pytrace=False)
    return cp


def superuser_exec(cluster, *statements):
    conn = cluster.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def role_database(cluster, name, role):
    """A Database whose DATABASE_URL connects as `role`."""
    db = Database(cluster, name)
    host = urllib.parse.quote(str(cluster.sock), safe="/")
    db.url = f"postgresql://{role}@/{name}?host={host}&port={cluster.port}"
    return db


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s", pytrace=False)
        time.sleep(0.05)


def migrate_applied_nothing(db):
    cp = kendali_cli(db, "migrate")
    assert cp.stdout.startswith("0 migration(s) applied;"), \
        f"`kendali migrate` on the restored database applied something: {cp.stdout!r}"
    return cp.stdout


def counts(resp):
    body = resp.json or {}
    return body.get("accepted"), body.get("duplicates")


def post_all(client, events, key, chunk=500):
    """Posts events in chunks; returns the summed (accepted, duplicates)."""
    acc = dup = 0
    for i in range(0, len(events), chunk):
        r = client.post_events(events[i:i + chunk], key=key)
        assert r.status == 202, r
        acc += r.json["accepted"]
        dup += r.json["duplicates"]
    return acc, dup


def converge(fetch, expected, what, timeout=CONVERGE_S):
    """fetch() -> (kpis, at) until compare_kpis(kpis, expected(at)) is
    empty; fails with the last differences."""
    deadline = time.monotonic() + timeout
    while True:
        kpis, at = fetch()
        if near_wib_midnight(at, 10):
            time.sleep(1)            # a day boundary: wait until it has passed
            deadline += 1
            continue
        diffs = compare_kpis(kpis, expected(at))
        if not diffs:
            return kpis
        if time.monotonic() > deadline:
            pytest.fail(f"{what} differs from the reference at {at.isoformat()}:\n  "
                        + "\n  ".join(diffs[:30]), pytrace=False)
        time.sleep(0.25)


def get_kpis(client):
    def fetch():
        body = client.kpis()
        return body["kpis"], parse_time(body["at"])
    return fetch


# --------------------------------------------------------------------------
# Agencies posting while the backup runs
# --------------------------------------------------------------------------


class Poster(threading.Thread):
    """Posts batches of 1..20 calls or reports, one request after another,
    and records each request: (sent, answered, status, events), times
    monotonic."""

    def __init__(self, port, etype, key, tag):
        super().__init__(daemon=True)
        self.port, self.etype, self.key, self.tag = port, etype, key, tag
        self.stop = threading.Event()
        self.requests = []
        self.lock = threading.Lock()
        self.n = 0
        self.rng = random.Random(tag)

    def event(self):
        self.n += 1
        if self.etype == "call":
            body = {"call_id": f"{self.tag}-c{self.rng.randrange(80)}",
                    "status": self.rng.choice(["received", "answered", "closed", "abandoned"]),
                    "category": self.rng.choice(["medical", "fire", "info"])}
        else:
            body = {"ticket": f"{self.tag}-t{self.rng.randrange(80)}",
                    "status": self.rng.choice(["received", "dispatched", "in_progress", "resolved"]),
                    "category": self.rng.choice(["road", "flood", "waste"])}
            if body["status"] != "received":
                body["agency"] = self.rng.choice(["DPU", "BPBD", "DLH"])
        return {"id": f"{self.tag}-{self.n}", "type": self.etype,
                "occurred_at": ago(seconds=self.rng.randrange(60, 3 * 3600)), self.etype: body}

    def answered(self, after=None):
        with self.lock:
            return sum(1 for r in self.requests if r[2] == 202 and (after is None or r[0] > after))

    def run(self):
        client = Http("127.0.0.1", self.port, key=self.key, timeout=15)
        try:
            while not self.stop.is_set():
                events = [self.event() for _ in range(self.rng.randint(1, 20))]
                sent = time.monotonic()
                try:
                    status = client.post_events(events).status
                except OSError as e:
                    status = repr(e)
                    client.close()
                with self.lock:
                    self.requests.append((sent, time.monotonic(), status, events))
                time.sleep(0.01)
        finally:
            client.close()


# --------------------------------------------------------------------------
# The original, the backup, the restore
# --------------------------------------------------------------------------


class World:
    """What the module built, posted and saw."""

    def expected(self, events, at):
        """The reference's KPIs over `events` at `at`, with the alert the
        operator acknowledged."""
        kpis = reference.compute_kpis(events, self.sensors, at)
        for a in kpis["alerts.active"]:
            if a["kind"] == "level" and a["sensor_id"] == ACKED_GAUGE:
                a["acked_by"] = OPERATOR
        return kpis

    def online(self):
        return [r for p in self.posters for r in p.requests]

    def in_restored(self, events):
        return [e for e in events if (e["type"], e["id"]) in self.restored_ids]


@pytest.fixture(scope="module")
def own_pg(work_dir):
    cluster = PgCluster(work_dir / "pg-backup").init().start()
    superuser_exec(cluster, f"CREATE ROLE {APP_ROLE} LOGIN", f"CREATE ROLE {RESTORE_ROLE} LOGIN")
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def world(own_pg, work_dir, kendali_bin):
    w = World()
    w.dir = work_dir / "backup"
    w.dir.mkdir(parents=True, exist_ok=True)
    superuser_exec(own_pg, f"CREATE DATABASE kd_orig OWNER {APP_ROLE}")
    w.a = role_database(own_pg, "kd_orig", APP_ROLE)
    kendali_cli(w.a, "migrate")
    w.keys = {name: create_key(w.a, poster, types) for name, (poster, types) in KEYS.items()}
    w.revoked_before = create_key(w.a, "callcentre-112", ["call"])
    kendali_cli(w.a, "key", "revoke", key_id(w.revoked_before))
    w.revoked_after = create_key(w.a, "callcentre-112", ["call"])
    w.token = create_token(w.a, "dinding-1", "wall")
    w.password = create_user(w.a, OPERATOR, "operator")
    w.srv_a = Server(w.a, work_dir / "logs", name="backup-orig", anonymous=False).start()
    w.read_a = w.srv_a.http(key=w.token)
    post_a = w.srv_a.http()

    # A realistic city: registered gauges, calls, tickets, readings.
    w.ds = dataset.Dataset(seed=20261124, n_calls=120, n_tickets=90)
    w.sensors = {}
    for sid, body in w.ds.sensors.items():
        r = post_a.put(f"/api/v1/sensors/{urllib.parse.quote(sid)}", body, key=w.keys["sensors"])
        assert r.status in (200, 201, 204), f"PUT /api/v1/sensors/{sid}: {r}"
        w.sensors[sid] = dict(body, registered_at=utcnow())
    for poster, events in w.ds.events.items():
        assert post_all(post_a, events, w.keys[poster]) == (len(events), 0)
    w.base = w.ds.all_events()

    # An operator logs in and acknowledges the awas alert; the backup must
    # hold every alert the data raises, stored, and the acknowledgement.
    w.cookie, _ = login(w.srv_a, OPERATOR, w.password)
    want = {(a["kind"], a["sensor_id"]) for a in w.expected(w.base, utcnow())["alerts.active"]}
    assert ("level", ACKED_GAUGE) in want, want
    wait_for(lambda: {(k, s) for k, s in w.a.rows("SELECT kind, sensor_id FROM alerts"
                                                   " WHERE cleared_at IS NULL")} == want,
             15, f"the active alerts {sorted(want)} stored")
    alert = next(a for a in w.read_a.alerts() if a["sensor_id"] == ACKED_GAUGE and a["kind"] == "level")
    op = Http("127.0.0.1", w.srv_a.port, cookie=w.cookie)
    r = op.post(f"/api/v1/alerts/{alert['id']}/ack", {"note": "Tim BPBD menuju lokasi"})
    op.close()
    assert r.status == 200 and r.json["acked_by"] == OPERATOR, r
    wait_for(lambda: w.a.rows("SELECT acked_by FROM alerts WHERE id = %s", (alert["id"],)) == [(OPERATOR,)],
             10, "the acknowledgement stored")
    converge(get_kpis(w.read_a), lambda at: w.expected(w.base, at), "the original's KPIs")
    w.alerts_a = w.read_a.alerts()

    # The nightly backup, while the call centre and Lapor keep posting.
    w.posters = [Poster(w.srv_a.port, "call", w.keys["calls"], "on-call"),
                 Poster(w.srv_a.port, "report", w.keys["reports"], "on-lapor")]
    for p in w.posters:
        p.start()
    try:
        wait_for(lambda: all(p.answered() >= 5 for p in w.posters), 15, "posts before the backup")
        w.dump = w.dir / "kendali.dump"
        w.dump_began = time.monotonic()
        pg_tool(own_pg, "pg_dump", "-Fc", "-f", w.dump, w.a.url)
        w.dump_ended = time.monotonic()
        # Changes after the backup: a key revoked, a key created.
        kendali_cli(w.a, "key", "revoke", key_id(w.revoked_after))
        w.created_after = create_key(w.a, "callcentre-112", ["call"])
        wait_for(lambda: all(p.answered(after=w.dump_ended) >= 5 for p in w.posters), 15,
                 "posts after the backup")
    finally:
        for p in w.posters:
            p.stop.set()
        for p in w.posters:
            p.join(20)
    post_a.close()

    # The restore: a new, empty database owned by the server's role there.
    pg_tool(own_pg, "createdb", "-h", own_pg.sock, "-p", own_pg.port, "-U", "postgres",
            "-O", RESTORE_ROLE, "kd_restored")
    w.b = role_database(own_pg, "kd_restored", RESTORE_ROLE)
    pg_tool(own_pg, "pg_restore", "--no-owner", "--no-privileges", "--single-transaction",
            "--exit-on-error", "-d", w.b.url, w.dump)
    w.migrate_out = migrate_applied_nothing(w.b)
    w.restored_ids = {(t, e) for t, e in w.b.rows("SELECT type, event_id FROM events")}
    w.restored_max = {t: w.b.rows(f"SELECT coalesce(max(id), 0) FROM {t}")[0][0]
                      for t in ("alerts", "audit")}
    w.srv_b = Server(w.b, work_dir / "logs", name="backup-restored", anonymous=False).start()
    w.read_b = w.srv_b.http(key=w.token)
    yield w
    w.read_a.close()
    w.read_b.close()
    w.srv_b.close()
    w.srv_a.close()


# --------------------------------------------------------------------------
# pg_dump while the server runs
# --------------------------------------------------------------------------


def test_online_backup_refuses_nothing_and_holds_whole_requests(world):
    online = world.online()
    bad = [(s, len(ev)) for _, _, s, ev in online if s != 202]
    assert not bad, f"{len(bad)} of {len(online)} requests during the backup were not accepted: {bad[:10]}"
    before = [ev for sent, done, _, ev in online if done < world.dump_began]
    after = [ev for sent, done, _, ev in online if sent > world.dump_ended]
    assert before and after, "agencies must post both before and after the backup"
    split = []
    for sent, done, _, ev in online:
        n = len(world.in_restored(ev))
        if n not in (0, len(ev)):
            split.append(f"{n} of {len(ev)} events of a request answered after"
                         f" {done - world.dump_began:+.3f} s")
    assert not split, "the backup holds part of a request:\n" + "\n".join(split[:10])
    missing = [ev[0]["id"] for ev in before if not world.in_restored(ev)]
    assert not missing, f"requests answered before pg_dump began are missing: {missing[:10]}"
    extra = [ev[0]["id"] for ev in after if world.in_restored(ev)]
    assert not extra, f"requests sent after pg_dump ended are in the backup: {extra[:10]}"
    base = world.in_restored(world.base)
    assert len(base) == len(world.base), "events loaded before the backup are missing"


# --------------------------------------------------------------------------
# pg_restore into a new database
# --------------------------------------------------------------------------


def test_restore_brings_the_schema_version(world):
    versions = "SELECT version FROM schema_migrations ORDER BY version"
    assert world.b.rows(versions) == world.a.rows(versions)
    assert world.migrate_out.rstrip().endswith(f"schema at version {world.a.rows(versions)[-1][0]}.")


def test_restored_objects_belong_to_the_restoring_role(world):
    owners = world.b.rows("SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
                           " JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')"
                           " UNION ALL SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p"
                           " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'")
    names = {name for name, _ in owners}
    assert {"events", "alerts_id_seq", "audit_id_seq", "schema_migrations", "kd_keys_changed"} <= names
    wrong = sorted(f"{name}: {owner}" for name, owner in owners if owner != RESTORE_ROLE)
    assert not wrong, f"objects not owned by {RESTORE_ROLE}: {wrong}"
    # Every trigger of the dumped database came back, those that tell
    # running servers of new credentials and tenants among them.
    triggers = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    original = {t for (t,) in world.a.rows(triggers)}
    assert {"api_keys_notify", "screen_tokens_notify", "users_notify", "sessions_notify",
            "tenants_notify"} <= original
    assert {t for (t,) in world.b.rows(triggers)} == original


def test_restored_server_shows_the_kpis_of_what_the_backup_holds(world):
    events = world.in_restored(world.base) + [e for *_, ev in world.online()
                                              for e in world.in_restored(ev)]
    # A snapshot is compared at its own `at`; an event a millisecond from a
    # window's edge could still flip between the two, so new screens may
    # connect for a while before the differences count.
    deadline = time.monotonic() + CONVERGE_S
    while True:
        ws = WsClient(world.srv_b.ws_url, headers={"Authorization": f"Bearer {world.token}"}).start()
        try:
            snap = ws.snapshot
            assert snap["database"] == "up", snap
            assert not ws.violations, ws.violations[:10]
        finally:
            ws.close()
        at = parse_time(snap["at"])
        if near_wib_midnight(at, 10):
            time.sleep(1)
            deadline += 1
            continue
        diffs = compare_kpis(snap["kpis"], world.expected(events, at))
        if not diffs or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert not diffs, "the restored server's snapshot differs from the reference:\n  " + \
        "\n  ".join(diffs[:30])
    converge(get_kpis(world.read_b), lambda at: world.expected(events, at), "GET /api/v1/kpis")


def test_alerts_are_restored_as_they_were(world):
    got = world.read_b.alerts()
    diffs = json_equal_diff(got, world.alerts_a)
    assert not diffs, "active alerts after the restore differ:\n  " + "\n  ".join(diffs[:20])
    acked = [a for a in got if a["sensor_id"] == ACKED_GAUGE and a["kind"] == "level"]
    assert len(acked) == 1 and acked[0]["acked_by"] == OPERATOR and acked[0]["acked_at"], got


def test_credentials_of_the_backup(world):
    client = world.srv_b.http()
    try:
        old_call = world.ds.events["calls"][0]
        r = client.post_events([old_call], key=world.keys["calls"])
        assert r.status == 202 and counts(r) == (0, 1), r
        assert_problem(client.post_events([old_call], key=world.revoked_before), 401, "unauthorized")
        assert_problem(client.post_events([old_call], key=world.created_after), 401, "unauthorized")
        # Revoked on the original after the backup: the restore brings it back.
        r = client.post_events([old_call], key=world.revoked_after)
        assert r.status == 202 and counts(r) == (0, 1), r
        r = client.get("/api/v1/session", key=world.token)
        assert r.status == 200 and r.json["kind"] == "screen" and r.json["name"] == "dinding-1", r
        r = client.get("/api/v1/session", key=None, cookie=world.cookie)
        assert r.status == 200 and r.json["kind"] == "user" and r.json["name"] == OPERATOR, r
    finally:
        client.close()


def test_reposts_after_the_restore(world):
    """What the backup holds comes back as duplicates, what came after it is
    stored: agencies re-posting since the backup's time lose nothing."""
    client = world.srv_b.http()
    try:
        for poster, events in world.ds.events.items():
            assert post_all(client, events, world.keys[poster]) == (0, len(events)), poster
        for p in world.posters:
            events = [e for *_, ev in p.requests for e in ev]
            held = world.in_restored(events)
            key = world.keys["calls" if p.etype == "call" else "reports"]
            assert post_all(client, events, key) == (len(events) - len(held), len(held)), p.tag
    finally:
        client.close()
    events = world.base + [e for *_, ev in world.online() for e in ev]
    assert world.b.count_events() == world.a.count_events() == len(events)
    for name, api in (("original", world.read_a), ("restored", world.read_b)):
        converge(get_kpis(api), lambda at: world.expected(events, at), f"{name}'s KPIs")
    # Asked at (almost) the same moment, both say the same, alerts included.
    for _ in range(5):
        diffs = json_equal_diff(world.read_b.kpis()["kpis"], world.read_a.kpis()["kpis"])
        if not diffs:
            break
        time.sleep(0.2)
    assert not diffs, "restored and original servers differ:\n  " + "\n  ".join(diffs[:20])


def test_triggers_and_sequences_work_after_the_restore(world):
    client = world.srv_b.http()
    try:
        old_call = world.ds.events["calls"][0]
        key = create_key(world.b, "callcentre-112", ["call"])
        # The 60 s re-read cannot be what lets it in: the trigger's NOTIFY is.
        wait_for(lambda: client.post_events([old_call], key=key).status == 202, 3,
                 "a key created on the restored database accepted")
        kendali_cli(world.b, "key", "revoke", key_id(key))
        wait_for(lambda: client.post_events([old_call], key=key).status == 401, 3,
                 "a key revoked on the restored database refused")
        assert world.b.rows("SELECT min(id) FROM audit WHERE id > %s",
                    (world.restored_max["audit"],))[0][0] is not None, "no audit row since the restore"
        thresholds = world.ds.sensors[SPARE_GAUGE]["thresholds"]
        r = client.post_events([ev_reading(SPARE_GAUGE, thresholds["awas"] + 10, at=ago(seconds=5))],
                               key=world.keys["sensors"])
        assert r.status == 202 and counts(r) == (1, 0), r
        new = wait_for(lambda: world.b.rows("SELECT id FROM alerts WHERE sensor_id = %s"
                                             " AND cleared_at IS NULL", (SPARE_GAUGE,)),
                       10, "an alert raised on the restored server stored")
        assert new[0][0] > world.restored_max["alerts"], (new, world.restored_max)
    finally:
        client.close()


# --------------------------------------------------------------------------
# Continuous archiving and point-in-time recovery
# --------------------------------------------------------------------------


def test_point_in_time_recovery(work_dir, kendali_bin):
    base = work_dir / "pg-pitr"
    cluster = PgCluster(base).init()
    archive = base / "wal-archive"
    backup = work_dir / "pitr-base"
    for d in (archive, backup):
        d.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(d, PG_USER)
    with open(cluster.data / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write("wal_level = replica\narchive_mode = on\n"
                f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n")
    cluster.start()
    srv = None
    try:
        db = cluster.create_database()
        kendali_cli(db, "migrate")
        key = create_key(db, "callcentre-112", ["call"])
        srv = Server(db, work_dir / "logs", name="backup-pitr").start()
        client = srv.http(key=key)
        first = [ev_call(at=ago(minutes=30)) for _ in range(40)]
        assert counts(client.post_events(first)) == (40, 0)
        # The weekly base backup; what follows is only in the archived WAL.
        run_as_pg_user([cluster.bindir / "pg_basebackup", "-h", cluster.sock, "-p", cluster.port,
                        "-U", "postgres", "-D", backup, "-Ft", "-z", "-X", "stream",
                        "--checkpoint=fast"])
        second = [ev_call(at=ago(minutes=20)) for _ in range(30)]
        assert counts(client.post_events(second)) == (30, 0)
        time.sleep(0.05)
        target = db.scalar("SELECT now()::text")
        time.sleep(0.05)
        third = [ev_call(at=ago(minutes=10)) for _ in range(20)]
        assert counts(client.post_events(third)) == (20, 0)
        # The mistake to undo.
        conn = db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("TRUNCATE events, calls")
            conn.commit()
        finally:
            conn.close()
        segment = db.scalar("SELECT pg_walfile_name(pg_switch_wal())")
        wait_for(lambda: (archive / segment).exists(), 30, f"WAL segment {segment} archived")

        # PostgreSQL is stopped for the recovery; agencies are asked to retry.
        cluster.stop()
        r = client.post_events([ev_call()], fresh=True)
        assert_problem(r, 503, "unavailable")
        assert int(r.headers["Retry-After"]) > 0
        client.close()
        srv.stop()

        # Recovery into an empty data directory, on the same address.
        shutil.move(str(cluster.data), str(base / "data-mistaken"))
        run_as_pg_user(["mkdir", "-m", "700", cluster.data])
        run_as_pg_user(["tar", "-xzf", backup / "base.tar.gz", "-C", cluster.data])
        run_as_pg_user(["tar", "-xzf", backup / "pg_wal.tar.gz", "-C", cluster.data / "pg_wal"])
        with open(cluster.data / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write(f"restore_command = 'cp {archive}/%f %p'\n"
                    f"recovery_target_time = '{target}'\n"
                    "recovery_target_action = 'promote'\n")
        run_as_pg_user(["touch", cluster.data / "recovery.signal"])
        cluster.start()
        wait_for(lambda: not db.scalar("SELECT pg_is_in_recovery()"), 30, "recovery finished")
        assert not (cluster.data / "recovery.signal").exists()

        migrate_applied_nothing(db)
        srv.start()
        client = srv.http(key=key)
        held = {e for (e,) in db.rows("SELECT event_id FROM events")}
        assert held == {e["id"] for e in first + second}, \
            f"recovered {len(held)} events, expected the {len(first) + len(second)} posted before the target"
        reader = srv.http()
        try:
            converge(get_kpis(reader), lambda at: reference.compute_kpis(first + second, {}, at),
                     "the recovered server's KPIs")
        finally:
            reader.close()
        assert counts(client.post_events(first + second + third)) == (20, 70)
        client.close()
    finally:
        if srv is not None:
            srv.close()
        cluster.destroy()
