"""At limits.max_connections a worker closes its longest-idle connection to
make room for a new one; only when every connection is busy is the new one
answered 503."""
import json
import os
import select
import socket
import time

from conftest import FIXTURE_STACKS, parse_responses

PROBE = os.path.join(FIXTURE_STACKS, "probe")

LIMIT = 20


def connect(h):
    s = socket.create_connection(("127.0.0.1", h.port))
    s.settimeout(5)
    return s


def closed_by_server(s, wait=2.0):
    """1 if the server closed s (EOF or reset) within `wait` seconds."""
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    try:
        return s.recv(65536) == b""
    except ConnectionResetError:
        return True


def settle_accepts(h):
    """A request on a new connection: the worker has accepted every
    connection made before it (one listener, accepted in order)."""
    return h.request("GET", "/healthz")


def test_longest_idle_connection_makes_room(make_host):
    h = make_host(workers=1,
                  config={"limits": {"max_connections": LIMIT}}).start()
    # One keep-alive connection that was used, then connections that never
    # sent anything: LIMIT in all, oldest first.
    used = connect(h)
    used.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"}" not in data:
        data += used.recv(65536)
    assert parse_responses(data)[0][0] == 200
    idle = [used]
    for _ in range(LIMIT - 1):
        time.sleep(0.02)  # distinct idle times
        idle.append(connect(h))
    time.sleep(0.05)
    try:
        # Each new client is served, and closes the connection idle
        # longest: the used keep-alive one first, then the oldest silent.
        # (Its own connection is closed by the worker as it answers, with
        # Connection: close: another idle one fills the room again.)
        for i in range(3):
            st, _, _ = h.request("GET", "/healthz",
                                 headers={"Connection": "close"})
            assert st == 200
            assert closed_by_server(idle[i]), i
            time.sleep(0.02)
            idle.append(connect(h))
        # The others stay open.
        for s in idle[3:]:
            assert not closed_by_server(s, wait=0.05)
        # One still open serves requests as before.
        last = idle[-1]
        last.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"}" not in data:
            data += last.recv(65536)
        assert parse_responses(data)[0][0] == 200
    finally:
        for s in idle:
            s.close()


def test_refused_only_when_every_connection_is_busy(make_host):
    h = make_host(workers=1, stacks=[PROBE],
                  config={"limits": {"max_connections": LIMIT}}).start()
    busy = []
    try:
        # LIMIT connections each in the middle of a request: a head sent,
        # "100 Continue" received, the body not yet sent.
        for _ in range(LIMIT):
            s = connect(h)
            busy.append(s)
            s.sendall(b"POST /probe/echo/x HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        st, hd, body = h.request("GET", "/healthz")
        assert st == 503
        assert hd["content-type"] == "application/problem+json"
        assert hd["retry-after"] == "1" and hd["connection"] == "close"
        doc = json.loads(body)
        assert doc["request_id"] == hd["x-request-id"]
        # None of the busy ones was closed for it.
        for s in busy:
            assert not closed_by_server(s, wait=0.01)
        # One finishes its request and becomes idle: it makes room.
        busy[0].sendall(b"{}")
        data = b""
        while b"}" not in data:
            data += busy[0].recv(65536)
        assert parse_responses(data)[0][0] == 200
        st, _, _ = h.request("GET", "/healthz")
        assert st == 200
        assert closed_by_server(busy[0])
    finally:
        for s in busy:
            s.close()
