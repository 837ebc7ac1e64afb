// The model registry: the registered models (name filter, sorting and
// paging through MLflow's registered-models/search), a model's page
// (description, tags, aliases with the actions to set and delete them,
// its versions, the gate and approval policies that protect it and the
// approval requests for it) and a model version's page with tabs: the
// overview, its promotion-gate results, its feature importance, its model
// card and the dataset versions it used.
import { h, link, clear, table, kv, pager, tabs, badge, fmtNum, fmtTime, errorBox, section, pre, toast, confirmDialog } from '../lib/dom.js';
import { mlflow, v1, request, workspace } from '../lib/api.js';
import { barChart } from '../lib/chart.js';

const PAGE = 50; // registered models per page (page_size= overrides)
const VERSIONS_PAGE = 100; // versions per page on a model's page
const IMPORTANCE_TAG = 'kiln.explain.importance';

const enc = encodeURIComponent;
export const modelURL = (name) => `/ui/models/${enc(name)}`;
export const versionURL = (name, v) => `/ui/models/${enc(name)}/versions/${enc(v)}`;
const runURL = (expId, runId) => `/ui/experiments/${enc(expId)}/runs/${enc(runId)}`;
const apiModel = (name, v) => `/models/${enc(name)}/versions/${enc(v)}`;

export async function render(ctx) {
  const [, name, sub, v] = ctx.segments;
  if (!name) return modelList(ctx);
  if (sub === 'versions' && v) return versionPage(ctx, name, v);
  return modelPage(ctx, name);
}

function tagMap(tags) {
  return Object.fromEntries((tags || []).map((t) => [t.key, t.value]));
}

// rerender draws the page again from the server (after an action).
function rerender(ctx) { ctx.setQuery({}, { replace: true }); }

// ---- the registered models -------------------------------------------------

// Sort keys of the list: the server orders by name and by the last
// update; latest version and aliases are sorted within the page.
const SERVER_SORT = { name: 'name', updated: 'last_updated_timestamp' };

// prevTokens remembers, per query, the page tokens of the pages before
// the current one, so Previous works although the server pages forwards.
const prevTokens = new Map();

function latestVersion(m) {
  return Math.max(0, ...(m.latest_versions || []).map((v) => Number(v.version)));
}

function aliasNames(m) {
  return (m.aliases || []).map((a) => a.alias).sort().join(' ');
}

async function modelList(ctx) {
  ctx.title('Models');
  const q = ctx.query;
  const name = q.get('name') || '';
  const sort = q.get('sort') || 'name';
  const dir = q.get('dir') || (sort === 'updated' ? 'desc' : 'asc');
  const token = q.get('page_token') || '';
  const size = Math.min(1000, Math.max(1, Number(q.get('page_size')) || PAGE));
  const query = { max_results: size };
  if (name) query.filter = `name ILIKE '%${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}%'`;
  query.order_by = `${SERVER_SORT[sort] || 'name'} ${dir === 'desc' ? 'DESC' : 'ASC'}`;
  if (token) query.page_token = token;

  const search = h('input', { type: 'search', id: 'model-search', value: name, placeholder: 'Model name contains…', 'aria-label': 'Search models by name' });
  const form = h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ name: search.value.trim(), page_token: null }); } },
    search, h('button', { type: 'submit' }, 'Search'),
    name ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ name: null, page_token: null }) }, 'Clear') : null);
  ctx.el.append(h('h1', null, 'Models'), form);
  let res;
  try {
    res = await mlflow('GET', 'registered-models/search', { query });
  } catch (e) {
    ctx.el.append(errorBox(e));
    return;
  }
  if (ctx.stale()) return;
  let models = res.registered_models || [];
  if (!SERVER_SORT[sort]) {
    const sgn = dir === 'desc' ? -1 : 1;
    const val = sort === 'latest' ? latestVersion : aliasNames;
    models = models.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      if (x === y) return a.name.localeCompare(b.name);
      if (x === '' || x === 0) return 1; // models without any last
      if (y === '' || y === 0) return -1;
      return (typeof x === 'number' ? x - y : String(x).localeCompare(String(y))) * sgn;
    });
  }
  const key = `${name}|${sort}|${dir}|${size}`;
  const known = !token || prevTokens.has(key); // a bookmarked later page has no history
  const stack = token ? (prevTokens.get(key) || []) : [];
  const first = stack.length * size;
  ctx.el.append(
    table([
      { key: 'name', label: 'Name', render: (m) => link(modelURL(m.name), m.name) },
      { key: 'latest', label: 'Latest version', numeric: true, render: (m) => { const v = latestVersion(m); return v ? link(versionURL(m.name, v), `v${v}`) : h('span', { class: 'muted' }, 'none'); } },
      { key: 'aliases', label: 'Aliases', render: (m) => aliasChips(m.name, m.aliases) },
      { key: 'description', label: 'Description', sortable: false, render: (m) => clip(m.description, 120) },
      { key: 'tags', label: 'Tags', sortable: false, render: (m) => tagList(m.tags) },
      { key: 'updated', label: 'Last updated', render: (m) => fmtTime(m.last_updated_timestamp) },
    ], models, {
      sort: { key: sort, dir },
      onSort: ({ key: k, dir: d }) => ctx.setQuery({ sort: k, dir: d, page_token: null }),
      empty: name ? 'No models match.' : 'No registered models yet.',
      caption: `Registered models, by ${({ name: 'name', latest: 'latest version', aliases: 'aliases', updated: 'last update' })[sort] || sort} ${dir === 'asc' ? 'ascending' : 'descending'}${SERVER_SORT[sort] ? '' : ' (within this page)'}`,
    }),
    pager({
      label: known ? `Models ${first + (models.length ? 1 : 0)}–${first + models.length}` : `${models.length} models`,
      hasPrev: !!token, hasNext: !!res.next_page_token,
      onPrev: () => { const s2 = stack.slice(); const prev = s2.pop(); prevTokens.set(key, s2); ctx.setQuery({ page_token: prev || null }); },
      onNext: () => { prevTokens.set(key, [...stack, token]); ctx.setQuery({ page_token: res.next_page_token }); },
    }));
}

