"""A stack version installed by a platform's key is that platform's private
code. Another platform's key neither sees it (GET /stacks, GET /stacks/{id}:
no id, version, sha256 or in_use) nor activates it (the answers of a stack
never installed); a version-less activation or creation takes the newest
version that is the operator's or the platform's own, never another
platform's. The operator sees everything and may activate a developer's
stack anywhere. A platform holds at most stacks.max_owned_versions versions
of its own stack (409, nothing written) and removes its own unused versions
(DELETE /stacks/{id}/{version}: 204; in use 409; another's 404)."""
import json
import os
import subprocess

from conftest import NNO
from test_stack_owner import archive, developer, install, left_nothing


def ids(h, key=None):
    st, _, b = h.api("GET", "/stacks?limit=100", key=key)
    assert st == 200, b
    return {s["id"]: s for s in b["items"]}


def problem(st, rh, b, status):
    assert st == status, b
    assert rh.get("content-type", rh.get("Content-Type", "")).startswith(
        "application/problem+json"), rh
    assert b.get("request_id"), b


def two_developers(h, tmp_path):
    """Platforms "alpha" and "beta", each with its own stack installed (and
    alpha's active on alpha); their keys."""
    a, b = developer(h, "alpha"), developer(h, "beta")
    for pid, key in (("alpha", a), ("beta", b)):
        st, _, r = install(h, archive(tmp_path, pid), key=key)
        assert st == 201, r
    st, _, r = h.api("POST", "/platforms/alpha/stacks", {"stack": "alpha"},
                     key=a)
    assert st in (200, 201), r
    return a, b


def test_a_platform_lists_only_its_own_and_the_operators(make_host,
                                                         tmp_path):
    h = make_host(core=True, workers=1).start()
    a, b = two_developers(h, tmp_path)
    seen = ids(h, key=b)
    assert "beta" in seen and "default" in seen, seen
    assert "alpha" not in seen, seen
    # Nothing of alpha's anywhere in the answer (its sha256 neither).
    st, _, full = h.api("GET", "/stacks/alpha")
    sha = full["details"][0]["sha256"]
    st, _, raw = h.api("GET", "/stacks?limit=100", key=b)
    text = json.dumps(raw)
    assert '"alpha"' not in text and sha not in text, text
    # One stack: as if never installed, the same answer as a made-up id.
    st, rh, r = h.api("GET", "/stacks/alpha", key=b)
    problem(st, rh, r, 404)
    st2, _, r2 = h.api("GET", "/stacks/nosuchstack", key=b)
    assert st2 == 404 and r["detail"] == r2["detail"].replace(
        "nosuchstack", "alpha"), (r, r2)
    # Its own is there, and the operator sees both.
    st, _, r = h.api("GET", "/stacks/beta", key=b)
    assert st == 200 and r["versions"] == ["0.1.0"], r
    assert {"alpha", "beta", "default"} <= set(ids(h))


