"""The auth package, black box over HTTP: sign-up, sign-in, sessions used on
other routes of the platform, sign-out, password change, failed sign-in
limits, and argon2id kept off the event loop (packages/auth/README.md)."""
import json
import os
import re
import shutil
import sqlite3
import stat
import threading
import time

import pytest

from conftest import BUILD, Host

TOKEN_RE = re.compile(r"nnos_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
ID_RE = re.compile(r"[0-9a-f]{16}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
          404: "Not Found", 409: "Conflict", 413: "Content Too Large",
          415: "Unsupported Media Type", 422: "Unprocessable Content",
          429: "Too Many Requests", 503: "Service Unavailable"}
WRONG = "email or password is wrong"
LOCKED = "too many failed sign-ins; try again later"
PASSWORD = "correct horse battery"
STACK_SRC = os.path.join(BUILD, "share", "nno", "stacks", "default", "1.0.0")

# The auth package reaches IAM through the nno.iam service (a table of
# pointers into the worker): a copy of the default stack installed beside
# it runs in-process, as the builtin one does.
AUTH_INPROCESS = {"sandbox": {"inprocess": "default"}}


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    """One host with the core plugins and 2 workers: sessions and limits
    must hold across workers. Tests pick their own platform ids."""
    host = Host(tmp_path_factory.mktemp("auth"), workers=2, core=True)
    host.start()
    yield host
    host.stop()


# -- helpers -------------------------------------------------------------------

def problem(resp, status, detail=None):
    """Assert `resp` (status, headers, body) is an RFC 9457 problem."""
    st, hd, body = resp
    assert st == status, resp
    assert hd["content-type"] == "application/problem+json", resp
    assert body["status"] == status and body["title"] == TITLES[status], resp
    assert body["request_id"] == hd["x-request-id"], resp
    if detail is not None:
        assert body["detail"] == detail, resp
    return body


def platform(host, pid, signup=True):
    # A plan without tight request limits: these tests count the auth
    # package's own failed-sign-in limits, not the gateway's.
    # The default stack is activated at creation: its auth database is
    # provisioned before the first sign-up.
    host.platform(pid, plan="unmetered")
    set_signup(host, pid, signup)


def set_signup(host, pid, allowed):
    st, _, body = host.api("PUT", "/platforms/%s/access" % pid,
                           {"signup": allowed, "cors_origins": []})
    assert st in (200, 201, 204), (st, body)


def call(host, pid, method, what, body=None, token=None, cookie=None,
         via_host=False, headers=None, raw=None):
    """One request to the auth routes of `pid`: by path (/p/{pid}/auth/...)
    or, with via_host, on auth.svc.default.{pid}.nno.localhost. `body` is
    sent as JSON; `raw` as it is. Returns (status, headers, JSON or None)."""
    hd = {}
    if body is not None or raw is not None:
        hd["Content-Type"] = "application/json"
    if token:
        hd["Authorization"] = "Bearer " + token
    if cookie:
        # the cookie the auth package sets there: host-only on the
        # platform's hosts, by path otherwise
        hd["Cookie"] = ("__Host-nno_session=" if via_host
                        else "nno_session=") + cookie
    hd.update(headers or {})
    data = raw if raw is not None else (
        json.dumps(body).encode() if body is not None else None)
    if via_host:
        path, vhost = "/auth/" + what, "auth.svc.default.%s.nno.localhost" % pid
    else:
        path, vhost = "/p/%s/auth/%s" % (pid, what), None
    st, rh, out = host.request(method, path, headers=hd, body=data,
                               host=vhost)
    return st, rh, (json.loads(out) if out else None)


def sign_up(host, pid, email, password=PASSWORD, **kw):
    return call(host, pid, "POST", "sign-up",
                {"email": email, "password": password}, **kw)


def sign_in(host, pid, email, password=PASSWORD, **kw):
    return call(host, pid, "POST", "sign-in",
                {"email": email, "password": password}, **kw)


def signed_up(host, pid, email, password=PASSWORD):
    st, hd, body = sign_up(host, pid, email, password)
    assert st == 201, (st, body)
    return body


def hello(host, pid, token=None, cookie=None):
    hd = {}
    if token:
        hd["Authorization"] = "Bearer " + token
    if cookie:
        hd["Cookie"] = "nno_session=" + cookie
    st, _, body = host.request("GET", "/p/%s/hello" % pid, headers=hd)
    return st


def assert_session_body(body, email, name=None):
    assert set(body) == {"user", "session", "token"}, body
    assert set(body["user"]) == {"id", "email", "name"}, body
    assert ID_RE.fullmatch(body["user"]["id"]), body
    assert body["user"]["email"] == email and body["user"]["name"] == name
    assert set(body["session"]) == {"id", "expires", "idle_expires"}, body
    assert ID_RE.fullmatch(body["session"]["id"]), body
    assert TIME_RE.fullmatch(body["session"]["expires"]), body
    assert TIME_RE.fullmatch(body["session"]["idle_expires"]), body
    assert body["session"]["idle_expires"] <= body["session"]["expires"]
    assert TOKEN_RE.fullmatch(body["token"]), body
    assert body["token"][5:21] == body["session"]["id"]


def epoch(iso):
    return time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def check_cookie(headers, body, path="/"):
    """The Set-Cookie of a sign-in, attribute by attribute and in order:
    host-only (no Domain) either way, "__Host-nno_session" on the
    platform's hosts (Path=/), "nno_session" by path."""
    name = "__Host-nno_session" if path == "/" else "nno_session"
    m = re.fullmatch(r"([\w-]+)=(\S+); Path=(\S+); Max-Age=(\d+); "
                     r"HttpOnly; Secure; SameSite=Lax",
                     headers["set-cookie"])
    assert m, headers["set-cookie"]
    assert m.group(1) == name, headers["set-cookie"]
    assert m.group(2) == body["token"]
    assert m.group(3) == path, headers["set-cookie"]
    left = epoch(body["session"]["expires"]) - time.time()
    assert abs(int(m.group(4)) - left) <= 5, (m.group(4), left)
    assert headers["cache-control"] == "no-store"


# -- without IAM ---------------------------------------------------------------

def test_routes_answer_503_without_the_identity_service(make_host):
    # No core plugins: stacks are served at the root, and nno.iam is absent.
    host = make_host(workers=1).start()
    for method, what in [("POST", "sign-up"), ("POST", "sign-in"),
                         ("POST", "sign-out"), ("GET", "session"),
                         ("POST", "password")]:
        st, hd, body = host.request(method, "/auth/" + what, body=b"{}",
                                    headers={"Content-Type": "application/json"})
        problem((st, hd, json.loads(body)), 503, "identity service unavailable")
    st, _, _ = host.request("GET", "/hello")
    assert st == 200  # the rest of the stack serves on


def test_without_storage_the_routes_answer_503(make_host, tmp_path):
    # IAM and the registry, no provisioning plugin: no platform has
    # resources, and auth says so rather than making a database itself.
    plugins = tmp_path / "plugins"
    for name in ("iam", "registry"):
        shutil.copytree(os.path.join(BUILD, "lib", "nno", "plugins", name),
                        str(plugins / name))
    host = make_host(workers=1, core=True,
                     config={"plugin_dir": str(plugins),
                             "core_plugins": ["iam", "registry"]}).start()
    pid = "auth-nostore"
    platform(host, pid)
    problem(sign_up(host, pid, "x@example.com"), 503,
            "the auth database: this host has no storage provider")
    problem(sign_in(host, pid, "x@example.com"), 503)
    assert not os.path.exists(os.path.join(host.data, "platforms", pid))


# -- sign-up -------------------------------------------------------------------

def test_sign_up_only_where_the_platform_allows_it(h):
    platform(h, "auth-closed", signup=False)
    problem(sign_up(h, "auth-closed", "ada@example.com"), 403,
            "this platform does not allow signing up")
    set_signup(h, "auth-closed", True)
    st, hd, body = sign_up(h, "auth-closed", "ada@example.com")
    assert st == 201, body
    assert_session_body(body, "ada@example.com")
    set_signup(h, "auth-closed", False)
    problem(sign_up(h, "auth-closed", "bob@example.com"), 403)
    # existing users still sign in
    assert sign_in(h, "auth-closed", "ada@example.com")[0] == 200


def test_sign_up_sign_in_and_the_cookie(h):
    pid = "auth-basic"
    platform(h, pid)
    st, hd, up = call(h, pid, "POST", "sign-up",
                      {"email": "Grace@Example.com", "password": PASSWORD,
                       "name": "Grace Hopper"}, via_host=True)
    assert st == 201, up
    assert_session_body(up, "Grace@Example.com", "Grace Hopper")
    check_cookie(hd, up)

    # the same address in another case is the same user: 409
    problem(sign_up(h, pid, "grace@example.COM", "another password"), 409,
            "a user with this email already exists")

    # sign-in on the platform's host: a host-only cookie for that name
    st, hd, a = sign_in(h, pid, "grace@example.com", via_host=True)
    assert st == 200, a
    assert_session_body(a, "Grace@Example.com", "Grace Hopper")
    assert a["user"]["id"] == up["user"]["id"]
    assert a["session"]["id"] != up["session"]["id"]
    check_cookie(hd, a)

    # by path on 127.0.0.1: a host-only cookie for the platform's paths
    st, hd, b = sign_in(h, pid, "GRACE@example.com")
    assert st == 200, b
    check_cookie(hd, b, path="/p/" + pid)
    assert len({up["token"], a["token"], b["token"]}) == 3


def test_a_session_opens_the_platform(h):
    pid = "auth-use"
    platform(h, pid)
    up = signed_up(h, pid, "lin@example.com")
    tok = up["token"]
    assert hello(h, pid) == 401
    # both credentials, on both workers
    for _ in range(4):
        assert hello(h, pid, token=tok) == 200
        assert hello(h, pid, cookie=tok) == 200
    st, hd, body = h.json("GET", "/hello",
                          headers={"Cookie": "__Host-nno_session=" + tok},
                          host="app.%s.nno.localhost" % pid)
    assert (st, body) == (200, {"message": "hello, world"})
    # on the platform's hosts the plain name is not read (no other host
    # can set a __Host- cookie; any sibling can set nno_session)
    st, hd, body = h.json("GET", "/hello", headers={"Cookie": "nno_session=" + tok},
                          host="app.%s.nno.localhost" % pid)
    assert st == 401, body

    st, hd, me = call(h, pid, "GET", "session", token=tok)
    assert st == 200, me
    assert set(me) == {"user", "platform", "tenant", "scopes", "session"}
    assert me["user"] == up["user"]
    assert me["platform"] == pid and me["tenant"] is None
    assert "features:*" in me["scopes"]
    assert me["session"] == {"id": up["session"]["id"]}
    st, _, me2 = call(h, pid, "GET", "session", cookie=tok, via_host=True)
    assert st == 200 and me2 == me

    # without a session, or with a made-up one
    problem(call(h, pid, "GET", "session"), 401)
    forged = tok[:22] + ("A" if tok[22] != "A" else "B") + tok[23:]
    problem(call(h, pid, "GET", "session", token=forged), 401)
    assert hello(h, pid, token=forged) == 401


def test_sign_out_ends_the_session_everywhere(h):
    pid = "auth-out"
    platform(h, pid)
    up = signed_up(h, pid, "out@example.com")
    other = sign_in(h, pid, "out@example.com")[2]["token"]
    tok = up["token"]
    assert hello(h, pid, token=tok) == 200

    st, hd, body = call(h, pid, "POST", "sign-out", token=tok, via_host=True)
    assert st == 204 and body is None
    assert hd["set-cookie"] == ("__Host-nno_session=; Path=/; Max-Age=0; "
                                "HttpOnly; Secure; SameSite=Lax")
    for _ in range(4):  # both workers
        assert hello(h, pid, token=tok) == 401
        assert hello(h, pid, cookie=tok) == 401
        problem(call(h, pid, "GET", "session", token=tok), 401)
    problem(call(h, pid, "POST", "sign-out", token=tok), 401)
    # by path: the clearing cookie is the path form's, the platform's path
    st, hd, _ = call(h, pid, "POST", "sign-out", cookie=other,
                     headers={"Sec-Fetch-Site": "same-origin"})
    assert st == 204
    assert hd["set-cookie"] == ("nno_session=; Path=/p/%s; Max-Age=0; "
                                "HttpOnly; Secure; SameSite=Lax" % pid)
    assert hello(h, pid, token=other) == 401
    # a public route ignores the dead cookie: signing in again works
    st, _, again = sign_in(h, pid, "out@example.com", cookie=tok)
    assert st == 200 and hello(h, pid, token=again["token"]) == 200


def test_password_change_ends_the_other_sessions(h):
    pid = "auth-pw"
    platform(h, pid)
    a = signed_up(h, pid, "pw@example.com")["token"]
    b = sign_in(h, pid, "pw@example.com")[2]["token"]
    new = "a much longer new passphrase"

    problem(call(h, pid, "POST", "password",
                 {"current": "not it at all", "new": new}, token=a), 401,
            "the current password is wrong")
    st, _, body = call(h, pid, "POST", "password",
                       {"current": PASSWORD, "new": "short"}, token=a)
    problem((st, _, body), 422)
    assert '"new"' in body["detail"]
    problem(call(h, pid, "POST", "password", {"current": PASSWORD},
                 token=a), 422)
    problem(call(h, pid, "POST", "password",
                 {"current": PASSWORD, "new": new}), 401)
    assert hello(h, pid, token=b) == 200  # nothing changed so far

    st, _, body = call(h, pid, "POST", "password",
                       {"current": PASSWORD, "new": new}, token=a)
    assert st == 204 and body is None
    for _ in range(4):
        assert hello(h, pid, token=a) == 200
        assert hello(h, pid, token=b) == 401
    problem(sign_in(h, pid, "pw@example.com"), 401, WRONG)
    st, _, c = sign_in(h, pid, "pw@example.com", new)
    assert st == 200 and hello(h, pid, token=c["token"]) == 200


def test_wrong_password_and_unknown_email_look_the_same(h):
    pid = "auth-wrong"
    platform(h, pid)
    signed_up(h, pid, "known@example.com")
    wrong = problem(sign_in(h, pid, "known@example.com", "wrong password"),
                    401, WRONG)
    unknown = problem(sign_in(h, pid, "nobody@example.com"), 401, WRONG)
    assert set(wrong) == set(unknown)
    st, hd, _ = sign_in(h, pid, "nobody@example.com")
    assert "set-cookie" not in hd
    # an unknown email costs an argon2id verification too
    t0 = time.monotonic()
    sign_in(h, pid, "nobody2@example.com")
    t_unknown = time.monotonic() - t0
    t0 = time.monotonic()
    sign_in(h, pid, "known@example.com", "wrong again")
    t_known = time.monotonic() - t0
    assert t_unknown > t_known / 4, (t_unknown, t_known)


def test_failed_sign_ins_lock_the_account(h):
    pid = "auth-lock"
    platform(h, pid)
    signed_up(h, pid, "target@example.com")
    signed_up(h, pid, "bystander@example.com")
    for i in range(5):
        problem(sign_in(h, pid, "Target@example.com", "guess %d" % i), 401,
                WRONG)
    for pw in ["guess 5", PASSWORD]:
        st, hd, body = sign_in(h, pid, "target@example.com", pw)
        problem((st, hd, body), 429, LOCKED)
        # 5 per 15 minutes: the next failure is back in 180 s
        assert 1 <= int(hd["retry-after"]) <= 180, hd
        assert "set-cookie" not in hd
    # other accounts from the same address still sign in (5 of 20 used)
    assert sign_in(h, pid, "bystander@example.com")[0] == 200
    # the same email on another platform is another account
    platform(h, "auth-lock2")
    signed_up(h, "auth-lock2", "target@example.com")
    assert sign_in(h, "auth-lock2", "target@example.com")[0] == 200


def test_a_burst_of_guesses_is_limited_too(h):
    # Guesses sent at once wait for a hashing slot together; each is
    # checked against the limits again when its turn comes, so at most the
    # burst plus what runs at once (2 per worker, 2 workers) is tried.
    pid = "auth-burst"
    platform(h, pid)
    signed_up(h, pid, "burst@example.com")
    results = []
    lock = threading.Lock()

    def guess(i):
        resp = sign_in(h, pid, "burst@example.com", "guess number %d" % i)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r[0] for r in results]
    assert set(statuses) <= {401, 429}, statuses
    assert 5 <= statuses.count(401) <= 5 + 4, statuses
    for r in results:
        problem(r, r[0], WRONG if r[0] == 401 else LOCKED)
    problem(sign_in(h, pid, "burst@example.com"), 429, LOCKED)


