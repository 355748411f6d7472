"""
Fixtures of the integration suite.

- pg (session): a private PostgreSQL cluster in a temporary directory,
  listening only on a unix socket there; stopped and removed at the end.
- database (module) / fresh_database (function): a new database kd_<n> of
  that cluster, so that modules (or single tests) do not see each other's data.
- server (module): `kendali serve --anonymous-loopback` on that module's
  database, ready (/readyz == 200) before the first test; stopped at teardown.
  Every read of the suite's older modules is anonymous from 127.0.0.1.
- make_server (function): a factory for extra servers (other options, other
  databases; anonymous=False for one that demands an identity for every
  read, see test_roles.py); each is stopped after the test.
- keys (module): API keys created with `kendali key create` for the module's
  database: one per poster.
- api (module): a keep-alive HTTP client for the module's server.

The server binary is $KENDALI_BIN or <repo>/build/server/kendali; a test that
needs it fails (never skips) when it is missing.  When a test fails, the
tail of every running server's stderr is attached to its report.

A run stopped by SIGTERM or SIGHUP (a time limit, `timeout`, a closed
terminal) is treated like Ctrl-C, so that the fixtures' teardown still stops
the servers and the PostgreSQL cluster instead of leaving them running.
"""

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import PgCluster, Server, create_key, kendali_cli, require_binary  # noqa: E402


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in list(harness.LIVE_SERVERS):
            report.sections.append((f"kendali stderr ({srv.name}, port {srv.port})",
                                    srv.stderr_tail(120)))


@pytest.fixture(scope="session")
def work_dir():
    """A temporary directory for the whole session (logs of servers, the
    PostgreSQL cluster).  Kept when KENDALI_IT_KEEP is set."""
    d = Path(tempfile.mkdtemp(prefix="kendali-it-"))
    os.chmod(d, 0o755)
    yield d
    if not os.environ.get("KENDALI_IT_KEEP"):
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"\nintegration work directory kept: {d}")


@pytest.fixture(scope="session")
def pg(work_dir):
    cluster = PgCluster(work_dir / "pg").init().start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def database(pg):
    return pg.create_database()


@pytest.fixture
def fresh_database(pg):
    return pg.create_database()


@pytest.fixture(scope="session")
def kendali_bin():
    return require_binary()


@pytest.fixture(scope="module")
def server(request, database, keys, work_dir, kendali_bin):
    # keys are created (and the schema migrated) before the server starts;
    # keys created while it runs are the subject of test_cli.py
    name = request.module.__name__.rsplit(".", 1)[-1]
    srv = Server(database, work_dir / "logs", name=f"{name}-{database.name}")
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def make_server(work_dir, kendali_bin):
    """make_server(database, *extra_args, anonymous=True, env=None) -> a
    started Server (migrated).  anonymous=False starts it without
    --anonymous-loopback; env adds to its environment."""
    made = []

    def make(database, *extra_args, name=None, migrate=True, anonymous=True,
             listen_host="127.0.0.1", env=None):
        if migrate:
            kendali_cli(database, "migrate")
        srv = Server(database, work_dir / "logs", extra_args,
                     name=name or f"extra-{database.name}-{len(made)}",
                     anonymous=anonymous, listen_host=listen_host, env=env)
        made.append(srv)
        return srv.start()
    yield make
    # Every server is stopped before the first bad exit is reported.
    problems = []
    for srv in made:
        try:
            srv.close()
        except pytest.fail.Exception as e:
            problems.append(str(e))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# Posters and the event types their keys may post.
POSTERS = {
    "calls": ("callcentre-112", ["call"]),
    "reports": ("lapor-hendi", ["report"]),
    "sensors": ("bpbd-gateway", ["sensor"]),
    "all": ("ops-console", ["call", "report", "sensor"]),
    "revocable": ("old-gateway", ["call"]),      # revoked by a test of test_errors.py
}


@pytest.fixture(scope="module")
def keys(database, kendali_bin):
    """{"calls"|"reports"|"sensors"|"all": key} for the module's database."""
    kendali_cli(database, "migrate")
    return {name: create_key(database, poster, types) for name, (poster, types) in POSTERS.items()}


@pytest.fixture(scope="module")
def api(server):
    client = server.http()
    yield client
    client.close()
