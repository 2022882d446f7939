// #/platforms/{id}: one platform — status, tenants tree, activations
// (activate, switch version, deactivate), API keys (create with the secret
// shown once, revoke) and branding.

import { api, listAll } from './api.js';
import { h, fill, field, errorBox, showError, clearError, busy, when } from './dom.js';
import { brandingSection } from './branding.js';

const enc = encodeURIComponent;

// A section whose body `load()` rebuilds; errors of its actions go in its
// own alert box.
function section(id, title) {
  const err = errorBox(id + '-error');
  const body = h('div', { class: 'section-body' });
  const el = h('section', { id: id + '-section', 'aria-labelledby': id + '-title' },
               h('h2', { id: id + '-title' }, title), err, body);
  return { el, err, body };
}

// Run an action of a section: errors shown there (a 401 is the sign-in's).
function act(button, s, fn) {
  return busy(button, async () => {
    clearError(s.err);
    try { await fn(); } catch (e) { if (e.status !== 401) showError(s.err, e); }
  });
}

function head(p, pid, onChange) {
  const verb = p.status === 'suspended' ? 'resume' : 'suspend';
  const err = errorBox('platform-error');
  const btn = h('button', { type: 'button', id: 'platform-' + verb, dataset: { action: verb } },
                verb === 'suspend' ? 'Suspend platform' : 'Resume platform');
  btn.addEventListener('click', () => busy(btn, async () => {
    clearError(err);
    try { onChange((await api('POST', '/platforms/' + enc(pid) + '/' + verb)).data); } catch (e) {
      if (e.status !== 401) showError(err, e);
    }
  }));
  return h('div', { class: 'platform-head' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/platforms' }, 'Platforms'), ' / ', pid),
    h('h1', {}, p.name, ' ', h('span', { class: 'badge badge-' + p.status, id: 'platform-status' }, p.status)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Id'), h('dd', {}, p.id),
      h('dt', {}, 'Class'), h('dd', {}, p.class),
      h('dt', {}, 'Plan'), h('dd', {}, p.plan || '—'),
      h('dt', {}, 'Owner'), h('dd', {}, p.owner || '—'),
      h('dt', {}, 'Created'), h('dd', {}, when(p.created_at))),
    err, p.status === 'deleting' ? null : btn);
}

// ---- tenants ---------------------------------------------------------------

async function tenants(pid, ctx) {
  const s = section('tenants', 'Tenants');
  async function load() {
    const { items, truncated } = await listAll('/platforms/' + enc(pid) + '/tenants');
    const kids = new Map();
    for (const t of items) {
      const k = t.parent || '';
      if (!kids.has(k)) kids.set(k, []);
      kids.get(k).push(t);
    }
    const tree = (parent, depth) => {
      const list = kids.get(parent) || [];
      if (!list.length) return null;
      return h('ul', { id: depth === 0 ? 'tenants' : undefined, class: 'tree',
                       'aria-label': depth === 0 ? 'Tenants of ' + pid : undefined },
        list.map((t) => {
          const verb = t.status === 'suspended' ? 'active' : 'suspended';
          const btn = h('button', { type: 'button', class: 'small',
                                    dataset: { action: verb === 'active' ? 'resume' : 'suspend' },
                                    'aria-label': (verb === 'active' ? 'Resume ' : 'Suspend ') + t.name },
                        verb === 'active' ? 'Resume' : 'Suspend');
          btn.addEventListener('click', () => act(btn, s, async () => {
            await api('PATCH', '/platforms/' + enc(pid) + '/tenants/' + enc(t.id),
                      { json: { status: verb } });
            await load();
          }));
          return h('li', { dataset: { tenantId: t.id } },
            h('span', { class: 'tenant' }, t.name, ' ', h('code', {}, t.id), ' ',
              h('span', { class: 'badge badge-' + t.status }, t.status)), ' ', btn,
            tree(t.id, depth + 1));
        }));
    };
    const ids = items.map((t) => t.id);
    const parent = h('select', { id: 'tenant-parent', name: 'parent' },
      h('option', { value: '' }, '(none: a root tenant)'),
      items.map((t) => h('option', { value: t.id }, t.name + ' (' + t.id + ')')));
    const tid = h('input', { id: 'tenant-id', name: 'id', autocomplete: 'off', maxlength: 32 });
    const tname = h('input', { id: 'tenant-name', name: 'name', autocomplete: 'off',
                               required: true, maxlength: 128 });
    const submit = h('button', { type: 'submit' }, 'Create tenant');
    const form = h('form', { id: 'tenant-create', novalidate: true },
      h('h3', {}, 'Create a tenant'),
      field('Tenant id', tid, '2 to 32 of a–z, 0–9 and "-"; empty: one is made.'),
      field('Tenant name', tname), field('Parent', parent), submit);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(submit, s, async () => {
        if (!tname.value.trim()) throw new Error('A tenant needs a name.');
        const body = { name: tname.value.trim() };
        if (tid.value.trim()) body.id = tid.value.trim();
        if (parent.value) body.parent = parent.value;
        await api('POST', '/platforms/' + enc(pid) + '/tenants', { json: body });
        await load();
        document.getElementById('tenant-name')?.focus();
      });
    });
    fill(s.body,
      tree('', 0) || h('p', { class: 'empty', id: 'tenants-empty' }, 'No tenant yet.'),
      truncated ? h('p', { class: 'hint' }, 'Only the first ' + ids.length + ' tenants are shown.') : null,
      form);
  }
  await load();
  return s.el;
}

