// Monitoring: the monitors (with their last result, filtered by endpoint)
// and a summary of the firing alerts; a monitor's page (dataset drift share
// and every feature's score against its threshold over time, the latest
// per-feature tests, reference-against-current distributions of a feature,
// the endpoint's performance from labels per window, the run history, the
// alert rules, and "Run now"); and the alerts page (active alerts, the
// alert history with start and resolve times, the receivers).
import { h, link, clear, table, kv, tabs, badge, fmtNum, fmtTime, fmtDuration, errorBox, section, toast, confirmDialog } from '../lib/dom.js';
import { v1 } from '../lib/api.js';
import { lineChart, histogram, barChart } from '../lib/chart.js';

const RESULTS = 500; // the newest results a monitor's page reads
const HISTORY = 200; // alert history events shown
const WIDE = { width: 1100, height: 320 }; // charts that span the page

let cssLoaded = false;
function loadCSS() {
  if (cssLoaded) return;
  cssLoaded = true;
  document.head.append(h('link', { rel: 'stylesheet', href: '/ui/pages/monitoring.css' }));
}

export async function render(ctx) {
  loadCSS();
  const [, a, b] = ctx.segments;
  if (a === 'alerts') return alertsPage(ctx);
  if (a === 'monitors' && b) return monitorPage(ctx, b);
  return monitorList(ctx);
}

// ---- small helpers -------------------------------------------------------

const enc = encodeURIComponent;
const ms = (t) => (t ? Date.parse(t) : NaN);
const num = (v) => (v === null || v === undefined || v === '' ? NaN : Number(v)); // "Infinity", "NaN" as well

// dur prints a Go duration ("1h0m0s") without its zero parts ("1h").
export function dur(s) {
  if (!s) return '';
  const out = String(s).replace(/(\d)h0m0s$/, '$1h').replace(/(\d)m0s$/, '$1m');
  return out === '0s' ? '0s' : out;
}

export function referenceText(ref) {
  if (!ref || ref.lineage || (!ref.dataset && !ref.window)) return 'training data of the served model (lineage)';
  if (ref.dataset) return `dataset ${ref.dataset}`;
  const w = ref.window;
  if (w.start || w.end) return `window ${fmtTime(w.start)} – ${fmtTime(w.end)}`;
  return `window of the last ${dur(w.last)}${w.offset ? `, ${dur(w.offset)} ago` : ''}`;
}

function sevBadge(sev) {
  const s = sev || 'warning';
  return h('span', { class: `badge ${s === 'critical' ? 'bad' : s === 'warning' ? 'warn' : 'neutral'}` }, s);
}

function driftBadge(r) {
  if (!r || !r.drift) return h('span', { class: 'badge neutral' }, 'not checked');
  return r.drift.dataset_drift ? h('span', { class: 'badge bad' }, 'drift detected') : h('span', { class: 'badge good' }, 'no drift');
}

function verdict(f) {
  if (f.error) return h('span', { class: 'badge neutral', title: f.error }, 'error');
  return f.drift ? badge('drifted') : badge('ok');
}

function labelChips(labels, skip = []) {
  const entries = Object.entries(labels || {}).filter(([k]) => !skip.includes(k)).sort(([a], [b]) => a.localeCompare(b));
  return h('span', { class: 'mon-labels' }, entries.map(([k, v]) => h('code', null, `${k}=${v}`)));
}

function statusOf(mi) { return mi.latest ? mi.latest.status : 'pending'; }

// scoreName says what a feature's score is: a p-value or a distance.
const scoreName = (f) => (f.p_value ? 'p-value' : 'distance');

// ---- the monitors --------------------------------------------------------

