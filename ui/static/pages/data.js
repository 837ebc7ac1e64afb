// Datasets: the list (name or description search, server-side paging), a
// dataset's page (description, tags, versions with row counts and their
// latest validation; pick two versions to diff them) and a version's page
// with tabs: its files (the manifest), the profile (per-column statistics,
// a histogram per numeric column, top values per categorical one),
// validation results, the diff against another version, a PII scan and
// its lineage (the runs and model versions that used it).
import { h, put, link, table, kv, pager, tabs, badge, fmtNum, fmtTime, fmtBytes, errorBox, section, toast, confirmDialog } from '../lib/dom.js';
import { v1, mlflow, listAll } from '../lib/api.js';
import { histogram, barChart } from '../lib/chart.js';

const PAGE = 25; // datasets per page
const VPAGE = 20; // versions per page (each version's detail is read for its rows)
const FPAGE = 100; // files per page in the files tab

const enc = encodeURIComponent;
const dsURL = (ds) => `/ui/data/${enc(ds)}`;
const verURL = (ds, v, q = '') => `/ui/data/${enc(ds)}/versions/${v}${q}`;
const apiDs = (ds) => `/datasets/${enc(ds)}`;
const apiVer = (ds, v) => `/datasets/${enc(ds)}/versions/${v}`;

export async function render(ctx) {
  const [, ds, sub, v] = ctx.segments;
  if (!ds) return datasetList(ctx);
  if (sub === 'versions' && v) return versionPage(ctx, ds, v);
  return datasetPage(ctx, ds);
}

// ---- helpers -------------------------------------------------------------

function tagList(tags) {
  const e = Object.entries(tags || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!e.length) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'tags' }, e.map(([k, v], i) => [i ? ' ' : null, h('span', { class: 'badge neutral' }, v === '' ? k : `${k}=${v}`)]));
}

// paging remembers, per listing, the page tokens behind the current page
// so that Previous works without the server paging backwards.
const prevTokens = new Map();
function pagerFor(ctx, key, token, next, label) {
  const stack = prevTokens.get(key) || [];
  return pager({
    label, hasPrev: !!token, hasNext: !!next,
    onPrev: () => { const s = (prevTokens.get(key) || []).slice(); const prev = s.pop(); prevTokens.set(key, s); ctx.setQuery({ page_token: prev || null }); },
    onNext: () => { prevTokens.set(key, [...stack, token]); ctx.setQuery({ page_token: next }); },
  });
}
function pageNumber(key, token) { return token ? (prevTokens.get(key) || []).length + 1 : 1; }

// mapLimit runs f over items, n at a time.
async function mapLimit(items, n, f) {
  const out = new Array(items.length);
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) { const j = i++; out[j] = await f(items[j], j); }
  }));
  return out;
}

function parseProfile(p) {
  if (!p) return null;
  if (typeof p === 'string') { try { return JSON.parse(p); } catch { return null; } }
  return p;
}

function latestValidation(vals) {
  if (!vals || !vals.length) return null;
  return vals.reduce((a, b) => (Number(b.creation_time) > Number(a.creation_time) || (b.creation_time === a.creation_time && b.id > a.id) ? b : a));
}

function validationBadge(val) {
  if (!val) return h('span', { class: 'muted' }, 'not validated');
  return h('span', { title: `${val.suite}, ${fmtTime(val.creation_time)}` }, badge(val.passed ? 'passed' : 'failed'), ' ', h('span', { class: 'muted' }, val.suite));
}

// ---- the dataset list ----------------------------------------------------

