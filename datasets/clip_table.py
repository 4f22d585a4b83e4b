"""The clip table: the Parquet format every stage after preprocessing reads.

One row per clip, in shards ``DIR/clips/*.parquet`` (written atomically), readable with plain
pyarrow, Ray Data or numpy — no hand-written byte format. Arrays are Arrow fixed-shape tensor
columns (``pyarrow.fixed_shape_tensor``, the canonical ``arrow.fixed_shape_tensor`` extension):
``pq.read_table(p)["spectral"].combine_chunks().to_numpy_ndarray()`` is ``(N, K, 4, H, W)`` and Ray
Data's numpy batches hold the same ndarray. Columns (:func:`clip_schema`):

==============  ===========================  ===========================================================
clip_id         string                       stable id: ``sha1("{source}#{start_frame}")[:16]``
source          string                       the input video (path or URI, as given)
start_frame     int32                        first frame of the clip, after resampling to ``fps``
num_frames      int32                        T
fps             float32
height, width   int32                        H, W of the stored image and spectral volume
num_freqs       int32                        K
image           binary                       PNG of the clip's first frame, ``(H, W, 3)`` RGB
spectral        tensor<float16>(K, 4, H, W)  the spectral volume ``S_k(p)`` (§4.1), px
motion_mean     float32                      mean over pixels and time of ``‖F_t(p)‖`` (px): a quality field
==============  ===========================  ===========================================================

Producers may add columns (quality measures, target frames); readers ignore what they do not use.
``gid preprocess`` adds the quality measures of gid.pipeline.clip_filters (``motion_p99``, ``cut_score``,
``inconsistent_frac``, ``photometric_error``, float32) and, with ``--target-frames N``, for renderer
training:

==============  ===========================  ===========================================================
target_t        fixed_size_list<int32>[N]    N frame indices t in [1, T)
target_images   list<binary>                 PNG of frame t, ``(H, W, 3)`` RGB
target_flows    tensor<float16>(N, 2, H, W)  ``F_t`` from frame 0 (px)
==============  ===========================  ===========================================================

Every reader goes through ONE loader, :func:`clip_arrays` (a pyarrow Table or a Ray numpy batch →
numpy arrays: PNGs decoded, tensors as float32). Tables of the old byte format (``spectral`` as
binary) are refused with an error that names ``python -m gid.datasets.clip_upgrade DIR``.
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
from gid.datasets.video_io import atomic_path

BASE_COLUMNS = ("clip_id", "source", "start_frame", "num_frames", "fps", "height", "width", "num_freqs", "image",
                "spectral", "motion_mean")
QUALITY_COLUMNS = ("motion_p99", "cut_score", "inconsistent_frac", "photometric_error")
TENSOR_COLUMNS = ("spectral", "target_flows")
IMAGE_COLUMNS = ("image", "target_images")


def clip_schema(num_freqs: int, height: int, width: int, target_frames: int = 0, quality: bool = False) -> pa.Schema:
    """The Arrow schema of a clip table with K = ``num_freqs`` at ``height`` × ``width``."""
    fields = [
        ("clip_id", pa.string()), ("source", pa.string()), ("start_frame", pa.int32()), ("num_frames", pa.int32()),
        ("fps", pa.float32()), ("height", pa.int32()), ("width", pa.int32()), ("num_freqs", pa.int32()),
        ("image", pa.binary()), ("spectral", pa.fixed_shape_tensor(pa.float16(), (num_freqs, 4, height, width))),
        ("motion_mean", pa.float32()),
    ]
    if quality:
        fields += [(name, pa.float32()) for name in QUALITY_COLUMNS]
    if target_frames:
        fields += [("target_t", pa.list_(pa.int32(), target_frames)), ("target_images", pa.list_(pa.binary())),
                   ("target_flows", pa.fixed_shape_tensor(pa.float16(), (target_frames, 2, height, width)))]
    return pa.schema(fields)


def tensor_array(values: np.ndarray, value_type: pa.DataType = pa.float16()) -> pa.ExtensionArray:
    """``(N, *shape)`` → an ``arrow.fixed_shape_tensor`` array of N cells (empty N allowed)."""
    values = np.ascontiguousarray(values, dtype=value_type.to_pandas_dtype())
    cell = int(np.prod(values.shape[1:]))
    storage = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=value_type), cell)
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(value_type, values.shape[1:]), storage)


def legacy_error(where: str | Path) -> ValueError:
    return ValueError(f"{where}: clip table in the old byte format (spectral as binary, before Arrow tensor "
                      f"columns); convert it with `python -m gid.datasets.clip_upgrade DIR` or rerun `gid preprocess`")


def check_format(schema: pa.Schema, where: str | Path) -> None:
    """Refuse a table whose ``spectral``/``target_flows`` are the old bytes rather than tensor columns."""
    for name in TENSOR_COLUMNS:
        if name in schema.names and not isinstance(schema.field(name).type, pa.FixedShapeTensorType):
            raise legacy_error(where)


def _tensor_column(column: Any, name: str) -> np.ndarray:
    """A tensor column of a Table (ChunkedArray) or of a Ray numpy batch (ndarray) → float32 ndarray."""
    if isinstance(column, pa.ChunkedArray):
        if not isinstance(column.type, pa.FixedShapeTensorType):
            raise legacy_error(f"column {name!r}")
        if len(column) == 0:
            return np.zeros((0, *column.type.shape), np.float32)
        return column.combine_chunks().to_numpy_ndarray().astype(np.float32)
    array = np.asarray(column)
    if array.dtype == object:  # Ray hands old binary cells through as objects
        raise legacy_error(f"column {name!r}")
    return array.astype(np.float32)


def clip_arrays(batch: pa.Table | dict[str, Any], columns: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """THE loader of the clip table: rows of a pyarrow Table (or a Ray numpy batch) → numpy arrays.

    Returns, for each requested column (default: all), with N rows:
    ``image (N, H, W, 3)`` uint8, ``spectral (N, K, 4, H, W)`` float32, ``target_images (N, n, H, W, 3)``
    uint8, ``target_flows (N, n, 2, H, W)`` float32, ``target_t (N, n)`` int64; any other column as a
    1-D array (strings as objects).
    """
    names = batch.column_names if isinstance(batch, pa.Table) else list(batch)
    if isinstance(batch, pa.Table):
        check_format(batch.schema, "clip table")
    columns = list(columns or names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"clip table lacks column(s) {', '.join(missing)} (it has {', '.join(names)}); "
                         "rerun `gid preprocess` (target columns need --target-frames N)")
    out: dict[str, np.ndarray] = {}
    for name in columns:
        column = batch[name] if isinstance(batch, dict) else batch.column(name)
        if name in TENSOR_COLUMNS:
            out[name] = _tensor_column(column, name)
            continue
        values = column.to_pylist() if isinstance(column, pa.ChunkedArray) else list(column)
        if name == "image":
            out[name] = np.stack([decode_image(v) for v in values]) if values else np.zeros((0, 0, 0, 3), np.uint8)
        elif name == "target_images":
            out[name] = np.stack([np.stack([decode_image(v) for v in cell]) for cell in values])
        elif name == "target_t":
            out[name] = np.asarray([list(cell) for cell in values], dtype=np.int64)
        else:
            out[name] = column.to_numpy(zero_copy_only=False) if isinstance(column, pa.ChunkedArray) else np.asarray(column)
    return out


def read_clip_arrays(path: str | Path, columns: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """:func:`clip_arrays` of a whole shard file or data folder (``DIR/clips``); for tests and small tables."""
    path = Path(path)
    table = read_clip_table(path, columns) if path.is_dir() else _read_shard(path, columns)
    return clip_arrays(table, columns)


def clip_table_info(data_dir: str | Path) -> dict[str, Any]:
    """T, fps, K, H, W and number of clips of a clip table; clear errors for a missing or empty one."""
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"{data_dir}: no such data folder; run `gid preprocess` or "
                                "`gid synth DIR --clips` to make one")
    paths = shard_paths(data_dir)
    columns = ["num_frames", "fps", "num_freqs", "height", "width"]
    meta = [pq.read_table(p, columns=columns) for p in paths]
    rows = sum(t.num_rows for t in meta)
    if rows == 0:
        raise ValueError(f"{data_dir}: the clip table has no rows; nothing to train on")
    first = next(t for t in meta if t.num_rows).slice(0, 1).to_pylist()[0]
    for table in meta:
        for name in columns:
            values = set(table.column(name).to_pylist())
            if len(values) > 1 or (values and values != {first[name]}):
                raise ValueError(f"{data_dir}: clips differ in {name} ({sorted(values)}); train on one resolution and T")
    return {**first, "num_clips": rows}


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


def make_clip_row(source: str, start_frame: int, fps: float, image: np.ndarray, spectral: np.ndarray,
                  num_frames: int, motion_mean: float, **extra: Any) -> dict[str, Any]:
    """One row of the clip table. ``image (H, W, 3)`` uint8, ``spectral (K, 4, H, W)``; with target
    frames ``target_t (n,)``, ``target_images (n, H, W, 3)`` uint8 and ``target_flows (n, 2, H, W)`` arrays."""
    num_freqs, channels, height, width = spectral.shape
    if channels != 4 or image.shape != (height, width, 3):
        raise ValueError(f"image {image.shape} and spectral {spectral.shape} do not describe one (H, W) clip")
    if "target_images" in extra:
        extra["target_images"] = [encode_image(frame) for frame in extra["target_images"]]
        extra["target_flows"] = np.asarray(extra["target_flows"], dtype=np.float16)
        extra["target_t"] = [int(t) for t in extra["target_t"]]
    return {
        "clip_id": clip_id(source, start_frame), "source": source, "start_frame": int(start_frame),
        "num_frames": int(num_frames), "fps": float(fps), "height": int(height), "width": int(width),
        "num_freqs": int(num_freqs), "image": encode_image(image), "spectral": np.asarray(spectral, dtype=np.float16),
        "motion_mean": float(motion_mean), **extra,
    }


def clip_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of :func:`make_clip_row` (one K, H, W) → a Table of :func:`clip_schema` (+ extra columns)."""
    if not rows:
        raise ValueError("no clip rows to write")
    num_freqs, _, height, width = rows[0]["spectral"].shape
    targets = len(rows[0].get("target_t", []))
    schema = clip_schema(num_freqs, height, width, targets, quality=all(q in rows[0] for q in QUALITY_COLUMNS))
    extra = [n for n in rows[0] if n not in schema.names]
    columns = {}
    for field in schema:
        values = [r[field.name] for r in rows]
        if field.name in TENSOR_COLUMNS:
            columns[field.name] = tensor_array(np.stack(values))
        else:
            columns[field.name] = pa.array(values, type=field.type)
    for name in extra:
        columns[name] = pa.array([r[name] for r in rows])
    return pa.table(columns)


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """Writer options: no dictionary and no min/max statistics for the tensor columns. Parquet tries a
    dictionary of every column by default; for millions of float16 values per row group that, plus
    their statistics, made writing 3.7× slower (757 → 204 ms per 256×160 clip, loaded machine), for
    the same file size."""
    plain = [name for name in schema.names if name not in TENSOR_COLUMNS]
    return {"use_dictionary": plain, "write_statistics": plain}


