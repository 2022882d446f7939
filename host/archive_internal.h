/* Shared between the archive files: archive_keys.c (keys, limits),
 * archive_pack.c (pack, sign, digests) and archive_extract.c. */
#ifndef NNO_HOST_ARCHIVE_INTERNAL_H
#define NNO_HOST_ARCHIVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "stack_archive.h"

#define ARC_NAME_MAX 1024     /* a path inside an archive, in bytes */
#define ARC_COMPONENT_MAX 255 /* one component of it */
#define ARC_SIGNATURE_MAX 4096
#define ARC_CHECKSUMS_MAX ((size_t)64 << 20)

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void arc_hex(const unsigned char *in, size_t n, char *out);

/* A key's id: the first 8 bytes of SHA-256(pk), hex. */
void arc_key_id(const unsigned char pk[32], char id[17]);

/* The rules every archive path obeys (pack refuses what extract would):
 * relative, '/'-separated, no empty, "." or ".." component, each at most
 * ARC_COMPONENT_MAX bytes and ARC_NAME_MAX in all, UTF-8 without control
 * characters. 0, or -1 with `kind` ("absolute-path", "dot-dot",
 * "bad-name") and `why` (a phrase: "absolute path"). */
int arc_name_check(const char *name, const char **kind, char *why,
                   size_t whylen);

/* `s` made printable for a message: bytes that are not printable ASCII
 * or valid UTF-8 become \xNN; cut to fit `cap`. */
void arc_printable(const char *s, char *out, size_t cap);

/* Whole small file `path` (relative to dirfd, links not followed) into a
 * NUL-terminated malloc'd buffer; at most `max` bytes (-1, errno EFBIG
 * over). 0 or -1 with errno. */
int arc_read_file(int dirfd, const char *path, size_t max, char **out,
                  size_t *len);

/* Write all of buf, retrying short writes and EINTR. 0 or -1. */
int arc_write_all(int fd, const void *buf, size_t n);

/* Temporary file beside `final` (final.XXXXXX), opened 0644; its name in
 * tmp (PATH_MAX). Returns the fd or -1 with errno. */
int arc_tmp_beside(const char *final, char *tmp, size_t tmplen);

/* fsync fd, close it and rename tmp onto final, then fsync the folder.
 * On failure unlinks tmp. 0 or -1 with errno. */
int arc_commit(int fd, const char *tmp, const char *final);

/* Ed25519 secret key from a key file (see archive.h), with its public key
 * and id. 0, or -1 with err naming the file. The caller wipes sk
 * (sodium_memzero). */
int arc_secret_load(const char *path, unsigned char sk[64],
                    unsigned char pk[32], char id[17], char *err,
                    size_t errlen);

#endif