def test_the_pager_skips_what_a_platform_does_not_see(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    a, b = two_developers(h, tmp_path)
    # limit=1, page after page: alpha never appears, nothing is lost.
    got, after = [], None
    for _ in range(10):
        q = "/stacks?limit=1" + ("&cursor=" + after if after else "")
        st, _, r = h.api("GET", q, key=b)
        assert st == 200, r
        got += [s["id"] for s in r["items"]]
        after = r.get("next_cursor")
        if not after:
            break
    assert "alpha" not in got and {"beta", "default"} <= set(got), got


def test_another_platforms_stack_cannot_be_activated(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    a, b = two_developers(h, tmp_path)
    never = []
    for body in ({"stack": "nosuchstack"}, {"stack": "nosuchstack",
                                             "version": "0.1.0"}):
        st, rh, r = h.api("POST", "/platforms/beta/stacks", body, key=b)
        never.append((st, r["detail"].replace("nosuchstack", "alpha")))
    for i, body in enumerate(({"stack": "alpha"},
                              {"stack": "alpha", "version": "0.1.0"})):
        st, rh, r = h.api("POST", "/platforms/beta/stacks", body, key=b)
        problem(st, rh, r, never[i][0])
        assert r["detail"] == never[i][1], (r, never[i])
    st, _, r = h.api("GET", "/platforms/beta/stacks", key=b)
    assert st == 200 and [x["stack"] for x in r["items"]] == [], r
    st, _, r = h.api("GET", "/stacks/alpha")
    assert r["details"][0]["in_use"] == 1, r  # alpha's own only


def test_the_operator_activates_a_developers_stack_anywhere(make_host,
                                                           tmp_path):
    h = make_host(core=True, workers=1).start()
    two_developers(h, tmp_path)
    st, _, r = h.api("POST", "/platforms/beta/stacks",
                     {"stack": "alpha", "version": "0.1.0"})
    assert st == 201 and r["version"] == "0.1.0", r


def test_a_version_less_choice_never_takes_another_platforms(make_host,
                                                            tmp_path):
    """An id whose only versions are platform alpha's: a platform the
    operator makes with "stacks": ["alpha"] (no version) is refused, not
    given alpha's code, and so is a version-less activation on another
    platform; once the operator has a version of the id, that one is taken
    there, while alpha itself gets its own newest."""
    h = make_host(core=True, workers=1).start()
    a, _ = two_developers(h, tmp_path)
    st, rh, r = h.api("POST", "/platforms",
                      {"id": "victim", "name": "victim", "stacks": ["alpha"]})
    problem(st, rh, r, 422)
    assert "stack@version" in r["detail"], r
    st, _, r = h.api("GET", "/platforms/victim")
    assert st == 404, r
    st, _, r = h.api("POST", "/platforms/beta/stacks", {"stack": "alpha"})
    problem(st, _, r, 422)
    assert "name the version" in r["detail"], r
    # The operator's version of the id, once there, is the one taken.
    st, _, r = install(h, archive(tmp_path, "alpha", "0.0.9"))
    assert st == 201, r
    st, _, r = h.api("POST", "/platforms",
                     {"id": "victim", "name": "victim", "stacks": ["alpha"]})
    assert st == 201, r
    st, _, r = h.api("GET", "/platforms/victim/stacks")
    assert [(x["stack"], x["version"]) for x in r["items"]] == [
        ("alpha", "0.0.9")], r
    # On alpha itself, alpha's own newest is taken.
    st, _, r = h.api("POST", "/platforms/alpha/stacks", {"stack": "alpha"},
                     key=a)
    assert st == 200 and r["version"] == "0.1.0", r
    st, _, r = h.api("POST", "/platforms/beta/stacks", {"stack": "alpha"})
    assert st == 201 and r["version"] == "0.0.9", r


def test_a_platform_holds_a_bounded_number_of_versions(make_host, tmp_path):
    h = make_host(core=True, workers=1,
                  config={"stacks": {"max_owned_versions": 2}}).start()
    key = developer(h, "cap")
    built = {}
    for v in ("0.1.0", "0.2.0"):
        built[v] = archive(tmp_path, "cap", v)
        st, _, r = install(h, built[v], key=key)
        assert st == 201, r
    before = ids(h)
    third = archive(tmp_path, "cap", "0.3.0")
    st, rh, r = install(h, third, key=key)
    problem(st, rh, r, 409)
    assert "at most 2" in r["detail"] and "stacks.max_owned_versions" in \
        r["detail"] and "DELETE /api/v1/stacks/cap/" in r["detail"], r
    assert ids(h) == before
    left_nothing(h, "cap", "0.3.0")
    # The same version again is no new version: answered as installed.
    st, _, r = install(h, built["0.2.0"], key=key)
    assert st == 200, r
    # Room made by removing one, the third goes in.
    st, _, r = h.api("DELETE", "/stacks/cap/0.1.0", key=key)
    assert st == 204, r
    st, _, r = install(h, third, key=key)
    assert st == 201, r


def test_a_platform_removes_its_own_unused_versions(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    a, b = two_developers(h, tmp_path)
    st, _, r = install(h, archive(tmp_path, "beta", "0.2.0"), key=b)
    assert st == 201, r
    st, _, r = h.api("POST", "/platforms/beta/stacks",
                     {"stack": "beta", "version": "0.2.0"}, key=b)
    assert st == 201, r
    # In use: 409, as for the operator.
    st, rh, r = h.api("DELETE", "/stacks/beta/0.2.0", key=b)
    problem(st, rh, r, 409)
    assert os.path.isdir(os.path.join(h.data, "stacks", "beta", "0.2.0"))
    # Another platform's: 404, as never installed; the operator's: 403.
    st, rh, r = h.api("DELETE", "/stacks/alpha/0.1.0", key=b)
    problem(st, rh, r, 404)
    st2, _, r2 = h.api("DELETE", "/stacks/nosuchstack/0.1.0", key=b)
    assert st2 == 404 and r2["detail"] == r["detail"], (r, r2)
    assert os.path.isdir(os.path.join(h.data, "stacks", "alpha", "0.1.0"))
    st, rh, r = h.api("DELETE", "/stacks/default/1.0.0", key=b)
    problem(st, rh, r, 403)
    # Its own, unused: 204 and gone.
    st, _, r = h.api("DELETE", "/stacks/beta/0.1.0", key=b)
    assert st == 204, r
    assert not os.path.exists(os.path.join(h.data, "stacks", "beta", "0.1.0"))
    st, _, r = h.api("GET", "/stacks/beta", key=b)
    assert r["versions"] == ["0.2.0"], r
    # Without stacks:deploy, or bound to a tenant: refused.
    weak = h.platform_key("beta", scopes=["stacks:write"])["key"]
    st, rh, r = h.api("DELETE", "/stacks/beta/0.2.0", key=weak)
    problem(st, rh, r, 403)


# ---- nno project deploy: a refused activation undone, old versions pruned


def deploy_env(h, tmp_path, pid, template="minimal"):
    from test_project_deploy import env_for, init, store_login
    h.platform(pid, stacks=(), **{"class": "user_project"})
    key = h.platform_key(pid, scopes=["stacks:deploy", "stacks:write",
                                      "stacks:read", "features:*"])
    env = env_for(tmp_path)
    store_login(tmp_path, h, pid, key)
    r = subprocess.run([NNO, "project", "init", pid, "--template", template],
                       cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return env, tmp_path / pid


def bump(proj, version):
    for f in ("stack.json", "package.json"):
        p = proj / f
        j = json.loads(p.read_text())
        j["version"] = version
        if f == "stack.json":
            for pk in j.get("packages", []):
                if isinstance(pk, dict) and "version" in pk:
                    pk["version"] = version
        p.write_text(json.dumps(j, indent=2) + "\n")


def deploy(proj, env, *args):
    return subprocess.run([NNO, "project", "deploy"] + list(args),
                          cwd=str(proj), env=env, capture_output=True,
                          text=True, timeout=300)


def versions(h, sid):
    st, _, b = h.api("GET", "/stacks/" + sid)
    assert st == 200, b
    return b["versions"]


def test_a_refused_activation_does_not_burn_the_version(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    env, proj = deploy_env(h, tmp_path, "shop", "crud")
    mig = proj / "migrations" / "items" / "0001_init.sql"
    good = mig.read_text()
    mig.write_text("ATTACH DATABASE 'x.db' AS x;\n" + good)
    r = deploy(proj, env)
    assert r.returncode != 0, r.stdout
    assert "removed again" in r.stderr and "shop 0.1.0" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(h.data, "stacks", "shop",
                                           "0.1.0"))
    # Fixed, the same version deploys.
    mig.write_text(good)
    r = deploy(proj, env)
    assert r.returncode == 0, r.stderr
    assert "deployed shop 0.1.0" in r.stdout, r.stdout


def test_a_good_deploy_removes_unused_versions_past_the_newest(make_host,
                                                             tmp_path):
    h = make_host(core=True, workers=1).start()
    env, proj = deploy_env(h, tmp_path, "keep")
    for v in ("0.1.0", "0.2.0", "0.3.0", "0.4.0"):
        bump(proj, v)
        r = deploy(proj, env)
        assert r.returncode == 0, r.stderr
    # 0.4.0 active; the newest 3 kept: 0.1.0 went, and the output says so.
    assert "removed unused versions of keep: 0.1.0" in r.stdout, r.stdout
    assert sorted(versions(h, "keep")) == ["0.2.0", "0.3.0", "0.4.0"]
    bump(proj, "0.5.0")
    r = deploy(proj, env, "--keep", "1")
    assert r.returncode == 0, r.stderr
    assert versions(h, "keep") == ["0.5.0"], r.stdout
    r = deploy(proj, env, "--keep", "0")
    assert r.returncode == 2 and "--keep" in r.stderr, r.stderr


def test_deploy_at_the_bound_says_how_to_make_room(make_host, tmp_path):
    h = make_host(core=True, workers=1,
                  config={"stacks": {"max_owned_versions": 1}}).start()
    env, proj = deploy_env(h, tmp_path, "full")
    r = deploy(proj, env)
    assert r.returncode == 0, r.stderr
    bump(proj, "0.2.0")
    r = deploy(proj, env)
    assert r.returncode == 1, r.stderr
    assert "at most 1 (stacks.max_owned_versions)" in r.stderr, r.stderr
    assert "hint: remove a version no platform uses" in r.stderr, r.stderr
    assert versions(h, "full") == ["0.1.0"]
