/* The client's dispatch: parses `nno [GLOBAL...] GROUP [SUB] ARGS...`
 * against the command groups (one file each), prints help, resolves the host
 * URL and where the key comes from, and runs the command. */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "login.h"
#include "project.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

/* -- the developer's commands (project.h) --------------------------------- */

/* clang-format off */
static const cli_command project_commands[] = {
    {"project", "init",
     .synopsis = "project init NAME [--template minimal|crud]",
     .opts = {"template="}, .local = cli_project_main,
     .help = "Makes the project folder NAME from a template installed with\n"
             "nno: package.json, stack.json, a Makefile, src/, migrations/,\n"
             "ui/, tests/, a README and a .gitignore.\n\n"
             "  --template T   minimal (a route, the default) or crud (a\n"
             "                 resource on sql, filtered by tenant)\n",
     .example = "  nno project init shop --template crud\n"},
    {"project", "build",
     .synopsis = "project build",
     .local = cli_project_main,
     .help = "Builds the project with release flags and packs it into\n"
             "dist/{id}-{version}.tar.gz (the same bytes every time). Prints\n"
             "\"SHA256  PATH\".\n",
     .example = "  cd shop && nno project build\n"},
    {"project", "dev",
     .synopsis = "project dev [--port N] [--no-watch]",
     .opts = {"port=", "no-watch"},
     .local = cli_project_main,
     .help = "Builds, starts a local host (data in .nno/dev, a free port)\n"
             "with a user_project platform and a key for it, prints the URLs\n"
             "and the key, then rebuilds on every save: a good build is\n"
             "swapped in without dropping requests, a broken one shows the\n"
             "compiler's errors while the old version keeps serving. The\n"
             "package's logs are streamed. Ctrl-C stops the host.\n\n"
             "  --port N     serve on 127.0.0.1:N (default: a free port)\n"
             "  --no-watch   serve the first build, without rebuilding\n",
     .example = "  cd shop && nno project dev\n"},
    {"project", "test",
     .synopsis = "project test",
     .local = cli_project_main,
     .help = "Builds, starts a host as dev does (a temporary data folder) and\n"
             "runs each executable in tests/ with NNO_URL, NNO_KEY,\n"
             "NNO_PLATFORM and NNO_BASE set. Exit 1 when any test fails.\n",
     .example = "  cd shop && nno project test\n"},
    {"project", "deploy",
     .synopsis = "project deploy [--url URL]",
     .opts = {"url="}, .local = cli_project_main,
     .help = "Builds, uploads the archive to the host 'nno login' signed in\n"
             "to and activates it on the developer's platform. Prints the\n"
             "version and the URL.\n\n"
             "  --url URL   the host (default: the one logged in to)\n",
     .example = "  nno project deploy --url https://nno.example.com\n"},
    {"project", "logs",
     .synopsis = "project logs [--follow]",
     .opts = {"follow"}, .local = cli_project_main,
     .help = "Prints the recent log lines of the project's package on the\n"
             "host it was deployed to.\n\n"
             "  --follow   keep printing new lines\n",
     .example = "  nno project logs --follow\n"},
    {"project", "env",
     .synopsis = "project env",
     .local = cli_project_main,
     .help = "Prints the PKG_CONFIG_PATH that finds this nno's nno-plugin.pc,\n"
             "for building the package by hand.\n",
     .example = "  eval \"$(nno project env)\" && make\n"},
};

static const cli_command login_commands[] = {
    {"login", NULL, 1, 1, .synopsis = "login URL [--platform P]",
     .opts = {"platform="}, .local = cli_login_main,
     .help = "Signs in to the host at URL with a device code: prints a code\n"
             "and the page of the platform's console that approves it (for\n"
             "an operator or the platform's admin), then waits. The session\n"
             "is kept in\n"
             "$XDG_CONFIG_HOME/nno/credentials.json (mode 0600).\n\n"
             "  --platform P   the platform to sign in to\n",
     .example = "  nno login https://nno.example.com --platform shop\n"},
};

static const cli_command logout_commands[] = {
    {"logout", NULL, 0, 1, .synopsis = "logout [[--url] URL] [--forget]",
     .opts = {"url=", "forget"}, .local = cli_logout_main,
     .help = "Revokes the key 'nno login' stored for URL (the only one when\n"
             "not given) on the host, and forgets it.\n\n"
             "  --url URL  the host to log out of (or URL alone)\n"
             "  --forget   forget it here even when the host cannot revoke "
             "it\n",
     .example = "  nno logout https://nno.example.com\n"},
};
/* clang-format on */

