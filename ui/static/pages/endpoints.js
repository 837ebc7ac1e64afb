// Endpoints: the list of served endpoints (state, live routes with their
// model versions and weights, rollout) and an endpoint's page: its spec,
// the traffic split (a stacked bar and a table), the rollout with its
// analysis and the Promote / Pause / Resume / Rollback actions, live
// statistics polled while the page is open (with charts of requests/s and
// p99 since the page opened), and the recorded events.
import { h, put, s, link, clear, table, kv, badge, fmtNum, fmtTime, errorBox, section, pre, toast, confirmDialog } from '../lib/dom.js';
import { v1 } from '../lib/api.js';
import { lineChart, palette, niceTicks } from '../lib/chart.js';

const POLL_MS = 3000; // live statistics refresh
const MAX_SAMPLES = 600; // points kept for the live charts (30 min at 3 s)
const EVENT_LIMIT = 100;

export async function render(ctx) {
  const [, name] = ctx.segments;
  if (!name) return endpointList(ctx);
  return endpointPage(ctx, name);
}

const enc = encodeURIComponent;
const epPath = (name) => `/endpoints/${enc(name)}`;
export const versionURL = (model, v) => `/ui/models/${enc(model)}/versions/${enc(v)}`;

// endpointState is one word for what an endpoint is doing: a failed or
// loading route first, then a held controller, then the rollout's phase.
export function endpointState(st) {
  const routes = st.status?.routes || [];
  const ro = st.status?.rollout;
  if (routes.some((r) => r.state === 'failed')) return 'failed';
  if (routes.some((r) => r.state === 'loading')) return 'loading';
  if (st.status?.paused) return 'paused';
  if (ro && ro.phase === 'progressing') return 'progressing';
  if (ro && ro.phase === 'rolled_back') return 'rolled_back';
  if (ro && ro.phase === 'failed') return 'failed';
  if (!routes.length) return 'pending';
  return 'ready';
}

function share(routes) {
  const tot = routes.reduce((a, r) => a + (Number(r.weight) || 0), 0);
  return (r) => (tot > 0 ? (100 * (Number(r.weight) || 0)) / tot : 0);
}

function routeSummary(st) {
  const routes = st.status?.routes || [];
  if (!routes.length) return h('span', { class: 'muted' }, 'no live routes');
  const pct = share(routes);
  return h('div', { class: 'ep-routes' }, routes.map((r) => h('div', { 'data-route': r.name },
    h('strong', null, r.name), ': ', link(versionURL(r.model, r.version), `${r.model} v${r.version}`),
    ` · ${fmtNum(pct(r))}%`)));
}

function rolloutSummary(st) {
  const ro = st.status?.rollout;
  const strat = st.endpoint?.spec?.rollout?.strategy;
  if (!ro) return strat ? h('span', null, strat, h('span', { class: 'muted' }, ' · no rollout yet')) : h('span', { class: 'muted' }, st.endpoint?.spec?.experiment ? 'A/B experiment' : 'none');
  const steps = st.endpoint?.spec?.rollout?.steps || [];
  return h('span', null, ro.strategy, ' ', badge(ro.phase),
    ro.phase === 'progressing' || ro.phase === 'paused' ? h('span', { class: 'muted' }, ` step ${ro.step + 1} of ${steps.length || 1}`) : null,
    h('span', { class: 'muted' }, ` v${ro.stable?.version} → v${ro.candidate?.version}`));
}

// ---- the list ------------------------------------------------------------

