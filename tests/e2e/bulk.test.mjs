// The bulk flow a user can trust (issue 11), in Chromium against mrgate, the GitLab simulator and PostgreSQL:
// select all with no filter -> worded preview -> apply -> every repo gated; five repos with differing configs ->
// change only the severity -> the preview and the result keep every other field of every repo; a read-only
// token -> Apply disabled with the reason; the dashboard reads what the API sends (paging, error reasons).
// Fails on any console error and any unexpected 4xx/5xx. Screenshots: $MRGATE_BUILD_DIR/e2e-screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Sim, Mrgate, connectAndSync, launch, logIn, newPage, shot, stopAll, until } from './lib.mjs';

// axe-core (npm, tests/e2e/package.json) checks the page's accessibility rules in the browser
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
async function axe(p, rules) {
  // evaluated through DevTools, not a <script> tag: the dashboard's CSP (script-src 'self') rightly refuses inline
  // scripts, and the test must not weaken it
  if (!(await p.evaluate(() => !!window.axe))) await p.evaluate(readFileSync(AXE, 'utf8'));
  return p.evaluate(async (values) => {
    const res = await window.axe.run(document, { runOnly: { type: 'rule', values } });
    return res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, rules);
}

const TOKEN = 'glpat-e2e-bulk-000000000001';
const RO_TOKEN = 'glpat-e2e-bulk-readonly-0001';
const N = 120; // more than one page of job results (100)
let sim, mrgate, api, browser, page, problems;

async function go(hash, readySelector) {
  while (await page.locator('[role="dialog"]').count()) await page.keyboard.press('Escape');
  // the same hash again renders the page again (fresh data), as a click on its link does
  await page.evaluate((h) => { if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange')); else location.hash = h; }, hash);
  if (readySelector) await page.waitForSelector(readySelector);
}

async function configOf(id) {
  return (await api.get(`/api/repos/${id}`)).data.config;
}

describe('the bulk flow', { timeout: 300000 }, () => {
  before(async () => {
    sim = await Sim.start('bulk', ['--seed', `acme:${N}`]);
    await sim.post('/__sim/tokens', { token: TOKEN, kind: 'group_access', name: 'mrgate', scopes: ['api'], access: { acme: 50 } });
    await sim.post('/__sim/tokens', { token: RO_TOKEN, kind: 'group_access', name: 'reader', scopes: ['read_api'], access: { acme: 50 } });
    mrgate = await Mrgate.start('bulk');
    api = await mrgate.client();
    await connectAndSync(api, sim, 'acme', TOKEN);
    browser = await launch();
    ({ page, problems } = await newPage(browser, {
      // the first Remove, or Save, of a group config that stops gating repos: the answer that names them (asked,
      // then sent again)
      expected: [{ method: 'DELETE', path: /^\/api\/configs\/groups\/acme\/team03$/, status: 409, error: 'would_ungate' },
        { method: 'PUT', path: /^\/api\/configs\/groups\/acme\/team03$/, status: 409, error: 'would_ungate' }],
    }));
    await logIn(page, `${mrgate.base}/`);
  });

  after(async () => {
    if (browser) await browser.close();
    await stopAll();
  });

  it('offers to gate all N repositories after the first sync, with coverage chips and counts per group', async () => {
    await go('#/repos', '[data-panel="onboard"]');
    const offer = page.locator('[data-panel="onboard"]');
    assert.match(await offer.innerText(), new RegExp(`${N} repositories, none gated yet`));
    assert.equal(await offer.locator('button[data-action="gate-all"]').innerText(), `Gate all ${N} repositories`);
    await page.waitForSelector(`[data-chip="ungated"]:has-text("${N}")`);
    assert.equal((await page.locator('[data-chip="gated"]').textContent()).replace(/\s+/g, ' ').trim(), 'gated 0');
    await page.waitForSelector('.tree button[data-group="acme"] [data-gated="0"]');
    assert.equal(await page.locator('.tree button[data-group="acme"] .count').innerText(), `0/${N}`);
    // a repository exception that gates nothing (its own severity) is no gating decision: the offer stays (a walk
    // saw "Gate all" vanish with one exception and 0 repos gated)
    const first = (await api.get('/api/repos?limit=1')).data.items[0];
    assert.equal((await api.put(`/api/repos/${first.id}/config`, { fail_on: 'critical' })).status, 200);
    await go('#/repos', '[data-chip="exception"]');
    await page.waitForSelector('[data-panel="onboard"]');
    assert.equal(await page.locator('[data-panel="onboard"] button[data-action="gate-all"]').innerText(), `Gate all ${N} repositories`);
    assert.equal((await api.del(`/api/repos/${first.id}/config`)).status, 200);
    await go('#/repos', '[data-panel="onboard"]');
    await page.waitForSelector(`[data-chip="ungated"]:has-text("${N}")`);
    await shot(page, 'onboarding');
    await offer.locator('button[data-action="gate-all"]').click();
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    assert.equal(await modal.getByRole('checkbox', { name: /Gate these repositories/ }).isChecked(), true);
    assert.equal(await modal.getByRole('checkbox', { name: 'Also gate new repositories' }).isChecked(), true);
    await page.keyboard.press('Escape');
    await modal.waitFor({ state: 'detached' });
  });

  it('selects all with no filter, previews in words and gates every repository', async () => {
    await go('#/repos', 'tr[data-id]');
    await page.waitForSelector(`#repos-count:text("of ${N} repositories")`);
    await page.click('input[data-select-page]');
    await page.click('button[data-action="select-all-matching"]');
    await page.waitForSelector(`[data-selected-count="${N}"]`);
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    // nobody is gated yet: the dialog says so and leaves "Gate these repositories" to the user (ticked for them, it
    // was sent with a severity change alone); ticked here, gating is what the preview shows
    const gateBox = modal.getByRole('checkbox', { name: /Gate these repositories/ });
    assert.equal(await gateBox.isChecked(), false);
    assert.match(await modal.locator('.field:has(input[name="enabled"])').innerText(), /none of them is gated yet: tick to install/);
    await gateBox.check();
    // every scan unticked is said at the boxes, and Preview and Apply wait: the server refuses a gate that runs no
    // scan (a walk could press Apply and read the 400 below the fold)
    const was = await modal.locator('input[name="scans"]:checked').evaluateAll((els) => els.map((e) => e.value));
    assert.ok(was.length > 0, 'some scan is ticked');
    for (const v of was) await modal.locator(`input[name="scans"][value="${v}"]`).uncheck();
    await modal.locator('[data-no-scans]').waitFor({ state: 'visible' });
    assert.match(await modal.locator('[data-no-scans]').innerText(), /^Tick at least one scan/);
    const previewBtn = modal.getByRole('button', { name: 'Preview changes' });
    assert.equal(await previewBtn.isDisabled(), true);
    assert.equal(await previewBtn.getAttribute('title'), 'Tick at least one scan');
    assert.equal(await modal.getByRole('button', { name: `Apply to ${N}` }).isDisabled(), true);
    for (const v of was) await modal.locator(`input[name="scans"][value="${v}"]`).check();
    await modal.locator('[data-no-scans]').waitFor({ state: 'hidden' });
    assert.equal(await previewBtn.isDisabled(), false);
    await modal.getByRole('checkbox', { name: /Block merge until the gate passes/ }).check();
    // a large dry run is a job: one request that does not wait for GitLab, the job's progress, then its plan
    const previews = [], planReads = [];
    const onReq = (r) => {
      if (r.url().endsWith('/api/configure')) previews.push(JSON.parse(r.postData()));
      if (/\/api\/jobs\/\d+\/plan/.test(r.url())) planReads.push(r.url());
    };
    page.on('request', onReq);
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    await modal.locator('[data-plan-summary]').waitFor();
    page.off('request', onReq);
    assert.deepEqual(previews.map((b) => [b.dry_run, 'plan_limit' in b]), [[true, false]]);
    assert.ok(planReads.length >= 1, 'the plan is read from the dry run\'s job');
    const summary = await modal.locator('[data-plan-summary]').innerText();
    assert.match(summary, new RegExp(`${N} repositories selected · ${N} change on GitLab`));
    assert.match(await modal.locator('[data-plan-asked]').innerText(), /gate the repositories; block merge until the gate passes\./);
    assert.equal(await modal.locator(`[data-plan-count="create webhook"]`).innerText(), `${N} × create webhook`);
    assert.equal(await modal.locator(`[data-plan-count="turn on Pipelines must succeed"]`).innerText(), `${N} × turn on Pipelines must succeed`);
    const row = await modal.locator('tr[data-plan-item]').first().innerText();
    assert.match(row, /^acme\/.+\tcreate webhook · turn on Pipelines must succeed$/);
    assert.ok(!(await modal.innerText()).includes('{'), 'no JSON in the preview');
    await shot(page, 'configure-worded-preview', { fullPage: false });
    await modal.getByRole('button', { name: `Apply to ${N}` }).click();
    await page.waitForURL(/#\/jobs\/\d+/);
    await until(async () => (await page.locator('[role="progressbar"]').getAttribute('aria-valuenow')) === '100', { timeout: 90000, what: 'the job at 100%' });
    assert.equal((await api.get('/api/repos?status=gated&limit=1')).data.count, N);
    assert.equal((await api.get('/api/configs/default')).data.config.enabled, true, 'stored at the default level');
    // coverage and the tree follow
    await go('#/repos?q=', '[data-chip="gated"]');
    await page.waitForSelector(`[data-chip="gated"]:has-text("${N}")`);
    await page.waitForSelector(`.tree button[data-group="acme"] [data-gated="${N}"]`);
    assert.equal(await page.locator('[data-panel="onboard"]').count(), 0, 'no first-time offer once repos are gated');
  });

  it('counts new repositories that are not gated, and gates them', async () => {
    for (const p of ['fresh-one', 'fresh-two']) await sim.post('/__sim/projects', { namespace: 'acme/team01', path: p });
    assert.equal((await api.post('/api/sync')).status, 202);
    await until(async () => (await api.get('/api/sync')).data.state === 'done', { what: 'the resync' });
    const sum = (await api.get('/api/repos?limit=1&with=summary')).data.summary;
    assert.equal(sum.statuses.new, 2, JSON.stringify(sum.statuses));
    await go('#/repos?q=', '[data-new-repos]');
    const banner = page.locator('[data-new-repos]');
    assert.match(await banner.innerText(), /^2 new repositories are not gated\./);
    assert.equal((await page.locator('[data-chip="new"]').textContent()).replace(/\s+/g, ' ').trim(), 'new 2');
    await shot(page, 'new-repos-banner');
    await banner.locator('button[data-action="gate-new"]').click();
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    await modal.getByRole('button', { name: 'Apply to 2' }).click();
    await until(async () => (await api.get('/api/repos?q=fresh&status=gated&limit=5')).data.count === 2, { what: 'the new repos gated' });
  });

  it('changes only the severity of five repositories with differing configs and keeps the rest', async () => {
    await go('#/repos?q=', 'tr[data-id]');
    const ids = (await page.locator('tr[data-id]').evaluateAll((trs) => trs.filter((tr) => !tr.dataset.path.includes('fresh')).map((tr) => Number(tr.dataset.id)))).slice(0, 5);
    const own = [
      { scans: ['secrets', 'dependencies'], block_merge: true, fail_on: 'high' },
      { scans: ['secrets'], block_merge: false, comment: 'always' },
      { fail_on: 'low', ignore_paths: ['docs/**'] },
      { scans: ['secrets', 'sast'], block_merge: true, comment: 'off' },
      null,
    ];
    for (let i = 0; i < 5; i++) {
      if (!own[i]) continue;
      const r = await api.post('/api/configure', { selection: { ids: [ids[i]] }, config: own[i], confirm_no_scanner: true });
      assert.ok([200, 202].includes(r.status), JSON.stringify(r.data));
    }
    await until(async () => (await api.get('/api/repos?status=applying&limit=1')).data.count === 0, { what: 'the applies' });
    const before = {};
    for (const id of ids) before[id] = await configOf(id);
    const merge = async (id) => (await sim.get(`/__sim/projects/${id}`)).settings.only_allow_merge_if_pipeline_succeeds;
    const mergeBefore = {};
    for (const id of ids) mergeBefore[id] = await merge(id);
    assert.notDeepEqual(before[ids[0]], before[ids[1]]);

    await go('#/repos?q=', 'tr[data-id]');
    for (const id of ids) await page.click(`tr[data-id="${id}"] input[type="checkbox"]`);
    await page.waitForSelector('[data-selected-count="5"]');
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    // the dialog opens from the selection: what differs is "Mixed — keep as is", what agrees shows its value
    const failOn = modal.getByLabel('Fail the gate on severity');
    assert.equal(await failOn.inputValue(), '');
    assert.equal(await failOn.locator('option:checked').innerText(), 'Mixed — keep as is');
    assert.equal(await modal.getByLabel('Comment on the merge request').inputValue(), '');
    assert.equal(await modal.locator('input[name="scans_keep"]').isChecked(), true);
    assert.equal(await modal.locator('input[name="block_merge"]').evaluate((e) => e.indeterminate), true);
    assert.match(await modal.locator('[data-mixed="block_merge"]').innerText(), /Mixed — keep as is/);
    assert.equal(await modal.getByRole('checkbox', { name: /Gate these repositories/ }).isChecked(), true);
    await shot(page, 'configure-mixed', { fullPage: false });

    await failOn.selectOption('critical');
    const sent = page.waitForRequest((r) => r.url().endsWith('/api/configure') && r.method() === 'POST');
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    assert.deepEqual(JSON.parse((await sent).postData()).config, { fail_on: 'critical' });
    await modal.locator('[data-plan-summary]').waitFor();
    assert.match(await modal.locator('[data-plan-asked]').innerText(), /^You change: fail the gate on critical\. Every other setting stays/);
    await modal.locator('[data-plan-nothing]').waitFor();
    await modal.getByRole('button', { name: 'Apply to 5' }).click();
    await modal.waitFor({ state: 'detached' });
    for (const id of ids) {
      const after = await configOf(id);
      assert.deepEqual(after, { ...before[id], fail_on: 'critical' }, `repo ${id}`);
      assert.equal(await merge(id), mergeBefore[id], `GitLab's merge setting of ${id}`);
    }
  });

  it('counts in each coverage chip exactly the repositories its filter shows: un-gated exceptions are not "gated"', async () => {
    const two = (await api.get('/api/repos?status=gated&limit=2')).data.items.map((r) => r.id);
    const r = await api.post('/api/configure', { selection: { ids: two }, config: { enabled: false } });
    assert.ok([200, 202].includes(r.status), JSON.stringify(r.data));
    await until(async () => (await api.get('/api/repos?status=applying&limit=1')).data.count === 0, { what: 'the un-gate' });
    const sum = (await api.get('/api/repos?limit=1&with=summary')).data.summary.statuses;
    assert.ok(sum.exception >= 2, JSON.stringify(sum));
    await go('#/repos?q=', '[data-chip="gated"]');
    const chip = async (k) => (await page.locator(`[data-chip="${k}"]`).textContent()).replace(/\s+/g, ' ').trim();
    await until(async () => (await chip('gated')) === `gated ${sum.gated}`, { what: `the gated chip at ${sum.gated}` });
    assert.equal(await chip('exception'), `exception ${sum.exception}`);
    // a chip shows what its count says
    await page.click('[data-chip="gated"]');
    await page.waitForSelector(`#repos-count:text("of ${sum.gated} repositories")`);
    await page.click('[data-chip="exception"]');
    await page.waitForSelector(`#repos-count:text("of ${sum.exception} repositories")`);
    await page.click('[data-chip="exception"]');
    // gated again, as the later steps expect
    const back = await api.post('/api/configure', { selection: { ids: two }, config: { enabled: true } });
    assert.ok([200, 202].includes(back.status), JSON.stringify(back.data));
    await until(async () => (await api.get('/api/repos?status=applying&limit=1')).data.count === 0, { what: 'the re-gate' });
    for (const id of two) assert.equal((await api.get(`/api/repos/${id}`)).data.status, 'gated');
  });

  it('offers the inline comment mode: a thread on the line of each finding', async () => {
    await go('#/repos?q=', 'tr[data-id]');
    const id = Number(await page.locator('tr[data-id]').first().getAttribute('data-id'));
    await page.click(`tr[data-id="${id}"] input[type="checkbox"]`);
    await page.waitForSelector('[data-selected-count="1"]');
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    const comment = modal.getByLabel('Comment on the merge request');
    const options = await comment.locator('option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    assert.ok(options.some(([v, t]) => v === 'inline' && t === 'On the changed lines'), JSON.stringify(options));
    await comment.selectOption('inline');
    await shot(page, 'configure-inline-comments', { fullPage: false });
    const sent = page.waitForRequest((r) => r.url().endsWith('/api/configure') && r.method() === 'POST');
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    assert.deepEqual(JSON.parse((await sent).postData()).config, { comment: 'inline' });
    await modal.locator('[data-plan-summary]').waitFor();
    await modal.getByRole('button', { name: 'Apply to 1' }).click();
    await modal.waitFor({ state: 'detached' });
    assert.equal((await configOf(id)).comment, 'inline');
  });

  it('shows the read-only state: Apply is disabled with the reason', async () => {
    const ro = await Mrgate.start('bulk-ro');
    const roApi = await ro.client();
    await connectAndSync(roApi, sim, 'acme', RO_TOKEN);
    const { page: p, problems: roProblems } = await newPage(browser);
    await logIn(p, `${ro.base}/`);
    await p.waitForSelector('[data-banner]:has-text("read-only")');
    assert.equal(await p.locator('[data-banner]:has-text("read-only")').count(), 1, 'the read-only warning is said once');
    await p.waitForSelector('tr[data-id]');
    await p.click('input[data-select-page]');
    await p.click('button[data-action="configure"]');
    const modal = p.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    await modal.getByLabel('Fail the gate on severity').selectOption('critical');
    const apply = modal.locator('button[data-action="apply"]');
    assert.equal(await apply.isDisabled(), true);
    assert.match(await apply.getAttribute('title'), /read-only/);
    assert.match(await modal.innerText(), /Apply is not possible: The GitLab token is read-only/);
    await shot(p, 'read-only', { fullPage: false });
    assert.deepEqual(roProblems, []);
    await p.context().close();
  });

  it('reads what the API sends: every job result, older audit entries, why a repo is in error', async () => {
    // every job result, not the first 100
    const job = (await api.get('/api/jobs?limit=500')).data.items.find((j) => j.total === N);
    await go(`#/jobs/${job.id}`, '[data-table="job-items"]');
    await until(async () => (await page.locator('tr[data-item]').count()) === N, { what: `${N} result rows` });
    assert.equal(await page.locator('[data-items-more]').count(), 0);
    // hidden means hidden: no failure, no "Retry failed"
    assert.equal(await page.locator('button[data-action="retry"]').isVisible(), false);
    // a repo whose apply failed says why, in its row
    const bad = (await api.get('/api/repos?limit=1&q=acme-00009')).data.items[0];
    await sim.post('/__sim/script', { method: 'GET', path: `/api/v4/projects/${bad.id}/hooks`, responses: [{ status: 403, body: { message: '403 Forbidden' } }] });
    const r = await api.post('/api/configure', { selection: { ids: [bad.id] }, config: { comment: 'always' }, reapply: true });
    assert.equal(r.status, 202, JSON.stringify(r.data));
    await until(async () => (await api.get(`/api/repos/${bad.id}`)).data.status === 'error', { what: 'the repo in error' });
    await go('#/repos?q=acme-00009', `tr[data-id="${bad.id}"]`);
    assert.match(await page.locator(`tr[data-id="${bad.id}"] [data-why]`).innerText(), /token needs Maintainer/);
    // its job: "Failed" shows the failure; after "Retry failed" (GitLab answers this time) it says that none failed
    await go(`#/jobs/${r.data.apply.job_id}`, '[data-table="job-items"]');
    await page.locator('#job-filter').selectOption('failed');
    await page.waitForSelector(`tr[data-item] >> text=acme-00009`);
    // the retry's first call waits 1.5 s: the page shows the empty list while the job runs, then once it is done
    await sim.post('/__sim/script', { method: 'GET', path: `/api/v4/projects/${bad.id}/hooks`, responses: [{ stall_ms: 1500 }] });
    await page.click('button[data-action="retry"]');
    await page.waitForSelector('[data-empty-items]:has-text("No failed results yet.")');
    await until(async () => {
      const j = (await api.get(`/api/jobs/${r.data.apply.job_id}?items_limit=0`)).data;
      return j.finished && j.failed === 0 && j.done === 1;
    }, { what: 'the retried job finished without a failure' });
    await page.waitForSelector('[data-empty-items]:has-text("No repository failed in this job.")');
    assert.equal(await page.locator('tr[data-item]').count(), 0);
    // the retry is in the audit log, under the name of who asked for it
    const retried = (await api.get('/api/audit?action=job.retry&limit=10')).data.items.find((x) => x.target === `job ${r.data.apply.job_id}`);
    assert.ok(retried, 'a job.retry entry');
    assert.equal(retried.actor, 'admin');
    assert.deepEqual([retried.before, retried.after, retried.details.retried], [{ failed: 1 }, { failed: 0 }, 1]);
    // its row under "All results" counts both attempts: the one that failed and the retry
    await page.locator('#job-filter').selectOption('');
    await page.waitForSelector('tr[data-item] >> text=acme-00009');
    assert.equal(await page.locator('tr[data-item] td[data-attempts]').innerText(), '2');
    // audit: more than a page of entries; "Older entries" adds the next ones, never the same again
    for (let i = 0; i < 105; i++) {
      const x = await api.put('/api/configs/default', { ...(await api.get('/api/configs/default')).data.config, comment: i % 2 ? 'always' : 'on_findings' });
      assert.equal(x.status, 200, JSON.stringify(x.data));
    }
    const total = (await api.get('/api/audit?limit=500')).data.items.length;
    assert.ok(total > 100, total);
    await go('#/audit', 'tr[data-audit-id]');
    assert.equal(await page.locator('tr[data-audit-id]').count(), 100);
    await page.click('button[data-action="older"]');
    await until(async () => (await page.locator('tr[data-audit-id]').count()) === total, { what: 'all audit entries' });
    const ids = await page.locator('tr[data-audit-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.auditId));
    assert.equal(new Set(ids).size, ids.length, 'no entry twice');
    assert.equal(await page.locator('button[data-action="older"]').isVisible(), false, 'no older entries left');
    // audit details in words, with repository paths rather than ids
    const cfg = (await api.get('/api/audit?action=config.configure&limit=500')).data.items.find((a) => a.target === 'repos');
    const text = await page.locator(`tr[data-audit-id="${cfg.id}"] td:last-child`).innerText();
    assert.match(text, /repos › acme\/[^ ]+ › (fail_on|comment|scans)/);
    assert.ok(!/[{}]/.test(text), text);
    await shot(page, 'audit');
  });

  it('keeps the keyboard and the phone in the row menu', async () => {
    await go('#/repos?q=', 'tr[data-id]:nth-child(2)');
    const second = page.locator('tr[data-id]').nth(1);
    const path = await second.getAttribute('data-path');
    await second.getByRole('button', { name: `Actions for ${path}` }).focus();
    await page.keyboard.press('ArrowDown');
    await page.waitForSelector('[role="menu"]');
    assert.equal(await page.evaluate(() => document.activeElement.closest('tr') && document.activeElement.closest('tr').dataset.path), path, 'the focus is in this row\'s menu');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'menuitem');
    await page.keyboard.press('Escape');
    await page.waitForSelector('[role="menu"]', { state: 'detached' });
    // on a phone: tap the button, then Escape (a hardware keyboard) closes the menu
    const ctx = await browser.newContext({ viewport: { width: 400, height: 800 }, hasTouch: true, isMobile: true });
    const phone = await ctx.newPage();
    await logIn(phone, `${mrgate.base}/`);
    await phone.waitForSelector('tr[data-id]');
    const row = phone.locator('tr[data-id]').first();
    await row.locator('button[aria-haspopup="menu"]').tap();
    await phone.waitForSelector('[role="menu"]');
    await phone.locator('h1').tap();
    await phone.waitForSelector('[role="menu"]', { state: 'detached' });
    await row.locator('button[aria-haspopup="menu"]').tap();
    await phone.waitForSelector('[role="menu"]');
    await phone.keyboard.press('Escape');
    await phone.waitForSelector('[role="menu"]', { state: 'detached' });
    await ctx.close();
  });

  it('puts the repos that would fail first and asks before applying to the others', async () => {
    const rows = (await api.get('/api/repos?limit=3&q=acme-0001')).data.items;
    const bad = rows[1];
    // the preview and the apply both read the hooks of the bad repo: GitLab refuses both times
    await sim.post('/__sim/script', { method: 'GET', path: `/api/v4/projects/${bad.id}/hooks`, responses: [{ status: 403, body: { message: '403 Forbidden' } }, { status: 403, body: { message: '403 Forbidden' } }] });
    await go('#/repos?q=acme-0001', 'tr[data-id]');
    for (const r of rows) await page.click(`tr[data-id="${r.id}"] input[type="checkbox"]`);
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    await modal.getByRole('checkbox', { name: /Block merge until the gate passes/ }).uncheck();
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    await modal.locator('[data-plan-summary]').waitFor();
    assert.match(await modal.locator('[data-plan-summary]').innerText(), /3 repositories selected · 2 change on GitLab · 0 need no GitLab change · 1 would fail\./);
    const first = modal.locator('tr[data-plan-item]').first();
    assert.equal(await first.getAttribute('data-result'), 'error', 'errors first');
    assert.match(await first.innerText(), /would fail.*token needs Maintainer/s);
    const apply = modal.locator('button[data-action="apply"]');
    assert.equal(await apply.innerText(), 'Apply to the 2 that can be applied');
    assert.equal(await apply.isDisabled(), true, 'not before the user confirms');
    await modal.getByRole('checkbox', { name: /Apply to the 2 that can be applied \(1 would fail\)/ }).check();
    await shot(page, 'configure-partial', { fullPage: false });
    await apply.click();
    await page.waitForURL(/#\/jobs\/\d+/);
    await until(async () => (await page.locator('[role="progressbar"]').getAttribute('aria-valuenow')) === '100', { what: 'the job' });
    for (const r of rows) {
      const got = (await api.get(`/api/repos/${r.id}`)).data;
      assert.equal(got.config.block_merge, false);
      // block_merge off differs from the default: the repos are exceptions, gated
      if (r.id === bad.id) assert.equal(got.status, 'error', got.path_with_namespace);
      else assert.ok(['gated', 'exception'].includes(got.status), `${got.path_with_namespace}: ${got.status}`);
    }
  });

  it('cancels a running job from its page, and the audit log says who did', async () => {
    // every GitLab call takes 400 ms: an apply of all the repositories runs for seconds
    await sim.post('/__sim/faults', { latency_ms: 400 });
    try {
      const ids = (await api.get(`/api/repos?limit=${N}`)).data.items.map((r) => r.id);
      const r = await api.post('/api/configure', { selection: { ids }, config: { comment: 'always' }, reapply: true });
      assert.equal(r.status, 202, JSON.stringify(r.data));
      const jobId = r.data.apply.job_id;
      // connecting another group while it runs: the page says which job works on the group and links to it,
      // before any confirmation or token check
      await go('#/connection', '[data-capability]');
      await page.getByRole('button', { name: 'Change token or group' }).click();
      await page.getByLabel('Group', { exact: true }).fill('someone-else');
      await page.getByLabel('Token', { exact: true }).fill(TOKEN);
      let dialogs = 0;
      const onDialog = (d) => { dialogs++; d.dismiss(); };
      page.on('dialog', onDialog);
      await page.getByRole('button', { name: 'Connect the other group' }).click();
      const busy = page.locator(`form[data-form="connection"] a[data-busy-job="${jobId}"]`);
      await busy.waitFor();
      page.off('dialog', onDialog);
      assert.equal(dialogs, 0, 'no confirmation while a job runs');
      assert.match(await page.locator('form[data-form="connection"] .notice').innerText(),
        new RegExp(`Job #${jobId} is still working on the repositories of acme: connect another group once it has finished, or cancel job #${jobId} on its page\\.`));
      assert.equal((await api.get('/api/connection')).data.group.full_path, 'acme');
      await shot(page, 'connection-busy-job', { fullPage: false });
      await busy.click();
      await page.waitForURL(new RegExp(`#/jobs/${jobId}$`));
      await page.waitForSelector('[data-progress-text]');
      const cancel = page.locator('button[data-action="cancel"]');
      await cancel.waitFor({ state: 'visible' });
      const asked = [];
      page.once('dialog', (d) => { asked.push(d.message()); d.accept(); });
      await cancel.click();
      await page.waitForSelector('[data-progress-text] .badge:text("canceled")');
      assert.match(asked[0] || '', /^Cancel this job\?/);
      assert.match(asked[0], /already changed on GitLab stays changed/);
      assert.match(asked[0], /the next sync .* applies them to the skipped repositories too/);
      assert.equal(await cancel.isVisible(), false, 'no Cancel on a finished job');
      const j = (await api.get(`/api/jobs/${jobId}?items_limit=0`)).data;
      assert.equal(j.state, 'canceled');
      assert.ok(j.skipped > 0 && j.skipped < N, `skipped ${j.skipped}`);
      await until(async () => (await api.get(`/api/jobs/${jobId}?items_limit=0`)).data.done === N, { what: 'the items in flight finished' });
      const fin = (await api.get(`/api/jobs/${jobId}?items_limit=0`)).data;
      await page.waitForSelector(`[data-progress-text]:has-text("${N} of ${N} repositories done, ${fin.skipped} skipped.")`);
      assert.equal(await page.locator('[data-stat="skipped"] .v').innerText(), String(fin.skipped));
      assert.match(await page.locator('[data-job-meta]').innerText(), / · canceled \d{4}-/);
      assert.equal(await page.locator('[data-progress].canceled').count(), 1, 'a grey bar, not a green one');
      // no repository is left "applying"
      assert.equal((await api.get('/api/repos?status=applying&limit=1')).data.count, 0);
      await shot(page, 'job-canceled');
      // the audit log names the job, who canceled it and how many repositories were skipped
      const a = (await api.get('/api/audit?action=job.cancel&limit=10')).data.items.find((x) => x.target === `job ${jobId}`);
      assert.ok(a, 'a job.cancel entry');
      assert.equal(a.actor, 'admin');
      assert.ok(a.details.skipped > 0 && a.details.skipped <= fin.skipped, JSON.stringify([a.details, fin.skipped]));
      await go('#/audit', `tr[data-audit-id="${a.id}"]`);
      assert.match(await page.locator(`tr[data-audit-id="${a.id}"]`).innerText(), new RegExp(`job\\.cancel\\s+job ${jobId}\\s+state: running → canceled\\s+pending: ${a.details.skipped} → 0`));
    } finally {
      await sim.post('/__sim/faults', {});
    }
  });

  it('shows which repositories a group config\'s removal stops gating before anything changes', async () => {
    // a walk removed a group config on the Configs page: the confirmation said the repositories "inherit ... again",
    // and the job that followed took the webhooks off every repository the config had gated, unannounced
    const hookUrl = `${mrgate.base}/hooks/gitlab`;
    const hooked = async () => new Set((await sim.get('/__sim/hooks')).filter((x) => x.url === hookUrl).map((x) => x.project_id));
    const team = (await api.get('/api/repos?group=acme/team03&limit=100')).data.items.map((r) => r.id);
    assert.ok(team.length > 5, `acme/team03 has ${team.length} repositories`);
    const gatedBefore = [...await hooked()].sort();
    assert.ok(gatedBefore.length > team.length, `${gatedBefore.length} repositories gated`);
    const done = async (r) => { assert.equal(r.status, 200, JSON.stringify(r.data)); await until(async () => (await api.get(`/api/jobs/${r.data.apply.job_id}?items_limit=0`)).data.finished, { what: 'the job' }); };
    await done(await api.put('/api/configs/groups/acme', { enabled: false, confirm_ungate: true }));
    await done(await api.put('/api/configs/groups/acme/team03', { enabled: true }));
    assert.deepEqual([...await hooked()].sort(), [...team].sort());
    await go('#/configs', 'tr[data-group-config="acme/team03"]');
    // the default's scan boxes say which scan types have no scanner on this server, as Configure Scans does
    const scans = (await api.get('/api/scanners')).data.items;
    assert.ok(scans.some((x) => x.available) && scans.some((x) => !x.available), JSON.stringify(scans));
    for (const x of scans) {
      const label = page.locator(`[data-panel="default-config"] label.option:has(input[name="scans"][value="${x.scan}"])`);
      assert.equal(/no scanner on this server/.test(await label.innerText()), !x.available, `${x.scan}: ${await label.innerText()}`);
    }
    // a new group config that sets nothing is refused on the page, before any request (the server's 400 told the
    // user to remove a config the group did not have)
    await page.click('button[data-action="add-group-config"]');
    const add = page.locator('[role="dialog"]:has-text("Add a group config")');
    await add.locator('select[name="group"]').selectOption('acme/team04');
    await add.getByRole('button', { name: 'Next' }).click();
    const edit = page.locator('[role="dialog"]:has-text("Config of acme/team04")');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.locator('.notice.error').waitFor();
    assert.match(await edit.locator('.notice.error').innerText(), /^Set at least one field: with every field inherited, a config of acme\/team04 would change nothing\.$/);
    await page.keyboard.press('Escape');
    assert.ok(!(await api.get('/api/configs/groups')).data.some((g) => g.path === 'acme/team04'));
    const asked = [];
    page.on('dialog', (d) => { asked.push(d.message()); d.accept(); });
    const remove = page.locator('tr[data-group-config="acme/team03"] button:text("Remove")');
    await remove.click();
    const modal = page.locator('[role="dialog"]:has([data-ungate])');
    await modal.waitFor();
    assert.match(asked[0], /^Remove the config of acme\/team03\?/);
    const text = await modal.innerText();
    assert.match(text, new RegExp(`Stop gating ${team.length} repositories\\?`));
    assert.match(text, new RegExp(`Removing the config of acme/team03 stops gating ${team.length} repositories`));
    assert.match(text, /takes mrgate's webhook and merge block off them on GitLab/);
    assert.match(text, new RegExp(`and ${team.length - 5} more\\.`));
    assert.equal(await modal.locator('li').count(), 5);
    await shot(page, 'remove-group-config-ungates');
    // kept: nothing changed, here or on GitLab
    await modal.getByRole('button', { name: 'Keep the config' }).click();
    await modal.waitFor({ state: 'detached' });
    assert.ok((await api.get('/api/configs/groups')).data.some((g) => g.path === 'acme/team03'));
    assert.deepEqual([...await hooked()].sort(), [...team].sort());
    // removed: the job that takes the webhooks off is shown
    await remove.click();
    await modal.waitFor();
    await modal.getByRole('button', { name: `Remove and stop gating ${team.length} repositories` }).click();
    await page.waitForURL(/#\/jobs\/\d+$/);
    await page.waitForSelector('.toast:has-text("no longer gated")');
    assert.match(await page.locator('.toast').last().innerText(), new RegExp(`Removed the config of acme/team03: ${team.length} repositories are no longer gated`));
    await until(async () => (await hooked()).size === 0, { what: 'the webhooks taken off' });
    assert.ok(!(await api.get('/api/configs/groups')).data.some((g) => g.path === 'acme/team03'));
    // an Edit that stops gating them asks too, in the dialog (a walk set "Gate these repositories" to Inherit and
    // 92 repositories were ungated without a word): kept editing, nothing changed; confirmed, the job ungates them
    await done(await api.put('/api/configs/groups/acme/team03', { enabled: true }));
    await until(async () => (await hooked()).size === team.length, { what: 'the webhooks back' });
    await go('#/configs', 'tr[data-group-config="acme/team03"]');
    await page.locator('tr[data-group-config="acme/team03"] button:text("Edit")').click();
    const editor = page.locator('[role="dialog"]:has-text("Config of acme/team03")');
    await editor.locator('select[name="enabled"]').selectOption('');
    await editor.locator('select[name="fail_on"]').selectOption('low');
    await editor.getByRole('button', { name: 'Save' }).click();
    const ask = editor.locator('[data-ungate]');
    await ask.waitFor();
    const asking = await ask.innerText();
    assert.match(asking, new RegExp(`^Stop gating ${team.length} repositories\\?`));
    assert.match(asking, new RegExp(`With this config of acme/team03, ${team.length} repositories are no longer gated: a job takes mrgate's webhook and merge block off them on GitLab`));
    assert.equal(await ask.locator('li').count(), 5);
    await shot(page, 'edit-group-config-ungates');
    await ask.getByRole('button', { name: 'Keep editing' }).click();
    await ask.waitFor({ state: 'detached' });
    assert.deepEqual((await api.get('/api/configs/groups/acme/team03')).data.config, { enabled: true });
    // a change of the form withdraws the question: a walk changed the form under it, and its confirm saved the
    // body asked about, not what the form showed
    await editor.getByRole('button', { name: 'Save' }).click();
    await ask.waitFor();
    await editor.locator('select[name="fail_on"]').selectOption('medium');
    await ask.waitFor({ state: 'detached' });
    assert.ok(await editor.getByRole('button', { name: 'Save' }).isEnabled());
    assert.deepEqual((await api.get('/api/configs/groups/acme/team03')).data.config, { enabled: true });
    await editor.locator('select[name="fail_on"]').selectOption('low');
    await editor.getByRole('button', { name: 'Save' }).click();
    await ask.getByRole('button', { name: `Save and stop gating ${team.length} repositories` }).click();
    await page.waitForURL(/#\/jobs\/\d+$/);
    assert.match(await page.locator('.toast').last().innerText(), new RegExp(`Saved the config of acme/team03: ${team.length} repositories are no longer gated`));
    assert.deepEqual((await api.get('/api/configs/groups/acme/team03')).data.config, { fail_on: 'low' });
    await until(async () => (await hooked()).size === 0, { what: 'the webhooks taken off again' });
    // the audit log says what each change stopped gating, and what the removed config held
    const removal = (await api.get('/api/audit?action=config.group.delete&limit=1')).data.items[0];
    await go('#/audit', `tr[data-audit-id="${removal.id}"]`);
    const removed = page.locator(`tr[data-audit-id="${removal.id}"]`);
    assert.equal(await removed.locator('[data-audit-ungated]').innerText(), `stopped gating: ${team.length} repositories (confirmed)`);
    assert.match(await removed.locator('[data-removed]').innerText(), /^groups › acme\/team03: removed \(it set enabled: true\)$/);
    assert.equal((await api.del('/api/configs/groups/acme/team03')).status, 200);
    // acme's own config gated nothing: removed without a second question, and what was gated is gated again
    await go('#/configs', 'tr[data-group-config="acme"]');
    await page.locator('tr[data-group-config="acme"] button:text("Remove")').click();
    await page.waitForURL(/#\/jobs\/\d+$/);
    page.removeAllListeners('dialog');
    assert.equal(asked.length, 3, asked.join(' | '));
    await until(async () => JSON.stringify([...await hooked()].sort()) === JSON.stringify(gatedBefore), { what: 'the repositories gated again' });
    // a config with no repositories under it: removed with no job to show, its row gone from the list (a walk met
    // "scanners is not defined" here, and the row stayed)
    const none = await api.put('/api/configs/groups/acme/later', { fail_on: 'low', confirm_new_group: true });
    assert.equal(none.status, 200, JSON.stringify(none.data));
    assert.equal(none.data.apply, null, JSON.stringify(none.data));
    await go('#/configs', 'tr[data-group-config="acme/later"]');
    page.once('dialog', (d) => { asked.push(d.message()); d.accept(); });
    await page.locator('tr[data-group-config="acme/later"] button:text("Remove")').click();
    await page.waitForSelector('.toast:has-text("Removed the config of acme/later.")');
    await page.locator('tr[data-group-config="acme/later"]').waitFor({ state: 'detached' });
    assert.equal(await page.locator('.toast.error').count(), 0, await page.locator('.toast').allInnerTexts());
    assert.match(page.url(), /#\/configs$/);
    assert.ok(!(await api.get('/api/configs/groups')).data.some((g) => g.path === 'acme/later'));
  });

  it('says at once when GitLab refuses the token', async () => {
    await sim.post('/__sim/tokens/revoke', { token: TOKEN });
    const one = (await api.get('/api/repos?limit=1&q=acme-00002')).data.items[0];
    const r = await api.post('/api/configure', { selection: { ids: [one.id] }, config: { comment: 'off' }, reapply: true });
    assert.equal(r.status, 202, JSON.stringify(r.data));
    await until(async () => (await api.get(`/api/jobs/${r.data.apply.job_id}`)).data.finished, { what: 'the job' });
    assert.equal((await api.get('/api/connection')).data.token.status, 'revoked');
    await page.reload();
    await page.waitForSelector('[data-banner="error"]');
    assert.match(await page.locator('[data-banner="error"]').innerText(), /The GitLab token was revoked: GitLab writes are stopped until the token is updated on the Connection page\./);
    await shot(page, 'token-revoked');
  });

  it('passes axe on the group tree, an open dialog and the configs table', async () => {
    await go('#/repos?q=', '.tree button[data-group="acme/team01"]');
    assert.deepEqual(await axe(page, ['listitem', 'list']), []);
    await page.click('input[data-select-page]');
    await page.click('button[data-action="configure"]');
    await page.locator('[role="dialog"][data-modal="configure"] [data-config-form]').waitFor();
    assert.deepEqual(await axe(page, ['landmark-no-duplicate-banner', 'landmark-no-duplicate-contentinfo', 'landmark-unique']), []);
    await page.keyboard.press('Escape');
    await api.put('/api/configs/groups/acme/team01', { fail_on: 'critical' });
    const put2 = await api.put('/api/configs/groups/acme/team02', { enabled: true, block_merge: true });
    assert.equal(put2.status, 200, JSON.stringify(put2.data));
    // a config for a group no sync has listed covers nothing yet: the page says so (a typo would look the same)
    assert.equal((await api.put('/api/configs/groups/acme/team-to-come', { fail_on: 'never', confirm_new_group: true })).status, 200);
    await go('#/configs', 'h1:text("Defaults and group configs")');
    await page.waitForSelector('table');
    const first = page.locator('tr[data-group-config="acme/team-to-come"] td:nth-child(1)');
    assert.match(await first.innerText(), /not listed\s+no sync has listed this group: it covers no repository until one does/);
    assert.equal(await page.locator('tr[data-group-config="acme/team01"] [data-listed-as]').count(), 0);
    assert.match(await page.locator('tr[data-group-config="acme/team-to-come"] td:nth-child(2)').innerText(), /report only \(never fails\)/);
    // a group config sets some fields: the rest is inherited, not "no scans"; what it sets (gating on) is shown
    const cell = (g) => page.locator(`tr[data-group-config="${g}"] td:nth-child(2)`).innerText();
    assert.match(await cell('acme/team01'), /fails on critical/);
    assert.match(await cell('acme/team01'), /scans inherited/);
    assert.doesNotMatch(await cell('acme/team01'), /no scans|gates|off/);
    assert.match(await cell('acme/team02'), /gates · blocks merge/);
    assert.match(await cell('acme/team02'), /scans inherited/);
    await shot(page, 'group-configs');
    assert.deepEqual(await axe(page, ['empty-table-header']), []);
    assert.equal((await api.del('/api/configs/groups/acme/team-to-come')).status, 200);
  });

  it('hides what is hidden on the login page', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${mrgate.base}/`);
    await p.waitForSelector('form.login');
    assert.equal(await p.locator('#logout').isVisible(), false, '"Log out" on the login page');
    await ctx.close();
  });

  it('logged no console errors and no unexpected HTTP errors', () => {
    assert.deepEqual(problems, []);
  });
});
