/* A platform's plan and status on behalf of others: the plan must name a
 * plan of nno.billing (when billing is loaded), a change is audited
 * `platform.plan` {from, to} and told to billing (platform_changed), and
 * the nno.registry members platform_set_plan and platform_set_status,
 * which write as PATCH, suspend and resume do (api_platforms.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nno/sdk.h>

#include "http_util.h"
#include "internal.h"

void reg_billing_lookup(void) {
  const void *vt;
  uint32_t ver;
  g_reg.billing = NULL;
  if (api->service_lookup(g_reg.p, NNO_BILLING_SERVICE, 1, &vt, &ver) ==
          NNO_OK &&
      ((const nno_billing_v1 *)vt)->size >=
          offsetof(nno_billing_v1, platform_changed) + sizeof(void *))
    g_reg.billing = vt;
}

const char *reg_default_plan(void) {
  const char *d = g_reg.billing ? g_reg.billing->default_plan() : NULL;
  return d && *d && strlen(d) <= STORE_ID_MAX ? d : "free";
}

static int plan_format_ok(const char *s) {
  size_t n = strlen(s);
  int ok = n >= 1 && n <= 32;
  for (size_t i = 0; i < n && ok; i++)
    ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
         s[i] == '-';
  return ok;
}

/* 1 when `plan` is a plan billing knows (or billing is not loaded: any
 * well-formed name), else 0 with `msg` naming the plans that exist. */
static int plan_known(const char *plan, char *msg, size_t cap) {
  nno_plan_limits l = {.size = sizeof l};
  if (!g_reg.billing || g_reg.billing->plan_limits(plan, &l) == NNO_OK)
    return 1;
  char q[64];
  nno_quote(plan, q, sizeof q);
  size_t o = (size_t)snprintf(msg, cap, "field \"plan\": no plan %s", q);
  if (g_reg.billing->size >=
      offsetof(nno_billing_v1, plan_at) + sizeof(void *)) {
    char name[40];
    for (size_t i = 0;
         o < cap && g_reg.billing->plan_at(i, name, sizeof name) == NNO_OK; i++)
      o += (size_t)snprintf(msg + o, cap - o, "%s\"%s\"",
                            i ? ", " : " (the plans: ", name);
    if (o < cap) snprintf(msg + o, cap - o, ")");
  }
  return 0;
}

int reg_plan_check(nno_req *req, const char *plan) {
  char msg[1024];
  if (!plan_format_ok(plan)) {
    char q[128];
    nno_quote(plan, q, sizeof q);
    nno_problem(req, 422, "plan",
                "field \"plan\": expected 1 to 32 characters of [a-z0-9-], "
                "got %s",
                q);
    return -1;
  }
  if (plan_known(plan, msg, sizeof msg)) return 0;
  nno_problem(req, 422, "plan", "%s; create it first (POST /api/v1/plans)",
              msg);
  return -1;
}

void reg_plan_tell(const char *id, const char *plan, const char *actor,
                   const char *request_id) {
  if (!g_reg.billing) return;
  int rc = g_reg.billing->platform_changed(id, plan, actor, request_id);
  if (rc)
    api->log(g_reg.p, NNO_LOG_ERROR,
             "billing was not told that platform \"%s\" %s%s: %s", id,
             plan ? "is now on plan " : "was deleted", plan ? plan : "",
             api->err_name(rc));
}

int reg_plan_audit(const char *actor, const char *request_id, const char *id,
                   const char *from, const char *to, const char *reason) {
  char target[48];
  snprintf(target, sizeof target, "platform:%s", id);
  json_t *d = json_pack("{s:s, s:s}", "from", from, "to", to);
  if (d && reason) json_object_set_new(d, "reason", json_string(reason));
  char *text = d ? nno_json_text(d) : NULL;
  json_decref(d);
  if (!text) return STORE_ERROR;
  int rc = store_audit_add(g_reg.db, actor, "platform.plan", target, request_id,
                           text);
  free(text);
  return rc;
}

