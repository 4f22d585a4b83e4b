"""Softmax splatting as Triton kernels: forward scatter with atomics, backward as a pure gather.

Semantics: :mod:`gid.kernels.softsplat_reference` (paper §5, Niklaus & Liu 2020). Layout is the
tensors' own ``(B, C, H, W)``; one program handles ``BLOCK_P`` source pixels (flattened over
``B·H·W``) by ``BLOCK_C`` channels, so loads of ``input`` are contiguous along the pixel axis.

- ``_peak_kernel`` (soft mode): ``M(q) = max Z(p)`` over sources reaching ``q`` with positive
  bilinear weight, by float ``atomic_max`` into a ``(B, 1, H, W)`` buffer filled with −inf.
- ``_splat_kernel``: ``atomic_add`` of ``w·x`` into a float32 ``(B, C, H, W)`` numerator and of
  ``w`` into a ``(B, 1, H, W)`` denominator (channel block 0 only), ``w = b·e`` with
  ``e = 1 | Z | exp(min(Z − M(q), 0))``. The division ``N / (D + ε)`` is one torch op.
- ``_grad_kernel``: given ``G = g / (D + ε)`` and ``s = −Σ_c G·out`` per target (two torch ops;
  ``G = g``, ``s = 0`` in sum mode), each source gathers from its four corners
  ``∂L/∂x = Σ_q w·G``, ``∂L/∂w_q = Σ_c G·x + s`` and from those ``∂L/∂F`` and ``∂L/∂Z``
  (formulas in :mod:`gid.kernels.softsplat_torch`), plus soft mode's ``ε·s(q)`` for the source(s)
  attaining ``M(q)`` (counted by ``_splat_kernel``). No atomics: the backward is deterministic.

The scatters use ``sem="relaxed"`` atomics: nothing reads the buffers before the kernel ends, and
on sm_90 this turns Triton's default ``atom.acq_rel`` (returns a value, orders memory) into
fire-and-forget ``red.relaxed`` reductions.

Block sizes are chosen by ``triton.autotune`` per channel count and mode (:func:`_block_configs`:
``BLOCK_P`` 64/128/256 × ``BLOCK_C`` 8/16/32 on the GPU; the accumulators are zeroed between
trials). Under the interpreter the configurations collapse to one (128 × 16), so nothing is timed.

CUDA tensors run compiled kernels. CPU tensors run the same kernels in Triton's interpreter when
``TRITON_INTERPRET=1`` is in the environment before Triton is imported (``triton.jit`` reads it
when it decorates, and Triton's own standard library is decorated at ``import triton``); that is
how the CPU test suite checks them. Interpreter speed is only good for tiny shapes.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from gid.kernels.softsplat_inputs import EPS

MODE_IDS = {"sum": 0, "avg": 1, "linear": 2, "soft": 3}
EPS_VALUE: tl.constexpr = tl.constexpr(EPS)
BLOCK_P = 128
BLOCK_C = 16


def _block_configs() -> list[triton.Config]:
    """Autotuning candidates: one (``BLOCK_P``, ``BLOCK_C``) under Triton's interpreter, nine on a GPU."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return [triton.Config({"BLOCK_P": BLOCK_P, "BLOCK_C": BLOCK_C})]
    return [triton.Config({"BLOCK_P": p, "BLOCK_C": c}, num_warps=4 if p <= 128 else 8)
            for p in (64, 128, 256) for c in (8, 16, 32)]


@triton.jit
def _landing(p, flow_ptr, n_pixels, H, W):
    """Where sources ``p`` (flat ``b·H·W + pix``) land under ``flow (B, 2, H, W)``: ``inside`` (a real
    source), ``ok`` (finite flow), ``b``, ``pix``, the bilinear fractions ``ax, ay`` and the top-left
    corner ``x0, y0`` (clamped to [−2, size] before the int cast, so huge flow cannot overflow)."""
    inside = p < n_pixels
    hw = H * W
    b = p // hw
    pix = p % hw
    fx = tl.load(flow_ptr + b * 2 * hw + pix, mask=inside, other=0.0).to(tl.float32) + pix % W
    fy = tl.load(flow_ptr + b * 2 * hw + hw + pix, mask=inside, other=0.0).to(tl.float32) + pix // W
    ok = inside & (tl.abs(fx) <= 3.4e38) & (tl.abs(fy) <= 3.4e38)  # False for NaN and ±inf
    fx = tl.where(ok, fx, 0.0)
    fy = tl.where(ok, fy, 0.0)
    x0f = tl.floor(fx)
    y0f = tl.floor(fy)
    x0 = tl.minimum(tl.maximum(x0f, -2.0), W + 0.0).to(tl.int64)
    y0 = tl.minimum(tl.maximum(y0f, -2.0), H + 0.0).to(tl.int64)
    return inside, ok, b, pix, fx - x0f, fy - y0f, x0, y0


