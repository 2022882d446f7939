"""Device codes at a platform's bound, and who may decide one: when the
platform's pending codes are at device_pending_max, the client group
holding the most gives up its oldest code, so one group filling the bound
cannot stop another group's request; approve and deny (core and console
routes) take only application/json (415 otherwise, nothing decided), and a
session cookie decides only from the console host's own origin."""
import json
import time

from test_device_limits import post
from test_device_page import (allow_admins, con, console, is_problem,
                              new_code, sign_up, still_pending, token)


def plain(h, path, body, headers):
    """POST `body` as text/plain to dev1's console host."""
    st, rh, raw = h.request("POST", path, body=body,
                            headers=dict(headers,
                                         **{"Content-Type": "text/plain"}),
                            host="%s:%d" % (console("dev1"), h.port))
    return st, rh, json.loads(raw)


def test_a_group_at_the_bound_does_not_lock_others_out(make_host):
    h = make_host(core=True, workers=1, config={"plugin_config": {"iam": {
        "device_pending_max": 3, "device_codes_per_addr": 10,
        "device_interval_s": 1}}}).start()
    h.platform("dev1", stacks=(), **{"class": "user_project"})
    flood = []
    for _ in range(3):
        st, _, b = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.41")
        assert st == 200, b
        flood.append(b)
        time.sleep(1.1)  # ages are counted in seconds: oldest is clear
    # Another group still gets a code; the flood's oldest gave way.
    st, _, mine = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.42")
    assert st == 200, mine
    st, _, b = token(h, flood[0])
    assert st == 400 and b["error"] == "expired_token", b
    st, _, b = token(h, mine)
    assert st == 400 and b["error"] == "authorization_pending", b
    # The flood asking again evicts its own, not the newcomer's.
    st, _, b = post(h, "/device/code", {"platform": "dev1"}, "127.0.0.41")
    assert st == 200, b
    st, _, b = token(h, flood[1])
    assert st == 400 and b["error"] == "expired_token", b
    st, _, b = h.api("GET", "/device/pending?user_code=" + mine["user_code"])
    assert st == 200 and b["state"] == "pending", b


def test_decisions_take_json_only(make_host):
    h = make_host(core=True, workers=1, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    h.platform("dev1")
    c = new_code(h)
    body = json.dumps({"user_code": c["user_code"]}).encode()
    for path in ("/device/approve", "/device/deny"):
        st, rh, b = h.api("POST", path, body,
                          headers={"Content-Type": "text/plain"})
        is_problem(st, rh, b, 415)
    key = h.platform_key("dev1", scopes=["keys:write", "features:*"])["key"]
    for path in ("/console/device/approve", "/console/device/deny"):
        st, rh, b = plain(h, path, body, {"Authorization": "Bearer " + key})
        is_problem(st, rh, b, 415)
    still_pending(h, c)


def test_a_cookie_decides_only_from_the_console_origin(make_host):
    h = make_host(core=True, workers=1, config={
        "plugin_config": {"iam": {"device_interval_s": 1}}}).start()
    h.platform("dev1")
    allow_admins(h, "dev1")
    sess = sign_up(h, "dev1", "admin@dev1.test")
    cookie = {"Cookie": "__Host-nno_session=" + sess}
    own = "http://%s:%d" % (console("dev1"), h.port)
    c = new_code(h)
    body = {"user_code": c["user_code"]}
    # Another host of the same platform, or no Origin at all.
    for hd in ({"Origin": "http://x.dev1.nno.localhost:%d" % h.port},
               {"Sec-Fetch-Site": "same-origin"}):
        st, rh, b = con(h, "POST", "/console/device/approve", body=body,
                        headers=dict(cookie, **hd))
        is_problem(st, rh, b, 403)
    # The console's own page, but not JSON.
    st, rh, b = plain(h, "/console/device/approve",
                      json.dumps(body).encode(), dict(cookie, Origin=own))
    is_problem(st, rh, b, 415)
    still_pending(h, c)
    st, _, b = con(h, "POST", "/console/device/approve", body=body,
                   headers=dict(cookie, Origin=own))
    assert st == 200 and b["state"] == "approved", b
