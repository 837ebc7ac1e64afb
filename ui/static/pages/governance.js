// Governance: users, API tokens, workspaces and their grants, approvals
// (the queue of pending requests and the policies) and the audit log with
// its hash-chain check. Addresses: /ui/governance/users (the default),
// /ui/governance/tokens, /ui/governance/workspaces,
// /ui/governance/workspaces/<name> (its grants), /ui/governance/approvals,
// /ui/governance/audit. Managing users, workspaces and the audit log
// needs a server administrator; others see what the API lets them.
import { h, link, clear, table, kv, pager, tabs, badge, confirmDialog, fmtTime, errorBox, section, toast } from '../lib/dom.js';
import { v1, listAll } from '../lib/api.js';

const TABS = [
  { id: 'users', label: 'Users', render: usersTab },
  { id: 'tokens', label: 'API tokens', render: tokensTab },
  { id: 'workspaces', label: 'Workspaces and roles', render: workspacesTab },
  { id: 'approvals', label: 'Approvals', render: approvalsTab },
  { id: 'audit', label: 'Audit log', render: auditTab },
];
const ROLES = ['viewer', 'editor', 'maintainer', 'admin'];
const RESOURCE_TYPES = [['', 'the whole workspace'], ['experiment', 'one experiment (by id)'], ['registered_model', 'one registered model'], ['endpoint', 'one endpoint']];
const SCOPES = [['all', 'all: whatever the user may'], ['write', 'write: read, predict and write'], ['read', 'read: read and predict'], ['predict', 'predict: call endpoints only']];
const TTLS = [['', 'never'], ['24h', '1 day'], ['168h', '7 days'], ['720h', '30 days'], ['2160h', '90 days'], ['8760h', '1 year']];
const AUDIT_PAGE = 50;
const enc = encodeURIComponent;
const count = (n, one, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

let cssLoaded = false;
function loadCSS() {
  if (cssLoaded) return;
  cssLoaded = true;
  document.head.append(h('link', { rel: 'stylesheet', href: '/ui/pages/governance.css' }));
}

// A token's secret waits here for the render after its creation, which
// shows it once and forgets it.
let newSecret = null;

export async function render(ctx) {
  loadCSS();
  const [, tab = 'users', sub] = ctx.segments;
  if (tab === 'workspaces' && sub) return workspacePage(ctx, sub);
  const cur = TABS.find((t) => t.id === tab) ? tab : 'users';
  ctx.title(`${TABS.find((t) => t.id === cur).label} · Governance`);
  ctx.el.append(h('h1', null, 'Governance'));
  if (ctx.me && ctx.me.auth === 'none') ctx.el.append(h('p', { class: 'muted' }, 'Access control is off on this server: every request acts as anonymous, and there are no users to manage.'));
  else if (ctx.me && !ctx.me.admin) ctx.el.append(h('p', { class: 'muted' }, 'Users, workspaces and the audit log are managed by server administrators; you see what your roles allow.'));
  // The router waits for the tab's data (tabs() does not wait itself).
  let pending;
  const list = TABS.map((t) => ({ ...t, render: (el) => (pending = t.render(el, ctx)) }));
  ctx.el.append(tabs(list, cur, (id) => ctx.go(`/ui/governance/${id}${id === cur ? location.search : ''}`)));
  await Promise.resolve(pending).catch(() => {}); // tabs() shows the error
}

// rerender draws the page again from the server's state.
function rerender(ctx) { ctx.go(location.pathname + location.search, { replace: true }); }

// messages is the tab's place for the errors of actions.
function messages() { return h('div', { class: 'messages', 'aria-live': 'polite' }); }
function showError(box, e) { clear(box).append(errorBox(e)); box.scrollIntoView?.({ block: 'nearest' }); }

// busy marks the page as working (as the router does while it renders),
// from an action's request until the page is drawn again.
function busy(ctx, on) { if (on) ctx.el.setAttribute('aria-busy', 'true'); else ctx.el.removeAttribute('aria-busy'); }

// act runs an API change, then says so and re-renders; an error is shown
// in box.
async function act(ctx, box, fn, done) {
  busy(ctx, true);
  try {
    await fn();
  } catch (e) {
    busy(ctx, false);
    showError(box, e);
    return false;
  }
  if (done) toast(done);
  rerender(ctx);
  return true;
}

// field is a labelled input of a form.
function field(id, label, input) {
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function select(options, value) {
  return h('select', null, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
}

// ---- users ------------------------------------------------------------

async function usersTab(el, ctx) {
  const users = (await v1('GET', '/users')).users || [];
  const box = messages();
  const self = ctx.me?.user;
  const toggle = (u, change, { title, message, label, done }) => async () => {
    if (title && !(await confirmDialog(title, message, label))) return;
    await act(ctx, box, () => v1('PATCH', `/users/${enc(u.name)}`, { body: change }), done);
  };
  const columns = [
    { key: 'name', label: 'User', render: (u) => h('span', null, h('strong', null, u.name), u.name === self ? h('span', { class: 'muted' }, ' (you)') : null) },
    { key: 'kind', label: 'Kind', render: (u) => (u.kind === 'service' ? 'service account' : 'user') },
    { key: 'display_name', label: 'Display name' },
    { key: 'email', label: 'Email' },
    { key: 'admin', label: 'Server admin', value: (u) => (u.admin ? 1 : 0), render: (u) => (u.admin ? badge('admin') : '') },
    { key: 'disabled', label: 'State', value: (u) => (u.disabled ? 'disabled' : 'active'), render: (u) => badge(u.disabled ? 'disabled' : 'active') },
    { key: 'has_password', label: 'Password', value: (u) => (u.has_password ? 1 : 0), render: (u) => (u.has_password ? 'yes' : h('span', { class: 'muted' }, 'no (tokens only)')) },
    { key: 'created_by', label: 'Created by' },
    { key: 'creation_time', label: 'Created', render: (u) => fmtTime(u.creation_time) },
    { key: 'actions', label: 'Actions', sortable: false, render: (u) => h('span', { class: 'row-actions' },
      u.disabled
        ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Enable ${u.name}`, onclick: toggle(u, { disabled: false }, { done: `${u.name} is enabled` }) }, 'Enable')
        : h('button', { type: 'button', class: 'secondary', 'aria-label': `Disable ${u.name}`, onclick: toggle(u, { disabled: true }, { title: `Disable ${u.name}?`, message: `${u.name} can no longer sign in, and their tokens stop working until they are enabled again.`, label: 'Disable', done: `${u.name} is disabled` }) }, 'Disable'),
      u.admin
        ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove admin from ${u.name}`, onclick: toggle(u, { admin: false }, { title: `Remove server administration from ${u.name}?`, message: `${u.name} keeps only the roles granted in workspaces.`, label: 'Remove admin', done: `${u.name} is no longer a server administrator` }) }, 'Remove admin')
        : h('button', { type: 'button', class: 'secondary', 'aria-label': `Make ${u.name} admin`, onclick: toggle(u, { admin: true }, { title: `Make ${u.name} a server administrator?`, message: `${u.name} may then do everything: manage users, workspaces, grants and the audit log.`, label: 'Make admin', done: `${u.name} is a server administrator` }) }, 'Make admin'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${u.name}`, onclick: async () => {
        if (!(await confirmDialog(`Delete ${u.name}?`, `The user ${u.name}, their grants and their tokens are removed. This cannot be undone.`, 'Delete'))) return;
        await act(ctx, box, () => v1('DELETE', `/users/${enc(u.name)}`), `${u.name} is deleted`);
      } }, 'Delete'),
      link(`/ui/governance/tokens?user=${enc(u.name)}`, 'Tokens')) },
  ];
  el.append(box, section('Users', table(columns, users, { sort: { key: 'name' }, caption: count(users.length, 'user or service account', 'users and service accounts'), rowClass: (u) => (u.disabled ? 'muted-row' : null) })),
    newUserForm(ctx, box));
}

function newUserForm(ctx, box) {
  const name = h('input', { required: true, autocomplete: 'off', pattern: '[A-Za-z0-9._@\\-]+', title: 'Letters, digits, . _ @ and -' });
  const kind = select([['user', 'user (signs in with a password)'], ['service', 'service account (tokens only)']], 'user');
  const pass = h('input', { type: 'password', autocomplete: 'new-password' });
  const email = h('input', { type: 'email', autocomplete: 'off' });
  const display = h('input', { autocomplete: 'off' });
  const admin = h('input', { type: 'checkbox', id: 'new-user-admin' });
  kind.onchange = () => { pass.disabled = kind.value === 'service'; };
  return section('New user', h('form', { class: 'form-grid', 'aria-label': 'New user', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), kind: kind.value, email: email.value.trim() || undefined, display_name: display.value.trim() || undefined, admin: admin.checked || undefined };
    if (kind.value !== 'service' && pass.value) body.password = pass.value;
    if (body.admin && !(await confirmDialog(`Make ${body.name} a server administrator?`, 'A server administrator may do everything on this server.', 'Create administrator'))) return;
    await act(ctx, box, () => v1('POST', '/users', { body }), `User ${body.name} created`);
  } },
  field('new-user-name', 'Name', name), field('new-user-kind', 'Kind', kind), field('new-user-password', 'Password', pass),
  field('new-user-email', 'Email', email), field('new-user-display', 'Display name', display),
  h('div', { class: 'field check' }, admin, h('label', { for: 'new-user-admin' }, 'Server administrator')),
  h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Create user'))));
}

// ---- tokens -----------------------------------------------------------

function tokenState(t) {
  if (t.revoked) return 'revoked';
  if (t.expires && t.expires < Date.now()) return 'expired';
  return 'active';
}

async function tokensTab(el, ctx) {
  const q = ctx.query;
  const user = q.get('user') || '';
  const all = q.get('all') === '1';
  const admin = !!ctx.me?.admin;
  const [tokensRes, users, workspaces] = await Promise.all([
    v1('GET', '/tokens', { query: { user: user || undefined } }),
    admin ? v1('GET', '/users').then((r) => r.users || []).catch(() => []) : Promise.resolve([]),
    v1('GET', '/workspaces').then((r) => r.workspaces || []).catch(() => []),
  ]);
  const tokens = (tokensRes.tokens || []).filter((t) => all || tokenState(t) === 'active');
  const box = messages();
  el.append(box);
  if (newSecret) {
    el.append(secretBox(newSecret));
    newSecret = null;
  }
  const userSel = h('select', { id: 'token-user-filter' }, h('option', { value: '' }, admin ? 'All users' : 'Mine'),
    users.map((u) => h('option', { value: u.name, selected: u.name === user }, u.name)));
  userSel.onchange = () => ctx.setQuery({ user: userSel.value });
  const allBox = h('input', { type: 'checkbox', id: 'token-all', checked: all, onchange: (e) => ctx.setQuery({ all: e.target.checked ? '1' : null }) });
  el.append(section('API tokens',
    h('div', { class: 'toolbar' }, admin ? [h('label', { for: 'token-user-filter' }, 'User'), userSel] : null,
      h('span', null, allBox, ' ', h('label', { for: 'token-all', class: 'plain' }, 'Show revoked and expired tokens'))),
    table([
      { key: 'token_id', label: 'Token', render: (t) => h('code', null, t.token_id) },
      { key: 'user', label: 'User' },
      { key: 'name', label: 'Name' },
      { key: 'scope', label: 'Scope' },
      { key: 'workspace', label: 'Workspace', render: (t) => t.workspace || h('span', { class: 'muted' }, 'any') },
      { key: 'creation_time', label: 'Created', render: (t) => fmtTime(t.creation_time) },
      { key: 'expires', label: 'Expires', render: (t) => (t.expires ? fmtTime(t.expires) : h('span', { class: 'muted' }, 'never')) },
      { key: 'last_used', label: 'Last used', render: (t) => fmtTime(t.last_used) },
      { key: 'state', label: 'State', value: tokenState, render: (t) => badge(tokenState(t)) },
      { key: 'actions', label: 'Actions', sortable: false, render: (t) => (tokenState(t) === 'revoked' ? '' : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke token ${t.token_id}`, onclick: async () => {
        if (!(await confirmDialog(`Revoke token ${t.token_id}?`, `${t.name ? `“${t.name}” of ` : 'The token of '}${t.user} stops working at once. This cannot be undone.`, 'Revoke'))) return;
        await act(ctx, box, () => v1('DELETE', `/tokens/${enc(t.token_id)}`), `Token ${t.token_id} revoked`);
      } }, 'Revoke')) },
    ], tokens, { sort: { key: 'creation_time', dir: 'desc' }, caption: count(tokens.length, all ? 'token' : 'active token'), empty: 'No tokens.' })),
  newTokenForm(ctx, box, { admin, users, workspaces }));
}

