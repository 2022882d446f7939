"""The registry core plugin, black box through the gateway: the operator API
under /api/v1 and platform routing, as registry/README.md specifies them."""
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import threading
import time
import urllib.parse

import pytest

from conftest import BUILD, Host, parse_responses

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,30}[a-z0-9]")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PLATFORM_KEYS = {"id", "name", "class", "status", "plan", "owner", "branding",
                 "created_at", "updated_at", "version"}


def unbranded(p):
    """A platform as a list shows it: without its branding."""
    return {k: v for k, v in p.items() if k != "branding"}


TENANT_KEYS = {"id", "platform", "parent", "name", "status", "created_at",
               "updated_at", "version"}
ACTIVATION_KEYS = {"platform", "stack", "version", "activated_at",
                   "activated_by"}
AUDIT_KEYS = {"seq", "at", "actor", "action", "target", "request_id", "detail"}
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
          404: "Not Found", 409: "Conflict", 412: "Precondition Failed",
          413: "Content Too Large", 422: "Unprocessable Content"}
HELLO = {"message": "hello, world"}


def make_plans(h, *names):
    """A platform's plan must be one of billing's: make them."""
    for name in names:
        st, _, body = h.api("POST", "/plans", {"name": name})
        assert st in (201, 409), body


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A shared host with the core plugins (registry) and 2 workers. Tests
    that use it pick their own platform ids."""
    h = Host(tmp_path_factory.mktemp("reg"), workers=2, core=True)
    h.start()
    make_plans(h, "team", "team-2", "p" * 32, *["p%d" % i for i in range(12)])
    yield h
    h.stop()


# -- helpers -----------------------------------------------------------------

def problem(resp, status, field=None):
    """Assert `resp` (status, headers, body) is an RFC 9457 problem."""
    st, h, body = resp
    assert st == status, resp
    assert h["content-type"] == "application/problem+json", resp
    assert isinstance(body, dict), resp
    assert body["status"] == status, resp
    assert body["title"] == TITLES[status], resp
    assert body["request_id"] == h["x-request-id"], resp
    if field is not None:
        assert body.get("field") == field, resp
        assert body["detail"].startswith('field "%s": ' % field), resp
    return body


def bad_request_or_422(resp, field):
    """For cases the spec leaves open between 400 and 422 (a 422 must then
    name the field)."""
    st = resp[0]
    assert st in (400, 422), resp
    body = problem(resp, st)
    if st == 422:
        assert body.get("field") == field, resp
        assert '"%s"' % field in body["detail"], resp
    return body


def create_platform(h, pid, name=None, **extra):
    body = {"id": pid, "name": name or "Platform " + pid}
    body.update(extra)
    st, hd, p = h.api("POST", "/platforms", body)
    assert st == 201, (st, p)
    return p


def create_tenant(h, pid, tid, parent=None, name=None):
    body = {"id": tid, "name": name or "Tenant " + tid}
    if parent is not None:
        body["parent"] = parent
    st, _, t = h.api("POST", "/platforms/%s/tenants" % pid, body)
    assert st == 201, (st, t)
    return t


def list_all(h, path, limit=500):
    """Every item of a paged list, following next_cursor."""
    items, cursor = [], None
    for _ in range(1000):
        sep = "&" if "?" in path else "?"
        q = "%s%slimit=%d" % (path, sep, limit)
        if cursor is not None:
            q += "&cursor=" + urllib.parse.quote(cursor, safe="")
        st, _, page = h.api("GET", q)
        assert st == 200, (q, st, page)
        assert set(page) == {"items", "next_cursor"}, page
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


def audit_for(h, target, action=None):
    q = "/audit?target=" + urllib.parse.quote(target, safe="")
    if action:
        q += "&action=" + urllib.parse.quote(action, safe="")
    return list_all(h, q)


def activate(h, pid, stack="default", version=None):
    body = {"stack": stack}
    if version is not None:
        body["version"] = version
    return h.api("POST", "/platforms/%s/stacks" % pid, body)


def fresh_statuses(h, path, n, host=None, key=None):
    """n requests, each on a new connection (spread over the workers)."""
    out = []
    for _ in range(n):
        st, hd, body = h.request("GET", path, host=host, key=key)
        out.append((st, hd, body))
    return out


def feature_key(h, pid):
    """A key of `pid` that may call every feature of the platform."""
    return h.platform_key(pid)["key"]


# -- authentication and the operator key --------------------------------------

def test_requests_without_a_valid_key_are_refused(reg):
    key = reg.op_key()
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    malformed = [
        key,                          # no scheme
        "Bearer",                     # no credentials
        "Token " + key,               # another scheme
        "Basic " + key,
        "Bearer " + key + " extra",   # trailing garbage
        "Bearer " + key + "x",        # the key plus a character
        "Bearer " + key[:-1],         # the key minus a character
    ]
    cases = [("no header", {}), ("wrong key", {"Authorization": "Bearer " + wrong})]
    cases += [("malformed %r" % v[:12], {"Authorization": v}) for v in malformed]
    for what, hdrs in cases:
        for method, path, body in [("GET", "/platforms", None),
                                   ("POST", "/platforms", {"id": "auth-x", "name": "X"}),
                                   ("GET", "/stacks", None),
                                   ("GET", "/audit", None)]:
            resp = reg.api(method, path, body, key=False, headers=hdrs)
            problem(resp, 401)
            assert re.match(r"Bearer(\s|$)", resp[1]["www-authenticate"]), (what, resp)
    # None of those created anything.
    assert reg.api("GET", "/platforms/auth-x")[0] == 404
    st, _, page = reg.api("GET", "/platforms")
    assert st == 200


def test_operator_key_file_and_log(reg):
    path = os.path.join(reg.data, "operator.key")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    key = reg.op_key()
    # 256 random bits take at least 43 characters in any text encoding.
    assert len(key) >= 43 and not re.search(r"\s", key)
    # Use it, and fail with near misses, so every code path may log.
    assert reg.api("GET", "/platforms")[0] == 200
    assert reg.api("GET", "/platforms", key=key[:-1])[0] == 401
    assert reg.api("POST", "/platforms", {"id": "logkey", "name": "k"})[0] == 201
    assert reg.api("DELETE", "/platforms/logkey")[0] == 204
    # "logging where (never the key)"
    text = reg.log_text()
    assert "operator.key" in text
    assert key not in text
    assert key[:-1] not in text


def test_operator_key_stored_as_hash_only(make_host):
    h = make_host(core=True, workers=1).start()
    key = h.op_key()
    assert h.api("GET", "/platforms")[0] == 200
    h.stop()
    found = []
    for root, _, files in os.walk(h.data):
        for name in files:
            p = os.path.join(root, name)
            if p == os.path.join(h.data, "operator.key"):
                continue
            with open(p, "rb") as f:
                data = f.read()
            if key.encode() in data:
                found.append(p)
    assert found == []
    assert key not in h.log_text()


# -- platforms ----------------------------------------------------------------

def test_platform_lifecycle_and_audit(reg):
    pid = "life-acme"
    rid = lambda step: "rid-life-" + step  # noqa: E731
    st, h, p = reg.api("POST", "/platforms", {"id": pid, "name": "Acme"},
                       headers={"X-Request-Id": rid("create")})
    assert st == 201, p
    assert h["content-type"] == "application/json"
    assert h["x-request-id"] == rid("create")
    assert h["location"].endswith("/api/v1/platforms/" + pid), h
    assert set(p) == PLATFORM_KEYS, p
    assert p["id"] == pid and p["name"] == "Acme"
    assert p["class"] == "platform" and p["status"] == "active"
    assert p["plan"] == "free" and p["owner"] is None and p["version"] == 1
    assert TIME_RE.fullmatch(p["created_at"]) and p["updated_at"] == p["created_at"]
    created = p

    loc = urllib.parse.urlsplit(h["location"]).path

    # get, with its ETag; the Location answers the same.
    st, h, got = reg.api("GET", "/platforms/" + pid)
    assert st == 200 and got == created
    assert h["etag"] == '"v1"'
    assert reg.api("GET", loc)[2] == created

    # list (without branding: a logo is large)
    items = list_all(reg, "/platforms")
    assert [x for x in items if x["id"] == pid] == [unbranded(created)]
    ids = [x["id"] for x in items]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # patch with the right ETag
    st, h, p = reg.api("PATCH", "/platforms/" + pid,
                       {"name": "Acme Corp", "plan": "pro", "owner": "ops@acme.test"},
                       headers={"If-Match": '"v1"', "X-Request-Id": rid("patch1")})
    assert st == 200, p
    assert p["version"] == 2 and p["name"] == "Acme Corp"
    assert p["plan"] == "pro" and p["owner"] == "ops@acme.test"
    assert p["id"] == pid and p["class"] == "platform" and p["status"] == "active"
    assert p["created_at"] == created["created_at"]
    assert p["updated_at"] >= created["created_at"]
    st, h, got = reg.api("GET", "/platforms/" + pid)
    assert got == p and h["etag"] == '"v2"'

    # a stale ETag (and anything that is not the current one) -> 412, no change
    for tag in ['"v1"', '"v3"', "v2", '"2"', 'W/"v1"']:
        resp = reg.api("PATCH", "/platforms/" + pid, {"name": "Stale"},
                       headers={"If-Match": tag, "X-Request-Id": rid("stale")})
        problem(resp, 412)
    assert reg.api("GET", "/platforms/" + pid)[2] == p

    # patch without If-Match
    st, _, p = reg.api("PATCH", "/platforms/" + pid, {"owner": "new@acme.test"},
                       headers={"X-Request-Id": rid("patch2")})
    assert st == 200, p
    assert p["version"] == 3 and p["owner"] == "new@acme.test"
    assert p["name"] == "Acme Corp" and p["plan"] == "pro"
    assert reg.api("GET", "/platforms/" + pid)[1]["etag"] == '"v3"'

    # suspend / resume
    st, _, p = reg.api("POST", "/platforms/%s/suspend" % pid,
                       headers={"X-Request-Id": rid("suspend")})
    assert st == 200, p
    assert set(p) == PLATFORM_KEYS and p["status"] == "suspended" and p["version"] == 4
    st, _, page = reg.api("GET", "/platforms?status=suspended&limit=500")
    assert st == 200 and pid in [x["id"] for x in page["items"]]
    assert all(x["status"] == "suspended" for x in page["items"])
    st, _, page = reg.api("GET", "/platforms?status=active&limit=500")
    assert st == 200 and pid not in [x["id"] for x in page["items"]]
    st, _, p = reg.api("POST", "/platforms/%s/resume" % pid,
                       headers={"X-Request-Id": rid("resume")})
    assert st == 200, p
    assert p["status"] == "active" and p["version"] == 5

    # delete
    st, h, body = reg.api("DELETE", "/platforms/" + pid,
                          headers={"X-Request-Id": rid("delete")})
    assert st == 204 and body is None
    problem(reg.api("GET", "/platforms/" + pid), 404)
    problem(reg.api("DELETE", "/platforms/" + pid), 404)
    problem(reg.api("PATCH", "/platforms/" + pid, {"name": "x"}), 404)
    problem(reg.api("POST", "/platforms/%s/suspend" % pid), 404)

    # the audit log: one entry per change, newest first, with our request ids
    entries = audit_for(reg, "platform:" + pid)
    # a change of plan has a row of its own, with the same request id
    moves = [e for e in entries if e["action"] == "platform.plan"]
    assert [(e["request_id"], e["detail"]) for e in moves] == [
        (rid("patch1"), {"from": "free", "to": "pro"})], moves
    entries = [e for e in entries if e["action"] != "platform.plan"]
    assert [e["request_id"] for e in entries] == [
        rid("delete"), rid("resume"), rid("suspend"), rid("patch2"),
        rid("patch1"), rid("create")], entries
    for e in entries:
        assert set(e) == AUDIT_KEYS, e
        assert e["actor"] == "operator" and e["target"] == "platform:" + pid
        assert e["action"].startswith("platform.") and TIME_RE.fullmatch(e["at"])
        assert isinstance(e["detail"], dict), e
    assert entries[-1]["action"] == "platform.create"
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    # suspend and resume are different actions, as are create/update/delete
    assert len({e["action"] for e in entries}) == 5
    assert entries[3]["action"] == entries[4]["action"]  # both updates
    st, _, page = reg.api("GET", "/audit?action=platform.create&limit=500")
    assert st == 200 and all(e["action"] == "platform.create" for e in page["items"])
    got = audit_for(reg, "platform:" + pid, "platform.create")
    assert [e["request_id"] for e in got] == [rid("create")]
    # pages of 1 give the same entries, newest first
    paged = list_all(reg, "/audit?target=" + urllib.parse.quote("platform:" + pid),
                     limit=1)
    assert [e for e in paged if e["action"] != "platform.plan"] == entries
    every = list_all(reg, "/audit", limit=3)
    seqs = [e["seq"] for e in every]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)


def test_generated_ids_and_optional_fields(reg):
    st, h, p = reg.api("POST", "/platforms", {"name": "No id"})
    assert st == 201, p
    assert ID_RE.fullmatch(p["id"]), p
    assert h["location"].endswith("/api/v1/platforms/" + p["id"])
    assert reg.api("GET", "/platforms/" + p["id"])[2] == p
    st, _, q = reg.api("POST", "/platforms", {"name": "No id"})
    assert st == 201 and q["id"] != p["id"]

    p = create_platform(reg, "opt-all", "Opt", **{"class": "user_project",
                                                  "plan": "team-2", "owner": "o"})
    assert p["class"] == "user_project" and p["plan"] == "team-2"
    assert p["owner"] == "o"
    st, _, page = reg.api("GET", "/platforms?class=user_project&limit=500")
    assert st == 200 and [x["id"] for x in page["items"]] == ["opt-all"]
    st, _, page = reg.api("GET", "/platforms?class=platform&limit=500")
    assert st == 200 and "opt-all" not in [x["id"] for x in page["items"]]

    # boundaries that are valid
    for pid in ["abc", "a" * 32, "0-9", "a-b-c-d"]:
        create_platform(reg, pid)
    p = create_platform(reg, "utf8-name", "é" * 128)  # 128 characters, 256 bytes
    assert p["name"] == "é" * 128
    create_platform(reg, "plan32", plan="p" * 32)
    create_platform(reg, "owner128", owner="o" * 128)


def test_platform_validation(reg):
    def post(body):
        return reg.api("POST", "/platforms", body)

    # the spec's own example, word for word
    body = problem(post({"id": "A!", "name": "x"}), 422, "id")
    assert body["detail"] == ('field "id": expected 3 to 32 characters of '
                              '[a-z0-9-], got "A!"')
    for bad in ["ab", "a" * 33, "Acme", "acmE", "-acme", "acme-", "..", "a..b",
                "a.b", "a_b", "a b", "a/b", "", "é" * 3]:
        problem(post({"id": bad, "name": "x"}), 422, "id")
    for bad in ["enterprise", "", "Platform", "user-project"]:
        problem(post({"id": "cls-x", "name": "x", "class": bad}), 422, "class")
    problem(post({"id": "st-x", "name": "x", "status": "active"}), 422, "status")
    problem(post({"id": "unk-x", "name": "x", "colour": "red"}), 422, "colour")
    problem(post({"id": "ver-x", "name": "x", "version": 1}), 422, "version")
    # wrong types
    problem(post({"id": 123, "name": "x"}), 422, "id")
    problem(post({"id": "typ-x", "name": 5}), 422, "name")
    problem(post({"id": "typ-x", "name": ["x"]}), 422, "name")
    problem(post({"id": "typ-x", "name": None}), 422, "name")
    problem(post({"id": "typ-x", "name": "x", "class": 1}), 422, "class")
    problem(post({"id": "typ-x", "name": "x", "plan": True}), 422, "plan")
    problem(post({"id": "typ-x", "name": "x", "owner": 7}), 422, "owner")
    problem(post({"id": "typ-x", "name": "x", "owner": {"a": 1}}), 422, "owner")
    # missing or out-of-range values
    problem(post({"id": "nm-x"}), 422, "name")
    problem(post({"id": "nm-x", "name": ""}), 422, "name")
    problem(post({"id": "nm-x", "name": "n" * 129}), 422, "name")
    problem(post({"id": "nm-x", "name": "é" * 129}), 422, "name")
    problem(post({"id": "pl-x", "name": "x", "plan": "Pro!"}), 422, "plan")
    problem(post({"id": "pl-x", "name": "x", "plan": "p" * 33}), 422, "plan")
    problem(post({"id": "pl-x", "name": "x", "plan": ""}), 422, "plan")
    problem(post({"id": "ow-x", "name": "x", "owner": "o" * 129}), 422, "owner")
    # nothing of that was created
    for pid in ["cls-x", "st-x", "unk-x", "ver-x", "typ-x", "nm-x", "pl-x", "ow-x"]:
        assert reg.api("GET", "/platforms/" + pid)[0] == 404, pid

    # duplicate id
    create_platform(reg, "dup-x")
    problem(post({"id": "dup-x", "name": "again"}), 409)
    # bad JSON
    for raw in [b'{"name":', b"{name: 1}", b'{"name":"x"}garbage', b"\xff\xfe",
                b'{"name":"x",}']:
        problem(reg.api("POST", "/platforms", raw), 400)
    # PATCH validation
    create_platform(reg, "patch-v")
    problem(reg.api("PATCH", "/platforms/patch-v", {"name": ""}), 422, "name")
    problem(reg.api("PATCH", "/platforms/patch-v", {"name": 3}), 422, "name")
    problem(reg.api("PATCH", "/platforms/patch-v", {"plan": "BIG"}), 422, "plan")
    problem(reg.api("PATCH", "/platforms/patch-v", {"status": "suspended"}), 422,
            "status")
    problem(reg.api("PATCH", "/platforms/patch-v", {"id": "other"}), 422, "id")
    problem(reg.api("PATCH", "/platforms/patch-v", {"class": "user_project"}), 422,
            "class")
    problem(reg.api("PATCH", "/platforms/patch-v", {"colour": "red"}), 422, "colour")
    problem(reg.api("PATCH", "/platforms/patch-v", b'{"name":'), 400)
    st, _, p = reg.api("GET", "/platforms/patch-v")
    assert p["version"] == 1 and p["name"] == "Platform patch-v"


def test_json_that_is_not_an_object(reg):
    # Valid JSON (RFC 8259: any value at the top), but not an object: the
    # spec's 400 is for bad JSON, its 422 for content that does not
    # validate; whichever the registry picks, it must pick it for every
    # kind of value alike and not call valid JSON invalid.
    got = {}
    for raw in [b"[]", b'"x"', b"42", b"null", b"true", b"{}"]:
        resp = reg.api("POST", "/platforms", raw)
        assert resp[0] in (400, 422), (raw, resp)
        body = problem(resp, resp[0])
        got[raw] = (resp[0], body["detail"])
    assert got[b"{}"][0] == 422  # an object without "name"
    kinds = {st for raw, (st, _) in got.items() if raw != b"{}"}
    assert len(kinds) == 1, got
    assert not any("invalid JSON" in d for _, d in got.values()), got


def parallel(n, fn):
    """Run fn(i) for i in range(n) in n threads released together."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            out[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_writers_over_both_workers(reg):
    # The same id created 12 times at once: one 201, eleven 409.
    out = parallel(12, lambda i: reg.api("POST", "/platforms",
                                         {"id": "race-id", "name": "R%d" % i}))
    assert sorted(r[0] for r in out) == [201] + [409] * 11, out
    assert len(audit_for(reg, "platform:race-id", "platform.create")) == 1
    # 12 PATCHes with If-Match "v1" at once: exactly one wins.
    out = parallel(12, lambda i: reg.api("PATCH", "/platforms/race-id",
                                         {"name": "P%d" % i},
                                         headers={"If-Match": '"v1"'}))
    assert sorted(r[0] for r in out) == [200] + [412] * 11, out
    winner = [r[2] for r in out if r[0] == 200][0]
    st, h, p = reg.api("GET", "/platforms/race-id")
    assert p == winner and p["version"] == 2 and h["etag"] == '"v2"'
    # 12 PATCHes without If-Match: all apply, one version each.
    out = parallel(12, lambda i: reg.api("PATCH", "/platforms/race-id",
                                         {"plan": "p%d" % i}))
    assert [r[0] for r in out] == [200] * 12, out
    assert sorted(r[2]["version"] for r in out) == list(range(3, 15))
    assert reg.api("GET", "/platforms/race-id")[2]["version"] == 14
    # The same Idempotency-Key sent 8 times at once: one platform, and
    # every answer is that creation (replayed but for one).
    body = {"name": "Idempotent race"}
    out = parallel(8, lambda i: reg.api("POST", "/platforms", body,
                                        headers={"Idempotency-Key": "race-key"}))
    assert [r[0] for r in out] == [201] * 8, out
    assert len({r[2]["id"] for r in out}) == 1
    assert sorted(r[1].get("idempotent-replayed", "") for r in out) == \
        [""] + ["true"] * 7
    assert len([p for p in list_all(reg, "/platforms")
                if p["name"] == "Idempotent race"]) == 1


