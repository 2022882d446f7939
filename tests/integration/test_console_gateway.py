"""The gateway side of the console shell, black box: the registry's
service members a console package reads (platform_profile,
platform_stack_at, tenant_list), IAM's scope_allows, platform branding,
auth.svc narrowing, the host-only session cookie and the Nno-Tenant header
(registry/README.md, plugins/iam/README.md, packages/auth/README.md)."""
import base64
import json
import os
import re
from urllib.parse import urlencode

import pytest

from conftest import FIXTURE_STACKS, Host
from test_iam import op, problem, started, stopped, tenant

REGPROBE = os.path.join(FIXTURE_STACKS, "regprobe")
NNO_ENOENT = -3
NNO_EINVAL = -1


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    """Core plugins, 2 workers, the default stack and the regprobe fixture
    stack (the service members called from a feature package)."""
    host = started(Host(tmp_path_factory.mktemp("console-gw"), workers=2,
                        core=True, stacks=[REGPROBE],
                        config={"sandbox": {"inprocess": "default,regprobe"}}))
    yield host
    stopped(host)


def probe(g, pid, path):
    st, _, body = g.json("GET", "/p/%s/regprobe/%s" % (pid, path))
    assert st == 200, body
    return body


def new_platform(g, pid, stacks=("default", "regprobe"), **fields):
    body = {"id": pid, "name": "Platform " + pid}
    body.update(fields)
    if stacks:
        body["stacks"] = list(stacks)
    st, _, p = op(g, "POST", "/platforms", body)
    assert st == 201, p
    return p


def suspend_tenant(g, pid, tid, status="suspended"):
    st, _, b = op(g, "PATCH", "/platforms/%s/tenants/%s" % (pid, tid),
                  {"status": status})
    assert st == 200, b


# -- nno.registry: platform_profile, platform_stack_at, tenant_list ---------

def test_profile_of_the_request_platform(g):
    new_platform(g, "prof-a", name="Acme")
    got = probe(g, "prof-a", "profile")
    assert got["rc"] == 0, got
    assert got["profile"] == {"id": "prof-a", "name": "Acme",
                              "class": "platform", "status": "active",
                              "branding": {}}
    # a buffer too small is refused (NNO_EINVAL), never cut
    assert got["rc_small"] == NNO_EINVAL and got["rc_bad"] == NNO_EINVAL


def test_stack_at_lists_the_active_versions_in_order(g):
    new_platform(g, "stk-a")
    got = probe(g, "stk-a", "stacks")
    assert got["items"] == ["default@1.0.0", "regprobe@1.0.0"], got
    assert got["end"] == NNO_ENOENT and got["unknown"] == NNO_ENOENT
    # deactivating a stack changes the answer on the next call
    st, _, b = op(g, "DELETE", "/platforms/stk-a/stacks/default")
    assert st in (200, 204), b
    for _ in range(4):  # both workers
        assert probe(g, "stk-a", "stacks")["items"] == ["regprobe@1.0.0"]


def test_tenant_list_depth_first_subtree(g):
    new_platform(g, "ten-a")
    for tid, parent in (("eu", None), ("us", None), ("fr", "eu"),
                        ("de", "eu"), ("eu-x", None), ("pa", "fr")):
        tenant(g, "ten-a", tid, parent)
    suspend_tenant(g, "ten-a", "de")
    got = probe(g, "ten-a", "tenants")
    assert got["rc"] == 0, got
    assert [(t["id"], t["path"], t["status"]) for t in got["items"]] == [
        ("eu", "eu", "active"), ("de", "eu/de", "suspended"),
        ("fr", "eu/fr", "active"), ("pa", "eu/fr/pa", "active"),
        ("eu-x", "eu-x", "active"), ("us", "us", "active")]
    assert got["items"][0]["name"] == "Tenant eu"
    sub = probe(g, "ten-a", "tenants?root=fr")
    assert [(t["id"], t["path"]) for t in sub["items"]] == [
        ("fr", "eu/fr"), ("pa", "eu/fr/pa")]
    assert probe(g, "ten-a", "tenants?root=nope") == {"items": [],
                                                      "rc": NNO_ENOENT}
    # the callback's own value stops the walk and comes back as is
    stop = probe(g, "ten-a", "tenants?stop=2")
    assert stop["rc"] == 7 and len(stop["items"]) == 2


# -- nno.iam: scope_allows ----------------------------------------------------

