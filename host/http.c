/* Strict, incremental HTTP/1.1 request reader (RFC 9112 framing, RFC 9110
 * field rules) with bounded memory. The contract is in http.h.
 *
 * The head is received line by line: each line is copied into one buffer
 * (only up to its LF, so nothing past the message is ever taken) and
 * validated when complete, so every byte is looked at a constant number of
 * times. Spans are kept as offsets while the buffer may still grow and become
 * pointers once, when the head is complete. NUL terminators are written in
 * place over the SP, ':' or CR that ends each piece. The body is copied as
 * is (Content-Length) or decoded by a small state machine (chunked).
 *
 * http-parser 2.9.4 is not used for framing: it accepts bare LF, obs-fold,
 * unbounded chunk extensions and lenient trailers, knows a fixed method
 * list, and reads past the end of a message unless paused; checking all that
 * beside it would scan every byte twice.
 */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_HEADER_BYTES 32768
#define DEFAULT_FIELD_BYTES 8192
#define DEFAULT_HEADERS 100
#define DEFAULT_BODY_BYTES (1024 * 1024)

#define MAX_EMPTY_LINES 8  /* CRLFs ignored before a request-line */
#define MAX_SIZE_DIGITS 32 /* hex digits in one chunk-size, zeros included */
#define MAX_LENGTH ((uint64_t)INT64_MAX) /* larger lengths are malformed */
#define KEEP_BYTES 16384   /* buffers up to this size survive a reset */
#define KEEP_FIELDS 64
#define FIRST_BYTES 1024
#define FIRST_FIELDS 16

/* Octet classes. */
#define C_TCHAR 0x01  /* token character (RFC 9110 5.6.2) */
#define C_VALUE 0x02  /* field-value octet: HTAB, SP, VCHAR, obs-text */
#define C_TARGET 0x04 /* request-target octet: VCHAR but '#' (no obs-text) */
#define C_HOST 0x08   /* reg-name octet: unreserved, sub-delims */
#define C_HEX 0x10

/* clang-format off */
static const unsigned char cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  15, 6,  3,  15, 7,  15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 6,  14, 6,  14, 6,  6,  /* 0x30 */
    6,  31, 31, 31, 31, 31, 31, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  6,  6,  7,  15, /* 0x50 */
    7,  31, 31, 31, 31, 31, 31, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};
/* clang-format on */

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')
#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)
#define IS_ALPHA(c) ((unsigned char)(((c) | 0x20) - 'a') < 26)

enum state {
  S_HEAD,
  S_BODY,     /* Content-Length bytes (or none) */
  S_SIZE,     /* chunk-size digits */
  S_SIZE_BWS, /* BWS after the digits: only ";" may follow */
  /* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted ) ] ) */
  S_EXT_PRE,     /* after ";": BWS, then a name */
  S_EXT_NAME,    /* in a name */
  S_EXT_NAME_WS, /* BWS after a name: "=" or ";" */
  S_EXT_EQ,      /* after "=": BWS, then a token or a quoted-string */
  S_EXT_VAL,     /* in a token value */
  S_EXT_QS,      /* in a quoted-string */
  S_EXT_QP,      /* after a backslash in a quoted-string */
  S_EXT_QEND,    /* right after a quoted-string */
  S_EXT_WS,      /* BWS after a value: only ";" may follow */
  S_SIZE_LF,
  S_DATA,
  S_DATA_CR,
  S_DATA_LF,
  S_TR_START, /* start of a trailer line */
  S_TR_NAME,
  S_TR_VALUE,
  S_TR_LF,
  S_TR_END_LF,
  S_DONE,
  S_ERROR,
};

enum form { F_ORIGIN, F_ASTERISK, F_ABSOLUTE };

typedef struct field {
  size_t name, name_len, value, value_len; /* offsets into buf */
} field;

struct http_reader {
  http_limits lim;
  enum state state;
  int status;
  const char *detail;
  int head_done;
  http_request req;

  /* Head bytes, then the NUL-terminated copies finish_head() makes. */
  char *buf;
  size_t cap, len;
  size_t line;  /* offset of the line being received */
  size_t lines; /* complete lines of the head, request-line included */
  unsigned empty;
  field *fields;
  size_t nfields, fields_cap;
  http_header *headers;
  size_t headers_cap;

  /* Request-line; the method starts at offset 0. */
  size_t method_len, target, target_len;
  enum form form;
  size_t auth, auth_len, apath, apath_len; /* absolute-form */
  int minor;

  /* What the fields said. */
  unsigned hosts;
  size_t host_field;
  int cl_seen, cl_range;
  uint64_t cl;
  int te_seen, te_chunked, te_last_chunked, te_other, te_params;
  int conn_close, conn_keep, expect_100, expect_other;

  /* Body. body_len counts the bytes decoded, spooled ones included. */
  char *body;
  size_t body_cap, body_len, body_max;
  uint64_t limit; /* this request's body bound (lim, or a spool's) */
  /* Spooling (http_reader_on_head): the body goes to `sink`, not `body`. */
  int spool;
  http_sink_fn sink;
  void *sink_ud;
  http_head_fn head_fn; /* kept across resets */
  void *head_ud;
  uint64_t left; /* Content-Length or chunk bytes still to come */
  size_t digits, ext_bytes, trailer_bytes, trailers;
  char empty_body[1];
};

