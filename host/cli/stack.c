/* nno stack: the operator's stack commands, clients of /api/v1/stacks and
 * a platform's activations (list, show, versions, install, remove,
 * activate, deactivate), and the ones that run locally without a host:
 * pack, keygen and sign (stack_archive.h). `stack check` is check.c's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "stack_archive.h"
#include "cli.h"

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
    return cli_too_long();
  return cli_list(c, a, "stack list", path, LIST_MAX_ROWS, 0, acts, 4);
}

static int stack_show(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/stacks/%s", a->pos[0]))
    return cli_too_long();
  return cli_single(c, "GET", path, NULL);
}

static int stack_activate(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/stacks", a->pos[0]))
    return cli_too_long();
  json_t *b = json_object();
  json_object_set_new(b, "stack", json_string(a->pos[1]));
  if (cli_opt(a, "version"))
    json_object_set_new(b, "version", json_string(cli_opt(a, "version")));
  int rc = cli_single(c, "POST", path, b);
  json_decref(b);
  return rc;
}

static int stack_deactivate(cli *c, const cli_args *a) {
  char path[CLI_PATH_MAX], done[256];
  if (cli_path(path, sizeof path, "/platforms/%s/stacks/%s", a->pos[0],
               a->pos[1]))
    return cli_too_long();
  snprintf(done, sizeof done, "deactivated stack %.64s on platform %.64s",
           a->pos[1], a->pos[0]);
  return cli_no_content(c, "DELETE", path, done);
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
        json_object_set_new(
            row, "signed_by",
            json_string(json_is_null(json_object_get(row, "sha256"))
                            ? "-"
                            : "unsigned"));
      json_array_append_new(rows, row);
    }
  }
  return rows;
}

static int stack_versions(cli *c, const cli_args *a) {
  static const cli_col cols[] = {
      {"ID", "id"},         {"VERSION", "version"}, {"STATE", "state"},
      {"IN USE", "in_use"}, {"SOURCE", "source"},   {"SIGNED BY", "signed_by"}};
  long want = cli_rows_wanted(a, LIST_MAX_ROWS, "stack list");
  if (want < 0) return CLI_EUSAGE;
  json_t *all = NULL;
  int more = 0;
  int rc = cli_collect(c, "/stacks", want, 0, &all, NULL, &more);
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
  cli_more_note(a, more, want);
  json_decref(all);
  return CLI_OK;
}

static int is_url(const char *s) {
  return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int stack_install(cli *c, const cli_args *a) {
  const char *src = a->pos[0], *sha = cli_opt(a, "sha256");
  if (sha && (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64))
    return cli_usage_error(
        "stack install: --sha256 expects 64 lower-case hex "
        "digits",
        "e.g. the output of sha256sum FILE");
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
      return cli_usage_error(msg,
                             "give a stack archive (.tar.gz) or an "
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
        fprintf(stderr,
                "nno: %s has SHA-256 %s, not %s\nhint: nothing was "
                "sent\n",
                src, hex, sha);
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
    return cli_too_long();
  snprintf(done, sizeof done, "removed stack %.64s %.64s", a->pos[0],
           a->pos[1]);
  return cli_no_content(c, "DELETE", path, done);
}

/* -- local: pack, keygen, sign ----------------------------------------------
 */

static const struct {
  const char *sub, *usage, *help;
} cmds[] = {
    {"pack", "nno stack pack DIR [-o FILE|DIR]",
     "Packs the stack folder DIR (stack.json and packages/{name}/ with each\n"
     "package's manifest, library, migrations/ and ui/) into a reproducible\n"
     "{id}-{version}.tar.gz with a CHECKSUMS file, in the current folder or\n"
     "in -o (a folder, or the file to write). Prints \"SHA256  PATH\".\n"},
    {"keygen", "nno stack keygen NAME",
     "Writes a new Ed25519 key pair: NAME.key (secret, mode 0600) and\n"
     "NAME.pub (the line to add to a host's stacks.trusted_keys file).\n"
     "Never overwrites. Prints the key id.\n"},
    {"sign", "nno stack sign FILE --key NAME.key [-o OUT]",
     "Signs the archive FILE (its CHECKSUMS) with the secret key: writes it\n"
     "again with a SIGNATURE file, in place or to OUT. Prints \"OUT "
     "KEYID\".\n"},
};
static const char *const local_json_help =
    "\n  --json   print the result as one JSON object\n";
