// Datasets in the browser: the list (search, paging, sorting), a
// dataset's versions (rows, validation, picking two to diff), and a
// version's tabs: files, profile charts, validations, diff, PII, lineage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.data;
const cells = (page, n) => page.locator(`table.data tbody tr td:nth-child(${n})`).allTextContents();

test('dataset list searches names and descriptions, pages and sorts', async () => {
  const page = await open('/ui/data');
  await page.getByRole('link', { name: 'ui-bulk-00' }).waitFor();
  assert.equal(await page.locator('table.data tbody tr').count(), 25); // a page
  await page.getByLabel('Dataset name or description contains').fill('UI-SA');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  assert.deepEqual(await cells(page, 1), ['ui-sales']);
  assert.deepEqual(await cells(page, 3), ['v2']);
  // A part of the descriptions: "bulk dataset 2", "… 20" to "… 29".
  await page.getByLabel('Dataset name or description contains').fill('dataset 2');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  const byDesc = (await api('GET', '/api/v1/datasets?contains=dataset%202&max_results=100')).datasets;
  assert.ok(byDesc.length >= 2);
  assert.deepEqual(await cells(page, 1), byDesc.map((d) => d.name));
  assert.ok((await cells(page, 2)).every((t) => t.includes('dataset 2')));
  await page.getByLabel('Dataset name or description contains').fill('ui-bulk-');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  assert.match(page.url(), /contains=ui-bulk-/);
  assert.equal(await page.getByRole('link', { name: 'ui-sales' }).count(), 0);
  const first = await cells(page, 1);
  assert.deepEqual(first, f().bulk.slice(0, 25));
  assert.equal(await page.locator('table.data tbody tr td:nth-child(2)').first().textContent(), 'bulk dataset 0');
  // The second page holds the other five; Previous goes back.
  await page.getByRole('button', { name: 'Next ›' }).click();
  await settled(page);
  assert.deepEqual(await cells(page, 1), f().bulk.slice(25));
  assert.ok(await page.getByRole('button', { name: 'Next ›' }).isDisabled());
  await page.getByRole('button', { name: '‹ Previous' }).click();
  await settled(page);
  assert.deepEqual(await cells(page, 1), f().bulk.slice(0, 25));
  // Sorting by name, descending, on the page.
  await page.getByRole('button', { name: /^Name/ }).click();
  await page.getByRole('button', { name: /^Name/ }).click();
  assert.deepEqual(await cells(page, 1), f().bulk.slice(0, 25).reverse());
  await page.kiln.done('data-list');
});

test('a dataset page lists its versions with rows, tags, messages and validation', async () => {
  const page = await open(`/ui/data/${f().dataset}`);
  await page.getByRole('heading', { level: 1, name: f().dataset }).waitFor();
  assert.ok(await page.getByText('Daily sales by region').isVisible());
  assert.ok(await page.locator('dl.kv .badge', { hasText: 'owner=ana' }).isVisible());
  const rows = page.locator('table.data tbody tr');
  assert.equal(await rows.count(), 2);
  assert.deepEqual(await cells(page, 2), ['v2', 'v1']);
  assert.deepEqual(await cells(page, 6), [String(f().rows['2']), String(f().rows['1'])]);
  assert.deepEqual(await cells(page, 8), ['February reload', 'January load']);
  assert.match(await rows.nth(0).locator('td').nth(6).textContent(), /reviewed=yes/);
  assert.match(await rows.nth(0).locator('td').nth(9).textContent(), /failed/);
  assert.match(await rows.nth(1).locator('td').nth(9).textContent(), /not validated/);
  // Pick both versions: the diff opens on v2 against v1.
  const diff = page.getByRole('button', { name: 'Diff selected versions' });
  assert.ok(await diff.isDisabled());
  await page.getByRole('checkbox', { name: 'Select version 1' }).check();
  await page.getByRole('checkbox', { name: 'Select version 2' }).check();
  await diff.click();
  await settled(page);
  assert.match(page.url(), /\/ui\/data\/ui-sales\/versions\/2\?tab=diff&from=1$/);
  await page.locator('#diff-summary').waitFor();
  await page.kiln.done('data-dataset');
});

