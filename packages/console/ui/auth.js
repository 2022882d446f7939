/* The sign-in and sign-up views (forms #sign-in and #sign-up). They render
 * into the shell's <main>, post to /auth/..., and call done() once the
 * platform has answered with a session (the cookie is set by then). */
import { h, requestId } from './dom.js';

/* A labelled input: the label's for names the input's id. */
function field(id, label, attrs, hint) {
  const hintId = hint ? `${id}-hint` : null;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint && h('p', { id: hintId, class: 'hint' }, hint),
    h('input', { id, name: id, 'aria-describedby': hintId, ...attrs }));
}

/* Brand block above the forms: the logo (when set) and the platform name. */
function brand(profile) {
  const logo = profile.branding && profile.branding.logo;
  return h('div', { class: 'auth-brand' },
    logo && h('img', { src: logo, alt: '', class: 'auth-logo' }),
    h('p', { class: 'auth-platform' }, profile.name || profile.id));
}

/* Wire a form: check the fields, post, show the answer in #form-error. */
function submitter(form, api, path, check, done) {
  const error = form.querySelector('#form-error');
  const status = form.querySelector('.form-status');
  const button = form.querySelector('button[type=submit]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll('[aria-invalid]'))
      el.removeAttribute('aria-invalid');
    error.textContent = '';
    const bad = check(form);
    if (bad) {
      error.textContent = bad.message;
      bad.field.setAttribute('aria-invalid', 'true');
      bad.field.focus();
      return;
    }
    const body = {};
    for (const el of form.querySelectorAll('input'))
      if (el.value !== '' || el.required) body[el.name] = el.value;
    button.disabled = true;
    status.textContent = 'Please wait…';
    try {
      await api('POST', path, { json: body });
    } catch (err) {
      button.disabled = false;
      status.textContent = '';
      const rid = err.status >= 500 || err.status === 0 ? requestId(err) : '';
      error.textContent = err.message + (rid ? ` (request id ${rid})` : '');
      const f = err.problem && err.problem.field &&
        form.querySelector(`input[name="${CSS.escape(err.problem.field)}"]`);
      if (f) {
        f.setAttribute('aria-invalid', 'true');
        f.focus();
      }
      return;
    }
    status.textContent = '';
    done();
  });
}

/* Check required fields are given and the password long enough. */
function checkFields(form, minPassword) {
  for (const el of form.querySelectorAll('input[required]'))
    if (!el.value.trim())
      return { field: el, message: `Enter your ${el.labels[0].textContent.toLowerCase()}.` };
  const pw = form.querySelector('#password');
  if (minPassword && pw.value.length < minPassword)
    return { field: pw, message: `Use a password of at least ${minPassword} characters.` };
  return null;
}

/* The sign-in view. opts: {profile, api, next, notice (an element shown
 * above the form, e.g. the expired state), done}. */
export function signIn(main, opts) {
  const q = opts.next ? `?next=${encodeURIComponent(opts.next)}` : '';
  const form = h('form', { id: 'sign-in', class: 'auth-form', novalidate: true },
    field('email', 'Email', { type: 'email', autocomplete: 'username',
      required: true, autocapitalize: 'off', spellcheck: 'false' }),
    field('password', 'Password', { type: 'password',
      autocomplete: 'current-password', required: true }),
    h('p', { id: 'form-error', class: 'form-error', role: 'alert' }),
    h('p', { class: 'form-status', role: 'status' }),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  main.replaceChildren(h('section', { class: 'auth', 'aria-labelledby': 'auth-title' },
    brand(opts.profile),
    opts.notice,
    h('h1', { id: 'auth-title' }, 'Sign in'),
    form,
    opts.profile.signup && h('p', { class: 'auth-alt' }, 'New here? ',
      h('a', { id: 'to-sign-up', href: `#/sign-up${q}` }, 'Create an account'))));
  submitter(form, opts.api, '/auth/sign-in', (f) => checkFields(f, 0), opts.done);
  return form;
}

/* The sign-up view, shown only when the profile allows sign-up. */
export function signUp(main, opts) {
  const q = opts.next ? `?next=${encodeURIComponent(opts.next)}` : '';
  const form = h('form', { id: 'sign-up', class: 'auth-form', novalidate: true },
    field('name', 'Name', { type: 'text', autocomplete: 'name',
      maxlength: 128 }, 'Optional.'),
    field('email', 'Email', { type: 'email', autocomplete: 'username',
      required: true, autocapitalize: 'off', spellcheck: 'false' }),
    field('password', 'Password', { type: 'password',
      autocomplete: 'new-password', required: true, minlength: 8,
      maxlength: 256 }, 'At least 8 characters.'),
    h('p', { id: 'form-error', class: 'form-error', role: 'alert' }),
    h('p', { class: 'form-status', role: 'status' }),
    h('button', { type: 'submit', class: 'primary' }, 'Create account'));
  main.replaceChildren(h('section', { class: 'auth', 'aria-labelledby': 'auth-title' },
    brand(opts.profile),
    h('h1', { id: 'auth-title' }, 'Create an account'),
    form,
    h('p', { class: 'auth-alt' }, 'Already have an account? ',
      h('a', { id: 'to-sign-in', href: `#/sign-in${q}` }, 'Sign in'))));
  submitter(form, opts.api, '/auth/sign-up', (f) => checkFields(f, 8), opts.done);
  return form;
}
