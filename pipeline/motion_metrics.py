"""Motion metrics against ground truth that need no pretrained network: amplitude in pixels, its
error, the dominant-frequency hit rate, motion FD and the loop seam error.

- Amplitude of bin k at pixel p, in pixels of displacement (METHOD.md, Eq. 2 conventions):
  ``A_k(p) = (w_k/T)·sqrt(|S_k,x(p)|² + |S_k,y(p)|²)`` with ``w_0 = 1`` and ``w_k = 2`` for k ≥ 1
  (1 again at the Nyquist bin k = T/2): a pixel moving by ``a·cos(2πkt/T + φ)`` along a unit
  direction has ``A_k = a``. Phase-free, so a sampled motion compares with the ground truth
  regardless of its random phase.
- Amplitude error per frequency: ``E_k = mean_p |A_k^pred(p) − A_k^gt(p)|`` px over all pixels, or
  over a mask (e.g. the pixels that move in the ground truth).
- Frequency hit rate: the share of (moving) pixels whose bin of largest amplitude among k ≥ 1 is
  within ±``tolerance`` bins of the truth's (a pixel predicted not to move at all is a miss).
- Motion FD: the Fréchet distance (gid.pipeline.video_metrics.frechet_distance) between Gaussians fitted
  to per-image motion descriptors, ``d_k = log(ε + mean_{p moving} A_k(p))`` for every bin k (pooled
  over the ground truth's moving pixels), of predicted and of true motion.
- Seam error (looping, §6): ``mean_p ‖F_{T−1}(p) − F_0(p)‖`` divided by the mean per-frame motion
  ``mean_{t,p} ‖F_t(p) − F_{t−1}(p)‖``; about 1 means the jump from the last frame back to the
  first is no larger than an ordinary frame step.
"""
from __future__ import annotations

import numpy as np

from gid.pipeline.spectral import spectral_to_trajectories

DESCRIPTOR_EPS = 1e-2  # px, the floor of motion FD's log amplitudes (bins with no motion at all)


def amplitude_px(spec: np.ndarray, num_frames: int) -> np.ndarray:
    """``(..., K, 4, H, W)`` spectral volume of ``num_frames``-frame motion → ``(..., K, H, W)`` amplitude A_k in px."""
    spec = np.asarray(spec, dtype=np.float64)
    if spec.ndim < 4 or spec.shape[-3] != 4:
        raise ValueError(f"spectral volume must be (..., K, 4, H, W), got {spec.shape}")
    if int(num_frames) < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    num_freqs = spec.shape[-4]
    weight = np.full(num_freqs, 2.0)
    weight[0] = 1.0
    if num_frames % 2 == 0 and num_freqs > num_frames // 2:
        weight[num_frames // 2] = 1.0
    return np.sqrt((spec ** 2).sum(axis=-3)) * (weight / num_frames)[:, None, None]


def moving_mask(amp: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """``(..., K, H, W)`` amplitudes → ``(..., H, W)`` pixels whose total over k ≥ 1 exceeds ``fraction`` of the image's maximum."""
    total = np.asarray(amp)[..., 1:, :, :].sum(axis=-3)
    peak = total.max(axis=(-2, -1), keepdims=True)
    return total > fraction * np.maximum(peak, 1e-12)


def amplitude_error(pred_amp: np.ndarray, target_amp: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``(K,)`` mean absolute amplitude error per frequency, px.

    Args:
        pred_amp: ``(N, K, H, W)`` amplitudes (:func:`amplitude_px`), or ``(1, K, H, W)`` for one
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
    mask = np.broadcast_to(np.asarray(mask, bool), (target_amp.shape[0], *target_amp.shape[2:]))
    if not mask.any():
        raise ValueError("amplitude_error: the mask selects no pixel")
    return err.transpose(1, 0, 2, 3)[:, mask].mean(axis=1)


def frequency_hit_rate(pred_amp: np.ndarray, target_amp: np.ndarray, mask: np.ndarray, tolerance: int = 1) -> float:
    """Share of the masked pixels whose strongest bin (k ≥ 1) is within ±``tolerance`` of the truth's.

    ``pred_amp`` ``(N or 1, K, H, W)``, ``target_amp`` ``(N, K, H, W)``, ``mask`` ``(N, H, W)`` bool.
    """
    pred_amp, target_amp = np.asarray(pred_amp), np.asarray(target_amp)
    if pred_amp.ndim != 4 or pred_amp.shape[1:] != target_amp.shape[1:] or target_amp.shape[1] < 2:
        raise ValueError(f"amplitudes must be (N, K ≥ 2, H, W) of one size, got {pred_amp.shape} and {target_amp.shape}")
    mask = np.broadcast_to(np.asarray(mask, bool), (target_amp.shape[0], *target_amp.shape[2:]))
    if not mask.any():
        raise ValueError("frequency_hit_rate: the mask selects no pixel")
    peak_pred = np.broadcast_to(pred_amp[:, 1:].argmax(axis=1), mask.shape)
    moves = np.broadcast_to(pred_amp[:, 1:].max(axis=1) > 0, mask.shape)  # no motion has no peak: a miss
    peak_true = target_amp[:, 1:].argmax(axis=1)
    return float(((np.abs(peak_pred - peak_true) <= tolerance) & moves)[mask].mean())


def motion_descriptors(amp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(N, K)`` per-image descriptor ``log(ε + mean over the image's masked pixels of A_k)``.

    ``amp`` ``(N or 1, K, H, W)`` px, ``mask`` ``(N, H, W)`` bool (an image with no masked pixel
    pools over all its pixels).
    """
    amp = np.asarray(amp, np.float64)
    mask = np.asarray(mask, bool)
    amp = np.broadcast_to(amp, (mask.shape[0], *amp.shape[1:]))
    mask = np.where(mask.any(axis=(1, 2), keepdims=True), mask, True)
    pooled = (amp * mask[:, None]).sum(axis=(2, 3)) / mask.sum(axis=(1, 2))[:, None]
    return np.log(DESCRIPTOR_EPS + pooled)


def motion_fd(pred_amp: np.ndarray, target_amp: np.ndarray, mask: np.ndarray) -> float:
    """Motion FD: Fréchet distance between the :func:`motion_descriptors` of predictions and of the truth.

    ``pred_amp`` ``(N or 1, K, H, W)`` (one shared prediction, e.g. the mean spectrum, gives N equal
    descriptors), ``target_amp`` ``(N, K, H, W)``, ``mask`` ``(N, H, W)``: the truth's moving pixels,
    pooled for both sides so they describe the same pixels.
    """
    from gid.pipeline.video_metrics import frechet_feature_distance

    return frechet_feature_distance(motion_descriptors(pred_amp, mask), motion_descriptors(target_amp, mask))


def seam_error(spec: np.ndarray, num_frames: int) -> np.ndarray:
    """``(N,)`` loop seam error of volumes ``(N, K, 4, H, W)`` rendered at T = ``num_frames``."""
    traj = spectral_to_trajectories(np.asarray(spec, dtype=np.float64), num_frames)  # (N, T, 2, H, W)
    seam = np.hypot(*np.moveaxis(traj[:, -1] - traj[:, 0], 1, 0)).mean(axis=(1, 2))
    step = np.hypot(*np.moveaxis(np.diff(traj, axis=1), 2, 0)).mean(axis=(1, 2, 3))
    return seam / np.maximum(step, 1e-12)