function clip(s, n) {
  if (!s) return '';
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function aliasChips(name, aliases) {
  const list = (aliases || []).slice().sort((a, b) => a.alias.localeCompare(b.alias));
  if (!list.length) return '';
  return h('span', { class: 'aliases' }, list.map((a, i) => [i ? ' ' : null,
    link(versionURL(name, a.version), h('span', { class: 'badge neutral' }, `@${a.alias} → v${a.version}`))]));
}

// tagList shows a few key=value tags; Kiln's own (kiln.*) stay out.
function tagList(tags, max = 4) {
  const user = (tags || []).filter((t) => !t.key.startsWith('kiln.') && !t.key.startsWith('mlflow.'));
  if (!user.length) return '';
  return h('span', null, user.slice(0, max).map((t, i) => [i ? ', ' : null, h('code', null, `${t.key}=${clip(t.value, 40)}`)]),
    user.length > max ? h('span', { class: 'muted' }, ` +${user.length - max}`) : null);
}

// ---- one registered model --------------------------------------------------

// runInfo looks up runs (for their experiment and name); a run that is
// gone or not readable maps to null.
async function runInfo(ids) {
  const uniq = [...new Set(ids.filter(Boolean))];
  const out = new Map();
  await Promise.all(uniq.map(async (id) => {
    try { out.set(id, (await mlflow('GET', 'runs/get', { query: { run_id: id } })).run); } catch { out.set(id, null); }
  }));
  return out;
}

function runLink(runs, runId) {
  if (!runId) return '';
  const r = runs.get(runId);
  if (!r) return h('code', { title: 'run not found' }, runId.slice(0, 12));
  const name = r.info.run_name || runId.slice(0, 8);
  return link(runURL(r.info.experiment_id, runId), name);
}

function gateBadges(tags) {
  const t = tagMap(tags);
  const gates = Object.keys(t).filter((k) => k.startsWith('kiln.gate.') && !k.endsWith('.result_id')).sort();
  if (!gates.length) return '';
  return h('span', null, gates.map((k, i) => [i ? ' ' : null, h('span', { title: `gate ${k.slice(10)}` }, badge(t[k]))]));
}

async function modelPage(ctx, name) {
  const { registered_model: m } = await mlflow('GET', 'registered-models/get', { query: { name } });
  if (ctx.stale()) return;
  ctx.title(m.name);
  const aliases = (m.aliases || []).slice().sort((a, b) => a.alias.localeCompare(b.alias));
  ctx.el.append(
    h('div', { class: 'crumbs' }, link('/ui/models', 'Models'), ' / '),
    h('h1', null, m.name),
    m.description ? h('p', { class: 'description' }, m.description) : h('p', { class: 'muted' }, 'No description.'),
    kv([
      ['Latest version', latestVersion(m) ? link(versionURL(m.name, latestVersion(m)), `v${latestVersion(m)}`) : 'none'],
      ['Created', fmtTime(m.creation_timestamp)],
      ['Last updated', fmtTime(m.last_updated_timestamp)],
      ['MLflow URI', h('code', null, `models:/${m.name}`)],
    ]));

  // Versions (one page of them, newest first).
  const vtoken = ctx.query.get('versions_page') || '';
  const vs = await mlflow('GET', 'model-versions/search', { query: { filter: `name='${m.name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`, max_results: VERSIONS_PAGE, order_by: 'version_number DESC', page_token: vtoken || undefined } });
  if (ctx.stale()) return;
  const versions = vs.model_versions || [];
  const byVersion = new Map();
  for (const a of aliases) (byVersion.get(String(a.version)) || byVersion.set(String(a.version), []).get(String(a.version))).push(a);
  const runs = await runInfo(versions.map((v) => v.run_id));
  if (ctx.stale()) return;

  ctx.el.append(
    section('Tags', table([{ key: 'key', label: 'Key' }, { key: 'value', label: 'Value' }], m.tags || [], { sort: { key: 'key' }, empty: 'No tags.' })),
    section('Aliases',
      table([
        { key: 'alias', label: 'Alias', render: (a) => h('code', null, `@${a.alias}`) },
        { key: 'version', label: 'Version', render: (a) => link(versionURL(m.name, a.version), `v${a.version}`), value: (a) => Number(a.version) },
        { key: 'actions', label: h('span', { class: 'sr-only' }, 'Actions'), sortable: false, render: (a) => deleteAliasButton(ctx, m.name, a) },
      ], aliases, { empty: 'No aliases.' }),
      aliasForm(ctx, m.name, versions.map((v) => v.version))),
    section('Versions',
      table([
        { key: 'version', label: 'Version', render: (v) => link(versionURL(m.name, v.version), `v${v.version}`), value: (v) => Number(v.version), numeric: false },
        { key: 'current_stage', label: 'Stage', render: (v) => badge(v.current_stage || 'None') },
        { key: 'status', label: 'Status', render: (v) => badge(v.status) },
        { key: 'run', label: 'Source run', render: (v) => runLink(runs, v.run_id), value: (v) => runs.get(v.run_id)?.info.run_name || v.run_id },
        { key: 'creation_timestamp', label: 'Created', render: (v) => fmtTime(v.creation_timestamp), value: (v) => Number(v.creation_timestamp) },
        { key: 'aliases', label: 'Aliases', sortable: false, render: (v) => (byVersion.get(String(v.version)) || []).map((a, i) => [i ? ' ' : null, h('span', { class: 'badge neutral' }, `@${a.alias}`)]) },
        { key: 'gates', label: 'Gates', sortable: false, render: (v) => gateBadges(v.tags) },
        { key: 'tags', label: 'Tags', sortable: false, render: (v) => tagList(v.tags) },
      ], versions, { empty: 'No versions yet: register one with mlflow.register_model or log_model(registered_model_name=…).', caption: `Versions of ${m.name}, newest first` }),
      vtoken || vs.next_page_token ? pager({
        label: `${versions.length} versions`, hasPrev: !!vtoken, hasNext: !!vs.next_page_token,
        onPrev: () => ctx.setQuery({ versions_page: null }), onNext: () => ctx.setQuery({ versions_page: vs.next_page_token }),
      }) : null));

  // What protects the model: gate and approval policies, and the
  // approval requests for its versions. A server without them says so.
  const [gates, approvalPolicies, requests] = await Promise.all([
    v1('GET', '/gate-policies', { query: { model: m.name } }).then((r) => r.policies || [], (e) => e),
    v1('GET', '/approval-policies', { query: { model: m.name } }).then((r) => r.policies || [], (e) => e),
    v1('GET', '/approval-requests', { query: { model: m.name } }).then((r) => (r.requests || []).filter((x) => x.model === m.name), (e) => e),
  ]);
  if (ctx.stale()) return;
  const orError = (v, draw) => (v instanceof Error ? (v.status === 501 ? h('p', { class: 'muted' }, v.message) : errorBox(v)) : draw(v));
  ctx.el.append(
    section('Gate policies', orError(gates, (ps) => table([
      { key: 'name', label: 'Policy', value: (p) => p.policy.metadata.name, render: (p) => h('code', null, p.policy.metadata.name) },
      { key: 'description', label: 'Description', sortable: false, render: (p) => p.policy.metadata.description || '' },
      { key: 'metrics', label: 'Metrics', sortable: false, render: (p) => (p.policy.spec.metrics || []).map((x) => x.name).join(', ') },
      { key: 'data', label: 'Data', render: (p) => h('code', null, p.policy.spec.data), value: (p) => p.policy.spec.data },
      { key: 'protects', label: 'Protects', sortable: false, render: (p) => protects(p.policy.spec.protect_aliases, p.policy.spec.protect_endpoints) },
      { key: 'generation', label: 'Generation', numeric: true },
    ], ps, { empty: 'No gate policy evaluates this model.' }))),
    section('Approvals',
      h('h3', null, 'Policies'),
      orError(approvalPolicies, (ps) => table([
        { key: 'name', label: 'Policy', render: (p) => h('code', null, p.name) },
        { key: 'protects', label: 'Protects', sortable: false, render: (p) => protects(p.aliases, p.endpoints) },
        { key: 'required', label: 'Approvals needed', numeric: true },
        { key: 'updated_by', label: 'Updated by' },
        { key: 'last_update_time', label: 'Updated', render: (p) => fmtTime(p.last_update_time), value: (p) => Number(p.last_update_time) },
      ], ps, { empty: 'No approval policy protects this model.' })),
      h('h3', null, 'Requests'),
      orError(requests, (rs) => approvalRequests(m.name, rs))));
}

function protects(aliases, endpoints) {
  const out = [];
  for (const a of aliases || []) out.push(h('code', null, `@${a}`));
  for (const e of endpoints || []) out.push(link(`/ui/endpoints/${enc(e)}`, `endpoint ${e}`));
  return out.length ? out.map((x, i) => [i ? ', ' : null, x]) : '';
}

function approvalRequests(name, rs) {
  return table([
    { key: 'request_id', label: 'Request', render: (r) => h('code', null, r.request_id) },
    { key: 'version', label: 'Version', render: (r) => link(versionURL(name, r.version), `v${r.version}`), value: (r) => Number(r.version) },
    { key: 'target', label: 'Target', render: (r) => (r.target_type === 'alias' ? h('code', null, `@${r.target}`) : `endpoint ${r.target}`) },
    { key: 'state', label: 'State', render: (r) => badge(r.state) },
    { key: 'approvals', label: 'Approvals', render: (r) => `${r.approvals} of ${r.required}`, value: (r) => r.approvals },
    { key: 'requested_by', label: 'Requested by' },
    { key: 'reason', label: 'Reason', sortable: false },
    { key: 'creation_time', label: 'Requested', render: (r) => fmtTime(r.creation_time), value: (r) => Number(r.creation_time) },
  ], rs, { empty: 'No approval requests for this model.', sort: { key: 'creation_time', dir: 'desc' } });
}

// ---- alias actions ---------------------------------------------------------

let formSeq = 0;

// aliasForm sets an alias: to a version picked from versions, or to
// fixedVersion. A refusal (a gate or an approval policy) shows the
// server's message.
function aliasForm(ctx, name, versions, fixedVersion) {
  const id = `alias-${++formSeq}`;
  const out = h('div', { class: 'alias-result' });
  const aliasIn = h('input', { id: `${id}-name`, name: 'alias', required: true, autocomplete: 'off', placeholder: 'champion', spellcheck: 'false' });
  const verSel = fixedVersion ? null : h('select', { id: `${id}-version`, name: 'version' },
    versions.map((v) => h('option', { value: v }, `v${v}`)));
  const form = h('form', {
    class: 'toolbar alias-form', 'aria-label': 'Set an alias',
    onsubmit: async (e) => {
      e.preventDefault();
      clear(out);
      const alias = aliasIn.value.trim();
      const version = fixedVersion || verSel.value;
      if (!alias || !version) return;
      const ok = await confirmDialog('Set alias', `Point the alias @${alias} of ${name} to version ${version}? Anything that loads models:/${name}@${alias} then gets version ${version}.`, 'Set alias');
      if (!ok) return;
      try {
        await mlflow('POST', 'registered-models/alias', { body: { name, alias, version: String(version) } });
        toast(`@${alias} now points to version ${version}.`);
        rerender(ctx);
      } catch (ex) {
        out.append(errorBox(ex));
      }
    },
  },
  h('label', { for: `${id}-name` }, 'Alias'), aliasIn,
  verSel ? [h('label', { for: `${id}-version` }, 'Version'), verSel] : null,
  h('button', { type: 'submit', disabled: !fixedVersion && !versions.length }, fixedVersion ? `Set alias to v${fixedVersion}` : 'Set alias'));
  return h('div', null, form, out);
}

function deleteAliasButton(ctx, name, a, into) {
  return h('button', {
    type: 'button', class: 'secondary', 'aria-label': `Delete alias ${a.alias}`,
    onclick: async (e) => {
      const slot = into || e.currentTarget.closest('td');
      const ok = await confirmDialog('Delete alias', `Delete the alias @${a.alias} of ${name} (now version ${a.version})? Whatever loads models:/${name}@${a.alias} stops working.`, 'Delete alias');
      if (!ok) return;
      try {
        await mlflow('DELETE', 'registered-models/alias', { query: { name, alias: a.alias } });
        toast(`Deleted @${a.alias}.`);
        rerender(ctx);
      } catch (ex) {
        slot.append(errorBox(ex));
      }
    },
  }, 'Delete');
}

// ---- one model version -----------------------------------------------------

async function versionPage(ctx, name, v) {
  const { model_version: mv } = await mlflow('GET', 'model-versions/get', { query: { name, version: v } });
  if (ctx.stale()) return;
  const runs = await runInfo([mv.run_id]);
  if (ctx.stale()) return;
  ctx.title(`${mv.name} v${mv.version}`);
  ctx.el.append(
    h('div', { class: 'crumbs' }, link('/ui/models', 'Models'), ' / ', link(modelURL(mv.name), mv.name), ' / '),
    h('h1', null, `${mv.name} v${mv.version} `, badge(mv.status), ' ', (mv.aliases || []).map((a) => [h('span', { class: 'badge neutral' }, `@${a}`), ' '])));
  const tab = ctx.query.get('tab') || 'overview';
  ctx.el.append(tabs([
    { id: 'overview', label: 'Overview', render: (el) => versionOverview(el, ctx, mv, runs) },
    { id: 'gates', label: 'Gate results', render: (el) => gateResults(el, ctx, mv) },
    { id: 'explanations', label: 'Explanations', render: (el) => explanations(el, mv) },
    { id: 'card', label: 'Model card', render: (el) => modelCard(el, ctx, mv) },
    { id: 'datasets', label: 'Datasets', render: (el) => datasetsTab(el, mv, runs) },
  ], tab, (id) => ctx.setQuery({ tab: id }, { replace: true })));
}

function versionOverview(el, ctx, mv, runs) {
  const run = runs.get(mv.run_id);
  const lineage = `/ui/lineage?kind=model_version&id=${enc(`${mv.name}/${mv.version}`)}`;
  el.append(
    h('h2', null, 'Overview'),
    kv([
      ['Model', link(modelURL(mv.name), mv.name)],
      ['Version', String(mv.version)],
      ['Description', mv.description],
      ['Stage', badge(mv.current_stage || 'None')],
      ['Status', badge(mv.status)],
      ['Status message', mv.status_message],
      ['Aliases', (mv.aliases || []).length ? (mv.aliases || []).map((a, i) => [i ? ' ' : null, h('code', null, `@${a}`)]) : h('span', { class: 'muted' }, 'none')],
      ['Model URI', h('code', null, `models:/${mv.name}/${mv.version}`)],
      ['Source run', mv.run_id ? runLink(runs, mv.run_id) : null],
      ['Experiment', run ? link(`/ui/experiments/${enc(run.info.experiment_id)}`, `experiment ${run.info.experiment_id}`) : null],
      ['Logged model', mv.model_id ? h('code', null, mv.model_id) : null],
      ['Source', mv.source ? h('code', null, mv.source) : null],
      ['Registered by', mv.user_id],
      ['Created', fmtTime(mv.creation_timestamp)],
      ['Last updated', fmtTime(mv.last_updated_timestamp)],
      ['Lineage', link(lineage, 'Show the lineage graph')],
    ]),
    h('h2', null, 'Aliases'),
    h('p', { class: 'muted' }, 'Point an alias at this version, or delete one that points here. A gate or approval policy may refuse the change.'),
    aliasForm(ctx, mv.name, [], mv.version),
    (mv.aliases || []).length ? h('ul', { class: 'alias-list' }, (mv.aliases || []).map((a) => {
      const li = h('li', null, h('code', null, `@${a}`), ' ');
      li.append(deleteAliasButton(ctx, mv.name, { alias: a, version: mv.version }, li));
      return li;
    })) : '',
    h('h2', null, 'Tags'),
    table([{ key: 'key', label: 'Key' }, { key: 'value', label: 'Value', render: (t) => (t.value.length > 200 ? h('code', { title: t.value }, clip(t.value, 200)) : t.value) }],
      mv.tags || [], { sort: { key: 'key' }, empty: 'No tags.' }));
}

// ---- gate results ----------------------------------------------------------

const fmtVal = (x) => (x === null || x === undefined ? '' : fmtNum(x));

function checkName(c) {
  const what = c.slice ? `${c.slice}: ${c.metric}` : c.metric;
  return `${what} ${c.kind}${c.relative ? ' (relative)' : ''}`;
}

function checkState(c) {
  if (c.skipped) return 'skipped';
  return c.passed ? 'passed' : 'failed';
}

async function gateResults(el, ctx, mv) {
  const policy = ctx.query.get('policy') || '';
  const res = await v1('GET', `${apiModel(mv.name, mv.version)}/gate-results`, { query: { policy: policy || undefined } });
  const results = res.results || [];
  el.append(h('h2', null, 'Promotion gate results'));
  const policies = [...new Set([...results.map((r) => r.policy), ...(policy ? [policy] : [])])].sort();
  if (policies.length > 1 || policy) {
    const sel = h('select', { id: 'gate-policy' }, h('option', { value: '' }, 'All policies'),
      policies.map((p) => h('option', { value: p, selected: p === policy }, p)));
    sel.onchange = () => ctx.setQuery({ policy: sel.value || null }, { replace: true });
    el.append(h('div', { class: 'toolbar' }, h('label', { for: 'gate-policy' }, 'Policy'), sel));
  }
  if (!results.length) {
    el.append(h('p', { class: 'muted' }, 'No gate results for this version. Evaluate one with ', h('code', null, `kiln gate check --policy NAME --version ${mv.version}`), '.'));
    return;
  }
  // The newest result of each policy in full; older ones folded.
  const seen = new Set();
  for (const r of results) {
    const latest = !seen.has(r.policy);
    seen.add(r.policy);
    const block = gateResult(r, latest);
    el.append(latest ? block : h('details', { class: 'gate-older' }, h('summary', null, `Earlier result of ${r.policy}: ${r.passed ? 'passed' : 'failed'}, ${fmtTime(r.time)}`), block));
  }
}

function gateResult(r, latest) {
  const failed = r.checks.filter((c) => !c.passed && !c.skipped).length;
  const wrap = h('section', { class: 'block gate-result', 'data-policy': r.policy, 'data-result': r.id, 'data-latest': latest ? 'true' : 'false' },
    h('h3', null, `Policy ${r.policy} `, badge(r.passed ? 'passed' : 'failed'), r.rubber_stamp ? [' ', h('span', { class: 'badge neutral', title: 'nothing to compare with: change thresholds skipped' }, 'rubber stamp')] : null),
    kv([
      ['Result', h('code', null, r.id)],
      ['Evaluated', fmtTime(r.time)],
      ['By', r.actor],
      ['Checks', `${r.checks.length - failed} of ${r.checks.length} passed`],
      ['Baseline', r.baseline ? [link(versionURL(r.baseline.name || r.candidate.name, r.baseline.version), `v${r.baseline.version}`), r.baseline_alias ? ` (@${r.baseline_alias})` : ''] : (r.rubber_stamp ? 'none (rubber stamp)' : '')],
      ['Data', r.data ? [h('code', null, r.data.ref), ` · ${fmtNum(r.data.rows)} rows · digest `, h('code', { title: r.data.digest }, (r.data.digest || '').slice(0, 12))] : null],
      ['Task', r.task],
      ['Positive class', r.positive_class],
      ['Policy generation', r.policy_generation ? String(r.policy_generation) : null],
    ]),
    h('h4', null, 'Checks'),
    table([
      { key: 'state', label: 'Result', render: (c) => badge(checkState(c)), value: checkState },
      { key: 'check', label: 'Check', render: checkName, value: checkName },
      { key: 'value', label: 'Value', numeric: true, render: (c) => fmtVal(c.value) },
      { key: 'threshold', label: 'Threshold', numeric: true, render: (c) => fmtVal(c.threshold) },
      { key: 'candidate', label: 'Candidate', numeric: true, render: (c) => fmtVal(c.candidate) },
      { key: 'baseline', label: 'Baseline', numeric: true, render: (c) => fmtVal(c.baseline) },
      { key: 'message', label: 'Message', sortable: false },
    ], r.checks, { rowClass: (c) => (!c.passed && !c.skipped ? 'diff-removed' : null), caption: `Checks of ${r.policy}` }),
    h('h4', null, 'Metrics'),
    table([
      { key: 'name', label: 'Metric' },
      { key: 'direction', label: 'Better' },
      { key: 'candidate', label: 'Candidate', numeric: true, render: (m) => fmtVal(m.candidate) },
      { key: 'baseline', label: 'Baseline', numeric: true, render: (m) => fmtVal(m.baseline) },
      { key: 'delta', label: 'Δ', numeric: true, render: (m) => fmtVal(m.delta) },
      { key: 'relative_delta', label: 'Δ relative', numeric: true, render: (m) => (m.relative_delta === undefined || m.relative_delta === null ? '' : `${fmtNum(m.relative_delta * 100)}%`) },
      { key: 'error', label: 'Error', sortable: false, render: (m) => [m.error, m.baseline_error].filter(Boolean).join('; ') },
    ], r.metrics || []));
  for (const sl of r.slices || []) {
    const names = [...new Set(sl.slices.flatMap((x) => Object.keys(x.values || {})))].sort();
    wrap.append(h('h4', null, `Slices by ${sl.column}`), table([
      { key: 'key', label: sl.column },
      { key: 'rows', label: 'Rows', numeric: true },
      ...names.map((n) => ({ key: n, label: n, numeric: true, value: (x) => x.values?.[n], render: (x) => fmtVal(x.values?.[n]) })),
      { key: 'excluded', label: 'Compared', render: (x) => (x.excluded ? 'no (too small)' : 'yes') },
    ], sl.slices));
  }
  if (r.confusion_matrix?.labels?.length) {
    const cm = r.confusion_matrix;
    wrap.append(h('h4', null, 'Confusion matrix'), h('div', { class: 'table-wrap' }, h('table', { class: 'data confusion' },
      h('caption', null, 'Rows: true label; columns: predicted label'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'true \\ predicted'), cm.labels.map((l) => h('th', { scope: 'col', class: 'num' }, l)))),
      h('tbody', null, cm.counts.map((row, i) => h('tr', null, h('th', { scope: 'row' }, cm.labels[i]), row.map((n) => h('td', { class: 'num' }, fmtNum(n)))))))));
  }
  return wrap;
}

