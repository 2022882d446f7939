/* nno login, nno logout and nno device approve|deny: the device-code
 * flow's client side and the stored credentials (login.h).
 *
 *   nno login URL --platform P   asks URL for a code, shows it, polls
 *                                until approved, denied or expired; stores
 *                                the key given under URL
 *   nno logout [URL] [--forget]  revokes the stored key on the server
 *                                (DELETE /keys/self) and forgets it;
 *                                --forget forgets it also when the host
 *                                cannot revoke it
 *   nno device approve|deny CODE [--platform P] [--url URL] [--key K]
 *                                [--data DIR]   for the operator (or a
 *                                platform admin's key) */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "login.h"
#include "project.h"

#define CRED_FILE_MAX (1 << 20) /* a credentials file larger is refused */
#define CRED_MAX_ENTRIES 64

/* ---- the credentials file ------------------------------------------------ */

/* The folder and the file, 0 or -1 (no HOME and no XDG_CONFIG_HOME). */
static int cred_paths(char dir[PATH_MAX], char file[PATH_MAX]) {
  const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
  int n;
  if (x && x[0] == '/')
    n = snprintf(dir, PATH_MAX, "%s/nno", x);
  else if (h && *h)
    n = snprintf(dir, PATH_MAX, "%s/.config/nno", h);
  else
    return -1;
  if (n <= 0 || n >= PATH_MAX - 32) return -1;
  snprintf(file, PATH_MAX, "%s/credentials.json", dir);
  return 0;
}

/* The stored logins (an object; owned) into *out: an empty object when
 * there is no file. 0, or -1 with err. */
static int cred_load(json_t **out, char *err, size_t cap) {
  char dir[PATH_MAX], file[PATH_MAX];
  struct stat st;
  *out = NULL;
  if (cred_paths(dir, file)) {
    snprintf(err, cap, "neither XDG_CONFIG_HOME nor HOME is set");
    return -1;
  }
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return (*out = json_object()) ? 0 : -1;
    if (errno == ELOOP)
      snprintf(err, cap,
               "%s is a symbolic link: nno does not follow it (remove it; "
               "nno writes its own file there)",
               file);
    else
      snprintf(err, cap, "cannot read %s: %s", file, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
      st.st_uid != geteuid() || st.st_size > CRED_FILE_MAX) {
    snprintf(err, cap,
             "%s is not a private file of yours (mode 0600, at most %d "
             "bytes): refusing to use the keys in it",
             file, CRED_FILE_MAX);
    close(fd);
    return -1;
  }
  json_error_t je;
  json_t *j = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
  close(fd);
  if (!json_is_object(j)) {
    json_decref(j);
    snprintf(err, cap,
             "%s is not a JSON object (line %d): remove it and log "
             "in again",
             file, je.line);
    return -1;
  }
  *out = j;
  return 0;
}

/* The folder of the credentials file, made as mkdir -p makes it, the last
 * one private (0700) and a directory of ours. 0, or -1 with err. */
static int cred_dir_make(char dir[PATH_MAX], char file[PATH_MAX], char *err,
                         size_t cap) {
  struct stat st;
  if (cred_paths(dir, file)) {
    snprintf(err, cap, "neither XDG_CONFIG_HOME nor HOME is set");
    return -1;
  }
  for (char *p = dir + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(dir, 0755) != 0 && errno != EEXIST) break;
      *p = '/';
    }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, cap, "cannot create %s: %s", dir, strerror(errno));
    return -1;
  }
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
    snprintf(err, cap,
             "%s is not a folder of yours: refusing to keep keys "
             "in it",
             dir);
    return -1;
  }
  if (chmod(dir, 0700) != 0) {
    snprintf(err, cap, "cannot make %s private: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

/* Whether a login to `url` could be stored, checked before a key is asked
 * for (so that none is minted to be lost): the folder made private, the
 * file absent or a private regular file of ours holding a JSON object with
 * room for `url`, and a new file writable in the folder. 0, or -1 with
 * err. */
static int cred_check(const char *url, char *err, size_t cap) {
  char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 16];
  json_t *all;
  if (cred_dir_make(dir, file, err, cap) || cred_load(&all, err, cap))
    return -1;
  int full =
      json_object_size(all) >= CRED_MAX_ENTRIES && !json_object_get(all, url);
  json_decref(all);
  if (full) {
    snprintf(err, cap, "%s holds %d logins, the most: nno logout of one", file,
             CRED_MAX_ENTRIES);
    return -1;
  }
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", file);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, cap, "cannot write in %s: %s", dir, strerror(errno));
    return -1;
  }
  close(fd);
  unlink(tmp);
  return 0;
}

