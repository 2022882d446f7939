/* The host calls a sandbox makes (SBX_MSG_CALL), served by the worker for
 * the request they are made for: resources opened and used with the
 * host's own res_* functions (which check the package's manifest and the
 * request's platform on every call), outbound HTTP, and the synchronous
 * limits, counters and configuration. Each call gets exactly one RESULT
 * while its sandbox lives. See sbx_host.h. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "req.h"
#include "res.h"
#include "sbx_host.h"

/* ---- CALL ------------------------------------------------------------------
 */

/* Begin a RESULT for `call_id` with its error. */
static size_t result_begin(sbx_proc *sp, uint64_t call_id, int error,
                           const char *msg) {
  size_t at = sbx_begin(&sp->out, SBX_MSG_RESULT, call_id);
  sbx_i32(&sp->out, error);
  sbx_cstr(&sp->out, msg ? msg : (error ? nno__strerror(error) : ""));
  return at;
}

static void result_end(sbx_proc *sp, size_t at, uint64_t call_id) {
  if (sbx_end(&sp->out, at) != 0) {
    /* Too large to carry (or no memory): the call still gets its answer,
     * the sandbox waits for it. */
    sp->out.oom = 0;
    size_t a2 = result_begin(sp, call_id, NNO_ETOOBIG, NULL);
    sbx_end(&sp->out, a2);
  }
  sbx__mark_dirty(sp);
}

static void result_error(sbx_proc *sp, uint64_t call_id, int error) {
  result_end(sp, result_begin(sp, call_id, error, NULL), call_id);
}

static sbx_callrec *rec_new(sbx_proc *sp, const sbx_callmsg *m,
                            uint64_t req_id) {
  sbx_callrec *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->sp = sp;
  c->call_id = m->call_id;
  c->req_id = req_id;
  c->op = m->op;
  c->next = sp->calls;
  if (sp->calls) sp->calls->prev = c;
  sp->calls = c;
  return c;
}

/* The completion of `c`: its sandbox if it is still there (a call of a
 * request answered since still gets its RESULT: the sandbox waits for
 * every call it made), unlinking and freeing nothing yet. */
static sbx_proc *rec_target(sbx_callrec *c) {
  sbx_proc *sp = c->sp;
  if (!sp || sp->state == SP_DEAD) return NULL;
  return sp;
}

static void rec_free(sbx_callrec *c) {
  if (c->sp) {
    if (c->prev)
      c->prev->next = c->next;
    else
      c->sp->calls = c->next;
    if (c->next) c->next->prev = c->prev;
  }
  free(c);
}

static void sql_done(nno_req *r, const nno_sql_result *res, void *ud) {
  (void)r;
  sbx_callrec *c = ud;
  sbx_proc *sp = rec_target(c);
  if (sp) {
    size_t at = result_begin(sp, c->call_id, res->error, res->error_message);
    sbx_str(&sp->out, res->rows.ptr ? res->rows.ptr : "", res->rows.len);
    sbx_u64(&sp->out, res->changes);
    sbx_i64(&sp->out, res->last_insert_id);
    result_end(sp, at, c->call_id);
  }
  rec_free(c);
}

static void kv_done(nno_req *r, const nno_kv_result *res, void *ud) {
  (void)r;
  sbx_callrec *c = ud;
  sbx_proc *sp = rec_target(c);
  if (sp) {
    size_t at = result_begin(sp, c->call_id, res->error, res->error_message);
    switch (c->op) {
    case SBX_CALL_KV_GET:
      sbx_u8(&sp->out, (uint8_t)res->found);
      sbx_str(&sp->out, res->value.ptr ? res->value.ptr : "", res->value.len);
      sbx_u64(&sp->out, res->expires);
      break;
    case SBX_CALL_KV_DELETE:
      sbx_u8(&sp->out, (uint8_t)res->found);
      break;
    case SBX_CALL_KV_LIST:
      sbx_str(&sp->out, res->keys.ptr ? res->keys.ptr : "", res->keys.len);
      sbx_str(&sp->out, res->cursor.ptr ? res->cursor.ptr : "",
              res->cursor.len);
      break;
    default:
      break;
    }
    result_end(sp, at, c->call_id);
  }
  rec_free(c);
}

