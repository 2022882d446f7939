/* nno project dev and nno project test: a local host for the project.
 *
 * Both start a child `nno serve --listen 127.0.0.1:0` in its own process
 * group, read the port from its "listening" line, create the project's
 * platform (class user_project) and a key with features:*, and install the
 * project's build as a stack version through the API, as `nno stack
 * install` does. The project's stack is named in `sandbox.inprocess`: a
 * new version loads with one dlopen per worker instead of a sandbox start,
 * which keeps a reload well under a second, and the templates' packages
 * may use core services (sql), which a sandboxed package may not.
 *
 * dev then watches the sources (libuv fs events on every folder of the
 * project but build/, dist/, .nno/ and hidden ones, at most DEV_WATCH_MAX,
 * folders made meanwhile included; fs events, so editors that save by
 * rename are seen) and on each save, after 50 ms of quiet,
 * builds `{version}-dev.{n}`, installs it, activates it on the platform
 * (the registry's switch: no request is dropped) and removes the previous
 * one. A failed build leaves the serving version alone. The child's JSON
 * log lines about the project are printed as readable lines.
 *
 * test runs every executable of tests/ against such a host with a
 * temporary data folder, and removes the folder afterwards. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "cli.h"
#include "project.h"

#define DEV_START_MS 20000     /* the child's "listening" line and /readyz */
#define DEV_STOP_MS 10000      /* SIGTERM to SIGKILL */
#define DEV_DEBOUNCE_MS 50     /* quiet after the last file event */
#define DEV_WATCH_MAX 256      /* folders dev watches; past it, one warning */
#define DEV_WATCH_DEPTH 32     /* how deep under the project it looks */
#define DEV_LINE_MAX 16384     /* a log line kept for parsing; longer: cut */
#define TEST_TIMEOUT_MS 120000 /* one test script */
#define TEST_OUTPUT_MAX (256u << 10) /* a test's output kept for a failure */
#define TEST_MAX 256                 /* test files run */

/* The local host: the child and the API client talking to it. */
typedef struct devhost {
  pid_t pid; /* the child, leader of its own process group; 0: none */
  int errfd; /* read end of the child's stderr */
  int port;
  char data[PATH_MAX];
  char url[64];           /* http://127.0.0.1:PORT */
  cli api;                /* operator key from DATA/operator.key */
  char key[CLI_KEY_MAX];  /* the platform key (features:*) */
  char serving[96];       /* the version active on the platform, "" none */
  char archive[PATH_MAX]; /* its archive, under DIR/build/ */
  /* The child's stderr is drained by a thread from the start of serving:
   * a full pipe would block the workers' log writes and so the very API
   * calls a reload waits for. Lines of the project are printed when
   * `print` is set; the thread wakes `gone` (may be NULL) at EOF. */
  pthread_t pump;
  int pumping;
  int print;
  const char *name;
  uv_async_t *gone;
} devhost;

static int fail(const char *msg, const char *hint) {
  fprintf(stderr, "nno: %s\n", msg);
  if (hint) fprintf(stderr, "hint: %s\n", hint);
  return CLI_EUSAGE;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void clock_now(char out[9]) {
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(out, 9, "%H:%M:%S", &tm);
}

/* -- the child host ------------------------------------------------------ */

/* Whether 127.0.0.1:`port` can be listened on now: 0, or the errno of a
 * trial bind (EADDRINUSE: another process has it). Asked before the host
 * starts so that a taken --port is said in dev's own words. */
static int port_check(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1, rc = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) rc = errno;
  close(fd);
  return rc;
}

/* Starts `nno serve` on a free loopback port with `data`; waits for its
 * "listening" line (the port) and for /readyz. 0, or -1 (printed; the
 * child, if any, stopped). Lines before "listening" are echoed. */
