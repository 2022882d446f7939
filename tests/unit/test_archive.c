/* Unit tests for the stack archive (host/stack_archive.h): pack and extract
 * round trip, reproducible packing, signatures, tampering, keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <zlib.h>

#include "stack_archive.h"

static char dir[PATH_MAX]; /* a fresh folder per test */

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/nno-archive-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  return archive_rmtree(dir);
}

/* dir/rel, in a static buffer (one of four, so calls can be combined). */
static const char *at(const char *rel) {
  static char buf[4][PATH_MAX];
  static int k;
  char *b = buf[k++ % 4];
  snprintf(b, PATH_MAX, "%s%s%s", dir, *rel ? "/" : "", rel);
  return b;
}

static void put(const char *rel, const char *text) {
  FILE *f = fopen(at(rel), "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

/* Whole file, malloc'd, NUL-terminated. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  if (len) *len = (size_t)n;
  return b;
}

static void same_file(const char *a, const char *b) {
  size_t la, lb;
  char *x = slurp(a, &la), *y = slurp(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(x, y, la);
  free(x);
  free(y);
}

static const char pkg_json[] =
    "{\"name\": \"p\", \"version\": \"1.0.0\", \"abi\": \"1.3\",\n"
    " \"kind\": \"feature\", \"library\": \"libp.so\",\n"
    " \"routes\": [{\"method\": \"GET\", \"path\": \"/p\"}]}\n";

/* A stack folder src/: stack "s" 1.2.3 of one package with a library,
 * a migration and a ui file. */
static void make_stack(void) {
  const char *dirs[] = {"src",
                        "src/packages",
                        "src/packages/p",
                        "src/packages/p/migrations",
                        "src/packages/p/migrations/db",
                        "src/packages/p/ui"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    assert_int_equal(mkdir(at(dirs[i]), 0755), 0);
  put("src/stack.json",
      "{\"id\": \"s\", \"version\": \"1.2.3\",\n"
      " \"packages\": [{\"name\": \"p\", \"version\": \"^1.0.0\"}]}\n");
  put("src/packages/p/package.json", pkg_json);
  put("src/packages/p/libp.so", "\177ELF not really a library\n");
  put("src/packages/p/migrations/db/0001_init.sql", "CREATE TABLE t(x);\n");
  put("src/packages/p/ui/index.html", "<p>hi</p>\n");
  /* Not part of the stack: left out of the archive. */
  put("src/packages/p/notes.txt", "scratch\n");
}

static void pack_to(const char *rel) {
  char written[PATH_MAX], err[1024];
  if (archive_pack(at("src"), at(rel), written, sizeof written, err,
                   sizeof err) != 0)
    fail_msg("pack: %s", err);
  assert_string_equal(written, at(rel));
}

/* Extract archive rel into a new folder `staging` (relative). */
static int extract(const char *rel, const char *staging,
                   const archive_keyring *kr, archive_info *info,
                   archive_error *e) {
  archive_limits lim = {.max_archive_bytes = 1 << 20,
                        .max_unpacked_bytes = 1 << 20,
                        .max_entry_bytes = 1 << 20,
                        .max_entries = 100,
                        .max_ratio = 100};
  assert_int_equal(mkdir(at(staging), 0755), 0);
  int fd = open(at(rel), O_RDONLY);
  assert_true(fd >= 0);
  int rc = archive_extract(fd, at(staging), &lim, kr, info, e);
  close(fd);
  return rc;
}

static void round_trip(void **state) {
  archive_info info;
  archive_error e;
  archive_keyring none = {0};
  char hex[65];
  make_stack();
  pack_to("s.tar.gz");
  if (extract("s.tar.gz", "out", &none, &info, &e) != 0)
    fail_msg("extract: %s: %s", e.kind, e.message);
  assert_string_equal(info.id, "s");
  assert_string_equal(info.version, "1.2.3");
  assert_string_equal(info.signed_by, "");
  /* CHECKSUMS, stack.json, packages/, p/, package.json, libp.so,
   * migrations/, db/, 0001_init.sql, ui/, index.html */
  assert_int_equal(info.entries, 11);
  int fd = open(at("s.tar.gz"), O_RDONLY);
  assert_int_equal(archive_sha256_fd(fd, hex), 0);
  close(fd);
  assert_string_equal(info.sha256, hex);

  const char *files[] = {
      "stack.json", "packages/p/package.json", "packages/p/libp.so",
      "packages/p/migrations/db/0001_init.sql", "packages/p/ui/index.html"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s/src/%s", dir, files[i]);
    snprintf(b, sizeof b, "%s/out/%s", dir, files[i]);
    same_file(a, b);
  }
  struct stat st;
  assert_int_equal(stat(at("out/packages/p/libp.so"), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0755);
  assert_int_equal(stat(at("out/stack.json"), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0644);
  assert_int_equal(stat(at("out/packages/p/migrations"), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0755);
  assert_int_equal(stat(at("out/packages/p/notes.txt"), &st), -1);
  char *sums = slurp(at("out/CHECKSUMS"), NULL);
  /* sha256sum's format, sorted by path. */
  size_t lines = 0;
  for (const char *c = sums; *c; c++) lines += *c == '\n';
  assert_int_equal(lines, 5);
  assert_int_equal(strspn(sums, "0123456789abcdef"), 64);
  assert_memory_equal(sums + 64, "  packages/p/libp.so\n", 21);
  assert_true(strstr(sums, "  packages/p/libp.so\n") <
              strstr(sums, "  packages/p/migrations/db/0001_init.sql\n"));
  assert_true(strstr(sums, "  packages/p/ui/index.html\n") <
              strstr(sums, "  stack.json\n"));
  free(sums);

  /* Read from the fd's offset: a prefix before the archive is not part
   * of it, nor of its digest. */
  size_t alen;
  char *arc = slurp(at("s.tar.gz"), &alen);
  FILE *f = fopen(at("prefixed"), "wb");
  assert_non_null(f);
  assert_int_equal(fwrite("JUNK", 1, 4, f), 4);
  assert_int_equal(fwrite(arc, 1, alen, f), alen);
  assert_int_equal(fclose(f), 0);
  free(arc);
  archive_limits lim = {1 << 20, 1 << 20, 1 << 20, 100, 100};
  assert_int_equal(mkdir(at("out2"), 0755), 0);
  fd = open(at("prefixed"), O_RDONLY);
  assert_int_equal(lseek(fd, 4, SEEK_SET), 4);
  assert_int_equal(archive_extract(fd, at("out2"), &lim, &none, &info, &e), 0);
  close(fd);
  assert_string_equal(info.sha256, hex);

  /* Default output name: {id}-{version}.tar.gz in the folder given. */
  char written[PATH_MAX], err[1024];
  assert_int_equal(mkdir(at("into"), 0755), 0);
  assert_int_equal(archive_pack(at("src"), at("into"), written, sizeof written,
                                err, sizeof err),
                   0);
  assert_string_equal(written, at("into/s-1.2.3.tar.gz"));
  same_file(at("s.tar.gz"), at("into/s-1.2.3.tar.gz"));
}

static void reproducible(void **state) {
  make_stack();
  pack_to("a.tar.gz");
  /* Other times and modes on disk change nothing in the archive. */
  struct timeval tv[2] = {{1000000, 0}, {2000000, 0}};
  assert_int_equal(utimes(at("src/stack.json"), tv), 0);
  assert_int_equal(utimes(at("src/packages/p/ui"), tv), 0);
  assert_int_equal(chmod(at("src/packages/p/package.json"), 0600), 0);
  pack_to("b.tar.gz");
  same_file(at("a.tar.gz"), at("b.tar.gz"));
  /* ... while a changed byte does. */
  put("src/packages/p/ui/index.html", "<p>ho</p>\n");
  pack_to("c.tar.gz");
  size_t la, lc;
  char *a = slurp(at("a.tar.gz"), &la), *c = slurp(at("c.tar.gz"), &lc);
  assert_false(la == lc && !memcmp(a, c, la));
  free(a);
  free(c);
}

static void keyring_of(const char *pub, archive_keyring *kr) {
  char err[1024];
  if (archive_keyring_load(at(pub), kr, err, sizeof err) != 0)
    fail_msg("keyring: %s", err);
}

static void sign_verify(void **state) {
  char id[17], id2[17], err[1024];
  archive_keyring kr;
  archive_info info;
  archive_error e;
  make_stack();
  pack_to("s.tar.gz");
  assert_int_equal(archive_keygen(at("k"), id, err, sizeof err), 0);
  assert_int_equal(strlen(id), 16);
  assert_int_equal(archive_sign(at("s.tar.gz"), at("k.key"),
                                at("signed.tar.gz"), id2, err, sizeof err),
                   0);
  assert_string_equal(id, id2);
  keyring_of("k.pub", &kr);
  assert_int_equal(kr.n, 1);
  assert_string_equal(kr.keys[0].id, id);
  if (extract("signed.tar.gz", "out", &kr, &info, &e) != 0)
    fail_msg("extract: %s: %s", e.kind, e.message);
  assert_string_equal(info.signed_by, id);

  /* Signing again in place replaces the signature (a second SIGNATURE
   * entry would be refused as a duplicate) and is reproducible. */
  assert_int_equal(archive_sign(at("signed.tar.gz"), at("k.key"), NULL, id2,
                                err, sizeof err),
                   0);
  assert_int_equal(archive_sign(at("s.tar.gz"), at("k.key"), at("again.tar.gz"),
                                id2, err, sizeof err),
                   0);
  same_file(at("signed.tar.gz"), at("again.tar.gz"));
  assert_int_equal(extract("signed.tar.gz", "out2", &kr, &info, &e), 0);

  /* The unsigned archive, with a keyring: refused. */
  assert_int_equal(extract("s.tar.gz", "out3", &kr, &info, &e), -1);
  assert_string_equal(e.kind, "unsigned");
  assert_int_equal(e.http, 403);
  assert_string_equal(info.id, "");
}

static void wrong_key(void **state) {
  char id[17], other[17], err[1024];
  archive_keyring kr;
  archive_info info;
  archive_error e;
  make_stack();
  pack_to("s.tar.gz");
  assert_int_equal(archive_keygen(at("k"), id, err, sizeof err), 0);
  assert_int_equal(archive_keygen(at("other"), other, err, sizeof err), 0);
  assert_int_equal(
      archive_sign(at("s.tar.gz"), at("k.key"), NULL, id, err, sizeof err), 0);
  keyring_of("other.pub", &kr);
  assert_int_equal(extract("s.tar.gz", "out", &kr, &info, &e), -1);
  assert_string_equal(e.kind, "untrusted-key");
  assert_int_equal(e.http, 403);
  assert_non_null(strstr(e.message, id));

  /* A keyring of both: accepted, signed by k. */
  char *a = slurp(at("other.pub"), NULL), *b = slurp(at("k.pub"), NULL);
  FILE *f = fopen(at("both.pub"), "w");
  assert_non_null(f);
  fprintf(f, "# operators\n%s\n%s", a, b);
  fclose(f);
  free(a);
  free(b);
  keyring_of("both.pub", &kr);
  assert_int_equal(kr.n, 2);
  assert_int_equal(extract("s.tar.gz", "out2", &kr, &info, &e), 0);
  assert_string_equal(info.signed_by, id);
}

/* Rewrite archive rel with one hex digit of CHECKSUMS changed (its first
 * entry: header at 0, data at 512; the tar header checksum covers the
 * header only). */
static void tamper_checksums(const char *rel) {
  static char buf[4 << 20];
  gzFile in = gzopen(at(rel), "rb");
  assert_non_null(in);
  int n = gzread(in, buf, sizeof buf);
  gzclose(in);
  assert_true(n > 1024 && n < (int)sizeof buf);
  assert_string_equal(buf, "CHECKSUMS");
  buf[512] = buf[512] == '0' ? '1' : '0';
  gzFile out = gzopen(at(rel), "wb");
  assert_non_null(out);
  assert_int_equal(gzwrite(out, buf, (unsigned)n), n);
  assert_int_equal(gzclose(out), Z_OK);
}

static void tampered_checksums(void **state) {
  char id[17], err[1024];
  archive_keyring none = {0}, kr;
  archive_info info;
  archive_error e;
  make_stack();
  pack_to("s.tar.gz");
  tamper_checksums("s.tar.gz");
  assert_int_equal(extract("s.tar.gz", "out", &none, &info, &e), -1);
  assert_string_equal(e.kind, "checksum");
  assert_int_equal(e.http, 422);
  assert_non_null(strstr(e.message, "CHECKSUMS says"));

  /* Signed, then tampered: the signature no longer matches. */
  pack_to("t.tar.gz");
  assert_int_equal(archive_keygen(at("k"), id, err, sizeof err), 0);
  assert_int_equal(
      archive_sign(at("t.tar.gz"), at("k.key"), NULL, id, err, sizeof err), 0);
  tamper_checksums("t.tar.gz");
  keyring_of("k.pub", &kr);
  assert_int_equal(extract("t.tar.gz", "out2", &kr, &info, &e), -1);
  assert_string_equal(e.kind, "bad-signature");
  assert_int_equal(e.http, 403);
}

static void keys_and_errors(void **state) {
  char id[17], err[1024], written[PATH_MAX];
  archive_keyring kr;
  archive_info info;
  archive_error e;
  struct stat st;
  assert_int_equal(archive_keygen(at("k"), id, err, sizeof err), 0);
  assert_int_equal(stat(at("k.key"), &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* Never overwritten. */
  assert_int_equal(archive_keygen(at("k"), id, err, sizeof err), -1);
  assert_non_null(strstr(err, "already exists"));
  /* A keyring error names the file and line. */
  put("bad.pub", "# one comment\n\ned25519:not-base64\n");
  assert_int_equal(archive_keyring_load(at("bad.pub"), &kr, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "bad.pub: line 3:"));
  /* A keyring with no key is an error, not "accept unsigned". */
  put("empty.pub", "# nothing yet\n");
  assert_int_equal(
      archive_keyring_load(at("empty.pub"), &kr, err, sizeof err), -1);
  assert_non_null(strstr(err, "empty.pub: no key"));
  /* One that others may write is refused. */
  assert_int_equal(chmod(at("k.pub"), 0666), 0);
  assert_int_equal(archive_keyring_load(at("k.pub"), &kr, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "writable by group or others"));
  assert_int_equal(chmod(at("k.pub"), 0644), 0);
  assert_int_equal(archive_keyring_load(at("k.pub"), &kr, err, sizeof err), 0);
  assert_int_equal(kr.n, 1);
  /* No path: an empty keyring. */
  assert_int_equal(archive_keyring_load("", &kr, err, sizeof err), 0);
  assert_int_equal(kr.n, 0);
  /* A public key is not a secret key. */
  make_stack();
  pack_to("s.tar.gz");
  assert_int_equal(
      archive_sign(at("s.tar.gz"), at("k.pub"), NULL, id, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a secret key file"));
  /* A link in the stack folder is not packed. */
  assert_int_equal(symlink("/etc/passwd", at("src/packages/p/ui/x")), 0);
  assert_int_equal(archive_pack(at("src"), at("l.tar.gz"), written,
                                sizeof written, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "not a regular file"));
  assert_int_equal(stat(at("l.tar.gz"), &st), -1);
  /* A staging folder that is not empty is refused. */
  assert_int_equal(mkdir(at("busy"), 0755), 0);
  put("busy/x", "");
  int fd = open(at("s.tar.gz"), O_RDONLY);
  archive_limits lim = {1 << 20, 1 << 20, 1 << 20, 100, 100};
  archive_keyring none = {0};
  assert_int_equal(archive_extract(fd, at("busy"), &lim, &none, &info, &e), -1);
  close(fd);
  assert_string_equal(e.kind, "io");
  assert_int_equal(e.http, 500);
}

static void rmtree_read_only(void **state) {
  /* Installed trees are 0555/0444: removal still empties them. */
  assert_int_equal(mkdir(at("t"), 0755), 0);
  assert_int_equal(mkdir(at("t/a"), 0755), 0);
  put("t/a/f", "x");
  assert_int_equal(symlink("/etc", at("t/a/link")), 0);
  assert_int_equal(chmod(at("t/a/f"), 0444), 0);
  assert_int_equal(chmod(at("t/a"), 0555), 0);
  assert_int_equal(chmod(at("t"), 0555), 0);
  assert_int_equal(archive_rmtree(at("t")), 0);
  struct stat st;
  assert_int_equal(lstat(at("t"), &st), -1);
  assert_int_equal(stat("/etc/passwd", &st), 0); /* the link's target stays */
  assert_int_equal(archive_rmtree(at("t")), 0);  /* gone: nothing to do */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(reproducible, setup, teardown),
      cmocka_unit_test_setup_teardown(sign_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(wrong_key, setup, teardown),
      cmocka_unit_test_setup_teardown(tampered_checksums, setup, teardown),
      cmocka_unit_test_setup_teardown(keys_and_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(rmtree_read_only, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