async function datasetList(ctx) {
  ctx.title('Datasets');
  const q = ctx.query;
  const prefix = q.get('prefix') || ''; // older addresses
  const contains = q.get('contains') || '';
  const token = q.get('page_token') || '';
  const search = h('input', { type: 'search', id: 'ds-contains', value: contains, placeholder: 'a part of a name or description', 'aria-label': 'Dataset name or description contains' });
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ contains: search.value.trim(), prefix: null, page_token: null }); } },
    h('label', { for: 'ds-contains' }, 'Find'), search, h('button', { type: 'submit' }, 'Search'),
    prefix || contains ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ prefix: null, contains: null, page_token: null }) }, 'Clear') : null);
  put(ctx.el, h('h1', null, 'Datasets'), form);
  let res;
  try {
    res = await v1('GET', '/datasets', { query: { prefix: prefix || undefined, contains: contains || undefined, max_results: PAGE, page_token: token || undefined } });
  } catch (e) { put(ctx.el, errorBox(e)); return; }
  if (ctx.stale()) return;
  const ds = res.datasets || [];
  const key = `list|${prefix}|${contains}`;
  const n = pageNumber(key, token);
  put(ctx.el, 
    table([
      { key: 'name', label: 'Name', render: (d) => link(dsURL(d.name), d.name) },
      { key: 'description', label: 'Description', render: (d) => d.description || '' },
      { key: 'latest_version', label: 'Latest version', numeric: true, render: (d) => (d.latest_version ? link(verURL(d.name, d.latest_version), `v${d.latest_version}`) : h('span', { class: 'muted' }, 'none')) },
      { key: 'tags', label: 'Tags', sortable: false, render: (d) => tagList(d.tags) },
      { key: 'creation_time', label: 'Created', render: (d) => fmtTime(d.creation_time), value: (d) => Number(d.creation_time) },
      { key: 'last_update_time', label: 'Updated', render: (d) => fmtTime(d.last_update_time), value: (d) => Number(d.last_update_time) },
    ], ds, {
      empty: contains ? 'No dataset name or description contains that.' : prefix ? 'No dataset name starts with that.' : 'No datasets yet: add one with kiln data add NAME PATH.',
      caption: contains ? `Datasets whose name or description contains “${contains}”` : prefix ? `Datasets whose name starts with “${prefix}”` : 'Datasets by name',
    }),
    pagerFor(ctx, key, token, res.next_page_token, `Datasets ${(n - 1) * PAGE + (ds.length ? 1 : 0)}–${(n - 1) * PAGE + ds.length}`));
}

// ---- one dataset ---------------------------------------------------------

async function datasetPage(ctx, name) {
  const { dataset: d } = await v1('GET', apiDs(name));
  ctx.title(d.name);
  const token = ctx.query.get('page_token') || '';
  put(ctx.el, 
    h('div', { class: 'crumbs' }, link('/ui/data', 'Datasets'), ' / '),
    h('h1', null, d.name),
    d.description ? h('p', { class: 'description' }, d.description) : h('p', { class: 'muted' }, 'No description.'),
    kv([
      ['Tags', tagList(d.tags)],
      ['Latest version', d.latest_version ? link(verURL(d.name, d.latest_version), `v${d.latest_version}`) : 'none yet'],
      ['Created', fmtTime(d.creation_time)],
      ['Updated', fmtTime(d.last_update_time)],
    ]));
  const sec = section('Versions');
  put(ctx.el, sec);
  let res;
  try {
    res = await v1('GET', `${apiDs(name)}/versions`, { query: { max_results: VPAGE, page_token: token || undefined } });
  } catch (e) { put(sec, errorBox(e)); return; }
  const vs = res.versions || [];
  // The list carries each version's row count and latest validation.
  const rows = vs.map((v) => ({ ...v, rows: v.rows ?? null, validation: v.latest_validation || null }));
  const selected = new Set();
  const compareBtn = h('button', { type: 'button', id: 'compare-versions', disabled: true, onclick: () => {
    const [a, b] = [...selected].sort((x, y) => x - y);
    ctx.go(verURL(name, b, `?tab=diff&from=${a}`));
  } }, 'Diff selected versions');
  const hint = h('span', { class: 'muted', 'aria-live': 'polite' }, 'Pick two versions to compare them.');
  const onPick = (v, on) => {
    if (on) selected.add(v); else selected.delete(v);
    compareBtn.disabled = selected.size !== 2;
    hint.textContent = selected.size === 2 ? `v${Math.min(...selected)} → v${Math.max(...selected)}` : selected.size > 2 ? 'Pick exactly two versions.' : 'Pick two versions to compare them.';
  };
  const key = `versions|${name}`;
  const n = pageNumber(key, token);
  put(sec, 
    h('div', { class: 'toolbar' }, compareBtn, hint),
    table([
      { key: 'select', label: h('span', { class: 'sr-only' }, 'Select'), sortable: false, render: (v) => h('input', { type: 'checkbox', class: 'version-select', 'aria-label': `Select version ${v.version}`, onchange: (e) => onPick(v.version, e.target.checked) }) },
      { key: 'version', label: 'Version', numeric: true, render: (v) => link(verURL(name, v.version), `v${v.version}`) },
      { key: 'creation_time', label: 'Created', render: (v) => fmtTime(v.creation_time), value: (v) => Number(v.creation_time) },
      { key: 'file_count', label: 'Files', numeric: true },
      { key: 'total_size', label: 'Size', numeric: true, render: (v) => fmtBytes(v.total_size) },
      { key: 'rows', label: 'Rows', numeric: true, render: (v) => (v.rows === null || v.rows === undefined ? h('span', { class: 'muted', title: 'not profiled yet' }, '—') : fmtNum(v.rows)) },
      { key: 'tags', label: 'Tags', sortable: false, render: (v) => tagList(v.tags) },
      { key: 'description', label: 'Message', render: (v) => v.description || '' },
      { key: 'created_by', label: 'By', render: (v) => v.created_by || '' },
      { key: 'validation', label: 'Validation', value: (v) => (v.validation ? (v.validation.passed ? 'passed' : 'failed') : ''), render: (v) => validationBadge(v.validation) },
    ], rows, { sort: { key: 'version', dir: 'desc' }, empty: 'No versions yet.', caption: `Versions of ${name}` }),
    pagerFor(ctx, key, token, res.next_page_token, `Versions ${(n - 1) * VPAGE + (vs.length ? 1 : 0)}–${(n - 1) * VPAGE + vs.length}`));
}

