#!/usr/bin/python3
"""Write the seed inputs of every fuzz target into tests/fuzz/corpus/.

Seeds come from the unit tests' cases (test_http.c, test_router.c,
test_semver.c), the manifests in the tree, and requests the integration
tests send. Run from the checkout's root; existing files are kept (crash
inputs and merged finds live beside the seeds). Seed files are named
seed-<n>; rerunning rewrites them identically.
"""
import glob
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def c_strings(text):
    """Adjacent C string literals of a C expression, concatenated, with H
    (the Host line of test_http.c) expanded."""
    out = b""
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\bH\b', text):
        if m.group(0) == "H":
            out += b"Host: example.com\r\n"
            continue
        s = m.group(1)
        i = 0
        while i < len(s):
            c = s[i]
            if c != "\\":
                out += c.encode()
                i += 1
                continue
            n = s[i + 1]
            if n == "x":
                j = i + 2
                while j < len(s) and s[j] in "0123456789abcdefABCDEF":
                    j += 1
                out += bytes([int(s[i + 2:j], 16) & 0xFF])
                i = j
            elif n in "01234567":
                j = i + 1
                while j < len(s) and j < i + 4 and s[j] in "01234567":
                    j += 1
                out += bytes([int(s[i + 1:j], 8)])
                i = j
            else:
                out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0",
                        "\\": b"\\", '"': b'"', "'": b"'"}[n]
                i += 2
    return out


def write(target, blobs):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    seen = set()
    n = 0
    for b in blobs:
        h = hashlib.sha1(b).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        with open(os.path.join(d, "seed-%03d" % n), "wb") as f:
            f.write(b)
        n += 1
    print("%s: %d seeds" % (target, n))


def http_seeds():
    src = open(os.path.join(ROOT, "tests/unit/test_http.c")).read()
    reqs = []
    for m in re.finditer(r'\b(?:OK|NO)\(\s*"[^"]*",((?:[^()]|\([^()]*\))*)\)', src):
        body = m.group(1)
        # NO(name, req, status, detail): the request is before the status.
        body = re.split(r",\s*\d{3}\s*,", body)[0]
        r = c_strings(body)
        if r:
            reqs.append(r)
    reqs += [
        b"GET /p/demo/hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"Authorization: Bearer nnok_0123456789abcdef_" + b"A" * 43 + b"\r\n\r\n",
        b"POST /api/v1/platforms HTTP/1.1\r\nHost: nno.localhost\r\n"
        b"Content-Type: application/json\r\nContent-Length: 28\r\n\r\n"
        b'{"id":"acme","name":"Acme"}\n',
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n"
        b"Connection: close\r\n\r\n",
        b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://hello.demo.nno.localhost:8080/hello?x=1 HTTP/1.1\r\n"
        b"Host: ignored\r\n\r\n",
    ]
    out = []
    for i, r in enumerate(reqs):
        # Split in the middle and fed byte by byte; every other one with
        # the small limits (flag bit 0).
        at = len(r) // 2
        out.append(bytes([2 | (i & 1), at >> 8, at & 255]) + r)
    return out


def router_seeds():
    table = (b"GET /\nGET /hello\nGET /hello/world\nGET /help\n"
             b"GET /users/{id}\nGET /users/{id}/posts/{post_id}\n"
             b"DELETE /users/{user}\nGET /files/{rest...}\nGET /{all...}\n"
             b"* /any\nPOST /hello/\n")
    reqs = (b"GET /\nGET /hello\nHEAD /hello\nGET /hel\nGET /hello/world/x\n"
            b"GET /Hello\nGET //hello\nGET /users/42/posts/abc\n"
            b"DELETE /users/7\nPUT /users/7\nGET /users/\nGET /users\n"
            b"GET /users//posts/x\nGET /users/a%2Fb\nGET /files/a/b/c.txt\n"
            b"GET /files/\nPATCH /any\nPOST /hello/\nGET /hello/\n")
    return [
        table + b"\n" + reqs,
        b"GET /a/{x}/c\nGET /a/b/d\n\nGET /a/b/c\nGET /a/b/d\nGET /a/z/c\n",
        b"GET /a/b\nPOST /a/{x}\n\nPOST /a/b\nGET /a/b\nHEAD /a/b\n",
        b"GET /u/{id}\nGET /u/{name}\nBAD-METHOD /x\nGET x\nGET /a//b\n"
        b"GET /a/{x...}/b\nGET /{a}/{a}\n\n",
    ]


