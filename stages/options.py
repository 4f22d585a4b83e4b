"""Parsing and range checks of command-line values shared by several `gid` subcommands, and options
declared once: on the fields of a command's config dataclass (:func:`option`, :func:`config_options`),
or, for the sampling options several commands take, as the typer options below."""
from __future__ import annotations

import inspect
import typing
from dataclasses import Field, field, fields
from typing import Any, Callable

import typer

from gid.pipeline.sampling import SAMPLING

# How motion is sampled from a photo: one flag, one default (gid.pipeline.sampling) and one help for
# gid animate, render, interact and serve. `--guidance` is kept as an alias of `--guidance-scale`.
STEPS_HELP = "With a model: DDIM denoising steps (the paper uses 250; fewer is faster and coarser)."
GUIDANCE_HELP = ("With a model: classifier-free guidance weight w (the paper uses 1.75; the default is what "
                 "measured best for one sample, docs/motion.md).")
SEED_HELP = "With a model: seed of the motion sampler; a photo's noise depends only on it and the photo, not on the batch."
STEPS = typer.Option(SAMPLING.num_inference_steps, "--steps", help=STEPS_HELP)
GUIDANCE_SCALE = typer.Option(SAMPLING.guidance_scale, "--guidance-scale", "--guidance", help=GUIDANCE_HELP)
SAMPLE_SEED = typer.Option(0, "--seed", help=SEED_HELP)

# One photo at a desk (gid animate, gid interact): a larger long side than the bulk commands' 512
# (gid render, loop, motion), whose throughput is bound by flow and rendering per pixel.
PHOTO_MAX_SIDE = typer.Option(1024, "--max-side", help="Shrink the photo so its long side is at most this (px).")
ADDRESS_HELP = "Join this Ray cluster (e.g. ray://head:10001); default: $RAY_ADDRESS, else start a local Ray."


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


def at_least(option: str, value: float | None, minimum: float) -> None:
    """``value`` ≥ ``minimum`` (None passes: the option was left out)."""
    if value is not None and not value >= minimum:
        raise ValueError(f"{option} must be at least {minimum:g}, got {value:g} ({option} {value:g}); "
                         f"give a value of {minimum:g} or more")


def positive(option: str, value: float | None) -> None:
    """``value`` > 0 (None passes)."""
    if value is not None and not value > 0:
        raise ValueError(f"{option} must be positive, got {value:g} ({option} {value:g}); give a value above 0")


def option(default: Any, help: str, *, flag: str | None = None, aliases: tuple[str, ...] = (),
           minimum: float | None = None, positive: bool = False, required: bool = False) -> Any:
    """A field of a config dataclass that is also a `gid` option: its flag (default ``--field-name``; a
    switch as ``--loop/--no-loop`` or ``--spectral``), help, default and range (``minimum``, ``positive``)
    in one place; ``aliases``: other names of the flag (give ``flag`` too). ``required``: the command needs
    the flag although the dataclass has a default."""
    return field(default=default, metadata={"help": help, "flag": flag, "aliases": aliases, "min": minimum,
                                            "positive": positive, "required": required})


def _flag(f: Field) -> str:
    return (f.metadata["flag"] or "--" + f.name.replace("_", "-")).split("/")[0]


def _options(config_cls: type) -> list[Field]:
    return [f for f in fields(config_cls) if "help" in f.metadata]


def _check_ranges(declared: list[Field], values: dict[str, Any]) -> None:
    for f in declared:
        if f.metadata["min"] is not None:
            at_least(_flag(f), values[f.name], f.metadata["min"])
        if f.metadata["positive"]:
            positive(_flag(f), values[f.name])


def check_options(config: Any) -> None:
    """The range checks the :func:`option` fields of a config dataclass declare, in field order."""
    declared = _options(type(config))
    _check_ranges(declared, {f.name: getattr(config, f.name) for f in declared})


def config_options(config_cls: type) -> Callable[[Callable], Callable]:
    """Decorates a typer command whose last parameter is ``cfg``: the command gets one option per
    :func:`option` field of ``config_cls`` and is called with ``cfg`` = ``{field: value}``, after the
    fields' range checks."""
    hints = typing.get_type_hints(config_cls)
    declared = _options(config_cls)

    def plain(annotation: Any) -> Any:
        """``X | None`` → ``X`` (typer reads None as the default, not from the type)."""
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "cfg"]
        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=plain(hints[f.name]),
                                   default=typer.Option(... if f.metadata["required"] else f.default,
                                                        *([f.metadata["flag"]] if f.metadata["flag"] else []),
                                                        *f.metadata["aliases"],
                                                        help=f.metadata["help"]))
                 for f in declared]

        def command(**kwargs: Any) -> Any:
            values = {f.name: kwargs.pop(f.name) for f in declared}
            _check_ranges(declared, values)
            return func(**kwargs, cfg=values)

        command.__name__, command.__doc__ = func.__name__, func.__doc__
        command.__signature__ = signature.replace(parameters=own + extra)
        return command

    return decorate
