// #/settings: resync interval, auto-gate new repos, fail-open/closed, hook mode; the last and next resync.
import { get, put, getOptional, hasRole, qs } from './api.js';
import { syncFollowUp } from './sync.js';
import { h, clear, field, select, notice, errorNotice, unavailable, loading, pageHead, toast, fmtDate, time, fmtNum, badge } from './ui.js';

const INTERVALS = [[300, 'every 5 minutes'], [900, 'every 15 minutes'], [1800, 'every 30 minutes'], [3600, 'every hour'], [21600, 'every 6 hours'], [86400, 'every day']];

export async function render(main) {
  main.append(pageHead('Settings', 'How mrgate resyncs the group and what a gate does when it cannot finish.'));
  const box = h('div', loading());
  main.append(box);
  let res;
  try {
    res = await getOptional('/api/settings');
  } catch (e) {
    clear(box).append(errorNotice(e));
    return;
  }
  clear(box);
  if (!res.available) { box.append(unavailable('Settings')); return; }
  show(box, res.data);
}

// The switch being followed ({job, to}): a save of other settings while it runs renders the page again, which
// follows it on (a walk saved the fail mode during a switch and the page never showed its outcome).
let following = null;

// A webhook mode switch is a job (PUT answers 202 with hook_mode_job): follow it in `el`, then show the settings
// again with the outcome (the mode changes only when the job succeeded; a refusal says why).
function followSwitch(box, el, job, to) {
  following = { job, to };
  const bar = h('progress', { max: Math.max(1, job.total || 1), value: job.done || 0, 'aria-label': 'Webhook mode switch progress' });
  const txt = h('span.small', to === 'project'
    ? 'Switching the webhook mode: putting the project webhooks back, then removing the group webhook…'
    : 'Switching the webhook mode: checking GitLab, proving the group webhook delivers…');
  clear(el).append(h('div.preview-progress', { role: 'status', 'data-hook-mode-job': String(job.id) }, bar, ' ', txt, ' ',
    h('a.small', { href: `#/jobs/${encodeURIComponent(job.id)}` }, `job ${job.id}`)));
  const tick = async () => {
    if (!el.isConnected) return;
    let j, set;
    try {
      j = await get(`/api/jobs/${encodeURIComponent(job.id)}${qs({ items_limit: 1 })}`);
      if (!j.finished) {
        bar.max = Math.max(1, j.total);
        bar.value = j.done;
        setTimeout(tick, 500);
        return;
      }
      set = await get('/api/settings');
    } catch (e) {
      if (el.isConnected) clear(el).append(errorNotice(e));
      return;
    }
    if (!el.isConnected) return;
    following = null;
    const item = (j.items || [])[0] || {};
    const outcome = j.succeeded
      ? notice('ok', `Webhook mode ${item.message || 'switched'}.`)
      : notice('error', h('strong', 'The webhook mode was not switched'), `: ${item.message || 'the job failed'}`);
    outcome.dataset.hookModeOutcome = j.succeeded ? 'switched' : 'refused';
    show(box, set, outcome);
  };
  setTimeout(tick, 300);
}

