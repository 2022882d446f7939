"""Billing's Stripe provider against the contract stub (stripe_stub.py):
customers and subscriptions kept in step with the registry exactly once,
usage buckets as meter events exactly once under injected faults, failed
jobs listed and retried, the webhook endpoint's signature checks and the
events it applies (plan changes, payment failed → suspended after grace →
paid → resumed), and no secret in the host's log."""
import copy
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time

import pytest

from conftest import Host
from stripe_stub import StripeStub

SK = "sk_test_" + secrets.token_hex(12)
WH = "whsec_" + secrets.token_hex(12)
VERSION = "2025-03-31.basil"
WEBHOOK = "/api/v1/billing/webhooks/stripe"
REFUSED = "the Stripe-Signature header does not verify"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stripe")
    stub = StripeStub(SK, VERSION, hold_s=2.5).start()
    billing = {
        "provider": "stripe",
        "plans": {
            "gold": {"provider_price": "price_gold", "grace_days": 0},
            "silver": {"provider_price": "price_silver", "grace_days": 2},
        },
        "stripe": {
            "api_base": stub.url + "/",
            # the environment's key wins: this one would be refused
            "secret_key": "sk_test_not_this_one",
            "webhook_secret": WH,
            "api_version": VERSION,
            "meter_event": "nno_requests",
            "timeout_ms": 1000,
            "backoff_base_ms": 50,
            "backoff_max_ms": 400,
            "poll_ms": 50,
            "usage_scan_ms": 200,
            "grace_check_ms": 200,
        },
    }
    # the host's configuration over billing's manifest (plugin_config)
    h = Host(tmp, workers=2, core=True,
             config={"plugin_config": {"billing": billing}},
             env={"NNO_BILLING_STRIPE_SECRET_KEY": SK})
    h.start()
    h.stub = stub
    yield h
    h.stop()
    stub.stop()


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def db(h):
    c = sqlite3.connect(os.path.join(h.data, "billing.db"), timeout=10,
                        isolation_level=None)
    c.row_factory = sqlite3.Row
    return c


def account(h, pid):
    with db(h) as c:
        r = c.execute("SELECT * FROM accounts WHERE platform = ?",
                      (pid,)).fetchone()
        return dict(r) if r else None


def jobs(h, pid):
    with db(h) as c:
        return [dict(r) for r in c.execute(
            "SELECT * FROM outbox WHERE platform = ? ORDER BY rowid", (pid,))]


def settled(h, pid):
    """Every job of `pid` sent."""
    js = jobs(h, pid)
    return js and all(j["state"] == "sent" for j in js)


def platform(h, pid, plan):
    st, _, body = h.api("POST", "/platforms", {"id": pid, "name": pid,
                                               "plan": plan})
    assert st == 201, body


def set_plan(h, pid, plan):
    st, _, body = h.api("PATCH", "/platforms/" + pid, {"plan": plan})
    assert st == 200, body


def status(h, pid):
    st, _, body = h.api("GET", "/platforms/" + pid)
    assert st == 200, body
    return body["status"]


def customers(stub, pid):
    return [e for e in stub.entries("POST", "/v1/customers")
            if e["params"].get("metadata", {}).get("platform") == pid]


def subscriptions(stub, pid):
    return [e for e in stub.entries("POST", "/v1/subscriptions")
            if e["path"] == "/v1/subscriptions"
            and e["params"].get("metadata", {}).get("platform") == pid]


def problem(resp, status_):
    st, hd, body = resp
    assert st == status_, resp
    assert hd["content-type"] == "application/problem+json", resp
    body = json.loads(body) if isinstance(body, bytes) else body
    assert body["status"] == status_ and body["request_id"] == \
        hd["x-request-id"], resp
    return body


# ---- customers and subscriptions ------------------------------------------


