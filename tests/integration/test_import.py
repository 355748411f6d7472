"""
Reference data per tenant (docs/reference-data.md): `kendali tenant import ID
DIR` loads a regency's or city's districts.json, agencies.json and
gauges.json, and this suite checks it against the files, which it reads
itself:

- every set shipped under data/tenants/ is consistent on its own (codes
  unique and of the region's prefix, names given, gauges in its districts),
  and Semarang's is data/semarang.json's with Kemendagri codes;
- importing each gives exactly the rows its files hold, and a server serving
  the tenant then lists its gauges as PUT /api/v1/sensors/{id} would;
- importing the same set again changes nothing, a newer version replaces the
  districts and agencies and upserts the gauges, an older one or the same
  version with other content is refused;
- each malformed input is refused with exit code 2, naming the file, the
  entry and the field, and stores nothing; so are an unknown tenant and a
  province.
"""

import json
import re
import shutil

import pytest

from harness import REPO, kendali_cli

TENANTS_DIR = REPO / "data" / "tenants"
SHIPPED = sorted(p.name for p in TENANTS_DIR.iterdir() if p.is_dir())
FORMAT = "kendali-reference/1"
FILES = ("districts.json", "agencies.json", "gauges.json")
LIST = {"districts.json": "districts", "agencies.json": "agencies", "gauges.json": "gauges"}
REPORT_CATEGORIES = {"flood", "road", "drainage", "waste", "streetlight", "traffic",
                     "public_order", "health", "administration", "other"}
# The Kemendagri codes of the regencies and the city shipped (idn-area-data's
# data/regencies.csv); the files are checked against these, not the package.
REGIONS = {"semarang": ("33.74", "Kota Semarang"), "batang": ("33.25", "Kabupaten Batang"),
           "pati": ("33.18", "Kabupaten Pati"), "klaten": ("33.10", "Kabupaten Klaten"),
           "rembang": ("33.17", "Kabupaten Rembang"), "magelang": ("33.08", "Kabupaten Magelang")}


def cli(db, *args):
    return kendali_cli(db, *args, check=False)


def load(directory):
    """The files of a set, parsed: {file name: object}; a missing gauges.json
    is left out."""
    out = {}
    for name in FILES:
        path = directory / name
        if path.exists():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def expected(files):
    """The rows a set's files hold, as the tables hold them."""
    districts = sorted((d["code"], d["name"], d.get("location", {}).get("lat"),
                        d.get("location", {}).get("lon")) for d in files["districts.json"]["districts"])
    agencies = sorted((a["code"], a["name"], list(a.get("handles", [])))
                      for a in files["agencies.json"]["agencies"])
    gauges = sorted((g["sensor_id"], g["name"], g["metric"], g["unit"], g.get("district"),
                     g.get("location", {}).get("lat"), g.get("location", {}).get("lon"),
                     *(g["thresholds"].get(k) for k in ("waspada", "siaga", "awas")),
                     g.get("offline_after_s", 900))
                    for g in files.get("gauges.json", {}).get("gauges", []))
    return districts, agencies, gauges


def stored(db, tenant, gauge_ids=None):
    """The tenant's rows; the sensors those of gauge_ids (all when None)."""
    districts = db.rows("SELECT code, name, lat, lon FROM districts WHERE tenant = %s ORDER BY code",
                        (tenant,))
    agencies = [(c, n, list(h)) for c, n, h in
                db.rows("SELECT code, name, handles FROM agencies WHERE tenant = %s ORDER BY code",
                        (tenant,))]
    gauges = [r for r in db.rows(
        "SELECT sensor_id, name, metric, unit, district, lat, lon, waspada, siaga, awas,"
        " offline_after_s FROM sensors WHERE tenant = %s ORDER BY sensor_id", (tenant,))
        if gauge_ids is None or r[0] in gauge_ids]
    return districts, agencies, gauges


def snapshot(db):
    """Everything an import may write, with the times of each row."""
    return [db.rows(sql) for sql in (
        "SELECT * FROM districts ORDER BY tenant, code",
        "SELECT * FROM agencies ORDER BY tenant, code",
        "SELECT * FROM sensors ORDER BY tenant, sensor_id",
        "SELECT * FROM reference_sets ORDER BY tenant",
        "SELECT id, tenant, actor, action, detail FROM audit ORDER BY id",
        "SELECT id, kind FROM tenants ORDER BY id")]


