#!/usr/bin/env python3
"""Helpers for bench/swap.sh (standard library only).

  swap_load.py setup URL KEYFILE PLATFORM VERSION
        create PLATFORM (plan "unmetered", no stack) and activate the
        fixture stack "ver" at VERSION on it; check GET /p/PLATFORM/ver
        answers that version
  swap_load.py reach URL KEYFILE PLATFORM N
        N version swaps (2.0.0, 1.0.0, ...), each timed: the activation
        call, and when every worker first answers the new version. One
        keep-alive connection per worker (found from the pid in the
        answers) polls GET /p/PLATFORM/ver from the moment the call is
        sent. Prints one line per swap, the medians and maxima, and
        "RESULT api_ms_median all_ms_median after_ms_median after_ms_max"
        (all: from sending the call to the last worker's first answer of
        the new version; after: from the call's answer to that moment, 0
        when every worker already served it)
  swap_load.py swapper URL KEYFILE PLATFORM INTERVAL_MS SECONDS
        swap the version every INTERVAL_MS for SECONDS (the load of
        swap.sh's "swapping" runs); prints "SWAPS n api_ms_median" and
        fails on any answer but 200
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

HERE = __import__("os").path.dirname(__import__("os").path.abspath(__file__))
sys.path.insert(0, HERE)
from registry_load import Client, get_json, read_key  # noqa: E402


def hostport(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port or 80


def ver_get(conn, platform):
    """(version, worker pid) of one GET /p/PLATFORM/ver on `conn`."""
    conn.request("GET", "/p/%s/ver" % platform)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit("swap_load: /p/%s/ver answered %d: %r" %
                         (platform, r.status, body[:200]))
    doc = json.loads(body)
    if r.getheader("X-Stack-Version") != doc["version"]:
        raise SystemExit("swap_load: header and body disagree: %r" % doc)
    return doc["version"], doc["pid"]


def activate(c, platform, version):
    st, out = c.call("POST", "/platforms/%s/stacks" % platform,
                     {"stack": "ver", "version": version})
    if st not in (200, 201):
        raise SystemExit("swap_load: activating ver %s answered %d: %r" %
                         (version, st, out[:300]))


def setup(url, keyfile, platform, version):
    c = Client(url + "/api/v1", read_key(keyfile))
    st, out = c.call("POST", "/platforms", {"id": platform, "name": platform,
                                            "plan": "unmetered"})
    if st != 201:
        raise SystemExit("swap_load: creating %s answered %d: %r" %
                         (platform, st, out[:300]))
    activate(c, platform, version)
    conn = http.client.HTTPConnection(*hostport(url), timeout=10)
    v, _ = ver_get(conn, platform)
    if v != version:
        raise SystemExit("swap_load: %s serves %s, not %s" %
                         (platform, v, version))
    print("platform %s on ver %s" % (platform, version))


def worker_conns(url, platform):
    """One keep-alive connection per worker: {pid: connection}."""
    st, body = get_json(url + "/healthz")
    want = set(body["workers"])
    conns, spare = {}, []
    for _ in range(200):
        if set(conns) >= want:
            break
        c = http.client.HTTPConnection(*hostport(url), timeout=10)
        _, pid = ver_get(c, platform)
        if pid in conns:
            spare.append(c)
        else:
            conns[pid] = c
    for c in spare:
        c.close()
    if set(conns) < want:
        raise SystemExit("swap_load: no connection reached workers %s" %
                         sorted(want - set(conns)))
    return conns


def reach(url, keyfile, platform, n):
    c = Client(url + "/api/v1", read_key(keyfile))
    conns = worker_conns(url, platform)
    current, _ = ver_get(next(iter(conns.values())), platform)
    rows = []
    print("%5s %8s %10s %10s %12s" % ("swap", "to", "api ms", "all ms",
                                      "after ms"))
    for i in range(n):
        target = "1.0.0" if current == "2.0.0" else "2.0.0"
        first = {}
        go = threading.Event()

        def poll(pid, conn):
            go.wait()
            while True:
                v, p = ver_get(conn, platform)
                if p != pid:
                    raise SystemExit("swap_load: connection changed worker")
                if v == target:
                    first[pid] = time.monotonic()
                    return

        threads = [threading.Thread(target=poll, args=kv, daemon=True)
                   for kv in conns.items()]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        go.set()
        activate(c, platform, target)
        e = time.monotonic()
        for t in threads:
            t.join(30)
        if len(first) != len(conns):
            raise SystemExit("swap_load: a worker never served %s" % target)
        last = max(first.values())
        row = ((e - t0) * 1000, (last - t0) * 1000, max(0.0, last - e) * 1000)
        rows.append(row)
        print("%5d %8s %10.2f %10.2f %12.3f" % ((i + 1, target) + row))
        current = target
        time.sleep(0.2)
    med = [statistics.median(r[k] for r in rows) for k in range(3)]
    mx = [max(r[k] for r in rows) for k in range(3)]
    print("%5s %8s %10.2f %10.2f %12.3f" % (("median", "") + tuple(med)))
    print("%5s %8s %10.2f %10.2f %12.3f" % (("max", "") + tuple(mx)))
    print("RESULT %.3f %.3f %.3f %.3f" % (med[0], med[1], med[2], mx[2]))


def swapper(url, keyfile, platform, interval_ms, seconds):
    c = Client(url + "/api/v1", read_key(keyfile))
    conn = http.client.HTTPConnection(*hostport(url), timeout=10)
    current, _ = ver_get(conn, platform)
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        target = "1.0.0" if current == "2.0.0" else "2.0.0"
        t0 = time.monotonic()
        activate(c, platform, target)
        lat.append((time.monotonic() - t0) * 1000)
        current = target
        time.sleep(max(0.0, interval_ms / 1000 - (time.monotonic() - t0)))
    print("SWAPS %d %.3f" % (len(lat), statistics.median(lat) if lat else 0))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, a = argv[1], argv[2:]
    if cmd == "setup":
        setup(a[0], a[1], a[2], a[3])
    elif cmd == "reach":
        reach(a[0], a[1], a[2], int(a[3]))
    elif cmd == "swapper":
        swapper(a[0], a[1], a[2], int(a[3]), float(a[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