def test_platform_gets_one_customer_and_one_subscription_despite_faults(env):
    h, stub = env, env.stub
    stub.fault("POST", "/v1/customers", "500")
    stub.fault("POST", "/v1/customers", "429")
    stub.fault("POST", "/v1/subscriptions", "timeout")
    replays = stub.replays
    platform(h, "acme", "gold")
    a = wait_for(lambda: (account(h, "acme") or {}).get("subscription"),
                 what="acme's subscription") and account(h, "acme")
    wait_for(lambda: settled(h, "acme"), what="acme's jobs sent")
    cs, ss = customers(stub, "acme"), subscriptions(stub, "acme")
    assert len(cs) == 1 and len(ss) == 1, (cs, ss)
    assert a["customer"] == cs[0]["id"] and a["subscription"] == ss[0]["id"]
    assert cs[0]["params"]["name"] == "acme"
    assert ss[0]["params"]["customer"] == a["customer"]
    assert ss[0]["params"]["items"] == {"0": {"price": "price_gold"}}
    # the timed-out create went again under its key and was answered as
    # the first time, not applied twice
    assert stub.replays > replays
    js = jobs(h, "acme")
    assert [j["kind"] for j in js] == ["customer", "subscription"]
    # (at least: a slow machine may time out more calls than the stub held)
    assert js[0]["attempts"] >= 3 and js[1]["attempts"] >= 2, js
    # each job's attempts carried its own id as the Idempotency-Key
    assert cs[0]["key"] == js[0]["id"] and ss[0]["key"] == js[1]["id"]
    refused = [r["status"] for r in stub.refused
               if r["path"] == "/v1/customers"]
    assert sorted(refused) == [429, 500], stub.refused


def test_plan_change_moves_the_subscription_and_a_free_plan_cancels_it(env):
    h, stub = env, env.stub
    platform(h, "bolt", "gold")
    wait_for(lambda: settled(h, "bolt") and account(h, "bolt")["subscription"],
             what="bolt subscribed")
    sub = account(h, "bolt")["subscription"]
    set_plan(h, "bolt", "silver")
    wait_for(lambda: settled(h, "bolt") and len(jobs(h, "bolt")) == 3)
    ups = stub.entries("POST", "/v1/subscriptions/" + sub)
    assert len(ups) == 1, ups
    item = stub.subscriptions[sub]["items"]["data"][0]
    assert ups[0]["params"]["items"] == {"0": {"id": item["id"],
                                               "price": "price_silver"}}
    assert account(h, "bolt")["subscription"] == sub
    # free has no provider price: the subscription is canceled
    set_plan(h, "bolt", "free")
    wait_for(lambda: settled(h, "bolt") and len(jobs(h, "bolt")) == 4)
    assert stub.subscriptions[sub]["status"] == "canceled"
    assert len(stub.entries("DELETE", "/v1/subscriptions/" + sub)) == 1
    assert account(h, "bolt")["subscription"] == ""
    # back on a paid plan: a new subscription for the same customer
    set_plan(h, "bolt", "gold")
    wait_for(lambda: account(h, "bolt")["subscription"] not in ("", sub))
    assert len(customers(stub, "bolt")) == 1
    assert len(subscriptions(stub, "bolt")) == 2


# ---- usage ------------------------------------------------------------------


