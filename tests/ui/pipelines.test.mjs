// Pipelines and tuning studies in the browser: the pipeline list, a
// pipeline's page (DAG, triggers, runs, Run now), a run's page (steps
// coloured by state, a step's attempts and log, Cancel and Resume, the
// refresh while it runs), the study list and a study's page (trials, the
// best one, counts per state, the optimisation history chart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.pipelines;
const cls = (state) => (/succeeded|cached/.test(state) ? 'good' : /failed|cancel/.test(state) ? 'bad' : /running|pending|queued/.test(state) ? 'warn' : 'neutral');
const round4 = (v) => Number(Number(v).toPrecision(4));

async function waitRun(id, states, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await api('GET', `/api/v1/pipeline-runs/${id}`);
    if (states.includes(r.state)) return r;
    if (Date.now() > end) throw new Error(`run ${id} is ${r.state}, not ${states}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

async function studiesFromAPI() {
  const exps = (await api('POST', '/api/2.0/mlflow/experiments/search', { max_results: 1000 })).experiments || [];
  const r = await api('POST', '/api/2.0/mlflow/runs/search', {
    experiment_ids: exps.map((e) => e.experiment_id), max_results: 1000,
    filter: 'tags.`kiln.study` IS NOT NULL and tags.`kiln.trial` IS NULL',
  });
  return r.runs || [];
}

test('pipeline list shows every pipeline with its steps, schedules, triggers and last run, and searches by name', async () => {
  const page = await open('/ui/pipelines');
  const want = (await api('GET', '/api/v1/pipelines')).pipelines;
  const rows = page.locator('table.data tbody tr');
  assert.equal(await rows.count(), want.length);
  for (const p of want.filter((x) => x.metadata.name.startsWith('ui-'))) {
    const row = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: p.metadata.name, exact: true }) });
    const cells = await row.locator('td').allTextContents();
    assert.equal(Number(cells[2]), p.spec.steps.length + (p.spec.on_exit ? 1 : 0), `${p.metadata.name} steps`);
    if (p.last_run) assert.match(cells[5], new RegExp(`^${p.last_run.state}`), `${p.metadata.name} last run`);
    else assert.match(cells[5], /never run/);
  }
  const etl = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: 'ui-etl', exact: true }) });
  assert.match(await etl.textContent(), /30 4 1 1 \* \(UTC\)/);
  assert.match(await etl.textContent(), /on-raw-data \(dataset\), hook \(webhook\)/);
  await page.getByLabel('Search pipelines by name').fill('broken');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  assert.match(page.url(), /q=broken/);
  assert.equal(await rows.count(), 1);
  assert.ok(await page.getByRole('link', { name: 'ui-broken', exact: true }).isVisible());
  await page.kiln.done('pipelines-list');
});

test('a pipeline page draws the DAG with implied dependencies, its schedules and triggers and runs, and filters runs by state', async () => {
  const page = await open('/ui/pipelines/ui-etl');
  const svg = page.locator('svg.chart.dag');
  await svg.waitFor();
  assert.equal(await svg.locator('g.node').count(), 4);
  // extract→clean (a template reference), extract→features, clean→train, features→train
  assert.equal(await svg.locator('path.edge').count(), 4);
  assert.deepEqual((await svg.locator('g.node').evaluateAll((gs) => gs.map((g) => g.dataset.node))).sort(), [...f().etl_steps].sort());
  await svg.locator('g.node[data-node="clean"]').click();
  const def = page.locator('#step-definition');
  await def.getByRole('heading', { name: 'Step clean' }).waitFor();
  assert.match(await def.textContent(), /Runs afterextract/);
  assert.match(page.url(), /step=clean/);
  // Schedules and triggers, with their states from the server.
  const states = (await api('GET', '/api/v1/pipelines/ui-etl/triggers')).states;
  const trig = page.locator('#triggers tbody tr');
  assert.equal(await trig.count(), states.length);
  assert.equal(states.length, 3);
  const yearly = await page.locator('#triggers tbody tr', { hasText: 'yearly' }).locator('td').allTextContents();
  assert.equal(yearly[1], 'schedule');
  assert.match(yearly[2], /cron 30 4 1 1 \* \(UTC\)/);
  assert.match(yearly[4], /^\d{4}-01-01 /); // the next fire, from the server (local time of the browser)
  // Runs, and the state filter.
  const runs = (await api('GET', '/api/v1/pipelines/ui-etl/runs?limit=25')).runs;
  const rows = page.locator('#pipeline-runs tbody tr');
  assert.equal(await rows.count(), runs.length);
  assert.ok(await page.getByRole('link', { name: f().etl_run }).isVisible());
  await page.getByLabel('Runs in state').selectOption('failed');
  await settled(page);
  assert.match(page.url(), /state=failed/);
  await page.locator('#pipeline-runs td.empty').waitFor();
  await page.getByLabel('Runs in state').selectOption('succeeded');
  await settled(page);
  const ok = (await api('GET', '/api/v1/pipelines/ui-etl/runs?state=succeeded')).runs;
  assert.equal(await rows.count(), ok.length);
  for (const s of await page.locator('#pipeline-runs tbody tr td:nth-child(2)').allTextContents()) assert.equal(s, 'succeeded');
  await page.kiln.done('pipelines-page');
});

test('a failed run colours its steps by state and shows a step\'s attempts and log when its node is picked', async () => {
  const id = f().broken_run;
  const run = await api('GET', `/api/v1/pipeline-runs/${id}`);
  // A bookmarked step and attempt open with the page.
  const page = await open(`/ui/pipelines/runs/${id}?step=fit&attempt=1`);
  await page.locator('#step-log', { hasText: 'fitting, attempt 1' }).waitFor();
  const svg = page.locator('#run-graph svg.chart.dag');
  assert.equal(await svg.locator('g.node').count(), run.steps.length);
  assert.equal(run.steps.length, 4);
  for (const s of run.steps) {
    assert.equal(s.state, f().broken_steps[s.step]);
    const node = svg.locator(`g.node[data-node="${s.step}"]`);
    assert.match(await node.getAttribute('class'), new RegExp(`\\b${cls(s.state)}\\b`), `${s.step} is ${s.state}`);
    assert.equal(await node.locator('text.state').textContent(), s.state);
  }
  assert.equal(await svg.locator('g.node.bad').count(), 2); // fit failed, report upstream_failed
  assert.equal(await svg.locator('path.edge').count(), 3); // prepare→fit→report→notify (on exit)
  // Clicking a node shows its latest attempt's log, and every attempt.
  await page.goto(`${env.url}/ui/pipelines/runs/${id}`);
  await settled(page);
  await svg.locator('g.node[data-node="fit"]').click();
  const log = page.locator('#step-log');
  await log.filter({ hasText: 'fitting, attempt 2' }).waitFor();
  assert.match(await log.textContent(), /error: out of memory/);
  assert.match(page.url(), /step=fit/);
  await page.locator('#step-attempts tbody tr').nth(1).waitFor();
  assert.equal(await page.locator('#step-attempts tbody tr').count(), 2);
  assert.deepEqual(await page.locator('#step-attempts tbody tr td:nth-child(2)').allTextContents(), ['FAILED', 'FAILED']);
  assert.match(await page.locator('#step-detail').textContent(), /Exit code3/);
  await page.getByLabel('Attempt whose log is shown').selectOption('1');
  await log.filter({ hasText: 'fitting, attempt 1' }).waitFor();
  assert.match(page.url(), /attempt=1/);
  // The keyboard: Enter on a node picks it.
  await svg.locator('g.node[data-node="prepare"]').focus();
  await page.keyboard.press('Enter');
  await log.filter({ hasText: 'preparing' }).waitFor();
  assert.match(page.url(), /step=prepare/);
  await svg.locator('g.node[data-node="report"]').click();
  await page.locator('#step-log-none').waitFor();
  // The steps' times: one bar per step that ran.
  const bars = page.locator('#run-timings svg.chart.bar g.bar');
  assert.equal(await bars.count(), run.steps.filter((s) => s.start_time).length);
  // A failed run can be resumed, not cancelled.
  assert.ok(await page.getByRole('button', { name: 'Resume' }).isVisible());
  assert.equal(await page.getByRole('button', { name: 'Cancel run' }).count(), 0);
  assert.equal(await page.locator('#run-steps tbody tr').count(), 4);
  await page.kiln.done('pipelines-run-failed');
});

test('Run now starts a run with the form\'s parameters, and its page refreshes until every step has succeeded', async () => {
  const page = await open('/ui/pipelines/ui-etl');
  const before = (await api('GET', '/api/v1/pipelines/ui-etl/runs')).runs.length;
  await page.getByLabel(/^rows/).fill('321');
  await page.getByLabel('Run every step, without the cache').check();
  await page.getByRole('button', { name: 'Run now' }).click();
  const dlg = page.getByRole('dialog');
  assert.match(await dlg.textContent(), /rows=321/);
  await dlg.getByRole('button', { name: 'Run now' }).click();
  await page.waitForURL(/\/ui\/pipelines\/runs\/[0-9A-Z]+$/);
  await settled(page);
  const id = page.url().split('/').pop();
  const run = await api('GET', `/api/v1/pipeline-runs/${id}`);
  assert.equal(run.pipeline, 'ui-etl');
  assert.equal(run.parameters.rows, '321');
  assert.equal(run.no_cache, true);
  assert.equal((await api('GET', '/api/v1/pipelines/ui-etl/runs')).runs.length, before + 1);
  // The page refreshes by itself until the run ends.
  await page.waitForFunction(() => document.querySelectorAll('#run-graph g.node.good').length === 4, null, { timeout: 60000 });
  // The run's own state follows its last step's (the engine finalises it).
  try {
    await page.locator('#run-refresh', { hasText: 'The run ended succeeded.' }).waitFor({ timeout: 60000 });
  } catch (e) {
    const now = await api('GET', `/api/v1/pipeline-runs/${id}`);
    assert.fail(`the page did not report the run's end: it says ${JSON.stringify(await page.locator('#run-refresh').textContent())}, the API says ${now.state}; ${e.message}`);
  }
  assert.equal(await page.locator('#run-state-badge').textContent(), 'succeeded');
  const done = await api('GET', `/api/v1/pipeline-runs/${id}`);
  assert.equal(done.state, 'succeeded');
  assert.ok(done.steps.every((s) => s.state === 'succeeded'), JSON.stringify(done.steps.map((s) => s.state)));
  await page.locator('#run-graph g.node[data-node="extract"]').click();
  await page.locator('#step-detail table', { hasText: 'rows' }).locator('code', { hasText: '321' }).waitFor();
  await page.locator('#step-log', { hasText: 'extracting 321 rows' }).waitFor();
  assert.equal(await page.locator('#run-timings svg.chart.bar g.bar').count(), 4);
  await page.kiln.done('pipelines-run-now');
});

