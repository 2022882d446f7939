/* The one loadability check: static checks of a package or stack folder,
 * the dynamic check (init in a throw-away child), and the report. The
 * loader decides with the same functions (see pkgcheck.h). */
#include "pkgcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "fetch.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "sandbox.h"
#include "semver.h"
#include "services.h"
#include "trust.h"
#include "worker.h"

/* Problems a report keeps; a check stops adding beyond. */
#define PROBLEMS_MAX 256
/* What a child may write to its parent. */
#define CHILD_OUT_MAX (256 * 1024)

/* ---- report ------------------------------------------------------------ */

static int add_raw(pkgcheck_report *rep, const char *file, const char *field,
                   const char *message, int prefixed) {
  if (rep->n == PROBLEMS_MAX) return 0;
  if (rep->n == rep->cap) {
    size_t cap = rep->cap ? rep->cap * 2 : 8;
    pkgcheck_problem *v = realloc(rep->v, cap * sizeof *v);
    if (!v) return -1;
    rep->v = v;
    rep->cap = cap;
  }
  pkgcheck_problem *p = &rep->v[rep->n++];
  snprintf(p->file, sizeof p->file, "%s", file);
  snprintf(p->field, sizeof p->field, "%s", field);
  snprintf(p->message, sizeof p->message, "%s", message);
  p->prefixed = prefixed;
  return 0;
}

int pkgcheck_add(pkgcheck_report *rep, const char *file, const char *err) {
  size_t fl = strlen(file);
  if (fl == 0 || strncmp(err, file, fl) != 0 || strncmp(err + fl, ": ", 2))
    return add_raw(rep, file, "", err, 0);
  const char *rest = err + fl + 2;
  char field[128] = "";
  if (strncmp(rest, "field \"", 7) == 0) {
    /* Field paths hold no quote followed by ": " (keys are escaped). */
    const char *end = strstr(rest + 7, "\": ");
    if (end && (size_t)(end - rest - 7) < sizeof field) {
      memcpy(field, rest + 7, (size_t)(end - rest - 7));
      field[end - rest - 7] = '\0';
      rest = end + 3;
    }
  }
  return add_raw(rep, file, field, rest, 1);
}

void pkgcheck_problem_text(const pkgcheck_problem *p, char *buf, size_t cap) {
  if (!p->prefixed)
    snprintf(buf, cap, "%s", p->message);
  else if (p->field[0])
    snprintf(buf, cap, "%s: field \"%s\": %s", p->file, p->field, p->message);
  else
    snprintf(buf, cap, "%s: %s", p->file, p->message);
}

json_t *pkgcheck_report_json(const pkgcheck_report *rep) {
  json_t *probs = json_array();
  if (!probs) return NULL;
  for (size_t i = 0; i < rep->n; i++) {
    const pkgcheck_problem *p = &rep->v[i];
    if (json_array_append_new(probs,
                              json_pack("{s:s, s:s, s:s}", "file", p->file,
                                        "field", p->field, "message",
                                        p->message))) {
      json_decref(probs);
      return NULL;
    }
  }
  json_t *st = rep->id[0] ? json_pack("{s:s, s:s}", "id", rep->id,
                                      "version", rep->version)
                          : json_null();
  /* "o" takes the references, on failure too. */
  return json_pack("{s:b, s:o, s:o}", "ok", rep->n == 0, "stack", st,
                   "problems", probs);
}

void pkgcheck_report_free(pkgcheck_report *rep) {
  free(rep->v);
  memset(rep, 0, sizeof *rep);
}

/* ---- static decisions (shared with the loader) ------------------------ */

static const char *kind_name(int k) {
  return k == NNO_KIND_CORE ? "core" : k == NNO_KIND_FEATURE ? "feature" : "?";
}

/* trust_path `path` under `root`, then trust_open what it resolves to:
 * the descriptor of the file judged, or -1 with err. */
static int open_trusted(const char *root, const char *path, char *err,
                        size_t errlen) {
  char rpath[PATH_MAX];
  if (trust_path(root, path, rpath, err, errlen)) return -1;
  return trust_open(rpath, path, err, errlen);
}

/* Is `s` a migration file name, "NNNN_what.sql" (NNNN from 0001)? Its
 * number in *num. 1 for a migration, 2 for "NNNN_what.down.sql" (the
 * inverse of migration NNNN, which the provisioning plugin pairs with it:
 * not counted here), 0 for neither. */