static int host_start(devhost *h, const char *exe_dir, const project *pj,
                      int port) {
  int fds[2];
  char nno[PATH_MAX], inproc[128], listen[32];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  if (snprintf(nno, sizeof nno, "%s/nno", exe_dir) >= (int)sizeof nno)
    return fail("the nno executable's path is too long", NULL), -1;
  snprintf(inproc, sizeof inproc, "sandbox.inprocess=%s", pj->name);
  if (mkdir(h->data, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "nno: cannot create %s: %s\n", h->data, strerror(errno));
    return -1;
  }
  if (pipe2(fds, O_CLOEXEC) != 0) return fail("pipe failed", NULL), -1;
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid(), pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return fail("fork failed", NULL), -1;
  }
  if (pid == 0) {
    setpgid(0, 0);
    /* Stopped with us even if we are killed outright. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execl(nno, nno, "serve", "--listen", listen, "--data", h->data, "--set",
          inproc, "--set", "log.access=true", (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid); /* both sides: no race with the exec */
  close(fds[1]);
  h->pid = pid;
  h->errfd = fds[0];
  /* The "listening" line. The child's own refusals are echoed, not its
   * "hint:" lines: they name serve's options (--listen), not dev's. */
  char buf[DEV_LINE_MAX];
  size_t len = 0;
  int said = 0;
  uint64_t deadline = now_ms() + DEV_START_MS;
  while (!h->port) {
    uint64_t t = now_ms();
    struct pollfd p = {h->errfd, POLLIN, 0};
    if (t >= deadline || poll(&p, 1, (int)(deadline - t)) <= 0) break;
    ssize_t n = read(h->errfd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) break;
    len += (size_t)n;
    buf[len] = '\0';
    char *nl;
    while ((nl = memchr(buf, '\n', len)) != NULL) {
      *nl = '\0';
      json_t *j = json_loads(buf, 0, NULL);
      const char *msg = json_string_value(json_object_get(j, "msg"));
      if (msg && !strcmp(msg, "listening"))
        h->port = (int)json_integer_value(json_object_get(j, "port"));
      else {
        const char *lv = json_string_value(json_object_get(j, "level"));
        if (!j && !strncmp(buf, "hint: ", 6))
          ; /* serve's hint */
        else if (!j || !lv || strcmp(lv, "info")) { /* refusals, warnings */
          fprintf(stderr, "%s\n", buf);
          said += !j && !strncmp(buf, "nno: ", 5);
        }
      }
      json_decref(j);
      size_t used = (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len - used);
      len -= used;
    }
    if (len == sizeof buf - 1) len = 0; /* a line too long: dropped */
  }
  if (h->port <= 0 || h->port > 65535) {
    /* One "nno:" line: the host's own refusal when it gave one. */
    if (!said) fprintf(stderr, "nno: the local host did not start\n");
    fprintf(stderr,
            "hint: the local host's messages are above; its data folder is "
            "%s%s\n",
            h->data, port ? "; leave --port out for a free port" : "");
    return -1;
  }
  snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d", h->port);
  /* Ready once every worker answers /readyz. */
  char ready[96];
  snprintf(ready, sizeof ready, "%s/readyz", h->url);
  CURL *c = curl_easy_init();
  int ok = 0;
  while (c && !ok && now_ms() < deadline) {
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, ready);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
    if (curl_easy_perform(c) == CURLE_OK &&
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200)
      ok = 1;
    else
      usleep(50 * 1000);
  }
  if (c) curl_easy_cleanup(c);
  if (!ok) return fail("the local host did not become ready", NULL), -1;
  snprintf(h->api.url, sizeof h->api.url, "%s", h->url);
  snprintf(h->api.key_path, sizeof h->api.key_path, "%s/operator.key", h->data);
  return 0;
}

/* Stops the child's process group (and only it): SIGTERM, then SIGKILL
 * after DEV_STOP_MS. */
static void host_stop(devhost *h) {
  if (h->api.curl) curl_easy_cleanup(h->api.curl);
  h->api.curl = NULL;
  if (h->pid <= 0) return;
  kill(-h->pid, SIGTERM);
  uint64_t deadline = now_ms() + DEV_STOP_MS;
  int st;
  while (waitpid(h->pid, &st, WNOHANG) == 0) {
    if (now_ms() >= deadline) {
      kill(-h->pid, SIGKILL);
      waitpid(h->pid, &st, 0);
      break;
    }
    usleep(20 * 1000);
  }
  /* Workers leave with their master; the pump's EOF comes once the last
   * of them closed its end of the pipe. */
  h->pid = 0;
  if (h->pumping) pthread_join(h->pump, NULL); /* EOF: every writer gone */
  h->pumping = 0;
  if (h->errfd >= 0) close(h->errfd);
  h->errfd = -1;
}

/* One of the child's lines, printed when it concerns the project:
 * `HH:MM:SS LEVEL [request_id] message`, access lines of its platform as
 * `HH:MM:SS GET /path 200 1.2ms [rid]`. */
