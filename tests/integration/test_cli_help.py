"""The client's manners, as a black box: every command of the table has a
help with an example (`nno X --help`, `nno X Y --help`, `nno help X Y`);
every error is one `nno: ...` line and one `hint: ...` line with a non-zero
exit; the local commands' results are data with --json; and
`nno completion bash` completes what the table holds."""
import json
import os
import re
import subprocess

import pytest

from conftest import BUILD, FIXTURE_STACKS, NNO, Host, free_port

DEFAULT_DIR = os.path.join(BUILD, "share", "nno", "stacks", "default",
                           "1.0.0")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")

# The command groups a user finds in `nno --help`, at least.
GROUPS = {"serve", "version", "platform", "plan", "tenant", "key", "resource",
          "stack", "audit", "quarantine", "usage", "operator-key",
          "check-package", "project", "login", "logout", "completion"}


def run(*args, env=None, cwd=None, timeout=30):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("NNO_") and k.lower() not in PROXY_VARS}
    e.update(env or {})
    return subprocess.run([NNO] + list(args), env=e, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def top_level_groups():
    r = run("--help")
    assert r.returncode == 0 and r.stderr == ""
    names = set()
    for line in r.stdout.splitlines():
        m = re.match(r"^  ([a-z][a-z-]*)\s{2,}\S", line)
        if m:
            names.add(m.group(1))
    return names


def subcommands(group):
    """The SUBs `nno GROUP --help` lists (none for a command alone)."""
    r = run(group, "--help")
    assert r.returncode == 0, (group, r.stderr)
    subs = []
    for line in r.stdout.splitlines():
        m = re.match(r"^  nno %s ([a-z][a-z-]*)\b" % re.escape(group), line)
        if m:
            subs.append(m.group(1))
    return r.stdout, subs


def assert_help(r, *words):
    assert r.returncode == 0, (words, r.stderr)
    assert r.stderr == "", words
    assert r.stdout.startswith("usage: nno "), (words, r.stdout[:80])
    assert "\nExample:\n  " in r.stdout, (words, r.stdout)
    # The example runs the command it documents.
    ex = r.stdout.split("\nExample:\n", 1)[1]
    assert re.search(r"\bnno %s\b" % re.escape(" ".join(words)), ex) or (
        "nno " + words[0]) in ex, (words, ex)


def test_every_command_has_help_with_an_example():
    groups = top_level_groups()
    assert GROUPS <= groups, GROUPS - groups
    walked = 0
    for g in sorted(groups):
        if g in ("serve", "version"):
            assert_help(run(g, "--help"), g)
            assert_help(run("help", g), g)
            walked += 1
            continue
        text, subs = subcommands(g)
        assert "\nExample:\n  " in text, g
        assert_help(run("help", g), g)
        if not subs:  # a command without subcommands (audit, login...)
            assert_help(run(g, "--help"), g)
            walked += 1
        for s in subs:
            assert_help(run(g, s, "--help"), g, s)
            assert_help(run("help", g, s), g, s)
            walked += 1
    # Every command of the table, the local ones included.
    assert walked >= 45, walked
    for words in (["stack", "check"], ["stack", "pack"], ["stack", "sign"],
                  ["stack", "keygen"], ["check-package"], ["project", "init"],
                  ["project", "dev"], ["login"], ["completion", "bash"]):
        assert_help(run(*words, "--help"), *words)


def two_lines(r):
    assert r.returncode != 0, r
    err = r.stderr.splitlines()
    assert len(err) == 2, r.stderr
    assert err[0].startswith("nno: ") and err[1].startswith("hint: "), err
    assert r.stdout == "", r.stdout
    return err


@pytest.mark.parametrize("args,code,words", [
    (["frobnicate"], 2, "unknown command 'frobnicate'"),
    (["platform", "frob"], 2, "platform: unknown command 'frob'"),
    (["platform", "list", "--bogus"], 2, "unknown option '--bogus'"),
    (["tenant", "show", "acme"], 2, "missing arguments"),
    (["platform"], 2, "platform: missing command"),
    (["project"], 2, "project: missing command"),
    (["completion", "zsh"], 2, "completion: unknown command 'zsh'"),
    (["completion", "bash", "extra"], 2, "unexpected argument 'extra'"),
    (["stack", "pack"], 2, "missing argument"),
    (["stack", "pack", "/nonexistent/stack"], 1, "stack pack:"),
    (["--url", "http://127.0.0.1:1", "stack", "pack", "."], 2,
     "runs locally"),
    (["version", "--bogus"], 2, "unknown option '--bogus'"),
    (["help", "stack", "pack", "extra"], 2, "unexpected argument 'extra'"),
])
def test_errors_are_one_line_and_a_hint(args, code, words):
    r = run(*args)
    err = two_lines(r)
    assert r.returncode == code, (args, r.returncode, r.stderr)
    assert words in err[0], err


def test_unreachable_host_error_has_a_hint():
    url = "http://127.0.0.1:%d" % free_port()
    r = run("platform", "list", env={"NNO_URL": url, "NNO_KEY": "k"})
    assert r.returncode == 3
    two_lines(r)


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("clihelp"), workers=1, core=True)
    h.start()
    yield h
    h.stop()


