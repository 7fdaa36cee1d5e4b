// Harness of the browser tests: the GitLab simulator, a fresh PostgreSQL database, `mrgate serve` and Debian's
// Chromium driven by playwright-core, all on free loopback ports, stopped at the end. Screenshots go to
// $MRGATE_BUILD_DIR/e2e-screenshots/<name>.png. Every console error and page error is collected; a test fails on
// any, except the few HTTP answers listed as expected (an empty state such as "no connection yet").
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const ADMIN_PASSWORD = 'correct horse battery staple';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`test setup: ${name} is not set (run the tests through 'make test' or ctest)`);
  return v;
}

const BUILD_DIR = process.env.MRGATE_BUILD_DIR || path.resolve('build');
const SOURCE_DIR = process.env.MRGATE_SOURCE_DIR || path.resolve('.');
const procs = [];

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function workdir(name) {
  const d = path.join(BUILD_DIR, 'test-work', `e2e-${name}`);
  fs.mkdirSync(d, { recursive: true });
  return fs.mkdtempSync(path.join(d, 'run-'));
}

export function screenshotDir() {
  const d = path.join(BUILD_DIR, 'e2e-screenshots');
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function startProc(argv, logPath, extraEnv) {
  const log = fs.openSync(logPath, 'a');
  const logStart = fs.fstatSync(log).size; // the log is appended to across restarts: this run's part starts here
  const p = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...extraEnv }, stdio: ['ignore', log, log], detached: true });
  const rec = { p, argv, logPath, logStart, exited: false, code: null };
  p.on('exit', (code, sig) => { rec.exited = true; rec.code = code ?? sig; });
  procs.push(rec);
  return rec;
}

export function tail(rec, n = 4000) {
  try {
    const s = fs.readFileSync(rec.logPath, 'utf8');
    return s.slice(-n);
  } catch {
    return '';
  }
}

function logThisRun(rec) {
  try {
    return fs.readFileSync(rec.logPath).subarray(rec.logStart).toString('utf8');
  } catch {
    return '';
  }
}