def write_shard(rows: list[dict[str, Any]] | pa.Table, path: str | Path) -> Path:
    """Write rows (or a Table of them) as one Parquet shard, atomically (a reader never sees half a shard)."""
    path = Path(path)
    table = rows if isinstance(rows, pa.Table) else clip_table(rows)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **parquet_options(table.schema))
    return path


def shard_paths(data_dir: str | Path) -> list[Path]:
    """The shards of ``data_dir/clips/``, sorted; clear errors when there are none or they are of the old format."""
    clips = Path(data_dir) / "clips"
    if not clips.is_dir():
        raise FileNotFoundError(f"{data_dir}: no clips/ folder; run `gid preprocess ... --out {data_dir}` first")
    paths = sorted(p for p in clips.glob("*.parquet") if not p.name.startswith("."))
    if not paths:
        raise FileNotFoundError(f"{clips}: no Parquet shards; the preprocessing run wrote no clips")
    check_format(pq.read_schema(paths[0]), paths[0])
    return paths


def _read_shard(path: Path, columns: list[str] | tuple[str, ...] | None = None) -> pa.Table:
    table = pq.read_table(path, columns=list(columns) if columns else None)
    check_format(table.schema, path)
    return table


def read_clip_table(data_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All clips of ``data_dir`` as one pyarrow Table."""
    return pa.concat_tables([_read_shard(p, columns) for p in shard_paths(data_dir)], promote_options="default")


def iter_clips(data_dir: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Yield ``(image (H, W, 3) uint8, spectral (K, 4, H, W) float32, row)`` shard by shard
    (``row``: the scalar columns)."""
    for path in shard_paths(data_dir):
        table = _read_shard(path)
        arrays = clip_arrays(table, ["image", "spectral"])
        scalars = table.drop_columns([c for c in table.column_names if c in TENSOR_COLUMNS + IMAGE_COLUMNS
                                      or c == "target_t"]).to_pylist()
        for image, spectral, row in zip(arrays["image"], arrays["spectral"], scalars):
            yield image, spectral, row


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
                arrays = clip_arrays(_read_shard(self.paths[i], ["image", "spectral"]))
                row_rng = np.random.default_rng([self.seed, self.epoch, int(i)])
                for j in (row_rng.permutation(len(arrays["image"])) if self.shuffle else range(len(arrays["image"]))):
                    image = torch.from_numpy(arrays["image"][j].transpose(2, 0, 1).astype(np.float32) / 255.0)
                    spectral = arrays["spectral"][j]
                    if self.scales is not None:
                        spectral = normalize(spectral, self.scales.astype(np.float32))
                    yield image, torch.from_numpy(np.ascontiguousarray(spectral))

    ClipDataset.__qualname__ = ClipDataset.__name__  # picklable as gid.datasets.clip_table.ClipDataset
    return ClipDataset
