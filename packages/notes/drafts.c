/* Drafts: one unfinished note per caller, in the kv namespace "drafts",
 * kept for 7 days after its last save.
 *
 *   PUT    /notes/draft   {"title"?, "body"?} -> the draft and its expiry
 *   GET    /notes/draft   the draft and when it expires, or 404
 *   DELETE /notes/draft   204, or 404
 *
 * The key is the caller's kind and id ("user:{id}", "key:{id}",
 * "operator"): taken from the credential, never from the request, so no
 * caller can name another's draft. The namespace itself belongs to the
 * request's platform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notes.h"

#define DRAFT_TTL_S (7 * 24 * 3600)
#define DRAFT_KEY_MAX 96

/* The caller's draft key into out; its length. */
static size_t draft_key(nno_req *req, char out[DRAFT_KEY_MAX]) {
  nno_caller c;
  int n;
  if (api->req_caller(req, &c) != NNO_OK || c.kind == NNO_CALLER_OPERATOR ||
      c.kind == NNO_CALLER_NONE)
    n = snprintf(out, DRAFT_KEY_MAX, "operator");
  else
    n = snprintf(out, DRAFT_KEY_MAX, "%s:%.*s",
                 c.kind == NNO_CALLER_USER ? "user" : "key", (int)c.subject.len,
                 c.subject.ptr);
  return n > 0 && n < DRAFT_KEY_MAX ? (size_t)n : DRAFT_KEY_MAX - 1;
}

static int open_kv(nno_req *req, nno_kv **kv) {
  int rc = api->kv_open(req, NOTES_KV, kv);
  if (rc == NNO_OK) return 0;
  nno_problem_storage(req, rc, "the drafts", NULL);
  return -1;
}

/* Answer the draft `d` (consumed) with its expiry. */
static void answer_draft(nno_req *req, int status, json_t *d,
                         uint64_t expires) {
  char at[32];
  iso_time(expires, at);
  if (d && json_object_set_new(d, "expires", json_string(at)) != 0) {
    json_decref(d);
    d = NULL;
  }
  nno_send_json(req, status, d);
}

static void got(nno_req *req, const nno_kv_result *res, void *ud) {
  if (res->error) {
    nno_problem_storage(req, res->error, "the drafts", res->error_message);
  } else if (!res->found) {
    nno_problem(req, 404, NULL, "no draft");
  } else {
    json_t *d = json_loadb(res->value.ptr, res->value.len, 0, NULL);
    if (!json_is_object(d)) {
      json_decref(d);
      nno_problem(req, 500, NULL, "the stored draft is not a JSON object");
    } else {
      answer_draft(req, 200, d, res->expires);
    }
  }
  api->res_end(req);
}

int on_draft_get(nno_req *req, void *ud) {
  char key[DRAFT_KEY_MAX];
  nno_kv *kv;
  size_t n = draft_key(req, key);
  if (open_kv(req, &kv)) return NNO_OK;
  int rc = api->kv_get(kv, key, n, got, NULL);
  if (rc != NNO_OK) return nno_problem_storage(req, rc, "the drafts", NULL);
  return NNO_ASYNC;
}

/* The saved draft, kept until the answer is written: put does not echo
 * the value back. */
typedef struct put_step {
  json_t *draft;
} put_step;

static void put_done(nno_req *req, const nno_kv_result *res, void *ud) {
  put_step *ps = ud;
  if (res->error) {
    nno_problem_storage(req, res->error, "the drafts", res->error_message);
    json_decref(ps->draft);
  } else {
    answer_draft(req, 200, ps->draft, (uint64_t)time(NULL) + DRAFT_TTL_S);
  }
  api->res_end(req);
}

int on_draft_put(nno_req *req, void *ud) {
  static const nno_field fields[] = {
      NNO_FIELD_STR("title", 0, 0, NOTE_TITLE_MAX),
      NNO_FIELD_STR("body", 0, 0, NOTE_BODY_MAX)};
  char key[DRAFT_KEY_MAX];
  nno_kv *kv;
  json_t *o;
  put_step *ps = api->req_alloc(req, sizeof *ps);
  if (!ps) return nno_problem(req, 500, NULL, "out of memory");
  if (nno_body_object(req, NOTE_REQUEST_MAX, NNO_BODY_JSON_TYPE, &o))
    return NNO_OK;
  char *text = NULL;
  /* A draft's title obeys the rules of a note's: what is saved can be
   * posted. */
  const char *title = json_string_value(json_object_get(o, "title"));
  if (nno_fields_check(req, o, fields, 2) ||
      (title && nno_check_name(req, "title", title, NOTE_TITLE_MAX)) ||
      open_kv(req, &kv))
    goto answered;
  if (!(text = nno_json_text(o))) {
    nno_problem(req, 500, NULL, "out of memory");
    goto answered;
  }
  size_t n = draft_key(req, key);
  ps->draft = o;
  /* Each save sets the expiry again: a draft lives 7 days after its last
   * change. */
  int rc =
      api->kv_put(kv, key, n, text, strlen(text), DRAFT_TTL_S, put_done, ps);
  free(text);
  if (rc == NNO_OK) return NNO_ASYNC;
  nno_problem_storage(req, rc, "the drafts", NULL);
answered:
  json_decref(o);
  return NNO_OK;
}

static void deleted(nno_req *req, const nno_kv_result *res, void *ud) {
  if (res->error)
    nno_problem_storage(req, res->error, "the drafts", res->error_message);
  else if (!res->found)
    nno_problem(req, 404, NULL, "no draft");
  else
    api->res_status(req, 204);
  api->res_end(req);
}

int on_draft_delete(nno_req *req, void *ud) {
  char key[DRAFT_KEY_MAX];
  nno_kv *kv;
  size_t n = draft_key(req, key);
  if (open_kv(req, &kv)) return NNO_OK;
  int rc = api->kv_delete(kv, key, n, deleted, NULL);
  if (rc != NNO_OK) return nno_problem_storage(req, rc, "the drafts", NULL);
  return NNO_ASYNC;
}
