// The feature store: entities and feature views (with each view's last
// materialization), and a view's page: its spec (entities and join keys,
// source, TTL, features and types), its versions, its materializations
// with a Materialize action, and an online lookup form that asks the
// online store for the latest values of the keys entered.
import { h, put, link, table, kv, badge, fmtNum, fmtTime, fmtDuration, errorBox, section, toast, confirmDialog } from '../lib/dom.js';
import { v1 } from '../lib/api.js';

const enc = encodeURIComponent;
const viewURL = (n, q = '') => `/ui/features/views/${enc(n)}${q}`;

export async function render(ctx) {
  const [, kind, name] = ctx.segments;
  if (kind === 'views' && name) return viewPage(ctx, name);
  return overview(ctx);
}

// ---- helpers -------------------------------------------------------------

// fmtTTL prints a Go duration ("2160h0m0s") as days, hours or minutes.
export function fmtTTL(d) {
  if (!d || d === '0s' || d === '0') return 'no limit';
  let sec = 0;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;
  let m;
  while ((m = re.exec(d))) sec += Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, ns: 1e-9 }[m[2]];
  if (!sec) return 'no limit';
  if (sec % 86400 === 0) return `${sec / 86400} d`;
  if (sec % 3600 === 0) return `${sec / 3600} h`;
  if (sec % 60 === 0) return `${sec / 60} min`;
  return `${fmtNum(sec)} s`;
}

// sourceLink links a dataset source ("name@3", "name@latest", "name") to
// its page in Data; a path source is shown as code.
function sourceLink(src) {
  if (!src) return '';
  const ds = typeof src === 'string' ? src : src.dataset;
  if (!ds) return h('code', null, src.path, src.format ? ` (${src.format})` : '');
  const at = ds.lastIndexOf('@');
  const name = at > 0 ? ds.slice(0, at) : ds;
  const ver = at > 0 ? ds.slice(at + 1).replace(/^v/, '') : '';
  return link(/^\d+$/.test(ver) ? `/ui/data/${enc(name)}/versions/${ver}` : `/ui/data/${enc(name)}`, `dataset ${ds}`);
}

const isOnline = (v) => v.spec.online !== false;

async function mapLimit(items, n, f) {
  const out = new Array(items.length);
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) { const j = i++; out[j] = await f(items[j], j); }
  }));
  return out;
}

function matBadge(m) {
  if (!m) return h('span', { class: 'muted' }, 'never');
  return h('span', null, badge(m.state), ' ', h('span', { class: 'muted' }, `${fmtTime(m.finished_at || m.started_at)} · ${fmtNum(m.keys_written)} keys`));
}

// ---- entities and views --------------------------------------------------

