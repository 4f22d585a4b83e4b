"""Streaming PyAV reader: one video file → fixed-length clips at a chosen frame rate and size.

Each file is decoded once, front to back. Frames are

1. rotated upright from the stream's display matrix (``VideoFrame.rotation``, counter-clockwise
   degrees, as phones record portrait video),
2. converted to RGB from whatever pixel format the codec produced (swscale: yuv420p, yuv444p,
   10-bit, grey, palettes …),
3. resized to cover ``(H, W)`` and centre-cropped (aspect ratio kept), and
4. resampled in time to ``fps`` by nearest presentation timestamp (output frame ``i`` is the source
   frame closest to ``i/fps`` seconds).

A clip of ``T`` frames starts every ``stride`` output frames. Only the last ``T`` output frames are
held, so memory is ``T·H·W·3`` bytes whatever the length or resolution of the video (a 4K frame
lives only while it is being resized). Anything that makes a file unusable raises
:class:`VideoError` with the pipeline stage it happened in (``open`` or ``decode``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".y4m", ".gif", ".flv", ".wmv")


class VideoError(ValueError):
    """A video that cannot be used. ``stage`` says where it failed: ``open`` or ``decode``."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class ClipSpec:
    """How videos are cut into clips (paper §7: 150 frames, a start every 10 frames, 256×160, 30 fps).

    ``max_pixels`` refuses streams whose declared frame size is absurd (a corrupt header or a
    decompression bomb) before a single frame is decoded.
    """

    num_frames: int = 150
    stride: int = 10
    width: int = 256
    height: int = 160
    fps: float = 30.0
    max_pixels: int = 8192 * 8192

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"--frames must be at least 2, got {self.num_frames}")
        if self.stride < 1:
            raise ValueError(f"--stride must be at least 1, got {self.stride}")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"--size must be at least 16x16, got {self.width}x{self.height}")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")


def open_container(source: str):
    """``av.open`` a local path or any pyarrow filesystem URI (``s3://…``, ``gs://…``, ``file://…``)."""
    import av

    try:
        if "://" in source:
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(source)
            return av.open(filesystem.open_input_file(path))
        if not Path(source).is_file():
            pattern = any(c in source for c in "*?[")
            raise VideoError("open", f"{source}: {'a pattern that matched no file' if pattern else 'no such file'}")
        return av.open(source)
    except VideoError:
        raise
    except (OSError, av.FFmpegError, ValueError) as err:
        raise VideoError("open", f"{source}: cannot open as a video ({err})") from None


def frame_to_rgb(frame, width: int, height: int) -> np.ndarray:
    """A decoded ``av.VideoFrame`` → upright RGB ``(height, width, 3)`` uint8, aspect ratio kept.

    swscale converts the pixel format and scales to cover ``width × height`` in one pass (area
    filter; 2× faster than converting at full size and resizing after), then the display matrix's
    counter-clockwise ``rotation`` is applied and the centre cropped.
    """
    turns = int(round(frame.rotation / 90.0)) % 4
    upright_w, upright_h = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    scale = max(width / upright_w, height / upright_h)
    new_w, new_h = max(width, round(upright_w * scale)), max(height, round(upright_h * scale))
    stored_w, stored_h = (new_h, new_w) if turns % 2 else (new_w, new_h)
    image = frame.to_ndarray(format="rgb24", width=stored_w, height=stored_h, interpolation="AREA")
    if turns:
        image = np.rot90(image, turns)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def iter_frames(source: str, spec: ClipSpec) -> Iterator[np.ndarray]:
    """Yield upright RGB frames ``(H, W, 3)`` uint8 at ``spec.fps`` and ``spec.width × spec.height``."""
    import av

    container = open_container(source)
    try:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise VideoError("open", f"{source}: no video stream (the file holds {kinds})")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > spec.max_pixels:
            raise VideoError("open", f"{source}: declared frame size {width}x{height} exceeds the limit of "
                                     f"{spec.max_pixels} pixels (corrupt header?)")
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        time_base = float(stream.time_base) if stream.time_base else 1.0 / rate
        first_pts = None
        prev_image, prev_time = None, None
        out_index = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                if frame.pts is None:
                    time = index / rate
                else:
                    first_pts = frame.pts if first_pts is None else first_pts
                    time = (frame.pts - first_pts) * time_base
                image = frame_to_rgb(frame, spec.width, spec.height)
                if prev_image is not None:
                    midpoint = 0.5 * (prev_time + time)
                    while out_index / spec.fps < midpoint:  # output times closer to the previous frame
                        yield prev_image
                        out_index += 1
                prev_image, prev_time = image, time
        except av.FFmpegError as err:
            raise VideoError("decode", f"{source}: decoding failed after {out_index} frames ({err})") from None
        if prev_image is not None:
            while out_index / spec.fps < prev_time + 0.5 / rate:
                yield prev_image
                out_index += 1
    finally:
        container.close()


def iter_clips(source: str, spec: ClipSpec, start: float = 0.0, end: float | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_frame, frames (T, H, W, 3) uint8)`` for every clip start ``s, s + stride, …``.

    ``start``/``end`` (seconds) limit the clips to that part of the video: ``s = round(start · fps)``,
    and no clip reaches past ``end``; start frames count from the beginning of the file. Raises
    :class:`VideoError` (stage ``decode``) for a video (part) too short for even one clip.
    """
    first = max(0, round(start * spec.fps))
    stop = None if end is None else round(end * spec.fps)
    window: deque[np.ndarray] = deque(maxlen=spec.num_frames)
    count = 0
    for index, image in enumerate(iter_frames(source, spec)):
        if stop is not None and index >= stop:
            break
        if index < first:
            continue
        window.append(image)
        count = index - first + 1
        clip_start = index - spec.num_frames + 1
        if clip_start >= first and (clip_start - first) % spec.stride == 0:
            yield clip_start, np.stack(window)
    if count < spec.num_frames:
        part = "" if first == 0 and stop is None else f" between {start:g} s and {'the end' if end is None else f'{end:g} s'}"
        raise VideoError("decode", f"{source}: too short{part}: {count} frame(s) at {spec.fps:g} fps, "
                                   f"a clip needs {spec.num_frames} (lower --frames?)")
