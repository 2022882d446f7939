"""Installing and removing stack archives on a running host.

A fixture stack "inst" (one package answering its version on GET
/inst/version) is compiled here at several versions and packed with
`nno stack pack`; archives go in through the operator API (uploaded, or
fetched from a URL on a loopback HTTP server) and the CLI. Checked: every
worker serves a new version without a reload; a version in use cannot be
removed; checksums, signatures and trusted keys; a version removed or
modified behind the host's back answers 503 naming it; and a host killed
at any moment of an install comes back with that version whole or absent.
"""
import hashlib
import http.server
import json
import os
import shutil
import signal
import socketserver
import subprocess
import threading
import time

import pytest

from conftest import BUILD, NNO, SOURCE

INCLUDE = os.path.join(SOURCE, "plugin-api", "include")

PKG_C = r"""
#include <string.h>
#include <nno/plugin.h>

static const nno_host_api *api;
static nno_plugin *self;

static int on_version(nno_req *r, void *ud) {
  (void)ud;
  api->res_status(r, 200);
  api->res_header(r, "X-Inst-Version", VERSION);
  api->res_write(r, VERSION, strlen(VERSION));
  return NNO_OK;
}

/* Answers its version after 1.5 s (asynchronously). */
static void slow_done(nno_timer *t, void *ud) {
  (void)t;
  nno_req *r = ud;
  on_version(r, NULL);
  api->res_end(r);
}

static int on_slow(nno_req *r, void *ud) {
  (void)ud;
  nno_timer *t;
  return api->timer_start(self, 1500, 0, slow_done, r, &t) ? NNO_EIO
                                                           : NNO_ASYNC;
}

static int init(nno_plugin *p, const nno_host_api *a) {
  api = a;
  self = p;
  int rc = api->route_add(p, "GET", "/inst/version", on_version, NULL);
  return rc ? rc : api->route_add(p, "GET", "/inst/slow", on_slow, NULL);
}

NNO_PLUGIN(.name = "inst", .version = VERSION, .kind = NNO_KIND_FEATURE,
           .on_plugin_init = init)
"""


