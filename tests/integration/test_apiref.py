"""plugin-api/REFERENCE.md is what scripts/apiref.py makes of the headers
now: regenerated into a temporary file, it must be the committed one."""
import os
import subprocess
import sys

from conftest import SOURCE

SCRIPT = os.path.join(SOURCE, "scripts", "apiref.py")
COMMITTED = os.path.join(SOURCE, "plugin-api", "REFERENCE.md")


def generate(out):
    subprocess.run([sys.executable, SCRIPT, str(out)], check=True,
                   timeout=60)
    with open(str(out)) as f:
        return f.read()


def test_reference_is_up_to_date(tmp_path):
    fresh = generate(tmp_path / "REFERENCE.md")
    with open(COMMITTED) as f:
        committed = f.read()
    assert fresh == committed, (
        "plugin-api/REFERENCE.md is out of date: run scripts/apiref.py")


def test_reference_lists_the_tables_members_and_markers(tmp_path):
    ref = generate(tmp_path / "a.md")
    assert ref == generate(tmp_path / "b.md")  # deterministic
    for table in ("nno_host_api", "nno_registry_v1", "nno_iam_v1",
                  "nno_billing_v1", "nno_storage_v1", "nno_provisioning_v1"):
        assert "## `%s`" % table in ref, table
    assert "### Since ABI 1.5 (test with NNO_HAS)" in ref
    assert "#### routes" in ref
    # a member with the comment above it
    route = ref.index("- **`route_add`**")
    assert ref.index("Bind a handler to a route", route) > route
    assert ref.index("#### routes") < route < ref.index("### Since ABI 1.1")
