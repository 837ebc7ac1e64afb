// Pipelines and tuning studies. Two sections share this module:
//   pipelines: the pipeline list (/ui/pipelines), a pipeline (/ui/pipelines/
//     NAME: its DAG, parameters, schedules and triggers, runs, "Run now")
//     and a pipeline run (/ui/pipelines/runs/ID: the DAG coloured by step
//     state, a step's attempts, log, inputs and outputs, Cancel and Resume,
//     refreshed while the run is going);
//   studies: the tuning studies (/ui/studies: the parent runs `kiln tune`
//     tags kiln.study, across experiments) and a study (/ui/studies/RUN_ID:
//     trials, the best one, the optimisation history, counts per state).
import { h, put, link, clear, table, kv, pager, badge, confirmDialog, fmtNum, fmtTime, fmtDuration, errorBox, section, pre, toast } from '../lib/dom.js';
import { v1, mlflow } from '../lib/api.js';
import { dag, lineChart, barChart, parallelCoords, palette } from '../lib/chart.js';

const RUNS_PAGE = 25; // pipeline runs per page
const REFRESH_MS = 1500; // a running pipeline run's refresh
const STUDY_REFRESH_MS = 4000; // a running study's refresh
const MAX_TRIALS = 10000; // trials read for one study

let cssLoaded = false;
function loadCSS() {
  if (cssLoaded) return;
  cssLoaded = true;
  document.head.append(h('link', { rel: 'stylesheet', href: '/ui/pages/pipelines.css' }));
}

export async function render(ctx) {
  loadCSS();
  const [sec, a, b] = ctx.segments;
  if (sec === 'studies') return a ? studyPage(ctx, a) : studyList(ctx);
  if (a === 'runs' && b) return runPage(ctx, b);
  if (a) return pipelinePage(ctx, a);
  return pipelineList(ctx);
}

// ---- helpers ---------------------------------------------------------------

const TERMINAL = new Set(['succeeded', 'failed', 'skipped', 'cached', 'cancelled', 'upstream_failed']);
export const terminal = (state) => TERMINAL.has(state);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const enc = encodeURIComponent;

// natural keeps a chart's SVG at most its drawn size (a small graph is not
// blown up to the page's width).
function natural(fig, max) {
  const svg = fig.querySelector('svg');
  const w = Number((svg?.getAttribute('viewBox') || '').split(' ')[2]);
  if (svg && w) fig.style.maxWidth = `${Math.round(Math.min(w * 1.25, max || Infinity)) + 18}px`;
  return fig;
}

// replaceQuery changes the address's query without rendering again: for
// in-page selections (the step shown) that must survive a reload.
function replaceQuery(changes) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') q.delete(k); else q.set(k, String(v));
  }
  const s = q.toString();
  history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
}

function duration(start, end) {
  if (!start) return '';
  if (!end) return `running for ${fmtDuration(Date.now() - start)}`;
  return fmtDuration(end - start);
}

