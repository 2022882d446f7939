"""Containment: a faulty package harms only itself, and the operator sees
exactly which package, platform and request.

The fixture stacks (tests/fixtures/plugins/faulty.c, steady.c) are under
BUILD/tests/stacks/contain: "faulty" 1.0.0, whose package fails on request
(GET /segv, /abort, /block?ms=, /spin[?ms=], /leak?mb=, /fds, /fork,
/write, /garbage, /async-crash; /ok answers), each answer naming the
process that served it in X-Faulty-Pid; and "steady" 1.0.0 (GET /ok,
GET /slow?ms=) for a control platform.

Sandbox mode (the default for a stack from stacks_dirs): platform "good"
(steady) and "calm" (faulty, only ever asked /ok) are asked all the time
by a background client, over a keep-alive connection and fresh ones, and
every answer must be 2xx whatever the tests do to the other platforms;
each fault gets its documented status (README "Containment"), a log line
naming package, platform and request, and a crash counts towards
quarantine (503 + Retry-After, audit row, metric), which ends after its
backoff or when the operator releases it.

In-process mode (sandbox.inprocess=faulty) is not containment, only the
report: the crashing client gets a 502 with its request id, the log names
the request, the package and the platform, the master its respawn; a stall
is logged and a stuck or bloated worker replaced.

Budgets are small so the file runs quickly: CPU 300 ms, wall 2000 ms (room
to spend the CPU budget on a busy machine), memory 64 MiB; 3 crashes in
30 s quarantine for 1.5 s (doubling); the plan "roomy" has larger budgets
(sandbox.plans)."""
import http.client
import json
import math
import os
import re
import threading
import time
import uuid

import pytest

from conftest import BUILD, FIXTURE_STACKS, Host

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
K = 3                # sandbox.crash_limit
QUARANTINE_MS = 1500  # sandbox.quarantine_ms (first backoff)
WALL_MS, CPU_MS, MEMORY_MB = 2000, 300, 64
CORE = ["iam", "registry", "provisioning"]


def config(**extra):
    sandbox = {"wall_ms": WALL_MS, "cpu_ms": CPU_MS, "memory_mb": MEMORY_MB,
               "crash_limit": K, "crash_window_ms": 30000,
               "quarantine_ms": QUARANTINE_MS,
               "plans": "roomy:5000/1500/256,leaky:5000/3000/%d" % MEMORY_MB}
    sandbox.update(extra.pop("sandbox", {}))
    cfg = {"core_plugins": CORE, "sandbox": sandbox}
    cfg.update(extra)
    return cfg


