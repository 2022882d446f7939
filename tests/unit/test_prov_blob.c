/* Unit tests of the provisioning plugin's blob driver (driver_blob.c):
 * put, head, list, delete, read; keys that try to escape the bucket
 * ("../", absolute, "%2e", NUL, backslash) refused or kept inside it; a
 * link planted in the bucket never followed; atomic replace; the quota
 * with nothing partial written; the sweep after a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <nno/plugin.h>
#include <sodium.h>

#include "prov_fixture.h"

static char g_dir[256];

static int setup(void **state) {
  if (sodium_init() < 0 || pfx_setup(state)) return -1;
  pfx *f = *state;
  pfx_path(f, "blob", "files", g_dir, sizeof g_dir);
  return pblob_create(g_dir, f->msg, sizeof f->msg);
}

static int blob(pfx *f, int op, const char *key, size_t klen, const char *data,
                prov_out *o) {
  prov_out_init(o);
  return pblob_run(g_dir, &f->b, &f->q, op, key, klen, "text/plain", data,
                   data ? strlen(data) : 0, NULL, 100, o);
}

static int put(pfx *f, const char *key, const char *data) {
  prov_out o;
  int rc = blob(f, 'p', key, strlen(key), data, &o);
  prov_out_free(&o);
  return rc;
}

/* The object's bytes through pblob_read, into out; 1 found, 0 not. */
static int read_all(const char *key, char *out, size_t cap) {
  prov_out o;
  prov_out_init(&o);
  assert_int_equal(pblob_read(g_dir, key, strlen(key), &o), 0);
  int found = o.found;
  if (found) {
    assert_true(o.fd >= 0);
    ssize_t n = read(o.fd, out, cap - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    assert_int_equal((uint64_t)n, o.size);
  }
  prov_out_free(&o);
  return found;
}

/* Entries of the bucket folder, by kind. */
static void entries(int *objects, int *temps, int *others) {
  DIR *d = opendir(g_dir);
  *objects = *temps = *others = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
      continue;
    if (!strncmp(e->d_name, "index.db", 8)) continue;
    if (e->d_name[0] == 'o') (*objects)++;
    else if (!strncmp(e->d_name, ".tmp-", 5)) (*temps)++;
    else (*others)++;
  }
  closedir(d);
}

static void basics(void **state) {
  pfx *f = *state;
  prov_out o;
  char buf[64];
  assert_int_equal(put(f, "docs/a.txt", "hello"), 0);
  assert_int_equal(blob(f, 'h', "docs/a.txt", 10, NULL, &o), 0);
  assert_int_equal(o.found, 1);
  assert_int_equal(o.size, 5);
  assert_string_equal(o.ctype, "text/plain");
  assert_true(o.etag[0] == '"' && o.etag[strlen(o.etag) - 1] == '"');
  char etag[72];
  snprintf(etag, sizeof etag, "%s", o.etag);
  prov_out_free(&o);
  assert_int_equal(read_all("docs/a.txt", buf, sizeof buf), 1);
  assert_string_equal(buf, "hello");
  /* the same content: the same etag */
  assert_int_equal(put(f, "docs/b.txt", "hello"), 0);
  assert_int_equal(blob(f, 'h', "docs/b.txt", 10, NULL, &o), 0);
  assert_string_equal(o.etag, etag);
  prov_out_free(&o);
  assert_int_equal(put(f, "other", "x"), 0);
  prov_out_init(&o);
  assert_int_equal(pblob_run(g_dir, &f->b, &f->q, 'l', "docs/", 5, NULL, NULL,
                             0, NULL, 1, &o),
                   0);
  json_t *arr = json_loads(o.json, 0, NULL);
  assert_int_equal(json_array_size(arr), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "key")),
                      "docs/a.txt");
  json_decref(arr);
  char cur[2100];
  snprintf(cur, sizeof cur, "%s", o.cursor);
  assert_true(cur[0] != '\0');
  prov_out_free(&o);
  prov_out_init(&o);
  assert_int_equal(pblob_run(g_dir, &f->b, &f->q, 'l', "docs/", 5, NULL, NULL,
                             0, cur, 1, &o),
                   0);
  assert_non_null(strstr(o.json, "docs/b.txt"));
  assert_string_equal(o.cursor, "");
  prov_out_free(&o);
  assert_int_equal(blob(f, 'd', "docs/a.txt", 10, NULL, &o), 0);
  assert_int_equal(o.found, 1);
  prov_out_free(&o);
  assert_int_equal(blob(f, 'd', "docs/a.txt", 10, NULL, &o), 0);
  assert_int_equal(o.found, 0);
  prov_out_free(&o);
  assert_int_equal(read_all("docs/a.txt", buf, sizeof buf), 0);
  int objs, temps, others;
  entries(&objs, &temps, &others);
  assert_int_equal(objs, 2);
  assert_int_equal(temps + others, 0);
}

