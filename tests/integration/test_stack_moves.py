"""Stack activations that must not leave a platform's databases at another
version than the one active: one move at a time per platform across
workers (a concurrent one answers 409), activating the active version
again brings the databases back to it, the migrations of a multi-package
stack commit together or not at all (upgrade and rollback), a down
migration the SQL guards refuse is refused when its up would be applied,
a failing migration is the package's defect (409 naming the package, the
file and sqlite's message), and versions not pinned are chosen so that
the requirements hold (at creation and at activation).

Besides the "ver" fixture stacks of test_stack_versions.py, the stack
"duo" is built here from the same source (tests/fixtures/plugins/ver.c)
with two packages, "pa" (sql resource "a", route /pa) and "pb" (sql
resource "b", route /pb):
  1.0.0  pa, pb: 0001                     with downs
  2.0.0  pa, pb: 0001, 0002               with downs
  3.0.0  pa: + 0003 (fine); pb: + 0003 that fails (no such table)
  4.0.0  pa: + 0003 whose down ATTACHes a database; pb: + 0003 (fine)"""
import json
import os
import sqlite3
import subprocess
import threading

import pytest

from conftest import FIXTURE_STACKS, SOURCE
from test_stack_versions import activate, active, tables

VER = os.path.join(FIXTURE_STACKS, "ver")

UP = {1: "CREATE TABLE t1_%s (id INTEGER PRIMARY KEY);",
      2: "CREATE TABLE t2_%s (id INTEGER PRIMARY KEY);",
      3: "CREATE TABLE t3_%s (id INTEGER PRIMARY KEY);"}
DOWN = {1: "DROP TABLE t1_%s;", 2: "DROP TABLE t2_%s;", 3: "DROP TABLE t3_%s;"}
FAILING = "INSERT INTO no_such_table VALUES (1);"
POISON = "ATTACH DATABASE ':memory:' AS other;"

# version -> package -> [(n, up, down or None)]
DUO = {
    "1.0.0": {p: [1] for p in ("pa", "pb")},
    "2.0.0": {p: [1, 2] for p in ("pa", "pb")},
    "3.0.0": {"pa": [1, 2, 3], "pb": [1, 2, "fail"]},
    "4.0.0": {"pa": [1, 2, "poison"], "pb": [1, 2, 3]},
}
RES = {"pa": "a", "pb": "b"}


def migration(pkg, spec):
    """(n, up text, down text) of one migration in DUO."""
    r = RES[pkg]
    if spec == "fail":
        return 3, FAILING, DOWN[3] % r
    if spec == "poison":
        return 3, UP[3] % r, POISON
    return spec, UP[spec] % r, DOWN[spec] % r


@pytest.fixture(scope="module")
def duo(tmp_path_factory):
    """The folder holding the "duo" stack versions (stacks_dirs entry)."""
    root = str(tmp_path_factory.mktemp("duo"))
    src = os.path.join(SOURCE, "tests", "fixtures", "plugins", "ver.c")
    for version, pkgs in DUO.items():
        sdir = os.path.join(root, "duo", version)
        for pkg, migs in pkgs.items():
            pdir = os.path.join(sdir, "packages", pkg)
            mdir = os.path.join(pdir, "migrations", RES[pkg])
            os.makedirs(mdir)
            subprocess.run(
                ["cc", "-shared", "-fPIC", "-Wall", "-Werror",
                 "-fvisibility=hidden",
                 "-I", os.path.join(SOURCE, "plugin-api", "include"),
                 '-DVER_NAME="%s"' % pkg, '-DVER_VERSION="%s"' % version,
                 '-DVER_ROUTE="/%s"' % pkg, src,
                 "-o", os.path.join(pdir, "lib%s.so" % pkg)], check=True)
            with open(os.path.join(pdir, "package.json"), "w") as f:
                json.dump({"name": pkg, "version": version, "abi": "1.5",
                           "kind": "feature", "library": "lib%s.so" % pkg,
                           "routes": [{"method": "GET", "path": "/" + pkg,
                                       "scope": "public"}],
                           "resources": [{"type": "sql",
                                          "name": RES[pkg]}]}, f)
            for spec in migs:
                n, up, down = migration(pkg, spec)
                with open(os.path.join(mdir, "%04d_m.sql" % n), "w") as f:
                    f.write(up)
                with open(os.path.join(mdir, "%04d_m.down.sql" % n),
                          "w") as f:
                    f.write(down)
        with open(os.path.join(sdir, "stack.json"), "w") as f:
            json.dump({"id": "duo", "version": version,
                       "packages": [{"name": p, "version": version}
                                    for p in ("pa", "pb")]}, f)
    return root


