/* notes' pages in the console shell:
 *   /notes        the caller's notes (ul#notes-list) and "New note"
 *   /notes/new    the editor for a new note (form#note-form)
 *   /notes/{id}   a note: edit, delete (confirmed in the page), and its
 *                 attached files (upload, download, delete)
 * Everything goes through ctx.api (tenant header, problem decoding, the
 * shell's expired/suspended states); text only ever becomes text nodes. */

const TITLE_MAX = 200;          /* bytes, as the API checks */
const BODY_MAX = 32 * 1024;     /* bytes */
const FILE_NAME_MAX = 128;      /* characters of [A-Za-z0-9._-] */
const PAGE = 50;

/* Element builder (the shell's, repeated: a module stands alone). */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...kids.flat().filter((c) => c != null && c !== false));
  return el;
}

const bytes = (s) => new TextEncoder().encode(s).length;

/* "message (request id X)" for an error thrown by ctx.api. */
function describe(err) {
  const rid = err.problem && err.problem.request_id;
  return err.message + (rid ? ` (request id ${rid})` : '');
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : h('time', { datetime: iso }, d.toLocaleString());
}

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/* A file name the API takes (1–128 of A-Z a-z 0-9 . _ -, no leading dot):
 * accents dropped, other runs of characters become "_", the extension
 * kept when the name is cut. */
export function safeFileName(name) {
  let n = String(name).normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '');
  if (n.length > FILE_NAME_MAX) {
    const dot = n.lastIndexOf('.');
    const ext = dot > 0 && n.length - dot <= 16 ? n.slice(dot) : '';
    n = n.slice(0, FILE_NAME_MAX - ext.length) + ext;
  }
  return n || 'file';
}

function canWrite(ctx) {
  return !Array.isArray(ctx.scopes) || ctx.scopes.length === 0 ||
    ctx.scopes.includes('features:notes:write');
}

export function mount(el, ctx) {
  if (ctx.route === '/notes/new') return editor(el, ctx, null);
  if (ctx.route === '/notes/{id}') return notePage(el, ctx);
  return list(el, ctx);
}

/* -- the list --------------------------------------------------------- */

