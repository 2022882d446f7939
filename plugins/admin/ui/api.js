// The operator API client: fetch with the operator key, problem+json
// decoding, and the key kept in sessionStorage only (this tab, until it
// closes or the operator signs out; never localStorage, never a cookie).

const KEY = 'nno.operator_key';

export function getKey() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function setKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  try { sessionStorage.removeItem(KEY); } catch { /* storage disabled */ }
}

// An Error for a failed call: .status (0: the network), .problem (the
// decoded problem+json, or null), .requestId (from the problem or the
// X-Request-Id header).
export class ApiError extends Error {
  constructor(status, problem, requestId, message) {
    super(message);
    this.status = status;
    this.problem = problem;
    this.requestId = requestId;
  }
}

// A short sentence for `status` when the problem has no detail.
function fallback(status) {
  if (status === 401) return 'The operator key was refused.';
  if (status === 403) return 'This credential may not use the operator API.';
  if (status === 404) return 'Not found.';
  if (status >= 500) return 'The server failed to answer (' + status + ').';
  return 'The request was refused (' + status + ').';
}

// Listeners told of a 401 on a signed-in call (the key was rotated).
const unauthorized = new Set();
export function onUnauthorized(fn) { unauthorized.add(fn); }

// Call `path` under /api/v1 with `method`; `json` is sent as the body.
// Resolves {status, headers, data} (data: parsed JSON or null), or throws
// an ApiError. `key` overrides the stored key (the sign-in check).
export async function api(method, path, { json, key, query } = {}) {
  const k = key !== undefined ? key : getKey();
  const headers = { Accept: 'application/json' };
  if (k) headers.Authorization = 'Bearer ' + k;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let url = '/api/v1' + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [n, v] of Object.entries(query))
      if (v !== undefined && v !== null && v !== '') q.set(n, String(v));
    const s = q.toString();
    if (s) url += '?' + s;
  }
  let res;
  try {
    res = await fetch(url, { method, headers, body, credentials: 'omit',
                             cache: 'no-store', referrerPolicy: 'no-referrer' });
  } catch (e) {
    throw new ApiError(0, null, null, 'The host cannot be reached.');
  }
  const rid = res.headers.get('X-Request-Id');
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.ok) return { status: res.status, headers: res.headers, data };
  const problem = data && typeof data === 'object' ? data : null;
  const err = new ApiError(res.status, problem,
                           (problem && problem.request_id) || rid,
                           (problem && problem.detail) || fallback(res.status));
  if (res.status === 401 && key === undefined)
    for (const fn of unauthorized) fn(err);
  throw err;
}

// Every item of a paged list, following next_cursor: at most `max` items
// (the view says when it stopped there).
export async function listAll(path, query = {}, max = 2000) {
  const items = [];
  let cursor = null;
  do {
    const r = await api('GET', path, { query: { ...query, limit: 500, cursor } });
    items.push(...(r.data.items || []));
    cursor = r.data.next_cursor;
  } while (cursor && items.length < max);
  return { items, truncated: Boolean(cursor) };
}