static int migration_name(const char *s, unsigned *num) {
  size_t n = strlen(s);
  if (n < 10 || strcmp(s + n - 4, ".sql") != 0 || s[4] != '_') return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  *num = v;
  if (v == 0) return 0;
  return n >= 15 && strcmp(s + n - 9, ".down.sql") == 0 ? 2 : 1;
}

/* The package's `migrations/` folder, by names only (the provisioning
 * plugin reads and applies the files): each entry a folder named for an
 * sql resource the manifest declares, holding only NNNN_what.sql files
 * numbered 0001, 0002, ... without gap or repeat. No folder: nothing to
 * check. 0, or -1 with the reason in err. */
static int migrations_check(const char *dir, const package_manifest *m,
                            char *err, size_t errlen) {
  char mdir[PATH_MAX + 16];
  struct stat st;
  snprintf(mdir, sizeof mdir, "%s/migrations", dir);
  if (lstat(mdir, &st) != 0) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "package \"%s\": %s: %s", m->name, mdir,
             strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "package \"%s\": migrations/ is not a folder",
             m->name);
    return -1;
  }
  DIR *d = opendir(mdir);
  if (!d) {
    snprintf(err, errlen, "package \"%s\": %s: %s", m->name, mdir,
             strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char sub[PATH_MAX + 300];
    snprintf(sub, sizeof sub, "%s/%s", mdir, e->d_name);
    if (!manifest_resource_find(m, "sql", e->d_name) ||
        lstat(sub, &st) != 0 || !S_ISDIR(st.st_mode)) {
      snprintf(err, errlen,
               "package \"%s\": migrations/%.64s is not a folder named for "
               "an sql resource the manifest declares", m->name, e->d_name);
      rc = -1;
      break;
    }
    /* Numbers seen: a bitmap of 1..9999. */
    static unsigned char seen[10000 / 8 + 1];
    memset(seen, 0, sizeof seen);
    unsigned count = 0, max = 0, num;
    DIR *f = opendir(sub);
    struct dirent *fe;
    if (!f) {
      snprintf(err, errlen, "package \"%s\": %s: %s", m->name, sub,
               strerror(errno));
      rc = -1;
      break;
    }
    while (rc == 0 && (fe = readdir(f))) {
      if (strcmp(fe->d_name, ".") == 0 || strcmp(fe->d_name, "..") == 0)
        continue;
      int kind = migration_name(fe->d_name, &num);
      if (kind == 2) {
        /* An inverse, paired at activation with the migration of the same
         * name: "0002_tag.down.sql" undoes "0002_tag.sql". */
        size_t dl = strlen(fe->d_name);
        char up[PATH_MAX + 320];
        snprintf(up, sizeof up, "%s/%.*s.sql", sub, (int)(dl - 9), fe->d_name);
        if (lstat(up, &st) != 0 || !S_ISREG(st.st_mode)) {
          snprintf(err, errlen,
                   "package \"%s\": %s/%s: no migration %.*s.sql for it to "
                   "undo", m->name, sub, fe->d_name, (int)(dl - 9),
                   fe->d_name);
          rc = -1;
        }
        continue;
      }
      if (!kind) {
        snprintf(err, errlen,
                 "package \"%s\": migrations/%s/%.64s: expected a file named "
                 "NNNN_what.sql (0001, 0002, ...)", m->name, e->d_name,
                 fe->d_name);
        rc = -1;
      } else if (seen[num / 8] & (1u << (num % 8))) {
        snprintf(err, errlen,
                 "package \"%s\": migrations/%s: number %04u is used twice",
                 m->name, e->d_name, num);
        rc = -1;
      } else {
        seen[num / 8] |= (unsigned char)(1u << (num % 8));
        count++;
        if (num > max) max = num;
      }
    }
    closedir(f);
    if (rc == 0 && count != max) {
      for (num = 1; num < max && (seen[num / 8] & (1u << (num % 8))); num++) {
      }
      snprintf(err, errlen,
               "package \"%s\": %s: %04u is missing (files must be "
               "numbered 0001, 0002, ... without a gap)", m->name, sub, num);
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

int pkgcheck_package_open(const char *root, const char *dir,
                          package_manifest *m, char *so, size_t socap,
                          int *so_fd, char *err, size_t errlen) {
  char path[PATH_MAX + 16], merr[MANIFEST_ERR_MAX];
  snprintf(path, sizeof path, "%s/package.json", dir);
  memset(m, 0, sizeof *m);
  if (trust_path(root, dir, NULL, err, errlen)) return -1;
  int fd = open_trusted(root, path, err, errlen);
  if (fd < 0) return -1;
  int rc = package_manifest_read(fd, path, m, merr);
  close(fd);
  if (rc != 0) {
    snprintf(err, errlen, "%s", merr);
    return -1;
  }
  if (migrations_check(dir, m, err, errlen)) {
    package_manifest_free(m);
    return -1;
  }
  if (snprintf(so, socap, "%s/%s", dir, m->library) >= (int)socap) {
    snprintf(err, errlen, "plugin \"%s/%s\": path too long", dir, m->library);
    package_manifest_free(m);
    return -1;
  }
  if ((*so_fd = open_trusted(root, so, err, errlen)) < 0) {
    package_manifest_free(m);
    return -1;
  }
  return 0;
}

int pkgcheck_stack_open(const char *root, const char *dir,
                        const char *expect_id, const char *expect_version,
                        stack_manifest *sm, char *err, size_t errlen) {
  char path[PATH_MAX + 16], merr[MANIFEST_ERR_MAX];
  snprintf(path, sizeof path, "%s/stack.json", dir);
  memset(sm, 0, sizeof *sm);
  if (trust_path(root, dir, NULL, err, errlen)) return -1;
  int fd = open_trusted(root, path, err, errlen);
  if (fd < 0) return -1;
  int rc = stack_manifest_read(fd, path, sm, merr);
  close(fd);
  if (rc != 0) {
    snprintf(err, errlen, "%s", merr);
    return -1;
  }
  if ((expect_id && strcmp(sm->id, expect_id) != 0) ||
      (expect_version && strcmp(sm->version, expect_version) != 0)) {
    snprintf(err, errlen, "%s: id and version (%s %s) do not match its folder "
             "%s/%s", path, sm->id, sm->version,
             expect_id ? expect_id : sm->id,
             expect_version ? expect_version : sm->version);
    stack_manifest_free(sm);
    return -1;
  }
  return 0;
}

int pkgcheck_stack_wants(const stack_manifest *sm, size_t i,
                         const package_manifest *m, char *err, size_t errlen) {
  const stack_package *sp = &sm->packages[i];
  if (strcmp(m->name, sp->name) == 0 &&
      semver_satisfies(&m->ver, sp->range) == 1)
    return 0;
  snprintf(err, errlen, "stack %s@%s wants package \"%s\" %s, found \"%s\" %s",
           sm->id, sm->version, sp->name, sp->range, m->name, m->version);
  return -1;
}

int pkgcheck_manifest_fits(const nno_config *cfg, const package_manifest *m,
                           const char *so, int want_kind, char *err,
                           size_t errlen) {
  if (m->kind != want_kind) {
    snprintf(err, errlen, "package \"%s\": kind \"%s\" cannot be loaded as %s",
             m->name, kind_name(m->kind), kind_name(want_kind));
    return -1;
  }
  /* A core plugin's name is its namespace for limits and its identity in
   * the logs: a feature package may not borrow it. */
  if (want_kind == NNO_KIND_FEATURE && cfg)
    for (size_t i = 0; i < cfg->ncore_plugins; i++)
      if (strcmp(m->name, cfg->core_plugins[i]) == 0) {
        snprintf(err, errlen, "package name \"%s\" is a core plugin's",
                 m->name);
        return -1;
      }
  /* The manifest is read before the object is opened, so an object built
   * for another ABI is refused before its constructors run. */
  if (m->abi_major != NNO_ABI_MAJOR || m->abi_minor > NNO_ABI_MINOR) {
    /* The object is "DIR/library": the manifest is DIR/package.json. */
    size_t sl = strlen(so), ll = strlen(m->library);
    int dl = sl > ll ? (int)(sl - ll - 1) : 0;
    snprintf(err, errlen,
             "%.*s/package.json: field \"abi\": built for ABI %u.%u, host "
             "provides %u.%u (rebuild the package against this host's "
             "plugin-api and set \"abi\" to \"%u.%u\")", dl, so,
             m->abi_major, m->abi_minor, NNO_ABI_MAJOR, NNO_ABI_MINOR,
             NNO_ABI_MAJOR, NNO_ABI_MINOR);
    return -1;
  }
  return 0;
}

int pkgcheck_routes(const plugin *p, char *err, size_t errlen) {
  if (p->undeclared[0]) {
    snprintf(err, errlen, "package \"%s\": init binds route %s, which "
             "package.json does not declare (routes)", p->man.name,
             p->undeclared);
    return -1;
  }
  for (size_t i = 0; i < p->man.nroutes; i++) {
    const manifest_route *d = &p->man.routes[i];
    size_t j = 0;
    while (j < p->nroutes && (strcmp(p->routes[j].method, d->method) != 0 ||
                              strcmp(p->routes[j].pattern, d->path) != 0))
      j++;
    if (j == p->nroutes) {
      snprintf(err, errlen, "package \"%s\": route %s %s is declared in "
               "package.json (routes[%zu]) but init does not bind it",
               p->man.name, d->method, d->path, i);
      return -1;
    }
  }
  return 0;
}

/* ---- the child --------------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line "TAG\tA\tB\n" to the parent; tabs and newlines inside A and B
 * become spaces, so a line is always three fields. */
static void put_line(int fd, char tag, const char *a, const char *b) {
  char line[PATH_MAX + LOADER_ERR_MAX + 8];
  int n = snprintf(line, sizeof line, "%c\t%s\t%s", tag, a, b);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
  size_t sep = 2 + strlen(a); /* the tab between A and B */
  for (size_t i = 2; i < len; i++)
    if ((line[i] == '\t' && i != sep) || line[i] == '\n') line[i] = ' ';
  line[len++] = '\n';
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, line + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (size_t)w;
  }
}

void pkgcheck_child_progress(int fd, const char *file, const char *name) {
  put_line(fd, 'R', file, name);
}

void pkgcheck_child_problem(int fd, const char *file, const char *err) {
  put_line(fd, 'P', file, err);
}

void pkgcheck_child_host_ready(int fd, const char *file, const char *name) {
  put_line(fd, 'H', file, name);
}

int pkgcheck_child_left(void) {
  for (;;) {
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    if (r > 0) continue; /* one that ended: gone */
    if (r < 0 && errno == EINTR) continue;
    return r == 0; /* 0: some still run; -1 (ECHILD): none */
  }
}

/* The child's last line: fn returned. A child that ends without it ended
 * inside a package (exit() in an init). */
#define DONE_LINE "D\t-\t-\n"

const char *pkgcheck_signal_name(int sig, char *buf, size_t cap) {
  static const struct {
    int sig;
    const char *name;
  } names[] = {{SIGSEGV, "SIGSEGV"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},
               {SIGFPE, "SIGFPE"},   {SIGILL, "SIGILL"},   {SIGKILL, "SIGKILL"},
               {SIGTRAP, "SIGTRAP"}, {SIGTERM, "SIGTERM"}, {SIGSYS, "SIGSYS"},
               {SIGPIPE, "SIGPIPE"}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].sig == sig) return names[i].name;
  snprintf(buf, cap, "signal %d", sig);
  return buf;
}

int pkgcheck_fork(const nno_config *cfg, void (*fn)(void *arg, int fd),
                  void *arg, pkgcheck_report *rep) {
  int pfd[2];
  char *buf = malloc(CHILD_OUT_MAX + 1);
  if (!buf) return -1;
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    free(buf);
    return -1;
  }
  /* Nothing buffered may be written twice. */
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    free(buf);
    return -1;
  }
  if (pid == 0) {
    /* Its own process group: whatever an init starts is killed with it. */
    setpgid(0, 0);
    /* And orphans it leaves are its own: pkgcheck_child_left sees them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    close(pfd[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    /* A crash ends the child by its signal, which the parent names, even
     * in a build whose sanitizers would catch it. */
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGFPE, SIG_DFL);
    signal(SIGILL, SIG_DFL);
    /* What it would log or print, the parent reports (or had said). */
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      close(null);
    }
    fn(arg, pfd[1]);
    put_line(pfd[1], 'D', "-", "-");
    _exit(0);
  }
  setpgid(pid, pid); /* either side may run first */
  close(pfd[1]);
  long long deadline = now_ms() + cfg->stack_check_timeout_ms;
  size_t len = 0;
  int timed_out = 0, status = 0, reaped = 0;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {pfd[0], POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      timed_out = r == 0;
      break;
    }
    char scratch[4096];
    char *dst = len < CHILD_OUT_MAX ? buf + len : scratch;
    size_t room = len < CHILD_OUT_MAX ? CHILD_OUT_MAX - len : sizeof scratch;
    ssize_t n = read(pfd[0], dst, room);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (dst != scratch) len += (size_t)n;
    /* The child is done; a process it started may still hold the pipe. */
    if (len >= sizeof DONE_LINE - 1 &&
        memcmp(buf + len - (sizeof DONE_LINE - 1), DONE_LINE,
               sizeof DONE_LINE - 1) == 0)
      break;
  }
  close(pfd[0]);
  /* The output is over; the child is exiting (or hangs after closing its
   * end: the same deadline holds). */
  while (!timed_out) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      reaped = 1;
      break;
    }
    if (r < 0 && errno != EINTR) break;
    if (now_ms() >= deadline) {
      timed_out = 1;
      break;
    }
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  /* Anything left in the child's group was started by a package. */
  int left = reaped && kill(-pid, 0) == 0;
  kill(-pid, SIGKILL);
  if (!reaped) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  buf[len] = '\0';
  char file[PATH_MAX] = "", name[128] = "";
  const char *phase = "init";
  int added = 0, done = 0;
  for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
    *nl = '\0';
    char *a = line + 2, *b = strchr(a, '\t');
    if (line[1] != '\t' || !b) continue;
    *b++ = '\0';
    if (line[0] == 'R' || line[0] == 'H') {
      snprintf(file, sizeof file, "%s", a);
      snprintf(name, sizeof name, "%s", b);
      phase = line[0] == 'R' ? "init" : "on_host_ready";
    } else if (line[0] == 'D') {
      done = 1;
    } else if (line[0] == 'P') {
      if (pkgcheck_add(rep, a, b)) goto oom;
      added++;
    }
  }
  char msg[512], sb[32];
  const char *who = name[0] ? name : NULL;
  if (timed_out && done) {
    snprintf(msg, sizeof msg, "%s of package \"%s\" left a process running "
             "(still there after %lld ms, stacks.check_timeout_ms; killed)",
             phase, who ? who : "?", (long long)cfg->stack_check_timeout_ms);
  } else if (timed_out) {
    if (who)
      snprintf(msg, sizeof msg, "%s of package \"%s\" did not finish within "
               "%lld ms (stacks.check_timeout_ms)", phase, who,
               (long long)cfg->stack_check_timeout_ms);
    else
      snprintf(msg, sizeof msg, "the core plugins did not load within %lld "
               "ms (stacks.check_timeout_ms)",
               (long long)cfg->stack_check_timeout_ms);
  } else if (WIFSIGNALED(status)) {
    const char *sig = pkgcheck_signal_name(WTERMSIG(status), sb, sizeof sb);
    if (who)
      snprintf(msg, sizeof msg, "%s of package \"%s\" crashed (%s)", phase,
               who, sig);
    else
      snprintf(msg, sizeof msg, "loading the core plugins crashed (%s)", sig);
  } else if (!done) {
    /* exit(0) in an init would pass for success, then end every worker
     * that runs it. */
    if (who)
      snprintf(msg, sizeof msg, "%s of package \"%s\" exited (status %d) "
               "before it returned", phase, who,
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else
      snprintf(msg, sizeof msg, "loading the core plugins exited (status %d) "
               "before it finished",
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  } else if (left && added == 0) {
    snprintf(msg, sizeof msg, "%s of package \"%s\" left a process running",
             phase, who ? who : "?");
  } else {
    free(buf);
    return added;
  }
  if (add_raw(rep, file[0] ? file : cfg->plugin_dir, "", msg, 0)) goto oom;
  free(buf);
  return added + 1;
oom:
  free(buf);
  return -1;
}

/* ---- the dynamic check ------------------------------------------------- */

typedef struct child_ctx {
  const nno_config *cfg; /* with the temporary data folder */
  const char *root, *dir;
  const char *id, *version; /* a stack's; NULL for a package */
  int kind;                 /* a package's */
  const char *skip_core;    /* a core package checked: not loaded twice */
  int isolation;            /* a stack's, as the loader would decide it */
} child_ctx;

/* The child: a worker without a listener, the core plugins loaded, then
 * the folder under check through the loader's own code. */
static void check_child(void *arg, int fd) {
  child_ctx *c = arg;
  static worker w;
  char err[LOADER_ERR_MAX];
  loader_set_reporter(fd);
  w.cfg = c->cfg;
  g_worker = &w;
  if (uv_loop_init(&w.loop) != 0 || metrics_init() != 0 ||
      !(w.router = router_new()) || !(w.services = services_new()) ||
      !(w.plugins = calloc(1, sizeof *w.plugins)) ||
      !(w.fetcher = fetch_new(&w.loop, c->cfg))) {
    pkgcheck_child_problem(fd, c->dir, "cannot set up the check: out of "
                           "memory");
    return;
  }
  metrics_bind(0);
  if (loader_load_core(&w, c->skip_core, err, sizeof err) != 0) {
    pkgcheck_child_problem(fd, loader_last_file(), err);
    return;
  }
  /* A sandboxed stack's trial is a sandbox's start, as in a worker. */
  if (c->isolation == NNO_ISOLATION_SANDBOX && sandbox_init(&w) != 0) {
    pkgcheck_child_problem(fd, c->dir, "cannot start a sandbox: "
                           "/proc/self/exe cannot be resolved");
    return;
  }
  int rc = c->id ? loader_load_stack_as(&w, c->root, c->dir, c->id,
                                        c->version, c->isolation, err,
                                        sizeof err)
                 : loader_load_package_dir(&w, c->root, c->dir, c->kind, err,
                                           sizeof err);
  if (rc != 0) {
    pkgcheck_child_problem(fd, loader_last_file(), err);
    return;
  }
  /* Then on_host_ready, in load order, as a worker runs it (a feature
   * package checked alone had it run by the loader). */
  if (c->id || c->kind == NNO_KIND_CORE) loader_host_ready(&w, NULL, NULL);
  /* The trial's sandbox was told to stop: it is gone before the check
   * ends, or it would count as a process an init left running. */
  while (c->isolation == NNO_ISOLATION_SANDBOX && sandbox_count() > 0 &&
         uv_run(&w.loop, UV_RUN_ONCE)) {
  }
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Run check_child with a copy of cfg whose data folder is a new temporary
 * one (removed after) and that loads no other stack. */
static void dynamic(const nno_config *cfg, child_ctx *c, pkgcheck_report *rep) {
  nno_config *c2 = malloc(sizeof *c2);
  char tmp[PATH_MAX], msg[PATH_MAX + 64];
  const char *t = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/nno-check-XXXXXX", t && *t ? t : "/tmp");
  if (!c2 || !mkdtemp(tmp)) {
    snprintf(msg, sizeof msg, "cannot run the check: %s: %s",
             c2 ? tmp : "memory", strerror(errno));
    add_raw(rep, c->dir, "", msg, 0);
    free(c2);
    return;
  }
  *c2 = *cfg;
  snprintf(c2->data_dir, sizeof c2->data_dir, "%s", tmp);
  c2->builtin_stacks = 0;
  c2->nstacks_dirs = 0;
  c->cfg = c2;
  /* A sandbox's trial has its own deadline (sandbox.spawn_timeout_ms), as
   * in a worker: it speaks first, naming the package. */
  nno_config outer = *c2;
  if (c->isolation == NNO_ISOLATION_SANDBOX)
    outer.stack_check_timeout_ms += c2->sandbox_spawn_timeout_ms;
  if (pkgcheck_fork(&outer, check_child, c, rep) < 0) {
    snprintf(msg, sizeof msg, "cannot run the check: %s", strerror(errno));
    add_raw(rep, c->dir, "", msg, 0);
  }
  nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(c2);
}

/* ---- the checks -------------------------------------------------------- */

int pkgcheck_stack_in(const nno_config *cfg, const char *root,
                      const char *dir, const char *expect_id,
                      const char *expect_version, int run_init,
                      pkgcheck_report *rep) {
  char err[LOADER_ERR_MAX], sjson[PATH_MAX + 16];
  size_t before = rep->n;
  stack_manifest sm;
  snprintf(sjson, sizeof sjson, "%s/stack.json", dir);
  if (pkgcheck_stack_open(root, dir, expect_id, expect_version, &sm, err,
                          sizeof err) != 0)
    return pkgcheck_add(rep, sjson, err) ? -1 : (int)(rep->n - before);
  snprintf(rep->id, sizeof rep->id, "%s", sm.id);
  snprintf(rep->version, sizeof rep->version, "%s", sm.version);
  for (size_t i = 0; i < sm.npackages; i++) {
    char pdir[PATH_MAX + 64], pjson[PATH_MAX + 80], so[PATH_MAX];
    package_manifest m;
    int fd, rc = 0;
    snprintf(pdir, sizeof pdir, "%s/packages/%s", dir, sm.packages[i].name);
    snprintf(pjson, sizeof pjson, "%s/package.json", pdir);
    if (pkgcheck_package_open(root, pdir, &m, so, sizeof so, &fd, err,
                              sizeof err) != 0) {
      rc = pkgcheck_add(rep, pjson, err);
    } else {
      if (pkgcheck_manifest_fits(cfg, &m, so, NNO_KIND_FEATURE, err,
                                 sizeof err))
        rc = pkgcheck_add(rep, pjson, err);
      else if (pkgcheck_stack_wants(&sm, i, &m, err, sizeof err))
        rc = pkgcheck_add(rep, sjson, err);
      else if (!run_init &&
               loader_check_object(so, fd, &m, NULL, NULL, err, sizeof err))
        rc = pkgcheck_add(rep, pjson, err);
      close(fd);
      package_manifest_free(&m);
    }
    if (rc) {
      stack_manifest_free(&sm);
      return -1;
    }
  }
  stack_manifest_free(&sm);
  if (rep->n == before && run_init) {
    child_ctx c = {cfg,  root, dir,
                   rep->id, rep->version, 0, NULL,
                   pkgcheck_isolation(cfg, root, dir, rep->id)};
    dynamic(cfg, &c, rep);
  }
  return (int)(rep->n - before);
}

int pkgcheck_isolation(const nno_config *cfg, const char *root,
                       const char *dir, const char *id) {
  char a[PATH_MAX], b[PATH_MAX], up[PATH_MAX + 8];
  int builtin = 0;
  if (cfg->builtin_stacks && realpath(cfg->builtin_stack_dir, a)) {
    if (strcmp(root, dir) != 0) {
      builtin = realpath(root, b) && strcmp(a, b) == 0;
    } else {
      /* A folder checked alone: builtin when it is {builtin}/{id}/{ver}. */
      snprintf(up, sizeof up, "%s/../..", dir);
      builtin = realpath(up, b) && strcmp(a, b) == 0;
    }
  }
  return config_isolation(cfg, id, builtin);
}

int pkgcheck_stack(const nno_config *cfg, const char *dir,
                   const char *expect_id, const char *expect_version,
                   int run_init, pkgcheck_report *rep) {
  return pkgcheck_stack_in(cfg, dir, dir, expect_id, expect_version, run_init,
                           rep);
}

/* The isolation of the stack the package folder `dir` belongs to
 * ({stacks}/{id}/{version}/packages/{name}, with its stack.json), or, for
 * a folder in no stack, of a stack named nowhere (sandbox.mode). */
static int package_isolation(const nno_config *cfg, const char *dir,
                             char *id_out, size_t idcap) {
  char up[PATH_MAX + 16], sdir[PATH_MAX], sjson[PATH_MAX + 16];
  snprintf(up, sizeof up, "%s/../..", dir);
  struct stat st;
  if (realpath(up, sdir)) {
    snprintf(sjson, sizeof sjson, "%s/stack.json", sdir);
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", sdir);
    char *cut = strrchr(parent, '/');
    if (cut && stat(sjson, &st) == 0 && S_ISREG(st.st_mode)) {
      *cut = '\0';
      const char *id = strrchr(parent, '/');
      if (id && id[1] && strlen(id + 1) < idcap) {
        snprintf(id_out, idcap, "%s", id + 1);
        return pkgcheck_isolation(cfg, sdir, sdir, id + 1);
      }
    }
  }
  return pkgcheck_isolation(cfg, dir, dir, "");
}

/* Where copy_entry copies to, and from (nftw passes no argument). */
static char g_copy_from[PATH_MAX], g_copy_to[PATH_MAX + 64];

static int copy_entry(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)ftw;
  char to[PATH_MAX * 2];
  snprintf(to, sizeof to, "%s%s", g_copy_to, path + strlen(g_copy_from));
  if (flag == FTW_D) return mkdir(to, 0700) == 0 || errno == EEXIST ? 0 : -1;
  if (flag != FTW_F || !S_ISREG(st->st_mode)) return 0; /* as the loader */
  int in = open(path, O_RDONLY | O_CLOEXEC);
  int out = in < 0 ? -1
                   : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                          st->st_mode & 0700);
  char buf[65536];
  ssize_t n = 0;
  while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) n = -1;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return in < 0 || out < 0 || n < 0 ? -1 : 0;
}

