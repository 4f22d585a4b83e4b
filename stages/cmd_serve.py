"""`gid serve`: the local web page where a person pokes a photo and watches it respond."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.options import GUIDANCE_SCALE, SAMPLE_SEED, STEPS


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        model: Path = typer.Option(None, help="Trained model bundle (from `gid train`) that predicts the motion of "
                                              "uploaded photos; without it, upload a spectral volume with each photo."),
        host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves only this machine "
                                                   "(0.0.0.0 exposes it to your network)."),
        port: int = typer.Option(8000, help="TCP port."),
        examples: int = typer.Option(4, help="Synthetic example scenes (exact motion) offered in the page."),
        work_side: int = typer.Option(256, help="Long side (px) of the image animated in the page; larger is "
                                                "sharper and slower."),
        max_upload_mb: float = typer.Option(20.0, help="Largest upload accepted, in MB."),
        max_megapixels: float = typer.Option(40.0, help="Largest photo accepted, in megapixels (checked before decoding)."),
        max_video_seconds: float = typer.Option(30.0, help="Longest video accepted, in seconds (its first "
                                                           "--spectral-frames frames are used)."),
        spectral_frames: int = typer.Option(150, help="T of the clips uploaded spectral volumes were computed from."),
        spectral_fps: float = typer.Option(30.0, help="Frame rate of those clips."),
        steps: int = STEPS,
        guidance_scale: float = GUIDANCE_SCALE,
        seed: int = SAMPLE_SEED,
    ) -> None:
        """Serve a page to upload or choose a photo, drag on it to apply a force, and play its loop."""
        from gid.datasets import validate
        from gid.stages.options import at_least, positive
        from gid.stages.serve import ServeConfig, serve as run

        if not 1 <= port <= 65535:
            raise ValueError(f"--port must be in 1..65535 (--port {port}); e.g. 8000")
        positive("--max-upload-mb", max_upload_mb)
        positive("--max-megapixels", max_megapixels)
        at_least("--steps", steps, 1)
        at_least("--examples", examples, 0)
        if model is not None:
            validate.bundle(model)

        cfg = ServeConfig(model=model, examples=examples, work_side=work_side,
                          max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
                          max_video_seconds=max_video_seconds,
                          spectral_frames=spectral_frames, spectral_fps=spectral_fps, steps=steps,
                          guidance=guidance_scale, seed=seed)
        typer.echo(f"gid serve: open http://{host}:{port}/ (Ctrl+C stops it)")
        run(cfg, host=host, port=port)