function newTokenForm(ctx, box, { admin, users, workspaces }) {
  const name = h('input', { autocomplete: 'off', placeholder: 'laptop, ci, grafana…' });
  const forUser = select(users.map((u) => [u.name, u.name]), ctx.me?.user);
  const scope = select(SCOPES, 'all');
  const ws = select([['', 'any workspace'], ...workspaces.map((w) => [w.name, w.name])], '');
  const ttl = select(TTLS, '');
  return section('New token', h('form', { class: 'form-grid', 'aria-label': 'New token', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim() || undefined, scope: scope.value, workspace: ws.value || undefined, ttl: ttl.value || undefined };
    if (admin && forUser.value && forUser.value !== ctx.me?.user) body.user = forUser.value;
    busy(ctx, true);
    try {
      const r = await v1('POST', '/tokens', { body });
      newSecret = r;
    } catch (ex) { busy(ctx, false); showError(box, ex); return; }
    toast(`Token ${newSecret.token.token_id} created`);
    rerender(ctx);
  } },
  field('new-token-name', 'Name', name),
  admin && users.length ? field('new-token-user', 'For user', forUser) : null,
  field('new-token-scope', 'Scope', scope), field('new-token-workspace', 'Workspace', ws), field('new-token-ttl', 'Expires after', ttl),
  h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Create token'))));
}

