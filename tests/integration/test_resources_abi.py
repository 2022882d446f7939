"""The resource calls of ABI 1.2 against a fake "nno.storage" provider
(tests/fixtures/plugins/fakestore.c, a core plugin) and a package using
every call (resfeat.c): manifest checks, the ref sent to the provider,
pending operations, res_blob, platform_event, who is calling."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BUILD, FIXTURE_STACKS, NNO, parse_responses

RESPLUGINS = os.path.join(BUILD, "tests", "resplugins")
RESFEAT = os.path.join(FIXTURE_STACKS, "resfeat")
# These tests pin the host's own resource calls as a package in the worker
# sees them (checks at the call, the end of a request with operations
# pending): resfeat runs in-process here; test_sandbox.py serves it from a
# sandbox.
RES_CONFIG = {"plugin_dir": RESPLUGINS, "core_plugins": ["fakestore"],
              "sandbox": {"inprocess": "resfeat"}}


def res_host(make_host, env=None):
    return make_host(workers=1, stacks=[RESFEAT], env=env,
                     config={"plugin_dir": RESPLUGINS,
                             "core_plugins": ["fakestore"]}).start()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    from conftest import Host
    h = Host(tmp_path_factory.mktemp("res"), workers=1, stacks=[RESFEAT],
             config=RES_CONFIG)
    h.start()
    yield h
    h.stop()


def on(platform, **headers):
    h = {"X-Platform": platform}
    h.update(headers)
    return h


def log(host, clear=True):
    st, _, body = host.json("GET", "/fakestore/log" + ("?clear=1" if clear
                                                       else ""))
    assert st == 200
    return body


def wait_log(host, pred, timeout=5):
    deadline = time.time() + timeout
    while True:
        lines = log(host, clear=False)
        if pred(lines) or time.time() > deadline:
            return lines
        time.sleep(0.05)


def worker_pid(host):
    [pid] = host.worker_pids()
    return pid


def vm(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(field)


# ---- the ref and the platform -------------------------------------------

def test_ref_names_the_request_platform_stack_package_and_name(host):
    log(host)
    for p in ("acme", "globex"):
        st, _, body = host.json("POST", "/r/sql", headers=on(p),
                                body=b"SELECT 1")
        assert st == 200, body
        assert body["rows"] == [{"platform": p, "stack": "resfeat",
                                 "name": "notes", "batch": 0,
                                 "sql": "SELECT 1", "params": ""}]
        assert body["changes"] == 1 and body["last"] == 7
    lines = wait_log(host, lambda l: l.count("leave globex") == 1)
    # One enter before the first operation, one leave at the end, per
    # request, and the ref of each call.
    assert lines == ["enter acme",
                     "sql acme resfeat resfeat sql notes SELECT 1",
                     "leave acme",
                     "enter globex",
                     "sql globex resfeat resfeat sql notes SELECT 1",
                     "leave globex"]


def test_kv_blob_and_batch_reach_the_provider(host):
    log(host)
    assert host.json("PUT", "/r/kv/k1", headers=on("acme"),
                     body=b"v1")[0] == 200
    st, _, body = host.json("GET", "/r/kv/k1", headers=on("acme"))
    assert st == 200 and body == {"found": 1, "value": "v1"}
    # Another platform's kv is another resource.
    st, _, body = host.json("GET", "/r/kv/k1", headers=on("globex"))
    assert st == 200 and body == {"found": 0, "value": ""}
    st, _, body = host.json("GET", "/r/kvlist?prefix=k", headers=on("acme"))
    assert st == 200 and body == [{"key": "k1", "expires": None}]
    st, _, body = host.json("DELETE", "/r/kv/k1", headers=on("acme"))
    assert st == 200 and body["found"] == 1
    st, _, body = host.json("POST", "/r/batch", headers=on("acme"),
                            body=b'[{"sql":"SELECT 1"}]')
    assert st == 200 and body["rows"][0]["batch"] == 1
    st, _, body = host.json("POST", "/r/sql?params=%5B1%5D",
                            headers=on("acme"), body=b"SELECT ?")
    assert st == 200 and body["rows"][0]["params"] == "[1]"
    st, _, body = host.json("POST", "/r/sql", headers=on("acme"), body=b"FAIL")
    assert st == 409 and body == {"error": "NNO_EREFUSED"}
    st, _, body = host.json("PUT", "/r/blob/a/b.txt", headers=on(
        "acme", **{"Content-Type": "text/plain"}), body=b"hello")
    assert st == 200 and body["size"] == 5 and body["found"] == 1
    st, _, body = host.json("GET", "/r/blobhead/a/b.txt", headers=on("acme"))
    assert st == 200 and body["content_type"] == "text/plain"
    st, _, body = host.json("GET", "/r/bloblist", headers=on("acme"))
    assert st == 200 and body == []
    lines = log(host)
    assert "kv-p acme resfeat resfeat kv cache k1" in lines
    assert "kv-g globex resfeat resfeat kv cache k1" in lines
    assert "kv-l acme resfeat resfeat kv cache k" in lines
    assert "batch acme resfeat resfeat sql notes " \
           '[{"sql":"SELECT 1"}]' in lines
    assert "blob-p acme resfeat resfeat blob files a/b.txt" in lines


def test_platform_enter_error_is_the_operation_error(host):
    log(host)
    st, _, body = host.json("GET", "/r/kv/x", headers=on("busy"))
    assert st == 503 and body == {"error": "NNO_EBUSY"}
    # Refused: no leave, and no operation reached the provider.
    assert log(host) == ["enter busy"]


def test_checks_before_forwarding(host):
    log(host)
    st, _, body = host.json("GET", "/r/checks", headers=on("acme"))
    assert st == 200
    assert body == {"undeclared": "NNO_ENOENT", "wrong_type": "NNO_ENOENT",
                    "bad_name": "NNO_EINVAL", "kv_long": "NNO_ETOOBIG",
                    "kv_empty": "NNO_EINVAL", "kv_control": "NNO_EINVAL",
                    "kv_limit": "NNO_EINVAL", "blob_long": "NNO_ETOOBIG",
                    "blob_dots": "NNO_EINVAL", "blob_slash": "NNO_EINVAL",
                    "sql_params": "NNO_EINVAL", "sql_batch": "NNO_EINVAL"}
    # None of them reached the provider (nor entered the platform).
    assert log(host) == []


def test_request_without_platform_is_refused(make_host):
    # Without the RESOLVE hook, stacks are served at the root: no platform.
    h = res_host(make_host, env={"FAKESTORE_NO_RESOLVE": "1"})
    st, _, body = h.json("POST", "/r/sql", body=b"SELECT 1")
    assert st == 404 and body == {"error": "NNO_ENOENT"}
    st, _, body = h.json("GET", "/r/who")
    assert st == 200 and body["platform"] == ""
    assert h.json("GET", "/fakestore/log")[2] == []


def test_no_provider_is_enotsup(make_host):
    # The package alone, no core plugin: nothing publishes nno.storage.
    h = make_host(workers=1, stacks=[RESFEAT]).start()
    st, _, body = h.json("GET", "/r/kv/x")
    # No platform either (no RESOLVE hook): ENOENT comes first.
    assert st == 404 and body == {"error": "NNO_ENOENT"}
    st, _, body = h.json("GET", "/old")
    assert st == 200 and body == {"old": True}


# ---- pending operations ------------------------------------------------------

def test_res_end_while_pending_is_ebusy(host):
    st, _, body = host.json("GET", "/r/busy", headers=on("acme"))
    assert st == 200
    assert body == {"end_while_pending": "NNO_EBUSY", "error": "NNO_OK",
                    "gone": 0}


def test_handler_returning_with_pending_ends_after_completion(host):
    t = time.time()
    st, _, body = host.json("GET", "/r/sync-pending", headers=on("acme"))
    assert st == 200 and body == {"completed": True, "error": "NNO_OK"}
    assert time.time() - t >= 0.35  # the slow get (400 ms) was waited for


def test_client_gone_during_pending_operation(host):
    log(host)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", host.port))
        s.sendall(b"GET /r/busy HTTP/1.1\r\nHost: x\r\nX-Platform: acme\r\n\r\n")
        time.sleep(0.05)
        s.close()
    # The completions ran on requests whose clients had gone; the worker
    # is alive, left the platform once per request, and serves.
    lines = wait_log(host, lambda l: l.count("leave acme") == 3)
    assert lines.count("enter acme") == 3 and lines.count("leave acme") == 3
    st, _, body = host.json("GET", "/r/busy", headers=on("acme"))
    assert st == 200 and body["end_while_pending"] == "NNO_EBUSY"
    assert len(host.worker_pids()) == 1


# ---- res_blob ----------------------------------------------------------------

def put_blob(host, key, data, ctype="text/plain", platform="acme"):
    st, _, body = host.json("PUT", "/r/blob/" + key, body=data, headers=on(
        platform, **{"Content-Type": ctype}))
    assert st == 200, body
    return body


def test_res_blob_200_headers_and_body(host):
    put_blob(host, "docs/a.txt", b"hello blob")
    st, h, body = host.request("GET", "/r/blob/docs/a.txt",
                               headers=on("acme"))
    assert st == 200 and body == b"hello blob"
    assert h["content-type"] == "text/plain"
    assert h["content-length"] == "10"
    assert h["etag"].startswith('"') and h["etag"].endswith('"')
    assert h["last-modified"].endswith(" GMT")
    time.strptime(h["last-modified"], "%a, %d %b %Y %H:%M:%S GMT")
    assert h["x-before"] == "kept"  # headers set before stay


def test_res_blob_304_and_head(host):
    put_blob(host, "c.txt", b"cached")
    _, h, _ = host.request("GET", "/r/blob/c.txt", headers=on("acme"))
    etag = h["etag"]
    for inm in (etag, '"nope", ' + etag, "W/" + etag, "*"):
        st, h2, body = host.request("GET", "/r/blob/c.txt", headers=on(
            "acme", **{"If-None-Match": inm}))
        assert st == 304 and body == b"" and h2["etag"] == etag, inm
    st, _, body = host.request("GET", "/r/blob/c.txt", headers=on(
        "acme", **{"If-None-Match": '"other"'}))
    assert st == 200 and body == b"cached"
    # HEAD: the headers of the GET, no body; the connection goes on.
    out = host.raw(b"HEAD /r/blob/c.txt HTTP/1.1\r\nHost: x\r\n"
                   b"X-Platform: acme\r\n\r\n"
                   b"GET /r/blob/c.txt HTTP/1.1\r\nHost: x\r\n"
                   b"X-Platform: acme\r\nConnection: close\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 6" in head
    [(st, _, body)] = parse_responses(rest)
    assert st == 200 and body == b"cached"


def test_res_blob_404_is_a_problem(host):
    st, h, body = host.json("GET", "/r/blob/missing", headers=on("acme"))
    assert st == 404 and h["content-type"] == "application/problem+json"
    assert body["detail"] == "no such object" and body["request_id"]


def test_res_blob_storage_error_is_mapped(host):
    st, h, body = host.json("GET", "/r/blob/slow", headers=on("acme"))
    assert st == 504 and h["content-type"] == "application/problem+json"
    assert body["detail"] == "the read took too long"
    # Refused by platform_enter: the handler gets the error synchronously.
    st, _, body = host.json("GET", "/r/blob/x", headers=on("busy"))
    assert st == 503 and body == {"error": "NNO_EBUSY"}


def test_res_blob_streams_a_big_object_in_bounded_memory(host):
    import threading
    pid = worker_pid(host)
    # The worker's own memory (RssAnon: not the shared tables or mapped
    # files), sampled through the transfer, from when it has settled (a
    # worker releases what starting took within a moment of being ready).
    deadline = time.time() + 5
    seen = [vm(pid, "RssAnon")]
    while time.time() < deadline and (len(seen) < 4 or
                                      len(set(seen[-4:])) > 1):
        time.sleep(0.05)
        seen.append(vm(pid, "RssAnon"))
    before = seen[-1]
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], vm(pid, "RssAnon"))
            time.sleep(0.002)
    t = threading.Thread(target=sample)
    t.start()
    try:
        c = host.conn(timeout=30)
        c.request("GET", "/r/blob/big", headers=on("acme"))
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("content-length") == str(64 << 20)
        # Read slowly at first: the worker must not read ahead of the
        # client.
        total = len(r.read(1 << 20))
        time.sleep(0.5)
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            total += len(b)
        c.close()
    finally:
        stop.set()
        t.join()
    assert total == 64 << 20
    # Far below the object: the growth is the output bound and a chunk.
    assert peak[0] - before < 16 << 20, (before, peak[0])
    # The connection's worker serves on.
    assert host.json("GET", "/r/who", headers=on("acme"))[0] == 200


def test_res_blob_client_gone_mid_stream(host):
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", host.port))
        s.sendall(b"GET /r/blob/big HTTP/1.1\r\nHost: x\r\nX-Platform: acme\r\n\r\n")
        s.recv(65536)
        s.close()
    time.sleep(0.3)
    pid = worker_pid(host)
    # The files were closed: no fakestore temp file is held open.
    fds = os.listdir("/proc/%d/fd" % pid)
    held = [os.readlink("/proc/%d/fd/%s" % (pid, f)) for f in fds
            if os.path.exists("/proc/%d/fd/%s" % (pid, f))]
    assert not [f for f in held if "fakestore-" in f]
    assert host.json("GET", "/r/who", headers=on("acme"))[0] == 200


# ---- who is calling ----------------------------------------------------------

def test_platform_tenant_path_and_own_stack(host):
    st, _, body = host.json("GET", "/r/who", headers=on(
        "acme", **{"X-Tenant-Path": "eu/fr"}))
    assert st == 200
    assert body == {"platform": "acme", "tenant_path": "eu/fr",
                    "stack": "resfeat", "version": "1.0.0", "own": "NNO_OK",
                    "caller": 2, "set_tenant_path": "NNO_ESTATE",
                    # a feature package may list a stack's packages
                    # (the console does); a NULL stack is refused
                    "stack_package_at": "NNO_EINVAL",
                    "platform_event": "NNO_ESTATE"}
    st, _, body = host.json("GET", "/r/who", headers=on("acme"))
    assert body["tenant_path"] == "" and body["caller"] == 0


def test_tenant_path_bounds(host):
    ok = "/".join("t%d" % i for i in range(16))
    st, _, body = host.json("GET", "/r/who", headers=on(
        "acme", **{"X-Tenant-Path": ok}))
    assert st == 200 and body["tenant_path"] == ok
    for bad, err in (("/".join("t%d" % i for i in range(17)), "NNO_ETOOBIG"),
                     ("a" * 1024, "NNO_ETOOBIG"), ("a//b", "NNO_EINVAL"),
                     ("/a", "NNO_EINVAL")):
        st, _, body = host.json("GET", "/r/who", headers=on(
            "acme", **{"X-Tenant-Path": bad}))
        assert st == 400 and body["detail"] == err, bad


def test_stack_package_at_for_core_plugins(host):
    st, h, body = host.json("GET", "/fakestore/packages")
    assert st == 200 and h["x-own-stack"] == "NNO_ENOENT"
    assert [p["name"] for p in body] == ["resold", "resfeat"]
    assert body[0]["resources"] == []
    assert body[1]["resources"] == [{"type": "sql", "name": "notes"},
                                    {"type": "kv", "name": "cache"},
                                    {"type": "blob", "name": "files"}]
    for p in body:
        assert os.path.isabs(p["dir"]) and p["version"] == "1.0.0"
        assert os.path.isfile(os.path.join(p["dir"], "package.json"))


# ---- platform_event ----------------------------------------------------------

def test_platform_event_reaches_the_hook_with_its_platform(host):
    log(host)
    st, _, body = host.json("POST", "/fakestore/event/acme/1")
    assert st == 200 and body == {"status": "NNO_OK", "message": None}
    lines = log(host)
    # The package's kv put ran on acme's resource, as the operator; the
    # ABI 1.1 package (resold) was not asked (its hook would abort).
    assert lines == ["enter acme",
                     "kv-p acme resfeat resfeat kv cache event-1-caller-1",
                     "leave acme"]


def test_platform_event_failure_comes_back(host):
    st, _, body = host.json("POST", "/fakestore/event/failme/2")
    assert st == 200
    assert body == {"status": "NNO_EREFUSED",
                    "message": "cannot activate on failme"}
    st, _, body = host.json("POST", "/fakestore/event/busy/1")
    assert body == {"status": "NNO_EBUSY", "message": "NNO_EBUSY"}
    st, _, body = host.json("POST", "/fakestore/event/Bad!/1")
    assert body == {"rc": "NNO_EINVAL"}
    st, _, body = host.json("POST", "/fakestore/event/acme/9")
    assert body == {"rc": "NNO_EINVAL"}


# ---- manifests and migrations ----------------------------------------------

def copy_stack(tmp_path):
    dst = tmp_path / "stacks"
    shutil.copytree(RESFEAT, str(dst))
    return dst, dst / "resfeat" / "1.0.0" / "packages" / "resfeat"


def check_package(pkg):
    return subprocess.run([NNO, "check-package", str(pkg)],
                          capture_output=True, text=True)


def test_migrations_folder_checked_by_name(tmp_path):
    _, pkg = copy_stack(tmp_path)
    m = pkg / "migrations" / "notes"
    m.mkdir(parents=True)
    (m / "0001_init.sql").write_text("CREATE TABLE n (id INTEGER);\n")
    (m / "0002_more.sql").write_text("ALTER TABLE n ADD COLUMN b TEXT;\n")
    r = check_package(pkg)
    assert r.returncode == 0, r.stderr
    cases = [
        ("0004_gap.sql", "migrations/notes: 0003 is missing"),
        ("0002_again.sql", "migrations/notes: number 0002 is used twice"),
        ("3_short.sql", "migrations/notes/3_short.sql: expected a file named "
                        "NNNN_what.sql"),
        ("0003_x.txt", "expected a file named NNNN_what.sql"),
    ]
    for name, want in cases:
        (m / name).write_text("SELECT 1;\n")
        r = check_package(pkg)
        assert r.returncode != 0 and want in r.stderr, (name, r.stderr)
        (m / name).unlink()
    for folder in ("cache", "other"):  # kv "cache": not an sql resource
        (pkg / "migrations" / folder).mkdir()
        r = check_package(pkg)
        assert r.returncode != 0
        assert ("migrations/%s is not a folder named for an sql resource "
                "the manifest declares" % folder) in r.stderr
        (pkg / "migrations" / folder).rmdir()
    assert check_package(pkg).returncode == 0


def test_loader_refuses_a_stack_with_bad_migrations(make_host, tmp_path):
    stacks, pkg = copy_stack(tmp_path)
    m = pkg / "migrations" / "notes"
    m.mkdir(parents=True)
    (m / "0002_late.sql").write_text("SELECT 1;\n")
    h = make_host(workers=1, stacks=[str(stacks)]).start()
    e = h.wait_log(lambda e: e.get("msg") == "stack refused" and
                   e.get("name") == "resfeat@1.0.0")
    assert "0001 is missing" in e["error"]
    assert h.request("GET", "/old")[0] == 404


def test_manifest_resources_refused_with_the_entry(tmp_path):
    _, pkg = copy_stack(tmp_path)
    man = json.loads((pkg / "package.json").read_text())
    man["resources"].append({"type": "sql", "name": "notes"})
    (pkg / "package.json").write_text(json.dumps(man))
    r = check_package(pkg)
    assert r.returncode != 0
    assert ('field "resources[3]": duplicate resource "sql notes", already '
            'declared by resources[0]') in r.stderr
