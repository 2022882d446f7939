// #/audit: the audit log, newest first, a page at a time (Next / Previous
// follow the API's cursors), filtered by action or target.

import { api } from './api.js';
import { h, fill, field, errorBox, showError, clearError, busy, when } from './dom.js';

const PAGE = 50;

export async function render(el) {
  const err = errorBox('audit-error');
  const tbody = h('tbody');
  const table = h('table', { id: 'audit' },
    h('caption', {}, 'Audit log, newest first'),
    h('thead', {}, h('tr', {}, ['#', 'At', 'Actor', 'Action', 'Target', 'Request id', 'Detail']
      .map((t) => h('th', { scope: 'col' }, t)))), tbody);
  const empty = h('p', { class: 'empty', id: 'audit-empty', hidden: true }, 'No entry.');
  const prev = h('button', { type: 'button', id: 'audit-prev' }, 'Previous page');
  const next = h('button', { type: 'button', id: 'audit-next' }, 'Next page');
  const where = h('p', { id: 'audit-page', role: 'status' });
  const action = h('input', { id: 'audit-action', name: 'action', autocomplete: 'off',
                              placeholder: 'platform.create' });
  const target = h('input', { id: 'audit-target', name: 'target', autocomplete: 'off',
                              placeholder: 'platform:acme' });
  const apply = h('button', { type: 'submit' }, 'Filter');
  const filter = h('form', { id: 'audit-filter', class: 'inline', novalidate: true },
    field('Action', action), field('Target', target), apply);
  // cursors[i] is the cursor of page i (null: the first page).
  let cursors = [null];
  let page = 0;
  let nextCursor = null;

  async function load() {
    const q = { limit: PAGE, cursor: cursors[page] };
    if (action.value.trim()) q.action = action.value.trim();
    if (target.value.trim()) q.target = target.value.trim();
    const r = await api('GET', '/audit', { query: q });
    fill(tbody, ...r.data.items.map((a) => h('tr', { dataset: { seq: a.seq } },
      h('td', {}, String(a.seq)), h('td', {}, when(a.at)), h('td', {}, a.actor),
      h('td', {}, a.action), h('td', {}, a.target || '—'),
      h('td', {}, a.request_id ? h('code', {}, a.request_id) : '—'),
      h('td', {}, a.detail ? h('code', { class: 'detail' }, JSON.stringify(a.detail)) : '—'))));
    nextCursor = r.data.next_cursor;
    next.disabled = !nextCursor;
    prev.disabled = page === 0;
    table.hidden = !r.data.items.length;
    empty.hidden = !!r.data.items.length;
    where.textContent = 'Page ' + (page + 1);
  }
  // Move (fn), load; a page that fails to load leaves the one shown.
  const go = (btn, fn) => busy(btn, async () => {
    clearError(err);
    const saved = [cursors, page];
    try { fn(); await load(); } catch (e) {
      [cursors, page] = saved;
      if (e.status !== 401) showError(err, e);
    }
  }).finally(() => { next.disabled = !nextCursor; prev.disabled = page === 0; });
  next.addEventListener('click', () => go(next, () => {
    cursors = cursors.slice(0, page + 1).concat([nextCursor]);
    page++;
  }));
  prev.addEventListener('click', () => go(prev, () => { page = Math.max(0, page - 1); }));
  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(apply, () => { cursors = [null]; page = 0; });
  });
  await load();
  fill(el, h('h1', {}, 'Audit'), filter, err, table, empty,
    h('div', { class: 'pager' }, prev, ' ', where, ' ', next));
}
