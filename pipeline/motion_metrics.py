"""Motion metrics that need no pretrained network: spectral amplitude error and loop seam error.

- Amplitude of bin k at pixel p: ``A_k(p) = sqrt(|S_k,x(p)|² + |S_k,y(p)|²)`` (phase-free, so a
  sampled motion is compared with the ground truth regardless of its random phase).
- Amplitude error per frequency: ``E_k = mean_p |A_k^pred(p) − A_k^gt(p)|`` over all pixels, or over
  a mask (e.g. the pixels that move in the ground truth).
- Seam error (looping, §6): ``mean_p ‖F_{T−1}(p) − F_0(p)‖`` divided by the mean per-frame motion
  ``mean_{t,p} ‖F_t(p) − F_{t−1}(p)‖``; about 1 means the jump from the last frame back to the
  first is no larger than an ordinary frame step.
"""
from __future__ import annotations

import numpy as np

from gid.pipeline.spectral import spectral_to_trajectories


def amplitude(spec: np.ndarray) -> np.ndarray:
    """``(..., K, 4, H, W)`` → ``(..., K, H, W)`` amplitude ``sqrt(Σ channels²)``."""
    spec = np.asarray(spec, dtype=np.float64)
    return np.sqrt((spec**2).sum(axis=-3))


def moving_mask(spec: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """``(..., H, W)`` pixels whose total amplitude over k ≥ 1 exceeds ``fraction`` of the volume's maximum."""
    total = amplitude(spec)[..., 1:, :, :].sum(axis=-3)
    peak = total.max(axis=(-2, -1), keepdims=True)
    return total > fraction * np.maximum(peak, 1e-12)


def amplitude_error(pred_amp: np.ndarray, target_amp: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``(K,)`` mean absolute amplitude error per frequency.

    Args:
        pred_amp: ``(N, K, H, W)`` amplitudes (:func:`amplitude`), or ``(1, K, H, W)`` for one
            prediction shared by all samples (e.g. the training-set mean).
        target_amp: ``(N, K, H, W)`` ground-truth amplitudes.
        mask: ``(N, H, W)`` bool, restricts the mean to those pixels.
    """
    pred_amp, target_amp = np.asarray(pred_amp, np.float64), np.asarray(target_amp, np.float64)
    if target_amp.ndim != 4 or pred_amp.ndim != 4 or pred_amp.shape[1:] != target_amp.shape[1:]:
        raise ValueError(f"amplitudes must be (N, K, H, W) of one size, got {pred_amp.shape} and {target_amp.shape}")
    err = np.abs(np.broadcast_to(pred_amp, target_amp.shape) - target_amp)
    if mask is None:
        return err.mean(axis=(0, 2, 3))
    mask = np.broadcast_to(np.asarray(mask, bool)[:, None], err.shape)
    if not mask.any():
        raise ValueError("amplitude_error: the mask selects no pixel")
    return np.array([err[:, k][mask[:, k]].mean() for k in range(err.shape[1])])


def seam_error(spec: np.ndarray, num_frames: int) -> np.ndarray:
    """``(N,)`` loop seam error of volumes ``(N, K, 4, H, W)`` rendered at T = ``num_frames``."""
    traj = spectral_to_trajectories(np.asarray(spec, dtype=np.float64), num_frames)  # (N, T, 2, H, W)
    seam = np.hypot(*np.moveaxis(traj[:, -1] - traj[:, 0], 1, 0)).mean(axis=(1, 2))
    step = np.hypot(*np.moveaxis(np.diff(traj, axis=1), 2, 0)).mean(axis=(1, 2, 3))
    return seam / np.maximum(step, 1e-12)
