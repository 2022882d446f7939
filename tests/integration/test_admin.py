"""The operator view (core plugin "admin"): served on its own origin
admin.{base} only (the other core API hosts send it there), with its types, security headers, ETag and 304; never on a
platform's hosts; holding no secret; and the operator API behind it still
refuses a platform's keys and sessions."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, NNO, Host

PASSWORD = "correct horse battery"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
       "manifest-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}


def ui_dir():
    from conftest import SOURCE
    return os.path.join(SOURCE, "plugins", "admin", "ui")


def ui_files():
    return sorted(os.listdir(ui_dir()))


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    host = Host(tmp_path_factory.mktemp("admin"), workers=2, core=True)
    host.start()
    host.platform("demo")
    st, _, a = host.api("PUT", "/platforms/demo/access", {"signup": True})
    assert st == 200, a
    yield host
    host.stop()


ADMIN = "admin.nno.localhost"


def get(h, path, host=ADMIN, headers=None, method="GET"):
    return h.request(method, path, host=host, headers=headers)


def assert_security_headers(hd):
    assert hd["content-security-policy"] == CSP
    assert hd["x-frame-options"] == "DENY"
    assert hd["referrer-policy"] == "no-referrer"
    assert hd["cross-origin-opener-policy"] == "same-origin"
    assert hd["cross-origin-resource-policy"] == "same-origin"
    assert hd["x-content-type-options"] == "nosniff"
    assert hd["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', hd["etag"]), hd["etag"]


def test_page_on_the_admin_host(h):
    st, hd, body = get(h, "/admin/")
    assert st == 200, body
    assert hd["content-type"] == TYPES["html"]
    assert_security_headers(hd)
    with open(os.path.join(ui_dir(), "index.html"), "rb") as f:
        assert body == f.read()
    # each header once
    c = h.conn()
    try:
        c.request("GET", "/admin/", headers={"Host": ADMIN})
        names = [n.lower() for n, _ in c.getresponse().getheaders()]
    finally:
        c.close()
    assert len(names) == len(set(names)), names
    # without the slash: sent to the page, whose URLs need it
    st, hd, body = get(h, "/admin")
    assert (st, hd["location"], body) == (308, "//%s/admin/" % ADMIN, b"")


@pytest.mark.parametrize("host", ["nno.localhost", "api.nno.localhost",
                                  "127.0.0.1", "unclaimed.example"])
def test_other_core_api_hosts_send_the_page_to_the_admin_host(h, host):
    """{base} also serves packages by path (/p/{p}/...): the view is not
    served on such an origin, only sent to its own."""
    for path in ("/admin/", "/admin/admin.js", "/admin"):
        st, hd, body = get(h, path, host=host)
        want = "//%s%s" % (ADMIN, path if path != "/admin" else "/admin/")
        assert (st, hd["location"], body) == (308, want, b""), (host, path)
        assert "content-security-policy" not in hd


def test_every_file_and_module_served_with_its_type(h):
    """Every file of ui/ answers with the type of its extension; every file
    the page or a module names is one of them (nothing missing)."""
    names = ui_files()
    assert "index.html" in names and "admin.js" in names
    referenced = set()
    for name in names:
        st, hd, body = get(h, "/admin/" + name)
        assert st == 200, (name, body)
        assert hd["content-type"] == TYPES[name.rsplit(".", 1)[1]], name
        assert_security_headers(hd)
        with open(os.path.join(ui_dir(), name), "rb") as f:
            assert body == f.read(), name
        text = body.decode()
        if name.endswith(".js"):
            referenced.update(re.findall(r"""(?:from|import\()\s*'\./([\w.-]+)'""",
                                         text))
        if name.endswith(".html"):
            referenced.update(re.findall(r'(?:src|href)="/admin/([\w.-]+)"', text))
    assert referenced, "the page names no module"
    assert referenced <= set(names), referenced - set(names)
    # HEAD: the same headers, no body
    st, hd, body = get(h, "/admin/admin.js", method="HEAD")
    assert (st, body) == (200, b"")
    assert hd["content-type"] == TYPES["js"]
    assert_security_headers(hd)


def test_nothing_inline(h):
    """CSP allows no inline script or style: the page has none to lose."""
    _, _, body = get(h, "/admin/")
    page = body.decode()
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert 'src="/admin/' in tag and 'type="module"' in tag, tag
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)
    # the modules build the DOM from nodes and text, never from markup
    for name in ui_files():
        if name.endswith(".js"):
            _, _, js = get(h, "/admin/" + name)
            assert b"innerHTML" not in js and b"eval(" not in js, name


def test_etag_and_304(h):
    st, hd, body = get(h, "/admin/admin.css")
    assert st == 200 and body
    tag = hd["etag"]
    for inm in (tag, "W/" + tag, '"nope", ' + tag, "*"):
        st, hd2, body2 = get(h, "/admin/admin.css",
                             headers={"If-None-Match": inm})
        assert (st, body2) == (304, b""), inm
        assert hd2["etag"] == tag
        assert hd2["cache-control"] == "no-cache"
    st, _, body2 = get(h, "/admin/admin.css",
                       headers={"If-None-Match": '"nope"'})
    assert (st, body2) == (200, body)
    # each file its own tag; the page's is stable across requests and workers
    _, hd3, _ = get(h, "/admin/")
    assert hd3["etag"] != tag
    assert {get(h, "/admin/")[1]["etag"] for _ in range(6)} == {hd3["etag"]}


@pytest.mark.parametrize("path", [
    "/admin/nope.js", "/admin/.hidden", "/admin/ui/admin.js",
    "/admin/admin.js/", "/admin/%61dmin.js", "/admin/..%2fpackage.json",
    "/admin/package.json", "/admin/libadmin.so", "/admin/index.html/x",
])
def test_unknown_files_are_404_problems(h, path):
    st, hd, body = get(h, path)
    assert st == 404, (path, body)
    assert hd["content-type"] == "application/problem+json"
    p = json.loads(body)
    assert p["status"] == 404 and p["request_id"] == hd["x-request-id"]


def test_only_get(h):
    st, hd, body = get(h, "/admin/", method="POST")
    assert st == 405, body
    assert hd["content-type"] == "application/problem+json"


@pytest.mark.parametrize("host,path", [
    ("demo.nno.localhost", "/admin/"),
    ("console.demo.nno.localhost", "/admin/"),
    ("console.demo.nno.localhost", "/admin/admin.js"),
    ("auth.svc.default.demo.nno.localhost", "/admin/"),
    ("x.demo.nno.localhost", "/admin"),
    ("nno.localhost", "/p/demo/admin/"),
    ("nno.localhost", "/p/demo/admin/admin.js"),
])
def test_never_on_a_platform(h, host, path):
    """Core routes never reach a platform's hosts nor its /p/ paths: the
    operator view is not served under a platform's origin."""
    st, hd, body = get(h, path, host=host)
    assert st == 404, (host, path, body)
    assert hd["content-type"] == "application/problem+json"
    assert "content-security-policy" not in hd
    assert json.loads(body)["request_id"] == hd["x-request-id"]


def test_no_secret_in_the_page(h):
    """The files are the same for anyone, whatever credential is sent, and
    hold no key: the operator types it, the page never carries one."""
    op = h.op_key()
    k = h.platform_key("demo", ["platform:read"])["key"]
    for name in ui_files():
        anon = get(h, "/admin/" + name)
        assert anon[0] == 200
        for cred in (op, k, "nno_op_bogus"):
            st, hd, body = get(h, "/admin/" + name,
                               headers={"Authorization": "Bearer " + cred})
            assert (st, hd["etag"], body) == (200, anon[1]["etag"], anon[2])
        text = anon[2].decode()
        assert op not in text and k not in text
        assert not re.search(r"nno_op_[A-Za-z0-9_-]{8,}", text), name
        assert not re.search(r"nnok_[a-z0-9-]+_[A-Za-z0-9_-]{8,}", text), name
        assert "set-cookie" not in anon[1]
    # the page stores the key for the tab only
    _, _, js = get(h, "/admin/api.js")
    assert b"sessionStorage" in js and b"localStorage.setItem" not in js
    assert b"document.cookie" not in js


def test_the_api_behind_it_refuses_platform_credentials(h):
    """What the view calls is the core API: a platform's API key or a
    user's session gets its 401/403 there, however it was sent."""
    key = h.platform_key("demo", ["platform:read", "tenants:read",
                                  "keys:read", "stacks:read"])["key"]
    st, _, body = h.request("POST", "/p/demo/auth/sign-up",
                            headers={"Content-Type": "application/json"},
                            body=json.dumps({"email": "u@example.com",
                                             "password": PASSWORD}))
    assert st == 201, body
    session = json.loads(body)["token"]
    for cred in (key, session):
        for method, path in (("GET", "/platforms"), ("GET", "/audit"),
                             ("POST", "/platforms/demo/suspend"),
                             ("POST", "/operator-key/rotate")):
            st, hd, p = h.api(method, path, key=cred, host="nno.localhost")
            assert st == 403, (cred[:5], path, p)
            assert hd["content-type"] == "application/problem+json"
            assert p["request_id"] == hd["x-request-id"]
    # a wrong operator key: 401, as the sign-in form shows
    st, hd, p = h.api("GET", "/platforms", key="nno_op_" + "x" * 43)
    assert st == 401 and hd["content-type"] == "application/problem+json", p
    # and the platform stays active
    st, _, p = h.api("GET", "/platforms/demo")
    assert (st, p["status"]) == (200, "active")


def test_admin_is_an_optional_core_plugin(tmp_path):
    """Built and installed beside the others, loaded when present, but not
    required by core_plugins' default: a plugin folder without it serves."""
    plugins = str(tmp_path / "plugins")
    shutil.copytree(os.path.join(BUILD, "lib", "nno", "plugins"), plugins)
    assert os.path.isfile(os.path.join(plugins, "admin", "libadmin.so"))
    shutil.rmtree(os.path.join(plugins, "admin"))
    env = dict(os.environ, NNO_PLUGIN_DIR=plugins)
    env.pop("NNO_CORE_PLUGINS", None)
    r = subprocess.run([NNO, "serve", "--check", "--data",
                        str(tmp_path / "var")], env=env, text=True,
                       capture_output=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "configuration ok\n"), r
    (tmp_path / "h").mkdir()
    host = Host(tmp_path / "h", workers=1, core=True,
                config={"plugin_dir": plugins})
    host.start()
    try:
        st, hd, _ = host.request("GET", "/admin/", host="nno.localhost")
        assert st == 404 and "content-security-policy" not in hd
        assert host.api("GET", "/platforms")[0] == 200
    finally:
        host.stop()
