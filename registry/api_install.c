/* Operator API: installing and removing stack versions (ABI 1.3).
 *
 *   POST   /api/v1/stacks                    install: the body is the
 *          archive (application/gzip or application/octet-stream, spooled
 *          by the host up to stacks.max_archive_bytes), or JSON
 *          {"url", "sha256"?} for the host to fetch
 *   DELETE /api/v1/stacks/{id}/{version}     remove an installed version
 *
 * Operator only, audited (`stack.install`, `stack.remove`); one exception:
 * a key of a `user_project` platform holding `stacks:deploy` (not bound to
 * a tenant) installs archives whose stack id is the platform's id, when no
 * installed version of that id is someone else's and it holds fewer than
 * stacks.max_owned_versions of them (the host checks it, and records the
 * owner, before placing anything), and removes the versions it installed
 * (another platform's answer 404, as never installed). The
 * host does the work (stack_install, stack_remove); every worker loads or
 * unloads the version without a reload. reg_stack_details gives GET /stacks its
 * per-version state. */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nno/iam.h>

#include "http_util.h"
#include "internal.h"

/* ---- what GET /stacks shows per version -------------------------------- */

typedef struct use_count {
  const char *stack, *version;
  size_t n;
  json_t *platforms; /* names, or NULL when only counting */
} use_count;

static int count_use(void *ud, const store_activation *a) {
  use_count *u = ud;
  if (strcmp(a->stack, u->stack) == 0 && strcmp(a->version, u->version) == 0) {
    u->n++;
    if (u->platforms && json_array_size(u->platforms) < 16)
      json_array_append_new(u->platforms, json_string(a->platform));
  }
  return 0;
}

/* The platforms with `id` at `version` active; -1 on a store error. */
static long in_use(const char *id, const char *version, json_t *names) {
  use_count u = {id, version, 0, names};
  int rc = store_activation_list(g_reg.db, NULL, NULL, 0, count_use, &u);
  return rc ? -1 : (long)u.n;
}

static json_t *str_or_null(nno_str s) {
  return s.len ? json_stringn(s.ptr, s.len) : json_null();
}

json_t *reg_stack_details(const char *id, const char *const *versions,
                          size_t n) {
  json_t *out = json_array();
  for (size_t i = 0; out && i < n; i++) {
    nno_stack_entry e;
    int found = 0;
    if (NNO_HAS(api, stack_catalogue_at))
      for (size_t k = 0; api->stack_catalogue_at(g_reg.p, k, &e) == NNO_OK; k++)
        if (e.id.len == strlen(id) && memcmp(e.id.ptr, id, e.id.len) == 0 &&
            strcmp(e.version.ptr, versions[i]) == 0) {
          found = 1;
          break;
        }
    long use = in_use(id, versions[i], NULL);
    json_t *v = json_pack(
        "{s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:o}", "version", versions[i],
        "state",
        !found ? "missing"
               : e.state == NNO_STACK_LOADED ? "loaded" : "refused",
        "error", found && e.error.len ? json_stringn(e.error.ptr, e.error.len)
                                      : json_null(),
        "source", found ? json_stringn(e.source.ptr, e.source.len) : json_null(),
        "in_use", (json_int_t)(use < 0 ? 0 : use), "signed_by",
        found ? str_or_null(e.signed_by) : json_null(), "sha256",
        found ? str_or_null(e.sha256) : json_null(), "installed_at",
        found ? str_or_null(e.installed_at) : json_null());
    /* How the loaded version runs here (ABI 1.4), null when not loaded. */
    nno_stack *st = NULL;
    int iso = 0;
    if (v && NNO_HAS(api, stack_isolation) &&
        api->stack_find(g_reg.p, id, versions[i], &st) == NNO_OK)
      iso = api->stack_isolation(g_reg.p, st);
    if (v && json_object_set_new(
                 v, "isolation",
                 iso == NNO_ISOLATION_SANDBOX     ? json_string("sandbox")
                 : iso == NNO_ISOLATION_INPROCESS ? json_string("inprocess")
                                                  : json_null())) {
      json_decref(v);
      v = NULL;
    }
    if (!v || json_array_append_new(out, v)) {
      json_decref(out);
      out = NULL;
    }
  }
  return out;
}

