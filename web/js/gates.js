// #/gates and #/gates/:id: merge-request gate runs with their verdicts; one run's findings (the page a GitLab
// commit status links to).
import { get, post, qs, getOptional, ApiError, canEdit, EDITOR_ONLY } from './api.js';

import { h, clear, badge, sevBadge, fmtNum, fmtDate, time, errorNotice, unavailable, loading, pageHead, select, field, countedField, tooLong, httpUrl, openModal, toast, visible } from './ui.js';

const VERDICT_CLASS = { passed: 'passed', bypassed: 'passed', failed: 'failed', error: 'error', timeout: 'failed', skipped: 'unchanged', queued: 'queued', running: 'running', superseded: 'unchanged' };
const verdictOf = (g) => g.verdict || g.state || 'queued';
// A bypass's and an ignore's reason: 1 to 200 characters (POST /api/gates/{id}/bypass, POST /api/ignores)
const REASON_MAX = 200;
const verdictBadge = (v) => h(`span.badge.${VERDICT_CLASS[v] || 'pending'}`, { 'data-status': v }, v === 'timeout' ? 'timed out' : v);

export async function render(main, route) {
  if (route.args[0]) return renderGate(main, route.args[0]);
  return renderList(main, route);
}

async function renderList(main, route) {
  main.append(pageHead('Gates', 'Every merge request gate run, newest first.'));
  const verdict = select([['', 'Any verdict'], ['failed', 'Failed'], ['passed', 'Passed'], ['error', 'Error'], ['timeout', 'Timed out'], ['skipped', 'Skipped'], ['bypassed', 'Bypassed']], route.query.get('verdict') || '', { name: 'verdict' });
  const box = h('div', loading());
  main.append(h('div.toolbar', { role: 'search', 'aria-label': 'Filter gate runs' }, field('Verdict', verdict)), box);
  const load = async () => {
    const { data, available } = await getOptional(`/api/gates${qs({ verdict: verdict.value, repo: route.query.get('repo') })}`).catch((e) => ({ error: e }));
    clear(box);
    if (available === false) { box.append(unavailable('Gate runs')); return; }
    if (!data) { box.append(errorNotice(new Error('could not load the gate runs'))); return; }
    const items = Array.isArray(data) ? data : data.items || [];
    if (!items.length) { box.append(h('p.empty', 'No gate has run yet. Gates run when a merge request of a gated repository is opened or updated.')); return; }
    box.append(h('div.table-wrap', h('table.data', { 'aria-label': 'Gate runs', 'data-table': 'gates' },
      h('thead', h('tr', ['Run', 'Repository', 'Merge request', 'Verdict', 'Summary', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', items.map((g) => h('tr', { 'data-gate': g.id },
        h('td', h('a', { href: `#/gates/${g.id}` }, `#${g.id}`)),
        h('td', g.path_with_namespace || g.repo_path || `#${g.repo_id}`),
        h('td', g.mr_iid ? `!${g.mr_iid}` : '—', g.source_branch ? h('div.sub', g.source_branch) : null),
        h('td', verdictBadge(verdictOf(g)),
          // GitLab shows "gate removed" where this verdict blocked: the repository is no longer gated
          g.repo_gated === false && !['passed', 'skipped', 'bypassed'].includes(verdictOf(g))
            ? h('div.sub', { 'data-not-gated': '' }, 'repository no longer gated') : null),
        h('td.small', visible(g.summary || g.description || '')),
        h('td.nowrap', time(g.finished_at || g.created_at))))))));
  };
  verdict.addEventListener('change', load);
  await load();
}

