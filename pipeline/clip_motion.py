"""One clip's motion: frames → trajectories (§3) → spectral volume (§4.1) → quality verdict.

The per-clip work of preprocessing, with no Ray in it: the Ray stage calls it from an actor, tests
and notebooks call it directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gid.pipeline.flow import FlowMethod
from gid.pipeline.clip_filters import QualityConfig, QualityReport, assess
from gid.pipeline.spectral import trajectories_to_spectral


@dataclass
class ClipMotion:
    """trajectories ``(T, 2, H, W)`` float32, spectral ``(K, 4, H, W)`` float32, and the verdict."""

    trajectories: np.ndarray
    spectral: np.ndarray
    quality: QualityReport


def spectral_volume(traj: np.ndarray, num_freqs: int, use_gpu: bool = False) -> np.ndarray:
    """``(T, 2, H, W)`` → ``(K, 4, H, W)`` numpy float32 (DFT-basis matmul, §4.1); on cupy if ``use_gpu``."""
    if use_gpu:
        import cupy

        return trajectories_to_spectral(cupy.asarray(traj), num_freqs).get()
    return trajectories_to_spectral(traj, num_freqs)


def clip_motion(frames: np.ndarray, flow: FlowMethod, num_freqs: int = 16, quality: QualityConfig | None = None,
                use_gpu: bool = False) -> ClipMotion:
    """Estimate the motion of ``frames (T, H, W, 3)`` uint8 and judge the clip.

    The spectral volume is only computed for clips that pass (it is the costliest step after flow).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if num_freqs > len(frames) // 2 + 1:
        raise ValueError(f"--num-freqs {num_freqs} needs clips of at least {2 * (num_freqs - 1)} frames, got {len(frames)}")
    traj = flow.trajectories(frames)
    report = assess(frames, traj, flow, quality)
    spectral = None if report.reason else spectral_volume(traj, num_freqs, use_gpu)
    return ClipMotion(traj, spectral, report)
