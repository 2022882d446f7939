"""Billing's metering: what the gateway counts, the flush into hourly
buckets (exact across workers, a worker killed inside the flush loses
nothing, a host killed loses at most what was counted since the last
flush), the monthly quota at its boundary, the usage report's scopes and
errors, and `nno usage` as a table, JSON and CSV."""
import calendar
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import NNO, Host

FLUSH_MS = 200


def metering_config(flush_ms=FLUSH_MS, enabled=True):
    return {"plugin_config": {"billing": {
        "metering": {"flush_ms": flush_ms, "enabled": enabled,
                     "storage_ms": 1000}}}}


def usage(h, pid, key=None, **query):
    q = "&".join("%s=%s" % kv for kv in query.items())
    path = "/platforms/%s/usage%s" % (pid, "?" + q if q else "")
    return h.api("GET", path, key=key)


def wait_total(h, pid, n, timeout=15, fields=("requests", "admitted"),
               refunds=False):
    """The report once its totals reach `n` requests (ended and admitted);
    fails if they go past or never get there. With `refunds` (429s after
    admission), a flush between a request's admission and its refund may
    store it as admitted until the next flush: `admitted` may then pass
    `n` for a while, and must come back to it and stay there."""
    deadline = time.time() + timeout
    body = None
    while time.time() < deadline:
        st, _, body = usage(h, pid)
        assert st == 200, body
        t = body["totals"]
        assert all(t[f] <= n for f in fields
                   if not (refunds and f == "admitted")), body
        if all(t[f] == n for f in fields):
            if refunds:
                time.sleep(3 * FLUSH_MS / 1000)
                st, _, body = usage(h, pid)
                assert st == 200, body
                assert all(body["totals"][f] == n for f in fields), body
            return body
        time.sleep(0.05)
    raise AssertionError("totals never reached %d: %r" % (n, body))


def hello(h, pid, key):
    st, _, _ = h.request("GET", "/p/%s/hello" % pid, key=key)
    return st