// ---- one version ---------------------------------------------------------

async function versionPage(ctx, name, vs) {
  const det = await v1('GET', apiVer(name, vs));
  const v = det.version;
  const ref = `${v.dataset}@${v.version}`;
  ctx.title(ref);
  const prof = parseProfile(v.profile);
  const lin = det.lineage || {};
  put(ctx.el, 
    h('div', { class: 'crumbs' }, link('/ui/data', 'Datasets'), ' / ', link(dsURL(v.dataset), v.dataset), ' / '),
    h('h1', null, ref),
    v.description ? h('p', { class: 'description' }, v.description) : null,
    kv([
      ['Digest', h('code', null, v.digest)],
      ['URI', h('code', null, det.uri)],
      ['Kind', v.kind],
      ['Files', `${fmtNum(v.file_count)} (${fmtBytes(v.total_size)})`],
      ['Rows', prof ? fmtNum(prof.rows) : h('span', { class: 'muted' }, 'not profiled yet')],
      ['Columns', prof ? fmtNum((prof.columns || []).length) : null],
      ['Created', fmtTime(v.creation_time)],
      ['Created by', v.created_by],
      ['Source', v.source ? h('code', null, v.source) : null],
      ['Tags', tagList(v.tags)],
      ['Split of', v.parent ? link(verURL(v.parent.dataset, v.parent.version), `${v.parent.dataset}@${v.parent.version}`) : null],
      ['Validation', validationBadge(latestValidation(det.validations))],
      ['Lineage', link(`/ui/lineage?kind=dataset_version&id=${enc(ref)}`, 'Show the lineage graph')],
    ]));
  const tab = ctx.query.get('tab') || 'files';
  put(ctx.el, tabs([
    { id: 'files', label: `Files (${fmtNum(v.file_count)})`, render: (el) => filesTab(el, ctx, v, det) },
    { id: 'profile', label: 'Profile', render: (el) => profileTab(el, ctx, v, prof) },
    { id: 'validations', label: `Validations (${(det.validations || []).length})`, render: (el) => validationsTab(el, det.validations || []) },
    { id: 'diff', label: 'Diff', render: (el) => diffTab(el, ctx, v) },
    { id: 'pii', label: 'PII', render: (el) => piiTab(el, v) },
    { id: 'lineage', label: `Runs and models (${(lin.runs || []).length + (lin.model_versions || []).length})`, render: (el) => lineageTab(el, v, lin) },
  ], tab, (id) => ctx.setQuery({ tab: id }, { replace: true })));
}

// ---- files ---------------------------------------------------------------

const TABLE_FILE = /\.(csv|tsv|parquet|pq|jsonl|ndjson)(\.gz)?$/i;

