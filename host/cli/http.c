/* The operator CLI's request layer: one blocking libcurl request at a time,
 * bounded in time and size, with the operator key as a bearer token, and
 * the one-line rendering of error answers. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unistd.h>

#include "cli.h"

#ifndef NNO_VERSION
#define NNO_VERSION "0"
#endif

/* The response body being read, capped at CLI_MAX_BODY. */
typedef struct sink {
  char *buf;
  size_t len, cap;
  int too_large, no_memory;
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  sink *s = ud;
  size_t n = size * nmemb;
  if (n > CLI_MAX_BODY - s->len) {
    s->too_large = 1;
    return 0;
  }
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n + 1) cap *= 2;
    if (cap > (size_t)CLI_MAX_BODY + 1) cap = (size_t)CLI_MAX_BODY + 1;
    char *b = realloc(s->buf, cap);
    if (!b) {
      s->no_memory = 1;
      return 0;
    }
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return n;
}

/* Copies header value `v[0..n)` without surrounding whitespace into out. */
static void copy_trimmed(char *out, size_t cap, const char *v, size_t n) {
  while (n && (*v == ' ' || *v == '\t')) v++, n--;
  while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' ||
               v[n - 1] == '\t'))
    n--;
  if (n >= cap) n = cap - 1;
  memcpy(out, v, n);
  out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  cli_resp *r = ud;
  size_t n = size * nmemb;
  if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
    /* A new status line (after a 100 Continue, say): forget the last. */
    r->etag[0] = r->reason[0] = '\0';
    const char *sp = memchr(p, ' ', n);
    if (sp) sp = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p));
    if (sp)
      copy_trimmed(r->reason, sizeof r->reason, sp + 1,
                   n - (size_t)(sp + 1 - p));
  } else if (n > 5 && !strncasecmp(p, "etag:", 5)) {
    copy_trimmed(r->etag, sizeof r->etag, p + 5, n - 5);
  }
  return n;
}

/* The base URL as shown in messages: without any user:password@. */
static void display_url(const char *url, char *out, size_t cap) {
  const char *host = strstr(url, "://");
  host = host ? host + 3 : url;
  const char *end = host + strcspn(host, "/?#");
  const char *at = NULL;
  for (const char *q = host; q < end; q++)
    if (*q == '@') at = q;
  if (at)
    snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
  else
    snprintf(out, cap, "%s", url);
}

int cli_key_ok(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n >= CLI_KEY_MAX) return 0;
  for (; *k; k++)
    if ((unsigned char)*k <= 0x20 || (unsigned char)*k >= 0x7f) return 0;
  return 1;
}

/* Reads DATA/operator.key (at most 4 KiB), trimmed, into c->key. */
static int read_key(cli *c, const char *path) {
  char buf[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg, "cannot read the operator key from %s: %s", path,
             strerror(errno));
    return cli_usage_error(msg,
                           "pass --key or set NNO_KEY, or point --data "
                           "or NNO_DATA at the host's data directory");
  }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  size_t len = n > 0 ? (size_t)n : 0, start = 0;
  buf[len] = '\0';
  while (len && (buf[len - 1] == ' ' ||
                 (buf[len - 1] >= '\t' && buf[len - 1] <= '\r')))
    buf[--len] = '\0';
  while (buf[start] == ' ' || (buf[start] >= '\t' && buf[start] <= '\r'))
    start++;
  if (!cli_key_ok(buf + start)) {
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg, "%s does not hold an operator key (%s)", path,
             n < 0      ? strerror(errno)
             : len == 0 ? "empty"
                        : "bad characters");
    return cli_usage_error(msg,
                           "it should be one line of printable "
                           "characters, as 'nno serve' wrote it");
  }
  snprintf(c->key, sizeof c->key, "%s", buf + start);
  return CLI_OK;
}

static int load_key(cli *c) {
  if (!c->key_arg) return read_key(c, c->key_path);
  snprintf(c->key, sizeof c->key, "%s", c->key_arg);
  return CLI_OK;
}

void cli_resp_free(cli_resp *r) {
  free(r->body);
  r->body = NULL;
  r->len = 0;
}

