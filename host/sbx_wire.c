/* Decoding what a sandbox sends, and applying its responses. See
 * sbx_wire.h. */
#include "sbx_wire.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "req.h"

/* A string field that must be text (no NUL inside) of at most `max`. */
static const char *text(sbx_in *in, size_t *len, size_t max) {
  return sbx_get_text(in, len, max);
}

/* The reader consumed the whole payload without a fault. */
static int done(const sbx_in *in) {
  return in->bad || in->left ? -1 : 0;
}

int sbx_decode_ready(const char *payload, size_t len, sbx_ready *out) {
  sbx_in in = {payload, len, 0};
  out->npackages = sbx_get_u32(&in);
  if (in.bad || out->npackages > SBX_READY_PACKAGES_MAX) return -1;
  for (uint32_t i = 0; i < out->npackages; i++) {
    sbx_ready_pkg *p = &out->pkgs[i];
    size_t nl;
    p->name = text(&in, &nl, SBX_NAME_MAX);
    p->version = text(&in, NULL, SBX_NAME_MAX);
    p->nroutes = sbx_get_u32(&in);
    if (in.bad || nl == 0 || p->nroutes > SBX_READY_ROUTES_MAX) return -1;
    for (uint32_t j = 0; j < p->nroutes; j++) {
      p->routes[j].method = text(&in, NULL, SBX_ROUTE_TEXT_MAX);
      p->routes[j].pattern = text(&in, NULL, SBX_ROUTE_TEXT_MAX);
    }
    if (in.bad) return -1;
  }
  return done(&in);
}

int sbx_decode_fail(const char *payload, size_t len, const char **file,
                    const char **message) {
  sbx_in in = {payload, len, 0};
  *file = text(&in, NULL, 4096);
  *message = text(&in, NULL, 4096);
  return done(&in);
}

/* The response fields of RES, from `status` on. */
static void res_fields(sbx_in *in, sbx_res *out, int with_tail) {
  out->status = sbx_get_u32(in);
  out->headers = text(in, &out->headers_len, SBX_HEADERS_MAX);
  out->keep = text(in, &out->keep_len, SBX_HEADERS_MAX);
  if (!with_tail) {
    out->body = "";
    out->body_len = 0;
    out->written = 1;
    out->rc = 0;
    return;
  }
  /* The body is bytes: NULs allowed. */
  out->body = sbx_get_str(in, &out->body_len);
  if (out->body_len > SBX_FRAME_MAX) in->bad = 1;
  out->written = sbx_get_u8(in);
  out->rc = sbx_get_i32(in);
}

int sbx_decode_res(const char *payload, size_t len, sbx_res *out) {
  sbx_in in = {payload, len, 0};
  res_fields(&in, out, 1);
  return done(&in);
}

int sbx_op_sync(uint16_t op) {
  return op == SBX_CALL_LIMIT_TAKE || op == SBX_CALL_COUNTER_GET ||
         op == SBX_CALL_COUNTER_ADD || op == SBX_CALL_CONFIG_INT;
}