// ---- explanations ----------------------------------------------------------

// parseImportance reads the kiln.explain.importance tag (explain's
// compact form: {"method", "rows", "features": [[name, value], …]}).
export function parseImportance(s) {
  const t = JSON.parse(s);
  if (!t || !Array.isArray(t.features)) throw new Error('the importance tag has no features');
  return {
    method: t.method || '', rows: t.rows || 0,
    features: t.features.filter((p) => Array.isArray(p) && p.length === 2).map(([name, value]) => ({ name: String(name), value: Number(value) })),
  };
}

function explanations(el, mv) {
  el.append(h('h2', null, 'Feature importance'));
  const raw = tagMap(mv.tags)[IMPORTANCE_TAG];
  if (!raw) {
    el.append(h('p', { class: 'muted' }, 'No feature importance is stored on this version. Compute and store it with ',
      h('code', null, `kiln explain --model models:/${mv.name}/${mv.version} --input rows.csv --importance --store models:/${mv.name}/${mv.version}`), '.'));
    return;
  }
  let imp;
  try { imp = parseImportance(raw); } catch (e) { el.append(errorBox(new Error(`The ${IMPORTANCE_TAG} tag does not parse: ${e.message}`))); return; }
  const feats = imp.features.slice().sort((a, b) => b.value - a.value);
  el.append(
    h('p', null, `Mean |SHAP value| over ${fmtNum(imp.rows)} rows (method ${imp.method}), per input feature: how far each feature moves the model's output on average. Stored in the version's tag `, h('code', null, IMPORTANCE_TAG), '.'),
    h('div', { class: 'importance-chart' }, barChart(feats.map((f) => ({ label: f.name, value: f.value })), {
      width: 960,
      title: `Global feature importance of ${mv.name} v${mv.version}`,
      xLabel: `mean |SHAP value| (model output units, ${imp.method})`,
    })),
    table([
      { key: 'rank', label: 'Rank', numeric: true },
      { key: 'name', label: 'Feature' },
      { key: 'value', label: 'Mean |SHAP|', numeric: true },
    ], feats.map((f, i) => ({ rank: i + 1, ...f })), { caption: 'Feature importance, most important first' }));
}

