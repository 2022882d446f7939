// Small DOM helpers: elements built with properties and children, never
// from HTML strings (no markup from data can reach the page).

// h('button', {type: 'button', onclick: f}, 'Save'): attributes whose
// name starts with "on" are listeners, "dataset" an object, the rest
// attributes; children are nodes or strings (text).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [n, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (n.startsWith('on') && typeof v === 'function')
      el.addEventListener(n.slice(2), v);
    else if (n === 'dataset') Object.assign(el.dataset, v);
    else if (n === 'text') el.textContent = v;
    else el.setAttribute(n, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// A labelled input: a <div class="field"> holding the label and `input`.
export function field(label, input, hint) {
  const id = input.id;
  const parts = [h('label', { for: id }, label), input];
  if (hint) {
    const hid = id + '-hint';
    input.setAttribute('aria-describedby', hid);
    parts.push(h('p', { class: 'hint', id: hid }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

// The error box of a form or a section: role=alert, hidden while empty.
export function errorBox(id) {
  return h('p', { id, class: 'error', role: 'alert', hidden: true });
}

// Show `err` (an ApiError or an Error) in `box`, with its request id.
export function showError(box, err) {
  box.replaceChildren();
  box.append(err.message || String(err));
  if (err.status) box.append(' (HTTP ' + err.status + ')');
  if (err.requestId)
    box.append(' ', h('span', { class: 'rid' }, 'Request id: ',
                      h('code', {}, err.requestId)));
  box.hidden = false;
}

export function clearError(box) {
  box.replaceChildren();
  box.hidden = true;
}

// "2026-11-28T10:00:00Z" as is, or an em dash for none.
export function when(v) {
  return v ? String(v).replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : '—';
}

// Run `fn` with `button` disabled (a busy form cannot be sent twice).
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try { return await fn(); } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// el.replaceChildren(...kids) without the absent ones (null, undefined,
// false): a view's optional parts are written `cond ? node : null`.
export function fill(el, ...kids) {
  el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
  return el;
}
