"""Keys and signatures fail closed, and the stack commands say precisely
what is wrong.

- a SIGNATURE that does not read as one is refused even when no trusted
  keys are configured; unknown fields in it are refused;
- `nno stack sign` refuses an archive whose CHECKSUMS lies, and a secret
  key file others may read;
- a keyring file with no key, or one others may write, is an error (in
  `stack check` and `serve --check`, which also reads it);
- `nno stack --help` lists every stack command;
- the smallest package of plugin-api/README.md builds and passes;
- messages name paths once, without doubled slashes.
"""
import gzip
import io
import json
import os
import re
import subprocess
import tarfile

from conftest import BUILD, NNO, SOURCE
from test_stack_archive import DEFAULT_ARCHIVE, DEFAULT_DIR


def nno(*args, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NNO_")}
    return subprocess.run([NNO] + list(args), capture_output=True, text=True,
                          cwd=cwd, timeout=60, env=e)


def no_core(tmp_path):
    empty = os.path.join(str(tmp_path), "no-core-plugins")
    os.makedirs(empty, exist_ok=True)
    return ["--set", "plugin_dir=" + empty, "--set", "core_plugins="]


def rewrite(src, dst, change):
    """Copy archive src to dst with change(name, data) -> data (None:
    dropped) applied, and extra entries change(None, None) returns."""
    out = io.BytesIO()
    with tarfile.open(src, "r:gz") as t, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as w:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else None
            if m.isfile():
                data = change(m.name, data)
                if data is None:
                    continue
                m.size = len(data)
                w.addfile(m, io.BytesIO(data))
            else:
                w.addfile(m)
        for name, data in (change(None, None) or {}).items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            w.addfile(ti, io.BytesIO(data))
    with open(dst, "wb") as f:
        f.write(gzip.compress(out.getvalue(), mtime=0))


def with_signature(tmp_path, name, text):
    dst = os.path.join(str(tmp_path), name)
    rewrite(DEFAULT_ARCHIVE, dst,
            lambda n, d: {"SIGNATURE": text} if n is None else d)
    return dst


def test_a_broken_signature_is_refused_without_trusted_keys(tmp_path):
    bad = with_signature(tmp_path, "bad.tar.gz", b"not json\n")
    r = nno("stack", "check", bad, *no_core(tmp_path))
    assert r.returncode == 1, r
    assert r.stderr.startswith(
        'error: %s: field "SIGNATURE": entry "SIGNATURE": expected '
        '{"algorithm":"ed25519"' % bad), r.stderr
    # unknown fields, even around a well formed signature
    assert nno("stack", "keygen", os.path.join(str(tmp_path), "k")
               ).returncode == 0
    signed = os.path.join(str(tmp_path), "signed.tar.gz")
    r = nno("stack", "sign", DEFAULT_ARCHIVE, "--key",
            os.path.join(str(tmp_path), "k.key"), "-o", signed)
    assert r.returncode == 0, r
    with tarfile.open(signed, "r:gz") as t:
        sig = json.loads(t.extractfile("SIGNATURE").read())
    sig["comment"] = "x"
    extra = with_signature(tmp_path, "extra.tar.gz",
                           json.dumps(sig).encode())
    for keys in ([], ["--set", "stacks.trusted_keys=" +
                      os.path.join(str(tmp_path), "k.pub")]):
        r = nno("stack", "check", extra, *no_core(tmp_path), *keys)
        assert r.returncode == 1, r
        assert "and no other field" in r.stderr, r.stderr
    # the well formed one passes without keys and with its key
    r = nno("stack", "check", signed, *no_core(tmp_path))
    assert "SIGNATURE" not in r.stderr, r


def test_sign_refuses_a_lying_archive_and_a_loose_key(tmp_path):
    key = os.path.join(str(tmp_path), "k")
    assert nno("stack", "keygen", key).returncode == 0
    lying = os.path.join(str(tmp_path), "lying.tar.gz")
    rewrite(DEFAULT_ARCHIVE, lying,
            lambda n, d: d + b" " if n == "stack.json" else
            (None if n is None else d))
    r = nno("stack", "sign", lying, "--key", key + ".key")
    assert r.returncode == 1, r
    assert "stack.json" in r.stderr and "(not signed)" in r.stderr, r.stderr
    with tarfile.open(lying, "r:gz") as t:
        assert "SIGNATURE" not in t.getnames()
    os.chmod(key + ".key", 0o644)
    out = os.path.join(str(tmp_path), "s.tar.gz")
    r = nno("stack", "sign", DEFAULT_ARCHIVE, "--key", key + ".key", "-o",
            out)
    assert r.returncode == 1, r
    assert "readable or writable by group or others (mode 644; chmod 600" \
        in r.stderr, r.stderr
    assert not os.path.exists(out)
    os.chmod(key + ".key", 0o600)
    r = nno("stack", "sign", DEFAULT_ARCHIVE, "--key", key + ".key", "-o",
            out)
    assert r.returncode == 0, r


def test_a_keyring_without_a_key_or_loosely_owned_is_an_error(tmp_path):
    key = os.path.join(str(tmp_path), "k")
    assert nno("stack", "keygen", key).returncode == 0
    empty = os.path.join(str(tmp_path), "empty.pub")
    with open(empty, "w") as f:
        f.write("# keys go here\n")
    os.chmod(empty, 0o644)
    r = nno("stack", "check", DEFAULT_ARCHIVE, *no_core(tmp_path), "--set",
            "stacks.trusted_keys=" + empty)
    assert r.returncode == 1, r
    assert r.stderr.startswith("error: %s: no key (" % empty), r.stderr
    assert r.stderr.count(empty) == 1, r.stderr
    os.chmod(key + ".pub", 0o666)
    r = nno("stack", "check", DEFAULT_ARCHIVE, *no_core(tmp_path), "--set",
            "stacks.trusted_keys=" + key + ".pub")
    assert r.returncode == 1, r
    assert "writable by group or others" in r.stderr, r.stderr
    os.chmod(key + ".pub", 0o644)
    bad = os.path.join(str(tmp_path), "bad.pub")
    with open(bad, "w") as f:
        f.write("ed25519:nope\n")
    os.chmod(bad, 0o644)
    # a line error names the file once, then the line
    r = nno("stack", "check", DEFAULT_ARCHIVE, *no_core(tmp_path), "--set",
            "stacks.trusted_keys=" + bad)
    assert r.returncode == 1, r
    assert r.stderr.startswith("error: %s: line 1: " % bad), r.stderr
    assert r.stderr.count(bad) == 1, r.stderr
    if os.geteuid() == 0:
        # owned by another user (root can make one)
        other = os.path.join(str(tmp_path), "other.pub")
        with open(other, "w") as f:
            f.write(open(key + ".pub").read())
        os.chown(other, 65534, 65534)
        r = nno("stack", "check", DEFAULT_ARCHIVE, *no_core(tmp_path),
                "--set", "stacks.trusted_keys=" + other)
        assert r.returncode == 1, r
        assert "%s: belongs to uid 65534" % other in r.stderr, r.stderr
    # serve --check reads the keyring as an install would
    var = os.path.join(str(tmp_path), "var")
    for path, words in ((empty, "no key"),
                        (bad, "line 1: the key is not base64"),
                        (os.path.join(str(tmp_path), "missing.pub"),
                         "No such file or directory")):
        cfg = os.path.join(str(tmp_path), "c.json")
        with open(cfg, "w") as f:
            json.dump({"plugin_dir": os.path.join(str(tmp_path),
                                                  "no-core-plugins"),
                       "core_plugins": [], "builtin_stacks": False,
                       "stacks": {"trusted_keys": path}}, f)
        r = nno("serve", "--check", "--config", cfg, "--data", var)
        assert r.returncode == 1, (path, r)
        assert "error: %s: %s" % (path, words) in r.stderr, r.stderr
    with open(cfg, "w") as f:
        json.dump({"plugin_dir": os.path.join(str(tmp_path),
                                              "no-core-plugins"),
                   "core_plugins": [], "builtin_stacks": False,
                   "stacks": {"trusted_keys": key + ".pub"}}, f)
    r = nno("serve", "--check", "--config", cfg, "--data", var)
    assert r.returncode == 0, r


def test_stack_help_lists_every_stack_command():
    r = nno("stack", "--help")
    assert r.returncode == 0, r
    for sub in ("list", "show", "activate", "deactivate", "check", "pack",
                "keygen", "sign"):
        assert "  nno stack %s" % sub in r.stdout, r.stdout


def test_the_smallest_package_of_the_guide_passes(tmp_path):
    text = open(os.path.join(SOURCE, "plugin-api", "README.md")).read()
    part = text[text.index("## The smallest package"):]
    c_src = re.search(r"```c\n(.*?)```", part, re.S).group(1)
    manifest = re.search(r"```json\n(.*?)```", part, re.S).group(1)
    d = os.path.join(str(tmp_path), "ping")
    os.makedirs(d)
    with open(os.path.join(d, "ping.c"), "w") as f:
        f.write(c_src)
    with open(os.path.join(d, "package.json"), "w") as f:
        f.write(manifest)
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror",
                    "-fvisibility=hidden",
                    "-I", os.path.join(SOURCE, "plugin-api", "include"),
                    os.path.join(d, "ping.c"), "-o",
                    os.path.join(d, "libping.so")], check=True)
    r = nno("check-package", d, *no_core(tmp_path))
    assert (r.returncode, r.stdout) == (0, "package ok\n"), r


def test_paths_are_named_once_and_hints_fit(tmp_path):
    # a folder given with its slash
    out = os.path.join(str(tmp_path), "packed") + "/"
    os.makedirs(out)
    r = nno("stack", "pack", DEFAULT_DIR, "-o", out)
    assert r.returncode == 0, r
    assert "//" not in r.stdout and r.stdout.rstrip().endswith(
        "packed/default-1.0.0.tar.gz"), r.stdout
    # where to write is what failed, not DIR
    r = nno("stack", "pack", DEFAULT_DIR, "-o", "/nonexistent/x.tar.gz")
    assert r.returncode == 1, r
    assert "hint: -o is a folder that exists, or a file in one" in r.stderr
    # an absolute entry name is the field, not glued to the file's path
    abs_ = os.path.join(str(tmp_path), "abs.tar.gz")
    rewrite(DEFAULT_ARCHIVE, abs_,
            lambda n, d: {"/tmp/evil": b"x"} if n is None else d)
    r = nno("stack", "check", abs_, *no_core(tmp_path))
    assert r.returncode == 1, r
    assert r.stderr.startswith('error: %s: field "/tmp/evil": ' % abs_), \
        r.stderr
    assert "//" not in r.stderr, r.stderr
