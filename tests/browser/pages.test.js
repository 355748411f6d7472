'use strict';
/*
 * End-to-end tests of the wall screen (/) and the mayor's page (/mayor) in
 * headless Chromium, against a real server with the data set of dataset.js.
 *
 * The tests rely only on the pages' stable conventions (see web-static/js/ui.js):
 * numbers carry data-kpi / data-key / data-field / data-value, computed ones
 * data-derived; the STALE overlay is #stale, hidden with the hidden attribute;
 * labels carry data-i18n; <html lang> is "id", or "en" with ?lang=en.
 * Every expected value comes from GET /api/v1/kpis, never from the pages' code.
 * The server runs with --anonymous-loopback (the harness's default), so the
 * pages open without logging in; login.test.js covers logins, tokens and roles.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const {
  Harness, SCREENSHOTS, sleep, waitFresh, staleShown, expectPageMatchesApi,
  describe: describeEl, pngSize,
} = require('./harness');
const { formatter, readNumbers, checkNumberTexts } = require('./numbers');

const WALL = { name: 'wall', path: '/', sizes: [[1920, 1080], [3840, 2160]] };
const MAYOR = { name: 'mayor', path: '/mayor', sizes: [[1024, 768], [768, 1024]] };
const size = ([width, height]) => ({ width, height });
const sizeName = ([w, h]) => `${w}x${h}`;

// Formatters of numbers.js (Node's Intl, independent of the pages): Indonesian by default.
const ID = formatter('id');

// A plain element of reports.open (not a map/list entry, not computed).
const OPEN_SEL = '[data-kpi="reports.open"]:not([data-key]):not([data-field]):not([data-derived])';

const h = new Harness();
let suiteStart = 0;

/** After the page is live: let its first requests (history, series, icons) finish. */
async function settle(page) {
  await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {});
  await sleep(300);
}

// The screenshots: taken where the pages are loaded anyway (the load test at
// every size, the English test), checked by the screenshot test.
const SHOTS = [
  ...WALL.sizes.map((sz) => shotName(WALL, '', sz)),
  ...MAYOR.sizes.map((sz) => shotName(MAYOR, '', sz)),
  shotName(WALL, '?lang=en', WALL.sizes[0]),
  shotName(MAYOR, '?lang=en', MAYOR.sizes[0]),
];

function shotName(pg, query, sz) {
  return { name: `${pg.name}${query ? '-en' : ''}-${sizeName(sz)}.png`, pg, sz };
}

before(async () => {
  suiteStart = Date.now();
  // Only this file's screenshots: other test files may be writing theirs now.
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  for (const { name } of SHOTS) fs.rmSync(path.join(SCREENSHOTS, name), { force: true });
  await h.start();
}, { timeout: 180000 });

after(async () => {
  await h.stop();
}, { timeout: 60000 });

async function screenshot(page, pg, query, sz) {
  const file = path.join(SCREENSHOTS, shotName(pg, query, sz).name);
  await page.evaluate(() => document.fonts.ready.then(() => true));
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
}

const withPage = (pathAndQuery, viewport, label, fn) => h.withPage(pathAndQuery, viewport, label, fn);

function isPlain(el) {
  return el.key == null && el.field == null && el.derived == null;
}

// ---------------------------------------------------------------------------
// 1. Loading
// ---------------------------------------------------------------------------

test('each page loads at each target size with no console error, no failed request, no wall scrolling',
  { timeout: 90000 }, async (t) => {
    for (const pg of [WALL, MAYOR]) {
      for (const sz of pg.sizes) {
        await t.test(`${pg.name} ${sizeName(sz)}`, async (st) => {
          await withPage(pg.path, size(sz), `${pg.name} ${sizeName(sz)}`, async ({ page, watch }) => {
            const failures = [];
            let live = true;
            await waitFresh(page).catch((e) => {
              failures.push(e.message);
              live = false;
            });
            await settle(page);
            await screenshot(page, pg, '', sz); // also when something is wrong: it helps to see it
            if (live && await staleShown(page)) failures.push('#stale is displayed although its data is live');
            const m = await page.evaluate(() => ({
              sh: document.documentElement.scrollHeight,
              sw: document.documentElement.scrollWidth,
              ih: window.innerHeight,
              iw: window.innerWidth,
            }));
            if (pg === WALL && (m.sh > m.ih || m.sw > m.iw)) {
              failures.push(`the wall scrolls: document ${m.sw}x${m.sh} in a ${m.iw}x${m.ih} window`);
            }
            for (const s of watch.tolerated) st.diagnostic(`tolerated (no yesterday record): ${s}`);
            failures.push(...watch.problems);
            assert.deepEqual(failures, [], `${pg.name} at ${sizeName(sz)}:\n  ${failures.join('\n  ')}`);
          });
        });
      }
    }
  });

