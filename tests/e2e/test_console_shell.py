"""The console shell in a browser, signed-in happy path: sign-in with a bad and
a good password, the platform's branding (logo, colour), sign-up through
the form, navigation composed from two packages (hello and notes), a note
created, edited, given an attachment and deleted, sign-out; no console error
on the way."""
import re

import pytest

from conftest import PASSWORD, SIGNED_OUT_BOOT, make_platform, sign_up

PID = "e2e-shell"
EMAIL = "ada@example.com"
# A 1x1 PNG, as the platform's logo (a data: URI, which the CSP allows).
LOGO = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
        "AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
PRIMARY = "#1a4f8b"
SIGN_IN_401 = r"/auth/sign-in - Failed to load resource: .* 401"


@pytest.fixture(scope="module")
def platform(host):
    p = make_platform(host, PID, name="Shell Test")
    st, _, body = host.api("PATCH", "/platforms/" + PID,
                           {"branding": {"logo": LOGO, "primary": PRIMARY}})
    assert st == 200, body
    sign_up(host, PID, EMAIL, name="Ada")
    return p


def signed_in(page):
    page.open(PID)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)


def label_of(page, el_id):
    return page.js("var e = document.getElementById(arguments[0]);"
                   "return e && e.labels && e.labels.length"
                   " ? e.labels[0].textContent.trim() : null;", el_id)


def test_sign_in_refuses_a_bad_password_then_takes_the_good_one(page,
                                                                platform):
    page.open(PID)
    form = page.wait("form#sign-in")
    assert label_of(page, "email") == "Email"
    assert label_of(page, "password") == "Password"
    assert form.find_element("css selector",
                             'button[type="submit"]').text == "Sign in"
    # Sign-up is allowed on this platform: the link is offered.
    assert page.find("a#to-sign-up").text == "Create an account"

    page.sign_in(EMAIL, "not the password")
    err = page.until(lambda d: page.find("#form-error") and
                     page.find("#form-error").text.strip() and
                     page.find("#form-error"), "#form-error")
    assert err.get_attribute("role") == "alert"
    assert page.find("form#sign-in") is not None
    assert page.find("header#topbar") is None
    assert page.session_token(PID) is None

    page.sign_in(EMAIL, PASSWORD)
    page.signed_in(EMAIL)
    assert page.find("#brand-name").text == "Shell Test"
    logo = page.find("img#brand-logo")
    assert logo.get_attribute("alt") == "Shell Test"
    assert page.js("return arguments[0].complete &&"
                   " arguments[0].naturalWidth", logo) == 1
    assert page.js("return getComputedStyle(document.documentElement)"
                   ".getPropertyValue('--primary').trim()") == PRIMARY
    assert page.find("form#sign-in") is None
    assert page.session_token(PID)
    assert page.errors(allow=(SIGNED_OUT_BOOT, SIGN_IN_401)) == []


def test_sign_up_through_the_form_then_sign_out(page, platform, host):
    page.open(PID)
    page.click("a#to-sign-up")
    page.wait("form#sign-up")
    page.fill("#sign-up input#name", "Grace")
    page.fill("#sign-up input#email", "grace@example.com")
    page.fill("#sign-up input#password", PASSWORD)
    submit = page.find('#sign-up button[type="submit"]')
    assert submit.text == "Create account"
    submit.click()
    page.signed_in("grace@example.com")
    token = page.session_token(PID)
    assert token

    page.click("button#sign-out")
    page.wait("form#sign-in")
    assert page.find("header#topbar") is None
    # The session is over on the server, not only forgotten by the page.
    page.until(lambda d: host.request("GET", "/p/%s/auth/session" % PID,
                                      key=token)[0] == 401,
               "the session ended on every worker")
    # A reload stays signed out.
    page.driver.refresh()
    page.ready()
    page.wait("form#sign-in")
    assert page.errors(allow=(SIGNED_OUT_BOOT,)) == []


