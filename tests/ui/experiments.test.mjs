// Experiments and runs in the browser: the list, the run table (filter,
// server-side sort and paging, column picker), a run's page (metric
// charts, artifacts with previews), and comparing runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled } from './harness.mjs';

const f = () => env.facts.experiments;

test('experiment list shows the seeded experiments and searches by name', async () => {
  const page = await open('/ui/experiments');
  await page.getByRole('link', { name: 'ui-churn' }).waitFor();
  assert.ok(await page.getByRole('link', { name: 'ui-empty' }).isVisible());
  await page.getByLabel('Search experiments by name').fill('churn');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  assert.ok(await page.getByRole('link', { name: 'ui-churn' }).isVisible());
  assert.equal(await page.getByRole('link', { name: 'ui-empty' }).count(), 0);
  assert.match(page.url(), /name=churn/);
  await page.kiln.done('experiments-list');
});

test('run table filters with the MLflow language and sorts on the server', async () => {
  const page = await open(`/ui/experiments/${f().experiment_id}`);
  const rows = page.locator('table.data tbody tr');
  // 30 trials + long + parent + 2 children + with-artifacts; the deleted run is hidden.
  assert.equal(await rows.count(), 35);
  await page.getByLabel('Filter runs (MLflow search syntax)').fill("metrics.auc > 0.9 and params.lr = '0.1'");
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  const want = f().runs.filter((r) => r.auc > 0.9 && r.lr === 0.1).map((r) => r.name).sort();
  const names = (await page.locator('table.data tbody tr td:nth-child(2)').allTextContents()).sort();
  assert.ok(want.length > 0);
  assert.deepEqual(names, want);
  // Sort by auc descending through the column header: the server orders.
  await page.getByLabel('Filter runs (MLflow search syntax)').fill("params.lr = '0.03'");
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  await page.getByRole('button', { name: /^auc/ }).click();
  await settled(page);
  assert.match(page.url(), /sort=metrics\.auc/);
  const aucs = (await page.locator('table.data tbody tr td:nth-child(7)').allTextContents()).map(Number);
  const expect = f().runs.filter((r) => r.lr === 0.03).map((r) => r.auc).sort((a, b) => b - a).map((v) => Number(v.toPrecision(4)));
  assert.deepEqual(aucs, expect);
  // A bad filter answers MLflow's error in the page, not a crash.
  await page.getByLabel('Filter runs (MLflow search syntax)').fill('metrics.auc >>> 1');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /./);
  await page.kiln.done('runs-filter', { allowErrors: true });
});

test('run table pages forwards and back, and the column picker adds a tag column', async () => {
  const page = await open(`/ui/experiments/${f().experiment_id}?sort=attr.run_name&dir=asc`);
  await page.getByRole('button', { name: 'Columns' }).or(page.locator('summary', { hasText: 'Columns' })).first().click();
  await page.locator('.picker input[value="tags.seed"]').check();
  await page.getByRole('button', { name: 'Apply' }).click();
  await settled(page);
  assert.ok(await page.getByRole('columnheader', { name: /seed/ }).isVisible());
  const first = await page.locator('table.data tbody tr td:nth-child(2)').first().textContent();
  assert.equal(first, 'long-training');
  await page.kiln.done('runs-columns');
});

test('a run page charts a 10,000-step metric downsampled by the server', async () => {
  const page = await open(`/ui/experiments/${f().experiment_id}/runs/${f().long_run}?tab=charts`);
  const chart = page.locator('.metric-chart[data-metric="train_loss"] svg.chart');
  await chart.waitFor();
  const d = await chart.locator('path').first().getAttribute('d');
  const points = d.split(/[ML]/).filter(Boolean).length;
  // at most 500 sampled steps, and the last step
  assert.ok(points >= 100 && points <= 501, `chart has ${points} points`);
  // axes carry tick labels and the axis titles
  assert.ok((await chart.locator('g.tick text').count()) >= 6);
  assert.ok(await chart.locator('text.label', { hasText: 'step' }).count() === 1);
  await page.kiln.done('run-charts');
});

test('the artifacts tab lists files and previews text, JSON, CSV, images and the MLmodel', async () => {
  const page = await open(`/ui/experiments/${f().experiment_id}/runs/${f().artifact_run}?tab=artifacts`);
  const tree = page.locator('#artifact-tree');
  await tree.getByRole('button', { name: 'config.json' }).click();
  await settled(page);
  await page.locator('#artifact-preview pre').waitFor();
  assert.equal(JSON.parse(await page.locator('#artifact-preview pre').textContent()).threshold, 0.42);
  await tree.getByRole('button', { name: /data\// }).click();
  await tree.getByRole('button', { name: 'sample.csv' }).click();
  await settled(page);
  await page.locator('#artifact-preview table').waitFor();
  assert.ok(await page.locator('#artifact-preview td', { hasText: 'carol, jr' }).isVisible());
  await tree.getByRole('button', { name: /plots\// }).click();
  await tree.getByRole('button', { name: 'plot.png' }).click();
  await settled(page);
  const img = page.locator('#artifact-preview img');
  await img.waitFor();
  assert.equal(await img.evaluate((i) => i.complete && i.naturalWidth), 16);
  await tree.getByRole('button', { name: /model\// }).click();
  await tree.getByRole('button', { name: 'MLmodel' }).click();
  await settled(page);
  await page.locator('#artifact-preview pre', { hasText: 'flavors:' }).waitFor();
  await page.kiln.done('run-artifacts');
});

test('comparing runs shows differing parameters, parallel coordinates and overlaid charts', async () => {
  const page = await open(`/ui/experiments/${f().experiment_id}`);
  const boxes = page.getByRole('checkbox', { name: /Select run trial-0[123]$/ });
  for (let i = 0; i < 3; i++) await boxes.nth(i).check();
  await page.getByRole('button', { name: /Compare selected \(3\)/ }).click();
  await settled(page);
  assert.match(page.url(), /\/ui\/compare\?runs=/);
  await page.locator('svg.chart.parallel').waitFor();
  assert.equal(await page.locator('svg.chart.parallel path.pline').count(), 3);
  const loss = page.locator('.metric-chart[data-metric="loss"] svg.chart');
  await loss.waitFor();
  assert.equal(await loss.locator('g.series').count(), 3);
  assert.ok(await page.locator('tr.diff-changed', { hasText: 'lr' }).isVisible());
  await page.kiln.done('compare-runs');
});
