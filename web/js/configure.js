// The config form (shared by Configure Scans, exceptions, defaults and group configs), the Configure Scans modal
// with its dry-run preview, and the row-menu actions of the repository table.
import { get, post, put, del, qs, ApiError } from './api.js';
import { h, clear, field, select, openModal, errorNotice, notice, toast, badge, fmtNum, fmtDate, loading, unavailable } from './ui.js';

export const FAIL_ON = ['critical', 'high', 'medium', 'low', 'never'];
export const SCANS = ['secrets', 'sast', 'dependencies', 'iac', 'license', 'malware'];
export const COMMENT = [['off', 'Off'], ['on_findings', 'When there are findings'], ['always', 'Always'], ['inline', 'On the changed lines']];
const SCAN_LABELS = { secrets: 'Secrets', sast: 'SAST', dependencies: 'Dependencies', iac: 'Infrastructure as code', license: 'Licenses', malware: 'Malware' };
const FIELD_LABELS = { enabled: 'gated', fail_on: 'fails on', scans: 'scans', block_merge: 'block merge', comment: 'comment', ignore_paths: 'ignore paths' };

// "fails on high"; "never" is report only: the gate posts its findings and never fails a merge request.
const failsOn = (v) => (v === 'never' ? 'report only (never fails)' : `fails on ${v}`);

// A short summary of an effective config for a table cell; sources maps field -> "default" | "group:x" | "repo".
// partial: cfg sets only some fields (a group config): what it leaves out is inherited, not off or empty.
// exception: the repo row's `exception` flag (its own config differs from what it inherits); false with a "repo"
// source means its own config only repeats the inherited values.
export function configSummary(cfg, sources, { partial = false, exception } = {}) {
  if (!cfg || typeof cfg !== 'object') return h('span.muted', '—');
  const scans = Array.isArray(cfg.scans) ? cfg.scans : [];
  if (partial) {
    const parts = [];
    if (cfg.enabled === true) parts.push('gates');
    if (cfg.enabled === false) parts.push('off');
    if (cfg.fail_on) parts.push(failsOn(cfg.fail_on));
    if (cfg.block_merge !== undefined) parts.push(cfg.block_merge ? 'blocks merge' : 'does not block merge');
    if (cfg.comment) parts.push(`comment ${cfg.comment.replace('_', ' ')}`);
    if (Array.isArray(cfg.ignore_paths)) parts.push(`${cfg.ignore_paths.length} ignored path${cfg.ignore_paths.length === 1 ? '' : 's'}`);
    return h('div.cfg', { 'data-config': JSON.stringify(cfg) },
      h('div', parts.join(' · ') || h('span.muted', 'sets nothing')),
      h('div', Array.isArray(cfg.scans) ? (scans.length ? scans.map((s) => h('span.chip', s)) : h('span.from', 'no scans')) : h('span.from', 'scans inherited')));
  }
  let from = null;
  if (sources && typeof sources === 'object') {
    const where = [...new Set(Object.values(sources))];
    const own = exception === false ? 'own config, as inherited' : 'own exception';
    const label = where.includes('repo') ? own : `from ${where.filter((w) => w !== 'default').map((w) => w.replace(/^group:/, '')).join(', ') || 'default'}`;
    from = h('span.from', { title: Object.entries(sources).map(([k, v]) => `${k}: ${v}`).join('\n') }, label);
  } else if (typeof sources === 'string') {
    from = h('span.from', `from ${sources}`);
  }
  const el = h('div.cfg', { 'data-config': JSON.stringify(cfg) },
    h('div', cfg.enabled === false ? h('span.muted', 'off · ') : null, cfg.fail_on ? failsOn(cfg.fail_on) : '', cfg.block_merge ? ' · blocks merge' : ''),
    h('div', scans.length ? scans.map((s) => h('span.chip', s)) : h('span.from', 'no scans '), from));
  return el;
}