int cli_request(cli *c, const char *method, const char *path,
                const json_t *body, const char *if_match, cli_resp *r) {
  char url[sizeof c->url + CLI_PATH_MAX + 16];
  char shown[sizeof c->url];
  char auth[CLI_KEY_MAX + 32], match[160];
  struct curl_slist *h = NULL, *t;
  char *payload = NULL;
  sink s = {0};
  int rc = CLI_EREACH;

  memset(r, 0, sizeof *r);
  if (!c->key[0] && (rc = load_key(c)) != CLI_OK) return rc;
  display_url(c->url, shown, sizeof shown);
  if (!c->curl && !(c->curl = curl_easy_init())) {
    fprintf(stderr, "nno: cannot initialise libcurl\n");
    return CLI_EAPI;
  }
  CURL *e = c->curl;
  curl_easy_reset(e);
  snprintf(url, sizeof url, "%s/api/v1%s", c->url, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
  if (!(t = curl_slist_append(h, auth))) goto oom;
  h = t;
  if (!(t = curl_slist_append(h, "Accept: application/json"))) goto oom;
  h = t;
  /* No 100-continue round trip for large bodies. */
  if (!(t = curl_slist_append(h, "Expect:"))) goto oom;
  h = t;
  if (if_match) {
    snprintf(match, sizeof match, "If-Match: %s", if_match);
    if (!(t = curl_slist_append(h, match))) goto oom;
    h = t;
  }
  if (c->upload) {
    if (!(t = curl_slist_append(h, "Content-Type: application/gzip"))) goto oom;
    h = t;
  } else if (body) {
    payload = json_dumps(body, JSON_COMPACT);
    if (!payload) goto oom;
    if (!(t = curl_slist_append(h, "Content-Type: application/json"))) goto oom;
    h = t;
  } else if (!strcmp(method, "POST")) {
    /* An empty POST: no form content type either. */
    if (!(t = curl_slist_append(h, "Content-Type:"))) goto oom;
    h = t;
  }

  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "nno/" NNO_VERSION);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  /* Ids like ".." are sent as written, never resolved away. */
  curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CLI_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, CLI_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLI_MAX_BODY);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  if (!strcmp(method, "GET")) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    if (strcmp(method, "POST"))
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (c->upload) {
      /* Streamed from the file, never read whole into memory. */
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_READDATA, c->upload);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)c->upload_size);
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L); /* as long as it takes */
    } else if (body || !strcmp(method, "POST")) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload ? payload : "");
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)(payload ? strlen(payload) : 0));
    }
  }

  CURLcode res = curl_easy_perform(e);
  if (res == CURLE_OK) {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    if (!s.buf && !(s.buf = calloc(1, 1))) goto oom;
    r->body = s.buf;
    r->len = s.len;
    s.buf = NULL;
    rc = CLI_OK;
  } else if (s.too_large || res == CURLE_FILESIZE_EXCEEDED) {
    fprintf(stderr, "nno: the answer from %s is larger than %u MiB\n", shown,
            CLI_MAX_BODY >> 20);
    rc = CLI_EAPI;
  } else if (s.no_memory || res == CURLE_OUT_OF_MEMORY) {
    goto oom;
  } else {
    fprintf(stderr, "nno: cannot reach %s: %s\n", shown,
            curl_easy_strerror(res));
    fprintf(stderr, "hint: is 'nno serve' running? set --url or NNO_URL\n");
    rc = CLI_EREACH;
  }
  goto done;
oom:
  fprintf(stderr, "nno: out of memory\n");
  rc = CLI_EAPI;
done:
  /* The handle keeps pointers to these until the next reset. */
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(h);
  free(payload);
  free(s.buf);
  return rc;
}

/* Copies `s` into out[cap] on one line, at most `max` bytes: line breaks
 * and tabs become spaces, then cli_defang makes the rest safe for a
 * terminal (other C0, DEL and C1 controls become '?'). */
static void one_line(char *out, size_t cap, const char *s, size_t max) {
  size_t i = 0;
  for (; s && *s && i + 1 < cap && i < max; s++)
    out[i++] = *s == '\n' || *s == '\r' || *s == '\t' ? ' ' : *s;
  out[i] = '\0';
  cli_defang(out);
}

/* What to do about an error answer, by its status. */
static const char *status_hint(long status) {
  switch (status) {
  case 400:
  case 422:
    return "the server refused a value: the detail names it; --help lists "
           "the options";
  case 401:
    return "check the operator key: --key, NNO_KEY or DATA/operator.key "
           "(--data)";
  case 403:
    return "this key may not do that: use the operator key, or a key with "
           "the scope the detail names";
  case 404:
    return "check the ids given: the list commands show what exists";
  case 409:
    return "it conflicts with the current state: 'show' it, then try again";
  case 412:
    return "it changed meanwhile: run the command again";
  case 413:
    return "the request is larger than the host accepts";
  case 429:
    return "too many requests: wait a moment and try again";
  default:
    return status >= 500 ? "the host failed: its log has the details"
                         : "the server's answer says why";
  }
}

