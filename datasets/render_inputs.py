"""What `gid render` reads: INPUT arguments → items, and items → photos (and stored motion).

An item is ``{source, path, row, name}``: an image file (``row = -1``) or one row of a Parquet file
with an encoded-image column (a clip table from `gid preprocess` is one). ``source`` identifies the
item in the manifest (the path, or ``{path}#{row}``); ``name`` starts its video's file name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gid.datasets.render_outputs import failure

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
SPECTRAL_COLUMNS = ("spectral", "num_freqs", "height", "width", "num_frames")


def collect_inputs(inputs: list[str | Path], image_column: str = "image", spectral: bool = False) -> list[dict[str, Any]]:
    """Expand INPUT arguments into items ``{source, path, row, name}`` (row = -1 for image files).

    Accepts image files, folders (searched recursively for images), and Parquet files with an
    ``image_column`` of encoded images (a clip table from `gid preprocess` is one). With ``spectral``,
    only Parquet inputs with a ``spectral`` column are accepted.
    """
    import pyarrow.parquet as pq

    from gid.datasets.clip_table import check_format

    items: list[dict[str, Any]] = []
    if not inputs:
        raise ValueError("give at least one INPUT: image files, folders of images, or Parquet files")
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder; give images, folders or Parquet files")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + (".parquet",)
                           and not p.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) or Parquet files in this folder")
            items.extend(collect_inputs(found, image_column, spectral))
        elif path.suffix.lower() == ".parquet":
            schema = pq.read_schema(path)
            needed = [image_column] + (list(SPECTRAL_COLUMNS) if spectral else [])
            missing = [c for c in needed if c not in schema.names]
            if spectral:
                check_format(schema, path)
            if missing:
                raise ValueError(f"{path}: Parquet input lacks column(s) {', '.join(missing)}; "
                                 f"it has {', '.join(schema.names)} (choose the image column with --image-column)")
            items.extend({"source": f"{path}#{i}", "path": str(path), "row": i, "name": name}
                         for i, name in enumerate(_row_names(path, schema.names)))
        elif spectral:
            raise ValueError(f"{path}: --spectral renders the motion stored in clip tables; give Parquet files")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            items.append({"source": str(path), "path": str(path), "row": -1, "name": path.stem})
        else:
            raise ValueError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}) or Parquet file")
    return items


def _row_names(path: Path, columns: list[str]) -> list[str]:
    """Readable names of a Parquet file's rows: ``{stem of source}-{start_frame}`` for clip tables
    (so videos are named after the video the photo came from), else ``{file stem}-{row}``."""
    import pyarrow.parquet as pq

    if "source" not in columns:
        return [f"{path.stem}-{i}" for i in range(pq.ParquetFile(path).metadata.num_rows)]
    table = pq.read_table(path, columns=[c for c in ("source", "start_frame") if c in columns]).to_pylist()
    return [f"{Path(str(r['source'])).stem}" + (f"-{r['start_frame']}" if "start_frame" in r else "") for r in table]


def _read_parquet_rows(path: str, rows: list[int], columns: list[str]) -> dict[int, dict[str, Any]]:
    """The given global row numbers of one Parquet file, reading only the row groups that hold them
    (a clip table's ``spectral`` as a ``(K, 4, H, W)`` float32 array, through gid.datasets.clip_table.clip_arrays)."""
    import pyarrow.parquet as pq

    from gid.datasets.clip_table import clip_arrays

    pf = pq.ParquetFile(path)
    starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    out: dict[int, dict[str, Any]] = {}
    for group in sorted({int(np.searchsorted(starts, r, side="right") - 1) for r in rows}):
        table = pf.read_row_group(group, columns=columns)
        tensors = clip_arrays(table, ["spectral"]) if "spectral" in columns else {}
        records = table.drop_columns(list(tensors)).to_pylist()
        for r in rows:
            if starts[group] <= r < starts[group + 1]:
                out[r] = {**records[r - starts[group]], **{k: v[r - starts[group]] for k, v in tensors.items()}}
    return out


def read_photos(paths: list[str], rows: list[int], image_column: str, spectral: bool, max_side: int,
                num_frames: int) -> tuple[list[np.ndarray | None], list[np.ndarray | None], list[str]]:
    """Decode each item's photo and fit it to ``max_side`` (even sides, H.264).

    Returns, per item, the photo ``(H, W, 3)`` uint8, with ``spectral`` its stored volume
    ``(K, 4, h, w)`` float32 (else None), and an error (``""``, or ``"read: …"`` with None for both).
    A stored volume of a T-frame clip is scaled by ``num_frames / T``: the inverse DFT divides by the
    length (§4.1), so this keeps the amplitudes in pixels when the video has another number of frames.
    """
    from gid.datasets.clip_table import decode_image
    from gid.pipeline.images import fit_image, load_image

    rows = [int(r) for r in rows]
    columns = [image_column] + (list(SPECTRAL_COLUMNS) if spectral else [])
    by_file: dict[str, dict[int, dict[str, Any]]] = {}
    images: list[np.ndarray | None] = []
    motion: list[np.ndarray | None] = []
    errors: list[str] = []
    for path, row in zip(paths, rows):
        image, spec, error = None, None, ""
        try:
            if row < 0:
                image = load_image(path)
            else:
                if path not in by_file:
                    by_file[path] = _read_parquet_rows(path, [r for p, r in zip(paths, rows) if p == path], columns)
                record = by_file[path][row]
                data = record[image_column]
                if not isinstance(data, (bytes, bytearray)) or not data:
                    raise ValueError(f"{path} row {row}: column {image_column!r} holds no encoded image")
                try:
                    image = decode_image(data)
                except Exception as err:  # noqa: BLE001 - PIL raises several kinds
                    raise ValueError(f"{path} row {row}: column {image_column!r} cannot be read as an image ({err})") from None
                if spectral:
                    spec = np.ascontiguousarray(record["spectral"] * (num_frames / record["num_frames"]), np.float32)
            image = fit_image(image, max_side)
        except Exception as err:  # noqa: BLE001 - one bad photo becomes an error row, never a crash
            error, image, spec = failure("read", err), None, None
        images.append(image)
        motion.append(spec)
        errors.append(error)
    return images, motion, errors
