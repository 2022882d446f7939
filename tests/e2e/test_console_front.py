"""The console shell's front end beyond the happy path: an attachment whose
name leaves the allowed charset is stored under a cleaned name and the user
is told; a note that does not exist is said in the view; the shell works at
360 px wide with no sideways scrolling; every control is labelled and the
top bar, navigation and view come in that order from the keyboard; losing
the network shows a state with a way back; and the shell's own files stay
small and hold nothing inline (the page's CSP allows no inline code)."""
import glob
import json
import os
import re

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from conftest import SIGNED_OUT_BOOT, harness, make_platform, sign_up

PID = "e2e-front"
EMAIL = "kim@example.com"
UI = os.path.join(harness.SOURCE, "packages", "console", "ui")


@pytest.fixture(scope="module")
def platform(host):
    # the switcher: users hold tenants:read, and there is a tenant to pick
    make_platform(host, PID, name="Front Test", tenants=(("ft", None),),
                  user_scopes=["features:*", "tenants:read"])
    sign_up(host, PID, EMAIL)
    return PID


def signed_in(page, route=None):
    page.open(PID, route)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)


def new_note(page, title):
    got = page.driver.execute_async_script("""
        const [title, done] = arguments;
        fetch('/notes', {method: 'POST', credentials: 'same-origin',
                         headers: {'Content-Type': 'application/json'},
                         body: JSON.stringify({title})})
          .then(async r => done({status: r.status, text: await r.text()}));
    """, title)
    assert got["status"] == 201, got
    return str(json.loads(got["text"])["id"])


def test_a_file_name_outside_the_charset_is_cleaned_and_said(page, platform,
                                                           tmp_path):
    signed_in(page)
    nid = new_note(page, "Receipts")
    page.get(page.console_url(PID, "/notes/" + nid))
    page.ready()
    page.view("/notes/{id}")
    f = tmp_path / "ré sumé (1).txt"
    f.write_bytes(b"total: 3\n")
    page.wait("input#note-file").send_keys(str(f))
    # Said before the upload, on choosing the file...
    page.until(lambda d: "re_sume_1_.txt" in page.find("#file-status").text,
               "the cleaned name announced")
    assert page.find("#file-status").get_attribute("role") == "status"
    page.click("button#note-upload")
    entry = page.wait('ul#note-files li[data-file="re_sume_1_.txt"]')
    # ...and after it.
    assert "ré sumé (1).txt" in page.find("#file-status").text
    link = entry.find_element("css selector", "a")
    assert link.text == "re_sume_1_.txt"
    href = link.get_attribute("href")
    got = page.fetch(href)
    assert got["status"] == 200 and got["text"] == "total: 3\n", got
    assert got["type"].startswith("text/plain"), got  # the file's own type

    # Deleted from its own button, named for the file.
    btn = entry.find_element("css selector", "button")
    assert btn.get_attribute("aria-label") == "Delete re_sume_1_.txt"
    btn.click()
    page.wait_gone('ul#note-files li[data-file="re_sume_1_.txt"]')
    assert page.fetch(href)["status"] == 404
    assert page.errors(allow=(SIGNED_OUT_BOOT, r"re_sume_1_.txt - Failed to "
                              r"load resource: .* 404")) == []


def test_a_missing_note_is_said_in_the_view(page, platform):
    signed_in(page)
    for nid in ("999999", "abc"):
        page.get(page.console_url(PID, "/notes/" + nid))
        page.ready()
        view = page.view("/notes/{id}")
        page.until(lambda d: "Note not found" in view.text, "not found")
        assert page.find("form#note-form") is None
        assert page.find('#view a[href="#/notes"]') is not None
    # A path no package answers is the shell's own not-found state.
    page.get(page.console_url(PID, "/nowhere/at/all"))
    page.ready()
    page.wait_state("not-found")
    assert page.find("nav#nav") is not None  # the rest of the shell stays
    assert page.errors(allow=(SIGNED_OUT_BOOT, r"/notes/999999 - Failed to "
                              r"load resource: .* 404")) == []


