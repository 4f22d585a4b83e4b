"""`gid demo`: the main job end to end on embedded defaults; every step is a printed `gid` command."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("results/demo"), help="Folder for everything the demo makes."),
        num_videos: int = typer.Option(24, help="Synthetic videos to generate."),
        seed: int = typer.Option(0, help="Seed for the synthetic data."),
    ) -> None:
        """Run the whole pipeline on synthetic data it generates itself, and show where the results are."""
        from gid.datasets.validate import output_dir
        from gid.stages.demo import DemoConfig, run_demo
        from gid.stages.options import at_least

        at_least("--num-videos", num_videos, 1)
        output_dir(out, "--out")

        run_demo(DemoConfig(out=out, num_videos=num_videos, seed=seed))
