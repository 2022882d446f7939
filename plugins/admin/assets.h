/* The operator view's files, embedded at build time (embed.cmake writes
 * the table from ui/). */
#ifndef NNO_ADMIN_ASSETS_H
#define NNO_ADMIN_ASSETS_H

#include <stddef.h>

/* One file of ui/. Every field is static and NUL-terminated but `data`,
 * which holds `len` bytes (and a NUL after them). Its Content-Type is
 * nno_static_type() of its name. */
typedef struct admin_asset {
  const char *name; /* "index.html": a file name, no folder */
  const char *etag; /* strong, quoted: "\"<32 hex of its SHA-256>\"" */
  const unsigned char *data;
  size_t len;
} admin_asset;

/* The table, sorted by name. */
extern const admin_asset admin_assets[];
extern const size_t admin_nassets;

#endif /* NNO_ADMIN_ASSETS_H */