static http_event fail(http_reader *r, int status, const char *detail) {
  r->state = S_ERROR;
  r->status = status;
  r->detail = detail;
  return HTTP_ERROR;
}

/* fail() for helpers that answer 1 (fine) or 0 (refused). */
static int bad(http_reader *r, int status, const char *detail) {
  fail(r, status, detail);
  return 0;
}

/* Make *buf hold at least need bytes, doubling; not past max when need fits
 * (max 0: no bound). 0 on allocation failure, *buf unchanged. */
static int grow(char **buf, size_t *cap, size_t need, size_t max) {
  size_t ncap;
  char *p;

  if (need <= *cap) return 1;
  ncap = *cap ? *cap : FIRST_BYTES;
  while (ncap < need) ncap = ncap <= SIZE_MAX / 2 ? ncap * 2 : need;
  if (max && ncap > max && need <= max) ncap = max;
  p = realloc(*buf, ncap);
  if (!p) return 0;
  *buf = p;
  *cap = ncap;
  return 1;
}

static int hexval(unsigned char c) {
  if (IS_DIGIT(c)) return c - '0';
  if (IS(c, C_HEX)) return (c | 0x20) - 'a' + 10;
  return -1;
}

/* uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2), narrowed to what
 * names a host: an IP literal ("[" hex digits, ':' and '.' "]") or a DNS
 * name, labels of [A-Za-z0-9-] joined by single dots, with at most one
 * trailing dot (the root: "a.b." is "a.b"). Never empty. RFC 3986's
 * reg-name also allows sub-delims, '_', '~' and pct-encoding; the host
 * routes on this name, and "a.b.." or "a.b%2e" would name a host that
 * matches none of its rules while standing for one that does. Userinfo
 * ('@') is refused with the rest. */
static int valid_host(const char *p, size_t n) {
  const char *e = p + n, *q = p;

  if (n == 0) return 0;
  if (*q == '[') {
    for (q++; q < e && *q != ']'; q++)
      if (!IS(*q, C_HEX) && *q != ':' && *q != '.') return 0;
    if (q == e || q == p + 1) return 0;
    q++;
  } else {
    size_t label = 0; /* octets of the current label */
    for (; q < e && *q != ':'; q++) {
      if (*q == '.') {
        if (label == 0) return 0; /* empty label: leading or doubled dot */
        label = 0;
      } else if (IS_ALPHA(*q) || IS_DIGIT(*q) || *q == '-') {
        label++;
      } else {
        return 0;
      }
    }
    if (q == p) return 0;
  }
  if (q == e) return 1;
  if (*q++ != ':' || e - q > 5) return 0;
  for (; q < e; q++)
    if (!IS_DIGIT(*q)) return 0;
  return 1;
}

/* Every '%' in p[0..n) starts a pct-encoded triplet. */
static int valid_pct(const char *p, size_t n) {
  const char *e = p + n, *q;

  while ((q = memchr(p, '%', (size_t)(e - p))) != NULL) {
    if (e - q < 3 || !IS(q[1], C_HEX) || !IS(q[2], C_HEX)) return 0;
    p = q + 3;
  }
  return 1;
}

/* absolute-form (RFC 9112 3.2.2): "http[s]://authority[/path][?query]". */
static int absolute_form(http_reader *r, char *t, char *te) {
  char *q = t, *a, *ae, *pe;
  size_t sn;

  while (q < te &&
         (IS_ALPHA(*q) || IS_DIGIT(*q) || *q == '+' || *q == '-' || *q == '.'))
    q++;
  if (q == t || !IS_ALPHA(*t) || te - q < 3 || memcmp(q, "://", 3) != 0)
    return bad(r, 400, "invalid request-target");
  sn = (size_t)(q - t);
  if (!(sn == 4 && strncasecmp(t, "http", 4) == 0) &&
      !(sn == 5 && strncasecmp(t, "https", 5) == 0))
    return bad(r, 400, "unsupported scheme in request-target");
  a = q + 3;
  for (ae = a; ae < te && *ae != '/' && *ae != '?'; ae++)
    ;
  if (!valid_host(a, (size_t)(ae - a)))
    return bad(r, 400, "invalid authority in request-target");
  pe = memchr(ae, '?', (size_t)(te - ae));
  if (!pe) pe = te;
  if (!valid_pct(ae, (size_t)(pe - ae)))
    return bad(r, 400, "invalid percent-encoding in request-target");
  r->form = F_ABSOLUTE;
  r->auth = (size_t)(a - r->buf);
  r->auth_len = (size_t)(ae - a);
  r->apath = (size_t)(ae - r->buf);
  r->apath_len = (size_t)(pe - ae);
  return 1;
}

/* request-line = method SP request-target SP HTTP-version, p[0..n) without
 * its CRLF, at offset 0 of buf. */
