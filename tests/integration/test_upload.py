"""Upload routes (route_add_upload, req_body_file): bodies spooled to a
temporary file as they arrive, bounded per route, refused before they are
read, and the file valid until the response ends.

The fixture core plugin "uploader" (tests/fixtures/plugins/uploader.c)
answers {"len", "sum", "file_len"} for what it reads from the body's fd.
"""
import json
import os
import socket
import time

import pytest

from conftest import BUILD, FIXTURE_STACKS, Host

PLUGINS = os.path.join(BUILD, "tests", "uploadplugins")
MiB = 1 << 20


def upload_host(tmp_path, workers=1, config=None):
    cfg = {"plugin_dir": PLUGINS, "core_plugins": ["uploader"]}
    cfg.update(config or {})
    env = {}
    if "ASAN_OPTIONS" in os.environ:
        # Freed memory sits in ASan's quarantine and would count as held.
        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + \
            ":quarantine_size_mb=0"
    return Host(tmp_path, workers=workers, config=cfg, env=env)


@pytest.fixture
def host(tmp_path):
    h = upload_host(tmp_path).start()
    yield h
    h.stop()


def pattern(n):
    """n bytes 0, 1, ..., 255, 0, ...: their sum is known without them."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def pattern_sum(n):
    full, rest = divmod(n, 256)
    return full * 32640 + rest * (rest - 1) // 2


def connect(h, timeout=10):
    s = socket.create_connection(("127.0.0.1", h.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def head(path, length=None, extra=()):
    lines = ["POST %s HTTP/1.1" % path, "Host: localhost"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append("Content-Length: %d" % length)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(s):
    """One response (status, headers, body) read off a socket, after any
    interim 1xx; raises if the connection ends first."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a response: %r" % buf)
            buf += chunk
        h, _, buf = buf.partition(b"\r\n\r\n")
        lines = h.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            continue
        n = int(hdrs.get("content-length", "0"))
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("body cut short")
            buf += chunk
        return status, hdrs, buf[:n]


def closed(s, timeout=5):
    """1 if the server closes s within `timeout` (nothing more to read)."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def worker_pid(h):
    [pid] = h.worker_pids()
    return pid


def spool_fds(h, pid):
    """The worker's fds open on files under DATA/tmp (the spooled bodies)."""
    tmp = os.path.join(h.data, "tmp")
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if target.startswith(tmp + "/"):
            out.append(target)
    return out


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_large_upload_is_not_held_in_memory(host):
    pid = worker_pid(host)
    # Warm up: the first request grows the worker by its buffers.
    st, _, _ = host.request("POST", "/upload", body=pattern(MiB))
    assert st == 200
    # The peak so far includes start-up work still running on a loaded
    # machine (a package's first password hash takes 64 MiB): reset it to
    # the present size (proc(5), clear_refs "5").
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    before = vm_hwm_kib(pid)
    n = 50 * MiB
    s = connect(host, timeout=60)
    s.sendall(head("/upload", n))
    data = pattern(n)
    for i in range(0, n, MiB):
        s.sendall(data[i:i + MiB])
    st, _, body = read_response(s)
    s.close()
    assert st == 200
    assert json.loads(body) == {"len": n, "sum": pattern_sum(n), "file_len": n}
    # The worker's peak resident size grew by far less than the body.
    assert vm_hwm_kib(pid) - before < 8 * 1024
    # Answered: the file is closed (and, unnamed, gone).
    assert wait_for(lambda: spool_fds(host, pid) == [])
    assert os.listdir(os.path.join(host.data, "tmp")) == []


def test_upload_past_the_memory_bounds(tmp_path):
    # Bodies in memory are bounded by 64 KiB here, for the whole worker as
    # well: an upload route takes 2 MiB beside an ordinary body holding
    # most of the worker's input bound.
    h = upload_host(tmp_path, config={"limits": {
        "max_body_bytes": 65536, "worker_input_bytes": 65536}}).start()
    try:
        hold = connect(h)
        hold.sendall(head("/echo", 60000) + b"x" * 100)
        time.sleep(0.2)
        st, _, body = h.request("POST", "/upload", body=pattern(2 * MiB))
        assert st == 200 and json.loads(body)["len"] == 2 * MiB
        # An ordinary body over the 64 KiB is still refused by its length.
        st, _, body = h.request("POST", "/echo", body=b"y" * 70000)
        assert st == 413
        hold.sendall(b"x" * 59900)
        st, _, body = read_response(hold)
        assert st == 200 and json.loads(body) == {"len": 60000,
                                                  "body_file": "NNO_ENOENT"}
        hold.close()
    finally:
        h.stop()


def test_over_content_length_refused_before_the_body(host):
    for path, n in (("/upload/small", 1001), ("/upload", 64 * MiB + 1)):
        s = connect(host)
        s.sendall(head(path, n, ["Expect: 100-continue"]))
        st, hdrs, body = read_response(s)
        assert st == 413
        assert hdrs["content-type"] == "application/problem+json"
        p = json.loads(body)
        assert p["detail"] == "request body too large" and p["request_id"]
        assert closed(s)
        s.close()
    # At the bound exactly: accepted.
    st, _, body = host.request("POST", "/upload/small", body=pattern(1000))
    assert st == 200 and json.loads(body)["sum"] == pattern_sum(1000)


