"""One photo in, a video out: motion (predicted or given) → trajectories → rendered frames.

Resize policy (documented for `gid animate`): the photo is first fitted by
:func:`gid.pipeline.images.fit_image` (same aspect ratio, long side ≤ ``max_side``, even size);
that is the output video's size. The motion model sees the photo resized (aspect not kept) to its
own training resolution ``(h', w')``; its spectral volume, or a given ``(K, 4, h, w)`` one, is then
resized to the output size with x/y displacements rescaled by the width/height ratios
(:func:`gid.pipeline.warping.resize_spectral`), so motion follows the photo whatever its shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gid.pipeline.warping import render_video, resize_spectral
from gid.pipeline.spectral import scale_motion, spectral_to_trajectories


def spectral_to_motion(spectral: np.ndarray, size: tuple[int, int], num_frames: int, amplify: float = 1.0) -> np.ndarray:
    """A spectral volume ``(K, 4, h, w)`` at any size → trajectories ``(T, 2, H, W)`` at ``size = (H, W)``.

    ``amplify`` scales every frequency (§6, motion amplification/minification).
    """
    spectral = np.asarray(spectral, dtype=np.float32)
    if spectral.ndim != 4 or spectral.shape[1] != 4:
        raise ValueError(f"spectral volume must have shape (K, 4, H, W), got {spectral.shape}")
    if not np.isfinite(spectral).all():
        raise ValueError("spectral volume contains NaN or inf")
    if spectral.shape[0] > num_frames // 2 + 1:
        raise ValueError(f"--frames {num_frames} is too few for {spectral.shape[0]} frequencies; "
                         f"use at least {2 * (spectral.shape[0] - 1)}")
    spec = scale_motion(resize_spectral(spectral, tuple(size)), amplify)
    return np.ascontiguousarray(spectral_to_trajectories(spec, num_frames), dtype=np.float32)


def motion_panel(trajectories: np.ndarray) -> np.ndarray:
    """Flow-colour pictures ``(T, H, W, 3)`` uint8 of ``F_t``, one colour scale for the whole clip."""
    from gid.pipeline.visualize import flow_to_color

    peak = float(np.hypot(trajectories[:, 0], trajectories[:, 1]).max())
    return np.stack([flow_to_color(f, max_magnitude=max(peak, 1e-3)) for f in trajectories])


def animate(image: np.ndarray, spectral: np.ndarray, num_frames: int = 150, amplify: float = 1.0,
            renderer: Any = None, show_motion: bool = False) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` (``(T, H, 2W, 3)`` with the motion panel) of ``image`` moving by ``spectral``.

    Args:
        image: ``(H, W, 3)`` uint8, already fitted (see the module's resize policy).
        spectral: ``(K, 4, h, w)`` denormalized spectral volume, any ``(h, w)``.
        renderer: ``None`` (softsplat baseline) or a :class:`~gid.pipeline.frame_renderer.FrameRenderer`.
    """
    trajectories = spectral_to_motion(spectral, image.shape[:2], num_frames, amplify)
    frames = render_video(image, trajectories, renderer, progress=True)
    if show_motion:
        frames = np.concatenate([frames, motion_panel(trajectories)], axis=2)
    return frames
