"""`gid interact`: one poke of a photo (or of a video's frame 0) rendered to MP4.

Motion comes from a video's own clip (its frame 0 is the photo, :mod:`gid.pipeline.footage`) or from
:mod:`gid.pipeline.motion_source` (a given spectral volume, or a trained bundle). The volume is then
resized to the photo with its motion rescaled (``gid.pipeline.warping.resize_spectral``), the poke
simulated there (``gid.pipeline.dynamics.simulate``) and the frames rendered with
``gid.pipeline.warping.render_video`` (softmax splatting, or a learned ``FrameRenderer``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gid.pipeline.motion_source import MotionSource, load_spectral, predict_motion
from gid.pipeline.sampling import SAMPLING, check_sampling


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
        from gid.pipeline.footage import is_video

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

    from gid.pipeline.footage import ClipOptions, is_video, load_video_motion

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
