"""`gid animate`: one photo in, a (looping) video out (thin wrapper over gid.pipeline.animate)."""
from __future__ import annotations

from pathlib import Path

import typer


def _load_spectral(path: Path):
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no spectral volume here; give a .npy file of shape (K, 4, H, W)")
    try:
        spectral = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: not a .npy array ({err}); save the volume with numpy.save") from None
    if spectral.ndim != 4 or spectral.shape[1] != 4:
        raise ValueError(f"{path}: spectral volume must have shape (K, 4, H, W), got {spectral.shape}")
    return spectral


def _load_renderer(choice: str | None, model: Path | None):
    """``None`` for the splat baseline, else a FrameRenderer in eval mode (bundle's renderer by default)."""
    from gid.pipeline.renderer import FrameRenderer

    if choice == "splat":
        return None
    folder = Path(choice) if choice else (model / "renderer" if model else None)
    if folder is None or (choice is None and not folder.is_dir()):
        return None
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a trained renderer (no config.json); train one with "
                                "`gid train renderer`, or use --renderer splat")
    return FrameRenderer.from_pretrained(folder).eval()


def register(app: typer.Typer) -> None:
    @app.command()
    def animate(
        image: Path = typer.Argument(..., help="The photo (PNG, JPEG, TIFF, WebP, …; converted to 8-bit RGB)."),
        out: Path = typer.Option(..., "--out", "-o", help="The video to write (H.264 MP4)."),
        model: Path = typer.Option(None, help="A trained model bundle (gid train …) that predicts the motion."),
        spectral: Path = typer.Option(None, help="Use this (K, 4, H, W) .npy spectral volume instead of a model "
                                                 "(e.g. a synthetic clip's ground truth)."),
        renderer: str = typer.Option(None, help="'splat' for plain softmax splatting, or a trained renderer folder; "
                                                "default: the bundle's renderer if its frames differ from splat's "
                                                "(checked on two frames), else splat; the choice is printed."),
        frames: int = typer.Option(150, help="Number of frames T (the motion repeats every T frames)."),
        spectral_frames: int = typer.Option(None, help="With --spectral: the T its volume was computed over "
                                                       "(rfft of T frames); amplitudes are rescaled by frames/T so "
                                                       "motion stays in pixels. Default: --frames."),
        fps: float = typer.Option(30.0, help="Frame rate of the video."),
        loop: bool = typer.Option(False, "--loop", help="Looping guidance (§6) so the video repeats without a seam "
                                                        "(with --model)."),
        amplify: float = typer.Option(1.0, help="Scale the motion: >1 exaggerates, <1 calms it."),
        guidance: float = typer.Option(1.75, help="Classifier-free guidance weight w (with --model)."),
        steps: int = typer.Option(50, help="DDIM sampling steps (with --model; the paper uses 250, docs/motion.md's "
                                           "figures 25; 50 keeps a 752x600 photo under 90 s on 2 CPU cores)."),
        seed: int = typer.Option(0, help="Seed of the motion sample (with --model)."),
        gif: bool = typer.Option(False, "--gif", help="Also write a GIF next to the MP4."),
        show_motion: bool = typer.Option(False, "--show-motion", help="Put a flow-colour picture of the motion beside "
                                                                      "the video."),
        max_side: int = typer.Option(1024, help="Shrink the photo so its long side is at most this (pixels)."),
    ) -> None:
        """Animate one photo: predict (or load) its motion and render a video of it.

        The output keeps the photo's aspect ratio (long side at most --max-side, even size);
        motion at any resolution is resized to it with its displacements rescaled.
        """
        import time

        import numpy as np
        import torch

        from gid.datasets.video import write_gif, write_video
        from gid.pipeline.animate import check_size, motion_panel, pick_renderer, predict_spectral, spectral_to_motion
        from gid.pipeline.images import fit_image, load_image
        from gid.pipeline.render import render_video

        if (model is None) == (spectral is None):
            raise ValueError("give exactly one of --model DIR (predict the motion) or --spectral FILE.npy")
        if frames < 2:
            raise ValueError(f"--frames must be at least 2, got {frames}")
        if fps <= 0:
            raise ValueError(f"--fps must be positive, got {fps}")
        if out.suffix.lower() != ".mp4":
            raise ValueError(f"--out must end in .mp4, got {out}")
        clock = time.perf_counter()

        def stage(name: str, detail: str = "") -> None:
            nonlocal clock
            typer.echo(f"gid animate: {name} {time.perf_counter() - clock:.1f} s{detail}", err=True)
            clock = time.perf_counter()

        photo = fit_image(load_image(image), max_side)
        frame_renderer = _load_renderer(renderer, model)
        check_size(photo.shape[0], photo.shape[1], frames, max_side, frame_renderer)
        if model is not None:
            from gid.pipeline.motion_pipeline import MotionPipeline

            if not (model / "bundle.json").is_file():
                raise FileNotFoundError(f"{model}: not a model bundle (no bundle.json); train one with `gid train`")
            pipe = MotionPipeline.from_bundle(model)
            stage("load", f" ({photo.shape[1]}x{photo.shape[0]} photo, bundle {model})")
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the motion model's small tensors: one thread beats two (benchmarks/animate.py)
            try:
                volume = predict_spectral(pipe, photo, frames, steps, guidance, loop, seed)
            finally:
                torch.set_num_threads(threads)
            stage("sample", f" ({steps} DDIM steps)")
        else:
            volume = _load_spectral(spectral)
            if spectral_frames is not None:
                if spectral_frames < 2:
                    raise ValueError(f"--spectral-frames must be at least 2, got {spectral_frames}")
                volume = volume * (frames / spectral_frames)
            stage("load", f" ({photo.shape[1]}x{photo.shape[0]} photo, {spectral})")
        trajectories = spectral_to_motion(volume, photo.shape[:2], frames, amplify)
        used = "splat" if frame_renderer is None else "learned"
        if renderer is None and frame_renderer is not None:
            frame_renderer, used = pick_renderer(photo, trajectories, frame_renderer)
        video = render_video(photo, trajectories, frame_renderer, progress=True)
        if show_motion:
            video = np.concatenate([video, motion_panel(trajectories)], axis=2)
        del trajectories
        stage("render", f" ({frames} frames, renderer: {used})")
        write_video(out, video, fps)
        stage("encode")
        typer.echo(f"wrote {out} ({len(video)} frames, {video.shape[2]}x{video.shape[1]}, "
                   f"{'learned renderer' if frame_renderer is not None else 'splat'})")
        if gif:
            gif_path = write_gif(out.with_suffix(".gif"), video, fps)
            typer.echo(f"wrote {gif_path}")
