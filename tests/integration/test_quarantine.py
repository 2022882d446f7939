"""Crash reports and quarantine of in-process packages.

The stack `faulty` runs in-process (sandbox.inprocess) on platform acme;
`steady` on platform ctrl is the control. A crash in faulty's handler
(GET /abort: SIGABRT, which the sanitizer builds leave to the process,
where UBSan would stop a NULL store first) kills its worker: the crashing
client still gets a 502 with its request id (the worker's crash
handler), the worker's log line names the request,
package and platform, the master's line says when the worker comes back,
and K crashes within the window quarantine faulty on acme (503 with
Retry-After, an audit row, metrics) until the operator releases it. An
in-process crash takes the other requests in flight in that worker down
with it (their connections close): the control platform is asserted to
be served right after each crash, by the survivor or the new worker.
"""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import FIXTURE_STACKS, NNO

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
CONFIG = {"sandbox": {"inprocess": "faulty,steady", "crash_limit": 2,
                      "crash_window_ms": 60000, "quarantine_ms": 60000}}


@pytest.fixture
def host(make_host):
    h = make_host(core=True, workers=2, stacks=[CONTAIN],
                  config=CONFIG).start()
    h.platform("acme", stacks=("faulty",))
    h.platform("ctrl", stacks=("steady",))
    assert h.request("GET", "/p/acme/ok")[0] == 200
    return h


def control_served(h):
    st, _, body = h.request("GET", "/p/ctrl/ok")
    assert st == 200, body


def crash(h, rid):
    st, hd, body = h.request("GET", "/p/acme/abort",
                             headers={"X-Request-Id": rid})
    assert st == 502, body
    assert hd["content-type"] == "application/problem+json"
    assert hd["x-request-id"] == rid
    p = json.loads(body)
    assert p["status"] == 502 and p["request_id"] == rid
    assert "SIGABRT" in p["detail"]
    return p


def audit_rows(h, action):
    st, _, page = h.api("GET", "/audit?action=" + action)
    assert st == 200, page
    return page["items"]


def wait_for(fn, timeout=5):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.05)


def test_crash_report_quarantine_and_release(host):
    h = host
    control_served(h)
    crash(h, "crash-1")
    e = h.wait_log(lambda e: e.get("msg") == "worker crashed" and
                   e.get("rid") == "crash-1")
    assert e["level"] == "error" and e["role"] == "worker"
    assert (e["package"], e["version"], e["platform"], e["signal"]) == \
        ("faulty", "1.0.0", "acme", "SIGABRT")
    assert (e["method"], e["path"]) == ("GET", "/p/acme/abort")
    ex = h.wait_log(lambda e: e.get("msg") == "worker exited" and
                    e.get("rid") == "crash-1")
    assert ex["role"] == "master" and ex["signal_name"] == "SIGABRT"
    assert isinstance(ex["respawn_in_ms"], int) and ex["respawn_in_ms"] >= 0
    assert ex["package"] == "faulty" and ex["platform"] == "acme"
    # The crashing request has its access line, written by the handler.
    acc = h.access_lines(lambda e: e.get("rid") == "crash-1", 1)
    assert acc and acc[0]["status"] == 502
    control_served(h)
    # One crash counts; the package is still served.
    assert h.request("GET", "/p/acme/ok")[0] == 200

    crash(h, "crash-2")
    q = h.wait_log(lambda e: e.get("msg") == "package quarantined")
    assert (q["platform"], q["package"], q["crashes"]) == ("acme", "faulty", 2)
    control_served(h)
    # Every route of the package on that platform, before its handler.
    for path in ("/p/acme/ok", "/p/acme/abort"):
        st, hd, body = h.request("GET", path)
        assert st == 503, body
        assert hd["content-type"] == "application/problem+json"
        assert int(hd["retry-after"]) >= 1
        p = json.loads(body)
        assert p["request_id"] == hd["x-request-id"]
        assert "faulty 1.0.0" in p["detail"] and "2 crashes" in p["detail"]
    # Nothing more crashed: the refusal ran no package code.
    assert len([e for e in h.log_lines()
                if e.get("msg") == "worker crashed"]) == 2
    control_served(h)

    # Audited once, with the last crashing request's id.
    rows = wait_for(lambda: audit_rows(h, "package.quarantine"))
    assert len(rows) == 1, rows
    r = rows[0]
    assert r["target"] == "platform:acme" and r["request_id"] == "crash-2"
    assert r["detail"]["package"] == "faulty"
    assert r["detail"]["version"] == "1.0.0"
    assert r["detail"]["crashes"] == 2 and r["detail"]["reason"] == "SIGABRT"
    time.sleep(1.2)  # every worker polled once more: still one row
    assert len(audit_rows(h, "package.quarantine")) == 1

    st, _, body = h.request("GET", "/metrics")
    assert re.search(rb'^nno_quarantined\{platform="acme",package="faulty",'
                     rb'version="1.0.0"\} 1$', body, re.M)
    assert re.search(rb"^nno_quarantines_total 1$", body, re.M)
    assert re.search(rb'^nno_worker_crashes_total\{package="faulty"\} 2$',
                     body, re.M)

    st, _, page = h.api("GET", "/quarantines")
    assert st == 200 and len(page["items"]) == 1, page
    item = page["items"][0]
    assert (item["platform"], item["package"], item["version"],
            item["crashes"], item["level"], item["request_id"]) == \
        ("acme", "faulty", "1.0.0", 2, 1, "crash-2")
    assert 0 < item["retry_after_s"] <= 60 and item["until"].endswith("Z")

    # The operator releases it: audited with the request id, served again
    # by every worker.
    st, _, _ = h.api("DELETE", "/quarantines/acme/faulty/1.0.0",
                     headers={"X-Request-Id": "release-1"})
    assert st == 204
    rows = audit_rows(h, "package.release")
    assert len(rows) == 1 and rows[0]["request_id"] == "release-1"
    assert rows[0]["target"] == "platform:acme"
    assert rows[0]["detail"] == {"package": "faulty", "version": "1.0.0"}
    for _ in range(8):
        assert h.request("GET", "/p/acme/ok")[0] == 200
    st, _, page = h.api("GET", "/quarantines")
    assert page["items"] == []
    st, _, p = h.api("DELETE", "/quarantines/acme/faulty/1.0.0")
    assert st == 404 and "not quarantined" in p["detail"]


