/* {{name}}'s page in the console (route /{{name}}): the caller's items,
 * and a form to add one. A console module exports mount(el, ctx). */
export async function mount(el, ctx) {
  const h1 = document.createElement('h1');
  h1.textContent = '{{name}}';
  const list = document.createElement('ul');
  const form = document.createElement('form');
  const input = document.createElement('input');
  input.name = 'name';
  input.required = true;
  input.maxLength = 200;
  input.setAttribute('aria-label', 'New item');
  const add = document.createElement('button');
  add.textContent = 'Add';
  const status = document.createElement('p');
  status.setAttribute('role', 'status');
  form.append(input, add);
  el.append(h1, form, status, list);

  const fail = (err) => {
    const rid = err.problem && err.problem.request_id;
    status.className = 'error';
    status.textContent = err.message + (rid ? ` (request id ${rid})` : '');
  };
  const load = async () => {
    try {
      const { data } = await ctx.api('GET', '/items');
      list.replaceChildren(...data.items.map((it) => {
        const li = document.createElement('li');
        li.textContent = it.name;
        return li;
      }));
    } catch (err) { fail(err); }
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await ctx.api('POST', '/items', { name: input.value });
      input.value = '';
      status.className = '';
      status.textContent = 'Added.';
      await load();
    } catch (err) { fail(err); }
  });
  await load();
}
