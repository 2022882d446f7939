"""The operator view has an origin of its own, admin.{base}, where nothing
a package controls is served: the key it keeps in sessionStorage is out of
reach of any package's page. On {base} (and the other core API hosts) the
/p/{platform}/ path form serves packages' handlers and ui/ files, HTML
included, so the view is not served there: /admin/... answers a 308 to
admin.{base}. On admin.{base} the /p/ path form answers 404, and no
platform may be named "admin"."""
import json

import pytest

from conftest import Host

BASE = "nno.localhost"
ADMIN = "admin." + BASE
# The console package's own page, a package's HTML served by path.
PKG_HTML = "/p/demo/console/ui/default/1.0.0/console/1.0.0/index.html"


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    host = Host(tmp_path_factory.mktemp("admin-origin"), workers=1, core=True)
    host.start()
    host.platform("demo", plan="unmetered")
    yield host
    host.stop()


def is_problem(r, status):
    st, hd, body = r
    assert st == status, body
    assert hd["content-type"] == "application/problem+json"
    assert json.loads(body)["request_id"] == hd["x-request-id"]
    return json.loads(body)


def test_package_html_and_the_view_never_share_an_origin(h):
    # {base}: packages' routes are served by path (the console's files
    # no longer are: only on the platform's own hosts) ...
    st, hd, body = h.request("GET", "/p/demo/auth/session", host=BASE)
    assert st == 401 and b"request_id" in body, body
    is_problem(h.request("GET", PKG_HTML, host=BASE), 404)
    # ... so the view is not: only a redirect to its own origin.
    st, hd, body = h.request("GET", "/admin/", host=BASE)
    assert (st, hd["location"], body) == (308, "//%s/admin/" % ADMIN, b"")
    assert "content-security-policy" not in hd
    # admin.{base}: the view is served ...
    st, hd, body = h.request("GET", "/admin/", host=ADMIN)
    assert st == 200 and hd["content-type"].startswith("text/html"), body
    # ... and no package's file nor handler.
    for path in (PKG_HTML, "/p/demo/console/ui", "/p/demo/auth/sign-up",
                 "/p/demo/", "/p/admin/x"):
        is_problem(h.request("GET", path, host=ADMIN), 404)
        is_problem(h.request("GET", path, host=ADMIN + ":8080"), 404)


def test_the_core_api_is_served_on_the_admin_host(h):
    st, _, body = h.api("GET", "/platforms", host=ADMIN)
    assert st == 200, body
    assert "demo" in {p["id"] for p in body["items"]}


@pytest.mark.parametrize("host,want", [
    ("nno.localhost:8080", "//admin.nno.localhost:8080"),
    ("api.nno.localhost:18080", "//admin.nno.localhost:18080"),
    ("127.0.0.1:9", "//admin.nno.localhost:9"),
    ("[::1]:8443", "//admin.nno.localhost:8443"),
    ("unclaimed.example", "//admin.nno.localhost"),
    ("nno.localhost:", "//admin.nno.localhost"),
])
def test_old_links_go_to_the_admin_host_keeping_the_port(h, host, want):
    for path in ("/admin/", "/admin/admin.js", "/admin/nope.js",
                 "/admin/?x=1"):
        st, hd, body = h.request("GET", path, host=host)
        assert (st, hd["location"], body) == (308, want + path, b""), host
        assert hd["cross-origin-opener-policy"] == "same-origin"
        assert hd["cross-origin-resource-policy"] == "same-origin"
    st, hd, _ = h.request("GET", "/admin", host=host)
    assert (st, hd["location"]) == (308, want + "/admin/")


@pytest.mark.parametrize("host", ["nno.localhost:80x", "nno.localhost:8 0",
                                  "nno.localhost:123456",
                                  "nno.localhost:80/evil.example"])
def test_a_port_not_digits_is_never_echoed(h, host):
    """The host refuses such a Host header; were one to pass, the view
    drops the port rather than echo it into Location."""
    st, hd, body = h.request("GET", "/admin/", host=host)
    if st == 308:
        assert hd["location"] == "//%s/admin/" % ADMIN
    else:
        is_problem((st, hd, body), 400)


def test_isolation_headers_on_every_admin_answer(h):
    for path, status in (("/admin/", 200), ("/admin/admin.js", 200),
                         ("/admin/nope.js", 404), ("/admin", 308)):
        st, hd, _ = h.request("GET", path, host=ADMIN + ":8080")
        assert st == status, path
        assert hd["cross-origin-opener-policy"] == "same-origin", path
        assert hd["cross-origin-resource-policy"] == "same-origin", path
    _, hd, _ = h.request("GET", "/admin", host=ADMIN + ":8080")
    assert hd["location"] == "//%s:8080/admin/" % ADMIN


def test_admin_is_a_reserved_platform_id(h):
    for pid in ("admin", "api"):
        st, _, p = h.api("POST", "/platforms", {"id": pid, "name": "X"})
        assert st == 422, p
        assert "reserved" in p["detail"], p
    assert h.api("GET", "/platforms/admin")[0] == 404
    # admin.{base} belongs to no platform: a name under it is claimed by
    # the platform "admin", which cannot exist
    is_problem(h.request("GET", "/admin/", host="x." + ADMIN), 404)
