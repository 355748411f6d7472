"""
GET /metrics against Prometheus' conventions (docs/api.md section 6; the
naming practices at https://prometheus.io/docs/practices/naming/ and the text
exposition format 0.0.4):

- the whole exposition parses strictly (parse_exposition below): every sample
  belongs to a family with exactly one HELP and one TYPE line before its
  samples, a family's lines are together, names and label names are valid,
  label values are escaped as the format says, counters end in `_total`,
  names carry base units, no series appears twice; the families are the ones
  docs/api.md lists, with their types;
- `kendali_build_info{version=...} 1` carries what `kendali --version` prints;
- events accepted and duplicate per poster equal what each poster's keys
  posted, counted here from the events sent and the idempotency rule of
  docs/api.md (one event per poster and id), not from the server's answers;
  two keys of one poster add up; a poster's name with a backslash, a double
  quote, a newline and a non-ASCII letter comes back intact;
- past the bound on posters (1000), further posters are counted together
  as poster="_other", as is a poster of that very name.

The parser's own checks are exercised against broken expositions
(test_parser_refuses), so that each can be seen to fail.
"""

import math
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import Server, create_key, ev_call, kendali_cli, key_id, require_binary, unique_id

DOCS_API = Path(__file__).resolve().parents[2] / "docs" / "api.md"

# Every family of /metrics and its type (docs/api.md section 6).
FAMILIES = {
    "kendali_build_info": "gauge",
    "kendali_events_accepted_total": "counter",
    "kendali_events_duplicate_total": "counter",
    "kendali_events_unknown_district_total": "counter",
    "kendali_requests_rejected_total": "counter",
    "kendali_commit_groups_total": "counter",
    "kendali_commit_groups_rewritten_total": "counter",
    "kendali_store_pending_events": "gauge",
    "kendali_ws_clients": "gauge",
    "kendali_ws_messages_total": "counter",
    "kendali_ws_snapshots_total": "counter",
    "kendali_ws_push_seconds": "summary",
    "kendali_tenants": "gauge",
    "kendali_calls_held": "gauge",
    "kendali_tickets_held": "gauge",
    "kendali_database_up": "gauge",
}
PER_POSTER = ("kendali_events_accepted_total", "kendali_events_duplicate_total",
              "kendali_events_unknown_district_total")
POSTERS_MAX = 1000          # docs/api.md: the bound on posters
OTHER = "_other"            # docs/api.md: the label value past it

# --------------------------------------------------------------------------
# A strict parser of the text format 0.0.4
# --------------------------------------------------------------------------

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z|[+-]Inf\Z|NaN\Z")
TIMESTAMP = re.compile(r"-?\d+\Z")
TYPES = ("counter", "gauge", "summary", "histogram", "untyped")
# Name parts that are not base units (seconds, bytes, ...).
NOT_BASE_UNITS = {"ms", "us", "ns", "millis", "micros", "milliseconds", "microseconds",
                  "nanoseconds", "minutes", "hours", "days", "kb", "mb", "gb", "kib", "mib",
                  "kilobytes", "megabytes", "gigabytes", "percent"}
# The samples of a family other than its own name, by type.
SUFFIXES = {"summary": ("_sum", "_count"), "histogram": ("_bucket", "_sum", "_count")}


class ExpositionError(AssertionError):
    pass


def fail(lineno, line, why):
    raise ExpositionError(f"line {lineno}: {why}: {line!r}")


