'use strict';
/*
 * The pages name their tenant (docs/ui.md, "The tenant"): the wall's and the
 * mayor's titles and headings carry the tenant's name and its head's title as
 * GET /api/v1/session gives them, in Indonesian or English, and the clocks
 * show the tenant's zone (WIB, WITA, WIT).  One database, three servers: the
 * harness's Semarang, a regency (Batang) and a city in WITA.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { Harness, Server, freePort } = require('./harness');

const h = new Harness({ name: 'tenant' });
const SIZE = { width: 1024, height: 768 };
const servers = [];

before(async () => {
  await h.start();
  h.cli(['tenant', 'create', 'batang', '--name', 'Kabupaten Batang', '--head', 'Bupati']);
  h.cli(['tenant', 'create', 'kota-makassar', '--name', 'Kota Makassar', '--head', 'Wali Kota',
    '--tz', 'Asia/Makassar']);
});

after(async () => {
  for (const s of servers) await s.stop();
  await h.stop();
});

/** Another server on the harness's database, serving tenant. */
async function serverFor(tenant) {
  const logDir = path.join(h.tmp, `logs-${tenant}`);
  fs.mkdirSync(logDir, { recursive: true });
  const s = new Server({
    bin: h.server.bin, databaseUrl: h.databaseUrl, port: await freePort(), logDir,
    args: ['--anonymous-loopback', '--tenant', tenant],
  });
  servers.push(s);
  await s.start();
  return s;
}

/**
 * The page's title, its h1, and its clock, once the heading is the one
 * expected and the clock (ticking each second) shows the zone.
 */
async function titles(base, pathAndQuery, heading, zone = 'WIB') {
  const context = await h.newContext(SIZE);
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(base + pathAndQuery, { waitUntil: 'load', timeout: 15000 });
    await page.waitForFunction(([want, z]) => document.querySelector('h1').textContent === want &&
      document.getElementById('clock').textContent.endsWith(' ' + z), [heading, zone],
    { timeout: 5000 }).catch(() => {});
    const got = await page.evaluate(() => ({
      title: document.title,
      h1: document.querySelector('h1').textContent,
      clock: document.getElementById('clock').textContent,
      at: Date.now(),
    }));
    assert.deepEqual(errors, [], `${pathAndQuery}: page errors`);
    return got;
  } finally {
    await context.close();
  }
}

/** "HH:MM:SS" of epoch ms at a UTC offset of hours, computed here. */
function hmsAt(ms, hours) {
  const d = new Date(ms + hours * 3600 * 1000);
  return [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function assertClock(got, zone, hours) {
  const m = /^(\d\d:\d\d:\d\d) (\S+)$/.exec(got.clock);
  assert.ok(m, `the clock reads "${got.clock}"`);
  assert.equal(m[2], zone, `the clock's zone: "${got.clock}"`);
  // The clock ticks each second: it shows the second of the read or the one before.
  const near = [got.at, got.at - 1000, got.at - 2000].map((ms) => hmsAt(ms, hours));
  assert.ok(near.includes(m[1]), `the clock reads ${m[1]}, expected one of ${near.join(', ')} (UTC+${hours})`);
}

test('Semarang: a city, headed by its Wali Kota, in WIB', { timeout: 60000 }, async () => {
  let got = await titles(h.base, '/', 'Kota Semarang — Ruang Kendali');
  assert.equal(got.title, 'Ruang Kendali — Kota Semarang');
  assert.equal(got.h1, 'Kota Semarang — Ruang Kendali');
  assertClock(got, 'WIB', 7);
  got = await titles(h.base, '/mayor', 'Kota Semarang — Ringkasan Wali Kota');
  assert.equal(got.title, 'Ringkasan Wali Kota — Kota Semarang');
  assert.equal(got.h1, 'Kota Semarang — Ringkasan Wali Kota');
  got = await titles(h.base, '/mayor?lang=en', "Kota Semarang — Mayor's summary");
  assert.equal(got.title, "Mayor's summary — Kota Semarang");
  assert.equal(got.h1, "Kota Semarang — Mayor's summary");
});

test('Batang: a regency, headed by its Bupati', { timeout: 60000 }, async () => {
  const s = await serverFor('batang');
  let got = await titles(s.base, '/mayor', 'Kabupaten Batang — Ringkasan Bupati');
  assert.equal(got.title, 'Ringkasan Bupati — Kabupaten Batang');
  assert.equal(got.h1, 'Kabupaten Batang — Ringkasan Bupati');
  assertClock(got, 'WIB', 7);
  got = await titles(s.base, '/mayor?lang=en', "Kabupaten Batang — Regent's summary");
  assert.equal(got.title, "Regent's summary — Kabupaten Batang");
  got = await titles(s.base, '/?lang=en', 'Kabupaten Batang — Control Room');
  assert.equal(got.title, 'Control Room — Kabupaten Batang');
  assert.equal(got.h1, 'Kabupaten Batang — Control Room');
});

test('Makassar: the clocks show WITA, UTC+08:00', { timeout: 60000 }, async () => {
  const s = await serverFor('kota-makassar');
  let got = await titles(s.base, '/', 'Kota Makassar — Ruang Kendali', 'WITA');
  assert.equal(got.h1, 'Kota Makassar — Ruang Kendali');
  assertClock(got, 'WITA', 8);
  got = await titles(s.base, '/mayor', 'Kota Makassar — Ringkasan Wali Kota', 'WITA');
  assert.equal(got.title, 'Ringkasan Wali Kota — Kota Makassar');
  assertClock(got, 'WITA', 8);
});
