"""The registry's provisioning flows (registry/README.md, "Provisioning"),
black box through the operator API and the CLI.

Without a provisioning plugin the registry behaves as before: "stacks" on
create are activations only, DELETE removes the folder itself, keep_data
is refused. With one, every step goes through "nno.provisioning": here a
stand-in core plugin (tests/fixtures/plugins/fakeprov.c) that records each
call in DATA/fakeprov.log and fails the call named in DATA/fakeprov.fail,
so the registry's ordering, compensation, idempotency and answers are
checked on their own. The same flows against the real provisioning plugin
are in test_provisioning_flow.py."""
import http.server
import json
import os
import re
import shutil
import sqlite3
import threading
import time

import pytest

from conftest import BUILD
from test_cli import (assert_api_error, assert_usage_error, run, show,
                      table)

CORE_LIB = os.path.join(BUILD, "lib", "nno", "plugins")
FAKEPROV = os.path.join(BUILD, "tests", "plugins", "fakeprov")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
TITLES = {404: "Not Found", 409: "Conflict", 422: "Unprocessable Content",
          503: "Service Unavailable"}


def problem(resp, status, field=None):
    st, h, body = resp
    assert st == status, resp
    assert h["content-type"] == "application/problem+json", resp
    assert body["status"] == status and body["title"] == TITLES[status], resp
    assert body["request_id"] == h["x-request-id"], resp
    if field is not None:
        assert body.get("field") == field, resp
        assert body["detail"].startswith('field "%s": ' % field), resp
    return body


# -- hosts ------------------------------------------------------------------

def core_plugins(where, extra=()):
    """A plugin folder with copies of iam and registry (and `extra`, pairs
    of name and folder): every plugin of the folder loads, so a host
    pointed at it runs without the others (provisioning)."""
    os.makedirs(where)
    for name, src in (("iam", os.path.join(CORE_LIB, "iam")),
                      ("registry", os.path.join(CORE_LIB, "registry"))) + \
            tuple(extra):
        shutil.copytree(src, os.path.join(where, name))
    return where


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """iam and registry, without provisioning."""
    from conftest import Host
    tmp = tmp_path_factory.mktemp("plain")
    h = Host(tmp, workers=2, core=True,
             config={"plugin_dir": core_plugins(str(tmp / "plugins")),
                     "core_plugins": ["iam", "registry"]})
    h.start()
    h.url = "http://127.0.0.1:%d" % h.port
    yield h
    h.stop()


def with_fakeprov(make_host, tmp_path, workers=2):
    """A host whose core plugins are iam, registry and the stand-in."""
    plugins = core_plugins(
        str(tmp_path / ("plugins-%d" % len(os.listdir(tmp_path)))),
        [("fakeprov", FAKEPROV)])
    h = make_host(core=True, workers=workers,
                  config={"plugin_dir": str(plugins),
                          "core_plugins": ["iam", "registry", "fakeprov"]})
    h.url = "http://127.0.0.1:%d" % h.port
    return h


@pytest.fixture
def fp(make_host, tmp_path):
    h = with_fakeprov(make_host, tmp_path)
    h.start()
    return h


