"""Spectral volumes: the Fourier representation of per-pixel motion trajectories (paper §4.1).

Conventions (shared/METHOD.md, "Notation"):

- trajectories ``F``: ``(..., T, 2, H, W)``, ``F_t(p)`` = displacement in pixels of frame 0's pixel
  ``p`` at time ``t`` (channel 0 = x, 1 = y), ``F_0 = 0``.
- spectral volume ``S``: ``(..., K, 4, H, W)`` with channels ``(Re Sx, Im Sx, Re Sy, Im Sy)``,
  ``S_k(p) = Σ_t F_t(p)·exp(−2πi·k·t/T)``, i.e. numpy ``rfft`` along time, default norm, first K bins.

Only K ≪ T/2+1 bins are kept, so instead of a full FFT both directions are one real matrix
product with a ``(2K, T)`` DFT basis: fewer flops than ``rfft`` followed by slicing, and the same
code serves numpy, cupy and torch (where it is differentiable, as the looping guidance needs).
"""
from __future__ import annotations

from typing import Any

import numpy as np

ArrayLike = Any  # numpy.ndarray | torch.Tensor | cupy.ndarray


def _is_torch(x: ArrayLike) -> bool:
    return type(x).__module__.startswith("torch")


def _array_module(x: ArrayLike):
    """numpy or cupy, whichever owns ``x`` (cupy imported lazily, only when it is the owner)."""
    if type(x).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def _work_dtype(x: ArrayLike):
    """float64 stays float64 (for gradcheck and exact tests); everything else computes in float32."""
    if _is_torch(x):
        import torch

        return torch.float64 if x.dtype == torch.float64 else torch.float32
    return np.float64 if x.dtype == np.float64 else np.float32


def _forward_basis(num_frames: int, num_freqs: int) -> np.ndarray:
    """``(2K, T)``: rows ``cos(2πkt/T)`` then ``−sin(2πkt/T)``, so ``basis @ F`` = (Re S, Im S)."""
    t = np.arange(num_frames)
    angle = 2.0 * np.pi * np.outer(np.arange(num_freqs), t) / num_frames
    return np.concatenate([np.cos(angle), -np.sin(angle)], axis=0)