// The config form. inherit: show an "inherit" choice per field (group and repo levels).
// Returns {el, value(): config object with only the set fields}.
// PUT a config (default, group or repo). A scan type with no scanner on this server is refused (400 no_scanner):
// the user is asked, with the server's reason, and the config is sent again with confirm_no_scanner only if they
// agree. Resolves to the answer, or to null when the user declined.
// PUT a config; the confirmations the server asks for are asked here, then it is sent again with them: a scan type
// with no scanner on this server (no_scanner), a group no sync has listed (unknown_group: a typo?). null: declined.
// onUngate(data): asked when the save would stop gating repositories (409 would_ungate, a group config's): a
// promise of true to save anyway; without it such a save fails with the server's message.
export async function putConfig(path, body, { onUngate = null } = {}) {
  const confirmed = {};
  for (;;) {
    try {
      return await put(path, { ...body, ...confirmed });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.code === 'no_scanner' && !confirmed.confirm_no_scanner) {
        const why = e.message.replace(/; configure one .*$/, '');
        if (!confirm(`${why.charAt(0).toUpperCase()}${why.slice(1)}.\n\nInstall a scanner first (README, MRGATE_SCANNER_*), or save anyway?`)) return null;
        confirmed.confirm_no_scanner = true;
      } else if (e.code === 'unknown_group' && !confirmed.confirm_new_group) {
        const group = decodeURIComponent(path.replace(/^\/api\/configs\/groups\//, ''));
        if (!confirm(`No sync has listed a group ${group}: check the path (a typo gates nothing).\n\nSave it anyway for a group still to come? Its repositories inherit it once a sync lists them.`)) return null;
        confirmed.confirm_new_group = true;
      } else if (e.code === 'would_ungate' && onUngate && e.data && !confirmed.confirm_ungate) {
        if (!await onUngate(e.data)) return null;
        confirmed.confirm_ungate = true;
      } else {
        throw e;
      }
    }
  }
}

// scanners: {type: {available, builtin}} or null (scannersByType): the types with no scanner here are marked.
export function configForm(initial = {}, { inherit = false, inherited = null, showEnabled = true, single = false, scanners = null } = {}) {
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
      parts.push(h('div.field', h('label.option', els.enabled, 'Gate these repositories'), h('span.hint', 'mrgate installs its webhook on each repo and runs the gate on every merge request')));
    }
  }
  els.fail_on = select([...(inherit ? [['', `Inherit${inhText('fail_on')}`]] : []), ...FAIL_ON.map((v) => [v, v === 'never' ? 'never (report only)' : v])], cfg.fail_on || (inherit ? '' : 'high'), { name: 'fail_on' });
  parts.push(field('Fail the gate on severity', els.fail_on, 'a new finding of this severity or higher fails the merge request'));

  const scanBoxes = SCANS.map((s) => h('input', { type: 'checkbox', name: 'scans', value: s, checked: Array.isArray(cfg.scans) ? cfg.scans.includes(s) : (!inherit && s === 'secrets') }));
  let scansInherit = null;
  const scansSet = h('fieldset', h('legend', 'Scans'),
    inherit ? h('label.option', { style: 'margin-bottom:6px' }, scansInherit = h('input', { type: 'checkbox', name: 'scans_inherit', checked: !Array.isArray(cfg.scans) }), `Inherit${inhText('scans', (v) => (Array.isArray(v) ? v.join(', ') || 'none' : v))}`) : null,
    h('div.checks', scanBoxes.map((b) => {
      const missing = scanners && scanners[b.value] && scanners[b.value].available === false;
      if (missing) b.dataset.noScanner = 'true';
      return h('label.option', b, SCAN_LABELS[b.value], missing ? h('span.no-scanner', ' — no scanner on this server') : null);
    })));
  const syncScans = () => { if (scansInherit) for (const b of scanBoxes) b.disabled = scansInherit.checked; };
  if (scansInherit) scansInherit.addEventListener('change', syncScans);
  syncScans();
  parts.push(scansSet);

  if (inherit) {
    els.block_merge = select(triOpts('block_merge'), cfg.block_merge === undefined ? '' : String(cfg.block_merge), { name: 'block_merge' });
    parts.push(field('Block merge until the gate passes', els.block_merge, 'turns on "Pipelines must succeed" on GitLab'));
  } else {
    els.block_merge = h('input', { type: 'checkbox', name: 'block_merge', checked: !!cfg.block_merge });
    parts.push(h('div.field', h('label.option', els.block_merge, 'Block merge until the gate passes'), h('span.hint', 'turns on GitLab\'s "Pipelines must succeed" for these repos')));
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

const MIXED = 'Mixed — keep as is';
const FAIL_LABEL = (v) => (v === 'never' ? 'never (report only)' : v);
const COMMENT_LABEL = Object.fromEntries(COMMENT);

// What a selection's repos have, per field: {repos: N, fields: {field: [{value, repos}]}} (the server's
// GET /api/repos?with=summary, or the same built here from rows already loaded).
export function summarizeRows(rows) {
  const fields = {};
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.config || {})) {
      const key = JSON.stringify(v);
      fields[k] = fields[k] || new Map();
      const e = fields[k].get(key) || { value: v, repos: 0 };
      e.repos++;
      fields[k].set(key, e);
    }
  }
  const out = { repos: rows.length, fields: {} };
  for (const [k, m] of Object.entries(fields)) out.fields[k] = [...m.values()].sort((a, b) => b.repos - a.repos);
  return out;
}

// One field of a summary: {agreed: true, value} when every repo has the same value, else {agreed: false, values}.
function agreement(summary, k) {
  const vals = (summary.fields && summary.fields[k]) || [];
  if (vals.length === 1 && vals[0].repos === summary.repos) return { agreed: true, value: vals[0].value, values: vals };
  return { agreed: false, values: vals };
}

