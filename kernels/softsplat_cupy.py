"""Softmax splatting as CUDA C kernels launched through CuPy's ``RawKernel``: the GPU peer that the
benchmark measures the Triton kernels against (same algorithm, hand-written CUDA).

Semantics: :mod:`gid.kernels.softsplat_reference` (paper §5, Niklaus & Liu 2020). One CUDA thread
per source pixel, looping over channels (reads of ``input (B, C, H, W)`` coalesced along pixels):

- ``softsplat_peak``: ``M(q) = max Z(p)`` over sources reaching ``q`` with positive weight, by the
  sign-split integer ``atomicMax``/``atomicMin`` trick on float bits (buffer starts at −inf);
- ``softsplat_splat``: ``atomicAdd`` of ``w·x`` into the float32 numerator and of ``w`` into the
  denominator;
- ``softsplat_grad``: the gather-only backward of :mod:`gid.kernels.softsplat_triton`, given
  ``G = g / (D + ε)`` and ``s = −Σ_c G·out`` (soft mode: plus ``ε·s(q)`` for the source(s)
  attaining ``M(q)``, counted by ``softsplat_splat``).

Everything is computed in float32 (float16/bfloat16/float64 inputs are converted first). CuPy is
imported on first use: ``pip install 'gid[gpu]'`` (``cupy-cuda12x``) on a CUDA machine.
"""
from __future__ import annotations

import torch

from gid.kernels.softsplat_inputs import EPS

MODE_IDS = {"sum": 0, "avg": 1, "linear": 2, "soft": 3}
THREADS = 256