@triton.jit
def _corners_inside(ok, x0, y0, H, W):
    """Which of the four corners ``(x0|x0+1, y0|y0+1)`` of a finite landing lie in the image:
    ``v00, v10, v01, v11`` (x offset first)."""
    okx0 = (x0 >= 0) & (x0 < W)
    okx1 = (x0 + 1 >= 0) & (x0 + 1 < W)
    oky0 = (y0 >= 0) & (y0 < H)
    oky1 = (y0 + 1 >= 0) & (y0 + 1 < H)
    return ok & okx0 & oky0, ok & okx1 & oky0, ok & okx0 & oky1, ok & okx1 & oky1


@triton.jit
def _peak_kernel(flow_ptr, metric_ptr, peak_ptr, n_pixels, H, W, BLOCK_P: tl.constexpr):
    """``peak (B, 1, H, W)`` ← max of ``metric (B, 1, H, W)`` over sources landing with weight > 0."""
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    inside, ok, b, pix, ax, ay, x0, y0 = _landing(p, flow_ptr, n_pixels, H, W)
    hw = H * W
    z = tl.load(metric_ptr + p, mask=inside, other=0.0).to(tl.float32)
    x1 = x0 + 1
    y1 = y0 + 1
    v00, v10, v01, v11 = _corners_inside(ok, x0, y0, H, W)
    base = peak_ptr + b * hw
    tl.atomic_max(base + y0 * W + x0, z, mask=v00 & ((1 - ax) * (1 - ay) > 0), sem="relaxed")
    tl.atomic_max(base + y0 * W + x1, z, mask=v10 & (ax * (1 - ay) > 0), sem="relaxed")
    tl.atomic_max(base + y1 * W + x0, z, mask=v01 & ((1 - ax) * ay > 0), sem="relaxed")
    tl.atomic_max(base + y1 * W + x1, z, mask=v11 & (ax * ay > 0), sem="relaxed")


