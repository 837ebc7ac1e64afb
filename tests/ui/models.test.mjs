// The model registry in the browser: the model list (name filter, sorting,
// paging), a model's page (tags, aliases, versions with their runs, gate
// and approval policies, approval requests), setting and deleting an
// alias (and a gate's or an approval policy's refusal shown), and a
// version's tabs: overview, gate results, feature importance, model card
// and datasets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { env, open, settled, api, artifactsDir } from './harness.mjs';

const f = () => env.facts.models;
const M = () => f().model;
const mlflowGet = (path) => api('GET', `/api/2.0/mlflow/${path}`);
const aliasesOf = async (name) => Object.fromEntries(((await mlflowGet(`registered-models/get?name=${encodeURIComponent(name)}`)).registered_model.aliases || []).map((a) => [a.alias, a.version]));
// openPage opens path and waits until the page has rendered (the router
// marks <main> busy only once the app has signed in and started routing).
async function openPage(path) {
  const page = await open(path);
  await page.locator('#main h1').waitFor();
  await settled(page);
  return page;
}

// clean asserts the page printed no stray null/undefined/[object …].
async function clean(page) {
  const text = await page.locator('#main').innerText();
  assert.doesNotMatch(text, /\bnull\b|\bundefined\b|\[object |NaN/, 'stray values on the page');
}
const col = (page, n) => page.locator(`table.data tbody tr td:nth-child(${n})`).allTextContents();

test('model list filters by name, sorts and pages', async () => {
  const page = await openPage('/ui/models?name=ui-models');
  const rows = page.locator('table.data tbody tr');
  assert.equal(await rows.count(), 3);
  assert.deepEqual(await col(page, 1), f().models); // by name, ascending
  const churn = rows.filter({ hasText: M() });
  assert.equal(await churn.locator('td:nth-child(2)').textContent(), 'v3');
  assert.equal(await churn.locator('td:nth-child(3)').textContent(), '@challenger → v2 @champion → v1');
  assert.ok(await churn.getByText('team=retention').isVisible());
  // Sorting by the latest version (within the page): 3, 1, none.
  await page.getByRole('button', { name: /^Latest version/ }).click();
  await settled(page);
  assert.match(page.url(), /sort=latest/);
  assert.deepEqual(await col(page, 1), ['ui-models-churn', 'ui-models-fraud', 'ui-models-empty']);
  // Name descending, ordered by the server.
  await page.getByRole('button', { name: /^Name/ }).click();
  await settled(page);
  await page.getByRole('button', { name: /^Name/ }).click();
  await settled(page);
  assert.match(page.url(), /sort=name&dir=desc/);
  assert.deepEqual(await col(page, 1), [...f().models].reverse());
  // The name filter.
  await page.getByLabel('Search models by name').fill('fraud');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  assert.deepEqual(await col(page, 1), ['ui-models-fraud']);
  assert.match(page.url(), /name=fraud/);
  await clean(page);
  await page.kiln.done('models-list');
});

test('model list pages forwards and back', async () => {
  const page = await openPage('/ui/models?name=ui-models&page_size=2');
  assert.deepEqual(await col(page, 1), ['ui-models-churn', 'ui-models-empty']);
  assert.ok(await page.getByRole('button', { name: '‹ Previous' }).isDisabled());
  await page.getByRole('button', { name: 'Next ›' }).click();
  await settled(page);
  assert.deepEqual(await col(page, 1), ['ui-models-fraud']);
  assert.match(page.url(), /page_token=/);
  assert.ok(await page.getByRole('button', { name: 'Next ›' }).isDisabled());
  assert.equal(await page.locator('nav.pager span').textContent(), 'Models 3–3');
  await page.getByRole('button', { name: '‹ Previous' }).click();
  await settled(page);
  assert.deepEqual(await col(page, 1), ['ui-models-churn', 'ui-models-empty']);
  await clean(page);
  await page.kiln.done('models-list-pages');
});

test('a model page shows description, tags, aliases, versions with their runs, and its policies', async () => {
  const page = await openPage(`/ui/models/${M()}`);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), M());
  assert.ok(await page.getByText('Predicts which customers leave next month.').isVisible());
  const tags = page.locator('section.block', { has: page.getByRole('heading', { name: 'Tags', exact: true }) });
  assert.deepEqual(await tags.locator('tbody tr td').allTextContents(), ['team', 'retention']);
  const aliases = page.locator('section.block', { has: page.getByRole('heading', { name: 'Aliases' }) });
  assert.deepEqual(await aliases.locator('tbody tr td:nth-child(1)').allTextContents(), ['@challenger', '@champion']);
  assert.deepEqual(await aliases.locator('tbody tr td:nth-child(2)').allTextContents(), ['v2', 'v1']);
  // Versions, newest first, each with its source run's link.
  const versions = page.locator('section.block', { has: page.getByRole('heading', { name: 'Versions' }) });
  const vrows = versions.locator('tbody tr');
  assert.equal(await vrows.count(), 3);
  assert.deepEqual(await versions.locator('tbody tr td:nth-child(1)').allTextContents(), ['v3', 'v2', 'v1']);
  for (const v of f().versions) {
    const row = vrows.nth(3 - v.version);
    const run = row.getByRole('link', { name: v.run_name });
    assert.equal(await run.getAttribute('href'), `/ui/experiments/${f().experiment_id}/runs/${v.run_id}`);
    assert.equal(await row.locator('td:nth-child(3)').textContent(), 'READY');
    // the gate's summary tag as a badge
    const want = f().gate[String(v.version)].passed ? 'passed' : 'failed';
    assert.equal(await row.locator('td:nth-child(7) .badge').textContent(), want);
    assert.match(await row.locator(`td:nth-child(7) .badge.${want === 'passed' ? 'good' : 'bad'}`).textContent(), /./);
  }
  assert.equal(await vrows.nth(0).locator('td:nth-child(6)').textContent(), '');
  assert.equal(await vrows.nth(1).locator('td:nth-child(6)').textContent(), '@challenger');
  assert.equal(await vrows.nth(2).locator('td:nth-child(6)').textContent(), '@champion');
  assert.ok(await vrows.nth(1).getByText('validated_by=ui-seed').isVisible());
  // The gate policy, the approval policy and the pending request.
  const gates = page.locator('section.block', { has: page.getByRole('heading', { name: 'Gate policies' }) });
  assert.equal(await gates.locator('tbody tr td:nth-child(1)').textContent(), f().policy);
  assert.match(await gates.locator('tbody tr').textContent(), /@champion/);
  const approvals = page.locator('section.block', { has: page.getByRole('heading', { name: 'Approvals' }) });
  assert.ok(await approvals.getByRole('cell', { name: f().approval_policy }).isVisible());
  const req = approvals.locator('tbody tr', { hasText: f().approval_request });
  assert.equal(await req.locator('.badge').textContent(), 'pending');
  assert.match(await req.textContent(), /@production/);
  assert.match(await req.textContent(), /0 of 1/);
  await clean(page);
  await page.kiln.done('models-model');
});

