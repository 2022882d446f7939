/* Stack archives read: extract one into a staging folder entry by entry,
 * refusing anything hostile, then verify CHECKSUMS and the signature
 * (format and rules in stack_archive.h). Nothing is written outside the
 * staging folder: every file is created relative to its descriptor, with
 * O_NOFOLLOW|O_EXCL, and no entry may be a link. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sodium.h>

#include "archive_internal.h"
#include "semver.h"

#define SRCBUF (64 * 1024)
#define RATIO_FLOOR ((uint64_t)1 << 20) /* ratio checked past 1 MiB out */
#define STACK_JSON "stack.json"
#define STACK_JSON_MAX (1u << 20)

/* -- names ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0], cp;
  size_t len;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0)
    len = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0)
    len = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
      (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0; /* overlong, beyond Unicode, or a surrogate */
  return len;
}

void arc_printable(const char *s, char *out, size_t cap) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), o = 0;
  if (!cap) return;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(p + i, n - i);
    char tmp[8];
    size_t tl;
    if (l == 1 && (p[i] < 0x20 || p[i] == 0x7F)) l = 0;
    if (l == 0) {
      tl = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", p[i]);
      l = 1;
    } else if (p[i] == '"' || p[i] == '\\') {
      tmp[0] = '\\', tmp[1] = (char)p[i], tl = 2;
    } else {
      memcpy(tmp, p + i, l);
      tl = l;
    }
    if (o + tl + 1 > cap) break;
    memcpy(out + o, tmp, tl);
    o += tl;
    i += l;
  }
  out[o] = '\0';
}

int arc_name_check(const char *name, const char **kind, char *why,
                   size_t whylen) {
  const unsigned char *p = (const unsigned char *)name;
  size_t n = strlen(name);
  *kind = "bad-name";
  if (n == 0) {
    snprintf(why, whylen, "empty name");
    return -1;
  }
  if (name[0] == '/') {
    *kind = "absolute-path";
    snprintf(why, whylen,
             "absolute path (entries are relative to the stack's folder)");
    return -1;
  }
  if (n > ARC_NAME_MAX) {
    snprintf(why, whylen, "name of %zu bytes (at most %d)", n, ARC_NAME_MAX);
    return -1;
  }
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(p + i, n - i);
    if (l == 0) {
      snprintf(why, whylen, "name is not UTF-8 (byte 0x%02x at %zu)", p[i], i);
      return -1;
    }
    if (l == 1 && (p[i] < 0x20 || p[i] == 0x7F)) {
      snprintf(why, whylen, "control character 0x%02x in the name", p[i]);
      return -1;
    }
    i += l;
  }
  for (const char *c = name;;) {
    size_t cl = strcspn(c, "/");
    if (cl == 2 && !strncmp(c, "..", 2)) {
      *kind = "dot-dot";
      snprintf(why, whylen,
               "\"..\" component (entries must stay inside the stack's "
               "folder)");
      return -1;
    }
    if (cl == 0 || (cl == 1 && c[0] == '.')) {
      snprintf(why, whylen, "%s component in the name", cl ? "\".\"" : "empty");
      return -1;
    }
    if (cl > ARC_COMPONENT_MAX) {
      snprintf(why, whylen, "a component of %zu bytes (at most %d)", cl,
               ARC_COMPONENT_MAX);
      return -1;
    }
    if (!c[cl]) break;
    c += cl + 1;
  }
  return 0;
}

/* -- the paths seen: an open-addressing set ---------------------------------
 * What each path is decides duplicates: a second entry of a path, a file
 * where a folder was (or the reverse), and a path going through a file. */

enum { N_IMPLICIT = 1, N_DIR, N_FILE };

typedef struct node {
  char *path; /* NULL: empty slot */
  int kind;
  int listed; /* seen in CHECKSUMS */
  unsigned char sha[crypto_hash_sha256_BYTES];
} node;

