"""The IAM core plugin, black box through the gateway: who may call what
(the route classes of plugins/iam/README.md), the keys and access-policy
API, revocation across workers, rate limits held across workers, CORS and
the cookie check, and the bound of the session cache."""
import hashlib
import http.client
import json
import os
import re
import shutil
import sqlite3
import stat
import threading
import time
import urllib.parse

import pytest

from conftest import BUILD, Host

KEY_RE = re.compile(r"nnok_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
KEY_FIELDS = {"id", "name", "platform", "tenant", "scopes", "created_at",
              "expires_at", "revoked_at"}
ACCESS_FIELDS = {"platform", "signup", "cors_origins", "user_scopes",
                 "session_idle_s", "session_absolute_s"}
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
          404: "Not Found", 409: "Conflict", 422: "Unprocessable Content",
          429: "Too Many Requests", 503: "Service Unavailable"}
HELLO = {"message": "hello, world"}
PASSWORD = "correct horse battery"
PLUGINS = os.path.join(BUILD, "lib", "nno", "plugins")


def started(host):
    """Start `host` with a connection of ours to its core.db, open until
    the host stops (see core_db)."""
    host.start()
    host.db = sqlite3.connect(os.path.join(host.data, "core.db"), timeout=10,
                              isolation_level=None)
    return host


def stopped(host):
    host.stop()
    host.db.close()


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    """One host with the core plugins and 2 workers: keys, sessions and
    limits must hold across workers. Tests pick their own platform ids."""
    host = started(Host(tmp_path_factory.mktemp("iam"), workers=2, core=True))
    yield host
    stopped(host)


# -- helpers -------------------------------------------------------------------

def call(h, method, path, key=None, body=None, headers=None, host=None,
         cookie=None, source=None):
    """One request on a new connection (so requests spread over the
    workers). `body`: bytes as they are, anything else as JSON. Returns
    (status, headers with repeated fields joined by ", ", JSON body or raw
    bytes or None)."""
    hd = {}
    if key is not None:
        hd["Authorization"] = "Bearer " + key
    if cookie is not None:
        # the name the auth package sets: __Host- on a platform's hosts
        # (names under the base domain but the API's), by path otherwise
        on_platform = (host is not None and host.endswith(".nno.localhost")
                       and host != "api.nno.localhost")
        hd["Cookie"] = ("__Host-nno_session=" if on_platform
                        else "nno_session=") + cookie
    if host is not None:
        hd["Host"] = host
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hd["Content-Type"] = "application/json"
    hd.update(headers or {})
    c = http.client.HTTPConnection(
        "127.0.0.1", h.port, timeout=10,
        source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=data, headers=hd)
        r = c.getresponse()
        raw = r.read()
        out = {}
        for k, v in r.getheaders():
            k = k.lower()
            out[k] = out[k] + ", " + v if k in out else v
        st = r.status
    finally:
        c.close()
    if raw and "json" in out.get("content-type", ""):
        return st, out, json.loads(raw)
    return st, out, raw or None


def op(h, method, path, body=None, host=None):
    """An operator call on /api/v1."""
    return call(h, method, "/api/v1" + path, key=h.op_key(), body=body,
                host=host)


def problem(resp, status, detail=None):
    """Assert `resp` is an RFC 9457 problem with the request id."""
    st, hd, body = resp
    assert st == status, resp
    assert hd["content-type"] == "application/problem+json", resp
    assert isinstance(body, dict), resp
    assert body["status"] == status and body["title"] == TITLES[status], resp
    assert body["request_id"] == hd["x-request-id"], resp
    if detail is not None:
        assert body["detail"] == detail, resp
    return body


def platform(h, pid, plan="unmetered", signup=False, origins=(), stack=True):
    body = {"id": pid, "name": "Platform " + pid}
    if plan is not None:
        body["plan"] = plan
    st, _, p = op(h, "POST", "/platforms", body)
    assert st == 201, p
    if stack:
        st, _, a = op(h, "POST", "/platforms/%s/stacks" % pid,
                      {"stack": "default"})
        assert st == 201, a
    st, _, a = op(h, "PUT", "/platforms/%s/access" % pid,
                  {"signup": signup, "cors_origins": list(origins)})
    assert st == 200, a


def tenant(h, pid, tid, parent=None):
    body = {"id": tid, "name": "Tenant " + tid}
    if parent:
        body["parent"] = parent
    st, _, t = op(h, "POST", "/platforms/%s/tenants" % pid, body)
    assert st == 201, t


def new_key(h, pid, scopes, tenant=None, expires_in=None, name="k"):
    """A key made by the operator; returns the created key's JSON."""
    return h.platform_key(pid, scopes, tenant=tenant, name=name,
                          expires_in=expires_in)


def session(h, pid, email):
    st, _, body = call(h, "POST", "/p/%s/auth/sign-up" % pid,
                       body={"email": email, "password": PASSWORD})
    assert st == 201, body
    return body["token"]


def sign_in(h, pid, email):
    st, _, body = call(h, "POST", "/p/%s/auth/sign-in" % pid,
                       body={"email": email, "password": PASSWORD})
    assert st == 200, body
    return body["token"]


def hello(h, pid, key=None, cookie=None):
    return call(h, "GET", "/p/%s/hello" % pid, key=key, cookie=cookie)[0]


def list_ids(h, path):
    """Every id of a paged operator list."""
    ids, cursor = [], None
    while True:
        q = path + "?limit=500"
        if cursor:
            q += "&cursor=" + urllib.parse.quote(cursor)
        st, _, page = op(h, "GET", q)
        assert st == 200, page
        ids += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def core_db(h, sql, args=()):
    """One statement on the host's core.db, on the connection opened at
    start and kept open while the host runs."""
    return h.db.execute(sql, args).fetchall()


def test_an_outside_reader_never_removes_the_wal(make_host):
    # Every worker keeps its lock on core.db: a reader that opens and closes
    # it (a backup, an admin's sqlite3) must not take itself for the last
    # user and delete the WAL the host still writes to.
    host = make_host(core=True, workers=2).start()
    path = os.path.join(host.data, "core.db")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for _ in range(3):
        db = sqlite3.connect(path)
        db.execute("SELECT count(*) FROM iam_keys").fetchall()
        db.close()
        assert os.path.exists(path + "-wal")
    st, _, p = host.api("POST", "/platforms", {"id": "wal-a", "name": "w"})
    assert st == 201, p
    k = host.platform_key("wal-a")
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT id FROM iam_keys").fetchall()
    finally:
        db.close()
    assert rows == [(k["id"],)]


def set_key_expiry(h, key_id, at):
    core_db(h, "UPDATE iam_keys SET expires_at = ? WHERE id = ?", (at, key_id))
    assert core_db(h, "SELECT expires_at FROM iam_keys WHERE id = ?",
                   (key_id,)) == [(at,)]


# -- the authorization matrix ---------------------------------------------------

