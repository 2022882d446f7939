/*
 * nno plugin ABI, version 1 — the one header a package author includes.
 *
 * Shape of the ABI (see plugin-api/README.md for a walk-through):
 *
 *   - A plugin is a shared object that exports exactly one symbol,
 *     nno_plugin_descriptor(), declared with the NNO_PLUGIN(...) macro. It
 *     returns a const descriptor: magic, struct size, ABI major/minor, name,
 *     version, kind and the init/fini hooks. The loader checks it before
 *     running any other plugin code.
 *   - The host reaches the plugin through the hooks of that descriptor; the
 *     plugin reaches the host only through the nno_host_api function table it
 *     receives in on_plugin_init. Host functions are never linked symbols.
 *   - The table's first field is its size in bytes. It only ever grows at the
 *     end; retired slots stay. A plugin built against ABI 1.k runs on any host
 *     1.m with m >= k. Use NNO_HAS(api, fn) before calling a function that is
 *     newer than the oldest host you support.
 *   - Every object is an opaque handle. A request handle is scoped to that
 *     request; nothing in this ABI assumes the plugin shares memory with the
 *     gateway beyond the lifetimes written next to each function, so a stack
 *     can later run in its own process behind the same ABI.
 *   - Errors are int codes: 0 is success, negative values are NNO_E... codes
 *     (nno_host_api.strerror() and .err_name() describe them).
 *   - JSON crosses the ABI as UTF-8 text, never as a library object.
 *
 * Naming: types are nno_<thing>; hooks a plugin implements are on_<object>_
 * <event>; calls the host implements are members of nno_host_api named
 * <object>_<verb>.
 *
 * THREAD: every hook and callback runs on its worker's event-loop thread,
 * except the `work` function given to work_queue(), which runs on a pool
 * thread and may call no host function at all. Plugins need not be
 * thread-safe.
 *
 * OWNERSHIP: written next to every function. "Borrowed" means the host owns
 * the memory and it stays valid for the stated lifetime; never free it.
 */
#ifndef NNO_PLUGIN_H
#define NNO_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNO_ABI_MAJOR 1
#define NNO_ABI_MINOR 5

/* "NNOP" — first field of every descriptor. */
#define NNO_PLUGIN_MAGIC 0x4e4e4f50u

/* The name of the single symbol a plugin exports. */
#define NNO_PLUGIN_SYMBOL "nno_plugin_descriptor"

#if defined(__GNUC__)
#define NNO_EXPORT __attribute__((visibility("default")))
#define NNO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NNO_EXPORT
#define NNO_PRINTF(f, a)
#endif

/* ---- error codes ------------------------------------------------------- */

/* X-macro: one table for codes, names and messages. */
#define NNO_ERRNO_MAP(X)                                                     \
  X(EINVAL, -1, "invalid argument")                                          \
  X(ENOMEM, -2, "out of memory")                                             \
  X(ENOENT, -3, "no such entry")                                             \
  X(EEXIST, -4, "already exists")                                            \
  X(ETOOBIG, -5, "size limit exceeded")                                      \
  X(ESTATE, -6, "call not allowed in this state")                            \
  X(EVERSION, -7, "incompatible version")                                    \
  X(ETIMEDOUT, -8, "timed out")                                              \
  X(EIO, -9, "input/output error")                                           \
  X(ENOTSUP, -10, "not supported by this host")                              \
  X(ECANCELED, -11, "operation canceled")                                    \
  X(EBUSY, -12, "resource busy")                                            \
  X(EQUOTA, -13, "storage quota exceeded")                                   \
  X(EREFUSED, -14, "refused by the host's rules")

enum {
  NNO_OK = 0,
  /* Returned by a route handler that will answer later with res_end(). */
  NNO_ASYNC = 1,
  /* Returned by a gateway hook that has answered the request itself (with
   * res_problem(), res_json(), ...): the chain stops, nothing is dispatched. */
  NNO_DONE = 2,
#define NNO_ERR_ENUM(name, val, msg) NNO_##name = val,
  NNO_ERRNO_MAP(NNO_ERR_ENUM)
#undef NNO_ERR_ENUM
};

/* ---- opaque handles ---------------------------------------------------- */

typedef struct nno_plugin nno_plugin; /* one loaded plugin; lives until fini */
typedef struct nno_req nno_req;       /* one request and its response */
typedef struct nno_timer nno_timer;   /* a one-shot or repeating timer */
typedef struct nno_stack nno_stack;   /* one loaded stack version; valid
                                         until on_stacks_changed tells it
                                         may be gone (ABI 1.3) */
/* Since ABI 1.2: a package's resources on the request's platform. Opened
 * per request (sql_open, kv_open, blob_open), they belong to the request
 * and are released with it: never keep one past res_end. */
typedef struct nno_sql nno_sql;       /* a SQL database (sqlite) */
typedef struct nno_kv nno_kv;         /* a key-value namespace */
typedef struct nno_blob nno_blob;     /* a blob bucket */

/* A borrowed view of bytes; not NUL-terminated unless a function says so. */
typedef struct nno_str {
  const char *ptr;
  size_t len;
} nno_str;

typedef enum nno_kind {
  NNO_KIND_CORE = 1,    /* registry, IAM, provisioning...: loaded first */
  NNO_KIND_FEATURE = 2, /* feature packages, grouped into stacks */
} nno_kind;

typedef enum nno_log_level {
  NNO_LOG_DEBUG = 0,
  NNO_LOG_INFO = 1,
  NNO_LOG_WARN = 2,
  NNO_LOG_ERROR = 3,
} nno_log_level;

struct nno_host_api;
struct nno_host_event;

/* ---- the descriptor ---------------------------------------------------- */

