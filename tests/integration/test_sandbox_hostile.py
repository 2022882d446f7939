"""A hostile sandboxed package (tests/fixtures/plugins/hostile.c) meets the
same answers an in-process one does, and cannot turn its sandbox's
plumbing against its platform:

- a log line holding newlines, CRs and control bytes (a client's input
  logged as is) is logged escaped, tagged with its package; the sandbox
  lives on (no protocol violation, no crash report);
- a body written past limits.max_response_bytes, the refusal ignored, is
  a 500 problem, as in-process, never a 200 cut short;
- a response header count is bounded: res_header refuses the 101st with
  NNO_ETOOBIG, in-process and in a sandbox;
- a host call from a work_queue pool thread is refused (NNO_ESTATE) in a
  sandbox;
- a package cannot start a thread of its own in a sandbox (EPERM), so no
  CPU is burnt outside its requests' budgets; work_queue still works;
- a thread a package started in init and left spinning is caught by the
  worker's CPU sampling: the sandbox is killed as a budget ("cpu outside
  requests"), counted, and the next request gets a new one;
- what a package writes to stderr is relayed as text (source "stderr",
  level warn), never at a level it claims; the runtime's own lines keep
  theirs (source "sandbox");
- "503 sandbox capacity" says when to retry."""
import http.client
import json
import os
import threading
import time

import pytest

from conftest import FIXTURE_STACKS

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")


@pytest.fixture
def pair(make_host):
    sbx = make_host(workers=1, stacks=[CONTAIN],
                    config={"limits": {"max_response_bytes": 1 << 20}}).start()
    inp = make_host(workers=1, stacks=[CONTAIN],
                    config={"limits": {"max_response_bytes": 1 << 20},
                            "sandbox": {"inprocess": "hostile"}}).start()
    return sbx, inp


def sandbox_pids(h):
    st, _, body = h.request("GET", "/headers?n=1")
    assert st == 200, body
    return body


def test_log_with_newlines_is_logged_escaped_and_kills_nothing(pair):
    sbx, _ = pair
    st, hd, _ = sbx.request("GET", "/lognl")
    assert st == 200
    line = sbx.wait_log(lambda l: "forged" in l.get("msg", ""))
    assert line["level"] == "warn"
    assert line.get("package") == "hostile"
    assert "\n" in line["msg"] and "\r" in line["msg"]
    # No line of the package's passes for the runtime's own, and the
    # sandbox was not killed for it.
    text = sbx.log_text()
    assert "protocol violation" not in text
    assert not any(l.get("msg") == "forged" for l in sbx.log_lines())
    st, _, _ = sbx.request("GET", "/lognl")
    assert st == 200
    assert "protocol violation" not in sbx.log_text()


def test_oversize_body_is_a_500_problem_as_in_process(pair):
    sbx, inp = pair
    a = sbx.request("GET", "/big")
    b = inp.request("GET", "/big")
    assert b[0] == a[0] == 500, (a[0], b[0])
    for st, hd, body in (a, b):
        assert hd.get("content-type", "").startswith(
            "application/problem+json"), hd
        doc = json.loads(body)
        assert doc["status"] == 500 and doc.get("request_id")


def test_response_headers_are_bounded(pair):
    # The answer carries 100 headers and the host's own: more than
    # http.client reads by default.
    http.client._MAXHEADERS = 1000
    for h in pair:
        st, hd, body = h.request("GET", "/headers?n=300")
        assert st == 200, body
        doc = json.loads(body)
        assert doc["refused"] == "NNO_ETOOBIG", doc
        assert doc["taken"] <= 100, doc
        assert doc["taken"] >= 99, doc


def test_host_calls_from_a_pool_thread_are_refused(pair):
    sbx, _ = pair
    st, hd, body = sbx.request("GET", "/pool")
    assert st == 200, (st, body)
    doc = json.loads(body)
    assert doc["pool_rc"] == "NNO_ESTATE", doc


def test_a_package_cannot_start_threads_in_a_sandbox(pair):
    sbx, _ = pair
    st, hd, body = sbx.request("GET", "/thread")
    assert st == 200, body
    assert json.loads(body) == {"started": False, "errno": "EPERM"}
    st, hd, body = sbx.request("GET", "/pool")
    assert st == 200 and json.loads(body)["status"] == 0, body


def test_sandbox_capacity_says_when_to_retry(make_host):
    h = make_host(workers=1, stacks=[CONTAIN],
                  config={"sandbox": {"max_per_worker": 1}}).start()
    held = {}
    t = threading.Thread(target=lambda: held.setdefault(
        "r", h.request("GET", "/block?ms=3000")))
    t.start()
    try:
        time.sleep(0.5)  # /block holds the one sandbox a worker may have

        def busy():
            st, hd, body = h.request("GET", "/headers?n=1")
            return (st, hd, body) if st == 503 else None
        deadline = time.time() + 2.5
        got = None
        while not got and time.time() < deadline:
            got = busy()
        assert got, "no 503 while the only sandbox was busy"
        st, hd, body = got
        assert "sandbox capacity" in json.loads(body)["detail"]
        assert hd.get("retry-after") == "1", hd
    finally:
        t.join(20)
    assert held["r"][0] == 200