typedef struct pset {
  node *v;
  size_t cap, n; /* cap a power of two */
} pset;

static size_t hash_path(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return (size_t)h;
}

/* The slot of path[0..len): its node or the empty slot it would take. */
static node *pset_slot(pset *s, const char *path, size_t len) {
  size_t i = hash_path(path, len) & (s->cap - 1);
  for (;; i = (i + 1) & (s->cap - 1)) {
    node *nd = &s->v[i];
    if (!nd->path || (strlen(nd->path) == len && !memcmp(nd->path, path, len)))
      return nd;
  }
}

static node *pset_find(pset *s, const char *path, size_t len) {
  if (!s->cap) return NULL;
  node *nd = pset_slot(s, path, len);
  return nd->path ? nd : NULL;
}

static node *pset_add(pset *s, const char *path, size_t len, int kind) {
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 256;
    node *old = s->v;
    size_t ocap = s->cap;
    s->v = calloc(cap, sizeof *s->v);
    if (!s->v) {
      s->v = old;
      return NULL;
    }
    s->cap = cap;
    for (size_t i = 0; i < ocap; i++)
      if (old[i].path) *pset_slot(s, old[i].path, strlen(old[i].path)) = old[i];
    free(old);
  }
  node *nd = pset_slot(s, path, len);
  nd->path = strndup(path, len);
  if (!nd->path) return NULL;
  nd->kind = kind;
  s->n++;
  return nd;
}

static void pset_free(pset *s) {
  for (size_t i = 0; i < s->cap; i++) free(s->v[i].path);
  free(s->v);
}

/* -- extraction ------------------------------------------------------------ */

typedef struct ex {
  int src;  /* the archive's fd */
  int root; /* the staging folder */
  const archive_limits *lim;
  archive_error *e;
  unsigned char *buf;         /* SRCBUF bytes read from src */
  crypto_hash_sha256_state h; /* of the archive's bytes */
  uint64_t in;                /* archive bytes read */
  uint64_t out;               /* file bytes written */
  uint64_t entries;
  int over; /* the source passed max_archive_bytes */
  int rerr; /* errno of a failed read of src */
  pset set;
} ex;

static int http_of(const char *kind) {
  static const char *const big[] = {"entry-too-large", "too-large",
                                    "too-many-entries", "ratio"};
  static const char *const sig[] = {"unsigned", "untrusted-key",
                                    "bad-signature"};
  for (size_t i = 0; i < sizeof big / sizeof *big; i++)
    if (!strcmp(kind, big[i])) return 413;
  for (size_t i = 0; i < sizeof sig / sizeof *sig; i++)
    if (!strcmp(kind, sig[i])) return 403;
  return strcmp(kind, "io") ? 422 : 500;
}

/* Fill e: `file` the entry ("" for the archive), `kind`, the message. */
static int fail(archive_error *e, const char *file, const char *kind,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(archive_error *e, const char *file, const char *kind,
                const char *fmt, ...) {
  va_list ap;
  arc_printable(file, e->file, sizeof e->file);
  snprintf(e->kind, sizeof e->kind, "%s", kind);
  e->http = http_of(kind);
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return -1;
}

/* libarchive's read callback: the archive's bytes, hashed and counted. */
static la_ssize_t src_read(struct archive *a, void *ud, const void **buf) {
  ex *x = ud;
  ssize_t r;
  do r = read(x->src, x->buf, SRCBUF);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    x->rerr = errno;
    archive_set_error(a, errno, "read: %s", strerror(errno));
    return -1;
  }
  x->in += (uint64_t)r;
  if (x->in > x->lim->max_archive_bytes) {
    x->over = 1;
    archive_set_error(a, EFBIG, "archive too large");
    return -1;
  }
  crypto_hash_sha256_update(&x->h, x->buf, (size_t)r);
  *buf = x->buf;
  return r;
}