/* Write `all` whole: the folder made 0700, a temporary file 0600 in it,
 * flushed, renamed over the old one. 0, or -1 with err. */
static int cred_save(const json_t *all, char *err, size_t cap) {
  char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 16];
  if (cred_dir_make(dir, file, err, cap)) return -1;
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", file);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, cap, "cannot write in %s: %s", dir, strerror(errno));
    return -1;
  }
  char *text = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
  size_t n = text ? strlen(text) : 0;
  int ok = text && fchmod(fd, 0600) == 0 && write(fd, text, n) == (ssize_t)n &&
           write(fd, "\n", 1) == 1 && fsync(fd) == 0;
  if (text) {
    memset(text, 0, n);
    free(text);
  }
  if (close(fd) != 0) ok = 0;
  if (!ok || rename(tmp, file) != 0) {
    snprintf(err, cap, "cannot write %s: %s", file, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* A URL as a key: no trailing slashes. */
static void url_norm(const char *in, char *out, size_t cap) {
  snprintf(out, cap, "%s", in);
  size_t n = strlen(out);
  while (n > 0 && out[n - 1] == '/') out[--n] = '\0';
}

static int url_ok(const char *u) {
  return (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0) &&
         strlen(u) < 1000;
}

/* 1 when the URL's authority carries a user name or password ("user:pw@"):
 * nno never uses them, and never prints them back. */
static int url_has_userinfo(const char *u) {
  const char *a = strstr(u, "://");
  if (!a) return 0;
  a += 3;
  size_t n = strcspn(a, "/?#");
  return memchr(a, '@', n) != NULL;
}

/* A URL the host gave that may go to a terminal: http(s), at most 512
 * bytes of printable ASCII without spaces (no escape sequences). */
static int printable_url(const char *u) {
  if (!u || !url_ok(u) || strlen(u) > 512) return 0;
  for (const char *p = u; *p; p++)
    if (*p <= ' ' || *p > '~') return 0;
  return 1;
}

/* A member stored from a host's answer, made safe for a terminal. */
static void copy_member(json_t *o, const char *k, char *out, size_t cap) {
  const char *v = json_string_value(json_object_get(o, k));
  snprintf(out, cap, "%s", v ? v : "");
  cli_defang(out);
}

/* A user code as IAM makes them: "XXXX-XXXX" from RFC 8628's consonants
 * (plugins/iam/README.md). Anything else from a host is refused: it goes
 * to a terminal and into a command line. */
static int user_code_ok(const char *uc) {
  static const char alphabet[] = "BCDFGHJKMNPQRSTVWXZ";
  if (!uc || strlen(uc) != 9) return 0;
  for (int i = 0; i < 9; i++)
    if (i == 4 ? uc[i] != '-' : !strchr(alphabet, uc[i]) || uc[i] == '\0')
      return 0;
  return 1;
}

/* A string member of a host's answer as printed: safe for a terminal, at
 * most cap - 1 bytes, "-" when absent. */
static void safe_member(const json_t *o, const char *k, char *out, size_t cap) {
  const char *v = json_string_value(json_object_get(o, k));
  snprintf(out, cap, "%s", v && *v ? v : "-");
  cli_defang(out);
}

int cli_cred_get(const char *url, cli_cred *out, char *err, char *hint,
                 size_t cap) {
  json_t *all, *e = NULL;
  const char *k;
  char want[1024];
  memset(out, 0, sizeof *out);
  hint[0] = '\0';
  if (cred_load(&all, err, cap)) {
    snprintf(hint, cap, "chmod 600 the file, or remove it and nno login");
    return -1;
  }
  if (url) {
    url_norm(url, want, sizeof want);
    e = json_object_get(all, want);
    k = want;
  } else if (json_object_size(all) == 1) {
    void *it = json_object_iter(all);
    k = json_object_iter_key(it);
    e = json_object_iter_value(it);
  } else {
    snprintf(err, cap, "%s",
             json_object_size(all) ? "several hosts are logged in to"
                                   : "not logged in to any host");
    snprintf(hint, cap, "%s",
             json_object_size(all) ? "say which with --url URL"
                                   : "nno login URL --platform P");
    json_decref(all);
    return -1;
  }
  if (!json_is_object(e)) {
    snprintf(err, cap, "not logged in to %s", url ? want : "");
    snprintf(hint, cap, "nno login %s --platform P", url ? want : "URL");
    json_decref(all);
    return -1;
  }
  snprintf(out->url, sizeof out->url, "%s", k);
  copy_member(e, "platform", out->platform, sizeof out->platform);
  copy_member(e, "key", out->key, sizeof out->key);
  copy_member(e, "key_id", out->key_id, sizeof out->key_id);
  copy_member(e, "expires_at", out->expires_at, sizeof out->expires_at);
  json_decref(all);
  if (!cli_key_ok(out->key) || !out->platform[0]) {
    snprintf(err, cap, "the login stored for %s is incomplete", out->url);
    snprintf(hint, cap, "nno login %s --platform P", out->url);
    return -1;
  }
  return 0;
}

/* ---- login --------------------------------------------------------------- */

static const char LOGIN_HELP[] =
    "usage: nno login URL --platform P\n"
    "\n"
    "Log in to the host at URL as a developer of platform P (the device-code\n"
    "flow): nno shows a code and a page of P's console to open (when P has\n"
    "the console stack); an operator or an admin of P approves it there or,\n"
    "always, with nno device approve CODE --platform P --url URL; nno\n"
    "stores a key of P (30 days) in $XDG_CONFIG_HOME/nno/credentials.json\n"
    "(mode 0600), used by nno project deploy and nno project logs; the key\n"
    "a login to the same URL replaces is revoked.\n"
    "\n"
    "examples:\n"
    "  nno login https://nno.example.com --platform myapp\n"
    "  nno device approve BCDF-GHJK --platform myapp   (on the host, as the "
    "operator)\n";

static int sleep_s(int64_t s) {
  struct timespec ts = {(time_t)s, 0};
  while (nanosleep(&ts, &ts) != 0)
    if (errno != EINTR) return -1;
  return 0;
}

/* Who logs in, for the key's name: "{user}@{hostname}", each at most 32
 * bytes (IAM turns any other byte than [A-Za-z0-9._@+-] into '_'). */
static void login_client(char *out, size_t cap) {
  char host[256] = "";
  const char *user = NULL;
  struct passwd *pw = getpwuid(geteuid());
  if (pw && pw->pw_name && *pw->pw_name) user = pw->pw_name;
  if (!user) user = getenv("USER");
  if (gethostname(host, sizeof host - 1) != 0 || !host[0])
    snprintf(host, sizeof host, "unknown");
  host[sizeof host - 1] = '\0';
  snprintf(out, cap, "%.32s@%.32s", user && *user ? user : "unknown", host);
}

/* Revoke `key` on the host at `url` with itself (DELETE /keys/self):
 * 1 when it is gone (204, or already unknown: 401), 0 otherwise. */
static int revoke_self(const char *url, const char *key) {
  cli c;
  cli_resp r;
  memset(&c, 0, sizeof c);
  snprintf(c.url, sizeof c.url, "%s", url);
  c.key_arg = key;
  int rc = cli_request(&c, "DELETE", "/keys/self", NULL, NULL, &r);
  if (c.curl) curl_easy_cleanup(c.curl);
  if (rc) return 0;
  int gone = r.status == 204 || r.status == 401;
  cli_resp_free(&r);
  return gone;
}

/* The login stored for `url` in `all` into *old (zeroed when none, or
 * when its key is not one): always 0, for the && chain that stores. */
static int old_login(json_t *all, const char *url, cli_cred *old) {
  json_t *e = json_object_get(all, url);
  memset(old, 0, sizeof *old);
  if (!json_is_object(e)) return 0;
  copy_member(e, "platform", old->platform, sizeof old->platform);
  copy_member(e, "key", old->key, sizeof old->key);
  copy_member(e, "key_id", old->key_id, sizeof old->key_id);
  copy_member(e, "expires_at", old->expires_at, sizeof old->expires_at);
  if (!cli_key_ok(old->key)) memset(old, 0, sizeof *old);
  return 0;
}

/* The "error" member of a 400 problem, "" when none. */
static void problem_error(const cli_resp *r, char *out, size_t cap) {
  json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
  const char *e = json_string_value(json_object_get(j, "error"));
  snprintf(out, cap, "%s", e ? e : "");
  json_decref(j);
}

int cli_login_main(int argc, char **argv, const char *exe_dir) {
  (void)exe_dir;
  const char *url_arg = NULL, *plat = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(LOGIN_HELP, stdout);
      return CLI_OK;
    }
    if (!strcmp(argv[i], "--platform") && i + 1 < argc)
      plat = argv[++i];
    else if (!strncmp(argv[i], "--platform=", 11))
      plat = argv[i] + 11;
    else if (argv[i][0] != '-' && !url_arg)
      url_arg = argv[i];
    else
      return cli_usage_error("login: unexpected argument", "nno login --help");
  }
  if (url_arg && url_has_userinfo(url_arg))
    return cli_usage_error(
        "login: the URL holds a user name or password",
        "credentials in URLs are not used: nno login https://HOST "
        "--platform P, then approve the code shown");
  if (!url_arg || !url_ok(url_arg))
    return cli_usage_error(
        "login: expected the host's URL (http:// or "
        "https://)",
        "nno login https://nno.example.com --platform P");
  if (!plat || !*plat || strlen(plat) > 32)
    return cli_usage_error("login: which platform? (--platform P)",
                           "nno login URL --platform myapp");
  cli c;
  memset(&c, 0, sizeof c);
  url_norm(url_arg, c.url, sizeof c.url);
  /* Before any code is asked for: a key that cannot be stored would be
   * minted for nothing. */
  char cerr[PATH_MAX + 256];
  if (cred_check(c.url, cerr, sizeof cerr))
    return cli_usage_error(cerr, "fix that, then nno login again");
  c.key_arg = ""; /* the device routes are public */
  char who[96];
  login_client(who, sizeof who);
  json_t *body = json_pack("{s:s}", "platform", plat), *code = NULL;
  int rc = cli_call(&c, "POST", "/device/code", body, NULL, &code, NULL);
  json_decref(body);
  if (rc) goto out;
  const char *dc = json_string_value(json_object_get(code, "device_code"));
  const char *uc = json_string_value(json_object_get(code, "user_code"));
  json_int_t interval = json_integer_value(json_object_get(code, "interval"));
  json_int_t life = json_integer_value(json_object_get(code, "expires_in"));
  if (!dc || !uc || interval < 1 || life < 1) {
    fprintf(stderr, "nno: the host answered no device code\n");
    rc = CLI_EAPI;
    goto out;
  }
  if (!user_code_ok(uc)) {
    fprintf(stderr,
            "nno: the host answered a user code that is not XXXX-XXXX "
            "from BCDFGHJKMNPQRSTVWXZ: refusing it\n"
            "hint: %s is not an nno host, or not one this nno knows\n",
            c.url);
    rc = CLI_EAPI;
    goto out;
  }
  /* RFC 8628 3.3.1: the page with the code filled in, else the page; both
   * printed only when they are plain http(s) URLs (they come from the
   * host, and go to a terminal). */
  const char *page =
      json_string_value(json_object_get(code, "verification_uri_complete"));
  if (!printable_url(page))
    page = json_string_value(json_object_get(code, "verification_uri"));
  if (printable_url(page))
    printf("Open %s in a browser to approve code %s\n", page, uc);
  else
    printf("Open %s/api/v1/device/approve and enter %s\n", c.url, uc);
  /* The page is the console's: a platform without the console stack has
   * none. The command works always. */
  printf(
      "(or, as the operator or an admin of %s: nno device approve %s "
      "--platform %s --url %s)\n",
      plat, uc, plat, c.url);
  printf("waiting for approval (%lld s)...\n", (long long)life);
  fflush(stdout);
  time_t end = time(NULL) + (time_t)life + 1;
  json_t *req = json_pack("{s:s, s:s}", "device_code", dc, "client", who);
  cli_resp r;
  rc = CLI_EAPI;
  while (req) {
    if (sleep_s(interval)) break;
    int q = cli_request(&c, "POST", "/device/token", req, NULL, &r);
    if (q) {
      rc = q;
      break;
    }
    if (r.status == 200) {
      json_t *tok = json_loads(r.body, 0, NULL), *all = NULL;
      cli_resp_free(&r);
      const char *key = json_string_value(json_object_get(tok, "key"));
      char err[PATH_MAX + 256];
      if (!key || !cli_key_ok(key)) {
        fprintf(stderr, "nno: the host answered no key\n");
        json_decref(tok);
        break;
      }
      snprintf(err, sizeof err, "too many logins stored");
      json_t *e = NULL;
      cli_cred old; /* the login this one replaces, if any */
      memset(&old, 0, sizeof old);
      int stored =
          cred_load(&all, err, sizeof err) == 0 &&
          old_login(all, c.url, &old) == 0 &&
          json_object_size(all) < CRED_MAX_ENTRIES &&
          (e = json_pack("{s:s, s:s, s:O, s:O}", "platform", plat, "key", key,
                         "key_id", json_object_get(tok, "key_id"), "expires_at",
                         json_object_get(tok, "expires_at"))) &&
          json_object_set_new(all, c.url, e) == 0 &&
          cred_save(all, err, sizeof err) == 0;
      json_decref(all);
      if (!stored) {
        /* Checked before, failed now: give the key back rather than leave
         * it live and stored nowhere. */
        int gone = revoke_self(c.url, key);
        char kid[80];
        safe_member(tok, "key_id", kid, sizeof kid);
        explicit_bzero(old.key, sizeof old.key);
        fprintf(stderr, "nno: cannot store the key: %s\n", err);
        fprintf(stderr,
                gone ? "hint: the key was revoked on the host; fix that, then "
                       "nno login again\n"
                     : "hint: the key could not be revoked: an admin of the "
                       "platform revokes key %s (nno key revoke)\n",
                kid);
        json_decref(tok);
        break;
      }
      char kid[80], until[80];
      safe_member(tok, "key_id", kid, sizeof kid);
      safe_member(tok, "expires_at", until, sizeof until);
      printf("logged in to %s as platform %s (key %s, until %s)\n", c.url, plat,
             kid, until);
      /* The key this login replaced is forgotten now: revoke it rather
       * than leave it live for nobody. */
      if (old.key[0] && strcmp(old.key, key) != 0) {
        if (revoke_self(c.url, old.key))
          printf("the key stored before (key %s, platform %s) is revoked\n",
                 old.key_id[0] ? old.key_id : "-", old.platform);
        else
          fprintf(stderr,
                  "nno: warning: the key stored before (key %s, platform %s) "
                  "could not be revoked: it stays live until %s unless an "
                  "admin of platform %s revokes it (nno key revoke)\n",
                  old.key_id[0] ? old.key_id : "-", old.platform,
                  old.expires_at[0] ? old.expires_at : "it expires",
                  old.platform);
      }
      explicit_bzero(old.key, sizeof old.key);
      /* Only user_project platforms take deploys: say so now, not at the
       * first nno project deploy. */
      const char *cls = json_string_value(json_object_get(tok, "class"));
      if (cls && strcmp(cls, "user_project") != 0)
        fprintf(stderr,
                "nno: warning: platform %s is not a user_project platform: "
                "nno project deploy will be refused there\n",
                plat);
      json_decref(tok);
      rc = CLI_OK;
      break;
    }
    char word[32] = "";
    if (r.status == 400) problem_error(&r, word, sizeof word);
    if (!strcmp(word, "authorization_pending") && time(NULL) < end) {
      cli_resp_free(&r);
      continue;
    }
    if (!strcmp(word, "slow_down") && time(NULL) < end) {
      interval += 5; /* RFC 8628 3.5 */
      cli_resp_free(&r);
      continue;
    }
    if (!strcmp(word, "access_denied"))
      fprintf(stderr, "nno: the login was denied\n");
    else if (!strcmp(word, "expired_token") ||
             !strcmp(word, "authorization_pending"))
      fprintf(stderr,
              "nno: the code expired before it was approved\n"
              "hint: run nno login again and approve sooner\n");
    else
      cli_api_error(&r, NULL);
    cli_resp_free(&r);
    break;
  }
  json_decref(req);
out:
  json_decref(code);
  if (c.curl) curl_easy_cleanup(c.curl);
  return rc;
}

