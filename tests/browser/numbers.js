'use strict';
/*
 * The text every number of the pages must show, worked out here from the
 * API's value as docs/ui.md says, never from the pages' own formatting code:
 *
 * - "Languages, numbers and times": Intl.NumberFormat with id-ID (`1.234`,
 *   `87,5%`, `2,3 poin`) or en-US with ?lang=en (`1,234`, `87.5%`, `2.3 pp`);
 *   ratios as percentages with one decimal;
 * - "Numbers: the data-kpi convention": `—` for null; a `change_24h`
 *   element shows the absolute value of *today − yesterday* beside an arrow,
 *   in percentage points for ratios;
 * - "The change against the same time yesterday": `▲ 12`, `▼ 2,3 poin`,
 *   `= 0`, "vs kemarin" / "vs yesterday"; unknown: no arrow and no zero,
 *   just `—`;
 * - the wall's gauges show "its latest value and unit" (the unit of
 *   GET /api/v1/kpis' sensors.latest).
 *
 * Every [data-kpi] element has a kind here (a count, a ratio, a measurement
 * with its unit, a change against yesterday); an element of a kind this file
 * does not know is a problem, never skipped.  The formatters are Node's own
 * Intl, checked at load against the examples docs/ui.md gives.
 */

const assert = require('node:assert/strict');

const { expectedValue, describe } = require('./harness');

const DASH = '—';

/** Per language: the locale docs/ui.md names, the words it uses, the units. */
const LANGS = {
  id: {
    locale: 'id-ID',
    pp: 'poin',
    vs: 'vs kemarin',
    // calls.asa_1h_s is seconds, reports.resolution_p50_30d_h hours (kpis.md):
    // the unit shown after them, as written in each language.
    units: { s: ['dtk', 'detik'], h: ['jam'] },
    shape: {
      int: /^\d{1,3}(\.\d{3})*$/,
      pct: /^\d{1,3},\d%$/,
      pp: /^\d{1,3}(\.\d{3})*,\d$/,
      dec: /^\d{1,3}(\.\d{3})*(,\d+)?$/,
    },
  },
  en: {
    locale: 'en-US',
    pp: 'pp',
    vs: 'vs yesterday',
    units: { s: ['s', 'sec'], h: ['h', 'hr', 'hrs'] },
    shape: {
      int: /^\d{1,3}(,\d{3})*$/,
      pct: /^\d{1,3}\.\d%$/,
      pp: /^\d{1,3}(,\d{3})*\.\d$/,
      dec: /^\d{1,3}(,\d{3})*(\.\d+)?$/,
    },
  },
};

