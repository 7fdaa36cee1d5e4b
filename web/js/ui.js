// Small DOM helpers shared by the pages: element builder, badges, toasts, notices, modal dialogs and menus.
import { ApiError } from './api.js';

// h('div.panel#id', {attrs}, children...) — children may be strings, nodes, arrays, null.
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM, not an inline style attribute: allowed by the CSP
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'indeterminate') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const STATUS_LABELS = {
  ungated: 'ungated',
  gated: 'gated',
  exception: 'exception',
  applying: 'applying',
  error: 'error',
  hook_disabled: 'hook disabled by GitLab',
  new: 'new',
  archived: 'archived',
  pending_deletion: 'pending deletion',
  removed: 'removed',
  unmanaged: 'unmanaged',
};

// A link target from GitLab (web_url): only an absolute http(s) URL, else null (a hostile GitLab must not plant a
// script or data URL in an href).
export function httpUrl(u) {
  if (typeof u !== 'string') return null;
  try {
    const url = new URL(u);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch {
    return null;
  }
}

export function badge(status, label) {
  const s = String(status || 'unknown');
  return h(`span.badge.${s.replace(/[^\w-]/g, '_')}`, { 'data-status': s }, label || STATUS_LABELS[s] || s.replace(/_/g, ' '));
}

export function sevBadge(sev) {
  const s = String(sev || 'unknown').toLowerCase();
  return h(`span.badge.sev-${s.replace(/[^\w-]/g, '_')}`, s);
}

export function fmtNum(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : n === undefined || n === null ? '—' : String(n);
}

export function fmtDate(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  return d.toISOString().replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

export function fmtAgo(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return String(s);
  const sec = (Date.now() - d.getTime()) / 1000;
  const fut = sec < 0;
  const a = Math.abs(sec);
  let v;
  if (a < 60) v = `${Math.round(a)} s`;
  else if (a < 3600) v = `${Math.round(a / 60)} min`;
  else if (a < 86400) v = `${Math.round(a / 3600)} h`;
  else v = `${Math.round(a / 86400)} days`;
  return fut ? `in ${v}` : `${v} ago`;
}

// A relative time ("3 min ago") that keeps counting while the page stays open: every <time data-ago> on the page
// is written again every 15 s (one timer for the whole page).
export function time(s) {
  return h('time', { datetime: s || undefined, title: s ? fmtDate(s) : undefined, 'data-ago': s ? '' : undefined }, fmtAgo(s));
}

setInterval(() => {
  for (const t of document.querySelectorAll('time[data-ago]')) {
    const v = fmtAgo(t.getAttribute('datetime'));
    if (t.textContent !== v) t.textContent = v;
  }
}, 15000);

export function toast(message, kind) {
  const box = document.getElementById('toasts');
  const t = h(`div.toast${kind === 'error' ? '.error' : ''}`, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

export function notice(kind, ...content) {
  return h(`div.notice.${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, ...content);
}

export function errorNotice(e) {
  if (e instanceof ApiError) return notice('error', h('strong', e.code === 'network' ? 'No answer' : `Error (${e.status || 'network'})`), ': ', e.message);
  return notice('error', String(e && e.message ? e.message : e));
}

export function unavailable(what) {
  return h('div.unavailable', { 'data-unavailable': 'true' },
    h('strong', `${what} is not available in this version of mrgate.`), ' ',
    'The server does not provide this API yet; nothing is shown rather than something made up.');
}

export function loading(text = 'Loading…') {
  return h('p.muted', { role: 'status' }, h('span.spinner', { 'aria-hidden': 'true' }), ' ', text);
}

export function pageHead(title, subtitle, ...actions) {
  return h('div.page-head', h('div.grow', h('h1', title), subtitle ? h('p.muted', subtitle) : null), actions.length ? h('div.actions', actions) : null);
}

// A labelled form field. control gets an id if it has none.
let fieldSeq = 0;
export function field(label, control, hint) {
  if (!control.id) control.id = `f${++fieldSeq}`;
  let hintEl = null;
  if (hint) {
    hintEl = h('span.hint', { id: `${control.id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div.field', h('label', { for: control.id }, label), control, hintEl);
}

// A field whose text may hold at most max characters (code points, as the server counts them). A paste is never cut
// (a walk's 250-character reason was cut to 200 without a word): the hint counts, and turns red past the limit.
export function countedField(label, input, max) {
  const f = field(label, input, `0 of ${max} characters`);
  const hint = f.querySelector('.hint');
  input.addEventListener('input', () => {
    const n = [...input.value].length;
    hint.textContent = n > max ? `${n} characters: at most ${max}` : `${n} of ${max} characters`;
    hint.classList.toggle('over', n > max);
  });
  return f;
}

// Why the text of input is refused before it is sent (what: "reason"), or null.
export function tooLong(input, max, what) {
  const n = [...input.value].length;
  return n > max ? `The ${what} has ${n} characters; shorten it to ${max}.` : null;
}

// Bidi controls and invisible marks shown as <U+XXXX>, never obeyed: a path like "a|b`c\u202e.py" must not read as
// "a|b`cyp." (Trojan source). For text from GitLab or a scanned repository: paths, excerpts, MR titles, group
// names, status descriptions.
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
export const visible = (s) => String(s ?? '').replace(INVISIBLE, (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(([v, l]) => h('option', { value: v, selected: String(v) === String(value) }, l)));
}

// --- modal dialog with a focus trap; Escape, the close button and leaving the page close it ---------------------
export function openModal({ title, body, footer, onClose, wide }) {
  const opener = document.activeElement;
  const titleId = `modal-title-${++fieldSeq}`;
  const closeBtn = h('button.link.icon', { type: 'button', 'aria-label': 'Close' }, '×');
  const dialog = h('div.modal', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, style: wide ? 'width:min(980px,100%)' : undefined },
    h('div.modal-head', h('h2', { id: titleId }, title), closeBtn),
    h('div.body', body),
    footer ? h('div.modal-foot', footer) : null);
  const backdrop = h('div.modal-backdrop', dialog);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    backdrop.remove();
    document.removeEventListener('keydown', onKey, true);
    if (onClose) onClose();
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  };
  const focusables = () => [...dialog.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])')]
    .filter((el) => el.offsetParent !== null || el === document.activeElement);
  const onKey = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === 'Tab') {
      const f = focusables();
      if (!f.length) return;
      const first = f[0], last = f[f.length - 1];
      if (e.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  closeBtn.addEventListener('click', close);
  backdrop.addEventListener('mousedown', (e) => { if (e.target === backdrop) close(); });
  document.addEventListener('keydown', onKey, true);
  document.body.append(backdrop);
  onLeave(close); // a dialog belongs to its page: navigating away (Back, a link) closes it
  const first = dialog.querySelector('.body input, .body select, .body textarea, .body button') || closeBtn;
  first.focus();
  return { close, dialog };
}

// --- a "⋯" menu button with arrow-key navigation ---------------------------------------------------------------
export function menuButton(label, items) {
  const btn = h('button.link.icon', { type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': label, title: label }, '⋯');
  const wrap = h('span.menu-wrap', btn);
  let menu = null;
  // The menu floats over the page (position: fixed), below the button or, without room there, above it: inside a
  // scrolling box (the table's) it was cut off at the box's edge, with one row showing only its first item.
  const place = () => {
    if (!menu) return;
    const r = btn.getBoundingClientRect();
    const mh = menu.offsetHeight, mw = menu.offsetWidth;
    const below = innerHeight - r.bottom - 8 >= mh || r.top - 8 < mh;
    menu.style.top = `${Math.max(4, below ? r.bottom + 4 : r.top - mh - 4)}px`;
    menu.style.left = `${Math.max(4, Math.min(r.right - mw, innerWidth - mw - 4))}px`;
  };
  const close = (refocus) => {
    if (!menu) return;
    menu.remove();
    menu = null;
    btn.setAttribute('aria-expanded', 'false');
    window.removeEventListener('scroll', place, true);
    window.removeEventListener('resize', place);
    document.removeEventListener('mousedown', outside, true);
    document.removeEventListener('touchstart', outside, true);
    document.removeEventListener('keydown', onEscape, true);
    if (refocus) btn.focus();
  };
  const outside = (e) => { if (!wrap.contains(e.target)) close(false); };
  // Escape closes the menu wherever the focus is (a tap on a phone leaves it on the page, not in the menu)
  const onEscape = (e) => { if (e.key === 'Escape' && menu) { e.preventDefault(); e.stopPropagation(); close(true); } };
  const open = () => {
    menu = h('div.menu.floating', { role: 'menu', 'aria-label': label },
      items.map((it) => h('button', {
        type: 'button', role: 'menuitem', tabindex: '-1',
        onclick: () => { close(true); it.action(); },
      }, it.label)));
    menu.addEventListener('keydown', (e) => {
      const list = [...menu.querySelectorAll('[role="menuitem"]')];
      const i = list.indexOf(document.activeElement);
      if (e.key === 'ArrowDown') { e.preventDefault(); list[(i + 1) % list.length].focus(); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); list[(i - 1 + list.length) % list.length].focus(); }
      else if (e.key === 'Home') { e.preventDefault(); list[0].focus(); }
      else if (e.key === 'End') { e.preventDefault(); list[list.length - 1].focus(); }
      else if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(true); }
      else if (e.key === 'Tab') close(false);
    });
    wrap.append(menu);
    place();
    window.addEventListener('scroll', place, true);
    window.addEventListener('resize', place);
    btn.setAttribute('aria-expanded', 'true');
    document.addEventListener('mousedown', outside, true);
    document.addEventListener('touchstart', outside, true);
    document.addEventListener('keydown', onEscape, true);
    menu.querySelector('[role="menuitem"]').focus();
  };
  btn.addEventListener('click', () => (menu ? close(true) : open()));
  btn.addEventListener('keydown', (e) => { if (e.key === 'ArrowDown' && !menu) { e.preventDefault(); open(); } });
  return wrap;
}

// A dashboard-wide "the page went away" signal: pages register cleanups (timers) here.
const cleanups = [];
export function onLeave(fn) {
  cleanups.push(fn);
}
export function runLeave() {
  while (cleanups.length) {
    try { cleanups.pop()(); } catch { /* a cleanup never breaks navigation */ }
  }
}