def sanitized():
    """A build with ASan and UBSan (make test-asan): there a SIGSEGV the
    host does not catch itself is caught by ASan, which reports it and
    ends the process as ASAN_OPTIONS says (abort_on_error=1: SIGABRT); a
    sandbox is given the sanitizers' options, so it ends the same way."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return any(line.startswith("NNO_SANITIZE:BOOL=ON") for line in f)
    except OSError:
        return False


SIGNALS = {"SIGSEGV": 11, "SIGABRT": 6}


def names_signal(e, name):
    """Does log line `e` name signal `name` (by name or number)?"""
    return name in json.dumps(e) or str(e.get("signal")) == str(SIGNALS[name])


def names_crash(e, fault, sandboxed):
    """Does crash log line `e` name how crash fixture `fault` died?"""
    if fault == "abort":
        return names_signal(e, "SIGABRT")
    if sanitized():  # the sanitizer's own end, a signal all the same
        return names_signal(e, "SIGSEGV") or names_signal(e, "SIGABRT")
    return names_signal(e, "SIGSEGV")


def rid(tag):
    """A request id of our own (the host keeps a valid X-Request-Id), to
    find the request in the logs."""
    return "contain-%s-%s" % (tag, uuid.uuid4().hex[:12])


def get(h, platform, path, conn=None, request_id=None, timeout=15):
    """GET /p/{platform}{path}, over `conn` if given (a keep-alive
    connection stays with one worker, so with one sandbox). Returns
    (status, headers, body bytes, request id)."""
    request_id = request_id or rid("get")
    c = conn or h.conn(timeout)
    try:
        c.request("GET", "/p/%s%s" % (platform, path),
                  headers={"X-Request-Id": request_id})
        r = c.getresponse()
        body = r.read()
        return (r.status, {k.lower(): v for k, v in r.getheaders()}, body,
                request_id)
    finally:
        if conn is None:
            c.close()


def problem(answer, status):
    """Check `answer` (from get) is an RFC 9457 problem with `status` and
    its request id; returns the document."""
    st, hd, body, request_id = answer
    assert st == status, (st, body[:500])
    assert hd.get("content-type", "").startswith(
        "application/problem+json"), (hd, body[:300])
    doc = json.loads(body)
    assert doc["status"] == status and doc["request_id"] == request_id, doc
    assert hd.get("x-request-id") in (None, request_id), hd
    return doc


def text(doc):
    return ("%s %s" % (doc.get("title", ""), doc.get("detail", ""))).lower()


def served_by(h, platform, conn):
    """The pid of the process that serves `platform`'s faulty package for
    the worker behind `conn`."""
    st, hd, body, _ = get(h, platform, "/ok", conn=conn)
    assert st == 200 and json.loads(body) == {"ok": True}, (st, body)
    return int(hd["x-faulty-pid"])


def gone(pid, timeout=5):
    """True once process `pid` no longer exists (reaped)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not os.path.exists("/proc/%d" % pid):
            return True
        time.sleep(0.05)
    return False


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def log_naming(h, request_id, platform, msg=None, timeout=10):
    """The log line (not the access line) naming request `request_id`, the
    package faulty and `platform` (and with `msg`, if given)."""
    def match(e):
        return (e.get("msg") != "access" and e.get("rid") == request_id and
                (msg is None or e.get("msg") == msg))
    e = h.wait_log(match, timeout)
    assert e.get("package") == "faulty" and e.get("platform") == platform, e
    return e


def access_status(h, request_id):
    lines = h.access_lines(lambda e: e.get("rid") == request_id, 1)
    assert len(lines) == 1, lines
    return lines[0]["status"]


def metrics(h):
    """/metrics as {(name, frozenset(labels)): value}."""
    st, _, body = h.request("GET", "/metrics")
    assert st == 200
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(h, name, **labels):
    """The sum of `name` over the series carrying `labels`; None when no
    series of that name carries them."""
    want = set(labels.items())
    found = [v for (n, ls), v in metrics(h).items()
             if n == name and want <= set(ls)]
    return sum(found) if found else None


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def audit_rows(h, platform, action):
    st, _, page = h.api("GET", "/audit?target=platform:%s&action=%s"
                        % (platform, action))
    assert st == 200, page
    return page["items"]


def quarantines(h):
    st, _, body = h.api("GET", "/quarantines")
    assert st == 200, body
    return body["items"] if isinstance(body, dict) else body


def quarantined(h, platform):
    return [q for q in quarantines(h) if q.get("platform") == platform]


def isolation(h, stack):
    st, _, s = h.api("GET", "/stacks/%s" % stack)
    assert st == 200, s
    return {d["version"]: d.get("isolation") for d in s["details"]}


# ---- sandbox mode -------------------------------------------------------


class Control:
    """Clients of the control platforms for the whole module: one thread
    over a keep-alive connection, one opening a connection per request.
    Every answer must be 2xx."""

    PATHS = ["/p/good/ok", "/p/good/slow?ms=20", "/p/calm/ok"]

    def __init__(self, h):
        self.h = h
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.answered = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.loop, args=(keep,),
                                         daemon=True)
                        for keep in (True, False)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)

    def loop(self, keepalive):
        conn = None
        i = 0
        while not self.stopping.is_set():
            path = self.PATHS[i % len(self.PATHS)]
            i += 1
            try:
                if conn is None:
                    conn = self.h.conn(timeout=15)
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                ok = 200 <= r.status < 300
                with self.lock:
                    self.answered += 1
                    if not ok:
                        self.failures.append((path, r.status, body[:300]))
                if not keepalive or r.getheader("Connection", "") == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # a reset, a timeout: a failure too
                with self.lock:
                    self.failures.append((path, "error", repr(e)))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def check(self, since):
        """Answers kept coming since `since` (a count) and none failed."""
        wait_for(lambda: self.answered > since + 2, 10,
                 "the control platforms to answer")
        with self.lock:  # each failure is reported once, after its test
            failures, self.failures = self.failures, []
        assert not failures, failures


