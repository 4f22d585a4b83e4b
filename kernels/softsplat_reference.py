"""Softmax splatting in plain torch ops, differentiated by autograd: the yardstick for the fast paths.

Forward warping (Niklaus & Liu, *Softmax Splatting for Video Frame Interpolation*, CVPR 2020;
paper §5, shared/METHOD.md "Rendering"). Every source pixel ``p`` sends its value ``x(p)`` to
the four integer neighbours ``q`` of ``p + F(p)`` with bilinear weights ``b(p, q)``:

- ``sum``:    ``out(q) = Σ_p b·x``
- ``avg``:    ``out(q) = Σ_p b·x / (Σ_p b + ε)``
- ``linear``: ``out(q) = Σ_p b·Z·x / (Σ_p b·Z + ε)``
- ``soft``:   ``out(q) = Σ_p b·exp(Z − M(q))·x / (Σ_p b·exp(Z − M(q)) + ε)``

with ``ε = 1e-7``. Neighbours outside the image and sources with non-finite flow are dropped.
``soft`` subtracts the per-target maximum ``M(q) = max Z(p)`` over the sources that reach ``q``
with a positive weight, so ``exp`` never overflows (``|Z|`` up to 1e4 and beyond stays finite); it
equals ``Σ b·e^Z·x / Σ b·e^Z`` exactly and differs from the unshifted formula only in ε, which acts
as ``ε·e^{M(q)}``. Zero-weight neighbours (flow landing exactly on an integer) use
``exp(min(Z − M(q), 0))`` so that their (one-sided) flow gradient stays finite.

Loops only over the four corners; each corner is one ``index_add`` into a channels-last table with
one spare row that collects dropped contributions. Slow and memory-hungry, kept for tests and the
benchmark; use :func:`gid.kernels.softsplat` for real work.
"""
from __future__ import annotations

import torch

from gid.kernels.softsplat_inputs import EPS, check_inputs, work_dtype


def softsplat_reference(
    input: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor | None = None, mode: str = "soft"
) -> torch.Tensor:
    """Forward-warp ``input (B, C, H, W)`` by ``flow (B, 2, H, W)`` (pixels); returns ``(B, C, H, W)``.

    ``metric (B, 1, H, W)`` is required for ``linear`` and ``soft``. Computes in float32 (float64 for
    float64 input) and returns the dtype of ``input``. Differentiable in all three tensors.
    """
    metric = check_inputs(input, flow, metric, mode)
    dtype = work_dtype(input)
    batch, channels, height, width = input.shape
    pixels = height * width
    trash = batch * pixels  # the spare row that receives every dropped contribution
    device = input.device

    x = input.to(dtype).permute(0, 2, 3, 1).reshape(trash, channels)
    if mode != "sum":
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)  # last column accumulates the denominator
    rows, cols = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    fx = flow[:, 0].to(dtype) + cols
    fy = flow[:, 1].to(dtype) + rows
    finite = torch.isfinite(fx) & torch.isfinite(fy)
    fx = torch.where(finite, fx, torch.zeros_like(fx)).reshape(-1)
    fy = torch.where(finite, fy, torch.zeros_like(fy)).reshape(-1)
    finite = finite.reshape(-1)
    x0, y0 = torch.floor(fx), torch.floor(fy)
    ax, ay = fx - x0, fy - y0  # floor has zero gradient, so d(ax)/d(fx) = 1
    base = torch.arange(batch, device=device).repeat_interleave(pixels) * pixels

    corners = []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = x0 + dx, y0 + dy
        weight = (ax if dx else 1 - ax) * (ay if dy else 1 - ay)
        valid = finite & (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        index = base + cy.clamp(0, height - 1).long() * width + cx.clamp(0, width - 1).long()
        index = torch.where(valid, index, torch.full_like(index, trash))
        corners.append((index, torch.where(valid, weight, torch.zeros_like(weight))))

    if mode == "soft":
        z = metric.to(dtype).reshape(-1)
        peak = torch.full((trash + 1,), float("-inf"), device=device, dtype=dtype)
        for index, weight in corners:
            reaching = torch.where(weight > 0, index, torch.full_like(index, trash))
            peak = peak.scatter_reduce(0, reaching, z, "amax", include_self=True)

    table = x.new_zeros(trash + 1, x.shape[1])
    for index, weight in corners:
        if mode == "linear":
            weight = weight * metric.to(dtype).reshape(-1)
        elif mode == "soft":
            weight = weight * torch.exp(torch.clamp(z - peak[index], max=0.0))
        table = table.index_add(0, index, x * weight[:, None])

    table = table[:trash]
    out = table if mode == "sum" else table[:, :channels] / (table[:, channels:] + EPS)
    return out.reshape(batch, height, width, channels).permute(0, 3, 1, 2).to(input.dtype)
