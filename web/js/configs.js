// #/configs: the default config and the configs of GitLab groups (each field inherits default -> group -> repo).
import { get, del, getOptional, encodeGroupPath, ApiError, canEdit, EDITOR_ONLY } from './api.js';
import { h, clear, errorNotice, notice, unavailable, loading, pageHead, toast, openModal, select, field, fmtDate } from './ui.js';
import { configForm, configSummary, putConfig, scannersByType } from './configure.js';

export async function render(main) {
  main.append(pageHead('Defaults and group configs', 'Every repository inherits the default, then the configs of its groups from the root down, then its own exception.'));
  const defBox = h('section.panel.narrow', { 'aria-labelledby': 'def-title', 'data-panel': 'default-config' }, h('h2#def-title', 'Default config'), loading());
  const grpBox = h('section.panel', { 'aria-labelledby': 'grp-title', 'data-panel': 'group-configs' }, h('h2#grp-title', 'Group configs'), loading());
  main.append(defBox, grpBox);

  const [def, scanners] = await Promise.all([getOptional('/api/configs/default').catch((e) => ({ error: e })), scannersByType()]);
  clear(defBox).append(h('h2#def-title', 'Default config'));
  if (def.error && def.available !== false) defBox.append(errorNotice(def.error));
  else if (!def.available) defBox.append(unavailable('Configs'));
  else {
    const cfg = def.data.config || def.data;
    const form = configForm(cfg, { inherit: false, scanners });
    const msg = h('div', { 'aria-live': 'assertive' });
    const save = h('button.primary', { type: 'submit', disabled: !canEdit() || undefined, title: canEdit() ? undefined : EDITOR_ONLY }, 'Save default');
    if (!canEdit()) msg.append(notice('info', 'Only an editor or an admin can change configs.'));
    const f = h('form', { 'aria-label': 'Default config' }, msg, form.el, h('div.actions', save,
      def.data.updated_at ? h('span.small.muted', `Last changed ${fmtDate(def.data.updated_at)}${def.data.updated_by ? ` by ${def.data.updated_by}` : ''}`) : null));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      save.disabled = true;
      try {
        const res = await putConfig('/api/configs/default', form.value());
        if (res === null) return;
        clear(msg);
        // the answer's apply names the job that changes GitLab, when the change needs one
        const job = res && res.apply && res.apply.job_id;
        toast(job ? 'Saved; a job applies the change on GitLab.' : 'The default config was saved.');
        if (job) location.hash = `#/jobs/${job}`;
      } catch (err) {
        clear(msg).append(errorNotice(err));
      } finally {
        save.disabled = false;
      }
    });
    defBox.append(f);
  }

  await renderGroups(grpBox, scanners);
}

async function renderGroups(box, scanners) {
  const res = await getOptional('/api/configs/groups').catch((e) => ({ error: e }));
  clear(box).append(h('h2#grp-title', 'Group configs'));
  if (res.error && res.available !== false) { box.append(errorNotice(res.error)); return; }
  if (!res.available) { box.append(unavailable('Group configs')); return; }
  const list = Array.isArray(res.data) ? res.data : res.data.items || [];
  const addBtn = h('button.primary', { type: 'button', 'data-action': 'add-group-config', disabled: !canEdit() || undefined, title: canEdit() ? undefined : EDITOR_ONLY }, 'Add a group config…');
  box.append(h('p.muted', 'A group config applies to every repository in the group and its subgroups; it may set only some fields.'), h('div.actions', { style: 'margin-bottom:12px' }, addBtn));
  if (!list.length) box.append(h('p.empty', 'No group has a config of its own; every repository inherits the default.'));
  else {
    box.append(h('div.table-wrap', h('table.data', { 'aria-label': 'Group configs' },
      h('thead', h('tr', ['Group', 'Config', 'Changed', h('span.visually-hidden', 'Actions')].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', list.map((g) => h('tr', { 'data-group-config': g.path },
        h('td', h('strong', g.path), listedNote(g.listed_as)),
        h('td', configSummary(g.config, null, { partial: true })),
        h('td.nowrap.small', fmtDate(g.updated_at), g.updated_by ? ` by ${g.updated_by}` : ''),
        h('td.num', h('div.actions',
          canEdit() ? [h('button.small', { type: 'button', onclick: () => editGroup(g.path, g.config, box, scanners) }, 'Edit'),
            h('button.small.danger', { type: 'button', onclick: () => removeGroup(g.path, box, scanners) }, 'Remove')] : null))))))));
  }
  addBtn.addEventListener('click', async () => {
    let groups = [];
    try { groups = await get('/api/groups'); } catch { /* typed path then */ }
    const taken = new Set(list.map((g) => g.path));
    const options = (Array.isArray(groups) ? groups : []).filter((g) => !taken.has(g.full_path)).map((g) => [g.full_path, g.full_path]);
    const sel = options.length ? select(options, options[0][0], { name: 'group' }) : h('input', { type: 'text', name: 'group', placeholder: 'acme/platform' });
    const go = h('button.primary', { type: 'button' }, 'Next');
    const m = openModal({ title: 'Add a group config', body: field('Group', sel), footer: [go] });
    go.addEventListener('click', () => { const p = sel.value.trim(); if (!p) return; m.close(); editGroup(p, {}, box, scanners); });
  });
}