def test_oversized_body_is_refused(reg):
    key = reg.op_key()
    head = ("POST /api/v1/platforms HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (key, 1024 * 1024 + 1)).encode()
    out = reg.raw(head)
    [(st, h, body)] = parse_responses(out)[:1]
    assert st == 413, out[:300]
    assert h["content-type"] == "application/problem+json"
    # also with Expect: 100-continue: refused before 100 Continue
    out = reg.raw(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
    assert out.startswith(b"HTTP/1.1 413 "), out[:300]
    # A body of exactly 1 MiB is read (and then judged on its JSON).
    big = b'{"name":"' + b"x" * (1024 * 1024 - 11) + b'"}'
    assert len(big) == 1024 * 1024
    problem(reg.api("POST", "/platforms", big), 422, "name")


def test_bad_query_parameters(reg):
    for q in ["limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1.5"]:
        bad_request_or_422(reg.api("GET", "/platforms?" + q), "limit")
    st, _, page = reg.api("GET", "/platforms?limit=500")
    assert st == 200
    st, _, page = reg.api("GET", "/platforms?limit=1")
    assert st == 200 and len(page["items"]) == 1
    for c in ["%21%21%21", "not%20a%20cursor", "%00", "*"]:
        bad_request_or_422(reg.api("GET", "/platforms?cursor=" + c), "cursor")
        bad_request_or_422(reg.api("GET", "/audit?cursor=" + c), "cursor")


# -- tenants ------------------------------------------------------------------

def test_tenant_tree(reg):
    create_platform(reg, "tree-a")
    create_platform(reg, "tree-b")
    root = create_tenant(reg, "tree-a", "eu", name="Europe")
    assert set(root) == TENANT_KEYS, root
    assert root["id"] == "eu" and root["platform"] == "tree-a"
    assert root["parent"] is None and root["name"] == "Europe"
    assert root["status"] == "active" and root["version"] == 1
    assert TIME_RE.fullmatch(root["created_at"])
    # depth 4: eu > eu-west > eu-west-1 > eu-west-1a, plus siblings
    create_tenant(reg, "tree-a", "eu-west", "eu")
    create_tenant(reg, "tree-a", "eu-west-1", "eu-west")
    leaf = create_tenant(reg, "tree-a", "eu-west-1a", "eu-west-1")
    assert leaf["parent"] == "eu-west-1"
    create_tenant(reg, "tree-a", "eu-north", "eu")
    create_tenant(reg, "tree-a", "us")
    st, h, t = reg.api("GET", "/platforms/tree-a/tenants/eu-west-1a")
    assert st == 200 and t == leaf and h["etag"] == '"v1"'
    # a generated id
    st, _, g = reg.api("POST", "/platforms/tree-a/tenants",
                       {"name": "Generated", "parent": "us"})
    assert st == 201 and ID_RE.fullmatch(g["id"]) and g["parent"] == "us"
    assert reg.api("DELETE", "/platforms/tree-a/tenants/" + g["id"])[0] == 204

    def ids(q=""):
        return [t["id"] for t in list_all(reg, "/platforms/tree-a/tenants" + q)]
    assert ids() == ["eu", "eu-north", "eu-west", "eu-west-1", "eu-west-1a", "us"]
    assert ids("?parent=eu") == ["eu-north", "eu-west"]
    assert ids("?parent=eu-west-1") == ["eu-west-1a"]
    assert ids("?parent=eu-west-1a") == []
    assert ids("?under=eu") == ["eu-north", "eu-west", "eu-west-1", "eu-west-1a"]
    assert ids("?under=eu-west") == ["eu-west-1", "eu-west-1a"]
    assert ids("?under=us") == []
    # pages of 2 through the subtree
    assert ids("?under=eu&limit=2") == ["eu-north", "eu-west", "eu-west-1",
                                        "eu-west-1a"]
    st, _, page = reg.api("GET", "/platforms/tree-a/tenants?under=eu&limit=3")
    assert [t["id"] for t in page["items"]] == ["eu-north", "eu-west", "eu-west-1"]
    assert page["next_cursor"] is not None

    # missing parent, bad ids, unknown fields
    problem(reg.api("POST", "/platforms/tree-a/tenants",
                    {"id": "orphan", "name": "O", "parent": "nowhere"}), 422, "parent")
    problem(reg.api("POST", "/platforms/tree-a/tenants", {"id": "Bad!", "name": "x"}),
            422, "id")
    problem(reg.api("POST", "/platforms/tree-a/tenants", {"id": "no-name"}), 422, "name")
    problem(reg.api("POST", "/platforms/tree-a/tenants",
                    {"id": "unk-t", "name": "x", "colour": 1}), 422, "colour")
    problem(reg.api("POST", "/platforms/tree-a/tenants", {"id": "us", "name": "x"}), 409)
    problem(reg.api("POST", "/platforms/nope-x/tenants", {"id": "t1", "name": "x"}), 404)
    assert reg.api("GET", "/platforms/tree-a/tenants/orphan")[0] == 404

    # cycles via PATCH parent
    for parent in ["eu", "eu-west", "eu-west-1a"]:
        problem(reg.api("PATCH", "/platforms/tree-a/tenants/eu", {"parent": parent}),
                422, "parent")
    problem(reg.api("PATCH", "/platforms/tree-a/tenants/eu-west",
                    {"parent": "eu-west-1"}), 422, "parent")
    problem(reg.api("PATCH", "/platforms/tree-a/tenants/eu",
                    {"parent": "missing"}), 422, "parent")
    problem(reg.api("PATCH", "/platforms/tree-a/tenants/eu",
                    {"status": "deleting"}), 422, "status")
    assert reg.api("GET", "/platforms/tree-a/tenants/eu")[2] == root
    # a legal move, with If-Match; stale If-Match -> 412
    st, _, moved = reg.api("PATCH", "/platforms/tree-a/tenants/eu-north",
                           {"parent": "us"}, headers={"If-Match": '"v1"'})
    assert st == 200 and moved["parent"] == "us" and moved["version"] == 2
    problem(reg.api("PATCH", "/platforms/tree-a/tenants/eu-north",
                    {"name": "x"}, headers={"If-Match": '"v1"'}), 412)
    st, _, t = reg.api("PATCH", "/platforms/tree-a/tenants/eu-north",
                       {"status": "suspended", "name": "North"})
    assert st == 200 and t["status"] == "suspended" and t["version"] == 3
    st, h, _ = reg.api("GET", "/platforms/tree-a/tenants/eu-north")
    assert h["etag"] == '"v3"'
    assert ids("?parent=us") == ["eu-north"]
    assert ids("?under=eu") == ["eu-west", "eu-west-1", "eu-west-1a"]
    # back to root: parent null
    st, _, t = reg.api("PATCH", "/platforms/tree-a/tenants/eu-north", {"parent": None})
    assert st == 200 and t["parent"] is None
    st, _, t = reg.api("PATCH", "/platforms/tree-a/tenants/eu-north", {"parent": "us"})
    assert st == 200 and t["parent"] == "us"

    # platform B sees none of A's tenants
    problem(reg.api("GET", "/platforms/tree-b/tenants/eu"), 404)
    problem(reg.api("PATCH", "/platforms/tree-b/tenants/eu", {"name": "x"}), 404)
    problem(reg.api("DELETE", "/platforms/tree-b/tenants/eu"), 404)
    assert list_all(reg, "/platforms/tree-b/tenants") == []
    problem(reg.api("POST", "/platforms/tree-b/tenants",
                    {"id": "b1", "name": "x", "parent": "eu"}), 422, "parent")
    # ids are per platform
    b_eu = create_tenant(reg, "tree-b", "eu")
    assert b_eu["platform"] == "tree-b"
    problem(reg.api("GET", "/platforms/nope-x/tenants"), 404)
    problem(reg.api("GET", "/platforms/nope-x/tenants/eu"), 404)

    # delete with children -> 409; cascade -> the whole subtree goes
    problem(reg.api("DELETE", "/platforms/tree-a/tenants/eu"), 409)
    problem(reg.api("DELETE", "/platforms/tree-a/tenants/eu-west-1"), 409)
    assert ids() == ["eu", "eu-north", "eu-west", "eu-west-1", "eu-west-1a", "us"]
    st, _, body = reg.api("DELETE", "/platforms/tree-a/tenants/eu?cascade=true")
    assert st == 204 and body is None
    for t in ["eu", "eu-west", "eu-west-1", "eu-west-1a"]:
        problem(reg.api("GET", "/platforms/tree-a/tenants/" + t), 404)
    assert ids() == ["eu-north", "us"]
    assert reg.api("DELETE", "/platforms/tree-a/tenants/eu-north")[0] == 204
    assert reg.api("DELETE", "/platforms/tree-a/tenants/us")[0] == 204
    assert ids() == []
    # B's "eu" was not touched
    assert reg.api("GET", "/platforms/tree-b/tenants/eu")[2] == b_eu

    # deleting a platform deletes its tenants
    create_tenant(reg, "tree-b", "eu-2", "eu")
    assert reg.api("DELETE", "/platforms/tree-b")[0] == 204
    create_platform(reg, "tree-b")
    assert list_all(reg, "/platforms/tree-b/tenants") == []


# -- pagination ----------------------------------------------------------------

def test_pagination(make_host):
    h = make_host(core=True, workers=2).start()
    originals = ["m%02d" % i for i in range(25)]
    for pid in reversed(originals):
        create_platform(h, pid)

    # 3 pages of 10, 10, 5 in id order
    pages, cursor = [], None
    while True:
        q = "/platforms?limit=10"
        if cursor is not None:
            q += "&cursor=" + urllib.parse.quote(cursor, safe="")
        st, _, page = h.api("GET", q)
        assert st == 200 and set(page) == {"items", "next_cursor"}
        pages.append([p["id"] for p in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
        assert len(pages) < 10
    assert pages == [originals[:10], originals[10:20], originals[20:]]
    # default limit 50: one page
    st, _, page = h.api("GET", "/platforms")
    assert [p["id"] for p in page["items"]] == originals
    assert page["next_cursor"] is None

    # Page again while another thread inserts ids that sort before, between
    # and after the originals; after each page we also insert one id just
    # before and one just after the cursor ourselves.
    stop = threading.Event()
    inserted = []
    errors = []

    def inserter():
        n = 0
        while not stop.is_set() and n < 90:
            pid = ["a%04d" % n, "m%02d-c%d" % (n % 25, n), "z%04d" % n][n % 3]
            try:
                st, _, body = h.api("POST", "/platforms",
                                    {"id": pid, "name": "concurrent"})
                if st != 201:
                    errors.append((pid, st, body))
                inserted.append(pid)
            except Exception as e:  # noqa: BLE001
                errors.append((pid, repr(e)))
            n += 1

    t = threading.Thread(target=inserter)
    t.start()
    try:
        seen, cursor, before_cursor, after_cursor = [], None, [], []
        for k in range(200):
            q = "/platforms?limit=10"
            if cursor is not None:
                q += "&cursor=" + urllib.parse.quote(cursor, safe="")
            st, _, page = h.api("GET", q)
            assert st == 200, page
            got = [p["id"] for p in page["items"]]
            seen.extend(got)
            cursor = page["next_cursor"]
            if cursor is None:
                break
            last = got[-1]
            b, a = "a-det%d" % k, last + "-d%d" % k
            assert b < last < a
            create_platform(h, b)
            create_platform(h, a)
            before_cursor.append(b)
            after_cursor.append(a)
            time.sleep(0.01)
        else:
            raise AssertionError("paging never ended")
    finally:
        during = len(inserted)
        stop.set()
        t.join()
    assert errors == []
    assert during > 0, "no insert happened while paging"
    assert seen == sorted(seen), seen
    assert len(seen) == len(set(seen)), "duplicates: %r" % seen
    for pid in originals:
        assert seen.count(pid) == 1, pid
    for pid in after_cursor:
        assert pid in seen, pid
    for pid in before_cursor:
        assert pid not in seen, pid
    # and now a full listing has everything exactly once
    everything = [p["id"] for p in list_all(h, "/platforms", limit=7)]
    expected = sorted(set(originals) | set(inserted) | set(before_cursor)
                      | set(after_cursor))
    assert everything == expected


# -- idempotency -----------------------------------------------------------------

def test_idempotency_key(reg):
    key = reg.op_key()
    hdrs = {"Authorization": "Bearer " + key, "Content-Type": "application/json",
            "Idempotency-Key": "idem-key-1"}
    body = b'{"name":"Idempotent one"}'
    st1, h1, b1 = reg.request("POST", "/api/v1/platforms", headers=hdrs, body=body)
    assert st1 == 201, b1
    assert h1.get("idempotent-replayed") in (None, "false")
    st2, h2, b2 = reg.request("POST", "/api/v1/platforms", headers=hdrs, body=body)
    assert st2 == 201 and b2 == b1
    assert h2["idempotent-replayed"] == "true"
    st3, h3, b3 = reg.request("POST", "/api/v1/platforms", headers=hdrs, body=body)
    assert st3 == 201 and b3 == b1 and h3["idempotent-replayed"] == "true"
    named = [p for p in list_all(reg, "/platforms") if p["name"] == "Idempotent one"]
    assert len(named) == 1
    pid = named[0]["id"]
    assert len(audit_for(reg, "platform:" + pid, "platform.create")) == 1
    # same key, another body -> 422, nothing created
    resp = reg.api("POST", "/platforms", {"name": "Idempotent two"},
                   headers={"Idempotency-Key": "idem-key-1"})
    problem(resp, 422)
    assert [p for p in list_all(reg, "/platforms")
            if p["name"] == "Idempotent two"] == []
    # another key, same body: a new platform
    st, h, p = reg.api("POST", "/platforms", body,
                       headers={"Idempotency-Key": "idem-key-2"})
    assert st == 201 and p["id"] != pid and h.get("idempotent-replayed") != "true"
    # without a key: no replay
    st, h, p = reg.api("POST", "/platforms", {"id": "idem-nokey", "name": "x"})
    assert st == 201 and "idempotent-replayed" not in h
    problem(reg.api("POST", "/platforms", {"id": "idem-nokey", "name": "x"}), 409)
    # a key of 128 characters is fine; 129 or none is not a key
    st, _, p = reg.api("POST", "/platforms", {"name": "long key"},
                       headers={"Idempotency-Key": "k" * 128})
    assert st == 201
    resp = reg.api("POST", "/platforms", {"name": "too long key"},
                   headers={"Idempotency-Key": "k" * 129})
    assert resp[0] in (400, 422), resp
    problem(resp, resp[0])
    # tenants too
    create_platform(reg, "idem-t")
    th = {"Idempotency-Key": "idem-tenant"}
    st, _, t1 = reg.api("POST", "/platforms/idem-t/tenants", {"name": "T"}, headers=th)
    st2, h2, t2 = reg.api("POST", "/platforms/idem-t/tenants", {"name": "T"}, headers=th)
    assert st == 201 and st2 == 201 and t1 == t2
    assert h2["idempotent-replayed"] == "true"
    assert [t["id"] for t in list_all(reg, "/platforms/idem-t/tenants")] == [t1["id"]]


# -- stacks and platform routing -----------------------------------------------------

def test_stack_catalogue(reg):
    st, _, page = reg.api("GET", "/stacks")
    assert st == 200 and set(page) == {"items", "next_cursor"}
    assert {"id": "default", "versions": ["1.0.0"]} in [
        {"id": i["id"], "versions": i["versions"]} for i in page["items"]]
    st, _, s = reg.api("GET", "/stacks/default")
    assert st == 200 and s["id"] == "default" and s["versions"] == ["1.0.0"]
    d = s["details"][0]
    assert d["version"] == "1.0.0" and d["state"] == "loaded", d
    assert d["source"] == "builtin" and d["error"] is None, d
    assert d["signed_by"] is None and d["sha256"] is None, d
    problem(reg.api("GET", "/stacks/nope"), 404)


def test_activation_and_routing(reg):
    pid = "route-a"
    create_platform(reg, pid)
    path = "/p/%s/hello" % pid
    # no active stack: nothing is served
    for st, h, body in fresh_statuses(reg, path, 4):
        assert st == 404 and h["content-type"] == "application/problem+json"
    # unknown stack or version -> 422
    problem(activate(reg, pid, "nope"), 422, "stack")
    problem(activate(reg, pid, "default", "9.9.9"), 422, "version")
    problem(activate(reg, pid, "default", "latest"), 422, "version")
    problem(reg.api("POST", "/platforms/%s/stacks" % pid, {}), 422, "stack")
    problem(reg.api("POST", "/platforms/%s/stacks" % pid, {"stack": 1}), 422, "stack")
    problem(reg.api("POST", "/platforms/%s/stacks" % pid,
                    {"stack": "default", "colour": 1}), 422, "colour")
    problem(activate(reg, "nope-x"), 404)
    st, _, page = reg.api("GET", "/platforms/%s/stacks" % pid)
    assert st == 200 and page["items"] == []

    st, _, a = activate(reg, pid)
    assert st == 201, a
    assert set(a) == ACTIVATION_KEYS
    assert a["platform"] == pid and a["stack"] == "default"
    assert a["version"] == "1.0.0" and a["activated_by"] == "operator"
    assert TIME_RE.fullmatch(a["activated_at"])
    st, _, page = reg.api("GET", "/platforms/%s/stacks" % pid)
    assert st == 200 and page["items"] == [a] and page["next_cursor"] is None

    # every worker serves it at once
    ka = feature_key(reg, pid)
    for st, h, body in fresh_statuses(reg, path, 10, key=ka):
        assert st == 200, body
        assert h["content-type"] == "application/json"
        assert json.loads(body) == HELLO
    st, _, body = reg.json("GET", "/p/%s/hello/ada" % pid, key=ka)
    assert st == 200 and body == {"message": "hello, ada"}
    # host-based routing: {anything}.{id}.{baseDomain}, with or without port
    for host in ["app.%s.nno.localhost" % pid, "x.%s.nno.localhost" % pid,
                 "app.%s.nno.localhost:%d" % (pid, reg.port),
                 "APP.%s.NNO.LOCALHOST" % pid.upper()]:
        st, _, body = reg.json("GET", "/hello", host=host, key=ka)
        assert (st, body) == (200, HELLO), host
    # a host a platform claims is not the core API
    st, _, _ = reg.api("GET", "/platforms", host="app.%s.nno.localhost" % pid)
    assert st == 404
    # unknown platforms, by path and by host
    problem(reg.json("GET", "/p/nope/hello"), 404)
    problem(reg.json("GET", "/p/nope-x/hello"), 404)
    problem(reg.json("GET", "/hello", host="app.nope-x.nno.localhost"), 404)
    # the core API on the base domain and api.{baseDomain}
    for host in ["api.nno.localhost", "nno.localhost",
                 "api.nno.localhost:%d" % reg.port]:
        st, _, page = reg.api("GET", "/platforms/" + pid, host=host)
        assert st == 200 and page["id"] == pid, host
    # feature routes are served under platforms only
    problem(reg.json("GET", "/hello"), 404)
    problem(reg.json("GET", "/hello", host="nno.localhost"), 404)
    problem(reg.json("GET", "/hello", host="api.nno.localhost"), 404)

    # a pinned version on another platform
    create_platform(reg, "route-b")
    st, _, b = activate(reg, "route-b", "default", "1.0.0")
    assert st == 201 and b["version"] == "1.0.0" and b["platform"] == "route-b"
    kb = feature_key(reg, "route-b")
    assert reg.json("GET", "/p/route-b/hello", key=kb)[0] == 200

    # deactivate: 404 again, on every worker
    st, _, body = reg.api("DELETE", "/platforms/%s/stacks/default" % pid)
    assert st == 204 and body is None
    for st, h, body in fresh_statuses(reg, path, 10):
        assert st == 404 and h["content-type"] == "application/problem+json"
    problem(reg.json("GET", "/hello", host="app.%s.nno.localhost" % pid), 404)
    problem(reg.api("DELETE", "/platforms/%s/stacks/default" % pid), 404)
    st, _, page = reg.api("GET", "/platforms/%s/stacks" % pid)
    assert st == 200 and page["items"] == []
    assert reg.json("GET", "/p/route-b/hello", key=kb)[0] == 200

    # resources (the provisioning plugin's): the default stack's
    st, _, page = reg.api("GET", "/platforms/route-b/resources")
    assert st == 200 and page["next_cursor"] is None, page
    assert sorted((r["type"], r["name"], r["stack"]) for r in page["items"]) \
        == [("blob", "files", "default"), ("kv", "drafts", "default"),
            ("sql", "auth", "default"), ("sql", "notes", "default")], page
    problem(reg.api("GET", "/platforms/nope-x/resources"), 404)
    problem(reg.api("GET", "/platforms/nope-x/stacks"), 404)

    # a deleted platform is unknown to the router at once, and its
    # activations went with it: the same id created again serves nothing
    assert reg.api("DELETE", "/platforms/route-b")[0] == 204
    for st, _, _ in fresh_statuses(reg, "/p/route-b/hello", 6):
        assert st == 404
    create_platform(reg, "route-b")
    st, _, page = reg.api("GET", "/platforms/route-b/stacks")
    assert st == 200 and page["items"] == []
    for st, _, body in fresh_statuses(reg, "/p/route-b/hello", 6):
        assert st == 404, body


def test_platform_host_never_serves_another_platforms_path(make_host):
    h = make_host(core=True, workers=1).start()
    for pid in ("origin-a", "other-b"):
        create_platform(h, pid)
        assert activate(h, pid)[0] == 201
    host_a = "app.origin-a.nno.localhost"
    ka, kb = feature_key(h, "origin-a"), feature_key(h, "other-b")
    assert h.request("GET", "/hello", host=host_a, key=ka)[0] == 200
    # On A's origin, /p/other-b/... is a path of A (none), never B's route.
    st, _, body = h.json("GET", "/p/other-b/hello", host=host_a, key=kb)
    assert st == 404 and body["detail"] == "no route for this path"
    assert h.api("POST", "/platforms/origin-a/suspend")[0] == 200
    st, _, body = h.json("GET", "/p/other-b/hello", host=host_a)
    assert st == 403 and body["detail"] == "platform origin-a is suspended"
    # Hosts no platform claims still take the path form.
    assert h.request("GET", "/p/other-b/hello", key=kb)[0] == 200


def test_suspension_seen_by_every_worker_within_a_second(make_host):
    h = make_host(core=True, workers=2).start()
    pid = "susp-a"
    path = "/p/%s/hello" % pid
    create_platform(h, pid)
    assert activate(h, pid)[0] == 201
    key = feature_key(h, pid)
    for st, _, body in fresh_statuses(h, path, 20, key=key):
        assert st == 200, body
    pids, want = h.access_pids(path, 200)
    assert pids == want and len(want) == 2

    st, _, p = h.api("POST", "/platforms/%s/suspend" % pid)
    assert st == 200 and p["status"] == "suspended"
    t0 = time.time()
    answers = fresh_statuses(h, path, 20)
    elapsed = time.time() - t0
    for resp in answers:
        st, hd, body = resp
        body = problem((st, hd, json.loads(body)), 403)
        assert body["detail"] == "platform %s is suspended" % pid
    assert elapsed <= 1.0, elapsed
    body = problem(h.json("GET", "/hello", host="www.%s.nno.localhost" % pid), 403)
    assert body["detail"] == "platform %s is suspended" % pid
    pids, want = h.access_pids(path, 403)
    assert pids == want, "403 only from %s of %s" % (pids, want)
    # the API still answers for it
    assert h.api("GET", "/platforms/" + pid)[2]["status"] == "suspended"

    st, _, p = h.api("POST", "/platforms/%s/resume" % pid)
    assert st == 200 and p["status"] == "active"
    t0 = time.time()
    answers = fresh_statuses(h, path, 20, key=key)
    elapsed = time.time() - t0
    assert [a[0] for a in answers] == [200] * 20
    assert elapsed <= 1.0, elapsed
    n200 = len(h.access_lines(lambda e: e.get("path") == path
                              and e.get("status") == 200, 40))
    assert n200 >= 40


def test_activating_another_version_replaces_it(make_host, tmp_path):
    # A second version of `default`: a copy of the built 1.0.0 as 1.1.0.
    src = os.path.join(BUILD, "share", "nno", "stacks", "default", "1.0.0")
    dst = tmp_path / "stacks" / "default" / "1.1.0"
    shutil.copytree(src, str(dst))
    with open(str(dst / "stack.json")) as f:
        manifest = json.load(f)
    manifest["version"] = "1.1.0"
    with open(str(dst / "stack.json"), "w") as f:
        json.dump(manifest, f)
    # In-process, as the builtin one: its auth package uses nno.iam.
    h = make_host(core=True, workers=2, stacks=[str(tmp_path / "stacks")],
                  config={"sandbox": {"inprocess": "default"}}).start()
    st, _, s = h.api("GET", "/stacks/default")
    assert st == 200 and s["id"] == "default"
    assert sorted(s["versions"]) == ["1.0.0", "1.1.0"]
    create_platform(h, "ver-a")
    create_platform(h, "ver-b")
    # newest unless pinned
    st, _, a = activate(h, "ver-a")
    assert st == 201 and a["version"] == "1.1.0"
    st, _, b = activate(h, "ver-b", "default", "1.0.0")
    assert st == 201 and b["version"] == "1.0.0"
    # another version of an active stack replaces it: 200
    st, _, a2 = activate(h, "ver-a", "default", "1.0.0")
    assert st == 200 and a2["version"] == "1.0.0" and a2["stack"] == "default"
    st, _, page = h.api("GET", "/platforms/ver-a/stacks")
    assert [(x["stack"], x["version"]) for x in page["items"]] == [("default", "1.0.0")]
    st, _, b2 = activate(h, "ver-b", "default", "1.1.0")
    assert st == 200 and b2["version"] == "1.1.0"
    for pid in ["ver-a", "ver-b"]:
        key = feature_key(h, pid)
        for st, _, body in fresh_statuses(h, "/p/%s/hello" % pid, 6, key=key):
            assert st == 200 and json.loads(body) == HELLO


def test_newer_schema_is_refused(make_host):
    h = make_host(core=True, workers=1).start()
    create_platform(h, "schema-a")
    assert h.stop() == 0
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    known = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    db.execute("INSERT INTO schema_migrations (version, applied_at) "
               "VALUES (?, '2030-01-01T00:00:00Z')", (known + 5,))
    db.commit()
    db.close()
    h2 = make_host(core=True, workers=1)
    h2.data = h.data
    h2.start(wait=False)
    msg = "core.db schema version %d is newer than this host supports (%d)" % (
        known + 5, known)
    h2.wait_log(lambda e: msg in json.dumps(e))
    # A host without its registry would serve stacks unguarded: it stops.
    assert h2.proc.wait(15) == 1
    # the database is left as it was
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    assert db.execute("SELECT count(*) FROM platforms WHERE id = 'schema-a'"
                      ).fetchone() == (1,)
    db.close()


# -- durability ----------------------------------------------------------------------

def test_worker_killed_mid_write_leaves_nothing_half_written(make_host):
    h = make_host(core=True, workers=2).start()
    key = h.op_key()
    ids = ["crash-%03d" % i for i in range(200)]
    results, order = {}, []
    lock = threading.Lock()
    killed = threading.Event()

    def client(chunk):
        for pid in chunk:
            try:
                st, _, body = h.api("POST", "/platforms",
                                    {"id": pid, "name": "Crash " + pid}, key=key,
                                    headers={"X-Request-Id": "rq-" + pid},
                                    timeout=10)
                res = st
            except (OSError, http.client.HTTPException) as e:
                res = type(e).__name__
            with lock:
                results[pid] = res
                order.append((pid, killed.is_set()))

    def wait_done(n):
        deadline = time.time() + 30
        while time.time() < deadline:
            with lock:
                if len(order) >= n:
                    return
            time.sleep(0.002)
        raise AssertionError("the clients stalled at %d requests" % len(order))

    first_workers = h.worker_pids()
    assert len(first_workers) == 2
    threads = [threading.Thread(target=client, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    # kill -9 one worker a third of the way, the other one at two thirds
    wait_done(60)
    os.kill(first_workers[0], signal.SIGKILL)
    killed.set()
    wait_done(130)
    os.kill(first_workers[1], signal.SIGKILL)
    for t in threads:
        t.join()
    assert len(results) == 200
    unexpected = {k: v for k, v in results.items()
                  if isinstance(v, int) and v != 201}
    assert unexpected == {}
    after = [pid for pid, k in order if k and results[pid] == 201]
    assert len(after) >= 50, "the host did not keep creating after the kill"
    # the master replaced both workers
    deadline = time.time() + 10
    while time.time() < deadline:
        pids = h.worker_pids()
        if len(pids) == 2 and not set(pids) & set(first_workers):
            break
        time.sleep(0.05)
    assert not set(h.worker_pids()) & set(first_workers)
    assert h.stop() == 0

    h2 = make_host(core=True, workers=2)
    h2.data = h.data
    h2.start()
    assert h2.op_key() == key
    listed = {p["id"]: p for p in list_all(h2, "/platforms")}
    creates = {e["target"]: e for e in list_all(h2, "/audit?action=platform.create")}
    half = []
    for pid in ids:
        st, _, p = h2.api("GET", "/platforms/" + pid)
        entries = audit_for(h2, "platform:" + pid, "platform.create")
        if st == 200:
            ok = (len(entries) == 1 and entries[0]["request_id"] == "rq-" + pid
                  and p["name"] == "Crash " + pid and p["version"] == 1
                  and p["status"] == "active"
                  and listed.get(pid) == unbranded(p)
                  and "platform:" + pid in creates)
        elif entries:
            # its row was committed but the worker died before answering:
            # the next start undid the creation, and says so
            undone = audit_for(h2, "platform:" + pid,
                               "platform.provision_failed")
            ok = (st == 404 and pid not in listed and len(undone) == 1
                  and undone[0]["detail"]["step"] == "interrupted")
        else:
            ok = (st == 404 and pid not in listed
                  and "platform:" + pid not in creates)
        if results[pid] == 201:
            ok = ok and st == 200  # acknowledged creates survive
        if not ok:
            half.append((pid, results[pid], st, p, entries))
    assert half == []
    assert set(listed) <= set(ids)


def test_data_survives_a_restart(make_host):
    h = make_host(core=True, workers=2).start()
    keyfile = os.path.join(h.data, "operator.key")
    key = h.op_key()
    with open(keyfile, "rb") as f:
        key_bytes = f.read()
    key_stat = os.stat(keyfile)
    make_plans(h, "gold")
    create_platform(h, "keep", "Keep", plan="gold", owner="me")
    create_platform(h, "keep-susp")
    assert h.api("POST", "/platforms/keep-susp/suspend")[0] == 200
    assert activate(h, "keep-susp")[0] == 201
    st, _, p = h.api("PATCH", "/platforms/keep", {"name": "Kept"})
    assert st == 200 and p["version"] == 2
    create_tenant(h, "keep", "t1")
    create_tenant(h, "keep", "t2", "t1")
    st, _, act = activate(h, "keep")
    assert st == 201
    kkeep = feature_key(h, "keep")
    assert h.json("GET", "/p/keep/hello", key=kkeep)[0] == 200
    before = {
        "platforms": list_all(h, "/platforms"),
        "tenants": list_all(h, "/platforms/keep/tenants"),
        "stacks": list_all(h, "/platforms/keep/stacks"),
        "audit": list_all(h, "/audit"),
    }
    assert h.stop() == 0

    h2 = make_host(core=True, workers=2)
    h2.data = h.data
    h2.start()
    # the key file is neither rewritten nor replaced
    with open(keyfile, "rb") as f:
        assert f.read() == key_bytes
    st2 = os.stat(keyfile)
    assert (st2.st_ino, st2.st_mtime_ns, stat.S_IMODE(st2.st_mode)) == \
        (key_stat.st_ino, key_stat.st_mtime_ns, 0o600)
    assert key not in h2.log_text()
    after = {
        "platforms": list_all(h2, "/platforms"),
        "tenants": list_all(h2, "/platforms/keep/tenants"),
        "stacks": list_all(h2, "/platforms/keep/stacks"),
        "audit": list_all(h2, "/audit"),
    }
    assert after == before
    st, hd, p = h2.api("GET", "/platforms/keep")
    assert hd["etag"] == '"v2"' and p["name"] == "Kept"
    # routing is rebuilt from the database on start: on every worker
    for st, _, body in fresh_statuses(h2, "/p/keep/hello", 10, key=kkeep):
        assert st == 200, body
    for st, _, body in fresh_statuses(h2, "/p/keep-susp/hello", 6):
        assert st == 403, body
    # the old key still works; a new change goes on from the stored version
    st, _, p = h2.api("PATCH", "/platforms/keep", {"plan": "free"},
                      headers={"If-Match": '"v2"'})
    assert st == 200 and p["version"] == 3