/* The error of a failed libarchive call: ours first, then its own. */
static int read_fail(ex *x, struct archive *a, const char *file) {
  if (x->over)
    return fail(x->e, "", "too-large",
                "archive: over stacks.max_archive_bytes (%llu bytes)",
                (unsigned long long)x->lim->max_archive_bytes);
  if (x->rerr)
    return fail(x->e, "", "io", "archive: read: %s", strerror(x->rerr));
  char p[256];
  arc_printable(file, p, sizeof p);
  return fail(x->e, file, "corrupt", "%s%s%snot a valid gzip'd tar: %s",
              *file ? "entry \"" : "archive", p, *file ? "\": " : ": ",
              archive_error_string(a) ? archive_error_string(a) : "unknown");
}

/* Bound checks run as bytes come out. */
static int out_bounds(ex *x, const char *name, uint64_t entry_bytes) {
  const archive_limits *l = x->lim;
  char p[256];
  arc_printable(name, p, sizeof p);
  if (entry_bytes > l->max_entry_bytes)
    return fail(x->e, name, "entry-too-large",
                "entry \"%s\": over stacks.max_entry_bytes (%llu bytes)", p,
                (unsigned long long)l->max_entry_bytes);
  if (x->out > l->max_unpacked_bytes)
    return fail(x->e, name, "too-large",
                "archive: unpacked files over stacks.max_unpacked_bytes "
                "(%llu bytes) at entry \"%s\"",
                (unsigned long long)l->max_unpacked_bytes, p);
  if (x->out > RATIO_FLOOR && x->out > l->max_ratio * x->in)
    return fail(x->e, name, "ratio",
                "archive: expands to %llu bytes from %llu read, over "
                "stacks.max_ratio (%llu) at entry \"%s\"",
                (unsigned long long)x->out, (unsigned long long)x->in,
                (unsigned long long)l->max_ratio, p);
  return 0;
}

/* Open (creating when missing, 0755) the folder holding name's last
 * component, walking from the staging folder without following links;
 * records the folders it creates. Returns its fd or -1. */
static int open_parent(ex *x, const char *name, const char **leaf) {
  int cur = dup(x->root);
  const char *c = name;
  if (cur < 0) goto io;
  for (;;) {
    size_t cl = strcspn(c, "/");
    if (!c[cl]) break;
    char comp[ARC_COMPONENT_MAX + 1];
    memcpy(comp, c, cl);
    comp[cl] = '\0';
    size_t plen = (size_t)(c - name) + cl;
    if (!pset_find(&x->set, name, plen)) {
      if (!pset_add(&x->set, name, plen, N_IMPLICIT)) goto oom;
      if (mkdirat(cur, comp, 0755) != 0) goto io;
    }
    int next =
        openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) goto io;
    close(cur);
    cur = next;
    if (fchmod(cur, 0755) != 0) goto io;
    c += cl + 1;
  }
  *leaf = c;
  return cur;
oom:
  errno = ENOMEM;
io:;
  int saved = errno;
  char p[256];
  arc_printable(name, p, sizeof p);
  if (cur >= 0) close(cur);
  fail(x->e, name, "io", "entry \"%s\": creating its folder: %s", p,
       strerror(saved));
  return -1;
}

