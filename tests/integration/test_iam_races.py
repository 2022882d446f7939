"""IAM keys under concurrency and in tenant-bound lists, black box: a key
created while its session signs out (or its creating key is revoked) never
outlives it, revoking a key revokes the keys it made, a tenant-bound key's
list pages hold and point at its own subtree only, and key creation does
not replay an Idempotency-Key (plugins/iam/README.md)."""
import base64
import threading

from test_iam import (call, h, hello, new_key, op, platform, problem,
                      session, sign_in, tenant)
from test_iam_review import everywhere, make_key, open_platform

assert h  # the module-scoped host of test_iam.py, used by these tests too

ROUNDS = 10
CREATORS = 12


def keys_path(pid):
    return "/api/v1/platforms/%s/keys" % pid


def all_keys(h, pid):
    """Every key of the platform as the operator sees it, by id."""
    out, cursor = {}, None
    while True:
        q = "/platforms/%s/keys?limit=500" % pid
        if cursor:
            q += "&cursor=" + cursor
        st, _, page = op(h, "GET", q)
        assert st == 200, page
        out.update((i["id"], i) for i in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def race(h, pid, creator, end):
    """CREATORS concurrent key creations by `creator` (a bearer token)
    while `end()` runs on another thread. Returns the creations' answers
    and end()'s status."""
    gate = threading.Barrier(CREATORS + 1)
    answers, ended = [None] * CREATORS, []

    def create(i):
        gate.wait()
        answers[i] = call(h, "POST", keys_path(pid), key=creator,
                          body={"name": "race%d" % i,
                                "scopes": ["features:*"]})

    def finish():
        gate.wait()
        ended.append(end())

    threads = [threading.Thread(target=create, args=(i,))
               for i in range(CREATORS)]
    threads.append(threading.Thread(target=finish))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    return answers, ended[0]


def check_nothing_outlives(h, pid, answers):
    made = []
    for st, _, body in answers:
        assert st in (201, 401), (st, body)
        if st == 201:
            made.append(body["key"])
        else:
            problem((st, _, body), 401)
    # no key of the platform is live: each was made by the ended
    # credential, so each was either revoked with it or never made
    live = [k for k, v in all_keys(h, pid).items() if v["revoked_at"] is None]
    return made, live


def test_keys_made_during_a_sign_out_do_not_outlive_it(h):
    pid = "race-signout"
    open_platform(h, pid)
    email = "race@example.com"
    session(h, pid, email)
    for _ in range(ROUNDS):
        s = sign_in(h, pid, email)
        # every worker holds the session in its cache, as in real traffic
        for _ in range(6):
            assert call(h, "GET", keys_path(pid), key=s)[0] == 200
        answers, st = race(h, pid, s, lambda: call(
            h, "POST", "/p/%s/auth/sign-out" % pid, key=s)[0])
        assert st == 204
        made, live = check_nothing_outlives(h, pid, answers)
        assert live == [], (live, [a[0] for a in answers])
        for k in made:
            everywhere(h, pid, k, 401)


def test_keys_made_during_a_revocation_do_not_outlive_it(h):
    pid = "race-revoke"
    platform(h, pid)
    for _ in range(ROUNDS):
        parent = new_key(h, pid, ["keys:write", "features:*"])
        for _ in range(6):
            assert hello(h, pid, key=parent["key"]) == 200
        answers, st = race(h, pid, parent["key"], lambda: op(
            h, "DELETE", "/platforms/%s/keys/%s" % (pid, parent["id"]))[0])
        assert st == 204
        made, live = check_nothing_outlives(h, pid, answers)
        # those made before were revoked with it, none made after exists
        assert live == [], (live, [a[0] for a in answers])
        for k in made:
            everywhere(h, pid, k, 401)


def test_revoking_a_key_revokes_the_keys_it_made(h):
    pid = "race-cascade"
    platform(h, pid)
    root = new_key(h, pid, ["keys:write", "features:*"])
    child = make_key(h, pid, root["key"], ["keys:write", "features:*"])
    grandchild = make_key(h, pid, child["key"], ["features:*"])
    sibling = new_key(h, pid, ["keys:write", "features:*"])
    nephew = make_key(h, pid, sibling["key"], ["features:*"])
    for k in (root, child, grandchild, sibling, nephew):
        everywhere(h, pid, k["key"], 200)
    st, _, _ = op(h, "DELETE", "/platforms/%s/keys/%s" % (pid, root["id"]))
    assert st == 204
    for k in (root, child, grandchild):
        everywhere(h, pid, k["key"], 401)
    for k in (sibling, nephew):
        everywhere(h, pid, k["key"], 200)
    keys = all_keys(h, pid)
    assert keys[child["id"]]["revoked_at"] is not None
    assert keys[nephew["id"]]["revoked_at"] is None
    # the audit row says how many keys went with it
    st, _, log = op(h, "GET", "/audit?target=platform:%s&action=key.revoke"
                    % pid)
    assert st == 200 and len(log["items"]) == 1, log
    assert log["items"][0]["detail"]["keys_it_made"] == 2, log


def test_a_revoked_or_signed_out_creator_makes_no_key(h):
    pid = "race-ended"
    open_platform(h, pid)
    s = session(h, pid, "ended@example.com")
    k = make_key(h, pid, s, ["keys:write", "features:*"])["key"]
    st, _, _ = call(h, "POST", "/p/%s/auth/sign-out" % pid, key=s)
    assert st == 204
    for cred in (s, k):
        st, hd, body = call(h, "POST", keys_path(pid), key=cred,
                            body={"name": "late", "scopes": ["features:*"]})
        problem((st, hd, body), 401)
        assert hd["www-authenticate"].startswith("Bearer"), hd
    assert [v for v in all_keys(h, pid).values()
            if v["revoked_at"] is None] == []


# -- a tenant-bound key's list ------------------------------------------------

def decode(cursor):
    """The sort key an SDK cursor holds, or None when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return raw.decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError alike
        return None


def test_a_tenant_bound_list_pages_its_subtree_only(h):
    pid = "race-list"
    platform(h, pid)
    tenant(h, pid, "eu")
    tenant(h, pid, "fr", parent="eu")
    tenant(h, pid, "us")
    mine = set()
    for i in range(9):
        # interleave: most keys belong elsewhere, some revoked
        t = ["us", None, "eu", "us", "fr", None, "us", "eu", None][i]
        k = new_key(h, pid, ["features:*"], tenant=t, name="k%d" % i)
        if t in ("eu", "fr"):
            mine.add(k["id"])
        elif i % 2:
            assert op(h, "DELETE", "/platforms/%s/keys/%s"
                      % (pid, k["id"]))[0] == 204
    reader = new_key(h, pid, ["keys:read"], tenant="eu")
    mine.add(reader["id"])
    seen, cursor, pages = [], None, 0
    while True:
        q = keys_path(pid) + "?limit=2"
        if cursor:
            q += "&cursor=" + cursor
        st, _, page = call(h, "GET", q, key=reader["key"])
        assert st == 200, page
        ids = [i["id"] for i in page["items"]]
        assert set(ids) <= mine, (ids, mine)
        cursor = page["next_cursor"]
        if cursor is not None:
            # a full page, pointing at its own last key, never elsewhere
            assert decode(cursor) in mine, (decode(cursor), page)
            assert len(ids) == 2 and decode(cursor) == ids[-1], page
        seen += ids
        pages += 1
        assert pages <= len(mine)
        if cursor is None:
            break
    assert sorted(seen) == sorted(mine) and len(seen) == len(mine)
    # the operator sees every key
    assert len(all_keys(h, pid)) == 10
    # a bad limit is a 422 like every other list
    problem(call(h, "GET", keys_path(pid) + "?limit=0", key=reader["key"]),
            422, "field \"limit\": expected an integer from 1 to 500, "
            "got \"0\"")
    problem(call(h, "GET", keys_path(pid) + "?cursor=zz", key=reader["key"]),
            422, "field \"cursor\": not a cursor this API returned")


def test_key_creation_does_not_replay_an_idempotency_key(h):
    pid = "race-idem"
    platform(h, pid)
    body = {"name": "ci", "scopes": ["features:*"]}
    made = []
    for _ in range(2):
        st, hd, k = call(h, "POST", keys_path(pid), key=h.op_key(), body=body,
                         headers={"Idempotency-Key": "same-key-1"})
        assert st == 201 and "idempotent-replayed" not in hd, k
        made.append(k["id"])
    # the secret exists only in the answer that made it: a retry makes a
    # second key, never shows the first again
    assert made[0] != made[1]
    assert set(made) <= set(all_keys(h, pid))
