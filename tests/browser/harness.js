'use strict';
/*
 * Harness of the browser tests: a private PostgreSQL cluster, the kendali
 * server (migrated, with a key, gauges and the data set of dataset.js), an
 * HTTP client for its API, headless Chromium driven by playwright-core, and
 * the helpers the tests use to read the pages.
 *
 * Nothing here knows about a particular machine: paths come from __file__,
 * the environment (KENDALI_BIN, KENDALI_STATIC, TMPDIR) and Debian's fixed locations
 * (/usr/lib/postgresql/<version>/bin, /usr/bin/chromium).
 *
 *   const h = new Harness();
 *   await h.start();      // cluster, database, server, data, browser
 *   ...
 *   await h.stop();       // stops whatever was started, also after a failure
 *
 * By default the server runs with --anonymous-loopback, so that the pages open
 * without logging in (the browser is on the same machine). new Harness({
 * anonymous: false, name: 'login' }) starts it without: every read then needs a
 * credential, and the harness reads the API with a screen token of its own
 * (role wall). `name` keeps each harness's logs apart under browser-logs/.
 * `dataset: false` leaves the database without the data set of dataset.js,
 * for tests that post events of their own (h.post) and write rows directly
 * (h.sql).
 *
 * KENDALI_BROWSER_KEEP=1 keeps the temporary directory (cluster, logs).
 */

const assert = require('node:assert/strict');
const cp = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const dataset = require('./dataset');

const REPO = path.resolve(__dirname, '..', '..');
// The pages: <repo>/web-static, or KENDALI_STATIC (to check the tests
// themselves against a deliberately broken copy).
const STATIC_DIR = path.resolve(process.env.KENDALI_STATIC || path.join(REPO, 'web-static'));
const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');
const SCREENSHOTS = path.join(ARTIFACTS, 'screenshots');
const LOGS = path.join(ARTIFACTS, 'browser-logs');

const CHROMIUM = '/usr/bin/chromium';
// The machine has no internet: without the background-networking switches
// Chromium keeps trying (and failing) to reach its services.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const PG_USER = 'kendali-pg'; // the account PostgreSQL runs as when we are root
const PG_PORT = 5432; // only names the socket file: the cluster has no TCP listener

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function log(...args) {
  console.log('harness:', ...args);
}

function kendaliBin() {
  return path.resolve(process.env.KENDALI_BIN || path.join(REPO, 'build', 'server', 'kendali'));
}

/** The process environment without libpq variables, plus extra. */
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return Object.assign(env, extra || {});
}

/** Run a program to completion; throws with its output when it fails. */
function run(cmd, args, opts) {
  const res = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts });
  if (res.error) throw new Error(`${cmd} ${args.join(' ')}: ${res.error.message}`);
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.status ?? res.signal}\n` +
      `stdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
  }
  return res;
}

/** A TCP port of 127.0.0.1 nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tail(file, lines = 60) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no file)';
  }
}

/**
 * One HTTP request on a fresh connection (no keep-alive, so a restarted
 * server never meets a stale socket).  Resolves to {status, headers, text, json}.
 */
