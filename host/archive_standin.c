/* Temporary stand-in for the extraction half of archive.h, built only
 * while no host/archive_*.c implementation is in the tree (see
 * host/CMakeLists.txt): plain libarchive reading of regular files and
 * folders, CHECKSUMS and SIGNATURE verification. Not the hardened
 * implementation; pack, keygen and sign are absent. */
#include "archive.h"

/* host/archive.h shadows libarchive's header on the include path. */
#include "/usr/include/archive.h"
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

void archive_limits_from_config(const nno_config *cfg, archive_limits *out) {
  out->max_archive_bytes = (uint64_t)cfg->stack_max_archive_bytes;
  out->max_unpacked_bytes = (uint64_t)cfg->stack_max_unpacked_bytes;
  out->max_entry_bytes = (uint64_t)cfg->stack_max_entry_bytes;
  out->max_entries = (uint64_t)cfg->stack_max_entries;
  out->max_ratio = (uint64_t)cfg->stack_max_ratio;
}

static void key_id(const unsigned char pk[32], char id[17]) {
  unsigned char h[32];
  crypto_hash_sha256(h, pk, 32);
  sodium_bin2hex(id, 17, h, 8);
}

int archive_keyring_load(const char *path, archive_keyring *kr, char *err,
                         size_t errlen) {
  memset(kr, 0, sizeof *kr);
  if (!path || !*path) return 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char line[512];
  int ln = 0;
  while (fgets(line, sizeof line, f)) {
    ln++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '#' || *s == '\n' || !*s) continue;
    if (strncmp(s, "ed25519:", 8) != 0 || kr->n == ARCHIVE_KEYS_MAX) {
      snprintf(err, errlen, "%s:%d: expected \"ed25519:<base64>\"", path, ln);
      fclose(f);
      return -1;
    }
    s += 8;
    size_t n = strcspn(s, " \t\n");
    size_t got = 0;
    if (sodium_base642bin(kr->keys[kr->n].pk, 32, s, n, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != 32) {
      snprintf(err, errlen, "%s:%d: not a 32-byte base64 key", path, ln);
      fclose(f);
      return -1;
    }
    key_id(kr->keys[kr->n].pk, kr->keys[kr->n].id);
    kr->n++;
  }
  fclose(f);
  return 0;
}

int archive_sha256_fd(int fd, char hex[65]) {
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  unsigned char buf[65536], out[32];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
  if (n < 0) return -1;
  crypto_hash_sha256_final(&h, out);
  sodium_bin2hex(hex, 65, out, 32);
  return 0;
}

int archive_rmtree(const char *dir) {
  struct stat st;
  if (lstat(dir, &st) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(dir);
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
    archive_rmtree(sub);
  }
  closedir(d);
  return rmdir(dir);
}

static int fail(archive_error *e, int http, const char *file, const char *kind,
                const char *fmt, ...) {
  e->http = http;
  snprintf(e->file, sizeof e->file, "%s", file);
  snprintf(e->kind, sizeof e->kind, "%s", kind);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return -1;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b) b[n] = '\0', *len = (size_t)n;
  fclose(f);
  return b;
}