async function overview(ctx) {
  ctx.title('Feature store');
  const q = (ctx.query.get('q') || '').trim();
  const input = h('input', { type: 'search', id: 'feature-filter', value: q, placeholder: 'Name contains…', 'aria-label': 'Filter entities and feature views by name' });
  put(ctx.el, h('h1', null, 'Feature store'),
    h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => { e.preventDefault(); ctx.setQuery({ q: input.value.trim() }); } },
      h('label', { for: 'feature-filter' }, 'Name'), input, h('button', { type: 'submit' }, 'Filter'),
      q ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ q: null }) }, 'Clear') : null));
  const [er, vr] = await Promise.all([v1('GET', '/entities'), v1('GET', '/feature-views')]);
  if (ctx.stale()) return;
  const match = (n) => !q || n.toLowerCase().includes(q.toLowerCase());
  const allViews = vr.feature_views || [];
  const ents = (er.entities || []).filter((e) => match(e.metadata.name));
  const views = allViews.filter((v) => match(v.metadata.name));
  const usedBy = (ent) => allViews.filter((v) => (v.spec.entities || []).includes(ent));
  put(ctx.el, section('Entities', table([
    { key: 'name', label: 'Entity', value: (e) => e.metadata.name, render: (e) => h('strong', null, e.metadata.name) },
    { key: 'join_keys', label: 'Join keys', value: (e) => (e.spec.join_keys || []).join(', '), render: (e) => h('code', null, (e.spec.join_keys || []).join(', ')) },
    { key: 'description', label: 'Description', value: (e) => e.metadata.description || '' },
    { key: 'views', label: 'Used by', sortable: false, render: (e) => { const u = usedBy(e.metadata.name); return u.length ? h('span', null, u.map((v, i) => [i ? ', ' : null, link(viewURL(v.metadata.name), v.metadata.name)])) : h('span', { class: 'muted' }, 'no view'); } },
    { key: 'version', label: 'Version', numeric: true, value: (e) => e.status.version },
    { key: 'created_at', label: 'Applied', value: (e) => Number(e.status.created_at), render: (e) => `${fmtTime(e.status.created_at)}${e.status.created_by ? ` by ${e.status.created_by}` : ''}` },
  ], ents, { sort: { key: 'name' }, caption: 'Entities', empty: q ? 'No entity name contains that.' : 'No entities yet: apply an Entity document with kiln apply -f.' })));
  const mats = await mapLimit(views, 4, (v) => v1('GET', `/feature-views/${enc(v.metadata.name)}/materializations`, { query: { limit: 1 } })
    .then((r) => (r.materializations || [])[0] || null).catch(() => null));
  if (ctx.stale()) return;
  const rows = views.map((v, i) => ({ ...v, last: mats[i] }));
  put(ctx.el, section('Feature views', table([
    { key: 'name', label: 'Feature view', value: (v) => v.metadata.name, render: (v) => link(viewURL(v.metadata.name), v.metadata.name) },
    { key: 'description', label: 'Description', value: (v) => v.metadata.description || '' },
    { key: 'entities', label: 'Entities', value: (v) => (v.spec.entities || []).join(', ') },
    { key: 'features', label: 'Features', value: (v) => (v.spec.features || []).length, render: (v) => h('span', { title: (v.spec.features || []).map((f) => `${f.name}: ${f.type}`).join('\n') }, `${(v.spec.features || []).length}: ${(v.spec.features || []).map((f) => f.name).join(', ')}`) },
    { key: 'source', label: 'Source', value: (v) => v.spec.source?.dataset || v.spec.source?.path || '', render: (v) => sourceLink(v.spec.source) },
    { key: 'ttl', label: 'TTL', value: (v) => fmtTTL(v.spec.ttl) },
    { key: 'online', label: 'Online', value: (v) => String(isOnline(v)), render: (v) => badge(isOnline(v) ? 'online' : 'offline') },
    { key: 'version', label: 'Version', numeric: true, value: (v) => v.status.version },
    { key: 'last', label: 'Last materialized', value: (v) => (v.last ? Date.parse(v.last.started_at) : ''), render: (v) => (isOnline(v) ? matBadge(v.last) : h('span', { class: 'muted' }, 'offline only')) },
  ], rows, { sort: { key: 'name' }, caption: 'Feature views', empty: q ? 'No feature view name contains that.' : 'No feature views yet: apply a FeatureView document with kiln apply -f.' })));
}

// ---- one view ------------------------------------------------------------

