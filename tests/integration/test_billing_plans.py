"""Plans as data (the billing core plugin), black box: /api/v1/plans for the
operator only, strict validation that changes nothing on a refusal, the
host configuration's plans winning and read-only, a change reaching every
worker at once, a platform's plan checked and audited, and the plans'
limits as IAM (rates, API keys), auth (users) and provisioning (storage)
enforce them."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import BUILD, NNO, Host

PLUGINS = os.path.join(BUILD, "lib", "nno", "plugins")
PASSWORD = "correct horse battery"
SEEDED = {
    "free": {"requests_per_month": 100000, "storage_bytes": 100 << 20,
             "users": 1000, "api_keys": 10,
             "rates": {"platform": {"rate": 200, "burst": 400},
                       "key": {"rate": 50, "burst": 100},
                       "user": {"rate": 20, "burst": 40},
                       "anonymous": {"rate": 20, "burst": 60}}},
    "pro": {"requests_per_month": 10000000, "storage_bytes": 10 << 30,
            "users": 100000, "api_keys": 100,
            "rates": {"platform": {"rate": 2000, "burst": 4000},
                      "key": {"rate": 500, "burst": 1000},
                      "user": {"rate": 100, "burst": 200},
                      "anonymous": {"rate": 50, "burst": 100}}},
    "unmetered": {"requests_per_month": 0, "storage_bytes": 0, "users": 0,
                  "api_keys": 0},
}


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    """Three workers: a change must reach each of them."""
    host = Host(tmp_path_factory.mktemp("plans"), workers=3, core=True)
    host.start()
    yield host
    host.stop()


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


def plan_audit(h):
    st, _, page = h.api("GET", "/audit?limit=500")
    assert st == 200, page
    return [e for e in page["items"] if e["action"].startswith("plan.")]


def workers(h):
    return len(h.worker_pids())


def by_worker(resp):
    """The answering worker: its request ids share a 16-hex prefix."""
    return resp[1]["x-request-id"][:16]


# -- the seeded table ----------------------------------------------------------

def test_the_first_start_seeds_free_pro_and_unmetered(h):
    st, _, page = h.api("GET", "/plans")
    assert st == 200, page
    assert page["default_plan"] == "free"
    names = [p["name"] for p in page["items"]]
    assert names == sorted(names) and {"free", "pro", "unmetered"} <= set(names)
    for p in page["items"]:
        if p["name"] not in SEEDED:
            continue
        for k, v in SEEDED[p["name"]].items():
            assert p[k] == v, (p["name"], k, p[k])
        assert p["source"] == "stored" and p["version"] >= 1
    st, hd, pro = h.api("GET", "/plans/pro")
    assert st == 200 and hd["etag"] == '"v%d"' % pro["version"]
    unm = h.api("GET", "/plans/unmetered")[2]
    # no limit, and IAM's rates of before for "unmetered"
    assert unm["rates"]["key"] == {"rate": 10000000, "burst": 10000000}
    problem(h.api("GET", "/plans/nosuch"), 404)
    problem(h.api("GET", "/plans/NOT%20A%20NAME"), 404)


# -- who may call ----------------------------------------------------------------

def test_plans_are_the_operators_alone(h):
    h.platform("pl-who", stacks=(), plan="unmetered")
    key = h.platform_key("pl-who", scopes=("*",))["key"]
    body = {"name": "by-key"}
    for method, path, b in (("GET", "/plans", None), ("GET", "/plans/free", None),
                            ("POST", "/plans", body),
                            ("PATCH", "/plans/free", {"users": 1})):
        problem(h.api(method, path, b, key=key), 403)
        st, hd, _ = h.api(method, path, b, key=False)
        assert st == 401, (method, path, st)
    assert h.api("GET", "/plans/by-key")[0] == 404
    assert h.api("GET", "/plans/free")[2]["users"] == 1000


# -- validation ------------------------------------------------------------------

BAD = [
    ({"name": "b1", "userz": 5}, "userz", 'did you mean "users"'),
    ({"name": "b1", "rates": {"key": {"rate": 5, "brust": 3}}},
     "rates.key.brust", 'did you mean "burst"'),
    ({"name": "b1", "rates": {"keys": {"rate": 5}}}, "rates.keys",
     'did you mean "key"'),
    ({"name": "b1", "frobnicate": 1}, "frobnicate", "expected"),
    ({"name": "b1", "users": -1}, "users", None),
    ({"name": "b1", "users": 1.5}, "users", None),
    ({"name": "b1", "users": "10"}, "users", None),
    ({"name": "b1", "api_keys": 10 ** 7}, "api_keys", None),
    ({"name": "b1", "requests_per_month": 10 ** 13}, "requests_per_month",
     None),
    ({"name": "b1", "storage_bytes": 1 << 51}, "storage_bytes", None),
    ({"name": "b1", "soft_pct": 0}, "soft_pct", "1..100"),
    ({"name": "b1", "soft_pct": 101}, "soft_pct", "1..100"),
    ({"name": "b1", "grace_pct": 101}, "grace_pct", "0..100"),
    ({"name": "b1", "grace_days": 91}, "grace_days", "0..90"),
    ({"name": "b1", "rates": {"key": {"rate": 0}}}, "rates.key.rate", None),
    ({"name": "b1", "rates": {"key": {"rate": -2}}}, "rates.key.rate", None),
    ({"name": "b1", "rates": {"key": {"burst": 0}}}, "rates.key.burst", None),
    ({"name": "b1", "rates": {"key": [5, 10]}}, "rates.key", None),
    ({"name": "b1", "rates": []}, "rates", None),
    ({"name": "b1", "provider_price": "prix_1"}, "provider_price", None),
    ({"name": "b1", "provider_price": "price_"}, "provider_price", None),
    ({"name": "b1", "provider_price": "price_a-b"}, "provider_price", None),
    ({"name": "b1", "provider_price": "price_" + "a" * 80}, "provider_price",
     None),
    ({"name": "B1"}, "name", None),
    ({"name": "x" * 33}, "name", None),
    ({"name": ""}, "name", None),
    ({"name": 5}, "name", None),
    ({"users": 5}, "name", "required"),
]


def test_bad_input_is_refused_and_changes_nothing(h):
    before = h.api("GET", "/plans")[2]
    audit = plan_audit(h)
    for body, field, has in BAD:
        problem(h.api("POST", "/plans", body), 422, field, has)
    for body, field, has in BAD:
        if field == "name":
            continue
        body = dict(body)
        del body["name"]
        problem(h.api("PATCH", "/plans/pro", body), 422, field, has)
    problem(h.api("PATCH", "/plans/pro", {"name": "other"}), 422, "name")
    # not JSON, not an object; any media type is read as JSON, as
    # POST /api/v1/platforms reads it
    assert h.api("POST", "/plans", "{")[0] == 400
    assert h.api("POST", "/plans", [1])[0] == 422
    st, _, _ = h.api("POST", "/plans", b'{"name": "b2", "users": -1}',
                     headers={"Content-Type": "text/plain"})
    assert st == 422
    assert h.api("POST", "/plans", {"name": "b3", "x": "y" * 20000})[0] == 413
    problem(h.api("PATCH", "/plans/nosuch", {"users": 1}), 404)
    assert h.api("GET", "/plans")[2] == before
    assert plan_audit(h) == audit


def test_a_plan_is_created_once_and_audited(h):
    st, hd, p = h.api("POST", "/plans", {
        "name": "team", "users": 5000, "api_keys": 50,
        "rates": {"key": {"rate": 200, "burst": 400}},
        "provider_price": "price_1Team"})
    assert st == 201, p
    assert hd["location"] == "/api/v1/plans/team" and hd["etag"] == '"v1"'
    # fields not given are the free plan's
    assert p["requests_per_month"] == 100000 and p["soft_pct"] == 80
    assert p["rates"]["key"] == {"rate": 200, "burst": 400}
    assert p["rates"]["user"] == {"rate": 20, "burst": 40}
    assert p["provider_price"] == "price_1Team" and p["source"] == "stored"
    problem(h.api("POST", "/plans", {"name": "team"}), 409, "name")
    assert h.api("GET", "/plans/team")[2] == p
    e = plan_audit(h)[0]
    assert e["action"] == "plan.create" and e["target"] == "plan:team"
    assert e["actor"] == "operator" and e["request_id"]
    assert e["detail"]["fields"]["users"] == 5000


def test_patch_needs_the_current_etag(h):
    h.api("POST", "/plans", {"name": "etag"})
    st, hd, p = h.api("GET", "/plans/etag")
    assert hd["etag"] == '"v1"'
    st, hd, p = h.api("PATCH", "/plans/etag", {"users": 7, "soft_pct": 90},
                      headers={"If-Match": '"v1"'})
    assert st == 200 and p["users"] == 7 and hd["etag"] == '"v2"', p
    e = plan_audit(h)[0]
    assert e["action"] == "plan.update" and e["target"] == "plan:etag"
    assert e["detail"]["changes"] == {"users": {"from": 1000, "to": 7},
                                      "soft_pct": {"from": 80, "to": 90}}
    problem(h.api("PATCH", "/plans/etag", {"users": 8},
                  headers={"If-Match": '"v1"'}), 412, has='"v2"')
    assert h.api("GET", "/plans/etag")[2]["users"] == 7
    # the same values again: nothing written, no audit row
    n = len(plan_audit(h))
    st, hd, p = h.api("PATCH", "/plans/etag", {"users": 7})
    assert st == 200 and p["version"] == 2 and len(plan_audit(h)) == n


# -- every worker -----------------------------------------------------------------

def test_a_change_reaches_every_worker_and_iam_rates_follow(h):
    # bursts large enough for every request below: the rate-limit header
    # (the tighter bucket: the key's) is what is watched, never a refusal
    h.api("POST", "/plans", {"name": "rl", "rates": {
        "platform": {"rate": 1000, "burst": 5000},
        "key": {"rate": 1000, "burst": 500}}})
    h.platform("pl-rl", plan="rl")
    key = h.platform_key("pl-rl")["key"]

    def limit():
        r = h.request("GET", "/p/pl-rl/hello", key=key)
        assert r[0] == 200, r
        return by_worker(r), r[1]["ratelimit-limit"]

    seen = {}
    deadline = time.time() + 10
    while len(seen) < workers(h) and time.time() < deadline:
        w, lim = limit()
        seen[w] = lim
    assert set(seen.values()) == {"500"}, seen
    st, _, _ = h.api("PATCH", "/plans/rl",
                     {"rates": {"key": {"rate": 1000, "burst": 700}}})
    assert st == 200
    # No worker answers from the old table once the PATCH answered (well
    # within a second): every answer after it is checked, until each
    # worker has given one (the deadline only bounds a kernel that keeps
    # handing connections to the same worker).
    t0 = time.time()
    after = {}
    while len(after) < workers(h):
        assert time.time() - t0 < 5.0, after
        w, lim = limit()
        assert lim == "700", (w, lim)
        after[w] = lim
    # the plan itself, served by each worker
    got = {}
    while len(got) < workers(h):
        r = h.api("GET", "/plans/rl")
        got[by_worker(r)] = r[2]["rates"]["key"]["burst"]
    assert set(got.values()) == {700}, got


# -- the host configuration --------------------------------------------------------

def config_plugins(tmp_path, billing_config):
    """A copy of the built core plugins with billing's config set."""
    dst = tmp_path / "plugins"
    shutil.copytree(PLUGINS, str(dst))
    pj = dst / "billing" / "package.json"
    with open(str(pj)) as f:
        pkg = json.load(f)
    pkg["config"].update(billing_config)
    with open(str(pj), "w") as f:
        json.dump(pkg, f)
    return str(dst)


