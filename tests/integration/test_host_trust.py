"""What the host trusts, black box: which host names belong to a platform
(and so what its session cookie and its origins cover), the origin parser
behind CORS and the cookie check, sign-up answers counted like failed
sign-ins, and the files and folders the host refuses to use or load."""
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import BUILD, NNO, Host
from test_iam import call, op, problem

HELLO = {"message": "hello, world"}
PASSWORD = "correct horse battery"
BASE = "nno.localhost"
@pytest.fixture(scope="module")
def h(tmp_path_factory):
    """One host with the core plugins and 2 workers."""
    host = Host(tmp_path_factory.mktemp("trust"), workers=2, core=True)
    host.start()
    yield host
    host.stop()


# -- helpers -------------------------------------------------------------------

def platform(h, pid, signup=True, origins=()):
    st, _, p = op(h, "POST", "/platforms",
                  {"id": pid, "name": "Platform " + pid, "plan": "unmetered"})
    assert st == 201, p
    st, _, a = op(h, "POST", "/platforms/%s/stacks" % pid,
                  {"stack": "default"})
    assert st == 201, a
    st, _, a = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"signup": signup, "cors_origins": list(origins)})
    assert st == 200, a
    return h.platform_key(pid, ["features:*"])["key"]


def sign_up(h, pid, email, host=None):
    """Sign up on `host` (path /auth/sign-up) or by path on 127.0.0.1."""
    path = "/auth/sign-up" if host else "/p/%s/auth/sign-up" % pid
    return call(h, "POST", path, host=host,
                body={"email": email, "password": PASSWORD})


def domain_match(host, domain):
    """RFC 6265 5.1.3: would a browser send a cookie of `domain` to
    `host`?"""
    return host == domain or host.endswith("." + domain)


# -- host names ----------------------------------------------------------------

def test_the_bare_platform_host_is_the_platforms(h):
    ka, kb = platform(h, "ht-a"), platform(h, "ht-b")
    bare = "ht-a." + BASE
    # the bare host serves its platform's feature routes ...
    st, _, body = call(h, "GET", "/hello", key=ka, host=bare)
    assert (st, body) == (200, HELLO)
    st, _, body = call(h, "GET", "/hello", key=ka, host=bare + ":%d" % h.port)
    assert (st, body) == (200, HELLO)
    # ... and neither the core API nor another platform's path form
    problem(op(h, "GET", "/platforms", host=bare), 404)
    problem(op(h, "GET", "/platforms/ht-b", host=bare), 404)
    problem(call(h, "GET", "/p/ht-b/hello", key=kb, host=bare), 404)
    problem(call(h, "GET", "/p/ht-a/hello", key=ka, host=bare), 404)
    # the core names keep the core API and the path form
    for core in [BASE, "api." + BASE, "127.0.0.1"]:
        st, _, p = op(h, "GET", "/platforms/ht-b", host=core)
        assert st == 200 and p["id"] == "ht-b", core
        st, _, body = call(h, "GET", "/p/ht-b/hello", key=kb, host=core)
        assert (st, body) == (200, HELLO), core
    # "api" names the core API's host: it is no platform's id
    body = problem(op(h, "POST", "/platforms", {"id": "api", "name": "API"}),
                   422)
    assert body["field"] == "id" and "reserved" in body["detail"], body
    # a name with an empty label names no host: refused as it is read
    problem(call(h, "GET", "/hello", key=ka, host="x.." + BASE), 400)
    problem(op(h, "GET", "/platforms", host="." + BASE), 400)


