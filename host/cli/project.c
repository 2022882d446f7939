/* nno project: dispatch, help, init (a new project from a template),
 * build (a release archive) and env (the variables every project command
 * sets). dev, test, deploy and logs live in their own files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nno/registry.h>
#include <nno/sdk/request.h>

#include "config.h"
#include "project.h"
#include "stack_archive.h"

/* A template file is source text: bounded, read whole. */
#define TEMPLATE_FILE_MAX (1024 * 1024)
/* Folders a template may nest. */
#define TEMPLATE_DEPTH_MAX 8
/* NAME: [a-z][a-z0-9-]{0,31} (a template's name too). */
#define PROJECT_NAME_MAX 32

static int fail(const char *what, const char *hint, int code) {
  fprintf(stderr, "nno: %s\n", what);
  if (hint) fprintf(stderr, "hint: %s\n", hint);
  return code;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: nno project COMMAND [ARGS]\n"
          "\n"
          "A project is a folder holding one feature package (package.json,\n"
          "src/*.c, migrations/, ui/, tests/) and the one-package stack that\n"
          "ships it (stack.json). Its Makefile finds nno's headers and SDK with\n"
          "pkg-config: every project command puts this nno's own\n"
          "lib/pkgconfig first in PKG_CONFIG_PATH.\n"
          "\n"
          "commands:\n"
          "  init NAME [--template T] [--dir D]   a new project from a template\n"
          "  init --list                          the templates installed\n"
          "  build                                release build, checked and\n"
          "                                       packed into dist/ID-VERSION.tar.gz\n"
          "  dev                                  a local host, rebuilt on save\n"
          "  test                                 build, run tests/* against a host\n"
          "  deploy                               build, upload and activate\n"
          "  logs                                 the deployed package's logs\n"
          "  env                                  print the variables set\n"
          "\n"
          "examples:\n"
          "  nno project init shop --template crud\n"
          "  cd shop && nno project dev\n"
          "  nno project build\n");
}

static void usage_init(FILE *f) {
  fprintf(f,
          "usage: nno project init NAME [--template T] [--dir D]\n"
          "       nno project init --list\n"
          "\n"
          "Writes a new project named NAME into D (default ./NAME) from\n"
          "template T (default minimal). NAME is the package name, the stack\n"
          "id and the id of the platform it deploys to: 3 to 32 characters,\n"
          "[a-z][a-z0-9-]*, not ending with '-', and not api, admin, a core\n"
          "plugin's name or a stack the host ships. D must not exist, or be\n"
          "an empty folder: nothing is written otherwise.\n"
          "\n"
          "examples:\n"
          "  nno project init hello-world\n"
          "  nno project init shop --template crud --dir ~/src/shop\n");
}

static void usage_build(FILE *f) {
  fprintf(f,
          "usage: nno project build [--dir D]\n"
          "\n"
          "Release build of the project holding D (default: the current\n"
          "folder): compiles with -O2 and reproducible flags, stages the stack\n"
          "under build/stack/ID/VERSION/, checks it as the loader would and\n"
          "packs it into dist/ID-VERSION.tar.gz. Prints \"SHA256  PATH\". The\n"
          "same sources build to the same bytes.\n"
          "Exit 0, or 2 with the compiler's or the loader's words.\n"
          "\n"
          "example:\n"
          "  nno project build && nno stack install dist/*.tar.gz\n");
}

/* exe_dir/../share/nno/templates */
static void templates_dir(const char *exe_dir, char *out, size_t cap) {
  snprintf(out, cap, "%s/../share/nno/templates", exe_dir);
}

static int name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

/* Whether NAME can become what it names: the package, the stack id and
 * the platform it deploys to. The registry's platform id rule and
 * reserved host labels (nno/registry.h), the loader's core plugin names
 * and the ids of the stacks this host ships (config_defaults: the same
 * lists `nno serve` starts from), so that no name passes init to be
 * refused at test, build or deploy. 0, or -1 with `what` and `hint`. */
