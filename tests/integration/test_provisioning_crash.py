"""Crash safety and deletion through the real registry API: a worker killed
(SIGKILL) at every provisioning step of a platform's creation with the
default stack and of its deletion, then the whole host killed and started
again without the failpoint, leaves a platform that is whole or gone, with
no file no row names, no row naming a missing file and an empty journal;
the same call sent again succeeds. A deletion waits for the requests using
the platform, and removes one platform's data only.

Uses the test-only provisioning build (BUILD/tests/failpoint-plugins/,
NNO_FAILPOINT_KILL=<step> raises SIGKILL at that step)."""
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time

import pytest

from conftest import BUILD, SOURCE

FAILPOINT_PLUGINS = os.path.join(BUILD, "tests", "failpoint-plugins")


# -- the steps, read from the default stack's manifests ------------------------

def default_stack_resources():
    """[(type, name)] the default stack's packages declare, in the order
    stack_activate makes them (package order, then manifest order; a
    resource two packages declare is made once)."""
    with open(os.path.join(SOURCE, "packages", "stacks", "default",
                           "stack.json")) as f:
        stack = json.load(f)
    out = []
    for pkg in stack["packages"]:
        with open(os.path.join(SOURCE, "packages", pkg["name"],
                               "package.json")) as f:
            man = json.load(f)
        for r in man.get("resources", []):
            if (r["type"], r["name"]) not in out:
                out.append((r["type"], r["name"]))
    return out


RESOURCES = default_stack_resources()
# platform_create, then each resource made, then each sql one migrated,
# then the packages told (plugins/provisioning/steps.c, provision.c).
CREATE_STEPS = (["platform:create"] +
                ["%s:default-%s:create" % r for r in RESOURCES] +
                ["sql:default-%s:migrate" % n for t, n in RESOURCES
                 if t == "sql"] +
                ["event:activated"])
DELETE_STEPS = [("remove:files", False), ("archive", True),
                ("remove:files", True)]


# -- hosts ---------------------------------------------------------------------

def fp_host(make_host, env=None, **kw):
    kw.setdefault("workers", 1)
    return make_host(core=True, env=env or {},
                     config={"plugin_dir": FAILPOINT_PLUGINS,
                             "core_plugins": ["iam", "registry",
                                              "provisioning"]}, **kw)


