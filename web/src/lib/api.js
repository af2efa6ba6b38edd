// api.js -- the dashboard's only way to the collector's JSON API. The
// API's read token (if the collector has api_tokens) is typed once into
// the sign-in form and kept in sessionStorage: it dies with the tab and
// is sent only as "Authorization: Bearer" to this origin. A 401 asks for
// it again (app.js shows the form on the "sextant-auth" event).

const KEY = 'sextant.token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch { /* storage off: the token lives as long as this page */ }
}

function headers(extra) {
  const hd = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

async function fail(res) {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const j = await res.json();
    if (j && j.error) msg = j.detail ? `${j.error}: ${j.detail}` : j.error;
  } catch { /* not JSON */ }
  if (res.status === 401) window.dispatchEvent(new CustomEvent('sextant-auth'));
  throw new ApiError(res.status, msg);
}

// GET /api/v1/@path (e.g. "status", "timeline?from=..."): the parsed
// JSON, or throws ApiError.
export async function get(path, opt = {}) {
  const res = await fetch(`/api/v1/${path}`, { headers: headers(), signal: opt.signal });
  if (!res.ok) await fail(res);
  return res.json();
}

// GET as text (exports: format=md|csv).
export async function getText(path, opt = {}) {
  const res = await fetch(`/api/v1/${path}`, {
    headers: headers({ Accept: '*/*' }), signal: opt.signal,
  });
  if (!res.ok) await fail(res);
  return res.text();
}

// POST JSON to /api/v1/@path: the parsed reply, or throws ApiError.
export async function post(path, body) {
  const res = await fetch(`/api/v1/${path}`, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  });
  if (!res.ok) await fail(res);
  return res.json();
}

// Live updates: asks GET /api/v1/@path every @ms with the last ETag
// (If-None-Match), calls onData(json) when the answer changed and
// onError(err) when a request failed; keeps going until the returned
// function is called. @path may be a function returning the path (for
// windows that slide with time).
export function poll(path, ms, onData, onError) {
  let etag = null, timer = null, stopped = false, ctl = null;
  const run = async () => {
    ctl = new AbortController();
    try {
      const p = typeof path === 'function' ? path() : path;
      const res = await fetch(`/api/v1/${p}`, {
        headers: headers(etag ? { 'If-None-Match': etag } : {}),
        signal: ctl.signal,
      });
      if (res.status !== 304) {
        if (!res.ok) await fail(res);
        etag = res.headers.get('ETag');
        const j = await res.json();
        if (!stopped) onData(j);
      }
    } catch (e) {
      if (!stopped && e.name !== 'AbortError' && onError) onError(e);
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (ctl) ctl.abort();
  };
}
