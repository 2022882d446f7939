/* Static files: one file of a folder answered with its type, a strong
 * ETag, 304 on a matching If-None-Match, and a caller-given
 * Cache-Control. For a package's UI assets and a plugin's pages. */
#ifndef NNO_SDK_STATIC_H
#define NNO_SDK_STATIC_H

#include <stddef.h>
#include <stdint.h>

#include <nno/sdk/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds: a relative path's bytes and segments, and a file's size. */
#define NNO_STATIC_PATH_MAX 255
#define NNO_STATIC_SEGMENTS_MAX 8
#define NNO_STATIC_FILE_MAX (4u << 20)
/* Bound of an ETag as this library makes them, quotes and NUL included. */
#define NNO_STATIC_ETAG_MAX 48

/* 1 if rel[0..len) is a path a static file may have: 1..255 bytes of
 * '/'-separated segments of [A-Za-z0-9._-], at most 8, none empty, none
 * starting with '.' (so no "..", no dot-file), no leading or trailing
 * '/'. Else 0. */
NNO_SDK_API int nno_static_path_ok(const char *rel, size_t len);

/* The Content-Type of a file name, from its extension (case-insensitive):
 * html, js/mjs, css, svg, png, jpg/jpeg, gif, webp, ico, json, woff2,
 * txt, map; "application/octet-stream" otherwise. OWNERSHIP: static. */
NNO_SDK_API const char *nno_static_type(const char *name, size_t len);

/* A file read through the cache. `data` (not NUL-terminated) is borrowed
 * until the next call of nno_static_open or nno_static_cache_clear. */
typedef struct nno_static_file {
  const char *data;
  size_t len;
  const char *type;               /* static, from nno_static_type */
  char etag[NNO_STATIC_ETAG_MAX]; /* strong, quoted: "\"...\"" */
} nno_static_file;

/*
 * Read file `rel` (rel_len bytes) of folder `root` (NUL-terminated): the
 * path checked with nno_static_path_ok, the file opened with O_NOFOLLOW
 * and found inside realpath(root), a regular file of at most
 * NNO_STATIC_FILE_MAX bytes. Files are kept in a per-process cache keyed
 * by path and revalidated with fstat (device, inode, size, mtime, ctime)
 * on every call, so an edited file is read again at once.
 * Returns 0, NNO_EINVAL (a path refused), NNO_ENOENT (absent, outside
 * `root`, a link, not a regular file), NNO_ETOOBIG, NNO_ENOMEM or
 * NNO_EIO. THREAD: the loop thread (the cache is not locked).
 */
NNO_SDK_API int nno_static_open(const char *root, const char *rel,
                                size_t rel_len, nno_static_file *out);

/*
 * Answer 200 with `body` (len bytes; copied), `type`, `etag` (quoted; NULL
 * for none), `cache_control` (NULL for none) and X-Content-Type-Options:
 * nosniff — or 304 with no body when the request's If-None-Match matches
 * `etag` (weak comparison, "*" matches). HEAD gets the same headers (the
 * host sends no body). Headers set before stay. Returns NNO_OK.
 */
NNO_SDK_API int nno_static_answer(nno_req *req, const char *type,
                                  const void *body, size_t len,
                                  const char *etag, const char *cache_control);

/*
 * nno_static_open then nno_static_answer: the whole answer for a file
 * request, a 404 problem for a path refused or not there (the same words
 * for both: a probe learns nothing), 500 on an I/O error. Returns NNO_OK.
 */
NNO_SDK_API int nno_static_serve(nno_req *req, const char *root,
                                 const char *rel, size_t rel_len,
                                 const char *cache_control);

/* A strong ETag of `len` bytes at `data` (quoted) into out (cap >=
 * NNO_STATIC_ETAG_MAX), e.g. for a page built from a template. */
NNO_SDK_API void nno_static_etag(const void *data, size_t len, char *out,
                                 size_t cap);

/* 1 if the request's If-None-Match names `etag` (weak comparison; "*"
 * matches anything), else 0. */
NNO_SDK_API int nno_static_not_modified(nno_req *req, const char *etag);

/* Drop every cached file (from on_plugin_fini, or to bound memory). */
NNO_SDK_API void nno_static_cache_clear(void);

#ifdef __cplusplus
}
#endif
#endif /* NNO_SDK_STATIC_H */
