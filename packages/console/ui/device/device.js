/* The device-login approval page (device/device.html): the code from
 * ?code= (or typed), what approving it would give (GET /console/device),
 * then Approve or Deny (POST /console/device/approve|deny). IAM answers all
 * three. The caller is the console's session cookie or a key pasted here:
 * the key is kept in this module's memory only (never in storage, the URL
 * or the DOM once read) and is gone when the page is left. */

const $ = (id) => document.getElementById(id);
let key = ''; /* a pasted key, or '' for the session cookie */
let shown = ''; /* the user code on display */

/* A same-origin JSON call: {status, data}; a network failure is status 0. */
async function call(method, path, json) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const res = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: json === undefined ? undefined : JSON.stringify(json) });
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    return { status: res.status, data: data || {} };
  } catch {
    return { status: 0, data: { detail:
      'The server could not be reached. Check your connection and try again.' } };
  }
}

function say(text, ok) {
  $('outcome').textContent = text;
  $('outcome').classList.toggle('ok', !!ok);
}

function fail(data) {
  const id = data.request_id ? ` (request ${data.request_id})` : '';
  $('error').textContent = `${data.detail || data.title || 'Error'}${id}`;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function showRequest(r) {
  shown = r.user_code;
  $('r-platform').textContent = r.platform;
  $('r-code').textContent = r.user_code;
  const ul = $('r-scopes');
  ul.replaceChildren(...(r.scopes.length ? r.scopes : ['none'])
    .map((s) => { const li = document.createElement('li'); li.textContent = s; return li; }));
  $('r-key-expires').textContent = when(r.key_expires_at);
  $('r-addr').textContent = r.client_addr || 'not recorded';
  $('r-expires').textContent =
    `${when(r.expires_at)} (in ${Math.max(0, Math.round(r.expires_in / 60))} min)`;
  $('approve').disabled = !r.approvable;
  $('deny').disabled = false;
  $('request').hidden = false;
  if (!r.approvable)
    fail({ detail: 'Your credential holds none of the scopes a login key holds: you may only deny.' });
}

async function check() {
  const code = $('code').value.trim();
  $('request').hidden = true;
  $('error').textContent = '';
  say('');
  if (!code) return;
  say('Checking…');
  const r = await call('GET', `/console/device?user_code=${encodeURIComponent(code)}`);
  say('');
  if (r.status === 200) {
    $('key-form').hidden = true;
    showRequest(r.data);
    return;
  }
  if (r.status === 401) {
    $('key-form').hidden = false;
    if (key) fail({ detail: 'That key is unknown, revoked or expired.' });
    key = '';
    $('key').focus();
    return;
  }
  fail(r.data);
}

async function decide(approve) {
  $('approve').disabled = true;
  $('deny').disabled = true;
  $('error').textContent = '';
  const r = await call('POST', `/console/device/${approve ? 'approve' : 'deny'}`,
    { user_code: shown });
  if (r.status === 200) {
    $('request').hidden = true;
    say(approve
      ? `Approved. The device gets its key now: return to your terminal.`
      : 'Denied. The device gets no key.', approve);
    return;
  }
  if (r.status === 401) $('key-form').hidden = false;
  fail(r.data);
  $('deny').disabled = false;
}

async function boot() {
  const params = new URLSearchParams(location.search);
  $('code').value = (params.get('code') || '').slice(0, 32);
  $('code-form').addEventListener('submit', (e) => { e.preventDefault(); check(); });
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    key = $('key').value.trim();
    $('key').value = ''; /* the key lives in `key` only */
    check();
  });
  $('approve').addEventListener('click', () => decide(true));
  $('deny').addEventListener('click', () => decide(false));
  const p = await call('GET', '/console/profile');
  if (p.status === 200 && p.data.id)
    $('platform').textContent = p.data.name && p.data.name !== p.data.id
      ? `${p.data.name} (${p.data.id})` : p.data.id;
  if ($('code').value) check();
}

boot();
