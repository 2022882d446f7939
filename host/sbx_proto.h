/* The wire protocol between a worker and a sandbox process (sandbox.c on
 * the worker's side, sbx_child.c in the sandbox).
 *
 * One SOCK_STREAM socketpair per sandbox. Both directions carry frames:
 *
 *   sbx_frame_head (16 bytes, host byte order: both ends are this binary)
 *   payload        `len` bytes, made of the fields below in the order each
 *                  message type lists them
 *
 * Fields: u8, u16, u32, i32, u64, i64 (host order), and `str`: a u32
 * length, the bytes, then a NUL not counted in the length (so a reader
 * hands out NUL-terminated views into its buffer without copying; a str
 * whose NUL is missing is malformed). Readers check every length against what is left: a short or
 * oversize frame is a protocol violation, and a worker that sees one from
 * a sandbox kills it (its word can no longer be taken).
 *
 * Writers batch: frames are appended to an output buffer and flushed once
 * per loop iteration, so under load one write carries many frames.
 *
 * The sandbox is untrusted. Nothing it sends is believed beyond its own
 * requests: the worker looks every id up in its own table, applies
 * responses with the host's validating res_* functions, and bounds every
 * size. */
#ifndef NNO_HOST_SBX_PROTO_H
#define NNO_HOST_SBX_PROTO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Largest payload in either direction (a request carries its body, a
 * response its body: both bounded by the host's limits below this). */
#define SBX_FRAME_MAX ((uint32_t)64 << 20)

typedef struct sbx_frame_head {
  uint32_t len;  /* payload bytes after this head */
  uint16_t type; /* sbx_msg */
  uint16_t flags;
  uint64_t id;   /* request id (REQ, RES, CANCEL, CALL's request) or call id */
} sbx_frame_head;

typedef enum sbx_msg {
  /* ---- sandbox -> worker ---- */

  /* Loaded and confined; serving. Payload: u32 npackages, then per
   * package: str name, str version, u32 nroutes, then per route: str
   * method, str pattern (the routes its init bound). id 0. */
  SBX_MSG_READY = 1,
  /* Could not load: str file (may be ""), str message. Then it exits. */
  SBX_MSG_FAIL = 2,
  /* The response to request `id`: u32 status, str headers ("Name: value\r\n"
   * lines as res_header wrote them; the worker adds each again through its
   * own res_header, which validates), str kept headers (res_header_keep),
   * str body, u8 written (a res_ call set something), i32 handler rc (the
   * handler's negative code, or 0). For an EVENT, status 0 is success and
   * a negative NNO_E... code a failure whose message is the body. Every
   * REQ and EVENT gets exactly one RES (or its RES_BLOB call), a
   * cancelled one too. */
  SBX_MSG_RES = 3,
  /* A host call made for request `id` (id 0: made outside any request, from
   * a timer or init: only the synchronous calls and HTTP_FETCH allow
   * that; a synchronous call may come before READY, from init or
   * on_host_ready). `flags`: the calling package's index in READY + 1
   * (0: unknown), since limits are kept per package.
   * Payload: u64 call id, u16 sbx_call op, then the op's arguments. */
  SBX_MSG_CALL = 4,
  /* A log line: u8 level, str message (the worker bounds and tags it).
   * `id`: the request it was logged for (0 none); `flags`: the package's
   * index + 1 (0: the sandbox itself), or SBX_LOG_RUNTIME: the message is
   * a whole JSON line of the sandbox's runtime (log.c), relayed at its
   * level (its stderr is relayed as text only). */
  SBX_MSG_LOG = 5,
  /* The sandbox asks to be replaced once its requests end: str reason
   * ("memory budget exceeded: 300 MiB of 256 MiB"). `id`: the request
   * whose end found it (sent before that request's RES), 0 if none. */
  SBX_MSG_RECYCLE = 6,

  /* ---- worker -> sandbox ---- */

  /* A request for package `pkg`'s route `route` (indexes in READY's list).
   * Payload:
   *   u32 pkg, u32 route,
   *   str method, str path (after the platform prefix), str query,
   *   u32 nheaders, then str name, str value each,
   *   u32 nparams, then str name, str value each (route parameters),
   *   str body,
   *   str rid, str traceparent, str platform, str host, str remote_addr,
   *   str route pattern, str route scope,
   *   u32 caller kind, str caller platform, str tenant, str subject,
   *   str scopes, str session, str tenant_path,
   *   u64 cpu_ms (the request's CPU budget), u64 max_body (response bound).
   * id: the request's id, unique per sandbox. */
  SBX_MSG_REQ = 16,
  /* A platform event for package `pkg`: u32 pkg, i32 event, then the same
   * fields as REQ from `str method` on (the host-made request). Answered
   * with RES. */
  SBX_MSG_EVENT = 17,
  /* Request `id` ended on the worker's side (client gone, time budget):
   * req_gone() answers 1 from now on; its RES will be ignored. */
  SBX_MSG_CANCEL = 18,
  /* The result of CALL `id` (the call id). Payload by op (see sbx_call). */
  SBX_MSG_RESULT = 19,
  /* Finish: fini every plugin and exit 0 (idle reaping, drains). */
  SBX_MSG_STOP = 20,
} sbx_msg;

