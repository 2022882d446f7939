"""`nno project init` and `nno project build`, black-box: a project made
from each template with only the build tree's nno on PATH (no
PKG_CONFIG_PATH: nno finds its own nno-plugin.pc), built into a
reproducible archive, installed into a real host with `nno stack install`
and served there."""
import hashlib
import os
import subprocess

import pytest

from conftest import BUILD, NNO

BIN = os.path.join(BUILD, "bin")


def clean_env(home, **extra):
    """Only the build tree's nno and the system's tools on PATH; nothing
    that would point pkg-config or nno anywhere else."""
    env = {"HOME": str(home), "PATH": BIN + ":/usr/local/bin:/usr/bin:/bin",
           "LANG": "C"}
    env.update(extra)
    return env


def nno(cwd, *args, env=None, home=None):
    return subprocess.run(["nno"] + list(args), cwd=str(cwd),
                          env=env or clean_env(home or cwd),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def tree(path):
    """Every file under `path` with its bytes."""
    out = {}
    for root, dirs, files in os.walk(str(path)):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, str(path))] = fh.read()
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), str(path)) + "/"] = b""
    return out


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def init_and_build(tmp_path, name, template):
    r = nno(tmp_path, "project", "init", name, "--template", template)
    assert r.returncode == 0, r.stderr
    assert "cd %s && nno project dev" % name in r.stdout, r.stdout
    proj = tmp_path / name
    r = nno(proj, "project", "build")
    assert r.returncode == 0, r.stderr
    digest, path = r.stdout.strip().split("  ")
    assert path == str(proj / "dist" / ("%s-0.1.0.tar.gz" % name)), path
    assert sha256(path) == digest
    return proj, path