static int project_name_check(const char *name, const char *exe_dir,
                              char *what, size_t cap, const char **hint) {
  size_t n = strlen(name);
  if (!name_ok(name, PROJECT_NAME_MAX) ||
      !nno_id_valid(name, n, NNO_PLATFORM_ID_MIN, NNO_PLATFORM_ID_MAX)) {
    snprintf(what, cap, "project init: invalid name '%.64s'", name);
    *hint = "a name is 3 to 32 characters: a lowercase letter, then "
            "lowercase letters, digits or '-', not ending with '-'";
    return -1;
  }
  *hint = "pick another NAME: it becomes the package, the stack id and "
          "the id of the platform the project deploys to";
  if (!strcmp(name, NNO_HOST_LABEL_API) ||
      !strcmp(name, NNO_HOST_LABEL_ADMIN)) {
    snprintf(what, cap,
             "project init: '%s' is reserved for the core API's host name",
             name);
    return -1;
  }
  static nno_config cfg; /* large: PATH_MAX folders */
  config_defaults(&cfg, exe_dir);
  for (size_t i = 0; i < cfg.ncore_plugins; i++)
    if (!strcmp(name, cfg.core_plugins[i])) {
      snprintf(what, cap, "project init: '%s' is a core plugin's name",
               name);
      return -1;
    }
  /* A builtin stack is the operator's: a platform's key may not add
   * versions to it (and `default` is what new platforms start with). */
  char p[PATH_MAX + 80];
  struct stat st;
  if (snprintf(p, sizeof p, "%s/%s", cfg.builtin_stack_dir, name) <
          (int)sizeof p &&
      stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(what, cap, "project init: '%s' is a stack this host ships",
             name);
    return -1;
  }
  return 0;
}

/* The placeholders of a template: {{name}} the project name (package
 * name and stack id), {{id}} the same, {{c_name}} it as a C identifier. */
typedef struct subst {
  const char *name;
  char c_name[PROJECT_NAME_MAX + 1];
} subst;

/* `in` (len bytes) with every placeholder replaced, malloc'd into *out. */
static int substitute(const subst *s, const char *in, size_t len, char **out,
                      size_t *outlen) {
  static const char *const keys[] = {"{{name}}", "{{id}}", "{{c_name}}"};
  const char *vals[] = {s->name, s->name, s->c_name};
  /* A value is at most PROJECT_NAME_MAX bytes, a key at least 6. */
  size_t cap = len + (len / 6 + 1) * PROJECT_NAME_MAX + 1, n = 0;
  char *o = malloc(cap);
  if (!o) return -1;
  for (size_t i = 0; i < len;) {
    size_t k = 0;
    for (; k < 3; k++) {
      size_t kl = strlen(keys[k]);
      if (len - i >= kl && !memcmp(in + i, keys[k], kl)) break;
    }
    if (k < 3) {
      size_t vl = strlen(vals[k]);
      memcpy(o + n, vals[k], vl);
      n += vl;
      i += strlen(keys[k]);
    } else {
      o[n++] = in[i++];
    }
  }
  o[n] = '\0';
  *out = o;
  *outlen = n;
  return 0;
}

/* Copy the template file `from` to `to`, placeholders replaced, with its
 * executable bit (tests/smoke.sh). */
