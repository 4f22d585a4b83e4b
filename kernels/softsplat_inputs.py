"""Argument checks shared by every softmax-splatting backend, so all of them refuse bad input alike.

Shapes: ``input (B, C, H, W)``, ``flow (B, 2, H, W)`` in pixels (channel 0 = x, 1 = y),
``metric (B, 1, H, W)`` (used by ``linear`` and ``soft``; ignored by ``sum`` and ``avg``).
"""
from __future__ import annotations

import torch

MODES = ("sum", "avg", "linear", "soft")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
EPS = 1e-7
"""Added to the denominator of the normalised modes (Niklaus & Liu 2020; shared/METHOD.md)."""


def _check_tensor(name: str, value, ndim: int) -> None:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"softsplat: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() != ndim:
        raise ValueError(f"softsplat: {name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if value.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"softsplat: {name} must be float16, bfloat16, float32 or float64, got {value.dtype}; "
            f"convert it with .float()"
        )


def check_inputs(input, flow, metric, mode: str) -> torch.Tensor | None:
    """Validate the arguments of ``softsplat``; returns ``metric`` if the mode uses it, else ``None``.

    Raises ``ValueError`` naming the offending argument and saying what was expected.
    """
    if mode not in MODES:
        raise ValueError(f"softsplat: mode must be one of {', '.join(MODES)}, got {mode!r}")
    _check_tensor("input", input, 4)
    _check_tensor("flow", flow, 4)
    batch, channels, height, width = input.shape
    if min(batch, channels, height, width) == 0:
        raise ValueError(f"softsplat: input must not be empty, got shape {tuple(input.shape)}")
    if tuple(flow.shape) != (batch, 2, height, width):
        raise ValueError(
            f"softsplat: flow must have shape (B, 2, H, W) = {(batch, 2, height, width)} to match input "
            f"{tuple(input.shape)}, got {tuple(flow.shape)}"
        )
    if flow.device != input.device:
        raise ValueError(f"softsplat: flow is on {flow.device} but input is on {input.device}; move both to one device")
    if mode in ("sum", "avg"):
        return None
    if metric is None:
        raise ValueError(f"softsplat: mode {mode!r} needs a metric of shape (B, 1, H, W); pass metric=...")
    _check_tensor("metric", metric, 4)
    if tuple(metric.shape) != (batch, 1, height, width):
        raise ValueError(
            f"softsplat: metric must have shape (B, 1, H, W) = {(batch, 1, height, width)} to match input "
            f"{tuple(input.shape)}, got {tuple(metric.shape)}"
        )
    if metric.device != input.device:
        raise ValueError(f"softsplat: metric is on {metric.device} but input is on {input.device}")
    return metric


def work_dtype(input: torch.Tensor) -> torch.dtype:
    """float64 stays float64 (gradcheck, exact tests); float16/bfloat16/float32 accumulate in float32."""
    return torch.float64 if input.dtype == torch.float64 else torch.float32