def test_no_host_under_the_cookie_domain_serves_anything_else(h):
    ka, kb = platform(h, "hc-a"), platform(h, "hc-b")
    st, hd, up = sign_up(h, "hc-a", "ada@example.com", host="hc-a." + BASE)
    assert st == 201, up
    # host-only: no other name ever gets it from a browser
    assert hd["set-cookie"].startswith("__Host-nno_session="), hd
    assert "Domain=" not in hd["set-cookie"], hd
    domain = "hc-a." + BASE
    tok = up["token"]
    b_tok = sign_up(h, "hc-b", "bob@example.com")[2]["token"]
    # Every kind of name of the platform (where a cookie of its own, sent
    # by a client, is honoured) ...
    hosts = [domain, "app." + domain, "console." + domain,
             "auth.svc.default." + domain, "a.b.c." + domain]
    for name in hosts:
        assert domain_match(name, domain)
        # ... is the platform's: the cookie opens its routes there,
        st, _, body = call(h, "GET", "/hello", cookie=tok, host=name)
        assert (st, body) == (200, HELLO), name
        st, _, me = call(h, "GET", "/auth/session", cookie=tok, host=name)
        assert st == 200 and me["platform"] == "hc-a", (name, me)
        # and nothing else is served there: not the core API, not another
        # platform's packages by path
        problem(op(h, "GET", "/platforms", host=name), 404)
        problem(call(h, "GET", "/api/v1/platforms/hc-a", cookie=tok,
                     host=name), 404)
        problem(call(h, "GET", "/p/hc-b/hello", cookie=tok, host=name), 404)
        problem(call(h, "GET", "/p/hc-b/hello", key=kb, host=name), 404)
        problem(call(h, "GET", "/p/hc-b/auth/session", cookie=b_tok,
                     host=name), 404)
    # The names serving the core API and the path form never get it.
    for core in [BASE, "api." + BASE, "hc-b." + BASE, "x.hc-b." + BASE,
                 "xhc-a." + BASE]:
        assert not domain_match(core, domain), core
    st, _, body = call(h, "GET", "/p/hc-b/hello", key=kb, host=BASE)
    assert (st, body) == (200, HELLO)
    assert call(h, "GET", "/hello", key=ka, host="x.hc-a." + BASE)[0] == 200


def path_match(path, cookie_path):
    """RFC 6265 5.1.4: would a browser send a cookie of `cookie_path` with
    a request for `path`?"""
    return path == cookie_path or path.startswith(
        cookie_path if cookie_path.endswith("/") else cookie_path + "/")


def test_a_cookie_set_by_path_stays_on_the_platforms_paths(h):
    platform(h, "hp-a")
    platform(h, "hp-ab")
    for core in [BASE, "api." + BASE, "127.0.0.1"]:
        email = "pat@%s.example" % core.replace(".", "-")
        st, hd, up = call(h, "POST", "/p/hp-a/auth/sign-up", host=core,
                          body={"email": email, "password": PASSWORD})
        assert st == 201, up
        cookie = hd["set-cookie"]
        # host-only (no Domain), and only for this platform's paths
        assert "Domain=" not in cookie, cookie
        m = re.search(r"; Path=([^;]+)", cookie)
        assert m and m.group(1) == "/p/hp-a", cookie
        for path in ["/p/hp-a/hello", "/p/hp-a/auth/session", "/p/hp-a"]:
            assert path_match(path, m.group(1)), path
        for path in ["/p/hp-ab/hello", "/p/hp-b/hello", "/api/v1/platforms",
                     "/", "/p/"]:
            assert not path_match(path, m.group(1)), path
        # it works where it is sent
        st, _, me = call(h, "GET", "/p/hp-a/auth/session", host=core,
                         cookie=up["token"])
        assert st == 200 and me["platform"] == "hp-a", me
        # and a sign-out by path clears that same cookie
        st, hd, _ = call(h, "POST", "/p/hp-a/auth/sign-out", host=core,
                         cookie=up["token"],
                         headers={"Sec-Fetch-Site": "same-origin"})
        assert st == 204
        assert hd["set-cookie"] == ("nno_session=; Path=/p/hp-a; Max-Age=0; "
                                    "HttpOnly; Secure; SameSite=Lax")


# -- origins -------------------------------------------------------------------

def preflight(h, path, origin, host=None):
    return call(h, "OPTIONS", path, host=host,
                headers={"Origin": origin,
                         "Access-Control-Request-Method": "POST"})


