// Experiments and runs: the experiment list, an experiment's run table
// (MLflow's filter language, server-side sorting and paging, a column
// picker), a run's page (parameters, metric charts over step or time,
// tags, datasets, an artifact browser with previews) and the comparison
// of several runs (overlaid metric charts, parameter differences,
// parallel coordinates).
import { h, link, clear, table, kv, pager, tabs, badge, fmtNum, fmtTime, fmtDuration, fmtBytes, errorBox, section, pre, toast } from '../lib/dom.js';
import { mlflow, artifactURL, request } from '../lib/api.js';
import { lineChart, parallelCoords } from '../lib/chart.js';

const PAGE = 100; // runs per page
const CHART_POINTS = 500; // server-side downsampling of metric histories

export async function render(ctx) {
  const [sec, a, b, c] = ctx.segments;
  if (sec === 'compare') return compare(ctx);
  if (!a) return experimentList(ctx);
  if (b === 'runs' && c) return runPage(ctx, a, c);
  return runTable(ctx, a);
}

// ---- experiments ---------------------------------------------------------

async function experimentList(ctx) {
  ctx.title('Experiments');
  const q = ctx.query;
  const name = q.get('name') || '';
  const view = q.get('view') || 'ACTIVE_ONLY';
  const token = q.get('page_token') || '';
  const body = { max_results: PAGE, view_type: view, order_by: ['last_update_time DESC'] };
  if (name) body.filter = `name ILIKE '%${name.replace(/'/g, "\\'")}%'`;
  if (token) body.page_token = token;
  const res = await mlflow('POST', 'experiments/search', { body });
  const exps = res.experiments || [];
  const search = h('input', { type: 'search', id: 'exp-search', value: name, placeholder: 'Experiment name contains…', 'aria-label': 'Search experiments by name' });
  const viewSel = h('select', { id: 'exp-view', 'aria-label': 'Which experiments' },
    [['ACTIVE_ONLY', 'Active'], ['DELETED_ONLY', 'Deleted'], ['ALL', 'All']].map(([v, l]) => h('option', { value: v, selected: v === view }, l)));
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ name: search.value, view: viewSel.value, page_token: null }); } },
    search, viewSel, h('button', { type: 'submit' }, 'Search'));
  viewSel.onchange = () => form.requestSubmit();
  ctx.el.append(h('h1', null, 'Experiments'), form,
    table([
      { key: 'name', label: 'Name', render: (e) => link(`/ui/experiments/${e.experiment_id}`, e.name) },
      { key: 'experiment_id', label: 'ID' },
      { key: 'lifecycle_stage', label: 'State', render: (e) => badge(e.lifecycle_stage) },
      { key: 'creation_time', label: 'Created', render: (e) => fmtTime(e.creation_time), value: (e) => Number(e.creation_time) },
      { key: 'last_update_time', label: 'Updated', render: (e) => fmtTime(e.last_update_time), value: (e) => Number(e.last_update_time) },
      { key: 'artifact_location', label: 'Artifacts', render: (e) => h('code', null, e.artifact_location || '') },
    ], exps, { empty: 'No experiments match.' }),
    pager({ label: `${exps.length} shown`, hasPrev: !!token, hasNext: !!res.next_page_token, onPrev: () => history.back(), onNext: () => ctx.setQuery({ page_token: res.next_page_token }) }));
}

// ---- the run table -------------------------------------------------------

// prevTokens remembers, per query, the page tokens behind the current
// page, so Previous works without the server knowing pages backwards.
const prevTokens = new Map();

function orderClause(sortKey, dir) {
  if (!sortKey) return [];
  const [kind, ...rest] = sortKey.split('.');
  const name = rest.join('.');
  const d = dir === 'asc' ? 'ASC' : 'DESC';
  if (kind === 'attr') return [`attributes.${name} ${d}`];
  return [`${kind}.\`${name}\` ${d}`];
}

function runValue(run, key) {
  const [kind, ...rest] = key.split('.');
  const name = rest.join('.');
  const list = run.data?.[kind] || [];
  const e = list.find((x) => x.key === name);
  return e ? e.value : undefined;
}

export function runName(r) {
  return r.info.run_name || (r.data?.tags || []).find((t) => t.key === 'mlflow.runName')?.value || r.info.run_id.slice(0, 8);
}

