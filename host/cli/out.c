/* The operator CLI's human output: aligned tables and `key: value` lines,
 * with every value from the server made safe for a terminal. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The one sanitiser for what a host sends to a terminal (cli.h). */
/* The length of the character at p (1..4) and whether it may reach a
 * terminal as it is: C0 controls, DEL, C1 controls (U+0080..U+009F, which
 * some terminals take as ESC sequences) and bytes that are not well-formed
 * UTF-8 (a bare 0x9B is CSI to a terminal in 8-bit mode) may not. */
static size_t safe_char(const unsigned char *p, int *ok) {
  unsigned char c = p[0];
  size_t n = c < 0x80                 ? 1
             : c >= 0xc2 && c <= 0xdf ? 2
             : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4
                                      : 0;
  if (n == 0) {
    *ok = 0;
    return 1;
  }
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) {
      *ok = 0;
      return 1;
    }
  *ok = n == 1 ? c >= 0x20 && c != 0x7f : !(c == 0xc2 && p[1] <= 0x9f);
  return n;
}

void cli_defang(char *s) {
  unsigned char *r = (unsigned char *)s, *w = r;
  while (*r) {
    int ok;
    size_t n = safe_char(r, &ok);
    if (ok) {
      memmove(w, r, n);
      w += n;
    } else {
      *w++ = '?';
    }
    r += n;
  }
  *w = '\0';
}

void cli_put_safe(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    int ok;
    size_t n = safe_char(p, &ok);
    if (ok)
      fwrite(p, 1, n, f);
    else
      fputc('?', f);
    p += n;
  }
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
  if (s) cli_defang(s);
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
    if (key) cli_defang(key);
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

/* -- output of one object ------------------------------------------------ */

/* After a request: an error status is printed; a 2xx object is printed as
 * the server sent it (--json) or as `key: value` lines. */
int cli_finish(cli *c, cli_resp *r) {
  int rc = CLI_OK;
  if (r->status < 200 || r->status > 299) {
    rc = cli_api_error(r, NULL);
  } else if (c->json) {
    if (r->len) {
      fwrite(r->body, 1, r->len, stdout);
      if (r->body[r->len - 1] != '\n') fputc('\n', stdout);
    }
  } else if (r->len) {
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, 0, &err);
    if (json_is_object(j)) {
      cli_show(stdout, j);
    } else {
      fprintf(stderr, "nno: the %ld answer is not a JSON object\n", r->status);
      rc = CLI_EAPI;
    }
    json_decref(j);
  }
  cli_resp_free(r);
  return rc;
}

int cli_single(cli *c, const char *method, const char *path,
               const json_t *body) {
  cli_resp r;
  int rc = cli_request(c, method, path, body, NULL, &r);
  return rc ? rc : cli_finish(c, &r);
}

/* A 2xx answer without content: `done` on stdout unless --json. */
int cli_no_content(cli *c, const char *method, const char *path,
                   const char *done) {
  cli_resp r;
  int rc = cli_call(c, method, path, NULL, NULL, NULL, &r);
  if (rc == CLI_OK && c->json && r.len) {
    fwrite(r.body, 1, r.len, stdout);
    if (r.body[r.len - 1] != '\n') fputc('\n', stdout);
  } else if (rc == CLI_OK && !c->json) {
    printf("%s\n", done);
  }
  cli_resp_free(&r);
  return rc;
}

int cli_too_long(void) {
  return cli_usage_error("an argument is too long for a request path",
                         "ids are at most a few dozen characters");
}

/* -- lists ----------------------------------------------------------------- */

long cli_rows_wanted(const cli_args *a, long dflt, const char *cmd) {
  const char *l = cli_opt(a, "limit");
  if (l && cli_opt(a, "all")) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: --limit and --all exclude each other", cmd);
    cli_usage_error(msg, "--limit N shows N rows, --all every row");
    return -1;
  }
  if (cli_opt(a, "all")) return LONG_MAX;
  if (!l) return dflt;
  char *end;
  errno = 0;
  long n = strtol(l, &end, 10);
  if (errno || end == l || *end || n < 1 || n > LIMIT_MAX) {
    char msg[192];
    snprintf(msg, sizeof msg,
             "%s: --limit expects an integer from 1 to %ld, got '%.32s'", cmd,
             LIMIT_MAX, l);
    cli_usage_error(msg, "e.g. --limit 20, or --all for every row");
    return -1;
  }
  return n;
}

/* GET `base` (a path, maybe with a query) page after page, following
 * next_cursor, until `want` rows: *all gets them (owned), *first the first
 * page's object (owned, NULL unless `first`), *more whether rows were
 * left. `paged`: the largest page the endpoint's limit takes, 0 when it
 * takes none. */
int cli_collect(cli *c, const char *base, long want, long paged,
                json_t **all_out, json_t **first, int *more_out) {
  json_t *all = json_array(), *page = NULL;
  char *cursor = NULL;
  int rc = CLI_OK, more = 0;
  if (!all) return CLI_EAPI;
  for (;;) {
    char path[CLI_PATH_MAX], num[32];
    long left = want - (long)json_array_size(all);
    snprintf(path, sizeof path, "%s", base);
    snprintf(num, sizeof num, "%ld", left < paged ? left : paged);
    if ((paged && cli_query(path, sizeof path, "limit", num)) ||
        cli_query(path, sizeof path, "cursor", cursor)) {
      fprintf(stderr, "nno: the server's cursor is too long to send back\n");
      rc = CLI_EAPI;
      break;
    }
    if ((rc = cli_call(c, "GET", path, NULL, NULL, &page, NULL))) break;
    json_t *items = json_object_get(page, "items");
    if (!json_is_array(items)) {
      fprintf(stderr, "nno: the answer to GET /api/v1%s has no \"items\"\n",
              base);
      rc = CLI_EAPI;
      break;
    }
    if (first && !*first) *first = json_incref(page);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
      if ((long)json_array_size(all) >= want) break;
      json_array_append(all, it);
    }
    const char *next = json_string_value(json_object_get(page, "next_cursor"));
    int stuck = !next || !*next || json_array_size(items) == 0 ||
                (cursor && !strcmp(next, cursor));
    if (stuck) break;
    if ((long)json_array_size(all) >= want) {
      more = 1;
      break;
    }
    free(cursor);
    if (!(cursor = strdup(next))) {
      rc = CLI_EAPI;
      break;
    }
    json_decref(page);
    page = NULL;
  }
  free(cursor);
  json_decref(page);
  if (rc) {
    json_decref(all);
    if (first) {
      json_decref(*first);
      *first = NULL;
    }
    return rc;
  }
  *all_out = all;
  *more_out = more;
  return CLI_OK;
}

void cli_more_note(const cli_args *a, int more, long want) {
  if (more && !cli_opt(a, "limit"))
    fprintf(stderr,
            "nno: showing the first %ld rows; there are more "
            "(--limit N or --all)\n",
            want);
}

/* collect() every row wanted, then print them as one JSON array (--json)
 * or a table. */
int cli_list(cli *c, const cli_args *a, const char *cmd, const char *base,
             long dflt, long paged, const cli_col *cols, size_t ncols) {
  long want = cli_rows_wanted(a, dflt, cmd);
  if (want < 0) return CLI_EUSAGE;
  json_t *all = NULL;
  int more = 0;
  int rc = cli_collect(c, base, want, paged, &all, NULL, &more);
  if (rc) return rc;
  if (c->json)
    cli_print_json(stdout, all);
  else
    cli_table(stdout, cols, ncols, all);
  cli_more_note(a, more, want);
  json_decref(all);
  return CLI_OK;
}
