"""`gid render`: bulk rendering of many photos on Ray Data (thin wrapper over gid.stages.bulk_render).
Its options are the fields of RenderConfig (gid.stages.options.config_options)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gid.stages.bulk_render import RenderConfig
from gid.stages.options import config_options


def register(app: typer.Typer) -> None:
    @app.command()
    @config_options(RenderConfig)
    def render(
        inputs: list[Path] = typer.Argument(..., help="Image files, folders of images, or Parquet files with an image column."),
        cfg: dict[str, Any] | None = None,
    ) -> None:
        """Render one MP4 per photo with Ray Data: batched motion sampling and rendering in an actor pool.

        Writes OUT/videos/*.mp4, OUT/manifest.parquet (source, video, seconds, status, ...) and a row in
        OUT/errors/ for each photo that failed. A rerun skips the photos already rendered. Throughput is
        logged to MLflow (experiment gid-render).
        """
        from gid.datasets import validate
        from gid.stages.bulk_render import render_bulk
        from gid.stages.ray_runtime import reachable_address

        for path in inputs:
            if not path.exists():
                raise FileNotFoundError(f"no such file or folder (INPUTS {path}); give images, folders of images or "
                                        "Parquet files")
        if cfg["model"] is not None:
            validate.bundle(cfg["model"], parts=("vae",) if cfg["spectral"] else ("vae", "unet"))
        validate.output_dir(cfg["out"], "--out")
        reachable_address(cfg["address"])

        summary = render_bulk(inputs, RenderConfig(**cfg))
        typer.echo(f"rendered {summary.rendered}, failed {summary.failed}, skipped {summary.skipped} (already done) "
                   f"in {summary.seconds:.1f} s: {summary.videos_per_s:.2f} videos/s, {summary.frames_per_s:.1f} frames/s")
        typer.echo(f"manifest: {summary.manifest}" + (f"; failures: {cfg['out'] / 'errors'}/" if summary.failed else ""))
