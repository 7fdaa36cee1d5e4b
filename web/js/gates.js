// #/gates and #/gates/:id: merge-request gate runs with their verdicts; one run's findings (the page a GitLab
// commit status links to).
import { get, qs, getOptional, ApiError } from './api.js';

import { h, clear, badge, sevBadge, fmtNum, fmtDate, time, errorNotice, unavailable, loading, pageHead, select, field, httpUrl } from './ui.js';

const VERDICT_CLASS = { passed: 'passed', failed: 'failed', error: 'error', timeout: 'failed', skipped: 'unchanged', queued: 'queued', running: 'running', superseded: 'unchanged' };
const verdictOf = (g) => g.verdict || g.state || 'queued';
const verdictBadge = (v) => h(`span.badge.${VERDICT_CLASS[v] || 'pending'}`, { 'data-status': v }, v === 'timeout' ? 'timed out' : v);

export async function render(main, route) {
  if (route.args[0]) return renderGate(main, route.args[0]);
  return renderList(main, route);
}

async function renderList(main, route) {
  main.append(pageHead('Gates', 'Every merge request gate run, newest first.'));
  const verdict = select([['', 'Any verdict'], ['failed', 'Failed'], ['passed', 'Passed'], ['error', 'Error'], ['timeout', 'Timed out'], ['skipped', 'Skipped']], route.query.get('verdict') || '', { name: 'verdict' });
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
        h('td', verdictBadge(verdictOf(g))),
        h('td.small', g.summary || g.description || ''),
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
      h('h2#gate-title', g.path_with_namespace || g.repo_path || 'Merge request', g.mr_iid ? ` !${g.mr_iid}` : ''),
      g.mr_title ? h('p.muted', g.mr_title) : null),
      h('div', { 'data-verdict': verdictOf(g) }, verdictBadge(verdictOf(g)))),
    g.summary || g.description ? h('p', { 'data-gate-summary': '' }, h('strong', g.summary || g.description)) : null,
    h('dl.kv',
      httpUrl(g.mr_web_url || g.web_url) ? [h('dt', 'Merge request'), h('dd', h('a', { href: httpUrl(g.mr_web_url || g.web_url), rel: 'noopener', target: '_blank' }, g.mr_web_url || g.web_url))] : null,
      g.head_sha || g.sha ? [h('dt', 'Commit'), h('dd', h('code', (g.head_sha || g.sha).slice(0, 12)))] : null,
      g.source_branch ? [h('dt', 'Branch'), h('dd', g.source_branch, g.target_branch ? ` → ${g.target_branch}` : '')] : null,
      g.counts ? [h('dt', 'New findings'), h('dd', ['critical', 'high', 'medium', 'low'].map((s) => `${g.counts[s] || 0} ${s}`).join(', '))] : null,
      g.fail_on || (g.config && g.config.fail_on) ? [h('dt', 'Fails on'), h('dd', g.fail_on || g.config.fail_on)] : null,
      g.scans || (g.config && g.config.scans) ? [h('dt', 'Scans'), h('dd', (g.scans || g.config.scans).map((s) => h('span.chip', typeof s === 'string' ? s : s.name || JSON.stringify(s))))] : null,
      h('dt', 'Started'), h('dd', fmtDate(g.created_at || g.started_at)),
      g.finished_at ? [h('dt', 'Finished'), h('dd', fmtDate(g.finished_at))] : null),
    Array.isArray(g.notes) && g.notes.length ? h('div', g.notes.map((n) => h('div.notice.warn', n))) : null,
    g.error ? h('div.notice.error', { role: 'alert' }, g.error) : null));

  const sevOrder = ['critical', 'high', 'medium', 'low', 'info', 'unknown'];
  findings.sort((a, b) => sevOrder.indexOf(a.severity) - sevOrder.indexOf(b.severity));
  box.append(h('section', { 'aria-labelledby': 'findings-title' },
    h('h2#findings-title', `Findings (${fmtNum(findings.length)})`),
    Object.keys(counts).length ? h('p', sevOrder.filter((s) => counts[s]).map((s) => [sevBadge(s), ` ${counts[s]} `])) : null,
    findings.length ? h('div.table-wrap', h('table.data', { 'aria-label': 'Findings', 'data-table': 'findings' },
      h('thead', h('tr', ['Severity', 'Scan', 'Finding', 'File', 'Line', 'Excerpt'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', findings.map((f) => h('tr', { 'data-finding': f.rule_id || f.rule || '' },
        h('td', sevBadge(f.severity)),
        h('td', f.scan_type || f.scan || '—'),
        h('td', f.title || f.message || '', h('div.sub', h('code', f.rule_id || f.rule || ''))),
        h('td', h('code', f.path || f.file || '—')),
        h('td.num', fmtNum(f.line)),
        h('td', f.excerpt ? h('code.small', f.excerpt) : '')))))) : h('p.empty', 'No findings on the lines this merge request adds.')));
}
