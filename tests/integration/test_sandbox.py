"""Sandboxed stacks, the worker's side (host/sandbox.c): a stack from
stacks_dirs runs in a sandbox process per (stack version, platform) and is
served through it exactly as in-process.

- the request a sandboxed package sees (method, path, query, route
  parameters, headers, body, request id, traceparent, caller, platform) is
  the one an in-process package sees: the probe stack's echo compared
  between a sandboxed host and one with sandbox.inprocess=probe;
- resources (sql, kv, blob) and platform events reach the host through the
  sandbox (resfeat and the fakestore provider), for the request's platform;
- a crash answers 502 with a log line naming rid, package and platform,
  while a client of another platform sees only 2xx, and a request of the
  same stack in flight on another platform is answered (a sandbox per
  platform);
- the wall budget answers 504 and replaces a sandbox held by the request;
- an idle sandbox is reaped and the next request starts a new one."""
import json
import os
import threading
import time

import pytest

from conftest import FIXTURE_STACKS, Host
from test_contain import sanitized

PROBE = os.path.join(FIXTURE_STACKS, "probe")
RESFEAT = os.path.join(FIXTURE_STACKS, "resfeat")
RESPLUGINS = os.path.join(os.path.dirname(FIXTURE_STACKS), "resplugins")
CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
CORE = ["iam", "registry", "provisioning"]
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def sandboxes(h):
    """Pids of the sandbox processes of the host's workers."""
    workers = set(h.worker_pids())
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                ppid = [l for l in f if l.startswith("PPid:")][0].split()[1]
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError):
            continue
        if int(ppid) in workers and argv[1:2] == [b"sandbox"]:
            out.add(int(d))
    return out


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


# ---- the request, as a package sees it ------------------------------------


def echo(h):
    st, hd, body = h.request(
        "POST", "/probe/echo/a/b%20c?x=1&y=two",
        headers={"X-Request-Id": "sbx-echo-1", "traceparent": TRACE,
                 "X-Custom": "v1", "Content-Type": "text/plain"},
        body=b"the body \x00 with a NUL")
    assert st == 200, body
    return json.loads(body), hd


def test_request_fields_are_those_in_process(make_host):
    sbx = make_host(workers=1, stacks=[PROBE]).start()
    inp = make_host(workers=1, stacks=[PROBE],
                    config={"sandbox": {"inprocess": "probe"}}).start()
    got, hd = echo(sbx)
    want, _ = echo(inp)
    # The host makes a span of its own for each request: the trace is kept.
    for d in (got, want):
        assert d["traceparent"][:36] == TRACE[:36], d
        d["traceparent"] = d["traceparent"][:36]
    assert got == want
    assert got["method"] == "POST" and got["rest"] == "a/b%20c", got
    assert hd.get("x-request-id") == "sbx-echo-1"
    # Served by a sandbox: one child of the worker, `nno sandbox`.
    assert len(sandboxes(sbx)) == 1 and not sandboxes(inp)
    loaded = [e for e in sbx.log_lines() if e.get("msg") == "stack loaded"
              and e.get("name") == "probe@1.0.0"]
    assert loaded and loaded[0]["isolation"] == "sandbox", loaded


def test_handler_errors_and_bounds_as_in_process(make_host):
    sbx = make_host(workers=1, stacks=[PROBE]).start()
    inp = make_host(workers=1, stacks=[PROBE],
                    config={"sandbox": {"inprocess": "probe"}}).start()
    for path in ("/probe/fail", "/probe/big?n=100000"):
        a = sbx.request("GET", path)
        b = inp.request("GET", path)
        assert a[0] == b[0], (path, a[0], b[0], a[2][:200])
        if a[0] == 200:
            assert a[2] == b[2]


# ---- resources and events through the sandbox -------------------------------


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("sbxres"), workers=1, stacks=[RESFEAT],
             config={"plugin_dir": RESPLUGINS, "core_plugins": ["fakestore"]})
    h.start()
    yield h
    h.stop()


