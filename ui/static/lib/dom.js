// Small DOM helpers: element builders, tables, pagers, tabs, dialogs and
// formatting. No framework: a page renders into an element and re-renders
// when its data changes. Never set a style attribute (the server's CSP
// forbids inline styles); use classes or element.style.
const SVGNS = 'http://www.w3.org/2000/svg';

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

// h builds an HTML element: h('a', {href: '/ui/x'}, 'text', child, [more]).
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs instanceof Node || typeof attrs !== 'object' || Array.isArray(attrs)) { kids.unshift(attrs); attrs = null; }
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

// s builds an SVG element.
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  append(el, kids);
  return el;
}

// link is an in-app link: navigation without a page load.
export function link(href, ...kids) {
  return h('a', { href, 'data-nav': '' }, ...kids);
}

// put appends children to el, skipping null, undefined and false (which
// Element.append would print as text).
export function put(el, ...kids) { append(el, kids); return el; }

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// fmtNum prints a number readably: integers as they are, others with 4
// significant digits, very large or small ones in exponent form.
export function fmtNum(v) {
  if (v === null || v === undefined || v === '') return '';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return n.toLocaleString('en-US');
  const a = Math.abs(n);
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return n.toExponential(3);
  return String(Number(n.toPrecision(4)));
}

// fmtTime prints a time (ms since the epoch, seconds, or an RFC 3339
// string) as local "YYYY-MM-DD HH:MM:SS".
export function fmtTime(t) {
  if (t === null || t === undefined || t === '' || t === 0 || t === '0') return '';
  let d;
  if (typeof t === 'number' || /^\d+$/.test(t)) {
    let n = Number(t);
    if (n < 1e11) n *= 1000; // seconds
    d = new Date(n);
  } else d = new Date(t);
  if (isNaN(d)) return String(t);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// fmtDuration prints milliseconds as "1.2 s", "3 min 4 s", "2 h 5 min".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0 || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m} min ${Math.round(sec % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined || n === '') return '';
  n = Number(n);
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// badge is a coloured state label (FINISHED, FAILED, firing, …).
export function badge(text) {
  const t = String(text ?? '');
  const k = t.toLowerCase();
  let cls = 'neutral';
  if (/^(finished|succeeded|success|ready|active|passed|pass|ok|approved|resolved|healthy|promoted|completed|true)$/.test(k)) cls = 'good';
  else if (/^(failed|failure|error|firing|rejected|fail|killed|drift|drifted|aborted|rolled.?back|false|unhealthy)$/.test(k)) cls = 'bad';
  else if (/^(running|pending|scheduled|progressing|paused|warning|waiting|canary|shadow|queued)$/.test(k)) cls = 'warn';
  return h('span', { class: `badge ${cls}` }, t);
}

// table renders rows under columns. A column: {key, label, render(row) →
// node|string, value(row) → sortable value, numeric, sortable}. With
// opts.onSort the sort is the caller's (server-side); otherwise the table
// sorts its rows itself when a header is clicked.
export function table(columns, rows, opts = {}) {
  const state = { key: opts.sort?.key ?? null, dir: opts.sort?.dir ?? 'asc' };
  const wrap = h('div', { class: 'table-wrap' });
  const valueOf = (c, r) => (c.value ? c.value(r) : r[c.key]);
  function draw() {
    let data = rows.slice();
    if (!opts.onSort && state.key !== null) {
      const c = columns.find((c) => c.key === state.key);
      if (c) {
        const sgn = state.dir === 'asc' ? 1 : -1;
        data.sort((a, b) => {
          const x = valueOf(c, a), y = valueOf(c, b);
          if (x === y) return 0;
          if (x === undefined || x === null || x === '') return 1;
          if (y === undefined || y === null || y === '') return -1;
          const nx = Number(x), ny = Number(y);
          if (!Number.isNaN(nx) && !Number.isNaN(ny)) return (nx - ny) * sgn;
          return String(x).localeCompare(String(y)) * sgn;
        });
      }
    }
    const head = h('tr', null, columns.map((c) => {
      const sortable = c.sortable !== false;
      const active = state.key === c.key;
      const th = h('th', { scope: 'col', class: c.numeric ? 'num' : null, 'aria-sort': active ? (state.dir === 'asc' ? 'ascending' : 'descending') : (sortable ? 'none' : null) });
      if (!sortable) { th.append(c.label ?? c.key); return th; }
      th.append(h('button', {
        type: 'button', class: 'sort',
        onclick: () => {
          if (state.key === c.key) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
          else { state.key = c.key; state.dir = c.numeric ? 'desc' : 'asc'; }
          if (opts.onSort) opts.onSort({ key: state.key, dir: state.dir, column: c });
          else draw();
        },
      }, c.label ?? c.key, h('span', { class: 'arrow', 'aria-hidden': 'true' }, active ? (state.dir === 'asc' ? ' ▲' : ' ▼') : '')));
      return th;
    }));
    const body = h('tbody', null, data.length === 0
      ? h('tr', null, h('td', { colspan: columns.length, class: 'muted empty' }, opts.empty ?? 'Nothing here yet.'))
      : data.map((r) => {
        const tr = h('tr', null, columns.map((c) => {
          const v = c.render ? c.render(r) : valueOf(c, r);
          return h('td', { class: c.numeric ? 'num' : null }, v instanceof Node ? v : (c.numeric ? fmtNum(v) : (v ?? '')));
        }));
        if (opts.rowClass) { const rc = opts.rowClass(r); if (rc) tr.classList.add(rc); }
        return tr;
      }));
    clear(wrap).append(h('table', { class: 'data' }, opts.caption ? h('caption', null, opts.caption) : null, h('thead', null, head), body));
  }
  draw();
  return wrap;
}

// kv renders a definition list of [label, value] pairs.
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter((p) => p && p[1] !== undefined && p[1] !== null && p[1] !== '').map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

// pager renders Previous/Next buttons and a label ("Runs 1–100").
export function pager({ label, hasPrev, hasNext, onPrev, onNext }) {
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: !hasPrev, onclick: onPrev }, '‹ Previous'),
    h('span', { class: 'muted', 'aria-live': 'polite' }, label || ''),
    h('button', { type: 'button', disabled: !hasNext, onclick: onNext }, 'Next ›'));
}

