"""One decision on whether a stack loads, whoever asks.

One table of broken packages and stacks, each built here with cc against
plugin-api/include, run through every way of checking -- `nno
check-package`, `nno stack check` (lines and --json), `nno serve --check`
-- and through the live loader of a running host ("stack refused"). Every
path refuses, and with the loader's own words, in both isolation modes:
in-process (sandbox.inprocess names the stack; the trial is init in a
child of the worker) and sandboxed (the default; the trial is a sandbox's
start). A few rows differ by nature between the modes (SANDBOXED).
"""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, NNO, SOURCE

PKG_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <nno/plugin.h>

static int on_get(nno_req *req, void *ud) {
  (void)ud;
  return NNO_OK;
  (void)req;
}

#ifdef CTOR_CRASH
__attribute__((constructor)) static void boom(void) { raise(SIGSEGV); }
#endif

static int init(nno_plugin *p, const nno_host_api *api) {
  int rc = api->route_add(p, "GET", "/chk", on_get, NULL);
  if (rc) return rc;
#ifdef BIND_UNDECLARED
  /* Its result ignored: the route is not served, and nothing said so. */
  (void)api->route_add(p, "GET", "/chk/extra", on_get, NULL);
#endif
#ifdef INIT_FAIL
  api->plugin_fail(p, "no database configured");
  return NNO_EINVAL;
#endif
#ifdef INIT_CRASH
  raise(SIGSEGV);
#endif
#ifdef INIT_HANG
  for (;;) pause();
#endif
#ifdef INIT_EXIT
  _exit(0);
#endif
#ifdef INIT_FORK
  pid_t child = fork();
  if (child == 0) {
    for (;;) pause();
  }
  /* Written before init returns: the test then looks for that process. */
  const char *f = getenv("CHK_PIDFILE");
  FILE *o = f && child > 0 ? fopen(f, "w") : NULL;
  if (o) {
    fprintf(o, "%d\n", (int)child);
    fclose(o);
  }
#endif
  return NNO_OK;
}

static void host_ready(nno_plugin *p) {
  (void)p;
#ifdef READY_CRASH
  raise(SIGSEGV);
#endif
}