static void log_line(const char *name, const char *s) {
  json_t *j = json_loads(s, 0, NULL);
  if (!j) return;
  const char *msg = json_string_value(json_object_get(j, "msg"));
  const char *level = json_string_value(json_object_get(j, "level"));
  const char *rid = json_string_value(json_object_get(j, "rid"));
  if (!rid) rid = json_string_value(json_object_get(j, "request_id"));
  const char *ts = json_string_value(json_object_get(j, "ts"));
  char hms[9] = "";
  if (ts && strlen(ts) >= 19) {
    memcpy(hms, ts + 11, 8);
    hms[8] = '\0';
  } else {
    clock_now(hms);
  }
  if (!msg || !level) goto done;
  char base[96];
  snprintf(base, sizeof base, "/p/%s/", name);
  if (!strcmp(msg, "access")) {
    const char *path = json_string_value(json_object_get(j, "path"));
    const char *method = json_string_value(json_object_get(j, "method"));
    if (!path || !method || strncmp(path, base, strlen(base))) goto done;
    double ms =
        (double)json_integer_value(json_object_get(j, "dur_us")) / 1000.0;
    printf("%s %s %s %d %.1fms [%s]\n", hms, method, path,
           (int)json_integer_value(json_object_get(j, "status")), ms,
           rid ? rid : "-");
  } else {
    static const char *const fields[] = {"plugin", "package", "stack",
                                         "platform"};
    int ours = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
      const char *v = json_string_value(json_object_get(j, fields[i]));
      if (v && !strcmp(v, name)) ours = 1;
    }
    if (!ours) goto done;
    char up[8];
    size_t i;
    for (i = 0; level[i] && i < sizeof up - 1; i++)
      up[i] =
          (char)(level[i] >= 'a' && level[i] <= 'z' ? level[i] - 32 : level[i]);
    up[i] = '\0';
    printf("%s %s [%s] %s\n", hms, up, rid ? rid : "-", msg);
    const char *err = json_string_value(json_object_get(j, "error"));
    if (err) printf("         %s\n", err);
  }
  fflush(stdout);
done:
  json_decref(j);
}

