// mrgate dashboard: the hash router, the session check and the page frame (navigation, banner, logout).
import { get, del, setIdentity, getIdentity, onUnauthorized, hasSessionHint, setSessionHint } from './js/api.js';
import { clear, runLeave, errorNotice, notice } from './js/ui.js';
import { renderBanner } from './js/banner.js';

const pages = {
  login: () => import('./js/login.js'),
  connection: () => import('./js/connection.js'),
  repos: () => import('./js/repos.js'),
  jobs: () => import('./js/jobs.js'),
  configs: () => import('./js/configs.js'),
  settings: () => import('./js/settings.js'),
  gates: () => import('./js/gates.js'),
  ignores: () => import('./js/ignores.js'),
  audit: () => import('./js/audit.js'),
  users: () => import('./js/users.js'),
};

const TITLES = {
  login: 'Log in', connection: 'Connection', repos: 'Repositories', jobs: 'Jobs', configs: 'Defaults & groups',
  settings: 'Settings', gates: 'Gates', ignores: 'Ignored findings', audit: 'Audit log', users: 'Users',
};

// "#/jobs/12?x=1" -> {name: 'jobs', args: ['12'], query: URLSearchParams}
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'repos', args: parts.slice(1), query: new URLSearchParams(query) };
}

let sessionChecked = false;
let missingPage = null; // "#/nosuchpage" was asked for: the Repositories page says so once
let sessionProbe = null;
let navSeq = 0;

// Ask the server who we are, once. Without the hint that a login happened in this browser, go straight to the
// login page rather than probe (a 401 in the console on every first visit helps nobody).
async function ensureSession() {
  if (sessionChecked) return getIdentity();
  if (!hasSessionHint()) {
    sessionChecked = true;
    return null;
  }
  // Render at once and learn who we are (and the CSRF token) in parallel: a stale session answers 401 to the
  // page's first request as well, which sends the user to the login page.
  if (!sessionProbe) {
    sessionProbe = get('/api/session')
      .then((who) => { setIdentity(who); showWho(); })
      .catch(() => { setIdentity(null); setSessionHint(false); });
  }
  sessionChecked = true;
  setIdentity({ username: '', pending: true });
  return getIdentity();
}

function showWho() {
  const who = getIdentity();
  document.getElementById('who').textContent = who && who.username ? `Signed in as ${who.username}` : '';
  // pages only admins may use are listed for admins only (the server enforces the roles either way)
  for (const el of document.querySelectorAll('[data-admin-only]')) el.hidden = !(who && who.role === 'admin');
}

function frame(loggedIn, name) {
  document.getElementById('app').classList.toggle('no-nav', !loggedIn);
  showWho();
  document.getElementById('logout').hidden = !loggedIn;
  document.getElementById('change-password').hidden = !loggedIn;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const sidebar = document.getElementById('sidebar');
  sidebar.classList.remove('open');
  document.getElementById('menu-toggle').setAttribute('aria-expanded', 'false');
  if (!loggedIn) clear(document.getElementById('banners'));
}

async function route() {
  const seq = ++navSeq;
  runLeave();
  const r = parseHash();
  const who = await ensureSession();
  if (seq !== navSeq) return;
  if (!who && r.name !== 'login') {
    const next = location.hash && !location.hash.startsWith('#/login') ? location.hash.slice(1) : '';
    location.replace(`#/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
    return;
  }
  if (who && r.name === 'login') {
    location.replace('#/repos');
    return;
  }
  if (!pages[r.name]) {
    // an address that names no page (a typo, an old bookmark): say so on the Repositories page, not silently
    missingPage = r.name;
    location.replace('#/repos');
    return;
  }
  const name = r.name;
  frame(!!who, name);
  document.title = `${TITLES[name]} · mrgate`;
  const main = document.getElementById('main');
  let mod;
  try {
    mod = await pages[name]();
  } catch (e) {
    clear(main).append(errorNotice(e));
    return;
  }
  if (seq !== navSeq) return;
  clear(main);
  main.dataset.page = name;
  try {
    await mod.render(main, r, { isCurrent: () => seq === navSeq });
  } catch (e) {
    if (seq === navSeq) main.append(errorNotice(e));
  }
  if (missingPage && seq === navSeq) {
    main.prepend(notice('warn', `There is no page "#/${missingPage}": here is the Repositories page.`));
    missingPage = null;
  }
  // after the page's own data, so that its first rows never wait for the banner's requests
  if (who && seq === navSeq) renderBanner(name);
}

onUnauthorized(() => {
  sessionChecked = true;
  if (!location.hash.startsWith('#/login')) {
    const next = location.hash.slice(1);
    location.hash = `#/login${next ? `?next=${encodeURIComponent(next)}` : ''}`;
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await del('/api/session');
  } catch { /* logged out either way */ }
  setIdentity(null);
  setSessionHint(false);
  location.hash = '#/login';
});

document.getElementById('change-password').addEventListener('click', async () => {
  const { openChangePassword } = await import('./js/password.js');
  openChangePassword();
});

document.getElementById('menu-toggle').addEventListener('click', (e) => {
  const sb = document.getElementById('sidebar');
  const open = !sb.classList.contains('open');
  sb.classList.toggle('open', open);
  e.currentTarget.setAttribute('aria-expanded', String(open));
  if (open) sb.querySelector('a').focus();
});

window.addEventListener('hashchange', route);
if (!location.hash) location.replace('#/repos');
route();
