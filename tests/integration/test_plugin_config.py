"""plugin_config: the host's override of a core plugin's manifest "config"
reaches the plugin (plugin_config()) from the config file, NNO_PLUGIN_CONFIG
and --set, merged key by key, later sources winning; `serve --check`, the
start and the stack check refuse a name that is no core plugin and
malformed JSON, in words that never quote a value (values may be
secrets); `serve --help` names the key only."""
import json
import os
import subprocess

from conftest import BUILD, FIXTURE_STACKS, NNO, Host

DONE_PLUGINS = os.path.join(BUILD, "tests", "doneplugins")
SECRET = "sk_test_TOPSECRET_51"


def make(tmp_path, name, override=None, args=(), env=None):
    cfg = {"plugin_dir": DONE_PLUGINS}
    if override is not None:
        cfg["plugin_config"] = override
    d = tmp_path / name
    d.mkdir()
    return Host(d, workers=2, config=cfg, args=args, env=env)


def run(h, *extra, env=None):
    """Run the host's command line with `extra` (e.g. --check) and return
    (exit status, stdout + stderr)."""
    e = dict(os.environ)
    e.update(h.env)
    e.update(env or {})
    p = subprocess.run(h.command() + list(extra), env=e, capture_output=True,
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def config_of(h):
    st, _, body = h.json("GET", "/doneprobe/config")
    assert st == 200
    return body


def test_file_env_and_set_reach_the_plugin(tmp_path):
    h = make(tmp_path, "all",
             override={"doneprobe": {"greeting": "from-file",
                                     "secret": SECRET}},
             env={"NNO_PLUGIN_CONFIG": json.dumps(
                 {"doneprobe": {"depth": 5, "greeting": "from-env"}})},
             args=["--set", 'plugin_config={"doneprobe":{"greeting":'
                            '"from-set","nested":{"b":2}}}'])
    h.start()
    try:
        # Every worker's copy reads the same merge.
        for _ in range(6):
            assert config_of(h) == {"greeting": "from-set", "depth": 5,
                                    "nested": {"b": 2}, "secret": SECRET}
    finally:
        h.stop()
    # The secret is in no log line and not in --help.
    assert SECRET not in h.log_text()
    st, out = run(h, "--help")
    assert st == 0 and "plugin_config" in out and "NNO_PLUGIN_CONFIG" in out
    assert SECRET not in out
    # serve --check reads the same configuration and accepts it, silently.
    st, out = run(h, "--check")
    assert st == 0 and "configuration ok" in out, out
    assert SECRET not in out


def test_each_source_alone(tmp_path):
    h = make(tmp_path, "file", override={"doneprobe": {"depth": 7}})
    h.start()
    try:
        assert config_of(h) == {"greeting": "hello", "depth": 7,
                                "nested": {"a": 1}}
    finally:
        h.stop()
    h = make(tmp_path, "env", env={"NNO_PLUGIN_CONFIG":
                                   '{"doneprobe": {"depth": 8}}'})
    h.start()
    try:
        assert config_of(h)["depth"] == 8
    finally:
        h.stop()
    h = make(tmp_path, "set", args=["--set",
                                    'plugin_config={"doneprobe":{"depth":9}}'])
    h.start()
    try:
        assert config_of(h)["depth"] == 9
    finally:
        h.stop()
    # None: the manifest's own.
    h = make(tmp_path, "none")
    h.start()
    try:
        assert config_of(h) == {"greeting": "hello", "depth": 2,
                                "nested": {"a": 1}}
    finally:
        h.stop()


def test_unknown_plugin_refused(tmp_path):
    h = make(tmp_path, "unknown",
             override={"doneprobe": {"k": SECRET}, "nosuch": {"k": SECRET}})
    want = ('plugin_config names "nosuch", which is not a core plugin of "%s"'
            % DONE_PLUGINS)
    for extra in ([], ["--check"]):
        st, out = run(h, *extra)
        assert st != 0 and want in out, out
        assert SECRET not in out
    # The stack check loads the core plugins as a worker would: the same.
    p = subprocess.run([NNO, "stack", "check",
                        os.path.join(FIXTURE_STACKS, "probe", "probe", "1.0.0"),
                        "--config", h.config_path],
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 1 and want in out, out
    assert SECRET not in out


def test_malformed_refused_without_the_value(tmp_path):
    h = make(tmp_path, "bad")
    cases = [
        ({"NNO_PLUGIN_CONFIG": '{"doneprobe": {"k": "%s"' % SECRET}, [],
         "NNO_PLUGIN_CONFIG: plugin_config: invalid JSON at line 1 column"),
        ({}, ["--set", "plugin_config=" + SECRET],
         "plugin_config: invalid JSON at line 1 column"),
        ({}, ["--set", 'plugin_config={"doneprobe":"%s"}' % SECRET],
         "plugin_config.doneprobe: expected an object, got a string"),
        ({}, ["--set", 'plugin_config=["%s"]' % SECRET],
         "plugin_config: expected a JSON object, got an array"),
    ]
    for env, args, want in cases:
        for extra in ([], ["--check"]):
            st, out = run(h, *(args + extra), env=env)
            assert st == 2 and want in out, (args, out)
            assert SECRET not in out
    # In the file: the file's name and the key path.
    h2 = make(tmp_path, "badfile", override={"doneprobe": [SECRET]})
    st, out = run(h2)
    assert st == 2 and "plugin_config.doneprobe: expected an object" in out
    assert SECRET not in out
