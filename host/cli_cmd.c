/* The operator CLI's commands: one function per command, each a few calls
 * of the /api/v1 HTTP API, and the table that names them with their
 * arguments, options and help. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_internal.h"

#define LIST_MAX_ROWS 100000L /* rows a list follows pages for by default */
#define AUDIT_ROWS 100L       /* audit: the newest entries by default */
#define LIMIT_MAX 10000000L
#define PAGE_MAX 500 /* the registry's largest page */
#define RESOURCE_PAGE_MAX 200 /* the provisioning plugin's largest page */

const char *cli_opt(const cli_args *a, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < a->nopt; i++)
    if (!strncmp(a->opt[i].name, name, n) &&
        (a->opt[i].name[n] == '\0' || a->opt[i].name[n] == '='))
      return a->opt[i].value;
  return NULL;
}

/* -- output of one object ------------------------------------------------ */

/* After a request: an error status is printed; a 2xx object is printed as
 * the server sent it (--json) or as `key: value` lines. */
static int finish(cli *c, cli_resp *r) {
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

static int single(cli *c, const char *method, const char *path,
                  const json_t *body) {
  cli_resp r;
  int rc = cli_request(c, method, path, body, NULL, &r);
  return rc ? rc : finish(c, &r);
}

/* A 2xx answer without content: `done` on stdout unless --json. */
static int no_content(cli *c, const char *method, const char *path,
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

static int too_long(void) {
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
static int collect(cli *c, const char *base, long want, long paged,
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

static void more_note(const cli_args *a, int more, long want) {
  if (more && !cli_opt(a, "limit"))
    fprintf(stderr,
            "nno: showing the first %ld rows; there are more "
            "(--limit N or --all)\n",
            want);
}

/* collect() every row wanted, then print them as one JSON array (--json)
 * or a table. */
static int list(cli *c, const cli_args *a, const char *cmd, const char *base,
                long dflt, long paged, const cli_col *cols, size_t ncols) {
  long want = cli_rows_wanted(a, dflt, cmd);
  if (want < 0) return CLI_EUSAGE;
  json_t *all = NULL;
  int more = 0;
  int rc = collect(c, base, want, paged, &all, NULL, &more);
  if (rc) return rc;
  if (c->json)
    cli_print_json(stdout, all);
  else
    cli_table(stdout, cols, ncols, all);
  more_note(a, more, want);
  json_decref(all);
  return CLI_OK;
}

/* -- platform -------------------------------------------------------------- */

static const cli_col platform_cols[] = {
    {"ID", "id"},         {"NAME", "name"}, {"CLASS", "class"},
    {"STATUS", "status"}, {"PLAN", "plan"}, {"CREATED", "created_at"}};

#define STACKS_MAX 16 /* the most stacks a platform has active */

/* "S" or "S@V", each part non-empty and without spaces: -1 otherwise. */
static int stack_arg_ok(const char *s) {
  const char *at = strchr(s, '@');
  size_t n = strlen(s);
  if (!n || n > 129 || strchr(s, ' ') || at == s || (at && !at[1]) ||
      (at && strchr(at + 1, '@')))
    return -1;
  return 0;
}

static int platform_create(cli *c, const cli_args *a) {
  json_t *b = json_object(), *stacks = json_array();
  int n = 0;
  for (int i = 0; i < a->nopt; i++) {
    if (strcmp(a->opt[i].name, "stack=+") != 0) continue;
    if (stack_arg_ok(a->opt[i].value)) {
      char msg[256];
      snprintf(msg, sizeof msg,
               "platform create: --stack expects STACK or STACK@VERSION, got "
               "'%.64s'",
               a->opt[i].value);
      json_decref(b);
      json_decref(stacks);
      return cli_usage_error(msg, "e.g. --stack default or --stack "
                                  "default@1.0.0 ('nno stack list' shows them)");
    }
    if (++n > STACKS_MAX) {
      json_decref(b);
      json_decref(stacks);
      return cli_usage_error("platform create: at most 16 --stack options",
                             "a platform has at most 16 active stacks");
    }
    json_array_append_new(stacks, json_string(a->opt[i].value));
  }
  if (a->npos) json_object_set_new(b, "id", json_string(a->pos[0]));
  json_object_set_new(b, "name", json_string(cli_opt(a, "name")));
  if (cli_opt(a, "class"))
    json_object_set_new(b, "class", json_string(cli_opt(a, "class")));
  if (cli_opt(a, "plan"))
    json_object_set_new(b, "plan", json_string(cli_opt(a, "plan")));
  if (cli_opt(a, "owner"))
    json_object_set_new(b, "owner", json_string(cli_opt(a, "owner")));
  if (n)
    json_object_set_new(b, "stacks", stacks);
  else
    json_decref(stacks);
  int rc = single(c, "POST", "/platforms", b);
  json_decref(b);
  return rc;
}

static int platform_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX] = "/platforms";
  if (cli_query(path, sizeof path, "class", cli_opt(a, "class")) ||
      cli_query(path, sizeof path, "status", cli_opt(a, "status")))
    return too_long();
  return list(c, a, "platform list", path, LIST_MAX_ROWS, PAGE_MAX,
              platform_cols, sizeof platform_cols / sizeof platform_cols[0]);
}

static int platform_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s", a->pos[0]))
    return too_long();
  return single(c, "GET", path, NULL);
}


/* A PATCH sent with If-Match lost the race (412): say so, with the hint. */
static int changed_meanwhile(cli_resp *r, const char *platform) {
  char msg[256];
  snprintf(msg, sizeof msg,
           "platform %.64s was changed by someone else since it was read; "
           "run the command again",
           platform);
  int rc = cli_api_error(r, msg);
  cli_resp_free(r);
  return rc;
}

static int platform_update(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], etag[sizeof((cli_resp *)0)->etag];
  if (!cli_opt(a, "name") && !cli_opt(a, "plan") && !cli_opt(a, "owner"))
    return cli_usage_error("platform update: nothing to change",
                           "pass --name, --plan and/or --owner");
  if (cli_path(path, sizeof path, "/platforms/%s", a->pos[0]))
    return too_long();
  cli_resp r;
  int rc = cli_call(c, "GET", path, NULL, NULL, NULL, &r);
  if (rc) return rc;
  snprintf(etag, sizeof etag, "%s", r.etag);
  cli_resp_free(&r);

  json_t *b = json_object();
  if (cli_opt(a, "name"))
    json_object_set_new(b, "name", json_string(cli_opt(a, "name")));
  if (cli_opt(a, "plan"))
    json_object_set_new(b, "plan", json_string(cli_opt(a, "plan")));
  if (cli_opt(a, "owner")) /* --owner '' clears it */
    json_object_set_new(b, "owner",
                        *cli_opt(a, "owner") ? json_string(cli_opt(a, "owner"))
                                             : json_null());
  rc = cli_request(c, "PATCH", path, b, etag[0] ? etag : NULL, &r);
  json_decref(b);
  if (rc) return rc;
  if (r.status == 412) return changed_meanwhile(&r, a->pos[0]);
  return finish(c, &r);
}

