"""Who may hold an upload of POST /api/v1/stacks, and for how long.

Whoever cannot install (a key without stacks:deploy, a key of a platform
of class "platform", a tenant-bound key, a signed-up user's session) is
answered 403 from the head, before any body byte and before taking an
upload slot. A platform holds at most 2 uploads at a time per worker; an
upload's whole body must arrive within limits.upload_timeout_ms however
slowly it trickles; and parallel uploads of one owner never put more
versions on disk than stacks.max_owned_versions."""
import json
import os
import socket
import subprocess
import threading
import time

from test_stack_owner import archive, developer, env_for
from conftest import NNO

MiB = 1 << 20


def opened(h, key, length=64 * MiB):
    """A connection that sent the head of an archive upload of `length`
    bytes and no body byte."""
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    s.sendall(("POST /api/v1/stacks HTTP/1.1\r\n"
               "Host: 127.0.0.1:%d\r\n"
               "Authorization: Bearer %s\r\n"
               "Content-Type: application/gzip\r\n"
               "Content-Length: %d\r\n\r\n" % (h.port, key, length)).encode())
    return s


def answer(s, timeout):
    """(status, headers, JSON body) if an answer comes within `timeout`
    seconds, else None."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                return None
            buf += b
        h, _, body = buf.partition(b"\r\n\r\n")
        lines = h.decode().split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(body) < n:
            b = s.recv(65536)
            if not b:
                break
            body += b
        return int(lines[0].split()[1]), hdrs, json.loads(body[:n] or b"null")
    except socket.timeout:
        return None


def is_problem(got, status):
    assert got is not None, "no answer at the head"
    st, rh, b = got
    assert st == status, (st, b)
    assert rh["content-type"].startswith("application/problem+json"), rh
    assert b["status"] == status and b["request_id"], b


def sign_up(h, pid, email):
    st, _, b = h.api("PUT", "/platforms/%s/access" % pid,
                     {"signup": True, "user_scopes": ["stacks:deploy",
                                                      "features:*"]})
    assert st == 200, b
    st, _, b = h.json("POST", "/p/%s/auth/sign-up" % pid,
                      body=json.dumps({"email": email,
                                       "password": "correct horse battery"}),
                      headers={"Content-Type": "application/json"})
    assert st == 201, b
    return b["token"]


def test_who_cannot_install_is_refused_at_the_head(make_host):
    h = make_host(core=True, workers=1).start()
    h.platform("shop")
    reader = h.platform_key("shop", scopes=["platform:read"])["key"]
    shop_deployer = h.platform_key("shop", scopes=["stacks:deploy"])["key"]
    user = sign_up(h, "shop", "eve@example.com")
    dev = developer(h, "dev")
    st, _, b = h.api("POST", "/platforms/dev/tenants", {"id": "t1",
                                                        "name": "T1"})
    assert st == 201, b
    bound = h.platform_key("dev", scopes=["stacks:deploy"], tenant="t1")["key"]
    dev_reader = h.platform_key("dev", scopes=["stacks:read"])["key"]
    for who in (reader, shop_deployer, user, bound, dev_reader):
        s = opened(h, who)
        try:
            got = answer(s, 5)
            is_problem(got, 403)
            assert "only the operator installs stacks" in got[2]["detail"]
        finally:
            s.close()
    # Those who may install are waited for: their body is read.
    for who in (h.op_key(), dev):
        s = opened(h, who)
        try:
            assert answer(s, 1) is None
        finally:
            s.close()


def test_a_platform_holds_two_uploads_per_worker(make_host):
    h = make_host(core=True, workers=1).start()
    dev = developer(h, "dev")
    held = [opened(h, dev), opened(h, dev)]
    try:
        for s in held:
            assert answer(s, 0.5) is None
        s = opened(h, dev)
        held.append(s)
        got = answer(s, 5)
        is_problem(got, 429)
        assert got[1]["retry-after"], got
        # The operator, and another platform, still get a slot.
        other = developer(h, "dev2")
        for who in (h.op_key(), other):
            s = opened(h, who)
            held.append(s)
            assert answer(s, 1) is None
    finally:
        for s in held:
            s.close()


def test_platforms_together_leave_the_operator_a_slot(make_host):
    # 8 slots a worker: platforms' keys take at most 6 of them together,
    # so no number of platforms shuts the operator's installs out.
    h = make_host(core=True, workers=1).start()
    devs = [developer(h, "dev%d" % i) for i in range(4)]
    held = []
    try:
        for dev in devs[:3]:
            for _ in range(2):
                s = opened(h, dev)
                held.append(s)
                assert answer(s, 0.5) is None
        s = opened(h, devs[3])
        held.append(s)
        got = answer(s, 5)
        is_problem(got, 503)
        assert "platforms' keys" in got[2]["detail"], got
        assert got[1]["retry-after"], got
        for _ in range(2):
            s = opened(h, h.op_key())
            held.append(s)
            assert answer(s, 1) is None
    finally:
        for s in held:
            s.close()


def test_a_trickled_upload_ends_at_the_overall_limit(make_host):
    h = make_host(core=True, workers=1, config={
        "limits": {"upload_timeout_ms": 1500}}).start()
    s = opened(h, h.op_key(), length=MiB)
    try:
        start = time.monotonic()
        got = None
        while got is None and time.monotonic() - start < 10:
            s.sendall(b"x")
            got = answer(s, 0.2)
        is_problem(got, 408)
        assert "limits.upload_timeout_ms" in got[2]["detail"], got
        assert time.monotonic() - start < 6
    finally:
        s.close()
    assert not os.listdir(os.path.join(h.data, "tmp"))


def archives(tmp_path, name, versions):
    """`nno project build` of one project NAME at each version."""
    env = env_for(tmp_path)
    root = tmp_path / "many"
    root.mkdir()
    r = subprocess.run([NNO, "project", "init", name], cwd=str(root),
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    proj = root / name
    out, was = [], "0.1.0"
    for v in versions:
        for f in ("stack.json", "package.json"):
            p = proj / f
            p.write_text(p.read_text().replace('"%s"' % was, '"%s"' % v))
        was = v
        r = subprocess.run([NNO, "project", "build"], cwd=str(proj), env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        with open(str(proj / "dist" / ("%s-%s.tar.gz" % (name, v))),
                  "rb") as f:
            out.append(f.read())
    return out


def test_parallel_uploads_never_pass_the_bound(make_host, tmp_path):
    h = make_host(core=True, workers=2,
                  config={"stacks": {"max_owned_versions": 1}}).start()
    key = developer(h, "par")
    versions = ["0.%d.0" % i for i in range(1, 5)]
    built = archives(tmp_path, "par", versions)
    # Two platforms' keys of the same id cannot exist; two keys of one
    # platform share its slots: 2 per worker, 2 workers.
    keys = [key, h.platform_key("par", scopes=["stacks:deploy"])["key"]]
    results = [None] * len(built)
    go = threading.Barrier(len(built))

    def up(i):
        go.wait()
        results[i] = h.api("POST", "/stacks", built[i], key=keys[i % 2],
                           headers={"Content-Type": "application/gzip"},
                           timeout=60)[0]
    ts = [threading.Thread(target=up, args=(i,)) for i in range(len(built))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(st in (201, 409, 429) for st in results), results
    assert results.count(201) == 1, results
    on_disk = [v for v in os.listdir(os.path.join(h.data, "stacks", "par"))
               if not v.startswith(".")]
    assert len(on_disk) <= 1, (on_disk, results)