def on(platform, **headers):
    h = {"X-Platform": platform}
    h.update(headers)
    return h


def store_log(h, clear=True):
    st, _, body = h.json("GET", "/fakestore/log" + ("?clear=1" if clear
                                                    else ""))
    assert st == 200
    return body


def test_resources_reach_the_provider_for_the_request_platform(res):
    store_log(res)
    for p in ("acme", "globex"):
        st, _, body = res.json("POST", "/r/sql", headers=on(p),
                               body=b"SELECT 1")
        assert st == 200, body
        assert body["rows"] == [{"platform": p, "stack": "resfeat",
                                 "name": "notes", "batch": 0,
                                 "sql": "SELECT 1", "params": ""}]
        assert body["changes"] == 1 and body["last"] == 7
    assert res.json("PUT", "/r/kv/k1", headers=on("acme"),
                    body=b"v1")[0] == 200
    st, _, body = res.json("GET", "/r/kv/k1", headers=on("acme"))
    assert st == 200 and body == {"found": 1, "value": "v1"}
    st, _, body = res.json("GET", "/r/kv/k1", headers=on("globex"))
    assert st == 200 and body == {"found": 0, "value": ""}
    st, _, body = res.json("POST", "/r/sql", headers=on("acme"), body=b"FAIL")
    assert st == 409 and body == {"error": "NNO_EREFUSED"}
    st, _, body = res.json("PUT", "/r/blob/a/b.txt", headers=on(
        "acme", **{"Content-Type": "text/plain"}), body=b"hello")
    assert st == 200 and body["size"] == 5
    st, _, body = res.json("GET", "/r/blobhead/a/b.txt", headers=on("acme"))
    assert st == 200 and body["content_type"] == "text/plain"
    lines = store_log(res)
    assert "sql acme resfeat resfeat sql notes SELECT 1" in lines
    assert "sql globex resfeat resfeat sql notes SELECT 1" in lines
    assert "kv-p acme resfeat resfeat kv cache k1" in lines
    assert "kv-g globex resfeat resfeat kv cache k1" in lines
    assert "blob-p acme resfeat resfeat blob files a/b.txt" in lines
    # One sandbox per platform.
    assert len(sandboxes(res)) == 2


def test_platform_events_reach_the_sandbox_and_fail_back(res):
    """platform_event of a sandboxed stack runs in the platform's sandbox;
    a failure comes back with its code and message, as in-process."""
    st, _, body = res.json("POST", "/fakestore/event/failme/2")
    assert st == 200
    assert body == {"status": "NNO_EREFUSED",
                    "message": "cannot activate on failme"}, body
    st, _, body = res.json("POST", "/fakestore/event/acme/1")
    assert st == 200 and body["status"] == "NNO_OK", body


def test_undeclared_resources_are_refused_by_the_worker(res):
    store_log(res)
    st, _, body = res.json("GET", "/r/checks", headers=on("acme"))
    assert st == 200
    assert body["undeclared"] == "NNO_ENOENT", body
    assert body["wrong_type"] == "NNO_ENOENT", body
    assert store_log(res) == []


def test_caller_and_platform_reach_the_package(res):
    st, _, body = res.json("GET", "/r/who", headers=on(
        "acme", **{"X-Tenant-Path": "t1/t2"}))
    assert st == 200, body
    assert body["platform"] == "acme"
    assert body["stack"] == "resfeat" and body["version"] == "1.0.0"


# ---- crashes, budgets, one sandbox per platform -----------------------------


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("sbxfaulty"), workers=1, core=True,
             stacks=[CONTAIN],
             config={"core_plugins": CORE,
                     "sandbox": {"wall_ms": 1000, "idle_ms": 600,
                                 "cpu_ms": 300, "crash_limit": 1000,
                                 "plans": "roomy:3000/1500/256"}})
    h.start()
    for p, s in (("good", "steady"), ("plat-a", "faulty"), ("plat-b", "faulty")):
        h.platform(p, stacks=[s], plan="unmetered")
    yield h
    h.stop()


