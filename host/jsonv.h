/* A strict RFC 8259 JSON validator that allocates nothing: used on the
 * response path, where a full parse per request would cost too much. */
#ifndef NNO_HOST_JSONV_H
#define NNO_HOST_JSONV_H

#include <stddef.h>

#define JSONV_MAX_DEPTH 128

/* 1 if `s[0..n)` is exactly one JSON value (surrounding whitespace allowed),
 * valid UTF-8, nesting at most JSONV_MAX_DEPTH; 0 otherwise. */
int json_valid(const char *s, size_t n);

/* Length (1 to 4) of the well-formed UTF-8 sequence at the start of
 * s[0..n), or 0 when s does not start with one (overlong forms,
 * surrogates and code points past U+10FFFF are not well-formed). */
size_t json_utf8_len(const char *s, size_t n);

/* Make text quoted from input (jansson's error messages quote the bytes
 * near an error) fit a one-line, valid UTF-8 message: in place, every
 * control character and every byte that is not part of a well-formed
 * UTF-8 sequence becomes '?'. */
void json_text_clean(char *s);

#endif
