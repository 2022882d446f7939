"""Billing's remaining operator paths, black box: platforms created before a
payment provider was configured (or before billing) get their customer and
subscription once when one is, across restarts; DELETE /api/v1/plans/{name}
and `nno plan delete` (a plan in use, the free, default and configured
plans kept; If-Match; audited); `nno platform suspend --reason`."""
import json
import os
import secrets
import subprocess
import time

import pytest

from conftest import NNO, Host
from stripe_stub import StripeStub
from test_billing_stripe import (account, customers, db, subscriptions,
                                 wait_for)

SK = "sk_test_" + secrets.token_hex(12)
VERSION = "2025-03-31.basil"
QUEUED = "queued the customer of"


def pending(h):
    with db(h) as c:
        return c.execute("SELECT count(*) FROM outbox"
                         " WHERE state != 'sent'").fetchone()[0]


def problem(resp, status, has=None):
    st, hd, body = resp
    assert st == status, resp
    assert hd["content-type"] == "application/problem+json", resp
    assert body["status"] == status and \
        body["request_id"] == hd["x-request-id"], resp
    if has is not None:
        assert has in body["detail"], body
    return body


def nno(h, *args):
    env = dict(os.environ, NNO_URL="http://127.0.0.1:%d" % h.port,
               NNO_DATA=h.data)
    return subprocess.run([NNO] + list(args), env=env, text=True,
                          capture_output=True, timeout=30)


def audit(h, action):
    st, _, page = h.api("GET", "/audit?limit=500")
    assert st == 200, page
    return [e for e in page["items"] if e["action"] == action]


def queued_counts(h, since=0):
    """The backfill's counts logged after byte `since` of the log."""
    out = []
    for line in h.log_text()[since:].splitlines():
        if QUEUED in line:
            e = json.loads(line)
            msg = e.get("msg") or e.get("message") or line
            out.append(int(msg.split(QUEUED)[1].split()[0]))
    return out


# ---- the provider backfill ----------------------------------------------------


def test_platforms_from_before_the_provider_get_one_customer(make_host):
    plans = {"gold": {"provider_price": "price_gold"}}
    h = make_host(workers=2, core=True,
                  config={"plugin_config": {"billing": {"plans": plans}}})
    h.start()
    for pid, plan in (("old-a", "free"), ("old-b", "gold"), ("old-c", "gold")):
        st, _, body = h.api("POST", "/platforms", {"id": pid, "name": pid,
                                                   "plan": plan})
        assert st == 201, body
    wait_for(lambda: all(account(h, p) for p in ("old-a", "old-b", "old-c")),
             what="the accounts")
    # `none` completes its jobs: nothing is left for a later provider
    wait_for(lambda: pending(h) == 0, what="the jobs done under none")
    assert h.stop() == 0
    # old-c as if it had been created before billing was installed
    with db(h) as c:
        c.execute("DELETE FROM accounts WHERE platform = 'old-c'")
        c.execute("DELETE FROM outbox WHERE platform = 'old-c'")

    stub = StripeStub(SK, VERSION, hold_s=2.5).start()
    try:
        h.config = {"plugin_config": {"billing": {
            "plans": plans, "provider": "stripe",
            "stripe": {"api_base": stub.url, "api_version": VERSION,
                       "timeout_ms": 2000, "backoff_base_ms": 50,
                       "backoff_max_ms": 400, "poll_ms": 50}}}}
        h.env = {"NNO_BILLING_STRIPE_SECRET_KEY": SK}
        since = len(h.log_text())
        h.start()
        wait_for(lambda: all((account(h, p) or {}).get("customer")
                             for p in ("old-a", "old-b", "old-c")),
                 what="the customers of the platforms made before stripe")
        wait_for(lambda: account(h, "old-b")["subscription"] and
                 account(h, "old-c")["subscription"], what="subscriptions")
        for pid in ("old-a", "old-b", "old-c"):
            assert len(customers(stub, pid)) == 1, pid
            assert account(h, pid)["customer"] == \
                customers(stub, pid)[0]["id"]
        assert subscriptions(stub, "old-a") == []  # free: nothing to charge
        for pid in ("old-b", "old-c"):
            ss = subscriptions(stub, pid)
            assert len(ss) == 1 and \
                ss[0]["params"]["items"] == {"0": {"price": "price_gold"}}, ss
        # logged with the count (summed over the workers that walked)
        wait_for(lambda: sum(queued_counts(h, since)) == 3, what="the log")
        assert h.stop() == 0

        # a second restart queues nothing again
        since = len(h.log_text())
        h.start()
        st, _, body = h.api("POST", "/platforms", {"id": "new-d",
                                                   "name": "new-d"})
        assert st == 201, body
        wait_for(lambda: (account(h, "new-d") or {}).get("customer"),
                 what="a new platform's customer")
        time.sleep(1.0)  # many backfill ticks (20 ms each) have passed
        for pid in ("old-a", "old-b", "old-c", "new-d"):
            assert len(customers(stub, pid)) == 1, pid
        assert len(subscriptions(stub, "old-b")) == 1
        assert queued_counts(h, since) == []
        with db(h) as c:
            assert c.execute("SELECT count(*) FROM outbox WHERE kind ="
                             " 'customer' AND state != 'sent'").fetchone()[0] \
                == 0
    finally:
        h.stop()
        stub.stop()


