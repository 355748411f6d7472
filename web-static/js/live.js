/*
 * live.js — the shared websocket client of the wall screen and the mayor's page.
 *
 * Protocol (docs/spec/ws.md): connect to ws(s)://<host>/ws with subprotocol
 * "situation.v1". The server sends a `snapshot` (every KPI), then `kpis` deltas
 * (only the changed keys) and `alert` messages; `seq` rises by one per message.
 *
 *   Live.start({
 *     onState(state, changedKeys, meta),  // state: { "<kpi key>": value, ... }
 *     onStatus(status),                   // see makeStatus() below
 *     onRejected(),                       // see below
 *   });
 *
 * - state is replaced on each snapshot and merged key by key on each kpis delta;
 * - an `alert` message is merged by id into state["alerts.active"] at once (the
 *   next kpis delta carries the authoritative list anyway); the page may merge
 *   an alert it got from the API the same way (applyAlert);
 * - a gap in seq closes the socket and reconnects, which yields a fresh snapshot;
 * - reconnects back off exponentially from 0.5 s to 10 s, with jitter;
 * - the data is STALE when the socket is not open, no snapshot has arrived on it
 *   yet, or nothing arrived for 10 s (the server pushes at least every 5 s);
 *   it is STALE too while the server says its database is down (`database` in
 *   the snapshot and `status` messages): nothing new can be committed, so the
 *   numbers are only the last known ones. status.reason says which.
 *   After 20 s of silence the socket is presumed dead and replaced.
 * - the page cannot see why a websocket was refused (a 401 looks like a server
 *   that is down), so onRejected is called when the server closes an open socket
 *   with 1008 (policy: the identity was revoked) and when two attempts in a row
 *   closed without ever opening; the page then asks GET /api/v1/session.
 */
