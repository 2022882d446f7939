"""The console's origin and what it hands out, black box: every console
route (page, profile, composition, tenants, assets) answers only on the
platform's own hosts, never by /p/{p}/ path on a host shared with the core
API and every platform; every asset carries a sandboxing policy; the
tenant list needs tenants:read and says when it was cut at the registry's
bound. packages/console/README.md describes what is tested here."""
import http.client
import json

import pytest

from conftest import Host
from test_iam import call, op, problem, started, stopped, tenant

BASE = "/console/ui/default/1.0.0/console/1.0.0"
ASSET_CSP = "default-src 'none'; sandbox"
TENANTS_MAX = 1000  # NNO_REGISTRY_TENANTS_MAX


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    """Core plugins, 2 workers, the builtin default stack; platform demo."""
    host = started(Host(tmp_path_factory.mktemp("console-origin"), workers=2,
                        core=True))
    # unmetered: the anonymous asset requests would pass the free burst
    host.platform("demo", stacks=["default"], name="Demo", plan="unmetered")
    yield host
    stopped(host)


def on(g, name="console"):
    return "%s.demo.nno.localhost:%d" % (name, g.port)


def test_every_console_route_only_on_the_platforms_hosts(g):
    key = g.platform_key("demo", ["features:*", "tenants:read"])["key"]
    routes = (("/console/profile", None), ("/console/ui", key),
              ("/console/tenants", key), (BASE + "/shell.js", None),
              (BASE + "/index.html", None), ("/console/boot.js", None),
              ("/console/ui/default/1.0.0/hello/1.0.0/hello.js", None))
    for path, k in routes:
        for name in ("console", "hello"):
            st, _, body = call(g, "GET", path, key=k, host=on(g, name))
            assert st == 200, (path, name, st, body)

    # by path, on hosts shared with the core API, the operator view and
    # every other platform: a 404 naming the console's own URL
    want = ("the console of platform demo is at "
            "http://console.demo.nno.localhost:%d/" % g.port)
    shared = ("nno.localhost:%d" % g.port, "api.nno.localhost:%d" % g.port,
              "127.0.0.1:%d" % g.port)
    for path, k in routes + (("/", None),):
        for host in shared:
            problem(call(g, "GET", "/p/demo" + path, key=k, host=host), 404,
                    want)
    # a feature route by path is still served
    st, _, body = call(g, "GET", "/p/demo/hello", key=key)
    assert st == 200, body


def test_assets_carry_a_sandboxing_policy(g):
    for path in ("/console/boot.js", BASE + "/shell.js", BASE + "/shell.css",
                 BASE + "/index.html", BASE + "/icon.svg",
                 "/console/ui/default/1.0.0/notes/1.0.0/notes.js"):
        st, hd, body = call(g, "GET", path, host=on(g))
        assert st == 200, (path, body)
        assert hd["content-security-policy"] == ASSET_CSP, path
        assert hd["x-frame-options"] == "DENY", path
        assert hd["cross-origin-resource-policy"] == "same-origin", path
        assert hd["x-content-type-options"] == "nosniff", path
    st, hd, _ = call(g, "GET", BASE + "/index.html", host=on(g))
    assert hd["content-type"] == "text/html; charset=utf-8"
    # the page keeps its own policy, which lets its scripts run
    st, hd, body = call(g, "GET", "/", host=on(g))
    assert st == 200, body
    assert "script-src 'self'" in hd["content-security-policy"]
    assert "sandbox" not in hd["content-security-policy"]


