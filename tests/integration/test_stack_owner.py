"""Who owns a stack id: a user_project platform's key (stacks:deploy)
installs only the stack whose id is its platform's id, and only while every
installed version of that id is its own. Platform "abc" cannot take
"abc-xyz" (another platform's own id); a developer cannot add a version to
the operator's stack of their id; a developer re-deploys their own id; the
operator installs anything, a developer's id included. A refusal is a 403
problem naming the rule and leaves nothing: the stack list unchanged, no
folder under DATA/stacks, no staging or upload file."""
import json
import os
import subprocess

from conftest import BUILD, NNO

BIN = os.path.join(BUILD, "bin")


def env_for(tmp_path):
    return {"HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
            "PATH": BIN + ":/usr/local/bin:/usr/bin:/bin", "LANG": "C"}


def archive(tmp_path, name, version="0.1.0", answer=None):
    """The bytes of `nno project build` of a minimal project NAME (stack id
    NAME) at `version`; `answer` changes its route's text (other bytes)."""
    env = env_for(tmp_path)
    root = tmp_path / ("%s-%s-%s" % (name, version, answer or ""))
    root.mkdir()
    # init refuses the id of a stack the host ships ("default"): made
    # under a stand-in name, then renamed in every file and file name.
    made = "zzstandinzz" if name == "default" else name
    r = subprocess.run([NNO, "project", "init", made], cwd=str(root),
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    if made != name:
        for p in sorted((root / made).rglob("*"), reverse=True):
            if p.is_file():
                p.write_text(p.read_text().replace(made, name))
            if made in p.name:
                p.rename(p.with_name(p.name.replace(made, name)))
        (root / made).rename(root / name)
    proj = root / name
    for f in ("stack.json", "package.json"):
        p = proj / f
        p.write_text(p.read_text().replace('"0.1.0"', '"%s"' % version))
    if answer:
        src = proj / "src" / (name + ".c")
        src.write_text(src.read_text().replace("hello from", answer))
    r = subprocess.run([NNO, "project", "build"], cwd=str(proj), env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(str(proj / "dist" / ("%s-%s.tar.gz" % (name, version))),
              "rb") as f:
        return f.read()


def install(h, data, key=None):
    return h.api("POST", "/stacks", data, key=key,
                 headers={"Content-Type": "application/gzip"})


def developer(h, pid):
    h.platform(pid, stacks=(), **{"class": "user_project"})
    return h.platform_key(pid, scopes=["stacks:deploy", "stacks:write",
                                       "features:*"])["key"]


def stacks(h):
    st, _, b = h.api("GET", "/stacks")
    assert st == 200, b
    return json.dumps(b, sort_keys=True)


def left_nothing(h, sid, version):
    """No folder of that version, nothing staged, no spooled upload."""
    assert not os.path.exists(os.path.join(h.data, "stacks", sid, version))
    for d in (os.path.join(h.data, "stacks", ".staging"),
              os.path.join(h.data, "tmp")):
        assert not os.path.isdir(d) or os.listdir(d) == [], os.listdir(d)


def owner_recorded(h, sid, version):
    with open(os.path.join(h.data, "stacks", sid, version,
                           ".install.json")) as f:
        return json.load(f).get("owner", "")


def refused(st, rh, b):
    assert st == 403, b
    assert rh.get("content-type", rh.get("Content-Type", "")).startswith(
        "application/problem+json"), rh
    assert b.get("request_id") and b.get("field") == "id", b


def test_a_platform_cannot_take_another_platforms_id(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    abc = developer(h, "abc")
    xyz = developer(h, "abc-xyz")
    squat = archive(tmp_path, "abc-xyz")
    before = stacks(h)
    st, rh, b = install(h, squat, key=abc)
    refused(st, rh, b)
    assert "platform's id" in b["detail"] and '"abc"' in b["detail"], b
    assert stacks(h) == before
    left_nothing(h, "abc-xyz", "0.1.0")
    assert not os.path.exists(os.path.join(h.data, "stacks", "abc-xyz"))
    # The id's own platform installs it, and it is recorded as its owner.
    st, _, b = install(h, squat, key=xyz)
    assert st == 201, b
    assert owner_recorded(h, "abc-xyz", "0.1.0") == "abc-xyz"
    # Still not abc's to add versions to.
    before = stacks(h)
    st, rh, b = install(h, archive(tmp_path, "abc-xyz", "0.2.0"), key=abc)
    refused(st, rh, b)
    assert stacks(h) == before
    left_nothing(h, "abc-xyz", "0.2.0")


def test_a_developer_redeploys_their_own_id(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    key = developer(h, "own")
    first = archive(tmp_path, "own")
    st, _, b = install(h, first, key=key)
    assert st == 201, b
    st, _, b = install(h, first, key=key)  # the same bytes again
    assert st == 200, b
    st, _, b = install(h, archive(tmp_path, "own", "0.2.0"), key=key)
    assert st == 201, b
    assert owner_recorded(h, "own", "0.2.0") == "own"
    st, _, b = h.api("GET", "/stacks/own")
    assert st == 200, b
    # Activated on its platform, the new version answers.
    st, _, b = h.api("POST", "/platforms/own/stacks",
                     {"stack": "own", "version": "0.2.0"}, key=key)
    assert st in (200, 201), b


def test_a_developer_cannot_add_to_the_operators_stack(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    key = developer(h, "opx")
    st, _, b = install(h, archive(tmp_path, "opx"))  # the operator's
    assert st == 201, b
    assert owner_recorded(h, "opx", "0.1.0") == ""
    before = stacks(h)
    st, rh, b = install(h, archive(tmp_path, "opx", "0.2.0"), key=key)
    refused(st, rh, b)
    assert "operator" in b["detail"], b
    assert stacks(h) == before
    left_nothing(h, "opx", "0.2.0")
    # The operator still installs versions of it.
    st, _, b = install(h, archive(tmp_path, "opx", "0.3.0"))
    assert st == 201, b


def test_the_operator_installs_a_developers_id(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    key = developer(h, "dev")
    st, _, b = install(h, archive(tmp_path, "dev"), key=key)
    assert st == 201, b
    # The operator may install any id, a developer's included...
    st, _, b = install(h, archive(tmp_path, "dev", "0.2.0"))
    assert st == 201, b
    assert owner_recorded(h, "dev", "0.2.0") == ""
    # ...after which the id is no longer the developer's alone.
    before = stacks(h)
    st, rh, b = install(h, archive(tmp_path, "dev", "0.3.0"), key=key)
    refused(st, rh, b)
    assert stacks(h) == before
    left_nothing(h, "dev", "0.3.0")


def test_a_platform_key_removes_no_other_stack(make_host, tmp_path):
    """Its own versions it may remove (test_stack_privacy.py); the
    operator's it may not."""
    h = make_host(core=True, workers=1).start()
    key = developer(h, "rmx")
    st, _, b = install(h, archive(tmp_path, "rmx"))  # the operator's
    assert st == 201, b
    st, _, b = h.api("DELETE", "/stacks/rmx/0.1.0", key=key)
    assert st in (401, 403), b
    assert os.path.isdir(os.path.join(h.data, "stacks", "rmx", "0.1.0"))


def test_a_builtin_stack_of_the_id_is_the_operators(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    st, _, b = h.api("GET", "/stacks/default")
    assert st == 200, b
    key = developer(h, "default")
    before = stacks(h)
    st, rh, b = install(h, archive(tmp_path, "default", "9.0.0"), key=key)
    refused(st, rh, b)
    assert "operator" in b["detail"], b
    assert stacks(h) == before
    left_nothing(h, "default", "9.0.0")
