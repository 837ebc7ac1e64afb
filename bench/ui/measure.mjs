// Times the run table of one experiment in headless Chromium: Kiln's UI and
// MLflow's, the same actions in each, from the user's click (or the
// address) to the rows on screen.
//   node measure.mjs --kiln URL --mlflow URL --runs N --reps 5 --out results.json
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from '../../tests/ui/node_modules/playwright-core/index.mjs';

const { values: a } = parseArgs({ options: {
  kiln: { type: 'string' }, mlflow: { type: 'string' }, runs: { type: 'string', default: '100000' },
  reps: { type: 'string', default: '5' }, 'mlflow-timeout': { type: 'string', default: '300' }, out: { type: 'string' },
} });
const reps = Number(a.reps);
const FILTER = "metrics.m > 0.5 and params.alpha = '3'";
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });

async function timed(fn) { const t = performance.now(); await fn(); return performance.now() - t; }
const median = (xs) => { const s = xs.filter((x) => x !== null).sort((p, q) => p - q); return s.length ? s[Math.floor(s.length / 2)] : null; };

// Kiln: the router clears aria-busy on <main> once a page has rendered.
async function kilnReps() {
  const res = { load: [], next: [], filter: [], sort: [] };
  for (let i = 0; i < reps; i++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const ready = () => page.waitForFunction(() => !document.getElementById('main').hasAttribute('aria-busy') && document.querySelectorAll('table.data tbody tr').length > 0);
    res.load.push(await timed(async () => { await page.goto(a.kiln); await ready(); }));
    const rows = await page.locator('table.data tbody tr').count();
    if (rows !== 100) throw new Error(`kiln shows ${rows} rows on the first page`);
    res.next.push(await timed(async () => { await page.getByRole('button', { name: 'Next ›' }).click(); await page.getByText('Runs 101–200').waitFor(); await ready(); }));
    res.filter.push(await timed(async () => {
      await page.getByLabel('Filter runs (MLflow search syntax)').fill(FILTER);
      await page.getByRole('button', { name: 'Search' }).click();
      await page.waitForURL(/filter=/); await ready();
    }));
    res.sort.push(await timed(async () => { await page.getByRole('button', { name: /^m\b/ }).click(); await page.waitForURL(/sort=metrics\.m/); await ready(); }));
    if (a.out) await page.screenshot({ path: a.out.replace(/[^/]*$/, `kiln-${i}.png`) });
    await page.close();
  }
  return res;
}

// MLflow: its React run table (AG Grid) shows rows as .ag-row elements
// holding the run names (seed-N).
async function mlflowReps() {
  const limit = Number(a['mlflow-timeout']) * 1000;
  const res = { load: [], filter: [] };
  const n = Math.min(reps, 2); // minutes per action at 100k runs: two are enough
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const rowsShown = () => page.locator('text=/^seed-\\d+$/').first().waitFor({ timeout: limit });
    try { res.load.push(await timed(async () => { await page.goto(a.mlflow); await rowsShown(); })); } catch { res.load.push(null); await page.close(); continue; }
    try {
      res.filter.push(await timed(async () => {
        const box = page.getByPlaceholder(/metrics\.rmse|Search runs|search/i).first();
        await box.fill(FILTER); await box.press('Enter');
        await page.waitForResponse((r) => r.url().includes('runs/search') && r.request().postData()?.includes('alpha'), { timeout: limit });
        await rowsShown();
      }));
    } catch { res.filter.push(null); }
    if (a.out) await page.screenshot({ path: a.out.replace(/[^/]*$/, `mlflow-${i}.png`) });
    await page.close();
  }
  return res;
}

const kiln = await kilnReps();
const mlflow = a.mlflow ? await mlflowReps() : {};
await browser.close();
const rows = ['load', 'next', 'filter', 'sort'].map((k) => {
  const km = median(kiln[k] || []), mm = mlflow[k] ? median(mlflow[k]) : undefined;
  return { action: k, kiln_ms: km, mlflow_ms: mm ?? null, mlflow_done: mlflow[k] ? mlflow[k].filter((x) => x !== null).length + '/' + mlflow[k].length : 'n/a', ratio: km && mm ? mm / km : null };
});
const report = { runs: Number(a.runs), reps, filter: FILTER, kiln, mlflow, summary: rows };
if (a.out) writeFileSync(a.out, JSON.stringify(report, null, 1));
console.log(`run table of ${a.runs} runs in Chromium (median of ${reps}; ms)`);
console.log('| action | Kiln | MLflow | MLflow ÷ Kiln |');
console.log('|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.action} | ${r.kiln_ms?.toFixed(0) ?? '–'} | ${r.mlflow_ms === null ? (r.mlflow_done === 'n/a' ? 'n/a' : `not done in ${a['mlflow-timeout']} s (${r.mlflow_done})`) : r.mlflow_ms.toFixed(0)} | ${r.ratio ? r.ratio.toFixed(1) + '×' : ''} |`);
