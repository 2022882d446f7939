/* Outbound HTTP for plugins: libcurl's multi interface driven by the
 * worker's libuv loop (uv_poll per socket, one uv_timer for curl's
 * timeouts). Bounded in time, size and concurrency; http and https only. */
#ifndef NNO_HOST_FETCH_H
#define NNO_HOST_FETCH_H

#include <uv.h>

#include <nno/plugin.h>

#include "config.h"

struct plugin;

typedef struct fetcher fetcher;

fetcher *fetch_new(uv_loop_t *loop, const nno_config *cfg);
/* Cancel everything in flight (callbacks get NNO_ECANCELED), then free
 * once libuv has closed the handles; run the loop after it. */
void fetch_free(fetcher *f);
/* Cancel the transfers of one plugin (before its fini). */
void fetch_cancel_owner(fetcher *f, struct plugin *owner);

int fetch_start(fetcher *f, struct plugin *owner, const nno_http_request *req,
                nno_http_done_fn done, void *ud);

#endif