// Waits until url answers and own(response) says the answer comes from rec's process: another test's server may
// hold the free port we picked, and its answer must not count as ours.
async function waitHttp(url, rec, own, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (rec.exited) throw new Error(`${rec.argv[0]} exited early (${rec.code}):\n${tail(rec)}`);
    try {
      const r = await fetch(url);
      if (await own(r)) return r.status;
      last = new Error('another process answers on this port');
      await new Promise((res) => setTimeout(res, 50));
    } catch (e) {
      last = e;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${last}`);
}

export async function stopAll() {
  for (const rec of procs.reverse()) {
    if (rec.exited) continue;
    try { process.kill(-rec.p.pid, 'SIGTERM'); } catch { /* gone */ }
    const t0 = Date.now();
    while (!rec.exited && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    if (!rec.exited) { try { process.kill(-rec.p.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  procs.length = 0;
}

process.on('exit', () => {
  for (const rec of procs) if (!rec.exited) { try { process.kill(-rec.p.pid, 'SIGKILL'); } catch { /* gone */ } }
});

// --- the GitLab simulator -------------------------------------------------------------------------------------
export class Sim {
  static async start(name, args = []) {
    const s = new Sim();
    s.dir = workdir(name);
    s.port = await freePort();
    s.base = `http://127.0.0.1:${s.port}`;
    s.proc = startProc([env('GITLAB_SIM_BIN'), '--listen', `127.0.0.1:${s.port}`, '--allow-local-hooks', ...args], path.join(s.dir, 'gitlab-sim.log'));
    await waitHttp(`${s.base}/__sim/health`, s.proc, async (r) => r.status === 200 && (await r.json()).pid === s.proc.p.pid);
    return s;
  }

  async call(method, p, body) {
    const send = () => fetch(this.base + p, { method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
    let r;
    try {
      r = await send();
    } catch (e) {
      // the simulator (CivetWeb) closes an idle kept-alive connection (keep_alive_timeout_ms) sooner than Node's
      // fetch lets it go: a request sent on it as it closes fails ("fetch failed", seen once in make test-asan while
      // polling GET /__sim/hooks). A read of the simulator's state is sent once more; a write is never.
      if (method !== 'GET' || !(e instanceof TypeError)) throw e;
      r = await send();
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!r.ok) throw new Error(`simulator ${method} ${p} -> ${r.status}: ${text}`);
    return data;
  }

  post(p, body) { return this.call('POST', p, body || {}); }
  get(p) { return this.call('GET', p); }
}

// --- PostgreSQL -------------------------------------------------------------------------------------------------
function psql(url, sql) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function freshDatabase(name) {
  const admin = env('MRGATE_TEST_DATABASE_URL');
  const db = `t_e2e_${name}_${process.pid}`.toLowerCase();
  psql(admin, `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  psql(admin, `CREATE DATABASE "${db}"`);
  // a libpq URL may have an empty host (a Unix socket), which WHATWG URL refuses: replace the path by hand
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)(\/[^?#]*)?(.*)$/i.exec(admin);
  if (!m) throw new Error(`MRGATE_TEST_DATABASE_URL is not a URL: ${admin}`);
  return `${m[1]}/${db}${m[3]}`;
}

// --- mrgate -----------------------------------------------------------------------------------------------------
export class Mrgate {
  static async start(name, extraEnv = {}) {
    const m = new Mrgate();
    m.dir = workdir(name);
    m.port = await freePort();
    m.base = `http://127.0.0.1:${m.port}`;
    m.db = freshDatabase(name);
    m.env = {
      MRGATE_DATABASE_URL: m.db,
      MRGATE_LISTEN: `127.0.0.1:${m.port}`,
      MRGATE_PUBLIC_URL: m.base,
      MRGATE_SECRET_KEY_FILE: path.join(m.dir, 'secret.key'),
      MRGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      MRGATE_WEB_ROOT: path.join(SOURCE_DIR, 'web'),
      MRGATE_LOG_LEVEL: 'debug',
      MRGATE_GITLAB_RATE_LIMIT: '0',
      ...extraEnv,
    };
    m.proc = startProc([env('MRGATE_BIN'), 'serve'], path.join(m.dir, 'mrgate.log'), m.env);
    // mrgate logs "serving on <scheme>://<listen>" once it holds the port itself.
    await waitHttp(`${m.base}/healthz`, m.proc, async () => logThisRun(m.proc).includes(`://127.0.0.1:${m.port} `));
    return m;
  }

  // An API client logged in as the admin (cookie + CSRF token), for set-up and checks outside the browser.
  async client() {
    const r = await fetch(`${this.base}/api/session`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${await r.text()}`);
    const cookie = r.headers.get('set-cookie').split(';')[0];
    const { csrf_token: csrf } = await r.json();
    const base = this.base;
    const call = async (method, p, body) => {
      const res = await fetch(base + p, { method, headers: { Cookie: cookie, 'X-CSRF-Token': csrf, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch { data = text; }
      return { status: res.status, data };
    };
    return { get: (p) => call('GET', p), post: (p, b) => call('POST', p, b || {}), put: (p, b) => call('PUT', p, b), del: (p) => call('DELETE', p) };
  }

  logs() {
    return tail(this.proc, 8000);
  }
}

// Poll fn until it returns a truthy value.
export async function until(fn, { timeout = 30000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

// Connect mrgate to the simulator's group (PUT /api/connection: 200), start a sync (POST /api/sync: 202) and wait
// until it is no longer running; asserts it ended `done` and returns the run. api: Mrgate.client().
export async function connectAndSync(api, sim, group, token, { timeout = 30000, interval = 100, what = 'the sync' } = {}) {
  const c = await api.put('/api/connection', { gitlab_url: sim.base, group, token });
  assert.equal(c.status, 200, JSON.stringify(c.data));
  const s = await api.post('/api/sync');
  assert.equal(s.status, 202, JSON.stringify(s.data));
  const run = await until(async () => {
    const r = (await api.get('/api/sync')).data;
    return r.state !== 'running' && r;
  }, { timeout, interval, what });
  assert.equal(run.state, 'done', JSON.stringify(run));
  return run;
}

// --- the browser ------------------------------------------------------------------------------------------------
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

// A page that records console errors, uncaught exceptions and failed API answers. expected: [{method, path
// (RegExp), status, error (the API's error code)}] answers that are a normal empty state, not a fault.
export async function newPage(browser, { width = 1280, height = 860, expected = [] } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems = [];
  const failedAnswers = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Chromium logs every 4xx/5xx fetch as "Failed to load resource"; those are judged by their answer below.
    if (/^Failed to load resource: the server responded with a status of \d+/.test(text)) return;
    problems.push(`console error: ${text} (${msg.location().url || ''})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('response', async (res) => {
    if (res.status() < 400) return;
    const req = res.request();
    const u = new URL(res.url());
    let code = null;
    try { code = (await res.json()).error; } catch { /* not JSON */ }
    const entry = { method: req.method(), path: u.pathname, status: res.status(), error: code };
    failedAnswers.push(entry);
    const ok = expected.some((e) => (!e.method || e.method === entry.method) && e.path.test(entry.path) && e.status === entry.status && (!e.error || e.error === entry.error));
    if (!ok) problems.push(`unexpected HTTP ${entry.status} (${entry.error || 'no error code'}) for ${entry.method} ${entry.path}`);
  });
  page.on('requestfailed', (req) => {
    const f = req.failure();
    if (f && /ERR_ABORTED/.test(f.errorText)) return; // navigation away cancels pending polls
    problems.push(`request failed: ${req.method()} ${req.url()}: ${f && f.errorText}`);
  });
  return { page, context, problems, failedAnswers };
}

// Log in through the form the page at url shows (the dashboard's own, or #/login) and wait for the repositories.
export async function logIn(page, url, username = 'admin', password = ADMIN_PASSWORD) {
  await page.goto(url);
  await page.waitForSelector('form.login');
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.press('input[name="password"]', 'Enter');
  await page.waitForSelector('h1:text("Repositories")');
}

// The whole page, or only the viewport (a modal dialog over the page) with {fullPage: false}.
export async function shot(page, name, { fullPage = true } = {}) {
  const file = path.join(screenshotDir(), `${name}.png`);
  await page.evaluate(() => document.activeElement && document.activeElement.blur && document.activeElement.closest('.modal') === null && document.activeElement.blur());
  await page.screenshot({ path: file, fullPage });
  return file;
}
