// The config form (shared by Configure Scans, exceptions, defaults and group configs), the Configure Scans modal
// with its dry-run preview, and the row-menu actions of the repository table.
import { get, post, put, del, ApiError } from './api.js';
import { h, clear, field, select, openModal, errorNotice, notice, toast, badge, fmtNum, fmtDate, loading, unavailable } from './ui.js';

export const FAIL_ON = ['critical', 'high', 'medium', 'low', 'never'];
export const SCANS = ['secrets', 'sast', 'dependencies', 'iac', 'license', 'malware'];
export const COMMENT = [['off', 'Off'], ['on_findings', 'When there are findings'], ['always', 'Always']];
const SCAN_LABELS = { secrets: 'Secrets', sast: 'SAST', dependencies: 'Dependencies', iac: 'Infrastructure as code', license: 'Licenses', malware: 'Malware' };
const FIELD_LABELS = { enabled: 'gated', fail_on: 'fails on', scans: 'scans', block_merge: 'block merge', comment: 'comment', ignore_paths: 'ignore paths' };

// A short summary of an effective config for a table cell; sources maps field -> "default" | "group:x" | "repo".
export function configSummary(cfg, sources) {
  if (!cfg || typeof cfg !== 'object') return h('span.muted', '—');
  const scans = Array.isArray(cfg.scans) ? cfg.scans : [];
  let from = null;
  if (sources && typeof sources === 'object') {
    const where = [...new Set(Object.values(sources))];
    const label = where.includes('repo') ? 'own exception' : `from ${where.filter((w) => w !== 'default').map((w) => w.replace(/^group:/, '')).join(', ') || 'default'}`;
    from = h('span.from', { title: Object.entries(sources).map(([k, v]) => `${k}: ${v}`).join('\n') }, label);
  } else if (typeof sources === 'string') {
    from = h('span.from', `from ${sources}`);
  }
  const el = h('div.cfg', { 'data-config': JSON.stringify(cfg) },
    h('div', cfg.enabled === false ? h('span.muted', 'off · ') : null, cfg.fail_on ? `fails on ${cfg.fail_on}` : '', cfg.block_merge ? ' · blocks merge' : ''),
    h('div', scans.length ? scans.map((s) => h('span.chip', s)) : h('span.from', 'no scans '), from));
  return el;
}