// A sentence for each requested change ("fails on critical").
export function describePatch(p) {
  const out = [];
  if (p.enabled !== undefined) out.push(p.enabled ? 'gate the repositories' : 'stop gating the repositories');
  if (p.fail_on) out.push(`fail the gate on ${FAIL_LABEL(p.fail_on)}`);
  if (p.scans) out.push(p.scans.length ? `run ${p.scans.map((s) => SCAN_LABELS[s] || s).join(', ')}` : 'run no scan');
  if (p.block_merge !== undefined) out.push(p.block_merge ? 'block merge until the gate passes' : 'do not block merge');
  if (p.comment) out.push(`comment: ${(COMMENT_LABEL[p.comment] || p.comment).toLowerCase()}`);
  if (p.ignore_paths) out.push(p.ignore_paths.length ? `ignore ${p.ignore_paths.join(', ')}` : 'ignore no path');
  return out;
}

// The Configure form: opens from what the selected repos have (summary), sends only what the user changed.
// scanners: {type: {available, builtin}} or null. Returns {el, value(), needsConfirm(), onChange(fn)}.
export function patchForm(summary, { scanners = null } = {}) {
  const n = summary.repos;
  const listeners = [];
  const changed = () => { for (const fn of listeners) fn(); };
  const parts = [];
  const getters = {};

  // a boolean field: a checkbox; indeterminate ("Mixed — keep as is") when the repos differ
  const boolField = (k, label, hint) => {
    const a = agreement(summary, k);
    const cb = h('input', { type: 'checkbox', name: k });
    const state = h('span.mixed', { 'data-mixed': k });
    let touched = false;
    const keepBtn = h('button.link.small', { type: 'button', hidden: true, 'data-keep': k }, 'Keep as is');
    const paint = () => {
      if (!a.agreed && !touched) { cb.indeterminate = true; cb.checked = false; state.textContent = MIXED; }
      else state.textContent = !a.agreed ? `set on all ${fmtNum(n)}` : '';
      keepBtn.hidden = a.agreed || !touched;
    };
    if (a.agreed) cb.checked = a.value === true;
    cb.addEventListener('change', () => { touched = true; paint(); changed(); });
    keepBtn.addEventListener('click', () => { touched = false; paint(); changed(); });
    paint();
    getters[k] = () => {
      if (!a.agreed) return touched ? cb.checked : undefined;
      return cb.checked !== (a.value === true) ? cb.checked : undefined;
    };
    parts.push(h('div.field', h('div.option-row', h('label.option', cb, label), state, keepBtn), hint ? h('span.hint', hint) : null));
    return cb;
  };

  // a choice: a select whose first option is "Mixed — keep as is" when the repos differ
  const choiceField = (k, label, options, hint) => {
    const a = agreement(summary, k);
    const opts = [...(a.agreed ? [] : [['', MIXED]]), ...options];
    const sel = select(opts, a.agreed ? a.value : '', { name: k });
    sel.addEventListener('change', changed);
    getters[k] = () => (sel.value === '' || (a.agreed && sel.value === a.value) ? undefined : sel.value);
    parts.push(field(label, sel, hint));
    return sel;
  };

  const allUngated = agreement(summary, 'enabled');
  // nobody gated yet: said, and left to the user (ticked for them, it was sent although "only what you change is
  // sent": a walk gated 92 repositories by changing only the severity); "Gate all" and "Gate them" tick it
  boolField('enabled', 'Gate these repositories', allUngated.agreed && allUngated.value === false
    ? 'none of them is gated yet: tick to install mrgate\'s webhook on each and run the gate on every merge request'
    : 'mrgate installs its webhook on each repo and runs the gate on every merge request');
  choiceField('fail_on', 'Fail the gate on severity', FAIL_ON.map((v) => [v, FAIL_LABEL(v)]), 'a new finding of this severity or higher fails the merge request');

  // scans: one field (a list); when the repos differ it is kept unless the user sets the whole list
  const sa = agreement(summary, 'scans');
  const has = (s) => (sa.values || []).reduce((c, v) => c + (Array.isArray(v.value) && v.value.includes(s) ? v.repos : 0), 0);
  const keepScans = sa.agreed ? null : h('input', { type: 'checkbox', name: 'scans_keep', checked: true });
  const confirmBox = h('div.notice.warn', { hidden: true, 'data-confirm-scanners': '' });
  const boxes = SCANS.map((s) => {
    const count = has(s);
    const b = h('input', { type: 'checkbox', name: 'scans', value: s, checked: count === n && n > 0 });
    if (!sa.agreed) b.indeterminate = count > 0 && count < n;
    const missing = scanners && scanners[s] && scanners[s].available === false;
    if (missing) b.dataset.noScanner = 'true';
    b.addEventListener('change', () => { paintConfirm(); changed(); });
    return h('label.option', b, SCAN_LABELS[s], missing ? h('span.no-scanner', ' — no scanner on this server') : null,
      !sa.agreed && count > 0 && count < n ? h('span.hint', ` (on ${fmtNum(count)} of ${fmtNum(n)})`) : null);
  });
  const scanInputs = boxes.map((l) => l.querySelector('input'));
  const syncKeep = () => {
    for (const b of scanInputs) { b.disabled = !!(keepScans && keepScans.checked); if (!b.disabled) b.indeterminate = false; }
  };
  if (keepScans) keepScans.addEventListener('change', () => { syncKeep(); paintConfirm(); changed(); });
  const confirmCb = h('input', { type: 'checkbox', name: 'confirm_no_scanner' });
  confirmCb.addEventListener('change', changed);
  const scansValue = () => {
    if (keepScans && keepScans.checked) return undefined;
    const v = scanInputs.filter((b) => b.checked).map((b) => b.value);
    if (sa.agreed && JSON.stringify([...v].sort()) === JSON.stringify([...sa.value].sort())) return undefined;
    return v;
  };
  const missingChosen = () => {
    const v = scansValue();
    if (!v) return [];
    return v.filter((s) => scanners && scanners[s] && scanners[s].available === false);
  };
  // a gate that runs no scan checks nothing (the server refuses it): said at the boxes, Preview and Apply wait
  const noScans = () => { const v = scansValue(); return Array.isArray(v) && v.length === 0; };
  const noScansNote = h('div.notice.error', { hidden: true, 'data-no-scans': '' },
    'Tick at least one scan: a gate that runs no scan checks nothing. To stop gating these repositories, untick "Gate these repositories" instead.');
  function paintConfirm() {
    noScansNote.hidden = !noScans();
    const miss = missingChosen();
    confirmBox.hidden = miss.length === 0;
    clear(confirmBox);
    if (miss.length) {
      confirmBox.append(h('p', h('strong', `No scanner on this server for ${miss.map((s) => SCAN_LABELS[s]).join(', ')}.`),
        ' Every merge request of these repositories would fail with "no scanner configured" until one is installed (see the README, MRGATE_SCANNER_*).'),
      h('label.option', confirmCb, `Enable ${miss.map((s) => SCAN_LABELS[s]).join(', ')} anyway`));
    } else confirmCb.checked = false;
  }
  syncKeep();
  getters.scans = scansValue;
  parts.push(h('fieldset', { 'data-field': 'scans' }, h('legend', 'Scans'),
    keepScans ? h('label.option', { style: 'margin-bottom:6px' }, keepScans, MIXED) : null,
    h('div.checks', boxes), noScansNote, confirmBox));

  boolField('block_merge', 'Block merge until the gate passes', 'turns on GitLab\'s "Pipelines must succeed" for these repos');
  choiceField('comment', 'Comment on the merge request', COMMENT, 'one note per merge request, edited in place; on the changed lines: also a thread on the line of each new finding (at most 20), resolved when a push removes it');

  const ia = agreement(summary, 'ignore_paths');
  const ta = h('textarea', { name: 'ignore_paths', rows: 3, placeholder: ia.agreed ? 'vendor/**\ndocs/**' : `${MIXED}: type globs to set them on all` });
  if (ia.agreed && Array.isArray(ia.value)) ta.value = ia.value.join('\n');
  ta.addEventListener('input', changed);
  getters.ignore_paths = () => {
    const globs = ta.value.split('\n').map((x) => x.trim()).filter(Boolean);
    if (!ia.agreed) return globs.length ? globs : undefined;
    return JSON.stringify(globs) === JSON.stringify(ia.value || []) ? undefined : globs;
  };
  parts.push(field('Ignore paths', ta, ia.agreed ? 'one glob per line; findings in these files never count' : 'the repositories differ: left empty, each keeps its own'));

  const el = h('div.config-form', { 'data-config-form': '' }, parts);
  const value = () => {
    const out = {};
    for (const [k, g] of Object.entries(getters)) {
      const v = g();
      if (v !== undefined) out[k] = v;
    }
    return out;
  };
  return {
    el,
    value,
    missingScanners: missingChosen,
    confirmed: () => (missingChosen().length === 0 || confirmCb.checked) && !noScans(),
    // why Preview and Apply wait for the form, in words ('' when they need not)
    problem: () => (noScans() ? 'Tick at least one scan' : missingChosen().length && !confirmCb.checked ? 'Confirm the scan types that have no scanner' : ''),
    onChange: (fn) => listeners.push(fn),
  };
}

