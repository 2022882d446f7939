#!/usr/bin/env python3
"""Helpers for bench/registry.sh (standard library only).

  registry_load.py ready URL                 wait until URL/readyz answers 200
  registry_load.py workers URL               the worker pids from URL/healthz
  registry_load.py create URL KEYFILE N TENANTS THREADS
        create platforms plat-00001..plat-N (N zero-padded to 5 digits) with
        TENANTS tenants each (a shallow tree: t-00 is the root, t-i's parent
        is t-((i-1)/3)) through the operator API, THREADS threads each on one
        keep-alive connection; prints the totals and a last line
        "RESULT secs platforms tenants creates_per_s platforms_per_s"
  registry_load.py list URL KEYFILE PAGE EXPECTED
        page through every platform, PAGE rows a page; checks the ids come
        in order, once each, EXPECTED of them; prints
        "RESULT secs pages rows pages_per_s rows_per_s"
  registry_load.py activate URL KEYFILE STACK ID...
        activate STACK on each platform ID, move it to plan "unmetered" (the
        rate limit never fires), create an API key of scope
        features:hello:read, check /p/ID/hello answers 200 with it; prints
        "KEY ID KEY" per platform
  registry_load.py pid-of N                  the id of platform #N
  registry_load.py rss PID...                "PID VmRSS-KiB" per live process
  registry_load.py wrk FILE                  "rps p50_ms p99_ms requests
                                              non2xx sockerr" of wrk --latency
  registry_load.py report FILE               medians of "round label rps p50
                                              p99" lines and the ratios
"""
import http.client
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402  (parse_wrk's duration units)


def platform_id(n):
    return "plat-%05d" % n


class Client:
    """One keep-alive connection to the operator API; reconnects once on a
    dropped connection."""

    def __init__(self, url, key):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.base = u.path.rstrip("/")
        self.key = key
        self.c = None

    def call(self, method, path, body=None):
        hdrs = {"Authorization": "Bearer " + self.key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port,
                                                    timeout=30)
            try:
                self.c.request(method, self.base + path, body=data,
                               headers=hdrs)
                r = self.c.getresponse()
                out = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, out
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.CannotSendRequest):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def read_key(path):
    with open(path) as f:
        return f.read().strip()


