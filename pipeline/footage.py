"""One clip of a video → its motion, shared by the commands that start from a video (`gid motion`,
`gid loop`, `gid interact`, `gid serve`).

One clip of the video is decoded (:func:`gid.datasets.video_clip.read_clip`), its motion estimated
with the preprocessing code (:func:`gid.pipeline.video_loop.video_motion`), and what a user must
know about it (camera motion removed or kept, the preprocessing quality verdict) is returned as
notes to print.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gid.datasets.clip_stream import VIDEO_EXTENSIONS


@dataclass
class ClipOptions:
    """Which clip of a video and how its motion is estimated (defaults: 150 frames from the start at the
    video's own rate, long side 512 px, K = 16, DIS flow, camera motion removed)."""

    start: float = 0.0
    frames: int = 150
    fps: float | None = None
    size: tuple[int, int] | None = None  # (W, H); default: the video's aspect ratio, long side max_side
    max_side: int = 512
    num_freqs: int = 16
    flow: str = "dis"
    camera: str = "remove"

    def __post_init__(self) -> None:
        if self.frames < 4:
            raise ValueError(f"--frames must be at least 4, got {self.frames}")
        if not 2 <= self.num_freqs <= self.frames // 2 + 1:
            raise ValueError(f"--num-freqs must be in [2, frames//2+1 = {self.frames // 2 + 1}], got {self.num_freqs}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.max_side < 16:
            raise ValueError(f"--max-side must be at least 16, got {self.max_side}")
        if self.camera not in ("remove", "keep"):
            raise ValueError(f"--camera must be remove or keep, got {self.camera!r}")


def is_video(path: str | Path) -> bool:
    """A video by its extension (``.gif`` counts as a photo: its first frame)."""
    suffix = Path(path).suffix.lower()
    return suffix in VIDEO_EXTENSIONS and suffix != ".gif"


def load_video_motion(video: str | Path, opts: ClipOptions):
    """``(clip, motion, notes)``: the decoded :class:`~gid.datasets.video_clip.VideoClip`, its
    :class:`~gid.pipeline.video_loop.VideoMotion` and the lines to tell the user."""
    from gid.datasets.video_clip import read_clip
    from gid.pipeline.flow import make_flow
    from gid.pipeline.video_loop import video_motion

    flow = make_flow(opts.flow)
    clip = read_clip(str(video), opts.frames, opts.start, opts.fps, opts.size, opts.max_side)
    motion = video_motion(clip.frames, clip.fps, flow, opts.num_freqs, opts.camera, progress=True)
    notes = []
    cam = motion.camera
    if cam.removed:
        notes.append(f"camera motion of up to {cam.peak_px:.1f} px removed by a per-frame affine fit ({video}); "
                     "the loop is stabilised")
    elif cam.significant:
        notes.append(f"warning: camera motion of up to {cam.peak_px:.1f} px kept ({video}): the whole picture will "
                     "sway with it; use --camera remove, or a tripod")
    if motion.quality.reason:
        notes.append(f"warning: gid preprocess would drop this clip as '{motion.quality.reason}' ({video}); "
                     "expect a poor loop")
    return clip, motion, notes


def motion_meta(clip, motion, opts: ClipOptions) -> dict:
    """The motion.json of a `gid motion` folder."""
    height, width = motion.frame0.shape[:2]
    return {"source": str(clip.source), "start": clip.start, "T": motion.num_frames, "fps": motion.fps,
            "K": int(motion.spectral.shape[0]), "size": [width, height], "flow": opts.flow,
            "camera": {"removed": motion.camera.removed, "peak_px": round(motion.camera.peak_px, 3)}}
