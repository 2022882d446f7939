/* The console shell: loads the platform's profile and branding, signs the
 * user in, composes the navigation from the UI contributions of the
 * packages active on the platform (GET /console/ui), and mounts each
 * feature's module on its hash route (#/notes/42), importing a module only
 * when one of its routes is first visited. The DOM it keeps (ids, states,
 * data-route, data-shell) is the contract in packages/console/README.md. */
import { h, requestId } from './dom.js';
import { createApi } from './api.js';
import { signIn, signUp } from './auth.js';

const root = document.documentElement;
const main = document.getElementById('main');

/* Everything the shell knows; seq grows on every page change so work that
 * finishes after the user moved on (an import, a mount) is dropped. */
const S = {
  profile: null, session: null, packages: [], routes: [], nav: [],
  tenants: null, tenant: '', signedIn: false, halted: false,
  cleanup: null, seq: 0, moved: false,
};

const api = createApi({ tenant: () => S.tenant, expired, suspended });

/* -- small helpers ---------------------------------------------------- */

function ready() { root.dataset.shell = 'ready'; }

function platformName() {
  return (S.profile && (S.profile.name || S.profile.id)) || 'Console';
}

/* The hash as {path, query, full}; '' and '#' are '/'. */
function here() {
  let full = location.hash.slice(1);
  try { full = decodeURI(full); } catch { /* keep it as it came */ }
  full ||= '/';
  if (full[0] !== '/') full = `/${full}`;
  const i = full.indexOf('?');
  const path = i < 0 ? full : full.slice(0, i);
  const query = new URLSearchParams(i < 0 ? '' : full.slice(i + 1));
  return { path, query, full };
}

/* Change the hash without a history entry or a hashchange event. */
function replaceHash(path) {
  history.replaceState(history.state, '', `#${path}`);
}

/* A next= target the shell may land on: a route path, not an auth view. */
function safeNext(next) {
  if (!next || next[0] !== '/' || next.startsWith('//')) return '';
  return /^\/sign-(in|up)(\?|$)/.test(next) ? '' : next;
}

function storageKey() { return `nno.tenant.${S.profile.id}`; }

function unmount() {
  S.seq++;
  const fn = S.cleanup;
  S.cleanup = null;
  if (fn) {
    try { fn(); } catch (e) { console.warn('feature cleanup failed', e); }
  }
}

/* -- states ----------------------------------------------------------- */

/* A #state block (role=alert): what happened, the request id when known,
 * and optional action buttons [{label, run}]. */
function stateBlock(kind, title, text, err, actions = []) {
  const rid = requestId(err);
  return h('div', { id: 'state', role: 'alert', class: `state state-${kind}`,
    dataset: { state: kind } },
    h('h1', { tabindex: '-1' }, title),
    h('p', null, text),
    rid && h('p', { class: 'rid' }, 'Request id: ', h('code', null, rid)),
    actions.length > 0 && h('p', { class: 'actions' }, actions.map((a) =>
      h('button', { type: 'button', onclick: a.run }, a.label))));
}

function showState(kind, title, text, err, actions) {
  unmount();
  main.replaceChildren(stateBlock(kind, title, text, err, actions));
  document.title = `${title} — ${platformName()}`;
  markNav(null);
  ready();
}

/* Stop everything: no chrome, one state, a way to try again. */
function halt(kind, title, text, err) {
  S.halted = true;
  S.signedIn = false;
  chrome(false);
  showState(kind, title, text, err,
    [{ label: 'Try again', run: () => location.reload() }]);
}

function suspended(err) {
  if (S.halted) return;
  halt('suspended', 'This platform is suspended',
    `${platformName()} has been suspended by its operator. Signing in and ` +
    'its features are unavailable until it is resumed.', err);
}

/* Any 401 while signed in: the session ended. Show the expired state above
 * the sign-in form, which brings the user back where they were. */