@pytest.fixture(scope="module")
def scope_platform(g):
    new_platform(g, "scp-a")
    return "scp-a"


@pytest.mark.parametrize("granted,needed,want", [
    ("features:notes:read", "features:notes:read", 1),
    ("features:notes:write", "features:notes:read", 1),
    ("features:notes:read", "features:notes:write", 0),
    ("features:*", "features:notes:read", 1),
    ("features:notes:*", "features:notes:write", 1),
    ("*", "features:hello:read", 1),
    ("features:hello:read tenants:read", "features:notes:read", 0),
    ("", "features:notes:read", 0),
    ("features:notes:read", "", 0),
])
def test_scope_allows_is_the_authz_matcher(g, scope_platform, granted,
                                           needed, want):
    got = probe(g, scope_platform, "scope?" + urlencode(
        {"granted": granted, "needed": needed}))
    assert got == {"allows": want}


# -- branding -------------------------------------------------------------------

PNG = "data:image/png;base64," + base64.b64encode(
    b"\x89PNG\r\n\x1a\n" + bytes(range(200))).decode()


def patch(g, pid, body, headers=None):
    return op_call(g, "PATCH", "/platforms/" + pid, body, headers)


def op_call(g, method, path, body=None, headers=None):
    st, hd, b = g.api(method, path, body, headers=headers)
    return st, hd, b


def audit(g, pid, action):
    st, _, a = g.api("GET", "/audit?target=platform:%s&action=%s"
                     % (pid, action))
    assert st == 200, a
    return a["items"]


def test_branding_set_shown_audited_and_cleared(g):
    new_platform(g, "brd-a")
    st, hd, p = patch(g, "brd-a", {"branding": {
        "logo": PNG, "primary": "#1A73E8", "accent": "#fa0",
        "background": "#fff", "foreground": "#111111"}})
    assert st == 200, p
    want = {"logo": PNG, "primary": "#1a73e8", "accent": "#ffaa00",
            "background": "#ffffff", "foreground": "#111111"}
    assert p["branding"] == want
    st, hd2, got = g.api("GET", "/platforms/brd-a")
    assert st == 200 and got["branding"] == want
    assert hd2["etag"] == hd["etag"]
    # the profile a console reads carries it
    assert probe(g, "brd-a", "profile")["profile"]["branding"] == want
    rows = audit(g, "brd-a", "platform.branding")
    assert len(rows) == 1
    assert rows[0]["detail"] == {
        "changed": ["logo", "primary", "accent", "background", "foreground"],
        "cleared": False}
    # no logo bytes in the audit log
    assert "iVBOR" not in repr(rows)
    # the object is replaced whole: only what changed is named
    st, _, p = patch(g, "brd-a", {"branding": {
        "logo": PNG, "primary": "#1a73e8"}})
    assert st == 200 and p["branding"] == {"logo": PNG, "primary": "#1a73e8"}
    rows = audit(g, "brd-a", "platform.branding")
    assert rows[0]["detail"] == {
        "changed": ["accent", "background", "foreground"], "cleared": False}
    # {} and null clear it
    for clear in ({}, None):
        patch(g, "brd-a", {"branding": {"primary": "#000"}})
        st, _, p = patch(g, "brd-a", {"branding": clear})
        assert st == 200 and p["branding"] == {}, p
        assert probe(g, "brd-a", "profile")["profile"]["branding"] == {}
        assert audit(g, "brd-a", "platform.branding")[0]["detail"][
            "cleared"] is True
    # the same branding again changes nothing and audits nothing
    n = len(audit(g, "brd-a", "platform.branding"))
    st, _, p = patch(g, "brd-a", {"branding": None})
    assert st == 200 and len(audit(g, "brd-a", "platform.branding")) == n


def test_branding_with_other_fields_one_version(g):
    p0 = new_platform(g, "brd-b")
    st, _, p = patch(g, "brd-b", {"name": "Bee", "branding": {
        "primary": "#000000"}})
    assert st == 200, p
    assert p["name"] == "Bee" and p["version"] == p0["version"] + 1
    upd = audit(g, "brd-b", "platform.update")
    assert upd[0]["detail"] == {"changes": {"name": "Bee"}}


