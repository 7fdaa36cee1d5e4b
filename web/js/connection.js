// #/connection: the GitLab URL, group and token; what the token allows; "Change token or group"; the sync panel.
import { get, put, del, ApiError, hasRole } from './api.js';
import { h, clear, field, notice, errorNotice, pageHead, loading, toast, fmtDate } from './ui.js';
import { invalidateBanner, connectionProblems, renderBanner } from './banner.js';
import { syncPanel } from './sync.js';

const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);
const KIND = { personal: 'personal access token', group_access: 'group access token', project_access: 'project access token', service_account: 'service-account token', unknown: 'token' };
const LEVEL = { 10: 'Guest', 20: 'Reporter', 30: 'Developer', 40: 'Maintainer', 50: 'Owner' };

// mrgate's public URL as GitLab would have to reach it: a warning before any apply when it cannot (loopback, private).
async function publicUrlWarning() {
  try {
    const p = await get('/api/connection/public-url');
    if (!p || p.reachable || !p.warning) return null;
    return h('div.notice.warn', { role: 'status', 'data-public-url-warning': '' },
      h('strong', 'GitLab may not reach mrgate: '), p.warning.replace(/^MRGATE_PUBLIC_URL /, 'the public URL '),
      '. Webhooks to ', h('code', p.hook_url), ' would be refused or never arrive, unless GitLab runs on this machine',
      ' or network and allows local requests (as ', h('code', 'make demo'), '\'s simulator does).');
  } catch {
    return null;
  }
}

export async function render(main) {
  main.append(pageHead('GitLab connection', 'The group mrgate gates, and the token it uses to talk to GitLab.'));
  const warnBox = h('div');
  const box = h('div');
  main.append(warnBox, box);
  publicUrlWarning().then((w) => { if (w) warnBox.append(w); });
  box.append(loading());
  let conn = null;
  try {
    conn = await get('/api/connection');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) {
      clear(box).append(errorNotice(e));
      return;
    }
  }
  clear(box);
  if (!conn && !hasRole('admin')) {
    box.append(notice('info', 'No GitLab group is connected yet. Only an admin can connect one.'));
    return;
  }
  if (!conn) {
    box.append(notice('info', 'Connect a GitLab group: enter the GitLab URL, the group (its subgroups are included) and a token with the ', h('code', 'api'), ' scope (', h('code', 'read_api'), ' lists repos but configures nothing).'));
    box.append(form(null, box));
    return;
  }
  show(conn, box);
}