def test_failed_sign_ins_lock_the_address(h):
    pid = "auth-addr"
    platform(h, pid)
    signed_up(h, pid, "victim@example.com")
    for i in range(20):  # 20 accounts tried once each, below their limit
        st, hd, body = sign_in(h, pid, "u%d@example.com" % i, "nope nope")
        problem((st, hd, body), 401, WRONG)
    st, hd, body = sign_in(h, pid, "victim@example.com")
    problem((st, hd, body), 429, LOCKED)
    assert 1 <= int(hd["retry-after"]) <= 45, hd


def test_a_session_belongs_to_its_platform(h):
    platform(h, "auth-pa")
    platform(h, "auth-pb")
    tok = signed_up(h, "auth-pa", "ana@example.com")["token"]
    signed_up(h, "auth-pb", "ana@example.com")  # same email, other user
    assert hello(h, "auth-pa", token=tok) == 200
    assert hello(h, "auth-pb", token=tok) == 401
    assert hello(h, "auth-pb", cookie=tok) == 401
    problem(call(h, "auth-pb", "GET", "session", token=tok), 401)
    problem(call(h, "auth-pb", "POST", "sign-out", token=tok), 401)
    problem(call(h, "auth-pb", "GET", "session", cookie=tok, via_host=True),
            401)
    assert hello(h, "auth-pa", token=tok) == 200  # untouched


