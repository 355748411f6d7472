/*
 * mayor.js — the mayor's page (GET /mayor): a few headline numbers, the five
 * agencies with the most overdue tickets and the active alerts, on a tablet.
 * Number elements follow the data-kpi convention described in ui.js.
 */
(function () {
  'use strict';

  const { h, setNum, num, renderIfChanged } = UI;
  const F = I18n.fmt;
  const $ = (id) => document.getElementById(id);

  const TOP_AGENCIES = 5;

  let state = {};

  const known = (key) => UI.known(state, key);

  /** Sensors at Siaga or Awas = by_level.siaga + by_level.awas. */
  function renderSiagaAwas() {
    const siaga = UI.byLevel(state, 'siaga');
    const awas = UI.byLevel(state, 'awas');
    const sum = siaga == null && awas == null ? null : (siaga || 0) + (awas || 0);
    setNum(document.querySelector('[data-kpi="sensors.by_level"][data-key="siaga+awas"]'), sum, F.int);
    const card = $('card-siaga-awas');
    card.classList.toggle('hot', (siaga || 0) > 0 && !awas);
    card.classList.toggle('danger', (awas || 0) > 0);
  }

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
  }

  /** The language link keeps the other query parameters. */
  function setupLangSwitch() {
    const link = $('lang-switch');
    const params = new URLSearchParams(window.location.search);
    if (I18n.lang === 'en') params.delete('lang');
    else params.set('lang', 'en');
    const q = params.toString();
    link.href = window.location.pathname + (q ? '?' + q : '');
    link.hreflang = I18n.lang === 'en' ? 'id' : 'en';
  }

  function init() {
    I18n.apply(document);
    setupLangSwitch();
    UI.startClock($('clock'), $('date'));
    render(null);

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

    // Alert times show a date once they are not from today; refresh each minute.
    setInterval(() => renderAlerts(), 60000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