static int init_file(const subst *s, const char *from, const char *to,
                     mode_t mode, char *err, size_t cap) {
  int fd = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size > TEMPLATE_FILE_MAX) {
    snprintf(err, cap, "%s: %s", from,
             fd < 0 ? strerror(errno) : "larger than 1 MiB");
    if (fd >= 0) close(fd);
    return -1;
  }
  size_t len = (size_t)st.st_size, got = 0;
  char *buf = malloc(len + 1), *text = NULL;
  size_t tlen = 0;
  int rc = -1;
  while (buf && got < len) {
    ssize_t r = read(fd, buf + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (!buf || got != len || substitute(s, buf, len, &text, &tlen) != 0) {
    snprintf(err, cap, "%s: cannot read", from);
    goto out;
  }
  int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                 (mode & 0111) ? 0755 : 0644);
  if (out < 0) {
    snprintf(err, cap, "%s: %s", to, strerror(errno));
    goto out;
  }
  size_t off = 0;
  while (off < tlen) {
    ssize_t w = write(out, text + off, tlen - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  if (close(out) != 0 || off != tlen)
    snprintf(err, cap, "%s: cannot write", to);
  else
    rc = 0;
out:
  free(buf);
  free(text);
  return rc;
}

/* Copy the template folder `from` into the existing folder `to`, names
 * and contents substituted. */
static int init_tree(const subst *s, const char *from, const char *to,
                     int depth, char *err, size_t cap) {
  if (depth > TEMPLATE_DEPTH_MAX) {
    snprintf(err, cap, "%s: folders nested too deep", from);
    return -1;
  }
  DIR *d = opendir(from);
  if (!d) {
    snprintf(err, cap, "%s: %s", from, strerror(errno));
    return -1;
  }
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char a[PATH_MAX], b[PATH_MAX], *nm = NULL;
    size_t nl;
    struct stat st;
    if (substitute(s, e->d_name, strlen(e->d_name), &nm, &nl) != 0) {
      snprintf(err, cap, "out of memory");
      rc = -1;
      break;
    }
    if (snprintf(a, sizeof a, "%s/%s", from, e->d_name) >= (int)sizeof a ||
        snprintf(b, sizeof b, "%s/%s", to, nm) >= (int)sizeof b) {
      snprintf(err, cap, "%s: path too long", to);
      rc = -1;
    } else if (lstat(a, &st) != 0) {
      snprintf(err, cap, "%s: %s", a, strerror(errno));
      rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
      if (mkdir(b, 0755) != 0) {
        snprintf(err, cap, "%s: %s", b, strerror(errno));
        rc = -1;
      } else {
        rc = init_tree(s, a, b, depth + 1, err, cap);
      }
    } else if (S_ISREG(st.st_mode)) {
      rc = init_file(s, a, b, st.st_mode, err, cap);
    }
    free(nm);
  }
  closedir(d);
  return rc;
}

/* 1 if `dir` is a folder with nothing in it. */
static int dir_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      empty = 0;
      break;
    }
  closedir(d);
  return empty;
}

/* The first paragraph of the template's README after its title, its
 * lines joined by spaces: what it is. A paragraph longer than `cap`
 * (at most 256 bytes are printed) ends at its last whole sentence that
 * fits, or with "..." after a whole word. */
static void template_summary(const char *dir, char *out, size_t cap) {
  char p[PATH_MAX + 16], line[256];
  size_t n = 0;
  int cut = 0;
  out[0] = '\0';
  snprintf(p, sizeof p, "%s/README.md", dir);
  FILE *f = fopen(p, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || !line[0]) {
      if (n) break; /* the paragraph ended */
      continue;
    }
    size_t l = strlen(line);
    if (n + (n > 0) + l >= cap) {
      cut = 1;
      break;
    }
    n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", line);
  }
  fclose(f);
  if (!cut || !n) return;
  char *end = strrchr(out, '.');
  if (end) {
    end[1] = '\0';
  } else if (n + 4 < cap) {
    memcpy(out + n, " ...", 5);
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int init_list(const char *exe_dir) {
  char dir[PATH_MAX], sub[PATH_MAX + 300], sum[256];
  templates_dir(exe_dir, dir, sizeof dir);
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(sub, sizeof sub, "no templates: %s: %s", dir, strerror(errno));
    return fail(sub, "templates are installed with nno under "
                     "share/nno/templates/", 2);
  }
  char *names[64];
  size_t n = 0;
  struct dirent *e;
  while (n < 64 && (e = readdir(d)))
    if (name_ok(e->d_name, PROJECT_NAME_MAX) && (names[n] = strdup(e->d_name)))
      n++;
  closedir(d);
  qsort(names, n, sizeof names[0], cmp_str);
  for (size_t i = 0; i < n; i++) {
    snprintf(sub, sizeof sub, "%s/%s", dir, names[i]);
    template_summary(sub, sum, sizeof sum);
    printf("%-10s %s\n", names[i], sum);
    free(names[i]);
  }
  return 0;
}

