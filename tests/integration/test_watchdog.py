"""The loop watchdog, the worker memory ceiling and overload shedding
(README, Containment): a package that holds the loop is named in a
`loop stalled` line and counted, requests it delayed show the wait in
their access lines, one stuck past watchdog.hard_ms gets its worker
replaced, a worker over limits.worker_max_rss_mb is recycled, and
overload.* limits are answered 503 "overloaded" at once."""
import json
import os
import socket
import threading
import time

from conftest import FIXTURE_STACKS, parse_responses

CONTAIN = os.path.join(FIXTURE_STACKS, "contain")


def contain_host(make_host, workers=1, **config):
    """A host with the core plugins and the fixture stacks in-process;
    platform "bad" runs faulty, "good" runs steady."""
    cfg = {"sandbox": {"inprocess": "faulty,steady"}}
    for k, v in config.items():
        if isinstance(v, dict):
            cfg.setdefault(k, {}).update(v)
        else:
            cfg[k] = v
    h = make_host(workers=workers, core=True, stacks=[CONTAIN], config=cfg)
    h.start()
    h.platform("bad", stacks=["faulty"])
    h.platform("good", stacks=["steady"])
    return h


def wait_workers(h, want, timeout=5):
    """The worker pids once they are `want` (a list), or as last seen."""
    deadline = time.time() + timeout
    while True:
        pids = h.worker_pids()
        if sorted(pids) == sorted(want) or time.time() > deadline:
            return pids
        time.sleep(0.05)


def metric_lines(h, name):
    st, _, body = h.request("GET", "/metrics")
    assert st == 200
    return [ln for ln in body.decode().splitlines()
            if ln.startswith(name + "{") or ln.startswith(name + " ")]


def metric_value(lines, label):
    for ln in lines:
        if label in ln:
            return float(ln.rsplit(" ", 1)[1])
    return None


def send_get(h, path, rid):
    """Send a GET on a fresh connection without waiting; the socket."""
    s = socket.create_connection(("127.0.0.1", h.port))
    s.settimeout(15)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\n"
               "Connection: close\r\n\r\n" % (path, rid)).encode())
    return s


def read_all(s):
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        data += b
    s.close()
    return data


def test_stall_is_logged_counted_and_delays_show(make_host):
    h = contain_host(make_host, watchdog={"stall_ms": 100})
    # A connection already open, kept alive: its next request's bytes are
    # ready when the loop comes back (seen at once), not read with a new
    # connection's.
    ka = h.conn(15)
    ka.request("GET", "/p/good/ok")
    r = ka.getresponse()
    r.read()
    assert r.status == 200
    blocker = send_get(h, "/p/bad/block?ms=300", "stall-block-1")
    time.sleep(0.05)
    # Another platform's requests, sent while the loop is held: they wait.
    other = send_get(h, "/p/good/ok", "stall-other-1")
    ka.request("GET", "/p/good/ok", headers={"X-Request-Id": "stall-ka-1"})
    got = parse_responses(read_all(blocker))
    assert got and got[0][0] == 200
    got = parse_responses(read_all(other))
    assert got and got[0][0] == 200
    assert ka.getresponse().status == 200
    ka.close()
    line = h.wait_log(lambda e: e.get("msg") == "loop stalled")
    assert line["level"] == "warn"
    assert line["package"] == "faulty"
    assert line["platform"] == "bad"
    assert line["rid"] == "stall-block-1"
    assert 250 <= line["dur_ms"] < 5000
    waited = h.access_lines(lambda e: e.get("rid") == "stall-other-1", 1)
    assert len(waited) == 1
    # Sent 50 ms into a 300 ms block: it was read only after it.
    assert waited[0]["dur_us"] >= 200000, waited[0]
    waited = h.access_lines(lambda e: e.get("rid") == "stall-ka-1", 1)
    assert len(waited) == 1 and waited[0]["dur_us"] >= 200000, waited
    stalls = metric_lines(h, "nno_loop_stalls_total")
    assert metric_value(stalls, 'package="faulty"') >= 1
    # A request that did not wait is not dated back.
    st, _, _ = h.request("GET", "/p/good/ok",
                         headers={"X-Request-Id": "stall-quiet-1"})
    assert st == 200
    quiet = h.access_lines(lambda e: e.get("rid") == "stall-quiet-1", 1)
    assert quiet and quiet[0]["dur_us"] < 100000, quiet
    # Nothing held the loop that long after it: no other stall line.
    assert [e["rid"] for e in h.log_lines()
            if e.get("msg") == "loop stalled"] == ["stall-block-1"]