typedef struct nno_plugin_desc {
  uint32_t magic;     /* NNO_PLUGIN_MAGIC */
  uint32_t size;      /* sizeof(nno_plugin_desc) as the plugin was built */
  uint16_t abi_major; /* NNO_ABI_MAJOR as the plugin was built */
  uint16_t abi_minor; /* NNO_ABI_MINOR as the plugin was built */
  const char *name;   /* must equal the manifest's "name" */
  const char *version; /* semver; must equal the manifest's "version" */
  int kind;            /* nno_kind; must equal the manifest's "kind" */
  /*
   * Called once after loading. Register routes, publish services, read
   * configuration here. Return 0, or a negative NNO_E... code to refuse to
   * load (set a reason with api->plugin_fail() first). `api` is borrowed and
   * valid until on_plugin_fini returns: keep the pointer.
   */
  int (*on_plugin_init)(nno_plugin *p, const struct nno_host_api *api);
  /*
   * Called once before unloading, after every request of this plugin has
   * ended and every timer was stopped. Free what init allocated. May be NULL.
   */
  void (*on_plugin_fini)(nno_plugin *p);
  /*
   * Called once every core plugin and stack of the worker has loaded,
   * before the first request: the moment to look up stacks (stack_find) or
   * services published by plugins that load later. May be NULL. Read by the
   * host only if `size` covers it.
   */
  void (*on_host_ready)(nno_plugin *p);
  /*
   * Since ABI 1.2. A lifecycle event of the request's platform for this
   * package's stack: `event` is an nno_platform_event. `r` is a request
   * made by the host, with no client: its platform is the platform
   * concerned, so sql_open(), kv_open() and blob_open() reach that
   * platform's resources, and req_caller() is the operator. Return NNO_OK
   * when done, NNO_ASYNC and call res_end(r) later, or a negative code to
   * fail (set a reason with res_problem() first). A failed ACTIVATED undoes
   * the activation; DEACTIVATED and REMOVING failures are logged and do
   * not stop the operation. May be NULL. Read only if `size` covers it.
   */
  int (*on_platform_event)(nno_plugin *p, int event, nno_req *r);
  /*
   * Since ABI 1.3. The worker's set of loaded stack versions changed: a
   * version was installed (and loaded), or removed (and is about to be
   * unloaded). Handles from stack_find/stack_at may be stale: look them up
   * again now. A handle of a removed version stays valid until this call
   * returns; requests already given it (req_set_scope) keep it until they
   * end, and the host unloads that version only after the last one. May be
   * NULL. Read only if `size` covers it.
   */
  void (*on_stacks_changed)(nno_plugin *p);
  /*
   * Since ABI 1.4, core plugins only. Something the host did on its own
   * that an operator should find in an audit trail: a package quarantined
   * after repeated crashes, or released. Called in one worker for each
   * event (never twice), on the loop, with the event borrowed for the
   * call. May be NULL. Read only if `size` covers it.
   */
  void (*on_host_event)(nno_plugin *p, const struct nno_host_event *ev);
} nno_plugin_desc;

/* ---- host events and containment (ABI 1.4) ------------------------------ */

/* How a stack's packages run (stack_isolation). */
typedef enum nno_isolation {
  NNO_ISOLATION_INPROCESS = 1, /* loaded into each worker (trusted) */
  NNO_ISOLATION_SANDBOX = 2,   /* in a supervised, confined process per
                                  worker and platform, through a proxy of
                                  this same ABI */
} nno_isolation;

typedef enum nno_host_event_kind {
  /* A (package version, platform) crashed `crashes` times within the
   * host's window: its requests are answered 503 until `until_ms`. */
  NNO_HOST_EVENT_QUARANTINE = 1,
  /* The operator released a quarantine before it ended. */
  NNO_HOST_EVENT_RELEASE = 2,
} nno_host_event_kind;

/* A host event. Views NUL-terminated, borrowed for the call. */
typedef struct nno_host_event {
  size_t size;      /* sizeof(nno_host_event) as the host was built */
  int kind;         /* nno_host_event_kind */
  nno_str platform; /* the platform concerned */
  nno_str package, version; /* the package and its version */
  nno_str stack;    /* "id@version" of the package's stack */
  nno_str reason;   /* one line: the last crash ("SIGSEGV", "cpu budget") */
  nno_str request_id; /* of the last crashing request; "" if none */
  uint32_t crashes; /* crashes counted in the window */
  uint64_t until_ms; /* unix ms the quarantine ends (0 for RELEASE) */
} nno_host_event;

/* One quarantined (package version, platform), as quarantine_at() gives
 * it. The caller sets `size` to sizeof(nno_quarantine) before the call;
 * the host fills what both know. Views NUL-terminated, borrowed until
 * the caller returns to the loop. */
typedef struct nno_quarantine {
  size_t size;
  nno_str platform, package, version, stack;
  nno_str reason;     /* the last crash */
  nno_str request_id; /* of the last crashing request; "" if none */
  uint32_t crashes;   /* in the window that started the quarantine */
  uint32_t level;     /* 1 the first time; the backoff doubles with it */
  uint64_t since_ms, until_ms; /* unix ms */
} nno_quarantine;

/* ---- installed stacks (ABI 1.3) ---------------------------------------- */

/* The state of an installed stack version in this worker. */
typedef enum nno_stack_state {
  NNO_STACK_LOADED = 1,  /* checked, loaded, routable */
  NNO_STACK_REFUSED = 2, /* found on disk but refused: see `error` */
} nno_stack_state;

/* One installed stack version, as stack_catalogue_at() gives it. Views are
 * NUL-terminated and borrowed until the caller returns to the loop. */
typedef struct nno_stack_entry {
  nno_str id, version;
  int state;           /* nno_stack_state */
  nno_str error;       /* why it was refused; "" when loaded */
  nno_str source;      /* "installed" (DATA/stacks, from an archive),
                          "builtin" (beside nno) or "folder" (stacks_dirs) */
  nno_str signed_by;   /* key id of the archive's signature; "" if none */
  nno_str sha256;      /* hex SHA-256 of the archive installed; "" if none */
  nno_str installed_at; /* RFC 3339 UTC; "" when not from an archive */
} nno_stack_entry;

/* What to install: an archive open for reading (`fd` >= 0, e.g. from
 * req_body_file; the host reads it from offset 0 and does not close it),
 * or an http(s) `url` the host fetches (bounded in size, time and
 * redirects; loopback, link-local and private addresses refused unless
 * the configuration allows them). `sha256`: the archive's expected hex
 * SHA-256, or NULL. */
typedef struct nno_stack_install {
  int fd;
  const char *url;
  const char *sha256;
} nno_stack_install;

/* The outcome of stack_install, given to its callback on the loop. All
 * strings NUL-terminated, borrowed for the callback's duration.
 *   status  0 installed (or already installed, byte for byte), else an
 *           NNO_E... code; `http` is the status to answer with:
 *           201 installed, 200 already installed (same archive),
 *           409 that version is installed from another archive,
 *           413 over a size bound, 422 the archive or a package in it is
 *           refused, 403 signature missing or not trusted, 502 the URL
 *           could not be fetched, 500 the host's own failure.
 *   id, version   the stack's, once stack.json was read ("" before)
 *   file, field   where the first refusal is ("" when not about a file)
 *   message       one line: what was expected and what was found
 *   problems_json a JSON array of every problem found, each
 *                 {"file","field","message"}; "[]" on success */
typedef struct nno_stack_install_result {
  int status;
  int http;
  const char *id, *version, *sha256, *signed_by;
  const char *file, *field, *message;
  const char *problems_json;
} nno_stack_install_result;

typedef void (*nno_stack_install_fn)(const nno_stack_install_result *res,
                                     void *ud);

