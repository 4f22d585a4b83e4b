"""CuPy backend: its CUDA C source, compiled for the host by g++ with a one-thread-at-a-time CUDA
shim, checked against the brute-force loop (forward) and the reference's gradients (backward).
No GPU or CuPy is needed; on a GPU machine the benchmark runs the same source through CuPy.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from gid.kernels import softsplat, softsplat_reference
from gid.kernels.softsplat_cupy import CUDA_SOURCE, MODE_IDS, THREADS
from gid.kernels.softsplat_inputs import EPS
from test_softsplat_cases import MODES, awkward_inputs, brute_force

# Sequential stand-ins for the CUDA built-ins the kernels use; each launch runs every thread in turn.
SHIM = r"""
#include <math.h>
#include <cmath>
#include <cstring>
using std::isfinite;
struct Dim3 { unsigned x, y, z; };
static Dim3 blockIdx, blockDim, threadIdx;
#define __global__
#define __device__
#define __forceinline__ inline
static inline float atomicAdd(float* a, float v) { float o = *a; *a = o + v; return o; }
static inline int atomicMax(int* a, int v) { int o = *a; if (v > o) *a = v; return o; }
static inline unsigned atomicMin(unsigned* a, unsigned v) { unsigned o = *a; if (v < o) *a = v; return o; }
static inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
static inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
"""
LAUNCHERS = r"""
#define GRID(call) blockDim.x = threads; \
    for (unsigned b = 0; b < blocks; ++b) \
        for (unsigned t = 0; t < threads; ++t) { blockIdx.x = b; threadIdx.x = t; call; }
extern "C" void run_peak(unsigned blocks, unsigned threads, const float* flow, const float* metric, float* peak,
                         long long n, int H, int W) { GRID(softsplat_peak(flow, metric, peak, n, H, W)) }
extern "C" void run_splat(unsigned blocks, unsigned threads, const float* x, const float* flow, const float* metric,
                          const float* peak, float* num, float* den, float* count, long long n, int C, int H, int W,
                          int mode) { GRID(softsplat_splat(x, flow, metric, peak, num, den, count, n, C, H, W, mode)) }
extern "C" void run_grad(unsigned blocks, unsigned threads, const float* x, const float* flow, const float* metric,
                         const float* peak, const float* count, const float* g, const float* s, float* gx, float* gflow,
                         float* gmetric, long long n, int C, int H, int W, int mode) {
    GRID(softsplat_grad(x, flow, metric, peak, count, g, s, gx, gflow, gmetric, n, C, H, W, mode)) }
"""


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("softsplat_cuda_host")
    source = folder / "softsplat.cpp"
    source.write_text(SHIM + CUDA_SOURCE + LAUNCHERS)
    compiler = shutil.which("g++") or shutil.which("c++")
    assert compiler, "a C++ compiler (g++) is needed to check the CUDA source on the host"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-o", str(folder / "softsplat.so"), str(source)], check=True)
    return ctypes.CDLL(str(folder / "softsplat.so"))


def _ptr(array: np.ndarray):
    return array.ctypes.data_as(ctypes.c_void_p)


def run_host(lib, x, flow, metric, mode, grad_out):
    """Forward and backward exactly as SoftsplatCupy orchestrates them, with the kernels run on the host."""
    batch, channels, height, width = x.shape
    n = batch * height * width
    blocks = (n + THREADS - 1) // THREADS
    x, flow, metric = (np.ascontiguousarray(t.numpy(), dtype=np.float32) for t in (x, flow, metric))
    num = np.zeros_like(x)
    den = np.zeros((batch, 1, height, width), np.float32)
    peak = np.full_like(den, -np.inf)
    count = np.zeros_like(den)
    dims = (ctypes.c_longlong(n), ctypes.c_int(channels), ctypes.c_int(height), ctypes.c_int(width))
    if mode == "soft":
        lib.run_peak(blocks, THREADS, _ptr(flow), _ptr(metric), _ptr(peak), dims[0], dims[2], dims[3])
    lib.run_splat(blocks, THREADS, _ptr(x), _ptr(flow), _ptr(metric), _ptr(peak), _ptr(num), _ptr(den), _ptr(count),
                  *dims, MODE_IDS[mode])
    out = num if mode == "sum" else num / (den + np.float32(EPS))
    g = np.ascontiguousarray(grad_out.numpy(), dtype=np.float32)
    s = np.zeros_like(den)
    if mode != "sum":
        g = g / (den + np.float32(EPS))
        s = np.ascontiguousarray(-(g * out).sum(axis=1, keepdims=True))
    gx, gflow, gmetric = np.zeros_like(x), np.zeros_like(flow), np.zeros_like(den)
    lib.run_grad(blocks, THREADS, _ptr(x), _ptr(flow), _ptr(metric), _ptr(peak), _ptr(count), _ptr(g), _ptr(s),
                 _ptr(gx), _ptr(gflow), _ptr(gmetric), *dims, MODE_IDS[mode])
    return out, (gx, gflow, gmetric)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(2, 1, 17, 19), (2, 64, 5, 6)])
def test_cuda_source_matches_brute_force_and_reference_gradients(host_kernels, mode, shape):
    """646 pixels span three 256-thread blocks; C=64 loops over channels."""
    x, flow, metric = awkward_inputs(*shape, seed=40 + MODES.index(mode) + shape[1])
    if mode == "linear":
        metric = metric.abs() + 0.1
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    out, grads = run_host(host_kernels, x, flow, metric, mode, grad_out)
    expected = brute_force(x.numpy(), flow.numpy(), metric.numpy(), mode)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    leaves = [t.double().requires_grad_() for t in (x, flow, metric)]
    used = 3 if mode in ("linear", "soft") else 2
    ref = torch.autograd.grad(softsplat_reference(*leaves, mode=mode), leaves[:used], grad_out.double())
    for got, want in zip(grads, ref):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=5e-5)


def test_huge_metric_stays_finite(host_kernels):
    x, flow, metric = awkward_inputs(1, 3, 8, 7, seed=9)
    out, grads = run_host(host_kernels, x, flow, metric * 5e3, "soft", torch.ones(1, 3, 8, 7))
    assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads)
    expected = brute_force(x.numpy(), flow.numpy(), (metric * 5e3).numpy(), "soft")
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_soft_gradient_includes_the_max_term_at_nearly_empty_targets(host_kernels):
    """One source per target: the result cannot depend on Z, so ∂L/∂Z = 0 (0.25 without the ε·∂M term)."""
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    flow = torch.tensor([[[[1e-7, 1.0, 1.0]], [[0.0, 0.0, 0.0]]]])
    metric = torch.tensor([[[[0.3, 1.5, 0.7]]]])
    out, (_, _, grad_metric) = run_host(host_kernels, x, flow, metric, "soft", torch.ones(1, 1, 1, 3))
    np.testing.assert_allclose(out[0, 0, 0], [1.0, 0.5, 2.0], rtol=1e-5)
    np.testing.assert_allclose(grad_metric, 0.0, atol=1e-3)


def test_missing_cupy_is_a_clear_error(monkeypatch):
    from gid.kernels import softsplat_cupy

    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail as if it were absent
    with pytest.raises(ValueError, match=r"backend='cupy' needs CuPy.*pip install"):
        softsplat_cupy._cupy()


def test_cupy_backend_refuses_cpu_tensors():
    with pytest.raises(ValueError, match="CUDA tensors"):
        softsplat(torch.rand(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), mode="sum", backend="cupy")
