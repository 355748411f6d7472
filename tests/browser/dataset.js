'use strict';
/*
 * The data set the browser tests show on the pages: a seeded, plausible slice
 * of Semarang's command centre, relative to the moment of generation `now`.
 *
 * - 112 calls: ~40 in the last hour (answered, closed, abandoned, still
 *   waiting) and ~260 older ones over the last 20 hours;
 * - ~1 300 citizen tickets: more than a thousand open (so counts need a
 *   thousands separator), some overdue, some rejected, a few reopened, and
 *   exactly 80 resolved in the last 30 days of which 70 within the 72 h SLA
 *   (reports.sla_met_30d = 0.875, shown as "87,5%"); the agency with the
 *   most overdue tickets resolved none, so its sla_met_30d is null;
 * - six river gauges of data/semarang.json with 3- and 4-level ladders:
 *   one at siaga, one at awas, one at waspada, two normal (one below 10 cm,
 *   so it is shown with a decimal comma), and one silent for three hours,
 *   which makes it offline.  So three alerts are active.
 *
 * Every event time keeps clear of the sliding windows' edges (now - 1 h,
 * - 24 h, - 72 h, - 30 d) and of `offline_after_s` by at least 10 minutes,
 * so the values do not move while the tests look at them.  No event is in
 * the future.  "Today" (WIB) is whatever it is: a run across midnight WIB
 * may see the *_today numbers drop, on the page and in the API alike.
 */

const fs = require('node:fs');
const path = require('node:path');

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const REPORT_CATEGORIES = ['flood', 'road', 'drainage', 'waste', 'streetlight', 'traffic',
  'public_order', 'health', 'administration', 'other'];

const TITLES = {
  flood: 'Genangan air setinggi lutut',
  road: 'Jalan berlubang',
  drainage: 'Saluran air tersumbat',
  waste: 'Sampah menumpuk di TPS',
  streetlight: 'Lampu PJU mati',
  traffic: 'Lampu lalu lintas mati di simpang',
  public_order: 'PKL menutup trotoar',
  health: 'Sarang nyamuk DBD di lahan kosong',
  administration: 'KTP-el belum jadi',
  other: 'Pohon tumbang',
};

/*
 * The gauges: id in data/semarang.json, the last value, how long ago it was
 * read, and offline_after_s.  Levels follow from the file's thresholds.
 */
const GAUGES = [
  { id: 'SMG-BKB-SIMONGAN', last: 312.5, agoMs: 2 * MIN, offlineAfterS: 3600 },       // siaga (300/400)
  { id: 'SMG-GARANG-KALIGARANG', last: 362.25, agoMs: 2 * MIN, offlineAfterS: 3600 }, // awas (250/350)
  { id: 'SMG-KREO-JATIBARANG', last: 171.5, agoMs: 3 * MIN, offlineAfterS: 3600 },    // waspada (150/220/300)
  { id: 'SMG-BKB-MUARA', last: 120.75, agoMs: 2 * MIN, offlineAfterS: 3600 },         // normal (180/240)
  { id: 'SMG-BKT-KALIGAWE', last: 7.25, agoMs: 4 * MIN, offlineAfterS: 3600 },        // normal (200/260)
  { id: 'SMG-SEMARANG-BOEZEM', last: 95, agoMs: 3 * HOUR, offlineAfterS: 900 },       // offline
];

/** mulberry32: a small seeded PRNG, so that a run can be reproduced. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    between: (lo, hi) => lo + next() * (hi - lo),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(next() * list.length)],
  };
}

/** Epoch milliseconds -> RFC 3339 in WIB with milliseconds. */
function wib(ms) {
  return new Date(Math.round(ms) + 7 * HOUR).toISOString().replace('Z', '+07:00');
}

function loadSemarang(repo) {
  return JSON.parse(fs.readFileSync(path.join(repo, 'data', 'semarang.json'), 'utf8'));
}

/**
 * Generate the data set.  Returns
 *   { sensors: [{id, body}], events: [...], expect: {...} }
 * where expect holds the few values the set is built to produce.
 */
