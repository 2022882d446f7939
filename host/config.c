/* Configuration table and its three sources. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonv.h"
#include "log.h"
#include "logring.h"
#include "meter.h"
#include "ratelimit.h"

enum cfg_type {
  T_INT,
  T_BOOL,
  T_STR,
  T_LISTEN,
  T_LEVEL,
  T_DIRLIST,
  T_NAMELIST,
  T_PLUGINCFG /* plugin_config: merged, never printed */
};

/* The core plugins this build installs, "registry,iam": core_plugins'
 * default, written by host/CMakeLists.txt once every directory is read. */
#ifndef NNO_CORE_PLUGINS_DEFAULT
#error "NNO_CORE_PLUGINS_DEFAULT must name the core plugins this build installs"
#endif

typedef struct cfg_key {
  const char *key; /* dotted path in nno.json */
  const char *env; /* environment variable */
  enum cfg_type type;
  size_t off;
  size_t size; /* for T_STR: buffer size */
  int64_t min, max;
  const char *help;
} cfg_key;

#define OFF(f) offsetof(nno_config, f)
#define SZ(f) sizeof(((nno_config *)0)->f)

static const cfg_key keys[] = {
    {"listen", "NNO_LISTEN", T_LISTEN, 0, 0, 0, 0, "HOST:PORT to accept on"},
    {"data", "NNO_DATA", T_STR, OFF(data_dir), SZ(data_dir), 1, 0,
     "data directory"},
    {"workers", "NNO_WORKERS", T_INT, OFF(workers), 0, 1, 64,
     "worker processes (default: number of cores)"},
    {"base_domain", "NNO_BASE_DOMAIN", T_STR, OFF(base_domain),
     SZ(base_domain), 1, 0, "base domain for host-based routing"},
    {"limits.max_header_bytes", "NNO_MAX_HEADER_BYTES", T_INT,
     OFF(max_header_bytes), 0, 512, 1 << 20, "request head size (431 over)"},
    {"limits.max_field_bytes", "NNO_MAX_FIELD_BYTES", T_INT,
     OFF(max_field_bytes), 0, 256, 1 << 20,
     "one head line: 414 (request line), 431 (field)"},
    {"limits.max_headers", "NNO_MAX_HEADERS", T_INT, OFF(max_headers), 0, 8,
     1000, "header fields per request (431 over)"},
    {"limits.max_body_bytes", "NNO_MAX_BODY_BYTES", T_INT, OFF(max_body_bytes),
     0, 0, (int64_t)1 << 30, "request body size (413 over)"},
    {"limits.header_timeout_ms", "NNO_HEADER_TIMEOUT_MS", T_INT,
     OFF(header_timeout_ms), 0, 10, 3600000, "time to receive a head (408)"},
    {"limits.body_timeout_ms", "NNO_BODY_TIMEOUT_MS", T_INT,
     OFF(body_timeout_ms), 0, 10, 3600000, "time to receive a body (408)"},
    {"limits.upload_timeout_ms", "NNO_UPLOAD_TIMEOUT_MS", T_INT,
     OFF(upload_timeout_ms), 0, 10, 86400000,
     "time to receive the whole body of an upload (408)"},
    {"limits.idle_timeout_ms", "NNO_IDLE_TIMEOUT_MS", T_INT,
     OFF(idle_timeout_ms), 0, 10, 3600000, "keep-alive idle time"},
    {"limits.max_connections", "NNO_MAX_CONNECTIONS", T_INT,
     OFF(max_connections), 0, 1, 1000000, "open connections per worker (503)"},
    {"limits.max_response_bytes", "NNO_MAX_RESPONSE_BYTES", T_INT,
     OFF(max_response_bytes), 0, 1024, (int64_t)1 << 30,
     "response body a package may build"},
    {"limits.rate_buckets", "NNO_RATE_BUCKETS", T_INT, OFF(rate_buckets), 0,
     LIMIT_BUCKETS_MIN, LIMIT_BUCKETS_MAX,
     "slots of the shared rate-limit table (restart to change)"},
    {"limits.meter_slots", "NNO_METER_SLOTS", T_INT, OFF(meter_slots), 0,
     METER_SLOTS_MIN, METER_SLOTS_MAX,
     "slots of the shared meter table (restart to change)"},
    {"limits.conn_output_bytes", "NNO_CONN_OUTPUT_BYTES", T_INT,
     OFF(conn_output_bytes), 0, 4096, (int64_t)1 << 30,
     "unsent output above which a connection is not read"},
    {"limits.worker_output_bytes", "NNO_WORKER_OUTPUT_BYTES", T_INT,
     OFF(worker_output_bytes), 0, 65536, (int64_t)1 << 40,
     "unsent output of a worker above which busy connections wait"},
    {"limits.worker_input_bytes", "NNO_WORKER_INPUT_BYTES", T_INT,
     OFF(worker_input_bytes), 0, 65536, (int64_t)1 << 40,
     "request bodies a worker holds at once (503 over)"},
    {"drain_timeout_ms", "NNO_DRAIN_TIMEOUT_MS", T_INT, OFF(drain_timeout_ms),
     0, 0, 3600000, "grace for in-flight requests on stop and reload"},
    {"log.level", "NNO_LOG_LEVEL", T_LEVEL, OFF(log_level), 0, 0, 0,
     "debug | info | warn | error"},
    {"log.access", "NNO_ACCESS_LOG", T_BOOL, OFF(access_log), 0, 0, 0,
     "one line per request"},
    {"log.access_file", "NNO_ACCESS_LOG_FILE", T_STR, OFF(access_file),
     SZ(access_file), 0, 0,
     "access lines to this file (appended; reopened on SIGHUP), not stderr"},
    {"log.ring_bytes", "NNO_LOG_RING_BYTES", T_INT, OFF(log_ring_bytes), 0, 0,
     LOGRING_BYTES_MAX,
     "shared ring of recent platform log lines (the logs API; 0: off, "
     "else at least 65536; restart to change)"},
    {"plugin_dir", "NNO_PLUGIN_DIR", T_STR, OFF(plugin_dir), SZ(plugin_dir), 1,
     0, "core plugins folder"},
    {"core_plugins", "NNO_CORE_PLUGINS", T_NAMELIST, 0, 0, 0, 0,
     "core plugins that must load (env: ','-separated, not empty)"},
    {"plugin_config", "NNO_PLUGIN_CONFIG", T_PLUGINCFG, 0, 0, 0, 0,
     "JSON object: core plugin name -> keys replacing those of its "
     "manifest's \"config\" (may hold secrets: never printed)"},
    {"builtin_stacks", "NNO_BUILTIN_STACKS", T_BOOL, OFF(builtin_stacks), 0, 0,
     0, "serve the stacks installed beside nno"},
    {"stacks_dirs", "NNO_STACKS_DIRS", T_DIRLIST, 0, 0, 0, 0,
     "extra stack folders (env: ':'-separated)"},
    {"stacks.trusted_keys", "NNO_TRUSTED_KEYS", T_STR, OFF(trusted_keys),
     SZ(trusted_keys), 0, 0,
     "file of Ed25519 public keys (one per line): archives must be signed "
     "by one"},
    {"stacks.max_archive_bytes", "NNO_STACK_MAX_ARCHIVE_BYTES", T_INT,
     OFF(stack_max_archive_bytes), 0, 1024, (int64_t)1 << 34,
     "stack archive size (413 over)"},
    {"stacks.max_unpacked_bytes", "NNO_STACK_MAX_UNPACKED_BYTES", T_INT,
     OFF(stack_max_unpacked_bytes), 0, 1024, (int64_t)1 << 36,
     "stack archive: total size of its files"},
    {"stacks.max_entry_bytes", "NNO_STACK_MAX_ENTRY_BYTES", T_INT,
     OFF(stack_max_entry_bytes), 0, 1024, (int64_t)1 << 34,
     "stack archive: size of one file"},
    {"stacks.max_entries", "NNO_STACK_MAX_ENTRIES", T_INT,
     OFF(stack_max_entries), 0, 1, 1000000, "stack archive: entries"},
    {"stacks.max_ratio", "NNO_STACK_MAX_RATIO", T_INT, OFF(stack_max_ratio), 0,
     2, 100000, "stack archive: unpacked size / archive size"},
    {"stacks.fetch_allow_private", "NNO_STACK_FETCH_ALLOW_PRIVATE", T_BOOL,
     OFF(stack_fetch_allow_private), 0, 0, 0,
     "install from loopback, link-local and private addresses"},
    {"stacks.fetch_timeout_ms", "NNO_STACK_FETCH_TIMEOUT_MS", T_INT,
     OFF(stack_fetch_timeout_ms), 0, 100, 3600000,
     "install from a URL: maximum time"},
    {"stacks.max_owned_versions", "NNO_STACK_MAX_OWNED_VERSIONS", T_INT,
     OFF(stack_max_owned_versions), 0, 1, 1000,
     "installed versions a platform's key may hold of its own stack (409 "
     "over)"},
    {"stacks.check_timeout_ms", "NNO_STACK_CHECK_TIMEOUT_MS", T_INT,
     OFF(stack_check_timeout_ms), 0, 100, 600000,
     "time a package's init may take in a check"},
    {"fetch.timeout_ms", "NNO_FETCH_TIMEOUT_MS", T_INT, OFF(fetch_timeout_ms),
     0, 10, 600000, "outbound HTTP: maximum time"},
    {"fetch.max_bytes", "NNO_FETCH_MAX_BYTES", T_INT, OFF(fetch_max_bytes), 0,
     1024, (int64_t)1 << 30, "outbound HTTP: maximum response"},
    {"fetch.max_concurrent", "NNO_FETCH_MAX_CONCURRENT", T_INT,
     OFF(fetch_max_concurrent), 0, 1, 10000, "outbound HTTP per worker"},
    {"sandbox.mode", "NNO_SANDBOX_MODE", T_STR, OFF(sandbox_mode),
     SZ(sandbox_mode), 1, 0,
     "isolation of stacks neither builtin nor named: sandbox|inprocess"},
    {"sandbox.inprocess", "NNO_SANDBOX_INPROCESS", T_STR,
     OFF(sandbox_inprocess), SZ(sandbox_inprocess), 0, 0,
     "stack ids run in-process (trusted), comma-separated"},
    {"sandbox.sandboxed", "NNO_SANDBOX_SANDBOXED", T_STR,
     OFF(sandbox_sandboxed), SZ(sandbox_sandboxed), 0, 0,
     "stack ids always sandboxed, builtin ones too, comma-separated"},
    {"sandbox.wall_ms", "NNO_SANDBOX_WALL_MS", T_INT, OFF(sandbox_wall_ms), 0,
     10, 3600000, "per request: wall-clock budget (504 past it)"},
    {"sandbox.cpu_ms", "NNO_SANDBOX_CPU_MS", T_INT, OFF(sandbox_cpu_ms), 0, 10,
     3600000, "per request in a sandbox: CPU budget (503 past it)"},
    {"sandbox.memory_mb", "NNO_SANDBOX_MEMORY_MB", T_INT,
     OFF(sandbox_memory_mb), 0, 8, 65536,
     "per sandbox: resident memory budget (503 and recycled past it)"},
    {"sandbox.plans", "NNO_SANDBOX_PLANS", T_STR, OFF(sandbox_plans),
     SZ(sandbox_plans), 0, 0,
     "budgets per plan: \"plan:wall_ms/cpu_ms/memory_mb,...\""},
    {"sandbox.max_per_worker", "NNO_SANDBOX_MAX_PER_WORKER", T_INT,
     OFF(sandbox_max_per_worker), 0, 1, 4096,
     "sandbox processes per worker (one per stack version and platform)"},
    {"sandbox.idle_ms", "NNO_SANDBOX_IDLE_MS", T_INT, OFF(sandbox_idle_ms), 0,
     100, 86400000, "a sandbox idle this long is stopped"},
    {"sandbox.spawn_timeout_ms", "NNO_SANDBOX_SPAWN_TIMEOUT_MS", T_INT,
     OFF(sandbox_spawn_timeout_ms), 0, 100, 600000,
     "time a sandbox may take to load its stack"},
    {"sandbox.crash_limit", "NNO_SANDBOX_CRASH_LIMIT", T_INT,
     OFF(sandbox_crash_limit), 0, 1, 1000,
     "crashes of a package version on a platform that quarantine it"},
    {"sandbox.crash_window_ms", "NNO_SANDBOX_CRASH_WINDOW_MS", T_INT,
     OFF(sandbox_crash_window_ms), 0, 100, 86400000,
     "... counted within this window"},
    {"sandbox.quarantine_ms", "NNO_SANDBOX_QUARANTINE_MS", T_INT,
     OFF(sandbox_quarantine_ms), 0, 100, 86400000,
     "first quarantine; doubles with each repeat, at most an hour"},
    {"sandbox.cpu_outside_pct", "NNO_SANDBOX_CPU_OUTSIDE_PCT", T_INT,
     OFF(sandbox_cpu_outside_pct), 0, 1, 100,
     "percent of a core a sandbox may burn outside its callbacks"},
    {"sandbox.poll_us", "NNO_SANDBOX_POLL_US", T_INT, OFF(sandbox_poll_us), 0,
     0, 1000, "longest a sandbox polls for its next request, and its worker for "
     "the answer, before sleeping"},
    {"watchdog.stall_ms", "NNO_WATCHDOG_STALL_MS", T_INT,
     OFF(watchdog_stall_ms), 0, 1, 600000,
     "a callback holding the loop longer is logged and counted"},
    {"watchdog.hard_ms", "NNO_WATCHDOG_HARD_MS", T_INT, OFF(watchdog_hard_ms),
     0, 10, 3600000, "a loop held longer gets its worker replaced"},
    {"limits.worker_max_rss_mb", "NNO_WORKER_MAX_RSS_MB", T_INT,
     OFF(worker_max_rss_mb), 0, 0, 1048576,
     "worker resident memory that recycles it (0: none, else >= 32)"},
    {"overload.max_connections", "NNO_OVERLOAD_MAX_CONNECTIONS", T_INT,
     OFF(overload_max_connections), 0, 0, 10000000,
     "open connections per worker past which requests get 503 (0: off)"},
    {"overload.max_rss_mb", "NNO_OVERLOAD_MAX_RSS_MB", T_INT,
     OFF(overload_max_rss_mb), 0, 0, 1048576,
     "worker resident memory past which requests get 503 (0: off, else >= 32)"},
    {"overload.max_lag_ms", "NNO_OVERLOAD_MAX_LAG_MS", T_INT,
     OFF(overload_max_lag_ms), 0, 0, 600000,
     "event-loop lag past which requests get 503 (0: off)"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static int set_names(nno_config *c, const char *v, char *err);

void config_defaults(nno_config *c, const char *exe_dir) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
  c->listen_port = 8080;
  snprintf(c->data_dir, sizeof c->data_dir, "./var");
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  c->workers = n > 0 ? (n > 64 ? 64 : n) : 1;
  snprintf(c->base_domain, sizeof c->base_domain, "nno.localhost");
  c->max_header_bytes = 32768;
  c->max_field_bytes = 8192;
  c->max_headers = 100;
  c->max_body_bytes = 1 << 20;
  c->header_timeout_ms = 10000;
  c->body_timeout_ms = 30000;
  c->upload_timeout_ms = 300000;
  c->idle_timeout_ms = 60000;
  c->max_connections = 10000;
  c->max_response_bytes = 16 << 20;
  c->rate_buckets = LIMIT_BUCKETS_DEFAULT;
  c->meter_slots = METER_SLOTS_DEFAULT;
  c->log_ring_bytes = LOGRING_BYTES_DEFAULT;
  c->conn_output_bytes = 256 << 10;
  c->worker_output_bytes = 32 << 20;
  c->worker_input_bytes = 64 << 20;
  c->drain_timeout_ms = 10000;
  c->log_level = NNO_LOG_INFO;
  c->access_log = 1;
  c->builtin_stacks = 1;
  snprintf(c->plugin_dir, sizeof c->plugin_dir, "%s/../lib/nno/plugins",
           exe_dir);
  snprintf(c->builtin_stack_dir, sizeof c->builtin_stack_dir,
           "%s/../share/nno/stacks", exe_dir);
  c->stack_max_archive_bytes = 256 << 20;
  c->stack_max_unpacked_bytes = (int64_t)1 << 30;
  c->stack_max_entry_bytes = 256 << 20;
  c->stack_max_entries = 10000;
  c->stack_max_ratio = 200;
  c->stack_fetch_timeout_ms = 120000;
  c->stack_check_timeout_ms = 10000;
  c->stack_max_owned_versions = 10;
  c->fetch_timeout_ms = 30000;
  c->fetch_max_bytes = 8 << 20;
  c->fetch_max_concurrent = 256;
  snprintf(c->sandbox_mode, sizeof c->sandbox_mode, "sandbox");
  c->sandbox_wall_ms = 30000;
  c->sandbox_cpu_ms = 10000;
  c->sandbox_memory_mb = 256;
  c->sandbox_max_per_worker = 64;
  c->sandbox_idle_ms = 60000;
  c->sandbox_spawn_timeout_ms = 10000;
  c->sandbox_crash_limit = 5;
  c->sandbox_crash_window_ms = 60000;
  c->sandbox_quarantine_ms = 30000;
  c->sandbox_cpu_outside_pct = 90;
  c->sandbox_poll_us = 200;
  c->watchdog_stall_ms = 100;
  c->watchdog_hard_ms = 10000;
  c->worker_max_rss_mb = 0;
  c->overload_max_connections = 0;
  c->overload_max_rss_mb = 0;
  c->overload_max_lag_ms = 0;
  /* The build's own list, of its packages' names: valid by construction. */
  char err[CONFIG_ERR_MAX];
  (void)set_names(c, NNO_CORE_PLUGINS_DEFAULT, err);
}

static const cfg_key *find_key(const char *key) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strcmp(keys[i].key, key) == 0) return &keys[i];
  return NULL;
}