// pending holds renders still running after a page's render resolved
// (a tab's content): the router waits for them before it clears
// aria-busy on <main>.
export const pending = new Set();
let focusTab = false;

// tabs renders a tab list; each tab is {id, label, render(el)}. The active
// tab is kept in the address's "tab" query parameter.
export function tabs(list, active, onChange) {
  const cur = list.find((t) => t.id === active) ? active : list[0]?.id;
  const panel = h('div', { class: 'tabpanel', role: 'tabpanel', id: 'tabpanel' });
  const bar = h('div', { class: 'tabs', role: 'tablist' }, list.map((t) => h('button', {
    type: 'button', role: 'tab', id: `tab-${t.id}`, 'aria-selected': t.id === cur ? 'true' : 'false', 'aria-controls': 'tabpanel',
    tabindex: t.id === cur ? '0' : '-1',
    onclick: () => onChange(t.id),
    onkeydown: (e) => {
      const i = list.findIndex((x) => x.id === t.id);
      let next = null;
      if (e.key === 'ArrowRight') next = list[(i + 1) % list.length].id;
      if (e.key === 'ArrowLeft') next = list[(i - 1 + list.length) % list.length].id;
      if (e.key === 'Home') next = list[0].id;
      if (e.key === 'End') next = list[list.length - 1].id;
      if (next !== null) { e.preventDefault(); focusTab = true; onChange(next, true); }
    },
  }, t.label)));
  const tab = list.find((t) => t.id === cur);
  if (tab) {
    const p = Promise.resolve().then(() => tab.render(panel)).catch((e) => panel.append(errorBox(e))).finally(() => pending.delete(p));
    pending.add(p);
  }
  if (focusTab) {
    // The tab list was drawn again after a key press: keep the focus on it.
    focusTab = false;
    setTimeout(() => bar.querySelector('[aria-selected="true"]')?.focus());
  }
  return h('div', null, bar, panel);
}

// confirmDialog asks before an action: resolves true when confirmed.
export function confirmDialog(title, message, confirmLabel = 'Confirm') {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'dlg-title' },
      h('h2', { id: 'dlg-title' }, title), h('p', null, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); resolve(false); } }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => { dlg.close(); resolve(true); } }, confirmLabel)));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(false); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function errorBox(e) {
  return h('div', { class: 'error', role: 'alert' }, e?.message ?? String(e));
}

export function toast(msg) {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(t._timer);
  t._timer = setTimeout(() => t.classList.remove('show'), 4000);
}

// section is a titled block.
export function section(title, ...kids) {
  return h('section', { class: 'block' }, h('h2', null, title), ...kids);
}

// pre shows preformatted text (JSON is pretty-printed).
export function pre(v) {
  return h('pre', { class: 'code' }, typeof v === 'string' ? v : JSON.stringify(v, null, 2));
}