/* Write the data of the current entry into fd, hashing it. */
static int copy_data(ex *x, struct archive *a, const char *name, int fd,
                     unsigned char sha[32]) {
  crypto_hash_sha256_state h;
  uint64_t done = 0;
  crypto_hash_sha256_init(&h);
  for (;;) {
    const void *buf;
    size_t n;
    la_int64_t off;
    int r = archive_read_data_block(a, &buf, &n, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return read_fail(x, a, name);
    if (off < 0 || (uint64_t)off != done) {
      char p[256];
      arc_printable(name, p, sizeof p);
      return fail(x->e, name, "corrupt",
                  "entry \"%s\": sparse file (a stack holds plain files)", p);
    }
    done += n;
    x->out += n;
    if (out_bounds(x, name, done) != 0) return -1;
    if (arc_write_all(fd, buf, n) != 0) {
      char p[256];
      arc_printable(name, p, sizeof p);
      return fail(x->e, name, "io", "entry \"%s\": write: %s", p,
                  strerror(errno));
    }
    crypto_hash_sha256_update(&h, buf, n);
  }
  crypto_hash_sha256_final(&h, sha);
  return 0;
}

static const char *special_kind(unsigned type) {
  switch (type) {
  case AE_IFCHR:
    return "character device";
  case AE_IFBLK:
    return "block device";
  case AE_IFIFO:
    return "FIFO";
  case AE_IFSOCK:
    return "socket";
  default:
    return "entry of an unknown type";
  }
}

/* One entry: checked, then created under the staging folder. */
static int do_entry(ex *x, struct archive *a, struct archive_entry *ent) {
  const archive_limits *l = x->lim;
  const char *raw = archive_entry_pathname(ent);
  char name[ARC_NAME_MAX + 2], p[256], why[160];
  const char *kind;
  if (!raw) raw = archive_entry_pathname_utf8(ent);
  if (!raw)
    return fail(x->e, "", "bad-name",
                "archive: an entry without a "
                "name that can be read");
  arc_printable(raw, p, sizeof p);

  if (++x->entries > l->max_entries)
    return fail(x->e, raw, "too-many-entries",
                "archive: more than stacks.max_entries (%llu) entries",
                (unsigned long long)l->max_entries);
  if (strlen(raw) > ARC_NAME_MAX + 1)
    return fail(x->e, raw, "bad-name",
                "entry \"%s\": name of %zu bytes (at most %d)", p, strlen(raw),
                ARC_NAME_MAX);
  unsigned type = archive_entry_filetype(ent);
  snprintf(name, sizeof name, "%s", raw);
  size_t n = strlen(name);
  if (type == AE_IFDIR && n > 1 && name[n - 1] == '/') name[--n] = '\0';
  if (arc_name_check(name, &kind, why, sizeof why) != 0)
    return fail(x->e, raw, kind, "entry \"%s\": %s", p, why);
  arc_printable(name, p, sizeof p);

  /* Regular files and folders only: a link could lead a later entry
   * anywhere, and a stack has no use for devices. */
  const char *target = archive_entry_hardlink(ent);
  if (target || type == AE_IFLNK) {
    char t[256];
    if (!target) target = archive_entry_symlink(ent);
    arc_printable(target ? target : "", t, sizeof t);
    return fail(x->e, name, "link",
                "entry \"%s\": %s link to \"%s\" (a stack archive holds "
                "regular files and folders only)",
                p, type == AE_IFLNK ? "symbolic" : "hard", t);
  }
  if (type != AE_IFREG && type != AE_IFDIR)
    return fail(x->e, name, "special-file",
                "entry \"%s\": %s (a stack archive holds regular files and "
                "folders only)",
                p, special_kind(type));

  if (type == AE_IFREG && archive_entry_size_is_set(ent)) {
    la_int64_t size = archive_entry_size(ent);
    if (size < 0) size = 0;
    if ((uint64_t)size > l->max_entry_bytes)
      return fail(x->e, name, "entry-too-large",
                  "entry \"%s\": %lld bytes, over stacks.max_entry_bytes "
                  "(%llu)",
                  p, (long long)size, (unsigned long long)l->max_entry_bytes);
    if (x->out + (uint64_t)size > l->max_unpacked_bytes)
      return fail(x->e, name, "too-large",
                  "archive: unpacked files over stacks.max_unpacked_bytes "
                  "(%llu bytes) at entry \"%s\"",
                  (unsigned long long)l->max_unpacked_bytes, p);
  }

  /* Duplicates: through a file, a second entry, a file for a folder. */
  for (size_t i = 0; i < n; i++) {
    if (name[i] != '/') continue;
    node *nd = pset_find(&x->set, name, i);
    if (nd && nd->kind == N_FILE) {
      char f[256];
      arc_printable(nd->path, f, sizeof f);
      return fail(x->e, name, "duplicate",
                  "entry \"%s\": its path goes through the file \"%s\"", p, f);
    }
  }
  node *nd = pset_find(&x->set, name, n);
  if (nd && !(type == AE_IFDIR && nd->kind == N_IMPLICIT))
    return fail(x->e, name, "duplicate", "entry \"%s\": %s", p,
                nd->kind == N_FILE && type == AE_IFDIR
                    ? "a folder where an earlier entry is a file"
                : nd->kind != N_FILE && type == AE_IFREG
                    ? "a file where an earlier entry is a folder"
                    : "a second entry of the same path");

  const char *leaf;
  int dfd = open_parent(x, name, &leaf);
  if (dfd < 0) return -1;
  int rc = -1;
  if (type == AE_IFDIR) {
    if (!nd && mkdirat(dfd, leaf, 0755) != 0) goto io;
    int fd = openat(dfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) goto io;
    int cr = fchmod(fd, 0755);
    close(fd);
    if (cr != 0) goto io;
    if (nd)
      nd->kind = N_DIR;
    else if (!pset_add(&x->set, name, n, N_DIR))
      goto oom;
    rc = 0;
  } else {
    mode_t mode = (archive_entry_perm(ent) & 0111) ? 0755 : 0644;
    int fd = openat(dfd, leaf,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) goto io;
    node *f = pset_add(&x->set, name, n, N_FILE);
    if (!f) {
      close(fd);
      goto oom;
    }
    if (fchmod(fd, mode) != 0) {
      close(fd);
      goto io;
    }
    rc = copy_data(x, a, name, fd, f->sha);
    if (close(fd) != 0 && rc == 0) goto io;
  }
  close(dfd);
  return rc;
oom:
  errno = ENOMEM;
io:;
  int saved = errno;
  close(dfd);
  return fail(x->e, name, "io", "entry \"%s\": %s", p, strerror(saved));
}

/* -- verification ------------------------------------------------------- */

static int read_member(ex *x, const char *name, size_t max, char **out,
                       size_t *len) {
  if (arc_read_file(x->root, name, max, out, len) == 0) return 0;
  if (errno == EFBIG)
    return fail(x->e, name, "corrupt", "entry \"%s\": over %zu bytes", name,
                max);
  return fail(x->e, name, "io", "entry \"%s\": %s", name, strerror(errno));
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int archive_signature_check(const char *text, size_t len, const char *sums,
                            size_t slen, const archive_keyring *kr,
                            char signed_by[17], archive_error *e) {
  size_t nkeys = kr ? kr->n : 0;
  if (!text && nkeys == 0) return 0;
  if (!text)
    return fail(e, "", "unsigned",
                "archive: not signed, and stacks.trusted_keys requires a "
                "signature by one of its %zu keys",
                kr->n);
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  const char *alg = json_string_value(json_object_get(j, "algorithm"));
  const char *kid = json_string_value(json_object_get(j, "key_id"));
  const char *b64 = json_string_value(json_object_get(j, "signature"));
  unsigned char sig[crypto_sign_BYTES];
  size_t got = 0;
  const char *end = NULL;
  int rc = -1;
  if (!json_is_object(j) || json_object_size(j) != 3 || !alg ||
      strcmp(alg, "ed25519") || !kid ||
      strlen(kid) != 16 || !b64 ||
      sodium_base642bin(sig, sizeof sig, b64, strlen(b64), NULL, &got, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      got != sizeof sig || *end) {
    fail(e, ARCHIVE_SIGNATURE, "bad-signature",
         "entry \"SIGNATURE\": expected {\"algorithm\":\"ed25519\","
         "\"key_id\":\"<16 hex>\",\"signature\":\"<base64 of 64 bytes>\"} "
         "and no other field");
    goto out;
  }
  if (nkeys == 0) { /* well formed; no key to check it against */
    rc = 0;
    goto out;
  }
  const unsigned char *pk = NULL;
  for (size_t i = 0; i < nkeys; i++)
    if (!strcmp(kr->keys[i].id, kid)) pk = kr->keys[i].pk;
  char k[40];
  arc_printable(kid, k, sizeof k);
  if (!pk) {
    fail(e, ARCHIVE_SIGNATURE, "untrusted-key",
         "archive: signed by key %s, which is not in stacks.trusted_keys", k);
    goto out;
  }
  if (crypto_sign_verify_detached(sig, (const unsigned char *)sums, slen, pk) !=
      0) {
    fail(e, ARCHIVE_SIGNATURE, "bad-signature",
         "archive: the signature by key %s does not match its CHECKSUMS", k);
    goto out;
  }
  snprintf(signed_by, 17, "%s", kid);
  rc = 0;
out:
  json_decref(j);
  return rc;
}

/* The SIGNATURE over CHECKSUMS, by a key of the keyring (see
 * archive_signature_check). */
static int verify_signature(ex *x, const archive_keyring *kr, const char *sums,
                            size_t slen, char signed_by[17]) {
  node *nd = pset_find(&x->set, ARCHIVE_SIGNATURE, strlen(ARCHIVE_SIGNATURE));
  char *text = NULL;
  size_t len = 0;
  if (nd && nd->kind == N_FILE &&
      read_member(x, ARCHIVE_SIGNATURE, ARC_SIGNATURE_MAX, &text, &len) != 0)
    return -1;
  int rc = archive_signature_check(text, len, sums, slen, kr, signed_by, x->e);
  free(text);
  return rc;
}

/* Every line of CHECKSUMS names an extracted file with its digest, and
 * every extracted file (but CHECKSUMS and SIGNATURE) has a line. */
static int verify_checksums(ex *x, char *sums, size_t slen) {
  size_t lineno = 0;
  for (char *s = sums; s < sums + slen;) {
    char *nl = memchr(s, '\n', (size_t)(sums + slen - s));
    lineno++;
    size_t ll = nl ? (size_t)(nl - s) : (size_t)(sums + slen - s);
    int ok = nl && ll > 66 && s[64] == ' ' && s[65] == ' ';
    unsigned char want[32];
    for (int i = 0; ok && i < 32; i++) {
      int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
      if (hi < 0 || lo < 0)
        ok = 0;
      else
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!ok)
      return fail(x->e, ARCHIVE_CHECKSUMS, "checksum",
                  "CHECKSUMS line %zu: expected \"<64 lower-case hex>  "
                  "<path>\" ending in a newline",
                  lineno);
    const char *path = s + 66;
    size_t plen = ll - 66;
    char p[256];
    char pbuf[ARC_NAME_MAX + 1];
    snprintf(pbuf, sizeof pbuf, "%.*s",
             (int)(plen < ARC_NAME_MAX ? plen : ARC_NAME_MAX), path);
    arc_printable(pbuf, p, sizeof p);
    if ((plen == strlen(ARCHIVE_CHECKSUMS) &&
         !memcmp(path, ARCHIVE_CHECKSUMS, plen)) ||
        (plen == strlen(ARCHIVE_SIGNATURE) &&
         !memcmp(path, ARCHIVE_SIGNATURE, plen)))
      return fail(x->e, pbuf, "checksum",
                  "CHECKSUMS line %zu lists \"%s\", which it cannot cover",
                  lineno, p);
    node *nd = pset_find(&x->set, path, plen);
    if (!nd || nd->kind != N_FILE)
      return fail(x->e, pbuf, "missing",
                  "entry \"%s\": listed in CHECKSUMS (line %zu) but %s", p,
                  lineno,
                  nd ? "a folder in the archive" : "not in the archive");
    if (nd->listed)
      return fail(x->e, pbuf, "checksum",
                  "entry \"%s\": listed twice in CHECKSUMS (line %zu)", p,
                  lineno);
    nd->listed = 1;
    if (memcmp(want, nd->sha, 32) != 0) {
      char have[65], said[65];
      arc_hex(nd->sha, 32, have);
      arc_hex(want, 32, said);
      return fail(x->e, pbuf, "checksum",
                  "entry \"%s\": sha256 is %s, CHECKSUMS says %s", p, have,
                  said);
    }
    s = nl + 1;
  }
  /* The first unlisted file in path order, for a stable message. */
  const char *first = NULL;
  for (size_t i = 0; i < x->set.cap; i++) {
    node *nd = &x->set.v[i];
    if (!nd->path || nd->kind != N_FILE || nd->listed ||
        !strcmp(nd->path, ARCHIVE_CHECKSUMS) ||
        !strcmp(nd->path, ARCHIVE_SIGNATURE))
      continue;
    if (!first || strcmp(nd->path, first) < 0) first = nd->path;
  }
  if (first) {
    char p[256];
    arc_printable(first, p, sizeof p);
    return fail(x->e, first, "unlisted",
                "entry \"%s\": not listed in CHECKSUMS", p);
  }
  return 0;
}

static int id_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64 || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '-'))
      return 0;
  return 1;
}

