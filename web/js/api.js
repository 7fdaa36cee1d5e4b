// The one place that talks to the mrgate API: adds X-CSRF-Token on writes, sends 401 to the login page, turns
// {"error","message"} bodies into ApiError, and recognises endpoints this server does not have (yet).

let csrfToken = null;
let identity = null;
const unauthorizedHandlers = [];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code || 'error';
  }
  // The server has no such endpoint or method: a feature of a later version.
  get unavailable() {
    return (this.status === 404 && this.code === 'not_found' && /^no such endpoint/.test(this.message)) ||
      (this.status === 405 && this.code === 'method_not_allowed') || this.status === 501;
  }
}

let identityWaiters = [];
export function setIdentity(who) {
  identity = who;
  csrfToken = who && who.csrf_token ? who.csrf_token : null;
  if (who && !who.pending) setSessionHint(true);
  if (!who || !who.pending) {
    for (const resolve of identityWaiters.splice(0)) resolve(who);
  }
}

// Who we are once the session probe has answered (null: nobody): a page that marks "you" waits for it, since the
// first render runs while the probe is still out.
export function knownIdentity() {
  if (!identity || !identity.pending) return Promise.resolve(identity);
  return new Promise((resolve) => identityWaiters.push(resolve));
}

// "This browser logged in": only a hint (the session cookie is HttpOnly), so that a first visit goes to the login
// page without a request that must fail.
const HINT = 'mrgate.session';
export function hasSessionHint() {
  try { return localStorage.getItem(HINT) === '1'; } catch { return true; }
}
export function setSessionHint(on) {
  try {
    if (on) localStorage.setItem(HINT, '1');
    else localStorage.removeItem(HINT);
  } catch { /* storage disabled: probe every time */ }
}

export function getIdentity() {
  return identity;
}

// Does the signed-in user have at least this role (viewer < editor < admin)? While unknown, yes: the server
// decides either way (403), this only spares a user buttons they may not use.
const RANK = { viewer: 1, editor: 2, admin: 3 };
export function hasRole(role) {
  const who = identity;
  if (!who || who.pending || !who.role) return true;
  return (RANK[who.role] || 0) >= RANK[role];
}

// What a button that needs the editor role says to a viewer (its title), and whether it is usable at all.
export const EDITOR_ONLY = 'Only an editor or an admin can do this';
export function canEdit() {
  return hasRole('editor');
}

export function onUnauthorized(fn) {
  unauthorizedHandlers.push(fn);
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  if (opts.signal) init.signal = opts.signal;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'mrgate did not answer: check that the server is running');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const err = new ApiError(res.status, data && data.error, data && data.message ? data.message : `${method} ${path} failed with HTTP ${res.status}`);
  err.data = data; // the whole answer: some errors say more than error and message (overrides_changed's summary)
  if (res.status === 401 && !opts.noRedirect) {
    setIdentity(null);
    setSessionHint(false);
    for (const fn of unauthorizedHandlers) fn(err);
  }
  throw err;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);
export const patch = (path, body, opts) => api('PATCH', path, body, opts);

// A GET that answers null instead of throwing when the endpoint does not exist in this version.
export async function getOptional(path, opts) {
  try {
    return { data: await get(path, opts), available: true };
  } catch (e) {
    if (e instanceof ApiError && e.unavailable) return { data: null, available: false, error: e };
    throw e;
  }
}

export function encodeGroupPath(p) {
  return p.split('/').map(encodeURIComponent).join('/');
}
