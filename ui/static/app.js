// The application shell: navigation, sign-in, the workspace picker and a
// router that maps /ui/<section>/… to the page module that renders it.
// Pages are ES modules in pages/ exporting render(ctx); they are loaded on
// first use, so one page's failure never breaks the others.
import { h, clear, errorBox, pending } from './lib/dom.js';
import { v1, setCSRF, workspace, setWorkspace, setUnauthorizedHandler, ApiError } from './lib/api.js';

// Sections: the nav entries, and which module renders which first path
// segment.
export const sections = [
  { id: 'experiments', label: 'Experiments', module: 'experiments' },
  { id: 'models', label: 'Models', module: 'models' },
  { id: 'endpoints', label: 'Endpoints', module: 'endpoints' },
  { id: 'monitoring', label: 'Monitoring', module: 'monitoring' },
  { id: 'data', label: 'Data', module: 'data' },
  { id: 'features', label: 'Features', module: 'features' },
  { id: 'pipelines', label: 'Pipelines', module: 'pipelines' },
  { id: 'studies', label: 'Tuning', module: 'pipelines' },
  { id: 'scoring', label: 'Scoring', module: 'scoring' },
  { id: 'governance', label: 'Governance', module: 'governance' },
  { id: 'lineage', label: 'Lineage', module: 'lineage', hidden: true },
  { id: 'compare', label: 'Compare', module: 'experiments', hidden: true },
];

const main = () => document.getElementById('main');
let me = null;
let renderSeq = 0;

function pathSegments() {
  const rel = location.pathname.replace(/^\/ui\/?/, '');
  return rel.split('/').filter(Boolean).map(decodeURIComponent);
}

// go navigates within the app (pushState) and renders.
export function go(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  route();
}

// setQuery changes the address's query parameters (null removes one) and
// re-renders the page: filters, sorting and paging live in the address,
// so every view can be bookmarked and the Back button works.
export function setQuery(changes, { replace = false } = {}) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') q.delete(k); else q.set(k, v);
  }
  const s = q.toString();
  go(location.pathname + (s ? `?${s}` : ''), { replace });
}

function drawNav(active) {
  const nav = document.getElementById('nav');
  clear(nav).append(h('ul', null, sections.filter((s) => !s.hidden).map((s) => h('li', null,
    h('a', { href: `/ui/${s.id}`, 'data-nav': '', 'aria-current': s.id === active ? 'page' : null }, s.label)))));
}

async function drawUser() {
  const u = document.getElementById('user');
  clear(u);
  if (!me) return;
  if (me.auth === 'none') {
    u.append(h('span', { class: 'muted', title: 'Access control is off on this server (loopback only)' }, 'anonymous'));
    return;
  }
  u.append(h('span', null, me.user), ' ',
    h('button', { type: 'button', class: 'link', onclick: async () => {
      try { await v1('POST', '/logout', { body: {} }); } catch { /* already gone */ }
      setCSRF(''); me = null; showLogin();
    } }, 'Sign out'));
}

async function drawWorkspaces() {
  const sel = document.getElementById('workspace');
  clear(sel);
  let list = [];
  try { list = (await v1('GET', '/workspaces')).workspaces || []; } catch { /* access off or not allowed */ }
  const names = list.map((w) => w.name);
  if (!names.includes('default')) names.unshift('default');
  const cur = workspace() || 'default';
  if (!names.includes(cur)) names.push(cur);
  for (const n of names) sel.append(h('option', { value: n, selected: n === cur }, n));
  sel.onchange = () => { setWorkspace(sel.value === 'default' ? '' : sel.value); route(); };
}

function showLogin(message) {
  drawNav('');
  const err = h('div', { role: 'alert', class: message ? 'error' : 'sr-only' }, message || '');
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'login', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await v1('POST', '/login', { body: { user: user.value, password: pass.value } });
      setCSRF(r.csrf_token);
      await start();
    } catch (ex) {
      err.className = 'error';
      err.textContent = ex.status === 401 || ex.status === 403 ? 'Wrong user name or password.' : ex.message;
    }
  } },
  h('h1', null, 'Sign in to Kiln'), err,
  h('label', { for: 'login-user' }, 'User'), user,
  h('label', { for: 'login-password' }, 'Password'), pass,
  h('button', { type: 'submit' }, 'Sign in'));
  clear(main()).append(form);
  main().removeAttribute('aria-busy');
  user.focus();
}

// route renders the page the address names.
export async function route() {
  const seq = ++renderSeq;
  const segs = pathSegments();
  const sec = sections.find((s) => s.id === (segs[0] || 'experiments'));
  drawNav(sec ? (sec.hidden ? '' : sec.id) : '');
  const el = clear(main());
  if (!sec) {
    el.append(h('h1', null, 'Not found'), h('p', null, 'No page at ', h('code', null, location.pathname), '.'));
    el.removeAttribute('aria-busy');
    return;
  }
  el.setAttribute('aria-busy', 'true');
  const ctx = {
    el, segments: segs.length ? segs : ['experiments'], query: new URLSearchParams(location.search), me,
    go, setQuery,
    title: (t) => { document.title = `${t} · Kiln`; },
    stale: () => seq !== renderSeq, // a newer navigation started
  };
  try {
    const mod = await import(`./pages/${sec.module}.js`);
    if (seq !== renderSeq) return;
    await mod.render(ctx);
    // Content drawn after render resolved (a tab's panel) counts too.
    while (pending.size && seq === renderSeq) await Promise.allSettled([...pending]);
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return; // the sign-in form is up
    el.append(errorBox(e));
    console.error(e);
  } finally {
    if (seq === renderSeq) el.removeAttribute('aria-busy');
  }
}

async function start() {
  try {
    me = await v1('GET', '/whoami');
    if (me.csrf_token) setCSRF(me.csrf_token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { showLogin(); return; }
    clear(main()).append(errorBox(e));
    main().removeAttribute('aria-busy');
    return;
  }
  await Promise.all([drawUser(), drawWorkspaces()]);
  await route();
}

setUnauthorizedHandler(() => { if (me) { me = null; showLogin('Your session has ended: sign in again.'); } });

// In-app links navigate without reloading.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  e.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', () => route());
start();
