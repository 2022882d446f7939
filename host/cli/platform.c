/* nno platform: create, list, show, update, brand, suspend, resume and
 * delete platforms (/api/v1/platforms). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

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
      return cli_usage_error(msg,
                             "e.g. --stack default or --stack "
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
  int rc = cli_single(c, "POST", "/platforms", b);
  json_decref(b);
  return rc;
}

static int platform_list(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX] = "/platforms";
  if (cli_query(path, sizeof path, "class", cli_opt(a, "class")) ||
      cli_query(path, sizeof path, "status", cli_opt(a, "status")))
    return cli_too_long();
  return cli_list(c, a, "platform list", path, LIST_MAX_ROWS, PAGE_MAX,
                  platform_cols,
                  sizeof platform_cols / sizeof platform_cols[0]);
}

static int platform_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s", a->pos[0]))
    return cli_too_long();
  return cli_single(c, "GET", path, NULL);
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
    return cli_too_long();
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
    json_object_set_new(
        b, "owner",
        *cli_opt(a, "owner") ? json_string(cli_opt(a, "owner")) : json_null());
  rc = cli_request(c, "PATCH", path, b, etag[0] ? etag : NULL, &r);
  json_decref(b);
  if (rc) return rc;
  if (r.status == 412) return changed_meanwhile(&r, a->pos[0]);
  return cli_finish(c, &r);
}

/* -- platform brand ----------------------------------------------------------
 */

/* The registry's bound on a logo: its data: URI's text (registry/branding.h).
 */
#define BRAND_LOGO_MAX 65536

/* The image type of a logo file from its extension, or NULL. */
static const char *logo_type(const char *file) {
  static const char *const map[][2] = {{".png", "png"},   {".jpg", "jpeg"},
                                       {".jpeg", "jpeg"}, {".gif", "gif"},
                                       {".webp", "webp"}, {".svg", "svg+xml"}};
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
    snprintf(msg, sizeof msg,
             "platform brand: --logo %.256s: unknown image "
             "type",
             file);
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
      printf("logo: %.*s, %zu bytes of text\n", semi ? (int)(semi - s - 5) : 0,
             semi ? s + 5 : "", strlen(s));
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
    return cli_too_long();
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
  if (logo)
    json_object_set_new(b, "logo", json_string(logo));
  else if (cli_opt(a, "logo"))
    json_object_del(b, "logo"); /* --logo '' */
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
  if (r.status < 200 || r.status > 299 || c->json) return cli_finish(c, &r);
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
  if (cli_path(path, sizeof path, fmt, a->pos[0])) return cli_too_long();
  return cli_single(c, "POST", path, NULL);
}

/* The longest --reason the registry keeps (its "reason" field). */
#define SUSPEND_REASON_MAX 256

static int platform_suspend(cli *c, const cli_args *a) {
  const char *reason = cli_opt(a, "reason");
  if (!reason) return platform_action(c, a, "/platforms/%s/suspend");
  if (!*reason || strlen(reason) > SUSPEND_REASON_MAX)
    return cli_usage_error("platform suspend: --reason: expected 1 to 256 "
                           "bytes",
                           "say briefly why, e.g. --reason \"unpaid "
                           "invoice\"");
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/suspend", a->pos[0]))
    return cli_too_long();
  json_t *body = json_pack("{s:s}", "reason", reason);
  if (!body) return cli_usage_error("platform suspend: --reason: expected "
                                    "UTF-8 text", NULL);
  int rc = cli_single(c, "POST", path, body);
  json_decref(body);
  return rc;
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
    return cli_too_long();
  if (!cli_opt(a, "yes")) {
    char msg[256];
    if (!isatty(STDIN_FILENO)) {
      snprintf(msg, sizeof msg,
               "platform delete: refusing to delete platform %.64s without "
               "confirmation",
               id);
      return cli_usage_error(msg,
                             "pass --yes to delete it with its tenants, "
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

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
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
     platform_create,
     "  nno platform create acme --name \"Acme Corp\" --plan pro \\\n"
     "      --stack default\n",
     NULL, NULL},
    {"platform", "list", 0, 0, {"class=", "status=", "limit=", "all"},
     "platform list [--class C] [--status S] [--limit N | --all]",
     "Lists platforms by id, following pages (up to 100000 rows unless\n"
     "--limit or --all).\n\n"
     "  --class C    only platforms of class C\n"
     "  --status S   only platforms with status S (active, suspended...)\n"
     LIST_OPTS,
     platform_list,
     "  nno platform list --status suspended\n"
     "  nno platform list --json --all\n", NULL, NULL},
    {"platform", "show", 1, 1, {0}, "platform show ID",
     "Shows one platform as key: value lines.\n", platform_show,
     "  nno platform show acme\n", NULL, NULL},
    {"platform", "update", 1, 1, {"name=", "plan=", "owner="},
     "platform update ID [--name N] [--plan P] [--owner O]",
     "Changes a platform, refusing if someone else changed it since it was\n"
     "read (the update is sent with If-Match).\n\n"
     "  --name N    new display name\n"
     "  --plan P    new plan\n"
     "  --owner O   new owner ('' clears it)\n",
     platform_update,
     "  nno platform update acme --plan pro\n", NULL, NULL},
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
     platform_brand,
     "  nno platform brand acme --logo logo.svg --primary \"#0055aa\"\n",
     NULL, NULL},
    {"platform", "suspend", 1, 1, {"reason="},
     "platform suspend ID [--reason TEXT]",
     "Suspends a platform: its routes answer 403 until it is resumed.\n\n"
     "  --reason TEXT   why (1 to 256 bytes), kept with the platform and\n"
     "                  in the audit row\n",
     platform_suspend,
     "  nno platform suspend acme\n"
     "  nno platform suspend acme --reason \"invoice 2026-11 unpaid\"\n",
     NULL, NULL},
    {"platform", "resume", 1, 1, {0}, "platform resume ID",
     "Resumes a suspended platform.\n", platform_resume,
     "  nno platform resume acme\n", NULL, NULL},
    {"platform", "delete", 1, 1, {"yes", "keep-data"},
     "platform delete ID [--keep-data] [--yes]",
     "Deletes a platform with its tenants, activations and resources.\n"
     "Asks for confirmation on a terminal; elsewhere refuses without --yes.\n\n"
     "  --keep-data   archive the platform's data first (DATA/archive/);\n"
     "                the archive's path is printed\n"
     "  --yes         delete without asking\n",
     platform_delete,
     "  nno platform delete acme --keep-data --yes\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_platform = {
    "platform", "create, list, show, update, suspend, resume, delete", commands,
    sizeof commands / sizeof commands[0]};
