"""Where a photo's motion comes from: a spectral volume ``(K, 4, h, w)`` in pixels with the clip
geometry (T, fps) it was made for — read from a file (``.npy``, ``.npz``, a `gid motion` folder), checked
from an upload, or sampled from a trained bundle through ``gid.pipeline.GIDPipeline`` (§4.2). Used by
`gid interact` (gid.pipeline.poke) and `gid serve`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gid.pipeline.sampling import SAMPLING


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


def video_source(clip):
    """The :class:`MotionSource` of a decoded clip: its own motion (§3, §4.1; K ≤ 16)."""
    from gid.pipeline.flow import make_flow
    from gid.pipeline.video_loop import video_motion

    motion = video_motion(clip.frames, clip.fps, make_flow("dis"), min(16, len(clip.frames) // 2 + 1))
    return MotionSource(motion.spectral, motion.num_frames, motion.fps)


def build_basis(image: np.ndarray, source: MotionSource):
    """The modal basis (Eq. 6) of ``source`` at the size of ``image (H, W, 3)``, motion rescaled."""
    from gid.pipeline.dynamics import modal_basis
    from gid.pipeline.warping import resize_spectral

    spectral = resize_spectral(source.spectral, image.shape[:2])
    return modal_basis(spectral, source.num_frames, source.fps)
