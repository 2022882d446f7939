/* Unit tests for the strict HTTP/1.1 request reader (host/http.c). */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define S(lit) lit, sizeof(lit) - 1
#define H "Host: example.com\r\n"

static const http_limits LIM = {8192, 100, 1048576, 8192};

static http_reader *reader(size_t head, size_t fields, size_t body) {
  http_limits l = {head, fields, body, 0};
  http_reader *r = http_reader_new(&l);
  assert_non_null(r);
  return r;
}

/* Feeds s[0..n) as a client would deliver it, step bytes at a time (n for
 * all at once), calling again after HTTP_HEAD_DONE, until the message
 * completes, fails or the input runs out. *used: bytes consumed. */
static http_event feed(http_reader *r, const char *s, size_t n, size_t step,
                       size_t *used) {
  size_t off = 0, got = step < n ? step : n, u;
  http_event ev;

  for (;;) {
    ev = http_reader_feed(r, s + off, got - off, &u);
    assert_true(u <= got - off);
    off += u;
    if (ev == HTTP_HEAD_DONE) {
      assert_true(http_reader_head_done(r));
      assert_non_null(http_reader_request(r));
      continue;
    }
    if (ev != HTTP_NEED_MORE) break;
    assert_int_equal(off, got); /* NEED_MORE takes everything */
    if (got == n) break;
    got = got + step < n ? got + step : n;
  }
  *used = off;
  return ev;
}

/* ---- table of requests and what the reader answers ------------------ */

typedef struct tcase {
  const char *name;
  const char *req;
  size_t len;
  int status;         /* 0: accepted (MESSAGE_DONE, all input consumed) */
  const char *detail; /* for refusals */
} tcase;

#define OK(name, req)                                                          \
  { name, S(req), 0, NULL }
#define NO(name, req, st, d)                                                   \
  { name, S(req), st, d }

