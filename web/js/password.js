// "Change password" in the top bar: any signed-in user changes their own password (admins reset others' on the
// Users page). The server checks the current password through the login throttle and ends the user's other sessions.
import { put, ApiError } from './api.js';
import { h, openModal, field, toast } from './ui.js';

// Whether the text repeats a unit of at most half its characters ("aaaaaaaa", "abababab"), as the server refuses.
function repeats(text) {
  const cp = [...text];
  for (let unit = 1; unit <= cp.length / 2; unit++) {
    let i = unit;
    while (i < cp.length && cp[i] === cp[i - unit]) i++;
    if (i === cp.length) return true;
  }
  return false;
}

export function openChangePassword() {
  const current = h('input', { type: 'password', name: 'current_password', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: '8', required: true });
  const again = h('input', { type: 'password', name: 'new_password_again', autocomplete: 'new-password', required: true });
  const err = h('div.notice.error', { hidden: true, role: 'alert', 'data-password-error': '' });
  const save = h('button.primary', { type: 'submit' }, 'Change password');
  const form = h('form', { 'data-password-form': '', novalidate: true },
    field('Current password', current),
    field('New password', next, 'at least 8 characters, not a common password or word, a keyboard walk or run (qwer1234) or your name with digits; your other sessions are ended'),
    field('New password again', again),
    err,
    h('div.actions', save));
  const m = openModal({ title: 'Change your password', body: form });
  m.dialog.dataset.modal = 'password';
  current.focus();
  const fail = (text) => {
    err.textContent = text;
    err.hidden = false;
    err.scrollIntoView({ block: 'nearest' });
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    if (!current.value) return fail('Enter your current password.');
    if ([...next.value].length < 8) return fail('The new password needs at least 8 characters.');
    if (repeats(next.value)) return fail('The new password repeats one character or a short pattern: choose another.');
    if (next.value !== again.value) return fail('The two new passwords differ: type the same one twice.');
    if (next.value === current.value) return fail('The new password is the current one: choose another.');
    save.disabled = true;
    try {
      const res = await put('/api/session/password', { current_password: current.value, new_password: next.value });
      m.close();
      toast(res && res.message ? `Your ${res.message}` : 'Your password was changed.');
    } catch (ex) {
      fail(ex instanceof ApiError && ex.code === 'wrong_password' ? 'The current password is wrong: nothing was changed.' : ex.message);
    } finally {
      save.disabled = false;
    }
  });
}
