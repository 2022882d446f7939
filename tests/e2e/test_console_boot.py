"""The shell where loading or routing goes wrong, in the browser: the
composition unreachable at the network level shows the error state with
"Try again" (never an endless "Loading…"), a route hidden for lack of scope
does not fall through to a parameter route, a user without tenants:read
gets no tenant switcher, and a package's .html file opened directly in the
console's origin runs no script."""
import json
import os
import shutil

import pytest

from conftest import BUILD, Host, make_platform, sign_up

EMAIL = "bo@example.com"
STEADY_SO = os.path.join(BUILD, "tests", "packages", "steady", "libsteady.so")


def block(page, urls):
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": urls})


def test_composition_unreachable_shows_error_and_retry(page, host):
    pid = "e2e-boot-net"
    make_platform(host, pid)
    sign_up(host, pid, EMAIL)
    page.open(pid)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    # Chromium matches these patterns anywhere in a URL: every asset under
    # /console/ui/... is refused too, the shell's own module included.
    block(page, ["*/console/ui"])
    try:
        page.get(page.console_url(pid, "/hello"))
        page.driver.refresh()  # a new document (the hash alone is not)
        page.wait_state("error")
        retry = page.wait("#state button")
        assert retry.text.strip() == "Try again"
        assert page.js("return document.documentElement.dataset.shell") \
            == "ready"
    finally:
        block(page, [])
    retry.click()
    page.view("/hello")
    page.wait("p#hello-greeting")


def test_a_route_hidden_for_lack_of_scope_is_not_a_parameter(page, host):
    pid = "e2e-boot-ro"
    make_platform(host, pid, user_scopes=["features:notes:read",
                                          "features:hello:read"])
    sign_up(host, pid, EMAIL)
    page.open(pid)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    page.get(page.console_url(pid, "/notes/new"))
    page.driver.refresh()
    page.ready()
    page.wait_state("not-found")
    assert page.find('#view[data-route="/notes/{id}"]') is None
    assert "Note not found" not in page.find("body").text
    # the parameter route still answers other values
    page.get(page.console_url(pid, "/notes"))
    page.view("/notes")


def test_no_tenant_switcher_without_tenants_read(page, host):
    pid = "e2e-boot-nosw"
    make_platform(host, pid, tenants=(("ta", None), ("tb", None)))
    sign_up(host, pid, EMAIL)
    page.open(pid)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    page.wait("nav#nav a")
    assert not page.all("select#tenant-switch")
    assert page.find("#current-user").text == EMAIL


@pytest.fixture(scope="module")
def pages_host(tmp_path_factory):
    """A host of its own with a folder stack "pages": package steady whose
    ui/ holds an HTML file that loads a script beside it."""
    tmp = tmp_path_factory.mktemp("e2e-pages")
    top = tmp / "stacks" / "pages" / "1.0.0"
    pkg = top / "packages" / "steady"
    (pkg / "ui").mkdir(parents=True)
    (top / "stack.json").write_text(json.dumps(
        {"id": "pages", "version": "1.0.0",
         "packages": [{"name": "steady", "version": "^1.0.0"}]}))
    (pkg / "package.json").write_text(json.dumps(
        {"name": "steady", "version": "1.0.0", "abi": "1.5",
         "kind": "feature", "library": "libsteady.so",
         "routes": [{"method": "GET", "path": "/ok", "scope": "public"},
                    {"method": "GET", "path": "/slow", "scope": "public"}]}))
    shutil.copy(STEADY_SO, str(pkg / "libsteady.so"))
    (pkg / "ui" / "page.html").write_text(
        "<!doctype html><html><head><title>static</title>"
        '<script src="run.js"></script></head><body><p>page</p></body>'
        "</html>\n")
    (pkg / "ui" / "run.js").write_text(
        "document.title = 'ran';\n"
        "document.documentElement.dataset.ran = document.cookie || 'yes';\n")
    for dirpath, dirs, files in os.walk(str(tmp / "stacks")):
        os.chmod(dirpath, 0o755)
        for n in files:
            os.chmod(os.path.join(dirpath, n), 0o644)
    (tmp / "host").mkdir()
    h = Host(tmp / "host", workers=1, core=True,
             stacks=[str(tmp / "stacks")])
    h.start()
    h.platform("e2e-pages", stacks=["default", "pages@1.0.0"],
               plan="unmetered")
    yield h
    h.stop()


def test_an_html_asset_opened_directly_runs_no_script(page, pages_host):
    url = ("http://console.e2e-pages.nno.localhost:%d/console/ui/pages/1.0.0/"
           "steady/1.0.0/page.html" % pages_host.port)
    page.get(url)  # returns once the page has loaded (scripts included)
    page.until(lambda d: page.js("return document.readyState") == "complete",
               "the page loaded")
    assert page.find("body p").text == "page"
    assert page.js("return document.documentElement.dataset.ran") is None
    assert page.driver.title == "static"
