// Lineage: the graph around one node, walked upstream (where it came from)
// and downstream (what was made from it), drawn as a layered DAG, with a
// table of its nodes linking to their pages and a table of its edges.
//
// Linking here from another page: /ui/lineage?kind=<kind>&id=<id>, where
// kind is the prefix of the node's lineage id (lineage/node.go) and id is
// what follows the colon (the server's node is "<kind>:<id>"):
//
//   kind            id                        example
//   dataset         NAME@VERSION              ?kind=dataset&id=sales@3
//   run             MLflow run id             ?kind=run&id=5094133b32454ff3…
//   logged-model    logged model id           ?kind=logged-model&id=m-dc0b4c17…
//   model           NAME/VERSION              ?kind=model&id=churn/2
//   endpoint        NAME                      ?kind=endpoint&id=churn-prod
//   monitor         NAME                      ?kind=monitor&id=churn-drift
//   alert           MONITOR/RULE              ?kind=alert&id=churn-drift/data-drift
//   pipeline-run    pipeline run id           ?kind=pipeline-run&id=01m8…
//
// Encode id with encodeURIComponent (or use lineageHref below). For a
// dataset or model version the version may instead be passed alone:
// ?kind=model&id=churn&version=2 is ?kind=model&id=churn/2. The node
// types' names (dataset_version, model_version, logged_model,
// pipeline_run) are accepted as kinds too; kind=pipeline&id=NAME lists the
// pipeline's latest runs to choose from (a pipeline is no node). Names are as the request's
// workspace calls them (the workspace picker's). More parameters:
// direction=both|upstream|downstream (default both), depth=1…25 (default
// 5).
//
// Other pages can draw the graph themselves:
//   import { lineageGraph, lineageHref } from './lineage.js';
//   await lineageGraph(el, 'model', 'churn/2', { direction: 'upstream', depth: 3 });
import { h, link, table, badge, errorBox, section, fmtTime } from '../lib/dom.js';
import { v1 } from '../lib/api.js';
import { dag } from '../lib/chart.js';
import { go } from '../app.js';

let cssLoaded = false;
function loadCSS() {
  if (cssLoaded) return;
  cssLoaded = true;
  document.head.append(h('link', { rel: 'stylesheet', href: '/ui/pages/lineage.css' }));
}

// The kinds: the id prefix, its node type, and how it reads.
export const KINDS = [
  { kind: 'dataset', type: 'dataset_version', label: 'dataset version', sep: '@' },
  { kind: 'run', type: 'run', label: 'run' },
  { kind: 'logged-model', type: 'logged_model', label: 'logged model' },
  { kind: 'model', type: 'model_version', label: 'model version', sep: '/' },
  { kind: 'endpoint', type: 'endpoint', label: 'endpoint' },
  { kind: 'monitor', type: 'monitor', label: 'monitor' },
  { kind: 'alert', type: 'alert', label: 'alert', sep: '/' },
  { kind: 'pipeline-run', type: 'pipeline_run', label: 'pipeline run' },
];
const byKind = (k) => KINDS.find((x) => x.kind === k || x.type === k);

// nodeID builds the server's node id from a kind and an id (and an
// optional version for a dataset or a model).
export function nodeID(kind, id, version) {
  const k = byKind(kind);
  if (!k) throw new Error(`Unknown lineage kind '${kind}': want ${KINDS.map((x) => x.kind).join(', ')}`);
  if (version !== undefined && version !== null && version !== '' && k.sep) return `${k.kind}:${id}${k.sep}${version}`;
  return `${k.kind}:${id}`;
}

// lineageHref is the lineage page's address for a node.
export function lineageHref(kind, id, version) {
  const [k, rest] = splitID(nodeID(kind, id, version));
  return `/ui/lineage?kind=${encodeURIComponent(k)}&id=${encodeURIComponent(rest)}`;
}

function splitID(nid) {
  const i = nid.indexOf(':');
  return [nid.slice(0, i), nid.slice(i + 1)];
}

function cutLast(s, sep) {
  const i = s.lastIndexOf(sep);
  return i > 0 ? [s.slice(0, i), s.slice(i + 1)] : [s, ''];
}

const enc = encodeURIComponent;

