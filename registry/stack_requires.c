/* Stack requirements at activation: a stack version's stack.json may name
 * other stacks that must be active on the same platform at a version in a
 * range ("requires": [{"stack": "default", "version": "^1"}]). Activating
 * a version checks its requirements against the platform's activations;
 * moving or deactivating a stack checks the active stacks that require
 * it. Every refusal explains itself with both sides and the versions
 * installed. The host reads stack.json (stack_require_at) and compares
 * versions (version_satisfies): no semver code here. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The host is new enough to say what stacks require (ABI 1.3 tail). */
static int have_abi(void) {
  return NNO_HAS(api, stack_require_at) && NNO_HAS(api, version_satisfies);
}

/* "1.0.0, 2.1.0": the versions of stack `id` loaded in this worker, or
 * "none". */
static void installed(const char *id, char *out, size_t cap) {
  nno_stack *s;
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; api->stack_at(g_reg.p, i, &s) == NNO_OK; i++) {
    nno_str sid, sver;
    if (api->stack_info(s, &sid, &sver) != NNO_OK ||
        sid.len != strlen(id) || memcmp(sid.ptr, id, sid.len) != 0)
      continue;
    int w = snprintf(out + used, cap - used, "%s%.*s", used ? ", " : "",
                     (int)sver.len, sver.ptr);
    if (w < 0 || (size_t)w >= cap - used) break;
    used += (size_t)w;
  }
  if (!used) snprintf(out, cap, "none");
}

int reg_requires_met(const char *pid, nno_stack *s, char *msg, size_t cap) {
  nno_str sid, sver, rid, range;
  if (!have_abi() || api->stack_info(s, &sid, &sver) != NNO_OK) return 0;
  for (size_t i = 0;
       api->stack_require_at(g_reg.p, s, i, &rid, &range) == NNO_OK; i++) {
    char id[STORE_STACK_MAX + 1], inst[256];
    store_activation a;
    snprintf(id, sizeof id, "%.*s", (int)rid.len, rid.ptr);
    int rc = store_activation_get(g_reg.db, pid, id, &a);
    if (rc == STORE_OK && api->version_satisfies(a.version, range.ptr) == 1)
      continue;
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
      snprintf(msg, cap, "cannot read the activations of platform \"%s\"",
               pid);
      return -1;
    }
    installed(id, inst, sizeof inst);
    if (rc == STORE_OK)
      snprintf(msg, cap,
               "stack \"%.*s\" %.*s requires stack \"%s\" %.*s; platform "
               "\"%s\" has %s %s active (installed: %s)",
               (int)sid.len, sid.ptr, (int)sver.len, sver.ptr, id,
               (int)range.len, range.ptr, pid, id, a.version, inst);
    else
      snprintf(msg, cap,
               "stack \"%.*s\" %.*s requires stack \"%s\" %.*s; platform "
               "\"%s\" has no version of %s active (installed: %s)",
               (int)sid.len, sid.ptr, (int)sver.len, sver.ptr, id,
               (int)range.len, range.ptr, pid, id, inst);
    return -1;
  }
  return 0;
}

int reg_requires_among(nno_stack *s, const char *const *ids,
                       const char *const *versions, size_t n, char *msg,
                       size_t cap) {
  nno_str sid, sver, rid, range;
  if (!have_abi() || api->stack_info(s, &sid, &sver) != NNO_OK) return 0;
  for (size_t i = 0;
       api->stack_require_at(g_reg.p, s, i, &rid, &range) == NNO_OK; i++) {
    char id[STORE_STACK_MAX + 1], inst[256];
    size_t k = 0;
    snprintf(id, sizeof id, "%.*s", (int)rid.len, rid.ptr);
    while (k < n && strcmp(ids[k], id) != 0) k++;
    if (k < n && api->version_satisfies(versions[k], range.ptr) == 1) continue;
    installed(id, inst, sizeof inst);
    if (k < n)
      snprintf(msg, cap,
               "stack \"%.*s\" %.*s requires stack \"%s\" %.*s; the list "
               "has %s %s (installed: %s)",
               (int)sid.len, sid.ptr, (int)sver.len, sver.ptr, id,
               (int)range.len, range.ptr, id, versions[k], inst);
    else
      snprintf(msg, cap,
               "stack \"%.*s\" %.*s requires stack \"%s\" %.*s, which the "
               "list does not have (installed: %s)",
               (int)sid.len, sid.ptr, (int)sver.len, sver.ptr, id,
               (int)range.len, range.ptr, inst);
    return -1;
  }
  return 0;
}

nno_stack *reg_requires_pick(const char *pid, const char *viewer,
                             const char *id) {
  nno_stack *s, *best = NULL;
  char bestv[STORE_STACK_MAX + 1] = "", why[512];
  if (!have_abi()) return NULL;
  for (size_t i = 0; api->stack_at(g_reg.p, i, &s) == NNO_OK; i++) {
    char v[STORE_STACK_MAX + 1], gt[STORE_STACK_MAX + 2];
    if (!reg_stack_version_of(s, id, v) ||
        !reg_stack_usable(pid, viewer, id, v))
      continue;
    snprintf(gt, sizeof gt, ">%s", bestv);
    if ((!best || api->version_satisfies(v, gt) == 1) &&
        reg_requires_met(pid, s, why, sizeof why) == 0 &&
        reg_requires_dependents(pid, id, v, why, sizeof why) == 0) {
      best = s;
      snprintf(bestv, sizeof bestv, "%s", v);
    }
  }
  return best;
}

/* The loaded versions of stack `id` usable on platform `pid` by the
 * operator, newest first, into v (at most cap). Their number. */
