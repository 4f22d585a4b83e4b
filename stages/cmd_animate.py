"""`gid animate`: one photo in, a (looping) video out (thin wrapper over gid.pipeline.animate)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.pipeline.sampling import check_sampling
from gid.stages.options import GUIDANCE_SCALE, PHOTO_MAX_SIDE, SAMPLE_SEED, STEPS


def register(app: typer.Typer) -> None:
    @app.command()
    def animate(
        image: Path = typer.Argument(..., help="The photo (PNG, JPEG, TIFF, WebP, …; converted to 8-bit RGB)."),
        out: Path = typer.Option(..., "--out", "-o", help="The video to write (H.264 MP4)."),
        model: Path = typer.Option(None, help="A trained model bundle (gid train …) that predicts the motion."),
        spectral: Path = typer.Option(None, help="Use this (K, 4, H, W) .npy spectral volume instead of a model "
                                                 "(e.g. a synthetic clip's ground truth), or a `gid motion` folder "
                                                 "(its motion.json gives T and fps)."),
        renderer: str = typer.Option(None, help="'splat' for plain softmax splatting, or a trained renderer folder; "
                                                "default: the bundle's renderer if its frames differ from splat's "
                                                "(checked on two frames), else splat; the choice is printed."),
        frames: int = typer.Option(None, help="Number of frames T (the motion repeats every T frames); default "
                                              "150, or the T of a `gid motion` folder."),
        spectral_frames: int = typer.Option(None, help="With --spectral: the T its volume was computed over "
                                                       "(rfft of T frames); amplitudes are rescaled by frames/T so "
                                                       "motion stays in pixels. Default: --frames."),
        fps: float = typer.Option(None, help="Frame rate of the video; default 30, or that of a `gid motion` folder."),
        loop: bool = typer.Option(False, "--loop", help="Looping guidance (§6) so the video repeats without a seam "
                                                        "(with --model)."),
        amplify: float = typer.Option(1.0, help="Scale the motion: >1 exaggerates, <1 calms it."),
        guidance_scale: float = GUIDANCE_SCALE,
        steps: int = STEPS,
        seed: int = SAMPLE_SEED,
        gif: bool = typer.Option(False, "--gif", help="Also write a GIF next to the MP4."),
        show_motion: bool = typer.Option(False, "--show-motion", help="Put a flow-colour picture of the motion beside "
                                                                      "the video."),
        max_side: int = PHOTO_MAX_SIDE,
    ) -> None:
        """Animate one photo: predict (or load) its motion and render a video of it.

        The output keeps the photo's aspect ratio (long side at most --max-side, even size);
        motion at any resolution is resized to it with its displacements rescaled.
        """
        import time

        import numpy as np

        from gid.datasets import validate
        from gid.datasets.spectral_file import load_spectral
        from gid.datasets.video_io import write_gif, write_video
        from gid.pipeline.animate import check_size, motion_panel, pick_renderer, spectral_to_motion
        from gid.pipeline.frame_renderer import choose_renderer
        from gid.pipeline.images import fit_image, load_image
        from gid.pipeline.warping import render_video
        from gid.stages.options import at_least, positive

        if (model is None) == (spectral is None):
            raise ValueError("give exactly one of --model DIR (predict the motion) or --spectral FILE.npy")
        validate.output_file(out, "--out", (".mp4",))
        validate.image_file(image)
        if model is not None:
            validate.bundle(model)
        given = load_spectral(spectral) if spectral is not None else None
        if frames is None:
            frames = given.num_frames if given is not None and given.num_frames else 150
        if fps is None:
            fps = given.fps if given is not None and given.fps else 30.0
        if spectral_frames is None and given is not None:
            spectral_frames = given.num_frames
        at_least("--frames", frames, 2)
        positive("--fps", fps)
        check_sampling(steps, guidance_scale)
        at_least("--max-side", max_side, 16)
        at_least("--spectral-frames", spectral_frames, 2)
        if renderer not in (None, "splat"):
            validate.weights_folder(Path(renderer), "--renderer", "a trained renderer folder (BUNDLE/renderer)")
        clock = time.perf_counter()

        def stage(name: str, detail: str = "") -> None:
            nonlocal clock
            typer.echo(f"gid animate: {name} {time.perf_counter() - clock:.1f} s{detail}", err=True)
            clock = time.perf_counter()

        photo = fit_image(load_image(image), max_side)
        frame_renderer = choose_renderer(renderer, model)
        check_size(photo.shape[0], photo.shape[1], frames, max_side, frame_renderer)
        if model is not None:
            from gid.pipeline import GIDPipeline

            pipe = GIDPipeline.from_pretrained(model)
            stage("load", f" ({photo.shape[1]}x{photo.shape[0]} photo, bundle {model})")
            volume = pipe(photo, num_frames=frames, num_inference_steps=steps, guidance_scale=guidance_scale, loop=loop,
                          seed=seed, batch_size=1)[0].float().cpu().numpy()
            stage("sample", f" ({steps} DDIM steps)")
        else:
            volume = given.spectral
            if spectral_frames is not None:
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
