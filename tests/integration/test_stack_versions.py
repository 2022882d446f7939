"""Stack versions on a running host: each platform stays on the version it
activated (two platforms on two versions of one stack in one worker), a
rollback runs the down migrations stored when the newer version applied
its own and is refused when one is missing, stack requirements are checked
at activation with explanations, and a platform moves between versions
under load without a failed request.

The fixture stacks (tests/fixtures, ver.c built several times) are under
BUILD/tests/stacks/ver: "ver" 1.0.0, 2.0.0, 3.0.0 answering their version
on GET /ver (header X-Stack-Version and body), with migrations of their
sql resource "db" (1.0.0: 0001; 2.0.0: +0002; both with down migrations;
3.0.0: +0003 without one), and "verdep" 1.0.0 (requires ver ^2.0) and
2.0.0 (requires ver ^3.0)."""
import http.client
import json
import os
import sqlite3
import threading
import time

from conftest import FIXTURE_STACKS

VER = os.path.join(FIXTURE_STACKS, "ver")


def versions_host(make_host, workers=1):
    """iam, registry and provisioning, with the "ver" fixture stacks."""
    return make_host(core=True, workers=workers, stacks=[VER],
                     config={"core_plugins": ["iam", "registry",
                                              "provisioning"]})


def activate(h, pid, stack, version=None):
    body = {"stack": stack}
    if version:
        body["version"] = version
    return h.api("POST", "/platforms/%s/stacks" % pid, body)


def active(h, pid):
    st, _, page = h.api("GET", "/platforms/%s/stacks" % pid)
    assert st == 200, page
    return {a["stack"]: a["version"] for a in page["items"]}


def served(h, pid, route="/ver"):
    """The version that served GET /p/{pid}{route}, and the worker's pid."""
    st, hd, body = h.request("GET", "/p/%s%s" % (pid, route))
    assert st == 200, body
    doc = json.loads(body)
    assert hd["x-stack-version"] == doc["version"], (hd, doc)
    return doc["version"], doc["pid"]


def db_path(h, pid, stack="ver"):
    return os.path.join(h.data, "platforms", pid, "sql",
                        "%s-%s-db.db" % (pid, stack))


def tables(h, pid):
    db = sqlite3.connect(db_path(h, pid))
    try:
        names = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        level = db.execute("SELECT coalesce(max(version), 0) FROM "
                           "_nno_migrations").fetchone()[0]
    finally:
        db.close()
    return names - {"_nno_migrations"}, level


def new_platform(h, pid, plan=None, **versions):
    if plan:
        h.platform(pid, stacks=None, plan=plan)
    else:
        h.platform(pid, stacks=None)
    for stack, version in versions.items():
        st, _, a = activate(h, pid, stack, version)
        assert st == 201 and a["version"] == version, a


def test_every_version_is_loaded_side_by_side(make_host, tmp_path):
    h = versions_host(make_host)
    h.start()
    st, _, s = h.api("GET", "/stacks/ver")
    assert st == 200 and s["versions"] == ["1.0.0", "2.0.0", "3.0.0"], s


def test_two_platforms_on_two_versions_in_one_worker(make_host, tmp_path):
    h = versions_host(make_host, workers=1)
    # In-process, so the pid each answer names is the worker's (sandboxed,
    # each platform's version has a process of its own).
    h.config["sandbox"] = {"inprocess": "ver"}
    h.start()
    new_platform(h, "v-a", ver="1.0.0")
    new_platform(h, "v-b", ver="2.0.0")
    seen = set()
    for _ in range(5):
        va, pa = served(h, "v-a")
        vb, pb = served(h, "v-b")
        assert (va, vb) == ("1.0.0", "2.0.0")
        seen.update((pa, pb))
    assert len(seen) == 1, seen  # one worker served both
    # a newer version installed does not move anyone: each stays on the
    # version it activated until activated again
    assert active(h, "v-a") == {"ver": "1.0.0"}
    st, _, a = activate(h, "v-a", "ver", "3.0.0")
    assert st == 200 and a["version"] == "3.0.0", a
    assert served(h, "v-a")[0] == "3.0.0" and served(h, "v-b")[0] == "2.0.0"


def test_a_request_in_flight_finishes_on_its_version(make_host, tmp_path):
    h = versions_host(make_host, workers=1)
    h.start()
    new_platform(h, "f-l", ver="1.0.0")
    out = {}

    def slow():
        out["answer"] = h.request("GET", "/p/f-l/ver?ms=1500")

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    st, _, a = activate(h, "f-l", "ver", "2.0.0")
    assert st == 200, a
    assert served(h, "f-l")[0] == "2.0.0"  # new requests: the new version
    t.join(10)
    st, hd, body = out["answer"]
    assert st == 200 and hd["x-stack-version"] == "1.0.0", (st, body)
    assert json.loads(body)["version"] == "1.0.0"


