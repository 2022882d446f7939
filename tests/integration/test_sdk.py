"""The plugin SDK inside the plugins built here.

The registry, IAM, auth and hello link libnno_sdk.a: its code is in each
object, and none of it is exported (the descriptor stays the only symbol,
so two plugins' copies never meet in the dynamic linker).
"""
import os
import subprocess

import pytest

from conftest import BUILD

PLUGINS = {
    "registry": os.path.join("lib", "nno", "plugins", "registry",
                             "libregistry.so"),
    "iam": os.path.join("lib", "nno", "plugins", "iam", "libiam.so"),
    "auth": os.path.join("packages", "auth", "libauth.so"),
    "hello": os.path.join("packages", "hello", "libhello.so"),
}


def nm(*args):
    return subprocess.run(["nm"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          check=True, timeout=60).stdout


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugin_links_sdk_and_exports_only_descriptor(name):
    lib = os.path.join(BUILD, PLUGINS[name])
    assert os.path.isfile(lib), lib
    # Every plugin answers problems through the SDK.
    local = [l.split()[-1] for l in nm(lib).splitlines() if l.strip()]
    assert "nno_problem" in local and "nno_sdk_init" in local, name
    exported = sorted(l.split()[-1] for l in
                      nm("-D", "--defined-only", lib).splitlines()
                      if l.strip())
    assert exported == ["nno_plugin_descriptor"], (name, exported)
