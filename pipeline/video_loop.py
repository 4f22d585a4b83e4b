"""A real clip's own motion as a modal basis: seamless loops, band edits, fidelity (GID §6; Davis et al. 2015).

The spectral volume of a clip of T frames (§3 flow from frame 0 to every frame, §4.1 transform:
the same :mod:`gid.pipeline.flow`, :func:`gid.pipeline.clip_motion.spectral_volume` and
:func:`gid.pipeline.clip_filters.assess` as `gid preprocess`) is an image-space modal basis of the scene
(Davis, Chen and Durand, SIGGRAPH Asia 2015). Rendering frame 0 with its own K terms,

    F_t = irfft(α ⊙ S, n=T),   t = 0 … T−1,

gives a loop: ``F_t`` is periodic in T by construction, so the last frame leads into the first
without a seam. ``α_k`` edits it per bin k (``k·fps/T`` Hz): a scalar amplification, and a band
``[lo, hi]`` Hz outside which ``α_k = 0`` — band-selective magnification (α > 1) or calming.

Camera motion is fitted before the transform (:mod:`gid.pipeline.camera_motion`) and, when
significant (> 0.5 px), removed unless asked to keep it (then the command warns); the real frames
the loop is compared against are stabilised the same way.

Fidelity of a loop to the real clip (frames ``t = 1 … T−1``; frame 0 is the input of both):

- ``psnr_loop``: mean over t of PSNR(loop_t, real_t), in dB;
- ``psnr_still``: the same for frame 0 held still (the baseline the loop has to beat);
- ``seam``: mean |loop_0 − loop_{T−1}| over the median of mean |loop_t − loop_{t−1}| — the jump at
  the wrap in units of a typical frame step (≈ 1: no seam; a cut of the real clip reads far more).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gid.pipeline.animate import animate
from gid.pipeline.camera_motion import CameraMotion, camera_motion, remove_camera_motion, stabilize
from gid.pipeline.clip_motion import spectral_volume
from gid.pipeline.flow import FlowMethod
from gid.pipeline.image_quality import psnr
from gid.pipeline.clip_filters import QualityConfig, QualityReport, assess
from gid.pipeline.spectral import frequencies_hz, scale_motion


@dataclass
class VideoMotion:
    """One clip's motion. frame0 ``(H, W, 3)`` uint8; spectral ``(K, 4, H, W)`` float32 (px, camera removed
    if ``camera.removed``); the clip's ``num_frames`` T and ``fps``; the quality measures of `gid preprocess`."""

    frame0: np.ndarray
    spectral: np.ndarray
    num_frames: int
    fps: float
    camera: CameraMotion
    quality: QualityReport


@dataclass
class LoopFidelity:
    psnr_loop: float
    psnr_still: float
    seam: float

    @property
    def gain(self) -> float:
        return self.psnr_loop - self.psnr_still


def video_motion(frames: np.ndarray, fps: float, flow: FlowMethod, num_freqs: int = 16, camera: str = "remove",
                 quality: QualityConfig | None = None, progress: bool = False) -> VideoMotion:
    """Spectral volume of ``frames (T, H, W, 3)`` uint8 at ``fps``; ``camera``: ``remove`` or ``keep`` its fit."""
    if camera not in ("remove", "keep"):
        raise ValueError(f"--camera must be remove or keep, got {camera!r}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if not 2 <= num_freqs <= len(frames) // 2 + 1:
        raise ValueError(f"--num-freqs must be in [2, frames//2+1 = {len(frames) // 2 + 1}], got {num_freqs}; "
                         f"lower --num-freqs or raise --frames")
    traj = flow.trajectories(frames, progress=progress)
    report = assess(frames, traj, flow, quality)
    fit = camera_motion(traj)
    if camera == "remove" and fit.significant:
        remove_camera_motion(traj, fit)
    spectral = spectral_volume(traj, num_freqs)
    return VideoMotion(frames[0].copy(), spectral, len(frames), float(fps), fit, report)


def parse_band(text: str, fps: float, name: str = "") -> tuple[float, float]:
    """``'LO:HI'`` in Hz → ``(lo, hi)``, checked against ``[0, fps/2]`` (``name``: the video, for messages)."""
    where = f" ({name})" if name else ""
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--band must look like LO:HI in Hz, e.g. 0.5:2, got {text!r}{where}; give two numbers") from None
    if not 0 <= lo <= hi <= fps / 2:
        raise ValueError(f"--band {text} is outside [0, {fps / 2:g}] Hz, the range of a {fps:g} fps clip{where}; "
                         f"give 0 ≤ LO ≤ HI ≤ {fps / 2:g}")
    return lo, hi


def band_gains(num_freqs: int, num_frames: int, fps: float, amplify: float = 1.0,
               band: tuple[float, float] | None = None) -> np.ndarray:
    """``(K,)`` per-bin factors α_k: ``amplify`` for bins whose frequency ``k·fps/T`` is in ``band`` (all bins
    without a band), 0 elsewhere."""
    gains = np.full(num_freqs, float(amplify))
    if band is not None:
        hz = frequencies_hz(num_freqs, num_frames, fps)
        gains[(hz < band[0] - 1e-9) | (hz > band[1] + 1e-9)] = 0.0
    return gains


def render_loop(motion: VideoMotion, amplify: float = 1.0, band: tuple[float, float] | None = None,
                renderer: Any = None) -> np.ndarray:
    """The loop ``(T, H, W, 3)`` uint8: frame 0 rendered along ``irfft(α ⊙ S, n=T)`` (splat or a FrameRenderer)."""
    gains = band_gains(len(motion.spectral), motion.num_frames, motion.fps, amplify, band)
    if band is not None and not gains.any():
        raise ValueError(f"--band {band[0]:g}:{band[1]:g} Hz holds no frequency bin of this clip (bins are "
                         f"{motion.fps / motion.num_frames:.3g} Hz apart, up to "
                         f"{(len(motion.spectral) - 1) * motion.fps / motion.num_frames:.3g} Hz); widen it")
    spectral = scale_motion(motion.spectral, gains)
    return animate(motion.frame0, spectral, motion.num_frames, 1.0, renderer)


def reference_frames(frames: np.ndarray, motion: VideoMotion) -> np.ndarray:
    """The real frames a loop of ``motion`` reproduces: stabilised if its camera motion was removed."""
    return stabilize(frames, motion.camera) if motion.camera.removed else frames


def _psnr_frames(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [psnr(torch.from_numpy(np.array(x)).float().div(255), torch.from_numpy(np.array(y)).float().div(255)) for x, y in zip(a, b)]


def seam(frames: np.ndarray) -> float:
    """Jump from the last frame to the first of ``frames (T, H, W, 3)`` over the median frame step."""
    steps = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    wrap = float(np.abs(frames[0].astype(np.int16) - frames[-1]).mean())
    return wrap / max(float(np.median(steps)), 1e-6)


def fidelity(loop: np.ndarray, real: np.ndarray) -> LoopFidelity:
    """:class:`LoopFidelity` of ``loop`` against ``real`` (both ``(T, H, W, 3)`` uint8; see the module docstring)."""
    if loop.shape != real.shape or len(loop) < 3:
        raise ValueError(f"loop and real clip must be (T ≥ 3, H, W, 3) of one shape, got {loop.shape} and {real.shape}")
    still = np.broadcast_to(real[0], real[1:].shape)
    return LoopFidelity(float(np.mean(_psnr_frames(loop[1:], real[1:]))), float(np.mean(_psnr_frames(still, real[1:]))),
                        seam(loop))
