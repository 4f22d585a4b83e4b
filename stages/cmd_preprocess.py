"""`gid preprocess`: videos → clip table with spectral volumes (thin wrapper over gid.stages.preprocess)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.options import ADDRESS_HELP, parse_size


def register(app: typer.Typer) -> None:
    @app.command()
    def preprocess(
        inputs: list[str] = typer.Argument(None, help="Videos: files, folders (searched recursively), globs, "
                                                       "text files with one path per line, or URIs (s3://…, file://…)."),
        manifest: Path = typer.Option(None, help="Instead of INPUTS: a Parquet file with a 'source' column (paths or "
                                                 "URIs) and optional 'start'/'end' seconds; streamed, never listed."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: clips/, errors/, done/, freq_scales.json."),
        frames: int = typer.Option(150, help="Frames per clip (T), after resampling to --fps."),
        stride: int = typer.Option(10, help="A clip starts every STRIDE frames."),
        num_freqs: int = typer.Option(16, help="K, frequencies kept in each spectral volume."),
        size: str = typer.Option("256x160", help="WIDTHxHEIGHT of clips (frames are scaled to cover it and centre-cropped)."),
        fps: float = typer.Option(30.0, help="Frame rate clips are resampled to."),
        flow: str = typer.Option("dis", help="Optical flow: dis (DIS fast), dis-medium, farneback, or torchscript:PATH (a flow net saved with torch.jit.save)."),
        target_frames: int = typer.Option(0, help="Also store N random frames per clip with their flow (renderer training)."),
        workers: int = typer.Option(0, help="Source actors (decode + flow + write); 0 = one per CPU of the Ray cluster."),
        num_cpus: int = typer.Option(None, help="CPUs for a local Ray (default: all); ignored with --address."),
        num_gpus: int = typer.Option(None, help="GPUs for a local Ray; with GPUs the spectral step runs on cupy."),
        address: str = typer.Option(None, help=ADDRESS_HELP),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Also redo the videos an earlier run of "
                                          "this --out recorded as failed (a rerun skips them by default)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Cut videos into clips, estimate flow from each clip's first frame, store spectral volumes.

        Resumable: rerun the same command after an interruption and finished videos are skipped.
        Unusable files get a row in OUT/errors/ and the run goes on. Workers write the clips;
        a --manifest of millions of sources is streamed, never listed in this process.
        """
        from gid.datasets.validate import input_file, output_dir, video_inputs
        from gid.stages.options import at_least
        from gid.stages.preprocess import PreprocessConfig, run_preprocess
        from gid.stages.ray_runtime import reachable_address

        width, height = parse_size(size)
        cfg = PreprocessConfig(num_frames=frames, stride=stride, width=width, height=height, fps=fps,
                               num_freqs=num_freqs, flow=flow, target_frames=target_frames)
        at_least("--workers", workers, 0)
        at_least("--num-cpus", num_cpus, 1)
        at_least("--num-gpus", num_gpus, 0)
        if not inputs and manifest is None:
            raise ValueError("no videos given; name files, folders, globs or lists, or give --manifest FILE.parquet")
        video_inputs(inputs or [])
        if manifest is not None:
            input_file(manifest, "--manifest", "a Parquet file with a `source` column")
        output_dir(out, "--out")
        reachable_address(address)
        summary = run_preprocess(inputs or [], out, cfg, manifest=str(manifest) if manifest else None, workers=workers,
                                 num_cpus=num_cpus, num_gpus=num_gpus,
                                 address=address, progress=not quiet, retry_failed=retry_failed)
        for line in summary.lines(out):
            typer.echo(line)
