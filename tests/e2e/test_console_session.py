"""The console shell and the session's life: a session ended while the user
works (revoked on the server) shows the expired state, then sign-in, and
after signing in the user is back on the page they were on; a session opened
after the platform's user scopes were narrowed gets no entry, and no route,
of what it may no longer use."""
import json

import pytest

from conftest import PASSWORD, SIGNED_OUT_BOOT, make_platform, sign_up

EMAIL = "lin@example.com"


def open_signed_in(page, pid, route=None):
    page.open(pid, route)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)


def create_note(page, title):
    """A note made through the page's own session (same origin)."""
    got = page.driver.execute_async_script("""
        const [title, done] = arguments;
        fetch('/notes', {method: 'POST', credentials: 'same-origin',
                         headers: {'Content-Type': 'application/json'},
                         body: JSON.stringify({title, body: 'b'})})
          .then(async r => done({status: r.status, text: await r.text()}));
    """, title)
    assert got["status"] == 201, got
    return str(json.loads(got["text"])["id"])


@pytest.fixture(scope="module")
def revoked(host):
    pid = "e2e-expiry"
    make_platform(host, pid)
    sign_up(host, pid, EMAIL)
    return pid


def test_a_revoked_session_leads_to_sign_in_and_back(page, revoked, host):
    pid = revoked
    open_signed_in(page, pid)
    nid = create_note(page, "Where I was")
    page.get(page.console_url(pid, "/notes/" + nid))
    page.ready()
    page.view("/notes/{id}")
    page.until(lambda d: page.find("#note-title").get_attribute("value") ==
               "Where I was", "the note in the editor")

    # The session ends on the server (as a sign-out elsewhere would end it).
    token = page.session_token(pid)
    assert token
    st, _, _ = host.request("POST", "/p/%s/auth/sign-out" % pid, key=token)
    assert st == 204
    page.until(lambda d: host.request("GET", "/p/%s/auth/session" % pid,
                                      key=token)[0] == 401,
               "the session ended on every worker")

    # The next call the page makes meets a 401: expired, then sign-in.
    page.fill("#note-form input#note-title", "Where I was, edited")
    page.click("button#note-save")
    state = page.wait_state("expired")
    assert state.get_attribute("role") == "alert"
    if page.find("form#sign-in") is None:
        # The state may ask for a click before showing the form.
        page.click("#state a, #state button")
    page.wait("form#sign-in")
    assert page.route().startswith("/sign-in"), page.route()
    assert "next=" in page.route()

    page.sign_in(EMAIL, PASSWORD)
    page.signed_in(EMAIL)
    page.view("/notes/{id}")
    assert page.route() == "/notes/" + nid
    page.until(lambda d: page.find("#note-title").get_attribute("value") ==
               "Where I was", "the note again")


def test_an_entry_is_hidden_for_lack_of_scope(page, host):
    pid = "e2e-scopes"
    make_platform(host, pid)
    sign_up(host, pid, EMAIL)
    # Users may now use hello only: a new session holds no notes scope.
    st, _, body = host.api("PUT", "/platforms/%s/access" % pid,
                           {"user_scopes": ["features:hello:read"]})
    assert st == 200, body

    open_signed_in(page, pid)
    page.wait('nav#nav a[data-package="hello"]')
    assert page.all('nav#nav a[data-package="notes"]') == []
    assert not [a for a in page.all("nav#nav a")
                if a.get_attribute("href").endswith("#/notes")]

    # Its route is not offered either, and the server refuses it anyway.
    page.get(page.console_url(pid, "/notes"))
    page.ready()
    page.wait_state("not-found")
    assert page.all("ul#notes-list") == []
    assert page.fetch("/notes")["status"] == 403
    page.click('nav#nav a[data-package="hello"]')
    page.view("/hello")
    page.wait("p#hello-greeting")
    assert page.errors(allow=(SIGNED_OUT_BOOT, r"/notes - Failed to load "
                              r"resource: .* 403")) == []
