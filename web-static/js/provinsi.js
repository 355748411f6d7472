/*
 * provinsi.js — the provincial roll-up (GET /provinsi): every member regency
 * and city of the province with its headline numbers, worst first, each a link
 * to its own summary (/mayor?tenant=<id>), and the active alerts of all of
 * them in one list. docs/ui.md describes the page.
 *
 * Everything comes live over the websocket (live.js), whose KPIs for a
 * province's identity are two:
 *   province.members  [{id, name, head, calls_today, reports_open, reports_overdue,
 *                       sla_met_30d, gauges_siaga, gauges_awas, alerts_active}],
 *                     already in the server's order, worst first
 *   province.alerts   the members' active alerts, each with tenant and tenant_name,
 *                     most severe first, then newest
 * Besides it the page asks only GET /api/v1/session (session.js): who is
 * watching, and the province's name, head and zone for the titles and times.
 * Number elements follow the data-kpi convention of ui.js: a member's number
 * is data-kpi="province.members" data-key="<member id>" data-field="<field>".
 */
(function () {
  'use strict';

  const { h, setNum, renderIfChanged } = UI;
  const F = I18n.fmt;
  const $ = (id) => document.getElementById(id);

  /** The columns after the member's name: the field of a member and its format. */
  const COLUMNS = [
    { field: 'calls_today', fmt: F.int },
    { field: 'reports_open', fmt: F.int },
    { field: 'reports_overdue', fmt: F.int, cls: 'overdue' },
    { field: 'sla_met_30d', fmt: F.pct },
    { field: 'gauges_siaga', fmt: F.int, cls: 'siaga' },
    { field: 'gauges_awas', fmt: F.int, cls: 'awas' },
    { field: 'alerts_active', fmt: F.int },
  ];

  let state = {};

  const known = (key) => UI.known(state, key);
  const count = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

  /** province.members as the server ordered it, without entries that are not members. */
  function members() {
    const list = state['province.members'];
    if (!Array.isArray(list)) return [];
    return list.filter((m) => m && typeof m === 'object' && typeof m.id === 'string' && m.id);
  }

  /** A member's own summary: the mayor's page reading that member, in this page's language. */
  function memberHref(id) {
    const q = new URLSearchParams();
    q.set('tenant', id);
    if (I18n.lang === 'en') q.set('lang', 'en');
    return '/mayor?' + q.toString();
  }

  // ---- the members -------------------------------------------------------------------

  /** Rows by member id, kept between renders so that a changed number flashes in place. */
  const rows = new Map();

  function memberRow(m) {
    const link = h('a', { class: 'member-link' },
      h('span', { class: 'm-name' }),
      h('span', { class: 'm-go', 'aria-hidden': 'true' }, '›'));
    const cells = COLUMNS.map((c) => h('td', {
      class: 'num n' + (c.cls ? ' ' + c.cls : ''),
      dataset: { kpi: 'province.members', key: m.id, field: c.field },
    }));
    const tr = h('tr', { dataset: { member: m.id } }, h('th', { scope: 'row', class: 'c-name' }, link), cells);
    return { tr, link, cells };
  }

  function updateRow(row, m) {
    const name = typeof m.name === 'string' && m.name ? m.name : m.id;
    const nameEl = row.link.querySelector('.m-name');
    if (nameEl.textContent !== name) nameEl.textContent = name;
    const href = memberHref(m.id);
    if (row.link.getAttribute('href') !== href) row.link.setAttribute('href', href);
    row.link.title = I18n.t('province.open_member', { name });
    COLUMNS.forEach((c, i) => {
      const v = m[c.field];
      const value = typeof v === 'number' && Number.isFinite(v) ? v : null;
      setNum(row.cells[i], value, c.fmt);
      row.cells[i].classList.toggle('pos', value != null && value > 0);
    });
    // The row's colour follows its worst gauge; the numbers and their headings say the same in words.
    const awas = count(m.gauges_awas) > 0;
    row.tr.classList.toggle('danger', awas);
    row.tr.classList.toggle('hot', !awas && count(m.gauges_siaga) > 0);
  }

  function renderMembers() {
    const body = $('members');
    const list = members();
    setNum(document.querySelector('[data-kpi="province.members"][data-field="length"]'),
      known('province.members') ? list.length : null, F.int);

    const seen = new Set();
    const order = [];
    for (const m of list) {
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      let row = rows.get(m.id);
      if (!row) {
        row = memberRow(m);
        rows.set(m.id, row);
      }
      updateRow(row, m);
      order.push(row.tr);
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    if (!order.length) {
      body.replaceChildren(...(known('province.members')
        ? [h('tr', { class: 'empty' }, h('td', { colspan: COLUMNS.length + 1 }, I18n.t('province.no_members')))]
        : []));
      return;
    }
    // The server's order, worst first; rows already in place are not touched.
    const current = [...body.children];
    if (current.length !== order.length || order.some((tr, i) => current[i] !== tr)) body.replaceChildren(...order);
  }

  /** A click anywhere on a member's row opens its summary, as its link does. */
  function setupRowClicks() {
    $('members').addEventListener('click', (ev) => {
      if (ev.defaultPrevented || ev.button !== 0 || ev.target.closest('a')) return;
      const tr = ev.target.closest('tr[data-member]');
      const link = tr && tr.querySelector('a.member-link[href]');
      if (link) window.location.assign(link.href);
    });
  }

  // ---- the alerts ---------------------------------------------------------------------

  /** The gauge's name, from the alert's message "<name>: AWAS 405 cm" (ids are a member's own). */
  function gaugeName(a) {
    const m = typeof a.message === 'string' ? a.message : '';
    const i = m.lastIndexOf(': ');
    return i > 0 ? m.slice(0, i) : a.sensor_id || '';
  }

  function alertItem(a, now) {
    const names = new Map([[a.sensor_id, gaugeName(a)]]);
    const li = UI.alertItem(a, names, now);
    if (typeof a.tenant === 'string') li.dataset.tenant = a.tenant;
    const region = typeof a.tenant_name === 'string' && a.tenant_name ? a.tenant_name : a.tenant;
    if (region) li.insertBefore(h('span', { class: 'a-region' }, region), li.querySelector('.a-title'));
    return li;
  }

  function renderAlerts() {
    const list = $('alert-list');
    const alerts = Array.isArray(state['province.alerts'])
      ? state['province.alerts'].filter((a) => a && typeof a === 'object') : [];
    setNum(document.querySelector('[data-kpi="province.alerts"][data-field="length"]'),
      known('province.alerts') ? alerts.length : null, F.int);
    document.body.classList.toggle('has-awas', alerts.some((a) => a.kind !== 'offline' && a.severity === 'awas'));

    const now = new Date();
    const sig = [known('province.alerts'), I18n.fmt.date(now), alerts.map((a) => [a.tenant, a.tenant_name,
      UI.alertSignature(a, new Map([[a.sensor_id, gaugeName(a)]]), now)])];
    renderIfChanged(list, sig, () => {
      if (!alerts.length) return UI.emptyItem(state, 'province.alerts', 'alerts.none', 'empty ok');
      return alerts.map((a) => alertItem(a, now));
    });
  }

  // ---- the page ------------------------------------------------------------------------

  function render(changed) {
    const has = (key) => !changed || changed.includes(key);
    if (has('province.members')) renderMembers();
    if (has('province.alerts')) renderAlerts();
  }

  function init() {
    I18n.apply(document);
    UI.setupLangSwitch($('lang-switch'));
    setupRowClicks();
    UI.startClock($('clock'), $('date'));
    render(null);
    // The province titles the page and sets the zone: every time is shown again.
    Session.start({ onChange: (id, tenantChanged) => tenantChanged && render(null) });

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

    // Alert times show a date once they are not from today.
    setInterval(() => renderAlerts(), 60000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