static const cli_command device_commands[] = {
    {"device", "approve", 1, 1,
     .synopsis = "device approve CODE [--platform P] [--url URL] [--key K] [--data DIR]",
     .opts = {"platform=", "url=", "key=", "data="}, .local = cli_device_main,
     .help = "Approves the code 'nno login' showed a developer: the developer's\n"
             "CLI then receives a key of the platform with your scopes, at most\n"
             "features:*, stacks:deploy, stacks:read, stacks:write and logs:read.\n"
             "The operator key (--key, NNO_KEY or DATA/operator.key) or a key of\n"
             "that platform holding keys:write may approve.\n",
     .example = "  nno device approve BCDF-GHJK --platform myapp --data /var/lib/nno\n"},
    {"device", "deny", 1, 1,
     .synopsis = "device deny CODE [--platform P] [--url URL] [--key K] [--data DIR]",
     .opts = {"platform=", "url=", "key=", "data="}, .local = cli_device_main,
     .help = "Refuses the code: the developer's 'nno login' stops with\n"
             "access_denied.\n",
     .example = "  nno device deny BCDF-GHJK --url https://nno.example.com\n"},
};

static const cli_group group_device = {
    "device", "approve or deny a developer's 'nno login' code", device_commands,
    sizeof device_commands / sizeof device_commands[0]};
static const cli_group group_project = {
    "project", "init, build, dev, test, deploy, logs: a package of your own",
    project_commands, sizeof project_commands / sizeof project_commands[0]};
static const cli_group group_login = {
    "login", "sign in to a host with a device code", login_commands, 1};
static const cli_group group_logout = {
    "logout", "forget the session of 'nno login'", logout_commands, 1};

const cli_group *const cli_groups[] = {
    &cli_group_platform,
    &cli_group_plan,
    &cli_group_tenant,
    &cli_group_key,
    &cli_group_resource,
    &cli_group_stack,
    &cli_group_audit,
    &cli_group_quarantine,
    &cli_group_usage,
    &cli_group_operator_key,
    &cli_group_check_package,
    &group_project,
    &group_login,
    &group_logout,
    &group_device,
    &cli_group_completion,
};
const size_t cli_ngroups = sizeof cli_groups / sizeof cli_groups[0];

static const cli_group *find_group(const char *s) {
  for (size_t i = 0; i < cli_ngroups; i++)
    if (!strcmp(cli_groups[i]->name, s)) return cli_groups[i];
  return NULL;
}

static int is_group(const char *s) {
  return find_group(s) != NULL;
}

static const cli_command *find(const char *group, const char *sub) {
  const cli_group *g = find_group(group);
  for (size_t i = 0; g && i < g->ncommands; i++) {
    const cli_command *k = &g->commands[i];
    if ((!sub && !k->sub) || (sub && k->sub && !strcmp(k->sub, sub))) return k;
  }
  return NULL;
}

static void help_globals(FILE *f) {
  fprintf(f,
          "\nGlobal options (before or after the command):\n"
          "  --url URL    the host (NNO_URL; default " DEFAULT_URL
          ")\n"
          "  --key KEY    the operator key (NNO_KEY; default: read\n"
          "               DATA/operator.key)\n"
          "  --data DIR   the host's data directory (NNO_DATA; default ./var)\n"
          "  --json       print the server's JSON (a list: one array of all\n"
          "               its items)\n"
          "  --help       show help\n"
          "\nExit status: 0 done, 1 API error, 2 usage error, 3 host "
          "unreachable.\n");
}

static void help_command(FILE *f, const cli_command *cmd) {
  if (cmd->usage)
    cmd->usage(f);
  else
    fprintf(f, "usage: nno %s\n\n%s", cmd->synopsis, cmd->help);
  fprintf(f, "\nExample:\n%s", cmd->example);
  if (!cmd->local) help_globals(f);
}

/* 1 if some command of `g` is sent to a host. */
static int remote_in(const cli_group *g) {
  for (size_t i = 0; i < g->ncommands; i++)
    if (!g->commands[i].local) return 1;
  return 0;
}