# (name, method, path with {p} for the target platform, body)
ROUTES = [
    ("platforms", "GET", "/api/v1/platforms", None),
    ("audit", "GET", "/api/v1/audit", None),
    ("quarantines", "GET", "/api/v1/quarantines", None),
    ("platform", "GET", "/api/v1/platforms/{p}", None),
    ("tenants", "GET", "/api/v1/platforms/{p}/tenants", None),
    ("tenant+", "POST", "/api/v1/platforms/{p}/tenants",
     {"name": "made by the matrix", "parent": "t1a"}),
    ("t1a", "GET", "/api/v1/platforms/{p}/tenants/t1a", None),
    ("t2", "GET", "/api/v1/platforms/{p}/tenants/t2", None),
    ("keys", "GET", "/api/v1/platforms/{p}/keys", None),
    ("key+", "POST", "/api/v1/platforms/{p}/keys",
     {"name": "made by the matrix", "scopes": ["keys:read"]}),
    ("hello", "GET", "/p/{p}/hello", None),
    ("session", "GET", "/p/{p}/auth/session", None),
    ("sign-in", "POST", "/p/{p}/auth/sign-in", {"email": "x@example.com"}),
]
NEEDS = {"platform": "platform:read", "tenants": "tenants:read",
         "tenant+": "tenants:write", "t1a": "tenants:read",
         "t2": "tenants:read", "keys": "keys:read", "key+": "keys:write",
         "hello": "features:hello:read"}

# Every cell, in ROUTES order. A number is the status the route itself
# answers; a word names a refusal (see check_cell):
#   op-only     403  a core route without a scope: the operator only
#   scope       403  the credential lacks the route's scope
#   elsewhere   403  a credential of another platform on the core API
#   subtree     403  a tenant-bound key outside its subtree
#   op-feature  403  the operator key on a platform's routes
#   anon        401  no credential on a route that needs one
#   dead        401  an expired or revoked key
#   ended       401  a session token with no live session behind it
#   bogus       401  a token of no known kind
#   foreign     401  a credential of another platform on a platform's route
#   user        401  the auth package wants a user session, not a key
# 422 on sign-in is the auth package refusing the body: public routes let
# everyone through, ignoring a bad credential.
NOBODY = "anon " * 12 + "422"
DEAD = "dead " * 12 + "422"
OUTSIDER = "op-only op-only op-only " + "elsewhere " * 7 + "foreign foreign 422"
EXPECT_A = {
    "operator": "200 200 200 200 200 201 200 200 200 201 op-feature op-feature 422",
    "star": "op-only op-only op-only 200 200 201 200 200 200 201 200 user 422",
    "tenant-t1": "op-only op-only op-only scope 200 201 200 subtree scope scope 200 user 422",
    "platform:read": "op-only op-only op-only 200 scope scope scope scope scope scope scope user 422",
    "tenants:read": "op-only op-only op-only scope 200 scope 200 200 scope scope scope user 422",
    "tenants:write": "op-only op-only op-only scope 200 201 200 200 scope scope scope user 422",
    "keys:read": "op-only op-only op-only scope scope scope scope scope 200 scope scope user 422",
    "keys:write": "op-only op-only op-only scope scope scope scope scope 200 201 scope user 422",
    "features:hello:read": "op-only op-only op-only scope scope scope scope scope scope scope 200 user 422",
    "expired": DEAD,
    "revoked": DEAD,
    "forged-session": "ended " * 12 + "422",
    "bogus": "bogus " * 12 + "422",
    "session-a": "op-only op-only op-only scope scope scope scope scope scope scope 200 200 422",
    "session-b": OUTSIDER,
    "none": NOBODY,
}
EXPECT_B = {
    "operator": EXPECT_A["operator"],
    "star": OUTSIDER,
    "tenant-t1": OUTSIDER,
    "platform:read": OUTSIDER,
    "tenants:read": OUTSIDER,
    "tenants:write": OUTSIDER,
    "keys:read": OUTSIDER,
    "keys:write": OUTSIDER,
    "features:hello:read": OUTSIDER,
    "expired": DEAD,
    "revoked": DEAD,
    "forged-session": EXPECT_A["forged-session"],
    "bogus": EXPECT_A["bogus"],
    "session-a": OUTSIDER,
    "session-b": EXPECT_A["session-a"],
    "none": NOBODY,
}


def check_cell(resp, cell, route, target, where):
    """Assert one answer against its expected cell; returns the status."""
    st, hd, body = resp
    what = (where, resp)
    www = hd.get("www-authenticate", "")
    if cell.isdigit():
        assert st == int(cell), what
        if st == 422:
            problem(resp, 422, 'field "password": is required')
        return st
    if cell == "op-only":
        problem(resp, 403, "only the operator may call this route")
    elif cell == "scope":
        problem(resp, 403, 'this credential lacks the scope "%s"'
                % NEEDS[route])
    elif cell == "elsewhere":
        assert problem(resp, 403)["detail"].endswith(
            'cannot reach platform "%s"' % target), what
    elif cell == "subtree":
        problem(resp, 403, 'this credential is bound to tenant "t1" and '
                'cannot reach tenant "t2"')
    elif cell == "op-feature":
        assert problem(resp, 403)["detail"].startswith(
            "the operator key opens the core API only"), what
    elif cell == "anon":
        problem(resp, 401, "this route needs a credential: an API key or a "
                "session")
        assert www == 'Bearer realm="nno"', what
    elif cell == "dead":
        problem(resp, 401, "this API key is unknown, revoked or expired")
        assert www == 'Bearer realm="nno", error="invalid_token"', what
    elif cell == "ended":
        problem(resp, 401, "this session has ended; sign in again")
        assert www == 'Bearer realm="nno", error="invalid_token"', what
    elif cell == "bogus":
        problem(resp, 401, "this credential is not a key of this host")
        assert www == 'Bearer realm="nno", error="invalid_token"', what
    elif cell == "foreign":
        problem(resp, 401, "this credential belongs to another platform")
        assert www == 'Bearer realm="nno", error="invalid_token"', what
    elif cell == "user":
        problem(resp, 401, "sign in first: this needs a user session")
    else:
        raise AssertionError("bad cell " + cell)
    return st


