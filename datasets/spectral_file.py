"""Spectral-volume files: a ``.npy``, a ``.npz`` with a ``spectral`` array, or a `gid motion` folder.

A `gid motion` folder holds ``spectral.npy`` ``(K, 4, H, W)`` float32 (px, §4.1 channels), ``frame0.png``
(frame 0 at that size) and ``motion.json`` (``source``, ``start``, ``T``, ``fps``, ``K``, ``size``
``[W, H]``, ``flow``, ``camera``). Loading a folder (or its ``spectral.npy``) also gives the T and fps
the volume was computed over; a bare array gives ``None`` for both. Written atomically: each file
under a temporary name, renamed when complete, ``motion.json`` last.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gid.datasets.video_io import atomic_path


@dataclass
class SpectralFile:
    """spectral ``(K, 4, H, W)`` float32; num_frames and fps of its clip when known (from motion.json)."""

    spectral: np.ndarray
    num_frames: int | None = None
    fps: float | None = None


def load_spectral(path: str | Path) -> SpectralFile:
    """Read a spectral volume from a ``.npy``, a ``.npz`` (its ``spectral`` array) or a `gid motion` folder."""
    path = Path(path)
    folder = path if path.is_dir() else None
    if folder is None and path.name == "spectral.npy" and (path.parent / "motion.json").is_file():
        folder = path.parent
    if folder is not None:
        path = folder / "spectral.npy"
    if not path.is_file():
        raise FileNotFoundError(f"no spectral volume ({path}); give a .npy of shape (K, 4, H, W) or a `gid motion` folder")
    try:
        spectral = np.load(path, allow_pickle=False)
        if isinstance(spectral, np.lib.npyio.NpzFile):
            with spectral:
                if "spectral" not in spectral.files:
                    raise ValueError(f"{path}: this .npz has no 'spectral' array (it has {', '.join(spectral.files)})")
                spectral = spectral["spectral"]
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a .npy array ({err}); save the spectral volume with numpy.save") from None
    except ValueError as err:
        message = str(err) if str(err).startswith(str(path)) else f"{path}: not a .npy array ({err})"
        raise ValueError(f"{message}; save the spectral volume with numpy.save") from None
    if spectral.ndim != 4 or spectral.shape[1] != 4:
        raise ValueError(f"{path}: a spectral volume must have shape (K, 4, H, W), got {spectral.shape}")
    if folder is None or not (folder / "motion.json").is_file():
        return SpectralFile(spectral)
    try:
        meta = json.loads((folder / "motion.json").read_text())
        return SpectralFile(spectral, int(meta["T"]), float(meta["fps"]))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{folder / 'motion.json'}: unreadable ({err}); rerun `gid motion`") from None


def save_motion(folder: str | Path, spectral: np.ndarray, frame0: np.ndarray, meta: dict) -> Path:
    """Write a `gid motion` folder: ``spectral.npy``, ``frame0.png`` and ``motion.json`` (``meta``)."""
    import cv2

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--out {folder} is a file; give a folder")
    with atomic_path(folder / "spectral.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(spectral, dtype=np.float32))
    with atomic_path(folder / "frame0.png") as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(frame0[..., ::-1])):
            raise OSError(f"cannot write {folder / 'frame0.png'}")
    with atomic_path(folder / "motion.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return folder
