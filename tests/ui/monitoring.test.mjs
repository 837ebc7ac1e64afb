// Monitoring in the browser: the monitors list (last result, drift badge,
// firing-alert summary, endpoint filter), a monitor's page (drift share and
// per-feature score charts with their thresholds, the latest tests,
// reference-against-current histograms, performance per window from
// labels, the run history, Run now, alert rules) and the alerts page
// (active alerts, history with start and resolve times, state and monitor
// filters, receivers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.monitoring;
const monPath = () => `/ui/monitoring/monitors/${f().monitor}`;
const results = async (name = f().monitor) => (await api('GET', `/api/v1/monitors/${name}/results`)).results;
const rowOf = (page, scope, first) => page.locator(`${scope} tbody tr`).filter({ has: page.locator('td:first-child', { hasText: new RegExp(`^${first}$`) }) });

test('the monitors list shows each monitor\'s last result, the firing alerts, and filters by endpoint', async () => {
  const page = await open('/ui/monitoring');
  await page.locator('#monitors').getByRole('link', { name: f().monitor, exact: true }).waitFor();
  const drift = page.locator('#monitors tbody tr', { has: page.getByRole('link', { name: f().monitor, exact: true }) });
  assert.equal(await drift.locator('.badge', { hasText: 'drift detected' }).count(), 1);
  assert.equal(await drift.locator('.badge', { hasText: /^drift$/ }).count(), 1);
  assert.match(await drift.textContent(), new RegExp(`${f().drifted.length} of ${f().features.length}`));
  const traffic = page.locator('#monitors tbody tr', { has: page.getByRole('link', { name: f().monitor2, exact: true }) });
  assert.equal(await traffic.locator('.badge', { hasText: 'no drift' }).count(), 1);
  // The summary counts what the server holds.
  const firing = (await api('GET', '/api/v1/alerts')).alerts.filter((a) => a.state === 'firing');
  assert.ok(firing.some((a) => a.rule === f().drift_rule));
  assert.equal(await page.locator('#mon-firing .big').textContent(), String(firing.length));
  assert.equal(await page.locator('#mon-count .big').textContent(), '2');
  const alertRow = page.locator('#mon-alerts tbody tr', { hasText: f().drift_rule });
  assert.equal(await alertRow.locator('.badge', { hasText: 'firing' }).count(), 1);
  assert.equal(await alertRow.locator('.badge', { hasText: 'critical' }).count(), 1);
  // Filter by endpoint: the address keeps it, the server filters.
  await page.getByLabel('Endpoint').selectOption(f().endpoint2);
  await settled(page);
  assert.match(page.url(), new RegExp(`endpoint=${f().endpoint2}`));
  assert.equal(await page.locator('#monitors').getByRole('link', { name: f().monitor, exact: true }).count(), 0);
  assert.ok(await page.locator('#monitors').getByRole('link', { name: f().monitor2, exact: true }).isVisible());
  assert.equal(await page.locator('#mon-firing .big').textContent(), '0');
  assert.equal(await page.locator('#mon-count .big').textContent(), '1');
  await page.kiln.done('monitoring-list');
});

test('a monitor page charts the drift share and every feature\'s score against its threshold', async () => {
  const page = await open(monPath());
  const checked = (await results()).filter((r) => r.drift);
  assert.ok(checked.length >= 3, `${checked.length} results compared data`);
  const share = page.locator('[data-chart="drift-share"] svg.chart');
  await share.waitFor();
  assert.equal(await share.locator('g.series').count(), 2);
  assert.equal(await share.locator('g.series path.dashed').count(), 1);
  assert.equal(await share.locator('g.series').first().locator('circle').count(), checked.length);
  assert.ok(await share.locator('g.tick text').count() >= 4);
  assert.equal(await share.locator('text.label', { hasText: 'share of features' }).count(), 1);
  // One chart per feature: its score and its threshold (dashed).
  const charts = page.locator('.feature-chart');
  assert.equal(await charts.count(), f().features.length);
  for (const name of f().features) {
    const c = page.locator(`.feature-chart[data-feature="${name}"] svg.chart`);
    assert.equal(await c.locator('g.series').count(), 2, name);
    assert.equal(await c.locator('g.series path.dashed').count(), 1, name);
    assert.equal(await c.locator('g.series').first().locator('circle').count(), checked.length, name);
  }
  // The latest tests: drifted features show drifted, the stable one does not.
  const latest = checked[checked.length - 1].drift.features;
  assert.equal(await page.locator('#latest-tests tbody tr').count(), latest.length);
  for (const name of f().drifted) assert.equal(await rowOf(page, '#latest-tests', name).locator('.badge', { hasText: 'drifted' }).count(), 1, name);
  for (const name of f().stable) assert.equal(await rowOf(page, '#latest-tests', name).locator('.badge', { hasText: /^ok$/ }).count(), 1, name);
  const plan = latest.find((x) => x.name === 'plan');
  const planRow = await rowOf(page, '#latest-tests', 'plan').textContent();
  assert.match(planRow, new RegExp(plan.method));
  assert.match(planRow, /p-value/);
  await page.kiln.done('monitoring-drift');
});

