/*
 * login.js — the login page (GET /login; docs/ui.md, docs/security.md).
 *
 * The user name and password go with fetch as POST /api/v1/session
 * {"username", "password"[, "tenant"]}: the pages' policy has form-action 'none', so the
 * form itself is never submitted. The server answers
 *   200  the session cookie is set: go to `next`
 *   401  login_failed: wrong user name or password (the same for both)
 *   429  too many attempts from this address: wait Retry-After seconds
 *
 * Query parameters, set by the server's redirects or by the pages:
 *   next=/path?query  where to go once logged in; only a path of this site (one
 *                     leading "/", never "//" or "/\"), anything else goes to "/"
 *   denied=1          the identity in use may not open `next`: say so, name it
 *                     (GET /api/v1/session) and link the pages it may open
 *   error=token       the screen token in the address was invalid or revoked
 *   expired=1         a page lost its session (a 401) and sent us here
 *   tenant=batang     the user is one of that tenant's (a server serves every
 *                     city and regency of its database; without it, the
 *                     server's default tenant)
 *   lang=en           English
 */
(function () {
  'use strict';

  const { h } = UI;
  const $ = (id) => document.getElementById(id);
  const t = I18n.t;

  const RETRY_DEFAULT_S = 6; // when a 429 carries no usable Retry-After
  const params = new URLSearchParams(window.location.search);
  const next = safeNext(params.get('next'));
  const tenant = params.get('tenant');

  let busy = false;
  let waitUntil = 0;
  let waitTimer = null;

  /**
   * Where to go after logging in: `raw` if it is a path of this site, else "/".
   * "//host/…" and "/\host/…" are addresses of other sites to a browser, so
   * the path must start with exactly one "/" and hold no backslash or control
   * character; the login page itself is no destination.
   */
  function safeNext(raw) {
    if (typeof raw !== 'string' || raw[0] !== '/' || raw[1] === '/') return '/';
    if (/[\\\u0000-\u001f\u007f]/.test(raw)) return '/';
    let u;
    try {
      u = new URL(raw, window.location.origin);
    } catch (e) {
      return '/';
    }
    if (u.origin !== window.location.origin) return '/';
    if (u.pathname === '/login' || u.pathname.startsWith('/login/')) return '/';
    return u.pathname + u.search + u.hash;
  }

  /** A page of this site in the page's language. */
  function inLang(path) {
    if (I18n.lang !== 'en') return path;
    const u = new URL(path, window.location.origin);
    u.searchParams.set('lang', 'en');
    return u.pathname + u.search;
  }

  function setStatus(text, kind) {
    const el = $('login-status');
    el.textContent = text || '';
    el.className = 'status' + (kind ? ' ' + kind : '');
  }

  function setButtons() {
    $('login-submit').disabled = busy || Date.now() < waitUntil;
  }

  // ---- why we are here ------------------------------------------------------------

  function notice(...children) {
    const box = $('notice');
    box.replaceChildren(...children.flat().filter(Boolean));
    box.hidden = false;
  }

  /** "budi (operator)", "dinding-1 (layar)", "anonim". */
  function whoText(id) {
    if (id.kind === 'anonymous') return t('who.anonymous');
    const name = typeof id.name === 'string' && id.name ? id.name : '?';
    if (id.kind === 'screen') return `${name} (${t('who.screen')})`;
    return typeof id.role === 'string' && id.role ? `${name} (${I18n.role(id.role)})` : name;
  }

  /** The pages this identity may open, except the one it was refused. */
  function ownPages(id) {
    const can = Array.isArray(id.can) ? id.can : [];
    const refused = new URL(next, window.location.origin).pathname;
    return [
      can.includes('wall') && refused !== '/' ? ['/', 'login.go_wall'] : null,
      can.includes('mayor') && refused !== '/mayor' ? ['/mayor', 'login.go_mayor'] : null,
      can.includes('province') && refused !== '/provinsi' ? ['/provinsi', 'login.go_province'] : null,
    ].filter(Boolean);
  }

  async function explainDenied() {
    $('login-title').textContent = t('login.title_other');
    $('intro').hidden = true;
    notice(h('p', { class: 'lead' }, t('login.denied')), h('p', null, t('login.denied_none')));
    const res = await UI.getJSON('/api/v1/session');
    const id = res.ok && res.body && typeof res.body.kind === 'string' ? res.body : null;
    if (!id) return; // no identity any more: the general words stand
    const pages = ownPages(id);
    notice(
      h('p', { class: 'lead' }, deniedAs(whoText(id))),
      h('p', null, t(pages.length ? 'login.denied_other' : 'login.denied_none')),
      pages.length
        ? h('p', { class: 'go' }, pages.map(([path, key]) => h('a', { href: inLang(path) }, t(key))))
        : null);
  }

  /** "Anda masuk sebagai {who}: …" with the identity in bold. */
  function deniedAs(who) {
    const parts = t('login.denied_as').split('{who}');
    return parts.length === 2 ? [parts[0], h('span', { class: 'who' }, who), parts[1]] : [t('login.denied_as', { who })];
  }

  // ---- logging in -----------------------------------------------------------------

  /** Seconds to wait from a 429: Retry-After in seconds or as a date. */
  function retryAfter(res) {
    const v = res.headers ? res.headers.get('Retry-After') : null;
    let s = v != null && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(s) && v) s = Math.ceil((Date.parse(v) - Date.now()) / 1000);
    return Number.isFinite(s) && s > 0 ? Math.min(s, 3600) : RETRY_DEFAULT_S;
  }

  function wait(seconds) {
    waitUntil = Date.now() + seconds * 1000;
    clearInterval(waitTimer);
    const tick = () => {
      const left = Math.ceil((waitUntil - Date.now()) / 1000);
      if (left > 0) {
        setStatus(t('login.err.wait', { n: I18n.fmt.int(left) }), 'error');
      } else {
        clearInterval(waitTimer);
        waitTimer = null;
        setStatus(t('login.err.again'), 'busy');
      }
      setButtons();
    };
    tick();
    waitTimer = setInterval(tick, 1000);
  }

  function invalid(on) {
    for (const id of ['username', 'password']) {
      if (on) $(id).setAttribute('aria-invalid', 'true');
      else $(id).removeAttribute('aria-invalid');
    }
  }

  async function submit() {
    if (busy || Date.now() < waitUntil) return;
    const username = $('username').value.trim();
    const password = $('password').value;
    if (!username || !password) {
      setStatus(t('login.err.empty'), 'error');
      (username ? $('password') : $('username')).focus();
      return;
    }
    busy = true;
    setButtons();
    invalid(false);
    setStatus(t('login.sending'), 'busy');
    const body = tenant ? { username, password, tenant } : { username, password };
    const res = await UI.postJSON('/api/v1/session', body);
    busy = false;
    if (res.ok) {
      busy = true; // stays disabled while the next page loads
      setButtons();
      setStatus(t('login.ok'), 'ok');
      window.location.replace(next);
      return;
    }
    if (res.status === 401) {
      setStatus(t('login.err.failed'), 'error');
      invalid(true);
      $('password').value = '';
      $('password').focus();
    } else if (res.status === 429) {
      wait(retryAfter(res));
    } else if (res.status === 0) {
      setStatus(t('login.err.network'), 'error');
    } else {
      const detail = res.body && typeof res.body.detail === 'string' ? res.body.detail : null;
      setStatus(detail || t('login.err.http', { status: res.status }), 'error');
    }
    setButtons();
  }

  // ---- wiring ---------------------------------------------------------------------

  function init() {
    I18n.apply(document);
    UI.setupLangSwitch($('lang-switch'));
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      submit();
    });
    $('login-form').addEventListener('input', () => invalid(false));

    if (params.get('denied') === '1') {
      explainDenied();
    } else if (params.get('error') === 'token') {
      notice(h('p', { class: 'lead' }, t('login.token')));
    } else if (params.get('expired') === '1') {
      notice(h('p', { class: 'lead' }, t('login.expired')));
    }
    $('username').focus();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
