"""The developer's whole path, black-box, in one run: `nno project init` ->
`nno project dev` (the first 200; an edit live; a broken build shown with
the old version still answering; the fix live; SIGINT takes the local host
along) -> `nno project test` -> `nno project build` -> `nno login` to a
second host, approved there by its operator -> `nno project deploy` -> the
route answers on that host with the code last saved.

Each step's own edges have their tests (test_project_dev.py,
test_project_init.py, test_device_login.py, test_project_deploy.py); this
one checks that the steps hand over to each other. Every wait polls with a
generous deadline: the machine may be loaded.
"""
import os
import re
import time

from test_device_login import cli_env, start_login
from test_project_deploy import run
from test_project_dev import Dev, make_project, route, serving, write


def wait_until(pred, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("%s never happened" % what)


def test_init_dev_test_build_login_deploy(make_host, tmp_path):
    # The answers keep "hello from greet": the template's own smoke test,
    # run by `nno project test`, looks for it.
    root, src, render = make_project(tmp_path, "greet")
    env = cli_env(tmp_path)

    # -- dev: first answer, an edit, a broken build, the fix ---------------
    dev = Dev(root)
    try:
        dev.wait_for(lambda: route(dev) == "hello from greet", "first 200")
        write(src, render("hello from greet, v2"))
        dev.wait_for(lambda: route(dev) == "hello from greet, v2",
                     "the edit live")

        before = len(dev.output())
        write(src, render("hello from greet, v3") + "\nint broken(\n")
        dev.wait_for(lambda: "reload failed" in dev.output()[before:],
                     "the failed build reported")
        shown = dev.output()[before:]
        assert "src/greet.c" in shown and "error" in shown, shown
        assert route(dev) == "hello from greet, v2"

        write(src, render("hello from greet, v4"))
        dev.wait_for(lambda: route(dev) == "hello from greet, v4",
                     "the fix live")
        assert serving(root)
    finally:
        dev.stop()
    assert dev.proc.returncode == 0, dev.output()
    wait_until(lambda: serving(root) == [], "dev's host gone", timeout=30)

    # -- test, build -------------------------------------------------------
    r = run(root, env, "project", "test", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  tests/smoke.sh" in r.stdout, r.stdout

    r = run(root, env, "project", "build", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^([0-9a-f]{64})  (\S+)$", r.stdout, re.M)
    assert m, r.stdout
    archive = m.group(2)
    if not os.path.isabs(archive):
        archive = os.path.join(str(root), archive)
    assert archive.endswith("dist/greet-0.1.0.tar.gz"), archive
    assert os.path.isfile(archive)

    # -- a second host: login, approved by its operator; deploy ------------
    h = make_host(core=True, workers=2, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    h.platform("greet", stacks=(), **{"class": "user_project"})
    login, user_code = start_login(h, env, "greet")
    try:
        st, _, b = h.api("POST", "/device/approve", {"user_code": user_code})
        assert st == 200 and b["state"] == "approved", b
        _, err = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, err
    assert (tmp_path / "cfg" / "nno" / "credentials.json").is_file()

    r = run(root, env, "project", "deploy", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    url = "http://127.0.0.1:%d/p/greet/" % h.port
    assert "deployed greet 0.1.0 \u2192 " + url in r.stdout, r.stdout

    key = h.platform_key("greet", scopes=["features:*"])["key"]
    st, _, body = h.json("GET", "/p/greet/hello", key=key)
    assert st == 200, body
    assert body["message"] == "hello from greet, v4", body
    # Deploy builds again; the build is reproducible, so what is installed
    # there is the archive `nno project build` printed.
    st, _, stack = h.api("GET", "/stacks/greet")
    assert st == 200, stack
    assert [(d["version"], d["sha256"]) for d in stack["details"]] == \
        [("0.1.0", m.group(1))], stack
