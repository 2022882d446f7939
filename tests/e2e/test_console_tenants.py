"""The console shell's tenant switcher: an unbound user granted tenants:read
sees every tenant of the platform (and "All tenants"), a suspended tenant is
offered disabled, the choice survives a reload (sessionStorage, per
platform), and a note made while acting in tenant A is listed in A and not
in B (a user without tenants:read gets no switcher: test_console_boot.py)."""
import pytest

from conftest import make_platform, sign_up

PID = "e2e-tenants"
EMAIL = "mo@example.com"


@pytest.fixture(scope="module")
def platform(host):
    # the switcher lists tenants only for users holding tenants:read
    make_platform(host, PID, user_scopes=["features:*", "tenants:read"],
                  tenants=(("ta", None), ("tb", None), ("ta-west", "ta"),
                           ("tc", None)))
    st, _, body = host.api("PATCH", "/platforms/%s/tenants/tc" % PID,
                           {"status": "suspended"})
    assert st == 200, body
    sign_up(host, PID, EMAIL)
    return PID


def switch(page, tenant):
    """Choose `tenant` in the switcher, then load the notes list again (a
    new document: the choice must come back from sessionStorage)."""
    sel = page.wait("select#tenant-switch")
    sel.find_element("css selector", 'option[value="%s"]' % tenant).click()
    page.until(lambda d: page.find("select#tenant-switch")
               .get_attribute("value") == tenant, "tenant %r chosen" % tenant)
    page.get(page.console_url(PID, "/notes"))
    page.ready()
    page.view("/notes")
    page.wait("ul#notes-list")
    assert page.find("select#tenant-switch").get_attribute("value") == tenant


def titles(page):
    return [li.text for li in page.all("#notes-list li[data-note-id]")]


def listed(page, title):
    page.until(lambda d: any(title in t for t in titles(page)),
               "%r listed" % title)


def note_in(page, tenant, title):
    """A note made by the page's session acting in `tenant` (Nno-Tenant)."""
    got = page.driver.execute_async_script("""
        const [tenant, title, done] = arguments;
        fetch('/notes', {method: 'POST', credentials: 'same-origin',
                         headers: {'Content-Type': 'application/json',
                                   'Nno-Tenant': tenant},
                         body: JSON.stringify({title, body: 'b'})})
          .then(async r => done({status: r.status, text: await r.text()}));
    """, tenant, title)
    assert got["status"] == 201, got


def test_a_note_made_in_tenant_a_is_not_listed_in_tenant_b(page, platform):
    page.open(PID)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    sel = page.wait("select#tenant-switch")
    assert page.js("var e = document.getElementById('tenant-switch');"
                   "return e.labels.length ? e.labels[0].textContent.trim()"
                   " : e.getAttribute('aria-label');") == "Tenant"
    opts = {o.get_attribute("value"): o
            for o in sel.find_elements("css selector", "option")}
    assert set(opts) == {"", "ta", "tb", "ta-west", "tc"}, opts.keys()
    assert opts[""].text.strip() == "All tenants"
    assert opts["ta"].text.strip() == "TA"
    assert opts["ta-west"].text.strip() == "TA-WEST"
    assert opts["tc"].get_attribute("disabled") is not None
    assert opts["ta"].get_attribute("disabled") is None
    # Notes of B and of A's sub-tenant, so that each list below is known to
    # be loaded before what it lacks is checked.
    note_in(page, "tb", "Only in B")
    note_in(page, "ta-west", "In A-West")

    # Made through the page while acting in A.
    switch(page, "ta")
    page.click("button#note-new")
    page.view("/notes/new")
    page.fill("#note-form input#note-title", "Only in A")
    page.click("button#note-save")
    page.view("/notes/{id}")
    page.click('nav#nav a[data-package="notes"]')
    page.view("/notes")
    listed(page, "Only in A")
    listed(page, "In A-West")  # A's subtree
    assert not any("Only in B" in t for t in titles(page)), titles(page)

    switch(page, "tb")
    listed(page, "Only in B")
    assert not any("Only in A" in t for t in titles(page)), titles(page)

    switch(page, "ta-west")
    listed(page, "In A-West")
    assert not any("Only in A" in t for t in titles(page)), titles(page)

    # All tenants: the whole platform.
    switch(page, "")
    for t in ("Only in A", "Only in B", "In A-West"):
        listed(page, t)
