/* Stack archive keys: Ed25519 key files, the trusted keyring and the
 * limits read from the configuration (format in stack_archive.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "archive_internal.h"

#define KEYFILE_MAX 4096 /* a key file or a keyring line, in bytes */
#define PUB_PREFIX "ed25519:"
#define SEC_PREFIX "ed25519-secret:"

void archive_limits_from_config(const nno_config *cfg, archive_limits *out) {
  out->max_archive_bytes = (uint64_t)cfg->stack_max_archive_bytes;
  out->max_unpacked_bytes = (uint64_t)cfg->stack_max_unpacked_bytes;
  out->max_entry_bytes = (uint64_t)cfg->stack_max_entry_bytes;
  out->max_entries = (uint64_t)cfg->stack_max_entries;
  out->max_ratio = (uint64_t)cfg->stack_max_ratio;
}

void arc_hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void arc_key_id(const unsigned char pk[32], char id[17]) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, pk, 32);
  arc_hex(h, 8, id);
}

/* Decode exactly `want` bytes of standard base64 (padded) from s[0..n).
 * 0 or -1. */
static int b64_exact(const char *s, size_t n, unsigned char *out, size_t want) {
  size_t got = 0;
  const char *end = NULL;
  if (sodium_base642bin(out, want, s, n, NULL, &got, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return -1;
  return got == want && end == s + n ? 0 : -1;
}

/* Parse one public key line: "ed25519:<base64 of 32 bytes>[ comment]".
 * 0 or -1 with why. */
static int pub_parse(const char *line, unsigned char pk[32], const char **why) {
  size_t plen = strlen(PUB_PREFIX);
  if (strncmp(line, PUB_PREFIX, plen) != 0) {
    *why = "expected \"ed25519:<base64 public key>\"";
    return -1;
  }
  const char *b = line + plen;
  size_t n = strcspn(b, " \t");
  if (b64_exact(b, n, pk, 32) != 0) {
    *why = "the key is not base64 of 32 bytes";
    return -1;
  }
  return 0;
}

int archive_keyring_load(const char *path, archive_keyring *kr, char *err,
                         size_t errlen) {
  memset(kr, 0, sizeof *kr);
  if (!path || !*path) return 0;
  if (sodium_init() < 0) {
    snprintf(err, errlen, "%s: libsodium failed to initialise", path);
    return -1;
  }
  FILE *f = fopen(path, "re");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  /* Who may write the keyring decides what runs: the rule of the data
   * folder (this user or root, not writable by group or others). */
  struct stat st;
  uid_t me = geteuid();
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
      (st.st_uid != me && st.st_uid != 0) ||
      (st.st_mode & (S_IWGRP | S_IWOTH))) {
    if (fstat(fileno(f), &st) != 0)
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
      snprintf(err, errlen, "%s: not a regular file", path);
    else if (st.st_uid != me && st.st_uid != 0)
      snprintf(err, errlen, "%s: belongs to uid %u, not to the host's user "
               "(uid %u) or root", path, (unsigned)st.st_uid, (unsigned)me);
    else
      snprintf(err, errlen, "%s: writable by group or others (chmod 644 "
               "it): anyone who can write it decides which stacks run",
               path);
    fclose(f);
    return -1;
  }
  char line[KEYFILE_MAX];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') {
      snprintf(err, errlen, "%s: line %d: longer than %d bytes", path, lineno,
               KEYFILE_MAX - 2);
      rc = -1;
      break;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                 line[n - 1] == ' ' || line[n - 1] == '\t'))
      line[--n] = '\0';
    const char *s = line + strspn(line, " \t");
    if (!*s || *s == '#') continue;
    const char *why = NULL;
    unsigned char pk[32];
    if (pub_parse(s, pk, &why) != 0) {
      snprintf(err, errlen, "%s: line %d: %s", path, lineno, why);
      rc = -1;
      break;
    }
    if (kr->n == ARCHIVE_KEYS_MAX) {
      snprintf(err, errlen, "%s: line %d: more than %d keys", path, lineno,
               ARCHIVE_KEYS_MAX);
      rc = -1;
      break;
    }
    memcpy(kr->keys[kr->n].pk, pk, 32);
    arc_key_id(pk, kr->keys[kr->n].id);
    kr->n++;
  }
  if (rc == 0 && ferror(f)) {
    snprintf(err, errlen, "%s: read error", path);
    rc = -1;
  }
  /* A keyring with no key would accept every unsigned stack: an empty
   * file is a mistake, not a policy (leave stacks.trusted_keys unset). */
  if (rc == 0 && kr->n == 0) {
    snprintf(err, errlen, "%s: no key (expected lines \"ed25519:<base64> "
             "[comment]\" as 'nno stack keygen' writes in NAME.pub; to accept "
             "unsigned stacks, leave stacks.trusted_keys unset)", path);
    rc = -1;
  }
  fclose(f);
  if (rc != 0) memset(kr, 0, sizeof *kr);
  return rc;
}

