/* Problems for browsers: problem+json rendered as an HTML page for a
 * navigation (problem_html.h). */
#include "problem_html.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Bodies past this are not parsed (a problem is a few hundred bytes). */
#define PROBLEM_MAX 65536

static const char html_headers[] =
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Security-Policy: default-src 'none'; script-src 'self'; "
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Cache-Control: no-store\r\n";

/* Header names the page sets itself: dropped from what the answer had. */
static const char *const replaced[] = {
    "content-type", "content-security-policy", "x-frame-options",
    "referrer-policy", "x-content-type-options", "cache-control"};

/* The q of one media range's parameters ("; q=0.5; x=y"): 1000 for 1,
 * 0 for an unreadable one. */
static int q_of(const char *p, const char *end) {
  while (p < end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *stop = semi ? semi : end;
    while (p < stop && (*p == ' ' || *p == '\t' || *p == ';')) p++;
    if (stop - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      p += 2;
      int q = 0, scale = 1000, digits = 0;
      if (p < stop && (*p == '0' || *p == '1')) q = (*p++ - '0') * 1000;
      else return 0;
      if (p < stop && *p == '.') {
        p++;
        while (p < stop && *p >= '0' && *p <= '9' && digits < 3) {
          scale /= 10;
          q += (*p++ - '0') * scale;
          digits++;
        }
      }
      return q > 1000 ? 1000 : q;
    }
    p = semi ? semi + 1 : end;
  }
  return 1000;
}

static int range_is(const char *p, size_t n, const char *type) {
  return n == strlen(type) && strncasecmp(p, type, n) == 0;
}

int problem_html_wanted(const http_request *hr) {
  const http_header *h = http_request_header(hr, "sec-fetch-mode");
  if (h && h->value_len == 8 && strncasecmp(h->value, "navigate", 8) == 0)
    return 1;
  h = http_request_header(hr, "accept");
  if (!h) return 0;
  int html = -1, json = -1;
  const char *p = h->value, *end = h->value + h->value_len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    while (p < stop && (*p == ' ' || *p == '\t')) p++;
    const char *t = p;
    while (p < stop && *p != ';' && *p != ' ' && *p != '\t') p++;
    size_t tl = (size_t)(p - t);
    int q = q_of(p, stop);
    if (range_is(t, tl, "text/html")) {
      if (q > html) html = q;
    } else if (range_is(t, tl, "application/json") ||
               range_is(t, tl, "application/problem+json") ||
               range_is(t, tl, "application/*") || range_is(t, tl, "*/*")) {
      if (q > json) json = q;
    }
    p = comma ? comma + 1 : end;
  }
  return html > 0 && html > json;
}

/* Append `s` with &, <, >, " and ' escaped. */
static int append_text(buf *b, const char *s) {
  const char *start = s;
  for (; *s; s++) {
    const char *e = NULL;
    switch (*s) {
    case '&': e = "&amp;"; break;
    case '<': e = "&lt;"; break;
    case '>': e = "&gt;"; break;
    case '"': e = "&quot;"; break;
    case '\'': e = "&#39;"; break;
    default: continue;
    }
    if (buf_append(b, start, (size_t)(s - start), SIZE_MAX) ||
        buf_append(b, e, strlen(e), SIZE_MAX))
      return -1;
    start = s + 1;
  }
  return buf_append(b, start, (size_t)(s - start), SIZE_MAX);
}

static int append(buf *b, const char *s) {
  return buf_append(b, s, strlen(s), SIZE_MAX);
}

/* Is the line p..p+n (without CRLF) the header `name`? */
static int line_is(const char *p, size_t n, const char *name) {
  size_t nl = strlen(name);
  return n > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0;
}

/* 1 if `headers` holds Content-Type: application/problem+json. */
static int is_problem(const buf *headers) {
  const char *p = headers->p, *end = headers->p + headers->len;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n && p[n - 1] == '\r') n--;
    if (line_is(p, n, "content-type")) {
      const char *v = p + 13;
      size_t vl = n - 13;
      while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
      return vl >= 24 && strncasecmp(v, "application/problem+json", 24) == 0;
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

int problem_html_render(buf *headers, buf *body, int status) {
  buf h = {0}, b = {0};
  json_t *doc = NULL;
  char num[8];
  if (!headers->p || !is_problem(headers) || !body->p ||
      body->len > PROBLEM_MAX)
    return 0;
  doc = json_loadb(body->p, body->len, 0, NULL);
  if (!json_is_object(doc)) goto fail;
  const char *title = json_string_value(json_object_get(doc, "title"));
  const char *detail = json_string_value(json_object_get(doc, "detail"));
  const char *rid = json_string_value(json_object_get(doc, "request_id"));
  if (!title) title = "Error";
  snprintf(num, sizeof num, "%d", status);

  if (append(&b, "<!doctype html>\n<html lang=\"en\">\n<head>\n"
                 "<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, "
                 "initial-scale=1\">\n<title>") ||
      append(&b, num) || append(&b, " ") || append_text(&b, title) ||
      append(&b, "</title>\n</head>\n<body>\n<main data-status=\"") ||
      append(&b, num) || append(&b, "\">\n<h1>") || append_text(&b, title) ||
      append(&b, "</h1>\n") ||
      (detail && (append(&b, "<p>") || append_text(&b, detail) ||
                  append(&b, "</p>\n"))) ||
      (rid && (append(&b, "<p>Request id: <code>") || append_text(&b, rid) ||
               append(&b, "</code></p>\n"))) ||
      append(&b, "</main>\n</body>\n</html>\n"))
    goto fail;

  /* The answer's other header lines, then the page's own. */
  const char *p = headers->p, *end = headers->p + headers->len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *next = nl ? nl + 1 : end;
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n && p[n - 1] == '\r') n--;
    int drop = 0;
    for (size_t i = 0; i < sizeof replaced / sizeof *replaced; i++)
      if (line_is(p, n, replaced[i])) drop = 1;
    if (!drop && n &&
        (buf_append(&h, p, n, SIZE_MAX) || buf_append(&h, "\r\n", 2, SIZE_MAX)))
      goto fail;
    p = next;
  }
  if (buf_append(&h, html_headers, sizeof html_headers - 1, SIZE_MAX))
    goto fail;

  json_decref(doc);
  buf_free(headers);
  buf_free(body);
  *headers = h;
  *body = b;
  return 1;
fail:
  json_decref(doc);
  buf_free(&h);
  buf_free(&b);
  return 0;
}