def test_navigation_is_composed_from_two_packages(page, platform):
    signed_in(page)
    nav = page.wait("nav#nav")
    assert nav.get_attribute("aria-label") == "Features"
    links = {a.get_attribute("data-package"): a
             for a in page.all("nav#nav a")}
    assert {"hello", "notes"} <= set(links), links.keys()
    assert links["hello"].get_attribute("href").endswith("#/hello")
    assert links["notes"].get_attribute("href").endswith("#/notes")

    links["hello"].click()
    page.view("/hello")
    greeting = page.until(lambda d: page.find("p#hello-greeting") and
                          page.find("p#hello-greeting").text.strip(),
                          "p#hello-greeting with text")
    assert greeting
    assert page.route() == "/hello"
    hello = page.find('nav#nav a[data-package="hello"]')
    notes = page.find('nav#nav a[data-package="notes"]')
    assert hello.get_attribute("aria-current") == "page"
    assert notes.get_attribute("aria-current") != "page"

    notes.click()
    page.view("/notes")
    page.wait("ul#notes-list")
    assert page.find('nav#nav a[data-package="notes"]') \
        .get_attribute("aria-current") == "page"
    assert page.find('nav#nav a[data-package="hello"]') \
        .get_attribute("aria-current") != "page"
    assert page.errors(allow=(SIGNED_OUT_BOOT,)) == []


def note_id_of(page):
    m = re.fullmatch(r"/notes/([^/?]+)", page.route())
    assert m and m.group(1) != "new", page.route()
    return m.group(1)


def test_a_note_is_created_edited_given_a_file_and_deleted(page, platform,
                                                          tmp_path):
    signed_in(page)
    page.get(page.console_url(PID, "/notes"))
    page.ready()
    page.view("/notes")
    page.click("button#note-new")
    page.view("/notes/new")
    assert label_of(page, "note-title") == "Title"
    assert label_of(page, "note-body") == "Body"
    page.fill("#note-form input#note-title", "Shopping")
    page.fill("#note-form textarea#note-body", "milk, eggs")
    page.click("button#note-save")
    page.view("/notes/{id}")
    nid = page.until(lambda d: page.route() != "/notes/new" and
                     note_id_of(page), "the new note's route")

    # Edit: the list shows the new title.
    page.fill("#note-form input#note-title", "Shopping list")
    page.click("button#note-save")
    # Saved on the server before the list is asked for.
    page.until(lambda d: '"Shopping list"' in page.fetch("/notes/" + nid)
               ["text"], "the new title saved")
    page.click('nav#nav a[data-package="notes"]')
    page.view("/notes")
    item = page.until(
        lambda d: page.find('#notes-list li[data-note-id="%s"]' % nid) and
        "Shopping list" in page.find(
            '#notes-list li[data-note-id="%s"]' % nid).text and
        page.find('#notes-list li[data-note-id="%s"]' % nid),
        "note %s listed with its new title" % nid)
    link = item.find_element("css selector", "a")
    assert link.get_attribute("href").endswith("#/notes/%s" % nid)
    link.click()
    page.view("/notes/{id}")
    page.until(lambda d: page.find("#note-title").get_attribute("value") ==
               "Shopping list", "the edited title in the editor")
    assert page.find("#note-body").get_attribute("value") == "milk, eggs"

    # An attachment: uploaded, listed, downloadable.
    f = tmp_path / "receipt.txt"
    f.write_bytes(b"2 x milk\n1 x eggs\n")
    assert label_of(page, "note-file") == "Attach a file"
    page.until(lambda d: d.find_element("css selector", "input#note-file"),
               "input#note-file").send_keys(str(f))
    page.click("button#note-upload")
    entry = page.wait('ul#note-files li[data-file="receipt.txt"]')
    href = entry.find_element("css selector", "a").get_attribute("href")
    got = page.fetch(href)
    assert got["status"] == 200, got
    assert got["text"] == "2 x milk\n1 x eggs\n"
    # Still there after a reload (the server has it, not only the page).
    page.driver.refresh()
    page.ready()
    page.view("/notes/{id}")
    page.wait('ul#note-files li[data-file="receipt.txt"]')

    # Delete asks for a second click, then the list no longer has it.
    page.click("button#note-delete")
    page.until(lambda d: page.find("button#note-delete").text ==
               "Confirm delete", '"Confirm delete"')
    assert page.route() == "/notes/%s" % nid
    page.click("button#note-delete")
    page.view("/notes")
    page.wait("ul#notes-list")
    page.until(lambda d: not page.all('li[data-note-id="%s"]' % nid),
               "note %s gone from the list" % nid)
    assert page.errors(allow=(SIGNED_OUT_BOOT,)) == []
