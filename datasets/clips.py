"""The clip table: the Parquet format every stage after preprocessing reads.

One row per clip, in shards ``DIR/clips/*.parquet`` (written atomically), readable with plain
pyarrow — no Ray needed. Columns:

==============  ==========  ========================================================================
clip_id         string      stable id: ``sha1("{source}#{start_frame}")[:16]``
source          string      the input video (path or URI, as given)
start_frame     int32       first frame of the clip, after resampling to ``fps``
num_frames      int32       T
fps             float32
height, width   int32       H, W of the stored image and spectral volume
num_freqs       int32       K
image           binary      PNG of the clip's first frame, ``(H, W, 3)`` RGB
spectral        binary      float16 little-endian, C order, shape ``(K, 4, H, W)``
motion_mean     float32     mean over pixels and time of ``‖F_t(p)‖`` (px): a quality field
==============  ==========  ========================================================================

Producers may add columns (quality measures, target frames); readers ignore what they do not use.
``gid preprocess`` adds the quality measures of gid.pipeline.quality (``motion_p99``, ``cut_score``,
``inconsistent_frac``, ``photometric_error``, float32) and, with ``--target-frames N``, for renderer
training:

==============  ============  ======================================================================
target_t        list<int32>   N frame indices t in [1, T)
target_images   list<binary>  PNG of frame t, ``(H, W, 3)`` RGB
target_flows    list<binary>  ``F_t``: float16 little-endian, C order, shape ``(2, H, W)`` (px)
==============  ============  ======================================================================

``DIR/freq_scales.json`` holds the per-frequency scales of Eq. 4 (see gid.pipeline.normalize).

Reading back for training: :func:`read_clip_dataset` (a Ray Dataset) and :class:`ClipDataset` (a
torch ``IterableDataset`` of ``(image, spectral)``), both without loading the table into memory.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gid.datasets.safe_paths import inside
from gid.datasets.video import atomic_path

CLIP_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("source", pa.string()), ("start_frame", pa.int32()),
    ("num_frames", pa.int32()), ("fps", pa.float32()), ("height", pa.int32()), ("width", pa.int32()),
    ("num_freqs", pa.int32()), ("image", pa.binary()), ("spectral", pa.binary()), ("motion_mean", pa.float32()),
])

# Types of the optional columns, so every shard has the same schema whatever Python values made it.
EXTRA_TYPES = {
    "motion_p99": pa.float32(), "cut_score": pa.float32(), "inconsistent_frac": pa.float32(),
    "photometric_error": pa.float32(), "target_t": pa.list_(pa.int32()), "target_images": pa.list_(pa.binary()),
    "target_flows": pa.list_(pa.binary()),
}


def clip_id(source: str, start_frame: int) -> str:
    return hashlib.sha1(f"{source}#{start_frame}".encode()).hexdigest()[:16]


def encode_image(image: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 → PNG bytes (lossless)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes → ``(H, W, 3)`` uint8 RGB."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def encode_spectral(spectral: np.ndarray) -> bytes:
    """``(K, 4, H, W)`` → float16 little-endian bytes."""
    return np.ascontiguousarray(spectral, dtype="<f2").tobytes()


def decode_spectral(row: dict[str, Any]) -> np.ndarray:
    """The ``(K, 4, H, W)`` float32 spectral volume of a clip row."""
    shape = (row["num_freqs"], 4, row["height"], row["width"])
    return np.frombuffer(row["spectral"], dtype="<f2").reshape(shape).astype(np.float32)


def decode_targets(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t (N,) int, frames (N, H, W, 3) uint8, flows (N, 2, H, W) float32)`` of a row with target columns."""
    if not row.get("target_t"):
        raise ValueError(f"clip {row.get('clip_id')} has no target frames; preprocess with --target-frames N")
    shape = (2, row["height"], row["width"])
    flows = [np.frombuffer(b, dtype="<f2").reshape(shape).astype(np.float32) for b in row["target_flows"]]
    return np.asarray(row["target_t"]), np.stack([decode_image(b) for b in row["target_images"]]), np.stack(flows)


def make_clip_row(source: str, start_frame: int, fps: float, image: np.ndarray, spectral: np.ndarray,
                  num_frames: int, motion_mean: float, **extra: Any) -> dict[str, Any]:
    """One row of the clip table. ``image (H, W, 3)`` uint8, ``spectral (K, 4, H, W)``."""
    num_freqs, channels, height, width = spectral.shape
    if channels != 4 or image.shape != (height, width, 3):
        raise ValueError(f"image {image.shape} and spectral {spectral.shape} do not describe one (H, W) clip")
    return {
        "clip_id": clip_id(source, start_frame), "source": source, "start_frame": int(start_frame),
        "num_frames": int(num_frames), "fps": float(fps), "height": int(height), "width": int(width),
        "num_freqs": int(num_freqs), "image": encode_image(image), "spectral": encode_spectral(spectral),
        "motion_mean": float(motion_mean), **extra,
    }


def write_shard(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as one Parquet shard, atomically (a reader never sees half a shard)."""
    path = Path(path)
    table = pa.Table.from_pylist(rows)
    base = [f for f in CLIP_SCHEMA if f.name in table.column_names]
    extra = [pa.field(n, EXTRA_TYPES[n]) if n in EXTRA_TYPES else table.schema.field(n)
             for n in table.column_names if n not in CLIP_SCHEMA.names]
    table = table.select([f.name for f in base] + [f.name for f in extra]).cast(pa.schema(base + extra))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def shard_paths(data_dir: str | Path) -> list[Path]:
    """The shards of ``data_dir/clips/``, sorted; clear errors when there are none."""
    clips = Path(data_dir) / "clips"
    if not clips.is_dir():
        raise FileNotFoundError(f"{data_dir}: no clips/ folder; run `gid preprocess ... --out {data_dir}` first")
    paths = sorted(p for p in clips.glob("*.parquet") if not p.name.startswith("."))
    if not paths:
        raise FileNotFoundError(f"{clips}: no Parquet shards; the preprocessing run wrote no clips")
    return paths


def read_clip_table(data_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All clips of ``data_dir`` as one pyarrow Table."""
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in shard_paths(data_dir)], promote_options="default")


