"""Judging a renderer against real frames, on all pixels and on the pixels where rendering is hard.

Most pixels of a frame are static background that any renderer copies exactly, so whole-frame
averages hide what a learned renderer changes. Every score is therefore also reported on

- ``changed``: pixels where the real frame t differs from frame 0 by more than 10/255 in some
  channel (moving objects, their edges, disocclusions);
- ``holes``: pixels where softmax splatting lands (almost) nothing (``valid = 0`` of
  :func:`gid.pipeline.warping.splat_frames`): disocclusions, which the baseline fills by push-pull.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch

from gid.pipeline.image_quality import psnr, ssim
from gid.pipeline.warping import motion_metric, splat_frames, splat_metric


def frame_scores(pred: torch.Tensor, target: torch.Tensor, source: torch.Tensor, valid: torch.Tensor,
                 lpips: Any = None) -> dict[str, float]:
    """PSNR/SSIM of ``pred`` against ``target`` (``(B, 3, H, W)`` in [0, 1]) on all, changed and hole pixels;
    plus whole-frame LPIPS (lower is better) when an :class:`~gid.pipeline.lpips.LPIPS` model is given."""
    pred = (pred.clamp(0, 1) * 255).round() / 255  # scores of the 8-bit frames a video holds
    changed = (target - source).abs().amax(dim=1, keepdim=True) > 10 / 255
    holes = valid < 0.5
    scores = {"psnr": psnr(pred, target), "ssim": ssim(pred, target),
              "psnr_changed": psnr(pred, target, changed), "ssim_changed": ssim(pred, target, changed),
              "psnr_holes": psnr(pred, target, holes)}
    if lpips is not None:
        with torch.no_grad():
            scores["lpips"] = float(lpips(pred, target).mean())
    return scores


def compare_on_videos(videos: Iterable[Any], renderer: Any, times: Iterable[int],
                      lpips: Any = None) -> dict[str, dict[str, float]]:
    """Mean scores of the splat baseline and ``renderer`` over frames ``times`` of synthetic ``videos``.

    Args:
        videos: :class:`gid.datasets.synthetic.SynthVideo` objects (exact frames and trajectories).
        renderer: a :class:`~gid.pipeline.frame_renderer.FrameRenderer`.
        times: frame indices t ≥ 1 rendered from frame 0 of each video.
        lpips: optional :class:`~gid.pipeline.lpips.LPIPS` model (local weights) adding an ``lpips`` score.

    Returns:
        ``{"splat": {score: mean}, "renderer": {score: mean}}`` (keys of :func:`frame_scores`).
    """
    times = list(times)
    sums: dict[str, dict[str, list[float]]] = {"splat": {}, "renderer": {}}
    renderer.eval()
    for video in videos:
        traj = torch.from_numpy(video.trajectories)
        metric = splat_metric(motion_metric(traj)[None]).expand(len(times), -1, -1, -1)
        source = torch.from_numpy(video.frames[0]).permute(2, 0, 1)[None].float().div(255).expand(len(times), -1, -1, -1)
        target = torch.from_numpy(video.frames[times]).permute(0, 3, 1, 2).float().div(255)
        flow = traj[times]
        with torch.no_grad():
            base, valid = splat_frames(source, flow, metric)
            learned = renderer(source, flow, metric)
        for name, pred in (("splat", base), ("renderer", learned)):
            for key, value in frame_scores(pred, target, source, valid, lpips).items():
                sums[name].setdefault(key, []).append(value)
    return {name: {k: float(np.nanmean(v)) for k, v in scores.items()} for name, scores in sums.items()}
