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
#include "cli/cli.h"
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

static int fail(const char *msg, const char *hint) {
  fprintf(stderr, "nno: %s\n", msg);
  if (hint) fprintf(stderr, "hint: %s\n", hint);
  return 2;
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
          "connections.\n"
          "\n"
          "Example:\n"
          "  nno serve --listen 0.0.0.0:8080 --data /var/lib/nno --workers 4\n"
          "  nno serve --check --config /etc/nno/nno.json\n\n");
  config_print_help();
}

static void usage_version(FILE *f) {
  fprintf(f,
          "usage: nno version [--json]\n"
          "\n"
          "Prints the version of nno and the plugin ABI it loads.\n"
          "\n"
          "  --json   as {\"version\", \"abi\"}\n"
          "\n"
          "Example:\n"
          "  nno version --json\n");
}

static int cmd_version(int argc, char **argv) {
  int json = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage_version(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--json")) {
      char msg[128];
      snprintf(msg, sizeof msg, "version: unknown option '%.64s'", argv[i]);
      return fail(msg, "run 'nno version --help' for the options");
    }
    json = 1;
  }
  if (json)
    printf("{\"version\":\"%s\",\"abi\":\"%d.%d\"}\n", NNO_VERSION,
           NNO_ABI_MAJOR, NNO_ABI_MINOR);
  else
    printf("nno %s (plugin ABI %d.%d)\n", NNO_VERSION, NNO_ABI_MAJOR,
           NNO_ABI_MINOR);
  return 0;
}

static int load_config(nno_config *c, char *err) {
  config_defaults(c, exe_dir);
  if (config_path && config_apply_file(c, config_path, err)) return -1;
  if (config_apply_env(c, err)) return -1;
  for (int i = 0; i < nflags; i++)
    if (config_set(c, flags[i].key, flags[i].value, err)) return -1;
  return config_validate(c, err);
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
  /* Hidden: a worker's sandbox process for one stack and platform. */
  if (argc >= 2 && !strcmp(argv[1], "sandbox"))
    return sbx_child_main(argc - 2, argv + 2);
  /* The kernel's own commands; every other one is the client's. */
  const char *cmd = argc >= 2 ? argv[1] : "";
  if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
  if (!strcmp(cmd, "--version")) return cmd_version(0, NULL);
  if (!strcmp(cmd, "version")) return cmd_version(argc - 2, argv + 2);
  if (!strcmp(cmd, "help") && argc == 3 && !strcmp(argv[2], "serve")) {
    usage_serve(stdout);
    return 0;
  }
  if (!strcmp(cmd, "help") && argc == 3 && !strcmp(argv[2], "version")) {
    usage_version(stdout);
    return 0;
  }
  return cli_main(argc - 1, argv + 1, exe_dir);
}
