"""IAM and sign-in against a hostile caller, black box: a credential that
expires cannot mint lasting ones, keys made by a session end with it and
follow user_scopes, every session cookie sent is tried, a cookie change
must say where it comes from, failed credentials are rate limited, and a
full rate-limit table answers 503 (plugins/iam/README.md,
packages/auth/README.md)."""
import os
import time

from conftest import parse_responses
from test_iam import (PASSWORD, call, h, hello, new_key, op, platform,
                      problem, session, sign_in, started, stopped,
                      tiny_plugins)
from conftest import Host
from test_ratelimit_eviction import metrics

assert h  # the module-scoped host of test_iam.py, used by these tests too

EXPIRING = ("a credential that expires (a session, or a key with an "
            "expiry) cannot turn sign-up on or widen user_scopes: users it "
            "lets in would outlive it; use the operator key or a key that "
            "does not expire")
UNSAID = ("a cookie-authenticated change must say where it comes from: "
          "send Origin (browsers do), or send the token as "
          "\"Authorization: Bearer\" instead of the cookie")
TABLE_FULL = "the host's rate-limit table is full; try again later"


def access(h, pid, body, key):
    return call(h, "PUT", "/api/v1/platforms/%s/access" % pid, key=key,
                body=body)


def make_key(h, pid, cred, scopes, **kw):
    body = {"name": "made", "scopes": scopes}
    body.update(kw)
    st, _, k = call(h, "POST", "/api/v1/platforms/%s/keys" % pid, key=cred,
                    body=body)
    assert st == 201, k
    return k


def everywhere(h, pid, key, want):
    """`key` answers `want` on hello on both workers (fresh connections),
    within a second."""
    deadline = time.monotonic() + 1.0
    while True:
        got = [hello(h, pid, key=key) for _ in range(4)]
        if got == [want] * 4:
            return
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def open_platform(h, pid, plan="unmetered"):
    """A platform whose users hold every scope, sign-up on."""
    platform(h, pid, plan=plan, signup=True)
    st, _, a = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"user_scopes": ["*"]})
    assert st == 200, a


# -- expiring credentials cannot mint lasting ones ------------------------------

def test_an_expiring_key_cannot_open_sign_up(h):
    pid = "rv-exp-key"
    platform(h, pid)  # sign-up off, user_scopes the default features:*
    ex = new_key(h, pid, ["*"], expires_in=120)["key"]
    # the attack: sign-up on, every scope for users, then sessions for ever
    problem(access(h, pid, {"user_scopes": ["*"], "signup": True}, ex), 403,
            EXPIRING)
    problem(access(h, pid, {"signup": True}, ex), 403, EXPIRING)
    problem(access(h, pid, {"user_scopes": ["*"]}, ex), 403, EXPIRING)
    st, _, a = op(h, "GET", "/platforms/%s/access" % pid)
    assert a["signup"] is False and a["user_scopes"] == ["features:*"], a
    # narrowing, turning sign-up off and the origins remain its to change
    st, _, a = access(h, pid, {"user_scopes": ["features:hello:read"],
                               "signup": False,
                               "cors_origins": ["https://a.example"]}, ex)
    assert st == 200 and a["user_scopes"] == ["features:hello:read"], a
    problem(access(h, pid, {"user_scopes": ["features:*"]}, ex), 403,
            EXPIRING)
    # a key that never expires and holds the scopes may; so may the operator
    forever = new_key(h, pid, ["*"])["key"]
    st, _, a = access(h, pid, {"user_scopes": ["*"], "signup": True}, forever)
    assert st == 200 and a["signup"] is True and a["user_scopes"] == ["*"], a
    st, _, a = op(h, "PUT", "/platforms/%s/access" % pid, {"signup": False})
    assert st == 200


def test_a_session_cannot_reopen_sign_up_nor_widen_user_scopes(h):
    pid = "rv-exp-sess"
    open_platform(h, pid)
    s = session(h, pid, "admin@example.com")
    # it holds every scope, yet it ends: closing is fine, reopening is not
    st, _, a = access(h, pid, {"signup": False}, s)
    assert st == 200 and a["signup"] is False, a
    problem(access(h, pid, {"signup": True}, s), 403, EXPIRING)
    st, _, a = access(h, pid, {"user_scopes": ["features:*", "keys:write"]}, s)
    assert st == 200, a
    # a narrowed session lacks what it would grant: refused either way
    problem(access(h, pid, {"user_scopes": ["*"]}, s), 403)
    st, _, a = op(h, "GET", "/platforms/%s/access" % pid)
    assert a["signup"] is False, a
    assert a["user_scopes"] == ["features:*", "keys:write"], a
    # a key the session made expires too: same answer
    st, _, a = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"user_scopes": ["*"]})
    s2 = sign_in(h, pid, "admin@example.com")
    k = make_key(h, pid, s2, ["*"])
    assert k["expires_at"] is not None
    problem(access(h, pid, {"signup": True}, k["key"]), 403, EXPIRING)


# -- keys made by a session end with it ----------------------------------------