def manifest_seeds():
    files = []
    for pat in ("packages/*/package.json", "packages/stacks/*/stack.json",
                "registry/package.json", "plugins/*/package.json",
                "tests/fixtures/plugins/*.json"):
        files += sorted(glob.glob(os.path.join(ROOT, pat)))
    out = [open(f, "rb").read() for f in files]
    out += [b'{"id":"s","version":"1.0.0","packages":{"hello":"^1.0"}}',
            b'{"name":"x","version":"1.0.0","abi":"1.0","kind":"feature",'
            b'"library":"libx.so","routes":[{"method":"GET","path":"/u/{id}"},'
            b'{"method":"GET","path":"/u/{name}"}]}',
            b'[]', b'{"name":1}', b'{']
    res = (b'{"name":"x","version":"1.0.0","abi": "1.5","kind":"feature",'
           b'"library":"libx.so","resources":%s}')
    out += [res % r for r in (
        b'[{"type":"sql","name":"notes"},{"type":"kv","name":"notes"},'
        b'{"type":"blob","name":"files-2"}]',
        b'[{"type":"sql","name":"a"},{"type":"sql","name":"a"}]',
        b'[{"type":"sql","name":"a","extra":1}]',
        b'[{"type":"queue","name":"a"}]',
        b'[{"type":"kv","name":"a23456789012345678901234567890123"}]',
        b'[{"type":"kv"}]', b'[1]', b'{}')]
    return out


def config_seeds():
    return [
        b'{"listen":"127.0.0.1:8080","data":"./var","workers":2,'
        b'"limits":{"max_body_bytes":1048576,"idle_timeout_ms":60000},'
        b'"log":{"level":"info","access":true},'
        b'"stacks_dirs":["/srv/nno/stacks"],'
        b'"fetch":{"timeout_ms":30000,"max_bytes":8388608}}',
        b'{"listen":"[::1]:0","base_domain":"nno.localhost",'
        b'"builtin_stacks":false,"drain_timeout_ms":0}',
        b'{"workers":0}', b'{"limits":{"nope":1}}', b'[1]', b'{"log":{"level":"loud"}}',
        b'{}\0workers=4\nlimits.max_body_bytes=0\nlisten=127.0.0.1:9000\n'
        b'log.level=debug\nlog.access=off\nstacks_dirs=/a:/b::/c\n'
        b'data=/tmp/x\nplugin_dir=\nbogus=1\nworkers=65\n',
    ]


def semver_seeds():
    src = open(os.path.join(ROOT, "tests/unit/test_semver.c")).read()
    versions = re.findall(r'^\s*"([^"]*)",', src, re.M)
    ranges = re.findall(r'\{"([^"]*)", "([^"]*)", -?\d\}', src)
    out = []
    for i, v in enumerate(versions[:40]):
        w = versions[(i * 7 + 3) % len(versions)]
        out.append(("%s\n%s\n^%s" % (v, w, w)).encode())
    for r, v in ranges:
        out.append(("%s\n1.0.0\n%s" % (v, r)).encode())
    out += [b"4294967295.4294967295.4294967295\n0.0.0\n^4294967295 || >=1.2 <2",
            b"1.2.3-rc.1\n1.2.3\n>=1.2.3-rc.0 <1.2.3"]
    return out


