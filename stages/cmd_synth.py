"""`gid synth`: synthetic videos with exact ground-truth motion (thin wrapper over gid.datasets.synthetic)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.options import parse_size


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        out: Path = typer.Argument(..., help="Folder to write videos/, gt/ and manifest.parquet into."),
        num_videos: int = typer.Option(8, "--num-videos", "-n", help="How many videos to generate."),
        frames: int = typer.Option(150, help="Frames per video (T)."),
        fps: float = typer.Option(30.0, help="Frame rate."),
        size: str = typer.Option("256x160", help="WIDTHxHEIGHT in pixels (even numbers, H.264)."),
        num_freqs: int = typer.Option(16, help="K, frequencies kept in the ground-truth spectral volume."),
        seed: int = typer.Option(0, help="Base seed; video i uses (seed, i), so the same seed gives the same data."),
        crf: int = typer.Option(17, help="H.264 quality (0 lossless, 17 visually lossless, 23 default)."),
        clips: bool = typer.Option(False, "--clips", help="Also write the exact motion as a clip table "
                                   "(OUT/clips/*.parquet, OUT/freq_scales.json), so `gid train vae|motion --data OUT` "
                                   "trains on it directly, without optical flow."),
    ) -> None:
        """Generate swaying-plant videos whose per-pixel motion is known exactly.

        Writes OUT/videos/*.mp4, OUT/gt/*.npz (trajectories (T,2,H,W), spectral (K,4,H,W),
        visible (T,H,W), solid (H,W), frame0 (H,W,3)) and OUT/manifest.parquet. Existing videos with
        the same id are kept, so a rerun only fills in what is missing. With --clips, also the clip
        table of the exact motion (one clip per video, gid.datasets.clip_table.synthetic_to_clips).
        """
        from gid.datasets.synthetic import SynthConfig, write_dataset

        from gid.datasets.validate import output_dir
        from gid.stages.options import at_least

        width, height = parse_size(size)
        config = SynthConfig(num_frames=frames, fps=fps, width=width, height=height, num_freqs=num_freqs)
        at_least("--num-videos", num_videos, 1)
        at_least("--num-freqs", num_freqs, 1)
        output_dir(out, "OUT")
        manifest = write_dataset(out, num_videos, config, seed=seed, crf=crf)
        typer.echo(f"wrote {len(manifest)} videos to {out} (manifest: {out / 'manifest.parquet'})")
        if clips:
            from gid.datasets.clip_table import synthetic_to_clips

            synthetic_to_clips(out, out)
            typer.echo(f"wrote the exact motion as a clip table to {out / 'clips'} and {out / 'freq_scales.json'}; "
                       f"train with `gid train vae --data {out}`")
