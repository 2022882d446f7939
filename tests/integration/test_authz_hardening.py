"""What a credential may do beyond its scopes: a tenant-bound credential
on every core route, suspension of a platform or a tenant, a key made by
an expiring credential, sign-up as a way of granting scopes, sessions that
follow the platform's user_scopes, and users that do not outlive their
platform. Black box, on a host with 2 workers (test_iam's fixture)."""
import datetime
import glob
import json
import os
import sqlite3

from conftest import SOURCE
from test_iam import (PASSWORD, call, h, hello, new_key, op,  # noqa: F401
                      platform, problem, session, sign_in, tenant)

SUSPENDED = ("platform %s is suspended: its keys and sessions are refused "
             "until it is resumed")
TENANT_SUSPENDED = ('credentials bound to tenant "%s" of platform %s are '
                    'refused: it, or a tenant above it, is suspended')
WHOLE = ('this credential is bound to tenant "t1" and cannot change what '
         'belongs to the whole platform')
OP_ONLY = "only the operator may call this route"
SUBTREE = 'this credential is bound to tenant "t1" and cannot reach tenant "t2"'
LOGS = ('this credential is bound to tenant "t1": a platform\'s logs are '
        'platform-wide, read them with a key of the whole platform')


def epoch(iso):
    return int(datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


def everywhere(h, n, fn):
    """`fn` on n new connections (they spread over both workers): the list
    of what it answered."""
    return [fn() for _ in range(n)]


def every_worker_answered(h, path, status, again):
    """Both workers answered `path` with `status` (access log). Which worker
    accepts a connection is up to the kernel: `again()` sends one more
    request (it must answer `status` too) until both have, 60 at most."""
    for i in range(60):
        pids = {e.get("pid") for e in h.log_lines()
                if e.get("msg") == "access" and e.get("path") == path
                and e.get("status") == status}
        if len(pids) >= 2:
            break
        assert again() == status, (path, i)
    pids, want = h.access_pids(path, status)
    assert pids == want and len(want) == 2, (path, status, pids, want)


def manifest_routes():
    """Every core route (method, path) the core plugins declare."""
    out = set()
    for rel in ("registry/package.json", "plugins/iam/package.json",
                "plugins/provisioning/package.json",
                "plugins/billing/package.json"):
        with open(os.path.join(SOURCE, rel)) as f:
            out |= {(r["method"], r["path"]) for r in json.load(f)["routes"]}
    return out


# -- a tenant-bound credential on every route ------------------------------------

def test_a_tenant_bound_key_on_every_route(h):
    # A key bound to t1 holding every scope ("*"): what it may do is decided
    # by the route alone (plugins/iam/README.md, "Tenant-bound
    # credentials"). Reads follow the scope; writes are allowed only where
    # they stay inside t1's subtree; platform-wide changes answer 403.
    pid = "tb-a"
    platform(h, pid)
    tenant(h, pid, "t1")
    tenant(h, pid, "t1a", parent="t1")
    tenant(h, pid, "t2")
    tenant(h, pid, "t1x", parent="t1")
    key = new_key(h, pid, ["*"], tenant="t1")["key"]
    victim_in = new_key(h, pid, ["tenants:read"], tenant="t1a")["id"]
    victim_out = new_key(h, pid, ["tenants:read"])["id"]
    base = "/api/v1/platforms/" + pid
    # A pending device code of the platform, and a second bound key that
    # revokes itself (the first one must live through the table).
    st, _, dev = call(h, "POST", "/api/v1/device/code", body={"platform": pid})
    assert st == 200, dev
    self_key = new_key(h, pid, ["*"], tenant="t1")["key"]
    # (method, route pattern, concrete path, body, expected): a number is
    # the route's own answer, "op-only", "whole", "subtree" and "field" the
    # refusals.
    cells = [
        ("POST", "/api/v1/platforms", "/api/v1/platforms",
         {"id": "tb-new", "name": "x"}, "op-only"),
        ("GET", "/api/v1/platforms", "/api/v1/platforms", None, "op-only"),
        ("GET", "/api/v1/platforms/{platform}", base, None, 200),
        ("PATCH", "/api/v1/platforms/{platform}", base, {"plan": "pro"},
         "op-only"),
        ("DELETE", "/api/v1/platforms/{platform}", base, None, "op-only"),
        ("POST", "/api/v1/platforms/{platform}/suspend", base + "/suspend",
         None, "op-only"),
        ("POST", "/api/v1/platforms/{platform}/resume", base + "/resume",
         None, "op-only"),
        ("GET", "/api/v1/platforms/{platform}/resources", base + "/resources",
         None, 200),
        ("GET", "/api/v1/platforms/{platform}/resources/{type}/{name}",
         base + "/resources/sql/default-notes", None, 200),
        ("POST", "/api/v1/platforms/{platform}/tenants", base + "/tenants",
         {"id": "t1b", "name": "x", "parent": "t1"}, 201),
        ("POST", "/api/v1/platforms/{platform}/tenants", base + "/tenants",
         {"id": "t3", "name": "x"}, "field"),
        ("GET", "/api/v1/platforms/{platform}/tenants", base + "/tenants",
         None, 200),
        ("GET", "/api/v1/platforms/{platform}/tenants/{tenant}",
         base + "/tenants/t1a", None, 200),
        ("GET", "/api/v1/platforms/{platform}/tenants/{tenant}",
         base + "/tenants/t2", None, "subtree"),
        ("PATCH", "/api/v1/platforms/{platform}/tenants/{tenant}",
         base + "/tenants/t1a", {"name": "renamed"}, 200),
        ("PATCH", "/api/v1/platforms/{platform}/tenants/{tenant}",
         base + "/tenants/t2", {"name": "renamed"}, "subtree"),
        ("DELETE", "/api/v1/platforms/{platform}/tenants/{tenant}",
         base + "/tenants/t1x", None, 204),
        ("DELETE", "/api/v1/platforms/{platform}/tenants/{tenant}",
         base + "/tenants/t2", None, "subtree"),
        ("GET", "/api/v1/stacks", "/api/v1/stacks", None, 200),
        ("GET", "/api/v1/stacks/{id}", "/api/v1/stacks/default", None, 200),
        ("POST", "/api/v1/platforms/{platform}/stacks", base + "/stacks",
         {"stack": "default"}, "whole"),
        ("GET", "/api/v1/platforms/{platform}/stacks", base + "/stacks",
         None, 200),
        ("DELETE", "/api/v1/platforms/{platform}/stacks/{stack}",
         base + "/stacks/default", None, "whole"),
        ("GET", "/api/v1/platforms/{platform}/logs", base + "/logs", None,
         "logs"),
        ("GET", "/api/v1/audit", "/api/v1/audit", None, "op-only"),
        ("GET", "/api/v1/plans", "/api/v1/plans", None, "op-only"),
        ("GET", "/api/v1/plans/{name}", "/api/v1/plans/free", None,
         "op-only"),
        ("POST", "/api/v1/plans", "/api/v1/plans", {"name": "mine"},
         "op-only"),
        ("PATCH", "/api/v1/plans/{name}", "/api/v1/plans/unmetered",
         {"requests_per_month": 1}, "op-only"),
        ("DELETE", "/api/v1/plans/{name}", "/api/v1/plans/unmetered", None,
         "op-only"),
        ("GET", "/api/v1/platforms/{platform}/usage", base + "/usage", None,
         200),
        ("GET", "/api/v1/platforms/{platform}/invoice/preview",
         base + "/invoice/preview", None, 403),
        ("GET", "/api/v1/billing/outbox", "/api/v1/billing/outbox", None,
         "op-only"),
        ("POST", "/api/v1/billing/outbox/{id}/retry",
         "/api/v1/billing/outbox/x/retry", None, "op-only"),
        # public, and unsigned: refused (no signing secret set: 503)
        ("POST", "/api/v1/billing/webhooks/stripe",
         "/api/v1/billing/webhooks/stripe", {"id": "evt_1"}, 503),
        ("GET", "/api/v1/quarantines", "/api/v1/quarantines", None,
         "op-only"),
        ("DELETE", "/api/v1/quarantines/{platform}/{package}/{version}",
         "/api/v1/quarantines/" + pid + "/hello/1.0.0", None, "op-only"),
        ("POST", "/api/v1/stacks", "/api/v1/stacks",
         {"url": "https://example.com/x.tar.gz"}, "install"),
        ("POST", "/api/v1/device/code", "/api/v1/device/code",
         {"platform": pid}, 200),
        ("GET", "/api/v1/device/pending",
         "/api/v1/device/pending?user_code=" + dev["user_code"], None,
         "device"),
        ("POST", "/api/v1/device/approve", "/api/v1/device/approve",
         {"user_code": dev["user_code"]}, "device"),
        ("POST", "/api/v1/device/deny", "/api/v1/device/deny",
         {"user_code": dev["user_code"]}, "device"),
        ("POST", "/api/v1/device/token", "/api/v1/device/token",
         {"device_code": dev["device_code"]}, 400),
        ("DELETE", "/api/v1/keys/self", "/api/v1/keys/self", None, "self"),
        ("DELETE", "/api/v1/stacks/{id}/{version}",
         "/api/v1/stacks/default/1.0.0", None, "remove"),
        ("POST", "/api/v1/operator-key/rotate", "/api/v1/operator-key/rotate",
         None, "op-only"),
        ("POST", "/api/v1/platforms/{platform}/keys", base + "/keys",
         {"name": "n", "scopes": ["tenants:read"]}, 201),
        ("POST", "/api/v1/platforms/{platform}/keys", base + "/keys",
         {"name": "n", "scopes": ["tenants:read"], "tenant": None}, 201),
        ("POST", "/api/v1/platforms/{platform}/keys", base + "/keys",
         {"name": "n", "scopes": ["tenants:read"], "tenant": "t2"}, "keys"),
        ("GET", "/api/v1/platforms/{platform}/keys", base + "/keys", None,
         200),
        ("DELETE", "/api/v1/platforms/{platform}/keys/{key}",
         base + "/keys/" + victim_in, None, 204),
        ("DELETE", "/api/v1/platforms/{platform}/keys/{key}",
         base + "/keys/" + victim_out, None, "outside"),
        ("GET", "/api/v1/platforms/{platform}/access", base + "/access", None,
         200),
        ("PUT", "/api/v1/platforms/{platform}/access", base + "/access",
         {"cors_origins": ["https://evil.example"]}, "whole"),
    ]
    assert {(m, p) for m, p, _, _, _ in cells} == manifest_routes()
    for method, _, path, body, cell in cells:
        resp = call(h, method, path, key=self_key if cell == "self" else key,
                    body=body)
        where = (method, path, resp)
        if isinstance(cell, int):
            assert resp[0] == cell, where
            if method == "POST" and path.endswith("/keys"):
                # null means "my own tenant" for a bound creator
                assert resp[2]["tenant"] == "t1", where
        elif cell == "op-only":
            problem(resp, 403, OP_ONLY)
        elif cell == "install":
            assert problem(resp, 403)["detail"].startswith(
                "only the operator installs stacks, or a key of a "
                "user_project platform"), where
        elif cell == "remove":
            assert problem(resp, 403)["detail"].startswith(
                "only the operator removes stack versions, or a key of the "
                "platform that installed"), where
        elif cell == "device":
            problem(resp, 403, "a tenant-bound credential cannot decide "
                    "device codes: they give keys of the whole platform")
        elif cell == "self":
            assert resp[0] == 204, where
            assert call(h, "GET", base + "/tenants", key=self_key)[0] == 401
        elif cell == "whole":
            problem(resp, 403, WHOLE)
        elif cell == "subtree":
            problem(resp, 403, SUBTREE)
        elif cell == "logs":
            problem(resp, 403, LOGS)
        elif cell == "field":
            assert "confined to tenant" in problem(resp, 403)["detail"], where
        elif cell == "keys":
            problem(resp, 403, "a tenant-bound credential only makes keys "
                    "within its tenant's subtree")
        elif cell == "outside":
            problem(resp, 403, "this key belongs outside the caller's tenant")
        else:
            raise AssertionError(cell)
    # what it was refused did not happen
    st, _, acts = op(h, "GET", "/platforms/%s/stacks" % pid)
    assert [a["stack"] for a in acts["items"]] == ["default"], acts
    st, _, acc = op(h, "GET", "/platforms/%s/access" % pid)
    assert acc["cors_origins"] == [], acc
    st, _, p = op(h, "GET", "/platforms/" + pid)
    assert p["status"] == "active" and p["plan"] == "unmetered", p
    assert hello(h, pid, key=key) == 200


# -- suspension -------------------------------------------------------------------

def test_a_suspended_platforms_credentials_stop_everywhere(h):
    pid = "su-a"
    platform(h, pid, signup=True)
    tenant(h, pid, "t1")
    star = new_key(h, pid, ["*"])["key"]
    user = session(h, pid, "su@example.com")
    base = "/api/v1/platforms/" + pid
    st, _, _ = op(h, "POST", "/platforms/%s/suspend" % pid)
    assert st == 200
    detail = SUSPENDED % pid
    # at once, on both workers, every core route the key could reach
    for _ in range(4):
        for method, path, body in [
                ("GET", base, None),
                ("GET", "/api/v1/stacks", None),
                ("POST", base + "/keys", {"name": "n", "scopes": ["*"]}),
                ("POST", base + "/tenants", {"id": "t9", "name": "x"}),
                ("PUT", base + "/access",
                 {"cors_origins": ["https://evil.example"]}),
                ("GET", base + "/tenants", None),
                ("DELETE", base + "/tenants/t1", None)]:
            problem(call(h, method, path, key=star, body=body), 403, detail)
            problem(call(h, method, path, key=user, body=body), 403, detail)
    every_worker_answered(h, base, 403,
                          lambda: call(h, "GET", base, key=star)[0])
    every_worker_answered(h, base + "/keys", 403,
                          lambda: call(h, "GET", base + "/keys", key=user)[0])
    # ... and the feature routes answer 403 for the platform itself
    assert hello(h, pid, key=star) == 403
    # nothing happened; the operator still reads and resumes it
    st, _, acc = op(h, "GET", "/platforms/%s/access" % pid)
    assert st == 200 and acc["cors_origins"] == []
    st, _, ts = op(h, "GET", "/platforms/%s/tenants" % pid)
    assert [t["id"] for t in ts["items"]] == ["t1"], ts
    st, _, _ = op(h, "POST", "/platforms/%s/resume" % pid)
    assert st == 200
    assert everywhere(h, 6, lambda: call(h, "GET", base, key=star)[0]) == \
        [200] * 6
    assert hello(h, pid, cookie=user) == 200


def test_a_suspended_tenants_credentials_stop_everywhere(h):
    pid = "su-b"
    platform(h, pid)
    tenant(h, pid, "t1")
    tenant(h, pid, "t1a", parent="t1")
    tenant(h, pid, "t2")
    scopes = ["tenants:write", "keys:write", "features:*"]
    k1 = new_key(h, pid, scopes, tenant="t1")["key"]
    k1a = new_key(h, pid, scopes, tenant="t1a")["key"]
    k2 = new_key(h, pid, scopes, tenant="t2")["key"]
    whole = new_key(h, pid, scopes)["key"]
    st, _, t = op(h, "PATCH", "/platforms/%s/tenants/t1" % pid,
                  {"status": "suspended"})
    assert st == 200 and t["status"] == "suspended", t
    base = "/api/v1/platforms/" + pid
    for _ in range(4):  # both workers, at once
        for k, tid in ((k1, "t1"), (k1a, "t1a")):
            problem(call(h, "GET", "/p/%s/hello" % pid, key=k), 403,
                    TENANT_SUSPENDED % (tid, pid))
            problem(call(h, "GET", base + "/tenants/t1a", key=k), 403,
                    TENANT_SUSPENDED % (tid, pid))
            problem(call(h, "POST", base + "/keys", key=k,
                         body={"name": "n", "scopes": ["features:*"]}), 403,
                    TENANT_SUSPENDED % (tid, pid))
        assert hello(h, pid, key=k2) == 200
        assert hello(h, pid, key=whole) == 200
    every_worker_answered(h, "/p/%s/hello" % pid, 403,
                          lambda: hello(h, pid, key=k1a))
    every_worker_answered(h, base + "/tenants/t1a", 403,
                          lambda: call(h, "GET", base + "/tenants/t1a",
                                       key=k1)[0])
    # A platform-wide credential still manages the suspended subtree (it
    # is how a tenant is resumed short of the operator): it reads it, adds
    # a tenant there (suspended too, by its ancestor) and resumes it.
    st, _, t = call(h, "POST", base + "/tenants", key=whole,
                    body={"id": "t1b", "name": "x", "parent": "t1"})
    assert st == 201, t
    k1b = new_key(h, pid, scopes, tenant="t1b")["key"]
    problem(call(h, "GET", "/p/%s/hello" % pid, key=k1b), 403,
            TENANT_SUSPENDED % ("t1b", pid))
    st, _, t = call(h, "PATCH", base + "/tenants/t1", key=whole,
                    body={"status": "active"})
    assert st == 200 and t["status"] == "active", t
    for k in (k1, k1a, k1b):
        assert everywhere(h, 4, lambda: hello(h, pid, key=k)) == [200] * 4
    # a tenant deleted while suspended takes its keys with it, and its id
    # is retired: nothing can come back under it
    op(h, "PATCH", "/platforms/%s/tenants/t2" % pid, {"status": "suspended"})
    assert hello(h, pid, key=k2) == 403
    st, _, _ = op(h, "DELETE", "/platforms/%s/tenants/t2" % pid)
    assert st == 204
    assert hello(h, pid, key=k2) == 401
    st, _, _ = op(h, "POST", "/platforms/%s/tenants" % pid,
                  {"id": "t2", "name": "t2"})
    assert st == 409


# -- keys made by expiring credentials ---------------------------------------------

def test_a_key_never_outlives_its_creator(h):
    pid = "ex-a"
    platform(h, pid, signup=True)
    maker = new_key(h, pid, ["keys:write", "features:*"], expires_in=600)
    end = epoch(maker["expires_at"])
    path = "/api/v1/platforms/%s/keys" % pid
    # omitted: the creator's remaining life
    st, _, k = call(h, "POST", path, key=maker["key"],
                    body={"name": "n", "scopes": ["features:*"]})
    assert st == 201 and epoch(k["expires_at"]) == end, k
    # longer: refused, nothing made
    problem(call(h, "POST", path, key=maker["key"],
                 body={"name": "n", "scopes": ["features:*"],
                       "expires_in": 3600}), 403,
            "expires_in: a key cannot outlive the credential that creates it "
            "(that one ends at %s)" % maker["expires_at"])
    # shorter: as asked
    st, _, k = call(h, "POST", path, key=maker["key"],
                    body={"name": "n", "scopes": ["features:*"],
                          "expires_in": 120})
    assert st == 201 and epoch(k["expires_at"]) <= end - 400, k
    # a key that never expires, and the operator, make keys that never do
    forever = new_key(h, pid, ["keys:write", "features:*"])
    assert forever["expires_at"] is None
    st, _, k = call(h, "POST", path, key=forever["key"],
                    body={"name": "n", "scopes": ["features:*"]})
    assert st == 201 and k["expires_at"] is None, k
    # a user's session: bounded by the session's absolute expiry
    st, _, _ = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"user_scopes": ["features:*", "keys:write"]})
    assert st == 200
    st, _, body = call(h, "POST", "/p/%s/auth/sign-up" % pid,
                       body={"email": "ex@example.com", "password": PASSWORD})
    assert st == 201, body
    sess_end = epoch(body["session"]["expires"])
    st, _, k = call(h, "POST", path, key=body["token"],
                    body={"name": "n", "scopes": ["features:*"]})
    assert st == 201 and epoch(k["expires_at"]) == sess_end, k
    problem(call(h, "POST", path, key=body["token"],
                 body={"name": "n", "scopes": ["features:*"],
                       "expires_in": 8 * 86400}), 403)


