"""The `gid` command line as a user meets it: help, one-line errors, the synth → preview path."""
import subprocess
import sys

import pytest


def gid(*args, **kw):
    return subprocess.run([sys.executable, "-m", "gid.stages.cli", *args], capture_output=True, text=True, **kw)


def test_help_lists_commands():
    out = gid("--help")
    assert out.returncode == 0
    for name in ("synth", "preview", "demo"):
        assert name in out.stdout


@pytest.mark.parametrize("args,message", [
    (["synth", "{tmp}/o", "--frames", "0"], "--frames must be at least 2"),
    (["synth", "{tmp}/o", "--size", "255x160"], "even width and height"),
    (["synth", "{tmp}/o", "--size", "big"], "WIDTHxHEIGHT"),
    (["synth", "{tmp}/file/o"], "cannot write to"),
    (["preview", "{tmp}/nothing", "--out", "{tmp}/p"], "not a `gid synth` folder"),
])
def test_bad_arguments_give_one_line_errors(tmp_path, args, message):
    (tmp_path / "file").write_text("not a folder")
    out = gid(*[a.format(tmp=tmp_path) for a in args])
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_synth_then_preview(tmp_path):
    assert gid("synth", str(tmp_path / "d"), "-n", "2", "--frames", "16", "--size", "64x48").returncode == 0
    assert len(list((tmp_path / "d" / "videos").glob("*.mp4"))) == 2
    out = gid("preview", str(tmp_path / "d"), "--out", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    for name in ("frames.png", "motion.gif", "spectrum.png"):
        assert (tmp_path / "p" / name).stat().st_size > 1000
