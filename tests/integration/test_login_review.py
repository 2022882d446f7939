"""`nno login`'s answers to a hostile or careless world: a login that
replaces a stored key revokes that key, a host's strings never reach the
terminal raw (the user code's shape checked, error lines sanitised C0, DEL
and C1 alike), the approval command printed beside the page, logout taking
--url, the credentials folder made private before anything is stored."""
import http.server
import json
import os
import stat
import subprocess
import threading

import pytest

from conftest import NNO

HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\u009b31m"


@pytest.fixture
def h(make_host):
    host = make_host(core=True, workers=2, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    host.platform("dev1", stacks=(), **{"class": "user_project"})
    host.platform("dev2", stacks=(), **{"class": "user_project"})
    return host


def cli_env(tmp_path):
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    env.pop("NNO_KEY", None)
    return env


def url(h):
    return "http://127.0.0.1:%d" % h.port


def login(h, env, pid):
    """A whole login to `pid`, approved by the operator: (stdout, stderr)."""
    p = subprocess.Popen([NNO, "login", url(h), "--platform", pid],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True)
    line = p.stdout.readline()
    assert line.startswith("Open "), line + p.stderr.read()
    uc = line.split()[-1]
    # Read on here: communicate() reads the pipe, not this file's buffer.
    line += p.stdout.readline() + p.stdout.readline()
    st, _, b = h.api("POST", "/device/approve", {"user_code": uc,
                                                 "platform": pid})
    assert st == 200, b
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return line + out, err


def login_keys(h, pid):
    st, _, b = h.api("GET", "/platforms/%s/keys" % pid)
    assert st == 200, b
    return [k for k in b["items"] if k["name"].startswith("login")]


def creds(tmp_path):
    return json.loads((tmp_path / "cfg" / "nno" / "credentials.json")
                      .read_text())


# ---- a replaced login's key is revoked --------------------------------------


def test_login_again_revokes_the_key_it_replaces(h, tmp_path):
    env = cli_env(tmp_path)
    login(h, env, "dev1")
    first = creds(tmp_path)[url(h)]
    out, err = login(h, env, "dev1")
    assert "revoked" in out and first["key_id"] in out, out + err
    keys = {k["id"]: k for k in login_keys(h, "dev1")}
    assert len(keys) == 2
    assert keys[first["key_id"]]["revoked_at"], keys
    second = creds(tmp_path)[url(h)]
    assert not keys[second["key_id"]]["revoked_at"], keys
    st, _, _ = h.api("GET", "/platforms/dev1/stacks", key=first["key"])
    assert st == 401


def test_login_to_another_platform_revokes_the_other_key(h, tmp_path):
    env = cli_env(tmp_path)
    login(h, env, "dev1")
    first = creds(tmp_path)[url(h)]
    out, err = login(h, env, "dev2")
    assert "platform dev1" in out and "revoked" in out, out + err
    assert creds(tmp_path)[url(h)]["platform"] == "dev2"
    (k,) = login_keys(h, "dev1")
    assert k["id"] == first["key_id"] and k["revoked_at"], k


# ---- a hostile host's strings ------------------------------------------------


class Fake(http.server.BaseHTTPRequestHandler):
    """A device host answering `answer` (status, body) to every POST, and
    `by_path` (path -> (status, body)) before it; DELETEs are recorded."""
    answer = (200, {})
    by_path = {}
    deleted = []

    def do_DELETE(self):
        self.deleted.append(self.headers.get("Authorization"))
        self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        st, body = self.by_path.get(self.path, self.answer)
        raw = json.dumps(body).encode()
        self.send_response(st)
        self.send_header("Content-Type", "application/problem+json"
                         if st >= 400 else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *a):
        pass


@pytest.fixture
def fake():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def run_login(srv, tmp_path, answer, by_path=None):
    srv.RequestHandlerClass.answer = answer
    srv.RequestHandlerClass.by_path = by_path or {}
    return subprocess.run([NNO, "login", "http://127.0.0.1:%d" %
                           srv.server_address[1], "--platform", "dev1"],
                          capture_output=True, env=cli_env(tmp_path),
                          timeout=30)


def no_controls(raw):
    text = raw.decode("utf-8", "replace")
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or
           0x7f <= ord(c) <= 0x9f]
    assert not bad, repr(text)