/* Lifecycle events given to on_platform_event (ABI 1.2). */
typedef enum nno_platform_event {
  /* A stack version with this package was activated for the platform;
   * its resources exist and its migrations are applied. Also sent again
   * after an upgrade to another version of the stack. */
  NNO_PLATFORM_ACTIVATED = 1,
  /* The stack was deactivated; its resources are kept. */
  NNO_PLATFORM_DEACTIVATED = 2,
  /* The platform is being deleted: the last moment its resources can be
   * read. They are removed (or archived) right after. */
  NNO_PLATFORM_REMOVING = 3,
} nno_platform_event;

/*
 * Declare the plugin. Use once per shared object:
 *
 *   NNO_PLUGIN(.name = "hello", .version = "1.0.0",
 *              .kind = NNO_KIND_FEATURE, .on_plugin_init = hello_init)
 */
#define NNO_PLUGIN(...)                                                      \
  NNO_EXPORT const nno_plugin_desc *nno_plugin_descriptor(void);             \
  const nno_plugin_desc *nno_plugin_descriptor(void) {                       \
    static const nno_plugin_desc nno__desc = {                               \
        .magic = NNO_PLUGIN_MAGIC,                                           \
        .size = (uint32_t)sizeof(nno_plugin_desc),                           \
        .abi_major = NNO_ABI_MAJOR,                                          \
        .abi_minor = NNO_ABI_MINOR,                                          \
        __VA_ARGS__};                                                        \
    return &nno__desc;                                                       \
  }

/* ---- callbacks --------------------------------------------------------- */

/*
 * A route handler. Read the request, write the response, and either
 *   - return NNO_OK: the response is complete and is sent now (a handler
 *     that wrote nothing answers 204), or
 *   - return NNO_ASYNC: the handler keeps `req` and calls res_end() later,
 *     from any callback on this loop. `req` stays valid until res_end(),
 *     even if the client has gone (req_gone() then returns 1), or
 *   - return a negative NNO_E... code: the host answers 500 with a problem
 *     body, unless a response was already written.
 * `ud` is the pointer given to route_add().
 */
typedef int (*nno_handler_fn)(nno_req *req, void *ud);

typedef void (*nno_timer_fn)(nno_timer *t, void *ud);

/* Gateway policy stages, run in this order before dispatch. */
typedef enum nno_stage {
  NNO_STAGE_RESOLVE = 1, /* which scope (platform) and stacks serve it */
  NNO_STAGE_AUTHN = 2,   /* who is calling */
  NNO_STAGE_AUTHZ = 3,   /* may they */
  NNO_STAGE_LIMIT = 4,   /* rate limits and quotas */
  /* Since ABI 1.1. Runs right after RESOLVE, before the route is matched:
   * the platform is known, so per-platform cross-origin rules can answer a
   * preflight (OPTIONS) that no route serves. */
  NNO_STAGE_CORS = 5,
} nno_stage;

/* Who is calling, as the AUTHN stage established it (ABI 1.1). */
typedef enum nno_caller_kind {
  NNO_CALLER_NONE = 0,     /* no credential, or the stage did not run */
  NNO_CALLER_OPERATOR = 1, /* the host's operator key: every platform */
  NNO_CALLER_KEY = 2,      /* a platform API key */
  NNO_CALLER_USER = 3,     /* a platform user, through a session */
} nno_caller_kind;

/* The caller of a request. Views borrowed until the response ends. Never
 * holds a secret: ids only. */
typedef struct nno_caller {
  int kind;         /* nno_caller_kind */
  nno_str platform; /* the credential's platform; "" for the operator */
  nno_str tenant;   /* the tenant a key or user is bound to; "" if none
                       (then the whole platform) */
  nno_str subject;  /* key id or user id; "operator" for the operator */
  nno_str scopes;   /* space-separated scopes granted, e.g. "platform:read
                       features:hello:*"; "*" for the operator */
  nno_str session;  /* a user's session id (not its token); "" otherwise */
} nno_caller;

/* A gateway hook: return NNO_OK to go on, NNO_DONE after writing a
 * response (e.g. a 403 problem), or a negative code (500). */
typedef int (*nno_hook_fn)(nno_req *req, void *ud);

/* Runs on a pool thread: no host calls, no loop access. */
typedef void (*nno_work_fn)(void *ud);
/* Runs on the loop thread after work_fn returned. status is 0 or
 * NNO_ECANCELED (the worker is shutting down). */
typedef void (*nno_after_work_fn)(int status, void *ud);

/* An outbound HTTP request, given to http_fetch(). All fields borrowed for
 * the duration of the http_fetch() call only: the host copies them. */
typedef struct nno_http_request {
  size_t size;           /* sizeof(nno_http_request) */
  const char *method;    /* "GET" when NULL */
  const char *url;       /* http:// or https:// */
  const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
  const void *body;
  size_t body_len;
  uint32_t timeout_ms; /* 0: host default; capped by the host's maximum */
  size_t max_response_bytes; /* 0: host default; capped by the host's max */
} nno_http_request;

/* Result of an outbound request. Borrowed: valid only during the callback.
 * status is the HTTP status, or 0 when `error` is set (a negative NNO_E...
 * code: NNO_ETIMEDOUT, NNO_ETOOBIG, NNO_EIO, NNO_ECANCELED). */
typedef struct nno_http_response {
  int error;
  int status;
  nno_str headers; /* raw header block of the final response */
  nno_str body;
  const char *error_message; /* NUL-terminated, or NULL */
} nno_http_response;

typedef void (*nno_http_done_fn)(const nno_http_response *res, void *ud);

/* What limit_take() found. */
typedef struct nno_limit_result {
  int allowed;              /* 1: the tokens were taken */
  uint32_t limit;           /* the bucket's size (burst, >= 1); 0 when the
                             * host's table had no room for the bucket:
                             * refused for the host's capacity, not the
                             * caller's use */
  uint32_t remaining;       /* whole tokens left after this call */
  uint64_t retry_after_ms;  /* when not allowed: until `cost` tokens exist */
  uint64_t reset_ms;        /* until the bucket is full again */
} nno_limit_result;

/* One key of the shared meter table (ABI 1.5, meter_next). `key` is
 * borrowed while the host runs (keys are never removed). */
typedef struct nno_meter_entry {
  size_t size; /* set by the caller: sizeof(nno_meter_entry) */
  nno_str key; /* without the plugin's namespace */
  uint64_t value;
} nno_meter_entry;

/* The most bytes of a meter key (ABI 1.5). */
#define NNO_METER_KEY_MAX 160

/* A meter key resolved to its place in the table (ABI 1.5, meter_handle),
 * so that adding to it needs no hashing and no search: a value the caller
 * keeps and copies as it likes. It stays good while the host runs; a
 * handle of another table (a host restart) or of another key is refused
 * by meter_add_h, never added to something else. Zero-filled: no key. */
typedef struct nno_meter_handle {
  uint64_t epoch; /* meter_epoch when resolved; 0 in a zero-filled handle */
  uint64_t check; /* the host's own proof of which key it is */
  uint32_t slot;
  uint32_t reserved;
} nno_meter_handle;

