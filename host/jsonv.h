/* A strict RFC 8259 JSON validator that allocates nothing: used on the
 * response path, where a full parse per request would cost too much. */
#ifndef NNO_HOST_JSONV_H
#define NNO_HOST_JSONV_H

#include <stddef.h>

#define JSONV_MAX_DEPTH 128

/* 1 if `s[0..n)` is exactly one JSON value (surrounding whitespace allowed),
 * valid UTF-8, nesting at most JSONV_MAX_DEPTH; 0 otherwise. */
int json_valid(const char *s, size_t n);

#endif