def test_the_walk_reaches_every_page_and_none_only_records(make_host):
    h = make_host(workers=2, core=True)
    h.start()
    ids = ["bulk-%03d" % i for i in range(205)]  # more than one page (200)
    for pid in ids:
        st, _, body = h.api("POST", "/platforms", {"id": pid, "name": pid})
        assert st == 201, body
    wait_for(lambda: pending(h) == 0, what="the jobs done under none")
    assert h.stop() == 0
    with db(h) as c:  # as if billing came after them
        c.execute("DELETE FROM accounts")
        jobs = c.execute("SELECT count(*) FROM outbox").fetchone()[0]
    h.start()

    def recorded():
        with db(h) as c:
            return c.execute("SELECT count(*) FROM accounts"
                             " WHERE provider = 'none'").fetchone()[0]
    wait_for(lambda: recorded() == len(ids), what="every account recorded")
    assert account(h, ids[-1])["plan"] == "free"
    with db(h) as c:  # `none` charges nothing: no job is queued for it
        assert c.execute("SELECT count(*) FROM outbox").fetchone()[0] == jobs


# ---- deleting a plan -----------------------------------------------------------


@pytest.fixture(scope="module")
def ph(tmp_path_factory):
    billing = {"plans": {"cfg-plan": {"users": 7}}, "default_plan": "pro"}
    h = Host(tmp_path_factory.mktemp("plandel"), workers=2, core=True,
             config={"plugin_config": {"billing": billing}})
    h.start()
    yield h
    h.stop()


def test_a_plan_in_use_is_never_deleted(ph):
    st, _, body = ph.api("POST", "/plans", {"name": "trial", "users": 3})
    assert st == 201, body
    for pid in ("use-1", "use-2"):
        st, _, body = ph.api("POST", "/platforms", {"id": pid, "name": pid,
                                                    "plan": "trial"})
        assert st == 201, body
    problem(ph.api("DELETE", "/plans/trial"), 409, has="2 platform(s)")
    assert ph.api("GET", "/plans/trial")[0] == 200
    st, _, body = ph.api("PATCH", "/platforms/use-1", {"plan": "free"})
    assert st == 200, body
    problem(ph.api("DELETE", "/plans/trial"), 409, has="1 platform(s)")
    st, _, body = ph.api("DELETE", "/platforms/use-2")
    assert st in (200, 202, 204), body
    wait_for(lambda: ph.api("GET", "/platforms/use-2")[0] == 404,
             what="use-2 gone")
    st, _, body = ph.api("DELETE", "/plans/trial")
    assert st == 204, body
    problem(ph.api("GET", "/plans/trial"), 404)


def test_configured_free_default_and_unknown_plans_are_refused(ph):
    problem(ph.api("DELETE", "/plans/cfg-plan"), 409,
            has="host configuration")
    problem(ph.api("DELETE", "/plans/free"), 409, has="never deleted")
    problem(ph.api("DELETE", "/plans/pro"), 409, has="default plan")
    problem(ph.api("DELETE", "/plans/no-such"), 404)
    problem(ph.api("DELETE", "/plans/Bad!"), 404)
    for name in ("cfg-plan", "free", "pro"):
        assert ph.api("GET", "/plans/" + name)[0] == 200
    assert audit(ph, "plan.delete") == [] or all(
        e["target"] not in ("plan:cfg-plan", "plan:free", "plan:pro")
        for e in audit(ph, "plan.delete"))