int config_get_int(const nno_config *c, const char *key, int64_t *out) {
  const cfg_key *k = find_key(key);
  if (!k) return -1;
  const char *base = (const char *)c + k->off;
  if (k->type == T_INT || k->type == T_LEVEL)
    memcpy(out, base, sizeof *out);
  else if (k->type == T_BOOL)
    *out = *(const int *)(const void *)base;
  else
    return -2;
  return 0;
}

/* A decimal integer's text as an operator writes it: an optional '-' then
 * digits, nothing before them (strtoll alone would take " 5" and "+5"). */
static int decimal_start(const char *v) {
  if (*v == '-') v++;
  return *v >= '0' && *v <= '9';
}

static int set_listen(nno_config *c, const char *v, char *err) {
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v) goto bad;
  size_t hl = (size_t)(colon - v);
  const char *h = v;
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:8080 */
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl >= sizeof c->listen_host) goto bad;
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (!decimal_start(colon + 1) || errno || *end || end == colon + 1 ||
      port < 0 || port > 65535)
    goto bad;
  memcpy(c->listen_host, h, hl);
  c->listen_host[hl] = '\0';
  c->listen_port = (int)port;
  return 0;
bad:
  snprintf(err, CONFIG_ERR_MAX,
           "listen: expected HOST:PORT (e.g. 127.0.0.1:8080), got \"%.64s\"", v);
  return -1;
}

