"""How a sandbox waits between requests.

With nothing but its channel to wait for (no timer, no pool work), the
sandbox waits for the channel itself, in poll() from the loop's prepare
hook, and serves the request there: no loop iteration (timers, handles,
epoll_wait) between one request and the next. Not in a blocking read: a
reader asleep in read() of a unix socket is woken again each time the
worker reads an answer. A handler that starts a timer hands the wait back
to the loop, so the timer fires, and the sandbox goes back to its own wait
once it is done."""
import json
import os
import platform
import time

import pytest

from conftest import FIXTURE_STACKS, Host

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
# poll(2)'s number (glibc's poll is ppoll where there is no poll), the
# first field of /proc/PID/syscall
POLL_NR = {"x86_64": 7, "aarch64": 73}.get(platform.machine(), 7)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("wait"), workers=1, core=True,
             stacks=[CONTAIN],
             config={"core_plugins": ["iam", "registry", "provisioning"]})
    h.start()
    h.platform("wait", stacks=["faulty"], plan="unmetered")
    yield h
    h.stop()


def get(conn, path):
    conn.request("GET", "/p/wait" + path)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and json.loads(body) == {"ok": True}, body
    return int(r.getheader("X-Faulty-Pid"))


def waiting_in(pid):
    """The number of the system call `pid` (its main thread) waits in, or
    None while it runs."""
    with open("/proc/%d/syscall" % pid) as f:
        first = f.read().split()[0]
    return None if first == "running" else int(first)


def wait_until_polling(pid, timeout=5.0):
    """The system call `pid` waits in, once it is poll or at the timeout:
    the last seen."""
    seen = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seen = waiting_in(pid)
        if seen == POLL_NR:
            break
        time.sleep(0.05)
    return seen


def test_between_requests_the_sandbox_waits_in_poll_not_in_the_loop(host):
    c = host.conn()
    try:
        pid = get(c, "/ok")
        for _ in range(20):
            assert get(c, "/ok") == pid
        assert wait_until_polling(pid) == POLL_NR
    finally:
        c.close()


def test_a_timer_takes_the_wait_back_to_the_loop_and_fires(host):
    c = host.conn()
    try:
        pid = get(c, "/ok")
        t0 = time.monotonic()
        assert get(c, "/later?ms=200") == pid
        # (uv_now is in whole ms: a timer may fire up to 1 ms early)
        assert time.monotonic() - t0 >= 0.195
        # The timer done, the sandbox waits for its channel itself again.
        assert get(c, "/ok") == pid
        assert wait_until_polling(pid) == POLL_NR
    finally:
        c.close()