// ---- model card ------------------------------------------------------------

function cardURL(mv, format) {
  return `/api/v1${apiModel(mv.name, mv.version)}/card?format=${format}`;
}

async function modelCard(el, ctx, mv) {
  const format = ctx.query.get('card') === 'markdown' ? 'markdown' : 'sections';
  const sel = h('select', { id: 'card-format' }, [['sections', 'Sections'], ['markdown', 'Markdown']].map(([v, l]) => h('option', { value: v, selected: v === format }, l)));
  sel.onchange = () => ctx.setQuery({ card: sel.value === 'sections' ? null : sel.value }, { replace: true });
  el.append(h('h2', null, 'Model card'), h('div', { class: 'toolbar' }, h('label', { for: 'card-format' }, 'Show as'), sel,
    workspace() ? null : [h('a', { href: cardURL(mv, 'markdown'), download: `${mv.name}-${mv.version}.md` }, 'Download Markdown'), ' ',
      h('a', { href: cardURL(mv, 'html'), download: `${mv.name}-${mv.version}.html` }, 'Download HTML')]));
  if (format === 'markdown') {
    const res = await request('GET', cardURL(mv, 'markdown'), { raw: true });
    el.append(pre(await res.text()));
    return;
  }
  const card = await v1('GET', apiModel(mv.name, mv.version) + '/card', { query: { format: 'json' } });
  el.append(renderCard(card));
}

