// #/repos: the repository table. Search, group tree, status filter, sorting, cursor paging; a selection made with
// tick boxes (shift-click ranges) or "all N matching"; status badges; the effective config; a "⋯" menu per row.
import { get, post, qs, ApiError, canEdit, EDITOR_ONLY } from './api.js';
import { h, clear, badge, fmtNum, time, errorNotice, menuButton, select, toast, onLeave, STATUS_LABELS, field, httpUrl, visible } from './ui.js';
import { openConfigure, openRepoConfig, resetRepo, stopManaging, manageAgain, openHistory, configSummary } from './configure.js';

const STATUSES = ['ungated', 'gated', 'exception', 'applying', 'error', 'hook_disabled', 'new', 'archived', 'pending_deletion', 'removed', 'unmanaged'];

// Kept across visits of the page (and written to the URL so that a link shows the same view).
const state = {
  q: '', group: '', status: '', sort: 'path', order: 'asc', limit: 50,
  cursors: [null], page: 0, // cursors[i] is the cursor that loads page i
  sel: new Map(), // id -> repo (mode "ids")
  all: null, // {filter, count} when "all N matching" is selected
};

function filterOf() {
  const f = {};
  if (state.q) f.q = state.q;
  if (state.group) f.group = state.group;
  if (state.status) f.status = state.status;
  return f;
}

// A count the API capped (count_capped: more than 10,000 match, counting stopped there) reads "10,000+".
function fmtCount(n, capped) {
  return capped ? `${fmtNum(n)}+` : fmtNum(n);
}

// The selection's size as shown: "10,000+" when "all matching" is selected and that count was capped.
function selectionText() {
  return state.all ? fmtCount(state.all.count, state.all.capped) : fmtNum(state.sel.size);
}

function selectionCount() {
  return state.all ? state.all.count : state.sel.size;
}

function writeUrl() {
  const p = qs({ q: state.q, group: state.group, status: state.status, sort: state.sort !== 'path' ? state.sort : '', order: state.order !== 'asc' ? state.order : '' });
  history.replaceState(null, '', `#/repos${p}`);
}