def wide(page):
    return page.js("return document.documentElement.scrollWidth")


def test_the_shell_works_at_360_px(page, platform):
    d = page.driver
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 360, "height": 740, "deviceScaleFactor": 1,
        "mobile": True})
    try:
        page.open(PID)
        page.wait("form#sign-in")
        assert wide(page) <= 360
        page.sign_in(EMAIL)
        page.signed_in(EMAIL)
        nid = new_note(page, "A title long enough to need wrapping on a "
                       "small phone screen, and then some more words")
        page.get(page.console_url(PID, "/notes"))
        page.ready()
        page.view("/notes")
        page.wait('li[data-note-id="%s"]' % nid)
        assert wide(page) <= 360
        for css in ("nav#nav", "#tenant-switch", "#sign-out",
                    "button#note-new"):
            assert page.find(css) is not None, css
        page.get(page.console_url(PID, "/notes/" + nid))
        page.ready()
        page.view("/notes/{id}")
        page.wait("button#note-upload")
        assert wide(page) <= 360
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_controls_are_labelled_and_reached_in_order(page, platform):
    signed_in(page)
    nid = new_note(page, "Labelled")
    page.get(page.console_url(PID, "/notes/" + nid))
    page.ready()
    page.view("/notes/{id}")
    page.wait("button#note-upload")
    unlabelled = page.js("""
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter(e => !(e.labels && e.labels.length) &&
                       !e.getAttribute('aria-label') && !e.textContent.trim())
          .map(e => e.outerHTML);""")
    assert unlabelled == []

    # From the top of the page: skip link, top bar, navigation, the view.
    # A new document: the first Tab starts from the top.
    page.driver.refresh()
    page.ready()
    page.view("/notes/{id}")
    keys = ActionChains(page.driver)
    order = []
    for _ in range(6):
        keys.send_keys(Keys.TAB).perform()
        order.append(page.js("var a = document.activeElement;"
                             "return a.id || a.getAttribute('href');"))
    assert order == ["skip", "tenant-switch", "sign-out", "#/hello",
                     "#/notes", "#/notes"], order
    # The skip link takes the focus to the view.
    page.js("document.getElementById('skip').focus()")
    keys.send_keys(Keys.ENTER).perform()
    assert page.js("return document.activeElement.id") == "main"
    assert page.route() == "/notes/" + nid  # the hash did not move


def test_losing_the_network_shows_a_state_and_a_way_back(page, platform):
    d = page.driver
    signed_in(page, "/notes")
    page.view("/notes")
    d.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1,
               "uploadThroughput": -1}
    d.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    try:
        # hello's module was never loaded: it cannot be fetched now.
        page.click('nav#nav a[data-package="hello"]')
        state = page.wait_state("error")
        assert "offline" in state.text.lower() or \
            "reach" in state.text.lower(), state.text
        assert page.find("nav#nav") is not None
    finally:
        d.execute_cdp_cmd("Network.emulateNetworkConditions",
                          dict(offline, offline=False))
    page.click("#state button")
    page.view("/hello")
    page.until(lambda d: page.find("p#hello-greeting").text.strip(),
               "the greeting")


def test_the_shell_is_small_and_holds_nothing_inline():
    files = [f for f in glob.glob(os.path.join(UI, "*"))
             if re.search(r"\.(html|js|css)$", f)]
    assert {"index.html", "shell.js", "shell.css"} <= \
        {os.path.basename(f) for f in files}
    assert sum(os.path.getsize(f) for f in files) < 40 * 1024
    with open(os.path.join(UI, "index.html")) as f:
        html = f.read()
    assert re.findall(r"<script\b[^>]*>", html) == \
        ['<script type="module" src="/console/boot.js">']
    assert '<link rel="modulepreload" href="{{base}}/shell.js">' in html
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html, re.I)
    assert "{{base}}/shell.css" in html
    for f in files:
        if f.endswith(".js"):
            with open(f) as fh:
                src = fh.read()
            # Text only ever becomes text nodes; no code from strings.
            assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|"
                                 r"document\.write|\beval\(|new Function",
                                 src), f