/* Called when a request's response has ended (ABI 1.5, gateway_done_add):
 * `status` is the status sent, or 499 when the client went away before
 * the response was handed over in full. */
typedef void (*nno_done_hook_fn)(nno_req *req, int status, void *ud);

/* ---- resources (ABI 1.2) ---------------------------------------------- */

/*
 * Results of resource calls. Borrowed: valid only during the callback.
 * `error` is 0 or a negative NNO_E... code:
 *   NNO_EINVAL    bad arguments, a key or SQL the host refuses to run
 *                 (syntax errors, ATTACH, PRAGMA that change files...);
 *                 `error_message` says what
 *   NNO_EREFUSED  a constraint failed (UNIQUE, CHECK, FOREIGN KEY...)
 *   NNO_ETOOBIG   over a bound (rows, result bytes, value or key size)
 *   NNO_ETIMEDOUT over the time bound of one call
 *   NNO_EQUOTA    the platform's storage quota would be exceeded; nothing
 *                 was written (answer 507)
 *   NNO_ENOENT    the resource is not provisioned for this platform
 *   NNO_EBUSY     the database stayed locked, or the platform is being
 *                 deleted (answer 503)
 *   NNO_EIO, NNO_ENOMEM, NNO_ECANCELED (the worker is stopping)
 * `error_message` is NUL-terminated, or NULL; it never holds data.
 */
typedef struct nno_sql_result {
  int error;
  const char *error_message;
  /* sql_exec: the rows as a JSON array of objects keyed by column name
   * ("[]" for none); integers and reals as JSON numbers, text as strings,
   * NULL as null, blobs as base64 strings. sql_batch: a JSON array with
   * one such array per statement. */
  nno_str rows;
  uint64_t changes;       /* rows changed (summed over a batch) */
  int64_t last_insert_id; /* of the last INSERT, 0 if none */
} nno_sql_result;

typedef struct nno_kv_result {
  int error;
  const char *error_message;
  int found;        /* kv_get, kv_delete: 1 if the key existed (and had
                       not expired) */
  nno_str value;    /* kv_get: the value's bytes */
  uint64_t expires; /* kv_get: unix seconds, 0 if the key never expires */
  /* kv_list: a JSON array of {"key": "...", "expires": n|null}, in key
   * order, and the cursor to pass to get the next page ("" at the end). */
  nno_str keys;
  nno_str cursor;
} nno_kv_result;

typedef struct nno_blob_result {
  int error;
  const char *error_message;
  int found;              /* blob_head, blob_delete: 1 if it existed */
  uint64_t size;          /* blob_put, blob_head: bytes */
  nno_str etag;           /* blob_put, blob_head: a strong etag, quoted */
  nno_str content_type;   /* blob_head */
  uint64_t modified;      /* blob_put, blob_head: unix seconds */
  /* blob_list: a JSON array of {"key", "size", "etag", "content_type",
   * "modified"} in key order, and the next page's cursor ("" at the end). */
  nno_str objects;
  nno_str cursor;
} nno_blob_result;

/* Completion callbacks: called exactly once, on the loop, unless the call
 * that started the operation returned an error. `r` is the request the
 * handle was opened for; it stays valid (the response is not ended while
 * an operation of the request is pending). */
typedef void (*nno_sql_done_fn)(nno_req *r, const nno_sql_result *res,
                                void *ud);
typedef void (*nno_kv_done_fn)(nno_req *r, const nno_kv_result *res,
                               void *ud);
typedef void (*nno_blob_done_fn)(nno_req *r, const nno_blob_result *res,
                                 void *ud);

/* ---- the host function table ------------------------------------------- */

