"""The device flow's bounds and `nno login`/`nno logout`'s edges: codes
limited per client address (not only per platform), the token route naming
an unknown field, a login checking its credentials file before asking for a
code and revoking a key it cannot store, the key named by user and machine,
a URL's user name and password refused and never printed, a warning at
login for a platform that takes no deploys, one rule for a login key's
scopes, a suspended platform's key revoking itself, logout --forget."""
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import NNO


def post(h, path, body, source):
    """POST JSON to /api/v1`path` from the local address `source`."""
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10,
                                   source_address=(source, 0))
    try:
        c.request("POST", "/api/v1" + path, body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, \
            json.loads(raw) if raw else None
    finally:
        c.close()


@pytest.fixture
def h(make_host):
    host = make_host(core=True, workers=2, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    host.platform("dev1", stacks=(), **{"class": "user_project"})
    host.platform("plain", stacks=())
    return host


def cli_env(tmp_path):
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    env.pop("NNO_KEY", None)
    return env


def url(h):
    return "http://127.0.0.1:%d" % h.port


def start_login(h, env, pid="dev1"):
    p = subprocess.Popen([NNO, "login", url(h), "--platform", pid],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True)
    line = p.stdout.readline()
    assert line.startswith("Open "), line + p.stderr.read()
    return p, line.split()[-1]


def approve(h, uc, pid="dev1"):
    st, _, b = h.api("POST", "/device/approve", {"user_code": uc,
                                                 "platform": pid})
    assert st == 200, b


def keys_of(h, pid):
    st, _, b = h.api("GET", "/platforms/%s/keys" % pid)
    assert st == 200, b
    return b["items"]


def pending_codes(h):
    db = sqlite3.connect(os.path.join(h.data, "core.db"), timeout=10)
    try:
        return db.execute("SELECT count(*) FROM iam_device_codes"
                          " WHERE state = 'pending'").fetchone()[0]
    finally:
        db.close()


# ---- the server -------------------------------------------------------------


def test_codes_are_bounded_per_address_not_per_platform(h):
    # One address gets 10 codes (across platforms), then 429 with a
    # Retry-After; another address still gets codes for the same platform.
    for i in range(10):
        st, _, b = post(h, "/device/code",
                        {"platform": "dev1" if i % 2 else "plain"},
                        "127.0.0.21")
        assert st == 200, (i, b)
    st, hd, b = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.21")
    assert st == 429, b
    assert hd["content-type"] == "application/problem+json"
    assert b["request_id"] and "address" in b["detail"]
    assert int(hd["retry-after"]) >= 1
    # Asking about a platform that does not exist costs the same.
    st, _, b = post(h, "/device/code", {"platform": "nope"}, "127.0.0.21")
    assert st == 429, b
    st, _, b = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.22")
    assert st == 200, b


def test_both_bounds_are_configurable(make_host):
    h = make_host(core=True, workers=1, config={"plugin_config": {"iam": {
        "device_pending_max": 3, "device_codes_per_addr": 2}}}).start()
    h.platform("dev1", stacks=(), **{"class": "user_project"})
    for i in range(2):
        assert post(h, "/device/code", {"platform": "dev1"},
                    "127.0.0.31")[0] == 200
    st, _, b = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.31")
    assert st == 429 and "address" in b["detail"], b
    # The platform's backstop: 3 pending codes, whatever the address; at
    # it, the group holding the most (.31) gives up its oldest.
    assert post(h, "/device/code", {"platform": "dev1"}, "127.0.0.32")[0] \
        == 200
    st, _, b = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.33")
    assert st == 200, b


def test_token_names_the_unknown_field(h):
    st, hd, b = h.api("POST", "/device/code", {"platform": "dev1"}, key=False)
    assert st == 200
    st, hd, b = h.api("POST", "/device/token",
                      {"device_code": b["device_code"], "extra": 1},
                      key=False)
    assert st == 422 and '"extra"' in b["detail"], b
    assert hd["content-type"] == "application/problem+json"
    assert b["request_id"]


def scopes_after(h, approver_key):
    st, _, c = h.api("POST", "/device/code", {"platform": "dev1"}, key=False)
    assert st == 200
    st, _, b = h.api("POST", "/device/approve", {"user_code": c["user_code"]},
                     key=approver_key)
    assert st == 200, b
    time.sleep(1.1)
    st, _, t = h.api("POST", "/device/token",
                     {"device_code": c["device_code"]}, key=False)
    assert st == 200, t
    return t["scopes"]


def test_login_scopes_follow_one_rule(h):
    # The operator holds every login scope: the key gets them all, named as
    # the login set names them.
    everything = ["features:*", "logs:read", "stacks:deploy", "stacks:read",
                  "stacks:write"]
    assert sorted(scopes_after(h, None)) == everything
    # An admin holding stacks:write and stacks:read (write first) gets both,
    # as the operator's key does.
    admin = h.platform_key("dev1", scopes=["keys:write", "stacks:write",
                                           "stacks:read", "features:*"])
    assert sorted(scopes_after(h, admin["key"])) == [
        "features:*", "stacks:read", "stacks:write"]
    # stacks:write alone covers stacks:read: the key lists both.
    writer = h.platform_key("dev1", scopes=["keys:write", "stacks:write"])
    assert sorted(scopes_after(h, writer["key"])) == [
        "stacks:read", "stacks:write"]
    # A narrower feature scope stays narrow.
    narrow = h.platform_key("dev1", scopes=["keys:write",
                                            "features:shop:read"])
    assert scopes_after(h, narrow["key"]) == ["features:shop:read"]


def test_a_suspended_platforms_key_revokes_itself(h):
    k = h.platform_key("dev1", scopes=["features:*"])
    st, _, b = h.api("POST", "/platforms/dev1/suspend", {})
    assert st in (200, 204), b
    # Still refused everywhere else...
    st, _, b = h.api("GET", "/platforms/dev1/stacks", key=k["key"])
    assert st == 403, b
    # ...but giving itself up is allowed, and audited.
    st, _, b = h.api("DELETE", "/keys/self", key=k["key"])
    assert st == 204, b
    st, _, audit = h.api("GET", "/audit?action=key.revoke")
    assert any(r["action"] == "key.revoke" and k["id"] in json.dumps(r)
               for r in audit["items"]), audit
    st, _, b = h.api("POST", "/platforms/dev1/resume", {})
    assert st in (200, 204), b
    st, _, b = h.api("GET", "/platforms/dev1/stacks", key=k["key"])
    assert st == 401, b


# ---- the CLI ----------------------------------------------------------------


def test_login_refuses_credentials_in_the_url(h, tmp_path):
    env = cli_env(tmp_path)
    r = subprocess.run([NNO, "login", "http://alice:s3cretpw@127.0.0.1:%d"
                        % h.port, "--platform", "dev1"], capture_output=True,
                       text=True, env=env, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "s3cretpw" not in r.stdout + r.stderr
    assert "alice" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("nno: ") \
        and lines[1].startswith("hint: ") and "not used" in lines[1], lines
    assert r.stdout == ""


def test_login_checks_the_credentials_file_before_asking(h, tmp_path):
    env = cli_env(tmp_path)
    d = tmp_path / "cfg" / "nno"
    d.mkdir(parents=True)
    (tmp_path / "elsewhere.json").write_text("{}")
    os.chmod(tmp_path / "elsewhere.json", 0o600)
    os.symlink(tmp_path / "elsewhere.json", d / "credentials.json")
    r = subprocess.run([NNO, "login", url(h), "--platform", "dev1"],
                       capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "symbolic link" in r.stderr and "hint: " in r.stderr
    assert "Open " not in r.stdout
    assert pending_codes(h) == 0  # no code was asked for


def test_login_revokes_a_key_it_cannot_store(h, tmp_path):
    env = cli_env(tmp_path)
    p, uc = start_login(h, env)
    # Checked before the code, broken after it: the file becomes a link.
    d = tmp_path / "cfg" / "nno"
    d.mkdir(parents=True, exist_ok=True)
    (tmp_path / "elsewhere.json").write_text("{}")
    os.chmod(tmp_path / "elsewhere.json", 0o600)
    os.symlink(tmp_path / "elsewhere.json", d / "credentials.json")
    approve(h, uc)
    out, err = p.communicate(timeout=30)
    assert p.returncode != 0
    logins = [k for k in keys_of(h, "dev1") if k["name"].startswith("login")]
    assert len(logins) == 1 and logins[0]["revoked_at"], logins
    assert "cannot store the key" in err and "revoked" in err, err


def test_login_names_the_key_by_user_and_machine(h, tmp_path):
    env = cli_env(tmp_path)
    p, uc = start_login(h, env)
    approve(h, uc)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    # A user_project platform: no warning.
    assert "warning" not in err
    logins = [k for k in keys_of(h, "dev1") if k["name"].startswith("login")]
    assert len(logins) == 1
    name = logins[0]["name"]
    host = "".join(c if c.isalnum() or c in "._@+-" else "_"
                   for c in socket.gethostname()[:32])
    assert "@" + host in name, name
    assert name.endswith(time.strftime("%Y-%m-%d", time.gmtime())), name


def test_login_to_a_platform_that_takes_no_deploys_warns(h, tmp_path):
    env = cli_env(tmp_path)
    p, uc = start_login(h, env, pid="plain")
    approve(h, uc, pid="plain")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    warn = [ln for ln in err.splitlines() if "user_project" in ln]
    assert len(warn) == 1 and warn[0].startswith("nno: warning:"), err


def test_logout_forget_when_the_host_is_gone(h, tmp_path):
    env = cli_env(tmp_path)
    p, uc = start_login(h, env)
    approve(h, uc)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    path = tmp_path / "cfg" / "nno" / "credentials.json"
    creds = json.loads(path.read_text())
    # Move the login to a URL where nothing listens.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = "http://127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    creds = {dead: creds[url(h)]}
    path.write_text(json.dumps(creds))
    r = subprocess.run([NNO, "logout", dead], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 3, r.stderr
    assert "--forget" in r.stderr
    assert dead in json.loads(path.read_text())
    r = subprocess.run([NNO, "logout", dead, "--forget"], capture_output=True,
                       text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "NOT revoked" in r.stdout
    assert json.loads(path.read_text()) == {}
