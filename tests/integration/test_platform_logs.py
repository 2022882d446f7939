"""A platform's logs (README "Logs"): the lines its packages log in its
requests, and the access lines of its requests, read back through
GET /api/v1/platforms/{platform}/logs from the host's shared log ring,
and tailed by `nno project logs`.

- a package's line logged in a request is there with its request id and
  package, and so is the request's access line; another platform's never;
- scope logs:read: the operator, or a key of that platform granted it; a
  key of another platform, a key without the scope and a tenant-bound key
  are refused (403, a problem with request_id) and read nothing;
- since/next page through the lines; limit bounds a page; bad numbers 422;
- wait=S answers as soon as a line comes, long before S;
- the CLI prints `HH:MM:SS LEVEL [request_id] message`."""
import json
import os
import signal
import subprocess
import threading
import time

from conftest import FIXTURE_STACKS, NNO
from test_contain import sanitized

PROBE = os.path.join(FIXTURE_STACKS, "limitprobe")
CORE = ["iam", "registry", "provisioning"]


def start(make_host):
    h = make_host(workers=2, core=True, stacks=[PROBE],
                  config={"core_plugins": CORE})
    h.start()
    h.platform("plat-a", stacks=("limitprobe",))
    h.platform("plat-b", stacks=("limitprobe",))
    return h


def say_hello(h, platform, key, rid):
    st, _, body = h.request("GET", "/p/%s/say" % platform, headers={
        "Authorization": "Bearer " + key, "X-Request-Id": rid})
    assert st == 200, body


def logs(h, platform, key=None, query=""):
    st, rh, body = h.api("GET", "/platforms/%s/logs%s" % (platform, query),
                         key=key)
    return st, rh, body


def wait_lines(h, platform, pred, key=None, timeout=5):
    """The platform's lines once one of them satisfies pred."""
    end = time.time() + timeout
    while True:
        st, _, body = logs(h, platform, key=key, query="?limit=1000")
        assert st == 200, body
        if any(pred(x) for x in body["lines"]) or time.time() > end:
            return body
        time.sleep(0.05)


def test_platform_logs(make_host):
    h = start(make_host)
    ka = h.platform_key("plat-a", scopes=("features:*", "logs:read"))["key"]
    kb = h.platform_key("plat-b", scopes=("features:*", "logs:read"))["key"]
    say_hello(h, "plat-a", ka, "req-a-1")
    say_hello(h, "plat-b", kb, "req-b-1")

    body = wait_lines(h, "plat-a", lambda x: x.get("rid") == "req-a-1" and
                      x.get("msg") == "limitprobe says hello")
    lines = body["lines"]
    hello = [x for x in lines if x.get("msg") == "limitprobe says hello"]
    assert len(hello) == 1, lines
    assert hello[0]["rid"] == "req-a-1"
    assert hello[0]["package"] == "limitprobe"
    assert hello[0]["level"] == "warn"
    assert hello[0]["platform"] == "plat-a"
    # The request's access line, marked as such.
    access = wait_lines(h, "plat-a", lambda x: x.get("msg") == "access" and
                        x.get("rid") == "req-a-1")["lines"]
    assert [x for x in access if x.get("msg") == "access" and
            x.get("rid") == "req-a-1" and x.get("status") == 200], access
    # Never another platform's line; seqs increase; next is the last.
    for x in access:
        assert x.get("rid") != "req-b-1", x
        assert x.get("platform", "plat-a") == "plat-a", x
    seqs = [x["seq"] for x in access]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    body = wait_lines(h, "plat-b", lambda x: x.get("rid") == "req-b-1")
    assert all(x.get("rid") != "req-a-1" for x in body["lines"])

    # The platform's own key with logs:read reads the same.
    st, _, own = logs(h, "plat-a", key=ka)
    assert st == 200, own
    assert [x["seq"] for x in own["lines"]] == \
        [x["seq"] for x in access][:len(own["lines"])]

    # The package filter.
    st, _, only = logs(h, "plat-a", query="?package=limitprobe")
    assert st == 200 and only["lines"], only
    assert all(x.get("package") == "limitprobe" for x in only["lines"])
    st, _, none = logs(h, "plat-a", query="?package=nothere")
    assert st == 200 and none["lines"] == [], none


