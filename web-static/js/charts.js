/*
 * charts.js — the few charts of the pages, drawn as inline SVG with DOM APIs
 * (createElementNS, textContent); no library. See docs/ui.md.
 *
 *   Charts.bars(el, opts)    counts per time bucket (the wall's 24 h trends)
 *   Charts.line(el, opts)    a ratio per day with a reference line (the mayor's SLA trend)
 *   Charts.spark(el, opts)   a sensor's 24 h sparkline with its thresholds
 *
 * bars and line draw in pixels: the SVG's viewBox is the size of its container,
 * so text keeps its CSS size at any resolution; they are drawn again when the
 * container is resized (ResizeObserver). The container's size comes from CSS,
 * never from the chart, so a chart arriving or changing never moves the page.
 * spark stretches a fixed viewBox instead (it has no text) and keeps its
 * strokes and dots round with vector-effect="non-scaling-stroke".
 *
 * Every chart sets data-state on its container: "ok", or "empty" when there is
 * nothing to draw (then it shows "—").
 */
(function () {
  'use strict';

  const { svg } = UI;

  // ---- resize handling ------------------------------------------------------

  const drawn = new WeakMap(); // container -> () => void (draw again with the last data)
  const observer = typeof ResizeObserver === 'function'
    ? new ResizeObserver((entries) => {
      for (const e of entries) {
        const redraw = drawn.get(e.target);
        if (redraw) redraw();
      }
    })
    : null;

  function remember(el, redraw) {
    if (!drawn.has(el) && observer) observer.observe(el);
    drawn.set(el, redraw);
  }

  /** Size of the container in CSS px and its font size (for margins). */
  function box(el) {
    const w = Math.floor(el.clientWidth);
    const hgt = Math.floor(el.clientHeight);
    const fs = parseFloat(getComputedStyle(el).fontSize) || 16;
    return { w, h: hgt, fs };
  }

  /** "—" in place of a chart, with an accessible name. */
  function empty(el) {
    el.dataset.state = 'empty';
    el.replaceChildren(UI.h('div', { class: 'chart-empty', role: 'img', 'aria-label': I18n.t('chart.nodata') }, UI.DASH));
  }

  /** A whole "nice" step (1, 2, 5 × 10^k) and top for a count axis from 0 to max, at most `ticks` steps. */
  function niceScale(max, ticks) {
    if (!(max > 0)) return { top: 1, step: 1 };
    const raw = max / ticks;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = Math.max(1, [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw));
    return { top: Math.ceil(max / step) * step, step };
  }

  const round = (v) => Math.round(v * 10) / 10;

  /** Centre of an x-axis label, kept inside [left, width] (its width estimated from its length). */
  function clampLabel(x, label, fs, left, width) {
    const half = (String(label).length * fs * 0.6) / 2;
    return Math.min(Math.max(x, left + half), width - half);
  }

  // ---- bars -------------------------------------------------------------------

  /**
   * Counts per bucket, oldest first; the last bucket is still filling and is drawn
   * lighter.
   *   opts.buckets: [{t: epoch ms, v: number|null}]
   *   opts.stepMs: bucket length
   *   opts.xTick(t): label under the bucket starting at t, or null
   *   opts.title: for the accessible name
   */
  function bars(el, opts) {
    remember(el, () => bars(el, opts));
    const buckets = (opts && opts.buckets) || [];
    const { w, h: H, fs } = box(el);
    if (!buckets.length || !buckets.some((b) => typeof b.v === 'number')) return empty(el);
    if (w < 20 || H < 20) return;

    const F = I18n.fmt;
    const max = Math.max(0, ...buckets.map((b) => (typeof b.v === 'number' ? b.v : 0)));
    const { top, step } = niceScale(max, 3);
    const yLabels = [];
    for (let v = 0; v <= top + 1e-9; v += step) yLabels.push(v);
    const labelW = Math.max(...yLabels.map((v) => F.int(v).length)) * fs * 0.62 + fs * 0.5;
    const m = { l: labelW, r: fs * 0.2, t: fs * 0.6, b: fs * 1.45 };
    const pw = Math.max(1, w - m.l - m.r);
    const ph = Math.max(1, H - m.t - m.b);
    const y = (v) => m.t + ph - (v / top) * ph;
    const bw = pw / buckets.length;

    const root = svg('svg', {
      class: 'chart-svg', width: w, height: H, viewBox: `0 0 ${w} ${H}`,
      role: 'img', 'aria-label': barsLabel(opts, buckets, max),
    });
    const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
    for (const v of yLabels) {
      const yy = round(y(v));
      grid.append(
        svg('line', { x1: round(m.l), x2: round(w - m.r), y1: yy, y2: yy, class: v === 0 ? 'axis' : 'gridline' }),
        svg('text', { x: round(m.l - fs * 0.3), y: yy, class: 'ylabel', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, F.int(v)));
    }
    root.append(grid);

    const g = svg('g', { class: 'bars', 'aria-hidden': 'true' });
    const ticks = svg('g', { class: 'xticks', 'aria-hidden': 'true' });
    buckets.forEach((b, i) => {
      const x0 = m.l + i * bw;
      const last = i === buckets.length - 1;
      if (typeof b.v === 'number' && b.v > 0) {
        const yy = y(b.v);
        g.append(svg('rect', {
          x: round(x0 + bw * 0.12), y: round(yy), width: round(Math.max(1, bw * 0.76)),
          height: round(m.t + ph - yy), class: last ? 'bar partial' : 'bar',
        }));
      }
      const label = opts.xTick ? opts.xTick(b.t, i, last) : null;
      if (label) {
        ticks.append(
          svg('line', { x1: round(x0), x2: round(x0), y1: round(m.t + ph), y2: round(m.t + ph + fs * 0.3), class: 'tick' }),
          svg('text', { x: round(clampLabel(x0, label, fs, m.l, w)), y: round(H - fs * 0.2), class: 'xlabel', 'text-anchor': 'middle' }, label));
      }
    });
    root.append(g, ticks);
    el.dataset.state = 'ok';
    el.replaceChildren(root);
  }

  function barsLabel(opts, buckets, max) {
    const F = I18n.fmt;
    const total = buckets.reduce((s, b) => s + (typeof b.v === 'number' ? b.v : 0), 0);
    const peak = buckets.find((b) => b.v === max);
    return I18n.t('chart.bars.aria', {
      title: opts.title || '', total: F.int(total), max: F.int(max), time: peak ? F.hhmm(peak.t) : '—',
    });
  }

  // ---- line (ratio per day) ------------------------------------------------------

  /**
   * A ratio per bucket (0..1, null when unknown), drawn as a line with a dot per
   * bucket; gaps break the line. The last bucket (today, still filling) has a
   * hollow dot. A dashed reference line marks opts.ref (e.g. the 30-day value).
   *   opts.points: [{t, v, title}]   opts.ref: number|null
   *   opts.xTick(t, i, last): label or null    opts.label: accessible name
   */
  function line(el, opts) {
    remember(el, () => line(el, opts));
    const pts = (opts && opts.points) || [];
    const { w, h: H, fs } = box(el);
    const vals = pts.map((p) => p.v).filter((v) => typeof v === 'number');
    if (!vals.length) return empty(el);
    if (w < 20 || H < 20) return;

    const F = I18n.fmt;
    const ref = typeof opts.ref === 'number' ? opts.ref : null;
    // The axis runs up to 100% and down to a round 10% below the lowest value,
    // so that day-to-day changes are visible; the labels say where it starts.
    const lowest = Math.min(...vals, ref == null ? 1 : ref);
    const lo = Math.max(0, Math.floor((lowest - 0.02) * 10) / 10);
    const hi = 1;
    const stepV = hi - lo > 0.5 ? 0.2 : 0.1;
    const yLabels = [];
    for (let v = hi; v >= lo - 1e-9; v -= stepV) yLabels.push(Math.round(v * 100) / 100);

    const labelW = F.pct0(1).length * fs * 0.62 + fs * 0.5;
    const m = { l: labelW, r: fs * 0.6, t: fs * 0.7, b: fs * 1.5 };
    const pw = Math.max(1, w - m.l - m.r);
    const ph = Math.max(1, H - m.t - m.b);
    const y = (v) => m.t + ph - ((v - lo) / (hi - lo)) * ph;
    const bw = pw / pts.length;
    const x = (i) => m.l + bw * (i + 0.5);

    const root = svg('svg', {
      class: 'chart-svg', width: w, height: H, viewBox: `0 0 ${w} ${H}`, role: 'img', 'aria-label': opts.label || '',
    });
    const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
    for (const v of yLabels) {
      const yy = round(y(v));
      grid.append(
        svg('line', { x1: round(m.l), x2: round(w - m.r), y1: yy, y2: yy, class: v === lo ? 'axis' : 'gridline' }),
        svg('text', { x: round(m.l - fs * 0.3), y: yy, class: 'ylabel', 'text-anchor': 'end', 'dominant-baseline': 'middle' }, F.pct0(v)));
    }
    root.append(grid);

    const ticks = svg('g', { class: 'xticks', 'aria-hidden': 'true' });
    pts.forEach((p, i) => {
      const label = opts.xTick ? opts.xTick(p.t, i, i === pts.length - 1) : null;
      if (!label) return;
      const xx = round(x(i));
      ticks.append(
        svg('line', { x1: xx, x2: xx, y1: round(m.t + ph), y2: round(m.t + ph + fs * 0.3), class: 'tick' }),
        svg('text', { x: round(clampLabel(x(i), label, fs, m.l, w)), y: round(H - fs * 0.25), class: 'xlabel', 'text-anchor': 'middle' }, label));
    });
    root.append(ticks);

    if (ref != null) {
      const yy = round(y(ref));
      root.append(svg('line', { x1: round(m.l), x2: round(w - m.r), y1: yy, y2: yy, class: 'refline', 'aria-hidden': 'true' }));
    }

    // The line, broken where a day has no value.
    let d = '';
    let open = false;
    pts.forEach((p, i) => {
      if (typeof p.v !== 'number') {
        open = false;
        return;
      }
      d += (open ? 'L' : 'M') + round(x(i)) + ' ' + round(y(p.v));
      open = true;
    });
    root.append(svg('path', { d, class: 'series', 'aria-hidden': 'true' }));

    const dots = svg('g', { class: 'dots' });
    const r = Math.max(2.5, Math.min(bw * 0.28, fs * 0.32));
    pts.forEach((p, i) => {
      if (typeof p.v !== 'number') {
        // A day with nothing resolved: a small mark on the axis, not a zero.
        dots.append(svg('line', {
          x1: round(x(i) - r), x2: round(x(i) + r), y1: round(m.t + ph), y2: round(m.t + ph), class: 'nodata',
        }, p.title ? svg('title', null, p.title) : null));
        return;
      }
      dots.append(svg('circle', {
        cx: round(x(i)), cy: round(y(p.v)), r: round(r), class: i === pts.length - 1 ? 'dot partial' : 'dot',
      }, p.title ? svg('title', null, p.title) : null));
    });
    root.append(dots);
    el.dataset.state = 'ok';
    el.replaceChildren(root);
  }

  // ---- sparkline --------------------------------------------------------------------

  const SW = 100; // viewBox of a sparkline; stretched to its box
  const SH = 40;

  /**
   * A sensor's last 24 h: opts.values (numbers or null, oldest first),
   * opts.thresholds {waspada, siaga, awas} (any may be missing), opts.level of
   * the latest reading (colours the end dot). The scale always reaches the siaga
   * threshold (and awas once siaga is passed), so the distance to danger shows;
   * the thresholds are faint dashed lines.
   */
  function spark(el, opts) {
    const values = (opts && opts.values) || [];
    const nums = values.filter((v) => typeof v === 'number');
    if (!nums.length) {
      el.dataset.state = 'empty';
      el.replaceChildren();
      return;
    }
    const th = (opts && opts.thresholds) || {};
    const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    const siaga = num(th.siaga);
    const awas = num(th.awas);
    const waspada = num(th.waspada);
    let lo = Math.min(...nums);
    let hi = Math.max(...nums);
    const first = siaga != null ? siaga : awas != null ? awas : waspada;
    if (first != null) hi = Math.max(hi, first);
    if (awas != null && hi >= (siaga != null ? siaga : awas)) hi = Math.max(hi, awas);
    if (hi - lo < 1e-9) {
      hi += 1;
      lo -= 1;
    }
    const pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
    const n = values.length;
    const x = (i) => (n === 1 ? SW / 2 : (i / (n - 1)) * SW);
    const y = (v) => SH - ((v - lo) / (hi - lo)) * SH;
    const r2 = (v) => Math.round(v * 100) / 100;

    const root = svg('svg', {
      class: 'spark-svg', viewBox: `0 0 ${SW} ${SH}`, preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false',
    });
    for (const [name, v] of [['waspada', waspada], ['siaga', siaga], ['awas', awas]]) {
      if (v == null || v < lo || v > hi) continue;
      root.append(svg('line', {
        x1: 0, x2: SW, y1: r2(y(v)), y2: r2(y(v)), class: `th th-${name}`, 'vector-effect': 'non-scaling-stroke',
      }));
    }
    // Gaps of up to `bridge` empty buckets (a gauge reporting every 30 min in
    // 15-min buckets) are joined; longer ones break the line. A lone point still
    // shows: a zero-length segment with round caps.
    const bridge = (opts && opts.bridge) || 0;
    const segs = [];
    let seg = null;
    let lastI = -1;
    values.forEach((v, i) => {
      if (typeof v !== 'number') return;
      if (!seg || i - lastI - 1 > bridge) {
        seg = [];
        segs.push(seg);
      }
      seg.push(`${r2(x(i))} ${r2(y(v))}`);
      lastI = i;
    });
    const d = segs.map((pts) => 'M' + pts.join('L') + (pts.length === 1 ? 'l0 0' : '')).join('');
    root.append(svg('path', { d, class: 'spark-line', 'vector-effect': 'non-scaling-stroke' }));
    if (lastI >= 0) {
      const px = r2(x(lastI));
      const py = r2(y(values[lastI]));
      root.append(svg('path', {
        d: `M${px} ${py}l0 0`, class: `spark-dot lvl-${(opts && opts.level) || 'unknown'}`, 'vector-effect': 'non-scaling-stroke',
      }));
    }
    el.dataset.state = 'ok';
    el.replaceChildren(root);
  }

  window.Charts = { bars, line, spark };
})();