async function viewPage(ctx, name) {
  const want = ctx.query.get('version') || '';
  const [latest, vr] = await Promise.all([
    v1('GET', `/feature-views/${enc(name)}`),
    v1('GET', `/feature-views/${enc(name)}/versions`),
  ]);
  const versions = vr.versions || [];
  const view = want && Number(want) !== latest.status.version ? await v1('GET', `/feature-views/${enc(name)}`, { query: { version: want } }) : latest;
  ctx.title(name);
  // Join keys of the view's entities, in order.
  const ents = await Promise.all((view.spec.entities || []).map((e) => v1('GET', `/entities/${enc(e)}`).catch(() => null)));
  const keys = ents.flatMap((e) => e?.spec?.join_keys || []);
  const old = view.status.version !== latest.status.version;
  put(ctx.el, 
    h('div', { class: 'crumbs' }, link('/ui/features', 'Feature store'), ' / '),
    h('h1', null, name, ' ', badge(isOnline(view) ? 'online' : 'offline')),
    old ? h('p', { class: 'error', role: 'status' }, `Showing version ${view.status.version}; the live version is ${latest.status.version}. `, link(viewURL(name), 'Show the live version')) : null,
    view.metadata.description ? h('p', { class: 'description' }, view.metadata.description) : null,
    kv([
      ['Entities', h('span', null, (view.spec.entities || []).map((e, i) => [i ? ', ' : null, h('strong', null, e), ' ', h('span', { class: 'muted' }, `(${(ents[i]?.spec?.join_keys || []).join(', ') || '?'})`)]))],
      ['Source', sourceLink(view.spec.source)],
      ['Event timestamp', h('code', null, view.spec.timestamp_field)],
      ['Created timestamp', view.spec.created_timestamp_field ? h('code', null, view.spec.created_timestamp_field) : null],
      ['TTL', fmtTTL(view.spec.ttl)],
      ['Online', isOnline(view) ? 'yes: materialized into the online store' : 'no: training sets only'],
      ['Version', `${view.status.version} of ${latest.status.version}`],
      ['Applied', `${fmtTime(view.status.created_at)}${view.status.created_by ? ` by ${view.status.created_by}` : ''}`],
      ['Digest', h('code', null, String(view.status.digest || '').slice(0, 16))],
    ]),
    section('Features', table([
      { key: 'name', label: 'Feature', render: (f) => h('code', null, f.name) },
      { key: 'type', label: 'Type' },
      { key: 'default', label: 'Default', value: (f) => (f.default === undefined || f.default === null ? '' : String(f.default)) },
      { key: 'description', label: 'Description', value: (f) => f.description || '' },
      { key: 'ref', label: 'Reference', sortable: false, render: (f) => h('code', null, `${name}:${f.name}`) },
    ], view.spec.features || [], { caption: `Features of ${name}` })),
    section('Versions', table([
      { key: 'version', label: 'Version', numeric: true, value: (v) => v.status.version, render: (v) => (v.status.deleted ? h('span', null, `${v.status.version} `, badge('deleted')) : link(viewURL(name, `?version=${v.status.version}`), `v${v.status.version}`)) },
      { key: 'created_at', label: 'Applied', value: (v) => Number(v.status.created_at), render: (v) => fmtTime(v.status.created_at) },
      { key: 'by', label: 'By', value: (v) => v.status.created_by || '' },
      { key: 'description', label: 'Description', value: (v) => v.metadata?.description || '' },
      { key: 'features', label: 'Features', value: (v) => (v.spec?.features || []).map((f) => `${f.name}:${f.type}`).join(', ') },
      { key: 'ttl', label: 'TTL', value: (v) => (v.status.deleted ? '' : fmtTTL(v.spec?.ttl)) },
      { key: 'digest', label: 'Digest', value: (v) => String(v.status.digest || '').slice(0, 12) },
    ], versions, { sort: { key: 'version', dir: 'desc' }, rowClass: (v) => (v.status.version === view.status.version ? 'diff-changed' : null), caption: `Versions of ${name}` })));
  const matSec = section('Materializations');
  put(ctx.el, matSec);
  if (isOnline(latest)) await materializations(matSec, ctx, name);
  else matSec.append(h('p', { class: 'muted' }, 'This view is offline (online: false): it is used for training sets only.'));
  if (ctx.stale()) return;
  if (isOnline(latest)) {
    const lf = lookupForm(ctx, name, keys, latest.spec.features || []);
    put(ctx.el, lf.sec);
    await lf.run();
  }
}

