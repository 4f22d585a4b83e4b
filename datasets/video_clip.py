"""One clip of one video: T frames from a chosen start, at a chosen rate and size (`gid motion`, `gid loop`).

The same decoding as `gid preprocess` (:func:`gid.datasets.clip_stream.iter_frames`: upright,
any pixel format, resampled in time by nearest timestamp, scaled to cover the size and centre
cropped), for a single clip whose size defaults to the video's own aspect ratio: long side
``max_side`` (never enlarged), both sides even (H.264).

Every way a file can be unusable for the request (no video stream, corrupt, ``--start`` past the
end, too short for ``--frames``) raises :class:`~gid.datasets.clip_stream.VideoError` with a
one-line message naming the file and what to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np

from gid.datasets.clip_stream import ClipSpec, VideoError, iter_frames, open_container

REENCODE = "check that it plays, or re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4)"


@dataclass
class VideoInfo:
    """What the container says: upright size of the first frame, frame rate, duration (s; None if unknown)."""

    width: int
    height: int
    fps: float
    duration: float | None


@dataclass
class VideoClip:
    """``frames (T, H, W, 3)`` uint8 RGB at ``fps``, starting ``start`` seconds into ``source``."""

    source: str
    frames: np.ndarray
    fps: float
    start: float
    info: VideoInfo


def probe_video(source: str) -> VideoInfo:
    """Open ``source``, check it has a decodable video stream, and read its geometry from the first frame."""
    import av

    container = open_container(source)
    try:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise VideoError("open", f"no video stream, the file holds {kinds} ({source}); give a video file")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / av.time_base if container.duration else None
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise VideoError("decode", f"cannot decode the first frame ({source}: {err}); {REENCODE}") from None
        if frame is None:
            raise VideoError("decode", f"no decodable frame ({source}); {REENCODE}")
        turns = int(round(frame.rotation / 90.0)) % 2
        width, height = (frame.height, frame.width) if turns else (frame.width, frame.height)
        return VideoInfo(width, height, fps, duration)
    finally:
        container.close()


def clip_size(info: VideoInfo, max_side: int) -> tuple[int, int]:
    """``(W, H)``: the video's aspect ratio, long side ``min(max_side, its own)``, both even."""
    scale = min(1.0, max_side / max(info.width, info.height))
    width, height = max(16, round(info.width * scale)), max(16, round(info.height * scale))
    return width - width % 2, height - height % 2


def read_clip(source: str, num_frames: int, start: float = 0.0, fps: float | None = None,
              size: tuple[int, int] | None = None, max_side: int = 512) -> VideoClip:
    """Decode frames ``[start·fps, start·fps + T)`` of ``source`` at ``fps`` (default: the video's own).

    Args:
        size: ``(W, H)``; frames are scaled to cover it and centre-cropped. Default: :func:`clip_size`.

    Returns a :class:`VideoClip` with ``frames (T, H, W, 3)`` uint8. Decoding stops at the clip's end.
    """
    import av

    source = str(source)
    try:
        info = probe_video(source)
    except VideoError as err:
        if err.stage == "open" and "no video stream" not in str(err) and "no such file" not in str(err):
            raise VideoError("open", f"{err}; {REENCODE}") from None
        raise
    rate = float(fps or info.fps)
    if start < 0:
        raise ValueError(f"--start must be ≥ 0 seconds, got {start:g} ({source})")
    if info.duration is not None and start >= info.duration:
        raise VideoError("decode", f"--start {start:g} s is past the end of the {info.duration:.2f} s video ({source}); "
                                   f"start earlier")
    width, height = size or clip_size(info, max_side)
    spec = ClipSpec(num_frames=num_frames, stride=1, width=width, height=height, fps=rate)
    first = int(round(start * rate))
    try:
        frames = list(islice(iter_frames(source, spec), first, first + num_frames))
    except av.FFmpegError as err:
        raise VideoError("decode", f"decoding failed ({source}: {err}); {REENCODE}") from None
    except VideoError as err:
        raise VideoError(err.stage, f"{err}; {REENCODE}") from None
    if not frames:
        raise VideoError("decode", f"--start {start:g} s is past the end of the video ({source}); start earlier")
    if len(frames) < num_frames:
        raise VideoError("decode", f"video too short for --frames {num_frames}: {len(frames)} frames from "
                                   f"{start:g} s at {rate:g} fps ({source}); lower --frames to {len(frames)} or "
                                   f"less, or start earlier")
    return VideoClip(source, np.stack(frames), rate, first / rate, info)