/* -- platform brand ---------------------------------------------------------- */

/* The registry's bound on a logo: its data: URI's text (registry/branding.h). */
#define BRAND_LOGO_MAX 65536

/* The image type of a logo file from its extension, or NULL. */
static const char *logo_type(const char *file) {
  static const char *const map[][2] = {
      {".png", "png"},   {".jpg", "jpeg"},  {".jpeg", "jpeg"},
      {".gif", "gif"},   {".webp", "webp"}, {".svg", "svg+xml"}};
  size_t n = strlen(file);
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    size_t e = strlen(map[i][0]);
    if (n > e && strcasecmp(file + n - e, map[i][0]) == 0) return map[i][1];
  }
  return NULL;
}

/* Read logo file `file` into a data: URI (owned by the caller), checking
 * its size first; NULL after printing the error (*rc its exit code). */
static char *logo_uri(const char *file, int *rc) {
  char msg[PATH_MAX + 256];
  const char *type = logo_type(file);
  *rc = CLI_EUSAGE;
  if (!type) {
    snprintf(msg, sizeof msg, "platform brand: --logo %.256s: unknown image "
             "type", file);
    cli_usage_error(msg, "a .png, .jpg, .jpeg, .gif, .webp or .svg file");
    return NULL;
  }
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(msg, sizeof msg, "platform brand: --logo %.256s: %s", file,
             fd < 0 ? strerror(errno) : "not a regular file");
    if (fd >= 0) close(fd);
    cli_usage_error(msg, NULL);
    return NULL;
  }
  size_t head = strlen("data:image/;base64,") + strlen(type);
  /* base64 makes 4 characters of every 3 bytes (or part of 3). */
  unsigned long long need = head + ((unsigned long long)st.st_size + 2) / 3 * 4;
  if (st.st_size == 0 || need > BRAND_LOGO_MAX) {
    close(fd);
    snprintf(msg, sizeof msg,
             "platform brand: --logo %.256s is %lld bytes: as a data: URI it "
             "would be %llu bytes of text, at most %d",
             file, (long long)st.st_size, need, BRAND_LOGO_MAX);
    cli_usage_error(msg, st.st_size ? "use an image of at most about 48 KiB "
                                      "(an SVG or a small PNG)"
                                    : "the file is empty");
    return NULL;
  }
  size_t n = (size_t)st.st_size, got = 0;
  unsigned char *bin = malloc(n);
  char *uri = malloc((size_t)need + 1);
  while (bin && uri && got < n) {
    ssize_t r = read(fd, bin + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (!bin || !uri || got != n) {
    snprintf(msg, sizeof msg, "platform brand: --logo %.256s: %s", file,
             !bin || !uri ? "out of memory" : "the file changed while read");
    free(bin);
    free(uri);
    cli_usage_error(msg, NULL);
    return NULL;
  }
  snprintf(uri, (size_t)need + 1, "data:image/%s;base64,", type);
  sodium_bin2base64(uri + head, (size_t)need + 1 - head, bin, n,
                    sodium_base64_VARIANT_ORIGINAL);
  free(bin);
  *rc = CLI_OK;
  return uri;
}

/* The branding of the answer as `key: value` lines, a logo as its type and
 * size rather than its bytes. */
static void show_branding(const json_t *p) {
  json_t *b = json_object_get(p, "branding");
  const char *k;
  json_t *v;
  if (!json_object_size(b)) {
    printf("branding: -\n");
    return;
  }
  json_object_foreach(b, k, v) {
    const char *s = json_string_value(v);
    if (!s) continue;
    if (strcmp(k, "logo") == 0) {
      const char *semi = strchr(s, ';');
      printf("logo: %.*s, %zu bytes of text\n",
             semi ? (int)(semi - s - 5) : 0, semi ? s + 5 : "",
             strlen(s));
    } else {
      printf("%s: %s\n", k, s);
    }
  }
}

static int platform_brand(cli *c, const cli_args *a) {
  static const char *const colours[] = {"primary", "accent", "background",
                                        "foreground"};
  char path[CLI_PATH_MAX], etag[sizeof((cli_resp *)0)->etag];
  int any = cli_opt(a, "logo") || cli_opt(a, "clear");
  for (size_t i = 0; i < 4; i++) any = any || cli_opt(a, colours[i]);
  if (!any)
    return cli_usage_error("platform brand: nothing to change",
                           "pass --logo, --primary, --accent, --background, "
                           "--foreground and/or --clear");
  if (cli_path(path, sizeof path, "/platforms/%s", a->pos[0]))
    return too_long();
  int rc;
  char *logo = NULL;
  if (cli_opt(a, "logo") && *cli_opt(a, "logo") &&
      !(logo = logo_uri(cli_opt(a, "logo"), &rc)))
    return rc;
  /* The PATCH replaces the whole object: start from what is set (nothing
   * with --clear), sent with If-Match so a concurrent change is not lost. */
  json_t *cur = NULL;
  cli_resp r;
  rc = cli_call(c, "GET", path, NULL, NULL, &cur, &r);
  if (rc) {
    free(logo);
    return rc;
  }
  snprintf(etag, sizeof etag, "%s", r.etag);
  cli_resp_free(&r);
  json_t *b = cli_opt(a, "clear")
                  ? json_object()
                  : json_deep_copy(json_object_get(cur, "branding"));
  json_decref(cur);
  if (!json_is_object(b)) {
    json_decref(b);
    b = json_object();
  }
  if (logo) json_object_set_new(b, "logo", json_string(logo));
  else if (cli_opt(a, "logo")) json_object_del(b, "logo"); /* --logo '' */
  free(logo);
  for (size_t i = 0; i < 4; i++) {
    const char *v = cli_opt(a, colours[i]);
    if (v && *v)
      json_object_set_new(b, colours[i], json_string(v));
    else if (v) /* --primary '' drops it */
      json_object_del(b, colours[i]);
  }
  json_t *body = json_pack("{s:o}", "branding", b);
  rc = cli_request(c, "PATCH", path, body, etag[0] ? etag : NULL, &r);
  json_decref(body);
  if (rc) return rc;
  if (r.status == 412) return changed_meanwhile(&r, a->pos[0]);
  if (r.status < 200 || r.status > 299 || c->json) return finish(c, &r);
  json_t *p = json_loadb(r.body, r.len, 0, NULL);
  cli_resp_free(&r);
  if (!json_is_object(p)) {
    json_decref(p);
    fprintf(stderr, "nno: the answer is not a JSON object\n");
    return CLI_EAPI;
  }
  printf("id: %s\n", json_string_value(json_object_get(p, "id")));
  show_branding(p);
  json_decref(p);
  return CLI_OK;
}

/* POST to `fmt` (one %s: the platform id), e.g. /platforms/%s/suspend. */
static int platform_action(cli *c, const cli_args *a, const char *fmt) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, fmt, a->pos[0])) return too_long();
  return single(c, "POST", path, NULL);
}

