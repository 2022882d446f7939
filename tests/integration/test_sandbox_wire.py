"""The sandbox's request path: what a request costs the sandbox process
in system calls, counted by the kernel (/proc/PID/io: syscr counts every
read-like call, one that finds nothing too; syscw every write).

A request to a sandboxed package is one frame in and one frame out: the
sandbox reads it once (a short read means the socket is drained, so no
second read to see EAGAIN), answers with one write, and reads its
resident set only when package code ran long enough since the last
reading to have grown it (README "Sandboxed stacks": the memory check is
sampled; the memory budget test in test_contain.py shows the request
that crosses it still answered 503).

This is the sandbox that sleeps as soon as it has answered
(sandbox.poll_us 0); one that polls first reads the socket while it polls,
on purpose (test_sandbox_poll.py)."""
import json
import os

import pytest

from conftest import BUILD, FIXTURE_STACKS, Host

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
N = 400


def sanitized():
    """A build with ASan and UBSan (make test-asan): package code runs
    slower there, so the memory check is due more often."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return any(line.startswith("NNO_SANITIZE:BOOL=ON") for line in f)
    except OSError:
        return False


def io_counts(pid):
    """(syscr, syscw) of process `pid`."""
    got = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            got[k] = int(v)
    return got["syscr"], got["syscw"]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("wire"), workers=1, core=True,
             stacks=[CONTAIN],
             config={"core_plugins": ["iam", "registry", "provisioning"],
                     "sandbox": {"memory_mb": 64, "poll_us": 0}})
    h.start()
    h.platform("wire", stacks=["faulty"], plan="unmetered")
    yield h
    h.stop()


def ok(conn):
    """GET /p/wire/ok over `conn`; the pid of the sandbox that answered."""
    conn.request("GET", "/p/wire/ok")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and json.loads(body) == {"ok": True}, body
    return int(r.getheader("X-Faulty-Pid"))


def test_a_request_costs_the_sandbox_one_read_and_one_write(host):
    c = host.conn()
    try:
        pid = ok(c)
        r0, w0 = io_counts(pid)
        for _ in range(N):
            assert ok(c) == pid
        r1, w1 = io_counts(pid)
    finally:
        c.close()
    reads, writes = r1 - r0, w1 - w0
    # One RES write per request (each waited for before the next); a line
    # of the sandbox's own log (a LOG frame) may go out on its own now and
    # then, never one per request.
    assert N <= writes <= N + 5, (reads, writes)
    # One read of the socket each; the resident set is read now and then
    # (every request at worst on a sanitizer build, where package code
    # runs long enough each time). Read after every request, as it was,
    # plus a read that sees EAGAIN, this is 3 per request.
    assert reads <= 2 * N, (reads, writes)
    if not sanitized():
        assert reads <= N + N // 2, (reads, writes)