def sh(*args, check=True, env=None):
    p = subprocess.run(list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def make_stack(root, version, pad=0):
    """The stack folder inst/{version} under `root`, compiled; `pad` bytes
    of incompressible data in the object make a larger archive."""
    top = os.path.join(root, "inst", version)
    pkg = os.path.join(top, "packages", "inst")
    os.makedirs(pkg)
    src = os.path.join(pkg, "inst.c")
    with open(src, "w") as f:
        f.write(PKG_C)
        if pad:
            f.write("const unsigned char inst_pad[] = {%s};\n" % ",".join(
                str(b) for b in os.urandom(pad)))
    sh("cc", "-shared", "-fPIC", "-Wall", "-Werror", "-I", INCLUDE,
       '-DVERSION="%s"' % version, src, "-o", os.path.join(pkg, "libinst.so"))
    os.unlink(src)
    with open(os.path.join(pkg, "package.json"), "w") as f:
        json.dump({"name": "inst", "version": version, "abi": "1.5",
                   "kind": "feature", "library": "libinst.so",
                   "routes": [{"method": "GET", "path": "/inst/version"},
                              {"method": "GET", "path": "/inst/slow"}]}, f)
    with open(os.path.join(top, "stack.json"), "w") as f:
        json.dump({"id": "inst", "version": version,
                   "packages": [{"name": "inst", "version": version}]}, f)
    return top


def pack(tmp_path, version, pad=0):
    """An archive of inst at `version`: its path."""
    src = str(tmp_path / ("src-" + version))
    top = make_stack(src, version, pad)
    out = str(tmp_path / "archives")
    os.makedirs(out, exist_ok=True)
    sh(NNO, "stack", "pack", top, "-o", out)
    path = os.path.join(out, "inst-%s.tar.gz" % version)
    assert os.path.isfile(path)
    return path


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def upload(h, path, expect=None):
    with open(path, "rb") as f:
        data = f.read()
    st, _, body = h.api("POST", "/stacks", data,
                        headers={"Content-Type": "application/gzip"},
                        timeout=60)
    if expect is not None:
        assert st == expect, (st, body, h.log_text()[-3000:])
    return st, body


def installed_dir(h, version):
    return os.path.join(h.data, "stacks", "inst", version)


def get_version(h, pid, key, fresh=True):
    """GET /inst/version on the platform, on a new connection."""
    return h.request("GET", "/p/%s/inst/version" % pid, key=key)


def all_answer(h, pid, key, version, n=24):
    """n requests, each on its own connection (spread over the workers),
    all answered by `version`."""
    for _ in range(n):
        st, hdrs, body = get_version(h, pid, key)
        assert st == 200, (st, body)
        assert body.decode() == version


def cli(h, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNO_")}
    env["NNO_URL"] = "http://127.0.0.1:%d" % h.port
    env["NNO_DATA"] = h.data
    return sh(NNO, *args, check=False, env=env)


@pytest.fixture
def archives(tmp_path):
    return {"1.0.0": pack(tmp_path, "1.0.0"), "2.0.0": pack(tmp_path, "2.0.0")}


def test_install_serve_upgrade_remove(make_host, archives):
    h = make_host(core=True, workers=2).start()
    a1 = archives["1.0.0"]
    st, e = upload(h, a1, 201)
    assert e["id"] == "inst" and e["version"] == "1.0.0"
    assert e["state"] == "loaded" and e["source"] == "installed"
    assert e["sha256"] == sha256(a1) and e["signed_by"] is None
    assert e["installed"] is True and e["in_use"] == 0
    # On disk: in place, read-only, with its record; no staging left.
    d = installed_dir(h, "1.0.0")
    with open(os.path.join(d, ".install.json")) as f:
        rec = json.load(f)
    assert rec["sha256"] == sha256(a1) and rec["size"] == os.path.getsize(a1)
    assert os.stat(os.path.join(d, "packages", "inst", "libinst.so")).st_mode \
        & 0o222 == 0
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []
    # The same archive again: 200, nothing changes.
    st, e2 = upload(h, a1, 200)
    assert e2["installed"] is False and e2["sha256"] == e["sha256"]

    # Every worker serves it without a reload.
    h.platform("acme", stacks=["default", "inst"])
    key = h.platform_key("acme")["key"]
    all_answer(h, "acme", key, "1.0.0")

    # A second version beside it; the platform moves when activated.
    upload(h, archives["2.0.0"], 201)
    all_answer(h, "acme", key, "1.0.0", n=6)
    st, _, act = h.api("POST", "/platforms/acme/stacks",
                       {"stack": "inst", "version": "2.0.0"})
    assert st == 200, act
    all_answer(h, "acme", key, "2.0.0")

    st, _, s = h.api("GET", "/stacks/inst")
    assert st == 200 and s["versions"] == ["1.0.0", "2.0.0"], s
    use = {v["version"]: v["in_use"] for v in s["details"]}
    assert use == {"1.0.0": 0, "2.0.0": 1}, s

    # In use: refused, naming the platform; the files stay.
    st, _, p = h.api("DELETE", "/stacks/inst/2.0.0")
    assert st == 409 and "acme" in p["detail"], p
    assert p["request_id"]
    assert os.path.isdir(installed_dir(h, "2.0.0"))
    # Not in use: removed, audited, gone from disk and from every worker.
    st, _, _ = h.api("DELETE", "/stacks/inst/1.0.0")
    assert st == 204
    assert not os.path.exists(installed_dir(h, "1.0.0"))
    st, _, s = h.api("GET", "/stacks/inst")
    assert s["versions"] == ["2.0.0"], s
    st, _, p = h.api("DELETE", "/stacks/inst/1.0.0")
    assert st == 404, p
    st, _, audit = h.api("GET", "/audit?target=stack:inst@1.0.0")
    actions = [a["action"] for a in audit["items"]]
    assert "stack.install" in actions and "stack.remove" in actions, audit
    all_answer(h, "acme", key, "2.0.0", n=6)


def test_conflicting_archive_and_bad_requests(make_host, tmp_path, archives):
    h = make_host(core=True, workers=1).start()
    upload(h, archives["1.0.0"], 201)
    # Same id and version, other bytes: 409, the installed one stays.
    other = pack(tmp_path / "other", "1.0.0", pad=16)
    assert sha256(other) != sha256(archives["1.0.0"])
    st, p = upload(h, other, 409)
    assert p["field"] == "version" and "another archive" in p["detail"], p
    with open(os.path.join(installed_dir(h, "1.0.0"), ".install.json")) as f:
        assert json.load(f)["sha256"] == sha256(archives["1.0.0"])
    # Not an archive: 422 naming the kind; nothing left behind.
    st, _, p = h.api("POST", "/stacks", b"not a tarball at all",
                     headers={"Content-Type": "application/gzip"})
    assert st == 422 and p["request_id"], p
    assert p["field"] == "corrupt", p
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []
    # Wrong media type, bad JSON fields.
    st, _, p = h.api("POST", "/stacks", b"x",
                     headers={"Content-Type": "text/plain"})
    assert st == 415, p
    st, _, p = h.api("POST", "/stacks", {"url": "ftp://example.com/x.tgz"})
    assert st == 422 and p["field"] == "url", p
    st, _, p = h.api("POST", "/stacks", {"url": "http://x/y", "extra": 1})
    assert st == 422, p
    # A builtin stack is not removable this way.
    st, _, p = h.api("DELETE", "/stacks/default/1.0.0")
    assert st == 409 and "not installed from an archive" in p["detail"], p
    # Operator only.
    st, _, p = h.api("POST", "/stacks", {"url": "http://x/y"}, key=False)
    assert st == 401, p
    st, _, p = h.api("DELETE", "/stacks/inst/1.0.0", key=False)
    assert st == 401, p
    assert os.path.isdir(installed_dir(h, "1.0.0"))


def test_refused_package_is_not_installed(make_host, tmp_path):
    """The check runs before anything is put in place: a package whose
    init fails is refused with the check's message."""
    src = str(tmp_path / "src")
    top = make_stack(src, "3.0.0")
    # An object that declares a route it does not bind.
    with open(os.path.join(top, "packages", "inst", "package.json")) as f:
        m = json.load(f)
    m["routes"].append({"method": "GET", "path": "/inst/other"})
    with open(os.path.join(top, "packages", "inst", "package.json"), "w") as f:
        json.dump(m, f)
    sh(NNO, "stack", "pack", top, "-o", str(tmp_path))
    h = make_host(core=True, workers=1).start()
    st, p = upload(h, str(tmp_path / "inst-3.0.0.tar.gz"), 422)
    assert "/inst/other" in p["detail"], p
    assert p["problems"] and p["stack"] == "inst", p
    assert not os.path.exists(installed_dir(h, "3.0.0"))
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def web(tmp_path, archives):
    """A loopback HTTP server of the archives folder; also /redirect."""
    folder = os.path.dirname(archives["1.0.0"])

    class H(_Quiet):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=folder, **kw)

        def do_GET(self):
            if self.path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", self.path[len("/redirect"):])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_install_from_url(make_host, archives, web):
    h = make_host(core=True, workers=1,
                  config={"stacks": {"fetch_allow_private": True}}).start()
    url = web + "/redirect/inst-1.0.0.tar.gz"
    # A wrong digest: refused before anything is extracted.
    st, _, p = h.api("POST", "/stacks", {"url": url, "sha256": "0" * 64})
    assert st == 422 and p["field"] == "sha256", p
    st, _, e = h.api("POST", "/stacks",
                     {"url": url, "sha256": sha256(archives["1.0.0"])},
                     timeout=60)
    assert st == 201 and e["version"] == "1.0.0", e
    st, _, p = h.api("POST", "/stacks", {"url": web + "/nope.tar.gz"})
    assert st == 502 and "404" in p["detail"], p


def test_url_to_loopback_refused_by_default(make_host, web):
    h = make_host(core=True, workers=1).start()
    for url in (web + "/inst-1.0.0.tar.gz",
                # A name resolving to loopback is judged by its address.
                web.replace("127.0.0.1", "localhost") + "/inst-1.0.0.tar.gz"):
        st, _, p = h.api("POST", "/stacks", {"url": url})
        assert st == 502, p
        assert "fetch_allow_private" in p["detail"], p
    assert not os.path.exists(os.path.join(h.data, "stacks", "inst"))
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []


def test_url_to_addresses_carrying_a_private_one_refused(make_host, web):
    """IPv6 forms that carry an IPv4 address (compatible, mapped, SIIT,
    NAT64, 6to4) are judged by it, and reserved ranges (benchmarking,
    documentation, Teredo) are refused: a translator on the path would
    deliver them somewhere internal."""
    h = make_host(core=True, workers=1).start()
    port = web.rsplit(":", 1)[1]
    for host in ("[::127.0.0.1]", "[::ffff:0:7f00:1]", "[64:ff9b::7f00:1]",
                 "[2002:7f00:1::]", "[2002:a9fe:a9fe::1]", "[2001::1]",
                 "[2001:db8::1]", "[fec0::1]", "198.18.0.1", "198.19.255.1",
                 "192.0.2.1", "203.0.113.9"):
        st, _, p = h.api("POST", "/stacks",
                         {"url": "http://%s:%s/inst-1.0.0.tar.gz" % (host, port)})
        assert st == 502, (host, p)
        assert "loopback, private or reserved" in p["detail"], (host, p)
    assert not os.path.exists(os.path.join(h.data, "stacks", "inst"))


def test_signatures_with_trusted_keys(make_host, tmp_path, archives):
    keys = tmp_path / "keys"
    keys.mkdir()
    kid = sh(NNO, "stack", "keygen", str(keys / "ops")).stdout.split()[-1]
    sh(NNO, "stack", "keygen", str(keys / "other"))
    signed = str(tmp_path / "signed.tar.gz")
    sh(NNO, "stack", "sign", archives["1.0.0"], "--key", str(keys / "ops.key"),
       "-o", signed)
    wrong = str(tmp_path / "wrong.tar.gz")
    sh(NNO, "stack", "sign", archives["2.0.0"], "--key",
       str(keys / "other.key"), "-o", wrong)
    h = make_host(core=True, workers=1,
                  config={"stacks": {"trusted_keys":
                                     str(keys / "ops.pub")}}).start()
    st, p = upload(h, archives["2.0.0"], 403)     # unsigned
    assert p["field"] == "unsigned", p
    st, p = upload(h, wrong, 403)                 # not a trusted key
    assert p["field"] == "untrusted-key", p
    st, e = upload(h, signed, 201)
    assert e["signed_by"] == kid, (e, kid)
    assert not os.path.exists(installed_dir(h, "2.0.0"))
    r = cli(h, "stack", "list")
    assert r.returncode == 0, r.stderr
    row = [l for l in r.stdout.splitlines() if l.startswith("inst ")]
    assert row and kid in row[0] and "loaded" in row[0], r.stdout


def test_trusted_keys_turned_on_stop_what_was_installed_unsigned(
        make_host, tmp_path, archives):
    """Signatures required from now on hold for versions installed before:
    one installed unsigned is refused at load, named, and one installed
    signed by a trusted key still loads."""
    keys = tmp_path / "keys"
    keys.mkdir()
    kid = sh(NNO, "stack", "keygen", str(keys / "ops")).stdout.split()[-1]
    signed = str(tmp_path / "signed.tar.gz")
    sh(NNO, "stack", "sign", archives["2.0.0"], "--key", str(keys / "ops.key"),
       "-o", signed)
    h = make_host(core=True, workers=1).start()
    upload(h, archives["1.0.0"], 201)
    upload(h, signed, 201)
    h.stop()
    h.config["stacks"] = {"trusted_keys": str(keys / "ops.pub")}
    h.start()
    st, _, s = h.api("GET", "/stacks/inst")
    d = {v["version"]: v for v in s["details"]}
    assert d["1.0.0"]["state"] == "refused", s
    assert "installed unsigned" in d["1.0.0"]["error"], s
    assert "stacks.trusted_keys" in d["1.0.0"]["error"], s
    assert d["2.0.0"]["state"] == "loaded", s


def test_cli_install_list_remove(make_host, archives):
    h = make_host(core=True, workers=2).start()
    a = archives["1.0.0"]
    r = cli(h, "stack", "install", a, "--sha256", "f" * 64)
    assert r.returncode == 1 and "nothing was sent" in r.stderr, r
    r = cli(h, "stack", "install", a, "--sha256", sha256(a))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("installed stack inst 1.0.0"), r.stdout
    r = cli(h, "stack", "install", a)
    assert r.returncode == 0 and "already installed" in r.stdout, r.stdout
    r = cli(h, "stack", "list")
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[0]
    for col in ("ID", "VERSION", "STATE", "IN USE", "SIGNED BY"):
        assert col in head, head
    row = [l.split() for l in r.stdout.splitlines() if l.startswith("inst ")]
    assert row and row[0][:4] == ["inst", "1.0.0", "loaded", "0"], r.stdout
    assert "unsigned" in row[0], r.stdout
    r = cli(h, "stack", "install", "/nonexistent.tar.gz")
    assert r.returncode == 2 and "cannot read" in r.stderr, r
    r = cli(h, "stack", "remove", "inst", "1.0.0")
    assert r.returncode == 0 and "removed stack inst 1.0.0" in r.stdout, r
    r = cli(h, "stack", "remove", "inst", "1.0.0")
    assert r.returncode == 1 and "404" in r.stderr, r
    r = cli(h, "stack", "list")
    assert "inst " not in r.stdout, r.stdout


def _make_writable(path):
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def test_active_version_gone_or_modified_answers_503(make_host, archives):
    h = make_host(core=True, workers=1).start()
    upload(h, archives["1.0.0"], 201)
    h.platform("acme", stacks=["default", "inst"])
    key = h.platform_key("acme")["key"]
    all_answer(h, "acme", key, "1.0.0", n=2)
    h.stop()
    # Modified behind the host's back: refused at load, named.
    lib = os.path.join(installed_dir(h, "1.0.0"), "packages", "inst",
                       "libinst.so")
    os.chmod(lib, 0o644)
    with open(lib, "ab") as f:
        f.write(b"\0")
    os.chmod(lib, 0o444)
    h.start()
    st, _, body = get_version(h, "acme", key)
    p = json.loads(body)
    assert st == 503, (st, p)
    assert "inst 1.0.0" in p["detail"], p
    assert "modified after install: packages/inst/libinst.so" in p["detail"], p
    assert p["request_id"]
    st, _, s = h.api("GET", "/stacks/inst")
    assert s["details"][0]["state"] == "refused", s
    assert "modified after install" in s["details"][0]["error"], s
    # Removed by hand: 503, not 404.
    h.stop()
    logged = len(h.log_text())
    d = installed_dir(h, "1.0.0")
    _make_writable(d)
    shutil.rmtree(d)
    h.start()
    st, _, body = get_version(h, "acme", key)
    p = json.loads(body)
    assert st == 503 and "not installed" in p["detail"], (st, p)
    # Logged once, not per request.
    get_version(h, "acme", key)
    lines = [l for l in h.log_text()[logged:].splitlines()
             if "has stack inst 1.0.0 active, but it is not loaded" in l]
    assert len(lines) == 1, lines


def test_overwritten_object_does_not_reach_a_loaded_version(make_host,
                                                            tmp_path):
    """Objects run from a sealed copy: overwriting the file on disk under a
    running worker changes nothing it serves."""
    src = str(tmp_path / "folder")
    top = make_stack(src, "1.0.0")
    h = make_host(core=False, workers=1, stacks=[src]).start()
    st, _, body = h.request("GET", "/inst/version")
    assert st == 200 and body == b"1.0.0"
    lib = os.path.join(top, "packages", "inst", "libinst.so")
    with open(lib, "r+b") as f:  # in place, same inode
        f.write(b"\xff" * os.path.getsize(lib))
    for _ in range(5):
        st, _, body = h.request("GET", "/inst/version")
        assert st == 200 and body == b"1.0.0"
    assert h.proc.poll() is None


def test_kill_during_install_leaves_whole_or_nothing(make_host, tmp_path):
    """The host killed (SIGKILL, master and workers) at many moments of an
    install, then started again: the version is installed whole (loads,
    every file as in the archive) or absent; nothing is left staged."""
    big = pack(tmp_path, "1.0.0", pad=3 << 20)
    with open(big, "rb") as f:
        data = f.read()
    h = make_host(core=True, workers=1)
    outcomes = set()
    for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6,
                  0.8, 1.2):
        h.start()
        d = installed_dir(h, "1.0.0")
        if os.path.exists(d):
            _make_writable(d)
            shutil.rmtree(d)
            h.stop()
            h.start()
        key = h.op_key()
        proc = subprocess.Popen(
            ["curl", "-s", "-o", "/dev/null", "-X", "POST",
             "-H", "Authorization: Bearer " + key,
             "-H", "Content-Type: application/gzip",
             "--data-binary", "@" + big,
             "http://127.0.0.1:%d/api/v1/stacks" % h.port])
        time.sleep(delay)
        os.killpg(h.proc.pid, signal.SIGKILL)
        h.proc.wait()
        h.logf.close()
        proc.wait()
        h.start()
        staging = os.path.join(h.data, "stacks", ".staging")
        assert not os.path.isdir(staging) or os.listdir(staging) == [], delay
        st, _, s = h.api("GET", "/stacks/inst")
        if os.path.exists(d):
            outcomes.add("installed")
            assert st == 200 and s["details"][0]["state"] == "loaded", s
            with open(os.path.join(d, ".install.json")) as f:
                assert json.load(f)["sha256"] == hashlib.sha256(
                    data).hexdigest()
        else:
            outcomes.add("absent")
            assert st == 404, s
            assert not os.path.exists(os.path.dirname(d)) or \
                os.listdir(os.path.dirname(d)) == []
        h.stop()
    # The moments chosen cover both outcomes.
    assert outcomes == {"installed", "absent"}, outcomes