@pytest.mark.parametrize("branding,field,detail", [
    ([], "branding", 'field "branding": expected an object or null, got an '
     'array'),
    ({"colour": "#000"}, "branding.colour",
     'field "branding.colour": unknown field (expected logo, primary, '
     'accent, background, foreground)'),
    ({"primary": "blue"}, "branding.primary",
     'field "branding.primary": expected a colour "#rrggbb" or "#rgb", got '
     '"blue"'),
    ({"primary": "#ffcc00"}, "branding.primary",
     'field "branding.primary": the contrast of white text on #ffcc00 is '
     '1.51:1, at least 4.5:1 is needed'),
    ({"background": "#ffffff", "foreground": "#777777"},
     "branding.foreground",
     'field "branding.foreground": the contrast of #777777 on #ffffff is '
     '4.47:1, at least 4.5:1 is needed'),
    ({"logo": "https://example.com/logo.png"}, "branding.logo",
     'field "branding.logo": expected a data: URI '
     '"data:image/{png|jpeg|gif|webp|svg+xml};base64,..."'),
    ({"logo": "data:image/png;base64," + "A" * 65536}, "branding.logo",
     'field "branding.logo": the logo is 65558 bytes of text, at most 65536 '
     '(a data: URI of about 48 KiB of image)'),
])
def test_branding_refused_changes_nothing(g, branding, field, detail):
    pid = "brd-bad"
    st, _, _ = g.api("GET", "/platforms/" + pid)
    if st == 404:
        new_platform(g, pid)
        assert patch(g, pid, {"branding": {"primary": "#000"}})[0] == 200
    st, _, before = g.api("GET", "/platforms/" + pid)
    resp = patch(g, pid, {"branding": branding, "name": "changed"})
    body = problem(resp, 422, detail)
    assert body["field"] == field
    st, _, after = g.api("GET", "/platforms/" + pid)
    assert after == before


# -- nno platform brand ----------------------------------------------------------

def brand(g, *args):
    from test_cli import run
    return run("platform", "brand", *args, url="http://127.0.0.1:%d" % g.port,
               data=g.data)


def test_cli_brand(g, tmp_path):
    from test_cli import assert_usage_error, show
    new_platform(g, "cli-b")
    logo = tmp_path / "logo.svg"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    logo.write_bytes(svg)
    r = brand(g, "cli-b", "--logo", str(logo), "--primary", "#1A73E8")
    assert r.returncode == 0, r.stderr
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
    assert show(r.stdout) == {
        "id": "cli-b", "primary": "#1a73e8",
        "logo": "image/svg+xml, %d bytes of text" % len(uri)}
    # options not given keep their value; '' drops one
    r = brand(g, "cli-b", "--accent", "#fa0", "--primary", "")
    assert r.returncode == 0, r.stderr
    st, _, p = g.api("GET", "/platforms/cli-b")
    assert p["branding"] == {"logo": uri, "accent": "#ffaa00"}
    # the server's refusal, as an API error naming the ratio
    r = brand(g, "cli-b", "--primary", "#ffcc00")
    assert r.returncode == 1 and "1.51:1" in r.stderr, r.stderr
    # --clear starts from nothing
    r = brand(g, "cli-b", "--clear", "--foreground", "#222")
    assert r.returncode == 0, r.stderr
    st, _, p = g.api("GET", "/platforms/cli-b")
    assert p["branding"] == {"foreground": "#222222"}
    r = brand(g, "cli-b", "--clear")
    assert r.returncode == 0 and show(r.stdout)["branding"] == "-"
    # a logo too large is refused before anything is sent
    n = len(audit(g, "cli-b", "platform.branding"))
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 49200)
    err = assert_usage_error(brand(g, "cli-b", "--logo", str(big)))
    assert err[0] == ("nno: platform brand: --logo %s is 49200 bytes: as a "
                      "data: URI it would be 65622 bytes of text, at most "
                      "65536" % big)
    bmp = tmp_path / "logo.bmp"
    bmp.write_bytes(b"BM")
    err = assert_usage_error(brand(g, "cli-b", "--logo", str(bmp)))
    assert "unknown image type" in err[0]
    assert_usage_error(brand(g, "cli-b"))
    assert len(audit(g, "cli-b", "platform.branding")) == n


# -- auth.svc.{stackId}.{p}.{base}: that stack only --------------------------

