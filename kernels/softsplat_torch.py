"""Softmax splatting on CPU: vectorised torch forward and a hand-written backward (no autograd graph).

Semantics are those of :mod:`gid.kernels.softsplat_reference` (paper §5, Niklaus & Liu 2020). The
forward pass does one ``index_add_`` per bilinear corner into a channels-last accumulator
``(B·H·W + 1, C + 1)`` (last column = denominator, last row = dropped contributions). The
backward pass needs no scatter at all: with ``g`` the output gradient, ``N, D`` numerator and
denominator, ``G = g / (D + ε)`` and ``s = −Σ_c G·out`` at each target ``q``, every source ``p``
gathers from its four corners

- ``∂L/∂x(p) = Σ_q w(p, q)·G(q)``
- ``∂L/∂w(p, q) = Σ_c G(q)·x(p) + s(q)``, with ``w = b·e`` and ``e = 1 | Z | exp(Z − M(q))``
- ``∂L/∂F(p) = Σ_q ∂b/∂F·e·∂L/∂w``, ``∂L/∂Z(p) = Σ_q b·∂L/∂w`` (linear) or ``Σ_q w·∂L/∂w`` (soft)

(``sum`` mode: ``G = g``, ``s = 0``). The per-target maximum ``M`` of soft mode is treated as a
constant, as the result does not depend on it except through ε (error ≤ ``|out|·ε/(D + ε)``).
"""
from __future__ import annotations

import torch

from gid.kernels.softsplat_inputs import EPS, work_dtype


def _corners(flow: torch.Tensor, dtype: torch.dtype):
    """Bilinear corners of ``p + flow(p)`` for ``flow (B, 2, H, W)``.

    Returns four tuples ``(index, b, db/dFx, db/dFy)`` of ``(B·H·W,)`` tensors; ``index`` points into
    the flattened ``(B·H·W + 1)`` target table, dropped corners point at the last row with ``b = 0``.
    """
    batch, _, height, width = flow.shape
    pixels = height * width
    trash = batch * pixels
    device = flow.device
    rows, cols = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    fx = flow[:, 0].to(dtype) + cols
    fy = flow[:, 1].to(dtype) + rows
    finite = (torch.isfinite(fx) & torch.isfinite(fy)).reshape(-1)
    fx = torch.nan_to_num(fx.reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    fy = torch.nan_to_num(fy.reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    x0, y0 = torch.floor(fx), torch.floor(fy)
    ax, ay = fx - x0, fy - y0
    base = torch.arange(batch, device=device).repeat_interleave(pixels) * pixels
    factors = {0: (1 - ax, -1.0), 1: (ax, 1.0)}, {0: (1 - ay, -1.0), 1: (ay, 1.0)}
    corners = []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = x0 + dx, y0 + dy
        valid = finite & (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        index = base + cy.clamp(0, height - 1).long() * width + cx.clamp(0, width - 1).long()
        index = torch.where(valid, index, trash)
        (wx, sx), (wy, sy) = factors[0][dx], factors[1][dy]
        mask = valid.to(dtype)
        corners.append((index, wx * wy * mask, sx * wy * mask, sy * wx * mask))
    return corners


def _target_max(z: torch.Tensor, corners, size: int) -> torch.Tensor:
    """``M(q) = max Z(p)`` over sources reaching ``q`` with positive weight; ``(size,)``, −inf where none."""
    peak = torch.full((size,), float("-inf"), device=z.device, dtype=z.dtype)
    for index, weight, _, _ in corners:
        peak.scatter_reduce_(0, torch.where(weight > 0, index, size - 1), z, "amax")
    return peak


def _exp_factor(z: torch.Tensor, peak: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``exp(min(Z − M(q), 0))``: ≤ 1, finite even for zero-weight corners and empty targets."""
    return torch.exp(torch.clamp(z - peak[index], max=0.0))


class SoftsplatTorch(torch.autograd.Function):
    """``(input (B, C, H, W), flow (B, 2, H, W), metric (B, 1, H, W) | None, mode) → (B, C, H, W)``."""

    @staticmethod
    def forward(ctx, input, flow, metric, mode):
        dtype = work_dtype(input)
        batch, channels, height, width = input.shape
        size = batch * height * width + 1
        corners = _corners(flow, dtype)
        x = input.to(dtype).permute(0, 2, 3, 1).reshape(size - 1, channels)
        if mode != "sum":
            x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        z = metric.to(dtype).reshape(-1) if metric is not None else None
        peak = _target_max(z, corners, size) if mode == "soft" else None

        table = x.new_zeros(size, x.shape[1])
        for index, weight, _, _ in corners:
            if mode == "linear":
                weight = weight * z
            elif mode == "soft":
                weight = weight * _exp_factor(z, peak, index)
            table.index_add_(0, index, x * weight[:, None])
        table = table[:-1]
        if mode == "sum":
            out, den = table, None
        else:
            den = table[:, channels:]
            out = table[:, :channels] / (den + EPS)
        ctx.mode = mode
        ctx.shape = input.shape
        ctx.dtypes = (input.dtype, flow.dtype, None if metric is None else metric.dtype)
        ctx.save_for_backward(x[:, :channels], flow, z, peak, out, den)
        return out.reshape(batch, height, width, channels).permute(0, 3, 1, 2).to(input.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, flow, z, peak, out, den = ctx.saved_tensors
        mode = ctx.mode
        batch, channels, height, width = ctx.shape
        dtype = x.dtype
        g = grad.to(dtype).permute(0, 2, 3, 1).reshape(-1, channels)
        if mode == "sum":
            big_g, small_s = g, torch.zeros_like(g[:, 0])
        else:
            big_g = g / (den + EPS)
            small_s = -(big_g * out).sum(dim=1)
        big_g = torch.cat([big_g, big_g.new_zeros(1, channels)])  # dropped corners gather zeros
        small_s = torch.cat([small_s, small_s.new_zeros(1)])

        grad_x = torch.zeros_like(x)
        grad_fx = torch.zeros_like(x[:, 0])
        grad_fy = torch.zeros_like(x[:, 0])
        grad_z = torch.zeros_like(x[:, 0]) if z is not None else None
        for index, weight, dbdx, dbdy in _corners(flow, dtype):
            if mode == "linear":
                factor = z
            elif mode == "soft":
                factor = _exp_factor(z, peak, index)
            else:
                factor = torch.ones_like(weight)
            g_q = big_g[index]
            grad_x += (weight * factor)[:, None] * g_q
            grad_w = (g_q * x).sum(dim=1) + small_s[index]
            grad_fx += dbdx * factor * grad_w
            grad_fy += dbdy * factor * grad_w
            if mode == "linear":
                grad_z += weight * grad_w
            elif mode == "soft":
                grad_z += weight * factor * grad_w

        in_dtype, flow_dtype, metric_dtype = ctx.dtypes
        grad_input = grad_x.reshape(batch, height, width, channels).permute(0, 3, 1, 2).to(in_dtype)
        grad_flow = torch.stack([grad_fx, grad_fy]).reshape(2, batch, height, width).transpose(0, 1).to(flow_dtype)
        grad_metric = None
        if mode in ("linear", "soft"):
            grad_metric = grad_z.reshape(batch, 1, height, width).to(metric_dtype)
        return grad_input, grad_flow, grad_metric, None


def softsplat_torch(input, flow, metric, mode):
    """Vectorised CPU (or any device) softmax splatting with an analytic backward; inputs pre-checked."""
    return SoftsplatTorch.apply(input, flow, metric, mode)
