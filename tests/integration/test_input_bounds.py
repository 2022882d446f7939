"""Request bodies a worker holds are bounded (limits.worker_input_bytes):
clients that half-send large bodies cannot make a worker buffer one body per
connection; past the bound a request is answered 503 before "100 Continue",
or mid-way through a chunked body, and a normal request is still served."""
import json
import os
import select
import socket
import time

from conftest import FIXTURE_STACKS, parse_responses

PROBE = os.path.join(FIXTURE_STACKS, "probe")
BODY = 1000000  # declared by each large request (limit: 1 MiB)


def worker_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    raise AssertionError("no %s for %d" % (key, pid))


def reset_peak(pid):
    """Once the worker's memory has settled after its start (which briefly
    holds more than this test measures), start its peak (VmHWM) afresh from
    what it holds now; returns that."""
    last, since, deadline = worker_status(pid, "VmRSS"), time.time(), \
        time.time() + 20
    while time.time() < deadline and time.time() - since < 0.5:
        time.sleep(0.05)
        now = worker_status(pid, "VmRSS")
        if now != last:
            last, since = now, time.time()
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    return worker_status(pid, "VmHWM")


def head(length=None, chunked=False, expect=True):
    h = b"POST /probe/echo/x HTTP/1.1\r\nHost: x\r\n"
    if chunked:
        h += b"Transfer-Encoding: chunked\r\n"
    else:
        h += b"Content-Length: %d\r\n" % length
    if expect:
        h += b"Expect: 100-continue\r\n"
    return h + b"\r\n"


def read_until(s, pred, timeout=5.0):
    """Read until pred(data) or the peer closes; (data, closed)."""
    s.settimeout(timeout)
    data = b""
    while not pred(data):
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return data, True
        if not b:
            return data, True
        data += b
    return data, False


def complete(data):
    """1 once data holds a whole response (the host always sends
    Content-Length)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(rest) >= int(v)
    return True


def interim_or_final(s):
    """The first answer to a head with Expect: 100-continue: 100, or a final
    response read to its end (the connection then closes)."""
    data, _ = read_until(s, lambda d: b"\r\n\r\n" in d)
    status = int(data.split(b" ", 2)[1])
    if status == 100:
        assert data == b"HTTP/1.1 100 Continue\r\n\r\n", data
        return 100, None
    rest, _ = read_until(s, lambda d: complete(data + d))
    _, closed = read_until(s, lambda d: False)
    return status, (parse_responses(data + rest), closed)


def assert_busy(answer):
    out, closed = answer
    assert len(out) == 1, out
    st, h, body = out[0]
    assert st == 503
    assert h["content-type"] == "application/problem+json"
    assert h["retry-after"] == "1"
    assert h["connection"] == "close"
    doc = json.loads(body)
    assert doc["status"] == 503 and doc["request_id"] == h["x-request-id"]
    assert closed


def send_all(s, data):
    s.settimeout(10)
    s.sendall(data)


def test_half_sent_bodies_are_bounded_per_worker(make_host):
    env = {}
    if "ASAN_OPTIONS" in os.environ:
        # Freed memory sits in ASan's quarantine and would count as held.
        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + \
            ":quarantine_size_mb=0"
    # Room for four bodies of 1,000,000 bytes (and a small one), not five.
    h = make_host(workers=1, stacks=[PROBE], env=env,
                  config={"log": {"access": False},
                          "limits": {"worker_input_bytes": 4 << 20}})
    h.start()
    pid = h.worker_pids()[0]
    st, _, _ = h.request("POST", "/probe/echo/x", body=b"w" * 1000)
    assert st == 200
    base = reset_peak(pid)
    held, refused = [], []
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", h.port))
            send_all(s, head(BODY))
            status, answer = interim_or_final(s)
            if status == 100:
                # All but the last 10 bytes: the worker holds the body.
                send_all(s, b"a" * (BODY - 10))
                held.append(s)
            else:
                assert status == 503, status
                assert_busy(answer)
                refused.append(s)
        assert len(held) == 4 and len(refused) == 36, (len(held),
                                                       len(refused))
        time.sleep(0.5)  # let the worker take in what was sent
        grown_mib = (worker_status(pid, "VmHWM") - base) / 1024.0
        assert grown_mib < 16, "worker grew %.0f MiB" % grown_mib
        # A request that fits is served meanwhile.
        st, _, body = h.request("POST", "/probe/echo/x", body=b"s" * 100)
        assert st == 200 and json.loads(body)["body_len"] == 100
        # The bodies held are answered once complete...
        for s in held:
            send_all(s, b"a" * 10)
            data, _ = read_until(s, complete)
            st, _, body = parse_responses(data)[0]
            assert st == 200 and json.loads(body)["body_len"] == BODY
    finally:
        for s in held + refused:
            s.close()
    # ... and release their room: four large bodies fit again.
    again = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", h.port))
            send_all(s, head(BODY))
            assert interim_or_final(s)[0] == 100
            again.append(s)
    finally:
        for s in again:
            s.close()


def test_chunked_body_past_the_bound_is_refused_mid_way(make_host):
    h = make_host(workers=1, stacks=[PROBE],
                  config={"limits": {"worker_input_bytes": 2600000}})
    h.start()
    held = []
    try:
        # Two bodies of 1,000,000 bytes hold 2,000,000 of 2,600,000.
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", h.port))
            send_all(s, head(BODY))
            assert interim_or_final(s)[0] == 100
            send_all(s, b"a" * (BODY // 2))
            held.append(s)
        s = socket.create_connection(("127.0.0.1", h.port))
        send_all(s, head(chunked=True))
        status, answer = interim_or_final(s)
        assert status == 100  # a chunked body reserves as it arrives
        chunk = b"4000\r\n" + b"c" * 0x4000 + b"\r\n"
        sent = 0
        while sent < BODY:
            try:
                send_all(s, chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # refused and closed while this chunk was sent
            sent += 0x4000
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                break
        # Refused once the body passed the room left (600,000 bytes), before
        # the body limit would have.
        assert 500000 <= sent < BODY, sent
        data, closed = read_until(s, lambda d: False)
        assert_busy((parse_responses(data), closed))
        s.close()
        # A small request still fits beside the two held.
        st, _, _ = h.request("POST", "/probe/echo/x", body=b"s" * 100)
        assert st == 200
    finally:
        for s in held:
            s.close()
