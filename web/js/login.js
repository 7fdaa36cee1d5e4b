// #/login: username and password; on success go where the user was going.
import { post, setIdentity, ApiError } from './api.js';
import { h, field, notice } from './ui.js';

export function render(main, route) {
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, value: 'admin' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { 'aria-live': 'assertive' });
  const submit = h('button.primary', { type: 'submit' }, 'Log in');
  const form = h('form.panel.login', { 'aria-labelledby': 'login-title', novalidate: true },
    h('h1#login-title', 'Log in to mrgate'),
    msg,
    field('Username', user),
    field('Password', pass),
    h('div.actions', submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.replaceChildren();
    if (!user.value.trim() || !pass.value) {
      msg.append(notice('error', 'Enter your username and password.'));
      (user.value.trim() ? pass : user).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const who = await post('/api/session', { username: user.value.trim(), password: pass.value }, { noRedirect: true });
      setIdentity(who);
      const next = route.query.get('next');
      location.hash = next && next.startsWith('/') && !next.startsWith('/login') ? `#${next}` : '#/repos';
    } catch (err) {
      const text = err instanceof ApiError && err.status === 401 ? 'Wrong username or password.' : err.message;
      msg.append(notice('error', text));
      pass.select();
      pass.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Log in';
    }
  });
  main.append(h('div.login-wrap', form));
  (user.value ? pass : user).focus();
}