// ---------------------------------------------------------------------------
// 2. The numbers equal the API, formatted in Indonesian
// ---------------------------------------------------------------------------

/**
 * Reads every number of the page and GET /api/v1/kpis right after, and checks
 * each number's text as docs/ui.md formats it in lang (numbers.js); retries
 * for up to withinMs (a push or one of the page's fetches may be in flight).
 * Returns {checked, read, kpis, tries}; fails with every problem.
 */
async function expectNumberTexts(page, lang, withinMs = 3000) {
  const deadline = Date.now() + withinMs;
  let tries = 0;
  for (;;) {
    tries++;
    const read = await readNumbers(page);
    const { kpis } = await h.kpis();
    const r = checkNumberTexts(read, kpis, lang);
    if (!read.els.length) r.problems.push('no [data-kpi] element on the page');
    if (!r.problems.length) return { checked: r.checked, read, kpis, tries };
    if (Date.now() >= deadline) {
      assert.fail(`the numbers' texts (${lang}) after ${tries} tries in ${withinMs} ms:\n  ` + r.problems.join('\n  '));
    }
    await sleep(200);
  }
}

/** Two of each kind of number checked, for the diagnostics. */
function examples(checked) {
  const kinds = ['(count)', '(percentage', '(measurement', '(gauge', '(change, unknown)', '(change, ', '(null)'];
  return kinds.flatMap((k) => checked.filter((c) => c.includes(k) && (k !== '(change, ' || !c.includes('unknown')))
    .slice(0, 2)).join('; ');
}

/** Waits until the mayor's page compares its three "today" counts with yesterday's series. */
async function waitSeriesChanges(page) {
  await page.waitForFunction(() => document.querySelectorAll('[data-derived="change_24h"][data-source="series"]').length === 3,
    null, { timeout: 8000, polling: 100 }).catch(() => {
    throw new Error('the mayor\'s page does not compare its three "today" counts with yesterday\'s series within 8 s');
  });
}

/**
 * What the data set must put on a page for the formatting check to mean
 * something: a count over a thousand, percentages, a null; on the wall gauge
 * readings with decimals and both measurements with their units; on the
 * mayor's page all eight changes against yesterday.  Returns problems.
 */