// The counts and sentences of a dry run. plan: [{repo_id, path_with_namespace, result, message, actions}].
// "Replaces what 1 repository exception set for the fields you change: acme/x." (a summary's overridden)
function overriddenNotice(ov, level, attrs, verb = 'Replaces') {
  const what = []; // groups first, as the paths are
  if (ov.groups) what.push(`${fmtNum(ov.groups)} ${level === 'default' ? 'group' : 'subgroup'} ${ov.groups === 1 ? 'config' : 'configs'}`);
  if (ov.repos) what.push(`${fmtNum(ov.repos)} repository ${ov.repos === 1 ? 'exception' : 'exceptions'}`);
  const more = ov.groups + ov.repos - (ov.paths || []).length;
  return h('div.notice.warn', attrs,
    h('strong', `${verb} what ${what.join(' and ')} set for the fields you change: `),
    (ov.paths || []).join(', '), more > 0 ? ` and ${fmtNum(more)} more` : '',
    ov.groups ? '. Their other fields stay as they are; a group config left with none is removed.' : '. Their other fields stay as they are.');
}

export function planView(res, plan, patch, autoGate) {
  const s = (res && res.summary) || {};
  const out = h('div', { 'data-plan': '' });
  const asked = describePatch(patch);
  if (autoGate !== undefined) asked.push(autoGate ? 'gate new repositories as they appear' : 'stop gating new repositories automatically');
  out.append(h('p', { 'data-plan-asked': '' }, h('strong', 'You change: '), asked.length ? `${asked.join('; ')}.` : 'nothing.',
    ' Every other setting stays as each repository has it.'));
  const errors = plan.filter((p) => p.result === 'error');
  const changing = plan.filter((p) => p.result !== 'error' && (p.actions || []).length);
  const counts = new Map();
  for (const p of changing) for (const a of p.actions) { const k = a.replace(/^(gate|clear the gate status of) \d+ /, '$1 '); counts.set(k, (counts.get(k) || 0) + 1); }
  const selected = typeof s.selected === 'number' ? s.selected : plan.length;
  const unchanged = Math.max(0, selected - (s.skipped || 0) - changing.length - errors.length);
  const line = [`${fmtNum(selected)} ${selected === 1 ? 'repository' : 'repositories'} selected`];
  if (changing.length) line.push(`${fmtNum(changing.length)} change on GitLab`);
  line.push(`${fmtNum(unchanged)} need no GitLab change`);
  if (s.skipped) line.push(`${fmtNum(s.skipped)} archived or pending deletion, skipped`);
  if (errors.length) line.push(`${fmtNum(errors.length)} would fail`);
  out.append(h('p', { 'data-plan-summary': '' }, `${line.join(' · ')}.`));
  // the more specific configs whose value for a field sent is replaced (a walk lost an exception without a word)
  const ov = s.overridden;
  if (ov && (ov.groups || ov.repos)) out.append(overriddenNotice(ov, s.level, { 'data-plan-overridden': '' }));
  if (counts.size) {
    out.append(h('ul.plan-counts', { 'aria-label': 'Changes on GitLab' },
      [...counts.entries()].map(([a, c]) => h('li', { 'data-plan-count': a }, h('strong', fmtNum(c)), ` × ${a}`))));
  }
  if (!changing.length && !errors.length) {
    out.append(h('p.muted', { 'data-plan-nothing': '' }, 'Nothing changes on GitLab: the new settings are stored in mrgate and take effect on the next merge request.'));
    return out;
  }
  const rows = [...errors, ...changing];
  out.append(h('div.plan', h('table.data', { 'aria-label': 'Planned changes' },
    h('thead', h('tr', h('th', { scope: 'col' }, 'Repository'), h('th', { scope: 'col' }, 'What happens on GitLab'))),
    h('tbody', rows.slice(0, 500).map((p) => h('tr', { 'data-plan-item': p.repo_id, 'data-result': p.result },
      h('td', p.path_with_namespace || `#${p.repo_id}`),
      h('td.small', p.result === 'error' ? [badge('error', 'would fail'), ' ', p.message] : (p.actions || []).join(' · ')))))),
  ));
  if (rows.length > 500) out.append(h('p.small.muted', `The first 500 of ${fmtNum(rows.length)} are shown.`));
  return out;
}