function secretBox(r) {
  const input = h('input', { id: 'new-token-secret', readonly: true, value: r.secret, class: 'secret', spellcheck: 'false', autocomplete: 'off' });
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(r.secret);
    } catch {
      input.select(); // no clipboard permission: select it for Ctrl+C
      try { document.execCommand('copy'); } catch { /* selected is enough */ }
    }
    status.textContent = 'Copied.';
    toast('Token copied');
  };
  const boxEl = h('section', { class: 'secret-box', 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, `Token ${r.token.token_id} for ${r.token.user}`),
    h('p', { class: 'warning', role: 'alert' }, 'Copy this token now: it is shown only this once. Kiln keeps only a hash of it and cannot show it again.'),
    h('div', { class: 'toolbar' }, h('label', { for: 'new-token-secret' }, 'Token'), input,
      h('button', { type: 'button', onclick: copy }, 'Copy token'),
      h('button', { type: 'button', class: 'secondary', onclick: () => boxEl.remove() }, 'I have saved it'), status),
    h('p', { class: 'muted' }, 'Use it as ', h('code', null, 'Authorization: Bearer …'), ', as ', h('code', null, 'KILN_TOKEN'), ' or ', h('code', null, 'MLFLOW_TRACKING_TOKEN'), '.'));
  return boxEl;
}