def test_operator_api_refusals(host):
    h = host
    st, hd, p = h.api("GET", "/quarantines", key=False)
    assert st == 401 and p["request_id"] == hd["x-request-id"]
    st, _, p = h.api("DELETE", "/quarantines/acme/faulty/1.0.0", key=False)
    assert st == 401
    for path in ("/quarantines/ACME!/faulty/1.0.0",
                 "/quarantines/acme/faulty/" + "9" * 80,
                 "/quarantines/acme/f%00ulty/1.0.0"):
        st, hd, p = h.api("DELETE", path)
        assert st == 404 and hd["content-type"] == "application/problem+json"
        assert p["request_id"] == hd["x-request-id"]


def run_cli(h, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_")}
    env["NNO_URL"] = "http://127.0.0.1:%d" % h.port
    env["NNO_DATA"] = h.data
    return subprocess.run([NNO] + list(args), env=env, capture_output=True,
                          text=True, timeout=30)


def test_cli_list_and_release(host):
    h = host
    r = run_cli(h, "quarantine", "release", "acme", "faulty", "1.0.0")
    assert r.returncode != 0 and "not quarantined" in r.stderr
    assert r.stdout == ""
    r = run_cli(h, "quarantine", "release", "acme", "faulty")
    assert r.returncode == 2 and "hint:" in r.stderr
    crash(h, "c1")
    h.wait_log(lambda e: e.get("msg") == "worker exited")
    crash(h, "c2")
    h.wait_log(lambda e: e.get("msg") == "package quarantined")
    r = run_cli(h, "quarantine", "list")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert rows[0].split()[:5] == ["PLATFORM", "STACK", "PACKAGE", "VERSION",
                                   "CRASHES"]
    assert rows[1].split()[:6] == ["acme", "faulty@1.0.0", "faulty", "1.0.0",
                                   "2", "SIGABRT"]
    r = run_cli(h, "quarantine", "list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["package"] == "faulty"
    r = run_cli(h, "quarantine", "release", "acme", "faulty", "1.0.0")
    assert r.returncode == 0, r.stderr
    assert "released" in r.stdout
    assert h.request("GET", "/p/acme/ok")[0] == 200
    # On probation: one crash right after quarantines it again, for longer.
    crash(h, "c3")
    h.wait_log(lambda e: e.get("msg") == "package quarantined" and
               e.get("level") == "warn" and e.get("rid") == "c3")
    st, hd, _ = h.request("GET", "/p/acme/ok")
    assert st == 503 and int(hd["retry-after"]) > 60
    control_served(h)


def test_cli_release_of_every_platform_reaches_the_wildcard(host):
    """The CLI encodes each path segment ("*" is "%2A"): the API decodes
    them, so a release of platform "*" names the wildcard entry (none
    here: the answer says so) rather than no route at all."""
    h = host
    r = run_cli(h, "quarantine", "release", "*", "faulty", "1.0.0")
    assert r.returncode != 0
    assert "not quarantined on platform *" in r.stderr, r.stderr
    st, _, body = h.api("DELETE", "/quarantines/%2A/faulty/1.0.0")
    assert st == 404, body
    assert "on platform *" in body["detail"] and body["request_id"], body


def test_one_crash_is_said_in_the_singular(make_host):
    cfg = {"sandbox": dict(CONFIG["sandbox"], crash_limit=1)}
    h = make_host(core=True, workers=1, stacks=[CONTAIN], config=cfg).start()
    h.platform("acme", stacks=("faulty",))
    crash(h, "one")
    h.wait_log(lambda e: e.get("msg") == "package quarantined")
    st, _, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(
        h.request("GET", "/p/acme/ok")))
    detail = json.loads(body)["detail"]
    assert " after 1 crash (last: " in detail, detail
