'use strict';
/*
 * Logging in, screen tokens and roles in headless Chromium (docs/security.md,
 * "Screens and people"; docs/ui.md, "Login page"), against a server of its own
 * started WITHOUT --anonymous-loopback: every page and read needs an identity.
 *
 * The harness reads the API with a screen token of its own; the tests create
 * two people (an operator and the mayor) with `kendali user add` and two wall
 * screens with `kendali token create`, then drive the pages as they would.
 * Texts are checked against the words the page must say (Indonesian unless
 * ?lang=en), never against the pages' code.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { Harness, SCREENSHOTS, sleep, waitFresh, expectPageMatchesApi } = require('./harness');

const h = new Harness({ anonymous: false, name: 'login' });

const OPERATOR = { name: 'budi', role: 'operator', password: 'Sandi-Operator-2026!' };
const MAYOR = { name: 'hendi', role: 'mayor', password: 'Sandi-WaliKota-2026!' };
const WALL_SIZE = { width: 1920, height: 1080 };
const TABLET = { width: 1024, height: 768 };

let wallToken = null;   // dinding-1: stays valid
let spareToken = null;  // dinding-2: revoked by a test
let suiteStart = 0;

const SHOTS = [
  'login-1024x768.png',
  'login-en-1024x768.png',
  'login-error-1024x768.png',
  'login-denied-1024x768.png',
  'login-token-1024x768.png',
  'login-wall-operator-1920x1080.png',
  'login-wall-screen-1920x1080.png',
  'login-mayor-1024x768.png',
];

// What may go wrong on purpose. The watcher keeps these as "tolerated".
const ALLOW_LOGIN_401 = [
  /^HTTP 401 for POST \S+\/api\/v1\/session$/,
  /^console\.error: Failed to load resource: the server responded with a status of 401 .*\/api\/v1\/session\)$/,
];
const ALLOW_LOGIN_429 = [
  /^HTTP 429 for POST \S+\/api\/v1\/session$/,
  /^console\.error: Failed to load resource: the server responded with a status of 429 .*\/api\/v1\/session\)$/,
];
// Once an identity is gone (logged out, revoked): refused reads and websocket
// handshakes, and requests cut short by leaving the page.
const ALLOW_GONE = [
  /^HTTP 401 for /,
  /^console\.error: Failed to load resource: the server responded with a status of 401 /,
  /^console\.error: WebSocket connection to '\S+\/ws' failed/,
  /^request failed: .*net::ERR_ABORTED$/,
];

before(async () => {
  suiteStart = Date.now();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  for (const name of SHOTS) fs.rmSync(path.join(SCREENSHOTS, name), { force: true });
  await h.start();
  for (const u of [OPERATOR, MAYOR]) h.addUser(u.name, u.role, u.password);
  wallToken = h.createToken('dinding-1', 'wall');
  spareToken = h.createToken('dinding-2', 'wall');
  assert.ok(spareToken.id, `no id in the token ${spareToken.token}`);
}, { timeout: 180000 });

after(async () => {
  await h.stop();
}, { timeout: 60000 });

async function shot(page, name) {
  await page.evaluate(() => document.fonts.ready.then(() => true));
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true, animations: 'disabled' });
}

/** The address of the page as {path, params}. */
function where(page) {
  const u = new URL(page.url());
  return { path: u.pathname, params: u.searchParams, search: u.search };
}

function assertNoProblems(p) {
  assert.deepEqual(p.watch.problems, [], `${p.label}:\n  ${p.watch.problems.join('\n  ')}`);
}

async function text(page, sel) {
  return (await page.textContent(sel) || '').replace(/\s+/g, ' ').trim();
}

/** Fills in the login form and submits it (Enter in the password field). */
async function logIn(page, user, password) {
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.press('#password', 'Enter');
}

/** Waits for the login page's status line to say something other than "checking". */
async function loginStatus(page) {
  await page.waitForFunction(() => {
    const el = document.getElementById('login-status');
    return el && el.textContent.trim() && !el.classList.contains('busy');
  }, null, { timeout: 10000, polling: 50 });
  return text(page, '#login-status');
}

/** Lets the page's own requests (favicon, fonts) finish. */
async function settle(page) {
  await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {});
}

const ABORTED = /^request failed: .*net::ERR_ABORTED$/;

/**
 * Before the test itself navigates away: nothing went wrong so far, and from
 * now on a request the navigation cuts short is expected.
 */
