// #/stacks: the stack catalogue — every id and version, its state,
// source, isolation and how many platforms run it.

import { listAll } from './api.js';
import { h, fill, when } from './dom.js';

export async function render(el) {
  const { items, truncated } = await listAll('/stacks');
  const rows = [];
  for (const s of items) {
    const details = s.details && s.details.length ? s.details
      : (s.versions || []).map((v) => ({ version: v }));
    for (const d of details)
      rows.push(h('tr', { dataset: { stack: s.id, version: d.version } },
        h('td', {}, s.id), h('td', {}, d.version),
        h('td', {}, h('span', { class: 'badge badge-' + (d.state || 'unknown') }, d.state || '—'),
          d.error ? h('span', { class: 'detail' }, ' ' + d.error) : null),
        h('td', {}, d.source || '—'), h('td', {}, d.isolation || '—'),
        h('td', {}, d.in_use === undefined || d.in_use === null ? '—' : String(d.in_use)),
        h('td', {}, when(d.installed_at))));
  }
  const table = h('table', { id: 'stacks' },
    h('caption', {}, 'Installed stacks'),
    h('thead', {}, h('tr', {}, ['Stack', 'Version', 'State', 'Source', 'Isolation', 'Platforms', 'Installed']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows));
  fill(el, h('h1', {}, 'Stacks'),
    rows.length ? table : h('p', { class: 'empty', id: 'stacks-empty' }, 'No stack is installed.'),
    truncated ? h('p', { class: 'hint' }, 'Only the first ' + items.length + ' stacks are shown.') : null,
    h('p', { class: 'hint' }, 'Install a stack archive with "nno stack install FILE" or POST /api/v1/stacks.'));
}