function request(method, url, { headers, body, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const hdrs = Object.assign({}, headers || {});
    if (data) {
      hdrs['Content-Type'] = hdrs['Content-Type'] || 'application/json';
      hdrs['Content-Length'] = data.length;
    }
    const req = http.request(url, { method, headers: hdrs, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/** bin directory of the highest PostgreSQL under /usr/lib/postgresql (never PATH). */
function pgBinDir() {
  const root = '/usr/lib/postgresql';
  let versions = [];
  try {
    versions = fs.readdirSync(root);
  } catch {
    /* none */
  }
  const usable = versions
    .filter((v) => /^\d+(\.\d+)*$/.test(v))
    .filter((v) => ['initdb', 'pg_ctl', 'createdb'].every((p) => fs.existsSync(path.join(root, v, 'bin', p))))
    .sort((a, b) => {
      const pa = a.split('.').map(Number);
      const pb = b.split('.').map(Number);
      for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
        if ((pa[i] || 0) !== (pb[i] || 0)) return (pb[i] || 0) - (pa[i] || 0);
      }
      return 0;
    });
  if (!usable.length) {
    throw new Error('no PostgreSQL server under /usr/lib/postgresql/*/bin (install the postgresql package)');
  }
  return path.join(root, usable[0], 'bin');
}

function ensurePgUser() {
  const exists = () => cp.spawnSync('id', [PG_USER], { stdio: 'ignore' }).status === 0;
  if (exists()) return;
  try {
    run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER]);
  } catch (e) {
    if (!exists()) throw e; // (another test file running at the same time made it first)
  }
}

class PgCluster {
  constructor(base) {
    this.bindir = pgBinDir();
    this.base = base;
    this.data = path.join(base, 'data');
    this.sock = path.join(base, 'sock');
    this.log = path.join(base, 'postgres.log');
    this.asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    this.running = false;
  }

  cmd(prog, args) {
    const exe = path.join(this.bindir, prog);
    return this.asRoot ? ['runuser', ['-u', PG_USER, '--', exe, ...args]] : [exe, args];
  }

  pg(prog, args) {
    const [c, a] = this.cmd(prog, args);
    try {
      return run(c, a, { env: cleanEnv({ LC_ALL: 'C.UTF-8' }) });
    } catch (e) {
      e.message += `\n--- postgres.log ---\n${tail(this.log, 40)}`;
      throw e;
    }
  }

  init() {
    fs.mkdirSync(this.sock, { recursive: true });
    fs.chmodSync(this.base, 0o755);
    fs.chmodSync(this.sock, 0o755);
    if (this.asRoot) {
      ensurePgUser();
      const uid = Number(run('id', ['-u', PG_USER]).stdout.trim());
      const gid = Number(run('id', ['-g', PG_USER]).stdout.trim());
      fs.chownSync(this.base, uid, gid);
      fs.chownSync(this.sock, uid, gid);
    }
    this.pg('initdb', ['-D', this.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8',
      '--locale=C.UTF-8']);
    fs.appendFileSync(path.join(this.data, 'postgresql.conf'), [
      '',
      '# browser tests',
      "listen_addresses = ''",
      `unix_socket_directories = '${this.sock}'`,
      `port = ${PG_PORT}`,
      "timezone = 'UTC'",
      'fsync = off',
      'log_min_messages = warning',
      '',
    ].join('\n'));
  }

  start() {
    this.pg('pg_ctl', ['-D', this.data, '-l', this.log, '-w', '-t', '60', 'start']);
    this.running = true;
  }

  stop(mode = 'fast') {
    if (!this.running) return;
    this.running = false;
    this.pg('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** Last resort, synchronous (process exit): stop at once, ignore errors. */
  stopNow() {
    if (!this.running) return;
    this.running = false;
    const [c, a] = this.cmd('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', '-t', '20', 'stop']);
    cp.spawnSync(c, a, { stdio: 'ignore', env: cleanEnv(), timeout: 30000 });
  }

  createDatabase(name) {
    run(path.join(this.bindir, 'createdb'), ['-h', this.sock, '-p', String(PG_PORT), '-U', 'postgres', name],
      { env: cleanEnv() });
    return `postgresql://postgres@/${name}?host=${encodeURIComponent(this.sock)}&port=${PG_PORT}`;
  }
}

// ---------------------------------------------------------------------------
// The kendali server
// ---------------------------------------------------------------------------

class Server {
  constructor({ bin, databaseUrl, port, logDir, args }) {
    this.bin = bin;
    this.databaseUrl = databaseUrl;
    this.port = port;
    this.args = args || [];
    this.stderrPath = path.join(logDir, 'kendali.stderr');
    this.stdoutPath = path.join(logDir, 'kendali.stdout');
    this.proc = null;
    this.starts = 0;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(readyTimeoutMs = 15000) {
    this.starts++;
    fs.appendFileSync(this.stderrPath, `\n===== start #${this.starts} at ${new Date().toISOString()} =====\n`);
    const out = fs.openSync(this.stdoutPath, 'a');
    const err = fs.openSync(this.stderrPath, 'a');
    try {
      this.proc = cp.spawn(this.bin,
        ['serve', '--listen', `127.0.0.1:${this.port}`, '--static', STATIC_DIR, ...this.args],
        { stdio: ['ignore', out, err], env: cleanEnv({ DATABASE_URL: this.databaseUrl }) });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    const proc = this.proc;
    proc.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    proc.once('error', () => {});
    await this.waitReady(readyTimeoutMs);
  }

  running() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async waitReady(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.running()) {
        throw new Error(`kendali serve exited (${this.proc.exitCode ?? this.proc.signalCode}) before it was ready; ` +
          `stderr:\n${tail(this.stderrPath)}`);
      }
      try {
        const res = await request('GET', `${this.base}/readyz`, { timeoutMs: 2000 });
        if (res.status === 200) return;
        last = `${res.status} ${res.text}`;
      } catch (e) {
        last = e.message;
      }
      await sleep(50);
    }
    throw new Error(`kendali serve not ready within ${timeoutMs} ms (last /readyz: ${last}); ` +
      `stderr:\n${tail(this.stderrPath)}`);
  }

  /** SIGTERM and wait; SIGKILL after timeoutMs.  Returns {code, signal}. */
  async stop(timeoutMs = 10000) {
    const proc = this.proc;
    if (!proc) return null;
    this.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exited;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const res = await proc.exited;
    clearTimeout(timer);
    return res;
  }

  killNow() {
    if (this.proc && this.running()) this.proc.kill('SIGKILL');
    this.proc = null;
  }
}

/** `kendali ARGS` against the database; input goes to its stdin. */
function kendali(databaseUrl, args, input) {
  const bin = kendaliBin();
  const opts = { env: cleanEnv({ DATABASE_URL: databaseUrl }), timeout: 60000 };
  if (input !== undefined) opts.input = input;
  return run(bin, args, opts);
}

// ---------------------------------------------------------------------------
// The whole set-up
// ---------------------------------------------------------------------------

// Everything started, for the synchronous clean-up at process exit (a test
// runner killed, an uncaught error): the after hook is the normal path.
const LIVE = new Set();
function exitCleanup() {
  for (const h of LIVE) h.stopNow();
}
process.once('exit', exitCleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    exitCleanup();
    process.exit(128 + os.constants.signals[sig]);
  });
}

