/*
 * The nno plugin SDK: what every package's handlers write otherwise —
 * problem answers, JSON bodies and field tables, ids and names, route and
 * query parameters, cursor pages, the caller's actor string.
 *
 * A small static library (libnno_sdk.a) built only on the public ABI
 * (nno/plugin.h) and jansson. It is linked into the plugin's own shared
 * object with hidden visibility: it adds no export (the descriptor stays
 * the only one), and every plugin has its own copy of its little state.
 *
 * Call nno_sdk_init() first thing in on_plugin_init; then include the
 * concerns you use, or this header for all of them:
 *
 *   nno/sdk/problem.h   application/problem+json answers
 *   nno/sdk/json.h      JSON responses, request bodies, field tables
 *   nno/sdk/request.h   ids, names, route and query parameters, the actor
 *   nno/sdk/page.h      limit and cursor parameters, pages of items
 *   nno/sdk/static.h    files of a folder: types, ETag, 304, a cache
 *
 * Functions that "answer" write a complete response and return NNO_OK (or
 * -1 where they also report a failure): the handler then returns NNO_OK
 * without writing anything else.
 *
 * THREAD: the loop thread, like every host call (none of these functions
 * may be called from a work_queue() function).
 */
#ifndef NNO_SDK_H
#define NNO_SDK_H

#include <nno/sdk/base.h>
#include <nno/sdk/json.h>
#include <nno/sdk/page.h>
#include <nno/sdk/problem.h>
#include <nno/sdk/request.h>
#include <nno/sdk/static.h>

#endif /* NNO_SDK_H */