#define NCMDS (sizeof cmds / sizeof *cmds)

int cli_stack_local_claims(const char *sub) {
  for (size_t i = 0; i < NCMDS; i++)
    if (!strcmp(sub, cmds[i].sub)) return 1;
  return 0;
}

static void local_usage(size_t c, FILE *f) {
  fprintf(f, "usage: %s [--json]\n\n%s%s", cmds[c].usage, cmds[c].help,
          local_json_help);
}

/* --json: the result object on stdout (0), or 1 out of memory. */
static int print_result(json_t *j) {
  if (!j) {
    fprintf(stderr, "nno: out of memory\n");
    return 1;
  }
  cli_print_json(stdout, j);
  json_decref(j);
  return 0;
}

static int usage_error(size_t c, const char *msg) {
  fprintf(stderr, "nno: stack %s: %s\n", cmds[c].sub, msg);
  fprintf(stderr, "hint: usage: %s\n", cmds[c].usage);
  return 2;
}

static int failure(size_t c, const char *msg, const char *hint) {
  fprintf(stderr, "nno: stack %s: %s\n", cmds[c].sub, msg);
  fprintf(stderr, "hint: %s\n", hint);
  return 1;
}

int cli_stack_local_main(int argc, char **argv) {
  size_t c = 0;
  while (c < NCMDS && strcmp(argv[0], cmds[c].sub)) c++;
  if (c == NCMDS) return 2;
  const char *pos[2] = {0}, *out = NULL, *key = NULL;
  int npos = 0, json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      local_usage(c, stdout);
      return 0;
    }
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    const char **slot = NULL;
    if (c != 1 && (!strcmp(a, "-o") || !strcmp(a, "--output")))
      slot = &out;
    else if (c == 2 && !strcmp(a, "--key"))
      slot = &key;
    if (slot) {
      if (i + 1 == argc) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s needs a value", a);
        return usage_error(c, msg);
      }
      *slot = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      char msg[96];
      snprintf(msg, sizeof msg, "unknown option '%.48s'", a);
      return usage_error(c, msg);
    } else if (npos == 1) {
      return usage_error(c, "too many arguments");
    } else {
      pos[npos++] = a;
    }
  }
  if (npos != 1) return usage_error(c, "missing argument");
  char err[ARCHIVE_ERR_MAX + 256], id[17];

  if (c == 0) { /* pack */
    char path[PATH_MAX], hex[65];
    if (archive_pack(pos[0], out, path, sizeof path, err, sizeof err) != 0) {
      /* The hint is about what failed: the folder read, or where to write. */
      struct stat st;
      int dir_ok = stat(pos[0], &st) == 0 && S_ISDIR(st.st_mode) &&
                   strstr(err, "stack.json") == NULL &&
                   strncmp(err, pos[0], strlen(pos[0])) != 0;
      return failure(c, err,
                     dir_ok && out
                         ? "-o is a folder that exists, or a file in one"
                         : "DIR is a stack folder: stack.json and "
                           "packages/{name}/ (e.g. "
                           "build/share/nno/stacks/default/1.0.0)");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || archive_sha256_fd(fd, hex) != 0) {
      snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
      if (fd >= 0) close(fd);
      return failure(c, err, "the archive was written; read it back by hand");
    }
    close(fd);
    if (json)
      return print_result(json_pack("{s:s, s:s}", "sha256", hex, "path", path));
    printf("%s  %s\n", hex, path);
    return 0;
  }
  if (c == 1) { /* keygen */
    if (archive_keygen(pos[0], id, err, sizeof err) != 0)
      return failure(c, err,
                     "choose another NAME (existing keys are never "
                     "overwritten)");
    if (json)
      return print_result(json_pack("{s:s, s:s+, s:s+}", "key_id", id, "secret",
                                    pos[0], ".key", "public", pos[0], ".pub"));
    printf("%s\n", id);
    return 0;
  }
  if (!key) return usage_error(c, "--key NAME.key is required");
  if (archive_sign(pos[0], key, out, id, err, sizeof err) != 0)
    return failure(c, err,
                   "FILE is an archive written by 'nno stack pack', the key "
                   "a NAME.key written by 'nno stack keygen NAME'");
  if (json)
    return print_result(
        json_pack("{s:s, s:s}", "path", out ? out : pos[0], "key_id", id));
  printf("%s %s\n", out ? out : pos[0], id);
  return 0;
}

