"""A sandboxed request's CPU budget (sandbox.cpu_ms) is charged by one
clock on the sandbox's CPU time, armed when the sandbox starts: a request
costs the sandbox no system call for it (README "Sandboxed stacks"), and
package code can neither disarm that clock nor arm one of its own
(timer_settime, timer_create: EPERM), so a package that tries is still
stopped by its budget; a request within its budget is not."""
import json
import os

import pytest

from conftest import FIXTURE_STACKS, Host

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")
CPU_MS = 200


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("cpu"), workers=1, stacks=[CONTAIN],
             config={"sandbox": {"cpu_ms": CPU_MS, "wall_ms": 5000}})
    h.start()
    yield h
    h.stop()


def test_disarming_the_cpu_clock_does_not_escape_the_budget(host):
    st, hd, body = host.request("GET", "/cpuclock?ms=%d" % (5 * CPU_MS))
    assert st == 503, body
    doc = json.loads(body)
    assert hd.get("content-type", "").startswith("application/problem+json")
    assert "cpu budget" in doc.get("detail", "") + doc.get("title", ""), doc
    assert doc.get("request_id"), doc
    line = host.wait_log(lambda l: l.get("reason") == "cpu budget"
                         and l.get("rid") == doc["request_id"], timeout=10)
    assert line["package"] == "hostile", line


def test_a_request_within_its_budget_is_served(host):
    # A tenth of the budget: many of the clock's ticks, none past it.
    st, _, body = host.request("GET", "/cpuclock?ms=%d" % (CPU_MS // 10))
    assert st == 200, body
    doc = json.loads(body)
    assert doc == {"disarmed": 0, "errno": "EPERM",
                   "spun_ms": CPU_MS // 10}, doc
