// SVG charts drawn without a library: line charts (metric histories,
// time series), bar charts (feature importance, counts), histograms
// (reference against current), parallel coordinates (runs compared) and a
// layered DAG (pipelines). Every chart has axes with ticks and labels, a
// legend when it has several series, an accessible name, and values on
// hover (an SVG <title> per point or bar, and a crosshair readout on line
// charts).
import { s, h, fmtNum, fmtTime } from './dom.js';

export const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];

// niceTicks returns about n round tick values covering [lo, hi].
export function niceTicks(lo, hi, n = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) { const d = Math.abs(lo) || 1; lo -= d / 2; hi += d / 2; }
  const span = hi - lo;
  const raw = span / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => span / st <= n) || 10 * mag;
  const first = Math.ceil(lo / step - 1e-9) * step;
  const out = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// extent is [min, max] of the finite values, widened when they are all
// equal (by a minute on a time axis, else by 5%).
function extent(vals, time = false) {
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) { if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) { const d = time ? 60000 : (Math.abs(lo) * 0.05 || 1); return [lo - d, hi + d]; }
  return [lo, hi];
}

// legend lists series names with their colours (a series' own color, else
// the palette's).
function legend(names, colors = []) {
  if (names.length < 2) return null;
  return h('ul', { class: 'legend' }, names.map((n, i) => h('li', null,
    s('svg', { width: 14, height: 10, 'aria-hidden': 'true' }, s('rect', { width: 14, height: 10, fill: colors[i] || palette[i % palette.length] })), ' ', n)));
}

// timeTicks labels a time axis: seconds when it spans under ten minutes,
// minutes under two days, else dates.
function timeLabel(span) {
  if (span < 10 * 60000) return (v) => fmtTime(v).slice(11, 19);
  if (span < 2 * 86400000) return (v) => fmtTime(v).slice(5, 16);
  return (v) => fmtTime(v).slice(0, 10);
}