static int add_dir(nno_config *c, const char *v, size_t n, char *err) {
  if (c->nstacks_dirs >= CONFIG_MAX_STACK_DIRS) {
    snprintf(err, CONFIG_ERR_MAX, "stacks_dirs: at most %d folders",
             CONFIG_MAX_STACK_DIRS);
    return -1;
  }
  if (n == 0 || n >= PATH_MAX) {
    snprintf(err, CONFIG_ERR_MAX, "stacks_dirs: empty or too long path");
    return -1;
  }
  memcpy(c->stacks_dirs[c->nstacks_dirs], v, n);
  c->stacks_dirs[c->nstacks_dirs++][n] = '\0';
  return 0;
}

/* A package name, as manifests have them: [a-z][a-z0-9-]{0,63}. */
static int name_ok(const char *s, size_t n) {
  if (n == 0 || n > CONFIG_NAME_MAX || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

static int add_name(nno_config *c, const char *v, size_t n, char *err) {
  if (!name_ok(v, n)) {
    snprintf(err, CONFIG_ERR_MAX,
             "core_plugins: expected plugin names "
             "matching [a-z][a-z0-9-]{0,63}, got \"%.*s\"",
             (int)(n > 64 ? 64 : n), v);
    return -1;
  }
  for (size_t i = 0; i < c->ncore_plugins; i++)
    if (strlen(c->core_plugins[i]) == n && !memcmp(c->core_plugins[i], v, n))
      return 0;
  if (c->ncore_plugins >= CONFIG_MAX_CORE_PLUGINS) {
    snprintf(err, CONFIG_ERR_MAX, "core_plugins: at most %d names",
             CONFIG_MAX_CORE_PLUGINS);
    return -1;
  }
  memcpy(c->core_plugins[c->ncore_plugins], v, n);
  c->core_plugins[c->ncore_plugins++][n] = '\0';
  return 0;
}

/* "registry,iam" (an empty string: no names). */
static int set_names(nno_config *c, const char *v, char *err) {
  c->ncore_plugins = 0;
  while (*v) {
    const char *e = strchr(v, ',');
    size_t n = e ? (size_t)(e - v) : strlen(v);
    if (add_name(c, v, n, err)) return -1;
    v += n + (e ? 1 : 0);
  }
  return 0;
}

static const char *json_kind(const json_t *v);

/* Merge `obj` (plugin name -> object) into c->plugin_config, key by key.
 * Messages name key paths, never values: they may be secrets. */
static int merge_plugin_config(nno_config *c, json_t *obj, char *err) {
  json_t *cur = c->plugin_config[0]
                    ? json_loads(c->plugin_config, 0, NULL)
                    : json_object();
  int rc = -1;
  const char *name;
  json_t *v;
  if (!cur) goto oom;
  json_object_foreach(obj, name, v) {
    if (!name_ok(name, strlen(name))) {
      snprintf(err, CONFIG_ERR_MAX,
               "plugin_config: expected plugin names matching "
               "[a-z][a-z0-9-]{0,63} as keys, got \"%.64s\"",
               name);
      goto done;
    }
    if (!json_is_object(v)) {
      snprintf(err, CONFIG_ERR_MAX,
               "plugin_config.%s: expected an object, got %s", name,
               json_kind(v));
      goto done;
    }
    json_t *dst = json_object_get(cur, name);
    if (!dst) {
      dst = json_object();
      if (!dst || json_object_set_new(cur, name, dst) != 0) goto oom;
    }
    if (json_object_update(dst, v) != 0) goto oom;
  }
  char *text = json_dumps(cur, JSON_COMPACT);
  if (!text) goto oom;
  size_t n = strlen(text);
  if (n >= sizeof c->plugin_config) {
    snprintf(err, CONFIG_ERR_MAX, "plugin_config: more than %d bytes of JSON",
             CONFIG_PLUGIN_CONFIG_MAX - 1);
  } else {
    memcpy(c->plugin_config, text, n + 1);
    rc = 0;
  }
  free(text);
  goto done;
oom:
  snprintf(err, CONFIG_ERR_MAX, "plugin_config: out of memory");
done:
  json_decref(cur);
  return rc;
}

/* plugin_config from text (the environment, --set). */
static int set_plugin_config(nno_config *c, const char *v, char *err) {
  json_error_t je;
  json_t *obj = json_loads(v, JSON_REJECT_DUPLICATES, &je);
  if (!obj) {
    /* Position only: jansson's text quotes the input, a secret maybe. */
    snprintf(err, CONFIG_ERR_MAX,
             "plugin_config: invalid JSON at line %d column %d", je.line,
             je.column);
    return -1;
  }
  int rc = -1;
  if (!json_is_object(obj))
    snprintf(err, CONFIG_ERR_MAX, "plugin_config: expected a JSON object, "
             "got %s", json_kind(obj));
  else
    rc = merge_plugin_config(c, obj, err);
  json_decref(obj);
  return rc;
}

int config_plugin_config(const nno_config *c, const char *name,
                         const char *manifest_json, char **out, char *err) {
  *out = NULL;
  if (!c->plugin_config[0]) return 0;
  json_t *all = json_loads(c->plugin_config, 0, NULL);
  json_t *over = all ? json_object_get(all, name) : NULL;
  int rc = 0;
  if (!all) {
    snprintf(err, CONFIG_ERR_MAX, "plugin_config: out of memory");
    return -1;
  }
  if (over) {
    json_t *m = json_loads(manifest_json ? manifest_json : "{}", 0, NULL);
    if (!m || !json_is_object(m) || json_object_update(m, over) != 0 ||
        !(*out = json_dumps(m, JSON_COMPACT))) {
      snprintf(err, CONFIG_ERR_MAX,
               "plugin_config.%s: cannot merge with the manifest's \"config\"",
               name);
      rc = -1;
    }
    json_decref(m);
  }
  json_decref(all);
  return rc;
}

int config_plugin_names(const nno_config *c, const char *const *names,
                        size_t n, char *err) {
  if (!c->plugin_config[0]) return 0;
  json_t *all = json_loads(c->plugin_config, 0, NULL);
  if (!all) {
    snprintf(err, CONFIG_ERR_MAX, "plugin_config: out of memory");
    return -1;
  }
  const char *name;
  json_t *v;
  int rc = 0;
  json_object_foreach(all, name, v) {
    size_t i = 0;
    while (i < n && strcmp(names[i], name) != 0) i++;
    if (i == n) {
      snprintf(err, CONFIG_ERR_MAX,
               "plugin_config names \"%s\", which is not a core plugin of "
               "\"%.256s\" (plugin_dir)",
               name, c->plugin_dir);
      rc = -1;
      break;
    }
  }
  json_decref(all);
  return rc;
}

/* Apply a textual value (from env or flags). */
static int set_text(nno_config *c, const cfg_key *k, const char *v,
                    char *err) {
  char *base = (char *)c;
  switch (k->type) {
  case T_LISTEN:
    return set_listen(c, v, err);
  case T_STR:
    if (strlen(v) < (size_t)k->min || strlen(v) >= k->size) {
      snprintf(err, CONFIG_ERR_MAX, "%s: expected a string of %lld to %zu "
               "bytes, got %zu bytes", k->key, (long long)k->min, k->size - 1,
               strlen(v));
      return -1;
    }
    memcpy(base + k->off, v, strlen(v) + 1);
    return 0;
  case T_INT: {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!decimal_start(v) || errno || *end || end == v || n < k->min ||
        n > k->max) {
      snprintf(err, CONFIG_ERR_MAX,
               "%s: expected an integer from %lld to %lld, got \"%.64s\"",
               k->key, (long long)k->min, (long long)k->max, v);
      return -1;
    }
    *(int64_t *)(void *)(base + k->off) = n;
    return 0;
  }
  case T_BOOL:
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "on")) {
      *(int *)(void *)(base + k->off) = 1;
    } else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "off")) {
      *(int *)(void *)(base + k->off) = 0;
    } else {
      snprintf(err, CONFIG_ERR_MAX, "%s: expected true or false, got \"%.64s\"",
               k->key, v);
      return -1;
    }
    return 0;
  case T_LEVEL: {
    int lv = log_level_parse(v);
    if (lv < 0) {
      snprintf(err, CONFIG_ERR_MAX, "%s: expected debug, info, warn or error, "
               "got \"%.64s\"", k->key, v);
      return -1;
    }
    *(int64_t *)(void *)(base + k->off) = lv;
    return 0;
  }
  case T_NAMELIST:
    return set_names(c, v, err);
  case T_PLUGINCFG:
    return set_plugin_config(c, v, err);
  case T_DIRLIST: {
    c->nstacks_dirs = 0;
    const char *s = v;
    while (*s) {
      const char *e = strchr(s, ':');
      size_t n = e ? (size_t)(e - s) : strlen(s);
      if (n && add_dir(c, s, n, err)) return -1;
      s += n + (e ? 1 : 0);
    }
    return 0;
  }
  }
  return -1;
}

