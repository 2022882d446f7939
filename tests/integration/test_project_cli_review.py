"""The developer's project commands say what the host would say, first:
`nno project init` refuses a name the host refuses later (the platform
id rule, the core API's host labels, core plugin names, the stacks the
host ships) and its --list gives whole sentences; a file in ui/ the stack
cannot hold and a taken `dev --port` get their own hints, in one `nno:`
line; `nno project logs` shows the platform's access lines beside the
package's, says when there is nothing, and prints nothing of a host's
answer raw; deploy's refusals name the remedy."""
import http.server
import json
import os
import socket
import subprocess
import threading

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


def init(tmp_path, env, name):
    r = run(tmp_path, env, "project", "init", name)
    assert r.returncode == 0, r.stderr
    return tmp_path / name


def store_login(tmp_path, url, pid, key):
    """Credentials as nno login writes them (the flow has its own tests)."""
    d = tmp_path / "cfg" / "nno"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(str(d), 0o700)
    p = d / "credentials.json"
    p.write_text(json.dumps({url: {
        "platform": pid, "key": key["key"], "key_id": key["id"],
        "expires_at": key["expires_at"]}}))
    os.chmod(str(p), 0o600)


def one_error(stderr):
    """One `nno:` line and one `hint:` line."""
    lines = stderr.splitlines()
    assert len([l for l in lines if l.startswith("nno: ")]) == 1, stderr
    assert len([l for l in lines if l.startswith("hint: ")]) == 1, stderr


def test_init_refuses_what_the_host_would_refuse_later(tmp_path):
    env = env_for(tmp_path)
    for name, why in (("a-", "invalid name"), ("ab", "invalid name"),
                      ("x" * 33, "invalid name"), ("1abc", "invalid name"),
                      ("api", "core API's host name"),
                      ("admin", "core API's host name"),
                      ("iam", "core plugin"), ("registry", "core plugin"),
                      ("billing", "core plugin"),
                      ("provisioning", "core plugin"),
                      ("default", "stack this host ships")):
        r = run(tmp_path, env, "project", "init", name)
        assert r.returncode == 2 and why in r.stderr, (name, r.stderr)
        one_error(r.stderr)
        assert os.listdir(str(tmp_path)) == [], name
    # The shortest and the longest names the registry takes are taken.
    for name in ("abc", "a" * 31 + "1"):
        init(tmp_path, env, name)


def test_init_list_gives_whole_sentences(tmp_path):
    r = run(tmp_path, env_for(tmp_path), "project", "init", "--list")
    assert r.returncode == 0, r.stderr
    crud = [l for l in r.stdout.splitlines() if l.startswith("crud ")]
    assert len(crud) == 1, r.stdout
    assert crud[0].endswith("every query filtered by it."), crud


def test_a_file_the_stack_cannot_hold_gets_a_files_hint(tmp_path):
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "uix")
    os.symlink("/etc/hostname", str(proj / "ui" / "link.txt"))
    r = run(proj, env, "project", "build")
    assert r.returncode == 2, r.stdout
    assert "ui/link.txt: a link" in r.stderr, r.stderr
    assert "pkg-config" not in r.stderr and "regular files" in r.stderr, \
        r.stderr
    one_error(r.stderr)
    os.unlink(str(proj / "ui" / "link.txt"))
    # Larger than a stack's file may be (sparse: no disk used).
    with open(str(proj / "ui" / "big.bin"), "wb") as f:
        f.truncate(257 * 1024 * 1024)
    r = run(proj, env, "project", "build")
    assert r.returncode == 2, r.stdout
    assert "ui/big.bin: too large" in r.stderr, r.stderr
    assert "pkg-config" not in r.stderr and "regular files" in r.stderr, \
        r.stderr
    one_error(r.stderr)
    assert not (proj / "dist").exists()


def test_dev_on_a_taken_port_says_so_in_devs_words(tmp_path):
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "devport")
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run(proj, env, "project", "dev", "--port", str(port), timeout=60)
    finally:
        s.close()
    assert r.returncode == 2, r.stdout
    assert "port %d" % port in r.stderr and "--port" in r.stderr, r.stderr
    assert "--listen" not in r.stderr, r.stderr
    one_error(r.stderr)