// nodePage is the address of a node's own page in the UI (null when it
// has none), and what the link says.
export function nodePage(n) {
  const [, rest] = splitID(n.id);
  const a = n.attrs || {};
  switch (n.type) {
    case 'dataset_version': { const [name, v] = cutLast(rest, '@'); return [`/ui/data/${enc(name)}/versions/${v}`, `${name} v${v}`]; }
    case 'run': return a.experiment_id ? [`/ui/experiments/${enc(a.experiment_id)}/runs/${enc(rest)}`, n.label || rest] : null;
    case 'logged_model': return a.experiment_id && a.source_run_id ? [`/ui/experiments/${enc(a.experiment_id)}/runs/${enc(a.source_run_id)}`, 'its source run'] : null;
    case 'model_version': { const [name, v] = cutLast(rest, '/'); return [`/ui/models/${enc(name)}/versions/${v}`, `${name} v${v}`]; }
    case 'endpoint': return [`/ui/endpoints/${enc(rest)}`, rest];
    case 'monitor': return [`/ui/monitoring/monitors/${enc(rest)}`, rest];
    case 'alert': { const [mon] = cutLast(rest, '/'); return [`/ui/monitoring/alerts?monitor=${enc(mon)}`, `alerts of ${mon}`]; }
    case 'pipeline_run': return [`/ui/pipelines/runs/${enc(rest)}`, n.label || rest];
    default: return null;
  }
}

function kindLabel(type) { return byKind(type)?.label || type; }

// state is a node's status for the graph's colours and the table.
function state(n) {
  const a = n.attrs || {};
  return String(a.state || a.status || '').replace(/^LOGGED_MODEL_/, '');
}

