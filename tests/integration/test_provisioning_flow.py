"""The registry, IAM and the provisioning plugin together: platforms created
with stacks get their resources, a failure at any step leaves nothing and a
retry succeeds, deletion removes the folder or archives it, and a
tenant-bound credential's tenant path reaches the packages.

Needs the provisioning core plugin and its test-only build (failure
injection through NNO_FAILPOINT, in BUILD/tests/failpoint-plugins/ beside
copies of iam and registry), the host's ABI 1.2 members
(req_set_tenant_path, req_tenant_path) and the auth package's "auth" sql
resource with its migrations: run once the prov, kernel and pkgs branches
are merged."""
import json
import os
import tarfile

import pytest

from conftest import BUILD, FIXTURE_STACKS

FAILPOINT_PLUGINS = os.path.join(BUILD, "tests", "failpoint-plugins")
PROBE = os.path.join(FIXTURE_STACKS, "probe")
# Steps a creation with the default stack goes through (the auth package's
# sql resource "auth" is created, then migrated, then the packages are
# told); the test-only build fails the one NNO_FAILPOINT names.
CREATE_STEPS = ["platform:create", "sql:default-auth:create",
                "sql:default-auth:migrate", "event:activated"]


def provisioned_host(make_host, tmp_path, env=None, **kw):
    """iam, registry and the test-only provisioning build."""
    return make_host(core=True, env=env or {},
                     config={"plugin_dir": FAILPOINT_PLUGINS,
                             "core_plugins": ["iam", "registry",
                                              "provisioning"]}, **kw)


def resources(h, pid):
    st, _, page = h.api("GET", "/platforms/%s/resources" % pid)
    assert st == 200, page
    return page["items"]


def platform_dir(h, pid):
    return os.path.join(h.data, "platforms", pid)


def test_create_with_stacks_provisions_resources(make_host, tmp_path):
    h = provisioned_host(make_host, tmp_path)
    h.start()
    st, _, p = h.api("POST", "/platforms",
                     {"id": "fl-a", "name": "A", "stacks": ["default"]})
    assert st == 201, p
    items = resources(h, "fl-a")
    assert any((r["stack"], r["type"], r["name"]) == ("default", "sql", "auth")
               for r in items), items
    assert os.path.isfile(os.path.join(platform_dir(h, "fl-a"), "sql",
                                       "fl-a-default-auth.db"))
    st, _, one = h.api("GET", "/platforms/fl-a/resources/sql/default-auth")
    assert st == 200 and one["name"] == "auth", one
    # the auth package serves from it at once
    st, _, acc = h.api("PUT", "/platforms/fl-a/access",
                       {"signup": True, "cors_origins": []})
    assert st in (200, 201, 204), acc
    st, _, body = h.json("POST", "/p/fl-a/auth/sign-up", headers={
        "Content-Type": "application/json"}, body=json.dumps({
            "email": "ada@example.com",
            "password": "correct horse battery"}).encode())
    assert st == 201, body


@pytest.mark.parametrize("step", CREATE_STEPS)
def test_a_failure_at_each_step_leaves_nothing(make_host, tmp_path, step):
    h = provisioned_host(make_host, tmp_path, env={"NNO_FAILPOINT": step})
    h.start()
    pid = "fl-f"
    body = {"id": pid, "name": "F", "stacks": ["default"]}
    hdr = {"Idempotency-Key": "fl-retry"}
    st, hd, pr = h.api("POST", "/platforms", body, headers=hdr)
    assert st in (500, 503), pr
    assert hd["content-type"] == "application/problem+json"
    assert 'failed at step "%s"' % step in pr["detail"], pr
    assert h.api("GET", "/platforms/" + pid)[0] == 404
    assert not os.path.exists(platform_dir(h, pid))
    st, _, page = h.api("GET", "/audit?target=platform:%s&action="
                        "platform.provision_failed" % pid)
    assert st == 200 and len(page["items"]) == 1, page
    assert page["items"][0]["detail"]["step"] == step, page
    # the same request once the failure is gone
    h.stop()
    h.env.pop("NNO_FAILPOINT")
    h.start()
    st, _, p = h.api("POST", "/platforms", body, headers=hdr)
    assert st == 201, p
    assert resources(h, pid)