class Harness {
  constructor({ anonymous = true, name = 'pages', dataset: withDataset = true } = {}) {
    this.anonymous = anonymous;
    this.withDataset = withDataset;
    this.name = name;
    this.readToken = null;
    this.tmp = null;
    this.pg = null;
    this.server = null;
    this.browser = null;
    this.key = null;
    this.databaseUrl = null;
    this.expect = null;
    this.consoleLog = [];
    this.eventNo = 0;
  }

  get base() {
    return this.server.base;
  }

  async start() {
    const t0 = Date.now();
    const bin = kendaliBin();
    if (!fs.existsSync(bin)) {
      throw new Error(`the server binary ${bin} does not exist: build it (ninja -C build) or set KENDALI_BIN`);
    }
    LIVE.add(this);
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kendali-browser-'));
    fs.chmodSync(this.tmp, 0o755);

    // PostgreSQL, a database, the schema and a key.
    this.pg = new PgCluster(path.join(this.tmp, 'pg'));
    this.pg.init();
    this.pg.start();
    this.databaseUrl = this.pg.createDatabase('kendali');
    kendali(this.databaseUrl, ['migrate']);
    const out = kendali(this.databaseUrl,
      ['key', 'create', '--poster', 'browser-tests', '--types', 'call,report,sensor']).stdout;
    this.key = out.trim().split('\n').pop().trim();
    assert.match(this.key, /^kd_[0-9a-f]{12}_[0-9a-f]{48}$/, 'the last line of `kendali key create` is not a key');
    // Without anonymous access the harness reads the API as a screen of its own.
    if (!this.anonymous) this.readToken = this.createToken(`${this.name}-harness`, 'wall').token;
    log(`PostgreSQL, database, migration and key in ${Date.now() - t0} ms`);

    // The server.
    const logDir = path.join(this.tmp, 'logs');
    fs.mkdirSync(logDir);
    this.server = new Server({
      bin,
      databaseUrl: this.databaseUrl,
      port: await freePort(),
      logDir,
      args: this.anonymous ? ['--anonymous-loopback'] : [],
    });
    await this.server.start();
    log(`server ready on port ${this.server.port} after ${Date.now() - t0} ms`);

    // The data set (unless the tests bring their own events).
    if (this.withDataset) {
      await this.load(dataset.generate(REPO, Date.now()));
      log(`data set loaded after ${Date.now() - t0} ms`);
    }

    // The browser.
    const { chromium } = require('playwright-core');
    this.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    log(`Chromium ${this.browser.version()} up after ${Date.now() - t0} ms`);
  }