def group_pids(pgid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            out.append(int(d))
    return out


def kill_all(h):
    """SIGKILL the master and every worker (one process group), and wait
    until each is gone: a process still exiting holds its locks and looks
    alive to the next start."""
    try:
        os.killpg(h.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    h.proc.wait()
    h.stop()  # closes the log
    deadline = time.time() + 10
    while group_pids(h.proc.pid):
        assert time.time() < deadline, group_pids(h.proc.pid)
        time.sleep(0.02)


def restart_clean(h):
    kill_all(h)
    h.env.pop("NNO_FAILPOINT_KILL", None)
    h.start()


def call_dies(h, method, path, body=None, headers=None):
    """An operator call during which the worker is killed: the connection
    drops without an answer."""
    try:
        st, _, b = h.api(method, path, body, headers=headers, timeout=10)
    except (http.client.HTTPException, ConnectionError, socket.timeout):
        return
    raise AssertionError("%s %s answered %d %r: the failpoint did not kill "
                         "the worker" % (method, path, st, b))


# -- what must hold after any crash --------------------------------------------

def core_db(h):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(h.data, "core.db"),
                           uri=True, timeout=5)


def journal(h):
    db = core_db(h)
    try:
        return db.execute("SELECT op, platform, step FROM prov_journal"
                          ).fetchall()
    finally:
        db.close()


def settled(h, pid, timeout=15):
    """Wait until recovery and the registry's start-up sweep are done: the
    journal is empty and the platform is not left "deleting"."""
    deadline = time.time() + timeout
    while True:
        j = journal(h)
        st, _, p = h.api("GET", "/platforms/" + pid)
        if not j and (st == 404 or p.get("status") != "deleting"):
            return st, p
        if time.time() > deadline:
            raise AssertionError("not settled: journal %r, platform %r\n%s" %
                                 (j, p, h.log_text()))
        time.sleep(0.1)


def resource_files(pdir):
    """{(type, file name)} under the platform's sql/, kv/ and blob/."""
    out = set()
    for t in ("sql", "kv", "blob"):
        d = os.path.join(pdir, t)
        if os.path.isdir(d):
            out |= {(t, n) for n in os.listdir(d)}
    return out


def assert_consistent(h, pid, whole=True):
    """The platform is whole (every default-stack resource listed "ready",
    its file there, nothing else there) or gone (no folder, no rows)."""
    st, p = settled(h, pid)
    assert journal(h) == []
    pdir = os.path.join(h.data, "platforms", pid)
    platforms = os.path.join(h.data, "platforms")
    leftovers = [n for n in os.listdir(platforms) if n.startswith(".removing-")]
    assert leftovers == [], leftovers
    db = core_db(h)
    try:
        rows = db.execute("SELECT stack, type, name, state FROM prov_resources"
                          " WHERE platform = ?", (pid,)).fetchall()
    finally:
        db.close()
    if st == 404:
        assert not os.path.exists(pdir), os.listdir(pdir)
        assert rows == []
        return None
    assert st == 200 and p["status"] == "active", p
    items = h.api("GET", "/platforms/%s/resources" % pid)[2]["items"]
    assert all(r["state"] == "ready" for r in items), items
    if whole:
        assert sorted((r["type"], r["name"]) for r in items) == \
            sorted(RESOURCES), items
    named = set()
    for stack, t, n, state in rows:
        f = "%s-%s-%s" % (pid, stack, n) + (".db" if t != "blob" else "")
        path = os.path.join(pdir, t, f)
        assert (os.path.isdir if t == "blob" else os.path.isfile)(path), path
        named.add((t, f))
    files = resource_files(pdir)
    # sqlite's own companions of a named database are not orphans
    orphans = {(t, f) for t, f in files
               if (t, f) not in named and not any(
                   t == nt and f in (nf + "-wal", nf + "-shm", nf + "-journal")
                   for nt, nf in named)}
    assert orphans == set(), orphans
    assert os.path.isdir(os.path.join(pdir, "shell"))
    return p


# -- 1. a worker killed at each step --------------------------------------------

def test_the_steps_are_those_of_the_code():
    """Every step named here is a failpoint the plugin's sources name (a
    renamed step would otherwise test nothing)."""
    src = ""
    d = os.path.join(SOURCE, "plugins", "provisioning")
    for n in os.listdir(d):
        if n.endswith(".c"):
            with open(os.path.join(d, n)) as f:
                src += f.read()
    for literal in ("platform:create", "event:activated", "archive",
                    "remove:files", "blob:put:rename", '"%s:%s-%s:create"',
                    '"sql:%s-%s:migrate"'):
        assert 'prov_failpoint("%s")' % literal in src or literal in src, \
            literal
    assert len(CREATE_STEPS) == 1 + len(RESOURCES) + \
        sum(t == "sql" for t, _ in RESOURCES) + 1
    assert ("sql", "auth") in RESOURCES and ("blob", "files") in RESOURCES


@pytest.mark.parametrize("step", CREATE_STEPS)
def test_a_create_killed_at_each_step(make_host, step):
    h = fp_host(make_host, env={"NNO_FAILPOINT_KILL": step})
    h.start()
    pid = "cr-c"
    body = {"id": pid, "name": "C", "stacks": ["default"]}
    key = {"Idempotency-Key": "cr-once"}
    call_dies(h, "POST", "/platforms", body, key)
    restart_clean(h)
    # never answered: undone whole, whatever the step
    assert assert_consistent(h, pid) is None
    st, _, page = h.api("GET", "/audit?target=platform:%s&action="
                        "platform.provision_failed" % pid)
    assert st == 200 and [i["detail"]["step"] for i in page["items"]] == \
        ["interrupted"], page
    # the same call (its key too) now succeeds, at once
    st, _, p = h.api("POST", "/platforms", body, headers=key, timeout=5)
    assert st == 201, p
    assert assert_consistent(h, pid) is not None


def test_a_create_killed_is_undone_once_by_two_workers(make_host):
    """Both workers of the next start see the interrupted creation; one
    undoes it, the other leaves it to that one."""
    step = "sql:default-notes:create"
    h = fp_host(make_host, env={"NNO_FAILPOINT_KILL": step}, workers=2)
    h.start()
    pid = "cr-2"
    body = {"id": pid, "name": "C", "stacks": ["default"]}
    call_dies(h, "POST", "/platforms", body)
    restart_clean(h)
    assert assert_consistent(h, pid) is None
    h.wait_log(lambda e: "undid the interrupted creation" in e.get("msg", ""))
    time.sleep(0.3)  # a second (wrong) undoing would be logged by now
    undone = [e for e in h.log_lines()
              if "undid the interrupted creation" in e.get("msg", "")]
    assert len(undone) == 1, undone
    st, _, page = h.api("GET", "/audit?target=platform:%s&action="
                        "platform.provision_failed" % pid)
    assert st == 200 and len(page["items"]) == 1, page
    st, _, p = h.api("POST", "/platforms", body)
    assert st == 201, p
    assert assert_consistent(h, pid) is not None


@pytest.mark.parametrize("step,keep", DELETE_STEPS)
def test_a_delete_killed_at_each_step(make_host, step, keep):
    h = fp_host(make_host, env={"NNO_FAILPOINT_KILL": step})
    h.start()
    pid = "cr-d"
    h.platform(pid)
    k = h.platform_key(pid, ["features:notes:write"])["key"]
    st, _, n = h.json("POST", "/p/%s/notes" % pid, body=b'{"title":"t"}',
                      headers={"Authorization": "Bearer " + k,
                               "Content-Type": "application/json"})
    assert st == 201, n
    path = "/platforms/%s%s" % (pid, "?keep_data=true" if keep else "")
    call_dies(h, "DELETE", path)
    restart_clean(h)
    assert assert_consistent(h, pid) is None
    archive = os.path.join(h.data, "archive")
    if keep:
        assert [n for n in os.listdir(archive) if n.startswith(pid + "-")]
    if os.path.isdir(archive):
        assert not [n for n in os.listdir(archive) if ".tmp" in n]
    # sent again: nothing left to delete; the id starts over empty
    st, _, b = h.api("DELETE", path)
    assert st == 404, b
    h.platform(pid)
    assert_consistent(h, pid)
    k = h.platform_key(pid, ["features:notes:write"])["key"]
    st, _, page = h.json("GET", "/p/%s/notes" % pid,
                         headers={"Authorization": "Bearer " + k})
    assert st == 200 and page["items"] == [], page


def test_a_blob_put_killed_between_write_and_rename(make_host):
    h = fp_host(make_host, env={"NNO_FAILPOINT_KILL": "blob:put:rename"})
    h.start()
    pid = "cr-b"
    h.platform(pid)
    k = h.platform_key(pid, ["features:notes:write"])["key"]
    auth = {"Authorization": "Bearer " + k}
    st, _, n = h.json("POST", "/p/%s/notes" % pid, body=b'{"title":"t"}',
                      headers=dict(auth, **{"Content-Type":
                                            "application/json"}))
    assert st == 201, n
    fpath = "/p/%s/notes/%d/files/a.bin" % (pid, n["id"])
    try:
        st, _, b = h.request("PUT", fpath, body=b"x" * 4096, headers=auth)
        raise AssertionError("answered %d %r" % (st, b))
    except (http.client.HTTPException, ConnectionError, socket.timeout):
        pass
    restart_clean(h)
    assert_consistent(h, pid)
    bucket = os.path.join(h.data, "platforms", pid, "blob",
                          "%s-default-files" % pid)
    deadline = time.time() + 10
    while [f for f in os.listdir(bucket) if f.startswith(".tmp-")] and \
            time.time() < deadline:
        time.sleep(0.1)
    assert [f for f in os.listdir(bucket) if f.startswith(".tmp-")] == []
    assert [f for f in os.listdir(bucket) if f.startswith("o")] == []
    st, _, _ = h.request("GET", fpath, headers=auth)
    assert st == 404
    st, _, b = h.request("PUT", fpath, body=b"y" * 4096, headers=auth)
    assert st in (200, 201), b
    st, _, b = h.request("GET", fpath, headers=auth)
    assert st == 200 and b == b"y" * 4096


# -- 2. deleting a platform in use -----------------------------------------------

def is_problem(st, hd, body):
    """A failure answered cleanly: a problem body with its request id."""
    if hd.get("content-type") != "application/problem+json":
        return False
    b = json.loads(body)
    return b.get("status") == st and b.get("request_id") == hd["x-request-id"]


def notes_platform(h, pid):
    h.platform(pid, plan="unmetered")
    k = h.platform_key(pid, ["features:notes:write"])["key"]
    return {"Authorization": "Bearer " + k}


def new_note(h, pid, auth, title):
    st, _, b = h.request("POST", "/p/%s/notes" % pid,
                         headers=dict(auth, **{"Content-Type":
                                               "application/json"}),
                         body=json.dumps({"title": title}).encode())
    assert st == 201, b
    return json.loads(b)


def test_a_delete_waits_for_requests_in_flight(make_host):
    h = fp_host(make_host, workers=2)
    h.start()
    pid = "cr-w"
    auth = notes_platform(h, pid)
    n = new_note(h, pid, auth, "first")
    workers = set(h.worker_pids())
    answers, stop = [], threading.Event()

    def writer(i):
        while not stop.is_set():
            try:
                st, hd, b = h.request(
                    "POST", "/p/%s/notes" % pid, body=json.dumps(
                        {"title": "w%d" % i}).encode(),
                    headers=dict(auth, **{"Content-Type":
                                          "application/json"}))
            except OSError as e:
                answers.append(("reset", repr(e)))
                continue
            answers.append((st, hd, b))
            if st != 201:
                return

    # a file PUT whose body arrives slowly, half before the DELETE
    size = 256 << 10
    slow = socket.create_connection(("127.0.0.1", h.port), timeout=20)
    slow.sendall(("PUT /p/%s/notes/%d/files/big.bin HTTP/1.1\r\n"
                  "Host: 127.0.0.1\r\nAuthorization: %s\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  "Content-Length: %d\r\nConnection: close\r\n\r\n" %
                  (pid, n["id"], auth["Authorization"], size)).encode())
    slow.sendall(b"z" * (size // 2))
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while len(answers) < 8:
        time.sleep(0.01)
    st, hd, b = h.request("DELETE", "/api/v1/platforms/" + pid,
                          headers={"Authorization": "Bearer " + h.op_key()},
                          timeout=40)
    assert st == 204, b
    slow.sendall(b"z" * (size - size // 2))
    data = b""
    while True:
        c = slow.recv(65536)
        if not c:
            break
        data += c
    slow.close()
    stop.set()
    for t in threads:
        t.join(20)
    # the slow PUT: done before the folder went, or refused cleanly
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    hdrs = {k.strip().lower().decode(): v.strip().decode() for k, _, v in
            (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    assert status in (200, 201) or is_problem(status, hdrs, body), data[:400]
    # every write answered: created, or refused with a problem body
    assert not [a for a in answers if a[0] == "reset"], answers
    assert all(a[0] == 201 or is_problem(*a) for a in answers), \
        [a for a in answers if a[0] != 201]
    assert [a for a in answers if a[0] == 201]
    assert not [a for a in answers if a[0] >= 500 and a[0] != 503], answers
    assert set(h.worker_pids()) == workers  # no worker died
    assert not os.path.exists(os.path.join(h.data, "platforms", pid))
    assert journal(h) == []
    # the id starts over, empty
    auth = notes_platform(h, pid)
    st, _, b = h.request("GET", "/p/%s/notes" % pid, headers=auth)
    assert st == 200 and json.loads(b)["items"] == [], b
    st, _, b = h.request("GET", "/p/%s/notes/%d" % (pid, n["id"]),
                         headers=auth)
    assert st == 404, b


def test_a_delete_waits_for_a_download_then_goes_ahead(make_host, tmp_path):
    """A file being read slowly when its platform is deleted: the request
    holds the platform until its body has streamed, so the DELETE waits for
    it — for remove_wait_ms, not for as long as a client cares to read
    slowly — then removes the platform under it; the download still gets
    every byte of the file, whole, from its open file."""
    plugins = str(tmp_path / "plugins")
    shutil.copytree(FAILPOINT_PLUGINS, plugins)
    pj = os.path.join(plugins, "provisioning", "package.json")
    with open(pj) as f:
        pkg = json.load(f)
    pkg["config"]["remove_wait_ms"] = 3000
    with open(pj, "w") as f:
        json.dump(pkg, f)
    h = make_host(core=True, workers=1, env={},
                  config={"plugin_dir": plugins,
                          "core_plugins": ["iam", "registry", "provisioning"],
                          "limits": {"max_body_bytes": 24 << 20}})
    h.start()
    pid = "cr-g"
    auth = notes_platform(h, pid)
    n = new_note(h, pid, auth, "big")
    fp = "/p/%s/notes/%d/files/big.bin" % (pid, n["id"])
    content = os.urandom(1 << 20) * 16
    st, _, b = h.request("PUT", fp, body=content, headers=auth, timeout=30)
    assert st in (200, 201), b
    s = socket.socket()
    # 16 MiB: more than the socket buffers hold, so the answer is still
    # being sent while nothing reads it
    s.settimeout(30)
    s.connect(("127.0.0.1", h.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s"
               "\r\nConnection: close\r\n\r\n" %
               (fp, auth["Authorization"])).encode())
    got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    done = {}
    t = threading.Thread(target=lambda: done.update(
        r=h.api("DELETE", "/platforms/" + pid, timeout=40)))
    t.start()
    time.sleep(1.5)
    assert "r" not in done  # waiting for the download
    assert os.path.exists(os.path.join(h.data, "platforms", pid))
    t.join(20)  # past remove_wait_ms, with the download still stalled
    assert done["r"][0] == 204, done
    assert not os.path.exists(os.path.join(h.data, "platforms", pid))
    h.wait_log(lambda e: "removing it under them" in e.get("msg", ""))
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        got += c
    s.close()
    assert got.partition(b"\r\n\r\n")[2] == content
    assert journal(h) == []
    st, _, b = h.request("GET", fp, headers=auth)
    assert st in (401, 404), b  # the platform (and its keys) are gone


# -- 3. one platform's deletion leaves the others' data ------------------------

def test_deleting_one_platform_leaves_another_whole(make_host):
    h = fp_host(make_host)
    h.start()
    mine = {}
    for pid in ("cr-a", "cr-b"):
        auth = notes_platform(h, pid)
        n = new_note(h, pid, auth, "note of " + pid)
        fp = "/p/%s/notes/%d/files/f.txt" % (pid, n["id"])
        st, _, b = h.request("PUT", fp, body=pid.encode() * 100,
                             headers=auth)
        assert st in (200, 201), b
        mine[pid] = (auth, n, fp)
    bdir = os.path.join(h.data, "platforms", "cr-b")
    before = {os.path.relpath(os.path.join(d, f), bdir)
              for d, _, fs in os.walk(bdir) for f in fs}
    st, _, b = h.api("DELETE", "/platforms/cr-a")
    assert st == 204, b
    assert not os.path.exists(os.path.join(h.data, "platforms", "cr-a"))
    after = {os.path.relpath(os.path.join(d, f), bdir)
             for d, _, fs in os.walk(bdir) for f in fs}
    assert before <= after, before - after
    auth, n, fp = mine["cr-b"]
    st, _, b = h.request("GET", "/p/cr-b/notes/%d" % n["id"], headers=auth)
    assert st == 200 and json.loads(b)["title"] == "note of cr-b", b
    st, _, b = h.request("GET", fp, headers=auth)
    assert st == 200 and b == b"cr-b" * 100
    assert_consistent(h, "cr-b")