def test_keys_made_by_a_session_end_with_it(h):
    pid = "rv-sess-keys"
    open_platform(h, pid)
    s = session(h, pid, "ci@example.com")
    k = make_key(h, pid, s, ["*"])["key"]
    # a key made by that key belongs to the session as well
    kk = make_key(h, pid, k, ["features:*"])["key"]
    op_made = new_key(h, pid, ["features:*"])["key"]
    for key in (k, kk, op_made):
        everywhere(h, pid, key, 200)
    st, _, _ = call(h, "POST", "/p/%s/auth/sign-out" % pid, key=s)
    assert st == 204
    everywhere(h, pid, k, 401)
    everywhere(h, pid, kk, 401)
    everywhere(h, pid, op_made, 200)
    st, _, lst = op(h, "GET", "/platforms/%s/keys" % pid)
    revoked = {i["id"]: i["revoked_at"] for i in lst["items"]}
    assert revoked[k[5:21]] is not None and revoked[kk[5:21]] is not None


def test_a_password_change_revokes_the_keys_of_the_sessions_it_ends(h):
    pid = "rv-pw-keys"
    open_platform(h, pid)
    a = session(h, pid, "pw@example.com")
    b = sign_in(h, pid, "pw@example.com")
    ka = make_key(h, pid, a, ["features:*"])["key"]
    kb = make_key(h, pid, b, ["features:*"])["key"]
    everywhere(h, pid, ka, 200)
    st, _, body = call(h, "POST", "/p/%s/auth/password" % pid, key=b,
                       body={"current": PASSWORD,
                             "new": "a much longer new passphrase"})
    assert st == 204, body
    everywhere(h, pid, ka, 401)  # made by a session the change ended
    everywhere(h, pid, kb, 200)  # made by the session that changed it


def test_keys_made_by_a_user_follow_user_scopes(h):
    pid = "rv-narrow"
    open_platform(h, pid)
    s = session(h, pid, "narrow@example.com")
    k = make_key(h, pid, s, ["*"])["key"]
    keys = "/api/v1/platforms/%s/keys" % pid
    assert call(h, "GET", keys, key=k)[0] == 200
    st, _, _ = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"user_scopes": ["features:*"]})
    assert st == 200
    # no more than users hold now, on every worker
    for _ in range(4):
        problem(call(h, "GET", keys, key=k), 403,
                "this credential lacks the scope \"keys:read\"")
        assert hello(h, pid, key=k) == 200
    problem(call(h, "POST", keys, key=k,
                 body={"name": "x", "scopes": ["features:*"]}), 403)
    # restored, it holds what it was made with again
    st, _, _ = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"user_scopes": ["*"]})
    for _ in range(4):
        assert call(h, "GET", keys, key=k)[0] == 200


# -- session cookies -------------------------------------------------------------

def test_every_session_cookie_is_tried(h):
    pid = "rv-cookies"
    platform(h, pid, signup=True)
    tok = session(h, pid, "cookie@example.com")
    me = "/p/%s/auth/session" % pid
    fake = "nnos_0123456789abcdef_" + "A" * 43
    for junk in (["garbage"], [fake], ["garbage", fake, ""]):
        cookie = "; ".join("nno_session=" + j for j in junk + [tok])
        st, _, body = call(h, "GET", me, headers={"Cookie": cookie})
        assert st == 200 and body["user"]["email"] == "cookie@example.com", \
            (junk, body)
    # other cookies around it do not matter; a dead one alone is refused
    cookie = "theme=dark; nno_session=%s; lang=en; nno_session=%s" % (fake,
                                                                      tok)
    assert call(h, "GET", me, headers={"Cookie": cookie})[0] == 200
    problem(call(h, "GET", me, headers={"Cookie": "nno_session=" + fake}),
            401, "this session has ended; sign in again")
    # bounded: four values are tried, not more
    cookie = "; ".join(["nno_session=" + fake] * 4 + ["nno_session=" + tok])
    problem(call(h, "GET", me, headers={"Cookie": cookie}), 401)
    cookie = "; ".join(["nno_session=" + fake] * 3 + ["nno_session=" + tok])
    assert call(h, "GET", me, headers={"Cookie": cookie})[0] == 200


def test_a_cookie_change_must_say_where_it_comes_from(h):
    pid = "rv-unsaid"
    open_platform(h, pid)
    tok = session(h, pid, "unsaid@example.com")
    for method, path, body in [
            ("POST", "/p/%s/auth/sign-out" % pid, None),
            ("POST", "/p/%s/auth/password" % pid,
             {"current": PASSWORD, "new": "another long passphrase"}),
            ("POST", "/api/v1/platforms/%s/keys" % pid,
             {"name": "x", "scopes": ["features:*"]})]:
        problem(call(h, method, path, cookie=tok, body=body), 403, UNSAID)
    # nothing changed: the session lives, the password is the same
    assert hello(h, pid, cookie=tok) == 200
    assert sign_in(h, pid, "unsaid@example.com")
    st, _, lst = op(h, "GET", "/platforms/%s/keys" % pid)
    assert lst["items"] == [], lst
    # a public route ignores such a cookie rather than refusing
    st, _, _ = call(h, "POST", "/p/%s/auth/sign-in" % pid, cookie=tok,
                    body={"email": "unsaid@example.com",
                          "password": PASSWORD})
    assert st == 200
    # the same change with the token as a bearer is made
    st, _, _ = call(h, "POST", "/p/%s/auth/sign-out" % pid, key=tok)
    assert st == 204 and hello(h, pid, key=tok) == 401


