"""Command-line options and values shared by several `gid` subcommands, each said once."""
from __future__ import annotations

import typer

from gid.pipeline.sampling import SAMPLING

# How motion is sampled from a photo: one flag, one default (gid.pipeline.sampling) and one help for
# gid animate, render, interact and serve. `--guidance` is kept as an alias of `--guidance-scale`.
STEPS = typer.Option(SAMPLING.num_inference_steps, "--steps",
                     help="With a model: DDIM denoising steps (the paper uses 250; fewer is faster and coarser).")
GUIDANCE_SCALE = typer.Option(SAMPLING.guidance_scale, "--guidance-scale", "--guidance",
                              help="With a model: classifier-free guidance weight w (the paper uses 1.75; the default "
                                   "is what measured best for one sample, docs/motion.md).")
SAMPLE_SEED = typer.Option(0, "--seed", help="With a model: seed of the motion sampler; a photo's noise depends "
                                             "only on it and the photo, not on the batch.")


def parse_size(text: str, name: str = "--size") -> tuple[int, int]:
    """'256x160' → (256, 160): width then height, as the paper writes its resolution."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{name} must look like WIDTHxHEIGHT, e.g. 256x160; got {text!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"{name} must be positive, got {text!r}")
    return width, height


def parse_pair(text: str, name: str) -> tuple[float, float]:
    """'3,4' → (3.0, 4.0), for points and forces."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{name} must look like A,B (two numbers), got {text!r}") from None
    return a, b
