// #/platforms: the platforms table (paged), create, suspend/resume.

import { api } from './api.js';
import { h, fill, field, errorBox, showError, clearError, busy, when } from './dom.js';

function statusCell(p) {
  return h('td', { dataset: { status: p.status } },
           h('span', { class: 'badge badge-' + p.status }, p.status));
}

// One row; its button suspends or resumes and paints the row again.
function row(p, err) {
  const tr = h('tr', { dataset: { platformId: p.id } });
  const paint = (pl) => {
    const verb = pl.status === 'suspended' ? 'resume' : 'suspend';
    const btn = h('button', { type: 'button', dataset: { action: verb },
                              'aria-label': (verb === 'suspend' ? 'Suspend ' : 'Resume ') + pl.id },
                  verb === 'suspend' ? 'Suspend' : 'Resume');
    btn.addEventListener('click', () => busy(btn, async () => {
      clearError(err);
      try {
        const r = await api('POST', '/platforms/' + encodeURIComponent(pl.id) + '/' + verb);
        paint(r.data);
      } catch (e) { if (e.status !== 401) showError(err, e); }
    }));
    fill(tr,
      h('td', {}, h('a', { href: '#/platforms/' + encodeURIComponent(pl.id) }, pl.id)),
      h('td', {}, pl.name),
      h('td', {}, pl.class),
      statusCell(pl),
      h('td', {}, pl.plan || '—'),
      h('td', {}, when(pl.created_at)),
      h('td', {}, pl.status === 'deleting' ? '—' : btn));
  };
  paint(p);
  return tr;
}

export async function render(el, ctx) {
  const err = errorBox('platforms-error');
  const tbody = h('tbody');
  const table = h('table', { id: 'platforms' },
    h('caption', {}, 'Platforms'),
    h('thead', {}, h('tr', {}, ['Id', 'Name', 'Class', 'Status', 'Plan', 'Created', 'Actions']
      .map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const empty = h('p', { id: 'platforms-empty', class: 'empty', hidden: true },
                  'No platform yet: create the first one below.');
  const more = h('button', { type: 'button', id: 'platforms-more', hidden: true }, 'Show more');
  let cursor = null;

  async function load() {
    const r = await api('GET', '/platforms', { query: { limit: 50, cursor } });
    for (const p of r.data.items) tbody.append(row(p, err));
    cursor = r.data.next_cursor;
    more.hidden = !cursor;
    empty.hidden = tbody.children.length > 0;
    table.hidden = tbody.children.length === 0;
  }
  more.addEventListener('click', () => busy(more, async () => {
    clearError(err);
    try { await load(); } catch (e) { if (e.status !== 401) showError(err, e); }
  }));

  // Create: id (optional: the registry makes one), name, stacks.
  const id = h('input', { id: 'platform-id', name: 'id', autocomplete: 'off',
                          pattern: '[a-z0-9-]{3,32}', maxlength: 32 });
  const name = h('input', { id: 'platform-name', name: 'name', required: true,
                            maxlength: 128, autocomplete: 'off' });
  const stacks = h('input', { id: 'platform-stacks', name: 'stacks', autocomplete: 'off',
                              value: 'default' });
  const cerr = errorBox('platform-create-error');
  const done = h('p', { id: 'platform-create-done', role: 'status', class: 'ok' });
  const submit = h('button', { type: 'submit' }, 'Create platform');
  const form = h('form', { id: 'platform-create', novalidate: true },
    h('h2', {}, 'Create a platform'),
    field('Id', id, '3 to 32 of a–z, 0–9 and "-"; empty: one is made.'),
    field('Name', name),
    field('Stacks', stacks, 'Comma-separated, each "id" or "id@version"; empty: none.'),
    cerr, submit, done);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      clearError(cerr);
      done.textContent = '';
      if (!name.value.trim()) {
        showError(cerr, new Error('A platform needs a name.'));
        name.focus();
        return;
      }
      const body = { name: name.value.trim() };
      if (id.value.trim()) body.id = id.value.trim();
      const list = stacks.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (list.length) body.stacks = list;
      try {
        const r = await api('POST', '/platforms', { json: body });
        tbody.prepend(row(r.data, err));
        empty.hidden = true;
        table.hidden = false;
        done.textContent = 'Platform ' + r.data.id + ' created.';
        id.value = '';
        name.value = '';
      } catch (e) { if (e.status !== 401) showError(cerr, e); }
    });
  });

  await load();
  fill(el, h('h1', {}, 'Platforms'), err, table, empty, more, form);
}
