// #/audit: who changed what, when (connection, configs, settings, jobs), newest first, paged.
import { qs, getOptional } from './api.js';
import { h, clear, fmtDate, errorNotice, unavailable, loading, pageHead } from './ui.js';

export async function render(main) {
  main.append(pageHead('Audit log', 'Every change made through the dashboard, the API or the command line.'));
  const box = h('div', loading());
  const more = h('button', { type: 'button', hidden: true, 'data-action': 'older' }, 'Older entries');
  main.append(box, h('div.pager', h('span'), more));
  const tbody = h('tbody');
  let cursor = null;
  let first = true;
  let busy = false;
  const load = async () => {
    // one page at a time: a second click while a slow page loaded appended it twice
    if (busy) return;
    busy = true;
    more.disabled = true;
    try { await loadPage(); } finally { busy = false; more.disabled = false; }
  };
  const loadPage = async () => {
    const res = await getOptional(`/api/audit${qs({ cursor, limit: 100 })}`).catch((e) => ({ error: e }));
    if (first) clear(box);
    if (res.error) { box.append(errorNotice(res.error)); return; }
    if (!res.available) { box.append(unavailable('The audit log')); return; }
    const items = Array.isArray(res.data) ? res.data : res.data.items || [];
    if (first) {
      if (!items.length) { box.append(h('p.empty', 'Nothing has been changed yet.')); return; }
      box.append(h('div.table-wrap', h('table.data', { 'aria-label': 'Audit log', 'data-table': 'audit' },
        h('thead', h('tr', ['When', 'Who', 'Action', 'Target', 'Details'].map((t) => h('th', { scope: 'col' }, t)))), tbody)));
    }
    first = false;
    for (const a of items) {
      tbody.append(h('tr', { 'data-audit-id': a.id },
        h('td.nowrap', fmtDate(a.at || a.created_at)),
        h('td', a.actor || a.username || '—'),
        h('td', h('code', a.action || '—')),
        h('td', a.target || a.object || '—'),
        h('td.small', details(a))));
    }
    cursor = res.data && res.data.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', load);
  await load();
}

const REMOVED = Symbol('removed');
const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);

// The leaves that differ between before and after, as [path, before, after] ("repos › acme/web › fail_on"); a
// config that is gone altogether is one entry whose after is REMOVED (a group config a Configure left empty).
function diffLeaves(b, af, path = [], out = []) {
  if (isObj(b) && (af === undefined || af === null) && path.length > 1) out.push([path, b, REMOVED]);
  else if (isObj(b) || isObj(af)) {
    const bb = isObj(b) ? b : {}, aa = isObj(af) ? af : {};
    for (const k of [...new Set([...Object.keys(bb), ...Object.keys(aa)])]) diffLeaves(bb[k], aa[k], [...path, k], out);
  } else if (JSON.stringify(b ?? null) !== JSON.stringify(af ?? null)) out.push([path, b, af]); // absent = null: "not set" both
  return out;
}

const fmtValue = (v) => (v === undefined || v === null ? 'not set' : Array.isArray(v) ? (v.length ? v.join(', ') : 'none') : String(v));

// the default and group configs before the repos': what a group-level change did comes first
const rank = (p) => (p[0] === 'repos' ? 2 : p[0] === 'default' ? 0 : 1);

// what a removed config held ("enabled: true, fail_on: low"): a walk read only "removed"
const heldText = (x) => {
  const c = x && typeof x === 'object' && !Array.isArray(x) ? (x.config && typeof x.config === 'object' ? x.config : x) : null;
  const entries = c ? Object.entries(c).filter(([, v]) => v === null || typeof v !== 'object' || Array.isArray(v)) : [];
  return entries.length ? ` (it set ${entries.map(([k, v]) => `${k}: ${fmtValue(v)}`).join(', ')})` : '';
};

function leafLine([p, x, y]) {
  const name = h('strong', `${p.filter((k) => k !== 'config').join(' › ')}: `);
  return y === REMOVED ? h('div', { 'data-removed': '' }, name, `removed${heldText(x)}`) : h('div', name, `${fmtValue(x)} → ${fmtValue(y)}`);
}

// a group config change that stopped gating repositories says how many, and that it was confirmed
function ungatedLine(a) {
  const n = a.details && typeof a.details.ungated === 'number' ? a.details.ungated : 0;
  if (n <= 0) return null;
  return h('div', { 'data-audit-ungated': String(n) }, h('strong', 'stopped gating: '),
    `${n} ${n === 1 ? 'repository' : 'repositories'}${a.details.confirm_ungate ? ' (confirmed)' : ''}`);
}

function details(a) {
  const b = a.before, af = a.after;
  if (!b && !af) return a.message || (a.details && a.details.message) || '';
  const leaves = diffLeaves(b, af).map((l, i) => [l, i]).sort((x, y) => rank(x[0][0]) - rank(y[0][0]) || x[1] - y[1]).map((x) => x[0]);
  if (!leaves.length) {
    // a re-apply stores no config: it has GitLab checked (its repairs are the reapply.repair entry after it)
    return h('span.muted', a.details && a.details.reapply ? 're-apply: no config change; the selected repositories are checked on GitLab' : 'no change');
  }
  const box = h('span', { 'data-audit-details': '' }, ungatedLine(a), leaves.slice(0, 12).map(leafLine));
  if (leaves.length > 12) {
    // every change can be read: a walk could not see what a group-level Configure did past the first 12
    const all = h('button.link.small', { type: 'button', 'data-action': 'all-changes' }, `and ${leaves.length - 12} more changes: show all`);
    // one by one: spread into append, an import's 200,000 changes overflowed the call stack
    all.addEventListener('click', () => { all.remove(); for (const l of leaves.slice(12)) box.append(leafLine(l)); });
    box.append(h('div', all));
  }
  return box;
}
