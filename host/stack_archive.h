/* Stack archives: pack a stack folder into a reproducible .tar.gz, sign it
 * with Ed25519, and extract one into a staging folder, refusing anything
 * hostile, verifying every checksum and (with trusted keys) the signature.
 *
 * The format. `{id}-{version}.tar.gz`, a gzip'd POSIX (pax) tar whose
 * entries sit at the root, sorted by path, regular files and folders only:
 *
 *   stack.json
 *   packages/{name}/package.json
 *   packages/{name}/lib{name}.so          (the manifest's "library")
 *   packages/{name}/migrations/{res}/NNNN_what.sql   (optional)
 *   packages/{name}/ui/...                (optional)
 *   CHECKSUMS    one line per other file, sorted by path:
 *                "<64 hex sha256>  <path>\n" (sha256sum's format)
 *   SIGNATURE    optional, written by archive_sign: one line of JSON
 *                {"algorithm":"ed25519","key_id":"<16 hex>",
 *                 "signature":"<base64 of 64 bytes>"}
 *                over the exact bytes of CHECKSUMS.
 *
 * Reproducible: entries sorted, mtime 0, uid/gid 0, no user or group
 * names, modes 0644 (0755 for folders and .so), gzip without a name or a
 * time: the same folder packs to the same bytes.
 *
 * Keys. A public key file holds one line "ed25519:<base64 of 32 bytes>
 * [comment]"; a key's id is the first 8 bytes of SHA-256(public key) in
 * hex. A secret key file (mode 0600) holds "ed25519-secret:<base64 of the
 * 64-byte libsodium secret key>". A keyring (stacks.trusted_keys) is a
 * file of public key lines; '#' starts a comment line.
 */
#ifndef NNO_HOST_STACK_ARCHIVE_H
#define NNO_HOST_STACK_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define ARCHIVE_CHECKSUMS "CHECKSUMS"
#define ARCHIVE_SIGNATURE "SIGNATURE"
#define ARCHIVE_ERR_MAX 1024
#define ARCHIVE_KEYS_MAX 32

typedef struct archive_limits {
  uint64_t max_archive_bytes;  /* compressed size */
  uint64_t max_unpacked_bytes; /* sum of file sizes */
  uint64_t max_entry_bytes;    /* one file */
  uint64_t max_entries;
  uint64_t max_ratio;          /* unpacked / compressed, checked as read */
} archive_limits;

void archive_limits_from_config(const nno_config *cfg, archive_limits *out);

typedef struct archive_keyring {
  size_t n;
  struct {
    unsigned char pk[32];
    char id[17];
  } keys[ARCHIVE_KEYS_MAX];
} archive_keyring;

/* Read a keyring file (stacks.trusted_keys). An empty path gives an empty
 * keyring: signatures are then not required. 0, or -1 with err naming the
 * file and line. */
int archive_keyring_load(const char *path, archive_keyring *kr, char *err,
                         size_t errlen);

/* What extraction learned. */
typedef struct archive_info {
  char id[65];
  char version[64];
  char sha256[65];    /* of the archive's bytes */
  char signed_by[17]; /* key id of a valid signature, "" unsigned */
  uint64_t unpacked_bytes;
  uint64_t entries;
} archive_info;

/* Why extraction failed: `file` the entry (or "" for the archive as a
 * whole), `kind` a stable word for tests and the API ("absolute-path",
 * "dot-dot", "link", "special-file", "duplicate", "entry-too-large",
 * "too-large", "too-many-entries", "ratio", "bad-name", "checksum",
 * "unlisted", "missing", "unsigned", "untrusted-key", "bad-signature",
 * "corrupt", "io"), and `message` one line naming the entry, what was
 * expected and what was found. `http`: 413 for size bounds, 403 for
 * signatures, 422 otherwise, 500 for the host's own failures. */
typedef struct archive_error {
  char file[512];
  char kind[24];
  int http;
  char message[ARCHIVE_ERR_MAX];
} archive_error;

/* Extract the archive read from `fd` (from its current offset) into
 * `staging`, an existing empty folder, creating nothing outside it (no
 * entry is followed through a link; folders are made 0755 and files 0644
 * or 0755, owned by us). Then verify: every file is listed in CHECKSUMS
 * with its digest, every listed file exists; with a non-empty keyring the
 * SIGNATURE must be by one of its keys and valid. The stack.json's id and
 * version are read into `info` (its full check is the loader's). On
 * failure returns -1, fills `e` and leaves `staging` to the caller to
 * remove (archive_rmtree). */
int archive_extract(int fd, const char *staging, const archive_limits *lim,
                    const archive_keyring *kr, archive_info *info,
                    archive_error *e);

/* Pack the stack folder `dir` (its stack.json and, for each package it
 * lists, packages/{name}/: manifest, library, migrations/, ui/). `out`
 * NULL or a folder: {id}-{version}.tar.gz in it (NULL: the current
 * folder); else the file to write. The path written goes to `written`.
 * Written to a temporary file then renamed. 0, or -1 with err. */
int archive_pack(const char *dir, const char *out, char *written,
                 size_t wcap, char *err, size_t errlen);

/* New key pair: `base`.key (0600) and `base`.pub; refuses to overwrite.
 * The key id goes to `id` (17 bytes). */
int archive_keygen(const char *base, char id[17], char *err, size_t errlen);

/* Rewrite archive `in` into `out` (may equal `in`: replaced atomically)
 * with a SIGNATURE by the secret key in `key_path` (an existing signature
 * is replaced). The key id goes to `id`. */
int archive_sign(const char *in, const char *key_path, const char *out,
                 char id[17], char *err, size_t errlen);

/* Judge a SIGNATURE's text (`text` NULL: the archive has none) over the
 * CHECKSUMS bytes `sums`, against keyring `kr` (NULL or empty: a signature
 * is not required, but one present must be well formed). 0 with the key
 * id in `signed_by` ("" when not checked), or -1 with `e` ("unsigned",
 * "untrusted-key", "bad-signature"). Extraction and the loader (for an
 * installed folder, when trusted keys are configured) decide with it. */
int archive_signature_check(const char *text, size_t len, const char *sums,
                            size_t slen, const archive_keyring *kr,
                            char signed_by[17], archive_error *e);

/* SHA-256 of what remains of `fd` (read from its current offset), hex. */
int archive_sha256_fd(int fd, char hex[65]);

/* Remove a folder tree without following links (staging, trash). */
int archive_rmtree(const char *dir);

#endif