// What the last sync listed at a group config's path, when it is not a group: the config covers no repository.
function listedNote(listedAs) {
  if (listedAs === 'group') return null;
  const text = listedAs === 'repository'
    ? "a repository's path, not a group's: this config covers nothing; remove it and configure the repository itself"
    : 'no sync has listed this group: it covers no repository until one does (a group still to come, or a typo?)';
  return h('div.small', h('span.badge.hook_disabled', { 'data-listed-as': listedAs || 'none' }, listedAs === 'repository' ? 'not a group' : 'not listed'), ' ', h('span.muted', text));
}

function editGroup(path, cfg, box, scanners) {
  const form = configForm(cfg || {}, { inherit: true, scanners });
  const msg = h('div', { 'aria-live': 'assertive' });
  const save = h('button.primary', { type: 'button' }, 'Save');
  const m = openModal({ title: `Config of ${path}`, body: [msg, form.el], footer: [save] });
  const isNew = !cfg || !Object.keys(cfg).length;
  save.addEventListener('click', async () => {
    const value = form.value();
    if (!Object.keys(value).length) {
      // every field inherits: such a config would change nothing (the server refuses it too)
      clear(msg).append(notice('error', isNew
        ? `Set at least one field: with every field inherited, a config of ${path} would change nothing.`
        : `Every field is set to inherit. For ${path} to inherit everything, close this and use Remove on its row.`));
      return;
    }
    save.disabled = true;
    clear(msg);
    try {
      const res = await putConfig(`/api/configs/groups/${encodeGroupPath(path)}`, value, { onUngate: (data) => askUngateOnSave(msg, form.el, path, data) });
      if (res === null) { save.disabled = false; return; }
      m.close();
      const job = res && res.apply && res.apply.job_id;
      const n = (res && res.ungated) || 0;
      toast(n ? `Saved the config of ${path}: ${n} ${n === 1 ? 'repository is' : 'repositories are'} no longer gated; a job takes mrgate's webhook and merge block off them on GitLab.`
        : job ? `Saved the config of ${path}; a job applies the change on GitLab.` : `Saved the config of ${path}.`);
      if (job) location.hash = `#/jobs/${job}`;
      else renderGroups(box, scanners);
    } catch (e) {
      clear(msg).append(errorNotice(e));
      save.disabled = false;
    }
  });
}

// Remove a group config. When that stops gating repositories the server refuses (409 would_ungate) and says how
// many and which: the user sees them and confirms, then watches the job that takes the webhook and merge block off.
async function removeGroup(path, box, scanners) {
  if (!confirm(`Remove the config of ${path}? Its repositories inherit from the parent groups and the default again.`)) return;
  const url = `/api/configs/groups/${encodeGroupPath(path)}`;
  try {
    let res;
    try {
      res = await del(url);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409 && e.code === 'would_ungate' && e.data)) throw e;
      if (!await confirmUngate(path, e.data)) return;
      res = await del(`${url}?confirm_ungate=true`);
    }
    const job = res && res.apply && res.apply.job_id;
    const n = (res && res.ungated) || 0;
    toast(n ? `Removed the config of ${path}: ${n} ${n === 1 ? 'repository is' : 'repositories are'} no longer gated; a job takes mrgate's webhook and merge block off them on GitLab.`
      : job ? `Removed the config of ${path}; a job applies the change on GitLab.` : `Removed the config of ${path}.`);
    if (job) location.hash = `#/jobs/${job}`;
    else renderGroups(box, scanners);
  } catch (e) {
    toast(e instanceof ApiError ? e.message : String(e), 'error');
    renderGroups(box, scanners); // what is stored now, whatever the failure was (another user may have removed it)
  }
}

