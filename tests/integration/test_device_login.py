"""The device-code flow (IAM's /api/v1/device/*) and `nno login`,
`nno device approve|deny`, `nno logout`: a login denied, expired and
approved; slow_down; single use; who may approve; the stored credentials."""
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import NNO


def code(h, pid):
    st, hd, c = h.api("POST", "/device/code", {"platform": pid}, key=False)
    assert st == 200, c
    assert hd["cache-control"] == "no-store"
    assert len(c["device_code"]) == 43 and c["interval"] >= 1
    uc = c["user_code"]
    assert len(uc) == 9 and uc[4] == "-"
    assert not set(uc.replace("-", "")) & set("AEIOUL01")
    return c


def token(h, c):
    return h.api("POST", "/device/token", {"device_code": c["device_code"]},
                 key=False)


def error_of(resp):
    st, hd, b = resp
    assert st == 400, b
    assert hd["content-type"] == "application/problem+json"
    assert b["request_id"]
    return b["error"]


@pytest.fixture
def h(make_host):
    host = make_host(core=True, workers=2, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    host.platform("dev1", stacks=(), **{"class": "user_project"})
    host.platform("other", stacks=())
    return host


def test_approved_once_with_the_intersection_of_scopes(h):
    admin = h.platform_key("dev1", scopes=["keys:write", "features:*",
                                           "stacks:read"])
    c = code(h, "dev1")
    assert error_of(token(h, c)) == "authorization_pending"
    st, _, b = h.api("POST", "/device/approve", {"user_code": c["user_code"]},
                     key=admin["key"])
    assert st == 200 and b["state"] == "approved", b
    time.sleep(1.1)
    st, _, t = token(h, c)
    assert st == 200, t
    assert t["platform"] == "dev1" and t["key"].startswith("nnok_")
    # The approver's scopes within what a login key holds.
    assert sorted(t["scopes"]) == ["features:*", "stacks:read"]
    st, _, keys = h.api("GET", "/platforms/dev1/keys")
    k = [x for x in keys["items"] if x["id"] == t["key_id"]][0]
    assert k["name"].startswith("login ") and k["expires_at"]
    # Single use: the second call gets nothing.
    time.sleep(1.1)
    assert error_of(token(h, c)) == "expired_token"
    # The key works on its own platform, and revokes itself.
    st, _, _ = h.api("GET", "/platforms/dev1/stacks", key=t["key"])
    assert st == 200
    st, _, _ = h.api("DELETE", "/keys/self", key=t["key"])
    assert st == 204
    st, _, _ = h.api("GET", "/platforms/dev1/stacks", key=t["key"])
    assert st == 401
    st, _, audit = h.api("GET", "/audit?action=device.approve")
    rows = [r for r in audit["items"] if r["action"] == "device.approve"]
    assert rows and c["user_code"] not in json.dumps(rows)
    assert c["user_code"][:4] in json.dumps(rows)


def test_slow_down_when_polled_faster_than_the_interval(h):
    c = code(h, "dev1")
    assert error_of(token(h, c)) == "authorization_pending"
    assert error_of(token(h, c)) == "slow_down"


def test_denied(h):
    c = code(h, "dev1")
    st, _, b = h.api("POST", "/device/deny", {"user_code": c["user_code"]})
    assert st == 200 and b["state"] == "denied"
    assert error_of(token(h, c)) == "access_denied"
    # Decided: it cannot be approved afterwards.
    st, _, _ = h.api("POST", "/device/approve", {"user_code": c["user_code"]})
    assert st == 404


def test_who_may_approve(h):
    c = code(h, "dev1")
    other = h.platform_key("other", scopes=["keys:write"])
    weak = h.platform_key("dev1", scopes=["features:*"])
    h.api("POST", "/platforms/dev1/tenants", {"id": "t1", "name": "t1"})
    bound = h.platform_key("dev1", scopes=["keys:write"], tenant="t1")
    for key, status in ((other["key"], 404), (weak["key"], 403),
                        (bound["key"], 403), (False, 401)):
        st, _, b = h.api("POST", "/device/approve",
                         {"user_code": c["user_code"]}, key=key)
        assert st == status, (key, b)
    assert error_of(token(h, c)) == "authorization_pending"
    # A suspended platform's admin key is refused too.
    admin = h.platform_key("dev1", scopes=["keys:write", "features:*"])
    st, _, b = h.api("POST", "/platforms/dev1/suspend", {})
    if st == 404:
        st, _, b = h.api("PATCH", "/platforms/dev1", {"status": "suspended"})
    assert st in (200, 204), b
    st, _, b = h.api("POST", "/device/approve", {"user_code": c["user_code"]},
                     key=admin["key"])
    assert st == 403, b


def test_bad_input_changes_nothing(h):
    for body in ({}, {"platform": "nope"}, {"platform": "dev1", "x": 1}):
        st, hd, b = h.api("POST", "/device/code", body, key=False)
        assert st in (404, 422) and hd["content-type"] == \
            "application/problem+json", b
    st, _, b = h.api("POST", "/device/token", {"device_code": "x" * 43},
                     key=False)
    assert st == 400 and b["error"] == "expired_token"
    st, _, b = h.api("POST", "/device/approve", {"user_code": "nonsense"})
    assert st == 422


def test_pending_codes_are_bounded(make_host):
    h = make_host(core=True, workers=1, config={
        "plugin_config": {"iam": {"device_pending_max": 2}}}).start()
    h.platform("dev1", stacks=(), **{"class": "user_project"})
    first = [code(h, "dev1"), code(h, "dev1")]
    # At the bound, the client group holding the most gives up its oldest:
    # still two codes, one of the first two gone.
    third = code(h, "dev1")
    gone = [error_of(token(h, c)) for c in first]
    assert sorted(gone) == ["authorization_pending", "expired_token"], gone
    # Nothing pending to give up (all approved, not fetched yet): refused.
    for c in [c for c, e in zip(first, gone) if e != "expired_token"] + \
            [third]:
        st, _, b = h.api("POST", "/device/approve",
                         {"user_code": c["user_code"]})
        assert st == 200, b
    st, _, b = h.api("POST", "/device/code", {"platform": "dev1"}, key=False)
    assert st == 429 and "pending device codes" in b["detail"], b


def test_expired(make_host):
    h = make_host(core=True, workers=1, config={
        "plugin_config": {"iam": {"device_ttl_s": 1}}}).start()
    h.platform("dev1", stacks=(), **{"class": "user_project"})
    c = code(h, "dev1")
    time.sleep(1.5)
    assert error_of(token(h, c)) == "expired_token"
    st, _, _ = h.api("POST", "/device/approve", {"user_code": c["user_code"]})
    assert st == 404


# ---- the CLI ---------------------------------------------------------------


def cli_env(tmp_path):
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    env.pop("NNO_KEY", None)
    return env


def start_login(h, env, pid="dev1"):
    p = subprocess.Popen([NNO, "login", "http://127.0.0.1:%d" % h.port,
                          "--platform", pid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline()
    assert line.startswith("Open "), line + p.stderr.read()
    return p, line.split()[-1]


def test_cli_login_approved_stores_a_private_file(h, tmp_path):
    env = cli_env(tmp_path)
    p, uc = start_login(h, env)
    r = subprocess.run([NNO, "device", "approve", uc, "--platform", "dev1",
                        "--url", "http://127.0.0.1:%d" % h.port,
                        "--data", h.data], capture_output=True, text=True,
                       env=env, timeout=20)
    assert r.returncode == 0, r.stderr
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    path = tmp_path / "cfg" / "nno" / "credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    creds = json.loads(path.read_text())
    entry = creds["http://127.0.0.1:%d" % h.port]
    assert entry["platform"] == "dev1"
    st, _, _ = h.api("GET", "/platforms/dev1/stacks", key=entry["key"])
    assert st == 200
    # A file others can read is refused, not used.
    os.chmod(path, 0o644)
    r = subprocess.run([NNO, "logout"], capture_output=True, text=True,
                       env=env, timeout=20)
    assert r.returncode == 2 and "private" in r.stderr
    os.chmod(path, 0o600)
    r = subprocess.run([NNO, "logout"], capture_output=True, text=True,
                       env=env, timeout=20)
    assert r.returncode == 0, r.stderr
    assert json.loads(path.read_text()) == {}
    st, _, _ = h.api("GET", "/platforms/dev1/stacks", key=entry["key"])
    assert st == 401


def test_cli_login_denied(h, tmp_path):
    env = cli_env(tmp_path)
    p, uc = start_login(h, env)
    r = subprocess.run([NNO, "device", "deny", uc, "--url",
                        "http://127.0.0.1:%d" % h.port, "--data", h.data],
                       capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 0, r.stderr
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "denied" in err
    assert not (tmp_path / "cfg" / "nno" / "credentials.json").exists()


def test_cli_login_expired(make_host, tmp_path):
    h = make_host(core=True, workers=1, config={
        "plugin_config": {"iam": {"device_ttl_s": 2,
                                  "device_interval_s": 1}}}).start()
    h.platform("dev1", stacks=(), **{"class": "user_project"})
    env = cli_env(tmp_path)
    p, uc = start_login(h, env)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "expired" in err, err
    assert not (tmp_path / "cfg" / "nno" / "credentials.json").exists()