/* The id and version of stack.json (its full check is the loader's). */
static int read_identity(ex *x, archive_info *info) {
  node *nd = pset_find(&x->set, STACK_JSON, strlen(STACK_JSON));
  if (!nd || nd->kind != N_FILE)
    return fail(x->e, STACK_JSON, "missing",
                "archive: no stack.json at its root");
  char *text = NULL;
  size_t len = 0;
  if (read_member(x, STACK_JSON, STACK_JSON_MAX, &text, &len) != 0) return -1;
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  free(text);
  const char *id = json_string_value(json_object_get(j, "id"));
  const char *ver = json_string_value(json_object_get(j, "version"));
  semver sv;
  int rc = -1;
  if (!j)
    fail(x->e, STACK_JSON, "corrupt", "entry \"stack.json\": line %d: %s",
         je.line, je.text);
  else if (!id || !id_ok(id))
    fail(x->e, STACK_JSON, "corrupt",
         "entry \"stack.json\": field \"id\": expected a name matching "
         "[a-z][a-z0-9-]{0,63}");
  else if (!ver || strlen(ver) >= sizeof info->version ||
           semver_parse(ver, &sv) != 0)
    fail(x->e, STACK_JSON, "corrupt",
         "entry \"stack.json\": field \"version\": expected a semantic "
         "version (1.2.3)");
  else {
    snprintf(info->id, sizeof info->id, "%s", id);
    snprintf(info->version, sizeof info->version, "%s", ver);
    rc = 0;
  }
  json_decref(j);
  return rc;
}

