"""The end-to-end demo: each step is a real `gid` command, printed, run, and skipped when its output exists.

synth (train + held-out) → preview → preprocess → train VAE → motion stage 1 → renderer
→ bulk render of the held-out photos → evaluation → ``OUT/results/`` (GIFs, plots, report.md).

Sizes and step counts are chosen from measured costs so that a fresh run takes at most 20 minutes
on 2 idle CPU cores (docs/demo.md has the per-step timings). The models are trained at the ``tiny``
preset's 64×48; the held-out photos are 128×80, so rendering also shows the motion upsampled to a
photo larger than the model (§5: the flow is resized and rescaled to the image).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DemoConfig:
    """Embedded defaults sized for a 2-core CPU machine (≤ 20 min end to end)."""

    out: Path = Path("results/demo")
    num_videos: int = 24  # training videos
    num_heldout: int = 4  # held-out photos rendered in bulk and evaluated
    seed: int = 0
    frames: int = 150  # T of the clips (paper: 150)
    video_frames: int = 240  # longer synthetic videos give several clips each (stride 30)
    stride: int = 30
    size: str = "64x48"  # training resolution (the tiny preset's)
    photo_size: str = "128x80"  # held-out photos: larger than the model, so motion is upsampled (§5)
    preset: str = "tiny"
    vae_steps: int = 600  # the moving-pixel-weighted L1 needs ~600 steps to decode the plants' motion
    vae_learning_rate: float = 2e-3
    motion_steps: int = 1000
    motion_learning_rate: float = 1e-3
    motion_ema_decay: float = 0.995  # the default 0.999 lags a run of 1 000 steps (docs/motion.md)
    train_batch_size: int = 4  # clips per step for the VAE and the U-Net (4 slices each)
    threads_per_worker: int = field(default_factory=lambda: min(os.cpu_count() or 1, 4))  # one Ray Train worker
    renderer_steps: int = 200
    target_frames: int = 2  # target frames per clip for renderer training
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.num_videos < 2 or self.num_heldout < 1:
            raise ValueError(f"the demo needs at least 2 training videos and 1 held-out photo, got "
                             f"{self.num_videos} and {self.num_heldout}")


def run_step(args: list[str], done_marker: Path, log: dict[str, dict]) -> None:
    """Run ``gid ARGS`` unless ``done_marker`` exists; print the command so users can rerun it."""
    line = "gid " + shlex.join(args)
    if done_marker.exists():
        print(f"[skip] {line}   ({done_marker} exists)", flush=True)
        log.setdefault(line, {"seconds": None, "skipped": True})
        return
    print(f"[run]  {line}", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gid.stages.cli", *args], check=True)
    seconds = time.perf_counter() - start
    log[line] = {"seconds": round(seconds, 1), "skipped": False}
    print(f"       done in {seconds:.0f} s", flush=True)


def demo_commands(cfg: DemoConfig) -> list[tuple[list[str], Path]]:
    """The demo's `gid` commands, each with the file whose existence means it is done."""
    out = Path(cfg.out).resolve()
    synth, heldout, clips, photos = out / "synth", out / "heldout", out / "clips", out / "heldout_clips"
    bundle, render, mlflow_uri = out / "bundle", out / "render", f"sqlite:///{out / 'mlflow.db'}"
    train = ["--data", str(clips), "--out", str(bundle), "--mlflow-uri", mlflow_uri, "--threads-per-worker",
             str(cfg.threads_per_worker)]
    return [
        (["synth", str(synth), "--num-videos", str(cfg.num_videos), "--frames", str(cfg.video_frames),
          "--size", cfg.size, "--seed", str(cfg.seed)], synth / "manifest.parquet"),
        (["synth", str(heldout), "--num-videos", str(cfg.num_heldout), "--frames", str(cfg.frames),
          "--size", cfg.photo_size, "--seed", str(cfg.seed + 1)], heldout / "manifest.parquet"),
        (["preview", str(synth), "--out", str(out / "preview")], out / "preview" / "spectrum.png"),
        (["preprocess", str(synth / "videos"), "--out", str(clips), "--frames", str(cfg.frames), "--stride",
          str(cfg.stride), "--size", cfg.size, "--target-frames", str(cfg.target_frames), "--quiet"],
         clips / "freq_scales.json"),
        (["preprocess", str(heldout / "videos"), "--out", str(photos), "--frames", str(cfg.frames), "--stride",
          str(cfg.frames), "--size", cfg.photo_size, "--quiet"], photos / "freq_scales.json"),
        (["train", "vae", *train, "--config", cfg.preset, "--max-steps", str(cfg.vae_steps), "--learning-rate",
          str(cfg.vae_learning_rate), "--batch-size", str(cfg.train_batch_size)], bundle / "vae"),
        (["train", "motion", *train, "--stage", "1", "--max-steps", str(cfg.motion_steps), "--learning-rate",
          str(cfg.motion_learning_rate), "--batch-size", str(cfg.train_batch_size), "--ema-decay",
          str(cfg.motion_ema_decay)],
         bundle / "unet"),
        # No stage 2 (frequency attention): at this scale it changes the single-sample error by < 1 %
        # (docs/motion.md, "Frequency attention on vs off") and costs a fifth of the training time.
        (["train", "renderer", *train, "--max-steps", str(cfg.renderer_steps)], bundle / "renderer"),
        (["render", str(photos / "clips"), "--model", str(bundle), "--out", str(render), "--frames", str(cfg.frames),
          "--batch-size",
          str(cfg.batch_size), "--save-motion", "--mlflow-uri",
          mlflow_uri],
         render / "manifest.parquet"),
        (["eval", "--real", str(heldout), "--fake", str(render), "--gt", str(heldout), "--out", str(out / "eval"),
          "--mlflow-uri", mlflow_uri], out / "eval" / "metrics.json"),
    ]


