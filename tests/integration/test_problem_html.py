"""A problem answered to a browser's navigation is an HTML page (same status,
title, detail and request id, escaped; `data-status` on <main>; the
console's security headers), whoever wrote the problem: the host (404,
405), the registry at RESOLVE (unknown or suspended platform). API clients
(no Accept, */*, JSON preferred) keep application/problem+json."""
import json
import re

import pytest

from conftest import Host

NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,"
                      "image/avif,image/webp,*/*;q=0.8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
       "manifest-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    host = Host(tmp_path_factory.mktemp("problem-html"), workers=2,
                core=True)
    host.start()
    host.platform("shut")
    st, _, body = host.api("POST", "/platforms/shut/suspend")
    assert st == 200, body
    yield host
    host.stop()


def page(resp, status):
    st, hd, body = resp
    assert st == status, resp
    assert hd["content-type"] == "text/html; charset=utf-8", hd
    assert hd["content-security-policy"] == CSP
    assert hd["x-frame-options"] == "DENY"
    assert hd["referrer-policy"] == "no-referrer"
    assert hd["x-content-type-options"] == "nosniff"
    assert hd["cache-control"] == "no-store"
    text = body.decode()
    assert text.startswith("<!doctype html>")
    assert '<main data-status="%d">' % status in text
    assert "<p>Request id: <code>%s</code></p>" % hd["x-request-id"] in text
    assert "<script" not in text and "style=" not in text
    return text


def test_a_suspended_platform_opened_in_a_browser_is_a_page(h):
    text = page(h.request("GET", "/", headers=NAVIGATE,
                          host="console.shut.nno.localhost"), 403)
    assert "<title>403 Forbidden</title>" in text
    assert "<h1>Forbidden</h1>" in text
    assert "<p>platform shut is suspended</p>" in text


def test_the_detail_is_escaped(h):
    # The registry's detail quotes the name: no platform "nope".
    text = page(h.request("GET", "/x", headers=NAVIGATE,
                          host="console.nope.nno.localhost"), 404)
    assert "<p>no platform &quot;nope&quot;</p>" in text
    assert '"nope"' not in text


def test_accept_preferring_html_is_enough(h):
    page(h.request("GET", "/nowhere", headers={
        "Accept": "text/html, application/json;q=0.5"}), 404)


def test_other_headers_are_kept(h):
    # The host's 405 names the methods: still there on the page.
    resp = h.request("DELETE", "/readyz", headers=NAVIGATE)
    page(resp, 405)
    assert resp[1]["allow"]


def test_head_has_the_pages_length_and_no_body(h):
    st, hd, body = h.request("HEAD", "/nowhere", headers=NAVIGATE)
    full = h.request("GET", "/nowhere", headers=NAVIGATE)[2]
    assert st == 404 and body == b""
    assert hd["content-type"] == "text/html; charset=utf-8"
    assert int(hd["content-length"]) == len(full)


@pytest.mark.parametrize("headers", [
    {},
    {"Accept": "*/*"},
    {"Accept": "application/json"},
    {"Accept": "application/json, text/html;q=0.5"},
    {"Accept": "text/html;q=0, */*"},
    {"Accept": "text/html;q=0.5, */*"},
    {"Sec-Fetch-Mode": "cors", "Accept": "*/*"},
])
def test_api_clients_keep_problem_json(h, headers):
    st, hd, body = h.request("GET", "/", headers=headers,
                             host="console.shut.nno.localhost")
    assert st == 403
    assert hd["content-type"] == "application/problem+json"
    doc = json.loads(body)
    assert doc["detail"] == "platform shut is suspended"
    assert doc["request_id"] == hd["x-request-id"]


def test_successes_are_untouched(h):
    st, hd, body = h.request("GET", "/readyz", headers=NAVIGATE)
    assert st == 200
    assert "text/html" not in hd.get("content-type", "")
    assert not re.search(rb"<main", body)
