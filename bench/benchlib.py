#!/usr/bin/env python3
"""Helpers for bench/gateway.sh (standard library only).

  benchlib.py freeport                 print a free loopback TCP port
  benchlib.py cpu PID                  CPU seconds (user+system) used so far by
                                       PID and all its live descendants, plus
                                       the children it has already reaped
  benchlib.py tree PID                 PID and its live descendants, one a line
  benchlib.py wrk FILE                 parse wrk --latency output into
                                       "requests secs rps p99_ms non2xx sockerr"
  benchlib.py get URL [HEADER...]      one GET; print "STATUS" then the
                                       response headers, lower-cased, "k: v"
  benchlib.py burst N URL [HEADER...]  N GETs on one keep-alive connection
                                       as fast as possible; print the statuses
  benchlib.py count N URL [HEADER...]  N GETs on one keep-alive connection,
                                       one at a time, over a raw socket (a
                                       fixed request count for per-request
                                       counts); exits 1 on any non-200
  benchlib.py keys N                   N random API keys shaped like nno's
                                       ("nnok_" + 16 hex + "_" + 43 base64url)
  benchlib.py jsonget FIELD            print FIELD of the JSON object on stdin
  benchlib.py report FILE BASE [PEER...]
                                       per-round table, medians and ratios
                                       from the result lines in FILE
  benchlib.py ratio FILE A B           per-round and median ratios A / B only
  benchlib.py targets FILE NNO PEER    the full chain's targets against PEER:
                                       met or missed, from the medians
"""
import base64
import http.client
import json
import os
import re
import secrets
import socket
import statistics
import sys
import urllib.parse

CLK = os.sysconf("SC_CLK_TCK")


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    ppid = int(rest[4 - 3])
    own = int(rest[14 - 3]) + int(rest[15 - 3])
    reaped = int(rest[16 - 3]) + int(rest[17 - 3])
    return ppid, own, reaped


def tree(root):
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st:
            children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu(root):
    """Seconds of CPU used by root and every live descendant, plus what
    root has reaped (a worker that exited during a run still counts)."""
    ticks = 0
    for i, pid in enumerate(tree(root)):
        st = _stat(pid)
        if st is None:
            continue
        ticks += st[1]
        if i == 0:
            ticks += st[2]
    return ticks / CLK


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError("bad wrk duration %r" % text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(path):
    with open(path) as f:
        out = f.read()
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m),", out, re.M)
    if not m:
        raise SystemExit("benchlib: cannot parse wrk output:\n" + out)
    requests = int(m.group(1))
    secs = _ms(m.group(2) + m.group(3)) / 1000.0
    rps = float(re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M).group(1))
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    p99 = _ms(p99.group(1)) if p99 else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    non2xx = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)", out)
    sockerr = sum(int(x) for x in sock.groups()) if sock else 0
    return requests, secs, rps, p99, non2xx, sockerr


def _conn(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    return c, path


def _headers(args):
    h = {}
    for a in args:
        k, _, v = a.partition(":")
        h[k.strip()] = v.strip()
    return h


def get(url, hdrs):
    c, path = _conn(url)
    try:
        c.request("GET", path, headers=_headers(hdrs))
        r = c.getresponse()
        r.read()
        print(r.status)
        for k, v in r.getheaders():
            print("%s: %s" % (k.lower(), v))
    finally:
        c.close()


def burst(n, url, hdrs):
    c, path = _conn(url)
    h = _headers(hdrs)
    out = []
    try:
        for _ in range(n):
            c.request("GET", path, headers=h)
            r = c.getresponse()
            r.read()
            out.append(str(r.status))
    finally:
        c.close()
    print(" ".join(out))


def count(n, url, hdrs):
    u = urllib.parse.urlsplit(url)
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
        path, u.netloc, "".join(h + "\r\n" for h in hdrs))).encode()
    s = socket.create_connection((u.hostname, u.port or 80))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    for _ in range(n):
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise SystemExit("count: the server closed the connection")
            buf += d
        head, _, buf = buf.partition(b"\r\n\r\n")
        status = head[9:12]
        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        size = int(m.group(1)) if m else 0
        while len(buf) < size:
            d = s.recv(65536)
            if not d:
                raise SystemExit("count: the server closed the connection")
            buf += d
        buf = buf[size:]
        if status != b"200":
            raise SystemExit("count: status %s" % status.decode())
    s.close()


def _fmt_k(x):
    return "%.1fk" % (x / 1000.0)