async function monitorList(ctx) {
  ctx.title('Monitoring');
  const endpoint = ctx.query.get('endpoint') || '';
  const [all, active] = await Promise.all([v1('GET', '/monitors'), v1('GET', '/alerts')]);
  if (ctx.stale()) return;
  const allMons = all.monitors || [];
  const mons = endpoint ? (await v1('GET', '/monitors', { query: { endpoint } })).monitors || [] : allMons;
  if (ctx.stale()) return;
  const endpoints = [...new Set(allMons.map((m) => m.monitor.spec.endpoint))].sort();
  if (endpoint && !endpoints.includes(endpoint)) endpoints.push(endpoint);
  const alerts = (active.alerts || []).filter((a) => !endpoint || a.labels?.endpoint === endpoint);
  const firing = alerts.filter((a) => a.state === 'firing');
  const pending = alerts.filter((a) => a.state === 'pending');

  const epSel = h('select', { id: 'mon-endpoint' },
    h('option', { value: '' }, 'All endpoints'),
    endpoints.map((e) => h('option', { value: e, selected: e === endpoint }, e)));
  epSel.onchange = () => ctx.setQuery({ endpoint: epSel.value });

  ctx.el.append(
    h('h1', null, 'Monitoring'),
    h('div', { class: 'toolbar' }, h('label', { for: 'mon-endpoint' }, 'Endpoint'), epSel,
      link('/ui/monitoring/alerts', 'Alerts, history and receivers')),
    h('div', { class: 'cards', id: 'mon-summary' },
      card('Monitors', mons.length, 'mon-count'),
      card('Drift detected', mons.filter((m) => m.latest?.drift?.dataset_drift).length, 'mon-drifting'),
      card('Firing alerts', firing.length, 'mon-firing'),
      card('Pending alerts', pending.length, 'mon-pending')),
    section('Firing and pending alerts', h('div', { id: 'mon-alerts' }, table(alertColumns(), [...firing, ...pending], {
      empty: 'No alert is firing.', caption: endpoint ? `Active alerts of endpoint ${endpoint}` : 'Active alerts',
    }))),
    section('Monitors', h('div', { id: 'monitors' }, table([
      { key: 'name', label: 'Monitor', value: (m) => m.monitor.metadata.name, render: (m) => link(`/ui/monitoring/monitors/${enc(m.monitor.metadata.name)}`, m.monitor.metadata.name) },
      { key: 'endpoint', label: 'Endpoint', value: (m) => m.monitor.spec.endpoint, render: (m) => link(`/ui/endpoints/${enc(m.monitor.spec.endpoint)}`, m.monitor.spec.endpoint) },
      { key: 'reference', label: 'Reference', value: (m) => referenceText(m.monitor.spec.reference) },
      { key: 'schedule', label: 'Window, schedule', value: (m) => `last ${dur(m.monitor.spec.window || '1h')}, every ${dur(m.monitor.spec.schedule?.every || '5m')}` },
      { key: 'last', label: 'Last run', value: (m) => ms(m.latest?.time) || '', render: (m) => fmtTime(m.latest?.time) || h('span', { class: 'muted' }, 'never') },
      { key: 'status', label: 'Status', value: statusOf, render: (m) => badge(statusOf(m)) },
      { key: 'drift', label: 'Drift', value: (m) => (m.latest?.drift ? (m.latest.drift.dataset_drift ? 1 : 0) : -1), render: (m) => driftBadge(m.latest) },
      { key: 'drifted', label: 'Drifted features', value: (m) => m.latest?.drift?.share, render: (m) => (m.latest?.drift ? `${m.latest.drift.drifted} of ${m.latest.drift.total} (share ${fmtNum(m.latest.drift.share)})` : '') },
      { key: 'firing', label: 'Firing alerts', numeric: true, value: (m) => m.firing_alerts, render: (m) => (m.firing_alerts ? link(`/ui/monitoring/alerts?monitor=${enc(m.monitor.metadata.name)}`, String(m.firing_alerts)) : '0') },
      { key: 'next', label: 'Next run', value: (m) => m.next_run, render: (m) => fmtTime(m.next_run) },
    ], mons, {
      sort: { key: 'name' }, caption: endpoint ? `Monitors of endpoint ${endpoint}` : 'Every monitor',
      empty: endpoint ? `No monitor watches ${endpoint}.` : 'No monitors yet: apply a Monitor document (kiln apply -f monitor.yaml).',
    }))));
}

function card(label, value, id) {
  return h('div', { class: 'card', id }, h('div', { class: 'muted' }, label), h('div', { class: 'big' }, String(value)));
}

function alertColumns() {
  return [
    { key: 'state', label: 'State', render: (a) => badge(a.state) },
    { key: 'rule', label: 'Alert' },
    { key: 'monitor', label: 'Monitor', render: (a) => link(`/ui/monitoring/monitors/${enc(a.monitor)}`, a.monitor) },
    { key: 'severity', label: 'Severity', render: (a) => sevBadge(a.severity) },
    { key: 'labels', label: 'Labels', sortable: false, render: (a) => labelChips(a.labels, ['alertname', 'monitor', 'severity']) },
    { key: 'value', label: 'Value', numeric: true },
    { key: 'fired_at', label: 'Started', value: (a) => ms(a.fired_at || a.active_since), render: (a) => fmtTime(a.fired_at) || (a.active_since ? `pending since ${fmtTime(a.active_since)}` : '') },
    { key: 'summary', label: 'Summary', value: (a) => a.annotations?.summary || a.annotations?.description || '' },
  ];
}