def get_json(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
    try:
        c.request("GET", u.path)
        r = c.getresponse()
        body = r.read()
        return r.status, (json.loads(body) if body else None)
    finally:
        c.close()


def ready(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get_json(url + "/readyz")[0] == 200:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise SystemExit("registry_load: %s not ready after %ds" % (url, timeout))


def workers(url):
    st, body = get_json(url + "/healthz")
    if st != 200:
        raise SystemExit("registry_load: /healthz answered %d" % st)
    print(" ".join(str(p) for p in body["workers"]))


def tenant_parent(i):
    return None if i == 0 else "t-%02d" % ((i - 1) // 3)


def create(url, keyfile, n, tenants, nthreads):
    key = read_key(keyfile)
    todo = list(range(1, n + 1))
    lock = threading.Lock()
    counts = {"platforms": 0, "tenants": 0}
    errors = []

    def work(mine):
        c = Client(url + "/api/v1", key)
        p = t = 0
        for i in mine:
            pid = platform_id(i)
            st, body = c.call("POST", "/platforms",
                              {"id": pid, "name": "Platform %d" % i})
            if st != 201:
                errors.append((pid, st, body[:200]))
                return
            p += 1
            for j in range(tenants):
                body = {"id": "t-%02d" % j, "name": "Tenant %d" % j}
                if tenant_parent(j):
                    body["parent"] = tenant_parent(j)
                st, out = c.call("POST", "/platforms/%s/tenants" % pid, body)
                if st != 201:
                    errors.append((pid + "/" + body["id"], st, out[:200]))
                    return
                t += 1
            if errors:
                return
        with lock:
            counts["platforms"] += p
            counts["tenants"] += t

    threads = [threading.Thread(target=work, args=(todo[k::nthreads],))
               for k in range(nthreads)]
    t0 = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    secs = time.time() - t0
    if errors:
        raise SystemExit("registry_load: create failed: %r" % errors[:5])
    total = counts["platforms"] + counts["tenants"]
    print("created %d platforms and %d tenants (%d POSTs) in %.1f s with %d "
          "threads: %.0f creates/s, %.0f platforms/s (each with %d tenants)" %
          (counts["platforms"], counts["tenants"], total, secs, nthreads,
           total / secs, counts["platforms"] / secs, tenants))
    print("RESULT %.3f %d %d %.1f %.1f" % (secs, counts["platforms"],
                                           counts["tenants"], total / secs,
                                           counts["platforms"] / secs))


def list_all(url, keyfile, page, expected):
    c = Client(url + "/api/v1", read_key(keyfile))
    cursor, pages, rows, last = None, 0, 0, ""
    t0 = time.time()
    while True:
        q = "/platforms?limit=%d" % page
        if cursor is not None:
            q += "&cursor=" + urllib.parse.quote(cursor, safe="")
        st, body = c.call("GET", q)
        if st != 200:
            raise SystemExit("registry_load: %s answered %d: %r" %
                             (q, st, body[:200]))
        doc = json.loads(body)
        pages += 1
        for item in doc["items"]:
            if item["id"] <= last:
                raise SystemExit("registry_load: list out of order at %r"
                                 % item["id"])
            last = item["id"]
        rows += len(doc["items"])
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    secs = time.time() - t0
    if rows != expected:
        raise SystemExit("registry_load: listed %d platforms, expected %d" %
                         (rows, expected))
    print("listed %d platforms in %d pages of %d in %.2f s: %.1f pages/s, "
          "%.0f rows/s" % (rows, pages, page, secs, pages / secs, rows / secs))
    print("RESULT %.3f %d %d %.2f %.1f" % (secs, pages, rows, pages / secs,
                                           rows / secs))


def activate(url, keyfile, stack, ids):
    c = Client(url + "/api/v1", read_key(keyfile))
    for pid in ids:
        # The plan first: a PATCH alone does not reach the workers' routing
        # tables (where the rate limit reads the plan); the activation
        # after it reloads the platform, plan included.
        st, body = c.call("PATCH", "/platforms/%s" % pid,
                          {"plan": "unmetered"})
        if st != 200:
            raise SystemExit("registry_load: plan of %s: %d %r" %
                             (pid, st, body[:200]))
        st, body = c.call("POST", "/platforms/%s/stacks" % pid,
                          {"stack": stack})
        if st not in (200, 201):
            raise SystemExit("registry_load: activating %s on %s: %d %r" %
                             (stack, pid, st, body[:200]))
        st, body = c.call("POST", "/platforms/%s/keys" % pid,
                          {"name": "bench", "scopes": ["features:hello:read"]})
        if st != 201:
            raise SystemExit("registry_load: key of %s: %d %r" %
                             (pid, st, body[:200]))
        key = json.loads(body)["key"]
        u = urllib.parse.urlsplit(url)
        h = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        h.request("GET", "/p/%s/hello" % pid,
                  headers={"Authorization": "Bearer " + key})
        r = h.getresponse()
        r.read()
        h.close()
        if r.status != 200:
            raise SystemExit("registry_load: /p/%s/hello answered %d after "
                             "activation" % (pid, r.status))
        limit = r.getheader("RateLimit-Limit", "")
        if limit != "10000000":
            raise SystemExit("registry_load: /p/%s/hello: RateLimit-Limit %r, "
                             "not unmetered's 10000000" % (pid, limit))
        print("activated %s on %s (plan unmetered, one API key)" %
              (stack, pid))
        print("KEY %s %s" % (pid, key))


def rss(pids):
    for pid in pids:
        try:
            with open("/proc/%s/status" % pid) as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
            print("%s %s" % (pid, m.group(1) if m else "?"))
        except OSError:
            print("%s gone" % pid)


def parse_wrk(path):
    requests, secs, rps, p99, non2xx, sockerr = benchlib.parse_wrk(path)
    with open(path) as f:
        out = f.read()
    m = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p50 = benchlib._ms(m.group(1)) if m else float("nan")
    print("%.1f %.3f %.3f %d %d %d" % (rps, p50, p99, requests, non2xx,
                                       sockerr))


def report(path):
    """Lines: round label rps p50 p99 -> medians per label and the ratios
    of the second label to the first, per round and their median."""
    rows = {}
    labels = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 5:
                continue
            if p[1] not in labels:
                labels.append(p[1])
            rows.setdefault(p[1], {})[int(p[0])] = tuple(float(x)
                                                          for x in p[2:])
    print("medians over %d round(s):" % max(len(v) for v in rows.values()))
    print("%-12s %10s %9s %9s" % ("platform", "req/s", "p50 ms", "p99 ms"))
    for lab in labels:
        v = list(rows[lab].values())
        med = [statistics.median(x[i] for x in v) for i in range(3)]
        print("%-12s %10.0f %9.3f %9.3f" % (lab, med[0], med[1], med[2]))
    if len(labels) < 2:
        return
    a, b = labels[0], labels[1]
    print()
    print("ratio %s / %s (req/s: 1.0 = no cost for the higher index; "
          "p50, p99: 1.0 = same latency):" % (b, a))
    print("%6s %8s %8s %8s" % ("round", "req/s", "p50", "p99"))
    ratios = []
    for r in sorted(set(rows[a]) & set(rows[b])):
        x, y = rows[a][r], rows[b][r]
        rr = tuple(y[i] / x[i] if x[i] else float("nan") for i in range(3))
        ratios.append(rr)
        print("%6d %8.3f %8.3f %8.3f" % ((r,) + rr))
    if ratios:
        med = [statistics.median(x[i] for x in ratios) for i in range(3)]
        print("%6s %8.3f %8.3f %8.3f" % (("median",) + tuple(med)))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, a = argv[1], argv[2:]
    if cmd == "ready":
        ready(a[0])
    elif cmd == "workers":
        workers(a[0])
    elif cmd == "create":
        create(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
    elif cmd == "list":
        list_all(a[0], a[1], int(a[2]), int(a[3]))
    elif cmd == "activate":
        activate(a[0], a[1], a[2], a[3:])
    elif cmd == "pid-of":
        print(platform_id(int(a[0])))
    elif cmd == "rss":
        rss(a)
    elif cmd == "wrk":
        parse_wrk(a[0])
    elif cmd == "report":
        report(a[0])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