def parse_labels(s, lineno, line):
    """The label set of `{...}` (s starts after the brace): (labels, rest
    after the closing brace).  Values are unescaped."""
    labels, i = {}, 0
    while True:
        if s.startswith("}", i):
            return labels, s[i + 1:]
        m = re.compile(r"[^=]*").match(s, i)
        name = m.group(0)
        if not LABEL_NAME.match(name) or name.startswith("__"):
            fail(lineno, line, f"bad label name {name!r}")
        if name in labels:
            fail(lineno, line, f"label {name} twice")
        i = m.end()
        if not s.startswith('="', i):
            fail(lineno, line, f"label {name} without =\"")
        i += 2
        value = []
        while True:
            if i >= len(s):
                fail(lineno, line, "label value not closed")
            c = s[i]
            if c == "\\":
                esc = s[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    fail(lineno, line, f"bad escape \\{esc} in a label value")
                value.append("\n" if esc == "n" else esc)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        labels[name] = "".join(value)
        if s.startswith(",", i) and not s.startswith(",}", i):
            i += 1
        elif not s.startswith("}", i):
            fail(lineno, line, "labels not separated by a comma")


def parse_value(text, lineno, line):
    if not FLOAT.match(text):
        fail(lineno, line, f"bad value {text!r}")
    return float(text)


def family_of(name, types):
    """The family a sample's name belongs to, from the TYPE lines seen."""
    if name in types and types[name] not in SUFFIXES:
        return name
    for t, suffixes in SUFFIXES.items():
        for suffix in suffixes:
            base = name[:-len(suffix)]
            if name.endswith(suffix) and types.get(base) == t:
                return base
    return name if name in types else None


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}, or
    ExpositionError at the first departure from the format or from the
    conventions this server follows."""
    families, types = {}, {}
    current, closed, series = None, set(), set()
    if text and not text.endswith("\n"):
        raise ExpositionError("the last line does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 4 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                fail(lineno, line, "a comment that is neither HELP nor TYPE")
            _, kind, name, rest = parts
            if not METRIC_NAME.match(name):
                fail(lineno, line, f"bad metric name {name!r}")
            f = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if name in closed or (f["samples"]):
                fail(lineno, line, f"{kind} of {name} after its samples")
            if current != name:
                if current is not None:
                    closed.add(current)
                current = name
            if kind == "HELP":
                if f["help"] is not None:
                    fail(lineno, line, f"a second HELP for {name}")
                if re.search(r"\\(?![\\n])", rest) or len(rest.strip()) < 20:
                    fail(lineno, line, "HELP with a bad escape, or too short to act on")
                f["help"] = rest
            else:
                if f["type"] is not None:
                    fail(lineno, line, f"a second TYPE for {name}")
                if rest not in TYPES:
                    fail(lineno, line, f"unknown type {rest!r}")
                f["type"] = types[name] = rest
            continue
        m = re.match(r"([^{ ]*)", line)
        name = m.group(1)
        if not METRIC_NAME.match(name):
            fail(lineno, line, f"bad metric name {name!r}")
        rest = line[m.end():]
        labels = {}
        if rest.startswith("{"):
            labels, rest = parse_labels(rest[1:], lineno, line)
        if not rest.startswith(" "):
            fail(lineno, line, "no single space before the value")
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2):
            fail(lineno, line, "not `value [timestamp]` after the name")
        value = parse_value(fields[0], lineno, line)
        if len(fields) == 2 and not TIMESTAMP.match(fields[1]):
            fail(lineno, line, f"bad timestamp {fields[1]!r}")
        fam = family_of(name, types)
        if fam is None:
            fail(lineno, line, f"sample of {name} without a TYPE before it")
        f = families[fam]
        if f["help"] is None:
            fail(lineno, line, f"sample of {fam} without a HELP before it")
        if fam != current:
            fail(lineno, line, f"sample of {fam} away from its family's lines")
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            fail(lineno, line, "the same series twice")
        series.add(key)
        if f["type"] == "counter" and not (value >= 0 and math.isfinite(value)):
            fail(lineno, line, "a counter that is negative or not finite")
        if f["type"] == "summary" and name == fam and "quantile" not in labels:
            fail(lineno, line, "a summary's sample without quantile")
        if f["type"] == "histogram" and name.endswith("_bucket") and "le" not in labels:
            fail(lineno, line, "a histogram's bucket without le")
        f["samples"].append((name, labels, value))
    for name, f in families.items():
        if f["help"] is None or f["type"] is None:
            raise ExpositionError(f"{name} lacks its {'HELP' if f['help'] is None else 'TYPE'}")
        if f["type"] == "counter" and not name.endswith("_total"):
            raise ExpositionError(f"counter {name} does not end in _total")
        if f["type"] != "counter" and name.endswith("_total"):
            raise ExpositionError(f"{name} ends in _total but is a {f['type']}")
        bad = NOT_BASE_UNITS.intersection(name.split("_"))
        if bad:
            raise ExpositionError(f"{name} is not in base units ({', '.join(sorted(bad))})")
        if not name.startswith("kendali_"):
            raise ExpositionError(f"{name} lacks the kendali_ prefix")
    return families


def scrape(srv):
    http = srv.http()
    try:
        r = http.get("/metrics")
    finally:
        http.close()
    assert r.status == 200, f"GET /metrics: {r}"
    assert r.headers.get("Content-Type") == "text/plain; version=0.0.4", r.headers.get("Content-Type")
    return parse_exposition(r.raw.decode("utf-8"))     # strict UTF-8: a bad byte raises


def by_poster(families, name, tenant="semarang"):
    """The samples of a per-poster counter, by poster: every one labelled
    with the tenant and the poster (docs/api.md section 6), of tenant."""
    out = {}
    for sample, labels, value in families[name]["samples"]:
        assert sample == name and set(labels) == {"tenant", "poster"}, (sample, labels)
        assert labels["tenant"] == tenant, labels
        out[labels["poster"]] = value
    return out


# --------------------------------------------------------------------------
# The parser, against broken expositions
# --------------------------------------------------------------------------

GOOD = ("# HELP kendali_x_total Things done, per thing: look at the thing.\n"
        "# TYPE kendali_x_total counter\n"
        'kendali_x_total{thing="a\\\\b\\"c\\nd"} 3\n'
        "# HELP kendali_y_seconds Time spent on things; a long mean is bad.\n"
        "# TYPE kendali_y_seconds summary\n"
        "kendali_y_seconds_sum 0.5\n"
        "kendali_y_seconds_count 2\n")


def test_parser_reads_a_good_exposition():
    fams = parse_exposition(GOOD)
    assert fams["kendali_x_total"]["samples"] == [("kendali_x_total", {"thing": 'a\\b"c\nd'}, 3.0)]
    assert [s[0] for s in fams["kendali_y_seconds"]["samples"]] == ["kendali_y_seconds_sum",
                                                                     "kendali_y_seconds_count"]


BROKEN = {
    "no HELP": GOOD.replace("# HELP kendali_x_total Things done, per thing: look at the thing.\n", ""),
    "no TYPE": GOOD.replace("# TYPE kendali_y_seconds summary\n", ""),
    "HELP twice": GOOD.replace("# TYPE kendali_x_total counter\n",
                               "# TYPE kendali_x_total counter\n# HELP kendali_x_total Again, the same thing.\n"),
    "TYPE twice": GOOD.replace("# TYPE kendali_x_total counter\n",
                               "# TYPE kendali_x_total counter\n# TYPE kendali_x_total counter\n"),
    "TYPE after samples": GOOD + "# TYPE kendali_x_total counter\n",
    "family split": GOOD + 'kendali_x_total{thing="b"} 1\n',
    "bad name": GOOD.replace("kendali_y_seconds", "kendali-y_seconds"),
    "counter without _total": GOOD.replace("kendali_x_total", "kendali_x"),
    "gauge with _total": GOOD.replace("counter", "gauge"),
    "not base units": GOOD.replace("kendali_y_seconds", "kendali_y_ms"),
    "unescaped quote": GOOD.replace('\\"c', '"c'),
    "unknown escape": GOOD.replace("\\nd", "\\td"),
    "raw newline": GOOD.replace("\\nd", "\nd"),
    "bad label name": GOOD.replace("{thing=", "{0thing="),
    "label twice": GOOD.replace('{thing="a', '{thing="z",thing="a'),
    "no comma": GOOD.replace('{thing="a\\\\b\\"c\\nd"}', '{thing="a" other="b"}'),
    "bad value": GOOD.replace("} 3\n", "} three\n"),
    "negative counter": GOOD.replace("} 3\n", "} -3\n"),
    "same series twice": GOOD.replace("kendali_y_seconds_count 2\n",
                                      "kendali_y_seconds_count 2\nkendali_y_seconds_count 2\n"),
    "summary sample without quantile": GOOD.replace("kendali_y_seconds_sum 0.5\n",
                                                    "kendali_y_seconds 0.5\nkendali_y_seconds_sum 0.5\n"),
    "other comment": "# a comment\n" + GOOD,
    "no final newline": GOOD[:-1],
    "sample without a family": GOOD + "kendali_z 1\n",
    "HELP too short": GOOD.replace("Things done, per thing: look at the thing.", "x"),
    "no prefix": GOOD.replace("kendali_x_total", "x_total"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_parser_refuses(case):
    with pytest.raises(ExpositionError):
        parse_exposition(BROKEN[case])


# --------------------------------------------------------------------------
# Against the server
# --------------------------------------------------------------------------

# A poster's name that needs every escape of a label value.
ODD_POSTER = 'dinas "PU"\\barat\nkota Semarang é'


def started(pg, work_dir, posters, name):
    """A migrated database with one key per entry of posters (a list of
    poster names; a name given twice gets two keys), and a server started
    on it afterwards.  Returns (server, keys in the order of posters)."""
    db = pg.create_database()
    kendali_cli(db, "migrate")
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda p: create_key(db, p, ["call"]), posters))
    srv = Server(db, work_dir / "logs", name=f"{name}-{db.name}").start()
    return srv, keys


def test_exposition_families_and_build_info(pg, work_dir, kendali_bin):
    srv, _ = started(pg, work_dir, [], "metrics-families")
    try:
        fams = scrape(srv)
    finally:
        srv.close()
    assert {n: f["type"] for n, f in fams.items()} == FAMILIES
    # Nothing posted yet: per-poster counters have no sample at all.
    for name in PER_POSTER:
        assert fams[name]["samples"] == [], name

    out = subprocess.run([str(require_binary()), "--version"], capture_output=True, text=True,
                         check=True).stdout
    m = re.fullmatch(r"kendali (\S+)\n", out)
    assert m, f"`kendali --version` printed {out!r}"
    assert fams["kendali_build_info"]["samples"] == [
        ("kendali_build_info", {"version": m.group(1)}, 1.0)]


def test_families_are_documented():
    """docs/api.md's table of section 6 lists exactly these families."""
    text = DOCS_API.read_text(encoding="utf-8")
    section = text.split("## 6. Health and metrics", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(kendali_[a-z_]+)(?:\{[a-z_, ]*\})?` \| (\w+) \|", section, re.M)
    assert dict(rows) == FAMILIES


def test_events_per_poster(pg, work_dir, kendali_bin):
    posters = ["bpbd", "bpbd", ODD_POSTER]
    srv, (bpbd1, bpbd2, odd) = started(pg, work_dir, posters, "metrics-posters")
    poster_of = {bpbd1: "bpbd", bpbd2: "bpbd", odd: ODD_POSTER}
    stored = set()          # (poster, event id): docs/api.md's idempotency
    expected = {"accepted": {}, "duplicate": {}}
    http = srv.http()

    def post(key, events):
        p = poster_of[key]
        acc = dup = 0
        for e in events:
            if (p, e["id"]) in stored:
                dup += 1
            else:
                stored.add((p, e["id"]))
                acc += 1
        expected["accepted"][p] = expected["accepted"].get(p, 0) + acc
        expected["duplicate"][p] = expected["duplicate"].get(p, 0) + dup
        r = http.post_events(events, key=key)
        assert r.status == 202, r

    try:
        e = [ev_call() for _ in range(5)]
        post(bpbd1, e)
        post(bpbd2, [e[0], e[1], ev_call()])         # the poster's, through its other key
        g = ev_call()
        post(odd, [e[0], e[2], g, g])                # ids of another poster are new here
        post(odd, [g, e[0]])
        # Refused requests count for no poster, only in requests_rejected.
        assert http.post("/api/v1/events", "[", key=bpbd1, content_type="application/json").status == 400
        assert http.post("/api/v1/events", "[]", key=bpbd1, content_type="application/json").status == 422
        bad = ev_call(eid=unique_id("bad"))
        del bad["occurred_at"]
        assert http.post_events([ev_call(), bad], key=odd).status == 422
        fams = scrape(srv)
    finally:
        http.close()
        srv.close()
    assert by_poster(fams, "kendali_events_accepted_total") == expected["accepted"]
    assert by_poster(fams, "kendali_events_duplicate_total") == expected["duplicate"]
    assert [s[2] for s in fams["kendali_requests_rejected_total"]["samples"]] == [3]


def clone_keys(db, key, posters):
    """Keys for many posters at once, much faster than `kendali key create`
    per poster (tens of milliseconds each): rows of api_keys copied from
    key's, each with a key id of its own and the same secret.  A server that
    did not take them would answer 401, failing the test."""
    secret = key.split("_", 2)[2]
    ids = [f"ffff{i:08x}" for i in range(len(posters))]
    conn = db.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO api_keys (key_id, tenant, poster, types, secret_sha256)"
                        " SELECT n.id, k.tenant, n.poster, k.types, k.secret_sha256"
                        " FROM api_keys k, unnest(%s::text[], %s::text[]) AS n(id, poster)"
                        " WHERE k.key_id = %s", (ids, posters, key_id(key)))
            assert cur.rowcount == len(posters)
    finally:
        conn.close()
    return [f"kd_{i}_{secret}" for i in ids]


def test_posters_past_the_bound(pg, work_dir, kendali_bin):
    """The first POSTERS_MAX posters to post get a series each; later ones,
    and a poster named like the bucket, share poster="_other".  Posts go in
    parallel, so which posters come late is not known, only how many."""
    db = pg.create_database()
    kendali_cli(db, "migrate")
    template = create_key(db, "template", ["call"])     # never posts
    posters = [f"agency-{i:04d}" for i in range(POSTERS_MAX + 2)] + [OTHER]
    keys = clone_keys(db, template, posters)
    srv = Server(db, work_dir / "logs", name=f"metrics-bound-{db.name}").start()

    def post(chunk):
        http = srv.http()
        try:
            for key in chunk:
                r = http.post_events([ev_call()], key=key)
                assert r.status == 202, r
        finally:
            http.close()

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, [keys[i::8] for i in range(8)]))
        fams = scrape(srv)
    finally:
        srv.close()
    accepted = by_poster(fams, "kendali_events_accepted_total")
    own = {p for p in accepted if p != OTHER}
    assert len(own) == POSTERS_MAX and own <= set(posters[:-1]), sorted(set(accepted) - set(posters))
    assert all(accepted[p] == 1 for p in own)
    # The two posters that came too late, and the one named "_other".
    assert accepted.get(OTHER) == 3, accepted.get(OTHER)
    assert by_poster(fams, "kendali_events_duplicate_total") == dict.fromkeys(accepted, 0)
    # The operator is told once, not per request.
    told = [ln for ln in srv.stderr_path.read_text().splitlines() if f"more than {POSTERS_MAX} posters" in ln]
    assert len(told) == 1, told