/* Replace each `from` in `s` (cap bytes) by `to`. */
static void swap_path(char *s, size_t cap, const char *from, const char *to) {
  char out[PATH_MAX + LOADER_ERR_MAX];
  size_t fl = strlen(from), o = 0;
  for (const char *p = s; *p && o + 1 < sizeof out;) {
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

/* A feature package a worker would run sandboxed, checked as the one
 * package of a temporary stack `id` 0.0.0 (a copy of its folder): the
 * sandbox trial a stack's check runs; its paths said as the folder's. */
static int sandboxed_package(const nno_config *cfg, const char *dir,
                             const char *name, const char *id,
                             pkgcheck_report *rep) {
  char tmp[PATH_MAX], sdir[PATH_MAX + 32], msg[PATH_MAX + 64];
  const char *t = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/nno-package-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmp)) {
    snprintf(msg, sizeof msg, "cannot run the check: %s: %s", tmp,
             strerror(errno));
    return add_raw(rep, dir, "", msg, 0);
  }
  snprintf(sdir, sizeof sdir, "%s/%s/0.0.0", tmp, id);
  snprintf(g_copy_to, sizeof g_copy_to, "%s/%s", tmp, id);
  int rc = mkdir(g_copy_to, 0700) || mkdir(sdir, 0700) ? -1 : 0;
  snprintf(g_copy_to, sizeof g_copy_to, "%s/packages", sdir);
  if (rc == 0) rc = mkdir(g_copy_to, 0700);
  snprintf(g_copy_to, sizeof g_copy_to, "%s/packages/%s", sdir, name);
  snprintf(g_copy_from, sizeof g_copy_from, "%s", dir);
  if (rc == 0) rc = nftw(dir, copy_entry, 16, FTW_PHYS);
  package_manifest m;
  char so[PATH_MAX], err[LOADER_ERR_MAX];
  int fd = -1;
  if (rc == 0 && pkgcheck_package_open(g_copy_to, g_copy_to, &m, so,
                                       sizeof so, &fd, err, sizeof err) == 0) {
    json_t *j = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "id", id,
                          "version", "0.0.0", "packages", "name", m.name,
                          "version", m.version);
    char sj[PATH_MAX + 48];
    snprintf(sj, sizeof sj, "%s/stack.json", sdir);
    rc = j && json_dump_file(j, sj, 0) == 0 ? 0 : -1;
    json_decref(j);
    close(fd);
    package_manifest_free(&m);
  } else {
    rc = -1;
  }
  char copy[PATH_MAX + 64];
  snprintf(copy, sizeof copy, "%s", g_copy_to);
  if (rc != 0) {
    snprintf(msg, sizeof msg, "cannot run the check: cannot copy %s", dir);
    rc = add_raw(rep, dir, "", msg, 0);
  } else {
    size_t before = rep->n;
    child_ctx c = {cfg, sdir, sdir, id, "0.0.0", NNO_KIND_FEATURE, NULL,
                   NNO_ISOLATION_SANDBOX};
    dynamic(cfg, &c, rep);
    for (size_t i = before; i < rep->n; i++) {
      swap_path(rep->v[i].file, sizeof rep->v[i].file, copy, dir);
      swap_path(rep->v[i].message, sizeof rep->v[i].message, copy, dir);
    }
    rc = 0;
  }
  nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}