def test_the_configuration_wins_and_is_read_only(tmp_path):
    plugins = config_plugins(tmp_path, {
        "plans": {"pro": {"api_keys": 1, "users": 7},
                  "gold": {"api_keys": 3,
                           "rates": {"key": {"rate": 9, "burst": 9}}}},
        "default_plan": "gold"})
    (tmp_path / "h").mkdir()
    h = Host(tmp_path / "h", workers=2, core=True,
             config={"plugin_dir": plugins})
    h.start()
    try:
        pro = h.api("GET", "/plans/pro")[2]
        assert pro["source"] == "config" and pro["users"] == 7, pro
        assert pro["api_keys"] == 1
        assert pro["requests_per_month"] == 10000000  # the stored pro's
        gold = h.api("GET", "/plans/gold")[2]
        assert gold["default"] is True and gold["rates"]["key"]["burst"] == 9
        assert h.api("GET", "/plans")[2]["default_plan"] == "gold"
        problem(h.api("PATCH", "/plans/pro", {"users": 8}), 409,
                has="host configuration")
        problem(h.api("POST", "/plans", {"name": "gold"}), 409,
                has="host configuration")
        assert h.api("GET", "/plans/pro")[2] == pro
        # a platform created without a plan gets the default plan, and the
        # configured limits apply: one live key on "pro"
        st, _, p = h.api("POST", "/platforms", {"id": "cfg-a", "name": "a"})
        assert st == 201 and p["plan"] == "gold", p
        h.platform("cfg-b", stacks=(), plan="pro")
        h.platform_key("cfg-b")
        problem(h.api("POST", "/platforms/cfg-b/keys",
                      {"name": "two", "scopes": ["features:*"]}), 409)
    finally:
        h.stop()