def get(h, platform, path, request_id=None, conn=None):
    c = conn or h.conn(20)
    try:
        hdrs = {"X-Request-Id": request_id} if request_id else {}
        c.request("GET", "/p/%s%s" % (platform, path), headers=hdrs)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        if conn is None:
            c.close()


class Loop:
    """A client of platform "good" until stopped: every answer 2xx."""

    def __init__(self, h):
        self.h, self.stop_ = h, threading.Event()
        self.bad, self.n = [], 0
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_.is_set():
            try:
                st, _, body = get(self.h, "good", "/ok")
                if not 200 <= st < 300:
                    self.bad.append((st, body[:200]))
            except Exception as e:
                self.bad.append(repr(e))
            self.n += 1
            time.sleep(0.01)

    def stop(self):
        self.stop_.set()
        self.t.join(20)
        assert self.n > 0 and not self.bad, self.bad


def test_crash_is_502_and_named_while_others_are_served(faulty):
    loop = Loop(faulty)
    try:
        # plat-b's request is in flight in its sandbox when plat-a's crashes.
        held = {}
        t = threading.Thread(target=lambda: held.setdefault(
            "r", get(faulty, "plat-b", "/block?ms=700")))
        t.start()
        time.sleep(0.2)
        st, hd, body = get(faulty, "plat-a", "/segv", request_id="sbx-crash-1")
        assert st == 502, body
        doc = json.loads(body)
        assert hd["content-type"].startswith("application/problem+json")
        assert doc["request_id"] == "sbx-crash-1"
        t.join(20)
        assert held["r"][0] == 200, held
        e = faulty.wait_log(lambda e: e.get("msg") == "sandbox crashed" and
                            e.get("rid") == "sbx-crash-1")
        assert e["package"] == "faulty" and e["platform"] == "plat-a", e
        assert e["version"] == "1.0.0" and e["method"] == "GET", e
        assert e["path"] == "/p/plat-a/segv", e
        # A sanitizer build's sandbox reports the fault, then aborts (its
        # ASAN_OPTIONS say abort_on_error=1): a signal all the same.
        assert e["signal"] in (("SIGSEGV", "SIGABRT") if sanitized()
                               else ("SIGSEGV",)), e
        assert e["pid"] > 0
        access = faulty.access_lines(lambda a: a.get("rid") == "sbx-crash-1",
                                     1)
        assert access[0]["status"] == 502
        # Replaced on the next request.
        assert get(faulty, "plat-a", "/ok")[0] == 200
    finally:
        loop.stop()


def test_wall_budget_is_504_and_replaces_the_held_sandbox(faulty):
    c = faulty.conn(20)
    try:
        st, hd, _ = get(faulty, "plat-b", "/ok", conn=c)
        before = int(hd["x-faulty-pid"])
        t0 = time.time()
        st, hd, body = get(faulty, "plat-b", "/block?ms=5000", conn=c,
                           request_id="sbx-wall-1")
        assert st == 504, body
        assert time.time() - t0 < 4
        doc = json.loads(body)
        assert "time budget (1000 ms)" in doc["detail"], doc
        assert doc["request_id"] == "sbx-wall-1"
        st, hd, _ = get(faulty, "plat-b", "/ok", conn=c)
        assert st == 200 and int(hd["x-faulty-pid"]) != before
    finally:
        c.close()
    wait_for(lambda: not os.path.exists("/proc/%d" % before), 5,
             "the held sandbox to be gone")


def test_a_platform_plan_gives_the_budgets_after_its_activation(faulty):
    """The activation's platform event starts a sandbox knowing no plan
    (default budgets): the platform's requests still get their plan's."""
    faulty.api("POST", "/plans", {"name": "roomy"})  # billing's plan
    faulty.platform("plat-roomy", stacks=["faulty"], plan="roomy")
    st, _, body = get(faulty, "plat-roomy", "/spin?ms=600")
    assert st == 200, body  # 600 ms of CPU: over the default 300, within 1500


