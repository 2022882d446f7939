// The operator view's entry: sign-in with the operator key, hash routing
// (#/platforms, #/platforms/{id}, #/stacks, #/audit) and the states shown
// instead of a blank page. Views are modules exporting
// render(el, ctx) → Promise; they own `el` until the next route.

import { api, getKey, setKey, forgetKey, onUnauthorized } from './api.js';
import { h, field, errorBox, showError, clearError, busy } from './dom.js';

const routes = [
  { pattern: /^\/platforms$/, name: '/platforms', module: './platforms.js' },
  { pattern: /^\/platforms\/([a-z0-9-]{1,64})$/, name: '/platforms/{id}',
    module: './platform.js', params: ['id'] },
  { pattern: /^\/stacks$/, name: '/stacks', module: './stacks.js' },
  { pattern: /^\/audit$/, name: '/audit', module: './audit.js' },
];

const main = document.getElementById('main');
const topbar = document.getElementById('op-topbar');
let generation = 0; // a newer route wins over a slower older one

function ready() {
  document.documentElement.dataset.admin = 'ready';
}

// The sentence for a credential the core API refused.
export function refusalText(err) {
  if (err.status === 401)
    return 'The key was refused: it is not a valid operator key (it may have been rotated).';
  if (err.status === 403)
    return 'This credential is not the operator key. A platform\'s API key or a ' +
      'user\'s session cannot use the operator view: ' + (err.message || '');
  return err.message;
}

// Replace the page's content with a state: `kind` names it
// (data-state: unauthorized, forbidden, error, not-found).
function showState(kind, text, err) {
  const box = h('div', { id: 'op-state', role: 'alert', dataset: { state: kind } },
                h('p', {}, text));
  if (err && err.requestId)
    box.append(h('p', { class: 'rid' }, 'Request id: ', h('code', {}, err.requestId)));
  main.replaceChildren(box);
  ready();
}

function signIn(message) {
  topbar.hidden = true;
  const input = h('input', { id: 'op-key', name: 'key', type: 'password',
                             autocomplete: 'off', spellcheck: 'false', required: true });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const err = errorBox('op-error');
  const form = h('form', { id: 'op-sign-in', novalidate: true },
    h('h1', {}, 'nno operator'),
    h('p', {}, 'Sign in with the host\'s operator key (the file operator.key ' +
      'in the data folder). It is kept in this tab only, until you sign out.'),
    field('Operator key', input),
    err, submit);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showError(err, new Error('Type the operator key.'));
      input.focus();
      return;
    }
    busy(submit, async () => {
      clearError(err);
      try {
        // The check is the operator API itself: only the operator may list
        // platforms.
        await api('GET', '/platforms', { key, query: { limit: 1 } });
      } catch (e) {
        showError(err, { ...e, message: refusalText(e) });
        input.select();
        return;
      }
      setKey(key);
      input.value = '';
      if (!location.hash || location.hash === '#/sign-in') location.hash = '#/platforms';
      else route();
    });
  });
  main.replaceChildren(h('section', { id: 'op-view', dataset: { route: '/sign-in' } }, form));
  if (message) showError(err, { message });
  input.focus();
  ready();
}

function signOut() {
  forgetKey();
  generation++;
  location.hash = '#/sign-in';
  signIn();
}

function markNav(path) {
  for (const a of topbar.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').slice(1);
    if (path === target || path.startsWith(target + '/')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// `moved`: the hash changed (not the first load): focus goes to the new
// view, so keyboard and screen-reader users land on what was opened.
async function route(moved) {
  const gen = ++generation;
  if (!getKey()) return signIn();
  topbar.hidden = false;
  let path = location.hash.replace(/^#/, '') || '/platforms';
  if (path === '/sign-in' || path === '/') {
    history.replaceState(null, '', '#/platforms');
    path = '/platforms';
  }
  markNav(path);
  const r = routes.find((x) => x.pattern.test(path));
  if (!r) return showState('not-found', 'There is no such page in the operator view.');
  const m = path.match(r.pattern);
  const params = {};
  (r.params || []).forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
  const view = h('section', { id: 'op-view', dataset: { route: r.name } },
                 h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  main.replaceChildren(view);
  try {
    const mod = await import(r.module);
    if (gen !== generation) return;
    await mod.render(view, { params, path, navigate, current: () => gen === generation });
  } catch (e) {
    if (gen !== generation) return;
    if (e.status === 401) return; // onUnauthorized took over
    if (e.status === 403) return showState('forbidden', refusalText(e), e);
    if (e.status === 404) return showState('not-found', e.message, e);
    return showState('error', 'This page could not be shown: ' + e.message, e);
  }
  if (gen !== generation) return;
  if (moved === true) main.focus();
  ready();
}

function navigate(path) {
  location.hash = '#' + path;
}

onUnauthorized(() => {
  forgetKey();
  generation++;
  signIn('The operator key was refused: it may have been rotated. Sign in again.');
});

document.getElementById('op-sign-out').addEventListener('click', signOut);
window.addEventListener('hashchange', () => route(true));
route();