def test_tenants_listed_only_with_tenants_read(g):
    g.platform("trd", stacks=["default"], plan="unmetered")
    tenant(g, "trd", "eu")
    tenant(g, "trd", "fr", parent="eu")
    host = "console.trd.nno.localhost:%d" % g.port
    for scopes, bound in ((["features:hello:read"], None),
                          (["features:*"], None),
                          (["features:hello:read"], "eu")):
        k = g.platform_key("trd", scopes, tenant=bound)["key"]
        st, hd, body = call(g, "GET", "/console/tenants", key=k, host=host)
        assert st == 200, body
        assert hd["cache-control"] == "no-store"
        assert body == {"tenant": bound, "items": []}, (scopes, body)
        # the core API refuses the same key the list
        st, _, _ = call(g, "GET", "/api/v1/platforms/trd/tenants", key=k)
        assert st == 403, (scopes, st)
    for scopes in (["features:hello:read", "tenants:read"], ["tenants:*"]):
        k = g.platform_key("trd", scopes)["key"]
        st, _, body = call(g, "GET", "/console/tenants", key=k, host=host)
        assert st == 200, body
        assert body["tenant"] is None and "truncated" not in body
        assert [t["id"] for t in body["items"]] == ["eu", "fr"], scopes
    k = g.platform_key("trd", ["tenants:read"], tenant="eu")["key"]
    st, _, body = call(g, "GET", "/console/tenants", key=k, host=host)
    assert st == 200 and body["tenant"] == "eu", body
    assert [t["id"] for t in body["items"]] == ["eu", "fr"]


def test_a_tenant_list_cut_at_the_bound_says_so(g):
    g.platform("many", stacks=["default"], plan="unmetered")
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=30)
    hd = {"Authorization": "Bearer " + g.op_key(),
          "Content-Type": "application/json"}
    try:
        for i in range(TENANTS_MAX):
            conn.request("POST", "/api/v1/platforms/many/tenants",
                         json.dumps({"id": "t%04d" % i, "name": "T%d" % i}),
                         headers=hd)
            r = conn.getresponse()
            assert r.status == 201, r.read()
            r.read()
    finally:
        conn.close()
    host = "console.many.nno.localhost:%d" % g.port
    k = g.platform_key("many", ["tenants:read"])["key"]
    # exactly the bound: all of them, nothing cut
    st, _, body = call(g, "GET", "/console/tenants", key=k, host=host)
    assert st == 200, body
    assert len(body["items"]) == TENANTS_MAX and "truncated" not in body
    tenant(g, "many", "t9999")
    st, _, body = call(g, "GET", "/console/tenants", key=k, host=host)
    assert st == 200, body
    assert body["truncated"] is True
    assert len(body["items"]) == TENANTS_MAX
    assert body["items"][0]["id"] == "t0000"
    assert "t9999" not in [t["id"] for t in body["items"]]


def test_routes_hidden_for_lack_of_scope_are_named(g):
    """The shell must not match a hidden literal route (/notes/new) with a
    parameter route it shows (/notes/{id})."""
    k = g.platform_key("demo", ["features:notes:read"])["key"]
    st, _, body = call(g, "GET", "/console/ui", key=k, host=on(g))
    assert st == 200, body
    notes = [p for p in body["packages"] if p["package"] == "notes"][0]
    assert [r["path"] for r in notes["routes"]] == ["/notes", "/notes/{id}"]
    assert notes["hidden"] == ["/notes/new"]
    k = g.platform_key("demo", ["features:notes:write"])["key"]
    st, _, body = call(g, "GET", "/console/ui", key=k, host=on(g))
    notes = [p for p in body["packages"] if p["package"] == "notes"][0]
    assert "/notes/new" in [r["path"] for r in notes["routes"]]
    assert "hidden" not in notes


def test_the_page_loads_the_shell_through_its_loader(g):
    st, _, body = call(g, "GET", "/", host=on(g))
    assert st == 200, body
    assert b'<script type="module" src="/console/boot.js">' in body
    assert ('<meta name="nno-base" content="%s">' % BASE).encode() in body
    st, hd, body = call(g, "GET", "/console/boot.js", host=on(g))
    assert st == 200 and hd["content-type"] == "text/javascript; charset=utf-8"
    assert hd["cache-control"] == "no-cache"
    assert b"shell.js" in body