async function materializations(sec, ctx, name) {
  const start = h('input', { id: 'mat-start', placeholder: 'from the beginning', 'aria-label': 'Start (RFC 3339 time or date, optional)' });
  const end = h('input', { id: 'mat-end', placeholder: 'now', 'aria-label': 'End (RFC 3339 time or date, optional)' });
  const inc = h('input', { type: 'checkbox', id: 'mat-incremental', onchange: () => { start.disabled = inc.checked; } });
  const out = h('div', { 'aria-live': 'polite' });
  const btn = h('button', { type: 'submit', id: 'materialize' }, 'Materialize');
  const form = h('form', { class: 'toolbar', onsubmit: async (e) => {
    e.preventDefault();
    const body = {};
    if (inc.checked) body.incremental = true; else if (start.value.trim()) body.start = start.value.trim();
    if (end.value.trim()) body.end = end.value.trim();
    const what = inc.checked ? 'from the end of the last successful run' : `over [${body.start || 'the beginning'}, ${body.end || 'now'})`;
    if (!await confirmDialog(`Materialize ${name}?`, `The server reads the view's source and writes the latest row of every entity key ${what} into the online store.`, 'Materialize')) return;
    btn.disabled = true;
    out.replaceChildren(h('p', { class: 'muted' }, 'Materializing…'));
    try {
      const m = await v1('POST', `/feature-views/${enc(name)}/materialize`, { body });
      toast(`Materialized ${name}: ${fmtNum(m.keys_written)} keys written from ${m.source || 'the source'} (${fmtNum(m.rows_read)} rows read)`);
      ctx.go(location.pathname + location.search, { replace: true });
    } catch (ex) {
      btn.disabled = false;
      out.replaceChildren(errorBox(ex));
    }
  } },
  h('label', { for: 'mat-start' }, 'Start'), start, h('label', { for: 'mat-end' }, 'End'), end,
  h('label', { for: 'mat-incremental' }, inc, ' Incremental'), btn);
  put(sec, form, out);
  const r = await v1('GET', `/feature-views/${enc(name)}/materializations`, { query: { limit: 50 } });
  const ms = r.materializations || [];
  put(sec, table([
    { key: 'id', label: 'Run', numeric: true },
    { key: 'state', label: 'State', render: (m) => badge(m.state) },
    { key: 'view_version', label: 'View version', numeric: true },
    { key: 'interval', label: 'Interval (event time)', value: (m) => m.end, render: (m) => `${m.start ? fmtTime(m.start) : 'beginning'} → ${fmtTime(m.end)}` },
    { key: 'source', label: 'Source', render: (m) => (m.source ? sourceLink(m.source) : '') },
    { key: 'rows_read', label: 'Rows read', numeric: true },
    { key: 'keys_written', label: 'Keys written', numeric: true },
    { key: 'started_at', label: 'Started', value: (m) => Date.parse(m.started_at), render: (m) => fmtTime(m.started_at) },
    { key: 'duration', label: 'Took', value: (m) => (m.finished_at ? Date.parse(m.finished_at) - Date.parse(m.started_at) : null), render: (m) => (m.finished_at ? fmtDuration(Date.parse(m.finished_at) - Date.parse(m.started_at)) : 'running') },
    { key: 'error', label: 'Error', render: (m) => m.error || '' },
  ], ms, { sort: { key: 'started_at', dir: 'desc' }, caption: `Materializations of ${name} into the ${ms[0]?.store || 'online'} store`, empty: 'Not materialized yet: the online store holds nothing for this view.' }));
}

// ---- online lookup -------------------------------------------------------

// keyValues splits "1, 2, x" into JSON values: integers as numbers, a
// quoted value as the text inside, anything else as text.
export function keyValues(s) {
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '').map((x) => {
    if (/^-?\d+$/.test(x)) return Number(x);
    if (/^".*"$/.test(x)) { try { return JSON.parse(x); } catch { return x; } }
    return x;
  });
}

