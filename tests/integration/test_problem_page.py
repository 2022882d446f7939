"""A browser that navigates to an error gets the problem as a small HTML
page; every other client keeps application/problem+json."""
import html

import pytest

from conftest import Host

NAV = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
       "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("pp"), workers=1, core=True)
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def suspended(host):
    host.platform("pgsusp")
    st, _, p = host.api("POST", "/platforms/pgsusp/suspend")
    assert st == 200, p
    return host


def test_navigation_to_a_suspended_platform_is_a_page(suspended):
    st, h, body = suspended.request("GET", "/", headers=NAV,
                                    host="console.pgsusp.nno.localhost")
    assert st == 403
    assert h["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in h["content-security-policy"]
    assert h["cache-control"] == "no-store"
    text = body.decode()
    assert '<main data-status="403">' in text
    assert "platform pgsusp is suspended" in text
    assert '<code id="request-id">%s</code>' % html.escape(
        h["x-request-id"]) in text


@pytest.mark.parametrize("headers", [
    {},                                              # curl
    {"Accept": "application/json"},
    {"Sec-Fetch-Mode": "cors", "Accept": "text/html"},  # fetch()
    {"Sec-Fetch-Mode": "no-cors"},
])
def test_api_clients_keep_problem_json(suspended, headers):
    st, h, body = suspended.request("GET", "/", headers=headers,
                                    host="console.pgsusp.nno.localhost")
    assert st == 403
    assert h["content-type"] == "application/problem+json"
    assert b'"request_id"' in body


def test_old_browser_without_fetch_metadata(host):
    st, h, body = host.request("GET", "/p/nosuchplatform/x",
                               headers={"Accept": "text/html"})
    assert st == 404 and h["content-type"].startswith("text/html")
    assert b'no platform &quot;nosuchplatform&quot;' in body


def test_unsafe_methods_keep_problem_json(host):
    st, h, _ = host.request("POST", "/p/nosuchplatform/x", headers=NAV,
                            body=b"")
    assert st == 404 and h["content-type"] == "application/problem+json"


def test_detail_is_escaped(host):
    st, h, body = host.request("GET", "/p/a%3Cb%3E%22/x", headers=NAV)
    assert st == 404 and h["content-type"].startswith("text/html")
    # The detail quotes the id: quotes are escaped, nothing is decoded.
    assert b'<p id="problem-detail">no platform &quot;a%3Cb%3E%22&quot;</p>' \
        in body
