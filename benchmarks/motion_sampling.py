"""Cost of motion sampling (the hot path of `gid animate`/`gid render`), as ratios to one plain U-Net pass.

Reference, measured in the same run: the denoiser alone on one image's K slices. Then one DDIM
step with classifier-free guidance (two passes, batched), the same with looping guidance (denoiser
forward + backward, VAE decoder, inverse DFT, × 2 self-recurrence), and a whole sample.
Random weights, `tiny` preset at 64×48 (or --size), CPU threads as given.

    python benchmarks/motion_sampling.py --repeats 5
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from gid.stages.options import parse_size


def timed(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tic)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from diffusers import DDIMScheduler

    from gid.pipeline import GIDPipeline
    from gid.pipeline.motion_presets import get_preset
    from gid.pipeline.unet import MotionUNet
    from gid.pipeline.vae import SpectralVAE

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    preset = get_preset(args.preset)
    width, height = parse_size(args.size)
    k = 16
    vae = SpectralVAE(**preset.vae)
    f = vae.latent_factor
    unet = MotionUNet(sample_size=(height // f, width // f), latent_factor=f, num_freqs=k, freq_attention=True,
                      **preset.unet)
    pipe = GIDPipeline(vae, unet, DDIMScheduler(clip_sample=False), freq_scales=np.ones(k), num_frames=150, fps=30.0)
    image = torch.rand(1, 3, height, width)
    z = torch.randn(k, 4, height // f, width // f)
    freq, cond = torch.arange(k), torch.rand(k, 3, height, width) * 2 - 1
    t = torch.tensor(500)
    with torch.no_grad():
        reference = timed(lambda: unet(z, t, freq, cond), args.repeats)
        rows = {
            "U-Net pass, K slices (reference)": reference,
            "U-Net pass, frequency attention off": timed(lambda: unet(z, t, freq, cond, use_freq_attention=False),
                                                         args.repeats),
            "guided step (CFG, w=1.75)": timed(lambda: pipe._eps(z, t, freq, cond, 1.75), args.repeats),
            "guided step + looping gradient": timed(
                lambda: pipe._guided_eps_and_seam_gradient(z, t, freq, cond, 1.75, torch.tensor(0.5), 1), args.repeats),
            "sample, 10 DDIM steps": timed(lambda: pipe(image, num_inference_steps=10, progress=False), 1),
            "sample, 10 steps, looping (×2 recurrence)": timed(
                lambda: pipe(image, num_inference_steps=10, loop=True, progress=False), 1),
        }
    print(f"preset {args.preset}, {width}x{height}, K={k}, {args.threads} threads; best of {args.repeats}")
    for name, seconds in rows.items():
        print(f"{name:44s} {seconds * 1000:9.1f} ms   {seconds / reference:6.1f}x reference")


if __name__ == "__main__":
    main()