/* Host calls a sandbox makes through the worker. Arguments after the op
 * (in CALL), then what RESULT carries. Every RESULT starts with i32 error
 * (0 or NNO_E...) and str error_message.
 *
 *   SQL_EXEC     str resource, str sql, str params_json ("" none)
 *                -> str rows, u64 changes, i64 last_insert_id
 *   SQL_BATCH    str resource, str batch_json -> as SQL_EXEC
 *   KV_GET       str resource, str key -> u8 found, str value, u64 expires
 *   KV_PUT       str resource, str key, str value, u64 ttl_s -> (nothing)
 *   KV_DELETE    str resource, str key -> u8 found
 *   KV_LIST      str resource, str prefix, str cursor, u32 limit
 *                -> str keys, str cursor
 *   BLOB_PUT     str resource, str key, str content_type ("" default),
 *                str data -> u64 size, str etag, u64 modified
 *   BLOB_HEAD    str resource, str key -> u8 found, u64 size, str etag,
 *                str content_type, u64 modified
 *   BLOB_DELETE  str resource, str key -> u8 found
 *   BLOB_LIST    str resource, str prefix, str cursor, u32 limit
 *                -> str objects, str cursor
 *   RES_BLOB     str resource, str key, then the response so far as in
 *                RES (status, headers, kept headers): ends the request on
 *                the worker's side; no RES follows. -> (nothing; sent when
 *                the worker has taken it, error set if it could not)
 *   HTTP_FETCH   str method, str url, u32 nheaders + str each, str body,
 *                u32 timeout_ms, u64 max_response_bytes
 *                -> u32 status, str headers, str body
 *   LIMIT_TAKE   str key, f64 (as u64 bits) rate_per_s, u32 burst,
 *                u32 cost -> u8 allowed, u32 limit, u32 remaining,
 *                u64 retry_after_ms, u64 reset_ms          (synchronous)
 *   COUNTER_GET  str name -> u64 value                      (synchronous)
 *   COUNTER_ADD  str name, u64 delta -> u64 after           (synchronous)
 *   CONFIG_INT   str key -> i64 value                       (synchronous)
 *
 * Resource calls name the resource as the package's manifest does; the
 * worker opens it for the request (and so for its platform and package)
 * with the host's own sql_open/kv_open/blob_open, which refuse anything
 * the package did not declare. */
typedef enum sbx_call {
  SBX_CALL_SQL_EXEC = 1,
  SBX_CALL_SQL_BATCH = 2,
  SBX_CALL_KV_GET = 3,
  SBX_CALL_KV_PUT = 4,
  SBX_CALL_KV_DELETE = 5,
  SBX_CALL_KV_LIST = 6,
  SBX_CALL_BLOB_PUT = 7,
  SBX_CALL_BLOB_HEAD = 8,
  SBX_CALL_BLOB_DELETE = 9,
  SBX_CALL_BLOB_LIST = 10,
  SBX_CALL_RES_BLOB = 11,
  SBX_CALL_HTTP_FETCH = 12,
  SBX_CALL_LIMIT_TAKE = 13,
  SBX_CALL_COUNTER_GET = 14,
  SBX_CALL_COUNTER_ADD = 15,
  SBX_CALL_CONFIG_INT = 16,
} sbx_call;

/* Why a sandbox ended itself (status page `exit_reason`, and its exit
 * status), so the worker can tell a budget from a crash. */
typedef enum sbx_exit {
  SBX_EXIT_NONE = 0,
  SBX_EXIT_CPU = 90,     /* a request's CPU budget ran out */
  SBX_EXIT_MEMORY = 91,  /* allocation failed at the address-space cap */
  SBX_EXIT_SYSCALL = 92, /* a system call the filter forbids outright */
  SBX_EXIT_PROTOCOL = 93, /* the worker sent something malformed */
  SBX_EXIT_LOAD = 94,    /* could not load (FAIL was sent) */
} sbx_exit;

/* The status page: a memfd of one page both map (the sandbox at fd 4).
 * The sandbox writes, the worker reads, with relaxed atomics: it names the
 * request and package a crash or stall belongs to. A lying sandbox can
 * only misname its own requests. */
