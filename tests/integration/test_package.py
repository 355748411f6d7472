"""
The Debian package (debian/, docs/operations.md "Installing from the
package"), built once per run from a copy of the working tree, tracked and
new files alike (`git ls-files --cached --others --exclude-standard`), with
`dpkg-buildpackage -b -us -uc` in a temporary directory, so that the tree
gets no build directory; $KENDALI_DEB names a package built already instead.
Nothing is installed on this machine: the package is extracted into a
temporary root, and there

- `dpkg-deb -c` lists the server, every page of web-static/, the service,
  the backup's service, timer and script, and the settings (a conffile);
- `systemd-analyze verify` passes on the three units, with their commands
  pointed at the extracted files, and the service is a Type=notify service
  with a watchdog, its own user and the hardening docs/operations.md names;
- the extracted /usr/bin/kendali, started without --static, serves the
  pages of the extracted /usr/share/kendali/web-static;
- started with NOTIFY_SOCKET and WATCHDOG_USEC as systemd starts it, it
  says READY=1 when it is listening (a request at that moment is
  answered), WATCHDOG=1 at least once per interval and at most twice, and
  STOPPING=1 at SIGTERM, before it exits 0;
- the backup script, against a database of the test cluster, writes a dump
  that pg_restore reads and restores, keeps the 14 newest of its dumps and
  touches no other file, takes DATABASE_URL from the shipped settings file
  when it is not in the environment, and leaves everything as it was when
  pg_dump fails.

Every file of the package's work lives outside pytest's temporary directory
(the sanitized stage of scripts/test.sh searches that for sanitizer reports,
and the documents shipped in the package name them), and is removed at the
end unless KENDALI_IT_KEEP is set.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import REPO, Http, Server, sanitized_env

BUILD_TIMEOUT_S = 1800
UNITS = ("kendali.service", "kendali-backup.service", "kendali-backup.timer")
UNIT_DIRS = ("lib/systemd/system", "usr/lib/systemd/system")
BACKUP_SCRIPT = "usr/lib/kendali/kendali-backup"
ENV_FILE = "etc/kendali/kendali.env"
PAGES = "usr/share/kendali/web-static"


# --------------------------------------------------------------------------
# The package, built once per run
# --------------------------------------------------------------------------


def tree_files():
    """The working tree's files as a checkout would have them: tracked
    ones (as they are now, edits included) and new ones not ignored."""
    try:
        cp = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.fail(f"cannot list the tree's files with git (a git checkout is needed to build "
                    f"the package from it, or set KENDALI_DEB to a built package): {e}",
                    pytrace=False)
    return sorted({p for p in cp.stdout.decode().split("\0") if p})


def copy_tree(dest):
    for rel in tree_files():
        src = REPO / rel
        if not os.path.lexists(src):
            continue  # deleted in the working tree
        dst = dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)


def build_package(work):
    """dpkg-buildpackage -b -us -uc in a copy of the tree under work;
    returns the path of the kendali .deb."""
    src = work / "kendali"
    copy_tree(src)
    log = work / "build.log"
    env = dict(os.environ, LC_ALL="C.UTF-8", DEB_BUILD_OPTIONS="noddebs")
    t0 = time.monotonic()
    with open(log, "w") as out:
        rc = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, env=env,
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            timeout=BUILD_TIMEOUT_S).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"dpkg-buildpackage -b -us -uc failed (exit {rc}); the end of its "
                    f"output:\n{tail}", pytrace=False)
    debs = [p for p in work.glob("kendali_*.deb")]
    assert len(debs) == 1, f"dpkg-buildpackage made {debs}, not one kendali_*.deb"
    print(f"\npackage {debs[0].name} built in {time.monotonic() - t0:.0f} s")
    # The build tree is not needed any more.
    shutil.rmtree(src, ignore_errors=True)
    return debs[0]


@pytest.fixture(scope="module")
def pkg_work():
    """A private directory for the package's build and extracted root."""
    d = Path(tempfile.mkdtemp(prefix="kendali-deb-"))
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("KENDALI_IT_KEEP"):
        print(f"\npackage work directory kept: {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(pkg_work):
    given = os.environ.get("KENDALI_DEB")
    if given:
        path = Path(given)
        if not path.is_file():
            pytest.fail(f"KENDALI_DEB={given} is not a file", pytrace=False)
        return path
    return build_package(pkg_work)


@pytest.fixture(scope="module")
def root(deb, pkg_work):
    """The package extracted (dpkg-deb -x) into a temporary root."""
    r = pkg_work / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(r)], check=True, timeout=120)
    os.chmod(r, 0o755)
    return r