async function runTable(ctx, expId) {
  const q = ctx.query;
  const filter = q.get('filter') || '';
  const view = q.get('view') || 'ACTIVE_ONLY';
  const sort = q.get('sort') || 'attr.start_time';
  const dir = q.get('dir') || 'desc';
  const token = q.get('page_token') || '';
  const exp = (await mlflow('GET', 'experiments/get', { query: { experiment_id: expId } })).experiment;
  ctx.title(exp.name);
  const body = { experiment_ids: [expId], max_results: PAGE, run_view_type: view, order_by: orderClause(sort, dir) };
  if (filter) body.filter = filter;
  if (token) body.page_token = token;
  const t0 = performance.now();
  const head = h('div', null,
    h('div', { class: 'crumbs' }, link('/ui/experiments', 'Experiments'), ' / '),
    h('h1', null, exp.name, ' ', exp.lifecycle_stage === 'deleted' ? badge('deleted') : null));
  const filterIn = h('input', { type: 'search', class: 'filter', id: 'run-filter', value: filter, placeholder: "metrics.rmse < 0.8 and params.alpha = '0.5' and tags.`mlflow.user` LIKE 'a%'", 'aria-label': 'Filter runs (MLflow search syntax)', spellcheck: 'false' });
  const viewSel = h('select', { id: 'run-view', 'aria-label': 'Which runs' },
    [['ACTIVE_ONLY', 'Active'], ['DELETED_ONLY', 'Deleted'], ['ALL', 'All']].map(([v, l]) => h('option', { value: v, selected: v === view }, l)));
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ filter: filterIn.value.trim(), view: viewSel.value, page_token: null }); } },
    h('label', { for: 'run-filter' }, 'Filter'), filterIn, viewSel, h('button', { type: 'submit' }, 'Search'),
    filter ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ filter: null, page_token: null }) }, 'Clear') : null);
  viewSel.onchange = () => form.requestSubmit();
  ctx.el.append(head, form);
  let res;
  try {
    res = await mlflow('POST', 'runs/search', { body });
  } catch (e) {
    ctx.el.append(errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  const ms = performance.now() - t0;
  const runs = res.runs || [];
  // Columns: the picked ones (cols=), else the first keys seen on this page.
  const seen = { metrics: new Set(), params: new Set(), tags: new Set() };
  for (const r of runs) for (const k of ['metrics', 'params', 'tags']) for (const e of r.data?.[k] || []) if (k !== 'tags' || !e.key.startsWith('mlflow.')) seen[k].add(e.key);
  let cols = q.get('cols') !== null ? q.get('cols').split(',').filter(Boolean)
    : [...[...seen.metrics].sort().slice(0, 6).map((k) => `metrics.${k}`), ...[...seen.params].sort().slice(0, 6).map((k) => `params.${k}`)];
  const selected = new Set();
  const compareBtn = h('button', { type: 'button', id: 'compare-runs', disabled: true, onclick: () => ctx.go(`/ui/compare?runs=${[...selected].join(',')}&experiment=${expId}`) }, 'Compare selected');
  const picker = columnPicker(seen, cols, (next) => ctx.setQuery({ cols: next.join(',') }));
  const columns = [
    { key: 'select', label: h('span', { class: 'sr-only' }, 'Select'), sortable: false, render: (r) => h('input', { type: 'checkbox', 'aria-label': `Select run ${runName(r)}`, class: 'run-select', onchange: (e) => { if (e.target.checked) selected.add(r.info.run_id); else selected.delete(r.info.run_id); compareBtn.disabled = selected.size < 2; compareBtn.textContent = `Compare selected (${selected.size})`; } }) },
    { key: 'attr.run_name', label: 'Run', render: (r) => link(`/ui/experiments/${expId}/runs/${r.info.run_id}`, runName(r)) },
    { key: 'attr.start_time', label: 'Created', render: (r) => fmtTime(r.info.start_time) },
    { key: 'duration', label: 'Duration', sortable: false, render: (r) => (r.info.end_time ? fmtDuration(r.info.end_time - r.info.start_time) : '') },
    { key: 'attr.status', label: 'Status', render: (r) => badge(r.info.status) },
    { key: 'attr.user_id', label: 'User', render: (r) => r.info.user_id || '' },
    ...cols.map((k) => ({ key: k, label: k.replace(/^(metrics|params|tags)\./, ''), numeric: k.startsWith('metrics.'), render: (r) => { const v = runValue(r, k); return k.startsWith('metrics.') ? fmtNum(v) : (v ?? ''); } })),
  ];
  const key = `${expId}|${filter}|${view}|${sort}|${dir}`;
  const stack = prevTokens.get(key) || [];
  const pageNo = token ? stack.length + 1 : 1;
  ctx.el.append(
    h('div', { class: 'toolbar' }, compareBtn, h('details', { class: 'cols' }, h('summary', null, 'Columns'), picker),
      h('span', { class: 'muted', id: 'run-timing' }, `Page ${pageNo} · ${runs.length} runs · ${Math.round(ms)} ms`)),
    table(columns, runs, {
      sort: { key: sort, dir }, empty: filter ? 'No runs match the filter.' : 'No runs in this experiment yet.',
      onSort: ({ key: k, dir: d }) => ctx.setQuery({ sort: k, dir: d, page_token: null }),
      caption: `Runs of ${exp.name}, ${sort.replace(/^attr\./, '')} ${dir === 'asc' ? 'ascending' : 'descending'}`,
    }),
    pager({
      label: `Runs ${(pageNo - 1) * PAGE + (runs.length ? 1 : 0)}–${(pageNo - 1) * PAGE + runs.length}`,
      hasPrev: !!token, hasNext: !!res.next_page_token,
      onPrev: () => { const s2 = prevTokens.get(key) || []; const prev = s2.pop(); prevTokens.set(key, s2); ctx.setQuery({ page_token: prev || null }); },
      onNext: () => { prevTokens.set(key, [...stack, token].filter((t, i) => t || i > 0)); if (!token) prevTokens.set(key, ['']); ctx.setQuery({ page_token: res.next_page_token }); },
    }));
}

function columnPicker(seen, cols, onChange) {
  const cur = new Set(cols);
  const group = (kind, label) => h('fieldset', null, h('legend', null, label),
    [...seen[kind]].sort().map((k) => {
      const id = `${kind}.${k}`;
      return h('label', null, h('input', { type: 'checkbox', value: id, checked: cur.has(id), onchange: (e) => { if (e.target.checked) cur.add(id); else cur.delete(id); } }), ' ', k);
    }), seen[kind].size === 0 ? h('span', { class: 'muted' }, 'none on this page') : null);
  return h('div', { class: 'picker' }, group('metrics', 'Metrics'), group('params', 'Parameters'), group('tags', 'Tags'),
    h('button', { type: 'button', id: 'apply-columns', onclick: () => onChange([...cur]) }, 'Apply'));
}

// ---- one run -------------------------------------------------------------

async function runPage(ctx, expId, runId) {
  const { run } = await mlflow('GET', 'runs/get', { query: { run_id: runId } });
  const exp = (await mlflow('GET', 'experiments/get', { query: { experiment_id: run.info.experiment_id } })).experiment;
  const name = runName(run);
  ctx.title(name);
  const tags = Object.fromEntries((run.data.tags || []).map((t) => [t.key, t.value]));
  const parent = tags['mlflow.parentRunId'];
  ctx.el.append(
    h('div', { class: 'crumbs' }, link('/ui/experiments', 'Experiments'), ' / ', link(`/ui/experiments/${exp.experiment_id}`, exp.name), ' / '),
    h('h1', null, name, ' ', badge(run.info.status)),
    kv([
      ['Run ID', h('code', null, run.info.run_id)],
      ['Experiment', link(`/ui/experiments/${exp.experiment_id}`, exp.name)],
      ['Started', fmtTime(run.info.start_time)],
      ['Duration', run.info.end_time ? fmtDuration(run.info.end_time - run.info.start_time) : 'running'],
      ['User', run.info.user_id],
      ['Source', tags['mlflow.source.name']],
      ['Git commit', tags['mlflow.source.git.commit']],
      ['Parent run', parent ? link(`/ui/experiments/${exp.experiment_id}/runs/${parent}`, parent) : null],
      ['Tuning study', tags['kiln.study'] ? link(`/ui/studies/${run.info.run_id}`, tags['kiln.study']) : null],
      ['Lifecycle', run.info.lifecycle_stage],
      ['Artifacts', h('code', null, run.info.artifact_uri)],
      ['Lineage', link(`/ui/lineage?kind=run&id=${encodeURIComponent(run.info.run_id)}`, 'Show the lineage graph')],
    ]));
  const tab = ctx.query.get('tab') || 'overview';
  ctx.el.append(tabs([
    { id: 'overview', label: 'Parameters and metrics', render: (el) => overview(el, run) },
    { id: 'charts', label: 'Metric charts', render: (el) => metricCharts(el, [run], ctx.query.get('x') || 'step', (x) => ctx.setQuery({ x }, { replace: true })) },
    { id: 'artifacts', label: 'Artifacts', render: (el) => artifactBrowser(el, run, ctx) },
    { id: 'tags', label: 'Tags', render: (el) => el.append(table([{ key: 'key', label: 'Key' }, { key: 'value', label: 'Value' }], run.data.tags || [], { sort: { key: 'key' } })) },
    { id: 'datasets', label: 'Datasets', render: (el) => datasetsTab(el, run) },
  ], tab, (id) => ctx.setQuery({ tab: id }, { replace: true })));
}

function overview(el, run) {
  el.append(h('div', { class: 'grid2' },
    h('div', null, h('h2', null, 'Parameters'), table([{ key: 'key', label: 'Parameter' }, { key: 'value', label: 'Value' }], run.data.params || [], { sort: { key: 'key' }, empty: 'No parameters.' })),
    h('div', null, h('h2', null, 'Metrics (latest)'), table([
      { key: 'key', label: 'Metric' }, { key: 'value', label: 'Value', numeric: true }, { key: 'step', label: 'Step', numeric: true },
      { key: 'timestamp', label: 'Logged', render: (m) => fmtTime(m.timestamp), value: (m) => Number(m.timestamp) },
    ], run.data.metrics || [], { sort: { key: 'key' }, empty: 'No metrics.' }))));
}

// metricHistory fetches a metric of several runs, downsampled by the
// server (MLflow's get-history-bulk-interval: at most CHART_POINTS steps,
// always keeping the first and last).
async function metricHistory(runIds, key) {
  const r = await mlflow('GET', 'metrics/get-history-bulk-interval', { query: { run_ids: runIds, metric_key: key, max_results: CHART_POINTS } });
  const by = new Map(runIds.map((id) => [id, []]));
  for (const m of r.metrics || []) by.get(m.run_id)?.push(m);
  return by;
}

async function metricCharts(el, runs, x, setX) {
  const keys = [...new Set(runs.flatMap((r) => (r.data.metrics || []).map((m) => m.key)))].sort();
  if (!keys.length) { el.append(h('p', { class: 'muted' }, 'No metrics logged.')); return; }
  const xSel = h('select', { id: 'chart-x', 'aria-label': 'X axis' }, [['step', 'Step'], ['time', 'Wall time'], ['relative', 'Relative time']].map(([v, l]) => h('option', { value: v, selected: v === x }, l)));
  xSel.onchange = () => { setX(xSel.value); };
  el.append(h('div', { class: 'toolbar' }, h('label', { for: 'chart-x' }, 'X axis'), xSel,
    h('span', { class: 'muted' }, `histories downsampled by the server to at most ${CHART_POINTS} points per run`)));
  const grid = h('div', { class: 'grid2' });
  el.append(grid);
  const ids = runs.map((r) => r.info.run_id);
  const names = new Map(runs.map((r) => [r.info.run_id, runName(r)]));
  const starts = new Map(runs.map((r) => [r.info.run_id, Number(r.info.start_time)]));
  await Promise.all(keys.map(async (key) => {
    const slot = h('div', { class: 'metric-chart', 'data-metric': key }, h('p', { class: 'muted' }, `Loading ${key}…`));
    grid.append(slot);
    try {
      const by = await metricHistory(ids, key);
      const series = [...by].filter(([, ms]) => ms.length).map(([id, ms]) => ({
        name: names.get(id),
        points: ms.map((m) => [x === 'step' ? Number(m.step) : x === 'time' ? Number(m.timestamp) : (Number(m.timestamp) - starts.get(id)) / 1000, Number(m.value)]),
      }));
      clear(slot).append(lineChart(series, { title: key, xLabel: x === 'step' ? 'step' : x === 'time' ? 'time' : 'seconds since start', yLabel: key, xTime: x === 'time' }));
    } catch (e) { clear(slot).append(errorBox(e)); }
  }));
}

async function datasetsTab(el, run) {
  const inputs = run.inputs?.dataset_inputs || [];
  el.append(table([
    { key: 'name', label: 'Dataset', render: (d) => d.dataset.name },
    { key: 'digest', label: 'Digest', render: (d) => h('code', null, d.dataset.digest) },
    { key: 'source_type', label: 'Source', render: (d) => d.dataset.source_type },
    { key: 'context', label: 'Context', render: (d) => (d.tags || []).find((t) => t.key === 'mlflow.data.context')?.value || '' },
  ], inputs, { empty: 'No datasets logged with this run.' }));
  try {
    const k = await request('GET', `/api/v1/runs/${run.info.run_id}/datasets`);
    const vs = k.dataset_versions || k.datasets || [];
    if (vs.length) {
      el.append(h('h3', null, 'Kiln dataset versions'), table([
        { key: 'dataset', label: 'Dataset', render: (v) => link(`/ui/data/${encodeURIComponent(v.dataset || v.name)}/versions/${v.version}`, `${v.dataset || v.name} v${v.version}`) },
        { key: 'role', label: 'Role', render: (v) => v.role || v.context || '' },
      ], vs));
    }
  } catch { /* no native lineage for this run */ }
}

// ---- artifacts -----------------------------------------------------------

async function artifactBrowser(el, run, ctx) {
  const path = ctx.query.get('path') || '';
  const tree = h('ul', { class: 'tree', id: 'artifact-tree' });
  const view = h('div', { class: 'preview', id: 'artifact-preview' }, h('p', { class: 'muted' }, 'Choose a file to preview it.'));
  el.append(h('div', { class: 'split' }, h('nav', { 'aria-label': 'Artifacts' }, tree), view));
  async function list(dir, into) {
    const r = await mlflow('GET', 'artifacts/list', { query: { run_id: run.info.run_id, path: dir || undefined } });
    const files = r.files || [];
    if (!files.length && !dir) into.append(h('li', { class: 'muted' }, 'No artifacts.'));
    for (const f of files.sort((a, b) => (b.is_dir - a.is_dir) || a.path.localeCompare(b.path))) {
      const base = f.path.split('/').pop();
      if (f.is_dir) {
        const sub = h('ul', { class: 'tree' });
        let open = false;
        const li = h('li', null, h('button', { type: 'button', 'aria-expanded': 'false', onclick: async (e) => {
          open = !open; e.currentTarget.setAttribute('aria-expanded', String(open));
          if (open && !sub.childElementCount) await list(f.path, sub);
          sub.hidden = !open;
        } }, `📁 ${base}/`), sub);
        into.append(li);
        if (path.startsWith(f.path + '/')) li.querySelector('button').click();
      } else {
        into.append(h('li', null, h('button', { type: 'button', 'data-path': f.path, onclick: () => { ctx.setQuery({ path: f.path }, { replace: true }); } }, `${base}`), ' ', h('span', { class: 'muted' }, fmtBytes(f.file_size))));
      }
    }
  }
  await list('', tree);
  if (path) await preview(view, run.info.run_id, path);
}

const TEXT = /\.(txt|log|md|py|yaml|yml|cfg|ini|toml|sh|r|sql|html|xml|requirements)$|(^|\/)(MLmodel|requirements\.txt|conda\.yaml|python_env\.yaml|LICENSE)$/i;

async function preview(view, runId, path) {
  clear(view);
  const url = artifactURL(runId, path);
  view.append(h('h3', null, path, ' ', h('a', { href: url, download: path.split('/').pop() }, 'Download')));
  if (/\.(png|jpe?g|gif|svg|webp)$/i.test(path)) { view.append(h('img', { src: url, alt: path })); return; }
  const res = await request('GET', url, { raw: true });
  const size = Number(res.headers.get('Content-Length') || 0);
  if (size > 2 << 20) { view.append(h('p', { class: 'muted' }, `${fmtBytes(size)}: too large to preview.`)); return; }
  const text = await res.text();
  if (/\.json$/i.test(path)) {
    try { view.append(pre(JSON.parse(text))); } catch { view.append(pre(text)); }
  } else if (/\.(csv|tsv)$/i.test(path)) {
    view.append(csvTable(text, path.endsWith('.tsv') ? '\t' : ','));
  } else if (TEXT.test(path) || !/[\x00-\x08\x0e-\x1f]/.test(text.slice(0, 1024))) {
    view.append(pre(text));
  } else {
    view.append(h('p', { class: 'muted' }, 'A binary file: download it to look inside.'));
  }
}

// csvTable shows the first 200 rows of a CSV (quoted fields supported).
export function csvTable(text, sep = ',') {
  const rows = [];
  let row = [], field = '', q = false;
  for (let i = 0; i < text.length && rows.length <= 200; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') q = false; else field += ch;
    } else if (ch === '"') q = true;
    else if (ch === sep) { row.push(field); field = ''; } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field); field = ''; rows.push(row); row = [];
    } else field += ch;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  const [header = [], ...data] = rows;
  return table(header.map((c, i) => ({ key: i, label: c, value: (r) => r[i] })), data.slice(0, 200), { caption: `${data.length > 200 ? 'First 200' : data.length} rows` });
}