function show(box, s, outcome) {
  clear(box);
  const opts = INTERVALS.some(([v]) => v === s.resync_interval) ? INTERVALS : [...INTERVALS, [s.resync_interval, `every ${fmtNum(s.resync_interval)} seconds`]];
  const interval = select(opts, s.resync_interval, { name: 'resync_interval' });
  const auto = h('input', { type: 'checkbox', name: 'auto_gate_new_repos', checked: !!s.auto_gate_new_repos });
  const failMode = select([['closed', 'Fail closed: a gate that cannot finish fails the merge request'], ['open', 'Fail open: a gate that cannot finish passes, saying "timed out"']], s.fail_mode, { name: 'fail_mode' });
  const hookMode = select([['project', 'One webhook per project'], ['group', 'One group hook (Premium)']], s.hook_mode, { name: 'hook_mode' });
  const msg = h('div', { 'aria-live': 'assertive' }, outcome || null);
  const save = h('button.primary', { type: 'submit', disabled: !hasRole('admin') || undefined }, 'Save settings');
  const form = h('form.panel.narrow', { 'aria-labelledby': 'settings-title', 'data-panel': 'settings' },
    h('h2#settings-title', 'Settings'), msg,
    hasRole('admin') ? null : notice('info', 'Only an admin can change the settings.'),
    field('Resync the group', interval, 'lists the group again to find new, archived and removed repositories and repair drift'),
    h('div.field', h('label.option', auto, 'Auto-gate new repositories'), h('span.hint', 'new repositories that inherit a gated config are applied at once; otherwise they show as "new"')),
    field('When a gate cannot finish in time', failMode),
    field('Webhook mode', hookMode, 'one group webhook replaces the per-project hooks and gates new projects as soon as GitLab creates them; it needs GitLab Premium or Ultimate and a token with Owner on the group (otherwise the switch is refused)'),
    h('div', { 'data-hook-mode-status': '', 'aria-live': 'polite' }),
    h('div.actions', save));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    try {
      // only what the user changed on this page: a field sent as it was loaded would undo another admin's change
      // made since (a walk's fail-mode save put back two fields another session had just set); the webhook mode
      // sent during a switch is refused whichever it is (409)
      const body = {};
      if (Number(interval.value) !== s.resync_interval) body.resync_interval = Number(interval.value);
      if (auto.checked !== !!s.auto_gate_new_repos) body.auto_gate_new_repos = auto.checked;
      if (failMode.value !== s.fail_mode) body.fail_mode = failMode.value;
      if (hookMode.value !== s.hook_mode) body.hook_mode = hookMode.value;
      if (!Object.keys(body).length) {
        toast('Nothing changed.');
        save.disabled = false;
        return;
      }
      const res = await put('/api/settings', body);
      if (res && res.hook_mode_job) {
        toast('The settings were saved; the webhook mode is being switched.');
        following = { job: res.hook_mode_job, to: body.hook_mode };
        show(box, res);
        return;
      }
      toast('The settings were saved.');
      show(box, { ...s, ...(res || {}) });
    } catch (err) {
      clear(msg).append(errorNotice(err));
      save.disabled = false;
    }
  });

  const sch = s.scheduler || {};
  const last = s.last_resync;
  const resync = h('section.panel.narrow', { 'aria-labelledby': 'resync-title', 'data-panel': 'resync' },
    h('h2#resync-title', 'Resync'),
    h('dl.kv',
      h('dt', 'Last resync'), h('dd', { 'data-last-resync': '' }, last ? [badge(last.state), ' ', last.finished_at ? time(last.finished_at) : time(last.started_at), ` (${last.trigger || 'unknown trigger'})`] : 'never'),
      h('dt', 'Summary'), h('dd', last ? [`${fmtNum(last.repos_seen)} repos in ${fmtNum(last.groups_seen)} groups; ${fmtNum(last.new_repos)} listed for the first time, ${fmtNum(last.updated)} updated, ${fmtNum(last.archived)} archived, ${fmtNum(last.removed)} removed${last.error ? `; error: ${last.error}` : ''}`, syncFollowUp(last.summary)] : '—'),
      h('dt', 'Next resync'), h('dd', { 'data-next-resync': '' }, sch.next_run_at ? [time(sch.next_run_at), ` (${fmtDate(sch.next_run_at)})`] : 'not scheduled'),
      h('dt', 'Scheduler'), h('dd', sch.leader ? `runs on ${sch.leader}${sch.leader_since ? ` since ${fmtDate(sch.leader_since)}` : ''}` : 'no instance holds the scheduler yet')),
    h('p.small.muted', { style: 'margin-top:10px' }, h('a', { href: '#/connection' }, 'Sync now'), ' from the connection page.'));
  box.append(h('div.grid2', form, resync));
  if (following && !outcome) followSwitch(box, form.querySelector('[data-hook-mode-status]'), following.job, following.to);
}