def test_delete_honours_if_match_and_is_audited_with_the_last_version(ph):
    st, _, body = ph.api("POST", "/plans", {"name": "gone", "users": 9})
    assert st == 201, body
    st, hd, body = ph.api("PATCH", "/plans/gone", {"users": 11})
    assert st == 200 and hd["etag"] == '"v2"', (st, hd, body)
    problem(ph.api("DELETE", "/plans/gone", headers={"If-Match": '"v1"'}),
            412, has='"v2"')
    assert ph.api("GET", "/plans/gone")[0] == 200
    # not the operator: refused
    st, _, body = ph.api("POST", "/platforms", {"id": "keyed",
                                                "name": "keyed"})
    assert st == 201, body
    k = ph.platform_key("keyed")
    problem(ph.api("DELETE", "/plans/gone", key=k["key"]), 403)
    assert ph.api("GET", "/plans/gone")[0] == 200
    st, _, body = ph.api("DELETE", "/plans/gone",
                         headers={"If-Match": '"v2"'})
    assert st == 204 and body is None, body
    problem(ph.api("GET", "/plans/gone"), 404)
    rows = [e for e in audit(ph, "plan.delete") if e["target"] == "plan:gone"]
    assert len(rows) == 1, rows
    last = rows[0]["detail"]["plan"]
    assert last["name"] == "gone" and last["version"] == 2 and \
        last["users"] == 11, last
    assert rows[0]["actor"] == "operator"
    # gone from every worker: a platform cannot be put on it
    problem(ph.api("POST", "/platforms", {"id": "late", "name": "late",
                                          "plan": "gone"}), 422)


def test_cli_plan_delete(ph):
    st, _, body = ph.api("POST", "/plans", {"name": "cli-del"})
    assert st == 201, body
    r = nno(ph, "plan", "delete", "cli-del")
    assert r.returncode == 0, r
    assert r.stdout.strip() == "deleted plan cli-del", r
    assert ph.api("GET", "/plans/cli-del")[0] == 404
    r = nno(ph, "plan", "delete", "cli-del")
    assert r.returncode != 0 and "no plan" in r.stderr, r
    r = nno(ph, "plan", "delete", "free")
    assert r.returncode != 0 and "never deleted" in r.stderr, r
    r = nno(ph, "plan", "delete", "--help")
    assert r.returncode == 0 and "nno plan delete" in r.stdout, r


# ---- nno platform suspend --reason -------------------------------------------------


def test_cli_suspend_reason_reaches_the_audit_row(ph):
    st, _, body = ph.api("POST", "/platforms", {"id": "susp", "name": "susp"})
    assert st == 201, body
    r = nno(ph, "platform", "suspend", "susp", "--reason",
            "invoice 2026-11 unpaid")
    assert r.returncode == 0, r
    assert ph.api("GET", "/platforms/susp")[2]["status"] == "suspended"
    rows = [e for e in audit(ph, "platform.suspend")
            if e["target"] == "platform:susp"]
    assert len(rows) == 1, rows
    assert rows[0]["detail"]["reason"] == "invoice 2026-11 unpaid", rows
    # bounded: refused before anything is sent
    r = nno(ph, "platform", "resume", "susp")
    assert r.returncode == 0, r
    r = nno(ph, "platform", "suspend", "susp", "--reason", "x" * 257)
    assert r.returncode != 0 and "--reason" in r.stderr, r
    r = nno(ph, "platform", "suspend", "susp", "--reason", "")
    assert r.returncode != 0 and "--reason" in r.stderr, r
    assert ph.api("GET", "/platforms/susp")[2]["status"] == "active"
    # 256 bytes is the bound, not past it
    r = nno(ph, "platform", "suspend", "susp", "--reason", "y" * 256)
    assert r.returncode == 0, r
    r = nno(ph, "platform", "suspend", "--help")
    assert r.returncode == 0 and "--reason" in r.stdout, r
