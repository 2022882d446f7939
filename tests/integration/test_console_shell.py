"""The console package, black box: the shell page on the console host only,
the public profile, the composition of the UI contributions of the
packages active on a platform (per stack version, filtered by the
caller's scopes, following activations), the tenants a caller may act
in, and the packages' ui/ assets (types, ETag and 304, caching by where
the package lies, only the versions a platform runs, nothing outside
ui/). packages/console/README.md describes what is tested here.

The fixture stack "shop" carries the fixture package steady under a
manifest with a "ui": version 1.0.0 is a folder stack (stacks_dirs),
version 2.0.0 an installed archive; each ships its own module and label."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, NNO, Host
from test_iam import call, op, problem, started, stopped, tenant

STEADY_SO = os.path.join(BUILD, "tests", "packages", "steady", "libsteady.so")
BASE = "/console/ui/default/1.0.0/console/1.0.0"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
       "manifest-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
JS = "text/javascript; charset=utf-8"


def shop_stack(root, version, label, module, extra_routes=(), extra_nav=()):
    """Write stack shop@version under root/shop/version: steady with a ui
    of one module, one nav entry and its routes; returns the folder."""
    top = os.path.join(str(root), "shop", version)
    pkg = os.path.join(top, "packages", "steady")
    os.makedirs(os.path.join(pkg, "ui", "sub"))
    with open(os.path.join(top, "stack.json"), "w") as f:
        json.dump({"id": "shop", "version": version,
                   "packages": [{"name": "steady", "version": "^1.0.0"}]}, f)
    manifest = {
        "name": "steady", "version": "1.0.0", "abi": "1.5",
        "kind": "feature", "library": "libsteady.so",
        "routes": [{"method": "GET", "path": "/ok", "scope": "public"},
                   {"method": "GET", "path": "/slow", "scope": "public"}],
        "ui": {"module": "ui/" + module,
               "nav": [{"label": label, "path": "/shop", "order": 5}] +
                      list(extra_nav),
               "routes": [{"path": "/shop"}] + list(extra_routes)}}
    with open(os.path.join(pkg, "package.json"), "w") as f:
        json.dump(manifest, f)
    shutil.copy(STEADY_SO, os.path.join(pkg, "libsteady.so"))
    with open(os.path.join(pkg, "ui", module), "w") as f:
        f.write("export function mount(el) { el.textContent = %s; }\n"
                % json.dumps(label))
    with open(os.path.join(pkg, "ui", "sub", "look.css"), "w") as f:
        f.write("p { color: #123456; }\n")
    with open(os.path.join(pkg, "ui", ".secret"), "w") as f:
        f.write("not for the web\n")
    for dirpath, dirs, files in os.walk(top):
        os.chmod(dirpath, 0o755)
        for n in files:
            os.chmod(os.path.join(dirpath, n), 0o644)
    os.chmod(os.path.join(pkg, "libsteady.so"), 0o755)
    return top


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    """Core plugins, 2 workers, the default stack, shop@1.0.0 as a folder
    stack and shop@2.0.0 installed from its archive. Platforms: alpha
    runs shop 1.0.0, beta shop 2.0.0."""
    tmp = tmp_path_factory.mktemp("console-shell")
    folder = tmp / "stacks"
    shop_stack(folder, "1.0.0", "Shop one", "shop1.js")
    two = shop_stack(tmp / "build", "2.0.0", "Shop two", "shop2.js",
                     [{"path": "/shop/{item}", "scope": "write"}],
                     [{"label": "An item", "path": "/shop/{item}"}])
    r = subprocess.run([NNO, "stack", "pack", two, "-o", str(tmp)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (tmp / "host").mkdir()
    host = started(Host(tmp / "host", workers=2, core=True,
                        stacks=[str(folder)]))
    with open(os.path.join(str(tmp), "shop-2.0.0.tar.gz"), "rb") as f:
        st, _, b = host.api("POST", "/stacks", f.read(),
                            headers={"Content-Type": "application/gzip"},
                            timeout=60)
    assert st == 201, b
    # unmetered: the anonymous asset requests of these tests would pass
    # the free plan's anonymous burst
    host.platform("alpha", stacks=["default", "shop@1.0.0"], name="Alpha",
                  plan="unmetered")
    host.platform("beta", stacks=["default", "shop@2.0.0"], name="Beta",
                  plan="unmetered")
    host.keys = {p: host.platform_key(p, ["features:*"])["key"]
                 for p in ("alpha", "beta")}
    yield host
    stopped(host)


def on(c, pid):
    """The console host of platform pid: every console route answers only
