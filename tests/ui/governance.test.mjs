// Governance in the browser: users (create, disable, make admin, delete),
// API tokens (the secret shown once, revoking), workspaces and their
// grants, the approval queue (the requester refused, another user's
// request approved) and the audit log (filters, pages, the chain check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, open, settled, api } from './harness.mjs';

const f = () => env.facts.governance;
const cells = (page, col) => page.locator(`table.data tbody tr td:nth-child(${col})`).allTextContents();
const confirm = async (page, label) => {
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  await dlg.getByRole('button', { name: label, exact: true }).click();
  await settled(page);
};
// A refused API call shows in the console as a failed resource load; any
// other console error still fails.
const onlyRefusals = (page) => assert.deepEqual(page.kiln.errors.filter((e) => !/Failed to load resource/.test(e)), []);

async function asUser(method, path, user, password, body) {
  const r = await fetch(env.url + path, {
    method, headers: { Authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path} as ${user}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

test('users: the list shows the seeded users; create, disable, make admin and delete work', async () => {
  const page = await open('/ui/governance/users');
  const row = (name) => page.locator('table.data tbody tr', { has: page.locator('strong', { hasText: new RegExp(`^${name}$`) }) });
  await row(f().ada).waitFor();
  assert.match(await row(f().ada).textContent(), /ada@example\.com/);
  assert.match(await row(f().bot).textContent(), /service account.*disabled/);
  assert.ok((await cells(page, 1)).some((t) => t.startsWith('admin')));
  // Create a user with a password.
  await page.getByLabel('Name', { exact: true }).fill('ui-gov-new');
  await page.getByLabel('Password').fill('ui-gov-new-password-1');
  await page.getByLabel('Email').fill('new@example.com');
  await page.getByRole('button', { name: 'Create user' }).click();
  await settled(page);
  await row('ui-gov-new').waitFor();
  const created = await api('GET', '/api/v1/users/ui-gov-new');
  assert.equal(created.has_password, true);
  assert.equal(created.email, 'new@example.com');
  // Disabling asks first; Cancel changes nothing.
  await page.getByRole('button', { name: 'Disable ui-gov-new' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await api('GET', '/api/v1/users/ui-gov-new')).disabled, undefined);
  await page.getByRole('button', { name: 'Disable ui-gov-new' }).click();
  await confirm(page, 'Disable');
  await page.getByRole('button', { name: 'Enable ui-gov-new' }).waitFor();
  assert.equal((await api('GET', '/api/v1/users/ui-gov-new')).disabled, true);
  assert.match(await row('ui-gov-new').textContent(), /disabled/);
  await page.getByRole('button', { name: 'Enable ui-gov-new' }).click();
  await settled(page);
  await page.getByRole('button', { name: 'Disable ui-gov-new' }).waitFor();
  assert.equal((await api('GET', '/api/v1/users/ui-gov-new')).disabled, undefined);
  // Make admin, then delete.
  await page.getByRole('button', { name: 'Make ui-gov-new admin' }).click();
  await confirm(page, 'Make admin');
  await page.getByRole('button', { name: 'Remove admin from ui-gov-new' }).waitFor();
  assert.equal((await api('GET', '/api/v1/users/ui-gov-new')).admin, true);
  await page.getByRole('button', { name: 'Delete ui-gov-new' }).click();
  await confirm(page, 'Delete');
  await row(f().ada).waitFor();
  assert.equal(await row('ui-gov-new').count(), 0);
  assert.ok(!(await api('GET', '/api/v1/users')).users.some((u) => u.name === 'ui-gov-new'));
  await page.kiln.done('governance-users');
});

test('tokens: a new token\'s secret is shown once with a copy button; revoking removes it', async () => {
  const page = await open('/ui/governance/tokens');
  await page.locator('table.data tbody tr', { hasText: f().token_id }).waitFor();
  assert.match(await page.locator('table.data tbody tr', { hasText: f().token_id }).textContent(), /ui-gov-laptop.*read/);
  await page.getByLabel('Name', { exact: true }).fill('ui-gov-ci');
  await page.getByLabel('Expires after').selectOption('24h');
  await page.getByRole('button', { name: 'Create token' }).click();
  await settled(page);
  const secretIn = page.getByLabel('Token', { exact: true });
  await secretIn.waitFor();
  const secret = await secretIn.inputValue();
  const m = secret.match(/^kiln_([0-9a-f]{12})_/);
  assert.ok(m, `secret ${secret}`);
  const id = m[1];
  assert.match(await page.locator('.secret-box').textContent(), /shown only this once/);
  await page.getByRole('button', { name: 'Copy token' }).click();
  await page.locator('.secret-box', { hasText: 'Copied.' }).waitFor();
  // The secret works, and the list has the token (without the secret).
  const who = await (await fetch(`${env.url}/api/v1/whoami`, { headers: { Authorization: `Bearer ${secret}` } })).json();
  assert.equal(who.user, 'admin');
  const tok = (await api('GET', '/api/v1/tokens')).tokens.find((t) => t.token_id === id);
  assert.equal(tok.name, 'ui-gov-ci');
  assert.ok(tok.expires > Date.now());
  assert.ok(await page.locator('table.data tbody tr', { hasText: id }).isVisible());
  assert.ok(!(await page.locator('table.data').textContent()).includes(secret));
  // Shown once: a reload no longer has it.
  await page.reload();
  await settled(page);
  await page.locator('table.data tbody tr', { hasText: id }).waitFor();
  assert.equal(await page.locator('.secret-box').count(), 0);
  assert.ok(!(await page.content()).includes(secret));
  // Revoke, after confirming.
  await page.getByRole('button', { name: `Revoke token ${id}` }).click();
  await confirm(page, 'Revoke');
  await page.locator('table.data tbody tr', { hasText: f().token_id }).waitFor();
  assert.equal(await page.locator('table.data tbody tr', { hasText: id }).count(), 0);
  assert.ok((await api('GET', '/api/v1/tokens')).tokens.find((t) => t.token_id === id).revoked > 0);
  const gone = await fetch(`${env.url}/api/v1/whoami`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(gone.status, 401);
  // The revoked token shows with "Show revoked and expired tokens".
  await page.getByLabel('Show revoked and expired tokens').check();
  await settled(page);
  assert.match(await page.locator('table.data tbody tr', { hasText: id }).textContent(), /revoked/);
  assert.match(page.url(), /all=1/);
  // Filtered by user (the address keeps it).
  await page.getByLabel('User', { exact: true }).selectOption(f().ada);
  await settled(page);
  assert.match(page.url(), new RegExp(`user=${f().ada}`));
  assert.deepEqual([...new Set(await cells(page, 2))], [f().ada]);
  await page.kiln.done('governance-tokens');
});

test('workspaces: the list and a workspace\'s roles; a role change, a new grant and a removal persist', async () => {
  const page = await open('/ui/governance/workspaces');
  const wsRow = page.locator('table.data tbody tr', { hasText: f().workspace });
  await wsRow.waitFor();
  assert.match(await wsRow.textContent(), /UI governance tests/);
  assert.equal((await wsRow.locator('td').nth(2).textContent()).trim(), '3');
  await wsRow.getByRole('link', { name: f().workspace }).click();
  await settled(page);
  assert.match(page.url(), new RegExp(`/ui/governance/workspaces/${f().workspace}$`));
  assert.equal(await page.locator('table.data tbody tr').count(), 3);
  // Change ada's role on the whole workspace.
  await page.getByLabel(`Role of ${f().ada} on the whole workspace`).selectOption('editor');
  await settled(page);
  await page.getByLabel(`Role of ${f().ada} on the whole workspace`).waitFor();
  const grants = async () => (await api('GET', `/api/v1/workspaces/${f().workspace}/grants`)).grants;
  assert.equal((await grants()).find((g) => g.user === f().ada && !g.resource_type).role, 'editor');
  assert.equal(await page.getByLabel(`Role of ${f().ada} on the whole workspace`).inputValue(), 'editor');
  // A new grant on one endpoint.
  await page.getByLabel('User', { exact: true }).selectOption(f().ada);
  await page.getByLabel('Role', { exact: true }).selectOption('maintainer');
  await page.getByLabel('On', { exact: true }).selectOption('endpoint');
  await page.getByLabel('Resource', { exact: true }).fill('ui-gov-endpoint');
  await page.getByRole('button', { name: 'Grant', exact: true }).click();
  await settled(page);
  await page.getByLabel(`Role of ${f().ada} on endpoint ui-gov-endpoint`).waitFor();
  assert.deepEqual((await grants()).filter((g) => g.resource_type === 'endpoint').map((g) => [g.user, g.resource, g.role]), [[f().ada, 'ui-gov-endpoint', 'maintainer']]);
  // Remove bob's grant on the registered model, after confirming.
  await page.getByRole('button', { name: `Remove ${f().bob}'s role on registered model ${f().model}` }).click();
  await confirm(page, 'Remove');
  await page.getByLabel(`Role of ${f().ada} on endpoint ui-gov-endpoint`).waitFor();
  assert.equal(await page.getByLabel(`Role of ${f().bob} on registered model ${f().model}`).count(), 0);
  assert.ok(!(await grants()).some((g) => g.user === f().bob && g.resource_type === 'registered_model'));
  assert.equal(await page.locator('table.data tbody tr').count(), 3);
  await page.kiln.done('governance-grants');
});

test('approvals: the requester is refused with the server\'s message; approving another user\'s request empties the queue', async () => {
  // The admin's own request, for the other protected alias.
  const mine = await api('POST', '/api/v1/approval-requests', { model: f().model, version: 1, alias: 'challenger', reason: 'my own' });
  const page = await open('/ui/governance/approvals');
  // Other areas' requests may wait too: count this area's model's.
  const queue = page.locator('section', { has: page.getByRole('heading', { name: 'Queue' }) }).locator('table.data tbody tr').filter({ hasText: f().model });
  await page.getByRole('button', { name: `Approve request ${f().request_id}` }).waitFor();
  assert.equal(await queue.count(), 2);
  assert.match(await queue.filter({ hasText: f().ada }).textContent(), /ui-gov-model v2.*alias champion.*better AUC.*0 of 1.*pending/);
  // Policies.
  const pol = page.locator('section', { has: page.getByRole('heading', { name: 'Policies' }) }).locator('table.data tbody tr');
  assert.match(await pol.filter({ hasText: f().policy }).textContent(), /ui-gov-policy.*ui-gov-model.*champion, challenger/);
  // The requester cannot decide their own request: the server says why.
  await page.getByRole('button', { name: `Approve request ${mine.request_id}` }).click();
  await page.getByRole('dialog').getByLabel('Comment').fill('looks fine to me');
  await page.getByRole('dialog').getByRole('button', { name: 'Approve' }).click();
  const alert = page.locator('.messages [role="alert"]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /'admin' asked for this approval and cannot decide it/);
  assert.equal((await api('GET', `/api/v1/approval-requests/${mine.request_id}`)).state, 'pending');
  // Someone else closes it.
  await asUser('POST', `/api/v1/approval-requests/${mine.request_id}/reject`, f().ada, f().ada_password, { comment: 'not now' });
  // The admin approves ada's request, with a comment.
  await page.getByRole('button', { name: `Approve request ${f().request_id}` }).click();
  await page.getByRole('dialog').getByLabel('Comment').fill('checked the slices');
  await page.getByRole('dialog').getByRole('button', { name: 'Approve' }).click();
  await settled(page);
  await page.getByRole('button', { name: `Approve request ${f().request_id}` }).waitFor({ state: 'detached' });
  assert.equal(await queue.count(), 0);
  const pending = (await api('GET', '/api/v1/approval-requests?state=pending')).requests;
  assert.deepEqual(pending.filter((x) => x.model === f().model), []);
  if (pending.length === 0) await page.getByText('Nothing waits for approval.').waitFor();
  const r = await api('GET', `/api/v1/approval-requests/${f().request_id}`);
  assert.equal(r.state, 'approved');
  assert.deepEqual(r.votes.map((v) => [v.voter, v.decision, v.comment]), [['admin', 'approve', 'checked the slices']]);
  // The history shows both decisions.
  await page.getByLabel('Show').selectOption('all');
  await settled(page);
  assert.match(page.url(), /state=all/);
  const rows = page.locator('table.data').first().locator('tbody tr').filter({ hasText: f().model });
  assert.match(await rows.filter({ hasText: 'champion' }).textContent(), /approved.*admin approved: “checked the slices”/);
  assert.match(await rows.filter({ hasText: 'challenger' }).textContent(), /rejected.*ui-gov-ada rejected: “not now”/);
  onlyRefusals(page);
  await page.kiln.done('governance-approvals', { allowErrors: true });
});

test('audit log: shows who did what with request ids and digests, filters and pages, and verifies the chain', async () => {
  const page = await open('/ui/governance/audit?action=approve');
  await page.locator('table.data tbody tr').first().waitFor();
  const rows = page.locator('table.data tbody tr');
  // The approval above (200), the refused one (403), ada's rejection (200).
  const approve = rows.filter({ hasText: '/approval-requests/{id}/approve' });
  assert.ok(await approve.filter({ hasText: 'admin' }).filter({ has: page.locator('.badge', { hasText: /^200$/ }) }).count() >= 1);
  assert.ok(await approve.filter({ has: page.locator('.badge', { hasText: /^403$/ }) }).count() >= 1);
  assert.equal(await rows.filter({ hasText: '/reject' }).count(), 0);
  const latest = (await api('GET', '/api/v1/audit?action=approve&order=desc&limit=1')).events[0];
  const first = rows.first();
  assert.equal((await first.locator('td').first().textContent()).trim(), String(latest.seq));
  assert.ok((await first.textContent()).includes(latest.request_id));
  assert.ok((await first.textContent()).includes(latest.request_digest.slice(7, 19)));
  // By actor: ada's request and rejection.
  await page.getByLabel('Actor').fill(f().ada);
  await page.getByLabel('Action contains').fill('');
  await page.getByRole('button', { name: 'Filter' }).click();
  await settled(page);
  assert.match(page.url(), new RegExp(`actor=${f().ada}`));
  assert.deepEqual([...new Set((await cells(page, 3)).map((t) => t.replace(/ \(.*\)$/, '')))], [f().ada]);
  const actions = await cells(page, 4);
  assert.ok(actions.includes('POST /api/v1/approval-requests'));
  assert.ok(actions.includes('POST /api/v1/approval-requests/{id}/reject'));
  // Pages of 50, newest first: the 60 PATCHes of bob.
  await page.getByLabel('Actor').fill('');
  await page.getByLabel('Resource or path contains').fill(`/api/v1/users/${f().bob}`);
  await page.getByRole('button', { name: 'Filter' }).click();
  await settled(page);
  const all = (await api('GET', `/api/v1/audit?resource=${encodeURIComponent(`/api/v1/users/${f().bob}`)}&limit=1000`)).events.map((e) => e.seq).reverse();
  assert.ok(all.length >= 60);
  assert.deepEqual((await cells(page, 1)).map(Number), all.slice(0, 50));
  await page.getByRole('button', { name: 'Next ›' }).click();
  await settled(page);
  assert.deepEqual((await cells(page, 1)).map(Number), all.slice(50, 100));
  await page.getByRole('button', { name: '‹ Previous' }).click();
  await settled(page);
  assert.deepEqual((await cells(page, 1)).map(Number), all.slice(0, 50));
  // A time window (since inclusive, until exclusive): the address holds ms
  // since the epoch, the form shows them as local time to the second.
  const enc = encodeURIComponent(`/api/v1/users/${f().bob}`);
  const evs = (await api('GET', `/api/v1/audit?resource=${enc}&limit=1000`)).events;
  const since = evs[10].time;
  const until = evs[40].time;
  const want = evs.filter((e) => e.time >= since && e.time < until).map((e) => e.seq).reverse();
  assert.ok(want.length >= 1 && want.length < evs.length);
  await page.goto(page.url().replace(/\?.*$/, '') + `?resource=${enc}&since=${since}&until=${until}`);
  await page.locator('table.data tbody tr').first().waitFor();
  await settled(page);
  assert.deepEqual((await cells(page, 1)).map(Number), want.slice(0, 50));
  assert.match(await page.locator('table.data caption').textContent(), /\(filtered\), from .* until /);
  assert.match(await page.getByLabel('From').inputValue(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
  // Submitting the form keeps the window (to the second).
  await page.getByRole('button', { name: 'Filter' }).click();
  await settled(page);
  const u = new URL(page.url());
  const s2 = Number(u.searchParams.get('since'));
  assert.ok(s2 <= since && since - s2 < 1000, `since ${s2} from the form, ${since} before`);
  assert.ok(Number(u.searchParams.get('until')) <= until);
  await page.getByRole('button', { name: 'Clear' }).click();
  await settled(page);
  assert.equal(new URL(page.url()).searchParams.get('since'), null);
  assert.equal(await page.getByLabel('From').inputValue(), '');
  // The chain holds.
  await page.getByRole('button', { name: 'Verify chain' }).click();
  const out = page.locator('#audit-verify-result');
  await out.locator('.verify').waitFor();
  const v = await api('GET', '/api/v1/audit/verify');
  assert.equal(v.ok, true);
  assert.match(await out.textContent(), /OK.* events, the chain holds/);
  assert.ok((await out.textContent()).includes(v.head) || (await out.textContent()).includes('head'));
  await page.kiln.done('governance-audit');
});