static const tcase cases[] = {
    /* accepted */
    OK("simple GET", "GET / HTTP/1.1\r\n" H "\r\n"),
    OK("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"),
    OK("HTTP/1.2 read as 1.1", "GET / HTTP/1.2\r\n" H "\r\n"),
    OK("unknown token method", "FROB /x HTTP/1.1\r\n" H "\r\n"),
    OK("lower-case token method", "get / HTTP/1.1\r\n" H "\r\n"),
    OK("field without OWS", "GET / HTTP/1.1\r\nHost:a\r\n\r\n"),
    OK("HTAB and obs-text in value",
       "GET / HTTP/1.1\r\n" H "X: a\tb \xc3\xa9\r\n\r\n"),
    OK("empty field value", "GET / HTTP/1.1\r\n" H "X:\r\nY: \t \r\n\r\n"),
    OK("eight leading CRLFs",
       "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n"),
    OK("Host IPv6 literal with port",
       "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
    OK("Host with empty port", "GET / HTTP/1.1\r\nHost: a.b:\r\n\r\n"),
    OK("Host with one trailing dot",
       "GET / HTTP/1.1\r\nHost: a.nno.localhost.:80\r\n\r\n"),
    OK("Host IPv4 with port", "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"),
    OK("Content-Length with leading zeros",
       "POST / HTTP/1.1\r\n" H "Content-Length: 007\r\n\r\n1234567"),
    OK("Content-Length 0", "POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n"),
    OK("chunked, case-insensitive",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n"),
    OK("chunked with empty list elements",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: , chunked ,\r\n\r\n"
       "0\r\n\r\n"),
    OK("chunk extensions",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "3 ;a=b;c=\"d e\"\r\nabc\r\n0;x\r\n\r\n"),
    OK("hex chunk sizes",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "A\r\n0123456789\r\n0000a\r\n0123456789\r\n0\r\n\r\n"),
    OK("chunked with trailers",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1\r\nx\r\n0\r\nT1: a\r\nT2:\r\n\r\n"),
    OK("OPTIONS asterisk-form", "OPTIONS * HTTP/1.1\r\n" H "\r\n"),
    OK("absolute-form", "GET http://example.com/a?b HTTP/1.1\r\n" H "\r\n"),
    OK("Expect 100-continue",
       "GET / HTTP/1.1\r\n" H "Expect: 100-Continue\r\n\r\n"),
    OK("pct-encoded UTF-8 in target", "GET /caf%C3%A9 HTTP/1.1\r\n" H "\r\n"),
    OK("chunk extensions with BWS everywhere",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "3 ; a = b\t;\tc = \"q\\\"x\" ; d;e=\"\"\r\nabc\r\n0\r\n\r\n"),
    OK("query may hold stray %", "GET /a?p=100% HTTP/1.1\r\n" H "\r\n"),

    /* request-line */
    NO("HTTP/0.9 request", "GET /\r\n\r\n", 400, "malformed request line"),
    NO("leading space", " GET / HTTP/1.1\r\n" H "\r\n", 400,
       "malformed request line"),
    NO("two spaces after method", "GET  / HTTP/1.1\r\n" H "\r\n", 400,
       "too many spaces in request line"),
    NO("two spaces before version", "GET /  HTTP/1.1\r\n" H "\r\n", 400,
       "too many spaces in request line"),
    NO("trailing space", "GET / HTTP/1.1 \r\n" H "\r\n", 400,
       "too many spaces in request line"),
    NO("space in target", "GET /a b HTTP/1.1\r\n" H "\r\n", 400,
       "too many spaces in request line"),
    NO("HTAB as separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400,
       "malformed request line"),
    NO("HTAB in method", "GE\tT / HTTP/1.1\r\n" H "\r\n", 400,
       "invalid character in method"),
    NO("method not a token", "GE(T / HTTP/1.1\r\n" H "\r\n", 400,
       "invalid character in method"),
    NO("bare CR in request line", "GET /\r HTTP/1.1\r\n" H "\r\n", 400,
       "bare CR in request line"),
    NO("HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 505,
       "HTTP version not supported"),
    NO("HTTP/0.9 version", "GET / HTTP/0.9\r\n" H "\r\n", 505,
       "HTTP version not supported"),
    NO("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505,
       "HTTP version not supported"),
    NO("HTTP/3", "GET / HTTP/3\r\n" H "\r\n", 400, "malformed HTTP version"),
    NO("HTTP/1.10", "GET / HTTP/1.10\r\n" H "\r\n", 400,
       "malformed HTTP version"),
    NO("lower-case version", "GET / http/1.1\r\n" H "\r\n", 400,
       "malformed HTTP version"),
    NO("HTTP/1", "GET / HTTP/1\r\n" H "\r\n", 400, "malformed HTTP version"),
    NO("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\n" H "\r\n", 501,
       "CONNECT is not supported"),
    NO("fragment", "GET /a#b HTTP/1.1\r\n" H "\r\n", 400,
       "fragment in request-target"),
    NO("CTL in target", "GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400,
       "invalid character in request-target"),
    NO("DEL in target", "GET /a\x7f HTTP/1.1\r\n" H "\r\n", 400,
       "invalid character in request-target"),
    NO("NUL in target", "GET /a\0 HTTP/1.1\r\n" H "\r\n", 400,
       "invalid character in request-target"),
    NO("bad pct-encoding", "GET /a%zz HTTP/1.1\r\n" H "\r\n", 400,
       "invalid percent-encoding in request-target"),
    NO("truncated pct-encoding", "GET /a%4 HTTP/1.1\r\n" H "\r\n", 400,
       "invalid percent-encoding in request-target"),
    NO("asterisk-form with GET", "GET * HTTP/1.1\r\n" H "\r\n", 400,
       "asterisk-form request-target requires OPTIONS"),
    NO("asterisk-form with POST", "POST * HTTP/1.1\r\n" H "\r\n", 400,
       "asterisk-form request-target requires OPTIONS"),
    NO("raw UTF-8 in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400,
       "non-ASCII octet in request-target"),
    NO("overlong UTF-8 in target", "GET /a\xc0\xaf/b HTTP/1.1\r\n" H "\r\n",
       400, "non-ASCII octet in request-target"),
    NO("obs-text in query", "GET /a?q=\xff HTTP/1.1\r\n" H "\r\n", 400,
       "non-ASCII octet in request-target"),
    NO("obs-text in absolute-form",
       "GET http://example.com/\x80 HTTP/1.1\r\n" H "\r\n", 400,
       "non-ASCII octet in request-target"),
    NO("bare CR in request line, no LF yet", "GET /a\rb", 400,
       "bare CR in request line"),
    NO("authority-form with GET", "GET example.com:80 HTTP/1.1\r\n" H "\r\n",
       400, "invalid request-target"),
    NO("relative target", "GET a/b HTTP/1.1\r\n" H "\r\n", 400,
       "invalid request-target"),
    NO("ftp scheme", "GET ftp://example.com/ HTTP/1.1\r\n" H "\r\n", 400,
       "unsupported scheme in request-target"),
    NO("userinfo in absolute-form",
       "GET http://u@example.com/ HTTP/1.1\r\n" H "\r\n", 400,
       "invalid authority in request-target"),
    NO("bad pct-encoding in absolute-form",
       "GET http://a/%zz HTTP/1.1\r\n" H "\r\n", 400,
       "invalid percent-encoding in request-target"),
    NO("absolute-form without //", "GET http:a/b HTTP/1.1\r\n" H "\r\n", 400,
       "invalid request-target"),
    NO("empty host in absolute-form", "GET http:///a HTTP/1.1\r\n" H "\r\n",
       400, "invalid authority in request-target"),
    NO("nine leading CRLFs",
       "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 400,
       "too many empty lines before request line"),
    NO("leading bare LF", "\nGET / HTTP/1.1\r\n" H "\r\n", 400,
       "bare LF in header section"),

    /* field lines */
    NO("whitespace before colon", "GET / HTTP/1.1\r\n" H "Foo : bar\r\n\r\n",
       400, "whitespace before colon in header field"),
    NO("HTAB before colon", "GET / HTTP/1.1\r\n" H "Foo\t: bar\r\n\r\n", 400,
       "whitespace before colon in header field"),
    NO("obs-fold", "GET / HTTP/1.1\r\n" H "Foo: bar\r\n baz\r\n\r\n", 400,
       "obs-fold line in header section"),
    NO("obs-fold with HTAB", "GET / HTTP/1.1\r\n" H "Foo: bar\r\n\tbaz\r\n\r\n",
       400, "obs-fold line in header section"),
    NO("whitespace before first field", "GET / HTTP/1.1\r\n " H "\r\n", 400,
       "obs-fold line in header section"),
    NO("bare LF after request line", "GET / HTTP/1.1\n" H "\r\n", 400,
       "bare LF in header section"),
    NO("bare LF after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400,
       "bare LF in header section"),
    NO("bare LF ends head", "GET / HTTP/1.1\r\n" H "\n", 400,
       "bare LF in header section"),
    NO("bare CR in value", "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", 400,
       "bare CR in header section"),
    NO("CR CR LF", "GET / HTTP/1.1\r\n" H "X: a\r\r\n\r\n", 400,
       "bare CR in header section"),
    NO("bare CR in value, no LF yet", "GET / HTTP/1.1\r\n" H "X: a\rbcd", 400,
       "bare CR in header section"),
    NO("bare CR starts a line, no LF yet", "GET / HTTP/1.1\r\n" H "\rX", 400,
       "bare CR in header section"),
    NO("bare CR in name", "GET / HTTP/1.1\r\n" H "X\r: a\r\n\r\n", 400,
       "bare CR in header section"),
    NO("empty field name", "GET / HTTP/1.1\r\n" H ": a\r\n\r\n", 400,
       "empty header field name"),
    NO("invalid name character", "GET / HTTP/1.1\r\n" H "X(y: a\r\n\r\n", 400,
       "invalid character in header field name"),
    NO("space inside name", "GET / HTTP/1.1\r\n" H "X y: a\r\n\r\n", 400,
       "invalid character in header field name"),
    NO("missing colon", "GET / HTTP/1.1\r\n" H "Xy\r\n\r\n", 400,
       "missing colon in header field"),
    NO("missing colon after space", "GET / HTTP/1.1\r\n" H "X y\r\n\r\n", 400,
       "missing colon in header field"),
    NO("NUL in value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400,
       "invalid character in header field value"),
    NO("CTL in value", "GET / HTTP/1.1\r\n" H "X: a\x01\r\n\r\n", 400,
       "invalid character in header field value"),
    NO("DEL in value", "GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", 400,
       "invalid character in header field value"),

    /* Host */
    NO("no Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400,
       "missing Host header field"),
    NO("two Hosts", "GET / HTTP/1.1\r\n" H H "\r\n", 400,
       "multiple Host header fields"),
    NO("two Hosts on HTTP/1.0", "GET / HTTP/1.0\r\n" H H "\r\n", 400,
       "multiple Host header fields"),
    NO("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host long port", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host bad IP literal", "GET / HTTP/1.1\r\nHost: [::1/]\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host empty IP literal", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host junk after IP literal", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
       400, "invalid Host header field"),
    NO("Host bad pct-encoding", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host pct-encoded", "GET / HTTP/1.1\r\nHost: %41b.c\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host pct-encoded dot",
       "GET / HTTP/1.1\r\nHost: a.nno.localhost%2e\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host two trailing dots",
       "GET / HTTP/1.1\r\nHost: a.nno.localhost..\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host empty inner label", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host leading dot", "GET / HTTP/1.1\r\nHost: .a:80\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host only a dot", "GET / HTTP/1.1\r\nHost: .\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host with underscore", "GET / HTTP/1.1\r\nHost: a_b.c\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host with sub-delims", "GET / HTTP/1.1\r\nHost: a!b\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host IPvFuture literal", "GET / HTTP/1.1\r\nHost: [v1.x]\r\n\r\n", 400,
       "invalid Host header field"),
    NO("absolute-form with two trailing dots",
       "GET http://a.b../ HTTP/1.1\r\n" H "\r\n", 400,
       "invalid authority in request-target"),
    NO("Host only a port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400,
       "invalid Host header field"),
    NO("Host unclosed IP literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400,
       "invalid Host header field"),

    /* framing */
    NO("Transfer-Encoding on HTTP/1.0",
       "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
       "Transfer-Encoding in an HTTP/1.0 request"),
    NO("Content-Length and Transfer-Encoding",
       "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       400, "both Content-Length and Transfer-Encoding"),
    NO("Transfer-Encoding and Content-Length",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
       "Content-Length: 5\r\n\r\n",
       400, "both Content-Length and Transfer-Encoding"),
    NO("identical Content-Length twice",
       "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
       400, "multiple Content-Length header fields"),
    NO("conflicting Content-Length",
       "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\ncontent-length: 6\r\n\r\n",
       400, "multiple Content-Length header fields"),
    NO("Content-Length list",
       "POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length +5",
       "POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length -1",
       "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length 5 5",
       "POST / HTTP/1.1\r\n" H "Content-Length: 5 5\r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length 0x5",
       "POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length empty",
       "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length blank",
       "POST / HTTP/1.1\r\n" H "Content-Length:  \r\n\r\n", 400,
       "invalid Content-Length"),
    NO("Content-Length huge",
       "POST / HTTP/1.1\r\n" H
       "Content-Length: 99999999999999999999999999\r\n\r\n",
       400, "Content-Length out of range"),
    NO("Content-Length 2^63",
       "POST / HTTP/1.1\r\n" H "Content-Length: 9223372036854775808\r\n\r\n",
       400, "Content-Length out of range"),
    NO("Content-Length 2^64",
       "POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n",
       400, "Content-Length out of range"),
    NO("Content-Length 2^63-1",
       "POST / HTTP/1.1\r\n" H "Content-Length: 9223372036854775807\r\n\r\n",
       413, "request body too large"),
    NO("Content-Length out of range, then a bad digit",
       "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999x\r\n\r\n",
       400, "invalid Content-Length"),
    NO("Transfer-Encoding gzip alone",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 400,
       "final transfer coding is not chunked"),
    NO("Transfer-Encoding identity",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", 400,
       "final transfer coding is not chunked"),
    NO("Transfer-Encoding empty",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 400,
       "final transfer coding is not chunked"),
    NO("chunked then gzip",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
       "final transfer coding is not chunked"),
    NO("chunked twice",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n",
       400, "chunked applied more than once"),
    NO("chunked twice over two fields",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       400, "chunked applied more than once"),
    NO("gzip then chunked",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
       "unsupported transfer coding"),
    NO("gzip then chunked over two fields",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       501, "unsupported transfer coding"),
    NO("Transfer-Encoding not a list",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked x\r\n\r\n", 400,
       "invalid Transfer-Encoding"),
    NO("chunked with a parameter",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;foo=bar\r\n\r\n"
       "0\r\n\r\n",
       400, "parameters on the chunked transfer coding"),
    NO("chunked with an empty parameter",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked ;\r\n\r\n", 400,
       "parameters on the chunked transfer coding"),
    NO("unknown coding with a parameter, then chunked",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: x;level=1, chunked\r\n\r\n",
       501, "unsupported transfer coding"),
    NO("Transfer-Encoding not a token",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n", 400,
       "invalid Transfer-Encoding"),

    /* chunked body */
    NO("chunk size not hex",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nz\r\n", 400,
       "invalid chunk size"),
    NO("chunk size negative",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400,
       "invalid chunk size"),
    NO("chunk size 0x",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0x5\r\n", 400,
       "invalid chunk size"),
    NO("chunk size empty",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n\r\n", 400,
       "invalid chunk size"),
    NO("chunk size leading space",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n 5\r\n", 400,
       "invalid chunk size"),
    NO("chunk size trailing space",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5 \r\n", 400,
       "invalid chunk size"),
    NO("chunk size bare LF",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\nhello",
       400, "invalid chunk size"),
    NO("chunk size bare CR",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\rhello",
       400, "bare CR in chunk size line"),
    NO("chunk extension bare LF",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\nhello",
       400, "bare LF in chunk size line"),
    NO("chunk extension NUL",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\0\r\n",
       400, "invalid character in chunk extension"),
    NO("chunk size overflow",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "fffffffffffffffffffff\r\n",
       400, "chunk size out of range"),
    NO("chunk size 2^63",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0008000000000000000\r\n",
       400, "chunk size out of range"),
    NO("chunk size 2^63-1",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "7fffffffffffffff\r\n",
       413, "request body too large"),
    NO("chunk size over the limit, then an extension",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "100001;a\r\n",
       413, "request body too large"),
    NO("chunk extension bare semicolon",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension two semicolons",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;;a\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension name not a token",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a(b)\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension without a name",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;=v\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension empty value",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a=\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension value not a token",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a=b@c\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension two values",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a=b c\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension BWS before CRLF",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a \r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension unterminated quoted-string",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a=\"b\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension text after quoted-string",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a=\"b\"c\r\nx\r\n0\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk extension CTL in quoted-pair",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n",
       400, "invalid character in chunk extension"),
    NO("chunk extension on the last chunk",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0;a=\r\n\r\n",
       400, "invalid chunk extension"),
    NO("chunk size too many digits",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "000000000000000000000000000000001\r\n",
       400, "chunk size too long"),
    NO("missing CRLF after chunk data",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "5\r\nhelloX\r\n0\r\n\r\n",
       400, "missing CRLF after chunk data"),
    NO("bare LF after chunk data",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\n0\r\n\r\n",
       400, "missing CRLF after chunk data"),
    NO("CR without LF after chunk data",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r0\r\n\r\n",
       400, "missing CRLF after chunk data"),
    NO("trailer obs-fold",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0\r\nT: a\r\n b\r\n\r\n",
       400, "obs-fold line in trailer section"),
    NO("trailer whitespace before colon",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0\r\nT : a\r\n\r\n",
       400, "whitespace before colon in trailer field"),
    NO("trailer bare LF",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0\r\nT: a\n\r\n",
       400, "bare LF in trailer section"),
    NO("bare LF ends trailers",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\n", 400,
       "bare LF in trailer section"),
    NO("trailer bare CR",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0\r\nT: a\rb\r\n\r\n",
       400, "bare CR in trailer section"),
    NO("trailer NUL",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0\r\nT: a\0\r\n\r\n",
       400, "invalid character in trailer field value"),
    NO("trailer empty name",
       "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
       "0\r\n: a\r\n\r\n",
       400, "empty trailer field name"),

    /* Expect */
    NO("Expect other", "GET / HTTP/1.1\r\n" H "Expect: fly\r\n\r\n", 417,
       "unsupported expectation"),
    NO("Expect list", "GET / HTTP/1.1\r\n" H "Expect: 100-continue, x\r\n\r\n",
       417, "unsupported expectation"),
    NO("Expect other on HTTP/1.0", "GET / HTTP/1.0\r\nExpect: fly\r\n\r\n", 417,
       "unsupported expectation"),
};

/* Each case whole, one byte at a time and in 7-byte pieces. */
static void run_case(void **state) {
  const tcase *c = *state;
  static const size_t steps[] = {0, 1, 7};
  size_t i, used;

  for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    http_reader *r = http_reader_new(&LIM);
    size_t step = steps[i] ? steps[i] : c->len;
    http_event ev;

    assert_non_null(r);
    ev = feed(r, c->req, c->len, step, &used);
    if (c->status == 0) {
      if (ev != HTTP_MESSAGE_DONE)
        fail_msg("%s (step %zu): event %d, status %d: %s", c->name, step, ev,
                 http_reader_error_status(r), http_reader_error_detail(r));
      assert_int_equal(used, c->len);
    } else {
      if (ev != HTTP_ERROR)
        fail_msg("%s (step %zu): event %d, expected %d", c->name, step, ev,
                 c->status);
      assert_int_equal(http_reader_error_status(r), c->status);
      assert_string_equal(http_reader_error_detail(r), c->detail);
      /* A refused reader stays refused. */
      assert_int_equal(http_reader_feed(r, "x", 1, &used), HTTP_ERROR);
      assert_int_equal(used, 0);
    }
    http_reader_free(r);
  }
}

/* ---- the parsed request ----------------------------------------------- */

static void test_request_fields(void **state) {
  static const char req[] =
      "POST /p/a%20b?x=1&y HTTP/1.1\r\nhost:  Example.com:80 \r\n"
      "X-A: one\r\nx-a: two\r\nContent-Length: 3\r\n\r\nabc";
  http_reader *r = http_reader_new(&LIM);
  const http_request *q;
  const http_header *h;
  size_t used;

  assert_null(http_reader_request(r));
  assert_int_equal(http_reader_feed(r, req, sizeof req - 1, &used),
                   HTTP_HEAD_DONE);
  assert_int_equal(used, sizeof req - 1 - 3);
  q = http_reader_request(r);
  assert_non_null(q);
  assert_string_equal(q->method, "POST");
  assert_int_equal(q->method_len, 4);
  assert_string_equal(q->target, "/p/a%20b?x=1&y");
  assert_int_equal(q->target_len, strlen(q->target));
  assert_string_equal(q->path, "/p/a%20b");
  assert_int_equal(q->path_len, 8);
  assert_string_equal(q->query, "x=1&y");
  assert_int_equal(q->query_len, 5);
  assert_int_equal(q->version_major, 1);
  assert_int_equal(q->version_minor, 1);
  assert_string_equal(q->host, "Example.com:80");
  assert_int_equal(q->host_len, 14);
  assert_int_equal(q->nheaders, 4);
  assert_string_equal(q->headers[0].name, "host");
  assert_string_equal(q->headers[1].name, "X-A");
  assert_string_equal(q->headers[1].value, "one");
  assert_string_equal(q->headers[2].name, "x-a");
  assert_string_equal(q->headers[2].value, "two");
  assert_int_equal(q->headers[2].value_len, 3);
  h = http_request_header(q, "X-a");
  assert_ptr_equal(h, &q->headers[1]);
  assert_null(http_request_header(q, "X"));
  assert_null(http_request_header(q, "X-A-B"));
  assert_string_equal(q->body, "");
  assert_int_equal(q->keep_alive, 1);
  assert_int_equal(q->expect_continue, 0);
  assert_int_equal(q->head, 0);

  assert_int_equal(http_reader_feed(r, req + used, 3, &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(used, 3);
  q = http_reader_request(r);
  assert_int_equal(q->body_len, 3);
  assert_string_equal(q->body, "abc");
  assert_string_equal(q->path, "/p/a%20b"); /* head still valid */
  http_reader_free(r);
}

static void test_path_query_forms(void **state) {
  static const struct {
    const char *req, *path, *query, *host;
  } t[] = {
      {"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", "/a", "", "h"},
      {"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", "/a", "", "h"},
      {"GET /a?b?c/d HTTP/1.1\r\nHost: h\r\n\r\n", "/a", "b?c/d", "h"},
      {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*", "", "h"},
      {"GET http://example.com HTTP/1.1\r\nHost: h\r\n\r\n", "/", "",
       "example.com"},
      {"GET HTTPS://Ex.com:8443/a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", "/a/b",
       "x=1", "Ex.com:8443"},
      {"GET http://[::1]:80?q HTTP/1.1\r\nHost: h\r\n\r\n", "/", "q",
       "[::1]:80"},
      {"GET /x HTTP/1.0\r\n\r\n", "/x", "", ""},
  };
  size_t i, used;

  for (i = 0; i < sizeof t / sizeof t[0]; i++) {
    http_reader *r = http_reader_new(&LIM);
    const http_request *q;

    assert_int_equal(
        feed(r, t[i].req, strlen(t[i].req), strlen(t[i].req), &used),
        HTTP_MESSAGE_DONE);
    q = http_reader_request(r);
    assert_string_equal(q->path, t[i].path);
    assert_int_equal(q->path_len, strlen(t[i].path));
    assert_string_equal(q->query, t[i].query);
    assert_int_equal(q->query_len, strlen(t[i].query));
    assert_string_equal(q->host, t[i].host);
    assert_int_equal(q->host_len, strlen(t[i].host));
    /* The target stays as sent. */
    assert_int_equal(q->target_len, strlen(q->target));
    assert_memory_equal(q->target, strchr(t[i].req, ' ') + 1, q->target_len);
    http_reader_free(r);
  }
}

static const http_request *parse_ok(http_reader *r, const char *s) {
  size_t used;

  http_reader_reset(r);
  if (feed(r, s, strlen(s), strlen(s), &used) != HTTP_MESSAGE_DONE)
    fail_msg("refused %s: %s", s, http_reader_error_detail(r));
  assert_int_equal(used, strlen(s));
  return http_reader_request(r);
}

static void test_keep_alive(void **state) {
  http_reader *r = http_reader_new(&LIM);

  assert_int_equal(parse_ok(r, "GET / HTTP/1.1\r\n" H "\r\n")->keep_alive, 1);
  assert_int_equal(
      parse_ok(r, "GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n")
          ->keep_alive,
      0);
  assert_int_equal(parse_ok(r, "GET / HTTP/1.1\r\n" H
                               "Connection: Keep-Alive, CLOSE\r\n\r\n")
                       ->keep_alive,
                   0);
  assert_int_equal(parse_ok(r,
                            "GET / HTTP/1.1\r\n" H
                            "Connection: upgrade\r\nConnection: close\r\n\r\n")
                       ->keep_alive,
                   0);
  assert_int_equal(
      parse_ok(r, "GET / HTTP/1.1\r\n" H "Connection: foo bar, close\r\n\r\n")
          ->keep_alive,
      0);
  assert_int_equal(
      parse_ok(r, "GET / HTTP/1.1\r\n" H "Connection: closed\r\n\r\n")
          ->keep_alive,
      1);
  assert_int_equal(parse_ok(r, "GET / HTTP/1.0\r\n\r\n")->keep_alive, 0);
  assert_int_equal(
      parse_ok(r, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
          ->keep_alive,
      1);
  assert_int_equal(
      parse_ok(r, "GET / HTTP/1.0\r\nConnection: x, KEEP-ALIVE\r\n\r\n")
          ->keep_alive,
      1);
  assert_int_equal(parse_ok(r, "GET / HTTP/1.0\r\n"
                               "Connection: keep-alive, close\r\n\r\n")
                       ->keep_alive,
                   0);
  http_reader_free(r);
}

static void test_expect_and_head(void **state) {
  http_reader *r = http_reader_new(&LIM);
  const http_request *q;
  size_t used;
  static const char req[] = "PUT /u HTTP/1.1\r\n" H
                            "Expect: 100-CONTINUE\r\nContent-Length: 2\r\n\r\n";

  /* HEAD_DONE comes before any body byte: time to send 100 Continue. */
  assert_int_equal(http_reader_feed(r, S(req), &used), HTTP_HEAD_DONE);
  assert_int_equal(used, sizeof req - 1);
  assert_int_equal(http_reader_request(r)->expect_continue, 1);
  assert_int_equal(http_reader_feed(r, "", 0, &used), HTTP_NEED_MORE);
  assert_int_equal(http_reader_feed(r, "o", 1, &used), HTTP_NEED_MORE);
  assert_int_equal(http_reader_feed(r, "kX", 2, &used), HTTP_MESSAGE_DONE);
  assert_int_equal(used, 1);
  assert_string_equal(http_reader_request(r)->body, "ok");

  q = parse_ok(r, "GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
  assert_int_equal(q->expect_continue, 0); /* RFC 9110 10.1.1 */
  assert_int_equal(parse_ok(r, "HEAD / HTTP/1.1\r\n" H "\r\n")->head, 1);
  assert_int_equal(parse_ok(r, "head / HTTP/1.1\r\n" H "\r\n")->head, 0);
  assert_int_equal(parse_ok(r, "HEADER / HTTP/1.1\r\n" H "\r\n")->head, 0);
  assert_int_equal(parse_ok(r, "GET / HTTP/1.1\r\n" H "\r\n")->head, 0);
  http_reader_free(r);
}

/* ---- incremental and pipelined input ------------------------------------ */

static void test_pipelining(void **state) {
  static const char a[] = "GET /a HTTP/1.1\r\n" H "\r\n";
  static const char b[] =
      "POST /b HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello";
  static const char c[] =
      "PUT /c HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nT: x\r\n\r\n";
  char all[sizeof a + sizeof b + sizeof c];
  size_t la = sizeof a - 1, lb = sizeof b - 1, lc = sizeof c - 1, off = 0;
  size_t used, n;
  http_reader *r = http_reader_new(&LIM);
  const http_request *q;

  memcpy(all, a, la);
  memcpy(all + la, b, lb);
  memcpy(all + la + lb, c, lc);
  n = la + lb + lc;

  /* Request 1: no body, so HEAD_DONE then MESSAGE_DONE taking nothing. */
  assert_int_equal(http_reader_feed(r, all, n, &used), HTTP_HEAD_DONE);
  assert_int_equal(used, la);
  off += used;
  assert_int_equal(http_reader_feed(r, all + off, n - off, &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(used, 0);
  q = http_reader_request(r);
  assert_string_equal(q->path, "/a");
  assert_int_equal(q->body_len, 0);

  http_reader_reset(r);
  assert_int_equal(feed(r, all + off, n - off, n - off, &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(used, lb);
  off += used;
  q = http_reader_request(r);
  assert_string_equal(q->path, "/b");
  assert_string_equal(q->body, "hello");

  http_reader_reset(r);
  assert_int_equal(feed(r, all + off, n - off, n - off, &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(used, lc);
  off += used;
  q = http_reader_request(r);
  assert_string_equal(q->method, "PUT");
  assert_string_equal(q->body, "abcde");
  assert_int_equal(q->body_len, 5);
  assert_int_equal(off, n);
  http_reader_free(r);
}

static void test_byte_at_a_time_chunked(void **state) {
  static const char req[] =
      "\r\nPOST /up HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
      "4;name=\"v\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
      "0\r\nExpires: never\r\nX-Sum: 42\r\n\r\n"
      "GET /next HTTP/1.1\r\n";
  size_t n = strlen(req), stop = strstr(req, "GET /next") - req;
  size_t i, used;
  http_reader *r = http_reader_new(&LIM);
  const http_request *q;
  http_event ev = HTTP_NEED_MORE;
  int heads = 0;

  assert_int_equal(http_reader_started(r), 0);
  for (i = 0; i < n; i++) {
    ev = http_reader_feed(r, req + i, 1, &used);
    if (ev == HTTP_HEAD_DONE) {
      heads++;
      assert_int_equal(used, 1);
      assert_int_equal(http_reader_started(r), 1);
      continue;
    }
    if (i < 2) /* leading CRLF does not start a request */
      assert_int_equal(http_reader_started(r), 0);
    if (ev == HTTP_MESSAGE_DONE) {
      assert_int_equal(used, 1);
      break;
    }
    assert_int_equal(ev, HTTP_NEED_MORE);
    assert_int_equal(used, 1);
  }
  assert_int_equal(ev, HTTP_MESSAGE_DONE);
  assert_int_equal(heads, 1);
  assert_int_equal(i + 1, stop); /* the next request was not touched */
  q = http_reader_request(r);
  assert_int_equal(q->body_len, 23);
  assert_string_equal(q->body, "Wikipedia in\r\n\r\nchunks.");
  assert_string_equal(q->path, "/up");
  assert_int_equal(q->nheaders, 2); /* trailers are discarded */

  http_reader_reset(r);
  assert_int_equal(http_reader_started(r), 0);
  assert_int_equal(http_reader_feed(r, req + stop, n - stop, &used),
                   HTTP_NEED_MORE);
  assert_int_equal(used, n - stop);
  assert_int_equal(http_reader_started(r), 1);
  http_reader_free(r);
}

static void test_large_body_in_pieces(void **state) {
  size_t blen = 200000, hl, n, i, used;
  char *req = malloc(blen + 128);
  http_reader *r = http_reader_new(&LIM);
  const http_request *q;

  assert_non_null(req);
  hl = (size_t)sprintf(req,
                       "POST / HTTP/1.1\r\nHost: h\r\n"
                       "Content-Length: %zu\r\n\r\n",
                       blen);
  for (i = 0; i < blen; i++) req[hl + i] = (char)('a' + i % 26);
  n = hl + blen;
  assert_int_equal(feed(r, req, n, 4093, &used), HTTP_MESSAGE_DONE);
  assert_int_equal(used, n);
  q = http_reader_request(r);
  assert_int_equal(q->body_len, blen);
  assert_memory_equal(q->body, req + hl, blen);
  assert_int_equal(q->body[blen], '\0');
  http_reader_reset(r); /* frees the big body buffer */
  parse_ok(r, "GET / HTTP/1.1\r\n" H "\r\n");
  free(req);
  http_reader_free(r);
}

/* ---- limits -------------------------------------------------------------- */

/* A request whose head is exactly n bytes, padding a field. */
static char *head_of(size_t n) {
  static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  size_t p = sizeof pre - 1, i;
  char *s = malloc(n + 64);

  assert_non_null(s);
  assert_true(n >= p + 4);
  memcpy(s, pre, p);
  for (i = p; i < n - 4; i++) s[i] = 'v';
  memcpy(s + n - 4, "\r\n\r\n", 5);
  return s;
}

static void test_header_bytes_limit(void **state) {
  http_reader *r = reader(128, 10, 100);
  char *s = head_of(128), *t = head_of(129);
  char both[300];
  size_t used;

  assert_int_equal(feed(r, s, 128, 128, &used), HTTP_MESSAGE_DONE);
  assert_int_equal(used, 128);
  http_reader_reset(r);
  assert_int_equal(feed(r, s, 128, 1, &used), HTTP_MESSAGE_DONE);

  /* Bytes after the head (a pipelined request) do not count. */
  http_reader_reset(r);
  memcpy(both, s, 128);
  memcpy(both + 128, s, 128);
  assert_int_equal(feed(r, both, 256, 256, &used), HTTP_MESSAGE_DONE);
  assert_int_equal(used, 128);

  http_reader_reset(r);
  assert_int_equal(feed(r, t, 129, 129, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 431);
  assert_string_equal(http_reader_error_detail(r), "header section too large");
  http_reader_reset(r);
  assert_int_equal(feed(r, t, 129, 1, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 431);
  /* Refused at the byte that passes the limit. */
  assert_int_equal(used, 128);

  /* Leading empty lines are not part of the head. */
  http_reader_reset(r);
  memcpy(both, "\r\n\r\n", 4);
  memcpy(both + 4, s, 128);
  assert_int_equal(feed(r, both, 132, 132, &used), HTTP_MESSAGE_DONE);
  free(s);
  free(t);
  http_reader_free(r);
}

static void test_request_line_limit(void **state) {
  http_reader *r = reader(32, 10, 100);
  /* 30 bytes + CRLF = 32: fits, but then the head is too large. */
  static const char fits[] =
      "GET /aaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
  static const char over[] =
      "GET /aaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t used;

  assert_int_equal(feed(r, S(fits), sizeof fits - 1, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 431);
  http_reader_reset(r);
  assert_int_equal(feed(r, S(over), sizeof over - 1, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 414);
  assert_string_equal(http_reader_error_detail(r), "request-target too long");
  http_reader_reset(r);
  assert_int_equal(feed(r, S(over), 3, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 414);
  http_reader_free(r);
}

/* s[0..n) is refused with status and detail whole, byte by byte and in
 * 7-byte pieces, by a reader with limits l. */
static void refused_every_way(const http_limits *l, const char *s, size_t n,
                              int status, const char *detail) {
  static const size_t steps[] = {0, 1, 7};
  size_t i, used;

  for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    http_reader *r = http_reader_new(l);
    assert_non_null(r);
    assert_int_equal(feed(r, s, n, steps[i] ? steps[i] : n, &used), HTTP_ERROR);
    assert_int_equal(http_reader_error_status(r), status);
    assert_string_equal(http_reader_error_detail(r), detail);
    http_reader_free(r);
  }
}

static void test_long_method_is_not_a_long_target(void **state) {
  static const http_limits l = {64, 10, 100, 0};
  char s[200];
  size_t n;

  /* A method longer than the line limit: 400, not 414. */
  memset(s, 'G', 80);
  n = 80 + (size_t)sprintf(s + 80, " / HTTP/1.1\r\nHost: h\r\n\r\n");
  refused_every_way(&l, s, n, 400, "method too long");
  /* Even with no SP at all after it. */
  refused_every_way(&l, s, 80, 400, "method too long");
  /* A method that fits, then a long target: 414. */
  memcpy(s, "GET /", 5);
  memset(s + 5, 'a', 75);
  refused_every_way(&l, s, n, 414, "request-target too long");
}

static void test_field_line_limit(void **state) {
  static const http_limits l = {1024, 10, 100, 64};
  char s[300], *p;
  size_t n;
  http_reader *r = http_reader_new(&l);

  /* A field line of exactly 64 bytes with its CRLF fits. */
  p = s + sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
  memset(p, 'v', 59);
  p += 59;
  n = (size_t)(p - s) + (size_t)sprintf(p, "\r\n\r\n");
  assert_non_null(r);
  parse_ok(r, s);
  http_reader_free(r);
  /* One more: 431, though the head is far below its limit. */
  memmove(p + 1, p, 5);
  *p = 'v';
  refused_every_way(&l, s, n + 1, 431, "header field too large");
  /* The request-line has the same limit: 414. */
  p = s + sprintf(s, "GET /");
  memset(p, 'a', 57);
  n = (size_t)(p - s) + 57 + (size_t)sprintf(p + 57, " HTTP/1.1\r\n" H "\r\n");
  refused_every_way(&l, s, n, 414, "request-target too long");
}

/* The default limits take what browsers send and nginx and Node accept. */
static void test_default_head_limits(void **state) {
  static const http_limits l = {0, 0, 0, 0};
  size_t big = 50000, n;
  char *s = malloc(big), *p;
  int i;
  http_reader *r = http_reader_new(&l);

  assert_non_null(s);
  assert_non_null(r);
  /* Three 4 KiB cookie fields: a 12 KiB head. */
  p = s + sprintf(s, "GET / HTTP/1.1\r\n" H);
  for (i = 0; i < 3; i++) {
    p += sprintf(p, "Cookie: c%d=", i);
    memset(p, 'v', 4096);
    p += 4096;
    p += sprintf(p, "\r\n");
  }
  strcpy(p, "\r\n");
  assert_int_equal(parse_ok(r, s)->nheaders, 4);

  /* A field line of 8 KiB with its CRLF fits; one more byte does not. */
  p = s + sprintf(s, "GET / HTTP/1.1\r\n" H "X: ");
  memset(p, 'v', 8192 - 5);
  p += 8192 - 5;
  strcpy(p, "\r\n\r\n");
  parse_ok(r, s);
  memmove(p + 1, p, 5);
  *p = 'v';
  refused_every_way(&l, s, strlen(s), 431, "header field too large");

  /* Four 8000-byte fields fit in the 32 KiB head; a fifth does not. */
  p = s + sprintf(s, "GET / HTTP/1.1\r\n" H);
  for (i = 0; i < 5; i++) {
    p += sprintf(p, "F%d: ", i);
    memset(p, 'v', 8000);
    p += 8000;
    p += sprintf(p, "\r\n");
    if (i == 3) {
      strcpy(p, "\r\n");
      parse_ok(r, s);
    }
  }
  strcpy(p, "\r\n");
  n = strlen(s);
  refused_every_way(&l, s, n, 431, "header section too large");
  free(s);
  http_reader_free(r);
}

static void test_field_count_limit(void **state) {
  http_reader *r = reader(8192, 3, 100);
  size_t used;

  parse_ok(r, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
  http_reader_reset(r);
  assert_int_equal(
      feed(r, S("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 1,
           &used),
      HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 431);
  assert_string_equal(http_reader_error_detail(r), "too many header fields");
  http_reader_free(r);
}

static void test_body_limit(void **state) {
  http_reader *r = reader(8192, 10, 10);
  static const char cl_over[] =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
  static const char ch_over[] =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n01234\r\n6\r\n012345\r\n0\r\n\r\n";
  size_t used;

  parse_ok(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"
              "0123456789");
  parse_ok(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
              "\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n");
  assert_string_equal(http_reader_request(r)->body, "0123456789");

  /* Content-Length over the limit: refused instead of HEAD_DONE, so no
   * 100 Continue is ever sent for it. */
  http_reader_reset(r);
  assert_int_equal(http_reader_feed(r, S(cl_over), &used), HTTP_ERROR);
  assert_int_equal(used, sizeof cl_over - 1);
  assert_int_equal(http_reader_error_status(r), 413);
  assert_int_equal(http_reader_head_done(r), 0);
  assert_null(http_reader_request(r));

  /* Chunked: refused at the end of the chunk-size that passes the limit
   * (not at a digit: more digits could make the size malformed, 400). */
  http_reader_reset(r);
  assert_int_equal(feed(r, S(ch_over), sizeof ch_over - 1, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 413);
  assert_int_equal(used, (size_t)(strstr(ch_over, "6\r\n") - ch_over) + 1);
  http_reader_free(r);
}

/* What a body will hold, known before its bytes: the connection reserves it
 * against the worker's bound before reading them. */
static void test_body_need(void **state) {
  http_reader *r = reader(8192, 10, 100);
  static const char ch[] =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  size_t used;

  assert_int_equal(http_reader_body_need(r), 0);
  assert_int_equal(http_reader_feed(r, S("POST / HTTP/1.1\r\nHost: h\r\n"
                                         "Content-Length: 10\r\n\r\n01"),
                                    &used),
                   HTTP_HEAD_DONE);
  assert_int_equal(http_reader_body_need(r), 10);

  http_reader_reset(r);
  assert_int_equal(http_reader_body_need(r), 0);
  assert_int_equal(http_reader_feed(r, S(ch), &used), HTTP_HEAD_DONE);
  assert_int_equal(http_reader_body_need(r), 0);
  /* Digits still arriving say nothing yet; a whole size line does. */
  assert_int_equal(http_reader_feed(r, S("1"), &used), HTTP_NEED_MORE);
  assert_int_equal(http_reader_body_need(r), 0);
  assert_int_equal(http_reader_feed(r, S("4\r\nab"), &used), HTTP_NEED_MORE);
  assert_int_equal(http_reader_body_need(r), 20);
  assert_int_equal(http_reader_feed(r, S("cdefghijklmnopqrst\r\n5;x=y"),
                                    &used),
                   HTTP_NEED_MORE);
  assert_int_equal(http_reader_body_need(r), 25);
  assert_int_equal(http_reader_feed(r, S("\r\n12345\r\n0\r\n\r\n"), &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(http_reader_body_need(r), 25);
  http_reader_free(r);
}

static void test_trailer_limits(void **state) {
  /* Trailer section bytes count against the head limit, on their own. */
  http_reader *r = reader(64, 2, 100);
  static const char head[] =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  char buf[256];
  size_t used, hl = sizeof head - 1, i;

  /* "0\r\n", then a trailer section of exactly 64 bytes:
   * "T: " + 57 x + CRLF + CRLF. */
  memcpy(buf, head, hl);
  memcpy(buf + hl, "0\r\nT: ", 6);
  for (i = hl + 6; i < hl + 6 + 57; i++) buf[i] = 'x';
  memcpy(buf + hl + 63, "\r\n\r\n", 4);
  assert_int_equal(feed(r, buf, hl + 67, 5, &used), HTTP_MESSAGE_DONE);
  assert_int_equal(used, hl + 67);

  http_reader_reset(r);
  memcpy(buf + hl + 63, "x\r\n\r\n", 5);
  assert_int_equal(feed(r, buf, hl + 68, 5, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 431);
  assert_string_equal(http_reader_error_detail(r), "trailer section too large");

  http_reader_reset(r);
  memcpy(buf + hl, "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 24);
  assert_int_equal(feed(r, buf, hl + 24, hl + 24, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 431);
  assert_string_equal(http_reader_error_detail(r), "too many trailer fields");
  http_reader_free(r);
}

static void test_chunk_extension_limit(void **state) {
  http_reader *r = reader(64, 10, 100);
  static const char head[] =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  char buf[512];
  size_t used, hl = sizeof head - 1, n, i;

  /* Extension bytes (";" to CR: 18 a chunk) add up across chunks. */
  memcpy(buf, head, hl);
  n = hl;
  for (i = 0; i < 3; i++) {
    memcpy(buf + n, "1;aaaaaaaaaaaaaaaa\r\nx\r\n", 23);
    n += 23;
  }
  memcpy(buf + n, "0\r\n\r\n", 5);
  n += 5;
  assert_int_equal(feed(r, buf, n, n, &used), HTTP_MESSAGE_DONE);
  http_reader_reset(r);
  memcpy(buf + n - 5, "1;aaaaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n", 28);
  n += 23;
  assert_int_equal(feed(r, buf, n, n, &used), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 400);
  assert_string_equal(http_reader_error_detail(r), "chunk extensions too long");
  http_reader_free(r);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void test_reset_reuse(void **state) {
  http_reader *r = http_reader_new(&LIM);
  const http_request *q;
  char big[6000];
  size_t i, used;

  for (i = 0; i < 1000; i++) {
    q = parse_ok(r, i % 2
                        ? "GET /odd HTTP/1.1\r\n" H "X: 1\r\n\r\n"
                        : "POST /even HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
    assert_string_equal(q->path, i % 2 ? "/odd" : "/even");
    assert_int_equal(q->nheaders, i % 2 ? 2 : 1);
    assert_int_equal(q->keep_alive, i % 2 ? 1 : 0);
    assert_string_equal(q->body, i % 2 ? "" : "hi");
    assert_int_equal(q->body_len, i % 2 ? 0 : 2);
  }

  /* A head that grows the buffer past what reset keeps. */
  memcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nBig: ", 30);
  memset(big + 30, 'b', sizeof big - 35);
  memcpy(big + sizeof big - 5, "\r\n\r\n", 5);
  assert_int_equal(parse_ok(r, big)->headers[1].value_len, sizeof big - 35);
  q = parse_ok(r, "GET /after HTTP/1.1\r\n" H "\r\n");
  assert_string_equal(q->path, "/after");
  assert_int_equal(q->nheaders, 1);

  /* After an error, reset makes the reader usable again. */
  http_reader_reset(r);
  assert_int_equal(http_reader_feed(r, S("BAD\r\n"), &used), HTTP_ERROR);
  q = parse_ok(r, "GET /again HTTP/1.1\r\n" H "\r\n");
  assert_string_equal(q->path, "/again");
  http_reader_free(r);
}

static void test_many_fields_reuse(void **state) {
  http_reader *r = reader(65536, 1000, 100);
  char *s = malloc(40000);
  int i, round;

  /* 20 KB heads and 501 fields: reset frees what it would otherwise keep. */
  assert_non_null(s);
  for (round = 0; round < 3; round++) {
    char *p = s + sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (i = 0; i < 500; i++)
      p += sprintf(p, "F%d: v%d-%s\r\n", i, i, "padding-padding-padding");
    strcpy(p, "\r\n");
    const http_request *q = parse_ok(r, s);
    assert_int_equal(q->nheaders, 501);
    assert_string_equal(q->headers[500].name, "F499");
    assert_string_equal(http_request_header(q, "f250")->value,
                        "v250-padding-padding-padding");
    q = parse_ok(r, "GET /small HTTP/1.1\r\n" H "\r\n");
    assert_int_equal(q->nheaders, 1);
  }
  free(s);
  http_reader_free(r);
}

static void test_after_done(void **state) {
  http_reader *r = http_reader_new(&LIM);
  size_t used = 99;

  assert_int_equal(http_reader_feed(r, "", 0, &used), HTTP_NEED_MORE);
  assert_int_equal(used, 0);
  assert_int_equal(http_reader_started(r), 0);
  assert_int_equal(http_reader_error_status(r), 0);
  parse_ok(r, "GET / HTTP/1.1\r\n" H "\r\n");
  assert_int_equal(http_reader_feed(r, "GET", 3, &used), HTTP_MESSAGE_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(http_reader_started(r), 1);
  http_reader_free(r);
  http_reader_free(NULL);
}

/* ---- spooled bodies ----------------------------------------------------- */

typedef struct spool_probe {
  char got[4096];
  size_t len;
  int asked; /* times the head fn was called */
  uint64_t bound;
  int fail;  /* the sink fails */
} spool_probe;

static uint64_t probe_bound(void *ud, const http_request *q) {
  spool_probe *p = ud;
  p->asked++;
  return strcmp(q->path, "/up") == 0 ? p->bound : 0;
}

static int probe_sink(void *ud, const char *data, size_t n) {
  spool_probe *p = ud;
  if (p->fail || p->len + n > sizeof p->got) return -1;
  memcpy(p->got + p->len, data, n);
  p->len += n;
  return 0;
}

/* A request the head fn bounds goes to the sink, past the reader's own
 * body limit (10 bytes here) up to the bound, and takes no reservation;
 * one the fn does not bound is the reader's as before. */
static void test_spool(void **state) {
  http_reader *r = reader(8192, 10, 10);
  spool_probe p = {.bound = 1000};
  size_t used;
  http_reader_on_head(r, probe_bound, &p);

  /* Content-Length, past the reader's 10. */
  static const char cl[] = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n"
                           "0123456789abcdefghij";
  assert_int_equal(http_reader_feed(r, S(cl), &used), HTTP_HEAD_DONE);
  assert_int_equal(p.asked, 1);
  assert_true(http_reader_spooling(r));
  assert_int_equal(http_reader_body_need(r), 0);
  assert_int_equal(http_reader_content_length(r), 20);
  http_reader_spool(r, probe_sink, &p);
  size_t more;
  assert_int_equal(http_reader_feed(r, cl + used, sizeof cl - 1 - used, &more),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(p.len, 20);
  assert_memory_equal(p.got, "0123456789abcdefghij", 20);
  assert_int_equal(http_reader_request(r)->body_len, 0);

  /* Chunked: the bound is counted as chunk sizes arrive. */
  http_reader_reset(r);
  p.len = 0;
  static const char ch[] = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  assert_int_equal(http_reader_feed(r, S(ch), &used), HTTP_HEAD_DONE);
  assert_int_equal(http_reader_content_length(r), -1);
  http_reader_spool(r, probe_sink, &p);
  assert_int_equal(feed(r, S("c\r\n0123456789ab\r\n0\r\n\r\n"), 3, &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(p.len, 12);
  http_reader_reset(r);
  p.bound = 15;
  assert_int_equal(http_reader_feed(r, S(ch), &used), HTTP_HEAD_DONE);
  http_reader_spool(r, probe_sink, &p);
  assert_int_equal(feed(r, S("c\r\n0123456789ab\r\n4\r\n"), 64, &used),
                   HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 413);

  /* Over the bound by Content-Length: refused before HEAD_DONE. */
  http_reader_reset(r);
  assert_int_equal(
      http_reader_feed(r, S("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\n"),
                       &used),
      HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 413);

  /* A sink that fails: 500. */
  http_reader_reset(r);
  p.bound = 1000;
  p.fail = 1;
  assert_int_equal(http_reader_feed(r, S(cl), &used), HTTP_HEAD_DONE);
  http_reader_spool(r, probe_sink, &p);
  assert_int_equal(feed(r, cl + used, sizeof cl - 1 - used, 64, &more),
                   HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 500);
  assert_string_equal(http_reader_error_detail(r), "cannot store the request body");
  p.fail = 0;

  /* Taken back to memory: over the reader's limit, 413 at once; within
   * it, the body is the request's again. */
  http_reader_reset(r);
  assert_int_equal(http_reader_feed(r, S(cl), &used), HTTP_HEAD_DONE);
  assert_int_equal(http_reader_unspool(r), -1);
  assert_int_equal(http_reader_feed(r, "x", 1, &more), HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 413);
  http_reader_reset(r);
  static const char small[] = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  assert_int_equal(http_reader_feed(r, S(small), &used), HTTP_HEAD_DONE);
  assert_int_equal(http_reader_unspool(r), 0);
  assert_int_equal(http_reader_body_need(r), 3);
  assert_int_equal(http_reader_feed(r, small + used, sizeof small - 1 - used, &more),
                   HTTP_MESSAGE_DONE);
  assert_string_equal(http_reader_request(r)->body, "abc");

  /* Not bounded by the fn, or no body: the reader's own limit, and the fn
   * is not asked without a body. */
  http_reader_reset(r);
  int asked = p.asked;
  assert_int_equal(feed(r, S("GET /up HTTP/1.1\r\nHost: h\r\n\r\n"), 64, &used),
                   HTTP_MESSAGE_DONE);
  assert_int_equal(p.asked, asked);
  http_reader_reset(r);
  assert_int_equal(
      http_reader_feed(r, S("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"),
                       &used),
      HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 413);
  assert_int_equal(p.asked, asked + 1);
  http_reader_free(r);
}

static void test_zero_limits_take_defaults(void **state) {
  http_reader *r = reader(0, 0, 0);
  size_t used;

  parse_ok(r, "GET / HTTP/1.1\r\n" H "\r\n");
  http_reader_reset(r);
  assert_int_equal(
      feed(r, S("POST / HTTP/1.1\r\n" H "Content-Length: 1048577\r\n\r\n"), 1,
           &used),
      HTTP_ERROR);
  assert_int_equal(http_reader_error_status(r), 413);
  http_reader_free(r);
}

int main(void) {
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_request_fields),
      cmocka_unit_test(test_path_query_forms),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_expect_and_head),
      cmocka_unit_test(test_pipelining),
      cmocka_unit_test(test_byte_at_a_time_chunked),
      cmocka_unit_test(test_large_body_in_pieces),
      cmocka_unit_test(test_header_bytes_limit),
      cmocka_unit_test(test_request_line_limit),
      cmocka_unit_test(test_long_method_is_not_a_long_target),
      cmocka_unit_test(test_field_line_limit),
      cmocka_unit_test(test_default_head_limits),
      cmocka_unit_test(test_field_count_limit),
      cmocka_unit_test(test_body_limit),
      cmocka_unit_test(test_body_need),
      cmocka_unit_test(test_spool),
      cmocka_unit_test(test_trailer_limits),
      cmocka_unit_test(test_chunk_extension_limit),
      cmocka_unit_test(test_reset_reuse),
      cmocka_unit_test(test_many_fields_reuse),
      cmocka_unit_test(test_after_done),
      cmocka_unit_test(test_zero_limits_take_defaults),
  };
  struct CMUnitTest table[sizeof cases / sizeof cases[0]];
  size_t i;
  int failed;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    table[i] = (struct CMUnitTest){cases[i].name, run_case, NULL, NULL,
                                   (void *)&cases[i]};
  }
  failed = cmocka_run_group_tests_name("http_reader", fixed, NULL, NULL);
  failed += cmocka_run_group_tests_name("http_rfc_cases", table, NULL, NULL);
  return failed;
}