static int platform_suspend(cli *c, const cli_args *a) {
  return platform_action(c, a, "/platforms/%s/suspend");
}

static int platform_resume(cli *c, const cli_args *a) {
  return platform_action(c, a, "/platforms/%s/resume");
}

static int platform_delete(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  const char *id = a->pos[0];
  int keep = cli_opt(a, "keep-data") != NULL;
  if (cli_path(path, sizeof path, "/platforms/%s", id) ||
      cli_query(path, sizeof path, "keep_data", keep ? "true" : NULL))
    return too_long();
  if (!cli_opt(a, "yes")) {
    char msg[256];
    if (!isatty(STDIN_FILENO)) {
      snprintf(msg, sizeof msg,
               "platform delete: refusing to delete platform %.64s without "
               "confirmation",
               id);
      return cli_usage_error(msg, "pass --yes to delete it with its tenants, "
                                  "activations and resources");
    }
    fprintf(stderr,
            "Delete platform %.64s with all its tenants, activations and "
            "resources%s? [y/N] ",
            id, keep ? " (its data archived first)" : "");
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin) ||
        (strcmp(line, "y\n") && strcmp(line, "yes\n") && strcmp(line, "Y\n"))) {
      fprintf(stderr, "nno: not deleted\n");
      return CLI_EAPI;
    }
  }
  cli_resp r;
  json_t *out = NULL;
  int rc = cli_call(c, "DELETE", path, NULL, NULL, &out, &r);
  if (rc == CLI_OK && c->json && r.len) {
    fwrite(r.body, 1, r.len, stdout);
    if (r.body[r.len - 1] != '\n') fputc('\n', stdout);
  } else if (rc == CLI_OK && !c->json) {
    const char *archive = json_string_value(json_object_get(out, "archive"));
    if (archive)
      printf("deleted platform %.64s; its data is archived in %s\n", id,
             archive);
    else
      printf("deleted platform %.64s\n", id);
  }
  json_decref(out);
  if (rc == CLI_OK) cli_resp_free(&r);
  return rc;
}

/* -- resource -------------------------------------------------------------- */

static const cli_col resource_cols[] = {{"STACK", "stack"},
                                        {"TYPE", "type"},
                                        {"NAME", "name"},
                                        {"STATE", "state"},
                                        {"SIZE", "size"}};

/* 1536 -> "1.5 KiB" */
static void human_size(double v, char *out, size_t cap) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  if (u == 0)
    snprintf(out, cap, "%.0f B", v);
  else
    snprintf(out, cap, "%.1f %s", v, unit[u]);
}

/* A size given in bytes under `key` of `o` as text, or NULL. */
static json_t *size_text(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v)) return NULL;
  char buf[32];
  human_size(json_number_value(v), buf, sizeof buf);
  return json_string(buf);
}

static int resource_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/resources", a->pos[0]))
    return too_long();
  long want = cli_rows_wanted(a, LIST_MAX_ROWS, "resource list");
  if (want < 0) return CLI_EUSAGE;
  json_t *all = NULL, *first = NULL;
  int more = 0;
  int rc = collect(c, path, want, RESOURCE_PAGE_MAX, &all, &first, &more);
  if (rc) return rc;
  json_t *quota = json_object_get(first, "quota");
  if (c->json) {
    /* The rows, and the quota as the server gave it. */
    json_t *o = json_pack("{s:O, s:O}", "items", all, "quota",
                          quota ? quota : json_null());
    cli_print_json(stdout, o);
    json_decref(o);
  } else {
    size_t i;
    json_t *it;
    json_array_foreach(all, i, it) {
      /* Bytes, under "size_bytes" (or "size"), shown as 1.5 KiB. */
      json_t *t = size_text(it, "size_bytes");
      if (!t) t = size_text(it, "size");
      if (t) json_object_set_new(it, "size", t);
    }
    cli_table(stdout, resource_cols,
              sizeof resource_cols / sizeof resource_cols[0], all);
    json_t *used = size_text(quota, "used_bytes"),
           *limit = size_text(quota, "limit_bytes");
    if (used && limit)
      printf("quota: %s of %s used\n", json_string_value(used),
             json_string_value(limit));
    else if (used)
      printf("quota: %s used\n", json_string_value(used));
    json_decref(used);
    json_decref(limit);
  }
  more_note(a, more, want);
  json_decref(first);
  json_decref(all);
  return CLI_OK;
}