static int request_line(http_reader *r, char *p, size_t n) {
  char *end = p + n, *sp1, *t, *sp2, *v, *q;
  size_t vn, tn;

  if (memchr(p, '\r', n)) return bad(r, 400, "bare CR in request line");
  sp1 = memchr(p, ' ', n);
  if (!sp1 || sp1 == p) return bad(r, 400, "malformed request line");
  t = sp1 + 1;
  sp2 = memchr(t, ' ', (size_t)(end - t));
  if (!sp2) return bad(r, 400, "malformed request line");
  v = sp2 + 1;
  vn = (size_t)(end - v);
  if (sp2 == t || memchr(v, ' ', vn))
    return bad(r, 400, "too many spaces in request line");
  /* HTTP-version is case-sensitive, one digit each side. Same major with a
   * higher minor is read as 1.1 (RFC 9110 2.5). */
  if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || !IS_DIGIT(v[5]) || v[6] != '.' ||
      !IS_DIGIT(v[7]))
    return bad(r, 400, "malformed HTTP version");
  if (v[5] != '1') return bad(r, 505, "HTTP version not supported");
  r->minor = v[7] == '0' ? 0 : 1;

  for (q = p; q < sp1; q++)
    if (!IS(*q, C_TCHAR)) return bad(r, 400, "invalid character in method");
  r->method_len = (size_t)(sp1 - p);
  if (r->method_len == 7 && memcmp(p, "CONNECT", 7) == 0)
    return bad(r, 501, "CONNECT is not supported");

  for (q = t; q < sp2; q++)
    if (!IS(*q, C_TARGET))
      return bad(r, 400,
                 *q == '#' ? "fragment in request-target"
                 : (unsigned char)*q >= 0x80
                     ? "non-ASCII octet in request-target"
                     : "invalid character in request-target");
  tn = (size_t)(sp2 - t);
  r->target = (size_t)(t - p);
  r->target_len = tn;
  if (*t == '/') {
    const char *pe = memchr(t, '?', tn);
    if (!valid_pct(t, (size_t)((pe ? pe : sp2) - t)))
      return bad(r, 400, "invalid percent-encoding in request-target");
    r->form = F_ORIGIN;
  } else if (tn == 1 && *t == '*') {
    if (r->method_len != 7 || memcmp(p, "OPTIONS", 7) != 0)
      return bad(r, 400, "asterisk-form request-target requires OPTIONS");
    r->form = F_ASTERISK;
  } else if (!absolute_form(r, t, sp2)) {
    return 0;
  }
  *sp1 = '\0';
  *sp2 = '\0';
  return 1;
}

/* Calls fn(r, element, len, params) for the leading token of each non-empty
 * element of a comma list (RFC 9110 5.6.1); params is 1 when parameters
 * (after ';') follow, which are skipped unchecked. An element that is not a
 * token answers 0 when strict, else is skipped. */
static int each_token(const char *v, size_t n, int strict,
                      void (*fn)(http_reader *, const char *, size_t, int),
                      http_reader *r) {
  const char *s = v, *e = v + n;

  while (s < e) {
    while (s < e && (IS_OWS(*s) || *s == ',')) s++;
    if (s == e) break;
    const char *tok = s;
    while (s < e && IS(*s, C_TCHAR)) s++;
    size_t len = (size_t)(s - tok);
    while (s < e && IS_OWS(*s)) s++;
    if (len == 0 || (s < e && *s != ',' && *s != ';')) {
      if (strict) return 0;
    } else {
      fn(r, tok, len, s < e && *s == ';');
    }
    while (s < e && *s != ',') s++;
  }
  return 1;
}

static void te_coding(http_reader *r, const char *s, size_t n, int params) {
  if (n == 7 && strncasecmp(s, "chunked", 7) == 0) {
    /* chunked takes no parameters (RFC 9112 7.1): "chunked;x=y" is not
     * chunked, and reading it as such would frame differently from a
     * proxy that refuses it. */
    r->te_params |= params;
    r->te_chunked++;
    r->te_last_chunked = 1;
  } else {
    r->te_other = 1;
    r->te_last_chunked = 0;
  }
}

static void conn_option(http_reader *r, const char *s, size_t n, int params) {
  (void)params;
  if (n == 5 && strncasecmp(s, "close", 5) == 0)
    r->conn_close = 1;
  else if (n == 10 && strncasecmp(s, "keep-alive", 10) == 0)
    r->conn_keep = 1;
}