// ---- comparing runs ------------------------------------------------------

async function compare(ctx) {
  const ids = (ctx.query.get('runs') || '').split(',').filter(Boolean);
  ctx.title('Compare runs');
  if (ids.length < 2) { ctx.el.append(h('h1', null, 'Compare runs'), h('p', null, 'Pick two or more runs in an experiment\'s run table.')); return; }
  const runs = await Promise.all(ids.map((id) => mlflow('GET', 'runs/get', { query: { run_id: id } }).then((r) => r.run)));
  const expId = runs[0].info.experiment_id;
  ctx.el.append(h('div', { class: 'crumbs' }, link('/ui/experiments', 'Experiments'), ' / ', link(`/ui/experiments/${expId}`, 'runs'), ' / '),
    h('h1', null, `Compare ${runs.length} runs`));
  const paramKeys = [...new Set(runs.flatMap((r) => (r.data.params || []).map((p) => p.key)))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => (r.data.metrics || []).map((p) => p.key)))].sort();
  const val = (r, kind, k) => (r.data[kind] || []).find((x) => x.key === k)?.value;
  const onlyDiff = ctx.query.get('diff') === '1';
  const diffRows = paramKeys.map((k) => ({ key: k, values: runs.map((r) => val(r, 'params', k)) }))
    .map((row) => ({ ...row, differs: new Set(row.values.map(String)).size > 1 }))
    .filter((row) => !onlyDiff || row.differs);
  const runCols = runs.map((r, i) => ({ key: `r${i}`, label: runName(r), value: (row) => row.values[i], render: (row) => row.values[i] ?? h('span', { class: 'muted' }, '—') }));
  ctx.el.append(
    section('Parameters',
      h('label', null, h('input', { type: 'checkbox', id: 'only-diff', checked: onlyDiff, onchange: (e) => ctx.setQuery({ diff: e.target.checked ? '1' : null }, { replace: true }) }), ' Only parameters that differ'),
      table([{ key: 'key', label: 'Parameter' }, ...runCols], diffRows, { rowClass: (row) => (row.differs ? 'diff-changed' : null), empty: 'No parameters differ.' })),
    section('Metrics (latest)', table([{ key: 'key', label: 'Metric' }, ...runCols.map((c) => ({ ...c, numeric: true }))],
      metricKeys.map((k) => ({ key: k, values: runs.map((r) => val(r, 'metrics', k)) })))));
  // Parallel coordinates: the parameters that differ, then one metric.
  const metric = ctx.query.get('metric') || metricKeys[0];
  const dims = [...diffRows.filter((r) => r.differs).map((r) => ({ key: `p:${r.key}`, label: r.key })), ...(metric ? [{ key: `m:${metric}`, label: metric }] : [])];
  const mSel = h('select', { id: 'pc-metric', 'aria-label': 'Metric axis' }, metricKeys.map((k) => h('option', { value: k, selected: k === metric }, k)));
  mSel.onchange = () => ctx.setQuery({ metric: mSel.value }, { replace: true });
  const pcSec = section('Parallel coordinates', h('div', { class: 'toolbar' }, h('label', { for: 'pc-metric' }, 'Metric'), mSel));
  if (dims.length >= 2) {
    pcSec.append(parallelCoords(dims, runs.map((r) => ({ name: runName(r), values: Object.fromEntries(dims.map((d) => [d.key, d.key.startsWith('p:') ? val(r, 'params', d.key.slice(2)) : val(r, 'metrics', d.key.slice(2))])) })), { title: `Parameters against ${metric}` }));
  } else pcSec.append(h('p', { class: 'muted' }, 'The runs share every parameter: nothing to plot.'));
  ctx.el.append(pcSec);
  const charts = section('Metric charts');
  ctx.el.append(charts);
  await metricCharts(charts, runs, ctx.query.get('x') || 'step', (x) => ctx.setQuery({ x }, { replace: true }));
}
