// #/ignores: findings an editor ignored (by fingerprint or rule, for a repo or a group), with who, why and until
// when; filter by repo, group, rule and whether they expired; delete one to count the finding again.
import { qs, get, getOptional, del, ApiError, canEdit } from './api.js';
import { h, clear, fmtDate, errorNotice, unavailable, loading, pageHead, select, field, toast, visible } from './ui.js';

export async function render(main, route) {
  main.append(pageHead('Ignored findings', 'Findings the gate lists but does not count, each with its reason. An expired ignore counts again.'));
  const q = route.query;
  // the repository filter is typed as a path; the API filters by id, so the path is resolved on submit
  const repoId = /^\d+$/.test(q.get('repo') || '') ? q.get('repo') : null;
  const repoPath = repoId ? await repoPathOf(repoId) : null;
  const repo = h('input', { type: 'text', name: 'repo', value: repoPath || '', placeholder: 'acme/platform/api', title: 'the ignores in force for this repository: its own and its groups\'' });
  const group = h('input', { type: 'text', name: 'group', value: q.get('group') || '', placeholder: 'acme/platform', title: 'ignores made for this group or one of its subgroups' });
  const rule = h('input', { type: 'text', name: 'rule', value: q.get('rule') || '', placeholder: 'aws-access-key-id' });
  const expired = select([['', 'In force and expired'], ['false', 'In force'], ['true', 'Expired']], q.get('expired') || '', { name: 'expired' });
  const apply = h('button', { type: 'submit' }, 'Filter');
  const msg = h('div', { 'aria-live': 'polite' });
  const form = h('form.toolbar', { role: 'search', 'aria-label': 'Filter ignored findings' }, field('Repository', repo), field('Group', group), field('Rule', rule), field('Expired', expired), apply);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const path = repo.value.trim();
    const id = !path ? null : path === repoPath ? repoId : await repoIdOf(path).catch((err) => { msg.append(errorNotice(err)); return undefined; });
    if (id === undefined) return;
    if (path && !id) {
      msg.append(h('div.notice.error', { role: 'alert' }, `No repository ${path}: type its full path as GitLab shows it (group/subgroup/name).`));
      return;
    }
    location.hash = `#/ignores${qs({ repo: id, group: group.value.trim(), rule: rule.value.trim(), expired: expired.value })}`;
  });
  // a repository filter (typed, or a gate report's "See ignore" link): say which, and offer the way back
  const repoNote = repoId ? h('div.notice.info', { 'data-filter': 'repo' }, `Showing the ignores in force for ${repoPath || `repository #${repoId}`} (its own and its groups'). `, h('a', { href: `#/ignores${qs({ group: q.get('group'), rule: q.get('rule'), expired: q.get('expired') })}` }, 'Show all repositories')) : null;
  const box = h('div', loading());
  const more = h('button', { type: 'button', hidden: true, 'data-action': 'older' }, 'Older ignores');
  main.append(form, msg, ...(repoNote ? [repoNote] : []), box, h('div.pager', h('span'), more));
  const tbody = h('tbody');
  let cursor = null;
  let first = true;
  const load = async () => {
    const res = await getOptional(`/api/ignores${qs({ repo: q.get('repo'), group: q.get('group'), rule: q.get('rule'), expired: q.get('expired'), cursor, limit: 100 })}`).catch((e) => ({ error: e }));
    if (first) clear(box);
    if (res.error) { box.append(errorNotice(res.error)); return; }
    if (!res.available) { box.append(unavailable('Ignored findings')); return; }
    const items = res.data.items;
    if (first) {
      if (!items.length) { box.append(h('p.empty', 'No ignored findings match. An editor ignores one from its gate report.')); return; }
      box.append(h('div.table-wrap', h('table.data', { 'aria-label': 'Ignored findings', 'data-table': 'ignores' },
        h('thead', h('tr', ['What', 'Where', 'Reason', 'By', 'Until', h('span.visually-hidden', 'Actions')].map((t) => h('th', { scope: 'col' }, t)))), tbody)));
    }
    first = false;
    for (const i of items) tbody.append(row(i));
    cursor = res.data.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', load);
  await load();
}

// The path of repository id, or null when it is not known (deleted since, or never synced).
async function repoPathOf(id) {
  const res = await getOptional(`/api/repos/${encodeURIComponent(id)}`).catch(() => null);
  return (res && res.data && res.data.path_with_namespace) || null;
}

// The id of the repository whose path is exactly path (GitLab paths are case-insensitive), or null.
async function repoIdOf(path) {
  const res = await get(`/api/repos${qs({ q: path, limit: 500 })}`);
  const want = path.toLowerCase();
  const found = (res.items || []).find((r) => (r.path_with_namespace || '').toLowerCase() === want);
  return found ? String(found.id) : null;
}

function row(i) {
  const what = i.rule_id ? [h('div', 'every finding of rule'), h('code', i.rule_id)]
    : [h('div', i.finding ? [h('code', i.finding.rule_id), ` in ${visible(i.finding.path)}:${i.finding.line}`] : 'one finding'), h('code.small', { title: i.fingerprint }, `${i.fingerprint.slice(0, 12)}…`)];
  const where = i.group ? [h('span.muted', 'group '), h('strong', i.group), h('span.muted', ' and subgroups')] : h('strong', i.path_with_namespace || `repo ${i.repo_id}`);
  const until = i.expires_at ? h('span', { 'data-expired': String(i.expired) }, `${i.expires_at} (UTC)`, i.expired ? h('span.badge.failed', ' expired') : '') : h('span.muted', 'no expiry');
  const tr = h('tr', { 'data-ignore': i.id },
    h('td', what), h('td', where), h('td', i.reason), h('td.small', i.created_by, h('div.muted', fmtDate(i.created_at))), h('td.small', until),
    h('td.num', canEdit() ? h('button.small.danger', { type: 'button', 'data-action': 'delete-ignore', onclick: () => remove(i, tr) }, 'Delete') : null));
  return tr;
}

async function remove(i, tr) {
  if (!confirm('Delete this ignore? The next gate runs count the finding again.')) return;
  try {
    await del(`/api/ignores/${i.id}`);
    tr.remove();
    toast('Deleted: the next gate runs count the finding again.');
  } catch (e) {
    toast(e instanceof ApiError ? e.message : String(e), 'error');
  }
}