static int cmd_init(int argc, char **argv, const char *exe_dir) {
  const char *name = NULL, *tpl = "minimal", *dir = NULL;
  char msg[PATH_MAX + 256];
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage_init(stdout);
      return 0;
    } else if (!strcmp(a, "--list")) {
      return init_list(exe_dir);
    } else if (!strcmp(a, "--template") || !strcmp(a, "--dir")) {
      if (i + 1 == argc) {
        snprintf(msg, sizeof msg, "project init: %s needs a value", a);
        return fail(msg, "run 'nno project init --help'", 2);
      }
      if (!strcmp(a, "--template"))
        tpl = argv[++i];
      else
        dir = argv[++i];
    } else if (a[0] == '-') {
      snprintf(msg, sizeof msg, "project init: unknown option '%.64s'", a);
      return fail(msg, "run 'nno project init --help'", 2);
    } else if (name) {
      snprintf(msg, sizeof msg, "project init: one NAME, got '%.64s' too", a);
      return fail(msg, "run 'nno project init --help'", 2);
    } else {
      name = a;
    }
  }
  if (!name)
    return fail("project init: NAME missing",
                "e.g. nno project init hello-world", 2);
  const char *hint = NULL;
  if (project_name_check(name, exe_dir, msg, sizeof msg, &hint))
    return fail(msg, hint, 2);
  char tdir[PATH_MAX], src[PATH_MAX + 64];
  templates_dir(exe_dir, tdir, sizeof tdir);
  snprintf(src, sizeof src, "%s/%s", tdir, tpl);
  struct stat st;
  if (!name_ok(tpl, PROJECT_NAME_MAX) || stat(src, &st) != 0 ||
      !S_ISDIR(st.st_mode)) {
    snprintf(msg, sizeof msg, "project init: no template '%.64s'", tpl);
    return fail(msg, "'nno project init --list' lists the templates", 2);
  }
  if (!dir) dir = name;
  if (strlen(dir) >= PATH_MAX - 64)
    return fail("project init: --dir is too long", NULL, 2);
  if (lstat(dir, &st) == 0 && !(S_ISDIR(st.st_mode) && dir_empty(dir))) {
    snprintf(msg, sizeof msg,
             "project init: %s exists and is not an empty folder; nothing "
             "was written", dir);
    return fail(msg, "pick another NAME, or --dir a new folder", 2);
  }

  /* Written beside the target then renamed onto it: a failure half-way
   * leaves nothing but the temporary folder, removed. */
  char parent[PATH_MAX], tmp[PATH_MAX + 64], err[PATH_MAX + 128];
  snprintf(parent, sizeof parent, "%s", dir);
  snprintf(tmp, sizeof tmp, "%s/.nno-init-XXXXXX", dirname(parent));
  if (!mkdtemp(tmp)) {
    snprintf(msg, sizeof msg, "project init: %s: %s", tmp, strerror(errno));
    return fail(msg, "the folder that will hold the project must exist and "
                     "be writable", 2);
  }
  subst s = {.name = name};
  snprintf(s.c_name, sizeof s.c_name, "%s", name);
  for (char *c = s.c_name; *c; c++)
    if (*c == '-') *c = '_';
  int rc = init_tree(&s, src, tmp, 0, err, sizeof err);
  if (rc == 0 && (chmod(tmp, 0755) != 0 || rename(tmp, dir) != 0)) {
    snprintf(err, sizeof err, "%s: %s", dir, strerror(errno));
    rc = -1;
  }
  if (rc != 0) {
    archive_rmtree(tmp);
    snprintf(msg, sizeof msg, "project init: %s; nothing was written", err);
    return fail(msg, NULL, 2);
  }
  printf("created project %s (template %s) in %s\n"
         "\n"
         "next:\n"
         "  cd %s && nno project dev\n",
         name, tpl, dir, dir);
  return 0;
}

