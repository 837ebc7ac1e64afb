// The server's APIs as the UI calls them: the MLflow REST API (ajax-api,
// as MLflow's own UI does) and Kiln's native API under /api/v1. Requests
// carry the session's CSRF token on changes and the chosen workspace.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

let csrf = sessionStorage.getItem('kiln.csrf') || '';
export function setCSRF(t) { csrf = t || ''; sessionStorage.setItem('kiln.csrf', csrf); }

export function workspace() { return localStorage.getItem('kiln.workspace') || ''; }
export function setWorkspace(ws) { if (ws) localStorage.setItem('kiln.workspace', ws); else localStorage.removeItem('kiln.workspace'); }

// onUnauthorized is called on a 401 (the app shows the sign-in form).
export let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

function qs(query) {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else p.append(k, v);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

// request sends one request and returns the decoded JSON (or text).
export async function request(method, url, { body, query, raw } = {}) {
  // X-Kiln-UI: a 401 then has no Basic challenge (no browser password dialog).
  const headers = { Accept: 'application/json', 'X-Kiln-UI': '1' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  const ws = workspace();
  if (ws) headers['X-Kiln-Workspace'] = ws;
  const res = await fetch(url + qs(query), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (raw) {
    if (!res.ok) throw new ApiError(res.status, '', await res.text());
    return res;
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch { data = text; }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    const e = data && typeof data === 'object' ? (data.error && typeof data.error === 'object' ? data.error : data) : {};
    throw new ApiError(res.status, e.code || e.error_code || '', e.message || (typeof data === 'string' ? data : `HTTP ${res.status}`));
  }
  return data;
}

// mlflow calls the MLflow REST API: mlflow('GET', 'runs/get', {query: {run_id}}).
export function mlflow(method, path, opts) { return request(method, `/ajax-api/2.0/mlflow/${path}`, opts); }

// v1 calls Kiln's native API: v1('GET', '/datasets').
export function v1(method, path, opts) { return request(method, `/api/v1${path}`, opts); }

// artifactURL is where a run's artifact downloads from.
export function artifactURL(runId, path) {
  return `/get-artifact${qs({ run_id: runId, path })}`;
}

// paginate fetches every page of a native list (bounded by max items).
export async function listAll(path, key, max = 1000) {
  const out = [];
  let token = '';
  for (;;) {
    const r = await v1('GET', path, { query: { page_token: token || undefined } });
    out.push(...(r[key] || []));
    token = r.next_page_token || '';
    if (!token || out.length >= max) return out;
  }
}