def write(directory, files, raw=None):
    """Writes a set's files (raw: {name: text or bytes} written as is)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        (directory / name).write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    for name, text in (raw or {}).items():
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(directory / name, mode) as f:
            f.write(text)
    return directory


def create(db, tenant):
    code, name = REGIONS[tenant]
    if tenant != "semarang":
        kendali_cli(db, "tenant", "create", tenant, "--name", name, "--head", "Bupati")


def imported(cp, tenant, files):
    """Whether cp says it imported files into tenant."""
    code, name = REGIONS[tenant]
    d, a, g = (len(files.get(f, {}).get(LIST[f], [])) for f in FILES)
    version = files["districts.json"]["version"]
    return cp.stdout.startswith(
        f"Imported version {version} of the reference data of {tenant} ({name}, {code}): "
        f"{d} districts, {a} agencies, {g} gauges.\n")


@pytest.fixture
def db(fresh_database, kendali_bin):
    kendali_cli(fresh_database, "migrate")
    return fresh_database


# --------------------------------------------------------------------------
# The files shipped
# --------------------------------------------------------------------------


def test_the_shipped_sets():
    """Batang, Pati and Semarang at least; each set consistent on its own."""
    assert {"semarang", "batang", "pati"} <= set(SHIPPED)
    for tenant in SHIPPED:
        files = load(TENANTS_DIR / tenant)
        assert {"districts.json", "agencies.json"} <= set(files), tenant
        assert sorted(p.name for p in (TENANTS_DIR / tenant).iterdir()) == sorted(files), tenant
        code, name = REGIONS[tenant]
        for fname, obj in files.items():
            where = f"{tenant}/{fname}"
            assert obj["format"] == FORMAT, where
            assert obj["version"] == files["districts.json"]["version"], where
            assert obj["region"] == {"code": code, "name": name}, where
            assert obj["source"]["name"], where
        source = files["districts.json"]["source"]
        assert source["name"] == "idn-area-data" and source["version"] and source["licence"], tenant

        districts = files["districts.json"]["districts"]
        codes = [d["code"] for d in districts]
        names = [d["name"] for d in districts]
        assert len(set(codes)) == len(codes) and len(set(names)) == len(names), tenant
        for d in districts:
            assert re.fullmatch(re.escape(code) + r"\.\d\d", d["code"]), (tenant, d)
            assert d["name"].strip() == d["name"] and 0 < len(d["name"].encode()) <= 64, (tenant, d)

        agencies = files["agencies.json"]["agencies"]
        acodes = [a["code"].upper() for a in agencies]
        assert len(set(acodes)) == len(acodes), tenant
        for a in agencies:
            assert re.fullmatch(r"[A-Za-z0-9._-]{1,32}", a["code"]) and a["name"].strip(), (tenant, a)
            assert set(a["handles"]) <= REPORT_CATEGORIES, (tenant, a)
        assert {"BPBD", "DLH", "DISHUB", "DINKES", "SATPOLPP", "DINSOS",
                "DISDUKCAPIL"} <= set(acodes), tenant

        gauges = files.get("gauges.json", {}).get("gauges", [])
        ids = [g["sensor_id"] for g in gauges]
        assert len(set(ids)) == len(ids), tenant
        for g in gauges:
            assert g["district"] in names, (tenant, g)
            levels = [g["thresholds"][k] for k in ("waspada", "siaga", "awas") if k in g["thresholds"]]
            assert levels and levels == sorted(set(levels)), (tenant, g)
        if gauges:
            assert "illustrative" in files["gauges.json"]["note"].lower(), tenant


def test_semarang_is_data_semarang_json_with_codes():
    """data/tenants/semarang holds data/semarang.json's districts (now with
    their codes), agencies and gauges."""
    old = json.loads((REPO / "data" / "semarang.json").read_text(encoding="utf-8"))
    files = load(TENANTS_DIR / "semarang")
    assert sorted((d["name"], d["location"]["lat"], d["location"]["lon"])
                  for d in files["districts.json"]["districts"]) == \
        sorted((d["name"], d["lat"], d["lon"]) for d in old["districts"])
    by_name = {d["name"]: d["code"] for d in files["districts.json"]["districts"]}
    # A few codes of Kota Semarang's kecamatan, as Kemendagri numbers them.
    assert (by_name["Semarang Tengah"], by_name["Gayamsari"], by_name["Semarang Barat"],
            by_name["Tugu"]) == ("33.74.01", "33.74.04", "33.74.13", "33.74.16")
    assert [(a["code"], a["name"], a["handles"]) for a in files["agencies.json"]["agencies"]] == \
        [(a["code"], a["name"], a["handles"]) for a in old["agencies"]]
    new = {g["sensor_id"]: g for g in files["gauges.json"]["gauges"]}
    assert list(new) == [g["id"] for g in old["gauges"]]
    for g in old["gauges"]:
        n = new[g["id"]]
        assert (n["district"], n["location"], n["thresholds"]) == \
            (g["district"], {"lat": g["lat"], "lon": g["lon"]}, g["thresholds"])
        assert g["name"] in n["name"] and (n["metric"], n["unit"]) == ("water_level", "cm")


# --------------------------------------------------------------------------
# Importing
# --------------------------------------------------------------------------


def test_each_shipped_set_imports_as_its_files_say(db):
    for tenant in SHIPPED:
        create(db, tenant)
        files = load(TENANTS_DIR / tenant)
        cp = cli(db, "tenant", "import", tenant, TENANTS_DIR / tenant)
        assert cp.returncode == 0, cp.stderr
        assert imported(cp, tenant, files), cp.stdout
        assert stored(db, tenant) == expected(files), tenant
        assert db.rows("SELECT version, region_code, region_name, sources->'districts'->>'name'"
                       " FROM reference_sets WHERE tenant = %s", (tenant,)) == \
            [(1, *REGIONS[tenant], "idn-area-data")]
    # One audit row per import, and no tenant's rows in another's.
    assert db.rows("SELECT tenant, action, detail->>'version' FROM audit ORDER BY tenant") == \
        [(t, "reference.import", "1") for t in SHIPPED]
    assert db.scalar("SELECT count(DISTINCT tenant) FROM districts") == len(SHIPPED)


def test_a_server_lists_imported_gauges_as_registered(db, make_server):
    """The gauges go to the registry with the rules of PUT /api/v1/sensors:
    a server serving the tenant lists them with their definitions."""
    create(db, "pati")
    kendali_cli(db, "tenant", "import", "pati", TENANTS_DIR / "pati")
    srv = make_server(db, "--tenant", "pati", migrate=False)
    r = srv.http().get("/api/v1/sensors", key=None)
    assert r.status == 200, r
    got = {s["sensor_id"]: s for s in r.json["sensors"]}
    want = load(TENANTS_DIR / "pati")["gauges.json"]["gauges"]
    assert sorted(got) == sorted(g["sensor_id"] for g in want)
    for g in want:
        s = got[g["sensor_id"]]
        assert (s["name"], s["metric"], s["unit"], s["district"], s["offline_after_s"]) == \
            (g["name"], g["metric"], g["unit"], g["district"], 900)
        assert s["thresholds"] == {k: float(v) for k, v in g["thresholds"].items()}
        assert s["online"] is False and s["value"] is None


def test_the_same_set_twice_changes_nothing(db):
    create(db, "batang")
    kendali_cli(db, "tenant", "import", "batang", TENANTS_DIR / "batang")
    kendali_cli(db, "tenant", "import", "semarang", TENANTS_DIR / "semarang")
    before = snapshot(db)
    for tenant in ("batang", "semarang"):
        cp = cli(db, "tenant", "import", tenant, str(TENANTS_DIR / tenant) + "/")
        assert (cp.returncode, cp.stderr) == (0, ""), cp.stderr
        assert cp.stdout == (f"Version 1 of the reference data of {tenant} is imported already: "
                             "nothing changed.\n")
    assert snapshot(db) == before


def bump(files, version):
    for obj in files.values():
        obj["version"] = version
    return files


def test_a_newer_version_replaces(db, tmp_path):
    """Version 2 renames, removes and adds districts and agencies (swapping two
    names too) and changes and adds gauges: the tenant's districts and
    agencies are then exactly the new files', its gauges upserted (one left
    out of the file stays registered, one unchanged keeps its time)."""
    create(db, "batang")
    kendali_cli(db, "tenant", "import", "batang", TENANTS_DIR / "batang")
    # A gauge registered otherwise (as through the API) is not the import's.
    db.execute("INSERT INTO sensors (tenant, sensor_id, name, metric, unit, siaga,"
               " offline_after_s) VALUES ('batang', 'BTG-OTHER', 'Other', 'water_level', 'cm', 1, 900)")
    v1_sensors = {r[0]: r for r in db.rows("SELECT sensor_id, updated_at FROM sensors"
                                           " WHERE tenant = 'batang'")}

    files = bump(load(TENANTS_DIR / "batang"), 2)
    ds = files["districts.json"]["districts"]
    ds[0]["name"], ds[1]["name"] = ds[1]["name"], ds[0]["name"]
    ds[2]["name"] = "Blado Baru"
    del ds[3]
    ds.append({"code": "33.25.99", "name": "Kecamatan Uji", "location": {"lat": -6.9, "lon": 109.8}})
    ag = files["agencies.json"]["agencies"]
    ag[0]["name"] = "Badan Penanggulangan Bencana Daerah Kabupaten Batang"
    ag[1]["handles"] = ["road"]
    del ag[2]
    ag.append({"code": "DAMKAR", "name": "Dinas Pemadam Kebakaran"})
    gs = files["gauges.json"]["gauges"]
    kept = gs[0]["sensor_id"]
    changed = gs[1]["sensor_id"]
    gs[1]["thresholds"] = {"siaga": 210, "awas": 290}
    gs[1]["offline_after_s"] = 1800
    gs.append({"sensor_id": "BTG-NEW", "name": "Kali Baru", "metric": "water_level", "unit": "cm",
               "thresholds": {"awas": 100}})
    v2 = write(tmp_path / "v2", files)

    cp = cli(db, "tenant", "import", "batang", v2)
    assert cp.returncode == 0, cp.stderr
    assert imported(cp, "batang", files), cp.stdout
    assert "2 gauge(s) new or changed" in cp.stdout, cp.stdout
    want_d, want_a, want_g = expected(files)
    assert stored(db, "batang", gauge_ids={g[0] for g in want_g}) == (want_d, want_a, want_g)
    assert db.scalar("SELECT count(*) FROM sensors WHERE tenant = 'batang'") == len(want_g) + 1
    after = {r[0]: r for r in db.rows("SELECT sensor_id, updated_at FROM sensors WHERE tenant = 'batang'")}
    assert after[kept] == v1_sensors[kept] and after["BTG-OTHER"] == v1_sensors["BTG-OTHER"]
    assert after[changed][1] > v1_sensors[changed][1]
    assert db.rows("SELECT version FROM reference_sets WHERE tenant = 'batang'") == [(2,)]
    assert db.scalar("SELECT count(*) FROM audit WHERE tenant = 'batang'") == 2

    before = snapshot(db)
    # The older version is refused, and the same version with other content.
    cp = cli(db, "tenant", "import", "batang", TENANTS_DIR / "batang")
    assert (cp.returncode, cp.stdout) == (2, ""), cp
    assert cp.stderr == (f"kendali: {TENANTS_DIR / 'batang' / 'districts.json'}: version: 1 is older "
                         "than version 2 of batang's reference data, imported already\n")
    for fname, change, field in (
            ("districts.json", lambda f: f["districts.json"]["districts"][0].update(name="Lain"),
             "districts"),
            ("agencies.json", lambda f: f["agencies.json"]["agencies"].pop(), "agencies"),
            ("gauges.json", lambda f: f["gauges.json"]["gauges"].pop(), "gauges"),
            ("agencies.json", lambda f: f["agencies.json"]["source"].update(version="2"), "source")):
        other = json.loads(json.dumps(files))
        change(other)
        d = write(tmp_path / f"same-{fname}-{field}", other)
        cp = cli(db, "tenant", "import", "batang", d)
        assert (cp.returncode, cp.stdout) == (2, ""), cp
        assert cp.stderr.startswith(f"kendali: {d / fname}: {field}: differs from version 2 of batang's "
                                    "reference data, imported already: give the changed set a "
                                    "higher version"), cp.stderr
    assert snapshot(db) == before


def test_a_set_without_gauges_leaves_the_registry(db, tmp_path):
    create(db, "batang")
    kendali_cli(db, "tenant", "import", "batang", TENANTS_DIR / "batang")
    files = bump(load(TENANTS_DIR / "batang"), 2)
    del files["gauges.json"]
    cp = cli(db, "tenant", "import", "batang", write(tmp_path / "v2", files))
    assert cp.returncode == 0 and imported(cp, "batang", files), cp
    assert "gauge(s)" not in cp.stdout
    assert db.scalar("SELECT count(*) FROM sensors WHERE tenant = 'batang'") == 2


# --------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------


def entry(kind, i):
    return lambda f: f[kind + ".json"][kind][i]


def setter(get, **values):
    def change(files):
        get(files).update(values)
    return change


def top(fname, **values):
    return setter(lambda f: f[fname], **values)


def remove(get, key):
    def change(files):
        del get(files)[key]
    return change


def append(kind, value):
    return lambda f: f[kind + ".json"][kind].append(value)


def replace_list(kind, value):
    return lambda f: f[kind + ".json"].update({kind: value})


D0, D3, A0, A1, G0 = entry("districts", 0), entry("districts", 3), entry("agencies", 0), \
    entry("agencies", 1), entry("gauges", 0)
SYNTAX = "not valid JSON at line"

# (id, change of the files, raw files written as is, the file named, what
# stderr says after it)
BAD = [
    ("bad-json", None, {"districts.json": '{"format": "kendali-reference/1",\n "version": 2,'},
     "districts.json", SYNTAX),
    ("duplicate-member", None, {"agencies.json": '{"format": "kendali-reference/1", "format": "x"}'},
     "agencies.json", "duplicate object key"),
    ("not-utf8", None, {"gauges.json": b'{"format": "kendali-reference/1", "note": "\xff"}'},
     "gauges.json", SYNTAX),
    ("not-an-object", None, {"agencies.json": "[]"}, "agencies.json", ": must be a JSON object; it is an array"),
    ("too-large", None, {"districts.json": "{" + " " * (1024 * 1024) + "}"}, "districts.json",
     "over the limit of 1048576 bytes"),
    ("format-missing", remove(lambda f: f["districts.json"], "format"), None, "districts.json",
     ": format: missing"),
    ("format-2", top("gauges.json", format="kendali-reference/2"), None, "gauges.json",
     ': format: "kendali-reference/2" is not a version of the format this kendali reads'),
    ("format-other", top("agencies.json", format="geojson"), None, "agencies.json",
     ': format: must be "kendali-reference/1"'),
    ("unknown-member", top("districts.json", colour="red"), None, "districts.json",
     ': colour: "colour" is not a member of the file'),
    ("version-text", top("districts.json", version="2"), None, "districts.json",
     ": version: must be a whole number from 1 to 2147483647"),
    ("version-zero", top("districts.json", version=0), None, "districts.json", ": version: must be"),
    ("version-mixed", top("agencies.json", version=3), None, "agencies.json",
     ": version: 3, but districts.json is version 2"),
    ("region-form", top("districts.json", region={"code": "33.2", "name": "Kabupaten Batang"}), None,
     "districts.json", ": region.code: must be the Kemendagri code of a regency or city"),
    ("region-mixed", top("gauges.json", region={"code": "33.18", "name": "Kabupaten Pati"}), None,
     "gauges.json", ": region: 33.18 Kabupaten Pati is not the region of districts.json"),
    ("region-missing", remove(lambda f: f["agencies.json"], "region"), None, "agencies.json",
     ": region: missing"),
    ("source-missing", remove(lambda f: f["districts.json"], "source"), None, "districts.json",
     ": source: missing"),
    ("source-name-long", setter(lambda f: f["districts.json"]["source"], name="n" * 201), None,
     "districts.json", ": source.name: must be a string of 1 to 200 bytes; got 201 bytes"),
    ("note-long", top("agencies.json", note="n" * 2001), None, "agencies.json",
     ": note: must be a string of 1 to 2000 bytes; got 2001 bytes"),
    ("districts-missing", remove(lambda f: f["districts.json"], "districts"), None, "districts.json",
     ": districts: missing"),
    ("districts-empty", replace_list("districts", []), None, "districts.json",
     ": districts: must be an array of 1 to 500 entries; got 0"),
    ("districts-too-many", replace_list("districts", [{"code": "33.25.%02d" % (i % 100), "name": str(i)}
                                                      for i in range(501)]), None,
     "districts.json", ": districts: must be an array of 1 to 500 entries; got 501"),
    ("district-not-object", append("districts", "33.25.20"), None, "districts.json",
     ": districts[15]: must be an object; got \"33.25.20\""),
    ("district-code-missing", remove(D3, "code"), None, "districts.json",
     ": districts[3].code: missing; give a string of 1 to 8 bytes"),
    ("district-code-form", setter(D3, code="33.25.1"), None, "districts.json",
     ": districts[3].code: must be a kecamatan's Kemendagri code, like \"33.25.01\""),
    ("district-code-number", setter(D3, code=332504), None, "districts.json",
     ": districts[3].code: must be a string of 1 to 8 bytes; got 332504"),
    ("district-other-regency", setter(D3, code="33.18.04"), None, "districts.json",
     ": districts[3].code: 33.18.04 is not a kecamatan of region 33.25 (Kabupaten Batang)"),
    ("district-code-twice", setter(D3, code="33.25.01"), None, "districts.json",
     ': districts[3].code: "33.25.01" is already the code of districts[0]'),
    ("district-name-twice", setter(D3, name="Wonotunggal"), None, "districts.json",
     ': districts[3].name: "Wonotunggal" is already the name of districts[0]'),
    ("district-name-empty", setter(D0, name=""), None, "districts.json",
     ": districts[0].name: must be a string of 1 to 64 bytes; got 0 bytes"),
    ("district-name-long", setter(D0, name="é" * 33), None, "districts.json",
     ": districts[0].name: must be a string of 1 to 64 bytes; got 66 bytes"),
    ("district-name-control", setter(D0, name="Bandar\nBaru"), None, "districts.json",
     ": districts[0].name: contains the control character U+000A"),
    ("district-unknown-member", setter(D3, kode="x"), None, "districts.json",
     ': districts[3].kode: "kode" is not a member of districts[3], which takes code, name and location'),
    ("member-name-control", setter(D3, **{"kode\nbaru": 1}), None, "districts.json",
     ': districts[3].kode?baru: "kode\\nbaru" is not a member of districts[3]'),
    ("district-lat", setter(D0, location={"lat": 91, "lon": 110}), None, "districts.json",
     ": districts[0].location.lat: must be a number from -90 to 90; got 91"),
    ("district-location-member", setter(D0, location={"lat": -7, "lon": 110, "alt": 3}), None,
     "districts.json", ": districts[0].location.alt:"),
    ("agencies-empty", replace_list("agencies", []), None, "agencies.json",
     ": agencies: must be an array of 1 to 500 entries; got 0"),
    ("agency-code-chars", setter(A1, code="DINAS PU"), None, "agencies.json",
     ": agencies[1].code: must be 1 to 32 letters, digits"),
    ("agency-code-long", setter(A1, code="D" * 33), None, "agencies.json",
     ": agencies[1].code: must be a string of 1 to 32 bytes; got 33 bytes"),
    ("agency-code-case", setter(A1, code="bpbd"), None, "agencies.json",
     ': agencies[1].code: "BPBD" is already the code (in any case) of agencies[0]'),
    ("agency-name-missing", remove(A0, "name"), None, "agencies.json", ": agencies[0].name: missing"),
    ("agency-name-long", setter(A0, name="x" * 201), None, "agencies.json",
     ": agencies[0].name: must be a string of 1 to 200 bytes; got 201 bytes"),
    ("agency-handles-unknown", setter(A0, handles=["fire"]), None, "agencies.json",
     ': agencies[0].handles[0]: must be a report category (flood, road'),
    ("agency-handles-twice", setter(A1, handles=["road", "road"]), None, "agencies.json",
     ': agencies[1].handles[1]: "road" is already the category of agencies[1].handles[0]'),
    ("agency-handles-type", setter(A1, handles="road"), None, "agencies.json",
     ': agencies[1].handles: must be an array of at most 10 report categories'),
    ("gauge-thresholds-order", setter(G0, thresholds={"siaga": 200, "awas": 100}), None, "gauges.json",
     ": gauges[0].thresholds.awas: thresholds.awas (100) must be greater than thresholds.siaga (200)"),
    ("gauge-thresholds-none", setter(G0, thresholds={}), None, "gauges.json",
     ": gauges[0].thresholds: thresholds must give at least one of waspada, siaga and awas"),
    ("gauge-thresholds-level", setter(G0, thresholds={"bahaya": 1}), None, "gauges.json",
     ': gauges[0].thresholds.bahaya: thresholds has the unknown level "bahaya"'),
    ("gauge-metric-missing", remove(G0, "metric"), None, "gauges.json",
     ": gauges[0].metric: metric is missing"),
    ("gauge-name-long", setter(G0, name="x" * 201), None, "gauges.json",
     ": gauges[0].name: name is 201 bytes long, over the limit of 200 bytes"),
    ("gauge-unit-long", setter(G0, unit="u" * 33), None, "gauges.json",
     ": gauges[0].unit: unit is 33 bytes long, over the limit of 32 bytes"),
    ("gauge-offline", setter(G0, offline_after_s=30), None, "gauges.json",
     ": gauges[0].offline_after_s: offline_after_s must be a whole number of seconds from 60 to 604800"),
    ("gauge-id-missing", remove(G0, "sensor_id"), None, "gauges.json", ": gauges[0].sensor_id: missing"),
    ("gauge-id-chars", setter(G0, sensor_id="BTG SAMBONG"), None, "gauges.json",
     ": gauges[0].sensor_id: must be 1 to 64 letters, digits, '.', '_', ':' or '-'"),
    ("gauge-id-twice", append("gauges", {"sensor_id": "BTG-SAMBONG-BATANG", "name": "x",
                                         "metric": "water_level", "unit": "cm",
                                         "thresholds": {"awas": 1}}), None,
     "gauges.json", ': gauges[2].sensor_id: "BTG-SAMBONG-BATANG" is already the sensor_id of gauges[0]'),
    ("gauge-district", setter(G0, district="Semarang Barat"), None, "gauges.json",
     ': gauges[0].district: "Semarang Barat" is not the name of a district of districts.json'),
    ("gauge-unknown-member", setter(G0, river="Kali Sambong"), None, "gauges.json",
     ': gauges[0].river: "river" is not a member of gauges[0]'),
    ("gauge-location", setter(G0, location={"lat": -6.9, "lon": 200}), None, "gauges.json",
     ": gauges[0].location.lon: location.lon must be a number from -180 to 180; got 200"),
    ("gauge-location-member", setter(G0, location={"lat": -6.9, "lon": 109.7, "z": 1}), None,
     "gauges.json", ': gauges[0].location.z: "z" is not a member of gauges[0].location'),
    ("gauges-too-many", replace_list("gauges", [{"sensor_id": f"G{i}", "name": "g", "metric": "m",
                                                 "unit": "cm", "thresholds": {"awas": 1}}
                                                for i in range(1001)]), None,
     "gauges.json", ": gauges: must be an array of 0 to 1000 entries; got 1001"),
]


@pytest.fixture(scope="module")
def batang(database, kendali_bin):
    """Batang with version 1 of its set imported, for the refusals, which
    leave it as it is."""
    kendali_cli(database, "migrate")
    create(database, "batang")
    kendali_cli(database, "tenant", "import", "batang", TENANTS_DIR / "batang")
    return database


@pytest.mark.parametrize("change, raw, fname, says", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_input_is_refused_and_stores_nothing(batang, tmp_path, change, raw, fname, says):
    """Each defect on top of a valid version 2 (which renames a district, so
    that an import would show): exit code 2, the file, entry and field named,
    nothing stored."""
    db = batang
    files = bump(load(TENANTS_DIR / "batang"), 2)
    files["districts.json"]["districts"][1]["name"] = "Bandar Baru"
    if change:
        change(files)
    d = write(tmp_path / "set", files, raw)
    before = snapshot(db)
    cp = cli(db, "tenant", "import", "batang", d)
    assert (cp.returncode, cp.stdout) == (2, ""), (cp.returncode, cp.stdout, cp.stderr)
    assert cp.stderr.startswith(f"kendali: {d / fname}"), cp.stderr
    assert says in cp.stderr, cp.stderr
    assert cp.stderr.count("\n") == 1, cp.stderr
    assert snapshot(db) == before


def test_bad_directories_are_refused(batang, tmp_path):
    db = batang
    before = snapshot(db)
    files = bump(load(TENANTS_DIR / "batang"), 2)
    cases = []
    d = write(tmp_path / "stray", files, {"gauge.json": "{}"})
    cases.append((d, f"kendali: {d}: gauge.json is not a reference file: a directory holds "
                     "districts.json, agencies.json and gauges.json only\n"))
    d = write(tmp_path / "no-agencies", {k: v for k, v in files.items() if k != "agencies.json"})
    cases.append((d, f"kendali: {d / 'agencies.json'}: cannot open it: No such file or directory\n"))
    d = write(tmp_path / "dir-as-file", {k: v for k, v in files.items() if k != "districts.json"})
    (d / "districts.json").mkdir()
    cases.append((d, f"kendali: {d / 'districts.json'}: not a regular file\n"))
    cases.append((tmp_path / "none", f"kendali: {tmp_path / 'none'}: cannot open the directory: "
                                     "No such file or directory\n"))
    cases.append(("x" * 1100, "kendali: DIR is a directory's path of 1 to 1024 bytes\n"))
    for path, says in cases:
        cp = cli(db, "tenant", "import", "batang", path)
        assert (cp.returncode, cp.stdout, cp.stderr) == (2, "", says)
    assert snapshot(db) == before


def test_a_tenant_keeps_its_region(batang):
    """Pati's set cannot go into Batang, whatever its version."""
    db = batang
    before = snapshot(db)
    cp = cli(db, "tenant", "import", "batang", TENANTS_DIR / "pati")
    assert (cp.returncode, cp.stdout) == (2, "")
    assert cp.stderr == (f"kendali: {TENANTS_DIR / 'pati' / 'districts.json'}: region.code: 33.18 is "
                         "not the region of batang's reference data, 33.25 (Kabupaten Batang), and a "
                         "tenant's region does not change\n")
    assert snapshot(db) == before