// ---- one monitor ---------------------------------------------------------

// lastRun remembers the result of the "Run now" this page made, shown
// after the re-render.
const lastRun = new Map();

async function monitorPage(ctx, name) {
  const [mi, res, act] = await Promise.all([
    v1('GET', `/monitors/${enc(name)}`),
    v1('GET', `/monitors/${enc(name)}/results`, { query: { limit: RESULTS } }),
    v1('GET', '/alerts', { query: { monitor: name } }).catch(() => ({ alerts: [] })),
  ]);
  if (ctx.stale()) return;
  ctx.title(name);
  const spec = mi.monitor.spec;
  const results = res.results || [];
  const latest = mi.latest;
  const runBtn = h('button', { type: 'button', id: 'run-now' }, 'Run now');
  const runOut = h('div', { id: 'run-result', role: 'status' });
  runBtn.onclick = async () => {
    const ok = await confirmDialog(`Run ${name} now?`,
      `Evaluates the monitor on the last ${dur(spec.window || '1h')} of ${spec.endpoint}'s prediction log, stores the result and evaluates its alert rules.`, 'Run now');
    if (!ok) return;
    runBtn.disabled = true;
    runBtn.textContent = 'Running…';
    try {
      const r = await v1('POST', `/monitors/${enc(name)}/run`);
      lastRun.set(name, r);
      toast(`${name}: ${r.status}${r.drift ? `, drift share ${fmtNum(r.drift.share)}` : ''}`);
      ctx.go(location.pathname + location.search, { replace: true });
    } catch (e) {
      runBtn.disabled = false;
      runBtn.textContent = 'Run now';
      clear(runOut).append(errorBox(e));
    }
  };
  const just = lastRun.get(name);
  lastRun.delete(name);
  if (just) {
    runOut.append(h('p', { class: 'notice' }, 'New result of ', fmtTime(just.time), ': ', badge(just.status),
      just.drift ? ` ${just.drift.drifted} of ${just.drift.total} features drifted (share ${fmtNum(just.drift.share)}).` : '',
      just.message ? ` ${just.message}` : '',
      (just.alerts || []).map((t) => [' ', h('span', null, `${t.rule}: ${t.from} → `), badge(t.to)])));
  }
  ctx.el.append(
    h('div', { class: 'crumbs' }, link('/ui/monitoring', 'Monitoring'), ' / '),
    h('h1', null, name, ' ', badge(statusOf(mi))),
    kv([
      ['Endpoint', link(`/ui/endpoints/${enc(spec.endpoint)}`, spec.endpoint)],
      ['Reference', latest?.reference?.dataset ? `${referenceText(spec.reference)} (${fmtNum(latest.reference.rows)} rows)` : referenceText(spec.reference)],
      ['Window', `the last ${dur(spec.window || '1h')}`],
      ['Schedule', `every ${dur(spec.schedule?.every || '5m')}`],
      ['Last run', latest ? [fmtTime(latest.time), ' ', badge(latest.status), latest.message ? h('span', { class: 'muted' }, ` ${latest.message}`) : ''] : 'never'],
      ['Next run', fmtTime(mi.next_run)],
      ['Firing alerts', mi.firing_alerts ? link(`/ui/monitoring/alerts?monitor=${enc(name)}`, String(mi.firing_alerts)) : '0'],
      ['Generation', `${mi.generation}${mi.updated_by ? `, by ${mi.updated_by}` : ''}, ${fmtTime(mi.last_update_time)}`],
    ]),
    h('div', { class: 'toolbar' }, runBtn,
      h('a', { href: `/api/v1/monitors/${enc(name)}/report`, target: '_blank', rel: 'noopener' }, 'HTML report')),
    runOut);
  const tab = ctx.query.get('tab') || 'drift';
  ctx.el.append(tabs([
    { id: 'drift', label: 'Drift', render: (el) => driftTab(el, results, ctx) },
    { id: 'distributions', label: 'Distributions', render: (el) => distributionsTab(el, results, ctx) },
    { id: 'performance', label: 'Performance', render: (el) => performanceTab(el, mi, ctx) },
    { id: 'runs', label: `Runs (${results.length})`, render: (el) => runsTab(el, results, spec) },
    { id: 'alerts', label: 'Alert rules', render: (el) => rulesTab(el, spec, act.alerts || [], name) },
  ], tab, (id) => ctx.setQuery({ tab: id }, { replace: true })));
}