CUDA_SOURCE = r"""
#define EPS 1e-7f

struct Corners {
    long long q[4];   // flat target index (b*H*W + y*W + x) of corners (x0,y0) (x1,y0) (x0,y1) (x1,y1)
    float b[4];       // bilinear weights
    bool v[4];        // inside the image and finite flow
    float ax, ay;     // fractional parts of the landing point
};

__device__ __forceinline__ void corners_of(const float* flow, long long p, int H, int W, Corners* c) {
    const long long hw = (long long)H * W;
    const long long bi = p / hw;
    const long long pix = p - bi * hw;
    const int i = (int)(pix / W);
    const int j = (int)(pix - (long long)i * W);
    float fx = flow[bi * 2 * hw + pix] + (float)j;
    float fy = flow[bi * 2 * hw + hw + pix] + (float)i;
    const bool ok = isfinite(fx) && isfinite(fy);
    if (!ok) { fx = 0.0f; fy = 0.0f; }
    const float x0f = floorf(fx), y0f = floorf(fy);
    c->ax = fx - x0f;
    c->ay = fy - y0f;
    const long long x0 = (long long)fminf(fmaxf(x0f, -2.0f), (float)W);  // clamped before the cast
    const long long y0 = (long long)fminf(fmaxf(y0f, -2.0f), (float)H);
    for (int k = 0; k < 4; ++k) {
        const int dx = k & 1, dy = k >> 1;
        const long long cx = x0 + dx, cy = y0 + dy;
        c->v[k] = ok && cx >= 0 && cx < W && cy >= 0 && cy < H;
        c->q[k] = c->v[k] ? bi * hw + cy * W + cx : 0;
        c->b[k] = (dx ? c->ax : 1.0f - c->ax) * (dy ? c->ay : 1.0f - c->ay);
    }
}

__device__ __forceinline__ void atomic_max_float(float* address, float value) {
    if (value >= 0.0f) atomicMax((int*)address, __float_as_int(value));
    else atomicMin((unsigned int*)address, __float_as_uint(value));
}

extern "C" __global__ void softsplat_peak(const float* flow, const float* metric, float* peak,
                                          long long n_pixels, int H, int W) {
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pixels) return;
    Corners c;
    corners_of(flow, p, H, W, &c);
    for (int k = 0; k < 4; ++k)
        if (c.v[k] && c.b[k] > 0.0f) atomic_max_float(peak + c.q[k], metric[p]);
}

extern "C" __global__ void softsplat_splat(const float* x, const float* flow, const float* metric, const float* peak,
                                           float* num, float* den, float* count, long long n_pixels,
                                           int C, int H, int W, int mode) {
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pixels) return;
    Corners c;
    corners_of(flow, p, H, W, &c);
    const long long hw = (long long)H * W;
    const long long bi = p / hw;
    const long long pix = p - bi * hw;
    float w[4];
    for (int k = 0; k < 4; ++k) {
        float e = 1.0f;
        if (mode == 2) e = metric[p];
        if (mode == 3 && c.v[k]) {
            const float peak_q = peak[c.q[k]];
            e = expf(fminf(metric[p] - peak_q, 0.0f));
            if (c.b[k] > 0.0f && metric[p] == peak_q) atomicAdd(count + c.q[k], 1.0f);  // attains M(q)
        }
        w[k] = c.b[k] * e;
        if (mode != 0 && c.v[k]) atomicAdd(den + c.q[k], w[k]);
    }
    for (int ch = 0; ch < C; ++ch) {
        const long long plane = (bi * C + ch) * hw;
        const float value = x[plane + pix];
        for (int k = 0; k < 4; ++k)
            if (c.v[k]) atomicAdd(num + plane + (c.q[k] - bi * hw), w[k] * value);
    }
}

extern "C" __global__ void softsplat_grad(const float* x, const float* flow, const float* metric, const float* peak,
                                          const float* count, const float* g, const float* s, float* gx, float* gflow,
                                          float* gmetric,
                                          long long n_pixels, int C, int H, int W, int mode) {
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= n_pixels) return;
    Corners c;
    corners_of(flow, p, H, W, &c);
    const long long hw = (long long)H * W;
    const long long bi = p / hw;
    const long long pix = p - bi * hw;
    float e[4], w[4], dw[4];
    for (int k = 0; k < 4; ++k) {
        e[k] = 1.0f;
        if (mode == 2) e[k] = metric[p];
        if (mode == 3) e[k] = c.v[k] ? expf(fminf(metric[p] - peak[c.q[k]], 0.0f)) : 0.0f;
        w[k] = c.v[k] ? c.b[k] * e[k] : 0.0f;
        dw[k] = (mode != 0 && c.v[k]) ? s[c.q[k]] : 0.0f;
    }
    for (int ch = 0; ch < C; ++ch) {
        const long long plane = (bi * C + ch) * hw;
        const float value = x[plane + pix];
        float acc = 0.0f;
        for (int k = 0; k < 4; ++k) {
            if (!c.v[k]) continue;
            const float gq = g[plane + (c.q[k] - bi * hw)];
            acc += w[k] * gq;
            dw[k] += gq * value;
        }
        gx[plane + pix] = acc;
    }
    const float ax = c.ax, ay = c.ay;
    float d[4];
    for (int k = 0; k < 4; ++k) d[k] = c.v[k] ? e[k] * dw[k] : 0.0f;
    gflow[bi * 2 * hw + pix] = -(1.0f - ay) * d[0] + (1.0f - ay) * d[1] - ay * d[2] + ay * d[3];
    gflow[bi * 2 * hw + hw + pix] = -(1.0f - ax) * d[0] - ax * d[1] + (1.0f - ax) * d[2] + ax * d[3];
    if (mode == 2) {
        float gz = 0.0f;
        for (int k = 0; k < 4; ++k) if (c.v[k]) gz += c.b[k] * dw[k];
        gmetric[p] = gz;
    }
    if (mode == 3) {
        float gz = 0.0f;
        for (int k = 0; k < 4; ++k) {
            gz += w[k] * dw[k];
            // dL/dM(q) = eps * s(q), to the source(s) attaining M(q), split between ties
            if (c.v[k] && c.b[k] > 0.0f && metric[p] == peak[c.q[k]])
                gz += EPS * s[c.q[k]] / fmaxf(count[c.q[k]], 1.0f);
        }
        gmetric[p] = gz;
    }
}
"""

_KERNELS: dict = {}