typedef struct nno_host_api {
  /* Size of this table as the host was built; test with NNO_HAS(). */
  size_t size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /* -- errors -- */

  /* Static string describing `err`. OWNERSHIP: static, never free. */
  const char *(*strerror)(int err);
  /* Static name of `err`, e.g. "NNO_EINVAL". */
  const char *(*err_name)(int err);

  /* -- the plugin itself -- */

  /* NUL-terminated strings of the plugin's manifest. Borrowed until fini. */
  const char *(*plugin_name)(nno_plugin *p);
  const char *(*plugin_version)(nno_plugin *p);
  /* The manifest's "config" object as JSON text ("{}" when absent); for
   * a core plugin, with the top-level keys the host's plugin_config
   * gives it replaced. Borrowed until fini. */
  const char *(*plugin_config)(nno_plugin *p);
  /* Private pointer for the plugin's own state; NULL until set. */
  void (*plugin_set_data)(nno_plugin *p, void *data);
  void *(*plugin_data)(nno_plugin *p);
  /* During on_plugin_init only: record why init fails; the loader shows it.
   * The text is copied. */
  void (*plugin_fail)(nno_plugin *p, const char *fmt, ...) NNO_PRINTF(2, 3);

  /* -- logging -- */

  /* One structured log line with the plugin's name. Never pass secrets.
   * `fmt` is printf-like; the message is copied. */
  void (*log)(nno_plugin *p, int level, const char *fmt, ...)
      NNO_PRINTF(3, 4);

  /* -- routes -- */

  /*
   * Bind a handler to a route the manifest declares, during on_plugin_init.
   * `method` is an HTTP method ("GET", ...) or "*"; `pattern` is a path
   * where "{name}" matches one non-empty segment and a final "{name...}"
   * matches the rest of the path (possibly empty). The pair must appear in
   * the manifest's "routes" array, or NNO_EINVAL is returned.
   * Returns NNO_EEXIST if the same method and pattern is already bound.
   */
  int (*route_add)(nno_plugin *p, const char *method, const char *pattern,
                   nno_handler_fn fn, void *ud);

  /* -- the request (all views borrowed until res_end or handler return,
   *    whichever the response ends with) -- */

  nno_str (*req_method)(nno_req *r);
  nno_str (*req_path)(nno_req *r);  /* decoded of nothing: as sent */
  nno_str (*req_query)(nno_req *r); /* raw, without '?'; empty if none */
  /* Route parameter `{name}`; NNO_ENOENT if the route has none. */
  int (*req_param)(nno_req *r, const char *name, nno_str *out);
  /* First query parameter `name`, percent-decoded; NNO_ENOENT if absent. */
  int (*req_query_param)(nno_req *r, const char *name, nno_str *out);
  /* Header by case-insensitive name; repeated headers are joined with ", ".
   * NNO_ENOENT if absent. */
  int (*req_header)(nno_req *r, const char *name, nno_str *out);
  /* Iterate headers: index 0.. until NNO_ENOENT. */
  int (*req_header_at)(nno_req *r, size_t i, nno_str *name, nno_str *value);
  nno_str (*req_body)(nno_req *r);
  /* The request id sent back as X-Request-Id. */
  nno_str (*req_id)(nno_req *r);
  /* The W3C traceparent for this request (received or generated). */
  nno_str (*req_traceparent)(nno_req *r);
  /* 1 if the client has disconnected; the response will be discarded. */
  int (*req_gone)(nno_req *r);
  /* Memory freed when the request ends. NULL on failure or over the
   * per-request arena bound. OWNERSHIP: host; never free. */
  void *(*req_alloc)(nno_req *r, size_t n);

  /* -- the response -- */

  /* Set the status (default 200). */
  int (*res_status)(nno_req *r, int status);
  /* Add a header. Names and values are validated (no CR/LF/NUL) and copied.
   * Content-Length, Connection, Date, Transfer-Encoding and X-Request-Id are
   * the host's: NNO_EINVAL. */
  int (*res_header)(nno_req *r, const char *name, const char *value);
  /* Append to the body; copied. */
  int (*res_write)(nno_req *r, const void *data, size_t len);
  /* Set status, "Content-Type: application/json" and the body (copied).
   * The text must be valid JSON; the host checks it (NNO_EINVAL if not). */
  int (*res_json)(nno_req *r, int status, const char *json, size_t len);
  /* An RFC 9457 application/problem+json response with the request id.
   * `detail` may be NULL. Replaces anything written so far. */
  int (*res_problem)(nno_req *r, int status, const char *title,
                     const char *detail);
  /* Finish an NNO_ASYNC response and release `r`: after this call `r` and
   * every view taken from it are invalid. Exactly once per async request. */
  int (*res_end)(nno_req *r);

  /* -- timers -- */

  /* Start a timer firing after `timeout_ms`, then every `repeat_ms` if
   * non-zero. OWNERSHIP: the timer belongs to the plugin until timer_stop;
   * a one-shot timer still needs timer_stop (it may be called from its own
   * callback). Timers left running are stopped before fini. */
  int (*timer_start)(nno_plugin *p, uint64_t timeout_ms, uint64_t repeat_ms,
                     nno_timer_fn fn, void *ud, nno_timer **out);
  void (*timer_stop)(nno_timer *t);

  /* -- work off the loop -- */

  /* Run `work(ud)` on the host's thread pool, then `after(status, ud)` on
   * the loop. A call that returns an error never invokes its callbacks. */
  int (*work_queue)(nno_plugin *p, nno_work_fn work, nno_after_work_fn after,
                    void *ud);

  /* -- outbound HTTP -- */

  /* Start an HTTP request driven by the worker's loop. `done` is called
   * exactly once, on the loop, unless this call returns an error. */
  int (*http_fetch)(nno_plugin *p, const nno_http_request *req,
                    nno_http_done_fn done, void *ud);

  /* -- services -- */

  /* Publish a named, versioned vtable (e.g. "nno.iam", 1). OWNERSHIP: the
   * vtable is borrowed until the plugin's fini. */
  int (*service_publish)(nno_plugin *p, const char *name, uint32_t version,
                         const void *vtable);
  /* Find a published service whose version is >= min_version within the
   * same major (a service's version is its vtable major). NNO_ENOENT if
   * none. The vtable is borrowed until the caller's own fini. */
  int (*service_lookup)(nno_plugin *p, const char *name,
                        uint32_t min_version, const void **vtable,
                        uint32_t *version);

  /* -- host facts -- */

  /* The data directory and the base domain, NUL-terminated. Borrowed for
   * the plugin's lifetime. */
  const char *(*host_data_dir)(nno_plugin *p);
  const char *(*host_base_domain)(nno_plugin *p);

  /* -- shared counters -- */

  /* Named 64-bit counters in memory shared by every worker of the host
   * (they survive worker restarts, not host restarts). Used as generation
   * numbers: a plugin that changes shared state adds 1; the others compare
   * the value on their next request and rebuild what they cache. Names are
   * 1..31 bytes; at most 64 names per host (NNO_ETOOBIG beyond). A name
   * never added to reads 0. Each call is one atomic operation.
   * counter_get also reads two gauges of the meter table (ABI 1.5):
   * "nno.meter_slots" (limits.meter_slots) and "nno.meter_slots_used". */
  int (*counter_get)(nno_plugin *p, const char *name, uint64_t *value);
  int (*counter_add)(nno_plugin *p, const char *name, uint64_t delta,
                     uint64_t *after);

  /* -- the gateway's policy chain (core plugins only) -- */

  /* Run `fn` for every request, at `stage`, before dispatch; hooks of one
   * stage run in the order plugins loaded. Only during on_plugin_init of a
   * core plugin (NNO_ESTATE otherwise). Built-in endpoints (/healthz,
   * /readyz, /metrics) bypass hooks. */
  int (*gateway_hook_add)(nno_plugin *p, int stage, nno_hook_fn fn,
                          void *ud);

  /* Loaded stack versions. `version` NULL finds the newest version of `id`.
   * NNO_ENOENT if not loaded. A handle stays valid until on_stacks_changed
   * (ABI 1.3) says the set changed; before 1.3, as long as the worker. */
  int (*stack_find)(nno_plugin *p, const char *id, const char *version,
                    nno_stack **out);
  /* Iterate: i = 0.. until NNO_ENOENT. */
  int (*stack_at)(nno_plugin *p, size_t i, nno_stack **out);
  /* id and version of a stack, NUL-terminated views. */
  int (*stack_info)(nno_stack *s, nno_str *id, nno_str *version);

  /* From a RESOLVE hook: the request belongs to `scope` (a platform id,
   * copied), the first `path_strip` bytes of its path are a prefix to drop
   * before route matching ("/p/acme" of "/p/acme/hello"), and its routes are
   * looked up in `stacks`, in order (the array is copied). A request given
   * a scope with no stacks answers 404. A request left without a scope is
   * matched against core plugins' routes; while no RESOLVE hook exists,
   * also against the newest version of every stack (development mode). */
  int (*req_set_scope)(nno_req *r, const char *scope, size_t scope_len,
                       size_t path_strip, nno_stack *const *stacks,
                       size_t nstacks);
  /* The scope set by a RESOLVE hook; empty if none. */
  nno_str (*req_scope)(nno_req *r);
  /* The request's host name, from the Host header (or the absolute-form
   * target), without the port, lower-cased. */
  nno_str (*req_host)(nno_req *r);

  /* The route that matched, from the AUTHN stage on (NNO_ENOENT before, or
   * for built-ins): its pattern, the scope its manifest declares ("" when
   * none) and the package that serves it. Any out pointer may be NULL. */
  int (*req_route)(nno_req *r, nno_str *pattern, nno_str *scope,
                   nno_str *package);

  /* Token buckets shared by every worker of the host (a table in shared
   * memory, so a limit holds exactly across workers). Takes `cost` tokens
   * from the bucket `key` (namespaced by the calling plugin), which refills
   * at `rate_per_s` and holds at most `burst`; a new bucket starts full.
   * Returns 0 and fills *out (allowed or not), or NNO_EINVAL / NNO_ETOOBIG
   * (key over 120 bytes). A bucket is only ever dropped once it has
   * refilled to `burst` (as good as new); when the table has no room for a
   * new key the answer refuses (allowed 0, limit 0), so a flood of keys
   * can never lift a limit that is refusing. */
  int (*limit_take)(nno_plugin *p, const char *key, size_t key_len,
                    double rate_per_s, uint32_t burst, uint32_t cost,
                    nno_limit_result *out);

  /* ---- since ABI 1.1 (test with NNO_HAS) ---- */

  /* From an AUTHN hook of a core plugin: record who is calling. Strings
   * are NUL-terminated and copied; NULL means "". Bounds: platform, tenant
   * and subject 64 bytes, session 64, scopes 1023. NNO_ESTATE outside the
   * AUTHN stage or from a feature plugin, NNO_ETOOBIG over a bound. */
  int (*req_set_caller)(nno_plugin *p, nno_req *r, int kind,
                        const char *platform, const char *tenant,
                        const char *subject, const char *scopes,
                        const char *session);
  /* The caller as AUTHN recorded it; kind NNO_CALLER_NONE (all views "")
   * when nobody did. Any plugin, from AUTHZ on and in handlers. */
  int (*req_caller)(nno_req *r, nno_caller *out);
  /* Add a response header that stays when the response is later replaced
   * (res_problem from a later stage or the handler): for CORS and
   * rate-limit headers set by a policy. Same rules as res_header. */
  int (*res_header_keep)(nno_req *r, const char *name, const char *value);
  /* The client's address as text ("127.0.0.1", "::1"), NUL-terminated:
   * the TCP peer (no proxy header is trusted). */
  nno_str (*req_remote_addr)(nno_req *r);

  /* ---- since ABI 1.2 (test with NNO_HAS) ---- */

  /* -- who is calling, cheaply -- */

  /* The platform the request belongs to (the scope a RESOLVE hook set), on
   * every route, public ones included; "" for core routes outside any
   * platform. Same as req_scope(), named for feature packages. */
  nno_str (*req_platform)(nno_req *r);
  /* The caller's tenant path: the chain of tenant ids from the root down
   * to the tenant the credential is bound to, joined with '/' ("eu/fr");
   * "" when the caller is not bound to a tenant (the whole platform) or
   * there is no caller. A row stamped with its tenant's path is in the
   * caller's subtree iff the caller's path is "" or the row's path equals
   * it or starts with it followed by '/': a prefix test, no database read.
   * Borrowed until the response ends. */
  nno_str (*req_tenant_path)(nno_req *r);
  /* From an AUTHN hook of a core plugin, after req_set_caller(): record
   * the caller's tenant path (at most 16 levels, 1023 bytes; copied).
   * NNO_ESTATE outside AUTHN or from a feature plugin. */
  int (*req_set_tenant_path)(nno_plugin *p, nno_req *r, const char *path);
  /* The stack this plugin was loaded for, and its version: NUL-terminated
   * views borrowed until fini. Core plugins: NNO_ENOENT. */
  int (*plugin_stack)(nno_plugin *p, nno_str *id, nno_str *version);

  /* -- resources --
   *
   * A package declares the resources it uses in its manifest:
   *   "resources": [{"type": "sql", "name": "notes"},
   *                 {"type": "kv", "name": "drafts"},
   *                 {"type": "blob", "name": "files"}]
   * Each is provisioned per platform when a stack version holding the
   * package is activated, and named for the platform and the stack
   * ({platform}-{stack}-{name}): packages of one stack that declare the
   * same type and name share it. The open calls take no platform: the
   * handle reaches the resource of the request's platform, and only a
   * resource the calling package declares (NNO_ENOENT otherwise, or when
   * the request has no platform). Handles are owned by the host and
   * released when the response ends.
   *
   * Every operation is asynchronous: it runs off the loop and its
   * callback runs on the loop. An operation started on a request keeps
   * the request alive: res_end() while one is pending returns NNO_EBUSY.
   */
  int (*sql_open)(nno_req *r, const char *name, nno_sql **out);
  /* Run one SQL statement with `params`: a JSON array for positional
   * parameters (?, ?1...) or an object for named ones (":name"), or NULL.
   * The text and params are copied. Bounds (host configuration): rows,
   * result bytes, time per call. Each statement runs in its own
   * transaction. */
  int (*sql_exec)(nno_sql *db, const char *sql, const char *params_json,
                  nno_sql_done_fn done, void *ud);
  /* Run several statements in one transaction: `batch_json` is a JSON
   * array of {"sql": "...", "params": [...]}; all or nothing. */
  int (*sql_batch)(nno_sql *db, const char *batch_json, nno_sql_done_fn done,
                   void *ud);

  int (*kv_open)(nno_req *r, const char *name, nno_kv **out);
  /* Keys are 1..512 bytes of UTF-8 without control characters; values at
   * most the host's value bound (1 MiB by default). Keys and values are
   * copied. `ttl_s` 0 keeps the value until deleted. */
  int (*kv_get)(nno_kv *kv, const char *key, size_t key_len,
                nno_kv_done_fn done, void *ud);
  int (*kv_put)(nno_kv *kv, const char *key, size_t key_len,
                const void *value, size_t value_len, uint64_t ttl_s,
                nno_kv_done_fn done, void *ud);
  int (*kv_delete)(nno_kv *kv, const char *key, size_t key_len,
                   nno_kv_done_fn done, void *ud);
  /* Keys starting with `prefix` (may be empty), at most `limit` (1..1000)
   * per page, after `cursor` (NULL or "" for the first page). */
  int (*kv_list)(nno_kv *kv, const char *prefix, size_t prefix_len,
                 const char *cursor, uint32_t limit, nno_kv_done_fn done,
                 void *ud);

  int (*blob_open)(nno_req *r, const char *name, nno_blob **out);
  /* Keys are 1..1024 bytes: '/'-separated segments of printable UTF-8;
   * no empty, "." or ".." segment, no leading '/', no '\'. Put stores
   * `data` (borrowed until `done`: pass the request body, it is not
   * copied) with `content_type` (NULL: application/octet-stream) and
   * replaces an existing object atomically: a reader sees the old or the
   * new object, never a part. */
  int (*blob_put)(nno_blob *b, const char *key, size_t key_len,
                  const char *content_type, const void *data, size_t len,
                  nno_blob_done_fn done, void *ud);
  int (*blob_head)(nno_blob *b, const char *key, size_t key_len,
                   nno_blob_done_fn done, void *ud);
  int (*blob_delete)(nno_blob *b, const char *key, size_t key_len,
                     nno_blob_done_fn done, void *ud);
  int (*blob_list)(nno_blob *b, const char *prefix, size_t prefix_len,
                   const char *cursor, uint32_t limit, nno_blob_done_fn done,
                   void *ud);
  /* Answer the request with the object, streamed from storage (never
   * copied whole into memory): 200 with Content-Type, Content-Length,
   * ETag and Last-Modified, 304 when If-None-Match matches, 404 (a problem
   * body) when there is no such object. Headers set before stay. This
   * ends the response, like res_end(): call it from an NNO_ASYNC handler
   * (or a callback), and do not touch `r` afterwards. */
  int (*res_blob)(nno_req *r, nno_blob *b, const char *key, size_t key_len);

  /* -- lifecycle (core plugins only) -- */

  /* Send `event` (nno_platform_event) to every package of stack `s` that
   * implements on_platform_event, one after another, for `platform`, then
   * call `done` on the loop with 0 or the first failure's code and message.
   * NNO_ESTATE from a feature plugin. */
  int (*platform_event)(nno_plugin *p, nno_stack *s, const char *platform,
                        int event,
                        void (*done)(int status, const char *message,
                                     void *ud),
                        void *ud);
  /* The packages of a loaded stack, i = 0.. until NNO_ENOENT: name,
   * version, the package's folder (absolute) and its manifest's
   * "resources" array as JSON text. Views borrowed while the stack is
   * loaded. Core plugins, and feature packages of an in-process stack
   * (since 1.4; a sandboxed package gets NNO_ESTATE). */
  int (*stack_package_at)(nno_plugin *p, nno_stack *s, size_t i,
                          nno_str *name, nno_str *version, nno_str *dir,
                          nno_str *resources_json);

  /* ---- since ABI 1.3 (test with NNO_HAS) ---- */

  /* -- installed stacks (core plugins only: NNO_ESTATE otherwise) -- */

  /* Every stack version installed where this host looks for stacks,
   * loaded or refused, sorted by id then version: i = 0.. until
   * NNO_ENOENT. */
  int (*stack_catalogue_at)(nno_plugin *p, size_t i, nno_stack_entry *out);
  /* Install a stack archive into DATA/stacks/{id}/{version}/: extract into
   * a staging folder, verify its checksums and signature, run the same
   * check as the loader, then move it into place. Nothing is left behind
   * on failure. Every worker loads the new version without a reload.
   * `done` runs on the loop with the outcome. */
  int (*stack_install)(nno_plugin *p, const nno_stack_install *in,
                       nno_stack_install_fn done, void *ud);
  /* Remove an installed version (source "installed") from disk; every
   * worker unloads it once no request uses it. The caller makes sure no
   * platform has it active. NNO_ENOENT if not installed, NNO_EREFUSED if
   * not from an archive (builtin, folder); `err` says why. */
  int (*stack_remove)(nno_plugin *p, const char *id, const char *version,
                      char *err, size_t errlen);

  /* -- uploads -- */

  /* route_add for a route taking a large body: the body is written to a
   * temporary file as it arrives (never held in memory), up to
   * `max_bytes` (413 over). The gateway's RESOLVE to LIMIT stages run as
   * soon as the head is in, so a request they refuse is answered before
   * its body is read. Core plugins only. */
  int (*route_add_upload)(nno_plugin *p, const char *method,
                          const char *pattern, nno_handler_fn fn, void *ud,
                          uint64_t max_bytes);
  /* In a handler of an upload route: the body as a file open for reading
   * (read it with pread or from offset 0; owned by the host, closed when
   * the response ends) and its length. NNO_ENOENT on other routes. */
  int (*req_body_file)(nno_req *r, int *fd, uint64_t *len);

  /* -- resolution -- */

  /* From a RESOLVE hook: the platform has stack `id` at `version` active
   * but this worker has no such version loaded (removed, or refused). A
   * request that no other stack routes is then answered 503 with a
   * problem naming the stack, the version and why, instead of 404. */
  int (*req_stack_missing)(nno_req *r, const char *id, const char *version);

  /* -- stack requirements -- */

  /* The stacks that stack `s` requires (its stack.json "requires"),
   * i = 0.. until NNO_ENOENT: the stack's id and the semver range its
   * active version must satisfy on the same platform. Views borrowed
   * while `s` is loaded. */
  int (*stack_require_at)(nno_plugin *p, nno_stack *s, size_t i, nno_str *id,
                          nno_str *range);
  /* Does semver `version` satisfy `range` (the host's rules, as for
   * package "requires")? 1 yes, 0 no, NNO_EINVAL if either is malformed. */
  int (*version_satisfies)(const char *version, const char *range);

  /* -- host configuration -- */

  /* The value of a numeric or boolean key of the host's configuration
   * ("stacks.max_archive_bytes", "log.access"), as `nno serve --help`
   * lists them. NNO_ENOENT for an unknown key, NNO_EINVAL for a key that
   * is not a number or a boolean. */
  int (*host_config_int)(nno_plugin *p, const char *key, int64_t *out);

  /* A loaded stack installed from an archive: are the files read after
   * load (manifests, migrations, UI assets) still those its CHECKSUMS
   * lists? 0 (also for a stack not from an archive), NNO_EREFUSED with
   * `err` naming the file ("modified after install: packages/x/..."), or
   * NNO_ENOENT when its folder is gone. Core plugins only. */
  int (*stack_verify)(nno_plugin *p, nno_stack *s, char *err, size_t errlen);

  /* ---- since ABI 1.4 (test with NNO_HAS) ---- */

  /* -- containment (core plugins only: NNO_ESTATE otherwise) -- */

  /* From a RESOLVE hook: the plan of the request's platform ("free",
   * "pro"...; copied, 1..32 bytes of [a-z0-9-]). The host picks the
   * request's time and CPU budgets, and its sandbox's memory budget, by
   * plan (sandbox.plans); a plan it does not know gets the defaults. */
  int (*req_set_plan)(nno_plugin *p, nno_req *r, const char *plan);
  /* How stack `s` runs: NNO_ISOLATION_INPROCESS or NNO_ISOLATION_SANDBOX
   * (a positive value), or NNO_EINVAL. */
  int (*stack_isolation)(nno_plugin *p, nno_stack *s);
  /* The quarantined (package version, platform) pairs of the whole host,
   * i = 0.. until NNO_ENOENT; out->size must be set by the caller. */
  int (*quarantine_at)(nno_plugin *p, size_t i, nno_quarantine *out);
  /* End the quarantine of `package` at `version` on `platform` ("*": an
   * every-platform entry) now, in every stack holding it (its crash count
   * is cleared; the backoff level is kept, so a package that crashes
   * again right away is quarantined for longer). NNO_ENOENT if it is not
   * quarantined. Every worker sees it on its next request. */
  int (*quarantine_release)(nno_plugin *p, const char *platform,
                            const char *package, const char *version);

  /* ---- since ABI 1.5 (test with NNO_HAS) ---- */

  /* -- meters (core plugins only: NNO_ESTATE otherwise) -- */

  /* Keyed 64-bit counters in memory shared by every worker: a table of
   * `limits.meter_slots` entries that the master maps before forking, so
   * a worker that dies loses nothing it added; a host restart starts a new
   * table (see meter_epoch). Keys are 1..NNO_METER_KEY_MAX bytes, any
   * bytes, namespaced by the calling plugin; a key is never removed while
   * the host runs.
   *
   * meter_add adds `delta` to `key` (created at 0) and writes the value
   * after into *after (may be NULL). With `cap` non-zero, an add that
   * would take the value past `cap` changes nothing, writes the current
   * value into *after and returns NNO_EREFUSED: one compare-and-swap, so
   * a cap holds exactly across workers. NNO_EINVAL for an empty key,
   * NNO_ETOOBIG for a key over the bound or when the table has no free
   * slot for a new key (nothing is added). */
  int (*meter_add)(nno_plugin *p, const char *key, size_t key_len,
                   uint64_t delta, uint64_t cap, uint64_t *after);
  /* The value of `key`; NNO_ENOENT (and 0) if it was never added to. */
  int (*meter_get)(nno_plugin *p, const char *key, size_t key_len,
                   uint64_t *value);
  /* Walk the calling plugin's keys: start with *cursor = 0; each call
   * fills *out (out->size set by the caller) and advances *cursor;
   * NNO_ENOENT at the end. Keys added during a walk may or may not be
   * seen; values are read atomically, one by one. */
  int (*meter_next)(nno_plugin *p, size_t *cursor, nno_meter_entry *out);
  /* The life of the table: a random non-zero number drawn when the host
   * started. Every value restarts at 0 with a new epoch. */
  uint64_t (*meter_epoch)(nno_plugin *p);

  /* -- the end of a request (core plugins only) -- */

  /* Call `fn` once for every request that ran the gateway's hooks (not
   * the built-in endpoints) when its response has ended: after the access
   * log line, whether the response was answered by a hook, a handler or
   * the host (404, 502, 503...). The request's platform, plan, caller,
   * tenant path and route can still be read; nothing can be written.
   * Keep it short: it runs on the loop for every request. Only during
   * on_plugin_init (NNO_ESTATE otherwise or from a feature plugin). */
  int (*gateway_done_add)(nno_plugin *p, nno_done_hook_fn fn, void *ud);
  /* The plan a RESOLVE hook set with req_set_plan ("" if none). */
  nno_str (*req_plan)(nno_req *r);

  /* -- installs on a platform's behalf (core plugins only) -- */

  /* stack_install, for a platform: the archive's stack id must be
   * `owner` itself, and every version of that id already installed must
   * have been installed for `owner` (a version the operator installed, or
   * a builtin or folder stack of that id, is not). The owner is recorded
   * with the installed version. Checked once stack.json is read from the
   * staging folder and again before the move into place: a refusal
   * (status NNO_EREFUSED, http 403, field "id") leaves nothing installed. */
  int (*stack_install_owned)(nno_plugin *p, const nno_stack_install *in,
                             const char *owner, nno_stack_install_fn done,
                             void *ud);

  /* -- a platform's logs (core plugins only: NNO_ESTATE otherwise) -- */

  /* The recent log lines of `platform` (1..64 bytes) from the host's log
   * ring (`log.ring_bytes`, shared by every process): package lines
   * logged in its requests, sandbox lines, crash reports, and the access
   * lines of its requests. Each line is one JSON object, as written to
   * the log, without its newline. Lines whose seq is greater than
   * `since` (0: the oldest still held) are given to `each`, oldest first,
   * at most `max`; `each` returning non-zero stops the walk. *next
   * receives the seq to pass as `since` to continue (a `since` past the
   * ring's head, after a host restart, continues from the head). Lines
   * overwritten before they are read are skipped, never given torn.
   * Returns the number of lines given, NNO_EINVAL for a bad platform or a
   * NULL `each`/`next`, NNO_ENOENT when the host keeps no ring, and
   * NNO_ECANCELED (nothing given, *next = since) once the worker drains
   * (the host stops or reloads): a caller waiting for new lines answers
   * now instead of holding the drain up.
   * OWNERSHIP: `line` is borrowed until `each` returns; not terminated.
   * THREAD: the loop thread; it never blocks. */
  int (*log_tail)(nno_plugin *p, const char *platform, uint64_t since,
                  size_t max,
                  int (*each)(void *ud, uint64_t seq, const char *line,
                              size_t len),
                  void *ud, uint64_t *next);

  /* -- meters by handle (core plugins only: NNO_ESTATE otherwise) -- */

  /* Resolve `key` (as in meter_get: an existing key of the calling
   * plugin, never created here; add to it first with meter_add) into *h,
   * for adds that skip the key's hashing and search. NNO_ENOENT (and a
   * zero-filled *h) when the key does not exist, the codes of meter_get
   * for a bad key.
   * OWNERSHIP: *h is the caller's; nothing to free. THREAD: the loop. */
  int (*meter_handle)(nno_plugin *p, const char *key, size_t key_len,
                      nno_meter_handle *h);
  /* meter_add on the key `h` was resolved from: the same `delta`, `cap`,
   * *after and NNO_EREFUSED; a `delta` of 0 reads the value without
   * writing it. NNO_ENOENT (nothing added, *after 0) for a handle that is
   * not one of the calling plugin's keys in this table: zero-filled, from
   * before a host restart (another epoch) or made up; resolve it again. */
  int (*meter_add_h)(nno_plugin *p, const nno_meter_handle *h, uint64_t delta,
                     uint64_t cap, uint64_t *after);
  /* -- who owns an installed version (core plugins only) -- */

  /* The platform whose key installed stack `id` at `version` (see
   * stack_install_owned), or "" for the operator's: installed by the
   * operator, a builtin or folder stack, or installed before owners were
   * recorded. Copied NUL-terminated into `out` (`cap` bytes, 64 holds any
   * platform id). NNO_ENOENT if the catalogue has no such version,
   * NNO_ETOOBIG if `cap` is too small, NNO_ESTATE from a feature plugin.
   * THREAD: the loop thread; it never blocks. */
  int (*stack_owner)(nno_plugin *p, const char *id, const char *version,
                     char *out, size_t cap);
} nno_host_api;

/* True if the host's table has the member `fn`. */
#define NNO_HAS(api, fn)                                                      \
  ((api)->size >= offsetof(nno_host_api, fn) + sizeof((api)->fn))

#ifdef __cplusplus
}
#endif
#endif /* NNO_PLUGIN_H */