def test_refusals(make_host):
    h = start(make_host)
    ka = h.platform_key("plat-a", scopes=("features:*", "logs:read"))["key"]
    say_hello(h, "plat-a", ka, "req-a-secret")
    wait_lines(h, "plat-a", lambda x: x.get("rid") == "req-a-secret")
    kb = h.platform_key("plat-b", scopes=("logs:read",))["key"]
    noscope = h.platform_key("plat-a", scopes=("features:*",))["key"]
    st, _, t = h.api("POST", "/platforms/plat-a/tenants",
                     {"id": "team", "name": "team"})
    assert st == 201, t
    bound = h.platform_key("plat-a", scopes=("logs:read",),
                           tenant="team")["key"]
    for key, why in ((kb, None), (noscope, None), (bound, "tenant")):
        st, rh, body = logs(h, "plat-a", key=key)
        assert st == 403, body
        assert rh.get("content-type") == "application/problem+json"
        assert body.get("request_id"), body
        assert "lines" not in body and "req-a-secret" not in json.dumps(body)
        if why:
            assert why in body["detail"], body
    st, _, body = logs(h, "plat-a", key=False)
    assert st == 401, body
    st, _, body = logs(h, "nowhere")
    assert st == 404, body
    for q in ("?since=-1", "?since=x", "?limit=0", "?limit=1001",
              "?wait=26", "?wait=1.5", "?since=99999999999999999999999"):
        st, rh, body = logs(h, "plat-a", query=q)
        assert st == 422, (q, body)
        assert rh.get("content-type") == "application/problem+json"


def test_paging_and_wait(make_host):
    h = start(make_host)
    ka = h.platform_key("plat-a", scopes=("features:*",))["key"]
    for i in range(3):
        say_hello(h, "plat-a", ka, "req-%d" % i)
    wait_lines(h, "plat-a", lambda x: x.get("rid") == "req-2" and
               x.get("msg") == "access")
    st, _, whole = logs(h, "plat-a", query="?limit=1000")
    assert st == 200
    since, got = 0, []
    while True:
        st, _, page = logs(h, "plat-a", query="?limit=2&since=%d" % since)
        assert st == 200, page
        assert len(page["lines"]) <= 2
        if not page["lines"]:
            assert page["next"] == since
            break
        assert page["next"] >= page["lines"][-1]["seq"]
        got += page["lines"]
        since = page["next"]
    assert [x["seq"] for x in got] == [x["seq"] for x in whole["lines"]]
    assert len(got) >= 6  # three hellos, three access lines

    # Nothing new: wait answers when a line comes, well before its time.
    result = {}

    def poll():
        t0 = time.time()
        result["answer"] = logs(h, "plat-a",
                                query="?wait=20&since=%d" % since)
        result["took"] = time.time() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    assert t.is_alive()  # waiting: nothing new yet
    say_hello(h, "plat-a", ka, "req-late")
    t.join(15)
    assert not t.is_alive()
    st, _, body = result["answer"]
    assert st == 200, body
    assert result["took"] < 5, result["took"]
    assert any(x.get("rid") == "req-late" for x in body["lines"]), body
    assert body["next"] > since
    # With nothing coming, a wait of 1 s answers empty after about 1 s.
    t0 = time.time()
    st, _, body = logs(h, "plat-a", query="?wait=1&since=%d" % body["next"])
    assert st == 200 and body["lines"] == [], body
    assert time.time() - t0 >= 0.9


def test_cli_prints_lines(make_host):
    h = start(make_host)
    ka = h.platform_key("plat-a", scopes=("features:*", "logs:read"))["key"]
    say_hello(h, "plat-a", ka, "req-cli")
    wait_lines(h, "plat-a", lambda x: x.get("rid") == "req-cli")
    url = "http://127.0.0.1:%d" % h.port
    env = dict(os.environ, HOME=str(h.dir), XDG_CONFIG_HOME=str(h.dir))
    r = subprocess.run([NNO, "project", "logs", "--url", url, "--key", ka,
                        "--platform", "plat-a", "--package", "limitprobe"],
                       capture_output=True, text=True, env=env, timeout=20,
                       cwd=str(h.dir))
    assert r.returncode == 0, r.stderr
    hello = [ln for ln in r.stdout.splitlines() if "limitprobe says hello" in ln]
    assert len(hello) == 1, r.stdout
    parts = hello[0].split(" ", 3)
    assert len(parts[0]) == 8 and parts[0][2] == ":" and parts[0][5] == ":"
    assert parts[1] == "WARN" and parts[2] == "[req-cli]", hello
    assert parts[3] == "limitprobe says hello"
    # --json: the objects, one a line; env instead of options.
    env.update(NNO_KEY=ka, NNO_PLATFORM="plat-a")
    r = subprocess.run([NNO, "project", "logs", "--url", url, "--json"],
                       capture_output=True, text=True, env=env, timeout=20,
                       cwd=str(h.dir))
    assert r.returncode == 0, r.stderr
    objs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert any(o.get("rid") == "req-cli" for o in objs)
    # Another platform's name with this key: refused, exit 1, a hint.
    r = subprocess.run([NNO, "project", "logs", "--url", url, "--key", ka,
                        "--platform", "plat-b"],
                       capture_output=True, text=True, env=env, timeout=20,
                       cwd=str(h.dir))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "403" in r.stderr and "hint:" in r.stderr
    assert r.stdout == ""
    # No key at all: a usage error naming what is missing.
    env.pop("NNO_KEY")
    r = subprocess.run([NNO, "project", "logs", "--url", url],
                       capture_output=True, text=True, env=env, timeout=20,
                       cwd=str(h.dir))
    assert r.returncode == 2 and "hint:" in r.stderr, r.stderr