function shortId(id) { return id && id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-6)}` : (id || ''); }

function code(text) { return h('code', null, text); }

function causeText(c) {
  if (!c) return '';
  let t = c.type || '';
  if (c.name) t += ` ${c.name}`;
  if (c.type === 'resume' && c.event?.run_id) t += ` of ${shortId(c.event.run_id)}`;
  return t;
}

function runLink(id, text) { return link(`/ui/pipelines/runs/${enc(id)}`, text ?? shortId(id)); }

function trackingLink(expId, runId, text) {
  if (!runId) return null;
  return expId ? link(`/ui/experiments/${enc(expId)}/runs/${enc(runId)}`, text ?? shortId(runId)) : code(runId);
}

// stepEdges returns the DAG's edges [from, to]: depends_on, the inputs
// read from another step (from: steps.X.outputs.Y) and the references to
// another step in templates ({{steps.X.…}}), which the server also counts
// as dependencies; the exit handler runs after the steps nothing else
// depends on.
export function stepEdges(spec) {
  const steps = spec?.steps || [];
  const names = new Set(steps.map((s) => s.name));
  const edges = [];
  const seen = new Set();
  const add = (a, b) => {
    const k = `${a}\u0000${b}`;
    if (a === b || !names.has(a) || seen.has(k)) return;
    seen.add(k);
    edges.push([a, b]);
  };
  for (const st of steps) {
    for (const d of st.depends_on || []) add(d, st.name);
    for (const inp of st.inputs || []) {
      const m = /^steps\.([a-z0-9-]+)\./.exec(inp.from || '');
      if (m) add(m[1], st.name);
    }
    const text = JSON.stringify([st.command, st.env, st.when, st.working_dir, st.image, (st.inputs || []).map((i) => [i.value, i.artifact, i.dataset])]);
    for (const m of text.matchAll(/\{\{\s*steps\.([a-z0-9-]+)\./g)) add(m[1], st.name);
  }
  if (spec?.on_exit) {
    const exit = spec.on_exit.name;
    const hasOut = new Set(edges.map(([a]) => a));
    for (const st of steps) if (!hasOut.has(st.name)) edges.push([st.name, exit]);
  }
  return edges;
}

function specSteps(spec) {
  const out = (spec?.steps || []).map((s) => ({ ...s, exit: false }));
  if (spec?.on_exit) out.push({ ...spec.on_exit, exit: true });
  return out;
}

// paramsUsed returns the run parameters a step's definition refers to.
function paramsUsed(step, params) {
  const text = JSON.stringify(step || {});
  const names = new Set([...text.matchAll(/\{\{\s*params\.([A-Za-z0-9_-]+)\s*\}\}/g)].map((m) => m[1]));
  return Object.entries(params || {}).filter(([k]) => names.has(k)).map(([key, value]) => ({ key, value }));
}

function inputSource(i) {
  if (i.dataset) return `dataset ${i.dataset}`;
  if (i.artifact) return `artifact ${i.artifact}`;
  if (i.from) return `from ${i.from}`;
  if (i.value !== undefined) return `value ${i.value}`;
  return '';
}

function scheduleText(s) { return `${s.cron}${s.timezone ? ` (${s.timezone})` : ''}`; }

function triggerType(t) {
  if (t.dataset) return 'dataset';
  if (t.model) return 'model';
  if (t.alert) return 'alert';
  if (t.webhook) return 'webhook';
  return '';
}

function triggerText(t) {
  if (t.dataset) return `new version of dataset ${t.dataset}`;
  if (t.model) return `new version of model ${t.model}`;
  if (t.alert) return `alert ${t.alert.monitor}${t.alert.rule ? `/${t.alert.rule}` : ''} firing`;
  if (t.webhook) return `signed webhook${t.webhook.secret_env ? ` (secret $${t.webhook.secret_env})` : ''}`;
  return '';
}

// ---- the pipeline list -------------------------------------------------------

async function pipelineList(ctx) {
  ctx.title('Pipelines');
  const q = ctx.query.get('q') || '';
  const search = h('input', { type: 'search', id: 'pipeline-search', value: q, placeholder: 'Pipeline name contains…', 'aria-label': 'Search pipelines by name' });
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ q: search.value.trim() }); } },
    search, h('button', { type: 'submit' }, 'Search'),
    q ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ q: null }) }, 'Clear') : null);
  ctx.el.append(h('h1', null, 'Pipelines'), form);
  let list;
  try {
    list = (await v1('GET', '/pipelines')).pipelines || [];
  } catch (e) {
    ctx.el.append(errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const rows = list.filter((p) => !q || p.metadata.name.includes(q.toLowerCase()));
  ctx.el.append(
    h('p', { class: 'muted', id: 'pipeline-count' }, `${rows.length} of ${list.length} pipelines`),
    table([
      { key: 'name', label: 'Name', value: (p) => p.metadata.name, render: (p) => link(`/ui/pipelines/${enc(p.metadata.name)}`, p.metadata.name) },
      { key: 'description', label: 'Description', value: (p) => p.metadata.description || '' },
      { key: 'steps', label: 'Steps', numeric: true, value: (p) => (p.spec.steps || []).length + (p.spec.on_exit ? 1 : 0) },
      { key: 'schedules', label: 'Schedules', value: (p) => (p.spec.schedules || []).map(scheduleText).join(', '),
        render: (p) => ((p.spec.schedules || []).length ? h('span', null, (p.spec.schedules || []).map((s, i) => [i ? ', ' : '', code(scheduleText(s)), s.suspend ? ' (suspended)' : ''])) : h('span', { class: 'muted' }, 'none')) },
      { key: 'triggers', label: 'Triggers', value: (p) => (p.spec.triggers || []).map((t) => `${t.name} (${triggerType(t)})`).join(', '),
        render: (p) => ((p.spec.triggers || []).length ? (p.spec.triggers || []).map((t) => `${t.name} (${triggerType(t)})`).join(', ') : h('span', { class: 'muted' }, 'none')) },
      { key: 'last_state', label: 'Last run', value: (p) => p.last_run?.state || '',
        render: (p) => (p.last_run ? h('span', { class: 'last-run' }, badge(p.last_run.state), ' ', runLink(p.last_run.run_id)) : h('span', { class: 'muted' }, 'never run')) },
      { key: 'last_time', label: 'Last run started', value: (p) => p.last_run?.creation_time || 0, render: (p) => fmtTime(p.last_run?.start_time || p.last_run?.creation_time) },
      { key: 'generation', label: 'Generation', numeric: true, value: (p) => p.generation },
      { key: 'updated', label: 'Updated', value: (p) => p.last_update_time, render: (p) => fmtTime(p.last_update_time) },
    ], rows, { sort: { key: 'name', dir: 'asc' }, empty: q ? 'No pipeline matches.' : 'No pipelines yet: apply one with kiln apply -f.', caption: 'Pipelines' }));
}

// ---- one pipeline ------------------------------------------------------------

const prevTokens = new Map();

async function pipelinePage(ctx, name) {
  ctx.title(name);
  const q = ctx.query;
  const stateFilter = q.get('state') || '';
  const token = q.get('page_token') || '';
  const crumbs = h('div', { class: 'crumbs' }, link('/ui/pipelines', 'Pipelines'), ' / ');
  let p;
  try {
    p = await v1('GET', `/pipelines/${enc(name)}`);
  } catch (e) {
    ctx.el.append(crumbs, h('h1', null, name), errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const spec = p.spec || {};
  const steps = specSteps(spec);
  put(ctx.el, crumbs, h('h1', null, name),
    p.metadata.description ? h('p', { class: 'lead' }, p.metadata.description) : null,
    kv([
      ['Generation', String(p.generation)],
      ['Executor', spec.executor || 'local'],
      ['Experiment', spec.experiment || `pipelines/${name}`],
      ['Step cache', spec.cache === false ? 'off' : 'on'],
      ['Parallelism', spec.parallelism ? String(spec.parallelism) : null],
      ['Created', fmtTime(p.creation_time)],
      ['Updated', `${fmtTime(p.last_update_time)}${p.updated_by ? ` by ${p.updated_by}` : ''}`],
      ['Last run', p.last_run ? h('span', null, badge(p.last_run.state), ' ', runLink(p.last_run.run_id)) : 'never run'],
      ['Lineage', link(`/ui/lineage?kind=pipeline&id=${enc(name)}`, 'Show the lineage graph')],
    ]));

  ctx.el.append(runForm(ctx, name, spec));

  // The graph, and the definition of the step picked in it.
  const detail = h('div', { id: 'step-definition' });
  const selected = q.get('step') || '';
  let fig;
  const showDef = (id) => {
    const st = steps.find((s) => s.name === id);
    clear(detail);
    fig?.querySelectorAll('g.node').forEach((g) => g.classList.toggle('selected', g.dataset.node === id));
    if (!st) return;
    detail.append(stepDefinition(st, spec));
  };
  fig = natural(dag(steps.map((s) => ({ id: s.name, label: s.exit ? `${s.name} (on exit)` : s.name })), stepEdges(spec), {
    title: `Steps of ${name}`,
    onSelect: (n) => { replaceQuery({ step: n.id }); showDef(n.id); },
  }));
  ctx.el.append(section('Steps', h('p', { class: 'muted' }, 'Select a step to see its definition. Arrows run from a step to the steps that need it.'), fig, detail,
    table([
      { key: 'name', label: 'Step', render: (s) => h('button', { type: 'button', class: 'link step-link', onclick: () => { replaceQuery({ step: s.name }); showDef(s.name); } }, s.name) },
      { key: 'after', label: 'Runs after', value: (s) => stepEdges(spec).filter(([, b]) => b === s.name).map(([a]) => a).join(', ') },
      { key: 'command', label: 'Command', render: (s) => code((s.command || []).join(' ')) },
      { key: 'outputs', label: 'Outputs', value: (s) => (s.outputs || []).map((o) => `${o.name} (${o.type || 'artifact'})`).join(', ') },
      { key: 'when', label: 'When', value: (s) => s.when || (s.exit ? 'always, last' : '') },
    ], steps, { caption: 'Steps in the order of the document' })));
  if (selected) showDef(selected);

  if ((spec.parameters || []).length) {
    ctx.el.append(section('Parameters', table([
      { key: 'name', label: 'Parameter' },
      { key: 'type', label: 'Type', value: (x) => x.type || 'string' },
      { key: 'default', label: 'Default', value: (x) => (x.default === undefined ? '' : String(x.default)) },
      { key: 'description', label: 'Description' },
    ], spec.parameters)));
  }

  const trig = h('div', { id: 'triggers' }, h('p', { class: 'muted' }, 'Loading…'));
  ctx.el.append(section('Schedules and triggers', trig));
  const runsEl = h('div', { id: 'pipeline-runs' });
  ctx.el.append(section('Runs', runsEl));
  await Promise.all([
    triggersTable(ctx, trig, name, spec),
    runsTable(ctx, runsEl, name, stateFilter, token),
  ]);
}

function stepDefinition(st, spec) {
  const out = h('section', { class: 'block step-def', 'aria-label': `Definition of step ${st.name}` },
    h('h3', null, `Step ${st.name}`, st.exit ? ' (exit handler)' : ''),
    kv([
      ['Command', pre((st.command || []).join('\n'))],
      ['Runs after', stepEdges(spec).filter(([, b]) => b === st.name).map(([a]) => a).join(', ') || (st.exit ? 'every other step' : 'nothing: a first step')],
      ['When', st.when],
      ['Image', st.image],
      ['Working directory', st.working_dir],
      ['Retry', st.retry ? `${st.retry.limit} more attempts${st.retry.backoff ? `, backoff ${st.retry.backoff}` : ''}` : null],
      ['Timeout', st.timeout],
      ['Cache', st.cache?.disabled ? 'off' : (st.cache?.version ? `version ${st.cache.version}` : null)],
      ['Environment', st.env && Object.keys(st.env).length ? Object.entries(st.env).map(([k, v]) => `${k}=${v}`).join(', ') : null],
    ]));
  if ((st.inputs || []).length) out.append(h('h4', null, 'Inputs'), table([{ key: 'name', label: 'Input' }, { key: 'source', label: 'Source', value: inputSource }], st.inputs));
  if ((st.outputs || []).length) out.append(h('h4', null, 'Outputs'), table([{ key: 'name', label: 'Output' }, { key: 'type', label: 'Type', value: (o) => o.type || 'artifact' }, { key: 'path', label: 'Path' }], st.outputs));
  return out;
}

// runForm holds the run's parameters and "Run now".
function runForm(ctx, name, spec) {
  const params = spec.parameters || [];
  const inputs = params.map((p) => {
    const id = `param-${p.name}`;
    const def = p.default === undefined || p.default === null ? '' : String(p.default);
    let input;
    if (p.type === 'bool') {
      input = h('select', { id, name: p.name }, ['', 'true', 'false'].map((v) => h('option', { value: v, selected: v === def }, v || '(default)')));
    } else {
      input = h('input', { id, name: p.name, value: def, type: p.type === 'int' || p.type === 'float' ? 'number' : 'text', step: p.type === 'float' ? 'any' : (p.type === 'int' ? '1' : null), placeholder: def === '' ? 'required' : null });
    }
    return { p, input, field: h('div', { class: 'field' }, h('label', { for: id }, p.name, p.type && p.type !== 'string' ? h('span', { class: 'muted' }, ` (${p.type})`) : null), input) };
  });
  const noCache = h('input', { type: 'checkbox', id: 'run-no-cache' });
  const err = h('div');
  const btn = h('button', { type: 'submit', id: 'run-now' }, 'Run now');
  const form = h('form', { class: 'run-form', onsubmit: async (e) => {
    e.preventDefault();
    clear(err);
    const parameters = {};
    for (const { p, input } of inputs) if (input.value !== '') parameters[p.name] = input.value;
    const list = Object.entries(parameters).map(([k, v]) => `${k}=${v}`).join(', ');
    const ok = await confirmDialog(`Run ${name}?`, `Start a run of ${name}${list ? ` with ${list}` : ''}${noCache.checked ? ', without the step cache' : ''}.`, 'Run now');
    if (!ok) return;
    btn.disabled = true;
    try {
      const r = await v1('POST', `/pipelines/${enc(name)}/runs`, { body: { parameters, no_cache: noCache.checked } });
      toast(r.created ? `Started run ${r.run.run_id}` : `Run ${r.run.run_id} already exists`);
      ctx.go(`/ui/pipelines/runs/${enc(r.run.run_id)}`);
    } catch (ex) {
      btn.disabled = false;
      err.append(errorBox(ex));
    }
  } },
  inputs.length ? h('div', { class: 'fields' }, inputs.map((x) => x.field)) : h('p', { class: 'muted' }, 'This pipeline has no parameters.'),
  h('div', { class: 'toolbar' }, h('label', { for: 'run-no-cache', class: 'check' }, noCache, ' Run every step, without the cache'), btn), err);
  return section('Run', form);
}

async function triggersTable(ctx, el, name, spec) {
  const defs = [
    ...(spec.schedules || []).map((s) => ({ name: s.name, type: 'schedule', what: `cron ${scheduleText(s)}${s.concurrency ? `, concurrency ${s.concurrency}` : ''}${s.catch_up ? ', catches up' : ''}`, suspend: !!s.suspend })),
    ...(spec.triggers || []).map((t) => ({ name: t.name, type: triggerType(t), what: `${triggerText(t)}${t.concurrency ? `, concurrency ${t.concurrency}` : ''}` })),
  ];
  let states = [];
  let problem = null;
  try {
    states = (await v1('GET', `/pipelines/${enc(name)}/triggers`)).states || [];
  } catch (e) { problem = e; }
  if (ctx.stale()) return;
  const byName = new Map(states.map((s) => [s.name, s]));
  for (const s of states) if (!defs.some((d) => d.name === s.name)) defs.push({ name: s.name, type: s.type, what: '' });
  const rows = defs.map((d) => ({ ...d, st: byName.get(d.name) || {} }));
  put(clear(el), problem ? errorBox(problem) : null, table([
    { key: 'name', label: 'Name' },
    { key: 'type', label: 'Type', render: (r) => badge(r.type) },
    { key: 'what', label: 'Fires on' },
    { key: 'last_fire', label: 'Last fired', value: (r) => r.st.last_fire || 0, render: (r) => (r.st.last_fire ? fmtTime(r.st.last_fire) : h('span', { class: 'muted' }, 'never')) },
    { key: 'next_fire', label: 'Next', value: (r) => r.st.next_fire || 0, render: (r) => (r.st.next_fire ? fmtTime(r.st.next_fire) : '') },
    { key: 'last_run', label: 'Last run', value: (r) => r.st.last_run_id || '', render: (r) => (r.st.last_run_id ? runLink(r.st.last_run_id) : '') },
    { key: 'cursor', label: 'Cursor', value: (r) => r.st.cursor || '' },
    { key: 'suspended', label: 'Suspended', value: (r) => (r.st.suspended || r.suspend ? 'yes' : '') },
    { key: 'error', label: 'Last error', value: (r) => r.st.error || '' },
  ], rows, { empty: 'No schedules or triggers: runs start by hand or through the API.', caption: 'Schedules and triggers' }));
}

async function runsTable(ctx, el, name, stateFilter, token) {
  const stateSel = h('select', { id: 'run-state', 'aria-label': 'Runs in state' },
    [['', 'All states'], ['active', 'Active'], ['running', 'Running'], ['succeeded', 'Succeeded'], ['failed', 'Failed'], ['cancelled', 'Cancelled']]
      .map(([v, l]) => h('option', { value: v, selected: v === stateFilter }, l)));
  stateSel.onchange = () => ctx.setQuery({ state: stateSel.value, page_token: null });
  el.append(h('div', { class: 'toolbar' }, h('label', { for: 'run-state' }, 'State'), stateSel));
  let res;
  try {
    res = await v1('GET', `/pipelines/${enc(name)}/runs`, { query: { state: stateFilter, page_token: token, limit: RUNS_PAGE } });
  } catch (e) {
    el.append(errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const runs = res.runs || [];
  const key = `${name}|${stateFilter}`;
  const stack = prevTokens.get(key) || [];
  const pageNo = token ? stack.length + 1 : 1;
  el.append(table([
    { key: 'run_id', label: 'Run', render: (r) => runLink(r.run_id, r.run_id) },
    { key: 'state', label: 'State', render: (r) => badge(r.state) },
    { key: 'cause', label: 'Cause', value: (r) => causeText(r.cause) },
    { key: 'created_by', label: 'By' },
    { key: 'generation', label: 'Generation', numeric: true },
    { key: 'creation_time', label: 'Created', render: (r) => fmtTime(r.creation_time) },
    { key: 'duration', label: 'Duration', value: (r) => (r.start_time ? (r.end_time || Date.now()) - r.start_time : null), render: (r) => duration(r.start_time, r.end_time) },
    { key: 'error', label: 'Error' },
  ], runs, { empty: stateFilter ? 'No runs in this state.' : 'No runs yet.', caption: `Runs of ${name}, newest first` }),
  pager({
    label: `Runs ${(pageNo - 1) * RUNS_PAGE + (runs.length ? 1 : 0)}–${(pageNo - 1) * RUNS_PAGE + runs.length}`,
    hasPrev: !!token, hasNext: !!res.next_page_token,
    onPrev: () => { const s2 = prevTokens.get(key) || []; const prev = s2.pop(); prevTokens.set(key, s2); ctx.setQuery({ page_token: prev || null }); },
    onNext: () => { prevTokens.set(key, [...stack, token]); ctx.setQuery({ page_token: res.next_page_token }); },
  }));
}

// ---- one pipeline run --------------------------------------------------------

async function runPage(ctx, id) {
  ctx.title(`Run ${shortId(id)}`);
  const crumbs = h('div', { class: 'crumbs' }, link('/ui/pipelines', 'Pipelines'), ' / ');
  let run;
  try {
    run = await v1('GET', `/pipeline-runs/${enc(id)}`);
  } catch (e) {
    ctx.el.append(crumbs, h('h1', null, `Run ${id}`), errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  ctx.title(`${run.pipeline} run ${shortId(id)}`);
  crumbs.append(link(`/ui/pipelines/${enc(run.pipeline)}`, run.pipeline), ' / ');
  const stateEl = h('span', { id: 'run-state-badge' });
  const actions = h('div', { class: 'toolbar', id: 'run-actions' });
  const summary = h('div', { id: 'run-summary' });
  const graph = h('div', { id: 'run-graph' });
  const timings = h('div', { id: 'run-timings' });
  const stepsEl = h('div', { id: 'run-steps' });
  const panel = h('section', { class: 'block step-panel', id: 'step-detail', tabindex: '-1', 'aria-label': 'Selected step' });
  const live = h('p', { class: 'muted', id: 'run-refresh', 'aria-live': 'polite' });
  ctx.el.append(crumbs, h('h1', null, `Run ${id} `, stateEl), live, actions, summary,
    section('Graph', h('p', { class: 'muted' }, 'Select a step (click it, or Tab to it and press Enter) to see its attempts, log, inputs and outputs.'), graph, panel),
    section('Steps', stepsEl), section('Timings', timings));

  const spec = typeof run.spec === 'string' ? JSON.parse(run.spec) : (run.spec || {});
  const defs = specSteps(spec);
  const edges = stepEdges(spec);
  let selected = ctx.query.get('step') || '';
  let graphSig = '';
  const view = { step: '', sig: '', attempt: 0, after: 0, logEl: null, attemptPicked: Number(ctx.query.get('attempt')) || 0 };

  const stepOf = (name) => (run.steps || []).find((s) => s.step === name);
  const select = (name, { focus = false } = {}) => {
    selected = name;
    view.attemptPicked = 0;
    replaceQuery({ step: name, attempt: null });
    graph.querySelectorAll('g.node').forEach((g) => g.classList.toggle('selected', g.dataset.node === name));
    drawPanel(true).catch((e) => panel.append(errorBox(e)));
    if (focus) panel.focus();
  };

  function drawHeader() {
    clear(stateEl).append(badge(run.state));
    clear(actions);
    if (!terminal(run.state)) {
      actions.append(h('button', { type: 'button', class: 'danger', id: 'cancel-run', onclick: async () => {
        if (!await confirmDialog('Cancel this run?', `The running steps of run ${id} are stopped and the others never start.`, 'Cancel run')) return;
        try {
          run = await v1('POST', `/pipeline-runs/${enc(id)}/cancel`, { body: { reason: `cancelled in the web UI by ${ctx.me?.user || 'a user'}` } });
          toast(`Run ${shortId(id)}: ${run.state === 'cancelled' ? 'cancelled' : 'cancelling'}`);
          draw();
        } catch (e) { actions.append(errorBox(e)); }
      } }, 'Cancel run'));
    }
    if (run.state === 'failed' || run.state === 'cancelled') {
      actions.append(h('button', { type: 'button', id: 'resume-run', onclick: async () => {
        if (!await confirmDialog('Resume this run?', `A new run of ${run.pipeline} reuses the succeeded steps of run ${id} and runs the rest again.`, 'Resume')) return;
        try {
          const r = await v1('POST', `/pipeline-runs/${enc(id)}/resume`, { body: {} });
          toast(`Started run ${r.run.run_id}`);
          ctx.go(`/ui/pipelines/runs/${enc(r.run.run_id)}`);
        } catch (e) { actions.append(errorBox(e)); }
      } }, 'Resume'));
    }
    clear(summary).append(kv([
      ['Pipeline', link(`/ui/pipelines/${enc(run.pipeline)}`, `${run.pipeline} (generation ${run.generation})`)],
      ['State', run.state],
      ['Error', run.error],
      ['Cause', causeText(run.cause)],
      ['Started by', run.created_by],
      ['Resumed from', run.resumed_from ? runLink(run.resumed_from, run.resumed_from) : null],
      ['Parameters', Object.keys(run.parameters || {}).length ? h('span', { id: 'run-params' }, Object.entries(run.parameters).map(([k, v], i) => [i ? ', ' : '', code(`${k}=${v}`)])) : null],
      ['Step cache', run.no_cache ? 'not used' : null],
      ['Created', fmtTime(run.creation_time)],
      ['Started', fmtTime(run.start_time)],
      ['Ended', fmtTime(run.end_time)],
      ['Duration', duration(run.start_time, run.end_time)],
      ['Tracking run', trackingLink(run.experiment_id, run.tracking_run_id, run.tracking_run_id)],
      ['Lineage', link(`/ui/lineage?kind=pipeline-run&id=${enc(id)}`, 'Show the lineage graph')],
    ]));
  }

  function drawGraph() {
    const nodes = defs.map((s) => ({ id: s.name, label: s.exit ? `${s.name} (on exit)` : s.name, state: stepOf(s.name)?.state || 'pending' }));
    const sig = nodes.map((n) => `${n.id}:${n.state}`).join(',');
    if (sig === graphSig) return;
    graphSig = sig;
    const focused = document.activeElement?.closest?.('g.node')?.dataset.node;
    const fig = natural(dag(nodes, edges, { title: `Steps of run ${id}`, onSelect: (n) => select(n.id) }));
    clear(graph).append(fig);
    fig.querySelectorAll('g.node').forEach((g) => {
      g.classList.toggle('selected', g.dataset.node === selected);
      g.setAttribute('aria-label', `Step ${g.dataset.node}: ${stepOf(g.dataset.node)?.state || 'pending'}`);
    });
    if (focused) fig.querySelector(`g.node[data-node="${CSS.escape(focused)}"]`)?.focus();
  }

  function drawSteps() {
    const rows = defs.map((d) => ({ def: d, sr: stepOf(d.name) || { step: d.name, state: 'pending', attempt: 0 } }));
    clear(stepsEl).append(table([
      { key: 'step', label: 'Step', value: (r) => r.def.name, render: (r) => h('button', { type: 'button', class: 'link step-link', onclick: () => select(r.def.name, { focus: true }) }, r.def.name, r.def.exit ? ' (on exit)' : '') },
      { key: 'state', label: 'State', value: (r) => r.sr.state, render: (r) => badge(r.sr.state) },
      { key: 'attempt', label: 'Attempt', numeric: true, value: (r) => r.sr.attempt },
      { key: 'start', label: 'Started', value: (r) => r.sr.start_time || 0, render: (r) => fmtTime(r.sr.start_time) },
      { key: 'duration', label: 'Duration', value: (r) => (r.sr.start_time ? (r.sr.end_time || Date.now()) - r.sr.start_time : null), render: (r) => duration(r.sr.start_time, r.sr.end_time) },
      { key: 'exit', label: 'Exit code', numeric: true, value: (r) => (r.sr.exit_code || r.sr.state === 'succeeded' ? r.sr.exit_code || 0 : '') },
      { key: 'cached', label: 'Cached from', value: (r) => r.sr.cached_from || '', render: (r) => (r.sr.cached_from ? runLink(r.sr.cached_from) : '') },
      { key: 'error', label: 'Error', value: (r) => r.sr.error || '' },
    ], rows, { caption: 'Steps of the run' }));
    const bars = rows.filter((r) => r.sr.start_time).map((r) => ({ label: r.def.name, value: ((r.sr.end_time || Date.now()) - r.sr.start_time) / 1000, color: r.sr.state === 'failed' ? palette[1] : palette[0] }));
    clear(timings).append(bars.length
      ? natural(barChart(bars, { title: 'Time per step (seconds, the latest attempt)', xLabel: 'seconds' }), 760)
      : h('p', { class: 'muted' }, 'No step has started yet.'));
  }

  // drawPanel shows the selected step; rebuild when the step, its state or
  // attempt changed, otherwise append the log written since.
  async function drawPanel(force = false) {
    if (!selected) {
      clear(panel).append(h('p', { class: 'muted' }, 'No step selected.'));
      view.step = '';
      return;
    }
    const def = defs.find((d) => d.name === selected);
    const sr = stepOf(selected) || { step: selected, state: 'pending', attempt: 0 };
    const sig = `${selected}|${sr.state}|${sr.attempt}|${sr.end_time || 0}`;
    if (!force && view.step === selected && view.sig === sig) {
      // The same attempt still going: add what it wrote since.
      if (sr.attempt && !terminal(sr.state) && view.attempt === sr.attempt && view.logEl?.isConnected) await appendLog(sr);
      return;
    }
    view.step = selected;
    view.sig = sig;
    const attempt = view.attemptPicked && view.attemptPicked <= sr.attempt ? view.attemptPicked : sr.attempt;
    view.attempt = attempt;
    view.after = 0;
    const outputs = (def?.outputs || []).map((o) => ({ name: o.name, type: o.type || 'artifact', value: sr.outputs?.[o.name] }));
    for (const [k, v] of Object.entries(sr.outputs || {})) if (!outputs.some((o) => o.name === k)) outputs.push({ name: k, type: '', value: v });
    const logEl = h('pre', { class: 'code log', id: 'step-log', tabindex: '0', 'aria-label': `Log of step ${selected}` }, 'Loading…');
    view.logEl = logEl;
    const attempts = h('div', { id: 'step-attempts' }, h('p', { class: 'muted' }, 'Loading…'));
    const pick = h('select', { id: 'log-attempt', 'aria-label': 'Attempt whose log is shown' },
      Array.from({ length: sr.attempt }, (_, i) => i + 1).map((n) => h('option', { value: n, selected: n === attempt }, `Attempt ${n}${n === sr.attempt ? ' (latest)' : ''}`)));
    pick.onchange = () => { view.attemptPicked = Number(pick.value); replaceQuery({ attempt: pick.value }); drawPanel(true).catch((e) => panel.append(errorBox(e))); };
    put(clear(panel),
      h('h3', { id: 'step-title', tabindex: '-1' }, `Step ${selected} `, badge(sr.state)),
      kv([
        ['State', sr.state],
        ['Attempt', sr.attempt ? String(sr.attempt) : 'not started'],
        ['Started', fmtTime(sr.start_time)],
        ['Ended', fmtTime(sr.end_time)],
        ['Duration', duration(sr.start_time, sr.end_time)],
        ['Exit code', sr.exit_code ? String(sr.exit_code) : null],
        ['Error', sr.error],
        ['Next attempt', sr.next_attempt_time ? fmtTime(sr.next_attempt_time) : null],
        ['Cached from', sr.cached_from ? runLink(sr.cached_from, sr.cached_from) : null],
        ['Cache key', sr.cache_key ? h('code', { title: sr.cache_key }, sr.cache_key.slice(0, 16) + '…') : null],
        ['Executor', sr.executor ? `${sr.executor}${sr.handle ? ` (${sr.handle})` : ''}${sr.owner ? ` on ${sr.owner}` : ''}` : null],
        ['Tracking run', trackingLink(run.experiment_id, sr.tracking_run_id, sr.tracking_run_id)],
        ['Command', def ? code((def.command || []).join(' ')) : null],
      ]),
      h('div', { class: 'grid2' },
        h('div', null, h('h4', null, 'Parameters and inputs'),
          table([{ key: 'key', label: 'Name' }, { key: 'kind', label: 'Kind' }, { key: 'value', label: 'Value' }],
            [...paramsUsed(def, run.parameters).map((p) => ({ ...p, kind: 'parameter' })), ...(def?.inputs || []).map((i) => ({ key: i.name, kind: 'input', value: inputSource(i) }))],
            { empty: 'The step uses no parameters or inputs.', caption: `Parameters and inputs of ${selected}` })),
        h('div', null, h('h4', null, 'Outputs'),
          table([{ key: 'name', label: 'Output' }, { key: 'type', label: 'Type' }, { key: 'value', label: 'Value', render: (o) => (o.value === undefined ? h('span', { class: 'muted' }, terminal(sr.state) ? 'none' : 'not yet') : code(o.value)) }],
            outputs, { empty: 'The step declares no outputs.', caption: `Outputs of ${selected}` }))),
      h('h4', null, 'Attempts'), attempts,
      h('h4', null, 'Log'),
      sr.attempt > 1 ? h('div', { class: 'toolbar' }, h('label', { for: 'log-attempt' }, 'Attempt'), pick) : null,
      sr.attempt ? logEl : h('p', { class: 'muted', id: 'step-log-none' }, sr.state === 'cached' ? 'Answered from the cache: this run did not run the step.' : 'This step has not run (yet).'));
    await Promise.all([
      drawAttempts(attempts, sr),
      sr.attempt ? loadLog(logEl, attempt) : null,
    ]);
  }

  async function drawAttempts(el, sr) {
    if (!run.experiment_id || !run.tracking_run_id) { clear(el).append(h('p', { class: 'muted' }, 'No tracking runs.')); return; }
    let rs = [];
    try {
      const r = await mlflow('POST', 'runs/search', { body: {
        experiment_ids: [run.experiment_id], max_results: 100, order_by: ['attributes.start_time ASC'],
        filter: `tags.\`kiln.pipeline.run\` = '${id}' and tags.\`kiln.step\` = '${sr.step}'`,
      } });
      rs = r.runs || [];
    } catch (e) { clear(el).append(errorBox(e)); return; }
    const tag = (r, k) => (r.data?.tags || []).find((t) => t.key === k)?.value;
    const rows = rs.map((r) => ({ r, attempt: Number(tag(r, 'kiln.attempt') || 0), cache: tag(r, 'kiln.cache'), error: tag(r, 'kiln.error') || '' }));
    clear(el).append(table([
      { key: 'attempt', label: 'Attempt', numeric: true, render: (x) => (x.attempt ? String(x.attempt) : 'cache') },
      { key: 'status', label: 'Status', value: (x) => x.r.info.status, render: (x) => badge(x.r.info.status) },
      { key: 'start', label: 'Started', value: (x) => Number(x.r.info.start_time), render: (x) => fmtTime(x.r.info.start_time) },
      { key: 'duration', label: 'Duration', value: (x) => (x.r.info.end_time ? x.r.info.end_time - x.r.info.start_time : null), render: (x) => duration(Number(x.r.info.start_time), Number(x.r.info.end_time)) },
      { key: 'error', label: 'Error', value: (x) => x.error || (x.cache ? `cache ${x.cache}` : '') },
      { key: 'run', label: 'Tracking run', sortable: false, render: (x) => trackingLink(x.r.info.experiment_id, x.r.info.run_id) },
    ], rows, { empty: 'No attempts yet.', caption: `Attempts of ${sr.step}` }));
  }

  async function loadLog(el, attempt) {
    let text = '';
    let after = 0;
    try {
      for (let i = 0; i < 10; i++) {
        const r = await v1('GET', `/pipeline-runs/${enc(id)}/steps/${enc(selected)}/logs`, { query: { attempt, after: after || undefined, limit: 10000 } });
        const chunks = r.chunks || [];
        text += chunks.map((c) => c.data).join('');
        after = r.next_after;
        if (chunks.length < 10000) break;
      }
    } catch (e) { el.replaceWith(errorBox(e)); return; }
    view.after = after;
    el.textContent = text || '(no output)';
    el.classList.toggle('empty', !text);
  }

  async function appendLog(sr) {
    const el = view.logEl;
    try {
      const r = await v1('GET', `/pipeline-runs/${enc(id)}/steps/${enc(sr.step)}/logs`, { query: { attempt: view.attempt, after: view.after || undefined } });
      const add = (r.chunks || []).map((c) => c.data).join('');
      if (add) {
        if (el.classList.contains('empty')) { el.textContent = ''; el.classList.remove('empty'); }
        el.textContent += add;
      }
      view.after = r.next_after;
    } catch { /* the next refresh tries again */ }
  }

  function draw() {
    drawHeader();
    drawGraph();
    drawSteps();
    return drawPanel();
  }

  await draw();

  // Refresh while the run goes on; stop when it ends or the page changes.
  if (!terminal(run.state)) {
    (async () => {
      while (!ctx.stale() && !terminal(run.state)) {
        live.textContent = 'Refreshing while the run is going…';
        await sleep(REFRESH_MS);
        if (ctx.stale()) return;
        try {
          const next = await v1('GET', `/pipeline-runs/${enc(id)}`);
          if (ctx.stale()) return;
          run = next;
          const drawn = draw();
          // Say so as soon as the run has ended, not after the step panel
          // (logs, attempts) has loaded too.
          if (terminal(run.state)) live.textContent = `The run ended ${run.state}.`;
          await drawn;
        } catch (e) {
          if (ctx.stale()) return;
          live.textContent = `Refresh failed (${e.message}); trying again.`;
        }
      }
      if (!ctx.stale()) live.textContent = `The run ended ${run.state}.`;
    })().catch((e) => { if (!ctx.stale()) live.textContent = `Refresh stopped: ${e.message}`; });
  }
}