def test_a_user_code_of_another_shape_is_refused(fake, tmp_path):
    r = run_login(fake, tmp_path, (200, {
        "device_code": "d" * 43, "user_code": "BCDF-" + HOSTILE,
        "verification_uri": "http://x.example/device", "interval": 1,
        "expires_in": 60}))
    assert r.returncode != 0
    assert b"\x1b" not in r.stdout + r.stderr
    no_controls(r.stdout + r.stderr)
    assert b"XXXX-XXXX" in r.stderr, r.stderr


def test_error_lines_replace_c0_del_and_c1(fake, tmp_path):
    r = run_login(fake, tmp_path, (400, {
        "type": "about:blank", "title": "Bad" + HOSTILE + "\x7f",
        "status": 400, "detail": "d" + HOSTILE,
        "request_id": "r" + HOSTILE}))
    assert r.returncode != 0
    no_controls(r.stdout + r.stderr)
    assert b"\xc2\x9b" not in r.stderr
    assert r.stderr.count(b"?") >= 9, r.stderr
    assert b"PWNED" in r.stderr  # shown, as harmless text


def test_a_replaced_key_that_cannot_be_revoked_is_named(fake, tmp_path):
    base = "http://127.0.0.1:%d" % fake.server_address[1]
    d = tmp_path / "cfg" / "nno"
    d.mkdir(parents=True)
    path = d / "credentials.json"
    path.write_text(json.dumps({base: {
        "platform": "other", "key": "nno_old_key", "key_id": "kold",
        "expires_at": "2030-01-01T00:00:00Z"}}))
    os.chmod(path, 0o600)
    fake.RequestHandlerClass.deleted = []
    r = run_login(fake, tmp_path, (500, {"title": "down", "status": 500}), {
        "/api/v1/device/code": (200, {
            "device_code": "d" * 43, "user_code": "BCDF-GHJK",
            "verification_uri": base + "/device", "interval": 1,
            "expires_in": 60}),
        "/api/v1/device/token": (200, {
            "key": "nno_new_key", "key_id": "knew",
            "expires_at": "2031-01-01T00:00:00Z", "class": "user_project"})})
    assert r.returncode == 0, r.stderr
    # The old key was tried, the host refused: named, with its end.
    assert fake.RequestHandlerClass.deleted == ["Bearer nno_old_key"]
    err = r.stderr.decode()
    assert "kold" in err and "stays live until 2030-01-01T00:00:00Z" in err, \
        err
    assert json.loads(path.read_text())[base]["key"] == "nno_new_key"


# ---- the approval command beside the page ----------------------------------


def test_login_prints_the_command_beside_the_page(h, tmp_path):
    env = cli_env(tmp_path)
    out, _ = login(h, env, "dev1")
    uc = out.splitlines()[0].split()[-1]
    assert ("or, as the operator or an admin of dev1: nno device approve %s "
            "--platform dev1 --url %s" % (uc, url(h))) in out, out


# ---- logout --url, a private folder -----------------------------------------


def test_logout_takes_url_as_an_option(h, tmp_path):
    env = cli_env(tmp_path)
    login(h, env, "dev1")
    path = tmp_path / "cfg" / "nno" / "credentials.json"
    c = creds(tmp_path)
    c["http://127.0.0.1:1"] = c[url(h)]  # a second host: --url is needed
    path.write_text(json.dumps(c))
    r = subprocess.run([NNO, "logout"], capture_output=True, text=True,
                       env=env, timeout=20)
    assert r.returncode == 2 and "--url URL" in r.stderr, r.stderr
    r = subprocess.run([NNO, "logout", "--url", url(h)], capture_output=True,
                       text=True, env=env, timeout=20)
    assert r.returncode == 0, r.stderr
    assert url(h) not in creds(tmp_path)


def test_login_makes_an_open_folder_private_before_storing(h, tmp_path):
    env = cli_env(tmp_path)
    d = tmp_path / "cfg" / "nno"
    d.mkdir(parents=True)
    os.chmod(d, 0o755)
    p = subprocess.Popen([NNO, "login", url(h), "--platform", "dev1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("Open "), line
        # At the start of the login, before any key exists.
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert not (d / "credentials.json").exists()
    finally:
        p.kill()
        p.wait()