int config_set(nno_config *c, const char *key, const char *value, char *err) {
  const cfg_key *k = find_key(key);
  if (!k) {
    snprintf(err, CONFIG_ERR_MAX, "unknown configuration key \"%.64s\"", key);
    return -1;
  }
  return set_text(c, k, value, err);
}

static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

static int apply_value(nno_config *c, const cfg_key *k, json_t *v,
                       const char *path, char *err) {
  char buf[64];
  switch (k->type) {
  case T_INT:
    if (!json_is_integer(v)) break;
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    break;
  case T_BOOL:
    if (!json_is_boolean(v)) break;
    *(int *)(void *)((char *)c + k->off) = json_is_true(v);
    return 0;
  case T_DIRLIST:
    if (!json_is_array(v)) break;
    c->nstacks_dirs = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
      json_t *e = json_array_get(v, i);
      if (!json_is_string(e)) {
        snprintf(err, CONFIG_ERR_MAX, "%s: field \"%s[%zu]\": expected a "
                 "string, got %s", path, k->key, i, json_kind(e));
        return -1;
      }
      if (add_dir(c, json_string_value(e), json_string_length(e), err))
        goto prefixed;
    }
    return 0;
  case T_NAMELIST:
    if (!json_is_array(v)) break;
    c->ncore_plugins = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
      json_t *e = json_array_get(v, i);
      if (!json_is_string(e)) {
        snprintf(err, CONFIG_ERR_MAX,
                 "%s: field \"%s[%zu]\": expected a "
                 "string, got %s",
                 path, k->key, i, json_kind(e));
        return -1;
      }
      if (add_name(c, json_string_value(e), json_string_length(e), err))
        goto prefixed;
    }
    return 0;
  case T_PLUGINCFG:
    if (!json_is_object(v)) break;
    if (merge_plugin_config(c, v, err) == 0) return 0;
    goto prefixed;
  default:
    if (!json_is_string(v)) break;
    if (set_text(c, k, json_string_value(v), err) == 0) return 0;
    goto prefixed;
  }
  if (k->type == T_INT && json_is_integer(v)) {
    if (set_text(c, k, buf, err) == 0) return 0;
    goto prefixed;
  }
  snprintf(err, CONFIG_ERR_MAX, "%s: field \"%s\": expected %s, got %s", path,
           k->key,
           k->type == T_INT    ? "an integer"
           : k->type == T_BOOL ? "a boolean"
           : k->type == T_DIRLIST || k->type == T_NAMELIST
               ? "an array of strings"
           : k->type == T_PLUGINCFG ? "an object"
                                    : "a string",
           json_kind(v));
  return -1;
