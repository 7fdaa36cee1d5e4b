// #/users (admins): dashboard users with their roles, disabling, password resets and deletion; API tokens with
// revocation. Every change is audited by the server; a disabled user's sessions and tokens stop at once.
import { get, post, patch, del, qs, getIdentity, knownIdentity, ApiError } from './api.js';
import { h, clear, badge, field, select, errorNotice, notice, loading, pageHead, toast, fmtDate, time, fmtNum, openModal } from './ui.js';

const ROLES = [['viewer', 'Viewer: reads everything'], ['editor', 'Editor: configs, configure and apply, jobs'], ['admin', 'Admin: also connection, settings, users']];
const ROLE_NAMES = { viewer: 'Viewer', editor: 'Editor', admin: 'Admin' };

export async function render(main) {
  main.append(pageHead('Users', 'Who may use mrgate and what each may change. Every change is in the audit log.'));
  const who = getIdentity();
  if (who && !who.pending && who.role && who.role !== 'admin') {
    main.append(notice('info', 'Only admins manage users. Ask an admin to change your role.'));
    return;
  }
  const usersBox = h('section.panel', { 'aria-labelledby': 'users-title', 'data-panel': 'users' }, h('h2#users-title', 'Users'), loading());
  const addBox = h('section.panel.narrow', { 'aria-labelledby': 'add-user-title', 'data-panel': 'add-user' });
  const tokensBox = h('section.panel', { 'aria-labelledby': 'tokens-title', 'data-panel': 'tokens' }, h('h2#tokens-title', 'API tokens'), loading());
  main.append(usersBox, addBox, tokensBox);
  const reload = async () => {
    await Promise.all([showUsers(usersBox, reload), showTokens(tokensBox, reload)]);
  };
  showAdd(addBox, reload);
  try {
    await reload();
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      clear(main).append(pageHead('Users'), notice('info', 'Only admins manage users. Ask an admin to change your role.'));
      return;
    }
    throw e;
  }
}

// Every page of a list, following next_cursor.
async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(`${path}${qs({ limit: 200, cursor })}`);
    items.push(...(page.items || []));
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

async function showUsers(box, reload) {
  const users = await all('/api/users');
  const me = (await knownIdentity()) || {}; // after a reload the probe may still be out: "you" must be known
  const msg = h('div', { 'aria-live': 'assertive' });
  const tbody = h('tbody');
  for (const u of users) {
    const self = u.username === me.username;
    const role = select(ROLES.map(([v]) => [v, ROLE_NAMES[v]]), u.role, { 'aria-label': `Role of ${u.username}`, name: 'role', disabled: self || undefined, 'data-action': 'role' });
    role.addEventListener('change', () => change(u, { role: role.value }, `${u.username} is now ${ROLE_NAMES[role.value].toLowerCase()}.`, msg, reload, () => { role.value = u.role; }));
    const toggle = h('button.small', { type: 'button', 'data-action': u.disabled ? 'enable' : 'disable', disabled: self || undefined },
      u.disabled ? 'Enable' : 'Disable');
    toggle.addEventListener('click', () => change(u, { disabled: !u.disabled }, u.disabled ? `${u.username} can log in again.` : `${u.username} is disabled: their sessions and tokens stopped.`, msg, reload));
    const reset = h('button.small', { type: 'button', 'data-action': 'password' }, 'Reset password…');
    reset.addEventListener('click', () => resetPassword(u, msg, reload));
    const remove = h('button.small.danger', { type: 'button', 'data-action': 'delete', disabled: self || undefined }, 'Delete');
    remove.addEventListener('click', async () => {
      if (!confirm(`Delete ${u.username}? Their sessions and API tokens end with them.`)) return;
      try {
        await del(`/api/users/${u.id}`);
        toast(`${u.username} was deleted.`);
        await reload();
      } catch (e) {
        clear(msg).append(errorNotice(e));
      }
    });
    tbody.append(h('tr', { 'data-user': u.username, 'data-disabled': String(!!u.disabled) },
      h('td', h('strong', u.username), self ? h('span.muted', ' (you)') : null),
      h('td', role),
      h('td', { 'data-cell': 'state' }, u.disabled ? badge('error', 'disabled') : badge('gated', 'active')),
      h('td.nowrap', u.last_seen_at ? time(u.last_seen_at) : h('span.muted', 'never')),
      h('td.num', fmtNum(u.tokens)),
      h('td.nowrap', toggle, ' ', reset, ' ', remove)));
  }
  clear(box).append(h('h2#users-title', 'Users'), msg,
    h('div.table-wrap', h('table.data', { 'aria-label': 'Users', 'data-table': 'users' },
      h('thead', h('tr', ['User', 'Role', 'State', 'Last seen', 'Tokens', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))), tbody)));
}

