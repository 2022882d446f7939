/* hello's page in the console shell (route /hello): shows GET /hello's
 * greeting in p#hello-greeting. The smallest example of a feature module:
 * export mount(el, ctx), render into el, return a cleanup (none needed). */
export async function mount(el, ctx) {
  const h1 = document.createElement('h1');
  h1.textContent = 'Hello';
  const p = document.createElement('p');
  p.id = 'hello-greeting';
  p.setAttribute('aria-live', 'polite');
  p.textContent = 'Loading the greeting…';
  el.append(h1, p);
  try {
    const { data } = await ctx.api('GET', '/hello');
    p.textContent = (data && data.message) || '';
  } catch (err) {
    const rid = err.problem && err.problem.request_id;
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = `The greeting could not be loaded: ${err.message}` +
      (rid ? ` (request id ${rid})` : '');
  }
}