def test_rollback_runs_the_stored_down_migrations(make_host, tmp_path):
    h = versions_host(make_host)
    h.start()
    new_platform(h, "r-b", ver="2.0.0")
    assert tables(h, "r-b") == ({"items", "tags"}, 2)
    st, _, a = activate(h, "r-b", "ver", "1.0.0")
    assert st == 200 and a["version"] == "1.0.0", a
    assert tables(h, "r-b") == ({"items"}, 1)
    assert served(h, "r-b")[0] == "1.0.0"
    # forward again past it: 0002 and 0003 applied
    st, _, a = activate(h, "r-b", "ver", "3.0.0")
    assert st == 200, a
    assert tables(h, "r-b") == ({"items", "tags", "notes"}, 3)
    # 0003 shipped no down migration: no way back, nothing changed
    for target in ("2.0.0", "1.0.0"):
        st, hd, pr = activate(h, "r-b", "ver", target)
        assert st == 409, pr
        assert hd["content-type"].startswith("application/problem+json")
        assert pr["request_id"]
        assert ("migration 0003 was applied without a down migration"
                in pr["detail"]), pr
        assert "the previous version stays active" in pr["detail"], pr
        assert active(h, "r-b") == {"ver": "3.0.0"}
        assert tables(h, "r-b") == ({"items", "tags", "notes"}, 3)
        assert served(h, "r-b")[0] == "3.0.0"


def test_stack_requirements(make_host, tmp_path):
    h = versions_host(make_host)
    h.start()
    new_platform(h, "r-q", ver="1.0.0")
    # pinned: the reason, with what is active and what is installed
    st, hd, pr = activate(h, "r-q", "verdep", "1.0.0")
    assert st == 409 and hd["content-type"].startswith(
        "application/problem+json"), pr
    assert pr["detail"] == (
        'stack "verdep" 1.0.0 requires stack "ver" ^2.0; platform "r-q" has '
        'ver 1.0.0 active (installed: 1.0.0, 2.0.0, 3.0.0)'), pr
    # not pinned, no version fits: the newest's reason
    st, _, pr = activate(h, "r-q", "verdep")
    assert st == 409 and pr["detail"].startswith(
        'stack "verdep" 2.0.0 requires stack "ver" ^3.0; platform "r-q" has '
        'ver 1.0.0 active'), pr
    assert active(h, "r-q") == {"ver": "1.0.0"}
    # not active at all
    h.platform("r-n", stacks=None)
    st, _, pr = activate(h, "r-n", "verdep", "1.0.0")
    assert st == 409 and pr["detail"] == (
        'stack "verdep" 1.0.0 requires stack "ver" ^2.0; platform "r-n" has '
        'no version of ver active (installed: 1.0.0, 2.0.0, 3.0.0)'), pr
    # met: not pinned takes the newest version whose requirements are met
    assert activate(h, "r-q", "ver", "2.0.0")[0] == 200
    st, _, a = activate(h, "r-q", "verdep")
    assert st == 201 and a["version"] == "1.0.0", a
    assert served(h, "r-q", "/verdep")[0] == "1.0.0"
    new_platform(h, "r-3", ver="3.0.0")
    st, _, a = activate(h, "r-3", "verdep")
    assert st == 201 and a["version"] == "2.0.0", a
    # a required stack cannot move out of range, nor go
    for target in ("1.0.0", "3.0.0"):
        st, _, pr = activate(h, "r-q", "ver", target)
        assert st == 409 and pr["detail"] == (
            'stack "verdep" 1.0.0, active on platform "r-q", requires stack '
            '"ver" ^2.0: it cannot move to %s (move or deactivate "verdep" '
            'first)' % target), pr
    st, _, pr = h.api("DELETE", "/platforms/r-q/stacks/ver")
    assert st == 409 and pr["detail"] == (
        'stack "verdep" 1.0.0, active on platform "r-q", requires stack "ver" '
        '^2.0: it cannot be deactivated (deactivate "verdep" first)'), pr
    assert active(h, "r-q") == {"ver": "2.0.0", "verdep": "1.0.0"}
    assert served(h, "r-q")[0] == "2.0.0"
    # the dependent gone, the required stack is free
    assert h.api("DELETE", "/platforms/r-q/stacks/verdep")[0] == 204
    assert activate(h, "r-q", "ver", "1.0.0")[0] == 200
    assert h.api("DELETE", "/platforms/r-q/stacks/ver")[0] == 204
    assert active(h, "r-q") == {}