async function filesTab(el, ctx, v, det) {
  let files;
  let note = null;
  if (v.file_count > 50000) {
    // Too many to list in a browser: the summary's table files only.
    files = det.manifest?.tables || [];
    note = h('p', { class: 'muted' }, `This version has ${fmtNum(v.file_count)} files: only its table files are listed.`);
  } else {
    const m = await v1('GET', `/content/manifests/${v.digest}`);
    files = m.files || [];
  }
  const fq = ctx.query.get('files') || '';
  const page = Math.max(1, Number(ctx.query.get('fpage')) || 1);
  const shown = fq ? files.filter((f) => f.path.toLowerCase().includes(fq.toLowerCase())) : files;
  const from = (page - 1) * FPAGE;
  const input = h('input', { type: 'search', id: 'file-filter', value: fq, placeholder: 'Path contains…', 'aria-label': 'Filter files by path' });
  put(el, 
    note,
    h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ files: input.value.trim(), fpage: null }, { replace: true }); } },
      h('label', { for: 'file-filter' }, 'Path'), input, h('button', { type: 'submit' }, 'Filter'),
      h('span', { class: 'muted' }, `${fmtNum(shown.length)} of ${fmtNum(files.length)} files, ${fmtBytes(shown.reduce((a, f) => a + Number(f.size || 0), 0))}`)),
    table([
      { key: 'path', label: 'Path', render: (f) => h('code', null, f.path) },
      { key: 'size', label: 'Size', numeric: true, render: (f) => fmtBytes(f.size) },
      { key: 'kind', label: 'Kind', value: (f) => (TABLE_FILE.test(f.path) ? 'table' : 'file') },
      { key: 'digest', label: 'Digest (BLAKE3)', render: (f) => h('code', { title: f.digest }, String(f.digest).slice(0, 12)) },
      { key: 'download', label: 'Download', sortable: false, render: (f) => h('a', { href: `/api/v1/content/objects/${f.digest}`, download: f.path.split('/').pop(), 'aria-label': `Download ${f.path}` }, 'Download') },
    ], shown.slice(from, from + FPAGE), { sort: { key: 'path' }, empty: fq ? 'No file path contains that.' : 'No files.', caption: `Files of ${v.dataset}@${v.version}` }),
    shown.length > FPAGE ? pager({
      label: `Files ${from + 1}–${Math.min(from + FPAGE, shown.length)}`, hasPrev: page > 1, hasNext: from + FPAGE < shown.length,
      onPrev: () => ctx.setQuery({ fpage: page - 1 > 1 ? page - 1 : null }, { replace: true }), onNext: () => ctx.setQuery({ fpage: page + 1 }, { replace: true }),
    }) : null);
}

// ---- profile -------------------------------------------------------------

const NUMERIC = new Set(['int64', 'float64', 'timestamp', 'date']);
const UNIT_MS = { s: 1000, ms: 1, us: 1e-3, ns: 1e-6 };

// edgeLabel formats a histogram edge of a column: a number, or for time
// columns a date (their edges count units since the epoch).
function edgeLabel(field, x) {
  if (field.type === 'date') return new Date(x * 86400000).toISOString().slice(0, 10);
  if (field.type === 'timestamp') return fmtTime(x * (UNIT_MS[field.unit] ?? 1e-3)).slice(0, 16);
  return fmtNum(x);
}

// numericBins returns a numeric column's histogram bins and counts: the
// profile's histogram, else (older profiles) the mass between quantiles.
export function numericBins(col) {
  const hst = col.histogram;
  if (hst && hst.edges && hst.edges.length === hst.counts.length + 1) {
    return { bins: hst.counts.map((_, i) => ({ label: `${edgeLabel(col.field, hst.edges[i])}–${edgeLabel(col.field, hst.edges[i + 1])}`, lo: hst.edges[i], hi: hst.edges[i + 1] })), counts: hst.counts.map(Number), exact: !!hst.exact };
  }
  const q = (col.quantiles || []).slice().sort((a, b) => a.q - b.q);
  if (q.length < 2) return null;
  const pts = [{ q: 0, value: col.min ?? q[0].value }, ...q, { q: 1, value: col.max ?? q[q.length - 1].value }];
  const bins = [], counts = [];
  for (let i = 0; i + 1 < pts.length; i++) {
    if (pts[i + 1].q <= pts[i].q) continue;
    bins.push({ label: `${edgeLabel(col.field, pts[i].value)}–${edgeLabel(col.field, pts[i + 1].value)}`, lo: pts[i].value, hi: pts[i + 1].value });
    counts.push((pts[i + 1].q - pts[i].q) * col.count);
  }
  return { bins, counts, exact: false };
}

