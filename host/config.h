/* Host configuration: defaults < JSON file < NNO_* environment < flags.
 *
 * Every key is described once in a table (config.c) with its type, bounds,
 * environment variable and offset, so the file loader, the environment,
 * `nno serve --check` and `nno serve --help` share one definition. */
#ifndef NNO_HOST_CONFIG_H
#define NNO_HOST_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_STACK_DIRS 16
#define CONFIG_MAX_CORE_PLUGINS 16
#define CONFIG_NAME_MAX 64 /* a package name: [a-z][a-z0-9-]{0,63} */
#define CONFIG_ERR_MAX 512
/* The most bytes of plugin_config, as compact JSON. */
#define CONFIG_PLUGIN_CONFIG_MAX 16384
/* The least memory ceiling (limits.worker_max_rss_mb, overload.max_rss_mb)
 * accepted: a worker alone needs about this much. */
#define CONFIG_MIN_RSS_MB 32

typedef struct nno_config {
  char listen_host[256];
  int listen_port;
  char data_dir[PATH_MAX];
  int64_t workers;
  char base_domain[254];
  /* limits */
  int64_t max_header_bytes;
  int64_t max_field_bytes; /* one line of the head (capped by the above) */
  int64_t max_headers;
  int64_t max_body_bytes;
  int64_t header_timeout_ms;
  int64_t body_timeout_ms;
  int64_t upload_timeout_ms; /* one upload route's whole body */
  int64_t idle_timeout_ms;
  int64_t max_connections; /* per worker */
  int64_t max_response_bytes;
  int64_t rate_buckets; /* slots of the shared rate-limit table */
  int64_t meter_slots;  /* slots of the shared meter table (meter.h) */
  int64_t log_ring_bytes; /* the shared log ring (logring.h), 0: none */
  /* Unsent output: a connection past conn_output_bytes, or holding any
   * while the worker is past worker_output_bytes, reads and parses no
   * further request until it drains. */
  int64_t conn_output_bytes;
  int64_t worker_output_bytes;
  /* Request bodies a worker holds (received, or waiting for their answer):
   * a request that would take it past this bound is answered 503. At least
   * max_body_bytes. */
  int64_t worker_input_bytes;
  int64_t drain_timeout_ms;
  /* logs */
  int64_t log_level;
  int access_log;
  char access_file[PATH_MAX]; /* "" : access lines on stderr */
  /* plugins */
  char plugin_dir[PATH_MAX];
  int builtin_stacks; /* also serve the stacks installed beside the binary */
  char builtin_stack_dir[PATH_MAX];
  char stacks_dirs[CONFIG_MAX_STACK_DIRS][PATH_MAX];
  size_t nstacks_dirs;
  /* Core plugins that must be in plugin_dir and load, or the host does not
   * serve: those that enforce policy (authentication...), without which
   * it would serve what they guard. Default: the core plugins this build
   * installs (NNO_CORE_PLUGINS_DEFAULT, from CMake). Empty: none required
   * (development; the kernel's own tests). */
  char core_plugins[CONFIG_MAX_CORE_PLUGINS][CONFIG_NAME_MAX + 1];
  size_t ncore_plugins;
  /* stack archives: trust, bounds, installs from URLs, checks */
  char trusted_keys[PATH_MAX]; /* "" : unsigned archives are accepted */
  int64_t stack_max_archive_bytes;
  int64_t stack_max_unpacked_bytes;
  int64_t stack_max_entry_bytes;
  int64_t stack_max_entries;
  int64_t stack_max_ratio;
  int stack_fetch_allow_private;
  int64_t stack_fetch_timeout_ms;
  int64_t stack_check_timeout_ms;
  /* versions of its own stack a platform's key may have installed */
  int64_t stack_max_owned_versions;
  /* outbound HTTP from packages */
  int64_t fetch_timeout_ms;
  int64_t fetch_max_bytes;
  int64_t fetch_max_concurrent;
  /* containment: isolation of stacks, sandbox budgets, quarantine */
  char sandbox_mode[16];        /* "sandbox" or "inprocess": stacks neither
                                   builtin nor named below */
  char sandbox_inprocess[1024]; /* stack ids run in-process, "a,b" */
  char sandbox_sandboxed[1024]; /* stack ids always sandboxed (wins) */
  int64_t sandbox_wall_ms;      /* per request: default budgets ... */
  int64_t sandbox_cpu_ms;
  int64_t sandbox_memory_mb;    /* ... per sandbox (RSS) */
  char sandbox_plans[2048];     /* "plan:wall/cpu/mem,..." per plan */
  int64_t sandbox_max_per_worker;
  int64_t sandbox_idle_ms;
  int64_t sandbox_spawn_timeout_ms;
  int64_t sandbox_crash_limit;     /* K crashes ... */
  int64_t sandbox_crash_window_ms; /* ... within T quarantine */
  int64_t sandbox_quarantine_ms;   /* first backoff; doubles per level */
  int64_t sandbox_cpu_outside_pct; /* share of a core a sandbox may burn
                                      outside its callbacks, over a second
                                      or more, before it is killed */
  int64_t sandbox_poll_us; /* the longest poll of a sandbox for its next
                            * request, and of its worker for the answer,
                            * before sleeping (0: they sleep at once) */
  /* the loop watchdog, memory ceiling, overload shedding (0: off) */
  int64_t watchdog_stall_ms;
  int64_t watchdog_hard_ms;
  int64_t worker_max_rss_mb;
  int64_t overload_max_connections;
  int64_t overload_max_rss_mb;
  int64_t overload_max_lag_ms;
  /* plugin_config: {"plugin": {"key": value, ...}, ...} as compact JSON,
   * "" when none: each object's keys replace those of that core plugin's
   * manifest "config" (config_plugin_config). Sources merge plugin by
   * plugin, key by key, later ones winning. May hold secrets: never
   * printed or logged. */
  char plugin_config[CONFIG_PLUGIN_CONFIG_MAX];
} nno_config;

