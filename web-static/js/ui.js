/*
 * ui.js — small DOM helpers shared by the wall screen and the mayor's page.
 *
 * Number elements follow one convention, so that browser tests can compare
 * them with GET /api/v1/kpis:
 *   data-kpi="<full kpi key>"        e.g. "reports.open", "sensors.latest"
 *   data-key="<map key or item id>"  for maps and lists (category, district,
 *                                    agency code, sensor_id)
 *   data-field="<item field>"        for list items, e.g. "overdue", "value"
 *   data-value="<JSON of the raw value>"   e.g. 12, 0.875, null
 * A null (or missing) value is shown as "—".
 *
 * Exposes window.UI.
 */
(function () {
  'use strict';

  const DASH = '—';

  /**
   * Create an element: h('div', {class: 'x', dataset: {kpi: 'a.b'}}, child, 'text', ...).
   * Attributes are set with setAttribute (never innerHTML), so server strings are safe;
   * style takes an object.
   */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed under a strict CSP
        else if (k === 'class') el.className = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** Create an SVG element (createElementNS); attributes as for h(), text via textContent. */
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.setAttribute('class', v);
        else el.setAttribute(k, String(v));
      }
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  /**
   * GET a JSON document from the server with a timeout. Never throws and never
   * logs: resolves to {ok, status, body, headers} (status 0 on a network error or
   * timeout; body null when it is not JSON; headers null without an answer).
   * The session cookie goes along (same origin). A 401 (no identity any more:
   * the session expired or was revoked) is also passed to the handler set with
   * onUnauthorized, if any.
   */
  function getJSON(url, timeoutMs) {
    return request(url, { method: 'GET' }, timeoutMs || 8000);
  }

  /** POST a JSON body; same answer as getJSON. */
  function postJSON(url, body, timeoutMs) {
    return request(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }, timeoutMs || 10000);
  }

  /**
   * A province's screen looking at one of its members (the page's own
   * ?tenant=, docs/api.md 2.5) reads that member: every API address and the
   * websocket carry the same ?tenant=. Elsewhere addresses stay as they are.
   */
  const viewTenant = new URLSearchParams(window.location.search).get('tenant');
  function withTenant(path) {
    if (!viewTenant || !(path.startsWith('/api/') || path === '/ws')) return path;
    return path + (path.includes('?') ? '&' : '?') + 'tenant=' + encodeURIComponent(viewTenant);
  }

  /** The language link (link) switches to the other language, keeping the page's
   * other query parameters. */
  function setupLangSwitch(link) {
    const params = new URLSearchParams(window.location.search);
    if (I18n.lang === 'en') params.delete('lang');
    else params.set('lang', 'en');
    const q = params.toString();
    link.href = window.location.pathname + (q ? '?' + q : '');
    link.hreflang = I18n.lang === 'en' ? 'id' : 'en';
  }

  let unauthorized = null;

  /** fn(url) is called after any request of getJSON / postJSON is answered 401. */
  function onUnauthorized(fn) {
    unauthorized = typeof fn === 'function' ? fn : null;
  }

  function request(url, init, timeoutMs) {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), timeoutMs) : null;
    const opts = Object.assign({ cache: 'no-store', credentials: 'same-origin' }, init);
    opts.headers = Object.assign({ Accept: 'application/json, application/problem+json' }, init.headers);
    if (ctl) opts.signal = ctl.signal;
    let status = 0;
    return fetch(withTenant(url), opts)
      .then((res) => {
        status = res.status;
        return res.text().then((text) => {
          let body = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch (e) {
            body = null;
          }
          return { ok: res.ok, status, body, headers: res.headers };
        });
      })
      .catch(() => ({ ok: false, status: 0, body: null, headers: null }))
      .then((res) => {
        if (timer) clearTimeout(timer);
        if (res.status === 401 && unauthorized) {
          try {
            unauthorized(url);
          } catch (e) {
            /* the handler's problem, not the caller's */
          }
        }
        return res;
      });
  }

  /** Run fn now (after delayMs) and then every periodMs; fn may return a promise. */
  function every(periodMs, fn, delayMs) {
    const run = () => {
      let p;
      try {
        p = fn();
      } catch (e) {
        p = null;
      }
      Promise.resolve(p).catch(() => {}).then(() => setTimeout(run, periodMs));
    };
    setTimeout(run, delayMs || 0);
  }

  /**
   * Show a KPI number in el: data-value gets the raw JSON, the text the formatted
   * value ("—" for null). A changed value briefly highlights the element.
   */
  function setNum(el, value, format) {
    if (!el) return;
    const v = value === undefined ? null : value;
    const raw = JSON.stringify(v);
    const text = v == null || (typeof v === 'number' && !Number.isFinite(v)) ? DASH : format(v);
    const prev = el.dataset.value;
    el.dataset.value = raw;
    if (el.textContent !== text) el.textContent = text;
    // Flash on a change, not on the first value after "—".
    if (prev !== undefined && prev !== 'null' && prev !== raw && text !== DASH) bump(el);
  }

  /** A number element for list rows (see the convention above). */
  function num(tag, kpi, key, field, value, format, cls) {
    const el = h(tag, { class: cls || 'num', dataset: { kpi } });
    if (key != null) el.dataset.key = key;
    if (field != null) el.dataset.field = field;
    setNum(el, value, format);
    return el;
  }

  function bump(el) {
    el.classList.remove('bump');
    void el.offsetWidth; // restart the animation
    el.classList.add('bump');
  }

  /**
   * Rebuild container's children only when signature differs from the last one,
   * so that running CSS animations (the Awas pulse) are not restarted needlessly.
   */
  function renderIfChanged(container, signature, build) {
    if (!container) return;
    const sig = typeof signature === 'string' ? signature : JSON.stringify(signature);
    if (container.dataset.sig === sig) return;
    container.dataset.sig = sig;
    container.replaceChildren(...[].concat(build()).filter(Boolean));
  }

  /** Display level of a sensor: "offline", or its level, or "unknown". */
  function sensorLevel(s) {
    if (!s || s.online === false) return 'offline';
    return ['normal', 'waspada', 'siaga', 'awas'].includes(s.level) ? s.level : 'unknown';
  }

  /** Number of sensors per level name, from sensors.by_level. */
  function byLevel(state, name) {
    const m = state['sensors.by_level'];
    return m && typeof m[name] === 'number' ? m[name] : null;
  }

  /** Map object -> [[key, count]] with numeric counts, biggest first, then by key. */
  function sortedCounts(map) {
    if (!map || typeof map !== 'object') return [];
    return Object.entries(map)
      .filter(([, v]) => typeof v === 'number')
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  /** reports.by_agency in the catalogue's order: overdue desc, open desc, agency asc. */
  function agenciesByOverdue(list) {
    if (!Array.isArray(list)) return [];
    return list.slice().sort((a, b) =>
      (b.overdue || 0) - (a.overdue || 0) ||
      (b.open || 0) - (a.open || 0) ||
      String(a.agency).localeCompare(String(b.agency)));
  }

  /** Sensor name by sensor_id, from sensors.latest. */
  function sensorNames(state) {
    const names = new Map();
    const list = state['sensors.latest'];
    if (Array.isArray(list)) for (const s of list) names.set(s.sensor_id, s.name || s.sensor_id);
    return names;
  }

  /** Formatters named by data-fmt on static number elements. */
  const FMT = {
    int: (v) => I18n.fmt.int(v),
    pct: (v) => I18n.fmt.pct(v),
    sec: (v) => I18n.fmt.dec(v, 0),
    hours: (v) => I18n.fmt.dec(v, 1),
  };

  /**
   * Fill the static number elements ([data-kpi][data-fmt] without data-key) from
   * state, and mark [data-hot-if-positive="<kpi>"] containers while that KPI is > 0.
   */
  function renderStatic(state) {
    document.querySelectorAll('[data-kpi][data-fmt]:not([data-key])').forEach((el) => {
      setNum(el, state[el.dataset.kpi], FMT[el.dataset.fmt] || FMT.int);
    });
    document.querySelectorAll('[data-hot-if-positive]').forEach((box) => {
      const v = state[box.dataset.hotIfPositive];
      box.classList.toggle('hot', typeof v === 'number' && v > 0);
    });
  }

  /** Whether the server has sent this key at all (before that, lists stay blank). */
  function known(state, key) {
    return Object.prototype.hasOwnProperty.call(state, key);
  }

  /** "Nothing here" item for an empty list — only once the key is known. */
  function emptyItem(state, key, label, cls, tag) {
    return known(state, key) ? h(tag || 'li', { class: cls || 'empty' }, I18n.t(label)) : [];
  }

  const SEVERITIES = ['waspada', 'siaga', 'awas'];

  /** alerts.active as a list (empty when unknown). */
  function activeAlerts(state) {
    return Array.isArray(state['alerts.active']) ? state['alerts.active'] : [];
  }

  /** What of an alert is shown (a change of any of it re-renders the list). */
  function alertSignature(a, names, now) {
    return [a.id, a.kind, a.severity, a.message, a.acked_by, a.acked_at, a.note,
      names.get(a.sensor_id), I18n.fmt.hm(a.raised_at, now), I18n.fmt.hm(a.acked_at, now)];
  }

  /**
   * The alert's message without the sensor name the card already shows as its
   * title: "Kali Babon - Genuk: SIAGA 312 cm" under "Kali Babon - Genuk" reads
   * "SIAGA 312 cm" (level names and units read the same in both languages).
   */
  function alertText(a, title) {
    // The server writes an offline alert's text in Indonesian; show it in the page's language.
    if (a.kind === 'offline') return I18n.t('alerts.offline_msg');
    const m = String(a.message);
    const prefix = title + ': ';
    return title && m.startsWith(prefix) && m.length > prefix.length ? m.slice(prefix.length) : m;
  }

  /**
   * Severity of an alert as a level name ("unknown" when not one of ours).
   * An offline alert says nothing about the water: it is "offline", shown in
   * its own colour, never with a flood level's name.
   */
  function alertSeverity(a) {
    if (a.kind === 'offline') return 'offline';
    return SEVERITIES.includes(a.severity) ? a.severity : 'unknown';
  }

  /**
   * One alert: severity badge (colour and text), time raised, kind, sensor name,
   * message, acknowledgement (who, when, note). CSS makes an Awas alert pulse.
   * opts.interactive: the card is a button that opens the acknowledgement dialog.
   */
  function alertItem(a, names, now, opts) {
    const sev = alertSeverity(a);
    const kind = a.kind === 'offline' ? I18n.t('alerts.kind.offline') : I18n.t('alerts.kind.level');
    const interactive = !!(opts && opts.interactive);
    const title = names.get(a.sensor_id) || a.sensor_id || kind;
    const attrs = {
      class: `alert sev-${sev}` + (a.acked_at ? ' acked' : ' unacked') + (opts && opts.isNew ? ' is-new' : ''),
      dataset: { alertId: a.id, severity: sev },
    };
    // Spans (shown as blocks) rather than divs, so that the same content may sit in a <button>.
    const content = [
      h('span', { class: 'a-head' },
        h('span', { class: `badge lvl-${sev}` }, I18n.level(sev)),
        h('span', { class: 'a-time' }, I18n.fmt.hm(a.raised_at, now)),
        h('span', { class: 'a-kind' }, kind)),
      h('span', { class: 'a-title' }, title),
      a.message ? h('span', { class: 'a-msg' }, alertText(a, title)) : null,
      a.acked_by
        ? h('span', { class: 'a-ack' },
          h('span', { class: 'a-ack-mark', 'aria-hidden': 'true' }, '✓ '),
          I18n.t('alerts.acked_at', { by: a.acked_by, time: I18n.fmt.hm(a.acked_at, now) }),
          a.note ? h('span', { class: 'a-note' }, ' — ', a.note) : null)
        : null,
    ];
    if (!interactive) return h('li', attrs, content);
    return h('li', attrs,
      h('button', { type: 'button', class: 'a-open', 'aria-haspopup': 'dialog', title: I18n.t('alerts.ack_hint') }, content));
  }

  /** The header clock: "HH:MM:SS WIB", ticking on the second. */
  function startClock(timeEl, dateEl) {
    const tick = () => {
      const now = new Date();
      if (timeEl) timeEl.textContent = I18n.fmt.clock(now);
      if (dateEl) dateEl.textContent = I18n.fmt.date(now);
      setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
    };
    tick();
  }

  /**
   * Show connection status: the STALE overlay (covering the numbers), saying
   * whether the link to the server or the server's database is lost, and the
   * time of the last update in the header.
   */
  function showStatus(status, els) {
    const { overlay, lastEl, updatedEl } = els;
    const db = status.reason === 'database';
    // While the server's database is lost, the numbers are those of that moment.
    const lastAt = db && status.downSince ? status.downSince : status.lastAt;
    const last = lastAt ? I18n.fmt.when(lastAt) : null;
    if (updatedEl) updatedEl.textContent = last || I18n.t('hdr.never');
    if (overlay) {
      overlay.hidden = !status.stale;
      overlay.dataset.reason = status.reason || '';
      document.body.classList.toggle('is-stale', status.stale);
      const title = overlay.querySelector('.stale-title');
      const retry = overlay.querySelector('.stale-retry');
      if (title) {
        title.dataset.i18n = db ? 'stale.title.db' : 'stale.title';
        title.textContent = I18n.t(title.dataset.i18n);
      }
      if (retry) {
        retry.dataset.i18n = db ? 'stale.db' : 'stale.retry';
        retry.textContent = I18n.t(retry.dataset.i18n);
      }
      if (lastEl) {
        lastEl.textContent = last ? I18n.t('stale.last', { time: last }) : I18n.t('stale.never');
      }
    }
  }

  window.UI = {
    DASH,
    h,
    svg,
    getJSON,
    postJSON,
    withTenant,
    setupLangSwitch,
    onUnauthorized,
    every,
    alertSeverity,
    alertText,
    setNum,
    num,
    FMT,
    renderStatic,
    known,
    emptyItem,
    activeAlerts,
    alertSignature,
    alertItem,
    renderIfChanged,
    sensorLevel,
    byLevel,
    sortedCounts,
    agenciesByOverdue,
    sensorNames,
    startClock,
    showStatus,
  };
})();