def test_waits_are_dated_as_they_happened(make_host):
    h = contain_host(make_host)
    # Pipelined in one write: the first answer goes out before the second
    # request holds the loop, not with its answer 300 ms later.
    s = socket.create_connection(("127.0.0.1", h.port))
    s.settimeout(15)
    s.sendall(b"GET /p/good/ok HTTP/1.1\r\nHost: x\r\n"
              b"X-Request-Id: pipe-ok-1\r\n\r\n"
              b"GET /p/bad/block?ms=300 HTTP/1.1\r\nHost: x\r\n"
              b"X-Request-Id: pipe-block-1\r\nConnection: close\r\n\r\n")
    first = parse_responses(s.recv(65536))
    assert [st for st, _, _ in first] == [200], first
    rest = parse_responses(read_all(s))
    assert [st for st, _, _ in rest] == [200], rest
    # A connection opened during a stall that sends nothing until the
    # stall is over did not wait for the loop: not dated back.
    blocker = send_get(h, "/p/bad/block?ms=300", "late-block-1")
    time.sleep(0.05)
    idle = socket.create_connection(("127.0.0.1", h.port))
    idle.settimeout(15)
    got = parse_responses(read_all(blocker))
    assert got and got[0][0] == 200
    idle.sendall(b"GET /p/good/ok HTTP/1.1\r\nHost: x\r\n"
                 b"X-Request-Id: late-idle-1\r\nConnection: close\r\n\r\n")
    got = parse_responses(read_all(idle))
    assert got and got[0][0] == 200
    line = h.access_lines(lambda e: e.get("rid") == "late-idle-1", 1)
    assert line and line[0]["dur_us"] < 100000, line
    # A connection opened during a stall that sends a request at once and
    # a second one at the stall's very end: the first waited through it,
    # and the late bytes behind it do not hide that.
    blocker = send_get(h, "/p/bad/block?ms=300", "late-block-2")
    time.sleep(0.03)
    pipe = socket.create_connection(("127.0.0.1", h.port))
    pipe.settimeout(15)
    pipe.sendall(b"GET /p/good/ok HTTP/1.1\r\nHost: x\r\n"
                 b"X-Request-Id: late-first-1\r\n\r\n")
    time.sleep(0.265)
    pipe.sendall(b"GET /p/good/ok HTTP/1.1\r\nHost: x\r\n"
                 b"X-Request-Id: late-second-1\r\nConnection: close\r\n\r\n")
    got = parse_responses(read_all(blocker))
    assert got and got[0][0] == 200
    got = parse_responses(read_all(pipe))
    assert [st for st, _, _ in got] == [200, 200], got
    line = h.access_lines(lambda e: e.get("rid") == "late-first-1", 1)
    assert line and line[0]["dur_us"] >= 200000, line


def test_stuck_worker_is_replaced(make_host):
    h = contain_host(make_host, watchdog={"stall_ms": 100, "hard_ms": 600},
                     drain_timeout_ms=1000)
    old = h.worker_pids()
    assert len(old) == 1
    blocker = send_get(h, "/p/bad/block?ms=3000", "stuck-1")
    stuck = h.wait_log(lambda e: e.get("msg") == "loop stuck", timeout=5)
    assert stuck["pid"] == old[0]
    assert stuck["package"] == "faulty"
    assert stuck["platform"] == "bad"
    assert stuck["rid"] == "stuck-1"
    assert stuck["dur_ms"] >= 600
    rec = h.wait_log(lambda e: e.get("msg") == "worker recycled", timeout=5)
    assert rec["worker_pid"] == old[0]
    assert rec["reason"] == "loop stuck"
    new = rec["replacement_pid"]
    assert new != old[0]
    # The replacement serves while the old one is still stuck.
    deadline = time.time() + 5
    served_by = None
    while time.time() < deadline:
        st, hd, _ = h.request("GET", "/p/good/ok", timeout=2)
        if st == 200:
            served_by = h.access_lines(lambda e: e.get("path") ==
                                       "/p/good/ok", 1)[-1]["pid"]
            break
        time.sleep(0.05)
    assert served_by == new
    read_all(blocker)
    # Still stuck hard_ms after the recycle: the master kills it.
    killed = h.wait_log(lambda e: e.get("msg") == "stuck worker killed",
                        timeout=5)
    assert killed["worker_pid"] == old[0]
    assert killed["why"] == "still stuck"
    assert wait_workers(h, [new]) == [new]
    st, _, _ = h.request("GET", "/p/bad/ok")
    assert st == 200


