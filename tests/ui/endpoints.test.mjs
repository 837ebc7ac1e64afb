// Endpoints in the browser: the list (filter, sort), an endpoint's page
// (routes and the traffic split as the API reports them, live statistics
// and their charts, events) and the rollout actions behind a confirmation
// (Cancel changes nothing; Pause, Resume, Promote and Rollback change the
// routes as the API reports afterwards).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.endpoints;
const get = (name) => api('GET', `/api/v1/endpoints/${name}`);
const routesOf = (st) => st.status.routes.map((r) => ({ name: r.name, version: r.version, weight: r.weight }));

// The live-route table of an endpoint page as [{name, version, weight}].
async function pageRoutes(page) {
  const rows = page.locator('#ep-traffic table.data tbody tr');
  const out = [];
  for (let i = 0; i < await rows.count(); i++) {
    const cells = await rows.nth(i).locator('td').allTextContents();
    out.push({ name: cells[0], version: Number(cells[1].replace(/^.* v/, '')), weight: Number(cells[2].replace(/,/g, '')) });
  }
  return out;
}

// Presses a rollout action and confirms (or cancels) in the dialog.
async function press(page, action, { confirm = true } = {}) {
  const label = action[0].toUpperCase() + action.slice(1);
  await page.locator(`#ep-rollout button[data-action="${action}"]`).click();
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  assert.match(await dlg.getByRole('heading').textContent(), new RegExp(`${label} `));
  await dlg.getByRole('button', { name: confirm ? label : 'Cancel' }).click();
  await dlg.waitFor({ state: 'detached' });
}

test('endpoint list shows every endpoint with its live routes, filters by name and sorts', async () => {
  const page = await open('/ui/endpoints');
  for (const ep of [...f().canaries, f().plain]) await page.getByRole('link', { name: ep, exact: true }).waitFor();
  const row = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: f().cancel, exact: true }) });
  const routes = f().routes[f().cancel];
  for (const r of routes) {
    assert.match(await row.locator(`[data-route="${r.name}"]`).textContent(), new RegExp(`${r.name}: ${f().model} v${r.version} · ${r.weight}%`));
  }
  assert.ok(await row.locator('.badge', { hasText: 'progressing' }).count() >= 1);
  assert.match(await row.textContent(), /canary/);
  // Filter by name: the address holds it.
  await page.getByLabel('Filter endpoints by name').fill('ui-canary-');
  await page.getByRole('button', { name: 'Filter' }).click();
  await settled(page);
  assert.match(page.url(), /name=ui-canary-/);
  const names = () => page.locator('table.data tbody tr td:first-child').allTextContents();
  assert.deepEqual(await names(), [...f().canaries].sort());
  assert.equal(await page.getByRole('link', { name: f().plain, exact: true }).count(), 0);
  // Sort by name descending (the header toggles; the sort is in the address).
  await page.getByRole('button', { name: /^Name/ }).click();
  await settled(page);
  assert.match(page.url(), /sort=name/);
  assert.match(page.url(), /dir=desc/);
  assert.deepEqual(await names(), [...f().canaries].sort().reverse());
  await page.kiln.done('endpoints-list');
});

