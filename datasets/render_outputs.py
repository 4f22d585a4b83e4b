"""What `gid render` writes, and how a rerun knows what is done.

Output layout::

    OUT/videos/{name}-{hash}.mp4     one per source (:func:`video_name`)
    OUT/videos/{...}.npy, .motion.json   with --save-motion: the volume and what it holds (:func:`motion_sidecar`)
    OUT/manifest/part-*.parquet      rows as they finish (:data:`MANIFEST_COLUMNS`)
    OUT/manifest.parquet             one row per source, the latest status (:func:`consolidate_manifest`)
    OUT/errors/part-*.parquet        source, stage (read, motion, render, encode), error, run_id

A failure is the string ``"{stage}: {type}: {message}"`` (:func:`failure`); the errors table's
``stage`` is its first field. A rerun skips every source whose latest status is ``ok`` and whose
video still exists (:func:`done_sources`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from gid.datasets.safe_paths import inside
from gid.datasets.video_io import atomic_path

MANIFEST_COLUMNS = ("source", "video", "seconds", "status", "frames", "width", "height", "error", "run_id")


def failure(stage: str, err: BaseException) -> str:
    """The error text of an item that failed in ``stage``: ``"{stage}: {type}: {message}"``."""
    return f"{stage}: {type(err).__name__}: {err}"


def video_name(source: str, name: str) -> str:
    """``videos/{name}-{sha1(source)[:10]}.mp4``: readable, unique per source, and starting with the
    photo's (or its video's) id, which is how `gid eval --gt` matches videos to true motion."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    return f"videos/{name}-{digest}.mp4"


def motion_sidecar(shape: tuple[int, ...], num_frames: int, fps: float, video_size: tuple[int, int]) -> dict[str, Any]:
    """What a `--save-motion` ``.npy`` holds: its layout, T, fps, sizes and units (written as ``.motion.json``)."""
    num_freqs, _, height, width = shape
    return {"layout": "(K, 4, H, W): channels Re S_x, Im S_x, Re S_y, Im S_y of bins k = 0..K-1",
            "num_freqs": int(num_freqs), "num_frames": int(num_frames), "fps": float(fps),
            "size": [int(width), int(height)], "video_size": [int(video_size[0]), int(video_size[1])],
            "units": "S_k = numpy.fft.rfft over num_frames frames of each pixel's displacement, in pixels of the "
                     "volume's own W x H grid (resize with its displacements rescaled for the video); a pixel "
                     "moving by a*cos(2*pi*k*t/T + phi) has (2/T)*|S_k| = a px "
                     "(gid.pipeline.motion_metrics.amplitude_px)",
            "frequency_hz": [k * float(fps) / int(num_frames) for k in range(int(num_freqs))]}


def write_rendered(out: str | Path, name: str, frames: np.ndarray, fps: float, spectral: np.ndarray | None) -> None:
    """Frames ``(T, H, W, 3)`` uint8 → ``OUT/{name}`` (H.264, atomic); with a ``spectral`` volume
    ``(K, 4, h, w)`` (the motion at the model's resolution, amplification applied) also ``{name}.npy``
    and ``{name}.motion.json`` beside it."""
    from gid.datasets.video_io import write_video

    height, width = frames.shape[1:3]
    if spectral is not None:
        with atomic_path((Path(out) / name).with_suffix(".npy")) as tmp:
            np.save(tmp, spectral)
        with atomic_path((Path(out) / name).with_suffix(".motion.json")) as tmp:
            Path(tmp).write_text(json.dumps(motion_sidecar(spectral.shape, len(frames), fps, (width, height))))
    write_video(Path(out) / name, frames, fps=fps)


def manifest_rows(results: dict[str, np.ndarray], fps: float, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Manifest rows and error rows of encoded items (columns source, video, frames, width, height, error)."""
    rows, error_rows = [], []
    for i, source in enumerate(results["source"]):
        error = str(results["error"][i])
        ok = not error
        rows.append({"source": str(source), "video": str(results["video"][i]) if ok else "",
                     "seconds": float(results["frames"][i]) / fps, "status": "ok" if ok else "error",
                     "frames": int(results["frames"][i]), "width": int(results["width"][i]),
                     "height": int(results["height"][i]), "error": error, "run_id": run_id})
        if not ok:
            error_rows.append({"source": str(source), "stage": error.split(":")[0], "error": error, "run_id": run_id})
    return rows, error_rows


def read_manifest(out: str | Path) -> "pyarrow.Table | None":
    """All manifest rows written so far under ``out/manifest/``, latest last; None before the first run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted((Path(out) / "manifest").glob("part-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default") if parts else None


def done_sources(out: str | Path) -> set[str]:
    """Sources whose latest status is ``ok`` and whose video file still exists (a rerun skips them)."""
    table = read_manifest(out)
    if table is None:
        return set()
    latest = {row["source"]: row for row in table.to_pylist()}
    return {s for s, row in latest.items() if row["status"] == "ok" and inside(out, row["video"]).is_file()}


def write_part(rows: list[dict[str, Any]], folder: Path, run_id: str, index: int) -> None:
    """``folder/part-{run_id}-{index}.parquet`` (atomic): one batch of manifest or error rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(folder / f"part-{run_id}-{index:05d}.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)


def consolidate_manifest(out: Path) -> Path:
    """Rewrite ``out/manifest.parquet``: one row per source, its latest status."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = read_manifest(out)
    rows = list({row["source"]: row for row in table.to_pylist()}.values()) if table is not None else []
    with atomic_path(out / "manifest.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=None) if rows else pa.table({c: [] for c in MANIFEST_COLUMNS}), tmp)
    return out / "manifest.parquet"