int pkgcheck_package(const nno_config *cfg, const char *dir, int run_init,
                     pkgcheck_report *rep) {
  char err[LOADER_ERR_MAX], pjson[PATH_MAX + 16], so[PATH_MAX];
  char name[CONFIG_NAME_MAX + 1];
  size_t before = rep->n;
  package_manifest m;
  int fd, kind, rc = 0;
  snprintf(pjson, sizeof pjson, "%s/package.json", dir);
  if (pkgcheck_package_open(dir, dir, &m, so, sizeof so, &fd, err,
                            sizeof err) != 0)
    return pkgcheck_add(rep, pjson, err) ? -1 : (int)(rep->n - before);
  kind = m.kind;
  snprintf(name, sizeof name, "%s", m.name);
  if (pkgcheck_manifest_fits(cfg, &m, so, m.kind, err, sizeof err) ||
      (!run_init &&
       loader_check_object(so, fd, &m, NULL, NULL, err, sizeof err)))
    rc = pkgcheck_add(rep, pjson, err);
  close(fd);
  package_manifest_free(&m);
  if (rc) return -1;
  if (rep->n == before && run_init) {
    char id[CONFIG_NAME_MAX + 1] = "check";
    if (kind == NNO_KIND_FEATURE &&
        package_isolation(cfg, dir, id, sizeof id) == NNO_ISOLATION_SANDBOX)
      return sandboxed_package(cfg, dir, name, id, rep) < 0
                 ? -1
                 : (int)(rep->n - before);
    child_ctx c = {cfg, dir, dir, NULL, NULL, kind,
                   kind == NNO_KIND_CORE ? name : NULL,
                   NNO_ISOLATION_INPROCESS};
    dynamic(cfg, &c, rep);
  }
  return (int)(rep->n - before);
}
