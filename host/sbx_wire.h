/* The worker's reading of what a sandbox sends (READY, FAIL, RES, CALL,
 * LOG, RECYCLE) and the application of a response to the real request.
 * Pure functions over one frame's payload: no process, no loop, so the
 * fuzz target (tests/fuzz/fuzz_sbx.c) drives exactly the code that serves.
 *
 * Every decoder takes the payload of one frame (sbx_frame_ready split it)
 * and returns 0, or -1 when it is malformed: a short field, a string
 * without its NUL or with one inside, a count or size over its bound, or
 * bytes left over. Views point into the payload and live as long as it. */
#ifndef NNO_HOST_SBX_WIRE_H
#define NNO_HOST_SBX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <nno/plugin.h>

#include "sbx_proto.h"

/* Bounds the worker holds a sandbox to. */
#define SBX_READY_PACKAGES_MAX 64
#define SBX_READY_ROUTES_MAX 256    /* per package */
#define SBX_NAME_MAX 128            /* package names and versions */
#define SBX_ROUTE_TEXT_MAX 1024     /* a route's method or pattern */
#define SBX_HEADERS_MAX (64u << 10) /* a response's header block */
#define SBX_LOG_MAX 4096 /* a LOG's text: a runtime line whole (LOG_LINE_MAX);
                          * a package's message is cut at 1024 */
#define SBX_FETCH_HEADERS_MAX 64
#define SBX_STR_MAX (32u << 20) /* any other string field */

typedef struct sbx_ready_route {
  const char *method, *pattern;
} sbx_ready_route;

typedef struct sbx_ready_pkg {
  const char *name, *version;
  uint32_t nroutes;
  sbx_ready_route routes[SBX_READY_ROUTES_MAX];
} sbx_ready_pkg;

/* READY: the packages the sandbox loaded and the routes each bound.
 * Large: allocate it (it is read once per sandbox). */
typedef struct sbx_ready {
  uint32_t npackages;
  sbx_ready_pkg pkgs[SBX_READY_PACKAGES_MAX];
} sbx_ready;

int sbx_decode_ready(const char *payload, size_t len, sbx_ready *out);

/* FAIL: the file a refusal is about ("" when none) and why. */
int sbx_decode_fail(const char *payload, size_t len, const char **file,
                    const char **message);

/* A response as RES (and RES_BLOB's head) carries it. */
typedef struct sbx_res {
  uint32_t status;
  const char *headers, *keep, *body;
  size_t headers_len, keep_len, body_len;
  uint8_t written;
  int32_t rc; /* the handler's negative code, or 0 */
} sbx_res;

int sbx_decode_res(const char *payload, size_t len, sbx_res *out);

/* A CALL: its id, op, and the arguments the op lists in sbx_proto.h, in
 * order: strings in s[] (their lengths in n[]), numbers in u[]. HTTP_FETCH
 * puts method, url, body in s[0..2] and its header lines in hdr[];
 * RES_BLOB puts its response head in res. */
typedef struct sbx_callmsg {
  uint64_t call_id;
  uint16_t op;
  const char *s[4];
  size_t n[4];
  uint64_t u[3];
  uint32_t nhdr;
  const char *hdr[SBX_FETCH_HEADERS_MAX + 1]; /* NULL-terminated */
  sbx_res res;
} sbx_callmsg;

int sbx_decode_call(const char *payload, size_t len, sbx_callmsg *out);

/* 1 if `op` is answered synchronously (the sandbox waits on its socket). */
int sbx_op_sync(uint16_t op);

/* LOG: level and message: any bytes, at most SBX_LOG_MAX (escaped when
 * logged). */
int sbx_decode_log(const char *payload, size_t len, uint8_t *level,
                   const char **text, size_t *text_len);

/* RECYCLE: the reason. */
int sbx_decode_recycle(const char *payload, size_t len, const char **reason);

/* Apply a decoded response to `r` with the host's own res_* functions
 * (api_table()), which validate what a hostile sandbox could inject:
 * header names and values, reserved headers, the body bound. `event`: a
 * platform event's answer (status 0 is success). Does not end the
 * request. Returns 0, or -1 with `why` set when the response is not one
 * the host would let a handler give (then `r` holds a 502 problem). */
int sbx_res_apply(nno_req *r, const sbx_res *m, int event, char *why,
                  size_t whylen);

#endif