async function renderGate(main, id) {
  main.append(pageHead(`Gate run #${id}`, null, h('a.button', { href: '#/gates' }, 'All gate runs')));
  const box = h('div', loading());
  main.append(box);
  let g;
  try {
    g = await get(`/api/gates/${encodeURIComponent(id)}`);
  } catch (e) {
    clear(box).append(e instanceof ApiError && e.unavailable ? unavailable('The gate report') : errorNotice(e));
    return;
  }
  clear(box);
  const findings = g.findings || [];
  const counts = {};
  for (const f of findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
  box.append(h('section.panel', { 'aria-labelledby': 'gate-title', 'data-panel': 'gate' },
    h('div.page-head', h('div.grow',
      h('h2#gate-title', g.path_with_namespace || 'Merge request', g.mr_iid ? ` !${g.mr_iid}` : ''),
      g.mr_title ? h('p.muted', { 'data-mr-title': '' }, visible(g.mr_title)) : null),
      h('div', { 'data-verdict': verdictOf(g) }, verdictBadge(verdictOf(g)))),
    g.description ? h('p', { 'data-gate-summary': '' }, h('strong', visible(g.description))) : null,
    h('dl.kv',
      httpUrl(g.mr_web_url) ? [h('dt', 'Merge request'), h('dd', h('a', { href: httpUrl(g.mr_web_url), rel: 'noopener', target: '_blank' }, g.mr_web_url))] : null,
      g.head_sha ? [h('dt', 'Commit'), h('dd', h('code', g.head_sha.slice(0, 12)))] : null,
      g.source_branch ? [h('dt', 'Branch'), h('dd', g.source_branch)] : null,
      g.counts ? [h('dt', 'New findings'), h('dd', ['critical', 'high', 'medium', 'low'].map((s) => `${g.counts[s] || 0} ${s}`).join(', '), g.counts.ignored ? `; ${g.counts.ignored} ignored (not counted)` : '')] : null,
      g.fail_on ? [h('dt', 'Fails on'), h('dd', g.fail_on)] : null,
      Array.isArray(g.scans) ? [h('dt', 'Scans'), h('dd', g.scans.map((s) => h('span.chip', s)))] : null,
      h('dt', 'Started'), h('dd', fmtDate(g.created_at)),
      g.finished_at ? [h('dt', 'Finished'), h('dd', fmtDate(g.finished_at))] : null),
    Array.isArray(g.notes) && g.notes.length ? h('div', g.notes.map((n) => h('div.notice.warn', n))) : null,
    g.error ? h('div.notice.error', { role: 'alert' }, g.error) : null,
    bypassPart(g, main)));

  const sevOrder = ['critical', 'high', 'medium', 'low'];
  findings.sort((a, b) => sevOrder.indexOf(a.severity) - sevOrder.indexOf(b.severity));
  box.append(h('section', { 'aria-labelledby': 'findings-title' },
    h('h2#findings-title', `Findings (${fmtNum(findings.length)})`),
    Object.keys(counts).length ? h('p', sevOrder.filter((s) => counts[s]).map((s) => [sevBadge(s), ` ${counts[s]} `])) : null,
    findings.length ? h('div.table-wrap', h('table.data', { 'aria-label': 'Findings', 'data-table': 'findings' },
      h('thead', h('tr', ['Severity', 'Scan', 'Finding', 'File', 'Line', 'Excerpt', h('span.visually-hidden', 'Actions')].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', findings.map((f) => h('tr', { 'data-finding': f.rule_id, 'data-fp': f.fingerprint, 'data-ignored': f.ignored ? 'true' : 'false' },
        h('td', sevBadge(f.severity), f.ignored ? h('div', h('span.badge.unchanged', { title: f.ignored.reason }, 'ignored')) : null),
        h('td.nowrap', f.scan_type),
        h('td', f.title, h('div.sub', h('code', f.rule_id)), f.ignored ? h('div.sub', { 'data-ignore-reason': '' }, `Ignored: ${f.ignored.reason}`) : null,
          f.fingerprint ? h('div.sub', h('code.small', { 'data-fingerprint': f.fingerprint, title: 'Fingerprint: /mrgate ignore <fingerprint> <reason> in the merge request ignores this finding', style: 'user-select:all;word-break:break-all' }, f.fingerprint)) : null),
        h('td.path-cell', h('code', breakable(visible(f.path)))),
        h('td.num', fmtNum(f.line)),
        h('td', f.excerpt ? h('code.small', visible(f.excerpt)) : ''),
        h('td.num', f.ignored ? h('a.small', { href: `#/ignores?repo=${g.repo_id}` }, 'See ignore') : h('button.small', {
          type: 'button', 'data-action': 'ignore', disabled: !canEdit() || undefined, title: canEdit() ? undefined : EDITOR_ONLY, onclick: (e) => openIgnore(g, f, e.currentTarget.closest('tr')),
        }, 'Ignore…'))))))) : h('p.empty', 'No findings on the lines this merge request adds.')));
}

// A path that may wrap after each "/" rather than inside a name ("deploy/m|ore.env" in a narrow column).
const breakable = (p) => p.split('/').flatMap((part, i, all) => (i < all.length - 1 ? [`${part}/`, h('wbr')] : [part]));

