/* The operator key: created on first start, rotated through the API.
 *
 * A key is "nno_op_" + base64url (no padding) of 32 random bytes. Only its
 * SHA-256 is stored (settings.operator_key_sha256, hex): the key has 256
 * bits of entropy, so a plain hash cannot be searched, and requests are
 * checked by hashing the presented key and comparing in constant time.
 * The key itself is written once to DATA/operator.key (mode 0600, written
 * to a temporary file, synced, then renamed over the old one) and never
 * logged. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "http_util.h"
#include "internal.h"

#define KEY_PREFIX "nno_op_"
#define KEY_MAX 64 /* "nno_op_" + 43 characters + NUL fits */

/* A fresh key and its hash (hex and raw). */
static void make_key(char key[KEY_MAX], char hex[65], unsigned char hash[32]) {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  memcpy(key, KEY_PREFIX, sizeof KEY_PREFIX);
  sodium_bin2base64(key + strlen(KEY_PREFIX), KEY_MAX - strlen(KEY_PREFIX), raw,
                    sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  crypto_hash_sha256(hash, (const unsigned char *)key, strlen(key));
  sodium_bin2hex(hex, 65, hash, 32);
}

/* Write `key` to a new temporary file beside `path`, synced, mode 0600.
 * The temporary name goes to tmp. */
static int write_tmp(const char *path, const char *key, char *tmp, size_t cap) {
  snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
  /* A leftover (or a planted hard link) is removed, never written through. */
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                0600);
  if (fd < 0) return -1;
  char line[KEY_MAX + 1];
  /* No newline: the file's content is exactly the key. */
  size_t n = (size_t)snprintf(line, sizeof line, "%s", key), off = 0;
  int ok = fchmod(fd, 0600) == 0;
  while (ok && off < n) {
    ssize_t w = write(fd, line + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    if (ok) off += (size_t)w;
  }
  sodium_memzero(line, sizeof line);
  ok = ok && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  return 0;
}

/* Rename tmp over path and sync the directory so the rename is durable. */
static int install(const char *tmp, const char *path) {
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  return 0;
}

static int set_hash_hex(const char *hex) {
  size_t n = 0;
  if (sodium_hex2bin(g_reg.op_hash, sizeof g_reg.op_hash, hex, strlen(hex),
                     NULL, &n, NULL) != 0 ||
      n != sizeof g_reg.op_hash)
    return STORE_INVALID;
  g_reg.have_hash = 1;
  return STORE_OK;
}

int opkey_load(void) {
  char hex[80];
  int rc = store_setting_get(g_reg.db, REG_KEY_SETTING, hex, sizeof hex);
  return rc ? rc : set_hash_hex(hex);
}

int opkey_init(void) {
  char hex[80], key[KEY_MAX], tmp[PATH_MAX + 32];
  unsigned char hash[32];
  /* BEGIN IMMEDIATE: of several workers starting at once, exactly one
   * finds no key and creates it; the others wait and then read it. */
  int rc = store_begin(g_reg.db);
  if (rc) goto fail_db;
  rc = store_setting_get(g_reg.db, REG_KEY_SETTING, hex, sizeof hex);
  if (rc == STORE_OK) {
    store_rollback(g_reg.db); /* read only */
    if (set_hash_hex(hex) != STORE_OK) {
      api->plugin_fail(g_reg.p, "core.db: setting %s is not a SHA-256 hash",
                       REG_KEY_SETTING);
      return NNO_EINVAL;
    }
    /* The key stays valid without its file; say how to recover. */
    if (access(g_reg.key_path, F_OK) != 0)
      api->log(g_reg.p, NNO_LOG_WARN,
               "%s is missing; the operator key in use is unchanged. Rotate "
               "it with a copy of the key, or stop the host and delete the "
               "setting %s from %s to have a new one made on the next start",
               g_reg.key_path, REG_KEY_SETTING, g_reg.db_path);
    return NNO_OK;
  }
  if (rc != STORE_NOTFOUND) goto fail_db;
  make_key(key, hex, hash);
  rc = store_setting_add(g_reg.db, REG_KEY_SETTING, hex);
  if (!rc)
    rc = store_audit_add(g_reg.db, "system", "operator_key.create",
                         "operator_key", NULL, "{\"reason\":\"first start\"}");
  if (rc) goto fail_db;
  /* The file before the commit: a crash in between leaves a file and no
   * hash, and the next start simply makes a new key. Never the reverse. */
  if (write_tmp(g_reg.key_path, key, tmp, sizeof tmp) != 0 ||
      install(tmp, g_reg.key_path) != 0) {
    api->plugin_fail(g_reg.p, "cannot write %s: %s", g_reg.key_path,
                     strerror(errno));
    sodium_memzero(key, sizeof key);
    store_rollback(g_reg.db);
    return NNO_EIO;
  }
  sodium_memzero(key, sizeof key);
  if ((rc = store_commit(g_reg.db)) != 0) goto fail_db;
  memcpy(g_reg.op_hash, hash, sizeof hash);
  g_reg.have_hash = 1;
  api->log(g_reg.p, NNO_LOG_INFO, "operator key written to %s", g_reg.key_path);
  return NNO_OK;
fail_db:
  api->plugin_fail(g_reg.p, "cannot set up the operator key in %s: %s",
                   g_reg.db_path, sqlite3_errmsg(g_reg.db));
  store_rollback(g_reg.db);
  return NNO_EIO;
}

int opkey_on_rotate(nno_req *req, void *ud) {
  char hex[65], key[KEY_MAX], tmp[PATH_MAX + 32];
  unsigned char hash[32];
  if (!hu_authorized(req)) return NNO_OK;
  make_key(key, hex, hash);
  if (write_tmp(g_reg.key_path, key, tmp, sizeof tmp) != 0) {
    api->log(g_reg.p, NNO_LOG_ERROR, "cannot write %s: %s", tmp,
             strerror(errno));
    sodium_memzero(key, sizeof key);
    return nno_problem(req, 500, NULL, "cannot write the operator key file");
  }
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_setting_put(g_reg.db, REG_KEY_SETTING, hex);
  if (!rc) rc = hu_audit(req, "operator_key.rotate", "operator_key", NULL);
  /* Replace the file while holding the write lock, so two rotations at once
   * cannot leave the file with the key whose hash lost. */
  int installed = 0;
  if (!rc) {
    installed = install(tmp, g_reg.key_path) == 0;
    if (!installed)
      api->log(g_reg.p, NNO_LOG_ERROR,
               "cannot replace %s: %s; the new key is only in this response",
               g_reg.key_path, strerror(errno));
  }
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    hu_store_error(req, rc);
    store_rollback(g_reg.db);
    unlink(tmp);
    sodium_memzero(key, sizeof key);
    return NNO_OK;
  }
  /* Committed: the new key is the valid one from now on, in every worker
   * (they reload the hash when the counter moves). */
  memcpy(g_reg.op_hash, hash, sizeof hash);
  reg_committed();
  if (installed)
    api->log(g_reg.p, NNO_LOG_INFO, "operator key rotated; written to %s",
             g_reg.key_path);
  api->res_header(req, "Cache-Control", "no-store");
  /* "file" is null when the key could not be written: the caller must
   * keep the key from this response. */
  rc = nno_send_json(
      req, 200,
      installed ? json_pack("{s:s, s:s}", "key", key, "file", g_reg.key_path)
                : json_pack("{s:s, s:n}", "key", key, "file"));
  sodium_memzero(key, sizeof key);
  return rc;
}
