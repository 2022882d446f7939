/* Configuration (host/config.c): an nno.json text, then `--set KEY=VALUE`
 * settings, applied over the defaults as `nno serve` does. Environment
 * variables reach the same per-key parser as --set (set_text), so the
 * settings stand for them too.
 *
 * Input: the JSON text, then (after a NUL byte, if any) one KEY=VALUE per
 * line. Whatever is accepted must leave every key within its documented
 * bounds and every string terminated inside its buffer; whatever is
 * refused must say why in one line. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "jsonv.h"

static void check_err(const char *err) {
  size_t n = strnlen(err, CONFIG_ERR_MAX);
  FUZZ_ASSERT(n > 0 && n < CONFIG_ERR_MAX);
}

/* A message about the file is one line of valid UTF-8, like a manifest's:
 * it goes to stderr and into JSON log lines. (Values quoted from --set are
 * the operator's own text and are not held to this.) */
static void check_file_err(const char *err) {
  size_t n = strlen(err);
  check_err(err);
  for (size_t i = 0; i < n;) {
    size_t k = json_utf8_len(err + i, n - i);
    FUZZ_ASSERT(k > 0);
    FUZZ_ASSERT((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
    i += k;
  }
}

#define IN(v, lo, hi) FUZZ_ASSERT((v) >= (lo) && (v) <= (hi))

static void check_config(const nno_config *c) {
  FUZZ_ASSERT(memchr(c->listen_host, '\0', sizeof c->listen_host));
  FUZZ_ASSERT(c->listen_host[0] != '\0');
  IN(c->listen_port, 0, 65535);
  FUZZ_ASSERT(memchr(c->data_dir, '\0', sizeof c->data_dir));
  FUZZ_ASSERT(memchr(c->base_domain, '\0', sizeof c->base_domain));
  FUZZ_ASSERT(memchr(c->plugin_dir, '\0', sizeof c->plugin_dir));
  IN(c->workers, 1, 64);
  IN(c->max_header_bytes, 512, 1 << 20);
  IN(c->max_headers, 8, 1000);
  IN(c->max_body_bytes, 0, (int64_t)1 << 30);
  IN(c->header_timeout_ms, 10, 3600000);
  IN(c->body_timeout_ms, 10, 3600000);
  IN(c->upload_timeout_ms, 10, 86400000);
  IN(c->idle_timeout_ms, 10, 3600000);
  IN(c->max_connections, 1, 1000000);
  IN(c->max_response_bytes, 1024, (int64_t)1 << 30);
  IN(c->drain_timeout_ms, 0, 3600000);
  IN(c->log_level, 0, 3);
  IN(c->access_log, 0, 1);
  IN(c->builtin_stacks, 0, 1);
  FUZZ_ASSERT(c->nstacks_dirs <= CONFIG_MAX_STACK_DIRS);
  for (size_t i = 0; i < c->nstacks_dirs; i++) {
    FUZZ_ASSERT(memchr(c->stacks_dirs[i], '\0', PATH_MAX));
    FUZZ_ASSERT(c->stacks_dirs[i][0] != '\0');
  }
  IN(c->fetch_timeout_ms, 10, 600000);
  IN(c->fetch_max_bytes, 1024, (int64_t)1 << 30);
  IN(c->fetch_max_concurrent, 1, 10000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static nno_config c; /* large (PATH_MAX buffers): not on the stack */
  char err[CONFIG_ERR_MAX];
  const char *p = (const char *)data, *end = p + size;
  const char *nul = memchr(p, '\0', size);
  size_t json_len = nul ? (size_t)(nul - p) : size;

  config_defaults(&c, "/opt/nno/bin");
  check_config(&c);
  err[0] = '\0';
  if (config_apply_json(&c, p, json_len, "nno.json", err) == 0) {
    check_config(&c);
  } else {
    check_file_err(err);
    FUZZ_ASSERT(strncmp(err, "nno.json: ", 10) == 0);
  }
  if (!nul) return 0;

  config_defaults(&c, "/opt/nno/bin");
  for (p = nul + 1; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    char line[8192], *eq;
    size_t n = (size_t)(le - p);
    if (n >= sizeof line) n = sizeof line - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    p = nl ? nl + 1 : end;
    if (!(eq = strchr(line, '='))) continue;
    *eq = '\0';
    err[0] = '\0';
    if (config_set(&c, line, eq + 1, err) == 0)
      check_config(&c);
    else
      check_err(err);
  }
  if (config_validate(&c, err) != 0) check_err(err);
  return 0;
}