typedef struct sbx_shared {
  _Atomic uint64_t busy_req;  /* request id in a callback now, 0 if none */
  _Atomic uint32_t busy_pkg;  /* its package index */
  _Atomic uint32_t exit_reason; /* sbx_exit, set before a deliberate exit */
  _Atomic uint64_t busy_since_ns; /* CLOCK_MONOTONIC when it entered */
  _Atomic uint64_t syscall_nr; /* SBX_EXIT_SYSCALL: which one */
  _Atomic uint64_t rss_bytes;  /* as the sandbox last measured it */
  _Atomic uint32_t unconfined; /* 1: no Landlock, file system unbounded */
  /* While the stack loads: 1 + the index of the package being opened and
   * initialised (load_phase 0) or in on_host_ready (1); 0 once loaded. A
   * trial that ends before READY names that package. */
  _Atomic uint32_t load_pkg;
  _Atomic uint32_t load_phase;
  /* Wall time spent in callbacks (outermost) run for a request or a
   * platform event, in total: the CPU they could account for (the
   * worker's CPU sampling). */
  _Atomic uint64_t cb_total_ns;
  /* Polling before sleeping (sandbox.poll_us). The worker grants the
   * longest poll, in ns, to the sandbox it last sent work to, and 0 to the
   * others (one sandbox of a worker polls at a time); the sandbox adds
   * the time it spent polling. The worker credits that time against CPU
   * outside callbacks, never more than its own clock allows: a grant at
   * most per stretch the sandbox was idle and held it. */
  _Atomic uint64_t poll_grant_ns;
  _Atomic uint64_t poll_total_ns;
} sbx_shared;

/* The poll window of a sandbox waiting for its next frames, adapted as
 * the kernel's haltpoll adapts its own: after a wait whose input came
 * `gap_ns` after it began, with `max_ns` granted, the window `win_ns` is
 * kept when the poll caught the input, doubled (from max/8) when a poll
 * of at most max would have, and halved (to 0 under max/64) when the
 * input came later than that: a sandbox whose requests come further apart
 * than max stops polling within a few of them. At most max_ns. */
uint64_t sbx_poll_window(uint64_t win_ns, uint64_t max_ns, uint64_t gap_ns);

/* ---- encoding ---------------------------------------------------------- */

/* LOG's flags for a line of the sandbox's runtime. */
#define SBX_LOG_RUNTIME 0xffffu

/* A growable output buffer of frames. */
typedef struct sbx_out {
  char *p;
  size_t len, cap;
  int oom;  /* an append failed: the frame being built is broken */
  int open; /* frames begun and not ended yet */
} sbx_out;

/* Start a frame; returns its offset for sbx_end. */
size_t sbx_begin(sbx_out *o, uint16_t type, uint64_t id);
/* Patch the frame's length. 0, or -1 (out of memory or over
 * SBX_FRAME_MAX): the frame is dropped from the buffer. */
int sbx_end(sbx_out *o, size_t at);
void sbx_u8(sbx_out *o, uint8_t v);
void sbx_u16(sbx_out *o, uint16_t v);
void sbx_u32(sbx_out *o, uint32_t v);
void sbx_i32(sbx_out *o, int32_t v);
void sbx_u64(sbx_out *o, uint64_t v);
void sbx_i64(sbx_out *o, int64_t v);
void sbx_str(sbx_out *o, const char *s, size_t n);
void sbx_cstr(sbx_out *o, const char *s); /* NULL is "" */
void sbx_out_free(sbx_out *o);
/* Drop the first n bytes (sent). */
void sbx_out_consume(sbx_out *o, size_t n);

/* ---- decoding ---------------------------------------------------------- */

/* A reader over one frame's payload. A failed read sets `bad` and yields
 * zeros / empty strings, so a decoder checks `bad` once at the end. */
typedef struct sbx_in {
  const char *p;
  size_t left;
  int bad;
} sbx_in;

uint8_t sbx_get_u8(sbx_in *in);
uint16_t sbx_get_u16(sbx_in *in);
uint32_t sbx_get_u32(sbx_in *in);
int32_t sbx_get_i32(sbx_in *in);
uint64_t sbx_get_u64(sbx_in *in);
int64_t sbx_get_i64(sbx_in *in);
/* A string view, NUL-terminated in the buffer; `len` may be NULL. Valid
 * while the buffer is. "" (and `bad` set) when malformed. */
const char *sbx_get_str(sbx_in *in, size_t *len);
/* Also bad when the string holds a NUL byte or is longer than `max`. */
const char *sbx_get_text(sbx_in *in, size_t *len, size_t max);

/* Split complete frames off the front of an input buffer: returns the
 * bytes of the first complete frame (head + payload), 0 when more bytes
 * are needed, or -1 for a head announcing more than `max` bytes. */
long sbx_frame_ready(const char *buf, size_t len, uint32_t max);

#endif