# -- failed credentials are rate limited ---------------------------------------

def pipelined(h, path, tokens, host="127.0.0.1"):
    req = b"".join(
        ("GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n"
         % (path, host, t)).encode() for t in tokens)
    return parse_responses(h.raw(req, timeout=5.0, shutdown=True))


def test_a_flood_of_bad_tokens_is_rate_limited(h):
    pid = "rv-flood"
    platform(h, pid, plan=None)  # free: anonymous 60, 20 a second
    bad = ["nnos_%016x_%s" % (i, "B" * 43) for i in range(150)]
    got = pipelined(h, "/p/%s/hello" % pid, bad)
    assert len(got) == 150, len(got)
    codes = [st for st, _, _ in got]
    assert 60 <= codes.count(401) <= 75, codes
    assert codes.count(429) >= 75, codes
    first = codes.index(429)
    assert set(codes[first:]) <= {401, 429}, codes
    for st, hd, body in got:
        if st == 429:
            assert b"the anonymous client rate limit is reached" in body
            assert hd["retry-after"] == "1" and hd["ratelimit-limit"] == "60"
    # keys and strangers alike, on the core API too (the platform's bucket)
    bad = (["nnok_%016x_%s" % (i, "C" * 43) for i in range(30)] +
           ["not-a-key-%d" % i for i in range(10)])
    got = pipelined(h, "/api/v1/platforms/%s/keys" % pid, bad)
    codes = [st for st, _, _ in got]
    assert len(codes) == 40 and set(codes) <= {401, 429}, codes
    assert codes.count(429) >= 35, codes  # a token back every 0.1 s
    # an operator route names no platform: a host-wide bucket per address,
    # the default plan's platform size (free: 400, 200 a second)
    bad = ["nnos_%016x_%s" % (i, "D" * 43) for i in range(480)]
    got = pipelined(h, "/api/v1/platforms", bad)
    codes = [st for st, _, _ in got]
    assert len(codes) == 480 and set(codes) <= {401, 429}, codes
    assert 400 <= codes.count(401) < 470 and codes[-1] == 429, \
        codes.count(401)
    # another address is not affected
    st, _, _ = call(h, "GET", "/p/%s/hello" % pid, key=bad[0],
                    source="127.0.5.1")
    assert st == 401


# -- a full rate-limit table ---------------------------------------------------------

def test_a_full_rate_limit_table_answers_503(tmp_path):
    plugins = tiny_plugins(tmp_path, plans={"tiny": {
        "platform": [0.001, 100000], "key": [0.001, 5], "user": [0.001, 5],
        "anonymous": [0.001, 5]}})
    host = started(Host(tmp_path, workers=1, core=True,
                        config={"plugin_dir": plugins,
                                "limits": {"rate_buckets": 64}}))
    try:
        pid = "rv-full"
        platform(host, pid, plan="tiny")
        path = "/p/%s/auth/sign-in" % pid
        body = {"email": "x@example.com"}  # 422 after the limits
        early = "127.0.6.1"  # holds its bucket before the table fills
        assert call(host, "POST", path, body=body, source=early)[0] == 422
        # every new address leaves a busy bucket (a token of 5, back in
        # 1000 s): soon no slot is free or full
        answers = []
        for i in range(1, 250):
            src = "127.0.7.%d" % i
            answers.append(call(host, "POST", path, body=body, source=src))
            if i > 64 and [a[0] for a in answers[-20:]] == [503] * 20:
                break
        codes = {a[0] for a in answers}
        assert codes == {422, 503}, codes  # never a 429 for a new address
        for st, hd, b in answers:
            if st == 503:
                assert hd["content-type"] == "application/problem+json"
                assert b["status"] == 503 and b["detail"] == TABLE_FULL, b
                assert b["request_id"] == hd["x-request-id"]
                assert int(hd["retry-after"]) >= 1
                assert "ratelimit-limit" not in hd, hd
        # an address with a bucket passes IAM; the sign-in limits of auth
        # have no room for the account's and address's buckets: 503 too
        assert metrics(host)["buckets_used"] == 64
        got = []
        for i in range(4):
            st, hd, b = call(host, "POST", path, source=early,
                             body={"email": "new%d@example.com" % i,
                                   "password": "a wrong password"})
            got.append((st, b["detail"]))
            if st == 503:
                assert b["detail"] == TABLE_FULL, b
                assert int(hd["retry-after"]) >= 1
        # never claimed a lock-out: the failures were not counted at all
        assert (503, TABLE_FULL) in got and all(
            st in (401, 503) for st, _ in got), got
    finally:
        stopped(host)
