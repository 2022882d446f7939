/* The operator CLI's human output: aligned tables and `key: value` lines,
 * with every value from the server made safe for a terminal. */
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"

/* Replaces, in place, what a terminal would interpret: C0 controls, DEL
 * and C1 controls (UTF-8 C2 80..C2 9F) become '?'. */
static void defang(char *s) {
  char *w = s;
  for (char *p = s; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch < 0x20 || ch == 0x7f) {
      *w++ = '?';
    } else if (ch == 0xc2 && (unsigned char)p[1] >= 0x80 &&
               (unsigned char)p[1] <= 0x9f) {
      *w++ = '?';
      p++;
    } else {
      *w++ = (char)ch;
    }
  }
  *w = '\0';
}

static int is_scalar(const json_t *v) {
  return json_is_string(v) || json_is_number(v) || json_is_boolean(v) ||
         json_is_null(v);
}

static char *scalar_text(const json_t *v) {
  char buf[64];
  if (!v || json_is_null(v)) return strdup("-");
  if (json_is_string(v)) return strdup(json_string_value(v));
  if (json_is_true(v)) return strdup("true");
  if (json_is_false(v)) return strdup("false");
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  } else {
    snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
  }
  return strdup(buf);
}

char *cli_text(const json_t *v) {
  char *s = NULL;
  if (!v || is_scalar(v)) {
    s = scalar_text(v);
  } else if (json_is_array(v) && json_array_size(v) == 0) {
    s = strdup("-");
  } else if (json_is_array(v)) {
    size_t i, len = 0;
    json_t *e;
    int flat = 1;
    json_array_foreach(v, i, e) flat = flat && is_scalar(e);
    if (!flat) {
      s = json_dumps(v, JSON_COMPACT);
    } else if ((s = strdup(""))) {
      json_array_foreach(v, i, e) {
        char *part = scalar_text(e);
        char *grown = part ? realloc(s, len + strlen(part) + 3) : NULL;
        if (!grown) {
          free(part);
          free(s);
          return NULL;
        }
        s = grown;
        len += (size_t)sprintf(s + len, "%s%s", i ? ", " : "", part);
        free(part);
      }
    }
  } else {
    s = json_dumps(v, JSON_COMPACT);
  }
  if (s) defang(s);
  return s;
}

/* Display width: code points, not bytes (close enough for names). */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80) w++;
  return w;
}

static void pad(FILE *f, size_t n) {
  while (n--) fputc(' ', f);
}

void cli_table(FILE *f, const cli_col *cols, size_t ncols, const json_t *rows) {
  size_t nrows = json_array_size(rows);
  size_t *w = calloc(ncols, sizeof *w);
  char **cell = calloc(nrows * ncols + 1, sizeof *cell);
  if (!w || !cell) {
    fprintf(stderr, "nno: out of memory\n");
    goto done;
  }
  for (size_t c = 0; c < ncols; c++) w[c] = width(cols[c].header);
  for (size_t r = 0; r < nrows; r++) {
    const json_t *row = json_array_get(rows, r);
    for (size_t c = 0; c < ncols; c++) {
      char *t = cli_text(json_object_get(row, cols[c].key));
      cell[r * ncols + c] = t;
      if (t && width(t) > w[c]) w[c] = width(t);
    }
  }
  for (size_t c = 0; c < ncols; c++) {
    fputs(cols[c].header, f);
    if (c + 1 < ncols) pad(f, w[c] - width(cols[c].header) + 2);
  }
  fputc('\n', f);
  for (size_t r = 0; r < nrows; r++) {
    for (size_t c = 0; c < ncols; c++) {
      const char *t = cell[r * ncols + c] ? cell[r * ncols + c] : "?";
      fputs(t, f);
      if (c + 1 < ncols) pad(f, w[c] - width(t) + 2);
    }
    fputc('\n', f);
  }
done:
  if (cell)
    for (size_t i = 0; i < nrows * ncols; i++) free(cell[i]);
  free(cell);
  free(w);
}

void cli_show(FILE *f, const json_t *obj) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    char *key = strdup(k), *t = cli_text(v);
    if (key) defang(key);
    fprintf(f, "%s: %s\n", key ? key : "?", t ? t : "?");
    free(key);
    free(t);
  }
}

void cli_print_json(FILE *f, const json_t *v) {
  json_dumpf(v, f, JSON_COMPACT);
  fputc('\n', f);
}

/* One CSV field: quoted when it holds a comma, a quote, CR or LF, or
 * starts or ends with a space; quotes doubled inside (RFC 4180). */
static void csv_field(FILE *f, const char *s) {
  int quote = s[0] == ' ' || (s[0] && s[strlen(s) - 1] == ' ');
  for (const char *p = s; *p && !quote; p++)
    quote = *p == ',' || *p == '"' || *p == '\r' || *p == '\n';
  if (!quote) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (const char *p = s; *p; p++) {
    if (*p == '"') fputc('"', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

void cli_csv(FILE *f, const cli_col *cols, size_t ncols, const json_t *rows) {
  for (size_t i = 0; i < ncols; i++) {
    if (i) fputc(',', f);
    csv_field(f, cols[i].key);
  }
  fputs("\r\n", f);
  size_t r;
  json_t *row;
  json_array_foreach(rows, r, row) {
    for (size_t i = 0; i < ncols; i++) {
      char *t = cli_text(json_object_get(row, cols[i].key));
      if (i) fputc(',', f);
      if (t && strcmp(t, "-") != 0) csv_field(f, t);
      free(t);
    }
    fputs("\r\n", f);
  }
}