@pytest.fixture(scope="class")
def sbx(tmp_path_factory):
    """A host of 2 workers where faulty and steady run sandboxed (the
    default for stacks from stacks_dirs), with the control clients."""
    h = Host(tmp_path_factory.mktemp("contain"), workers=2, core=True,
             stacks=[CONTAIN], config=config())
    h.start()
    h.platform("good", stacks=["steady"], plan="unmetered")
    h.platform("calm", stacks=["faulty"], plan="unmetered")
    control = Control(h)
    control.start()
    h.control = control
    yield h
    control.stop()
    h.stop()


@pytest.fixture
def host(sbx):
    """The sandbox host; after the test, the control platforms must have
    answered all along with nothing but 2xx."""
    since = sbx.control.answered
    yield sbx
    sbx.control.check(since)


def faulty_platform(h, name, plan="unmetered"):
    """A platform with faulty active, on a plan IAM does not rate-limit
    (the sandbox budgets of a plan sandbox.plans does not name: the
    defaults)."""
    h.platform(name, stacks=["faulty"], plan=plan)
    return name


class TestSandbox:
    """Sandbox mode: the fault stays in its sandbox; the control
    platforms are served all along."""

    def test_sandboxed_package_runs_out_of_process_confined(self, host):
        assert isolation(host, "faulty") == {"1.0.0": "sandbox"}
        assert isolation(host, "steady") == {"1.0.0": "sandbox"}
        pid = faulty_platform(host, "iso")
        c = host.conn()
        try:
            spid = served_by(host, pid, c)
            workers = set(host.worker_pids())
            assert spid not in workers, (spid, workers)
            st = proc_status(spid)
            assert int(st["PPid"]) in workers, st  # a worker's child
            assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
            if os.geteuid() == 0:  # never root
                assert st["Uid"].split()[:2] == ["65534", "65534"], st
            # one sandbox per (stack version, platform): another platform's
            # faulty package is another process
            other = served_by(host, "calm", c)
            assert other != spid
            assert served_by(host, pid, c) == spid  # kept while alive
        finally:
            c.close()
        assert (metric(host, "nno_sandbox_processes") or 0) >= 2
        assert (metric(host, "nno_sandbox_spawns_total") or 0) >= 2

    def test_requests_in_flight_together_are_all_answered(self, host):
        pid = faulty_platform(host, "many")
        # 6 connections over 2 workers: several requests at once in one
        # sandbox, each answered from its own timer
        conns = [host.conn(timeout=10) for _ in range(6)]
        try:
            for c in conns:
                c.request("GET", "/p/%s/later?ms=200" % pid)
            workers = set(host.worker_pids())
            for c in conns:
                r = c.getresponse()
                assert r.status == 200 and r.read() == b'{"ok":true}'
                assert int(r.getheader("X-Faulty-Pid")) not in workers
        finally:
            for c in conns:
                c.close()

    @pytest.mark.parametrize("fault", ["segv", "abort", "async-crash"])
    def test_crash_answers_502_and_replaces_the_sandbox(self, host, fault):
        pid = faulty_platform(host, "crash-" + fault)
        c = host.conn()
        try:
            before = served_by(host, pid, c)
            doc = problem(get(host, pid, "/" + fault, conn=c,
                              request_id=rid(fault)), 502)
            after = served_by(host, pid, c)  # same connection: same worker
        finally:
            c.close()
        assert after != before and gone(before)
        e = log_naming(host, doc["request_id"], pid, "sandbox crashed")
        assert e["level"] == "error" and e.get("version") == "1.0.0", e
        assert e.get("method") == "GET", e
        assert e.get("path") in ("/" + fault, "/p/%s/%s" % (pid, fault)), e
        assert names_crash(e, fault, True), e
        assert access_status(host, doc["request_id"]) == 502
        n = metric(host, "nno_sandbox_crashes_total", platform=pid,
                   package="faulty")
        assert n == 1, n
        # one crash is below the limit: not quarantined
        assert get(host, pid, "/ok")[0] == 200

    def test_block_past_the_wall_budget_answers_504(self, host):
        pid = faulty_platform(host, "wall")
        c = host.conn(timeout=10)  # well before the 20 s sleep would end
        try:
            before = served_by(host, pid, c)
            doc = problem(get(host, pid, "/block?ms=20000", conn=c,
                              request_id=rid("block")), 504)
            assert "time budget" in text(doc) and "%d ms" % WALL_MS in \
                doc["detail"], doc
            after = served_by(host, pid, c)
        finally:
            c.close()
        assert after != before and gone(before)  # killed: it was in the call
        log_naming(host, doc["request_id"], pid)
        assert access_status(host, doc["request_id"]) == 504

    def test_spin_past_the_cpu_budget_answers_503_and_is_no_crash(self, host):
        pid = faulty_platform(host, "cpu")
        c = host.conn()
        try:
            pids = [served_by(host, pid, c)]
            for _ in range(K):  # as many as would quarantine a crash
                doc = problem(get(host, pid, "/spin", conn=c,
                                  request_id=rid("spin")), 503)
                assert "cpu budget" in text(doc), doc
                log_naming(host, doc["request_id"], pid)
                pids.append(served_by(host, pid, c))
        finally:
            c.close()
        assert len(set(pids)) == K + 1, pids  # replaced each time
        # budgets are counted apart from crashes: no quarantine
        assert get(host, pid, "/ok")[0] == 200
        assert not quarantined(host, pid)
        n = metric(host, "nno_sandbox_budget_total", platform=pid,
                   package="faulty")
        assert n == K, n

    def test_a_plan_picks_its_budgets(self, host):
        spin = "/spin?ms=%d" % (2 * CPU_MS)
        # The platform is created over the connection its requests then
        # take: the worker that activated its stack, whose sandbox for it
        # may have started then, for a request with no plan.
        host.api("POST", "/plans", {"name": "roomy"})  # billing's plan
        c = host.conn()
        try:
            c.request("POST", "/api/v1/platforms", body=json.dumps(
                {"id": "roomy", "name": "roomy", "plan": "roomy",
                 "stacks": ["faulty"]}),
                headers={"Authorization": "Bearer " + host.op_key(),
                         "Content-Type": "application/json"})
            r = c.getresponse()
            assert r.status == 201, r.read()
            r.read()
            for _ in range(2):
                st, _, body, _ = get(host, "roomy", spin, conn=c)
                assert st == 200, body
            st, _, body, _ = get(host, "roomy", spin)  # the other worker
            assert st == 200, body
        finally:
            c.close()
        tight = faulty_platform(host, "tight")  # not in sandbox.plans
        doc = problem(get(host, tight, spin, request_id=rid("tight")), 503)
        assert "cpu budget" in text(doc), doc

    def test_leak_past_the_memory_budget_answers_503(self, host):
        # The memory budget of the defaults, with CPU to spare: where a page
        # fault costs ~13 µs (a VM with page-table isolation and no PCID),
        # touching 128 MiB takes ~0.4 s of CPU, past the default CPU budget.
        host.api("POST", "/plans", {"name": "leaky"})  # billing's plan
        pid = faulty_platform(host, "mem", plan="leaky")
        c = host.conn()
        try:
            before = served_by(host, pid, c)
            doc = problem(get(host, pid, "/leak?mb=%d" % (2 * MEMORY_MB),
                              conn=c, request_id=rid("leak")), 503)
            assert "memory budget" in text(doc), doc
            assert "of %d" % MEMORY_MB in text(doc), doc
            after = served_by(host, pid, c)
        finally:
            c.close()
        assert after != before and gone(before)  # recycled
        log_naming(host, doc["request_id"], pid)

    def test_fds_exhausted_inside_the_sandbox_only(self, host):
        pid = faulty_platform(host, "fds")
        c = host.conn()
        try:
            before = served_by(host, pid, c)
            st, hd, body, _ = get(host, pid, "/fds", conn=c)
            assert st == 200, body
            doc = json.loads(body)
            assert doc["errno"] == "EMFILE" and 0 < doc["opened"] < 64, doc
            assert int(hd["x-faulty-pid"]) == before
            assert served_by(host, pid, c) == before  # keeps serving
        finally:
            c.close()

    def test_fork_is_refused(self, host):
        pid = faulty_platform(host, "fork")
        c = host.conn()
        try:
            before = served_by(host, pid, c)
            st, _, body, _ = get(host, pid, "/fork", conn=c)
            assert st == 500 and json.loads(body) == {
                "forked": False, "errno": "EPERM"}, (st, body)
            assert served_by(host, pid, c) == before
        finally:
            c.close()

    def test_write_outside_is_refused(self, host):
        pid = faulty_platform(host, "write")
        c = host.conn()
        try:
            before = served_by(host, pid, c)
            st, _, body, _ = get(host, pid, "/write", conn=c)
            doc = json.loads(body)
            assert st == 500 and doc["written"] == 0, (st, doc)
            # the data dir is not even named to a sandbox: /tmp is tried
            assert [a["dir"] for a in doc["attempts"]] == ["/tmp"], doc
            assert all(a["errno"] == "EACCES" for a in doc["attempts"]), doc
            assert not os.path.exists("/tmp/faulty-write-%d" % before)
            assert served_by(host, pid, c) == before
        finally:
            c.close()

    def test_garbage_handles_are_refused(self, host):
        pid = faulty_platform(host, "garbage")
        # Requests alive together in one sandbox have distinct handles, so
        # once they end the package holds a stale one that is not the
        # next request's: 6 connections over 2 workers put 3 on one.
        conns = [host.conn() for _ in range(6)]
        try:
            for c in conns:
                c.request("GET", "/p/%s/later?ms=300" % pid)
            pids = []
            for c in conns:
                r = c.getresponse()
                r.read()
                assert r.status == 200
                pids.append(int(r.getheader("X-Faulty-Pid")))
            used = []
            for c, spid in zip(conns, pids):
                st, hd, body, _ = get(host, pid, "/garbage", conn=c)
                assert st == 200, body
                doc = json.loads(body)
                assert int(hd["x-faulty-pid"]) == spid  # still serving
                calls = doc["calls"]
                assert all(v == "NNO_EINVAL" for v in calls.values()), doc
                assert doc["req_alloc(0x1)"] is None, doc
                assert doc["late_callbacks"] == 0, doc
                if doc["stale"] == "used":
                    assert "res_end(stale)" in calls, doc
                    used.append(doc)
                assert served_by(host, pid, c) == spid
            assert used, "no stale request handle was tried"
        finally:
            for c in conns:
                c.close()
        e = host.wait_log(lambda e: "garbage handle" in e.get("msg", "") and
                          e.get("platform") == pid)
        assert e.get("package") == "faulty", e

    def test_quarantine_after_k_crashes_backoff_and_release(self, host):
        pid = faulty_platform(host, "bad")
        key = (pid, "faulty", "1.0.0")
        rids = []
        for _ in range(K):
            doc = problem(get(host, pid, "/segv", request_id=rid("q")), 502)
            rids.append(doc["request_id"])
        # quarantined: 503 before the handler runs, with Retry-After
        doc = problem(get(host, pid, "/ok", request_id=rid("q503")), 503)
        for word in ("faulty", "1.0.0", str(K)):
            assert word in text(doc), doc
        st, hd, _, _ = get(host, pid, "/ok")
        assert st == 503
        retry = int(hd["retry-after"])
        assert 1 <= retry <= math.ceil(QUARANTINE_MS / 1000), hd
        assert get(host, "calm", "/ok")[0] == 200  # another platform: served
        q = quarantined(host, pid)
        assert [(e["platform"], e["package"], e["version"])
                for e in q] == [key], q
        assert q[0]["crashes"] == K and q[0]["request_id"] == rids[-1], q
        assert metric(host, "nno_quarantined", platform=pid, package="faulty",
                      version="1.0.0") == 1
        assert metric(host, "nno_quarantines_total") >= 1
        assert metric(host, "nno_sandbox_crashes_total", platform=pid,
                      package="faulty") == K
        rows = wait_for(lambda: audit_rows(host, pid, "package.quarantine"),
                        10, "the quarantine's audit row")
        assert len(rows) == 1, rows
        d = rows[0]["detail"]
        assert (d["package"], d["version"], d["crashes"]) == \
            ("faulty", "1.0.0", K), rows
        assert d["reason"] and d["until"], rows

        # recovery once the backoff has passed
        wait_for(lambda: get(host, pid, "/ok")[0] == 200,
                 QUARANTINE_MS / 1000 + 5, "the quarantine to end")
        assert not quarantined(host, pid)

        # crashing again: quarantined for twice as long
        first = get(host, pid, "/segv", request_id=rid("q2"))
        problem(first, 502)
        for _ in range(K):
            st, hd, body, _ = get(host, pid, "/segv")
            if st == 503:
                break
            assert st == 502, body
        st, hd, _, _ = get(host, pid, "/ok")
        assert st == 503, st
        assert int(hd["retry-after"]) > retry, hd
        assert quarantined(host, pid)[0]["level"] == 2

        # released by the operator: served at once, on every worker
        st, _, body = host.api("DELETE", "/quarantines/%s/faulty/1.0.0" % pid)
        assert st in (200, 204), body
        for _ in range(6):
            assert get(host, pid, "/ok")[0] == 200
        assert not quarantined(host, pid)
        rows = wait_for(lambda: audit_rows(host, pid, "package.release"), 10,
                        "the release's audit row")
        assert len(rows) == 1, rows
        assert rows[0]["detail"]["package"] == "faulty", rows
        st, hd, body = host.api("DELETE", "/quarantines/%s/faulty/1.0.0" % pid)
        assert st == 404 and hd["content-type"].startswith(
            "application/problem+json"), body