const notWritten = () => h('span', { class: 'muted' }, 'Not written yet.');

function bullets(list, empty) {
  if (!list || !list.length) return empty ? h('p', { class: 'muted' }, empty) : null;
  return h('ul', null, list.map((x) => h('li', null, x)));
}

export function renderCard(card) {
  const d = card.model_details || {};
  const p = card.model_parameters || {};
  const q = card.quantitative_analysis || {};
  const c = card.considerations || {};
  const out = h('div', { class: 'model-card' });
  const tags = Object.entries(d.tags || {}).filter(([k]) => k !== IMPORTANCE_TAG);
  out.append(
    h('section', { class: 'block card-details' }, h('h3', null, 'Model details'),
      h('h4', null, 'Overview'), d.overview ? h('p', null, d.overview) : h('p', null, notWritten()),
      kv([
        ['Name', d.name],
        ['Version', d.version !== undefined ? String(d.version) : null],
        ['Description', d.description],
        ['Owners', (d.owners || []).map((o, i) => [i ? ', ' : null, o.name, o.role ? h('span', { class: 'muted' }, ` (${o.role})`) : null])],
        ['Registered', fmtTime(d.version_date)],
        ['Licenses', (d.licenses || []).length ? (d.licenses || []).map((l, i) => [i ? ', ' : null, l.identifier || l.custom_text]) : notWritten()],
        ['Stage', d.stage],
        ['Status', d.status],
        ['Aliases', (d.aliases || []).map((a) => `@${a}`).join(', ')],
        ['Endpoints', (d.endpoints || []).length ? d.endpoints.map((e, i) => [i ? ', ' : null, link(`/ui/endpoints/${enc(e)}`, e)]) : null],
        ['Text edited', d.text_updated_by ? `${d.text_updated_by}, ${fmtTime(d.text_updated_at)}` : null],
      ]),
      (d.references || []).length ? [h('h4', null, 'References'), h('ul', null, d.references.map((r) => h('li', null, h('code', null, r.reference), r.kind ? h('span', { class: 'muted' }, ` (${r.kind.replace(/_/g, ' ')})`) : null)))] : null,
      tags.length ? [h('h4', null, 'Tags'), table([{ key: 0, label: 'Key' }, { key: 1, label: 'Value' }], tags, { sort: { key: 0 } })] : null),
    h('section', { class: 'block card-parameters' }, h('h3', null, 'Model parameters'),
      kv([
        ['Architecture', p.model_architecture],
        ['Flavors', (p.flavors || []).join(', ')],
      ]),
      h('h4', null, 'Input format'), formatTable(p.input_format),
      h('h4', null, 'Output format'), formatTable(p.output_format),
      h('h4', null, 'Parameters'), table([{ key: 'name', label: 'Parameter' }, { key: 'value', label: 'Value' }], p.params || [], { sort: { key: 'name' }, empty: 'No parameters are recorded.' }),
      h('h4', null, 'Training data'), table([
        { key: 'name', label: 'Dataset' },
        { key: 'via', label: 'Linked via' },
        { key: 'context', label: 'Context' },
        { key: 'run_id', label: 'Run', render: (x) => (x.run_id ? h('code', null, x.run_id.slice(0, 12)) : '') },
        { key: 'digest', label: 'Digest', render: (x) => (x.digest ? h('code', null, x.digest) : '') },
      ], p.data || [], { empty: 'No training data is recorded.' })),
    h('section', { class: 'block card-quantitative' }, h('h3', null, 'Quantitative analysis'),
      table([
        { key: 'type', label: 'Metric' },
        { key: 'value', label: 'Value', numeric: true },
        { key: 'slice', label: 'Slice', render: (m) => m.slice || h('span', { class: 'muted' }, 'all data'), value: (m) => m.slice || '' },
        { key: 'source', label: 'Source', render: (m) => h('code', null, m.source || '') },
        { key: 'dataset', label: 'Dataset' },
        { key: 'window', label: 'Window' },
        { key: 'note', label: 'Note', sortable: false },
      ], q.performance_metrics || [], { empty: 'No performance metrics are recorded.', caption: 'Performance metrics' })),
    h('section', { class: 'block card-considerations' }, h('h3', null, 'Considerations'),
      [['users', 'Intended users'], ['use_cases', 'Use cases'], ['limitations', 'Limitations'], ['tradeoffs', 'Trade-offs'], ['ethical_considerations', 'Ethical considerations']]
        .map(([k, label]) => [h('h4', null, label), bullets(c[k], 'Not written yet.')])),
    (card.notes || []).length ? h('section', { class: 'block card-notes' }, h('h3', null, 'Notes'), bullets(card.notes)) : '',
    h('p', { class: 'muted' }, `Schema ${card.schema_version || ''}; generated ${fmtTime(card.generated_at)}.`));
  return out;
}