def json_seeds():
    return [
        b'{"id":"acme","name":"Acme"}',
        b'{"name":"Acme Corp","class":"platform","plan":"free","owner":null}',
        b'{"id":"-bad","name":"x\\u0001"}',
        b'{"name":"x","limit":"20","cursor":"YWNtZQ","if_match":"\\"v7\\", *"}',
        b'{"name":"x","limit":"0","cursor":"!!"}',
        b'{"name":"' + "é".encode() * 40 + b'"}',
        b'{"stack":"default","version":"1.0.0"}',
        b'{"name":"x","extra":true}', b'{"name":1}', b'[1,2]', b'',
        b'{"a":[1,-0.5e10,true,false,null,"\\ud83d\\ude00"]}',
        b'{"a":"\\u0000"}', b'1e999', b'{"a":', b'"\xc3\xa9"', b'"\xed\xa0\x80"',
        b"[" * 129 + b"]" * 129,
        b'{"id":"acme","id":"x","name":"y"}',
    ]


def iam_seeds():
    key = b"nnok_0123456789abcdef_" + b"A" * 43
    ses = b"nnos_fedcba9876543210_" + b"b" * 43
    return [
        b"Bearer " + key + b"\n\nfeatures:* tenants:read\nfeatures:hello:read",
        b"bearer   " + ses + b"  \nnno_session=" + ses + b"; a=1\n*\ntenants:write",
        b"Basic dXNlcjpwYXNz\n a=1; ;nno_session=; nno_session=x\n"
        b"tenants:write keys:*\ntenants:read keys:write",
        b"Bearer\nnno_sessionx=1;=2\nx:write\nx:read y:read",
        b'{"plans":{"free":{"platform":[200,400],"key":[50,100],'
        b'"user":[20,40],"anonymous":[10,20]},"pro":{"key":[500.5,1000]}},'
        b'"default_plan":"pro","session_idle_s":3600,"session_cache_s":300,'
        b'"user_scopes":"features:*"}',
        b'{"plans":{}}', b'{"default_plan":"none"}',
    ]


def archive_seeds():
    """Stack archives: a flags byte (bit 0: gzip'd already), then a tar.
    A valid stack and one of each refusal the extraction tests build."""
    import gzip
    import io
    import tarfile

    def tar(entries, fmt=tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            for kind, name, data in entries:
                ti = tarfile.TarInfo(name)
                ti.mode = 0o644
                if kind == "reg":
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
                    continue
                ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                           "lnk": tarfile.LNKTYPE,
                           "fifo": tarfile.FIFOTYPE}[kind]
                ti.linkname = data.decode() if data else ""
                t.addfile(ti)
        return buf.getvalue()

    files = {
        "stack.json": b'{"id": "s", "version": "1.0.0", "packages": '
                      b'[{"name": "p", "version": "^1.0.0"}]}\n',
        "packages/p/package.json": b'{"name": "p", "version": "1.0.0"}\n',
        "packages/p/libp.so": b"\x7fELF\n",
    }
    sums = "".join("%s  %s\n" % (hashlib.sha256(files[p]).hexdigest(), p)
                   for p in sorted(files)).encode()
    good = [("reg", "CHECKSUMS", sums), ("dir", "packages", b"")]
    good += [("reg", p, files[p]) for p in sorted(files)]
    extra = [
        [], [("reg", "/abs", b"x")], [("reg", "../up", b"x")],
        [("sym", "ui", b"../x"), ("reg", "ui/f", b"x")],
        [("lnk", "h", b"stack.json")], [("fifo", "f", b"")],
        [("reg", "stack.json", b"{}")], [("reg", "stack.json/x", b"x")],
        [("reg", "packages/p/extra", b"x")], [("reg", "zeros", bytes(3 << 20))],
    ]
    out = []
    for e in extra:
        t = tar(good + e)
        out.append(b"\0" + t if len(t) < 64 << 10 else
                   b"\1" + gzip.compress(t, mtime=0))
    out.append(b"\1" + gzip.compress(tar(good), mtime=0))
    out.append(b"\0" + tar(good, tarfile.USTAR_FORMAT))
    return out