def test_auth_svc_host_reaches_its_stack_only(g):
    new_platform(g, "svc-a")
    key = g.platform_key("svc-a", scopes=["*"])["key"]
    base = "svc-a.nno.localhost"

    def get(host, path):
        return g.json("GET", path, host=host, key=key)

    # the platform's other names reach every active stack
    for host in (base, "console." + base, "auth.svc." + base):
        assert get(host, "/regprobe/stacks")[0] == 200
        assert get(host, "/hello")[0] == 200
    # auth.svc.regprobe: regprobe's routes, not default's
    st, _, b = get("auth.svc.regprobe." + base, "/regprobe/stacks")
    assert st == 200 and b["items"] == ["default@1.0.0", "regprobe@1.0.0"]
    st, hd, b = get("auth.svc.regprobe." + base, "/hello")
    problem((st, hd, b), 404)
    # auth.svc.default: default's routes, not regprobe's
    assert get("auth.svc.default." + base, "/hello")[0] == 200
    problem(get("auth.svc.default." + base, "/regprobe/stacks"), 404)
    # a stack the platform has not active: 404 naming it
    problem(get("auth.svc.nope." + base, "/hello"), 404,
            'stack "nope" is not active on platform svc-a')
    st, _, b = op(g, "DELETE", "/platforms/svc-a/stacks/regprobe")
    assert st == 204, b
    for _ in range(4):  # every worker
        problem(get("auth.svc.regprobe." + base, "/regprobe/stacks"), 404,
                'stack "regprobe" is not active on platform svc-a')
    # an unknown platform stays the platform's 404
    problem(get("auth.svc.default.nope-p.nno.localhost", "/hello"), 404,
            'no platform "nope-p"')


# -- the session cookie: host-only on a platform's hosts -------------------------

PASSWORD = "correct horse battery"
HOST_COOKIE_RE = (r"__Host-nno_session=(nnos_\S+); Path=/; Max-Age=(\d+); "
                  r"HttpOnly; Secure; SameSite=Lax")


def open_signup(g, pid, stacks=("default", "regprobe")):
    new_platform(g, pid, stacks=stacks)
    st, _, a = op(g, "PUT", "/platforms/%s/access" % pid, {"signup": True})
    assert st == 200, a


def auth(g, pid, what, body=None, host=None, cookie=None, headers=None):
    """POST /auth/{what} (sign-up, sign-in, sign-out) or GET /auth/session,
    on `host` or by path."""
    path = "/auth/" + what if host else "/p/%s/auth/%s" % (pid, what)
    hd = {"Content-Type": "application/json",
          "Sec-Fetch-Site": "same-origin"}
    if cookie:
        hd["Cookie"] = cookie
    hd.update(headers or {})
    method = "GET" if what == "session" else "POST"
    data = json.dumps(body).encode() if body is not None else None
    st, rh, raw = g.request(method, path, headers=hd, body=data, host=host)
    return st, rh, (json.loads(raw) if raw else None)


def user(g, pid, email, host=None):
    st, hd, up = auth(g, pid, "sign-up", {"email": email,
                                          "password": PASSWORD}, host=host)
    assert st == 201, up
    return hd, up


def test_cookie_host_only_on_platform_hosts_by_path_otherwise(g):
    open_signup(g, "ck-a")
    host = "console.ck-a.nno.localhost"
    hd, up = user(g, "ck-a", "ada@example.com", host=host)
    m = re.fullmatch(HOST_COOKIE_RE, hd["set-cookie"])
    assert m and m.group(1) == up["token"], hd["set-cookie"]
    st, _, a = auth(g, "ck-a", "sign-in", {"email": "ada@example.com",
                                           "password": PASSWORD}, host=host)
    # IAM reads the host cookie
    tok = a["token"]
    st, _, me = auth(g, "ck-a", "session", host=host,
                     cookie="__Host-nno_session=" + tok)
    assert st == 200 and me["platform"] == "ck-a", me
    # by path: nno_session for the platform's paths only
    st, hd, b = auth(g, "ck-a", "sign-in", {"email": "ada@example.com",
                                            "password": PASSWORD})
    assert st == 200
    assert hd["set-cookie"] == (
        "nno_session=%s; Path=/p/ck-a; Max-Age=%s; HttpOnly; Secure; "
        "SameSite=Lax" % (b["token"], re.search(r"Max-Age=(\d+)",
                                                hd["set-cookie"]).group(1)))
    st, _, me = auth(g, "ck-a", "session", cookie="nno_session=" + b["token"])
    assert st == 200 and me["platform"] == "ck-a", me
    # sign-out clears the cookie of the form it was asked on
    st, hd, _ = auth(g, "ck-a", "sign-out", host=host,
                     cookie="__Host-nno_session=" + tok)
    assert st == 204
    assert hd["set-cookie"] == ("__Host-nno_session=; Path=/; Max-Age=0; "
                                "HttpOnly; Secure; SameSite=Lax")
    st, hd, _ = auth(g, "ck-a", "sign-out",
                     cookie="nno_session=" + b["token"])
    assert st == 204
    assert hd["set-cookie"] == ("nno_session=; Path=/p/ck-a; Max-Age=0; "
                                "HttpOnly; Secure; SameSite=Lax")
    for t in (tok, b["token"]):
        assert auth(g, "ck-a", "session", host=host,
                    cookie="__Host-nno_session=" + t)[0] == 401