def test_validation(h):
    pid = "auth-valid"
    platform(h, pid)
    for email in ["no-at-sign.example.com", "two@@example.com", "a@b@c",
                  "@example.com", "ada@", "ada lovelace@example.com",
                  "tab\t@example.com", "a@", "x" * 250 + "@e.co", 42, None]:
        st, hd, body = sign_up(h, pid, email)
        problem((st, hd, body), 422)
        assert '"email"' in body["detail"], (email, body)
    for pw in ["", "1234567", "x" * 257, 12345678, None]:
        st, hd, body = sign_up(h, pid, "v@example.com", pw)
        problem((st, hd, body), 422)
        assert '"password"' in body["detail"], (pw, body)
    # 8 bytes and 256 bytes are fine; no composition rules
    assert sign_up(h, pid, "v8@example.com", "aaaaaaaa")[0] == 201
    assert sign_up(h, pid, "v256@example.com", "é" * 128)[0] == 201
    problem(call(h, pid, "POST", "sign-up",
                 {"email": "n@example.com", "password": PASSWORD, "name": 7}),
            422)
    problem(call(h, pid, "POST", "sign-up",
                 {"email": "n@example.com", "password": PASSWORD,
                  "role": "admin"}), 422, 'field "role": unknown field')
    problem(call(h, pid, "POST", "sign-in", {"email": "v8@example.com"}), 422,
            'field "password": is required')
    problem(call(h, pid, "POST", "sign-in", raw=b'{"email": '), 400)
    problem(call(h, pid, "POST", "sign-in", raw=b'["v8@example.com"]'), 422)
    problem(call(h, pid, "POST", "sign-in",
                 raw=b'{"email":"a@b.c","email":"d@e.f","password":"x"}'), 400)
    problem(call(h, pid, "POST", "sign-in",
                 raw=json.dumps({"email": "v8@example.com",
                                 "password": "x" * 5000}).encode()), 413)
    # only JSON bodies: a cross-site form cannot post one
    problem(call(h, pid, "POST", "sign-in",
                 raw=b'{"email":"v8@example.com","password":"aaaaaaaa"}',
                 headers={"Content-Type": "text/plain"}), 415)
    st, _, ok = call(h, pid, "POST", "sign-in",
                     raw=b'{"email":"v8@example.com","password":"aaaaaaaa"}',
                     headers={"Content-Type": "application/json; charset=utf-8"})
    assert st == 200, ok
    # a route answers its declared methods only
    st, _, _ = call(h, pid, "GET", "sign-in")
    assert st in (404, 405)