// The config form. inherit: show an "inherit" choice per field (group and repo levels).
// Returns {el, value(): config object with only the set fields}.
export function configForm(initial = {}, { inherit = false, inherited = null, showEnabled = true, single = false } = {}) {
  const cfg = initial || {};
  const inh = inherited || {};
  const inhText = (k, fmt = (v) => String(v)) => (inh[k] !== undefined ? ` (inherits: ${fmt(inh[k])})` : '');
  const triOpts = (k) => [['', `Inherit${inhText(k, (v) => (v ? 'yes' : 'no'))}`], ['true', 'Yes'], ['false', 'No']];
  const els = {};
  const parts = [];

  if (showEnabled) {
    if (inherit) {
      els.enabled = select(triOpts('enabled'), cfg.enabled === undefined ? '' : String(cfg.enabled), { name: 'enabled' });
      parts.push(field(single ? 'Gate this repository' : 'Gate these repositories', els.enabled, 'installs the mrgate webhook on GitLab'));
    } else {
      els.enabled = h('input', { type: 'checkbox', name: 'enabled', checked: cfg.enabled !== false });
      parts.push(h('div.field', h('label.check', els.enabled, 'Gate these repositories'), h('span.hint', 'mrgate installs its webhook on each repo and runs the gate on every merge request')));
    }
  }
  els.fail_on = select([...(inherit ? [['', `Inherit${inhText('fail_on')}`]] : []), ...FAIL_ON.map((v) => [v, v === 'never' ? 'never (report only)' : v])], cfg.fail_on || (inherit ? '' : 'high'), { name: 'fail_on' });
  parts.push(field('Fail the gate on severity', els.fail_on, 'a new finding of this severity or higher fails the merge request'));

  const scanBoxes = SCANS.map((s) => h('input', { type: 'checkbox', name: 'scans', value: s, checked: Array.isArray(cfg.scans) ? cfg.scans.includes(s) : (!inherit && s === 'secrets') }));
  let scansInherit = null;
  const scansSet = h('fieldset', h('legend', 'Scans'),
    inherit ? h('label.check', { style: 'margin-bottom:6px' }, scansInherit = h('input', { type: 'checkbox', name: 'scans_inherit', checked: !Array.isArray(cfg.scans) }), `Inherit${inhText('scans', (v) => (Array.isArray(v) ? v.join(', ') || 'none' : v))}`) : null,
    h('div.checks', scanBoxes.map((b) => h('label.check', b, SCAN_LABELS[b.value]))));
  const syncScans = () => { if (scansInherit) for (const b of scanBoxes) b.disabled = scansInherit.checked; };
  if (scansInherit) scansInherit.addEventListener('change', syncScans);
  syncScans();
  parts.push(scansSet);

  if (inherit) {
    els.block_merge = select(triOpts('block_merge'), cfg.block_merge === undefined ? '' : String(cfg.block_merge), { name: 'block_merge' });
    parts.push(field('Block merge until the gate passes', els.block_merge, 'turns on "Pipelines must succeed" on GitLab'));
  } else {
    els.block_merge = h('input', { type: 'checkbox', name: 'block_merge', checked: !!cfg.block_merge });
    parts.push(h('div.field', h('label.check', els.block_merge, 'Block merge until the gate passes'), h('span.hint', 'turns on GitLab\'s "Pipelines must succeed" for these repos')));
  }
  els.comment = select([...(inherit ? [['', `Inherit${inhText('comment')}`]] : []), ...COMMENT], cfg.comment || (inherit ? '' : 'on_findings'), { name: 'comment' });
  parts.push(field('Comment on the merge request', els.comment, 'one note per merge request, edited in place'));
  els.ignore_paths = h('textarea', { name: 'ignore_paths', rows: 3, placeholder: inherit && inh.ignore_paths ? `inherits: ${inh.ignore_paths.join(', ') || 'none'}` : 'vendor/**\ndocs/**' });
  els.ignore_paths.value = Array.isArray(cfg.ignore_paths) ? cfg.ignore_paths.join('\n') : '';
  parts.push(field('Ignore paths', els.ignore_paths, inherit ? 'one glob per line; leave empty to inherit' : 'one glob per line; findings in these files never count'));

  const el = h('div.config-form', { 'data-config-form': '' }, parts);
  const value = () => {
    const out = {};
    const tri = (k) => {
      const e = els[k];
      if (!e) return;
      if (e.type === 'checkbox') out[k] = e.checked;
      else if (e.value !== '') out[k] = e.value === 'true';
    };
    tri('enabled');
    if (els.fail_on.value) out.fail_on = els.fail_on.value;
    if (!scansInherit || !scansInherit.checked) out.scans = scanBoxes.filter((b) => b.checked).map((b) => b.value);
    tri('block_merge');
    if (els.comment.value) out.comment = els.comment.value;
    const globs = els.ignore_paths.value.split('\n').map((s) => s.trim()).filter(Boolean);
    if (!inherit || globs.length) out.ignore_paths = globs;
    return out;
  };
  return { el, value };
}

function jobIdOf(res) {
  if (!res) return null;
  return res.job_id || (res.job && res.job.id) || (res.apply && res.apply.job_id) || (res.id && (res.total !== undefined || res.state) ? res.id : null);
}