def test_origins_are_parsed_strictly(h):
    platform(h, "ho-a", origins=["https://app.example.com",
                                 "http://[::1]:8080"])
    path = "/p/ho-a/hello"
    allowed = ["https://ho-a.nno.localhost", "http://www.ho-a.nno.localhost",
               "https://a.b.ho-a.nno.localhost:8443",
               "https://WWW.HO-A.nno.localhost", "https://app.example.com",
               "http://[::1]:8080"]
    for origin in allowed:
        st, hd, _ = preflight(h, path, origin)
        assert st == 204, origin
        assert hd["access-control-allow-origin"] == origin
    refused = ["http://evil.example#.ho-a.nno.localhost",
               "http://evil.example?.ho-a.nno.localhost",
               "http://evil.example\\.ho-a.nno.localhost",
               "http://evil.example@www.ho-a.nno.localhost",
               "http://evil.example%2f.ho-a.nno.localhost",
               "http://evil example.ho-a.nno.localhost",
               "http://evil_example.ho-a.nno.localhost",
               "http://x..ho-a.nno.localhost", "http://.ho-a.nno.localhost",
               "http://www.ho-a.nno.localhost.",
               "ftp://www.ho-a.nno.localhost", "ws://www.ho-a.nno.localhost",
               "javascript://www.ho-a.nno.localhost",
               "http://www.ho-a.nno.localhost:", "http://www.ho-a.nno.localhost:8a",
               "http://www.ho-a.nno.localhost:123456",
               "http://www.ho-a.nno.localhost:80:80",
               "http://www.ho-a.nno.localhost/"]
    for origin in refused:
        st, hd, body = preflight(h, path, origin)
        assert st == 403, (origin, st, body)
        assert "access-control-allow-origin" not in hd, origin
        # a simple request gets no CORS header either
        st, hd, _ = call(h, "GET", path, headers={"Origin": origin})
        assert "access-control-allow-origin" not in hd, origin


def test_the_cookie_check_uses_the_strict_parser(h):
    platform(h, "hk-a")
    tok = sign_up(h, "hk-a", "kim@example.com")[2]["token"]
    for origin in ["http://evil.example#.hk-a.nno.localhost",
                   "http://evil.example?.hk-a.nno.localhost",
                   "http://evil.example\\.hk-a.nno.localhost"]:
        problem(call(h, "POST", "/p/hk-a/auth/sign-out", cookie=tok,
                     headers={"Origin": origin}), 403,
                "a cookie-authenticated change must come from an origin of "
                "the platform")
    # the session is still there; from the platform's origin it ends
    st, _, me = call(h, "GET", "/p/hk-a/auth/session", cookie=tok)
    assert st == 200, me
    st, _, _ = call(h, "POST", "/p/hk-a/auth/sign-out", cookie=tok,
                    headers={"Origin": "https://hk-a.nno.localhost"})
    assert st == 204


# -- sign-up answers -----------------------------------------------------------

def test_taken_email_answers_count_like_failed_sign_ins(h):
    platform(h, "hs-a")
    platform(h, "hs-b")
    assert sign_up(h, "hs-a", "ada@example.com")[0] == 201
    # The address bucket holds 20 failures (packages/auth/package.json
    # defaults): each 409 takes one, as a wrong password would.
    for i in range(20):
        email = "ADA@example.com" if i % 2 else "ada@EXAMPLE.com"
        problem(sign_up(h, "hs-a", email), 409,
                "a user with this email already exists")
    resp = sign_up(h, "hs-a", "ada@example.com")
    body = problem(resp, 429, "too many failed sign-ins or sign-ups from "
                   "this address; try again later")
    assert int(resp[1]["retry-after"]) >= 1, resp
    # The address learns nothing more, not even with a new email ...
    problem(sign_up(h, "hs-a", "new@example.com"), 429, body["detail"])
    # ... and its sign-ins share the limit.
    st, _, out = call(h, "POST", "/p/hs-a/auth/sign-in",
                      body={"email": "ada@example.com", "password": PASSWORD})
    assert st == 429, out
    # Another platform's limits are its own.
    assert sign_up(h, "hs-b", "ada@example.com")[0] == 201


