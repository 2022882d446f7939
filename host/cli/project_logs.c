/* nno project logs: tail a platform's log lines through the logs API
 * (GET /api/v1/platforms/{platform}/logs), one readable line each:
 *   HH:MM:SS LEVEL [request_id] message
 * or, with --json, each line's JSON object as the API gives it.
 *
 * Where and as whom: --url/NNO_URL, --key/NNO_KEY and
 * --platform/NNO_PLATFORM (a key of the platform granted logs:read).
 * --package shows one package's lines; without it, inside a project, the
 * project's package's lines and the platform's lines naming no package
 * (access, stack and crash lines: what `nno project dev` shows), else
 * every line of the platform. Nothing to show is said on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "login.h"
#include "project.h"

#define LOGS_PAGE "1000" /* lines asked for per call */
#define LOGS_WAIT "20"   /* seconds a --follow call waits for a line */

static const char LOGS_HELP[] =
    "usage: nno project logs [--url URL] [--key K] [--platform P]\n"
    "                        [--package P] [--since SEQ] [--follow] [--json]\n"
    "\n"
    "Print the recent log lines of a platform (its packages' lines and its\n"
    "requests' access lines) as `HH:MM:SS LEVEL [request_id] message`.\n"
    "Inside a project: its package's lines and the platform's own (access,\n"
    "stack and crash lines), as `nno project dev` shows them. --package\n"
    "shows one package's lines only. --follow keeps printing new lines as\n"
    "they come; --json prints each line's JSON object instead. With no\n"
    "line to show it says so on stderr and exits 0.\n"
    "\n"
    "  --url URL       the host (env NNO_URL)\n"
    "  --key K         a key of the platform with scope logs:read (env "
    "NNO_KEY)\n"
    "  --platform P    the platform (env NNO_PLATFORM)\n"
    "  --package P     only this package's lines\n"
    "  --since SEQ     only lines after this seq (a line's \"seq\")\n"
    "\n"
    "examples:\n"
    "  nno project logs --url https://nno.example.com --platform myapp "
    "--key K\n"
    "  NNO_URL=http://127.0.0.1:8080 NNO_KEY=K NNO_PLATFORM=myapp \\\n"
    "    nno project logs --follow --package notes\n";

/* Every field printed from the host's answer goes through cli_put_safe
 * (out.c): a hostile host's "\x1b]0;...\x07" retitles no terminal. */
static void put_safe(const char *s) {
  cli_put_safe(stdout, s);
}

/* One line as a person reads it. */
static void print_line(const json_t *o) {
  const char *ts = json_string_value(json_object_get(o, "ts"));
  const char *lv = json_string_value(json_object_get(o, "level"));
  const char *rid = json_string_value(json_object_get(o, "rid"));
  const char *msg = json_string_value(json_object_get(o, "msg"));
  char hms[9] = "--:--:--", level[8] = "INFO";
  if (ts && strlen(ts) >= 19) memcpy(hms, ts + 11, 8);
  if (lv) {
    size_t i = 0;
    for (; lv[i] && i < sizeof level - 1; i++)
      level[i] = (char)(lv[i] >= 'a' && lv[i] <= 'z' ? lv[i] - 32 : lv[i]);
    level[i] = '\0';
  }
  put_safe(hms);
  putchar(' ');
  put_safe(level);
  fputs(" [", stdout);
  put_safe(rid && rid[0] ? rid : "-");
  fputs("] ", stdout);
  if (msg && strcmp(msg, "access") == 0) {
    /* An access line: what was asked and how it ended. */
    const char *m = json_string_value(json_object_get(o, "method"));
    const char *p = json_string_value(json_object_get(o, "path"));
    put_safe(m ? m : "-");
    putchar(' ');
    put_safe(p ? p : "-");
    printf(" -> %lld (%lld us)\n",
           (long long)json_integer_value(json_object_get(o, "status")),
           (long long)json_integer_value(json_object_get(o, "dur_us")));
  } else {
    /* Control characters were escaped in the log; keep them out here. */
    put_safe(msg);
    putchar('\n');
  }
}

/* Inside a project without --package: the project's own package's lines
 * and the platform's lines that name no package (its requests' access
 * lines, its stacks loading, its crashes), as `nno project dev` shows. */
static int project_line(const json_t *o, const char *name) {
  const char *pkg = json_string_value(json_object_get(o, "package"));
  if (!pkg) pkg = json_string_value(json_object_get(o, "plugin"));
  return !pkg || !strcmp(pkg, name);
}

static const char *opt_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] == '\0' && *i + 1 < argc) return argv[++*i];
  return NULL;
}

