"""Draws docs/softsplat_modes.png: the four softsplat modes on a disk sliding over a static background.

    python docs/softsplat_figure.py [--out docs/softsplat_modes.png]

The disk moves 14 px right and 6 px down and lands on textured background that stays put, so
each target pixel there receives two sources: ``sum`` adds them (too bright), ``avg`` blends them
(ghosting), ``linear`` and ``soft`` weight them by the metric ``Z`` = motion magnitude, and
``soft`` puts the moving disk cleanly in front. The uncovered crescent is empty in every mode.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gid.kernels import softsplat  # noqa: E402


def scene(size: int = 128):
    """``image (1, 3, S, S)``, ``flow (1, 2, S, S)`` and ``metric (1, 1, S, S)`` of a sliding disk."""
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                                indexing="ij")
    checker = (((rows // 8) + (cols // 8)) % 2) * 0.5 + 0.25
    image = torch.stack([checker * 0.6, checker * 0.8, checker])
    disk = ((rows - size * 0.45) ** 2 + (cols - size * 0.4) ** 2) < (size * 0.22) ** 2
    stripes = 0.6 + 0.4 * torch.sin(cols / 2.0)
    image = torch.where(disk, torch.stack([stripes, 0.35 * stripes, 0.1 * stripes]), image)
    flow = torch.zeros(2, size, size)
    flow[0][disk], flow[1][disk] = 14.0, 6.0
    metric = torch.linalg.vector_norm(flow, dim=0, keepdim=True)
    metric = 4.0 * metric / metric.max()  # as the renderer does: Z in [0, 4] from the motion magnitude
    return image[None], flow[None], metric[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("softsplat_modes.png"),
                        help="PNG to write")
    args = parser.parse_args()
    image, flow, metric = scene()
    panels = [("input (disk moves →↘)", image)]
    for mode in ("sum", "avg", "linear", "soft"):
        z = metric + 0.1 if mode == "linear" else metric  # linear needs a positive Z everywhere
        panels.append((f"mode={mode}", softsplat(image, flow, z, mode=mode)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2))
    for axis, (title, picture) in zip(axes, panels):
        axis.imshow(picture[0].permute(1, 2, 0).clamp(0, 1).numpy())
        axis.set_title(title)
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