def test_database_layout_and_no_secret_in_logs(h):
    pid = "auth-db"
    platform(h, pid)
    up = signed_up(h, pid, "Db@Example.com")
    sign_in(h, pid, "db@example.com", "a wrong password")
    # the sql resource "auth" of the default stack, provisioned with the
    # platform, its schema the package's migrations
    folder = os.path.join(h.data, "platforms", pid, "sql")
    path = os.path.join(folder, "%s-default-auth.db" % pid)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT max(version) FROM _nno_migrations"
                          " WHERE package = 'auth'").fetchone()[0] == 1
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'users'"
                         ).fetchone()[0]
        assert "STRICT" in sql and "COLLATE NOCASE" in sql
        rows = db.execute("SELECT id, email, name, password_hash, created_at,"
                          " updated_at FROM users").fetchall()
    finally:
        db.close()
    assert len(rows) == 1
    uid, email, name, pwh, created, updated = rows[0]
    assert (uid, email, name) == (up["user"]["id"], "Db@Example.com", None)
    assert pwh.startswith("$argon2id$v=19$m=65536,t=2,p=1$"), pwh
    assert TIME_RE.fullmatch(created) and TIME_RE.fullmatch(updated)
    with open(path, "rb") as f:
        assert PASSWORD.encode() not in f.read()
    log = h.log_text()
    for secret in [PASSWORD, "a wrong password", up["token"],
                   up["token"][22:], pwh]:
        assert secret not in log