prefixed: {
  char tmp[CONFIG_ERR_MAX];
  snprintf(tmp, sizeof tmp, "%s", err);
  snprintf(err, CONFIG_ERR_MAX, "%s: %s", path, tmp);
  return -1;
}
}

/* Walk objects, joining keys with '.', so {"limits":{"max_headers":5}}
 * becomes "limits.max_headers". */
static int apply_object(nno_config *c, json_t *obj, const char *prefix,
                        const char *path, char *err) {
  const char *name;
  json_t *v;
  json_object_foreach(obj, name, v) {
    char key[128];
    snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", name);
    const cfg_key *k = find_key(key);
    if (k) {
      if (apply_value(c, k, v, path, err)) return -1;
      continue;
    }
    /* A section ("limits", "log", "fetch") is an object of keys. */
    size_t kl = strlen(key);
    int section = 0;
    for (size_t i = 0; i < NKEYS; i++)
      if (!strncmp(keys[i].key, key, kl) && keys[i].key[kl] == '.')
        section = 1;
    if (section && json_is_object(v)) {
      if (apply_object(c, v, key, path, err)) return -1;
      continue;
    }
    snprintf(err, CONFIG_ERR_MAX, "%s: unknown key \"%.64s\"", path, key);
    return -1;
  }
  return 0;
}

