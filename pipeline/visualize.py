"""Pictures of motion: flow colour wheel, spectral amplitude per frequency and its images, contact sheets."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """``(2, H, W)`` flow in pixels → ``(H, W, 3)`` uint8: hue = direction, saturation = magnitude.

    ``max_magnitude`` fixes the scale (use one value for all frames of a video so colours are
    comparable); by default the largest magnitude in ``flow`` maps to full saturation.
    """
    import cv2

    flow = np.nan_to_num(np.asarray(flow, dtype=np.float32))
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must have shape (2, H, W), got {flow.shape}")
    magnitude = np.hypot(flow[0], flow[1])
    scale = max_magnitude if max_magnitude is not None else float(magnitude.max())
    angle = np.arctan2(-flow[1], -flow[0]) / np.pi  # [-1, 1]
    hsv = np.empty((*magnitude.shape, 3), np.uint8)
    hsv[..., 0] = ((angle + 1) * 90).astype(np.uint8) % 180
    hsv[..., 1] = np.clip(magnitude / max(scale, 1e-6) * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def mean_amplitude(spectral: np.ndarray, num_frames: int) -> np.ndarray:
    """``(K,)`` mean amplitude A_k in px (gid.pipeline.motion_metrics.amplitude_px) over the pixels of
    ``(..., K, 4, H, W)`` volumes of ``num_frames``-frame motion."""
    from gid.pipeline.motion_metrics import amplitude_px

    amp = amplitude_px(spectral, num_frames)  # (..., K, H, W)
    axes = tuple(i for i in range(amp.ndim) if i != amp.ndim - 3)
    return amp.mean(axis=axes)


def _save(fig, path: str | Path) -> Path:
    """Lay out, write as PNG (creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_spectra(path: str | Path, curves: dict[str, np.ndarray], freqs_hz: np.ndarray, title: str,
                 ylabel: str = "mean amplitude A_k (px)", log_y: bool = True) -> Path:
    """Line plot of per-frequency curves ``{label: (K,)}`` (amplitudes, their errors or error ratios), saved as PNG.

    ``log_y``: logarithmic y axis (amplitudes fall off roughly exponentially with k); off for ratios.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6 + 2.5 * (len(curves) > 3), 3.5), dpi=110)
    for label, curve in curves.items():
        ax.plot(freqs_hz, np.maximum(curve, 1e-6) if log_y else curve, marker="o", ms=3, label=label)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 3:  # beside the axes, where it hides no curve
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize="small")
    return _save(fig, path)


def default_bins(num_freqs: int) -> list[int]:
    """Frequency bins worth a look: k = 1, 2, 4, 8 (those below K). k = 0 is the mean offset, not an oscillation."""
    return [k for k in (1, 2, 4, 8) if k < num_freqs] or [0]


def plot_amplitude_maps(path: str | Path, volumes: dict[str, np.ndarray], num_frames: int, freqs_hz: np.ndarray,
                        title: str, images: np.ndarray | None = None, bins: list[int] | None = None) -> Path:
    """Amplitude images ``A_k(p)`` (px, gid.pipeline.motion_metrics.amplitude_px) of spectral volumes side by side, saved as PNG.

    ``volumes``: label → ``(N, K, 4, H, W)`` denormalized volumes of ``num_frames``-frame motion of the
    same N clips (e.g. data and sampled). A row per clip and label, a column per frequency of ``bins`` (default :func:`default_bins`).
    The rows of one clip share each column's colour scale (its maximum is in the column title), so
    they compare directly. ``images``: ``(N, 3, H, W)`` in [0, 1], drawn in a first column.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gid.pipeline.motion_metrics import amplitude_px

    amps = {label: amplitude_px(v, num_frames) for label, v in volumes.items()}  # (N, K, H, W)
    shapes = {label: a.shape for label, a in amps.items()}
    if len(set(shapes.values())) != 1 or any(len(shape) != 4 for shape in shapes.values()):
        raise ValueError(f"volumes must all be (N, K, 4, H, W) of one shape, got {shapes}")
    n, k, h, w = next(iter(shapes.values()))
    if images is not None and tuple(images.shape) != (n, 3, h, w):
        raise ValueError(f"images must be {(n, 3, h, w)} to match the volumes, got {tuple(images.shape)}")
    bins = default_bins(k) if bins is None else bins
    offset = int(images is not None)
    rows, cols = n * len(amps), len(bins) + offset
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.5 * rows * h / w + 0.6), dpi=100, squeeze=False)
    for clip in range(n):
        top = clip * len(amps)
        peaks = [max(float(a[clip, b].max()) for a in amps.values()) for b in bins]
        for row, (label, a) in enumerate(amps.items()):
            ax_row = axes[top + row]
            if offset and row == 0:
                ax_row[0].imshow(images[clip].transpose(1, 2, 0))
                ax_row[0].set_title(f"clip {clip}: frame 0", fontsize=7)
            elif offset:
                ax_row[0].axis("off")
            for col, (b, peak) in enumerate(zip(bins, peaks)):
                ax = ax_row[col + offset]
                ax.imshow(a[clip, b], cmap="magma", vmin=0, vmax=max(peak, 1e-6))
                if row == 0:
                    ax.set_title(f"k={b}, {freqs_hz[b]:.1f} Hz (max {peak:.3g} px)", fontsize=7)
            ax_row[offset].set_ylabel(label, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def contact_sheet(images: list[np.ndarray], columns: int = 4) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` uint8 images into a grid (missing cells black)."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * height:(r + 1) * height, c * width:(c + 1) * width] = image
    return sheet


def plot_curves(path: Path, curves: dict[str, dict]) -> Path:
    """Sliding-window FID / DTFVD against the window's start frame (§7), one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.2), dpi=110, squeeze=False)
    for ax, (name, curve) in zip(axes[0], curves.items()):
        label = "FID" if name == "sliding_fid" else "DTFVD"
        ax.plot(curve["start_frame"], curve["value"], marker="o", ms=3)
        ax.set_xlabel("window start (frame)")
        ax.set_ylabel(f"{label}, {curve['window_frames']}-frame windows")
        ax.set_title(f"sliding-window {label}")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_magnitudes(path: Path, fake: list[np.ndarray], real: list[np.ndarray]) -> Path:
    """Histograms (log density) of the per-pixel mean motion magnitude of the fake and real videos."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = np.concatenate([m.ravel() for m in fake])
    b = np.concatenate([m.ravel() for m in real])
    bins = np.linspace(0, max(float(a.max()), float(b.max()), 1e-3), 50)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.hist(b, bins=bins, alpha=0.5, density=True, label="real", log=True)
    ax.hist(a, bins=bins, alpha=0.5, density=True, label="generated", log=True)
    ax.set_xlabel("mean motion magnitude W(p) (px)")
    ax.set_ylabel("density")
    ax.set_title("Motion magnitude distribution")
    ax.legend()
    return _save(fig, path)


def side_by_side(left: np.ndarray, right: np.ndarray, every: int = 2) -> np.ndarray:
    """Two videos ``(T, H, W, 3)`` and ``(T', H, W', 3)`` uint8 → every ``every``-th frame of the shorter
    length, ``left`` and ``right`` side by side with a 4 px white gap: ``(⌈min(T, T')/every⌉, H, W + 4 + W', 3)``."""
    count = min(len(left), len(right))
    gap = np.full((left.shape[1], 4, 3), 255, np.uint8)
    return np.stack([np.concatenate([left[t], gap, right[t]], axis=1) for t in range(0, count, every)])


def plot_losses(path: Path, panels: list[tuple[str, dict[str, tuple[list[int], list[float]]]]]) -> Path:
    """One panel per training run, ``(title, {metric: (steps, values)})``: each loss against the step, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), dpi=100, squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        for key, (steps, values) in series.items():
            ax.plot(steps, values, label=key)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)