// ---- activations -------------------------------------------------------------

async function activations(pid) {
  const s = section('activations', 'Stacks active on this platform');
  async function load() {
    const [acts, cat] = await Promise.all([
      listAll('/platforms/' + enc(pid) + '/stacks'), listAll('/stacks')]);
    const versions = new Map(cat.items.map((c) => [c.id, c.versions || []]));
    const active = new Set(acts.items.map((a) => a.stack));
    const tbody = h('tbody', {}, acts.items.map((a) => {
      const sel = h('select', { id: 'upgrade-' + a.stack, name: 'version' },
        (versions.get(a.stack) || [a.version]).map((v) =>
          h('option', { value: v, selected: v === a.version }, v)));
      const sw = h('button', { type: 'button', dataset: { action: 'upgrade' } }, 'Switch version');
      sw.addEventListener('click', () => act(sw, s, async () => {
        await api('POST', '/platforms/' + enc(pid) + '/stacks',
                  { json: { stack: a.stack, version: sel.value } });
        await load();
      }));
      const off = h('button', { type: 'button', dataset: { action: 'deactivate' },
                                'aria-label': 'Deactivate ' + a.stack }, 'Deactivate');
      off.addEventListener('click', () => act(off, s, async () => {
        await api('DELETE', '/platforms/' + enc(pid) + '/stacks/' + enc(a.stack));
        await load();
      }));
      return h('tr', { dataset: { stack: a.stack, version: a.version } },
        h('td', {}, a.stack), h('td', {}, a.version), h('td', {}, when(a.activated_at)),
        h('td', {}, h('label', { for: sel.id, class: 'visually-hidden' },
                      'Version of ' + a.stack), sel, ' ', sw, ' ', off));
    }));
    const table = h('table', { id: 'activations' },
      h('thead', {}, h('tr', {}, ['Stack', 'Version', 'Activated', 'Actions']
        .map((t) => h('th', { scope: 'col' }, t)))), tbody);
    const stack = h('select', { id: 'activate-stack', name: 'stack' },
      cat.items.filter((c) => !active.has(c.id)).map((c) => h('option', { value: c.id }, c.id)));
    const version = h('select', { id: 'activate-version', name: 'version' });
    const fillVersions = () => fill(version,
      h('option', { value: '' }, 'Newest that fits'),
      (versions.get(stack.value) || []).map((v) => h('option', { value: v }, v)));
    stack.addEventListener('change', fillVersions);
    fillVersions();
    const submit = h('button', { type: 'submit', disabled: stack.options.length === 0 }, 'Activate');
    const form = h('form', { id: 'activate', novalidate: true },
      h('h3', {}, 'Activate a stack'), field('Stack', stack), field('Version', version), submit);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(submit, s, async () => {
        const body = { stack: stack.value };
        if (version.value) body.version = version.value;
        await api('POST', '/platforms/' + enc(pid) + '/stacks', { json: body });
        await load();
      });
    });
    fill(s.body,
      acts.items.length ? table : h('p', { class: 'empty', id: 'activations-empty' }, 'No stack is active.'),
      stack.options.length ? form : h('p', { class: 'hint' }, 'Every installed stack is active here.'));
  }
  await load();
  return s.el;
}

// ---- keys --------------------------------------------------------------------

function keyState(k) {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  return 'live';
}

