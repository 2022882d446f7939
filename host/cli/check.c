/* `nno check-package DIR` and `nno stack check DIR|FILE`: the one
 * loadability check (pkgcheck.h) from the command line. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "pkgcheck.h"
#include "semver.h"
#include "stack_archive.h"

static int usage_error(const char *msg, const char *hint) {
  fprintf(stderr, "nno: %s\n", msg);
  if (hint) fprintf(stderr, "hint: %s\n", hint);
  return 2;
}

void cli_check_usage_package(FILE *f) {
  fprintf(f,
          "usage: nno check-package DIR [--json] [--config FILE]\n"
          "                         [--set KEY=VALUE]...\n"
          "\n"
          "Checks the package folder DIR as the loader would: package.json\n"
          "(unknown fields refused), migrations, the shared object's\n"
          "descriptor against the manifest and the host's ABI, then its init,\n"
          "run in a throw-away process with the core plugins loaded against\n"
          "a temporary data folder: the services it requires must exist and\n"
          "it must bind exactly the routes it declares; in the sandbox a\n"
          "worker would give it (sandbox.*, by the stack folder it is in).\n"
          "\n"
          "  --json   print {\"ok\", \"problems\": [{\"file\", \"field\",\n"
          "           \"message\"}]} on stdout instead\n"
          "\n"
          "Exit 0 if loadable, 1 with each problem on stderr (\"nno: ...\"),\n"
          "2 for usage errors.\n");
}

void cli_check_usage_stack(FILE *f) {
  fprintf(f,
          "usage: nno stack check DIR|FILE [--json] [--config FILE]\n"
          "                       [--set KEY=VALUE]...\n"
          "\n"
          "Checks a stack folder, or a stack archive (FILE, extracted to a\n"
          "temporary folder first), as the loader would: stack.json and\n"
          "every package (see 'nno check-package --help'), each package's\n"
          "version against the stack's ranges, and, for a folder named\n"
          "{id}/{version}, that stack.json says the same. The packages' init\n"
          "runs in a throw-away process (stacks.check_timeout_ms); a stack\n"
          "the configuration sandboxes (sandbox.*) starts its sandbox there,\n"
          "as a worker's trial load does (sandbox.spawn_timeout_ms).\n"
          "\n"
          "  --json   print {\"ok\", \"stack\", \"problems\": [{\"file\", "
          "\"field\",\n"
          "           \"message\"}]} on stdout instead of the lines below\n"
          "\n"
          "Exit 0 if loadable; 1 with each problem on stderr as\n"
          "'error: FILE: field \"F\": message'; 2 for usage errors.\n");
}

/* Defaults < NNO_CONFIG or --config < NNO_* < --set. */
static int load_config(nno_config *c, const char *exe_dir, const char *path,
                       char kv[][512], int nkv, char *err) {
  config_defaults(c, exe_dir);
  if (path && config_apply_file(c, path, err)) return -1;
  if (config_apply_env(c, err)) return -1;
  for (int i = 0; i < nkv; i++)
    if (config_set(c, kv[i], kv[i] + strlen(kv[i]) + 1, err)) return -1;
  return config_validate(c, err);
}

typedef struct opts {
  const char *target;
  int json;
  const char *config;
  char kv[32][512];
  int nkv;
} opts;

/* Parse [--json] [--config F] [--set K=V]... and one operand. 0, or an
 * exit status (usage printed). */
static int parse(int argc, char **argv, int allow_json, const char *cmd,
                 void (*usage)(FILE *), opts *o) {
  char msg[256], hint[128];
  snprintf(hint, sizeof hint, "run 'nno %s --help' for the options", cmd);
  o->config = getenv("NNO_CONFIG");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return -1;
    } else if (allow_json && !strcmp(a, "--json")) {
      o->json = 1;
    } else if (!strcmp(a, "--config") || !strcmp(a, "--set")) {
      if (i + 1 == argc) {
        snprintf(msg, sizeof msg, "%s: option '%s' needs a value", cmd, a);
        return usage_error(msg, hint);
      }
      const char *v = argv[++i];
      if (!strcmp(a, "--config")) {
        o->config = v;
        continue;
      }
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || o->nkv == 32 || strlen(v) >= sizeof o->kv[0]) {
        snprintf(msg, sizeof msg, "%s: --set needs KEY=VALUE", cmd);
        return usage_error(msg, "e.g. --set stacks.check_timeout_ms=5000");
      }
      snprintf(o->kv[o->nkv], sizeof o->kv[0], "%s", v);
      o->kv[o->nkv][eq - v] = '\0';
      o->nkv++;
    } else if (a[0] == '-' && a[1]) {
      snprintf(msg, sizeof msg, "%s: unknown option '%.64s'", cmd, a);
      return usage_error(msg, hint);
    } else if (o->target) {
      snprintf(msg, sizeof msg, "%s: expected one %s, got '%.64s' too", cmd,
               strcmp(cmd, "check-package") ? "folder or archive" : "folder",
               a);
      return usage_error(msg, hint);
    } else {
      o->target = a;
    }
  }
  if (!o->target) {
    snprintf(msg, sizeof msg, "%s: expected %s", cmd,
             strcmp(cmd, "check-package") ? "a stack folder or archive"
                                          : "a package folder");
    return usage_error(msg, hint);
  }
  return 0;
}

