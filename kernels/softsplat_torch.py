"""Softmax splatting on CPU: vectorised torch forward and a hand-written backward (no autograd graph).

Semantics are those of :mod:`gid.kernels.softsplat_reference` (paper §5, Niklaus & Liu 2020). The
forward pass does one ``index_add_`` per bilinear corner into a channels-last accumulator
``(B·H·W + 1, C + 1)`` (last column = denominator, last row = dropped contributions). The
backward pass needs no scatter at all: with ``g`` the output gradient, ``N, D`` numerator and
denominator, ``G = g / (D + ε)`` and ``s = −Σ_c G·out`` at each target ``q``, every source ``p``
gathers from its four corners

- ``∂L/∂x(p) = Σ_q w(p, q)·G(q)``
- ``∂L/∂w(p, q) = Σ_c G(q)·x(p) + s(q)``, with ``w = b·e`` and ``e = 1 | Z | exp(Z − M(q))``
- ``∂L/∂F(p) = Σ_q ∂b/∂F·e·∂L/∂w``
- ``∂L/∂Z(p) = Σ_q b·∂L/∂w`` (linear) or ``Σ_q w·∂L/∂w`` (soft, plus the ε term below)

(``sum`` mode: ``G = g``, ``s = 0``). Soft mode's per-target maximum ``M(q)`` enters the result
only through ε: ``∂L/∂M(q) = ε·s(q)``, which goes to the metric of the source(s) attaining the
maximum (split evenly between ties, as autograd does for ``amax``). It matters only where
``D(q)`` is within a few orders of ε, but there it is part of the exact derivative.
"""
from __future__ import annotations

import torch

from gid.kernels.softsplat_inputs import EPS, work_dtype


def _corners(flow: torch.Tensor, dtype: torch.dtype, derivatives: bool = False):
    """Bilinear corners of ``p + flow(p)`` for ``flow (B, 2, H, W)``.

    Returns four tuples ``(index, b)`` (with ``derivatives``: ``(index, b, db/dFx, db/dFy)``) of
    ``(B·H·W,)`` tensors; ``index`` points into the flattened ``(B·H·W + 1)`` target table and
    dropped corners (off-frame, non-finite flow) point at the last row with ``b = 0``.
    """
    batch, _, height, width = flow.shape
    pixels = height * width
    trash = batch * pixels
    device = flow.device
    fx = (flow[:, 0].to(dtype) + torch.arange(width, device=device, dtype=dtype)).reshape(-1)
    fy = (flow[:, 1].to(dtype) + torch.arange(height, device=device, dtype=dtype)[:, None]).reshape(-1)
    finite = torch.isfinite(fx) & torch.isfinite(fy)
    x0 = torch.floor(fx).nan_to_num_(nan=-2.0).clamp_(-2, width)  # clamped before the integer cast
    y0 = torch.floor(fy).nan_to_num_(nan=-2.0).clamp_(-2, height)
    ax = torch.where(finite, fx - x0, 0.0)
    ay = torch.where(finite, fy - y0, 0.0)
    ix, iy = x0.long(), y0.long()
    inside_x = ((ix >= 0) & (ix < width), (ix >= -1) & (ix < width - 1))
    inside_y = ((iy >= 0) & (iy < height) & finite, (iy >= -1) & (iy < height - 1) & finite)
    first = torch.arange(0, trash, pixels, device=device).repeat_interleave(pixels) + iy * width + ix
    factor_x = ((1 - ax, -1.0), (ax, 1.0))
    factor_y = ((1 - ay, -1.0), (ay, 1.0))
    corners = []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        valid = inside_x[dx] & inside_y[dy]
        index = torch.where(valid, first + (dy * width + dx), trash)
        (wx, sx), (wy, sy) = factor_x[dx], factor_y[dy]
        weight = torch.where(valid, wx * wy, 0.0)
        if derivatives:
            corners.append((index, weight, torch.where(valid, sx * wy, 0.0), torch.where(valid, sy * wx, 0.0)))
        else:
            corners.append((index, weight))
    return corners


def _target_max(z: torch.Tensor, corners, size: int) -> torch.Tensor:
    """``M(q) = max Z(p)`` over sources reaching ``q`` with positive weight; ``(size,)``, −inf where none."""
    peak = torch.full((size,), float("-inf"), device=z.device, dtype=z.dtype)
    for index, weight in corners:
        peak.scatter_reduce_(0, torch.where(weight > 0, index, size - 1), z, "amax")
    return peak


def _argmax_count(z: torch.Tensor, peak: torch.Tensor, corners, size: int) -> torch.Tensor:
    """How many (source, corner) pairs attain ``M(q)`` at each target ``q``; ``(size,)``."""
    count = torch.zeros_like(peak)
    for index, weight in corners:
        count.index_add_(0, index, ((weight > 0) & (z == peak[index])).to(count.dtype))
    return count