  async load(set) {
    for (const s of set.sensors) {
      const res = await request('PUT', `${this.base}/api/v1/sensors/${encodeURIComponent(s.id)}`,
        { headers: this.auth(), body: s.body });
      assert.ok(res.status === 201 || res.status === 200, `PUT sensor ${s.id}: ${res.status} ${res.text}`);
    }
    for (let i = 0; i < set.events.length; i += 1000) {
      const batch = set.events.slice(i, i + 1000);
      await this.post(batch);
    }
    this.expect = set.expect;

    // Wait until the server shows the whole set, then until it is quiet.
    const e = set.expect;
    const want = (k) =>
      k['reports.open'] === e.reportsOpen &&
      k['reports.overdue'] === e.reportsOverdue &&
      k['sensors.total'] === e.sensorsTotal &&
      k['sensors.offline'] === e.sensorsOffline &&
      Array.isArray(k['alerts.active']) && k['alerts.active'].length === e.alertsActive;
    const deadline = Date.now() + 20000;
    let k;
    for (;;) {
      k = (await this.kpis()).kpis;
      if (want(k)) break;
      if (Date.now() > deadline) {
        throw new Error('the server does not show the data set within 20 s: ' +
          JSON.stringify({ expected: e, got: pick(k, ['reports.open', 'reports.overdue', 'sensors.total',
            'sensors.offline', 'alerts.active']) }, null, 1));
      }
      await sleep(200);
    }
    assert.deepEqual(k['sensors.by_level'], e.byLevel, 'sensors.by_level of the data set');
    assert.equal(k['reports.sla_met_30d'], e.slaMet30d, 'reports.sla_met_30d of the data set');
    let prev = JSON.stringify(k);
    for (let i = 0; i < 20; i++) {
      await sleep(300);
      const cur = JSON.stringify((await this.kpis()).kpis);
      if (cur === prev) break;
      prev = cur;
    }
  }

  auth() {
    return { Authorization: `Bearer ${this.key}` };
  }

  /** Headers for reading the API: none with anonymous access, else the harness's screen token. */
  readAuth() {
    return this.readToken ? { Authorization: `Bearer ${this.readToken}` } : {};
  }

  /** `kendali ARGS` against the test database (input: its stdin). */
  cli(args, input) {
    return kendali(this.databaseUrl, args, input);
  }