function driftTab(el, results, ctx) {
  const checked = results.filter((r) => r.drift);
  if (!checked.length) {
    el.append(h('p', { class: 'muted' }, results.length ? 'No run has compared any data yet (no traffic in the window, or an error: see Runs).' : 'The monitor has not run yet.'));
    return;
  }
  const latest = checked[checked.length - 1];
  const t = (r) => ms(r.time);
  el.append(section('Dataset drift over time', h('div', { class: 'mon-chart', 'data-chart': 'drift-share' }, lineChart([
    { name: 'drift share', points: checked.map((r) => [t(r), num(r.drift.share)]) },
    { name: 'threshold (drift_share)', dashed: true, points: checked.map((r) => [t(r), num(r.drift.drift_share)]) },
  ], { title: 'Share of drifted features per run', xLabel: 'run time', yLabel: 'share of features', xTime: true, ...WIDE }))));

  const featureTable = (rep, caption, outliers) => table([
    { key: 'name', label: 'Feature', render: (f) => h('button', { type: 'button', class: 'link-button', onclick: () => ctx.setQuery({ tab: 'distributions', feature: f.name }, { replace: true }) }, f.name) },
    { key: 'kind', label: 'Kind' },
    { key: 'method', label: 'Test' },
    { key: 'score', label: 'Score', numeric: true, value: (f) => num(f.score), render: (f) => `${fmtNum(num(f.score))} ${f.error ? '' : `(${scoreName(f)})`}` },
    { key: 'statistic', label: 'Statistic', numeric: true, value: (f) => num(f.statistic) },
    { key: 'threshold', label: 'Threshold', numeric: true, value: (f) => num(f.threshold) },
    { key: 'drift', label: 'Drifted', value: (f) => (f.error ? -1 : f.drift ? 1 : 0), render: verdict },
    { key: 'ref_count', label: 'Reference n', numeric: true },
    { key: 'cur_count', label: 'Current n', numeric: true },
    outliers ? { key: 'outliers', label: 'Outlier share', numeric: true, value: (f) => outliers.features?.[f.name]?.share ?? 0 } : null,
    { key: 'error', label: 'Error', render: (f) => f.error || '' },
  ].filter(Boolean), rep.features || [], { caption, sort: { key: 'drift', dir: 'desc' } });

  const d = latest.drift;
  el.append(section('Latest tests',
    h('p', null, `Run of ${fmtTime(latest.time)}, window ${fmtTime(latest.window_start)} – ${fmtTime(latest.window_end)}: `,
      driftBadge(latest), ` ${d.drifted} of ${d.total} features drifted (share ${fmtNum(d.share)}, dataset drift at ${fmtNum(d.drift_share)})`,
      d.errors ? `, ${d.errors} could not be tested` : '', '.'),
    h('div', { id: 'latest-tests' }, featureTable(d, 'Input features: a p-value drifts below its threshold, a distance at or above it', latest.outliers)),
    latest.prediction_drift ? [h('h3', null, 'Predictions'), h('div', { id: 'latest-prediction-tests' },
      featureTable(latest.prediction_drift, `Model outputs against ${latest.reference?.predictions === 'previous_window' ? 'the previous window' : 'the reference'}`))] : null));

  // Each feature's score against its threshold, over the runs.
  const names = [...new Set(checked.flatMap((r) => r.drift.features.map((f) => f.name)))];
  const grid = h('div', { class: 'grid2' });
  for (const n of names) {
    const pts = [], thr = [];
    let lastF = null;
    for (const r of checked) {
      const f = r.drift.features.find((x) => x.name === n);
      if (!f || f.error) continue;
      lastF = f;
      pts.push([t(r), num(f.score)]);
      thr.push([t(r), num(f.threshold)]);
    }
    if (!lastF) continue;
    const what = scoreName(lastF);
    grid.append(h('div', { class: 'mon-chart feature-chart', 'data-feature': n }, lineChart([
      { name: `${what} (${lastF.method})`, points: pts },
      { name: 'threshold', dashed: true, points: thr },
    ], { title: `${n}: ${lastF.method} ${what} per run`, xLabel: 'run time', yLabel: what, xTime: true, width: 520, height: 240 })));
  }
  el.append(section('Drift score per feature', h('p', { class: 'muted' }, 'Each feature\'s test score per run, with its threshold dashed.'), grid));
}

