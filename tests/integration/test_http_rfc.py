"""HTTP/1.1 from the outside: what RFC 9110/9112 say a server receiving a
request MUST do, the limits, keep-alive, pipelining, 100-continue and the
timeouts. Every refusal is an application/problem+json answer with an
X-Request-Id, "Connection: close", and then the server closes."""
import json
import socket
import time

import pytest

from conftest import Host, parse_responses

HOST = b"Host: x\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def get(target=b"/hello", headers=b"", version=b"HTTP/1.1", method=b"GET",
        body=b""):
    return (method + b" " + target + b" " + version + b"\r\n" + headers +
            b"\r\n" + body)


def post_chunked(chunks):
    return get(headers=HOST + CHUNKED, body=chunks)


class Conn:
    """One client connection that reads whole responses, keeping what
    arrives after them."""

    def __init__(self, host, timeout=3.0):
        self.s = socket.create_connection(("127.0.0.1", host.port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.settimeout(timeout)
        self.buf = b""
        self.closed = False

    def send(self, data):
        self.s.sendall(data)

    def _more(self):
        try:
            b = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        if not b:
            self.closed = True
        self.buf += b
        return b

    def response(self, head_request=False):
        """(status, headers, body) of the next response; for a response to
        HEAD, the body is not read (there is none)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                raise AssertionError("closed before a response: %r" % self.buf)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = 0 if head_request or status < 200 or status in (204, 304) else \
            int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            if not self._more():
                raise AssertionError("closed inside a body")
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def wait_closed(self, timeout):
        """True if the server closes within timeout (data read meanwhile
        is kept in buf)."""
        deadline = time.time() + timeout
        while not self.closed:
            left = deadline - time.time()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                self._more()
            except socket.timeout:
                return False
        return True

    def close(self):
        self.s.close()


def exchange(host, data, timeout=3.0):
    """Send data on a new connection; return (responses, closed) once the
    server closes, or after timeout seconds of silence."""
    c = Conn(host, timeout)
    try:
        c.send(data)
        closed = c.wait_closed(timeout)
        return parse_responses(c.buf), closed
    finally:
        c.close()


def assert_problem(status, headers, body, expected):
    assert status == expected
    assert headers["content-type"] == "application/problem+json"
    rid = headers["x-request-id"]
    doc = json.loads(body)
    for k in ("type", "title", "status", "detail", "request_id"):
        assert k in doc, k
    assert doc["status"] == expected
    assert doc["request_id"] == rid
    assert doc["detail"]


def assert_refused(host, data, expected):
    out, closed = exchange(host, data)
    assert len(out) == 1, out  # no 100 Continue, nothing after the refusal
    status, headers, body = out[0]
    assert_problem(status, headers, body, expected)
    assert headers.get("connection", "").lower() == "close"
    assert closed, "the server did not close after a refusal"


# -- refusals: one case per MUST ----------------------------------------------

REFUSED = [
    # field lines (RFC 9112 5)
    ("whitespace-before-colon", get(headers=HOST + b"Foo : bar\r\n"), 400),
    ("obs-fold", get(headers=HOST + b"Foo: bar\r\n baz\r\n"), 400),
    ("whitespace-before-first-field", get(headers=b" " + HOST), 400),
    ("bare-cr-in-value", get(headers=HOST + b"Foo: a\rb\r\n"), 400),
    ("bare-lf-line-ends", b"GET /hello HTTP/1.1\nHost: x\n\n", 400),
    ("bare-lf-after-field", b"GET /hello HTTP/1.1\r\nHost: x\n\r\n", 400),
    ("empty-field-name", get(headers=HOST + b": x\r\n"), 400),
    ("field-name-not-token", get(headers=HOST + b"Fo\"o: x\r\n"), 400),
    ("field-line-without-colon", get(headers=HOST + b"Foo\r\n"), 400),
    ("nul-in-value", get(headers=HOST + b"Foo: a\x00b\r\n"), 400),
    ("ctl-in-value", get(headers=HOST + b"Foo: a\x01b\r\n"), 400),
    ("del-in-value", get(headers=HOST + b"Foo: a\x7fb\r\n"), 400),
    ("too-many-empty-lines", b"\r\n" * 9 + get(headers=HOST), 400),
    # framing (RFC 9112 6)
    ("te-on-http10", get(version=b"HTTP/1.0", headers=CHUNKED,
                         body=b"0\r\n\r\n"), 400),
    ("te-and-cl", get(headers=HOST + CHUNKED + b"Content-Length: 5\r\n",
                      body=b"0\r\n\r\n"), 400),
    ("cl-and-te", get(headers=HOST + b"Content-Length: 5\r\n" + CHUNKED,
                      body=b"0\r\n\r\n"), 400),
    ("cl-repeated-identical", get(headers=HOST + b"Content-Length: 1\r\n"
                                  b"Content-Length: 1\r\n", body=b"a"), 400),
    ("cl-conflicting", get(headers=HOST + b"Content-Length: 1\r\n"
                           b"Content-Length: 2\r\n", body=b"ab"), 400),
    ("cl-list", get(headers=HOST + b"Content-Length: 1, 1\r\n", body=b"a"),
     400),
    ("cl-plus-sign", get(headers=HOST + b"Content-Length: +1\r\n", body=b"a"),
     400),
    ("cl-hex", get(headers=HOST + b"Content-Length: 0x1\r\n", body=b"a"), 400),
    ("cl-two-numbers", get(headers=HOST + b"Content-Length: 1 1\r\n",
                           body=b"a"), 400),
    ("cl-empty", get(headers=HOST + b"Content-Length:\r\n"), 400),
    ("te-final-not-chunked", get(headers=HOST +
                                 b"Transfer-Encoding: chunked, gzip\r\n"), 400),
    ("te-gzip-alone", get(headers=HOST + b"Transfer-Encoding: gzip\r\n"), 400),
    ("te-chunked-twice", get(headers=HOST +
                             b"Transfer-Encoding: chunked, chunked\r\n",
                             body=b"0\r\n\r\n"), 400),
    ("te-unknown-coding", get(headers=HOST +
                              b"Transfer-Encoding: gzip, chunked\r\n",
                              body=b"0\r\n\r\n"), 501),
    ("chunk-size-not-hex", post_chunked(b"zz\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x", post_chunked(b"0x2\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-size-bare-lf", post_chunked(b"2\nab\r\n0\r\n\r\n"), 400),
    ("chunk-ext-bare-lf", post_chunked(b"2;a\nab\r\n0\r\n\r\n"), 400),
    ("chunk-data-without-crlf", post_chunked(b"2\r\nabX\r\n0\r\n\r\n"), 400),
    ("chunk-size-overflow", post_chunked(b"fffffffffffffffffffff\r\n"), 400),
    ("trailer-obs-fold", post_chunked(b"0\r\nT: a\r\n b\r\n\r\n"), 400),
    ("trailer-bare-lf", post_chunked(b"0\r\nT: a\n\r\n"), 400),
    # Host (RFC 9112 3.2)
    ("no-host", get(), 400),
    ("two-hosts", get(headers=HOST + HOST), 400),
    ("host-with-space", get(headers=b"Host: a b\r\n"), 400),
    ("host-with-userinfo", get(headers=b"Host: u@x\r\n"), 400),
    ("host-bad-port", get(headers=b"Host: x:8o\r\n"), 400),
    # request-line (RFC 9112 3)
    ("http2-version", get(version=b"HTTP/2.0", headers=HOST), 505),
    ("http09-version", get(version=b"HTTP/0.9", headers=HOST), 505),
    ("http3-malformed", get(version=b"HTTP/3", headers=HOST), 400),
    ("http-1-10", get(version=b"HTTP/1.10", headers=HOST), 400),
    ("lower-case-version", get(version=b"http/1.1", headers=HOST), 400),
    ("http09-request", b"GET /hello\r\n\r\n", 400),
    ("method-not-token", get(method=b"GE(T", headers=HOST), 400),
    ("connect", get(method=b"CONNECT", target=b"x:443", headers=HOST), 501),
    ("two-spaces", b"GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("trailing-space", b"GET /hello HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
    ("space-in-target", get(target=b"/hel lo", headers=HOST), 400),
    ("fragment-in-target", get(target=b"/hello#top", headers=HOST), 400),
    ("ctl-in-target", get(target=b"/hel\x01lo", headers=HOST), 400),
    ("bare-cr-in-request-line", get(target=b"/hello\r", headers=HOST), 400),
    ("asterisk-without-options", get(target=b"*", headers=HOST), 400),
    ("authority-form-with-get", get(target=b"x:80", headers=HOST), 400),
    ("bad-scheme", get(target=b"ftp://x/hello", headers=HOST), 400),
    ("bad-percent-encoding", get(target=b"/hello/%zz", headers=HOST), 400),
    # Expect (RFC 9110 10.1.1)
    ("expect-unknown", get(headers=HOST + b"Expect: teapot\r\n"), 417),
    # limits (default config: 8 KiB a head line, 32 KiB a head, 1 MiB body)
    ("cl-over-limit", get(headers=HOST + b"Content-Length: 1048577\r\n"), 413),
    ("cl-over-limit-expect", get(headers=HOST + b"Content-Length: 1048577\r\n"
                                 b"Expect: 100-continue\r\n"), 413),
    ("chunked-over-limit", post_chunked(b"100001\r\n"), 413),
    ("head-too-large", get(headers=HOST + b"X: " + b"v" * 9000 + b"\r\n"), 431),
    ("target-too-long", get(target=b"/" + b"a" * 9000, headers=HOST), 414),
]


@pytest.mark.parametrize("data,status", [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_refused(host, data, status):
    assert_refused(host, data, status)


# -- accepted forms ------------------------------------------------------------

def one(host, data):
    out, _ = exchange(host, data)
    assert len(out) == 1, out
    return out[0]


def test_absolute_form(host):
    # RFC 9112 3.2.2: a server MUST accept the absolute-form.
    st, _, body = one(host, get(target=b"http://127.0.0.1:%d/hello/ada?x=1" %
                                host.port,
                                headers=HOST + b"Connection: close\r\n"))
    assert st == 200
    assert json.loads(body) == {"message": "hello, ada"}


def test_leading_empty_lines_ignored(host):
    st, _, body = one(host, b"\r\n\r\n" +
                      get(headers=HOST + b"Connection: close\r\n"))
    assert st == 200 and json.loads(body) == {"message": "hello, world"}


def test_field_value_with_htab_and_obs_text(host):
    st, _, _ = one(host, get(headers=HOST + b"X-A: a\tb \xc3\xa9 \r\n"
                             b"Connection: close\r\n"))
    assert st == 200


def test_chunked_body_with_extensions_and_trailers(host):
    st, _, body = one(host, get(headers=HOST + CHUNKED + b"Connection: close\r\n",
                                body=b"3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"))
    assert st == 200 and json.loads(body) == {"message": "hello, world"}


def test_unknown_method_reaches_the_router(host):
    # A valid token method is not a parse error: 405/501 come from routing.
    st, h, body = one(host, get(method=b"FROB",
                                headers=HOST + b"Connection: close\r\n"))
    assert st in (405, 501)
    assert_problem(st, h, body, st)


def test_http_1_2_is_read_as_1_1(host):
    c = Conn(host)
    try:
        c.send(get(version=b"HTTP/1.2", headers=HOST))
        st, _, body = c.response()
        assert st == 200 and json.loads(body) == {"message": "hello, world"}
        assert not c.wait_closed(0.2)  # keep-alive, as for 1.1
    finally:
        c.close()


# -- pipelining, HEAD, keep-alive ----------------------------------------------

def test_pipelined_requests_answered_in_order(host):
    data = (get(headers=HOST) +
            get(target=b"/hello/alice", headers=HOST +
                b"Content-Length: 3\r\n", body=b"abc") +
            get(target=b"/healthz", headers=HOST + b"Connection: close\r\n"))
    out, closed = exchange(host, data)
    assert [r[0] for r in out] == [200, 200, 200]
    assert json.loads(out[0][2]) == {"message": "hello, world"}
    assert json.loads(out[1][2]) == {"message": "hello, alice"}
    json.loads(out[2][2])
    assert closed


def test_request_sent_one_byte_at_a_time(host):
    c = Conn(host)
    try:
        for b in get(target=b"/hello/bob", headers=HOST + CHUNKED,
                     body=b"2\r\nhi\r\n0\r\n\r\n"):
            c.send(bytes([b]))
            time.sleep(0.002)
        st, _, body = c.response()
        assert st == 200 and json.loads(body) == {"message": "hello, bob"}
    finally:
        c.close()


def test_head_has_content_length_but_no_body(host):
    c = Conn(host)
    try:
        c.send(get(method=b"HEAD", headers=HOST) + get(headers=HOST))
        st, h, _ = c.response(head_request=True)
        assert st == 200 and int(h["content-length"]) == 26
        # The next bytes are the next response, not a body.
        st, h, body = c.response()
        assert st == 200 and int(h["content-length"]) == len(body) == 26
    finally:
        c.close()


def test_connection_close_honoured(host):
    c = Conn(host)
    try:
        c.send(get(headers=HOST + b"Connection: close\r\n"))
        st, h, _ = c.response()
        assert st == 200 and h["connection"].lower() == "close"
        assert c.wait_closed(2)
    finally:
        c.close()


def test_http11_keeps_alive_by_default(host):
    c = Conn(host)
    try:
        for name in (b"a", b"b", b"c"):
            c.send(get(target=b"/hello/" + name, headers=HOST))
            st, h, body = c.response()
            assert st == 200 and h.get("connection", "").lower() != "close"
            assert json.loads(body)["message"] == "hello, " + name.decode()
    finally:
        c.close()


def test_http10_closes_by_default(host):
    c = Conn(host)
    try:
        c.send(get(version=b"HTTP/1.0"))
        st, h, _ = c.response()
        assert st == 200
        assert h.get("connection", "close").lower() != "keep-alive"
        assert c.wait_closed(2)
    finally:
        c.close()


def test_http10_keep_alive_when_asked(host):
    c = Conn(host)
    try:
        c.send(get(version=b"HTTP/1.0", headers=b"Connection: keep-alive\r\n"))
        st, _, _ = c.response()
        assert st == 200
        c.send(get(target=b"/hello/again", version=b"HTTP/1.0"))
        st, _, body = c.response()
        assert st == 200 and json.loads(body) == {"message": "hello, again"}
        assert c.wait_closed(2)  # that one did not ask to stay open
    finally:
        c.close()


# -- Expect: 100-continue ------------------------------------------------------

def test_100_continue_before_body(host):
    c = Conn(host)
    try:
        c.send(get(headers=HOST + b"Content-Length: 5\r\n"
                   b"Expect: 100-continue\r\n"))
        st, _, _ = c.response()
        assert st == 100
        c.send(b"hello")
        st, _, body = c.response()
        assert st == 200 and json.loads(body) == {"message": "hello, world"}
    finally:
        c.close()


# -- configured limits and timeouts --------------------------------------------

@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("tight"), workers=1, config={"limits": {
        "max_header_bytes": 1024, "max_headers": 8, "max_body_bytes": 1024,
        "header_timeout_ms": 500, "idle_timeout_ms": 500}})
    h.start()
    yield h
    h.stop()


def head_of(size):
    """A request whose head is exactly size bytes."""
    pre = get(headers=HOST + b"Connection: close\r\nX: ")[:-2]
    pad = size - len(pre) - 4
    return pre + b"v" * pad + b"\r\n\r\n"


def test_head_size_limit_boundary(tight):
    assert len(head_of(1024)) == 1024
    st, _, _ = one(tight, head_of(1024))
    assert st == 200
    assert_refused(tight, head_of(1025), 431)


def test_field_count_limit_boundary(tight):
    six = b"".join(b"F%d: v\r\n" % i for i in range(6))
    st, _, _ = one(tight, get(headers=HOST + b"Connection: close\r\n" + six))
    assert st == 200  # 8 fields
    assert_refused(tight, get(headers=HOST + b"Connection: close\r\n" + six +
                              b"F6: v\r\n"), 431)


def test_body_limit_boundary(tight):
    st, _, _ = one(tight, get(headers=HOST + b"Connection: close\r\n"
                              b"Content-Length: 1024\r\n", body=b"b" * 1024))
    assert st == 200
    # Refused on the head alone: the body is never sent.
    assert_refused(tight, get(headers=HOST + b"Content-Length: 1025\r\n"), 413)


def test_chunked_body_limit_boundary(tight):
    st, _, _ = one(tight, get(headers=HOST + CHUNKED + b"Connection: close\r\n",
                              body=b"200\r\n" + b"b" * 512 + b"\r\n200\r\n" +
                              b"b" * 512 + b"\r\n0\r\n\r\n"))
    assert st == 200
    # Refused at the chunk-size line that passes the limit.
    assert_refused(tight, post_chunked(b"200\r\n" + b"b" * 512 +
                                       b"\r\n201\r\n"), 413)


def assert_timed_out(c, t0, limit):
    assert c.wait_closed(limit + 1.0), "still open after the timeout"
    assert time.time() - t0 < limit + 1.0
    out = parse_responses(c.buf)
    if out:  # a 408 problem, or nothing at all
        st, h, body = out[0]
        assert_problem(st, h, body, 408)


def test_slowloris_partial_head(tight):
    c = Conn(tight, timeout=5)
    try:
        t0 = time.time()
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert_timed_out(c, t0, 0.5)
    finally:
        c.close()


def test_slowloris_drip_does_not_extend_the_deadline(tight):
    c = Conn(tight, timeout=5)
    try:
        t0 = time.time()
        c.send(b"GET /hello HTTP/1.1\r\n")
        for _ in range(14):  # a byte every 0.1 s would take 1.4 s
            time.sleep(0.1)
            try:
                c.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            if c.wait_closed(0.001):
                break
        assert_timed_out(c, t0, 0.5)
    finally:
        c.close()


def test_idle_keep_alive_connection_closed(tight):
    c = Conn(tight, timeout=5)
    try:
        c.send(get(headers=HOST))
        st, _, _ = c.response()
        assert st == 200
        t0 = time.time()
        assert c.wait_closed(1.5), "idle connection not closed"
        assert 0.3 < time.time() - t0 < 1.5
        assert c.buf == b""  # closed quietly, no 408 for an idle connection
    finally:
        c.close()


def test_connection_without_request_closed_when_idle(tight):
    c = Conn(tight, timeout=5)
    try:
        t0 = time.time()
        assert c.wait_closed(1.5)
        assert time.time() - t0 < 1.5
        assert c.buf == b""
    finally:
        c.close()
