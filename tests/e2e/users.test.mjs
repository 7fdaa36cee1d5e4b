// The Users page in real Chromium (issue #12): an admin adds an editor, changes the role, resets a password,
// disables and deletes users and revokes an API token, and each change shows on the page and in the API; a viewer
// sees no Users link and is refused by the server; a repository whose stored web_url is not http(s) gets no
// javascript: link. The page runs under the server's Content-Security-Policy: any violation is a console error,
// and console errors fail the test.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Mrgate, launch, logIn, newPage, shot, stopAll, until, ADMIN_PASSWORD } from './lib.mjs';

let mrgate, api, browser, page, problems;

function cli(...args) {
  return execFileSync(process.env.MRGATE_BIN, args, { env: { ...process.env, ...mrgate.env }, input: args[3] === '--role' ? `${args[2]}-passphrase\n` : undefined }).toString();
}

async function user(name) {
  const r = await api.get('/api/users?limit=200');
  return r.data.items.find((u) => u.username === name);
}

describe('users', { timeout: 180000 }, () => {
  before(async () => {
    mrgate = await Mrgate.start('users');
    api = await mrgate.client();
    cli('user', 'add', 'vera', '--role', 'viewer');
    cli('token', 'create', 'vera', 'nightly');
    browser = await launch();
    ({ page, problems } = await newPage(browser, {
      expected: [{ method: 'GET', path: /^\/api\/connection$/, status: 404, error: 'no_connection' },
        { method: 'GET', path: /^\/api\/sync$/, status: 404, error: 'not_found' },
        // the bad user name, on purpose
        { method: 'POST', path: /^\/api\/users$/, status: 400, error: 'invalid_input' }],
    }));
    page.on('dialog', (d) => d.accept());
  });

  after(async () => {
    if (browser) await browser.close();
    await stopAll();
  });

  it('shows the Users link to an admin and lists users and tokens', async () => {
    await logIn(page, `${mrgate.base}/#/login`, 'admin', ADMIN_PASSWORD);
    const link = page.getByRole('link', { name: 'Users' });
    await link.waitFor();
    await link.click();
    await page.waitForSelector('table[data-table="users"] tr[data-user="vera"]');
    assert.equal(await page.title(), 'Users · mrgate');
    assert.equal(await page.locator('tr[data-user="vera"] select[name="role"]').inputValue(), 'viewer');
    assert.equal(await page.locator('tr[data-user="admin"] select[name="role"]').isDisabled(), true);
    await page.waitForSelector('table[data-table="tokens"] tr[data-token="vera/nightly"]');
    await shot(page, 'users');
    // opened directly (a reload): "you" are known before your own row offers anything that would only be refused
    await page.reload();
    await page.waitForSelector('table[data-table="users"] tr[data-user="admin"]');
    for (const sel of ['select[name="role"]', 'button[data-action="disable"]', 'button[data-action="delete"]']) {
      assert.equal(await page.locator(`tr[data-user="admin"] ${sel}`).isDisabled(), true, sel);
    }
    assert.match(await page.locator('tr[data-user="admin"]').innerText(), /\(you\)/);
  });

  it('adds a user and changes the role', async () => {
    const form = page.locator('form[data-form="add-user"]');
    await form.getByLabel('Username').fill('eddie');
    await form.getByLabel('Password').fill('eddie-passphrase');
    await form.getByLabel('Role').selectOption('editor');
    await form.getByRole('button', { name: 'Add user' }).click();
    await page.waitForSelector('tr[data-user="eddie"]');
    assert.equal((await user('eddie')).role, 'editor');
    await page.locator('tr[data-user="eddie"] select[name="role"]').selectOption('admin');
    await until(async () => (await user('eddie')).role === 'admin', { what: 'eddie to become admin' });
    await page.getByText('eddie is now admin.').waitFor();
    // a bad name is refused with the server's reason
    await form.getByLabel('Username').fill('bad name');
    await form.getByLabel('Password').fill('whatever-passphrase');
    await form.getByRole('button', { name: 'Add user' }).click();
    await form.getByText('username').first().waitFor();
  });

  it('resets a password', async () => {
    await page.locator('tr[data-user="eddie"] button[data-action="password"]').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('New password').fill('eddie-new-passphrase');
    await dialog.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('The password of eddie was reset.').waitFor();
    const r = await fetch(`${mrgate.base}/api/session`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'eddie', password: 'eddie-new-passphrase' }) });
    assert.equal(r.status, 200);
  });

  it('disables a user whose session stops at once, then enables them', async () => {
    const { page: vp, problems: vproblems } = await newPage(browser, {
      expected: [{ method: 'GET', path: /^\/api\/connection$/, status: 404, error: 'no_connection' },
        { method: 'GET', path: /^\/api\/sync$/, status: 404, error: 'not_found' },
        { path: /^\/api\//, status: 401, error: 'unauthorized' }],
    });
    await logIn(vp, `${mrgate.base}/#/login`, 'vera', 'vera-passphrase');
    // a viewer has no Users link, and the server refuses the page's requests
    assert.equal(await vp.getByRole('link', { name: 'Users' }).isVisible(), false);
    // nor buttons for what only an admin may change
    await vp.evaluate(() => { location.hash = '#/settings'; });
    await vp.getByText('Only an admin can change the settings.').waitFor();
    assert.equal(await vp.getByRole('button', { name: 'Save settings' }).isDisabled(), true);
    await vp.evaluate(() => { location.hash = '#/connection'; });
    await vp.getByText('Only an admin can connect one.').waitFor();
    assert.equal(await vp.locator('form[data-form="connection"]').count(), 0);
    await page.locator('tr[data-user="vera"] button[data-action="disable"]').click();
    await page.waitForSelector('tr[data-user="vera"][data-disabled="true"]');
    assert.equal((await user('vera')).disabled, true);
    // the viewer's next request is refused and the dashboard goes to the login page
    await vp.evaluate(() => { location.hash = '#/jobs'; });
    await vp.waitForSelector('form.login');
    assert.deepEqual(vproblems, []);
    await page.locator('tr[data-user="vera"] button[data-action="enable"]').click();
    await page.waitForSelector('tr[data-user="vera"][data-disabled="false"]');
    await vp.context().close();
  });

  it('revokes a token and deletes a user', async () => {
    await page.locator('tr[data-token="vera/nightly"] button[data-action="revoke"]').click();
    await until(async () => (await page.locator('tr[data-token="vera/nightly"]').count()) === 0, { what: 'the token row to go' });
    assert.equal((await api.get('/api/tokens')).data.items.length, 0);
    await page.locator('tr[data-user="vera"] button[data-action="delete"]').click();
    await until(async () => (await page.locator('tr[data-user="vera"]').count()) === 0, { what: 'the user row to go' });
    assert.equal(await user('vera'), undefined);
    const audit = (await api.get('/api/audit?limit=100')).data.items.map((a) => a.action);
    for (const a of ['user.create', 'user.update', 'user.password_reset', 'token.delete', 'user.delete']) assert.ok(audit.includes(a), `${a} in ${audit}`);
    await page.goto(`${mrgate.base}/#/audit`);
    await page.waitForSelector('table[data-table="audit"]');
    await page.getByText('user.delete').first().waitFor();
  });

  it('never links a non-http web_url', async () => {
    execFileSync('psql', ['-X', '-q', '-d', mrgate.db, '-c',
      "INSERT INTO repos (id, path, name, path_with_namespace, namespace_full_path, web_url) VALUES " +
      "(7, 'svc', 'svc', 'acme/svc', 'acme', 'javascript:alert(1)'), (8, 'web', 'web', 'acme/web', 'acme', 'https://gitlab.example.com/acme/web')"]);
    await page.goto(`${mrgate.base}/#/repos`);
    await page.waitForSelector('tr[data-id="7"]');
    assert.equal(await page.locator('tr[data-id="7"] a.path').getAttribute('href'), '#');
    assert.equal(await page.locator('tr[data-id="8"] a.path').getAttribute('href'), 'https://gitlab.example.com/acme/web');
  });

  it('had no console errors, CSP violations or unexpected answers', () => {
    assert.deepEqual(problems, []);
  });
});