NNO_PLUGIN(.name = "chk", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = init, .on_host_ready = host_ready)
"""

ROUTES = [{"method": "GET", "path": "/chk"}]


def package(**over):
    m = {"name": "chk", "version": "1.0.0", "abi": "1.5", "kind": "feature",
         "library": "libchk.so", "routes": ROUTES}
    m.update(over)
    return m


def stack(version="1.0.0", want="1.0.0"):
    return {"id": "chk", "version": version,
            "packages": [{"name": "chk", "version": want}]}


TIMEOUT_MS = 1500

# case: (C defines, package.json, stack.json, folder version, the problem's
# message as the loader says it ({pkg}: the package folder, {stack}: the
# stack folder), whether check-package sees it (package-level problems))
CASES = {
    "requires-missing": (
        [], package(requires={"nno.nothing": "^1"}), stack(), "1.0.0",
        'package "chk" requires service "nno.nothing" ^1, which no loaded '
        'plugin provides', True),
    "wants-newer": (
        [], package(), stack(want="^2.0.0"), "1.0.0",
        'stack chk@1.0.0 wants package "chk" ^2.0.0, found "chk" 1.0.0',
        False),
    "folder-mismatch": (
        [], package(), stack(version="1.0.0"), "2.0.0",
        '{stack}/stack.json: id and version (chk 1.0.0) do not match its '
        'folder chk/2.0.0', False),
    "bound-not-declared": (
        ["BIND_UNDECLARED"], package(), stack(), "1.0.0",
        'package "chk": init binds route GET /chk/extra, which package.json '
        'does not declare (routes)', True),
    "declared-not-bound": (
        [], package(routes=ROUTES + [{"method": "POST", "path": "/chk"}]),
        stack(), "1.0.0",
        'package "chk": route POST /chk is declared in package.json '
        '(routes[1]) but init does not bind it', True),
    "requries-typo": (
        [], dict(package(), requries={"nno.iam": "^1"}), stack(), "1.0.0",
        '{pkg}/package.json: field "requries": unknown field (did you mean '
        '"requires"?)', True),
    "init-fails": (
        ["INIT_FAIL"], package(), stack(), "1.0.0",
        'plugin "{pkg}/libchk.so": init failed (NNO_EINVAL): no database '
        'configured', True),
    "init-crashes": (
        ["INIT_CRASH"], package(), stack(), "1.0.0",
        'init of package "chk" crashed (SIGSEGV)', True),
    "init-hangs": (
        ["INIT_HANG"], package(), stack(), "1.0.0",
        'init of package "chk" did not finish within %d ms '
        '(stacks.check_timeout_ms)' % TIMEOUT_MS, True),
    "init-exits": (
        ["INIT_EXIT"], package(), stack(), "1.0.0",
        'init of package "chk" exited (status 0) before it returned', True),
    "init-leaves-a-process": (
        ["INIT_FORK"], package(), stack(), "1.0.0",
        'init of package "chk" left a process running', True),
    "host-ready-crashes": (
        ["READY_CRASH"], package(), stack(), "1.0.0",
        'on_host_ready of package "chk" crashed (SIGSEGV)', True),
    "constructor-crashes": (
        ["CTOR_CRASH"], package(), stack(), "1.0.0",
        'init of package "chk" crashed (SIGSEGV)', True),
    "bad-abi": (
        [], package(abi="2.0"), stack(), "1.0.0",
        '{pkg}/package.json: field "abi": built for ABI 2.0, host provides '
        '1.5 (rebuild the package against this host\'s plugin-api and set '
        '"abi" to "1.5")', True),
}


# Rows whose outcome differs in sandbox mode, by nature: a sandbox cannot
# reach a service (refused whatever is loaded), its trial's deadline is
# sandbox.spawn_timeout_ms, and a fork in an init is refused there (EPERM),
# so nothing is left running and the stack loads (None: every path passes).
SANDBOXED = {
    "requires-missing":
        'package chk requires service nno.nothing, which a sandboxed stack '
        'cannot reach; run stack chk inprocess (sandbox.inprocess)',
    "init-hangs":
        'init of package "chk" did not finish within %d ms '
        '(sandbox.spawn_timeout_ms)' % TIMEOUT_MS,
    "init-leaves-a-process": None,
}


def mode_env(mode):
    """The environment of every path in isolation mode `mode`."""
    e = {"NNO_SANDBOX_SPAWN_TIMEOUT_MS": str(TIMEOUT_MS)}
    if mode == "inprocess":
        e["NNO_SANDBOX_INPROCESS"] = "chk"
    return e


def build(tmp_path, defines, manifest, stack_json, folder_version):
    """root/chk/VERSION/{stack.json, packages/chk/{package.json,libchk.so}}:
    (root, stack folder, package folder)."""
    root = os.path.join(str(tmp_path), "stacks")
    sdir = os.path.join(root, "chk", folder_version)
    pdir = os.path.join(sdir, "packages", "chk")
    os.makedirs(pdir)
    src = os.path.join(str(tmp_path), "chk.c")
    with open(src, "w") as f:
        f.write(PKG_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror",
                    "-fvisibility=hidden",
                    "-I", os.path.join(SOURCE, "plugin-api", "include")] +
                   ["-D" + d for d in defines] +
                   [src, "-o", os.path.join(pdir, "libchk.so")], check=True)
    with open(os.path.join(pdir, "package.json"), "w") as f:
        json.dump(manifest, f)
    with open(os.path.join(sdir, "stack.json"), "w") as f:
        json.dump(stack_json, f)
    return root, sdir, pdir


def env(mode="inprocess"):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("NNO_"):
            del e[k]
    e["NNO_STACK_CHECK_TIMEOUT_MS"] = str(TIMEOUT_MS)
    e.update(mode_env(mode))
    return e


def no_core(tmp_path):
    """Options for a check with no core plugins (as the test host)."""
    empty = os.path.join(str(tmp_path), "no-core-plugins")
    os.makedirs(empty, exist_ok=True)
    return ["--set", "plugin_dir=" + empty, "--set", "core_plugins="]


def nno(*args, e=None):
    return subprocess.run([NNO] + list(args), capture_output=True, text=True,
                          timeout=60, env=e or env())


@pytest.mark.parametrize("mode", ["inprocess", "sandbox"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_path_refuses_with_the_same_message(make_host, tmp_path, case,
                                                  mode):
    defines, manifest, sj, fver, want, pkg_level = CASES[case]
    if mode == "sandbox" and case in SANDBOXED:
        want = SANDBOXED[case]
    root, sdir, pdir = build(tmp_path, defines, manifest, sj, fver)
    label = "chk@" + fver
    e = env(mode)
    if want is None:
        return every_path_passes(make_host, tmp_path, root, sdir, pdir,
                                 label, mode, e)
    want = want.format(pkg=pdir, stack=sdir)

    # The live loader: the stack is refused, the worker serves the rest.
    # In-process: the loader's own trial in a child of the worker, whose
    # reports (which package's init crashed, hung, exited) every path must
    # share; sandboxed: its trial is one sandbox's start, the same in the
    # checks below.
    h = make_host(workers=1, stacks=[root], env=dict(mode_env(mode), **{
        "NNO_STACK_CHECK_TIMEOUT_MS": str(TIMEOUT_MS)}))
    h.start()
    ev = h.wait_log(lambda x: x.get("msg") == "stack refused", timeout=20)
    assert ev["name"] == label
    assert ev["error"] == want
    assert h.request("GET", "/hello")[0] == 200
    assert h.request("GET", "/chk")[0] == 404

    # nno stack check DIR: one line per problem, exit 1.
    r = nno("stack", "check", sdir, *no_core(tmp_path), e=e)
    assert r.returncode == 1, r
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert lines[0].endswith(want), r.stderr

    # --json: the same problem, on stdout.
    r = nno("stack", "check", "--json", sdir, *no_core(tmp_path), e=e)
    assert r.returncode == 1, r
    rep = json.loads(r.stdout)
    assert rep["ok"] is False
    assert len(rep["problems"]) == 1
    p = rep["problems"][0]
    text = ("%s: %s%s" % (p["file"], 'field "%s": ' % p["field"]
                          if p["field"] else "", p["message"])
            if want.startswith(p["file"] + ": ") else p["message"])
    assert text == want, rep
    assert lines[0] == "error: %s: %s%s" % (
        p["file"], 'field "%s": ' % p["field"] if p["field"] else "",
        p["message"])

    # nno serve --check over the same stacks folder.
    cfg = os.path.join(str(tmp_path), "check.json")
    empty = os.path.join(str(tmp_path), "no-core-plugins")
    with open(cfg, "w") as f:
        json.dump({"stacks_dirs": [root], "plugin_dir": empty,
                   "core_plugins": []}, f)
    r = nno("serve", "--check", "--config", cfg, "--data",
            os.path.join(str(tmp_path), "var"), e=e)
    assert r.returncode == 1, r
    assert "error: stack %s: %s\n" % (label, want) in r.stderr, r.stderr

    # nno check-package, for what is wrong with the package itself.
    r = nno("check-package", pdir, *no_core(tmp_path), e=e)
    if pkg_level:
        assert r.returncode == 1, r
        assert r.stderr.splitlines()[0].endswith(want), r.stderr
    else:
        assert r.returncode == 0 and r.stdout == "package ok\n", r


def every_path_passes(make_host, tmp_path, root, sdir, pdir, label, mode, e):
    """A row that is no fault in `mode`: the live loader loads the stack and
    serves it, and every check says so."""
    h = make_host(workers=1, stacks=[root], env=mode_env(mode))
    h.start()
    ev = h.wait_log(lambda x: x.get("msg") == "stack loaded" and
                    x.get("name") == label, timeout=20)
    assert ev["isolation"] == mode, ev
    assert h.request("GET", "/chk")[0] == 204  # served: no body
    r = nno("stack", "check", sdir, *no_core(tmp_path), e=e)
    assert (r.returncode, r.stdout) == (0, "stack chk 1.0.0 ok\n"), r
    cfg = os.path.join(str(tmp_path), "check.json")
    with open(cfg, "w") as f:
        json.dump({"stacks_dirs": [root], "core_plugins": [], "plugin_dir":
                   os.path.join(str(tmp_path), "no-core-plugins")}, f)
    r = nno("serve", "--check", "--config", cfg, "--data",
            os.path.join(str(tmp_path), "var"), e=e)
    assert r.returncode == 0, r
    r = nno("check-package", pdir, *no_core(tmp_path), e=e)
    assert (r.returncode, r.stdout) == (0, "package ok\n"), r


def test_a_process_an_init_starts_is_gone_after_the_check(tmp_path):
    """The check's child is its own process group, killed whole."""
    root, sdir, pdir = build(tmp_path, ["INIT_FORK"], package(), stack(),
                             "1.0.0")
    for cmd in (["stack", "check", sdir], ["check-package", pdir]):
        pidfile = os.path.join(str(tmp_path), "pid")
        e = env()
        e["CHK_PIDFILE"] = pidfile
        r = nno(*cmd, *no_core(tmp_path), e=e)
        assert r.returncode == 1, r
        assert r.stderr.rstrip().endswith("left a process running"), r
        pid = int(open(pidfile).read())
        os.unlink(pidfile)
        gone = False
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                gone = True
                break
            # reaped by init once killed; a zombie still answers kill(0)
            try:
                st = open("/proc/%d/stat" % pid).read()
            except FileNotFoundError:
                gone = True
                break
            if st.rsplit(")", 1)[1].split()[0] == "Z":
                gone = True
                break
            import time
            time.sleep(0.01)
        assert gone, "process %d left running" % pid