static void help_group(FILE *f, const cli_group *g) {
  int remote = 0;
  fprintf(f, "usage: nno %s%s\n\n%s.\n\nCommands:\n", g->name,
          g->commands[0].sub ? " COMMAND [OPTIONS]" : " [OPTIONS]", g->summary);
  for (size_t i = 0; i < g->ncommands; i++) {
    fprintf(f, "  nno %s%s\n", g->commands[i].synopsis,
            g->commands[i].local && remote_in(g) ? "  (local)" : "");
    remote |= !g->commands[i].local;
  }
  fprintf(f, "\nExample:\n");
  for (size_t i = 0; i < g->ncommands && i < 4; i++) {
    const char *e = g->commands[i].example;
    fprintf(f, "%.*s\n", (int)strcspn(e, "\n"), e);
  }
  if (g->commands[0].sub)
    fprintf(f, "\nRun 'nno %s COMMAND --help' for one command.\n", g->name);
  if (remote) help_globals(f);
}

void cli_usage(FILE *f) {
  fprintf(f,
          "usage: nno COMMAND [OPTIONS]\n"
          "\n"
          "Commands:\n"
          "  %-15s  %s\n  %-15s  %s\n  %-15s  %s\n",
          "serve", "run the host (master + workers)", "version",
          "print the version and plugin ABI", "help [COMMAND]",
          "show help for a command");
  fprintf(f,
          "\nClient commands (the operator's talk to a running host; those "
          "marked local\nneed none):\n");
  for (size_t i = 0; i < cli_ngroups; i++) {
    const cli_group *g = cli_groups[i];
    fprintf(f, "  %-15s  %s\n", g->name, g->summary);
    for (size_t k = 0; k < g->ncommands; k++)
      if (g->commands[k].local && g->commands[k].sub && remote_in(g))
        fprintf(f, "    %s %-10s local\n", g->name, g->commands[k].sub);
  }
  fprintf(f,
          "\nRun 'nno COMMAND --help' for a command's options and "
          "examples.\n");
}

/* -- parsing --------------------------------------------------------------- */

static const char *const global_values[] = {"url", "key", "data"};

static int bad_option(const char *where, const char *what, const char *s) {
  char msg[256], hint[128];
  snprintf(msg, sizeof msg, "%s: %s '%.64s'", where, what, s);
  snprintf(hint, sizeof hint, "run 'nno %s --help' for the options", where);
  return cli_usage_error(msg, hint);
}

/* A local command after global options (which it does not take). */
static int local_after_globals(const char *where) {
  char msg[128], hint[128];
  snprintf(msg, sizeof msg,
           "%s runs locally: --url, --key and --data do not apply", where);
  snprintf(hint, sizeof hint, "run 'nno %s --help' for its options", where);
  return cli_usage_error(msg, hint);
}