// lineChart draws series [{name, points: [[x, y], …]}]. opts: title,
// xLabel, yLabel, xTime (x is ms since the epoch), width, height.
export function lineChart(series, opts = {}) {
  const W = opts.width || 640, H = opts.height || 280;
  const m = { l: 64, r: 16, t: 12, b: 44 };
  const iw = W - m.l - m.r, ih = H - m.t - m.b;
  const xs = [], ys = [];
  for (const se of series) for (const [x, y] of se.points) { xs.push(x); ys.push(y); }
  let [x0, x1] = extent(xs, opts.xTime);
  let [y0, y1] = extent(ys);
  const yt = niceTicks(y0, y1, 5);
  if (yt.length) { y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]); }
  const xt = niceTicks(x0, x1, opts.xTime ? 4 : 6);
  const X = (v) => m.l + ((v - x0) / (x1 - x0 || 1)) * iw;
  const Y = (v) => m.t + ih - ((v - y0) / (y1 - y0 || 1)) * ih;
  const fx = opts.xTime ? timeLabel(x1 - x0) : fmtNum;
  const svg = s('svg', { class: 'chart line', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title || 'Line chart' },
    s('title', null, opts.title || 'Line chart'),
    // grid and axes
    yt.map((v) => s('g', { class: 'tick' }, s('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid' }),
      s('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, fmtNum(v)))),
    xt.map((v) => s('g', { class: 'tick' }, s('line', { x1: X(v), x2: X(v), y1: m.t + ih, y2: m.t + ih + 4, class: 'axis' }),
      s('text', { x: X(v), y: m.t + ih + 18, 'text-anchor': 'middle' }, fx(v)))),
    s('line', { x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih, class: 'axis' }),
    s('line', { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ih, class: 'axis' }),
    opts.xLabel ? s('text', { class: 'label', x: m.l + iw / 2, y: H - 6, 'text-anchor': 'middle' }, opts.xLabel) : null,
    opts.yLabel ? s('text', { class: 'label', transform: `translate(14 ${m.t + ih / 2}) rotate(-90)`, 'text-anchor': 'middle' }, opts.yLabel) : null,
    series.map((se, i) => {
      const col = se.color || palette[i % palette.length];
      const pts = se.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
      const d = pts.map(([x, y], j) => `${j ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join('');
      return s('g', { class: 'series', 'data-series': se.name },
        s('path', { d, fill: 'none', stroke: col, 'stroke-width': 1.75, class: se.dashed ? 'dashed' : null }),
        pts.length <= 60 ? pts.map(([x, y]) => s('circle', { cx: X(x), cy: Y(y), r: 2.5, fill: col },
          s('title', null, `${se.name}: ${fmtNum(y)} at ${opts.xLabel || 'x'} ${fx(x)}`))) : null);
    }));
  // Crosshair readout: the nearest point of each series to the pointer.
  const cross = s('line', { class: 'cross', y1: m.t, y2: m.t + ih, x1: -10, x2: -10 });
  const readout = h('div', { class: 'readout muted', 'aria-hidden': 'true' }, '\u00a0');
  svg.append(cross);
  svg.addEventListener('mousemove', (ev) => {
    const r = svg.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    if (px < m.l || px > W - m.r) return;
    const xv = x0 + ((px - m.l) / iw) * (x1 - x0);
    cross.setAttribute('x1', px); cross.setAttribute('x2', px);
    readout.textContent = series.map((se) => {
      let best = null;
      for (const p of se.points) if (best === null || Math.abs(p[0] - xv) < Math.abs(best[0] - xv)) best = p;
      return best ? `${se.name}: ${fmtNum(best[1])} @ ${fx(best[0])}` : '';
    }).filter(Boolean).join('   ');
  });
  return h('figure', { class: 'chart' }, opts.title ? h('figcaption', null, opts.title) : null, svg, legend(series.map((x) => x.name), series.map((x) => x.color)), readout);
}

// barChart draws horizontal bars [{label, value}] (sorted as given).
export function barChart(bars, opts = {}) {
  const W = opts.width || 640, rowH = 22;
  const m = { l: Math.min(220, 12 + 7 * Math.max(4, ...bars.map((b) => String(b.label).length))), r: 64, t: 8, b: 36 };
  const H = m.t + m.b + rowH * bars.length;
  const iw = W - m.l - m.r;
  const hi = Math.max(0, ...bars.map((b) => b.value)), lo = Math.min(0, ...bars.map((b) => b.value));
  const xt = niceTicks(lo, hi || 1, 5);
  const x1 = Math.max(hi, xt[xt.length - 1] ?? 1), x0 = Math.min(lo, xt[0] ?? 0);
  const X = (v) => m.l + ((v - x0) / (x1 - x0 || 1)) * iw;
  const svg = s('svg', { class: 'chart bar', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title || 'Bar chart' },
    s('title', null, opts.title || 'Bar chart'),
    xt.map((v) => s('g', { class: 'tick' }, s('line', { x1: X(v), x2: X(v), y1: m.t, y2: H - m.b, class: 'grid' }),
      s('text', { x: X(v), y: H - m.b + 16, 'text-anchor': 'middle' }, fmtNum(v)))),
    bars.map((b, i) => {
      const y = m.t + i * rowH;
      return s('g', { class: 'bar' },
        s('text', { x: m.l - 6, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, String(b.label)),
        s('rect', { x: Math.min(X(0), X(b.value)), y: y + 3, width: Math.max(1, Math.abs(X(b.value) - X(0))), height: rowH - 6, fill: b.color || opts.color || palette[0] },
          s('title', null, `${b.label}: ${fmtNum(b.value)}`)),
        s('text', { x: Math.max(X(0), X(b.value)) + 4, y: y + rowH / 2 + 4, class: 'value' }, fmtNum(b.value)));
    }),
    s('line', { x1: X(0), x2: X(0), y1: m.t, y2: H - m.b, class: 'axis' }),
    opts.xLabel ? s('text', { class: 'label', x: m.l + iw / 2, y: H - 4, 'text-anchor': 'middle' }, opts.xLabel) : null);
  return h('figure', { class: 'chart' }, opts.title ? h('figcaption', null, opts.title) : null, svg);
}

// histogram draws vertical bars per bin for one or more series
// [{name, counts: [..]}] over shared bins [{label}] (or edges); counts
// are shown as shares when opts.normalize.
export function histogram(bins, series, opts = {}) {
  const W = opts.width || 640, H = opts.height || 240;
  const m = { l: 56, r: 12, t: 12, b: 56 };
  const iw = W - m.l - m.r, ih = H - m.t - m.b;
  const vals = series.map((se) => {
    const tot = se.counts.reduce((a, b) => a + b, 0) || 1;
    return opts.normalize ? se.counts.map((c) => c / tot) : se.counts;
  });
  const hi = Math.max(0, ...vals.flat());
  const yt = niceTicks(0, hi || 1, 4);
  const y1 = Math.max(hi, yt[yt.length - 1] ?? 1);
  const Y = (v) => m.t + ih - (v / (y1 || 1)) * ih;
  const bw = iw / Math.max(1, bins.length);
  const gw = (bw * 0.85) / Math.max(1, series.length);
  const every = Math.ceil(bins.length / 10);
  const svg = s('svg', { class: 'chart hist', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title || 'Histogram' },
    s('title', null, opts.title || 'Histogram'),
    yt.map((v) => s('g', { class: 'tick' }, s('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid' }),
      s('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, opts.normalize ? `${fmtNum(v * 100)}%` : fmtNum(v)))),
    bins.map((b, i) => [
      series.map((se, j) => {
        const v = vals[j][i] ?? 0;
        return s('rect', { x: m.l + i * bw + bw * 0.075 + j * gw, y: Y(v), width: Math.max(0.5, gw - 1), height: Math.max(0, m.t + ih - Y(v)), fill: se.color || palette[j % palette.length] },
          s('title', null, `${se.name}, ${b.label}: ${opts.normalize ? fmtNum(v * 100) + '%' : fmtNum(v)}`));
      }),
      i % every === 0 ? s('text', { x: m.l + i * bw + bw / 2, y: m.t + ih + 14, 'text-anchor': 'end', transform: `rotate(-30 ${m.l + i * bw + bw / 2} ${m.t + ih + 14})` }, String(b.label).slice(0, 14)) : null,
    ]),
    s('line', { x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih, class: 'axis' }),
    s('line', { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ih, class: 'axis' }),
    opts.xLabel ? s('text', { class: 'label', x: m.l + iw / 2, y: H - 4, 'text-anchor': 'middle' }, opts.xLabel) : null,
    s('text', { class: 'label', transform: `translate(12 ${m.t + ih / 2}) rotate(-90)`, 'text-anchor': 'middle' }, opts.yLabel || (opts.normalize ? 'share' : 'count')));
  return h('figure', { class: 'chart' }, opts.title ? h('figcaption', null, opts.title) : null, svg, legend(series.map((x) => x.name), series.map((x) => x.color)));
}

// parallelCoords draws lines [{name, values: {dim: value}}] across dims
// [{key, label}]; a dimension whose values are not all numbers is
// categorical (its values spread evenly in sorted order).
export function parallelCoords(dims, lines, opts = {}) {
  const W = opts.width || 720, H = opts.height || 300;
  const m = { l: 40, r: 40, t: 28, b: 24 };
  const ih = H - m.t - m.b;
  const gap = (W - m.l - m.r) / Math.max(1, dims.length - 1);
  const scales = dims.map((d) => {
    const vs = lines.map((l) => l.values[d.key]).filter((v) => v !== undefined && v !== null && v !== '');
    const numeric = vs.length > 0 && vs.every((v) => Number.isFinite(Number(v)));
    if (numeric) {
      const [lo, hi] = extent(vs.map(Number));
      return { numeric, lo, hi, y: (v) => m.t + ih - ((Number(v) - lo) / (hi - lo || 1)) * ih };
    }
    const cats = [...new Set(vs.map(String))].sort();
    return { numeric, cats, y: (v) => m.t + (cats.length < 2 ? ih / 2 : (cats.indexOf(String(v)) / (cats.length - 1)) * ih) };
  });
  const svg = s('svg', { class: 'chart parallel', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title || 'Parallel coordinates' },
    s('title', null, opts.title || 'Parallel coordinates'),
    lines.map((l, i) => {
      const pts = dims.map((d, j) => { const v = l.values[d.key]; return v === undefined || v === null || v === '' ? null : [m.l + j * gap, scales[j].y(v)]; });
      const d = pts.map((p, j) => (p ? `${j && pts[j - 1] ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}` : '')).join('');
      return s('path', { d, fill: 'none', stroke: l.color || palette[i % palette.length], 'stroke-width': 1.5, 'stroke-opacity': 0.8, class: 'pline' },
        s('title', null, `${l.name}: ${dims.map((dd) => `${dd.label || dd.key}=${l.values[dd.key] ?? '–'}`).join(', ')}`));
    }),
    dims.map((d, j) => {
      const x = m.l + j * gap, sc = scales[j];
      const ticks = sc.numeric ? [sc.lo, (sc.lo + sc.hi) / 2, sc.hi] : sc.cats;
      return s('g', { class: 'paxis' },
        s('line', { x1: x, x2: x, y1: m.t, y2: m.t + ih, class: 'axis' }),
        s('text', { x, y: m.t - 10, 'text-anchor': 'middle', class: 'label' }, d.label || d.key),
        ticks.map((t) => s('text', { x: x + 4, y: sc.y(t) + 4 }, sc.numeric ? fmtNum(t) : String(t))));
    }));
  return h('figure', { class: 'chart' }, opts.title ? h('figcaption', null, opts.title) : null, svg, legend(lines.map((l) => l.name), lines.map((l) => l.color)));
}

// dag draws nodes [{id, label, state}] and edges [[from, to]] in layers by
// longest path from the roots, left to right.
export function dag(nodes, edges, opts = {}) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parents = new Map(nodes.map((n) => [n.id, []]));
  for (const [a, b] of edges) if (parents.has(b) && byId.has(a)) parents.get(b).push(a);
  const depth = new Map();
  const visit = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0; // a cycle: the server refuses those, but draw anyway
    seen.add(id);
    const d = Math.max(-1, ...parents.get(id).map((p) => visit(p, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  nodes.forEach((n) => visit(n.id));
  const layers = [];
  for (const n of nodes) (layers[depth.get(n.id)] ||= []).push(n);
  const nw = 150, nh = 40, gx = 60, gy = 18;
  const W = Math.max(200, layers.length * (nw + gx) + 20);
  const H = Math.max(80, Math.max(...layers.map((l) => l.length)) * (nh + gy) + 20);
  const pos = new Map();
  layers.forEach((l, i) => l.forEach((n, j) => {
    const top = (H - l.length * (nh + gy) + gy) / 2;
    pos.set(n.id, { x: 10 + i * (nw + gx), y: top + j * (nh + gy) });
  }));
  const stateCls = (st) => {
    const k = String(st || '').toLowerCase();
    if (/succeeded|finished|success|completed|cached|skipped_cached/.test(k)) return 'good';
    if (/failed|error|cancel|killed/.test(k)) return 'bad';
    if (/running|pending|retry|waiting|queued/.test(k)) return 'warn';
    return 'neutral';
  };
  const svg = s('svg', { class: 'chart dag', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title || 'Pipeline graph' },
    s('title', null, opts.title || 'Pipeline graph'),
    s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0L10,5L0,10z', class: 'arrowhead' }))),
    edges.filter(([a, b]) => pos.has(a) && pos.has(b)).map(([a, b]) => {
      const p = pos.get(a), q = pos.get(b);
      const x1 = p.x + nw, y1 = p.y + nh / 2, x2 = q.x, y2 = q.y + nh / 2;
      return s('path', { d: `M${x1},${y1}C${x1 + gx / 2},${y1} ${x2 - gx / 2},${y2} ${x2},${y2}`, class: 'edge', 'marker-end': 'url(#arrow)' });
    }),
    nodes.map((n) => {
      const p = pos.get(n.id);
      const g = s('g', { class: `node ${stateCls(n.state)}`, 'data-node': n.id, tabindex: opts.onSelect ? 0 : null, role: opts.onSelect ? 'button' : null },
        s('rect', { x: p.x, y: p.y, width: nw, height: nh, rx: 6 }),
        s('text', { x: p.x + nw / 2, y: p.y + 17, 'text-anchor': 'middle', class: 'name' }, String(n.label ?? n.id).slice(0, 20)),
        s('text', { x: p.x + nw / 2, y: p.y + 32, 'text-anchor': 'middle', class: 'state' }, n.state || ''),
        s('title', null, `${n.label ?? n.id}${n.state ? ': ' + n.state : ''}`));
      if (opts.onSelect) {
        g.addEventListener('click', () => opts.onSelect(n));
        g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); opts.onSelect(n); } });
      }
      return g;
    }));
  return h('figure', { class: 'chart' }, opts.title ? h('figcaption', null, opts.title) : null, svg);
}
