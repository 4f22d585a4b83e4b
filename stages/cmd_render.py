"""`gid render`: bulk rendering of many photos on Ray Data (thin wrapper over gid.stages.bulk_render)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.options import GUIDANCE_SCALE, SAMPLE_SEED, STEPS


def register(app: typer.Typer) -> None:
    @app.command()
    def render(
        inputs: list[Path] = typer.Argument(..., help="Image files, folders of images, or Parquet files with an image column."),
        model: Path = typer.Option(None, help="Model bundle folder from `gid train` (model_index.json, vae/, unet/, ...)."),
        out: Path = typer.Option(..., help="Folder for videos/, manifest.parquet and errors/."),
        frames: int = typer.Option(150, help="Frames per video (T)."),
        fps: float = typer.Option(30.0, help="Frame rate of the videos."),
        loop: bool = typer.Option(False, "--loop/--no-loop", help="Seamlessly looping motion (§6 universal guidance)."),
        amplify: float = typer.Option(1.0, help="Scale the motion: >1 exaggerates, <1 calms it, 0 freezes it."),
        steps: int = STEPS,
        guidance_scale: float = GUIDANCE_SCALE,
        seed: int = SAMPLE_SEED,
        num_gpus: int = typer.Option(0, help="GPUs to use, one render actor each; 0 renders on CPU actors."),
        num_workers: int = typer.Option(1, help="CPU render actors when --num-gpus is 0 (leave one CPU free)."),
        batch_size: int = typer.Option(4, help="Photos whose motion is sampled together in one model call."),
        max_side: int = typer.Option(512, help="Shrink photos so their long side is at most this (px)."),
        renderer: str = typer.Option("auto", help="auto: the bundle's learned renderer if it has one, else "
                                                  "softmax splatting; splat; learned."),
        spectral: bool = typer.Option(False, "--spectral", help="Render the motion stored in clip tables "
                                                                "(their `spectral` column) instead of sampling it."),
        save_motion: bool = typer.Option(False, "--save-motion", help="Also write each video's spectral volume "
                                                                    "(K, 4, h, w) as videos/NAME.npy; `gid eval` "
                                                                    "then measures motion exactly, without flow."),
        image_column: str = typer.Option("image", help="Column of Parquet inputs that holds encoded images."),
        address: str = typer.Option(None, help="Ray cluster address (e.g. ray://head:10001); default: "
                                               "$RAY_ADDRESS, else a local Ray."),
        mlflow_uri: str = typer.Option(None, help="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else "
                                                  "sqlite:///OUT/mlflow.db."),
    ) -> None:
        """Render one MP4 per photo with Ray Data: batched motion sampling and rendering in an actor pool.

        Writes OUT/videos/*.mp4, OUT/manifest.parquet (source, video, seconds, status, ...) and a row in
        OUT/errors/ for each photo that failed. A rerun skips the photos already rendered. Throughput is
        logged to MLflow (experiment gid-render).
        """
        from gid.stages import validate
        from gid.stages.bulk_render import RenderConfig, render_bulk

        for name, value, minimum in (("--frames", frames, 2), ("--steps", steps, 1), ("--batch-size", batch_size, 1),
                                     ("--num-workers", num_workers, 1), ("--num-gpus", num_gpus, 0),
                                     ("--max-side", max_side, 16)):
            validate.at_least(name, value, minimum)
        validate.positive("--fps", fps)
        for path in inputs:
            if not path.exists():
                raise FileNotFoundError(f"no such file or folder (INPUTS {path}); give images, folders of images or "
                                        "Parquet files")
        if model is not None:
            validate.bundle(model, parts=("vae",) if spectral else ("vae", "unet"))
        validate.output_dir(out, "--out")
        validate.reachable_address(address)

        cfg = RenderConfig(model=model, out=out, frames=frames, fps=fps, loop=loop, amplify=amplify,
                           num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed, num_gpus=num_gpus,
                           num_workers=num_workers, batch_size=batch_size, max_side=max_side, renderer=renderer,
                           spectral=spectral, save_motion=save_motion, image_column=image_column, address=address, tracking_uri=mlflow_uri)
        summary = render_bulk(inputs, cfg)
        typer.echo(f"rendered {summary.rendered}, failed {summary.failed}, skipped {summary.skipped} (already done) "
                   f"in {summary.seconds:.1f} s: {summary.videos_per_s:.2f} videos/s, {summary.frames_per_s:.1f} frames/s")
        typer.echo(f"manifest: {summary.manifest}" + (f"; failures: {out / 'errors'}/" if summary.failed else ""))
