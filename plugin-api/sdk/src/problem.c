/* Problem answers (see nno/sdk/problem.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

const char *nno_status_title(int status) {
  static const struct {
    int status;
    const char *title;
  } titles[] = {
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {409, "Conflict"},
      {410, "Gone"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {415, "Unsupported Media Type"},
      {422, "Unprocessable Content"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {507, "Insufficient Storage"},
  };
  for (size_t i = 0; i < sizeof titles / sizeof *titles; i++)
    if (titles[i].status == status) return titles[i].title;
  return status >= 500 ? "Internal Server Error" : "Bad Request";
}

/* The problem with a "field" member, built here because res_problem has
 * no room for it. Falls back to res_problem when out of memory. */
static void problem_field(nno_req *req, int status, const char *title,
                          const char *field, const char *detail) {
  const nno_host_api *api = nno__sdk_api;
  nno_str rid = api->req_id(req);
  json_t *o =
      json_pack("{s:s, s:s, s:i, s:s, s:s, s:s%}", "type", "about:blank",
                "title", title, "status", status, "detail", detail, "field",
                field, "request_id", rid.ptr ? rid.ptr : "", rid.len);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!text) {
    api->res_problem(req, status, title, detail);
    return;
  }
  api->res_status(req, status);
  api->res_header(req, "Content-Type", "application/problem+json");
  api->res_write(req, text, strlen(text));
  free(text);
}

static void vproblem(nno_req *req, int status, const char *field,
                     const char *fmt, va_list ap) {
  const nno_host_api *api = nno__sdk_api;
  char detail[NNO_PROBLEM_DETAIL_MAX];
  const char *title = nno_status_title(status);
  vsnprintf(detail, sizeof detail, fmt, ap);
  if (field)
    problem_field(req, status, title, field, detail);
  else if (api->res_problem(req, status, title, detail) != NNO_OK)
    return; /* the request has ended: nothing left to answer */
  if (status == 401)
    api->res_header(req, "WWW-Authenticate", "Bearer realm=\"nno\"");
}

int nno_problem(nno_req *req, int status, const char *field, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  vproblem(req, status, field, fmt, ap);
  va_end(ap);
  return NNO_OK;
}

int nno_problem_retry(nno_req *req, int status, unsigned long long secs,
                      const char *fmt, ...) {
  char v[24];
  va_list ap;
  va_start(ap, fmt);
  vproblem(req, status, NULL, fmt, ap);
  va_end(ap);
  snprintf(v, sizeof v, "%llu", secs ? secs : 1);
  nno__sdk_api->res_header(req, "Retry-After", v);
  return NNO_OK;
}

/* What each resource error stands for: its status and the reason given
 * to the caller (the provider's own message is logged, never sent). */
static const struct {
  int err, status;
  const char *why;
} storage_errors[] = {
    {NNO_EINVAL, 400, "the request was refused"},
    {NNO_EREFUSED, 409, "a constraint refused the change"},
    {NNO_ETOOBIG, 413, "a size bound was exceeded"},
    {NNO_EQUOTA, 507, "the platform's storage quota would be exceeded"},
    {NNO_ENOENT, 503, "it is not provisioned for this platform"},
    {NNO_ENOTSUP, 503, "this host has no storage provider"},
    {NNO_EBUSY, 503, "it is busy"},
    {NNO_ECANCELED, 503, "the server is stopping"},
    {NNO_ETIMEDOUT, 504, "the operation took too long"},
};

int nno_storage_status(int err) {
  for (size_t i = 0; i < sizeof storage_errors / sizeof *storage_errors; i++)
    if (storage_errors[i].err == err) return storage_errors[i].status;
  return 500;
}

int nno_problem_storage(nno_req *req, int err, const char *what,
                        const char *message) {
  const nno_host_api *api = nno__sdk_api;
  int status = 500;
  const char *why = "storage error";
  for (size_t i = 0; i < sizeof storage_errors / sizeof *storage_errors; i++)
    if (storage_errors[i].err == err) {
      status = storage_errors[i].status;
      why = storage_errors[i].why;
    }
  api->log(nno__sdk_plugin, status == 500 ? NNO_LOG_ERROR : NNO_LOG_INFO,
           "%s: %s%s%s", what, api->err_name(err), message ? ": " : "",
           message ? message : "");
  if (status == 503) return nno_problem_retry(req, 503, 1, "%s: %s", what, why);
  return nno_problem(req, status, NULL, "%s: %s", what, why);
}

int nno_problem_limit(nno_req *req, int status, const char *limit,
                      const char *plan, unsigned long long used,
                      unsigned long long quota, const char *fmt, ...) {
  const nno_host_api *api = nno__sdk_api;
  char detail[NNO_PROBLEM_DETAIL_MAX];
  const char *title = nno_status_title(status);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  nno_str rid = api->req_id(req);
  json_t *o = json_pack(
      "{s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:s%}", "type", "about:blank",
      "title", title, "status", status, "detail", detail, "limit",
      limit ? limit : "", "plan", plan ? plan : "", "used", (json_int_t)used,
      "quota", (json_int_t)quota, "request_id", rid.ptr ? rid.ptr : "",
      rid.len);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!text) {
    api->res_problem(req, status, title, detail);
    return NNO_OK;
  }
  api->res_status(req, status);
  api->res_header(req, "Content-Type", "application/problem+json");
  api->res_write(req, text, strlen(text));
  free(text);
  return NNO_OK;
}