def test_concurrent_installs_of_one_version(make_host, tmp_path, archives):
    """The same version sent at once to both workers, from the same and
    from different archives: one install wins, the others answer 200 (same
    bytes) or 409 (other bytes); the version on disk is the winner's."""
    h = make_host(core=True, workers=2).start()
    other = pack(tmp_path / "other", "1.0.0", pad=16)
    paths = [archives["1.0.0"]] * 3 + [other] * 3
    results = [None] * len(paths)

    def go(i):
        results[i] = upload(h, paths[i])

    threads = [threading.Thread(target=go, args=(i,))
               for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r[0] for r in results]
    assert statuses.count(201) == 1, results
    with open(os.path.join(installed_dir(h, "1.0.0"), ".install.json")) as f:
        winner = json.load(f)["sha256"]
    for p, (st, body) in zip(paths, results):
        if sha256(p) == winner:
            assert st in (200, 201), body
        else:
            assert st == 409, body
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []


def test_package_whose_init_hangs_is_refused(make_host, tmp_path):
    """The check runs the packages' init out of the worker, bounded by
    stacks.check_timeout_ms: a hanging init refuses the install and the
    worker keeps serving."""
    src = str(tmp_path / "src")
    top = make_stack(src, "4.0.0")
    pkg = os.path.join(top, "packages", "inst")
    with open(os.path.join(pkg, "inst.c"), "w") as f:
        f.write(PKG_C.replace("api = a;", "api = a;\n  for (;;) pause();")
                .replace("#include <string.h>",
                         "#include <string.h>\n#include <unistd.h>"))
    sh("cc", "-shared", "-fPIC", "-I", INCLUDE, '-DVERSION="4.0.0"',
       os.path.join(pkg, "inst.c"), "-o", os.path.join(pkg, "libinst.so"))
    os.unlink(os.path.join(pkg, "inst.c"))
    sh(NNO, "stack", "pack", top, "-o", str(tmp_path))
    h = make_host(core=True, workers=1,
                  config={"stacks": {"check_timeout_ms": 1000}}).start()
    t0 = time.time()
    st, p = upload(h, str(tmp_path / "inst-4.0.0.tar.gz"), 422)
    assert time.time() - t0 < 30
    assert p["stack"] == "inst" and p["problems"], p
    assert not os.path.exists(installed_dir(h, "4.0.0"))
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []
    st, _, _ = h.api("GET", "/stacks")
    assert st == 200
    # Nothing of the check outlives it: its hung sandbox (which dropped
    # root, and with it, once, its parent-death signal) is gone too.
    staging = os.path.join(h.data, "stacks", ".staging")
    left = []
    for _ in range(50):
        left = [p for p in os.listdir("/proc") if p.isdigit()
                and staging.encode() in _cmdline(p)]
        if not left:
            break
        time.sleep(0.1)
    assert left == [], left


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