def test_a_sibling_platforms_cookie_never_authenticates(g):
    open_signup(g, "sib-a")
    open_signup(g, "sib-b")
    a_tok = user(g, "sib-a", "eve@example.com", host="sib-a.nno.localhost")[1][
        "token"]
    b_tok = user(g, "sib-b", "bob@example.com")[1]["token"]
    b_host = "console.sib-b.nno.localhost"
    # A's session, under either name (planted by a page of sib-a for the
    # base domain, or sent by a client), is no one on B's hosts or paths
    for cookie in ("nno_session=" + a_tok, "__Host-nno_session=" + a_tok):
        for host in (b_host, "sib-b.nno.localhost", None):
            problem(auth(g, "sib-b", "session", host=host, cookie=cookie),
                    401)
            st, _, b = g.json("GET", "/hello" if host else "/p/sib-b/hello",
                              host=host, headers={"Cookie": cookie})
            assert st == 401, b
    # beside B's own cookie, before it: B's user, not refused for A's
    for cookie in ("nno_session=%s; __Host-nno_session=%s" % (a_tok, b_tok),
                   "__Host-nno_session=%s; __Host-nno_session=%s"
                   % (a_tok, b_tok)):
        st, _, me = auth(g, "sib-b", "session", host=b_host, cookie=cookie)
        assert st == 200 and me["platform"] == "sib-b", (cookie, me)
    # by path, nno_session is the cookie: A's is skipped, B's taken
    st, _, me = auth(g, "sib-b", "session",
                     cookie="nno_session=%s; nno_session=%s" % (a_tok, b_tok))
    assert st == 200 and me["platform"] == "sib-b", me
    # and the operator API's hosts take neither as anyone
    st, _, body = g.json("GET", "/api/v1/platforms/sib-a",
                         headers={"Cookie": "nno_session=" + a_tok})
    assert st in (401, 403), body


def test_a_planted_base_domain_cookie_signs_no_one_in(g):
    """Fixation: a page of another platform sets nno_session (Domain=base)
    holding the attacker's own valid session of this platform. On the
    platform's hosts only the __Host- cookie counts, so the visitor is
    not signed in to the attacker's account."""
    open_signup(g, "fix-b")
    mallory = user(g, "fix-b", "mallory@example.com")[1]["token"]
    for host in ("console.fix-b.nno.localhost", "fix-b.nno.localhost"):
        problem(auth(g, "fix-b", "session", host=host,
                     cookie="nno_session=" + mallory), 401)
        st, _, me = auth(g, "fix-b", "session", host=host,
                         cookie="__Host-nno_session=" + mallory)
        assert st == 200 and me["user"]["email"] == "mallory@example.com"


# -- Nno-Tenant: acting in a tenant ------------------------------------------------

def tenant_call(g, method, path, tenant=None, key=None, cookie=None,
                body=None, host="app.nt-a.nno.localhost"):
    hd = {"Sec-Fetch-Site": "same-origin"}
    if tenant is not None:
        hd["Nno-Tenant"] = tenant
    if cookie:
        hd["Cookie"] = cookie
    if body is not None:
        hd["Content-Type"] = "application/json"
        body = json.dumps(body).encode()
    st, rh, raw = g.request(method, path, headers=hd, body=body, host=host,
                            key=key)
    return st, rh, (json.loads(raw) if raw else None)


REACH = "tenant %s is outside this credential's reach"


