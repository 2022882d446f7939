"""Metering at its limits: a full meter table never disables another
platform's quota (per-tenant keys stop at half the table; a platform whose
count cannot be kept is refused 503), requests a rate limit refuses after
admission do not consume the quota, an anonymous 402 names no plan or
counts, only feature routes are metered, the 402's status line, and the
usage report's parameters."""
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Host
from test_billing_meter import (cli, key, metering_config, plan, tenant,
                                usage, wait_total)


def config(**limits):
    c = metering_config()
    if limits:
        c["limits"] = limits
    return c


def metrics(h):
    st, _, text = h.request("GET", "/metrics")
    assert st == 200
    out = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.partition(" ")
            out[name] = v
    return out


def hello(h, pid, k):
    return h.request("GET", "/p/%s/hello" % pid, key=k)


def test_full_meter_table_keeps_other_quotas(tmp_path):
    h = Host(tmp_path, workers=2, core=True, config=config(meter_slots=64))
    h.start()
    try:
        plan(h, "open", requests_per_month=0, api_keys=0)
        plan(h, "five", requests_per_month=5, soft_pct=100, grace_pct=0)
        h.platform("pone", plan="open")
        for i in range(70):
            tenant(h, "pone", "t%d" % i)
            k = key(h, "pone", ["features:*"], tenant="t%d" % i)
            st, _, _ = hello(h, "pone", k)
            assert st == 200, i
        m = metrics(h)
        # Per-tenant keys stopped at half the table: nothing was refused.
        assert int(m["nno_meter_slots_used"]) <= 40, m
        assert m["nno_meter_full_total"] == "0", m
        # All 70 requests still counted, in the platform's own rows.
        body = wait_total(h, "pone", 70)
        assert body["totals"]["2xx"] == 70
        h.platform("ptwo", plan="five")
        k2 = key(h, "ptwo", ["features:*"])
        got = [hello(h, "ptwo", k2)[0] for _ in range(9)]
        assert got == [200] * 5 + [402] * 4, got
        wait_total(h, "ptwo", 5, fields=("admitted",))
        # Fill the table with platforms: the first whose count cannot be
        # kept is refused, never served uncounted.
        seen = None
        for i in range(64):
            pid = "pf%d" % i
            h.platform(pid, plan="five")
            kf = key(h, pid, ["features:*"])
            st, hd, b = hello(h, pid, kf)
            if st == 503:
                seen = (pid, hd, json.loads(b))
                break
            assert st == 200, (pid, st, b)
        assert seen, "the table never filled"
        pid, hd, p = seen
        assert hd["content-type"].startswith("application/problem+json")
        assert "metering" in p["title"].lower() and p["request_id"], p
        assert int(hd["retry-after"]) > 0
        st, _, _ = hello(h, pid, kf)
        assert st == 503
        m = metrics(h)
        assert int(m['nno_plugin_counter{name="billing.meter_refused"}']) \
            == 2, m
        # ptwo is still held at exactly its quota.
        assert hello(h, "ptwo", k2)[0] == 402
        assert h.wait_log(lambda e: "cannot count for platform %s" % pid
                          in str(e))
    finally:
        h.stop()


@pytest.fixture(scope="module")
def anon_host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("anon"), workers=2, core=True,
             config=config())
    h.start()
    h.platform("params")
    yield h
    h.stop()


def sign_in(h, pid):
    body = json.dumps({"email": "nobody@example.com",
                       "password": "not-the-password"}).encode()
    return h.request("POST", "/p/%s/auth/sign-in" % pid, body=body,
                     headers={"Content-Type": "application/json"})


def test_rate_limited_requests_do_not_consume_quota(anon_host):
    h = anon_host
    plan(h, "victimplan", requests_per_month=50, soft_pct=100, grace_pct=0,
         rates={"anonymous": {"rate": 1, "burst": 1}})
    h.platform("victim", plan="victimplan")
    k = key(h, "victim", ["features:*"])

    def run(_):
        return [sign_in(h, "victim")[0] for _ in range(10)]
    with ThreadPoolExecutor(10) as ex:
        got = Counter(s for part in ex.map(run, range(10)) for s in part)
    assert got[402] == 0, got
    assert got[429] > 0, got
    served = sum(n for st, n in got.items() if st != 429)
    # Only what got past the rate limit is admitted; the quota is intact.
    body = wait_total(h, "victim", served, refunds=True)
    assert body["totals"]["4xx"] == served, body
    assert hello(h, "victim", k)[0] == 200
    st, _, inv = h.api("GET", "/platforms/victim/invoice/preview")
    assert st == 200 and inv["requests"]["used"] == served + 1, inv


