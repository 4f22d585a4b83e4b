"""Untrained model bundles for tests and benchmarks of everything downstream of the motion model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

from gid.pipeline.motion_pipeline import GIDPipeline
from gid.pipeline.motion_presets import get_preset
from gid.pipeline.unet import MotionUNet
from gid.pipeline.vae import SpectralVAE


def write_random_bundle(out: str | Path, num_frames: int, preset: str = "tiny", seed: int = 0,
                        fps: float = 30.0) -> Path:
    """An untrained bundle (random weights, scales ``linspace(2, 0.1, K)``) in the layout training writes.

    For smoke tests and benchmarks of everything downstream of the model (sampling cost, `gid render`,
    `gid serve`) without a training run. Returns ``out``.
    """
    torch.manual_seed(seed)
    spec = get_preset(preset)
    width, height = spec.size
    vae = SpectralVAE(**spec.vae)
    factor = vae.latent_factor
    num_freqs = 16
    unet = MotionUNet(sample_size=(height // factor, width // factor), latent_factor=factor, num_freqs=num_freqs,
                      **{k: v for k, v in spec.unet.items() if k != "freq_attention_heads"})
    GIDPipeline(vae, unet, DDIMScheduler(num_train_timesteps=1000), freq_scales=np.linspace(2.0, 0.1, num_freqs),
                num_frames=num_frames, fps=fps, preset=preset).save_pretrained(out)
    return Path(out)
