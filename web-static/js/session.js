/*
 * session.js — who is watching, for the wall screen and the mayor's page
 * (docs/security.md, "Screens and people").
 *
 * The server answers GET /api/v1/session for the identity of the request (the
 * cookie kendali_session, sent by the browser on every same-origin request):
 *   {"kind": "user" | "screen" | "anonymous", "name", "role", "can": [...], "expires_at"}
 * or 401 when there is none (never logged in, expired, logged out, revoked).
 *
 *   Session.start({ onChange(identity, tenantChanged) })  ask once, show it in #who, then keep it up to date
 *   Session.identity()                     the last answer, or null while unknown
 *   Session.can(what)                      whether `can` lists what ("read", "ack", ...)
 *   Session.check()                        ask again (at most every 2 s: a later call waits
 *                                          its turn); a 401 leaves the page
 *   Session.expired()                      go to /login?next=<this page>
 *
 * Any fetch of UI.getJSON / UI.postJSON answered 401 leaves for the login page
 * too, and the page calls check() when its websocket is refused (live.js
 * onRejected). Until the first answer the identity is unknown and can() is
 * false for everything: nothing is offered that the server might refuse.
 *
 * #who shows the name and the role (a screen: its name; anonymous: "anonim"),
 * #logout (users only) sends POST /api/v1/logout and goes to /login.
 */
(function () {
  'use strict';

  const CHECK_MIN_MS = 2000;      // between two checks asked for by the page
  const RETRY_MS = 30 * 1000;     // after a failed first check (server unreachable)
  const EXPIRY_SLACK_MS = 2000;   // check again this long after expires_at

  let identity = null;
  let onChange = () => {};
  let lastCheck = 0;
  let pending = null;
  let leaving = false;
  let retryTimer = null;
  let expiryTimer = null;
  let laterTimer = null;

  const $ = (id) => document.getElementById(id);

  /** The login page's address, in the page's language. */
  function loginUrl(params) {
    const q = new URLSearchParams(params || {});
    if (I18n.lang === 'en') q.set('lang', 'en');
    const s = q.toString();
    return '/login' + (s ? '?' + s : '');
  }

  /** No identity any more: the login page, which comes back here once logged in. */
  function expired() {
    if (leaving) return;
    leaving = true;
    window.location.replace(loginUrl({ next: window.location.pathname + window.location.search, expired: '1' }));
  }

  function can(what) {
    return !!identity && Array.isArray(identity.can) && identity.can.includes(what);
  }

  /** The text of #who: "budi · operator", "dinding-1 · layar", "anonim". */
  function describe(id) {
    if (!id) return { name: '', role: '' };
    if (id.kind === 'anonymous') return { name: I18n.t('who.anonymous'), role: '' };
    const name = typeof id.name === 'string' && id.name ? id.name : '?';
    if (id.kind === 'screen') return { name, role: I18n.t('who.screen') };
    return { name, role: typeof id.role === 'string' && id.role ? I18n.role(id.role) : '' };
  }

  function render() {
    const box = $('who');
    if (!box) return;
    const d = describe(identity);
    box.hidden = !identity;
    box.dataset.kind = identity ? String(identity.kind) : '';
    box.dataset.role = identity && identity.role ? String(identity.role) : '';
    $('who-name').textContent = d.name;
    $('who-role').textContent = d.role;
    $('who-role').hidden = !d.role;
    const out = $('logout');
    if (out) out.hidden = !identity || identity.kind !== 'user';
  }

  function set(id) {
    const before = JSON.stringify(identity);
    identity = id;
    // The tenant names the page and sets the zone of its times.
    const tenantChanged = !!(id && I18n.setTenant(id.tenant));
    render();
    scheduleExpiry();
    if (JSON.stringify(identity) !== before) {
      try {
        onChange(identity, tenantChanged);
      } catch (e) {
        console.error('session onChange', e);
      }
    }
  }

  /** A session ends at expires_at: ask again then (the server decides). */
  function scheduleExpiry() {
    clearTimeout(expiryTimer);
    const at = identity && identity.expires_at ? Date.parse(identity.expires_at) : NaN;
    if (!Number.isFinite(at)) return;
    const ms = Math.min(Math.max(at - Date.now() + EXPIRY_SLACK_MS, 1000), 2 ** 31 - 1);
    expiryTimer = setTimeout(() => check(true), ms);
  }

  /** GET /api/v1/session; resolves to the identity (or null). */
  function check(force) {
    if (pending) return pending;
    const wait = lastCheck + CHECK_MIN_MS - Date.now();
    if (!force && wait > 0) {
      // Too soon after the last one: once its turn comes.
      if (!laterTimer) {
        laterTimer = setTimeout(() => {
          laterTimer = null;
          check(false);
        }, wait);
      }
      return Promise.resolve(identity);
    }
    lastCheck = Date.now();
    pending = UI.getJSON('/api/v1/session').then((res) => {
      pending = null;
      if (res.status === 401) {
        expired(); // (UI's 401 handler has done it already)
      } else if (res.ok && res.body && typeof res.body === 'object' && typeof res.body.kind === 'string') {
        clearTimeout(retryTimer);
        set(res.body);
      } else if (!identity) {
        // No answer (or a strange one) yet: try again later, show nothing meanwhile.
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => check(true), RETRY_MS);
      }
      return identity;
    });
    return pending;
  }

  async function logout() {
    const btn = $('logout');
    if (btn) {
      btn.disabled = true;
      btn.textContent = I18n.t('who.logging_out');
    }
    leaving = true; // the 401s of requests still in flight must not go elsewhere
    await UI.postJSON('/api/v1/logout', {});
    // Whatever the answer: the login page tells whether the cookie still works.
    window.location.assign(loginUrl());
  }

  function start(opts) {
    onChange = (opts && opts.onChange) || onChange;
    UI.onUnauthorized(expired);
    const btn = $('logout');
    if (btn) btn.addEventListener('click', logout);
    render();
    return check(true);
  }

  window.Session = {
    start,
    check: () => check(false),
    identity: () => identity,
    can,
    expired,
  };
})();
