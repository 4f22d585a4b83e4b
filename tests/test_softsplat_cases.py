"""Ground truth for the softsplat tests (no tests here): a brute-force per-pixel loop and awkward inputs."""
from __future__ import annotations

import math

import numpy as np
import torch

MODES = ("sum", "avg", "linear", "soft")


def brute_force(x: np.ndarray, flow: np.ndarray, metric: np.ndarray | None, mode: str) -> np.ndarray:
    """Softmax splatting written out pixel by pixel in float64, straight from the formulas.

    ``x (B, C, H, W)``, ``flow (B, 2, H, W)``, ``metric (B, 1, H, W)``; soft mode subtracts the
    per-target max of Z over the sources that reach the target with a positive bilinear weight.
    """
    batch, channels, height, width = x.shape
    num = np.zeros((batch, channels, height, width))
    den = np.zeros((batch, height, width))
    peak = np.full((batch, height, width), -np.inf)

    def corners(b, i, j):
        fx, fy = j + float(flow[b, 0, i, j]), i + float(flow[b, 1, i, j])
        if not (math.isfinite(fx) and math.isfinite(fy)):
            return []
        x0, y0 = math.floor(fx), math.floor(fy)
        out = []
        for cx, cy in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
            weight = (1 - abs(fx - cx)) * (1 - abs(fy - cy))
            if 0 <= cx < width and 0 <= cy < height:
                out.append((cy, cx, weight))
        return out

    sources = [(b, i, j) for b in range(batch) for i in range(height) for j in range(width)]
    if mode == "soft":
        for b, i, j in sources:
            for cy, cx, weight in corners(b, i, j):
                if weight > 0:
                    peak[b, cy, cx] = max(peak[b, cy, cx], float(metric[b, 0, i, j]))
    for b, i, j in sources:
        for cy, cx, weight in corners(b, i, j):
            if mode == "linear":
                weight *= float(metric[b, 0, i, j])
            elif mode == "soft":
                weight *= math.exp(min(float(metric[b, 0, i, j]) - peak[b, cy, cx], 0.0))
            num[b, :, cy, cx] += weight * x[b, :, i, j].astype(np.float64)
            den[b, cy, cx] += weight
    if mode == "sum":
        return num
    return num / (den[:, None] + 1e-7)


def awkward_inputs(batch: int, channels: int, height: int, width: int, seed: int, dtype=torch.float32):
    """Random input, flow and metric with collisions, integer landings, off-frame and NaN/inf flow.

    Flows of a few pixels on a small image make many sources share targets; a quarter of the flow
    is rounded to integers, some of it points far outside the frame and a few entries are NaN/±inf.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, height, width, generator=gen, dtype=torch.float64)
    flow = (torch.rand(batch, 2, height, width, generator=gen, dtype=torch.float64) - 0.5) * 6
    pick = torch.rand(batch, 1, height, width, generator=gen, dtype=torch.float64)
    flow = torch.where(pick < 0.25, flow.round(), flow)
    flow = torch.where((pick > 0.25) & (pick < 0.35), flow * 10, flow)  # mostly leaves the frame
    flow[0, 0, 0, 1] = float("nan")
    flow[-1, 1, 1, 0] = float("inf")
    flow[0, 0, height - 1, width - 2] = float("-inf")
    metric = (torch.rand(batch, 1, height, width, generator=gen, dtype=torch.float64) - 0.5) * 4
    return x.to(dtype), flow.to(dtype), metric.to(dtype)


def smooth_inputs(batch: int, channels: int, height: int, width: int, seed: int, dtype=torch.float64):
    """Inputs for gradient checks: every flow lands at least 0.1 px away from an integer (no kinks)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, height, width, generator=gen, dtype=dtype)
    whole = torch.randint(-2, 3, (batch, 2, height, width), generator=gen).to(dtype)
    frac = 0.1 + 0.8 * torch.rand(batch, 2, height, width, generator=gen, dtype=dtype)
    metric = torch.rand(batch, 1, height, width, generator=gen, dtype=dtype) + 0.5
    return x, whole + frac, metric
