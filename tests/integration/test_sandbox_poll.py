"""A sandbox polls a little before it sleeps (sandbox.poll_us).

At a steady rate of requests the sandbox finds the next one while it
polls, reading its socket without sleeping: the kernel counts those reads
(/proc/PID/io syscr counts every read-like call, one that finds nothing
too). The time it polls is the host's, not the package's: credited against
the CPU a sandbox may burn outside its callbacks (a low
sandbox.cpu_outside_pct here would kill it otherwise). Requests that come
further apart than the grant shrink the window to nothing within a few of
them, and an idle sandbox sleeps; while tasks wait for the machine's CPUs
nothing polls. The sleeping path itself is in
test_sandbox_wire.py (poll_us 0); a forged polling time on the status page
is in test_sandbox_hostile.py."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import FIXTURE_STACKS, Host

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    # The longest grant, so that a Python client's requests, one after the
    # other, come within it even on a slow build; a small share of a core
    # for CPU outside callbacks, so that uncredited polling would be killed.
    h = Host(tmp_path_factory.mktemp("poll"), workers=1, core=True,
             stacks=[CONTAIN],
             config={"core_plugins": ["iam", "registry", "provisioning"],
                     "sandbox": {"poll_us": 1000, "cpu_outside_pct": 50}})
    h.start()
    h.platform("poll", stacks=["faulty"], plan="unmetered")
    yield h
    h.stop()


def ok(conn):
    """GET /p/poll/ok over `conn`; the pid of the sandbox that answered."""
    conn.request("GET", "/p/poll/ok")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and json.loads(body) == {"ok": True}, body
    return int(r.getheader("X-Faulty-Pid"))


def syscr(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("syscr:"):
                return int(line.split()[1])
    raise AssertionError("no syscr")


def cpu_seconds(pid):
    """utime + stime of `pid`, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady(host, seconds):
    """Requests one after the other on one connection for `seconds`: the
    sandbox's pid, the reads it made meanwhile and the requests."""
    c = host.conn()
    try:
        pid = ok(c)
        r0 = syscr(pid)
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert ok(c) == pid
            n += 1
        return pid, syscr(pid) - r0, n
    finally:
        c.close()


def test_steady_requests_are_polled_for_and_the_poll_is_credited(host):
    # Longer than two of the worker's CPU samples (one a second).
    pid, reads, n = steady(host, 2.5)
    # One read a request when it sleeps (test_sandbox_wire.py); polling
    # reads many more times per request it catches.
    assert reads >= 2 * n, (reads, n)
    assert "cpu outside requests" not in host.log_text()
    c = host.conn()
    try:
        assert ok(c) == pid
    finally:
        c.close()


def test_sparse_requests_stop_the_poll(host):
    c = host.conn()
    try:
        pid = ok(c)
        # 10 ms apart, ten times the grant: the window halves each time.
        for _ in range(10):
            time.sleep(0.01)
            assert ok(c) == pid
        r0 = syscr(pid)
        for _ in range(30):
            time.sleep(0.01)
            assert ok(c) == pid
        reads = syscr(pid) - r0
    finally:
        c.close()
    # A read each and the memory check now and then; a poll each would be
    # hundreds of reads per request.
    assert reads <= 3 * 30, reads


def test_an_idle_sandbox_sleeps(host):
    c = host.conn()
    try:
        pid = ok(c)
        for _ in range(300):
            assert ok(c) == pid
    finally:
        c.close()
    time.sleep(0.1)
    cpu0 = cpu_seconds(pid)
    time.sleep(1.0)
    used = cpu_seconds(pid) - cpu0
    # A poll of at most 1 ms after the last request, then sleep.
    assert used < 0.1, used


@pytest.mark.skipif(not os.path.exists("/proc/pressure/cpu"),
                    reason="the kernel has no pressure stall information")
def test_no_poll_while_the_cpus_are_crowded(host):
    # Twice as many busy processes as CPUs: tasks wait for CPUs nearly all
    # the time, and the worker grants no poll until that falls.
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(2 * (os.cpu_count() or 1))]
    try:
        time.sleep(2.5)  # the worker's readings, each over a second
        _, reads, n = steady(host, 1.0)
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()
    # A read a request (and the memory check now and then), no polling.
    assert reads <= 2 * n + 5, (reads, n)
