/* api(): the one way the shell and the feature modules call the platform.
 * Same-origin fetch with the session cookie, the chosen tenant as
 * Nno-Tenant, JSON in and out, and problem+json errors turned into thrown
 * Errors carrying .status and .problem (with request_id). A 401 or a
 * "platform is suspended" 403 is reported to the shell's hooks before the
 * error is thrown, so every caller gets the same expired/suspended states. */

/* The gateway's and IAM's detail for a suspended platform (never a tenant's,
 * whose detail starts with "tenant"). */
const SUSPENDED = /^platform \S+ is (suspended|not active)/;

/* Read a response body by its type: JSON, text, nothing, or a Blob. */
async function readBody(res, method) {
  if (method === 'HEAD' || res.status === 204 || res.status === 304)
    return null;
  const type = (res.headers.get('Content-Type') || '').toLowerCase();
  try {
    if (type.includes('json')) return await res.json();
    if (type.startsWith('text/')) return await res.text();
    return await res.blob();
  } catch {
    return null; /* a body that does not parse says nothing more */
  }
}

/* An Error for a failed call: message from the problem's detail or title. */
function failure(status, problem) {
  const err = new Error(problem.detail || problem.title || `HTTP ${status}`);
  err.status = status;
  err.problem = problem;
  return err;
}

/* hooks: tenant() → the tenant id to act in or ''; expired(err) on any 401;
 * suspended(err) on a suspended platform's 403. Returns
 * api(method, path, {json, body, headers}) → {status, headers, data}. */
export function createApi(hooks) {
  return async function api(method, path, opts = {}) {
    const headers = new Headers(opts.headers || {});
    if (!headers.has('Accept'))
      headers.set('Accept', 'application/json, application/problem+json');
    let body = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers.set('Content-Type', 'application/json');
    }
    const tenant = hooks.tenant ? hooks.tenant() : '';
    if (tenant && !headers.has('Nno-Tenant')) headers.set('Nno-Tenant', tenant);
    let res;
    try {
      res = await fetch(path, { method, headers, body,
        credentials: 'same-origin', cache: 'no-store' });
    } catch {
      throw failure(0, { title: 'Network error', detail: navigator.onLine
        ? 'The server could not be reached. Check your connection and try again.'
        : 'You are offline. Check your connection and try again.' });
    }
    const data = await readBody(res, method);
    if (res.ok || res.status === 304)
      return { status: res.status, headers: res.headers, data };
    const problem = data && typeof data === 'object' && !(data instanceof Blob)
      ? data : { title: res.statusText || 'Error', status: res.status };
    if (!problem.request_id && res.headers.get('X-Request-Id'))
      problem.request_id = res.headers.get('X-Request-Id');
    const err = failure(res.status, problem);
    if (res.status === 401 && hooks.expired) hooks.expired(err);
    if (res.status === 403 && SUSPENDED.test(String(problem.detail || '')) &&
        hooks.suspended)
      hooks.suspended(err);
    throw err;
  };
}