// startSync: the group was just connected (or changed), so its first listing starts at once.
function show(conn, box, { startSync } = {}) {
  clear(box);
  const t = conn.token || {};
  // below Maintainer, the api scope gates only the projects where the user is Maintainer: not "full"
  const limited = conn.capability === 'gate' && conn.group_access_level !== null && conn.group_access_level !== undefined && conn.group_access_level < 40;
  const capText = limited ? 'Limited gating' : { gate: 'Full gating', read_only: 'Read-only', insufficient: 'Not enough access' }[conn.capability] || conn.capability;
  const capKind = conn.capability === 'gate' && !limited ? 'ok' : conn.capability === 'insufficient' ? 'error' : 'warn';
  const capWhy = limited ? 'the token has the api scope, but its user is below Maintainer on the group: webhooks and merge settings can only be changed on projects where it is Maintainer' : conn.capability_explained || '';
  // the capability notice says what the token can do: its warnings are not repeated below it
  const problems = connectionProblems(conn).filter((p) => !(p.capability || (limited && /below Maintainer/.test(p.text))));
  const updateBtn = h('button.primary', { type: 'button', 'data-action': 'update-token' }, 'Change token or group');
  const disconnectBtn = h('button.danger', { type: 'button' }, 'Disconnect');
  const formBox = h('div');
  box.append(h('section.panel', { 'aria-labelledby': 'conn-title', 'data-panel': 'connection' },
    h('div.page-head', h('div.grow', h('h2#conn-title', conn.group ? conn.group.full_path : 'Connection'),
      h('p.muted.small', conn.gitlab_url)), hasRole('admin') ? h('div.actions', updateBtn, disconnectBtn) : null),
    h(`div.notice.${capKind}`, { role: 'status', 'data-capability': conn.capability }, h('strong', `${capText}: `), capWhy),
    problems.map((p) => notice(p.kind, cap(p.text))),
    h('div.grid2',
      h('div', h('h3', 'Group'), h('dl.kv',
        h('dt', 'GitLab'), h('dd', h('a', { href: conn.gitlab_url, rel: 'noopener' }, conn.gitlab_url)),
        h('dt', 'Group'), h('dd', conn.group ? `${conn.group.full_path} (id ${conn.group.id})` : '—'),
        h('dt', 'Name'), h('dd', conn.group ? conn.group.name : '—'),
        h('dt', 'Private CA'), h('dd', conn.ca_bundle ? 'yes' : 'no'),
        conn.updated_at ? [h('dt', 'Updated'), h('dd', fmtDate(conn.updated_at))] : null)),
      h('div', h('h3', 'Token'), h('dl.kv', { 'data-token': '' },
        h('dt', 'Token'), h('dd', h('code', /^[…•.]/.test(t.last4 || '') ? t.last4 : `…${t.last4 || ''}`), t.name ? ` ${t.name}` : ''),
        h('dt', 'Kind'), h('dd', KIND[t.kind] || t.kind || '—'),
        h('dt', 'Scopes'), h('dd', { 'data-scopes': '' }, (t.scopes || []).length ? t.scopes.map((s) => h('span.chip', s)) : '—'),
        h('dt', 'Expires'), h('dd', { 'data-expires': '' }, t.expires_at || 'never'),
        h('dt', 'Status'), h('dd', t.status || 'ok', t.problem ? h('span.muted', ` — ${t.problem}`) : null),
        h('dt', 'Acts as'), h('dd', conn.user ? `${conn.user.username}${conn.user.bot ? ' (bot)' : ''}` : '—'),
        h('dt', 'Group role'), h('dd', conn.group_access_level ? `${LEVEL[conn.group_access_level] || conn.group_access_level} (${conn.group_access_level})` : '—'),
        t.checked_at ? [h('dt', 'Checked'), h('dd', fmtDate(t.checked_at))] : null))),
    formBox));
  box.append(syncPanel({ start: startSync }));
  updateBtn.addEventListener('click', () => {
    clear(formBox).append(form(conn, box));
    formBox.querySelector('input[name="token"]').focus();
  });
  disconnectBtn.addEventListener('click', async () => {
    if (!confirm('Remove the GitLab connection? Repositories and configs stay; nothing is changed on GitLab.')) return;
    try {
      await del('/api/connection');
      invalidateBanner();
      toast('The connection was removed.');
      location.reload();
    } catch (e) {
      formBox.replaceChildren(errorNotice(e));
    }
  });
}

// Another group (or GitLab) than the connected one: say what stays behind on GitLab, and let the user stop. mrgate
// stops managing the old group's repositories but does not undo what it set there; the server refuses the switch
// while a sync or job still works on the old group (409 busy).
// What the form would connect instead of the connected group, in words, or null when it is the same group (a new
// token) or nothing is connected.
function otherGroup(conn, url, group) {
  if (!conn || !conn.group) return null;
  const trim = (u) => u.replace(/\/+$/, '').toLowerCase();
  const sameUrl = trim(url) === trim(conn.gitlab_url);
  const path = group.replace(/^\/+|\/+$/g, '');
  const numeric = /^\d+$/.test(path);
  const sameGroup = numeric ? Number(path) === conn.group.id : path.toLowerCase() === conn.group.full_path.toLowerCase();
  if (sameUrl && sameGroup) return null;
  const old = conn.group.full_path;
  const name = numeric ? `group ${Number(path)}` : path;
  return sameUrl ? `${name} instead of ${old}` : `${name} on ${url} instead of ${old} on ${conn.gitlab_url}`;
}

// The newest job still working on the connected group's repositories (a preview changes nothing), or null. The
// server decides (409 busy); asking first spares the user the token check with GitLab and says where to cancel.
async function activeJob() {
  try {
    const res = await get('/api/jobs?limit=50');
    return (res.items || []).find((j) => ['queued', 'running'].includes(j.state) && j.kind !== 'dryrun') || null;
  } catch {
    return null;
  }
}

