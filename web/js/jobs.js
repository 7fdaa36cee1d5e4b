// #/jobs and #/jobs/:id: the job list; one job's live progress bar, counts, per-repo results and "Retry failed".
import { get, post, qs, getOptional, ApiError, canEdit, EDITOR_ONLY } from './api.js';
import { h, clear, badge, fmtNum, fmtDate, time, errorNotice, unavailable, loading, pageHead, onLeave, toast, select } from './ui.js';

export async function render(main, route) {
  const m = /^run-(\d+)$/.exec(route.args[0] || '');
  if (m) return renderRun(main, m[1], Number(route.query.get('repos')) || 0);
  if (route.args[0]) return renderJob(main, route.args[0]);
  return renderList(main);
}

function pct(j) {
  if (typeof j.percent === 'number') return Math.max(0, Math.min(100, Math.round(j.percent)));
  return j.total ? Math.floor(((j.done || 0) * 100) / j.total) : j.state === 'done' ? 100 : 0;
}

async function renderList(main) {
  main.append(pageHead('Jobs', 'Every bulk change mrgate applied on GitLab, newest first.'));
  const box = h('div', loading());
  main.append(box);
  const { data, available } = await getOptional('/api/jobs');
  clear(box);
  if (!available) { box.append(unavailable('The job list')); return; }
  const items = Array.isArray(data) ? data : data.items || data.jobs || [];
  if (!items.length) { box.append(h('p.empty', 'No jobs yet. Select repositories and use Configure Scans to start one.')); return; }
  box.append(h('div.table-wrap', h('table.data', { 'aria-label': 'Jobs' },
    h('thead', h('tr', ['Job', 'Kind', 'State', 'Progress', 'Changed', 'Failed', 'Started', 'By'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', items.map((j) => h('tr', { 'data-job': j.id },
      h('td', h('a', { href: `#/jobs/${j.id}` }, `#${j.id}`)),
      h('td', j.kind || j.title || '—'),
      h('td', badge(j.failed ? 'failed' : j.state)),
      h('td.nowrap', `${pct(j)}% (${fmtNum(j.done)}/${fmtNum(j.total)})`),
      h('td.num', fmtNum(j.changed)),
      h('td.num', fmtNum(j.failed)),
      h('td.nowrap', time(j.created_at || j.started_at)),
      h('td', j.created_by || j.actor || '—')))))));
}

