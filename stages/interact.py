"""`gid interact` and `gid serve` wiring: where a photo's motion comes from, and one poke rendered to MP4.

Motion comes from a video's own clip (its frame 0 is the photo, :mod:`gid.stages.footage`), from a given spectral volume ``(K, 4, h, w)`` (``.npy``, pixels, e.g. the ground
truth of `gid synth`) or from a trained bundle through
``gid.pipeline.GIDPipeline`` (the photo resized to the model's resolution). The
volume is then resized to the photo with its motion rescaled (``gid.pipeline.warping.resize_spectral``),
the poke simulated there (``gid.pipeline.dynamics.simulate``) and the frames rendered with
``gid.pipeline.warping.render_video`` (softmax splatting, or a learned ``FrameRenderer``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gid.pipeline.sampling import SAMPLING, check_sampling


@dataclass
class MotionSource:
    """A spectral volume and the clip geometry it was made for.

    spectral: ``(K, 4, h, w)`` float32 pixels; num_frames: T of its transform; fps: its frame rate.
    """

    spectral: np.ndarray
    num_frames: int
    fps: float


def load_spectral(path: str | Path, num_frames: int = 150, fps: float = 30.0) -> MotionSource:
    """A ``(K, 4, h, w)`` spectral volume from a ``.npy``, a ``.npz`` (such as `gid synth`'s ``gt/*.npz``) or a
    `gid motion` folder (whose motion.json gives T and fps instead of ``num_frames`` and ``fps``)."""
    from gid.datasets.spectral_file import load_spectral as read

    volume = read(path)
    return check_spectral(volume.spectral, str(path), volume.num_frames or num_frames, volume.fps or fps)


def check_spectral(spectral: np.ndarray, name: str, num_frames: int, fps: float) -> MotionSource:
    """Validate a spectral volume ``(K, 4, h, w)`` (``name`` is used in error messages)."""
    if spectral.ndim != 4 or spectral.shape[1] != 4 or spectral.shape[0] < 2 or min(spectral.shape[2:]) < 2:
        raise ValueError(f"{name}: a spectral volume must have shape (K ≥ 2, 4, H, W), got {spectral.shape}")
    if not np.issubdtype(spectral.dtype, np.floating) or not np.isfinite(spectral).all():
        raise ValueError(f"{name}: a spectral volume must hold finite floats, got {spectral.dtype} with NaN/inf or non-floats")
    if spectral.shape[0] > num_frames // 2 + 1:
        raise ValueError(f"{name}: K = {spectral.shape[0]} frequencies need --spectral-frames ≥ {2 * (spectral.shape[0] - 1)}")
    return MotionSource(spectral.astype(np.float32), int(num_frames), float(fps))


def predict_motion(pipe, image: np.ndarray, steps: int = SAMPLING.num_inference_steps,
                   guidance: float = SAMPLING.guidance_scale, seed: int = 0,
                   callback: Callable[[int, int], None] | None = None) -> MotionSource:
    """Sample the motion of ``image (H, W, 3)`` uint8 with a loaded :class:`gid.pipeline.GIDPipeline`
    (§4.2: DDIM + CFG); ``callback(step, total)`` reports denoising progress."""
    spectral = pipe(image, num_inference_steps=steps, guidance_scale=guidance, seed=seed,
                    progress=callback is None, callback=callback)
    return check_spectral(spectral[0].float().cpu().numpy(), "predicted motion", pipe.num_frames, pipe.fps)


@dataclass
class InteractConfig:
    """One poke of a photo, rendered to a video (`gid interact`)."""

    image: Path
    out: Path
    point: tuple[float, float]
    force: tuple[float, float] | None = None  # the force d (px); or give pull
    pull: tuple[float, float] | None = None  # move the point by this much (px), then let go
    spectral: Path | None = None
    model: Path | None = None
    spectral_frames: int = 150
    spectral_fps: float = 30.0
    frames: int = 150
    fps: float = 30.0
    damping: float = 0.1
    mass: float = 1.0
    release: bool = False  # with force: hold it until t = 0, then let go (else: an impulse)
    renderer: str = "splat"
    max_side: int = 1024
    steps: int = SAMPLING.num_inference_steps
    guidance: float = SAMPLING.guidance_scale
    seed: int = 0

    start: float = 0.0  # with a video: where its clip starts (s); the clip has spectral_frames frames

    def __post_init__(self) -> None:
        check_sampling(self.steps, self.guidance)
        from gid.stages.footage import is_video

        if is_video(self.image):
            if self.model is not None or self.spectral is not None:
                raise ValueError(f"a video ({self.image}) brings its own motion; drop --model and --spectral")
        elif (self.model is None) == (self.spectral is None):
            raise ValueError("give exactly one of --model DIR (a trained bundle) or --spectral FILE.npy, "
                             "or poke a video instead of a photo")
        if (self.force is None) == (self.pull is None):
            raise ValueError("give exactly one of --force FX,FY (a force at the point) or --pull DX,DY (drag and let go)")
        if self.frames < 1:
            raise ValueError(f"--frames must be at least 1, got {self.frames}")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.damping < 0:
            raise ValueError(f"--damping must be ≥ 0 (damping ratio ξ; 0 rings forever), got {self.damping}")
        if self.mass <= 0:
            raise ValueError(f"--mass must be positive, got {self.mass}")
        if self.renderer != "splat" and not Path(self.renderer).is_dir():
            raise FileNotFoundError(f"--renderer {self.renderer}: no such folder; give a trained renderer "
                                    "folder (BUNDLE/renderer) or 'splat'")


def interact(cfg: InteractConfig, progress: bool = True) -> Path:
    """Load, predict or read the motion, simulate the poke (§6 Eq. 6), render (§5) and write an MP4."""
    from gid.datasets.video_io import write_video
    from gid.pipeline.dynamics import force_for_pull, modal_basis, simulate
    from gid.pipeline.images import fit_image, load_image
    from gid.pipeline.warping import render_video, resize_spectral

    from gid.stages.footage import ClipOptions, is_video, load_video_motion

    video = None
    if is_video(cfg.image):  # the video's own motion is the modal basis (Davis et al. 2015)
        _clip, video, notes = load_video_motion(cfg.image, ClipOptions(start=cfg.start, frames=cfg.spectral_frames,
                                                                      max_side=cfg.max_side))
        for note in notes:
            print(note, file=sys.stderr)
    original = video.frame0 if video is not None else load_image(cfg.image)
    image = fit_image(original, cfg.max_side)
    sx, sy = image.shape[1] / original.shape[1], image.shape[0] / original.shape[0]
    x, y = cfg.point
    if not (0 <= x <= original.shape[1] - 1 and 0 <= y <= original.shape[0] - 1):
        raise ValueError(f"--point {x:g},{y:g} is outside the {original.shape[1]}x{original.shape[0]} image {cfg.image}")
    point = (min(x * sx, image.shape[1] - 1), min(y * sy, image.shape[0] - 1))
    if video is not None:
        source = MotionSource(video.spectral, video.num_frames, video.fps)
    elif cfg.spectral is not None:
        source = load_spectral(cfg.spectral, cfg.spectral_frames, cfg.spectral_fps)
    else:
        from gid.pipeline import GIDPipeline

        source = predict_motion(GIDPipeline.from_pretrained(cfg.model), image, cfg.steps, cfg.guidance, cfg.seed)
    spectral = resize_spectral(source.spectral, image.shape[:2])
    vector = np.array(cfg.force if cfg.force is not None else cfg.pull, dtype=np.float64) * (sx, sy)
    if cfg.pull is not None:
        vector = force_for_pull(modal_basis(spectral, source.num_frames, source.fps), point, vector, cfg.mass)
    trajectories = simulate(spectral, point, vector, cfg.frames, cfg.fps, damping=cfg.damping, mass=cfg.mass,
                            impulse=cfg.force is not None and not cfg.release, spectral_frames=source.num_frames,
                            spectral_fps=source.fps)
    from gid.pipeline.frame_renderer import choose_renderer

    renderer = choose_renderer(cfg.renderer)
    frames = render_video(image, trajectories, renderer, progress=progress)
    return write_video(cfg.out, frames, cfg.fps)