// lineageGraph draws the graph around one node into el: the DAG (nodes
// labelled by name, with their kind and state underneath; the starting
// node outlined) and, unless opts.tables is false, the node and edge
// tables. opts: direction, depth, maxNodes, title, onSelect(node) (default:
// open the lineage page centred on the node), tables. Resolves with the
// server's graph; an error of the API is shown in el and rethrown.
export async function lineageGraph(el, kind, id, opts = {}) {
  loadCSS();
  const node = nodeID(kind, id, opts.version);
  let g;
  try {
    g = await v1('GET', '/lineage', { query: { node, direction: opts.direction || undefined, depth: opts.depth || undefined, max_nodes: opts.maxNodes || undefined } });
  } catch (e) {
    el.append(errorBox(e));
    throw e;
  }
  const onSelect = opts.onSelect || ((n) => { const [k, rest] = splitID(n.id); go(lineageHref(k, rest)); });
  const nodes = g.nodes.map((n) => ({ id: n.id, label: n.label || n.id, state: [kindLabel(n.type), state(n)].filter(Boolean).join(' · ') }));
  const edges = g.edges.map((e) => [e.from, e.to]);
  const fig = dag(nodes, edges, { title: opts.title || `Lineage around ${g.root} (${g.direction}, depth ${g.depth})`, onSelect: (n) => onSelect(g.nodes.find((x) => x.id === n.id)) });
  const svg = fig.querySelector('svg');
  svg.classList.add('lineage');
  svg.setAttribute('aria-label', `Lineage graph: ${g.nodes.length} nodes, ${g.edges.length} edges around ${g.root}`);
  for (const gn of svg.querySelectorAll('g.node')) {
    const n = g.nodes.find((x) => x.id === gn.getAttribute('data-node'));
    if (!n) continue;
    gn.setAttribute('data-type', n.type);
    gn.setAttribute('aria-label', `${kindLabel(n.type)} ${n.label}${n.id === g.root ? ' (centre)' : ''}: show its lineage`);
    if (n.id === g.root) gn.classList.add('root');
  }
  // Each edge says its relation on hover.
  const edgeEls = svg.querySelectorAll('path.edge');
  g.edges.filter((e) => g.nodes.some((n) => n.id === e.from) && g.nodes.some((n) => n.id === e.to)).forEach((e, i) => {
    const p = edgeEls[i];
    if (!p) return;
    p.setAttribute('data-from', e.from); p.setAttribute('data-to', e.to); p.setAttribute('data-relation', e.relation);
    p.append(document.createElementNS('http://www.w3.org/2000/svg', 'title'));
    p.lastChild.textContent = `${e.from} ${e.relation} → ${e.to}`;
  });
  el.append(h('div', { class: 'lineage-graph' }, fig));
  if (g.truncated) el.append(h('p', { class: 'muted', role: 'note' }, `The walk stopped at ${g.nodes.length} nodes: the graph is cut short.`));
  if (opts.tables === false) return g;
  const labels = new Map(g.nodes.map((n) => [n.id, n]));
  const rel = relations(g);
  el.append(
    section('Nodes', table([
      { key: 'label', label: 'Node', render: (n) => { const p = nodePage(n); return p && n.type !== 'logged_model' ? link(p[0], n.label || n.id) : h('span', null, n.label || n.id); } },
      { key: 'type', label: 'Kind', render: (n) => kindLabel(n.type) },
      { key: 'state', label: 'State', value: (n) => state(n), render: (n) => (state(n) ? badge(state(n)) : '') },
      { key: 'rel', label: 'Relation to the centre', value: (n) => rel.get(n.id) || '', render: (n) => rel.get(n.id) || '' },
      { key: 'page', label: 'Graph', sortable: false, render: (n) => {
        const p = nodePage(n);
        const [k, rest] = splitID(n.id);
        return h('span', { class: 'actions' },
          n.id === g.root ? h('span', { class: 'muted' }, 'centre') : link(lineageHref(k, rest), 'Centre here'),
          n.type === 'logged_model' && p ? [' · ', link(p[0], p[1])] : null);
      } },
      { key: 'time', label: 'Created', value: (n) => n.attrs?.created || n.attrs?.started || '', render: (n) => fmtTime(n.attrs?.created || n.attrs?.started || '') },
      { key: 'id', label: 'Lineage id', render: (n) => h('code', null, n.id) },
    ], g.nodes, { caption: `${g.nodes.length} nodes`, rowClass: (n) => (n.id === g.root ? 'lineage-root' : null) })),
    section('Edges', table([
      { key: 'from', label: 'From (upstream)', value: (e) => labels.get(e.from)?.label || e.from, render: (e) => h('code', null, e.from) },
      { key: 'relation', label: 'Relation' },
      { key: 'to', label: 'To (downstream)', value: (e) => labels.get(e.to)?.label || e.to, render: (e) => h('code', null, e.to) },
    ], g.edges, { caption: `${g.edges.length} edges`, empty: 'This node has no recorded lineage yet.' })));
  return g;
}

// relations says how each node relates to the root: "upstream, 2 edges",
// found by walking the edges each way from it.
function relations(g) {
  const out = new Map([[g.root, 'centre']]);
  const walk = (fwd, word) => {
    let frontier = [g.root];
    const seen = new Set([g.root]);
    for (let d = 1; frontier.length; d++) {
      const next = [];
      for (const id of frontier) {
        for (const e of g.edges) {
          const [a, b] = fwd ? [e.from, e.to] : [e.to, e.from];
          if (a === id && !seen.has(b)) { seen.add(b); next.push(b); if (!out.has(b)) out.set(b, `${word}, ${d} edge${d > 1 ? 's' : ''}`); }
        }
      }
      frontier = next;
    }
  };
  walk(false, 'upstream');
  walk(true, 'downstream');
  return out;
}

// ---- the page -------------------------------------------------------------