int reg_status_write(const char *id, const char *want, const char *actor,
                     const char *suspender, const char *request_id,
                     const char *reason, store_platform *p) {
  char target[48], action[32];
  int suspend = strcmp(want, "active") != 0;
  snprintf(target, sizeof target, "platform:%s", id);
  snprintf(action, sizeof action, "platform.%s",
           suspend ? "suspend" : "resume");
  json_t *d = json_pack("{s:s, s:s}", "from", p->status, "to", want);
  if (d && reason) json_object_set_new(d, "reason", json_string(reason));
  if (d && suspend)
    json_object_set_new(d, "suspended_by", json_string(suspender));
  char *text = d ? nno_json_text(d) : NULL;
  json_decref(d);
  int rc = text ? STORE_OK : STORE_ERROR;
  if (!rc) rc = store_platform_set_status(g_reg.db, id, want, p);
  if (!rc)
    rc = store_platform_set_suspender(g_reg.db, id, suspend ? suspender : "",
                                      suspend && reason ? reason : "");
  if (!rc)
    rc = store_audit_add(g_reg.db, actor, action, target, request_id, text);
  if (!rc) rc = store_change_add(g_reg.db, id);
  if (!rc) rc = store_commit(g_reg.db);
  free(text);
  return rc;
}

/* ---- the nno.registry members -------------------------------------------- */

static int to_nno(int rc) {
  return rc == STORE_OK         ? NNO_OK
         : rc == STORE_NOTFOUND ? NNO_ENOENT
         : rc == STORE_BUSY     ? NNO_EBUSY
                                : NNO_EIO;
}

static int args_ok(const char *id, const char *actor, const char *reason) {
  return id && hu_id_valid(id, strlen(id)) && actor && *actor &&
         strlen(actor) <= 128 && (!reason || strlen(reason) <= 256);
}

int reg_svc_set_plan(const char *id, const char *plan, const char *actor,
                     const char *reason) {
  char msg[256];
  store_platform p;
  if (!args_ok(id, actor, reason) || !plan || !plan_format_ok(plan) ||
      !plan_known(plan, msg, sizeof msg))
    return NNO_EINVAL;
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_platform_get(g_reg.db, id, &p);
  if (rc) {
    store_rollback(g_reg.db);
    return to_nno(rc);
  }
  if (strcmp(p.status, "deleting") == 0) {
    store_rollback(g_reg.db);
    return NNO_ESTATE;
  }
  if (strcmp(p.plan, plan) == 0) { /* already there */
    store_rollback(g_reg.db);
    return NNO_OK;
  }
  char from[sizeof p.plan];
  snprintf(from, sizeof from, "%s", p.plan);
  snprintf(p.plan, sizeof p.plan, "%s", plan);
  rc = store_platform_update(g_reg.db, &p, p.version);
  if (!rc) rc = reg_plan_audit(actor, NULL, id, from, plan, reason);
  if (!rc) rc = store_change_add(g_reg.db, id);
  if (!rc) rc = store_commit(g_reg.db);
  if (rc) {
    store_rollback(g_reg.db);
    return to_nno(rc);
  }
  reg_committed();
  reg_plan_tell(id, plan, actor, NULL);
  return NNO_OK;
}

int reg_svc_set_status(const char *id, const char *status, const char *actor,
                       const char *reason) {
  store_platform p;
  char by[129] = "";
  if (!args_ok(id, actor, reason) || !status ||
      (strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0))
    return NNO_EINVAL;
  int rc = store_begin(g_reg.db);
  if (!rc) rc = store_platform_get(g_reg.db, id, &p);
  if (!rc) rc = store_platform_suspender(g_reg.db, id, by, sizeof by);
  if (rc) {
    store_rollback(g_reg.db);
    return to_nno(rc);
  }
  if (strcmp(p.status, "deleting") == 0) {
    store_rollback(g_reg.db);
    return NNO_ESTATE;
  }
  if (strcmp(p.status, status) == 0) {
    store_rollback(g_reg.db);
    return NNO_OK;
  }
  /* A service lifts only its own suspension: the operator's (or another
   * service's) stays until the operator resumes the platform. */
  if (strcmp(status, "active") == 0 && strcmp(by, actor) != 0) {
    store_rollback(g_reg.db);
    return NNO_EREFUSED;
  }
  rc = reg_status_write(id, status, actor, actor, NULL, reason, &p);
  if (rc) {
    store_rollback(g_reg.db);
    return to_nno(rc);
  }
  reg_committed();
  return NNO_OK;
}
