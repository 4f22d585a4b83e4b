"""Full-reference frame quality: PSNR and SSIM, optionally restricted to a pixel mask.

- PSNR: ``10·log10(1 / MSE)`` for images in [0, 1].
- SSIM (Wang, Bovik, Sheikh, Simoncelli 2004, Eq. 13): local means, variances and covariance under
  an 11×11 Gaussian window (σ = 1.5), ``C1 = (0.01)²``, ``C2 = (0.03)²``, per channel::

      SSIM(x, y) = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))

  computed on the valid ("same" with reflect padding) window at every pixel, so the map can be
  averaged over any mask. Differentiable: ``1 − SSIM`` serves as a weight-free training loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

C1, C2 = 0.01**2, 0.03**2


def _gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with reflect padding."""
    channels, pad = x.shape[1], len(window) // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, window.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, window.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of ``x, y (B, C, H, W)`` in [0, 1] → ``(B, 1, H, W)`` (mean over channels)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < 6:
        raise ValueError(f"ssim needs images of at least 6x6 pixels, got {tuple(x.shape[-2:])}")
    window = _gaussian_window(dtype=x.dtype, device=x.device)
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x**2
    var_y = _blur(y * y, window) - mu_y**2
    cov = _blur(x * y, window) - mu_x * mu_y
    value = (2 * mu_x * mu_y + C1) * (2 * cov + C2) / ((mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2))
    return value.mean(dim=1, keepdim=True)


def _masked_mean(value: torch.Tensor, mask: torch.Tensor | None) -> float:
    """Mean of ``value (B, C, H, W)`` over pixels where ``mask (B, 1, H, W)`` is true (nan if empty)."""
    if mask is None:
        return float(value.mean())
    mask = mask.to(torch.bool).expand_as(value)
    return float(value[mask].mean()) if bool(mask.any()) else math.nan


def psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB of ``x`` against ``y`` (``(B, C, H, W)`` in [0, 1]) over all pixels or a mask."""
    mse = _masked_mean((x.double() - y.double()) ** 2, mask)
    return 10 * math.log10(1.0 / max(mse, 1e-12)) if mse == mse else math.nan


def ssim(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean SSIM of ``x`` against ``y`` (``(B, C, H, W)`` in [0, 1]) over all pixels or a mask."""
    return _masked_mean(ssim_map(x.double(), y.double()), mask)