def test_stack_requirements_at_creation(make_host, tmp_path):
    h = versions_host(make_host)
    h.start()
    for stacks, detail in (
            (["verdep@1.0.0"],
             'field "stacks": item 0: stack "verdep" 1.0.0 requires stack '
             '"ver" ^2.0, which the list does not have (installed: 1.0.0, '
             '2.0.0, 3.0.0)'),
            (["ver@1.0.0", "verdep@1.0.0"],
             'field "stacks": item 1: stack "verdep" 1.0.0 requires stack '
             '"ver" ^2.0; the list has ver 1.0.0 (installed: 1.0.0, 2.0.0, '
             '3.0.0)')):
        st, _, pr = h.api("POST", "/platforms", {"id": "c-x", "name": "x",
                                                 "stacks": stacks})
        assert st == 422 and pr["detail"] == detail, pr
        assert h.api("GET", "/platforms/c-x")[0] == 404
    # listed in any order: the requirement is met by the list
    st, _, p = h.api("POST", "/platforms", {
        "id": "c-y", "name": "y", "stacks": ["verdep@1.0.0", "ver@2.0.0"]})
    assert st == 201, p
    assert active(h, "c-y") == {"ver": "2.0.0", "verdep": "1.0.0"}
    assert served(h, "c-y", "/verdep")[0] == "1.0.0"


class Client(threading.Thread):
    """GET /p/{pid}/ver in a loop on one keep-alive connection (so one
    worker) until stopped; records (sent, received, status, version)."""

    def __init__(self, h, pid, stop):
        super().__init__(daemon=True)
        self.h, self.pid, self.stop_ev = h, pid, stop
        self.log = []
        self.errors = []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.h.port, timeout=10)
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            try:
                conn.request("GET", "/p/%s/ver" % self.pid,
                             headers={"Host": "nno.localhost"})
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                return
            t1 = time.monotonic()
            version = r.getheader("X-Stack-Version")
            if r.status != 200 or json.loads(body)["version"] != version:
                self.errors.append((r.status, body[:200]))
            self.log.append((t0, t1, r.status, version))
        conn.close()


def explain(seq, log):
    """None if every answer of one connection's `log` fits the activation
    sequence `seq` (see test_swap_under_load), else why not."""
    floor = 0  # the earliest activation this connection may still show
    for t0, t1, status, version in log:
        lo = max(i for i, (s, e, v) in enumerate(seq) if e <= t0)
        hi = max(i for i, (s, e, v) in enumerate(seq) if s <= t1)
        can = [j for j in range(max(lo, floor), hi + 1)
               if seq[j][2] == version]
        if not can:
            return ("answer %s at [%.3f, %.3f] fits no activation in %d..%d "
                    "(floor %d): %s" % (version, t0, t1, lo, hi, floor, seq))
        floor = can[0]
    return None


def test_swap_under_load(make_host, tmp_path):
    """Activation i (0: 1.0.0 before the load; then 2.0.0, 1.0.0, ...)
    starts at s_i and its API answer arrives at e_i. A request sent at t0
    and answered at t1 may be served by activation j only if j is at least
    the last one answered before t0 (lo) and at most the last one started
    before t1 (hi). Per connection (one worker), the activations that can
    explain its answers never go back: once an answer can only be
    activation k or later, no later answer on that connection is from
    before k. No request fails."""
    h = versions_host(make_host, workers=2)
    h.start()
    # unmetered: the load is not cut by the anonymous client rate limit
    new_platform(h, "s-w", plan="unmetered", ver="1.0.0")
    seq = [(0.0, 0.0, "1.0.0")]  # (s_i, e_i, version)
    stop = threading.Event()
    clients = [Client(h, "s-w", stop) for _ in range(4)]
    for c in clients:
        c.start()
    time.sleep(0.3)
    for i in range(8):
        target = "2.0.0" if i % 2 == 0 else "1.0.0"
        s = time.monotonic()
        st, _, a = activate(h, "s-w", "ver", target)
        e = time.monotonic()
        assert st == 200 and a["version"] == target, a
        seq.append((s, e, target))
        time.sleep(0.25)
    stop.set()
    for c in clients:
        c.join(15)
    total = 0
    for c in clients:
        assert not c.errors, c.errors[:5]
        assert c.log, "a client got no answer"
        total += len(c.log)
        assert explain(seq, c.log) is None, explain(seq, c.log)
    # the rule catches an old answer after the last activation answered
    t = seq[-1][1] + 0.001
    stale = c.log + [(t, t + 0.001, 200, "2.0.0")]
    assert "fits no activation" in explain(seq, stale)
    # every activation was seen answering by some client after it answered
    for i, (s, e, v) in enumerate(seq[1:], 1):
        assert any(t0 >= e and ver == v for c in clients
                   for t0, _, _, ver in c.log if t0 < (
                       seq[i + 1][0] if i + 1 < len(seq) else 1e18)), (i, v)
    assert total > 100, total
    assert served(h, "s-w")[0] == "1.0.0"
