"""The end-of-request hook (gateway_done_add, ABI 1.5), seen through a core
plugin that counts its calls per status into shared meters: every request
that ran the gateway's hooks is reported exactly once, with the status
sent (499 when the client left first), across workers, whatever answered
it (a handler, a hook, the host), pipelined or kept alive, upload routes
included; built-in endpoints are not."""
import json
import os
import socket
import time

import pytest

from conftest import BUILD, Host, parse_responses

DONE_PLUGINS = os.path.join(BUILD, "tests", "doneplugins")


@pytest.fixture(scope="module")
def done_host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("done"), workers=2,
             config={"plugin_dir": DONE_PLUGINS,
                     "limits": {"body_timeout_ms": 500}})
    h.start()
    yield h
    h.stop()


def counts(h):
    st, _, body = h.json("GET", "/doneprobe/counts")
    assert st == 200
    return body


def statuses(h):
    return {k[2:]: v for k, v in counts(h).items() if k.startswith("s|")}


def wait_counts(h, want, timeout=5):
    deadline = time.time() + timeout
    while True:
        got = statuses(h)
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.05)


def reset(s):
    """Close `s` with a reset (SO_LINGER 0): a client gone, not one that
    only finished sending (a half-close is still answered)."""
    import struct
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_every_request_reported_once_with_its_status(done_host):
    h = done_host
    before = counts(h)
    assert before.get("written") is None
    # Fresh connections: spread over both workers.
    pids = set()
    for _ in range(12):
        st, _, _ = h.request("GET", "/doneprobe/ok")
        assert st == 200
    for _ in range(5):
        assert h.request("GET", "/nowhere")[0] == 404
    for _ in range(3):
        st, hd, body = h.request("GET", "/doneprobe/ok",
                                 headers={"X-Refuse": "1"})
        assert st == 429
        assert hd["content-type"] == "application/problem+json"
    # 405 from the host's router, too.
    assert h.request("DELETE", "/doneprobe/ok")[0] == 405
    # Built-ins are not the gateway's requests: never reported.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert h.request("GET", path)[0] == 200
    # Pipelined on one kept-alive connection: four requests in one send.
    one = b"GET /doneprobe/ok HTTP/1.1\r\nHost: x\r\n\r\n"
    miss = b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /doneprobe/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    got = parse_responses(h.raw(one + miss + one + miss + last))
    assert [g[0] for g in got] == [200, 404, 200, 404, 200]
    # The worker pids that served /doneprobe/ok: both of them.
    pids, want = h.access_pids("/doneprobe/ok", 200)
    assert pids == want and len(want) == 2
    got = wait_counts(h, {"200": 15, "404": 7, "429": 3, "405": 1})
    assert got == {"200": 15, "404": 7, "429": 3, "405": 1}
    assert counts(h).get("written") is None


def test_client_gone_is_499_once(done_host):
    h = done_host
    base = statuses(h)
    s = socket.create_connection(("127.0.0.1", h.port))
    s.sendall(b"GET /doneprobe/slow HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.05)
    reset(s)  # before the handler's 300 ms are up
    want = dict(base)
    want["499"] = want.get("499", 0) + 1
    assert wait_counts(h, want) == want
    # Nothing more comes of it later (the handler ends it at 300 ms).
    time.sleep(0.5)
    assert statuses(h) == want
    # A slow request whose client waits: 200.
    assert h.request("GET", "/doneprobe/slow")[0] == 200
    want["200"] = want.get("200", 0) + 1
    assert wait_counts(h, want) == want


def test_upload_routes_once(done_host):
    h = done_host
    want = dict(statuses(h))

    def bump(k):
        want[k] = want.get(k, 0) + 1
    # Answered after its body: 201.
    st, _, body = h.request("POST", "/doneprobe/up", body=b"x" * 5000)
    assert st == 201 and json.loads(body) == {"length": 5000}
    bump("201")
    # Refused at its head by a hook (the small body read and thrown away).
    st, _, _ = h.request("POST", "/doneprobe/up", body=b"x" * 100,
                         headers={"X-Refuse": "1"})
    assert st == 429
    bump("429")
    # Too large for the route: 413, answered by the host.
    got = parse_responses(h.raw(b"POST /doneprobe/up HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 3000000\r\n\r\n"))
    assert [g[0] for g in got] == [413]
    # ... by the request reader, at the head, before any hook ran: like a
    # malformed request, not the gateway's, not reported.
    got = parse_responses(h.raw(b"GET /doneprobe/ok HTTP/1.1\r\n"
                                b"Host: x\r\nBad Header\r\n\r\n"))
    assert [g[0] for g in got] == [400]
    assert wait_counts(h, want) == want
    # A body that stops coming after its head passed the hooks: the 408
    # the host answers instead is what it ended with, once.
    s = socket.create_connection(("127.0.0.1", h.port))
    s.settimeout(5)
    s.sendall(b"POST /doneprobe/up HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 10000\r\n\r\n" + b"y" * 3000)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert [g[0] for g in parse_responses(got)] == [408]
    bump("408")
    assert wait_counts(h, want) == want
    # The client leaves half-way through its body: 499, once.
    s = socket.create_connection(("127.0.0.1", h.port))
    s.sendall(b"POST /doneprobe/up HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 10000\r\n\r\n" + b"y" * 3000)
    time.sleep(0.1)
    reset(s)
    bump("499")
    assert wait_counts(h, want) == want
    assert counts(h).get("written") is None


def test_plan_readable_in_the_done_hook(done_host):
    h = done_host
    before = counts(h).get("p|gold", 0)
    assert h.request("GET", "/doneprobe/ok", headers={"X-Plan": "gold"})[0] \
        == 200
    assert h.request("GET", "/nope", headers={"X-Plan": "gold"})[0] == 404
    assert counts(h).get("p|gold") == before + 2


def test_meters_survive_a_worker_and_share_an_epoch(done_host):
    # Every worker reads one table: the epoch (drawn by the master) is the
    # same on both, and counts made by one are seen by the other.
    h = done_host
    epochs = set()
    for _ in range(10):
        epochs.add(counts(h)["epoch"])
    assert len(epochs) == 1 and epochs != {"0"}
    # /metrics shows the table: its size and the keys it holds.
    st, _, text = h.request("GET", "/metrics")
    lines = dict(l.rsplit(" ", 1) for l in text.decode().splitlines()
                 if l.startswith("nno_meter_"))
    assert lines["nno_meter_slots_total"] == "16384"
    assert int(lines["nno_meter_slots_used"]) == len(counts(h)) - 1
    assert lines["nno_meter_full_total"] == "0"
