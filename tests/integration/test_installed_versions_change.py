"""Installed versions changing under a platform.

A version removed while a platform moves to it: one of the two wins.

Either the removal answers 409 (the platform is moving to it) and the
activation goes through on installed files, or the removal goes first and
the activation answers 422 (removed) -- never both 2xx, never a platform
left on a removed version, never a database rolled back by a move made from
files that went away, and never a worker lost."""
import os
import sqlite3
import subprocess
import threading

from conftest import BUILD, NNO

VER = os.path.join(BUILD, "tests", "stacks", "ver", "ver")


def pack(version, out):
    r = subprocess.run([NNO, "stack", "pack", os.path.join(VER, version),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return os.path.join(str(out), "ver-%s.tar.gz" % version)


def tables(h, pid):
    db = os.path.join(h.data, "platforms", pid, "sql", "%s-ver-db.db" % pid)
    c = sqlite3.connect(db)
    try:
        return sorted(r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%'"))
    finally:
        c.close()


def install(h, path):
    with open(path, "rb") as f:
        st, _, p = h.api("POST", "/stacks", f.read(),
                         headers={"Content-Type": "application/gzip"},
                         timeout=60)
    assert st in (200, 201), p


def test_remove_and_activate_race_one_wins(make_host, tmp_path):
    v1, v2 = pack("1.0.0", tmp_path), pack("2.0.0", tmp_path)
    h = make_host(core=True, workers=2).start()
    install(h, v1)
    h.platform("delta", stacks=["ver@1.0.0"])
    wins = {"remove": 0, "activate": 0}
    for _ in range(16):
        if not os.path.isdir(os.path.join(h.data, "stacks", "ver", "2.0.0")):
            install(h, v2)
        out = {}

        def remove():
            out["del"] = h.api("DELETE", "/stacks/ver/2.0.0")

        def activate():
            out["act"] = h.api("POST", "/platforms/delta/stacks",
                               {"stack": "ver", "version": "2.0.0"})

        ts = [threading.Thread(target=remove), threading.Thread(target=activate)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        d, a = out["del"], out["act"]
        assert not (d[0] == 204 and a[0] in (200, 201)), (d, a)
        assert d[0] in (204, 409), d
        assert a[0] in (200, 201, 409, 422), a
        st, _, acts = h.api("GET", "/platforms/delta/stacks")
        active = [x["version"] for x in acts["items"] if x["stack"] == "ver"]
        assert len(active) == 1, acts
        assert os.path.isdir(os.path.join(h.data, "stacks", "ver",
                                          active[0])), (active, d, a)
        # The databases are at the level of the version active.
        want = ["_nno_migrations", "items"] + (
            ["tags"] if active[0] == "2.0.0" else [])
        assert tables(h, "delta") == want, (active, d, a)
        if active[0] == "2.0.0":
            wins["activate"] += 1
            st, _, p = h.api("POST", "/platforms/delta/stacks",
                             {"stack": "ver", "version": "1.0.0"})
            assert st == 200, p
        else:
            wins["remove"] += d[0] == 204
    assert "worker died" not in h.log_text()
    assert wins["activate"] + wins["remove"] > 0, wins


def test_migrations_changed_after_install_are_not_run(make_host, tmp_path):
    """A migration file of an installed version edited on disk (the object
    runs from a sealed copy, but migrations are read at activation) is
    refused when a platform moves to it: 409 naming the file, nothing
    applied, the platform where it was."""
    v1, v2 = pack("1.0.0", tmp_path), pack("2.0.0", tmp_path)
    h = make_host(core=True, workers=1).start()
    install(h, v1)
    install(h, v2)
    h.platform("beta", stacks=["ver@1.0.0"])
    mig = os.path.join(h.data, "stacks", "ver", "2.0.0", "packages", "ver",
                       "migrations", "db")
    f = [n for n in os.listdir(mig) if n.startswith("0002_") and
         not n.endswith(".down.sql")][0]
    os.chmod(mig, 0o755)
    os.chmod(os.path.join(mig, f), 0o644)
    with open(os.path.join(mig, f), "a") as w:
        w.write("\nCREATE TABLE pwned (x);\n")
    st, _, p = h.api("POST", "/platforms/beta/stacks",
                     {"stack": "ver", "version": "2.0.0"})
    assert st == 409, p
    assert "modified after install: packages/ver/migrations/db/" + f in \
        p["detail"], p
    assert tables(h, "beta") == ["_nno_migrations", "items"]
    st, _, acts = h.api("GET", "/platforms/beta/stacks")
    assert [(x["stack"], x["version"]) for x in acts["items"]
            if x["stack"] == "ver"] == [("ver", "1.0.0")], acts