int cli_project_logs(int argc, char **argv, const char *exe_dir) {
  (void)exe_dir;
  const char *url = getenv("NNO_URL"), *key = getenv("NNO_KEY");
  const char *platform = getenv("NNO_PLATFORM"), *package = NULL;
  const char *since_arg = NULL;
  int follow = 0, json = 0;
  for (int i = 0; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(LOGS_HELP, stdout);
      return CLI_OK;
    } else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f")) {
      follow = 1;
    } else if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if ((v = opt_value(argc, argv, &i, "--url"))) {
      url = v;
    } else if ((v = opt_value(argc, argv, &i, "--key"))) {
      key = v;
    } else if ((v = opt_value(argc, argv, &i, "--platform"))) {
      platform = v;
    } else if ((v = opt_value(argc, argv, &i, "--package"))) {
      package = v;
    } else if ((v = opt_value(argc, argv, &i, "--since"))) {
      since_arg = v;
    } else {
      char msg[160];
      snprintf(msg, sizeof msg, "project logs: unknown argument \"%.64s\"",
               argv[i]);
      return cli_usage_error(msg, "nno project logs --help");
    }
  }
  /* No key given: the login `nno login` stored (for --url, or the only
   * one), which names its host and platform too. */
  static cli_cred cred;
  if (!key || !key[0]) {
    char err[256], hint[256];
    if (cli_cred_get(url && url[0] ? url : NULL, &cred, err, hint,
                     sizeof err) == 0) {
      key = cred.key;
      if (!url || !url[0]) url = cred.url;
      if (!platform || !platform[0]) platform = cred.platform;
    }
  }
  /* Inside a project, its own package's lines and the platform's own
   * (project_line) unless --package says. */
  static project pj;
  char perr[256];
  const char *own = NULL;
  if (!package && project_open(NULL, &pj, perr, sizeof perr) == 0)
    own = pj.name;
  if (!url || !url[0])
    return cli_usage_error("project logs: no host URL",
                           "run 'nno login URL --platform P', or give --url "
                           "URL (or set NNO_URL)");
  if (!key || !cli_key_ok(key))
    return cli_usage_error("project logs: no key",
                           "give --key K, a key of the platform with scope "
                           "logs:read (or set NNO_KEY)");
  if (!platform || !platform[0])
    return cli_usage_error("project logs: no platform",
                           "give --platform P (or set NNO_PLATFORM)");
  unsigned long long since = 0;
  if (since_arg) {
    char *end = NULL;
    since = strtoull(since_arg, &end, 10);
    if (!since_arg[0] || *end || since_arg[0] == '-')
      return cli_usage_error("project logs: --since takes a line's seq",
                             "a whole number, e.g. --since 120");
  }

  cli c;
  memset(&c, 0, sizeof c);
  snprintf(c.url, sizeof c.url, "%s", url);
  size_t ul = strlen(c.url);
  while (ul && c.url[ul - 1] == '/') c.url[--ul] = '\0';
  c.key_arg = key;
  int rc = CLI_OK;
  unsigned long long shown = 0;
  int said_none = 0;
  for (;;) {
    char path[CLI_PATH_MAX], num[24];
    snprintf(num, sizeof num, "%llu", since);
    if (cli_path(path, sizeof path, "/platforms/%s/logs", platform) ||
        cli_query(path, sizeof path, "since", num) ||
        cli_query(path, sizeof path, "limit", LOGS_PAGE) ||
        cli_query(path, sizeof path, "package", package) ||
        cli_query(path, sizeof path, "wait", follow ? LOGS_WAIT : NULL)) {
      rc = cli_usage_error("project logs: the platform name is too long", NULL);
      break;
    }
    json_t *body = NULL;
    rc = cli_call(&c, "GET", path, NULL, NULL, &body, NULL);
    if (rc != CLI_OK) {
      if (rc == CLI_EAPI)
        fprintf(stderr,
                "hint: the key must be one of platform %s's, with "
                "scope logs:read, not bound to a tenant\n",
                platform);
      break;
    }
    json_t *lines = json_object_get(body, "lines");
    json_t *next = json_object_get(body, "next");
    if (!json_is_array(lines) || !json_is_integer(next)) {
      json_decref(body);
      fprintf(stderr, "nno: the host's answer has no lines and next\n");
      rc = CLI_EAPI;
      break;
    }
    size_t i;
    json_t *o;
    json_array_foreach(lines, i, o) {
      if (own && !project_line(o, own)) continue;
      if (json)
        cli_print_json(stdout, o);
      else
        print_line(o);
      shown++;
    }
    fflush(stdout);
    unsigned long long was = since;
    since = (unsigned long long)json_integer_value(next);
    size_t n = json_array_size(lines);
    json_decref(body);
    /* Nothing at all is an answer too, said once (stdout stays the
     * lines'). */
    if (!shown && !said_none && (follow || n == 0 || since == was)) {
      fprintf(stderr, "nno: no log lines yet for %s %s of platform %s%s\n",
              package ? "package" : own ? "project" : "platform",
              package ? package : own ? own : platform, platform,
              follow ? " (waiting for them)" : "");
      said_none = 1;
    }
    /* Without --follow: until a page brings nothing new. */
    if (!follow && (n == 0 || since == was)) break;
  }
  if (c.curl) curl_easy_cleanup(c.curl);
  return rc;
}