def sbx_seeds():
    """Frames a sandbox sends (host/sbx_proto.h): a well-formed READY, FAIL,
    RES (plain, JSON, a refused header, an event's), each CALL op, LOG and
    RECYCLE; a stream of several; and a few broken ones. The first byte
    is max_body in KiB."""
    import struct

    def s(b):
        b = b.encode() if isinstance(b, str) else b
        return struct.pack("<I", len(b)) + b + b"\0"

    def frame(typ, payload, ident=0, flags=0):
        return struct.pack("<IHHQ", len(payload), typ, flags, ident) + payload

    u8 = lambda v: struct.pack("<B", v)
    u16 = lambda v: struct.pack("<H", v)
    u32 = lambda v: struct.pack("<I", v)
    i32 = lambda v: struct.pack("<i", v)
    u64 = lambda v: struct.pack("<Q", v)

    def res(status, headers, body, keep="", written=1, rc=0):
        return u32(status) + s(headers) + s(keep) + s(body) + u8(written) + i32(rc)

    def call(op, args, cid=7):
        return frame(4, u64(cid) + u16(op) + args, ident=(1 << 32) | 3)

    ready = frame(1, u32(2) + s("hello") + s("1.0.0") + u32(2) + s("GET") + s("/hello")
                  + s("POST") + s("/items/{id}") + s("other") + s("2.1.0") + u32(0))
    frames = [
        ready,
        frame(2, s("stack/packages/x/package.json") + s("init failed")),
        frame(3, res(200, "Content-Type: text/plain\r\n", "hello\n"), ident=(1 << 32)),
        frame(3, res(201, "Content-Type: application/json\r\nX-A: b\r\n", '{"ok":true}',
                     keep="Access-Control-Allow-Origin: *\r\n"), ident=5),
        frame(3, res(200, "Content-Length: 5\r\n", "smuggle")),
        frame(3, res(200, "X-Bad: a\r\nb\r\n", "")),
        frame(3, res(999, "", "")),
        frame(3, res(0, "", "", written=0, rc=-5)),
        frame(3, res(0, "", "activation refused", written=0, rc=-5), flags=1),
        frame(3, res(200, "", "x" * 3000)),
        call(1, s("notes") + s("SELECT ?1") + s("[1]")),
        call(2, s("notes") + s('["SELECT 1"]')),
        call(3, s("cache") + s("k")),
        call(4, s("cache") + s("k") + s(b"v\0alue") + u64(60)),
        call(5, s("cache") + s("k")),
        call(6, s("cache") + s("p/") + s("") + u32(10)),
        call(7, s("files") + s("a.txt") + s("text/plain") + s(b"data\0")),
        call(8, s("files") + s("a.txt")),
        call(9, s("files") + s("a.txt")),
        call(10, s("files") + s("") + s("") + u32(0)),
        call(11, s("files") + s("a.txt") + u32(200) + s("X-A: 1\r\n") + s("")),
        call(12, s("GET") + s("http://example.com/") + u32(1) + s("Accept: */*")
             + s("") + u32(1000) + u64(65536)),
        call(13, s("key") + u64(0x4024000000000000) + u32(5) + u32(1)),
        call(14, s("hits")),
        call(15, s("hits") + u64(1)),
        call(16, s("sandbox.wall_ms")),
        frame(5, u8(2) + s("a line\tfrom the package")),
        frame(5, u8(2) + s("bad\nline")),
        frame(6, s("memory budget exceeded: 300 MiB of 256 MiB")),
    ]
    out = [b"\x40" + f for f in frames]
    out.append(b"\x01" + b"".join(frames))
    out.append(b"\x40" + frame(1, u32(1) + s("x")))          # short READY
    out.append(b"\x40" + struct.pack("<IHHQ", 0xffffffff, 3, 0, 1))  # oversize
    out.append(b"\x40" + frame(3, u32(200) + struct.pack("<I", 4) + b"abcd"))  # no NUL
    out.append(b"\x40" + frame(4, u64(1) + u16(99)))          # unknown op
    return out


def main():
    write("http", http_seeds())
    write("router", router_seeds())
    write("manifest", manifest_seeds())
    write("config", config_seeds())
    write("semver", semver_seeds())
    write("json", json_seeds())
    write("iam", iam_seeds())
    write("archive", archive_seeds())
    write("sbx", sbx_seeds())


if __name__ == "__main__":
    sys.exit(main())