async function renderJob(main, id) {
  main.append(pageHead(`Job #${id}`, null, h('a.button', { href: '#/jobs' }, 'All jobs')));
  const bar = h('div.bar', { style: 'width:0%' });
  const progress = h('div.progress', { role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-label': `Progress of job ${id}`, 'data-progress': '' }, bar);
  const label = h('p', { 'aria-live': 'polite', 'data-progress-text': '' });
  const stats = h('div.stats');
  const retryBtn = h('button', { type: 'button', 'data-action': 'retry', hidden: true, disabled: !canEdit() || undefined, title: canEdit() ? undefined : EDITOR_ONLY }, 'Retry failed');
  const cancelBtn = h('button.danger', { type: 'button', 'data-action': 'cancel', hidden: true, disabled: !canEdit() || undefined, title: canEdit() ? undefined : EDITOR_ONLY }, 'Cancel job');
  const filterSel = select([['', 'All results'], ['failed', 'Failed'], ['changed', 'Changed'], ['unchanged', 'Unchanged'], ['skipped', 'Skipped'], ['pending', 'Pending']], '', { 'aria-label': 'Show results', id: 'job-filter' });
  const itemsBox = h('div');
  const head = h('section.panel', { 'aria-labelledby': 'job-title', 'data-panel': 'job' },
    h('div.page-head', h('div.grow', h('h2#job-title', 'Progress'), h('p.muted.small', { 'data-job-meta': '' })), h('div.actions', cancelBtn, retryBtn)),
    progress, label, stats);
  const msg = h('div');
  main.append(msg, head, h('section', { 'aria-labelledby': 'items-title' },
    h('div.page-head', h('h2#items-title.grow', 'Per-repository results'), h('div.actions', h('label.small.muted', { for: 'job-filter' }, 'Show'), filterSel)), itemsBox));

  let alive = true;
  let timer = null;
  onLeave(() => { alive = false; clearTimeout(timer); });
  let lastItemsKey = '';

  // every result page, following items_next_cursor (once the job has finished)
  async function allItems(j) {
    const items = [...(j.items || [])];
    let cursor = j.items_next_cursor;
    while (cursor && alive) {
      const page = await get(`/api/jobs/${encodeURIComponent(id)}${qs({ result: filterSel.value || undefined, items_limit: 1000, items_cursor: cursor })}`);
      items.push(...(page.items || []));
      cursor = page.items_next_cursor;
    }
    return items;
  }

  async function tick() {
    let j;
    try {
      j = await get(`/api/jobs/${encodeURIComponent(id)}${qs({ result: filterSel.value || undefined })}`);
      if (['done', 'canceled', 'failed'].includes(j.state) && j.items_next_cursor) {
        j.items = await allItems(j);
        j.items_next_cursor = null;
      }
    } catch (e) {
      if (!alive) return;
      clear(msg).append(e instanceof ApiError && e.unavailable ? unavailable('Job progress') : errorNotice(e));
      if (!(e instanceof ApiError && (e.unavailable || e.status === 404))) timer = setTimeout(tick, 2000);
      return;
    }
    if (!alive) return;
    clear(msg);
    const p = pct(j);
    const finished = ['done', 'canceled', 'failed'].includes(j.state);
    bar.style.width = `${p}%`;
    progress.setAttribute('aria-valuenow', String(p));
    progress.setAttribute('aria-valuetext', `${p}%`);
    const canceled = j.state === 'canceled';
    progress.classList.toggle('done', finished && !j.failed && !canceled);
    progress.classList.toggle('failed', finished && !!j.failed);
    progress.classList.toggle('canceled', canceled && !j.failed);
    // a canceled job's items that were being changed on GitLab still finish: follow them
    const settling = canceled && j.done < j.total;
    const ended = canceled ? `, ${fmtNum(j.skipped)} skipped${j.failed ? `, ${fmtNum(j.failed)} failed` : ''}.`
      : j.failed ? `, ${fmtNum(j.failed)} failed.` : '.';
    label.replaceChildren(badge(j.failed && finished ? 'failed' : j.state), ' ', h('strong', `${p}%`), ` — ${fmtNum(j.done)} of ${fmtNum(j.total)} repositories done`,
      // "running" counts the items workers hold: those being changed and those claimed next, which the cancel skips
      settling ? `; the ${fmtNum(j.total - j.done)} held by workers are finished or skipped…` : finished ? ended : '…');
    const preview = j.kind === 'dryrun';
    head.querySelector('[data-job-meta]').textContent = [preview ? 'preview' : j.kind, j.created_by ? `by ${j.created_by}` : null, j.created_at ? `started ${fmtDate(j.created_at)}` : null,
      j.finished_at ? `${canceled ? 'canceled' : 'finished'} ${fmtDate(j.finished_at)}` : null].filter(Boolean).join(' · ');
    // a preview's job (a walk read "208 changed" for one) says what an apply would do, and that it did nothing
    head.querySelector('#job-title').textContent = preview ? 'Preview (dry run): nothing was changed on GitLab' : 'Progress';
    filterSel.querySelector('option[value="changed"]').textContent = preview ? 'Would change' : 'Changed';
    filterSel.querySelector('option[value="unchanged"]').textContent = preview ? 'Would stay as is' : 'Unchanged';
    clear(stats).append(...[['total', 'total'], ['done', 'done'], ['changed', preview ? 'would change' : 'changed'], ['unchanged', preview ? 'would stay as is' : 'unchanged'], ['skipped', 'skipped'], ['failed', 'failed']]
      .filter(([k]) => j[k] !== undefined).map(([k, l]) => h('div.stat', { 'data-stat': k }, h('div.v', fmtNum(j[k])), h('div.k', l))));
    retryBtn.hidden = !(finished && j.failed > 0 && j.kind !== 'hookmode'); // a switch is started again from Settings
    // a webhook-mode switch runs to its end (no repo is ever left without a hook); an admin switches back from Settings
    cancelBtn.hidden = finished || j.kind === 'hookmode';
    kind = j.kind;
    renderItems(j);
    if (!finished || settling) timer = setTimeout(tick, 500);
  }

  function renderItems(j) {
    const items = j.items || [];
    // the job's state too: an empty list reads differently once the job has finished
    const key = JSON.stringify([j.state, items.map((it) => [it.id, it.state, it.result, it.message])]);
    if (key === lastItemsKey) return;
    lastItemsKey = key;
    if (!items.length) {
      // what the empty list means: nothing recorded yet, or nothing of the kind shown (after "Retry failed": none failed)
      const finished = ['done', 'canceled', 'failed'].includes(j.state);
      const shown = filterSel.value;
      const none = j.kind === 'dryrun' && { changed: 'would change', unchanged: 'would stay as is' }[shown]
        || { failed: 'failed', changed: 'was changed', unchanged: 'was unchanged', skipped: 'was skipped', pending: 'is pending' }[shown];
      const text = !finished ? (shown ? `No ${shown} results yet.` : 'No results yet.')
        : none ? `No repository ${none} in this job.` : 'This job has no per-repository results.';
      clear(itemsBox).append(h('p.empty', { 'data-empty-items': '' }, text));
      return;
    }
    clear(itemsBox).append(h('div.table-wrap', h('table.data', { 'aria-label': 'Per-repository results', 'data-table': 'job-items' },
      h('thead', h('tr', ['Repository', 'Result', 'GitLab says', 'Attempts', 'Finished'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', items.map((it) => h('tr', { 'data-item': it.id, 'data-result': it.result || it.state },
        h('td', it.path_with_namespace || it.repo_path || (it.repo_id ? `#${it.repo_id}` : it.kind)),
        h('td', badge(it.result || it.state, j.kind === 'dryrun' ? { changed: 'would change', unchanged: 'would stay as is' }[it.result] : undefined)),
        h('td.small', it.message || (it.details && it.details.message) || ''),
        h('td.num', { 'data-attempts': it.attempts }, fmtNum(it.attempts)),
        h('td.nowrap', it.finished_at ? time(it.finished_at) : '—')))))));
    if (j.items_next_cursor) itemsBox.append(h('p.small.muted', { 'data-items-more': '' }, `The first ${fmtNum(items.length)} results are shown while the job runs; all of them once it has finished.`));
  }

  let kind = '';
  cancelBtn.addEventListener('click', async () => {
    const text = kind === 'dryrun' ? 'Cancel this preview?\n\nIt changes nothing on GitLab.'
      : 'Cancel this job?\n\nThe repositories not started yet are skipped; those being changed on GitLab right now finish. '
        + 'What was already changed on GitLab stays changed.\n\n'
        + 'The settings you saved stay saved: the next sync (scheduled, or "Sync now") applies them to the skipped '
        + 'repositories too. To keep those as they are, change the settings back with Configure Scans.';
    if (!confirm(text)) return;
    cancelBtn.disabled = true;
    try {
      await post(`/api/jobs/${encodeURIComponent(id)}/cancel`, {});
      toast(`Job #${id} was canceled.`);
    } catch (e) {
      toast(e.status === 409 ? 'The job had already finished.' : e.message, 'error');
    } finally {
      cancelBtn.disabled = !canEdit();
      clearTimeout(timer);
      tick();
    }
  });
  filterSel.addEventListener('change', () => { lastItemsKey = ''; clearTimeout(timer); tick(); });
  retryBtn.addEventListener('click', async () => {
    retryBtn.disabled = true;
    try {
      await post(`/api/jobs/${encodeURIComponent(id)}/retry`);
      toast('The failed repositories are being retried.');
      clearTimeout(timer);
      tick();
    } catch (e) {
      toast(e.unavailable ? 'Retry is not available in this version of mrgate.' : e.message, 'error');
    } finally {
      retryBtn.disabled = false;
    }
  });
  await tick();
}

// An apply run of a version without the job engine (POST /api/configure answered {"apply": {run, repos}}): its
// progress is read from the repositories' states: those still "applying", and those whose last apply failed.
async function renderRun(main, run, repos) {
  main.append(pageHead(`Applying on GitLab (run ${run})`, `${fmtNum(repos)} repositories to change.`, h('a.button', { href: '#/repos' }, 'Repositories')));
  const bar = h('div.bar', { style: 'width:0%' });
  const progress = h('div.progress', { role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-label': 'Apply progress', 'data-progress': '' }, bar);
  const label = h('p', { 'aria-live': 'polite', 'data-progress-text': '' });
  const stats = h('div.stats');
  const itemsBox = h('div');
  main.append(h('section.panel', { 'aria-labelledby': 'run-title', 'data-panel': 'job' }, h('h2#run-title', 'Progress'), progress, label, stats),
    h('section', { 'aria-labelledby': 'fail-title' }, h('h2#fail-title', 'Repositories whose apply failed'), itemsBox));
  let alive = true;
  let timer = null;
  onLeave(() => { alive = false; clearTimeout(timer); });
  async function tick() {
    let applying, failed;
    try {
      [applying, failed] = await Promise.all([get('/api/repos?status=applying&limit=1'), get('/api/repos?status=error&limit=200')]);
    } catch (e) {
      if (alive) itemsBox.replaceChildren(errorNotice(e));
      return;
    }
    if (!alive) return;
    const left = Math.min(applying.count, repos);
    const done = repos - left;
    const p = repos ? Math.floor((done * 100) / repos) : 100;
    const finished = left === 0;
    bar.style.width = `${p}%`;
    progress.setAttribute('aria-valuenow', String(p));
    progress.setAttribute('aria-valuetext', `${p}%`);
    progress.classList.toggle('done', finished && !failed.count);
    progress.classList.toggle('failed', finished && failed.count > 0);
    label.replaceChildren(badge(finished ? (failed.count ? 'failed' : 'done') : 'running'), ' ', h('strong', `${p}%`), ` — ${fmtNum(done)} of ${fmtNum(repos)} repositories done${finished ? '.' : '…'}`);
    clear(stats).append(...[['total', repos], ['done', done], ['applying', left], ['failed', failed.count]].map(([k, v]) => h('div.stat', { 'data-stat': k }, h('div.v', fmtNum(v)), h('div.k', k))));
    const items = failed.items || [];
    clear(itemsBox).append(items.length ? h('div.table-wrap', h('table.data', { 'aria-label': 'Failed repositories', 'data-table': 'job-items' },
      h('thead', h('tr', ['Repository', 'Result', 'GitLab says', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', items.map((r) => h('tr', { 'data-item': r.id, 'data-result': 'error' },
        h('td', r.path_with_namespace), h('td', badge('error')),
        h('td.small', r.last_apply && r.last_apply.message ? r.last_apply.message : ''),
        h('td.nowrap', r.last_apply ? time(r.last_apply.at) : '—')))))) : h('p.empty', finished ? 'No repository failed.' : 'None so far.'));
    if (!finished) timer = setTimeout(tick, 500);
  }
  await tick();
}
