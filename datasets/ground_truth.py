"""Where the true motion of evaluated videos lives: a `gid synth` folder (``manifest.parquet`` +
``gt/*.npz``) or a folder of spectral volumes ``{id}.npy`` ``(K, 4, H, W)``, and which id a video
belongs to (`gid render` names videos ``{stem}-{hash}.mp4``)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np


def ground_truth_index(gt: Path) -> dict[str, Path]:
    """``{id: file}`` of a `gid synth` folder (``gt/*.npz``) or a folder of spectral ``{id}.npy``."""
    gt = Path(gt)
    if not gt.is_dir():
        raise NotADirectoryError(f"--gt {gt}: not a folder; give a `gid synth` folder or a folder of spectral .npy files")
    if (gt / "manifest.parquet").is_file():
        import pyarrow.parquet as pq

        rows = pq.read_table(gt / "manifest.parquet", columns=["video_id", "gt"]).to_pylist()
        return {row["video_id"]: gt / row["gt"] for row in rows}
    found = {p.stem: p for p in sorted(gt.glob("*.npy"))}
    if not found:
        raise FileNotFoundError(f"--gt {gt}: neither a `gid synth` folder (manifest.parquet) nor spectral {{id}}.npy files")
    return found


def match_id(stem: str, ids: Iterable[str]) -> str | None:
    """The id a video named ``stem`` belongs to: equal, or the longest id followed by ``-`` or ``_``."""
    best = None
    for key in ids:
        if stem == key:
            return key
        if stem.startswith(key) and stem[len(key)] in "-_" and (best is None or len(key) > len(best)):
            best = key
    return best


def load_true_spectral(path: Path) -> tuple[np.ndarray, int | None]:
    """``(spectral (K, 4, H, W), T or None)`` of a gt file: a `gid synth` ``.npz`` knows its T, a ``.npy`` not."""
    if path.suffix == ".npz":
        from gid.datasets.synthetic import load_ground_truth

        data = load_ground_truth(path)
        return data["spectral"], int(data["trajectories"].shape[0])
    spectral = np.load(path).astype(np.float32)
    if spectral.ndim != 4 or spectral.shape[1] != 4:
        raise ValueError(f"{path}: a spectral volume must be (K, 4, H, W), got {spectral.shape}")
    return spectral, None