def host(make_host, duo, workers=1):
    h = make_host(core=True, workers=workers, stacks=[VER, duo],
                  config={"core_plugins": ["iam", "registry",
                                           "provisioning"]})
    h.start()
    return h


def db_file(h, pid, stack, res):
    return os.path.join(h.data, "platforms", pid, "sql",
                        "%s-%s-%s.db" % (pid, stack, res))


def level(h, pid, stack, res, package):
    """The migration level of `package` in the database, and its tables."""
    db = sqlite3.connect(db_file(h, pid, stack, res))
    try:
        lv = db.execute("SELECT coalesce(max(version), 0) FROM "
                        "_nno_migrations WHERE package = ?",
                        (package,)).fetchone()[0]
        names = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()
    return lv, names - {"_nno_migrations"}


def duo_levels(h, pid):
    return (level(h, pid, "duo", "a", "pa")[0],
            level(h, pid, "duo", "b", "pb")[0])


def new_platform(h, pid, **versions):
    h.platform(pid, stacks=None)
    for stack, version in versions.items():
        st, _, a = activate(h, pid, stack, version)
        assert st == 201 and a["version"] == version, a


def test_concurrent_activations_are_one_at_a_time(make_host, duo):
    """Rounds of 40 activations at once alternating ver 1.0.0 and 2.0.0 on
    two workers: each either moves the platform (or finds it there) or
    answers 409 (another move is in progress); after every round the
    database agrees with the version active."""
    h = host(make_host, duo, workers=2)
    new_platform(h, "m-c", ver="1.0.0")
    for _ in range(25):
        race(h)
    # the platform is free after the rounds: the next move goes through
    version = active(h, "m-c")["ver"]
    other = "1.0.0" if version == "2.0.0" else "2.0.0"
    st, _, a = activate(h, "m-c", "ver", other)
    assert st == 200 and a["version"] == other, a
    assert tables(h, "m-c")[1] == int(other[0])


def race(h):
    out = []
    lock = threading.Lock()
    go = threading.Barrier(40)

    def one(i):
        go.wait()
        r = activate(h, "m-c", "ver", "2.0.0" if i % 2 == 0 else "1.0.0")
        with lock:
            out.append(r)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(out) == 40
    for st, hd, body in out:
        assert st in (200, 409), (st, body)
        if st == 409:
            assert hd["content-type"].startswith("application/problem+json")
            assert body["request_id"]
            assert body["detail"].startswith(
                "platform m-c is moving stack ver to "), body
            assert body["detail"].endswith("; retry"), body
    assert any(st == 200 for st, _, _ in out)
    version = active(h, "m-c")["ver"]
    assert tables(h, "m-c")[1] == int(version[0]), version


def test_reactivating_the_active_version_realigns(make_host, duo):
    h = host(make_host, duo)
    new_platform(h, "m-r", duo="1.0.0")
    # the database of pa moved to 2 behind the platform's back
    db = sqlite3.connect(db_file(h, "m-r", "duo", "a"))
    db.execute(UP[2] % "a")
    db.execute("INSERT INTO _nno_migrations VALUES ('pa', 2, "
               "'2026-01-01T00:00:00Z', ?)", (DOWN[2] % "a",))
    db.commit()
    db.close()
    assert duo_levels(h, "m-r") == (2, 1)
    st, _, a = activate(h, "m-r", "duo", "1.0.0")
    assert st == 200 and a["version"] == "1.0.0", a
    assert duo_levels(h, "m-r") == (1, 1)
    assert level(h, "m-r", "duo", "a", "pa")[1] == {"t1_a"}
    # the row is as it was: same activation, no new audit entry
    assert active(h, "m-r") == {"duo": "1.0.0"}


def test_failed_upgrade_moves_no_database(make_host, duo):
    """pb's 0003 fails: pa's 0003, applied before it, is not kept; the
    answer is the package's defect (409), naming pb, the file and sqlite's
    message."""
    h = host(make_host, duo)
    new_platform(h, "m-u", duo="2.0.0")
    st, hd, pr = activate(h, "m-u", "duo", "3.0.0")
    assert st == 409, pr
    assert hd["content-type"].startswith("application/problem+json")
    assert pr["request_id"]
    d = pr["detail"]
    assert "package pb: 0003_m.sql: no such table: no_such_table" in d, d
    assert "the previous version stays active" in d, d
    assert active(h, "m-u") == {"duo": "2.0.0"}
    assert duo_levels(h, "m-u") == (2, 2)
    assert level(h, "m-u", "duo", "a", "pa")[1] == {"t1_a", "t2_a"}
    # and the platform still moves
    st, _, a = activate(h, "m-u", "duo", "1.0.0")
    assert st == 200, a
    assert duo_levels(h, "m-u") == (1, 1)