  /**
   * Runs SQL in the test database with psql (stops at the first error) and
   * returns its output, unaligned and tuples only.  vars become psql
   * variables, to be used quoted as :'name' in the SQL.
   */
  sql(text, vars = {}) {
    const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.pg.sock, '-p', String(PG_PORT),
      '-U', 'postgres', '-d', 'kendali'];
    for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
    return run(path.join(this.pg.bindir, 'psql'), args, { input: text, env: cleanEnv() }).stdout;
  }

  /** kendali token create: {token, id, stdout}; the token is the last line. */
  createToken(name, role) {
    const out = this.cli(['token', 'create', '--name', name, '--role', role]).stdout;
    const token = out.trim().split('\n').pop().trim();
    assert.match(token, /^st_\S+$/, `the last line of \`kendali token create\` is not a screen token:\n${out}`);
    const m = /^st_([0-9a-f]+)_/.exec(token);
    return { token, id: m ? m[1] : null, stdout: out };
  }

  /** kendali user add NAME --role ROLE, the password on stdin (one line). */
  addUser(name, role, password) {
    return this.cli(['user', 'add', name, '--role', role], password + '\n');
  }

  /** POST events; asserts 202 with every event accepted; returns the response. */
  async post(events) {
    const res = await request('POST', `${this.base}/api/v1/events`, { headers: this.auth(), body: events });
    assert.equal(res.status, 202, `POST /api/v1/events: ${res.status} ${res.text}`);
    assert.equal(res.json && res.json.accepted, events.length, `POST /api/v1/events: ${res.text}`);
    return res;
  }

  /** A new ticket received a second ago (one event). */
  newTicketEvent() {
    this.eventNo++;
    const ticket = `BT-LIVE-${process.pid}-${this.eventNo}`;
    return {
      id: `${ticket}/1`,
      type: 'report',
      occurred_at: dataset.wib(Date.now() - 1000),
      district: 'Pedurungan',
      report: { ticket, status: 'received', category: 'road', title: 'Jalan berlubang di Jl. Majapahit' },
    };
  }

  /** GET /api/v1/kpis -> {at, seq, kpis}. */
  async kpis() {
    const res = await request('GET', `${this.base}/api/v1/kpis`, { headers: this.readAuth() });
    assert.equal(res.status, 200, `GET /api/v1/kpis: ${res.status} ${res.text}`);
    assert.ok(res.json && res.json.kpis && typeof res.json.kpis === 'object', 'GET /api/v1/kpis: no kpis object');
    return res.json;
  }

  /** A browser context (its own cookies) of the given size. */
  newContext({ width, height }) {
    return this.browser.newContext({
      viewport: { width, height },
      deviceScaleFactor: 1,
      // The pages must format in id-ID / en-US and show WIB themselves,
      // whatever the browser's own locale and zone.
      locale: 'en-GB',
      timezoneId: 'UTC',
    });
  }

  /**
   * A page in its own browser context (or in opts.context, sharing its cookies;
   * or opts.page, a fresh page of that context), with its problems collected;
   * opts.allow: regular expressions of problems that are expected here (see
   * watchPage).
   */
  async open(pathAndQuery, viewport, label, opts = {}) {
    const context = opts.context || await this.newContext(viewport);
    const page = opts.page || await context.newPage();
    const watch = watchPage(page, label, this.consoleLog, opts.allow);
    await page.goto(this.base + pathAndQuery, { waitUntil: 'load', timeout: 15000 });
    return { context, page, watch, label };
  }

  /** fn(page) with a page opened as open() does; its context closed after. */
  async withPage(pathAndQuery, viewport, label, fn) {
    const p = await this.open(pathAndQuery, viewport, label);
    try {
      return await fn(p);
    } finally {
      await p.context.close();
    }
  }

  async stop() {
    const errors = [];
    const step = async (what, fn) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${e.message}`);
      }
    };
    if (this.browser) await step('browser', () => this.browser.close());
    this.browser = null;
    if (this.server) {
      await step('server', async () => {
        const res = await this.server.stop();
        if (res && res.code !== 0) errors.push(`kendali serve exited with ${res.code ?? res.signal} on SIGTERM`);
      });
    }
    if (this.pg) await step('PostgreSQL', () => this.pg.stop());
    this.saveLogs();
    if (this.tmp && !process.env.KENDALI_BROWSER_KEEP) {
      await step('temporary directory', () => fs.rmSync(this.tmp, { recursive: true, force: true }));
    } else if (this.tmp) {
      log(`kept ${this.tmp}`);
    }
    LIVE.delete(this);
    if (errors.length) throw new Error(`stopping the harness: ${errors.join('; ')}`);
  }

  /** Synchronous last resort at process exit. */
  stopNow() {
    if (this.server) this.server.killNow();
    if (this.pg) this.pg.stopNow();
    if (this.tmp && !process.env.KENDALI_BROWSER_KEEP) fs.rmSync(this.tmp, { recursive: true, force: true });
    LIVE.delete(this);
  }

  /** Copies the server's and PostgreSQL's logs and the pages' console to tests/artifacts/browser-logs/<name>. */
  saveLogs() {
    try {
      const dir = path.join(LOGS, this.name);
      fs.mkdirSync(dir, { recursive: true });
      if (this.server) {
        for (const f of [this.server.stderrPath, this.server.stdoutPath]) {
          if (fs.existsSync(f)) fs.copyFileSync(f, path.join(dir, path.basename(f)));
        }
      }
      if (this.pg && fs.existsSync(this.pg.log)) fs.copyFileSync(this.pg.log, path.join(dir, 'postgres.log'));
      fs.writeFileSync(path.join(dir, 'console.log'), this.consoleLog.join('\n') + '\n');
    } catch (e) {
      log(`could not save the logs: ${e.message}`);
    }
  }

  serverLogTail(n = 30) {
    return this.server ? tail(this.server.stderrPath, n) : '';
  }
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) out[k] = obj[k];
  return out;
}

// ---------------------------------------------------------------------------
// Reading the pages
// ---------------------------------------------------------------------------

/**
 * Collects what goes wrong on a page: console errors, uncaught exceptions,
 * failed requests and error responses.  Tolerated is whatever matches one of
 * the regular expressions in `allow` (or pushed to w.allow later: an expected
 * 401, say); those are kept in `tolerated`, never dropped.  A console.error of
 * the page's own code and an uncaught exception are always problems.  The
 * data set has no record of yesterday, so every load of the mayor's page also
 * checks that "no record" (GET /api/v1/kpis?at= with kpis null) is no error.
 */
function watchPage(page, label, sink, allow) {
  const w = { problems: [], tolerated: [], messages: [], allow: [...(allow || [])] };
  const expected = (s) => w.allow.some((re) => re.test(s));
  const note = (s) => {
    w.messages.push(s);
    sink.push(`[${label}] ${s}`);
  };
  page.on('console', (msg) => {
    const loc = msg.location() || {};
    const where = loc.url ? ` (${loc.url}${loc.lineNumber ? ':' + (loc.lineNumber + 1) : ''})` : '';
    const s = `console.${msg.type()}: ${msg.text()}${where}`;
    note(s);
    if (msg.type() !== 'error') return;
    if (/^Failed to load resource|^WebSocket connection to /.test(msg.text()) && expected(s)) {
      w.tolerated.push(s);
    } else {
      w.problems.push(s);
    }
  });
  page.on('pageerror', (err) => {
    const s = `uncaught exception: ${err && err.stack ? err.stack : err}`;
    note(s);
    w.problems.push(s);
  });
  page.on('requestfailed', (req) => {
    const s = `request failed: ${req.method()} ${req.url()}: ${(req.failure() || {}).errorText}`;
    note(s);
    if (expected(s)) w.tolerated.push(s);
    else w.problems.push(s);
  });
  page.on('response', (res) => {
    if (res.status() < 400) return;
    const s = `HTTP ${res.status()} for ${res.request().method()} ${res.url()}`;
    note(s);
    if (expected(s)) w.tolerated.push(s);
    else w.problems.push(s);
  });
  page.on('crash', () => {
    note('page crashed');
    w.problems.push('page crashed');
  });
  return w;
}

/** Waits until the STALE overlay is hidden (live data); fails if there is none. */
async function waitFresh(page, timeoutMs = 10000) {
  const has = await page.evaluate(() => !!document.getElementById('stale'));
  assert.ok(has, 'the page has no #stale element');
  try {
    await page.waitForFunction(() => document.getElementById('stale').hidden === true, null,
      { timeout: timeoutMs, polling: 50 });
  } catch (e) {
    throw new Error(`#stale still shown after ${timeoutMs} ms: the page did not get live data`);
  }
}

