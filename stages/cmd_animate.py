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
                                                "default: the bundle's renderer if it has one, else splat."),
        frames: int = typer.Option(150, help="Number of frames T (the motion repeats every T frames)."),
        spectral_frames: int = typer.Option(None, help="With --spectral: the T its volume was computed over "
                                                       "(rfft of T frames); amplitudes are rescaled by frames/T so "
                                                       "motion stays in pixels. Default: --frames."),
        fps: float = typer.Option(30.0, help="Frame rate of the video."),
        loop: bool = typer.Option(False, "--loop", help="Looping guidance (§6) so the video repeats without a seam "
                                                        "(with --model)."),
        amplify: float = typer.Option(1.0, help="Scale the motion: >1 exaggerates, <1 calms it."),
        guidance: float = typer.Option(1.75, help="Classifier-free guidance weight w (with --model)."),
        steps: int = typer.Option(250, help="DDIM sampling steps (with --model; the paper uses 250)."),
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
        from gid.datasets.video import write_gif, write_video
        from gid.pipeline.animate import animate as run_animate, predict_spectral
        from gid.pipeline.images import fit_image, load_image

        from gid.stages import validate

        if (model is None) == (spectral is None):
            raise ValueError("give exactly one of --model DIR (predict the motion) or --spectral FILE.npy")
        validate.at_least("--frames", frames, 2)
        validate.positive("--fps", fps)
        validate.at_least("--steps", steps, 1)
        validate.at_least("--max-side", max_side, 16)
        validate.at_least("--spectral-frames", spectral_frames, 2)
        validate.output_file(out, "--out", (".mp4",))
        validate.image_file(image)
        if model is not None:
            validate.bundle(model)
        else:
            shape = validate.npy_file(spectral, "--spectral", "a (K, 4, H, W) spectral volume")
            if len(shape) != 4 or shape[1] != 4:
                raise ValueError(f"a spectral volume must have shape (K, 4, H, W), got {shape} (--spectral {spectral}); "
                                 "give one saved from a clip table or `gid synth`")
        if renderer not in (None, "splat"):
            validate.weights_folder(Path(renderer), "--renderer", "a trained renderer folder (BUNDLE/renderer)")
        photo = fit_image(load_image(image), max_side)
        frame_renderer = _load_renderer(renderer, model)
        if model is not None:
            from gid.pipeline.motion_pipeline import MotionPipeline

            if not (model / "bundle.json").is_file():
                raise FileNotFoundError(f"{model}: not a model bundle (no bundle.json); train one with `gid train`")
            pipe = MotionPipeline.from_bundle(model)
            volume = predict_spectral(pipe, photo, frames, steps, guidance, loop, seed)
        else:
            volume = _load_spectral(spectral)
            if spectral_frames is not None:
                if spectral_frames < 2:
                    raise ValueError(f"--spectral-frames must be at least 2, got {spectral_frames}")
                volume = volume * (frames / spectral_frames)
        video = run_animate(photo, volume, frames, amplify, frame_renderer, show_motion)
        write_video(out, video, fps)
        typer.echo(f"wrote {out} ({len(video)} frames, {video.shape[2]}x{video.shape[1]}, "
                   f"{'learned renderer' if frame_renderer is not None else 'splat'})")
        if gif:
            gif_path = write_gif(out.with_suffix(".gif"), video, fps)
            typer.echo(f"wrote {gif_path}")
