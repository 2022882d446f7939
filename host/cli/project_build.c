/* The project's build, shared by every `nno project` command: find the
 * project (project_open), point pkg-config at this nno's own .pc files
 * (project_pkgconfig_env), compile with the project's Makefile, stage the
 * result as a stack folder, check it as the loader would and pack it
 * (project_build). Nothing here is shelled out but the compile: the check
 * is pkgcheck's and the archive is archive_pack's, as for `nno stack check`
 * and `nno stack pack`. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include <jansson.h>

#include "config.h"
#include "pkgcheck.h"
#include "project.h"
#include "semver.h"
#include "stack_archive.h"

/* A manifest is small: anything larger is not one. */
#define PROJECT_JSON_MAX (256 * 1024)
/* A file copied into the staged stack (the library, a migration, a UI
 * asset); the archive's own bounds apply again when it is installed. */
#define PROJECT_FILE_MAX ((off_t)256 * 1024 * 1024)

#ifndef NNO_INSTALL_LIBDIR
#define NNO_INSTALL_LIBDIR "lib"
#endif

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Read the JSON object in `path` (at most PROJECT_JSON_MAX bytes). NULL
 * with err. */
static json_t *read_object(const char *path, char *err, size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(err, cap, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (st.st_size > PROJECT_JSON_MAX) {
    snprintf(err, cap, "%s: larger than %d bytes", path, PROJECT_JSON_MAX);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    snprintf(err, cap, "%s:%d: %s", path, je.line, je.text);
    return NULL;
  }
  if (!json_is_object(j)) {
    snprintf(err, cap, "%s: not a JSON object", path);
    json_decref(j);
    return NULL;
  }
  return j;
}

/* The manifest's rule for names: [a-z][a-z0-9-]{0,63}. */
static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

int project_open(const char *start, project *pj, char *err, size_t cap) {
  char dir[PATH_MAX], a[PATH_MAX + 16], b[PATH_MAX + 16];
  memset(pj, 0, sizeof *pj);
  if (!realpath(start ? start : ".", dir)) {
    snprintf(err, cap, "%s: %s", start ? start : ".", strerror(errno));
    return -1;
  }
  for (;;) {
    snprintf(a, sizeof a, "%s/package.json", dir);
    snprintf(b, sizeof b, "%s/stack.json", dir);
    if (is_file(a) && is_file(b)) break;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
      snprintf(err, cap,
               "no project here: no folder from %s up holds package.json "
               "beside stack.json", start ? start : "the current folder");
      return -1;
    }
    *slash = '\0';
  }
  json_t *m = read_object(a, err, cap);
  if (!m) return -1;
  const char *name = json_string_value(json_object_get(m, "name"));
  const char *version = json_string_value(json_object_get(m, "version"));
  int rc = -1;
  if (!name || !name_ok(name))
    snprintf(err, cap, "%s: field \"name\": expected [a-z][a-z0-9-]{0,63}",
             a);
  else if (!version || strlen(version) >= sizeof pj->version ||
           semver_parse(version, &(semver){0}) != 0)
    snprintf(err, cap, "%s: field \"version\": expected a version such "
             "as 0.1.0", a);
  else {
    snprintf(pj->dir, sizeof pj->dir, "%s", dir);
    snprintf(pj->name, sizeof pj->name, "%s", name);
    snprintf(pj->version, sizeof pj->version, "%s", version);
    rc = 0;
  }
  json_decref(m);
  return rc;
}

void project_pkgconfig_env(const char *exe_dir) {
  char v[3 * PATH_MAX + 64];
  const char *old = getenv("PKG_CONFIG_PATH");
  int n = snprintf(v, sizeof v, "%s/../lib/pkgconfig", exe_dir);
  if (strcmp(NNO_INSTALL_LIBDIR, "lib") != 0)
    n += snprintf(v + n, sizeof v - (size_t)n, ":%s/../%s/pkgconfig",
                  exe_dir, NNO_INSTALL_LIBDIR);
  if (old && old[0] && (size_t)n < sizeof v)
    snprintf(v + n, sizeof v - (size_t)n, ":%s", old);
  setenv("PKG_CONFIG_PATH", v, 1);
}

/* mkdir -p. 0 or -1 (errno). */
static int mkdirs(const char *path) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
    *s = '/';
  }
  return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Copy the regular file `from` to `to` (mode 0644, or 0755 when `exec`). */
