"""The layout rule: host/ is a kernel that knows no client command; every
`nno` client command lives in host/cli/, built once as the nno_cli library.

Read from the source tree (NNO_SOURCE), no host needed."""
import glob
import os
import re

from conftest import SOURCE

HOST = os.path.join(SOURCE, "host")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)


def kernel_files():
    names = glob.glob(os.path.join(HOST, "*.c")) + glob.glob(
        os.path.join(HOST, "*.h"))
    return sorted(n for n in names if os.path.basename(n) != "main.c")


def test_no_client_file_left_in_the_kernel_folder():
    left = [os.path.basename(n) for n in kernel_files()
            if os.path.basename(n).startswith("cli")]
    assert left == [], "client files in host/: %s" % left


def test_kernel_files_include_nothing_of_the_client():
    bad = []
    for n in kernel_files():
        with open(n, encoding="utf-8") as f:
            for inc in INCLUDE.findall(f.read()):
                if inc.startswith("cli") or inc.startswith("project"):
                    bad.append("%s: %s" % (os.path.basename(n), inc))
    assert bad == [], "kernel files including the client: %s" % bad


def test_kernel_files_call_no_client_function():
    bad = []
    for n in kernel_files():
        with open(n, encoding="utf-8") as f:
            if re.search(r"\bcli_[a-z_]+\s*\(", f.read()):
                bad.append(os.path.basename(n))
    assert bad == [], "kernel files calling cli_*(): %s" % bad


def test_main_is_the_one_caller():
    with open(os.path.join(HOST, "main.c"), encoding="utf-8") as f:
        text = f.read()
    assert '#include "cli/cli.h"' in text
    assert "cli_main(" in text


def test_client_sources_are_built_once_as_a_library():
    with open(os.path.join(HOST, "cli", "CMakeLists.txt")) as f:
        lib = f.read()
    assert "add_library(nno_cli STATIC" in lib
    for c in glob.glob(os.path.join(HOST, "cli", "*.c")):
        assert os.path.basename(c) in lib, c
    # No other build file compiles a client source itself.
    for cm in ("host/CMakeLists.txt", "tests/CMakeLists.txt"):
        with open(os.path.join(SOURCE, cm)) as f:
            text = f.read()
        assert not re.search(r"cli/[a-z_]+\.c|cli_[a-z_]+\.c", text), cm
        assert "nno_cli" in text, cm