def _inverse_basis(num_frames: int, num_freqs: int) -> np.ndarray:
    """``(T, 2K)`` such that ``basis @ (Re S, Im S)`` = ``irfft(S zero-padded, n=T)``.

    ``F_t = Σ_k (w_k/T)·(Re S_k·cos(2πkt/T) − Im S_k·sin(2πkt/T))`` with ``w_0 = 1``, ``w_{T/2} = 1``
    (Nyquist, T even) and ``w_k = 2`` otherwise; imaginary parts of DC and Nyquist are ignored,
    exactly as ``numpy.fft.irfft`` does.
    """
    k = np.arange(num_freqs)
    weight = np.full(num_freqs, 2.0)
    weight[0] = 1.0
    if num_frames % 2 == 0 and num_freqs > num_frames // 2:
        weight[num_frames // 2] = 1.0
    angle = 2.0 * np.pi * np.outer(np.arange(num_frames), k) / num_frames
    scale = weight / num_frames
    return np.concatenate([np.cos(angle) * scale, -np.sin(angle) * scale], axis=1)


def _matmul_time(basis: np.ndarray, x: ArrayLike, n_in: int) -> ArrayLike:
    """Apply ``basis (M, n_in)`` along the ``n_in`` axis of ``x (N, n_in, P)`` → ``(N, M, P)``."""
    dtype = _work_dtype(x)
    if _is_torch(x):
        import torch

        b = torch.as_tensor(basis, dtype=dtype, device=x.device)
        return torch.matmul(b, x.to(dtype))
    xp = _array_module(x)
    b = xp.asarray(basis, dtype=dtype)
    return xp.matmul(b, x.astype(dtype, copy=False))


def trajectories_to_spectral(traj: ArrayLike, num_freqs: int = 16) -> ArrayLike:
    """Spectral volume of trajectories (§4.1): the first ``num_freqs`` bins of ``rfft`` over time.

    Args:
        traj: ``(..., T, 2, H, W)`` displacements in pixels (numpy, cupy or torch).
        num_freqs: K, the number of low-frequency terms kept (paper: 16). Must be ≤ T//2 + 1.

    Returns:
        ``(..., K, 4, H, W)`` of the same kind and device as ``traj``, channels
        ``(Re Sx, Im Sx, Re Sy, Im Sy)``; float32 (float64 if ``traj`` is float64).
    """
    if traj.ndim < 4 or traj.shape[-3] != 2:
        raise ValueError(f"traj must have shape (..., T, 2, H, W), got {tuple(traj.shape)}")
    *lead, num_frames, _, height, width = traj.shape
    if not 1 <= num_freqs <= num_frames // 2 + 1:
        raise ValueError(f"num_freqs must be in [1, T//2+1 = {num_frames // 2 + 1}], got {num_freqs}")
    n = int(np.prod(lead)) if lead else 1
    x = traj.reshape(n, num_frames, 2 * height * width)
    out = _matmul_time(_forward_basis(num_frames, num_freqs), x, num_frames)  # (n, 2K, 2HW)
    # (n, reim, K, xy, H, W) → (n, K, xy, reim, H, W): channel = 2·xy + reim
    out = out.reshape(n, 2, num_freqs, 2, height, width)
    out = out.permute(0, 2, 3, 1, 4, 5) if _is_torch(out) else out.transpose(0, 2, 3, 1, 4, 5)
    return out.reshape(*lead, num_freqs, 4, height, width)


def spectral_to_trajectories(spec: ArrayLike, num_frames: int) -> ArrayLike:
    """Trajectories from a spectral volume: ``irfft`` of the zero-padded spectrum (§4.1).

    Differentiable for torch inputs (used by the looping guidance, §6 Eq. 5).

    Args:
        spec: ``(..., K, 4, H, W)``, channels ``(Re Sx, Im Sx, Re Sy, Im Sy)``.
        num_frames: T, the length of the trajectories; needs ``K ≤ T//2 + 1``.

    Returns:
        ``(..., T, 2, H, W)`` displacements in pixels, same kind and device as ``spec``.
    """
    if spec.ndim < 4 or spec.shape[-3] != 4:
        raise ValueError(f"spec must have shape (..., K, 4, H, W), got {tuple(spec.shape)}")
    *lead, num_freqs, _, height, width = spec.shape
    if num_freqs > num_frames // 2 + 1:
        raise ValueError(f"{num_freqs} frequencies need num_frames ≥ {2 * (num_freqs - 1)}, got {num_frames}")
    n = int(np.prod(lead)) if lead else 1
    x = spec.reshape(n, num_freqs, 2, 2, height, width)  # (n, K, xy, reim, H, W)
    x = x.permute(0, 3, 1, 2, 4, 5) if _is_torch(x) else x.transpose(0, 3, 1, 2, 4, 5)
    x = x.reshape(n, 2 * num_freqs, 2 * height * width)  # rows: Re S_0..K-1, Im S_0..K-1
    out = _matmul_time(_inverse_basis(num_frames, num_freqs), x, 2 * num_freqs)
    return out.reshape(*lead, num_frames, 2, height, width)


def frequencies_hz(num_freqs: int, num_frames: int, fps: float) -> np.ndarray:
    """``(K,)`` frequency of each bin in Hz: ``k·fps/T`` (0.2 Hz steps at T=150, 30 fps)."""
    return np.arange(num_freqs) * (float(fps) / num_frames)


def scale_motion(spec: ArrayLike, alpha: float | ArrayLike) -> ArrayLike:
    """Motion amplification (α > 1) or minification (α < 1) (§6): ``S_k ← α_k·S_k``.

    Args:
        spec: ``(..., K, 4, H, W)``.
        alpha: a scalar, or ``(K,)`` for one factor per frequency band.
    """
    if np.ndim(alpha) == 0:
        return spec * float(alpha)
    alpha = np.asarray(alpha, dtype=np.float64)
    num_freqs = spec.shape[-4]
    if alpha.shape != (num_freqs,):
        raise ValueError(f"alpha must be a scalar or have shape ({num_freqs},), got {alpha.shape}")
    if _is_torch(spec):
        import torch

        factor = torch.as_tensor(alpha, dtype=spec.dtype, device=spec.device)
    else:
        factor = _array_module(spec).asarray(alpha, dtype=spec.dtype)
    return spec * factor.reshape(num_freqs, 1, 1, 1)