def _rows(path):
    """Result lines: "round server rps p99_ms cpu_s req_per_cpu"."""
    rows = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 6:
                continue
            rnd, srv = int(p[0]), p[1]
            rows.setdefault(srv, {})[rnd] = tuple(float(x) for x in p[2:])
    return rows


def _ratios(rows, rounds, base, peer):
    print("ratio %s / %s (req/s, req/CPU-s: > 1 favours %s; "
          "p99: < 1 favours %s):" % (base, peer, base, base))
    print("%6s %8s %8s %10s" % ("round", "req/s", "p99", "req/CPU-s"))
    ratios = []
    for r in rounds:
        if r in rows[base] and r in rows[peer]:
            b, q = rows[base][r], rows[peer][r]
            rr = (b[0] / q[0] if q[0] else float("nan"),
                  b[1] / q[1] if q[1] else float("nan"),
                  b[3] / q[3] if q[3] else float("nan"))
            ratios.append(rr)
            print("%6d %8.3f %8.3f %10.3f" % ((r,) + rr))
    if ratios:
        med = [statistics.median(x[i] for x in ratios) for i in range(3)]
        print("%6s %8.3f %8.3f %10.3f" % (("median",) + tuple(med)))


def ratio(path, a, b):
    rows = _rows(path)
    if a in rows and b in rows:
        _ratios(rows, sorted(set(rows[a]) & set(rows[b])), a, b)


def report(path, base, peers):
    rows = _rows(path)
    if not rows:
        print("no results")
        return
    servers = list(rows)
    rounds = sorted({r for s in rows.values() for r in s})
    hdr = "%-14s %10s %9s %8s %12s" % ("server", "req/s", "p99 ms",
                                        "CPU s", "req/CPU-s")
    print("medians over %d round(s):" % len(rounds))
    print(hdr)
    for s in servers:
        v = list(rows[s].values())
        med = [statistics.median(x[i] for x in v) for i in range(4)]
        print("%-14s %10s %9.2f %8.2f %12s" %
              (s, _fmt_k(med[0]), med[1], med[2], _fmt_k(med[3])))
    if base not in rows:
        return
    for peer in peers:
        if peer not in rows or peer == base:
            continue
        print()
        _ratios(rows, rounds, base, peer)


TARGET_RPC = 100000.0  # requests per server CPU-second


def targets(path, nno, peer):
    """The full chain's targets, from the medians of the per-round ratios
    (req/s, p99) and of nno's req/CPU-s."""
    rows = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 6:
                rows.setdefault(p[1], {})[int(p[0])] = [float(x) for x in p[2:]]
    if nno not in rows or peer not in rows:
        return
    rounds = sorted(set(rows[nno]) & set(rows[peer]))
    if not rounds:
        return
    rps = statistics.median(rows[nno][r][0] / rows[peer][r][0] for r in rounds)
    p99 = statistics.median(rows[nno][r][1] / rows[peer][r][1] for r in rounds)
    rpc = statistics.median(rows[nno][r][3] for r in rounds)
    print("targets (%s against %s, medians):" % (nno, peer))
    for ok, what in (
            (rps >= 1.0, "req/s >= 1.0x %s: %.3fx" % (peer, rps)),
            (rpc >= TARGET_RPC, "req per server CPU-s >= %s: %s"
             % (_fmt_k(TARGET_RPC), _fmt_k(rpc))),
            (p99 <= 1.0, "p99 no worse than %s: %.3fx" % (peer, p99))):
        print("  %-7s %s" % ("met" if ok else "MISSED", what))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        print(freeport())
    elif cmd == "cpu":
        print("%.2f" % cpu(int(args[0])))
    elif cmd == "tree":
        print("\n".join(str(p) for p in tree(int(args[0]))))
    elif cmd == "wrk":
        r = parse_wrk(args[0])
        print("%d %.3f %.1f %.3f %d %d" % r)
    elif cmd == "get":
        get(args[0], args[1:])
    elif cmd == "burst":
        burst(int(args[0]), args[1], args[2:])
    elif cmd == "count":
        count(int(args[0]), args[1], args[2:])
    elif cmd == "keys":
        for _ in range(int(args[0])):
            secret = base64.urlsafe_b64encode(secrets.token_bytes(32))
            print("nnok_%s_%s" % (secrets.token_hex(8),
                                  secret.decode().rstrip("=")))
    elif cmd == "jsonget":
        print(json.load(sys.stdin)[args[0]])
    elif cmd == "targets":
        targets(args[0], args[1], args[2])
    elif cmd == "report":
        report(args[0], args[1], args[2:])
    elif cmd == "ratio":
        ratio(args[0], args[1], args[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