static int resource_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  const char *type = a->pos[1], *name = a->pos[2];
  if (strcmp(type, "sql") && strcmp(type, "kv") && strcmp(type, "blob")) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "resource show: TYPE is sql, kv or blob, got '%.32s'", type);
    return cli_usage_error(msg, "usage: nno resource show PLATFORM TYPE "
                                "STACK-NAME (e.g. sql default-auth)");
  }
  const char *dash = strchr(name, '-');
  if (!dash || dash == name || !dash[1])
    return cli_usage_error("resource show: the resource is named "
                           "STACK-NAME",
                           "e.g. default-auth: the sql resource \"auth\" of "
                           "stack \"default\" ('nno resource list' shows "
                           "them)");
  if (cli_path(path, sizeof path, "/platforms/%s/resources/%s/%s", a->pos[0],
               type, name))
    return too_long();
  return single(c, "GET", path, NULL);
}

/* -- tenant ---------------------------------------------------------------- */

static const cli_col tenant_cols[] = {{"ID", "id"},
                                      {"PARENT", "parent"},
                                      {"NAME", "name"},
                                      {"STATUS", "status"},
                                      {"CREATED", "created_at"}};

static int tenant_create(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/tenants", a->pos[0]))
    return too_long();
  json_t *b = json_object();
  if (a->npos > 1) json_object_set_new(b, "id", json_string(a->pos[1]));
  json_object_set_new(b, "name", json_string(cli_opt(a, "name")));
  if (cli_opt(a, "parent"))
    json_object_set_new(b, "parent", json_string(cli_opt(a, "parent")));
  int rc = single(c, "POST", path, b);
  json_decref(b);
  return rc;
}

static int tenant_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_opt(a, "parent") && cli_opt(a, "under"))
    return cli_usage_error("tenant list: --parent and --under exclude each "
                           "other",
                           "--parent T lists T's children, --under T its "
                           "whole subtree");
  if (cli_path(path, sizeof path, "/platforms/%s/tenants", a->pos[0]) ||
      cli_query(path, sizeof path, "parent", cli_opt(a, "parent")) ||
      cli_query(path, sizeof path, "under", cli_opt(a, "under")))
    return too_long();
  return list(c, a, "tenant list", path, LIST_MAX_ROWS, PAGE_MAX, tenant_cols,
              sizeof tenant_cols / sizeof tenant_cols[0]);
}

static int tenant_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/tenants/%s", a->pos[0],
               a->pos[1]))
    return too_long();
  return single(c, "GET", path, NULL);
}

static int tenant_delete(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/platforms/%s/tenants/%s", a->pos[0],
               a->pos[1]) ||
      cli_query(path, sizeof path, "cascade",
                cli_opt(a, "cascade") ? "true" : NULL))
    return too_long();
  snprintf(done, sizeof done, "deleted tenant %.64s of platform %.64s%s",
           a->pos[1], a->pos[0],
           cli_opt(a, "cascade") ? " with its subtree" : "");
  return no_content(c, "DELETE", path, done);
}

/* -- key ------------------------------------------------------------------- */

static const cli_col key_cols[] = {{"ID", "id"},           {"NAME", "name"},
                                   {"TENANT", "tenant"},   {"SCOPES", "scopes"},
                                   {"EXPIRES", "expires_at"},
                                   {"REVOKED", "revoked_at"}};

/* "a b,c" -> ["a", "b", "c"] */
static json_t *scope_list(const char *s) {
  json_t *a = json_array();
  const char *p = s;
  while (a && *p) {
    while (*p == ' ' || *p == ',') p++;
    const char *q = p;
    while (*q && *q != ' ' && *q != ',') q++;
    if (q > p) json_array_append_new(a, json_stringn(p, (size_t)(q - p)));
    p = q;
  }
  return a;
}

static int key_create(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/keys", a->pos[0]))
    return too_long();
  const char *exp = cli_opt(a, "expires-in");
  long secs = 0;
  if (exp) {
    char *end;
    errno = 0;
    secs = strtol(exp, &end, 10);
    if (errno || end == exp || *end || secs < 60)
      return cli_usage_error("key create: --expires-in expects seconds (60 or "
                             "more)",
                             "e.g. --expires-in 2592000 for 30 days");
  }
  json_t *b = json_object();
  json_object_set_new(b, "name", json_string(cli_opt(a, "name")));
  json_object_set_new(b, "scopes", scope_list(cli_opt(a, "scopes")));
  if (cli_opt(a, "tenant"))
    json_object_set_new(b, "tenant", json_string(cli_opt(a, "tenant")));
  if (exp) json_object_set_new(b, "expires_in", json_integer(secs));
  int rc = single(c, "POST", path, b);
  json_decref(b);
  if (rc == CLI_OK && !c->json)
    fprintf(stderr, "nno: keep the key now: it is not shown again\n");
  return rc;
}

static int key_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/keys", a->pos[0]))
    return too_long();
  return list(c, a, "key list", path, LIST_MAX_ROWS, PAGE_MAX, key_cols,
              sizeof key_cols / sizeof key_cols[0]);
}

static int key_revoke(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[160];
  if (cli_path(path, sizeof path, "/platforms/%s/keys/%s", a->pos[0],
               a->pos[1]))
    return too_long();
  snprintf(done, sizeof done, "revoked key %.32s of platform %.64s", a->pos[1],
           a->pos[0]);
  return no_content(c, "DELETE", path, done);
}

/* -- stack ----------------------------------------------------------------- */

static int stack_versions(cli *c, const cli_args *a);