static void usage_pack(FILE *f) {
  local_usage(0, f);
}
static void usage_keygen(FILE *f) {
  local_usage(1, f);
}
static void usage_sign(FILE *f) {
  local_usage(2, f);
}

static int run_local(int argc, char **argv, const char *exe_dir) {
  (void)exe_dir;
  return cli_stack_local_main(argc, argv);
}

static int run_check(int argc, char **argv, const char *exe_dir) {
  return cli_stack_check(argc - 1, argv + 1, exe_dir);
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"stack", "list", 0, 0, {"platform=", "limit=", "all"},
     "stack list [--platform P] [--limit N | --all]",
     "Lists every stack version the host found, one a row: its STATE\n"
     "(loaded, refused: the reason follows the table), IN USE (platforms\n"
     "with it active), SOURCE (installed from an archive, builtin, folder)\n"
     "and SIGNED BY (the key id, unsigned, or - when not from an archive);\n"
     "or with --platform the stacks active on platform P.\n\n"
     "  --platform P   the activations of platform P\n" LIST_OPTS,
     stack_list,
     "  nno stack list\n"
     "  nno stack list --platform acme\n", NULL, NULL},
    {"stack", "show", 1, 1, {0}, "stack show ID",
     "Shows an installed stack and its versions.\n", stack_show,
     "  nno stack show default\n", NULL, NULL},
    {"stack", "activate", 2, 2, {"version="},
     "stack activate PLATFORM STACK [--version V]",
     "Activates STACK on PLATFORM: the newest installed version unless\n"
     "pinned; replaces another active version of the same stack.\n\n"
     "  --version V   the version to activate\n",
     stack_activate,
     "  nno stack activate acme default --version 1.2.0\n", NULL, NULL},
    {"stack", "deactivate", 2, 2, {0}, "stack deactivate PLATFORM STACK",
     "Deactivates STACK on PLATFORM.\n", stack_deactivate,
     "  nno stack deactivate acme default\n", NULL, NULL},
    {"stack", "install", 1, 1, {"sha256="},
     "stack install FILE|URL [--sha256 H]",
     "Installs a stack archive (.tar.gz): FILE is uploaded, a URL is fetched\n"
     "by the host. The archive is checked (checksums, signature when\n"
     "stacks.trusted_keys is set, every package loadable) before it is put\n"
     "in place; every worker serves the new version without a reload.\n\n"
     "  --sha256 H   the archive's expected SHA-256 (hex)\n",
     stack_install,
     "  nno stack install shop-1.0.0.tar.gz\n"
     "  nno stack install https://example.com/shop-1.0.0.tar.gz \\\n"
     "      --sha256 HEX\n",
     NULL, NULL},
    {"stack", "remove", 2, 2, {0}, "stack remove ID VERSION",
     "Removes an installed stack version; refused while a platform has it\n"
     "active. Workers unload it once no request uses it.\n",
     stack_remove,
     "  nno stack remove shop 1.0.0\n", NULL, NULL},
    {"stack", "check",
     .synopsis = "stack check DIR|FILE [--json] [--config FILE] "
                 "[--set KEY=VALUE]...",
     .opts = {"json", "config=", "set=+"}, .usage = cli_check_usage_stack,
     .local = run_check,
     .example = "  nno stack check build/share/nno/stacks/default/1.0.0\n"
                "  nno stack check shop-1.0.0.tar.gz --json\n"},
    {"stack", "pack", .synopsis = "stack pack DIR [-o FILE|DIR] [--json]",
     .opts = {"output=", "json"}, .usage = usage_pack, .local = run_local,
     .example = "  nno stack pack build/stack/shop/1.0.0 -o dist/\n"},
    {"stack", "keygen", .synopsis = "stack keygen NAME [--json]",
     .opts = {"json"}, .usage = usage_keygen, .local = run_local,
     .example = "  nno stack keygen ops   # writes ops.key and ops.pub\n"},
    {"stack", "sign",
     .synopsis = "stack sign FILE --key NAME.key [-o OUT] [--json]",
     .opts = {"key=", "output=", "json"}, .usage = usage_sign,
     .local = run_local,
     .example = "  nno stack sign dist/shop-1.0.0.tar.gz --key ops.key\n"},
};
/* clang-format on */

const cli_group cli_group_stack = {
    "stack", "install, list, activate stacks; pack, sign, check archives",
    commands, sizeof commands / sizeof commands[0]};