function expired(err) {
  if (!S.signedIn || S.halted) return;
  const at = here();
  const next = safeNext(at.full === '/' ? '' : at.full);
  const email = S.session && S.session.user && S.session.user.email;
  signedOut();
  replaceHash(`/sign-in${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  showSignIn(next, stateBlock('expired', 'Your session has ended',
    'Sign in again to continue where you were.', err), email);
}

/* A failure the shell cannot work around at boot: offline, a 5xx... */
function bootError(err) {
  const offline = err.status === 0;
  showState('error', offline ? 'Cannot reach the server' : 'Something went wrong',
    err.message, err, [{ label: 'Try again', run: boot }]);
}

/* -- chrome: top bar and navigation ----------------------------------- */

function tenantOptions() {
  const t = S.tenants || { tenant: null, items: [] };
  const items = [...(t.items || [])].sort((a, b) =>
    String(a.path).localeCompare(String(b.path)));
  const opts = t.tenant ? [] : [h('option', { value: '' }, 'All tenants')];
  for (const it of items) {
    const depth = String(it.path || '').split('/').length - 1;
    opts.push(h('option', { value: it.id, disabled: it.status !== 'active' },
      '\u00a0\u00a0'.repeat(depth) + (it.name || it.id) +
      (it.status !== 'active' ? ` (${it.status})` : '')));
  }
  return opts;
}

/* The tenant to act in: the one kept for this tab if still allowed, else
 * the credential's own (or '' for all tenants). */
function pickTenant() {
  const t = S.tenants || { tenant: null, items: [] };
  const ok = (id) => (t.items || []).some((i) => i.id === id && i.status === 'active');
  let kept = '';
  try { kept = sessionStorage.getItem(storageKey()) || ''; } catch { /* off */ }
  if (kept && ok(kept)) return kept;
  return t.tenant || '';
}

function onTenant(ev) {
  S.tenant = ev.target.value;
  try { sessionStorage.setItem(storageKey(), S.tenant); } catch { /* off */ }
  S.moved = false; /* keep focus on the switcher */
  route();
}

async function onSignOut(ev) {
  const button = ev.currentTarget;
  button.disabled = true;
  try {
    await api('POST', '/auth/sign-out');
  } catch (err) {
    if (err.status !== 401) {
      button.disabled = false;
      alertMessage(`Could not sign out: ${err.message}`);
      return;
    }
  }
  if (!S.signedIn) return; /* a 401 already showed the sign-in view */
  try { sessionStorage.removeItem(storageKey()); } catch { /* off */ }
  signedOut();
  replaceHash('/sign-in');
  showSignIn('');
}

/* A message for the whole shell (network lost, sign-out failed). */
function alertMessage(text) {
  const el = document.getElementById('shell-alert');
  if (el) el.textContent = text;
}

/* The tenant switcher, or null when there is nothing to choose: the list
 * is empty for a caller without tenants:read. A list cut at the server's
 * bound says so beside it. */
function switcher() {
  const t = S.tenants;
  if (t && !(t.items || []).length) return null;
  return h('span', { class: 'tenant' },
    h('label', { for: 'tenant-switch' }, 'Tenant'),
    h('select', { id: 'tenant-switch', onchange: onTenant,
      disabled: !t }, tenantOptions()),
    t && t.truncated && h('small', { id: 'tenant-note' },
      `first ${t.items.length} shown`));
}

/* Build (on) or remove (off) the top bar and the navigation. */
function chrome(on) {
  for (const id of ['skip', 'topbar', 'nav', 'shell-alert'])
    document.getElementById(id)?.remove();
  document.body.classList.toggle('signed-in', on);
  if (!on) return;
  const b = S.profile.branding || {};
  const user = S.session.user || {};
  const top = h('header', { id: 'topbar' },
    h('div', { class: 'brand' },
      b.logo && h('img', { id: 'brand-logo', src: b.logo, alt: platformName() }),
      h('span', { id: 'brand-name' }, platformName())),
    h('div', { class: 'tools' },
      switcher(),
      h('span', { id: 'current-user', title: user.name || null }, user.email || ''),
      h('button', { id: 'sign-out', type: 'button', onclick: onSignOut },
        'Sign out')));
  const nav = h('nav', { id: 'nav', 'aria-label': 'Features' },
    h('ul', null, S.nav.map((n) => h('li', null,
      h('a', { href: `#${n.path}`, dataset: { package: n.package } }, n.label)))));
  const skip = h('a', { id: 'skip', class: 'skip', href: '#/',
    onclick: (ev) => { ev.preventDefault(); main.focus(); } },
    'Skip to content');
  const msg = h('p', { id: 'shell-alert', role: 'alert' });
  top.append(msg);
  document.body.prepend(skip, top);
  main.before(nav);
  const sel = top.querySelector('#tenant-switch');
  if (sel) sel.value = S.tenant;
}

/* aria-current on the nav entry of this path (exact, else the longest
 * entry that is a prefix of it by segments). */
function markNav(path) {
  let best = null;
  for (const a of document.querySelectorAll('#nav a')) {
    a.removeAttribute('aria-current');
    const p = a.getAttribute('href').slice(1);
    if (path && (p === path || path.startsWith(`${p}/`)) &&
        (!best || p.length > best.getAttribute('href').length - 1))
      best = a;
  }
  best?.setAttribute('aria-current', 'page');
}

/* -- composition and routing ------------------------------------------ */

/* Routes of every package, each {pattern, parts, pkg}; nav entries sorted
 * by order (stable: stack order, then package order). */
function compose(packages) {
  S.packages = packages;
  S.routes = [];
  S.nav = [];
  for (const pkg of packages) {
    for (const r of pkg.routes || [])
      S.routes.push({ pattern: r.path, parts: r.path.split('/'), pkg });
    /* Routes hidden for lack of scope still match, so that /notes/new
     * never falls through to /notes/{id}; they show not-found. */
    for (const path of pkg.hidden || [])
      S.routes.push({ pattern: path, parts: path.split('/'), pkg, hidden: true });
    for (const n of pkg.nav || [])
      S.nav.push({ ...n, package: pkg.package, order: n.order ?? 100 });
  }
  S.nav.sort((a, b) => a.order - b.order);
}

/* The route matching path, literal segments winning over parameters from
 * the left (/notes/new before /notes/{id}); null when none does. */
function match(path) {
  const segs = path.split('/');
  let best = null;
  let bestScore = -1;
  for (const r of S.routes) {
    if (r.parts.length !== segs.length) continue;
    const params = {};
    let score = 0;
    let ok = true;
    for (let i = 0; i < segs.length && ok; i++) {
      const p = r.parts[i];
      if (p.length > 2 && p[0] === '{' && p.endsWith('}')) {
        if (!segs[i]) ok = false;
        else params[p.slice(1, -1)] = segs[i];
      } else if (p === segs[i]) {
        score += 2 ** (segs.length - i);
      } else {
        ok = false;
      }
    }
    if (ok && score > bestScore) {
      best = { ...r, params };
      bestScore = score;
    }
  }
  return best;
}

/* Where a signed-in user lands: the first nav entry, else '/'. */
function home() {
  if (S.nav.length) return S.nav[0].path;
  const r = S.routes.find((x) => !x.hidden && !x.pattern.includes('{'));
  return r ? r.pattern : '/';
}

function labelOf(pkg) {
  const n = (pkg.nav || [])[0];
  return n ? n.label : pkg.package;
}

async function mountFeature(m, at) {
  unmount();
  const seq = S.seq;
  const label = labelOf(m.pkg);
  const view = h('div', { id: 'view', 'aria-busy': 'true' },
    h('p', { class: 'loading', role: 'status' }, `Loading ${label}…`));
  main.replaceChildren(view);
  document.title = `${label} — ${platformName()}`;
  markNav(at.path);
  const focus = S.moved;
  S.moved = true;
  let mod;
  try {
    mod = await import(m.pkg.module);
    if (typeof mod.mount !== 'function') throw new Error('the module has no mount()');
  } catch (e) {
    if (seq !== S.seq) return;
    /* The import error says nothing useful: ask for the file to learn its
     * status and request id (a 401 here means the session ended). */
    let err = e;
    try { await api('GET', m.pkg.module, { headers: { Accept: '*/*' } }); } catch (e2) { err = e2; }
    if (seq !== S.seq) return;
    if (err.status === 0) {
      return showState('error', 'Cannot reach the server', err.message, null,
        [{ label: 'Try again', run: () => route() }]);
    }
    return featureError(label, `The ${label} feature could not be loaded.`, err);
  }
  if (seq !== S.seq) return;
  view.replaceChildren();
  const params = {};
  for (const [k, v] of Object.entries(m.params)) {
    try { params[k] = decodeURIComponent(v); } catch { params[k] = v; }
  }
  const ctx = {
    route: m.pattern, params, path: at.path,
    query: Object.fromEntries(at.query), api,
    navigate: (p) => { location.hash = `#${p}`; },
    platform: S.profile.id, user: S.session.user, tenant: S.tenant || null,
    scopes: m.pkg.scopes || [],
  };
  let cleanup = null;
  try {
    const r = await mod.mount(view, ctx);
    if (typeof r === 'function') cleanup = r;
  } catch (e) {
    if (seq !== S.seq) return;
    console.error(`feature ${m.pkg.package} failed`, e);
    return featureError(label, `The ${label} feature failed: ${e.message}`, e);
  }
  if (seq !== S.seq) {
    if (cleanup) try { cleanup(); } catch { /* gone anyway */ }
    return;
  }
  S.cleanup = cleanup;
  view.removeAttribute('aria-busy');
  view.dataset.route = m.pattern;
  ready();
  if (focus) {
    const t = view.querySelector('h1') || main;
    if (t !== main && !t.hasAttribute('tabindex')) t.tabIndex = -1;
    t.focus();
  }
}

function featureError(label, text, err) {
  showState('feature-error', `${label} is unavailable`,
    `${text} The rest of the console keeps working.`, err,
    [{ label: 'Try again', run: () => route() }]);
  markNav(here().path);
}

/* The sign-in view; after an expiry the email is filled in and the
 * password field has the focus. */
function showSignIn(next, notice, email) {
  unmount();
  document.title = `Sign in — ${platformName()}`;
  const form = signIn(main, { profile: S.profile, api, next, notice,
    done: start });
  if (email) form.querySelector('#email').value = email;
  ready();
  form.querySelector(email ? '#password' : '#email').focus();
}

/* Route the current hash. */
function route() {
  if (S.halted) return;
  const at = here();
  if (!S.signedIn) {
    if (at.path === '/sign-up' && S.profile.signup) {
      unmount();
      document.title = `Create an account — ${platformName()}`;
      signUp(main, { profile: S.profile, api,
        next: safeNext(at.query.get('next')), done: start })
        .querySelector('input').focus();
      return ready();
    }
    if (at.path === '/sign-in') return showSignIn(safeNext(at.query.get('next')));
    const next = safeNext(at.full === '/' ? '' : at.full);
    replaceHash(`/sign-in${next ? `?next=${encodeURIComponent(next)}` : ''}`);
    return showSignIn(next);
  }
  if (at.path === '/sign-in' || at.path === '/sign-up' || at.path === '/') {
    const to = safeNext(at.query.get('next')) || home();
    if (to !== '/') {
      replaceHash(to);
      return route();
    }
    unmount();
    main.replaceChildren(h('div', { id: 'view', dataset: { route: '/' } },
      h('h1', { tabindex: '-1' }, platformName()),
      h('p', { class: 'empty' }, 'No features are available to you on this platform yet.')));
    document.title = platformName();
    return ready();
  }
  const m = match(at.path);
  if (m && m.hidden) {
    return showState('not-found', 'Page not found',
      `You do not have access to ${at.path}.`, null,
      [{ label: 'Go to the start page', run: () => { location.hash = `#${home()}`; } }]);
  }
  if (!m) {
    return showState('not-found', 'Page not found',
      `Nothing here answers ${at.path}.`, null,
      [{ label: 'Go to the start page', run: () => { location.hash = `#${home()}`; } }]);
  }
  mountFeature(m, at);
}

/* -- boot --------------------------------------------------------------- */

function signedOut() {
  unmount();
  S.signedIn = false;
  S.session = null;
  S.tenant = '';
  chrome(false);
}

/* Operator colours, each only where set: CSS custom properties (set through
 * CSSOM, which the page's CSP allows; no inline style). */
function brandColours(b) {
  const css = { primary: '--primary', accent: '--accent',
    background: '--bg', foreground: '--fg' };
  for (const [k, v] of Object.entries(css))
    if (/^#[0-9a-fA-F]{6}$/.test(b[k] || '')) root.style.setProperty(v, b[k]);
  /* Links need contrast with the page: on an operator's background use its
   * foreground; on the default one the primary (white on it is ≥ 4.5:1,
   * so it is as legible on white). */
  if (b.background) root.style.setProperty('--link', 'var(--fg)');
  else if (b.primary) root.style.setProperty('--link', b.primary);
}

/* After sign-in (or at boot with a session): who, what, where. */
async function start() {
  try {
    S.session = (await api('GET', '/auth/session')).data;
  } catch (err) {
    if (S.halted) return;
    if (err.status === 401) return route();
    return bootError(err);
  }
  S.signedIn = true;
  let ui;
  try {
    const [c, t] = await Promise.allSettled([api('GET', '/console/ui'),
      api('GET', '/console/tenants')]);
    if (c.status === 'rejected') throw c.reason;
    ui = c.value.data;
    S.tenants = t.status === 'fulfilled' ? t.value.data : null;
  } catch (err) {
    if (!S.signedIn || S.halted) return; /* expired or suspended shown */
    S.signedIn = false;
    return bootError(err);
  }
  compose(ui.packages || []);
  S.tenant = pickTenant();
  chrome(true);
  if (!S.tenants) alertMessage('The tenant list could not be loaded; acting in your own tenant.');
  S.moved = false;
  route();
}

async function boot() {
  S.halted = false;
  main.replaceChildren(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  try {
    S.profile = (await api('GET', '/console/profile')).data;
  } catch (err) {
    if (S.halted) return;
    return bootError(err);
  }
  const b = S.profile.branding || {};
  brandColours(b);
  document.title = platformName();
  if (S.profile.status && S.profile.status !== 'active')
    return suspended(null);
  start();
}

window.addEventListener('hashchange', () => {
  S.moved = true;
  route();
});
window.addEventListener('offline', () =>
  alertMessage('You are offline. Changes cannot be saved until the connection returns.'));
window.addEventListener('online', () => alertMessage(''));
boot();