static nno_config *config_for(const opts *o, const char *exe_dir) {
  char err[CONFIG_ERR_MAX], msg[CONFIG_ERR_MAX + 32];
  nno_config *cfg = malloc(sizeof *cfg);
  if (!cfg) {
    usage_error("out of memory", NULL);
    return NULL;
  }
  if (load_config(cfg, exe_dir, o->config, (char(*)[512])o->kv, o->nkv, err) !=
      0) {
    snprintf(msg, sizeof msg, "invalid configuration: %s", err);
    usage_error(msg, "run 'nno serve --help' for every key and its bounds");
    free(cfg);
    return NULL;
  }
  return cfg;
}

static void print_problems(const pkgcheck_report *rep) {
  for (size_t i = 0; i < rep->n; i++) {
    const pkgcheck_problem *p = &rep->v[i];
    if (p->field[0])
      fprintf(stderr, "error: %s: field \"%s\": %s\n", p->file, p->field,
              p->message);
    else
      fprintf(stderr, "error: %s: %s\n", p->file, p->message);
  }
}

/* The report as the command says it; its exit status. */
static int finish(const pkgcheck_report *rep, int rc, int json,
                  const char *ok_line) {
  if (json) {
    json_t *j = pkgcheck_report_json(rep);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
      fprintf(stderr, "nno: out of memory\n");
      return 1;
    }
    printf("%s\n", s);
    free(s);
  } else if (rep->n) {
    print_problems(rep);
  } else if (rc >= 0) {
    printf("%s\n", ok_line);
  }
  if (rc < 0 && rep->n == 0) fprintf(stderr, "nno: the check could not run\n");
  return rc == 0 && rep->n == 0 ? 0 : 1;
}

int cli_check_package(int argc, char **argv, const char *exe_dir) {
  opts o;
  memset(&o, 0, sizeof o);
  int rc = parse(argc, argv, 1, "check-package", cli_check_usage_package, &o);
  if (rc) return rc < 0 ? 0 : rc;
  nno_config *cfg = config_for(&o, exe_dir);
  if (!cfg) return 2;
  pkgcheck_report rep;
  memset(&rep, 0, sizeof rep);
  rc = pkgcheck_package(cfg, o.target, 1, &rep);
  if (o.json) {
    rc = finish(&rep, rc, 1, "package ok");
    pkgcheck_report_free(&rep);
    free(cfg);
    return rc;
  }
  /* Each problem in the loader's own words, as this command always did. */
  for (size_t i = 0; i < rep.n; i++) {
    char text[PATH_MAX + 1200];
    pkgcheck_problem_text(&rep.v[i], text, sizeof text);
    fprintf(stderr, "nno: %s\n", text);
  }
  if (rep.n == 0 && rc >= 0) printf("package ok\n");
  if (rep.n == 0 && rc < 0) fprintf(stderr, "nno: the check could not run\n");
  rc = rep.n == 0 && rc >= 0 ? 0 : 1;
  pkgcheck_report_free(&rep);
  free(cfg);
  return rc;
}

/* "…/{id}/{version}": what the folder's place says the stack is. */
static void place_of(const char *dir, char *id, size_t idcap, char *ver,
                     size_t vercap) {
  char buf[PATH_MAX], up[PATH_MAX];
  semver v;
  id[0] = ver[0] = '\0';
  if (!realpath(dir, buf)) return;
  snprintf(up, sizeof up, "%s", buf);
  const char *b = basename(buf);
  if (semver_parse(b, &v) != 0 || strlen(b) >= vercap) return;
  const char *p = basename(dirname(up));
  if (!p[0] || !strcmp(p, "/") || strlen(p) >= idcap) return;
  snprintf(ver, vercap, "%s", b);
  snprintf(id, idcap, "%s", p);
}

/* Replace the staging folder's path in `s` by the archive's name. */
static void rename_in(char *s, size_t cap, const char *from, const char *to) {
  char out[PATH_MAX + 1024];
  size_t fl = strlen(from), o = 0;
  const char *p = s;
  while (*p && o + 1 < sizeof out) {
    if (strncmp(p, from, fl) == 0) {
      o += (size_t)snprintf(out + o, sizeof out - o, "%s", to);
      if (o >= sizeof out) o = sizeof out - 1;
      p += fl;
    } else {
      out[o++] = *p++;
    }
  }
  out[o] = '\0';
  snprintf(s, cap, "%s", out);
}