function pct(n, of) { return of ? `${fmtNum((100 * n) / of)}%` : ''; }

async function profileTab(el, ctx, v, prof) {
  const compute = h('button', { type: 'button', id: 'compute-profile', class: prof ? 'secondary' : null, onclick: async () => {
    if (!await confirmDialog(prof ? 'Recompute the profile?' : 'Compute the profile?', `The server reads every table file of ${v.dataset}@${v.version} and stores the profile and schema on the version.`, prof ? 'Recompute' : 'Compute')) return;
    compute.disabled = true;
    try {
      const r = await v1('POST', `${apiVer(v.dataset, v.version)}/profile`, { body: {} });
      toast(`Profiled ${v.dataset}@${v.version}: ${fmtNum(r.profile?.rows)} rows`);
      ctx.go(location.pathname + location.search, { replace: true });
    } catch (e) { compute.disabled = false; put(el, errorBox(e)); }
  } }, prof ? 'Recompute profile' : 'Compute profile');
  if (!prof) {
    put(el, h('p', { class: 'muted' }, 'This version has no profile yet (kiln data profile computes one).'), compute);
    return;
  }
  const cols = prof.columns || [];
  put(el, h('div', { class: 'toolbar' }, h('span', null, `${fmtNum(prof.rows)} rows, ${cols.length} columns`), compute));
  put(el, table([
    { key: 'name', label: 'Column', value: (c) => c.field.name, render: (c) => h('a', { href: `#col-${cssId(c.field.name)}` }, c.field.name) },
    { key: 'type', label: 'Type', value: (c) => c.field.type + (c.field.categorical ? ' (categorical)' : '') },
    { key: 'count', label: 'Count', numeric: true },
    { key: 'missing', label: 'Missing', numeric: true, render: (c) => (c.missing ? `${fmtNum(c.missing)} (${pct(c.missing, c.count + c.missing)})` : '0') , value: (c) => c.missing },
    { key: 'distinct', label: 'Distinct', numeric: true, render: (c) => `${c.distinct_exact ? '' : '≈'}${fmtNum(c.distinct)}`, value: (c) => c.distinct },
    { key: 'min', label: 'Min', numeric: true, render: (c) => c.min_time || fmtNum(c.min) },
    { key: 'max', label: 'Max', numeric: true, render: (c) => c.max_time || fmtNum(c.max) },
    { key: 'mean', label: 'Mean', numeric: true, render: (c) => (c.field.type === 'int64' || c.field.type === 'float64' ? fmtNum(c.mean) : '') },
    { key: 'std', label: 'Std', numeric: true, render: (c) => (c.field.type === 'int64' || c.field.type === 'float64' ? fmtNum(c.std) : '') },
    { key: 'top', label: 'Top values', sortable: false, render: (c) => (c.top || []).slice(0, 3).map((t) => `${t.value} (${fmtNum(t.count)})`).join(', ') },
  ], cols, { caption: `Profile of ${v.dataset}@${v.version}`, empty: 'No columns.' }));
  const grid = h('div', { class: 'grid2', id: 'profile-charts' });
  put(el, h('h2', null, 'Distributions'), grid);
  for (const c of cols) {
    const slot = h('div', { class: 'column-chart', id: `col-${cssId(c.field.name)}`, 'data-column': c.field.name });
    grid.append(slot);
    try {
      if (NUMERIC.has(c.field.type) && !c.field.categorical) {
        const b = numericBins(c);
        if (!b) { slot.append(h('p', { class: 'muted' }, `${c.field.name}: no values to chart.`)); continue; }
        slot.append(histogram(b.bins, [{ name: c.field.name, counts: b.counts }], {
          title: `${c.field.name} (${c.field.type}): histogram${b.exact ? '' : ', estimated'}`,
          xLabel: `${c.field.name}${c.field.type === 'timestamp' || c.field.type === 'date' ? ' (time)' : ''}`, yLabel: 'rows',
        }));
      } else {
        const top = (c.top || []).slice(0, 15).map((t) => ({ label: t.value === '' ? '(empty)' : t.value, value: Number(t.count) }));
        if (!top.length) { slot.append(h('p', { class: 'muted' }, `${c.field.name}: no frequent values (every value is rare).`)); continue; }
        const rest = c.count - top.reduce((a, t) => a + t.value, 0);
        if (rest > 0) top.push({ label: '(other values)', value: rest, color: '#8c959f' });
        slot.append(barChart(top, { title: `${c.field.name} (${c.field.type}): top values${c.top_error ? ` (counts within ${fmtNum(c.top_error)})` : ''}`, xLabel: 'rows' }));
      }
    } catch (e) { slot.append(errorBox(e)); }
  }
}