// A table of the dry-run plan, whatever its exact shape: {items|plan|repos: [{path_with_namespace, changes|actions, ...}]}.
export function planView(res) {
  const items = (res && (res.items || res.plan || res.repos)) || [];
  const summary = res && (res.summary || res.counts);
  const out = h('div', { 'data-plan': '' });
  const total = res && (res.total ?? res.count ?? items.length);
  const sumParts = [];
  if (summary && typeof summary === 'object') {
    for (const [k, v] of Object.entries(summary)) if (typeof v === 'number' && k !== 'selected') sumParts.push(`${fmtNum(v)} ${k.replace(/_/g, ' ')}`);
  }
  const n = summary && typeof summary.selected === 'number' ? summary.selected : total;
  out.append(h('p', { 'data-plan-summary': '' }, h('strong', `${fmtNum(n)} repositories`), summary && summary.level ? ` (config stored at the ${summary.level} level${summary.target ? ` ${summary.target}` : ''})` : '', sumParts.length ? `: ${sumParts.join(', ')}.` : '.'));
  if (res && typeof res.gitlab_writes_planned === 'number') out.append(h('p.small.muted', `${fmtNum(res.gitlab_reads || 0)} GitLab reads made for this preview; ${fmtNum(res.gitlab_writes_planned)} writes planned.`));
  if (!items.length) {
    out.append(h('p.muted', 'Nothing would change.'));
    return out;
  }
  const describe = (it) => {
    if (it.hooks !== undefined || it.settings !== undefined) {
      const parts = [];
      const fmt = (x) => (typeof x === 'string' ? x : x && (x.action || x.description) ? `${x.action || ''} ${x.description || x.url || x.field || ''}`.trim() : JSON.stringify(x));
      for (const x of [].concat(it.hooks || [])) parts.push(`hook: ${fmt(x)}`);
      if (it.settings && typeof it.settings === 'object' && !Array.isArray(it.settings)) for (const [k, v] of Object.entries(it.settings)) parts.push(`${k}: ${fmt(v)}`);
      else for (const x of [].concat(it.settings || [])) parts.push(`setting: ${fmt(x)}`);
      return [`want ${it.want || '?'}`, ...parts, it.message || ''].filter(Boolean).join('; ');
    }
    const ch = it.changes || it.actions || it.gitlab || it.plan;
    if (Array.isArray(ch)) return ch.length ? ch.map((c) => (typeof c === 'string' ? c : c.description || c.action || JSON.stringify(c))).join('; ') : 'no change on GitLab';
    if (ch && typeof ch === 'object') return Object.entries(ch).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('; ');
    if (typeof ch === 'string') return ch;
    return it.message || it.description || '';
  };
  out.append(h('div.plan', h('table.data', { 'aria-label': 'Planned changes' },
    h('thead', h('tr', h('th', { scope: 'col' }, 'Repository'), h('th', { scope: 'col' }, 'Result'), h('th', { scope: 'col' }, 'On GitLab'))),
    h('tbody', items.slice(0, 500).map((it) => h('tr', { 'data-plan-item': it.repo_id || it.id },
      h('td', it.path_with_namespace || it.path || `#${it.repo_id || it.id}`),
      h('td', it.result ? badge(it.result) : it.status_after ? badge(it.status_after) : it.action ? badge(it.action) : it.change ? badge(it.change) : it.changed !== undefined ? badge(it.changed ? 'changed' : 'unchanged') : '—'),
      h('td.small', describe(it))))))));
  if (items.length > 500) out.append(h('p.small.muted', `The first 500 of ${fmtNum(items.length)} are shown.`));
  // plan items may carry only the repo id: name the first ones
  for (const tr of [...out.querySelectorAll('tr[data-plan-item]')].slice(0, 50)) {
    const cell = tr.firstChild;
    if (!cell.textContent.startsWith('#')) continue;
    get(`/api/repos/${tr.dataset.planItem}`).then((r) => { cell.textContent = r.path_with_namespace; }).catch(() => {});
  }
  return out;
}

// The Configure Scans modal for a selection ({ids:[...]} or {filter:{...}}).
export async function openConfigure({ selection, count, describe, onApplied }) {
  let initial = null;
  try {
    const d = await get('/api/configs/default');
    initial = d && (d.config || d);
  } catch { /* the built-in defaults of the form */ }
  const form = configForm(initial ? { ...initial, enabled: true } : { enabled: true });
  const planBox = h('div', { 'aria-live': 'polite' });
  const previewBtn = h('button', { type: 'button', 'data-action': 'preview' }, 'Preview changes');
  const applyBtn = h('button.primary', { type: 'button', 'data-action': 'apply' }, `Apply to ${fmtNum(count)}`);
  const cancelBtn = h('button', { type: 'button' }, 'Cancel');
  const m = openModal({
    title: 'Configure Scans',
    wide: true,
    body: [h('p', 'For ', h('strong', describe), '. Scan choice and severity live in mrgate only; gating and "block merge" change GitLab.'), form.el, planBox],
    footer: [cancelBtn, previewBtn, applyBtn],
  });
  m.dialog.dataset.modal = 'configure';
  cancelBtn.addEventListener('click', () => m.close());
  const send = async (dry) => post('/api/configure', { selection, config: form.value(), dry_run: dry });
  previewBtn.addEventListener('click', async () => {
    previewBtn.disabled = true;
    clear(planBox).append(loading('Computing the plan…'));
    try {
      const res = await send(true);
      clear(planBox).append(h('h3', 'Preview (dry run, nothing changed yet)'), planView(res));
    } catch (e) {
      clear(planBox).append(e instanceof ApiError && e.unavailable ? unavailable('Bulk configuration') : errorNotice(e));
    } finally {
      previewBtn.disabled = false;
    }
  });
  applyBtn.addEventListener('click', async () => {
    applyBtn.disabled = true;
    previewBtn.disabled = true;
    try {
      const res = await send(false);
      const id = jobIdOf(res);
      m.close();
      if (onApplied) onApplied(res);
      if (id) {
        toast('The job started.');
        location.hash = `#/jobs/${id}`;
      } else if (res && res.apply && res.apply.run) {
        // this version applies without the job engine: follow the run through the repositories' states
        toast('Applying on GitLab.');
        location.hash = `#/jobs/run-${res.apply.run}?repos=${res.apply.repos}`;
      } else {
        toast('The configuration was saved; nothing needs changing on GitLab.');
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      }
    } catch (e) {
      clear(planBox).append(e instanceof ApiError && e.unavailable ? unavailable('Bulk configuration') : errorNotice(e));
      applyBtn.disabled = false;
      previewBtn.disabled = false;
    }
  });
}

