"""Plans' rules at their edges: a provider price belongs to one plan (API and
configuration), a configured plan overlays only the fields it gives on a
stored one, rates have a floor, any media type is read as JSON like the
registry's routes, and serve --check names a core plugin's failure as the
core plugin's, not as a stack's."""
import os
import subprocess

import pytest

from conftest import BUILD


def problem(resp, status, field=None, has=None):
    st, hd, body = resp
    assert st == status, resp
    assert hd["content-type"] == "application/problem+json", resp
    assert body["status"] == status and body["request_id"], body
    if field is not None:
        assert body.get("field") == field, body
    if has is not None:
        assert has in body["detail"], body
    return body


def plans(h):
    st, _, page = h.api("GET", "/plans")
    assert st == 200, page
    return page["items"]


def test_a_price_belongs_to_one_plan(make_host):
    h = make_host(workers=2, core=True, config={"plugin_config": {
        "billing": {"plans": {"gold": {"provider_price": "price_gold"}}}}})
    h.start()
    st, _, p = h.api("PATCH", "/plans/pro", {"provider_price": "price_pro"})
    assert st == 200 and p["provider_price"] == "price_pro", p
    before = plans(h)
    # a stored plan's price, on create and on change
    problem(h.api("POST", "/plans", {"name": "pro2",
                                     "provider_price": "price_pro"}),
            422, "provider_price", 'plan "pro"')
    problem(h.api("PATCH", "/plans/free", {"provider_price": "price_pro"}),
            422, "provider_price", 'plan "pro"')
    # a configured plan's price
    problem(h.api("POST", "/plans", {"name": "gold2",
                                     "provider_price": "price_gold"}),
            422, "provider_price", 'plan "gold"')
    problem(h.api("PATCH", "/plans/unmetered",
                  {"provider_price": "price_gold"}),
            422, "provider_price", 'plan "gold"')
    assert plans(h) == before
    # its own price again, and "" for many plans, are fine
    st, _, p = h.api("PATCH", "/plans/pro", {"provider_price": "price_pro",
                                             "users": 5})
    assert st == 200 and p["users"] == 5, p
    assert h.api("POST", "/plans", {"name": "np1"})[0] == 201
    assert h.api("POST", "/plans", {"name": "np2",
                                    "provider_price": ""})[0] == 201


def test_two_configured_plans_with_one_price_stop_the_start(make_host):
    h = make_host(workers=1, core=True, config={"plugin_config": {
        "billing": {"plans": {"a1": {"provider_price": "price_same"},
                              "b1": {"provider_price": "price_same"}}}}})
    with pytest.raises(RuntimeError):
        h.start()
    log = h.log_text().replace("\\", "")
    assert '"price_same"' in log and 'plan "a1"' in log, log[-2000:]


def test_a_configured_plan_overlays_a_stored_one(make_host):
    """The README's example: pro gets 200 keys and a key rate, and keeps
    its 10M requests and every other stored value; a plan new to the
    table takes the free plan's for what it does not give."""
    h = make_host(workers=2, core=True, config={"plugin_config": {
        "billing": {"plans": {
            "pro": {"api_keys": 200,
                    "rates": {"key": {"rate": 800, "burst": 1600}}},
            "edge": {"users": 3}},
            "default_plan": "pro"}}})
    h.start()
    st, _, pro = h.api("GET", "/plans/pro")
    assert st == 200 and pro["source"] == "config", pro
    assert pro["api_keys"] == 200
    assert pro["rates"]["key"] == {"rate": 800, "burst": 1600}
    assert pro["requests_per_month"] == 10000000
    assert pro["storage_bytes"] == 10 << 30 and pro["users"] == 100000
    assert pro["rates"]["platform"] == {"rate": 2000, "burst": 4000}
    assert pro["grace_pct"] == 10 and pro["grace_days"] == 14
    edge = h.api("GET", "/plans/edge")[2]
    assert edge["users"] == 3 and edge["requests_per_month"] == 100000, edge
    assert edge["api_keys"] == 10


def test_a_rate_has_a_floor(make_host):
    h = make_host(workers=1, core=True)
    h.start()
    before = plans(h)
    for rate in (1e-300, 0.0009, 0):
        problem(h.api("POST", "/plans", {
            "name": "slow", "rates": {"key": {"rate": rate, "burst": 1}}}),
            422, "rates.key.rate", "from 0.001")
        problem(h.api("PATCH", "/plans/free", {
            "rates": {"anonymous": {"rate": rate}}}),
            422, "rates.anonymous.rate")
    assert plans(h) == before
    # nno plan refuses it before asking, as a usage error
    env = dict(os.environ, NNO_URL="http://127.0.0.1:%d" % h.port,
               NNO_DATA=h.data)
    r = subprocess.run([os.path.join(BUILD, "bin", "nno"), "plan", "create",
                        "slow", "--rate", "key=1e-300/1"], env=env,
                       text=True, capture_output=True, timeout=30)
    assert r.returncode == 2 and "hint:" in r.stderr, r
    assert plans(h) == before
    st, _, p = h.api("POST", "/plans", {
        "name": "slow", "rates": {"key": {"rate": 0.001, "burst": 1}}})
    assert st == 201 and p["rates"]["key"]["rate"] == 0.001, p


def test_a_configured_rate_below_the_floor_stops_the_start(make_host):
    h = make_host(workers=1, core=True, config={"plugin_config": {
        "billing": {"plans": {"x": {
            "rates": {"key": {"rate": 1e-300}}}}}}})
    with pytest.raises(RuntimeError):
        h.start()
    assert "rates.key.rate" in h.log_text()


def test_plans_read_any_media_type_as_json(make_host):
    """As POST /api/v1/platforms does: curl's default form type too."""
    h = make_host(workers=1, core=True)
    h.start()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    st, _, p = h.api("POST", "/plans", b'{"name": "formed", "users": 4}',
                     headers=form)
    assert st == 201 and p["users"] == 4, p
    st, _, p = h.api("PATCH", "/plans/formed", b'{"users": 6}',
                     headers={"Content-Type": "text/plain"})
    assert st == 200 and p["users"] == 6, p
    st, _, p = h.api("POST", "/platforms", b'{"id": "formed", "name": "f"}',
                     headers=form)
    assert st == 201, p


def test_outbox_bad_state_is_a_bad_parameter(make_host):
    h = make_host(workers=1, core=True)
    h.start()
    problem(h.api("GET", "/billing/outbox?state=bogus"), 400, "state")
    assert h.api("GET", "/billing/outbox?state=failed")[0] == 200


def test_serve_check_names_the_core_plugin(tmp_path):
    nno = os.path.join(BUILD, "bin", "nno")
    r = subprocess.run(
        [nno, "serve", "--check", "--data", str(tmp_path / "data"),
         "--set", 'plugin_config={"billing":{"plans":{"x":{"users":-1}}}}'],
        capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r
    assert "error: core plugin billing: " in r.stderr, r.stderr
    assert 'config.plans.x: field "users"' in r.stderr, r.stderr
    assert "@" not in "".join(l for l in r.stderr.splitlines()
                              if "billing" in l), r.stderr
    # once, however many stacks the check loads it under
    assert r.stderr.count("core plugin billing:") == 1, r.stderr
