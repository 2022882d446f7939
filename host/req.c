/* Request objects: reuse, arena, problem responses, error names. */
#include "req.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway.h"
#include "problem_page.h"

#include "jsonv.h"
#include "log.h"
#include "res.h"
#include "stacks.h"

const char *nno__strerror(int err) {
  switch (err) {
  case NNO_OK: return "success";
  case NNO_ASYNC: return "answered asynchronously";
#define X(name, val, msg) case NNO_##name: return msg;
    NNO_ERRNO_MAP(X)
#undef X
  }
  return "unknown error";
}

const char *nno__err_name(int err) {
  switch (err) {
  case NNO_OK: return "NNO_OK";
  case NNO_ASYNC: return "NNO_ASYNC";
#define X(name, val, msg) case NNO_##name: return "NNO_" #name;
    NNO_ERRNO_MAP(X)
#undef X
  }
  return "NNO_E?";
}

const char *http_reason(int s) {
  switch (s) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 300: return "Multiple Choices";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 407: return "Proxy Authentication Required";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Content";
  case 423: return "Locked";
  case 424: return "Failed Dependency";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 507: return "Insufficient Storage";
  case 511: return "Network Authentication Required";
  }
  if (s >= 200 && s < 300) return "Success";
  if (s >= 400 && s < 500) return "Client Error";
  if (s >= 500 && s < 600) return "Server Error";
  return "Unknown";
}

void req_reset(nno_req *r) {
  /* A request dropped before it was answered (a client gone while its
   * upload was read): the end-of-request hooks hear of it now, while it
   * can still be read. */
  if (r->done_pending) gateway_done(r, 499);
  res_request_end(r); /* no-op unless a streamed body held the platform */
  r->hr = NULL;
  r->plugin = NULL;
  r->route_label = NULL;
  r->status = 200;
  r->async = r->written = r->gone = r->active = 0;
  r->body_over = 0;
  r->nheaders = 0;
  r->in_handler = r->ended = 0;
  r->match.nparams = 0;
  r->match.target = NULL;
  r->match.pattern = NULL;
  r->scope[0] = '\0';
  r->scope_len = 0;
  r->scoped = 0;
  r->path_strip = 0;
  if (r->stacks_held)
    for (size_t i = 0; i < r->nstacks; i++) stacks_unref(r->stacks[i]);
  r->stacks_held = 0;
  r->missing[0] = '\0';
  r->nstacks = 0;
  r->host_len = 0;
  r->stage = 0;
  r->caller_kind = 0;
  memset(r->caller_len, 0, sizeof r->caller_len);
  r->scopes_len = 0;
  r->tenant_path_len = 0;
  r->tenant_path[0] = '\0';
  r->plan[0] = '\0';
  r->res_pending = 0;
  r->res_entered = 0;
  r->end_when_idle = 0;
  r->in_cb = 0;
  if (r->body_src && r->body_fd >= 0) close(r->body_fd);
  r->body_src = 0;
  r->body_fd = -1;
  r->body_left = 0;
  if (r->upload == REQ_UPLOAD_FILE) {
    close(r->upload_fd);
    (*r->upload_count)--;
  }
  r->upload = REQ_UPLOAD_NONE;
  r->upload_fd = -1;
  r->upload_len = 0;
  r->keep.len = 0;
  /* Keep small buffers for the next request; drop big ones. */
  if (r->headers.cap > 16384) buf_free(&r->headers);
  if (r->body.cap > 65536) buf_free(&r->body);
  r->headers.len = r->body.len = 0;
  while (r->arena_more) {
    arena_chunk *next = r->arena_more->next;
    free(r->arena_more);
    r->arena_more = next;
  }
  r->arena_used = r->arena_total = 0;
}

void req_release(nno_req *r) {
  req_reset(r);
  buf_free(&r->headers);
  buf_free(&r->body);
  buf_free(&r->keep);
}

int req_upload_open(nno_req *r, const char *data_dir, unsigned *count) {
  char dir[PATH_MAX], path[PATH_MAX + 16];
  if (snprintf(dir, sizeof dir, "%s/tmp", data_dir) >= (int)sizeof dir) {
    log_warn("cannot store a request body: data folder path too long");
    return NNO_EIO;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    log_warn("cannot store a request body: mkdir %s: %s", dir, strerror(errno));
    return NNO_EIO;
  }
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    /* No O_TMPFILE on this file system: a named file, unnamed at once. */
    snprintf(path, sizeof path, "%s/body-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
  }
  if (fd < 0) {
    log_warn("cannot store a request body in %s: %s", dir, strerror(errno));
    return NNO_EIO;
  }
  r->upload = REQ_UPLOAD_FILE;
  r->upload_fd = fd;
  r->upload_len = 0;
  r->upload_count = count;
  (*count)++;
  return 0;
}

void *req_arena_alloc(nno_req *r, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n == 0 || n > REQ_ARENA_MAX || r->arena_total + n > REQ_ARENA_MAX)
    return NULL;
  if (r->arena_used + n <= REQ_ARENA_INLINE) {
    void *p = r->arena_inline + r->arena_used;
    r->arena_used += n;
    r->arena_total += n;
    return p;
  }
  arena_chunk *ch = r->arena_more;
  if (!ch || ch->used + n > ch->cap) {
    size_t cap = n > 8192 ? n : 8192;
    ch = malloc(sizeof *ch + cap);
    if (!ch) return NULL;
    ch->used = 0;
    ch->cap = cap;
    ch->next = r->arena_more;
    r->arena_more = ch;
  }
  void *p = ch->data + ch->used;
  ch->used += n;
  r->arena_total += n;
  return p;
}

