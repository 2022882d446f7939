"""Crash safety of stack versions: a worker killed (SIGKILL) at each point
of a first activation, an upgrade running forward migrations, a rollback
running the stored down migrations and a deactivation, then the whole host
killed and started again without the failpoint, leaves every platform on
exactly one version (GET /api/v1/platforms/{p}/stacks), its requests served
by that version (GET /p/{p}/ver), and its sql database at exactly that
version's migration level (_nno_migrations, read from the file): nothing
half-applied. A kill between a migration's commit and the activation row
is set right at start by running the stored downs or the forward
migrations, the row being the truth (plugins/provisioning/README.md); an
activation that fails after its migrations committed puts the database
back before answering.

Uses the test-only provisioning build (BUILD/tests/failpoint-plugins/) and
the "ver" fixture stacks of test_stack_versions.py (1.0.0: migration 0001;
2.0.0: +0002; both with down migrations; 3.0.0: +0003 without one)."""
import os
import sqlite3
import time

import pytest

from conftest import FIXTURE_STACKS, SOURCE
from test_provisioning_crash import (FAILPOINT_PLUGINS, call_dies, journal,
                                     restart_clean)

VER = os.path.join(FIXTURE_STACKS, "ver")
LEVEL = {"1.0.0": 1, "2.0.0": 2, "3.0.0": 3}

# Where a kill can fall while a version moves, in the order they run:
# before the migrations, inside their transaction, after their commit,
# while the packages are told, after the provisioning ended (before the
# registry's row).
BEFORE = ["sql:ver-db:migrate"]
AFTER_COMMIT = ["sql:ver-db:migrated", "event:activated", "activate:row"]


def fp_versions_host(make_host, workers=1):
    h = make_host(core=True, workers=workers, stacks=[VER], env={},
                  config={"plugin_dir": FAILPOINT_PLUGINS,
                          "core_plugins": ["iam", "registry",
                                           "provisioning"]})
    h.start()
    return h


def arm(h, var, step):
    """Started again with failpoint `step` (the set-up before it ran
    without)."""
    h.stop()
    h.env[var] = step
    h.start()


def activate(h, pid, version, **kw):
    return h.api("POST", "/platforms/%s/stacks" % pid,
                 {"stack": "ver", "version": version}, **kw)


def active(h, pid):
    st, _, page = h.api("GET", "/platforms/%s/stacks" % pid)
    assert st == 200, page
    return [(a["stack"], a["version"]) for a in page["items"]]


def level(h, pid):
    """The sql database's migration level, read from its file (None when
    there is no database)."""
    path = os.path.join(h.data, "platforms", pid, "sql",
                        "%s-ver-db.db" % pid)
    if not os.path.exists(path):
        return None
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        names = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "_nno_migrations" not in names:
            return 0
        return db.execute("SELECT coalesce(max(version), 0) FROM "
                          "_nno_migrations WHERE package = 'ver'"
                          ).fetchone()[0]
    finally:
        db.close()


def served(h, pid):
    st, hd, body = h.request("GET", "/p/%s/ver" % pid)
    return st, hd.get("x-stack-version")


def wait_level(h, pid, want, timeout=10):
    """The start-up alignment runs in the background of the first
    requests: wait for it (and for the journal to be empty)."""
    deadline = time.time() + timeout
    while (level(h, pid) != want or journal(h)) and time.time() < deadline:
        time.sleep(0.05)
    return level(h, pid)


def assert_on(h, pid, version):
    """Exactly one version of "ver", served, its database at its level."""
    assert active(h, pid) == [("ver", version)]
    got = wait_level(h, pid, LEVEL[version])
    assert got == LEVEL[version], "row %s, database at %s\n%s" % (
        version, got, h.log_text()[-3000:])
    assert journal(h) == []
    for _ in range(3):
        assert served(h, pid) == (200, version)


def platform_on(h, pid, version):
    h.platform(pid, stacks=None)
    st, _, a = activate(h, pid, version)
    assert st == 201 and a["version"] == version, a
    assert level(h, pid) == LEVEL[version]


def test_the_failpoints_are_those_of_the_code():
    """Every failpoint named here is one the plugin's sources name."""
    src = ""
    d = os.path.join(SOURCE, "plugins", "provisioning")
    for n in os.listdir(d):
        if n.endswith(".c"):
            with open(os.path.join(d, n)) as f:
                src += f.read()
    for literal in ('"sql:%s-%s:migrate"', '"sql:%.*s:migrated"',
                    'prov_failpoint("migrate:up")',
                    'prov_failpoint("migrate:down")',
                    'prov_failpoint("event:activated")',
                    'prov_failpoint("activate:row")',
                    'prov_failpoint("deactivate:row")'):
        assert literal in src, literal


# -- 1. killed: an upgrade, a rollback, a first activation, a deactivation -----

@pytest.mark.parametrize("step", BEFORE + ["migrate:up"] + AFTER_COMMIT)
def test_an_upgrade_killed_at_each_step(make_host, step):
    h = fp_versions_host(make_host)
    pid = "vc-u"
    platform_on(h, pid, "1.0.0")
    arm(h, "NNO_FAILPOINT_KILL", step)
    call_dies(h, "POST", "/platforms/%s/stacks" % pid,
              {"stack": "ver", "version": "2.0.0"})
    restart_clean(h)
    # never answered: the version before, whole
    assert_on(h, pid, "1.0.0")
    # sent again: the upgrade, whole
    st, _, a = activate(h, pid, "2.0.0")
    assert st == 200 and a["version"] == "2.0.0", a
    assert_on(h, pid, "2.0.0")


