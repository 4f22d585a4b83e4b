"""`gid interact`: poke one point of a photo and render how the scene responds (§6, Eq. 6)."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.options import GUIDANCE_SCALE, PHOTO_MAX_SIDE, SAMPLE_SEED, STEPS, parse_pair


def register(app: typer.Typer) -> None:
    @app.command()
    def interact(
        image: Path = typer.Argument(..., help="The photo to poke (PNG, JPEG, TIFF, WebP, ...), or a video (MP4, MOV, "
                                               "…): its first frame, moved by the video's own modes."),
        out: Path = typer.Option(..., help="Video to write (H.264 MP4)."),
        point: str = typer.Option(..., help="X,Y: the pixel of the photo to push or pull (0,0 = top left)."),
        force: str = typer.Option(None, help="FX,FY: force at the point, in pixels (x right, y down); an impulse "
                                             "unless --release. Give this or --pull."),
        pull: str = typer.Option(None, help="DX,DY: drag the point this many pixels and let go (the web page's "
                                            "drag). Give this or --force."),
        model: Path = typer.Option(None, help="Trained model bundle (from `gid train`) that predicts the photo's motion."),
        spectral: Path = typer.Option(None, help="Use this spectral volume (K,4,H,W) .npy instead of a model, or a "
                                                 "`gid synth` gt/*.npz (its exact motion); any size: it is resized "
                                                 "to the photo."),
        spectral_frames: int = typer.Option(150, help="T of the clip --spectral was computed from (defines the mode "
                                                      "frequencies k·fps/T); with a video, the frames of its clip."),
        start: float = typer.Option(0.0, help="With a video: where its clip starts (seconds)."),
        spectral_fps: float = typer.Option(30.0, help="Frame rate of the clip --spectral was computed from."),
        frames: int = typer.Option(150, help="Frames to simulate and render."),
        fps: float = typer.Option(30.0, help="Frame rate of the output video."),
        damping: float = typer.Option(0.1, help="Damping ratio ξ of every mode: 0 rings forever, 1 stops without "
                                                "overshooting."),
        mass: float = typer.Option(1.0, help="Modal mass m: a force moves heavier scenes less (not used by --pull)."),
        release: bool = typer.Option(False, "--release", help="With --force: hold the force until the start, then "
                                                              "let go (instead of a flick)."),
        renderer: str = typer.Option("splat", help="'splat' (softmax splatting, no network) or a trained renderer "
                                                   "folder such as BUNDLE/renderer."),
        max_side: int = PHOTO_MAX_SIDE,
        steps: int = STEPS,
        guidance_scale: float = GUIDANCE_SCALE,
        seed: int = SAMPLE_SEED,
    ) -> None:
        """Push or pull one point of a photo and write a video of the scene's response.

        Every frequency of the photo's motion is a vibration mode (image-space modal basis); the
        force is projected onto the modes, each mode rings as a damped oscillator and the photo is
        warped by the summed displacement.
        """
        from gid.datasets import validate
        from gid.pipeline.footage import is_video
        from gid.pipeline.poke import InteractConfig, interact as run
        from gid.stages.options import at_least, positive

        at_least("--frames", frames, 2)
        positive("--fps", fps)
        at_least("--steps", steps, 1)
        at_least("--max-side", max_side, 16)
        validate.output_file(out, "--out", (".mp4",))
        if is_video(image):
            validate.video_file(image, "IMAGE")
        else:
            validate.image_file(image)
        if model is not None:
            validate.bundle(model)
        if spectral is not None and spectral.suffix.lower() == ".npy":
            validate.npy_file(spectral, "--spectral", "a (K, 4, H, W) spectral volume")
        if renderer != "splat":
            validate.weights_folder(Path(renderer), "--renderer", "a trained renderer folder (BUNDLE/renderer)")

        cfg = InteractConfig(
            image=image, out=out, point=parse_pair(point, "--point"),
            force=parse_pair(force, "--force") if force is not None else None,
            pull=parse_pair(pull, "--pull") if pull is not None else None,
            spectral=spectral, model=model, spectral_frames=spectral_frames, spectral_fps=spectral_fps,
            frames=frames, fps=fps, damping=damping, mass=mass, release=release, renderer=renderer,
            max_side=max_side, steps=steps, guidance=guidance_scale, seed=seed, start=start,
        )
        path = run(cfg)
        typer.echo(f"wrote {path}")