/* ---- logout -------------------------------------------------------------- */

int cli_logout_main(int argc, char **argv, const char *exe_dir) {
  (void)exe_dir;
  const char *url = NULL;
  int forget = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(
          "usage: nno logout [[--url] URL] [--forget]\n\nRevoke the key nno "
          "login "
          "stored for URL (the only one when not given)\non the host, and "
          "forget it. --forget: forget it here even when the\nhost cannot "
          "revoke it (unreachable, or refusing); the key then stays\nlive "
          "until it expires or an admin of the platform revokes it.\n\n"
          "examples:\n  nno logout\n  nno logout https://nno.example.com\n"
          "  nno logout https://gone.example.com --forget\n",
          stdout);
      return CLI_OK;
    }
    if (!strcmp(argv[i], "--forget")) {
      forget = 1;
      continue;
    }
    if ((!strcmp(argv[i], "--url") && i + 1 < argc) ||
        !strncmp(argv[i], "--url=", 6)) {
      if (url)
        return cli_usage_error("logout: the URL is given twice",
                               "nno logout [--url] URL");
      url = argv[i][5] == '=' ? argv[i] + 6 : argv[++i];
      continue;
    }
    if (argv[i][0] == '-' || url)
      return cli_usage_error("logout: unexpected argument",
                             "nno logout --help");
    url = argv[i];
  }
  if (url && url_has_userinfo(url))
    return cli_usage_error("logout: the URL holds a user name or password",
                           "credentials in URLs are not used: nno logout "
                           "https://HOST");
  cli_cred cr;
  char err[PATH_MAX + 256], hint[PATH_MAX + 256];
  if (cli_cred_get(url, &cr, err, hint, sizeof err))
    return cli_usage_error(err, hint);
  cli c;
  memset(&c, 0, sizeof c);
  snprintf(c.url, sizeof c.url, "%s", cr.url);
  c.key_arg = cr.key;
  cli_resp r;
  int rc = cli_request(&c, "DELETE", "/keys/self", NULL, NULL, &r);
  if (c.curl) curl_easy_cleanup(c.curl);
  /* Revoked, or already unknown to the host (401): forget it either way. */
  int revoked = rc == CLI_OK && (r.status == 204 || r.status == 401);
  if (rc == CLI_OK && !revoked) {
    if (forget)
      fprintf(stderr, "nno: the host answered %ld: the key is not revoked\n",
              r.status);
    else
      rc = cli_api_error(&r, NULL);
  }
  if (rc == CLI_OK) cli_resp_free(&r);
  if (!revoked && !forget) {
    fprintf(stderr,
            "hint: the key stays stored until the host can revoke it; "
            "nno logout %s --forget forgets it here only\n",
            cr.url);
    return rc ? rc : CLI_EAPI;
  }
  json_t *all;
  if (cred_load(&all, err, sizeof err)) return cli_usage_error(err, NULL);
  json_object_del(all, cr.url);
  int sv = cred_save(all, err, sizeof err);
  json_decref(all);
  if (sv) return cli_usage_error(err, NULL);
  if (revoked)
    printf("logged out of %s (key %s revoked)\n", cr.url, cr.key_id);
  else
    printf(
        "forgot the login to %s; key %s was NOT revoked: it stays live "
        "until %s unless an admin of platform %s revokes it\n",
        cr.url, cr.key_id, cr.expires_at[0] ? cr.expires_at : "it expires",
        cr.platform);
  return CLI_OK;
}

