"""Evaluation metrics (paper §7) and motion metrics against ground truth that need no network.

Distribution metrics on features of a pretrained net (see gid.pipeline.feature_nets):

- Fréchet distance between Gaussians fitted to two feature sets (FID on InceptionV3 pool features
  of frames; FVD / FVD32 on I3D features of 16- / 32-frame windows; DTFVD / DTFVD32 with an I3D
  trained on Dynamic Textures)::

      d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})

  ``Tr((Σ1 Σ2)^{1/2})`` is computed as ``Σ sqrt(λ_i)`` with ``λ_i`` the eigenvalues of the
  symmetric PSD matrix ``Σ1^{1/2} Σ2 Σ1^{1/2}`` (similar to ``Σ1 Σ2``), so rank-deficient
  covariances — fewer samples than feature dimensions, the normal case for small evaluation sets
  — need no ``ε·I`` offset and give no complex square roots.
- Kernel Inception distance: unbiased MMD² with the cubic polynomial kernel
  ``k(x, y) = (xᵀy / d + 1)³``, averaged over random subsets, reported ×100 like the paper.
- Sliding-window curves (§7): the Fréchet distance of the features of each time window, pooled
  over videos, against time (FID over 30-frame windows, DTFVD over 16-frame windows).

Motion metrics (the project's own; trajectories ``(T, 2, H, W)`` px, spectral volumes
``(K, 4, H, W)``, conventions of gid.pipeline.spectral):

- per-frequency amplitude error in px: gid.pipeline.motion_metrics (``amplitude_px``,
  ``amplitude_error``, the one definition of the project);
- loop seam error: ``mean_p ‖F_{T−1}(p) − F_0(p)‖₂`` px, the first term of the looping guidance
  loss of §6 Eq. 5 (0 when the last frame returns exactly to the first);
- motion magnitude distribution distance: 1-D Wasserstein distance between the per-pixel mean
  motion magnitudes ``W(p) = (1/T)·Σ_t ‖F_t(p)‖₂`` (the §5 depth proxy) of two sets of videos.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

KID_SCALE = 100.0  # the paper reports KID ×100


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative round-off eigenvalues clipped to 0)."""
    vals, vecs = np.linalg.eigh(matrix)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def _check_stats(mu: np.ndarray, sigma: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(f"{name}: mean must be (D,) and covariance (D, D), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{name}: mean or covariance contains NaN or inf (features of broken inputs?)")
    return mu, (sigma + sigma.T) / 2


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance ``‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^{1/2})`` between two Gaussians (§7).

    Args:
        mu1, mu2: ``(D,)`` means. sigma1, sigma2: ``(D, D)`` covariances, PSD, possibly singular.

    Returns:
        The distance (≥ 0; tiny negative round-off is clipped to 0).
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "first set")
    mu2, sigma2 = _check_stats(mu2, sigma2, "second set")
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.size} vs {mu2.size}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigvals = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_covmean = float(np.sqrt(np.clip(eigvals, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean)
    return max(value, 0.0)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` features → mean ``(D,)`` and covariance ``(D, D)`` (unbiased, ``N − 1``)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_feature_distance(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``(N1, D)`` and ``(N2, D)`` features (FID, FVD)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equally sized samples ``(m, D)`` with ``k(a, b) = (aᵀb/D + 1)³``."""
    m, dim = x.shape
    kxx = (x @ x.T / dim + 1.0) ** 3
    kyy = (y @ y.T / dim + 1.0) ** 3
    kxy = (x @ y.T / dim + 1.0) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID ×100: unbiased polynomial-kernel MMD² averaged over random subsets (§7).

    Each subset draws ``m = min(subset_size, N1, N2)`` vectors from each set without replacement.

    Args:
        features1: ``(N1, D)``. features2: ``(N2, D)``.
        num_subsets: how many random subsets to average. subset_size: m before clipping.
        seed: seeds the subset draws (the result is deterministic).

    Returns:
        ``(mean, std)`` over the subsets, both ×100.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (N1, D) and (N2, D), got {x.shape} and {y.shape}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors per set, got {len(x)} and {len(y)}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be at least 1, got {num_subsets}")
    rng = np.random.default_rng(seed)
    values = np.array([
        _polynomial_mmd2(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
        for _ in range(num_subsets)
    ])
    return float(values.mean() * KID_SCALE), float(values.std() * KID_SCALE)


def sliding_window_frechet(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], window: int,
                           stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Fréchet distance of each time window, features pooled over videos (§7 sliding-window FID/DTFVD).

    Args:
        real, fake: per video a ``(T_i, D)`` sequence of features, one per time step (a frame for
            FID; a clip starting at that step for DTFVD).
        window: time steps per window (30 frames for FID; 1 clip for DTFVD).
        stride: steps between window starts.

    Returns:
        ``starts (W,)`` int and ``distances (W,)``, for the windows that fit in every video.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    if not real or not fake:
        raise ValueError("sliding-window metrics need at least one real and one fake video")
    length = min(len(f) for f in [*real, *fake])
    starts = np.arange(0, length - window + 1, stride)
    if starts.size == 0:
        raise ValueError(f"videos have {length} time steps, fewer than the window of {window}")
    values = np.array([
        frechet_feature_distance(np.concatenate([f[s:s + window] for f in real]),
                                 np.concatenate([f[s:s + window] for f in fake]))
        for s in starts
    ])
    return starts, values


def loop_seam_error(trajectories: np.ndarray) -> float:
    """``mean_p ‖F_{T−1}(p) − F_0(p)‖₂`` px for ``(T, 2, H, W)`` trajectories (§6, Eq. 5's first term)."""
    traj = np.asarray(trajectories, dtype=np.float64)
    if traj.ndim != 4 or traj.shape[1] != 2 or traj.shape[0] < 2:
        raise ValueError(f"trajectories must be (T, 2, H, W) with T ≥ 2, got {traj.shape}")
    return float(np.hypot(*(traj[-1] - traj[0])).mean())


def frame_seam_ratio(frames: np.ndarray, min_step: float = 0.1) -> float:
    """How visible the cut is when a video loops: ``mean|I_{T−1} − I_0|`` over the mean frame step.

    ``frames``: ``(T, H, W, 3)`` (uint8 scale). The mean frame step is ``mean_t mean|I_{t+1} − I_t|``;
    a ratio near 1 (or below) means the jump back to frame 0 looks like any other frame step, ≫ 1 a
    visible pop. Needs no motion estimate. NaN when the mean step is below ``min_step`` grey
    levels: a still video has no frame step to compare with (its ratio would be codec noise).
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[0] < 3:
        raise ValueError(f"frames must be (T, H, W, 3) with T ≥ 3, got {frames.shape}")
    step = float(np.abs(np.diff(frames, axis=0)).mean())
    seam = float(np.abs(frames[-1] - frames[0]).mean())
    return seam / step if step >= min_step else float("nan")


def mean_motion_magnitude(trajectories: np.ndarray) -> np.ndarray:
    """``(T, 2, H, W)`` → ``(H, W)`` ``W(p) = (1/T)·Σ_t ‖F_t(p)‖₂`` px (§5's motion magnitude)."""
    traj = np.asarray(trajectories, dtype=np.float64)
    if traj.ndim != 4 or traj.shape[1] != 2:
        raise ValueError(f"trajectories must be (T, 2, H, W), got {traj.shape}")
    return np.hypot(traj[:, 0], traj[:, 1]).mean(axis=0)


def motion_magnitude_distance(magnitudes1: Sequence[np.ndarray], magnitudes2: Sequence[np.ndarray]) -> float:
    """1-D Wasserstein distance (px) between the pooled per-pixel motion magnitudes of two video sets.

    Args:
        magnitudes1, magnitudes2: per video the ``(H, W)`` map of :func:`mean_motion_magnitude`
            (sizes may differ between videos).
    """
    from scipy.stats import wasserstein_distance

    if not magnitudes1 or not magnitudes2:
        raise ValueError("motion_magnitude_distance needs at least one video in each set")
    a = np.concatenate([np.ravel(m) for m in magnitudes1])
    b = np.concatenate([np.ravel(m) for m in magnitudes2])
    return float(wasserstein_distance(a, b))
