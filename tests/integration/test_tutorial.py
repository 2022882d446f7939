"""plugin-api/TUTORIAL.md, run as written: each ```sh tutorial block, in
order, with `bash -e` in a temporary folder, HOME and XDG_CONFIG_HOME
temporary too, and the build tree's bin/ first on PATH (the `nno` is this
build's). A block carries on in the folder the previous one ended in, as
a reader's shell would. NNO_TUTORIAL names another copy of the page."""
import os
import re
import subprocess

from conftest import BUILD, SOURCE

TUTORIAL = os.environ.get("NNO_TUTORIAL") or os.path.join(
    SOURCE, "plugin-api", "TUTORIAL.md")
FENCE = re.compile(r"^```sh tutorial[ \t]*\n(.*?)^```[ \t]*$",
                   re.S | re.M)


def blocks(text):
    """The bodies of the ```sh tutorial blocks, in order; plain ```sh
    blocks are prose."""
    return [m.group(1) for m in FENCE.finditer(text)]


def run_blocks(text, tmp_path, timeout=120):
    """Runs each block; returns None, or a message naming the block that
    failed with its output."""
    home = tmp_path / "home"
    xdg = tmp_path / "xdg"
    work = tmp_path / "work"
    for d in (home, xdg, work):
        d.mkdir()
    state = tmp_path / "cwd"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg), "LANG": "C",
           "PATH": os.path.join(BUILD, "bin") + ":/usr/local/bin:/usr/bin:/bin"}
    cwd = str(work)
    for n, body in enumerate(blocks(text), 1):
        script = body + '\npwd > "$NNO_TUTORIAL_CWD"\n'
        r = subprocess.run(["bash", "-e", "-c", script], cwd=cwd,
                           env=dict(env, NNO_TUTORIAL_CWD=str(state)),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=timeout)
        if r.returncode != 0:
            return "block %d exited %d:\n%s\n--- output ---\n%s" % (
                n, r.returncode, body, r.stdout)
        cwd = state.read_text().strip()
    return None


def test_extractor_takes_only_tutorial_blocks_in_order():
    text = ("intro\n```sh tutorial\necho one\ncd x\n```\n"
            "```sh\nnno project dev\n```\n"
            "```sh tutorial\necho two\n```\n")
    assert blocks(text) == ["echo one\ncd x\n", "echo two\n"]


def test_the_page_has_the_steps():
    with open(TUTORIAL) as f:
        got = blocks(f.read())
    joined = "".join(got)
    for cmd in ("nno project init", "nno project build", "nno project test",
                "nno project env"):
        assert cmd in joined, cmd
    assert "nno project dev" not in joined  # foreground: prose only


def test_a_failing_command_fails_the_run(tmp_path):
    text = ("```sh tutorial\nmkdir sub\ncd sub\n```\n"
            "```sh tutorial\ntest \"$(basename \"$PWD\")\" = sub\n"
            "nno project no-such-command\necho not reached\n```\n")
    msg = run_blocks(text, tmp_path)
    assert msg is not None and msg.startswith("block 2 exited")
    assert "no-such-command" in msg and "not reached" in msg.split(
        "--- output ---")[0]
    assert "not reached" not in msg.split("--- output ---")[1]


def test_tutorial_runs_as_written(tmp_path):
    with open(TUTORIAL) as f:
        text = f.read()
    assert blocks(text), "no ```sh tutorial block in %s" % TUTORIAL
    msg = run_blocks(text, tmp_path)
    assert msg is None, msg