FAILPOINT_NNO = os.path.join(BUILD, "bin", "nno-failpoints")

# Where an install can be killed, in order, and what a restart finds: the
# version absent (staging removed) until the rename, whole after it.
INSTALL_STEPS = [("install:extracted", "absent"), ("install:checked", "absent"),
                 ("install:recorded", "absent"), ("install:sealed", "absent"),
                 ("install:renamed", "installed"),
                 ("install:synced", "installed")]


def _restart_clean(h):
    """Kill the whole host (as a crash would) and start it without the
    failpoint."""
    if h.proc and h.proc.poll() is None:
        os.killpg(h.proc.pid, signal.SIGKILL)
        h.proc.wait()
        h.logf.close()
    h.env.pop("NNO_FAILPOINT_KILL", None)
    h.start()


def _whole_or_absent(h, archive, expect):
    d = installed_dir(h, "1.0.0")
    staging = os.path.join(h.data, "stacks", ".staging")
    assert not os.path.isdir(staging) or os.listdir(staging) == []
    st, _, s = h.api("GET", "/stacks/inst")
    if expect == "installed":
        assert os.path.isdir(d)
        assert st == 200 and s["details"][0]["state"] == "loaded", s
        with open(os.path.join(d, ".install.json")) as f:
            assert json.load(f)["sha256"] == sha256(archive)
        # Sent again: the same archive is already there.
        upload(h, archive, 200)
    else:
        assert not os.path.exists(d) and st == 404, s
        upload(h, archive, 201)


