"""Does the trained renderer beat softmax splatting? PSNR/SSIM against real frames of held-out clips.

Trains a FrameRenderer with `gid train renderer`'s task on synthetic clips with exact motion
(seed 0), then renders held-out clips (seed 1000, never seen) with the true motion, by the splat
baseline and by the trained renderer, and prints both on all pixels, on pixels that change, and on
disocclusion holes (gid.testing.render_eval). Reference in the same run: the splat baseline.

    python benchmarks/renderer_quality.py [--train 24] [--test 6] [--size 128x80] [--steps 600]
        [--lpips-vgg VGG16.pth --lpips-lin vgg.pth]   # adds LPIPS from local weights
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from gid.stages.options import parse_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=24, help="training videos")
    parser.add_argument("--test", type=int, default=6, help="held-out videos")
    parser.add_argument("--targets", type=int, default=8, help="target frames per training video")
    parser.add_argument("--frames", type=int, default=60, help="frames per video (T)")
    parser.add_argument("--size", default="128x80", help="WIDTHxHEIGHT")
    parser.add_argument("--steps", type=int, default=600, help="training steps")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--out", default=None, help="bundle folder (default: a temporary one)")
    parser.add_argument("--lpips-vgg", default=None, help="torchvision VGG-16 weights or an LPIPS save_pretrained folder")
    parser.add_argument("--lpips-lin", default=None, help="LPIPS release lin weights (weights/v0.1/vgg.pth)")
    args = parser.parse_args()

    from gid.datasets.render_pairs import write_synthetic_render_clips
    from gid.datasets.synthetic import SynthConfig, generate_video
    from gid.pipeline.lpips import load_lpips
    from gid.testing.render_eval import compare_on_videos
    from gid.pipeline.renderer_training import RendererTask
    from gid.pipeline.training_loop import TrainConfig
    from gid.stages.training import fit

    lpips = load_lpips(args.lpips_vgg, args.lpips_lin) if args.lpips_vgg else None
    width, height = parse_size(args.size)
    cfg = SynthConfig(num_frames=args.frames, width=width, height=height)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic_render_clips(Path(tmp) / "pairs", args.train, cfg, seed=0, target_frames=args.targets)
        start = time.perf_counter()
        result = fit(RendererTask(data, "tiny"), TrainConfig(max_steps=args.steps, batch_size=args.batch_size,
                                                            learning_rate=args.learning_rate, checkpoint_every=args.steps,
                                                            log_every=max(1, args.steps // 10)),
                     args.out or Path(tmp) / "bundle")
        train_s = time.perf_counter() - start
        from gid.pipeline.frame_renderer import FrameRenderer

        renderer = FrameRenderer.from_pretrained(result.model_dir)
    videos = [generate_video(1000, i, cfg) for i in range(args.test)]
    times = np.linspace(1, args.frames - 1, 8).round().astype(int)
    scores = compare_on_videos(videos, renderer, times, lpips)
    print(f"{args.train} training videos x {args.targets} pairs, {args.steps} steps in {train_s:.0f} s; "
          f"{args.test} held-out videos x {len(times)} frames at {width}x{height}")
    keys = list(scores["splat"])
    print("| renderer | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in scores.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" if "ssim" in k or k == "lpips" else f"{row[k]:.2f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