def test_failed_rollback_moves_no_database(make_host, duo):
    """pb's stored down of 0002 fails (its table went missing): pa's down,
    run before it, is not kept either."""
    h = host(make_host, duo)
    new_platform(h, "m-d", duo="2.0.0")
    db = sqlite3.connect(db_file(h, "m-d", "duo", "b"))
    db.execute("DROP TABLE t2_b")
    db.commit()
    db.close()
    st, _, pr = activate(h, "m-d", "duo", "1.0.0")
    assert st == 409, pr
    d = pr["detail"]
    assert "package pb: down of migration 0002: no such table: t2_b" in d, d
    assert active(h, "m-d") == {"duo": "2.0.0"}
    assert duo_levels(h, "m-d") == (2, 2)
    assert level(h, "m-d", "duo", "a", "pa")[1] == {"t1_a", "t2_a"}


def test_a_down_the_guards_refuse_is_refused_with_its_up(make_host, duo):
    """pa's 0003 ships a down that ATTACHes a database: refused when 0003
    would be applied, so no rollback can be poisoned by it."""
    h = host(make_host, duo)
    new_platform(h, "m-p", duo="2.0.0")
    st, hd, pr = activate(h, "m-p", "duo", "4.0.0")
    assert st == 409, pr
    assert hd["content-type"].startswith("application/problem+json")
    d = pr["detail"]
    assert "package pa: 0003_m.sql cannot be undone: 0003_m.down.sql: " \
        "refused (ATTACH, PRAGMA, transactions, _nno_ tables)" in d, d
    assert active(h, "m-p") == {"duo": "2.0.0"}
    assert duo_levels(h, "m-p") == (2, 2)
    db = sqlite3.connect(db_file(h, "m-p", "duo", "a"))
    try:
        downs = [r[0] for r in db.execute(
            "SELECT down FROM _nno_migrations ORDER BY version")]
    finally:
        db.close()
    assert downs == [DOWN[1] % "a", DOWN[2] % "a"]


def test_creation_picks_versions_that_meet_requirements(make_host, duo):
    """verdep 1.0.0 requires ver ^2.0; ver 1.0.0, 2.0.0 and 3.0.0 are
    installed: "ver" unpinned is 2.0.0, not the newest."""
    h = host(make_host, duo)
    st, _, p = h.api("POST", "/platforms", {
        "id": "c-q", "name": "q", "stacks": ["verdep@1.0.0", "ver"]})
    assert st == 201, p
    assert active(h, "c-q") == {"ver": "2.0.0", "verdep": "1.0.0"}
    # nothing pinned: the newest that hold together
    st, _, p = h.api("POST", "/platforms", {
        "id": "c-n", "name": "n", "stacks": ["ver", "verdep"]})
    assert st == 201, p
    assert active(h, "c-n") == {"ver": "3.0.0", "verdep": "2.0.0"}
    # nothing fits: the reason, as before
    st, _, pr = h.api("POST", "/platforms", {
        "id": "c-x", "name": "x", "stacks": ["ver@1.0.0", "verdep"]})
    assert st == 422 and "requires stack \"ver\"" in pr["detail"], pr
    assert h.api("GET", "/platforms/c-x")[0] == 404


def test_activation_unpinned_respects_dependents(make_host, duo):
    """ver active at 1.0.0, verdep 1.0.0 needs ver ^2.0 once active: an
    unpinned activation of ver takes the newest version the active stacks
    that require it accept (2.0.0), not 3.0.0 refused."""
    h = host(make_host, duo)
    new_platform(h, "a-q", ver="2.0.0", verdep="1.0.0")
    st, _, a = activate(h, "a-q", "ver")
    assert st == 200 and a["version"] == "2.0.0", a
    assert h.api("DELETE", "/platforms/a-q/stacks/verdep")[0] == 204
    st, _, a = activate(h, "a-q", "ver")
    assert st == 200 and a["version"] == "3.0.0", a
