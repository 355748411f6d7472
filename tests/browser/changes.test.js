'use strict';
/*
 * The mayor's page's eight changes against the same time yesterday
 * (docs/ui.md, "The change against the same time yesterday"), with a server
 * and data of this file's own: a few events today and yesterday chosen so that
 * some numbers went up, some down and one stayed the same, and a KPI record of
 * yesterday written straight into kpi_history (as the server writes it every
 * 5 minutes: the KPIs that are not lists).
 *
 * Every expectation is worked out here: yesterday's three "today" counts from
 * the events this file posted, by the rule of docs/ui.md (00:00 WIB yesterday
 * up to and including the 5-minute bucket that holds now − 24 h); the others
 * from the record this file wrote; the texts with numbers.js (Node's Intl).
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { Harness, request, sleep, waitFresh, describe: describeEl } = require('./harness');
const { wib, SEC, MIN, HOUR, DAY } = require('./dataset');
const {
  formatter, readNumbers, colourName, expectedChange, checkChangePieces, currentOf, CHANGES,
} = require('./numbers');

const MAYOR_SIZE = { width: 1024, height: 768 };
const WIB_MS = 7 * HOUR;
const STEP_MS = 5 * MIN; // the mayor's page reads yesterday's counts in 5-minute buckets

/** 00:00 WIB of the WIB day holding ms (WIB is UTC+07:00 all year). */
const startOfDayWib = (ms) => Math.floor((ms + WIB_MS) / DAY) * DAY - WIB_MS;
/** End of the 5-minute bucket holding ms; buckets are aligned from 1970-01-01T00:00+07:00 (api.md §5.2). */
const bucketEnd = (ms) => Math.floor((ms + WIB_MS) / STEP_MS) * STEP_MS - WIB_MS + STEP_MS;

const h = new Harness({ name: 'changes', dataset: false });
/** What the events were built to give: see plan(). */
let set = null;

// ---------------------------------------------------------------------------
// The events
// ---------------------------------------------------------------------------

/**
 * The events, relative to now:
 *
 *   today (in the last 50 minutes):  5 tickets received, 1 of them resolved;
 *                                    4 calls, 3 answered within 20 s, 1 after 45 s
 *   yesterday, before now − 24 h:    3 tickets received and resolved; 7 calls
 *   yesterday, after now − 24 h:     2 tickets (1 resolved), 2 calls (not counted)
 *   the day before yesterday:        2 tickets (1 resolved), 2 calls (not counted)
 *   days ago:                        2 open tickets 4 days old (overdue);
 *                                    6 resolved, 4 within the 72 h SLA, 2 late
 *   one gauge at Siaga.
 *
 * Returns {events, sensor, today, yesterday} with the counts worked out from
 * the events by docs/kpis.md's and docs/ui.md's rules.
 */
