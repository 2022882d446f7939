"""The installed tree is usable on its own.

`cmake --install` into a temporary prefix, then build a feature package
outside the source tree against the installed headers and the plugin SDK
through pkg-config, put it in a stack, and serve it with the *installed*
`nno` binary beside the default stack that ships with it.
"""
import glob
import json
import os
import shlex
import subprocess

from conftest import BUILD, Host

PKG_C = r"""
#include <nno/plugin.h>
#include <nno/sdk.h>

static const nno_host_api *api;

static int ext_get(nno_req *req, void *ud) {
  (void)ud;
  return api->res_json(req, 200, "{\"ext\":true}", 12);
}

/* POST /ext/echo {"name": "..."}: the SDK reads and checks the body. */
static int ext_echo(nno_req *req, void *ud) {
  static const nno_field fields[] = {NNO_FIELD_STR("name", 1, 1, 16)};
  json_t *b;
  (void)ud;
  if (nno_body_object(req, 1024, NNO_BODY_JSON_TYPE, &b)) return NNO_OK;
  if (nno_fields_check(req, b, fields, 1)) {
    json_decref(b);
    return NNO_OK;
  }
  json_t *out = json_pack("{s:O}", "echo", json_object_get(b, "name"));
  json_decref(b);
  return nno_send_json(req, 200, out);
}

static int init(nno_plugin *p, const nno_host_api *host) {
  int rc;
  api = host;
  nno_sdk_init(p, host);
  if ((rc = api->route_add(p, "GET", "/ext", ext_get, NULL))) return rc;
  return api->route_add(p, "POST", "/ext/echo", ext_echo, NULL);
}

NNO_PLUGIN(.name = "ext", .version = "1.0.0", .kind = NNO_KIND_FEATURE,
           .on_plugin_init = init)
"""

PACKAGE = {"name": "ext", "version": "1.0.0", "abi": "1.5",
           "kind": "feature", "library": "libext.so",
           "routes": [{"method": "GET", "path": "/ext"},
                      {"method": "POST", "path": "/ext/echo"}]}
STACK = {"id": "ext", "version": "1.0.0",
         "packages": [{"name": "ext", "version": "1.0.0"}]}


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300, **kw)
    assert p.returncode == 0, "%s failed (%d):\n%s" % (
        " ".join(shlex.quote(str(c)) for c in cmd), p.returncode, p.stdout)
    return p.stdout


def install(prefix):
    run(["cmake", "--install", BUILD, "--prefix", prefix])
    nno = os.path.join(prefix, "bin", "nno")
    assert os.access(nno, os.X_OK), "no bin/nno under the install prefix"
    assert os.path.isfile(os.path.join(prefix, "include", "nno", "plugin.h"))
    # lib/ or lib/<multiarch>/, whichever GNUInstallDirs chose.
    pcs = glob.glob(os.path.join(prefix, "lib*", "**", "nno-plugin.pc"),
                    recursive=True)
    assert len(pcs) == 1, "expected one installed nno-plugin.pc, got %r" % pcs
    pc_dir = os.path.dirname(pcs[0])
    assert os.path.isfile(os.path.join(pc_dir, "nno-sdk.pc"))
    assert os.path.isfile(os.path.join(prefix, "include", "nno", "sdk.h"))
    assert os.path.isfile(os.path.join(prefix, "include", "nno", "sdk",
                                       "problem.h"))
    return nno, pc_dir


