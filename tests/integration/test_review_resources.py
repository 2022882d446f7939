"""Per-platform resources as a user meets them: the notes package's ids and
files, and the `nno resource` commands against a host whose provisioning
plugin is the real one."""
import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import NNO, Host


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    host = Host(tmp_path_factory.mktemp("resources"), workers=2, core=True)
    host.start()
    yield host
    host.stop()


def call(h, method, path, key, body=None, headers=None):
    hd = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        hd["Content-Type"] = "application/json"
    st, rh, data = h.request(method, path, headers=hd, body=body, key=key)
    return st, rh, data


def cli(h, *args):
    env = dict(os.environ, NNO_URL="http://127.0.0.1:%d" % h.port,
               NNO_DATA=h.data)
    env.pop("NNO_KEY", None)
    return subprocess.run([NNO] + list(args), env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=30)


def test_deleted_note_id_is_never_given_again(h):
    """A file PUT while its note is being deleted can land after the
    DELETE listed the note's files; were the id given again, that file
    would become the next note's, whoever creates it. Ids only grow."""
    h.platform("ids-plat")
    h.api("POST", "/platforms/ids-plat/tenants", {"id": "us", "name": "us"})
    wide = h.platform_key("ids-plat")["key"]
    us = h.platform_key("ids-plat", tenant="us")["key"]
    st, _, b = call(h, "POST", "/p/ids-plat/notes", wide, {"title": "first"})
    assert st == 201, b
    first = json.loads(b)["id"]
    st, _, b = call(h, "PUT", "/p/ids-plat/notes/%d/files/a.txt" % first,
                    wide, b"platform-wide", {"Content-Type": "text/plain"})
    assert st == 200, b
    st, _, b = call(h, "DELETE", "/p/ids-plat/notes/%d" % first, wide)
    assert st == 204, b
    st, _, b = call(h, "POST", "/p/ids-plat/notes", us, {"title": "next"})
    assert st == 201, b
    assert json.loads(b)["id"] > first, b


def test_resource_list_pages_within_the_servers_bound(h):
    """`nno resource list` asks for pages the resources route accepts
    (limit 1..200), by default and with --all."""
    h.platform("cli-res")
    for args in (("resource", "list", "cli-res"),
                 ("resource", "list", "cli-res", "--all"),
                 ("resource", "list", "cli-res", "--json")):
        p = cli(h, *args)
        assert p.returncode == 0, (args, p.stderr)
        assert p.stderr == "", (args, p.stderr)
        assert "notes" in p.stdout and "drafts" in p.stdout, p.stdout
    p = cli(h, "resource", "list", "cli-res", "--limit", "300")
    assert p.returncode == 0, p.stderr


def test_a_planted_link_is_not_followed_nor_described(h):
    """An object file replaced by a link is refused (O_NOFOLLOW); the
    answer is a bare 500 problem and the provider's reason goes to the
    log, not to the client."""
    h.platform("link-plat")
    k = h.platform_key("link-plat")["key"]
    st, _, b = call(h, "POST", "/p/link-plat/notes", k, {"title": "t"})
    nid = json.loads(b)["id"]
    st, _, b = call(h, "PUT", "/p/link-plat/notes/%d/files/x.txt" % nid, k,
                    b"mine", {"Content-Type": "text/plain"})
    assert st == 200, b
    bucket = os.path.join(h.data, "platforms", "link-plat", "blob",
                          "link-plat-default-files")
    objs = [f for f in os.listdir(bucket) if f.startswith("o")]
    assert len(objs) == 1, objs
    outside = os.path.join(str(h.dir), "outside.txt")
    with open(outside, "w") as f:
        f.write("NOT THE PLATFORM'S")
    os.unlink(os.path.join(bucket, objs[0]))
    os.symlink(outside, os.path.join(bucket, objs[0]))
    st, rh, b = call(h, "GET", "/p/link-plat/notes/%d/files/x.txt" % nid, k)
    assert st == 500, b
    assert rh["content-type"] == "application/problem+json", rh
    p = json.loads(b)
    assert p["request_id"] == rh["x-request-id"], p
    assert b"NOT THE PLATFORM" not in b
    assert "cannot open" not in p["detail"], p
    assert "symbolic" not in p["detail"], p
    h.wait_log(lambda e: "cannot open the object" in e.get("msg", "")
               and p["request_id"] in e.get("msg", ""))


@pytest.mark.parametrize("query", ["keepdata=true", "keep-data=true",
                                   "keep_data=true&keep_data=false",
                                   "keep_data=false&keep_data=true",
                                   "keep_data=true&force=1"])
def test_platform_delete_refuses_a_query_it_does_not_understand(h, query):
    """A misspelt or repeated keep_data must not delete the platform's
    data without the archive it asked for: 422, and nothing is deleted."""
    pid = "kq-" + hashlib.sha256(query.encode()).hexdigest()[:8]
    h.platform(pid)
    k = h.platform_key(pid)["key"]
    st, _, b = call(h, "POST", "/p/%s/notes" % pid, k, {"title": "keep me"})
    assert st == 201, b
    st, rh, p = h.api("DELETE", "/platforms/%s?%s" % (pid, query))
    assert st == 422, p
    assert rh["content-type"] == "application/problem+json", rh
    assert p["request_id"] == rh["x-request-id"], p
    assert "nothing was deleted" in p["detail"], p
    st, _, got = h.api("GET", "/platforms/" + pid)
    assert st == 200 and got["status"] == "active", got
    st, _, b = call(h, "GET", "/p/%s/notes" % pid, k)
    assert st == 200 and b"keep me" in b, b
    st, _, p = h.api("DELETE", "/platforms/%s?keep_data=true" % pid)
    assert st == 200 and os.path.isfile(p["archive"]), p


