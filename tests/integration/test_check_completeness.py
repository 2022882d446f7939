"""Every check reports every problem it can see, and refuses what would
fail later: serve --check goes on past the first stack it refuses, and a
down migration with no migration to undo is refused before activation."""
import json
import os

from test_stack_check import build, nno, no_core, package, stack


def test_serve_check_reports_every_stack_refused_at_init(tmp_path):
    roots = []
    for sid in ("aaa", "bbb"):
        base = tmp_path / sid
        base.mkdir()
        root, sdir, _ = build(base, ["INIT_FAIL"], package(), stack(),
                              "1.0.0")
        # the same package under two stack ids
        sj = stack()
        sj["id"] = sid
        os.rename(os.path.join(root, "chk"), os.path.join(root, sid))
        with open(os.path.join(root, sid, "1.0.0", "stack.json"), "w") as f:
            json.dump(sj, f)
        roots.append(root)
    cfg = os.path.join(str(tmp_path), "check.json")
    empty = os.path.join(str(tmp_path), "no-core-plugins")
    os.makedirs(empty)
    with open(cfg, "w") as f:
        json.dump({"stacks_dirs": roots, "plugin_dir": empty,
                   "core_plugins": []}, f)
    r = nno("serve", "--check", "--config", cfg, "--data",
            os.path.join(str(tmp_path), "var"))
    assert r.returncode == 1, r
    for sid in ("aaa", "bbb"):
        assert ("error: stack %s@1.0.0: plugin \"" % sid) in r.stderr, r.stderr
    assert r.stderr.count("init failed (NNO_EINVAL)") == 2, r.stderr
    assert "nno: 2 problems found" in r.stderr, r.stderr


def with_migrations(tmp_path, files):
    m = package(resources=[{"type": "sql", "name": "data"}])
    root, sdir, pdir = build(tmp_path, [], m, stack(), "1.0.0")
    mdir = os.path.join(pdir, "migrations", "data")
    os.makedirs(mdir)
    for f in files:
        with open(os.path.join(mdir, f), "w") as o:
            o.write("SELECT 1;\n")
    return sdir, pdir, mdir


def test_a_down_migration_without_its_up_is_refused(tmp_path):
    cases = [
        (["0001_x.sql", "0002_q.down.sql"], "0002_q.down.sql", "0002_q.sql"),
        (["0001_x.sql", "0001_other.down.sql"], "0001_other.down.sql",
         "0001_other.sql"),
    ]
    for i, (files, bad, up) in enumerate(cases):
        base = tmp_path / str(i)
        base.mkdir()
        sdir, pdir, mdir = with_migrations(base, files)
        want = ('package "chk": %s/%s: no migration %s for it to undo'
                % (mdir, bad, up))
        for cmd in (["stack", "check", sdir], ["check-package", pdir]):
            r = nno(*cmd, *no_core(base))
            assert r.returncode == 1, r
            assert r.stderr.splitlines()[0].endswith(want), r.stderr
    # paired, it passes
    base = tmp_path / "ok"
    base.mkdir()
    sdir, _, _ = with_migrations(base, ["0001_x.sql", "0001_x.down.sql"])
    r = nno("stack", "check", sdir, *no_core(base))
    assert r.returncode == 0, r


def test_a_migration_gap_names_the_folder(tmp_path):
    sdir, _, mdir = with_migrations(tmp_path, ["0001_x.sql", "0003_z.sql"])
    r = nno("stack", "check", sdir, *no_core(tmp_path))
    assert r.returncode == 1, r
    assert r.stderr.rstrip().endswith(
        'package "chk": %s: 0002 is missing (files must be numbered 0001, '
        '0002, ... without a gap)' % mdir), r.stderr
