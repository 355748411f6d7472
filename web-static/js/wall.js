/*
 * wall.js — the wall screen (GET /): live KPIs for the control room, 1920x1080
 * and up, read from 5 m, no interaction. Number elements follow the data-kpi
 * convention described in ui.js.
 */
(function () {
  'use strict';

  const { h, setNum, num, renderIfChanged } = UI;
  const F = I18n.fmt;
  const $ = (id) => document.getElementById(id);

  let state = {};

  const known = (key) => UI.known(state, key);
  const emptyItem = (key, label, cls) => UI.emptyItem(state, key, label, cls);

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

  function renderSensors() {
    const list = $('sensor-list');
    const sensors = Array.isArray(state['sensors.latest']) ? state['sensors.latest'] : [];
    // Two columns when there are too many gauges for one.
    list.classList.toggle('two-cols', sensors.length > 20);
    const sig = [known('sensors.latest'), sensors.map((s) => [s.sensor_id, s.name, s.value, s.unit, s.level, s.online])];
    renderIfChanged(list, sig, () => {
      if (!sensors.length) return emptyItem('sensors.latest', 'sensors.none');
      return sensors.map((s) => {
        const lvl = UI.sensorLevel(s);
        return h('li', { class: `sensor lvl-${lvl}`, dataset: { sensorId: s.sensor_id, level: lvl } },
          h('span', { class: 'name' }, s.name || s.sensor_id),
          h('span', { class: 'reading' },
            num('span', 'sensors.latest', s.sensor_id, 'value', s.value, sensorValue),
            s.value != null && s.unit ? h('span', { class: 'unit' }, s.unit) : null),
          h('span', { class: `badge lvl-${lvl}` }, I18n.level(lvl)));
      });
    });
  }

  // ---- alerts ----------------------------------------------------------------------

  function renderAlerts() {
    const list = $('alert-list');
    const alerts = UI.activeAlerts(state);
    const names = UI.sensorNames(state);
    setNum(document.querySelector('[data-kpi="alerts.active"][data-field="length"]'),
      known('alerts.active') ? alerts.length : null, F.int);

    // The whole screen pulses red while any Awas alert is active.
    document.body.classList.toggle('has-awas', alerts.some((a) => a.severity === 'awas'));

    const now = new Date();
    const sig = [known('alerts.active'), alerts.map((a) => UI.alertSignature(a, names, now))];
    renderIfChanged(list, sig, () => {
      if (!alerts.length) return emptyItem('alerts.active', 'alerts.none', 'empty ok');
      return alerts.map((a) => UI.alertItem(a, names, now));
    });
    fitList(list);
  }

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
    render(null);
    window.addEventListener('resize', refit);

    const statusEls = { overlay: $('stale'), lastEl: $('stale-last'), updatedEl: $('updated') };
    Live.start({
      onState(s, changed) {
        state = s;
        render(changed);
      },
      onStatus(status) {
        UI.showStatus(status, statusEls);
      },
    });

    // Alert times show a date once they are not from today; refresh the list each minute.
    setInterval(() => renderAlerts(), 60000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
