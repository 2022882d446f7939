"""Metering's per-worker memory follows every change: each worker keeps,
per platform, its plan's limits and its meter keys resolved to their
slots. A plan edited while its platforms are served, a platform moved to
another plan and back, and requests ending in more ways (tenant, package,
status class) than a platform keeps resolved are all seen at once by both
workers, and counted exactly."""
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Host
from test_billing_meter import (burst, key, metering_config, plan, tenant,
                                usage, wait_total)


def hello(h, pid, k):
    return h.request("GET", "/p/%s/hello" % pid, key=k)[0]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("metercache"), workers=2, core=True,
             config=metering_config())
    h.start()
    plan(h, "open", requests_per_month=0, api_keys=0)
    yield h
    h.stop()


def test_plan_edited_reaches_every_worker(host):
    h = host
    plan(h, "edited", requests_per_month=5, soft_pct=100, grace_pct=0)
    h.platform("pedit", plan="edited")
    k = key(h, "pedit", ["features:*"])
    # Served by the workers, which keep the plan's limits.
    got = burst(h, "pedit", [k] * 3, threads=3)
    assert got == {(k, 200): 3}, got
    # Lowered below what was used: refused at once, by every worker.
    st, _, p = h.api("PATCH", "/plans/edited", {"requests_per_month": 3})
    assert st == 200, p
    got = burst(h, "pedit", [k] * 6, threads=3)
    assert got == {(k, 402): 6}, got
    # Raised: exactly what is left is served (refusals counted nothing).
    st, _, p = h.api("PATCH", "/plans/edited", {"requests_per_month": 10})
    assert st == 200, p
    got = burst(h, "pedit", [k] * 10, threads=3)
    assert got == {(k, 200): 7, (k, 402): 3}, got
    wait_total(h, "pedit", 10, fields=("admitted",))


def test_platform_moved_between_plans(host):
    h = host
    plan(h, "four", requests_per_month=4, soft_pct=100, grace_pct=0)
    h.platform("pmove", plan="four")
    k = key(h, "pmove", ["features:*"])
    got = burst(h, "pmove", [k] * 6, threads=2)
    assert got == {(k, 200): 4, (k, 402): 2}, got
    # No quota on the other plan: served, and still counted.
    st, _, p = h.api("PATCH", "/platforms/pmove", {"plan": "open"})
    assert st == 200, p
    got = burst(h, "pmove", [k] * 4, threads=2)
    assert got == {(k, 200): 4}, got
    # Back: the month to date (8) is past the quota at once.
    st, _, p = h.api("PATCH", "/platforms/pmove", {"plan": "four"})
    assert st == 200, p
    got = burst(h, "pmove", [k] * 4, threads=2)
    assert got == {(k, 402): 4}, got
    wait_total(h, "pmove", 8)


def test_more_ends_than_kept_are_counted_exactly(host):
    h = host
    h.platform("pends", plan="open")
    # Seven tenants, two packages and two classes (hello's 200, a missing
    # note's 404): more ways to end than a platform keeps resolved,
    # interleaved so that each is dropped and resolved again many times.
    keys = {}
    for i in range(7):
        t = "t%d" % i
        tenant(h, "pends", t)
        keys[t] = key(h, "pends", ["features:*"], tenant=t)
    order = []
    for rnd in range(6):
        for i in range(7):
            t = "t%d" % i
            order.append((t, "/p/pends/hello"))
            if (rnd + i) % 3 == 0:
                order.append((t, "/p/pends/notes/999999"))
    got = Counter()
    lock = threading.Lock()

    def run(part):
        for t, path in part:
            st = h.request("GET", path, key=keys[t])[0]
            with lock:
                got[(t, path, st)] += 1
    with ThreadPoolExecutor(4) as ex:
        for f in [ex.submit(run, order[i::4]) for i in range(4)]:
            f.result()
    want = {}
    for t in keys:
        missing = order.count((t, "/p/pends/notes/999999"))
        assert got[(t, "/p/pends/hello", 200)] == 6, got
        assert got[(t, "/p/pends/notes/999999", 404)] == missing, got
        want[t] = (6, missing)
    n = len(order)
    body = wait_total(h, "pends", n)
    assert body["totals"]["2xx"] == 42
    assert body["totals"]["4xx"] == n - 42
    _, _, bt = usage(h, "pends", by="tenant")
    assert {r["tenant"]: (r["classes"]["2xx"], r["classes"]["4xx"])
            for r in bt["rows"]} == want, bt
    _, _, bp = usage(h, "pends", by="package")
    assert {r["package"]: r["requests"] for r in bp["rows"]} == {
        "hello": 42, "notes": n - 42}, bp


def test_quota_boundary_counts_every_refund(host):
    h = host
    # A rate limit refuses after billing admitted (the request is
    # refunded); each worker reads the refunds again before it refuses,
    # so exactly the quota is served whichever worker refunded.
    plan(h, "refunds", requests_per_month=3, soft_pct=100, grace_pct=0,
         rates={"key": {"rate": 1, "burst": 1}})
    h.platform("prefund", plan="refunds")
    k = key(h, "prefund", ["features:*"])
    got = burst(h, "prefund", [k] * 12, threads=4)
    assert got[(k, 429)] >= 8 and got[(k, 402)] == 0, got
    served = got[(k, 200)]
    for _ in range(6):
        time.sleep(1.1)
        st = hello(h, "prefund", k)
        assert st in (200, 402), st
        served += st == 200
        if st == 402:
            break
    assert served == 3, served
    wait_total(h, "prefund", 3, refunds=True)
