"""``softsplat``: the one entry point for softmax splatting, choosing a backend for the tensors given.

Semantics (paper §5, Niklaus & Liu 2020, shared/METHOD.md "Rendering") are documented in
:mod:`gid.kernels.softsplat_reference`: bilinear forward warping of ``input (B, C, H, W)`` by
``flow (B, 2, H, W)`` in modes ``sum``, ``avg``, ``linear`` and ``soft`` (per-target max subtracted,
so ``|Z|`` up to 1e4 stays finite).

Backends:

- ``"torch"``: vectorised torch with an analytic backward (:mod:`gid.kernels.softsplat_torch`);
  the default for CPU tensors; runs on any device.
- ``"triton"``: Triton forward/backward kernels (:mod:`gid.kernels.softsplat_triton`); the default
  for CUDA tensors, and for CPU tensors when ``TRITON_INTERPRET=1`` is set before Python starts
  (Triton's interpreter: exact but slow, for tests).
- ``"cupy"``: CuPy ``RawKernel`` CUDA kernels (:mod:`gid.kernels.softsplat_cupy`), a peer for the
  benchmark; CUDA tensors only, CuPy imported on first use.
"""
from __future__ import annotations

import os

import torch

from gid.kernels.softsplat_inputs import check_inputs

BACKENDS = ("torch", "triton", "cupy")


def default_backend(device: torch.device) -> str:
    """``"triton"`` on CUDA (and on CPU under ``TRITON_INTERPRET=1``), else ``"torch"``."""
    if device.type == "cuda" or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return "triton"
    return "torch"


def softsplat(
    input: torch.Tensor,
    flow: torch.Tensor,
    metric: torch.Tensor | None = None,
    mode: str = "soft",
    backend: str | None = None,
) -> torch.Tensor:
    """Forward-warp ``input (B, C, H, W)`` by ``flow (B, 2, H, W)`` (pixels, channel 0 = x, 1 = y).

    ``metric (B, 1, H, W)`` is required for ``mode="linear"`` and ``"soft"`` (ignored otherwise).
    Returns ``(B, C, H, W)`` in the dtype of ``input``; float16/bfloat16 accumulate in float32.
    Differentiable with respect to ``input``, ``flow`` and ``metric``.
    ``backend=None`` picks one for the device; see the module docstring for the choices.
    """
    metric = check_inputs(input, flow, metric, mode)
    if backend is None:
        backend = default_backend(input.device)
    if backend == "torch":
        from gid.kernels.softsplat_torch import softsplat_torch

        return softsplat_torch(input, flow, metric, mode)
    if backend == "triton":
        from gid.kernels.softsplat_triton import softsplat_triton

        return softsplat_triton(input, flow, metric, mode)
    if backend == "cupy":
        from gid.kernels.softsplat_cupy import softsplat_cupy

        return softsplat_cupy(input, flow, metric, mode)
    raise ValueError(f"softsplat: backend must be one of {', '.join(BACKENDS)} or None, got {backend!r}")