export async function render(ctx) {
  loadCSS();
  const q = ctx.query;
  let kind = q.get('kind') || '';
  let id = q.get('id') || '';
  const node = q.get('node') || '';
  if (!kind && node.includes(':')) [kind, id] = splitID(node);
  const version = q.get('version') || '';
  const direction = q.get('direction') || 'both';
  const depth = q.get('depth') || '5';
  ctx.title('Lineage');
  ctx.el.append(h('h1', null, 'Lineage'));
  ctx.el.append(pickForm(ctx, kind, id, version));
  if (!kind || !id) {
    ctx.el.append(h('p', { class: 'muted' }, 'Choose a node to see where it came from and what was made from it: ',
      'a dataset version, a run, a model version, an endpoint, a monitor, an alert or a pipeline run. ',
      'Pages of runs, models, datasets and endpoints link here.'));
    return;
  }
  if (kind === 'pipeline') return pipelineRuns(ctx, id);
  let nid;
  try { nid = nodeID(kind, id, version); } catch (e) { ctx.el.append(errorBox(e)); return; }
  const dirSel = h('select', { id: 'lineage-direction' }, [['both', 'Both ways'], ['upstream', 'Upstream (where it came from)'], ['downstream', 'Downstream (what was made from it)']]
    .map(([v, l]) => h('option', { value: v, selected: v === direction }, l)));
  dirSel.onchange = () => ctx.setQuery({ direction: dirSel.value === 'both' ? null : dirSel.value });
  const depthSel = h('select', { id: 'lineage-depth' }, [1, 2, 3, 4, 5, 6, 8, 10, 15, 25].map((d) => h('option', { value: String(d), selected: String(d) === depth }, String(d))));
  depthSel.onchange = () => ctx.setQuery({ depth: depthSel.value === '5' ? null : depthSel.value });
  const head = h('div', null);
  const body = h('div', null);
  ctx.el.append(head,
    h('div', { class: 'toolbar' }, h('label', { for: 'lineage-direction' }, 'Direction'), dirSel, h('label', { for: 'lineage-depth' }, 'Depth (edges)'), depthSel),
    body);
  const [k, rest] = splitID(nid);
  let g;
  try {
    g = await lineageGraph(body, k, rest, {
      direction, depth,
      onSelect: (n) => { const [k2, r2] = splitID(n.id); ctx.setQuery({ kind: k2, id: r2, version: null, node: null }); },
    });
  } catch { return; } // shown in body
  if (ctx.stale()) return;
  const root = g.nodes.find((n) => n.id === g.root) || { id: g.root, type: byKind(k)?.type, label: rest };
  ctx.title(`Lineage of ${root.label}`);
  const page = nodePage(root);
  head.append(h('h2', null, `${kindLabel(root.type)} `, h('span', { class: 'lineage-name' }, root.label || rest), ' ', state(root) ? badge(state(root)) : null),
    h('p', null, h('code', null, g.root), page ? [' · ', link(page[0], root.type === 'logged_model' ? 'open its source run' : 'open its page')] : null,
      ' · ', h('span', { class: 'muted' }, `${g.nodes.length} nodes, ${g.edges.length} edges, ${g.direction}, depth ${g.depth}. Click a node to centre the graph on it.`)));
}

// A pipeline is not a node of the graph (its runs are): list its latest
// runs to pick from.
async function pipelineRuns(ctx, name) {
  let runs;
  try {
    runs = (await v1('GET', `/pipelines/${enc(name)}/runs`, { query: { limit: 20 } })).runs || [];
  } catch (e) { ctx.el.append(errorBox(e)); return; }
  ctx.el.append(section(`Runs of pipeline ${name}`,
    h('p', { class: 'muted' }, 'A pipeline is not a node of the lineage graph; each of its runs is. Choose a run:'),
    table([
      { key: 'run_id', label: 'Pipeline run', render: (r) => link(lineageHref('pipeline-run', r.run_id), r.run_id) },
      { key: 'state', label: 'State', render: (r) => badge(r.state) },
      { key: 'creation_time', label: 'Created', render: (r) => fmtTime(r.creation_time) },
    ], runs, { empty: 'This pipeline has not run yet.' })));
}

function pickForm(ctx, kind, id, version) {
  const k = byKind(kind);
  const kindSel = h('select', { id: 'lineage-kind', 'aria-label': 'Kind of node' }, KINDS.map((x) => h('option', { value: x.kind, selected: k ? x.kind === k.kind : x.kind === 'model' }, x.label)));
  const idIn = h('input', { id: 'lineage-id', 'aria-label': 'Node id', value: version && k?.sep ? `${id}${k.sep}${version}` : id, placeholder: 'churn/2, sales@3, a run id, an endpoint name…', spellcheck: 'false' });
  return h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    ctx.setQuery({ kind: kindSel.value, id: idIn.value.trim(), version: null, node: null });
  } }, kindSel, idIn, h('button', { type: 'submit' }, 'Show lineage'));
}