function cssId(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, '_'); }

// ---- validations ---------------------------------------------------------

function ruleBadge(r) {
  if (r.status === 'failed' && r.severity === 'warning') return badge('warning');
  return badge(r.status);
}

function validationsTab(el, vals) {
  if (!vals.length) {
    put(el, h('p', { class: 'muted' }, 'No validation results: run a suite with kiln data validate NAME@VERSION -f suite.yaml.'));
    return;
  }
  const sorted = vals.slice().sort((a, b) => Number(b.creation_time) - Number(a.creation_time) || b.id - a.id);
  for (const val of sorted) {
    const rep = (typeof val.report === 'string' ? JSON.parse(val.report) : val.report) || {};
    const res = rep.results || [];
    put(el, h('section', { class: 'block validation', 'data-validation': val.id },
      h('h2', null, val.suite, ' ', badge(val.passed ? 'passed' : 'failed')),
      h('p', { class: 'muted' }, `${fmtTime(val.creation_time)} · ${fmtNum(rep.total ?? res.length)} rules: ${fmtNum(rep.succeeded ?? 0)} passed, ${fmtNum(rep.failed ?? 0)} failed, ${fmtNum(rep.errors ?? 0)} errors, ${fmtNum(rep.warnings ?? 0)} warnings; ${fmtNum(rep.rows)} rows`),
      table([
        { key: 'status', label: 'Status', render: ruleBadge },
        { key: 'rule', label: 'Rule', render: (r) => h('code', null, r.rule) },
        { key: 'check', label: 'Check' },
        { key: 'columns', label: 'Columns', value: (r) => (r.columns || []).join(', ') },
        { key: 'observed', label: 'Observed', render: (r) => r.error ? h('span', { class: 'diff-removed' }, r.error) : (r.observed || '') },
        { key: 'expected', label: 'Expected' },
        { key: 'unexpected', label: 'Unexpected', numeric: true, render: (r) => (r.unexpected ? `${fmtNum(r.unexpected)} (${fmtNum(100 * (r.unexpected_fraction || 0))}%)` : '0'), value: (r) => r.unexpected },
        { key: 'examples', label: 'Examples', sortable: false, render: (r) => (r.examples || []).slice(0, 3).map((x) => `row ${x.row}: ${x.value}`).join(', ') },
        { key: 'severity', label: 'Severity' },
      ], res, { rowClass: (r) => (r.status !== 'passed' ? 'diff-changed' : null), caption: `Rules of ${val.suite}`, empty: 'No rules.' })));
  }
}

// ---- diff ----------------------------------------------------------------

