// The browser tests' fixture: a kiln server on loopback with access control
// on (a throwaway SQLite database and artifact folder), seeded with data by
// the Python scripts in seeds/ (the real mlflow client and Kiln's API), and
// Debian's Chromium driven by playwright-core, signed in once through the
// login form. Screenshots go to $KILN_UI_ARTIFACTS (default
// tests/ui/artifacts).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const ADMIN_PASSWORD = 'ui-test-admin-pw-1';
export const artifactsDir = process.env.KILN_UI_ARTIFACTS || join(here, 'artifacts');

export const env = { url: '', facts: {}, browser: null, storage: null, tmp: '', log: '' };
let server = null;

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
    s.on('error', rej);
  });
}

async function waitHealthy(url, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (server.exitCode !== null) throw new Error(`kiln server exited (${server.exitCode}); log: ${env.log}\n${readFileSync(env.log, 'utf8').slice(-3000)}`);
    try { const r = await fetch(`${url}/health`); if (r.ok) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`kiln server not healthy after ${ms} ms; log: ${env.log}`);
}

function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  throw new Error('Chromium not found: install Debian\'s chromium package (.ci/run does) or set CHROMIUM');
}

export async function setup() {
  const bin = join(root, 'bin', 'kiln');
  assert.ok(existsSync(bin), 'bin/kiln is missing: run `make build`');
  env.tmp = mkdtempSync(join(tmpdir(), 'kiln-ui-'));
  const port = await freePort();
  const grpc = await freePort();
  env.url = `http://127.0.0.1:${port}`;
  env.log = join(env.tmp, 'kiln.log');
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KILN_')));
  const out = openSync(env.log, 'a');
  server = spawn(bin, ['server', '--addr', `127.0.0.1:${port}`, '--grpc-addr', `127.0.0.1:${grpc}`,
    '--db', `sqlite://${env.tmp}/kiln.db`, '--artifacts', `file://${env.tmp}/artifacts`,
    '--model-cache', join(env.tmp, 'model-cache'), '--pipeline-work-dir', join(env.tmp, 'pipelines'),
    '--auth', 'on', '--admin-password', ADMIN_PASSWORD, '--private-webhooks', 'allow'],
  { env: clean, stdio: ['ignore', out, out] });
  await waitHealthy(env.url);
  // Seed: every script in seeds/ adds its data and facts (ids, names).
  const py = process.env.PYTHON || join(root, '.venv', 'bin', 'python');
  const factsFile = join(env.tmp, 'facts.json');
  const seeded = spawnSync(py, [join(here, 'seed.py'), env.url, factsFile], {
    env: { ...clean, KILN_UI_ONLY: process.env.KILN_UI_ONLY || '', KILN_UI_ADMIN_PASSWORD: ADMIN_PASSWORD, KILN_BIN: bin, KILN_UI_TMP: env.tmp }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000,
  });
  if (seeded.status !== 0) throw new Error(`seeding failed (${seeded.status}):\n${seeded.stdout}\n${seeded.stderr}`);
  env.facts = JSON.parse(readFileSync(factsFile, 'utf8'));
  mkdirSync(artifactsDir, { recursive: true });
  env.browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  // Sign in once through the form; every test's page reuses the cookie.
  const ctx = await env.browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${env.url}/ui/`);
  await page.getByLabel('User').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#user').getByText('admin').waitFor();
  env.storage = await ctx.storageState();
  await ctx.close();
}

export async function teardown() {
  await env.browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.once('exit', r); setTimeout(r, 10000); });
  }
  if (process.env.KILN_UI_KEEP !== '1' && env.tmp) rmSync(env.tmp, { recursive: true, force: true });
}

// open returns a signed-in page at path (under the server), and a check
// that fails the test on any uncaught script error or console error the
// page logged (a failed API call the page did not expect shows as one).
export async function open(path, { signedIn = true } = {}) {
  const ctx = await env.browser.newContext({ viewport: { width: 1400, height: 900 }, storageState: signedIn ? env.storage : undefined });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  await page.goto(env.url + path);
  await page.waitForFunction(() => !document.getElementById('main')?.hasAttribute('aria-busy'));
  page.kiln = {
    errors,
    // done asserts no script errors and the basic accessibility rules
    // (accessibilityProblems), and saves a screenshot named name.
    async done(name, { allowErrors = false } = {}) {
      await page.screenshot({ path: join(artifactsDir, `${name}.png`), fullPage: true });
      if (!allowErrors) assert.deepEqual(errors, [], `script errors on ${name}`);
      assert.deepEqual(await page.evaluate(accessibilityProblems), [], `accessibility problems on ${name}`);
      await ctx.close();
    },
  };
  return page;
}

// accessibilityProblems runs in the page: every visible form control and
// button has an accessible name, every image an alt text, every chart an
// accessible name, and the page has exactly one h1.
function accessibilityProblems() {
  const out = [];
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : ''}`;
  const named = (el) => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    if (el.getAttribute('title')) return true;
    return false;
  };
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (visible(el) && !named(el)) out.push(`unlabelled ${describe(el)}`);
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (visible(el) && !el.textContent.trim() && !named(el)) out.push(`nameless ${describe(el)}`);
  }
  for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) out.push(`img without alt: ${el.src}`);
  for (const el of document.querySelectorAll('svg.chart')) if (!(el.getAttribute('aria-label') || '').trim()) out.push(`chart without a name: ${describe(el)}`);
  const h1 = [...document.querySelectorAll('h1')].filter(visible).length;
  if (h1 !== 1) out.push(`${h1} h1 headings`);
  return out;
}

// settled waits until the page has finished rendering (the router clears
// aria-busy on <main> when a page's render resolves).
export async function settled(page) {
  await page.waitForFunction(() => !document.getElementById('main')?.hasAttribute('aria-busy'));
}

// api calls the server as the administrator (for checks behind the UI).
export async function api(method, path, body) {
  const r = await fetch(env.url + path, {
    method, headers: { Authorization: 'Basic ' + Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64'), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data; try { data = JSON.parse(text); } catch { data = text; }
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return data;
}
