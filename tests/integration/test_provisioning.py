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
                  env={"NNO_FAILPOINT": "platform:create"})
    h.start()
    st, _, _ = h.api("POST", "/platforms", {"id": PLATFORM, "name": "P"})
    assert st == 201
    st, _, page = h.api("GET", "/platforms/%s/resources" % PLATFORM)
    assert st == 200 and page["items"] == [], page