/* Create `path` exclusively with `mode` and write text to it. */
static int write_new(const char *path, mode_t mode, const char *text, char *err,
                     size_t errlen) {
  int fd =
      open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    snprintf(
        err, errlen, "%s: %s", path,
        errno == EEXIST ? "already exists (not overwritten)" : strerror(errno));
    return -1;
  }
  /* The umask must not loosen or tighten what the format says. */
  if (fchmod(fd, mode) != 0 || arc_write_all(fd, text, strlen(text)) != 0 ||
      fsync(fd) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return -1;
  }
  if (close(fd) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    unlink(path);
    return -1;
  }
  return 0;
}

int archive_keygen(const char *base, char id[17], char *err, size_t errlen) {
  char kpath[4096], ppath[4096];
  if (snprintf(kpath, sizeof kpath, "%s.key", base) >= (int)sizeof kpath ||
      snprintf(ppath, sizeof ppath, "%s.pub", base) >= (int)sizeof ppath) {
    snprintf(err, errlen, "%.64s...: name too long", base);
    return -1;
  }
  if (sodium_init() < 0) {
    snprintf(err, errlen, "libsodium failed to initialise");
    return -1;
  }
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  char b64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
  char text[256];
  int rc = -1;
  crypto_sign_keypair(pk, sk);
  arc_key_id(pk, id);

  /* The public key first: it is harmless if the secret one then fails. */
  const char *slash = strrchr(base, '/');
  const char *comment = slash ? slash + 1 : base;
  sodium_bin2base64(b64, sizeof b64, pk, sizeof pk,
                    sodium_base64_VARIANT_ORIGINAL);
  snprintf(text, sizeof text, PUB_PREFIX "%s %.64s\n", b64, comment);
  if (write_new(ppath, 0644, text, err, errlen) != 0) goto out;
  sodium_bin2base64(b64, sizeof b64, sk, sizeof sk,
                    sodium_base64_VARIANT_ORIGINAL);
  snprintf(text, sizeof text, SEC_PREFIX "%s\n", b64);
  if (write_new(kpath, 0600, text, err, errlen) != 0) {
    unlink(ppath);
    goto out;
  }
  rc = 0;
out:
  sodium_memzero(sk, sizeof sk);
  sodium_memzero(b64, sizeof b64);
  sodium_memzero(text, sizeof text);
  return rc;
}

int arc_secret_load(const char *path, unsigned char sk[64],
                    unsigned char pk[32], char id[17], char *err,
                    size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  int rc = -1;
  if (sodium_init() < 0) {
    snprintf(err, errlen, "libsodium failed to initialise");
    return -1;
  }
  if (arc_read_file(AT_FDCWD, path, KEYFILE_MAX, &text, &len) != 0) {
    snprintf(err, errlen, "%s: %s", path,
             errno == EFBIG ? "too large for a key file" : strerror(errno));
    return -1;
  }
  size_t plen = strlen(SEC_PREFIX);
  while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                 text[len - 1] == ' '))
    text[--len] = '\0';
  if (strncmp(text, SEC_PREFIX, plen) != 0 ||
      b64_exact(text + plen, len - plen, sk, 64) != 0) {
    snprintf(err, errlen,
             "%s: not a secret key file (expected \"" SEC_PREFIX
             "<base64 of 64 bytes>\"; 'nno stack keygen' writes one)",
             path);
    goto out;
  }
  /* A secret key others can read is no longer secret: say so before
   * using it (keygen writes 0600). */
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
      (st.st_mode & (S_IRWXG | S_IRWXO))) {
    snprintf(err, errlen, "%s: readable or writable by group or others "
             "(mode %03o; chmod 600 it, and make a new key if others may "
             "have read it)", path, (unsigned)(st.st_mode & 0777));
    sodium_memzero(sk, 64);
    goto out;
  }
  crypto_sign_ed25519_sk_to_pk(pk, sk);
  arc_key_id(pk, id);
  rc = 0;
out:
  sodium_memzero(text, len);
  free(text);
  return rc;
}