def install(h, archive):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_")}
    env["NNO_URL"] = "http://127.0.0.1:%d" % h.port
    env["NNO_DATA"] = h.data
    r = subprocess.run([NNO, "stack", "install", archive], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def smoke(proj, h, pid, key):
    env = dict(os.environ, NNO_BASE="http://127.0.0.1:%d/p/%s" % (h.port, pid),
               NNO_KEY=key)
    return subprocess.run([str(proj / "tests" / "smoke.sh")], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def test_templates_listed(tmp_path):
    r = nno(tmp_path, "project", "init", "--list")
    assert r.returncode == 0, r.stderr
    names = [l.split()[0] for l in r.stdout.splitlines()]
    assert names == ["crud", "minimal"], r.stdout


def test_env_points_pkg_config_at_this_build(tmp_path):
    r = nno(tmp_path, "project", "env")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("export PKG_CONFIG_PATH='"), line
    path = line[len("export PKG_CONFIG_PATH='"):-1].split(":")[0]
    assert os.path.realpath(path) == os.path.join(BUILD, "lib", "pkgconfig")
    env = dict(clean_env(tmp_path), PKG_CONFIG_PATH=path)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nno-plugin"],
                           env=env, stdout=subprocess.PIPE,
                           universal_newlines=True, check=True).stdout.split()
    incs = [f[2:] for f in flags if f.startswith("-I")]
    libs = [f[2:] for f in flags if f.startswith("-L")]
    assert any(os.path.isfile(os.path.join(i, "nno", "plugin.h")) and
               os.path.isfile(os.path.join(i, "nno", "sdk.h")) for i in incs), flags
    assert "-lnno_sdk" in flags and "-ljansson" in flags, flags
    assert any(os.path.isfile(os.path.join(d, "libnno_sdk.a"))
               for d in libs), flags


def test_minimal_builds_reproducibly_installs_and_answers(tmp_path,
                                                          make_host):
    proj, archive = init_and_build(tmp_path, "hi-there", "minimal")
    files = tree(proj)
    for f in ("package.json", "stack.json", "Makefile", "README.md",
              ".gitignore", "src/hi-there.c", "ui/hi-there.js",
              "tests/smoke.sh"):
        assert f in files, sorted(files)
    for f, data in files.items():
        if not f.startswith(("build/", "dist/")):
            assert b"{{" not in data, f
    assert b"hi_there_init" in files["src/hi-there.c"]
    assert os.access(str(proj / "tests" / "smoke.sh"), os.X_OK)

    # Again: the same bytes; and the same project elsewhere too (no build
    # path, no time in the archive).
    first = open(archive, "rb").read()
    r = nno(proj, "project", "build")
    assert r.returncode == 0, r.stderr
    assert open(archive, "rb").read() == first
    other = tmp_path / "elsewhere"
    other.mkdir()
    _, archive2 = init_and_build(other, "hi-there", "minimal")
    assert open(archive2, "rb").read() == first

    h = make_host(core=True, workers=2).start()
    install(h, archive)
    h.platform("hip", stacks=["hi-there"])
    key = h.platform_key("hip")["key"]
    st, _, body = h.json("GET", "/p/hip/hello", key=key)
    assert st == 200 and body == {"message": "hello from hi-there"}, body
    r = smoke(proj, h, "hip", key)
    assert r.returncode == 0, r.stdout + r.stderr
    # ... and the smoke test fails when the answer is wrong.
    r = smoke(proj, h, "hip", "not-a-key")
    assert r.returncode != 0, r.stdout


def test_crud_rows_are_the_tenants(tmp_path, make_host):
    proj, archive = init_and_build(tmp_path, "shop", "crud")
    assert (proj / "migrations" / "items" / "0001_init.sql").is_file()
    h = make_host(core=True, workers=2).start()
    install(h, archive)
    h.platform("crp", stacks=["shop"])
    for tid in ("eu", "us"):
        st, _, t = h.api("POST", "/platforms/crp/tenants",
                         {"id": tid, "name": tid})
        assert st == 201, t
    keys = {t: h.platform_key("crp", tenant=t or None)["key"]
            for t in ("", "eu", "us")}

    def call(method, path, k, body=None):
        import json as _json
        hd = {"Authorization": "Bearer " + k}
        data = None
        if body is not None:
            data = _json.dumps(body).encode()
            hd["Content-Type"] = "application/json"
        st, rh, raw = h.request(method, "/p/crp" + path, headers=hd, body=data)
        return st, rh, (_json.loads(raw) if raw else None)

    made = {}
    for t in ("eu", "us"):
        st, _, it = call("POST", "/items", keys[t], {"name": "of " + t})
        assert st == 201 and it["tenant"] == t, it
        made[t] = it
    for t in ("eu", "us"):
        st, _, page = call("GET", "/items", keys[t])
        assert st == 200 and [i["name"] for i in page["items"]] == \
            ["of " + t], page
        other = made["us" if t == "eu" else "eu"]
        st, rh, p = call("GET", "/items/%d" % other["id"], keys[t])
        assert st == 404 and rh["content-type"].startswith(
            "application/problem+json") and p["request_id"], p
        st, _, p = call("DELETE", "/items/%d" % other["id"], keys[t])
        assert st == 404, p
    st, _, page = call("GET", "/items", keys[""])
    assert sorted(i["name"] for i in page["items"]) == ["of eu", "of us"]
    st, _, p = call("POST", "/items", keys["eu"], {"name": ""})
    assert st in (400, 422) and p["request_id"], p
    r = smoke(proj, h, "crp", keys[""])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", ["Bad", "1abc", "a_b", "a" * 33, "-x",
                                  "a/b", ""])
def test_bad_name_refused_nothing_written(tmp_path, name):
    before = tree(tmp_path)
    r = nno(tmp_path, "project", "init", name)
    assert r.returncode == 2, r
    assert r.stderr.startswith("nno: ") and "hint:" in r.stderr, r.stderr
    assert tree(tmp_path) == before