def test_no_file_outlives_its_note_when_put_races_delete(make_host):
    """A file PUT while its note is deleted either lands before the
    DELETE's last sweep (and is swept) or finds the note gone and removes
    itself: once both answered, the bucket holds nothing of the note."""
    host = make_host(workers=2, core=True,
                     config={"limits": {"max_body_bytes": 4 << 20}})
    host.start()
    host.platform("race-plat")
    k = host.platform_key("race-plat")["key"]
    bucket = os.path.join(host.data, "platforms", "race-plat", "blob",
                          "race-plat-default-files")
    body = os.urandom(3 << 20)
    for i in range(12):
        st, _, b = call(host, "POST", "/p/race-plat/notes", k,
                        {"title": "race %d" % i})
        assert st == 201, b
        nid = json.loads(b)["id"]
        got = {}

        def put():
            got["put"] = call(host, "PUT", "/p/race-plat/notes/%d/files/"
                              "x.bin" % nid, k, body)[0]

        def delete():
            got["del"] = call(host, "DELETE", "/p/race-plat/notes/%d" % nid,
                              k)[0]
        t1 = threading.Thread(target=put)
        t2 = threading.Thread(target=delete)
        t1.start()
        time.sleep(0.002 * (i % 4))
        t2.start()
        t1.join()
        t2.join()
        assert got["del"] == 204, got
        assert got["put"] in (200, 404), got
        left = [f for f in os.listdir(bucket) if f.startswith("o")]
        assert left == [], (i, got, left)
        st, _, b = call(host, "GET", "/p/race-plat/notes/%d/files" % nid, k)
        assert st == 404, b


def test_a_file_is_downloaded_never_rendered_on_the_platforms_origin(h):
    """A writer names a file's type: text/html served as it is on the
    platform's host (where its users' session cookie lives) would run in
    a reader's browser. Files come as attachments, unsniffed, sandboxed."""
    h.platform("dl-plat")
    k = h.platform_key("dl-plat")["key"]
    st, _, b = call(h, "POST", "/p/dl-plat/notes", k, {"title": "t"})
    nid = json.loads(b)["id"]
    page = b"<script>fetch('/notes').then(r => r.text())</script>"
    st, _, b = call(h, "PUT", "/p/dl-plat/notes/%d/files/x.html" % nid, k,
                    page, {"Content-Type": "text/html"})
    assert st == 200, b
    for method in ("GET", "HEAD"):
        st, rh, b = h.request(method, "/notes/%d/files/x.html" % nid, key=k,
                              host="app.dl-plat.nno.localhost")
        assert st == 200, (method, b)
        assert rh["content-disposition"] == 'attachment; filename="x.html"'
        assert rh["x-content-type-options"] == "nosniff", rh
        assert "sandbox" in rh["content-security-policy"], rh
        assert "default-src 'none'" in rh["content-security-policy"], rh
        if method == "GET":
            assert b == page


def test_a_deleted_tenants_id_is_never_given_again(h):
    """Notes are kept under their tenant's path: a tenant made again with
    a deleted tenant's id would see what the old one left. The id is
    retired instead (409 naming the field), other ids are free, and a
    platform made again starts with none retired."""
    h.platform("ten-plat")
    assert h.api("POST", "/platforms/ten-plat/tenants",
                 {"id": "us", "name": "us"})[0] == 201
    us = h.platform_key("ten-plat", tenant="us")["key"]
    st, _, b = call(h, "POST", "/p/ten-plat/notes", us, {"title": "us note"})
    assert st == 201, b
    st, _, _ = h.api("DELETE", "/platforms/ten-plat/tenants/us")
    assert st == 204
    st, hd, pr = h.api("POST", "/platforms/ten-plat/tenants",
                       {"id": "us", "name": "us again"})
    assert st == 409 and pr["field"] == "id", pr
    assert hd["content-type"] == "application/problem+json" and pr["request_id"]
    assert "never given again" in pr["detail"], pr
    assert h.api("POST", "/platforms/ten-plat/tenants",
                 {"id": "us2", "name": "us2"})[0] == 201
    us2 = h.platform_key("ten-plat", tenant="us2")["key"]
    st, _, b = call(h, "GET", "/p/ten-plat/notes", us2)
    assert st == 200 and json.loads(b)["items"] == [], b
    # a platform deleted and made again retires nothing of the old one
    assert h.api("DELETE", "/platforms/ten-plat")[0] == 204
    h.platform("ten-plat")
    assert h.api("POST", "/platforms/ten-plat/tenants",
                 {"id": "us", "name": "us"})[0] == 201


def test_a_streamed_file_is_logged_with_its_length(h):
    """The access line of a download served from storage counts the bytes
    streamed after it, not the empty in-memory body."""
    h.platform("log-plat")
    k = h.platform_key("log-plat")["key"]
    st, _, b = call(h, "POST", "/p/log-plat/notes", k, {"title": "t"})
    nid = json.loads(b)["id"]
    data = os.urandom(200000)
    path = "/p/log-plat/notes/%d/files/blob.bin" % nid
    assert call(h, "PUT", path, k, data,
                {"Content-Type": "application/octet-stream"})[0] == 200
    st, _, b = call(h, "GET", path, k)
    assert st == 200 and b == data
    lines = h.access_lines(lambda e: e.get("path") == path and
                           e.get("status") == 200, 2)
    assert sorted(e["bytes"] for e in lines)[-1] == len(data), lines
