// The discovery run ("sync") panel: last run's summary, "Sync now", live progress while it runs.
import { get, post, ApiError, canEdit, EDITOR_ONLY } from './api.js';
import { h, clear, fmtNum, time, errorNotice, onLeave, badge } from './ui.js';

// What followed a finished sync (its summary): the gated repos re-checked, drift repaired (which repos), new repos
// gated, failures, and the job that did it; null before the summary is there.
export function syncFollowUp(summary) {
  if (!summary) return null;
  if (summary.listed_only) {
    return h('p.small', { 'data-sync-follow': '' },
      'Listed only (mrgate sync on the command line): gated repositories were not re-checked and new ones not gated; ',
      'Sync now, or the next scheduled resync, does that.');
  }
  const paths = summary.repaired_repos || [];
  const named = paths.slice(0, 5).join(', ') + (paths.length > 5 ? ` and ${fmtNum(paths.length - 5)} more` : '');
  const failed = summary.failed || 0;
  return h('p.small', { 'data-sync-follow': '' },
    `Then ${fmtNum(summary.checked || 0)} gated or new repositories checked: `,
    h('strong', `${fmtNum(summary.repaired || 0)} repaired`), named ? ` (${named})` : '',
    summary.applied ? `, ${fmtNum(summary.applied)} pending ${summary.applied === 1 ? 'change' : 'changes'} applied` : '',
    `, ${fmtNum(summary.newly_gated || 0)} newly gated`,
    failed ? h('strong', `, ${fmtNum(failed)} failed`) : ', none failed',
    summary.job_id ? ['. ', h('a', { href: `#/jobs/${summary.job_id}` }, `Job #${summary.job_id}`)] : '', '.');
}

// start: begin a sync at once (the group was just connected), as "Sync now" would.
export function syncPanel({ onDone, compact, start } = {}) {
  const body = h('div', { 'aria-live': 'polite' });
  const note = h('div', { 'aria-live': 'polite' }); // says why a sync asked for waits (not cleared by show())
  const editor = canEdit();
  const btn = h('button.primary', { type: 'button', 'data-action': 'sync', disabled: !editor || undefined, title: editor ? undefined : EDITOR_ONLY }, 'Sync now');
  const panel = h('section.panel', { 'aria-labelledby': 'sync-title', 'data-panel': 'sync' },
    h('div.page-head', h('div.grow', h('h2#sync-title', 'Repository sync'),
      h('p.muted.small', 'Lists every project of the group and its subgroups again; new repos inherit the default and group configs.')), btn),
    note, body);
  let timer = null;
  let stopped = false;
  // start asked while another sync ran (the previous group's): start once that one has ended
  let startAfter = false;
  onLeave(() => { stopped = true; clearTimeout(timer); });

  // The listing is done and what follows from it (gated repos re-checked, new ones gated: an apply job) still runs
  // until the run has its summary; a new sync is refused until then. Not after 10 minutes: its instance stopped.
  const following = (run) => run && run.state === 'done' && !run.summary && run.finished_at
    && Date.now() - new Date(run.finished_at).getTime() < 600000;
  const busy = (run) => run && (run.state === 'running' || following(run));

  function show(run) {
    clear(body);
    if (!run) {
      body.append(h('p.muted', 'No sync has run yet.'));
      return;
    }
    const running = run.state === 'running';
    btn.disabled = busy(run) || !editor;
    body.append(h('p', badge(run.state === 'done' ? 'done' : run.state), ' ',
      running ? h('span', { 'data-sync-state': 'running' }, 'Sync running… ')
        : following(run) ? h('span', { 'data-sync-state': 'following' }, 'Listed; applying what it found (re-checking gated repositories, gating new ones)… listing finished ')
          : h('span', { 'data-sync-state': run.state }, run.state === 'done' ? 'Last sync finished ' : 'Last sync failed '),
      run.finished_at ? time(run.finished_at) : run.started_at ? ['started ', time(run.started_at)] : null,
      typeof run.seconds === 'number' && !running ? h('span.muted', ` in ${run.seconds.toFixed(1)} s`) : null));
    if (run.error) body.append(h('div.notice.error', { role: 'alert' }, run.error));
    const stats = [['repos_seen', 'repos seen'], ['groups_seen', 'groups'], ['pages', 'pages read'], ['new_repos', 'first seen'],
      ['updated', 'updated'], ['archived', 'archived'], ['removed', 'removed'], ['skipped', 'skipped']];
    if (!compact || running) {
      body.append(h('div.stats', stats.filter(([k]) => run[k] !== undefined).map(([k, label]) =>
        h('div.stat', { 'data-stat': k }, h('div.v', fmtNum(run[k])), h('div.k', label)))));
    } else {
      body.append(h('p.small.muted', `${fmtNum(run.repos_seen)} repos in ${fmtNum(run.groups_seen)} groups; ${fmtNum(run.new_repos)} first seen, ${fmtNum(run.removed)} removed, ${fmtNum(run.archived)} archived.`));
    }
    const follow = syncFollowUp(run.summary);
    if (follow) body.append(follow);
  }

  async function poll(id) {
    if (stopped) return;
    let run;
    try {
      run = await get(`/api/sync${id ? `?id=${id}` : ''}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) { show(null); return; }
      clear(body).append(errorNotice(e));
      return;
    }
    if (stopped) return;
    show(run);
    if (busy(run)) timer = setTimeout(() => poll(run.id), run.state === 'running' ? 400 : 1000);
    else if (startAfter) { startAfter = false; note.replaceChildren(); btn.click(); }
    else if (id && onDone) onDone(run);
  }

  let startedOnce = false;
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    if (!startAfter) note.replaceChildren();
    try {
      const run = await post('/api/sync');
      startedOnce = true;
      show(run);
      poll(run.id);
    } catch (e) {
      btn.disabled = false;
      if (e instanceof ApiError && e.code === 'sync_running') {
        if (start && !startedOnce) {
          startAfter = true;
          note.replaceChildren(h('div.notice.info', { 'data-sync-queued': '' }, 'A sync started before this change is still running; the new group is listed as soon as it ends.'));
        } else {
          note.replaceChildren(h('div.notice.info', { 'data-sync-refused': '' }, e.message));
        }
        poll();
        return;
      }
      clear(body).append(errorNotice(e));
    }
  });
  if (start && editor) btn.click();
  else poll();
  return panel;
}