def test_a_bad_configuration_is_refused_at_start(tmp_path):
    for cfg, says in (
            ({"plans": {"pro": {"userz": 1}}}, 'did you mean \\"users\\"'),
            ({"plans": {"Bad": {}}}, "[a-z0-9-]"),
            ({"plans": {"x": {"soft_pct": 0}}}, "soft_pct"),
            ({"default_plan": "nosuch"}, "nosuch")):
        sub = tmp_path / ("c%d" % len(os.listdir(str(tmp_path))))
        sub.mkdir()
        plugins = config_plugins(sub, cfg)
        h = Host(sub, workers=1, core=True, config={"plugin_dir": plugins})
        with pytest.raises(RuntimeError) as e:
            h.start()
        h.stop()
        assert says.replace("\\", "") in h.log_text().replace("\\", ""), \
            (cfg, h.log_text()[-2000:])


# -- a platform's plan -----------------------------------------------------------------

def test_a_platforms_plan_must_exist_and_its_change_is_audited(h):
    problem(h.api("POST", "/platforms", {"id": "pl-none", "name": "x",
                                         "plan": "nosuch"}),
            422, "plan", '"free", "pro"')
    assert h.api("GET", "/platforms/pl-none")[0] == 404
    h.platform("pl-move", stacks=(), plan="free")
    problem(h.api("PATCH", "/platforms/pl-move", {"plan": "nosuch"}), 422,
            "plan", '"unmetered"')
    assert h.api("GET", "/platforms/pl-move")[2]["plan"] == "free"
    st, _, p = h.api("PATCH", "/platforms/pl-move", {"plan": "pro"})
    assert st == 200 and p["plan"] == "pro"
    st, _, page = h.api("GET", "/audit?limit=20")
    moves = [e for e in page["items"] if e["action"] == "platform.plan"
             and e["target"] == "platform:pl-move"]
    assert moves and moves[0]["detail"] == {"from": "free", "to": "pro"}
    assert moves[0]["actor"] == "operator"