/* The catalogue entry of an installed version, as POST answers it. */
static json_t *entry_json(const char *id, const char *version) {
  const char *vs[1] = {version};
  json_t *d = reg_stack_details(id, vs, 1);
  json_t *v = d ? json_incref(json_array_get(d, 0)) : NULL;
  json_decref(d);
  if (v) json_object_set_new(v, "id", json_string(id));
  return v;
}

/* ---- install ----------------------------------------------------------- */

typedef struct install_op {
  nno_req *req;
  int mem_fd; /* the body copied to memory, when the host spooled none */
} install_op;

/* A problem carrying where the refusal is: file, field, kind. */
static void install_problem(nno_req *req, const nno_stack_install_result *r) {
  nno_str rid = api->req_id(req);
  int status = r->http >= 400 && r->http <= 599 ? r->http : 500;
  json_t *probs = json_loads(r->problems_json ? r->problems_json : "[]", 0,
                             NULL);
  json_t *o = json_pack(
      "{s:s, s:s, s:i, s:s, s:s, s:s, s:s%, s:o}", "type", "about:blank",
      "title", nno_status_title(status), "status", status, "detail",
      r->message && *r->message ? r->message : "the stack was not installed",
      "file", r->file ? r->file : "", "field", r->field ? r->field : "",
      "request_id", rid.ptr ? rid.ptr : "", rid.len, "problems",
      probs ? probs : json_array());
  if (o && r->id && *r->id) {
    json_object_set_new(o, "stack", json_string(r->id));
    json_object_set_new(o, "version", json_string(r->version));
  }
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!text) {
    api->res_problem(req, status, nno_status_title(status),
                     r->message ? r->message : "");
    return;
  }
  api->res_status(req, status);
  api->res_header(req, "Content-Type", "application/problem+json");
  api->res_write(req, text, strlen(text));
  free(text);
}

static void install_done(const nno_stack_install_result *r, void *ud) {
  install_op *op = ud;
  nno_req *req = op->req;
  char target[160];
  snprintf(target, sizeof target, "stack:%s@%s", r->id ? r->id : "",
           r->version ? r->version : "");
  if (r->status == 0 && r->http == 201) {
    json_t *detail = json_pack("{s:s, s:s, s:s, s:s}", "version", r->version,
                               "sha256", r->sha256, "signed_by", r->signed_by,
                               "source", "archive");
    int rc = store_begin(g_reg.db);
    if (!rc) rc = hu_audit(req, "stack.install", target, detail);
    if (!rc) rc = store_commit(g_reg.db);
    if (rc) {
      store_rollback(g_reg.db);
      api->log(g_reg.p, NNO_LOG_ERROR, "stack %s installed but not audited",
               target);
    }
    json_decref(detail);
  }
  if (r->status == 0) {
    /* The catalogue follows what this worker just loaded. */
    reg_resolve_stacks();
    reg_catalogue_sync();
    json_t *v = entry_json(r->id, r->version);
    if (v) {
      json_object_set_new(v, "installed", json_boolean(r->http == 201));
      nno_send_json(req, r->http, v);
    } else {
      nno_problem(req, 500, NULL, "out of memory");
    }
  } else {
    install_problem(req, r);
  }
  api->res_end(req);
  if (op->mem_fd >= 0) close(op->mem_fd);
  free(op);
}

/* Content-Type's media type (parameters ignored) is `type`? */
static int media_is(nno_req *req, const char *type) {
  nno_str ct;
  if (api->req_header(req, "Content-Type", &ct) != NNO_OK) return 0;
  size_t n = strlen(type);
  return ct.len >= n && strncasecmp(ct.ptr, type, n) == 0 &&
         (ct.len == n || ct.ptr[n] == ';' || ct.ptr[n] == ' ');
}

/* The JSON object of the request: on an upload route the host spooled it
 * to a file (read up to JSON_BODY_MAX), else it is in memory. 0, or -1
 * after answering 413, 400 (with line and column) or 422. */
