"""Approving a device login (`nno login`) from a browser: verification_uri
is the page GET /device on the platform's console host (the console
package), verification_uri_complete the same with ?code=; what the page
reads and does, GET /api/v1/device/pending and the console's
GET /console/device, POST /console/device/approve|deny (answered by IAM);
who may read and decide, the gateway's origin rule for a session cookie,
bad input, expired and decided codes, guessing."""
import json
import re
import subprocess
import time

import pytest

from conftest import NNO

BASE = "nno.localhost"
LOGIN_SCOPES = ["features:*", "logs:read", "stacks:deploy", "stacks:read",
                "stacks:write"]


@pytest.fixture
def h(make_host):
    host = make_host(core=True, workers=2, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    host.platform("dev1")
    host.platform("other")
    return host


def new_code(h, pid="dev1", host=None):
    st, _, c = h.api("POST", "/device/code", {"platform": pid}, key=False,
                     host=host)
    assert st == 200, c
    return c


def token(h, c):
    return h.api("POST", "/device/token", {"device_code": c["device_code"]},
                 key=False)


def console(pid):
    return "console.%s.%s" % (pid, BASE)


def con(h, method, path, pid="dev1", key=None, body=None, headers=None):
    """A request to platform `pid`'s console host; JSON answer parsed."""
    hd = dict(headers or {})
    if key:
        hd["Authorization"] = "Bearer " + key
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hd["Content-Type"] = "application/json"
    st, rh, raw = h.request(method, path, headers=hd, body=data,
                            host="%s:%d" % (console(pid), h.port))
    try:
        return st, rh, json.loads(raw) if raw else None
    except ValueError:
        return st, rh, raw


def is_problem(st, rh, b, status):
    assert st == status, (st, b)
    assert rh["content-type"] == "application/problem+json", rh
    assert b["request_id"], b


def still_pending(h, c):
    time.sleep(1.1)
    st, _, b = token(h, c)
    assert st == 400 and b["error"] == "authorization_pending", b


def sign_up(h, pid, email):
    """A session of a new user of `pid` (signed up by path)."""
    st, _, b = h.json("POST", "/p/%s/auth/sign-up" % pid,
                      body=json.dumps({"email": email,
                                       "password": "correct horse battery"}),
                      headers={"Content-Type": "application/json"})
    assert st == 201, b
    return b["token"]


def allow_admins(h, pid):
    st, _, b = h.api("PUT", "/platforms/%s/access" % pid, {
        "signup": True, "user_scopes": ["features:*", "keys:write",
                                        "stacks:read"]})
    assert st == 200, b


def test_verification_uri_is_the_console_page_with_the_code(h):
    for host in (None, "%s:%d" % (BASE, h.port), "api.%s:%d" % (BASE, h.port)):
        c = new_code(h, host=host)
        page = "http://%s:%d/device" % (console("dev1"), h.port)
        assert c["verification_uri"] == page, c
        assert c["verification_uri_complete"] == page + "?code=" + \
            c["user_code"], c


def test_the_page_is_static_with_a_strict_policy(h):
    st, rh, body = con(h, "GET", "/device?code=BCDF-GHJK")
    assert st == 200, body
    assert rh["content-type"].startswith("text/html")
    csp = rh["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert rh["x-frame-options"] == "DENY"
    html = body.decode() if isinstance(body, bytes) else body
    # No inline script or style: every script names its file.
    assert re.findall(r"<script\b[^>]*>", html)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert " src=" in tag, tag
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    js = re.search(r'src="([^"]+/device\.js)"', html).group(1)
    st, rh, _ = con(h, "GET", js)
    assert st == 200 and "javascript" in rh["content-type"]
    # Elsewhere than the console host: a 404 naming it.
    st, rh, b = h.json("GET", "/p/dev1/device")
    is_problem(st, rh, b, 404)
    assert "http://console.dev1.%s" % BASE in b["detail"]


def test_pending_shows_what_approving_gives_and_nothing_secret(h):
    c = new_code(h)
    st, rh, b = h.api("GET", "/device/pending?user_code=" + c["user_code"])
    assert st == 200, b
    assert rh["cache-control"] == "no-store"
    assert b["platform"] == "dev1" and b["state"] == "pending"
    assert b["user_code"] == c["user_code"]
    assert sorted(b["scopes"]) == LOGIN_SCOPES and b["approvable"] is True
    assert b["client_addr"] == "127.0.0.1"
    assert 0 < b["expires_in"] <= 600
    assert b["expires_at"].endswith("Z") and b["key_expires_at"].endswith("Z")
    assert c["device_code"] not in json.dumps(b)
    # Typed loosely: lower case, no dash.
    loose = c["user_code"].replace("-", "").lower()
    st, _, b2 = h.api("GET", "/device/pending?user_code=" + loose)
    assert st == 200 and b2["user_code"] == c["user_code"], b2
    # An admin key sees the scopes its approval would give.
    admin = h.platform_key("dev1", scopes=["keys:write", "features:*",
                                           "stacks:read"])
    st, _, b = h.api("GET", "/device/pending?user_code=" + c["user_code"],
                     key=admin["key"])
    assert st == 200 and sorted(b["scopes"]) == ["features:*", "stacks:read"]
    # Only keys:write: nothing a login key holds; it may deny only.
    bare = h.platform_key("dev1", scopes=["keys:write"])
    st, _, b = h.api("GET", "/device/pending?user_code=" + c["user_code"],
                     key=bare["key"])
    assert st == 200 and b["scopes"] == [] and b["approvable"] is False
    still_pending(h, c)


def test_pending_is_for_those_who_may_approve(h):
    c = new_code(h)
    other = h.platform_key("other", scopes=["keys:write"])
    weak = h.platform_key("dev1", scopes=["features:*"])
    st, _, b = h.api("POST", "/platforms/dev1/tenants",
                     {"id": "t1", "name": "t1"})
    assert st == 201, b
    bound = h.platform_key("dev1", scopes=["keys:write"], tenant="t1")
    q = "/device/pending?user_code=" + c["user_code"]
    for key, status in ((other["key"], 404), (weak["key"], 403),
                        (bound["key"], 403), (False, 401)):
        st, rh, b = h.api("GET", q, key=key)
        is_problem(st, rh, b, status)
        assert "device_code" not in json.dumps(b)


def test_unknown_decided_expired_and_bad_codes_say_so(make_host):
    h = make_host(core=True, workers=1, config={
        "plugin_config": {"iam": {"device_ttl_s": 1}}}).start()
    h.platform("dev1")
    st, rh, b = h.api("GET", "/device/pending?user_code=BCDF-GHJK")
    is_problem(st, rh, b, 404)
    assert "no device code" in b["detail"]
    for bad in ("", "AAAA-AAAA", "BCDF-GHJ", "x" * 40, "BCDF%00GHJK"):
        st, rh, b = h.api("GET", "/device/pending?user_code=" + bad)
        is_problem(st, rh, b, 422)
    st, rh, b = h.api("GET", "/device/pending")
    is_problem(st, rh, b, 422)
    c = new_code(h)
    st, _, _ = h.api("POST", "/device/deny", {"user_code": c["user_code"]})
    assert st == 200
    st, rh, b = h.api("GET", "/device/pending?user_code=" + c["user_code"])
    is_problem(st, rh, b, 404)
    assert "already denied" in b["detail"], b
    c = new_code(h)
    time.sleep(1.2)
    st, rh, b = h.api("GET", "/device/pending?user_code=" + c["user_code"])
    is_problem(st, rh, b, 404)
    assert "expired" in b["detail"], b


def test_guessing_codes_is_limited_per_address(h):
    admin = h.platform_key("dev1", scopes=["keys:write"])
    # The key's own bucket (burst 100) is not what stops it: the client
    # address's device bucket is.
    seen = []
    for _ in range(90):
        st, rh, b = h.api("GET", "/device/pending?user_code=BCDF-GHJK",
                          key=admin["key"])
        seen.append(st)
        if st == 429:
            assert "device-code requests from this address" in b["detail"]
            assert rh["retry-after"]
            break
    assert seen[-1] == 429 and set(seen[:-1]) == {404}, seen


def test_console_routes_with_a_key_and_the_operator_key(h):
    c = new_code(h)
    q = "/console/device?user_code=" + c["user_code"]
    admin = h.platform_key("dev1", scopes=["keys:write", "features:*"])
    st, _, b = con(h, "GET", q, key=admin["key"])
    assert st == 200 and b["platform"] == "dev1", b
    assert sorted(b["scopes"]) == ["features:*"]
    st, _, b = con(h, "GET", q, key=h.op_key())
    assert st == 200 and sorted(b["scopes"]) == LOGIN_SCOPES, b
    # Nobody, another platform's key, a tenant-bound key: refused, and a
    # revoked key is nobody.
    st, rh, b = con(h, "GET", q)
    is_problem(st, rh, b, 401)
    assert rh["www-authenticate"].startswith("Bearer")
    other = h.platform_key("other", scopes=["keys:write", "features:*"])
    st, rh, b = con(h, "GET", q, key=other["key"])
    is_problem(st, rh, b, 404)
    st, _, _ = h.api("POST", "/platforms/dev1/tenants", {"id": "t1",
                                                         "name": "t1"})
    bound = h.platform_key("dev1", scopes=["keys:write"], tenant="t1")
    for method, path, body in (("GET", q, None),
                               ("POST", "/console/device/approve",
                                {"user_code": c["user_code"]})):
        st, rh, b = con(h, method, path, key=bound["key"], body=body)
        is_problem(st, rh, b, 403)
    gone = h.platform_key("dev1", scopes=["keys:write", "features:*"])
    st, _, b = h.api("DELETE", "/platforms/dev1/keys/" + gone["id"])
    assert st in (200, 204), b
    st, rh, b = con(h, "POST", "/console/device/approve",
                    key=gone["key"], body={"user_code": c["user_code"]})
    is_problem(st, rh, b, 401)
    # Another platform's console knows nothing of dev1's codes, even for
    # the operator.
    st, rh, b = con(h, "GET", q, pid="other", key=h.op_key())
    is_problem(st, rh, b, 404)
    st, rh, b = con(h, "POST", "/console/device/approve", pid="other",
                    key=h.op_key(), body={"user_code": c["user_code"]})
    is_problem(st, rh, b, 404)
    still_pending(h, c)
    # The operator approves on the console; the device gets its key.
    st, _, b = con(h, "POST", "/console/device/approve", key=h.op_key(),
                   body={"user_code": c["user_code"]})
    assert st == 200 and b["state"] == "approved", b
    time.sleep(1.1)
    st, _, t = token(h, c)
    assert st == 200 and t["key"].startswith("nnok_"), t
    assert sorted(t["scopes"]) == LOGIN_SCOPES


def test_a_session_cookie_follows_the_origin_rule(h):
    allow_admins(h, "dev1")
    sess = sign_up(h, "dev1", "admin@dev1.test")
    cookie = {"Cookie": "__Host-nno_session=" + sess}
    own = "http://%s:%d" % (console("dev1"), h.port)
    sibling = "http://%s:%d" % (console("other"), h.port)
    c = new_code(h)
    st, _, b = con(h, "GET", "/console/device?user_code=" + c["user_code"],
                   headers=cookie)
    assert st == 200 and sorted(b["scopes"]) == ["features:*", "stacks:read"]
    body = {"user_code": c["user_code"]}
    # A sibling platform's page: refused by the chain.
    st, rh, b = con(h, "POST", "/console/device/approve", body=body,
                    headers=dict(cookie, Origin=sibling))
    is_problem(st, rh, b, 403)
    # No Origin: the cookie stands for no one on this public route.
    st, rh, b = con(h, "POST", "/console/device/approve", body=body,
                    headers=cookie)
    is_problem(st, rh, b, 401)
    # Bad bodies change nothing.
    for bad in (b"{", b"[]", json.dumps({"user_code": 7}).encode(),
                json.dumps({"user_code": c["user_code"], "x": 1}).encode(),
                json.dumps({"user_code": c["user_code"],
                            "platform": "other"}).encode()):
        st, rh, b = con(h, "POST", "/console/device/approve", body=bad,
                        headers=dict(cookie, Origin=own))
        assert 400 <= st < 500 and st != 401, (bad, st, b)
        assert rh["content-type"] == "application/problem+json"
    still_pending(h, c)
    st, _, b = con(h, "POST", "/console/device/approve", body=body,
                   headers=dict(cookie, Origin=own))
    assert st == 200 and b["state"] == "approved", b
    # Decided: neither page route nor the API decides it again.
    st, rh, b = con(h, "POST", "/console/device/deny", body=body,
                    headers=dict(cookie, Origin=own))
    is_problem(st, rh, b, 404)
    time.sleep(1.1)
    st, _, t = token(h, c)
    assert st == 200 and sorted(t["scopes"]) == ["features:*", "stacks:read"]
    # Denied through the page.
    c2 = new_code(h)
    st, _, b = con(h, "POST", "/console/device/deny",
                   body={"user_code": c2["user_code"]},
                   headers=dict(cookie, Origin=own,
                               **{"Sec-Fetch-Site": "same-origin"}))
    assert st == 200 and b["state"] == "denied", b
    st, _, b = token(h, c2)
    assert st == 400 and b["error"] == "access_denied", b


def test_cli_prints_the_page_with_the_code(h, tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": "/usr/bin:/bin"}
    p = subprocess.Popen([NNO, "login", "http://127.0.0.1:%d" % h.port,
                          "--platform", "dev1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    try:
        line = p.stdout.readline()
        uc = line.split()[-1]
        assert line.startswith("Open http://%s:%d/device?code=%s " %
                               (console("dev1"), h.port, uc)), line
        st, _, b = h.api("POST", "/device/deny", {"user_code": uc})
        assert st == 200, b
        _, err = p.communicate(timeout=30)
        assert p.returncode != 0 and "denied" in err, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
