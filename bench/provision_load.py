#!/usr/bin/env python3
"""Helpers for bench/provision.sh (standard library only).

  provision_load.py create URL KEYFILE N STACKS
        create platforms prov-00001..prov-N one after another on one
        keep-alive connection, each with the stacks STACKS (comma-separated,
        "" for none) activated in the same call, timing each call; prints
        the latency distribution and a last line
        "RESULT n median_ms p90_ms p99_ms max_ms per_s"
  provision_load.py delete URL KEYFILE N
        delete them again, one after another; same output
  provision_load.py check URL KEYFILE N
        every platform lists its resources, all "ready"; prints
        "RESULT resources_per_platform"
"""
import statistics
import sys
import time

import registry_load as rl


def pid(i):
    return "prov-%05d" % i


def summary(lat, wall):
    lat = sorted(lat)
    n = len(lat)

    def q(f):
        return lat[min(n - 1, int(f * n))]

    med = statistics.median(lat)
    print("  %d calls in %.2f s: median %.2f ms, p90 %.2f, p99 %.2f, max %.2f"
          % (n, wall, med, q(0.90), q(0.99), lat[-1]))
    print("RESULT %d %.3f %.3f %.3f %.3f %.1f"
          % (n, med, q(0.90), q(0.99), lat[-1], n / wall))


def create(url, keyfile, n, stacks):
    c = rl.Client(url + "/api/v1", rl.read_key(keyfile))
    names = [s for s in stacks.split(",") if s]
    lat = []
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        body = {"id": pid(i), "name": "Provisioned %d" % i}
        if names:
            body["stacks"] = names
        s = time.perf_counter()
        st, out = c.call("POST", "/platforms", body)
        lat.append((time.perf_counter() - s) * 1000)
        if st != 201:
            raise SystemExit("provision_load: create %s answered %d: %s"
                             % (pid(i), st, out[:300]))
    summary(lat, time.perf_counter() - t0)


def delete(url, keyfile, n):
    c = rl.Client(url + "/api/v1", rl.read_key(keyfile))
    lat = []
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        s = time.perf_counter()
        st, out = c.call("DELETE", "/platforms/" + pid(i))
        lat.append((time.perf_counter() - s) * 1000)
        if st not in (200, 204):
            raise SystemExit("provision_load: delete %s answered %d: %s"
                             % (pid(i), st, out[:300]))
    summary(lat, time.perf_counter() - t0)


def check(url, keyfile, n):
    import json
    c = rl.Client(url + "/api/v1", rl.read_key(keyfile))
    per = None
    for i in range(1, n + 1):
        st, out = c.call("GET", "/platforms/%s/resources?limit=100" % pid(i))
        if st != 200:
            raise SystemExit("provision_load: resources of %s answered %d"
                             % (pid(i), st))
        items = json.loads(out)["items"]
        bad = [r for r in items if r.get("state") != "ready"]
        if bad:
            raise SystemExit("provision_load: %s has resources not ready: %s"
                             % (pid(i), bad))
        if per is None:
            per = len(items)
        elif per != len(items):
            raise SystemExit("provision_load: %s has %d resources, not %d"
                             % (pid(i), len(items), per))
    print("RESULT %d" % per)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "create" and len(argv) == 6:
        create(argv[2], argv[3], int(argv[4]), argv[5])
    elif cmd == "delete" and len(argv) == 5:
        delete(argv[2], argv[3], int(argv[4]))
    elif cmd == "check" and len(argv) == 5:
        check(argv[2], argv[3], int(argv[4]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
