/* Iterative JSON validation with an explicit container stack. */
#include "jsonv.h"

#include <stdint.h>
#include <string.h>

typedef struct cur {
  const unsigned char *p, *end;
} cur;

static void ws(cur *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int hexv(unsigned char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* One UTF-8 sequence starting at c->p (a byte >= 0x80). */
static int utf8(cur *c) {
  const unsigned char *p = c->p;
  size_t left = (size_t)(c->end - p);
  uint32_t cp;
  size_t n;
  if (p[0] >= 0xc2 && p[0] <= 0xdf) { n = 2; cp = p[0] & 0x1f; }
  else if (p[0] >= 0xe0 && p[0] <= 0xef) { n = 3; cp = p[0] & 0x0f; }
  else if (p[0] >= 0xf0 && p[0] <= 0xf4) { n = 4; cp = p[0] & 0x07; }
  else return 0;
  if (left < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  c->p += n;
  return 1;
}

static int string(cur *c) {
  c->p++; /* opening quote */
  while (c->p < c->end) {
    unsigned char ch = *c->p;
    if (ch == '"') { c->p++; return 1; }
    if (ch < 0x20) return 0;
    if (ch == '\\') {
      if (++c->p >= c->end) return 0;
      switch (*c->p) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
      case 't':
        c->p++;
        break;
      case 'u':
        if (c->end - c->p < 5) return 0;
        for (int i = 1; i <= 4; i++)
          if (hexv(c->p[i]) < 0) return 0;
        c->p += 5;
        break;
      default:
        return 0;
      }
    } else if (ch >= 0x80) {
      if (!utf8(c)) return 0;
    } else {
      c->p++;
    }
  }
  return 0;
}

static int digits(cur *c) {
  const unsigned char *s = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  return c->p > s;
}

static int number(cur *c) {
  if (*c->p == '-') c->p++;
  if (c->p >= c->end) return 0;
  if (*c->p == '0') c->p++;
  else if (!digits(c)) return 0;
  if (c->p < c->end && *c->p == '.') {
    c->p++;
    if (!digits(c)) return 0;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (!digits(c)) return 0;
  }
  return 1;
}

static int word(cur *c, const char *w, size_t n) {
  if ((size_t)(c->end - c->p) < n) return 0;
  for (size_t i = 0; i < n; i++)
    if (c->p[i] != (unsigned char)w[i]) return 0;
  c->p += n;
  return 1;
}

int json_valid(const char *s, size_t n) {
  cur c = {(const unsigned char *)s, (const unsigned char *)s + n};
  char stack[JSONV_MAX_DEPTH]; /* '{' or '[' */
  int depth = 0;
  ws(&c);
  for (;;) {
    /* Expect a value. */
    if (c.p >= c.end) return 0;
    switch (*c.p) {
    case '{':
    case '[':
      if (depth == JSONV_MAX_DEPTH) return 0;
      stack[depth++] = (char)*c.p;
      c.p++;
      ws(&c);
      if (c.p < c.end && *c.p == (stack[depth - 1] == '{' ? '}' : ']')) {
        c.p++;
        depth--;
        goto after_value;
      }
      if (stack[depth - 1] == '{') goto key;
      continue;
    case '"':
      if (!string(&c)) return 0;
      break;
    case 't': if (!word(&c, "true", 4)) return 0; break;
    case 'f': if (!word(&c, "false", 5)) return 0; break;
    case 'n': if (!word(&c, "null", 4)) return 0; break;
    default:
      if (*c.p != '-' && (*c.p < '0' || *c.p > '9')) return 0;
      if (!number(&c)) return 0;
    }
  after_value:
    ws(&c);
    if (depth == 0) return c.p == c.end;
    if (c.p >= c.end) return 0;
    if (*c.p == ',') {
      c.p++;
      ws(&c);
      if (stack[depth - 1] == '{') goto key;
      continue;
    }
    if (*c.p == (stack[depth - 1] == '{' ? '}' : ']')) {
      c.p++;
      depth--;
      goto after_value;
    }
    return 0;
  key:
    if (c.p >= c.end || *c.p != '"' || !string(&c)) return 0;
    ws(&c);
    if (c.p >= c.end || *c.p != ':') return 0;
    c.p++;
    ws(&c);
  }
}

size_t json_utf8_len(const char *s, size_t n) {
  cur c = {(const unsigned char *)s, (const unsigned char *)s + n};
  if (n == 0) return 0;
  if (*c.p < 0x80) return 1;
  return utf8(&c) ? (size_t)(c.p - (const unsigned char *)s) : 0;
}

void json_text_clean(char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    unsigned char ch = (unsigned char)s[i];
    size_t k = json_utf8_len(s + i, n - i);
    if (k == 0 || ch < 0x20 || ch == 0x7f) {
      s[i++] = '?';
      continue;
    }
    i += k;
  }
}