#define JSON_BODY_MAX 16384
static int json_body(nno_req *req, json_t **out) {
  int fd;
  uint64_t len;
  if (!NNO_HAS(api, req_body_file) ||
      api->req_body_file(req, &fd, &len) != NNO_OK)
    return nno_body_object(req, JSON_BODY_MAX, NNO_BODY_JSON_TYPE, out);
  if (len > JSON_BODY_MAX) {
    nno_problem(req, 413, NULL, "a JSON body is at most %d bytes",
                JSON_BODY_MAX);
    return -1;
  }
  char buf[JSON_BODY_MAX];
  ssize_t n = len ? pread(fd, buf, (size_t)len, 0) : 0;
  if (n < 0 || (uint64_t)n != len) {
    nno_problem(req, 500, NULL, "cannot read the request body");
    return -1;
  }
  json_error_t je;
  json_t *j = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    nno_problem(req, 400, NULL, "invalid JSON at line %d column %d: %s",
                je.line, je.column, je.text);
    return -1;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    nno_problem(req, 422, NULL, "expected a JSON object");
    return -1;
  }
  *out = j;
  return 0;
}

/* 1 if the caller's scopes cover `need`, by IAM's own matcher (nno.iam's
 * scope_allows); 0 without IAM. */
static int scope_held(const nno_caller *c, const char *need) {
  const void *vt = NULL;
  uint32_t ver = 0;
  if (api->service_lookup(g_reg.p, NNO_IAM_SERVICE, 1, &vt, &ver) != NNO_OK ||
      !vt)
    return 0;
  const nno_iam_v1 *iam = vt;
  if (iam->size <
          offsetof(nno_iam_v1, scope_allows) + sizeof iam->scope_allows ||
      !iam->scope_allows)
    return 0;
  return iam->scope_allows(c->scopes.ptr, c->scopes.len, need) == 1;
}

/* Who may install: the operator (owner "" ), or a key of a `user_project`
 * platform with `stacks:deploy`, not bound to a tenant (owner = its
 * platform). 0, or -1 after answering 403. */
static int install_owner(nno_req *req, char owner[STORE_ID_MAX + 1]) {
  nno_caller c;
  owner[0] = '\0';
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE)
    return hu_authorized(req) ? 0 : -1;
  if (c.kind == NNO_CALLER_OPERATOR) return 0;
  store_platform p;
  if (c.kind != NNO_CALLER_KEY || c.tenant.len || !c.platform.len ||
      c.platform.len > STORE_ID_MAX ||
      !scope_held(&c, "stacks:deploy"))
    goto refuse;
  memcpy(owner, c.platform.ptr, c.platform.len);
  owner[c.platform.len] = '\0';
  if (store_platform_get(g_reg.db, owner, &p) != STORE_OK ||
      strcmp(p.cls, "user_project") != 0)
    goto refuse;
  return 0;
refuse:
  nno_problem(req, 403, NULL,
              "only the operator installs stacks, or a key of a user_project "
              "platform with the scope stacks:deploy (not bound to a tenant), "
              "for the stack whose id is the platform's id");
  return -1;
}

/* AUTHZ hook: the same rule at the head of POST /api/v1/stacks, before
 * its body is read and before it takes an upload slot (the host runs the
 * stages at the head of an upload route): whoever cannot install is
 * answered 403 at once, not after sending an archive. A request with no
 * credential is left to IAM (401); the handler checks again. */
static int on_install_authz(nno_req *req, void *ud) {
  (void)ud;
  nno_str pattern, pkg, m = api->req_method(req);
  nno_caller c;
  char owner[STORE_ID_MAX + 1];
  if (api->req_route(req, &pattern, NULL, &pkg) != NNO_OK ||
      api->req_scope(req).len || pkg.len != 8 ||
      memcmp(pkg.ptr, "registry", 8) != 0 || m.len != 4 ||
      memcmp(m.ptr, "POST", 4) != 0 || pattern.len != 14 ||
      memcmp(pattern.ptr, "/api/v1/stacks", 14) != 0)
    return NNO_OK;
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE)
    return NNO_OK;
  return install_owner(req, owner) ? NNO_DONE : NNO_OK;
}