int sbx_decode_call(const char *payload, size_t len, sbx_callmsg *m) {
  sbx_in in = {payload, len, 0};
  memset(m, 0, sizeof *m);
  for (int i = 0; i < 4; i++) m->s[i] = "";
  m->call_id = sbx_get_u64(&in);
  m->op = sbx_get_u16(&in);
  if (in.bad) return -1;
  /* Strings of the op: how many, and which may hold bytes (values, data,
   * bodies) rather than text. */
  switch (m->op) {
  case SBX_CALL_SQL_EXEC:
    for (int i = 0; i < 3; i++) m->s[i] = text(&in, &m->n[i], SBX_STR_MAX);
    break;
  case SBX_CALL_SQL_BATCH:
  case SBX_CALL_KV_GET:
  case SBX_CALL_KV_DELETE:
  case SBX_CALL_BLOB_HEAD:
  case SBX_CALL_BLOB_DELETE:
    for (int i = 0; i < 2; i++) m->s[i] = text(&in, &m->n[i], SBX_STR_MAX);
    break;
  case SBX_CALL_KV_PUT:
    m->s[0] = text(&in, &m->n[0], SBX_STR_MAX);
    m->s[1] = text(&in, &m->n[1], SBX_STR_MAX);
    m->s[2] = sbx_get_str(&in, &m->n[2]);
    m->u[0] = sbx_get_u64(&in);
    break;
  case SBX_CALL_KV_LIST:
  case SBX_CALL_BLOB_LIST:
    for (int i = 0; i < 3; i++) m->s[i] = text(&in, &m->n[i], SBX_STR_MAX);
    m->u[0] = sbx_get_u32(&in);
    break;
  case SBX_CALL_BLOB_PUT:
    for (int i = 0; i < 3; i++) m->s[i] = text(&in, &m->n[i], SBX_STR_MAX);
    m->s[3] = sbx_get_str(&in, &m->n[3]);
    break;
  case SBX_CALL_RES_BLOB:
    m->s[0] = text(&in, &m->n[0], SBX_STR_MAX);
    m->s[1] = text(&in, &m->n[1], SBX_STR_MAX);
    res_fields(&in, &m->res, 0);
    break;
  case SBX_CALL_HTTP_FETCH:
    m->s[0] = text(&in, &m->n[0], 32);
    m->s[1] = text(&in, &m->n[1], 8192);
    m->nhdr = sbx_get_u32(&in);
    if (in.bad || m->nhdr > SBX_FETCH_HEADERS_MAX) return -1;
    for (uint32_t i = 0; i < m->nhdr; i++) m->hdr[i] = text(&in, NULL, 8192);
    m->hdr[m->nhdr] = NULL;
    m->s[2] = sbx_get_str(&in, &m->n[2]);
    m->u[0] = sbx_get_u32(&in);
    m->u[1] = sbx_get_u64(&in);
    break;
  case SBX_CALL_LIMIT_TAKE:
    m->s[0] = sbx_get_str(&in, &m->n[0]); /* a key is bytes */
    m->u[0] = sbx_get_u64(&in);           /* rate_per_s, as its bits */
    m->u[1] = sbx_get_u32(&in);
    m->u[2] = sbx_get_u32(&in);
    break;
  case SBX_CALL_COUNTER_GET:
  case SBX_CALL_CONFIG_INT:
    m->s[0] = text(&in, &m->n[0], 256);
    break;
  case SBX_CALL_COUNTER_ADD:
    m->s[0] = text(&in, &m->n[0], 256);
    m->u[0] = sbx_get_u64(&in);
    break;
  default:
    return -1;
  }
  return done(&in);
}

int sbx_decode_log(const char *payload, size_t len, uint8_t *level,
                   const char **msg, size_t *msg_len) {
  sbx_in in = {payload, len, 0};
  *level = sbx_get_u8(&in);
  /* Any bytes: a package logs what its clients sent (newlines, control
   * bytes, NULs); the log writer escapes them. Only the length is bound. */
  *msg = sbx_get_str(&in, msg_len);
  if (done(&in) || *msg_len > SBX_LOG_MAX || *level > NNO_LOG_ERROR)
    return -1;
  return 0;
}

int sbx_decode_recycle(const char *payload, size_t len, const char **reason) {
  sbx_in in = {payload, len, 0};
  *reason = text(&in, NULL, 256);
  return done(&in);
}

/* Add each "Name: value\r\n" line of `blk` with `add` (res_header or
 * res_header_keep): 0, or -1 for a line that is not one. */
static int add_lines(nno_req *r, const char *blk, size_t n,
                     int (*add)(nno_req *, const char *, const char *)) {
  char name[256], value[8192];
  while (n > 0) {
    const char *eol = memchr(blk, '\r', n);
    if (!eol || (size_t)(eol - blk) + 1 >= n || eol[1] != '\n') return -1;
    size_t ll = (size_t)(eol - blk);
    const char *colon = memchr(blk, ':', ll);
    if (!colon) return -1;
    size_t nl = (size_t)(colon - blk);
    const char *v = colon + 1;
    if (v < eol && *v == ' ') v++;
    size_t vl = (size_t)(eol - v);
    if (nl == 0 || nl >= sizeof name || vl >= sizeof value) return -1;
    memcpy(name, blk, nl);
    name[nl] = '\0';
    memcpy(value, v, vl);
    value[vl] = '\0';
    /* Counted in the sandbox, and bounded by sbx_res_apply's check: the
     * host's own lines (Content-Type) must pass too. */
    r->nheaders = 0;
    if (add(r, name, value) != 0) return -1;
    n -= ll + 2;
    blk = eol + 2;
  }
  return 0;
}

