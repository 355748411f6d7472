/*
 * mayor.js — the mayor's page (GET /mayor): headline numbers with their change
 * against the same time yesterday, the five agencies with the most overdue
 * tickets, the active alerts and the 30-day SLA trend, on a tablet.
 * Number elements follow the data-kpi convention described in ui.js;
 * docs/ui.md describes the page.
 *
 * Live data comes from the websocket (live.js). Besides it the page fetches,
 * each with a timeout and silently:
 *   GET /api/v1/kpis?at=<now − 24 h>                                  every 5 min (kpis null: no record)
 *   GET /api/v1/series?name=reports.received&window=48h&step=5m       every 5 min
 *   GET /api/v1/series?name=reports.resolved&window=48h&step=5m       every 5 min
 *   GET /api/v1/series?name=calls.received&window=48h&step=5m         every 5 min
 *   GET /api/v1/series?name=reports.sla_met&window=30d&step=1d        every 15 min
 *   GET /api/v1/session                                               at load (session.js): who is watching
 * A 401 anywhere (the session expired or was revoked) leaves for the login page.
 */
(function () {
  'use strict';

  const { h, setNum, num, renderIfChanged } = UI;
  const F = I18n.fmt;
  const $ = (id) => document.getElementById(id);

  const TOP_AGENCIES = 5;
  const DAY_MS = 24 * 3600 * 1000;
  const YESTERDAY_MS = 5 * 60 * 1000; // refresh of the yesterday comparison
  const SLA_MS = 15 * 60 * 1000;      // refresh of the 30-day SLA trend
  const KEEP_MS = 15 * 60 * 1000;     // data whose refresh keeps failing is dropped after this

  let state = {};

  const known = (key) => UI.known(state, key);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Sensors at Siaga or Awas = by_level.siaga + by_level.awas. */
  function siagaAwas(byLevel) {
    if (!byLevel || typeof byLevel !== 'object') return null;
    const s = typeof byLevel.siaga === 'number' ? byLevel.siaga : null;
    const a = typeof byLevel.awas === 'number' ? byLevel.awas : null;
    return s == null && a == null ? null : (s || 0) + (a || 0);
  }

  function renderSiagaAwas() {
    const siaga = UI.byLevel(state, 'siaga');
    const awas = UI.byLevel(state, 'awas');
    setNum(document.querySelector('.value[data-kpi="sensors.by_level"][data-key="siaga+awas"]'),
      siagaAwas(state['sensors.by_level']), F.int);
    const card = $('card-siaga-awas');
    card.classList.toggle('hot', (siaga || 0) > 0 && !awas);
    card.classList.toggle('danger', (awas || 0) > 0);
  }

  // ---- change against the same time yesterday ------------------------------------

  /**
   * The headline numbers compared. better: +1 when more is better, -1 when more
   * is worse, 0 when neither (colour stays neutral). series: the day's count can
   * be recomputed for yesterday from this series.
   */
  const DELTAS = [
    { kpi: 'reports.received_today', series: 'reports.received', better: 0 },
    { kpi: 'reports.resolved_today', series: 'reports.resolved', better: +1 },
    { kpi: 'reports.open', better: -1 },
    { kpi: 'reports.overdue', better: -1 },
    { kpi: 'reports.sla_met_30d', ratio: true, better: +1 },
    { kpi: 'calls.received_today', series: 'calls.received', better: 0 },
    { kpi: 'calls.service_level_1h', ratio: true, better: +1 },
    { kpi: 'sensors.by_level', key: 'siaga+awas', better: -1 },
  ];

  /** The KPI record at or before now − 24 h: {at, kpis, fetched} or null (none, or not known). */
  let history = null;
  /** 48 h series by name: {stepMs, buckets: [{t, count}], fetched}. */
  const series = new Map();

  function valueOf(d, kpis) {
    if (!kpis) return null;
    const v = d.key === 'siaga+awas' ? siagaAwas(kpis[d.kpi]) : kpis[d.kpi];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  /**
   * Yesterday's count by this time from a 48 h series of 5-minute buckets: the
   * buckets from 00:00 WIB yesterday up to the one holding now − 24 h (the same
   * buckets as today's, 24 h earlier, the one still filling included).
   */
  function fromSeries(name, nowMs) {
    const sr = series.get(name);
    if (!sr || !sr.buckets.length) return null;
    const cut = nowMs - DAY_MS;
    const from = I18n.tz.startOfDay(cut);
    const bs = sr.buckets;
    if (bs[0].t > from || bs[bs.length - 1].t + sr.stepMs <= cut) return null; // not covered
    let sum = 0;
    for (const b of bs) if (b.t >= from && b.t <= cut && typeof b.count === 'number') sum += b.count;
    return sum;
  }

  /** Yesterday's value of a headline number: {value, source, at} or null when unknown. */
  function baseline(d, nowMs) {
    if (d.series) {
      const v = fromSeries(d.series, nowMs);
      if (v != null) return { value: v, source: 'series', at: new Date(nowMs - DAY_MS).toISOString() };
    }
    if (!history) return null;
    // A "today" count from the record only if the record is of yesterday's day
    // (just after midnight, the record may be from the day before).
    if (d.series && I18n.tz.startOfDay(Date.parse(history.at)) !== I18n.tz.startOfDay(nowMs - DAY_MS)) return null;
    const v = valueOf(d, history.kpis);
    return v == null ? null : { value: v, source: 'history', at: history.at };
  }

  function fmtValue(d, v) {
    return d.ratio ? F.pct(v) : F.int(v);
  }

  function renderDeltas() {
    const nowMs = Date.now();
    for (const d of DELTAS) {
      // (The Siaga/Awas change has no data-key: a data-key with "+" means a plain sum.)
      const numEl = document.querySelector(`.delta [data-kpi="${d.kpi}"][data-derived="change_24h"]`);
      if (!numEl) continue;
      const box = numEl.closest('.delta');
      const cur = valueOf(d, state);
      const base = baseline(d, nowMs);
      const arrow = box.querySelector('.arrow');
      const unit = box.querySelector('.unit');
      const sr = box.querySelector('.sr-only');

      if (cur == null || base == null) {
        // Unknown: no arrow and no zero, just "—".
        box.className = 'delta unknown';
        arrow.textContent = '';
        unit.textContent = '';
        setNum(numEl, null, F.int);
        numEl.dataset.base = base ? JSON.stringify(base.value) : 'null';
        delete numEl.dataset.source;
        delete numEl.dataset.baseAt;
        sr.textContent = I18n.t('delta.sr_unknown');
        box.removeAttribute('title');
        continue;
      }

      // (rounded to 1e-9 so that ratios do not carry floating-point noise)
      const diff = Math.round((cur - base.value) * 1e9) / 1e9;
      // Ratios: a change that rounds to 0,0 points counts as no change.
      const same = d.ratio ? Math.abs(diff) < 0.0005 : diff === 0;
      const dir = same ? 'same' : diff > 0 ? 'up' : 'down';
      let judge = 'neutral';
      if (!same && d.better !== 0) judge = (diff > 0) === (d.better > 0) ? 'good' : 'bad';

      box.className = `delta ${dir} ${judge}`;
      arrow.textContent = dir === 'up' ? '▲' : dir === 'down' ? '▼' : '=';
      setNum(numEl, diff, (v) => (d.ratio ? F.pp(v) : F.int(Math.abs(v))));
      unit.textContent = d.ratio ? I18n.t('delta.pp') : '';
      numEl.dataset.base = JSON.stringify(base.value);
      numEl.dataset.source = base.source;
      numEl.dataset.baseAt = base.at;

      const baseText = fmtValue(d, base.value);
      if (same) {
        sr.textContent = I18n.t('delta.sr_same', { base: baseText });
      } else {
        const amount = numEl.textContent + (d.ratio ? ' ' + I18n.t('delta.pp_long') : '');
        sr.textContent = I18n.t('delta.sr', { dir: I18n.t('delta.' + dir), diff: amount, base: baseText }) +
          (judge === 'good' ? ', ' + I18n.t('delta.better') : judge === 'bad' ? ', ' + I18n.t('delta.worse') : '');
      }
      box.title = I18n.t('delta.title', {
        base: baseText, source: I18n.t('delta.source.' + base.source), at: F.when(base.at),
      });
    }
  }

  async function loadHistory() {
    const at = new Date(Date.now() - DAY_MS).toISOString();
    const res = await UI.getJSON(`/api/v1/kpis?at=${encodeURIComponent(at)}`);
    if (res.ok && res.body && res.body.kpis && typeof res.body.kpis === 'object' && typeof res.body.at === 'string') {
      history = { at: res.body.at, kpis: res.body.kpis, fetched: Date.now() };
    } else if ((res.ok && res.body && res.body.kpis === null) || (history && Date.now() - history.fetched > KEEP_MS)) {
      history = null; // no record for that time: the comparison is unknown, not zero
    }
    renderDeltas();
  }

  async function loadCountSeries(name) {
    const res = await UI.getJSON(`/api/v1/series?name=${encodeURIComponent(name)}&window=48h&step=5m`);
    const body = res.ok ? res.body : null;
    if (body && Array.isArray(body.buckets) && body.step_s > 0) {
      series.set(name, {
        stepMs: body.step_s * 1000,
        fetched: Date.now(),
        buckets: body.buckets.map((b) => ({ t: Date.parse(b.t), count: b.count })),
      });
    } else if (series.has(name) && Date.now() - series.get(name).fetched > KEEP_MS) {
      series.delete(name);
    }
    renderDeltas();
  }

  async function loadYesterday() {
    await loadHistory();
    for (const name of ['reports.received', 'reports.resolved', 'calls.received']) {
      await sleep(250);
      await loadCountSeries(name);
    }
  }

  // ---- the 30-day SLA trend -------------------------------------------------------------

  let sla = null; // {points, fetched}

  async function loadSla() {
    const res = await UI.getJSON('/api/v1/series?name=reports.sla_met&window=30d&step=1d');
    const body = res.ok ? res.body : null;
    if (body && Array.isArray(body.buckets)) {
      sla = {
        fetched: Date.now(),
        points: body.buckets.map((b) => ({
          t: Date.parse(b.t),
          v: typeof b.ratio === 'number' ? b.ratio : null,
          resolved: b.resolved,
          met: b.met,
        })),
      };
    } else if (sla && Date.now() - sla.fetched > KEEP_MS) {
      sla = null;
    }
    drawSla();
  }

  function drawSla() {
    const el = $('sla-chart');
    const pts = sla ? sla.points : [];
    const vals = pts.map((p) => p.v).filter((v) => typeof v === 'number');
    const ref = typeof state['reports.sla_met_30d'] === 'number' ? state['reports.sla_met_30d'] : null;
    const sig = JSON.stringify([pts, ref]);
    if (el.dataset.sig === sig) return;
    el.dataset.sig = sig;
    const n = pts.length;
    Charts.line(el, {
      points: pts.map((p) => ({
        t: p.t,
        v: p.v,
        title: p.v == null
          ? I18n.t('chart.sla.none', { day: F.day(p.t) })
          : I18n.t('chart.sla.point', { day: F.day(p.t), pct: F.pct(p.v), met: F.int(p.met), resolved: F.int(p.resolved) }),
      })),
      ref,
      // A date every 7 days, counted back from today (the last point).
      xTick: (t, i) => ((n - 1 - i) % 7 === 0 ? F.day(t) : null),
      label: n ? I18n.t('chart.sla.aria', {
        from: F.day(pts[0].t),
        to: F.day(pts[n - 1].t),
        min: vals.length ? F.pct(Math.min(...vals)) : UI.DASH,
        max: vals.length ? F.pct(Math.max(...vals)) : UI.DASH,
        value: ref == null ? UI.DASH : F.pct(ref),
      }) : '',
    });
  }

  // ---- lists -------------------------------------------------------------------------------

  function renderAgencies() {
    const body = $('agencies');
    const rows = UI.agenciesByOverdue(state['reports.by_agency']).slice(0, TOP_AGENCIES);
    const sig = [known('reports.by_agency'), rows.map((a) => [a.agency, a.overdue, a.open, a.sla_met_30d])];
    renderIfChanged(body, sig, () => {
      if (!rows.length) {
        return known('reports.by_agency')
          ? h('tr', { class: 'empty' }, h('td', { colspan: 4 }, I18n.t('reports.no_agency')))
          : [];
      }
      return rows.map((a) =>
        h('tr', { class: a.overdue > 0 ? 'has-overdue' : null },
          h('th', { scope: 'row' }, String(a.agency)),
          num('td', 'reports.by_agency', a.agency, 'overdue', a.overdue, F.int, 'num n overdue'),
          num('td', 'reports.by_agency', a.agency, 'open', a.open, F.int, 'num n'),
          num('td', 'reports.by_agency', a.agency, 'sla_met_30d', a.sla_met_30d, F.pct, 'num n')));
    });
  }

  function renderAlerts() {
    const list = $('alert-list');
    const alerts = UI.activeAlerts(state);
    const names = UI.sensorNames(state);
    setNum(document.querySelector('[data-kpi="alerts.active"][data-field="length"]'),
      known('alerts.active') ? alerts.length : null, F.int);
    document.body.classList.toggle('has-awas', alerts.some((a) => a.severity === 'awas'));

    const now = new Date();
    const sig = [known('alerts.active'), alerts.map((a) => UI.alertSignature(a, names, now))];
    renderIfChanged(list, sig, () => {
      if (!alerts.length) return UI.emptyItem(state, 'alerts.active', 'alerts.none', 'empty ok');
      return alerts.map((a) => UI.alertItem(a, names, now));
    });
  }

  function render(changed) {
    const has = (prefix) => !changed || changed.some((k) => k.startsWith(prefix));
    UI.renderStatic(state);
    if (has('sensors.by_level')) renderSiagaAwas();
    if (has('reports.by_agency')) renderAgencies();
    if (has('alerts.') || has('sensors.latest')) renderAlerts();
    if (changed == null || DELTAS.some((d) => changed.includes(d.kpi))) renderDeltas();
    if (has('reports.sla_met_30d')) drawSla();
  }

  function init() {
    I18n.apply(document);
    UI.setupLangSwitch($('lang-switch'));
    UI.startClock($('clock'), $('date'));
    render(null);
    // The tenant titles the page and sets the zone: every time is shown again.
    // A province looking at one member gets its way back to the roll-up.
    Session.start({
      onChange: (id, tenantChanged) => {
        const back = $('to-province');
        back.hidden = !(id && id.role === 'province');
        back.href = '/provinsi' + (I18n.lang === 'en' ? '?lang=en' : '');
        if (tenantChanged) render(null);
      },
    });

    const statusEls = { overlay: $('stale'), lastEl: $('stale-last'), updatedEl: $('updated') };
    Live.start({
      onState(s, changed) {
        state = s;
        render(changed);
      },
      onStatus(status) {
        UI.showStatus(status, statusEls);
      },
      onRejected: Session.check,
    });

    UI.every(YESTERDAY_MS, loadYesterday, 200);
    UI.every(SLA_MS, loadSla, 1400);

    // Alert times show a date once they are not from today; "now − 24 h" moves on.
    setInterval(() => renderAlerts(), 60000);
    setInterval(() => renderDeltas(), 30000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