/* The fields that decide framing and connection handling. */
static int known_field(http_reader *r, const char *name, size_t nn,
                       const char *v, size_t vn) {
  size_t i;

  switch (nn) {
  case 4:
    if (strncasecmp(name, "host", 4) != 0) break;
    if (++r->hosts > 1) return bad(r, 400, "multiple Host header fields");
    if (!valid_host(v, vn)) return bad(r, 400, "invalid Host header field");
    r->host_field = r->nfields - 1;
    break;
  case 6:
    if (strncasecmp(name, "expect", 6) != 0) break;
    if (vn == 12 && strncasecmp(v, "100-continue", 12) == 0)
      r->expect_100 = 1;
    else
      r->expect_other = 1;
    break;
  case 10:
    if (strncasecmp(name, "connection", 10) == 0)
      each_token(v, vn, 0, conn_option, r);
    break;
  case 14:
    if (strncasecmp(name, "content-length", 14) != 0) break;
    /* Even an identical repeat is refused (RFC 9112 6.3 allows it). */
    if (r->cl_seen) return bad(r, 400, "multiple Content-Length header fields");
    r->cl_seen = 1;
    if (vn == 0) return bad(r, 400, "invalid Content-Length");
    for (i = 0; i < vn; i++) {
      unsigned d = (unsigned char)v[i] - '0';
      if (d > 9) return bad(r, 400, "invalid Content-Length");
      if (r->cl > (MAX_LENGTH - d) / 10)
        r->cl_range = 1; /* digits still checked: 400 either way */
      else
        r->cl = r->cl * 10 + d;
    }
    /* A length no 64-bit signed integer holds is malformed (400), not a
     * well-formed size over the limit (413). */
    if (r->cl_range) return bad(r, 400, "Content-Length out of range");
    break;
  case 17:
    if (strncasecmp(name, "transfer-encoding", 17) != 0) break;
    r->te_seen = 1;
    if (!each_token(v, vn, 1, te_coding, r))
      return bad(r, 400, "invalid Transfer-Encoding");
    if (r->te_params)
      return bad(r, 400, "parameters on the chunked transfer coding");
    break;
  default:
    break;
  }
  return 1;
}

/* field-line = field-name ":" OWS field-value OWS, p[0..n) without CRLF. */
static int field_line(http_reader *r, char *p, size_t n) {
  char *end = p + n, *q = p, *v, *ve, *s;
  field *f;

  if (IS_OWS(*p)) return bad(r, 400, "obs-fold line in header section");
  if (r->nfields >= r->lim.max_headers)
    return bad(r, 431, "too many header fields");
  while (q < end && IS(*q, C_TCHAR)) q++;
  if (q == end) return bad(r, 400, "missing colon in header field");
  if (*q != ':') {
    if (*q == '\r') return bad(r, 400, "bare CR in header section");
    if (IS_OWS(*q)) {
      for (s = q; s < end && IS_OWS(*s); s++)
        ;
      if (s < end && *s == ':')
        return bad(r, 400, "whitespace before colon in header field");
    }
    if (!memchr(q, ':', (size_t)(end - q)))
      return bad(r, 400, "missing colon in header field");
    return bad(r, 400, "invalid character in header field name");
  }
  if (q == p) return bad(r, 400, "empty header field name");
  for (v = q + 1; v < end && IS_OWS(*v); v++)
    ;
  for (ve = end; ve > v && IS_OWS(ve[-1]); ve--)
    ;
  for (s = v; s < ve; s++)
    if (!IS(*s, C_VALUE))
      return bad(r, 400,
                 *s == '\r' ? "bare CR in header section"
                            : "invalid character in header field value");

  if (r->nfields == r->fields_cap) {
    size_t ncap = r->fields_cap ? r->fields_cap * 2 : FIRST_FIELDS;
    field *nf;
    if (ncap > r->lim.max_headers) ncap = r->lim.max_headers;
    nf = realloc(r->fields, ncap * sizeof *nf);
    if (!nf) return bad(r, 500, "out of memory");
    r->fields = nf;
    r->fields_cap = ncap;
  }
  f = &r->fields[r->nfields++];
  f->name = (size_t)(p - r->buf);
  f->name_len = (size_t)(q - p);
  f->value = (size_t)(v - r->buf);
  f->value_len = (size_t)(ve - v);
  *q = '\0';
  *ve = '\0';
  return known_field(r, p, f->name_len, v, f->value_len);
}

/* The empty line ended the head: decide framing, then turn offsets into
 * the pointers of r->req. */