// The selection's current values: the rows at hand (ids) or the server's summary (filter).
async function selectionSummary(selection, rows) {
  // what the server has now (rows on screen may be older than a change made since)
  if (selection.ids && selection.ids.length <= 1000) return (await get(`/api/repos${qs({ ids: selection.ids.join(','), limit: 1, with: 'summary' })}`)).summary;
  if (selection.ids && rows && rows.length === selection.ids.length) return summarizeRows(rows);
  const f = selection.filter || {};
  const res = await get(`/api/repos${qs({ ...f, limit: 1, with: 'summary' })}`);
  return res.summary;
}

// Can the token write? null when it can, else the reason in words.
function writeBlocker(conn) {
  if (!conn) return 'No GitLab group is connected: connect one first.';
  const t = conn.token || {};
  if (t.status && t.status !== 'ok') return t.problem || `The GitLab token is ${t.status}: update it on the Connection page.`;
  if (conn.capability !== 'gate') return 'The GitLab token is read-only (read_api): mrgate cannot create webhooks or change settings. Update the connection with a token that has the api scope.';
  return null;
}

// The Configure Scans modal for a selection ({ids:[...]} or {filter:{...}}); rows: the selected repos when known.
export async function openConfigure({ selection, count, describe, rows, onApplied, gateAll = false }) {
  const body = h('div', loading('Reading the selected repositories…'));
  const previewBtn = h('button', { type: 'button', 'data-action': 'preview', disabled: true }, 'Preview changes');
  const applyBtn = h('button.primary', { type: 'button', 'data-action': 'apply', disabled: true }, `Apply to ${fmtNum(count)}`);
  const cancelBtn = h('button', { type: 'button' }, 'Cancel');
  const m = openModal({ title: 'Configure Scans', wide: true, body, footer: [cancelBtn, previewBtn, applyBtn] });
  m.dialog.dataset.modal = 'configure';
  cancelBtn.addEventListener('click', () => m.close());
  let summary, conn = null, scanners = null, settings = null;
  try {
    [summary, conn, scanners, settings] = await Promise.all([
      selectionSummary(selection, rows),
      get('/api/connection').catch(() => null),
      scannersByType(),
      get('/api/settings').catch(() => null),
    ]);
  } catch (e) {
    clear(body).append(errorNotice(e));
    return;
  }
  // the summary counts the selection exactly (the list's count stops at 10,000)
  if (summary && typeof summary.repos === 'number') count = summary.repos;
  applyBtn.textContent = `Apply to ${fmtNum(count)}`;
  const blocker = writeBlocker(conn);
  const form = patchForm(summary, { scanners });
  if (gateAll) {
    // "Gate all" / "Gate them": gating is what is asked, even where the inherited config is already enabled but
    // was never applied (new repositories)
    const cb = form.el.querySelector('input[name="enabled"]');
    if (cb && !cb.checked) cb.click();
    const base = form.value;
    form.value = () => ({ enabled: true, ...base() });
  }
  // new repositories inherit the default or group config: offer to gate them as they appear (a setting of the
  // installation), when the selection is a whole level (every repo, or a group's subtree)
  const f = selection.filter;
  const wholeLevel = f && !f.q && !f.status && !f.path && f.archived === undefined;
  const autoNow = !!(settings && settings.auto_gate_new_repos);
  const autoCb = h('input', { type: 'checkbox', name: 'auto_gate_new_repos', checked: gateAll || autoNow });
  const autoField = wholeLevel && settings ? h('div.field', { 'data-field': 'auto_gate' },
    h('label.option', autoCb, 'Also gate new repositories'),
    h('span.hint', 'new repositories of the group are gated as soon as a resync lists them (a setting of this installation, also on the Settings page)')) : null;
  if (autoField) form.el.append(autoField);
  const autoChange = () => (autoField && autoCb.checked !== autoNow ? autoCb.checked : undefined);
  autoCb.addEventListener('change', () => paint());
  const planBox = h('div', { 'aria-live': 'polite' });
  const status = h('div', { 'data-apply-blocked': blocker ? 'true' : undefined });
  const partial = h('label.option', { hidden: true }, h('input', { type: 'checkbox', name: 'confirm_partial' }), '');
  const partialCb = partial.querySelector('input');
  // where the change is stored (the server's rule: a whole group is its group config, everything the default)
  const level = wholeLevel ? (f.group
    ? h('p', { 'data-level': 'group' }, 'Stored as the config of group ', h('strong', f.group), ': its repositories and those created in it later inherit it. A field you set here replaces what its subgroups\' configs and its repositories\' exceptions set for it (the preview names them).')
    : h('p', { 'data-level': 'default' }, 'Stored as the ', h('strong', 'default config'), ': every repository and every one created later inherits it. A field you set here replaces what group configs and exceptions set for it (the preview names them).'))
    // hand-picked or filtered by more than a group: each repo's own config (a walk learnt it from the list afterwards)
    : h('p', { 'data-level': 'repos' }, 'Stored as each selected repository\'s own config: they become exceptions to their group\'s and the default config, and repositories created later do not get it. To cover a whole group and its new repositories, select the group in the tree (or every repository, for the default).');
  clear(body).append(...[
    h('p', 'For ', h('strong', describe), '. The dialog shows what the selected repositories have now; a field marked "', MIXED, '" differs between them and is left alone unless you set it. Only what you change is sent.'),
    level,
    blocker ? notice('warn', h('strong', 'Apply is not possible: '), blocker) : null,
    form.el, planBox, status].filter(Boolean));
  let lastPlan = null;
  // what the user was shown the configure replaces (the preview's, or a refused Apply's): sent with Apply, which
  // the server refuses when it would replace more (an exception added since the preview, or Apply without one)
  const NOTHING_SHOWN = { groups: 0, repos: 0, paths: [] };
  let shownOverridden = null;
  // a preview in progress (its generation: a change of the form or closing the dialog ends it)
  let previewing = false, previewGen = 0;
  function paint() {
    const patch = form.value();
    const noPatch = Object.keys(patch).length === 0;
    const empty = noPatch && autoChange() === undefined;
    previewBtn.disabled = noPatch || !form.confirmed();
    const errs = lastPlan ? lastPlan.filter((p) => p.result === 'error').length : 0;
    partial.hidden = !errs;
    if (errs) partial.lastChild.textContent = ` Apply to the ${fmtNum(count - errs)} that can be applied (${fmtNum(errs)} would fail)`;
    applyBtn.disabled = previewing || !!blocker || empty || !form.confirmed() || (errs > 0 && !partialCb.checked);
    applyBtn.title = blocker || (previewing ? 'Wait for the preview to finish' : empty ? 'Change a setting first' : form.problem());
    previewBtn.title = noPatch ? 'Change a setting first' : form.problem();
    applyBtn.textContent = errs ? `Apply to the ${fmtNum(count - errs)} that can be applied` : `Apply to ${fmtNum(count)}`;
    const ov = shownOverridden;
    if (ov && (ov.groups || ov.repos)) applyBtn.textContent = `Replace them and ${applyBtn.textContent.replace(/^A/, 'a')}`;
  }
  form.onChange(() => { lastPlan = null; shownOverridden = null; previewing = false; previewGen++; clear(planBox); paint(); });
  partialCb.addEventListener('change', paint);
  planBox.after(partial);
  paint();
  const request = (dry, extra) => {
    const patch = form.value();
    const b = { selection, config: patch, dry_run: dry, ...extra };
    if (form.missingScanners().length) b.confirm_no_scanner = true;
    return post('/api/configure', b);
  };
  previewBtn.addEventListener('click', async () => {
    previewBtn.disabled = true;
    previewing = true;
    const gen = ++previewGen;
    const current = () => gen === previewGen && m.dialog.isConnected;
    paint();
    const patch = form.value();
    const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Preview progress' });
    const txt = h('span.small.muted', { 'data-preview-progress': '' }, 'Computing the plan…');
    clear(planBox).append(h('div.preview-progress', { role: 'status' }, bar, ' ', txt));
    // in view: below a long form the bar was out of sight until the plan came (a walk saw no progress at all)
    planBox.scrollIntoView({ block: 'nearest' });
    try {
      // a dry run is a job that reads GitLab (202 at once): follow its progress, then read its plan in pages
      const first = await request(true);
      const jobPath = `/api/jobs/${encodeURIComponent(first.plan_job_id)}`;
      // an abandoned preview (the form changed, the dialog closed) stops reading GitLab
      const abandon = () => { post(`${jobPath}/cancel`, {}).catch(() => {}); };
      if (!current()) return first.plan_job.finished ? undefined : abandon();
      const total = first.plan_total || 0;
      bar.max = Math.max(1, total);
      let job = first.plan_job;
      for (;;) {
        bar.value = job.done;
        txt.textContent = `Read GitLab for ${fmtNum(job.done)} of ${fmtNum(total)} repositories that may change…`;
        if (job.finished) break;
        await new Promise((resolve) => { setTimeout(resolve, 300); });
        if (!current()) return abandon();
        job = await get(`${jobPath}${qs({ items_limit: 0 })}`);
        if (!current()) return job.finished ? undefined : abandon();
      }
      let cursor = null;
      const plan = [];
      do {
        const page = await get(`${jobPath}/plan${qs({ limit: 1000, cursor })}`);
        if (!current()) return;
        plan.push(...(page.items || []));
        cursor = page.next_cursor;
      } while (cursor);
      lastPlan = plan;
      shownOverridden = (first.summary && first.summary.overridden) || NOTHING_SHOWN;
      clear(planBox).append(h('h3', 'Preview (dry run, nothing changed yet)'), planView(first, plan, patch, autoChange()));
      planBox.scrollIntoView({ block: 'start' });
    } catch (e) {
      // in view: below a long form it was out of sight (a walk pressed the button again and again)
      if (current()) { clear(planBox).append(errorNotice(e)); planBox.scrollIntoView({ block: 'nearest' }); }
    } finally {
      if (gen === previewGen) {
        previewing = false;
        paint();
      }
    }
  });
  applyBtn.addEventListener('click', async () => {
    applyBtn.disabled = true;
    previewBtn.disabled = true;
    try {
      const auto = autoChange();
      const res = Object.keys(form.value()).length ? await request(false, { expect_overridden: shownOverridden || NOTHING_SHOWN }) : null;
      if (auto !== undefined) await put('/api/settings', { auto_gate_new_repos: auto });
      const id = jobIdOf(res);
      m.close();
      if (onApplied) onApplied(res);
      if (id) {
        toast('The job started.');
        location.hash = `#/jobs/${id}`;
      } else {
        toast('The configuration was saved; nothing needs changing on GitLab.');
        window.dispatchEvent(new HashChangeEvent('hashchange'));
      }
    } catch (e) {
      const ov = e instanceof ApiError && e.code === 'overrides_changed' && e.data && e.data.summary && e.data.summary.overridden;
      if (ov) {
        // nothing was stored: say what Apply would replace; a second Apply (its button says so) replaces it
        shownOverridden = ov;
        clear(planBox).append(overriddenNotice(ov, e.data.summary.level, { 'data-apply-overrides': '', role: 'alert' },
          'Nothing was applied yet: applying replaces'));
      } else {
        clear(planBox).append(errorNotice(e));
      }
      planBox.scrollIntoView({ block: 'nearest' });
      paint();
    }
  });
}

