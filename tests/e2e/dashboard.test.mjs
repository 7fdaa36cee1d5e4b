// The dashboard in real Chromium against mrgate, the GitLab simulator and PostgreSQL: log in; connect with a token;
// sync 300 repos; filter by subgroup; select all matching; Configure Scans with a preview, apply and watch the
// progress bar reach 100%; add an exception from the row menu; open the gate report of an MR that adds a secret.
// Screenshots: $MRGATE_BUILD_DIR/e2e-screenshots/<page>.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, Mrgate, launch, logIn, newPage, shot, stopAll, until, ADMIN_PASSWORD } from './lib.mjs';

const TOKEN = 'glpat-e2e-dashboard-0000000001';
const SUBGROUP = 'acme/team01';
let sim, mrgate, api, browser, page, problems;

function inDays(n) {
  return new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);
}

// Open a dialog that asks for a reason (opener: what to click; name: its data-modal), check that it refuses an empty
// one, then give the reason, take a screenshot and confirm; waits until the dialog closed.
async function reasonDialog(opener, name, button, label, reason) {
  await page.click(opener);
  const modal = page.locator(`[role="dialog"][data-modal="${name}"]`);
  await modal.getByRole('button', { name: button }).click();
  assert.match(await modal.locator('[role="alert"]').innerText(), /Say why/);
  // a reason past 200 characters is not cut short without a word: the hint counts, the button says why it refuses
  await modal.getByLabel(label).fill('x'.repeat(250));
  assert.equal(await modal.locator('.hint').innerText(), '250 characters: at most 200');
  await modal.getByRole('button', { name: button }).click();
  assert.match(await modal.locator('[role="alert"]').innerText(), /has 250 characters; shorten it to 200/);
  await modal.getByLabel(label).fill(reason);
  assert.equal(await modal.locator('.hint').innerText(), `${[...reason].length} of 200 characters`);
  await shot(page, `${name}-dialog`, { fullPage: false });
  await modal.getByRole('button', { name: button }).click();
  await modal.waitFor({ state: 'detached' });
}

async function go(hash, readySelector) {
  // a dialog left open by a failed step must not hide the page from the next one
  while (await page.locator('[role="dialog"]').count()) await page.keyboard.press('Escape');
  await page.evaluate((h) => { location.hash = h; }, hash);
  if (readySelector) await page.waitForSelector(readySelector);
}

