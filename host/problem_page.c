/* Problems as HTML pages for browser navigations (see problem_page.h). */
#include "problem_page.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const http_header *header(const http_request *hr, const char *name) {
  for (size_t i = 0; i < hr->nheaders; i++)
    if (strcasecmp(hr->headers[i].name, name) == 0) return &hr->headers[i];
  return NULL;
}

static int value_is(const http_header *h, const char *v) {
  size_t n = strlen(v);
  return h->value_len == n && strncasecmp(h->value, v, n) == 0;
}

int problem_page_wanted(const http_request *hr) {
  if (!hr || !((hr->method_len == 3 && memcmp(hr->method, "GET", 3) == 0) ||
               (hr->method_len == 4 && memcmp(hr->method, "HEAD", 4) == 0)))
    return 0;
  const http_header *mode = header(hr, "Sec-Fetch-Mode");
  if (mode) return value_is(mode, "navigate");
  const http_header *accept = header(hr, "Accept");
  return accept && accept->value_len >= 9 &&
         strncasecmp(accept->value, "text/html", 9) == 0;
}

/* Append `s` (`n` bytes) with &, <, >, " and ' escaped; control bytes
 * but tab and newline are dropped. */
static int html_append(buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *e = NULL;
    switch (s[i]) {
    case '&': e = "&amp;"; break;
    case '<': e = "&lt;"; break;
    case '>': e = "&gt;"; break;
    case '"': e = "&quot;"; break;
    case '\'': e = "&#39;"; break;
    default:
      if ((unsigned char)s[i] < 32 && s[i] != '\t' && s[i] != '\n') continue;
    }
    if (e ? buf_append(b, e, strlen(e), SIZE_MAX)
          : buf_append(b, s + i, 1, SIZE_MAX))
      return -1;
  }
  return 0;
}

static int lit(buf *b, const char *s) {
  return buf_append(b, s, strlen(s), SIZE_MAX);
}

static void head_line(buf *h, const char *name, const char *value) {
  (void)header_line_add(h, name, strlen(name), value, strlen(value));
}

void problem_page_build(buf *headers, buf *body, int status,
                        const char *title, const char *detail,
                        const char *rid, size_t rid_len) {
  char num[16];
  snprintf(num, sizeof num, "%d", status);
  headers->len = 0;
  body->len = 0;
  head_line(headers, "Content-Type", "text/html; charset=utf-8");
  head_line(headers, "Content-Security-Policy",
            "default-src 'none'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'");
  head_line(headers, "X-Content-Type-Options", "nosniff");
  head_line(headers, "Cache-Control", "no-store");
  head_line(headers, "Vary", "Accept, Sec-Fetch-Mode");
  /* A failed append leaves a shorter page: never an error of its own. */
  (void)(lit(body,
             "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width, "
             "initial-scale=1\"><meta name=\"color-scheme\" content=\"light "
             "dark\"><title>") ||
         lit(body, num) || lit(body, " ") ||
         html_append(body, title, strlen(title)) ||
         lit(body, "</title></head>\n<body><main data-status=\"") ||
         lit(body, num) || lit(body, "\"><h1>") ||
         html_append(body, title, strlen(title)) ||
         lit(body, "</h1>\n<p id=\"problem-detail\">") ||
         (detail && html_append(body, detail, strlen(detail))) ||
         lit(body, "</p>\n<p>Error ") || lit(body, num) ||
         lit(body, ". Request id: <code id=\"request-id\">") ||
         html_append(body, rid, rid_len) ||
         lit(body, "</code></p></main></body></html>\n"));
}
