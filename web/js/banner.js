// The banner on every page: no connection, a token that expired, was revoked or expires soon, read-only access,
// or a failed resync (GitLab unreachable).
import { get, ApiError } from './api.js';
import { h, clear } from './ui.js';

let cache = null; // {at, conn, connErr, sync}
const TTL_MS = 30000;

export function invalidateBanner() {
  cache = null;
}

async function load() {
  if (cache && Date.now() - cache.at < TTL_MS) return cache;
  const c = { at: Date.now(), conn: null, connErr: null, sync: null };
  try {
    c.conn = await get('/api/connection');
  } catch (e) {
    c.connErr = e;
  }
  if (c.conn) {
    try {
      c.sync = await get('/api/sync');
    } catch { /* no sync yet */ }
  }
  cache = c;
  return c;
}

function daysUntil(date) {
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return null;
  return Math.ceil((d.getTime() - Date.now()) / 86400000);
}

export function connectionProblems(conn) {
  const out = [];
  if (!conn) return out;
  const t = conn.token || {};
  if (t.status && t.status !== 'ok') {
    out.push({ kind: 'error', text: t.problem ? `${t.problem}.` : `The GitLab token is ${t.status}: gates cannot be applied until the token is updated.`, token: t.status });
  } else if (t.expires_at && !(conn.warnings || []).some((w) => /expire/i.test(w))) {
    const d = daysUntil(t.expires_at);
    if (d !== null && d <= 30) out.push({ kind: 'warn', text: d < 0 ? `The GitLab token expired on ${t.expires_at}.` : `The GitLab token expires on ${t.expires_at} (in ${d} day${d === 1 ? '' : 's'}).` });
  }
  if (conn.capability === 'read_only') out.push({ kind: 'warn', capability: true, text: 'The token is read-only (read_api): repositories are listed, nothing can be configured on GitLab until the connection has a token with the api scope.' });
  if (conn.capability === 'insufficient') out.push({ kind: 'error', capability: true, text: conn.capability_explained || 'The token cannot list the group\'s repositories.' });
  for (const w of conn.warnings || []) {
    // the server's read_api warning says what the read-only line above says: once is enough
    if (conn.capability === 'read_only' && /read_api/.test(w)) continue;
    if (!out.some((o) => o.text.includes(w))) out.push({ kind: 'warn', text: w });
  }
  return out;
}

export async function renderBanner(route) {
  const box = document.getElementById('banners');
  let c;
  try {
    c = await load();
  } catch {
    return;
  }
  clear(box);
  const items = [];
  if (c.connErr instanceof ApiError && c.connErr.status === 404 && route !== 'connection') {
    items.push({ kind: 'warn', text: 'No GitLab group is connected yet.', link: ['#/connection', 'Connect GitLab'] });
  } else if (c.conn) {
    // the connection page shows the warnings itself; its banner keeps only the errors
    for (const p of connectionProblems(c.conn)) if (route !== 'connection' || p.kind === 'error') items.push({ ...p, link: route === 'connection' ? null : ['#/connection', 'Update token'] });
    const s = c.sync;
    if (s && s.state === 'failed') items.push({ kind: 'error', text: `The last resync failed: ${s.error || 'GitLab did not answer as expected'}.`, link: route === 'connection' ? null : ['#/connection', 'See the connection'] });
  }
  // de-duplicate the warnings that say the same thing
  const seen = new Set();
  for (const it of items) {
    if (seen.has(it.text)) continue;
    seen.add(it.text);
    box.append(h(`div.banner.${it.kind}`, { role: it.kind === 'error' ? 'alert' : 'status', 'data-banner': it.kind },
      h('span', { 'aria-hidden': 'true' }, it.kind === 'error' ? '✖' : '⚠'),
      h('span', it.text[0].toUpperCase() + it.text.slice(1), it.link ? [' ', h('a', { href: it.link[0] }, it.link[1])] : null)));
  }
}