function lookupForm(ctx, name, keys, features) {
  const q = ctx.query;
  const picked = q.get('lf') ? new Set(q.get('lf').split(',')) : new Set(features.map((f) => f.name));
  const inputs = keys.map((k) => h('input', { id: `lookup-${k}`, name: k, value: q.get(`key.${k}`) || '', placeholder: '1, 2, 3', autocomplete: 'off' }));
  const boxes = features.map((f) => h('input', { type: 'checkbox', value: f.name, checked: picked.has(f.name), 'aria-label': `Feature ${f.name}` }));
  const defaults = h('input', { type: 'checkbox', id: 'lookup-defaults', checked: q.get('defaults') === '1' });
  const result = h('div', { id: 'lookup-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'lookup', onsubmit: (e) => {
    e.preventDefault();
    const ch = { defaults: defaults.checked ? '1' : null };
    keys.forEach((k, i) => { ch[`key.${k}`] = inputs[i].value.trim(); });
    const sel = boxes.filter((b) => b.checked).map((b) => b.value);
    ch.lf = sel.length === features.length ? null : sel.join(',');
    ctx.setQuery(ch, { replace: true });
  } },
  h('div', { class: 'toolbar' }, keys.map((k, i) => [h('label', { for: `lookup-${k}` }, k), inputs[i]])),
  h('fieldset', { class: 'toolbar' }, h('legend', null, 'Features'), features.map((f, i) => h('label', null, boxes[i], ' ', f.name))),
  h('div', { class: 'toolbar' }, h('label', { for: 'lookup-defaults' }, defaults, ' Serve defaults where there is no value'),
    h('button', { type: 'submit', id: 'lookup' }, 'Look up')),
  h('p', { class: 'muted' }, 'Several keys separated by commas. Integers are sent as numbers; quote a value ("042") to send it as text.'));
  const sec = section('Online lookup', form, result);
  const entered = keys.map((k) => q.get(`key.${k}`) || '');
  const run = async () => {
    if (keys.length && entered.some((x) => x)) await lookup(result, name, keys, entered, features.filter((f) => picked.has(f.name)), defaults.checked);
  };
  return { sec, run };
}

async function lookup(el, name, keys, entered, features, useDefaults) {
  put(el, h('p', { class: 'muted' }, 'Looking up…'));
  const entities = Object.fromEntries(keys.map((k, i) => [k, keyValues(entered[i])]));
  let r;
  try {
    if (!features.length) throw new Error('Pick at least one feature.');
    r = await v1('POST', '/features/online', { body: { features: features.map((f) => `${name}:${f.name}`), entities, use_defaults: useDefaults } });
  } catch (e) { el.replaceChildren(errorBox(e)); return; }
  const names = r.metadata?.feature_names || [];
  const cols = r.results || [];
  const n = cols[0]?.values?.length || 0;
  const rows = Array.from({ length: n }, (_, i) => ({ i }));
  const short = (fn) => (fn.startsWith(`${name}:`) ? fn.slice(name.length + 1) : fn);
  const columns = names.map((fn, j) => {
    const isKey = j < keys.length;
    const c = cols[j];
    if (isKey) return { key: `c${j}`, label: fn, value: (row) => c.values[row.i], render: (row) => h('code', { 'data-key': fn }, String(c.values[row.i])) };
    return {
      key: `c${j}`, label: short(fn), value: (row) => c.values[row.i],
      render: (row) => {
        const st = c.statuses[row.i];
        const ts = c.event_timestamps[row.i];
        const val = c.values[row.i];
        return h('span', { 'data-feature': short(fn), 'data-status': st },
          h('span', { class: val === null ? 'fv muted' : 'fv' }, val === null ? 'null' : String(val)), ' ',
          st === 'PRESENT' ? null : badge(st === 'DEFAULT' ? 'default' : st),
          st === 'PRESENT' || st === 'DEFAULT' ? h('div', { class: 'muted' }, ts && !ts.startsWith('1970-01-01') ? `event ${fmtTime(ts)}` : '') : null);
      },
    };
  });
  const found = n ? cols.slice(keys.length).reduce((a, c) => a + c.statuses.filter((s) => s === 'PRESENT').length, 0) : 0;
  el.replaceChildren(
    h('p', null, `${fmtNum(n)} key(s), ${fmtNum(found)} of ${fmtNum(n * (names.length - keys.length))} values present.`),
    table(columns, rows, { caption: 'Online values (latest per key)', empty: 'No keys.' }));
}