static int stack_list(cli *c, const cli_args *a) {
  static const cli_col stacks[] = {{"ID", "id"}, {"VERSIONS", "versions"}};
  static const cli_col acts[] = {{"STACK", "stack"},
                                 {"VERSION", "version"},
                                 {"ACTIVATED", "activated_at"},
                                 {"BY", "activated_by"}};
  char path[CLI_PATH_MAX];
  (void)stacks;
  if (!cli_opt(a, "platform")) return stack_versions(c, a);
  if (cli_path(path, sizeof path, "/platforms/%s/stacks",
               cli_opt(a, "platform")))
    return too_long();
  return list(c, a, "stack list", path, LIST_MAX_ROWS, 0, acts, 4);
}

static int stack_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/stacks/%s", a->pos[0])) return too_long();
  return single(c, "GET", path, NULL);
}

static int stack_activate(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/stacks", a->pos[0]))
    return too_long();
  json_t *b = json_object();
  json_object_set_new(b, "stack", json_string(a->pos[1]));
  if (cli_opt(a, "version"))
    json_object_set_new(b, "version", json_string(cli_opt(a, "version")));
  int rc = single(c, "POST", path, b);
  json_decref(b);
  return rc;
}

static int stack_deactivate(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/platforms/%s/stacks/%s", a->pos[0],
               a->pos[1]))
    return too_long();
  snprintf(done, sizeof done, "deactivated stack %.64s on platform %.64s",
           a->pos[1], a->pos[0]);
  return no_content(c, "DELETE", path, done);
}

/* Flatten GET /stacks into one row per version. */
static json_t *version_rows(const json_t *stacks) {
  json_t *rows = json_array();
  size_t i, j;
  json_t *s, *d;
  json_array_foreach(stacks, i, s) {
    json_array_foreach(json_object_get(s, "details"), j, d) {
      json_t *row = json_deep_copy(d);
      if (!row) continue;
      json_object_set(row, "id", json_object_get(s, "id"));
      if (json_is_null(json_object_get(row, "signed_by")))
        json_object_set_new(row, "signed_by",
                            json_string(json_is_null(json_object_get(
                                            row, "sha256"))
                                            ? "-"
                                            : "unsigned"));
      json_array_append_new(rows, row);
    }
  }
  return rows;
}

static int stack_versions(cli *c, const cli_args *a) {
  static const cli_col cols[] = {{"ID", "id"},         {"VERSION", "version"},
                                 {"STATE", "state"},   {"IN USE", "in_use"},
                                 {"SOURCE", "source"}, {"SIGNED BY", "signed_by"}};
  long want = cli_rows_wanted(a, LIST_MAX_ROWS, "stack list");
  if (want < 0) return CLI_EUSAGE;
  json_t *all = NULL;
  int more = 0;
  int rc = collect(c, "/stacks", want, 0, &all, NULL, &more);
  if (rc) return rc;
  if (c->json) {
    cli_print_json(stdout, all);
  } else {
    json_t *rows = version_rows(all);
    cli_table(stdout, cols, sizeof cols / sizeof cols[0], rows);
    json_decref(rows);
    /* Why a version is refused: one line each. */
    size_t i, j;
    json_t *s, *d;
    json_array_foreach(all, i, s) {
      json_array_foreach(json_object_get(s, "details"), j, d) {
        const char *err = json_string_value(json_object_get(d, "error"));
        if (err)
          printf("%s %s: %s\n", json_string_value(json_object_get(s, "id")),
                 json_string_value(json_object_get(d, "version")), err);
      }
    }
  }
  more_note(a, more, want);
  json_decref(all);
  return CLI_OK;
}

static int is_url(const char *s) {
  return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int stack_install(cli *c, const cli_args *a) {
  const char *src = a->pos[0], *sha = cli_opt(a, "sha256");
  if (sha && (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64))
    return cli_usage_error("stack install: --sha256 expects 64 lower-case hex "
                           "digits", "e.g. the output of sha256sum FILE");
  json_t *b = NULL, *out = NULL;
  cli_resp r;
  int rc;
  if (is_url(src)) {
    b = json_pack("{s:s}", "url", src);
    if (sha) json_object_set_new(b, "sha256", json_string(sha));
    rc = cli_call(c, "POST", "/stacks", b, NULL, &out, &r);
  } else {
    FILE *f = fopen(src, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
      char msg[PATH_MAX + 64];
      snprintf(msg, sizeof msg, "stack install: cannot read %s: %s", src,
               f ? "not a regular file" : strerror(errno));
      if (f) fclose(f);
      return cli_usage_error(msg, "give a stack archive (.tar.gz) or an "
                                  "http(s) URL");
    }
    if (sha) {
      /* Checked here: the file sent is the one meant. */
      crypto_hash_sha256_state h;
      unsigned char buf[65536], d[32];
      char hex[65];
      size_t n;
      crypto_hash_sha256_init(&h);
      while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&h, buf, n);
      crypto_hash_sha256_final(&h, d);
      sodium_bin2hex(hex, sizeof hex, d, sizeof d);
      if (strcmp(hex, sha) != 0) {
        fclose(f);
        fprintf(stderr, "nno: %s has SHA-256 %s, not %s\nhint: nothing was "
                "sent\n", src, hex, sha);
        return CLI_EAPI;
      }
      rewind(f);
    }
    c->upload = f;
    c->upload_size = (long long)st.st_size;
    rc = cli_call(c, "POST", "/stacks", NULL, NULL, &out, &r);
    c->upload = NULL;
    fclose(f);
  }
  json_decref(b);
  if (rc == CLI_OK) {
    if (c->json) {
      cli_print_json(stdout, out);
    } else {
      const char *by = json_string_value(json_object_get(out, "signed_by"));
      printf("%s stack %s %s (sha256 %s, %s%s)\n",
             r.status == 201 ? "installed" : "already installed:",
             json_string_value(json_object_get(out, "id")),
             json_string_value(json_object_get(out, "version")),
             json_string_value(json_object_get(out, "sha256")),
             by ? "signed by " : "unsigned", by ? by : "");
    }
  }
  json_decref(out);
  cli_resp_free(&r);
  return rc;
}