// ---- workspaces and grants --------------------------------------------

function appliesTo(g) {
  switch (g.resource_type) {
    case 'experiment': return `experiment ${g.resource}`;
    case 'registered_model': return `registered model ${g.resource}`;
    case 'endpoint': return `endpoint ${g.resource}`;
    default: return 'the whole workspace';
  }
}

async function workspacesTab(el, ctx) {
  const wss = (await v1('GET', '/workspaces')).workspaces || [];
  const counts = new Map(await Promise.all(wss.slice(0, 100).map((w) => v1('GET', `/workspaces/${enc(w.name)}/grants`).then((r) => [w.name, (r.grants || []).length]).catch(() => [w.name, null]))));
  const box = messages();
  const name = h('input', { required: true, autocomplete: 'off' });
  const desc = h('input', { autocomplete: 'off' });
  el.append(box, section('Workspaces', table([
    { key: 'name', label: 'Workspace', render: (w) => link(`/ui/governance/workspaces/${enc(w.name)}`, w.name) },
    { key: 'description', label: 'Description' },
    { key: 'grants', label: 'Grants', numeric: true, value: (w) => counts.get(w.name) },
    { key: 'created_by', label: 'Created by' },
    { key: 'creation_time', label: 'Created', render: (w) => fmtTime(w.creation_time) },
    { key: 'actions', label: 'Actions', sortable: false, render: (w) => h('span', { class: 'row-actions' },
      link(`/ui/governance/workspaces/${enc(w.name)}`, 'Roles'),
      w.name === 'default' ? null : h('button', { type: 'button', class: 'danger', 'aria-label': `Delete workspace ${w.name}`, onclick: async () => {
        if (!(await confirmDialog(`Delete workspace ${w.name}?`, `Its grants are removed. A workspace that still owns experiments, models or endpoints cannot be deleted.`, 'Delete'))) return;
        await act(ctx, box, () => v1('DELETE', `/workspaces/${enc(w.name)}`), `Workspace ${w.name} deleted`);
      } }, 'Delete')) },
  ], wss, { sort: { key: 'name' }, caption: count(wss.length, 'workspace') })),
  section('New workspace', h('form', { class: 'form-grid', 'aria-label': 'New workspace', onsubmit: async (e) => {
    e.preventDefault();
    const n = name.value.trim();
    await act(ctx, box, () => v1('POST', '/workspaces', { body: { name: n, description: desc.value.trim() || undefined } }), `Workspace ${n} created`);
  } }, field('new-ws-name', 'Name', name), field('new-ws-description', 'Description', desc), h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Create workspace')))),
  h('p', { class: 'muted' }, 'Roles, each allowing what the ones before it do: viewer (read, call endpoints), editor (create and log), maintainer (delete, promote, deploy, define pipelines and monitors), admin (grant roles in the workspace).'));
}

async function workspacePage(ctx, wsName) {
  ctx.title(`${wsName} · Workspaces`);
  const [wss, grants, users] = await Promise.all([
    v1('GET', '/workspaces').then((r) => r.workspaces || []),
    v1('GET', `/workspaces/${enc(wsName)}/grants`).then((r) => r.grants || []),
    v1('GET', '/users').then((r) => r.users || []).catch(() => []),
  ]);
  const ws = wss.find((w) => w.name === wsName);
  const box = messages();
  ctx.el.append(h('div', { class: 'crumbs' }, link('/ui/governance', 'Governance'), ' / ', link('/ui/governance/workspaces', 'Workspaces'), ' / '),
    h('h1', null, `Workspace ${wsName}`),
    ws ? kv([['Description', ws.description], ['Created by', ws.created_by], ['Created', fmtTime(ws.creation_time)]]) : errorBox(`No workspace '${wsName}' is listed.`),
    box);
  const put = (g, role) => act(ctx, box, () => v1('PUT', `/workspaces/${enc(wsName)}/grants`, { body: { user: g.user, role, resource_type: g.resource_type || undefined, resource: g.resource || undefined } }),
    `${g.user} is ${role} on ${appliesTo(g)}`);
  ctx.el.append(section('Roles', table([
    { key: 'user', label: 'User' },
    { key: 'applies', label: 'On', value: appliesTo, render: appliesTo },
    { key: 'role', label: 'Role', value: (g) => ROLES.indexOf(g.role), render: (g) => {
      const sel = h('select', { class: 'grant-role', 'aria-label': `Role of ${g.user} on ${appliesTo(g)}` }, ROLES.map((r) => h('option', { value: r, selected: r === g.role }, r)));
      sel.onchange = async () => {
        if (sel.value === 'admin' && !(await confirmDialog(`Make ${g.user} an admin of ${wsName}?`, `An admin of the workspace grants roles in it.`, 'Grant admin'))) { sel.value = g.role; return; }
        await put(g, sel.value);
      };
      return sel;
    } },
    { key: 'created_by', label: 'Granted by' },
    { key: 'creation_time', label: 'Granted', render: (g) => fmtTime(g.creation_time) },
    { key: 'actions', label: 'Actions', sortable: false, render: (g) => h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${g.user}'s role on ${appliesTo(g)}`, onclick: async () => {
      if (!(await confirmDialog(`Remove ${g.user}'s role?`, `${g.user} loses the ${g.role} role on ${appliesTo(g)} in ${wsName}.`, 'Remove'))) return;
      await act(ctx, box, () => v1('DELETE', `/workspaces/${enc(wsName)}/grants`, { query: { user: g.user, resource_type: g.resource_type || undefined, resource: g.resource || undefined } }), `${g.user}'s role removed`);
    } }, 'Remove') },
  ], grants, { sort: { key: 'user' }, caption: `${count(grants.length, 'grant')} in ${wsName}`, empty: 'Nobody has a role here yet (server administrators may do everything).' })),
  grantForm(ctx, box, wsName, users, put));
}

