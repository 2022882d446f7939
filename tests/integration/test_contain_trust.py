"""What a feature package may not reach of the host's own state, sandboxed
or not (README "Containment"):

- a sandboxed package's counter calls are refused (NNO_EREFUSED): the
  counters are the host's one shared namespace, where the "iam" and
  "registry" generations live;
- a feature package's limit buckets are its stack's and its own: the
  same package name in another stack takes from other buckets;
- a feature package may not be named as a core plugin is ("iam"): its
  limit buckets would be the core plugin's; `nno stack check` and the
  loader refuse it with the same message."""
import json
import os
import shutil
import subprocess

from conftest import FIXTURE_STACKS, NNO

SBXPROBE = os.path.join(FIXTURE_STACKS, "sbxprobe")
LIMITPROBE = os.path.join(FIXTURE_STACKS, "limitprobe")
CORE = ["iam", "registry", "provisioning"]
EREFUSED = -14


def test_sandboxed_package_cannot_touch_the_host_counters(make_host):
    h = make_host(workers=1, stacks=[SBXPROBE]).start()
    for name in ("iam", "registry", "c"):
        # A huge delta is how a package would subtract every increment.
        st, _, body = h.request("GET", "/counter?name=%s&delta=%d" %
                                (name, 2**64 - 1))
        assert st == 200, body
        assert json.loads(body) == {"rc": EREFUSED, "after": 0}, body
    loaded = [e for e in h.log_lines() if e.get("msg") == "stack loaded"
              and e.get("name") == "sbxprobe@1.0.0"]
    assert loaded and loaded[0]["isolation"] == "sandbox", loaded


def copy_stack(tmp_path, sid, pkg, fixture="limitprobe"):
    """The fixture stack as stack `sid` with its package named `pkg`."""
    root = os.path.join(str(tmp_path), "stacks-" + sid)
    sdir = os.path.join(root, sid, "1.0.0")
    src = os.path.join(FIXTURE_STACKS, fixture, fixture, "1.0.0")
    shutil.copytree(os.path.join(src, "packages", fixture),
                    os.path.join(sdir, "packages", pkg))
    pj = os.path.join(sdir, "packages", pkg, "package.json")
    with open(pj) as f:
        m = json.load(f)
    m["name"] = pkg
    with open(pj, "w") as f:
        json.dump(m, f)
    with open(os.path.join(sdir, "stack.json"), "w") as f:
        json.dump({"id": sid, "version": "1.0.0",
                   "packages": [{"name": pkg, "version": "1.0.0"}]}, f)
    return root, sdir


def test_limit_buckets_are_the_stack_and_package(make_host, tmp_path):
    other, _ = copy_stack(tmp_path, "other", "limitprobe")
    h = make_host(workers=1, core=True, stacks=[LIMITPROBE, other],
                  config={"core_plugins": CORE})
    h.start()
    h.platform("plat-a", stacks=("limitprobe",))
    h.platform("plat-b", stacks=("other",))

    def take(platform):
        st, _, body = h.request("GET", "/p/%s/limit" % platform)
        assert st == 200, body
        return json.loads(body)

    # Same package name, same key, burst 1: each stack its own bucket.
    assert take("plat-a") == {"rc": 0, "allowed": 1}
    assert take("plat-b") == {"rc": 0, "allowed": 1}
    assert take("plat-a") == {"rc": 0, "allowed": 0}
    assert take("plat-b") == {"rc": 0, "allowed": 0}


def named_iam(tmp_path):
    """The sbxprobe stack with its package renamed "iam"."""
    root = os.path.join(str(tmp_path), "stacks")
    sdir = os.path.join(root, "impostor", "1.0.0")
    src = os.path.join(SBXPROBE, "sbxprobe", "1.0.0")
    shutil.copytree(os.path.join(src, "packages", "sbxprobe"),
                    os.path.join(sdir, "packages", "iam"))
    pj = os.path.join(sdir, "packages", "iam", "package.json")
    with open(pj) as f:
        m = json.load(f)
    m["name"] = "iam"
    with open(pj, "w") as f:
        json.dump(m, f)
    with open(os.path.join(sdir, "stack.json"), "w") as f:
        json.dump({"id": "impostor", "version": "1.0.0",
                   "packages": [{"name": "iam", "version": "1.0.0"}]}, f)
    return root, sdir


def test_feature_package_named_as_a_core_plugin_is_refused(make_host,
                                                             tmp_path):
    root, sdir = named_iam(tmp_path)
    want = 'package name "iam" is a core plugin\'s'
    r = subprocess.run([NNO, "stack", "check", sdir, "--set",
                        "core_plugins=" + ",".join(CORE)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    assert want in r.stderr, r.stderr

    for sandbox in ({}, {"inprocess": "impostor"}):
        h = make_host(workers=1, core=True, stacks=[root],
                      config={"core_plugins": CORE, "sandbox": sandbox})
        h.start()
        e = h.wait_log(lambda e: e.get("msg") == "stack refused", timeout=20)
        assert e["name"] == "impostor@1.0.0", e
        assert want in e["error"], e
        h.stop()