async function leaving(p) {
  await settle(p.page);
  assertNoProblems(p);
  if (!p.watch.allow.includes(ABORTED)) p.watch.allow.push(ABORTED);
}

async function withContext(viewport, fn) {
  const context = await h.newContext(viewport);
  try {
    return await fn(context);
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------------------

test('without an identity / and /mayor lead to the login page, in Indonesian and in English',
  { timeout: 60000 }, async () => {
    await withContext(TABLET, async (context) => {
      const p = await h.open('/', TABLET, 'login: no identity', { context });
      let at = where(p.page);
      assert.equal(at.path, '/login', `/ without an identity ended at ${p.page.url()}`);
      assert.equal(at.params.get('next'), '/', 'the login page is told to come back to /');
      assert.equal(await p.page.getAttribute('html', 'lang'), 'id');
      assert.equal(await text(p.page, 'h2'), 'Masuk');
      assert.equal(await text(p.page, '.field-label >> nth=0'), 'Nama pengguna');
      assert.equal(await p.page.getAttribute('#password', 'type'), 'password');
      assert.equal(await p.page.isVisible('#notice'), false, 'no notice on a plain login');
      await shot(p.page, 'login-1024x768.png');
      await leaving(p);

      await p.page.goto(`${h.base}/mayor`);
      at = where(p.page);
      assert.equal(at.path, '/login', `/mayor without an identity ended at ${p.page.url()}`);
      assert.equal(at.params.get('next'), '/mayor');
      await leaving(p);

      await p.page.goto(`${h.base}/login?next=%2F&lang=en`);
      assert.equal(await p.page.getAttribute('html', 'lang'), 'en');
      assert.equal(await text(p.page, 'h2'), 'Log in');
      assert.equal(await text(p.page, '.field-label >> nth=0'), 'User name');
      assert.equal(await text(p.page, '.field-label >> nth=1'), 'Password');
      assert.equal(await text(p.page, '#login-submit'), 'Log in');
      await shot(p.page, 'login-en-1024x768.png');
      await settle(p.page);
      assertNoProblems(p);
    });
  });

test('a wrong password shows the error and stays on the login page', { timeout: 60000 }, async () => {
  await withContext(TABLET, async (context) => {
    const p = await h.open('/', TABLET, 'login: wrong password', { context, allow: ALLOW_LOGIN_401 });
    await logIn(p.page, OPERATOR.name, 'not-the-password');
    assert.equal(await loginStatus(p.page), 'Nama pengguna atau kata sandi salah.');
    assert.ok(await p.page.$eval('#login-status', (el) => el.classList.contains('error')), 'shown as an error');
    const at = where(p.page);
    assert.equal(at.path, '/login');
    assert.equal(at.params.get('next'), '/');
    assert.equal(await p.page.inputValue('#password'), '', 'the wrong password is cleared');
    assert.equal(await p.page.inputValue('#username'), OPERATOR.name, 'the user name is kept');
    await shot(p.page, 'login-error-1024x768.png');
    assert.equal(p.watch.tolerated.length, 2, `the one 401 of the login: ${p.watch.tolerated.join('; ')}`);
    assertNoProblems(p);
  });
});

test('the operator logs in, sees the live wall with their name, acknowledges as themselves, and logs out',
  { timeout: 90000 }, async (t) => {
    await withContext(WALL_SIZE, async (context) => {
      const p = await h.open('/', WALL_SIZE, 'login: operator', { context });
      assert.equal(where(p.page).path, '/login');
      await logIn(p.page, OPERATOR.name, OPERATOR.password);
      await p.page.waitForURL(`${h.base}/`, { timeout: 10000 });
      await waitFresh(p.page);
      const r = await expectPageMatchesApi(h, p.page, 3000);
      t.diagnostic(`${r.compared.length} numbers equal the API`);

      // Who is watching.
      await p.page.waitForSelector('#who:not([hidden])', { timeout: 5000 });
      assert.equal(await text(p.page, '#who-name'), OPERATOR.name);
      assert.equal(await text(p.page, '#who-role'), 'operator');
      assert.equal(await p.page.isVisible('#logout'), true, 'a person can log out');

      // Acknowledging is offered, without asking for a name.
      const alerts = r.kpis['alerts.active'];
      assert.ok(Array.isArray(alerts) && alerts.length > 0, 'the data set has active alerts');
      await p.page.waitForFunction((n) => document.querySelectorAll('#alert-list .a-open').length === n,
        alerts.length, { timeout: 5000 });
      const card = p.page.locator('#alert-list li.alert').first();
      const id = await card.getAttribute('data-alert-id');
      await card.locator('.a-open').click();
      await p.page.waitForFunction(() => document.getElementById('ack-dialog').open, null, { timeout: 3000 });
      assert.equal(await p.page.isVisible('#ack-by'), false, 'no operator name asked of a logged-in person');
      assert.equal(await text(p.page, '#ack-as-name'), OPERATOR.name);
      await p.page.fill('#ack-note', 'Dicek oleh uji peramban');
      await p.page.click('#ack-submit');
      await p.page.waitForSelector('#ack-status.ok', { timeout: 10000 });
      assert.match(await text(p.page, '#ack-status'), new RegExp(`^Dikonfirmasi oleh ${OPERATOR.name} pukul `));
      const acked = (await h.kpis()).kpis['alerts.active'].find((a) => String(a.id) === id);
      assert.ok(acked, `alert ${id} is still active`);
      assert.equal(acked.acked_by, OPERATOR.name, 'the server recorded the session\'s name');
      await p.page.click('#ack-cancel');
      await sleep(300);
      await shot(p.page, 'login-wall-operator-1920x1080.png');
      const fit = await p.page.evaluate(() => {
        const hdr = document.querySelector('header.top').getBoundingClientRect();
        const who = document.getElementById('who').getBoundingClientRect();
        return {
          scrolls: document.documentElement.scrollHeight > window.innerHeight ||
            document.documentElement.scrollWidth > window.innerWidth,
          whoInHeader: who.top >= hdr.top && who.bottom <= hdr.bottom,
        };
      });
      assert.deepEqual(fit, { scrolls: false, whoInHeader: true }, 'the wall with a person\'s name and logout button');
      assertNoProblems(p);

      // Logging out: the login page, and / leads there again.
      p.watch.allow.push(...ALLOW_GONE);
      await p.page.click('#logout');
      await p.page.waitForURL((u) => u.pathname === '/login', { timeout: 10000 });
      await p.page.goto(`${h.base}/`);
      const at = where(p.page);
      assert.equal(at.path, '/login', `/ after logging out ended at ${p.page.url()}`);
      assert.equal(at.params.get('next'), '/');
      const crashes = p.watch.problems.filter((s) => /uncaught|crash/.test(s));
      assert.deepEqual(crashes, []);
      assertNoProblems(p);
      t.diagnostic(`tolerated after logging out: ${p.watch.tolerated.join('; ') || 'nothing'}`);
    });
  });

test('the mayor opening / is told their account may not, and /mayor works for them',
  { timeout: 90000 }, async (t) => {
    await withContext(TABLET, async (context) => {
      const p = await h.open('/', TABLET, 'login: mayor', { context });
      await logIn(p.page, MAYOR.name, MAYOR.password);
      await p.page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('denied') === '1',
        { timeout: 10000 });
      assert.equal(where(p.page).params.get('next'), '/');
      await p.page.waitForSelector('#notice:not([hidden]) .go a', { timeout: 5000 });
      assert.equal(await text(p.page, 'h2'), 'Masuk dengan akun lain');
      const notice = await text(p.page, '#notice');
      assert.match(notice, /tidak boleh membuka halaman itu/, notice);
      assert.ok(notice.includes(MAYOR.name), `the notice names the account: ${notice}`);
      assert.equal(await p.page.isVisible('#login-form'), true, 'another account can log in here');
      await shot(p.page, 'login-denied-1024x768.png');

      const links = await p.page.$$eval('#notice .go a', (as) => as.map((a) => a.getAttribute('href')));
      assert.deepEqual(links, ['/mayor'], 'the page this account may open');
      await leaving(p);
      await p.page.click('#notice .go a');
      await p.page.waitForURL(`${h.base}/mayor`, { timeout: 10000 });
      await waitFresh(p.page);
      const r = await expectPageMatchesApi(h, p.page, 3000);
      t.diagnostic(`${r.compared.length} numbers equal the API`);
      await p.page.waitForSelector('#who:not([hidden])', { timeout: 5000 });
      assert.equal(await text(p.page, '#who-name'), MAYOR.name);
      assert.equal(await text(p.page, '#who-role'), 'wali kota');
      assert.equal(await p.page.isVisible('#logout'), true);
      await settle(p.page);
      await shot(p.page, 'login-mayor-1024x768.png');
      // The mayor's page has no "yesterday" record on a fresh server: that 404 is expected.
      assertNoProblems(p);
    });
  });

test('a wall screen token opens the wall, leaves the address, and offers no acknowledgement',
  { timeout: 90000 }, async (t) => {
    await withContext(WALL_SIZE, async (context) => {
      const p = await h.open(`/?token=${wallToken.token}`, WALL_SIZE, 'login: wall token', { context });
      assert.equal(p.page.url(), `${h.base}/`, 'the token is gone from the address');
      await waitFresh(p.page);
      const r = await expectPageMatchesApi(h, p.page, 3000);
      t.diagnostic(`${r.compared.length} numbers equal the API`);
      await p.page.waitForSelector('#who:not([hidden])', { timeout: 5000 });
      assert.equal(await text(p.page, '#who-name'), 'dinding-1');
      assert.equal(await p.page.isVisible('#logout'), false, 'a screen has no logout button');

      // The alerts are shown, not as buttons; a click opens nothing.
      await p.page.waitForFunction(() => document.querySelectorAll('#alert-list li.alert').length > 0,
        null, { timeout: 5000 });
      assert.equal(await p.page.$$eval('#alert-list .a-open', (els) => els.length), 0, 'no acknowledgement buttons');
      await p.page.click('#alert-list li.alert >> nth=0', { force: true });
      await sleep(300);
      assert.equal(await p.page.evaluate(() => document.getElementById('ack-dialog').open), false,
        'no acknowledgement dialog for a wall');
      await shot(p.page, 'login-wall-screen-1920x1080.png');
      await leaving(p);

      // The mayor's page is not for a wall screen.
      await p.page.goto(`${h.base}/mayor`);
      const at = where(p.page);
      assert.equal(at.path, '/login');
      assert.equal(at.params.get('denied'), '1');
      await p.page.waitForSelector('#notice .go a', { timeout: 5000 });
      assert.match(await text(p.page, '#notice'), /dinding-1/);
      assert.deepEqual(await p.page.$$eval('#notice .go a', (as) => as.map((a) => a.getAttribute('href'))), ['/']);
      assertNoProblems(p);
    });
  });

test('an unknown screen token lands on the login page, which says so', { timeout: 60000 }, async () => {
  await withContext(TABLET, async (context) => {
    const bogus = `st_${'0'.repeat(12)}_${'0'.repeat(48)}`;
    const p = await h.open(`/?token=${bogus}`, TABLET, 'login: bad token', { context });
    const at = where(p.page);
    assert.equal(at.path, '/login', `ended at ${p.page.url()}`);
    assert.equal(at.params.get('error'), 'token');
    assert.ok(!p.page.url().includes(bogus), 'the token is gone from the address');
    await p.page.waitForSelector('#notice:not([hidden])', { timeout: 3000 });
    assert.match(await text(p.page, '#notice'), /^Token layar tidak valid atau sudah dicabut\./);
    await shot(p.page, 'login-token-1024x768.png');
    assertNoProblems(p);
  });
});

test('revoking a screen token sends its open wall to the login page', { timeout: 60000 }, async (t) => {
  await withContext(WALL_SIZE, async (context) => {
    // The wall fetches each gauge's 24 h series once after loading, then every 5 minutes.
    const page = await context.newPage();
    let sparks = 0;
    page.on('requestfinished', (req) => {
      if (/\/api\/v1\/series\?name=sensor(:|%3A)/.test(req.url())) sparks++;
    });
    const p = await h.open(`/?token=${spareToken.token}`, WALL_SIZE, 'login: revoked',
      { context, page, allow: ALLOW_GONE });
    await waitFresh(p.page);
    await p.page.waitForSelector('#who:not([hidden])', { timeout: 5000 });
    assert.equal(await text(p.page, '#who-name'), 'dinding-2');
    // Every series fetched and nothing in flight: the next fetch is minutes away,
    // so only the websocket can tell the page that its identity is gone.
    for (let i = 0; sparks < h.expect.sensorsTotal; i++) {
      assert.ok(i < 150, `the wall fetched ${sparks} of ${h.expect.sensorsTotal} gauges' series in 15 s`);
      await sleep(100);
    }
    await settle(p.page);

    const revoked = Date.now();
    h.cli(['token', 'revoke', spareToken.id]);
    await p.page.waitForURL((u) => u.pathname === '/login', { timeout: 15000 });
    t.diagnostic(`on the login page ${Date.now() - revoked} ms after \`kendali token revoke\`; ` +
      `tolerated: ${p.watch.tolerated.join('; ') || 'nothing'}`);
    const at = where(p.page);
    assert.equal(at.params.get('next'), '/', 'the login page comes back to the wall');
    await p.page.waitForSelector('#notice:not([hidden])', { timeout: 3000 });
    assert.match(await text(p.page, '#notice'), /Sesi Anda sudah berakhir atau dicabut/);
    assertNoProblems(p);
  });
});

test('after logging in the page follows `next` only to a path of this site', { timeout: 60000 }, async (t) => {
  // The server's answer is played by the test (no login attempt is spent):
  // what is checked is where the page goes with it.
  const cases = [
    ['/', '/'],
    ['/mayor?lang=en', '/mayor?lang=en'],
    ['//evil.example/x', '/'],
    ['/\\evil.example/x', '/'],
    ['https://evil.example/', '/'],
    ['javascript:alert(1)', '/'],
    ['mayor', '/'],
    ['/login?next=%2F', '/'],
    ['', '/'],
  ];
  await withContext(TABLET, async (context) => {
    await context.route((u) => u.pathname === '/api/v1/session', (route) => (route.request().method() === 'POST'
      ? route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({ kind: 'user', name: OPERATOR.name, role: 'operator', can: ['read', 'ack', 'wall'] }),
      })
      : route.fallback()));
    const seen = [];
    for (const [next, want] of cases) {
      const p = await h.open(`/login?next=${encodeURIComponent(next)}`, TABLET, `login: next=${next}`, { context });
      const nav = p.page.waitForRequest((req) => req.isNavigationRequest() && req.frame() === p.page.mainFrame(),
        { timeout: 5000 });
      await logIn(p.page, OPERATOR.name, 'played by the test');
      const u = new URL((await nav).url());
      const went = u.origin === h.base ? u.pathname + u.search : u.href;
      seen.push(`${JSON.stringify(next)} -> ${went}`);
      assert.equal(went, want, `next=${JSON.stringify(next)}`);
      await settle(p.page);
      assertNoProblems(p);
      await p.page.close();
    }
    t.diagnostic(seen.join(', '));
  });
});