def build_package(src_dir, pc_dir, prefix):
    env = dict(os.environ, PKG_CONFIG_PATH=pc_dir)
    cflags = run(["pkg-config", "--cflags", "nno-sdk"], env=env).split()
    libs = run(["pkg-config", "--libs", "nno-sdk"], env=env).split()
    # The flags must point into this prefix, not the prefix the build was
    # configured with (the .pc file has to be relocatable), or a stale
    # /usr/local install would be compiled against instead.
    incs = [f[2:] for f in cflags if f.startswith("-I")]
    want = os.path.realpath(os.path.join(prefix, "include"))
    assert any(os.path.realpath(i) == want for i in incs), (
        "pkg-config --cflags nno-plugin gives %r, not -I%s: nno-plugin.pc "
        "is not relocatable (prefix=${pcfiledir}/...)" % (cflags, want))
    # The SDK: linked from this prefix, with nno-plugin's flags and jansson.
    libdirs = [f[2:] for f in libs if f.startswith("-L")]
    assert "-lnno_sdk" in libs and "-ljansson" in libs, libs
    assert "-Wl,--no-undefined" in libs and "-fvisibility=hidden" in cflags
    assert any(os.path.isfile(os.path.join(d, "libnno_sdk.a")) and
               os.path.realpath(d).startswith(os.path.realpath(prefix))
               for d in libdirs), (
        "pkg-config --libs nno-sdk gives %r: not the prefix's libnno_sdk.a"
        % libs)

    src = os.path.join(src_dir, "pkg.c")
    with open(src, "w") as f:
        f.write(PKG_C)
    lib = os.path.join(src_dir, "libext.so")
    run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"] + cflags +
        [src, "-o", lib] + libs, cwd=src_dir)

    # The SDK is inside, and none of it is exported.
    assert "nno_fields_check" in run(["nm", lib])
    syms = run(["nm", "-D", "--defined-only", lib]).split("\n")
    names = sorted(line.split()[-1] for line in syms if line.strip())
    assert names == ["nno_plugin_descriptor"], (
        "libext.so must export only nno_plugin_descriptor, exports %r" % names)
    return lib


def make_stack(stacks_dir, lib):
    top = os.path.join(stacks_dir, "ext", "1.0.0")
    pkg = os.path.join(top, "packages", "ext")
    os.makedirs(pkg)
    with open(os.path.join(top, "stack.json"), "w") as f:
        json.dump(STACK, f)
    with open(os.path.join(pkg, "package.json"), "w") as f:
        json.dump(PACKAGE, f)
    os.rename(lib, os.path.join(pkg, "libext.so"))


def test_installed_host_serves_out_of_tree_package(tmp_path):
    prefix = str(tmp_path / "prefix")
    nno, pc_dir = install(prefix)

    src_dir = tmp_path / "ext-src"
    src_dir.mkdir()
    lib = build_package(str(src_dir), pc_dir, prefix)

    stacks_dir = str(tmp_path / "stacks")
    make_stack(stacks_dir, lib)

    hdir = tmp_path / "host"
    hdir.mkdir()
    h = Host(hdir, binary=nno, stacks=[stacks_dir])
    try:
        h.start()
        st, hdrs, body = h.request("GET", "/ext")
        assert st == 200, (st, body, h.log_text())
        assert hdrs.get("content-type", "").startswith("application/json")
        assert json.loads(body) == {"ext": True}

        # The SDK's answers, from the package built outside the tree.
        js = {"Content-Type": "application/json"}
        st, hdrs, body = h.request("POST", "/ext/echo", body=b'{"name":"ada"}',
                                   headers=js)
        assert st == 200 and json.loads(body) == {"echo": "ada"}, (st, body)
        st, hdrs, body = h.request("POST", "/ext/echo", body=b'{"nom":"x"}',
                                   headers=js)
        p = json.loads(body)
        assert st == 422 and p["field"] == "nom", (st, body)
        assert p["detail"] == 'field "nom": unknown field', p
        assert hdrs["content-type"] == "application/problem+json"
        assert p["request_id"] == hdrs["x-request-id"], (p, hdrs)
        st, hdrs, body = h.request("POST", "/ext/echo", body=b'{"name":"x"}')
        assert st == 415, (st, body)
        assert json.loads(body)["title"] == "Unsupported Media Type"

        # The default stack installed with the host still answers.
        st, _, body = h.request("GET", "/hello")
        assert st == 200, (st, body, h.log_text())
    finally:
        h.stop()
