/*
 * wall.js — the wall screen (GET /): live KPIs for the control room, 1920x1080
 * and up, read from 5 m, no scrolling. Number elements follow the data-kpi
 * convention described in ui.js; docs/ui.md describes the page.
 *
 * Live data comes from the websocket (live.js). Besides it the page fetches,
 * each with a timeout and silently (a failure shows "—"; staleness is the
 * websocket's business):
 *   GET /api/v1/series?name=calls.received&window=24h&step=1h     every 5 min and on the hour
 *   GET /api/v1/series?name=reports.received&window=24h&step=1h   idem
 *   GET /api/v1/sensors                                           every 5 min (thresholds)
 *   GET /api/v1/series?name=sensor:<id>&window=24h&step=15m       every 5 min per sensor, staggered
 *   POST /api/v1/alerts/{id}/ack                                  when an operator acknowledges
 *   GET /api/v1/session                                           at load (session.js): who is watching,
 *                                                                 and whether it may acknowledge
 * Alerts can be acknowledged from the screen only when the identity's `can`
 * lists "ack"; a 401 anywhere (the session expired or was revoked) leaves for
 * the login page.
 */
(function () {
  'use strict';

  const { h, setNum, num, renderIfChanged } = UI;
  const F = I18n.fmt;
  const $ = (id) => document.getElementById(id);

  const REFRESH_MS = 5 * 60 * 1000;   // series and thresholds
  const KEEP_MS = 15 * 60 * 1000;     // a chart whose refresh keeps failing is blanked after this
  const SPARK_STAGGER_MS = 150;       // between two sensors' series requests
  const NEW_ALERT_MS = 60 * 1000;     // an alert counts as new this long after it appeared
  const ACK_AUTOCLOSE_MS = 15 * 1000; // the dialog closes itself after a success...
  const ACK_IDLE_MS = 2 * 60 * 1000;  // ...or when left untouched

  let state = {};
  let live = null;

  const known = (key) => UI.known(state, key);
  const emptyItem = (key, label, cls) => UI.emptyItem(state, key, label, cls);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---- call centre -------------------------------------------------------------

  function renderCategories() {
    const list = $('call-categories');
    const rows = UI.sortedCounts(state['calls.by_category_today']);
    renderIfChanged(list, [known('calls.by_category_today'), rows], () => {
      if (!rows.length) return emptyItem('calls.by_category_today', 'calls.none_today');
      const max = Math.max(1, ...rows.map((r) => r[1]));
      return rows.map(([cat, n]) =>
        h('li', { class: 'bar-row' },
          h('span', { class: 'bar-label' }, I18n.category(cat)),
          h('span', { class: 'bar-track', 'aria-hidden': 'true' },
            h('span', { class: 'bar-fill', style: { width: `${((100 * n) / max).toFixed(1)}%` } })),
          num('span', 'calls.by_category_today', cat, null, n, F.int, 'num bar-num')));
    });
    fitList(list);
  }

  // ---- citizen reports -------------------------------------------------------------

  function renderAgencies() {
    const list = $('agencies');
    const rows = UI.agenciesByOverdue(state['reports.by_agency']);
    renderIfChanged(list, [known('reports.by_agency'), rows.map((a) => [a.agency, a.overdue, a.open])], () => {
      if (!rows.length) return emptyItem('reports.by_agency', 'reports.no_agency');
      return rows.map((a) =>
        h('li', { class: 'agency-row' + (a.overdue > 0 ? ' has-overdue' : '') },
          h('span', { class: 'name' }, String(a.agency)),
          num('span', 'reports.by_agency', a.agency, 'overdue', a.overdue, F.int, 'num overdue'),
          num('span', 'reports.by_agency', a.agency, 'open', a.open, F.int, 'num')));
    });
    fitList(list);
  }

  function renderDistricts() {
    const list = $('districts');
    const rows = UI.sortedCounts(state['reports.by_district_open']);
    renderIfChanged(list, [known('reports.by_district_open'), rows], () => {
      if (!rows.length) return emptyItem('reports.by_district_open', 'reports.no_district');
      return rows.map(([d, n]) =>
        h('li', { class: 'district-row' },
          h('span', { class: 'name' }, d),
          num('span', 'reports.by_district_open', d, null, n, F.int)));
    });
    fitList(list);
  }

  // ---- 24-hour trends (calls and reports received per hour) -----------------------

  const trends = {
    'calls.received': { el: 'trend-calls', title: 'trend.calls', data: null, at: 0 },
    'reports.received': { el: 'trend-reports', title: 'trend.reports', data: null, at: 0 },
  };

  async function loadTrend(name) {
    const tr = trends[name];
    const res = await UI.getJSON(`/api/v1/series?name=${encodeURIComponent(name)}&window=24h&step=1h`);
    const buckets = res.ok && res.body && Array.isArray(res.body.buckets) ? res.body.buckets : null;
    if (buckets) {
      tr.data = buckets.map((b) => ({ t: Date.parse(b.t), v: typeof b.count === 'number' ? b.count : null }));
      tr.at = Date.now();
    } else if (Date.now() - tr.at > KEEP_MS) {
      tr.data = null; // failures are silent; an old chart is blanked to "—"
    }
    drawTrend(name);
  }

  function drawTrend(name) {
    const tr = trends[name];
    Charts.bars($(tr.el), {
      buckets: tr.data || [],
      stepMs: 3600 * 1000,
      title: I18n.t(tr.title),
      // An hour label every 6 hours ("00:00", "06:00", ...) on the WIB clock.
      xTick: (t) => (F.hhmm(t).match(/^(00|06|12|18):00$/) ? F.hhmm(t) : null),
    });
  }

  function loadTrends() {
    return loadTrend('calls.received').then(() => sleep(300)).then(() => loadTrend('reports.received'));
  }

  /** Also refresh just after each full hour, when a new bar starts. */
  function scheduleHourly() {
    const next = 3600 * 1000 - (Date.now() % (3600 * 1000)) + 20 * 1000;
    setTimeout(() => {
      loadTrends();
      scheduleHourly();
    }, next);
  }

  // ---- sensors ---------------------------------------------------------------------

  function renderSensorSummary() {
    document.querySelectorAll('.level-summary [data-kpi="sensors.by_level"]').forEach((el) => {
      setNum(el, UI.byLevel(state, el.dataset.key), F.int);
    });
    const total = $('sensors-total');
    const n = state['sensors.total'];
    renderIfChanged(total, [n], () => {
      // "dari {n} sensor": the number gets its own data-kpi element.
      const [before, after] = I18n.t('sensors.of_total').split('{n}');
      return [before, num('span', 'sensors.total', null, null, n, F.int), after];
    });
  }

  function sensorValue(v) {
    return Math.abs(v) < 10 ? F.dec(v, 2) : F.dec(v, 1);
  }

  /** Rows by sensor_id, built once and then updated in place. */
  const rows = new Map();
  /** 24 h series by sensor_id: {stepMs, buckets: [{t, min, max, last}], at, appliedAt}. */
  const sparks = new Map();
  /** Thresholds by sensor_id, from GET /api/v1/sensors. */
  const thresholds = new Map();
  let sparkCycleDone = false;
  const sparkPending = new Set();

  function buildSensorRow(id) {
    const r = {
      li: h('li', { class: 'sensor', dataset: { sensorId: id } }),
      name: h('span', { class: 'name' }),
      spark: h('span', { class: 'spark', dataset: { series: 'sensor:' + id, state: 'loading' } }),
      value: num('span', 'sensors.latest', id, 'value', null, sensorValue),
      unit: h('span', { class: 'unit' }),
      badge: h('span', { class: 'badge' }),
      sig: '',
      sparkSig: '',
    };
    r.li.append(r.name, r.spark, h('span', { class: 'reading' }, r.value, r.unit), r.badge);
    return r;
  }

  function renderSensors() {
    const list = $('sensor-list');
    const sensors = Array.isArray(state['sensors.latest']) ? state['sensors.latest'] : [];
    // Two columns when there are too many gauges for one.
    list.classList.toggle('two-cols', sensors.length > 20);

    const ids = sensors.map((s) => s.sensor_id);
    renderIfChanged(list, [known('sensors.latest'), ids], () => {
      if (!sensors.length) return emptyItem('sensors.latest', 'sensors.none');
      return ids.map((id) => {
        if (!rows.has(id)) rows.set(id, buildSensorRow(id));
        return rows.get(id).li;
      });
    });
    for (const id of [...rows.keys()]) if (!ids.includes(id)) rows.delete(id);

    for (const s of sensors) {
      const r = rows.get(s.sensor_id);
      if (!r) continue;
      const lvl = UI.sensorLevel(s);
      const sig = JSON.stringify([s.name, s.unit, lvl]);
      if (sig !== r.sig) {
        r.sig = sig;
        r.li.className = `sensor lvl-${lvl}`;
        r.li.dataset.level = lvl;
        r.name.textContent = s.name || s.sensor_id;
        r.badge.className = `badge lvl-${lvl}`;
        r.badge.textContent = I18n.level(lvl);
      }
      setNum(r.value, s.value, sensorValue);
      r.unit.textContent = s.unit || '';
      r.unit.hidden = s.value == null || !s.unit;

      const sp = sparks.get(s.sensor_id);
      if (sp && typeof s.value === 'number') addReading(sp, Date.parse(s.at), s.value);
      drawSpark(s.sensor_id, lvl);

      if (sparkCycleDone && !sparks.has(s.sensor_id) && !sparkPending.has(s.sensor_id)) {
        loadSpark(s.sensor_id); // a sensor registered since the last cycle
      }
    }
  }

  /** Fold a live reading into the 24 h series, so that the line ends at the number shown. */
  function addReading(sp, atMs, value) {
    const bs = sp.buckets;
    if (!bs.length || !Number.isFinite(atMs) || atMs < bs[0].t) return;
    if (sp.appliedAt != null && atMs <= sp.appliedAt) return;
    sp.appliedAt = atMs;
    let last = bs[bs.length - 1];
    // Time has moved into new buckets: slide the window (at most a day's worth).
    for (let guard = 0; atMs >= last.t + sp.stepMs && guard < bs.length; guard++) {
      last = { t: last.t + sp.stepMs, min: null, max: null, last: null };
      bs.push(last);
      bs.shift();
    }
    const b = bs[Math.floor((atMs - bs[0].t) / sp.stepMs)];
    if (!b) return;
    b.min = b.min == null ? value : Math.min(b.min, value);
    b.max = b.max == null ? value : Math.max(b.max, value);
    b.last = value;
  }

  function drawSpark(id, lvl) {
    const r = rows.get(id);
    if (!r) return;
    const sp = sparks.get(id);
    const values = sp ? sp.buckets.map((b) => (typeof b.last === 'number' ? b.last : b.max)) : [];
    const th = thresholds.get(id) || {};
    const sig = JSON.stringify([values, th, lvl]);
    if (sig === r.sparkSig) return;
    r.sparkSig = sig;
    Charts.spark(r.spark, { values, thresholds: th, level: lvl, bridge: 4 });
  }

  async function loadSpark(id) {
    sparkPending.add(id);
    const res = await UI.getJSON(`/api/v1/series?name=sensor:${encodeURIComponent(id)}&window=24h&step=15m`);
    sparkPending.delete(id);
    const body = res.ok ? res.body : null;
    if (body && Array.isArray(body.buckets) && body.step_s > 0) {
      const sp = {
        stepMs: body.step_s * 1000,
        at: Date.now(),
        appliedAt: null,
        buckets: body.buckets.map((b) => ({ t: Date.parse(b.t), min: b.min, max: b.max, last: b.last })),
      };
      sparks.set(id, sp);
      const s = sensorById(id);
      if (s && typeof s.value === 'number') addReading(sp, Date.parse(s.at), s.value);
    } else if (!sparks.has(id) || Date.now() - sparks.get(id).at > KEEP_MS) {
      // Failed (silently): nothing to draw, and an entry all the same, so that the
      // sensor is asked again only in the next cycle.
      sparks.set(id, { stepMs: 900000, at: Date.now(), appliedAt: null, buckets: [] });
    }
    const s = sensorById(id);
    drawSpark(id, s ? UI.sensorLevel(s) : 'unknown');
  }

  function sensorById(id) {
    const list = Array.isArray(state['sensors.latest']) ? state['sensors.latest'] : [];
    return list.find((s) => s.sensor_id === id) || null;
  }

  /** Thresholds, then every sensor's 24 h series one after the other. */
  async function sensorCycle() {
    const res = await UI.getJSON('/api/v1/sensors');
    const ids = [];
    if (res.ok && res.body && Array.isArray(res.body.sensors)) {
      for (const s of res.body.sensors) {
        if (!s || typeof s.sensor_id !== 'string') continue;
        thresholds.set(s.sensor_id, s.thresholds && typeof s.thresholds === 'object' ? s.thresholds : {});
        ids.push(s.sensor_id);
      }
    }
    for (const s of Array.isArray(state['sensors.latest']) ? state['sensors.latest'] : []) {
      if (!ids.includes(s.sensor_id)) ids.push(s.sensor_id);
    }
    for (const id of ids) {
      await loadSpark(id);
      await sleep(SPARK_STAGGER_MS);
    }
    sparkCycleDone = true;
  }

  // ---- alerts ----------------------------------------------------------------------

  const seen = new Map();      // alert id -> severity when last seen
  const newUntil = new Map();  // alert id -> ms until which it is "new"
  let alertsSeen = false;      // the first list has been seen (its alerts are not "new")
  let newTimer = null;

  function trackNew(alerts) {
    const now = Date.now();
    if (known('alerts.active')) {
      for (const a of alerts) {
        const key = String(a.id);
        const before = seen.get(key);
        const escalated = before !== undefined && before !== 'awas' && a.severity === 'awas';
        if (alertsSeen && (before === undefined || escalated)) newUntil.set(key, now + NEW_ALERT_MS);
        seen.set(key, a.severity);
      }
      const ids = new Set(alerts.map((a) => String(a.id)));
      for (const key of [...seen.keys()]) if (!ids.has(key)) seen.delete(key);
      alertsSeen = true;
    }
    for (const [key, until] of [...newUntil]) if (until <= now) newUntil.delete(key);
    // Re-render when the oldest "new" mark expires.
    clearTimeout(newTimer);
    if (newUntil.size) {
      const next = Math.min(...newUntil.values()) - now + 50;
      newTimer = setTimeout(renderAlerts, Math.max(50, next));
    }
  }

  function renderAlerts() {
    const list = $('alert-list');
    const alerts = UI.activeAlerts(state);
    const names = UI.sensorNames(state);
    setNum(document.querySelector('[data-kpi="alerts.active"][data-field="length"]'),
      known('alerts.active') ? alerts.length : null, F.int);
    trackNew(alerts);

    // The whole screen gets a red frame while any Awas alert is active; it pulses
    // and the header shows a banner while one is not acknowledged.
    const awas = alerts.filter((a) => a.severity === 'awas');
    const unacked = awas.filter((a) => !a.acked_at);
    document.body.classList.toggle('has-awas', awas.length > 0);
    document.body.classList.toggle('awas-unacked', unacked.length > 0);
    renderAwasBanner(unacked, names);

    const now = new Date();
    const isNew = (a) => newUntil.has(String(a.id));
    // Cards are buttons (opening the acknowledgement dialog) only for identities that may acknowledge.
    const interactive = Session.can('ack');
    const sig = [known('alerts.active'), interactive,
      alerts.map((a) => UI.alertSignature(a, names, now).concat(isNew(a)))];
    renderIfChanged(list, sig, () => {
      if (!alerts.length) return emptyItem('alerts.active', 'alerts.none', 'empty ok');
      return alerts.map((a) => UI.alertItem(a, names, now, { interactive, isNew: isNew(a) }));
    });
    fitList(list);
    Ack.sync();
  }

  function renderAwasBanner(unacked, names) {
    const banner = $('awas-banner');
    banner.hidden = unacked.length === 0;
    if (!unacked.length) return;
    const a = unacked[0]; // newest first
    const name = names.get(a.sensor_id) || a.sensor_id || '';
    const rest = a.message ? UI.alertText(a, name) : '';
    // The gauge on the first line, the reading ("AWAS 405 cm") on the second.
    renderIfChanged($('awas-msg'), [name, rest], () => [
      h('span', { class: 'awas-name' }, name || rest),
      name && rest !== a.message ? h('span', { class: 'awas-value' }, rest) : null,
    ]);
    const more = unacked.length > 1 ? I18n.t('awas.more', { n: F.int(unacked.length - 1) }) : '';
    if ($('awas-more').textContent !== more) $('awas-more').textContent = more;
  }

  // ---- acknowledging an alert ---------------------------------------------------------

  const Ack = (function () {
    const NAME_KEY = 'kendali.operator';
    const enc = new TextEncoder();
    const bytes = (s) => enc.encode(s).length;
    let dlg;
    let openId = null;
    let done = false;
    let busy = false;
    let idleTimer = null;
    let closeTimer = null;
    let opener = null;

    function init() {
      dlg = $('ack-dialog');
      if (!dlg || typeof dlg.showModal !== 'function') return;
      const list = $('alert-list');
      // Each card holds a <button> (Enter and Space work as a click); a click
      // anywhere on the card opens the dialog.
      list.addEventListener('click', (e) => {
        const li = e.target.closest('li.alert');
        if (li) open(li.dataset.alertId, li);
      });
      $('ack-form').addEventListener('submit', (e) => {
        e.preventDefault();
        submit();
      });
      $('ack-cancel').addEventListener('click', close);
      // A click on the backdrop (the dialog element itself, outside the form) closes it.
      dlg.addEventListener('click', (e) => {
        if (e.target === dlg) close();
      });
      dlg.addEventListener('close', cleanup);
      dlg.addEventListener('input', () => {
        touch();
        $('ack-count').textContent = `${$('ack-note').value.length}/200`;
      });
      dlg.addEventListener('keydown', touch);
    }

    /**
     * The name the acknowledgement is made under: a logged-in person's or a
     * screen's own (the server records that one whatever the body says), or
     * null when the operator must give one (anonymous access).
     */
    function ownName() {
      const id = Session.identity();
      return id && id.kind !== 'anonymous' && typeof id.name === 'string' && id.name ? id.name : null;
    }

    function storedName() {
      try {
        return window.localStorage.getItem(NAME_KEY) || '';
      } catch (e) {
        return '';
      }
    }

    function storeName(name) {
      try {
        window.localStorage.setItem(NAME_KEY, name);
      } catch (e) {
        /* storage unavailable: the name is simply not remembered */
      }
    }

    function findAlert(id) {
      return UI.activeAlerts(state).find((a) => String(a.id) === String(id)) || null;
    }

    function setStatus(text, kind) {
      const el = $('ack-status');
      el.textContent = text || '';
      el.className = 'ack-status' + (kind ? ' ' + kind : '');
    }

    /** The alert being acknowledged, as on its card. */
    function renderSummary(a) {
      const names = UI.sensorNames(state);
      const now = new Date();
      const sev = UI.alertSeverity(a);
      $('ack-alert').className = `ack-alert sev-${sev}`;
      $('ack-alert').replaceChildren(...[
        h('div', { class: 'a-head' },
          h('span', { class: `badge lvl-${sev}` }, I18n.level(sev)),
          h('span', { class: 'a-time' }, F.hm(a.raised_at, now))),
        h('div', { class: 'a-title' }, names.get(a.sensor_id) || a.sensor_id || ''),
        a.message ? h('div', { class: 'a-msg' }, UI.alertText(a, names.get(a.sensor_id) || a.sensor_id || '')) : null,
        a.acked_by && !done && !busy
          ? h('div', { class: 'a-ack' }, I18n.t('ack.previous', { by: a.acked_by, time: F.hm(a.acked_at, now) }))
          : null,
      ].filter(Boolean));
    }

    function open(id, li) {
      const a = findAlert(id);
      if (!a || !dlg || !Session.can('ack')) return;
      openId = String(a.id);
      opener = li || null;
      done = false;
      busy = false;
      renderSummary(a);
      const own = ownName();
      $('ack-as').hidden = !own;
      $('ack-as-name').textContent = own || '';
      $('ack-by-field').hidden = !!own;
      $('ack-by').value = own || storedName();
      $('ack-note').value = '';
      $('ack-count').textContent = '0/200';
      setStatus('');
      setButtons();
      if (!dlg.open) dlg.showModal();
      ($('ack-by').value ? $('ack-note') : $('ack-by')).focus();
      touch();
    }

    function setButtons() {
      const cleared = openId != null && !done && !findAlert(openId);
      $('ack-submit').hidden = done;
      $('ack-submit').disabled = busy || cleared;
      $('ack-cancel').textContent = I18n.t(done || cleared ? 'ack.close' : 'ack.cancel');
      $('ack-by').disabled = done;
      $('ack-note').disabled = done;
    }

    async function submit() {
      if (busy || done || openId == null) return;
      const own = ownName();
      // `by` is still sent with the identity's own name, for servers that read it.
      const by = own || $('ack-by').value.trim();
      const note = $('ack-note').value.trim();
      if (!own && (!by || bytes(by) > 64)) {
        setStatus(I18n.t('ack.err.by'), 'error');
        $('ack-by').focus();
        return;
      }
      if (bytes(note) > 200) {
        setStatus(I18n.t('ack.err.note'), 'error');
        $('ack-note').focus();
        return;
      }
      if (!own) storeName(by);
      busy = true;
      setButtons();
      setStatus(I18n.t('ack.sending'), 'busy');
      const id = openId;
      const body = note ? { by, note } : { by };
      const res = await UI.postJSON(`/api/v1/alerts/${encodeURIComponent(id)}/ack`, body);
      busy = false;
      if (openId !== id || !dlg.open) return; // closed meanwhile
      if (res.ok) {
        done = true;
        const a = res.body || {};
        setStatus(I18n.t('ack.ok', { by: a.acked_by || by, time: F.when(a.acked_at || new Date()) }), 'ok');
        if (live && res.body) live.applyAlert(res.body);
        renderSummary(findAlert(id) || res.body || {});
        setButtons();
        $('ack-cancel').focus();
        clearTimeout(closeTimer);
        closeTimer = setTimeout(close, ACK_AUTOCLOSE_MS);
      } else {
        const detail = res.body && typeof res.body.detail === 'string' ? res.body.detail : null;
        setStatus(detail || (res.status ? I18n.t('ack.err.http', { status: res.status }) : I18n.t('ack.err.network')), 'error');
        setButtons();
      }
    }

    /** Keep the dialog in step with the alert list (escalated, or cleared meanwhile) and the identity. */
    function sync() {
      if (dlg && dlg.open && !Session.can('ack')) {
        close();
        return;
      }
      if (!dlg || !dlg.open || openId == null || done) return;
      const a = findAlert(openId);
      if (a) {
        if (!busy) renderSummary(a);
      } else if (!busy) {
        setStatus(I18n.t('ack.cleared'), 'info');
      }
      setButtons();
    }

    function touch() {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(close, ACK_IDLE_MS);
    }

    function close() {
      if (dlg && dlg.open) dlg.close();
    }

    function cleanup() {
      clearTimeout(idleTimer);
      clearTimeout(closeTimer);
      openId = null;
      done = false;
      busy = false;
      // Back to the card that opened the dialog (or the card of the same alert,
      // if the list was drawn again meanwhile).
      const id = opener && opener.dataset.alertId;
      const card = opener && opener.isConnected ? opener
        : [...$('alert-list').querySelectorAll('li.alert')].find((li) => li.dataset.alertId === id);
      const button = card && card.querySelector('.a-open');
      if (button) button.focus({ preventScroll: true });
      opener = null;
    }

    return { init, sync };
  })();

  // ---- fitting lists into their panels (no scrolling on the wall) ----------------

  /**
   * Hide the items of an overflow-hidden list that do not fit and end it with
   * "+N more". Items keep their order (newest / biggest first).
   */
  function fitList(list) {
    if (!list) return;
    let more = list.querySelector(':scope > li.more');
    const items = [...list.children].filter((li) => li !== more);
    items.forEach((li) => { li.hidden = false; });
    if (more) more.hidden = true;
    const limit = list.clientHeight;
    const fits = (el) => el.offsetTop + el.offsetHeight <= limit + 1;
    if (!items.length || fits(items[items.length - 1])) return;

    if (!more) {
      more = h('li', { class: 'more' });
      list.append(more);
    }
    more.hidden = false;
    let hidden = 0;
    for (let i = items.length - 1; i >= 0; i--) {
      items[i].hidden = true;
      hidden++;
      more.textContent = I18n.t('alerts.more', { n: F.int(hidden) });
      if (fits(more)) break;
    }
  }

  function refit() {
    ['call-categories', 'agencies', 'districts', 'alert-list'].forEach((id) => fitList($(id)));
  }

  // ---- the pointer: hidden on a wall, shown while an operator moves the mouse --------

  function setupPointer() {
    let timer = null;
    window.addEventListener('pointermove', (e) => {
      if (e.pointerType && e.pointerType !== 'mouse') return;
      document.body.classList.add('pointer');
      clearTimeout(timer);
      timer = setTimeout(() => document.body.classList.remove('pointer'), 5000);
    }, { passive: true });
  }

  // ---- wiring -------------------------------------------------------------------------

  function render(changed) {
    const has = (prefix) => !changed || changed.some((k) => k.startsWith(prefix));
    UI.renderStatic(state);
    if (has('calls.by_category_today')) renderCategories();
    if (has('reports.by_agency')) renderAgencies();
    if (has('reports.by_district_open')) renderDistricts();
    if (has('sensors.')) {
      renderSensorSummary();
      renderSensors();
    }
    // Alerts show sensor names, so sensor changes may touch them too.
    if (has('alerts.') || has('sensors.latest')) renderAlerts();
  }

  function init() {
    I18n.apply(document);
    UI.startClock($('clock'), $('date'));
    Ack.init();
    setupPointer();
    render(null);
    window.addEventListener('resize', refit);

    // Who is watching; the alert cards become buttons once it may acknowledge.
    // Its tenant titles the page and sets the zone: every time is shown again.
    Session.start({
      onChange(id, tenantChanged) {
        if (!tenantChanged) {
          renderAlerts();
          return;
        }
        render(null);
        Object.keys(trends).forEach(drawTrend);
      },
    });

    const statusEls = { overlay: $('stale'), lastEl: $('stale-last'), updatedEl: $('updated') };
    live = Live.start({
      onState(s, changed) {
        state = s;
        render(changed);
      },
      onStatus(status) {
        UI.showStatus(status, statusEls);
      },
      onRejected: Session.check,
    });

    // Charts: fetched at load (staggered so that the screen does not ask for
    // everything at once) and every 5 minutes.
    UI.every(REFRESH_MS, loadTrends, 300);
    scheduleHourly();
    UI.every(REFRESH_MS, sensorCycle, 1200);

    // Alert times show a date once they are not from today; refresh the list each minute.
    setInterval(() => renderAlerts(), 60000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