describe('dashboard', { timeout: 240000 }, () => {
  before(async () => {
    sim = await Sim.start('dashboard', ['--seed', 'acme:300']);
    // a group access token, Maintainer on the group, expiring in 20 days (a warning on every page)
    await sim.post('/__sim/tokens', { token: TOKEN, kind: 'group_access', name: 'mrgate', scopes: ['api'], expires_at: inDays(20), access: { acme: 40 } });
    mrgate = await Mrgate.start('dashboard');
    api = await mrgate.client();
    // The empty states a fresh installation answers with: not faults. Every other 4xx is one.
    const expected = [
      { method: 'GET', path: /^\/api\/connection$/, status: 404, error: 'no_connection' },
      { method: 'GET', path: /^\/api\/sync$/, status: 404, error: 'not_found' },
      { method: 'POST', path: /^\/api\/session$/, status: 401, error: 'unauthorized' }, // the wrong password, on purpose
    ];
    expected.push({ method: 'GET', path: /^\/api\/repos\/\d+\/history$/, status: 404, error: 'not_found' });
    // a group filter no GitLab path can be, typed on purpose: the list says why it lists nothing
    expected.push({ method: 'GET', path: /^\/api\/repos$/, status: 400, error: 'invalid_input' });
    // a scan type with no scanner, saved from the configs page: the page asks first (on purpose)
    expected.push({ method: 'PUT', path: /^\/api\/configs\/default$/, status: 400, error: 'no_scanner' });
    // an Apply that would replace an exception added after its preview: the dialog says so (on purpose)
    expected.push({ method: 'POST', path: /^\/api\/configure$/, status: 409, error: 'overrides_changed' });
    browser = await launch();
    ({ page, problems } = await newPage(browser, { expected }));
  });

  after(async () => {
    if (browser) await browser.close();
    await stopAll();
  });

  it('logs in', async () => {
    await page.goto(`${mrgate.base}/`);
    await page.waitForSelector('form.login');
    assert.equal(await page.title(), 'Log in · mrgate');
    await shot(page, 'login');
    // a wrong password says so, in the form
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', 'not the password');
    const [wrong] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/session')), page.click('button[type="submit"]')]);
    assert.equal(wrong.status(), 401);
    await page.getByText('Wrong username or password.').waitFor();
    await page.fill('input[name="password"]', ADMIN_PASSWORD);
    await page.press('input[name="password"]', 'Enter');
    await page.waitForSelector('h1:text("Repositories")');
    await page.getByText('No GitLab group is connected yet.').waitFor();
  });

  it('connects a group with a token and shows what the token allows', async () => {
    await page.getByRole('link', { name: 'Connect GitLab' }).click();
    await page.waitForSelector('form[data-form="connection"]');
    // mrgate listens on loopback here: the page says, before anything is applied, that GitLab cannot reach it
    assert.match(await page.locator('[data-public-url-warning]').innerText(), /loopback address/);
    await page.getByLabel('GitLab URL').fill(sim.base);
    await page.getByLabel('Group', { exact: true }).fill('acme');
    await page.getByLabel('Token', { exact: true }).fill(TOKEN);
    await page.getByRole('button', { name: 'Connect' }).click();
    const cap = page.locator('[data-capability]');
    await cap.waitFor();
    assert.equal(await cap.getAttribute('data-capability'), 'gate');
    assert.match(await page.locator('[data-scopes]').innerText(), /api/);
    assert.equal(await page.locator('[data-expires]').innerText(), inDays(20));
    assert.match(await page.locator('[data-token]').innerText(), /group access token/);
    // the token is never shown, only its last characters
    assert.ok(!(await page.content()).includes(TOKEN));
    // "Change token or group" opens the form with the URL and group filled in
    await page.getByRole('button', { name: 'Change token or group' }).click();
    assert.equal(await page.getByLabel('Group', { exact: true }).inputValue(), 'acme');
    await shot(page, 'connection');
  });

  it('lists the group at once after the first connect, and syncs again on "Sync now" with live progress', async () => {
    // connecting started the first sync: nobody has to find "Sync now" before the repositories show up
    await page.waitForSelector('[data-panel="sync"] [data-sync-state="done"]', { timeout: 60000 });
    assert.equal(await page.locator('[data-panel="sync"] [data-stat="repos_seen"] .v').innerText(), '300');
    // the 300 listed for the first time are not the status `new` (the first sync marks none): said apart
    assert.equal(await page.locator('[data-panel="sync"] [data-stat="new_repos"] .k').innerText(), 'first seen');
    const first = (await api.get('/api/sync')).data;
    assert.equal(first.state, 'done');
    await page.locator('[data-panel="sync"] button[data-action="sync"]').click();
    let second = first;
    for (let i = 0; i < 600 && !(second.id > first.id && second.state === 'done'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      second = (await api.get('/api/sync')).data;
    }
    assert.ok(second.id > first.id && second.state === 'done', `"Sync now" ran a second sync: ${JSON.stringify(second)}`);
    assert.equal(second.repos_seen, 300);
    await page.waitForSelector('[data-panel="sync"] [data-sync-state="done"]', { timeout: 60000 });
    await shot(page, 'sync');
  });

  it('keeps "Last sync finished … ago" counting while the page stays open', async () => {
    // a page of its own whose clock the test moves (Playwright's clock), logged in as admin
    const { page: cp, context, problems: cproblems } = await newPage(browser);
    await cp.clock.install();
    await logIn(cp, mrgate.base);
    await cp.evaluate(() => { location.hash = '#/connection'; });
    const t = cp.locator('[data-panel="sync"] [data-sync-state="done"] + time');
    await t.waitFor();
    assert.match(await t.innerText(), /^\d+ s ago$/);
    await cp.clock.fastForward('03:00');
    await until(async () => /^3 min ago$/.test(await t.innerText()), { what: 'the sync time to say 3 min ago' });
    assert.deepEqual(cproblems, []);
    await context.close();
  });

  it('says what stays on GitLab before connecting another group, and connects nothing when told to stop', async () => {
    await go('#/connection', '[data-capability]');
    await page.getByRole('button', { name: 'Change token or group' }).click();
    assert.equal(await page.locator('form[data-form="connection"] button[type="submit"]').innerText(), 'Save the new token');
    const form = page.locator('form[data-form="connection"]');
    assert.match(await form.innerText(), /Replacing the token keeps every config/);
    await page.getByLabel('Group', { exact: true }).fill(SUBGROUP);
    await page.getByLabel('Token', { exact: true }).fill(TOKEN);
    // the form says that it connects another group, not that it keeps every config
    assert.match(await form.innerText(), new RegExp(`Connects ${SUBGROUP} instead of acme\\. mrgate checks the token with it first`));
    assert.doesNotMatch(await form.innerText(), /keeps every config/);
    let asked = null;
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    // another group in the form: the button says what it does
    await page.getByRole('button', { name: 'Connect the other group' }).click();
    await until(() => asked !== null, { what: 'the confirmation of another group' });
    assert.match(asked, new RegExp(`Connect ${SUBGROUP} instead of acme\\?`));
    assert.match(asked, /webhooks/);
    assert.match(asked, /Pipelines must succeed/);
    // told to stop: nothing was sent, the connection is still the group it was
    assert.equal((await api.get('/api/connection')).data.group.full_path, 'acme');
    // the same group on another GitLab address is another connection too, and the question names both addresses
    const url = page.getByLabel('GitLab URL', { exact: true });
    const before = await url.inputValue();
    const other = before.replace('127.0.0.1', 'localhost');
    await url.fill(other);
    await page.getByLabel('Group', { exact: true }).fill('acme');
    await page.getByLabel('Token', { exact: true }).fill(TOKEN);
    asked = null;
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await page.getByRole('button', { name: 'Connect the other group' }).click();
    await until(() => asked !== null, { what: 'the confirmation of another GitLab' });
    assert.ok(asked.startsWith(`Connect acme on ${other} instead of acme on ${before}?`), asked);
    await url.fill(before);
    // the same group with its id, as a new token: no question
    await page.getByLabel('Group', { exact: true }).fill(String((await api.get('/api/connection')).data.group.id));
    await page.getByLabel('Token', { exact: true }).fill(TOKEN);
    let askedAgain = false;
    const onDialog = (d) => { askedAgain = true; d.dismiss(); };
    page.on('dialog', onDialog);
    await page.getByRole('button', { name: 'Save the new token' }).click();
    await page.waitForSelector('.toast:has-text("The token was updated.")');
    page.off('dialog', onDialog);
    assert.equal(askedAgain, false);
    assert.equal((await api.get('/api/connection')).data.group.full_path, 'acme');
  });

  it('lists the repositories with a token-expiry banner on every page', async () => {
    await go('#/repos', 'tr[data-id]');
    await page.waitForSelector('#repos-count:text("of 300 repositories")');
    assert.equal(await page.locator('tr[data-id]').count(), 50);
    await page.waitForSelector('[data-banner="warn"]:has-text("expires on")');
    assert.equal(await page.locator('tr[data-id] [data-status="ungated"]').count(), 50);
    // the sync line says what followed the listing too (a walk read only the listing here)
    await page.waitForSelector('[data-sync-line]:has-text("0 repaired, 0 newly gated.")');
    // the group tree lists the subgroups with their counts
    await page.waitForSelector(`.tree button[data-group="${SUBGROUP}"]`);
    await shot(page, 'repos');
    // paging forward and back
    await page.click('button[data-action="next"]');
    await page.waitForSelector('#repos-count:text("51–100 of 300")');
    await page.click('button[data-action="prev"]');
    await page.waitForSelector('#repos-count:text("1–50 of 300")');
    // search
    await page.getByLabel('Search').fill('acme-00042');
    await page.waitForSelector('#repos-count:text("of 1 repositories")');
    await page.getByLabel('Search').fill('');
    await page.waitForSelector('#repos-count:text("of 300 repositories")');
  });

  it('filters by subgroup', async () => {
    const groups = (await api.get('/api/groups')).data;
    const want = groups.find((g) => g.full_path === SUBGROUP).repos;
    assert.ok(want > 50, `${SUBGROUP} has more than one page of repos (${want})`);
    await page.click(`.tree button[data-group="${SUBGROUP}"]`);
    await page.waitForSelector(`#repos-count:text("of ${want} repositories")`);
    const paths = await page.locator('tr[data-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.path));
    assert.equal(paths.length, 50);
    for (const p of paths) assert.ok(p.startsWith(`${SUBGROUP}/`), p);
    assert.match(page.url(), /group=acme%2Fteam01/);
  });

  it('takes a group typed in another case as that group, spelt as GitLab spells it', async () => {
    await go(`#/repos?group=${encodeURIComponent(SUBGROUP.toUpperCase())}`, 'tr[data-id]');
    await page.waitForSelector(`.tree button[data-group="${SUBGROUP}"][aria-pressed="true"]`);
    await page.waitForFunction((g) => location.hash === `#/repos?group=${encodeURIComponent(g)}`, SUBGROUP);
    const want = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.count;
    await page.waitForSelector(`#repos-count:text("of ${want} repositories")`);
  });

  it('lists nothing under a group filter the server refuses, and offers no page to turn to', async () => {
    // a walk typed a group no GitLab path can be: the 400 was shown above the previous filter's rows, with Next
    await go(`#/repos?group=${encodeURIComponent(SUBGROUP)}`, 'tr[data-id]');
    await page.waitForFunction(() => !document.querySelector('[data-action="next"]').disabled);
    await go(`#/repos?group=${encodeURIComponent(`${SUBGROUP}/`)}`);
    await page.waitForSelector('.notice.error');
    assert.match(await page.locator('.notice.error').first().innerText(), /not a GitLab group path|group/);
    await page.waitForFunction(() => !document.querySelector('tr[data-id]'));
    assert.equal(await page.locator('[data-action="next"]').isDisabled(), true);
    assert.equal(await page.locator('[data-action="prev"]').isDisabled(), true);
    assert.doesNotMatch(await page.locator('#repos-count').innerText(), /of \d/);
    // one message: the refusal's, not also "no group has been listed" (a walk saw both)
    assert.equal(await page.locator('[data-unknown-group]').isHidden(), true);
    await shot(page, 'repos-refused-filter', { fullPage: false });
    // a status no repository can have: the status select says which, not "Any status" over a refused list
    await go('#/repos?status=gatted');
    await page.waitForSelector('.notice.error');
    const shown = await page.locator('select[name="status"]').evaluate((s) => s.options[s.selectedIndex].text);
    assert.equal(shown, '"gatted" (no such status)');
    // a group path no sync has listed (a typo): said, as Configure Scans says it, not a bare "No repositories match"
    await go(`#/repos?group=${encodeURIComponent(`${SUBGROUP}x`)}`);
    await page.waitForSelector('[data-unknown-group]:not([hidden])');
    assert.match(await page.locator('[data-unknown-group]').innerText(), new RegExp(`No group "${SUBGROUP}x" has been listed by a sync`));
    // the next steps go on from the subgroup's list
    await go(`#/repos?group=${encodeURIComponent(SUBGROUP)}`, 'tr[data-id]');
    await page.waitForFunction(() => !document.querySelector('[data-action="next"]').disabled);
    assert.equal(await page.locator('[data-unknown-group]').isHidden(), true);
  });

  it('selects a shift-click range, then all repos matching the filter across pages', async () => {
    const checks = page.locator('tr[data-id] input[type="checkbox"]');
    await checks.nth(2).click();
    await checks.nth(6).click({ modifiers: ['Shift'] });
    await page.waitForSelector('[data-selected-count="5"]');
    assert.deepEqual(await checks.evaluateAll((cs) => cs.map((c, i) => (c.checked ? i : -1)).filter((i) => i >= 0)), [2, 3, 4, 5, 6]);
    await page.getByRole('button', { name: 'Clear selection' }).click();
    await page.click('input[data-select-page]');
    await page.waitForSelector('[data-selected-count="50"]');
    const want = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.count;
    await page.click('button[data-action="select-all-matching"]');
    await page.waitForSelector(`[data-selected-count="${want}"]:text("All ${want} repositories matching this filter are selected.")`);
    // the selection holds on the next page
    await page.click('button[data-action="next"]');
    await page.waitForSelector('#repos-count:text("51–")');
    assert.equal(await checks.evaluateAll((cs) => cs.every((c) => c.checked)), true);
    assert.match(await page.locator('button[data-action="configure"]').innerText(), new RegExp(`\\(${want}\\)`));
    await shot(page, 'repos-selected');
  });

  it('opens Configure Scans for the selection, keyboard-accessible', async () => {
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor(); // the form follows the selection's values, read first
    for (const label of ['Fail the gate on severity', 'Block merge until the gate passes', 'Comment on the merge request', 'Ignore paths'])
      assert.equal(await modal.getByLabel(label).count(), 1, label);
    assert.equal(await modal.getByRole('checkbox', { name: 'Secrets' }).count(), 1);
    // the focus stays in the dialog, Escape closes it and gives the focus back
    for (let i = 0; i < 25; i++) await page.keyboard.press('Tab');
    assert.equal(await modal.evaluate((d) => d.contains(document.activeElement)), true);
    await shot(page, 'configure', { fullPage: false });
    await page.keyboard.press('Escape');
    await modal.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.dataset.action), 'configure');
  });

  it('previews the dry-run plan, applies it and follows the job to 100%', async () => {
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    // none of the selection is gated yet: gating is asked for explicitly
    await modal.getByRole('checkbox', { name: /Gate these repositories/ }).check();
    await modal.getByLabel('Fail the gate on severity').selectOption('medium');
    await modal.getByRole('checkbox', { name: 'Block merge until the gate passes' }).check();
    // while the preview is still reading GitLab, Apply waits for it (a reviewer applied half-way through a preview)
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route('**/api/configure', async (route) => {
      const sent = route.request().postDataJSON();
      if (sent && sent.dry_run) await held;
      await route.continue();
    });
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    await modal.locator('[data-preview-progress]').waitFor();
    const apply = modal.getByRole('button', { name: /^Apply to/ });
    assert.equal(await apply.isDisabled(), true, 'Apply is disabled while the preview runs');
    assert.match(await apply.getAttribute('title'), /preview/);
    release();
    await modal.locator('[data-plan]').waitFor();
    await page.unroute('**/api/configure');
    assert.equal(await apply.isDisabled(), false, 'Apply is enabled once the preview is shown');
    assert.ok(await modal.locator('[data-plan-item]').count() > 0, 'the plan lists repositories');
    await shot(page, 'configure-preview', { fullPage: false });
    await modal.getByRole('button', { name: /^Apply to/ }).click();
    await page.waitForURL(/#\/jobs\/(run-)?\d+/);
    const bar = page.locator('[role="progressbar"]');
    await until(async () => (await bar.getAttribute('aria-valuenow')) === '100', { timeout: 90000, what: 'the progress bar at 100%' });
    await page.waitForSelector('[data-progress-text]:has-text("100%")');
    await shot(page, 'job');
    const want = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.count;
    const failed = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=error&limit=5`)).data;
    assert.equal(failed.count, 0, JSON.stringify(failed.items.map((r) => r.last_apply)));
    assert.equal((await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=gated&limit=1`)).data.count, want);
    const one = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.items[0];
    assert.equal(one.config.fail_on, 'medium');
    assert.equal(one.config.block_merge, true);
    const id = page.url().split('/').pop();
    if (/^\d+$/.test(id)) {
      const j = (await api.get(`/api/jobs/${id}`)).data;
      assert.equal(j.done, j.total);
    }
  });

  it('shows a preview\'s job as what an apply would change, never as changes', async () => {
    // a walk followed a preview's job from a repository's history and read "208 changed" and green "changed" badges
    const one = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.items[0];
    const hist = (await api.get(`/api/repos/${one.id}/history`)).data.items;
    const seen = hist.find((i) => i.action === 'dryrun');
    assert.ok(seen && seen.job_id, JSON.stringify(hist));
    const pv = (await api.get(`/api/jobs/${seen.job_id}?items_limit=0`)).data;
    assert.ok(pv.kind === 'dryrun' && pv.changed > 0, JSON.stringify(pv));
    await go(`#/jobs/${pv.id}`, '[data-table="job-items"]');
    await page.waitForSelector('#job-title:has-text("Preview")');
    assert.equal(await page.locator('#job-title').innerText(), 'Preview (dry run): nothing was changed on GitLab');
    assert.equal(await page.locator('[data-stat="changed"] .k').innerText(), 'would change');
    assert.equal(await page.locator('[data-stat="unchanged"] .k').innerText(), 'would stay as is');
    const badges = await page.locator('[data-table="job-items"] .badge').allInnerTexts();
    assert.ok(badges.length > 0 && badges.every((b) => /^would /.test(b)), JSON.stringify(badges.slice(0, 5)));
    await shot(page, 'job-preview', { fullPage: false });
    // an apply's job is still one of changes
    const ap = (await api.get('/api/jobs')).data.items.find((j) => j.kind === 'apply' && j.changed > 0);
    assert.ok(ap, 'an apply job');
    await go(`#/jobs/${ap.id}`, '[data-table="job-items"]');
    await page.waitForSelector('#job-title:has-text("Progress")');
    assert.equal(await page.locator('[data-stat="changed"] .k').innerText(), 'changed');
  });

  it('shows the whole row menu when a search leaves one row', async () => {
    // a walk's search left one row, and its "⋯" menu was cut off by the table's box: only the first item showed
    const one = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.items[0];
    await go(`#/repos?q=${encodeURIComponent(one.path_with_namespace)}`, `tr[data-path="${one.path_with_namespace}"]`);
    assert.equal(await page.locator('tr[data-id]').count(), 1);
    await page.getByRole('button', { name: `Actions for ${one.path_with_namespace}` }).click();
    const items = page.getByRole('menuitem');
    assert.ok((await items.count()) >= 3, 'the menu has its items');
    // every item is what the page shows at its centre: not clipped, not under anything
    const hidden = await page.evaluate(() => [...document.querySelectorAll('[role="menuitem"]')].filter((b) => {
      const r = b.getBoundingClientRect();
      const x = r.left + r.width / 2, y = r.top + r.height / 2;
      return x < 0 || y < 0 || x > innerWidth || y > innerHeight || !b.contains(document.elementFromPoint(x, y));
    }).map((b) => b.textContent));
    assert.deepEqual(hidden, []);
    await shot(page, 'row-menu-one-row', { fullPage: false });
    await page.keyboard.press('Escape');
    assert.equal(await page.getByRole('menu').count(), 0);
  });

  it('adds an exception from the row menu and shows its badge', async () => {
    await go(`#/repos?group=${encodeURIComponent(SUBGROUP)}`, 'tr[data-id]');
    await page.waitForSelector(`#repos-count:text("of ${(await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=1`)).data.count} repositories")`);
    const row = page.locator('tr[data-id]').first();
    const path = await row.getAttribute('data-path');
    await row.getByRole('button', { name: `Actions for ${path}` }).click();
    await page.getByRole('menuitem', { name: 'Edit exception…' }).click();
    const modal = page.locator('[role="dialog"][data-modal="exception"]');
    await modal.getByLabel('Fail the gate on severity').waitFor();
    await modal.getByLabel('Fail the gate on severity').selectOption('critical');
    await shot(page, 'exception', { fullPage: false });
    await modal.getByRole('button', { name: 'Save exception' }).click();
    await modal.waitFor({ state: 'detached' });
    await page.waitForSelector(`tr[data-path="${path}"] [data-status="exception"]`);
    assert.match(await page.locator(`tr[data-path="${path}"] [data-cell="config"]`).innerText(), /own exception/);
    await shot(page, 'repos-exception');
    // an own config that only repeats what the repo inherits is no exception, and the row does not call it one
    const other = page.locator('tr[data-id]').nth(1);
    const otherId = await other.getAttribute('data-id');
    const otherPath = await other.getAttribute('data-path');
    const inherited = (await api.get(`/api/repos/${otherId}`)).data.config.fail_on;
    assert.equal((await api.put(`/api/repos/${otherId}/config`, { fail_on: inherited })).status, 200);
    await page.reload(); // the same hash again would not render the list again
    await page.waitForSelector(`tr[data-path="${otherPath}"]`);
    const cell = page.locator(`tr[data-path="${otherPath}"] [data-cell="config"]`);
    await until(async () => /own config, as inherited/.test(await cell.innerText()), { what: 'the as-inherited label' }).catch(async (e) => { throw new Error(`${e.message}: the cell says ${JSON.stringify(await cell.innerText())}`); });
    assert.doesNotMatch(await cell.innerText(), /own exception/);
    // "Stop managing": the row no longer says what the gate would do (a walk read "blocks merge" on a repo mrgate
    // had just handed back), and "Manage again" in the same menu gates it by its config again
    const third = page.locator('tr[data-id]').nth(2);
    const thirdPath = await third.getAttribute('data-path');
    const thirdCell = page.locator(`tr[data-path="${thirdPath}"] [data-cell="config"]`);
    assert.match(await thirdCell.innerText(), /blocks merge/);
    page.once('dialog', (d) => d.accept());
    await third.getByRole('button', { name: `Actions for ${thirdPath}` }).click();
    await page.getByRole('menuitem', { name: 'Stop managing' }).click();
    await page.waitForSelector(`tr[data-path="${thirdPath}"] [data-status="unmanaged"]`);
    assert.match(await thirdCell.innerText(), /not managed by mrgate/);
    // the chips count it at once, without a reload
    await page.waitForSelector('[data-chip="unmanaged"]:has-text("1")');
    assert.doesNotMatch(await thirdCell.innerText(), /blocks merge|fails on/);
    await shot(page, 'repos-unmanaged');
    await page.locator(`tr[data-path="${thirdPath}"]`).getByRole('button', { name: `Actions for ${thirdPath}` }).click();
    let asked = null;
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.getByRole('menuitem', { name: 'Manage again' }).click();
    await until(() => asked !== null, { what: 'the question before managing it again' });
    assert.match(asked, new RegExp(`^Manage ${thirdPath} again\\? mrgate applies its config`));
    await page.waitForSelector(`tr[data-path="${thirdPath}"] [data-status="gated"]`, { timeout: 30000 });
    assert.match(await thirdCell.innerText(), /blocks merge/);
    const third_ = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&q=${encodeURIComponent(thirdPath)}&limit=5`)).data.items.find((x) => x.path_with_namespace === thirdPath);
    assert.equal(third_.unmanaged, false);
    assert.equal(third_.exception, false);
    // its history says both in words, and who
    await page.locator(`tr[data-path="${thirdPath}"]`).getByRole('button', { name: `Actions for ${thirdPath}` }).click();
    await page.getByRole('menuitem', { name: 'History' }).click();
    const hist = page.locator('[role="dialog"][data-modal="history"] table');
    await hist.waitFor();
    const histText = await hist.innerText();
    assert.match(histText, /its own config \(exception\) set\s+—\s+not managed by mrgate; its own config: none, it inherits every field\s+by admin/);
    assert.match(histText, /reset to the inherited config\s+—\s+its own config removed: it inherits every field\s+by admin/);
    // and the Configure Scans that gated it (a walk found none in a repository's history)
    assert.match(histText, /Configure Scans\s+—\s+Configure Scans of [^\n]*gate on/);
    // the apply that managing it again started, in words, and no preview dressed up as one
    assert.match(histText, /applied to GitLab/);
    assert.doesNotMatch(histText, /dryrun/);
    await page.keyboard.press('Escape');
  });

  it('shows the gate report of a merge request that adds a secret', async () => {
    const repo = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=gated&limit=1`)).data.items[0];
    assert.ok(repo, 'a gated repository');
    const secret = ['AKIA', 'Z7QWERTYUIOPASDF'].join('');
    await sim.post('/__sim/merge_requests', { project_id: repo.id, title: 'Add deploy settings', files: [{ path: 'deploy/settings.env', content: `REGION=eu-west-1\nAWS_ACCESS_KEY_ID=${secret}\n` }] });
    const gate = await until(async () => {
      const g = (await api.get('/api/gates')).data;
      const items = Array.isArray(g) ? g : g.items || [];
      return items.find((x) => (x.verdict || x.state) === 'failed');
    }, { timeout: 60000, what: 'a failed gate run' });
    await go('#/gates', 'tr[data-gate]');
    await shot(page, 'gates');
    await page.click(`tr[data-gate="${gate.id}"] a`);
    await page.waitForSelector('[data-verdict="failed"]');
    await page.waitForSelector('[data-table="findings"] tr[data-finding]');
    assert.match(await page.locator('[data-table="findings"]').innerText(), /deploy\/settings\.env/);
    await shot(page, 'gate-report');
    // ignore the finding for this repository, with a reason: the ignores page lists it
    await reasonDialog('[data-table="findings"] button[data-action="ignore"]', 'ignore', 'Ignore',
      'Reason (shown in the report and the merge request note)', 'the example key of our docs');
    await go('#/ignores', '[data-table="ignores"] tr[data-ignore]');
    assert.match(await page.locator('[data-table="ignores"]').innerText(), /the example key of our docs/);
    await shot(page, 'ignores');
    await go(`#/gates/${gate.id}`, '[data-table="findings"] tr[data-finding]');
    // a dialog belongs to its page: Back closes it (a walk's bypass dialog stayed open over the previous gate's
    // report, and its button bypassed the gate it was opened on, not the one on screen)
    await page.click('button[data-action="bypass"]');
    await page.locator('[role="dialog"][data-modal="bypass"]').waitFor();
    await page.goBack();
    await page.waitForSelector('[data-table="ignores"]');
    await page.locator('[role="dialog"]').waitFor({ state: 'detached' });
    await go(`#/gates/${gate.id}`, '[data-table="findings"] tr[data-finding]');
    // bypass it with a reason: the dialog refuses an empty reason, then GitLab shows success with who and why
    await reasonDialog('button[data-action="bypass"]', 'bypass', 'Bypass', 'Reason (shown on GitLab)', 'a documentation example key, never valid');
    await page.waitForSelector('[data-verdict="bypassed"]');
    assert.match(await page.locator('[data-bypass]').innerText(), /Bypassed by admin .*a documentation example key, never valid/);
    assert.equal(await page.locator('button[data-action="bypass"]').count(), 0);
    const st = (await sim.get(`/__sim/statuses?project_id=${repo.id}&sha=${gate.head_sha}`)).filter((x) => x.name === 'mrgate');
    assert.equal(st.at(-1).status, 'success');
    assert.equal(st.at(-1).description, 'bypassed by admin: a documentation example key, never valid');
    await shot(page, 'gate-bypassed');
    // the next push is gated normally, and passes: the finding is listed as ignored, not counted
    await sim.post(`/__sim/merge_requests/${repo.id}/${gate.mr_iid}/push`, { files: [{ path: 'README.md', content: 'docs\n' }] });
    const next = await until(async () => (await api.get(`/api/gates?repo=${repo.id}&mr=${gate.mr_iid}`)).data.items.find((x) => x.id !== gate.id && x.state === 'done'), { timeout: 60000, what: 'the run of the next push' });
    await go(`#/gates/${next.id}`, '[data-table="findings"] tr[data-ignored="true"]');
    assert.equal(await page.locator('[data-verdict]').getAttribute('data-verdict'), 'passed');
    assert.match(await page.locator('[data-ignore-reason]').innerText(), /the example key of our docs/);
    // GitLab's status says the ignored finding was there, not just "no new findings"
    const nextSt = (await sim.get(`/__sim/statuses?project_id=${repo.id}&sha=${next.head_sha}`)).filter((x) => x.name === 'mrgate');
    assert.match(nextSt.at(-1).description, /^no new findings \(fails on \w+\); \d+ ignored$/);
    await shot(page, 'gate-with-ignored');
  });

  it('offers no bypass on the report of a repository mrgate no longer gates', async () => {
    // a walk unmanaged a repo, and its failed run's report still offered "Bypass this gate…" (refused on click)
    const repo = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=gated&limit=3`)).data.items[2];
    assert.ok(repo, 'a third gated repository');
    const secret = ['AKIA', 'Z7QWERTYUIOPASDG'].join('');
    // its title holds a bidi control, which the report shows and never obeys (anyone who opens an MR writes it)
    await sim.post('/__sim/merge_requests', { project_id: repo.id, title: 'Add more \u202esettings', files: [{ path: 'deploy/more.env', content: `AWS_ACCESS_KEY_ID=${secret}\n` }] });
    // finished with its failed status posted (the verdict is stored a moment before the status is on GitLab)
    const gate = await until(async () => (await api.get(`/api/gates?repo=${repo.id}`)).data.items.find((x) => x.state === 'done' && x.status_posted === 'failed'), { timeout: 60000, what: 'a failed gate run' });
    await go(`#/gates/${gate.id}`, 'button[data-action="bypass"]');
    assert.equal(await page.locator('[data-mr-title]').innerText(), 'Add more <U+202E>settings');
    const put = await api.put(`/api/repos/${repo.id}/config`, { unmanaged: true });
    assert.equal(put.status, 200, JSON.stringify(put.data));
    await until(async () => (await api.get(`/api/jobs/${put.data.apply.job_id}`)).data.finished, { what: 'the unmanage job' });
    await page.reload();
    await page.waitForSelector('[data-not-gated]');
    assert.match(await page.locator('[data-not-gated]').innerText(), /no longer gated by mrgate/);
    assert.equal(await page.locator('button[data-action="bypass"]').count(), 0);
    await shot(page, 'gate-not-gated');
    // the list of runs says it too, beside the verdict GitLab no longer shows
    await go(`#/gates?repo=${repo.id}`, `tr[data-gate="${gate.id}"]`);
    assert.match(await page.locator(`tr[data-gate="${gate.id}"] [data-not-gated]`).innerText(), /^repository no longer gated$/);
    assert.equal((await api.del(`/api/repos/${repo.id}/config`)).status, 200);
  });

  it('says what a sync repaired: a hook GitLab disabled on a gated repository', async () => {
    const repo = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=gated&limit=1`)).data.items[0];
    const hooks = await sim.get('/__sim/hooks');
    const ours = (Array.isArray(hooks) ? hooks : hooks.items || []).find((x) => x.project_id === repo.id && x.url.endsWith('/hooks/gitlab'));
    assert.ok(ours, `mrgate's hook on ${repo.path_with_namespace}`);
    await sim.post(`/__sim/hooks/${ours.id}/disable`, { alert_status: 'disabled' });
    await go('#/connection', '[data-panel="sync"] [data-sync-state="done"]');
    const before = (await api.get('/api/sync')).data.id;
    await page.locator('[data-panel="sync"] button[data-action="sync"]').click();
    const follow = page.locator('[data-panel="sync"] [data-sync-follow]');
    await until(async () => (await api.get('/api/sync')).data.id > before && /1 repaired/.test(await follow.innerText().catch(() => '')),
      { timeout: 60000, what: 'the sync panel to say what the sync repaired' });
    const text = await follow.innerText();
    assert.match(text, new RegExp(`1 repaired \\(${repo.path_with_namespace}\\)`));
    assert.match(text, /0 newly gated, none failed\. Job #\d+/);
    await shot(page, 'sync-repaired');
    await go('#/settings', '[data-panel="resync"]');
    assert.match(await page.locator('[data-panel="resync"] [data-sync-follow]').innerText(), /1 repaired/);
  });

  it('ignores a rule for a group from the gate report, marking every finding it covers', async () => {
    const first = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=gated&limit=1`)).data.items[0];
    const repo = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&status=gated&limit=20`)).data.items.find((r) => r.id !== first.id && r.config.fail_on === 'medium');
    assert.ok(repo, 'a second gated repository');
    // a Trojan-source path: a right-to-left override would show "a|b`cyp." instead of what the file is named
    const tricky = 'src/a|b`c\u202e.py';
    const keys = [['AKIA', 'Q2W3E4R5T6Y7U8I9'], ['AKIA', 'M1N2B3V4C5X6Z7L8']].map((k) => k.join(''));
    const leak = ['glpat-', 'Xk9Pq2mZr7Lw4Tb8Nc3V'].join('');
    await sim.post('/__sim/merge_requests', { project_id: repo.id, title: 'Add fixtures', files: [
      { path: tricky, content: `A = '${keys[0]}'  # \u2066x\u2069\nB = '${keys[1]}'\n` },
      { path: 'cfg/token.py', content: `T = '${leak}'\n` }] });
    const gate = await until(async () => (await api.get(`/api/gates?repo=${repo.id}`)).data.items.find((x) => x.state === 'done' && x.verdict === 'failed'), { timeout: 60000, what: 'the failed run of the fixtures' });
    const g = (await api.get(`/api/gates/${gate.id}`)).data;
    const aws = g.findings.find((f) => f.path === tricky);
    assert.ok(aws, JSON.stringify(g.findings.map((f) => [f.path, f.rule_id])));
    const ofRule = g.findings.filter((f) => f.rule_id === aws.rule_id);
    const others = g.findings.filter((f) => f.rule_id !== aws.rule_id);
    assert.ok(ofRule.length >= 2 && others.length >= 1, JSON.stringify(g.findings.map((f) => [f.path, f.rule_id])));
    await go(`#/gates/${gate.id}`, '[data-table="findings"] tr[data-finding]');
    const table = page.locator('[data-table="findings"]');
    // bidi controls are shown, not obeyed: in the path and in the excerpt
    const text = await table.innerText();
    assert.ok(text.includes('src/a|b`c<U+202E>.py'), text);
    assert.ok(!/[\u202a-\u202e\u2066-\u2069]/.test(text), `a bidi control is in the page: ${JSON.stringify(text)}`);
    // each finding's full fingerprint, to copy into "/mrgate ignore <fingerprint> <reason>"
    for (const f of g.findings) assert.equal((await table.locator(`[data-fingerprint="${f.fingerprint}"]`).innerText()).trim(), f.fingerprint);
    // every finding of the rule, for the subgroup
    await table.locator(`tr[data-finding="${aws.rule_id}"] button[data-action="ignore"]`).first().click();
    const modal = page.locator('[role="dialog"][data-modal="ignore"]');
    await modal.getByLabel('What', { exact: true }).selectOption('rule');
    await modal.getByLabel('Where', { exact: true }).selectOption(`group:${SUBGROUP}`);
    await modal.getByLabel('Reason (shown in the report and the merge request note)').fill('fixtures of the team');
    await modal.getByRole('button', { name: 'Ignore' }).click();
    await modal.waitFor({ state: 'detached' });
    assert.match(await page.locator('.toast').last().innerText(), new RegExp(`every finding of rule ${aws.rule_id} in group ${SUBGROUP}`));
    assert.equal(await table.locator(`tr[data-finding="${aws.rule_id}"] [data-ignored-next]`).count(), ofRule.length);
    assert.equal(await table.locator(`tr[data-finding="${aws.rule_id}"] button[data-action="ignore"]`).count(), 0);
    assert.equal(await table.locator('button[data-action="ignore"]').count(), others.length, 'the other rule is not covered');
    await shot(page, 'gate-rule-ignored');
    // the ignores page: the repository is named by its path, no stray text, the finding's path shown as it is; a
    // repository filter the user types
    const one = await api.post('/api/ignores', { fingerprint: aws.fingerprint, repo_id: repo.id, reason: 'this one for good' });
    assert.equal(one.status, 201, JSON.stringify(one.data));
    await go(`#/ignores?repo=${repo.id}`, '[data-table="ignores"] tr[data-ignore]');
    const listed = await page.locator(`tr[data-ignore="${one.data.id}"]`).innerText();
    assert.ok(listed.includes(`src/a|b\`c<U+202E>.py:${aws.line}`), listed);
    await page.waitForSelector(`[data-filter="repo"]:has-text("${repo.path_with_namespace}")`);
    assert.doesNotMatch(await page.locator('main').innerText(), /\bnull\b/);
    await go('#/ignores', '[data-table="ignores"] tr[data-ignore]');
    assert.doesNotMatch(await page.locator('main').innerText(), /\bnull\b/);
    await page.getByLabel('Repository', { exact: true }).fill(repo.path_with_namespace);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(new RegExp(`#/ignores\\?(.*&)?repo=${repo.id}(&|$)`));
    await page.waitForSelector(`[data-filter="repo"]:has-text("${repo.path_with_namespace}")`);
    await page.waitForSelector('[data-table="ignores"] tr[data-ignore]');
    assert.match(await page.locator('[data-table="ignores"]').innerText(), /fixtures of the team/);
    assert.doesNotMatch(await page.locator('[data-table="ignores"]').innerText(), /the example key of our docs/);
    // a path that is no repository says so
    await page.getByLabel('Repository', { exact: true }).fill('acme/no-such-repo');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No repository acme/no-such-repo').waitFor();
    await shot(page, 'ignores-repo-filter');
  });

  it('selects a small group as a whole from the header box: its config, new repos included', async () => {
    const groups = (await api.get('/api/groups')).data;
    const small = groups.find((g) => g.repos >= 2 && g.repos <= 50 && g.full_path.split('/').length === 3);
    assert.ok(small, 'a subgroup whose repos fit on one page');
    await go(`#/repos?group=${encodeURIComponent(small.full_path)}`, `#repos-count:text("of ${small.repos} repositories")`);
    await page.click('input[data-select-page]');
    // a walk ticked a 23-repo subgroup and got 23 exceptions, and the group's next repo stayed ungated
    await page.waitForSelector(`[data-selected-count="${small.repos}"]:text("All ${small.repos} repositories matching this filter are selected.")`);
    await page.click('button[data-action="configure"]');
    const modal = page.locator('[role="dialog"][data-modal="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    assert.match(await modal.innerText(), new RegExp(`all ${small.repos} repositories matching the filter`));
    assert.equal(await modal.locator('[data-field="auto_gate"]').count(), 1, 'offers to gate the group\'s new repositories');
    // the dialog names the group whose config it writes
    assert.match(await modal.locator('[data-level="group"]').innerText(), new RegExp(`Stored as the config of group ${small.full_path}:`));
    await page.keyboard.press('Escape');
    await modal.waitFor({ state: 'detached' });
    // two rows ticked by hand: the dialog says they become exceptions and the group's new repos are not covered (a
    // walk learnt it from the repos list afterwards)
    await page.getByRole('button', { name: 'Clear selection' }).click();
    const picks = page.locator('tr[data-id] input[type="checkbox"]');
    await picks.nth(0).click();
    await picks.nth(1).click();
    await page.waitForSelector('[data-selected-count="2"]');
    await page.click('button[data-action="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    assert.equal(await modal.locator('[data-level="group"], [data-level="default"]').count(), 0);
    assert.match(await modal.locator('[data-level="repos"]').innerText(), /^Stored as each selected repository's own config: they become exceptions.*created later/);
    await page.keyboard.press('Escape');
    await modal.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Clear selection' }).click();
    await page.click('input[data-select-page]');
    await page.waitForSelector(`[data-selected-count="${small.repos}"]:text("All ${small.repos} repositories matching this filter are selected.")`);
    // a repository of the group with an exception: the preview says the configure replaces what it sets (a walk lost
    // an exception to a group configure without a word)
    const inGroup = (await api.get(`/api/repos?group=${encodeURIComponent(small.full_path)}&limit=1`)).data.items[0];
    assert.equal((await api.put(`/api/repos/${inGroup.id}/config`, { fail_on: 'critical' })).status, 200);
    await page.click('button[data-action="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    await modal.getByLabel('Fail the gate on severity').selectOption('low');
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    const over = modal.locator('[data-plan-overridden]');
    await over.waitFor({ timeout: 30000 });
    assert.match(await over.innerText(), /^Replaces what 1 repository exception set for the fields you change:/);
    assert.ok((await over.innerText()).includes(inGroup.path_with_namespace), await over.innerText());
    await shot(page, 'configure-overrides', { fullPage: false });
    await page.keyboard.press('Escape');
    assert.equal((await api.del(`/api/repos/${inGroup.id}/config`)).status, 200);
    await modal.waitFor({ state: 'detached' });
    // an exception added after the preview (which replaced nothing): Apply stores nothing and says what it would
    // replace; the button then says it replaces them (a walk lost an exception this way with "The job started.")
    await page.click('button[data-action="configure"]');
    await modal.locator('[data-config-form]').waitFor();
    await modal.getByLabel('Fail the gate on severity').selectOption('low');
    await modal.getByRole('button', { name: 'Preview changes' }).click();
    await modal.locator('[data-plan-summary]').waitFor({ timeout: 30000 });
    assert.equal(await modal.locator('[data-plan-overridden]').count(), 0);
    assert.equal((await api.put(`/api/repos/${inGroup.id}/config`, { fail_on: 'critical' })).status, 200);
    await modal.getByRole('button', { name: `Apply to ${small.repos}` }).click();
    const refused = modal.locator('[data-apply-overrides]');
    await refused.waitFor();
    assert.match(await refused.innerText(), /^Nothing was applied yet: applying replaces what 1 repository exception set for the fields you change:/);
    assert.ok((await refused.innerText()).includes(inGroup.path_with_namespace));
    assert.deepEqual((await api.get(`/api/repos/${inGroup.id}/config`)).data.config, { fail_on: 'critical' }, 'the exception is kept');
    assert.equal((await api.get(`/api/configs/groups/${small.full_path}`)).status, 404, 'no group config stored');
    await shot(page, 'configure-apply-overrides', { fullPage: false });
    await modal.getByRole('button', { name: `Replace them and apply to ${small.repos}` }).click();
    await modal.waitFor({ state: 'detached' });
    assert.equal((await api.get(`/api/repos/${inGroup.id}`)).data.config.fail_on, 'low');
    assert.equal((await api.del(`/api/configs/groups/${small.full_path}`)).status, 200);
    await api.del(`/api/repos/${inGroup.id}/config`);
    // the group selected as a whole belongs to its filter: another group's page (Back, a link, a typed URL) does
    // not keep it (a walk pressed Back and Configure wrote the first group's config from the second group's page)
    const other = groups.find((g) => g.full_path !== small.full_path && !g.full_path.startsWith(`${small.full_path}/`) && g.repos >= 2);
    await go(`#/repos?group=${encodeURIComponent(other.full_path)}`, `#repos-count:text("of ${other.repos} repositories")`);
    assert.equal(await page.locator('[data-selected-count]').count(), 0, 'the other group\'s page shows no selection');
    assert.ok(await page.locator('button[data-action="configure"]').isDisabled());
  });

  it('shows in the audit log what a group-level Configure did, group configs first and every change readable', async () => {
    // a walk read 12 repo lines and "and 41 more changes" that could not be opened, and no word of the subgroup
    // config the Configure removed
    const sub = `${SUBGROUP}/sub02`;
    assert.equal((await api.put(`/api/configs/groups/${sub}`, { comment: 'off' })).status, 200);
    const repos = (await api.get(`/api/repos?group=${encodeURIComponent(SUBGROUP)}&limit=14`)).data.items;
    for (const r of repos) assert.equal((await api.put(`/api/repos/${r.id}/config`, { comment: 'off' })).status, 200);
    const res = await api.post('/api/configure', { selection: { filter: { group: SUBGROUP } }, config: { comment: 'always' } });
    assert.ok([200, 202].includes(res.status), JSON.stringify(res.data));
    await go('#/audit', 'tr[data-audit-id]');
    const row = page.locator('tr[data-audit-id]').first();
    assert.equal(await row.locator('code').innerText(), 'config.configure');
    const lines = row.locator('[data-audit-details] > div');
    assert.match(await lines.first().innerText(), new RegExp(`^groups › ${SUBGROUP}`), 'the group\'s own change first');
    assert.equal(await row.locator('[data-removed]').first().innerText(), `groups › ${sub}: removed (it set comment: off)`);
    await row.locator('button[data-action="all-changes"]').click();
    assert.ok((await lines.count()) >= 16, 'every change shows once asked');
    assert.equal(await row.locator('button[data-action="all-changes"]').count(), 0);
    await shot(page, 'audit-configure', { fullPage: false });
  });

  it('reads a re-apply in the audit log as a re-apply, not as a configure that changed nothing', async () => {
    // a walk read "no change" on the entry of a re-apply that had GitLab checked (and repaired) every repository
    const res = await api.post('/api/configure', { selection: { filter: { group: SUBGROUP } }, reapply: true });
    assert.ok([200, 202].includes(res.status), JSON.stringify(res.data));
    await page.reload(); // the audit page is open already: read it again
    await page.waitForSelector('tr[data-audit-id]');
    const row = page.locator('tr[data-audit-id]', { has: page.locator('code', { hasText: /^config\.configure$/ }) }).first();
    assert.match(await row.innerText(), /re-apply: no config change; the selected repositories are checked on GitLab/);
  });

  it('shows every other page without breaking', async () => {
    for (const [hash, name, title] of [['#/jobs', 'jobs', 'Jobs'], ['#/configs', 'configs', 'Defaults and group configs'], ['#/settings', 'settings', 'Settings'], ['#/gates', 'gates-list', 'Gates'], ['#/ignores', 'ignores-list', 'Ignored findings'], ['#/audit', 'audit', 'Audit log']]) {
      await go(hash, `h1:text("${title}")`);
      await page.waitForFunction(() => !document.querySelector('main .spinner'));
      await shot(page, name);
    }
    await go('#/settings', '[data-panel="resync"]');
    assert.match(await page.locator('[data-last-resync]').innerText(), /done/);
    // an address that names no page says so on the Repositories page, which the address now names
    await go('#/nosuchpage', '.notice.warn:has-text("There is no page")');
    assert.equal(await page.locator('main .notice.warn[role="status"]').innerText(), 'There is no page "#/nosuchpage": here is the Repositories page.');
    assert.equal(await page.evaluate(() => location.hash), '#/repos');
    await page.waitForSelector('tr[data-id]');
    await shot(page, 'no-such-page', { fullPage: false });
  });

  it('switches the webhook mode as a job and shows why GitLab refused it', async () => {
    await go('#/settings', '[data-panel="settings"]');
    await page.locator('select[name="hook_mode"]').selectOption('group');
    const answered = page.waitForResponse((r) => r.url().endsWith('/api/settings') && r.request().method() === 'PUT');
    await page.getByRole('button', { name: 'Save settings' }).click();
    const res = await answered;
    assert.equal(res.status(), 202, 'the request does not wait for GitLab: the switch is a job');
    const job = (await res.json()).hook_mode_job;
    assert.equal(job.kind, 'hookmode');
    await page.locator(`[data-hook-mode-job="${job.id}"]`).waitFor();
    // the token is Maintainer on acme, not Owner: the job refuses and the page says so; project mode stays
    const outcome = page.locator('[data-hook-mode-outcome]');
    await outcome.waitFor({ timeout: 30000 });
    assert.equal(await outcome.getAttribute('data-hook-mode-outcome'), 'refused');
    assert.match(await outcome.innerText(), /not switched.*not Owner/s);
    assert.equal(await page.locator('select[name="hook_mode"]').inputValue(), 'project');
    const j = (await api.get(`/api/jobs/${job.id}`)).data;
    assert.equal(j.failed, 1);
    assert.match(j.items[0].message, /not Owner/);
    await shot(page, 'settings-hook-mode-refused');
  });

  it('saves only what was changed on the settings page', async () => {
    await go('#/settings', '[data-panel="settings"]');
    const before = (await api.get('/api/settings')).data;
    // another admin changes the resync interval after this page was loaded: a save of the fail mode put it back
    const other = before.resync_interval === 3600 ? 1800 : 3600;
    assert.equal((await api.put('/api/settings', { resync_interval: other })).status, 200);
    const fail = before.fail_mode === 'closed' ? 'open' : 'closed';
    await page.locator('select[name="fail_mode"]').selectOption(fail);
    const answered = page.waitForResponse((r) => r.url().endsWith('/api/settings') && r.request().method() === 'PUT');
    await page.getByRole('button', { name: 'Save settings' }).click();
    const res = await answered;
    assert.equal(res.status(), 200);
    assert.deepEqual(JSON.parse(res.request().postData()), { fail_mode: fail });
    const after = (await api.get('/api/settings')).data;
    assert.equal(after.resync_interval, other, "the other admin's change stays");
    assert.equal(after.fail_mode, fail);
    assert.equal((await api.put('/api/settings', { resync_interval: before.resync_interval, fail_mode: before.fail_mode })).status, 200);
  });

  it('asks before saving a config with a scan type that has no scanner here', async () => {
    while (await page.locator('[role="dialog"]').count()) await page.keyboard.press('Escape');
    const before = (await api.get('/api/configs/default')).data.config;
    await go('#/configs', 'form[aria-label="Default config"]');
    const form = page.locator('form[aria-label="Default config"]');
    // the box says so before the user saves (a walk only learned it from the question after Save)
    const sast = form.getByLabel('SAST — no scanner on this server', { exact: true });
    assert.equal(await form.getByLabel('Secrets', { exact: true }).count(), 1, 'secrets has its built-in scanner');
    await sast.check();
    let asked = null;
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await form.getByRole('button', { name: 'Save default' }).click();
    await until(() => asked !== null, { what: 'the question about the missing scanner' });
    assert.match(asked, /No scanner on this server for sast: every merge request/);
    assert.doesNotMatch(asked, /confirm_no_scanner/);
    assert.deepEqual((await api.get('/api/configs/default')).data.config, before, 'nothing saved when told to stop');
    // told to save anyway: saved, and the page says so
    page.once('dialog', (d) => d.accept());
    await form.getByRole('button', { name: 'Save default' }).click();
    await page.waitForSelector('.toast:has-text("The default config was saved.")');
    assert.ok((await api.get('/api/configs/default')).data.config.scans.includes('sast'));
    assert.equal((await api.put('/api/configs/default', { ...before, confirm_no_scanner: true })).status, 200);
    await shot(page, 'configs-no-scanner-saved');
  });

  it('is usable in a narrow window', async () => {
    while (await page.locator('[role="dialog"]').count()) await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 420, height: 860 });
    await go('#/repos', 'tr[data-id]');
    assert.equal(await page.locator('#sidebar').isVisible(), false);
    assert.equal(await page.locator('.group-select select').isVisible(), true);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scroll of the page (${overflow}px)`);
    await shot(page, 'repos-narrow');
    await page.click('#menu-toggle');
    await page.waitForSelector('#sidebar.open');
    await shot(page, 'nav-narrow');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('shows a viewer the repositories without buttons that only an editor may use', async () => {
    const made = await api.post('/api/users', { username: 'viv', password: 'viv-password-1', role: 'viewer' });
    assert.equal(made.status, 201, JSON.stringify(made.data));
    const { page: vp, problems: vproblems } = await newPage(browser);
    await logIn(vp, `${mrgate.base}/#/login`, 'viv', 'viv-password-1');
    await vp.waitForSelector('tr[data-id]');
    await vp.locator('tr[data-id] input[type="checkbox"]').first().check();
    const configure = vp.locator('button[data-action="configure"]');
    await until(async () => /\(1\)/.test(await configure.textContent()), { what: 'the selection to count 1' });
    assert.equal(await configure.isDisabled(), true, 'Configure Scans is disabled for a viewer');
    assert.match(await configure.getAttribute('title'), /editor/);
    for (const b of await vp.locator('button[data-action="sync"]').all()) assert.equal(await b.isDisabled(), true, 'Sync now is disabled for a viewer');
    await vp.evaluate(() => { location.hash = '#/configs'; });
    const save = vp.getByRole('button', { name: 'Save default' });
    await save.waitFor();
    assert.equal(await save.isDisabled(), true, 'Save default is disabled for a viewer');
    await vp.getByText('Only an editor or an admin can change configs.').waitFor();
    await shot(vp, 'viewer-configs');
    assert.deepEqual(vproblems, []);
    await vp.context().close();
  });

  it('lets a viewer change their own password, and says what is wrong first', async () => {
    // a walk: only an admin could change a password, so a viewer or an editor could not rotate theirs
    const { page: vp, problems: vproblems } = await newPage(browser, {
      expected: [{ method: 'PUT', path: /^\/api\/session\/password$/, status: 400, error: 'wrong_password' }],
    });
    await logIn(vp, `${mrgate.base}/#/login`, 'viv', 'viv-password-1');
    await vp.waitForSelector('tr[data-id]');
    await vp.getByRole('button', { name: 'Change password' }).click();
    const dlg = vp.locator('[role="dialog"][data-modal="password"]');
    await dlg.waitFor();
    const err = dlg.locator('[data-password-error]');
    await dlg.getByLabel('Current password').fill('viv-password-1');
    await dlg.getByLabel('New password', { exact: true }).fill('viv-password-2');
    await dlg.getByLabel('New password again').fill('viv-password-3');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    assert.match(await err.innerText(), /The two new passwords differ/);
    // a wrong current password: the server's answer, in words, and nothing changed
    await dlg.getByLabel('Current password').fill('not-my-passphrase');
    await dlg.getByLabel('New password again').fill('viv-password-2');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    await until(async () => /The current password is wrong/.test(await err.innerText()), { what: 'the wrong-password message' });
    await shot(vp, 'password-wrong', { fullPage: false });
    await dlg.getByLabel('Current password').fill('viv-password-1');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    await dlg.waitFor({ state: 'detached' });
    await vp.getByText(/Your password changed: your other sessions were ended/).waitFor();
    // still signed in here; the new password is the one that logs in
    assert.equal((await vp.evaluate(async () => (await fetch('/api/session')).status)), 200);
    assert.equal((await api.post('/api/session', { username: 'viv', password: 'viv-password-1' })).status, 401);
    assert.equal((await api.post('/api/session', { username: 'viv', password: 'viv-password-2' })).status, 200);
    assert.deepEqual(vproblems, []);
    await vp.context().close();
  });

  it('logged no console errors and no unexpected HTTP errors', () => {
    assert.deepEqual(problems, []);
  });
});