def test_delete_removes_the_folder_or_archives_it(make_host, tmp_path):
    h = provisioned_host(make_host, tmp_path)
    h.start()
    for pid in ("fl-d", "fl-k"):
        st, _, p = h.api("POST", "/platforms", {"id": pid, "name": "D",
                                                "stacks": ["default"]})
        assert st == 201, p
        assert os.path.isdir(platform_dir(h, pid))
    st, _, body = h.api("DELETE", "/platforms/fl-d")
    assert st == 204, body
    assert not os.path.exists(platform_dir(h, "fl-d"))
    assert h.api("GET", "/platforms/fl-d/resources")[0] == 404
    st, _, body = h.api("DELETE", "/platforms/fl-k?keep_data=true")
    assert st == 200, body
    archive = body["archive"]
    assert os.path.dirname(archive) == os.path.join(h.data, "archive")
    assert os.path.basename(archive).startswith("fl-k-")
    assert not os.path.exists(platform_dir(h, "fl-k"))
    with tarfile.open(archive, "r:gz") as t:
        names = t.getnames()
    assert any(n.endswith("fl-k-default-auth.db") for n in names), names
    # the id can be taken again and starts empty
    st, _, p = h.api("POST", "/platforms", {"id": "fl-k", "name": "again",
                                            "stacks": ["default"]})
    assert st == 201, p


@pytest.mark.parametrize("step", ["archive", "remove:files"])
def test_a_failed_removal_stays_deleting_until_sent_again(make_host, tmp_path,
                                                          step):
    h = provisioned_host(make_host, tmp_path, env={"NNO_FAILPOINT": step})
    h.start()
    st, _, p = h.api("POST", "/platforms", {"id": "fl-r", "name": "R",
                                            "stacks": ["default"]})
    assert st == 201, p
    st, _, pr = h.api("DELETE", "/platforms/fl-r?keep_data=true")
    assert st == 503 and "failed at step" in pr["detail"], pr
    assert step in pr["detail"], pr
    st, _, p = h.api("GET", "/platforms/fl-r")
    assert st == 200 and p["status"] == "deleting", p
    h.stop()
    h.env.pop("NNO_FAILPOINT")
    h.start()
    # the start finished it (with the data kept), or the DELETE does
    st, _, body = h.api("DELETE", "/platforms/fl-r?keep_data=true")
    assert st in (200, 404), body
    assert h.api("GET", "/platforms/fl-r")[0] == 404
    assert not os.path.exists(platform_dir(h, "fl-r"))
    assert any(n.startswith("fl-r-") for n in
               os.listdir(os.path.join(h.data, "archive")))


def test_the_tenant_path_reaches_the_packages(make_host, tmp_path):
    h = provisioned_host(make_host, tmp_path, stacks=[PROBE])
    h.start()
    st, _, p = h.api("POST", "/platforms", {"id": "fl-t", "name": "T",
                                            "stacks": ["default", "probe"]})
    assert st == 201, p
    for tid, parent in (("eu", None), ("fr", "eu"), ("us", None)):
        body = {"id": tid, "name": tid}
        if parent:
            body["parent"] = parent
        assert h.api("POST", "/platforms/fl-t/tenants", body)[0] == 201

    def path_of(key):
        st, _, body = h.json("GET", "/p/fl-t/probe/tenant-path",
                             headers={"Authorization": "Bearer " + key})
        assert st == 200, body
        return body["path"]

    fr = h.platform_key("fl-t", scopes=["*"], tenant="fr")["key"]
    eu = h.platform_key("fl-t", scopes=["*"], tenant="eu")["key"]
    whole = h.platform_key("fl-t", scopes=["*"])["key"]
    assert path_of(fr) == "eu/fr"
    assert path_of(eu) == "eu"
    assert path_of(whole) == ""
    # a move is seen on the next request, in every worker
    st, _, t = h.api("PATCH", "/platforms/fl-t/tenants/fr", {"parent": "us"})
    assert st == 200, t
    assert {path_of(fr) for _ in range(6)} == {"us/fr"}
