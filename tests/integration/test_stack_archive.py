"""Stack archives: `nno stack pack|keygen|sign` and extraction of hostile
archives.

The hostile corpus is built here with tarfile/gzip, one archive per
refusal. Each is extracted into an empty staging folder inside a scratch
root that also holds an "outside" folder; each must be refused with its
own kind and message, and the file system is compared before and after:
nothing may change outside the staging folder, and nothing but regular
files and folders may appear inside it.

Extraction runs through tests/extract_tool (archive_extract with the
configuration's limits, `--set stacks.KEY=VALUE`, and `--keys` as
stacks.trusted_keys).
"""
import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile

import pytest

from conftest import BUILD, NNO

EXTRACT = os.path.join(BUILD, "tests", "extract_tool")
DEFAULT_ARCHIVE = os.path.join(BUILD, "stacks", "default-1.0.0.tar.gz")
DEFAULT_DIR = os.path.join(BUILD, "share", "nno", "stacks", "default",
                           "1.0.0")

STACK_JSON = (b'{"id": "s", "version": "1.0.0",\n'
              b' "packages": [{"name": "p", "version": "^1.0.0"}]}\n')
PACKAGE_JSON = (b'{"name": "p", "version": "1.0.0", "abi": "1.5",'
                b' "kind": "feature", "library": "libp.so"}\n')


def good_files():
    return {"stack.json": STACK_JSON,
            "packages/p/package.json": PACKAGE_JSON,
            "packages/p/libp.so": b"\x7fELF not really\n"}


def checksums(files):
    return "".join("%s  %s\n" % (hashlib.sha256(files[p]).hexdigest(), p)
                   for p in sorted(files)).encode()


# -- building archives ----------------------------------------------------

def reg(name, data=b"", mode=0o644):
    return ("reg", name, data, mode)


def member(tar, kind, name, data=b"", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.mode = mode
    if kind == "reg":
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
        return
    ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
               "lnk": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
               "chr": tarfile.CHRTYPE}[kind]
    if kind in ("sym", "lnk"):
        ti.linkname = data
    if kind == "chr":
        ti.devmajor, ti.devminor = 1, 3  # /dev/null
    tar.addfile(ti)


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT, encoding="utf-8"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt,
                      encoding=encoding) as tar:
        for e in entries:
            member(tar, *e)
    return buf.getvalue()


def stack_archive(extra=(), files=None, sums=None, fmt=tarfile.PAX_FORMAT,
                  encoding="utf-8", gz=True):
    """A valid stack archive (CHECKSUMS over `files`), then `extra`
    entries. `sums` replaces the CHECKSUMS text."""
    files = good_files() if files is None else files
    entries = [reg("CHECKSUMS", checksums(files) if sums is None else sums)]
    entries += [reg(p, files[p]) for p in sorted(files)]
    entries += list(extra)
    data = tar_bytes(entries, fmt, encoding)
    return gzip.compress(data, mtime=0) if gz else data


# -- extracting -------------------------------------------------------------

def snapshot(root, skip):
    """Every path under root but `skip`: type, size, mode, mtime."""
    seen = {}
    for d, dirs, names in os.walk(root):
        if os.path.abspath(d) == os.path.abspath(skip):
            dirs[:] = []
            continue
        for n in dirs + names:
            p = os.path.join(d, n)
            if os.path.abspath(p) == os.path.abspath(skip):
                continue
            st = os.lstat(p)
            seen[os.path.relpath(p, root)] = (
                stat.S_IFMT(st.st_mode), st.st_size, st.st_mode,
                st.st_mtime_ns)
    return seen


def extract(tmp_path, archive, sets=(), keys=None, pipe=False):
    """Extract `archive` (bytes or a path) into root/staging (`pipe`: fed
    through a pipe); returns (ok, fields) with fields "kind", "http",
    "file", "message" on refusal, after checking nothing changed outside
    staging."""
    root = tmp_path / "root"
    outside = root / "outside"
    staging = root / "staging"
    outside.mkdir(parents=True)
    staging.mkdir()
    (outside / "sentinel").write_bytes(b"keep me\n")
    if isinstance(archive, bytes):
        path = tmp_path / "in.tar.gz"
        path.write_bytes(archive)
    else:
        path = archive
    before = snapshot(str(tmp_path), str(staging))
    args = [EXTRACT, "-" if pipe else str(path), str(staging)]
    for s in sets:
        args += ["--set", s]
    if keys:
        args += ["--keys", str(keys)]
    r = subprocess.run(args, capture_output=True, timeout=60,
                       input=open(path, "rb").read() if pipe else None)
    assert r.returncode in (0, 1), r.stderr
    assert snapshot(str(tmp_path), str(staging)) == before
    for d, dirs, names in os.walk(str(staging)):
        for n in dirs + names:
            mode = os.lstat(os.path.join(d, n)).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), n
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode == 0:
        return True, out.split()
    lines = dict(line.split(" ", 1) if " " in line else (line, "")
                 for line in out.splitlines())
    kind, http = lines["error"].split()
    return False, {"kind": kind, "http": int(http), "file": lines["file"],
                   "message": lines["message"]}