@pytest.mark.parametrize("step", BEFORE + ["migrate:down"] + AFTER_COMMIT)
def test_a_rollback_killed_at_each_step(make_host, step):
    h = fp_versions_host(make_host)
    pid = "vc-r"
    platform_on(h, pid, "2.0.0")
    arm(h, "NNO_FAILPOINT_KILL", step)
    call_dies(h, "POST", "/platforms/%s/stacks" % pid,
              {"stack": "ver", "version": "1.0.0"})
    restart_clean(h)
    assert_on(h, pid, "2.0.0")
    st, _, a = activate(h, pid, "1.0.0")
    assert st == 200 and a["version"] == "1.0.0", a
    assert_on(h, pid, "1.0.0")


@pytest.mark.parametrize("step", ["sql:ver-db:create"] + BEFORE +
                         ["migrate:up"] + AFTER_COMMIT)
def test_a_first_activation_killed_at_each_step(make_host, step):
    h = fp_versions_host(make_host)
    pid = "vc-f"
    h.platform(pid, stacks=None)
    arm(h, "NNO_FAILPOINT_KILL", step)
    call_dies(h, "POST", "/platforms/%s/stacks" % pid, {"stack": "ver",
                                                         "version": "2.0.0"})
    restart_clean(h)
    # no version: nothing served, and no database but one made whole by
    # the provisioning that ended (a deactivated stack's database stays)
    assert active(h, pid) == []
    deadline = time.time() + 10
    while journal(h) and time.time() < deadline:
        time.sleep(0.05)
    assert journal(h) == []
    assert served(h, pid)[0] == 404
    assert level(h, pid) in ((None, 2) if step == "activate:row" else
                             (None,)), level(h, pid)
    st, _, a = activate(h, pid, "2.0.0")
    assert st == 201 and a["version"] == "2.0.0", a
    assert_on(h, pid, "2.0.0")


def test_a_deactivation_killed_before_its_row(make_host):
    h = fp_versions_host(make_host)
    pid = "vc-d"
    platform_on(h, pid, "2.0.0")
    arm(h, "NNO_FAILPOINT_KILL", "deactivate:row")
    call_dies(h, "DELETE", "/platforms/%s/stacks/ver" % pid)
    restart_clean(h)
    assert_on(h, pid, "2.0.0")
    st, _, b = h.api("DELETE", "/platforms/%s/stacks/ver" % pid)
    assert st == 204, b
    assert active(h, pid) == []
    assert served(h, pid)[0] == 404
    assert level(h, pid) == 2  # a deactivated stack's resources stay


def test_an_upgrade_killed_then_started_with_two_workers(make_host):
    """Both workers of the next start check the rows; the database is
    brought back once."""
    h = fp_versions_host(make_host, workers=2)
    pid = "vc-2"
    platform_on(h, pid, "1.0.0")
    arm(h, "NNO_FAILPOINT_KILL", "activate:row")
    call_dies(h, "POST", "/platforms/%s/stacks" % pid,
              {"stack": "ver", "version": "2.0.0"})
    restart_clean(h)
    assert_on(h, pid, "1.0.0")
    h.wait_log(lambda e: "aligned its databases" in e.get("msg", ""))
    time.sleep(0.3)
    aligned = [e for e in h.log_lines()
               if "aligned its databases" in e.get("msg", "")]
    assert len(aligned) == 1, aligned
    assert "from 0002 to 0001" in aligned[0]["msg"], aligned


def test_an_upgrade_past_a_migration_without_down_killed_after_commit(
        make_host):
    """2.0.0 to 3.0.0, killed once 0003 (which has no down migration) is
    committed: the database cannot follow the row back. It is left as it
    is, the reason logged as an error, and activating 3.0.0 again
    finishes the upgrade."""
    h = fp_versions_host(make_host)
    pid = "vc-3"
    platform_on(h, pid, "2.0.0")
    arm(h, "NNO_FAILPOINT_KILL", "sql:ver-db:migrated")
    call_dies(h, "POST", "/platforms/%s/stacks" % pid,
              {"stack": "ver", "version": "3.0.0"})
    restart_clean(h)
    e = h.wait_log(lambda e: "cannot be brought to it" in e.get("msg", ""))
    assert e["level"] == "error", e
    assert "migration 0003 was applied without a down migration" in \
        e["msg"], e
    assert active(h, pid) == [("ver", "2.0.0")]
    assert level(h, pid) == 3
    st, _, a = activate(h, pid, "3.0.0")
    assert st == 200 and a["version"] == "3.0.0", a
    assert_on(h, pid, "3.0.0")


# -- 2. failed, not killed: the database goes back before the answer ----------

@pytest.mark.parametrize("step", AFTER_COMMIT)
@pytest.mark.parametrize("move", [("1.0.0", "2.0.0"), ("2.0.0", "1.0.0")])
def test_a_move_failing_after_its_migrations_puts_them_back(make_host, step,
                                                            move):
    h = fp_versions_host(make_host)
    pid = "vc-x"
    before, after = move
    platform_on(h, pid, before)
    arm(h, "NNO_FAILPOINT", step)
    st, hd, pr = activate(h, pid, after)
    assert st == 503, pr
    assert hd["content-type"].startswith("application/problem+json")
    assert pr["request_id"] and "the previous version stays active" in \
        pr["detail"], pr
    # at once, not at the next start
    assert level(h, pid) == LEVEL[before]
    assert_on(h, pid, before)