@pytest.mark.parametrize("step,expect", INSTALL_STEPS)
def test_install_killed_at_each_step(make_host, archives, step, expect):
    """The worker killed (SIGKILL) at each step of an install, then the
    whole host killed and started again: the version is whole or absent,
    nothing is left staged, and the same install sent again succeeds."""
    h = make_host(core=True, workers=1, binary=FAILPOINT_NNO,
                  env={"NNO_FAILPOINT_KILL": step}).start()
    with pytest.raises(Exception):
        # The worker dies before answering.
        upload(h, archives["1.0.0"])
    h.wait_log(lambda e: e.get("msg") == "worker exited" and
               e.get("signal") == signal.SIGKILL)
    _restart_clean(h)
    _whole_or_absent(h, archives["1.0.0"], expect)


def test_remove_killed_after_the_rename(make_host, archives):
    """Killed once the version left its place: it is gone after the
    restart (the rest of its files too)."""
    h = make_host(core=True, workers=1, binary=FAILPOINT_NNO).start()
    upload(h, archives["1.0.0"], 201)
    h.stop()
    h.env["NNO_FAILPOINT_KILL"] = "remove:renamed"
    h.start()
    with pytest.raises(Exception):
        h.api("DELETE", "/stacks/inst/1.0.0")
    h.wait_log(lambda e: e.get("msg") == "worker exited" and
               e.get("signal") == signal.SIGKILL)
    _restart_clean(h)
    assert not os.path.exists(installed_dir(h, "1.0.0"))
    trash = os.path.join(h.data, "stacks", ".trash")
    assert not os.path.isdir(trash) or os.listdir(trash) == []
    st, _, s = h.api("GET", "/stacks/inst")
    assert st == 404, s