test('a running run shows its step\'s log as it is written, can be cancelled, and then resumed', async () => {
  const page = await open('/ui/pipelines/ui-slow');
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Run now' }).click();
  await page.waitForURL(/\/ui\/pipelines\/runs\/[0-9A-Z]+$/);
  const id = page.url().split('/').pop();
  let resumed = '';
  try {
    const long = page.locator('#run-graph g.node.warn[data-node="long"]');
    await long.waitFor({ timeout: 30000 });
    await page.locator('#run-graph g.node[data-node="long"]').click();
    await page.locator('#step-log', { hasText: 'sleeping' }).waitFor({ timeout: 20000 });
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel run' }).click();
    await page.locator('#run-state-badge', { hasText: 'cancelled' }).waitFor({ timeout: 30000 });
    assert.equal((await waitRun(id, ['cancelled'], 30000)).state, 'cancelled');
    await page.locator('#run-graph g.node.bad[data-node="long"]').waitFor({ timeout: 30000 });
    assert.equal(await page.getByRole('button', { name: 'Cancel run' }).count(), 0);
    // Resume: a new run reusing warmup.
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Resume' }).click();
    await page.waitForURL((u) => /\/ui\/pipelines\/runs\/[0-9A-Z]+$/.test(u.pathname) && !u.pathname.endsWith(id));
    await settled(page);
    resumed = page.url().split('/').pop();
    const r = await api('GET', `/api/v1/pipeline-runs/${resumed}`);
    assert.equal(r.resumed_from, id);
    await page.getByRole('link', { name: id }).waitFor();
    await page.locator('#run-graph g.node[data-node="warmup"]', { hasText: 'cached' }).waitFor({ timeout: 30000 });
    await page.kiln.done('pipelines-run-cancel-resume');
  } finally {
    for (const r of [id, resumed].filter(Boolean)) {
      try { await api('POST', `/api/v1/pipeline-runs/${r}/cancel`, {}); } catch { /* already ended */ }
    }
  }
});