# -- the auth databases --------------------------------------------------------

def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_auth_database_files_are_the_hosts_alone(h):
    platform(h, "hf-a")
    assert sign_up(h, "hf-a", "fay@example.com")[0] == 201
    # the sql resource "auth", made by provisioning's local driver
    folder = os.path.join(h.data, "platforms", "hf-a", "sql")
    db = os.path.join(folder, "hf-a-default-auth.db")
    assert mode(os.path.join(h.data, "platforms")) == 0o700
    assert mode(os.path.dirname(folder)) == 0o700
    assert mode(folder) == 0o700
    assert mode(db) == 0o600
    for side in ("-wal", "-shm"):
        if os.path.exists(db + side):
            assert mode(db + side) == 0o600, side

    def sign_in():
        return call(h, "POST", "/p/hf-a/auth/sign-in",
                    body={"email": "fay@example.com", "password": PASSWORD})

    def refused():
        # the storage driver refuses the file; the package answers the
        # error and logs the driver's reason
        st, hd, body = sign_in()
        assert st == 500 and body["status"] == 500, (st, body)
        assert hd["content-type"] == "application/problem+json"
        assert "refused" not in body["detail"]  # the reason is logged
        h.wait_log(lambda e: e.get("level") == "error"
                   and "the auth database" in e.get("msg", "")
                   and "refused" in e["msg"])

    assert sign_in()[0] == 200
    # a database file others may write is refused, and nothing opened
    os.chmod(db, 0o666)
    refused()
    os.chmod(db, 0o600)
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(db, 65534, 65534)
        refused()
        os.chown(db, 0, 0)
    assert sign_in()[0] == 200


# -- the loader ------------------------------------------------------------------

PROBE = os.path.join(BUILD, "tests", "stacks", "probe")




def probe_copy(tmp_path):
    """A stacks folder of our own holding the probe stack; returns (the
    folder, the package folder, its object)."""
    root = tmp_path / "stacks"
    shutil.copytree(PROBE, str(root))
    pkg = root / "probe" / "1.0.0" / "packages" / "probe"
    return str(root), str(pkg), str(pkg / "libprobe.so")


def refusal(host):
    """Start `host` and return the error of its "stack refused" line for
    the probe stack, after checking the rest of the host serves."""
    host.start()
    e = host.wait_log(lambda e: e.get("msg") == "stack refused"
                      and e.get("name") == "probe@1.0.0")
    assert host.request("GET", "/hello")[0] == 200
    assert host.request("GET", "/probe/work")[0] == 404
    return e["error"]


def check(root, data):
    """`nno serve --check` over the stacks folder `root`."""
    cfg = os.path.join(data, "check.json")
    with open(cfg, "w") as f:
        json.dump({"stacks_dirs": [root]}, f)
    return subprocess.run([NNO, "serve", "--check", "--config", cfg, "--data",
                           os.path.join(data, "var")],
                          capture_output=True, text=True, timeout=30)


def writable(path, m):
    return ('"%s" is writable by group or others (mode %04o); run chmod '
            'go-w on it' % (os.path.realpath(path), m))


@pytest.mark.parametrize("target,m", [("object", 0o777), ("object", 0o664),
                                      ("package", 0o775), ("version", 0o757),
                                      ("stack.json", 0o666), ("root", 0o777)],
                         ids=lambda v: "%04o" % v if isinstance(v, int) else v)
def test_loader_refuses_what_others_may_write(make_host, tmp_path, target, m):
    root, pkg, so = probe_copy(tmp_path)
    path = {"object": so, "package": pkg,
            "version": os.path.join(root, "probe", "1.0.0"),
            "stack.json": os.path.join(root, "probe", "1.0.0", "stack.json"),
            "root": root}[target]
    os.chmod(path, m)
    want = writable(path, m)
    assert refusal(make_host(workers=1, stacks=[root])) == want
    # the pre-flight check runs the same code and says the same
    r = check(root, str(tmp_path))
    assert r.returncode == 1, r
    assert "error: stack probe@1.0.0: " + want + "\n" in r.stderr, r.stderr
    # and so does check-package, for the package's own files
    if target in ("object", "package"):
        r = subprocess.run([NNO, "check-package", pkg], capture_output=True,
                           text=True, timeout=30)
        assert (r.returncode, r.stderr) == (1, "nno: " + want + "\n")
    # once fixed, it loads
    os.chmod(path, 0o755)
    assert check(root, str(tmp_path)).returncode == 0