static int on_install(nno_req *req, void *ud) {
  (void)ud;
  char owner[STORE_ID_MAX + 1];
  if (install_owner(req, owner)) return NNO_OK;
  if (!NNO_HAS(api, stack_install))
    return nno_problem(req, 501, NULL, "this host cannot install stacks");
  if (owner[0] && !NNO_HAS(api, stack_install_owned))
    return nno_problem(req, 501, NULL,
                       "this host cannot install stacks for a platform");
  nno_stack_install in = {.fd = -1};
  json_t *body = NULL;
  install_op *op = calloc(1, sizeof *op);
  if (!op) return nno_problem(req, 500, NULL, "out of memory");
  op->req = req;
  op->mem_fd = -1;
  if (media_is(req, "application/json")) {
    static const nno_field fields[] = {
        NNO_FIELD_STR("url", 1, 8, 2047),
        NNO_FIELD_STR("sha256", 0, 64, 64)};
    if (json_body(req, &body) || nno_fields_check(req, body, fields, 2))
      goto answered;
    in.url = json_string_value(json_object_get(body, "url"));
    in.sha256 = json_string_value(json_object_get(body, "sha256"));
    if (strncmp(in.url, "http://", 7) != 0 &&
        strncmp(in.url, "https://", 8) != 0) {
      nno_problem(req, 422, "url",
                  "field \"url\": expected an http:// or https:// URL");
      goto answered;
    }
    if (in.sha256)
      for (const char *s = in.sha256; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) {
          nno_problem(req, 422, "sha256",
                      "field \"sha256\": expected 64 lower-case hex digits");
          goto answered;
        }
  } else if (media_is(req, "application/gzip") ||
             media_is(req, "application/octet-stream")) {
    uint64_t len = 0;
    if (!NNO_HAS(api, req_body_file) ||
        api->req_body_file(req, &in.fd, &len) != NNO_OK) {
      /* Not spooled by the host (a small body held in memory): give the
       * install a file of it. */
      nno_str b = api->req_body(req);
      op->mem_fd = memfd_create("nno-upload", MFD_CLOEXEC);
      if (op->mem_fd < 0 ||
          (b.len && write(op->mem_fd, b.ptr, b.len) != (ssize_t)b.len)) {
        nno_problem(req, 500, NULL, "cannot hold the archive");
        goto answered;
      }
      in.fd = op->mem_fd;
    }
  } else {
    nno_problem(req, 415, NULL,
                "send the archive as application/gzip (or "
                "application/octet-stream), or JSON {\"url\": ...} as "
                "application/json");
    goto answered;
  }
  int rc = owner[0] ? api->stack_install_owned(g_reg.p, &in, owner,
                                               install_done, op)
                     : api->stack_install(g_reg.p, &in, install_done, op);
  json_decref(body);
  if (rc) {
    if (op->mem_fd >= 0) close(op->mem_fd);
    free(op);
    return nno_problem(req, rc == NNO_EINVAL ? 422 : 500, NULL,
                       "cannot start the install: %s", api->strerror(rc));
  }
  return NNO_ASYNC;
answered:
  json_decref(body);
  if (op->mem_fd >= 0) close(op->mem_fd);
  free(op);
  return NNO_OK;
}

/* ---- remove ------------------------------------------------------------ */

/* Who may remove `id` at `version`: the operator, or a key of the
 * platform that installed it (its owner) with `stacks:deploy`, not bound
 * to a tenant. Another platform's version does not exist for a
 * platform's key (404, as one never installed); the operator's is not its
 * to remove (403). 0, or -1 after answering. */
static int remove_allowed(nno_req *req, const char *id, const char *version) {
  nno_caller c;
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE)
    return hu_authorized(req) ? 0 : -1;
  if (c.kind == NNO_CALLER_OPERATOR) return 0;
  char viewer[STORE_ID_MAX + 1], owner[STORE_ID_MAX + 1];
  reg_viewer(req, viewer);
  if ((NNO_HAS(api, stack_owner) &&
       api->stack_owner(g_reg.p, id, version, owner, sizeof owner) ==
           NNO_ENOENT) ||
      !reg_stack_visible(viewer, id, version)) {
    nno_problem(req, 404, NULL, "no such stack version");
    return -1;
  }
  reg_stack_owner(id, version, owner);
  if (c.kind == NNO_CALLER_KEY && !c.tenant.len && owner[0] &&
      strcmp(owner, viewer) == 0 && scope_held(&c, "stacks:deploy"))
    return 0;
  nno_problem(req, 403, NULL,
              "only the operator removes stack versions, or a key of the "
              "platform that installed the version with the scope "
              "stacks:deploy (not bound to a tenant)");
  return -1;
}

