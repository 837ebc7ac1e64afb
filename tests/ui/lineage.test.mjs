// The lineage page in the browser: the graph around a run (dataset
// version → run → logged model → model version), its node and edge
// tables with links to the nodes' pages, re-centring by clicking a node
// (and by keyboard), the direction and depth controls, and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.lineage;
const graph = (page) => page.locator('svg.chart.dag.lineage');
const nodeIds = async (page) => (await graph(page).locator('g.node').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-node')))).sort();
const edgeIds = async (page) => (await graph(page).locator('path.edge').evaluateAll((ps) => ps.map((p) => `${p.getAttribute('data-from')}>${p.getAttribute('data-to')}`))).sort();
const rootId = (page) => graph(page).locator('g.node.root').getAttribute('data-node');

test('the graph around a run has its dataset versions, logged model and model version, with links to their pages', async () => {
  const page = await open(`/ui/lineage?kind=run&id=${f().run_id}`);
  await graph(page).waitFor();
  assert.deepEqual(await nodeIds(page), f().run_graph.nodes);
  assert.deepEqual(await edgeIds(page), f().run_graph.edges);
  assert.equal(await rootId(page), `run:${f().run_id}`);
  // Nodes read by name, with their kind (and state) underneath.
  const run = graph(page).locator(`g.node[data-node="run:${f().run_id}"]`);
  assert.equal(await run.locator('text.name').textContent(), 'lineage-train');
  assert.equal(await run.locator('text.state').textContent(), 'run · FINISHED');
  assert.equal(await graph(page).locator(`g.node[data-node="model:${f().model}/1"] text.state`).textContent(), 'model version · READY');
  assert.equal(await graph(page).locator(`g.node[data-node="dataset:${f().train}"] text.name`).textContent(), f().train);
  // Layers left to right: data, train part, run, logged model, model version.
  const xs = await graph(page).locator('g.node rect').evaluateAll((rs) => rs.map((r) => [r.parentNode.getAttribute('data-node'), Number(r.getAttribute('x'))]));
  const x = Object.fromEntries(xs);
  const order = [`dataset:${f().dataset}@1`, `dataset:${f().train}`, `run:${f().run_id}`, f().logged_model, `model:${f().model}/1`];
  for (let i = 1; i < order.length; i++) assert.ok(x[order[i - 1]] < x[order[i]], `${order[i - 1]} left of ${order[i]}`);
  // The relations in the edge table.
  const edges = page.locator('section', { has: page.getByRole('heading', { name: 'Edges' }) }).locator('tbody tr');
  assert.equal(await edges.count(), 4);
  assert.deepEqual((await edges.locator('td:nth-child(2)').allTextContents()).sort(), ['derived', 'input', 'output', 'registered']);
  // The node table links to each node's page.
  const nodes = page.locator('section', { has: page.getByRole('heading', { name: 'Nodes' }) });
  assert.equal(await nodes.getByRole('link', { name: 'lineage-train' }).getAttribute('href'), `/ui/experiments/${f().experiment_id}/runs/${f().run_id}`);
  assert.equal(await nodes.getByRole('link', { name: `${f().model} v1` }).getAttribute('href'), `/ui/models/${f().model}/versions/1`);
  assert.equal(await nodes.getByRole('link', { name: f().train, exact: true }).getAttribute('href'), `/ui/data/${f().dataset}-train/versions/1`);
  assert.equal(await nodes.getByRole('link', { name: `${f().dataset}@1`, exact: true }).getAttribute('href'), `/ui/data/${f().dataset}/versions/1`);
  assert.match(await nodes.locator('tr', { hasText: `dataset:${f().dataset}@1` }).textContent(), /upstream, 2 edges/);
  assert.match(await nodes.locator('tr', { hasText: `model:${f().model}/1` }).textContent(), /downstream, 2 edges/);
  assert.match(await page.locator('h2', { hasText: 'lineage-train' }).textContent(), /^run lineage-train/);
  await page.kiln.done('lineage-run');
});

test('clicking a node re-centres the graph on it; the direction and depth controls walk again', async () => {
  const page = await open(`/ui/lineage?kind=run&id=${f().run_id}`);
  await graph(page).waitFor();
  await graph(page).locator(`g.node[data-node="dataset:${f().dataset}@1"]`).click();
  await settled(page);
  assert.match(page.url(), new RegExp(`kind=dataset&id=${f().dataset}%40${1}`));
  assert.equal(await rootId(page), `dataset:${f().dataset}@1`);
  // Downstream of the whole data: both parts (the test part too), the run, its model.
  assert.deepEqual(await nodeIds(page), [...f().run_graph.nodes, `dataset:${f().test}`].sort());
  const g = await api('GET', `/api/v1/lineage?node=${encodeURIComponent(`dataset:${f().dataset}@1`)}`);
  assert.deepEqual(await edgeIds(page), g.edges.map((e) => `${e.from}>${e.to}`).sort());
  // By keyboard: the model version.
  const mv = graph(page).getByRole('button', { name: new RegExp(`^model version ${f().model} v1`) });
  await mv.focus();
  await page.keyboard.press('Enter');
  await settled(page);
  assert.equal(await rootId(page), `model:${f().model}/1`);
  assert.match(page.url(), /kind=model/);
  // Upstream only, then one edge deep.
  await page.getByLabel('Direction').selectOption('upstream');
  await settled(page);
  assert.match(page.url(), /direction=upstream/);
  assert.deepEqual(await nodeIds(page), [`dataset:${f().dataset}@1`, `dataset:${f().train}`, f().logged_model, `model:${f().model}/1`, `run:${f().run_id}`].sort());
  await page.getByLabel('Depth (edges)').selectOption('1');
  await settled(page);
  assert.deepEqual(await nodeIds(page), [f().logged_model, `model:${f().model}/1`].sort());
  assert.deepEqual(await edgeIds(page), [`${f().logged_model}>model:${f().model}/1`]);
  // Back returns to the previous centre.
  await page.goBack();
  await settled(page);
  await page.goBack();
  await settled(page);
  await page.goBack();
  await settled(page);
  assert.equal(await rootId(page), `dataset:${f().dataset}@1`);
  await page.kiln.done('lineage-recentre');
});

test('the page finds a node by kind and id, accepts a separate version, and shows the API\'s errors', async () => {
  const page = await open('/ui/lineage');
  await page.getByLabel('Kind of node').selectOption('model');
  await page.getByLabel('Node id').fill(`${f().model}/1`);
  await page.getByRole('button', { name: 'Show lineage' }).click();
  await settled(page);
  await graph(page).waitFor();
  assert.equal(await rootId(page), `model:${f().model}/1`);
  assert.equal(await graph(page).locator('g.node').count(), f().run_graph.nodes.length);
  // ?kind=model&id=NAME&version=V, as other pages may link.
  await page.goto(`${env.url}/ui/lineage?kind=model&id=${f().model}&version=1&direction=upstream`);
  await settled(page);
  assert.equal(await rootId(page), `model:${f().model}/1`);
  // A node that does not exist: the server's 404 in the page.
  await page.goto(`${env.url}/ui/lineage?kind=model&id=${f().model}/99`);
  await settled(page);
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /99|not exist|not found/i);
  assert.equal(await graph(page).count(), 0);
  // An unknown kind.
  await page.goto(`${env.url}/ui/lineage?kind=nonsense&id=x`);
  await settled(page);
  assert.match(await page.getByRole('alert').textContent(), /Unknown lineage kind/);
  // A pipeline is no node: its runs are listed to choose from (here: none).
  await page.goto(`${env.url}/ui/lineage?kind=pipeline&id=ui-lin-no-such-pipeline`);
  await settled(page);
  await page.getByRole('heading', { name: 'Runs of pipeline ui-lin-no-such-pipeline' }).waitFor();
  await page.getByText('This pipeline has not run yet.').waitFor();
  assert.equal(await graph(page).count(), 0);
  assert.deepEqual(page.kiln.errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await page.kiln.done('lineage-find', { allowErrors: true });
});