async function endpointList(ctx) {
  ctx.title('Endpoints');
  const q = ctx.query;
  const name = q.get('name') || '';
  const search = h('input', { type: 'search', id: 'ep-search', value: name, placeholder: 'Endpoint name contains…', 'aria-label': 'Filter endpoints by name' });
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ name: search.value.trim() }); } },
    search, h('button', { type: 'submit' }, 'Filter'),
    name ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ name: null }) }, 'Clear') : null);
  ctx.el.append(h('h1', null, 'Endpoints'), form);
  let list;
  try {
    list = (await v1('GET', '/endpoints')).endpoints || [];
  } catch (e) {
    ctx.el.append(errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const needle = name.toLowerCase();
  const rows = list.filter((st) => !needle || st.endpoint.metadata.name.toLowerCase().includes(needle));
  const sortKey = q.get('sort') || 'name';
  const dir = q.get('dir') === 'desc' ? 'desc' : 'asc';
  const columns = [
    { key: 'name', label: 'Name', value: (st) => st.endpoint.metadata.name, render: (st) => link(`/ui/endpoints/${enc(st.endpoint.metadata.name)}`, st.endpoint.metadata.name) },
    { key: 'state', label: 'State', value: endpointState, render: (st) => badge(endpointState(st)) },
    { key: 'model', label: 'Model', value: (st) => st.endpoint.spec.model || '', render: (st) => (st.endpoint.spec.model ? link(`/ui/models/${enc(st.endpoint.spec.model)}`, st.endpoint.spec.model) : '') },
    { key: 'routes', label: 'Routes (live)', sortable: false, render: routeSummary },
    { key: 'rollout', label: 'Rollout', value: (st) => `${st.status?.rollout?.strategy || st.endpoint.spec.rollout?.strategy || ''} ${st.status?.rollout?.phase || ''}`, render: rolloutSummary },
    { key: 'updated', label: 'Updated', value: (st) => st.status?.updated_at, render: (st) => fmtTime(st.status?.updated_at) },
  ];
  sortRows(rows, columns.find((c) => c.key === sortKey), dir);
  ctx.el.append(
    h('p', { class: 'muted', id: 'ep-count' }, `${rows.length} of ${list.length} endpoints`),
    table(columns, rows, {
      sort: { key: sortKey, dir },
      // The sort lives in the address (bookmarkable); rows are sorted here.
      onSort: ({ key, dir: d }) => ctx.setQuery({ sort: key, dir: d }, { replace: true }),
      empty: name ? 'No endpoints match the filter.' : 'No endpoints yet: apply an Endpoint document (kiln apply -f endpoint.yaml).',
      caption: `Endpoints by ${sortKey}, ${dir === 'asc' ? 'ascending' : 'descending'}`,
    }));
}

// sortRows sorts in place by a column's value (numbers as numbers, empty
// values last), as lib/dom.js's table does for tables that sort themselves.
function sortRows(rows, col, dir) {
  if (!col) return;
  const val = (r) => (col.value ? col.value(r) : r[col.key]);
  const sgn = dir === 'asc' ? 1 : -1;
  rows.sort((a, b) => {
    const x = val(a), y = val(b);
    if (x === y) return 0;
    if (x === undefined || x === null || x === '') return 1;
    if (y === undefined || y === null || y === '') return -1;
    const nx = Number(x), ny = Number(y);
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return (nx - ny) * sgn;
    return String(x).localeCompare(String(y)) * sgn;
  });
}

// ---- one endpoint --------------------------------------------------------

async function endpointPage(ctx, name) {
  ctx.title(name);
  const root = h('div', { class: 'endpoint' });
  ctx.el.append(root);
  const gone = () => ctx.stale() || !root.isConnected;
  let st;
  try {
    st = await v1('GET', epPath(name));
  } catch (e) {
    root.append(h('div', { class: 'crumbs' }, link('/ui/endpoints', 'Endpoints'), ' / '), h('h1', null, name), errorBox(e));
    return;
  }
  if (gone()) return;
  const head = h('div');
  const traffic = h('div', { id: 'ep-traffic' });
  const rollout = h('div', { id: 'ep-rollout' });
  const events = h('div', { id: 'ep-events' });
  const doc = h('div', { id: 'ep-document' });
  const live = liveStats(name, gone);
  root.append(head,
    section('Traffic', traffic),
    section('Rollout', rollout),
    section('Live statistics', live.el),
    section('Events', events),
    section('Document', doc));

  async function refresh() {
    st = await v1('GET', epPath(name));
    if (gone()) return;
    draw();
    await loadEvents();
  }
  function draw() {
    drawHead(head, st, name);
    drawTraffic(traffic, st);
    drawRollout(rollout, st, name, async (action) => {
      try {
        const res = await v1('POST', `${epPath(name)}/rollout/${action}`, { body: {} });
        toast(`${label(action)}: ${describe(res)}`);
      } catch (e) {
        toast(`${label(action)} failed: ${e.message}`);
        rollout.append(errorBox(e));
        return;
      }
      try { await refresh(); live.poll(); } catch (e) { rollout.append(errorBox(e)); }
    });
    clear(doc).append(h('details', null, h('summary', null, 'The stored Endpoint document'), pre(st.endpoint)));
  }
  async function loadEvents() {
    let evs;
    try {
      evs = (await v1('GET', `${epPath(name)}/events`, { query: { limit: EVENT_LIMIT } })).events || [];
    } catch (e) { clear(events).append(errorBox(e)); return; }
    if (gone()) return;
    clear(events).append(eventTable(evs));
  }
  draw();
  await Promise.all([loadEvents(), live.start()]);
}

function label(action) { return action[0].toUpperCase() + action.slice(1); }

function describe(st) {
  const routes = st?.status?.routes || [];
  const pct = share(routes);
  const ro = st?.status?.rollout;
  return `${ro ? `rollout ${ro.phase}; ` : ''}${routes.map((r) => `${r.name} v${r.version} ${fmtNum(pct(r))}%`).join(', ')}`;
}

function drawHead(el, st, name) {
  const md = st.endpoint.metadata || {};
  const spec = st.endpoint.spec || {};
  const stat = st.status || {};
  const labels = Object.entries(md.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const cap = spec.capacity;
  put(clear(el),
    h('div', { class: 'crumbs' }, link('/ui/endpoints', 'Endpoints'), ' / '),
    h('h1', null, name, ' ', badge(endpointState(st))),
    md.description ? h('p', null, md.description) : null,
    stat.message ? h('p', { class: 'error', role: 'status' }, stat.message) : null,
    stat.pending ? h('p', { class: 'muted', role: 'status' }, `Pending: ${stat.pending}; the change starts at the controller's next tick.`) : null,
    kv([
      ['Model', spec.model ? link(`/ui/models/${enc(spec.model)}`, spec.model) : null],
      ['Routes (spec)', (spec.routes || []).map((r) => `${r.name || '(unnamed)'}: ${r.model || spec.model} ${r.alias ? '@' + r.alias : 'v' + r.version}, weight ${fmtNum(r.weight)}`).join('; ')],
      ['Rollout strategy', spec.rollout ? spec.rollout.strategy : (spec.experiment ? `A/B experiment on header ${spec.experiment.key_header}${spec.experiment.metric ? `, metric ${spec.experiment.metric}` : ''}` : 'none (a new version takes all traffic once loaded)')],
      ['Canary steps', spec.rollout?.steps?.length ? spec.rollout.steps.map((x) => `${fmtNum(x.weight)}%${x.interval ? ' for ' + x.interval : ''}`).join(' → ') : null],
      ['Shadow', spec.shadow ? `${spec.shadow.model || spec.model} ${spec.shadow.alias ? '@' + spec.shadow.alias : 'v' + spec.shadow.version}, ${fmtNum(spec.shadow.percent)}% of requests` : null],
      ['Capacity', cap ? Object.entries(cap).map(([k, v]) => `${k} ${v}`).join(', ') : null],
      ['Labels', labels],
      ['Revision', String(stat.revision ?? '')],
      ['Created', fmtTime(stat.created_at)],
      ['Updated', stat.updated_at ? `${fmtTime(stat.updated_at)}${stat.updated_by ? ' by ' + stat.updated_by : ''}` : null],
      ['Monitoring', link(`/ui/monitoring?endpoint=${enc(name)}`, 'Predictions, drift and alerts of this endpoint')],
      ['Scoring', h('code', null, `POST /endpoints/${name}/invocations`)],
    ]));
}

// trafficBar draws the live routes' shares of traffic as one stacked bar
// with a percent axis and a legend.
export function trafficBar(routes, title) {
  const W = 1200, H = 72;
  const m = { l: 16, r: 24, t: 6, b: 36 };
  const iw = W - m.l - m.r, bh = 28;
  const pct = share(routes);
  const X = (v) => m.l + (v / 100) * iw;
  let acc = 0;
  const segs = routes.map((r, i) => {
    const p = pct(r);
    const x = X(acc), w = X(acc + p) - X(acc);
    acc += p;
    const col = palette[i % palette.length];
    return s('g', { class: 'segment', 'data-route': r.name, 'data-share': p.toFixed(2) },
      s('rect', { x, y: m.t, width: Math.max(0, w), height: bh, fill: col },
        s('title', null, `${r.name} (${r.model} v${r.version}): weight ${fmtNum(r.weight)}, ${fmtNum(p)}% of traffic`)),
      w > 60 ? s('text', { x: x + w / 2, y: m.t + bh / 2 + 4, 'text-anchor': 'middle', class: 'seg-label', fill: '#fff' }, `${r.name} ${fmtNum(p)}%`) : null);
  });
  const ticks = niceTicks(0, 100, 4);
  const svg = s('svg', { class: 'chart traffic', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title },
    s('title', null, title),
    ticks.map((v) => s('g', { class: 'tick' },
      s('line', { x1: X(v), x2: X(v), y1: m.t + bh, y2: m.t + bh + 4, class: 'axis' }),
      s('text', { x: X(v), y: m.t + bh + 16, 'text-anchor': 'middle' }, `${fmtNum(v)}%`))),
    s('line', { x1: m.l, x2: W - m.r, y1: m.t + bh, y2: m.t + bh, class: 'axis' }),
    segs,
    s('text', { class: 'label', x: m.l + iw / 2, y: H - 4, 'text-anchor': 'middle' }, 'share of requests (%)'));
  const leg = h('ul', { class: 'legend' }, routes.map((r, i) => h('li', null,
    s('svg', { width: 14, height: 10, 'aria-hidden': 'true' }, s('rect', { width: 14, height: 10, fill: palette[i % palette.length] })),
    ` ${r.name}: ${r.model} v${r.version}, ${fmtNum(pct(r))}%`)));
  return h('figure', { class: 'chart' }, h('figcaption', null, title), svg, leg);
}

function drawTraffic(el, st) {
  const routes = st.status?.routes || [];
  const pct = share(routes);
  const shadow = st.status?.shadow;
  clear(el);
  if (!routes.length) { el.append(h('p', { class: 'muted' }, 'No live routes: the endpoint serves nothing yet.')); return; }
  put(el, trafficBar(routes, 'Traffic split across live routes'),
    table([
      { key: 'name', label: 'Route' },
      { key: 'version', label: 'Model version', value: (r) => `${r.model} ${String(r.version).padStart(8, '0')}`, render: (r) => link(versionURL(r.model, r.version), `${r.model} v${r.version}`) },
      { key: 'weight', label: 'Weight', numeric: true },
      { key: 'share', label: 'Share of traffic (%)', numeric: true, value: pct },
      { key: 'state', label: 'State', render: (r) => (r.state ? badge(r.state) : '') },
      { key: 'reason', label: 'Reason', render: (r) => r.reason || '' },
    ], routes, { caption: 'Live routes', empty: 'No live routes.' }),
    shadow ? h('p', { id: 'ep-shadow' }, 'Shadow: ', link(versionURL(shadow.model, shadow.version), `${shadow.model} v${shadow.version}`),
      ` receives a copy of ${fmtNum(shadow.percent)}% of requests `, shadow.state ? badge(shadow.state) : null) : null);
}

// Which actions apply now (the Manager's rules, docs/deployments.md):
// returns {action: reason-it-does-not-apply | ''}.
export function actionState(st) {
  const ro = st.status?.rollout;
  const hasStrategy = !!st.endpoint?.spec?.rollout;
  const paused = !!st.status?.paused;
  const out = {};
  out.promote = !ro ? 'no rollout candidate' : ro.phase === 'succeeded' ? 'the rollout already succeeded' : '';
  out.pause = paused ? 'already paused' : '';
  out.resume = paused || (ro && (ro.phase === 'rolled_back' || ro.phase === 'failed')) || (!ro && /^rolled back/.test(st.status?.message || '')) ? '' : 'not paused and nothing to retry';
  if (!hasStrategy || !ro) out.rollback = (st.status?.previous || []).length ? '' : 'no previous routes to roll back to';
  else out.rollback = ro.phase === 'rolled_back' || ro.phase === 'failed' ? 'already on the stable version' : '';
  return out;
}

const actionText = {
  promote: (st) => `Give the candidate version ${st.status?.rollout?.candidate?.version ?? ''} all of the traffic now, ending the rollout.`,
  pause: () => 'Hold the rollout controller: a canary stays at its step and alias moves are not acted on until Resume.',
  resume: (st) => (st.status?.paused ? 'Release the pause: the canary continues, its step timer restarted.' : 'Retry the candidate from the first step.'),
  rollback: (st) => {
    const ro = st.status?.rollout;
    if (!ro) return 'Return to the previous routes at once.';
    if (ro.phase === 'succeeded') return `Switch all traffic back to the previous version ${ro.stable?.version} at once.`;
    return `Put all traffic back on the stable version ${ro.stable?.version} at once.`;
  },
};

function drawRollout(el, st, name, act) {
  const ro = st.status?.rollout;
  const spec = st.endpoint?.spec?.rollout;
  const steps = spec?.steps || [];
  const can = actionState(st);
  const buttons = ['promote', 'pause', 'resume', 'rollback'].map((a) => h('button', {
    type: 'button', class: a === 'rollback' ? 'danger' : (a === 'promote' ? null : 'secondary'), 'data-action': a,
    disabled: !!can[a], title: can[a] || null,
    onclick: async () => {
      if (!(await confirmDialog(`${label(a)} ${name}?`, actionText[a](st), label(a)))) return;
      await act(a);
    },
  }, label(a)));
  clear(el);
  el.append(h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Rollout actions' }, buttons));
  if (!ro) {
    el.append(h('p', { class: 'muted', id: 'ep-rollout-none' }, spec
      ? `Strategy ${spec.strategy}: no rollout yet. A new version (a changed document or a moved alias) starts one.`
      : (st.endpoint?.spec?.experiment ? 'This endpoint runs an A/B experiment; it has no rollout.' : 'No rollout strategy: a new version takes all traffic once it is loaded.')));
    return;
  }
  const stepW = steps[ro.step]?.weight;
  el.append(kv([
    ['Strategy', ro.strategy],
    ['Phase', badge(ro.phase)],
    ['Step', ro.strategy === 'canary' && steps.length && (ro.phase === 'progressing' || ro.phase === 'paused') ? `${ro.step + 1} of ${steps.length}${stepW !== undefined ? ` (candidate weight ${fmtNum(stepW)}%)` : ''}` : null],
    ['Stable', link(versionURL(ro.stable.model, ro.stable.version), `${ro.stable.model} v${ro.stable.version}`)],
    ['Candidate', link(versionURL(ro.candidate.model, ro.candidate.version), `${ro.candidate.model} v${ro.candidate.version}`)],
    ['Started', fmtTime(ro.started_at)],
    ['Step started', ro.phase === 'progressing' || ro.phase === 'paused' ? fmtTime(ro.step_started_at) : null],
    ['Finished', fmtTime(ro.finished_at)],
    ['Message', ro.message],
    ['Analysis bounds', spec?.analysis ? [
      spec.analysis.max_error_rate !== undefined ? `error rate ≤ ${fmtNum(spec.analysis.max_error_rate)}` : null,
      spec.analysis.max_p99_latency ? `p99 ≤ ${spec.analysis.max_p99_latency}` : null,
      spec.analysis.min_requests ? `at least ${spec.analysis.min_requests} requests` : null,
      spec.analysis.quality ? `${spec.analysis.quality.metric}${spec.analysis.quality.min !== undefined ? ' ≥ ' + spec.analysis.quality.min : ''}${spec.analysis.quality.max !== undefined ? ' ≤ ' + spec.analysis.quality.max : ''}` : null,
    ].filter(Boolean).join(', ') : null],
  ]));
  const an = ro.analysis;
  if (an) {
    el.append(h('h3', null, 'Last analysis of the candidate'), table([
      { key: 'time', label: 'Time', render: (a) => fmtTime(a.time) },
      { key: 'requests', label: 'Requests', numeric: true },
      { key: 'errors', label: 'Errors', numeric: true },
      { key: 'error_rate', label: 'Error rate', numeric: true },
      { key: 'p99_ms', label: 'p99 (ms)', numeric: true },
      { key: 'quality', label: 'Quality', numeric: true, render: (a) => (a.quality === undefined || a.quality === null ? '' : fmtNum(a.quality)) },
      { key: 'passed', label: 'Passed', render: (a) => badge(a.passed ? 'passed' : 'not yet') },
      { key: 'reason', label: 'Reason' },
    ], [an], { caption: 'Analysis' }));
  }
}

function eventDetail(d) {
  if (d === undefined || d === null) return '';
  const text = JSON.stringify(d);
  if (text.length <= 80) return h('code', null, text);
  return h('details', null, h('summary', null, h('code', null, text.slice(0, 72) + '…')), pre(d));
}

function eventTable(evs) {
  return table([
    { key: 'time', label: 'Time', value: (e) => e.time, render: (e) => fmtTime(e.time) },
    { key: 'action', label: 'Action', render: (e) => badge(e.action) },
    { key: 'actor', label: 'Actor' },
    { key: 'reason', label: 'Reason' },
    { key: 'detail', label: 'Detail', sortable: false, render: (e) => eventDetail(e.detail) },
  ], evs, { sort: { key: 'time', dir: 'desc' }, caption: 'Events, newest first', empty: 'No events recorded.' });
}

// liveStats polls GET …/stats every POLL_MS while the page is shown and
// keeps the endpoint's requests/s and p99 of each poll for the charts.
function liveStats(name, gone) {
  const el = h('div', { id: 'ep-stats' });
  const cards = h('div', { class: 'cards', id: 'ep-stat-cards' });
  const tableSlot = h('div', { id: 'ep-stat-table' });
  const charts = h('div', { class: 'grid2', id: 'ep-stat-charts' });
  const status = h('p', { class: 'muted', 'aria-live': 'polite', id: 'ep-stat-status' }, 'Loading statistics…');
  const err = h('div');
  el.append(status, err, cards, tableSlot, charts);
  const samples = []; // {t, rps, p99}
  let timer = null;
  let inflight = false;

  function card(title, value, id) {
    return h('div', { class: 'card', 'data-stat': id }, h('div', { class: 'muted' }, title), h('div', { class: 'big' }, value));
  }

  function drawStats(stats) {
    const ep = stats.find((x) => x.kind === 'endpoint') || stats[0];
    clear(cards);
    if (ep) {
      put(cards,
        card('Requests/s (1 min)', fmtNum(ep.rps), 'rps'),
        card('p50 latency (ms)', fmtNum(ep.window.p50_ms), 'p50'),
        card('p90 latency (ms)', fmtNum(ep.window.p90_ms), 'p90'),
        card('p99 latency (ms)', fmtNum(ep.window.p99_ms), 'p99'),
        card('Error rate (1 min)', fmtNum(ep.window.error_rate), 'error_rate'),
        card('Requests (total)', fmtNum(ep.total.requests), 'total'),
        ep.capacity ? card('Workers / in flight / queued', `${ep.capacity.workers} / ${ep.capacity.in_flight} / ${ep.capacity.queued}`, 'capacity') : null,
        ep.capacity ? card('Shed', fmtNum(ep.capacity.shed), 'shed') : null);
    }
    clear(tableSlot).append(table([
      { key: 'name', label: 'Name' },
      { key: 'kind', label: 'Kind' },
      { key: 'version', label: 'Version', render: (x) => (x.model && x.version ? link(versionURL(x.model, x.version), `v${x.version}`) : '') },
      { key: 'weight', label: 'Weight', numeric: true },
      { key: 'rps', label: 'Requests/s', numeric: true },
      { key: 'w_req', label: 'Requests (1 min)', numeric: true, value: (x) => x.window.requests },
      { key: 'w_err', label: 'Errors (1 min)', numeric: true, value: (x) => x.window.errors },
      { key: 'w_rate', label: 'Error rate', numeric: true, value: (x) => x.window.error_rate },
      { key: 'p50', label: 'p50 (ms)', numeric: true, value: (x) => x.window.p50_ms },
      { key: 'p90', label: 'p90 (ms)', numeric: true, value: (x) => x.window.p90_ms },
      { key: 'p99', label: 'p99 (ms)', numeric: true, value: (x) => x.window.p99_ms },
      { key: 't_req', label: 'Requests (total)', numeric: true, value: (x) => x.total.requests },
      { key: 't_err', label: 'Errors (total)', numeric: true, value: (x) => x.total.errors },
      stats.some((x) => x.shadow) ? { key: 'shadow', label: 'Shadow agreement', numeric: true, value: (x) => x.shadow?.agreement, render: (x) => (x.shadow ? `${fmtNum(x.shadow.agreement)} of ${fmtNum(x.shadow.compared)} (${fmtNum(x.shadow.dropped)} dropped)` : '') } : null,
    ].filter(Boolean), stats, { caption: 'Per route: the last minute (sliding window) and since the route went live', empty: 'No statistics: the endpoint has no live routes in this process.' }));
    const t0 = samples[0]?.t ?? 0;
    const pts = (k) => samples.map((x) => [(x.t - t0) / 1000, x[k]]);
    clear(charts).append(
      h('div', { class: 'ep-chart', 'data-chart': 'rps' }, lineChart([{ name: 'requests/s', points: pts('rps') }], { title: 'Requests per second (1-minute window)', xLabel: 'seconds since the page opened', yLabel: 'requests/s', height: 200 })),
      h('div', { class: 'ep-chart', 'data-chart': 'p99' }, lineChart([{ name: 'p99', points: pts('p99') }], { title: 'p99 latency (1-minute window)', xLabel: 'seconds since the page opened', yLabel: 'p99 (ms)', height: 200 })));
  }

  async function poll() {
    if (gone() || inflight) return;
    inflight = true;
    try {
      const res = await v1('GET', `${epPath(name)}/stats`);
      if (gone()) return;
      const stats = res.stats || [];
      const ep = stats.find((x) => x.kind === 'endpoint') || stats[0];
      if (ep) {
        samples.push({ t: Date.now(), rps: Number(ep.rps) || 0, p99: Number(ep.window?.p99_ms) || 0 });
        if (samples.length > MAX_SAMPLES) samples.shift();
      }
      clear(err);
      drawStats(stats);
      status.textContent = `Updated ${fmtTime(Date.now())}; refreshed every ${POLL_MS / 1000} s while this page is open (${samples.length} samples).`;
    } catch (e) {
      if (gone()) return;
      clear(err).append(errorBox(e));
    } finally {
      inflight = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (gone()) return;
    timer = setTimeout(async () => { if (gone()) return; await poll(); schedule(); }, POLL_MS);
  }

  return {
    el,
    start: async () => { await poll(); schedule(); },
    poll: () => { poll(); },
  };
}