def test_idle_sandbox_is_reaped(faulty):
    st, hd, _ = get(faulty, "plat-a", "/ok")
    assert st == 200
    pid = int(hd["x-faulty-pid"])
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10,
             "the idle sandbox to be reaped")
    st, hd, _ = get(faulty, "plat-a", "/ok")
    assert st == 200 and int(hd["x-faulty-pid"]) != pid


def test_isolation_is_shown_and_counted(faulty):
    st, _, s = faulty.api("GET", "/stacks/faulty")
    assert st == 200
    assert [d["isolation"] for d in s["details"]] == ["sandbox"], s
    st, body = faulty.request("GET", "/metrics")[0::2]
    text = body.decode()
    assert "nno_sandbox_spawns_total" in text
    assert 'nno_sandbox_crashes_total{platform="plat-a",package="faulty"' in text


def test_required_service_is_refused_in_sandbox_mode(make_host, tmp_path):
    """A package requiring a service cannot run sandboxed (a service is a
    table of pointers): refused with the message that says what to do, and
    served once the operator runs its stack in-process."""
    import shutil
    root = tmp_path / "svc"
    shutil.copytree(PROBE, str(root))
    pj = root / "probe" / "1.0.0" / "packages" / "probe" / "package.json"
    m = json.loads(pj.read_text())
    m["requires"] = {"nno.storage": "^1"}
    pj.write_text(json.dumps(m))
    h = make_host(workers=1, stacks=[str(root)],
                  config={"plugin_dir": RESPLUGINS,
                          "core_plugins": ["fakestore"]}).start()
    e = h.wait_log(lambda e: e.get("msg") == "stack refused" and
                   e.get("name") == "probe@1.0.0")
    assert e["error"] == (
        "package probe requires service nno.storage, which a sandboxed "
        "stack cannot reach; run stack probe inprocess (sandbox.inprocess)")
    h2 = make_host(workers=1, stacks=[str(root)],
                   config={"plugin_dir": RESPLUGINS,
                           "core_plugins": ["fakestore"],
                           "sandbox": {"inprocess": "probe"}}).start()
    assert not [e for e in h2.log_lines() if e.get("msg") == "stack refused"]


def test_stack_in_a_private_folder_is_served(make_host, tmp_path):
    """The data folder is 0750 and the host's own: a sandbox (never root)
    still loads a stack from a folder only the host's user can read."""
    import shutil
    root = tmp_path / "private"
    shutil.copytree(PROBE, str(root))
    os.chmod(str(tmp_path), 0o700)
    os.chmod(str(root), 0o700)
    h = make_host(workers=1, stacks=[str(root)]).start()
    assert not [e for e in h.log_lines() if e.get("msg") == "stack refused"]
    got, _ = echo(h)
    assert got["method"] == "POST" and got["id"] == "sbx-echo-1", got
    [pid] = sandboxes(h)
    with open("/proc/%d/status" % pid) as f:
        st = dict(l.split(":", 1) for l in f if ":" in l)
    if os.geteuid() == 0:
        assert st["Uid"].split()[:3] == ["65534"] * 3, st["Uid"]


def test_concurrent_requests_each_get_their_answer(make_host):
    """Many requests in flight in one sandbox at once (batched both ways):
    each is answered, with its own answer."""
    import concurrent.futures
    h = make_host(workers=1, stacks=[PROBE]).start()

    def one(i):
        c = h.conn(10)
        try:
            rid = "sbx-many-%d" % i
            c.request("GET", "/probe/echo/%d" % i,
                      headers={"X-Request-Id": rid})
            r = c.getresponse()
            body = json.loads(r.read())
            return r.status, body["id"] == rid and body["rest"] == str(i)
        finally:
            c.close()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(one, range(64)))
    assert got == [(200, True)] * 64, got
    assert len(sandboxes(h)) == 1
