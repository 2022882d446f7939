/* Whose stack versions a caller sees and uses.
 *
 * A version installed by a platform's key (stack_install_owned) is that
 * platform's private code: the host records the platform as its owner.
 * The operator sees and activates every version, anywhere (its
 * decision). Any other caller sees only the operator's versions and its
 * own platform's; another platform's do not exist for it (the same
 * answers as a stack never installed). A version chosen without being
 * named (activation or creation without "version") is the newest that is
 * the operator's or the target platform's own, never another platform's. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int reg_viewer(nno_req *req, char out[STORE_ID_MAX + 1]) {
  nno_caller c;
  out[0] = '\0';
  if (!NNO_HAS(api, req_caller) || api->req_caller(req, &c) != NNO_OK ||
      c.kind == NNO_CALLER_NONE || c.kind == NNO_CALLER_OPERATOR)
    return 0; /* the operator (its key checked without IAM, or by IAM) */
  /* A credential of no platform sees no platform's versions: "\x01" is
   * no platform's id. */
  if (!c.platform.len || c.platform.len > STORE_ID_MAX) {
    out[0] = '\x01';
    out[1] = '\0';
    return 1;
  }
  memcpy(out, c.platform.ptr, c.platform.len);
  out[c.platform.len] = '\0';
  return 1;
}

void reg_stack_owner(const char *id, const char *version,
                     char out[STORE_ID_MAX + 1]) {
  out[0] = '\0';
  if (!NNO_HAS(api, stack_owner) ||
      api->stack_owner(g_reg.p, id, version, out, STORE_ID_MAX + 1) != NNO_OK)
    out[0] = '\0'; /* a host that records none, or a version it lost */
}

int reg_stack_visible(const char *viewer, const char *id,
                      const char *version) {
  if (!viewer) return 1;
  char owner[STORE_ID_MAX + 1];
  reg_stack_owner(id, version, owner);
  return !owner[0] || strcmp(owner, viewer) == 0;
}

int reg_stack_usable(const char *pid, const char *viewer, const char *id,
                     const char *version) {
  char owner[STORE_ID_MAX + 1];
  reg_stack_owner(id, version, owner);
  if (!owner[0]) return 1;
  return strcmp(owner, pid) == 0 && (!viewer || strcmp(viewer, pid) == 0);
}

/* The newest loaded version of `id` usable on `pid` (usable), or visible
 * to `viewer` (not usable); NULL when none is. */
static nno_stack *newest_where(const char *id, const char *pid,
                               const char *viewer, int usable) {
  nno_stack *s, *best = NULL;
  char bestv[STORE_STACK_MAX + 1] = "";
  for (size_t i = 0; api->stack_at(g_reg.p, i, &s) == NNO_OK; i++) {
    nno_str sid, sver;
    char v[STORE_STACK_MAX + 1], gt[STORE_STACK_MAX + 2];
    if (api->stack_info(s, &sid, &sver) != NNO_OK ||
        sid.len != strlen(id) || memcmp(sid.ptr, id, sid.len) != 0 ||
        sver.len > STORE_STACK_MAX)
      continue;
    snprintf(v, sizeof v, "%.*s", (int)sver.len, sver.ptr);
    if (usable ? !reg_stack_usable(pid, viewer, id, v)
               : !reg_stack_visible(viewer, id, v))
      continue;
    snprintf(gt, sizeof gt, ">%s", bestv);
    if (!best || !NNO_HAS(api, version_satisfies) ||
        api->version_satisfies(v, gt) == 1) {
      best = s;
      snprintf(bestv, sizeof bestv, "%s", v);
    }
  }
  return best;
}

nno_stack *reg_stack_newest_visible(const char *viewer, const char *id) {
  return newest_where(id, NULL, viewer, 0);
}

nno_stack *reg_stack_newest_usable(const char *pid, const char *viewer,
                                   const char *id) {
  return newest_where(id, pid, viewer, 1);
}
