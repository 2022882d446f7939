"""The access log: one JSON line per request, written in batches.

A worker gathers its access lines in a buffer and writes them as whole
lines, at the latest 100 ms after the first one, when the buffer fills, and
when it stops (drain on SIGTERM, or the old generation after SIGHUP). A
worker killed outright loses what it had not written yet, never more, and
never leaves half a line.
"""
import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest


def hello(h, path="/hello", conn=None):
    """GET `path`; returns (status, X-Request-Id)."""
    c = conn or h.conn()
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("X-Request-Id")
    finally:
        if conn is None:
            c.close()


def access(lines, path):
    return [e for e in lines if e.get("msg") == "access"
            and e.get("path") == path]


def parsed(text):
    """Every line of `text` as JSON: a torn or merged line fails here."""
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError("not a whole JSON line: %r" % line[:300])
    return out


def syscw(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(": ")
            if k == "syscw":
                return int(v)
    raise AssertionError("no syscw in /proc/%d/io" % pid)


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_every_request_has_its_line(make_host):
    h = make_host(workers=2).start()
    path = "/hello/every-%d" % os.getpid()
    rids = set()
    c = h.conn()
    for i in range(60):  # keep-alive, and new connections (both workers)
        st, rid = hello(h, path, conn=c if i % 2 else None)
        assert st == 200
        rids.add(rid)
    c.close()
    lines = h.access_lines(lambda e: e.get("path") == path, 60)
    assert len(lines) == 60 and {e["rid"] for e in lines} == rids
    assert {e["pid"] for e in lines} <= set(h.worker_pids())


def test_lines_are_written_in_batches(make_host):
    """200 answers on one connection cost the worker about 200 writes, the
    answers themselves: its access lines go out a buffer at a time, not a
    write(2) each (which made the log cost a quarter of the throughput)."""
    h = make_host(workers=1).start()
    worker = h.worker_pids()[0]
    c = h.conn()
    assert hello(h, conn=c)[0] == 200
    before = syscw(worker)
    path = "/hello/batch-%d" % os.getpid()
    for _ in range(200):
        assert hello(h, path, conn=c)[0] == 200
    lines = h.access_lines(lambda e: e.get("path") == path, 200)
    assert len(lines) == 200
    writes = syscw(worker) - before
    # One write per answer, plus one per batch (a batch every 100 ms at
    # most, or per 64 KiB); a line per write would be 400.
    assert 200 <= writes <= 250, writes
    c.close()


def start_piped(h):
    """Start `h` with stderr a pipe (as under a log collector), read into
    h.piped by a thread."""
    h.piped = []
    h.logf = open(os.devnull, "wb")
    h.proc = subprocess.Popen(h.command(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)

    def pump():
        for chunk in iter(lambda: h.proc.stderr.read1(65536), b""):
            h.piped.append(chunk)
    h.pump = threading.Thread(target=pump, daemon=True)
    h.pump.start()
    h.log_text = lambda: b"".join(h.piped).decode("utf-8", "replace")
    h.wait_ready()


@pytest.mark.parametrize("sink", ["file", "pipe", "access_file"])
def test_lines_stay_whole_under_load(make_host, tmp_path, sink):
    """8 clients on 2 workers, long paths so that a batch spans many
    PIPE_BUF-sized writes: every line whole, none lost, none doubled."""
    config = {}
    if sink == "access_file":
        afile = str(tmp_path / "access.log")
        config = {"log": {"access": True, "access_file": afile}}
    h = make_host(workers=2, config=config)
    if sink == "pipe":
        start_piped(h)
    else:
        h.start()
    # Names up to 128 bytes: lines of ~350 bytes.
    base = "/hello/" + "x" * 100 + "-%d-" % os.getpid()

    def client(n):
        # A new connection every 10 requests: which worker accepts one is
        # the kernel's choice, and 48 connections reach both (all on one
        # worker: 1 in 2^47).
        got = []
        for j in range(6):
            c = h.conn()
            try:
                for i in range(10 * j, 10 * j + 10):
                    got.append(hello(h, "%s%d-%d" % (base, n, i), conn=c))
            finally:
                c.close()
        return got
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        answers = [a for got in ex.map(client, range(8)) for a in got]
    assert [a[0] for a in answers] == [200] * 480

    def text():
        if sink == "access_file":
            with open(afile) as f:
                return f.read()
        return h.log_text()

    def mine():
        return [e for e in parsed(text()) if e.get("msg") == "access"
                and e.get("path", "").startswith(base)]
    wait_for(lambda: len(mine()) >= 480, what="480 access lines")
    h.stop()
    if sink == "pipe":
        h.pump.join(10)
    lines = mine()
    assert len(lines) == 480
    assert sorted(e["rid"] for e in lines) == sorted(a[1] for a in answers)
    assert len({e["pid"] for e in lines}) == 2
    # every line, access or not, is whole
    parsed(text())
    parsed(h.log_text())
    if sink == "access_file":  # events stay on stderr, access lines not
        msgs = {e.get("msg") for e in parsed(h.log_text())}
        assert "worker ready" in msgs and "access" not in msgs


def test_sigterm_drain_writes_every_line(make_host):
    h = make_host(workers=2).start()
    path = "/hello/drain-%d" % os.getpid()
    # one request still in its handler when SIGTERM arrives
    slow = {}

    def later():
        slow["st"] = hello(h, "/hello/later?ms=400")[0]
    t = threading.Thread(target=later)
    t.start()
    for _ in range(30):
        assert hello(h, path)[0] == 200
    time.sleep(0.1)
    h.signal(signal.SIGTERM)  # lines of the last requests still buffered
    assert h.proc.wait(15) == 0
    t.join()
    assert slow["st"] == 200
    lines = parsed(h.log_text())
    assert len(access(lines, path)) == 30
    assert len(access(lines, "/hello/later")) == 1


def test_sighup_reload_writes_the_old_workers_lines(make_host):
    h = make_host(workers=2).start()
    old = set(h.worker_pids())
    path = "/hello/reload-%d" % os.getpid()
    for _ in range(30):
        assert hello(h, path)[0] == 200
    h.signal(signal.SIGHUP)

    def stopped():
        return {e.get("pid") for e in h.log_lines()
                if e.get("msg") == "worker stopped"}
    wait_for(lambda: old <= stopped(), what="the old workers to stop")
    # An old worker writes its access lines before "worker stopped".
    assert len(access(h.log_lines(), path)) == 30
    wait_for(lambda: not set(h.worker_pids()) & old, what="the new workers")
    new = set(h.worker_pids())
    for _ in range(10):
        assert hello(h, path)[0] == 200
    lines = h.access_lines(lambda e: e.get("path") == path, 40)
    assert len(lines) == 40 and {e["pid"] for e in lines[30:]} <= new


def test_kill_9_loses_at_most_the_buffered_lines(make_host):
    """Documented loss: a worker killed outright takes the lines it had not
    written (at most 100 ms worth) with it; what was written is whole."""
    h = make_host(workers=1).start()
    worker = h.worker_pids()[0]
    path = "/hello/kill-%d" % os.getpid()
    for _ in range(20):
        assert hello(h, path)[0] == 200
    assert len(h.access_lines(lambda e: e.get("path") == path, 20)) == 20
    c = h.conn()
    for _ in range(20):
        assert hello(h, path, conn=c)[0] == 200
    os.kill(worker, signal.SIGKILL)
    c.close()
    wait_for(lambda: h.worker_pids() and worker not in h.worker_pids(),
             what="the respawn")
    lines = access(parsed(h.log_text()), path)
    assert 20 <= len(lines) <= 40
    # the respawned worker logs as before
    assert hello(h, path)[0] == 200
    assert len(h.access_lines(lambda e: e.get("path") == path,
                              len(lines) + 1)) == len(lines) + 1


def test_access_file_is_reopened_on_sighup(make_host, tmp_path):
    afile = str(tmp_path / "access.log")
    h = make_host(workers=1,
                  config={"log": {"access": True, "access_file": afile}})
    h.start()
    path = "/hello/rotate-%d" % os.getpid()
    for _ in range(5):
        assert hello(h, path)[0] == 200
    wait_for(lambda: os.path.exists(afile) and
             len(access(parsed(open(afile).read()), path)) == 5,
             what="5 lines in the access file")
    assert os.stat(afile).st_mode & 0o777 == 0o640
    os.rename(afile, afile + ".1")  # rotate, then tell the host
    h.signal(signal.SIGHUP)
    h.wait_log(lambda e: e.get("msg", "").startswith("reloaded"))
    for _ in range(3):
        assert hello(h, path)[0] == 200
    wait_for(lambda: os.path.exists(afile) and
             len(access(parsed(open(afile).read()), path)) == 3,
             what="3 lines in the new access file")
    assert len(access(parsed(open(afile + ".1").read()), path)) == 5
    assert not access(parsed(h.log_text()), path)


def test_unwritable_access_file_is_refused(make_host, tmp_path):
    bad = str(tmp_path / "no-such-dir" / "access.log")
    h = make_host(workers=1, config={"log": {"access": True,
                                             "access_file": bad}})
    h.start(wait=False)
    assert h.proc.wait(15) == 1
    assert h.log_text().splitlines() == [
        "nno: cannot open the access log file %s: No such file or directory"
        % bad,
        "hint: give log.access_file a path this user can write, or leave it "
        "empty for stderr"]


def test_reload_to_an_unwritable_access_file_keeps_the_running_one(
        make_host, tmp_path):
    afile = str(tmp_path / "access.log")
    h = make_host(workers=1,
                  config={"log": {"access": True, "access_file": afile}})
    h.start()
    workers = h.worker_pids()
    with open(h.config_path) as f:
        cfg = json.load(f)
    cfg["log"]["access_file"] = str(tmp_path / "no-such-dir" / "a.log")
    with open(h.config_path, "w") as f:
        json.dump(cfg, f)
    h.signal(signal.SIGHUP)
    h.wait_log(lambda e: e.get("msg") == "reload refused, keeping the "
               "running configuration")
    assert h.worker_pids() == workers
    path = "/hello/kept-%d" % os.getpid()
    assert hello(h, path)[0] == 200
    wait_for(lambda: len(access(parsed(open(afile).read()), path)) == 1,
             what="the line in the running access file")