@pytest.fixture(scope="module")
def nt(g):
    """Platform nt-a: tenants eu (fr below it) and us; sibling platform
    nt-b with a tenant "xb"."""
    open_signup(g, "nt-a")
    for tid, parent in (("eu", None), ("us", None), ("fr", "eu")):
        tenant(g, "nt-a", tid, parent)
    new_platform(g, "nt-b")
    tenant(g, "nt-b", "xb")
    return "nt-a"


def test_unbound_session_acts_in_a_tenant(g, nt):
    tok = user(g, nt, "ten@example.com", host="console.nt-a.nno.localhost")[
        1]["token"]
    cookie = "__Host-nno_session=" + tok
    st, _, me = tenant_call(g, "GET", "/auth/session", "eu", cookie=cookie)
    assert st == 200 and me["tenant"] == "eu", me
    st, _, me = tenant_call(g, "GET", "/auth/session", "", cookie=cookie)
    assert st == 200 and me["tenant"] is None, me
    st, _, note = tenant_call(g, "POST", "/notes", "fr", cookie=cookie,
                              body={"title": "in fr"})
    assert st == 201 and note["tenant"] == "eu/fr", note
    path = "/notes/%s" % note["id"]
    # seen from the tenant and above it, not from a sibling
    for t in ("fr", "eu", None):
        st, _, got = tenant_call(g, "GET", path, t, cookie=cookie)
        assert st == 200 and got["id"] == note["id"], (t, got)
    problem(tenant_call(g, "GET", path, "us", cookie=cookie), 404)
    st, _, page = tenant_call(g, "GET", "/notes", "us", cookie=cookie)
    assert st == 200 and page["items"] == [], page
    # a tenant of another platform is unknown here
    problem(tenant_call(g, "GET", path, "xb", cookie=cookie), 403,
            REACH % "xb")


def test_bound_key_narrows_never_widens(g, nt):
    key = g.platform_key(nt, scopes=["*"], tenant="eu")["key"]
    st, _, note = tenant_call(g, "POST", "/notes", "fr", key=key,
                              body={"title": "by key"})
    assert st == 201 and note["tenant"] == "eu/fr", note
    st, _, note = tenant_call(g, "POST", "/notes", "eu", key=key,
                              body={"title": "by key"})
    assert st == 201 and note["tenant"] == "eu", note
    # sideways, unknown and malformed: the same 403, nothing written
    for t, shown in (("us", "us"), ("nope", "nope"), ("xb", "xb"),
                     ("EU", "??"), ("e u/../x", "e?u????x")):
        problem(tenant_call(g, "POST", "/notes", t, key=key,
                            body={"title": "no"}), 403, REACH % shown)
    st, _, page = tenant_call(g, "GET", "/notes", None, key=key)
    assert [n["title"] for n in page["items"]].count("no") == 0
    # the core API follows the narrowed tenant too: from fr, eu is above
    st, _, t = tenant_call(g, "GET", "/api/v1/platforms/nt-a/tenants/fr",
                           "fr", key=key, host="127.0.0.1")
    assert st == 200, t
    problem(tenant_call(g, "PATCH", "/api/v1/platforms/nt-a/tenants/eu",
                        "fr", key=key, host="127.0.0.1",
                        body={"name": "renamed"}), 403)


def test_suspended_tenant_refused(g, nt):
    key = g.platform_key(nt, scopes=["*"])["key"]
    tenant(g, nt, "sus")
    tenant(g, nt, "sub", "sus")
    assert tenant_call(g, "GET", "/notes", "sub", key=key)[0] == 200
    suspend_tenant(g, nt, "sus")
    for _ in range(4):  # every worker
        for t in ("sus", "sub"):
            problem(tenant_call(g, "GET", "/notes", t, key=key), 403,
                    "tenant %s is suspended (or a tenant above it)" % t)
    # the credential itself keeps working elsewhere
    assert tenant_call(g, "GET", "/notes", "us", key=key)[0] == 200
    assert tenant_call(g, "GET", "/notes", None, key=key)[0] == 200


def test_nno_tenant_allowed_in_preflight(g, nt):
    origin = "http://console.nt-a.nno.localhost:%d" % g.port
    st, hd, _ = g.request("OPTIONS", "/notes", host="app.nt-a.nno.localhost",
                          headers={"Origin": origin,
                                   "Access-Control-Request-Method": "POST",
                                   "Access-Control-Request-Headers":
                                   "content-type, nno-tenant"})
    assert st == 204, hd
    assert "nno-tenant" in hd["access-control-allow-headers"].lower()