test('distributions show reference against current for a chosen feature', async () => {
  const page = await open(monPath());
  // A feature's name in the latest tests opens its distribution.
  await rowOf(page, '#latest-tests', 'f0').getByRole('button', { name: 'f0' }).click();
  await settled(page);
  assert.match(page.url(), /tab=distributions/);
  assert.match(page.url(), /feature=f0/);
  const checked = (await results()).filter((r) => r.drift);
  const last = checked[checked.length - 1].drift.features;
  const hist = page.locator('[data-chart="distribution"] svg.chart.hist');
  await hist.waitFor();
  const f0 = last.find((x) => x.name === 'f0').histogram;
  assert.equal(await hist.locator('rect').count(), 2 * f0.ref.length);
  assert.deepEqual(await page.locator('[data-chart="distribution"] .legend li').allTextContents(), [' reference', ' current']);
  await page.getByLabel('Feature').selectOption('plan');
  await settled(page);
  assert.match(page.url(), /feature=plan/);
  const plan = last.find((x) => x.name === 'plan').histogram;
  assert.ok(plan.categories.length >= 3);
  await page.locator('[data-chart="distribution"][data-feature="plan"]').waitFor();
  assert.equal(await hist.locator('rect').count(), 2 * plan.categories.length);
  for (const c of ['basic', 'plus', 'pro']) assert.equal(await hist.locator('text', { hasText: c }).count(), 1, c);
  assert.ok(await page.locator('dd .badge', { hasText: 'drifted' }).isVisible());
  // An earlier run: its own histogram and verdict.
  const first = checked[0];
  const firstPlan = first.drift.features.find((x) => x.name === 'plan');
  await page.getByLabel('Run').selectOption(first.id);
  await settled(page);
  assert.match(page.url(), new RegExp(`run=${first.id}`));
  await page.locator('[data-chart="distribution"][data-feature="plan"]').waitFor();
  assert.equal(await page.locator('dd .badge', { hasText: firstPlan.drift ? 'drifted' : /^ok$/ }).count(), 1);
  assert.match(await page.locator('dl.kv').last().textContent(), new RegExp(`${firstPlan.cur_count} current`));
  await page.kiln.done('monitoring-distributions');
});

test('performance charts accuracy and F1 per window from the labels', async () => {
  const mi = await api('GET', `/api/v1/monitors/${f().monitor}`);
  const perf = await api('GET', `/api/v1/endpoints/${f().endpoint}/performance?from=${mi.creation_time}&window=1s&metrics=accuracy,f1`);
  const wins = perf.windows.filter((w) => w.labelled > 0);
  assert.ok(wins.length >= 2, `${wins.length} labelled windows`);
  const page = await open(`${monPath()}?tab=performance&perf_window=1s`);
  const chart = page.locator('[data-chart="performance"] svg.chart');
  await chart.waitFor();
  assert.equal(await chart.locator('g.series').count(), f().metrics.length);
  for (const m of f().metrics) assert.equal(await chart.locator(`g.series[data-series="${m}"] circle`).count(), wins.length, m);
  assert.equal(await page.locator('[data-chart="performance"] .legend li').count(), 2);
  assert.equal(await page.locator('.tabpanel table.data tbody tr').count(), wins.length);
  assert.match(await page.locator('dl.kv').last().textContent(), new RegExp(`${perf.labelled} of ${perf.predictions}`));
  // The window is a choice kept in the address.
  await page.getByLabel('Window', { exact: true }).selectOption('1h');
  await settled(page);
  assert.match(page.url(), /perf_window=1h/);
  // One window: its metrics as bars.
  const bars = page.locator('[data-chart="performance"] svg.chart.bar');
  await bars.waitFor();
  assert.equal(await bars.locator('g.bar').count(), f().metrics.length);
  for (const m of f().metrics) assert.equal(await bars.locator('g.bar text', { hasText: new RegExp(`^${m}$`) }).count(), 1, m);
  await page.kiln.done('monitoring-performance');
});

