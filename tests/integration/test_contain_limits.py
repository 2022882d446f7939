"""Containment under hostile clients, stacks and settings (README,
Containment):

- past overload.max_connections a new connection makes room: a connection
  idle between requests, else one sending a request for more than a second,
  is closed, so a few clients holding partial heads cannot shut /healthz
  out; only when none can be closed is the new one answered 503;
- a sandboxed stack refused once (its init hangs past
  sandbox.spawn_timeout_ms) is not tried again by a worker started later,
  so that worker answers at once;
- the auth package declares that it uses nno.iam, so sandboxing it is
  refused at load and by `nno serve --check` with the loader's message;
- `nno serve --check` warns of sandbox.* ids no stack has, and refuses a
  memory ceiling under 32 MiB."""
import json
import os
import signal
import socket
import subprocess
import time

from conftest import BUILD, NNO, parse_responses
from test_stack_check import ROUTES, build, stack

LIMIT = 5
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


def read_all(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        data += b
    return data


def partial_heads(h, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", h.port))
        s.sendall(PARTIAL)
        socks.append(s)
    return socks


def test_partial_heads_do_not_lock_out_new_connections(make_host):
    h = make_host(workers=1,
                  config={"overload": {"max_connections": LIMIT}}).start()
    held = partial_heads(h, LIMIT)
    try:
        time.sleep(0.2)
        # Just started: none of them has been slow yet, so no room.
        s = socket.create_connection(("127.0.0.1", h.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = parse_responses(read_all(s))
        s.close()
        assert got and got[0][0] == 503, got
        assert json.loads(got[0][2])["detail"].startswith("overloaded")
        # Past a second, each new connection closes the slowest one.
        time.sleep(1.2)
        for _ in range(3):
            st, _, body = h.request("GET", "/healthz", timeout=5)
            assert st == 200, body
        closed = [s for s in held if read_all(s, 0.5) == b""]
        assert len(closed) >= 3, len(closed)
    finally:
        for s in held:
            s.close()


def test_idle_connections_give_way_first(make_host):
    h = make_host(workers=1,
                  config={"overload": {"max_connections": LIMIT}}).start()
    slow = partial_heads(h, LIMIT - 1)
    idle = socket.create_connection(("127.0.0.1", h.port))
    try:
        time.sleep(1.2)
        st, _, body = h.request("GET", "/healthz", timeout=5)
        assert st == 200, body
        # The connection that never sent a byte went, not a slow one.
        assert read_all(idle, 1) == b""
        for s in slow:
            s.setblocking(False)
            try:
                assert s.recv(1) != b""  # nothing: still open
            except BlockingIOError:
                pass
    finally:
        idle.close()
        for s in slow:
            s.close()


def test_a_refused_stack_is_not_tried_again_by_a_new_worker(make_host,
                                                             tmp_path):
    root, sdir, _ = build(tmp_path, ["INIT_HANG"],
                          {"name": "chk", "version": "1.0.0", "abi": "1.5",
                           "kind": "feature", "library": "libchk.so",
                           "routes": ROUTES}, stack(), "1.0.0")
    h = make_host(workers=1, stacks=[root],
                  config={"sandbox": {"spawn_timeout_ms": 3000}}).start()
    first = h.wait_log(lambda e: e.get("msg") == "stack refused" and
                       e.get("name") == "chk@1.0.0")
    assert "did not finish within 3000 ms" in first["error"], first
    old = h.worker_pids()
    os.kill(old[0], signal.SIGKILL)
    t0 = time.time()
    st = None
    while time.time() - t0 < 10:
        try:
            st, _, _ = h.request("GET", "/healthz", timeout=10)
            if h.worker_pids() != old:
                break
        except OSError:
            time.sleep(0.02)
    assert st == 200
    # Not another 3 s trial: the new worker knew the verdict.
    assert time.time() - t0 < 2.0
    again = h.wait_log(lambda e: e.get("msg") == "stack refused" and
                       e.get("name") == "chk@1.0.0" and
                       "refused before" in e.get("error", ""))
    assert again["error"].startswith(first["error"]), again
    # A changed folder is tried again (and refused again, after its trial).
    os.utime(os.path.join(sdir, "stack.json"))
    new = h.worker_pids()
    os.kill(new[0], signal.SIGKILL)
    deadline = time.time() + 15
    while len(trials(h)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(trials(h)) == 2, h.log_text()


def trials(h):
    """The refusals of chk that ran its trial."""
    return [e for e in h.log_lines()
            if e.get("msg") == "stack refused" and
            e.get("name") == "chk@1.0.0" and
            "refused before" not in e.get("error", "")]


def serve_check(tmp_path, *sets):
    args = [NNO, "serve", "--check", "--data",
            os.path.join(str(tmp_path), "var")]
    for s in sets:
        args += ["--set", s]
    e = {k: v for k, v in os.environ.items() if not k.startswith("NNO_")}
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env=e)


AUTH_REFUSED = ("package auth uses service nno.iam, which a sandboxed "
                "stack cannot reach; run stack default inprocess "
                "(sandbox.inprocess)")


def test_auth_is_refused_sandboxed(make_host, tmp_path):
    h = make_host(workers=1, core=True,
                  config={"sandbox": {"sandboxed": "default"}}).start()
    e = h.wait_log(lambda e: e.get("msg") == "stack refused" and
                   e.get("name", "").startswith("default@"))
    assert e["error"] == AUTH_REFUSED, e
    r = serve_check(tmp_path, "sandbox.sandboxed=default")
    assert r.returncode == 1, r
    assert AUTH_REFUSED in r.stderr, r.stderr


def test_serve_check_warns_of_unknown_ids_and_refuses_tiny_ceilings(
        tmp_path):
    r = serve_check(tmp_path, "sandbox.inprocess=nosuch,default")
    assert r.returncode == 0, r
    assert ('warning: sandbox.inprocess names stack "nosuch", which no '
            'stack folder has') in r.stderr, r.stderr
    assert '"default"' not in r.stderr, r.stderr
    r = serve_check(tmp_path, "limits.worker_max_rss_mb=1")
    assert r.returncode != 0, r
    assert ("limits.worker_max_rss_mb: expected 0 (off) or at least 32, "
            "got 1") in r.stderr, r.stderr
    r = serve_check(tmp_path, "sandbox.sandboxed=a,,b")
    assert r.returncode != 0, r
    assert 'got "a,,b"' in r.stderr, r.stderr
