"""The host as a whole: endpoints, tracing, plugins through the ABI, the
process model (drain, reload, respawn) and the loader's refusals."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, FIXTURE_STACKS, NNO, parse_responses

PROBE = os.path.join(FIXTURE_STACKS, "probe")
CORE_PLUGINS = os.path.join(BUILD, "tests", "plugins")


@pytest.fixture(scope="module")
def probe_host(tmp_path_factory):
    from conftest import Host
    # probe looks up the core probe's service and crashes its worker on
    # request: it runs in-process (sandboxed stacks: test_sandbox.py).
    h = Host(tmp_path_factory.mktemp("probe"), workers=2, stacks=[PROBE],
             config={"plugin_dir": CORE_PLUGINS,
                     "limits": {"max_response_bytes": 100000},
                     "sandbox": {"inprocess": "probe"}})
    h.start()
    yield h
    h.stop()


# -- built-in endpoints and the hello package ---------------------------------

def test_hello(host):
    st, h, body = host.request("GET", "/hello")
    assert st == 200
    assert h["content-type"] == "application/json"
    assert json.loads(body) == {"message": "hello, world"}


def test_hello_name_is_escaped(host):
    st, _, body = host.json("GET", "/hello/%22bob%22")
    assert st == 200
    # The path is passed as sent (not decoded); quotes never break the JSON.
    assert body == {"message": "hello, %22bob%22"}
    st, _, body = host.json("GET", "/hello/ada")
    assert body == {"message": "hello, ada"}


def test_hello_later_is_async(host):
    t0 = time.time()
    st, _, body = host.json("GET", "/hello/later?ms=300")
    assert st == 200 and body == {"message": "hello, later"}
    assert time.time() - t0 >= 0.29
    st, h, body = host.json("GET", "/hello/later?ms=abc")
    assert st == 400 and h["content-type"] == "application/problem+json"


def test_async_does_not_block_worker(make_host):
    # One worker: a slow request must not hold up others on the same loop.
    h = make_host(workers=1).start()
    result = {}

    def slow():
        result["slow"] = h.request("GET", "/hello/later?ms=1500")[0]
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    t0 = time.time()
    for _ in range(20):
        assert h.request("GET", "/hello")[0] == 200
    assert time.time() - t0 < 1.0
    t.join()
    assert result["slow"] == 200


def test_healthz_readyz(host):
    st, _, body = host.json("GET", "/healthz")
    assert st == 200 and body["status"] == "ok"
    assert len(body["workers"]) == 2
    st, _, body = host.json("GET", "/readyz")
    assert st == 200 and body == {"status": "ready"}
    st, h, _ = host.request("POST", "/healthz", body=b"")
    assert st == 405 and h["allow"] == "GET, HEAD"


def test_metrics_aggregated_across_workers(host):
    for _ in range(40):
        host.request("GET", "/hello")
    st, h, body = host.request("GET", "/metrics")
    assert st == 200
    assert h["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    m = re.search(r'nno_http_requests_total\{route="/hello",status="200"\} (\d+)',
                  text)
    assert m and int(m.group(1)) >= 40
    assert "nno_http_request_duration_seconds_bucket{le=\"+Inf\"}" in text
    assert re.search(r"^nno_worker_restarts_total 0$", text, re.M)
    assert re.search(r"^nno_workers 2$", text, re.M)
    # the default stack: hello, auth, notes and console
    assert re.search(r"^nno_plugins_loaded 4$", text, re.M)
    # Both workers served some of those requests (SO_REUSEPORT spreads new
    # connections), and the counter is their sum.
    pids, want = host.access_pids("/hello", 200)
    assert len(pids) == 2 and pids == set(want)


def test_not_found_and_method_not_allowed(host):
    st, h, body = host.json("GET", "/nowhere")
    assert st == 404
    assert h["content-type"] == "application/problem+json"
    assert body["status"] == 404 and body["title"] == "Not Found"
    assert body["request_id"] == h["x-request-id"]
    st, h, body = host.json("DELETE", "/hello")
    assert st == 405 and h["allow"] == "GET, HEAD"


def test_head_has_length_but_no_body(host):
    out = host.raw(b"HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Length: 26" in head
    assert rest == b""


# -- request ids and trace context --------------------------------------------

def test_request_id_generated_and_unique(host):
    ids = {host.request("GET", "/hello")[1]["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_request_id_taken_when_well_formed(host):
    _, h, _ = host.request("GET", "/hello", headers={"X-Request-Id": "abc-123.x"})
    assert h["x-request-id"] == "abc-123.x"
    _, h, _ = host.request("GET", "/hello", headers={"X-Request-Id": "bad id!"})
    assert h["x-request-id"] != "bad id!"
    _, h, _ = host.request("GET", "/hello", headers={"X-Request-Id": "a" * 65})
    assert len(h["x-request-id"]) == 32


def test_request_id_in_access_log(host):
    _, h, _ = host.request("GET", "/hello", headers={"X-Request-Id": "trace-me-42"})
    e = host.wait_log(lambda e: e.get("rid") == "trace-me-42")
    assert e["msg"] == "access" and e["status"] == 200 and e["route"] == "/hello"
    assert e["method"] == "GET" and isinstance(e["dur_us"], int)
    assert e["bytes"] == 26


def test_traceparent_propagated_to_plugins(probe_host):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    _, _, body = probe_host.json("GET", "/probe/echo/x", headers={"traceparent": tp})
    got = body["traceparent"]
    assert got.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert got.endswith("-01")
    assert got.split("-")[2] != "00f067aa0ba902b7"  # our own span id
    _, _, body = probe_host.json("GET", "/probe/echo/x",
                                 headers={"traceparent": "garbage"})
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", body["traceparent"])
    _, _, body2 = probe_host.json("GET", "/probe/echo/x")
    assert body2["traceparent"].split("-")[1] != body["traceparent"].split("-")[1]


# -- the ABI, through the probe package ---------------------------------------

def test_echo_sees_the_request(probe_host):
    st, h, body = probe_host.json(
        "POST", "/probe/echo/a/b%20c?q=x%20y&z=1", body=b'{"k":1}',
        headers={"X-Test": "yes", "Content-Type": "application/json",
                 "X-Request-Id": "rid-1"})
    assert st == 200 and h["x-probe"] == "1"
    assert body["method"] == "POST"
    assert body["path"] == "/probe/echo/a/b%20c"
    assert body["rest"] == "a/b%20c"
    assert body["query"] == "q=x%20y&z=1"
    assert body["q"] == "x y"
    assert body["x_test"] == "yes"
    assert body["body"] == '{"k":1}' and body["body_len"] == 7
    assert body["id"] == "rid-1"


def test_repeated_headers_are_joined(probe_host):
    out = probe_host.raw(b"GET /probe/echo/ HTTP/1.1\r\nHost: x\r\nX-Test: a\r\n"
                         b"X-Test: b\r\nConnection: close\r\n\r\n")
    [(st, _, body)] = parse_responses(out)
    assert st == 200 and json.loads(body)["x_test"] == "a, b"
    assert json.loads(body)["rest"] == ""


def test_thread_pool_work(probe_host):
    st, _, body = probe_host.json("GET", "/probe/work")
    assert st == 200 and body["status"] == 0 and isinstance(body["work"], int)


def test_service_lookup_between_plugins(probe_host):
    st, _, body = probe_host.json("GET", "/probe/service")
    assert st == 200
    # coreprobe counts the loaded stacks during its init (none yet: stacks
    # load after core plugins) and in on_host_ready (probe and default).
    assert body == {"greeting": "greetings, probe (stacks: 0 at init, 2 when "
                                "ready)", "version": 1}


def test_authz_hook_sees_the_route_scope(probe_host):
    st, _, body = probe_host.json("GET", "/probe/denied")
    assert st == 403 and body["detail"] == "scope test:deny is never granted"
    # Unmatched paths never reach AUTHZ: 404 as before.
    assert probe_host.request("GET", "/probe/nowhere")[0] == 404


def test_limit_hook_holds_exactly_across_workers(probe_host):
    # 24 requests on fresh connections (spread over both workers), 8 at a
    # time: the shared bucket of 3 lets exactly 3 through.
    import concurrent.futures
    key = "burst-%d" % os.getpid()

    def one(_):
        return probe_host.request("GET", "/probe/echo/x",
                                  headers={"X-Limit-Key": key})
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(one, range(24)))
    ok = [a for a in answers if a[0] == 200]
    limited = [a for a in answers if a[0] == 429]
    assert len(ok) == 3 and len(limited) == 21
    assert {a[1]["ratelimit-remaining"] for a in ok} == {"0", "1", "2"}
    for st, h, body in limited:
        assert h["ratelimit-limit"] == "3" and h["ratelimit-remaining"] == "0"
        assert int(h["retry-after"]) >= 1
        assert json.loads(body)["detail"] == "limit of 3 reached"
    lines = probe_host.access_lines(lambda e: e.get("status") == 429, 21)
    assert len({e["pid"] for e in lines}) == 2


def test_handler_error_is_500_problem(probe_host):
    st, h, body = probe_host.json("GET", "/probe/fail")
    assert st == 500 and h["content-type"] == "application/problem+json"
    assert "NNO_EIO" in body["detail"]


def test_response_size_bounded(probe_host):
    st, _, body = probe_host.request("GET", "/probe/big?n=50000")
    assert st == 200 and len(body) == 50000
    st, _, body = probe_host.json("GET", "/probe/big?n=200000")
    assert st == 500 and "size limit" in body["detail"]


def test_outbound_fetch(probe_host):
    st, _, body = probe_host.json(
        "GET", "/probe/fetch?port=%d&path=/healthz" % probe_host.port)
    assert st == 200 and body["status"] == 200 and body["error"] == ""
    assert json.loads(body["body"])["status"] == "ok"


def test_outbound_fetch_bounded_in_size(probe_host):
    st, _, body = probe_host.json(
        "GET", "/probe/fetch?port=%d&path=/metrics&max=64" % probe_host.port)
    assert st == 200 and body["error"] == "NNO_ETOOBIG"


def test_outbound_fetch_bounded_in_time(probe_host):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts in the kernel, never answers
    try:
        t0 = time.time()
        st, _, body = probe_host.json(
            "GET", "/probe/fetch?port=%d&timeout_ms=300" % silent.getsockname()[1])
        assert st == 200 and body["error"] == "NNO_ETIMEDOUT"
        assert time.time() - t0 < 2
    finally:
        silent.close()


# -- process model ------------------------------------------------------------

def test_worker_crash_is_contained(make_host):
    # In-process: the crash takes its worker (sandboxed: test_sandbox.py).
    h = make_host(workers=2, stacks=[PROBE],
                  config={"sandbox": {"inprocess": "probe"}}).start()
    # The crashing request is answered by the worker's crash handler.
    st, hd, body = h.request("GET", "/probe/crash", timeout=5)
    assert st == 502 and hd["content-type"] == "application/problem+json"
    assert json.loads(body)["request_id"] == hd["x-request-id"]
    e = h.wait_log(lambda e: e.get("msg") == "worker exited")
    assert e.get("signal") == signal.SIGSEGV and e["level"] == "error"
    assert e["respawn_in_ms"] >= 0 and e["package"] == "probe"
    # Every later request is served, by the survivor and the new worker.
    for _ in range(30):
        assert h.request("GET", "/hello")[0] == 200
    h.wait_ready()
    assert len(h.worker_pids()) == 2
    _, _, body = h.request("GET", "/metrics")
    assert re.search(rb"^nno_worker_restarts_total 1$", body, re.M)


def test_sigterm_drains_in_flight_requests(make_host):
    h = make_host(workers=1).start()
    result = {}

    def slow():
        result["r"] = h.request("GET", "/hello/later?ms=1000")
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    h.signal(signal.SIGTERM)
    t.join()
    assert result["r"][0] == 200
    assert json.loads(result["r"][2]) == {"message": "hello, later"}
    assert h.proc.wait(10) == 0
    assert time.time() - t0 < 5
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", h.port), timeout=1)


def test_drain_never_unloads_a_plugin_under_its_own_callback(make_host):
    # The client leaves while an async handler waits; the worker drains and
    # its last request ends inside the plugin's timer callback, which goes
    # on running after res_end().
    h = make_host(workers=1, stacks=[PROBE]).start()
    s = socket.create_connection(("127.0.0.1", h.port))
    s.sendall(b"GET /probe/slow?ms=800&log_after=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST
    h.signal(signal.SIGTERM)
    assert h.proc.wait(10) == 0
    h.wait_log(lambda e: e.get("msg") == "probe: still here after res_end")
    assert not [e for e in h.log_lines() if "died" in e.get("msg", "")]


def test_drain_answers_a_request_still_arriving(make_host):
    h = make_host(workers=1, stacks=[PROBE]).start()
    body = b'{"name":"half-and-half"}'
    s = socket.create_connection(("127.0.0.1", h.port))
    s.settimeout(5)
    s.sendall(b"POST /probe/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
              b"\r\n" % len(body) + body[:10])
    time.sleep(0.2)
    h.signal(signal.SIGTERM)
    time.sleep(0.3)
    s.sendall(body[10:])
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    [(st, hdr, out)] = parse_responses(data)
    assert st == 200 and hdr["connection"] == "close"
    assert json.loads(out)["body"] == body.decode()
    assert h.proc.wait(10) == 0


def test_overlong_host_name_refused(host):
    name = "a" * 236 + ".acme.nno.localhost.attacker.example"
    st, _, body = host.json("GET", "/hello", host=name)
    assert st == 400 and body["detail"] == "host name longer than 253 bytes"
    st, _, _ = host.json("GET", "/hello", host="a" * 200 + ".example.")
    assert st == 200


def test_sigterm_drain_is_bounded(make_host):
    h = make_host(workers=1, config={"drain_timeout_ms": 500}).start()
    threading.Thread(target=lambda: _quiet(h.request, "GET",
                                           "/hello/later?ms=10000"),
                     daemon=True).start()
    time.sleep(0.3)
    t0 = time.time()
    h.signal(signal.SIGTERM)
    h.proc.wait(10)
    assert time.time() - t0 < 4


def _quiet(fn, *a):
    try:
        fn(*a)
    except Exception:
        pass


def test_sighup_reload_without_dropping(make_host):
    h = make_host(workers=2).start()
    before = set(h.worker_pids())
    result = {}
    errors = []
    stop = threading.Event()

    def slow():
        result["slow"] = h.request("GET", "/hello/later?ms=1500")[0]

    def load():
        while not stop.is_set():
            try:
                if h.request("GET", "/hello", timeout=5)[0] != 200:
                    errors.append("status")
            except Exception as e:  # any failed request fails the test
                errors.append(repr(e))
    t = threading.Thread(target=slow)
    t.start()
    loaders = [threading.Thread(target=load) for _ in range(3)]
    for x in loaders:
        x.start()
    time.sleep(0.3)
    # A changed configuration takes effect on reload.
    with open(h.config_path) as f:
        cfg = json.load(f)
    cfg["limits"] = {"max_body_bytes": 10}
    with open(h.config_path, "w") as f:
        json.dump(cfg, f)
    h.signal(signal.SIGHUP)
    h.wait_log(lambda e: e.get("msg", "").startswith("reloaded"))
    time.sleep(0.5)
    stop.set()
    for x in loaders:
        x.join()
    t.join()
    assert errors == []
    assert result["slow"] == 200
    # The old generation exits once its last request is answered.
    deadline = time.time() + 10
    while len(h.worker_pids()) != 2 and time.time() < deadline:
        time.sleep(0.05)
    after = set(h.worker_pids())
    assert len(after) == 2 and not (before & after)
    st, _, _ = h.request("POST", "/hello", body=b"x" * 11)
    assert st == 413


def test_sighup_with_bad_config_keeps_running(make_host):
    h = make_host(workers=1).start()
    pids = h.worker_pids()
    with open(h.config_path, "w") as f:
        f.write("{not json")
    h.signal(signal.SIGHUP)
    e = h.wait_log(lambda e: "reload refused" in e.get("msg", ""))
    assert "invalid JSON" in e["msg"]
    assert h.request("GET", "/hello")[0] == 200
    assert h.worker_pids() == pids


# -- loader refusals ----------------------------------------------------------

REFUSALS = {
    "badmajor": 'incompatible plugin "{so}": built for ABI 2.0, host provides 1.5',
    "newminor": 'incompatible plugin "{so}": built for ABI 1.6, host provides 1.5',
    "nosym": 'plugin "{so}": missing symbol nno_plugin_descriptor (declare the '
             'plugin with NNO_PLUGIN(...))',
    "badmanifest": '{dir}/package.json: field "version": expected a semver '
                   'version, got "1.x"',
    "initfail": 'plugin "{so}": init failed (NNO_EINVAL): missing setting "token"',
}


def _pkg(case):
    d = os.path.join(FIXTURE_STACKS, case, case, "1.0.0", "packages", case)
    return d, os.path.join(d, "lib%s.so" % case)


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_loader_refuses_stack(make_host, case):
    d, so = _pkg(case)
    want = REFUSALS[case].format(so=so, dir=d)
    h = make_host(workers=1, stacks=[os.path.join(FIXTURE_STACKS, case)]).start()
    e = h.wait_log(lambda e: e.get("msg") == "stack refused")
    assert e["name"] == case + "@1.0.0"
    assert e["error"] == want
    # The rest of the host is unaffected; the refused stack serves nothing.
    assert h.request("GET", "/hello")[0] == 200
    assert h.request("GET", "/" + case)[0] == 404


@pytest.mark.parametrize("case", ["badmajor", "newminor", "nosym", "badmanifest"])
def test_check_package_refuses(case):
    d, so = _pkg(case)
    r = subprocess.run([NNO, "check-package", d], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr == "nno: " + REFUSALS[case].format(so=so, dir=d) + "\n"


def test_check_package_accepts():
    r = subprocess.run([NNO, "check-package", _pkg("probe")[0]],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "package ok\n"


# -- CLI and configuration ----------------------------------------------------

def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([NNO] + list(args), capture_output=True, text=True,
                          env=e, timeout=30)


def test_help():
    r = run("--help")
    assert r.returncode == 0 and "serve" in r.stdout and "check-package" in r.stdout
    r = run("serve", "--help")
    assert r.returncode == 0
    for key in ("--listen", "--data", "--workers", "--config", "NNO_LISTEN",
                "limits.max_body_bytes", "drain_timeout_ms"):
        assert key in r.stdout
    assert run("check-package", "--help").returncode == 0


def test_cli_errors_are_one_line_with_hint():
    r = run("frobnicate")
    assert r.returncode == 2
    assert r.stderr == ("nno: unknown command 'frobnicate'\n"
                        "hint: run 'nno --help' for the commands\n")
    r = run("serve", "--bogus")
    assert r.returncode == 2 and r.stderr.startswith("nno: serve: unknown option")
    r = run("serve", "--workers")
    assert r.returncode == 2 and "needs a value" in r.stderr


@pytest.mark.parametrize("args,env,msg", [
    (["--workers", "0"], {}, 'workers: expected an integer from 1 to 64, got "0"'),
    (["--listen", "nope"], {}, "listen: expected HOST:PORT"),
    ([], {"NNO_WORKERS": "x"}, 'NNO_WORKERS: workers: expected an integer'),
    (["--set", "limits.max_body_bytes=-1"], {}, "limits.max_body_bytes: expected"),
    (["--set", "no.such=1"], {}, 'unknown configuration key "no.such"'),
])
def test_bad_configuration_refused(tmp_path, args, env, msg):
    r = run("serve", "--check", "--data", str(tmp_path), *args, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("nno: invalid configuration: ")
    assert msg in r.stderr
    assert "hint:" in r.stderr


def test_bad_config_file_refused(tmp_path):
    p = tmp_path / "nno.json"
    p.write_text('{"limits": {"max_body_bytes": "big"}}')
    r = run("serve", "--check", "--config", str(p))
    assert r.returncode == 2
    assert ('field "limits.max_body_bytes": expected an integer, got a string'
            in r.stderr)
    p.write_text('{"listn": "1"}')
    r = run("serve", "--check", "--config", str(p))
    assert r.returncode == 2 and 'unknown key "listn"' in r.stderr
    p.write_text('{"workers": 2,}')
    r = run("serve", "--check", "--config", str(p))
    assert r.returncode == 2 and "invalid JSON at line 1" in r.stderr


def test_check_reports_broken_stacks(tmp_path):
    p = tmp_path / "nno.json"
    p.write_text(json.dumps({"stacks_dirs": [os.path.join(FIXTURE_STACKS, "nosym")]}))
    r = run("serve", "--check", "--config", str(p), "--data", str(tmp_path))
    assert r.returncode == 1 and "missing symbol" in r.stderr
    r = run("serve", "--check", "--data", str(tmp_path))
    assert r.returncode == 0 and r.stdout == "configuration ok\n"


def test_precedence_flags_over_env_over_file(make_host):
    h = make_host(workers=1, config={"workers": 3},
                  env={"NNO_WORKERS": "2"})
    h.start()
    # The harness passes --workers 1, which wins over both.
    assert len(h.worker_pids()) == 1


def test_connection_limit_answers_503(make_host):
    h = make_host(workers=1, config={"limits": {"max_connections": 2}}).start()
    held = []
    try:
        # Busy ones (an idle one would be closed to make room): each has
        # sent a head and been told to go on with its body.
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", h.port))
            held.append(s)
            s.settimeout(5)
            s.sendall(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1"
                      b"\r\nExpect: 100-continue\r\n\r\n")
            assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        # The held connections count once the worker has accepted them; on
        # a loaded machine that may take a moment.
        for _ in range(50):
            out = h.raw(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close"
                        b"\r\n\r\n")
            [(st, hdr, body)] = parse_responses(out)
            if st == 503:
                break
            time.sleep(0.1)
        assert st == 503 and hdr["connection"] == "close"
        assert json.loads(body)["detail"] == "too many connections; retry later"
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert h.request("GET", "/hello")[0] == 200