function formatTable(list) {
  if (!list || !list.length) return h('p', { class: 'muted' }, 'No signature is recorded.');
  const columns = list.some((x) => x.name)
    ? [{ key: 'name', label: 'Name' }, { key: 'type', label: 'Type' }]
    : [{ key: 'type', label: 'Type' }];
  return table(columns, list);
}

// ---- datasets --------------------------------------------------------------

async function datasetsTab(el, mv, runs) {
  const res = await v1('GET', `${apiModel(mv.name, mv.version)}/datasets`);
  const uses = res.datasets || [];
  const more = await runInfo(uses.map((u) => u.run_id).filter((id) => id && !runs.has(id)));
  for (const [k, r] of more) runs.set(k, r);
  el.append(h('h2', null, 'Datasets used'),
    h('p', { class: 'muted' }, 'Kiln dataset versions this version was trained with: through its training run (an MLflow dataset input matched to a version) or linked by hand.'),
    table([
      { key: 'dataset', label: 'Dataset version', value: (u) => `${u.version.dataset}@${u.version.version}`, render: (u) => link(`/ui/data/${enc(u.version.dataset)}/versions/${enc(u.version.version)}`, `${u.version.dataset}@${u.version.version}`) },
      { key: 'via', label: 'Linked via', render: (u) => (u.via === 'run' ? 'training run' : u.via === 'link' ? 'link by hand' : u.via) },
      { key: 'run_id', label: 'Run', render: (u) => (u.run_id ? runLink(runs, u.run_id) : '') },
    ], uses, { empty: 'No dataset versions are linked to this version.' }));
}