def refused(tmp_path, archive, kind, words, sets=(), keys=None, http=422,
            pipe=False):
    ok, f = extract(tmp_path, archive, sets, keys, pipe)
    assert not ok, "accepted: %r" % (f,)
    assert f["kind"] == kind, f
    assert f["http"] == http, f
    for w in words:
        assert w in f["message"], f
    return f


def test_valid_archive_built_here_extracts(tmp_path):
    ok, f = extract(tmp_path, stack_archive())
    assert ok, f
    assert f[1:3] == ["s", "1.0.0"]
    staging = tmp_path / "root" / "staging"
    assert (staging / "packages/p/libp.so").read_bytes() == \
        good_files()["packages/p/libp.so"]
    assert (staging / "stack.json").stat().st_mode & 0o777 == 0o644


# -- the hostile corpus: one archive per refusal -----------------------------

def outside_path(tmp_path, name="pwned"):
    return str(tmp_path / "root" / "outside" / name)


CASES = {
    # kind, message words, builder(tmp_path), --set limits
    "absolute": ("absolute-path", ["absolute path"],
                 lambda t: stack_archive([reg(outside_path(t), b"x")]), ()),
    "dot-dot": ("dot-dot", ['".." component'],
                lambda t: stack_archive([reg("../outside/pwned", b"x")]), ()),
    "dot-dot-inner": ("dot-dot", ['".." component'],
                      lambda t: stack_archive(
                          [reg("packages/../../outside/pwned", b"x")]), ()),
    "symlink": ("link", ["symbolic link", "../outside"],
                lambda t: stack_archive([("sym", "ui", "../outside"),
                                         reg("ui/pwned", b"x")]), ()),
    "symlink-absolute": ("link", ["symbolic link"],
                         lambda t: stack_archive(
                             [("sym", "etc", "/etc")]), ()),
    "hardlink": ("link", ["hard link"],
                 lambda t: stack_archive(
                     [("lnk", "h", outside_path(t, "sentinel"))]), ()),
    "fifo": ("special-file", ["FIFO"],
             lambda t: stack_archive([("fifo", "pipe")]), ()),
    "device": ("special-file", ["character device"],
               lambda t: stack_archive([("chr", "null")]), ()),
    "duplicate": ("duplicate", ["second entry of the same path"],
                  lambda t: stack_archive([reg("stack.json", b"{}")]), ()),
    "file-then-folder": ("duplicate", ["a folder where an earlier entry is "
                                       "a file"],
                         lambda t: stack_archive(
                             [("dir", "packages/p/libp.so")]), ()),
    "folder-then-file": ("duplicate", ["a file where an earlier entry is a "
                                       "folder"],
                         lambda t: stack_archive([reg("packages/p", b"x")]),
                         ()),
    "through-a-file": ("duplicate", ['goes through the file "stack.json"'],
                       lambda t: stack_archive(
                           [reg("stack.json/x", b"x")]), ()),
    "entry-too-large": ("entry-too-large", ["stacks.max_entry_bytes"],
                        lambda t: stack_archive([reg("big", b"x" * 4096)]),
                        ("stacks.max_entry_bytes=1024",)),
    "too-large-unpacked": ("too-large", ["stacks.max_unpacked_bytes"],
                           lambda t: stack_archive(
                               [reg("f%d" % i, b"y" * 1000)
                                for i in range(4)]),
                           ("stacks.max_unpacked_bytes=2048",)),
    "too-many-entries": ("too-many-entries", ["stacks.max_entries (6)"],
                         lambda t: stack_archive(
                             [reg("f%d" % i) for i in range(10)]),
                         ("stacks.max_entries=6",)),
    "ratio": ("ratio", ["stacks.max_ratio (10)"],
              lambda t: stack_archive([reg("zeros", bytes(4 << 20))]),
              ("stacks.max_ratio=10",)),
    "not-utf8": ("bad-name", ["not UTF-8"],
                 lambda t: stack_archive([reg("caf\u00e9", b"x")],
                                         fmt=tarfile.USTAR_FORMAT,
                                         encoding="latin-1"), ()),
    "control-char": ("bad-name", ["control character"],
                     lambda t: stack_archive([reg("a\nb", b"x")]), ()),
    "long-component": ("bad-name", ["component of 256 bytes"],
                       lambda t: stack_archive([reg("a" * 256, b"x")]), ()),
    "long-name": ("bad-name", ["name of 1205 bytes"],
                  lambda t: stack_archive(
                      [reg("/".join(["d" * 200] * 6), b"x")]), ()),
    "checksum-lies": ("checksum", ["CHECKSUMS says"],
                      lambda t: stack_archive(
                          files=dict(good_files(), **{"stack.json": b"{}"}),
                          sums=checksums(good_files())), ()),
    "unlisted": ("unlisted", ['"packages/p/extra": not listed'],
                 lambda t: stack_archive([reg("packages/p/extra", b"x")]),
                 ()),
    "listed-absent": ("missing", ['"packages/p/gone": listed in CHECKSUMS',
                                  "not in the archive"],
                      lambda t: stack_archive(sums=checksums(
                          dict(good_files(),
                               **{"packages/p/gone": b"x"}))), ()),
    "checksums-malformed": ("checksum", ["CHECKSUMS line 1"],
                            lambda t: stack_archive(sums=b"nonsense\n"), ()),
    "no-checksums": ("missing", ["no CHECKSUMS"],
                     lambda t: gzip.compress(tar_bytes(
                         [reg(p, d) for p, d in good_files().items()]),
                         mtime=0), ()),
    "archive-too-large": ("too-large", ["stacks.max_archive_bytes"],
                          lambda t: stack_archive(
                              [reg("noise", os.urandom(8192))]),
                          ("stacks.max_archive_bytes=4096",)),
    "not-gzip": ("corrupt", ["not gzip'd"],
                 lambda t: stack_archive(gz=False), ()),
    "not-tar": ("corrupt", ["not a valid gzip'd tar"],
                lambda t: gzip.compress(b"hello, not a tar\n" * 100), ()),
    "garbage": ("corrupt", ["not a valid gzip'd tar"],
                lambda t: os.urandom(3000), ()),
    "truncated": ("corrupt", ["not a valid gzip'd tar"],
                  lambda t: stack_archive([reg("big", os.urandom(100000))])
                  [:50000], ()),
}
HTTP = {"entry-too-large": 413, "too-large": 413, "too-many-entries": 413,
        "ratio": 413}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archive_refused(tmp_path, case):
    kind, words, build, sets = CASES[case]
    refused(tmp_path, build(tmp_path), kind, words, sets=sets,
            http=HTTP.get(kind, 422))
    assert not os.path.exists(outside_path(tmp_path))