def burst(h, pid, keys, threads=8):
    """Fire one request per entry of `keys` from `threads` threads at once;
    returns the statuses counted per key."""
    out = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(part):
        start.wait()
        for k in part:
            st = hello(h, pid, k)
            with lock:
                out[(k, st)] += 1
    parts = [keys[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as ex:
        for f in [ex.submit(run, p) for p in parts]:
            f.result()
    return out


def tenant(h, pid, tid, parent=None):
    body = {"id": tid, "name": tid}
    if parent:
        body["parent"] = parent
    st, _, t = h.api("POST", "/platforms/%s/tenants" % pid, body)
    assert st == 201, t


def key(h, pid, scopes, tenant=None):
    return h.platform_key(pid, scopes=scopes, tenant=tenant)["key"]


# -- a shared host: exact counts, the report's scopes, errors and CLI -------

@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("metered"), workers=2, core=True,
             config=metering_config())
    h.start()
    h.platform("acme")
    h.platform("other")
    tenant(h, "acme", "eu")
    tenant(h, "acme", "fr", parent="eu")
    tenant(h, "acme", "us")
    scopes = ["features:*", "usage:read", "billing:read"]
    keys = {"whole": key(h, "acme", scopes),
            "eu": key(h, "acme", scopes, tenant="eu"),
            "fr": key(h, "acme", scopes, tenant="fr"),
            "us": key(h, "acme", scopes, tenant="us"),
            "other": key(h, "other", scopes),
            "noscope": key(h, "acme", ["features:*"])}
    sent = {"whole": 70, "eu": 60, "fr": 50, "us": 40}
    order = []
    for who, n in sent.items():
        order += [keys[who]] * n
    got = burst(h, "acme", order)
    yield h, keys, sent, got
    h.stop()


def test_burst_across_workers_is_counted_exactly(metered):
    h, keys, sent, got = metered
    n = sum(sent.values())
    assert sum(got.values()) == n
    # Every request ended 2xx (the keys' buckets hold them all), served by
    # both workers.
    assert {st for (_, st) in got} == {200}, got
    pids, want = h.access_pids("/p/acme/hello", 200)
    assert pids == want and len(want) == 2
    body = wait_total(h, "acme", n)
    assert body["rows"] == [
        {"class": "1xx", "requests": 0}, {"class": "2xx", "requests": n},
        {"class": "3xx", "requests": 0}, {"class": "4xx", "requests": 0},
        {"class": "5xx", "requests": 0}]
    assert body["totals"]["2xx"] == n
    # By tenant: the tenant each key is bound to ("" for the whole
    # platform), by package: hello.
    _, _, bt = usage(h, "acme", by="tenant")
    assert {r["tenant"]: r["requests"] for r in bt["rows"]} == {
        "": sent["whole"], "eu": sent["eu"], "fr": sent["fr"],
        "us": sent["us"]}
    assert all(r["classes"]["2xx"] == r["requests"] for r in bt["rows"])
    _, _, bp = usage(h, "acme", by="package")
    assert [(r["package"], r["requests"]) for r in bp["rows"]] == [
        ("hello", n)]
    _, _, bh = usage(h, "acme", by="hour")
    assert sum(r["requests"] for r in bh["rows"]) == n
    assert sum(r["admitted"] for r in bh["rows"]) == n
    # Flushes go on; nothing is counted twice.
    time.sleep(4 * FLUSH_MS / 1000)
    _, _, again = usage(h, "acme")
    assert again["totals"]["requests"] == n
    assert again["totals"]["admitted"] == n


def test_usage_scopes(metered):
    h, keys, sent, _ = metered
    n = sum(sent.values())
    wait_total(h, "acme", n)
    # The operator and a key of the whole platform see everything.
    for k in (None, keys["whole"]):
        st, _, b = usage(h, "acme", key=k, by="tenant")
        assert st == 200, b
        assert b["totals"]["requests"] == n
        assert isinstance(b["storage_bytes"], int)
        assert isinstance(b["active_users"], int)
    # A key bound to eu sees eu and its child fr, nothing else, and none
    # of what belongs to the whole platform.
    st, _, b = usage(h, "acme", key=keys["eu"], by="tenant")
    assert st == 200, b
    assert {r["tenant"]: r["requests"] for r in b["rows"]} == {
        "eu": sent["eu"], "fr": sent["fr"]}
    assert b["totals"]["requests"] == sent["eu"] + sent["fr"]
    assert "admitted" not in b["totals"]
    assert b["storage_bytes"] is None and b["active_users"] is None
    st, _, b = usage(h, "acme", key=keys["fr"], by="package")
    assert b["rows"][0]["requests"] == sent["fr"]
    st, _, b = usage(h, "acme", key=keys["us"], by="hour")
    assert sum(r["requests"] for r in b["rows"]) == sent["us"]
    assert all("admitted" not in r for r in b["rows"])
    # Another platform's key, and a key without the scope: 403.
    for k in (keys["other"], keys["noscope"]):
        st, h2, b = usage(h, "acme", key=k)
        assert st == 403, b
        assert h2["content-type"].startswith("application/problem+json")
        assert b["request_id"]
    st, _, b = usage(h, "acme", key=False)
    assert st == 401, b
    # The invoice preview: the platform's, not a tenant's.
    st, _, inv = h.api("GET", "/platforms/acme/invoice/preview",
                       key=keys["whole"])
    assert st == 200, inv
    assert inv["platform"] == "acme" and inv["plan"]
    assert inv["requests"]["used"] >= n
    assert inv["period"]["start"].endswith("-01T00:00:00Z")
    st, _, b = h.api("GET", "/platforms/acme/invoice/preview",
                     key=keys["eu"])
    assert st == 403, b
    st, _, b = h.api("GET", "/platforms/acme/invoice/preview",
                     key=keys["other"])
    assert st == 403, b


@pytest.mark.parametrize("query,field", [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "2026-02-30"}, "from"),
    ({"from": "2026-12-01T24"}, "from"),
    ({"from": "26-12-01"}, "from"),
    ({"to": "2026-12-01x"}, "to"),
    ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
    ({"from": "2025-01-01", "to": "2026-12-31"}, "to"),
    ({"by": "user"}, "by"),
])
def test_usage_bad_parameters(metered, query, field):
    h = metered[0]
    st, hd, b = usage(h, "acme", **query)
    assert st == 400, b
    assert hd["content-type"].startswith("application/problem+json")
    assert b["field"] == field and b["request_id"], b
    st, _, b = usage(h, "nosuch")
    assert st == 404, b


def test_usage_range(metered):
    h, _, sent, _ = metered
    n = sum(sent.values())
    wait_total(h, "acme", n)
    now = time.gmtime()
    today = time.strftime("%Y-%m-%d", now)
    st, _, b = usage(h, "acme", **{"from": today, "to": today})
    assert st == 200 and b["totals"]["requests"] == n, b
    assert b["from"] == today + "T00:00:00Z"
    # An hour in the past holds nothing.
    st, _, b = usage(h, "acme", **{"from": "2020-01-01T00",
                                   "to": "2020-01-01T05"})
    assert st == 200 and b["totals"]["requests"] == 0, b
    assert b["to"] == "2020-01-01T06:00:00Z"