int archive_extract(int fd, const char *staging, const archive_limits *lim,
                    const archive_keyring *kr, archive_info *info,
                    archive_error *e) {
  memset(info, 0, sizeof *info);
  off_t start = lseek(fd, 0, SEEK_CUR);
  if (archive_sha256_fd(fd, info->sha256) != 0 ||
      lseek(fd, start, SEEK_SET) != start)
    return fail(e, 500, "", "io", "cannot read the archive");
  struct archive *a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
    archive_read_free(a);
    return fail(e, 422, "", "corrupt", "not a gzip'd tar archive");
  }
  struct archive_entry *en;
  int r, rc = 0;
  char files[1024][256];
  size_t nf = 0;
  while (rc == 0 && (r = archive_read_next_header(a, &en)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(en);
    if (!name || name[0] == '/' || strstr(name, "..")) {
      rc = fail(e, 422, name ? name : "", "dot-dot", "%s: path leaves the "
                "archive", name ? name : "");
      break;
    }
    if (++info->entries > lim->max_entries) {
      rc = fail(e, 413, name, "too-many-entries", "too many entries");
      break;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", staging, name);
    size_t pl = strlen(path);
    while (pl && path[pl - 1] == '/') path[--pl] = '\0';
    mode_t t = archive_entry_filetype(en);
    if (t == AE_IFDIR) {
      if (mkdir(path, 0755) != 0 && errno != EEXIST)
        rc = fail(e, 422, name, "io", "%s: %s", name, strerror(errno));
      continue;
    }
    if (t != AE_IFREG) {
      rc = fail(e, 422, name, "link", "%s: not a regular file", name);
      break;
    }
    /* parents */
    for (char *s = path + strlen(staging) + 1; (s = strchr(s, '/')); s++) {
      *s = '\0';
      mkdir(path, 0755);
      *s = '/';
    }
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   (archive_entry_perm(en) & 0100) ? 0755 : 0644);
    if (out < 0) {
      rc = fail(e, 422, name, "duplicate", "%s: %s", name, strerror(errno));
      break;
    }
    const void *buf;
    size_t sz;
    la_int64_t off;
    uint64_t n = 0;
    while ((r = archive_read_data_block(a, &buf, &sz, &off)) == ARCHIVE_OK) {
      n += sz;
      info->unpacked_bytes += sz;
      if (n > lim->max_entry_bytes || info->unpacked_bytes > lim->max_unpacked_bytes) {
        rc = fail(e, 413, name, "too-large", "%s: too large", name);
        break;
      }
      if (write(out, buf, sz) != (ssize_t)sz) {
        rc = fail(e, 500, name, "io", "%s: %s", name, strerror(errno));
        break;
      }
    }
    close(out);
    if (rc == 0 && r != ARCHIVE_EOF)
      rc = fail(e, 422, name, "corrupt", "%s: %s", name, archive_error_string(a));
    if (rc == 0 && strcmp(name, ARCHIVE_CHECKSUMS) && strcmp(name, ARCHIVE_SIGNATURE) &&
        nf < 1024)
      snprintf(files[nf++], 256, "%s", name);
  }
  if (rc == 0 && r != ARCHIVE_EOF)
    rc = fail(e, 422, "", "corrupt", "%s", archive_error_string(a));
  archive_read_free(a);
  if (rc) return rc;
  /* CHECKSUMS */
  char p[4096];
  size_t len = 0;
  snprintf(p, sizeof p, "%s/%s", staging, ARCHIVE_CHECKSUMS);
  char *sums = slurp(p, &len);
  if (!sums) return fail(e, 422, ARCHIVE_CHECKSUMS, "missing", "no CHECKSUMS");
  size_t listed = 0;
  for (char *line = sums, *nl; rc == 0 && (nl = strchr(line, '\n')); line = nl + 1) {
    *nl = '\0';
    if (strlen(line) < 67) {
      rc = fail(e, 422, ARCHIVE_CHECKSUMS, "checksum", "bad line");
      break;
    }
    line[64] = '\0';
    char fp[4096], hex[65];
    snprintf(fp, sizeof fp, "%s/%s", staging, line + 66);
    int f = open(fp, O_RDONLY | O_NOFOLLOW);
    if (f < 0) {
      rc = fail(e, 422, line + 66, "missing", "%s: listed but absent", line + 66);
      break;
    }
    archive_sha256_fd(f, hex);
    close(f);
    if (strcmp(hex, line))
      rc = fail(e, 422, line + 66, "checksum", "%s: digest %s, CHECKSUMS says %s",
                line + 66, hex, line);
    listed++;
  }
  if (rc == 0 && listed != nf)
    rc = fail(e, 422, "", "unlisted", "a file is not listed in CHECKSUMS");
  if (rc == 0 && kr->n) {
    size_t sl = 0;
    snprintf(p, sizeof p, "%s/%s", staging, ARCHIVE_SIGNATURE);
    char *sig = slurp(p, &sl);
    json_t *j = sig ? json_loads(sig, 0, NULL) : NULL;
    free(sig);
    if (!j) {
      rc = fail(e, 403, ARCHIVE_SIGNATURE, "unsigned", "the archive is not signed");
    } else {
      const char *kid = json_string_value(json_object_get(j, "key_id"));
      const char *s64 = json_string_value(json_object_get(j, "signature"));
      size_t k = 0;
      while (k < kr->n && (!kid || strcmp(kr->keys[k].id, kid))) k++;
      unsigned char sb[64];
      size_t got = 0;
      if (k == kr->n)
        rc = fail(e, 403, ARCHIVE_SIGNATURE, "untrusted-key",
                  "signed by key %s, not a trusted key", kid ? kid : "?");
      else if (!s64 ||
               sodium_base642bin(sb, 64, s64, strlen(s64), NULL, &got, NULL,
                                 sodium_base64_VARIANT_ORIGINAL) != 0 ||
               got != 64 ||
               crypto_sign_verify_detached(sb, (unsigned char *)sums, len,
                                           kr->keys[k].pk) != 0)
        rc = fail(e, 403, ARCHIVE_SIGNATURE, "bad-signature", "bad signature");
      else
        snprintf(info->signed_by, sizeof info->signed_by, "%s", kid);
      json_decref(j);
    }
  } else if (rc == 0) {
    size_t sl = 0;
    snprintf(p, sizeof p, "%s/%s", staging, ARCHIVE_SIGNATURE);
    char *sig = slurp(p, &sl);
    json_t *j = sig ? json_loads(sig, 0, NULL) : NULL;
    const char *kid = json_string_value(json_object_get(j, "key_id"));
    (void)kid; /* without trusted keys a signature is not checked */
    json_decref(j);
    free(sig);
  }
  free(sums);
  if (rc) return rc;
  snprintf(p, sizeof p, "%s/stack.json", staging);
  json_t *sj = json_load_file(p, 0, NULL);
  if (!sj) return fail(e, 422, "stack.json", "corrupt", "no stack.json");
  snprintf(info->id, sizeof info->id, "%s",
           json_string_value(json_object_get(sj, "id")) ?: "");
  snprintf(info->version, sizeof info->version, "%s",
           json_string_value(json_object_get(sj, "version")) ?: "");
  json_decref(sj);
  return 0;
}