// GET path for a dialog's body; on failure the body says why (or that `what` is not in this version of mrgate) and
// the answer is undefined.
async function loadInto(body, path, what) {
  try {
    return await get(path);
  } catch (e) {
    clear(body).append(e instanceof ApiError && e.unavailable ? unavailable(what) : errorNotice(e));
    return undefined;
  }
}

// {scan type: {scan, available, builtin}} from GET /api/scanners; null when it cannot be read.
export function scannersByType() {
  return get('/api/scanners').then((r) => Object.fromEntries((r.items || []).map((x) => [x.scan, x]))).catch(() => null);
}

// "Edit exception…": the repo's own config, with what it inherits.
export async function openRepoConfig(repo, onSaved) {
  const body = h('div', loading());
  const saveBtn = h('button.primary', { type: 'button', 'data-action': 'save-exception', disabled: true }, 'Save exception');
  const cancelBtn = h('button', { type: 'button' }, 'Cancel');
  const m = openModal({ title: `Exception for ${repo.path_with_namespace}`, body, footer: [cancelBtn, saveBtn] });
  m.dialog.dataset.modal = 'exception';
  cancelBtn.addEventListener('click', () => m.close());
  const [data, scanners] = await Promise.all([loadInto(body, `/api/repos/${repo.id}/config`, 'Per-repository configuration'), scannersByType()]);
  if (data === undefined) return;
  const form = configForm(data.config || {}, { inherit: true, inherited: data.inherited || {}, single: true, scanners });
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
      const res = await putConfig(`/api/repos/${repo.id}/config`, { ...form.value(), unmanaged: !!data.unmanaged });
      if (res === null) { saveBtn.disabled = false; return; }
      m.close();
      toast(res && res.exception === false ? 'Saved: the config equals the inherited one, so this is not an exception.' : `Saved the exception for ${repo.path_with_namespace}.`);
      if (onSaved) onSaved(res);
    } catch (e) {
      // the message sits above the form: scrolled down to Save, the user would not see why nothing happened
      clear(msg).append(errorNotice(e));
      msg.scrollIntoView({ block: 'nearest' });
      saveBtn.disabled = false;
    }
  });
}