on the platform's own hosts (test_console_origin.py: not by /p/ path)."""
    return "console.%s.nno.localhost:%d" % (pid, c.port)


def ui(c, pid, key, **kw):
    st, hd, body = call(c, "GET", "/console/ui", key=key, host=on(c, pid),
                        **kw)
    assert st == 200, body
    assert hd["cache-control"] == "no-store"
    return body


def by_package(body):
    return {p["package"]: p for p in body["packages"]}


# -- the composition -------------------------------------------------------------

def test_composition_per_platform_and_stack_version(c):
    a = ui(c, "alpha", c.keys["alpha"])
    assert a["platform"] == "alpha"
    # stack order, then package order; auth has no ui, console is the shell
    assert [(p["stack"], p["package"]) for p in a["packages"]] == [
        ("default", "hello"), ("default", "notes"), ("shop", "steady")]
    assert by_package(a)["steady"] == {
        "stack": "shop", "stack_version": "1.0.0", "package": "steady",
        "version": "1.0.0",
        "module": "/console/ui/shop/1.0.0/steady/1.0.0/shop1.js",
        "nav": [{"label": "Shop one", "path": "/shop",
                 "scope": "features:steady:read", "order": 5}],
        "routes": [{"path": "/shop", "scope": "features:steady:read"}],
        "scopes": ["features:steady:read"]}
    hello = by_package(a)["hello"]
    assert hello["module"] == "/console/ui/default/1.0.0/hello/1.0.0/hello.js"
    assert hello["nav"][0]["label"] == "Hello"

    b = by_package(ui(c, "beta", c.keys["beta"]))["steady"]
    assert b["stack_version"] == "2.0.0"
    assert b["module"] == "/console/ui/shop/2.0.0/steady/1.0.0/shop2.js"
    assert [n["label"] for n in b["nav"]] == ["Shop two", "An item"]
    assert b["routes"] == [
        {"path": "/shop", "scope": "features:steady:read"},
        {"path": "/shop/{item}", "scope": "features:steady:write"}]
    assert b["scopes"] == ["features:steady:read", "features:steady:write"]


def test_composition_needs_a_credential(c):
    problem(call(c, "GET", "/console/ui", host=on(c, "alpha")), 401)
    problem(call(c, "GET", "/console/tenants", host=on(c, "alpha")), 401)
    # a key of another platform reaches nothing here
    st, _, _ = call(c, "GET", "/console/ui", key=c.keys["beta"],
                    host=on(c, "alpha"))
    assert st in (401, 403)


def test_scope_filtering(c):
    k = c.platform_key("beta", ["features:hello:*"])["key"]
    body = ui(c, "beta", k)
    assert [p["package"] for p in body["packages"]] == ["hello"]
    assert body["packages"][0]["scopes"] == ["features:hello:read"]

    # read only: the write route goes, and the nav entry leading to it
    # (allowed by its own scope) with it
    k = c.platform_key("beta", ["features:steady:read"])["key"]
    s = by_package(ui(c, "beta", k))
    assert list(s) == ["steady"]
    assert s["steady"]["routes"] == [
        {"path": "/shop", "scope": "features:steady:read"}]
    assert [n["label"] for n in s["steady"]["nav"]] == ["Shop two"]
    assert s["steady"]["scopes"] == ["features:steady:read"]

    # write covers read (IAM's rule): everything
    k = c.platform_key("beta", ["features:steady:write"])["key"]
    s = by_package(ui(c, "beta", k))["steady"]
    assert len(s["routes"]) == 2
    assert [n["label"] for n in s["nav"]] == ["Shop two", "An item"]
    assert s["nav"][1] == {"label": "An item", "path": "/shop/{item}",
                           "scope": "features:steady:read", "order": 100}

    k = c.platform_key("beta", ["tenants:read"])["key"]
    assert ui(c, "beta", k)["packages"] == []