def test_usage_buckets_become_meter_events_exactly_once_under_faults(env):
    h, stub = env, env.stub
    platform(h, "cargo", "gold")
    wait_for(lambda: settled(h, "cargo"), what="cargo's customer")
    cus = account(h, "cargo")["customer"]
    now = int(time.time())
    this_hour = now - now % 3600
    hours = [this_hour - k * 3600 for k in range(2, 8)]
    want = {}
    with db(h) as c:
        # one transaction, as a flush writes: a scan sees whole buckets
        c.execute("BEGIN IMMEDIATE")
        for i, hr in enumerate(hours):
            for tenant, pkg, cls, n in (("", "", 0, 10 + i), ("t1", "", 0, 5),
                                        ("", "notes", 0, 1), ("", "", 2, 99)):
                c.execute("INSERT INTO usage (platform, hour, tenant, package,"
                          " class, requests) VALUES (?, ?, ?, ?, ?, ?)",
                          ("cargo", hr, tenant, pkg, cls, n))
            want["usage-cargo-%d" % hr] = 16 + i
        # the hour still open, and a platform with no customer
        c.execute("INSERT INTO usage (platform, hour, class, requests)"
                  " VALUES ('cargo', ?, 0, 7)", (this_hour,))
        c.execute("INSERT INTO usage (platform, hour, class, requests)"
                  " VALUES ('ghost', ?, 0, 7)", (hours[0],))
        c.execute("COMMIT")
    for kind in ("429", "500", "timeout", "429", "500", "timeout"):
        stub.fault("POST", "/v1/billing/meter_events", kind)

    def mine():
        return [e for e in stub.entries("POST", "/v1/billing/meter_events")
                if e["params"]["payload"]["stripe_customer_id"] == cus]
    wait_for(lambda: len(mine()) >= len(want) and settled(h, "cargo"),
             timeout=40, what="cargo's meter events")
    time.sleep(1.0)  # more scans and ticks: nothing more may go out
    events = mine()
    got = {e["params"]["identifier"]: int(e["params"]["payload"]["value"])
           for e in events}
    assert len(events) == len(want) and got == want, (events, want)
    for e in events:
        hr = int(e["params"]["identifier"].rsplit("-", 1)[1])
        assert e["params"]["timestamp"] == str(hr)
        assert e["params"]["event_name"] == "nno_requests"
        assert e["key"] == e["params"]["identifier"]
    assert len(stub.meter_events) == len(
        [e for e in stub.entries("POST", "/v1/billing/meter_events")])
    assert not [j for j in jobs(h, "ghost")]


# ---- failed jobs --------------------------------------------------------------


def test_refused_job_is_listed_blocks_what_follows_and_is_retried(env):
    h, stub = env, env.stub
    stub.fault("POST", "/v1/customers", "400")
    platform(h, "haven", "gold")

    def failed():
        st, _, body = h.api("GET", "/billing/outbox?state=failed")
        assert st == 200, body
        return [j for j in body["items"] if j["platform"] == "haven"]
    f = wait_for(failed, what="haven's failed job")
    assert len(f) == 1 and f[0]["kind"] == "customer"
    assert "Injected refusal" in f[0]["last_error"]
    time.sleep(0.5)  # the subscription waits for its customer
    assert subscriptions(stub, "haven") == []
    assert [j["state"] for j in jobs(h, "haven")] == ["failed", "pending"]
    # operator only, and checked parameters
    key = h.platform_key("haven", scopes=["*"])["key"]
    st, _, _ = h.api("GET", "/billing/outbox?state=failed", key=key)
    assert st in (401, 403)
    problem(h.api("GET", "/billing/outbox?state=bogus"), 400)
    problem(h.api("POST", "/billing/outbox/nope/retry"), 404)
    st, _, body = h.api("POST", "/billing/outbox/%s/retry" % f[0]["id"])
    assert st == 200 and body["state"] == "pending", body
    wait_for(lambda: settled(h, "haven"), what="haven after the retry")
    assert len(customers(stub, "haven")) == 1
    assert len(subscriptions(stub, "haven")) == 1
    problem(h.api("POST", "/billing/outbox/%s/retry" % f[0]["id"]), 409)


# ---- webhooks -----------------------------------------------------------------


def sign(body, t=None, secret=WH):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256)
    return "t=%d,v1=%s" % (t, mac.hexdigest())


def flip_last(sig):
    """`sig` with its last hex digit changed."""
    return sig[:-1] + ("1" if sig[-1] == "0" else "0")


def event(stub, type_, obj, eid=None):
    e = copy.deepcopy(stub.fixtures["event"])
    e.update(id=eid or "evt_" + secrets.token_hex(8), type=type_,
             created=int(time.time()), data={"object": obj})
    return json.dumps(e).encode()


def post(h, body, sig):
    headers = {"Content-Type": "application/json"}
    if sig is not None:
        headers["Stripe-Signature"] = sig
    st, hd, data = h.request("POST", WEBHOOK, headers=headers, body=body)
    return st, hd, (json.loads(data) if data else None)


