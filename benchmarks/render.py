"""Bulk rendering speed: videos/s and frames/s of gid render's actor for batch sizes 1…N,
as a ratio to rendering one photo at a time, all measured in the same run.

    python benchmarks/render.py [--model BUNDLE] [--batch-sizes 1,2,4,8] [--frames 60] [--steps 10]

Without --model, a randomly initialised ``tiny``-preset bundle is written to a temporary folder
(speed does not depend on the weights). The actor's work per batch is what a Ray worker does:
one batched motion-sampling call (DDIM with classifier-free guidance), then per photo the
motion resize, ``irfft`` and the softsplat render. Frames are encoded to MP4 by separate tasks in
`gid render`; the encoder is timed on its own line. Ray's scheduling is not included. Columns ``motion`` and ``render`` split s/video into the batched
sampling call and the per-photo rendering.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gid.testing.bundles import write_random_bundle
from gid.stages.options import parse_size


def photo_batch(count: int, height: int, width: int) -> dict[str, np.ndarray]:
    """A read-stage batch (see gid.stages.bulk_render.read_batch) of ``count`` random photos."""
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]
    return {"source": np.array([f"photo{i}.png" for i in range(count)], dtype=object),
            "name": np.array([f"photo{i}" for i in range(count)], dtype=object),
            "pixels": np.stack(pixels), "height": np.full(count, height), "width": np.full(count, width),
            "motion": np.zeros((count, 0, 4, 0, 0), np.float32), "error": np.array([""] * count, dtype=object)}


def main() -> None:
    from gid.datasets.video_io import write_video
    from gid.stages.bulk_render import MotionRenderer, RenderConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model bundle (default: a random tiny one)")
    parser.add_argument("--batch-sizes", default="1,2,4,8", help="comma-separated batch sizes; 1 is the reference")
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps")
    parser.add_argument("--size", default="128x96", help="photo WIDTHxHEIGHT")
    parser.add_argument("--gpu", action="store_true", help="run the actor on CUDA")
    args = parser.parse_args()
    sizes = sorted({int(b) for b in args.batch_sizes.split(",")} | {1})
    width, height = parse_size(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or write_random_bundle(Path(tmp) / "bundle", args.frames)
        cfg = RenderConfig(model=model, out=Path(tmp) / "out", frames=args.frames, num_inference_steps=args.steps,
                           num_gpus=int(args.gpu), renderer="splat", progress=False)
        actor = MotionRenderer({**cfg.__dict__, "model": str(model), "out": str(cfg.out)})
        print(f"gid render actor, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {actor.device}; {args.frames} frames, {args.steps} DDIM "
              f"steps, photos {width}x{height}, model {'random tiny' if args.model is None else model}")
        actor(photo_batch(1, height, width))  # warm-up
        print(f"{'batch':>5} {'videos/s':>9} {'frames/s':>9} {'s/video':>8} {'motion':>7} {'render':>7} {'vs one at a time':>17}")
        reference = None
        for size in sizes:
            batch = photo_batch(size, height, width)
            start = time.perf_counter()
            result = actor(batch)
            seconds = time.perf_counter() - start
            assert not any(result["error"]), list(result["error"])
            rate = size / seconds
            reference = reference or rate
            render = float(np.sum(result["render_s"]))  # per photo: resize, irfft, splat
            print(f"{size:>5} {rate:>9.3f} {rate * args.frames:>9.1f} {seconds / size:>8.2f} "
                  f"{(seconds - render) / size:>7.2f} {render / size:>7.2f} {rate / reference:>16.2f}x")
        frames = result["frames"][0]
        start = time.perf_counter()
        write_video(Path(tmp) / "bench.mp4", frames, fps=30)
        encode = time.perf_counter() - start
        print(f"MP4 encode (separate CPU tasks in gid render): {args.frames / encode:.0f} frames/s, {encode:.2f} s/video")


if __name__ == "__main__":
    main()