def test_stuck_worker_that_recovers_drains(make_host):
    h = contain_host(make_host, watchdog={"stall_ms": 100, "hard_ms": 500},
                     drain_timeout_ms=3000)
    old = h.worker_pids()[0]
    # Stuck for 800 ms, under hard_ms more than the limit: it recovers,
    # answers its request and drains by itself.
    blocker = send_get(h, "/p/bad/block?ms=800", "recover-1")
    got = parse_responses(read_all(blocker))
    assert got and got[0][0] == 200
    h.wait_log(lambda e: e.get("msg") == "worker stopped"
               and e.get("pid") == old)
    assert not [e for e in h.log_lines()
                if e.get("msg") == "stuck worker killed"]
    rec = h.wait_log(lambda e: e.get("msg") == "worker recycled")
    assert rec["worker_pid"] == old
    assert wait_workers(h, [rec["replacement_pid"]]) == [
        rec["replacement_pid"]]


def test_rss_ceiling_recycles_the_worker(make_host):
    h = contain_host(make_host, limits={"worker_max_rss_mb": 200})
    old = h.worker_pids()
    rss = metric_lines(h, "nno_worker_rss_bytes")
    assert metric_value(rss, 'worker="%d"' % old[0]) > 0
    st, _, body = h.request("GET", "/p/bad/leak?mb=250")
    assert st == 200, body
    line = h.wait_log(lambda e: e.get("msg") ==
                      "worker over its memory ceiling; recycling")
    assert line["pid"] == old[0]
    assert line["rss_mb"] >= 200
    assert line["limit_mb"] == 200
    rec = h.wait_log(lambda e: e.get("msg") == "worker recycled")
    assert rec["reason"] == "memory ceiling"
    h.wait_log(lambda e: e.get("msg") == "worker stopped"
               and e.get("pid") == old[0])
    pids = wait_workers(h, [rec["replacement_pid"]])
    assert pids == [rec["replacement_pid"]]
    st, _, _ = h.request("GET", "/p/good/ok",
                         headers={"X-Request-Id": "after-rss"})
    assert st == 200
    after = h.access_lines(lambda e: e.get("rid") == "after-rss", 1)
    assert after[0]["pid"] == pids[0]


def test_connections_past_the_limit_are_shed(make_host):
    limit = 5
    h = contain_host(make_host, overload={"max_connections": limit})
    # Requests in progress (2.5 s each): none of these connections can
    # give way.
    held = [send_get(h, "/p/good/slow?ms=2500", "held-%d" % i)
            for i in range(limit - 1)]
    try:
        time.sleep(0.1)
        # The limit-th connection is served...
        st, _, _ = h.request("GET", "/p/good/ok")
        assert st == 200
        extra = send_get(h, "/p/good/slow?ms=2500", "held-extra")
        held.append(extra)
        time.sleep(0.1)
        # ... the next ones get 503 overloaded at once, and are closed.
        for i in range(3):
            t0 = time.time()
            s = socket.create_connection(("127.0.0.1", h.port))
            s.settimeout(3)
            data = read_all(s)
            assert time.time() - t0 < 1.0
            got = parse_responses(data)
            assert got and got[0][0] == 503, data
            status, hd, body = got[0]
            assert hd["content-type"] == "application/problem+json"
            assert hd["retry-after"] == "1"
            assert hd["connection"] == "close"
            p = json.loads(body)
            assert p["detail"].startswith("overloaded")
            assert p["request_id"]
    finally:
        for s in held:
            s.close()
    # Recovery: once they are answered and gone, new connections are
    # served again.
    deadline = time.time() + 4.0
    st = None
    while time.time() < deadline:
        st, _, _ = h.request("GET", "/p/good/ok")
        if st == 200:
            break
        time.sleep(0.05)
    assert st == 200
    rej = metric_lines(h, "nno_overload_rejected_total")
    assert metric_value(rej, 'reason="connections"') >= 3


def test_loop_lag_sheds_then_recovers(make_host):
    h = contain_host(make_host, overload={"max_lag_ms": 200},
                     watchdog={"stall_ms": 100})
    blocker = send_get(h, "/p/bad/block?ms=400", "lag-block")
    time.sleep(0.05)
    other = send_get(h, "/p/good/ok", "lag-other")
    assert parse_responses(read_all(blocker))[0][0] == 200
    got = parse_responses(read_all(other))
    # Read right after a 400 ms iteration: shed.
    assert got[0][0] == 503, got
    assert got[0][1]["retry-after"] == "1"
    assert json.loads(got[0][2])["detail"].startswith(
        "overloaded: the event loop lags")
    # Built-ins stay reachable; the lag decays within a second.
    deadline = time.time() + 1.5
    st = None
    while time.time() < deadline:
        st, _, _ = h.request("GET", "/p/good/ok")
        if st == 200:
            break
        time.sleep(0.05)
    assert st == 200
    assert time.time() < deadline
    rej = metric_lines(h, "nno_overload_rejected_total")
    assert metric_value(rej, 'reason="lag"') >= 1
    lag = metric_lines(h, "nno_loop_lag_seconds")
    # The loop idle since a long iteration: the lag decayed meanwhile, and
    # the first request after the quiet is served.
    blocker = send_get(h, "/p/bad/block?ms=400", "lag-block-2")
    assert parse_responses(read_all(blocker))[0][0] == 200
    time.sleep(0.7)
    st, _, body = h.request("GET", "/p/good/ok")
    assert st == 200, body
    assert metric_value(lag, 'worker="%d"' % h.worker_pids()[0]) >= 0.35