def test_authorization_matrix(h):
    a, b = "mx-a", "mx-b"
    for pid in (a, b):
        platform(h, pid, signup=True)
        tenant(h, pid, "t1")
        tenant(h, pid, "t1a", parent="t1")
        tenant(h, pid, "t2")
    creds = {"operator": h.op_key(), "none": None}
    creds["session-a"] = session(h, a, "ana@example.com")
    creds["session-b"] = session(h, b, "bea@example.com")
    s = creds["session-a"]
    creds["forged-session"] = s[:5] + "0123456789abcdef" + s[21:]
    creds["bogus"] = "nno_op_" + s[22:]
    # An expired key: made for a minute, then dated back in core.db; the
    # key creations below make every worker reload its key table.
    expired = new_key(h, a, ["*"], expires_in=60)
    set_key_expiry(h, expired["id"], int(time.time()) - 5)
    creds["expired"] = expired["key"]
    revoked = new_key(h, a, ["*"])
    assert hello(h, a, key=revoked["key"]) == 200
    st, _, _ = op(h, "DELETE", "/platforms/%s/keys/%s" % (a, revoked["id"]))
    assert st == 204
    creds["revoked"] = revoked["key"]
    creds["star"] = new_key(h, a, ["*"])["key"]
    creds["tenant-t1"] = new_key(h, a, ["tenants:read", "tenants:write",
                                        "features:*"], tenant="t1")["key"]
    for scope in ["platform:read", "tenants:read", "tenants:write",
                  "keys:read", "keys:write", "features:hello:read"]:
        creds[scope] = new_key(h, a, [scope], name=scope)["key"]
    assert set(creds) == set(EXPECT_A) == set(EXPECT_B)

    before = {pid: (set(list_ids(h, "/platforms/%s/tenants" % pid)),
                    set(list_ids(h, "/platforms/%s/keys" % pid)))
              for pid in (a, b)}
    made = {(pid, kind): set() for pid in (a, b) for kind in ("t", "k")}
    for target, table in ((a, EXPECT_A), (b, EXPECT_B)):
        for cred, row in table.items():
            cells = row.split()
            assert len(cells) == len(ROUTES), cred
            for (route, method, path, body), cell in zip(ROUTES, cells):
                path = path.replace("{p}", target)
                resp = call(h, method, path, key=creds[cred], body=body)
                where = "%s on %s %s" % (cred, method, path)
                st = check_cell(resp, cell, route, target, where)
                out = resp[2]
                if st == 201:
                    kind = "t" if route == "tenant+" else "k"
                    made[(target, kind)].add(out["id"])
                    if route == "tenant+":
                        assert out["parent"] == "t1a", (where, out)
                    else:
                        assert out["scopes"] == ["keys:read"], (where, out)
                        assert out["tenant"] is None, (where, out)
                if st != 200:
                    continue
                if route == "hello":
                    assert out == HELLO, where
                elif route == "session":
                    email = "ana" if target == a else "bea"
                    assert out["user"]["email"] == email + "@example.com"
                    assert out["platform"] == target, where
                elif route == "tenants":
                    ids = {t["id"] for t in out["items"]}
                    assert "t1a" in ids, (where, ids)
                    # a tenant-bound key lists its subtree only
                    assert ("t2" in ids) == (cred != "tenant-t1"), (where, ids)
                elif route in ("t1a", "t2"):
                    assert out["id"] == route and out["platform"] == target
                elif route == "platform":
                    assert out["id"] == target, where

    # Every write the table allowed happened, and nothing else: B changed
    # only by what the operator made there.
    assert len(made[(b, "t")]) == 1 and len(made[(b, "k")]) == 1
    assert len(made[(a, "t")]) == 4 and len(made[(a, "k")]) == 3
    for pid in (a, b):
        tenants = set(list_ids(h, "/platforms/%s/tenants" % pid))
        keys = set(list_ids(h, "/platforms/%s/keys" % pid))
        assert tenants == before[pid][0] | made[(pid, "t")], pid
        assert keys == before[pid][1] | made[(pid, "k")], pid
    # the expired and revoked keys still fail after all that
    assert hello(h, a, key=creds["expired"]) == 401
    assert hello(h, a, key=creds["revoked"]) == 401


def test_a_key_stops_when_it_expires(h):
    # A key loaded while live, whose time runs out while the host runs.
    pid = "exp-a"
    platform(h, pid)
    k = new_key(h, pid, ["features:*"], expires_in=60)
    at = int(time.time()) + 2
    set_key_expiry(h, k["id"], at)
    new_key(h, pid, ["features:*"])  # every worker reloads its keys
    for _ in range(6):
        assert hello(h, pid, key=k["key"]) == 200
    time.sleep(max(0.0, at - time.time()) + 0.1)
    for _ in range(6):
        problem(call(h, "GET", "/p/%s/hello" % pid, key=k["key"]), 401,
                "this API key is unknown, revoked or expired")
    # listed with its expiry, not as revoked
    st, _, page = op(h, "GET", "/platforms/%s/keys" % pid)
    mine = [i for i in page["items"] if i["id"] == k["id"]][0]
    assert mine["revoked_at"] is None and TIME_RE.fullmatch(mine["expires_at"])


# -- the keys API ------------------------------------------------------------------