async function list(el, ctx) {
  const ul = h('ul', { id: 'notes-list', class: 'list', 'aria-labelledby': 'notes-title' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No notes yet.');
  const status = h('p', { class: 'status', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert' });
  const more = h('button', { type: 'button', hidden: true }, 'Show more notes');
  el.append(
    h('div', { class: 'toolbar' },
      h('h1', { id: 'notes-title' }, 'Notes'),
      canWrite(ctx) && h('button', { id: 'note-new', type: 'button', class: 'primary',
        onclick: () => ctx.navigate('/notes/new') }, 'New note')),
    status, ul, empty, more, error);
  let cursor = null;
  async function page() {
    status.textContent = 'Loading notes…';
    more.disabled = true;
    const q = `?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { data } = await ctx.api('GET', `/notes${q}`);
    for (const n of data.items || []) {
      ul.append(h('li', { 'data-note-id': n.id },
        h('a', { href: `#/notes/${n.id}` }, n.title),
        n.updated_at && h('span', { class: 'meta' }, 'Updated ', when(n.updated_at))));
    }
    cursor = data.next_cursor || null;
    more.hidden = !cursor;
    more.disabled = false;
    empty.hidden = ul.children.length > 0;
    status.textContent = '';
  }
  more.addEventListener('click', () => page().catch((err) => {
    status.textContent = '';
    more.disabled = false;
    error.textContent = `More notes could not be loaded: ${describe(err)}`;
  }));
  await page(); /* a failure here is the shell's "feature failed" state */
}

/* -- the editor ------------------------------------------------------- */

/* The form for a new note (note = null) or an existing one. Resolves with
 * the form's parts so the note page can add delete and attachments. */
function editor(el, ctx, note) {
  const title = h('input', { id: 'note-title', name: 'title', type: 'text',
    required: true, maxlength: TITLE_MAX, autocomplete: 'off',
    value: note ? note.title : '' });
  const body = h('textarea', { id: 'note-body', name: 'body', rows: 8,
    value: note ? note.body || '' : '' });
  const error = h('p', { id: 'note-error', class: 'error', role: 'alert' });
  const status = h('p', { id: 'note-status', class: 'status', role: 'status' });
  const save = h('button', { id: 'note-save', type: 'submit', class: 'primary' }, 'Save');
  const buttons = h('div', { class: 'toolbar' }, save);
  const form = h('form', { id: 'note-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'note-title' }, 'Title'), title),
    h('div', { class: 'field' }, h('label', { for: 'note-body' }, 'Body'), body),
    error, status, buttons);
  const heading = h('h1', null, note ? note.title : 'New note');
  el.append(h('p', null, h('a', { href: '#/notes' }, '← All notes')), heading, form);
  let current = note;

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    title.removeAttribute('aria-invalid');
    body.removeAttribute('aria-invalid');
    const t = title.value.trim();
    let bad = null;
    if (!t) bad = [title, 'Give the note a title.'];
    else if (bytes(t) > TITLE_MAX) bad = [title, `The title is longer than ${TITLE_MAX} bytes.`];
    else if (bytes(body.value) > BODY_MAX) bad = [body, 'The body is longer than 32 KiB.'];
    if (bad) {
      bad[0].setAttribute('aria-invalid', 'true');
      error.textContent = bad[1];
      bad[0].focus();
      return;
    }
    save.disabled = true;
    status.textContent = 'Saving…';
    try {
      const json = { title: t, body: body.value };
      if (!current) {
        const { data } = await ctx.api('POST', '/notes', { json });
        status.textContent = 'Created.';
        ctx.navigate(`/notes/${data.id}`);
        return;
      }
      const { data } = await ctx.api('PATCH', `/notes/${current.id}`, { json });
      current = data;
      heading.textContent = data.title;
      status.textContent = 'Saved.';
    } catch (err) {
      status.textContent = '';
      error.textContent = `Not saved: ${describe(err)}`;
    } finally {
      save.disabled = false;
    }
  });
  return { form, buttons, error, status };
}

/* -- a note and its files --------------------------------------------- */

async function notePage(el, ctx) {
  const id = ctx.params.id;
  let note = null;
  if (/^[0-9]{1,18}$/.test(id)) {
    try {
      note = (await ctx.api('GET', `/notes/${id}`)).data;
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  if (!note) {
    el.append(h('h1', null, 'Note not found'),
      h('p', { role: 'alert' }, 'This note does not exist, was deleted, or is outside your reach.'),
      h('p', null, h('a', { href: '#/notes' }, '← All notes')));
    return;
  }
  const parts = editor(el, ctx, note);
  let gone = false;
  if (canWrite(ctx)) deleteButton(ctx, note, parts, () => gone);
  await files(el, ctx, note, () => gone);
  return () => { gone = true; };
}

/* Delete asks for a second click ("Confirm delete"); Escape, Cancel or
 * leaving the button's group puts it back. */
function deleteButton(ctx, note, parts, isGone) {
  const del = h('button', { id: 'note-delete', type: 'button', class: 'danger' }, 'Delete');
  const cancel = h('button', { id: 'note-delete-cancel', type: 'button', hidden: true }, 'Cancel');
  let armed = false;
  function disarm() {
    armed = false;
    del.textContent = 'Delete';
    del.classList.remove('confirm');
    cancel.hidden = true;
  }
  del.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      del.textContent = 'Confirm delete';
      del.classList.add('confirm');
      cancel.hidden = false;
      parts.status.textContent = 'Deleting removes the note and its files. Press "Confirm delete" to go on.';
      return;
    }
    del.disabled = true;
    parts.status.textContent = 'Deleting…';
    try {
      await ctx.api('DELETE', `/notes/${note.id}`);
      if (!isGone()) ctx.navigate('/notes');
    } catch (err) {
      del.disabled = false;
      disarm();
      parts.status.textContent = '';
      parts.error.textContent = `Not deleted: ${describe(err)}`;
    }
  });
  cancel.addEventListener('click', () => {
    disarm();
    parts.status.textContent = '';
    del.focus();
  });
  parts.buttons.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && armed) {
      disarm();
      parts.status.textContent = '';
      del.focus();
    }
  });
  parts.buttons.append(del, cancel);
}

