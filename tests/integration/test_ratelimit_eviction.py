"""The shared rate-limit table under pressure, black box: a lock-out cannot be
flushed out of the table by a flood of other keys, from the caller's own
address or from others, on its platform or another one; a table with no
room refuses instead of forgetting; /metrics shows the pressure
(host/ratelimit.h)."""
import http.client
import json
import os
import re
import shutil
import signal

from conftest import BUILD

STACK_SRC = os.path.join(BUILD, "share", "nno", "stacks", "default", "1.0.0")
PASSWORD = "correct horse battery"
LOCKED = "too many failed sign-ins; try again later"
BUCKETS = 64  # a small table: thousands of keys are many times its size


def cheap_auth_stack(tmp_path):
    """The default stack as 1.0.1 with hashing made cheap (the flood is
    thousands of sign-ins) and one failure allowed per address, so each
    flooding address soon gets its answers without hashing."""
    dst = tmp_path / "stacks" / "default" / "1.0.1"
    shutil.copytree(STACK_SRC, str(dst))
    with open(str(dst / "stack.json")) as f:
        manifest = json.load(f)
    manifest["version"] = "1.0.1"
    with open(str(dst / "stack.json"), "w") as f:
        json.dump(manifest, f)
    pj = dst / "packages" / "auth" / "package.json"
    with open(str(pj)) as f:
        pkg = json.load(f)
    pkg["config"].update(pwhash_ops=1, pwhash_mem_kib=8,
                         signin_address_burst=1)
    with open(str(pj), "w") as f:
        json.dump(pkg, f)
    return str(tmp_path / "stacks")


