"""Footage with known motion: a real photo swayed by an oscillating field, optionally shot "handheld".

No real video of oscillating motion ships in a package this project installs, and none may be
downloaded, so tests, benchmarks and the README's loop GIF use a real photo — ``flower.jpg`` that
scikit-learn ships (installed with MLflow; CC BY 2.0, "Some rights reserved by vultilion",
flickr.com/photos/vultilion/6056698931) — warped by a known motion field:

    d_t(p) = m(p) · Σ_j a_j·u_j·[sin(2π·f_j·t/fps + φ_j(p)) − sin φ_j(p)]        (so d_0 = 0)
    frame_t(p) = photo(p − d_t(p) − c_t)                                         (bilinear, mirrored border)

with ``m`` a smooth bump over the centre of the picture (the flower sways, the border stays),
``u_j`` unit directions, ``φ_j(p)`` a phase that travels down the picture, and ``c_t`` an optional
camera translation (a slow drift plus a shake, ``c_0 = 0``). Frame 0 is the photo itself, and since
``d`` is smooth and small the flow from frame 0 to frame t is ``d_t + c_t`` to first order: the
ground truth of `gid motion`.

``python -m gid.datasets.swaying_photo OUT.mp4 [SECONDS] [WIDTHxHEIGHT] [--handheld]`` writes such a clip.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


def sample_photo(name: str = "flower.jpg") -> np.ndarray:
    """A real photo shipped by scikit-learn (``flower.jpg`` or ``china.jpg``, 640×427) as ``(H, W, 3)`` uint8 RGB."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-learn is not installed (it ships the sample photo); pip install scikit-learn")
    path = Path(spec.origin).parent / "datasets" / "images" / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"no sample photo {name} in scikit-learn ({path}); use flower.jpg or china.jpg")
    return image[..., ::-1].copy()


@dataclass
class SwayConfig:
    """The clip: T frames at ``fps``, ``width × height``; sway components ``(Hz, px)``; camera shake (px)."""

    num_frames: int = 150
    fps: float = 30.0
    width: int = 256
    height: int = 170
    components: list[tuple[float, float]] = field(default_factory=lambda: [(0.6, 3.0), (2.2, 1.2), (4.5, 0.6)])
    camera_px: float = 0.0
    photo: str = "flower.jpg"


def cover(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``photo`` to cover ``width × height`` (area filter) and crop the centre."""
    scale = max(width / photo.shape[1], height / photo.shape[0])
    size = (max(width, round(photo.shape[1] * scale)), max(height, round(photo.shape[0] * scale)))
    image = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def sway_field(cfg: SwayConfig) -> np.ndarray:
    """The scene's own motion ``d_t`` ``(T, 2, H, W)`` float32 in px (no camera motion)."""
    ys, xs = np.mgrid[0:cfg.height, 0:cfg.width].astype(np.float64)
    bump = np.exp(-0.5 * (((xs - cfg.width / 2) / (0.1 * cfg.width)) ** 2 + ((ys - cfg.height / 2) / (0.16 * cfg.height)) ** 2))
    t = np.arange(cfg.num_frames)[:, None, None] / cfg.fps
    out = np.zeros((cfg.num_frames, 2, cfg.height, cfg.width))
    for j, (hz, amplitude) in enumerate(cfg.components):
        angle = 0.35 * j
        direction = (np.cos(angle), np.sin(angle))
        phase = 2.0 * np.pi * (0.4 * ys / cfg.height + 0.13 * j)
        wave = amplitude * bump * (np.sin(2.0 * np.pi * hz * t + phase) - np.sin(phase))
        out[:, 0] += direction[0] * wave
        out[:, 1] += direction[1] * wave
    return out.astype(np.float32)


def camera_path(cfg: SwayConfig) -> np.ndarray:
    """The handheld camera's translation ``c_t`` ``(T, 2)`` in px: a drift plus a shake, ``c_0 = 0``."""
    t = np.arange(cfg.num_frames) / cfg.fps
    path = np.stack([0.6 * t + np.sin(2 * np.pi * 0.9 * t + 0.5) - np.sin(0.5),
                     -0.3 * t + np.sin(2 * np.pi * 1.4 * t + 1.0) - np.sin(1.0)], axis=1)
    return (cfg.camera_px * path / max(np.abs(path).max(), 1e-9)).astype(np.float32)


def swaying_video(cfg: SwayConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(frames (T, H, W, 3) uint8, truth (T, 2, H, W) float32)``: the clip and its flow from frame 0."""
    photo = cover(sample_photo(cfg.photo), cfg.width, cfg.height)
    truth = sway_field(cfg) + camera_path(cfg)[:, :, None, None]
    ys, xs = np.mgrid[0:cfg.height, 0:cfg.width].astype(np.float32)
    frames = np.stack([cv2.remap(photo, xs - f[0], ys - f[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
                       for f in truth])
    return frames, truth


if __name__ == "__main__":
    from gid.datasets.video_io import write_video

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit(__doc__.strip().splitlines()[-1])
    seconds = float(args[1]) if len(args) > 1 else 5.0
    width, height = (int(v) for v in (args[2] if len(args) > 2 else "256x170").split("x"))
    config = SwayConfig(num_frames=int(round(seconds * 30)), width=width, height=height,
                        camera_px=4.0 if "--handheld" in sys.argv else 0.0)
    print(write_video(args[0], swaying_video(config)[0], config.fps, crf=12))