async function files(el, ctx, note, isGone) {
  const base = `/notes/${note.id}/files`;
  const ul = h('ul', { id: 'note-files', class: 'list', 'aria-labelledby': 'files-title' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No files attached.');
  const input = h('input', { id: 'note-file', type: 'file', 'aria-describedby': 'file-hint' });
  const hint = h('p', { id: 'file-hint', class: 'hint' },
    'Names may use letters, digits, ".", "_" and "-"; other characters are replaced.');
  const upload = h('button', { id: 'note-upload', type: 'button' }, 'Upload');
  const status = h('p', { id: 'file-status', class: 'status', role: 'status' });
  const error = h('p', { id: 'file-error', class: 'error', role: 'alert' });
  const more = h('button', { type: 'button', hidden: true }, 'Show more files');
  const write = canWrite(ctx);
  el.append(h('section', { 'aria-labelledby': 'files-title' },
    h('h2', { id: 'files-title' }, 'Attachments'),
    ul, empty, more,
    write && h('div', { class: 'field' },
      h('label', { for: 'note-file' }, 'Attach a file'), hint,
      h('div', { class: 'toolbar' }, input, upload)),
    status, error));

  let cursor = null;
  function item(f) {
    const del = h('button', { type: 'button', class: 'danger',
      'aria-label': `Delete ${f.name}` }, 'Delete');
    del.addEventListener('click', async () => {
      del.disabled = true;
      error.textContent = '';
      try {
        await ctx.api('DELETE', `${base}/${encodeURIComponent(f.name)}`);
        li.remove();
        empty.hidden = ul.children.length > 0;
        status.textContent = `Deleted ${f.name}.`;
        (ul.querySelector('a') || input).focus();
      } catch (err) {
        del.disabled = false;
        error.textContent = `${f.name} was not deleted: ${describe(err)}`;
      }
    });
    const li = h('li', { 'data-file': f.name },
      h('a', { href: `${base}/${encodeURIComponent(f.name)}`, download: f.name }, f.name),
      h('span', { class: 'meta' }, [size(f.size || 0), f.content_type].filter(Boolean).join(' · ')),
      write && del);
    return li;
  }
  async function page(reset) {
    if (reset) cursor = null;
    const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
    const { data } = await ctx.api('GET', `${base}${q}`);
    if (isGone()) return;
    if (reset) ul.replaceChildren();
    for (const f of data.items || []) ul.append(item(f));
    cursor = data.next_cursor || null;
    more.hidden = !cursor;
    empty.hidden = ul.children.length > 0;
  }
  more.addEventListener('click', () => page(false).catch((err) => {
    error.textContent = `More files could not be loaded: ${describe(err)}`;
  }));

  input.addEventListener('change', () => {
    error.textContent = '';
    const f = input.files[0];
    const n = f ? safeFileName(f.name) : '';
    status.textContent = f && n !== f.name ? `"${f.name}" will be stored as "${n}".` : '';
  });
  upload.addEventListener('click', async () => {
    error.textContent = '';
    const f = input.files[0];
    if (!f) {
      error.textContent = 'Choose a file first.';
      input.focus();
      return;
    }
    const name = safeFileName(f.name);
    upload.disabled = true;
    status.textContent = `Uploading ${name}…`;
    try {
      await ctx.api('PUT', `${base}/${encodeURIComponent(name)}`, {
        body: f, headers: { 'Content-Type': f.type || 'application/octet-stream' } });
      input.value = '';
      status.textContent = name === f.name ? `Uploaded ${name}.`
        : `Uploaded "${f.name}" as "${name}" (file names may only use letters, digits, ".", "_" and "-").`;
      await page(true);
    } catch (err) {
      status.textContent = '';
      error.textContent = `${name} was not uploaded: ${describe(err)}`;
    } finally {
      upload.disabled = false;
    }
  });

  try {
    await page(true);
  } catch (err) {
    if (err.status === 401) throw err;
    error.textContent = `The files could not be listed: ${describe(err)}`;
  }
}
