"""A suspended platform in the browser: its console URL shows the host's
HTML problem page saying so (403, not raw JSON), and a shell already open
and signed in shows the suspended state at its next call; once resumed, the
same session works again."""
import re

from conftest import make_platform, sign_up

EMAIL = "sam@example.com"


def suspend(host, pid, action="suspend"):
    st, _, body = host.api("POST", "/platforms/%s/%s" % (pid, action))
    assert st == 200, body
    assert body["status"] == ("suspended" if action == "suspend"
                              else "active"), body


def test_the_console_url_of_a_suspended_platform_says_so(page, host):
    pid = "e2e-susp-nav"
    make_platform(host, pid)
    suspend(host, pid)
    page.get(page.console_url(pid))
    main = page.wait("main[data-status]")
    assert main.get_attribute("data-status") == "403"
    text = page.find("body").text
    assert "suspended" in text, text
    # The request id is shown, so a user can quote it.
    assert re.search(r"\b[0-9a-f]{32}\b", text), text
    assert "{" not in text and '"status"' not in text  # a page, not JSON


def test_a_signed_in_shell_shows_the_suspension(page, host):
    pid = "e2e-susp-live"
    make_platform(host, pid)
    sign_up(host, pid, EMAIL)
    page.open(pid)
    page.sign_in(EMAIL)
    page.signed_in(EMAIL)
    # Both feature modules loaded while the platform is active.
    page.click('nav#nav a[data-package="notes"]')
    page.view("/notes")
    page.wait("ul#notes-list")
    page.click('nav#nav a[data-package="hello"]')
    page.view("/hello")
    page.wait("p#hello-greeting")

    suspend(host, pid)
    page.click('nav#nav a[data-package="notes"]')
    state = page.wait_state("suspended")
    assert state.get_attribute("role") == "alert"
    assert "suspended" in state.text.lower(), state.text
    assert page.find("ul#notes-list") is None

    # Resumed: the same session carries on.
    suspend(host, pid, "resume")
    page.driver.refresh()
    page.ready()
    page.signed_in(EMAIL)
    page.view("/notes")
    page.wait("ul#notes-list")
    assert page.state() is None
