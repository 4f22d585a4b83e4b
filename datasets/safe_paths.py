"""Paths read from manifests stay inside their folder.

A manifest (``manifest.parquet`` of `gid synth` or `gid render`) names files relative to its folder.
The file may come from anyone, so a name like ``../../etc/passwd``, an absolute path, or a symlink
pointing out of the folder must not make gid read or overwrite files elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path


def inside(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """``root / relative``, resolved; ValueError if it lies outside ``root`` (``..``, absolute, symlinks)."""
    root_path = Path(root).resolve()
    text = os.fspath(relative)
    if not text or "\0" in text:
        raise ValueError(f"{root}: a manifest entry has an empty or invalid file name {text!r}")
    path = (root_path / text).resolve()
    if path != root_path and root_path not in path.parents:
        raise ValueError(f"{root}: manifest entry {text!r} points outside the folder ({path}); "
                         "manifests may only name files inside their own folder")
    return path