// binLabels names a histogram's bins: value ranges or categories.
function binLabels(hist) {
  if (hist.categories?.length) return hist.categories.map((c) => ({ label: c }));
  const e = hist.edges || [];
  return e.slice(0, -1).map((x, i) => ({ label: `${fmtNum(x)}–${fmtNum(e[i + 1])}` }));
}

function distributionsTab(el, results, ctx) {
  const checked = results.filter((r) => r.drift).reverse(); // newest first
  if (!checked.length) { el.append(h('p', { class: 'muted' }, 'No run has compared any data yet.')); return; }
  const runId = ctx.query.get('run') || checked[0].id;
  const run = checked.find((r) => r.id === runId) || checked[0];
  const feats = [...run.drift.features, ...(run.prediction_drift?.features || []).map((f) => ({ ...f, name: `prediction:${f.name}`, output: f.name }))];
  const want = ctx.query.get('feature');
  const feat = feats.find((f) => f.name === want) || feats.find((f) => f.drift) || feats[0];
  const fSel = h('select', { id: 'dist-feature' }, feats.map((f) => h('option', { value: f.name, selected: f === feat }, `${f.name}${f.drift ? ' (drifted)' : ''}`)));
  fSel.onchange = () => ctx.setQuery({ feature: fSel.value }, { replace: true });
  const rSel = h('select', { id: 'dist-run' }, checked.map((r) => h('option', { value: r.id, selected: r === run }, `${fmtTime(r.time)} · ${r.status}`)));
  rSel.onchange = () => ctx.setQuery({ run: rSel.value }, { replace: true });
  el.append(h('div', { class: 'toolbar' }, h('label', { for: 'dist-feature' }, 'Feature'), fSel, h('label', { for: 'dist-run' }, 'Run'), rSel));
  if (!feat) return;
  el.append(kv([
    ['Test', `${feat.method || '—'} (${feat.kind || 'unknown kind'})`],
    [feat.error ? 'Error' : 'Score', feat.error || `${fmtNum(num(feat.score))} ${scoreName(feat)}, threshold ${fmtNum(num(feat.threshold))}`],
    ['Verdict', verdict(feat)],
    ['Values compared', `${fmtNum(feat.ref_count)} reference, ${fmtNum(feat.cur_count)} current`],
  ]));
  const hist = feat.histogram;
  if (!hist || !hist.ref?.length) {
    el.append(h('p', { class: 'muted' }, 'This result holds no histogram for the feature.'));
    return;
  }
  el.append(h('div', { class: 'mon-chart', 'data-chart': 'distribution', 'data-feature': feat.name }, histogram(binLabels(hist), [
    { name: 'reference', counts: hist.ref.map(num) },
    { name: 'current', counts: hist.cur.map(num) },
  ], { title: `${feat.name}: reference against current`, xLabel: hist.categories?.length ? 'category' : 'value', yLabel: 'share of values', normalize: true, ...WIDE })));
}