// The repositories a save stops gating (a would_ungate answer), shown in the edit dialog's message area before
// anything changes (a walk's Edit set "Gate these repositories" to Inherit and ungated 92 without a word): a promise
// of true to save anyway. A change of the form meanwhile withdraws the question (resolves false): the answer was
// about what was sent, and a walk's confirm saved that, not what the form then showed.
function askUngateOnSave(msg, formEl, path, data) {
  return new Promise((resolve) => {
    let done = false;
    const answer = (v) => {
      if (done) return;
      done = true;
      formEl.removeEventListener('input', withdraw, true);
      formEl.removeEventListener('change', withdraw, true);
      clear(msg);
      resolve(v);
    };
    const withdraw = () => answer(false);
    formEl.addEventListener('input', withdraw, true);
    formEl.addEventListener('change', withdraw, true);
    const n = data.ungated;
    const repos = `${n} ${n === 1 ? 'repository' : 'repositories'}`;
    const examples = Array.isArray(data.examples) ? data.examples : [];
    const back = h('button', { type: 'button' }, 'Keep editing');
    const go = h('button.danger', { type: 'button', 'data-action': 'confirm-ungate' }, `Save and stop gating ${repos}`);
    clear(msg).append(notice('warn', h('div', { 'data-ungate': String(n) },
      h('strong', `Stop gating ${repos}?`),
      h('p', `With this config of ${path}, ${repos} ${n === 1 ? 'is' : 'are'} no longer gated: a job takes mrgate's webhook and merge block off ${n === 1 ? 'it' : 'them'} on GitLab, and ${n === 1 ? 'its' : 'their'} merge requests are no longer checked: one the gate blocks now can then be merged.`),
      examples.length ? h('ul', examples.map((p) => h('li', h('code', p)))) : null,
      n > examples.length ? h('p.muted', `and ${n - examples.length} more.`) : null,
      h('div.actions', back, go))));
    back.addEventListener('click', () => answer(false));
    go.addEventListener('click', () => answer(true));
    back.focus();
  });
}

// The repositories a removal stops gating (a would_ungate answer), shown before anything changes: true to go on.
function confirmUngate(path, data) {
  return new Promise((resolve) => {
    const n = data.ungated;
    const examples = Array.isArray(data.examples) ? data.examples : [];
    const repos = `${n} ${n === 1 ? 'repository' : 'repositories'}`;
    let answer = false;
    const keep = h('button', { type: 'button' }, 'Keep the config');
    const go = h('button.danger', { type: 'button', 'data-action': 'confirm-ungate' }, `Remove and stop gating ${repos}`);
    const m = openModal({
      title: `Stop gating ${repos}?`,
      body: h('div', { 'data-ungate': String(n) },
        h('p', `Removing the config of ${path} stops gating ${repos}: what ${n === 1 ? 'it inherits' : 'they inherit'} then does not enable gating. A job takes mrgate's webhook and merge block off ${n === 1 ? 'it' : 'them'} on GitLab, and ${n === 1 ? 'its' : 'their'} merge requests are no longer checked: one the gate blocks now can then be merged.`),
        examples.length ? h('ul', examples.map((p) => h('li', h('code', p)))) : null,
        n > examples.length ? h('p.muted', `and ${n - examples.length} more.`) : null),
      footer: [keep, go],
      onClose: () => resolve(answer),
    });
    keep.addEventListener('click', () => m.close());
    go.addEventListener('click', () => { answer = true; m.close(); });
    keep.focus();
  });
}