static int cmd_build(int argc, char **argv, const char *exe_dir) {
  const char *dir = NULL;
  char msg[PATH_MAX + 2048];
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage_build(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
      dir = argv[++i];
    } else {
      snprintf(msg, sizeof msg, "project build: unexpected '%.64s'",
               argv[i]);
      return fail(msg, "run 'nno project build --help'", 2);
    }
  }
  project pj;
  char err[PATH_MAX + 1024], archive[PATH_MAX], hex[65];
  if (project_open(dir, &pj, err, sizeof err) != 0) {
    snprintf(msg, sizeof msg, "project build: %s", err);
    return fail(msg, "run it inside a project folder, or make one with "
                     "'nno project init NAME'", 2);
  }
  if (project_build(&pj, 1, NULL, exe_dir, archive, sizeof archive, err,
                    sizeof err) != 0) {
    snprintf(msg, sizeof msg, "project build: %s", err);
    return fail(msg, project_build_hint(err), 2);
  }
  int fd = open(archive, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || archive_sha256_fd(fd, hex) != 0) {
    if (fd >= 0) close(fd);
    snprintf(msg, sizeof msg, "project build: %s: cannot read it back",
             archive);
    return fail(msg, NULL, 2);
  }
  close(fd);
  printf("%s  %s\n", hex, archive);
  return 0;
}

static int cmd_env(int argc, char **argv, const char *exe_dir) {
  if (argc && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
    printf("usage: nno project env\n\n"
           "Prints, as shell assignments, the variables every project\n"
           "command sets for the build (PKG_CONFIG_PATH: this nno's\n"
           "lib/pkgconfig first).\n\n"
           "example:\n  eval \"$(nno project env)\" && make\n");
    return 0;
  }
  if (argc) return fail("project env: takes no arguments", NULL, 2);
  project_pkgconfig_env(exe_dir);
  const char *v = getenv("PKG_CONFIG_PATH");
  printf("export PKG_CONFIG_PATH='");
  for (; v && *v; v++) {
    if (*v == '\'') printf("'\\''");
    else putchar(*v);
  }
  printf("'\n");
  return 0;
}

int cli_project_main(int argc, char **argv, const char *exe_dir) {
  if (argc == 0 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") ||
      !strcmp(argv[0], "help")) {
    usage(argc ? stdout : stderr);
    return argc ? 0 : 2;
  }
  const char *c = argv[0];
  if (!strcmp(c, "init")) return cmd_init(argc - 1, argv + 1, exe_dir);
  if (!strcmp(c, "build")) return cmd_build(argc - 1, argv + 1, exe_dir);
  if (!strcmp(c, "env")) return cmd_env(argc - 1, argv + 1, exe_dir);
  if (!strcmp(c, "dev")) return cli_project_dev(argc - 1, argv + 1, exe_dir);
  if (!strcmp(c, "test")) return cli_project_test(argc - 1, argv + 1, exe_dir);
  if (!strcmp(c, "deploy"))
    return cli_project_deploy(argc - 1, argv + 1, exe_dir);
  if (!strcmp(c, "logs")) return cli_project_logs(argc - 1, argv + 1, exe_dir);
  char msg[128];
  snprintf(msg, sizeof msg, "project: unknown command '%.48s'", c);
  return fail(msg, "run 'nno project --help' for the commands", 2);
}