/* Extract the archive `file` to a temporary folder and check that. */
static int check_archive(const nno_config *cfg, const char *file,
                         pkgcheck_report *rep) {
  char staging[PATH_MAX], err[ARCHIVE_ERR_MAX + 64];
  const char *t = getenv("TMPDIR");
  snprintf(staging, sizeof staging, "%s/nno-stack-XXXXXX",
           t && *t ? t : "/tmp");
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, sizeof err, "%s: cannot open: %s", file, strerror(errno));
    return pkgcheck_add(rep, file, err) ? -1 : 1;
  }
  if (!mkdtemp(staging)) {
    snprintf(err, sizeof err, "cannot make a staging folder: %s",
             strerror(errno));
    close(fd);
    return pkgcheck_add(rep, file, err) ? -1 : 1;
  }
  archive_limits lim;
  archive_keyring kr;
  archive_info info;
  archive_error e;
  memset(&e, 0, sizeof e);
  archive_limits_from_config(cfg, &lim);
  int rc;
  if (archive_keyring_load(cfg->trusted_keys, &kr, err, sizeof err) != 0) {
    rc = pkgcheck_add(rep, cfg->trusted_keys, err) ? -1 : 1;
  } else if (archive_extract(fd, staging, &lim, &kr, &info, &e) != 0) {
    /* The entry is the locator inside the archive, said as a field:
     * "FILE: field \"ENTRY\": message" (an entry name may be absolute). */
    char text[PATH_MAX + 2048];
    if (e.file[0])
      snprintf(text, sizeof text, "%s: field \"%s\": %s", file, e.file,
               e.message);
    else
      snprintf(text, sizeof text, "%s: %s", file, e.message);
    rc = pkgcheck_add(rep, file, text) ? -1 : 1;
  } else {
    rc = pkgcheck_stack(cfg, staging, NULL, NULL, 1, rep);
    for (size_t i = 0; i < rep->n; i++) {
      rename_in(rep->v[i].file, sizeof rep->v[i].file, staging, file);
      rename_in(rep->v[i].message, sizeof rep->v[i].message, staging, file);
    }
  }
  close(fd);
  archive_rmtree(staging);
  return rc;
}

int cli_stack_check(int argc, char **argv, const char *exe_dir) {
  opts o;
  memset(&o, 0, sizeof o);
  int rc = parse(argc, argv, 1, "stack check", cli_check_usage_stack, &o);
  if (rc) return rc < 0 ? 0 : rc;
  struct stat st;
  if (stat(o.target, &st) != 0) {
    char msg[PATH_MAX + 64];
    snprintf(msg, sizeof msg, "stack check: %s: %s", o.target, strerror(errno));
    return usage_error(msg, "give a stack folder or a .tar.gz stack archive");
  }
  nno_config *cfg = config_for(&o, exe_dir);
  if (!cfg) return 2;
  pkgcheck_report rep;
  memset(&rep, 0, sizeof rep);
  if (S_ISDIR(st.st_mode)) {
    char id[65], ver[64];
    place_of(o.target, id, sizeof id, ver, sizeof ver);
    rc = pkgcheck_stack(cfg, o.target, id[0] ? id : NULL, ver[0] ? ver : NULL,
                        1, &rep);
  } else {
    rc = check_archive(cfg, o.target, &rep);
  }
  char ok[200];
  snprintf(ok, sizeof ok, "stack %s %s ok", rep.id, rep.version);
  rc = finish(&rep, rc < 0 ? -1 : 0, o.json, ok);
  pkgcheck_report_free(&rep);
  free(cfg);
  return rc;
}

/* -- the command table ----------------------------------------------------- */

static int run_check_package(int argc, char **argv, const char *exe_dir) {
  return cli_check_package(argc, argv, exe_dir);
}

/* clang-format off */
static const cli_command commands[] = {
    {"check-package", NULL,
     .synopsis = "check-package DIR [--json] [--config FILE] "
                 "[--set KEY=VALUE]...",
     .opts = {"json", "config=", "set=+"}, .usage = cli_check_usage_package,
     .local = run_check_package,
     .example = "  nno check-package build/stack/shop/0.1.0/packages/shop\n"
                "  nno check-package shop/packages/shop --json\n"},
};
/* clang-format on */

const cli_group cli_group_check_package = {
    "check-package", "check a package folder as the loader would", commands,
    sizeof commands / sizeof commands[0]};
