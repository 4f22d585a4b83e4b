"""`gid motion`: the spectral volume of one clip of a real video (thin wrapper over gid.pipeline.footage)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.options import parse_size


def clip_options(start: float, frames: int, fps: float | None, size: str | None, max_side: int, num_freqs: int,
                 flow: str, camera: str):
    from gid.pipeline.footage import ClipOptions

    return ClipOptions(start=start, frames=frames, fps=fps, size=parse_size(size) if size else None,
                       max_side=max_side, num_freqs=num_freqs, flow=flow, camera=camera)


HELP = {
    "start": "Where the clip starts in the video (seconds).",
    "frames": "Frames in the clip (T): the loop's length; its frequency bins are fps/T Hz apart.",
    "fps": "Resample the video to this frame rate (default: its own).",
    "num_freqs": "K, frequencies kept (bins k·fps/T Hz, k < K).",
    "max_side": "Long side of the clip in px, aspect ratio kept (never enlarged).",
    "flow": "Optical flow: dis (DIS fast), dis-medium, farneback, or torchscript:PATH.",
    "camera": "remove: fit a global affine motion per frame and subtract it when it exceeds 0.5 px (the "
              "loop is stabilised); keep: leave it in, with a warning.",
}


def register(app: typer.Typer) -> None:
    @app.command()
    def motion(
        video: Path = typer.Argument(..., help="A video of a scene that oscillates (MP4, MOV, WebM, …)."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder to write spectral.npy, frame0.png and motion.json."),
        start: float = typer.Option(0.0, help=HELP["start"]),
        frames: int = typer.Option(150, help=HELP["frames"]),
        fps: float = typer.Option(None, help=HELP["fps"]),
        num_freqs: int = typer.Option(16, help=HELP["num_freqs"]),
        size: str = typer.Option(None, help="WIDTHxHEIGHT of the clip (scaled to cover it and centre-cropped); "
                                            "default: see --max-side."),
        max_side: int = typer.Option(512, help=HELP["max_side"]),
        flow: str = typer.Option("dis", help=HELP["flow"]),
        camera: str = typer.Option("remove", help=HELP["camera"]),
    ) -> None:
        """Estimate the motion of one clip of a video: its spectral volume (K, 4, H, W) and frame 0.

        The same decoding, flow (frame 0 to every frame) and transform as `gid preprocess`. Then
        `gid animate OUT/frame0.png --spectral OUT` re-renders it, and `gid interact`/`gid loop` use it.
        """
        from gid.datasets.spectral_file import save_motion
        from gid.pipeline.footage import load_video_motion, motion_meta

        opts = clip_options(start, frames, fps, size, max_side, num_freqs, flow, camera)
        clip, result, notes = load_video_motion(video, opts)
        for note in notes:
            typer.echo(note, err=True)
        save_motion(out, result.spectral, result.frame0, motion_meta(clip, result, opts))
        height, width = result.frame0.shape[:2]
        typer.echo(f"wrote {out}/spectral.npy ({result.spectral.shape[0]}, 4, {height}, {width}), frame0.png, "
                   f"motion.json (T = {result.num_frames} at {result.fps:g} fps from {clip.start:g} s)")
