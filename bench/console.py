#!/usr/bin/env python3
"""Page weight and time to interactive of the console shell, in Debian's
chromium, headless (run by hand, never by `make test`; bench/README.md).

  bench/console.py [--build DIR] [--runs N] [--workers N] [--no-access-log]
                   [--keep]

Starts `nno serve` from DIR (default build/) in a temporary folder with the
platform `bench` (default stack, sign-up on, one user), then, N times, each
with a fresh browser profile:

  sign-in  first   the console URL, nothing cached
  sign-in  cached  the same URL again in the same browser
  notes    first   #/notes signed in, the HTTP cache emptied after sign-in
  notes    cached  #/notes again in the same browser

For each it reads, from the page's Performance API, the bytes transferred
(`transferSize`: headers and bodies on the wire, 0 for what the cache
answered alone) and decoded (`decodedBodySize`), the number of requests
(the document and every resource entry: scripts, styles, images, fetch()
calls), and the time from navigation start to the shell's readiness mark
(`data-shell="ready"` on <html>, seen by an observer installed before the
page's own scripts). Prints the median of each, and the fastest and slowest
time to interactive.
"""
import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Records when the shell sets data-shell="ready", in ms since navigation
# start (performance.now()'s origin), before any script of the page runs.
READY_PROBE = """
(function () {
  function check() {
    var root = document.documentElement;
    if (root && root.dataset.shell === 'ready' &&
        window.__nnoReady === undefined)
      window.__nnoReady = performance.now();
  }
  // The document may have no <html> yet when this runs: watch it whole.
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, attributes: true,
    attributeFilter: ['data-shell']});
  check();
})();
"""

MEASURE = """
var nav = performance.getEntriesByType('navigation')[0];
var res = performance.getEntriesByType('resource');
var out = {requests: 1 + res.length, transferred: nav.transferSize,
           decoded: nav.decodedBodySize, ready_ms: window.__nnoReady};
res.forEach(function (r) {
  out.transferred += r.transferSize; out.decoded += r.decodedBodySize;
});
return out;
"""


def measure(b, url, route_css):
    """Navigate to `url`, wait for readiness (and `route_css` if given),
    return the page's figures."""
    b.get(url)
    b.ready()
    if route_css:
        b.wait(route_css)
    b.until(lambda d: d.execute_script(
        "return window.__nnoReady !== undefined"), "the ready probe")
    return b.driver.execute_script(MEASURE)


def one_run(e2e, host, pid, email):
    profile = tempfile.mkdtemp(prefix="nno-bench-profile-")
    b = e2e.Browser(host, profile)
    try:
        b.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                 {"source": READY_PROBE})
        url = b.console_url(pid)
        rows = {("sign-in", "first"): measure(b, url, "form#sign-in")}
        b.driver.get("about:blank")  # a new navigation, not a reload
        rows[("sign-in", "cached")] = measure(b, url, "form#sign-in")
        b.sign_in(email)
        b.signed_in(email)
        b.driver.get("about:blank")
        b.driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        notes = b.console_url(pid, "/notes")
        view = '#view[data-route="/notes"]'
        rows[("notes", "first")] = measure(b, notes, view)
        b.driver.get("about:blank")
        rows[("notes", "cached")] = measure(b, notes, view)
        return rows
    finally:
        b.quit()
        shutil.rmtree(profile, ignore_errors=True)


def kib(n):
    return "%.1f" % (n / 1024.0)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-access-log", action="store_true",
                    help="turn the access log off (on by default, as the "
                         "host's own default)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder (host log, data)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    os.environ["NNO_BUILD"] = os.path.abspath(args.build)
    e2e = _load("nno_e2e_harness",
                os.path.join(SOURCE, "tests", "e2e", "conftest.py"))

    tmp = tempfile.mkdtemp(prefix="nno-bench-console-")
    host = e2e.Host(tmp, workers=args.workers, core=True,
                    config={"log": {"access": not args.no_access_log}})
    host.start()
    try:
        pid, email = "bench", "bench@example.com"
        e2e.make_platform(host, pid, name="Bench")
        e2e.sign_up(host, pid, email)
        runs = []
        for i in range(args.runs):
            runs.append(one_run(e2e, host, pid, email))
            print("run %d/%d done" % (i + 1, args.runs), file=sys.stderr)
    except BaseException:
        print("host log: %s" % host.log_path, file=sys.stderr)
        args.keep = True
        raise
    finally:
        host.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept %s" % tmp, file=sys.stderr)

    print("console shell, %d run(s), medians (chromium %s, %d workers)"
          % (args.runs, "headless", args.workers))
    head = ("page", "load", "requests", "KiB on wire", "KiB decoded",
            "ready ms", "min-max ms")
    fmt = "%-8s %-7s %9s %12s %12s %9s %13s"
    print(fmt % head)
    for key in (("sign-in", "first"), ("sign-in", "cached"),
                ("notes", "first"), ("notes", "cached")):
        vals = [r[key] for r in runs]

        def med(f):
            return statistics.median(v[f] for v in vals)

        times = [v["ready_ms"] for v in vals]
        print(fmt % (key[0], key[1], "%g" % med("requests"),
                     kib(med("transferred")), kib(med("decoded")),
                     "%.0f" % statistics.median(times),
                     "%.0f-%.0f" % (min(times), max(times))))
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump([{"%s %s" % k: v for k, v in r.items()} for r in runs],
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