// ---- tuning studies ----------------------------------------------------------

const tagOf = (r, k) => (r.data?.tags || []).find((t) => t.key === k)?.value;
const paramOf = (r, k) => (r.data?.params || []).find((t) => t.key === k)?.value;
const metricOf = (r, k) => (r.data?.metrics || []).find((t) => t.key === k)?.value;
const quote = (s) => `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

async function allExperiments() {
  const out = [];
  let token = '';
  for (let i = 0; i < 50; i++) {
    const r = await mlflow('POST', 'experiments/search', { body: { max_results: 1000, view_type: 'ACTIVE_ONLY', page_token: token || undefined } });
    out.push(...(r.experiments || []));
    token = r.next_page_token || '';
    if (!token) break;
  }
  return out;
}

// searchAll pages through runs/search (bounded by max runs).
async function searchAll(body, max) {
  const out = [];
  let token = '';
  for (;;) {
    const r = await mlflow('POST', 'runs/search', { body: { ...body, max_results: Math.min(1000, max), page_token: token || undefined } });
    out.push(...(r.runs || []));
    token = r.next_page_token || '';
    if (!token || out.length >= max) return { runs: out, more: !!token };
  }
}

function trialCount(r) {
  let n = 0;
  let any = false;
  for (const t of r.data?.tags || []) if (t.key.startsWith('kiln.study.trials.')) { n += Number(t.value) || 0; any = true; }
  return any ? n : null;
}

async function studyList(ctx) {
  ctx.title('Tuning studies');
  const q = ctx.query;
  const name = q.get('name') || '';
  const status = q.get('status') || '';
  const search = h('input', { type: 'search', id: 'study-search', value: name, placeholder: 'Study name contains…', 'aria-label': 'Search studies by name' });
  const statusSel = h('select', { id: 'study-status', 'aria-label': 'Study status' },
    [['', 'Any status'], ['RUNNING', 'Running'], ['FINISHED', 'Finished'], ['FAILED', 'Failed'], ['KILLED', 'Killed']].map(([v, l]) => h('option', { value: v, selected: v === status }, l)));
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ name: search.value.trim(), status: statusSel.value }); } },
    search, statusSel, h('button', { type: 'submit' }, 'Search'),
    name || status ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ name: null, status: null }) }, 'Clear') : null);
  statusSel.onchange = () => form.requestSubmit();
  ctx.el.append(h('h1', null, 'Tuning studies'),
    h('p', { class: 'muted' }, 'Each study is a parent run made by ', code('kiln tune'), ', with a child run per trial.'), form);
  // A study's parent run has the kiln.study tag and no kiln.trial tag
  // (its trials have both).
  let filter = 'tags.`kiln.study` IS NOT NULL and tags.`kiln.trial` IS NULL';
  if (name) filter += ` and tags.\`kiln.study\` ILIKE ${quote(`%${name}%`)}`;
  if (status) filter += ` and attributes.status = ${quote(status)}`;
  let exps, runs = [], more = false;
  try {
    exps = await allExperiments();
    const ids = exps.map((e) => e.experiment_id);
    for (let i = 0; i < ids.length; i += 100) {
      const r = await searchAll({ experiment_ids: ids.slice(i, i + 100), filter, order_by: ['attributes.start_time DESC'] }, 1000);
      runs.push(...r.runs);
      more ||= r.more;
    }
  } catch (e) {
    ctx.el.append(errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const expName = new Map(exps.map((e) => [e.experiment_id, e.name]));
  ctx.el.append(
    h('p', { class: 'muted', id: 'study-count' }, `${runs.length} studies${more ? ' (the newest 1,000 of an experiment)' : ''}`),
    table([
      { key: 'study', label: 'Study', value: (r) => tagOf(r, 'kiln.study'), render: (r) => link(`/ui/studies/${enc(r.info.run_id)}`, tagOf(r, 'kiln.study')) },
      { key: 'run', label: 'Parent run', value: (r) => r.info.run_name || '' },
      { key: 'status', label: 'Status', value: (r) => r.info.status, render: (r) => badge(r.info.status) },
      { key: 'objective', label: 'Objective', value: (r) => `${paramOf(r, 'objective') || ''} (${paramOf(r, 'direction') || 'minimize'})` },
      { key: 'sampler', label: 'Sampler', value: (r) => paramOf(r, 'sampler') || '' },
      { key: 'trials', label: 'Trials', numeric: true, value: (r) => trialCount(r) ?? paramOf(r, 'trials') },
      { key: 'best', label: 'Best value', numeric: true, value: (r) => { const v = tagOf(r, 'kiln.study.best_value'); return v === undefined ? '' : Number(v); } },
      { key: 'start', label: 'Started', value: (r) => Number(r.info.start_time), render: (r) => fmtTime(r.info.start_time) },
      { key: 'duration', label: 'Duration', value: (r) => (r.info.end_time ? r.info.end_time - r.info.start_time : null), render: (r) => duration(Number(r.info.start_time), Number(r.info.end_time)) },
      { key: 'experiment', label: 'Experiment', value: (r) => expName.get(r.info.experiment_id) || r.info.experiment_id, render: (r) => link(`/ui/experiments/${enc(r.info.experiment_id)}`, expName.get(r.info.experiment_id) || r.info.experiment_id) },
    ], runs, { sort: { key: 'start', dir: 'desc' }, empty: name || status ? 'No study matches.' : 'No studies yet: run one with kiln tune -f study.yaml.', caption: 'Tuning studies, newest first' }));
}

// trialsOf reads a study's trials from its child runs.
function trialsOf(children, metric) {
  const out = [];
  for (const r of children) {
    const n = Number.parseInt(tagOf(r, 'kiln.trial'), 10);
    if (!Number.isFinite(n)) continue;
    const v = metricOf(r, metric);
    out.push({
      number: n, state: tagOf(r, 'kiln.trial.state') || '', run: r, runId: r.info.run_id,
      params: Object.fromEntries((r.data?.params || []).map((p) => [p.key, p.value])),
      value: v === undefined || v === null ? null : Number(v),
      start: Number(r.info.start_time) || 0, end: Number(r.info.end_time) || 0,
    });
  }
  return out.sort((a, b) => a.number - b.number);
}

async function studyPage(ctx, parentId) {
  const crumbs = h('div', { class: 'crumbs' }, link('/ui/studies', 'Tuning studies'), ' / ');
  let parent;
  try {
    parent = (await mlflow('GET', 'runs/get', { query: { run_id: parentId } })).run;
  } catch (e) {
    ctx.title('Study');
    ctx.el.append(crumbs, h('h1', null, 'Study'), errorBox(e));
    return;
  }
  const study = tagOf(parent, 'kiln.study');
  if (!study || tagOf(parent, 'kiln.trial') !== undefined) {
    ctx.title('Not a study');
    ctx.el.append(crumbs, h('h1', null, 'Not a study'), errorBox(new Error(`Run ${parentId} is not a study's parent run (it has no kiln.study tag, or it is a trial).`)));
    return;
  }
  ctx.title(`Study ${study}`);
  const expId = parent.info.experiment_id;
  const metric = paramOf(parent, 'objective') || '';
  const direction = paramOf(parent, 'direction') || 'minimize';
  const better = direction === 'maximize' ? (a, b) => a > b : (a, b) => a < b;
  let exp, children;
  try {
    [exp, children] = await Promise.all([
      mlflow('GET', 'experiments/get', { query: { experiment_id: expId } }).then((r) => r.experiment),
      searchAll({ experiment_ids: [expId], filter: `tags.\`mlflow.parentRunId\` = ${quote(parentId)}`, order_by: ['attributes.start_time ASC'] }, MAX_TRIALS),
    ]);
  } catch (e) {
    ctx.el.append(crumbs, h('h1', null, study), errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const trials = trialsOf(children.runs, metric);
  const completed = trials.filter((t) => t.state === 'completed' && Number.isFinite(t.value));
  // The best trial: the one the parent names when the study ended, else
  // the best completed one so far.
  const bestRun = tagOf(parent, 'kiln.study.best_run');
  let best = trials.find((t) => bestRun && t.runId === bestRun) || null;
  const bestFinal = !!best;
  if (!best) for (const t of completed) if (!best || better(t.value, best.value)) best = t;
  const counts = {};
  for (const t of trials) counts[t.state || 'unknown'] = (counts[t.state || 'unknown'] || 0) + 1;

  const planned = paramOf(parent, 'trials');
  ctx.el.append(crumbs, h('h1', null, `Study ${study} `, badge(parent.info.status)),
    kv([
      ['Objective', `${metric}, ${direction}`],
      ['Best trial', best ? h('span', { id: 'study-best' }, `#${best.number}: ${metric} = `, h('span', { title: String(best.value) }, fmtNum(best.value)), ' ',
        trackingLink(expId, best.runId, 'open its run'), bestFinal ? '' : h('span', { class: 'muted' }, ' (best so far)')) : 'none yet'],
      ['Parent run', trackingLink(expId, parentId, parent.info.run_name || parentId)],
      ['Experiment', link(`/ui/experiments/${enc(expId)}`, exp?.name || expId)],
      ['Sampler', paramOf(parent, 'sampler')],
      ['Pruner', paramOf(parent, 'pruner')],
      ['Seed', paramOf(parent, 'seed')],
      ['Trials', `${trials.length}${planned && planned !== '0' ? ` of ${planned}` : ''}`],
      ['Parallelism', paramOf(parent, 'parallelism')],
      ['Stopped', tagOf(parent, 'kiln.study.stopped')],
      ['Started', fmtTime(parent.info.start_time)],
      ['Duration', duration(Number(parent.info.start_time), Number(parent.info.end_time))],
    ]));

  const states = ['completed', 'pruned', 'failed', 'running', ...Object.keys(counts).filter((k) => !['completed', 'pruned', 'failed', 'running'].includes(k))];
  ctx.el.append(section('Trials per state', h('div', { class: 'cards', id: 'trial-counts' }, states.filter((s) => counts[s] || ['completed', 'pruned', 'failed'].includes(s)).map((s) =>
    h('div', { class: 'card', 'data-state': s }, h('div', { class: 'big' }, String(counts[s] || 0)), badge(s))))));

  // Optimisation history: each completed trial's value, and the best so far.
  const pts = completed.map((t) => [t.number, t.value]);
  const bestSoFar = [];
  let cur = null;
  for (const [n, v] of pts) { if (cur === null || better(v, cur)) cur = v; bestSoFar.push([n, cur]); }
  const hist = h('div', { id: 'study-history' });
  if (pts.length) {
    const fig = lineChart([{ name: metric, points: pts }, { name: `best so far (${direction})`, points: bestSoFar }],
      { title: `Optimization history: ${metric} per trial`, xLabel: 'trial number', yLabel: metric });
    // The trials' values are points, not a line; the best one is ringed.
    const first = fig.querySelector('g.series');
    const path = first?.querySelector('path');
    if (path) { path.setAttribute('stroke', 'none'); path.classList.add('points-only'); }
    first?.querySelectorAll('circle').forEach((c, i) => {
      c.setAttribute('r', 4);
      if (completed[i] === best) { c.setAttribute('r', 6); c.setAttribute('stroke', '#1b1f24'); c.setAttribute('stroke-width', 2); c.classList.add('best-point'); }
    });
    hist.append(fig);
  } else hist.append(h('p', { class: 'muted' }, 'No completed trial yet.'));
  const paramKeys = [...new Set(trials.flatMap((t) => Object.keys(t.params)))].sort();
  let par = null;
  if (completed.length > 1 && paramKeys.length) {
    const lines = completed.slice(0, 300).map((t) => ({ name: `trial ${t.number}`, values: { ...t.params, __value: t.value }, color: t === best ? palette[1] : palette[0] }));
    const pc = parallelCoords([...paramKeys.map((k) => ({ key: k, label: k })), { key: '__value', label: metric }], lines,
      { title: `Parameters of the completed trials and their ${metric} (the best in red)` });
    pc.querySelector('.legend')?.remove(); // one entry per trial says nothing
    par = h('div', { id: 'study-parallel' }, pc);
  }
  ctx.el.append(section('Optimization history', h('div', { class: 'grid2' }, hist, par)));

  // The trials.
  const stateFilter = ctx.query.get('state') || '';
  const stateSel = h('select', { id: 'trial-state', 'aria-label': 'Trials in state' },
    [['', 'All trials'], ...Object.keys(counts).sort().map((s) => [s, `${s} (${counts[s]})`])].map(([v, l]) => h('option', { value: v, selected: v === stateFilter }, l)));
  stateSel.onchange = () => ctx.setQuery({ state: stateSel.value }, { replace: true });
  const shown = trials.filter((t) => !stateFilter || t.state === stateFilter);
  ctx.el.append(section('Trials',
    h('div', { class: 'toolbar' }, h('label', { for: 'trial-state' }, 'Show'), stateSel, children.more ? h('span', { class: 'muted' }, `the first ${MAX_TRIALS} trials`) : null),
    table([
      { key: 'number', label: 'Trial', numeric: true, render: (t) => h('span', null, String(t.number), t === best ? h('span', { class: 'best-mark', title: 'best trial' }, ' ★', h('span', { class: 'sr-only' }, ' best')) : null) },
      { key: 'state', label: 'State', render: (t) => badge(t.state) },
      ...paramKeys.map((k) => ({ key: `p.${k}`, label: k, value: (t) => t.params[k] ?? '' })),
      { key: 'value', label: metric || 'Value', numeric: true, render: (t) => (t.value === null ? '' : h('span', { title: String(t.value), class: t.state === 'completed' ? null : 'muted' }, fmtNum(t.value))) },
      { key: 'duration', label: 'Duration', value: (t) => (t.end ? t.end - t.start : null), render: (t) => duration(t.start, t.end) },
      { key: 'run', label: 'Run', value: (t) => t.run.info.run_name || t.runId, render: (t) => trackingLink(expId, t.runId, t.run.info.run_name || t.runId) },
    ], shown, { sort: { key: 'number', dir: 'asc' }, rowClass: (t) => (t === best ? 'best' : null), empty: 'No trials.', caption: `Trials of ${study}${best ? `; the best is #${best.number}` : ''}` })));

  if (parent.info.status === 'RUNNING') {
    ctx.el.append(h('p', { class: 'muted', 'aria-live': 'polite' }, 'The study is running: this page refreshes.'));
    setTimeout(() => { if (!ctx.stale()) ctx.setQuery({}, { replace: true }); }, STUDY_REFRESH_MS);
  }
}