static void blob_done(nno_req *r, const nno_blob_result *res, void *ud) {
  (void)r;
  sbx_callrec *c = ud;
  sbx_proc *sp = rec_target(c);
  if (sp) {
    size_t at = result_begin(sp, c->call_id, res->error, res->error_message);
    const char *et = res->etag.ptr ? res->etag.ptr : "";
    switch (c->op) {
    case SBX_CALL_BLOB_PUT:
      sbx_u64(&sp->out, res->size);
      sbx_str(&sp->out, et, res->etag.len);
      sbx_u64(&sp->out, res->modified);
      break;
    case SBX_CALL_BLOB_HEAD:
      sbx_u8(&sp->out, (uint8_t)res->found);
      sbx_u64(&sp->out, res->size);
      sbx_str(&sp->out, et, res->etag.len);
      sbx_str(&sp->out, res->content_type.ptr ? res->content_type.ptr : "",
              res->content_type.len);
      sbx_u64(&sp->out, res->modified);
      break;
    case SBX_CALL_BLOB_DELETE:
      sbx_u8(&sp->out, (uint8_t)res->found);
      break;
    case SBX_CALL_BLOB_LIST:
      sbx_str(&sp->out, res->objects.ptr ? res->objects.ptr : "",
              res->objects.len);
      sbx_str(&sp->out, res->cursor.ptr ? res->cursor.ptr : "",
              res->cursor.len);
      break;
    default:
      break;
    }
    result_end(sp, at, c->call_id);
  }
  rec_free(c);
}

static void fetch_done(const nno_http_response *res, void *ud) {
  sbx_callrec *c = ud;
  sbx_proc *sp = rec_target(c);
  if (sp) {
    size_t at = result_begin(sp, c->call_id, res->error, res->error_message);
    sbx_u32(&sp->out, (uint32_t)res->status);
    sbx_str(&sp->out, res->headers.ptr ? res->headers.ptr : "",
            res->headers.len);
    sbx_str(&sp->out, res->body.ptr ? res->body.ptr : "", res->body.len);
    result_end(sp, at, c->call_id);
  }
  rec_free(c);
}

/* The worker's package for a frame's `flags` (the package's index in
 * READY + 1; before READY, the sandbox's load order, which is the stack's),
 * NULL when it names none. */
plugin *sbx__flags_pkg(sbx_proc *sp, uint16_t flags) {
  if (flags == 0) return NULL;
  uint32_t k = flags - 1u;
  if (!sp->pkg_map) return k < sp->st->nplugins ? sp->st->plugins[k] : NULL;
  for (size_t i = 0; i < sp->st->nplugins; i++)
    if (sp->pkg_map[i] == k) return sp->st->plugins[i];
  return NULL;
}