export async function render(main, route) {
  const rq = route.query;
  if ([...rq.keys()].length) {
    for (const k of ['q', 'group', 'status']) state[k] = rq.get(k) || '';
    state.sort = rq.get('sort') === 'activity' ? 'activity' : 'path';
    state.order = rq.get('order') === 'desc' ? 'desc' : 'asc';
    state.cursors = [null];
    state.page = 0;
  }
  // "all N matching" holds for the filter it was made under: a page reached by Back, a link or a typed URL with
  // another filter must not keep it (a walk's Configure then wrote team03's config from team01's page)
  if (state.all && JSON.stringify(state.all.filter) !== JSON.stringify(filterOf())) state.all = null;
  let alive = true;
  onLeave(() => { alive = false; });

  // --- head ---------------------------------------------------------------------------------------------------
  const editor = canEdit();
  const viewerTitle = editor ? undefined : EDITOR_ONLY;
  const configureBtn = h('button.primary', { type: 'button', 'data-action': 'configure', disabled: true, title: viewerTitle }, 'Configure Scans…');
  const syncBtn = h('button', { type: 'button', 'data-action': 'sync', disabled: !editor || undefined, title: viewerTitle }, 'Sync now');
  const syncLine = h('span.small.muted', { 'aria-live': 'polite', 'data-sync-line': '' });
  main.append(h('div.page-head',
    h('div.grow', h('h1', 'Repositories'), h('p.muted', 'Every project of the connected group and its subgroups. Select repos, then Configure Scans.'), syncLine),
    h('div.actions', syncBtn, configureBtn)));

  // --- toolbar ------------------------------------------------------------------------------------------------
  const search = h('input', { type: 'search', name: 'q', value: state.q, placeholder: 'Search by path', autocomplete: 'off', maxlength: 399 });
  // a status the URL names that is none (a typo): shown as what it is, not as "Any status" over a refused list
  const statusSel = select([['', 'Any status'], ...STATUSES.map((s) => [s, STATUS_LABELS[s]]),
    ...(state.status && !STATUSES.includes(state.status) ? [[state.status, `"${state.status}" (no such status)`]] : [])], state.status, { name: 'status' });
  const sortSel = select([['path:asc', 'Path A→Z'], ['path:desc', 'Path Z→A'], ['activity:desc', 'Recently active'], ['activity:asc', 'Least recently active']], `${state.sort}:${state.order}`, { name: 'sort' });
  const groupSel = select([['', 'All groups']], state.group, { name: 'group' });
  const searchField = field('Search', search);
  searchField.classList.add('search');
  const groupField = field('Group', groupSel);
  groupField.classList.add('group-select');
  const toolbar = h('div.toolbar', { role: 'search', 'aria-label': 'Filter repositories' },
    searchField, groupField, field('Status', statusSel), field('Sort', sortSel));

  // --- onboarding, new repositories, coverage --------------------------------------------------------------------
  const onboard = h('div', { 'data-onboarding': '' });
  const chips = h('div.coverage', { role: 'group', 'aria-label': 'Coverage: show repositories by status', 'data-coverage': '' });

  // --- selection bar -------------------------------------------------------------------------------------------
  const selbar = h('div.selbar', { hidden: true, 'aria-live': 'polite', 'data-selbar': '' });

  // --- table ---------------------------------------------------------------------------------------------------
  const headCheck = h('input', { type: 'checkbox', 'aria-label': 'Select all repositories on this page', 'data-select-page': '' });
  const sortBtn = (key, label) => {
    const b = h('button.sort', { type: 'button', 'data-sort': key }, label, h('span', { 'aria-hidden': 'true' }, ''));
    b.addEventListener('click', () => {
      if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
      else { state.sort = key; state.order = key === 'activity' ? 'desc' : 'asc'; }
      sortSel.value = `${state.sort}:${state.order}`;
      resetPaging();
      load();
    });
    return b;
  };
  const thPath = h('th', { scope: 'col' }, sortBtn('path', 'Repository'));
  const thAct = h('th.col-activity', { scope: 'col' }, sortBtn('activity', 'Last activity'));
  const tbody = h('tbody', { 'data-rows': '' });
  const table = h('table.data', { 'aria-label': 'Repositories', 'aria-describedby': 'repos-count', 'data-table': 'repos' },
    h('thead', h('tr',
      h('th.check', { scope: 'col' }, headCheck),
      thPath,
      h('th', { scope: 'col' }, 'Status'),
      h('th.col-config', { scope: 'col' }, 'Effective config'),
      thAct,
      h('th', { scope: 'col' }, h('span.visually-hidden', 'Actions')))),
    tbody);
  const countEl = h('span#repos-count', { 'aria-live': 'polite' });
  const prevBtn = h('button.small', { type: 'button', 'data-action': 'prev' }, '← Previous');
  const nextBtn = h('button.small', { type: 'button', 'data-action': 'next' }, 'Next →');
  const limitSel = select([[25, '25'], [50, '50'], [100, '100'], [200, '200']], state.limit, { 'aria-label': 'Rows per page' });
  const pager = h('div.pager', countEl, h('div.actions', h('label.small.muted', { for: 'rows-per-page' }, 'Rows per page'), limitSel, prevBtn, nextBtn));
  limitSel.id = 'rows-per-page';
  const msg = h('div');
  // a group filter no sync has listed (a typo, or a link from before a rename) says so, as Configure Scans does
  const groupNote = h('div.notice.warn', { hidden: true, 'data-unknown-group': '' });
  let knownGroups = null;
  let refused = false; // the list answered 4xx for this filter: its message says why
  const paintGroupNote = () => {
    const unknown = !!(state.group && knownGroups && !knownGroups.has(state.group.toLowerCase()) && !refused);
    groupNote.hidden = !unknown;
    if (unknown) groupNote.textContent = `No group "${state.group}" has been listed by a sync: check the path, or pick a group from the tree.`;
  };

  // --- group tree --------------------------------------------------------------------------------------------
  const tree = h('ul.tree', { 'aria-label': 'Groups' });
  const treePanel = h('nav.tree-panel', { 'aria-labelledby': 'tree-title' }, h('h2#tree-title', 'Groups'), tree);

  main.append(h('div.repos-layout', treePanel, h('div', onboard, toolbar, chips, selbar, groupNote, msg, h('div.table-wrap', table), pager)));

  // What the repositories of the group (and search) have: the first-time offer, the new ones not gated, and
  // chips per status that filter the table.
  // The summary reads every matching repo's stored status and effective config (all matching rows of
  // repo_status_stored, unlike the page and its capped count): it is asked once the table is on screen and the user
  // stays, and again only when the search or the group changes (the chips do not depend on the status filter).
  let sumSeq = 0, sumKey = null, sumTimer = null;
  onLeave(() => clearTimeout(sumTimer));
  function loadSummary(force) {
    const key = `${state.q}\u0000${state.group}`;
    if (!force && key === sumKey) return;
    sumKey = key;
    clearTimeout(sumTimer);
    sumTimer = setTimeout(summaryNow, 600);
  }
  async function summaryNow() {
    const seq = ++sumSeq;
    let res, conn = null;
    try {
      [res, conn] = await Promise.all([
        get(`/api/repos${qs({ q: state.q, group: state.group, limit: 1, with: 'summary' })}`),
        get('/api/connection').catch(() => null),
      ]);
    } catch {
      return;
    }
    if (!alive || seq !== sumSeq) return;
    const st = (res.summary && res.summary.statuses) || {};
    const total = res.summary ? res.summary.repos : 0;
    // a repo with any gating decision (gated, applying, in error, unmanaged, or enabled by its config): no
    // first-time offer then. An exception may gate or not: one that only sets its own severity is no decision.
    const enabled = (((res.summary && res.summary.fields) || {}).enabled || []).filter((e) => e.value === true).reduce((n, e) => n + e.repos, 0);
    const decided = enabled + ['gated', 'applying', 'error', 'hook_disabled', 'unmanaged'].reduce((n, k) => n + (st[k] || 0), 0);
    const canWrite = editor && conn && conn.capability === 'gate' && (!conn.token || conn.token.status === 'ok');
    clear(onboard);
    if (total > 0 && decided === 0 && !state.q && !state.group && canWrite) {
      onboard.append(h('section.panel.onboard', { 'aria-labelledby': 'onboard-title', 'data-panel': 'onboard' },
        h('h2#onboard-title', `${fmtNum(total)} repositories, none gated yet`),
        h('p', 'Gate them all at once: mrgate stores the default config (fail on high, secrets scan), installs its webhook on each repository and gates every merge request. New repositories are gated as they appear. The next step’s “Preview changes” shows what will change before you apply.'),
        h('div.actions', h('button.primary', { type: 'button', 'data-action': 'gate-all', onclick: () => openConfigure({ selection: { filter: {} }, count: total, describe: `all ${fmtNum(total)} repositories`, gateAll: true, onApplied: () => { state.all = null; state.sel.clear(); } }) }, `Gate all ${fmtNum(total)} repositories`),
          h('span.small.muted', 'or select some below and use Configure Scans.'))));
    } else if (st.new > 0) {
      onboard.append(h('div.notice.warn', { role: 'status', 'data-new-repos': st.new },
        h('strong', `${fmtNum(st.new)} new ${st.new === 1 ? 'repository is' : 'repositories are'} not gated.`), ' ',
        h('button.small', { type: 'button', 'data-action': 'show-new', onclick: () => { state.status = 'new'; statusSel.value = 'new'; filterChanged(); } }, 'Show them'), ' ',
        canWrite ? h('button.small.primary', { type: 'button', 'data-action': 'gate-new', onclick: () => openConfigure({ selection: { filter: { ...filterOf(), status: 'new' } }, count: st.new, describe: `the ${fmtNum(st.new)} new repositories`, gateAll: true, onApplied: () => { state.all = null; state.sel.clear(); } }) }, 'Gate them…') : null));
    }
    // one status per chip, so that a chip's count is what its filter shows (an exception may be gated or not); the
    // rarer statuses only when some repo has them
    const kinds = [['gated', st.gated || 0], ['exception', st.exception || 0], ['applying', st.applying || 0],
      ['ungated', st.ungated || 0], ['new', st.new || 0], ['error', st.error || 0], ['hook_disabled', st.hook_disabled || 0],
      ['unmanaged', st.unmanaged || 0], ['archived', st.archived || 0], ['pending_deletion', st.pending_deletion || 0]]
      .filter(([k, n]) => n > 0 || ['gated', 'ungated', 'new', 'error'].includes(k));
    clear(chips).append(h('span.small.muted', 'Coverage:'), ...kinds.map(([k, n]) => h('button.chip-btn', {
      type: 'button', 'data-chip': k, 'aria-pressed': String(state.status === k),
      onclick: () => { state.status = state.status === k ? '' : k; statusSel.value = state.status; filterChanged(); },
    }, badge(k), ` ${fmtNum(n)}`)), h('span.small.muted', `of ${fmtNum(total)}`));
  }

  let rows = []; // repos on the current page
  let applyTimer = null; // followApplying()
  onLeave(() => clearTimeout(applyTimer));
  let lastIndex = null; // for shift-click ranges
  let reqSeq = 0;

  function resetPaging() {
    state.cursors = [null];
    state.page = 0;
    lastIndex = null;
  }

  function filterChanged() {
    if (state.all) state.all = null; // "all matching" meant the old filter
    resetPaging();
    writeUrl();
    load();
    loadSummary();
  }

  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.q = search.value.trim(); filterChanged(); }, 250);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { clearTimeout(searchTimer); state.q = search.value.trim(); filterChanged(); }
  });
  statusSel.addEventListener('change', () => { state.status = statusSel.value; filterChanged(); });
  groupSel.addEventListener('change', () => { setGroup(groupSel.value); });
  sortSel.addEventListener('change', () => {
    [state.sort, state.order] = sortSel.value.split(':');
    resetPaging();
    writeUrl();
    load();
  });
  limitSel.addEventListener('change', () => { state.limit = Number(limitSel.value); resetPaging(); load(); });
  const toTop = () => { if (toolbar.getBoundingClientRect().top < 0) toolbar.scrollIntoView({ block: 'start' }); };
  prevBtn.addEventListener('click', () => { if (state.page > 0) { state.page--; lastIndex = null; load().then(toTop); } });
  nextBtn.addEventListener('click', () => { if (state.cursors[state.page + 1]) { state.page++; lastIndex = null; load().then(toTop); } });
  headCheck.addEventListener('change', () => {
    if (state.all) { state.all = null; }
    // a group's every repo on this one page is the group: the same as "all matching" there, so Configure Scans
    // writes the group's config, which new repos of the group inherit (ticked one by one, they were exceptions)
    const f = filterOf();
    if (headCheck.checked && f.group && !f.q && !f.status && state.page === 0 && !currentCapped && rows.length > 0
      && currentCount === rows.length) {
      state.sel.clear();
      state.all = { filter: f, count: currentCount, capped: false };
      paintSelection();
      return;
    }
    for (const r of rows) {
      if (headCheck.checked) state.sel.set(r.id, r);
      else state.sel.delete(r.id);
    }
    paintSelection();
  });

  function setGroup(g) {
    state.group = g;
    groupSel.value = g;
    for (const b of tree.querySelectorAll('button[data-group]')) b.setAttribute('aria-pressed', String(b.dataset.group === g));
    paintGroupNote();
    filterChanged();
  }

  // keyboard: arrow keys move between rows, keeping the column
  tbody.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    // the row's "⋯" button opens its menu on ArrowDown (and prevents the default): not a move to the next row
    if (e.defaultPrevented || e.target.closest('.menu, .menu-wrap')) return;
    const cell = e.target.closest('td');
    const tr = e.target.closest('tr');
    if (!cell || !tr) return;
    const col = [...tr.children].indexOf(cell);
    const next = e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
    if (!next) return;
    const target = next.children[col] && next.children[col].querySelector('input, a, button');
    if (target) { e.preventDefault(); target.focus(); }
  });

  function paintSelection() {
    const all = !!state.all;
    let onPage = 0;
    for (const tr of tbody.querySelectorAll('tr[data-id]')) {
      const id = Number(tr.dataset.id);
      const on = all || state.sel.has(id);
      if (on) onPage++;
      tr.classList.toggle('selected', on);
      tr.setAttribute('aria-selected', String(on));
      const cb = tr.querySelector('input[type="checkbox"]');
      if (cb) cb.checked = on;
    }
    headCheck.checked = rows.length > 0 && onPage === rows.length;
    headCheck.indeterminate = onPage > 0 && onPage < rows.length;
    const n = selectionCount();
    configureBtn.disabled = n === 0 || !editor;
    configureBtn.textContent = n ? `Configure Scans (${selectionText()})…` : 'Configure Scans…';
    clear(selbar);
    selbar.hidden = n === 0;
    if (!n) return;
    const total = currentCount;
    if (all) {
      selbar.append(h('strong', { 'data-selected-count': n }, `All ${selectionText()} repositories matching this filter are selected.`));
    } else {
      selbar.append(h('strong', { 'data-selected-count': n }, `${fmtNum(n)} selected.`));
      if (onPage === rows.length && total > rows.length && !(state.sel.size >= total)) {
        selbar.append(h('button.small', { type: 'button', 'data-action': 'select-all-matching', onclick: () => {
          state.all = { filter: filterOf(), count: total, capped: currentCapped };
          state.sel.clear();
          paintSelection();
        } }, `Select all ${fmtCount(total, currentCapped)} matching`));
      }
    }
    selbar.append(h('span.grow'),
      h('button.small', { type: 'button', onclick: () => { state.all = null; state.sel.clear(); paintSelection(); } }, 'Clear selection'),
      editor ? h('button.small.primary', { type: 'button', onclick: () => configureBtn.click() }, 'Configure Scans…') : null);
  }

  function onRowCheck(e, index) {
    const cb = e.currentTarget;
    const r = rows[index];
    if (state.all) {
      // leaving "all matching": keep this page's rows except the one unticked
      state.all = null;
      for (const x of rows) state.sel.set(x.id, x);
      toast('The selection is now the repos on this page.');
    }
    if (e.shiftKey && lastIndex !== null && lastIndex !== index) {
      const [a, b] = lastIndex < index ? [lastIndex, index] : [index, lastIndex];
      for (let i = a; i <= b; i++) {
        if (cb.checked) state.sel.set(rows[i].id, rows[i]);
        else state.sel.delete(rows[i].id);
      }
    } else if (cb.checked) state.sel.set(r.id, r);
    else state.sel.delete(r.id);
    lastIndex = index;
    paintSelection();
  }

  // why a repo is in error (or its hook disabled): GitLab's answer to its last apply
  function whyOf(r, status) {
    const m = r.last_apply && r.last_apply.message;
    if (!m || !['error', 'hook_disabled'].includes(status)) return null;
    return h('div.sub.why', { title: m, 'data-why': '' }, m.length > 90 ? `${m.slice(0, 88)}…` : m);
  }

  function row(r, index) {
    const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${r.path_with_namespace}`, 'data-check': r.id });
    // shift state is only on the click event, not on change
    cb.addEventListener('click', (e) => onRowCheck(e, index));
    const cfg = r.config || r.effective_config || null;
    const status = r.status || 'ungated';
    const menu = menuButton(`Actions for ${r.path_with_namespace}`, [
      ...(editor ? [
        { label: 'Edit exception…', action: () => openRepoConfig(r, reloadKeep) },
        { label: 'Reset to inherited', action: () => resetRepo(r, reloadKeep) },
        r.unmanaged
          ? { label: 'Manage again', action: () => manageAgain(r, reloadKeep) }
          : { label: 'Stop managing', action: () => stopManaging(r, reloadKeep) },
      ] : []),
      { label: 'History', action: () => openHistory(r) },
    ]);
    return h('tr', { 'data-id': r.id, 'data-path': r.path_with_namespace },
      h('td.check', cb),
      h('td', h('a.path', { href: httpUrl(r.web_url) || '#', target: '_blank', rel: 'noopener', title: `Open ${r.path_with_namespace} on GitLab`, 'aria-label': r.path_with_namespace }, r.path || r.name),
        h('div.sub', r.namespace_full_path || '', r.default_branch ? ` · ${r.default_branch}` : ' · no default branch', r.archived && status !== 'archived' ? ' · archived' : '')),
      h('td', { 'data-cell': 'status' }, badge(status), whyOf(r, status)),
      h('td.col-config', { 'data-cell': 'config' }, r.unmanaged
        ? h('span.muted', { title: 'mrgate removed its webhook and restored the merge setting it had changed. "Manage again" in the row menu gates it by its config again.' }, 'not managed by mrgate')
        : cfg ? configSummary(cfg, r.config_sources || r.config_source, { exception: r.exception }) : h('span.muted', { title: 'this version of the API does not report the effective config per repo' }, '—')),
      h('td.col-activity.nowrap', time(r.last_activity_at)),
      h('td.num', menu));
  }

  let currentCount = 0, currentCapped = false;
  // background: a refresh nobody asked for (followApplying): it never draws the rows over a menu or dialog the user
  // opened while it was on its way (a phone's row menu vanished under the finger), it tries again later instead
  async function load({ background = false } = {}) {
    const seq = ++reqSeq;
    const params = { ...filterOf(), sort: state.sort, order: state.order, limit: state.limit, cursor: state.cursors[state.page] };
    thPath.setAttribute('aria-sort', state.sort === 'path' ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
    thAct.setAttribute('aria-sort', state.sort === 'activity' ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
    thPath.querySelector('[aria-hidden]').textContent = state.sort === 'path' ? (state.order === 'asc' ? '▲' : '▼') : '';
    thAct.querySelector('[aria-hidden]').textContent = state.sort === 'activity' ? (state.order === 'asc' ? '▲' : '▼') : '';
    table.setAttribute('aria-busy', 'true');
    let res;
    try {
      res = await get(`/api/repos${qs(params)}`);
    } catch (e) {
      if (!alive || seq !== reqSeq) return;
      table.removeAttribute('aria-busy');
      clear(msg).append(errorNotice(e));
      // a filter the server refused lists nothing: no rows of the filter before, no page to turn to (a background
      // refresh that failed keeps what is shown)
      if (!background && e instanceof ApiError && e.status >= 400 && e.status < 500) {
        refused = true; // the refusal says what is wrong with the filter: one message, not two
        paintGroupNote();
        rows = [];
        currentCount = 0;
        clear(tbody).append(h('tr', h('td.empty', { colspan: 6 }, 'Nothing listed: the filter was refused (see above).')));
        countEl.textContent = 'No repositories listed';
        prevBtn.disabled = nextBtn.disabled = true;
        paintSelection();
      }
      return;
    }
    if (!alive || seq !== reqSeq) return;
    if (background && document.querySelector('[role="menu"], [role="dialog"]')) {
      table.removeAttribute('aria-busy');
      followApplying();
      return;
    }
    clear(msg);
    if (refused) { refused = false; paintGroupNote(); }
    rows = res.items || [];
    currentCount = res.count || 0;
    currentCapped = !!res.count_capped;
    state.cursors[state.page + 1] = res.next_cursor || null;
    state.cursors.length = state.page + 2;
    const frag = document.createDocumentFragment();
    rows.forEach((r, i) => frag.append(row(r, i)));
    // the rows are drawn anew: the focus goes back to the same control of the same row
    const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
    clear(tbody).append(frag);
    if (focused) tbody.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
    if (!rows.length) {
      tbody.append(h('tr', h('td.empty', { colspan: 6 }, currentCount === 0 && !state.q && !state.group && !state.status
        ? ['No repositories yet. ', h('a', { href: '#/connection' }, 'Connect a group'), ' and sync it.']
        : 'No repositories match this filter.')));
    }
    table.removeAttribute('aria-busy');
    const from = rows.length ? state.page * state.limit + 1 : 0;
    countEl.textContent = `${fmtNum(from)}–${fmtNum(state.page * state.limit + rows.length)} of ${fmtCount(currentCount, currentCapped)} repositories`;
    prevBtn.disabled = state.page === 0;
    nextBtn.disabled = !res.next_cursor;
    paintSelection();
    // for the scale test: when the first rows were on screen, in ms since the navigation started
    if (window.__mrgateFirstRowsAt === undefined) window.__mrgateFirstRowsAt = performance.now();
    followApplying();
  }

  // Rows still applying are read again every 2 s until they settle; not while a menu or dialog is open (then a
  // little later).
  function followApplying() {
    clearTimeout(applyTimer);
    if (!rows.some((r) => r.status === 'applying')) return;
    applyTimer = setTimeout(() => {
      if (!alive) return;
      if (document.querySelector('[role="menu"], [role="dialog"]')) {
        followApplying();
      } else {
        load({ background: true });
        loadGroups();
        loadSummary(true);
      }
    }, 2000);
  }

  // after a row's action (exception, reset, stop managing, manage again): the rows, and the chips and the group
  // tree's counts with them (a walk saw "gated 23" beside 22 gated rows until a reload)
  function reloadKeep() {
    load();
    loadGroups();
    loadSummary(true);
  }

  configureBtn.addEventListener('click', () => {
    const n = selectionCount();
    if (!n) return;
    const selection = state.all ? { filter: state.all.filter } : { ids: [...state.sel.keys()] };
    const describe = state.all ? `all ${selectionText()} repositories matching the filter` : `${fmtNum(n)} selected ${n === 1 ? 'repository' : 'repositories'}`;
    openConfigure({ selection, count: n, describe, rows: state.all ? null : [...state.sel.values()], onApplied: () => { state.all = null; state.sel.clear(); } });
  });

  // sync from this page
  let syncTimer = null;
  onLeave(() => clearTimeout(syncTimer));
  function showRun(run) {
    if (!run) { syncLine.textContent = 'Never synced.'; return; }
    if (run.state === 'running') syncLine.textContent = `Sync running: ${fmtNum(run.repos_seen)} repos, ${fmtNum(run.pages)} pages read…`;
    else if (run.state === 'failed') syncLine.textContent = `Last sync failed: ${run.error || 'unknown error'}`;
    else {
      // what followed the listing (a walk read only the listing here): repaired and newly gated, or listed only
      const sm = run.summary;
      const after = !sm ? ''
        : sm.listed_only ? ' Listed only (mrgate sync): gated repositories were not re-checked.'
          : typeof sm.checked === 'number' ? ` ${fmtNum(sm.repaired || 0)} repaired, ${fmtNum(sm.newly_gated || 0)} newly gated${sm.failed ? `, ${fmtNum(sm.failed)} failed` : ''}.` : '';
      syncLine.replaceChildren('Last sync ', time(run.finished_at), `: ${fmtNum(run.repos_seen)} repos, ${fmtNum(run.new_repos)} listed for the first time.${after}`);
    }
    syncBtn.disabled = run.state === 'running' || !editor;
  }
  async function pollSync(id, follow) {
    let run = null;
    try { run = await get(`/api/sync${id ? `?id=${id}` : ''}`); } catch (e) { if (!(e instanceof ApiError && e.status === 404)) return; }
    if (!alive) return;
    showRun(run);
    if (run && run.state === 'running') syncTimer = setTimeout(() => pollSync(run.id, true), 500);
    else if (follow) { resetPaging(); load(); loadGroups(); loadSummary(true); }
  }
  syncBtn.addEventListener('click', async () => {
    syncBtn.disabled = true;
    try {
      const run = await post('/api/sync');
      showRun(run);
      pollSync(run.id, true);
    } catch (e) {
      syncBtn.disabled = false;
      if (e instanceof ApiError && e.code === 'sync_running') pollSync(null, true);
      else toast(e.message, 'error');
    }
  });

  async function loadGroups() {
    let groups;
    try {
      groups = await get('/api/groups');
    } catch {
      return;
    }
    if (!alive) return;
    const list = Array.isArray(groups) ? groups : groups.items || [];
    knownGroups = new Set(list.map((g) => g.full_path.toLowerCase()));
    paintGroupNote();
    // a group typed or linked in another case is that group (as GitLab and the API match paths): show it as GitLab
    // spells it, in the tree, the URL and the Configure dialog ("stored as the config of group DEMO/TEAM01" was
    // stored as demo/team01)
    const spelt = state.group && !list.some((g) => g.full_path === state.group) && list.find((g) => g.full_path.toLowerCase() === state.group.toLowerCase());
    if (spelt) { setGroup(spelt.full_path); writeUrl(); }
    const byParent = new Map();
    const ids = new Set(list.map((g) => g.id));
    for (const g of list) {
      const p = g.parent_id && ids.has(g.parent_id) ? g.parent_id : null;
      if (!byParent.has(p)) byParent.set(p, []);
      byParent.get(p).push(g);
    }
    const total = (byParent.get(null) || []).reduce((s, g) => s + (g.repos || 0), 0);
    const totalGated = (byParent.get(null) || []).reduce((s, g) => s + (g.gated || 0), 0);
    const btn = (g, label, count, gated) => h('button', { type: 'button', 'data-group': g, 'aria-pressed': String(state.group === g), onclick: () => setGroup(g) },
      h('span.name', visible(label)), h('span.count', { 'aria-label': `${gated} of ${count} repositories gated`, 'data-gated': gated, title: `${gated} of ${count} gated` }, `${fmtNum(gated)}/${fmtNum(count)}`));
    const build = (parent, depth) => {
      const kids = byParent.get(parent) || [];
      if (!kids.length) return null;
      return h('ul', kids.map((g) => h('li', btn(g.full_path, depth ? g.name : g.full_path, g.repos || 0, g.gated || 0), build(g.id, depth + 1))));
    };
    clear(tree).append(h('li', btn('', 'All groups', total, totalGated)));
    const top = build(null, 0);
    if (top) tree.append(...top.children);
    clear(groupSel).append(h('option', { value: '' }, 'All groups'));
    const walk = (parent, depth) => {
      for (const g of byParent.get(parent) || []) {
        groupSel.append(h('option', { value: g.full_path, selected: g.full_path === state.group }, `${'\u00a0\u00a0'.repeat(depth)}${visible(depth ? g.name : g.full_path)} (${g.repos || 0})`));
        walk(g.id, depth + 1);
      }
    };
    walk(null, 0);
  }

  await load();
  loadGroups();
  loadSummary();
  pollSync(null, false);
}