def calls(h, platform=None):
    """The calls the stand-in received, in order."""
    path = os.path.join(h.data, "fakeprov.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        out = [json.loads(line) for line in f if line.strip()]
    return [c for c in out if platform is None or c["platform"] == platform]


def fail(h, what):
    """Make the stand-in fail `what` ("stack_activate", ...; None: none)."""
    path = os.path.join(h.data, "fakeprov.fail")
    if what is None:
        if os.path.exists(path):
            os.unlink(path)
    else:
        with open(path, "w") as f:
            f.write(what)


def audit(h, pid, action):
    st, _, page = h.api("GET", "/audit?target=platform:%s&action=%s"
                        % (pid, action))
    assert st == 200, page
    return page["items"]


def stacks_of(h, pid):
    st, _, page = h.api("GET", "/platforms/%s/stacks" % pid)
    assert st == 200, page
    return {a["stack"]: a["version"] for a in page["items"]}


def default_version(h):
    st, _, s = h.api("GET", "/stacks/default")
    assert st == 200, s
    return s["versions"][-1]


# -- "stacks" on create: validation, without provisioning --------------------

def test_create_with_stacks_activates_them(plain):
    ver = default_version(plain)
    st, hd, p = plain.api("POST", "/platforms",
                          {"id": "st-a", "name": "A", "stacks": ["default"]})
    assert st == 201, p
    assert hd["location"] == "/api/v1/platforms/st-a"
    assert p["id"] == "st-a" and p["status"] == "active"
    assert stacks_of(plain, "st-a") == {"default": ver}
    # served at once, through the stack it was created with
    st, _, body = plain.json("GET", "/p/st-a/hello",
                             headers={"Authorization": "Bearer " +
                                      plain.platform_key("st-a")["key"]})
    assert st == 200, body
    acts = audit(plain, "st-a", "stack.activate")
    assert [a["detail"] for a in acts] == \
        [{"stack": "default", "version": ver, "previous": None}]
    # pinned to a version
    st, _, p = plain.api("POST", "/platforms", {
        "id": "st-b", "name": "B", "stacks": ["default@" + ver]})
    assert st == 201, p
    assert stacks_of(plain, "st-b") == {"default": ver}
    # an empty list is no stack
    st, _, p = plain.api("POST", "/platforms",
                         {"id": "st-c", "name": "C", "stacks": []})
    assert st == 201 and stacks_of(plain, "st-c") == {}


@pytest.mark.parametrize("stacks,detail", [
    ("default", 'field "stacks": expected'),
    ([7], "item 0: expected \"stack\" or \"stack@version\", got a "
          "non-string"),
    ([None], "got a null"),
    ([""], "item 0: expected"),
    (["@1.0.0"], "item 0: expected"),
    (["default@"], "item 0: expected"),
    (["nope"], 'item 0: no stack "nope" is installed'),
    (["default", "nope@1.0.0"], 'item 1: no stack "nope" is installed'),
    (["default@9.9.9"], 'item 0: stack "default" has no version "9.9.9" '
                        'installed'),
    (["default", "default"], 'item 1: stack "default" is listed twice'),
    (["default"] * 17, "at most 16 stacks, got 17"),
    (["x" * 65], "item 0: expected"),
])
def test_create_refuses_bad_stacks_and_creates_nothing(plain, stacks, detail):
    resp = plain.api("POST", "/platforms",
                     {"id": "st-bad", "name": "Bad", "stacks": stacks})
    body = problem(resp, 422, "stacks")
    assert detail in body["detail"], body
    problem(plain.api("GET", "/platforms/st-bad"), 404)
    assert audit(plain, "st-bad", "platform.create") == []


def test_create_with_stacks_is_idempotent(plain):
    hdr = {"Idempotency-Key": "st-idem-1"}
    body = {"id": "st-idem", "name": "I", "stacks": ["default"]}
    st, h1, p1 = plain.api("POST", "/platforms", body, headers=hdr)
    assert st == 201, p1
    st, h2, p2 = plain.api("POST", "/platforms", body, headers=hdr)
    assert st == 201 and p2 == p1 and h2["idempotent-replayed"] == "true"
    assert len(audit(plain, "st-idem", "stack.activate")) == 1


# -- DELETE ?keep_data, without provisioning ---------------------------------

def test_keep_data_is_parsed_and_needs_provisioning(plain):
    plain.api("POST", "/platforms", {"id": "kd-a", "name": "K"})
    for bad in ("yes", "1", "TRUE", ""):
        body = problem(plain.api("DELETE", "/platforms/kd-a?keep_data=" + bad),
                       422, "keep_data")
        assert body["detail"] == 'field "keep_data": expected true or false'
    body = problem(plain.api("DELETE", "/platforms/kd-a?keep_data=true"),
                   422, "keep_data")
    assert "needs the provisioning plugin" in body["detail"], body
    assert "nothing was deleted" in body["detail"], body
    st, _, p = plain.api("GET", "/platforms/kd-a")
    assert st == 200 and p["status"] == "active", p
    st, _, _ = plain.api("DELETE", "/platforms/kd-a?keep_data=false")
    assert st == 204
    problem(plain.api("GET", "/platforms/kd-a"), 404)


def test_the_registry_serves_no_resources_route(plain):
    # The provisioning plugin serves it (and its table left core.db).
    plain.api("POST", "/platforms", {"id": "res-a", "name": "R"})
    st, _, _ = plain.api("GET", "/platforms/res-a/resources")
    assert st == 404
    db = sqlite3.connect(os.path.join(plain.data, "core.db"))
    try:
        names = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = db.execute(
            "SELECT max(version) FROM schema_migrations").fetchone()[0]
    finally:
        db.close()
    assert "resources" not in names and "platforms" in names
    assert version >= 4


# -- with a provisioning plugin ----------------------------------------------

def test_create_provisions_then_activates_in_order(fp):
    ver = default_version(fp)
    st, hd, p = fp.api("POST", "/platforms",
                       {"id": "pv-a", "name": "A", "stacks": ["default"]})
    assert st == 201, p
    assert hd["location"] == "/api/v1/platforms/pv-a" and hd["etag"] == '"v1"'
    assert p["status"] == "active"
    c = calls(fp, "pv-a")
    assert [x["call"] for x in c] == ["platform_create", "stack_activate"]
    assert HEX16.match(c[0]["incarnation"]), c
    assert (c[1]["stack"], c[1]["version"]) == ("default", ver)
    assert stacks_of(fp, "pv-a") == {"default": ver}
    # a platform without stacks is provisioned all the same
    st, _, p = fp.api("POST", "/platforms", {"id": "pv-b", "name": "B"})
    assert st == 201, p
    assert [x["call"] for x in calls(fp, "pv-b")] == ["platform_create"]
    # the incarnation provisioning was given is the platform's
    db = sqlite3.connect(os.path.join(fp.data, "core.db"))
    try:
        inc = db.execute("SELECT incarnation FROM platforms WHERE id = 'pv-a'"
                         ).fetchone()[0]
    finally:
        db.close()
    assert inc == c[0]["incarnation"]


@pytest.mark.parametrize("step", ["platform_create", "stack_activate"])
def test_a_failed_step_is_undone_and_a_retry_succeeds(fp, step):
    pid = "pv-f-" + step.split("_")[1]
    fail(fp, step)
    hdr = {"Idempotency-Key": "retry-" + pid}
    body = {"id": pid, "name": "F", "stacks": ["default"]}
    resp = fp.api("POST", "/platforms", body, headers=hdr)
    pr = problem(resp, 503)
    assert 'failed at step "fake:%s": injected failure' % step in \
        pr["detail"], pr
    assert pr["detail"].startswith('provisioning platform "%s"' % pid), pr
    assert "nothing was kept" in pr["detail"], pr
    # compensated: what was made is removed, then the row
    c = calls(fp, pid)
    assert c[-1]["call"] == "platform_remove", c
    assert c[-1]["keep_data"] is False
    problem(fp.api("GET", "/platforms/" + pid), 404)
    assert stacks_of_missing(fp, pid)
    failed = audit(fp, pid, "platform.provision_failed")
    assert len(failed) == 1, failed
    assert failed[0]["detail"] == {"step": "fake:" + step,
                                   "message": "injected failure"}
    # the platform's routes are unknown again
    st, _, _ = fp.json("GET", "/p/%s/hello" % pid)
    assert st == 404
    # the same request (same key: the failure was not recorded) succeeds
    fail(fp, None)
    st, _, p = fp.api("POST", "/platforms", body, headers=hdr)
    assert st == 201, p
    assert stacks_of(fp, pid) == {"default": default_version(fp)}
    # and is replayed from then on
    st, h2, p2 = fp.api("POST", "/platforms", body, headers=hdr)
    assert st == 201 and p2 == p and h2["idempotent-replayed"] == "true"


def stacks_of_missing(h, pid):
    st, _, _ = h.api("GET", "/platforms/%s/stacks" % pid)
    return st == 404


def test_concurrent_retries_wait_for_the_answer(fp):
    # The same Idempotency-Key sent 8 times at once while provisioning
    # takes a while: one platform, provisioned once, and every answer is
    # that creation (replayed but for one), from both workers.
    import concurrent.futures
    with open(os.path.join(fp.data, "fakeprov.delay"), "w") as f:
        f.write("300")
    body = {"name": "Idempotent race", "stacks": ["default"]}
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        out = list(ex.map(lambda i: fp.api(
            "POST", "/platforms", body,
            headers={"Idempotency-Key": "race-prov"}), range(8)))
    assert [r[0] for r in out] == [201] * 8, out
    ids = {r[2]["id"] for r in out}
    assert len(ids) == 1, out
    assert sorted(r[1].get("idempotent-replayed", "") for r in out) == \
        [""] + ["true"] * 7
    pid = ids.pop()
    assert [c["call"] for c in calls(fp, pid)] == ["platform_create",
                                                  "stack_activate"]
    # a retry while an activation is provisioned waits the same way
    fp.api("POST", "/platforms", {"id": "pv-race", "name": "R"})
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        out = list(ex.map(lambda i: fp.api(
            "POST", "/platforms/pv-race/stacks", {"stack": "default"},
            headers={"Idempotency-Key": "race-act"}), range(4)))
    assert [r[0] for r in out] == [201] * 4, out
    assert len([c for c in calls(fp, "pv-race")
                if c["call"] == "stack_activate"]) == 1
    os.unlink(os.path.join(fp.data, "fakeprov.delay"))
    # a failure is not recorded: the waiting retry provisions again
    fail(fp, "stack_activate")
    pr = problem(fp.api("POST", "/platforms", {"id": "pv-race2", "name": "R",
                                               "stacks": ["default"]},
                        headers={"Idempotency-Key": "race-fail"}), 503)
    assert "fake:stack_activate" in pr["detail"]
    fail(fp, None)
    st, h, p = fp.api("POST", "/platforms", {"id": "pv-race2", "name": "R",
                                             "stacks": ["default"]},
                      headers={"Idempotency-Key": "race-fail"})
    assert st == 201 and "idempotent-replayed" not in h, p


def test_a_pending_key_left_by_a_crash_goes_stale(fp):
    # A pending record older than 10 minutes is a dead process's: the
    # request goes ahead as if the key were new.
    db = sqlite3.connect(os.path.join(fp.data, "core.db"))
    try:
        db.execute(
            "INSERT INTO idempotency (key, actor, method, path,"
            " request_hash, status, body, location, created_at)"
            " VALUES ('old-pending', 'operator', 'POST', '/api/v1/platforms',"
            " ?, 202, '{}', NULL, '2020-01-01T00:00:00Z')", ("0" * 64,))
        db.commit()
    finally:
        db.close()
    st, _, p = fp.api("POST", "/platforms", {"id": "pv-stale", "name": "S"},
                      headers={"Idempotency-Key": "old-pending"})
    assert st == 201, p


def test_activation_provisions_before_the_row_changes(fp):
    ver = default_version(fp)
    fp.api("POST", "/platforms", {"id": "pv-act", "name": "A"})
    fail(fp, "stack_activate")
    pr = problem(fp.api("POST", "/platforms/pv-act/stacks",
                        {"stack": "default"}), 503)
    assert pr["detail"] == (
        'activating stack "default" %s on platform "pv-act" failed at step '
        '"fake:stack_activate": injected failure; the stack is not active'
        % ver), pr
    assert stacks_of(fp, "pv-act") == {}
    assert audit(fp, "pv-act", "stack.activate") == []
    fail(fp, None)
    st, _, a = fp.api("POST", "/platforms/pv-act/stacks", {"stack": "default"},
                      headers={"Idempotency-Key": "act-1"})
    assert st == 201 and a["version"] == ver, a
    assert stacks_of(fp, "pv-act") == {"default": ver}
    st, h2, a2 = fp.api("POST", "/platforms/pv-act/stacks",
                        {"stack": "default"},
                        headers={"Idempotency-Key": "act-1"})
    assert st == 201 and a2 == a and h2["idempotent-replayed"] == "true"
    # the same version again: provisioned again (databases that disagree
    # are brought back to it), the row and the audit unchanged
    n = len(calls(fp, "pv-act"))
    na = len(audit(fp, "pv-act", "stack.activate"))
    st, _, a3 = fp.api("POST", "/platforms/pv-act/stacks", {"stack": "default"})
    assert st == 200 and a3 == a and len(calls(fp, "pv-act")) == n + 1
    assert len(audit(fp, "pv-act", "stack.activate")) == na

    # deactivation: told first; a failure leaves the stack active
    fail(fp, "stack_deactivate")
    pr = problem(fp.api("DELETE", "/platforms/pv-act/stacks/default"), 503)
    assert "the stack stays active" in pr["detail"], pr
    assert stacks_of(fp, "pv-act") == {"default": ver}
    fail(fp, None)
    st, _, _ = fp.api("DELETE", "/platforms/pv-act/stacks/default")
    assert st == 204
    assert stacks_of(fp, "pv-act") == {}
    c = [x for x in calls(fp, "pv-act") if x["call"] == "stack_deactivate"]
    assert len(c) == 2 and c[-1]["version"] == ver
    problem(fp.api("DELETE", "/platforms/pv-act/stacks/default"), 404)


def test_delete_goes_through_deleting_then_removes(fp):
    ver = default_version(fp)
    fp.api("POST", "/platforms", {"id": "pv-del", "name": "D",
                                  "stacks": ["default"]})
    inc = calls(fp, "pv-del")[0]["incarnation"]
    key = fp.platform_key("pv-del")["key"]
    hello = {"Authorization": "Bearer " + key}
    assert fp.json("GET", "/p/pv-del/hello", headers=hello)[0] == 200

    # a failure: the platform stays "deleting", unrouted; a retry finishes
    fail(fp, "platform_remove")
    pr = problem(fp.api("DELETE", "/platforms/pv-del"), 503)
    assert 'failed at step "fake:platform_remove"' in pr["detail"], pr
    assert "send the DELETE again" in pr["detail"], pr
    st, _, p = fp.api("GET", "/platforms/pv-del")
    assert st == 200 and p["status"] == "deleting", p
    st, _, body = fp.json("GET", "/p/pv-del/hello", headers=hello)
    assert st == 404 and body["detail"] == 'no platform "pv-del"', body
    problem(fp.api("POST", "/platforms/pv-del/stacks", {"stack": "default"}),
            409)
    problem(fp.api("POST", "/platforms/pv-del/suspend"), 409)
    fail(fp, None)
    st, _, body = fp.api("DELETE", "/platforms/pv-del")
    assert st == 204 and body is None
    problem(fp.api("GET", "/platforms/pv-del"), 404)
    removes = [x for x in calls(fp, "pv-del") if x["call"] == "platform_remove"]
    assert len(removes) == 2
    assert removes[-1] == {"call": "platform_remove", "platform": "pv-del",
                           "incarnation": inc, "keep_data": False,
                           "stacks": [{"stack": "default", "version": ver}]}
    d = audit(fp, "pv-del", "platform.delete")
    assert len(d) == 1 and d[0]["detail"]["keep_data"] is False, d
    # the registry left the folder to provisioning: no removal pending
    db = sqlite3.connect(os.path.join(fp.data, "core.db"))
    try:
        assert db.execute("SELECT count(*) FROM platform_removals"
                          ).fetchone()[0] == 0
    finally:
        db.close()

    # keep_data: 200 with the archive's path
    fp.api("POST", "/platforms", {"id": "pv-keep", "name": "K"})
    inc = calls(fp, "pv-keep")[0]["incarnation"]
    st, _, body = fp.api("DELETE", "/platforms/pv-keep?keep_data=true")
    assert st == 200, body
    assert body == {"archive": os.path.join(
        fp.data, "archive", "pv-keep-%s.tar.gz" % inc)}
    assert calls(fp, "pv-keep")[-1]["keep_data"] is True
    d = audit(fp, "pv-keep", "platform.delete")
    assert d[0]["detail"]["archive"] == body["archive"], d
    # a bad keep_data changes nothing
    fp.api("POST", "/platforms", {"id": "pv-kd", "name": "K"})
    n = len(calls(fp, "pv-kd"))
    problem(fp.api("DELETE", "/platforms/pv-kd?keep_data=maybe"), 422,
            "keep_data")
    st, _, p = fp.api("GET", "/platforms/pv-kd")
    assert st == 200 and p["status"] == "active" and \
        len(calls(fp, "pv-kd")) == n


def test_a_deletion_left_by_a_crash_is_finished_at_start(make_host, tmp_path):
    h = with_fakeprov(make_host, tmp_path, workers=1)
    h.start()
    h.api("POST", "/platforms", {"id": "pv-crash", "name": "C",
                                 "stacks": ["default"]})
    inc = calls(h, "pv-crash")[0]["incarnation"]
    h.stop()
    # as if the host died between "deleting" and the end of the removal
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    try:
        db.execute("UPDATE platforms SET status = 'deleting' "
                   "WHERE id = 'pv-crash'")
        db.commit()
    finally:
        db.close()
    h.start()
    h.wait_log(lambda e: e.get("msg") == "finished deleting platform pv-crash")
    problem(h.api("GET", "/platforms/pv-crash"), 404)
    last = calls(h, "pv-crash")[-1]
    assert last["call"] == "platform_remove" and last["incarnation"] == inc
    # what the interrupted DELETE asked is unknown: the data is kept
    assert last["keep_data"] is True
    d = audit(h, "pv-crash", "platform.delete")
    assert d and d[0]["actor"] == "system", d


def test_folders_of_earlier_deletions_go_through_provisioning(make_host,
                                                              tmp_path):
    # Deleted without provisioning (a platform_removals row each): at the
    # next start with provisioning, the folder is provisioning's to remove,
    # unless the id exists again.
    h = with_fakeprov(make_host, tmp_path, workers=1)
    h.start()
    for pid in ("old-a", "old-b"):
        assert h.api("POST", "/platforms", {"id": pid, "name": pid})[0] == 201
    incs = {pid: calls(h, pid)[0]["incarnation"] for pid in ("old-a",
                                                             "old-b")}
    h.stop()
    db = sqlite3.connect(os.path.join(h.data, "core.db"))
    try:
        db.execute("DELETE FROM platforms WHERE id IN ('old-a', 'old-b')")
        db.execute("INSERT INTO platforms (id, name, created_at, updated_at)"
                   " VALUES ('old-b', 'again', '2026-01-01T00:00:00Z',"
                   " '2026-01-01T00:00:00Z')")
        db.commit()
    finally:
        db.close()
    h.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        db = sqlite3.connect(os.path.join(h.data, "core.db"))
        try:
            left = db.execute("SELECT count(*) FROM platform_removals"
                              ).fetchone()[0]
        finally:
            db.close()
        if left == 0:
            break
        time.sleep(0.05)
    assert left == 0
    removes = [c for c in calls(h) if c["call"] == "platform_remove"]
    assert removes == [{"call": "platform_remove", "platform": "old-a",
                        "incarnation": incs["old-a"], "stacks": None,
                        "keep_data": False}], removes


def test_cli_create_with_stacks_and_delete_keeping_data(fp):
    r = run("platform", "create", "pv-cli", "--name", "CLI", "--stack",
            "default", url=fp.url, data=fp.data)
    assert r.returncode == 0, r.stderr
    assert show(r.stdout)["id"] == "pv-cli"
    assert stacks_of(fp, "pv-cli") == {"default": default_version(fp)}
    inc = calls(fp, "pv-cli")[0]["incarnation"]
    r = run("platform", "delete", "pv-cli", "--keep-data", "--yes",
            url=fp.url, data=fp.data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "deleted platform pv-cli; its data is archived in " \
        "%s\n" % os.path.join(fp.data, "archive", "pv-cli-%s.tar.gz" % inc)
    # a failure is an API error naming the step, on one line
    fail(fp, "stack_activate")
    r = run("platform", "create", "pv-cli2", "--name", "CLI", "--stack",
            "default", url=fp.url, data=fp.data)
    err = assert_api_error(r, 503)
    assert "fake:stack_activate" in err
    fail(fp, None)


# -- the CLI's arguments ------------------------------------------------------

@pytest.mark.parametrize("args,msg", [
    (["platform", "create", "x", "--name", "X", "--stack", ""],
     "--stack expects STACK or STACK@VERSION, got ''"),
    (["platform", "create", "x", "--name", "X", "--stack", "a@"],
     "got 'a@'"),
    (["platform", "create", "x", "--name", "X", "--stack", "@1.0.0"],
     "got '@1.0.0'"),
    (["platform", "create", "x", "--name", "X", "--stack", "a@1@2"],
     "got 'a@1@2'"),
    (["platform", "create", "x", "--name", "X"] + ["--stack", "s"] * 17,
     "at most 16 --stack options"),
    (["platform", "create", "x", "--name", "X", "--stack"],
     "option needs a value"),
    (["platform", "delete", "x", "--keep-data=yes"], "option takes no value"),
    (["platform", "delete", "x", "--keep-data"], "without confirmation"),
    (["resource", "list"], "missing arguments"),
    (["resource", "list", "a", "b"], "unexpected argument 'b'"),
    (["resource", "show", "a", "sql"], "missing arguments"),
    (["resource", "show", "a", "db", "default-auth"],
     "TYPE is sql, kv or blob, got 'db'"),
    (["resource", "show", "a", "sql", "auth"],
     "the resource is named STACK-NAME"),
    (["resource", "show", "a", "sql", "--", "-auth"],
     "the resource is named STACK-NAME"),
    (["resource", "show", "a", "sql", "default-"],
     "the resource is named STACK-NAME"),
    (["resource", "list", "a", "--limit", "0"], "--limit expects"),
    (["resource", "frob"], "unknown command 'frob'"),
])
def test_cli_argument_errors(args, msg):
    # Nothing listens there: a usage error is found before any request.
    r = run(*args, url="http://127.0.0.1:9", key="k")
    err = assert_usage_error(r)
    assert msg in err[0], err


def test_cli_stack_repeats_into_one_request(fake_api):
    url, seen = fake_api
    r = run("platform", "create", "multi", "--name", "M", "--stack",
            "default", "--stack", "extra@2.0.0", url=url, key="k")
    assert r.returncode == 0, r.stderr
    (method, path, body), = [s for s in seen if s[0] == "POST"]
    assert (method, path) == ("POST", "/api/v1/platforms")
    assert json.loads(body) == {"id": "multi", "name": "M",
                                "stacks": ["default", "extra@2.0.0"]}
    r = run("platform", "delete", "multi", "--keep-data", "--yes", url=url,
            key="k")
    assert r.returncode == 0, r.stderr
    assert seen[-1][:2] == ("DELETE", "/api/v1/platforms/multi?keep_data=true")
    assert r.stdout == "deleted platform multi; its data is archived in " \
        "/srv/nno/archive/multi-0123456789abcdef.tar.gz\n"


# -- resource list and show against a scripted API ---------------------------

RESOURCES = [
    {"stack": "default", "type": "sql", "name": "auth", "state": "ready",
     "size_bytes": 24576},
    {"stack": "default", "type": "kv", "name": "drafts", "state": "ready",
     "size_bytes": 0},
    {"stack": "notes", "type": "blob", "name": "files", "state": "failed",
     "size_bytes": 3 * 1024 * 1024},
]


class ResourceAPI(http.server.BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *a):
        pass

    def reply(self, status, obj, ctype="application/json"):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        ResourceAPI.seen.append((self.command, self.path, body))
        path, _, query = self.path.partition("?")
        q = dict(p.split("=", 1) for p in query.split("&") if p)
        quota = {"used_bytes": 24576 + 3 * 1024 * 1024,
                 "limit_bytes": 100 * 1024 * 1024}
        if path == "/api/v1/platforms/acme/resources":
            # two pages: the CLI follows next_cursor
            if q.get("cursor") == "c1":
                return self.reply(200, {"items": RESOURCES[2:],
                                        "next_cursor": None,
                                        "quota": quota})
            return self.reply(200, {"items": RESOURCES[:2],
                                    "next_cursor": "c1", "quota": quota})
        if path == "/api/v1/platforms/acme/resources/sql/default-auth":
            return self.reply(200, dict(RESOURCES[0], platform="acme"))
        if path == "/api/v1/platforms" and self.command == "POST":
            return self.reply(201, {"id": "multi", "name": "M"})
        if path == "/api/v1/platforms/multi" and self.command == "DELETE":
            return self.reply(200, {"archive": "/srv/nno/archive/"
                                    "multi-0123456789abcdef.tar.gz"})
        return self.reply(404, {"title": "Not Found", "status": 404,
                                "detail": "no resource \"sql\" "
                                "\"default-gone\""},
                          ctype="application/problem+json")

    do_GET = do_POST = do_DELETE = handle_one


@pytest.fixture(scope="module")
def fake_api():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ResourceAPI)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    ResourceAPI.seen.clear()
    yield "http://127.0.0.1:%d" % srv.server_address[1], ResourceAPI.seen
    srv.shutdown()
    srv.server_close()


def test_cli_resource_list_and_show(fake_api):
    url, seen = fake_api
    r = run("resource", "list", "acme", url=url, key="k")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[-1] == "quota: 3.0 MiB of 100.0 MiB used"
    rows = table("\n".join(out[:-1]))
    assert rows == [
        {"STACK": "default", "TYPE": "sql", "NAME": "auth", "STATE": "ready",
         "SIZE": "24.0 KiB"},
        {"STACK": "default", "TYPE": "kv", "NAME": "drafts",
         "STATE": "ready", "SIZE": "0 B"},
        {"STACK": "notes", "TYPE": "blob", "NAME": "files",
         "STATE": "failed", "SIZE": "3.0 MiB"}]
    r = run("resource", "list", "acme", "--json", url=url, key="k")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["items"] == RESOURCES and j["quota"]["limit_bytes"] == 104857600
    r = run("resource", "show", "acme", "sql", "default-auth", url=url,
            key="k")
    assert r.returncode == 0, r.stderr
    s = show(r.stdout)
    assert (s["stack"], s["type"], s["name"], s["platform"]) == \
        ("default", "sql", "auth", "acme")
    r = run("resource", "show", "acme", "sql", "default-gone", url=url,
            key="k")
    assert "no resource" in assert_api_error(r, 404)
