/* nno: the command-line entry point. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nno/plugin.h>

#include "stack_archive.h"
#include "cli.h"
#include "cli/login.h"
#include "cli/project.h"
#include "cli_stack_local.h"
#include "cli_check.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "master.h"
#include "sbx_child.h"
#include "trust.h"

static char exe_dir[PATH_MAX];
static const char *config_path;
/* Flags, kept as key/value pairs so a reload re-applies them last. */
static struct {
  const char *key, *value;
} flags[32];
static int nflags;

static void usage(FILE *f) {
  fprintf(f,
          "usage: nno COMMAND [OPTIONS]\n"
          "\n"
          "Commands:\n"
          "  serve            run the host (master + workers)\n"
          "  check-package D  check a package folder as the loader would\n"
          "  stack check D|F  check a stack folder or archive (--json)\n"
          "  version          print the version and plugin ABI\n"
          "  help [COMMAND]   show help for a command\n");
  cli_stack_local_summary(f);
  fprintf(f, "\nOperator commands (HTTP clients of a running host):\n");
  cli_usage_summary(f);
  fprintf(f, "\nRun 'nno COMMAND --help' for a command's options.\n");
}

static void usage_serve(FILE *f) {
  fprintf(f,
          "usage: nno serve [--listen HOST:PORT] [--data DIR] [--workers N]\n"
          "                 [--config FILE] [--set KEY=VALUE]... [--check]\n"
          "\n"
          "Runs the host: a master that supervises N worker processes, each\n"
          "serving HTTP on HOST:PORT with the core plugins and stacks loaded.\n"
          "\n"
          "  --listen HOST:PORT  address to accept on (default 127.0.0.1:8080)\n"
          "  --data DIR          data directory (default ./var)\n"
          "  --workers N         worker processes (default: number of cores)\n"
          "  --config FILE       JSON configuration file (also NNO_CONFIG)\n"
          "  --set KEY=VALUE     set any configuration key, e.g.\n"
          "                      --set limits.max_body_bytes=65536\n"
          "  --check             validate configuration, core plugins and stacks,\n"
          "                      then exit\n"
          "\n"
          "Precedence: defaults < config file < NNO_* environment < flags.\n"
          "Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the\n"
          "configuration and plugins with new workers, without dropping\n"
          "connections.\n\n");
  config_print_help();
}

static int load_config(nno_config *c, char *err) {
  config_defaults(c, exe_dir);
  if (config_path && config_apply_file(c, config_path, err)) return -1;
  if (config_apply_env(c, err)) return -1;
  for (int i = 0; i < nflags; i++)
    if (config_set(c, flags[i].key, flags[i].value, err)) return -1;
  return config_validate(c, err);
}

static int fail(const char *msg, const char *hint) {
  fprintf(stderr, "nno: %s\n", msg);
  if (hint) fprintf(stderr, "hint: %s\n", hint);
  return 2;
}

static int add_flag(const char *key, const char *value) {
  if (nflags == (int)(sizeof flags / sizeof flags[0])) return -1;
  flags[nflags].key = key;
  flags[nflags].value = value;
  nflags++;
  return 0;
}