export async function resetRepo(repo, onDone) {
  const again = repo.unmanaged ? ' mrgate manages it again: its webhook and merge setting are applied by the inherited config.' : '';
  if (!confirm(`Reset ${repo.path_with_namespace} to the inherited config? Its own settings are removed.${again}`)) return;
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

// The repo's own config kept, its unmanaged flag off (no own config left: the row is deleted, it inherits).
export async function manageAgain(repo, onDone) {
  if (!confirm(`Manage ${repo.path_with_namespace} again? mrgate applies its config to it: its webhook and, with block merge, "Pipelines must succeed".`)) return;
  try {
    let own = {};
    try {
      own = (await get(`/api/repos/${repo.id}/config`)).config || {};
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404 && !e.unavailable)) throw e;
    }
    if (Object.keys(own).length) await put(`/api/repos/${repo.id}/config`, { ...own, unmanaged: false });
    else await del(`/api/repos/${repo.id}/config`);
    toast(`mrgate manages ${repo.path_with_namespace} again: its config is being applied.`);
    if (onDone) onDone();
  } catch (e) {
    toast(e.unavailable ? 'Managing a repository again is not available in this version of mrgate.' : e.message, 'error');
  }
}

// What a repository's history lists, in words: the kinds of job that had an item for it, and audit actions.
const HISTORY_ACTIONS = {
  apply: 'applied to GitLab',
  onboard: 'gated as a new repository',
  dryrun: 'previewed (dry run): nothing was changed on GitLab',
  hookmode: 'webhook mode switched',
  mrcommand: 'merge request command',
  hold: 'merge held for a pipeline',
  'config.repo.update': 'its own config (exception) set',
  'config.repo.delete': 'reset to the inherited config',
  'config.configure': 'Configure Scans',
  'config.group.update': 'a group config set',
  'config.group.delete': 'a group config removed',
  'config.default.update': 'the default config set',
  'config.import': 'configs imported',
};

