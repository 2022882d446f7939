"""Billing's configuration as a whole: a section it does not read is a typo
and stops the host, in the loader and in `serve --check` alike, naming the
section and never a value."""
import os
import subprocess

import pytest

from conftest import BUILD


def test_an_unknown_section_stops_the_start(make_host):
    h = make_host(workers=1, core=True,
                  config={"plugin_config": {"billing": {
                      "stirpe": {"secret_key": "sk_test_hidden"}}}})
    with pytest.raises(RuntimeError):
        h.start()
    log = h.log_text()  # JSON lines: the quotes are escaped
    assert 'unknown section \\"stirpe\\"' in log
    assert "sk_test_hidden" not in log


def test_serve_check_refuses_it_with_the_same_words(tmp_path):
    nno = os.path.join(BUILD, "bin", "nno")
    r = subprocess.run(
        [nno, "serve", "--check", "--data", str(tmp_path / "data"),
         "--set", 'plugin_config={"billing":{"stirpe":{"secret_key":"sk_test_x"}}}'],
        capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert 'unknown section "stirpe"' in r.stderr
    assert "sk_test_x" not in r.stderr + r.stdout


def test_the_known_sections_start(make_host):
    h = make_host(workers=1, core=True,
                  config={"plugin_config": {"billing": {
                      "provider": "none",
                      "metering": {"flush_ms": 1000}}}})
    h.start()
    st, _, body = h.api("GET", "/plans")
    assert st == 200, body
