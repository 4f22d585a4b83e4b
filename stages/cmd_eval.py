"""`gid eval`: FID, KID, FVD, DTFVD, sliding-window curves and motion metrics (thin wrapper over gid.stages.evaluate and gid.pipeline.video_evaluation)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gid.stages.options import parse_size


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        real: Path = typer.Option(..., help="Folder of real videos (*.mp4 …, directly or in DIR/videos/), e.g. a `gid synth` folder."),
        fake: Path = typer.Option(..., help="Folder of generated videos (directly or in DIR/videos/), e.g. a `gid render` folder."),
        out: Path = typer.Option(Path("results/eval"), help="Folder for metrics.json and the PNG plots."),
        inception: Optional[Path] = typer.Option(None, help="InceptionV3 (FID) weights: a save_pretrained folder or .safetensors; enables FID, KID, sliding-window FID."),
        i3d: Optional[Path] = typer.Option(None, help="Kinetics-400 I3D weights (folder or .safetensors); enables FVD and FVD32."),
        dt_i3d: Optional[Path] = typer.Option(None, "--dt-i3d", help="Dynamic-Textures I3D weights; enables DTFVD, DTFVD32 and the sliding-window DTFVD."),
        gt: Optional[Path] = typer.Option(None, help="True motion of the fake videos' images: a `gid synth` folder or a folder of spectral {id}.npy (K,4,H,W); enables the amplitude error."),
        crop: str = typer.Option("256x128", help="WIDTHxHEIGHT center crop fed to the feature nets (paper: 256x128)."),
        frame_stride: int = typer.Option(1, help="FID/KID on every n-th frame (1: all frames)."),
        max_frames: Optional[int] = typer.Option(None, help="Use only the first N frames of every video."),
        flow: str = typer.Option("dis-medium", help="Optical flow for the motion metrics (see `gid preprocess --help`)."),
        kid_subsets: int = typer.Option(100, help="Random subsets averaged for KID."),
        kid_subset_size: int = typer.Option(1000, help="Feature vectors per KID subset (clipped to the set sizes)."),
        batch_size: int = typer.Option(16, help="Frames per forward pass of the feature nets."),
        device: str = typer.Option("cpu", help="Torch device of the feature nets (cpu, cuda, cuda:1 …)."),
        ray_min_videos: int = typer.Option(64, help="From this many videos per set on, extract features on Ray Data."),
        num_gpus: float = typer.Option(0.0, help="GPUs per Ray Data feature worker (with --device cuda)."),
        mlflow_uri: Optional[str] = typer.Option(None, help="Log metrics, curves and plots to this MLflow tracking URI (e.g. sqlite:///mlruns.db)."),
        experiment: str = typer.Option("gid-eval", help="MLflow experiment name (with --mlflow-uri)."),
    ) -> None:
        """Compare generated videos with real ones (paper §7) and with the true motion.

        Writes OUT/metrics.json (every metric the given weights allow, plus `skipped` saying why the others are missing), OUT/motion_magnitude.png, OUT/amplitude_spectra.png (with --gt) and OUT/sliding_windows.png (with --inception or --dt-i3d).

        Without any weights the motion metrics still run: they need only optical flow. A predicted spectral volume saved as {video}.npy beside a fake video makes its amplitude error exact. See docs/evaluate.md.
        """
        from gid.pipeline.video_evaluation import EvalConfig
        from gid.stages.evaluate import evaluate

        from gid.datasets import validate
        from gid.stages.options import at_least

        crop_w, crop_h = parse_size(crop, "--crop")
        validate.input_dir(real, "--real", "a folder of real videos")
        validate.input_dir(fake, "--fake", "a folder of generated videos")
        for name, weights in (("--inception", inception), ("--i3d", i3d), ("--dt-i3d", dt_i3d)):
            if weights is not None and weights.is_dir():
                validate.weights_folder(weights, name, "a save_pretrained folder or .safetensors file")
            elif weights is not None:
                validate.safetensors_file(validate.input_file(weights, name, "weights"), name)
        for name, value, minimum in (("--frame-stride", frame_stride, 1), ("--max-frames", max_frames, 2),
                                     ("--kid-subsets", kid_subsets, 1), ("--kid-subset-size", kid_subset_size, 2),
                                     ("--batch-size", batch_size, 1), ("--ray-min-videos", ray_min_videos, 1)):
            at_least(name, value, minimum)
        validate.output_dir(out, "--out")
        cfg = EvalConfig(
            real=real, fake=fake, out=out, inception=inception, i3d=i3d, dt_i3d=dt_i3d, gt=gt,
            crop_width=crop_w, crop_height=crop_h, frame_stride=frame_stride, max_frames=max_frames, flow=flow,
            kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, batch_size=batch_size, device=device,
            ray_min_videos=ray_min_videos, num_gpus_per_worker=num_gpus, mlflow_uri=mlflow_uri, experiment=experiment,
        )
        report = evaluate(cfg)
        for name, value in report["metrics"].items():
            typer.echo(f"{name:32s} {value:.4g}")
        for name, reason in report["skipped"].items():
            typer.echo(f"{name:32s} skipped: {reason}")
        typer.echo(f"wrote {out / 'metrics.json'} and {', '.join(report['plots'].values())}")
        if "mlflow_run_id" in report:
            typer.echo(f"MLflow run {report['mlflow_run_id']} at {mlflow_uri}")
