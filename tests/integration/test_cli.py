"""The operator CLI (`nno platform|tenant|stack|audit|operator-key`) as a
black box: the `nno` binary run against a real host with the registry core
plugin, against a scripted fake API (for what a real host rarely answers:
412, paging), and against nothing at all.

Exit codes: 0 done, 1 API error, 2 usage error, 3 host unreachable."""
import http.server
import json
import os
import pty
import re
import subprocess
import threading

import pytest

from conftest import NNO, Host, free_port

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def run(*args, url=None, data=None, key=None, stdin=subprocess.DEVNULL,
        timeout=30):
    """Runs `nno ARGS` with only the NNO_* variables given here set."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NNO_") and k.lower() not in PROXY_VARS}
    if url is not None:
        env["NNO_URL"] = url
    if data is not None:
        env["NNO_DATA"] = data
    if key is not None:
        env["NNO_KEY"] = key
    return subprocess.run([NNO] + list(args), env=env, stdin=stdin,
                          capture_output=True, text=True, timeout=timeout)


def lines(s):
    return s.splitlines()


def table(out):
    """Parses an aligned table: the header's words give the columns and
    every cell starts where its header does. Returns [dict]."""
    rows = lines(out)
    assert rows, "no header row"
    head = rows[0]
    starts = [m.start() for m in re.finditer(r"\S+", head)]
    names = head.split()
    result = []
    for row in rows[1:]:
        cells = {}
        for i, (name, s) in enumerate(zip(names, starts)):
            end = starts[i + 1] if i + 1 < len(starts) else len(row)
            if i + 1 < len(starts):
                # Two spaces at least between columns, aligned under the
                # header.
                assert row[end - 2:end] == "  ", (row, name)
                assert s == 0 or row[s - 1] == " ", (row, name)
            cells[name] = row[s:end].strip()
        result.append(cells)
    return result


def show(out):
    """Parses `key: value` lines."""
    d = {}
    for line in lines(out):
        k, sep, v = line.partition(": ")
        assert sep, line
        d[k] = v
    return d


def assert_api_error(r, status):
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = lines(r.stderr)
    assert len(err) == 2, r.stderr
    assert err[0].startswith("nno: %d " % status), r.stderr
    assert err[1].startswith("hint: "), r.stderr
    return err[0]


def assert_usage_error(r):
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = lines(r.stderr)
    assert len(err) == 2, r.stderr
    assert err[0].startswith("nno: ") and err[1].startswith("hint: "), r.stderr
    return err


# -- a real host with the registry ----------------------------------------------

@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("cli"), workers=2, core=True)
    h.start()
    h.url = "http://127.0.0.1:%d" % h.port
    # a platform's plan must be one of billing's
    assert h.api("POST", "/plans", {"name": "team"})[0] == 201
    yield h
    h.stop()


def nno(h, *args, **kw):
    return run(*args, url=h.url, data=h.data, **kw)


def test_platform_lifecycle(reg):
    r = nno(reg, "platform", "create", "acme", "--name", "Acme Inc",
            "--plan", "pro", "--owner", "ops@acme.test")
    assert r.returncode == 0, r.stderr
    p = show(r.stdout)
    assert p["id"] == "acme" and p["name"] == "Acme Inc"
    assert p["class"] == "platform" and p["status"] == "active"
    assert p["plan"] == "pro" and p["owner"] == "ops@acme.test"

    # Without an id the server picks one; --json prints the server's JSON.
    r = nno(reg, "--json", "platform", "create", "--name", "Generated",
            "--class", "user_project")
    assert r.returncode == 0, r.stderr
    gen = json.loads(r.stdout)
    assert gen["id"] and gen["class"] == "user_project"

    r = nno(reg, "platform", "list")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0].split() == ["ID", "NAME", "CLASS", "STATUS",
                                          "PLAN", "CREATED"]
    rows = {row["ID"]: row for row in table(r.stdout)}
    assert rows["acme"]["NAME"] == "Acme Inc"
    assert rows["acme"]["PLAN"] == "pro"
    assert rows[gen["id"]]["CLASS"] == "user_project"

    r = nno(reg, "platform", "list", "--json")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    assert isinstance(items, list)
    assert {"acme", gen["id"]} <= {p["id"] for p in items}

    r = nno(reg, "platform", "list", "--class", "user_project", "--json")
    assert [p["id"] for p in json.loads(r.stdout)] == [gen["id"]]

    r = nno(reg, "platform", "show", "acme")
    assert r.returncode == 0, r.stderr
    before = show(r.stdout)
    assert before["id"] == "acme" and before["created_at"]

    r = nno(reg, "platform", "update", "acme", "--name", "Acme Corp",
            "--plan", "team")
    assert r.returncode == 0, r.stderr
    after = show(r.stdout)
    assert after["name"] == "Acme Corp" and after["plan"] == "team"
    assert int(after["version"]) == int(before["version"]) + 1

    r = nno(reg, "platform", "suspend", "acme")
    assert r.returncode == 0, r.stderr
    assert show(r.stdout)["status"] == "suspended"
    r = nno(reg, "platform", "list", "--status", "suspended", "--json")
    assert [p["id"] for p in json.loads(r.stdout)] == ["acme"]
    r = nno(reg, "platform", "resume", "acme")
    assert r.returncode == 0, r.stderr
    assert show(r.stdout)["status"] == "active"

    # Paging: one row per page, every row still collected once.
    r = nno(reg, "platform", "list", "--limit", "1", "--json")
    assert len(json.loads(r.stdout)) == 1

    r = nno(reg, "platform", "delete", gen["id"], "--yes")
    assert r.returncode == 0, r.stderr
    assert gen["id"] in r.stdout
    assert_api_error(nno(reg, "platform", "show", gen["id"]), 404)


def test_tenants(reg):
    assert nno(reg, "platform", "create", "tree", "--name", "Tree")\
        .returncode == 0
    for args in (["eu", "--name", "Europe"],
                 ["fr", "--name", "France", "--parent", "eu"],
                 ["paris", "--name", "Paris", "--parent", "fr"],
                 ["us", "--name", "US"]):
        r = nno(reg, "tenant", "create", "tree", *args)
        assert r.returncode == 0, r.stderr
    t = show(r.stdout)
    assert t["id"] == "us" and t["platform"] == "tree" and t["parent"] == "-"

    r = nno(reg, "tenant", "show", "tree", "fr")
    assert r.returncode == 0, r.stderr
    assert show(r.stdout)["parent"] == "eu"

    r = nno(reg, "tenant", "list", "tree")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0].split()[0] == "ID"
    rows = {row["ID"]: row for row in table(r.stdout)}
    assert set(rows) == {"eu", "fr", "paris", "us"}
    assert rows["paris"]["PARENT"] == "fr" and rows["eu"]["PARENT"] == "-"

    r = nno(reg, "tenant", "list", "tree", "--parent", "eu", "--json")
    assert [t["id"] for t in json.loads(r.stdout)] == ["fr"]
    r = nno(reg, "tenant", "list", "tree", "--under", "eu", "--json")
    under = {t["id"] for t in json.loads(r.stdout)}
    assert {"fr", "paris"} <= under and "us" not in under

    # A tenant with children needs --cascade.
    err = assert_api_error(nno(reg, "tenant", "delete", "tree", "eu"), 409)
    r = nno(reg, "tenant", "delete", "tree", "us")
    assert r.returncode == 0, r.stderr
    r = nno(reg, "tenant", "delete", "tree", "eu", "--cascade")
    assert r.returncode == 0, r.stderr
    r = nno(reg, "tenant", "list", "tree", "--json")
    assert json.loads(r.stdout) == []
    assert_api_error(nno(reg, "tenant", "show", "tree", "paris"), 404)
    assert err  # the 409 line named the problem


def test_keys(reg):
    assert nno(reg, "platform", "create", "keyed", "--name", "Keyed")\
        .returncode == 0
    assert nno(reg, "tenant", "create", "keyed", "eu", "--name", "EU")\
        .returncode == 0
    r = nno(reg, "key", "create", "keyed", "--name", "ci deploy",
            "--scopes", "tenants:read, features:hello:*", "--tenant", "eu",
            "--expires-in", "3600")
    assert r.returncode == 0, r.stderr
    k = show(r.stdout)
    assert re.fullmatch(r"nnok_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", k["key"]), k
    assert k["key"][5:21] == k["id"] and k["tenant"] == "eu"
    assert k["name"] == "ci deploy" and k["revoked_at"] == "-"
    assert "not shown again" in r.stderr
    # the key works on the API, within its scopes
    st, _, t = reg.api("GET", "/platforms/keyed/tenants/eu", key=k["key"])
    assert st == 200 and t["id"] == "eu"
    assert reg.api("GET", "/platforms/keyed/keys", key=k["key"])[0] == 403

    r = nno(reg, "key", "create", "keyed", "--name", "reader", "--scopes",
            "keys:read", "--json")
    assert r.returncode == 0, r.stderr
    reader = json.loads(r.stdout)
    assert reader["scopes"] == ["keys:read"] and reader["tenant"] is None

    r = nno(reg, "key", "list", "keyed")
    assert r.returncode == 0, r.stderr
    rows = {row["ID"]: row for row in table(r.stdout)}
    assert set(rows) == {k["id"], reader["id"]}
    assert rows[k["id"]]["TENANT"] == "eu"
    assert rows[reader["id"]]["EXPIRES"] == "-"
    assert k["key"] not in r.stdout and reader["key"] not in r.stdout
    r = nno(reg, "key", "list", "keyed", "--json")
    assert all("key" not in x for x in json.loads(r.stdout))

    r = nno(reg, "key", "revoke", "keyed", k["id"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "revoked key %s of platform keyed\n" % k["id"]
    assert reg.api("GET", "/platforms/keyed/tenants/eu", key=k["key"])[0] == 401
    assert_api_error(nno(reg, "key", "revoke", "keyed", k["id"]), 404)
    r = nno(reg, "key", "list", "keyed", "--json")
    revoked = [x for x in json.loads(r.stdout) if x["id"] == k["id"]]
    assert revoked and revoked[0]["revoked_at"]
    # bad input: 422 from the API, nothing created
    assert_api_error(nno(reg, "key", "create", "keyed", "--name", "x",
                         "--scopes", "NOT A SCOPE"), 422)
    assert_api_error(nno(reg, "key", "create", "keyed", "--name", "x",
                         "--scopes", "a", "--tenant", "nope"), 422)
    assert len(json.loads(nno(reg, "key", "list", "keyed", "--json").stdout)) == 2
    # audited, without the secret
    r = nno(reg, "audit", "--target", "platform:keyed", "--json")
    rows = json.loads(r.stdout)
    made = [e for e in rows if e["action"] == "key.create"]
    gone = [e for e in rows if e["action"] == "key.revoke"]
    assert {e["detail"]["key"] for e in made} == {k["id"], reader["id"]}
    assert [e["detail"]["key"] for e in gone] == [k["id"]]
    assert all(e["actor"] == "operator" for e in made + gone)
    # the key, and its secret part (43 characters, so never there by chance)
    secret = k["key"].split("_", 2)[2]
    assert len(secret) == 43
    assert k["key"] not in r.stdout and secret not in r.stdout


def test_stacks(reg):
    assert nno(reg, "platform", "create", "stk", "--name", "Stacked")\
        .returncode == 0
    r = nno(reg, "stack", "list")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0].split() == ["ID", "VERSION", "STATE", "IN",
                                          "USE", "SOURCE", "SIGNED", "BY"]
    rows = [l.split() for l in lines(r.stdout)[1:]]
    versions = [row[1] for row in rows if row[0] == "default"]
    assert versions and all(row[2] == "loaded" for row in rows), rows

    r = nno(reg, "stack", "show", "default")
    assert r.returncode == 0, r.stderr
    assert show(r.stdout)["id"] == "default"

    r = nno(reg, "stack", "activate", "stk", "default")
    assert r.returncode == 0, r.stderr
    act = show(r.stdout)
    assert act["stack"] == "default" and act["platform"] == "stk"
    assert act["version"] in versions

    r = nno(reg, "stack", "list", "--platform", "stk", "--json")
    assert [(a["stack"], a["version"]) for a in json.loads(r.stdout)] == \
        [("default", act["version"])]

    assert_api_error(nno(reg, "stack", "activate", "stk", "nosuchstack"), 422)
    assert_api_error(nno(reg, "stack", "activate", "stk", "default",
                         "--version", "99.0.0"), 422)

    r = nno(reg, "stack", "deactivate", "stk", "default")
    assert r.returncode == 0, r.stderr
    r = nno(reg, "stack", "list", "--platform", "stk", "--json")
    assert json.loads(r.stdout) == []


def test_audit(reg):
    assert nno(reg, "platform", "create", "aud", "--name", "Audited")\
        .returncode == 0
    assert nno(reg, "platform", "suspend", "aud").returncode == 0
    r = nno(reg, "audit")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0].split() == ["SEQ", "AT", "ACTOR", "ACTION",
                                          "TARGET"]
    rows = table(r.stdout)
    assert any(row["ACTION"] == "platform.create" and
               row["TARGET"] == "platform:aud" for row in rows)

    r = nno(reg, "audit", "--target", "platform:aud", "--json")
    entries = json.loads(r.stdout)
    assert [e["action"] for e in entries] == ["platform.suspend",
                                              "platform.create"]
    r = nno(reg, "audit", "--action", "platform.create", "--limit", "2",
            "--json")
    entries = json.loads(r.stdout)
    assert len(entries) == 2
    assert {e["action"] for e in entries} == {"platform.create"}


def test_api_errors(reg):
    # The server's validation message, on one line.
    err = assert_api_error(nno(reg, "platform", "create", "A!", "--name",
                               "x"), 422)
    assert '"A!"' in err and "id" in err
    err = assert_api_error(nno(reg, "platform", "show", "nope"), 404)
    assert err.startswith("nno: 404 Not Found")
    assert_api_error(nno(reg, "platform", "suspend", "nope"), 404)
    assert_api_error(nno(reg, "tenant", "list", "nope"), 404)
    assert nno(reg, "platform", "create", "dup", "--name", "D").returncode == 0
    assert_api_error(nno(reg, "platform", "create", "dup", "--name", "D"), 409)

    # A wrong key: 401, and the key is never echoed.
    r = nno(reg, "platform", "list", key="not-the-key-1234")
    err = assert_api_error(r, 401)
    assert "not-the-key-1234" not in r.stderr + r.stdout
    r = nno(reg, "platform", "list", "--key", "also-wrong-5678")
    assert_api_error(r, 401)
    assert "also-wrong-5678" not in r.stderr


def test_delete_needs_confirmation(reg):
    assert nno(reg, "platform", "create", "del", "--name", "Del")\
        .returncode == 0
    # No TTY on stdin: refused with a hint, nothing sent.
    err = assert_usage_error(nno(reg, "platform", "delete", "del"))
    assert "--yes" in err[1]
    assert nno(reg, "platform", "show", "del").returncode == 0

    # On a terminal: asks; anything but yes keeps it.
    for answer, deleted in ((b"n\n", False), (b"y\n", True)):
        master, slave = pty.openpty()
        try:
            os.write(master, answer)
            r = nno(reg, "platform", "delete", "del", stdin=slave)
        finally:
            os.close(slave)
            os.close(master)
        assert "Delete platform del" in r.stderr
        assert r.returncode == (0 if deleted else 1), r.stderr
        st = nno(reg, "platform", "show", "del").returncode
        assert st == (1 if deleted else 0)


def test_operator_key_rotate(make_host):
    h = make_host(workers=1, core=True).start()
    h.url = "http://127.0.0.1:%d" % h.port
    path = os.path.join(h.data, "operator.key")
    old = open(path).read().strip()

    r = nno(h, "operator-key", "rotate")
    assert r.returncode == 0, r.stderr
    new = open(path).read().strip()
    assert new and new != old
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.path.realpath(path) in r.stdout
    assert new not in r.stdout + r.stderr and old not in r.stdout + r.stderr

    assert_api_error(nno(h, "platform", "list", key=old), 401)
    assert nno(h, "platform", "list", key=new).returncode == 0
    assert nno(h, "platform", "list").returncode == 0  # reads the file

    # --show prints the key (and only the key) on stdout.
    r = nno(h, "operator-key", "rotate", "--show")
    assert r.returncode == 0, r.stderr
    shown = r.stdout.strip()
    assert shown == open(path).read().strip() and shown != new
    assert nno(h, "platform", "list", key=shown).returncode == 0


# -- a fake API: 412, paging, error rendering -------------------------------------

class FakeAPI(http.server.BaseHTTPRequestHandler):
    pages = {}     # cursor -> (items, next_cursor)
    seen = []      # (method, path, headers)

    def log_message(self, *a):
        pass

    def reply(self, status, obj, ctype="application/json", headers=()):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_one(self):
        FakeAPI.seen.append((self.command, self.path, dict(self.headers)))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path, _, query = self.path.partition("?")
        q = dict(p.split("=", 1) for p in query.split("&") if p)
        if path == "/api/v1/platforms" and self.command == "GET":
            items, nxt = FakeAPI.pages[q.get("cursor", "")]
            lim = int(q.get("limit", "50"))
            return self.reply(200, {"items": items[:lim], "next_cursor": nxt})
        if path == "/api/v1/platforms/race" and self.command == "GET":
            return self.reply(200, {"id": "race", "version": 3},
                              headers=[("ETag", '"v3"')])
        if path == "/api/v1/platforms/race" and self.command == "PATCH":
            return self.reply(412, {"type": "about:blank",
                                    "title": "Precondition Failed",
                                    "status": 412, "detail": "stale"},
                              ctype="application/problem+json")
        if path == "/api/v1/platforms/multi":
            return self.reply(500, {"title": "Internal\nError", "status": 500,
                                    "detail": "line one\nline two"},
                              ctype="application/problem+json")
        if path == "/api/v1/platforms/text":
            self.send_response(502)
            self.send_header("Content-Length", "5")
            self.end_headers()
            return self.wfile.write(b"oops\n")
        return self.reply(404, {"title": "Not Found", "status": 404,
                                "detail": "no route for this path"},
                          ctype="application/problem+json")

    do_GET = do_POST = do_PATCH = do_DELETE = handle_one


@pytest.fixture(scope="module")
def fake():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_fake_update_conflict(fake):
    FakeAPI.seen.clear()
    r = run("platform", "update", "race", "--name", "x", url=fake,
            key="secret-key-abc")
    err = assert_api_error(r, 412)
    assert "someone else" in err
    (m1, _, h1), (m2, _, h2) = [(m, p, h) for m, p, h in FakeAPI.seen]
    assert (m1, m2) == ("GET", "PATCH")
    assert h2["If-Match"] == '"v3"'
    assert h1["Authorization"] == "Bearer secret-key-abc"
    assert "secret-key-abc" not in r.stderr


def test_fake_paging(fake):
    def p(i):
        return {"id": "p%03d" % i, "name": "P %d" % i, "class": "platform",
                "status": "active", "plan": "free",
                "created_at": "2026-01-01T00:00:00Z"}
    FakeAPI.pages = {"": ([p(i) for i in range(0, 3)], "c1"),
                     "c1": ([p(i) for i in range(3, 6)], "c2"),
                     "c2": ([p(i) for i in range(6, 8)], None)}
    r = run("platform", "list", "--json", url=fake, key="k")
    assert r.returncode == 0, r.stderr
    assert [x["id"] for x in json.loads(r.stdout)] == \
        ["p%03d" % i for i in range(8)]
    r = run("platform", "list", url=fake, key="k")
    assert [row["ID"] for row in table(r.stdout)] == \
        ["p%03d" % i for i in range(8)]
    # --limit stops early and asks the server for no more than it needs.
    FakeAPI.seen.clear()
    r = run("platform", "list", "--limit", "4", "--json", url=fake, key="k")
    assert [x["id"] for x in json.loads(r.stdout)] == \
        ["p%03d" % i for i in range(4)]
    assert [p for _, p, _ in FakeAPI.seen] == \
        ["/api/v1/platforms?limit=4", "/api/v1/platforms?limit=1&cursor=c1"]


def test_fake_error_rendering(fake):
    err = assert_api_error(run("platform", "show", "multi", url=fake,
                               key="k"), 500)
    assert err == "nno: 500 Internal Error: line one line two"
    err = assert_api_error(run("platform", "show", "text", url=fake,
                               key="k"), 502)
    assert err == "nno: 502 Bad Gateway"
    # Path segments are escaped, never resolved.
    FakeAPI.seen.clear()
    assert_api_error(run("platform", "show", "a/b c", url=fake, key="k"), 404)
    assert_api_error(run("platform", "show", "..", url=fake, key="k"), 404)
    assert [p for _, p, _ in FakeAPI.seen] == \
        ["/api/v1/platforms/a%2Fb%20c", "/api/v1/platforms/%2E%2E"]


# -- no host at all ---------------------------------------------------------------

def test_unreachable():
    url = "http://127.0.0.1:%d" % free_port()
    r = run("platform", "list", url=url, key="k")
    assert r.returncode == 3, r.stderr
    assert lines(r.stderr) == [
        "nno: cannot reach %s: Couldn't connect to server" % url,
        "hint: is 'nno serve' running? set --url or NNO_URL"]
    # --url wins over NNO_URL, before or after the command.
    r = run("--url", url + "/", "audit", url="http://127.0.0.1:1", key="k")
    assert r.returncode == 3 and url + ":" in r.stderr
    r = run("stack", "list", "--url=" + url, key="k")
    assert r.returncode == 3 and url + ":" in r.stderr


def test_missing_key_file(tmp_path):
    url = "http://127.0.0.1:%d" % free_port()
    r = run("platform", "list", url=url, data=str(tmp_path))
    err = assert_usage_error(r)
    assert os.path.join(str(tmp_path), "operator.key") in err[0]
    assert "--key" in err[1] and "NNO_KEY" in err[1]
    # A key file with only whitespace is no key either.
    (tmp_path / "operator.key").write_text("  \n")
    err = assert_usage_error(run("platform", "list", url=url,
                                 data=str(tmp_path)))
    assert "operator.key" in err[0]


@pytest.mark.parametrize("args", [
    ["platform", "list", "--bogus"],
    ["platform", "lst"],
    ["platform"],
    ["platform", "show"],
    ["platform", "show", "a", "b"],
    ["platform", "show", ""],
    ["platform", "create", "x"],              # --name is required
    ["platform", "list", "--limit", "0"],
    ["platform", "list", "--limit", "2", "--all"],
    ["platform", "update", "x"],              # nothing to change
    ["platform", "create", "--name"],         # option without its value
    ["tenant", "list", "p", "--parent", "a", "--under", "b"],
    ["stack", "activate", "p"],
    ["audit", "extra"],
    ["operator-key"],
    ["key", "create", "p", "--name", "n"],     # --scopes is required
    ["key", "create", "p", "--scopes", "a"],   # --name is required
    ["key", "create", "p", "--name", "n", "--scopes", "a",
     "--expires-in", "soon"],
    ["key", "revoke", "p"],
    ["--url", "ftp://x", "audit"],
])
def test_usage_errors(args, tmp_path):
    # No host and no key file: usage errors are found before either.
    r = run(*args, url="http://127.0.0.1:1", data=str(tmp_path))
    assert_usage_error(r)
    assert r.stdout == ""


def test_help():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("platform", "tenant", "key", "stack", "audit",
                "operator-key"):
        assert cmd in r.stdout
    for args in (["platform", "--help"], ["help", "platform"],
                 ["platform", "create", "--help"], ["tenant", "-h"],
                 ["stack", "activate", "--help"], ["audit", "--help"],
                 ["operator-key", "rotate", "--help"],
                 ["help", "tenant", "delete"],
                 # --help wins over anything else on the line
                 ["platform", "show", "--bogus", "--help"]):
        r = run(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.startswith("usage: nno "), args
        assert "--url" in r.stdout and r.stderr == ""
    assert "--cascade" in run("tenant", "delete", "--help").stdout
    # serve's help lists every key with its bounds, as its errors' hint says
    r = run("serve", "--help")
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if "sandbox.poll_us" in l]
    assert len(lines) == 1 and lines[0].endswith("(0 to 1000)"), lines