def unit_path(root, name):
    for d in UNIT_DIRS:
        p = root / d / name
        if p.exists():
            return p
    pytest.fail(f"{name} is in none of {UNIT_DIRS} of the package", pytrace=False)


def unit_settings(path):
    """{(section, key): [values]} of a unit file (keys may repeat)."""
    out, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


# --------------------------------------------------------------------------
# What the package holds
# --------------------------------------------------------------------------


def test_contents(deb):
    cp = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True)
    entries = {}
    for line in cp.stdout.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        entries["/" + path.lstrip("./").rstrip("/")] = parts[0]
    pages = sorted(p.relative_to(REPO / "web-static").as_posix()
                   for p in (REPO / "web-static").rglob("*") if p.is_file())
    assert "index.html" in pages and "mayor.html" in pages and "login.html" in pages
    wanted = ["/usr/bin/kendali", f"/{BACKUP_SCRIPT}", f"/{ENV_FILE}"]
    wanted += [f"/{PAGES}/{p}" for p in pages]
    # The reference data of the tenants, for `kendali tenant import`.
    ref = sorted(p.relative_to(REPO / "data").as_posix()
                 for p in (REPO / "data" / "tenants").rglob("*.json"))
    assert "tenants/batang/districts.json" in ref, ref
    wanted += [f"/usr/share/kendali/{p}" for p in ref]
    missing = [p for p in wanted if p not in entries]
    assert not missing, f"the package lacks {missing}"
    for unit in UNITS:
        assert any(f"/{d}/{unit}" in entries for d in UNIT_DIRS), \
            f"the package has no {unit} in {UNIT_DIRS}"
    for exe in ("/usr/bin/kendali", f"/{BACKUP_SCRIPT}"):
        assert entries[exe].startswith("-rwxr-xr-x"), f"{exe} is {entries[exe]}"

    version = re.search(r"^\s*version:\s*'([^']+)'", (REPO / "meson.build").read_text(), re.M)
    assert version and deb_field(deb, "Version") == version.group(1), \
        f"the package's version {deb_field(deb, 'Version')} is not meson.build's " \
        f"{version and version.group(1)} (debian/changelog)"

    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True,
                               text=True, check=True).stdout.split()
    assert f"/{ENV_FILE}" in conffiles, f"conffiles: {conffiles}"
    depends = deb_field(deb, "Depends")
    for dep in ("postgresql-client", "adduser", "libpq5", "libwebsockets-evlib-uv"):
        assert dep in depends, f"Depends lacks {dep}: {depends}"
    postinst = subprocess.run(["dpkg-deb", "-I", str(deb), "postinst"], capture_output=True,
                              text=True, check=True).stdout
    assert "adduser --system" in postinst and "/var/backups/kendali" in postinst


def test_settings_file(root):
    """The shipped settings name the database and the serve options, in a
    form both systemd and sh read (values with spaces quoted)."""
    env_file = root / ENV_FILE
    names = {}
    for line in env_file.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, eq, value = line.partition("=")
            assert eq and name.isidentifier(), f"not VAR=value: {line!r}"
            assert " " not in value or (value[0] == value[-1] == '"'), \
                f"a value with spaces must be quoted: {line!r}"
            names[name] = value.strip('"')
    assert set(names) == {"DATABASE_URL", "KENDALI_OPTIONS"}, names
    cp = subprocess.run(["sh", "-euc", '. "$1"; printf "%s\\n%s\\n" "$DATABASE_URL" '
                         '"$KENDALI_OPTIONS"', "sh", str(env_file)],
                        capture_output=True, text=True, env=sanitized_env())
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines() == [names["DATABASE_URL"], names["KENDALI_OPTIONS"]]


