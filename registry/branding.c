/* Platform branding checks (branding.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "branding.h"

/* The members, in the order audit rows list them. */
static const char *const members[] = {"logo", "primary", "accent",
                                      "background", "foreground"};
#define NMEMBERS (sizeof members / sizeof members[0])

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int branding_colour(const char *s, char out[8]) {
  static const char digits[] = "0123456789abcdef";
  if (!s || s[0] != '#') return -1;
  size_t n = strlen(s + 1);
  if (n != 3 && n != 6) return -1;
  out[0] = '#';
  for (size_t i = 0; i < 6; i++) {
    int v = hexval(s[1 + (n == 3 ? i / 2 : i)]);
    if (v < 0) return -1;
    out[1 + i] = digits[v];
  }
  out[7] = '\0';
  return 0;
}

/* The relative luminance of "#rrggbb" (WCAG 2: sRGB channels linearised,
 * weighted 0.2126, 0.7152, 0.0722). */
static double luminance(const char *c) {
  static const double w[3] = {0.2126, 0.7152, 0.0722};
  double l = 0;
  for (int i = 0; i < 3; i++) {
    double v = (hexval(c[1 + 2 * i]) * 16 + hexval(c[2 + 2 * i])) / 255.0;
    v = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
    l += w[i] * v;
  }
  return l;
}

double branding_contrast(const char *a, const char *b) {
  double la = luminance(a), lb = luminance(b);
  return la > lb ? (la + 0.05) / (lb + 0.05) : (lb + 0.05) / (la + 0.05);
}

static int b64char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int branding_logo_valid(const char *s, size_t len) {
  static const char *const types[] = {"png", "jpeg", "gif", "webp",
                                      "svg+xml"};
  if (!s || len > BRANDING_LOGO_MAX || len < 11 ||
      memcmp(s, "data:image/", 11) != 0)
    return 0;
  const char *p = s + 11, *end = s + len;
  size_t i;
  for (i = 0; i < sizeof types / sizeof types[0]; i++) {
    size_t tl = strlen(types[i]);
    if ((size_t)(end - p) > tl + 8 && memcmp(p, types[i], tl) == 0 &&
        memcmp(p + tl, ";base64,", 8) == 0) {
      p += tl + 8;
      break;
    }
  }
  if (i == sizeof types / sizeof types[0]) return 0;
  size_t n = (size_t)(end - p);
  if (n == 0 || n % 4) return 0;
  for (size_t j = 0; j < n; j++) {
    if (b64char(p[j])) continue;
    /* '=' only as the last one or two characters. */
    if (p[j] == '=' && j >= n - 2 && (j == n - 1 || p[n - 1] == '='))
      continue;
    return 0;
  }
  return 1;
}

static const char *kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* Static names for the problem's "field" member. */
static const char *const field_names[] = {
    "branding.logo", "branding.primary", "branding.accent",
    "branding.background", "branding.foreground"};

static int refuse(char *field, const char *name, char *msg, size_t cap,
                  const char *text) {
  snprintf(field, BRANDING_FIELD_MAX, "%s", name);
  snprintf(msg, cap, "field \"%s\": %s", name, text);
  return -1;
}