async function diffTab(el, ctx, v) {
  const versions = await listAll(`${apiDs(v.dataset)}/versions`, 'versions', 500);
  const others = versions.map((x) => x.version).filter((n) => n !== v.version).sort((a, b) => b - a);
  const fromQ = ctx.query.get('from');
  // Without from the server diffs against the previous version (version
  // 1: against nothing).
  const from = fromQ && fromQ !== '0' ? Number(fromQ) : (v.version > 1 ? v.version - 1 : null);
  const sel = h('select', { id: 'diff-from', 'aria-label': 'Compare with version' },
    others.map((n) => h('option', { value: n, selected: n === from }, `v${n}`)),
    v.version === 1 ? h('option', { value: '0', selected: !from }, 'nothing (every file new)') : null);
  sel.onchange = () => ctx.setQuery({ from: sel.value }, { replace: true });
  put(el, h('div', { class: 'toolbar' }, h('label', { for: 'diff-from' }, 'Compare with'), sel,
    h('span', { class: 'muted' }, from ? `${v.dataset}@${from} → ${v.dataset}@${v.version}` : `${v.dataset}@${v.version} against nothing (every file is new)`)));
  const r = await v1('GET', `${apiVer(v.dataset, v.version)}/diff`, { query: { from: from || undefined } });
  const f = r.files || {};
  const added = f.added || [], removed = f.removed || [], changed = f.changed || [];
  const card = (label, n, cls) => h('div', { class: `card ${cls || ''}`, 'data-stat': label.toLowerCase() }, h('div', { class: 'muted' }, label), h('div', { class: 'big' }, n));
  put(el, h('div', { class: 'cards', id: 'diff-summary' },
    card('Added', fmtNum(added.length), 'diff-added'), card('Removed', fmtNum(removed.length), 'diff-removed'),
    card('Changed', fmtNum(changed.length)), card('Unchanged', fmtNum(f.unchanged ?? 0)),
    card('Size change', `${f.size_delta > 0 ? '+' : f.size_delta < 0 ? '−' : ''}${fmtBytes(Math.abs(f.size_delta || 0))}`)));
  const rows = [
    ...added.map((e) => ({ status: 'added', path: e.path, old_size: null, new_size: e.size })),
    ...removed.map((e) => ({ status: 'removed', path: e.path, old_size: e.size, new_size: null })),
    ...changed.map((e) => ({ status: 'changed', path: e.path, old_size: e.old_size, new_size: e.new_size })),
  ];
  const mark = { added: '+', removed: '−', changed: 'M' };
  put(el, section('Files', table([
    { key: 'status', label: 'Change', render: (x) => h('span', { class: `diff-${x.status}` }, `${mark[x.status]} ${x.status}`) },
    { key: 'path', label: 'Path', render: (x) => h('code', null, x.path) },
    { key: 'old_size', label: 'Old size', numeric: true, render: (x) => fmtBytes(x.old_size) },
    { key: 'new_size', label: 'New size', numeric: true, render: (x) => fmtBytes(x.new_size) },
  ], rows, { rowClass: (x) => `diff-${x.status}`, sort: { key: 'path' }, empty: 'The two versions hold the same files.', caption: 'Files added, removed and changed' })));
  const tbls = r.tables || [];
  put(el, section('Tables', tbls.length ? table([
    { key: 'path', label: 'Table', render: (t) => h('code', null, t.path) },
    { key: 'status', label: 'Change', render: (t) => h('span', { class: t.status === 'added' ? 'diff-added' : null }, t.status) },
    { key: 'old_rows', label: 'Old rows', numeric: true },
    { key: 'new_rows', label: 'New rows', numeric: true },
    { key: 'delta', label: 'Δ rows', numeric: true, value: (t) => (t.new_rows ?? 0) - (t.old_rows ?? 0), render: (t) => { const d = (t.new_rows ?? 0) - (t.old_rows ?? 0); return h('span', { class: d > 0 ? 'diff-added' : d < 0 ? 'diff-removed' : null }, `${d > 0 ? '+' : ''}${fmtNum(d)}`); } },
    { key: 'schema', label: 'Schema changes', sortable: false, render: (t) => (t.error ? h('span', { class: 'muted' }, t.error) : schemaChanges(t.schema_changes || [])) },
  ], tbls, { caption: 'Row counts and schema changes of the changed and added tables' }) : h('p', { class: 'muted' }, 'No table file was added or changed.'),
  r.tables_truncated ? h('p', { class: 'muted' }, 'Only the first tables were read.') : null));
}

function schemaChanges(list) {
  if (!list.length) return h('span', { class: 'muted' }, 'none');
  return h('ul', { class: 'schema-changes' }, list.map((c) => {
    if (c.kind === 'added') return h('li', { class: 'diff-added', 'data-change': 'added' }, `+ column ${c.column}`);
    if (c.kind === 'removed') return h('li', { class: 'diff-removed', 'data-change': 'removed' }, `− column ${c.column}`);
    if (c.kind === 'categories_changed') return h('li', { 'data-change': c.kind }, `${c.column}: categories `, (c.added || []).length ? h('span', { class: 'diff-added' }, `+${c.added.join(', +')} `) : null, (c.removed || []).length ? h('span', { class: 'diff-removed' }, `−${c.removed.join(', −')}`) : null);
    return h('li', { 'data-change': c.kind }, `${c.column}: ${c.kind.replace('_', ' ')} ${c.from || ''} → ${c.to || ''}`);
  }));
}

