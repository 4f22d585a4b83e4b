"""Builders of odd and broken video files for the preprocessing tests (written with PyAV, no ffmpeg CLI)."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode(path: Path, frames: np.ndarray, fps: float = 30, codec: str = "libx264", pix_fmt: str = "yuv420p",
           rotation: int = 0, options: dict | None = None) -> Path:
    """Encode ``frames (T, H, W, 3)`` uint8 RGB; ``rotation`` sets the display matrix (CCW degrees)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.options = options if options is not None else ({"crf": "0"} if codec == "libx264" else {})
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A Matroska file with one PCM audio stream and no video."""
    rate = 8000
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        samples = (np.sin(np.arange(int(rate * seconds)) * 0.05) * 10000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def absurd_header(path: Path) -> Path:
    """A YUV4MPEG2 stream declaring 12000×12000 (144 Mpixel) frames, followed by a few bytes of nothing."""
    path.write_bytes(b"YUV4MPEG2 W12000 H12000 F30:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(64))
    return path


def broken_corpus(folder: Path, good_video: Path) -> dict[str, Path]:
    """Every kind of unusable input, by name (``missing`` is a path that does not exist)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good_video.read_bytes()
    rng = np.random.default_rng(0)
    still = rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)
    short = np.repeat(still, 20, axis=0)
    files = {
        "missing": folder / "missing.mp4",
        "truncated": folder / "truncated.mp4",
        "random": folder / "random.mp4",
        "empty": folder / "empty.mp4",
        "audio_only": audio_only(folder / "audio_only.mkv"),
        "single_frame": encode(folder / "single_frame.mp4", still),
        "too_short": encode(folder / "too_short.mp4", short),
        "absurd_resolution": absurd_header(folder / "absurd_resolution.y4m"),
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["random"].write_bytes(os.urandom(20000))
    files["empty"].write_bytes(b"")
    return files
