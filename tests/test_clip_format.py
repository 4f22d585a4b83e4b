"""The clip table's Arrow format: tensor columns, the one loader, and old byte-format tables."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gid.datasets.clip_table import clip_arrays, make_clip_row, read_clip_arrays, read_clip_table, write_shard


def _rows(count: int = 3, k: int = 4, h: int = 12, w: int = 20, targets: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [make_clip_row(f"v{i}.mp4", 10 * i, 30.0, rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                          rng.normal(0, 3, (k, 4, h, w)).astype(np.float16), 40, 1.0, target_t=[3, 7],
                          target_images=rng.integers(0, 256, (targets, h, w, 3), dtype=np.uint8),
                          target_flows=rng.normal(0, 2, (targets, 2, h, w)))
            for i in range(count)]


def test_tensor_columns_read_back_exactly_with_pyarrow_numpy_and_the_loader(tmp_path):
    rows = _rows()
    path = write_shard(rows, tmp_path / "clips" / "a.parquet")
    table = pq.read_table(path)
    assert isinstance(table.schema.field("spectral").type, pa.FixedShapeTensorType)
    assert table.schema.field("spectral").type.shape == [4, 4, 12, 20]
    plain = table["spectral"].combine_chunks().to_numpy_ndarray()  # no gid code: plain pyarrow
    np.testing.assert_array_equal(plain, np.stack([r["spectral"] for r in rows]))
    arrays = read_clip_arrays(tmp_path)
    np.testing.assert_array_equal(arrays["spectral"], plain.astype(np.float32))
    np.testing.assert_array_equal(arrays["target_flows"], np.stack([r["target_flows"] for r in rows]).astype(np.float32))
    assert arrays["image"].shape == (3, 12, 20, 3) and arrays["target_images"].shape == (3, 2, 12, 20, 3)
    assert arrays["target_t"].tolist() == [[3, 7]] * 3 and arrays["start_frame"].tolist() == [0, 10, 20]
    # A Ray numpy batch holds the tensor column as an ndarray: the loader gives the same arrays.
    batch = {"image": np.array(table["image"].to_pylist(), dtype=object), "spectral": plain}
    np.testing.assert_array_equal(clip_arrays(batch, ["spectral"])["spectral"], arrays["spectral"])
    np.testing.assert_array_equal(clip_arrays(batch, ["image"])["image"], arrays["image"])


def _legacy(table: pa.Table) -> pa.Table:
    """The same rows in the old byte format (spectral and flows as float16 little-endian bytes)."""
    spectral = table["spectral"].combine_chunks().to_numpy_ndarray()
    flows = table["target_flows"].combine_chunks().to_numpy_ndarray()
    table = table.set_column(table.column_names.index("spectral"), "spectral",
                             pa.array([s.astype("<f2").tobytes() for s in spectral], pa.binary()))
    table = table.set_column(table.column_names.index("target_flows"), "target_flows",
                             pa.array([[f.astype("<f2").tobytes() for f in cell] for cell in flows], pa.list_(pa.binary())))
    return table.set_column(table.column_names.index("target_t"), "target_t", table["target_t"].cast(pa.list_(pa.int32())))


def test_old_tables_are_refused_with_the_way_to_convert_them_and_the_converter_restores_them(tmp_path):
    path = write_shard(_rows(), tmp_path / "clips" / "a.parquet")
    new = pq.read_table(path)
    pq.write_table(_legacy(new), path)
    with pytest.raises(ValueError, match=r"a\.parquet: clip table in the old byte format.*python -m gid\.datasets\.clip_upgrade"):
        read_clip_table(tmp_path)
    with pytest.raises(ValueError, match="old byte format"):  # what a Ray numpy batch of an old table holds
        clip_arrays({"spectral": np.array(new["spectral"].to_pylist(), dtype=object)})
    done = subprocess.run([sys.executable, "-m", "gid.datasets.clip_upgrade", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 shard(s) converted" in done.stdout
    assert pq.read_table(path).equals(new)
    again = subprocess.run([sys.executable, "-m", "gid.datasets.clip_upgrade", str(tmp_path)], capture_output=True, text=True)
    assert "0 shard(s) converted" in again.stdout
    missing = subprocess.run([sys.executable, "-m", "gid.datasets.clip_upgrade", str(tmp_path / "nope")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("gid: error: ") and "no clips/ folder" in missing.stderr