def test_activation_upgrade_and_deactivation_on_the_next_request(c):
    c.platform("gamma", stacks=["default"], plan="unmetered")
    key = c.platform_key("gamma", ["features:*"])["key"]

    def steady():
        # several requests: each worker must see the change
        seen = [by_package(ui(c, "gamma", key)).get("steady")
                for _ in range(6)]
        assert all(s == seen[0] for s in seen), seen
        return seen[0]

    assert steady() is None
    st, _, b = op(c, "POST", "/platforms/gamma/stacks",
                  {"stack": "shop", "version": "1.0.0"})
    assert st == 201, b
    assert steady()["nav"][0]["label"] == "Shop one"
    st, _, b = op(c, "POST", "/platforms/gamma/stacks",
                  {"stack": "shop", "version": "2.0.0"})
    assert st == 200, b
    s = steady()
    assert s["nav"][0]["label"] == "Shop two"
    assert s["module"].endswith("/shop/2.0.0/steady/1.0.0/shop2.js")
    st, _, b = op(c, "DELETE", "/platforms/gamma/stacks/shop")
    assert st in (200, 204), b
    assert steady() is None


# -- assets ------------------------------------------------------------------------

def asset(c, pid, rest, method="GET", headers=None):
    return call(c, method, "/console/ui/%s" % rest, host=on(c, pid),
                headers=headers)


def test_assets_types_etag_and_caching(c):
    # public: no credential needed
    st, hd, body = asset(c, "alpha", "shop/1.0.0/steady/1.0.0/shop1.js")
    assert st == 200, body
    assert body == b'export function mount(el) { el.textContent = "Shop one"; }\n'
    assert hd["content-type"] == JS
    assert hd["x-content-type-options"] == "nosniff"
    # a folder stack can change under the same version
    assert hd["cache-control"] == "no-cache"
    etag = hd["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    st, hd2, body = asset(c, "alpha", "shop/1.0.0/steady/1.0.0/shop1.js",
                          headers={"If-None-Match": etag})
    assert st == 304 and not body and hd2["etag"] == etag
    st, hd2, body = asset(c, "alpha", "shop/1.0.0/steady/1.0.0/shop1.js",
                          method="HEAD")
    assert st == 200 and not body and hd2["etag"] == etag
    assert hd2["content-length"] == hd["content-length"]

    st, hd, body = asset(c, "alpha", "shop/1.0.0/steady/1.0.0/sub/look.css")
    assert st == 200 and hd["content-type"] == "text/css; charset=utf-8"

    # an installed archive never changes: cached for good
    st, hd, body = asset(c, "beta", "shop/2.0.0/steady/1.0.0/shop2.js")
    assert st == 200, body
    assert hd["cache-control"] == "public, max-age=31536000, immutable"

    # the shell's own files, builtin
    st, hd, body = call(c, "GET", BASE + "/shell.js", host=on(c, "alpha"))
    assert st == 200 and hd["content-type"] == JS
    assert hd["cache-control"] == "no-cache"
    st, hd, body = call(c, "GET", BASE + "/shell.css", host=on(c, "alpha"))
    assert st == 200 and hd["content-type"] == "text/css; charset=utf-8"


def test_assets_only_of_versions_the_platform_runs(c):
    for pid, rest in (
            ("alpha", "shop/2.0.0/steady/1.0.0/shop2.js"),  # beta's version
            ("beta", "shop/1.0.0/steady/1.0.0/shop1.js"),   # alpha's
            ("alpha", "shop/1.0.0/steady/2.0.0/shop1.js"),  # no such package
            ("alpha", "shop/1.0.0/hello/1.0.0/hello.js"),   # not in shop
            ("alpha", "default/9.0.0/hello/1.0.0/hello.js"),
            ("alpha", "nope/1.0.0/steady/1.0.0/shop1.js")):
        problem(asset(c, pid, rest), 404)
    c.platform("delta", stacks=["default"], plan="unmetered")
    problem(asset(c, "delta", "shop/1.0.0/steady/1.0.0/shop1.js"), 404)


def test_assets_nothing_outside_ui(c):
    pre = "shop/1.0.0/steady/1.0.0/"
    for rest in ("package.json", "libsteady.so", "../package.json",
                 "..%2fpackage.json", "sub/../../package.json", ".secret",
                 "sub/.", "sub", "sub/", "", "%2e%2e/package.json",
                 "../libsteady.so", "ui/shop1.js", "shop1.js%00.css",
                 "a/b/c/d/e/f/g/h/i.js"):
        st, hd, body = asset(c, "alpha", pre + rest)
        assert st in (400, 404), (rest, st, body)
        assert b"not for the web" not in (body or b"")
        assert b"libsteady" not in (body or b"")
    # a link inside ui/ is not followed, even to a file beside it
    ui_dir = os.path.join(c.stacks[0], "shop", "1.0.0", "packages", "steady",
                          "ui")
    os.symlink("../package.json", os.path.join(ui_dir, "link.js"))
    try:
        problem(asset(c, "alpha", pre + "link.js"), 404)
    finally:
        os.unlink(os.path.join(ui_dir, "link.js"))


