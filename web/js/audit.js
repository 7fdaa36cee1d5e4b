// #/audit: who changed what, when (connection, configs, settings, jobs), newest first, paged.
import { qs, getOptional } from './api.js';
import { h, clear, fmtDate, errorNotice, unavailable, loading, pageHead } from './ui.js';

export async function render(main) {
  main.append(pageHead('Audit log', 'Every change made through the dashboard, the API or the command line.'));
  const box = h('div', loading());
  const more = h('button', { type: 'button', hidden: true }, 'Older entries');
  main.append(box, h('div.pager', h('span'), more));
  const tbody = h('tbody');
  let cursor = null;
  let first = true;
  const load = async () => {
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
      tbody.append(h('tr',
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

function details(a) {
  const b = a.before, af = a.after;
  if (!b && !af) return a.message || '';
  const fmt = (v) => (v === undefined || v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  if (b && af && typeof b === 'object' && typeof af === 'object') {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(af)])].filter((k) => JSON.stringify(b[k]) !== JSON.stringify(af[k]));
    if (keys.length) return h('span', keys.map((k) => h('div', h('strong', `${k}: `), `${fmt(b[k])} → ${fmt(af[k])}`)));
  }
  return h('details', h('summary', 'before / after'), h('pre.small', JSON.stringify({ before: b, after: af }, null, 1)));
}