// Ignore one finding (or its rule) for the repo or one of its groups, with a reason and an optional expiry.
function openIgnore(g, f, row) {
  const groups = (g.path_with_namespace || '').split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/')).reverse();
  const where = select([['repo', `this repository (${g.path_with_namespace || g.repo_id})`], ...groups.map((p) => [`group:${p}`, `group ${p} and its subgroups`])], 'repo', { name: 'where' });
  const what = select([['fingerprint', `this finding (${visible(f.path)}:${f.line})`], ['rule', `every finding of rule ${f.rule_id}`]], 'fingerprint', { name: 'what' });
  const reason = h('input', { type: 'text', name: 'reason', placeholder: 'e.g. a test fixture, never a real key' });
  const expires = h('input', { type: 'date', name: 'expires_at' });
  const msg = h('div', { 'aria-live': 'assertive' });
  const go = h('button.primary', { type: 'button' }, 'Ignore');
  const m = openModal({ title: 'Ignore a finding', body: [msg, field('What', what), field('Where', where), countedField('Reason (shown in the report and the merge request note)', reason, REASON_MAX), field('Until (optional; the end of that day, UTC)', expires)], footer: [go] });
  m.dialog.dataset.modal = 'ignore';
  reason.addEventListener('input', () => clear(msg)); // an old refusal never stays beside a new reason
  go.addEventListener('click', async () => {
    if (!reason.value.trim()) { clear(msg).append(h('div.notice.error', { role: 'alert' }, 'Say why this finding may be ignored.')); return; }
    const long = tooLong(reason, REASON_MAX, 'reason');
    if (long) { clear(msg).append(h('div.notice.error', { role: 'alert' }, long)); return; }
    const body = { reason: reason.value };
    if (what.value === 'rule') body.rule_id = f.rule_id; else body.fingerprint = f.fingerprint;
    if (where.value === 'repo') body.repo_id = g.repo_id; else body.group = where.value.slice('group:'.length);
    if (expires.value) body.expires_at = expires.value;
    go.disabled = true;
    try {
      await post('/api/ignores', body);
      m.close();
      const rule = what.value === 'rule';
      const scope = body.group ? `in group ${body.group} and its subgroups` : `in ${g.path_with_namespace || 'this repository'}`;
      toast(`Ignored ${rule ? `every finding of rule ${f.rule_id}` : `this finding (${visible(f.path)}:${f.line})`} ${scope}: from the next push on, the gate lists ${rule ? 'them' : 'it'} without counting ${rule ? 'them' : 'it'}.`);
      // every row of this report the new ignore covers (the report is of one repo, inside any scope offered)
      const covers = (tr) => (rule ? tr.dataset.finding === f.rule_id : tr.dataset.fp === f.fingerprint);
      for (const tr of row ? row.parentElement.querySelectorAll('tr') : []) {
        const btn = covers(tr) && tr.querySelector('button[data-action="ignore"]');
        if (btn) btn.replaceWith(h('span.small.muted', { 'data-ignored-next': '' }, 'ignored from the next run'));
      }
    } catch (e) {
      clear(msg).append(errorNotice(e));
      go.disabled = false;
    }
  });
}

// Who bypassed the run and why, or (a failed run, an editor) the way to bypass it.
function bypassPart(g, main) {
  if (g.bypass) {
    return h('div.notice.info', { 'data-bypass': '' }, `Bypassed by ${g.bypass.by} on ${fmtDate(g.bypass.at)}: `, h('q', g.bypass.reason));
  }
  if (g.newer_run_id) {
    return h('div.notice.info', { 'data-newer-run': g.newer_run_id }, 'A newer run of this merge request is its gate now: ', h('a', { href: `#/gates/${g.newer_run_id}` }, `run #${g.newer_run_id}`), '.');
  }
  if (g.state !== 'done' || g.status_posted !== 'failed') return null;
  if (g.repo_gated === false) {
    return h('div.notice.info.spaced', { 'data-not-gated': '' }, 'This repository is no longer gated by mrgate (gating turned off, or no longer managed): its open merge requests got a final "gate removed" status, so there is nothing to bypass.');
  }
  const btn = h('button', { type: 'button', 'data-action': 'bypass', disabled: !canEdit() || undefined, title: canEdit() ? undefined : EDITOR_ONLY }, 'Bypass this gate…');
  btn.addEventListener('click', () => openBypass(g, main));
  return h('div.actions', { style: 'margin-top:12px' }, btn,
    h('span.small.muted', 'GitLab then shows the gate as passed on this commit, with your name and reason. A newer push is gated again.'));
}

function openBypass(g, main) {
  const reason = h('input', { type: 'text', name: 'reason', required: true, placeholder: 'e.g. test fixture, the key was never valid' });
  const msg = h('div', { 'aria-live': 'assertive' });
  const go = h('button.primary', { type: 'button' }, 'Bypass');
  const m = openModal({ title: `Bypass the gate of ${g.path_with_namespace ? `${g.path_with_namespace} ` : ''}!${g.mr_iid}`, body: [msg, countedField('Reason (shown on GitLab)', reason, REASON_MAX)], footer: [go] });
  m.dialog.dataset.modal = 'bypass';
  reason.addEventListener('input', () => clear(msg));
  reason.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); go.click(); } });
  go.addEventListener('click', async () => {
    if (!reason.value.trim()) { clear(msg).append(h('div.notice.error', { role: 'alert' }, 'Say why this merge request may merge with these findings.')); return; }
    const long = tooLong(reason, REASON_MAX, 'reason');
    if (long) { clear(msg).append(h('div.notice.error', { role: 'alert' }, long)); return; }
    go.disabled = true;
    try {
      await post(`/api/gates/${encodeURIComponent(g.id)}/bypass`, { reason: reason.value });
      m.close();
      toast('Bypassed: GitLab shows the gate as passed on this commit.');
      clear(main);
      await renderGate(main, String(g.id));
    } catch (e) {
      clear(msg).append(errorNotice(e));
      go.disabled = false;
    }
  });
}
