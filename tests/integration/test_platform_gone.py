"""A deleted platform's own stack versions go with it: every version it
installed that no platform has active is removed (logged), so that a new
platform of the same id inherits nothing. A version the operator activated
on another platform stays; creating a platform of that id is then refused
409 naming the version and how to remove it, and creates nothing."""
import json
import os

from test_stack_owner import archive, developer, install


def versions(h, sid, key=None):
    st, _, b = h.api("GET", "/stacks/" + sid, key=key)
    if st == 404:
        return []
    assert st == 200, b
    return sorted(v if isinstance(v, str) else v["version"]
                  for v in b.get("versions", []))


def test_deleting_a_platform_removes_its_own_versions(make_host, tmp_path):
    h = make_host(core=True, workers=1).start()
    key = developer(h, "victim")
    st, _, b = install(h, archive(tmp_path, "victim", "0.2.0"), key=key)
    assert st == 201, b
    assert versions(h, "victim") == ["0.2.0"]
    st, _, b = h.api("DELETE", "/platforms/victim")
    assert st == 204, b
    assert versions(h, "victim") == []
    assert not os.path.exists(os.path.join(h.data, "stacks", "victim",
                                           "0.2.0"))
    assert "removed its stack victim 0.2.0" in h.log_text()
    # A new platform of the id starts with nothing of the old one's.
    key2 = developer(h, "victim")
    assert versions(h, "victim", key=key2) == []
    st, _, b = h.api("POST", "/platforms/victim/stacks", {"stack": "victim"},
                     key=key2)
    assert st >= 400, b


def test_a_version_active_elsewhere_stays_and_blocks_the_id(make_host,
                                                            tmp_path):
    h = make_host(core=True, workers=1).start()
    key = developer(h, "victim")
    h.platform("other", stacks=())
    st, _, b = install(h, archive(tmp_path, "victim", "0.2.0"), key=key)
    assert st == 201, b
    # The operator's decision: the developer's version on another platform.
    st, _, b = h.api("POST", "/platforms/other/stacks",
                     {"stack": "victim", "version": "0.2.0"})
    assert st in (200, 201), b
    st, _, b = h.api("DELETE", "/platforms/victim")
    assert st == 204, b
    assert versions(h, "victim") == ["0.2.0"]
    # Nobody inherits it: the id is refused while the version is there.
    st, rh, b = h.api("POST", "/platforms", {
        "id": "victim", "name": "new owner", "class": "user_project"})
    assert st == 409, b
    assert rh["content-type"] == "application/problem+json", rh
    assert b["request_id"], b
    assert "victim 0.2.0" in b["detail"], b
    assert "nno stack remove" in b["detail"], b
    st, _, b = h.api("GET", "/platforms/victim")
    assert st == 404, b
    # Deactivated and removed, the id is free again.
    st, _, b = h.api("DELETE", "/platforms/other/stacks/victim")
    assert st in (200, 204), b
    st, _, b = h.api("DELETE", "/stacks/victim/0.2.0")
    assert st == 204, b
    st, _, b = h.api("POST", "/platforms", {
        "id": "victim", "name": "new owner", "class": "user_project"})
    assert st == 201, b
    assert json.dumps(versions(h, "victim")) == "[]"
