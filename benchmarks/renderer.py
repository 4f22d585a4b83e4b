"""Frames/s of rendering at 256x160 (paper: 25 fps on a V100): splat baseline and FrameRenderer.

Reference measured in the same run: backward warping of the frame with ``cv2.remap`` (bilinear),
the cheapest possible way to move pixels, which cannot handle occlusion. Printed ratios are
``time / reference time`` (lower is better).

    python benchmarks/renderer.py [--frames 32] [--repeats 3] [--size 256x160] [--batch 8] [--device cpu]
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from gid.datasets.synthetic import SynthConfig, generate_video
from gid.pipeline.warping import render_video
from gid.pipeline.frame_renderer import FrameRenderer
from gid.stages.options import parse_size
from timing import best_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32, help="frames rendered per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings per method (the best is kept)")
    parser.add_argument("--size", default="256x160", help="WIDTHxHEIGHT")
    parser.add_argument("--batch", type=int, default=8, help="frames per renderer call")
    parser.add_argument("--device", default="cpu", help="torch device of the learned renderer")
    args = parser.parse_args()
    width, height = parse_size(args.size)
    video = generate_video(0, 0, SynthConfig(num_frames=args.frames, width=width, height=height))
    image, traj = video.frames[0], video.trajectories
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))

    def remap():
        for t in range(len(traj)):
            cv2.remap(image, grid_x - traj[t, 0], grid_y - traj[t, 1], cv2.INTER_LINEAR)

    renderers = {"splat baseline": None}
    for preset in ("tiny", "paper"):
        torch.manual_seed(0)
        renderers[f"FrameRenderer {preset}"] = FrameRenderer.from_preset(preset).to(args.device).eval()
    ref = best_ms(remap, args.repeats) / 1000
    print(f"{width}x{height}, {args.frames} frames, torch threads {torch.get_num_threads()}, device {args.device}")
    print(f"{'cv2.remap (reference)':24s} {args.frames / ref:9.1f} frames/s   1.00x")
    for name, renderer in renderers.items():
        t = best_ms(lambda: render_video(image, traj, renderer, batch_size=args.batch), args.repeats) / 1000
        print(f"{name:24s} {args.frames / t:9.1f} frames/s {t / ref:7.1f}x")


if __name__ == "__main__":
    main()
