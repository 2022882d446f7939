"""Approving a device login (`nno login`) in the browser: the page at the
device-code answer's verification_uri_complete, opened by a signed-in
platform admin, shows the platform and the scopes the key would hold, and
Approve gives the polling device its key; the operator pastes the operator
key instead (kept in the page's memory only) and denies; an unknown code
says so."""
import glob
import os
import re
import time

import pytest

from conftest import SIGNED_OUT_BOOT, make_platform, sign_up

PID = "e2e-device"
EMAIL = "ada@example.com"
ADMIN_SCOPES = ["features:*", "keys:write", "stacks:read"]
# The page's own expected errors: a 401 when nobody is signed in yet.
UI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                  "packages", "console", "ui", "device")
PENDING_401 = r"/console/device\?user_code=\S+ - Failed to load resource: .* 401"


@pytest.fixture(scope="module")
def admin(host):
    make_platform(host, PID, user_scopes=ADMIN_SCOPES)
    sign_up(host, PID, EMAIL)
    return PID


def new_code(host):
    st, _, c = host.api("POST", "/device/code", {"platform": PID}, key=False)
    assert st == 200, c
    return c


def poll(host, c):
    """POST /api/v1/device/token until it answers other than pending."""
    deadline = time.time() + 20
    while True:
        st, _, b = host.api("POST", "/device/token",
                            {"device_code": c["device_code"]}, key=False)
        if st == 200 or b.get("error") not in ("authorization_pending",
                                               "slow_down"):
            return st, b
        assert time.time() < deadline, b
        time.sleep(c["interval"])


def texts(page, css):
    return [e.text for e in page.all(css)]


def test_a_signed_in_admin_approves_and_the_device_gets_its_key(page, admin,
                                                                  host):
    c = new_code(host)
    page.open(admin)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    page.get(c["verification_uri_complete"])
    page.wait("section#request")
    assert page.find("#r-platform").text == PID
    assert page.find("#r-code").text == c["user_code"]
    assert sorted(texts(page, "#r-scopes li")) == ["features:*",
                                                   "stacks:read"]
    assert page.find("#r-addr").text == "127.0.0.1"
    assert PID in page.find("#platform").text
    assert page.find("#key-form") is None  # the session is enough
    page.click("button#approve")
    page.until(lambda d: page.find("#outcome") and
               "Approved" in page.find("#outcome").text,
               "#outcome saying Approved")
    assert page.find("section#request") is None
    st, t = poll(host, c)
    assert st == 200, t
    assert t["key"].startswith("nnok_") and t["platform"] == PID
    assert sorted(t["scopes"]) == ["features:*", "stacks:read"]
    assert page.errors(allow=(SIGNED_OUT_BOOT,)) == []


def test_the_operator_pastes_the_key_and_denies(page, admin, host):
    c = new_code(host)
    page.get(c["verification_uri_complete"])
    page.wait("form#key-form")
    op = host.op_key()
    page.fill("#key-form input#key", op)
    page.click('#key-form button[type="submit"]')
    page.wait("section#request")
    assert len(page.all("#r-scopes li")) == 5
    # Held by the page's script only: not in the field, storage or cookies.
    assert page.find("#key") is None or \
        page.driver.find_element("id", "key").get_attribute("value") == ""
    kept = page.js("return JSON.stringify([localStorage, sessionStorage, "
                   "document.cookie, document.documentElement.outerHTML])")
    assert op not in kept
    page.click("button#deny")
    page.until(lambda d: page.find("#outcome") and
               "Denied" in page.find("#outcome").text,
               "#outcome saying Denied")
    st, b = poll(host, c)
    assert st == 400 and b["error"] == "access_denied", b
    assert page.errors(allow=(PENDING_401,)) == []


def test_an_unknown_code_says_so(page, admin, host):
    page.open(admin)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    page.get(page.origin(admin) + "/device?code=BCDF-GHJK")
    page.until(lambda d: page.find("#error") and
               "no device code" in page.find("#error").text,
               "#error naming the unknown code")
    assert page.find("section#request") is None


def test_the_page_is_small_and_holds_nothing_inline():
    files = sorted(glob.glob(os.path.join(UI, "*")))
    assert [os.path.basename(f) for f in files] == \
        ["device.css", "device.html", "device.js"]
    assert sum(os.path.getsize(f) for f in files) < 12 * 1024
    with open(os.path.join(UI, "device.html")) as f:
        html = f.read()
    assert re.findall(r"<script\b[^>]*>", html) == \
        ['<script type="module" src="{{base}}/device/device.js">']
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    with open(os.path.join(UI, "device.js")) as f:
        js = f.read()
    # The pasted key never reaches storage, cookies or the URL.
    for word in ("localStorage", "sessionStorage", "document.cookie",
                 "history.", "location.hash", "innerHTML"):
        assert word not in js, word