#define CHOOSE_MAX_VERSIONS 32
static size_t versions_of(const char *pid, const char *id,
                          char (*v)[STORE_STACK_MAX + 1], size_t cap) {
  nno_stack *s;
  size_t n = 0;
  for (size_t i = 0; n < cap && api->stack_at(g_reg.p, i, &s) == NNO_OK; i++) {
    /* Insertion in order: newest first. */
    char cur[STORE_STACK_MAX + 1], gt[STORE_STACK_MAX + 2];
    if (!reg_stack_version_of(s, id, cur) ||
        !reg_stack_usable(pid, NULL, id, cur))
      continue;
    size_t k = n;
    while (k > 0) {
      snprintf(gt, sizeof gt, ">%s", v[k - 1]);
      if (api->version_satisfies(cur, gt) != 1) break;
      memcpy(v[k], v[k - 1], sizeof v[k]);
      k--;
    }
    memcpy(v[k], cur, sizeof cur);
    n++;
  }
  return n;
}

/* A choice in progress: each unpinned item's candidates, newest first. */
typedef struct choice {
  const char *const *ids;
  char (*vers)[STORE_STACK_MAX + 1];
  const int *pinned;
  size_t n;
  char cand[RT_MAX_STACKS][CHOOSE_MAX_VERSIONS][STORE_STACK_MAX + 1];
  size_t ncand[RT_MAX_STACKS];
  size_t budget; /* checks left: the search is bounded */
} choice;

/* Every item's requirements met among the list as it stands. */
static int all_met(choice *c) {
  const char *vs[RT_MAX_STACKS];
  char why[512];
  for (size_t k = 0; k < c->n; k++) vs[k] = c->vers[k];
  for (size_t k = 0; k < c->n; k++) {
    nno_stack *st = NULL;
    if (api->stack_find(g_reg.p, c->ids[k], c->vers[k], &st) == NNO_OK &&
        reg_requires_among(st, c->ids, vs, c->n, why, sizeof why))
      return 0;
  }
  return 1;
}

/* Depth first from item i, newest candidates first: the first complete
 * choice found is the newest (earlier items weigh more). */
static int choose_from(choice *c, size_t i) {
  if (i == c->n) {
    if (!c->budget) return 0;
    c->budget--;
    return all_met(c);
  }
  if (c->pinned[i]) return choose_from(c, i + 1);
  for (size_t j = 0; j < c->ncand[i]; j++) {
    memcpy(c->vers[i], c->cand[i][j], sizeof c->vers[i]);
    if (choose_from(c, i + 1)) return 1;
  }
  return 0;
}

int reg_requires_choose(const char *pid, const char *const *ids,
                        char (*vers)[STORE_STACK_MAX + 1], const int *pinned,
                        size_t n) {
  static choice c; /* loop thread only; too large for the stack */
  char saved[RT_MAX_STACKS][STORE_STACK_MAX + 1];
  if (!have_abi() || n > RT_MAX_STACKS) return -1;
  c.ids = ids;
  c.vers = vers;
  c.pinned = pinned;
  c.n = n;
  c.budget = 4096;
  for (size_t i = 0; i < n; i++) {
    memcpy(saved[i], vers[i], sizeof saved[i]);
    c.ncand[i] =
        pinned[i] ? 0
                  : versions_of(pid, ids[i], c.cand[i], CHOOSE_MAX_VERSIONS);
  }
  if (choose_from(&c, 0)) return 0;
  for (size_t i = 0; i < n; i++) memcpy(vers[i], saved[i], sizeof saved[i]);
  return -1;
}

/* The active stacks of a platform, as rows. */
typedef struct act_list {
  store_activation v[RT_MAX_STACKS];
  size_t n;
} act_list;

static int collect(void *ud, const store_activation *a) {
  act_list *l = ud;
  if (l->n < RT_MAX_STACKS) l->v[l->n++] = *a;
  return 0;
}

int reg_requires_dependents(const char *pid, const char *id,
                            const char *version, char *msg, size_t cap) {
  static act_list l; /* loop thread only; too large for the stack */
  if (!have_abi()) return 0;
  l.n = 0;
  if (store_activation_list(g_reg.db, pid, NULL, 0, collect, &l) != STORE_OK) {
    snprintf(msg, cap, "cannot read the activations of platform \"%s\"", pid);
    return -1;
  }
  for (size_t k = 0; k < l.n; k++) {
    const store_activation *a = &l.v[k];
    nno_stack *s;
    nno_str rid, range;
    if (strcmp(a->stack, id) == 0 ||
        api->stack_find(g_reg.p, a->stack, a->version, &s) != NNO_OK)
      continue; /* itself, or a version this worker cannot read */
    for (size_t i = 0;
         api->stack_require_at(g_reg.p, s, i, &rid, &range) == NNO_OK; i++) {
      if (rid.len != strlen(id) || memcmp(rid.ptr, id, rid.len) != 0) continue;
      if (version && api->version_satisfies(version, range.ptr) == 1) break;
      if (version)
        snprintf(msg, cap,
                 "stack \"%s\" %s, active on platform \"%s\", requires stack "
                 "\"%s\" %.*s: it cannot move to %s (move or deactivate "
                 "\"%s\" first)",
                 a->stack, a->version, pid, id, (int)range.len, range.ptr,
                 version, a->stack);
      else
        snprintf(msg, cap,
                 "stack \"%s\" %s, active on platform \"%s\", requires stack "
                 "\"%s\" %.*s: it cannot be deactivated (deactivate \"%s\" "
                 "first)",
                 a->stack, a->version, pid, id, (int)range.len, range.ptr,
                 a->stack);
      return -1;
    }
  }
  return 0;
}