class Client:
    """Keep-alive requests from one loopback source address (the TCP peer
    address is what the address limits count)."""

    def __init__(self, host, addr):
        self.host, self.addr, self.conn = host, addr, None

    def sign_in(self, pid, email, password="wrong password"):
        body = json.dumps({"email": email, "password": password}).encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.host.port, timeout=10,
                    source_address=(self.addr, 0))
            try:
                self.conn.request("POST", "/p/%s/auth/sign-in" % pid,
                                  body=body,
                                  headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, json.loads(data) if data else None
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def platform(host, pid):
    st, _, p = host.api("POST", "/platforms",
                        {"id": pid, "name": pid, "plan": "unmetered"})
    assert st == 201, p
    st, _, a = host.api("POST", "/platforms/%s/stacks" % pid,
                        {"stack": "default"})
    assert st == 201 and a["version"] == "1.0.1", a
    st, _, body = host.api("PUT", "/platforms/%s/access" % pid,
                           {"signup": True, "cors_origins": []})
    assert st in (200, 201, 204), (st, body)


def metrics(host):
    st, _, body = host.request("GET", "/metrics")
    assert st == 200
    out = {}
    for name in ("buckets_total", "buckets_used", "evictions_total",
                 "full_total", "lock_steals_total"):
        m = re.search(r"^nno_ratelimit_%s (\d+)$" % name, body.decode(), re.M)
        assert m, (name, body)
        out[name] = int(m.group(1))
    return out


def test_a_lock_out_survives_a_flood_of_other_keys(make_host, tmp_path):
    host = make_host(workers=2, core=True, stacks=[cheap_auth_stack(tmp_path)],
                     # The auth package reaches IAM through a service: its
                     # stack runs in-process, as the builtin one does.
                     config={"limits": {"rate_buckets": BUCKETS},
                             "sandbox": {"inprocess": "default"}}).start()
    platform(host, "rl-a")
    platform(host, "rl-b")
    st, _, body = host.request(
        "POST", "/p/rl-a/auth/sign-up",
        body=json.dumps({"email": "victim@example.com",
                         "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    assert st == 201, body
    assert metrics(host)["buckets_total"] == BUCKETS

    # Five guesses, from five addresses: the account is locked (even for
    # the right password, from an address that never failed).
    for i in range(5):
        c = Client(host, "127.0.0.%d" % (11 + i))
        assert c.sign_in("rl-a", "victim@example.com", "guess %d" % i)[0] == 401
        c.close()
    fresh = Client(host, "127.0.0.20")
    st, body = fresh.sign_in("rl-a", "victim@example.com", PASSWORD)
    assert (st, body.get("detail")) == (429, LOCKED), (st, body)

    # The flood: 4,000 sign-ins with other emails, from the victim's
    # guessing addresses and others, to its platform and another one.
    before = metrics(host)
    clients = [Client(host, "127.0.0.%d" % i) for i in (1, 2, 3, 4, 11, 15)]
    statuses = {}
    for n in range(4000):
        c = clients[n % len(clients)]
        st, _ = c.sign_in("rl-b" if n // len(clients) % 3 == 0 else "rl-a",
                          "filler%d@example.com" % n)
        statuses[st] = statuses.get(st, 0) + 1
    for c in clients:
        c.close()
    assert set(statuses) <= {401, 429}, statuses
    after = metrics(host)
    assert after["buckets_used"] == BUCKETS, after
    # Thousands of buckets went through 64 slots: the full ones were reused.
    assert after["evictions_total"] - before["evictions_total"] > 1000, after

    # Still locked, by its own bucket (the answer is the lock-out's, not a
    # refusal for want of room), from an address that never failed.
    other = Client(host, "127.0.0.21")
    for c in (fresh, other):
        st, body = c.sign_in("rl-a", "victim@example.com", PASSWORD)
        assert (st, body.get("detail")) == (429, LOCKED), (st, body)
        c.close()
    assert metrics(host)["full_total"] == after["full_total"]

    # Now fill the table with buckets that are busy (each fresh address's
    # first failure: its address bucket and the account's): once no slot
    # near a new key is free or full, new keys are refused, never another
    # key's refusing bucket thrown out.
    for i in range(200):
        c = Client(host, "127.0.1.%d" % (i + 1))
        st, _ = c.sign_in("rl-b", "busy%d@example.com" % i)
        # 503: no room for the new address's bucket (the host's capacity)
        assert st in (401, 429, 503), st
        c.close()
    full = metrics(host)
    assert full["full_total"] > after["full_total"], full
    assert full["buckets_used"] == BUCKETS
    st, body = Client(host, "127.0.0.22").sign_in("rl-a", "victim@example.com",
                                                 PASSWORD)
    # still locked (429), or no room for this address's bucket (503)
    assert st in (429, 503) and "token" not in body, body


def test_table_size_is_configured_and_kept_across_reloads(make_host):
    host = make_host(workers=1, env={"NNO_RATE_BUCKETS": "100"}).start()
    m = metrics(host)
    assert (m["buckets_total"], m["buckets_used"]) == (100, 0), m
    host.stop()
    # Out of bounds: refused with the bounds named.
    bad = make_host(workers=1, config={"limits": {"rate_buckets": 63}})
    bad.start(wait=False)
    assert bad.proc.wait(15) != 0
    assert "limits.rate_buckets: expected an integer from 64 to 4194304" \
        in bad.log_text()
    # The workers share one table mapped at start: a reload keeps its size.
    h = make_host(workers=1, config={"limits": {"rate_buckets": 64}}).start()
    with open(h.config_path) as f:
        cfg = json.load(f)
    cfg["limits"] = {"rate_buckets": 128}
    with open(h.config_path, "w") as f:
        json.dump(cfg, f)
    h.signal(signal.SIGHUP)
    e = h.wait_log(lambda e: "rate_buckets" in e.get("msg", ""))
    assert e["msg"] == "limits.rate_buckets changes only on restart; " \
        "keeping 64", e
    h.wait_log(lambda e: e.get("msg", "").startswith("reloaded"))
    assert metrics(h)["buckets_total"] == 64