test('an endpoint page shows both routes, their weights as the API reports and the traffic bar', async () => {
  const ep = f().cancel;
  const page = await open(`/ui/endpoints/${ep}`);
  assert.equal(await page.getByRole('heading', { level: 1 }).count(), 1);
  await page.locator('#ep-traffic table.data').waitFor();
  const st = await get(ep);
  assert.deepEqual(await pageRoutes(page), routesOf(st));
  assert.equal(st.status.routes.length, 2);
  // The stacked bar: one segment per route, its share as the weights give.
  const segs = page.locator('#ep-traffic svg.chart.traffic g.segment');
  assert.equal(await segs.count(), 2);
  const tot = st.status.routes.reduce((a, r) => a + r.weight, 0);
  for (const r of st.status.routes) {
    const share = Number(await page.locator(`#ep-traffic g.segment[data-route="${r.name}"]`).getAttribute('data-share'));
    assert.ok(Math.abs(share - (100 * r.weight) / tot) < 0.01, `${r.name}: ${share}`);
  }
  assert.ok(await page.locator('#ep-traffic svg.chart.traffic g.tick text', { hasText: '100%' }).count() === 1);
  assert.equal(await page.locator('#ep-traffic .legend li').count(), 2);
  // The rollout: canary, progressing, step 1, with the analysis the API reports.
  const roll = page.locator('#ep-rollout');
  assert.ok(await roll.locator('.badge', { hasText: 'progressing' }).isVisible());
  assert.match(await roll.textContent(), new RegExp(`1 of 2 \\(candidate weight ${f().canary_weight}%\\)`));
  if (st.status.rollout.analysis) assert.ok(await roll.locator('table.data', { hasText: 'Reason' }).isVisible());
  // Links to the model versions and to monitoring.
  for (const v of [1, 2]) assert.ok(await page.locator(`#ep-traffic a[href="/ui/models/${f().model}/versions/${v}"]`).count() >= 1);
  assert.equal(await page.locator(`a[href="/ui/monitoring?endpoint=${ep}"]`).count(), 1);
  // Events: the seed's create and update, with their reasons.
  const events = (await api('GET', `/api/v1/endpoints/${ep}/events`)).events;
  const evRows = page.locator('#ep-events table.data tbody tr');
  assert.equal(await evRows.count(), events.length);
  assert.ok(await page.locator('#ep-events td', { hasText: 'canary of version 2' }).isVisible());
  await page.kiln.done('endpoint-page');
});

test('live statistics show the per-route figures and chart requests/s and p99 over time', async () => {
  const ep = f().cancel;
  const page = await open(`/ui/endpoints/${ep}`);
  const stats = page.locator('#ep-stat-table table.data');
  await stats.waitFor();
  const want = (await api('GET', `/api/v1/endpoints/${ep}/stats`)).stats;
  const rows = stats.locator('tbody tr');
  assert.equal(await rows.count(), want.length);
  const heads = await stats.locator('thead th').allTextContents();
  const col = (label) => heads.findIndex((t) => t.startsWith(label));
  for (let i = 0; i < want.length; i++) {
    const cells = await rows.nth(i).locator('td').allTextContents();
    assert.equal(cells[col('Name')], want[i].name);
    assert.equal(Number(cells[col('Requests (total)')].replace(/,/g, '')), want[i].total.requests);
    assert.equal(Number(cells[col('Errors (total)')]), want[i].total.errors);
    assert.ok(want[i].total.requests > 0, `${want[i].name} has requests`);
  }
  const total = await page.locator('[data-stat="total"] .big').textContent();
  assert.equal(Number(total.replace(/,/g, '')), want[0].total.requests);
  for (const k of ['rps', 'p50', 'p90', 'p99']) assert.match(await page.locator(`[data-stat="${k}"] .big`).textContent(), /^[\d.,e+-]+$/);
  // The charts gain a point per refresh while the page is open.
  const rps = page.locator('[data-chart="rps"] svg.chart');
  await page.waitForFunction(() => document.querySelectorAll('[data-chart="rps"] svg.chart circle').length >= 2, null, { timeout: 20000 });
  assert.equal(await rps.locator('g.series').count(), 1);
  assert.ok(await rps.locator('text.label', { hasText: 'requests/s' }).count() === 1);
  assert.ok(await rps.locator('text.label', { hasText: 'seconds since the page opened' }).count() === 1);
  assert.ok((await rps.locator('g.tick text').count()) >= 4);
  const p99 = page.locator('[data-chart="p99"] svg.chart');
  assert.ok((await p99.locator('g.series circle').count()) >= 2);
  assert.ok(await p99.locator('text.label', { hasText: 'p99 (ms)' }).count() === 1);
  assert.match(await page.locator('#ep-stat-status').textContent(), /samples/);
  await page.kiln.done('endpoint-stats');
});

test('Cancel in the confirmation changes nothing', async () => {
  const ep = f().cancel;
  const before = await get(ep);
  const page = await open(`/ui/endpoints/${ep}`);
  await page.locator('#ep-traffic table.data').waitFor();
  for (const a of ['promote', 'rollback', 'pause']) await press(page, a, { confirm: false });
  const after = await get(ep);
  assert.deepEqual(routesOf(after), routesOf(before));
  assert.equal(after.status.rollout.phase, 'progressing');
  assert.equal(after.status.revision, before.status.revision);
  assert.deepEqual(await pageRoutes(page), routesOf(before));
  await page.kiln.done('endpoint-cancel');
});

