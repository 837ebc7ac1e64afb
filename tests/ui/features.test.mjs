// The feature store in the browser: entities and feature views, a view's
// spec, versions and materializations, the Materialize action and the
// online lookup form, whose answer must match the seeded data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.features;
const section = (page, name) => page.locator('section.block', { has: page.getByRole('heading', { level: 2, name, exact: true }) });

test('the feature store lists entities and feature views, and filters by name', async () => {
  const page = await open('/ui/features');
  const ents = section(page, 'Entities');
  await ents.waitFor();
  const cust = ents.locator('tbody tr', { hasText: 'ui-customer' });
  const td = await cust.locator('td').allTextContents();
  assert.equal(td[1], f().entities['ui-customer'].join(', '));
  assert.equal(td[2], 'a paying customer');
  assert.match(td[3], /ui_customer_stats/);
  assert.match(await ents.locator('tbody tr', { hasText: 'ui-store' }).textContent(), /no view/);
  const views = section(page, 'Feature views');
  const stats = views.locator('tbody tr', { has: page.getByRole('link', { name: f().view, exact: true }) });
  const vt = await stats.locator('td').allTextContents();
  assert.match(vt[3], /^3: orders_7d, spend_7d, tier$/);
  assert.equal(vt[4], 'dataset ui-feat-stats@latest');
  assert.equal(vt[5], '90 d');
  assert.equal(vt[7], String(f().view_versions));
  assert.match(vt[8], new RegExp(`succeeded.*${f().materialization.keys_written} keys`));
  const tiers = views.locator('tbody tr', { has: page.getByRole('link', { name: f().unmaterialized_view, exact: true }) });
  assert.match(await tiers.locator('td').nth(8).textContent(), /never/);
  assert.equal(await tiers.locator('td').nth(5).textContent(), 'no limit');
  // Filter.
  await page.getByLabel('Filter entities and feature views by name').fill('tiers');
  await page.getByRole('button', { name: 'Filter' }).click();
  await settled(page);
  assert.match(page.url(), /q=tiers/);
  assert.equal(await section(page, 'Feature views').locator('tbody tr').count(), 1);
  assert.ok(await page.getByRole('link', { name: f().unmaterialized_view }).isVisible());
  assert.equal(await page.getByRole('link', { name: f().view, exact: true }).count(), 0);
  await page.kiln.done('features-list');
});

test('a feature view page shows its spec, versions and materializations', async () => {
  const page = await open('/ui/features');
  await section(page, 'Feature views').getByRole('link', { name: f().view, exact: true }).click();
  await settled(page);
  assert.match(page.url(), /\/ui\/features\/views\/ui_customer_stats$/);
  await page.getByRole('heading', { level: 1, name: new RegExp(f().view) }).waitFor();
  const dl = page.locator('dl.kv');
  assert.match(await dl.textContent(), /ui-customer\s*\(customer_id\)/);
  assert.match(await dl.textContent(), /TTL90 d/);
  assert.equal(await page.getByRole('link', { name: 'dataset ui-feat-stats@latest' }).getAttribute('href'), '/ui/data/ui-feat-stats');
  const feats = section(page, 'Features').locator('tbody tr');
  assert.equal(await feats.count(), 3);
  const types = await section(page, 'Features').locator('tbody tr td:nth-child(2)').allTextContents();
  assert.deepEqual(types, ['int64', 'float64', 'string']);
  assert.equal(await section(page, 'Features').locator('tbody tr', { hasText: 'orders_7d' }).locator('td').nth(2).textContent(), '0');
  assert.equal(await section(page, 'Versions').locator('tbody tr').count(), f().view_versions);
  const mats = section(page, 'Materializations').locator('tbody tr');
  assert.equal(await mats.count(), 1);
  const mt = await mats.first().locator('td').allTextContents();
  assert.equal(mt[1], 'succeeded');
  assert.equal(mt[4], `dataset ${f().materialization.source}`);
  assert.equal(mt[5], String(f().materialization.rows_read));
  assert.equal(mt[6], String(f().materialization.keys_written));
  // An older version, by number.
  await section(page, 'Versions').getByRole('link', { name: 'v1' }).click();
  await settled(page);
  assert.match(page.url(), /version=1/);
  assert.match(await page.locator('dl.kv').textContent(), /TTL30 d/);
  assert.ok(await page.getByRole('status').filter({ hasText: 'the live version is 2' }).isVisible());
  await page.kiln.done('features-view');
});