static int api_error(const cli_resp *r, const char *detail,
                     const char *hint);

int cli_api_error(const cli_resp *r, const char *detail) {
  return api_error(r, detail, NULL);
}

int cli_api_error_hint(const cli_resp *r, const char *hint) {
  return api_error(r, NULL, hint);
}

static int api_error(const cli_resp *r, const char *detail,
                     const char *hint) {
  char title[160], text[1100];
  json_t *j = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
  const char *t = NULL, *d = NULL;
  if (json_is_object(j)) {
    t = json_string_value(json_object_get(j, "title"));
    d = json_string_value(json_object_get(j, "detail"));
  }
  if (detail) d = detail;
  one_line(title, sizeof title,
           t && *t        ? t
           : r->reason[0] ? r->reason
                          : "HTTP error",
           sizeof title - 1);
  one_line(text, sizeof text, d, 1000);
  if (text[0])
    fprintf(stderr, "nno: %ld %s: %s\n", r->status, title, text);
  else
    fprintf(stderr, "nno: %ld %s\n", r->status, title);
  char rid[80];
  one_line(rid, sizeof rid, json_string_value(json_object_get(j, "request_id")),
           64);
  fprintf(stderr, "hint: %s", hint ? hint : status_hint(r->status));
  if (rid[0]) fprintf(stderr, " (request_id %s in the host's log)", rid);
  fputc('\n', stderr);
  json_decref(j);
  return CLI_EAPI;
}

int cli_call(cli *c, const char *method, const char *path, const json_t *body,
             const char *if_match, json_t **out, cli_resp *keep) {
  cli_resp local = {0}, *r = keep ? keep : &local;
  int rc = cli_request(c, method, path, body, if_match, r);
  if (out) *out = NULL;
  if (rc != CLI_OK) return rc;
  if (r->status < 200 || r->status > 299) {
    rc = cli_api_error(r, NULL);
  } else if (out && r->len) {
    json_error_t err;
    *out = json_loadb(r->body, r->len, 0, &err);
    if (!*out) {
      char msg[200];
      one_line(msg, sizeof msg, err.text, 160);
      fprintf(stderr, "nno: the %ld answer is not JSON: %s\n", r->status, msg);
      rc = CLI_EAPI;
    }
  }
  if (!keep || rc != CLI_OK) cli_resp_free(r);
  return rc;
}

/* Appends `s` percent-encoded (all but RFC 3986 unreserved characters; a
 * segment of only dots is encoded whole). */
static int put_escaped(char *out, size_t n, size_t *len, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  int dots = s[strspn(s, ".")] == '\0';
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    int keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
               (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
               ch == '~' || (ch == '.' && !dots);
    if (*len + (keep ? 1 : 3) >= n) return -1;
    if (keep) {
      out[(*len)++] = (char)ch;
    } else {
      out[(*len)++] = '%';
      out[(*len)++] = hex[ch >> 4];
      out[(*len)++] = hex[ch & 15];
    }
  }
  out[*len] = '\0';
  return 0;
}

int cli_path(char *out, size_t n, const char *fmt, ...) {
  va_list ap;
  size_t len = 0;
  int rc = 0;
  va_start(ap, fmt);
  out[0] = '\0';
  for (const char *p = fmt; *p && rc == 0; p++) {
    if (p[0] == '%' && p[1] == 's') {
      rc = put_escaped(out, n, &len, va_arg(ap, const char *));
      p++;
    } else if (len + 1 < n) {
      out[len++] = *p;
      out[len] = '\0';
    } else {
      rc = -1;
    }
  }
  va_end(ap);
  return rc;
}

int cli_query(char *out, size_t n, const char *key, const char *value) {
  if (!value) return 0;
  size_t len = strlen(out);
  int w =
      snprintf(out + len, n - len, "%c%s=", strchr(out, '?') ? '&' : '?', key);
  if (w < 0 || (size_t)w >= n - len) return -1;
  len += (size_t)w;
  return put_escaped(out, n, &len, value);
}

int cli_usage_error(const char *msg, const char *hint) {
  fprintf(stderr, "nno: %s\n", msg);
  if (hint) fprintf(stderr, "hint: %s\n", hint);
  return CLI_EUSAGE;
}