test('the tuning study list shows the study parent runs of every experiment and filters by name and status', async () => {
  const page = await open('/ui/studies');
  const want = await studiesFromAPI();
  const rows = page.locator('table.data tbody tr');
  assert.equal(await rows.count(), want.length);
  assert.ok(want.length >= 2);
  for (const [key, s] of Object.entries(f().studies)) {
    const row = page.locator('table.data tbody tr', { has: page.getByRole('link', { name: `ui-${key}`, exact: true }) });
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[2], 'FINISHED');
    assert.match(cells[3], new RegExp(`^${s.metric} \\((minimize|maximize)\\)$`));
    assert.equal(Number(cells[5]), s.trials.length);
    assert.equal(Number(cells[6]), round4(s.best_value));
    assert.equal(await row.getByRole('link', { name: `ui-${key}`, exact: true }).getAttribute('href'), `/ui/studies/${s.parent_run_id}`);
  }
  await page.getByLabel('Search studies by name').fill('grid');
  await page.getByRole('button', { name: 'Search' }).click();
  await settled(page);
  assert.match(page.url(), /name=grid/);
  assert.equal(await rows.count(), 1);
  await page.getByLabel('Study status').selectOption('FAILED');
  await settled(page);
  assert.match(page.url(), /status=FAILED/);
  await page.locator('td.empty', { hasText: 'No study matches.' }).waitFor();
  await page.kiln.done('studies-list');
});