/* The budgets of a plan (sandbox.plans), or the defaults. */
typedef struct config_budget {
  int64_t wall_ms, cpu_ms, memory_mb;
} config_budget;

/* Fill defaults. `exe_dir` is the folder of the nno executable: plugins and
 * stacks are looked up in exe_dir/../lib/nno/plugins and
 * exe_dir/../share/nno/stacks (true both in the build tree and installed). */
void config_defaults(nno_config *c, const char *exe_dir);

/* Apply a JSON file. Unknown keys are errors (typos must not pass
 * silently). Returns 0, or -1 with a one-line message in err. */
int config_apply_file(nno_config *c, const char *path, char *err);
/* The same for JSON text in memory; `what` names it in messages. */
int config_apply_json(nno_config *c, const char *json, size_t len,
                      const char *what, char *err);
/* Apply NNO_* variables from the environment. */
int config_apply_env(nno_config *c, char *err);
/* Apply one setting by its config key ("limits.max_body_bytes") from text,
 * as flags and the environment give it. */
int config_set(nno_config *c, const char *key, const char *value, char *err);
/* Every key of `c` as one JSON object of dotted keys
 * ({"limits.max_body_bytes":1048576,...}) that config_apply_json reads
 * back to the same values: the whole configuration, however it was given,
 * for a process that must decide as this one does (the check an install
 * runs). OWNERSHIP: malloc'd, the caller frees it; NULL when out of memory. */
char *config_to_json(const nno_config *c);
/* Cross-field checks after everything is applied. */
int config_validate(const nno_config *c, char *err);

/* The value of numeric or boolean key `key`: 0, -1 when unknown, -2 when
 * it is not a number or a boolean. */
int config_get_int(const nno_config *c, const char *key, int64_t *out);

/* How stack `id` runs (NNO_ISOLATION_INPROCESS or NNO_ISOLATION_SANDBOX):
 * named in sandbox.sandboxed: sandbox; named in sandbox.inprocess, or
 * `builtin` (found beside the binary): in-process; else sandbox.mode. */
int config_isolation(const nno_config *c, const char *id, int builtin);
/* The budgets for `plan` (NULL or "": the defaults; a plan that
 * sandbox.plans does not name: the defaults). */
config_budget config_plan_budget(const nno_config *c, const char *plan);

/* The "config" of core plugin `name` as the plugin reads it
 * (plugin_config): `manifest_json` (its manifest's "config", an object)
 * with the top-level keys plugin_config gives it replaced. 0 with *out
 * NULL when plugin_config says nothing of it (use the manifest's), or
 * *out the merged text (OWNERSHIP: jansson's allocator, as a manifest's
 * config_json: the caller frees it with jansson's free); -1 with err set
 * (out of memory, or a manifest config that is not an object). The one
 * merge the loader, every check and the install check use. */
int config_plugin_config(const nno_config *c, const char *name,
                         const char *manifest_json, char **out, char *err);
/* 0 when every plugin plugin_config names is among the `n` `names` (the
 * core plugins found in plugin_dir), else -1 with err naming the first
 * that is not. */
int config_plugin_names(const nno_config *c, const char *const *names,
                        size_t n, char *err);

/* Print every key with its type, default, bounds and variable. */
void config_print_help(void);

#endif