/* An operator command: parsed against the table, then sent. */
static int run_remote(int argc, char **argv) {
  const char *gv[3] = {0}; /* url, key, data */
  const char *group = NULL, *sub = NULL;
  const cli_command *cmd = NULL;
  int json = 0, help = 0, dashdash = 0;
  cli_args a = {0};
  char where[64] = "";

  /* --help anywhere wins over every other problem of the line. */
  for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) help = 1;

  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (!dashdash && s[0] == '-' && s[1]) {
      if (!strcmp(s, "--")) {
        dashdash = 1;
        continue;
      }
      if (!strcmp(s, "--help") || !strcmp(s, "-h")) continue;
      const char *eq = strchr(s, '=');
      char name[32];
      snprintf(name, sizeof name, "%.*s",
               (int)(eq ? (size_t)(eq - s) : strlen(s)) - 2, s + 2);
      if (strncmp(s, "--", 2) || !name[0]) {
        if (help) continue;
        return bad_option(where[0] ? where : "nno", "unknown option", s);
      }
      int gi = -1, takes = 0;
      for (int g = 0; g < 3; g++)
        if (!strcmp(name, global_values[g])) gi = g, takes = 1;
      int oi = -1, repeats = 0;
      if (gi < 0 && strcmp(name, "json") && cmd) {
        for (int k = 0; k < CLI_MAX_CMD_OPTS && cmd->opts[k]; k++) {
          size_t ln = strcspn(cmd->opts[k], "=");
          if (strlen(name) == ln && !strncmp(cmd->opts[k], name, ln))
            oi = k, takes = cmd->opts[k][ln] == '=',
            repeats = takes && cmd->opts[k][ln + 1] == '+';
        }
      }
      if (gi < 0 && oi < 0 && strcmp(name, "json")) {
        if (help) continue;
        return bad_option(where[0] ? where : "nno", "unknown option", s);
      }
      const char *v = "1";
      if (takes) {
        if (eq)
          v = eq + 1;
        else if (i + 1 < argc)
          v = argv[++i];
        else if (help)
          continue;
        else
          return bad_option(where[0] ? where : "nno", "option needs a value",
                            s);
      } else if (eq && !help) {
        return bad_option(where[0] ? where : "nno", "option takes no value", s);
      }
      if (gi >= 0) {
        gv[gi] = v;
      } else if (oi < 0) {
        json = 1;
      } else {
        for (int k = 0; k < a.nopt && !repeats; k++)
          if (a.opt[k].name == cmd->opts[oi] && !help)
            return bad_option(where, "option given twice", s);
        if (a.nopt == CLI_MAX_OPTS && !help)
          return bad_option(where, "too many options", s);
        if (a.nopt < CLI_MAX_OPTS) {
          a.opt[a.nopt].name = cmd->opts[oi];
          a.opt[a.nopt++].value = v;
        }
      }
      continue;
    }
    if (!group) {
      if (!is_group(s)) {
        char msg[96];
        snprintf(msg, sizeof msg, "unknown command '%.32s'", s);
        return cli_usage_error(msg, "run 'nno --help' for the commands");
      }
      group = s;
      snprintf(where, sizeof where, "%s", group);
      cmd = find(group, NULL);
      if (cmd && cmd->local) return local_after_globals(group);
    } else if (!cmd) {
      sub = s;
      if (!(cmd = find(group, sub))) {
        if (help) break;
        char msg[128], hint[96];
        snprintf(msg, sizeof msg, "%s: unknown command '%.32s'", group, s);
        snprintf(hint, sizeof hint, "run 'nno %s --help' for its commands",
                 group);
        return cli_usage_error(msg, hint);
      }
      snprintf(where, sizeof where, "%s %s", group, sub);
      if (cmd->local) return local_after_globals(where);
    } else if (a.npos < cmd->max_pos) {
      if (!*s && !help) {
        char msg[128];
        char hint[256];
        snprintf(msg, sizeof msg, "%s: an empty argument is not an id", where);
        snprintf(hint, sizeof hint, "usage: nno %s", cmd->synopsis);
        return cli_usage_error(msg, hint);
      }
      a.pos[a.npos++] = s;
    } else if (!help) {
      char msg[128], hint[256];
      snprintf(msg, sizeof msg, "%s: unexpected argument '%.32s'", where, s);
      snprintf(hint, sizeof hint, "usage: nno %s", cmd->synopsis);
      return cli_usage_error(msg, hint);
    }
  }
  int rc = CLI_EUSAGE;
  cli c = {.json = json};
  if (help) {
    if (cmd)
      help_command(stdout, cmd);
    else if (group)
      help_group(stdout, find_group(group));
    else
      fprintf(stdout, "usage: nno COMMAND ... (run 'nno --help')\n");
    rc = CLI_OK;
    goto done;
  }
  if (!cmd) {
    char msg[96], hint[96];
    snprintf(msg, sizeof msg, "%s: missing command", group ? group : "nno");
    snprintf(hint, sizeof hint, "run 'nno %s --help' for its commands",
             group ? group : "");
    rc = cli_usage_error(msg, hint);
    goto done;
  }
  if (a.npos < cmd->min_pos) {
    char msg[128], hint[256];
    snprintf(msg, sizeof msg, "%s: missing arguments", where);
    snprintf(hint, sizeof hint, "usage: nno %s", cmd->synopsis);
    rc = cli_usage_error(msg, hint);
    goto done;
  }
  for (int k = 0; k < CLI_MAX_CMD_OPTS && cmd->opts[k]; k++) {
    /* --name and --scopes are required where create commands take them. */
    const char *o = cmd->opts[k];
    if ((!strcmp(o, "name=") || !strcmp(o, "scopes=")) && cmd->sub &&
        !strcmp(cmd->sub, "create") &&
        !cli_opt(&a, o[0] == 'n' ? "name" : "scopes")) {
      char msg[128], hint[256];
      snprintf(msg, sizeof msg, "%s: --%.*s is required", where,
               (int)strlen(o) - 1, o);
      snprintf(hint, sizeof hint, "usage: nno %s", cmd->synopsis);
      rc = cli_usage_error(msg, hint);
      goto done;
    }
  }

  /* Where the host is. */
  const char *url = gv[0] ? gv[0] : getenv("NNO_URL");
  if (!url || !*url) url = DEFAULT_URL;
  size_t ul = strlen(url);
  while (ul > 0 && url[ul - 1] == '/') ul--;
  if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
      ul >= sizeof c.url || ul <= 8) {
    rc = cli_usage_error("the host URL must start with http:// or https://",
                         "e.g. --url http://127.0.0.1:8080 or NNO_URL");
    goto done;
  }
  snprintf(c.url, sizeof c.url, "%.*s", (int)ul, url);

  /* The key: --key, NNO_KEY, else DATA/operator.key, read by the first
   * request (so that usage errors come first). */
  const char *data = gv[2] ? gv[2] : getenv("NNO_DATA");
  c.data_given = data && *data;
  if (!c.data_given) data = "./var";
  if (snprintf(c.key_path, sizeof c.key_path, "%s/operator.key", data) >=
      (int)sizeof c.key_path) {
    rc = cli_usage_error("the data directory path is too long",
                         "pass a shorter --data or NNO_DATA");
    goto done;
  }
  c.key_arg = gv[1] ? gv[1] : getenv("NNO_KEY");
  if (c.key_arg && !*c.key_arg) c.key_arg = NULL;
  if (c.key_arg && !cli_key_ok(c.key_arg)) {
    rc = cli_usage_error(
        "the operator key (--key or NNO_KEY) has spaces or "
        "control characters",
        "pass the key as 'nno serve' wrote it");
    goto done;
  }
  if (cli_opt(&a, "limit") && cli_rows_wanted(&a, 1, where) < 0) goto done;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "nno: cannot initialise libcurl\n");
    rc = CLI_EAPI;
    goto done;
  }
  rc = cmd->run(&c, &a);
  if (c.curl) curl_easy_cleanup(c.curl);
  curl_global_cleanup();
  if (fflush(stdout) != 0 && rc == CLI_OK) rc = CLI_EAPI;