def test_logs_shows_the_platforms_own_lines_and_says_when_none(
        make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    h.platform("lgx", stacks=(), **{"class": "user_project"})
    env = env_for(tmp_path)
    proj = init(tmp_path, env, "lgx")
    url = "http://127.0.0.1:%d" % h.port
    store_login(tmp_path, url, "lgx",
                h.platform_key("lgx", scopes=["logs:read"]))
    r = run(proj, env, "project", "logs", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "", r.stdout
    assert "no log lines yet for project lgx" in r.stderr, r.stderr
    # A request to the platform: its access line, which names no package.
    h.request("GET", "/p/lgx/nothing-here")
    r = run(proj, env, "project", "logs", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "GET /p/lgx/nothing-here -> 404" in r.stdout, (r.stdout, r.stderr)
    assert "no log lines" not in r.stderr, r.stderr
    # --json: each line the API's object, as before.
    r = run(proj, env, "project", "logs", "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert any(o.get("msg") == "access" and
               o.get("path") == "/p/lgx/nothing-here" for o in objs), objs
    # --package still asks for that package's lines only.
    r = run(proj, env, "project", "logs", "--package", "lgx", timeout=60)
    assert r.returncode == 0 and r.stdout == "", r.stdout
    assert "no log lines yet for package lgx" in r.stderr, r.stderr


class HostileLogs(http.server.BaseHTTPRequestHandler):
    """A host whose log lines carry terminal controls in every field."""
    LINE = {"ts": "2026-01-01T00:00:00\x1b[2J", "level": "in\x1bfo",
            "rid": "\x1b]0;pwned\x07", "msg": "access",
            "method": "G\x1b[31mET", "path": "/x\u009b31m\x7f",
            "status": 200, "dur_us": 5}

    def do_GET(self):
        lines = [] if "since=2" in self.path else [
            self.LINE, dict(self.LINE, msg="m\x1b]0;t\x07")]
        body = json.dumps({"lines": lines, "next": 2}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_logs_prints_no_field_of_the_hosts_answer_raw(tmp_path):
    srv = http.server.HTTPServer(("127.0.0.1", 0), HostileLogs)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = subprocess.run(
            [NNO, "project", "logs", "--url",
             "http://127.0.0.1:%d" % srv.server_port, "--key", "k-123",
             "--platform", "hst"], cwd=str(tmp_path), env=env_for(tmp_path),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("utf-8", "replace")
    assert len(out.splitlines()) == 2, out
    for bad in ("\x1b", "\x07", "\x7f", "\u009b"):
        assert bad not in out, repr(out)
    assert "pwned" in out and "/x?31m?" in out, repr(out)


def test_deploy_refusals_name_the_remedy(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    h.platform("dpr", stacks=(), **{"class": "user_project"})
    h.platform("pcr", stacks=())
    env = env_for(tmp_path)
    url = "http://127.0.0.1:%d" % h.port
    scopes = ["stacks:deploy", "stacks:write", "features:*"]
    # Logged in to dpr, the project is named otherwise.
    proj = init(tmp_path, env, "elsewhere")
    store_login(tmp_path, url, "dpr", h.platform_key("dpr", scopes=scopes))
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 1 and "403" in r.stderr, r.stderr
    assert "scope the detail names" not in r.stderr, r.stderr
    assert "nno platform create elsewhere" in r.stderr, r.stderr
    assert "--class user_project" in r.stderr, r.stderr
    assert "--platform elsewhere" in r.stderr, r.stderr
    one_error(r.stderr)
    # A `platform`-class platform of the project's name.
    proj = init(tmp_path, env, "pcr")
    store_login(tmp_path, url, "pcr", h.platform_key("pcr", scopes=scopes))
    r = run(proj, env, "project", "deploy")
    assert r.returncode == 1 and "403" in r.stderr, r.stderr
    assert "scope the detail names" not in r.stderr, r.stderr
    assert "user_project platform named pcr" in r.stderr, r.stderr
    one_error(r.stderr)