def test_cli_follow(make_host):
    """--follow prints a line logged after it started, then keeps going."""
    import select
    h = start(make_host)
    ka = h.platform_key("plat-a", scopes=("features:*", "logs:read"))["key"]
    url = "http://127.0.0.1:%d" % h.port
    p = subprocess.Popen([NNO, "project", "logs", "--url", url, "--key", ka,
                          "--platform", "plat-a", "--follow"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=str(h.dir))
    try:
        time.sleep(0.5)
        assert p.poll() is None  # still following
        say_hello(h, "plat-a", ka, "req-follow")
        out, end = b"", time.time() + 10
        while time.time() < end and b"[req-follow] limitprobe" not in out:
            r, _, _ = select.select([p.stdout], [], [], end - time.time())
            if r:
                out += os.read(p.stdout.fileno(), 65536)
        assert b"WARN [req-follow] limitprobe says hello\n" in out, out
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(10)


def test_wait_ends_when_the_host_stops(make_host):
    """A waiting call does not hold a stopping host: it answers at once
    with what there is, and the host exits well within its drain time."""
    h = make_host(workers=1, core=True, stacks=[PROBE],
                  config={"core_plugins": CORE, "drain_timeout_ms": 30000})
    h.start()
    h.platform("plat-a", stacks=("limitprobe",))
    st, _, body = logs(h, "plat-a")
    assert st == 200, body
    result = {}

    def poll():
        result["answer"] = logs(h, "plat-a",
                                query="?wait=25&since=%d" % body["next"])

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    assert t.is_alive()
    t0 = time.time()
    h.signal(signal.SIGTERM)
    t.join(20)
    assert not t.is_alive()
    st, _, got = result["answer"]
    assert st == 200 and got["lines"] == [] and got["next"] == body["next"]
    assert h.proc.wait(20) == 0
    assert time.time() - t0 < 10  # not the 25 s wait, nor the 30 s drain


def test_a_crash_report_is_in_the_platforms_logs(make_host):
    """A package that crashes in a platform's request: the crash report
    and the request's 502 access line are in that platform's logs, with
    the request id."""
    probe = os.path.join(FIXTURE_STACKS, "probe")
    h = make_host(workers=2, core=True, stacks=[probe],
                  config={"core_plugins": CORE})
    h.start()
    h.platform("plat-c", stacks=("probe",))
    key = h.platform_key("plat-c", scopes=("features:*",))["key"]
    st, _, _ = h.request("GET", "/p/plat-c/probe/crash", headers={
        "Authorization": "Bearer " + key, "X-Request-Id": "req-crash"})
    assert st == 502
    lines = wait_lines(h, "plat-c", lambda x: x.get("msg") == "access" and
                       x.get("rid") == "req-crash")["lines"]
    # Sandboxed (a folder the host does not trust): the sandbox's report.
    crash = [x for x in lines if x.get("msg") == "sandbox crashed"]
    assert len(crash) == 1 and crash[0]["rid"] == "req-crash", lines
    # A sanitizer build's sandbox reports the fault, then aborts (its
    # ASAN_OPTIONS say abort_on_error=1): a signal all the same.
    assert crash[0]["package"] == "probe", crash
    assert crash[0]["signal"] in (("SIGSEGV", "SIGABRT") if sanitized()
                                  else ("SIGSEGV",)), crash
    assert [x for x in lines if x.get("msg") == "access" and
            x.get("rid") == "req-crash" and x.get("status") == 502], lines
