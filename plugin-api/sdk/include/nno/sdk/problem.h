/* RFC 9457 problem answers (application/problem+json with the request
 * id), through the host's res_problem when it can carry them. */
#ifndef NNO_SDK_PROBLEM_H
#define NNO_SDK_PROBLEM_H

#include <nno/sdk/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bound of a problem's detail, NUL included: longer details are cut. */
#define NNO_PROBLEM_DETAIL_MAX 1024

/* The reason phrase used as a problem's title: "Not Found" for 404, ...;
 * "Internal Server Error" for another 5xx, "Bad Request" for another 4xx.
 * OWNERSHIP: static. */
NNO_SDK_API const char *nno_status_title(int status);

/*
 * Answer `status` (400..599) with a problem whose detail is printf-
 * formatted. With `field` not NULL the problem also names the offending
 * request field ("field": "name"), which res_problem cannot carry: that
 * answer is written with res_status/res_header/res_write, so call it
 * before writing anything else. A 401 also gets
 * `WWW-Authenticate: Bearer realm="nno"`. Returns NNO_OK, so a handler can
 * `return nno_problem(...)`.
 */
NNO_SDK_API int nno_problem(nno_req *req, int status, const char *field,
                            const char *fmt, ...) NNO_PRINTF(4, 5);

/* nno_problem() without a field, plus `Retry-After: secs` (0 counts as 1):
 * for 503 and 429 answers. Returns NNO_OK. */
NNO_SDK_API int nno_problem_retry(nno_req *req, int status,
                                  unsigned long long secs, const char *fmt, ...)
    NNO_PRINTF(4, 5);

/* The HTTP status a resource call's error stands for (ABI 1.2): EINVAL
 * 400, EREFUSED 409, ETOOBIG 413, EQUOTA 507, ENOENT 503 (the resource is
 * not provisioned for the platform), ENOTSUP 503 (the host has no storage
 * provider loaded), EBUSY 503, ETIMEDOUT 504, anything else 500. */
NNO_SDK_API int nno_storage_status(int err);

/*
 * Answer a failed resource call (sql_*, kv_*, blob_*) with the problem its
 * error stands for (nno_storage_status), a detail naming `what` ("the
 * notes database") and the error, and Retry-After: 1 on a 503. The
 * provider's message is logged, not sent: it may name files or SQL. A
 * 500 is logged as an error. Returns NNO_OK.
 */
NNO_SDK_API int nno_problem_storage(nno_req *req, int err, const char *what,
                                    const char *message);

/*
 * Answer `status` (a 409 or 402) for a plan's limit reached: a problem
 * whose members also say which limit ("limit": "api_keys"), of which plan
 * ("plan"), how much is used ("used") and the limit ("quota"), so a
 * client can tell the operator what to raise. The detail is printf-
 * formatted. Written with res_status/res_header/res_write: call it before
 * writing anything else. Returns NNO_OK.
 */
NNO_SDK_API int nno_problem_limit(nno_req *req, int status, const char *limit,
                                  const char *plan, unsigned long long used,
                                  unsigned long long quota, const char *fmt,
                                  ...) NNO_PRINTF(7, 8);

#ifdef __cplusplus
}
#endif
#endif /* NNO_SDK_PROBLEM_H */