def side_by_side_gifs(out: Path, results: Path, max_gifs: int = 4) -> list[Path]:
    """``results/{id}.gif``: each held-out video (left) beside the one gid generated from its first frame."""
    import pyarrow.parquet as pq

    from gid.datasets.ground_truth import match_id
    from gid.datasets.video_io import read_video, write_gif
    from gid.pipeline.visualize import side_by_side

    truth = {r["video_id"]: out / "heldout" / r["video"] for r in pq.read_table(out / "heldout" / "manifest.parquet").to_pylist()}
    gifs = []
    for row in pq.read_table(out / "render" / "manifest.parquet").to_pylist():
        key = match_id(Path(row["video"]).stem, truth) if row["status"] == "ok" else None
        if key is None or len(gifs) >= max_gifs:
            continue
        frames = side_by_side(read_video(truth[key])[0], read_video(out / "render" / row["video"])[0])
        gifs.append(write_gif(results / f"{key}.gif", frames, fps=15))
    return gifs


def training_curves(mlflow_uri: str, path: Path) -> Path | None:
    """One panel per `gid-*` training experiment (its latest run): every logged loss against the step."""
    import mlflow

    from gid.pipeline.visualize import plot_losses

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    panels = []
    for exp in client.search_experiments():
        if not exp.name.startswith("gid-") or exp.name in ("gid-render", "gid-eval"):
            continue
        for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1):
            keys = [k for k in run.data.metrics if "loss" in k]
            if keys:
                histories = {k: client.get_metric_history(run.info.run_id, k) for k in keys}
                panels.append((run.info.start_time, run.info.run_name or exp.name,
                               {k: ([m.step for m in h], [m.value for m in h]) for k, h in histories.items()}))
    if not panels:
        return None
    return plot_losses(path, [panel[1:] for panel in sorted(panels, key=lambda panel: panel[0])])  # in training order


def write_report(cfg: DemoConfig, log: dict[str, dict], total_s: float) -> Path:
    """``OUT/results/``: GIFs, plots and ``report.md`` (steps and timings, metrics, where things are)."""
    import shutil

    import pyarrow.parquet as pq

    out = Path(cfg.out).resolve()
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    mlflow_uri = f"sqlite:///{out / 'mlflow.db'}"
    gifs = side_by_side_gifs(out, results)
    plots = [p for p in [training_curves(mlflow_uri, results / "training_curves.png")] if p]
    for name in ("motion_magnitude.png", "amplitude_spectra.png", "sliding_windows.png"):
        if (out / "eval" / name).is_file():
            plots.append(Path(shutil.copy(out / "eval" / name, results / name)))
    if (out / "preview" / "spectrum.png").is_file():
        plots.append(Path(shutil.copy(out / "preview" / "spectrum.png", results / "training_data_spectrum.png")))
    metrics = json.loads((out / "eval" / "metrics.json").read_text()).get("metrics", {})
    manifest = pq.read_table(out / "render" / "manifest.parquet").to_pylist()
    ok = [r for r in manifest if r["status"] == "ok"]
    lines = [
        "# gid demo report", "",
        f"Synthetic swaying plants: {cfg.num_videos} training videos at {cfg.size} ({cfg.video_frames} frames, clips of "
        f"{cfg.frames} every {cfg.stride}), {cfg.num_heldout} held-out photos at {cfg.photo_size}. Preset `{cfg.preset}`.",
        f"Total time: {total_s / 60:.1f} min (steps marked skipped were already done).", "",
        "## Steps", "", "| command | seconds |", "|---|---|",
        *[f"| `{line}` | {'skipped' if v['skipped'] else v['seconds']} |" for line, v in log.items()], "",
        "## Held-out videos (left: real, right: generated from its first frame)", "",
        *[f"![{g.stem}]({g.name})" for g in gifs], "",
        f"{len(ok)} of {len(manifest)} photos rendered; videos in `{out / 'render' / 'videos'}`.", "",
        "## Metrics (gid eval)", "", "| metric | value |", "|---|---|",
        *[f"| {k} | {v:.4g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |" for k, v in sorted(metrics.items())],
        "", "## Plots", "", *[f"![{p.stem}]({p.name})" for p in plots], "",
        "## Explore the runs", "", f"    mlflow ui --backend-store-uri {mlflow_uri}", "",
    ]
    (results / "report.md").write_text("\n".join(lines))
    return results / "report.md"


def run_demo(cfg: DemoConfig) -> Path:
    """Run every step (skipping finished ones), then write the results folder; returns report.md."""
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log: dict[str, dict] = {}
    start = time.perf_counter()
    for args, marker in demo_commands(cfg):
        run_step(args, marker, log)
    report = write_report(cfg, log, time.perf_counter() - start)
    (out / "steps.json").write_text(json.dumps(log, indent=1))
    print(f"\nResults in {out}/results/ (report.md, GIFs, plots)\n"
          f"  report            {report}\n"
          f"  rendered videos   {out / 'render' / 'videos'}/\n"
          f"  metrics           {out / 'eval' / 'metrics.json'}\n"
          f"  model bundle      {out / 'bundle'}/\n"
          f"  MLflow UI         mlflow ui --backend-store-uri sqlite:///{out / 'mlflow.db'}")
    return report