/* The thread draining the child's stderr (devhost.pump). */
static void *pump_main(void *arg) {
  devhost *h = arg;
  static char line[DEV_LINE_MAX];
  size_t len = 0;
  int dropping = 0; /* the rest of a line too long is skipped */
  for (;;) {
    ssize_t n = read(h->errfd, line + len, sizeof line - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    char *start = line, *nl;
    while ((nl = memchr(start, '\n', len - (size_t)(start - line)))) {
      *nl = '\0';
      if (!dropping && h->print) log_line(h->name, start);
      dropping = 0;
      start = nl + 1;
    }
    size_t rest = len - (size_t)(start - line);
    memmove(line, start, rest);
    len = rest;
    if (len == sizeof line - 1) {
      len = 0;
      dropping = 1;
    }
  }
  if (h->gone) uv_async_send(h->gone);
  return NULL;
}

static int pump_start(devhost *h) {
  if (pthread_create(&h->pump, NULL, pump_main, h) != 0)
    return fail("cannot start a thread", NULL), -1;
  h->pumping = 1;
  return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st, (void)flag, (void)f;
  if (remove(p) != 0 && errno == EACCES) { /* installed files are 0444 */
    chmod(p, 0700);
    remove(p);
  }
  return 0;
}

/* Makes installed (read-only) folders writable, then removes the tree. */
static int chmod_entry(const char *p, const struct stat *st, int flag,
                       struct FTW *f) {
  (void)f;
  if (flag == FTW_D || flag == FTW_DP || S_ISDIR(st->st_mode)) chmod(p, 0700);
  return 0;
}

static void rm_tree(const char *dir) {
  nftw(dir, chmod_entry, 16, FTW_PHYS);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* -- the platform, its key and the stack versions ------------------------ */

/* Reads a key saved by an earlier dev; "" when none or unusable. */
static void key_load(const char *path, char *key, size_t cap) {
  key[0] = '\0';
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  ssize_t n = -1;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid() &&
      !(st.st_mode & 077))
    n = read(fd, key, cap - 1);
  close(fd);
  if (n <= 0) {
    key[0] = '\0';
    return;
  }
  key[n] = '\0';
  key[strcspn(key, "\r\n")] = '\0';
  if (!cli_key_ok(key)) key[0] = '\0';
}

static int key_save(const char *path, const char *key) {
  char tmp[PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t n = strlen(key);
  int ok = write(fd, key, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
           fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* 1 when `key` still authenticates on the local host (an answer other than
 * 401 for a route its scope does not cover). */
static int key_valid(devhost *h, const project *pj, const char *key) {
  cli k = {0};
  snprintf(k.url, sizeof k.url, "%s", h->url);
  snprintf(k.key, sizeof k.key, "%s", key);
  char path[CLI_PATH_MAX];
  cli_resp r;
  int valid = 0;
  if (!cli_path(path, sizeof path, "/platforms/%s", pj->name) &&
      cli_request(&k, "GET", path, NULL, NULL, &r) == CLI_OK) {
    valid = r.status != 401;
    cli_resp_free(&r);
  }
  if (k.curl) curl_easy_cleanup(k.curl);
  return valid;
}

/* The platform {name} (created when missing) and a key with features:*
 * (read from `keyfile` and reused when it still works; written there when
 * created, if `keyfile` is set). */
static int platform_setup(devhost *h, const project *pj, const char *keyfile) {
  char path[CLI_PATH_MAX];
  cli_resp r;
  int rc;
  if (cli_path(path, sizeof path, "/platforms/%s", pj->name))
    return fail("the project name is too long", NULL);
  if ((rc = cli_request(&h->api, "GET", path, NULL, NULL, &r)) != CLI_OK)
    return rc;
  long st = r.status;
  cli_resp_free(&r);
  if (st == 404) {
    /* unmetered: a local host's own developer is not rate-limited. */
    json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "id", pj->name, "name", pj->name,
                          "class", "user_project", "plan", "unmetered");
    rc = cli_call(&h->api, "POST", "/platforms", b, NULL, NULL, NULL);
    json_decref(b);
    if (rc) return rc;
  } else if (st != 200) {
    return fail("the local host refused to show the project's platform", NULL);
  }
  if (keyfile) key_load(keyfile, h->key, sizeof h->key);
  if (h->key[0] && key_valid(h, pj, h->key)) return CLI_OK;
  h->key[0] = '\0';
  json_t *b = json_pack("{s:s,s:[s]}", "name", "nno project dev", "scopes",
                        "features:*"),
         *out = NULL;
  if (cli_path(path, sizeof path, "/platforms/%s/keys", pj->name))
    return fail("the project name is too long", NULL);
  rc = cli_call(&h->api, "POST", path, b, NULL, &out, NULL);
  json_decref(b);
  if (rc) return rc;
  const char *key = json_string_value(json_object_get(out, "key"));
  if (!key || !cli_key_ok(key)) {
    json_decref(out);
    return fail("the local host answered a key request without a key", NULL);
  }
  snprintf(h->key, sizeof h->key, "%s", key);
  json_decref(out);
  if (keyfile && key_save(keyfile, h->key) != 0)
    fprintf(stderr, "nno: could not save the key in %s: %s\n", keyfile,
            strerror(errno));
  return CLI_OK;
}

/* The highest n of the installed versions `{version}-dev.{n}`, 0 when
 * none; the versions of the stack other than `keep` are removed when
 * `prune` (what an earlier dev left). */
static long dev_versions(devhost *h, const project *pj, const char *keep,
                         int prune) {
  char path[CLI_PATH_MAX], prefix[96];
  json_t *out = NULL;
  long max = 0;
  snprintf(prefix, sizeof prefix, "%s-dev.", pj->version);
  if (cli_path(path, sizeof path, "/stacks/%s", pj->name)) return 0;
  cli_resp r;
  if (cli_request(&h->api, "GET", path, NULL, NULL, &r) != CLI_OK) return 0;
  if (r.status == 200) out = json_loads(r.body, 0, NULL);
  cli_resp_free(&r);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(out, "versions"), i, v) {
    const char *s = json_string_value(v);
    if (!s) continue;
    if (!strncmp(s, prefix, strlen(prefix))) {
      char *end;
      long n = strtol(s + strlen(prefix), &end, 10);
      if (!*end && n > max) max = n;
    }
    if (prune && strstr(s, "-dev.") && (!keep || strcmp(s, keep)) &&
        !cli_path(path, sizeof path, "/stacks/%s/%s", pj->name, s) &&
        cli_request(&h->api, "DELETE", path, NULL, NULL, &r) == CLI_OK)
      cli_resp_free(&r);
  }
  json_decref(out);
  return max;
}

/* Installs the archive and activates `version` on the platform. */
static int install_activate(devhost *h, const project *pj, const char *archive,
                            const char *version) {
  FILE *f = fopen(archive, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    if (f) fclose(f);
    fprintf(stderr, "nno: cannot read %s\n", archive);
    return CLI_EUSAGE;
  }
  h->api.upload = f;
  h->api.upload_size = (long long)st.st_size;
  int rc = cli_call(&h->api, "POST", "/stacks", NULL, NULL, NULL, NULL);
  h->api.upload = NULL;
  fclose(f);
  if (rc) return rc;
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/stacks", pj->name))
    return fail("the project name is too long", NULL);
  json_t *b = json_pack("{s:s,s:s}", "stack", pj->name, "version", version);
  rc = cli_call(&h->api, "POST", path, b, NULL, NULL, NULL);
  json_decref(b);
  return rc;
}

/* Builds `version` (NULL: the manifest's) and puts it live. */
static int build_and_swap(devhost *h, const project *pj, const char *exe_dir,
                          const char *version) {
  char archive[PATH_MAX], err[512];
  if (project_build(pj, 0, version, exe_dir, archive, sizeof archive, err,
                    sizeof err) != 0) {
    fprintf(stderr, "nno: build failed: %s\nhint: %s\n", err,
            project_build_hint(err));
    return CLI_EUSAGE;
  }
  const char *v = version ? version : pj->version;
  int rc = install_activate(h, pj, archive, v);
  if (rc) return rc;
  char prev[sizeof h->serving];
  snprintf(prev, sizeof prev, "%s", h->serving);
  snprintf(h->serving, sizeof h->serving, "%s", v);
  if (prev[0] && strcmp(prev, v)) {
    /* The previous version leaves the host, and its build the folder
     * (build/{name}-{version}.tar.gz and build/stack/{name}/{version}). */
    char path[CLI_PATH_MAX];
    cli_resp r;
    if (!cli_path(path, sizeof path, "/stacks/%s/%s", pj->name, prev) &&
        cli_request(&h->api, "DELETE", path, NULL, NULL, &r) == CLI_OK)
      cli_resp_free(&r);
    if (h->archive[0] && strcmp(h->archive, archive)) unlink(h->archive);
    char staged[PATH_MAX];
    if (snprintf(staged, sizeof staged, "%s/build/stack/%s/%s", pj->dir,
                 pj->name, prev) < (int)sizeof staged)
      rm_tree(staged);
  }
  snprintf(h->archive, sizeof h->archive, "%s", archive);
  return CLI_OK;
}

/* -- dev: watching, rebuilding, the log ---------------------------------- */

typedef struct dev {
  uv_loop_t *loop;
  devhost h;
  project pj;
  const char *exe_dir;
  /* The project folder (watch[0]) and every folder under it but build/,
   * dist/, .nno/ and hidden ones, up to DEV_WATCH_MAX: inotify is not
   * recursive, so each folder has its own watch. `ino`/`dev` tell a
   * folder removed and made again under the same path (its watch gone
   * with the old one) from the one watched. */
  uv_fs_event_t watch[DEV_WATCH_MAX];
  ino_t wino[DEV_WATCH_MAX];
  dev_t wdev[DEV_WATCH_MAX];
  int nwatch;     /* watching: watch[0..nwatch) */
  int ninit;      /* handles initialised (closed at the end): >= nwatch */
  int watch_full; /* the bound was met: warned once */
  uv_timer_t debounce;
  uv_signal_t sigint, sigterm;
  uv_async_t gone; /* the pump saw the child's stderr close */
  long n;          /* the last dev version's number */
  int rc;
} dev;

static void dev_stop(dev *d, int rc) {
  d->rc = rc;
  uv_stop(d->loop);
}

static void on_gone(uv_async_t *a) {
  dev *d = a->data;
  fprintf(stderr,
          "nno: the local host stopped\nhint: its last lines are "
          "above; data folder %s\n",
          d->h.data);
  dev_stop(d, CLI_EUSAGE);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  dev_stop(s->data, CLI_OK);
}

static void reload(dev *d) {
  char version[96], hms[9];
  snprintf(version, sizeof version, "%s-dev.%ld", d->pj.version, d->n + 1);
  uint64_t t0 = now_ms();
  /* package.json may have changed: its name and version are read again. */
  project pj;
  char err[256];
  if (project_open(d->pj.dir, &pj, err, sizeof err) == 0 &&
      !strcmp(pj.name, d->pj.name)) {
    if (strcmp(pj.version, d->pj.version)) {
      snprintf(d->pj.version, sizeof d->pj.version, "%s", pj.version);
      snprintf(version, sizeof version, "%s-dev.%ld", pj.version, d->n + 1);
    }
  } else if (err[0]) {
    clock_now(hms);
    fprintf(stderr, "%s nno: %s; still serving %s\n", hms, err, d->h.serving);
    return;
  }
  int rc = build_and_swap(&d->h, &d->pj, d->exe_dir, version);
  clock_now(hms);
  if (rc) {
    printf("%s reload failed; still serving %s %s\n", hms, d->pj.name,
           d->h.serving);
  } else {
    d->n++;
    printf("%s reloaded %s %s in %llu ms\n", hms, d->pj.name, version,
           (unsigned long long)(now_ms() - t0));
  }
  fflush(stdout);
}

static void on_quiet(uv_timer_t *t) {
  reload(t->data);
}

static void watch_tree(dev *d, const char *path, int depth);

/* 1 if the folder `name` (in the project folder when `top`) is not
 * watched: hidden ones, and the project's build/, dist/ and .nno/. */
static int watch_skip(const char *name, int top) {
  return name[0] == '.' ||
         (top && (!strcmp(name, "build") || !strcmp(name, "dist")));
}

static void on_fs(uv_fs_event_t *w, const char *name, int events, int st) {
  dev *d = w->data;
  (void)events;
  if (st < 0) return;
  int top = w == &d->watch[0];
  /* A folder made (or moved in) while dev runs: watched from now on, with
   * whatever it already holds, and its files counted as a change. */
  if (name && name[0] && !watch_skip(name, top)) {
    char dir[PATH_MAX], path[PATH_MAX];
    size_t len = sizeof dir;
    struct stat sb;
    if (uv_fs_event_getpath(w, dir, &len) == 0 &&
        snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
        lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      int before = d->nwatch;
      watch_tree(d, path, 1);
      if (d->nwatch != before) {
        uv_timer_start(&d->debounce, on_quiet, DEV_DEBOUNCE_MS, 0);
        return;
      }
    }
  }
  if (top) {
    /* The project folder: its manifests only (build/, .nno/ change). */
    if (!name || (strcmp(name, "package.json") && strcmp(name, "stack.json")))
      return;
  } else if (name &&
             (!name[0] || name[0] == '.' || name[strlen(name) - 1] == '~')) {
    return; /* editors' swap and backup files */
  }
  uv_timer_start(&d->debounce, on_quiet, DEV_DEBOUNCE_MS, 0);
}

/* Watch the folder `path` (already watched: nothing, unless it is a new
 * folder under a watched one's old path, whose watch then moves to it).
 * 0 when it is watched, -1 when not (the bound, or an error). */
static int watch_one(dev *d, const char *path, const struct stat *sb) {
  char have[PATH_MAX];
  for (int i = 0; i < d->nwatch; i++) {
    size_t len = sizeof have;
    if (uv_fs_event_getpath(&d->watch[i], have, &len) != 0 ||
        strcmp(have, path) != 0)
      continue;
    if (d->wino[i] == sb->st_ino && d->wdev[i] == sb->st_dev) return 0;
    uv_fs_event_stop(&d->watch[i]);
    if (uv_fs_event_start(&d->watch[i], on_fs, path, 0) != 0) return -1;
    d->wino[i] = sb->st_ino;
    d->wdev[i] = sb->st_dev;
    return 0;
  }
  if (d->nwatch == DEV_WATCH_MAX) {
    if (!d->watch_full)
      fprintf(stderr,
              "nno: watching the first %d folders of the project only: "
              "edits in the others are not seen\n",
              DEV_WATCH_MAX);
    d->watch_full = 1;
    return -1;
  }
  uv_fs_event_t *w = &d->watch[d->nwatch];
  if (d->nwatch == d->ninit) { /* a slot that failed to start is reused */
    if (uv_fs_event_init(d->loop, w) != 0) return -1;
    w->data = d;
    d->ninit++;
  }
  if (uv_fs_event_start(w, on_fs, path, 0) != 0) return -1;
  d->wino[d->nwatch] = sb->st_ino;
  d->wdev[d->nwatch] = sb->st_dev;
  d->nwatch++;
  return 0;
}

/* Watch `path` and the folders under it (depth: its depth under the
 * project folder, 0 for the project itself), not following links. */
static void watch_tree(dev *d, const char *path, int depth) {
  struct stat sb;
  if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
      watch_one(d, path, &sb) != 0 || depth >= DEV_WATCH_DEPTH)
    return;
  DIR *dir = opendir(path);
  if (!dir) return;
  struct dirent *de;
  char sub[PATH_MAX];
  while ((de = readdir(dir)) != NULL && !d->watch_full) {
    if (watch_skip(de->d_name, depth == 0) ||
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >=
            (int)sizeof sub)
      continue;
    if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
    watch_tree(d, sub, depth + 1);
  }
  closedir(dir);
}

/* Options: --port N, --no-watch (help: the command table, cli.c). */
int cli_project_dev(int argc, char **argv, const char *exe_dir) {
  int nowatch = 0, port = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--no-watch")) {
      nowatch = 1;
      continue;
    }
    if (!strcmp(argv[i], "--port") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || v < 1 || v > 65535)
        return fail("project dev: --port expects a number from 1 to 65535",
                    "nno project dev --port 8080");
      port = (int)v;
      continue;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "project dev: unknown argument %.64s", argv[i]);
    return fail(msg, "nno project dev --help");
  }
  static dev d; /* large; one per process */
  memset(&d, 0, sizeof d);
  d.exe_dir = exe_dir;
  d.h.errfd = -1;
  char err[512];
  if (project_open(NULL, &d.pj, err, sizeof err) != 0)
    return fail(err, "run it inside a project folder (nno project init NAME)");
  project_pkgconfig_env(exe_dir);
  char dir[PATH_MAX], keyfile[PATH_MAX + 8];
  if (snprintf(dir, sizeof dir, "%s/.nno", d.pj.dir) >= (int)sizeof dir ||
      (mkdir(dir, 0700) != 0 && errno != EEXIST) ||
      snprintf(d.h.data, sizeof d.h.data, "%s/dev", dir) >=
          (int)sizeof d.h.data)
    return fail("cannot create the project's .nno folder", NULL);
  snprintf(keyfile, sizeof keyfile, "%s/key", d.h.data);
  uint64_t t0 = now_ms();
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return fail("curl failed to start", NULL);
  signal(SIGPIPE, SIG_IGN);
  int rc = CLI_EUSAGE;
  int perr = port ? port_check(port) : 0;
  if (perr) {
    char msg[160];
    snprintf(msg, sizeof msg, "project dev: port %d on 127.0.0.1: %s", port,
             perr == EADDRINUSE ? "another process listens on it"
                                : strerror(perr));
    fail(msg, perr == EADDRINUSE || perr == EACCES
                  ? "give another --port N, or leave --port out for a "
                    "free one"
                  : "leave --port out for a free port");
    goto out;
  }
  if (host_start(&d.h, exe_dir, &d.pj, port) != 0) goto out;
  d.h.print = 1;
  d.h.name = d.pj.name;
  if (pump_start(&d.h) != 0) goto out;
  if ((rc = platform_setup(&d.h, &d.pj, keyfile)) != CLI_OK) goto out;
  d.n = dev_versions(&d.h, &d.pj, NULL, 0);
  {
    char version[96];
    snprintf(version, sizeof version, "%s-dev.%ld", d.pj.version, d.n + 1);
    if ((rc = build_and_swap(&d.h, &d.pj, exe_dir, version)) != CLI_OK) {
      fprintf(stderr,
              "hint: fix the errors above and run nno project dev "
              "again\n");
      goto out;
    }
    d.n++;
    dev_versions(&d.h, &d.pj, version, 1); /* earlier runs' versions */
  }
  printf(
      "%s %s live in %.2f s\n"
      "  routes   %s/p/%s/\n"
      "  console  http://console.%s.nno.localhost:%d/\n"
      "  key      %s\n",
      d.pj.name, d.h.serving, (double)(now_ms() - t0) / 1000.0, d.h.url,
      d.pj.name, d.pj.name, d.h.port, d.h.key);
  fflush(stdout);

  d.loop = uv_default_loop();
  uv_timer_init(d.loop, &d.debounce);
  d.debounce.data = &d;
  uv_signal_init(d.loop, &d.sigint);
  uv_signal_init(d.loop, &d.sigterm);
  d.sigint.data = d.sigterm.data = &d;
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_async_init(d.loop, &d.gone, on_gone);
  d.gone.data = &d;
  d.h.gone = &d.gone;
  if (!nowatch) {
    watch_tree(&d, d.pj.dir, 0);
    printf("watching %d folder%s of the project (not build/ dist/ .nno/ or "
           "hidden ones), package.json, stack.json; Ctrl-C stops\n",
           d.nwatch, d.nwatch == 1 ? "" : "s");
    fflush(stdout);
  }
  d.rc = CLI_OK;
  uv_run(d.loop, UV_RUN_DEFAULT);
  rc = d.rc;
  host_stop(&d.h); /* joins the pump: d.gone is not used after this */
  /* Close every handle, then let the loop run their close callbacks. */
  for (int i = 0; i < d.ninit; i++) uv_close((uv_handle_t *)&d.watch[i], NULL);
  uv_close((uv_handle_t *)&d.debounce, NULL);
  uv_close((uv_handle_t *)&d.sigint, NULL);
  uv_close((uv_handle_t *)&d.sigterm, NULL);
  uv_close((uv_handle_t *)&d.gone, NULL);
  uv_run(d.loop, UV_RUN_DEFAULT);
  uv_loop_close(d.loop);