def test_hashing_does_not_stall_the_loop(make_host):
    host = make_host(workers=1, core=True).start()
    pid = "auth-loop"
    platform(host, pid)
    signed_up(host, pid, "loop@example.com")
    done, results = [], []
    lock = threading.Lock()

    def one():
        st = sign_in(host, pid, "loop@example.com")[0]
        with lock:
            results.append(st)
            done.append(time.monotonic())

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.05)  # let them reach the worker
    t0 = time.monotonic()
    st, _, _ = host.request("GET", "/healthz", timeout=5)
    t1 = time.monotonic()
    for t in threads:
        t.join()
    assert st == 200
    assert results == [200] * 8, results
    # answered while sign-ins were still hashing, and promptly
    assert t1 < max(done), (t1, done)
    assert t1 - t0 < 1.0, t1 - t0


# -- configuration -----------------------------------------------------------

def stack_with_auth_config(tmp_path, version, **config):
    """A copy of the built default stack as `version`, with auth's config
    overridden."""
    dst = tmp_path / "stacks" / "default" / version
    shutil.copytree(STACK_SRC, str(dst))
    with open(str(dst / "stack.json")) as f:
        manifest = json.load(f)
    manifest["version"] = version
    with open(str(dst / "stack.json"), "w") as f:
        json.dump(manifest, f)
    pj = dst / "packages" / "auth" / "package.json"
    with open(str(pj)) as f:
        pkg = json.load(f)
    pkg["config"].update(config)
    with open(str(pj), "w") as f:
        json.dump(pkg, f)
    return str(tmp_path / "stacks")