async function keys(pid) {
  const s = section('keys', 'API keys');
  // The new key's secret: shown once, in this box only, until dismissed.
  const secretBox = h('div', { id: 'key-secret', class: 'secret', hidden: true,
                               role: 'status', tabindex: '-1' });
  function showSecret(k) {
    const done = h('button', { type: 'button', id: 'key-secret-done' }, 'I have copied it');
    done.addEventListener('click', () => { fill(secretBox); secretBox.hidden = true; });
    fill(secretBox,
      h('p', {}, 'Key ', h('strong', {}, k.name), ' created. Copy it now: it is shown this once ' +
        'and never stored in clear.'),
      h('p', {}, h('code', { id: 'key-secret-value' }, k.key)), done);
    secretBox.hidden = false;
    secretBox.focus();
  }
  async function load() {
    const [list, ten] = await Promise.all([
      listAll('/platforms/' + enc(pid) + '/keys'),
      listAll('/platforms/' + enc(pid) + '/tenants')]);
    const tbody = h('tbody', {}, list.items.map((k) => {
      const st = keyState(k);
      let btn = null;
      if (st === 'live') {
        btn = h('button', { type: 'button', dataset: { action: 'revoke' },
                            'aria-label': 'Revoke key ' + k.name }, 'Revoke');
        btn.addEventListener('click', () => act(btn, s, async () => {
          await api('DELETE', '/platforms/' + enc(pid) + '/keys/' + enc(k.id));
          await load();
        }));
      }
      return h('tr', { dataset: { keyId: k.id } },
        h('td', {}, h('code', {}, k.id)), h('td', {}, k.name), h('td', {}, k.tenant || 'platform-wide'),
        h('td', {}, (k.scopes || []).join(' ')), h('td', {}, when(k.created_at)),
        h('td', {}, when(k.expires_at)),
        h('td', {}, h('span', { class: 'badge badge-' + st }, st)), h('td', {}, btn));
    }));
    const table = h('table', { id: 'keys' },
      h('thead', {}, h('tr', {}, ['Id', 'Name', 'Tenant', 'Scopes', 'Created', 'Expires', 'State', 'Actions']
        .map((t) => h('th', { scope: 'col' }, t)))), tbody);
    const name = h('input', { id: 'key-name', name: 'name', required: true, maxlength: 128,
                              autocomplete: 'off' });
    const scopes = h('input', { id: 'key-scopes', name: 'scopes', required: true,
                                autocomplete: 'off', value: 'features:*' });
    const tenant = h('select', { id: 'key-tenant', name: 'tenant' },
      h('option', { value: '' }, 'Platform-wide'),
      ten.items.map((t) => h('option', { value: t.id }, t.name + ' (' + t.id + ')')));
    const expires = h('input', { id: 'key-expires', name: 'expires_in', type: 'number',
                                 min: 60, step: 1, inputmode: 'numeric' });
    const submit = h('button', { type: 'submit' }, 'Create key');
    const form = h('form', { id: 'key-create', novalidate: true },
      h('h3', {}, 'Create a key'),
      field('Key name', name),
      field('Scopes', scopes, 'Separated by spaces or commas, e.g. "tenants:read features:notes:*".'),
      field('Bound to tenant', tenant),
      field('Expires in (seconds)', expires, 'Empty: never.'),
      submit);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(submit, s, async () => {
        const list2 = scopes.value.split(/[\s,]+/).filter(Boolean);
        if (!name.value.trim()) throw new Error('A key needs a name.');
        if (!list2.length) throw new Error('A key needs at least one scope.');
        const body = { name: name.value.trim(), scopes: list2 };
        if (tenant.value) body.tenant = tenant.value;
        if (expires.value) body.expires_in = Number(expires.value);
        const r = await api('POST', '/platforms/' + enc(pid) + '/keys', { json: body });
        await load();
        showSecret(r.data);
      });
    });
    fill(s.body, secretBox,
      list.items.length ? table : h('p', { class: 'empty', id: 'keys-empty' }, 'No key yet.'),
      form);
  }
  await load();
  return s.el;
}

export async function render(el, ctx) {
  const pid = ctx.params.id;
  const r = await api('GET', '/platforms/' + enc(pid));
  const headBox = h('div');
  const setHead = (p) => fill(headBox, head(p, pid, setHead));
  setHead(r.data);
  const parts = await Promise.all([
    tenants(pid, ctx), activations(pid), keys(pid)]);
  fill(el, headBox, ...parts, brandingSection(pid, r.data.branding || {}));
}
