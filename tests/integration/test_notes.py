"""The notes package, black box over HTTP (packages/notes/README.md): notes in
the platform's sql resource filtered by the caller's tenant subtree, drafts in
kv with their expiry, files in a blob bucket with ETag and 304, the scopes
its manifest declares, 507 over the platform's storage quota, and two
platforms whose data never meet."""
import base64
import json
import os
import re
import shutil
import time

import pytest

from conftest import BUILD, Host

PLUGINS = os.path.join(BUILD, "lib", "nno", "plugins")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
          404: "Not Found", 409: "Conflict", 413: "Content Too Large",
          415: "Unsupported Media Type", 422: "Unprocessable Content",
          503: "Service Unavailable", 507: "Insufficient Storage"}
WEEK = 7 * 24 * 3600


def plugins_with_plans(tmp_path):
    """A copy of the built core plugins where billing (and the provisioning
    plugin, without billing) gives the plan "tiny" 1 MB of storage."""
    dst = tmp_path / "plugins"
    shutil.copytree(PLUGINS, str(dst))
    pj = dst / "provisioning" / "package.json"
    with open(str(pj)) as f:
        pkg = json.load(f)
    cfg = pkg.setdefault("config", {})
    cfg.setdefault("plans", {})["tiny"] = {"storage_mb": 1}
    with open(str(pj), "w") as f:
        json.dump(pkg, f)
    # The plans are billing's now: the quota is its plan's storage_bytes.
    bj = dst / "billing" / "package.json"
    with open(str(bj)) as f:
        bpkg = json.load(f)
    bpkg["config"].setdefault("plans", {})["tiny"] = {
        "storage_bytes": 1 << 20, "requests_per_month": 0,
        "rates": {k: {"rate": 10000000, "burst": 10000000}
                  for k in ("platform", "key", "user", "anonymous")}}
    with open(str(bj), "w") as f:
        json.dump(bpkg, f)
    return str(dst)


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    """One host, 2 workers (every answer must hold whichever worker gives
    it), bodies up to 4 MiB so a file can outgrow the tiny plan."""
    d = tmp_path_factory.mktemp("notes")
    host = Host(d, workers=2, core=True,
                config={"plugin_dir": plugins_with_plans(d),
                        "limits": {"max_body_bytes": 4 << 20}})
    host.start()
    yield host
    host.stop()


# -- helpers -------------------------------------------------------------------

def problem(resp, status, detail=None):
    st, hd, body = resp
    assert st == status, resp
    assert hd["content-type"] == "application/problem+json", resp
    if not isinstance(body, dict):
        body = json.loads(body)
    assert body["status"] == status and body["title"] == TITLES[status], resp
    assert body["request_id"] == hd["x-request-id"], resp
    if detail is not None:
        assert detail in body["detail"], resp
    return body


def platform(h, pid, plan="unmetered", tenants=()):
    """A platform with the default stack (hello, auth, notes) activated and
    its tenants, given as (id, parent or None)."""
    h.platform(pid, plan=plan)
    for tid, parent in tenants:
        body = {"id": tid, "name": tid}
        if parent:
            body["parent"] = parent
        st, _, t = h.api("POST", "/platforms/%s/tenants" % pid, body)
        assert st == 201, t


def key(h, pid, scopes=("features:notes:write",), tenant=None):
    return h.platform_key(pid, scopes, tenant=tenant)["key"]


def call(h, pid, method, path, k=None, body=None, raw=None, headers=None):
    """A request to /p/{pid}{path}; `body` is sent as JSON, `raw` as is.
    Returns (status, headers, JSON or bytes)."""
    hd = dict(headers or {})
    if k:
        hd["Authorization"] = "Bearer " + k
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hd.setdefault("Content-Type", "application/json")
    st, rh, out = h.request(method, "/p/%s%s" % (pid, path), headers=hd,
                            body=data)
    ct = rh.get("content-type", "")
    if out and "json" in ct:
        out = json.loads(out)
    return st, rh, out


def new_note(h, pid, k, title="a note", text="its body"):
    st, hd, n = call(h, pid, "POST", "/notes", k, {"title": title,
                                                  "body": text})
    assert st == 201, (st, n)
    return n