def test_server_errors_carry_a_hint_and_the_request_id(reg):
    env = {"NNO_URL": "http://127.0.0.1:%d" % reg.port, "NNO_DATA": reg.data}
    r = run("platform", "show", "no-such-platform", env=env)
    err = two_lines(r)
    assert r.returncode == 1
    assert err[0].startswith("nno: 404 "), err
    assert "list commands" in err[1], err
    m = re.search(r"request_id (\S+) in the host's log", err[1])
    assert m, err
    # the id the host logged for that request
    reg.wait_log(lambda e: e.get("rid") == m.group(1))
    r = run("platform", "list", env=dict(env, NNO_KEY="wrong-key"))
    err = two_lines(r)
    assert r.returncode == 1 and err[0].startswith("nno: 401 "), err
    assert "operator key" in err[1], err


def test_json_where_the_output_is_data(tmp_path):
    r = run("version", "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert set(v) == {"version", "abi"} and "." in v["abi"]

    r = run("stack", "keygen", "ops", "--json", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    k = json.loads(r.stdout)
    assert k["secret"] == "ops.key" and k["public"] == "ops.pub"
    assert len(k["key_id"]) == 16

    out = tmp_path / "out"
    out.mkdir()
    r = run("stack", "pack", DEFAULT_DIR, "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert os.path.isfile(p["path"]) and re.fullmatch(r"[0-9a-f]{64}",
                                                      p["sha256"])

    r = run("stack", "sign", p["path"], "--key", str(tmp_path / "ops.key"),
            "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s == {"path": p["path"], "key_id": k["key_id"]}

    pkg = os.path.join(FIXTURE_STACKS, "probe", "probe", "1.0.0", "packages",
                       "probe")
    r = run("check-package", pkg, "--json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert c["ok"] is True and c["problems"] == []
    bad = os.path.join(FIXTURE_STACKS, "nosym", "nosym", "1.0.0", "packages",
                       "nosym")
    r = run("check-package", bad, "--json")
    assert r.returncode == 1
    c = json.loads(r.stdout)
    assert c["ok"] is False and c["problems"]


def complete(script, *words):
    """COMPREPLY for the command line `words` (the last one being
    completed), as bash computes it with the script loaded."""
    line = " ".join("'%s'" % w for w in words)
    prog = ('source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_nno\n'
            'printf "%%s\\n" "${COMPREPLY[@]}"\n'
            % (script, line, len(words) - 1))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(w for w in r.stdout.split("\n") if w)


def test_bash_completion_from_the_table(tmp_path):
    r = run("completion", "bash")
    assert r.returncode == 0 and r.stderr == ""
    script = tmp_path / "nno.bash"
    script.write_text(r.stdout)
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        "source %s && complete -p nno" % script],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "-F _nno" in r.stdout, r

    assert complete(script, "nno", "pl") == ["plan", "platform"]
    assert complete(script, "nno", "platform", "") == sorted(
        ["create", "list", "show", "update", "brand", "suspend", "resume",
         "delete"])
    assert complete(script, "nno", "stack", "install", "--") == sorted(
        ["--sha256", "--url", "--key", "--data", "--json", "--help"])
    # after global options with their values
    assert complete(script, "nno", "--url", "http://h:1", "stack", "pa") == [
        "pack"]
    assert complete(script, "nno", "tenant", "create", "x", "--p") == [
        "--parent"]
    assert complete(script, "nno", "se") == ["serve"]
    assert complete(script, "nno", "serve", "--w") == ["--workers"]
    assert complete(script, "nno", "project", "") == sorted(
        ["init", "build", "dev", "test", "deploy", "logs", "env"])
    assert complete(script, "nno", "usage", "--c") == ["--csv"]