def test_anonymous_402_names_no_plan_or_counts(anon_host):
    h = anon_host
    plan(h, "secretplan", requests_per_month=2, soft_pct=100, grace_pct=0)
    h.platform("quiet", plan="secretplan")
    assert [sign_in(h, "quiet")[0] for _ in range(2)] == [401, 401]
    st, hd, b = sign_in(h, "quiet")
    assert st == 402, b
    p = json.loads(b)
    assert p["limit"] == "requests_per_month" and p["resets_at"], p
    assert p["request_id"] and hd["retry-after"]
    for member in ("plan", "used", "quota"):
        assert member not in p, p
    assert "secretplan" not in b.decode()
    # A key of the platform still sees the whole problem.
    k = key(h, "quiet", ["features:*"])
    st, _, b = hello(h, "quiet", k)
    p = json.loads(b)
    assert st == 402 and p["plan"] == "secretplan" and p["quota"] == 2, p


def test_402_status_line(anon_host):
    h = anon_host
    plan(h, "zero", requests_per_month=1, soft_pct=100, grace_pct=0)
    h.platform("broke", plan="zero")
    k = key(h, "broke", ["features:*"])
    assert hello(h, "broke", k)[0] == 200
    out = h.raw(("GET /p/broke/hello HTTP/1.1\r\nHost: nno.localhost\r\n"
                 "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                 % k).encode())
    assert out.startswith(b"HTTP/1.1 402 Payment Required\r\n"), out[:80]


def test_core_api_is_not_metered(anon_host):
    h = anon_host
    h.platform("coreonly")
    k = key(h, "coreonly", ["features:*", "platform:read"])
    for _ in range(3):
        st, _, b = h.api("GET", "/platforms/coreonly", key=k)
        assert st == 200, b
    assert hello(h, "coreonly", k)[0] == 200
    body = wait_total(h, "coreonly", 1)
    # Give a late flush its chance: still only the feature route.
    time.sleep(0.5)
    st, _, b = usage(h, "coreonly")
    assert st == 200 and b["totals"]["admitted"] == 1, b
    assert body["totals"]["requests"] == 1


@pytest.mark.parametrize("query,field", [
    ("from=%00", "from"),
    ("from=2026-13-01", "from"),
    ("from=", "from"),
    ("to=", "to"),
    ("by=", "by"),
    ("by=tenant&by=package", "by"),
    ("from=2026-12-01&from=2026-12-02", "from"),
    ("from=" + "9" * 40, "from"),
])
def test_usage_parameters_one_error_status(anon_host, query, field):
    h = anon_host
    st, hd, b = h.api("GET", "/platforms/params/usage?" + query)
    assert st == 400, b
    assert hd["content-type"].startswith("application/problem+json")
    assert b["field"] == field and b["request_id"], b


def test_cli_usage_by_hour_csv_has_admitted(anon_host):
    h = anon_host
    h.platform("hours")
    k = key(h, "hours", ["features:*"])
    for _ in range(3):
        assert hello(h, "hours", k)[0] == 200
    wait_total(h, "hours", 3)
    rc, out, err = cli(h, "usage", "--platform", "hours", "--by", "hour",
                       "--csv")
    assert rc == 0, err
    lines = out.split("\r\n")
    assert lines[0] == "hour,requests,1xx,2xx,3xx,4xx,5xx,admitted", lines
    assert lines[1].endswith(",3,0,0,0,3"), lines
    rc, out, err = cli(h, "usage", "--platform", "hours", "--by", "tenant")
    assert rc == 0, err
    assert out.split()[:7] == ["TENANT", "REQUESTS", "1XX", "2XX", "3XX",
                               "4XX", "5XX"], out