// ---- PII -----------------------------------------------------------------

async function piiTab(el, v) {
  put(el, h('p', { class: 'muted' }, 'The server scans the string columns of the table files now; values are never shown.'));
  const r = await v1('GET', `${apiVer(v.dataset, v.version)}/pii`);
  const rows = [];
  for (const f of r.files || []) {
    for (const [col, kinds] of Object.entries(f.columns || {})) {
      for (const [kind, n] of Object.entries(kinds || {})) {
        rows.push({ path: f.path, column: col, kind, findings: n, cells: f.values_with_pii?.[col] ?? null, rows: f.rows });
      }
    }
  }
  put(el, h('p', null, rows.length ? badge('warning') : badge('ok'), ' ',
    rows.length ? `Personal data found in ${new Set(rows.map((x) => `${x.path}:${x.column}`)).size} column(s).` : `No personal data found (kinds checked: ${(r.kinds || []).join(', ')}).`));
  if (rows.length) {
    put(el, table([
      { key: 'path', label: 'File', render: (x) => h('code', null, x.path) },
      { key: 'column', label: 'Column' },
      { key: 'kind', label: 'Kind' },
      { key: 'findings', label: 'Findings', numeric: true },
      { key: 'cells', label: 'Cells with PII', numeric: true, render: (x) => `${fmtNum(x.cells)} of ${fmtNum(x.rows)}` },
    ], rows, { sort: { key: 'findings', dir: 'desc' }, caption: 'PII findings by column and kind' }));
  }
}

// ---- lineage -------------------------------------------------------------

async function lineageTab(el, v, lin) {
  const ref = `${v.dataset}@${v.version}`;
  put(el, h('p', null, link(`/ui/lineage?kind=dataset_version&id=${enc(ref)}`, 'Open the lineage graph of ', ref)));
  const runs = lin.runs || [];
  const info = await mapLimit(runs, 4, (r) => mlflow('GET', 'runs/get', { query: { run_id: r.run_id } }).then((x) => x.run).catch(() => null));
  put(el, section('Runs that used this version', table([
    { key: 'run', label: 'Run', value: (r) => r.name, render: (r) => (r.exp ? link(`/ui/experiments/${enc(r.exp)}/runs/${enc(r.run_id)}`, r.name) : h('code', null, r.run_id)) },
    { key: 'context', label: 'Context', render: (r) => r.context || '' },
    { key: 'status', label: 'Status', render: (r) => (r.status ? badge(r.status) : '') },
    { key: 'mlflow_name', label: 'MLflow input', render: (r) => r.mlflow_name || '' },
    { key: 'creation_time', label: 'Linked', render: (r) => fmtTime(r.creation_time), value: (r) => Number(r.creation_time) },
  ], runs.map((r, i) => ({ ...r, name: info[i]?.info?.run_name || r.run_id, exp: info[i]?.info?.experiment_id, status: info[i]?.info?.status })),
  { empty: 'No run has logged this version as an input.' })));
  put(el, section('Model versions trained on it', table([
    { key: 'model', label: 'Model version', value: (m) => `${m.model_name}/${m.model_version}`, render: (m) => link(`/ui/models/${enc(m.model_name)}/versions/${m.model_version}`, `${m.model_name} v${m.model_version}`) },
    { key: 'via', label: 'Via', render: (m) => (m.run_id ? `${m.via} ${m.run_id.slice(0, 8)}` : m.via) },
  ], lin.model_versions || [], { empty: 'No registered model version uses this version.' })));
  const kids = lin.children || [];
  if (v.parent || kids.length) {
    put(el, section('Splits', kv([
      ['Split of', v.parent ? link(verURL(v.parent.dataset, v.parent.version), `${v.parent.dataset}@${v.parent.version}`) : null],
      ['Parts cut from it', kids.length ? h('span', null, kids.map((k, i) => [i ? ', ' : null, link(verURL(k.dataset, k.version), `${k.dataset}@${k.version}`)])) : null],
    ])));
  }
}

