"""Installing a stack that must run in-process, black box: the check an
install runs decides isolation from the host's configuration, as the
worker that loads the stack does, `nno stack check` and `nno serve --check`
do, whichever way the setting was given (config file, NNO_* variable,
--set).

The archive is the builtin default stack repacked as 1.0.2: its auth
package uses nno.iam, so it loads only in-process (sandbox.inprocess
naming it, or sandbox.mode inprocess); elsewhere every check refuses it
with the same words. Installed, it is what a platform runs, and its
packages' ui/ assets are served immutable (an installed archive never
changes under its version), unlike the builtin 1.0.0's."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, NNO, Host
from test_iam import call, problem

BUILTIN = os.path.join(BUILD, "share", "nno", "stacks", "default", "1.0.0")
VERSION = "1.0.2"
REFUSAL = ("package auth uses service nno.iam, which a sandboxed stack "
           "cannot reach; run stack default inprocess (sandbox.inprocess)")
SETTING = {"sandbox": {"inprocess": "default"}}
IMMUTABLE = "public, max-age=31536000, immutable"
JS = "text/javascript; charset=utf-8"


def clean_env(**extra):
    """This process's environment without a setting of isolation, plus
    `extra`: what a command decides must come from what the test gives."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NNO_SANDBOX_") and k != "NNO_CONFIG"}
    env.update(extra)
    return env


def run(*args, env=None):
    return subprocess.run([NNO] + list(args), capture_output=True, text=True,
                          env=env or clean_env(), timeout=120)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """default-1.0.2.tar.gz: the builtin default stack under a new
    version, packed with `nno stack pack`."""
    tmp = tmp_path_factory.mktemp("archive")
    src = str(tmp / "default")
    shutil.copytree(BUILTIN, src)
    sj = os.path.join(src, "stack.json")
    with open(sj) as f:
        stack = json.load(f)
    stack["version"] = VERSION
    with open(sj, "w") as f:
        json.dump(stack, f)
    r = run("stack", "pack", src, "-o", str(tmp))
    assert r.returncode == 0, r.stderr
    path = str(tmp / ("default-%s.tar.gz" % VERSION))
    assert os.path.isfile(path)
    return path


def install(h, path):
    with open(path, "rb") as f:
        return call(h, "POST", "/api/v1/stacks", key=h.op_key(), body=f.read(),
                    headers={"Content-Type": "application/gzip"})


def detail(h, version):
    st, _, body = h.api("GET", "/stacks/default")
    assert st == 200, body
    return {d["version"]: d for d in body["details"]}.get(version)


def installed_inprocess(h, path):
    """Install `path` on `h`: 201, loaded, in-process, on every worker."""
    st, _, body = install(h, path)
    assert st == 201, (body, h.log_text()[-3000:])
    assert body["id"] == "default" and body["version"] == VERSION, body
    d = detail(h, VERSION)
    assert d["source"] == "installed" and d["state"] == "loaded", d
    assert d["isolation"] == "inprocess", d
    assert os.path.isdir(os.path.join(h.data, "stacks", "default", VERSION))


@pytest.fixture(scope="module")
def h(tmp_path_factory, archive):
    """Core plugins, 2 workers, sandbox.inprocess naming default in the
    config file; default 1.0.2 installed from its archive. Platforms:
    acme runs it, beta the builtin 1.0.0."""
    host = Host(tmp_path_factory.mktemp("install-inprocess"), workers=2,
                core=True, config=SETTING)
    host.start()
    try:
        installed_inprocess(host, archive)
        host.platform("acme", stacks=["default@" + VERSION], plan="unmetered")
        host.platform("beta", stacks=["default@1.0.0"], plan="unmetered")
        yield host
    finally:
        host.stop()


# -- the check a command runs ----------------------------------------------------

def test_stack_check_decides_isolation_from_the_configuration(archive,
                                                              tmp_path):
    r = run("stack", "check", archive)
    assert r.returncode == 1, r.stdout
    assert REFUSAL in r.stderr, r.stderr
    r = run("stack", "check", "--json", archive)
    assert r.returncode == 1
    rep = json.loads(r.stdout)
    assert rep["ok"] is False
    assert [p["message"] for p in rep["problems"]] == [REFUSAL], rep

    cfg = tmp_path / "nno.json"
    cfg.write_text(json.dumps(SETTING))
    for args, env in (
            (["--set", "sandbox.inprocess=default"], None),
            (["--set", "sandbox.mode=inprocess"], None),
            (["--config", str(cfg)], None),
            ([], clean_env(NNO_SANDBOX_INPROCESS="default")),
            ([], clean_env(NNO_CONFIG=str(cfg)))):
        r = run("stack", "check", archive, *args, env=env)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout == "stack default %s ok\n" % VERSION, args
    # named sandboxed too: refused, whatever else says in-process
    r = run("stack", "check", archive, "--set", "sandbox.mode=inprocess",
            "--set", "sandbox.sandboxed=default")
    assert r.returncode == 1 and REFUSAL in r.stderr, r.stderr


