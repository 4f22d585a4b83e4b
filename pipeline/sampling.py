"""Sampling defaults of the motion model, shared by every command that samples motion.

`gid animate`, `gid render`, `gid interact`, `gid serve`, `gid demo` and ``GIDPipeline.__call__``
read :data:`SAMPLING`; :func:`check_sampling` gives the one-line error for values out of range. No
torch here, so the command line imports it at start-up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_GUIDANCE = 20.0  # beyond this the guided noise is dominated by (1+w)·ε and leaves the latent range


@dataclass(frozen=True)
class SamplingConfig:
    """How one spectral volume is sampled by default (docs/motion.md, "Sampling defaults").

    Measured on held-out synthetic images for ONE sample per image (what a render shows): guidance
    w = 0 scored a lower moving-pixel amplitude error than w = 0.5, 1 and the paper's 1.75, and 25
    DDIM steps as low as 50 (η = 0).
    """

    num_inference_steps: int = 25
    guidance_scale: float = 0.0

    def __post_init__(self) -> None:
        check_sampling(self.num_inference_steps, self.guidance_scale)


def check_sampling(num_inference_steps: int, guidance_scale: float, num_train_timesteps: int = 1000) -> None:
    """ValueError (one line, naming the value) for DDIM steps or a guidance weight out of range."""
    if not isinstance(num_inference_steps, (int, np.integer)) or not 1 <= num_inference_steps <= num_train_timesteps:
        raise ValueError(f"DDIM steps out of range (--steps {num_inference_steps}); give an integer from 1 to "
                         f"{num_train_timesteps}, the scheduler's training timesteps")
    if not (isinstance(guidance_scale, (int, float, np.number)) and math.isfinite(guidance_scale)
            and 0.0 <= guidance_scale <= MAX_GUIDANCE):
        raise ValueError(f"guidance weight out of range (w = {guidance_scale}); give a number from 0 (no "
                         f"classifier-free guidance) to {MAX_GUIDANCE:g}")


SAMPLING = SamplingConfig()