function confirmOtherGroup(conn, url, group) {
  const what = otherGroup(conn, url, group);
  if (!what) return true;
  const old = conn.group.full_path;
  return confirm(`Connect ${what}?\n\n`
    + `mrgate stops managing the repositories of ${old}, but what it set there stays on GitLab: its webhooks and, `
    + `where block merge was on, "Pipelines must succeed". To remove them, cancel now, select the repositories of ${old}, `
    + 'turn gating off with Configure Scans and let it apply; then connect the other group.');
}

function form(conn, box) {
  const url = h('input', { type: 'url', name: 'gitlab_url', required: true, value: conn ? conn.gitlab_url : 'https://gitlab.com', autocomplete: 'url' });
  const group = h('input', { type: 'text', name: 'group', required: true, value: conn && conn.group ? conn.group.full_path : '', placeholder: 'acme/platform' });
  const token = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false' });
  const ca = h('textarea', { name: 'ca_bundle', rows: 3, placeholder: '-----BEGIN CERTIFICATE-----' });
  const msg = h('div', { 'aria-live': 'assertive' });
  const submit = h('button.primary', { type: 'submit' }, conn ? 'Save the new token' : 'Connect');
  const title = h('h3', conn ? 'Change the token or group' : 'Connect GitLab');
  const hint = conn ? h('p.muted.small') : null;
  // another group (or GitLab address) in the form connects that group: the title, hint and button say so
  const relabel = () => {
    if (!conn) return;
    const what = otherGroup(conn, url.value.trim(), group.value.trim());
    submit.textContent = what ? 'Connect the other group' : 'Save the new token';
    hint.textContent = what
      ? `Connects ${what}. mrgate checks the token with it first; until it succeeds nothing changes.`
      : 'Replacing the token keeps every config. mrgate checks the new token before it stores it.';
  };
  relabel();
  url.addEventListener('input', relabel);
  group.addEventListener('input', relabel);
  const f = h('form', { 'aria-label': conn ? 'Change the token or group' : 'Connect GitLab', 'data-form': 'connection', novalidate: true },
    title,
    hint,
    msg,
    h('div.grid2', field('GitLab URL', url, 'gitlab.com or your self-managed GitLab'), field('Group', group, 'full path or numeric id; its subgroups are included')),
    field('Token', token, 'a group access token, personal access token or service-account token; api scope for full gating'),
    h('details', h('summary', 'Private certificate authority (optional)'), field('CA bundle (PEM)', ca, 'only when GitLab uses a certificate from a private CA')),
    h('div.actions', { style: 'margin-top:12px' }, submit));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.replaceChildren();
    const missing = [[url, 'GitLab URL'], [group, 'group'], [token, 'token']].find(([el]) => !el.value.trim());
    if (missing) {
      msg.append(notice('error', `Enter the ${missing[1]}.`));
      missing[0].focus();
      return;
    }
    if (otherGroup(conn, url.value.trim(), group.value.trim())) {
      const busy = await activeJob();
      if (busy) {
        msg.append(notice('error', `Job #${busy.id} is still working on the repositories of ${conn.group.full_path}: connect another group once it has finished, or `,
          h('a', { href: `#/jobs/${busy.id}`, 'data-busy-job': busy.id }, `cancel job #${busy.id} on its page`), '.'));
        return;
      }
    }
    if (!confirmOtherGroup(conn, url.value.trim(), group.value.trim())) return;
    submit.disabled = true;
    const old = submit.textContent;
    submit.textContent = 'Checking the token with GitLab…';
    const g = group.value.trim();
    try {
      const res = await put('/api/connection', {
        gitlab_url: url.value.trim(),
        group: /^\d+$/.test(g) ? Number(g) : g,
        token: token.value.trim(),
        ca_bundle: ca.value.trim() ? ca.value : null,
      });
      token.value = '';
      invalidateBanner();
      renderBanner('connection');
      // a new group (a first connect, or another group with the new token) is listed at once
      const newGroup = !conn || (res.group && conn.group && res.group.id !== conn.group.id);
      toast(!newGroup ? 'The token was updated.'
        : `Connected to ${res.group ? res.group.full_path : 'GitLab'}. Listing its repositories now.`);
      show(res, box, { startSync: newGroup });
      box.querySelector('[data-capability]').focus?.();
    } catch (err) {
      msg.append(errorNotice(err));
      token.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = old;
    }
  });
  return f;
}