# -- install -----------------------------------------------------------------------

def test_install_refused_without_the_setting(make_host, archive):
    host = make_host(workers=1, core=True)
    host.start()
    body = problem(install(host, archive), 422, REFUSAL)
    assert body["file"] == "packages/auth/package.json", body
    assert body["problems"] == [{"file": "packages/auth/package.json",
                                 "field": "", "message": REFUSAL}], body
    # nothing of it stays
    assert detail(host, VERSION) is None
    assert not os.path.exists(os.path.join(host.data, "stacks", "default"))
    staging = os.path.join(host.data, "stacks", ".staging")
    assert not os.path.isdir(staging) or os.listdir(staging) == []
    # the command says the same, with the host's configuration
    r = run("stack", "check", archive, "--config", host.config_path)
    assert r.returncode == 1 and REFUSAL in r.stderr, r.stderr


@pytest.mark.parametrize("how", ["env", "flag", "mode"])
def test_install_inprocess_however_configured(make_host, archive, how):
    kw = {"env": {"env": {"NNO_SANDBOX_INPROCESS": "default"}},
          "flag": {"args": ["--set", "sandbox.inprocess=default"]},
          "mode": {"args": ["--set", "sandbox.mode=inprocess"]}}[how]
    host = make_host(workers=1, core=True, **kw)
    host.start()
    installed_inprocess(host, archive)


def test_install_inprocess_and_activate(h, archive):
    d = detail(h, VERSION)
    assert d["isolation"] == "inprocess" and d["in_use"] >= 1, d
    # the same archive again: already there, nothing changes
    st, _, body = install(h, archive)
    assert st == 200, body
    st, _, page = h.api("GET", "/platforms/acme/stacks")
    assert st == 200, page
    assert [(a["stack"], a["version"]) for a in page["items"]] == [
        ("default", VERSION)], page
    key = h.platform_key("acme", ["features:*"])["key"]
    st, hd, body = call(h, "GET", "/p/acme/hello", key=key)
    assert st == 200, body
    assert body == {"message": "hello, world"}


def test_serve_check_agrees_with_the_install(h, tmp_path):
    """On the data folder holding the installed version: ok with the
    setting, the install's refusal without it."""
    r = run("serve", "--check", "--data", h.data, "--config", h.config_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration ok\n"
    bare = tmp_path / "bare.json"
    bare.write_text("{}")
    r = run("serve", "--check", "--data", h.data, "--config", str(bare))
    assert r.returncode == 1
    assert ("error: stack default@%s: %s" % (VERSION, REFUSAL)) in r.stderr, \
        r.stderr


# -- the console's assets of the installed version ----------------------------

def console(h, pid, path, **kw):
    return call(h, "GET", path, host="console.%s.nno.localhost" % pid, **kw)


def test_console_serves_the_installed_assets_immutable(h):
    # the shell of the installed version links its own assets
    base = "/console/ui/default/%s/console/1.0.0" % VERSION
    st, hd, body = console(h, "acme", "/console/profile")
    assert st == 200, body
    assert body["base"] == base, body
    st, hd, page = console(h, "acme", "/")
    assert st == 200, page
    assert (base + "/shell.js").encode() in page
    for path, ctype in ((base + "/shell.js", JS),
                        (base + "/shell.css", "text/css; charset=utf-8"),
                        ("/console/ui/default/%s/hello/1.0.0/hello.js"
                         % VERSION, JS),
                        ("/console/ui/default/%s/notes/1.0.0/notes.js"
                         % VERSION, JS)):
        st, hd, body = console(h, "acme", path)
        assert st == 200, (path, body)
        assert hd["content-type"] == ctype, path
        assert hd["cache-control"] == IMMUTABLE, path
        etag = hd["etag"]
        st, hd, body = console(h, "acme", path,
                               headers={"If-None-Match": etag})
        assert st == 304 and not body, path
    # the builtin version's, on the platform running it: can change
    st, hd, body = console(h, "beta",
                           "/console/ui/default/1.0.0/hello/1.0.0/hello.js")
    assert st == 200, body
    assert hd["cache-control"] == "no-cache"
    # and neither platform reaches the other's version
    problem(console(h, "beta", "/console/ui/default/%s/hello/1.0.0/hello.js"
                    % VERSION), 404)
    problem(console(h, "acme",
                    "/console/ui/default/1.0.0/hello/1.0.0/hello.js"), 404)