def cli(h, *args):
    p = subprocess.run([NNO, "--url", "http://127.0.0.1:%d" % h.port,
                        "--data", h.data] + list(args),
                       capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_cli_usage_table_json_csv(metered):
    h, _, sent, _ = metered
    n = sum(sent.values())
    wait_total(h, "acme", n)
    rc, out, err = cli(h, "usage", "--platform", "acme", "--by", "tenant",
                       "--json")
    assert rc == 0, err
    assert json.loads(out)["totals"]["requests"] == n
    rc, out, err = cli(h, "usage", "--platform", "acme", "--by", "tenant",
                       "--csv")
    assert rc == 0, err
    assert out.endswith("\r\n") and "\n" not in out.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert rows and list(rows[0]) == ["tenant", "requests", "1xx", "2xx",
                                      "3xx", "4xx", "5xx"]
    assert {r["tenant"]: int(r["requests"]) for r in rows} == {
        "": sent["whole"], "eu": sent["eu"], "fr": sent["fr"],
        "us": sent["us"]}
    rc, out, err = cli(h, "usage", "--platform", "acme", "--by", "package")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["PACKAGE", "REQUESTS"]
    assert lines[1].split()[:2] == ["hello", str(n)]
    assert "%d requests" % n in out
    rc, out, err = cli(h, "usage", "--platform", "acme", "--by", "user")
    assert rc == 2 and "--by" in err
    rc, out, err = cli(h, "usage", "--platform", "acme", "--from", "2026-99")
    assert rc == 1 and "400" in err
    rc, out, err = cli(h, "usage")
    assert rc == 2 and "--platform" in err


# -- crashes ------------------------------------------------------------------

def test_worker_killed_inside_flush_loses_nothing(make_host):
    h = make_host(workers=2, core=True, config=metering_config(),
                  env={"NNO_BILLING_FAILPOINT": "flush_kill"})
    h.start()
    h.platform("acme")
    k = key(h, "acme", ["features:*"])
    first = burst(h, "acme", [k] * 60)
    assert first[(k, 200)] == 60
    wait_total(h, "acme", 60)
    before = set(h.worker_pids())
    trigger = os.path.join(h.data, "billing-flush-kill")
    second = burst(h, "acme", [k] * 40)
    assert second[(k, 200)] == 40
    # At once, while the last of those counts wait for a flush, and with no
    # request in flight (the worker killed would reset it: not a count
    # lost, a request cut short).
    open(trigger, "w").close()
    # A flusher removed the trigger and killed its worker inside the
    # transaction; the master respawned it.
    deadline = time.time() + 10
    while os.path.exists(trigger) and time.time() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(trigger)
    h.wait_log(lambda e: e.get("msg") == "worker exited" and
               e.get("signal") == 9, timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline:
        now = set(h.worker_pids())
        if len(now) == 2 and now != before:
            break
        time.sleep(0.05)
    assert set(h.worker_pids()) != before
    body = wait_total(h, "acme", 100)
    time.sleep(5 * FLUSH_MS / 1000)
    _, _, again = usage(h, "acme")
    assert again["totals"] == body["totals"]
    assert again["totals"]["requests"] == 100


def test_host_killed_loses_at_most_one_interval(make_host):
    flush_ms = 1000
    h = make_host(workers=2, core=True, config=metering_config(flush_ms))
    h.start()
    h.platform("acme")
    k = key(h, "acme", ["features:*"])
    burst(h, "acme", [k] * 50)
    wait_total(h, "acme", 50)
    # Counted, not yet flushed (the flush interval is a second): then the
    # whole host dies at once.
    burst(h, "acme", [k] * 30)
    os.killpg(h.proc.pid, signal.SIGKILL)
    h.proc.wait()
    h.logf.close()
    # What the flushes had stored when the host died: the 50, and whatever
    # of the 30 a flush caught before the kill.
    db = sqlite3.connect(os.path.join(h.data, "billing.db"))
    stored = db.execute("SELECT coalesce(sum(requests), 0) FROM usage "
                        "WHERE platform = 'acme' AND class = 0").fetchone()[0]
    db.close()
    assert 50 <= stored <= 80
    h.start()
    time.sleep(3 * flush_ms / 1000)
    _, _, b = usage(h, "acme")
    total = b["totals"]["admitted"]
    # Lost: what was counted since the last flush (some of the 30),
    # nothing more; nothing counted twice.
    assert total == stored, b
    lost = 80 - total
    print("host killed: %d of 80 requests lost (flush interval %d ms)"
          % (lost, flush_ms))
    assert 0 <= lost <= 30, b
    assert b["totals"]["requests"] <= 80
    # The new host counts from zero, on top of what was stored.
    burst(h, "acme", [k] * 10)
    wait_total(h, "acme", total + 10, fields=("admitted",))


# -- the monthly quota ----------------------------------------------------------

def plan(h, name, **limits):
    body = {"name": name}
    body.update(limits)
    st, _, p = h.api("POST", "/plans", body)
    assert st == 201, p


def next_month_start():
    t = time.gmtime()
    y, m = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return ("%04d-%02d-01T00:00:00Z" % (y, m),
            calendar.timegm((y, m, 1, 0, 0, 0, 0, 0, 0)))


@pytest.fixture(scope="module")
def quota_host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("quota"), workers=2, core=True,
             config=metering_config())
    h.start()
    plan(h, "tiny", requests_per_month=10, soft_pct=50, grace_pct=0)
    plan(h, "roomy", requests_per_month=10, soft_pct=100, grace_pct=20)
    plan(h, "fifty", requests_per_month=50, soft_pct=100, grace_pct=0)
    yield h
    h.stop()


def get(h, pid, k):
    return h.request("GET", "/p/%s/hello" % pid, key=k)


def test_quota_boundary(quota_host):
    h = quota_host
    h.platform("qone", plan="tiny")
    k = key(h, "qone", ["features:*"])
    resets, reset_at = next_month_start()
    for i in range(1, 7):
        st, hd, _ = get(h, "qone", k)
        assert st == 200, (i, st)
        # Past soft_pct (50 % of 10): a warning from the 6th on.
        if i <= 5:
            assert "nno-quota-warning" not in hd, (i, hd)
        else:
            assert hd["nno-quota-warning"] == (
                "requests_per_month; used=%d; limit=10; resets=%s" %
                (i, resets))
    # The count survives the flush into the buckets, exactly.
    wait_total(h, "qone", 6)
    for i in range(7, 11):
        st, hd, _ = get(h, "qone", k)
        assert st == 200, (i, st)
        assert "used=%d;" % i in hd["nno-quota-warning"]
    # The 10th was the last admitted; the 11th and 12th are refused.
    for used in (10, 10):
        st, hd, body = get(h, "qone", k)
        assert st == 402, body
        assert hd["content-type"].startswith("application/problem+json")
        p = json.loads(body)
        assert p["type"].endswith("quota") and p["status"] == 402
        assert p["title"] == "Monthly request quota exceeded"
        assert p["limit"] == "requests_per_month" and p["plan"] == "tiny"
        assert p["quota"] == 10 and p["used"] == used
        assert p["resets_at"] == resets and p["request_id"]
        retry = int(hd["retry-after"])
        assert abs(retry - (reset_at - time.time())) < 5
    # Refused requests are not counted: 10 admitted, 10 ended 2xx.
    body = wait_total(h, "qone", 10)
    assert body["totals"]["2xx"] == 10 and body["totals"]["4xx"] == 0
    st, _, inv = h.api("GET", "/platforms/qone/invoice/preview")
    assert st == 200, inv
    assert inv["plan"] == "tiny"
    assert inv["requests"] == {"used": 10, "included": 10, "overage": 0}


def test_quota_grace(quota_host):
    h = quota_host
    h.platform("qtwo", plan="roomy")
    k = key(h, "qtwo", ["features:*"])
    for i in range(1, 11):
        st, hd, _ = get(h, "qtwo", k)
        assert st == 200 and "nno-quota-warning" not in hd, (i, hd)
    # 20 % grace: two more admitted, with the warning saying so.
    for i in (11, 12):
        st, hd, _ = get(h, "qtwo", k)
        assert st == 200, (i, st)
        w = hd["nno-quota-warning"]
        assert w.startswith("requests_per_month; used=%d; limit=10;" % i)
        assert w.endswith("; grace")
    st, hd, body = get(h, "qtwo", k)
    assert st == 402, body
    assert json.loads(body)["used"] == 12
    wait_total(h, "qtwo", 12)
    st, _, inv = h.api("GET", "/platforms/qtwo/invoice/preview")
    assert inv["requests"] == {"used": 12, "included": 10, "overage": 2}


def test_quota_concurrent_boundary(quota_host):
    h = quota_host
    h.platform("qthree", plan="fifty")
    keys = [key(h, "qthree", ["features:*"]) for _ in range(3)]
    got = burst(h, "qthree", keys * 40, threads=12)
    statuses = Counter()
    for (_, st), n in got.items():
        statuses[st] += n
    # Exactly the quota admitted, across both workers; the rest 402.
    assert statuses == {200: 50, 402: 70}, statuses
    pids, want = h.access_pids("/p/qthree/hello", 200)
    assert pids == want
    wait_total(h, "qthree", 50)


# -- configuration and shutdown -------------------------------------------------

def test_metering_off_counts_nothing_and_enforces_nothing(make_host):
    h = make_host(workers=2, core=True,
                  config=metering_config(enabled=False))
    h.start()
    plan(h, "tiny", requests_per_month=2, soft_pct=50, grace_pct=0)
    h.platform("acme", plan="tiny")
    k = key(h, "acme", ["features:*"])
    for _ in range(4):
        st, hd, _ = get(h, "acme", k)
        assert st == 200 and "nno-quota-warning" not in hd
    time.sleep(3 * FLUSH_MS / 1000)
    _, _, b = usage(h, "acme")
    assert b["totals"]["requests"] == 0 and b["totals"]["admitted"] == 0


@pytest.mark.parametrize("metering,words", [
    ({"flush_ms": 10}, "config.metering.flush_ms"),
    ({"flush_ms": "5000"}, "config.metering.flush_ms"),
    ({"enabled": 1}, "config.metering.enabled"),
    ({"storage_ms": 999}, "config.metering.storage_ms"),
    ({"flush": 5000}, 'config.metering: unknown key \\"flush\\"'),
    ("on", "config.metering: expected an object"),
])
def test_metering_config_refused(make_host, metering, words):
    h = make_host(workers=1, core=True,
                  config={"plugin_config": {"billing":
                                            {"metering": metering}}})
    with pytest.raises(RuntimeError):
        h.start()
    assert words in h.log_text()


def test_stop_is_clean(make_host):
    """The flush timer belongs to the host at shutdown: a worker that
    stopped it again aborted."""
    h = make_host(workers=2, core=True, config=metering_config())
    h.start()
    h.platform("acme")
    k = key(h, "acme", ["features:*"])
    burst(h, "acme", [k] * 20)
    wait_total(h, "acme", 20)
    assert h.stop() == 0
    assert "worker crashed" not in h.log_text()
    assert "SIGABRT" not in h.log_text()


def test_storage_sampled_per_resource(metered):
    h = metered[0]
    st, _, res = h.api("GET", "/platforms/acme/resources")
    assert st == 200, res
    sizes = {"%s:%s-%s" % (r["type"], r["stack"], r["name"]): r["size_bytes"]
             for r in res["items"]}
    assert sizes and sum(sizes.values()) > 0, res
    # Nothing writes to acme's resources meanwhile: the hour's sample (taken
    # again every second here) comes to what the resources route measures.
    deadline = time.time() + 10
    while True:
        _, _, b = usage(h, "acme")
        _, _, o = usage(h, "other")
        if (b["storage_bytes"] == sum(sizes.values()) and o["storage_bytes"]
                or time.time() > deadline):
            break
        time.sleep(0.05)
    assert b["storage_bytes"] == sum(sizes.values()), (b, sizes)
    st, _, inv = h.api("GET", "/platforms/acme/invoice/preview")
    assert inv["storage_bytes"]["used"] == sum(sizes.values())
    assert inv["storage_bytes"]["included"] > 0
    # The other platform has its own.
    assert o["storage_bytes"] > 0, o


def test_active_users(make_host):
    h = make_host(workers=2, core=True, config=metering_config())
    h.start()
    h.platform("users")
    st, _, b = h.api("PUT", "/platforms/users/access",
                     {"signup": True, "cors_origins": []})
    assert st in (200, 201, 204), b
    tokens = []
    for i in range(3):
        st, _, b = h.request(
            "POST", "/p/users/auth/sign-up",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"email": "u%d@example.com" % i,
                             "password": "correct horse battery"}).encode())
        assert st == 201, b
        tokens.append(json.loads(b)["token"])
    # Each user calls several times, through both workers: one each.
    for _ in range(4):
        for t in tokens:
            assert hello(h, "users", t) == 200
    deadline = time.time() + 10
    while True:
        _, _, b = usage(h, "users")
        if b["active_users"] == 3 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert b["active_users"] == 3, b
    time.sleep(3 * FLUSH_MS / 1000)
    st, _, inv = h.api("GET", "/platforms/users/invoice/preview")
    assert inv["users"]["active"] == 3, inv
    # An API key is no user.
    k = key(h, "users", ["features:*"])
    assert hello(h, "users", k) == 200
    time.sleep(3 * FLUSH_MS / 1000)
    _, _, b = usage(h, "users")
    assert b["active_users"] == 3