@pytest.mark.parametrize("mode", ["inprocess", "sandbox"])
def test_a_sound_stack_passes_every_check(tmp_path, mode):
    root, sdir, pdir = build(tmp_path, [], package(), stack(), "1.0.0")
    e = env(mode)
    r = nno("stack", "check", "--json", sdir, *no_core(tmp_path), e=e)
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {
        "ok": True, "stack": {"id": "chk", "version": "1.0.0"},
        "problems": []}
    r = nno("stack", "check", sdir, *no_core(tmp_path), e=e)
    assert (r.returncode, r.stdout, r.stderr) == (0, "stack chk 1.0.0 ok\n",
                                                  "")
    r = nno("check-package", pdir, *no_core(tmp_path), e=e)
    assert (r.returncode, r.stdout) == (0, "package ok\n")


def test_requires_resolve_against_the_core_plugins_loaded(tmp_path):
    """As a worker spawns it: NNO_PLUGIN_DIR and NNO_CORE_PLUGINS name the
    core plugins; the child loads them (on a temporary data folder) and a
    package requiring nno.iam passes; without them, it does not."""
    root, sdir, pdir = build(tmp_path, [], package(requires={"nno.iam": "^1"}),
                             stack(), "1.0.0")
    # A staging folder's name is no version: nothing to compare.
    staging = os.path.join(str(tmp_path), "staging-x1")
    shutil.copytree(sdir, staging)
    e = env()
    tmp = os.path.join(str(tmp_path), "tmp")
    os.mkdir(tmp)
    e["TMPDIR"] = tmp
    e["NNO_PLUGIN_DIR"] = os.path.join(BUILD, "lib", "nno", "plugins")
    e["NNO_CORE_PLUGINS"] = "iam,registry,provisioning"
    r = nno("stack", "check", "--json", staging, e=e)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["ok"] is True
    # the check's temporary data folder is gone
    assert os.listdir(tmp) == []
    r = nno("stack", "check", "--json", staging, *no_core(tmp_path))
    assert r.returncode == 1
    assert json.loads(r.stdout)["problems"][0]["message"] == (
        'package "chk" requires service "nno.iam" ^1, which no loaded plugin '
        'provides')