# -- sign-up grants scopes ---------------------------------------------------------

def test_turning_sign_up_on_needs_the_scopes_it_grants(h):
    pid = "sg-a"
    platform(h, pid, signup=False)
    path = "/api/v1/platforms/%s/access" % pid
    narrow = new_key(h, pid, ["access:write"])["key"]
    detail = ("signup: turning sign-up on gives every new user the "
              "platform's user_scopes; a credential can only do that when "
              "it holds them")
    problem(call(h, "PUT", path, key=narrow, body={"signup": True}), 403,
            detail)
    assert op(h, "GET", "/platforms/%s/access" % pid)[2]["signup"] is False
    st, _, _ = call(h, "POST", "/p/%s/auth/sign-up" % pid,
                    body={"email": "sg@example.com", "password": PASSWORD})
    assert st == 403
    # holding what sign-up grants, it may
    hello_only = new_key(h, pid, ["access:write", "features:hello:*"])["key"]
    problem(call(h, "PUT", path, key=hello_only, body={"signup": True}), 403,
            detail)
    st, _, a = call(h, "PUT", path, key=hello_only,
                    body={"user_scopes": ["features:hello:read"],
                          "signup": True})
    assert st == 200 and a["signup"] is True, a
    # turning it off, or leaving it on, grants nothing new
    st, _, a = call(h, "PUT", path, key=narrow, body={"signup": False})
    assert st == 200 and a["signup"] is False