/* 0 when the folder fd has no entries. */
static int dir_empty(int fd) {
  int d = dup(fd);
  if (d < 0) return -1;
  DIR *dp = fdopendir(d);
  if (!dp) {
    close(d);
    return -1;
  }
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(dp)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      rc = -1;
      errno = ENOTEMPTY;
      break;
    }
  closedir(dp);
  return rc;
}

int archive_extract(int fd, const char *staging, const archive_limits *lim,
                    const archive_keyring *kr, archive_info *info,
                    archive_error *e) {
  ex x = {.src = fd, .root = -1, .lim = lim, .e = e};
  struct archive *a = NULL;
  char *sums = NULL;
  size_t slen = 0;
  int rc = -1;

  memset(info, 0, sizeof *info);
  memset(e, 0, sizeof *e);
  if (sodium_init() < 0)
    return fail(e, "", "io", "libsodium failed to initialise");
  x.root = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (x.root < 0 || dir_empty(x.root) != 0) {
    fail(e, "", "io", "staging folder %s: %s", staging, strerror(errno));
    goto out;
  }
  /* A file known to be too large is refused before it is read. */
  struct stat st;
  off_t at = lseek(fd, 0, SEEK_CUR);
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && at >= 0 &&
      st.st_size > at && (uint64_t)(st.st_size - at) > lim->max_archive_bytes) {
    fail(e, "", "too-large",
         "archive: %lld bytes, over stacks.max_archive_bytes (%llu)",
         (long long)(st.st_size - at),
         (unsigned long long)lim->max_archive_bytes);
    goto out;
  }
  x.buf = malloc(SRCBUF);
  a = archive_read_new();
  if (!x.buf || !a) {
    fail(e, "", "io", "out of memory");
    goto out;
  }
  crypto_hash_sha256_init(&x.h);
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open(a, &x, NULL, src_read, NULL) != ARCHIVE_OK) {
    read_fail(&x, a, "");
    goto out;
  }
  for (;;) {
    struct archive_entry *ent;
    int r = archive_read_next_header(a, &ent);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      read_fail(&x, a, "");
      goto out;
    }
    if (archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
      fail(e, "", "corrupt", "archive: a tar that is not gzip'd (%s)",
           archive_filter_name(a, 0));
      goto out;
    }
    if (do_entry(&x, a, ent) != 0) goto out;
  }
  if (archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
    fail(e, "", "corrupt", "archive: not gzip'd");
    goto out;
  }
  /* The rest of the file (tar padding, gzip trailer) counts in its size
   * and its digest. */
  for (;;) {
    la_ssize_t r = src_read(a, &x, &(const void *){NULL});
    if (r < 0) {
      read_fail(&x, a, "");
      goto out;
    }
    if (r == 0) break;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&x.h, digest);
  arc_hex(digest, sizeof digest, info->sha256);

  node *cs = pset_find(&x.set, ARCHIVE_CHECKSUMS, strlen(ARCHIVE_CHECKSUMS));
  if (!cs || cs->kind != N_FILE) {
    fail(e, ARCHIVE_CHECKSUMS, "missing",
         "archive: no CHECKSUMS at its root ('nno stack pack' writes one)");
    goto out;
  }
  if (read_member(&x, ARCHIVE_CHECKSUMS, ARC_CHECKSUMS_MAX, &sums, &slen))
    goto out;
  if (verify_signature(&x, kr, sums, slen, info->signed_by) != 0)
    goto out;
  if (verify_checksums(&x, sums, slen) != 0) goto out;
  if (read_identity(&x, info) != 0) goto out;
  info->unpacked_bytes = x.out;
  info->entries = x.entries;
  rc = 0;
out:
  if (rc != 0) memset(info, 0, sizeof *info);
  free(sums);
  if (a) archive_read_free(a);
  free(x.buf);
  pset_free(&x.set);
  if (x.root >= 0) close(x.root);
  return rc;
}

/* -- removal --------------------------------------------------------------- */

/* Empty the folder `fd` (owned: closed here), depth-first. */
static int rm_contents(int fd, int depth) {
  if (depth > 256) {
    close(fd);
    errno = ELOOP;
    return -1;
  }
  /* Installed trees are read-only: the folder must be writable to empty. */
  (void)fchmod(fd, 0700);
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  int rc = 0;
  struct dirent *de;
  while ((errno = 0, de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) rc = -1;
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(fd, de->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 || rm_contents(sub, depth + 1) != 0 ||
          unlinkat(fd, de->d_name, AT_REMOVEDIR) != 0)
        rc = -1;
    } else if (unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT) {
      rc = -1;
    }
  }
  if (errno) rc = -1;
  int saved = errno;
  closedir(d);
  errno = saved;
  return rc;
}

int archive_rmtree(const char *dir) {
  struct stat st;
  if (lstat(dir, &st) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(dir);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  if (rm_contents(fd, 0) != 0) return -1;
  return rmdir(dir);
}