test('setting and deleting an alias asks first and changes the registry', async () => {
  const page = await openPage(`/ui/models/${M()}`);
  await page.getByLabel('Alias', { exact: true }).fill('staging');
  await page.getByLabel('Version', { exact: true }).selectOption('3');
  await page.getByRole('button', { name: 'Set alias' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  assert.match(await dlg.textContent(), /@staging of ui-models-churn to version 3/);
  // Cancel changes nothing.
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await aliasesOf(M())).staging, undefined);
  await page.getByRole('button', { name: 'Set alias' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Set alias' }).click();
  await page.locator('#toast.show').waitFor();
  await settled(page);
  assert.equal((await aliasesOf(M())).staging, '3');
  const aliases = page.locator('section.block', { has: page.getByRole('heading', { name: 'Aliases' }) });
  await aliases.getByRole('cell', { name: '@staging' }).waitFor();
  // Delete it again.
  await page.getByRole('button', { name: 'Delete alias staging' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete alias' }).click();
  await page.locator('#toast.show', { hasText: 'Deleted @staging' }).waitFor();
  await settled(page);
  assert.equal((await aliasesOf(M())).staging, undefined);
  assert.equal(await aliases.getByRole('cell', { name: '@staging' }).count(), 0);
  await clean(page);
  await page.kiln.done('models-alias-set-delete');
});

test('an alias a gate or an approval policy protects is refused with the reason', async () => {
  const page = await openPage(`/ui/models/${M()}/versions/3`);
  await page.getByLabel('Alias', { exact: true }).fill('champion');
  await page.getByRole('button', { name: 'Set alias to v3' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Set alias' }).click();
  const alert = page.locator('.alias-result [role="alert"]');
  await alert.waitFor();
  assert.match(await alert.textContent(), new RegExp(`Gate policy '${f().policy}' protects alias 'champion'.*version 3 failed`));
  assert.equal((await aliasesOf(M())).champion, '1');
  // Approval required: @production of version 2.
  const page2 = await openPage(`/ui/models/${M()}/versions/2`);
  await page2.getByLabel('Alias', { exact: true }).fill('production');
  await page2.getByRole('button', { name: 'Set alias to v2' }).click();
  await page2.getByRole('dialog').getByRole('button', { name: 'Set alias' }).click();
  const alert2 = page2.locator('.alias-result [role="alert"]');
  await alert2.waitFor();
  assert.match(await alert2.textContent(), new RegExp(`approval policy '${f().approval_policy}'.*needs 1 approval`));
  assert.equal((await aliasesOf(M())).production, undefined);
  // The only console errors are the refused requests (400s).
  for (const p of [page, page2]) {
    assert.ok(p.kiln.errors.length > 0 && p.kiln.errors.every((e) => /status of 400/.test(e)), p.kiln.errors.join('\n'));
  }
  await clean(page2);
  await page2.kiln.done('models-alias-refused-approval', { allowErrors: true });
  await clean(page);
  await page.kiln.done('models-alias-refused-gate', { allowErrors: true });
});

test('a version overview shows its fields, run and lineage links', async () => {
  const v = f().versions[1];
  const page = await openPage(`/ui/models/${M()}/versions/2`);
  assert.equal(await page.getByRole('tab', { selected: true }).textContent(), 'Overview');
  assert.match(await page.getByRole('heading', { level: 1 }).textContent(), /ui-models-churn v2 READY @challenger/);
  const dd = (label) => page.locator('dl.kv dt', { hasText: new RegExp(`^${label}$`) }).locator('xpath=following-sibling::dd[1]');
  assert.equal(await dd('Description').textContent(), 'Stronger regularisation (C=0.05).');
  assert.equal(await dd('Model URI').textContent(), `models:/${M()}/2`);
  assert.equal(await dd('Source run').getByRole('link').getAttribute('href'), `/ui/experiments/${f().experiment_id}/runs/${v.run_id}`);
  assert.equal(await dd('Lineage').getByRole('link').getAttribute('href'), `/ui/lineage?kind=model_version&id=${encodeURIComponent(`${M()}/2`)}`);
  assert.ok(await page.getByRole('cell', { name: 'validated_by' }).isVisible());
  // The tab lives in the address.
  await page.getByRole('tab', { name: 'Datasets' }).click();
  await settled(page);
  assert.match(page.url(), /tab=datasets/);
  await clean(page);
  await page.kiln.done('models-version-overview');
});

test('gate results show each check with a pass or fail badge and its values', async () => {
  const page = await openPage(`/ui/models/${M()}/versions/3?tab=gates`);
  const block = page.locator('section.gate-result[data-latest="true"]');
  await block.waitFor();
  assert.equal(await block.getAttribute('data-result'), f().gate['3'].id);
  assert.equal(await block.locator('h3 .badge').first().textContent(), 'failed');
  assert.ok(await block.locator('h3 .badge.bad').isVisible());
  const checks = block.locator('table.data', { has: page.locator('caption', { hasText: 'Checks of' }) });
  const rows = checks.locator('tbody tr');
  const want = f().gate['3'].checks;
  assert.equal(await rows.count(), want.length);
  for (let i = 0; i < want.length; i++) {
    const c = want[i];
    const row = rows.nth(i);
    assert.equal(await row.locator('td:nth-child(1) .badge').textContent(), c.passed ? 'passed' : 'failed');
    assert.equal(await row.locator(`td:nth-child(1) .badge.${c.passed ? 'good' : 'bad'}`).count(), 1);
    assert.equal(await row.locator('td:nth-child(2)').textContent(), `${c.slice ? `${c.slice}: ` : ''}${c.metric} ${c.kind}`);
    assert.match(await row.locator('td:nth-child(3)').textContent(), /\d/); // the compared value
  }
  assert.ok(want.some((c) => !c.passed));
  // The failed check of the worsening against the champion, with its numbers.
  const worse = rows.filter({ hasText: 'roc_auc max_worsening' });
  assert.equal(await worse.locator('td:nth-child(4)').textContent(), '0.05');
  assert.match(await worse.locator('td:nth-child(7)').textContent(), /exceeds max 0.05/);
  assert.match(await block.textContent(), /v1 \(@champion\)/);
  assert.ok(await block.locator('table.confusion').isVisible());
  // Version 1: passed, rubber-stamped (nothing to compare with).
  const page1 = await openPage(`/ui/models/${M()}/versions/1?tab=gates`);
  const b1 = page1.locator('section.gate-result[data-latest="true"]');
  await b1.waitFor();
  assert.equal(await b1.locator('h3 .badge.good').textContent(), 'passed');
  assert.ok(await b1.getByText('rubber stamp', { exact: true }).isVisible());
  assert.equal(await b1.locator('tbody tr td:nth-child(1) .badge.bad').count(), 0);
  await clean(page1);
  await page1.kiln.done('models-gates-v1');
  await clean(page);
  await page.kiln.done('models-gates');
});

test('explanations draw the stored feature importance as bars, most important first', async () => {
  const page = await openPage(`/ui/models/${M()}/versions/2?tab=explanations`);
  const chart = page.locator('.importance-chart svg.chart.bar');
  await chart.waitFor();
  const bars = chart.locator('g.bar');
  assert.equal(await bars.count(), f().importance.length);
  assert.deepEqual(await chart.locator('g.bar text:not(.value)').allTextContents(), f().importance);
  const widths = (await chart.locator('g.bar rect').evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('width')))));
  for (let i = 1; i < widths.length; i++) assert.ok(widths[i] <= widths[i - 1], `bar ${i} is wider than bar ${i - 1}: ${widths}`);
  assert.ok(widths[0] > widths[widths.length - 1]);
  assert.equal(f().importance[0], 'support_calls'); // the seed's strongest feature
  assert.equal(await chart.locator('g.bar rect title').first().textContent(), `support_calls: ${Number(f().importance_values[0].toPrecision(4))}`);
  assert.match(await chart.locator('text.label').textContent(), /mean \|SHAP value\|/);
  assert.ok((await chart.locator('g.tick text').count()) >= 3);
  // A version without one says how to make it.
  const page1 = await openPage(`/ui/models/${M()}/versions/1?tab=explanations`);
  await page1.getByText(/No feature importance is stored/).waitFor();
  assert.equal(await page1.locator('svg.chart.bar').count(), 0);
  await clean(page1);
  await page1.kiln.done('models-explain-none');
  await clean(page);
  await page.kiln.done('models-explain');
});

test('the model card renders its sections, and as Markdown', async () => {
  const page = await openPage(`/ui/models/${M()}/versions/2?tab=card`);
  const card = page.locator('.model-card');
  await card.waitFor();
  for (const h of ['Model details', 'Model parameters', 'Quantitative analysis', 'Considerations']) {
    assert.ok(await card.getByRole('heading', { name: h, exact: true }).isVisible(), h);
  }
  assert.ok(await card.getByText('Scores accounts by churn risk.').isVisible());
  assert.ok(await card.getByText('Apache-2.0').isVisible());
  assert.ok(await card.getByText('sklearn.linear_model.LogisticRegression').isVisible());
  assert.ok(await card.locator('.card-considerations li', { hasText: 'Trained on synthetic accounts only.' }).isVisible());
  assert.ok(await card.locator('.card-parameters td', { hasText: 'support_calls' }).first().isVisible());
  const perf = card.locator('.card-quantitative tbody tr', { hasText: `gate:${f().policy}` });
  assert.ok((await perf.count()) >= 3);
  assert.ok(await card.locator('.card-quantitative td', { hasText: 'region=north' }).isVisible());
  await clean(page);
  await page.screenshot({ path: join(artifactsDir, 'models-card-sections.png'), fullPage: true });
  // the same card as Markdown
  await page.getByLabel('Show as').selectOption('markdown');
  await settled(page);
  assert.match(page.url(), /card=markdown/);
  const md = page.locator('.tabpanel pre.code');
  await md.waitFor();
  assert.match(await md.textContent(), /Scores accounts by churn risk\./);
  assert.match(await md.textContent(), /^#/m);
  await clean(page);
  await page.kiln.done('models-card');
});

test('the datasets tab lists the dataset versions the version was trained on', async () => {
  const v = f().versions[1];
  const page = await openPage(`/ui/models/${M()}/versions/2?tab=datasets`);
  const ds = page.getByRole('link', { name: `${f().dataset}@1` });
  await ds.waitFor();
  assert.equal(await ds.getAttribute('href'), `/ui/data/${f().dataset}/versions/1`);
  const row = page.locator('table.data tbody tr', { hasText: `${f().dataset}@1` });
  assert.equal(await row.locator('td:nth-child(2)').textContent(), 'training run');
  assert.equal(await row.getByRole('link', { name: v.run_name }).getAttribute('href'), `/ui/experiments/${f().experiment_id}/runs/${v.run_id}`);
  await clean(page);
  await page.kiln.done('models-datasets');
});