# -- sessions follow user_scopes -----------------------------------------------------

def test_sessions_follow_the_platforms_user_scopes(h):
    pid = "us-a"
    platform(h, pid, signup=True)
    tok = session(h, pid, "us@example.com")
    assert hello(h, pid, cookie=tok) == 200
    access = "/platforms/%s/access" % pid
    st, _, _ = op(h, "PUT", access, {"user_scopes": ["platform:read"]})
    assert st == 200
    # every worker, at once: the session lost features:*
    assert everywhere(h, 6, lambda: hello(h, pid, key=tok)) == [403] * 6
    every_worker_answered(h, "/p/%s/hello" % pid, 403,
                          lambda: hello(h, pid, key=tok))
    # ... and never gains what it was not given when it opened
    problem(call(h, "GET", "/api/v1/platforms/" + pid, key=tok), 403,
            'this credential lacks the scope "platform:read"')
    st, _, _ = op(h, "PUT", access,
                  {"user_scopes": ["features:hello:read", "platform:read"]})
    assert everywhere(h, 6, lambda: hello(h, pid, key=tok)) == [200] * 6
    # sign-up off: existing users keep their sessions and sign in again
    st, _, _ = op(h, "PUT", access, {"signup": False, "user_scopes": []})
    assert st == 200
    assert hello(h, pid, key=tok) == 200
    again = sign_in(h, pid, "us@example.com")
    assert hello(h, pid, key=again) == 200
    st, _, _ = call(h, "POST", "/p/%s/auth/sign-up" % pid,
                    body={"email": "new@example.com", "password": PASSWORD})
    assert st == 403