static http_event finish_head(http_reader *r) {
  http_request *q = &r->req;
  char *b, *w, *t, *qm;
  size_t i;

  if (r->minor == 1 && r->hosts == 0)
    return fail(r, 400, "missing Host header field");
  if (r->te_seen) {
    if (r->minor == 0)
      return fail(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (r->cl_seen)
      return fail(r, 400, "both Content-Length and Transfer-Encoding");
    if (r->te_chunked > 1)
      return fail(r, 400, "chunked applied more than once");
    if (!r->te_last_chunked)
      return fail(r, 400, "final transfer coding is not chunked");
    if (r->te_other) return fail(r, 501, "unsupported transfer coding");
  }
  if (r->expect_other) return fail(r, 417, "unsupported expectation");

  /* Room for the copies: path (+ "/" when empty) and authority. */
  if (!grow(&r->buf, &r->cap, r->len + r->target_len + 4, 0))
    return fail(r, 500, "out of memory");
  if (r->nfields > r->headers_cap) {
    http_header *h = realloc(r->headers, r->fields_cap * sizeof *h);
    if (!h) return fail(r, 500, "out of memory");
    r->headers = h;
    r->headers_cap = r->fields_cap;
  }

  b = r->buf;
  w = b + r->len;
  t = b + r->target;
  q->method = b;
  q->method_len = r->method_len;
  q->target = t;
  q->target_len = r->target_len;
  q->version_major = 1;
  q->version_minor = r->minor;
  q->query = "";
  q->query_len = 0;
  qm = r->form == F_ASTERISK ? NULL : memchr(t, '?', r->target_len);
  if (qm) {
    q->query = qm + 1;
    q->query_len = r->target_len - (size_t)(qm - t) - 1;
  }
  if (r->form == F_ABSOLUTE) {
    /* RFC 9112 3.2.2: the target's authority replaces the Host field. */
    q->host = w;
    q->host_len = r->auth_len;
    memcpy(w, b + r->auth, r->auth_len);
    w[r->auth_len] = '\0';
    w += r->auth_len + 1;
    q->path = w;
    if (r->apath_len == 0) {
      memcpy(w, "/", 2);
      q->path_len = 1;
    } else {
      memcpy(w, b + r->apath, r->apath_len);
      w[r->apath_len] = '\0';
      q->path_len = r->apath_len;
    }
  } else {
    if (qm) {
      q->path = w;
      q->path_len = (size_t)(qm - t);
      memcpy(w, t, q->path_len);
      w[q->path_len] = '\0';
    } else {
      q->path = t;
      q->path_len = r->target_len;
    }
    q->host = r->hosts ? b + r->fields[r->host_field].value : "";
    q->host_len = r->hosts ? r->fields[r->host_field].value_len : 0;
  }

  for (i = 0; i < r->nfields; i++) {
    r->headers[i].name = b + r->fields[i].name;
    r->headers[i].name_len = r->fields[i].name_len;
    r->headers[i].value = b + r->fields[i].value;
    r->headers[i].value_len = r->fields[i].value_len;
  }
  q->headers = r->nfields ? r->headers : NULL;
  q->nheaders = r->nfields;
  q->body = r->empty_body;
  q->body_len = 0;
  q->keep_alive =
      r->minor == 1 ? !r->conn_close : (r->conn_keep && !r->conn_close);
  /* RFC 9110 10.1.1: ignore 100-continue in an HTTP/1.0 request. */
  q->expect_continue = r->minor == 1 && r->expect_100;
  q->head = r->method_len == 4 && memcmp(b, "HEAD", 4) == 0;

  /* A body may be spooled instead (its own bound): ask before judging its
   * length, so a Content-Length over the bound is still refused here,
   * before any "100 Continue". One test when nobody asks. */
  r->limit = r->lim.max_body_bytes;
  if (r->head_fn && (r->te_seen || r->cl)) {
    uint64_t l = r->head_fn(r->head_ud, q);
    if (l) {
      r->limit = l;
      r->spool = 1;
    }
  }
  if (!r->te_seen && r->cl > r->limit)
    return fail(r, 413, "request body too large");

  if (r->te_seen) {
    r->state = S_SIZE;
    r->body_max = r->lim.max_body_bytes + 1;
  } else {
    r->state = S_BODY;
    r->left = r->cl;
    r->body_max = (size_t)r->cl + 1;
  }
  r->head_done = 1;
  return HTTP_HEAD_DONE;
}

/* A whole line (with its LF) ends at buf[len - 1]. */
static const char *bare_cr(const http_reader *r) {
  return r->lines == 0 ? "bare CR in request line"
                       : "bare CR in header section";
}

/* A line's error, told the same however the input was cut: fed octet by
 * octet, a bare CR is refused as soon as the octet after it arrives, before
 * anything else about its line is known, so a line holding one is refused
 * for it whatever else is wrong with it. Only on the error path. */
static http_event line_fail(http_reader *r, const char *p, size_t n) {
  if (memchr(p, '\r', n)) return fail(r, 400, bare_cr(r));
  return HTTP_ERROR;
}

static http_event end_line(http_reader *r) {
  char *p = r->buf + r->line;
  size_t n = r->len - r->line - 1;

  if (n == 0 || p[n - 1] != '\r') {
    fail(r, 400, "bare LF in header section");
    return line_fail(r, p, n);
  }
  n--;
  if (r->lines == 0) {
    if (n == 0) { /* RFC 9112 2.2: ignore CRLFs before the request-line */
      if (++r->empty > MAX_EMPTY_LINES)
        return fail(r, 400, "too many empty lines before request line");
      r->len = 0;
      return HTTP_NEED_MORE;
    }
    if (!request_line(r, p, n)) return HTTP_ERROR;
  } else if (n == 0) {
    return finish_head(r);
  } else if (!field_line(r, p, n)) {
    return line_fail(r, p, n);
  }
  r->lines++;
  r->line = r->len;
  return HTTP_NEED_MORE;
}

/* The line being received would pass a limit with the n bytes at p (up to
 * and with its LF, or to the end of the input). Only on this error path is
 * anything looked at twice. */
static http_event too_large(http_reader *r, const char *p, size_t n) {
  size_t have = r->len - r->line;
  size_t room = r->lim.max_field_bytes - have;
  const char *cr;

  /* Octet by octet, a CR among the octets that fit, with an octet after it
   * that is not LF, is refused as bare before the limit is reached. */
  if (r->lim.max_header_bytes - r->len < room)
    room = r->lim.max_header_bytes - r->len;
  for (const char *q = p; q < p + room && (cr = memchr(q, '\r',
                                                 (size_t)(p + room - q)));
       q = cr + 1)
    if (cr + 1 < p + n && cr[1] != '\n') return fail(r, 400, bare_cr(r));

  if (r->lines == 0) {
    size_t lim = r->lim.max_field_bytes;
    /* No SP in the whole allowed length: the method itself is too long,
     * which says nothing of the request-target. */
    if (!(have && memchr(r->buf + r->line, ' ', have)) &&
        !memchr(p, ' ', n < lim - have ? n : lim - have))
      return fail(r, 400, "method too long");
    return fail(r, 414, "request-target too long");
  }
  /* The limit the line reaches first, as fed octet by octet (the field's
   * when both are reached by the same octet). */
  if (r->lim.max_header_bytes - r->len < r->lim.max_field_bytes - have)
    return fail(r, 431, "header section too large");
  return fail(r, 431, "header field too large");
}

static http_event feed_head(http_reader *r, const char *data, size_t len,
                            size_t *consumed) {
  size_t i = 0;

  /* A line held back ends in CR: the next octet must be its LF. */
  if (len && r->len > r->line && r->buf[r->len - 1] == '\r' &&
      data[0] != '\n') {
    *consumed = 0;
    return fail(r, 400, bare_cr(r));
  }
  while (i < len) {
    const char *lf = memchr(data + i, '\n', len - i);
    size_t n = lf ? (size_t)(lf - (data + i)) + 1 : len - i;
    http_event ev;

    if (n > r->lim.max_header_bytes - r->len ||
        n > r->lim.max_field_bytes - (r->len - r->line)) {
      *consumed = i;
      return too_large(r, data + i, n);
    }
    if (!grow(&r->buf, &r->cap, r->len + n, r->lim.max_header_bytes)) {
      *consumed = i;
      return fail(r, 500, "out of memory");
    }
    memcpy(r->buf + r->len, data + i, n);
    r->len += n;
    i += n;
    if (!lf) {
      /* The line is incomplete: a CR in it with an octet after it is bare,
       * refused now instead of after a wait for an LF that may never come.
       * Only the tail of an input is looked at here, once. */
      const char *cr = memchr(data + i - n, '\r', n);
      if (cr && cr != data + len - 1) {
        *consumed = i;
        return fail(r, 400, bare_cr(r));
      }
      break;
    }
    ev = end_line(r);
    if (ev != HTTP_NEED_MORE) {
      *consumed = i;
      return ev;
    }
  }
  *consumed = i;
  return HTTP_NEED_MORE;
}

static int append_body(http_reader *r, const char *data, size_t n) {
  if (r->spool) {
    if (!r->sink || r->sink(r->sink_ud, data, n) != 0) return 0;
    r->body_len += n;
    return 1;
  }
  if (!grow(&r->body, &r->body_cap, r->body_len + n + 1, r->body_max)) return 0;
  memcpy(r->body + r->body_len, data, n);
  r->body_len += n;
  return 1;
}

static http_event message_done(http_reader *r) {
  r->state = S_DONE;
  if (r->body_len && !r->spool) {
    r->body[r->body_len] = '\0';
    r->req.body = r->body;
    r->req.body_len = r->body_len;
  }
  return HTTP_MESSAGE_DONE;
}

/* One octet of the chunk-size line after the size's digits (RFC 9112 7.1.1:
 * BWS, then chunk-ext, then CRLF). 0 if c cannot come here. */
static int ext_step(http_reader *r, unsigned char c) {
  switch (r->state) {
  case S_SIZE_BWS: /* BWS before ";": then only more BWS or ";" */
  case S_EXT_WS:
    if (IS_OWS(c)) return 1;
    if (c != ';') return 0;
    r->state = S_EXT_PRE;
    return 1;
  case S_EXT_PRE:
    if (IS_OWS(c)) return 1;
    if (!IS(c, C_TCHAR)) return 0;
    r->state = S_EXT_NAME;
    return 1;
  case S_EXT_NAME:
    if (IS(c, C_TCHAR)) return 1;
    if (c == '=')
      r->state = S_EXT_EQ;
    else if (IS_OWS(c))
      r->state = S_EXT_NAME_WS;
    else if (c == ';')
      r->state = S_EXT_PRE;
    else if (c == '\r')
      r->state = S_SIZE_LF;
    else
      return 0;
    return 1;
  case S_EXT_NAME_WS:
    if (IS_OWS(c)) return 1;
    if (c == '=')
      r->state = S_EXT_EQ;
    else if (c == ';')
      r->state = S_EXT_PRE;
    else
      return 0;
    return 1;
  case S_EXT_EQ:
    if (IS_OWS(c)) return 1;
    if (c == '"')
      r->state = S_EXT_QS;
    else if (IS(c, C_TCHAR))
      r->state = S_EXT_VAL;
    else
      return 0;
    return 1;
  case S_EXT_QS: /* qdtext / quoted-pair / DQUOTE */
    if (c == '"')
      r->state = S_EXT_QEND;
    else if (c == '\\')
      r->state = S_EXT_QP;
    else if (!IS(c, C_VALUE))
      return 0;
    return 1;
  case S_EXT_QP:
    if (!IS(c, C_VALUE)) return 0;
    r->state = S_EXT_QS;
    return 1;
  case S_EXT_VAL:
    if (IS(c, C_TCHAR)) return 1;
    /* A token value ends like a quoted one. */
    /* fall through */
  case S_EXT_QEND:
    if (IS_OWS(c))
      r->state = S_EXT_WS;
    else if (c == ';')
      r->state = S_EXT_PRE;
    else if (c == '\r')
      r->state = S_SIZE_LF;
    else
      return 0;
    return 1;
  default:
    return 0;
  }
}

#define FAIL(st, msg)                                                          \
  do {                                                                         \
    *consumed = i;                                                             \
    return fail(r, (st), (msg));                                               \
  } while (0)

static http_event feed_chunked(http_reader *r, const char *data, size_t len,
                               size_t *consumed) {
  size_t i = 0, n;

  while (i < len) {
    unsigned char c = (unsigned char)data[i];
    int d;

    switch (r->state) {
    case S_SIZE:
      d = hexval(c);
      if (d >= 0) {
        if (++r->digits > MAX_SIZE_DIGITS) FAIL(400, "chunk size too long");
        /* Past 2^63 - 1 the size is malformed, whatever follows. */
        if (r->left > (MAX_LENGTH - (unsigned)d) / 16)
          FAIL(400, "chunk size out of range");
        r->left = r->left * 16 + (unsigned)d;
        i++;
        break;
      }
      if (r->digits == 0 || (c != '\r' && c != ';' && !IS_OWS(c)))
        FAIL(400, "invalid chunk size");
      /* The digits ended: 413 as soon as the declared total passes the
       * limit (not at a digit, as more digits could make it malformed). */
      if (r->left > r->limit - r->body_len)
        FAIL(413, "request body too large");
      if (c == '\r') {
        r->state = S_SIZE_LF;
      } else {
        r->state = c == ';' ? S_EXT_PRE : S_SIZE_BWS;
        r->ext_bytes++;
      }
      i++;
      break;
    case S_SIZE_BWS:
    case S_EXT_PRE:
    case S_EXT_NAME:
    case S_EXT_NAME_WS:
    case S_EXT_EQ:
    case S_EXT_VAL:
    case S_EXT_QS:
    case S_EXT_QP:
    case S_EXT_QEND:
    case S_EXT_WS:
      if (++r->ext_bytes > r->lim.max_header_bytes)
        FAIL(400, "chunk extensions too long");
      if (!ext_step(r, c))
        FAIL(400, c == '\n'                ? "bare LF in chunk size line"
                  : r->state == S_SIZE_BWS ? "invalid chunk size"
                  : IS(c, C_VALUE) || c == '\r'
                      ? "invalid chunk extension"
                      : "invalid character in chunk extension");
      i++;
      break;
    case S_SIZE_LF:
      if (c != '\n') FAIL(400, "bare CR in chunk size line");
      r->digits = 0;
      r->state = r->left ? S_DATA : S_TR_START;
      i++;
      break;
    case S_DATA:
      n = len - i < r->left ? len - i : (size_t)r->left;
      if (!append_body(r, data + i, n))
        FAIL(500, r->spool ? "cannot store the request body" : "out of memory");
      r->left -= n;
      i += n;
      if (r->left == 0) r->state = S_DATA_CR;
      break;
    case S_DATA_CR:
    case S_DATA_LF:
      if (c != (r->state == S_DATA_CR ? '\r' : '\n'))
        FAIL(400, "missing CRLF after chunk data");
      r->state = r->state == S_DATA_CR ? S_DATA_LF : S_SIZE;
      i++;
      break;
    default: /* trailer section: checked like the head, then discarded */
      if (++r->trailer_bytes > r->lim.max_header_bytes)
        FAIL(431, "trailer section too large");
      switch (r->state) {
      case S_TR_START:
        if (c == '\r') {
          r->state = S_TR_END_LF;
        } else if (IS(c, C_TCHAR)) {
          if (++r->trailers > r->lim.max_headers)
            FAIL(431, "too many trailer fields");
          r->state = S_TR_NAME;
        } else {
          FAIL(400, IS_OWS(c)   ? "obs-fold line in trailer section"
                    : c == '\n' ? "bare LF in trailer section"
                    : c == ':'  ? "empty trailer field name"
                                : "invalid character in trailer field name");
        }
        break;
      case S_TR_NAME:
        if (c == ':')
          r->state = S_TR_VALUE;
        else if (!IS(c, C_TCHAR))
          FAIL(400, IS_OWS(c) ? "whitespace before colon in trailer field"
                              : "invalid character in trailer field name");
        break;
      case S_TR_VALUE:
        if (c == '\r')
          r->state = S_TR_LF;
        else if (!IS(c, C_VALUE))
          FAIL(400, c == '\n' ? "bare LF in trailer section"
                              : "invalid character in trailer field value");
        break;
      case S_TR_LF:
      case S_TR_END_LF:
        if (c != '\n') FAIL(400, "bare CR in trailer section");
        if (r->state == S_TR_END_LF) {
          *consumed = i + 1;
          return message_done(r);
        }
        r->state = S_TR_START;
        break;
      default:
        FAIL(500, "internal state error");
      }
      i++;
      break;
    }
  }
  *consumed = i;
  return HTTP_NEED_MORE;
}

#undef FAIL

http_event http_reader_feed(http_reader *r, const char *data, size_t len,
                            size_t *consumed) {
  size_t n;

  *consumed = 0;
  switch (r->state) {
  case S_HEAD:
    return feed_head(r, data, len, consumed);
  case S_BODY:
    n = len < r->left ? len : (size_t)r->left;
    if (n && !append_body(r, data, n))
      return fail(r, 500, r->spool ? "cannot store the request body"
                                   : "out of memory");
    r->left -= n;
    *consumed = n;
    return r->left ? HTTP_NEED_MORE : message_done(r);
  case S_DONE:
    return HTTP_MESSAGE_DONE;
  case S_ERROR:
    return HTTP_ERROR;
  default:
    return feed_chunked(r, data, len, consumed);
  }
}

http_reader *http_reader_new(const http_limits *limits) {
  http_reader *r = calloc(1, sizeof *r);

  if (!r) return NULL;
  r->lim = *limits;
  if (!r->lim.max_header_bytes) r->lim.max_header_bytes = DEFAULT_HEADER_BYTES;
  if (!r->lim.max_headers) r->lim.max_headers = DEFAULT_HEADERS;
  if (!r->lim.max_body_bytes) r->lim.max_body_bytes = DEFAULT_BODY_BYTES;
  if (!r->lim.max_field_bytes) r->lim.max_field_bytes = DEFAULT_FIELD_BYTES;
  if (r->lim.max_field_bytes > r->lim.max_header_bytes)
    r->lim.max_field_bytes = r->lim.max_header_bytes;
  /* body_max = limit + 1 must not wrap. */
  if (r->lim.max_body_bytes == SIZE_MAX) r->lim.max_body_bytes = SIZE_MAX - 1;
  return r;
}

void http_reader_free(http_reader *r) {
  if (!r) return;
  free(r->buf);
  free(r->fields);
  free(r->headers);
  free(r->body);
  free(r);
}

void http_reader_reset(http_reader *r) {
  http_reader keep = *r;

  /* Small buffers stay, so a keep-alive connection does not allocate per
   * request; a large one goes back to the allocator. */
  if (keep.cap > KEEP_BYTES) {
    free(keep.buf);
    keep.buf = NULL;
    keep.cap = 0;
  }
  if (keep.body_cap > KEEP_BYTES) {
    free(keep.body);
    keep.body = NULL;
    keep.body_cap = 0;
  }
  if (keep.fields_cap > KEEP_FIELDS) {
    free(keep.fields);
    free(keep.headers);
    keep.fields = NULL;
    keep.headers = NULL;
    keep.fields_cap = keep.headers_cap = 0;
  }
  memset(r, 0, sizeof *r);
  r->lim = keep.lim;
  r->buf = keep.buf;
  r->cap = keep.cap;
  r->body = keep.body;
  r->body_cap = keep.body_cap;
  r->fields = keep.fields;
  r->fields_cap = keep.fields_cap;
  r->headers = keep.headers;
  r->headers_cap = keep.headers_cap;
  r->head_fn = keep.head_fn;
  r->head_ud = keep.head_ud;
}

void http_reader_on_head(http_reader *r, http_head_fn fn, void *ud) {
  r->head_fn = fn;
  r->head_ud = ud;
}

int http_reader_spooling(const http_reader *r) { return r->spool; }

void http_reader_spool(http_reader *r, http_sink_fn sink, void *ud) {
  r->sink = sink;
  r->sink_ud = ud;
}

int64_t http_reader_content_length(const http_reader *r) {
  return r->te_seen ? -1 : (int64_t)r->cl;
}

int http_reader_unspool(http_reader *r) {
  r->spool = 0;
  r->sink = NULL;
  r->limit = r->lim.max_body_bytes;
  if (r->state != S_ERROR && !r->te_seen && r->cl > r->limit) {
    fail(r, 413, "request body too large");
    return -1;
  }
  return 0;
}

int http_reader_started(const http_reader *r) {
  /* Leading CRLFs alone do not start a request (so an idle keep-alive
   * connection stays idle after a client's stray CRLF). */
  return r->state != S_HEAD || (r->len > 0 && r->buf[0] != '\r');
}

int http_reader_head_done(const http_reader *r) { return r->head_done; }

uint64_t http_reader_body_need(const http_reader *r) {
  if (!r->head_done || r->state == S_ERROR || r->spool) return 0;
  if (!r->te_seen) return r->cl;
  /* While its digits arrive, r->left is not yet a chunk's size. */
  return r->body_len + (r->state == S_SIZE ? 0 : r->left);
}

const http_request *http_reader_request(const http_reader *r) {
  return r->head_done ? &r->req : NULL;
}

int http_reader_error_status(const http_reader *r) {
  return r->state == S_ERROR ? r->status : 0;
}

const char *http_reader_error_detail(const http_reader *r) {
  return r->state == S_ERROR ? r->detail : "";
}

const http_header *http_request_header(const http_request *req,
                                       const char *name) {
  size_t i, n = strlen(name);

  for (i = 0; i < req->nheaders; i++)
    if (req->headers[i].name_len == n &&
        strncasecmp(req->headers[i].name, name, n) == 0)
      return &req->headers[i];
  return NULL;
}