def test_archive_size_counted_as_read(tmp_path):
    """Through a pipe the size is not known up front: the bytes are
    counted as they are read."""
    big = stack_archive([reg("noise", os.urandom(8192))])
    refused(tmp_path, big, "too-large", ["stacks.max_archive_bytes (4096"],
            sets=("stacks.max_archive_bytes=4096",), http=413, pipe=True)
    sub = tmp_path / "ok"
    sub.mkdir()
    ok, f = extract(sub, stack_archive(), pipe=True)
    assert ok, f


def test_every_kind_has_its_own_message(tmp_path):
    """Two refusals of different kinds never share a message."""
    messages = {}
    for i, case in enumerate(sorted(CASES)):
        kind, words, build, sets = CASES[case]
        sub = tmp_path / str(i)
        sub.mkdir()
        f = refused(sub, build(sub), kind, words, sets=sets,
                    http=HTTP.get(kind, 422))
        messages.setdefault(f["message"], set()).add(kind)
    for m, kinds in messages.items():
        assert len(kinds) == 1, (m, kinds)


# -- the commands -------------------------------------------------------------

def nno(*args, cwd=None):
    return subprocess.run([NNO] + list(args), capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_build_packs_the_default_stack(tmp_path):
    ok, f = extract(tmp_path, DEFAULT_ARCHIVE)
    assert ok, f
    assert f[1:3] == ["default", "1.0.0"]
    assert f[4] == "-"
    with open(DEFAULT_ARCHIVE, "rb") as fh:
        assert f[3] == hashlib.sha256(fh.read()).hexdigest()


def test_pack_prints_path_and_sha256_and_is_reproducible(tmp_path):
    r = nno("stack", "pack", DEFAULT_DIR, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    sha, path = r.stdout.split()
    assert path == "default-1.0.0.tar.gz"
    data = (tmp_path / path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    r = nno("stack", "pack", DEFAULT_DIR, "-o", str(tmp_path / "again.tgz"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.tgz").read_bytes() == data
    with open(DEFAULT_ARCHIVE, "rb") as fh:
        assert fh.read() == data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        for ti in tar.getmembers():
            assert ti.mtime == 0 and ti.uid == 0 and ti.gid == 0
            assert ti.uname == "" and ti.gname == ""
            assert ti.isfile() or ti.isdir()
        sums = tar.extractfile("CHECKSUMS").read().decode()
    assert gzip.decompress(data)  # plain gzip
    assert data[4:8] == b"\0\0\0\0"  # no time in the gzip header
    listed = [line.split("  ", 1)[1] for line in sums.splitlines()]
    assert listed == sorted(listed)
    assert "stack.json" in listed


def test_sign_and_trusted_keys(tmp_path):
    r = nno("stack", "keygen", "ops", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    key_id = r.stdout.strip()
    assert len(key_id) == 16
    assert os.stat(tmp_path / "ops.key").st_mode & 0o777 == 0o600
    pub = (tmp_path / "ops.pub").read_text()
    assert pub.startswith("ed25519:")
    r = nno("stack", "keygen", "ops", cwd=str(tmp_path))
    assert r.returncode == 1
    assert "already exists" in r.stderr and "hint:" in r.stderr

    r = nno("stack", "sign", DEFAULT_ARCHIVE, "--key", "ops.key", "-o",
            "signed.tar.gz", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["signed.tar.gz", key_id]
    signed = tmp_path / "signed.tar.gz"
    with tarfile.open(signed) as tar:
        names = tar.getnames()
    assert names == sorted(names) and names[:2] == ["CHECKSUMS", "SIGNATURE"]

    sub = tmp_path / "a"
    sub.mkdir()
    ok, f = extract(sub, signed, keys=tmp_path / "ops.pub")
    assert ok, f
    assert f[4] == key_id

    # Unsigned with a keyring: refused.
    sub = tmp_path / "b"
    sub.mkdir()
    refused(sub, DEFAULT_ARCHIVE, "unsigned", ["not signed"],
            keys=tmp_path / "ops.pub", http=403)

    # Signed by a key the host does not trust.
    assert nno("stack", "keygen", "other", cwd=str(tmp_path)).returncode == 0
    sub = tmp_path / "c"
    sub.mkdir()
    refused(sub, signed, "untrusted-key", [key_id, "not in"],
            keys=tmp_path / "other.pub", http=403)

    # A signature that is not over this CHECKSUMS.
    with tarfile.open(signed) as tar:
        sig = tar.extractfile("SIGNATURE").read()
    files = good_files()
    forged = stack_archive([reg("SIGNATURE", sig)], files=files)
    sub = tmp_path / "d"
    sub.mkdir()
    refused(sub, forged, "bad-signature", ["does not match"],
            keys=tmp_path / "ops.pub", http=403)


def test_command_errors(tmp_path):
    r = nno("stack", "pack", str(tmp_path / "nowhere"))
    assert r.returncode == 1
    err = r.stderr.splitlines()
    assert len(err) == 2 and err[0].startswith("nno: stack pack: ")
    assert err[1].startswith("hint: ")
    r = nno("stack", "pack")
    assert r.returncode == 2 and "usage" in r.stderr
    r = nno("stack", "sign", DEFAULT_ARCHIVE)
    assert r.returncode == 2 and "--key" in r.stderr
    r = nno("stack", "pack", DEFAULT_DIR, "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = nno("stack", "sign", str(tmp_path / "nothing.tar.gz"), "--key",
            str(tmp_path / "none.key"))
    assert r.returncode == 1 and "hint:" in r.stderr
    r = nno("stack", "pack", "--help")
    assert r.returncode == 0 and "usage: nno stack pack" in r.stdout
    r = nno("help", "stack", "keygen")
    assert r.returncode == 0 and "usage: nno stack keygen" in r.stdout
    r = nno("--help")
    assert "stack sign" in r.stdout