# -- users do not outlive their platform --------------------------------------------

def auth_files(h, pid):
    return glob.glob(os.path.join(h.data, "platforms", pid, "sql",
                                  pid + "-default-auth.db*"))


def test_users_end_with_their_platform(h):
    pid = "dl-a"
    platform(h, pid, signup=True)
    session(h, pid, "dl@example.com")
    assert auth_files(h, pid)
    st, _, _ = op(h, "DELETE", "/platforms/" + pid)
    assert st == 204
    assert not os.path.exists(os.path.join(h.data, "platforms", pid))
    platform(h, pid, signup=True)
    st, _, body = call(h, "POST", "/p/%s/auth/sign-in" % pid,
                       body={"email": "dl@example.com", "password": PASSWORD})
    problem((st, _, body), 401)
    session(h, pid, "dl@example.com")  # the address is free again


def test_a_deleted_platforms_folder_goes_even_after_a_crash(make_host):
    # A crash between the deletion's commit and the folder's removal leaves
    # a platform_removals row: the next start finishes the job, unless the
    # id was taken again (the folder is the new platform's then).
    host = make_host(core=True, workers=2)
    # The registry's own removal: without the provisioning plugin (every
    # plugin of plugin_dir loads, so the folder holds only these two).
    import shutil
    from conftest import BUILD
    plugins = os.path.join(str(host.dir), "iam-and-registry")
    for name in ("iam", "registry"):
        shutil.copytree(os.path.join(BUILD, "lib", "nno", "plugins", name),
                        os.path.join(plugins, name))
    host.config.update(plugin_dir=plugins, core_plugins=["iam", "registry"])
    host.start()
    for pid in ("cr-a", "cr-b"):
        st, _, p = host.api("POST", "/platforms", {"id": pid, "name": pid})
        assert st == 201, p
    host.stop()
    db = sqlite3.connect(os.path.join(host.data, "core.db"))
    try:
        db.execute("DELETE FROM platforms WHERE id IN ('cr-a', 'cr-b')")
        db.commit()
        assert sorted(db.execute("SELECT id FROM platform_removals")) == \
            [("cr-a",), ("cr-b",)]
        db.execute("INSERT INTO platforms (id, name, created_at, updated_at)"
                   " VALUES ('cr-b', 'again', '2026-01-01T00:00:00Z',"
                   " '2026-01-01T00:00:00Z')")
        db.commit()
    finally:
        db.close()
    for pid in ("cr-a", "cr-b"):
        folder = os.path.join(host.data, "platforms", pid)
        os.makedirs(folder)
        with open(os.path.join(folder, pid + "-default-auth.db"), "w") as f:
            f.write("left over")
    host.start()
    assert not os.path.exists(os.path.join(host.data, "platforms", "cr-a"))
    assert os.path.exists(os.path.join(host.data, "platforms", "cr-b"))
    db = sqlite3.connect(os.path.join(host.data, "core.db"))
    try:
        assert db.execute("SELECT count(*) FROM platform_removals").fetchone() \
            == (0,)
    finally:
        db.close()