def test_chunked_upload_counted_as_read(host):
    s = connect(host)
    s.sendall(head("/upload"))
    data = pattern(3 * MiB)
    for i in range(0, len(data), 300000):
        piece = data[i:i + 300000]
        s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
    s.sendall(b"0\r\n\r\n")
    st, _, body = read_response(s)
    assert st == 200
    assert json.loads(body) == {"len": 3 * MiB, "sum": pattern_sum(3 * MiB),
                                "file_len": 3 * MiB}
    # Keep-alive: the connection serves another request.
    s.sendall(b"GET /uploader/selftest HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(s)[0] == 200
    s.close()

    # 1000 bytes allowed: 600 pass, the chunk announcing 401 more does not.
    s = connect(host)
    s.sendall(head("/upload/small") + b"258\r\n" + b"a" * 600 + b"\r\n")
    s.sendall(b"191\r\n")
    st, _, body = read_response(s)
    assert st == 413 and json.loads(body)["detail"] == "request body too large"
    assert closed(s)
    s.close()


def test_refused_by_a_stage_before_the_body(host):
    pid = worker_pid(host)
    # 50 MB announced, not one byte sent: the AUTHN stage answers at once.
    s = connect(host)
    s.sendall(head("/upload/private", 50 * MiB))
    st, _, body = read_response(s)
    assert st == 401
    assert json.loads(body)["detail"] == "a bearer token is required"
    assert closed(s)  # the body was not read: the connection ends
    s.close()
    # Expecting 100-continue: the refusal comes instead of "100 Continue".
    s = connect(host)
    s.sendall(head("/upload/private", 50 * MiB, ["Expect: 100-continue"]))
    s.settimeout(5)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 401 "), first
    s.close()
    assert spool_fds(host, pid) == []
    # A small body sent with its head is read and thrown away: the answer
    # comes after it and the connection stays open.
    s = connect(host)
    s.sendall(head("/upload/private", 10) + b"0123456789")
    assert read_response(s)[0] == 401
    s.sendall(b"GET /uploader/selftest HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(s)[0] == 200
    s.close()


def test_expect_continue_after_the_stages(host):
    s = connect(host)
    s.sendall(head("/upload/private", 4096, ["Expect: 100-continue",
                                              "Authorization: Bearer letmein"]))
    s.settimeout(5)
    interim = b""
    while b"\r\n\r\n" not in interim:
        interim += s.recv(1)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(pattern(4096))
    st, _, body = read_response(s)
    assert st == 200 and json.loads(body)["sum"] == pattern_sum(4096)
    s.close()


def test_slow_client(tmp_path):
    h = upload_host(tmp_path, config={"limits": {"body_timeout_ms": 1500}})
    h.start()
    try:
        pid = worker_pid(h)
        # Silent past the timeout mid-body: 408, and the file goes.
        s = connect(h)
        s.sendall(head("/upload", MiB) + b"x" * 1000)
        assert wait_for(lambda: len(spool_fds(h, pid)) == 1)
        st, _, body = read_response(s)
        assert st == 408
        assert json.loads(body)["detail"] == "request body not received in time"
        s.close()
        assert wait_for(lambda: spool_fds(h, pid) == [])
        # Slow but never silent that long: the timeout is between reads,
        # so an upload may take longer than it in all.
        s = connect(h)
        s.sendall(head("/upload", 8 * 1000))
        start = time.time()
        for _ in range(8):
            time.sleep(0.3)
            s.sendall(pattern(1000))
        st, _, body = read_response(s)
        assert time.time() - start > 1.5
        assert st == 200 and json.loads(body)["len"] == 8000
        s.close()
    finally:
        h.stop()


def test_client_gone_mid_body(host):
    pid = worker_pid(host)
    s = connect(host)
    s.sendall(head("/upload", 10 * MiB) + pattern(MiB))
    assert wait_for(lambda: len(spool_fds(host, pid)) == 1)
    [path] = spool_fds(host, pid)
    assert path.endswith("(deleted)") or "#" in path  # never named
    s.close()
    assert wait_for(lambda: spool_fds(host, pid) == [])
    assert os.listdir(os.path.join(host.data, "tmp")) == []
    # The worker goes on serving uploads.
    st, _, body = host.request("POST", "/upload", body=pattern(5000))
    assert st == 200 and json.loads(body)["sum"] == pattern_sum(5000)


def test_async_handler_reads_the_file(host):
    pid = worker_pid(host)
    n = 3 * MiB + 7
    st, _, body = host.request("POST", "/upload/async", body=pattern(n))
    assert st == 200
    assert json.loads(body) == {"len": n, "sum": pattern_sum(n), "file_len": n}
    assert wait_for(lambda: spool_fds(host, pid) == [])


def test_uploads_bounded_per_worker(host):
    pid = worker_pid(host)
    held = []
    for _ in range(8):
        s = connect(host)
        s.sendall(head("/upload", MiB) + b"z" * 100)
        held.append(s)
    assert wait_for(lambda: len(spool_fds(host, pid)) == 8)
    s = connect(host)
    s.sendall(head("/upload", MiB))
    st, hdrs, body = read_response(s)
    assert st == 503 and hdrs["retry-after"] == "1"
    assert json.loads(body)["detail"] == \
        "too many uploads in progress; retry later"
    s.close()
    # Ordinary requests are not held back.
    assert host.request("POST", "/echo", body=b"hi")[0] == 200
    # One finishes: room for another.
    held[0].sendall(b"z" * (MiB - 100))
    st, _, body = read_response(held[0])
    assert st == 200 and json.loads(body)["len"] == MiB
    st, _, body = host.request("POST", "/upload", body=b"abc")
    assert st == 200 and json.loads(body)["sum"] == 294
    for s in held:
        s.close()
    assert wait_for(lambda: spool_fds(host, pid) == [])


def test_body_file_on_other_routes_and_empty_bodies(host):
    st, _, body = host.request("POST", "/echo", body=b"hello")
    assert st == 200 and json.loads(body) == {"len": 5,
                                              "body_file": "NNO_ENOENT"}
    st, _, body = host.request("POST", "/upload", body=b"")
    assert st == 200 and json.loads(body) == {"len": 0, "sum": 0,
                                              "file_len": 0}


def test_route_add_upload_arguments(host):
    st, _, body = host.json("GET", "/uploader/selftest")
    assert st == 200
    assert body == {"max_zero": "NNO_EINVAL", "undeclared": "NNO_EINVAL",
                    "twice": "NNO_EEXIST", "in_hook": ""}


def test_no_body_file_in_a_policy_stage(host):
    # AUTHN runs before the body comes: req_body_file has nothing to give
    # (and must not make a file the body would then replace).
    pid = worker_pid(host)
    for body in (b"", b"abc"):
        st, _, out = host.request("POST", "/upload/private", body=body,
                                  headers={"Authorization": "Bearer letmein"})
        assert st == 200 and json.loads(out)["len"] == len(body)
        st, _, out = host.json("GET", "/uploader/selftest")
        assert out["in_hook"] == "NNO_ENOENT"
        assert wait_for(lambda: spool_fds(host, pid) == [])


def test_refusal_reaches_a_client_sending_its_body(host):
    # A client that sends its body without waiting (no 100-continue) still
    # reads the answer made at its head, then the end of the connection.
    for _ in range(5):
        s = connect(host)
        s.sendall(head("/upload/private", 4 * MiB))
        data = pattern(4 * MiB)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.2)
        st, _, body = read_response(s)
        assert st == 401
        assert closed(s)
        s.close()


def test_a_stack_route_of_the_same_path_is_ordinary(tmp_path):
    # The RESOLVE hook scopes "X-Scope: upstack" requests to a stack whose
    # POST /upload is an ordinary route: its body is in memory, under the
    # reader's own limit, and route_add_upload was refused to its package.
    # upstack probes what the host's own req_body_file answers a package of
    # an ordinary route: in-process.
    h = upload_host(tmp_path, config={
        "stacks_dirs": [os.path.join(FIXTURE_STACKS, "upstack")],
        "sandbox": {"inprocess": "upstack"}})
    h.start()
    try:
        st, _, body = h.request("POST", "/upload", body=b"0123456789",
                                headers={"X-Scope": "1"})
        assert st == 200
        assert json.loads(body) == {"stack": True, "len": 10,
                                    "body_file": "NNO_ENOENT",
                                    "route_add_upload": "NNO_ESTATE"}
        s = connect(h)
        s.sendall(head("/upload", 2 * MiB, ["X-Scope: 1"]))
        st, _, body = read_response(s)
        assert st == 413
        assert closed(s)
        s.close()
        # Unscoped, the same path is the core upload route.
        st, _, body = h.request("POST", "/upload", body=pattern(2 * MiB))
        assert st == 200 and json.loads(body)["len"] == 2 * MiB
    finally:
        h.stop()


def test_no_room_for_the_body_is_answered_at_the_head(host):
    # DATA/tmp cannot hold files: the upload is answered 500 before its
    # body is read, and ordinary requests go on.
    tmp = os.path.join(host.data, "tmp")
    if os.path.isdir(tmp):
        os.rmdir(tmp)
    with open(tmp, "w") as f:
        f.write("not a folder")
    s = connect(host)
    s.sendall(head("/upload", 10 * MiB))
    st, hdrs, body = read_response(s)
    assert st == 500
    assert hdrs["content-type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "cannot store the request body"
    assert closed(s)
    s.close()
    assert host.request("POST", "/echo", body=b"x")[0] == 200
    assert host.wait_log(lambda e: "cannot store a request body" in
                         e.get("msg", ""))