function grantForm(ctx, box, wsName, users, put) {
  const user = users.length ? select(users.map((u) => [u.name, u.name]), '') : h('input', { required: true });
  const role = select(ROLES.map((r) => [r, r]), 'viewer');
  const rtype = select(RESOURCE_TYPES, '');
  const res = h('input', { autocomplete: 'off', placeholder: 'experiment id, model or endpoint name', disabled: true });
  rtype.onchange = () => { res.disabled = !rtype.value; res.required = !!rtype.value; };
  return section('Grant a role', h('form', { class: 'form-grid', 'aria-label': 'Grant a role', onsubmit: async (e) => {
    e.preventDefault();
    const g = { user: user.value.trim(), resource_type: rtype.value, resource: rtype.value ? res.value.trim() : '' };
    if (role.value === 'admin' && !(await confirmDialog(`Make ${g.user} an admin of ${wsName}?`, 'An admin of the workspace grants roles in it.', 'Grant admin'))) return;
    await put(g, role.value);
  } }, field('grant-user', 'User', user), field('grant-role', 'Role', role), field('grant-resource-type', 'On', rtype), field('grant-resource', 'Resource', res),
  h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Grant'))));
}

// ---- approvals --------------------------------------------------------

// decisionDialog asks for an approval or rejection with a comment:
// resolves {comment} when confirmed, null when cancelled.
function decisionDialog(decision, r) {
  return new Promise((resolve) => {
    const comment = h('textarea', { id: 'decision-comment', maxlength: 4096 });
    const verb = decision === 'approve' ? 'Approve' : 'Reject';
    let done = false;
    const finish = (v) => { if (done) return; done = true; dlg.close(); dlg.remove(); resolve(v); };
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'decision-title' },
      h('h2', { id: 'decision-title' }, `${verb} ${r.model} v${r.version} as ${r.target_type} ${r.target}?`),
      h('p', null, `Requested by ${r.requested_by}${r.reason ? `: “${r.reason}”` : ''}. ${decision === 'approve' ? `It needs ${r.required} approval${r.required === 1 ? '' : 's'} (${r.approvals} so far).` : 'One rejection closes the request.'}`),
      h('label', { for: 'decision-comment' }, 'Comment'), comment,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => finish(null) }, 'Cancel'),
        h('button', { type: 'button', class: decision === 'approve' ? null : 'danger', onclick: () => finish({ comment: comment.value.trim() }) }, verb)));
    dlg.addEventListener('close', () => finish(null));
    document.body.append(dlg);
    dlg.showModal();
    comment.focus();
  });
}