def test_memory_overload_sheds_requests(make_host):
    h = contain_host(make_host, overload={"max_rss_mb": 150})
    st, _, _ = h.request("GET", "/p/good/ok")
    assert st == 200
    st, _, _ = h.request("GET", "/p/bad/leak?mb=200")
    assert st == 200
    # RSS is read once a second.
    deadline = time.time() + 3
    st = None
    while time.time() < deadline:
        st, hd, body = h.request("GET", "/p/good/ok")
        if st == 503:
            break
        time.sleep(0.1)
    assert st == 503
    assert json.loads(body)["detail"].startswith(
        "overloaded: the worker holds")
    # The operator still sees the host.
    st, _, _ = h.request("GET", "/metrics")
    assert st == 200
    rej = metric_lines(h, "nno_overload_rejected_total")
    assert metric_value(rej, 'reason="memory"') >= 1


def test_metrics_present(make_host):
    h = contain_host(make_host, workers=2)
    for _ in range(5):
        h.request("GET", "/p/good/ok")
    st, _, body = h.request("GET", "/metrics")
    text = body.decode()
    for name in ("nno_loop_lag_seconds", "nno_worker_rss_bytes",
                 "nno_loop_iteration_seconds_bucket",
                 "nno_loop_iteration_seconds_count",
                 "nno_overload_rejected_total", "nno_loop_stalls_total"):
        assert ("# TYPE %s" % name.replace("_bucket", "").replace(
            "_count", "")) in text, name
    pids = h.worker_pids()
    rss = metric_lines(h, "nno_worker_rss_bytes")
    for pid in pids:
        assert metric_value(rss, 'worker="%d"' % pid) > 1 << 20


HEAVY_C = r"""
#include <stdlib.h>
#include <string.h>
#include <nno/plugin.h>

static char *big;

static int init(nno_plugin *p, const nno_host_api *api) {
  (void)p;
  (void)api;
  big = malloc(64u << 20); /* resident: past a 32 MiB ceiling at once */
  if (!big) return NNO_EINVAL;
  memset(big, 1, 64u << 20);
  return NNO_OK;
}

static void fini(nno_plugin *p) {
  (void)p;
  free(big);
}

NNO_PLUGIN(.name = "heavy", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = init, .on_plugin_fini = fini)"""


def test_a_worker_over_its_ceiling_from_the_start_is_recycled_with_backoff(
        make_host, tmp_path):
    """A ceiling no worker fits under (a stack loaded in-process holds
    64 MiB, the ceiling is 32): each replacement is over it too, so the
    recycles back off (100 ms, 200 ms, ...) instead of one a second."""
    from test_stack_check import SOURCE
    import subprocess
    root = os.path.join(str(tmp_path), "stacks")
    sdir = os.path.join(root, "heavy", "1.0.0")
    pdir = os.path.join(sdir, "packages", "heavy")
    os.makedirs(pdir)
    src = os.path.join(str(tmp_path), "heavy.c")
    with open(src, "w") as f:
        f.write(HEAVY_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror",
                    "-fvisibility=hidden", "-I",
                    os.path.join(SOURCE, "plugin-api", "include"), src, "-o",
                    os.path.join(pdir, "libheavy.so")], check=True)
    with open(os.path.join(pdir, "package.json"), "w") as f:
        json.dump({"name": "heavy", "version": "1.0.0", "abi": "1.5",
                   "kind": "feature", "library": "libheavy.so",
                   "routes": []}, f)
    with open(os.path.join(sdir, "stack.json"), "w") as f:
        json.dump({"id": "heavy", "version": "1.0.0",
                   "packages": [{"name": "heavy", "version": "1.0.0"}]}, f)
    h = make_host(workers=1, stacks=[root],
                  config={"sandbox": {"inprocess": "heavy"},
                          "limits": {"worker_max_rss_mb": 32}}).start()
    deadline = time.time() + 20
    recs = []
    while len(recs) < 3 and time.time() < deadline:
        recs = [e for e in h.log_lines() if e.get("msg") == "worker recycled"]
        time.sleep(0.1)
    assert len(recs) >= 3, h.log_text()
    assert [r.get("backoff_ms") for r in recs[:3]] == [100, 200, 400], recs