def titles(h, pid, k):
    st, _, page = call(h, pid, "GET", "/notes?limit=100", k)
    assert st == 200, page
    return sorted(n["title"] for n in page["items"])


def epoch(iso):
    return time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


# -- notes ---------------------------------------------------------------------

def test_crud(h):
    pid = "nt-crud"
    platform(h, pid)
    k = key(h, pid)
    n = new_note(h, pid, k, "first", "line one\nline two")
    assert set(n) == {"id", "tenant", "title", "body", "created_by",
                      "created_at", "updated_at"}, n
    assert isinstance(n["id"], int) and n["id"] > 0
    assert (n["title"], n["body"], n["tenant"]) == \
        ("first", "line one\nline two", "")
    assert n["created_by"].startswith("key:")
    assert TIME_RE.fullmatch(n["created_at"]) and \
        n["updated_at"] == n["created_at"]
    path = "/notes/%d" % n["id"]
    st, _, got = call(h, pid, "GET", path, k)
    assert (st, got) == (200, n)
    # PATCH changes what it is given, keeps the rest
    st, _, p = call(h, pid, "PATCH", path, k, {"body": "rewritten"})
    assert st == 200, p
    assert (p["title"], p["body"]) == ("first", "rewritten")
    st, _, p = call(h, pid, "PATCH", path, k, {"title": "renamed"})
    assert (st, p["title"], p["body"]) == (200, "renamed", "rewritten")
    # the list leaves bodies out
    st, _, page = call(h, pid, "GET", "/notes", k)
    assert st == 200 and page["next_cursor"] is None, page
    assert [x["title"] for x in page["items"]] == ["renamed"]
    assert "body" not in page["items"][0]
    # a body without a title is a note too
    st, _, bare = call(h, pid, "POST", "/notes", k, {"title": "no body"})
    assert (st, bare["body"]) == (201, "")
    # DELETE, then it is gone everywhere
    st, _, _ = call(h, pid, "DELETE", path, k)
    assert st == 204
    for method, body in (("GET", None), ("PATCH", {"title": "x"}),
                         ("DELETE", None)):
        problem(call(h, pid, method, path, k, body), 404, "no such note")
    assert titles(h, pid, k) == ["no body"]


def test_validation(h):
    pid = "nt-valid"
    platform(h, pid)
    k = key(h, pid)
    n = new_note(h, pid, k)
    cases = [
        ({}, 'field "title"'),
        ({"title": ""}, 'field "title"'),
        ({"title": 5}, 'field "title"'),
        ({"title": "x" * 201}, 'field "title"'),
        ({"title": "a\nb"}, "title"),
        ({"title": "x", "body": None}, 'field "body"'),
        ({"title": "x", "body": "y" * 32769}, 'field "body"'),
        ({"title": "x", "owner": "eu"}, "owner"),
    ]
    for body, detail in cases:
        b = problem(call(h, pid, "POST", "/notes", k, body), 422, detail)
        assert "field" in b or body.get("title") == "a\nb", b
    problem(call(h, pid, "POST", "/notes", k, raw=b"[1]",
                 headers={"Content-Type": "application/json"}), 422)
    problem(call(h, pid, "POST", "/notes", k, raw=b"{",
                 headers={"Content-Type": "application/json"}), 400)
    problem(call(h, pid, "POST", "/notes", k, raw=b'{"title":"x"}',
                 headers={"Content-Type": "text/plain"}), 415)
    problem(call(h, pid, "PATCH", "/notes/%d" % n["id"], k, {}), 422,
            "nothing to change")
    problem(call(h, pid, "PATCH", "/notes/%d" % n["id"], k,
                 {"tenant": "us"}), 422)
    # ids are 1 to 18 digits without a leading zero: anything else is no note
    for bad in ("0", "01", "-1", "abc", "1x", "9" * 19, "1%20OR%201=1",
                "1;DROP%20TABLE%20notes"):
        problem(call(h, pid, "GET", "/notes/" + bad, k), 404, "no such note")
    problem(call(h, pid, "GET", "/notes/999999", k), 404, "no such note")
    # nothing of it was stored
    assert titles(h, pid, k) == ["a note"]


