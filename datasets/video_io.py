"""Writing and reading small videos with PyAV (H.264 MP4) and Pillow (GIF), atomically.

Frames are ``(T, H, W, 3)`` uint8 RGB. A file appears under its final name only when complete:
it is written to a hidden temporary name beside it and renamed.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_frames(frames: np.ndarray, path: Path) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) with T ≥ 1, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be uint8, got {frames.dtype}")
    return frames


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray] | np.ndarray, fps: float = 30, crf: int = 17) -> Path:
    """Encode frames ``(T, H, W, 3)`` uint8 as H.264 (yuv420p) MP4; H and W must be even.

    ``crf`` 17 is visually lossless; lower is better quality, 0 is lossless.
    """
    path = Path(path)
    frames = _check_frames(np.asarray(frames), path)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: H.264 needs even width and height, got {width}x{height}")
    import av

    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 15) -> Path:
    """Write an endlessly looping GIF (Pillow) of ``(T, H, W, 3)`` uint8 frames."""
    from PIL import Image

    path = Path(path)
    frames = _check_frames(frames, path)
    images = [Image.fromarray(f) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=int(round(1000 / fps)), optimize=False)
    return path


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a whole (small) video into ``(T, H, W, 3)`` uint8 RGB and its frame rate."""
    import av

    path = Path(path)
    frames = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: no decodable frames")
    return np.stack(frames), fps


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


def list_videos(folder: Path, option: str) -> list[Path]:
    """The videos of ``folder`` (or ``folder/videos``), sorted; clear errors when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{option} {folder}: not a folder; give a folder of videos (e.g. a `gid synth` "
                                 "or `gid render` output)")
    for candidate in (folder, folder / "videos"):
        found = sorted(p for p in candidate.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES
                       and not p.name.startswith("."))
        if found:
            return found
    raise FileNotFoundError(f"{option} {folder}: no videos ({', '.join(VIDEO_SUFFIXES)}) in it or in its videos/")
