"""The gateway side of the console shell, black box: the registry's
service members a console package reads (platform_profile,
platform_stack_at, tenant_list), IAM's scope_allows, platform branding,
auth.svc narrowing, the host-only session cookie and the Nno-Tenant header
(registry/README.md, plugins/iam/README.md, packages/auth/README.md)."""
import os
from urllib.parse import urlencode

import pytest

from conftest import FIXTURE_STACKS, Host
from test_iam import op, problem, started, stopped, tenant

REGPROBE = os.path.join(FIXTURE_STACKS, "regprobe")
NNO_ENOENT = -3
NNO_EINVAL = -1


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    """Core plugins, 2 workers, the default stack and the regprobe fixture
    stack (the service members called from a feature package)."""
    host = started(Host(tmp_path_factory.mktemp("console-gw"), workers=2,
                        core=True, stacks=[REGPROBE],
                        config={"sandbox": {"inprocess": "default,regprobe"}}))
    yield host
    stopped(host)


def probe(g, pid, path):
    st, _, body = g.json("GET", "/p/%s/regprobe/%s" % (pid, path))
    assert st == 200, body
    return body


def new_platform(g, pid, stacks=("default", "regprobe"), **fields):
    body = {"id": pid, "name": "Platform " + pid}
    body.update(fields)
    if stacks:
        body["stacks"] = list(stacks)
    st, _, p = op(g, "POST", "/platforms", body)
    assert st == 201, p
    return p


def suspend_tenant(g, pid, tid, status="suspended"):
    st, _, b = op(g, "PATCH", "/platforms/%s/tenants/%s" % (pid, tid),
                  {"status": status})
    assert st == 200, b


# -- nno.registry: platform_profile, platform_stack_at, tenant_list ---------

def test_profile_of_the_request_platform(g):
    new_platform(g, "prof-a", name="Acme")
    got = probe(g, "prof-a", "profile")
    assert got["rc"] == 0, got
    assert got["profile"] == {"id": "prof-a", "name": "Acme",
                              "class": "platform", "status": "active",
                              "branding": {}}
    # a buffer too small is refused (NNO_EINVAL), never cut
    assert got["rc_small"] == NNO_EINVAL and got["rc_bad"] == NNO_EINVAL


def test_stack_at_lists_the_active_versions_in_order(g):
    new_platform(g, "stk-a")
    got = probe(g, "stk-a", "stacks")
    assert got["items"] == ["default@1.0.0", "regprobe@1.0.0"], got
    assert got["end"] == NNO_ENOENT and got["unknown"] == NNO_ENOENT
    # deactivating a stack changes the answer on the next call
    st, _, b = op(g, "DELETE", "/platforms/stk-a/stacks/default")
    assert st in (200, 204), b
    for _ in range(4):  # both workers
        assert probe(g, "stk-a", "stacks")["items"] == ["regprobe@1.0.0"]


def test_tenant_list_depth_first_subtree(g):
    new_platform(g, "ten-a")
    for tid, parent in (("eu", None), ("us", None), ("fr", "eu"),
                        ("de", "eu"), ("eu-x", None), ("pa", "fr")):
        tenant(g, "ten-a", tid, parent)
    suspend_tenant(g, "ten-a", "de")
    got = probe(g, "ten-a", "tenants")
    assert got["rc"] == 0, got
    assert [(t["id"], t["path"], t["status"]) for t in got["items"]] == [
        ("eu", "eu", "active"), ("de", "eu/de", "suspended"),
        ("fr", "eu/fr", "active"), ("pa", "eu/fr/pa", "active"),
        ("eu-x", "eu-x", "active"), ("us", "us", "active")]
    assert got["items"][0]["name"] == "Tenant eu"
    sub = probe(g, "ten-a", "tenants?root=fr")
    assert [(t["id"], t["path"]) for t in sub["items"]] == [
        ("fr", "eu/fr"), ("pa", "eu/fr/pa")]
    assert probe(g, "ten-a", "tenants?root=nope") == {"items": [],
                                                      "rc": NNO_ENOENT}
    # the callback's own value stops the walk and comes back as is
    stop = probe(g, "ten-a", "tenants?stop=2")
    assert stop["rc"] == 7 and len(stop["items"]) == 2


# -- nno.iam: scope_allows ----------------------------------------------------

@pytest.fixture(scope="module")
def scope_platform(g):
    new_platform(g, "scp-a")
    return "scp-a"


@pytest.mark.parametrize("granted,needed,want", [
    ("features:notes:read", "features:notes:read", 1),
    ("features:notes:write", "features:notes:read", 1),
    ("features:notes:read", "features:notes:write", 0),
    ("features:*", "features:notes:read", 1),
    ("features:notes:*", "features:notes:write", 1),
    ("*", "features:hello:read", 1),
    ("features:hello:read tenants:read", "features:notes:read", 0),
    ("", "features:notes:read", 0),
    ("features:notes:read", "", 0),
])
def test_scope_allows_is_the_authz_matcher(g, scope_platform, granted,
                                           needed, want):
    got = probe(g, scope_platform, "scope?" + urlencode(
        {"granted": granted, "needed": needed}))
    assert got == {"allows": want}
