/* A problem shown to a person: when a browser navigates to a URL (the
 * address bar, a link) and the answer is an error, the host renders the
 * same problem (status, title, detail, request id) as a small HTML page
 * instead of raw application/problem+json. API clients, fetch() and
 * XHR never get it: they do not send Sec-Fetch-Mode: navigate. */
#ifndef NNO_PROBLEM_PAGE_H
#define NNO_PROBLEM_PAGE_H

#include <stddef.h>

#include "http.h"
#include "req.h"

/* Is `hr` a browser's navigation: GET or HEAD with "Sec-Fetch-Mode:
 * navigate", or, from a browser too old to say, no Sec-Fetch-Mode and an
 * Accept whose first type is text/html? */
int problem_page_wanted(const http_request *hr);

/* As problem_build(), but text/html: `headers` gets its Content-Type,
 * Content-Security-Policy (nothing may load), Cache-Control and Vary
 * lines; every text is HTML-escaped. */
void problem_page_build(buf *headers, buf *body, int status,
                        const char *title, const char *detail,
                        const char *rid, size_t rid_len);

#endif
