/* {{name}}'s page in the console (route /{{name}}): shows GET /hello's
 * message. A console module exports mount(el, ctx) and renders into el. */
export async function mount(el, ctx) {
  const h1 = document.createElement('h1');
  h1.textContent = '{{name}}';
  const p = document.createElement('p');
  p.setAttribute('aria-live', 'polite');
  p.textContent = 'Loading…';
  el.append(h1, p);
  try {
    const { data } = await ctx.api('GET', '/hello');
    p.textContent = (data && data.message) || '';
  } catch (err) {
    const rid = err.problem && err.problem.request_id;
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = `GET /hello failed: ${err.message}` +
      (rid ? ` (request id ${rid})` : '');
  }
}