def test_key_creation_shape_and_listing(h):
    pid = "keys-a"
    platform(h, pid)
    t0 = time.time()
    st, hd, k = op(h, "POST", "/platforms/%s/keys" % pid,
                   {"name": "ci deploy", "scopes": ["tenants:read",
                                                    "features:*"],
                    "expires_in": 3600})
    assert st == 201, k
    assert set(k) == KEY_FIELDS | {"key"}, k
    m = KEY_RE.fullmatch(k["key"])
    assert m and m.group(1) == k["id"], k
    assert (k["name"], k["platform"], k["tenant"]) == ("ci deploy", pid, None)
    assert k["scopes"] == ["tenants:read", "features:*"]
    assert TIME_RE.fullmatch(k["created_at"]) and k["revoked_at"] is None
    exp = time.mktime(time.strptime(k["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) \
        - time.timezone
    assert abs(exp - (t0 + 3600)) <= 5, k
    assert hd["cache-control"] == "no-store"
    assert hd["location"] == "/api/v1/platforms/%s/keys/%s" % (pid, k["id"])
    assert hello(h, pid, key=k["key"]) == 200

    # the list never shows the key again
    st, hd, raw = call(h, "GET", "/api/v1/platforms/%s/keys" % pid,
                       key=h.op_key())
    assert st == 200
    assert k["key"].encode() not in json.dumps(raw).encode()
    assert k["key"][22:] not in json.dumps(raw)
    item = [i for i in raw["items"] if i["id"] == k["id"]][0]
    assert item == {f: k[f] for f in KEY_FIELDS}, item

    # two keys never share a secret or an id
    other = new_key(h, pid, ["features:*"])
    assert other["id"] != k["id"] and other["key"][22:] != k["key"][22:]


def test_key_pagination(h):
    pid = "keys-page"
    platform(h, pid, stack=False)
    made = sorted(new_key(h, pid, ["features:*"], name="p%d" % i)["id"]
                  for i in range(5))
    seen, cursor, pages = [], None, 0
    while True:
        q = "/platforms/%s/keys?limit=2" % pid
        if cursor:
            q += "&cursor=" + cursor
        st, _, page = op(h, "GET", q)
        assert st == 200 and set(page) == {"items", "next_cursor"}, page
        assert len(page["items"]) <= 2
        if len(page["items"]) < 2:
            assert page["next_cursor"] is None, page
        elif page["next_cursor"] is not None:  # opaque, not the raw id
            assert page["next_cursor"] != page["items"][-1]["id"], page
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made and pages == 3
    st, _, page = op(h, "GET", "/platforms/%s/keys?limit=500" % pid)
    assert [i["id"] for i in page["items"]] == made
    assert page["next_cursor"] is None
    for v in ["0", "501", "abc", "2x"]:
        problem(op(h, "GET", "/platforms/%s/keys?limit=%s" % (pid, v)), 422,
                "field \"limit\": expected an integer from 1 to 500, "
                "got \"%s\"" % v)
    for c in ["zz", "a!bc", "0" * 17]:
        problem(op(h, "GET", "/platforms/%s/keys?cursor=%s" % (pid, c)), 422,
                "field \"cursor\": not a cursor this API returned")
    problem(op(h, "GET", "/platforms/no-such-platform/keys"), 404)


def test_key_revocation(h):
    pid, other = "keys-rev", "keys-rev-b"
    platform(h, pid)
    platform(h, other)
    k = new_key(h, pid, ["features:*"])
    kb = new_key(h, other, ["features:*"])
    path = "/platforms/%s/keys/%s" % (pid, k["id"])
    assert hello(h, pid, key=k["key"]) == 200
    # not through another platform's path
    problem(op(h, "DELETE", "/platforms/%s/keys/%s" % (other, k["id"])), 404)
    problem(op(h, "DELETE", "/platforms/%s/keys/%s" % (pid, kb["id"])), 404)
    problem(op(h, "DELETE", "/platforms/%s/keys/0123456789abcdef" % pid), 404)
    problem(op(h, "DELETE", "/platforms/%s/keys/short" % pid), 404)
    assert hello(h, pid, key=k["key"]) == 200
    assert hello(h, other, key=kb["key"]) == 200

    st, hd, body = op(h, "DELETE", path)
    assert st == 204 and body is None, body
    problem(op(h, "DELETE", path), 404, 'no live key "%s"' % k["id"])
    problem(call(h, "GET", "/p/%s/hello" % pid, key=k["key"]), 401)
    st, _, page = op(h, "GET", "/platforms/%s/keys" % pid)
    item = [i for i in page["items"] if i["id"] == k["id"]][0]
    assert TIME_RE.fullmatch(item["revoked_at"]), item
    assert hello(h, other, key=kb["key"]) == 200


def test_key_validation(h):
    pid = "keys-valid"
    platform(h, pid, stack=False)
    tenant(h, pid, "t1")
    path = "/platforms/%s/keys" % pid
    ok = {"name": "n", "scopes": ["tenants:read"]}
    cases = [
        (dict(ok, role="admin"), 'unknown field "role"'),
        (dict(ok, Name="x"), 'unknown field "Name"'),
        ({"scopes": ["tenants:read"]}, "name: required, 1..128 bytes"),
        (dict(ok, name=""), "name: required, 1..128 bytes"),
        (dict(ok, name="x" * 129), "name: required, 1..128 bytes"),
        (dict(ok, name=7), "name: required, 1..128 bytes"),
        (dict(ok, name="a\nb"), "name: no control characters"),
        ({"name": "n"}, "scopes: expected a non-empty array of scopes"),
        (dict(ok, scopes=[]), "scopes: expected a non-empty array of scopes"),
        (dict(ok, scopes="tenants:read"),
         "scopes: expected a non-empty array of scopes"),
        (dict(ok, tenant="no-such"),
         'tenant: platform %s has no tenant "no-such"' % pid),
        (dict(ok, tenant="T1"), "tenant: expected a tenant id or null"),
        (dict(ok, tenant=5), "tenant: expected a tenant id or null"),
        (dict(ok, expires_in=59), "expires_in: seconds, 60..315360000"),
        (dict(ok, expires_in=315360001), "expires_in: seconds, 60..315360000"),
        (dict(ok, expires_in="3600"), "expires_in: seconds, 60..315360000"),
        (dict(ok, expires_in=3600.5), "expires_in: seconds, 60..315360000"),
    ]
    for bad_scope in ["Tenants:read", "", "x" * 65, 7, None, "a b"]:
        cases.append((dict(ok, scopes=["tenants:read", bad_scope]), None))
    for body, detail in cases:
        resp = op(h, "POST", path, body)
        got = problem(resp, 422, detail)
        if detail is None:
            assert got["detail"].startswith("scopes[1]: a scope is"), resp
    problem(op(h, "POST", path, b'{"name": '), 400)
    problem(op(h, "POST", path, b'{"name":"a","name":"b","scopes":["x"]}'), 400)
    problem(op(h, "POST", path, b'["n"]'), 422, "the body must be a JSON object")
    problem(op(h, "POST", "/platforms/no-such-platform/keys", ok), 404)
    # the bounds themselves are fine
    for body in [dict(ok, name="x" * 128, expires_in=60),
                 dict(ok, expires_in=315360000, tenant=None),
                 dict(ok, scopes=["x" * 64], tenant="t1")]:
        st, _, k = op(h, "POST", path, body)
        assert st == 201, (body, k)
    assert len(list_ids(h, path)) == 3  # nothing else was made


def test_a_key_grants_only_what_it_holds(h):
    pid = "keys-sub"
    platform(h, pid, stack=False)
    maker = new_key(h, pid, ["keys:write", "tenants:read", "features:*"])
    path = "/api/v1/platforms/%s/keys" % pid
    allowed = [["tenants:read"], ["keys:read"], ["keys:write"],
               ["features:hello:read"], ["features:*"],
               ["features:hello:*", "tenants:read"]]
    refused = [["tenants:write"], ["*"], ["platform:read"],
               ["tenants:read", "access:write"], ["features:*", "keys:*"]]
    made = []
    for scopes in allowed:
        st, _, k = call(h, "POST", path, key=maker["key"],
                        body={"name": "sub", "scopes": scopes})
        assert st == 201 and k["scopes"] == scopes, (scopes, k)
        made.append(k["id"])
    for scopes in refused:
        problem(call(h, "POST", path, key=maker["key"],
                     body={"name": "sub", "scopes": scopes}), 403,
                "a key can only grant scopes its creator holds")
    # a key with only features:* cannot make keys at all
    reader = new_key(h, pid, ["features:*", "keys:read"])
    problem(call(h, "POST", path, key=reader["key"],
                 body={"name": "sub", "scopes": ["features:*"]}), 403,
            'this credential lacks the scope "keys:write"')
    ids = set(list_ids(h, "/platforms/%s/keys" % pid))
    assert ids == set(made) | {maker["id"], reader["id"]}


def test_a_tenant_bound_key_stays_in_its_subtree(h):
    pid = "keys-ten"
    platform(h, pid)
    tenant(h, pid, "t1")
    tenant(h, pid, "t1a", parent="t1")
    tenant(h, pid, "t2")
    bound = new_key(h, pid, ["keys:write", "features:*"], tenant="t1")
    path = "/api/v1/platforms/%s/keys" % pid

    def make(**extra):
        body = {"name": "made", "scopes": ["features:*"]}
        body.update(extra)
        return call(h, "POST", path, key=bound["key"], body=body)

    st, _, own = make()            # bound to the creator's tenant
    assert st == 201 and own["tenant"] == "t1", own
    st, _, own2 = make(tenant=None)
    assert st == 201 and own2["tenant"] == "t1", own2
    st, _, below = make(tenant="t1a")
    assert st == 201 and below["tenant"] == "t1a", below
    detail = "a tenant-bound credential only makes keys within its " \
        "tenant's subtree"
    problem(make(tenant="t2"), 403, detail)
    problem(make(tenant="no-such"), 422)
    t2key = new_key(h, pid, ["features:*"], tenant="t2")
    free = new_key(h, pid, ["features:*"])

    # it lists and revokes inside its subtree only
    st, _, page = call(h, "GET", path, key=bound["key"])
    assert st == 200, page
    listed = {i["id"] for i in page["items"]}
    assert listed == {bound["id"], own["id"], own2["id"], below["id"]}
    for k in (t2key, free):
        problem(call(h, "DELETE", "%s/%s" % (path, k["id"]), key=bound["key"]),
                403, "this key belongs outside the caller's tenant")
        assert hello(h, pid, key=k["key"]) == 200
    st, _, _ = call(h, "DELETE", "%s/%s" % (path, below["id"]),
                    key=bound["key"])
    assert st == 204
    assert hello(h, pid, key=below["key"]) == 401
    # the created keys work, and are bound in turn
    assert hello(h, pid, key=own["key"]) == 200


def test_no_key_is_stored_or_logged_in_clear(h):
    pid = "keys-clear"
    platform(h, pid)
    made = [new_key(h, pid, ["features:*"], name="c%d" % i) for i in range(3)]
    bound = new_key(h, pid, ["keys:write", "features:*"])
    st, _, k = call(h, "POST", "/api/v1/platforms/%s/keys" % pid,
                    key=bound["key"],
                    body={"name": "by a key", "scopes": ["features:*"]})
    assert st == 201
    made += [bound, k]
    for m in made:
        assert hello(h, pid, key=m["key"]) == 200
    st, _, _ = op(h, "DELETE", "/platforms/%s/keys/%s" % (pid, made[0]["id"]))
    assert st == 204
    rows = dict(core_db(h, "SELECT id, token_sha256 FROM iam_keys"
                           " WHERE platform_id = ?", (pid,)))
    assert len(rows) == 5
    stored = b""
    for name in os.listdir(h.data):
        if name.startswith("core.db"):
            with open(os.path.join(h.data, name), "rb") as f:
                stored += f.read()
    # the audit log of key creation names the key, never its secret
    st, _, audit = op(h, "GET", "/audit?target=platform:%s&limit=500" % pid)
    assert st == 200
    actions = [e["action"] for e in audit["items"]]
    assert actions.count("key.create") == 5 and "key.revoke" in actions
    log = h.log_text()
    for m in made:
        assert rows[m["id"]] == hashlib.sha256(m["key"].encode()).digest()
        secret = m["key"][22:]
        for blob in (stored, log.encode(), json.dumps(audit).encode()):
            assert m["key"].encode() not in blob
            assert secret.encode() not in blob


# -- revocation and sign-out seen by every worker --------------------------------

def test_revocation_reaches_every_worker_within_a_second(h):
    pid = "rev-all"
    platform(h, pid, signup=True)
    path = "/p/%s/hello" % pid
    k = new_key(h, pid, ["features:*"])
    tok = session(h, pid, "rev@example.com")
    for _ in range(10):
        assert hello(h, pid, key=k["key"]) == 200
        assert hello(h, pid, key=tok) == 200
        assert hello(h, pid, cookie=tok) == 200
    pids, want = h.access_pids(path, 200)
    assert pids == want and len(want) == 2, (pids, want)

    st, _, _ = op(h, "DELETE", "/platforms/%s/keys/%s" % (pid, k["id"]))
    assert st == 204
    t0 = time.time()
    answers = [call(h, "GET", path, key=k["key"]) for _ in range(20)]
    assert time.time() - t0 <= 1.0
    for resp in answers:
        problem(resp, 401, "this API key is unknown, revoked or expired")
    pids, want = h.access_pids(path, 401)
    assert pids == want, "401 only from %s of %s" % (pids, want)

    st, _, _ = call(h, "POST", "/p/%s/auth/sign-out" % pid, key=tok)
    assert st == 204
    t0 = time.time()
    answers = [call(h, "GET", path, key=tok) for _ in range(10)]
    answers += [call(h, "GET", path, cookie=tok) for _ in range(10)]
    assert time.time() - t0 <= 1.0
    for resp in answers:
        problem(resp, 401, "this session has ended; sign in again")
    n = len(h.access_lines(lambda e: e.get("path") == path
                           and e.get("status") == 401, 40))
    assert n == 40
    pids, want = h.access_pids(path, 401)
    assert pids == want


# -- rate limits ---------------------------------------------------------------------

def burst(n, fn):
    """fn() n times at once from n threads; returns (answers, seconds)."""
    out = [None] * n
    gate = threading.Barrier(n + 1)

    def run(i):
        gate.wait()
        out[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    gate.wait()
    for t in threads:
        t.join()
    return out, time.monotonic() - t0


def test_key_limit_holds_exactly_across_workers(h):
    pid = "rl-free"
    platform(h, pid, plan=None)  # the default plan
    assert op(h, "GET", "/platforms/" + pid)[2]["plan"] == "free"
    k = new_key(h, pid, ["features:hello:read"])
    path = "/p/%s/hello" % pid
    answers, secs = burst(150, lambda: call(h, "GET", path, key=k["key"]))
    ok = [a for a in answers if a[0] == 200]
    limited = [a for a in answers if a[0] != 200]
    # free: a key holds 100 and gains 50 a second
    assert 100 <= len(ok) <= 100 + int(50 * secs) + 1, (len(ok), secs)
    assert len(ok) < 150, secs  # the burst must outrun the refill
    for st, hd, body in answers:
        assert hd["ratelimit-limit"] == "100", hd
        assert 0 <= int(hd["ratelimit-remaining"]) <= 99, hd
        assert 0 <= int(hd["ratelimit-reset"]) <= 2, hd
    for resp in limited:
        problem(resp, 429, "the API key rate limit is reached; retry in 1 s")
        assert resp[1]["retry-after"] == "1"
        assert resp[1]["ratelimit-remaining"] == "0"
    for resp in ok:
        assert resp[2] == HELLO
    pids, want = h.access_pids(path, 200)
    assert pids == want, "only %s of %s served" % (pids, want)
    pids, _ = h.access_pids(path, 429)
    assert pids  # some worker refused

    # another key of the platform has its own bucket
    k2 = new_key(h, pid, ["features:hello:read"])
    st, hd, _ = call(h, "GET", path, key=k2["key"])
    assert st == 200 and hd["ratelimit-remaining"] == "99", hd
    # and the operator is never limited (nor told about limits)
    for _ in range(3):
        st, hd, _ = op(h, "GET", "/platforms/" + pid)
        assert st == 200 and "ratelimit-limit" not in hd


def test_anonymous_limit_is_per_address(h):
    pid = "rl-anon"
    platform(h, pid, plan=None)
    path = "/p/%s/auth/sign-in" % pid
    body = {"email": "x@example.com"}  # refused at once: no password hashed
    t0 = time.monotonic()
    answers = [call(h, "POST", path, body=body) for _ in range(90)]
    secs = time.monotonic() - t0
    passed = [a for a in answers if a[0] == 422]
    limited = [a for a in answers if a[0] != 422]
    # free: an anonymous client holds 60 and gains 20 a second
    assert 60 <= len(passed) <= 60 + int(20 * secs) + 1, (len(passed), secs)
    assert limited, secs
    assert all(a[1]["ratelimit-limit"] == "60" for a in answers)
    for resp in limited:
        problem(resp, 429,
                "the anonymous client rate limit is reached; retry in 1 s")
        assert resp[1]["retry-after"] == "1"
    # another address has its own bucket
    st, hd, _ = call(h, "POST", path, body=body, source="127.0.0.2")
    assert st == 422 and hd["ratelimit-limit"] == "60", hd
    assert hd["ratelimit-remaining"] == "59"
    # a key of the platform is limited as a key, not as the address
    k = new_key(h, pid, ["features:*"])
    st, hd, _ = call(h, "POST", path, body=body, key=k["key"])
    assert st == 422 and hd["ratelimit-limit"] == "100", hd


def test_a_plan_change_reaches_every_worker(h):
    pid = "rl-plan"
    platform(h, pid, plan=None)
    k = new_key(h, pid, ["features:*"])["key"]
    for _ in range(4):  # fresh connections: both workers
        st, hd, _ = call(h, "GET", "/p/%s/hello" % pid, key=k)
        assert st == 200 and hd["ratelimit-limit"] == "100", hd
    st, _, p = op(h, "PATCH", "/platforms/" + pid, {"plan": "pro"})
    assert st == 200 and p["plan"] == "pro", p
    for _ in range(6):
        st, hd, _ = call(h, "GET", "/p/%s/hello" % pid, key=k)
        assert st == 200 and hd["ratelimit-limit"] == "1000", hd


def test_a_foreign_credential_counts_as_anonymous(h):
    # A key of another (unmetered) platform is not a credential of this
    # one: on this platform's public routes it must not lift the
    # anonymous limit, nor spend its own platform's allowance.
    pid, other = "rl-victim", "rl-other"
    platform(h, pid, plan=None)
    platform(h, other)
    k = new_key(h, other, ["*"])
    path = "/p/%s/auth/sign-in" % pid
    body = {"email": "x@example.com"}
    source = "127.0.0.3"
    for _ in range(60):
        assert call(h, "POST", path, body=body, source=source)[0] in (422, 429)
    # The bucket refills while a loaded machine sends the 60: drain it to
    # the first 429, then ask with the key at once. A token that came back
    # in between lets the keyed call through as it would an anonymous one:
    # then it was still counted against the anonymous limit (its
    # RateLimit-Limit is the anonymous 60, not the other platform's), and
    # the next try is refused. A key counted as a credential of this
    # platform, or of its own, passes every time.
    for _ in range(5):
        while call(h, "POST", path, body=body, source=source)[0] != 429:
            pass
        resp = call(h, "POST", path, body=body, source=source, key=k["key"])
        if resp[0] == 429:
            break
        assert resp[1].get("ratelimit-limit") == "60", (
            "the foreign key passed outside the anonymous limit", resp)
    problem(resp, 429)
    assert resp[1]["ratelimit-limit"] == "60", resp


def tiny_plugins(tmp_path, **config):
    """A copy of the built core plugins with IAM's config changed (and
    billing's, for plans)."""
    dst = tmp_path / "plugins"
    shutil.copytree(PLUGINS, str(dst))
    pj = dst / "iam" / "package.json"
    with open(str(pj)) as f:
        pkg = json.load(f)
    for k, v in config.items():
        if isinstance(v, dict):
            pkg["config"][k].update(v)
        else:
            pkg["config"][k] = v
    with open(str(pj), "w") as f:
        json.dump(pkg, f)
    # The plans are billing's now: the same rates there (a platform's plan
    # must be one of billing's, and IAM takes its rates from billing).
    plans = config.get("plans")
    if plans:
        bj = dst / "billing" / "package.json"
        with open(str(bj)) as f:
            bpkg = json.load(f)
        bpkg["config"].setdefault("plans", {}).update({
            name: {"rates": {k: {"rate": r, "burst": b}
                             for k, (r, b) in rates.items()}}
            for name, rates in plans.items()})
        with open(str(bj), "w") as f:
            json.dump(bpkg, f)
    return str(dst)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One worker, a session cache of 2 and a plan with small limits that
    barely refill."""
    d = tmp_path_factory.mktemp("tiny")
    plugins = tiny_plugins(d, session_cache_max=2, plans={"tiny": {
        "platform": [0.1, 6], "key": [0.1, 4], "user": [0.1, 4],
        "anonymous": [0.1, 3]}})
    host = started(Host(d, workers=1, core=True,
                        config={"plugin_dir": plugins}))
    yield host
    stopped(host)


def test_platform_limit_is_shared_by_its_keys(tiny):
    h = tiny
    pid = "rl-tiny"
    platform(h, pid, plan="tiny")
    k1, k2, k3 = [new_key(h, pid, ["features:*"])["key"] for _ in range(3)]
    path = "/p/%s/hello" % pid
    got = []
    for key in (k1,) * 5 + (k2,) * 3 + (k3,):
        st, hd, body = call(h, "GET", path, key=key)
        got.append((st, hd["ratelimit-limit"], hd["ratelimit-remaining"]))
        if st == 429:
            who = "API key" if len(got) == 5 else "platform"
            assert problem((st, hd, body), 429)["detail"].startswith(
                "the %s rate limit is reached; retry in " % who), body
            # 1 token at 0.1 a second
            assert 9 <= int(hd["retry-after"]) <= 11, hd
    # k1: 4 of its own 4; k2: 2 left of the platform's 6; k3: none left
    assert got == [(200, "4", "3"), (200, "4", "2"), (200, "4", "1"),
                   (200, "4", "0"), (429, "4", "0"),
                   (200, "6", "1"), (200, "6", "0"), (429, "6", "0"),
                   (429, "6", "0")], got


# -- CORS ------------------------------------------------------------------------

def preflight(h, path, origin, method="GET", req_headers=None, host=None):
    hd = {"Origin": origin, "Access-Control-Request-Method": method}
    if req_headers is not None:
        hd["Access-Control-Request-Headers"] = req_headers
    return call(h, "OPTIONS", path, headers=hd, host=host)


CORS = ("access-control-allow-origin", "access-control-allow-credentials",
        "access-control-allow-methods", "access-control-allow-headers",
        "access-control-max-age", "access-control-expose-headers")


def test_cors_preflight(h):
    pid = "cors-a"
    platform(h, pid, origins=["https://app.example.com"])
    path = "/p/%s/hello" % pid
    allowed = ["https://www.cors-a.nno.localhost",
               "https://www.cors-a.nno.localhost:8443",
               "http://a.b.cors-a.nno.localhost:1234",
               "http://cors-a.nno.localhost",
               "https://WWW.Cors-A.nno.localhost",
               "https://app.example.com"]
    for origin in allowed:
        st, hd, body = preflight(h, path, origin, "PUT",
                                 "authorization, content-type")
        assert (st, body) == (204, None), (origin, st, body)
        assert hd["access-control-allow-origin"] == origin
        assert hd["access-control-allow-credentials"] == "true"
        assert hd["access-control-allow-methods"] == "PUT"
        assert hd["access-control-allow-headers"] == \
            "authorization, content-type"
        assert hd["access-control-max-age"] == "600"
        assert "Origin" in hd["vary"].split(", "), hd
    # on the platform's own host too, and without requested headers
    st, hd, _ = preflight(h, "/hello", "https://web.cors-a.nno.localhost",
                          host="api.cors-a.nno.localhost")
    assert st == 204 and "access-control-allow-headers" not in hd, hd
    assert hd["access-control-allow-origin"] == \
        "https://web.cors-a.nno.localhost"

    refused = ["https://evil.example", "null", "https://cors-b.nno.localhost",
               "https://www.cors-b.nno.localhost",
               "https://xcors-a.nno.localhost", "https://nno.localhost",
               "https://cors-a.nno.localhost.evil.example",
               "https://www.cors-a.nno.localhost/path",
               "http://app.example.com", "https://app.example.com:444",
               "https://app.example.com.evil.example", "cors-a.nno.localhost"]
    for origin in refused:
        resp = preflight(h, path, origin)
        body = problem(resp, 403)
        assert "origin may not call this platform" in body["detail"], origin
        assert not any(c in resp[1] for c in CORS), (origin, resp)
        assert "Origin" in resp[1]["vary"].split(", ")
    origin = "https://app.example.com"
    for method, rh, detail in [
            ("TRACE", None, "Access-Control-Request-Method is not an "
             "allowed method"),
            ("get", None, "Access-Control-Request-Method is not an "
             "allowed method"),
            ("GET", "x-a;b", "Access-Control-Request-Headers is not a list "
             "of header names")]:
        resp = preflight(h, path, origin, method, rh)
        problem(resp, 403, detail)
        assert "access-control-allow-origin" not in resp[1]

    # the core API is not for browsers: no CORS there
    st, hd, _ = preflight(h, "/api/v1/platforms/" + pid, origin)
    assert st != 204 and not any(c in hd for c in CORS), hd
    assert "vary" not in hd
    st, hd, _ = call(h, "GET", "/api/v1/platforms/" + pid, key=h.op_key(),
                     headers={"Origin": origin})
    assert st == 200 and not any(c in hd for c in CORS), hd

    # an origin dropped from the policy is refused by every worker at once
    st, _, a = op(h, "PUT", "/platforms/%s/access" % pid, {"cors_origins": []})
    assert st == 200 and a["cors_origins"] == []
    for _ in range(6):
        problem(preflight(h, path, origin), 403)
    assert preflight(h, path, "https://www.cors-a.nno.localhost")[0] == 204


def test_cors_on_normal_requests(h):
    pid = "cors-n"
    platform(h, pid, origins=["https://app.example.com"])
    path = "/p/%s/hello" % pid
    k = new_key(h, pid, ["features:*"])["key"]
    expose = ("X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
              "RateLimit-Reset, Retry-After")
    for origin in ["https://app.example.com", "https://x.cors-n.nno.localhost"]:
        st, hd, body = call(h, "GET", path, key=k, headers={"Origin": origin})
        assert (st, body) == (200, HELLO)
        assert hd["access-control-allow-origin"] == origin
        assert hd["access-control-allow-credentials"] == "true"
        assert hd["access-control-expose-headers"] == expose
        assert hd["vary"] == "Origin"
        # kept on refusals, so the page can read the error
        resp = call(h, "GET", path, headers={"Origin": origin})
        problem(resp, 401)
        assert resp[1]["access-control-allow-origin"] == origin
        assert resp[1]["vary"] == "Origin"
    for hd_extra in [{}, {"Origin": "https://evil.example"}]:
        st, hd, body = call(h, "GET", path, key=k, headers=hd_extra)
        assert (st, body) == (200, HELLO)
        assert hd["vary"] == "Origin", hd
        assert not any(c in hd for c in CORS), hd


def test_cookie_changes_must_come_from_the_platform(h):
    pid = "cors-c"
    platform(h, pid, signup=True, origins=["https://app.example.com"])
    tok = session(h, pid, "csrf@example.com")
    other = sign_in(h, pid, "csrf@example.com")
    out = "/p/%s/auth/sign-out" % pid
    detail = ("a cookie-authenticated change must come from an origin of the "
              "platform")
    for hd_extra in [{"Origin": "https://evil.example"},
                     {"Origin": "https://www.cors-b.nno.localhost"},
                     {"Origin": "null"},
                     {"Sec-Fetch-Site": "cross-site"},
                     {"Sec-Fetch-Site": "same-site"}]:
        problem(call(h, "POST", out, cookie=tok, headers=hd_extra), 403,
                detail)
    # safe methods with the cookie are fine from anywhere
    st, _, me = call(h, "GET", "/p/%s/auth/session" % pid, cookie=tok,
                     headers={"Origin": "https://evil.example"})
    assert st == 200 and me["user"]["email"] == "csrf@example.com"
    assert hello(h, pid, cookie=tok) == 200  # still signed in
    # a bearer token is not sent by the browser on its own: no check
    st, _, _ = call(h, "POST", out, key=other,
                    headers={"Origin": "https://evil.example"})
    assert st == 204 and hello(h, pid, key=other) == 401
    # from the platform's own origin or a listed one, the change is made
    for hd_extra in [{"Origin": "https://app.example.com"},
                     {"Origin": "https://www.cors-c.nno.localhost"},
                     {"Sec-Fetch-Site": "same-origin"}]:
        t = sign_in(h, pid, "csrf@example.com")
        st, _, _ = call(h, "POST", out, cookie=t, headers=hd_extra)
        assert st == 204, hd_extra
        assert hello(h, pid, cookie=t) == 401
    st, _, _ = call(h, "POST", out, cookie=tok,
                    headers={"Origin": "https://cors-c.nno.localhost"})
    assert st == 204 and hello(h, pid, cookie=tok) == 401


# -- the access policy ---------------------------------------------------------------

def test_access_policy_api(h):
    pid = "acc-a"
    platform(h, pid, stack=False)
    tenant(h, pid, "t1")
    path = "/api/v1/platforms/%s/access" % pid
    st, _, a = call(h, "GET", path, key=h.op_key())
    assert st == 200 and set(a) == ACCESS_FIELDS, a
    assert a == {"platform": pid, "signup": False, "cors_origins": [],
                 "user_scopes": ["features:*"], "session_idle_s": 3600,
                 "session_absolute_s": 604800}
    # PUT changes the fields it names
    st, _, a = call(h, "PUT", path, key=h.op_key(),
                    body={"signup": True,
                          "cors_origins": ["https://a.example",
                                           "http://localhost:3000"]})
    assert st == 200 and a["signup"] is True
    assert a["cors_origins"] == ["https://a.example", "http://localhost:3000"]
    st, _, a = call(h, "PUT", path, key=h.op_key(),
                    body={"user_scopes": ["features:hello:read"]})
    assert st == 200 and a["signup"] is True and len(a["cors_origins"]) == 2
    assert a["user_scopes"] == ["features:hello:read"]
    assert call(h, "GET", path, key=h.op_key())[2] == a

    for body in [{"signup": "yes"}, {"signup": 1}, {"cors_origins": "x"},
                 {"cors_origins": ["https://A.example"]},
                 {"cors_origins": ["https://a.example/"]},
                 {"cors_origins": ["ftp://a.example"]},
                 {"cors_origins": ["https://"]},
                 {"cors_origins": ['https://a"b']},
                 {"cors_origins": ["https://a%d.example" % i
                                   for i in range(17)]},
                 {"user_scopes": ["Features:*"]}, {"user_scopes": "x"},
                 {"signup": True, "extra": 1}]:
        problem(call(h, "PUT", path, key=h.op_key(), body=body), 422)
    assert call(h, "GET", path, key=h.op_key())[2] == a  # unchanged

    reader = new_key(h, pid, ["access:read"])["key"]
    writer = new_key(h, pid, ["access:write", "features:*"])["key"]
    bound = new_key(h, pid, ["access:write"], tenant="t1")["key"]
    assert call(h, "GET", path, key=reader)[0] == 200
    assert call(h, "GET", path, key=writer)[0] == 200  # write covers read
    problem(call(h, "PUT", path, key=reader, body={"signup": False}), 403,
            'this credential lacks the scope "access:write"')
    problem(call(h, "PUT", path, key=bound, body={"signup": False}), 403,
            'this credential is bound to tenant "t1" and cannot change what '
            'belongs to the whole platform')
    st, _, a2 = call(h, "PUT", path, key=writer, body={"signup": False})
    assert st == 200 and a2["signup"] is False
    # ... but it cannot give users (who may sign themselves up) more than
    # it holds itself
    narrow = new_key(h, pid, ["access:write"])["key"]
    for key, scopes in [(writer, ["*"]), (writer, ["keys:write"]),
                        (writer, ["features:*", "access:write",
                                  "tenants:read"]),
                        (narrow, ["features:hello:read"]),
                        (narrow, [])]:  # [] is the default, features:*
        problem(call(h, "PUT", path, key=key, body={"user_scopes": scopes}),
                403, "user_scopes: a credential can only give users scopes "
                "it holds")
    assert call(h, "GET", path, key=h.op_key())[2] == a2  # unchanged
    st, _, a3 = call(h, "PUT", path, key=writer,
                     body={"user_scopes": ["features:hello:*",
                                           "access:write"]})
    assert st == 200, a3
    assert a3["user_scopes"] == ["features:hello:*", "access:write"]
    st, _, a4 = call(h, "PUT", path, key=writer, body={"user_scopes": []})
    assert st == 200 and a4["user_scopes"] == ["features:*"], a4
    # turning sign-up on hands user_scopes (features:*) to anyone: the
    # narrow key may not (test_authz_hardening.py has the whole rule)
    problem(call(h, "PUT", path, key=narrow,
                 body={"signup": True, "cors_origins": []}), 403)
    st, _, a5 = call(h, "PUT", path, key=writer,
                     body={"signup": True, "cors_origins": []})
    assert st == 200 and a5["signup"] is True, a5


# -- the session cache ---------------------------------------------------------------

def test_session_cache_is_bounded(tiny):
    # The host configuration cannot override a core plugin's config, so
    # this host runs a copy of the plugins with session_cache_max = 2 and
    # one worker. A session deleted from core.db behind IAM's back (no
    # change is announced) keeps working while it is cached, and stops as
    # soon as newer sessions push it out.
    h = tiny
    pid = "sc-a"
    platform(h, pid, signup=True)
    s1 = session(h, pid, "cache@example.com")
    s2, s3, s4 = [sign_in(h, pid, "cache@example.com") for _ in range(3)]
    assert hello(h, pid, key=s1) == 200
    assert hello(h, pid, key=s2) == 200
    for s in (s1, s2):
        core_db(h, "DELETE FROM iam_sessions WHERE id = ?", (s[5:21],))
    assert core_db(h, "SELECT count(*) FROM iam_sessions") == [(2,)]
    assert hello(h, pid, key=s1) == 200  # both cached
    assert hello(h, pid, key=s2) == 200
    assert hello(h, pid, key=s3) == 200  # read from core.db: s1 goes
    assert hello(h, pid, key=s1) == 401
    assert hello(h, pid, key=s2) == 200
    assert hello(h, pid, key=s4) == 200  # s2 goes
    assert hello(h, pid, key=s2) == 401
    assert hello(h, pid, key=s3) == 200 and hello(h, pid, key=s4) == 200


def test_expired_sessions_are_refused(tiny):
    # Expiry as stored in core.db, read when the session is not cached (a
    # cache of 2 on this host: two newer sessions push it out).
    h = tiny
    pid = "sx-a"
    platform(h, pid, signup=True)
    idle = session(h, pid, "idle@example.com")
    old = sign_in(h, pid, "idle@example.com")
    live = sign_in(h, pid, "idle@example.com")
    now = int(time.time())
    core_db(h, "UPDATE iam_sessions SET idle_expires = ? WHERE id = ?",
            (now - 1, idle[5:21]))
    core_db(h, "UPDATE iam_sessions SET expires_at = ?, idle_expires = ?"
            " WHERE id = ?", (now - 1, now - 1, old[5:21]))
    for _ in range(2):  # fill the cache with others
        assert hello(h, pid, key=sign_in(h, pid, "idle@example.com")) == 200
    assert hello(h, pid, key=idle) == 401  # idle too long
    assert hello(h, pid, key=old) == 401   # past its absolute expiry
    assert hello(h, pid, key=live) == 200
    st, hd, body = call(h, "GET", "/p/%s/hello" % pid, key=idle)
    problem((st, hd, body), 401, "this session has ended; sign in again")
