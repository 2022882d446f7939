"""`nno project dev` and `nno project test` on a project folder, black-box.

dev: the route answers; a saved edit is live within seconds; a broken
build shows the compiler's words while the old version keeps answering; the
fix goes live; a client looping through a reload sees no failed request;
SIGINT leaves no process behind. test: a passing and a failing test script.
"""
import json
import os
import signal
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import NNO

def make_project(tmp_path, name="greet"):
    """A project from the minimal template (GET /hello answers
    {"message": "hello from NAME"}); returns its folder, its source file
    and VALUE -> the source answering {"message": VALUE}."""
    r = subprocess.run([NNO, "project", "init", name], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    root = tmp_path / name
    src = root / "src" / (name + ".c")
    code = src.read_text()
    assert '"hello from %s"' % name in code
    return root, src, lambda value: code.replace(
        '"hello from %s"' % name, '"%s"' % value)


class Dev:
    """A running `nno project dev`; its output collected by a thread."""

    def __init__(self, root, args=()):
        self.root = root
        self.proc = subprocess.Popen([NNO, "project", "dev"] + list(args),
                                     cwd=str(root), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = self.key = None
        deadline = time.time() + 120
        while time.time() < deadline and self.key is None:
            for line in self.output().splitlines():
                if line.strip().startswith("routes"):
                    self.port = int(line.split(":")[2].split("/")[0])
                if line.strip().startswith("key"):
                    self.key = line.split()[1]
            if self.proc.poll() is not None and self.key is None:
                break
            time.sleep(0.05)
        assert self.key, "dev did not start:\n" + self.output()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line)

    def output(self):
        with self.lock:
            return "".join(self.lines)

    def get(self, path):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/p/greet%s" % (self.port, path),
            headers={"Authorization": "Bearer " + self.key})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def wait_for(self, pred, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("%s never happened; dev said:\n%s"
                             % (what, self.output()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.reader.join(5)


def serving(root):
    """The pids of processes serving the project's .nno/dev."""
    data = str(root / ".nno" / "dev")
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if data.encode() in args:
            pids.append(int(pid))
    return pids


def write(src, text):
    """Saved as editors do: a new file renamed over the old one."""
    tmp = str(src) + ".tmp~"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, str(src))


def route(dev):
    st, body = dev.get("/hello")
    return body.get("message") if st == 200 and isinstance(body, dict) \
        else None


@pytest.fixture
def project(tmp_path):
    root, src, render = make_project(tmp_path)
    write(src, render("one"))
    return root, src, render


def test_dev_edit_break_fix_and_stop(project):
    root, src, render = project
    dev = Dev(root)
    try:
        assert dev.wait_for(lambda: route(dev) == "one", "first answer")
        out = dev.output()
        assert "http://console.greet.nno.localhost:%d/" % dev.port in out
        key_file = root / ".nno" / "dev" / "key"
        assert oct(os.stat(str(key_file)).st_mode & 0o777) == "0o600"
        assert key_file.read_text().strip() == dev.key

        # A saved edit goes live.
        write(src, render("two"))
        dev.wait_for(lambda: route(dev) == "two", "the edit live")
        dev.wait_for(lambda: "reloaded greet" in dev.output(), "reload line")

        # A broken build: the compiler's words shown, the old one serves.
        before = dev.output()
        write(src, render("three") + "\nint broken(\n")
        dev.wait_for(lambda: "reload failed" in dev.output()[len(before):],
                     "the failure")
        shown = dev.output()[len(before):]
        assert "error" in shown and "src/greet.c" in shown, shown
        assert route(dev) == "two"

        # Fixed: live again. A client loops through the reload meanwhile.
        failures, seen, stop = [], [], threading.Event()

        def client():
            while not stop.is_set():
                try:
                    st, body = dev.get("/hello")
                except Exception as e:  # noqa: BLE001 - any failure counts
                    failures.append(repr(e))
                    continue
                if st != 200:
                    failures.append(st)
                else:
                    seen.append(body["message"])
        t = threading.Thread(target=client)
        t.start()
        try:
            write(src, render("four"))
            dev.wait_for(lambda: "four" in seen, "the fix live")
            time.sleep(0.2)
        finally:
            stop.set()
            t.join(30)
        assert failures == [], failures
        assert seen[0] == "two" and seen[-1] == "four"

        # The project's access lines are streamed, readable.
        dev.wait_for(lambda: "GET /p/greet/hello 200" in dev.output(),
                     "an access line")
        assert serving(root)
    finally:
        dev.stop()
    assert dev.proc.returncode == 0, dev.output()
    assert serving(root) == [], "a process of the local host is left"

    # The next dev reuses the folder and the key, with the next version.
    dev2 = Dev(root)
    try:
        assert dev2.key == dev.key
        assert dev2.wait_for(lambda: route(dev2) == "four", "answer again")
    finally:
        dev2.stop()
    assert serving(root) == []


def test_dev_save_to_live_measure(project, capsys):
    """Reports (asserts nothing on time) save -> changed response."""
    root, src, render = project
    dev = Dev(root)
    times = []
    try:
        dev.wait_for(lambda: route(dev) == "one", "first answer")
        for i in range(5):
            value = "m%d" % i
            t0 = time.monotonic()
            write(src, render(value))
            dev.wait_for(lambda: route(dev) == value, "edit %d live" % i)
            times.append(time.monotonic() - t0)
    finally:
        dev.stop()
    assert len(times) == 5
    with capsys.disabled():
        print("\nsave -> changed response: median %.3f s of %s"
              % (statistics.median(times),
                 ", ".join("%.3f" % t for t in times)))


def temp_folders(tmp):
    return {p for p in os.listdir(str(tmp)) if p.startswith("nno-test-")}


def test_project_test_pass_and_fail(tmp_path):
    root, src, render = make_project(tmp_path)
    tests = root / "tests"
    ok = tests / "a_route.sh"
    ok.write_text(
        "#!/bin/sh\nset -e\n"
        "test -n \"$NNO_URL\" && test \"$NNO_PLATFORM\" = greet\n"
        "test \"$NNO_BASE\" = \"$NNO_URL/p/greet\"\n"
        "curl -sf -H \"Authorization: Bearer $NNO_KEY\" \"$NNO_BASE/hello\""
        " | grep -q 'hello from greet'\n")
    ok.chmod(0o755)
    (tests / "notes.txt").write_text("not executable: not run\n")
    # Its own TMPDIR, which nno project test honours: another run on the
    # machine at the same time leaves nothing there.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    r = subprocess.run([NNO, "project", "test"], cwd=str(root), env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  tests/a_route.sh" in r.stdout
    assert "PASS  tests/smoke.sh" in r.stdout  # the template's own
    assert "notes.txt" not in r.stdout
    assert not (root / ".nno" / "dev").exists()  # a temporary folder only

    bad = tests / "b_wrong.sh"
    bad.write_text("#!/bin/sh\necho expected two, got one\nexit 3\n")
    bad.chmod(0o755)
    r = subprocess.run([NNO, "project", "test"], cwd=str(root), env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "PASS  tests/a_route.sh" in r.stdout
    assert "FAIL  tests/b_wrong.sh" in r.stdout
    assert "expected two, got one" in r.stdout
    assert "2 passed, 1 failed" in r.stdout
    assert not temp_folders(tmp), "the temporary data folder is left"


def test_dev_killed_outright_takes_its_host_along(project):
    root, src, render = project
    dev = Dev(root, ["--no-watch"])
    try:
        dev.wait_for(lambda: route(dev) == "one", "first answer")
        assert serving(root)
        dev.proc.kill()  # SIGKILL: no chance to stop the host itself
        dev.proc.wait(10)
        dev.wait_for(lambda: serving(root) == [], "the host gone")
    finally:
        dev.stop()
        for pid in serving(root):
            os.kill(pid, signal.SIGKILL)
