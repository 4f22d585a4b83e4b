"""Parsing and range checks of command-line values shared by several `gid` subcommands."""
from __future__ import annotations


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