const modelHref = (m, v) => `/ui/models/${enc(m)}${v ? `/versions/${v}` : ''}`;

async function approvalsTab(el, ctx) {
  const stateQ = ctx.query.get('state') || 'pending';
  const [reqs, policies] = await Promise.all([
    v1('GET', '/approval-requests', { query: { state: stateQ === 'all' ? undefined : stateQ } }).then((r) => r.requests || []),
    v1('GET', '/approval-policies').then((r) => r.policies || []),
  ]);
  const box = messages();
  const decide = (r, decision) => async () => {
    const d = await decisionDialog(decision, r);
    if (!d) return;
    await act(ctx, box, () => v1('POST', `/approval-requests/${enc(r.request_id)}/${decision}`, { body: d.comment ? { comment: d.comment } : {} }),
      `Request ${r.request_id.slice(0, 10)}… ${decision === 'approve' ? 'approved' : 'rejected'}`);
  };
  const stateSel = select([['pending', 'Pending (the queue)'], ['approved', 'Approved'], ['rejected', 'Rejected'], ['all', 'All']], stateQ);
  stateSel.id = 'approval-state';
  stateSel.onchange = () => ctx.setQuery({ state: stateSel.value === 'pending' ? null : stateSel.value });
  el.append(box, section(stateQ === 'pending' ? 'Queue' : 'Requests',
    h('div', { class: 'toolbar' }, h('label', { for: 'approval-state' }, 'Show'), stateSel,
      h('span', { class: 'muted' }, 'A requester never decides their own request; one rejection closes one.')),
    table([
      { key: 'request_id', label: 'Request', render: (r) => h('code', { title: r.request_id }, r.request_id.slice(0, 10) + '…') },
      { key: 'model', label: 'Model version', value: (r) => `${r.model}/${r.version}`, render: (r) => link(modelHref(r.model, r.version), `${r.model} v${r.version}`) },
      { key: 'target', label: 'To become', value: (r) => `${r.target_type} ${r.target}`, render: (r) => (r.target_type === 'endpoint' ? ['endpoint ', link(`/ui/endpoints/${enc(r.target)}`, r.target)] : `alias ${r.target}`) },
      { key: 'requested_by', label: 'Requested by' },
      { key: 'reason', label: 'Reason' },
      { key: 'approvals', label: 'Approvals', value: (r) => r.approvals, render: (r) => `${r.approvals} of ${r.required}` },
      { key: 'state', label: 'State', render: (r) => badge(r.state) },
      { key: 'creation_time', label: 'Requested', render: (r) => fmtTime(r.creation_time) },
      { key: 'votes', label: 'Votes', sortable: false, render: (r) => ((r.votes || []).length ? h('ul', { class: 'votes' }, r.votes.map((v) => h('li', { title: fmtTime(v.time) }, `${v.voter} ${v.decision === 'approve' ? 'approved' : 'rejected'}`, v.comment ? `: “${v.comment}”` : ''))) : '') },
      { key: 'actions', label: 'Decide', sortable: false, render: (r) => (r.state !== 'pending' ? '' : h('span', { class: 'row-actions' },
        h('button', { type: 'button', 'aria-label': `Approve request ${r.request_id}`, onclick: decide(r, 'approve') }, 'Approve'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Reject request ${r.request_id}`, onclick: decide(r, 'reject') }, 'Reject'))) },
    ], reqs, { sort: { key: 'creation_time', dir: 'desc' }, caption: count(reqs.length, `${stateQ === 'all' ? '' : stateQ + ' '}request`), empty: stateQ === 'pending' ? 'Nothing waits for approval.' : 'No requests.' })),
  section('Policies', table([
    { key: 'name', label: 'Policy' },
    { key: 'model', label: 'Model', render: (p) => link(modelHref(p.model), p.model) },
    { key: 'aliases', label: 'Protected aliases', value: (p) => (p.aliases || []).join(', ') },
    { key: 'endpoints', label: 'Protected endpoints', value: (p) => (p.endpoints || []).join(', ') },
    { key: 'required', label: 'Approvals needed', numeric: true },
    { key: 'updated_by', label: 'Updated by' },
    { key: 'last_update_time', label: 'Updated', render: (p) => fmtTime(p.last_update_time) },
    { key: 'actions', label: 'Actions', sortable: false, render: (p) => h('button', { type: 'button', class: 'danger', 'aria-label': `Delete policy ${p.name}`, onclick: async () => {
      if (!(await confirmDialog(`Delete policy ${p.name}?`, `Moves of ${p.model} stop needing approval (its requests stay, as history).`, 'Delete'))) return;
      await act(ctx, box, () => v1('DELETE', `/approval-policies/${enc(p.name)}`), `Policy ${p.name} deleted`);
    } }, 'Delete') },
  ], policies, { sort: { key: 'name' }, caption: count(policies.length, 'policy', 'policies'), empty: 'No approval policies: promotions need no approval.' })),
  policyForm(ctx, box));
}

function policyForm(ctx, box) {
  const name = h('input', { required: true, autocomplete: 'off' });
  const model = h('input', { required: true, autocomplete: 'off' });
  const aliases = h('input', { autocomplete: 'off', placeholder: 'champion, production' });
  const endpoints = h('input', { autocomplete: 'off', placeholder: 'churn-prod' });
  const required = h('input', { type: 'number', min: 1, value: '1', required: true });
  const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
  return section('New or changed policy', h('form', { class: 'form-grid', 'aria-label': 'Approval policy', onsubmit: async (e) => {
    e.preventDefault();
    const n = name.value.trim();
    await act(ctx, box, () => v1('PUT', `/approval-policies/${enc(n)}`, { body: { name: n, model: model.value.trim(), aliases: list(aliases.value), endpoints: list(endpoints.value), required: Number(required.value) } }), `Policy ${n} saved`);
  } }, field('policy-name', 'Name', name), field('policy-model', 'Registered model', model), field('policy-aliases', 'Protected aliases (comma-separated)', aliases),
  field('policy-endpoints', 'Protected endpoints (comma-separated)', endpoints), field('policy-required', 'Approvals needed', required),
  h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Save policy'))));
}

// ---- the audit log ----------------------------------------------------

function statusBadge(code) {
  const cls = code >= 200 && code < 300 ? 'good' : code === 401 || code === 403 ? 'bad' : code >= 400 ? 'warn' : 'neutral';
  return h('span', { class: `badge ${cls}`, title: code === 403 ? 'refused' : null }, String(code));
}

// msParam reads a time of the address (ms since the epoch); undefined
// when absent or not a number.
function msParam(v) {
  const n = Number(v);
  return v && Number.isFinite(n) && n > 0 ? Math.trunc(n) : undefined;
}

// localInput is a datetime-local value (local time, to the second) for ms.
function localInput(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// inputMs is the ms of a datetime-local value (local time); null when empty.
function inputMs(v) {
  if (!v) return null;
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : null;
}

const short = (d) => (d ? d.replace(/^sha256:/, '').slice(0, 12) + '…' : '');

async function auditTab(el, ctx) {
  const q = ctx.query;
  const actor = q.get('actor') || '';
  const action = q.get('action') || '';
  const resource = q.get('resource') || '';
  const before = q.get('before') || '';
  const after = q.get('after') || '';
  // The time range: ms since the epoch in the address, local time in the form.
  const since = msParam(q.get('since'));
  const until = msParam(q.get('until'));
  const base = { actor: actor || undefined, action: action || undefined, resource: resource || undefined, since, until, limit: AUDIT_PAGE };
  const filtered = !!(actor || action || resource || since || until);
  const [res, users] = await Promise.all([
    after ? v1('GET', '/audit', { query: { ...base, after, order: 'asc' } }) : v1('GET', '/audit', { query: { ...base, before: before || undefined, order: 'desc' } }),
    listAll('/users', 'users').catch(() => []),
  ]);
  let events = res.events || [];
  if (after) events = events.slice().reverse(); // newest first on every page
  const actorIn = h('input', { id: 'audit-actor', value: actor, list: 'audit-actors', autocomplete: 'off', placeholder: 'user name' });
  const actionIn = h('input', { id: 'audit-action', value: action, autocomplete: 'off', placeholder: 'approve, POST /api/v1/users…' });
  const resourceIn = h('input', { id: 'audit-resource', value: resource, autocomplete: 'off', placeholder: 'churn, /api/v1/tokens…' });
  const sinceIn = h('input', { id: 'audit-since', type: 'datetime-local', step: 1, value: localInput(since) });
  const untilIn = h('input', { id: 'audit-until', type: 'datetime-local', step: 1, value: localInput(until) });
  const form = h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Filter the audit log', onsubmit: (e) => {
    e.preventDefault();
    ctx.setQuery({ actor: actorIn.value.trim(), action: actionIn.value.trim(), resource: resourceIn.value.trim(),
      since: inputMs(sinceIn.value), until: inputMs(untilIn.value), before: null, after: null });
  } },
  h('label', { for: 'audit-actor' }, 'Actor'), actorIn, h('datalist', { id: 'audit-actors' }, users.map((u) => h('option', { value: u.name }))),
  h('label', { for: 'audit-action' }, 'Action contains'), actionIn,
  h('label', { for: 'audit-resource' }, 'Resource or path contains'), resourceIn,
  h('label', { for: 'audit-since' }, 'From'), sinceIn,
  h('label', { for: 'audit-until' }, 'Until'), untilIn,
  h('button', { type: 'submit' }, 'Filter'),
  filtered ? h('button', { type: 'button', class: 'secondary', onclick: () => ctx.setQuery({ actor: null, action: null, resource: null, since: null, until: null, before: null, after: null }) }, 'Clear') : null);
  const verifyOut = h('div', { id: 'audit-verify-result', 'aria-live': 'polite' });
  const verifyBtn = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    verifyBtn.disabled = true;
    clear(verifyOut).append(h('span', { class: 'muted' }, 'Walking the chain…'));
    try {
      const v = await v1('GET', '/audit/verify');
      clear(verifyOut).append(v.ok
        ? h('p', { class: 'verify ok' }, badge('OK'), ` ${v.events.toLocaleString('en-US')} events, the chain holds (last ${v.last_seq ?? 0}`, v.head ? [', head ', h('code', null, v.head)] : null, '). Write the head down elsewhere: a later check then proves nothing before it was rewritten.')
        : h('p', { class: 'verify bad' }, badge('TAMPERED'), ` ${v.problem || 'the chain is broken'} (first bad event ${v.first_bad_seq}; ${v.events} checked before it).`));
    } catch (e) {
      clear(verifyOut).append(errorBox(e));
    } finally { verifyBtn.disabled = false; }
  } }, 'Verify chain');
  const hi = events.length ? events[0].seq : 0;
  const lo = events.length ? events[events.length - 1].seq : 0;
  const atNewest = !before && (!after || events.length < AUDIT_PAGE);
  el.append(section('Audit log', form,
    h('div', { class: 'toolbar' }, verifyBtn, h('span', { class: 'muted' }, 'Every change and every refusal, hash-chained: the check walks the whole log.')), verifyOut,
    table([
      { key: 'seq', label: 'Seq', numeric: true },
      { key: 'time', label: 'When', render: (e) => fmtTime(e.time) },
      { key: 'actor', label: 'Who', render: (e) => h('span', null, e.actor, e.auth ? h('span', { class: 'muted' }, ` (${e.auth})`) : null) },
      { key: 'action', label: 'What', render: (e) => h('code', null, e.action) },
      { key: 'path', label: 'Resource', value: (e) => e.resource || e.path, render: (e) => h('span', null, e.resource ? [e.resource, ' '] : null, h('code', { class: 'muted' }, e.path || '')) },
      { key: 'status', label: 'Status', render: (e) => statusBadge(e.status) },
      { key: 'request_id', label: 'Request ID', render: (e) => h('code', null, e.request_id || '') },
      { key: 'request_digest', label: 'Request digest', render: (e) => (e.request_digest ? h('code', { title: e.request_digest }, short(e.request_digest)) : '') },
      { key: 'details', label: 'Details', sortable: false, render: (e) => h('details', null, h('summary', null, 'more'), kv([
        ['Workspace', e.workspace], ['Method', e.method], ['Path', e.path], ['Source', e.source_ip], ['User agent', e.user_agent],
        ['Request digest', e.request_digest && h('code', null, e.request_digest)], ['Response digest', e.response_digest && h('code', null, e.response_digest)],
        ['Detail', e.detail], ['Hash', h('code', null, e.hash)], ['Previous hash', h('code', null, e.prev_hash)],
      ])) },
    ], events, { caption: `Events ${lo}–${hi}, newest first${filtered ? ' (filtered)' : ''}${since || until ? `, ${since ? 'from ' + fmtTime(since) : ''}${since && until ? ' ' : ''}${until ? 'until ' + fmtTime(until) : ''}` : ''}`, empty: 'No events match.', rowClass: (e) => (e.status === 403 || e.status === 401 ? 'refused' : null) }),
    pager({
      label: events.length ? `Events ${lo}–${hi}` : '',
      hasPrev: !atNewest, hasNext: events.length === AUDIT_PAGE && lo > 1,
      onPrev: () => ctx.setQuery({ after: hi, before: null }),
      onNext: () => ctx.setQuery({ before: lo, after: null }),
    })));
}
