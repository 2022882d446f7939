/* Problems for browsers: a problem+json answer to a browser's navigation
 * rendered as a small HTML page (same status, title, detail, request id),
 * so a person who opens a URL reads a page, not raw JSON. API clients keep
 * application/problem+json. */
#ifndef NNO_PROBLEM_HTML_H
#define NNO_PROBLEM_HTML_H

#include "http.h"
#include "req.h"

/* 1 if `hr` is a browser navigation: `Sec-Fetch-Mode: navigate`, or an
 * Accept naming text/html with a higher q than any JSON type (and than a
 * catch-all that would take JSON). 0 otherwise (fetch(), curl, clients that
 * ask for JSON or send no Accept). */
int problem_html_wanted(const http_request *hr);

/* If `headers` says the response is application/problem+json and `body`
 * holds one (at most 64 KiB), replace both with the HTML page: headers
 * keep their other lines (Retry-After, Allow, WWW-Authenticate...) and get
 * Content-Type text/html, the console's Content-Security-Policy,
 * X-Frame-Options, Referrer-Policy, nosniff and Cache-Control: no-store.
 * 1 when replaced; 0 when not a problem or out of memory (both as they
 * were: the JSON answer goes). */
int problem_html_render(buf *headers, buf *body, int status);

#endif
