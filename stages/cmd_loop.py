"""`gid loop`: a seamless loop (cinemagraph) of a real video from its own motion (thin wrapper)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.cmd_motion import HELP, clip_options


def register(app: typer.Typer) -> None:
    @app.command()
    def loop(
        video: Path = typer.Argument(..., help="A video of a scene that oscillates (MP4, MOV, WebM, …)."),
        out: Path = typer.Option(..., "--out", "-o", help="The loop to write (H.264 MP4)."),
        amplify: float = typer.Option(1.0, help="Scale the motion (in --band if given): >1 magnifies, <1 calms, "
                                                "0 freezes."),
        band: str = typer.Option(None, help="LO:HI in Hz: keep only the frequencies in [LO, HI] (within [0, fps/2])."),
        start: float = typer.Option(0.0, help=HELP["start"]),
        frames: int = typer.Option(150, help=HELP["frames"]),
        fps: float = typer.Option(None, help=HELP["fps"]),
        num_freqs: int = typer.Option(16, help=HELP["num_freqs"]),
        max_side: int = typer.Option(512, help=HELP["max_side"]),
        flow: str = typer.Option("dis", help=HELP["flow"]),
        camera: str = typer.Option("remove", help=HELP["camera"]),
        renderer: str = typer.Option("splat", help="'splat' (softmax splatting) or a trained renderer folder."),
        gif: bool = typer.Option(False, "--gif", help="Also write a GIF next to the MP4."),
        side_by_side: bool = typer.Option(False, "--side-by-side", help="Put the original clip left of the loop "
                                                                        "(and, with --band/--amplify, the plain loop "
                                                                        "between them)."),
    ) -> None:
        """Loop a video: frame 0 animated by its own K-term motion for T frames, so it repeats without a seam.

        Prints the loop's fidelity to the real clip (mean PSNR of loop frame t against real frame t,
        next to frame 0 held still) and its seam (last→first frame difference over a typical step).
        """
        import numpy as np

        from gid.datasets.video_io import write_gif, write_video
        from gid.pipeline.video_loop import fidelity, parse_band, reference_frames, render_loop, seam
        from gid.pipeline.frame_renderer import choose_renderer
        from gid.pipeline.footage import load_video_motion

        if out.suffix.lower() != ".mp4":
            raise ValueError(f"--out must end in .mp4 ({out}); give a name like loop.mp4")
        opts = clip_options(start, frames, fps, None, max_side, num_freqs, flow, camera)
        frame_renderer = choose_renderer(renderer)
        if band is not None:  # refuse a bad band before the (long) motion estimate
            from gid.datasets.video_clip import probe_video

            parse_band(band, fps or probe_video(str(video)).fps, str(video))
        clip, motion, notes = load_video_motion(video, opts)
        limits = parse_band(band, motion.fps, str(video)) if band is not None else None
        for note in notes:
            typer.echo(note, err=True)
        real = reference_frames(clip.frames, motion)
        plain = render_loop(motion, 1.0, None, frame_renderer)
        edited = plain if limits is None and amplify == 1.0 else render_loop(motion, amplify, limits, frame_renderer)
        score = fidelity(plain, real)
        typer.echo(f"fidelity over {motion.num_frames} frames: loop {score.psnr_loop:.2f} dB, frame 0 held still "
                   f"{score.psnr_still:.2f} dB (gain {score.gain:+.2f} dB); seam {score.seam:.2f} typical steps "
                   f"(the real clip cut and repeated: {seam(real):.2f})")
        panels = [real, plain] if side_by_side else []
        if edited is not plain or not side_by_side:
            panels.append(edited)
        video_out = np.concatenate(panels, axis=2)
        write_video(out, video_out, motion.fps)
        typer.echo(f"wrote {out} ({len(video_out)} frames, {video_out.shape[2]}x{video_out.shape[1]}, "
                   f"{'learned renderer' if frame_renderer is not None else 'splat'})")
        if gif:
            typer.echo(f"wrote {write_gif(out.with_suffix('.gif'), video_out, motion.fps)}")