def test_pages(h):
    pid = "nt-pages"
    platform(h, pid)
    k = key(h, pid)
    made = [new_note(h, pid, k, "n%d" % i)["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        q = "/notes?limit=2" + ("&cursor=" + cursor if cursor else "")
        st, _, page = call(h, pid, "GET", q, k)
        assert st == 200, page
        assert len(page["items"]) <= 2
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made
    problem(call(h, pid, "GET", "/notes?limit=0", k), 422, 'field "limit"')
    problem(call(h, pid, "GET", "/notes?limit=101", k), 422, 'field "limit"')
    problem(call(h, pid, "GET", "/notes?cursor=%21%21", k), 422,
            'field "cursor"')
    # a well-formed cursor holding something else than an id
    forged = base64.urlsafe_b64encode(b"0 OR 1=1").rstrip(b"=").decode()
    problem(call(h, pid, "GET", "/notes?cursor=" + forged, k), 422,
            'field "cursor"')


def test_scopes(h):
    pid = "nt-scopes"
    platform(h, pid)
    writer = key(h, pid, ["features:notes:write"])
    reader = key(h, pid, ["features:notes:read"])
    other = key(h, pid, ["features:hello:*"])
    everything = key(h, pid, ["features:*"])
    n = new_note(h, pid, writer)
    path = "/notes/%d" % n["id"]
    # reads: read, write (it covers read) and features:*
    for k in (reader, writer, everything):
        assert call(h, pid, "GET", path, k)[0] == 200
        assert call(h, pid, "GET", "/notes", k)[0] == 200
        assert call(h, pid, "GET", path + "/files", k)[0] == 200
    # writes: not with read alone
    for method, p, body in (("POST", "/notes", {"title": "x"}),
                            ("PATCH", path, {"title": "x"}),
                            ("DELETE", path, None),
                            ("PUT", "/notes/draft", {"title": "x"}),
                            ("DELETE", "/notes/draft", None)):
        problem(call(h, pid, method, p, reader, body), 403)
    problem(call(h, pid, "PUT", path + "/files/a.txt", reader, raw=b"x"), 403)
    # another package's scope reaches nothing here
    problem(call(h, pid, "GET", "/notes", other), 403)
    # no credential, or a wrong one
    problem(call(h, pid, "GET", "/notes"), 401)
    problem(call(h, pid, "GET", "/notes", "nnok_0000000000000000_" + "A" * 43),
            401)
    assert titles(h, pid, writer) == ["a note"]


# -- tenants -------------------------------------------------------------------

def test_tenant_subtree(h):
    pid = "nt-tenants"
    # "europe" starts like "eu" but is not under it
    platform(h, pid, tenants=[("eu", None), ("fr", "eu"), ("us", None),
                              ("europe", None)])
    ks = {"": key(h, pid), "eu": key(h, pid, tenant="eu"),
          "fr": key(h, pid, tenant="fr"), "us": key(h, pid, tenant="us"),
          "europe": key(h, pid, tenant="europe")}
    notes = {}
    for t, k in ks.items():
        notes[t] = new_note(h, pid, k, "note of " + (t or "platform"))
    assert notes["fr"]["tenant"] == "eu/fr"
    assert notes["eu"]["tenant"] == "eu"
    assert notes["us"]["tenant"] == "us"
    assert notes[""]["tenant"] == ""
    visible = {"": {"", "eu", "fr", "us", "europe"}, "eu": {"eu", "fr"},
               "fr": {"fr"}, "us": {"us"}, "europe": {"europe"}}
    for t, k in ks.items():
        assert titles(h, pid, k) == sorted(
            "note of " + (x or "platform") for x in visible[t]), t
        for x, n in notes.items():
            path = "/notes/%d" % n["id"]
            if x in visible[t]:
                assert call(h, pid, "GET", path, k)[0] == 200, (t, x)
            else:
                # not one of yours and missing look the same
                problem(call(h, pid, "GET", path, k), 404, "no such note")
                problem(call(h, pid, "PATCH", path, k, {"title": "mine"}), 404)
                problem(call(h, pid, "DELETE", path, k), 404)
                problem(call(h, pid, "GET", path + "/files", k), 404)
                problem(call(h, pid, "PUT", path + "/files/x.txt", k,
                             raw=b"x"), 404)
                problem(call(h, pid, "GET", path + "/files/x.txt", k), 404)
    # nothing was changed by the refusals
    assert titles(h, pid, ks[""]) == sorted(
        "note of " + (x or "platform") for x in notes)
    # eu edits fr's note: it stays fr's
    st, _, p = call(h, pid, "PATCH", "/notes/%d" % notes["fr"]["id"],
                    ks["eu"], {"title": "edited by eu"})
    assert (st, p["tenant"]) == (200, "eu/fr")
    assert titles(h, pid, ks["fr"]) == ["edited by eu"]


# -- drafts --------------------------------------------------------------------

def test_drafts(h):
    pid = "nt-drafts"
    platform(h, pid)
    a, b = key(h, pid), key(h, pid)
    problem(call(h, pid, "GET", "/notes/draft", a), 404, "no draft")
    problem(call(h, pid, "DELETE", "/notes/draft", a), 404, "no draft")
    st, _, d = call(h, pid, "PUT", "/notes/draft", a,
                    {"title": "half", "body": "done"})
    assert st == 200, d
    assert (d["title"], d["body"]) == ("half", "done")
    assert abs(epoch(d["expires"]) - (time.time() + WEEK)) < 120, d
    st, _, got = call(h, pid, "GET", "/notes/draft", a)
    assert st == 200 and got["title"] == "half" and got["body"] == "done"
    assert abs(epoch(got["expires"]) - (time.time() + WEEK)) < 120, got
    # each caller has their own
    problem(call(h, pid, "GET", "/notes/draft", b), 404)
    st, _, _ = call(h, pid, "PUT", "/notes/draft", b, {"title": "b's"})
    assert st == 200
    assert call(h, pid, "GET", "/notes/draft", a)[2]["title"] == "half"
    # saving again replaces it
    st, _, d = call(h, pid, "PUT", "/notes/draft", a, {"body": "only"})
    assert st == 200 and d == {"body": "only", "expires": d["expires"]}
    assert call(h, pid, "GET", "/notes/draft", a)[2]["body"] == "only"
    # bad drafts change nothing
    problem(call(h, pid, "PUT", "/notes/draft", a, {"key": "user:x"}), 422)
    problem(call(h, pid, "PUT", "/notes/draft", a, {"title": 1}), 422)
    problem(call(h, pid, "PUT", "/notes/draft", a, {"title": "a\u0007b"}),
            422)
    problem(call(h, pid, "PUT", "/notes/draft", a, raw=b"nope",
                 headers={"Content-Type": "application/json"}), 400)
    assert call(h, pid, "GET", "/notes/draft", a)[2]["body"] == "only"
    st, _, _ = call(h, pid, "DELETE", "/notes/draft", a)
    assert st == 204
    problem(call(h, pid, "GET", "/notes/draft", a), 404)
    assert call(h, pid, "GET", "/notes/draft", b)[2]["title"] == "b's"
    # a draft is not a note
    assert titles(h, pid, a) == []


# -- files ---------------------------------------------------------------------

def test_files(h):
    pid = "nt-files"
    platform(h, pid)
    k = key(h, pid)
    n = new_note(h, pid, k)
    base = "/notes/%d/files" % n["id"]
    data = b"hello, file\n" * 100
    st, hd, put = call(h, pid, "PUT", base + "/report.txt", k, raw=data,
                       headers={"Content-Type": "text/plain"})
    assert st == 200, put
    assert put["name"] == "report.txt" and put["size"] == len(data)
    assert put["etag"].startswith('"') and hd["etag"] == put["etag"]
    assert TIME_RE.fullmatch(put["modified"])
    etag = put["etag"]
    st, hd, body = call(h, pid, "GET", base + "/report.txt", k)
    assert (st, body) == (200, data)
    assert hd["content-type"] == "text/plain"
    assert hd["etag"] == etag and hd["content-length"] == str(len(data))
    assert "last-modified" in hd
    st, hd, body = call(h, pid, "HEAD", base + "/report.txt", k)
    assert (st, body) == (200, b"")
    assert hd["etag"] == etag and hd["content-length"] == str(len(data))
    st, hd, body = call(h, pid, "GET", base + "/report.txt", k,
                        headers={"If-None-Match": etag})
    assert (st, body) == (304, b"") and hd["etag"] == etag
    # no Content-Type: stored as octets
    st, _, _ = call(h, pid, "PUT", base + "/raw.bin", k, raw=b"\x00\x01")
    assert st == 200
    st, hd, body = call(h, pid, "GET", base + "/raw.bin", k)
    assert (st, body) == (200, b"\x00\x01")
    assert hd["content-type"] == "application/octet-stream"
    st, _, page = call(h, pid, "GET", base, k)
    assert st == 200, page
    assert [f["name"] for f in page["items"]] == ["raw.bin", "report.txt"]
    assert page["items"][1]["size"] == len(data)
    assert page["items"][1]["content_type"] == "text/plain"
    assert TIME_RE.fullmatch(page["items"][1]["modified"]), page
    assert set(page["items"][1]) == {"name", "size", "etag", "content_type",
                                     "modified"}, page
    assert page["next_cursor"] is None
    st, _, p1 = call(h, pid, "GET", base + "?limit=1", k)
    assert [f["name"] for f in p1["items"]] == ["raw.bin"]
    st, _, p2 = call(h, pid, "GET", base + "?limit=1&cursor=" +
                     p1["next_cursor"], k)
    assert [f["name"] for f in p2["items"]] == ["report.txt"]
    # replaced whole: a new etag, the old one no longer matches
    st, hd, put2 = call(h, pid, "PUT", base + "/report.txt", k, raw=b"v2",
                        headers={"Content-Type": "text/plain"})
    assert st == 200 and put2["etag"] != etag
    st, _, body = call(h, pid, "GET", base + "/report.txt", k,
                       headers={"If-None-Match": etag})
    assert (st, body) == (200, b"v2")
    st, _, _ = call(h, pid, "DELETE", base + "/report.txt", k)
    assert st == 204
    problem(call(h, pid, "GET", base + "/report.txt", k), 404)
    problem(call(h, pid, "DELETE", base + "/report.txt", k), 404,
            "no such file")
    # files of a note that does not exist
    problem(call(h, pid, "PUT", "/notes/424242/files/x.txt", k, raw=b"x"),
            404, "no such note")
    problem(call(h, pid, "GET", "/notes/424242/files", k), 404)
    # deleting the note removes its files: a note that takes its id again
    # (sqlite reuses the largest rowid) starts with none
    st, _, _ = call(h, pid, "DELETE", "/notes/%d" % n["id"], k)
    assert st == 204
    again = new_note(h, pid, k)
    st, _, page = call(h, pid, "GET", "/notes/%d/files" % again["id"], k)
    assert (st, page["items"]) == (200, [])


BAD_NAMES = ["..", ".", ".hidden", "%2e%2e", "%2E%2E", "a%2fb", "a%2Fb",
             "..%2f..%2fx", "%2fetc%2fpasswd", "a%5cb", "a%00b", "a%20b",
             "%c3%a9t%c3%a9", "x" * 129]


def test_file_names_are_refused(h):
    pid = "nt-names"
    platform(h, pid)
    k = key(h, pid)
    n = new_note(h, pid, k)
    base = "/notes/%d/files/" % n["id"]
    for name in BAD_NAMES:
        for method in ("PUT", "GET", "DELETE"):
            st, hd, body = call(h, pid, method, base + name, k,
                                raw=b"x" if method == "PUT" else None)
            assert st in (400, 404), (name, method, st, body)
            problem((st, hd, body), st)
    # dot segments and slashes in the path itself never reach a file
    for path in (base + "../../x", base + "a/b", base + "/etc/passwd",
                 "/notes/%d/../files/x" % n["id"]):
        st, _, body = call(h, pid, "PUT", path, k, raw=b"x")
        assert st in (400, 404, 405), (path, st, body)
    st, _, page = call(h, pid, "GET", "/notes/%d/files" % n["id"], k)
    assert (st, page["items"]) == (200, [])


# -- quota ---------------------------------------------------------------------

def test_quota_answers_507_and_writes_nothing(h):
    pid = "nt-quota"
    platform(h, pid, plan="tiny")
    k = key(h, pid)
    n = new_note(h, pid, k)
    base = "/notes/%d/files" % n["id"]
    big = os.urandom(2 << 20)
    b = problem(call(h, pid, "PUT", base + "/big.bin", k, raw=big), 507,
                "quota")
    assert "big.bin" not in b["detail"]
    st, _, page = call(h, pid, "GET", base, k)
    assert (st, page["items"]) == (200, [])
    # what fits still goes in
    st, _, _ = call(h, pid, "PUT", base + "/small.txt", k, raw=b"small")
    assert st == 200
    st, _, page = call(h, pid, "GET", base, k)
    assert [f["name"] for f in page["items"]] == ["small.txt"]


# -- two platforms -------------------------------------------------------------

def test_two_platforms_never_meet(h):
    a, b = "nt-iso-a", "nt-iso-b"
    platform(h, a)
    platform(h, b)
    ka, kb = key(h, a), key(h, b)
    a_notes = [new_note(h, a, ka, "secret of a %d" % i) for i in range(3)]
    st, _, _ = call(h, a, "PUT", "/notes/%d/files/a-only.txt" % a_notes[2]["id"],
                    ka, raw=b"a's file")
    assert st == 200
    assert call(h, a, "PUT", "/notes/draft", ka, {"title": "a's draft"})[0] \
        == 200
    b_note = new_note(h, b, kb, "of b")
    # a key of one platform is unknown on the other's routes
    for method, path in (("GET", "/notes"), ("GET", "/notes/1"),
                         ("GET", "/notes/draft"),
                         ("GET", "/notes/%d/files/a-only.txt"
                          % a_notes[2]["id"])):
        problem(call(h, a, method, path, kb), 401)
    # b's own routes never show a's rows, drafts or files
    assert titles(h, b, kb) == ["of b"]
    for n in a_notes:
        if n["id"] != b_note["id"]:
            problem(call(h, b, "GET", "/notes/%d" % n["id"], kb), 404)
    problem(call(h, b, "GET", "/notes/draft", kb), 404)
    base = "/notes/%d/files/" % b_note["id"]
    problem(call(h, b, "GET", base + "a-only.txt", kb), 404)
    for name in BAD_NAMES + ["..%2f..%2f..%2fnt-iso-a%2fa-only.txt",
                             "%2e%2e%2f%2e%2e%2fnotes%2f3%2fa-only.txt"]:
        st, _, body = call(h, b, "GET", base + name, kb)
        assert st in (400, 404), (name, st, body)
        assert b"a's file" not in (body if isinstance(body, bytes)
                                   else json.dumps(body).encode())
    # SQL in fields is text like any other
    evil = ["x'); DELETE FROM notes; --", "' OR '1'='1",
            "\" OR tenant_path LIKE '%", "1; ATTACH DATABASE '/tmp/x' AS y"]
    for text in evil:
        n = new_note(h, b, kb, text[:200], text)
        st, _, got = call(h, b, "GET", "/notes/%d" % n["id"], kb)
        assert (got["title"], got["body"]) == (text[:200], text)
    assert len(titles(h, b, kb)) == 1 + len(evil)
    assert titles(h, a, ka) == ["secret of a 0", "secret of a 1",
                                "secret of a 2"]
    st, _, d = call(h, a, "GET", "/notes/draft", ka)
    assert (st, d["title"]) == (200, "a's draft")
    st, _, body = call(h, a, "GET",
                       "/notes/%d/files/a-only.txt" % a_notes[2]["id"], ka)
    assert (st, body) == (200, b"a's file")
    # b's key given a's platform by path and its own by Host header
    st, _, _ = h.request("GET", "/notes", host="api.%s.nno.localhost" % a,
                         headers={"Authorization": "Bearer " + kb})
    assert st == 401