test('Materialize asks first, runs, and the new run is listed', async () => {
  const view = f().unmaterialized_view;
  const page = await open(`/ui/features/views/${view}`);
  const sec = section(page, 'Materializations');
  await sec.getByText('Not materialized yet').waitFor();
  // Cancelling changes nothing.
  await sec.getByRole('button', { name: 'Materialize' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await api('GET', `/api/v1/feature-views/${view}/materializations`)).materializations.length, 0);
  await sec.getByRole('button', { name: 'Materialize' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Materialize' }).click();
  await page.locator('#toast', { hasText: `Materialized ${view}: ${f().keys} keys written` }).waitFor();
  await settled(page);
  const rows = section(page, 'Materializations').locator('tbody tr');
  await rows.first().locator('.badge', { hasText: 'succeeded' }).waitFor();
  assert.equal(await rows.count(), 1);
  const ms = (await api('GET', `/api/v1/feature-views/${view}/materializations`)).materializations;
  assert.equal(ms.length, 1);
  assert.equal(ms[0].state, 'succeeded');
  assert.equal(ms[0].keys_written, f().keys);
  assert.equal(await rows.first().locator('td').nth(6).textContent(), String(f().keys));
  await page.kiln.done('features-materialize');
});

test('the online lookup answers the latest values of the keys entered', async () => {
  const page = await open(`/ui/features/views/${f().view}`);
  await page.getByLabel('customer_id').fill('1, 2, 7, 999');
  await page.getByRole('button', { name: 'Look up' }).click();
  await settled(page);
  assert.match(page.url(), /key\.customer_id=1%2C\+?2/);
  const rows = page.locator('#lookup-result tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 4);
  for (const [i, id] of ['1', '2', '7'].entries()) {
    const want = f().latest[id];
    const r = rows.nth(i);
    assert.equal(await r.locator('[data-key="customer_id"]').textContent(), id);
    assert.equal(await r.locator('[data-feature="orders_7d"] .fv').textContent(), String(want.orders_7d), `orders of ${id}`);
    assert.equal(Number(await r.locator('[data-feature="spend_7d"] .fv').textContent()), want.spend_7d, `spend of ${id}`);
    assert.equal(await r.locator('[data-feature="tier"] .fv').textContent(), want.tier, `tier of ${id}`);
    assert.equal(await r.locator('[data-feature="tier"]').getAttribute('data-status'), 'PRESENT');
  }
  const missing = rows.nth(3);
  assert.equal(await missing.locator('[data-feature="orders_7d"]').getAttribute('data-status'), 'NOT_FOUND');
  assert.equal(await missing.locator('[data-feature="orders_7d"] .fv').textContent(), 'null');
  // With defaults, the missing key's orders_7d is its default (0); only
  // the features picked are asked for.
  await page.getByLabel('Feature spend_7d').uncheck();
  await page.getByLabel('Feature tier').uncheck();
  await page.getByLabel('Serve defaults where there is no value').check();
  await page.getByRole('button', { name: 'Look up' }).click();
  await settled(page);
  await page.locator('#lookup-result tbody tr').first().waitFor();
  assert.equal(await page.locator('#lookup-result [data-feature="spend_7d"]').count(), 0);
  const d = page.locator('#lookup-result tbody tr').nth(3).locator('[data-feature="orders_7d"]');
  assert.equal(await d.getAttribute('data-status'), 'DEFAULT');
  assert.equal(await d.locator('.fv').textContent(), '0');
  // The page answers what the API answers.
  const res = await api('POST', '/api/v1/features/online', { features: [`${f().view}:orders_7d`], entities: { customer_id: [1, 2, 7, 999] } });
  assert.deepEqual(res.results[1].values.slice(0, 3), ['1', '2', '7'].map((id) => f().latest[id].orders_7d));
  await page.kiln.done('features-lookup');
});
