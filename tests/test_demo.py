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
    # no motion stage 2: it made no measurable difference at the tiny scale (docs/motion.md)
    assert names == ["synth", "synth", "preview", "preprocess", "preprocess", "train vae", "train motion",
                     "train renderer", "render", "eval"]
    render = next(args for args, _ in steps if args[0] == "render")
    assert "--steps" not in render and "--guidance-scale" not in render  # the shared sampling defaults
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


def test_report_gathers_gifs_curves_metrics_and_the_mlflow_command(tmp_path):
    """write_report on the outputs the steps leave behind (made small here)."""
    import json
    import shutil

    import mlflow
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from gid.datasets.synthetic import SynthConfig, write_dataset
    from gid.stages.demo import write_report

    cfg = DemoConfig(out=tmp_path)
    write_dataset(tmp_path / "heldout", 1, SynthConfig(num_frames=8, width=64, height=48), seed=1, progress=False)
    (tmp_path / "render" / "videos").mkdir(parents=True)
    shutil.copy(tmp_path / "heldout" / "videos" / "synth_s1_00000.mp4", tmp_path / "render" / "videos" / "synth_s1_00000-0-abc.mp4")
    pq.write_table(pa.Table.from_pylist([{"source": "x", "video": "videos/synth_s1_00000-0-abc.mp4", "status": "ok"}]),
                   tmp_path / "render" / "manifest.parquet")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"metrics": {"motion_amplitude_error_px": 0.25}}))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for name, losses in (("gid-vae", [1.0, 0.5]), ("gid-motion", [2.0, 1.0])):
        mlflow.set_experiment(name)
        with mlflow.start_run(run_name=name[4:]):
            for step, loss in enumerate(losses):
                mlflow.log_metric("loss", loss, step=step)

    report = write_report(cfg, {"gid synth a": {"seconds": 1.5, "skipped": False}}, 60.0).read_text()
    results = tmp_path / "results"
    gif = Image.open(results / "synth_s1_00000.gif")
    assert gif.n_frames == 4 and gif.size == (64 * 2 + 4, 48)  # real | generated, every 2nd frame
    assert Image.open(results / "training_curves.png").size[0] > 400
    assert "| motion_amplitude_error_px | 0.25 |" in report and "| `gid synth a` | 1.5 |" in report
    assert "![synth_s1_00000](synth_s1_00000.gif)" in report
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path.resolve() / 'mlflow.db'}" in report