static int stack_remove(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/stacks/%s/%s", a->pos[0], a->pos[1]))
    return too_long();
  snprintf(done, sizeof done, "removed stack %.64s %.64s", a->pos[0],
           a->pos[1]);
  return no_content(c, "DELETE", path, done);
}

/* -- audit ----------------------------------------------------------------- */

static int audit(cli *c, const cli_args *a) {
  static const cli_col cols[] = {{"SEQ", "seq"},
                                 {"AT", "at"},
                                 {"ACTOR", "actor"},
                                 {"ACTION", "action"},
                                 {"TARGET", "target"}};
  char path[CLI_PATH_MAX] = "/audit";
  if (cli_query(path, sizeof path, "target", cli_opt(a, "target")) ||
      cli_query(path, sizeof path, "action", cli_opt(a, "action")))
    return too_long();
  return list(c, a, "audit", path, AUDIT_ROWS, PAGE_MAX, cols, 5);
}

/* -- quarantine ------------------------------------------------------------ */

static int quarantine_list(cli *c, const cli_args *a) {
  static const cli_col cols[] = {
      {"PLATFORM", "platform"}, {"STACK", "stack"},   {"PACKAGE", "package"},
      {"VERSION", "version"},   {"CRASHES", "crashes"}, {"REASON", "reason"},
      {"UNTIL", "until"}};
  return list(c, a, "quarantine list", "/quarantines", LIST_MAX_ROWS,
              PAGE_MAX, cols, 7);
}

static int quarantine_release(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/quarantines/%s/%s/%s", a->pos[0],
               a->pos[1], a->pos[2]))
    return too_long();
  snprintf(done, sizeof done, "released %.64s %.64s on platform %.64s",
           a->pos[1], a->pos[2], a->pos[0]);
  return no_content(c, "DELETE", path, done);
}

/* -- operator-key ---------------------------------------------------------- */

/* Replaces `path` with `key` and a newline, mode 0600, atomically. */
static int write_key(const char *path, const char *key) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
      (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd =
      open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t n = strlen(key);
  int ok = write(fd, key, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
           fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) ok = 0, saved = errno;
  if (ok && rename(tmp, path) == 0) return 0;
  if (ok) saved = errno;
  unlink(tmp);
  errno = saved;
  return -1;
}