def _cupy():
    try:
        import cupy
    except ImportError as err:
        raise ValueError(
            "softsplat: backend='cupy' needs CuPy, which is not installed: on a CUDA machine run "
            "pip install 'gid[gpu]' (cupy-cuda12x), or use backend='triton' or 'torch'"
        ) from err
    return cupy


def _kernel(name: str):
    if name not in _KERNELS:
        module = _cupy().RawModule(code=CUDA_SOURCE, options=("--std=c++14",))
        for kernel_name in ("softsplat_peak", "softsplat_splat", "softsplat_grad"):
            _KERNELS[kernel_name] = module.get_function(kernel_name)
    return _KERNELS[name]


def _launch(name: str, n_pixels: int, *args) -> None:
    """Run kernel ``name`` with one thread per source pixel on torch's current CUDA stream."""
    import numpy as np

    cupy = _cupy()
    converted = []
    for arg in args:
        if isinstance(arg, torch.Tensor):
            converted.append(cupy.from_dlpack(arg.detach()))  # zero-copy view of the torch tensor
        elif isinstance(arg, np.generic):
            converted.append(arg)
        else:
            converted.append(np.int32(arg))
    blocks = (n_pixels + THREADS - 1) // THREADS
    with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
        _kernel(name)((blocks,), (THREADS,), tuple(converted))


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).contiguous()


class SoftsplatCupy(torch.autograd.Function):
    """``(input (B, C, H, W), flow (B, 2, H, W), metric (B, 1, H, W) | None, mode) → (B, C, H, W)``."""

    @staticmethod
    def forward(ctx, input, flow, metric, mode):
        import numpy as np

        batch, channels, height, width = input.shape
        n = batch * height * width
        x, flow32 = _f32(input), _f32(flow)
        metric32 = _f32(metric) if metric is not None else flow32  # a dummy pointer, never read
        num = torch.zeros_like(x)
        den = torch.zeros((batch, 1, height, width), device=x.device, dtype=torch.float32)
        peak = count = den  # dummy pointers outside soft mode, never read
        if mode == "soft":
            peak = torch.full_like(den, float("-inf"))
            count = torch.zeros_like(den)
            _launch("softsplat_peak", n, flow32, metric32, peak, np.int64(n), height, width)
        _launch("softsplat_splat", n, x, flow32, metric32, peak, num, den, count, np.int64(n), channels, height, width,
                MODE_IDS[mode])
        out = num if mode == "sum" else num / (den + EPS)
        ctx.mode = mode
        ctx.dtypes = (input.dtype, flow.dtype, None if metric is None else metric.dtype)
        ctx.save_for_backward(x, flow32, metric32, peak, count, out, den)
        return out.to(input.dtype)

    @staticmethod
    def backward(ctx, grad):
        import numpy as np

        x, flow, metric, peak, count, out, den = ctx.saved_tensors
        batch, channels, height, width = x.shape
        n = batch * height * width
        g = _f32(grad)
        if ctx.mode == "sum":
            s = den  # never read in sum mode
        else:
            g = g / (den + EPS)
            s = -(g * out).sum(dim=1, keepdim=True)
        grad_x, grad_flow, grad_metric = torch.empty_like(x), torch.empty_like(flow), torch.empty_like(den)
        _launch("softsplat_grad", n, x, flow, metric, peak, count, g, s, grad_x, grad_flow, grad_metric, np.int64(n),
                channels, height, width, MODE_IDS[ctx.mode])
        in_dtype, flow_dtype, metric_dtype = ctx.dtypes
        gm = grad_metric.to(metric_dtype) if ctx.mode in ("linear", "soft") else None
        return grad_x.to(in_dtype), grad_flow.to(flow_dtype), gm, None


def softsplat_cupy(input, flow, metric, mode):
    """CuPy ``RawKernel`` softmax splatting for CUDA tensors; inputs pre-checked."""
    if input.device.type != "cuda":
        raise ValueError(f"softsplat: backend='cupy' needs CUDA tensors, got input on {input.device}")
    _cupy()
    return SoftsplatCupy.apply(input, flow, metric, mode)