# -- the limits, enforced ------------------------------------------------------------------

def test_api_keys_at_the_boundary(h):
    h.api("POST", "/plans", {"name": "two-keys", "api_keys": 2})
    h.platform("pl-keys", stacks=(), plan="two-keys")
    k1 = h.platform_key("pl-keys")
    h.platform_key("pl-keys")
    body = problem(h.api("POST", "/platforms/pl-keys/keys",
                         {"name": "third", "scopes": ["features:*"]}), 409)
    assert body["limit"] == "api_keys" and body["plan"] == "two-keys"
    assert body["quota"] == 2 and body["used"] == 2
    assert "two-keys" in body["detail"]
    st, _, page = h.api("GET", "/platforms/pl-keys/keys")
    assert len([k for k in page["items"] if not k["revoked_at"]]) == 2
    # a revoked key no longer counts: the next one fits, then not again
    assert h.api("DELETE", "/platforms/pl-keys/keys/" + k1["id"])[0] == 204
    h.platform_key("pl-keys")
    problem(h.api("POST", "/platforms/pl-keys/keys",
                  {"name": "again", "scopes": ["features:*"]}), 409)
    # a larger plan lets it grow at once; a smaller one says how far over
    h.api("PATCH", "/plans/two-keys", {"api_keys": 3})
    h.platform_key("pl-keys")
    h.api("PATCH", "/plans/two-keys", {"api_keys": 1})
    body = problem(h.api("POST", "/platforms/pl-keys/keys",
                         {"name": "over", "scopes": ["features:*"]}), 409)
    assert (body["used"], body["quota"]) == (3, 1), body


