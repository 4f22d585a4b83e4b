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

from gid.pipeline.warping import frame_bytes, render_plan, render_video, resize_spectral
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


MAX_SIDE = 8192  # H.264's largest frame width (level 6.2: 8192×4320); libx264 refuses wider frames


def animate_bytes(height: int, width: int, num_frames: int, renderer: Any = None) -> int:
    """Peak memory of :func:`animate` at an output of ``(height, width)`` and ``num_frames``, in bytes.

    Per frame and pixel: trajectories (8 bytes), their inverse FFT's transient (about twice that)
    and the 8-bit frame (3); plus the frames being rendered (:func:`gid.pipeline.warping.render_plan`).
    """
    workers, batch_size = render_plan(height, width, renderer)
    batch = workers * batch_size * frame_bytes(height, width, renderer)
    return int(num_frames * height * width * (3 * 8 + 3) + batch)


def available_memory() -> int:
    """Bytes the kernel can hand out now (``MemAvailable``), or physical memory where /proc is absent."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_size(height: int, width: int, num_frames: int, max_side: int, renderer: Any = None,
               available: int | None = None) -> None:
    """Refuse, with one line that says what to do, a video the encoder cannot write or memory cannot hold.

    Raises ``ValueError`` for ``max_side`` beyond :data:`MAX_SIDE` and when :func:`animate_bytes`
    exceeds the available memory (instead of the kernel's OOM killer ending the run mid-way).
    """
    if max_side > MAX_SIDE:
        raise ValueError(f"--max-side {max_side} is beyond the renderer's limit ({MAX_SIDE} px, the widest "
                         f"H.264 frame); use --max-side {MAX_SIDE} or less")
    need = animate_bytes(height, width, num_frames, renderer)
    available = available_memory() if available is None else available
    if need > available:
        side = int(max(height, width) * (available / need) ** 0.5) // 16 * 16
        raise ValueError(f"a {width}x{height} video of {num_frames} frames needs about {need / 1e9:.1f} GB of "
                         f"memory, {available / 1e9:.1f} GB is available (--max-side {max_side}); use "
                         f"--max-side {max(side, 16)} or fewer --frames")


def pick_renderer(image: np.ndarray, trajectories: np.ndarray, renderer: Any) -> tuple[Any, str]:
    """The fastest renderer that renders ``renderer``'s frames: ``(renderer or None for splat, why)``.

    Renders two probe frames (t = T/4 and T/2, where the motion is far from frame 0) both ways.
    Where the learned renderer's 8-bit frames equal the splat baseline's within 1 level on all but
    0.1 % of the values (an untrained or barely trained renderer: its correction starts at zero),
    splat gives the same video at a fraction of the cost and is chosen; otherwise the learned one.
    """
    if renderer is None:
        return None, "splat"
    probe = trajectories[[len(trajectories) // 4, len(trajectories) // 2]]
    learned = render_video(image, probe, renderer).astype(np.int16)
    splat = render_video(image, probe, None).astype(np.int16)
    differ = float((np.abs(learned - splat) > 1).mean())
    if differ <= 1e-3:
        return None, (f"splat (the learned renderer's frames equal splat's within 1/255 on {100 * (1 - differ):.2f} % "
                      "of the values; use --renderer DIR to force it)")
    return renderer, f"learned (it changes {100 * differ:.1f} % of the values of the splat baseline's frames)"


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