export async function openHistory(repo) {
  const body = h('div', loading());
  const m = openModal({ title: `History of ${repo.path_with_namespace}`, body, wide: true });
  m.dialog.dataset.modal = 'history';
  const res = await loadInto(body, `/api/repos/${repo.id}/history`, 'The history of a repository');
  if (res === undefined) return;
  const items = Array.isArray(res) ? res : res.items || [];
  if (!items.length) {
    clear(body).append(h('p.empty', 'Nothing has happened to this repository yet.'));
    return;
  }
  clear(body).append(h('table.data', { 'aria-label': 'History' },
    h('thead', h('tr', ['When', 'What', 'Result', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', items.map((it) => h('tr',
      h('td.nowrap', fmtDate(it.at)),
      h('td', HISTORY_ACTIONS[it.action] || it.action || it.kind || '—',
        it.job_id ? h('div.sub', h('a', { href: `#/jobs/${it.job_id}` }, `job ${it.job_id}`)) : null,
        it.gate_id ? h('div.sub', h('a', { href: `#/gates/${it.gate_id}` }, `gate run ${it.gate_id}`)) : null),
      // a preview's "changed" is what an apply would change
      h('td', it.result ? badge(it.result, it.action === 'dryrun' && it.result === 'changed' ? 'would change' : undefined) : '—'),
      // a row without a message says at least who did it (a walk read bare "config.repo.update —" rows)
      h('td.small', it.message || '', it.actor ? h('div.sub', `by ${it.actor}`) : null))))));
}

export { FIELD_LABELS };