done:
  explicit_bzero(c.key, sizeof c.key);
  return rc;
}

/* The local command `nno GROUP [SUB] ...` names, or NULL. */
static const cli_command *find_local(int argc, char **argv) {
  const cli_group *g = argc > 0 ? find_group(argv[0]) : NULL;
  for (size_t i = 0; g && i < g->ncommands; i++) {
    const cli_command *k = &g->commands[i];
    if (!k->local) continue;
    if (!k->sub || (argc > 1 && !strcmp(argv[1], k->sub))) return k;
  }
  return NULL;
}

static int wants_help(int argc, char **argv) {
  for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

int cli_main(int argc, char **argv, const char *exe_dir) {
  if (argc == 0) {
    cli_usage(stderr);
    return CLI_EUSAGE;
  }
  const char *w = argv[0];
  if (!strcmp(w, "--help") || !strcmp(w, "-h") ||
      (!strcmp(w, "help") && argc == 1)) {
    cli_usage(stdout);
    return CLI_OK;
  }
  if (!strcmp(w, "help")) {
    /* `nno help GROUP [SUB]`: the same as `nno GROUP [SUB] --help`. */
    char *v[4] = {argv[1], argc > 2 ? argv[2] : NULL, NULL, NULL};
    int n = argc > 2 ? 2 : 1;
    if (argc > 3) {
      char msg[128];
      snprintf(msg, sizeof msg, "help: unexpected argument '%.32s'", argv[3]);
      return cli_usage_error(msg, "e.g. nno help stack install");
    }
    v[n++] = "--help";
    return cli_main(n, v, exe_dir);
  }
  const cli_command *lc = find_local(argc, argv);
  if (lc) {
    if (wants_help(argc, argv)) {
      help_command(stdout, lc);
      return CLI_OK;
    }
    return lc->local(argc - 1, argv + 1, exe_dir);
  }
  /* `nno GROUP --help` for a group of local commands only. */
  const cli_group *g = find_group(w);
  if (g && argc > 1 && wants_help(argc, argv) &&
      (argv[1][0] == '-' || !find(w, argv[1]))) {
    help_group(stdout, g);
    return CLI_OK;
  }
  return run_remote(argc, argv);
}

#define LIST_MAX_ROWS 100000L /* rows a list follows pages for by default */
#define AUDIT_ROWS 100L       /* audit: the newest entries by default */
#define LIMIT_MAX 10000000L
#define PAGE_MAX 500          /* the registry's largest page */
#define RESOURCE_PAGE_MAX 200 /* the provisioning plugin's largest page */

const char *cli_opt(const cli_args *a, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < a->nopt; i++)
    if (!strncmp(a->opt[i].name, name, n) &&
        (a->opt[i].name[n] == '\0' || a->opt[i].name[n] == '='))
      return a->opt[i].value;
  return NULL;
}
