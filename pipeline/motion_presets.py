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
    """Keyword arguments of SpectralVAE and MotionUNet, the intended ``(width, height)``, and the
    training recipe ``train``: task name (``vae``, ``motion``, ``motion_stage2``) → the TrainConfig
    fields `gid train` uses when no flag sets them."""

    name: str
    size: tuple[int, int]
    vae: dict = field(default_factory=dict)
    unet: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


PRESETS = {
    "tiny": MotionPreset(
        name="tiny", size=(64, 48),
        vae=dict(block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8),
        unet=dict(block_out_channels=(64, 128), layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                  up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=32, norm_num_groups=16,
                  freq_attention_heads=4),
        # Measured best at 64x48 on a 2-core CPU (docs/motion.md, benchmarks/motion_learning.py): the VAE
        # needs ~2 400 steps to keep the moving pixels' amplitude, v-prediction at lr 1e-3 with EMA 0.995
        # learns fastest in 1 500 steps; one worker with 2 threads is the fastest layout. VAE + U-Net:
        # about 8 minutes of that machine.
        train={"vae": dict(max_steps=2400, batch_size=4, learning_rate=2e-3, ema_decay=0.999, checkpoint_every=400,
                           threads_per_worker=2),
               "motion": dict(max_steps=1500, batch_size=4, learning_rate=1e-3, ema_decay=0.995, checkpoint_every=500,
                              threads_per_worker=2),
               "motion_stage2": dict(max_steps=100, batch_size=2, learning_rate=5e-4, ema_decay=0.99,
                                     checkpoint_every=50, threads_per_worker=2)},
    ),
    "paper": MotionPreset(
        name="paper", size=(256, 160),
        vae=dict(block_out_channels=(128, 256, 512), layers_per_block=2, norm_num_groups=32,
                 mid_block_add_attention=True),
        unet=dict(block_out_channels=(256, 512, 768, 768), layers_per_block=2,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                  up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                  attention_head_dim=64, norm_num_groups=32, freq_attention_heads=8),
        # Not measured here (no GPU was lent to this project): conservative starting points.
        train={"vae": dict(max_steps=2000, batch_size=8, learning_rate=1e-3, ema_decay=0.999, checkpoint_every=200),
               "motion": dict(max_steps=2000, batch_size=8, learning_rate=5e-4, ema_decay=0.999, checkpoint_every=200),
               "motion_stage2": dict(max_steps=2000, batch_size=2, learning_rate=5e-4, ema_decay=0.999,
                                     checkpoint_every=200)},
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


def train_recipe(preset: MotionPreset, task: str, use_gpu: bool = False, **given) -> dict:
    """TrainConfig fields for ``task`` of ``preset``: the preset's recipe, overridden by the ``given``
    values that are not None. CPU threads are capped at the machine's cores; on GPUs they are left to Ray."""
    import os

    recipe = {**preset.train.get(task, {}), **{k: v for k, v in given.items() if v is not None}}
    if use_gpu and given.get("threads_per_worker") is None:
        recipe.pop("threads_per_worker", None)
    elif "threads_per_worker" in recipe and given.get("threads_per_worker") is None:
        recipe["threads_per_worker"] = min(recipe["threads_per_worker"], os.cpu_count() or 1)
    return recipe
