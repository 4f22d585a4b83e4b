"""Convert a clip table of the old byte format into Arrow tensor columns, in place.

Before the tensor columns, ``spectral`` was float16 little-endian bytes of ``(K, 4, H, W)`` with
the shape in ``num_freqs``/``height``/``width``, and ``target_flows`` a list of such bytes of
``(2, H, W)``. Each shard is rewritten atomically; shards already in the new format are left alone::

    python -m gid.datasets.clip_upgrade DIR      # DIR/clips/*.parquet
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gid.datasets.clip_table import TENSOR_COLUMNS, tensor_array, write_shard


def upgrade_shard(path: str | Path) -> bool:
    """Rewrite one shard with tensor columns; False when it already has them."""
    table = pq.read_table(path)
    old = [n for n in TENSOR_COLUMNS if n in table.column_names and not isinstance(table.schema.field(n).type,
                                                                                     pa.FixedShapeTensorType)]
    if not old:
        return False
    k, h, w = (table.column(n).to_numpy() for n in ("num_freqs", "height", "width"))
    if len(set(k)) > 1 or len(set(h)) > 1 or len(set(w)) > 1:
        raise ValueError(f"{path}: clips of several sizes in one shard; a tensor column holds one shape")
    shape = (int(k[0]), 4, int(h[0]), int(w[0])) if len(k) else (1, 4, 1, 1)
    if "spectral" in old:
        cells = [np.frombuffer(b, "<f2").reshape(shape) for b in table.column("spectral").to_pylist()]
        table = table.set_column(table.column_names.index("spectral"), "spectral",
                                 tensor_array(np.stack(cells) if cells else np.zeros((0, *shape), np.float16)))
    if "target_flows" in old:
        flows = [np.stack([np.frombuffer(b, "<f2").reshape(2, *shape[2:]) for b in cell])
                 for cell in table.column("target_flows").to_pylist()]
        table = table.set_column(table.column_names.index("target_flows"), "target_flows", tensor_array(np.stack(flows)))
        n = flows[0].shape[0]
        table = table.set_column(table.column_names.index("target_t"), "target_t",
                                 table.column("target_t").cast(pa.list_(pa.int32(), n)))
    write_shard(table, path)
    return True


def upgrade_clip_table(data_dir: str | Path) -> int:
    """Upgrade every shard of ``data_dir/clips``; returns how many were rewritten."""
    clips = Path(data_dir) / "clips"
    if not clips.is_dir():
        raise FileNotFoundError(f"{data_dir}: no clips/ folder; give the --out folder of `gid preprocess`")
    return sum(upgrade_shard(p) for p in sorted(clips.glob("*.parquet")) if not p.name.startswith("."))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m gid.datasets.clip_upgrade DIR", file=sys.stderr)
        sys.exit(2)
    try:
        count = upgrade_clip_table(sys.argv[1])
    except (OSError, ValueError) as err:
        print(f"gid: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"{count} shard(s) converted to tensor columns in {sys.argv[1]}/clips")