function generate(repo, now, seed = 20261123) {
  const city = loadSemarang(repo);
  const rnd = prng(seed);
  const districts = city.districts.map((d) => d.name);
  const callCategories = city.call_categories;
  const handlers = (cat) => {
    const list = city.agencies.filter((a) => a.handles.includes(cat)).map((a) => a.code);
    return list.length ? list : ['DPU'];
  };
  const latest = now - MIN; // nothing later than this

  const events = [];
  const ev = (id, type, at, body, extra) => {
    if (at > latest) throw new Error(`dataset: event ${id} would be in the last minute`);
    events.push({ id, type, occurred_at: wib(at), ...(extra || {}), [type]: body });
  };

  // ---- calls --------------------------------------------------------------
  let callNo = 0;
  const call = (received, fate) => {
    callNo++;
    const id = `BT-112-${String(callNo).padStart(5, '0')}`;
    const district = rnd.pick(districts);
    ev(`${id}/received`, 'call', received, { call_id: id, status: 'received', category: rnd.pick(callCategories) },
      { district });
    if (fate === 'answered' || fate === 'closed') {
      const answered = received + rnd.between(4, 45) * SEC;
      ev(`${id}/answered`, 'call', answered, { call_id: id, status: 'answered' });
      if (fate === 'closed') {
        const closed = Math.min(latest, answered + rnd.between(60, 240) * SEC);
        ev(`${id}/closed`, 'call', closed, { call_id: id, status: 'closed' });
      }
    } else if (fate === 'abandoned') {
      ev(`${id}/abandoned`, 'call', received + rnd.between(15, 90) * SEC, { call_id: id, status: 'abandoned' });
    }
  };
  // The last hour: received between 50 and 4 minutes ago (answers within 45 s).
  for (let i = 0; i < 40; i++) {
    const r = rnd.next();
    const fate = r < 0.3 ? 'answered' : r < 0.62 ? 'closed' : r < 0.8 ? 'abandoned' : 'waiting';
    call(now - rnd.between(4 * MIN, 50 * MIN), fate);
  }
  // Earlier: received between 20 h and 75 min ago.
  for (let i = 0; i < 260; i++) {
    const r = rnd.next();
    const fate = r < 0.85 ? 'closed' : r < 0.9 ? 'answered' : 'abandoned';
    call(now - rnd.between(75 * MIN, 20 * HOUR), fate);
  }

  // ---- citizen tickets -----------------------------------------------------
  let ticketNo = 0;
  const expect = { open: 0, overdue: 0, resolved30d: 0, withinSla30d: 0 };
  const ticket = (received, steps, fixed) => {
    ticketNo++;
    const id = `BT-LPR-${String(ticketNo).padStart(6, '0')}`;
    const category = fixed ? fixed.category : rnd.pick(REPORT_CATEGORIES);
    const agency = fixed ? fixed.agency : rnd.pick(handlers(category));
    ev(`${id}/1`, 'report', received, { ticket: id, status: 'received', category, title: TITLES[category] },
      { district: rnd.pick(districts) });
    let n = 1;
    for (const [status, at] of steps) {
      n++;
      const body = { ticket: id, status };
      if (status === 'dispatched') body.agency = agency;
      ev(`${id}/${n}`, 'report', at, body);
    }
  };
  const early = (received, lo, hi) => Math.min(latest, received + rnd.between(lo, hi));

  // Open and recent (received 1 h to 59 h ago): not overdue.
  for (let i = 0; i < 1150; i++) {
    const r = now - rnd.between(1 * HOUR, 59 * HOUR);
    const d = early(r, 10 * MIN, 50 * MIN);
    const x = rnd.next();
    if (x < 0.3) ticket(r, []);
    else if (x < 0.7) ticket(r, [['dispatched', d]]);
    else ticket(r, [['dispatched', d], ['in_progress', early(d, 5 * MIN, 9 * MIN)]]);
    expect.open++;
  }
  // Open and overdue (received 4 to 10 days ago).
  for (let i = 0; i < 45; i++) {
    const r = now - rnd.between(4 * DAY, 10 * DAY);
    const d = r + rnd.between(1 * HOUR, 20 * HOUR);
    ticket(r, rnd.next() < 0.5 ? [['dispatched', d]] : [['dispatched', d], ['in_progress', d + 2 * HOUR]]);
    expect.open++;
    expect.overdue++;
  }
  // The fire brigade holds the most overdue tickets and resolved none in 30
  // days: its sla_met_30d is null (shown as "—").
  for (let i = 0; i < 12; i++) {
    const r = now - rnd.between(4 * DAY, 10 * DAY);
    ticket(r, [['dispatched', r + HOUR]], { category: 'other', agency: 'DAMKAR' });
    expect.open++;
    expect.overdue++;
  }
  // Resolved within the SLA, days ago (received 3 to 23 days ago, 2 h to 70 h).
  for (let i = 0; i < 62; i++) {
    const r = now - rnd.between(3 * DAY, 23 * DAY);
    const dur = rnd.between(2 * HOUR, 70 * HOUR);
    ticket(r, [['dispatched', r + 30 * MIN], ['in_progress', r + 60 * MIN], ['resolved', r + dur]]);
    expect.resolved30d++;
    expect.withinSla30d++;
  }
  // Resolved late (received 9 to 24 days ago, after 80 h to 200 h).
  for (let i = 0; i < 10; i++) {
    const r = now - rnd.between(9 * DAY, 24 * DAY);
    const dur = rnd.between(80 * HOUR, 200 * HOUR);
    ticket(r, [['dispatched', r + 2 * HOUR], ['resolved', r + dur]]);
    expect.resolved30d++;
  }
  // Resolved in the last 40 minutes (received 2 to 6 hours ago).
  for (let i = 0; i < 8; i++) {
    const r = now - rnd.between(2 * HOUR, 6 * HOUR);
    const res = now - rnd.between(6 * MIN, 40 * MIN);
    ticket(r, [['dispatched', r + 20 * MIN], ['resolved', res]]);
    expect.resolved30d++;
    expect.withinSla30d++;
  }
  // Rejected (1 to 10 days ago).
  for (let i = 0; i < 12; i++) {
    const r = now - rnd.between(1 * DAY, 10 * DAY);
    ticket(r, [['rejected', r + 3 * HOUR]]);
  }
  // Reopened: resolved, then in progress again (open, not in the 30-day figures).
  for (let i = 0; i < 3; i++) {
    const r = now - rnd.between(10 * HOUR, 40 * HOUR);
    ticket(r, [['dispatched', r + HOUR], ['resolved', r + 5 * HOUR], ['in_progress', r + 6 * HOUR]]);
    expect.open++;
  }
  // Resolved more than 30 days ago: counted nowhere any more.
  for (let i = 0; i < 10; i++) {
    const r = now - rnd.between(40 * DAY, 50 * DAY);
    ticket(r, [['dispatched', r + HOUR], ['resolved', r + 20 * HOUR]]);
  }

  // ---- gauges ----------------------------------------------------------------
  const sensors = [];
  const levels = { normal: 0, waspada: 0, siaga: 0, awas: 0 };
  let offline = 0;
  let levelAlerts = 0;
  for (const g of GAUGES) {
    const info = city.gauges.find((x) => x.id === g.id);
    if (!info) throw new Error(`dataset: gauge ${g.id} is not in data/semarang.json`);
    sensors.push({
      id: g.id,
      body: {
        name: `${info.river} - ${info.name}`,
        metric: 'water_level',
        unit: 'cm',
        district: info.district,
        location: { lat: info.lat, lon: info.lon },
        thresholds: info.thresholds,
        offline_after_s: g.offlineAfterS,
      },
    });
    // 24 readings 5 minutes apart, rising towards the last value.
    const lastAt = now - g.agoMs;
    for (let k = 23; k >= 0; k--) {
      const at = lastAt - k * 5 * MIN;
      const value = k === 0 ? g.last : Math.round(g.last * (1 - k * 0.012) * 100 + rnd.between(-80, 80)) / 100;
      ev(`${g.id}@${wib(at)}`, 'sensor', at, { sensor_id: g.id, value });
    }
    const th = info.thresholds;
    const level = th.awas != null && g.last >= th.awas ? 'awas'
      : th.siaga != null && g.last >= th.siaga ? 'siaga'
        : th.waspada != null && g.last >= th.waspada ? 'waspada' : 'normal';
    if (g.agoMs > g.offlineAfterS * SEC) offline++;
    else {
      levels[level]++;
      if (level === 'siaga' || level === 'awas') levelAlerts++;
    }
  }

  return {
    sensors,
    events,
    expect: {
      reportsOpen: expect.open,
      reportsOverdue: expect.overdue,
      slaMet30d: expect.withinSla30d / expect.resolved30d,
      sensorsTotal: GAUGES.length,
      sensorsOffline: offline,
      byLevel: levels,
      alertsActive: levelAlerts + offline,
    },
  };
}

module.exports = { generate, wib, GAUGES, SEC, MIN, HOUR, DAY };