def test_full_hashing_queue_answers_503(make_host, tmp_path):
    stacks = stack_with_auth_config(tmp_path, "1.0.1", pwhash_concurrency=1,
                                    pwhash_queue=1, pwhash_ops=6)
    host = make_host(workers=1, core=True, stacks=[stacks],
                     config=AUTH_INPROCESS).start()
    pid = "auth-queue"
    platform(host, pid)
    signed_up(host, pid, "q@example.com")
    results = []
    lock = threading.Lock()

    def one():
        resp = sign_in(host, pid, "q@example.com")
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    assert statuses.count(200) >= 2, statuses  # one running, one waiting
    busy = [r for r in results if r[0] == 503]
    assert busy, statuses
    for r in busy:
        problem(r, 503, "too many sign-ins in progress")
        assert r[1]["retry-after"] == "1"
    # and it serves again once they are done
    assert sign_in(host, pid, "q@example.com")[0] == 200


def test_lock_out_ends_after_retry_after(make_host, tmp_path):
    stacks = stack_with_auth_config(tmp_path, "1.0.1",
                                    signin_account_burst=2,
                                    signin_account_window_s=2)
    host = make_host(workers=2, core=True, stacks=[stacks],
                     config=AUTH_INPROCESS).start()
    pid = "auth-refill"
    platform(host, pid)
    signed_up(host, pid, "r@example.com")
    for _ in range(2):
        problem(sign_in(host, pid, "r@example.com", "bad bad bad"), 401)
    st, hd, body = sign_in(host, pid, "r@example.com")
    problem((st, hd, body), 429, LOCKED)
    assert hd["retry-after"] == "1"
    time.sleep(1.2)
    assert sign_in(host, pid, "r@example.com")[0] == 200