/* Reports a parse error of `what` and applies a parsed root. */
static int apply_root(nno_config *c, json_t *root, const json_error_t *je,
                      const char *what, char *err) {
  if (!root) {
    char text[sizeof je->text];
    memcpy(text, je->text, sizeof text);
    json_text_clean(text); /* jansson quotes the input near the error */
    if (je->line < 0 || je->position == 0)
      snprintf(err, CONFIG_ERR_MAX, "%s: %s", what, text);
    else
      snprintf(err, CONFIG_ERR_MAX, "%s: invalid JSON at line %d column %d: %s",
               what, je->line, je->column, text);
    return -1;
  }
  int rc = -1;
  if (!json_is_object(root)) {
    snprintf(err, CONFIG_ERR_MAX, "%s: expected a JSON object, got %s", what,
             json_kind(root));
  } else {
    rc = apply_object(c, root, "", what, err);
  }
  /* Messages quote keys and values of the file: keep them one line of
   * valid UTF-8. */
  if (rc) json_text_clean(err);
  json_decref(root);
  return rc;
}

int config_apply_file(nno_config *c, const char *path, char *err) {
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  return apply_root(c, root, &je, path, err);
}

int config_apply_json(nno_config *c, const char *json, size_t len,
                      const char *what, char *err) {
  json_error_t je;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  return apply_root(c, root, &je, what, err);
}

