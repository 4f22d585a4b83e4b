"""`gid demo`: every step is a real `gid` command (parsed by the real CLI), printed, and skipped
when its output exists; the results folder is assembled from what the steps wrote."""
import subprocess
import sys

import pytest

from gid.stages.demo import DemoConfig, demo_commands, run_step


def parse(args):
    """Parse ``gid ARGS`` with the real command line; returns the parameters the command would get."""
    import typer

    from gid.stages.cli import app

    cmd = typer.main.get_command(app)
    while hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        cmd, args = cmd.commands[args[0]], args[1:]
    return cmd.make_context(cmd.name, list(args)).params


def test_every_step_is_a_real_gid_command(tmp_path):
    steps = demo_commands(DemoConfig(out=tmp_path))
    names = [" ".join(a for a in args[:2] if not a.startswith(("/", "-"))) for args, _ in steps]
    assert names == ["synth", "synth", "preview", "preprocess", "preprocess", "train vae", "train motion",
                     "train motion", "train renderer", "render", "eval"]
    for args, marker in steps:
        params = parse(args)
        assert str(marker).startswith(str(tmp_path.resolve()))
        if "out" in params and params["out"] is not None:
            assert str(params["out"]).startswith(str(tmp_path.resolve())), args


def test_demo_trains_on_the_training_set_and_renders_the_held_out_one(tmp_path):
    steps = {" ".join(args[:2]): parse(args) for args, _ in demo_commands(DemoConfig(out=tmp_path))}
    held_out = [p for k, p in steps.items() if k.startswith("synth")][1]
    render = next(p for k, p in steps.items() if k.startswith("render"))
    evaluate = next(p for k, p in steps.items() if k.startswith("eval"))
    assert str(render["inputs"][0]).startswith(str(tmp_path.resolve() / "heldout_clips"))
    assert evaluate["real"] == evaluate["gt"] == held_out["out"]
    assert evaluate["fake"] == render["out"]


def test_run_step_runs_once_then_skips(tmp_path, capsys):
    log = {}
    args = ["synth", str(tmp_path / "d"), "-n", "1", "--frames", "8", "--size", "64x48"]
    run_step(args, tmp_path / "d" / "manifest.parquet", log)
    assert (tmp_path / "d" / "manifest.parquet").is_file()
    run_step(args, tmp_path / "d" / "manifest.parquet", log)
    printed = capsys.readouterr().out
    assert printed.count("[run]  gid synth") == 1 and printed.count("[skip] gid synth") == 1
    (line,) = log
    assert log[line]["skipped"] is False and log[line]["seconds"] > 0


def test_demo_config_refuses_an_empty_run():
    with pytest.raises(ValueError, match="at least 2 training videos"):
        DemoConfig(num_videos=1)


def test_demo_help():
    out = subprocess.run([sys.executable, "-m", "gid.stages.cli", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--out" in out.stdout