def iter_clips(data_dir: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Yield ``(image (H, W, 3) uint8, spectral (K, 4, H, W) float32, row)`` shard by shard."""
    for path in shard_paths(data_dir):
        for row in pq.read_table(path).to_pylist():
            yield decode_image(row["image"]), decode_spectral(row), row


def synthetic_to_clips(synth_dir: str | Path, out_dir: str | Path, quantile: float = 0.95) -> Path:
    """Write a `gid synth` folder's exact ground truth as a clip table plus ``freq_scales.json``.

    One clip per video (start frame 0). Useful to train and test on perfect motion, independent of
    optical flow. Returns ``out_dir``.
    """
    from gid.datasets.synthetic import load_ground_truth
    from gid.pipeline.normalize import FrequencyStats, save_scales

    synth_dir, out_dir = Path(synth_dir), Path(out_dir)
    manifest = synth_dir / "manifest.parquet"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: not a `gid synth` folder")
    rows, stats = [], None
    for entry in pq.read_table(manifest).to_pylist():
        gt = load_ground_truth(inside(synth_dir, entry["gt"]))
        spectral = gt["spectral"]
        stats = stats or FrequencyStats(num_freqs=spectral.shape[0])
        stats.update(spectral)
        motion = float(np.hypot(gt["trajectories"][:, 0], gt["trajectories"][:, 1]).mean())
        inside(synth_dir, entry["video"])  # refuse entries outside the folder; the source keeps its given form
        rows.append(make_clip_row(str(synth_dir / entry["video"]), 0, entry["fps"], gt["frame0"], spectral,
                                  entry["num_frames"], motion))
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    write_shard(rows, out_dir / "clips" / "synthetic-00000.parquet")
    save_scales(out_dir / "freq_scales.json", stats.quantile(quantile, nonzero=True), quantile, nonzero=True)
    stats.save(out_dir / "freq_stats.json")
    return out_dir


def read_clip_dataset(data_dir: str | Path, columns: list[str] | None = None):
    """The clip table of ``data_dir`` as a streaming Ray Dataset (one row per clip, columns as stored)."""
    import ray.data

    return ray.data.read_parquet([str(p) for p in shard_paths(data_dir)], columns=columns)


def __getattr__(name: str):
    """``ClipDataset`` is built on first access, so importing this module does not import torch."""
    if name == "ClipDataset":
        globals()[name] = _make_clip_dataset()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _make_clip_dataset():
    import torch.utils.data

    class ClipDataset(torch.utils.data.IterableDataset):
        """``(image (3, H, W) float32 in [0, 1], spectral (K, 4, H, W) float32)`` pairs for training.

        Shards are split between torch DataLoader workers and between distributed ranks (``rank`` /
        ``world_size``, by default from ``torch.distributed`` when it is initialised), so each clip is
        seen once per epoch across all of them. ``normalized=True`` applies Eq. 4 with
        ``data_dir/freq_scales.json``. ``shuffle`` permutes shards and the rows inside each shard,
        differently per :meth:`set_epoch`, identically on every rank.
        """

        def __init__(self, data_dir: str | Path, normalized: bool = False, shuffle: bool = False, seed: int = 0,
                     rank: int | None = None, world_size: int | None = None) -> None:
            import torch.distributed as dist

            self.paths = shard_paths(data_dir)
            self.scales = None
            if normalized:
                from gid.pipeline.normalize import load_scales

                self.scales = load_scales(Path(data_dir) / "freq_scales.json")
            distributed = dist.is_available() and dist.is_initialized()
            self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
            self.world_size = world_size if world_size is not None else (dist.get_world_size() if distributed else 1)
            if not 0 <= self.rank < self.world_size:
                raise ValueError(f"rank must be in [0, world_size={self.world_size}), got {self.rank}")
            self.shuffle, self.seed, self.epoch = shuffle, seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self):
            import torch
            import torch.utils.data

            from gid.pipeline.normalize import normalize

            info = torch.utils.data.get_worker_info()
            workers, worker = (info.num_workers, info.id) if info else (1, 0)
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(len(self.paths)) if self.shuffle else np.arange(len(self.paths))
            part, parts = self.rank * workers + worker, self.world_size * workers
            for i in order[part::parts]:
                rows = pq.read_table(self.paths[i], columns=["image", "spectral", "num_freqs", "height", "width"]).to_pylist()
                row_rng = np.random.default_rng([self.seed, self.epoch, int(i)])
                for j in (row_rng.permutation(len(rows)) if self.shuffle else range(len(rows))):
                    image = torch.from_numpy(decode_image(rows[j]["image"]).transpose(2, 0, 1).astype(np.float32) / 255.0)
                    spectral = decode_spectral(rows[j])
                    if self.scales is not None:
                        spectral = normalize(spectral, self.scales.astype(np.float32))
                    yield image, torch.from_numpy(np.ascontiguousarray(spectral))

    ClipDataset.__qualname__ = ClipDataset.__name__  # picklable as gid.datasets.clips.ClipDataset
    return ClipDataset