def test_usage_errors_exit_2():
    r = nno("stack", "check")
    assert r.returncode == 2 and r.stderr.startswith("nno: stack check: ")
    r = nno("stack", "check", "/nonexistent/stack")
    assert r.returncode == 2 and "No such file or directory" in r.stderr
    r = nno("stack", "check", "--frob", ".")
    assert r.returncode == 2 and "unknown option '--frob'" in r.stderr
    r = nno("stack", "check", "--help")
    assert r.returncode == 0 and "--json" in r.stdout


def pack(sdir, out):
    """A stack archive of the folder, as archive.h describes it: entries at
    the root, sorted, and CHECKSUMS listing every other file."""
    import hashlib
    import io
    import tarfile
    files = []
    for base, dirs, names in os.walk(sdir):
        for n in names:
            p = os.path.join(base, n)
            files.append(os.path.relpath(p, sdir))
    files.sort()
    sums = "".join("%s  %s\n" % (hashlib.sha256(
        open(os.path.join(sdir, f), "rb").read()).hexdigest(), f)
        for f in files).encode()
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
        folders = sorted({os.path.dirname(f) for f in files} - {""})
        for d in folders:
            parts = d.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in t.getnames():
                    info = tarfile.TarInfo(sub)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    t.addfile(info)
        for f in files:
            data = open(os.path.join(sdir, f), "rb").read()
            info = tarfile.TarInfo(f)
            info.size = len(data)
            info.mode = 0o755 if f.endswith(".so") else 0o644
            t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("CHECKSUMS")
        info.size = len(sums)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(sums))


def test_an_archive_is_checked_as_its_folder(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _, sdir, _ = build(good, [], package(), stack(), "1.0.0")
    archive = os.path.join(str(tmp_path), "chk-1.0.0.tar.gz")
    pack(sdir, archive)
    r = nno("stack", "check", "--json", archive, *no_core(tmp_path))
    if "not supported yet" in r.stderr:
        # A build without the archive code says so, and checks nothing.
        assert (r.returncode, r.stdout) == (1, ""), r
        assert r.stderr.startswith(
            "nno: stack check: checking an archive is not supported yet")
        return
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {
        "ok": True, "stack": {"id": "chk", "version": "1.0.0"},
        "problems": []}
    # A broken package inside: named by its path in the archive.
    bad = tmp_path / "bad"
    bad.mkdir()
    _, sdir, _ = build(bad, [], dict(package(), requries={}), stack(),
                       "1.0.0")
    archive = os.path.join(str(tmp_path), "bad-1.0.0.tar.gz")
    pack(sdir, archive)
    r = nno("stack", "check", archive, *no_core(tmp_path))
    assert r.returncode == 1, r
    assert r.stderr == (
        'error: %s/packages/chk/package.json: field "requries": unknown '
        'field (did you mean "requires"?)\n' % archive)
