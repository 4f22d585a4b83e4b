"""Model size presets of the motion diffusion model: ``tiny`` (CPU, tests, demo) and ``paper``.

A preset fixes the architecture of the SpectralVAE and the MotionUNet; the spectral resolution
comes from the training data (``size`` is the resolution the preset is meant for: ``gid synth`` /
``gid preprocess --size``). The paper trains at 256×160 with K = 16 (§7); it does not state the VAE
factor, gid records it (f = 4 for both presets here).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MotionPreset:
    """Keyword arguments of SpectralVAE and MotionUNet, and the intended ``(width, height)``."""

    name: str
    size: tuple[int, int]
    vae: dict = field(default_factory=dict)
    unet: dict = field(default_factory=dict)


PRESETS = {
    "tiny": MotionPreset(
        name="tiny", size=(64, 48),
        vae=dict(block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8),
        unet=dict(block_out_channels=(64, 128), layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                  up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=32, norm_num_groups=16,
                  freq_attention_heads=4),
    ),
    "paper": MotionPreset(
        name="paper", size=(256, 160),
        vae=dict(block_out_channels=(128, 256, 512), layers_per_block=2, norm_num_groups=32,
                 mid_block_add_attention=True),
        unet=dict(block_out_channels=(256, 512, 768, 768), layers_per_block=2,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                  up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                  attention_head_dim=64, norm_num_groups=32, freq_attention_heads=8),
    ),
}


def get_preset(name: str) -> MotionPreset:
    """The preset called ``name``; ValueError listing the choices otherwise."""
    if name not in PRESETS:
        raise ValueError(f"--config must be one of {', '.join(PRESETS)}, got {name!r}")
    return PRESETS[name]


def spatial_multiple(preset: MotionPreset) -> int:
    """Data width and height must be multiples of this: VAE factor × U-Net downsampling."""
    vae_levels = len(preset.vae["block_out_channels"])
    unet_levels = len(preset.unet["block_out_channels"])
    return 2 ** (vae_levels - 1) * 2 ** (unet_levels - 1)
