"""Which clips to keep: measurable reasons to drop a clip before its spectral volume is trained on.

Each measure is stored with the clip (quality columns of the clip table); :func:`assess` returns the
first failed check as the reason:

- ``flow failed``: non-finite flow;
- ``scene cut``: a consecutive-frame difference that jumps far above the clip's typical one
  (``max_t d_t > cut_min`` and ``> cut_ratio·(median_t d_t + 1)``, ``d_t`` = mean absolute grey
  difference between frames t−1 and t, 0–255);
- ``static``: the 99th percentile over pixels of ``max_t ‖F_t(p)‖`` is below ``min_motion`` px — no
  motion worth learning (the paper trains on videos of oscillating scenes);
- ``large motion``: that same percentile exceeds ``max_motion`` × the image diagonal — camera
  motion or a flow failure rather than a swaying scene;
- ``inconsistent flow``: forward-backward check (Sundaram et al. 2010) on ``num_checks`` frames:
  pixel p is inconsistent when ``‖F(p) + B(p+F(p))‖² > 0.01(‖F‖² + ‖B‖²) + 0.5`` with B the flow
  from frame t back to frame 0; the clip fails when the inconsistent fraction exceeds
  ``max_inconsistent``;
- ``photometric``: mean absolute grey error of frame t sampled at ``p + F_t(p)`` against frame 0
  exceeds ``max_photometric`` (0–255) on the same frames.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from gid.pipeline.flow import FlowMethod


@dataclass
class QualityConfig:
    """Thresholds of :func:`assess` (defaults tuned so synthetic swaying plants pass)."""

    min_motion: float = 0.5
    max_motion: float = 0.25
    cut_min: float = 12.0
    cut_ratio: float = 4.0
    max_inconsistent: float = 0.3
    max_photometric: float = 20.0
    num_checks: int = 4


@dataclass
class QualityReport:
    """The measures of one clip and the reason it is dropped (``None``: kept)."""

    motion_mean: float
    motion_p99: float
    cut_score: float
    inconsistent_frac: float
    photometric_error: float
    reason: str | None

    def columns(self) -> dict:
        """The measures as clip-table columns (``reason`` excluded)."""
        out = asdict(self)
        out.pop("reason")
        return out


def _sample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image (H, W, C?)`` bilinearly sampled at ``p + flow(p)``; ``flow (2, H, W)``."""
    height, width = flow.shape[1:]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[0], grid_y + flow[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def scene_cut_score(frames: np.ndarray) -> tuple[float, float]:
    """``(max_t d_t, median_t d_t)`` of consecutive-frame mean absolute grey differences.

    Luma stays uint8 (one cvtColor over the stacked frames) and ``cv2.norm`` sums ``|a − b|`` exactly
    in integers: the same values as float32 differences, 64 → 1.9 ms at T = 150, 256×160 (loaded machine).
    """
    num, height, width = frames.shape[:3]
    grey = cv2.cvtColor(np.ascontiguousarray(frames).reshape(num * height, width, 3), cv2.COLOR_RGB2GRAY)
    grey = grey.reshape(num, height, width)
    diffs = np.array([cv2.norm(grey[t + 1], grey[t], cv2.NORM_L1) for t in range(num - 1)]) / (height * width)
    return float(diffs.max()), float(np.median(diffs))


def consistency(frames: np.ndarray, traj: np.ndarray, flow: FlowMethod, num_checks: int) -> tuple[float, float]:
    """``(inconsistent fraction, photometric error)`` on ``num_checks`` evenly spaced frames t ≥ 1.

    ``frames (T, H, W, 3)`` uint8, ``traj (T, 2, H, W)`` the forward flows from frame 0.
    """
    num_frames = len(frames)
    ts = np.unique(np.linspace(1, num_frames - 1, num_checks).round().astype(int))
    backward = flow.pairs(frames[ts], np.broadcast_to(frames[0], frames[ts].shape))  # (n, 2, H, W)
    grey0 = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    bad, photo = [], []
    for i, t in enumerate(ts):
        fwd = traj[t]
        bwd = _sample(np.ascontiguousarray(backward[i].transpose(1, 2, 0)), fwd).transpose(2, 0, 1)
        err = ((fwd + bwd) ** 2).sum(0)
        bound = 0.01 * ((fwd**2).sum(0) + (bwd**2).sum(0)) + 0.5
        bad.append(float((err > bound).mean()))
        greyt = cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
        photo.append(float(np.abs(_sample(greyt, fwd) - grey0).mean()))
    return float(np.mean(bad)), float(np.mean(photo))


def assess(frames: np.ndarray, traj: np.ndarray, flow: FlowMethod, config: QualityConfig | None = None) -> QualityReport:
    """Measure one clip and decide whether to keep it.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        traj: ``(T, 2, H, W)`` float32 flows from frame 0 (§3).
        flow: the method that made ``traj`` (used for the backward flows of the consistency check).
    """
    cfg = config or QualityConfig()
    height, width = frames.shape[1:3]
    if not np.isfinite(traj).all():
        return QualityReport(float("nan"), float("nan"), 0.0, 1.0, float("nan"), "flow failed")
    magnitude = np.stack([cv2.magnitude(f[0], f[1]) for f in traj])  # (T, H, W) ‖F_t(p)‖, SIMD per frame
    motion_mean = float(magnitude.mean())
    motion_p99 = float(np.percentile(magnitude.max(axis=0), 99))
    cut_max, cut_median = scene_cut_score(frames)
    inconsistent, photometric = consistency(frames, traj, flow, cfg.num_checks)
    report = QualityReport(motion_mean, motion_p99, cut_max, inconsistent, photometric, None)
    if cut_max > cfg.cut_min and cut_max > cfg.cut_ratio * (cut_median + 1.0):
        report.reason = "scene cut"
    elif motion_p99 < cfg.min_motion:
        report.reason = "static"
    elif motion_p99 > cfg.max_motion * float(np.hypot(height, width)):
        report.reason = "large motion"
    elif inconsistent > cfg.max_inconsistent:
        report.reason = "inconsistent flow"
    elif photometric > cfg.max_photometric:
        report.reason = "photometric"
    return report