int json_append_string(buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (buf_append(b, "\"", 1, SIZE_MAX)) return NNO_ENOMEM;
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x80) {
      /* Well-formed UTF-8 passes; any other byte becomes U+FFFD, so the
       * literal is valid JSON whatever a plugin quoted. */
      size_t k = json_utf8_len(s + i, n - i);
      if (k) {
        i += k - 1;
        continue;
      }
      if (buf_append(b, s + start, i - start, SIZE_MAX) ||
          buf_append(b, "\xef\xbf\xbd", 3, SIZE_MAX))
        return NNO_ENOMEM;
      start = i + 1;
      continue;
    }
    if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f) continue;
    if (buf_append(b, s + start, i - start, SIZE_MAX)) return NNO_ENOMEM;
    char e[6] = {'\\', (char)ch, 0, 0, 0, 0};
    size_t el = 2;
    if (ch < 0x20 || ch == 0x7f) {
      e[1] = 'u'; e[2] = '0'; e[3] = '0';
      e[4] = hex[ch >> 4]; e[5] = hex[ch & 15];
      el = 6;
    }
    if (buf_append(b, e, el, SIZE_MAX)) return NNO_ENOMEM;
    start = i + 1;
  }
  if (buf_append(b, s + start, n - start, SIZE_MAX) ||
      buf_append(b, "\"", 1, SIZE_MAX))
    return NNO_ENOMEM;
  return 0;
}

void problem_build(buf *headers, buf *b, int status, const char *title,
                   const char *detail, const char *rid, size_t rid_len) {
  static const char ct[] = "Content-Type: application/problem+json\r\n";
  char num[32];
  headers->len = 0;
  b->len = 0;
  int n = snprintf(num, sizeof num, "%d", status);
  (void)(buf_append(headers, ct, sizeof ct - 1, SIZE_MAX) ||
         buf_append(b, "{\"type\":\"about:blank\",\"title\":", 30, SIZE_MAX) ||
         json_append_string(b, title, strlen(title)) ||
         buf_append(b, ",\"status\":", 10, SIZE_MAX) ||
         buf_append(b, num, (size_t)n, SIZE_MAX) ||
         (detail && (buf_append(b, ",\"detail\":", 10, SIZE_MAX) ||
                     json_append_string(b, detail, strlen(detail)))) ||
         buf_append(b, ",\"request_id\":", 14, SIZE_MAX) ||
         json_append_string(b, rid, rid_len) ||
         buf_append(b, "}", 1, SIZE_MAX));
}

size_t header_lines(const char *p, size_t n) {
  size_t lines = 0;
  const char *end = p + n;
  while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    lines++;
    p++;
  }
  return lines;
}

static int token_char(unsigned char c) {
  return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

int res_header_check(const char *name, const char *value, size_t *nl,
                     size_t *vl) {
  static const char *const reserved[] = {
      "content-length", "connection", "date", "transfer-encoding",
      "x-request-id", "keep-alive", "upgrade", "trailer"};
  if (!name || !value || !*name) return NNO_EINVAL;
  for (const char *p = name; *p; p++)
    if (!token_char((unsigned char)*p)) return NNO_EINVAL;
  for (const char *p = value; *p; p++)
    if ((unsigned char)*p < 32 && *p != '\t') return NNO_EINVAL;
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
    if (strcasecmp(name, reserved[i]) == 0) return NNO_EINVAL;
  *nl = strlen(name);
  *vl = strlen(value);
  return *nl + *vl + 4 > 8192 ? NNO_ETOOBIG : 0;
}

int header_line_add(buf *b, const char *name, size_t nl, const char *value,
                    size_t vl) {
  size_t was = b->len;
  if (buf_append(b, name, nl, 65536) || buf_append(b, ": ", 2, 65536) ||
      buf_append(b, value, vl, 65536) || buf_append(b, "\r\n", 2, 65536)) {
    b->len = was; /* never half a line */
    return NNO_ETOOBIG;
  }
  return 0;
}

void req_problem(nno_req *r, int status, const char *title,
                 const char *detail) {
  r->status = status;
  r->written = 1;
  r->body_over = 0;
  if (problem_page_wanted(r->hr))
    problem_page_build(&r->headers, &r->body, status, title, detail, r->rid,
                       r->rid_len);
  else
    problem_build(&r->headers, &r->body, status, title, detail, r->rid,
                  r->rid_len);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int pct_decode(const char *s, size_t n,
                      void *(*alloc)(void *ctx, size_t n), void *ctx,
                      nno_str *out) {
  char *d = alloc(ctx, n + 1);
  if (!d) return NNO_ENOMEM;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      d[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      d[j++] = ' ';
    } else {
      d[j++] = s[i];
    }
  }
  d[j] = '\0';
  out->ptr = d;
  out->len = j;
  return 0;
}

int query_param_find(const char *q, size_t qlen, const char *name,
                     void *(*alloc)(void *ctx, size_t n), void *ctx,
                     nno_str *out) {
  const char *end = q + qlen;
  size_t nl = strlen(name);
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    if (!amp) amp = end;
    const char *eq = memchr(q, '=', (size_t)(amp - q));
    const char *kend = eq ? eq : amp;
    nno_str key;
    if (pct_decode(q, (size_t)(kend - q), alloc, ctx, &key)) return NNO_ENOMEM;
    if (key.len == nl && memcmp(key.ptr, name, nl) == 0) {
      if (!eq) return pct_decode(amp, 0, alloc, ctx, out);
      return pct_decode(eq + 1, (size_t)(amp - eq - 1), alloc, ctx, out);
    }
    q = amp + 1;
  }
  return NNO_ENOENT;
}