def test_loader_refuses_links_out_of_the_stacks_folder(make_host, tmp_path):
    root, pkg, so = probe_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(pkg, str(elsewhere))
    os.symlink(str(elsewhere), pkg)
    want = ('"%s" leaves its folder "%s": it resolves to "%s"'
            % (pkg, os.path.realpath(root), os.path.realpath(str(elsewhere))))
    assert refusal(make_host(workers=1, stacks=[root])) == want
    r = check(root, str(tmp_path))
    assert r.returncode == 1 and want in r.stderr, r.stderr
    # an object linked to one outside, in a package folder of its own
    os.unlink(pkg)
    shutil.move(str(elsewhere), pkg)
    os.rename(so, str(tmp_path / "libprobe.so"))
    os.symlink(str(tmp_path / "libprobe.so"), so)
    want = ('"%s" leaves its folder "%s": it resolves to "%s"'
            % (so, os.path.realpath(root),
               os.path.realpath(str(tmp_path / "libprobe.so"))))
    assert check(root, str(tmp_path)).stderr.count(want) == 1


def test_links_inside_the_stacks_folder_load(make_host, tmp_path):
    root, pkg, so = probe_copy(tmp_path)
    store = os.path.join(root, ".store")
    os.makedirs(store)
    real = os.path.join(store, "probe-1.0.0")
    shutil.move(os.path.join(root, "probe", "1.0.0"), real)
    os.symlink(real, os.path.join(root, "probe", "1.0.0"))
    # a stacks folder reached through a link is resolved first
    link = str(tmp_path / "stacks-link")
    os.symlink(root, link)
    host = make_host(workers=1, stacks=[link]).start()
    host.wait_log(lambda e: e.get("msg") == "stack loaded"
                  and e.get("name") == "probe@1.0.0")
    assert host.request("GET", "/probe/work")[0] == 200
    assert check(link, str(tmp_path)).returncode == 0


def test_loader_refuses_objects_of_other_users(make_host, tmp_path):
    root, pkg, so = probe_copy(tmp_path)
    if os.geteuid() != 0:
        pytest.fail("giving a file to another user needs root")
    os.chown(so, 65534, 65534)
    want = ('"%s" belongs to uid 65534, not to the host\'s user (uid 0) or '
            'root' % os.path.realpath(so))
    assert refusal(make_host(workers=1, stacks=[root])) == want
    assert want in check(root, str(tmp_path)).stderr
    os.chown(so, 0, 0)  # root's own files are trusted (packages in /usr)
    assert check(root, str(tmp_path)).returncode == 0


# -- the data folder -------------------------------------------------------------

def test_a_data_folder_others_may_write_is_refused(make_host):
    host = make_host(workers=1, core=True)
    os.makedirs(host.data)
    os.chmod(host.data, 0o777)
    host.start(wait=False)
    try:
        rc = host.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    host.logf.close()
    want = ('nno: refusing the data folder: "%s" is writable by group or '
            'others (mode 0777); run chmod go-w on it' % host.data)
    assert rc == 1 and want in host.log_text(), (rc, host.log_text())
    assert not os.path.exists(os.path.join(host.data, "core.db"))
    r = subprocess.run([NNO, "serve", "--check", "--data", host.data],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "refusing the data folder" in r.stderr, r
    # fixed, it starts; core.db and the operator key are owner-only
    os.chmod(host.data, 0o750)
    host.proc = None
    host.start()
    assert mode(host.data) == 0o750
    assert mode(os.path.join(host.data, "core.db")) == 0o600
    assert mode(os.path.join(host.data, "operator.key")) == 0o600