// Performance windows: "auto" picks the shortest that gives at most
// PERF_POINTS windows over the range.
const PERF_POINTS = 60;
const WINDOWS = [['1s', 1], ['5s', 5], ['10s', 10], ['30s', 30], ['1m', 60], ['5m', 300], ['15m', 900], ['30m', 1800], ['1h', 3600], ['3h', 10800], ['6h', 21600], ['12h', 43200], ['1d', 86400], ['7d', 604800]];
const RANGES = [['created', 'Since the monitor was created'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const goDur = (label, secs) => (/d$/.test(label) ? `${secs / 3600}h` : label);

export function perfRange(range, createdMs, nowMs) {
  const sec = { '1h': 3600, '24h': 86400, '7d': 604800, '30d': 2592000 }[range];
  return sec ? nowMs - sec * 1000 : createdMs;
}

export function autoWindow(spanMs) {
  return WINDOWS.find(([, s]) => spanMs / (s * 1000) <= PERF_POINTS) || WINDOWS[WINDOWS.length - 1];
}

async function performanceTab(el, mi, ctx) {
  const spec = mi.monitor.spec;
  const ep = spec.endpoint;
  const range = ctx.query.get('perf_range') || 'created';
  const winQ = ctx.query.get('perf_window') || 'auto';
  const now = Date.now();
  const from = perfRange(range, mi.creation_time, now);
  const [wLabel, wSecs] = winQ === 'auto' ? autoWindow(now - from) : (WINDOWS.find(([l]) => l === winQ) || autoWindow(now - from));
  const rSel = h('select', { id: 'perf-range' }, RANGES.map(([v, l]) => h('option', { value: v, selected: v === range }, l)));
  rSel.onchange = () => ctx.setQuery({ perf_range: rSel.value }, { replace: true });
  const wSel = h('select', { id: 'perf-window' }, h('option', { value: 'auto', selected: winQ === 'auto' }, `auto (${wLabel})`),
    WINDOWS.map(([l]) => h('option', { value: l, selected: l === winQ }, l)));
  wSel.onchange = () => ctx.setQuery({ perf_window: wSel.value }, { replace: true });
  el.append(h('div', { class: 'toolbar' }, h('label', { for: 'perf-range' }, 'Range'), rSel, h('label', { for: 'perf-window' }, 'Window'), wSel,
    h('span', { class: 'muted' }, `windows of prediction time from ${fmtTime(from)}`)));
  const query = { from, window: goDur(wLabel, wSecs) };
  if (spec.performance?.metrics?.length) query.metrics = spec.performance.metrics.join(',');
  if (spec.performance?.positive_class) query.positive_class = spec.performance.positive_class;
  if (spec.performance?.task) query.task = spec.performance.task;
  let p;
  try {
    p = await v1('GET', `/endpoints/${enc(ep)}/performance`, { query });
  } catch (e) { el.append(errorBox(e)); return; }
  const wins = (p.windows || []).filter((w) => w.labelled > 0 && Object.keys(w.metrics || {}).length);
  el.append(kv([
    ['Endpoint', link(`/ui/endpoints/${enc(ep)}`, ep)],
    ['Task', p.task],
    ['Labelled predictions', `${fmtNum(p.labelled)} of ${fmtNum(p.predictions)}`],
    ['Prediction column', p.prediction ? h('code', null, p.prediction) : null],
    ['Positive class', p.positive_class],
    ['Notes', (p.notes || []).join(' ')],
  ]));
  if (!wins.length) {
    el.append(h('p', { class: 'muted', id: 'perf-empty' }, `No labelled predictions in this range: send labels with kiln feedback send ${ep} (or POST /api/v1/endpoints/${ep}/feedback).`));
    return;
  }
  const metrics = [...new Set(wins.flatMap((w) => Object.keys(w.metrics)))].sort((a, b) => (p.metrics || []).indexOf(a) - (p.metrics || []).indexOf(b));
  const start = (w) => ms(w.start);
  // One window has no time axis to speak of: its metrics as bars.
  const chart = wins.length === 1
    ? barChart(metrics.map((m) => ({ label: m, value: num(wins[0].metrics[m]) })),
      { title: `Performance of ${ep} in the one ${wLabel} window with labels (from ${fmtTime(wins[0].start)})`, xLabel: 'metric value', width: WIDE.width })
    : lineChart(metrics.map((m) => ({
      name: m, points: wins.filter((w) => w.metrics[m] !== undefined).map((w) => [start(w), num(w.metrics[m])]),
    })), { title: `Performance of ${ep} per ${wLabel} window`, xLabel: 'prediction time (window start)', yLabel: 'metric value', xTime: true, ...WIDE });
  el.append(h('div', { class: 'mon-chart', 'data-chart': 'performance' }, chart),
  table([
    { key: 'start', label: 'Window start', value: (w) => ms(w.start), render: (w) => fmtTime(w.start) },
    { key: 'labelled', label: 'Labelled', numeric: true },
    { key: 'predictions', label: 'Predictions', numeric: true },
    ...metrics.map((m) => ({ key: m, label: m, numeric: true, value: (w) => w.metrics[m] })),
    { key: 'undefined', label: 'Undefined', render: (w) => Object.keys(w.undefined || {}).join(', ') },
  ], wins, { caption: `${wins.length} ${wins.length === 1 ? 'window' : 'windows'} with labels`, sort: { key: 'start', dir: 'asc' } }));
}

function runsTab(el, results, spec) {
  const metrics = spec.performance?.metrics || [...new Set(results.flatMap((r) => Object.keys(r.performance?.metrics || {})))];
  el.append(table([
    { key: 'time', label: 'Run time', value: (r) => ms(r.time), render: (r) => h('span', { title: `window ${fmtTime(r.window_start)} – ${fmtTime(r.window_end)}` }, fmtTime(r.time)) },
    { key: 'status', label: 'Status', render: (r) => badge(r.status) },
    { key: 'drifted', label: 'Drifted', value: (r) => r.drift?.share, render: (r) => (r.drift ? `${r.drift.drifted} of ${r.drift.total} (${fmtNum(r.drift.share)})` : '') },
    { key: 'requests', label: 'Requests (rows)', numeric: true, value: (r) => r.traffic?.requests, render: (r) => `${fmtNum(r.traffic?.requests ?? 0)} (${fmtNum(r.traffic?.rows ?? 0)})` },
    { key: 'error_rate', label: 'Error rate', numeric: true, value: (r) => r.traffic?.error_rate },
    { key: 'p99', label: 'p99 latency', value: (r) => r.traffic?.latency_p99_seconds, render: (r) => (r.traffic?.requests ? fmtDuration(r.traffic.latency_p99_seconds * 1000) : '') },
    { key: 'outliers', label: 'Outlier share', numeric: true, value: (r) => r.outliers?.share },
    { key: 'labelled', label: 'Labelled', numeric: true, value: (r) => r.performance?.labelled },
    ...metrics.map((m) => ({ key: `m:${m}`, label: m, numeric: true, value: (r) => r.performance?.metrics?.[m] })),
    { key: 'alerts', label: 'Alert changes', sortable: false, render: (r) => h('span', null, (r.alerts || []).map((t) => [`${t.rule}: ${t.from} → `, badge(t.to), ' '])) },
    { key: 'message', label: 'Message', render: (r) => r.message || '' },
  ], results, { caption: `${results.length} runs, newest first`, sort: { key: 'time', dir: 'desc' }, empty: 'The monitor has not run yet.' }));
}

function rulesTab(el, spec, active, name) {
  const byRule = new Map();
  for (const a of active) if (!byRule.has(a.rule) || a.state === 'firing') byRule.set(a.rule, a.state);
  el.append(section('Rules', table([
    { key: 'name', label: 'Rule' },
    { key: 'expr', label: 'Condition', render: (r) => h('code', null, r.expr) },
    { key: 'for', label: 'For', value: (r) => dur(r.for || '0s') },
    { key: 'severity', label: 'Severity', render: (r) => sevBadge(r.severity) },
    { key: 'receivers', label: 'Receivers', value: (r) => (r.receivers || []).join(', ') },
    { key: 'state', label: 'State', value: (r) => byRule.get(r.name) || 'inactive', render: (r) => badge(byRule.get(r.name) || 'inactive') },
  ], spec.alerts || [], { empty: 'This monitor has no alert rules.' })),
  section('Active alerts', table(alertColumns(), active, { empty: 'No alert of this monitor is pending or firing.' }),
    h('p', null, link(`/ui/monitoring/alerts?monitor=${enc(name)}`, 'Alert history of this monitor'))));
}

// ---- alerts --------------------------------------------------------------

const STATES = ['firing', 'pending', 'resolved', 'inactive'];

// episodes pairs each firing event with the resolve that ended it: by
// event id, {started, resolved} times.
export function episodes(events) {
  const asc = [...events].sort((a, b) => ms(a.time) - ms(b.time));
  const open = new Map();
  const out = new Map();
  for (const e of asc) {
    const k = `${e.monitor}\u0000${e.rule}\u0000${e.fingerprint}`;
    if (e.state === 'firing') {
      const ep = { started: e.time, resolved: null };
      open.set(k, ep);
      out.set(e.id, ep);
    } else if (e.state === 'resolved') {
      const ep = open.get(k) || { started: null, resolved: null };
      ep.resolved = e.time;
      open.delete(k);
      out.set(e.id, ep);
    }
  }
  return out;
}

async function alertsPage(ctx) {
  ctx.title('Alerts');
  const state = ctx.query.get('state') || '';
  const monitor = ctx.query.get('monitor') || '';
  const limit = Number(ctx.query.get('limit')) || HISTORY;
  const q = { monitor: monitor || undefined };
  const [act, hist, recv, mons] = await Promise.all([
    v1('GET', '/alerts', { query: q }),
    v1('GET', '/alerts/history', { query: { ...q, limit } }),
    v1('GET', '/alert-receivers'),
    v1('GET', '/monitors'),
  ]);
  if (ctx.stale()) return;
  const monitors = (mons.monitors || []).map((m) => m.monitor);
  const names = [...new Set([...monitors.map((m) => m.metadata.name), ...(monitor ? [monitor] : [])])].sort();
  const active = (act.alerts || []).filter((a) => !state || a.state === state);
  const events = hist.events || [];
  const eps = episodes(events);
  const shown = events.filter((e) => !state || e.state === state);

  const stSel = h('select', { id: 'alert-state' }, h('option', { value: '' }, 'Any state'), STATES.map((s) => h('option', { value: s, selected: s === state }, s)));
  stSel.onchange = () => ctx.setQuery({ state: stSel.value });
  const mSel = h('select', { id: 'alert-monitor' }, h('option', { value: '' }, 'All monitors'), names.map((n) => h('option', { value: n, selected: n === monitor }, n)));
  mSel.onchange = () => ctx.setQuery({ monitor: mSel.value });

  ctx.el.append(
    h('div', { class: 'crumbs' }, link('/ui/monitoring', 'Monitoring'), ' / '),
    h('h1', null, 'Alerts'),
    h('div', { class: 'toolbar' }, h('label', { for: 'alert-state' }, 'State'), stSel, h('label', { for: 'alert-monitor' }, 'Monitor'), mSel),
    section('Active alerts', h('div', { id: 'active-alerts' }, table(alertColumns(), active, {
      caption: `${active.length} pending or firing${state ? ` (${state})` : ''}`,
      empty: state && !['firing', 'pending'].includes(state) ? `Active alerts are pending or firing, never ${state}: see the history.` : 'No alert is pending or firing.',
    }))),
    section('History', h('div', { id: 'alert-history' }, table([
      { key: 'time', label: 'Time', value: (e) => ms(e.time), render: (e) => fmtTime(e.time) },
      { key: 'state', label: 'State', render: (e) => h('span', null, h('span', { class: 'muted' }, `${e.from} → `), badge(e.state)) },
      { key: 'rule', label: 'Alert' },
      { key: 'monitor', label: 'Monitor', render: (e) => link(`/ui/monitoring/monitors/${enc(e.monitor)}`, e.monitor) },
      { key: 'severity', label: 'Severity', value: (e) => e.labels?.severity || '', render: (e) => sevBadge(e.labels?.severity) },
      { key: 'labels', label: 'Labels', sortable: false, render: (e) => labelChips(e.labels, ['alertname', 'monitor', 'severity']) },
      { key: 'value', label: 'Value', numeric: true },
      { key: 'started', label: 'Started', value: (e) => ms(eps.get(e.id)?.started), render: (e) => fmtTime(eps.get(e.id)?.started) },
      { key: 'resolved', label: 'Resolved', value: (e) => ms(eps.get(e.id)?.resolved), render: (e) => (eps.has(e.id) ? fmtTime(eps.get(e.id).resolved) || h('span', { class: 'muted' }, 'not yet') : '') },
      { key: 'reason', label: 'Reason', value: (e) => e.detail?.reason || '' },
      { key: 'summary', label: 'Summary', value: (e) => e.detail?.annotations?.summary || '' },
    ], shown, {
      caption: `${shown.length} of the newest ${events.length} state changes${events.length >= limit ? ` (at most ${limit})` : ''}`,
      sort: { key: 'time', dir: 'desc' }, empty: 'No alert changed state.',
    }))),
    section('Receivers', h('div', { id: 'receivers' }, table([
      { key: 'name', label: 'Receiver', value: (r) => r.metadata.name },
      { key: 'type', label: 'Type', value: (r) => r.spec.type },
      { key: 'url', label: 'URL', value: (r) => r.spec.url, render: (r) => h('code', null, r.spec.url) },
      { key: 'send_resolved', label: 'Sends resolved', value: (r) => (r.spec.send_resolved ? 'yes' : 'no') },
      { key: 'secret', label: 'Secret', value: (r) => (r.spec.secret ? 'set' : '—') },
      { key: 'headers', label: 'Headers', value: (r) => Object.keys(r.spec.headers || {}).join(', ') },
      { key: 'attempts', label: 'Attempts', numeric: true, value: (r) => r.spec.max_attempts || '' },
      { key: 'timeout', label: 'Timeout', value: (r) => dur(r.spec.timeout) },
      { key: 'used', label: 'Used by', sortable: false, render: (r) => h('span', null, usedBy(monitors, r.metadata.name).map((n, i) => [i ? ', ' : '', link(`/ui/monitoring/monitors/${enc(n)}`, n)])) },
    ], recv.receivers || [], { sort: { key: 'name' }, empty: 'No alert receivers: apply an AlertReceiver document.' }))));
}

function usedBy(monitors, receiver) {
  return monitors.filter((m) => (m.spec.alerts || []).some((a) => (a.receivers || []).includes(receiver))).map((m) => m.metadata.name).sort();
}