def test_dropped_log_lines_are_said_without_a_later_line(pair):
    sbx, _ = pair
    st, _, _ = sbx.request("GET", "/headers?n=1")  # started, loaded
    assert st == 200
    st, _, _ = sbx.request("GET", "/lognl?n=50&plain=1")
    assert st == 200
    # 20 lines a second pass (40 if a second ends amid them); the others
    # are said from the timer, with no later line to carry the notice.
    sbx.wait_log(lambda l: "log lines dropped" in l.get("msg", ""), timeout=5)
    time.sleep(1.5)
    dropped = sum(int(l["msg"].split(": ")[1].split()[0])
                  for l in sbx.log_lines()
                  if "log lines dropped" in l.get("msg", ""))
    assert 10 <= dropped <= 35, dropped  # its own lines share the cap


def test_sandbox_lines_name_their_stack(make_host):
    h = make_host(workers=1, stacks=[CONTAIN],
                  config={"sandbox": {"idle_ms": 600}}).start()
    st, _, _ = h.request("GET", "/headers?n=1")
    assert st == 200
    # Every sandbox's own lines (trials' too) name stack and version.
    h.wait_log(lambda l: l.get("msg") == "stack loaded"
               and l.get("source") == "sandbox")
    loaded = [l for l in h.log_lines() if l.get("msg") == "stack loaded"
              and l.get("source") == "sandbox"]
    assert all(l["stack"] and l["version"] for l in loaded), loaded


def test_an_ended_sandbox_has_no_rss_series(make_host):
    h = make_host(workers=1, stacks=[CONTAIN],
                  config={"sandbox": {"idle_ms": 600}}).start()
    st, _, _ = h.request("GET", "/headers?n=1")
    assert st == 200

    def rss_series():
        st, _, body = h.request("GET", "/metrics")
        assert st == 200
        return [l for l in body.decode().splitlines()
                if l.startswith("nno_sandbox_rss_bytes{")]
    deadline = time.time() + 5
    while not rss_series() and time.time() < deadline:
        time.sleep(0.1)
    assert any('stack="hostile@1.0.0"' in l for l in rss_series())
    # Reaped when idle: its series goes with it.
    deadline = time.time() + 8
    while rss_series() and time.time() < deadline:
        time.sleep(0.1)
    assert rss_series() == []


def test_stderr_is_relayed_as_text(pair):
    sbx, _ = pair
    st, _, _ = sbx.request("GET", "/stderr")
    assert st == 200
    line = sbx.wait_log(lambda l: "forged on stderr" in l.get("msg", ""))
    assert line["level"] == "warn" and line["source"] == "stderr", line
    assert line["msg"].startswith('{"level":"error"'), line
    # The runtime's own lines keep their level and source.
    loaded = [l for l in sbx.log_lines() if l.get("msg") == "stack loaded"
              and l.get("source") == "sandbox"]
    assert loaded and all(l["level"] == "info" for l in loaded), loaded


def killed_outside(make_host, path, traffic=False):
    """Start a host (cpu_outside_pct 20), GET `path`, and return the line
    of the sandbox's kill for CPU outside requests (within 10 s), with a
    request every 2 ms meanwhile if `traffic`."""
    h = make_host(workers=1, stacks=[CONTAIN],
                  config={"sandbox": {"cpu_outside_pct": 20}}).start()
    st, _, body = h.request("GET", path)
    assert st == 200, body
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                h.request("GET", "/headers?n=1")
            except OSError:
                pass
            time.sleep(0.002)
    t = threading.Thread(target=loop)
    if traffic:
        t.start()
    try:
        return h.wait_log(
            lambda l: l.get("reason") == "cpu outside requests", timeout=10)
    finally:
        stop.set()
        if traffic:
            t.join()


def test_forged_times_do_not_hide_cpu_outside_requests(make_host):
    # The spinning thread claims on the sandbox's status page that its CPU
    # went into callbacks and into polling for requests: the worker credits
    # neither beyond its own clock (work in flight, a grant per idle
    # stretch), so the kill still comes, with requests coming or not.
    for traffic in (True, False):
        line = killed_outside(make_host, "/bgspin?forge=1", traffic)
        assert line["package"] == "hostile", line


def test_a_timer_spinning_outside_requests_is_a_budget(make_host):
    # A repeating timer no live request owns, spinning 30 ms of every
    # 10 ms: callback time, but no request's, so it counts as outside.
    line = killed_outside(make_host, "/tspin?ms=30")
    assert line["package"] == "hostile", line


def test_cpu_outside_requests_is_a_budget(make_host):
    # The share is set low so that a loaded machine, which may give the
    # spinning thread well under a core, still shows the kill: what is
    # proven is the kill, its line and its count, not the default 90%.
    h = make_host(workers=1, stacks=[CONTAIN],
                  config={"sandbox": {"cpu_outside_pct": 20}}).start()
    st, _, body = h.request("GET", "/bgspin")
    assert st == 200, body
    line = h.wait_log(lambda l: l.get("reason") == "cpu outside requests",
                      timeout=10)
    assert line["msg"] == "sandbox budget exceeded"
    assert line["package"] == "hostile" and line["stack"] == "hostile"
    st, _, body = h.request("GET", "/metrics")
    assert ('nno_sandbox_budget_total{platform="",package="hostile",'
            'budget="cpu"} 1') in body.decode()
    assert "protocol violation" not in h.log_text()
    # Logged once, when decided, not again as the sandbox exits.
    time.sleep(0.5)
    lines = [l for l in h.log_lines()
             if l.get("reason") == "cpu outside requests"]
    assert len(lines) == 1, lines
    st, _, body = h.request("GET", "/headers?n=1")
    assert st == 200, body