/** Whether the STALE overlay is shown: no hidden attribute, displayed, with a box. */
function staleShown(page) {
  return page.evaluate(() => {
    const s = document.getElementById('stale');
    if (!s || s.hidden) return false;
    const cs = getComputedStyle(s);
    return cs.display !== 'none' && cs.visibility !== 'hidden' && s.getClientRects().length > 0;
  });
}

/** Every [data-kpi] element: its attributes and text. */
function readKpiElements(page) {
  return page.$$eval('[data-kpi]', (els) => els.map((el) => ({
    kpi: el.getAttribute('data-kpi'),
    key: el.getAttribute('data-key'),
    field: el.getAttribute('data-field'),
    derived: el.getAttribute('data-derived'),
    value: el.getAttribute('data-value'),
    text: el.textContent.trim(),
  })));
}

function describe(el) {
  let s = `[data-kpi="${el.kpi}"]`;
  if (el.key != null) s += `[data-key="${el.key}"]`;
  if (el.field != null) s += `[data-field="${el.field}"]`;
  if (el.derived != null) s += `[data-derived="${el.derived}"]`;
  return s;
}

/**
 * The value an element should hold according to the API's kpis, or
 * {error} when the element names something the API does not have.
 *   plain:          kpis[kpi]
 *   map entry:      kpis[kpi][key] (a key missing from a count map is 0)
 *   list entry:     the item whose agency or sensor_id is key, its field
 *   derived:        data-derived="count": the length of the list;
 *                   data-derived="sum": the sum of the map entries named by
 *                   data-key ("siaga+awas"); any other kind (a comparison
 *                   with yesterday, ...) is skipped
 */