@triton.autotune(configs=_block_configs(), key=["C", "MODE"], reset_to_zero=["num_ptr", "den_ptr", "count_ptr"])
@triton.jit
def _splat_kernel(
    x_ptr, flow_ptr, metric_ptr, peak_ptr, num_ptr, den_ptr, count_ptr, n_pixels, C, H, W,
    MODE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """``num (B, C, H, W) += w·x``, ``den (B, 1, H, W) += w`` at the four corners of ``p + F(p)``;
    soft mode also counts in ``count (B, 1, H, W)`` the sources attaining ``M(q)`` (for the backward)."""
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    inside, ok, b, pix, ax, ay, x0, y0 = _landing(p, flow_ptr, n_pixels, H, W)
    hw = H * W
    v00, v10, v01, v11 = _corners_inside(ok, x0, y0, H, W)
    q00 = b * hw + y0 * W + x0
    q10 = q00 + 1
    q01 = q00 + W
    q11 = q01 + 1
    w00 = (1 - ax) * (1 - ay)
    w10 = ax * (1 - ay)
    w01 = (1 - ax) * ay
    w11 = ax * ay
    if MODE == 2:
        z = tl.load(metric_ptr + p, mask=inside, other=0.0).to(tl.float32)
        w00 = w00 * z
        w10 = w10 * z
        w01 = w01 * z
        w11 = w11 * z
    if MODE == 3:
        z = tl.load(metric_ptr + p, mask=inside, other=0.0).to(tl.float32)
        pk00 = tl.load(peak_ptr + q00, mask=v00, other=0.0)
        pk10 = tl.load(peak_ptr + q10, mask=v10, other=0.0)
        pk01 = tl.load(peak_ptr + q01, mask=v01, other=0.0)
        pk11 = tl.load(peak_ptr + q11, mask=v11, other=0.0)
        if tl.program_id(1) == 0:
            tl.atomic_add(count_ptr + q00, 1.0, mask=v00 & (w00 > 0) & (z == pk00), sem="relaxed")
            tl.atomic_add(count_ptr + q10, 1.0, mask=v10 & (w10 > 0) & (z == pk10), sem="relaxed")
            tl.atomic_add(count_ptr + q01, 1.0, mask=v01 & (w01 > 0) & (z == pk01), sem="relaxed")
            tl.atomic_add(count_ptr + q11, 1.0, mask=v11 & (w11 > 0) & (z == pk11), sem="relaxed")
        w00 = w00 * tl.exp(tl.minimum(z - pk00, 0.0))
        w10 = w10 * tl.exp(tl.minimum(z - pk10, 0.0))
        w01 = w01 * tl.exp(tl.minimum(z - pk01, 0.0))
        w11 = w11 * tl.exp(tl.minimum(z - pk11, 0.0))
    if MODE != 0:
        if tl.program_id(1) == 0:
            tl.atomic_add(den_ptr + q00, w00, mask=v00, sem="relaxed")
            tl.atomic_add(den_ptr + q10, w10, mask=v10, sem="relaxed")
            tl.atomic_add(den_ptr + q01, w01, mask=v01, sem="relaxed")
            tl.atomic_add(den_ptr + q11, w11, mask=v11, sem="relaxed")

    cmask = c < C
    chan = (b * C * hw)[:, None] + (c.to(tl.int64) * hw)[None, :]  # offset of (b, c) planes, (BLOCK_P, BLOCK_C)
    tile = inside[:, None] & cmask[None, :]
    x = tl.load(x_ptr + chan + pix[:, None], mask=tile, other=0.0).to(tl.float32)
    out = num_ptr + chan - (b * hw)[:, None]  # + q: the target's offset within the (b, c) plane
    c_ok = cmask[None, :]
    tl.atomic_add(out + q00[:, None], w00[:, None] * x, mask=v00[:, None] & c_ok, sem="relaxed")
    tl.atomic_add(out + q10[:, None], w10[:, None] * x, mask=v10[:, None] & c_ok, sem="relaxed")
    tl.atomic_add(out + q01[:, None], w01[:, None] * x, mask=v01[:, None] & c_ok, sem="relaxed")
    tl.atomic_add(out + q11[:, None], w11[:, None] * x, mask=v11[:, None] & c_ok, sem="relaxed")


@triton.autotune(configs=_block_configs(), key=["C", "MODE"])
@triton.jit
def _grad_kernel(
    x_ptr, flow_ptr, metric_ptr, peak_ptr, count_ptr, g_ptr, s_ptr, gx_ptr, gflow_ptr, gmetric_ptr, n_pixels, C, H, W,
    MODE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Gradients of one block of sources: ``gx (B, C, H, W)``, ``gflow (B, 2, H, W)``, ``gmetric (B, 1, H, W)``."""
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    inside, ok, b, pix, ax, ay, x0, y0 = _landing(p, flow_ptr, n_pixels, H, W)
    hw = H * W
    v00, v10, v01, v11 = _corners_inside(ok, x0, y0, H, W)
    q00 = y0 * W + x0  # within the batch item's plane
    q10 = q00 + 1
    q01 = q00 + W
    q11 = q01 + 1
    b00 = (1 - ax) * (1 - ay)
    b10 = ax * (1 - ay)
    b01 = (1 - ax) * ay
    b11 = ax * ay
    e00 = tl.full((BLOCK_P,), 1.0, tl.float32)
    e10 = e00
    e01 = e00
    e11 = e00
    if MODE == 2:
        z = tl.load(metric_ptr + p, mask=inside, other=0.0).to(tl.float32)
        e00 = z
        e10 = z
        e01 = z
        e11 = z
    if MODE == 3:
        z = tl.load(metric_ptr + p, mask=inside, other=0.0).to(tl.float32)
        pk00 = tl.load(peak_ptr + b * hw + q00, mask=v00, other=0.0)
        pk10 = tl.load(peak_ptr + b * hw + q10, mask=v10, other=0.0)
        pk01 = tl.load(peak_ptr + b * hw + q01, mask=v01, other=0.0)
        pk11 = tl.load(peak_ptr + b * hw + q11, mask=v11, other=0.0)
        e00 = tl.exp(tl.minimum(z - pk00, 0.0))
        e10 = tl.exp(tl.minimum(z - pk10, 0.0))
        e01 = tl.exp(tl.minimum(z - pk01, 0.0))
        e11 = tl.exp(tl.minimum(z - pk11, 0.0))
    w00 = tl.where(v00, b00 * e00, 0.0)
    w10 = tl.where(v10, b10 * e10, 0.0)
    w01 = tl.where(v01, b01 * e01, 0.0)
    w11 = tl.where(v11, b11 * e11, 0.0)

    dw00 = tl.zeros((BLOCK_P,), tl.float32)
    dw10 = tl.zeros((BLOCK_P,), tl.float32)
    dw01 = tl.zeros((BLOCK_P,), tl.float32)
    dw11 = tl.zeros((BLOCK_P,), tl.float32)
    s00 = tl.load(s_ptr + b * hw + q00, mask=v00, other=0.0)
    s10 = tl.load(s_ptr + b * hw + q10, mask=v10, other=0.0)
    s01 = tl.load(s_ptr + b * hw + q01, mask=v01, other=0.0)
    s11 = tl.load(s_ptr + b * hw + q11, mask=v11, other=0.0)
    dw00 += s00
    dw10 += s10
    dw01 += s01
    dw11 += s11
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        cmask = c < C
        chan = (b * C * hw)[:, None] + (c.to(tl.int64) * hw)[None, :]
        x = tl.load(x_ptr + chan + pix[:, None], mask=inside[:, None] & cmask[None, :], other=0.0).to(tl.float32)
        g00 = tl.load(g_ptr + chan + q00[:, None], mask=v00[:, None] & cmask[None, :], other=0.0)
        g10 = tl.load(g_ptr + chan + q10[:, None], mask=v10[:, None] & cmask[None, :], other=0.0)
        g01 = tl.load(g_ptr + chan + q01[:, None], mask=v01[:, None] & cmask[None, :], other=0.0)
        g11 = tl.load(g_ptr + chan + q11[:, None], mask=v11[:, None] & cmask[None, :], other=0.0)
        gx = w00[:, None] * g00 + w10[:, None] * g10 + w01[:, None] * g01 + w11[:, None] * g11
        tl.store(gx_ptr + chan + pix[:, None], gx, mask=inside[:, None] & cmask[None, :])
        dw00 += tl.sum(g00 * x, axis=1)
        dw10 += tl.sum(g10 * x, axis=1)
        dw01 += tl.sum(g01 * x, axis=1)
        dw11 += tl.sum(g11 * x, axis=1)

    # ∂b/∂Fx and ∂b/∂Fy of each corner; zero for dropped corners through the masked dw and w.
    d00 = tl.where(v00, e00 * dw00, 0.0)
    d10 = tl.where(v10, e10 * dw10, 0.0)
    d01 = tl.where(v01, e01 * dw01, 0.0)
    d11 = tl.where(v11, e11 * dw11, 0.0)
    gfx = -(1 - ay) * d00 + (1 - ay) * d10 - ay * d01 + ay * d11
    gfy = -(1 - ax) * d00 - ax * d10 + (1 - ax) * d01 + ax * d11
    tl.store(gflow_ptr + b * 2 * hw + pix, gfx, mask=inside)
    tl.store(gflow_ptr + b * 2 * hw + hw + pix, gfy, mask=inside)
    if MODE == 2:
        gz = tl.where(v00, b00 * dw00, 0.0) + tl.where(v10, b10 * dw10, 0.0)
        gz += tl.where(v01, b01 * dw01, 0.0) + tl.where(v11, b11 * dw11, 0.0)
        tl.store(gmetric_ptr + p, gz, mask=inside)
    if MODE == 3:
        gz = w00 * dw00 + w10 * dw10 + w01 * dw01 + w11 * dw11
        # ∂L/∂M(q) = ε·s(q), to the source(s) attaining M(q), split between ties.
        a00 = v00 & (b00 > 0) & (z == pk00)
        a10 = v10 & (b10 > 0) & (z == pk10)
        a01 = v01 & (b01 > 0) & (z == pk01)
        a11 = v11 & (b11 > 0) & (z == pk11)
        n00 = tl.maximum(tl.load(count_ptr + b * hw + q00, mask=a00, other=1.0), 1.0)
        n10 = tl.maximum(tl.load(count_ptr + b * hw + q10, mask=a10, other=1.0), 1.0)
        n01 = tl.maximum(tl.load(count_ptr + b * hw + q01, mask=a01, other=1.0), 1.0)
        n11 = tl.maximum(tl.load(count_ptr + b * hw + q11, mask=a11, other=1.0), 1.0)
        gz += tl.where(a00, s00 / n00, 0.0) * EPS_VALUE + tl.where(a10, s10 / n10, 0.0) * EPS_VALUE
        gz += tl.where(a01, s01 / n01, 0.0) * EPS_VALUE + tl.where(a11, s11 / n11, 0.0) * EPS_VALUE
        tl.store(gmetric_ptr + p, gz, mask=inside)


def _check_device(device: torch.device) -> None:
    """CUDA runs compiled kernels; CPU needs the kernels to have been made interpretable at import."""
    from triton.runtime.interpreter import InterpretedFunction

    if device.type == "cuda":
        return
    if device.type == "cpu" and isinstance(_splat_kernel.fn, InterpretedFunction):
        return
    if device.type == "cpu":
        raise ValueError(
            "softsplat: backend='triton' needs CUDA tensors, or Triton's interpreter for CPU tensors: set "
            "TRITON_INTERPRET=1 in the environment before Python starts (or use backend='torch' on CPU)"
        )
    raise ValueError(f"softsplat: backend='triton' runs on CUDA (or CPU under TRITON_INTERPRET=1), not {device}")


class SoftsplatTriton(torch.autograd.Function):
    """``(input (B, C, H, W), flow (B, 2, H, W), metric (B, 1, H, W) | None, mode) → (B, C, H, W)``."""

    @staticmethod
    def forward(ctx, input, flow, metric, mode):
        batch, channels, height, width = input.shape
        n_pixels = batch * height * width
        mode_id = MODE_IDS[mode]
        x = input.contiguous()
        flow = flow.contiguous()
        metric = metric.contiguous() if metric is not None else flow  # flow: a dummy pointer, never read
        num = torch.zeros(input.shape, device=input.device, dtype=torch.float32)
        den = torch.zeros((batch, 1, height, width), device=input.device, dtype=torch.float32)
        peak = count = den  # dummy pointers outside soft mode, never read
        if mode == "soft":
            peak = torch.full_like(den, float("-inf"))
            count = torch.zeros_like(den)
            grid = (triton.cdiv(n_pixels, BLOCK_P),)
            _peak_kernel[grid](flow, metric, peak, n_pixels, height, width, BLOCK_P=BLOCK_P)
        _splat_kernel[lambda meta: (triton.cdiv(n_pixels, meta["BLOCK_P"]), triton.cdiv(channels, meta["BLOCK_C"]))](
            x, flow, metric, peak, num, den, count, n_pixels, channels, height, width, MODE=mode_id,
        )
        out = num if mode == "sum" else num / (den + EPS)
        ctx.mode = mode
        ctx.metric_dtype = None if mode in ("sum", "avg") else metric.dtype
        ctx.save_for_backward(x, flow, metric, peak, count, out, den)
        return out.to(input.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, flow, metric, peak, count, out, den = ctx.saved_tensors
        batch, channels, height, width = x.shape
        n_pixels = batch * height * width
        g = grad.to(torch.float32).contiguous()
        if ctx.mode == "sum":
            s = den  # zeros: sum mode has no denominator term
        else:
            g = g / (den + EPS)
            s = -(g * out).sum(dim=1, keepdim=True)
        grad_x = torch.empty(x.shape, device=x.device, dtype=torch.float32)
        grad_flow = torch.empty(flow.shape, device=x.device, dtype=torch.float32)
        grad_metric = torch.empty(den.shape, device=x.device, dtype=torch.float32)
        _grad_kernel[lambda meta: (triton.cdiv(n_pixels, meta["BLOCK_P"]),)](
            x, flow, metric, peak, count, g, s, grad_x, grad_flow, grad_metric, n_pixels, channels, height, width,
            MODE=MODE_IDS[ctx.mode],
        )
        gm = grad_metric.to(ctx.metric_dtype) if ctx.metric_dtype is not None else None
        return grad_x.to(x.dtype), grad_flow.to(flow.dtype), gm, None


def softsplat_triton(input, flow, metric, mode):
    """Triton softmax splatting (float64 input is computed in float32); inputs pre-checked."""
    _check_device(input.device)
    return SoftsplatTriton.apply(input, flow, metric, mode)