/* Serve one CALL (made for request `req_id`, 0 for none). */
void sbx__serve_call(sbx_proc *sp, uint64_t req_id, uint16_t flags,
                     const sbx_callmsg *m) {
  const nno_host_api *api = api_table();
  sbx_slot *s = req_id ? sbx__slot_of(sp, req_id) : NULL;
  nno_req *r = s ? s->r : NULL;
  plugin *pl = r ? r->plugin : sbx__flags_pkg(sp, flags);
  if (!pl) {
    result_error(sp, m->call_id, NNO_ESTATE);
    return;
  }
  if (sbx_op_sync(m->op)) {
    int rc = 0;
    size_t at;
    switch (m->op) {
    case SBX_CALL_LIMIT_TAKE: {
      nno_limit_result lr;
      memset(&lr, 0, sizeof lr);
      double rate;
      memcpy(&rate, &m->u[0], sizeof rate);
      rc = api->limit_take((nno_plugin *)pl, m->s[0], m->n[0], rate,
                           (uint32_t)m->u[1], (uint32_t)m->u[2], &lr);
      at = result_begin(sp, m->call_id, rc, NULL);
      sbx_u8(&sp->out, (uint8_t)lr.allowed);
      sbx_u32(&sp->out, lr.limit);
      sbx_u32(&sp->out, lr.remaining);
      sbx_u64(&sp->out, lr.retry_after_ms);
      sbx_u64(&sp->out, lr.reset_ms);
      break;
    }
    case SBX_CALL_COUNTER_GET: {
      /* The counters are the host's one shared namespace (the "iam" and
       * "registry" generations live there): a sandboxed package is not
       * trusted with them, whatever its proxy sends. */
      uint64_t v = 0;
      rc = NNO_EREFUSED;
      at = result_begin(sp, m->call_id, rc, NULL);
      sbx_u64(&sp->out, v);
      break;
    }
    case SBX_CALL_COUNTER_ADD: {
      uint64_t v = 0;
      rc = NNO_EREFUSED;
      at = result_begin(sp, m->call_id, rc, NULL);
      sbx_u64(&sp->out, v);
      break;
    }
    default: { /* CONFIG_INT */
      int64_t v = 0;
      rc = api->host_config_int((nno_plugin *)pl, m->s[0], &v);
      at = result_begin(sp, m->call_id, rc, NULL);
      sbx_i64(&sp->out, v);
      break;
    }
    }
    result_end(sp, at, m->call_id);
    return;
  }
  int rc;
  if (m->op == SBX_CALL_HTTP_FETCH) {
    if (sp->trial) { /* no loop to complete it on */
      result_error(sp, m->call_id, NNO_ECANCELED);
      return;
    }
    nno_http_request hq;
    memset(&hq, 0, sizeof hq);
    hq.size = sizeof hq;
    hq.method = m->n[0] ? m->s[0] : NULL;
    hq.url = m->s[1];
    hq.headers = m->nhdr ? m->hdr : NULL;
    hq.body = m->s[2];
    hq.body_len = m->n[2];
    hq.timeout_ms = (uint32_t)m->u[0];
    hq.max_response_bytes = (size_t)m->u[1];
    sbx_callrec *c = rec_new(sp, m, req_id);
    if (!c) {
      result_error(sp, m->call_id, NNO_ENOMEM);
      return;
    }
    rc = api->http_fetch((nno_plugin *)pl, &hq, fetch_done, c);
    if (rc) {
      rec_free(c);
      result_error(sp, m->call_id, rc);
    }
    return;
  }
  if (!r) {
    /* Resource calls belong to a live request of this sandbox. */
    result_error(sp, m->call_id, NNO_ESTATE);
    return;
  }
  /* A resource: opened for the request (its platform, its package's
   * manifest) by the host's own functions, on every call. */
  void *h = NULL;
  switch (m->op) {
  case SBX_CALL_SQL_EXEC:
  case SBX_CALL_SQL_BATCH:
    rc = res_sql_open(r, m->s[0], (nno_sql **)&h);
    break;
  case SBX_CALL_KV_GET:
  case SBX_CALL_KV_PUT:
  case SBX_CALL_KV_DELETE:
  case SBX_CALL_KV_LIST:
    rc = res_kv_open(r, m->s[0], (nno_kv **)&h);
    break;
  default:
    rc = res_blob_open(r, m->s[0], (nno_blob **)&h);
    break;
  }
  if (rc) {
    result_error(sp, m->call_id, rc);
    return;
  }
  if (m->op == SBX_CALL_RES_BLOB) {
    char why[128];
    /* The response so far, then the body streamed from the blob: the
     * request is res.c's from here; no RES follows. */
    if (sbx_res_apply(r, &m->res, 0, why, sizeof why) != 0) {
      result_error(sp, m->call_id, NNO_EINVAL);
      return;
    }
    rc = res_blob(r, h, m->s[1], m->n[1]);
    if (rc == 0) {
      sbx__slot_free(sp, s);
      sbx__arm_wall(sp);
    }
    result_error(sp, m->call_id, rc);
    return;
  }
  sbx_callrec *c = rec_new(sp, m, req_id);
  if (!c) {
    result_error(sp, m->call_id, NNO_ENOMEM);
    return;
  }
  switch (m->op) {
  case SBX_CALL_SQL_EXEC:
    rc = res_sql_exec(h, m->s[1], m->n[2] ? m->s[2] : NULL, sql_done, c);
    break;
  case SBX_CALL_SQL_BATCH:
    rc = res_sql_batch(h, m->s[1], sql_done, c);
    break;
  case SBX_CALL_KV_GET:
    rc = res_kv_get(h, m->s[1], m->n[1], kv_done, c);
    break;
  case SBX_CALL_KV_PUT:
    rc = res_kv_put(h, m->s[1], m->n[1], m->s[2], m->n[2], m->u[0], kv_done, c);
    break;
  case SBX_CALL_KV_DELETE:
    rc = res_kv_delete(h, m->s[1], m->n[1], kv_done, c);
    break;
  case SBX_CALL_KV_LIST:
    rc = res_kv_list(h, m->s[1], m->n[1], m->n[2] ? m->s[2] : NULL,
                     (uint32_t)m->u[0], kv_done, c);
    break;
  case SBX_CALL_BLOB_PUT:
    rc = res_blob_put(h, m->s[1], m->n[1], m->n[2] ? m->s[2] : NULL, m->s[3],
                      m->n[3], blob_done, c);
    break;
  case SBX_CALL_BLOB_HEAD:
    rc = res_blob_head(h, m->s[1], m->n[1], blob_done, c);
    break;
  case SBX_CALL_BLOB_DELETE:
    rc = res_blob_delete(h, m->s[1], m->n[1], blob_done, c);
    break;
  default: /* BLOB_LIST */
    rc = res_blob_list(h, m->s[1], m->n[1], m->n[2] ? m->s[2] : NULL,
                       (uint32_t)m->u[0], blob_done, c);
    break;
  }
  if (rc) {
    rec_free(c);
    result_error(sp, m->call_id, rc);
  }
}

void sbx__calls_orphan(sbx_proc *sp) {
  for (sbx_callrec *c = sp->calls; c; c = c->next) c->sp = NULL;
  sp->calls = NULL;
}
