"""The provisioning core plugin, black box: the resources routes (a page
with the platform's storage quota, one resource, who may read them) and
crash recovery at start (an intent left open in core.db is undone before
the first request, its files removed). Resources are created by stack
activation through the registry; until that path exists, rows are put in
core.db directly, as an activation would have left them."""
import json
import os
import sqlite3

import pytest

from conftest import Host

PLATFORM = "prov-a"


def problem(resp, status):
    st, h, body = resp
    assert st == status, resp
    assert h["content-type"] == "application/problem+json", resp
    assert body["request_id"], body
    return body


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    host = Host(tmp_path_factory.mktemp("prov"), workers=2, core=True)
    host.start()
    st, _, _ = host.api("POST", "/platforms", {"id": PLATFORM, "name": "P"})
    assert st == 201
    yield host
    host.stop()


def add_rows(h, rows):
    """Put resource rows in core.db as an activation leaves them, and
    their files where the local driver keeps them."""
    db = sqlite3.connect(os.path.join(h.data, "core.db"), timeout=10)
    with db:
        for stack, typ, name, state in rows:
            db.execute(
                "INSERT INTO prov_resources(platform, incarnation, stack, type,"
                " name, driver, state, error, created_at, updated_at) VALUES"
                " (?, '', ?, ?, ?, 'local', ?, NULL, '2026-01-01T00:00:00Z',"
                " '2026-01-01T00:00:00Z')",
                (PLATFORM, stack, typ, name, state))
    db.close()
    pdir = os.path.join(h.data, "platforms", PLATFORM)
    for stack, typ, name, _ in rows:
        os.makedirs(os.path.join(pdir, typ), mode=0o700, exist_ok=True)
        if typ == "sql":
            path = os.path.join(pdir, typ, "%s-%s-%s.db" % (PLATFORM, stack,
                                                           name))
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600),
                      "wb") as f:
                f.write(b"\0" * 4096)


def test_an_empty_platform_has_its_quota(h):
    st, hd, page = h.api("GET", "/platforms/%s/resources" % PLATFORM)
    assert st == 200 and hd["content-type"] == "application/json"
    assert page == {"items": [], "next_cursor": None,
                    "quota": {"limit_bytes": 100 * 1024 * 1024,
                              "used_bytes": 0}}
    # the plan sets the limit
    st, _, _ = h.api("PATCH", "/platforms/" + PLATFORM, {"plan": "pro"},
                     headers={"If-Match": "*"})
    assert st == 200
    st, _, page = h.api("GET", "/platforms/%s/resources" % PLATFORM)
    assert page["quota"]["limit_bytes"] == 10240 * 1024 * 1024
    h.api("PATCH", "/platforms/" + PLATFORM, {"plan": "free"},
          headers={"If-Match": "*"})


def test_unknown_platforms_and_resources_answer_404(h):
    problem(h.api("GET", "/platforms/nope-x/resources"), 404)
    problem(h.api("GET", "/platforms/%s/resources/sql/default-none"
                  % PLATFORM), 404)
    problem(h.api("GET", "/platforms/%s/resources/table/x" % PLATFORM), 404)
    problem(h.api("GET", "/platforms/%s/resources?cursor=%%%%" % PLATFORM),
            422)
    problem(h.api("GET", "/platforms/%s/resources?limit=0" % PLATFORM), 422)


def test_pages_and_one_resource(h):
    rows = [("default", "sql", "auth", "ready"),
            ("default", "kv", "cache", "ready"),
            ("shop", "sql", "orders", "ready"),
            ("shop", "blob", "images", "failed")]
    add_rows(h, rows)
    seen, cursor = [], None
    while True:
        q = "?limit=3" + ("&cursor=" + cursor if cursor else "")
        st, _, page = h.api("GET", "/platforms/%s/resources%s" % (PLATFORM, q))
        assert st == 200, page
        assert set(page["quota"]) == {"limit_bytes", "used_bytes"}
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [(r["type"], r["stack"], r["name"]) for r in seen] == [
        ("blob", "shop", "images"), ("kv", "default", "cache"),
        ("sql", "default", "auth"), ("sql", "shop", "orders")]
    one = seen[2]
    assert set(one) == {"type", "name", "stack", "driver", "state", "error",
                        "size_bytes", "created_at", "updated_at"}
    assert one["driver"] == "local" and one["state"] == "ready"
    assert one["size_bytes"] == 4096 and one["error"] is None
    st, _, page = h.api("GET", "/platforms/%s/resources" % PLATFORM)
    assert page["quota"]["used_bytes"] >= 2 * 4096
    # one resource: by {stack}-{name}, or by its name when unambiguous
    st, _, r = h.api("GET", "/platforms/%s/resources/sql/shop-orders"
                     % PLATFORM)
    assert st == 200 and r["name"] == "orders" and r["stack"] == "shop", r
    assert r["platform"] == PLATFORM
    st, _, r = h.api("GET", "/platforms/%s/resources/sql/auth" % PLATFORM)
    assert st == 200 and r["stack"] == "default", r
    problem(h.api("GET", "/platforms/%s/resources/kv/orders" % PLATFORM), 404)