test('the diff shows files added, removed and changed in colour, row counts and schema changes', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/2?tab=diff&from=1`);
  await page.locator('#diff-summary').waitFor();
  const stat = (k) => page.locator(`#diff-summary [data-stat="${k}"] .big`).textContent();
  assert.equal(await stat('added'), '1');
  assert.equal(await stat('removed'), '1');
  assert.equal(await stat('changed'), '1');
  assert.equal(await page.locator('tr.diff-added', { hasText: 'notes.txt' }).count(), 1);
  assert.equal(await page.locator('tr.diff-removed', { hasText: 'README.md' }).count(), 1);
  assert.equal(await page.locator('tr.diff-changed', { hasText: 'sales.csv' }).count(), 1);
  // Colours come from the stylesheet: added green, removed red.
  const colour = (sel) => page.locator(sel).first().evaluate((e) => getComputedStyle(e).color);
  assert.notEqual(await colour('tr.diff-added'), await colour('tr.diff-removed'));
  const tables = page.locator('section.block', { has: page.getByRole('heading', { name: 'Tables' }) });
  const row = tables.locator('tbody tr', { hasText: 'sales.csv' });
  const td = await row.locator('td').allTextContents();
  assert.equal(td[2], String(f().rows['1']));
  assert.equal(td[3], String(f().rows['2']));
  assert.equal(td[4], `+${f().rows['2'] - f().rows['1']}`);
  assert.equal(await row.locator('li.diff-added[data-change="added"]', { hasText: 'channel' }).count(), 1);
  // The same numbers as the API.
  const d = await api('GET', '/api/v1/datasets/ui-sales/versions/2/diff?from=1');
  assert.equal(d.tables[0].new_rows, f().rows['2']);
  await page.kiln.done('data-diff');
});

test('version 1 diffs against nothing, and against a newer version when picked', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/1?tab=diff`);
  await page.locator('#diff-summary').waitFor();
  assert.equal(await page.locator('#diff-summary [data-stat="added"] .big').textContent(), '2');
  await page.getByLabel('Compare with version').selectOption('2');
  await settled(page);
  assert.match(page.url(), /from=2/);
  await page.locator('#diff-summary').waitFor();
  assert.equal(await page.locator('tr.diff-added', { hasText: 'README.md' }).count(), 1);
  assert.equal(await page.locator('tr.diff-removed', { hasText: 'notes.txt' }).count(), 1);
  assert.equal(await page.locator('li.diff-removed[data-change="removed"]', { hasText: 'channel' }).count(), 1);
  await page.kiln.done('data-diff-reverse');
});

test('the profile tab shows per-column statistics, a histogram per numeric column and top values', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/2?tab=profile`);
  await page.locator('#profile-charts').waitFor();
  const prof = (await api('GET', '/api/v1/datasets/ui-sales/versions/2/profile')).profile;
  const row = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: 'amount', exact: true }) });
  const td = await row.locator('td').allTextContents();
  assert.equal(td[1], 'float64');
  assert.equal(td[2], String(f().amount['2'].count));
  assert.equal(Number(td[5]), f().amount['2'].min);
  assert.equal(Number(td[6]), f().amount['2'].max);
  // Numeric columns: histograms with the profile's bins.
  for (const col of ['id', 'amount', 'qty']) {
    const chart = page.locator(`.column-chart[data-column="${col}"] svg.chart.hist`);
    await chart.waitFor();
    const c = prof.columns.find((x) => x.field.name === col);
    assert.equal(await chart.locator('rect').count(), c.histogram.counts.length, col);
    assert.ok((await chart.locator('g.tick text').count()) >= 3, col);
    assert.equal(await chart.locator('text.label', { hasText: 'rows' }).count(), 1);
  }
  // Categorical columns: bars of the top values, as counted here.
  const region = page.locator('.column-chart[data-column="region"] svg.chart.bar');
  assert.equal(await region.locator('g.bar').count(), 4);
  for (const [r, n] of Object.entries(f().regions_v2)) {
    assert.equal(await region.locator('g.bar rect title').filter({ hasText: `${r}: ${n}` }).count(), 1, r);
  }
  assert.equal(await page.locator('.column-chart[data-column="channel"] svg.chart.bar g.bar').count(), 2);
  assert.equal(await page.locator('.column-chart svg.chart.hist').count(), 3);
  await page.kiln.done('data-profile');
});

