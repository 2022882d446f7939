"""`nno project deploy` and the install route's rule for user_project
keys: a project logged in to a host (nno login, approved by the operator)
is built, uploaded and activated there, and its route answers; a platform
key cannot install another id, nor can a `platform`-class platform's; a
refusal leaves nothing; a version reinstalled with other bytes is refused
with a hint."""
import json
import os
import subprocess

from conftest import BUILD, NNO

BIN = os.path.join(BUILD, "bin")


def env_for(tmp_path):
    return {"HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
            "PATH": BIN + ":/usr/local/bin:/usr/bin:/bin", "LANG": "C"}


def run(cwd, env, *args, timeout=300):
    return subprocess.run([NNO] + list(args), cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


def store_login(tmp_path, h, pid, key):
    """Credentials as nno login writes them (the flow has its own tests)."""
    d = tmp_path / "cfg" / "nno"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(str(d), 0o700)
    p = d / "credentials.json"
    p.write_text(json.dumps({"http://127.0.0.1:%d" % h.port: {
        "platform": pid, "key": key["key"], "key_id": key["id"],
        "expires_at": key["expires_at"]}}))
    os.chmod(str(p), 0o600)


def init(tmp_path, env, name):
    r = run(tmp_path, env, "project", "init", name)
    assert r.returncode == 0, r.stderr
    return tmp_path / name


def staging_empty(h):
    d = os.path.join(h.data, "stacks", ".staging")
    return not os.path.isdir(d) or os.listdir(d) == []


def test_login_then_deploy_and_the_route_answers(make_host, tmp_path):
    h = make_host(core=True, workers=2).start()
    h.platform("dpx", stacks=(), **{"class": "user_project"})
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "dpx")
    # nno login, approved by the operator from the CLI.
    p = subprocess.Popen([NNO, "login", "http://127.0.0.1:%d" % h.port,
                          "--platform", "dpx"], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    assert line.startswith("Open "), line
    r = run(tmp_path, env, "device", "approve", line.split()[-1], "--url",
            "http://127.0.0.1:%d" % h.port, "--data", h.data, timeout=30)
    assert r.returncode == 0, r.stderr
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 0, r.stderr
    assert "deployed dpx 0.1.0 \u2192 http://127.0.0.1:%d/p/dpx/" % h.port \
        in r.stdout, r.stdout
    key = h.platform_key("dpx", scopes=["features:*"])["key"]
    st, _, body = h.json("GET", "/p/dpx/hello", key=key)
    assert st == 200, body
    # The same version again, same bytes: installed already, fine.
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 0, r.stderr
    # Other bytes under the same version: refused, with the way out.
    src = proj / "src" / "dpx.c"
    src.write_text(src.read_text().replace("hello from", "hi from"))
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 1, r.stdout
    assert "already installed" in r.stderr and "bump" in r.stderr


def test_a_platform_key_installs_only_its_own_ids(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    h.platform("dpx", stacks=(), **{"class": "user_project"})
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "elsewhere")
    key = h.platform_key("dpx", scopes=["stacks:deploy", "stacks:write",
                                       "features:*"])
    store_login(tmp_path, h, "dpx", key)
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 1, r.stdout
    assert "403" in r.stderr and '"dpx"' in r.stderr, r.stderr
    st, _, _ = h.api("GET", "/stacks/elsewhere")
    assert st == 404
    assert staging_empty(h)
    assert not os.path.exists(os.path.join(h.data, "stacks", "elsewhere"))
    # "dpx-..." is not its own either: it could be another platform's id.
    proj2 = init(tmp_path, env, "dpx-api")
    r = run(proj2, env, "project", "deploy")
    assert r.returncode == 1 and "403" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(h.data, "stacks", "dpx-api"))
    # Without stacks:deploy, nothing is installed.
    weak = h.platform_key("dpx", scopes=["stacks:write", "features:*"])
    archive = str(proj2 / "dist" / "dpx-api-0.1.0.tar.gz")
    with open(archive, "rb") as f:
        data = f.read()
    st, _, b = h.api("POST", "/stacks", data, key=weak["key"],
                     headers={"Content-Type": "application/gzip"})
    assert st == 403 and "stacks:deploy" in b["detail"], b


def test_a_platform_class_platform_cannot_deploy(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    h.platform("pcx", stacks=())
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "pcx")
    key = h.platform_key("pcx", scopes=["stacks:deploy", "stacks:write",
                                       "features:*"])
    store_login(tmp_path, h, "pcx", key)
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 1 and "user_project" in r.stderr, r.stderr
    st, _, _ = h.api("GET", "/stacks/pcx")
    assert st == 404
    assert staging_empty(h)


def test_deploy_without_a_login_says_how(tmp_path):
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "nologin")
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 2 and "nno login" in r.stderr, r.stderr
