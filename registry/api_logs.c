/* Operator and platform API: a platform's recent log lines.
 *
 *   GET /api/v1/platforms/{platform}/logs   since, package, limit, wait
 *
 * The lines come from the host's log ring (log_tail): package lines logged
 * in the platform's requests, sandbox lines, crash reports and the access
 * lines of its requests, each the JSON object the log holds plus its
 * "seq". Scope logs:read (the operator, or the platform's keys and users
 * granted it); a credential bound to a tenant is refused, since the lines
 * are the whole platform's. With wait=S (1..25) and nothing new, the
 * answer waits until a line comes or S seconds pass, checking every
 * 200 ms. No line holds a secret: the host logs paths without their
 * queries, and never a header or a body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_util.h"
#include "internal.h"

#define LOGS_LIMIT_DEFAULT 100
#define LOGS_LIMIT_MAX 1000
#define LOGS_WAIT_MAX 25
#define LOGS_POLL_MS 200

/* One request's question, kept across the timer's ticks when it waits. */
typedef struct logs_q {
  nno_req *req;
  char platform[STORE_ID_MAX + 1];
  char package[65]; /* "" : every line */
  uint64_t since;
  size_t limit;
  unsigned ticks_left; /* wait: ticks before answering with nothing */
  nno_timer *timer;
  json_t *lines;
} logs_q;

static int line_cb(void *ud, uint64_t seq, const char *line, size_t len) {
  logs_q *q = ud;
  json_t *o = json_loadb(line, len, 0, NULL);
  if (!json_is_object(o)) goto skip;
  if (q->package[0]) {
    const char *pkg = json_string_value(json_object_get(o, "package"));
    if (!pkg) pkg = json_string_value(json_object_get(o, "plugin"));
    if (!pkg || strcmp(pkg, q->package) != 0) goto skip;
  }
  if (json_object_set_new(o, "seq", json_integer((json_int_t)seq)) ||
      json_array_append_new(q->lines, o))
    return 1; /* out of memory: answer with what there is */
  return 0;
skip:
  json_decref(o);
  return 0;
}

/* Read what is new into q->lines; q->since moves on. 0, 1 when the
 * worker drains (answer now, wait no more), or -1 after answering (no
 * ring). */
static int collect(logs_q *q) {
  uint64_t next = q->since;
  int rc = api->log_tail(g_reg.p, q->platform, q->since, q->limit, line_cb, q,
                         &next);
  if (rc == NNO_ECANCELED) return 1;
  if (rc < 0) {
    nno_problem(q->req, 503, NULL,
                "this host keeps no log lines (log.ring_bytes is 0)");
    return -1;
  }
  q->since = next;
  return 0;
}

static void answer(logs_q *q) {
  nno_send_json(
      q->req, 200,
      json_pack("{s:O, s:I}", "lines", q->lines, "next", (json_int_t)q->since));
}

static void q_free(logs_q *q) {
  json_decref(q->lines);
  free(q);
}

static void on_tick(nno_timer *t, void *ud) {
  logs_q *q = ud;
  if (!api->req_gone(q->req)) {
    int rc = collect(q);
    if (rc < 0) goto end;
    if (rc == 0 && json_array_size(q->lines) == 0 && q->ticks_left-- > 1)
      return;
    answer(q);
  }
end:
  api->timer_stop(t);
  api->res_end(q->req);
  q_free(q);
}

/* A decimal query number in [lo, hi]; *out = def when absent. 0, or -1
 * after answering 422. */
static int query_num(nno_req *req, const char *name, uint64_t lo, uint64_t hi,
                     uint64_t def, uint64_t *out) {
  char v[24];
  int has = nno_query_copy(req, name, v, sizeof v);
  if (has < 0) return -1;
  *out = def;
  if (!has) return 0;
  char *end = NULL;
  unsigned long long n = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
  if (!end || *end || n < lo || n > hi) {
    nno_problem(req, 422, name,
                "field \"%s\": a whole number from %llu to %llu", name,
                (unsigned long long)lo, (unsigned long long)hi);
    return -1;
  }
  *out = n;
  return 0;
}

static int on_logs(nno_req *req, void *ud) {
  (void)ud;
  logs_q *q = calloc(1, sizeof *q);
  if (!q || !(q->lines = json_array())) {
    free(q);
    return nno_problem(req, 500, NULL, "out of memory");
  }
  q->req = req;
  uint64_t limit, wait;
  nno_caller c;
  if (!hu_authorized(req) || hu_platform(req, q->platform)) goto done;
  if (NNO_HAS(api, req_caller) && api->req_caller(req, &c) == NNO_OK &&
      c.tenant.len) {
    nno_problem(req, 403, NULL,
                "this credential is bound to tenant \"%.*s\": a platform's "
                "logs are platform-wide, read them with a key of the whole "
                "platform",
                (int)c.tenant.len, c.tenant.ptr);
    goto done;
  }
  if (!NNO_HAS(api, log_tail)) {
    nno_problem(req, 501, NULL, "this host has no log ring (ABI 1.5)");
    goto done;
  }
  if (query_num(req, "since", 0, UINT64_MAX - 1, 0, &q->since) ||
      query_num(req, "limit", 1, LOGS_LIMIT_MAX, LOGS_LIMIT_DEFAULT, &limit) ||
      query_num(req, "wait", 0, LOGS_WAIT_MAX, 0, &wait) ||
      nno_query_copy(req, "package", q->package, sizeof q->package) < 0)
    goto done;
  q->limit = (size_t)limit;
  int rc = collect(q);
  if (rc < 0) goto done;
  if (rc == 0 && json_array_size(q->lines) == 0 && wait > 0) {
    q->ticks_left = (unsigned)(wait * 1000 / LOGS_POLL_MS);
    if (api->timer_start(g_reg.p, LOGS_POLL_MS, LOGS_POLL_MS, on_tick, q,
                         &q->timer) == NNO_OK)
      return NNO_ASYNC;
  }
  answer(q);
done:
  q_free(q);
  return NNO_OK;
}

int api_logs_init(nno_plugin *p) {
  return api->route_add(p, "GET", "/api/v1/platforms/{platform}/logs", on_logs,
                        NULL);
}