// "Edit exception…": the repo's own config, with what it inherits.
export async function openRepoConfig(repo, onSaved) {
  const body = h('div', loading());
  const saveBtn = h('button.primary', { type: 'button', 'data-action': 'save-exception', disabled: true }, 'Save exception');
  const cancelBtn = h('button', { type: 'button' }, 'Cancel');
  const m = openModal({ title: `Exception for ${repo.path_with_namespace}`, body, footer: [cancelBtn, saveBtn] });
  m.dialog.dataset.modal = 'exception';
  cancelBtn.addEventListener('click', () => m.close());
  let data;
  try {
    data = await get(`/api/repos/${repo.id}/config`);
  } catch (e) {
    clear(body).append(e instanceof ApiError && e.unavailable ? unavailable('Per-repository configuration') : errorNotice(e));
    return;
  }
  const form = configForm(data.config || {}, { inherit: true, inherited: data.inherited || {}, single: true });
  const msg = h('div', { 'aria-live': 'assertive' });
  clear(body).append(h('div',
    h('p.muted', 'Fields left on "Inherit" follow the default and group configs. A field set here makes this repository an exception.'),
    data.exception ? notice('info', 'This repository is an exception now.') : null,
    msg, form.el));
  body.querySelector('select, input').focus();
  saveBtn.disabled = false;
  saveBtn.addEventListener('click', async () => {
    saveBtn.disabled = true;
    try {
      const res = await put(`/api/repos/${repo.id}/config`, { ...form.value(), unmanaged: !!data.unmanaged });
      m.close();
      toast(res && res.exception === false ? 'Saved: the config equals the inherited one, so this is not an exception.' : `Saved the exception for ${repo.path_with_namespace}.`);
      if (onSaved) onSaved(res);
    } catch (e) {
      clear(msg).append(errorNotice(e));
      saveBtn.disabled = false;
    }
  });
}

export async function resetRepo(repo, onDone) {
  if (!confirm(`Reset ${repo.path_with_namespace} to the inherited config? Its own settings are removed.`)) return;
  try {
    await del(`/api/repos/${repo.id}/config`);
    toast(`${repo.path_with_namespace} follows the inherited config again.`);
    if (onDone) onDone();
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && !e.unavailable) toast(`${repo.path_with_namespace} has no config of its own; it already inherits.`);
    else toast(e.unavailable ? 'Resetting a repository is not available in this version of mrgate.' : e.message, 'error');
  }
}

export async function stopManaging(repo, onDone) {
  if (!confirm(`Stop managing ${repo.path_with_namespace}? mrgate removes its webhook and restores the settings it changed.`)) return;
  try {
    let own = {};
    try {
      const cur = await get(`/api/repos/${repo.id}/config`);
      own = cur.config || {};
    } catch (e) {
      if (e instanceof ApiError && e.unavailable) throw e;
    }
    await put(`/api/repos/${repo.id}/config`, { ...own, unmanaged: true });
    toast(`mrgate no longer manages ${repo.path_with_namespace}.`);
    if (onDone) onDone();
  } catch (e) {
    toast(e.unavailable ? 'Stopping management is not available in this version of mrgate.' : e.message, 'error');
  }
}

export async function openHistory(repo) {
  const body = h('div', loading());
  const m = openModal({ title: `History of ${repo.path_with_namespace}`, body, wide: true });
  m.dialog.dataset.modal = 'history';
  let res;
  try {
    res = await get(`/api/repos/${repo.id}/history`);
  } catch (e) {
    clear(body).append(e instanceof ApiError && e.unavailable ? unavailable('The history of a repository') : errorNotice(e));
    return;
  }
  const items = Array.isArray(res) ? res : res.items || [];
  if (!items.length) {
    clear(body).append(h('p.empty', 'Nothing has happened to this repository yet.'));
    return;
  }
  clear(body).append(h('table.data', { 'aria-label': 'History' },
    h('thead', h('tr', ['When', 'What', 'Result', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', items.map((it) => h('tr',
      h('td.nowrap', fmtDate(it.at || it.created_at || it.finished_at)),
      h('td', it.action || it.kind || it.what || (it.job_id ? h('a', { href: `#/jobs/${it.job_id}` }, `job ${it.job_id}`) : '—')),
      h('td', it.result || it.outcome ? badge(it.result || it.outcome) : '—'),
      h('td.small', it.message || it.summary || ''))))));
}

export { FIELD_LABELS };
