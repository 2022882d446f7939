"""One host per port, one host per data folder.

The workers' listening sockets share the port through SO_REUSEPORT, which
the kernel lets any process of the same user join: a second host must be
refused, not take a share of the traffic. The master claims the port (an
abstract unix socket) and the data folder (flock on DATA/nno.lock) for its
life; the claims die with it, however it dies.
"""
import json
import os
import signal
import socket
import time



def refused(h, timeout=10):
    """Start `h`, expect it to exit with status 1; returns what it printed."""
    h.start(wait=False)
    assert h.proc.wait(timeout) == 1, h.log_text()
    return h.log_text()


def healthz_pids(h, n=40):
    """The pids answering /healthz over n new connections, and the worker
    lists they reported."""
    answered, listed = set(), set()
    for _ in range(n):
        st, _, body = h.request("GET", "/healthz")
        assert st == 200
        b = json.loads(body)
        answered.add(b["pid"])
        listed.update(b["workers"])
    return answered, listed


def wait_gone(pids, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not [p for p in pids if os.path.exists("/proc/%d" % p)]:
            return
        time.sleep(0.05)
    raise AssertionError("processes still alive: %r" % pids)


def test_second_host_on_a_served_port_is_refused(make_host):
    first = make_host(workers=2).start()
    workers = set(first.worker_pids())
    second = make_host(workers=2)
    second.port = first.port
    text = refused(second)
    lines = text.strip().splitlines()
    assert lines == [
        "nno: port %d is already served by another nno host (pid %d)"
        % (first.port, first.proc.pid),
        "hint: stop that host first, or choose another port with "
        "--listen HOST:PORT"], text
    # The first host alone answers, on new connections spread by the kernel.
    answered, listed = healthz_pids(first)
    assert answered <= workers and listed == workers
    assert first.proc.poll() is None


def test_second_host_on_the_wildcard_address_is_refused(make_host):
    """0.0.0.0:PORT overlaps 127.0.0.1:PORT: the claim is the port's."""
    first = make_host(workers=1).start()
    second = make_host(workers=1)
    second.port = first.port
    second.args = ["--listen", "0.0.0.0:%d" % first.port]
    text = refused(second)
    assert "port %d is already served by another nno host (pid %d)" % (
        first.port, first.proc.pid) in text
    assert set(healthz_pids(first, 10)[0]) <= set(first.worker_pids())


def test_foreign_reuseport_listener_is_refused(make_host):
    """A socket of the same user with SO_REUSEPORT: a reuseport bind would
    join it; the host must refuse instead."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        h = make_host(workers=1)
        h.port = s.getsockname()[1]
        text = refused(h)
        assert text.splitlines()[0] == (
            "nno: cannot listen on 127.0.0.1:%d: the address is already in use"
            " by another process" % h.port), text
        assert text.splitlines()[1].startswith("hint: ")
    finally:
        s.close()


def test_second_host_on_a_data_folder_in_use_is_refused(make_host):
    first = make_host(workers=1).start()
    second = make_host(workers=1)
    second.data = first.data  # another port, the same folder
    text = refused(second)
    assert text.strip().splitlines() == [
        "nno: data folder %s is in use by another nno host (pid %d)"
        % (first.data, first.proc.pid),
        "hint: stop that host first, or give this one its own folder with "
        "--data DIR"], text
    assert first.request("GET", "/healthz")[0] == 200


def same_place(make_host, first):
    h = make_host(workers=2)
    h.port, h.data = first.port, first.data
    return h


def test_claims_are_released_on_stop(make_host):
    first = make_host(workers=2).start()
    assert first.stop() == 0
    second = same_place(make_host, first).start()
    answered, listed = healthz_pids(second, 10)
    assert listed == set(second.worker_pids()) and answered <= listed
    assert open(os.path.join(second.data, "nno.lock")).read() == \
        "%d\n" % second.proc.pid


def test_claims_are_released_by_kill_9(make_host):
    first = make_host(workers=2).start()
    pids = [first.proc.pid] + first.worker_pids()
    os.killpg(first.proc.pid, signal.SIGKILL)  # master and workers at once
    first.proc.wait(10)
    wait_gone(pids)
    second = same_place(make_host, first).start()
    assert healthz_pids(second, 10)[1] == set(second.worker_pids())


def test_claims_are_released_when_only_the_master_is_killed(make_host):
    first = make_host(workers=2).start()
    workers = first.worker_pids()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    wait_gone(workers)  # they follow their master (drain, exit)
    second = same_place(make_host, first).start()
    assert healthz_pids(second, 10)[1] == set(second.worker_pids())


def test_reload_and_respawn_keep_the_port_and_the_claims(make_host):
    first = make_host(workers=2).start()
    old = set(first.worker_pids())
    first.signal(signal.SIGHUP)
    deadline = time.time() + 15
    while time.time() < deadline:
        now = set(first.worker_pids())
        if len(now) == 2 and not now & old:
            break
        time.sleep(0.05)
    new = set(first.worker_pids())
    assert len(new) == 2 and not new & old
    answered, listed = healthz_pids(first)
    assert answered == new and listed == new  # both new workers accept
    # a worker that dies is respawned on its lane
    victim = sorted(new)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        now = set(first.worker_pids())
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.05)
    now = set(first.worker_pids())
    assert len(now) == 2 and victim not in now
    assert healthz_pids(first)[1] == now
    # and the claims still hold: another host is refused on either
    second = make_host(workers=1)
    second.port = first.port
    assert "already served by another nno host (pid %d)" % first.proc.pid \
        in refused(second)
    third = make_host(workers=1)
    third.data = first.data
    assert "is in use by another nno host (pid %d)" % first.proc.pid \
        in refused(third)