int config_apply_env(nno_config *c, char *err) {
  for (size_t i = 0; i < NKEYS; i++) {
    const char *v = getenv(keys[i].env);
    if (!v) continue;
    if (keys[i].type == T_NAMELIST && v[0] == '\0') {
      /* An empty variable is what a template leaves of a value it did not
       * fill; read as "no core plugins" it would serve unguarded. */
      snprintf(err, CONFIG_ERR_MAX,
               "%s: empty; unset it for the build's core plugins, or set "
               "%s to [] in the config file to run without core plugins",
               keys[i].env, keys[i].key);
      return -1;
    }
    if (set_text(c, &keys[i], v, err)) {
      char tmp[CONFIG_ERR_MAX];
      snprintf(tmp, sizeof tmp, "%s", err);
      snprintf(err, CONFIG_ERR_MAX, "%s: %s", keys[i].env, tmp);
      return -1;
    }
  }
  return 0;
}

/* One key's value as the file loader reads it back; NULL when out of
 * memory. */
static json_t *key_json(const nno_config *c, const cfg_key *k) {
  const char *base = (const char *)c + k->off;
  switch (k->type) {
  case T_INT:
    return json_integer(*(const int64_t *)(const void *)base);
  case T_BOOL:
    return json_boolean(*(const int *)(const void *)base);
  case T_STR:
    return json_string(base);
  case T_LEVEL:
    return json_string(log_level_name((int)c->log_level));
  case T_LISTEN: {
    /* set_listen splits at the last ':': an IPv6 host goes in brackets. */
    char v[sizeof c->listen_host + 16];
    int v6 = strchr(c->listen_host, ':') != NULL;
    snprintf(v, sizeof v, "%s%s%s:%d", v6 ? "[" : "", c->listen_host,
             v6 ? "]" : "", c->listen_port);
    return json_string(v);
  }
  case T_DIRLIST:
  case T_NAMELIST: {
    json_t *a = json_array();
    size_t n = k->type == T_DIRLIST ? c->nstacks_dirs : c->ncore_plugins;
    for (size_t i = 0; a && i < n; i++) {
      const char *e =
          k->type == T_DIRLIST ? c->stacks_dirs[i] : c->core_plugins[i];
      if (json_array_append_new(a, json_string(e)) != 0) {
        json_decref(a);
        return NULL;
      }
    }
    return a;
  }
  case T_PLUGINCFG:
    return c->plugin_config[0] ? json_loads(c->plugin_config, 0, NULL)
                               : json_object();
  }
  return NULL;
}

char *config_to_json(const nno_config *c) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < NKEYS; i++) {
    if (json_object_set_new(o, keys[i].key, key_json(c, &keys[i])) != 0) {
      json_decref(o);
      o = NULL;
    }
  }
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  return s;
}

/* Is `id` (n bytes) one of the comma-separated names of `list`? */
static int id_listed(const char *list, const char *id, size_t n) {
  while (*list) {
    size_t k = strcspn(list, ",");
    if (k == n && memcmp(list, id, n) == 0) return 1;
    list += k + (list[k] == ',');
  }
  return 0;
}

/* A list of stack ids: "a,b", each [a-z][a-z0-9-]{0,63}; may be empty. */
static int check_ids(const char *key, const char *list, char *err) {
  const char *s = list;
  while (*s) {
    size_t n = strcspn(s, ",");
    if (!name_ok(s, n)) {
      /* The whole value: an empty item ("a,,b") has nothing to quote. */
      size_t l = strlen(list);
      snprintf(err, CONFIG_ERR_MAX,
               "%s: expected stack ids separated by commas (\"a,b\"), got "
               "\"%.*s%s\"", key, (int)(l > 200 ? 200 : l), list,
               l > 200 ? "..." : "");
      return -1;
    }
    s += n;
    if (*s == ',' && !*++s) break; /* a trailing comma: refused below */
  }
  if (list[0] && list[strlen(list) - 1] == ',') {
    snprintf(err, CONFIG_ERR_MAX, "%s: a trailing comma", key);
    return -1;
  }
  return 0;
}

/* "plan:wall_ms/cpu_ms/memory_mb,..." with the bounds of the keys. */
static int check_plans(const char *list, char *err) {
  const char *s = list;
  while (*s) {
    size_t n = strcspn(s, ",");
    const char *colon = memchr(s, ':', n);
    long long w, cpu, m;
    int used = 0;
    char item[128];
    snprintf(item, sizeof item, "%.*s", (int)(n > 100 ? 100 : n), s);
    if (!colon || colon == s || (size_t)(colon - s) > 32 ||
        sscanf(colon + 1, "%lld/%lld/%lld%n", &w, &cpu, &m, &used) != 3 ||
        (size_t)(colon + 1 - s) + (size_t)used != n || w < 10 ||
        w > 3600000 || cpu < 10 || cpu > 3600000 || m < 8 || m > 65536) {
      snprintf(err, CONFIG_ERR_MAX,
               "sandbox.plans: expected \"plan:wall_ms/cpu_ms/memory_mb\" "
               "items separated by commas (wall and cpu 10..3600000, memory "
               "8..65536), got \"%s\"", item);
      return -1;
    }
    if (cpu > w) {
      snprintf(err, CONFIG_ERR_MAX,
               "sandbox.plans: \"%s\": cpu_ms (%lld) must not exceed "
               "wall_ms (%lld)", item, cpu, w);
      return -1;
    }
    for (const char *q = s; q < colon; q++)
      if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
            *q == '-')) {
        snprintf(err, CONFIG_ERR_MAX,
                 "sandbox.plans: plan names are [a-z0-9-], got \"%s\"", item);
        return -1;
      }
    s += n + (s[n] == ',');
  }
  return 0;
}