function expectedValue(el, kpis) {
  if (!Object.prototype.hasOwnProperty.call(kpis, el.kpi)) return { error: `the API has no KPI "${el.kpi}"` };
  const v = kpis[el.kpi];
  if (el.derived === 'count') {
    return Array.isArray(v) ? { value: v.length } : { error: 'data-derived="count" on a KPI that is not a list' };
  }
  if (el.derived === 'sum') {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return { error: 'data-derived="sum" on a KPI that is not a map' };
    if (el.key == null) return { error: 'data-derived="sum" without data-key' };
    return { value: el.key.split('+').reduce((sum, k) => sum + (typeof v[k] === 'number' ? v[k] : 0), 0) };
  }
  if (el.derived != null) return { skip: true };
  if (el.key != null) {
    if (Array.isArray(v)) {
      const item = v.find((x) => x && (x.agency === el.key || x.sensor_id === el.key));
      if (!item) return { error: `no item "${el.key}" in the API's list` };
      if (el.field == null) return { error: 'a list entry without data-field' };
      if (!Object.prototype.hasOwnProperty.call(item, el.field)) {
        return { error: `item "${el.key}" has no field "${el.field}" in the API` };
      }
      return { value: item[el.field] };
    }
    if (v && typeof v === 'object') {
      if (el.field != null) {
        const entry = v[el.key];
        return entry && typeof entry === 'object' && el.field in entry
          ? { value: entry[el.field] } : { error: `no "${el.key}.${el.field}" in the API's map` };
      }
      return { value: Object.prototype.hasOwnProperty.call(v, el.key) ? v[el.key] : 0 };
    }
    return { error: 'data-key on a KPI that is neither a map nor a list' };
  }
  if (el.field != null) {
    if (el.field === 'length' && Array.isArray(v)) return { value: v.length };
    if (v && typeof v === 'object' && el.field in v) return { value: v[el.field] };
    return { error: `data-field="${el.field}" does not apply to this KPI` };
  }
  return { value: v };
}

/** Compares elements with kpis; returns {mismatches, compared, skipped}. */
function diffElements(els, kpis) {
  const mismatches = [];
  const compared = [];
  const skipped = [];
  for (const el of els) {
    const exp = expectedValue(el, kpis);
    if (exp.skip) {
      skipped.push(describe(el));
      continue;
    }
    if (exp.error) {
      mismatches.push(`${describe(el)}: ${exp.error}`);
      continue;
    }
    if (el.value == null) {
      mismatches.push(`${describe(el)}: no data-value (text "${el.text}"), the API has ${JSON.stringify(exp.value)}`);
      continue;
    }
    let shown;
    try {
      shown = JSON.parse(el.value);
    } catch {
      mismatches.push(`${describe(el)}: data-value ${JSON.stringify(el.value)} is not JSON`);
      continue;
    }
    try {
      assert.deepStrictEqual(shown, exp.value === undefined ? null : exp.value);
    } catch {
      mismatches.push(`${describe(el)}: page ${el.value} (text "${el.text}"), API ${JSON.stringify(exp.value)}`);
      continue;
    }
    if (shown === null && el.text !== '—') {
      mismatches.push(`${describe(el)}: null is shown as "${el.text}", not "—"`);
      continue;
    }
    compared.push(el);
  }
  return { mismatches, compared, skipped };
}

/**
 * Reads the page, then GET /api/v1/kpis right after, and compares; retries for
 * up to withinMs (a push may be in flight).  Fails with every mismatch.
 */
async function expectPageMatchesApi(h, page, withinMs = 3000) {
  const deadline = Date.now() + withinMs;
  let tries = 0;
  for (;;) {
    tries++;
    const els = await readKpiElements(page);
    const { kpis } = await h.kpis();
    const d = diffElements(els, kpis);
    if (!d.mismatches.length) return { ...d, kpis, els, tries };
    if (Date.now() >= deadline) {
      assert.fail(`the page differs from GET /api/v1/kpis after ${tries} tries in ${withinMs} ms:\n  ` +
        d.mismatches.join('\n  '));
    }
    await sleep(200);
  }
}

/** Decodes a PNG's width and height. */
function pngSize(file) {
  const b = fs.readFileSync(file);
  assert.ok(b.length > 24 && b.toString('latin1', 1, 4) === 'PNG', `${file} is not a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

module.exports = {
  Harness,
  Server,
  freePort,
  REPO,
  SCREENSHOTS,
  sleep,
  request,
  waitFresh,
  staleShown,
  readKpiElements,
  expectedValue,
  diffElements,
  expectPageMatchesApi,
  describe,
  pngSize,
};
