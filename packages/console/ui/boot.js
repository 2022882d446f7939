/* The page's loader, served at /console/boot.js (outside the versioned
 * asset path): imports the shell from the folder the page names. When that
 * fails (its files unreachable: offline, blocked, a version gone), it shows
 * the error state with "Try again" instead of leaving "Loading…" forever.
 * Plain DOM only: the shell's modules and stylesheet may be what failed. */
const base = document.querySelector('meta[name="nno-base"]')?.content || '';

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

import(`${base}/shell.js`).catch((err) => {
  console.error('the console shell could not be loaded', err);
  const retry = el('button', 'Try again', { type: 'button' });
  retry.addEventListener('click', () => location.reload());
  const state = el('div', null, { id: 'state', role: 'alert',
    class: 'state state-error', 'data-state': 'error' });
  state.append(el('h1', navigator.onLine ? 'Cannot reach the server'
    : 'You are offline', { tabindex: '-1' }),
  el('p', 'The console could not be loaded. Check your connection and try again.'),
  el('p', null, { class: 'actions' }));
  state.lastChild.append(retry);
  document.getElementById('main').replaceChildren(state);
  document.title = 'Cannot reach the server';
  document.documentElement.dataset.shell = 'ready';
});