static int copy_file(const char *from, const char *to, int exec, char *err,
                     size_t cap) {
  int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > PROJECT_FILE_MAX) {
    int link = in < 0 && errno == ELOOP;
    snprintf(err, cap, "%s: %s", from,
             link ? "a link, not a regular file"
             : in < 0 ? strerror(errno)
             : st.st_size > PROJECT_FILE_MAX
                 ? "too large (at most 256 MiB a file)"
                 : "not a regular file");
    if (in >= 0) close(in);
    return -1;
  }
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                 exec ? 0755 : 0644);
  if (out < 0) {
    snprintf(err, cap, "%s: %s", to, strerror(errno));
    close(in);
    return -1;
  }
  char buf[65536];
  ssize_t r;
  int rc = 0;
  while ((r = read(in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(out, buf + off, (size_t)(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        rc = -1;
        break;
      }
      off += w;
    }
    if (rc) break;
  }
  if (r < 0) rc = -1;
  if (close(out) != 0) rc = -1;
  close(in);
  if (rc) snprintf(err, cap, "%s: %s", to, strerror(errno));
  return rc;
}

/* Copy the folder tree `from` into `to` (created): regular files and
 * folders only; a link or anything else is refused, as the archive would
 * refuse it. Names starting with '.' are left out (editor files). */
static int copy_tree(const char *from, const char *to, int depth, char *err,
                     size_t cap) {
  if (depth > 16) {
    snprintf(err, cap, "%s: folders nested too deep", from);
    return -1;
  }
  if (mkdirs(to) != 0) {
    snprintf(err, cap, "%s: %s", to, strerror(errno));
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
    if (e->d_name[0] == '.') continue;
    char a[PATH_MAX], b[PATH_MAX];
    struct stat st;
    if (snprintf(a, sizeof a, "%s/%s", from, e->d_name) >= (int)sizeof a ||
        snprintf(b, sizeof b, "%s/%s", to, e->d_name) >= (int)sizeof b) {
      snprintf(err, cap, "%s: path too long", from);
      rc = -1;
    } else if (lstat(a, &st) != 0) {
      snprintf(err, cap, "%s: %s", a, strerror(errno));
      rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
      rc = copy_tree(a, b, depth + 1, err, cap);
    } else if (S_ISREG(st.st_mode)) {
      rc = copy_file(a, b, 0, err, cap);
    } else {
      snprintf(err, cap, "%s: %s", a,
               S_ISLNK(st.st_mode) ? "a link, not a regular file or a folder"
                                   : "not a regular file or a folder");
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

/* Write `j` to `path`, keys in their order, 2-space indented. */
static int write_json(const char *path, json_t *j, char *err, size_t cap) {
  if (json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
    snprintf(err, cap, "%s: cannot write", path);
    return -1;
  }
  return 0;
}

/* Run `make` in the project: the Makefile compiles the C files of src/ against
 * pkg-config's nno-plugin into build/{mode}/lib{name}.so, the package's
 * version (VERSION) compiled into its descriptor. Its output goes
 * to stderr as it comes (stdout stays the command's result). Release
 * builds from scratch (-B): the flags differ from a dev build's. */
static int compile(const project *pj, int release, char *err, size_t cap) {
  char mode[32], ver[96];
  snprintf(mode, sizeof mode, "MODE=%s", release ? "release" : "dev");
  snprintf(ver, sizeof ver, "VERSION=%s", pj->version);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, cap, "cannot start make: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    if (dup2(2, 1) < 0) _exit(127);
    char *argv[] = {"make", "-s", "--no-print-directory", "-C",
                    (char *)pj->dir, mode, ver, release ? "-B" : NULL, NULL};
    execvp("make", argv);
    fprintf(stderr, "nno: cannot run make: %s\n", strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      snprintf(err, cap, "make: %s", strerror(errno));
      return -1;
    }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    snprintf(err, cap, "compile failed: make could not run");
  else
    snprintf(err, cap, "compile failed");
  return -1;
}

/* Stage the compiled package as DIR/build/stack/{name}/{version}/: the
 * project's package.json as it is, its stack.json with "version" set to
 * the one built and its entry for this package pinned to exactly the
 * package's version. */
static int stage(const project *pj, int release, const char *version,
                 char *dir, size_t dircap, char *err, size_t cap) {
  char p[PATH_MAX + 64], q[PATH_MAX + 64];
  json_t *pkg = NULL, *stk = NULL;
  int rc = -1;
  if (snprintf(dir, dircap, "%s/build/stack/%s/%s", pj->dir, pj->name,
               version) >= (int)dircap) {
    snprintf(err, cap, "%s: path too long", pj->dir);
    return -1;
  }
  snprintf(p, sizeof p, "%s/package.json", pj->dir);
  if (!(pkg = read_object(p, err, cap))) goto out;
  snprintf(p, sizeof p, "%s/stack.json", pj->dir);
  if (!(stk = read_object(p, err, cap))) goto out;
  /* The package keeps its own version (its descriptor says it too); the
   * stack is the one that takes `version`, e.g. 0.1.0-dev.3. */
  json_object_set_new(stk, "version", json_string(version));
  json_t *list = json_object_get(stk, "packages"), *e;
  size_t i;
  json_array_foreach(list, i, e) {
    const char *n = json_is_string(e) ? json_string_value(e)
                                      : json_string_value(json_object_get(e, "name"));
    if (n && !strcmp(n, pj->name))
      json_array_set_new(list, i,
                         json_pack("{s:s, s:s}", "name", pj->name, "version",
                                   pj->version));
  }
  const char *lib = json_string_value(json_object_get(pkg, "library"));
  char libname[128];
  if (lib && (strchr(lib, '/') || strlen(lib) >= sizeof libname || !lib[0])) {
    snprintf(err, cap, "%s/package.json: field \"library\": expected a file "
             "name such as lib%s.so", pj->dir, pj->name);
    goto out;
  }
  snprintf(libname, sizeof libname, "%s", lib ? lib : "");
  if (!lib) snprintf(libname, sizeof libname, "lib%s.so", pj->name);

  if (is_dir(dir) && archive_rmtree(dir) != 0) {
    snprintf(err, cap, "%s: cannot remove the previous staging: %s", dir,
             strerror(errno));
    goto out;
  }
  snprintf(p, sizeof p, "%s/packages/%s", dir, pj->name);
  if (mkdirs(p) != 0) {
    snprintf(err, cap, "%s: %s", p, strerror(errno));
    goto out;
  }
  snprintf(q, sizeof q, "%s/stack.json", dir);
  if (write_json(q, stk, err, cap)) goto out;
  snprintf(q, sizeof q, "%s/packages/%s/package.json", dir, pj->name);
  if (write_json(q, pkg, err, cap)) goto out;
  char built[PATH_MAX + 64];
  snprintf(built, sizeof built, "%s/build/%s/%s", pj->dir,
           release ? "release" : "dev", libname);
  snprintf(q, sizeof q, "%s/packages/%s/%s", dir, pj->name, libname);
  if (copy_file(built, q, 1, err, cap)) goto out;
  static const char *const dirs[] = {"migrations", "ui"};
  for (size_t k = 0; k < 2; k++) {
    snprintf(p, sizeof p, "%s/%s", pj->dir, dirs[k]);
    snprintf(q, sizeof q, "%s/packages/%s/%s", dir, pj->name, dirs[k]);
    if (is_dir(p) && copy_tree(p, q, 0, err, cap)) goto out;
  }
  rc = 0;
out:
  json_decref(pkg);
  json_decref(stk);
  return rc;
}

/* The loader's check of the staged stack, its problems on stderr in the
 * words `nno stack check` uses. 0 loadable, -1 with err. */
static int check(const char *exe_dir, const char *dir, const project *pj,
                 const char *version, char *err, size_t cap) {
  char cerr[CONFIG_ERR_MAX];
  nno_config *cfg = malloc(sizeof *cfg);
  if (!cfg) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  config_defaults(cfg, exe_dir);
  if (config_apply_env(cfg, cerr) != 0 || config_validate(cfg, cerr) != 0) {
    snprintf(err, cap, "invalid configuration: %s", cerr);
    free(cfg);
    return -1;
  }
  pkgcheck_report rep;
  memset(&rep, 0, sizeof rep);
  int rc = pkgcheck_stack(cfg, dir, pj->name, version, 1, &rep);
  for (size_t i = 0; i < rep.n; i++) {
    const pkgcheck_problem *p = &rep.v[i];
    if (p->field[0])
      fprintf(stderr, "error: %s: field \"%s\": %s\n", p->file, p->field,
              p->message);
    else
      fprintf(stderr, "error: %s: %s\n", p->file, p->message);
  }
  if (rc != 0 || rep.n)
    snprintf(err, cap, rep.n ? "the package is not loadable: %zu problem%s"
                             : "the check could not run",
             rep.n, rep.n == 1 ? "" : "s");
  pkgcheck_report_free(&rep);
  free(cfg);
  return rc == 0 && rep.n == 0 ? 0 : -1;
}

const char *project_build_hint(const char *err) {
  if (!strncmp(err, "compile failed: make", 20))
    return "install make and a C compiler (cc), then build again";
  if (!strncmp(err, "compile failed", 14))
    return "the compiler's messages are above: fix them and build again "
           "('nno project env' shows where pkg-config looks)";
  if (!strncmp(err, "the package is not loadable", 27))
    return "each line above is the loader's: fix package.json or the code "
           "it names";
  if (strstr(err, ": a link") || strstr(err, "not a regular file") ||
      strstr(err, "too large") || !strncmp(err, "pack failed", 11))
    return "a stack holds regular files and folders only, each within the "
           "archive's bounds: replace or remove what the message names";
  return "check the path the message names: the project's files must be "
         "readable, and build/ and dist/ writable";
}

int project_build(const project *pj, int release, const char *version,
                  const char *exe_dir, char *archive, size_t cap, char *err,
                  size_t errcap) {
  char dir[PATH_MAX], out[PATH_MAX + 16], perr[ARCHIVE_ERR_MAX];
  if (!version) version = pj->version;
  project_pkgconfig_env(exe_dir);
  if (compile(pj, release, err, errcap)) return -1;
  if (stage(pj, release, version, dir, sizeof dir, err, errcap)) return -1;
  if (check(exe_dir, dir, pj, version, err, errcap)) return -1;
  snprintf(out, sizeof out, "%s/%s", pj->dir, release ? "dist" : "build");
  if (mkdirs(out) != 0) {
    snprintf(err, errcap, "%s: %s", out, strerror(errno));
    return -1;
  }
  if (archive_pack(dir, out, archive, cap, perr, sizeof perr) != 0) {
    snprintf(err, errcap, "pack failed: %s", perr);
    return -1;
  }
  return 0;
}