// Last: it leaves this address rate-limited for a few seconds.
test('too many logins from one address are refused with 429, and the page says how long to wait',
  { timeout: 90000 }, async (t) => {
    await withContext(TABLET, async (context) => {
      const p = await h.open('/login', TABLET, 'login: rate limit',
        { context, allow: [...ALLOW_LOGIN_401, ...ALLOW_LOGIN_429] });
      let said = '';
      let tries = 0;
      for (; tries < 20; tries++) {
        await logIn(p.page, 'tidak-ada', 'salah');
        said = await loginStatus(p.page);
        if (said !== 'Nama pengguna atau kata sandi salah.') break;
        await p.page.evaluate(() => { document.getElementById('login-status').textContent = ''; });
      }
      t.diagnostic(`refused after ${tries + 1} attempts from this page: "${said}"`);
      const m = /^Terlalu banyak percobaan\. Tunggu (\d+) detik, lalu coba lagi\.$/.exec(said);
      assert.ok(m, `the page says to wait: "${said}"`);
      assert.ok(Number(m[1]) >= 1 && Number(m[1]) <= 60, `a plausible wait: ${m[1]} s`);
      assert.equal(await p.page.isDisabled('#login-submit'), true, 'the button waits too');
      await p.page.waitForFunction(() => !document.getElementById('login-submit').disabled, null,
        { timeout: (Number(m[1]) + 3) * 1000, polling: 200 });
      assert.equal(await text(p.page, '#login-status'), 'Silakan coba lagi.');
      assertNoProblems(p);
    });
  });

test('the screenshots of the login page and the logged-in pages were saved', async () => {
  const problems = [];
  for (const name of SHOTS) {
    const file = path.join(SCREENSHOTS, name);
    if (!fs.existsSync(file)) problems.push(`${name}: not saved`);
    else if (fs.statSync(file).mtimeMs < suiteStart - 1000) problems.push(`${name}: left from an earlier run`);
  }
  assert.deepEqual(problems, [], problems.join('; '));
});
