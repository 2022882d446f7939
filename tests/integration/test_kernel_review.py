"""The kernel's edges: core plugins a host must not serve without, what the
loader trusts above its folders, the Host names it accepts, which hosts see
/metrics, and the rate-limit table's default size."""
import json
import os
import shutil
import subprocess

from conftest import BUILD, FIXTURE_STACKS, NNO, free_port, parse_responses

CORE = os.path.join(BUILD, "lib", "nno", "plugins")
PROBE = os.path.join(FIXTURE_STACKS, "probe")
BASE = "nno.localhost"
WARNING = "no authorization hook: feature routes are served without credentials"


def env_with(**kw):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("NNO_"):
            del env[k]
    env.update(kw)
    return env


def check(data, env):
    return subprocess.run([NNO, "serve", "--check", "--data", data],
                          capture_output=True, text=True, timeout=30, env=env)


def serve(data, env, timeout=15):
    """`nno serve` expected to stop on its own: (exit status, stderr)."""
    p = subprocess.Popen([NNO, "serve", "--data", data, "--workers", "1",
                          "--listen", "127.0.0.1:%d" % free_port()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        out, err = p.communicate()
        return None, err
    return p.returncode, err


def plugins_without(tmp_path, name):
    d = str(tmp_path / "plugins")
    shutil.copytree(CORE, d)
    shutil.rmtree(os.path.join(d, name))
    return d


# -- core plugins the host must not serve without --------------------------------

def test_a_missing_core_plugin_stops_serve_and_check(tmp_path):
    plugins = plugins_without(tmp_path, "iam")
    data = str(tmp_path / "var")
    want = ('required core plugin "iam" is missing from "%s" (core_plugins)'
            % plugins)
    # by default, the core plugins this build installs are required
    r = check(data, env_with(NNO_PLUGIN_DIR=plugins))
    assert r.returncode == 1 and "error: " + want + "\n" in r.stderr, r
    assert "configuration ok" not in r.stdout
    rc, err = serve(data, env_with(NNO_PLUGIN_DIR=plugins))
    lines = err.splitlines()
    assert rc == 1 and lines[0] == "nno: " + want, err
    assert lines[1].startswith("hint: ") and "core_plugins" in lines[1], err
    assert not os.path.exists(os.path.join(data, "core.db"))
    # an operator who means it says so: then only those are required
    r = check(data, env_with(NNO_PLUGIN_DIR=plugins,
                             NNO_CORE_PLUGINS="registry"))
    assert (r.returncode, r.stdout) == (0, "configuration ok\n"), r
    r = check(data, env_with(NNO_PLUGIN_DIR=plugins,
                             NNO_CORE_PLUGINS="registry,nosuch"))
    assert r.returncode == 1 and '"nosuch" is missing' in r.stderr, r
    r = check(data, env_with(NNO_CORE_PLUGINS="Registry"))
    assert r.returncode == 2 and "core_plugins: expected plugin names" in r.stderr


def test_a_failing_core_plugin_stops_serve_in_one_line(tmp_path):
    plugins = plugins_without(tmp_path, "registry")
    shutil.copytree(os.path.join(CORE, "registry"),
                    os.path.join(plugins, "registry"))
    so = os.path.join(plugins, "iam", "libiam.so")
    os.chmod(so, 0o775)
    data = str(tmp_path / "var")
    want = ('core plugin iam: "%s" is writable by group or others (mode 0775); '
            'run chmod go-w on it' % so)
    rc, err = serve(data, env_with(NNO_PLUGIN_DIR=plugins))
    assert rc == 1 and err.splitlines()[0] == "nno: " + want, err
    assert err.splitlines()[1].startswith("hint: ")
    r = check(data, env_with(NNO_PLUGIN_DIR=plugins))
    assert r.returncode == 1 and "error: " + want in r.stderr, r


def test_serving_with_no_authorization_hook_is_said(make_host):
    # the kernel's own tests: no core plugin, core_plugins empty
    h = make_host(workers=1).start()
    e = h.wait_log(lambda e: e.get("msg") == WARNING)
    assert e.get("level") == "warn", e
    assert h.request("GET", "/hello")[0] == 200


def test_with_the_core_plugins_there_is_no_warning(make_host):
    h = make_host(workers=1, core=True).start()
    h.wait_log(lambda e: e.get("msg") == "worker ready")
    assert WARNING not in h.log_text()


# -- the loader trusts nothing someone else may swap -----------------------------

def stacks_under(tmp_path, mode):
    """The probe stack in a stacks folder under a folder of `mode`."""
    above = tmp_path / "above"
    above.mkdir()
    root = above / "stacks"
    shutil.copytree(PROBE, str(root))
    os.chmod(str(above), mode)
    return str(above), str(root)


def check_stacks(tmp_path, root):
    cfg = str(tmp_path / "check.json")
    with open(cfg, "w") as f:
        empty = str(tmp_path / "no-plugins")
        os.makedirs(empty, exist_ok=True)
        json.dump({"stacks_dirs": [root], "plugin_dir": empty,
                   "core_plugins": []}, f)
    return subprocess.run([NNO, "serve", "--check", "--config", cfg, "--data",
                           str(tmp_path / "var")],
                          capture_output=True, text=True, timeout=30,
                          env=env_with())


def test_a_folder_above_the_stacks_folder_others_may_write(make_host, tmp_path):
    above, root = stacks_under(tmp_path, 0o777)
    want = ('"%s" is writable by group or others (mode 0777); run chmod go-w '
            'on it' % above)
    r = check_stacks(tmp_path, root)
    assert r.returncode == 1 and want in r.stderr, r
    h = make_host(workers=1, stacks=[root]).start()
    e = h.wait_log(lambda e: e.get("msg") == "stack refused"
                   and e.get("name") == "probe@1.0.0")
    assert e["error"] == want
    assert h.request("GET", "/probe/work")[0] == 404
    assert h.request("GET", "/hello")[0] == 200
    # sticky, as /tmp is, with the stacks folder ours: nobody can swap it
    os.chmod(above, 0o1777)
    r = check_stacks(tmp_path, root)
    assert (r.returncode, r.stdout) == (0, "configuration ok\n"), r
    # ... but one owned by someone else could be renamed by its owner
    os.chown(root, 65534, 65534)
    r = check_stacks(tmp_path, root)
    assert r.returncode == 1 and ('"%s" belongs to uid 65534' % root) in r.stderr


# -- Host names ------------------------------------------------------------------

def raw_get(h, host, path="/healthz"):
    data = h.raw(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                 % (path.encode(), host.encode()))
    return parse_responses(data)[0]


def test_host_names_with_empty_labels_or_odd_octets_are_refused(make_host):
    h = make_host(workers=1).start()
    for bad in ["acme.%s.." % BASE, "acme.%s%%2e" % BASE, "acme..%s" % BASE,
                ".%s" % BASE, "acme_x.%s" % BASE, "acme.%s..:80" % BASE,
                "acme!.%s" % BASE]:
        st, hd, body = raw_get(h, bad)
        assert st == 400, bad
        assert hd["content-type"] == "application/problem+json"
        p = json.loads(body)
        assert p["detail"] == "invalid Host header field" and p["request_id"]
    # as an absolute-form target's authority too
    data = h.raw(b"GET http://acme.nno.localhost../healthz HTTP/1.1\r\n"
                 b"Host: x\r\nConnection: close\r\n\r\n")
    assert parse_responses(data)[0][0] == 400
    # one trailing dot names the same host; IP literals and ports are fine
    for good in ["acme.%s." % BASE, "acme.%s.:8080" % BASE, "127.0.0.1:1",
                 "[::1]:80", "localhost", "Acme-1.%s" % BASE]:
        assert raw_get(h, good)[0] == 200, good


def test_a_platform_host_with_two_trailing_dots_is_no_core_host(make_host):
    h = make_host(workers=1, core=True).start()
    st, _, _ = h.api("POST", "/platforms", {"id": "acme", "name": "Acme"})
    assert st == 201
    st, _, _ = h.api("GET", "/platforms", host="acme.%s.." % BASE)
    assert st == 400
    st, _, _ = h.api("GET", "/platforms", host="acme.%s%%2e" % BASE)
    assert st == 400
    # the single trailing dot stays the platform's host: no core API there
    st, _, _ = h.api("GET", "/platforms", host="acme.%s." % BASE)
    assert st == 404


# -- /metrics and /healthz per host ----------------------------------------------

def test_metrics_only_on_the_operators_hosts(make_host):
    h = make_host(workers=2).start()
    for name in [BASE, "api." + BASE, "127.0.0.1", "localhost",
                 "API.%s." % BASE]:
        st, hd, body = h.request("GET", "/metrics", host=name)
        assert st == 200 and b"nno_workers" in body, name
        st, _, body = h.json("GET", "/healthz", host=name)
        assert st == 200 and len(body["workers"]) == 2 and body["pid"], name
    for name in ["acme." + BASE, "x.acme." + BASE, "x.api." + BASE,
                 "auth.svc.default.acme.%s:80" % BASE]:
        st, hd, body = h.request("GET", "/metrics", host=name)
        # the platform's path: routing answers (no package serves it)
        assert st == 404 and hd["content-type"] == "application/problem+json"
        assert b"nno_" not in body, name
        st, _, body = h.json("GET", "/healthz", host=name)
        assert (st, body) == (200, {"status": "ok"}), name
        assert h.request("GET", "/readyz", host=name)[0] == 200, name


# -- the rate-limit table --------------------------------------------------------

def test_the_rate_limit_table_is_large_by_default(make_host):
    h = make_host(workers=1).start()
    st, _, body = h.request("GET", "/metrics")
    assert st == 200
    assert "nno_ratelimit_buckets_total 262144\n" in body.decode(), body
