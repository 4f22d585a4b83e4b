"""`gid interact` and `gid serve` wiring: where a photo's motion comes from, and one poke rendered to MP4.

Motion comes either from a given spectral volume ``(K, 4, h, w)`` (``.npy``, pixels, e.g. the ground
truth of `gid synth`) or from a trained bundle through
``gid.pipeline.motion_pipeline.MotionPipeline`` (the photo resized to the model's resolution). The
volume is then resized to the photo with its motion rescaled (``gid.pipeline.render.resize_spectral``),
the poke simulated there (``gid.pipeline.dynamics.simulate``) and the frames rendered with
``gid.pipeline.render.render_video`` (softmax splatting, or a learned ``FrameRenderer``).
"""
from __future__ import annotations

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
    """A ``(K, 4, h, w)`` spectral volume from a ``.npy`` file, or the ``spectral`` array of a ``.npz``
    (such as `gid synth`'s ``gt/*.npz``), with a readable error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such spectral volume; give a .npy file holding a (K, 4, H, W) array")
    try:
        spectral = np.load(path, allow_pickle=False)
        if isinstance(spectral, np.lib.npyio.NpzFile):
            with spectral:
                if "spectral" not in spectral.files:
                    raise ValueError(f"{path}: this .npz has no 'spectral' array (it has {', '.join(spectral.files)})")
                spectral = spectral["spectral"]
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a .npy array ({err}); save the spectral volume with numpy.save") from None
    except ValueError as err:
        message = str(err) if str(err).startswith(str(path)) else f"{path}: not a .npy array ({err})"
        raise ValueError(f"{message}; save the spectral volume with numpy.save") from None
    return check_spectral(spectral, str(path), num_frames, fps)


def check_spectral(spectral: np.ndarray, name: str, num_frames: int, fps: float) -> MotionSource:
    """Validate a spectral volume ``(K, 4, h, w)`` (``name`` is used in error messages)."""
    if spectral.ndim != 4 or spectral.shape[1] != 4 or spectral.shape[0] < 2 or min(spectral.shape[2:]) < 2:
        raise ValueError(f"{name}: a spectral volume must have shape (K ≥ 2, 4, H, W), got {spectral.shape}")
    if not np.issubdtype(spectral.dtype, np.floating) or not np.isfinite(spectral).all():
        raise ValueError(f"{name}: a spectral volume must hold finite floats, got {spectral.dtype} with NaN/inf or non-floats")
    if spectral.shape[0] > num_frames // 2 + 1:
        raise ValueError(f"{name}: K = {spectral.shape[0]} frequencies need --spectral-frames ≥ {2 * (spectral.shape[0] - 1)}")
    return MotionSource(spectral.astype(np.float32), int(num_frames), float(fps))


def load_motion_model(model: str | Path):
    """The bundle's :class:`gid.pipeline.motion_pipeline.MotionPipeline` (clear errors for a bad folder)."""
    from gid.pipeline.motion_pipeline import MotionPipeline

    return MotionPipeline.from_bundle(model)


def predict_motion(pipe, image: np.ndarray, steps: int = SAMPLING.num_inference_steps,
                   guidance: float = SAMPLING.guidance_scale, seed: int = 0,
                   callback: Callable[[int, int], None] | None = None) -> MotionSource:
    """Sample the motion of ``image (H, W, 3)`` uint8 with a loaded MotionPipeline (§4.2: DDIM + CFG).

    ``callback(step, total)`` reports denoising progress: it counts the U-Net's forward passes
    (one per DDIM step, guidance batched) through a forward hook, removed afterwards.
    """
    import torch

    photo = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0
    calls = 0

    def count(*_args) -> None:
        nonlocal calls
        calls += 1
        if callback is not None:
            callback(min(calls, steps), steps)

    handle = pipe.unet.register_forward_hook(count)
    try:
        spectral = pipe(photo, num_inference_steps=steps, guidance_scale=guidance, seed=seed, progress=callback is None)
    finally:
        handle.remove()
    return check_spectral(torch.as_tensor(spectral)[0].float().cpu().numpy(), "predicted motion", pipe.num_frames,
                          pipe.fps)


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

    def __post_init__(self) -> None:
        check_sampling(self.steps, self.guidance)
        if (self.model is None) == (self.spectral is None):
            raise ValueError("give exactly one of --model DIR (a trained bundle) or --spectral FILE.npy")
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
    from gid.datasets.video import write_video
    from gid.pipeline.dynamics import force_for_pull, modal_basis, simulate
    from gid.pipeline.images import fit_image, load_image
    from gid.pipeline.render import render_video, resize_spectral

    original = load_image(cfg.image)
    image = fit_image(original, cfg.max_side)
    sx, sy = image.shape[1] / original.shape[1], image.shape[0] / original.shape[0]
    x, y = cfg.point
    if not (0 <= x <= original.shape[1] - 1 and 0 <= y <= original.shape[0] - 1):
        raise ValueError(f"--point {x:g},{y:g} is outside the {original.shape[1]}x{original.shape[0]} image {cfg.image}")
    point = (min(x * sx, image.shape[1] - 1), min(y * sy, image.shape[0] - 1))
    if cfg.spectral is not None:
        source = load_spectral(cfg.spectral, cfg.spectral_frames, cfg.spectral_fps)
    else:
        source = predict_motion(load_motion_model(cfg.model), image, cfg.steps, cfg.guidance, cfg.seed)
    spectral = resize_spectral(source.spectral, image.shape[:2])
    vector = np.array(cfg.force if cfg.force is not None else cfg.pull, dtype=np.float64) * (sx, sy)
    if cfg.pull is not None:
        vector = force_for_pull(modal_basis(spectral, source.num_frames, source.fps), point, vector, cfg.mass)
    trajectories = simulate(spectral, point, vector, cfg.frames, cfg.fps, damping=cfg.damping, mass=cfg.mass,
                            impulse=cfg.force is not None and not cfg.release, spectral_frames=source.num_frames,
                            spectral_fps=source.fps)
    renderer = None
    if cfg.renderer != "splat":
        from gid.pipeline.renderer import FrameRenderer

        renderer = FrameRenderer.from_pretrained(cfg.renderer)
    frames = render_video(image, trajectories, renderer, progress=progress)
    return write_video(cfg.out, frames, cfg.fps)
