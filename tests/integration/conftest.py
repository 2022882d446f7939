"""Harness for black-box tests: a real `nno serve` on a free loopback port.

Tests talk to the host over sockets only. `Host.request` uses http.client;
`Host.raw` sends exact bytes (for framing and limit tests) and returns what
the server answered before closing or going quiet.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

import pytest

BUILD = os.environ.get("NNO_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
BUILD = os.path.abspath(BUILD)
SOURCE = os.path.abspath(os.environ.get("NNO_SOURCE") or os.path.join(
    os.path.dirname(__file__), "..", ".."))
NNO = os.path.join(BUILD, "bin", "nno")
FIXTURE_STACKS = os.path.join(BUILD, "tests", "stacks")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Host:
    def __init__(self, tmp_path, workers=2, config=None, args=(), env=None,
                 stacks=None, core=False, binary=None):
        self.binary = binary or NNO  # e.g. an installed copy
        self.dir = tmp_path
        self.data = os.path.join(str(tmp_path), "var")
        self.port = free_port()
        self.workers = workers
        self.config = dict(config or {})
        self.args = list(args)
        self.env = dict(env or {})
        self.stacks = stacks  # extra stack dirs (list) or None
        # core=False: no core plugins (kernel tests: stacks served at the
        # root, and core_plugins empty: none required); core=True: the
        # built core plugins (registry, iam) load.
        self.core = core
        self.proc = None
        self.log_path = os.path.join(str(tmp_path), "host.log")
        self.config_path = os.path.join(str(tmp_path), "nno.json")

    # -- lifecycle --------------------------------------------------------
    def command(self):
        cfg = {"log": {"access": True}}
        if not self.core:
            empty = os.path.join(str(self.dir), "no-core-plugins")
            os.makedirs(empty, exist_ok=True)
            cfg["plugin_dir"] = empty
            cfg["core_plugins"] = []
        cfg.update(self.config)
        if self.stacks is not None:
            cfg["stacks_dirs"] = list(self.stacks)
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        return [self.binary, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--data", self.data, "--workers", str(self.workers),
                "--config", self.config_path] + self.args

    def start(self, wait=True):
        env = dict(os.environ)
        env.update(self.env)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.logf,
                                     stderr=self.logf, env=env,
                                     start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("host exited with %s:\n%s" %
                                   (self.proc.returncode, self.log_text()))
            try:
                st, _, _ = self.request("GET", "/readyz", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("host not ready:\n" + self.log_text())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None

    # -- logs -------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def wait_log(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.log_lines():
                if pred(e):
                    return e
            time.sleep(0.05)
        raise AssertionError("no matching log line:\n" + self.log_text())

    def access_lines(self, pred, n, timeout=5):
        """The access log lines matching `pred`, waited for until there are
        at least `n` or `timeout` passes: workers write their access lines
        in batches, up to 100 ms after the answer."""
        deadline = time.time() + timeout
        while True:
            lines = [e for e in self.log_lines()
                     if e.get("msg") == "access" and pred(e)]
            if len(lines) >= n or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def access_pids(self, path, status, timeout=3):
        """The worker pids whose access log lines show `path` answered
        `status`, waited for until every worker is among them or `timeout`
        passes; returns (those pids, every worker's pid)."""
        deadline = time.time() + timeout
        want = set(self.worker_pids())
        while True:
            pids = {e.get("pid") for e in self.log_lines()
                    if e.get("msg") == "access" and e.get("path") == path
                    and e.get("status") == status}
            if pids >= want or time.time() > deadline:
                return pids, want
            time.sleep(0.05)

    def worker_pids(self):
        st, _, body = self.request("GET", "/healthz")
        return json.loads(body).get("workers", [])

    # -- HTTP ---------------------------------------------------------------
    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    def request(self, method, path, headers=None, body=None, host=None,
                timeout=10, key=None):
        """One request; `key` (a string) is sent as a bearer credential."""
        c = self.conn(timeout)
        try:
            h = dict(headers or {})
            if host is not None:
                h["Host"] = host
            if key is not None:
                h["Authorization"] = "Bearer " + key
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, **kw):
        st, h, body = self.request(method, path, **kw)
        return st, h, (json.loads(body) if body else None)

    # -- the operator API (registry core plugin) ---------------------------
    def op_key(self):
        """The operator key the registry wrote to DATA/operator.key."""
        with open(os.path.join(self.data, "operator.key")) as f:
            return f.read().strip()

    def api(self, method, path, body=None, key=None, headers=None, host=None,
            timeout=10):
        """One operator API call; returns (status, headers, parsed JSON or
        None for an empty body). `path` is relative to /api/v1 unless it
        starts with /api/. `body`: bytes or str are sent as they are, any
        other value but None as JSON. `key`: None sends the operator key,
        False no Authorization header, a string `Bearer <key>`."""
        if not path.startswith("/api/"):
            path = "/api/v1" + path
        h = {}
        if key is None:
            key = self.op_key()
        if key is not False:
            h["Authorization"] = "Bearer " + key
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            elif not isinstance(body, bytes):
                body = json.dumps(body, ensure_ascii=False).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        st, rh, data = self.request(method, path, headers=h, body=body,
                                    host=host, timeout=timeout)
        if not data:
            return st, rh, None
        try:
            return st, rh, json.loads(data)
        except ValueError:
            raise AssertionError("%s %s answered %d with a body that is not "
                                 "JSON: %r" % (method, path, st, data[:300]))

    def platform(self, pid, stacks=("default",), **fields):
        """Create platform `pid` (name = id unless given, other fields as
        given, e.g. plan) with `stacks` activated in the same call, so its
        resources are provisioned before it answers; returns its JSON."""
        body = {"id": pid, "name": pid}
        body.update(fields)
        if stacks:
            body["stacks"] = list(stacks)
        st, _, p = self.api("POST", "/platforms", body)
        assert st == 201, p
        return p

    def platform_key(self, pid, scopes=("features:*",), tenant=None,
                     name="test", expires_in=None):
        """A new API key of platform `pid` (made with the operator key);
        returns the created key's JSON, the clear key in ["key"]."""
        body = {"name": name, "scopes": list(scopes)}
        if tenant is not None:
            body["tenant"] = tenant
        if expires_in is not None:
            body["expires_in"] = expires_in
        st, _, k = self.api("POST", "/platforms/%s/keys" % pid, body)
        assert st == 201, k
        return k

    def raw(self, data, timeout=2.0, shutdown=False):
        """Send exact bytes on a new connection; return everything read
        until the server closes or `timeout` passes with nothing new."""
        s = socket.create_connection(("127.0.0.1", self.port))
        s.settimeout(timeout)
        try:
            if data:
                s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks)
        finally:
            s.close()


def parse_responses(data):
    """Split raw bytes into [(status, headers, body)] using Content-Length
    (the host always sends it). HEAD-less: for HEAD use status lines only."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = int(headers.get("content-length", "0"))
        if status in (100, 204, 304) or 100 <= status < 200:
            n = 0
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


@pytest.fixture
def make_host(tmp_path):
    hosts = []

    def make(**kw):
        sub = tmp_path / ("h%d" % len(hosts))
        sub.mkdir()
        h = Host(sub, **kw)
        hosts.append(h)
        return h
    yield make
    for h in hosts:
        h.stop()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A shared host (2 workers, default stack) for tests that do not
    change its state."""
    h = Host(tmp_path_factory.mktemp("host"), workers=2)
    h.start()
    yield h
    h.stop()
