"""What the operator is told about sandboxes, once and where it belongs: a
wall budget's kill is one log line with its request; a host where
Landlock is not available warns once per worker and counts each sandbox
that runs unconfined; a package quarantined on a platform is not sent
that platform's events (an activation is refused naming the quarantine,
a deactivation goes on without the package's hook).

The fixture stacks are test_contain.py's (faulty, steady), sandboxed."""
import ctypes
import os
import stat
import sys

import pytest

from conftest import NNO, Host
from test_contain import (CONTAIN, K, WALL_MS, config, get, metric, problem,
                          quarantined, rid, wait_for)


def host_of(tmp_path, **kw):
    h = Host(tmp_path, workers=1, core=True, stacks=[CONTAIN],
             config=config(), **kw)
    h.start()
    return h


def test_a_wall_budget_kill_is_logged_once_with_its_request(tmp_path):
    h = host_of(tmp_path)
    try:
        h.platform("wall", stacks=["faulty"], plan="unmetered")
        doc = problem(get(h, "wall", "/block?ms=20000", timeout=10,
                          request_id=rid("block")), 504)
        assert "%d ms" % WALL_MS in doc["detail"], doc
        # the replacement serves: the killed sandbox's exit was handled
        wait_for(lambda: get(h, "wall", "/ok")[0] == 200, 10, "a new sandbox")
        lines = [e for e in h.log_lines()
                 if e.get("msg") == "sandbox budget exceeded"]
        assert len(lines) == 1, lines
        assert lines[0]["rid"] == doc["request_id"], lines
        assert lines[0]["package"] == "faulty" and \
            lines[0]["platform"] == "wall", lines
    finally:
        h.stop()


# A launcher that runs nno where the Landlock system calls fail with
# ENOSYS (a seccomp filter, inherited by every process it starts), as on a
# kernel built without Landlock.
LAUNCHER = r'''#!/usr/bin/python3
import ctypes, os, struct, sys
NR_LANDLOCK = (444, 445, 446)  # the same numbers on x86-64 and arm64
insns = [(0x20, 0, 0, 0)]      # A = seccomp_data.nr
for i, nr in enumerate(NR_LANDLOCK):
    insns.append((0x15, len(NR_LANDLOCK) - i, 0, nr))  # == nr: to ENOSYS
insns.append((0x06, 0, 0, 0x7fff0000))                  # allow
insns.append((0x06, 0, 0, 0x00050000 | 38))             # errno ENOSYS
code = b"".join(struct.pack("HBBI", *i) for i in insns)
buf = ctypes.create_string_buffer(code)
prog = struct.pack("HP", len(insns), ctypes.addressof(buf))
pbuf = ctypes.create_string_buffer(prog)
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
                       ctypes.c_ulong, ctypes.c_ulong]
if libc.prctl(38, 1, None, 0, 0) or libc.prctl(22, 2, pbuf, 0, 0):
    sys.exit("cannot install the filter: %d" % ctypes.get_errno())
nno = @NNO@
os.execv(nno, [nno] + sys.argv[1:])
'''


@pytest.mark.skipif(sys.maxsize < 2**32 or os.uname().machine not in
                    ("x86_64", "aarch64"), reason="filter numbers")
def test_no_landlock_is_warned_once_per_worker_and_counted(tmp_path):
    launcher = os.path.join(str(tmp_path), "nno-without-landlock")
    with open(launcher, "w") as f:
        f.write(LAUNCHER.replace("@NNO@", repr(NNO)))
    os.chmod(launcher, stat.S_IRWXU)
    h = host_of(tmp_path, binary=launcher)
    try:
        for p in ("unc-a", "unc-b"):
            h.platform(p, stacks=["faulty"], plan="unmetered")
            assert get(h, p, "/ok")[0] == 200  # a sandbox each
        spawns = metric(h, "nno_sandbox_spawns_total")
        assert spawns >= 3, spawns  # the trials, one per platform
        assert metric(h, "nno_sandbox_unconfined_total") == spawns
        lines = [e for e in h.log_lines()
                 if "unconfined" in str(e.get("msg", ""))]
        assert len(lines) == 1, lines  # one worker, one warning
        assert lines[0]["level"] == "warn", lines
    finally:
        h.stop()


def test_a_quarantined_package_is_sent_no_platform_event(tmp_path):
    h = host_of(tmp_path)
    try:
        h.platform("qev", stacks=["faulty"], plan="unmetered")
        for _ in range(K):
            problem(get(h, "qev", "/segv", request_id=rid("segv")), 502)
        wait_for(lambda: quarantined(h, "qev"), 10, "the quarantine")
        spawns = metric(h, "nno_sandbox_spawns_total")
        # Deactivation goes on, without the quarantined package's hook.
        st, _, body = h.api("DELETE", "/platforms/qev/stacks/faulty")
        assert st in (200, 204), body
        h.wait_log(lambda e: "is quarantined: its on_platform_event is not "
                   "called for this deactivation" in str(e.get("msg")))
        # Activation is refused, naming the quarantine and its way out.
        st, _, body = h.api("POST", "/platforms/qev/stacks",
                            {"stack": "faulty"})
        assert st >= 400, body
        detail = body.get("detail", "")
        assert ('package "faulty" 1.0.0 is quarantined on platform "qev" '
                'after %d crashes' % K) in detail, body
        assert "nno quarantine release qev faulty 1.0.0" in detail, body
        # and no sandbox was started for either event
        assert metric(h, "nno_sandbox_spawns_total") == spawns
        # Released, it activates again.
        st, _, body = h.api("DELETE", "/quarantines/qev/faulty/1.0.0")
        assert st in (200, 204), body
        st, _, body = h.api("POST", "/platforms/qev/stacks",
                            {"stack": "faulty"})
        assert st in (200, 201), body
        assert get(h, "qev", "/ok")[0] == 200
    finally:
        h.stop()