def _exp_factor(z: torch.Tensor, peak: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``exp(min(Z − M(q), 0))``: ≤ 1, finite even for zero-weight corners and empty targets."""
    return torch.exp(torch.clamp(z - peak[index], max=0.0))


def _is_channels_last(input: torch.Tensor) -> bool:
    """Whether ``input (B, C, H, W)`` is stored channels-last (the output then is too: no transpose back)."""
    return input.shape[1] > 1 and input.is_contiguous(memory_format=torch.channels_last)


class SoftsplatTorch(torch.autograd.Function):
    """``(input (B, C, H, W), flow (B, 2, H, W), metric (B, 1, H, W) | None, mode) → (B, C, H, W)``.

    Works channels-last on ``(B·H·W, C)`` tables and reuses one scratch buffer per pass, so that
    the cost is the four ``index_add_``/``index_select`` passes rather than fresh allocations.
    """

    @staticmethod
    def forward(ctx, input, flow, metric, mode):
        dtype = work_dtype(input)
        batch, channels, height, width = input.shape
        size = batch * height * width + 1
        corners = _corners(flow, dtype)
        x = input.to(dtype).permute(0, 2, 3, 1).contiguous().view(size - 1, channels)
        z = metric.to(dtype).reshape(-1) if metric is not None else None
        peak = _target_max(z, corners, size) if mode == "soft" else None

        num = x.new_zeros(size, channels)
        den = x.new_zeros(size) if mode != "sum" else None
        scratch = torch.empty_like(x)
        for index, weight in corners:
            if mode == "linear":
                weight = weight * z
            elif mode == "soft":
                weight = weight * _exp_factor(z, peak, index)
            num.index_add_(0, index, torch.mul(x, weight[:, None], out=scratch))
            if den is not None:
                den.index_add_(0, index, weight)
        out = num[:-1]
        if den is not None:
            den = den[:-1, None]
            out.div_(den + EPS)
        ctx.mode = mode
        ctx.shape = input.shape
        ctx.dtypes = (input.dtype, flow.dtype, None if metric is None else metric.dtype)
        ctx.save_for_backward(x, flow, z, peak, out, den)
        layout = torch.channels_last if _is_channels_last(input) else torch.contiguous_format
        return out.reshape(batch, height, width, channels).permute(0, 3, 1, 2).to(input.dtype).contiguous(
            memory_format=layout)

    @staticmethod
    def backward(ctx, grad):
        x, flow, z, peak, out, den = ctx.saved_tensors
        mode = ctx.mode
        batch, channels, height, width = ctx.shape
        dtype = x.dtype
        corners = _corners(flow, dtype, derivatives=True)
        size = x.shape[0] + 1
        # the ties of M(q), needed only here: counted in the backward pass so inference never pays for them
        count = _argmax_count(z, peak, [c[:2] for c in corners], size) if mode == "soft" else None
        big_g = x.new_zeros(x.shape[0] + 1, channels)  # the last row: what dropped corners gather
        big_g[:-1] = grad.permute(0, 2, 3, 1).reshape(-1, channels)
        small_s = x.new_zeros(x.shape[0] + 1)
        if mode != "sum":
            big_g[:-1] /= den + EPS
            small_s[:-1] = -(big_g[:-1] * out).sum(dim=1)

        grad_x = torch.zeros_like(x)
        grad_fx = torch.zeros_like(x[:, 0])
        grad_fy = torch.zeros_like(x[:, 0])
        grad_z = torch.zeros_like(x[:, 0]) if z is not None else None
        scratch = torch.empty_like(x)
        for index, weight, dbdx, dbdy in corners:
            if mode == "linear":
                factor = z
            elif mode == "soft":
                factor = _exp_factor(z, peak, index)
            else:
                factor = None
            g_q = torch.index_select(big_g, 0, index, out=scratch)
            grad_x.addcmul_(g_q, (weight if factor is None else weight * factor)[:, None])
            grad_w = g_q.mul_(x).sum(dim=1).add_(small_s[index])
            if factor is not None:
                grad_w_e = grad_w * factor
                if mode == "linear":
                    grad_z.addcmul_(weight, grad_w)
                else:
                    grad_z.addcmul_(weight, grad_w_e)
                    attains = (weight > 0) & (z == peak[index])  # ∂M(q)/∂Z(p), split between ties
                    grad_z += torch.where(attains, EPS * small_s[index] / count[index].clamp(min=1), 0.0)
                grad_w = grad_w_e
            grad_fx.addcmul_(dbdx, grad_w)
            grad_fy.addcmul_(dbdy, grad_w)

        in_dtype, flow_dtype, metric_dtype = ctx.dtypes
        grad_input = grad_x.reshape(batch, height, width, channels).permute(0, 3, 1, 2).to(in_dtype).contiguous()
        grad_flow = torch.stack([grad_fx, grad_fy]).reshape(2, batch, height, width).transpose(0, 1).to(flow_dtype)
        grad_metric = None
        if mode in ("linear", "soft"):
            grad_metric = grad_z.reshape(batch, 1, height, width).to(metric_dtype)
        return grad_input, grad_flow.contiguous(), grad_metric, None


def softsplat_torch(input, flow, metric, mode):
    """Vectorised CPU (or any device) softmax splatting with an analytic backward; inputs pre-checked."""
    return SoftsplatTorch.apply(input, flow, metric, mode)
