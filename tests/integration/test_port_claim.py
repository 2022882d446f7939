"""The port claim (the abstract socket "\\0nno/port/{port}") holds off hosts
of the same user only: any local user can bind the name, so one held by
another uid is logged and the address check alone decides."""
import os
import subprocess
import sys
import time

import pytest

# Holds the claim for a port and, with a second argument, listens on it
# over TCP too; says "ready" once bound and stays until stdin closes.
HOLDER = r"""
import socket, sys
port = int(sys.argv[1])
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind(b"\0nno/port/%d" % port)
if sys.argv[2] != "bound-only":
    u.listen(4)
if sys.argv[2] == "tcp-too":
    t = socket.socket()
    t.bind(("127.0.0.1", port))
    t.listen(4)
print("ready", flush=True)
sys.stdin.read()
"""


def hold(port, how="listen", user=None):
    kw = {}
    if user is not None:
        if os.geteuid() != 0:
            pytest.fail("holding the claim as another user needs root")
        kw = {"user": user, "group": user, "extra_groups": []}
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(port), how],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kw)
    assert p.stdout.readline() == b"ready\n"
    return p


def release(p):
    p.stdin.close()
    p.wait(10)


def refused(h, timeout=10):
    h.start(wait=False)
    assert h.proc.wait(timeout) == 1, h.log_text()
    return h.log_text()


@pytest.mark.parametrize("how", ["listen", "bound-only"])
def test_claim_of_another_user_does_not_block_the_host(make_host, how):
    h = make_host(workers=1)
    holder = hold(h.port, how, user=65534)
    try:
        h.start()
        st, _, _ = h.request("GET", "/healthz")
        assert st == 200
        if how == "listen":
            want = ("port %d: the claim nno/port/%d is held by uid 65534 "
                    "(pid %d), not this host's user" % (h.port, h.port,
                                                        holder.pid))
        else:
            want = ("port %d: the claim nno/port/%d is held by a process "
                    "whose credentials cannot be read" % (h.port, h.port))
        h.wait_log(lambda e: e.get("level") == "warn" and
                   e.get("msg", "").startswith(want))
    finally:
        h.stop()
        release(holder)


def test_another_user_listening_on_the_port_still_refuses(make_host):
    h = make_host(workers=1)
    holder = hold(h.port, "tcp-too", user=65534)
    try:
        text = refused(h)
        assert ("nno: cannot listen on 127.0.0.1:%d: the address is already "
                "in use by another process" % h.port) in text, text
    finally:
        release(holder)


def test_claim_of_the_same_user_refuses(make_host):
    h = make_host(workers=1)
    holder = hold(h.port)
    try:
        text = refused(h)
        assert text.strip().splitlines()[0] == (
            "nno: port %d is already served by another nno host (pid %d)"
            % (h.port, holder.pid)), text
    finally:
        release(holder)
    # Once it is gone, the host starts.
    time.sleep(0.1)
    h.start()
    assert h.request("GET", "/healthz")[0] == 200