/* ---- device approve | deny ----------------------------------------------- */

static const char DEVICE_HELP[] =
    "usage: nno device approve|deny CODE [--platform P] [--url URL]\n"
    "                  [--key KEY] [--data DIR]\n"
    "\n"
    "Approve (or deny) a login that nno login shows as CODE. Needs the\n"
    "operator key (--key, NNO_KEY, or DIR/operator.key with --data or\n"
    "NNO_DATA) or a key of the platform holding keys:write. URL defaults\n"
    "to NNO_URL, then http://127.0.0.1:8080.\n"
    "\n"
    "examples:\n"
    "  nno device approve BCDF-GHJK --platform myapp --data /var/lib/nno\n"
    "  nno device deny BCDF-GHJK --url https://nno.example.com\n";

int cli_device_main(int argc, char **argv, const char *exe_dir) {
  (void)exe_dir;
  const char *verb = NULL, *code = NULL, *plat = NULL, *url = NULL,
             *key = getenv("NNO_KEY"), *data = getenv("NNO_DATA");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(DEVICE_HELP, stdout);
      return CLI_OK;
    }
    if (i + 1 < argc && !strcmp(a, "--platform"))
      plat = argv[++i];
    else if (i + 1 < argc && !strcmp(a, "--url"))
      url = argv[++i];
    else if (i + 1 < argc && !strcmp(a, "--key"))
      key = argv[++i];
    else if (i + 1 < argc && !strcmp(a, "--data"))
      data = argv[++i];
    else if (a[0] != '-' && !verb)
      verb = a;
    else if (a[0] != '-' && !code)
      code = a;
    else
      return cli_usage_error("device: unexpected argument",
                             "nno device --help");
  }
  if (!verb || (strcmp(verb, "approve") && strcmp(verb, "deny")) || !code)
    return cli_usage_error("device: expected approve or deny and the code",
                           "nno device approve BCDF-GHJK --platform P");
  if (!url) url = getenv("NNO_URL");
  if (!url) url = "http://127.0.0.1:8080";
  if (!url_ok(url))
    return cli_usage_error("device: --url expects http:// or https://", NULL);
  cli c;
  memset(&c, 0, sizeof c);
  url_norm(url, c.url, sizeof c.url);
  if (key && *key) {
    c.key_arg = key;
  } else {
    snprintf(c.key_path, sizeof c.key_path, "%s/operator.key",
             data && *data ? data : "var");
  }
  json_t *body = json_pack("{s:s}", "user_code", code), *out = NULL;
  if (plat) json_object_set_new(body, "platform", json_string(plat));
  char path[32];
  snprintf(path, sizeof path, "/device/%s", verb);
  int rc = cli_call(&c, "POST", path, body, NULL, &out, NULL);
  json_decref(body);
  if (!rc) {
    char uc[32], pl[64];
    safe_member(out, "user_code", uc, sizeof uc);
    safe_member(out, "platform", pl, sizeof pl);
    printf("%s %s (platform %s)\n",
           strcmp(verb, "approve") ? "denied" : "approved", uc, pl);
  }
  json_decref(out);
  if (c.curl) curl_easy_cleanup(c.curl);
  return rc;
}
