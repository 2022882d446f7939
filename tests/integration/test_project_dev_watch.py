"""`nno project dev` watches every folder of the project, not only its top
ones: an edit in a subfolder (the crud template's migrations/items/, a
header in src/lib/) rebuilds, a folder made while dev runs is watched from
then on, and past 256 folders one warning names the bound."""
import subprocess

from conftest import NNO
from test_project_dev import Dev, make_project, route, write


def reloads(dev):
    return dev.output().count("reloaded greet")


def test_an_edit_in_a_migrations_subfolder_rebuilds(tmp_path):
    r = subprocess.run([NNO, "project", "init", "greet", "--template", "crud"],
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    root = tmp_path / "greet"
    assert (root / "migrations" / "items" / "0001_init.sql").is_file()
    dev = Dev(root)
    try:
        dev.wait_for(lambda: dev.get("/items")[0] == 200, "the items route")
        n = reloads(dev)
        write(root / "migrations" / "items" / "0002_notes.sql",
              "CREATE TABLE notes (id INTEGER PRIMARY KEY) STRICT;\n")
        dev.wait_for(lambda: reloads(dev) > n, "a rebuild after the edit")
        assert "reloaded greet 0.1.0-dev.2" in dev.output(), dev.output()
        assert dev.get("/items")[0] == 200
    finally:
        dev.stop()
    assert dev.proc.returncode == 0, dev.output()


def test_a_header_in_a_subfolder_and_a_new_folder(tmp_path):
    root, src, render = make_project(tmp_path)
    (root / "src" / "lib").mkdir()
    msg = root / "src" / "lib" / "msg.h"
    write(msg, '#define MSG "one"\n')
    write(src, '#include "lib/msg.h"\n'
               '#if __has_include("gen/extra.h")\n'
               '#include "gen/extra.h"\n'
               '#endif\n'
               '#ifndef EXTRA\n#define EXTRA ""\n#endif\n'
               + render("@@").replace('"@@"', "MSG EXTRA"))
    dev = Dev(root)
    try:
        dev.wait_for(lambda: route(dev) == "one", "first answer")
        # An edit in src/lib/, which was there when dev started.
        write(msg, '#define MSG "two"\n')
        dev.wait_for(lambda: route(dev) == "two", "the subfolder's edit live")
        # A folder made while dev runs is watched from then on.
        n = reloads(dev)
        (root / "src" / "gen").mkdir()
        dev.wait_for(lambda: reloads(dev) > n, "the new folder seen")
        write(root / "src" / "gen" / "extra.h",
              '#define EXTRA " and three"\n')
        dev.wait_for(lambda: route(dev) == "two and three",
                     "the new folder's file live")
    finally:
        dev.stop()
    assert dev.proc.returncode == 0, dev.output()


def test_past_the_bound_one_warning(tmp_path):
    root, src, render = make_project(tmp_path)
    write(src, render("one"))
    for i in range(300):
        (root / "assets" / ("d%03d" % i)).mkdir(parents=True)
    dev = Dev(root)
    try:
        dev.wait_for(lambda: route(dev) == "one", "first answer")
        dev.wait_for(lambda: "watching" in dev.output(), "the watching line")
        out = dev.output()
        assert out.count("watching the first 256 folders") == 1, out
        assert "watching 256 folders" in out, out
    finally:
        dev.stop()
    assert dev.proc.returncode == 0, dev.output()