test('a study page lists its trials, marks the best one, counts trials per state and charts the optimization history', async () => {
  const s = f().studies.grid;
  const page = await open(`/ui/studies/${s.parent_run_id}`);
  await page.getByRole('heading', { level: 1, name: /Study ui-grid/ }).waitFor();
  const rows = page.locator('table.data tbody tr');
  assert.equal(await rows.count(), s.trials.length);
  // Columns: Trial, State, opt, x, loss, Duration, Run.
  const got = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  for (const t of s.trials) {
    const row = got.find((c) => Number.parseInt(c[0], 10) === t.number);
    assert.ok(row, `trial ${t.number}`);
    assert.equal(row[1], t.state);
    assert.equal(row[2], String(t.params.opt));
    assert.equal(Number(row[3]), Number(t.params.x));
    if (t.value === null) assert.equal(row[4], '');
    else assert.equal(Number(row[4]), round4(t.value), `trial ${t.number} value`);
    assert.equal(row[6], `ui-grid-trial-${t.number}`);
  }
  // The best trial, as the parent run names it.
  const parent = (await api('GET', `/api/2.0/mlflow/runs/get?run_id=${s.parent_run_id}`)).run;
  const bestRun = parent.data.tags.find((t) => t.key === 'kiln.study.best_run').value;
  assert.equal(bestRun, s.best_run);
  const best = page.locator('table.data tbody tr.best');
  assert.equal(await best.count(), 1);
  assert.equal(Number.parseInt(await best.locator('td').first().textContent(), 10), s.best_number);
  assert.equal(await best.getByRole('link').getAttribute('href'), `/ui/experiments/${s.experiment_id}/runs/${s.best_run}`);
  assert.match(await page.locator('#study-best').textContent(), new RegExp(`^#${s.best_number}: loss = ${round4(s.best_value)}`));
  // Counts per state.
  for (const [state, n] of Object.entries(s.counts)) {
    assert.equal(await page.locator(`#trial-counts .card[data-state="${state}"] .big`).textContent(), String(n), state);
  }
  // The history: the completed trials as points, and the best so far.
  const completed = s.trials.filter((t) => t.state === 'completed');
  const chart = page.locator('#study-history svg.chart.line');
  const series = chart.locator('g.series');
  assert.equal(await series.count(), 2);
  assert.equal(await series.nth(0).locator('circle').count(), completed.length);
  assert.equal(await series.nth(0).locator('path').getAttribute('stroke'), 'none');
  assert.equal(await series.nth(1).locator('circle').count(), completed.length);
  const ys = await series.nth(1).locator('circle').evaluateAll((cs) => cs.map((c) => Number(c.getAttribute('cy'))));
  for (let i = 1; i < ys.length; i++) assert.ok(ys[i] >= ys[i - 1] - 1e-6, 'the best so far of a minimisation never goes up');
  assert.ok(await chart.locator('text.label', { hasText: 'trial number' }).count() === 1);
  assert.ok((await chart.locator('g.tick text').count()) >= 4);
  assert.equal(await page.locator('#study-parallel svg.chart.parallel path.pline').count(), completed.length);
  // Sorting by the objective puts the best first; the state filter.
  await page.getByRole('button', { name: /^loss/ }).click();
  await page.getByRole('button', { name: /^loss/ }).click();
  assert.equal(Number.parseInt(await rows.first().locator('td').first().textContent(), 10), s.best_number);
  await page.getByLabel('Trials in state').selectOption('failed');
  await settled(page);
  assert.match(page.url(), /state=failed/);
  assert.equal(await rows.count(), s.counts.failed);
  await page.kiln.done('studies-page');
});

test('a maximising study\'s best-so-far line never goes down, and a run that is not a study says so', async () => {
  const s = f().studies.rand;
  const page = await open(`/ui/studies/${s.parent_run_id}`);
  const series = page.locator('#study-history svg.chart.line g.series');
  await series.first().waitFor();
  assert.equal(await series.nth(0).locator('circle').count(), s.trials.length);
  const ys = await series.nth(1).locator('circle').evaluateAll((cs) => cs.map((c) => Number(c.getAttribute('cy'))));
  for (let i = 1; i < ys.length; i++) assert.ok(ys[i] <= ys[i - 1] + 1e-6, 'the best so far of a maximisation never goes down');
  assert.equal(Number.parseInt(await page.locator('table.data tbody tr.best td').first().textContent(), 10), s.best_number);
  await page.kiln.done('studies-page-maximize');
  const trial = await open(`/ui/studies/${s.trials[0].run_id}`);
  await trial.getByRole('heading', { level: 1, name: 'Not a study' }).waitFor();
  await trial.getByRole('alert').waitFor();
  await trial.kiln.done('studies-not-a-study');
});
