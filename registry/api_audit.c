/* Operator API: the audit log.
 *
 *   GET /api/v1/audit    filters target and action; newest first, pages
 *
 * Every change made through the API adds one row in the same transaction
 * as the change, with the request id, so the log never shows a change that
 * did not happen nor misses one that did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_util.h"
#include "internal.h"

static json_t *audit_json(const store_audit *a) {
  json_t *detail = NULL;
  if (a->detail) detail = json_loads(a->detail, JSON_DECODE_ANY, NULL);
  return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o}", "seq",
                   (json_int_t)a->seq, "at", a->at, "actor", a->actor, "action",
                   a->action, "target", a->target, "request_id",
                   a->request_id ? json_string(a->request_id) : json_null(),
                   "detail", detail ? detail : json_null());
}

static int audit_cb(void *ud, const store_audit *a) {
  nno_pager *pg = ud;
  if (nno_pager_full(pg)) return 0;
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)a->seq);
  return hu_pager_add(pg, audit_json(a), key);
}

static int on_list(nno_req *req, void *ud) {
  char after[600], target[300], action[80];
  nno_pager pg;
  if (!hu_authorized(req) || nno_pager_start(req, &pg, REG_PAGE_DEFAULT,
                                             REG_PAGE_MAX, after, sizeof after))
    return NNO_OK;
  int ht = nno_query_copy(req, "target", target, sizeof target);
  int ha = ht < 0 ? -1 : nno_query_copy(req, "action", action, sizeof action);
  if (ht < 0 || ha < 0) goto done;
  /* The cursor is the seq of the last row of the previous page. */
  long long before = 0;
  if (after[0]) {
    char *end;
    before = strtoll(after, &end, 10);
    if (*end || before <= 0) {
      nno_problem(req, 422, "cursor",
                  "field \"cursor\": not a cursor this API "
                  "returned");
      goto done;
    }
  }
  int rc = store_audit_list(g_reg.db, ht ? target : NULL, ha ? action : NULL,
                            before, pg.limit + 1, audit_cb, &pg);
  if (rc)
    hu_store_error(req, rc);
  else
    nno_pager_send(req, &pg);
done:
  nno_pager_free(&pg);
  return NNO_OK;
}

int api_audit_init(nno_plugin *p) {
  return api->route_add(p, "GET", "/api/v1/audit", on_list, NULL);
}