def test_existing_folder_refused_nothing_written(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    before = tree(tmp_path)
    r = nno(tmp_path, "project", "init", "taken")
    assert r.returncode == 2 and "not an empty folder" in r.stderr, r.stderr
    assert "nothing was written" in r.stderr and "hint:" in r.stderr
    r = nno(tmp_path, "project", "init", "other", "--dir", "taken")
    assert r.returncode == 2, r.stderr
    r = nno(tmp_path, "project", "init", "xyz", "--template", "nope")
    assert r.returncode == 2 and "no template" in r.stderr, r.stderr
    assert tree(tmp_path) == before
    # An empty folder is used.
    (tmp_path / "empty").mkdir()
    r = nno(tmp_path, "project", "init", "fresh", "--dir", "empty")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "empty" / "package.json").is_file()
    assert sorted(os.listdir(str(tmp_path))) == ["empty", "taken"]


def test_compile_error_reported(tmp_path):
    r = nno(tmp_path, "project", "init", "broken")
    assert r.returncode == 0, r.stderr
    proj = tmp_path / "broken"
    with open(str(proj / "src" / "broken.c"), "a") as f:
        f.write("\nint oops(void) { return undeclared_thing; }\n")
    r = nno(proj, "project", "build")
    assert r.returncode == 2, r
    assert "undeclared_thing" in r.stderr and "error" in r.stderr, r.stderr
    assert "compile failed" in r.stderr and "hint:" in r.stderr, r.stderr
    assert r.stdout == ""
    assert not (proj / "dist").exists()


def test_unloadable_package_refused_in_the_loaders_words(tmp_path):
    r = nno(tmp_path, "project", "init", "liar")
    assert r.returncode == 0, r.stderr
    proj = tmp_path / "liar"
    # The manifest declares a route the code never binds.
    p = proj / "package.json"
    p.write_text(p.read_text().replace(
        '{"method": "GET", "path": "/hello", "scope": "read"}',
        '{"method": "GET", "path": "/hello", "scope": "read"},\n'
        '    {"method": "GET", "path": "/missing"}'))
    r = nno(proj, "project", "build")
    assert r.returncode == 2, r
    assert "/missing" in r.stderr and "not loadable" in r.stderr, r.stderr
    assert "hint:" in r.stderr
    assert not (proj / "dist").exists()
    # Outside any project: refused with a hint.
    r = nno(tmp_path, "project", "build")
    assert r.returncode == 2 and "no project" in r.stderr, r.stderr


def test_installed_nno_builds_a_project(tmp_path):
    """Installed under any prefix: the templates are in share/nno/templates
    and the prefix's own nno-plugin.pc is found, nothing configured."""
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)],
                   stdout=subprocess.DEVNULL, check=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(clean_env(work))
    env["PATH"] = str(prefix / "bin") + ":/usr/local/bin:/usr/bin:/bin"
    r = nno(work, "project", "init", "--list", env=env)
    assert r.returncode == 0 and "crud" in r.stdout, r.stderr
    r = nno(work, "project", "init", "inst", "--template", "crud", env=env)
    assert r.returncode == 0, r.stderr
    r = nno(work / "inst", "project", "build", env=env)
    assert r.returncode == 0, r.stderr
    r = nno(work / "inst", "project", "env", env=env)
    assert str(prefix) in r.stdout and BUILD not in r.stdout, r.stdout


def test_help_and_unknown_commands(tmp_path):
    for args in (["project", "--help"], ["project", "init", "--help"],
                 ["project", "build", "--help"], ["project", "env", "--help"]):
        r = nno(tmp_path, *args)
        assert r.returncode == 0 and "usage: nno project" in r.stdout, args
        assert "example" in r.stdout.lower(), args
    r = nno(tmp_path, "project", "frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr, r.stderr
    assert "hint:" in r.stderr
    r = nno(tmp_path, "project", "init", "a-b", "--bogus")
    assert r.returncode == 2 and "hint:" in r.stderr, r.stderr
    assert os.listdir(str(tmp_path)) == []