static int cmd_serve(int argc, char **argv) {
  int check = 0;
  config_path = getenv("NNO_CONFIG");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage_serve(stdout);
      return 0;
    } else if (!strcmp(a, "--check")) {
      check = 1;
      continue;
    }
    const char *key = !strcmp(a, "--listen")  ? "listen"
                      : !strcmp(a, "--data")    ? "data"
                      : !strcmp(a, "--workers") ? "workers"
                                                : NULL;
    if (!key && strcmp(a, "--config") && strcmp(a, "--set")) {
      char msg[256];
      snprintf(msg, sizeof msg, "serve: unknown option '%.64s'", a);
      return fail(msg, "run 'nno serve --help' for the options");
    }
    if (!v) {
      char msg[256];
      snprintf(msg, sizeof msg, "serve: option '%s' needs a value", a);
      return fail(msg, "run 'nno serve --help' for the options");
    }
    i++;
    if (!strcmp(a, "--config")) {
      config_path = v;
    } else if (!strcmp(a, "--set")) {
      static char kv[32][512];
      static int nkv;
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || nkv == 32 || strlen(v) >= sizeof kv[0])
        return fail("serve: --set needs KEY=VALUE",
                    "e.g. --set limits.max_body_bytes=65536");
      snprintf(kv[nkv], sizeof kv[nkv], "%s", v);
      kv[nkv][eq - v] = '\0';
      if (add_flag(kv[nkv], kv[nkv] + (eq - v) + 1))
        return fail("serve: too many options", NULL);
      nkv++;
    } else if (add_flag(key, v)) {
      return fail("serve: too many options", NULL);
    }
  }
  nno_config *cfg = malloc(sizeof *cfg);
  if (!cfg) return fail("out of memory", NULL);
  char err[CONFIG_ERR_MAX];
  if (load_config(cfg, err) != 0) {
    free(cfg);
    char msg[CONFIG_ERR_MAX + 32];
    snprintf(msg, sizeof msg, "invalid configuration: %s", err);
    return fail(msg, "run 'nno serve --help' for every key and its bounds");
  }
  /* The data folder holds core.db, the keys and every platform's data:
   * a folder someone else may write is refused before anything runs. */
  char terr[PATH_MAX + 256];
  int unsafe = trust_data_dir(cfg->data_dir, terr, sizeof terr);
  if (unsafe && !check) {
    fprintf(stderr, "nno: refusing the data folder: %s\n", terr);
    free(cfg);
    return 1;
  }
  if (check) {
    log_init("check", (int)cfg->log_level);
    int problems = loader_check_all(cfg);
    {
      /* The keyring an install will verify against, read as it will be. */
      archive_keyring kr;
      char kerr[PATH_MAX + 512];
      if (archive_keyring_load(cfg->trusted_keys, &kr, kerr, sizeof kerr)) {
        fprintf(stderr, "error: %s\n", kerr);
        problems++;
      }
    }
    if (unsafe) {
      fprintf(stderr, "error: refusing the data folder: %s\n", terr);
      problems++;
    }
    free(cfg);
    if (problems) {
      fprintf(stderr, "nno: %d problem%s found\n", problems,
              problems == 1 ? "" : "s");
      return 1;
    }
    printf("configuration ok\n");
    return 0;
  }
  /* The core plugins, as --check sees them: one that is missing or would
   * not load stops the start here, with the loader's own words. (The
   * workers check again, for a reload and for what only init finds.) */
  char lerr[LOADER_ERR_MAX];
  if (loader_check_core(cfg, NULL, lerr, sizeof lerr) != 0) {
    fprintf(stderr, "nno: %s\n", lerr);
    fprintf(stderr,
            "hint: 'nno serve --check' lists every problem; "
            "core_plugins names the core plugins this host must load "
            "(empty for development, with no authentication)\n");
    free(cfg);
    return 1;
  }
  return master_run(cfg, load_config);
}

int main(int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    snprintf(exe_dir, sizeof exe_dir, "%s", dirname(self));
  } else {
    snprintf(exe_dir, sizeof exe_dir, ".");
  }
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  /* Hidden: a worker's sandbox process for one stack and platform. */
  if (!strcmp(argv[1], "sandbox")) return sbx_child_main(argc - 2, argv + 2);
  /* `stack check` is local (no host needed); other stack commands are the
   * operator's. */
  if (argc > 2 && !strcmp(argv[1], "stack") && !strcmp(argv[2], "check"))
    return cli_stack_check(argc - 3, argv + 3, exe_dir);
  /* Local stack commands (archives), before the operator commands of the
   * same group. */
  if (argc >= 3 && !strcmp(argv[1], "stack") &&
      cli_stack_local_claims(argv[2]))
    return cli_stack_local_main(argc - 2, argv + 2);
  /* The developer's commands (local; deploy and logs use `nno login`'s
   * credentials, not the operator key). */
  if (!strcmp(argv[1], "project"))
    return cli_project_main(argc - 2, argv + 2, exe_dir);
  if (!strcmp(argv[1], "login")) return cli_login_main(argc - 2, argv + 2, exe_dir);
  if (!strcmp(argv[1], "device"))
    return cli_device_main(argc - 2, argv + 2, exe_dir);
  if (!strcmp(argv[1], "logout"))
    return cli_logout_main(argc - 2, argv + 2, exe_dir);
  /* Operator commands, global options possibly first. */
  if (cli_claims(argc - 1, argv + 1)) return cli_main(argc - 1, argv + 1);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
      (!strcmp(cmd, "help") && argc == 2)) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "help")) {
    if (!strcmp(argv[2], "serve")) usage_serve(stdout);
    else if (!strcmp(argv[2], "check-package"))
      cli_check_usage_package(stdout);
    else if (argc > 3 && !strcmp(argv[2], "stack") &&
             !strcmp(argv[3], "check"))
      cli_check_usage_stack(stdout);
    else if (argc >= 4 && !strcmp(argv[2], "stack") &&
             cli_stack_local_claims(argv[3]))
      return cli_stack_local_main(2, (char *[]){argv[3], "--help"});
    else if (cli_claims(argc - 2, argv + 2))
      return cli_help(argc - 2, argv + 2);
    else usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("nno %s (plugin ABI %d.%d)\n", NNO_VERSION, NNO_ABI_MAJOR,
           NNO_ABI_MINOR);
    return 0;
  }
  if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
  if (!strcmp(cmd, "check-package"))
    return cli_check_package(argc - 2, argv + 2, exe_dir);
  char msg[128];
  snprintf(msg, sizeof msg, "unknown command '%.32s'", cmd);
  return fail(msg, "run 'nno --help' for the commands");
}
