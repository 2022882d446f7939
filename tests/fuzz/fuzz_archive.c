/* Stack archive extraction (host/archive_extract.c). The input is a flags
 * byte, then a tar (flag bit 0 clear: gzip'd here, so the fuzzer mutates
 * tar headers) or a gzip stream as is (bit 0 set). It is extracted with
 * small limits into a fresh staging folder inside a scratch folder, and
 * whatever it holds:
 *   - extraction returns 0 or -1; a refusal has a known kind, the HTTP
 *     status of that kind, and a one-line message;
 *   - an acceptance names a valid id, a version and a 64-hex digest;
 *   - the scratch folder holds only the staging folder, and the staging
 *     folder only regular files (0644/0755) and folders (0755): nothing
 *     was written outside it, no link or device was made;
 *   - archive_rmtree removes it all. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "stack_archive.h"
#include "fuzz.h"

static const struct {
  const char *kind;
  int http;
} kinds[] = {
    {"absolute-path", 422}, {"dot-dot", 422},          {"link", 422},
    {"special-file", 422},  {"duplicate", 422},        {"entry-too-large", 413},
    {"too-large", 413},     {"too-many-entries", 413}, {"ratio", 413},
    {"bad-name", 422},      {"checksum", 422},         {"unlisted", 422},
    {"missing", 422},       {"corrupt", 422},          {"io", 500},
};

/* Every entry under fd: regular files and folders with the format's
 * modes, at most `depth` deep. */
static void check_tree(int fd, int depth) {
  FUZZ_ASSERT(depth < 600);
  DIR *d = fdopendir(fd);
  FUZZ_ASSERT(d != NULL);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    FUZZ_ASSERT(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
    mode_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      FUZZ_ASSERT(perm == 0755);
      int sub = openat(dirfd(d), de->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      FUZZ_ASSERT(sub >= 0);
      check_tree(sub, depth + 1);
    } else {
      FUZZ_ASSERT(S_ISREG(st.st_mode));
      FUZZ_ASSERT(perm == 0644 || perm == 0755);
    }
  }
  closedir(d);
}

/* gzip of in[0..n) into a malloc'd buffer. */
static unsigned char *gzip_of(const uint8_t *in, size_t n, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  FUZZ_ASSERT(deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) ==
              Z_OK);
  size_t cap = deflateBound(&z, (uLong)n) + 64;
  unsigned char *out = malloc(cap);
  FUZZ_ASSERT(out != NULL);
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
  *out_len = z.total_out;
  deflateEnd(&z);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1 << 20)) return 0;
  uint8_t flags = data[0];
  data++, size--;
  size_t len = size;
  unsigned char *gz = NULL;
  const void *bytes = data;
  if (!(flags & 1)) bytes = gz = gzip_of(data, size, &len);

  int fd = memfd_create("archive", MFD_CLOEXEC);
  FUZZ_ASSERT(fd >= 0);
  FUZZ_ASSERT(write(fd, bytes, len) == (ssize_t)len);
  FUZZ_ASSERT(lseek(fd, 0, SEEK_SET) == 0);
  free(gz);

  char base[] = "/tmp/nno-fuzz-archive-XXXXXX", staging[PATH_MAX];
  FUZZ_ASSERT(mkdtemp(base) != NULL);
  snprintf(staging, sizeof staging, "%s/s", base);
  FUZZ_ASSERT(mkdir(staging, 0755) == 0);

  archive_limits lim = {.max_archive_bytes = 1 << 20,
                        .max_unpacked_bytes = 4 << 20,
                        .max_entry_bytes = 2 << 20,
                        .max_entries = 200,
                        .max_ratio = 50};
  archive_keyring none = {0};
  archive_info info;
  archive_error e;
  int rc = archive_extract(fd, staging, &lim, &none, &info, &e);
  close(fd);
  FUZZ_ASSERT(rc == 0 || rc == -1);
  if (rc == 0) {
    FUZZ_ASSERT(info.id[0] >= 'a' && info.id[0] <= 'z');
    FUZZ_ASSERT(info.version[0] != '\0');
    FUZZ_ASSERT(strlen(info.sha256) == 64);
    FUZZ_ASSERT(info.entries >= 1 && info.entries <= lim.max_entries);
    FUZZ_ASSERT(info.unpacked_bytes <= lim.max_unpacked_bytes);
  } else {
    size_t i = 0, n = sizeof kinds / sizeof *kinds;
    while (i < n && strcmp(kinds[i].kind, e.kind)) i++;
    FUZZ_ASSERT(i < n);
    FUZZ_ASSERT(e.http == kinds[i].http);
    FUZZ_ASSERT(e.message[0] != '\0');
    FUZZ_ASSERT(strchr(e.message, '\n') == NULL);
  }

  /* The scratch folder holds the staging folder and nothing else. */
  DIR *d = opendir(base);
  FUZZ_ASSERT(d != NULL);
  struct dirent *de;
  while ((de = readdir(d)))
    FUZZ_ASSERT(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                !strcmp(de->d_name, "s"));
  closedir(d);
  int sfd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  FUZZ_ASSERT(sfd >= 0);
  check_tree(sfd, 0);
  FUZZ_ASSERT(archive_rmtree(base) == 0);
  return 0;
}