function plan(now) {
  const T0 = startOfDayWib(now);
  const Y0 = T0 - DAY;
  const cut = now - DAY;
  const events = [];
  let n = 0;
  const id = (what) => `CHG-${process.pid}-${++n}-${what}`;

  /** count times spread evenly over [lo, hi], in whole seconds. */
  const spread = (lo, hi, count) => {
    assert.ok(hi - lo >= (count + 1) * 3 * SEC, `no room for ${count} events between ${wib(lo)} and ${wib(hi)}`);
    const gap = Math.min(5 * MIN, (hi - lo) / (count + 1));
    return Array.from({ length: count }, (_, i) => Math.floor((lo + gap * (i + 1)) / SEC) * SEC);
  };
  const ticket = (at, { resolveAfter, open } = {}) => {
    const t = id('LPR');
    events.push({ id: `${t}/1`, type: 'report', occurred_at: wib(at), district: 'Pedurungan',
      report: { ticket: t, status: 'received', category: 'road', title: 'Jalan berlubang' } });
    if (resolveAfter == null && !open) return;
    events.push({ id: `${t}/2`, type: 'report', occurred_at: wib(at + SEC), report: { ticket: t, status: 'dispatched', agency: 'DPU' } });
    if (resolveAfter != null) {
      events.push({ id: `${t}/3`, type: 'report', occurred_at: wib(at + resolveAfter), report: { ticket: t, status: 'resolved' } });
    }
  };
  const call = (at, answerAfter) => {
    const c = id('112');
    events.push({ id: `${c}/r`, type: 'call', occurred_at: wib(at), district: 'Pedurungan',
      call: { call_id: c, status: 'received', category: 'info' } });
    events.push({ id: `${c}/a`, type: 'call', occurred_at: wib(at + answerAfter), call: { call_id: c, status: 'answered' } });
  };

  // Today, in the last 50 minutes (so the calls are in the last hour), up to
  // 90 s ago (the last answer comes 45 s after its call).
  const today = spread(Math.max(T0 + 20 * SEC, now - 50 * MIN), now - 90 * SEC, 9);
  today.slice(0, 5).forEach((at, i) => ticket(at, i === 0 ? { resolveAfter: 2 * SEC } : { open: true }));
  today.slice(5).forEach((at, i) => call(at, i === 3 ? 45 * SEC : 10 * SEC));

  // Yesterday, from 00:00 WIB up to a minute before now − 24 h: counted.
  const yest = spread(Y0 + 20 * SEC, cut - MIN, 10);
  yest.slice(0, 3).forEach((at) => ticket(at, { resolveAfter: 2 * SEC }));
  yest.slice(3).forEach((at) => call(at, 8 * SEC));

  // Yesterday after the bucket of now − 24 h, while it is still yesterday
  // (not before 23:35 WIB): not counted.
  const late = cut + 20 * MIN;
  if (late + 5 * MIN < T0) {
    ticket(late, { resolveAfter: 2 * MIN });
    ticket(late + 10 * SEC, { open: true });
    call(late + 20 * SEC, 5 * SEC);
    call(late + 40 * SEC, 5 * SEC);
  }
  // The day before yesterday, 20 minutes before midnight: not counted.
  ticket(Y0 - 20 * MIN, { resolveAfter: 10 * MIN });
  ticket(Y0 - 19 * MIN, { open: true });
  call(Y0 - 18 * MIN, 5 * SEC);
  call(Y0 - 17 * MIN, 5 * SEC);

  // Days ago: two overdue tickets; six resolved in the last 30 days, two late.
  ticket(now - 4 * DAY, { open: true });
  ticket(now - 4 * DAY + HOUR, { open: true });
  for (let i = 0; i < 6; i++) ticket(now - (5 + i) * DAY, { resolveAfter: i < 4 ? 10 * HOUR : 100 * HOUR });

  // The counts, by the rules (not by the structure above): today's from 00:00
  // WIB to now; yesterday's from 00:00 WIB yesterday up to the end of the
  // bucket that holds now − 24 h.
  const counts = (from, to) => {
    const at = (e) => Date.parse(e.occurred_at);
    const inside = (e) => at(e) >= from && at(e) < to;
    const latest = new Map();
    for (const e of events.filter((x) => x.type === 'report')) {
      const prev = latest.get(e.report.ticket);
      if (!prev || at(e) >= at(prev)) latest.set(e.report.ticket, e);
    }
    return {
      'reports.received_today': events.filter((e) => e.type === 'report' && e.report.status === 'received' && inside(e)).length,
      'reports.resolved_today': [...latest.values()].filter((e) => e.report.status === 'resolved' && inside(e)).length,
      'calls.received_today': events.filter((e) => e.type === 'call' && e.call.status === 'received' && inside(e)).length,
    };
  };
  return {
    events,
    sensor: {
      id: 'CHG-GAUGE-1',
      body: {
        name: 'Kali Uji - Pos Satu', metric: 'water_level', unit: 'cm', district: 'Pedurungan',
        thresholds: { siaga: 300, awas: 400 }, offline_after_s: 3600,
      },
      reading: { at: now - 2 * MIN, value: 312.5 }, // Siaga
    },
    today: counts(T0, now + 1),
    yesterday: counts(Y0, bucketEnd(cut)),
    T0,
  };
}

