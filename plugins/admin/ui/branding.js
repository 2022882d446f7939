// A platform's branding editor (PATCH /platforms/{id} {"branding": ...}):
// colours with live WCAG contrast feedback, a logo as a data URI, save and
// clear. The registry checks everything again and says why it refuses.

import { api } from './api.js';
import { h, field, errorBox, showError, clearError, busy } from './dom.js';
import { normalise, ratio, MIN_RATIO } from './contrast.js';

const COLOURS = [
  ['primary', 'Primary colour'], ['accent', 'Accent colour'],
  ['background', 'Background colour'], ['foreground', 'Text colour'],
];
const LOGO_MAX = 64 * 1024; // characters of the data URI, as the registry
const LOGO_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/svg+xml'];

function readDataUri(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(new Error('The file could not be read.'));
    r.readAsDataURL(file);
  });
}

export function brandingSection(pid, current) {
  const err = errorBox('branding-error');
  const done = h('p', { id: 'branding-done', role: 'status', class: 'ok' });
  const inputs = {};
  const fields = COLOURS.map(([k, label]) => {
    inputs[k] = h('input', { id: 'branding-' + k, name: k, autocomplete: 'off',
                             placeholder: '#rrggbb', maxlength: 7, size: 8,
                             value: current[k] || '' });
    return field(label, inputs[k]);
  });
  const contrast = h('ul', { id: 'branding-contrast', 'aria-live': 'polite' });
  const preview = h('div', { id: 'branding-preview', class: 'preview' },
    h('span', { class: 'preview-button' }, 'Button'), ' ',
    h('span', { class: 'preview-text' }, 'Text on the background'));
  let logo = current.logo || null; // the data URI kept, or null
  const logoImg = h('img', { id: 'branding-logo-preview', alt: 'Current logo', hidden: !logo,
                             src: logo || undefined });
  const logoInput = h('input', { id: 'branding-logo', name: 'logo', type: 'file',
                                 accept: LOGO_TYPES.join(',') });
  const logoRemove = h('button', { type: 'button', id: 'branding-logo-remove', hidden: !logo },
                       'Remove logo');
  // The logo to send (a data URI) or none, and its preview.
  function setLogo(uri) {
    logo = uri || null;
    logoImg.hidden = !logo;
    logoRemove.hidden = !logo;
    if (logo) logoImg.src = logo;
    else logoImg.removeAttribute('src');
    logoInput.value = '';
  }
  logoRemove.addEventListener('click', () => setLogo(null));
  logoInput.addEventListener('change', async () => {
    clearError(err);
    const f = logoInput.files && logoInput.files[0];
    if (!f) return;
    if (!LOGO_TYPES.includes(f.type)) {
      showError(err, new Error('A logo is a PNG, JPEG, GIF, WebP or SVG image.'));
      logoInput.value = '';
      return;
    }
    try {
      const uri = await readDataUri(f);
      if (uri.length > LOGO_MAX) {
        showError(err, new Error('This logo is ' + Math.ceil(uri.length / 1024) +
          ' KiB as a data URI; at most 64 KiB.'));
        logoInput.value = '';
        return;
      }
      logo = uri;
      logoImg.src = uri;
      logoImg.hidden = false;
      logoRemove.hidden = false;
    } catch (e) { showError(err, e); }
  });

  // Live feedback: each pair the registry checks, its ratio and whether it
  // passes; invalid colours named.
  function feedback() {
    const c = {};
    const lines = [];
    for (const [k, label] of COLOURS) {
      const v = inputs[k].value.trim();
      c[k] = v ? normalise(v) : null;
      inputs[k].setAttribute('aria-invalid', v && !c[k] ? 'true' : 'false');
      if (v && !c[k]) lines.push(['bad', label + ': "' + v + '" is not #rgb or #rrggbb.']);
    }
    const check = (what, a, b) => {
      const r = ratio(a, b);
      const ok = r >= MIN_RATIO;
      lines.push([ok ? 'pass' : 'fail', what + ': ' + r.toFixed(2) + ':1 — ' +
        (ok ? 'passes' : 'too low, needs at least ' + MIN_RATIO + ':1') + '.']);
    };
    if (c.primary) check('White text on the primary colour', '#ffffff', c.primary);
    if (c.foreground && c.background) check('Text colour on the background', c.foreground, c.background);
    if (!lines.length) lines.push(['none', 'No colour set: the shell\'s own colours are used.']);
    contrast.replaceChildren(...lines.map(([k, t]) => h('li', { dataset: { result: k } }, t)));
    // CSP allows setting custom properties from script (never inline style).
    for (const k of ['primary', 'accent', 'background', 'foreground']) {
      if (c[k]) preview.style.setProperty('--b-' + k, c[k]);
      else preview.style.removeProperty('--b-' + k);
    }
  }
  for (const k in inputs) inputs[k].addEventListener('input', feedback);
  feedback();

  const save = h('button', { type: 'submit', id: 'branding-save' }, 'Save branding');
  const clear = h('button', { type: 'button', id: 'branding-clear' }, 'Clear branding');
  async function send(branding) {
    clearError(err);
    done.textContent = '';
    try {
      const r = await api('PATCH', '/platforms/' + encodeURIComponent(pid), { json: { branding } });
      const b = (r.data && r.data.branding) || {};
      for (const [k] of COLOURS) inputs[k].value = b[k] || '';
      setLogo(b.logo);
      feedback();
      done.textContent = branding ? 'Branding saved.' : 'Branding cleared.';
    } catch (e) { if (e.status !== 401) showError(err, e); }
  }
  const form = h('form', { id: 'branding', novalidate: true },
    ...fields,
    h('div', { class: 'field' }, h('label', { for: 'branding-logo' }, 'Logo'), logoInput,
      h('p', { class: 'hint' }, 'PNG, JPEG, GIF, WebP or SVG; at most 64 KiB as a data URI.'),
      logoImg, logoRemove),
    h('h3', {}, 'Contrast'), contrast, preview, err, save, ' ', clear, done);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const b = {};
    for (const [k] of COLOURS) if (inputs[k].value.trim()) b[k] = inputs[k].value.trim();
    if (logo) b.logo = logo;
    busy(save, () => send(b));
  });
  clear.addEventListener('click', () => busy(clear, () => send(null)));
  return h('section', { id: 'branding-section', 'aria-labelledby': 'branding-title' },
    h('h2', { id: 'branding-title' }, 'Branding'), form);
}