/* The status whose code res_status_code() gives back: a failed event's
 * code survives the trip through its problem. */
static int status_of(int code) {
  switch (code) {
  case NNO_EINVAL:
    return 422;
  case NNO_ENOENT:
    return 404;
  case NNO_EREFUSED:
    return 409;
  case NNO_ETOOBIG:
    return 413;
  case NNO_EBUSY:
    return 503;
  case NNO_ETIMEDOUT:
    return 504;
  case NNO_EQUOTA:
    return 507;
  }
  return 500;
}

int sbx_res_apply(nno_req *r, const sbx_res *m, int event, char *why,
                  size_t whylen) {
  const nno_host_api *api = api_table();
  why[0] = '\0';
  if (event) {
    /* A platform event's answer: status 0 is success, a negative code a
     * failure whose message is the body. The request then holds the
     * problem an in-process hook's failure would: res.c reads the code
     * back from its status and the message from its detail. */
    int32_t code = (int32_t)m->status;
    if (code < 0 || (m->rc < 0 && !m->written)) {
      int c = code < 0 ? code : m->rc;
      char detail[512];
      if (m->body_len && m->body_len < sizeof detail &&
          !memchr(m->body, '\0', m->body_len)) {
        memcpy(detail, m->body, m->body_len);
        detail[m->body_len] = '\0';
      } else {
        snprintf(detail, sizeof detail, "%s", nno__err_name(c));
      }
      int st = status_of(c);
      /* The hook answered a problem before failing: its status and
       * detail, as the in-process hook's response would give them. */
      json_t *doc = json_loadb(m->body, m->body_len, 0, NULL);
      json_t *js = json_object_get(doc, "status");
      const char *d = json_string_value(json_object_get(doc, "detail"));
      if (!d) d = json_string_value(json_object_get(doc, "title"));
      if (json_is_integer(js) && json_integer_value(js) >= 400 &&
          json_integer_value(js) <= 599 && d) {
        st = (int)json_integer_value(js);
        snprintf(detail, sizeof detail, "%s", d);
      }
      json_decref(doc);
      req_problem(r, st, http_reason(st), detail);
      return 0;
    }
    if (code == 0 && !m->body_len) return 0;
  }
  if (m->rc < 0 && !m->written) {
    /* As dispatch() answers a handler that failed without a word. */
    char detail[128];
    snprintf(detail, sizeof detail, "the handler failed: %s",
             nno__err_name(m->rc));
    req_problem(r, 500, "Internal Server Error", detail);
    return 0;
  }
  /* At most RES_HEADERS_MAX from res_header and res_header_keep, and the
   * Content-Type of res_json or a problem. */
  if (header_lines(m->headers, m->headers_len) +
          header_lines(m->keep, m->keep_len) >
      RES_HEADERS_MAX + 1) {
    r->keep.len = 0;
    req_problem(r, 502, "Bad Gateway",
                "the package's response has too many headers");
    snprintf(why, whylen, "more than %d header lines", RES_HEADERS_MAX);
    return -1;
  }
  if (add_lines(r, m->keep, m->keep_len, api->res_header_keep) != 0) {
    snprintf(why, whylen, "a kept header the host refuses");
    goto bad;
  }
  if (!m->written) return 0; /* nothing said: 204, as in-process */
  if (api->res_status(r, (int)m->status) != 0) {
    snprintf(why, whylen, "status %u", m->status);
    goto bad;
  }
  if (add_lines(r, m->headers, m->headers_len, api->res_header) != 0) {
    snprintf(why, whylen, "a header the host refuses");
    goto bad;
  }
  if (m->body_len && api->res_write(r, m->body, m->body_len) != 0) {
    snprintf(why, whylen, "a body of %zu bytes (at most %zu)", m->body_len,
             r->max_body);
    goto bad;
  }
  return 0;
bad:
  r->keep.len = 0;
  req_problem(r, 502, "Bad Gateway",
              "the package's sandbox gave a response the host refuses");
  return -1;
}