static int operator_key_rotate(cli *c, const cli_args *a) {
  /* Save where the key was read from, or into --data/NNO_DATA; never into
   * ./var when the key came from --key or NNO_KEY (another host's file). */
  const char *save = !c->key_arg || c->data_given ? c->key_path : NULL;
  int show = cli_opt(a, "show") != NULL;
  if (!save && !show && !c->json)
    return cli_usage_error("operator-key rotate: nowhere to save the new key",
                           "pass --data DIR to write DIR/operator.key, or "
                           "--show to print it");
  json_t *j = NULL;
  cli_resp r;
  int rc = cli_call(c, "POST", "/operator-key/rotate", NULL, NULL, &j, &r);
  if (rc) return rc;
  const char *key = json_string_value(json_object_get(j, "key"));
  const char *server_path = json_string_value(json_object_get(j, "path"));
  if (!server_path) server_path = json_string_value(json_object_get(j, "file"));
  if (key && !cli_key_ok(key)) key = NULL;
  int saved = 0;
  if (key && save) {
    if (write_key(save, key) == 0) {
      saved = 1;
    } else {
      fprintf(stderr,
              "nno: the key was rotated but cannot be written to "
              "%s: %s\n",
              save, strerror(errno));
      /* The old key is dead now: showing the new one beats losing it. */
      if (!server_path) show = 1;
      rc = CLI_EAPI;
    }
  }
  char where[PATH_MAX + 64] = "";
  if (saved) {
    char abs[PATH_MAX];
    snprintf(where, sizeof where, "%s", realpath(save, abs) ? abs : save);
  } else if (server_path) {
    snprintf(where, sizeof where, "%s (on the host)", server_path);
  }
  if (c->json) {
    fwrite(r.body, 1, r.len, stdout);
    if (r.len && r.body[r.len - 1] != '\n') fputc('\n', stdout);
  } else if (show && key) {
    printf("%s\n", key);
  }
  FILE *msg = c->json || show ? stderr : stdout;
  if (where[0])
    fprintf(msg, "new operator key written to %s\n", where);
  else if (!key)
    fprintf(msg, "operator key rotated; the answer named neither the key nor "
                 "where it was written\n");
  else if (!show && !c->json)
    fprintf(stderr, "nno: the new key was not saved\n");
  cli_resp_free(&r);
  json_decref(j);
  return rc;
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
#define LIST_OPTS "  --limit N    show at most N rows (1 to 10000000)\n" \
                  "  --all        follow every page, however many rows\n"

const cli_command cli_commands[] = {
    {"platform", "create", 0, 1,
     {"name=", "class=", "plan=", "owner=", "stack=+"},
     "platform create [ID] --name NAME [--class platform|user_project] "
     "[--plan P] [--owner O] [--stack S[@V]]...",
     "Creates a platform; without ID the server picks one. With --stack,\n"
     "the stacks are activated (and provisioned) in the same call: if any\n"
     "step fails, nothing is kept and the error names the step.\n\n"
     "  --name NAME   display name (required)\n"
     "  --class C     platform (default) or user_project\n"
     "  --plan P      plan id (default free)\n"
     "  --owner O     owner, free text\n"
     "  --stack S     activate stack S (newest installed version), or\n"
     "                S@V for version V; repeat for more stacks (up to 16)\n",
     platform_create},
    {"platform", "list", 0, 0, {"class=", "status=", "limit=", "all"},
     "platform list [--class C] [--status S] [--limit N | --all]",
     "Lists platforms by id, following pages (up to 100000 rows unless\n"
     "--limit or --all).\n\n"
     "  --class C    only platforms of class C\n"
     "  --status S   only platforms with status S (active, suspended...)\n"
     LIST_OPTS,
     platform_list},
    {"platform", "show", 1, 1, {0}, "platform show ID",
     "Shows one platform as key: value lines.\n", platform_show},
    {"platform", "update", 1, 1, {"name=", "plan=", "owner="},
     "platform update ID [--name N] [--plan P] [--owner O]",
     "Changes a platform, refusing if someone else changed it since it was\n"
     "read (the update is sent with If-Match).\n\n"
     "  --name N    new display name\n"
     "  --plan P    new plan\n"
     "  --owner O   new owner ('' clears it)\n",
     platform_update},
    {"platform", "brand", 1, 1,
     {"logo=", "primary=", "accent=", "background=", "foreground=", "clear"},
     "platform brand ID [--logo FILE] [--primary C] [--accent C] "
     "[--background C] [--foreground C] [--clear]",
     "Sets what the platform's console shows: a logo and colours. Options\n"
     "not given keep their value; '' removes one. Colours are #rrggbb or\n"
     "#rgb; the server refuses text colours that are hard to read (WCAG\n"
     "contrast under 4.5:1: foreground on background, white on primary).\n\n"
     "  --logo FILE      a .png, .jpg, .gif, .webp or .svg image, sent as a\n"
     "                   data: URI of at most 64 KiB (about 48 KiB of image)\n"
     "  --primary C      buttons and links (white text on it)\n"
     "  --accent C       highlights\n"
     "  --background C   page background\n"
     "  --foreground C   text on the background\n"
     "  --clear          start from no branding (alone: remove it all)\n",
     platform_brand},
    {"platform", "suspend", 1, 1, {0}, "platform suspend ID",
     "Suspends a platform: its routes answer 403 until it is resumed.\n",
     platform_suspend},
    {"platform", "resume", 1, 1, {0}, "platform resume ID",
     "Resumes a suspended platform.\n", platform_resume},
    {"platform", "delete", 1, 1, {"yes", "keep-data"},
     "platform delete ID [--keep-data] [--yes]",
     "Deletes a platform with its tenants, activations and resources.\n"
     "Asks for confirmation on a terminal; elsewhere refuses without --yes.\n\n"
     "  --keep-data   archive the platform's data first (DATA/archive/);\n"
     "                the archive's path is printed\n"
     "  --yes         delete without asking\n",
     platform_delete},
    {"resource", "list", 1, 1, {"limit=", "all"},
     "resource list PLATFORM [--limit N | --all]",
     "Lists the resources of PLATFORM (sql, kv, blob: made when a stack is\n"
     "activated) with their state and size, and the platform's quota use.\n\n"
     LIST_OPTS,
     resource_list},
    {"resource", "show", 3, 3, {0}, "resource show PLATFORM TYPE STACK-NAME",
     "Shows one resource of PLATFORM: TYPE is sql, kv or blob, STACK-NAME\n"
     "the stack and the resource's name (e.g. sql default-auth).\n",
     resource_show},
    /* plans (cli_plan.c) */
    {"plan", "list", 0, 0, {0}, "plan list",
     "Lists the plans by name: their limits, where each is set (stored, or\n"
     "config: the host configuration's, read-only) and the default plan.\n",
     cli_plan_list},
    {"plan", "show", 1, 1, {0}, "plan show NAME",
     "Shows one plan as key: value lines.\n", cli_plan_show},
    {"plan", "create", 1, 1, CLI_PLAN_OPTS,
     "plan create NAME [--requests-per-month N] [--storage-bytes N] "
     "[--users N] [--api-keys N] [--rate C=R/B,...] [--soft-pct N] "
     "[--grace-pct N] [--grace-days N] [--price P]",
     "Creates a plan. Limits not given are the free plan's as first seeded;\n"
     "0 means no limit. Every worker applies it within a second.\n\n"
     CLI_PLAN_OPTS_HELP
     "\nExample:\n"
     "  nno plan create team --requests-per-month 2000000 --users 5000 \\\n"
     "      --api-keys 50 --rate platform=1000/2000,key=200/400\n",
     cli_plan_create},
    {"plan", "update", 1, 1, CLI_PLAN_OPTS,
     "plan update NAME [--requests-per-month N] [--storage-bytes N] "
     "[--users N] [--api-keys N] [--rate C=R/B,...] [--soft-pct N] "
     "[--grace-pct N] [--grace-days N] [--price P]",
     "Changes a plan, refusing if someone else changed it since it was read\n"
     "(the update is sent with If-Match); options not given keep their\n"
     "value. A plan set by the host configuration is changed there.\n\n"
     CLI_PLAN_OPTS_HELP
     "\nExample:\n"
     "  nno plan update pro --rate key=800/1600 --api-keys 200\n",
     cli_plan_update},
    {"tenant", "create", 1, 2, {"name=", "parent="},
     "tenant create PLATFORM [ID] --name NAME [--parent TID]",
     "Creates a tenant of PLATFORM; without ID the server picks one.\n\n"
     "  --name NAME    display name (required)\n"
     "  --parent TID   parent tenant (default: a root tenant)\n",
     tenant_create},
    {"tenant", "list", 1, 1, {"parent=", "under=", "limit=", "all"},
     "tenant list PLATFORM [--parent TID | --under TID] [--limit N | --all]",
     "Lists the tenants of PLATFORM by id.\n\n"
     "  --parent TID   only the direct children of TID\n"
     "  --under TID    the whole subtree below TID\n" LIST_OPTS,
     tenant_list},
    {"tenant", "show", 2, 2, {0}, "tenant show PLATFORM TID",
     "Shows one tenant as key: value lines.\n", tenant_show},
    {"tenant", "delete", 2, 2, {"cascade"},
     "tenant delete PLATFORM TID [--cascade]",
     "Deletes a tenant. One with children is refused unless --cascade.\n\n"
     "  --cascade   delete its whole subtree too\n",
     tenant_delete},
    {"key", "create", 1, 1, {"name=", "scopes=", "tenant=", "expires-in="},
     "key create PLATFORM --name NAME --scopes S [--tenant TID] "
     "[--expires-in SECONDS]",
     "Creates an API key of PLATFORM and prints it once: keep it then, it\n"
     "cannot be shown again (only its hash is stored).\n\n"
     "  --name NAME         what the key is for (required)\n"
     "  --scopes S          scopes, separated by spaces or commas (required),\n"
     "                      e.g. 'tenants:read features:hello:*'\n"
     "  --tenant TID        bind the key to TID's subtree\n"
     "  --expires-in SECS   the key stops working after SECS seconds\n",
     key_create},
    {"key", "list", 1, 1, {"limit=", "all"},
     "key list PLATFORM [--limit N | --all]",
     "Lists the API keys of PLATFORM by id, revoked ones included; never\n"
     "their secrets.\n\n" LIST_OPTS,
     key_list},
    {"key", "revoke", 2, 2, {0}, "key revoke PLATFORM KEY_ID",
     "Revokes an API key: every worker refuses it within a second.\n",
     key_revoke},
    {"stack", "list", 0, 0, {"platform=", "limit=", "all"},
     "stack list [--platform P] [--limit N | --all]",
     "Lists every stack version the host found, one a row: its STATE\n"
     "(loaded, refused: the reason follows the table), IN USE (platforms\n"
     "with it active), SOURCE (installed from an archive, builtin, folder)\n"
     "and SIGNED BY (the key id, unsigned, or - when not from an archive);\n"
     "or with --platform the stacks active on platform P.\n\n"
     "  --platform P   the activations of platform P\n" LIST_OPTS,
     stack_list},
    {"stack", "show", 1, 1, {0}, "stack show ID",
     "Shows an installed stack and its versions.\n", stack_show},
    {"stack", "activate", 2, 2, {"version="},
     "stack activate PLATFORM STACK [--version V]",
     "Activates STACK on PLATFORM: the newest installed version unless\n"
     "pinned; replaces another active version of the same stack.\n\n"
     "  --version V   the version to activate\n",
     stack_activate},
    {"stack", "deactivate", 2, 2, {0}, "stack deactivate PLATFORM STACK",
     "Deactivates STACK on PLATFORM.\n", stack_deactivate},
    {"stack", "install", 1, 1, {"sha256="}, "stack install FILE|URL [--sha256 H]",
     "Installs a stack archive (.tar.gz): FILE is uploaded, a URL is fetched\n"
     "by the host. The archive is checked (checksums, signature when\n"
     "stacks.trusted_keys is set, every package loadable) before it is put\n"
     "in place; every worker serves the new version without a reload.\n\n"
     "  --sha256 H   the archive's expected SHA-256 (hex)\n",
     stack_install},
    {"stack", "remove", 2, 2, {0}, "stack remove ID VERSION",
     "Removes an installed stack version; refused while a platform has it\n"
     "active. Workers unload it once no request uses it.\n",
     stack_remove},
    {"audit", NULL, 0, 0, {"target=", "action=", "limit=", "all"},
     "audit [--target T] [--action A] [--limit N | --all]",
     "Shows the audit log, newest first (the newest 100 entries unless\n"
     "--limit or --all).\n\n"
     "  --target T   only entries about T (e.g. platform:acme)\n"
     "  --action A   only entries of action A (e.g. platform.create)\n"
     LIST_OPTS,
     audit},
    {"quarantine", "list", 0, 0, {0}, "quarantine list",
     "Lists the package versions quarantined after repeated crashes, one a\n"
     "row per platform (\"*\": every platform), with the crashes counted,\n"
     "the last one's reason and when the quarantine ends.\n",
     quarantine_list},
    {"usage", NULL, 0, 0, {"platform=", "from=", "to=", "by=", "csv"},
     "usage --platform P [--from D] [--to D] [--by tenant|package|class|hour] "
     "[--csv]",
     "Shows a platform's requests from the hourly buckets (flushed every\n"
     "few seconds), by status class unless --by says otherwise, with its\n"
     "storage and active users. A table; --json prints the server's JSON,\n"
     "--csv comma-separated rows with a header line.\n\n"
     "  --platform P   the platform (required)\n"
     "  --from D       first day YYYY-MM-DD or hour YYYY-MM-DDTHH, UTC\n"
     "                 (default: the start of this month)\n"
     "  --to D         last day or hour, included (default: now); at most\n"
     "                 366 days after --from\n"
     "  --by B         tenant, package, class or hour\n"
     "  --csv          CSV instead of a table\n\n"
     "Examples:\n"
     "  nno usage --platform acme\n"
     "  nno usage --platform acme --from 2026-12-01 --to 2026-12-31 --by tenant\n"
     "  nno usage --platform acme --from 2026-12-05T09 --by hour --csv\n",
     cli_usage_cmd},
    {"quarantine", "release", 3, 3, {0},
     "quarantine release PLATFORM PACKAGE VERSION",
     "Ends a quarantine now: every worker serves the package again on its\n"
     "next request. Its backoff is kept: a crash soon after quarantines it\n"
     "again, for twice as long.\n",
     quarantine_release},
    {"operator-key", "rotate", 0, 0, {"show"}, "operator-key rotate [--show]",
     "Replaces the operator key: the old one stops working at once. The new\n"
     "key is written to the key file the CLI read (or DATA/operator.key with\n"
     "--data/NNO_DATA) with mode 0600; only its path is printed.\n\n"
     "  --show   print the new key on stdout (so does --json, in the JSON)\n",
     operator_key_rotate},
};
const size_t cli_ncommands = sizeof cli_commands / sizeof cli_commands[0];

const cli_group cli_groups[] = {
    {"platform", "create, list, show, update, suspend, resume, delete"},
    {"plan", "list, show, create, update the plans platforms are on"},
    {"tenant", "create, list, show, delete the tenants of a platform"},
    {"key", "create, list, revoke the API keys of a platform"},
    {"resource", "list, show the resources of a platform"},
    {"stack", "install, remove, list stacks; activate or deactivate them"},
    {"audit", "show the audit log, newest first"},
    {"quarantine", "list, release packages quarantined after crashes"},
    {"usage", "a platform's requests, storage and users (table, JSON, CSV)"},
    {"operator-key", "rotate: replace the operator key"},
};
const size_t cli_ngroups = sizeof cli_groups / sizeof cli_groups[0];
/* clang-format on */
