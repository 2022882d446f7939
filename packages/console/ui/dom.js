/* A tiny element builder for the shell: h('p', {id: 'x'}, 'text', child).
 * Attributes are set with setAttribute (so text never becomes markup),
 * except on* (listeners), value and checked (properties) and dataset;
 * null, undefined and false skip an attribute or a child. */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...kids.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

/* The request id of an error thrown by api(), or '' when there is none. */
export function requestId(err) {
  return (err && err.problem && err.problem.request_id) || '';
}