/** Formatters of one language (Node's Intl, not the page's). */
function formatter(lang) {
  const L = LANGS[lang];
  assert.ok(L, `no language "${lang}"`);
  const nf = (o) => new Intl.NumberFormat(L.locale, o);
  const int = nf({ maximumFractionDigits: 0 });
  const pct = nf({ style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const one = nf({ minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return {
    lang,
    L,
    int: (v) => int.format(v),
    pct: (v) => pct.format(v),
    /** A difference of two ratios in percentage points, unsigned, one decimal. */
    pp: (v) => one.format(Math.abs(v) * 100),
    dec: (v, max, min = 0) => nf({ minimumFractionDigits: min, maximumFractionDigits: max }).format(v),
  };
}

// The examples of docs/ui.md, so that a Node whose Intl formats otherwise
// fails here rather than blaming the pages.
{
  const id = formatter('id');
  const en = formatter('en');
  assert.deepEqual([id.int(1234), id.pct(0.875), id.pp(0.023)], ['1.234', '87,5%', '2,3'], 'Node\'s id-ID Intl');
  assert.deepEqual([en.int(1234), en.pct(0.875), en.pp(0.023)], ['1,234', '87.5%', '2.3'], 'Node\'s en-US Intl');
}

// ---------------------------------------------------------------------------
// What kind of number each element is
// ---------------------------------------------------------------------------

const COUNTS = new Set(['calls.received_today', 'calls.waiting', 'calls.active', 'reports.open',
  'reports.overdue', 'reports.unassigned', 'reports.received_today', 'reports.resolved_today',
  'sensors.offline', 'sensors.total']);
const COUNT_MAPS = new Set(['calls.by_category_today', 'reports.by_district_open', 'sensors.by_level']);
const RATIOS = new Set(['calls.service_level_1h', 'calls.abandon_rate_1h', 'reports.sla_met_30d']);
/** Plain KPIs shown with a unit: the unit's kind. */
const MEASURES = { 'calls.asa_1h_s': 's', 'reports.resolution_p50_30d_h': 'h' };
/** List entries: field -> kind. */
const LIST_FIELDS = {
  'reports.by_agency': { overdue: 'count', open: 'count', sla_met_30d: 'ratio' },
  'sensors.latest': { value: 'gauge' },
};
/**
 * The mayor's eight changes against yesterday (docs/ui.md, "The change against
 * the same time yesterday"): whether a ratio, and whether more is better (+1),
 * worse (-1) or neither (0).
 */
const CHANGES = {
  'reports.received_today': { ratio: false, better: 0 },
  'reports.resolved_today': { ratio: false, better: +1 },
  'reports.open': { ratio: false, better: -1 },
  'reports.overdue': { ratio: false, better: -1 },
  'reports.sla_met_30d': { ratio: true, better: +1 },
  'calls.received_today': { ratio: false, better: 0 },
  'calls.service_level_1h': { ratio: true, better: +1 },
  'sensors.by_level': { ratio: false, better: -1 }, // siaga + awas
};

/** 'count' | 'ratio' | 'measure' | 'gauge' | 'change', or null for a kind not known here. */
function kindOf(el) {
  if (el.derived === 'count') return 'count';
  if (el.derived === 'sum') return COUNT_MAPS.has(el.kpi) ? 'count' : null;
  if (el.derived === 'change_24h') return CHANGES[el.kpi] && el.key == null && el.field == null ? 'change' : null;
  if (el.derived != null) return null;
  if (el.key == null && el.field == null) {
    if (COUNTS.has(el.kpi)) return 'count';
    if (RATIOS.has(el.kpi)) return 'ratio';
    if (MEASURES[el.kpi]) return 'measure';
    return null;
  }
  if (el.key != null && el.field == null) return COUNT_MAPS.has(el.kpi) ? 'count' : null;
  if (el.key != null && el.field != null) return (LIST_FIELDS[el.kpi] || {})[el.field] || null;
  return null;
}

/** The current value a change compares (siaga + awas for sensors.by_level), or null. */
function currentOf(kpi, kpis) {
  const v = kpis[kpi];
  if (kpi === 'sensors.by_level') {
    if (!v || typeof v !== 'object') return null;
    const s = typeof v.siaga === 'number' ? v.siaga : null;
    const a = typeof v.awas === 'number' ? v.awas : null;
    return s == null && a == null ? null : (s || 0) + (a || 0);
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

// ---------------------------------------------------------------------------
// Reading the page
// ---------------------------------------------------------------------------

/**
 * Every [data-kpi] element with what is needed to check its text:
 * attributes, own text, the text of its parent as displayed (for the unit
 * after a measurement), and for a change the pieces of its box: the texts of
 * the box's children hidden from screen readers (arrow, number, unit, "vs
 * kemarin", as seen), the rest of the box (the sentence for screen readers)
 * and the tooltip.  Also `unhooked`: elements styled as numbers (.num,
 * .value) that neither carry data-kpi nor contain an element that does.
 */
function readNumbers(page) {
  return page.evaluate(() => {
    const els = [...document.querySelectorAll('[data-kpi]')].map((el) => {
      const a = (n) => el.getAttribute(n);
      const r = {
        kpi: a('data-kpi'),
        key: a('data-key'),
        field: a('data-field'),
        derived: a('data-derived'),
        value: a('data-value'),
        base: a('data-base'),
        source: a('data-source'),
        baseAt: a('data-base-at'),
        text: el.textContent.trim(),
        parentText: el.parentElement ? el.parentElement.innerText.trim() : '',
      };
      if (r.derived === 'change_24h') {
        const box = el.parentElement;
        const kids = [...box.children];
        r.pieces = kids.filter((k) => k.getAttribute('aria-hidden') === 'true')
          .map((k) => ({ text: k.textContent.trim(), self: k === el }))
          .filter((p) => p.text !== '' || p.self);
        const spoken = kids.filter((k) => k.getAttribute('aria-hidden') !== 'true');
        r.sr = spoken.map((k) => k.textContent.trim()).filter(Boolean).join(' ');
        // The sentence is for screen readers only: not visible (a 1 px clipped box at most).
        r.srVisible = spoken.some((k) => {
          const b = k.getBoundingClientRect();
          const cs = getComputedStyle(k);
          return cs.display !== 'none' && b.width > 1 && b.height > 1 && !/rect\(0(px)?,? 0(px)?,? 0(px)?,? 0(px)?\)/.test(cs.clip);
        });
        r.title = box.getAttribute('title') || el.getAttribute('title') || '';
        r.colour = getComputedStyle(el).color;
        const card = el.closest('[data-card]');
        r.card = card ? card.dataset.card : null;
      }
      return r;
    });
    const unhooked = [...document.querySelectorAll('.num, .value')]
      .filter((el) => !el.hasAttribute('data-kpi') && !el.querySelector('[data-kpi]'))
      .map((el) => el.outerHTML.slice(0, 160));
    return { els, unhooked };
  });
}

/** 'green' | 'red' | 'other' for a CSS rgb()/rgba() colour, by hue and saturation. */
function colourName(css) {
  const m = /rgba?\(\s*(\d+)[ ,]+(\d+)[ ,]+(\d+)/.exec(css || '');
  if (!m) return 'other';
  const [r, g, b] = m.slice(1, 4).map((x) => Number(x) / 255);
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const l = (max + min) / 2;
  const d = max - min;
  if (d < 1e-6) return 'other';
  const s = d / (1 - Math.abs(2 * l - 1));
  let hue;
  if (max === r) hue = 60 * (((g - b) / d) % 6);
  else if (max === g) hue = 60 * ((b - r) / d + 2);
  else hue = 60 * ((r - g) / d + 4);
  if (hue < 0) hue += 360;
  if (s < 0.4) return 'other';
  if (hue >= 90 && hue <= 170) return 'green';
  if (hue >= 340 || hue <= 15) return 'red';
  return 'other';
}

// ---------------------------------------------------------------------------
// The expected texts
// ---------------------------------------------------------------------------

/**
 * What a change against yesterday must show, from today's value and
 * yesterday's (both numbers, or null for unknown).  Returns
 *   {unknown: true}  or
 *   {diff, dir: 'up'|'down'|'same', judge: 'good'|'bad'|'neutral',
 *    arrow, number, unit, amount, baseText, currentText}
 * amount is the difference as said in the sentence for screen readers.
 */
function expectedChange(kpi, current, base, fmt) {
  const c = CHANGES[kpi];
  if (current == null || base == null) return { unknown: true };
  const diff = current - base;
  // A ratio's change that rounds to 0,0 points is no change.
  const same = c.ratio ? Math.abs(diff) < 0.0005 : diff === 0;
  const dir = same ? 'same' : diff > 0 ? 'up' : 'down';
  const judge = same || c.better === 0 ? 'neutral' : (diff > 0) === (c.better > 0) ? 'good' : 'bad';
  const number = c.ratio ? fmt.pp(diff) : fmt.int(Math.abs(diff));
  return {
    diff,
    dir,
    judge,
    arrow: { up: '▲', down: '▼', same: '=' }[dir],
    number,
    unit: c.ratio ? fmt.L.pp : '',
    baseText: c.ratio ? fmt.pct(base) : fmt.int(base),
    currentText: c.ratio ? fmt.pct(current) : fmt.int(current),
  };
}

/**
 * Checks the pieces of a change's box as seen: [arrow, number, (unit), "vs
 * …"], or for unknown ["—", ("vs …")] with no arrow and no zero.  Returns a
 * list of problems.
 */
function checkChangePieces(el, exp, fmt) {
  const problems = [];
  const pieces = el.pieces || [];
  const texts = pieces.map((p) => p.text);
  const at = pieces.findIndex((p) => p.self);
  const where = `${describe(el)} shows ${JSON.stringify(texts)}`;
  if (at < 0) return [`${where}: the number is not among the box's visible parts`];
  const before = texts.slice(0, at);
  const after = texts.slice(at + 1);
  if (exp.unknown) {
    if (el.text !== DASH) problems.push(`${where}: unknown, so "${DASH}", not "${el.text}"`);
    if (before.length) problems.push(`${where}: unknown, so no arrow, yet ${JSON.stringify(before)} before the number`);
    if (after.length > 1 || (after.length === 1 && after[0] !== fmt.L.vs)) {
      problems.push(`${where}: unknown, so nothing after "${DASH}" but "${fmt.L.vs}"`);
    }
    if (texts.some((t) => /\d/.test(t))) problems.push(`${where}: unknown, yet a digit is shown`);
    return problems;
  }
  const want = [exp.arrow, exp.number, ...(exp.unit ? [exp.unit] : []), fmt.L.vs];
  if (JSON.stringify(texts) !== JSON.stringify(want)) problems.push(`${where}, expected ${JSON.stringify(want)}`);
  return problems;
}

/**
 * Checks the text of every element against the API's kpis, in language lang
 * ('id' or 'en').  els from readNumbers, read right before kpis.
 * Returns {checked: [descriptions], problems: [descriptions]}.
 */
function checkNumberTexts(read, kpis, lang) {
  const fmt = formatter(lang);
  const L = fmt.L;
  const checked = [];
  const problems = [];
  for (const html of read.unhooked) problems.push(`a number without data-kpi, which no test can check: ${html}`);

  const expectText = (el, want, what) => {
    checked.push(`${describe(el)} "${el.text}" (${what})`);
    if (el.text !== want) problems.push(`${describe(el)}: shows "${el.text}", expected "${want}" (${what})`);
  };
  for (const el of read.els) {
    const kind = kindOf(el);
    if (kind == null) {
      problems.push(`${describe(el)} "${el.text}": a number of a kind this test does not know how to check`);
      continue;
    }
    if (kind === 'change') {
      let base;
      try {
        base = el.base == null ? null : JSON.parse(el.base);
      } catch {
        problems.push(`${describe(el)}: data-base ${JSON.stringify(el.base)} is not JSON`);
        continue;
      }
      const exp = expectedChange(el.kpi, currentOf(el.kpi, kpis), typeof base === 'number' ? base : null, fmt);
      checked.push(`${describe(el)} ${JSON.stringify((el.pieces || []).map((p) => p.text))} (change, ` +
        `${exp.unknown ? 'unknown' : `${exp.currentText} against ${exp.baseText}`})`);
      problems.push(...checkChangePieces(el, exp, fmt));
      if (!exp.unknown) {
        const shown = el.value == null ? NaN : Number(el.value);
        if (!(Math.abs(shown - exp.diff) < 1e-9)) {
          problems.push(`${describe(el)}: data-value ${el.value}, expected today − yesterday = ${exp.diff}`);
        }
      } else if (el.value !== 'null') {
        problems.push(`${describe(el)}: unknown, so data-value null, not ${el.value}`);
      }
      continue;
    }

    const e = expectedValue(el, kpis);
    if (e.error || e.skip) {
      problems.push(`${describe(el)}: ${e.error || 'no value in the API to format'}`);
      continue;
    }
    const v = e.value === undefined ? null : e.value;
    if (v === null) {
      expectText(el, DASH, 'null');
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      problems.push(`${describe(el)}: the API's value ${JSON.stringify(v)} is not a number`);
      continue;
    }
    if (kind === 'count') {
      if (!Number.isInteger(v) || v < 0) problems.push(`${describe(el)}: the API's count ${v} is not a whole number`);
      expectText(el, fmt.int(v), 'count');
      if (!L.shape.int.test(el.text)) problems.push(`${describe(el)}: "${el.text}" is not a ${L.locale} count`);
    } else if (kind === 'ratio') {
      expectText(el, fmt.pct(v), 'percentage with one decimal');
      if (!L.shape.pct.test(el.text)) problems.push(`${describe(el)}: "${el.text}" is not a ${L.locale} percentage`);
    } else {
      // A measurement: docs/ui.md does not fix its decimals, so as many as the
      // page shows (0 to 3), rounded from the API's value, in the language's
      // format; a gauge's reading that is not whole keeps at least one.
      const sep = lang === 'id' ? ',' : '.';
      const digits = el.text.includes(sep) ? el.text.split(sep).pop().length : 0;
      const fits = digits <= 3 && L.shape.dec.test(el.text) &&
        [0, digits].some((min) => fmt.dec(v, digits, min) === el.text);
      checked.push(`${describe(el)} "${el.text}" (${kind === 'gauge' ? 'gauge reading' : 'measurement'} with its unit)`);
      if (!fits) {
        problems.push(`${describe(el)}: shows "${el.text}" for ${v}, expected the ${L.locale} number rounded to ` +
          `0 to 3 decimals ("${fmt.dec(v, 0)}", "${fmt.dec(v, 1)}", "${fmt.dec(v, 2)}")`);
      }
      if (kind === 'gauge' && !Number.isInteger(v) && digits < 1) {
        problems.push(`${describe(el)}: shows "${el.text}" for ${v}: a reading that is not whole keeps a decimal`);
      }
      // The unit after the number, in the same box.
      const units = kind === 'gauge' ? [itemUnit(el, kpis)] : L.units[MEASURES[el.kpi]];
      const after = el.parentText.replace(/\s+/g, '');
      const own = el.text.replace(/\s+/g, '');
      if (!units.some((u) => u != null && after === own + u.replace(/\s+/g, ''))) {
        problems.push(`${describe(el)}: "${el.parentText}" is not "${el.text}" followed by its unit ` +
          `(${units.map((u) => JSON.stringify(u)).join(' or ')})`);
      }
    }
  }
  return { checked, problems };
}

/** The unit of a sensors.latest entry in the API. */
function itemUnit(el, kpis) {
  const list = kpis[el.kpi];
  const item = Array.isArray(list) ? list.find((s) => s && s.sensor_id === el.key) : null;
  return item && typeof item.unit === 'string' ? item.unit : null;
}

module.exports = {
  DASH,
  LANGS,
  CHANGES,
  formatter,
  kindOf,
  currentOf,
  readNumbers,
  colourName,
  expectedChange,
  checkChangePieces,
  checkNumberTexts,
};