def test_bad_configuration_refuses_the_stack(make_host, tmp_path):
    stacks = stack_with_auth_config(tmp_path, "1.0.1", pwhash_ops=0)
    host = make_host(workers=1, stacks=[stacks],
                     config=AUTH_INPROCESS).start()
    e = host.wait_log(lambda e: e.get("msg") == "stack refused")
    assert e["name"] == "default@1.0.1"
    assert 'config field "pwhash_ops": expected an integer from 1 to 16' \
        in e["error"], e


def test_a_hash_of_other_parameters_is_replaced_at_sign_in(make_host,
                                                           tmp_path):
    # Signed up under 1.0.0 (2 passes), signed in under 1.0.1 (3 passes):
    # the sign-in stores a fresh hash in the same database, compare-and-set.
    stacks = stack_with_auth_config(tmp_path, "1.0.1", pwhash_ops=3)
    host = make_host(workers=1, core=True, stacks=[stacks],
                     config=AUTH_INPROCESS).start()
    pid = "auth-rehash"
    host.platform(pid, stacks=["default@1.0.0"], plan="unmetered")
    set_signup(host, pid, True)
    signed_up(host, pid, "re@example.com")
    path = os.path.join(host.data, "platforms", pid, "sql",
                        "%s-default-auth.db" % pid)

    def stored():
        db = sqlite3.connect(path)
        try:
            return db.execute("SELECT password_hash FROM users").fetchone()[0]
        finally:
            db.close()

    assert ",t=2," in stored()
    st, _, a = host.api("POST", "/platforms/%s/stacks" % pid,
                        {"stack": "default", "version": "1.0.1"})
    assert st == 200 and a["version"] == "1.0.1", a
    problem(sign_in(host, pid, "re@example.com", "not the password"), 401)
    assert ",t=2," in stored()  # a failed sign-in changes nothing
    assert sign_in(host, pid, "re@example.com")[0] == 200
    assert ",t=3," in stored()
    assert sign_in(host, pid, "re@example.com")[0] == 200


def test_concurrent_sign_ups_of_one_email_make_one_user(h):
    # Each reads the email free, hashes, then inserts: the UNIQUE column
    # lets one insert through and answers the others 409, on both workers.
    pid = "auth-race"
    platform(h, pid)
    results = []
    lock = threading.Lock()

    def one(i):
        resp = sign_up(h, pid, "Race@Example.com" if i % 2 else
                       "race@example.com")
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == [201] + [409] * 5, results
    for r in results:
        if r[0] == 409:
            problem(r, 409, "a user with this email already exists")
    assert sign_in(h, pid, "RACE@example.com")[0] == 200