out:
  host_stop(&d.h);
  if (rc == CLI_OK) printf("stopped; %s is kept for the next run\n", d.h.data);
  curl_global_cleanup();
  return rc;
}

/* -- test ---------------------------------------------------------------- */

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs `path` in the project folder with the environment set; its
 * stdout and stderr go to `out` (the first TEST_OUTPUT_MAX bytes kept).
 * 1 passed, 0 failed. */
static int run_test(const char *path, const char *cwd, char **out,
                    size_t *outlen) {
  int fds[2];
  *out = NULL;
  *outlen = 0;
  if (pipe2(fds, O_CLOEXEC) != 0) return 0;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    if (chdir(cwd) != 0) _exit(126);
    signal(SIGPIPE, SIG_DFL);
    execl(path, path, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  close(fds[1]);
  char *buf = malloc(TEST_OUTPUT_MAX + 1);
  size_t len = 0;
  uint64_t deadline = now_ms() + TEST_TIMEOUT_MS;
  int timed_out = 0;
  for (;;) {
    uint64_t t = now_ms();
    if (t >= deadline) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    int k = poll(&p, 1, (int)(deadline - t));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) continue;
    char tmp[4096];
    ssize_t n = read(fds[0], tmp, sizeof tmp);
    if (n <= 0) break;
    if (buf && len < TEST_OUTPUT_MAX) {
      size_t take =
          (size_t)n < TEST_OUTPUT_MAX - len ? (size_t)n : TEST_OUTPUT_MAX - len;
      memcpy(buf + len, tmp, take);
      len += take;
    }
  }
  close(fds[0]);
  if (timed_out) kill(-pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  if (buf) {
    buf[len] = '\0';
    if (timed_out && len + 64 < TEST_OUTPUT_MAX)
      len += (size_t)snprintf(buf + len, 64, "\n(stopped after %d s)\n",
                              TEST_TIMEOUT_MS / 1000);
  }
  *out = buf;
  *outlen = len;
  return !timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* No options (help: the command table, cli.c). */
int cli_project_test(int argc, char **argv, const char *exe_dir) {
  for (int i = 0; i < argc; i++) {
    char msg[128];
    snprintf(msg, sizeof msg, "project test: unknown argument %.64s", argv[i]);
    return fail(msg, "nno project test --help");
  }
  project pj;
  char err[512];
  if (project_open(NULL, &pj, err, sizeof err) != 0)
    return fail(err, "run it inside a project folder (nno project init NAME)");
  project_pkgconfig_env(exe_dir);
  /* The tests first: nothing to run is said before building. */
  char tdir[PATH_MAX];
  snprintf(tdir, sizeof tdir, "%s/tests", pj.dir);
  char *names[TEST_MAX];
  size_t nt = 0;
  DIR *dp = opendir(tdir);
  if (dp) {
    struct dirent *e;
    while ((e = readdir(dp)) != NULL && nt < TEST_MAX) {
      char p[PATH_MAX];
      struct stat st;
      if (e->d_name[0] == '.' ||
          snprintf(p, sizeof p, "%s/%s", tdir, e->d_name) >= (int)sizeof p ||
          stat(p, &st) != 0 || !S_ISREG(st.st_mode) || access(p, X_OK) != 0)
        continue;
      char *copy = strdup(e->d_name);
      if (copy) names[nt++] = copy;
    }
    closedir(dp);
  }
  if (nt == 0)
    return fail("no executable file in tests/",
                "add one (e.g. tests/smoke.sh, chmod +x) that exits 0 when "
                "the package works");
  qsort(names, nt, sizeof names[0], by_name);

  int rc = CLI_EUSAGE;
  devhost h;
  memset(&h, 0, sizeof h);
  h.errfd = -1;
  char tmpl[PATH_MAX];
  char archive[PATH_MAX];
  const char *tmpdir = getenv("TMPDIR");
  if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
  if ((size_t)snprintf(tmpl, sizeof tmpl, "%s/nno-test-XXXXXX", tmpdir) >=
      sizeof tmpl - 64) {
    rc = fail("TMPDIR is too long", "set TMPDIR to a shorter folder");
    goto free_names;
  }
  if (!mkdtemp(tmpl)) {
    rc = fail("cannot create a temporary folder", NULL);
    goto free_names;
  }
  snprintf(h.data, sizeof h.data, "%s/data", tmpl);
  if (project_build(&pj, 0, NULL, exe_dir, archive, sizeof archive, err,
                    sizeof err) != 0) {
    rc = fail(err, project_build_hint(err));
    goto remove;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    rc = fail("curl failed to start", NULL);
    goto remove;
  }
  signal(SIGPIPE, SIG_IGN);
  if (host_start(&h, exe_dir, &pj, 0) != 0 || pump_start(&h) != 0 ||
      (rc = platform_setup(&h, &pj, NULL)) != CLI_OK ||
      (rc = install_activate(&h, &pj, archive, pj.version)) != CLI_OK)
    goto stop;
  {
    char base[192];
    snprintf(base, sizeof base, "%s/p/%s", h.url, pj.name);
    setenv("NNO_URL", h.url, 1);
    setenv("NNO_KEY", h.key, 1);
    setenv("NNO_PLATFORM", pj.name, 1);
    setenv("NNO_BASE", base, 1);
  }
  size_t failed = 0;
  for (size_t i = 0; i < nt; i++) {
    char p[PATH_MAX], *out;
    size_t len;
    snprintf(p, sizeof p, "%s/%s", tdir, names[i]);
    uint64_t t0 = now_ms();
    int ok = run_test(p, pj.dir, &out, &len);
    printf("%s  tests/%s (%.2f s)\n", ok ? "PASS" : "FAIL", names[i],
           (double)(now_ms() - t0) / 1000.0);
    if (!ok) {
      failed++;
      if (out && len) {
        fwrite(out, 1, len, stdout);
        if (out[len - 1] != '\n') putchar('\n');
      }
    }
    free(out);
    fflush(stdout);
  }
  printf("%zu passed, %zu failed\n", nt - failed, failed);
  rc = failed ? CLI_EAPI : CLI_OK;
stop:
  host_stop(&h);
  curl_global_cleanup();
remove:
  rm_tree(tmpl);
free_names:
  for (size_t i = 0; i < nt; i++) free(names[i]);
  return rc;
}
