"""What `gid serve` accepts: uploads read with a size limit and decoded with the project's policies
(an image through gid.pipeline.images, a ``.npy`` spectral volume, a video's first clip), each refusal
an :class:`UploadError` that names the upload and carries its HTTP status. Never a path from the client.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np


class UploadError(ValueError):
    """An upload the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def read_limited(stream, limit: int, name: str) -> bytes:
    """Read a file-like object, refusing (413) anything larger than ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadError(f"{name} is larger than the {limit / 2**20:.3g} MB upload limit; shrink it first", 413)
    if not data:
        raise UploadError(f"{name} is empty; choose a photo file")
    return data


def decode_photo(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """Upload bytes → ``(H, W, 3)`` uint8 with the project's image policy (gid.pipeline.images)."""
    from gid.pipeline.images import load_image

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{Path(name).suffix[:8]}"  # never a path taken from the client
        path.write_bytes(data)
        try:
            return load_image(path, max_pixels=max_pixels)
        except (ValueError, FileNotFoundError) as err:
            raise UploadError(str(err).replace(str(path), name)) from None


def decode_spectral(data: bytes, name: str, num_frames: int, fps: float):
    """Upload bytes of a ``.npy`` spectral volume ``(K, 4, h, w)`` made for ``num_frames`` at ``fps`` →
    a checked :class:`gid.pipeline.motion_source.MotionSource`."""
    from gid.pipeline.motion_source import check_spectral

    try:
        spectral = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UploadError(f"{name}: not a .npy array ({err}); save the spectral volume with numpy.save") from None
    try:
        return check_spectral(spectral, name, num_frames, fps)
    except ValueError as err:
        raise UploadError(str(err)) from None


def decode_video(data: bytes, name: str, max_pixels: int, max_seconds: float, max_frames: int, max_side: int):
    """Upload bytes of a video → its first clip (``≤ max_frames`` frames ``(H, W, 3)``, long side ``max_side``).

    The same limits as a photo (bytes, pixels checked from the first frame before the rest is
    decoded) plus ``max_seconds``.
    """
    from gid.datasets.video_clip import probe_video, read_clip

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{Path(name).suffix[:8]}"  # never a path taken from the client
        path.write_bytes(data)
        try:
            info = probe_video(str(path))
            if info.width * info.height > max_pixels:
                raise UploadError(f"{name}: frames of {info.width}x{info.height} exceed the {max_pixels / 1e6:g} "
                                  "megapixel limit; shrink the video first", 413)
            if info.duration is not None and info.duration > max_seconds:
                raise UploadError(f"{name}: the video is {info.duration:.1f} s long, over the "
                                  f"{max_seconds:g} s limit; trim it first", 413)
            available = int(info.duration * info.fps) if info.duration else max_frames
            frames = min(max_frames, available)
            if frames < 8:
                raise UploadError(f"{name}: the video is too short ({available} frames); upload at least 8 frames")
            return read_clip(str(path), frames - frames % 2, max_side=max_side)
        except (ValueError, FileNotFoundError) as err:
            if isinstance(err, UploadError):
                raise
            raise UploadError(str(err).replace(str(path), name)) from None