static void escapes(void **state) {
  pfx *f = *state;
  static const char *const bad[] = {"../x",  "/etc/passwd", "a/../b", "a//b",
                                    "a/./b", ".",          "..",     "a\\b",
                                    "a/",    "a\nb",       ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(put(f, bad[i], "x"), NNO_EINVAL);
  prov_out o;
  assert_int_equal(blob(f, 'p', "a\0b", 3, "x", &o), NNO_EINVAL);
  prov_out_free(&o);
  /* allowed names that only look like escapes stay inside the bucket */
  assert_int_equal(put(f, "%2e%2e/%2e%2e/x", "in"), 0);
  assert_int_equal(put(f, "...", "in"), 0);
  int objs, temps, others;
  entries(&objs, &temps, &others);
  assert_int_equal(objs, 2);
  assert_int_equal(temps + others, 0);
  char p[512];
  snprintf(p, sizeof p, "%s/platforms/acme/x", f->data);
  assert_int_equal(access(p, F_OK), -1);
}

/* The object file name of `key`, as the driver names it. */
static void object_path(const char *key, char *out, size_t cap) {
  unsigned char h[32];
  char hex[65];
  crypto_generichash(h, sizeof h, (const unsigned char *)key, strlen(key),
                     NULL, 0);
  prov_hex(h, sizeof h, hex, sizeof hex);
  snprintf(out, cap, "%s/o%s", g_dir, hex);
}

static void planted_links(void **state) {
  pfx *f = *state;
  char obj[512], target[512], buf[64];
  snprintf(target, sizeof target, "%s/secret", f->data);
  FILE *t = fopen(target, "w");
  fputs("secret", t);
  fclose(t);
  /* a link where an indexed object lives: reading refuses it */
  assert_int_equal(put(f, "k", "mine"), 0);
  object_path("k", obj, sizeof obj);
  assert_int_equal(unlink(obj), 0);
  assert_int_equal(symlink(target, obj), 0);
  prov_out o;
  prov_out_init(&o);
  assert_int_equal(pblob_read(g_dir, "k", 1, &o), NNO_EIO);
  assert_int_equal(o.fd, -1);
  prov_out_free(&o);
  /* a put replaces the link itself; the target is untouched */
  assert_int_equal(put(f, "k", "new"), 0);
  struct stat st;
  assert_int_equal(lstat(obj, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  t = fopen(target, "r");
  assert_non_null(fgets(buf, sizeof buf, t));
  fclose(t);
  assert_string_equal(buf, "secret");
  assert_int_equal(read_all("k", buf, sizeof buf), 1);
  assert_string_equal(buf, "new");
  /* the bucket folder itself a link: refused */
  char moved[512];
  snprintf(moved, sizeof moved, "%s/moved", f->data);
  assert_int_equal(rename(g_dir, moved), 0);
  assert_int_equal(symlink(moved, g_dir), 0);
  assert_int_equal(put(f, "k2", "x"), NNO_EIO);
  prov_out_init(&o);
  assert_int_not_equal(pblob_read(g_dir, "k", 1, &o), 0);
  prov_out_free(&o);
  /* the index a link: refused */
  unlink(g_dir);
  assert_int_equal(rename(moved, g_dir), 0);
  char idx[512];
  snprintf(idx, sizeof idx, "%s/index.db", g_dir);
  snprintf(moved, sizeof moved, "%s/index-moved.db", f->data);
  assert_int_equal(rename(idx, moved), 0);
  assert_int_equal(symlink(moved, idx), 0);
  assert_int_equal(put(f, "k3", "x"), NNO_EIO);
}

static void atomic_replace(void **state) {
  pfx *f = *state;
  char old[8192], buf[8192];
  memset(old, 'a', sizeof old - 1);
  old[sizeof old - 1] = '\0';
  assert_int_equal(put(f, "k", old), 0);
  prov_out o;
  prov_out_init(&o);
  assert_int_equal(pblob_read(g_dir, "k", 1, &o), 0);
  int fd = o.fd;
  o.fd = -1;
  prov_out_free(&o);
  assert_int_equal(put(f, "k", "short"), 0);
  /* the reader that opened before still reads the whole old object */
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  assert_int_equal(n, (ssize_t)strlen(old));
  assert_memory_equal(buf, old, (size_t)n);
  assert_int_equal(read_all("k", buf, sizeof buf), 1);
  assert_string_equal(buf, "short");
  int objs, temps, others;
  entries(&objs, &temps, &others);
  assert_int_equal(objs, 1);
  assert_int_equal(temps + others, 0);
  /* over the size bound */
  f->b.blob_max = 4;
  assert_int_equal(put(f, "k", "12345"), NNO_ETOOBIG);
  assert_int_equal(read_all("k", buf, sizeof buf), 1);
  assert_string_equal(buf, "short");
}

static void quota(void **state) {
  pfx *f = *state;
  char big[5000], buf[64];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(put(f, "k", "small"), 0);
  f->q.limit = prov_usage(f->pdir) + 1000;
  assert_int_equal(put(f, "big", big), NNO_EQUOTA);
  assert_int_equal(put(f, "k", big), NNO_EQUOTA);
  assert_int_equal(read_all("k", buf, sizeof buf), 1);
  assert_string_equal(buf, "small");
  assert_int_equal(read_all("big", buf, sizeof buf), 0);
  int objs, temps, others;
  entries(&objs, &temps, &others);
  assert_int_equal(objs, 1);
  assert_int_equal(temps + others, 0);
  /* the usage counts the objects */
  f->q.limit = 0;
  assert_int_equal(put(f, "big", big), 0);
  assert_true(pblob_usage(g_dir) >= 5 + sizeof big - 1);
  assert_true(prov_usage(f->pdir) >= pblob_usage(g_dir));
}

static void sweep(void **state) {
  pfx *f = *state;
  char p[512], obj[512];
  assert_int_equal(put(f, "kept", "k"), 0);
  assert_int_equal(put(f, "lost", "l"), 0);
  /* a crash mid-put: a temp file; after the rename, before the row: an
   * orphan object, and an indexed object whose file went */
  snprintf(p, sizeof p, "%s/.tmp-0123", g_dir);
  close(open(p, O_WRONLY | O_CREAT, 0600));
  object_path("orphan", obj, sizeof obj);
  close(open(obj, O_WRONLY | O_CREAT, 0600));
  object_path("lost", obj, sizeof obj);
  unlink(obj);
  /* a replaced object whose row still has the old size */
  object_path("kept", obj, sizeof obj);
  FILE *fp = fopen(obj, "w");
  fputs("longer", fp);
  fclose(fp);
  snprintf(p, sizeof p, "%s/planted", g_dir);
  assert_int_equal(symlink("/etc/passwd", p), 0);
  assert_int_equal(pblob_sweep(g_dir, &f->q), 0);
  int objs, temps, others;
  entries(&objs, &temps, &others);
  assert_int_equal(objs, 1);
  assert_int_equal(temps + others, 0);
  prov_out o;
  assert_int_equal(blob(f, 'h', "lost", 4, NULL, &o), 0);
  assert_int_equal(o.found, 0);
  prov_out_free(&o);
  assert_int_equal(blob(f, 'h', "kept", 4, NULL, &o), 0);
  assert_int_equal(o.size, 6);
  prov_out_free(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(basics, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(escapes, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(planted_links, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(atomic_replace, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(quota, setup, pfx_teardown),
      cmocka_unit_test_setup_teardown(sweep, setup, pfx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