test('recomputing a profile asks first and shows the result', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/1?tab=profile`);
  await page.getByRole('button', { name: 'Recompute profile' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByRole('button', { name: 'Recompute' }).click();
  await page.locator('#toast', { hasText: `Profiled ui-sales@1: ${f().rows['1']} rows` }).waitFor();
  await settled(page);
  await page.locator('#profile-charts').waitFor();
  assert.equal(await page.locator('.column-chart svg.chart.hist').count(), 3);
  assert.equal(await page.locator('.column-chart[data-column="channel"]').count(), 0); // v1 has no channel
  await page.kiln.done('data-profile-recompute');
});

test('the validations tab shows each rule with its badge and observed value', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/2?tab=validations`);
  const block = page.locator('section.validation');
  await block.waitFor();
  assert.match(await block.getByRole('heading', { level: 2 }).textContent(), new RegExp(`${f().validation.suite}\\s*failed`));
  const rows = block.locator('tbody tr');
  assert.equal(await rows.count(), f().validation.rules.length);
  for (const rule of f().validation.rules) {
    const r = rows.filter({ hasText: rule });
    const want = f().validation.failed_rules.includes(rule) ? 'failed' : 'passed';
    assert.equal(await r.locator('.badge').textContent(), want, rule);
  }
  const bad = rows.filter({ hasText: 'range(amount)' });
  assert.ok(await bad.locator('.badge.bad').isVisible());
  assert.match(await bad.textContent(), /min -5, max 64\.3/);
  assert.match(await bad.textContent(), /row 4: -5/);
  await page.kiln.done('data-validations');
});

test('the files tab lists the manifest and filters by path', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/2`);
  // Tabs render after the page settles: wait for the rows.
  await page.locator('table.data tbody tr td', { hasText: 'sales.csv' }).waitFor();
  assert.deepEqual(await cells(page, 1), ['notes.txt', 'sales.csv']);
  const dl = page.getByRole('link', { name: 'Download sales.csv' });
  const href = await dl.getAttribute('href');
  const text = await api('GET', href);
  assert.equal(text.trim().split('\n').length, f().rows['2'] + 1);
  await page.getByLabel('Filter files by path').fill('notes');
  await page.getByRole('button', { name: 'Filter' }).click();
  await settled(page);
  await page.waitForFunction(() => document.querySelectorAll('table.data tbody tr').length === 1);
  assert.deepEqual(await cells(page, 1), ['notes.txt']);
  assert.match(page.url(), /files=notes/);
  await page.kiln.done('data-files');
});

test('the PII tab reports the e-mail column, and the lineage tab the run that used the version', async () => {
  const page = await open(`/ui/data/${f().dataset}/versions/2?tab=pii`);
  const row = page.locator('table.data tbody tr', { hasText: 'email' });
  await row.first().waitFor();
  const td = await row.first().locator('td').allTextContents();
  assert.deepEqual(td.slice(0, 4), ['sales.csv', 'email', 'email', String(f().rows['2'])]);
  await page.getByRole('tab', { name: /Runs and models/ }).click();
  await settled(page);
  const run = page.getByRole('link', { name: 'train-on-sales' });
  await run.waitFor();
  assert.equal(await run.getAttribute('href'), `/ui/experiments/${f().experiment_id}/runs/${f().run_id}`);
  assert.ok(await page.locator('td', { hasText: 'training' }).isVisible());
  const lin = page.getByRole('link', { name: 'Show the lineage graph' });
  assert.equal(await lin.getAttribute('href'), '/ui/lineage?kind=dataset_version&id=ui-sales%402');
  await page.kiln.done('data-lineage');
});