async function change(u, body, done, msg, reload, undo) {
  clear(msg);
  try {
    await patch(`/api/users/${u.id}`, body);
    toast(done);
    await reload();
  } catch (e) {
    if (undo) undo();
    msg.append(errorNotice(e));
  }
}

function resetPassword(u, msg, reload) {
  const pass = h('input', { type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: 8, required: true });
  const err = h('div', { 'aria-live': 'assertive' });
  const save = h('button.primary', { type: 'submit', form: 'reset-password-form' }, 'Set password');
  const form = h('form#reset-password-form', { novalidate: true }, err,
    field('New password', pass, 'at least 8 characters, not a common password or word, a keyboard walk or run (qwer1234) or the name with digits; the user\'s sessions end and they log in with the new one'));
  const modal = openModal({ title: `Reset the password of ${u.username}`, body: form, footer: save });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(err);
    if ([...pass.value].length < 8) {
      err.append(notice('error', 'The password needs at least 8 characters.'));
      pass.focus();
      return;
    }
    save.disabled = true;
    try {
      await patch(`/api/users/${u.id}`, { password: pass.value });
      modal.close();
      toast(`The password of ${u.username} was reset.`);
      await reload();
    } catch (ex) {
      err.append(errorNotice(ex));
      save.disabled = false;
    }
  });
  pass.focus();
}

function showAdd(box, reload) {
  const name = h('input', { type: 'text', name: 'username', autocomplete: 'off', required: true, maxlength: 64 });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const role = select(ROLES, 'viewer', { name: 'role' });
  const msg = h('div', { 'aria-live': 'assertive' });
  const submit = h('button.primary', { type: 'submit' }, 'Add user');
  const form = h('form', { 'data-form': 'add-user', novalidate: true }, msg,
    field('Username', name, 'letters, digits and . _ @ -'),
    field('Password', pass, 'at least 8 characters, not a common password or word, a keyboard walk or run (qwer1234) or the name with digits; tell the user through a safe channel'),
    field('Role', role),
    h('div.actions', submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    submit.disabled = true;
    try {
      const u = await post('/api/users', { username: name.value.trim(), password: pass.value, role: role.value });
      toast(`${u.username} was added as ${ROLE_NAMES[u.role].toLowerCase()}.`);
      name.value = '';
      pass.value = '';
      await reload();
    } catch (ex) {
      msg.append(errorNotice(ex));
    } finally {
      submit.disabled = false;
    }
  });
  clear(box).append(h('h2#add-user-title', 'Add a user'), form);
}

async function showTokens(box, reload) {
  const tokens = await all('/api/tokens');
  const msg = h('div', { 'aria-live': 'assertive' });
  clear(box).append(h('h2#tokens-title', 'API tokens'), msg,
    h('p.small.muted', 'Scripts authenticate with "Authorization: Bearer <token>". Create one with ', h('code', 'mrgate token create USER NAME'), '; only its last characters are shown here.'));
  if (!tokens.length) {
    box.append(h('p.empty', 'No API tokens.'));
    return;
  }
  const tbody = h('tbody');
  for (const t of tokens) {
    const revoke = h('button.small.danger', { type: 'button', 'data-action': 'revoke' }, 'Revoke');
    revoke.addEventListener('click', async () => {
      if (!confirm(`Revoke the token "${t.name}" of ${t.username}? Scripts using it stop at once.`)) return;
      try {
        await del(`/api/tokens/${t.id}`);
        toast(`The token "${t.name}" was revoked.`);
        await reload();
      } catch (e) {
        clear(msg).append(errorNotice(e));
      }
    });
    tbody.append(h('tr', { 'data-token': `${t.username}/${t.name}` },
      h('td', t.username), h('td', t.name), h('td', h('code', t.hint)),
      h('td.nowrap', fmtDate(t.created_at)), h('td.nowrap', t.last_used_at ? time(t.last_used_at) : h('span.muted', 'never')),
      h('td', revoke)));
  }
  box.append(h('div.table-wrap', h('table.data', { 'aria-label': 'API tokens', 'data-table': 'tokens' },
    h('thead', h('tr', ['User', 'Name', 'Token', 'Created', 'Last used', ''].map((x) => h('th', { scope: 'col', title: x === 'Last used' ? 'recorded at most once a minute per token' : undefined }, x)))), tbody)));
}