def test_units(root, tmp_path):
    """systemd-analyze verify on the three units, their commands pointed at
    the extracted files (verify checks that they exist); then what the
    service promises."""
    units = tmp_path / "units"
    units.mkdir()
    for name in UNITS:
        text = unit_path(root, name).read_text()
        for exe in ("/usr/bin/kendali", f"/{BACKUP_SCRIPT}"):
            text = text.replace(f"ExecStart={exe}", f"ExecStart={root}{exe}")
        (units / name).write_text(text)
    cp = subprocess.run(["systemd-analyze", "verify", *(str(units / n) for n in UNITS)],
                        capture_output=True, text=True, timeout=120,
                        env=sanitized_env(SYSTEMD_LOG_LEVEL="notice"))
    assert cp.returncode == 0 and not cp.stdout.strip() and not cp.stderr.strip(), \
        f"systemd-analyze verify (exit {cp.returncode}):\n{cp.stdout}{cp.stderr}"

    s = unit_settings(unit_path(root, "kendali.service"))
    expect = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30s",
        "Restart": "on-failure", "User": "kendali", "Group": "kendali",
        "EnvironmentFile": "/etc/kendali/kendali.env",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
    }
    for key, value in expect.items():
        assert s.get(("Service", key)) == [value], f"kendali.service {key}={s.get(('Service', key))}"
    assert s[("Service", "ExecStart")] == ["/usr/bin/kendali serve $KENDALI_OPTIONS"]
    assert s[("Install", "WantedBy")] == ["multi-user.target"]

    b = unit_settings(unit_path(root, "kendali-backup.service"))
    assert b[("Service", "ExecStart")] == [f"/{BACKUP_SCRIPT}"]
    assert b[("Service", "Type")] == ["oneshot"]
    assert b[("Service", "User")] == ["kendali"]
    assert b[("Service", "EnvironmentFile")] == ["/etc/kendali/kendali.env"]
    assert b[("Service", "ReadWritePaths")] == ["/var/backups/kendali"]
    t = unit_settings(unit_path(root, "kendali-backup.timer"))
    assert t[("Timer", "OnCalendar")], "the timer has no OnCalendar"
    assert t[("Install", "WantedBy")] == ["timers.target"]


# --------------------------------------------------------------------------
# The packaged server
# --------------------------------------------------------------------------


def packaged_server(root, database, log_dir, name, env=None):
    """A harness Server running the extracted /usr/bin/kendali (not
    $KENDALI_BIN), with no --static."""
    srv = Server(database, log_dir, name=name, env=env)
    srv.binary = root / "usr/bin/kendali"
    return srv


def migrate_with(root, database):
    cp = subprocess.run([str(root / "usr/bin/kendali"), "migrate"], capture_output=True,
                        text=True, timeout=120, env=sanitized_env(DATABASE_URL=database.url))
    assert cp.returncode == 0, f"kendali migrate: {cp.stdout}{cp.stderr}"


def test_serves_packaged_pages(root, fresh_database, work_dir):
    pages = root / PAGES
    cp = subprocess.run([str(root / "usr/bin/kendali"), "--help"], capture_output=True,
                        text=True, timeout=30)
    assert f"(default {pages})" in cp.stdout, f"--help names another default:\n{cp.stdout}"
    # The tree's pages are the same files: mark the packaged one apart.
    marker = f"<!-- packaged copy {os.getpid()} -->\n"
    with open(pages / "index.html", "a") as f:
        f.write(marker)
    migrate_with(root, fresh_database)
    srv = packaged_server(root, fresh_database, work_dir / "logs", "package-pages")
    try:
        srv.start()
        http = srv.http()
        try:
            r = http.get("/")
            assert r.status == 200, r
            assert r.raw == (pages / "index.html").read_bytes() and marker.encode() in r.raw
            r = http.get("/login")
            assert r.status == 200 and r.raw == (pages / "login.html").read_bytes(), r
            r = http.get("/css/wall.css")
            assert r.status == 200 and r.raw == (pages / "css/wall.css").read_bytes(), r
        finally:
            http.close()
    finally:
        srv.close()