function formattingCoverage(pg, checked, kpis) {
  const problems = [];
  const has = (re) => checked.some((c) => re.test(c));
  if (!(kpis['reports.open'] >= 1000)) {
    problems.push(`reports.open is ${kpis['reports.open']}: the data set should make it over 1000`);
  }
  if (!has(/^\[data-kpi="reports\.open"\] "\d{1,3}[.,]\d{3}" \(count\)/)) {
    problems.push('no plain reports.open over a thousand was checked');
  }
  if (!has(/\(percentage/)) problems.push('no percentage was checked');
  if (pg === WALL) {
    if (!has(/^\[data-kpi="sensors\.latest"\].* "\d+[.,]\d+" \(gauge reading/)) {
      problems.push('wall: no gauge reading with decimals was checked');
    }
    for (const k of ['calls.asa_1h_s', 'reports.resolution_p50_30d_h']) {
      if (!checked.some((c) => c.startsWith(`[data-kpi="${k}"] `) && c.includes('(measurement with its unit)'))) {
        problems.push(`wall: ${k} was not checked with its unit`);
      }
    }
  } else {
    if (!has(/ "—" \(null\)/)) problems.push('mayor: no null shown as "—" was checked');
    const changes = checked.filter((c) => c.includes('[data-derived="change_24h"]'));
    if (changes.length !== 8) problems.push(`mayor: ${changes.length} changes against yesterday checked, not 8`);
    // The data set has no KPI record of yesterday, but 48 hours of events: the
    // three "today" counts are compared, the five others unknown.
    const known = changes.filter((c) => !c.endsWith('(change, unknown)'));
    if (known.length !== 3) problems.push(`mayor: ${known.length} changes known, not the 3 "today" counts`);
  }
  return problems;
}

test('the numbers shown equal GET /api/v1/kpis, formatted in Indonesian', { timeout: 60000 }, async (t) => {
  for (const [pg, sz] of [[WALL, WALL.sizes[0]], [MAYOR, MAYOR.sizes[0]]]) {
    await t.test(`${pg.name} ${sizeName(sz)}`, async (st) => {
      await withPage(pg.path, size(sz), `${pg.name} ${sizeName(sz)}`, async ({ page }) => {
        await waitFresh(page);
        const r = await expectPageMatchesApi(h, page, 3000);
        const derived = r.compared.filter((e) => e.derived != null).map(describeEl);
        const nulls = r.compared.filter((e) => e.value === 'null').length;
        st.diagnostic(`${r.compared.length} numbers equal the API (try ${r.tries}), ${nulls} of them null ` +
          `shown as "—"; computed ones checked: ${derived.join(', ') || 'none'}; ` +
          `skipped: ${r.skipped.join(', ') || 'none'}`);

        // Enough was compared for the check to mean something.
        const plainKeys = new Set(r.compared.filter(isPlain).map((e) => e.kpi));
        for (const k of ['reports.open', 'reports.overdue', 'reports.sla_met_30d', 'calls.received_today']) {
          assert.ok(plainKeys.has(k), `${pg.name}: no plain [data-kpi="${k}"] was compared`);
        }
        assert.ok(r.compared.some((e) => e.key != null && e.field != null),
          `${pg.name}: no list entry (data-key + data-field) was compared`);
        if (pg === WALL) {
          assert.ok(r.compared.some((e) => e.kpi === 'sensors.by_level' && e.key != null),
            'wall: no sensors.by_level entry was compared');
          assert.ok(r.compared.some((e) => e.kpi === 'sensors.latest'), 'wall: no sensors.latest entry was compared');
        }

        // The text of every number, formatted in Indonesian; on the mayor's
        // page once yesterday's series have come (the three "today" counts).
        if (pg === MAYOR) await waitSeriesChanges(page);
        const f = await expectNumberTexts(page, 'id', 3000);
        st.diagnostic(`${f.checked.length} texts checked in Indonesian (try ${f.tries}), e.g. ${examples(f.checked)}`);
        assert.equal(f.checked.length, f.read.els.length, `${pg.name}: not every number's text was checked`);
        const problems = formattingCoverage(pg, f.checked, f.kpis);
        assert.deepEqual(problems, [], `${pg.name}:\n  ${problems.join('\n  ')}`);
      });
    });
  }
});

test('an offline gauge\'s alert reads OFFLINE in its own colour, never a flood level', { timeout: 60000 }, async (t) => {
  const r = await h.kpis();
  const offline = r.kpis['alerts.active'].filter((a) => a.kind === 'offline');
  const level = r.kpis['alerts.active'].filter((a) => a.kind === 'level');
  // The data set has a gauge silent past its offline_after_s, and level alerts.
  assert.ok(offline.length >= 1 && level.length >= 1, 'the data set has offline and level alerts');
  for (const a of offline) assert.equal(a.severity, null, `offline alert ${a.id} has no severity in the API`);
  for (const [pg, sz] of [[WALL, WALL.sizes[0]], [MAYOR, MAYOR.sizes[0]]]) {
    await t.test(pg.name, async () => {
      await withPage(pg.path, size(sz), `${pg.name} offline alert`, async ({ page }) => {
        await waitFresh(page);
        for (const a of [...offline, ...level]) {
          const card = page.locator(`li.alert[data-alert-id="${a.id}"]`);
          await card.waitFor({ timeout: 5000 });
          const badge = (await card.locator('.badge').innerText()).trim();
          const cls = await card.getAttribute('class');
          const colour = await card.locator('.badge').evaluate((el) => getComputedStyle(el).backgroundColor);
          if (a.kind === 'offline') {
            assert.equal(badge, 'OFFLINE', `${pg.name}: offline alert ${a.id} badge`);
            assert.match(cls, /\bsev-offline\b/, `${pg.name}: offline alert ${a.id} class`);
            const levelColours = await page.evaluate(() => ['waspada', 'siaga', 'awas'].map((l) => {
              const el = document.createElement('span');
              el.className = `badge lvl-${l}`;
              document.body.appendChild(el);
              const c = getComputedStyle(el).backgroundColor;
              el.remove();
              return c;
            }));
            assert.ok(!levelColours.includes(colour), `${pg.name}: offline badge ${colour} is a level's colour`);
          } else {
            assert.equal(badge.toLowerCase(), a.severity, `${pg.name}: level alert ${a.id} badge`);
          }
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------
// 3. A posted event reaches the screen within a second
// ---------------------------------------------------------------------------

test('a posted report changes reports.open on screen within one second', { timeout: 60000 }, async (t) => {
  const pages = [];
  try {
    pages.push(await h.open(WALL.path, size(WALL.sizes[0]), 'wall live'));
    pages.push(await h.open(MAYOR.path, size(MAYOR.sizes[0]), 'mayor live'));
    for (const p of pages) await waitFresh(p.page);
    await sleep(500);

    const before = (await h.kpis()).kpis['reports.open'];
    assert.equal(typeof before, 'number', 'reports.open of the API');
    for (const p of pages) {
      await p.page.waitForFunction(([sel, want]) => {
        const els = [...document.querySelectorAll(sel)];
        return els.length > 0 && els.every((el) => el.getAttribute('data-value') === want);
      }, [OPEN_SEL, String(before)], { timeout: 3000, polling: 50 }).catch(() => {
        throw new Error(`${p.label}: reports.open on the page is not the API's ${before} before the post`);
      });
      // Note the moment every plain reports.open element shows the new value.
      await p.page.evaluate(([sel, want]) => {
        window.__kdLive = { at: null };
        const check = () => {
          if (window.__kdLive.at !== null) return;
          const els = [...document.querySelectorAll(sel)];
          if (els.length && els.every((el) => el.getAttribute('data-value') === want)) window.__kdLive.at = Date.now();
        };
        new MutationObserver(check).observe(document.documentElement,
          { subtree: true, childList: true, attributes: true, attributeFilter: ['data-value'] });
      }, [OPEN_SEL, String(before + 1)]);
    }

    const sent = Date.now();
    await h.post([h.newTicketEvent()]);
    const accepted = Date.now();

    const latencies = [];
    for (const p of pages) {
      await p.page.waitForFunction(() => window.__kdLive.at !== null, null, { timeout: 5000, polling: 20 })
        .catch(() => {
          throw new Error(`${p.label}: reports.open did not become ${before + 1} within 5 s of the 202`);
        });
      const at = await p.page.evaluate(() => window.__kdLive.at);
      const text = await p.page.$eval(OPEN_SEL, (el) => el.textContent.trim());
      latencies.push({ label: p.label, ms: at - accepted, text });
    }
    t.diagnostic(`POST answered 202 in ${accepted - sent} ms; on screen after the 202 (after sending): ` +
      latencies.map((l) => `${l.label} ${l.ms} ms (${l.ms + accepted - sent} ms)`).join(', '));
    for (const l of latencies) {
      assert.ok(l.ms < 1000, `${l.label}: reports.open changed ${l.ms} ms after the 202 (limit 1000 ms)`);
      assert.equal(l.text, ID.int(before + 1), `${l.label}: the text of reports.open`);
    }
    assert.equal((await h.kpis()).kpis['reports.open'], before + 1, 'reports.open of the API after the post');
    for (const p of pages) assert.deepEqual(p.watch.problems, [], `${p.label}: ${p.watch.problems.join('; ')}`);
  } finally {
    for (const p of pages) await p.context.close();
  }
});

// ---------------------------------------------------------------------------
// 5. English
// ---------------------------------------------------------------------------

function readLabels(page) {
  return page.evaluate(() => ({
    lang: document.documentElement.getAttribute('lang'),
    labels: [...document.querySelectorAll('[data-i18n]')].map((el) => ({
      key: el.getAttribute('data-i18n'),
      text: el.textContent.trim(),
    })),
  }));
}

test('?lang=en switches the labels to English', { timeout: 60000 }, async (t) => {
  for (const [pg, sz] of [[WALL, WALL.sizes[0]], [MAYOR, MAYOR.sizes[0]]]) {
    await t.test(pg.name, async (st) => {
      const read = (query) => withPage(pg.path + query, size(sz), `${pg.name}${query}`, async ({ page, watch }) => {
        await waitFresh(page);
        await settle(page);
        if (query) await screenshot(page, pg, query, sz);
        const r = await readLabels(page);
        // Every number's text in this page's language (en-US with ?lang=en).
        if (pg === MAYOR) await waitSeriesChanges(page);
        r.numbers = await expectNumberTexts(page, query ? 'en' : 'id', 3000);
        r.problems = watch.problems;
        return r;
      });
      const id = await read('');
      const en = await read('?lang=en');
      assert.equal(id.lang, 'id', `${pg.name}: <html lang> by default`);
      assert.equal(en.lang, 'en', `${pg.name}: <html lang> with ?lang=en`);

      assert.ok(id.labels.length >= 5, `${pg.name}: only ${id.labels.length} [data-i18n] elements`);
      assert.deepEqual(en.labels.map((l) => l.key), id.labels.map((l) => l.key),
        `${pg.name}: the same [data-i18n] elements in both languages`);
      const differ = id.labels.filter((l, i) => l.text !== en.labels[i].text);
      st.diagnostic(`${differ.length} of ${id.labels.length} labels differ, e.g. ` +
        differ.slice(0, 4).map((l) => `${l.key}: "${l.text}" / "${en.labels[id.labels.indexOf(l)].text}"`).join(', '));
      assert.ok(differ.length >= 5, `${pg.name}: only ${differ.length} labels differ between id and en`);

      const idText = id.labels.map((l) => l.text).join(' | ');
      const enText = en.labels.map((l) => l.text).join(' | ');
      for (const word of ['Open', 'Overdue']) {
        assert.match(enText, new RegExp(`\\b${word}\\b`), `${pg.name}: "${word}" is not among the English labels`);
        assert.doesNotMatch(idText, new RegExp(`\\b${word}\\b`), `${pg.name}: "${word}" among the Indonesian labels`);
      }
      for (const word of ['Terbuka', 'Lewat SLA']) {
        assert.ok(idText.includes(word), `${pg.name}: "${word}" is not among the Indonesian labels`);
      }

      // Numbers follow the language too (1,234, 87.5%, 2.3 pp): every one was
      // checked in en-US by expectNumberTexts, the same ones as in Indonesian.
      assert.equal(en.numbers.checked.length, en.numbers.read.els.length,
        `${pg.name}: not every number's text was checked in English`);
      assert.equal(en.numbers.checked.length, id.numbers.checked.length,
        `${pg.name}: not the same numbers in both languages`);
      const open = en.numbers.checked.filter((c) => c.startsWith('[data-kpi="reports.open"] "'));
      assert.ok(open.length > 0 && open.every((c) => /"\d{1,3},\d{3}"/.test(c)),
        `${pg.name}: reports.open in English is not shown with "," for thousands: ${open.join('; ')}`);
      st.diagnostic(`${en.numbers.checked.length} numbers' texts checked in English, e.g. ${examples(en.numbers.checked)}`);
      assert.deepEqual(en.problems, [], `${pg.name}?lang=en:\n  ${en.problems.join('\n  ')}`);
    });
  }
});

// ---------------------------------------------------------------------------
// 6. Screenshots
// ---------------------------------------------------------------------------

test('screenshots of each page at each size are saved under tests/artifacts/screenshots', async (t) => {
  const saved = [];
  const problems = [];
  for (const { name, pg, sz } of SHOTS) {
    const file = path.join(SCREENSHOTS, name);
    if (!fs.existsSync(file)) {
      problems.push(`${name}: not saved`);
      continue;
    }
    if (fs.statSync(file).mtimeMs < suiteStart - 1000) problems.push(`${name}: left from an earlier run`);
    const got = pngSize(file);
    if (got.width !== sz[0]) problems.push(`${name}: ${got.width} px wide, not ${sz[0]}`);
    if (got.height < sz[1]) problems.push(`${name}: ${got.height} px high, less than ${sz[1]}`);
    saved.push(`${name} (${got.width}x${got.height})`);
  }
  t.diagnostic(`saved: ${saved.join(', ')}`);
  assert.deepEqual(problems, [], problems.join('; '));
});

// ---------------------------------------------------------------------------
// 4. STALE when the websocket is cut, live again after a reconnect
// ---------------------------------------------------------------------------

test('stopping the server shows STALE; restarting it clears STALE and the numbers equal the API',
  { timeout: 90000 }, async (t) => {
    const pages = [];
    try {
      pages.push(await h.open(WALL.path, size(WALL.sizes[0]), 'wall stale'));
      pages.push(await h.open(MAYOR.path, size(MAYOR.sizes[0]), 'mayor stale'));
      for (const p of pages) await waitFresh(p.page);
      for (const p of pages) assert.equal(await staleShown(p.page), false, `${p.label}: #stale shown while live`);

      // SIGTERM: the server closes the websockets (1001) and exits.
      const stopped = Date.now();
      const stopping = h.server.stop();
      const shown = await Promise.all(pages.map(async (p) => {
        try {
          await p.page.waitForFunction(() => {
            const s = document.getElementById('stale');
            if (!s || s.hidden) return false;
            const cs = getComputedStyle(s);
            return cs.display !== 'none' && cs.visibility !== 'hidden' && s.getClientRects().length > 0;
          }, null, { timeout: 3000, polling: 50 });
          return { label: p.label, ms: Date.now() - stopped };
        } catch {
          return { label: p.label, ms: null };
        }
      }));
      const exit = await stopping;
      t.diagnostic(`server stopped (${JSON.stringify(exit)}); STALE shown after: ` +
        shown.map((s) => `${s.label} ${s.ms == null ? 'never (3 s)' : s.ms + ' ms'}`).join(', '));
      for (const s of shown) assert.ok(s.ms != null, `${s.label}: #stale not shown within 3 s of SIGTERM`);

      // The same port, the same database.
      await h.server.start();
      const restarted = Date.now();
      const cleared = await Promise.all(pages.map(async (p) => {
        try {
          await p.page.waitForFunction(() => document.getElementById('stale').hidden === true, null,
            { timeout: 15000, polling: 50 });
          return { label: p.label, ms: Date.now() - restarted };
        } catch {
          return { label: p.label, ms: null };
        }
      }));
      t.diagnostic('STALE cleared after the restart: ' +
        cleared.map((s) => `${s.label} ${s.ms == null ? 'never (15 s)' : s.ms + ' ms'}`).join(', '));
      for (const s of cleared) assert.ok(s.ms != null, `${s.label}: #stale still shown 15 s after the restart`);

      for (const p of pages) {
        assert.equal(await staleShown(p.page), false, `${p.label}: #stale displayed after the reconnect`);
        const r = await expectPageMatchesApi(h, p.page, 3000);
        t.diagnostic(`${p.label}: ${r.compared.length} numbers equal the API after the reconnect`);
        // Only the outage itself may have made noise (failed websocket connections).
        const crashes = p.watch.problems.filter((s) => s.startsWith('uncaught exception') || s === 'page crashed');
        assert.deepEqual(crashes, [], `${p.label}: ${crashes.join('; ')}`);
      }
    } finally {
      for (const p of pages) await p.context.close();
    }
  });

// ---------------------------------------------------------------------------
// 7. STALE, saying why, while the server cannot reach its database
// ---------------------------------------------------------------------------

test('losing the database shows STALE with its reason and time; its return clears it',
  { timeout: 90000 }, async (t) => {
    const pages = [];
    /** The overlay as the operator sees it: shown or not, why, and its lines. */
    const overlay = (page) => page.evaluate(() => {
      const s = document.getElementById('stale');
      const cs = getComputedStyle(s);
      return {
        shown: !s.hidden && cs.display !== 'none' && s.getClientRects().length > 0,
        reason: s.dataset.reason || '',
        text: s.innerText,
      };
    });
    try {
      pages.push(await h.open(WALL.path, size(WALL.sizes[0]), 'wall db'));
      pages.push(await h.open(MAYOR.path, size(MAYOR.sizes[0]), 'mayor db'));
      pages.push(await h.open(`${MAYOR.path}?lang=en`, size(MAYOR.sizes[0]), 'mayor db en'));
      for (const p of pages) await waitFresh(p.page);

      // The websocket stays open: only the server's own database goes away.
      const lost = new Date();
      h.pg.stop('fast');
      const shown = await Promise.all(pages.map(async (p) => {
        try {
          await p.page.waitForFunction(() => {
            const s = document.getElementById('stale');
            return !s.hidden && s.dataset.reason === 'database';
          }, null, { timeout: 8000, polling: 100 });
          return { label: p.label, ms: Date.now() - lost.getTime(), ...(await overlay(p.page)) };
        } catch {
          return { label: p.label, ms: null, ...(await overlay(p.page)) };
        }
      }));
      t.diagnostic('STALE (database) shown after: ' +
        shown.map((s) => `${s.label} ${s.ms == null ? 'never (8 s)' : s.ms + ' ms'}`).join(', '));
      // The time the database was lost, as WIB hours and minutes (either
      // side of a minute boundary).
      const hm = (d) => {
        const w = new Date(d.getTime() + 7 * 3600 * 1000);
        return [w.getUTCHours(), w.getUTCMinutes()].map((n) => String(n).padStart(2, '0'));
      };
      const times = [hm(lost), hm(new Date(lost.getTime() + 2000))];
      // What the operators see (kept with the other screenshots, not compared).
      await pages[0].page.screenshot({ path: path.join(SCREENSHOTS, 'wall-database-lost-1920x1080.png') });
      for (const s of shown) {
        assert.ok(s.ms != null, `${s.label}: no STALE for the database within 8 s (${JSON.stringify(s)})`);
        assert.ok(s.shown, `${s.label}: the overlay is not displayed`);
        const en = s.label.endsWith('en');
        assert.match(s.text, en ? /database/i : /basis data/i, `${s.label}: the overlay does not name the database`);
        assert.ok(times.some(([hh, mm]) => s.text.includes(`${hh}.${mm}`) || s.text.includes(`${hh}:${mm}`)),
          `${s.label}: the overlay does not say since when (${times.map((x) => x.join(':'))}): ${s.text}`);
      }

      h.pg.start();
      const back = Date.now();
      const cleared = await Promise.all(pages.map(async (p) => {
        try {
          await p.page.waitForFunction(() => document.getElementById('stale').hidden === true, null,
            { timeout: 20000, polling: 100 });
          return { label: p.label, ms: Date.now() - back };
        } catch {
          return { label: p.label, ms: null };
        }
      }));
      t.diagnostic('STALE cleared after the database came back: ' +
        cleared.map((s) => `${s.label} ${s.ms == null ? 'never (20 s)' : s.ms + ' ms'}`).join(', '));
      for (const s of cleared) assert.ok(s.ms != null, `${s.label}: STALE still shown 20 s after the database came back`);
      await h.server.waitReady(20000);
      for (const p of pages) {
        const r = await expectPageMatchesApi(h, p.page, 3000);
        t.diagnostic(`${p.label}: ${r.compared.length} numbers equal the API`);
        const crashes = p.watch.problems.filter((s) => s.startsWith('uncaught exception') || s === 'page crashed');
        assert.deepEqual(crashes, [], `${p.label}: ${crashes.join('; ')}`);
      }
    } finally {
      if (!h.pg.running) h.pg.start();
      for (const p of pages) await p.context.close();
    }
  });