static int on_remove(nno_req *req, void *ud) {
  (void)ud;
  char id[STORE_STACK_MAX + 1], version[STORE_STACK_MAX + 1], err[512];
  if (nno_param_copy(req, "id", id, sizeof id) ||
      nno_param_copy(req, "version", version, sizeof version))
    return hu_authorized(req)
               ? nno_problem(req, 404, NULL, "no such stack version")
               : NNO_OK;
  reg_resolve_stacks();
  if (remove_allowed(req, id, version)) return NNO_OK;
  if (!NNO_HAS(api, stack_remove))
    return nno_problem(req, 501, NULL, "this host cannot remove stacks");
  json_t *names = json_array();
  if (!names) return nno_problem(req, 500, NULL, "out of memory");
  int rc = store_begin(g_reg.db);
  if (rc) {
    json_decref(names);
    return hu_store_error(req, rc);
  }
  /* Under the write lock: no activation of it can start meanwhile. */
  long n = in_use(id, version, names);
  if (n < 0) {
    store_rollback(g_reg.db);
    json_decref(names);
    return hu_store_error(req, STORE_ERROR);
  }
  if (n > 0) {
    store_rollback(g_reg.db);
    char list[600] = "";
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
      if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, json_string_value(v), sizeof list - strlen(list) - 1);
    }
    json_decref(names);
    return nno_problem(req, 409, NULL,
                       "stack %s %s is active on %ld platform%s (%s%s): "
                       "deactivate it or move them to another version first",
                       id, version, n, n == 1 ? "" : "s", list,
                       n > 16 ? ", ..." : "");
  }
  json_decref(names);
  /* An activation of it under way (its move taken, its row not written
   * yet) would provision from the files about to go. */
  char moving[STORE_ID_MAX + 1];
  rc = store_move_to(g_reg.db, id, version, moving);
  if (rc != STORE_NOTFOUND) {
    store_rollback(g_reg.db);
    if (rc) return hu_store_error(req, rc);
    return nno_problem(req, 409, NULL,
                       "platform %s is moving to stack %s %s: retry once "
                       "it is done",
                       moving, id, version);
  }
  rc = api->stack_remove(g_reg.p, id, version, err, sizeof err);
  if (rc) {
    store_rollback(g_reg.db);
    int status = rc == NNO_ENOENT ? 404 : rc == NNO_EREFUSED ? 409 : 500;
    return nno_problem(req, status, NULL, "%s", err);
  }
  char target[160];
  snprintf(target, sizeof target, "stack:%s@%s", id, version);
  json_t *detail = json_pack("{s:s}", "version", version);
  rc = hu_audit(req, "stack.remove", target, detail);
  json_decref(detail);
  /* The version leaves the catalogue unless a platform has it (none). */
  if (!rc) rc = store_stack_remove_unused(g_reg.db, id, version);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    store_rollback(g_reg.db);
    api->log(g_reg.p, NNO_LOG_ERROR, "stack %s removed but not audited",
             target);
  }
  reg_committed();
  api->res_status(req, 204);
  return NNO_OK;
}

/* Bound of an uploaded archive when the host cannot say its own
 * (stacks.max_archive_bytes): the largest that key can be. The host
 * refuses an archive over the configured bound (413) either way. */
#define INSTALL_UPLOAD_MAX ((uint64_t)1 << 34)

int api_install_init(nno_plugin *p) {
  int rc = NNO_ENOTSUP;
  int64_t max = 0;
  if (!NNO_HAS(api, host_config_int) ||
      api->host_config_int(p, "stacks.max_archive_bytes", &max) != NNO_OK ||
      max <= 0)
    max = (int64_t)INSTALL_UPLOAD_MAX;
  if (NNO_HAS(api, route_add_upload))
    rc = api->route_add_upload(p, "POST", "/api/v1/stacks", on_install, NULL,
                               (uint64_t)max);
  /* A host without uploads: the body arrives in memory, within
   * limits.max_body_bytes. */
  if (rc == NNO_ENOTSUP)
    rc = api->route_add(p, "POST", "/api/v1/stacks", on_install, NULL);
  if (!rc)
    rc = api->route_add(p, "DELETE", "/api/v1/stacks/{id}/{version}",
                        on_remove, NULL);
  if (!rc) rc = api->gateway_hook_add(p, NNO_STAGE_AUTHZ, on_install_authz, NULL);
  return rc;
}
