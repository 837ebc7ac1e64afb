// Batch scoring in the browser: the job list, a job's page, and submitting
// a job through the form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.scoring;

test('score job list shows the seeded job with its progress, and filters by state', async () => {
  const page = await open('/ui/scoring');
  const row = page.locator('table.data tbody tr', { hasText: f().job });
  await row.waitFor();
  assert.match(await row.textContent(), /succeeded/);
  assert.match(await row.textContent(), /50 \/ 50 rows|50 rows/);
  await page.getByLabel('Show').selectOption('failed');
  await settled(page);
  assert.equal(await page.locator('table.data tbody tr', { hasText: f().job }).count(), 0);
  await page.kiln.done('scoring-list');
});

test('a job page shows its fields, and the form submits a job that runs to the end', async () => {
  const page = await open(`/ui/scoring/${f().job}`);
  await page.getByRole('heading', { name: new RegExp(f().job) }).waitFor();
  assert.ok(await page.getByText('mlflow-artifacts:/ui-scoring/out.parquet').isVisible());
  await page.getByRole('link', { name: 'Batch scoring' }).click();
  await settled(page);
  await page.getByLabel('Model').fill('models:/ui-scorer/1');
  await page.getByLabel('Input').fill('mlflow-artifacts:/ui-scoring/in.csv');
  await page.getByLabel('Keep columns (optional, comma-separated)').fill('id');
  await page.getByLabel(/^Feature columns/).fill('f0,f1,f2');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await page.waitForURL(/\/ui\/scoring\/[0-9A-Z]+$/);
  const id = page.url().split('/').pop();
  assert.notEqual(id, f().job);
  await page.getByRole('heading', { name: /succeeded/ }).waitFor({ timeout: 60000 });
  const j = await api('GET', `/api/v1/score-jobs/${id}`);
  assert.equal(j.state, 'succeeded');
  assert.equal(j.rows_done, 50);
  // A bad model URI is refused in the form, nothing submitted.
  await page.getByRole('link', { name: 'Batch scoring' }).click();
  await settled(page);
  const before = (await api('GET', '/api/v1/score-jobs')).jobs.length;
  await page.getByLabel('Model').fill('/etc/passwd');
  await page.getByLabel('Input').fill('mlflow-artifacts:/ui-scoring/in.csv');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await page.locator('#submit-job .error').waitFor();
  assert.equal((await api('GET', '/api/v1/score-jobs')).jobs.length, before);
  await page.kiln.done('scoring-job', { allowErrors: true });
});