# ---- in-process mode: the report, not containment ------------------------

RSS_CEILING_MB = 256


@pytest.fixture(scope="class")
def inproc(tmp_path_factory):
    """faulty in-process (sandbox.inprocess), a watchdog that logs a call
    over 100 ms and replaces a worker stuck 1 s, a worker RSS ceiling."""
    h = Host(tmp_path_factory.mktemp("inproc"), workers=2, core=True,
             stacks=[CONTAIN],
             config=config(sandbox={"inprocess": "faulty"},
                           watchdog={"stall_ms": 100, "hard_ms": 1000},
                           limits={"worker_max_rss_mb": RSS_CEILING_MB}))
    h.start()
    yield h
    h.stop()


class TestInProcess:
    """In-process mode: reported, not contained."""

    def test_inprocess_is_reported(self, inproc):
        h = inproc
        assert isolation(h, "faulty") == {"1.0.0": "inprocess"}
        pid = faulty_platform(h, "ip-crash")
        worker = int(get(h, pid, "/ok")[1]["x-faulty-pid"])
        assert worker in h.worker_pids()  # in the worker itself
        doc = problem(get(h, pid, "/segv", request_id=rid("ipsegv")), 502)
        e = log_naming(h, doc["request_id"], pid, "worker crashed")
        assert e["level"] == "error" and e.get("version") == "1.0.0", e
        assert e.get("method") == "GET", e
        assert e.get("path") in ("/segv", "/p/%s/segv" % pid), e
        assert names_crash(e, "segv", False), e
        crashed = e["pid"]
        assert access_status(h, doc["request_id"]) == 502
        m = h.wait_log(lambda e: e.get("msg") == "worker exited" and
                       e.get("worker_pid") == crashed)
        assert m["role"] == "master" and "respawn_in_ms" in m, m
        assert names_crash(m, "segv", False), m
        # respawned, and the platform is served again
        wait_for(lambda: get(h, pid, "/ok")[0] == 200, 10, "the respawn")
        wait_for(lambda: len(h.worker_pids()) == 2 and
                 crashed not in h.worker_pids(), 10, "two workers again")

    def test_inprocess_quarantine_after_k_worker_crashes(self, inproc):
        h = inproc
        pid = faulty_platform(h, "ip-bad")
        for _ in range(K):
            problem(get(h, pid, "/segv", request_id=rid("ipq")), 502)
        # the master counts each crash as it reaps the worker
        wait_for(lambda: get(h, pid, "/ok")[0] == 503, 10, "the quarantine")
        doc = problem(get(h, pid, "/segv", request_id=rid("ipq503")), 503)
        assert "faulty" in text(doc), doc
        assert int(get(h, pid, "/ok")[1]["retry-after"]) >= 1
        assert [q["crashes"] for q in quarantined(h, pid)] == [K]
        st, _, body = h.api("DELETE", "/quarantines/%s/faulty/1.0.0" % pid)
        assert st in (200, 204), body
        assert get(h, pid, "/ok")[0] == 200

    def test_inprocess_stall_is_logged(self, inproc):
        h = inproc
        pid = faulty_platform(h, "ip-stall")
        for path in ("/block?ms=300", "/spin?ms=300"):
            st, _, body, request_id = get(h, pid, path,
                                          request_id=rid("stall"))
            assert st == 200, body
            e = log_naming(h, request_id, pid, "loop stalled")
            assert e["level"] == "warn" and e["dur_ms"] >= 250, e
        assert metric(h, "nno_loop_stalls_total", package="faulty") >= 2

    def test_inprocess_stuck_worker_is_replaced(self, inproc):
        h = inproc
        pid = faulty_platform(h, "ip-stuck")
        before = set(h.worker_pids())
        request_id = rid("stuck")
        try:  # answered if the loop returns before the master kills it
            get(h, pid, "/block?ms=2500", request_id=request_id)
        except OSError:
            pass
        e = log_naming(h, request_id, pid, "loop stuck")
        stuck = e["pid"]
        assert stuck in before
        wait_for(lambda: stuck not in h.worker_pids() and
                 len(h.worker_pids()) == 2, 15, "a replacement worker")
        assert get(h, pid, "/ok")[0] == 200

    def test_inprocess_rss_ceiling_recycles(self, inproc):
        h = inproc
        pid = faulty_platform(h, "ip-leak")
        c = h.conn()
        try:
            st, hd, _, _ = get(h, pid, "/ok", conn=c)
            worker = int(hd["x-faulty-pid"])
            with open("/proc/%d/statm" % worker) as f:
                pages = int(f.read().split()[1])
            rss_mb = pages * os.sysconf("SC_PAGE_SIZE") >> 20
            mb = max(RSS_CEILING_MB - rss_mb + 32, 32)
            # In steps of 32 MiB, each holding the loop well under
            # watchdog.hard_ms (1 s here) even where a page fault costs
            # ~13 µs (a VM with page-table isolation and no PCID: 256 MiB
            # take ~0.9 s there). A worker that saw its ceiling drains.
            while mb > 0:
                step = min(mb, 32)
                try:
                    st, hd, body, _ = get(h, pid, "/leak?mb=%d" % step,
                                          conn=c)
                except (http.client.HTTPException, OSError):
                    break
                assert st == 200 and int(hd["x-faulty-pid"]) == worker, body
                mb -= step
        finally:
            c.close()
        e = h.wait_log(lambda e: e.get("pid") == worker and e.get("msg") !=
                       "access" and any("rss" in k for k in e))
        assert e["level"] in ("warn", "error", "info"), e
        wait_for(lambda: worker not in h.worker_pids() and
                 len(h.worker_pids()) == 2, 15, "a replacement worker")
