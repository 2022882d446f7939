"""How a sandbox waits between requests.

With nothing but its channel to wait for (no timer, no pool work), the
sandbox waits in a blocking read of the channel (fd 3), not in
epoll_wait followed by a read: one system call a request fewer. A
handler that starts a timer hands the wait back to the loop, so the timer
fires, and the sandbox goes back to reading once it is done."""
import json
import os
import platform
import time

import pytest

from conftest import FIXTURE_STACKS, Host

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
# read(2)'s number, the first field of /proc/PID/syscall
READ_NR = {"x86_64": 0, "aarch64": 63}.get(platform.machine(), 0)


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
    """The system call `pid` waits in, and its first argument:
    (number, fd)."""
    with open("/proc/%d/syscall" % pid) as f:
        fields = f.read().split()
    return int(fields[0]), int(fields[1], 16)


def wait_until_reading(pid, timeout=5.0):
    """What `pid` waits in, once it waits in read(3, ...) or at the
    timeout: the last seen."""
    seen = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seen = waiting_in(pid)
        if seen == (READ_NR, 3):
            break
        time.sleep(0.05)
    return seen


def test_between_requests_the_sandbox_waits_in_a_read_of_its_channel(host):
    c = host.conn()
    try:
        pid = get(c, "/ok")
        for _ in range(20):
            assert get(c, "/ok") == pid
        assert wait_until_reading(pid) == (READ_NR, 3)
    finally:
        c.close()


def test_a_timer_takes_the_wait_back_to_the_loop_and_fires(host):
    c = host.conn()
    try:
        pid = get(c, "/ok")
        t0 = time.monotonic()
        assert get(c, "/later?ms=200") == pid
        assert time.monotonic() - t0 >= 0.2
        # The timer done, the sandbox reads its channel again.
        assert get(c, "/ok") == pid
        assert wait_until_reading(pid) == (READ_NR, 3)
    finally:
        c.close()