test('Pause then Resume hold and release the canary', async () => {
  const ep = f().cancel;
  const page = await open(`/ui/endpoints/${ep}`);
  const roll = page.locator('#ep-rollout');
  await roll.locator('.badge', { hasText: 'progressing' }).waitFor();
  assert.ok(await roll.locator('button[data-action="resume"]').isDisabled());
  await press(page, 'pause');
  await roll.locator('.badge', { hasText: 'paused' }).waitFor();
  const paused = await get(ep);
  assert.equal(paused.status.rollout.phase, 'paused');
  assert.ok(await roll.locator('button[data-action="pause"]').isDisabled());
  await press(page, 'resume');
  await roll.locator('.badge', { hasText: 'progressing' }).waitFor();
  const resumed = await get(ep);
  assert.equal(resumed.status.rollout.phase, 'progressing');
  assert.deepEqual(await pageRoutes(page), routesOf(resumed));
  await page.locator('#ep-events td .badge', { hasText: 'resume' }).waitFor();
  await page.kiln.done('endpoint-pause-resume');
});

test('Promote (confirmed) gives the candidate all traffic, as the API reports afterwards', async () => {
  const ep = f().promote;
  const page = await open(`/ui/endpoints/${ep}`);
  await page.locator('#ep-rollout .badge', { hasText: 'progressing' }).waitFor();
  await press(page, 'promote');
  await page.locator('#ep-rollout .badge', { hasText: 'succeeded' }).waitFor();
  const st = await get(ep);
  assert.equal(st.status.rollout.phase, 'succeeded');
  const main = st.status.routes.find((r) => r.weight > 0);
  assert.equal(main.version, 2);
  assert.equal(main.weight, 100);
  assert.deepEqual(await pageRoutes(page), routesOf(st));
  const share = Number(await page.locator(`#ep-traffic g.segment[data-route="${main.name}"]`).getAttribute('data-share'));
  assert.equal(share, 100);
  assert.ok(await page.locator('#ep-rollout button[data-action="promote"]').isDisabled());
  await page.locator('#ep-events td .badge', { hasText: 'promote' }).waitFor();
  assert.match(await page.locator('#toast').textContent(), /Promote: rollout succeeded/);
  await page.kiln.done('endpoint-promote');
});

test('Rollback (confirmed) puts all traffic back on the stable version, as the API reports afterwards', async () => {
  const ep = f().rollback;
  const page = await open(`/ui/endpoints/${ep}`);
  await page.locator('#ep-rollout .badge', { hasText: 'progressing' }).waitFor();
  await press(page, 'rollback');
  await page.locator('#ep-rollout .badge', { hasText: 'rolled_back' }).waitFor();
  const st = await get(ep);
  assert.equal(st.status.rollout.phase, 'rolled_back');
  assert.deepEqual(routesOf(st), [{ name: 'main', version: 1, weight: 100 }]);
  assert.deepEqual(await pageRoutes(page), routesOf(st));
  assert.equal(await page.locator('#ep-traffic g.segment').count(), 1);
  assert.ok(await page.locator('#ep-rollout button[data-action="rollback"]').isDisabled());
  assert.ok(!(await page.locator('#ep-rollout button[data-action="resume"]').isDisabled()));
  await page.locator('#ep-events td .badge', { hasText: 'rollback' }).waitFor();
  await page.kiln.done('endpoint-rollback');
});

test('an endpoint without a rollout shows one route and no rollout actions to take', async () => {
  const page = await open(`/ui/endpoints/${f().plain}`);
  await page.locator('#ep-traffic table.data').waitFor();
  assert.deepEqual(await pageRoutes(page), f().routes[f().plain]);
  assert.ok(await page.locator('#ep-rollout-none').isVisible());
  for (const a of ['promote', 'rollback', 'resume']) assert.ok(await page.locator(`#ep-rollout button[data-action="${a}"]`).isDisabled());
  await page.kiln.done('endpoint-plain');
});

test('an unknown endpoint shows the API error', async () => {
  const page = await open('/ui/endpoints/no-such-endpoint');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /no-such-endpoint|not found/i);
  await page.kiln.done('endpoint-missing', { allowErrors: true });
});