/**
 * Waits, when needed, so that the test runs well inside one WIB day: at
 * least 3 minutes after 00:00 WIB (room for today's events) and at least 5
 * minutes before the next (the "today" counts restart at midnight).  At most
 * 8 minutes, and only in the 8 minutes around midnight WIB.
 */
async function awayFromMidnight() {
  const now = Date.now();
  const T0 = startOfDayWib(now);
  const next = T0 + DAY;
  let until = null;
  if (now < T0 + 3 * MIN) until = T0 + 3 * MIN;
  else if (now > next - 5 * MIN) until = next + 3 * MIN;
  if (until == null) return 0;
  console.log(`changes: waiting ${Math.round((until - now) / SEC)} s, until 3 minutes after 00:00 WIB`);
  await sleep(until - now + SEC);
  return until - now;
}

before(async () => {
  await h.start();
  await awayFromMidnight();
  const now = Date.now();
  set = plan(now);
  // The plan's counts are what it was built for (checks this file's arithmetic).
  assert.deepEqual(set.today, { 'reports.received_today': 5, 'reports.resolved_today': 1, 'calls.received_today': 4 },
    'today\'s counts of the plan');
  assert.deepEqual(set.yesterday, { 'reports.received_today': 3, 'reports.resolved_today': 3, 'calls.received_today': 7 },
    'yesterday\'s counts of the plan');

  const put = await request('PUT', `${h.base}/api/v1/sensors/${set.sensor.id}`, { headers: h.auth(), body: set.sensor.body });
  assert.ok(put.status === 201 || put.status === 200, `PUT sensor: ${put.status} ${put.text}`);
  await h.post(set.events);
  await h.post([{ id: `${set.sensor.id}@${wib(set.sensor.reading.at)}`, type: 'sensor', occurred_at: wib(set.sensor.reading.at),
    sensor: { sensor_id: set.sensor.id, value: set.sensor.reading.value } }]);

  // The server counts as the docs say (else the expectations below are moot).
  const want = {
    ...set.today,
    'reports.overdue': 2,
    'calls.service_level_1h': 0.75,
    'sensors.by_level': { normal: 0, waspada: 0, siaga: 1, awas: 0 },
  };
  const deadline = Date.now() + 10000;
  let got;
  for (;;) {
    const k = (await h.kpis()).kpis;
    got = Object.fromEntries(Object.keys(want).map((key) => [key, k[key]]));
    try {
      assert.deepEqual(got, want);
      break;
    } catch {
      if (Date.now() > deadline) assert.fail(`GET /api/v1/kpis after the events: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      await sleep(200);
    }
  }
}, { timeout: 600000 });

after(async () => {
  await h.stop();
}, { timeout: 60000 });

// ---------------------------------------------------------------------------
// Reading and checking the changes
// ---------------------------------------------------------------------------

/** The KPI record of yesterday this file writes: at and kpis, or null for none. */
let record = null;

/** Writes record (replacing any earlier one of this file). */
function writeRecord(rec) {
  const tenants = h.sql('SELECT id FROM tenants ORDER BY id;').trim().split('\n').filter(Boolean);
  assert.equal(tenants.length, 1, `one tenant in the database: ${tenants.join(', ')}`);
  h.sql(`DELETE FROM kpi_history WHERE at < now() - interval '1 hour';
    INSERT INTO kpi_history (tenant, at, kpis) VALUES (:'tenant', :'at'::timestamptz, :'kpis'::jsonb);`,
  { tenant: tenants[0], at: new Date(rec.at).toISOString(), kpis: JSON.stringify(rec.kpis) });
  record = rec;
}

/** GET /api/v1/kpis?at=<ms as RFC 3339>. */
function kpisAt(ms) {
  return request('GET', `${h.base}/api/v1/kpis?at=${encodeURIComponent(new Date(ms).toISOString())}`,
    { headers: h.readAuth() });
}

/** Yesterday's value of a change as the docs define it: {value, source, at} or null. */
function baselineOf(kpi, readAt) {
  if (Object.prototype.hasOwnProperty.call(set.yesterday, kpi)) {
    return { value: set.yesterday[kpi], source: 'series', at: readAt - DAY };
  }
  if (!record) return null;
  const v = kpi === 'sensors.by_level'
    ? (record.kpis[kpi] ? (record.kpis[kpi].siaga || 0) + (record.kpis[kpi].awas || 0) : null)
    : record.kpis[kpi];
  return typeof v === 'number' ? { value: v, source: 'history', at: record.at } : null;
}

/** The sentences for screen readers docs/ui.md gives, in Indonesian; null where it gives none. */
function sentencesId(kpi, exp) {
  if (exp.unknown) return ['tidak ada data pembanding kemarin'];
  if (exp.dir === 'same') return null;
  const dir = exp.dir === 'up' ? 'naik' : 'turun';
  // "naik 12 dibanding kemarin pada jam yang sama (kemarin 46), lebih buruk";
  // a ratio's points are "poin" (or "poin persentase" in full).
  const amounts = CHANGES[kpi].ratio ? [`${exp.number} poin`, `${exp.number} poin persentase`] : [exp.number];
  const judge = exp.judge === 'good' ? ', lebih baik' : exp.judge === 'bad' ? ', lebih buruk' : '';
  return amounts.map((a) => `${dir} ${a} dibanding kemarin pada jam yang sama (kemarin ${exp.baseText})${judge}`);
}

/**
 * Checks one change element against today's value (kpis) and yesterday's
 * (baselineOf): what is seen (arrow, number, unit, "vs …"), data-value /
 * data-base / data-source / data-base-at, the colour, the sentence for
 * screen readers and the tooltip.  Returns problems.
 */
function checkChange(el, kpis, lang, readAt) {
  const fmt = formatter(lang);
  const base = baselineOf(el.kpi, readAt);
  const exp = expectedChange(el.kpi, currentOf(el.kpi, kpis), base ? base.value : null, fmt);
  const p = checkChangePieces(el, exp, fmt);
  const d = describeEl(el);
  const colour = colourName(el.colour);
  if (exp.unknown) {
    if (el.value !== 'null') p.push(`${d}: unknown, so data-value null, not ${el.value}`);
    if (colour !== 'other') p.push(`${d}: unknown, yet coloured ${colour} (${el.colour})`);
    if (lang === 'id' && el.sr !== sentencesId(el.kpi, exp)[0]) {
      p.push(`${d}: the sentence for screen readers is "${el.sr}", expected "${sentencesId(el.kpi, exp)[0]}"`);
    }
    if (!el.sr || /\d/.test(el.sr)) p.push(`${d}: unknown, the sentence for screen readers is "${el.sr}"`);
    return { problems: p, exp };
  }
  if (!(Math.abs(Number(el.value) - exp.diff) < 1e-9)) p.push(`${d}: data-value ${el.value}, expected ${exp.diff}`);
  if (el.base == null || JSON.parse(el.base) !== base.value) p.push(`${d}: data-base ${el.base}, expected ${base.value}`);
  if (el.source !== base.source) p.push(`${d}: data-source ${el.source}, expected ${base.source}`);
  const at = Date.parse(el.baseAt);
  // From the series, now − 24 h when the page last compared (at least every 30 s).
  if (base.source === 'series' ? !(Math.abs(at - base.at) <= 60 * SEC) : at !== base.at) {
    p.push(`${d}: data-base-at ${el.baseAt}, expected ${base.source === 'series' ? 'about ' : ''}${new Date(base.at).toISOString()}`);
  }
  const wantColour = { good: 'green', bad: 'red', neutral: 'other' }[exp.judge];
  if (colour !== wantColour) p.push(`${d}: a ${exp.judge} change coloured ${colour} (${el.colour}), expected ${wantColour}`);

  if (lang === 'id') {
    const ok = sentencesId(el.kpi, exp);
    if (ok && !ok.includes(el.sr)) p.push(`${d}: the sentence for screen readers is "${el.sr}", expected "${ok[0]}"`);
    if (!ok && (!el.sr.includes('kemarin') || !el.sr.includes(exp.baseText) || /naik|turun|lebih/.test(el.sr))) {
      p.push(`${d}: the sentence for screen readers of no change is "${el.sr}": it names yesterday's ${exp.baseText}, no direction`);
    }
  } else if (!el.sr.includes(exp.baseText) || (exp.dir !== 'same' && !el.sr.includes(exp.number)) || /kemarin/.test(el.sr)) {
    p.push(`${d}: the English sentence for screen readers "${el.sr}" does not say ${exp.number} against ${exp.baseText}`);
  }
  if (el.srVisible) p.push(`${d}: the sentence for screen readers is visible`);
  // The tooltip: yesterday's value and its source.
  const source = base.source === 'series' ? /deret|series/i : /rekam|riwayat|record|history/i;
  if (!el.title.includes(exp.baseText) || !source.test(el.title)) {
    p.push(`${d}: the tooltip "${el.title}" does not give yesterday's ${exp.baseText} and its source (${base.source})`);
  }
  return { problems: p, exp };
}

/**
 * Opens the mayor's page and checks its eight changes (retrying for up to
 * 10 s while the page fetches yesterday's record and series).  Returns
 * {exps: {kpi: expected change}, lines} for the diagnostics.
 */
async function checkPage(query, lang) {
  const p = await h.open(`/mayor${query}`, MAYOR_SIZE, `mayor${query} changes`);
  try {
    await waitFresh(p.page);
    const deadline = Date.now() + 10000;
    let tries = 0;
    for (;;) {
      tries++;
      const readAt = Date.now();
      const read = await readNumbers(p.page);
      const { kpis } = await h.kpis();
      const changes = read.els.filter((e) => e.derived === 'change_24h');
      const problems = [];
      const exps = {};
      const lines = [];
      for (const kpi of Object.keys(CHANGES)) {
        const found = changes.filter((e) => e.kpi === kpi);
        if (found.length !== 1) {
          problems.push(`${found.length} change elements of ${kpi}, not 1`);
          continue;
        }
        const el = found[0];
        if (el.card !== kpi) problems.push(`${describeEl(el)} is in the card ${el.card}, not ${kpi}`);
        const r = checkChange(el, kpis, lang, readAt);
        problems.push(...r.problems);
        exps[kpi] = r.exp;
        lines.push(`${kpi}: ${JSON.stringify(el.pieces.map((x) => x.text))} ${colourName(el.colour)} "${el.sr}"`);
      }
      if (changes.length !== 8) problems.push(`${changes.length} change elements on the page, not 8`);
      if (!problems.length) {
        assert.deepEqual(p.watch.problems, [], `mayor${query}:\n  ${p.watch.problems.join('\n  ')}`);
        return { exps, lines, tries };
      }
      if (Date.now() > deadline) assert.fail(`mayor${query}, after ${tries} tries:\n  ${problems.join('\n  ')}`);
      await sleep(250);
    }
  } finally {
    await p.context.close();
  }
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

test('with no KPI record of yesterday, the five changes taken from it show "—" with no arrow and no zero; ' +
  'the three "today" counts compare with yesterday\'s series', { timeout: 60000 }, async (t) => {
  const r = await kpisAt(Date.now() - DAY);
  assert.equal(r.status, 200, `GET /api/v1/kpis?at=: ${r.status} ${r.text}`);
  assert.deepEqual(r.json, { at: null, kpis: null }, 'no record of yesterday');
  record = null;
  const res = await checkPage('', 'id');
  t.diagnostic(`checked (try ${res.tries}):`);
  for (const line of res.lines) t.diagnostic(`  ${line}`);
  const unknown = Object.keys(res.exps).filter((k) => res.exps[k].unknown);
  assert.deepEqual(unknown.sort(), ['calls.service_level_1h', 'reports.open', 'reports.overdue', 'reports.sla_met_30d',
    'sensors.by_level'], 'the changes that are unknown without a record');
});

test('with a KPI record of yesterday, each of the eight changes shows its arrow, difference, colour, ' +
  'sentence for screen readers and tooltip, in Indonesian and in English', { timeout: 60000 }, async (t) => {
  const k = (await h.kpis()).kpis;
  const at = Math.floor((Date.now() - DAY - 3 * MIN) / SEC) * SEC;
  const kpis = {};
  for (const [key, v] of Object.entries(k)) if (!Array.isArray(v)) kpis[key] = v; // as the server records them
  const round = (x) => Math.round(x * 1e6) / 1e6;
  Object.assign(kpis, {
    // The three "today" counts come from the series, not from here.
    'reports.received_today': set.yesterday['reports.received_today'] + 40,
    'reports.resolved_today': set.yesterday['reports.resolved_today'] + 40,
    'calls.received_today': set.yesterday['calls.received_today'] + 40,
    'reports.open': k['reports.open'] + 1234,               // down 1.234: better
    'reports.overdue': k['reports.overdue'] - 2,             // up 2: worse
    'reports.sla_met_30d': round(k['reports.sla_met_30d'] - 0.023), // up 2,3 points: better
    'calls.service_level_1h': round(k['calls.service_level_1h'] + 0.05), // down 5,0 points: worse
    // The same siaga + awas, split otherwise: no change.
    'sensors.by_level': { normal: k['sensors.by_level'].normal + k['sensors.by_level'].siaga,
      waspada: k['sensors.by_level'].waspada, siaga: 0, awas: k['sensors.by_level'].siaga + k['sensors.by_level'].awas },
  });
  writeRecord({ at, kpis });
  const r = await kpisAt(Date.now() - DAY);
  assert.equal(r.status, 200, `GET /api/v1/kpis?at=: ${r.status} ${r.text}`);
  assert.equal(Date.parse(r.json.at), at, `the record written is the one the API returns: ${r.text.slice(0, 200)}`);

  const id = await checkPage('', 'id');
  t.diagnostic(`Indonesian (try ${id.tries}):`);
  for (const line of id.lines) t.diagnostic(`  ${line}`);
  // What the data was built to show.
  const summary = Object.fromEntries(Object.entries(id.exps).map(([kpi, e]) => [kpi, `${e.dir} ${e.judge}`]));
  assert.deepEqual(summary, {
    'reports.received_today': 'up neutral',
    'reports.resolved_today': 'down bad',
    'reports.open': 'down good',
    'reports.overdue': 'up bad',
    'reports.sla_met_30d': 'up good',
    'calls.received_today': 'down neutral',
    'calls.service_level_1h': 'down bad',
    'sensors.by_level': 'same neutral',
  }, 'the changes the data was built for');
  assert.equal(id.exps['reports.open'].number, '1.234', 'a change over a thousand');
  assert.equal(id.exps['reports.sla_met_30d'].number, '2,3', 'a change of 2,3 points');

  const en = await checkPage('?lang=en', 'en');
  t.diagnostic(`English (try ${en.tries}):`);
  for (const line of en.lines) t.diagnostic(`  ${line}`);
});

test('a record that lacks a KPI, or holds null for it, makes that change unknown', { timeout: 60000 }, async (t) => {
  assert.ok(record, 'the record of the previous test');
  const kpis = { ...record.kpis };
  delete kpis['reports.open'];
  kpis['calls.service_level_1h'] = null;
  writeRecord({ at: record.at, kpis });
  const res = await checkPage('', 'id');
  t.diagnostic(`checked (try ${res.tries}):`);
  for (const line of res.lines) t.diagnostic(`  ${line}`);
  const unknown = Object.keys(res.exps).filter((k) => res.exps[k].unknown);
  assert.deepEqual(unknown.sort(), ['calls.service_level_1h', 'reports.open'], 'the changes that are unknown');
});