int branding_check(const json_t *in, json_t **out, char *field, char *msg,
                   size_t cap) {
  char text[160];
  *out = NULL;
  if (json_is_null(in)) return 0;
  if (!json_is_object(in)) {
    snprintf(text, sizeof text, "expected an object or null, got %s",
             kind(in));
    return refuse(field, "branding", msg, cap, text);
  }
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)in, k, v) {
    size_t i = 0;
    while (i < NMEMBERS && strcmp(k, members[i]) != 0) i++;
    if (i == NMEMBERS) {
      /* Named as sent, bytes outside [A-Za-z0-9_-] shown as '?'. */
      char name[65];
      size_t n = 0;
      for (; k[n] && n < sizeof name - 1; n++) {
        char c = k[n];
        name[n] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-'
                      ? c
                      : '?';
      }
      name[n] = '\0';
      snprintf(field, BRANDING_FIELD_MAX, "branding.%s", name);
      snprintf(msg, cap,
               "field \"branding.%s\": unknown field (expected logo, "
               "primary, accent, background, foreground)",
               name);
      return -1;
    }
  }
  json_t *o = json_object();
  if (!o) return refuse(field, "branding", msg, cap, "out of memory");
  char colour[NMEMBERS][8];
  int has[NMEMBERS] = {0};
  for (size_t i = 0; i < NMEMBERS; i++) {
    v = json_object_get(in, members[i]);
    if (!v) continue;
    if (!json_is_string(v)) {
      snprintf(text, sizeof text, "expected a string, got %s", kind(v));
      goto refused;
    }
    const char *s = json_string_value(v);
    if (i == 0) {
      size_t n = json_string_length(v);
      if (n > BRANDING_LOGO_MAX) {
        snprintf(text, sizeof text,
                 "the logo is %zu bytes of text, at most %d (a data: URI of "
                 "about %d KiB of image)",
                 n, BRANDING_LOGO_MAX, BRANDING_LOGO_MAX * 3 / 4 / 1024);
        goto refused;
      }
      if (!branding_logo_valid(s, n)) {
        snprintf(text, sizeof text,
                 "expected a data: URI "
                 "\"data:image/{png|jpeg|gif|webp|svg+xml};base64,...\"");
        goto refused;
      }
      json_object_set(o, members[i], (json_t *)v);
    } else {
      if (branding_colour(s, colour[i])) {
        char q[40];
        snprintf(q, sizeof q, "%.24s", s);
        for (char *c = q; *c; c++)
          if ((unsigned char)*c < 0x20 || *c == '"' || *c == '\\') *c = '?';
        snprintf(text, sizeof text,
                 "expected a colour \"#rrggbb\" or \"#rgb\", got \"%s\"", q);
        goto refused;
      }
      has[i] = 1;
      json_object_set_new(o, members[i], json_string(colour[i]));
    }
    continue;
  refused:
    json_decref(o);
    return refuse(field, field_names[i], msg, cap, text);
  }
  /* members: 1 primary, 3 background, 4 foreground */
  if (has[3] && has[4]) {
    double r = branding_contrast(colour[4], colour[3]);
    if (r < BRANDING_MIN_CONTRAST) {
      json_decref(o);
      snprintf(field, BRANDING_FIELD_MAX, "%s", field_names[4]);
      /* Rounded down: a ratio shown as 4.50 always passes. */
      snprintf(msg, cap,
               "field \"branding.foreground\": the contrast of %s on %s is "
               "%.2f:1, at least %.1f:1 is needed",
               colour[4], colour[3], floor(r * 100) / 100,
               BRANDING_MIN_CONTRAST);
      return -1;
    }
  }
  if (has[1]) {
    double r = branding_contrast("#ffffff", colour[1]);
    if (r < BRANDING_MIN_CONTRAST) {
      json_decref(o);
      snprintf(field, BRANDING_FIELD_MAX, "%s", field_names[1]);
      snprintf(msg, cap,
               "field \"branding.primary\": the contrast of white text on %s "
               "is %.2f:1, at least %.1f:1 is needed",
               colour[1], floor(r * 100) / 100, BRANDING_MIN_CONTRAST);
      return -1;
    }
  }
  if (json_object_size(o) == 0) {
    json_decref(o);
    return 0;
  }
  *out = o;
  return 0;
}

json_t *branding_changed(const json_t *before, const json_t *after) {
  json_t *a = json_array();
  if (!a) return NULL;
  for (size_t i = 0; i < NMEMBERS; i++) {
    json_t *x = before ? json_object_get(before, members[i]) : NULL;
    json_t *y = after ? json_object_get(after, members[i]) : NULL;
    if (!(x == y || (x && y && json_equal(x, y))))
      json_array_append_new(a, json_string(members[i]));
  }
  return a;
}