def test_who_may_read_them(h):
    reader = h.platform_key(PLATFORM, scopes=["resources:read"])["key"]
    other = h.platform_key(PLATFORM, scopes=["tenants:read"])["key"]
    st, _, page = h.api("GET", "/platforms/%s/resources" % PLATFORM,
                        key=reader)
    assert st == 200, page
    st, _, _ = h.api("GET", "/platforms/%s/resources/sql/shop-orders"
                     % PLATFORM, key=reader)
    assert st == 200
    problem(h.api("GET", "/platforms/%s/resources" % PLATFORM, key=other), 403)
    problem(h.api("GET", "/platforms/%s/resources" % PLATFORM, key=False), 401)
    h.api("POST", "/platforms", {"id": "prov-b", "name": "B"})
    b = h.platform_key("prov-b", scopes=["resources:read"])["key"]
    problem(h.api("GET", "/platforms/%s/resources" % PLATFORM, key=b), 403)


def test_an_interrupted_activation_is_undone_at_start(make_host):
    """A host killed during an activation left a journal intent naming a
    resource it had created: the next start removes the file and the row
    before serving."""
    h = make_host(workers=2, core=True)
    h.start()
    st, _, _ = h.api("POST", "/platforms", {"id": PLATFORM, "name": "P"})
    assert st == 201
    h.stop()
    pdir = os.path.join(h.data, "platforms", PLATFORM)
    os.makedirs(os.path.join(pdir, "kv"), mode=0o700, exist_ok=True)
    orphan = os.path.join(pdir, "kv", "%s-default-cache.db" % PLATFORM)
    with open(os.open(orphan, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(b"x")
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    with db:
        db.execute(
            "INSERT INTO prov_resources(platform, stack, type, name, state,"
            " created_at, updated_at) VALUES (?, 'default', 'kv', 'cache',"
            " 'pending', 'x', 'x')", (PLATFORM,))
        db.execute(
            "INSERT INTO prov_journal(op, platform, args, step, created_at)"
            " VALUES ('activate', ?, ?, 'create', 'x')",
            (PLATFORM, json.dumps({"stack": "default", "pid": 0, "created": [
                {"type": "kv", "stack": "default", "name": "cache"}]})))
    db.close()
    h.start()
    h.wait_log(lambda e: "recovered 1 interrupted" in e.get("msg", ""))
    assert not os.path.exists(orphan)
    st, _, page = h.api("GET", "/platforms/%s/resources" % PLATFORM)
    assert st == 200 and page["items"] == [], page
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    assert db.execute("SELECT count(*) FROM prov_journal").fetchone() == (0,)
    db.close()


def test_failpoints_exist_only_in_the_test_build(make_host):
    """The plugin the build installs knows no failpoint; the test-only copy
    (with copies of the other core plugins beside it) loads and serves."""
    from conftest import BUILD
    installed = os.path.join(BUILD, "lib", "nno", "plugins", "provisioning",
                             "libprovisioning.so")
    fp_dir = os.path.join(BUILD, "tests", "failpoint-plugins")
    testing = os.path.join(fp_dir, "provisioning", "libprovisioning.so")
    with open(installed, "rb") as f:
        assert b"NNO_FAILPOINT" not in f.read()
    with open(testing, "rb") as f:
        assert b"NNO_FAILPOINT" in f.read()
    h = make_host(workers=1, core=True, config={"plugin_dir": fp_dir},
                  env={"NNO_FAILPOINT": "archive"})
    h.start()
    st, _, _ = h.api("POST", "/platforms", {"id": PLATFORM, "name": "P"})
    assert st == 201
    st, _, page = h.api("GET", "/platforms/%s/resources" % PLATFORM)
    assert st == 200 and page["items"] == [], page


# -- the control plane, called by a stand-in for the registry ----------------
#
# tests/fixtures/plugins/provcaller.c, in the failpoint build's plugin
# folder: POST /api/v1/test-prov/{platform}/{op} calls nno.provisioning and
# answers what `done` said. (stack_activate needs the host's
# stack_package_at and platform_event, which this host does not provide.)

def fp_host(make_host, env=None, workers=1):
    from conftest import BUILD
    fp_dir = os.path.join(BUILD, "tests", "failpoint-plugins")
    h = make_host(workers=workers, core=True, config={"plugin_dir": fp_dir})
    h.start()
    # made before the failpoint is on: the registry's create provisions too
    st, _, _ = h.api("POST", "/platforms", {"id": PLATFORM, "name": "P"})
    assert st == 201
    if env:
        h.stop()
        h.env.update(env)
        h.start()
    return h


def prov_call(h, op, platform=PLATFORM):
    st, _, body = h.api("POST", "/api/v1/test-prov/%s/%s" % (platform, op))
    assert st == 200, body
    return body


def test_platform_create_makes_the_folders_once(make_host):
    h = fp_host(make_host)
    assert prov_call(h, "create") == {"status": 0, "step": None,
                                      "message": None}
    pdir = os.path.join(h.data, "platforms", PLATFORM)
    for sub in ("shell", "sql", "kv", "blob"):
        st = os.lstat(os.path.join(pdir, sub))
        assert st.st_mode & 0o777 == 0o700
    assert os.lstat(os.path.join(pdir, ".inuse")).st_mode & 0o777 == 0o600
    assert prov_call(h, "create")["status"] == 0  # idempotent
    assert prov_call(h, "create", platform="Bad_Id") == {"status": -1,
                                                         "returned": True}


def test_a_failed_create_leaves_nothing(make_host):
    h = fp_host(make_host, env={"NNO_FAILPOINT": "platform:create"})
    # a platform the registry did not provision (PLATFORM's folder exists)
    r = prov_call(h, "create", platform="prov-new")
    assert r["status"] == -9 and r["step"] == "platform:create", r
    assert not os.path.exists(os.path.join(h.data, "platforms", "prov-new"))


def test_remove_keeps_an_archive_when_asked(make_host):
    import tarfile
    h = fp_host(make_host)
    assert prov_call(h, "create")["status"] == 0
    pdir = os.path.join(h.data, "platforms", PLATFORM)
    with open(os.path.join(pdir, "shell", "notes.txt"), "w") as f:
        f.write("kept")
    outside = os.path.join(h.data, "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "secret"), "w") as f:
        f.write("not archived, not removed")
    os.symlink(outside, os.path.join(pdir, "shell", "link"))
    r = prov_call(h, "remove-keep")
    archive = os.path.join(h.data, "archive",
                           "%s-00112233aabbccdd.tar.gz" % PLATFORM)
    assert r == {"status": 0, "step": None, "message": archive}, r
    assert not os.path.exists(pdir)
    assert os.path.exists(os.path.join(outside, "secret"))
    with tarfile.open(archive) as t:
        names = t.getnames()
        assert "shell/notes.txt" in names and "shell/link" not in names
        assert t.extractfile("shell/notes.txt").read() == b"kept"
    assert os.stat(archive).st_mode & 0o777 == 0o600
    # removing what is gone is no error
    assert prov_call(h, "remove")["status"] == 0


def test_a_failed_archive_removes_nothing(make_host):
    h = fp_host(make_host, env={"NNO_FAILPOINT": "archive"})
    assert prov_call(h, "create")["status"] == 0
    r = prov_call(h, "remove-keep")
    assert r["status"] == -9 and r["step"] == "archive", r
    assert os.path.isdir(os.path.join(h.data, "platforms", PLATFORM, "shell"))
    adir = os.path.join(h.data, "archive")
    assert not os.path.exists(adir) or not os.listdir(adir)


def test_a_removal_killed_midway_is_finished_at_restart(make_host):
    """The worker is killed at the archive step of a removal with
    keep_data: the worker that replaces it finds the intent, archives and
    removes the platform, and closes the intent."""
    h = fp_host(make_host, env={"NNO_FAILPOINT_KILL": "archive"})
    assert prov_call(h, "create")["status"] == 0
    with pytest.raises(Exception):
        h.api("POST", "/api/v1/test-prov/%s/remove-keep" % PLATFORM)
    h.wait_log(lambda e: "recovered 1 interrupted" in e.get("msg", ""),
               timeout=20)
    assert not os.path.exists(os.path.join(h.data, "platforms", PLATFORM))
    assert os.path.exists(os.path.join(
        h.data, "archive", "%s-00112233aabbccdd.tar.gz" % PLATFORM))
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    assert db.execute("SELECT count(*) FROM prov_journal").fetchone() == (0,)
    db.close()


def test_remove_waits_for_the_requests_using_the_platform(make_host):
    """A request using the platform holds a shared lock on its .inuse (what
    platform_enter takes): the removal waits until it is released."""
    import fcntl
    import threading
    import time
    h = fp_host(make_host)
    assert prov_call(h, "create")["status"] == 0
    pdir = os.path.join(h.data, "platforms", PLATFORM)
    fd = os.open(os.path.join(pdir, ".inuse"), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    released = []

    def release():
        time.sleep(1.0)
        assert os.path.isdir(pdir)  # still there while in use
        released.append(time.time())
        os.close(fd)
    t = threading.Thread(target=release)
    t.start()
    r = prov_call(h, "remove")
    done = time.time()
    t.join()
    assert r["status"] == 0, r
    assert released and done >= released[0]
    assert not os.path.exists(pdir)


def test_a_host_stopping_while_a_removal_waits_exits_cleanly(make_host):
    import fcntl
    import threading
    import time
    h = fp_host(make_host)
    assert prov_call(h, "create")["status"] == 0
    pdir = os.path.join(h.data, "platforms", PLATFORM)
    fd = os.open(os.path.join(pdir, ".inuse"), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    answers = []

    def call():
        try:
            answers.append(h.api("POST", "/api/v1/test-prov/%s/remove"
                                 % PLATFORM, timeout=20))
        except Exception as e:  # the host went away first
            answers.append(e)
    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)
    assert h.stop() == 0
    t.join()
    os.close(fd)
    assert os.path.isdir(pdir)  # never removed while in use
    assert "ERROR" not in h.log_text() and "Sanitizer" not in h.log_text()