def test_webhook_signature_checks(env):
    h, stub = env, env.stub
    body = event(stub, "balance.available", {"object": "balance"})
    now = int(time.time())
    bad = sign(body, secret="whsec_other")
    details = set()
    for sig in (None, "", bad, sign(body, t=now - 301),
                sign(body, t=now + 301), "t=abc,v1=zz", "v1=" + "0" * 64,
                flip_last(sign(body)), sign(body + b" ")):
        details.add(problem(post(h, body, sig), 400)["detail"])
    assert details == {REFUSED}
    # any of several v1 may match; other schemes are ignored
    good = sign(body).split(",")[1]
    st, _, ans = post(h, body, "t=%d,v0=abc,%s,%s" % (
        now, bad.split(",")[1], good))
    assert st == 200 and ans["outcome"] == "ignored", ans
    # a signed body that is not an event
    problem(post(h, b"[1,2]", sign(b"[1,2]")), 400)
    # the bound
    big = json.dumps({"id": "evt_big", "type": "x", "data": {"object": {
        "pad": "x" * (256 * 1024)}}}).encode()
    problem(post(h, big, sign(big)), 413)


def wait_status(h, pid, want):
    wait_for(lambda: status(h, pid) == want, timeout=10,
             what="%s %s" % (pid, want))


def subscription_obj(stub, sub, price):
    s = copy.deepcopy(stub.subscriptions[sub])
    s["items"]["data"][0]["price"]["id"] = price
    return s


def test_webhook_subscription_events_apply_once(env):
    h, stub = env, env.stub
    platform(h, "dock", "gold")
    wait_for(lambda: settled(h, "dock") and account(h, "dock")["subscription"])
    sub = account(h, "dock")["subscription"]
    body = event(stub, "customer.subscription.updated",
                 subscription_obj(stub, sub, "price_silver"), eid="evt_dock1")
    st, _, ans = post(h, body, sign(body))
    assert st == 200 and ans["outcome"] == "plan silver", ans
    st, _, p = h.api("GET", "/platforms/dock")
    assert p["plan"] == "silver"
    st, _, audit = h.api("GET", "/audit")
    rows = [r for r in audit["items"] if r.get("target") == "platform:dock"
            and r.get("action") == "platform.plan"]
    assert rows and rows[0]["actor"] == "billing", rows
    # the change came from Stripe: nothing is sent back for it
    time.sleep(0.5)
    assert len(jobs(h, "dock")) == 2 and settled(h, "dock")
    # the operator moves it back; the same event again changes nothing
    set_plan(h, "dock", "gold")
    wait_for(lambda: len(jobs(h, "dock")) == 3 and settled(h, "dock"))
    st, _, ans = post(h, body, sign(body))
    assert st == 200 and ans.get("duplicate") is True, ans
    assert h.api("GET", "/platforms/dock")[2]["plan"] == "gold"
    # an unknown price is acknowledged and ignored
    other = event(stub, "customer.subscription.updated",
                  subscription_obj(stub, sub, "price_unknown"))
    st, _, ans = post(h, other, sign(other))
    assert st == 200 and ans["outcome"] == "unknown price"
    # deleted: back to the default plan
    gone = event(stub, "customer.subscription.deleted",
                 subscription_obj(stub, sub, "price_gold"))
    st, _, ans = post(h, gone, sign(gone))
    assert st == 200, ans
    assert h.api("GET", "/platforms/dock")[2]["plan"] == "free"
    assert account(h, "dock")["subscription"] == ""


def invoice(stub, h, pid, type_):
    inv = copy.deepcopy(stub.fixtures["invoice"])
    inv.update(id="in_" + secrets.token_hex(6),
               customer=account(h, pid)["customer"])
    body = event(stub, type_, inv)
    st, _, ans = post(h, body, sign(body))
    assert st == 200, ans
    return ans