def test_unknown_tenant_province_and_usage_are_refused(db):
    kendali_cli(db, "tenant", "create", "jateng", "--name", "Provinsi Jawa Tengah", "--head", "Gubernur",
                "--province", "--members", "semarang")
    before = snapshot(db)
    cp = cli(db, "tenant", "import", "batang", TENANTS_DIR / "batang")
    assert (cp.returncode, cp.stdout) == (2, "")
    assert "no tenant batang" in cp.stderr and "`kendali tenant list` shows them" in cp.stderr, cp.stderr
    cp = cli(db, "tenant", "import", "Batang!", TENANTS_DIR / "batang")
    assert cp.returncode == 2 and "no tenant" in cp.stderr, cp.stderr
    cp = cli(db, "tenant", "import", "jateng", TENANTS_DIR / "semarang")
    assert (cp.returncode, cp.stdout) == (2, "")
    assert cp.stderr.startswith("kendali: jateng is a province: it takes no reference data"), cp.stderr
    for args in (["import", "semarang"], ["import"],
                 ["import", "semarang", TENANTS_DIR / "semarang", "extra"]):
        cp = cli(db, "tenant", *args)
        assert cp.returncode == 2 and "kendali tenant import ID DIR" in cp.stderr, (args, cp.stderr)
    assert snapshot(db) == before


def test_a_copy_in_another_place_imports_the_same(db, tmp_path):
    """Nothing depends on the directory's name or path."""
    shutil.copytree(TENANTS_DIR / "semarang", tmp_path / "elsewhere")
    cp = cli(db, "tenant", "import", "semarang", tmp_path / "elsewhere")
    assert cp.returncode == 0, cp.stderr
    assert stored(db, "semarang") == expected(load(TENANTS_DIR / "semarang"))