test('Run now asks first, then adds a result and shows it', async () => {
  const before = (await results()).length;
  const page = await open(`${monPath()}?tab=runs`);
  const rows = page.locator('.tabpanel table.data tbody tr');
  assert.equal(await rows.count(), before);
  // Cancelled: nothing runs.
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await results()).length, before);
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Run now' }).click();
  await page.locator('#run-result .notice').waitFor();
  await settled(page);
  const after = await results();
  assert.equal(after.length, before + 1);
  assert.equal(await rows.count(), before + 1);
  const newest = after[after.length - 1];
  assert.equal(newest.status, 'drift'); // the window still holds the shifted traffic
  assert.equal(await page.locator('#run-result .notice .badge', { hasText: 'drift' }).count(), 1);
  assert.equal(await page.getByRole('tab', { name: `Runs (${before + 1})` }).count(), 1);
  // The newest run is the first row (newest first).
  assert.equal(await rows.first().locator('.badge', { hasText: /^drift$/ }).count(), 1);
  await page.kiln.done('monitoring-run-now');
});

test('a monitor\'s alert rules show which are firing', async () => {
  const page = await open(`${monPath()}?tab=alerts`);
  const rules = page.locator('.tabpanel section').first();
  await rules.locator('tbody tr').first().waitFor();
  assert.equal(await rules.locator('tbody tr').count(), 2);
  assert.equal(await rowOf(page, '.tabpanel section:first-of-type', f().drift_rule).locator('.badge', { hasText: 'firing' }).count(), 1);
  assert.equal(await rowOf(page, '.tabpanel section:first-of-type', 'low-accuracy').locator('.badge', { hasText: 'inactive' }).count(), 1);
  await page.kiln.done('monitoring-rules');
});

test('the alerts page shows firing alerts, the history with start and resolve times, filters, and receivers', async () => {
  const page = await open('/ui/monitoring/alerts');
  const active = page.locator('#active-alerts tbody tr', { hasText: f().drift_rule });
  await active.waitFor();
  assert.equal(await active.locator('.badge', { hasText: 'firing' }).count(), 1);
  assert.match(await active.textContent(), new RegExp(`endpoint=${f().endpoint}`));
  const events = (await api('GET', '/api/v1/alerts/history?limit=200')).events;
  assert.equal(await page.locator('#alert-history tbody tr').count(), events.length);
  // The traffic alert fired, then resolved: both rows give both times.
  const resolvedRow = page.locator('#alert-history tbody tr', { hasText: f().traffic_rule }).filter({ has: page.locator('.badge', { hasText: /^resolved$/ }) });
  assert.equal(await resolvedRow.count(), 1);
  const cells = await resolvedRow.locator('td').allTextContents();
  const started = cells[7], resolved = cells[8];
  assert.match(started, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.match(resolved, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  const firingRow = page.locator('#alert-history tbody tr', { hasText: f().drift_rule }).filter({ has: page.locator('.badge', { hasText: /^firing$/ }) });
  assert.ok(await firingRow.count() >= 1);
  assert.match(await firingRow.first().textContent(), /not yet/);
  // Filter by state: only resolved changes.
  await page.getByLabel('State').selectOption('resolved');
  await settled(page);
  assert.match(page.url(), /state=resolved/);
  const wantResolved = events.filter((e) => e.state === 'resolved').length;
  assert.equal(await page.locator('#alert-history tbody tr').count(), wantResolved);
  assert.equal(await page.locator('#alert-history tbody tr .badge', { hasText: /^resolved$/ }).count(), wantResolved);
  assert.equal(await page.locator('#active-alerts tbody tr td.empty').count(), 1);
  // Filter by monitor, on the server.
  await page.getByLabel('State').selectOption('');
  await settled(page);
  await page.getByLabel('Monitor').selectOption(f().monitor2);
  await settled(page);
  assert.match(page.url(), new RegExp(`monitor=${f().monitor2}`));
  const mine = (await api('GET', `/api/v1/alerts/history?monitor=${f().monitor2}`)).events;
  assert.equal(await page.locator('#alert-history tbody tr').count(), mine.length);
  assert.equal(await page.locator('#active-alerts tbody tr td.empty').count(), 1);
  // Receivers: secrets are never shown, and each says which monitors use it.
  const recv = page.locator('#receivers tbody tr');
  assert.equal(await recv.count(), f().receivers.length);
  const hook = rowOf(page, '#receivers', f().receivers[0]);
  assert.match(await hook.textContent(), /webhook/);
  assert.match(await hook.textContent(), /set/);
  assert.doesNotMatch(await page.locator('#receivers').textContent(), /ui-s3cr3t|\*\*\*/);
  assert.ok(await hook.getByRole('link', { name: f().monitor }).isVisible());
  const slack = rowOf(page, '#receivers', f().receivers[1]);
  assert.equal(await slack.getByRole('link').count(), 2); // both monitors' rules notify it
  await page.kiln.done('monitoring-alerts');
});