def test_payment_failed_suspends_after_grace_and_paid_resumes(env):
    h, stub = env, env.stub
    for pid, plan in (("echo", "gold"), ("fjord", "silver"),
                      ("gale", "gold")):
        platform(h, pid, plan)
    for pid in ("echo", "fjord", "gale"):
        wait_for(lambda: settled(h, pid) and account(h, pid)["customer"])
    # gold: no grace, suspended at once; paid: resumed
    invoice(stub, h, "echo", "invoice.payment_failed")
    wait_status(h, "echo", "suspended")
    assert account(h, "echo")["suspended_by_billing"] == 1
    invoice(stub, h, "echo", "invoice.paid")
    wait_status(h, "echo", "active")
    a = account(h, "echo")
    assert a["payment"] == "ok" and a["suspended_by_billing"] == 0
    # silver: two days of grace; still active after several checks
    invoice(stub, h, "fjord", "invoice.payment_failed")
    time.sleep(1.0)
    assert status(h, "fjord") == "active"
    assert account(h, "fjord")["payment"] == "failed"
    with db(h) as c:
        c.execute("UPDATE accounts SET failed_at = ? WHERE platform = 'fjord'",
                  (int(time.time()) - 2 * 86400 - 5,))
    wait_status(h, "fjord", "suspended")
    invoice(stub, h, "fjord", "invoice.paid")
    wait_status(h, "fjord", "active")
    # suspended by the operator: billing neither takes it over nor resumes
    st, _, body = h.api("POST", "/platforms/gale/suspend", {})
    assert st == 200, body
    invoice(stub, h, "gale", "invoice.payment_failed")
    time.sleep(0.6)
    assert account(h, "gale")["suspended_by_billing"] == 0
    invoice(stub, h, "gale", "invoice.paid")
    time.sleep(0.6)
    assert status(h, "gale") == "suspended"


# ---- last: what the log holds -------------------------------------------------


def test_zz_no_secret_in_the_log_or_the_store(env):
    h = env
    platform(h, "ibis", "gold")
    wait_for(lambda: settled(h, "ibis"), what="ibis's jobs sent")
    text = h.log_text()
    assert "payment provider stripe" in text
    for s in (SK, WH, "sk_test", "whsec_"):
        assert s not in text
    with db(h) as c:
        rows = c.execute("SELECT last_error FROM outbox").fetchall()
    for r in rows:
        assert "sk_" not in r[0] and "whsec_" not in r[0]
    # the stub saw no breach of its contract but the injected ones
    injected = {"Injected refusal", "Too many requests", "An unknown error"}
    assert {r["error"] for r in h.stub.refused} <= injected, h.stub.refused


def test_host_stops_cleanly_with_the_provider_on(make_host):
    """Drained with jobs due and calls in flight: every worker exits
    without a crash."""
    stub = StripeStub(SK, VERSION, hold_s=5).start()
    try:
        h = make_host(workers=2, core=True, config={"plugin_config": {
            "billing": {"provider": "stripe", "stripe": {
                "api_base": stub.url, "secret_key": SK,
                "api_version": VERSION, "poll_ms": 50}}}})
        h.start()
        stub.fault("POST", "/v1/customers", "timeout")
        platform(h, "jolt", "pro")
        wait_for(lambda: stub.entries("POST", "/v1/customers"))
        assert h.stop() == 0
        text = h.log_text()
        assert "worker crashed" not in text and "SIGABRT" not in text, text
    finally:
        stub.stop()


def test_provider_none_completes_jobs_at_once_and_takes_no_webhook(make_host):
    """The embedded default: accounts kept, every job done with no call,
    and the webhook endpoint not configured."""
    h = make_host(workers=1, core=True)
    h.start()
    platform(h, "kilo", "pro")
    wait_for(lambda: settled(h, "kilo"), what="kilo's jobs done")
    a = account(h, "kilo")
    assert a["plan"] == "pro" and a["customer"] == "" and \
        a["subscription"] == ""
    body = b'{"id":"evt_1","type":"invoice.paid","data":{"object":{}}}'
    problem(post(h, body, sign(body)), 503)
    set_plan(h, "kilo", "free")
    wait_for(lambda: account(h, "kilo")["plan"] == "free" and
             settled(h, "kilo"))
    st, _, _ = h.api("DELETE", "/platforms/kilo")
    assert st in (200, 202, 204)
    wait_for(lambda: account(h, "kilo") is None, what="kilo's account gone")