def test_removed_version_finishes_its_requests_then_unloads(make_host,
                                                            archives):
    """A request in flight on a version keeps it loaded: removed meanwhile,
    the request still finishes on it, then the worker unloads it."""
    h = make_host(core=True, workers=1).start()
    upload(h, archives["1.0.0"], 201)
    upload(h, archives["2.0.0"], 201)
    h.platform("acme", stacks=["default", "inst@1.0.0"])
    key = h.platform_key("acme")["key"]
    out = {}

    def slow():
        out["r"] = h.request("GET", "/p/acme/inst/slow", key=key)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)  # the request holds 1.0.0 now
    st, _, act = h.api("POST", "/platforms/acme/stacks",
                       {"stack": "inst", "version": "2.0.0"})
    assert st == 200, act
    st, _, _ = h.api("DELETE", "/stacks/inst/1.0.0")
    assert st == 204
    assert not os.path.exists(installed_dir(h, "1.0.0"))
    assert not any(e.get("msg") == "stack unloaded"
                   for e in h.log_lines()), "unloaded under its request"
    t.join()
    st, hdrs, body = out["r"]
    assert st == 200 and body == b"1.0.0", out
    h.wait_log(lambda e: e.get("msg") == "stack unloaded" and
               e.get("name") == "inst" and e.get("version") == "1.0.0")
    all_answer(h, "acme", key, "2.0.0", n=3)