# -- the page ----------------------------------------------------------------------

def test_page_only_on_the_console_host(c):
    host = "console.alpha.nno.localhost:%d" % c.port
    st, hd, body = call(c, "GET", "/", host=host)
    assert st == 200, body
    assert hd["content-type"] == "text/html; charset=utf-8"
    assert hd["content-security-policy"] == CSP
    assert hd["x-frame-options"] == "DENY"
    assert hd["referrer-policy"] == "no-referrer"
    assert hd["x-content-type-options"] == "nosniff"
    assert hd["cache-control"] == "no-cache"
    assert b"{{base}}" not in body
    assert (BASE + "/shell.js").encode() in body
    st, _, again = call(c, "GET", "/", host=host,
                        headers={"If-None-Match": hd["etag"]})
    assert st == 304 and not again

    want = ("the console of platform alpha is at "
            "http://console.alpha.nno.localhost:%d/" % c.port)
    problem(call(c, "GET", "/", host="hello.alpha.nno.localhost:%d" % c.port),
            404, want)
    problem(call(c, "GET", "/", host="alpha.nno.localhost:%d" % c.port),
            404, want)
    problem(call(c, "GET", "/p/alpha/"), 404, want)


# -- profile and tenants -----------------------------------------------------------

def test_profile_is_public_and_shows_signup_and_base(c):
    st, hd, body = call(c, "GET", "/console/profile", host=on(c, "alpha"))
    assert st == 200, body
    assert hd["cache-control"] == "no-store"
    assert body == {"id": "alpha", "name": "Alpha", "class": "platform",
                    "status": "active", "branding": {}, "signup": False,
                    "base": BASE}
    st, _, a = op(c, "PUT", "/platforms/alpha/access",
                  {"signup": True, "cors_origins": []})
    assert st == 200, a
    st, _, body = call(c, "GET", "/console/profile",
                       host="console.alpha.nno.localhost:%d" % c.port)
    assert st == 200 and body["signup"] is True, body

    # the operator's branding, as set, on the next load
    brand = {"primary": "#1a4d8f", "background": "#ffffff",
             "foreground": "#111111",
             "logo": "data:image/png;base64,iVBORw0KGgo="}
    st, _, p = op(c, "PATCH", "/platforms/alpha", {"branding": brand})
    assert st == 200, p
    for _ in range(4):  # every worker
        st, _, body = call(c, "GET", "/console/profile", host=on(c, "alpha"))
        assert st == 200 and body["branding"] == brand, body
        assert body["name"] == "Alpha" and body["base"] == BASE


def test_tenants_of_the_caller(c):
    c.platform("eps", stacks=["default"], plan="unmetered")
    tenant(c, "eps", "eu")
    tenant(c, "eps", "fr", parent="eu")
    tenant(c, "eps", "us")
    st, _, b = op(c, "PATCH", "/platforms/eps/tenants/us",
                  {"status": "suspended"})
    assert st == 200, b
    unbound = c.platform_key("eps", ["features:*", "tenants:read"])["key"]
    st, hd, body = call(c, "GET", "/console/tenants", key=unbound,
                        host=on(c, "eps"))
    assert st == 200, body
    assert hd["cache-control"] == "no-store"
    assert body["tenant"] is None
    assert [(t["id"], t["path"], t["status"]) for t in body["items"]] == [
        ("eu", "eu", "active"), ("fr", "eu/fr", "active"),
        ("us", "us", "suspended")]
    assert body["items"][0]["name"] == "Tenant eu"

    bound = c.platform_key("eps", ["features:*", "tenants:read"],
                           tenant="eu")["key"]
    st, _, body = call(c, "GET", "/console/tenants", key=bound,
                       host=on(c, "eps"))
    assert st == 200, body
    assert body["tenant"] == "eu"
    assert [t["id"] for t in body["items"]] == ["eu", "fr"]