class NotifySocket:
    """The socket systemd gives a Type=notify service (NOTIFY_SOCKET): one
    datagram per notification, "VAR=value" lines."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.messages = []  # (monotonic time, [lines])

    def wait_for(self, line, timeout):
        """Reads until a datagram holds `line`; returns its arrival time."""
        deadline = time.monotonic() + timeout
        while True:
            for t, lines in self.messages:
                if line in lines:
                    return t
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {line} within {timeout} s; heard {self.messages}",
                            pytrace=False)
            self.read(min(left, 0.2))

    def read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return
        self.messages.append((time.monotonic(), data.decode().splitlines()))

    def collect(self, seconds):
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.read(left)

    def times_of(self, line):
        return [t for t, lines in self.messages if line in lines]

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def test_sd_notify(root, deb, fresh_database, work_dir):
    """READY=1 once listening with the state loaded, WATCHDOG=1 every half
    interval, STOPPING=1 at SIGTERM: what kendali.service (Type=notify,
    WatchdogSec=) relies on."""
    depends = deb_field(deb, "Depends")
    assert "libsystemd0" in depends, \
        f"the server does not link libsystemd (server/notify.c unused?): Depends {depends}"
    migrate_with(root, fresh_database)
    sock_dir = Path(tempfile.mkdtemp(prefix="kd-notify-"))
    notify = NotifySocket(sock_dir / "notify")
    watchdog_s = 1.0
    srv = packaged_server(root, fresh_database, work_dir / "logs", "package-notify",
                          env={"NOTIFY_SOCKET": notify.path,
                               "WATCHDOG_USEC": str(int(watchdog_s * 1e6))})
    ready_http = []

    def wait_ready(timeout=None):
        # READY=1 first; at that moment the server must answer.
        deadline = time.monotonic() + Server.READY_TIMEOUT
        while not notify.times_of("READY=1"):
            if srv.proc.poll() is not None:
                pytest.fail(f"kendali exited {srv.proc.returncode} before READY=1; stderr:\n"
                            f"{srv.stderr_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"no READY=1 within {Server.READY_TIMEOUT} s; heard "
                            f"{notify.messages}; stderr:\n{srv.stderr_tail()}", pytrace=False)
            notify.read(0.1)
        http = Http("127.0.0.1", srv.port, timeout=5)
        try:
            ready_http.append(http.get("/healthz").status)
        finally:
            http.close()
        Server.wait_ready(srv, timeout)

    srv.wait_ready = wait_ready
    try:
        srv.start()
        assert ready_http == [200], f"/healthz right after READY=1: {ready_http}"
        assert len(notify.times_of("READY=1")) == 1, notify.messages

        notify.collect(3 * watchdog_s)
        pings = notify.times_of("WATCHDOG=1")
        assert len(pings) >= 3, f"WATCHDOG=1 {len(pings)} times in {3 * watchdog_s} s"
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert max(gaps) < watchdog_s, f"gaps between WATCHDOG=1 (s): {gaps}"
        assert min(gaps) > watchdog_s / 2 - 0.1, f"gaps between WATCHDOG=1 (s): {gaps}"
        assert not notify.times_of("STOPPING=1")

        srv.proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", 10)
        rc = srv.proc.wait(Server.STOP_TIMEOUT)
        srv.proc = None
        assert rc == 0, f"kendali exited {rc} after SIGTERM; stderr:\n{srv.stderr_tail()}"
    finally:
        srv.close()
        notify.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


# --------------------------------------------------------------------------
# The backup script
# --------------------------------------------------------------------------


def old_dumps(d, n=15):
    """n dumps of earlier nights, oldest first, named as the script names
    its own."""
    names = [f"kendali-2020-01-{day:02d}T023000Z.dump" for day in range(1, n + 1)]
    for name in names:
        (d / name).write_text("an old dump\n")
    return names


def dumps_in(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith("kendali-")
                  and p.name.endswith(".dump"))


def run_backup(root, env, timeout=120):
    return subprocess.run([str(root / BACKUP_SCRIPT)], capture_output=True, text=True,
                          timeout=timeout, env=sanitized_env(**env))


def test_backup_keeps_14_restorable(root, pg, fresh_database, tmp_path):
    migrate_with(root, fresh_database)
    backups = tmp_path / "backups"
    backups.mkdir()
    old = old_dumps(backups)
    (backups / "kendali-before-upgrade.dump").write_text("kept by hand\n")
    (backups / "notes.txt").write_text("not a dump\n")

    cp = run_backup(root, {"DATABASE_URL": fresh_database.url, "KENDALI_BACKUP_DIR": backups,
                           "KENDALI_ENV": tmp_path / "absent.env"})
    assert cp.returncode == 0, f"kendali-backup exited {cp.returncode}:\n{cp.stdout}{cp.stderr}"
    ours = [n for n in dumps_in(backups) if n not in ("kendali-before-upgrade.dump",)]
    new = [n for n in ours if n not in old]
    assert len(new) == 1, f"new dumps: {new}"
    assert len(ours) == 14, ours
    assert sorted(ours) == sorted(old[2:] + new), "not the 14 newest"
    assert (backups / "kendali-before-upgrade.dump").exists() and (backups / "notes.txt").exists()
    assert not list(backups.glob("*.part"))
    dump = backups / new[0]
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600, oct(dump.stat().st_mode)

    bindir = pg.bindir
    listing = subprocess.run([str(bindir / "pg_restore"), "--list", str(dump)],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "TABLE DATA public schema_migrations" in listing.stdout, listing.stdout[:2000]

    # It restores, with the flags of docs/operations.md.
    target = pg.create_database()
    cp = subprocess.run([str(bindir / "pg_restore"), "--no-owner", "--no-privileges",
                         "--single-transaction", "--exit-on-error", "-d", target.url, str(dump)],
                        capture_output=True, text=True, timeout=120, env=sanitized_env())
    assert cp.returncode == 0, cp.stderr
    q = "SELECT array_agg(version ORDER BY version) FROM schema_migrations"
    assert target.scalar(q) == fresh_database.scalar(q)
    q = "SELECT array_agg(id ORDER BY id) FROM tenants"
    assert target.scalar(q) == fresh_database.scalar(q)


def test_backup_reads_settings_file(root, fresh_database, tmp_path):
    """Run by hand, without DATABASE_URL in the environment: the line of
    the shipped settings file (quoted, as shipped) is used."""
    migrate_with(root, fresh_database)
    env_file = tmp_path / "kendali.env"
    lines = []
    for line in (root / ENV_FILE).read_text().splitlines():
        if line.startswith("DATABASE_URL="):
            line = f'DATABASE_URL="{fresh_database.url}"'
        lines.append(line)
    env_file.write_text("\n".join(lines) + "\n")
    backups = tmp_path / "backups"
    backups.mkdir()
    old = old_dumps(backups, 3)
    cp = run_backup(root, {"KENDALI_ENV": env_file, "KENDALI_BACKUP_DIR": backups,
                           "KENDALI_BACKUP_KEEP": 2})
    assert cp.returncode == 0, f"kendali-backup exited {cp.returncode}:\n{cp.stdout}{cp.stderr}"
    kept = dumps_in(backups)
    assert len(kept) == 2 and kept[0] == old[-1], kept


def test_backup_failure_changes_nothing(root, pg, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    old = old_dumps(backups)
    cp = run_backup(root, {"DATABASE_URL": pg.url("no_such_database"),
                           "KENDALI_BACKUP_DIR": backups})
    assert cp.returncode != 0, f"kendali-backup succeeded without a database:\n{cp.stdout}"
    assert "no_such_database" in cp.stderr, cp.stderr
    assert sorted(os.listdir(backups)) == sorted(old), "a failed backup changed the directory"

    cp = run_backup(root, {"KENDALI_ENV": tmp_path / "absent.env",
                           "KENDALI_BACKUP_DIR": backups})
    assert cp.returncode == 2 and "DATABASE_URL" in cp.stderr, cp.stderr
    assert sorted(os.listdir(backups)) == sorted(old)