int config_validate(const nno_config *c, char *err) {
  if (c->max_body_bytes > c->max_response_bytes * 64) {
    /* Not an error worth refusing; kept as a hook for real cross checks. */
  }
  if (c->worker_input_bytes < c->max_body_bytes) {
    /* A body the limit allows must fit an idle worker, or retrying the
     * 503 could never succeed. */
    snprintf(err, CONFIG_ERR_MAX,
             "limits.worker_input_bytes (%lld) must be at least "
             "limits.max_body_bytes (%lld)",
             (long long)c->worker_input_bytes, (long long)c->max_body_bytes);
    return -1;
  }
  if (c->data_dir[0] == '\0') {
    snprintf(err, CONFIG_ERR_MAX, "data: must not be empty");
    return -1;
  }
  if (strcmp(c->sandbox_mode, "sandbox") && strcmp(c->sandbox_mode, "inprocess")) {
    snprintf(err, CONFIG_ERR_MAX,
             "sandbox.mode: expected \"sandbox\" or \"inprocess\", got "
             "\"%.32s\"", c->sandbox_mode);
    return -1;
  }
  if (check_ids("sandbox.inprocess", c->sandbox_inprocess, err) ||
      check_ids("sandbox.sandboxed", c->sandbox_sandboxed, err) ||
      check_plans(c->sandbox_plans, err))
    return -1;
  /* A stack in both lists: say which wins rather than pick silently. */
  const char *s = c->sandbox_inprocess;
  while (*s) {
    size_t n = strcspn(s, ",");
    if (id_listed(c->sandbox_sandboxed, s, n)) {
      snprintf(err, CONFIG_ERR_MAX,
               "stack \"%.*s\" is in both sandbox.inprocess and "
               "sandbox.sandboxed: name it in one", (int)n, s);
      return -1;
    }
    s += n + (s[n] == ',');
  }
  /* CPU time cannot outrun the wall clock on one thread: a CPU budget past
   * the wall budget is one that never triggers. */
  if (c->sandbox_cpu_ms > c->sandbox_wall_ms) {
    snprintf(err, CONFIG_ERR_MAX,
             "sandbox.cpu_ms (%lld) must not exceed sandbox.wall_ms (%lld)",
             (long long)c->sandbox_cpu_ms, (long long)c->sandbox_wall_ms);
    return -1;
  }
  /* A ceiling below a worker's own footprint recycles it forever. */
  if (c->worker_max_rss_mb > 0 && c->worker_max_rss_mb < CONFIG_MIN_RSS_MB) {
    snprintf(err, CONFIG_ERR_MAX,
             "limits.worker_max_rss_mb: expected 0 (off) or at least %d, "
             "got %lld", CONFIG_MIN_RSS_MB, (long long)c->worker_max_rss_mb);
    return -1;
  }
  if (c->overload_max_rss_mb > 0 && c->overload_max_rss_mb < CONFIG_MIN_RSS_MB) {
    snprintf(err, CONFIG_ERR_MAX,
             "overload.max_rss_mb: expected 0 (off) or at least %d, got %lld",
             CONFIG_MIN_RSS_MB, (long long)c->overload_max_rss_mb);
    return -1;
  }
  if (c->watchdog_hard_ms <= c->watchdog_stall_ms) {
    snprintf(err, CONFIG_ERR_MAX,
             "watchdog.hard_ms (%lld) must be greater than "
             "watchdog.stall_ms (%lld)",
             (long long)c->watchdog_hard_ms, (long long)c->watchdog_stall_ms);
    return -1;
  }
  return 0;
}

int config_isolation(const nno_config *c, const char *id, int builtin) {
  size_t n = strlen(id);
  if (id_listed(c->sandbox_sandboxed, id, n)) return NNO_ISOLATION_SANDBOX;
  if (builtin || id_listed(c->sandbox_inprocess, id, n))
    return NNO_ISOLATION_INPROCESS;
  return strcmp(c->sandbox_mode, "inprocess") == 0 ? NNO_ISOLATION_INPROCESS
                                                    : NNO_ISOLATION_SANDBOX;
}

config_budget config_plan_budget(const nno_config *c, const char *plan) {
  config_budget b = {c->sandbox_wall_ms, c->sandbox_cpu_ms,
                     c->sandbox_memory_mb};
  if (!plan || !plan[0]) return b;
  size_t pl = strlen(plan);
  const char *s = c->sandbox_plans;
  while (*s) {
    size_t n = strcspn(s, ",");
    const char *colon = memchr(s, ':', n);
    if (colon && (size_t)(colon - s) == pl && memcmp(s, plan, pl) == 0) {
      long long w, cpu, m;
      if (sscanf(colon + 1, "%lld/%lld/%lld", &w, &cpu, &m) == 3) {
        b.wall_ms = w;
        b.cpu_ms = cpu;
        b.memory_mb = m;
      }
      return b;
    }
    s += n + (s[n] == ',');
  }
  return b;
}

void config_print_help(void) {
  printf("Configuration keys (nno.json key, environment variable):\n");
  for (size_t i = 0; i < NKEYS; i++) {
    if (keys[i].type == T_INT)
      printf("  %-26s %-26s %s (%lld to %lld)\n", keys[i].key, keys[i].env,
             keys[i].help, (long long)keys[i].min, (long long)keys[i].max);
    else
      printf("  %-26s %-26s %s\n", keys[i].key, keys[i].env, keys[i].help);
  }
}