(function () {
  'use strict';

  const SUBPROTOCOL = 'situation.v1';
  const STALE_MS = 10000;
  const DEAD_MS = 20000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const TICK_MS = 1000;

  function wsUrl() {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const path = window.UI && UI.withTenant ? UI.withTenant('/ws') : '/ws';
    return scheme + '//' + window.location.host + path;
  }

  /** Order of alerts.active: newest raised_at first, then the greater id. */
  function compareAlerts(a, b) {
    const ta = Date.parse(a.raised_at) || 0;
    const tb = Date.parse(b.raised_at) || 0;
    if (ta !== tb) return tb - ta;
    if (typeof a.id === 'number' && typeof b.id === 'number') return b.id - a.id;
    return String(b.id).localeCompare(String(a.id), 'en', { numeric: true });
  }

  /** Whether an alert object sent in an `alert` message says it is cleared. */
  function isCleared(msg, alert) {
    return (
      alert.cleared_at != null ||
      alert.cleared === true ||
      alert.active === false ||
      alert.state === 'cleared' ||
      alert.status === 'cleared' ||
      msg.event === 'cleared' ||
      msg.action === 'cleared'
    );
  }

  function start(handlers) {
    const onState = (handlers && handlers.onState) || function () {};
    const onStatus = (handlers && handlers.onStatus) || function () {};
    const onRejected = (handlers && handlers.onRejected) || function () {};

    let state = {};          // the current KPI object
    let ws = null;           // the current socket (null between attempts)
    let synced = false;      // a snapshot arrived on the current socket
    let lastSeq = null;      // seq of the last message on the current socket
    let lastAt = null;       // `at` of the last message that carried one (server time)
    let lastMsgMs = 0;       // local time the last message arrived
    let aliveMs = 0;         // local time of the last sign of life of the current socket
    let hasData = false;     // a snapshot arrived at least once
    let dbDown = false;      // the server says its database is unreachable
    let downSince = null;    // since when (RFC 3339), when dbDown
    let attempt = 0;         // reconnect attempts since the last snapshot
    let refused = 0;         // attempts in a row that closed without opening
    let retryTimer = null;
    let lastStatusKey = '';

    function makeStatus() {
      const open = !!ws && ws.readyState === WebSocket.OPEN;
      const fresh = open && synced && Date.now() - lastMsgMs <= STALE_MS;
      return {
        stale: !fresh || dbDown, // show the STALE banner
        reason: !fresh ? 'connection' : dbDown ? 'database' : null,
        downSince: dbDown ? downSince : null, // when the database was lost
        open,                // the socket is open
        hasData,             // there is something to show at all
        lastAt,              // `at` of the last server message (RFC 3339) or null
        lastMessageMs: lastMsgMs || null,
      };
    }

    function emitStatus(force) {
      const s = makeStatus();
      const key = [s.stale, s.reason, s.downSince, s.open, s.hasData, s.lastAt].join('|');
      if (force || key !== lastStatusKey) {
        lastStatusKey = key;
        try {
          onStatus(s);
        } catch (e) {
          console.error('onStatus', e);
        }
      }
    }

    function emitState(changed, meta) {
      try {
        onState(state, changed, meta);
      } catch (e) {
        console.error('onState', e);
      }
    }

    function scheduleReconnect(fast) {
      if (retryTimer) return;
      // Exponential backoff with "equal jitter": half fixed, half random.
      const base = fast ? BACKOFF_MIN_MS : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
      const delay = Math.max(BACKOFF_MIN_MS, base / 2 + Math.random() * (base / 2));
      attempt = Math.min(attempt + 1, 16);
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, delay);
    }

    /** Abandon the current socket (without waiting for its close handshake) and retry. */
    function drop(reason, fast) {
      const old = ws;
      ws = null;
      synced = false;
      lastSeq = null;
      if (old) {
        old.onopen = old.onmessage = old.onerror = old.onclose = null;
        try {
          old.close(4000, reason);
        } catch (e) {
          /* already closing */
        }
      }
      emitStatus();
      scheduleReconnect(fast);
    }

    function connect() {
      let sock;
      try {
        sock = new WebSocket(wsUrl(), SUBPROTOCOL);
      } catch (e) {
        console.warn('websocket:', e.message);
        ws = null;
        emitStatus();
        scheduleReconnect(false);
        return;
      }
      ws = sock;
      synced = false;
      lastSeq = null;

      aliveMs = Date.now();
      let opened = false;

      sock.onopen = () => {
        if (sock !== ws) return;
        opened = true;
        refused = 0;
        aliveMs = Date.now();
        emitStatus();
      };

      sock.onmessage = (ev) => {
        if (sock !== ws) return;
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (e) {
          console.warn('websocket: not JSON, ignored');
          return;
        }
        if (!msg || typeof msg !== 'object') return;
        handle(msg);
      };

      sock.onclose = (ev) => {
        if (sock !== ws) return;
        if (!opened) refused++;
        const rejected = ev.code === 1008 || refused === 2 || (refused > 2 && refused % 4 === 0);
        drop('closed', false);
        if (rejected) {
          try {
            onRejected();
          } catch (e) {
            console.error('onRejected', e);
          }
        }
      };
      // onerror is always followed by onclose.
    }

    /** Put one alert object into state["alerts.active"] (or take it out when cleared). */
    function mergeAlert(msg, a) {
      const list = (Array.isArray(state['alerts.active']) ? state['alerts.active'] : [])
        .filter((x) => String(x.id) !== String(a.id));
      if (!isCleared(msg, a)) list.push(a);
      list.sort(compareAlerts);
      state = Object.assign({}, state, { 'alerts.active': list });
    }

    /** What a snapshot or a status message says of the server's database. */
    function database(msg) {
      if (typeof msg.database !== 'string') return;
      dbDown = msg.database === 'down';
      downSince = dbDown && typeof msg.down_since === 'string' ? msg.down_since : null;
    }

    function handle(msg) {
      const type = msg.type;

      if (type === 'error') {
        console.warn('server:', msg.message);
        return;
      }

      if (typeof msg.seq === 'number') {
        if (type === 'snapshot') {
          lastSeq = msg.seq;
        } else if (!synced) {
          return; // a delta before any snapshot on this socket: meaningless, wait
        } else if (msg.seq !== lastSeq + 1) {
          console.warn('websocket: seq gap', lastSeq, '->', msg.seq, '; reconnecting');
          drop('seq gap', true);
          return;
        } else {
          lastSeq = msg.seq;
        }
      } else if (!synced && type !== 'snapshot') {
        return;
      }

      lastMsgMs = aliveMs = Date.now();
      if (typeof msg.at === 'string') lastAt = msg.at;
      const meta = { type, seq: msg.seq, at: msg.at };

      if (type === 'snapshot') {
        const prev = state;
        state = Object.assign({}, msg.kpis || {});
        synced = true;
        hasData = true;
        attempt = 0;
        database(msg);
        emitStatus();
        // Changed: every key of the new snapshot and any key it no longer has.
        emitState(Object.keys(Object.assign({}, prev, state)), meta);
      } else if (type === 'kpis') {
        const delta = msg.kpis || {};
        const changed = Object.keys(delta);
        // A new object each time so consumers may compare references.
        state = Object.assign({}, state, delta);
        emitStatus();
        if (changed.length) emitState(changed, meta);
      } else if (type === 'alert' && msg.alert && msg.alert.id != null) {
        mergeAlert(msg, msg.alert);
        emitStatus();
        emitState(['alerts.active'], meta);
      } else if (type === 'status') {
        database(msg);
        emitStatus();
      } else {
        emitStatus(); // unknown type: ignored (forward compatibility), but it is a sign of life
      }
    }

    // Watchdog: staleness is a matter of time passing, so check it every second.
    // A socket silent (or stuck connecting) for DEAD_MS is replaced.
    setInterval(() => {
      if (ws && Date.now() - aliveMs > DEAD_MS) {
        console.warn('websocket: silent for', DEAD_MS / 1000, 's; reconnecting');
        drop('silent', false);
      }
      emitStatus();
    }, TICK_MS);

    emitStatus(true);
    connect();

    return {
      /** The current KPI object. */
      state: () => state,
      status: makeStatus,
      /**
       * Merge an alert the page got from the API (the answer to an acknowledgement)
       * as if it came in an `alert` message; the server's own message follows anyway.
       * Ignored before the first snapshot and for alerts no longer in the list.
       */
      applyAlert(a) {
        if (!hasData || !a || a.id == null) return;
        const list = Array.isArray(state['alerts.active']) ? state['alerts.active'] : [];
        if (!list.some((x) => String(x.id) === String(a.id))) return;
        mergeAlert({}, a);
        emitState(['alerts.active'], { type: 'local' });
      },
    };
  }

  window.Live = { start };
})();
