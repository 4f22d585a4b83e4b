"""Evaluation speed: gid's metric code vs the reference computations, measured in the same run.

    python benchmarks/evaluate.py [--dims 400 2048] [--samples 2000] [--frames 32] [--repeats 3]

Prints ms and the ratio (reference time / gid time; > 1 means gid is faster) for

- Fréchet distance: gid's eigen-decomposition form vs ``scipy.linalg.sqrtm(Σ1 Σ2)`` (the pytorch-fid
  computation), at the feature sizes of I3D logits (400) and Inception pool (2048); also the
  relative difference of the two values;
- KID (×100, one subset of all samples): gid's matrix form vs a per-row loop over the kernel;
- feature extraction on this CPU (random weights, full input sizes 299 / 224): Inception frames/s,
  I3D 16-frame clips/s, against decoding the same frames with PyAV (the floor of a video pipeline);
- motion metrics: optical flow (DIS medium) of a 150-frame 256×160 clip, frame 0 → every frame.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
from timing import best_ms


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    import scipy.linalg

    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def loop_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² ×100, one kernel row at a time (reference)."""
    m, d = x.shape
    kxx = kyy = kxy = 0.0
    for i in range(m):
        rxx = (x @ x[i] / d + 1) ** 3
        ryy = (y @ y[i] / d + 1) ** 3
        kxx += rxx.sum() - rxx[i]
        kyy += ryy.sum() - ryy[i]
        kxy += ((y @ x[i] / d + 1) ** 3).sum()
    return 100 * ((kxx + kyy) / (m * (m - 1)) - 2 * kxy / (m * m))


def main() -> None:
    import torch

    from gid.datasets.synthetic import SynthConfig, generate_video
    from gid.datasets.video_io import read_video, write_video
    from gid.pipeline.feature_nets import I3DFeatures, InceptionV3Features
    from gid.pipeline.flow import make_flow
    from gid.pipeline.video_metrics import feature_statistics, frechet_distance, kernel_inception_distance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[400, 2048], help="feature sizes for Fréchet")
    parser.add_argument("--samples", type=int, default=2000, help="feature vectors per set")
    parser.add_argument("--frames", type=int, default=32, help="frames through the feature nets")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is printed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)")

    rng = np.random.default_rng(0)
    for dim in args.dims:
        a = rng.standard_normal((args.samples, dim)) @ rng.standard_normal((dim, dim)) / np.sqrt(dim)
        b = rng.standard_normal((args.samples, dim)) @ rng.standard_normal((dim, dim)) / np.sqrt(dim) + 0.1
        stats = (*feature_statistics(a), *feature_statistics(b))
        ours = best_ms(lambda: frechet_distance(*stats), args.repeats)
        ref = best_ms(lambda: scipy_frechet(*stats), args.repeats)
        diff = abs(frechet_distance(*stats) - scipy_frechet(*stats)) / scipy_frechet(*stats)
        print(f"Fréchet D={dim:5d}: gid {ours:8.1f} ms, scipy sqrtm {ref:8.1f} ms, ratio {ref / ours:5.2f}, "
              f"values differ by {diff:.1e} (relative)")

    x = rng.standard_normal((1000, 2048))
    y = rng.standard_normal((1000, 2048)) + 0.05
    ours = best_ms(lambda: kernel_inception_distance(x, y, num_subsets=1, subset_size=1000), args.repeats)
    ref = best_ms(lambda: loop_kid(x, y), 1)
    print(f"KID m=1000 D=2048 (one subset): gid {ours:8.1f} ms, row loop {ref:8.1f} ms, ratio {ref / ours:5.2f}")

    video = generate_video(0, 0, SynthConfig(num_frames=150))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        write_video(path, video.frames, 30)
        decode = best_ms(lambda: read_video(path, max_frames=args.frames), args.repeats) / args.frames
        flow = make_flow("dis-medium")
        flow_ms = best_ms(lambda: flow.trajectories(video.frames), 1)
    frames = torch.rand(args.frames, 3, 128, 256)
    inception = InceptionV3Features().eval()
    i3d = I3DFeatures().eval()
    with torch.inference_mode():
        inc_ms = best_ms(lambda: inception(frames[:8]), args.repeats) / 8
        clip = frames[:16].permute(1, 0, 2, 3)[None]
        i3d_ms = best_ms(lambda: i3d(clip), args.repeats)
    print(f"decode (PyAV, 256x160):  {decode:7.2f} ms/frame")
    print(f"Inception (299 px):      {inc_ms:7.1f} ms/frame = {1000 / inc_ms:6.1f} frames/s, "
          f"{inc_ms / decode:6.0f}x decode")
    print(f"I3D (224 px, 16 frames): {i3d_ms:7.1f} ms/clip  = {1000 / i3d_ms:6.2f} clips/s, "
          f"{i3d_ms / (16 * decode):6.0f}x decoding its frames")
    print(f"flow for motion metrics: {flow_ms:7.0f} ms per 150-frame clip, {flow_ms / (150 * decode):6.1f}x decode")


if __name__ == "__main__":
    main()
