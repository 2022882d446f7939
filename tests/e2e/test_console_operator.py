"""The operator view (plugins/admin) in a browser on its own origin,
admin.{base}, where nothing a package controls is served: a
platform's API key is refused as not the operator's, the operator key signs
in and is kept in sessionStorage only; the platforms table suspends and
resumes a platform for real, a platform's page shows its tenants, the audit
table shows the suspension, and sign-out forgets the key. Signed out, no
navigation shows; an old link on {base} lands on admin.{base}."""
import pytest

from conftest import BASE, make_platform

PID = "e2e-operator"
REFUSED = r"/api/v1/platforms\?limit=1 - Failed to load resource: .* 40[13]"


@pytest.fixture(scope="module")
def platform(host):
    make_platform(host, PID, name="Operated", tenants=(("eu", None),))
    return PID


def admin_origin(page):
    return "http://admin.%s:%d" % (BASE, page.host.port)


def admin_url(page, route=None):
    return admin_origin(page) + "/admin/" + ("#" + route if route else "")


def admin_ready(page):
    page.until(lambda d: d.execute_script(
        "return document.documentElement.dataset.admin") == "ready",
        'data-admin="ready"')


def stored_key(page):
    return page.js("return sessionStorage.getItem('nno.operator_key')")


def row(page, pid):
    return page.wait('table#platforms tr[data-platform-id="%s"]' % pid)


def row_status(page, pid):
    return row(page, pid).find_element(
        "css selector", "td[data-status]").get_attribute("data-status")


def test_the_operator_view_works_with_the_operator_key_only(page, platform,
                                                            host):
    page.get(admin_url(page))
    admin_ready(page)
    page.wait("form#op-sign-in")
    assert page.js("return document.getElementById('op-key').labels[0]"
                   ".textContent.trim()") == "Operator key"

    # A platform's API key is not the operator's.
    key = host.platform_key(PID, scopes=("platforms:read",))["key"]
    page.fill("input#op-key", key)
    page.click('#op-sign-in button[type="submit"]')
    err = page.until(lambda d: page.find("#op-error") and
                     page.find("#op-error").text.strip() and
                     page.find("#op-error"), "#op-error")
    assert "HTTP 403" in err.text or "HTTP 401" in err.text, err.text
    assert page.find("table#platforms") is None
    assert not stored_key(page)

    page.fill("input#op-key", host.op_key())
    page.click('#op-sign-in button[type="submit"]')
    page.wait('#op-view[data-route="/platforms"]')
    assert row_status(page, PID) == "active"
    # Kept in this tab only: no cookie, nothing in localStorage.
    assert stored_key(page) == host.op_key()
    assert page.js("return localStorage.length") == 0
    assert page.driver.execute_cdp_cmd("Network.getAllCookies",
                                       {})["cookies"] == []

    # Suspend and resume from the table: the registry says so too.
    row(page, PID).find_element(
        "css selector", 'button[data-action="suspend"]').click()
    page.until(lambda d: row_status(page, PID) == "suspended",
               "the row suspended")
    assert host.api("GET", "/platforms/" + PID)[2]["status"] == "suspended"
    row(page, PID).find_element(
        "css selector", 'button[data-action="resume"]').click()
    page.until(lambda d: row_status(page, PID) == "active", "the row active")
    assert host.api("GET", "/platforms/" + PID)[2]["status"] == "active"

    # A platform's page lists its tenants.
    row(page, PID).find_element("css selector", "a").click()
    view = page.wait('#op-view[data-route="/platforms/{id}"]')
    page.until(lambda d: "eu" in view.text and "EU" in view.text,
               "the tenant eu on the platform's page")

    # A reload keeps the key (sessionStorage); the audit shows the suspension.
    page.get(admin_url(page, "/audit"))
    admin_ready(page)
    audit = page.wait("table#audit")
    page.until(lambda d: "platform.suspend" in audit.text and
               PID in audit.text, "platform.suspend in the audit")

    page.click("button#op-sign-out")
    page.wait("form#op-sign-in")
    assert not stored_key(page)
    page.driver.refresh()
    admin_ready(page)
    page.wait("form#op-sign-in")
    assert page.errors(allow=(REFUSED,)) == []


def test_signed_out_shows_no_navigation(page):
    """The sign-in page hides the top bar: no navigation, no Sign out."""
    page.get(admin_url(page))
    admin_ready(page)
    page.wait("form#op-sign-in")
    for css in ("header#op-topbar", "nav#op-nav", "button#op-sign-out"):
        assert len(page.all(css)) == 1, css  # in the page, not shown
        assert page.find(css) is None, css
    assert "Sign out" not in page.find("body").text
    assert page.errors() == []


def test_an_old_link_lands_on_the_admin_origin(page):
    """/admin/ on the base domain sends the browser to admin.{base} (the
    hash kept), where the page is served."""
    old = page.origin() + "/admin/#/audit"
    page.get(old)
    page.origins.add(admin_origin(page))
    admin_ready(page)
    assert page.js("return location.origin") == admin_origin(page)
    assert page.js("return location.pathname + location.hash") == \
        "/admin/#/audit"
    page.wait("form#op-sign-in")
    assert page.errors() == []