def sign_up(h, pid, email):
    st, hd, body = h.request(
        "POST", "/p/%s/auth/sign-up" % pid,
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": email, "password": PASSWORD}).encode())
    return st, hd, (json.loads(body) if body else None)


def test_users_at_the_boundary(h):
    h.api("POST", "/plans", {"name": "two-users", "users": 2})
    h.platform("pl-users", plan="two-users")
    st, _, _ = h.api("PUT", "/platforms/pl-users/access",
                     {"signup": True, "cors_origins": []})
    assert st in (200, 201, 204)
    assert sign_up(h, "pl-users", "a@example.com")[0] == 201
    assert sign_up(h, "pl-users", "b@example.com")[0] == 201
    body = problem(sign_up(h, "pl-users", "c@example.com"), 409)
    assert body["limit"] == "users" and body["plan"] == "two-users"
    # nothing was made: raising the plan lets that same address sign up
    h.api("PATCH", "/plans/two-users", {"users": 3})
    assert sign_up(h, "pl-users", "c@example.com")[0] == 201
    problem(sign_up(h, "pl-users", "d@example.com"), 409)


def test_storage_quota_is_the_plans(h):
    h.api("POST", "/plans", {"name": "small-disk", "storage_bytes": 123456})
    h.platform("pl-disk", plan="small-disk")
    st, _, page = h.api("GET", "/platforms/pl-disk/resources")
    assert st == 200 and page["quota"]["limit_bytes"] == 123456, page
    h.api("PATCH", "/plans/small-disk", {"storage_bytes": 0})
    st, _, page = h.api("GET", "/platforms/pl-disk/resources")
    assert page["quota"]["limit_bytes"] is None, page  # no limit


# -- the CLI -------------------------------------------------------------------------------

def nno(h, *args):
    env = dict(os.environ, NNO_URL="http://127.0.0.1:%d" % h.port,
               NNO_DATA=h.data)
    return subprocess.run([NNO] + list(args), env=env, text=True,
                          capture_output=True, timeout=30)


def test_cli_plan_commands(h):
    r = nno(h, "plan", "create", "cli-plan", "--users", "40", "--rate",
            "platform=100/200,key=5/10", "--price", "price_Cli1", "--json")
    assert r.returncode == 0, r
    p = json.loads(r.stdout)
    assert p["users"] == 40 and p["rates"]["key"] == {"rate": 5, "burst": 10}
    r = nno(h, "plan", "update", "cli-plan", "--api-keys", "4",
            "--rate", "user=1.5/3", "--json")
    assert r.returncode == 0, r
    p = json.loads(r.stdout)
    assert p["api_keys"] == 4 and p["rates"]["user"] == {"rate": 1.5,
                                                         "burst": 3}
    assert p["version"] == 2
    r = nno(h, "plan", "show", "cli-plan")
    assert r.returncode == 0 and "rate.key: 5/s, burst 10" in r.stdout, r
    r = nno(h, "plan", "list")
    assert r.returncode == 0 and r.stdout.startswith("NAME"), r
    assert "cli-plan" in r.stdout
    r = nno(h, "plan", "list", "--json")
    assert "cli-plan" in [p["name"] for p in json.loads(r.stdout)]
    # refusals: on stderr, with a hint or the server's words, non-zero
    r = nno(h, "plan", "create", "bad", "--rate", "key=5")
    assert r.returncode == 2 and "hint:" in r.stderr and not r.stdout, r
    r = nno(h, "plan", "update", "cli-plan")
    assert r.returncode == 2 and "nothing to change" in r.stderr, r
    r = nno(h, "plan", "create", "bad", "--grace-days", "91")
    assert r.returncode == 1 and "grace_days" in r.stderr, r
    r = nno(h, "plan", "show", "nosuch")
    assert r.returncode == 1 and "404" in r.stderr, r
    assert h.api("GET", "/plans/bad")[0] == 404
    r = nno(h, "plan", "create", "--help")
    assert r.returncode == 0 and "Example" in r.stdout, r


def test_the_hosts_plugin_config_sets_plans(make_host):
    """The host configuration's override of billing's config (the file's
    plugin_config, or --set) is where an operator sets plans."""
    h = make_host(workers=2, core=True, config={"plugin_config": {
        "billing": {"plans": {"pro": {"users": 9}, "edge": {"api_keys": 1}}}}},
        args=["--set", 'plugin_config={"billing":{"default_plan":"edge"}}'])
    h.start()
    pro = h.api("GET", "/plans/pro")[2]
    assert pro["source"] == "config" and pro["users"] == 9, pro
    st, _, page = h.api("GET", "/plans")
    assert page["default_plan"] == "edge", page
    problem(h.api("PATCH", "/plans/pro", {"users": 10}), 409,
            has="host configuration")
    st, _, p = h.api("POST", "/platforms", {"id": "hc-a", "name": "a"})
    assert st == 201 and p["plan"] == "edge", p


# -- the registry's members, as billing calls them ----------------------------------

@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """Two workers, the core plugins and planprobe, which calls the
    registry's platform_set_plan and platform_set_status as billing does."""
    d = tmp_path_factory.mktemp("probe")
    plugins = d / "plugins"
    shutil.copytree(PLUGINS, str(plugins))
    shutil.copytree(os.path.join(BUILD, "tests", "planplugins", "planprobe"),
                    str(plugins / "planprobe"))
    (d / "h").mkdir()
    host = Host(d / "h", workers=2, core=True,
                config={"plugin_dir": str(plugins)})
    host.start()
    yield host
    host.stop()


def set_by_billing(h, pid, **q):
    (k, v), = q.items()
    st, _, body = h.api("POST", "/planprobe/%s?%s=%s" % (pid, k, v))
    assert st == 200, body
    return body["rc"]


def test_set_plan_and_status_as_billing_does(probe):
    h = probe
    wide = {"rate": 1000, "burst": 5000}  # the key's bucket is the tighter
    h.api("POST", "/plans", {"name": "narrow", "rates": {
        "platform": wide, "key": {"rate": 1000, "burst": 300}}})
    h.api("POST", "/plans", {"name": "wide", "rates": {
        "platform": wide, "key": {"rate": 1000, "burst": 600}}})
    h.platform("pl-bill", plan="narrow")
    key = h.platform_key("pl-bill")["key"]
    assert set_by_billing(h, "pl-bill", plan="wide") == "NNO_OK"
    assert h.api("GET", "/platforms/pl-bill")[2]["plan"] == "wide"
    e = [e for e in h.api("GET", "/audit?limit=5")[2]["items"]
         if e["target"] == "platform:pl-bill"][0]
    assert (e["action"], e["actor"], e["detail"]) == (
        "platform.plan", "billing",
        {"from": "narrow", "to": "wide", "reason": "probe"}), e
    # every worker routes by the new plan at once
    seen, t0 = set(), time.time()
    while len(seen) < workers(h):
        assert time.time() - t0 < 5.0, seen
        r = h.request("GET", "/p/pl-bill/hello", key=key)
        assert r[0] == 200 and r[1]["ratelimit-limit"] == "600", r
        seen.add(by_worker(r))
    # the same plan again changes nothing; refusals change nothing
    n = len(h.api("GET", "/audit?limit=500")[2]["items"])
    assert set_by_billing(h, "pl-bill", plan="wide") == "NNO_OK"
    assert set_by_billing(h, "pl-bill", plan="nosuch") == "NNO_EINVAL"
    assert set_by_billing(h, "pl-bill", plan="Bad!") == "NNO_EINVAL"
    assert set_by_billing(h, "pl-nobody", plan="wide") == "NNO_ENOENT"
    assert set_by_billing(h, "pl-bill", status="deleted") == "NNO_EINVAL"
    assert len(h.api("GET", "/audit?limit=500")[2]["items"]) == n
    # suspended by billing: every worker refuses its routes, then serves
    assert set_by_billing(h, "pl-bill", status="suspended") == "NNO_OK"
    p = h.api("GET", "/platforms/pl-bill")[2]
    assert p["status"] == "suspended"
    e = h.api("GET", "/audit?limit=1")[2]["items"][0]
    assert (e["action"], e["actor"], e["detail"]) == (
        "platform.suspend", "billing",
        {"from": "active", "to": "suspended", "reason": "probe",
         "suspended_by": "billing"}), e
    seen, t0 = set(), time.time()
    while len(seen) < workers(h):
        assert time.time() - t0 < 5.0, seen
        r = h.request("GET", "/p/pl-bill/hello", key=key)
        assert r[0] == 403, r
        seen.add(by_worker(r))
    assert set_by_billing(h, "pl-bill", status="active") == "NNO_OK"
    assert h.api("GET", "/audit?limit=1")[2]["items"][0]["action"] == \
        "platform.resume"
    assert h.request("GET", "/p/pl-bill/hello", key=key)[0] == 200
    # the operator's suspension is never lifted by billing's resume
    assert h.api("POST", "/platforms/pl-bill/suspend")[0] == 200
    n = len(h.api("GET", "/audit?limit=500")[2]["items"])
    assert set_by_billing(h, "pl-bill", status="active") == "NNO_EREFUSED"
    assert h.api("GET", "/platforms/pl-bill")[2]["status"] == "suspended"
    assert len(h.api("GET", "/audit?limit=500")[2]["items"]) == n
    assert h.api("POST", "/platforms/pl-bill/resume")[0] == 200