def test_refused_version_is_listed_with_its_reason(make_host, tmp_path):
    """A version found on disk but refused at load is in the catalogue with
    state refused and why, in the API and in `nno stack list`, and cannot
    be activated."""
    src = str(tmp_path / "folder")
    top = make_stack(src, "5.0.0")
    with open(os.path.join(top, "packages", "inst", "libinst.so"), "wb") as f:
        f.write(b"not an object")
    h = make_host(core=True, workers=1, stacks=[src]).start()
    st, _, s = h.api("GET", "/stacks/inst")
    assert st == 200 and s["versions"] == ["5.0.0"], s
    d = s["details"][0]
    assert d["state"] == "refused" and d["source"] == "folder", d
    assert "libinst.so" in d["error"], d
    r = cli(h, "stack", "list")
    assert r.returncode == 0, r.stderr
    row = [l.split() for l in r.stdout.splitlines() if l.startswith("inst ")]
    assert row and row[0][:3] == ["inst", "5.0.0", "refused"], r.stdout
    assert any(l.startswith("inst 5.0.0: ") and "libinst.so" in l
               for l in r.stdout.splitlines()), r.stdout
    h.api("POST", "/platforms", {"id": "acme", "name": "acme"})
    st, _, p = h.api("POST", "/platforms/acme/stacks",
                     {"stack": "inst", "version": "5.0.0"})
    assert st == 422, p


def test_archive_over_the_bound_is_refused(make_host, archives, web):
    """stacks.max_archive_bytes bounds an uploaded archive and a fetched
    one (counted as it arrives): 413, nothing installed."""
    h = make_host(core=True, workers=1,
                  config={"stacks": {"max_archive_bytes": 1024,
                                     "fetch_allow_private": True}}).start()
    assert os.path.getsize(archives["1.0.0"]) > 1024
    # The upload route's bound is the host's: refused from its head,
    # before the body is read.
    st, p = upload(h, archives["1.0.0"], 413)
    assert "too large" in p["detail"], p
    st, _, p = h.api("POST", "/stacks", {"url": web + "/inst-1.0.0.tar.gz"})
    assert st == 413 and "max_archive_bytes" in p["detail"], p
    assert not os.path.exists(os.path.join(h.data, "stacks", "inst"))
    assert os.listdir(os.path.join(h.data, "stacks", ".staging")) == []
