"""Checks of input and output files, next to their formats: every command runs them before it starts
Ray or writes anything (option values are checked by gid.stages.options, a Ray address by
gid.stages.ray_runtime).

Each check raises ``ValueError`` / ``FileNotFoundError`` / ``PermissionError`` with a message in the
form `gid` prints as one line: ``<what> (<input>); <what to do>``. They read headers only (a
safetensors header, a video container's streams, an image's header, a ``.npy`` header), so they cost
milliseconds even for large files.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def input_file(path: Path, option: str, what: str) -> Path:
    """An existing, non-empty file (not a folder)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file ({option} {path}); give the path of {what}")
    if path.is_dir():
        raise IsADirectoryError(f"a folder where a file was expected ({option} {path}); give the path of {what}")
    if path.stat().st_size == 0:
        raise ValueError(f"the file is empty ({option} {path}); give the path of {what}")
    return path


def input_dir(path: Path, option: str, what: str) -> Path:
    """An existing folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such folder ({option} {path}); give {what}")
    if not path.is_dir():
        raise NotADirectoryError(f"a file where a folder was expected ({option} {path}); give {what}")
    return path


def output_dir(path: Path, option: str) -> Path:
    """A folder that exists or can be made, and in which a file can be created (tried and removed)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"a file is in the way of the output folder ({option} {path}); choose another "
                                 f"{option} or move the file")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(f"cannot write to {path}: {ancestor} is a file ({option} {path}); "
                                 f"choose another {option}")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write to {ancestor} ({option} {path}): {err.strerror or err}; choose a "
                              f"writable {option}") from None
    return path


def output_file(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file path whose folder is writable (see :func:`output_dir`), not a folder, with one of ``suffixes``."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"the output must end in {' or '.join(suffixes)} ({option} {path}); rename it")
    if path.is_dir():
        raise IsADirectoryError(f"a folder is in the way of the output file ({option} {path}); choose a file name")
    output_dir(path.parent, option)
    return path


def free_disk(folder: Path, need: int, what: str, option: str) -> None:
    """ValueError if the disk that will hold ``folder`` has less than ``need`` bytes (plus 1 %) free."""
    ancestor = Path(folder)
    while not ancestor.exists():
        ancestor = ancestor.parent
    free = shutil.disk_usage(ancestor).free
    if free < need * 1.01:
        raise ValueError(f"{what} need about {need / 2**20:.0f} MiB, but only {free / 2**20:.0f} MiB are free "
                         f"({option} {folder}); free some disk space or choose another {option}")


def safetensors_file(path: Path, option: str) -> None:
    """A complete safetensors file: its JSON header parses and its tensors end where the file ends."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if not 2 <= length <= size - 8:
                raise ValueError("bad header length")
            header = json.loads(f.read(length))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        raise ValueError(f"{path.name} is not a safetensors file ({option} {path}); re-save or re-download "
                         "the weights") from None
    if 8 + length + end != size:
        raise ValueError(f"{path.name} is cut short or padded: {size} bytes, its header says {8 + length + end} "
                         f"({option} {path}); re-save or re-download the weights")


def weights_folder(folder: Path, option: str, what: str) -> Path:
    """A save_pretrained folder: config.json and complete ``*.safetensors`` weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder ({option} {folder}); give {what}")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {folder} ({option} {folder}); give {what}")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"no *.safetensors weights in {folder} ({option} {folder}); give {what}")
    for path in weights:
        safetensors_file(path, option)
    return folder


def bundle(folder: Path, option: str = "--model", parts: tuple[str, ...] = ("vae", "unet")) -> dict:
    """A model bundle from `gid train`: its ``model_index.json`` (or the older bundle.json), and each of
    ``parts`` a complete weights folder.

    Returns the bundle's pipeline config (:func:`gid.pipeline.motion_pipeline.read_bundle_config`: frequency
    scales, T, fps, preset, components).
    """
    from gid.pipeline.motion_pipeline import read_bundle_config

    folder = input_dir(folder, option, "a model bundle folder from `gid train`")
    try:
        config = read_bundle_config(folder)
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"{err} ({option} {folder})") from None
    for part in parts:
        if not (folder / part).is_dir():
            command = "vae" if part == "vae" else "motion"
            raise FileNotFoundError(f"the bundle has no {part}/ ({option} {folder}); run `gid train {command} "
                                    f"--out {folder}`")
        weights_folder(folder / part, option, f"the bundle's {part} (retrain it)")
    return config


def image_file(path: Path, option: str = "IMAGE") -> Path:
    """An image Pillow can identify from its header."""
    from PIL import Image, UnidentifiedImageError

    path = input_file(path, option, "a photo (PNG, JPEG, …)")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"not a readable image: {err} ({option} {path}); give a PNG, JPEG, TIFF or WebP file") from None
    return path


def npy_file(path: Path, option: str, what: str) -> tuple[int, ...]:
    """A ``.npy`` file with a valid header; returns its shape (read from the header, no data loaded)."""
    import numpy as np

    path = input_file(path, option, what)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"not a .npy array ({err}) ({option} {path}); give {what} saved with numpy.save") from None
    return tuple(array.shape)


def video_file(path: Path, option: str = "INPUTS") -> None:
    """A local file PyAV opens and that has a video stream."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
    except (OSError, av.FFmpegError, ValueError) as err:
        raise ValueError(f"not a readable video: {err} ({option} {path}); give an MP4, MOV, MKV, AVI or WebM "
                         "file") from None


def video_inputs(inputs: list[str]) -> None:
    """`gid preprocess` has something to work on: one line naming the input when every local, literal
    input is missing, empty or not a video.

    When at least one input is usable (or is a glob or URI, resolved by the run), the bad ones are left
    to the run, which records each as an error row: one bad file never stops a run.
    """
    problems: list[Exception] = []
    for item in inputs:
        if "://" in item or any(c in item for c in "*?["):
            return
        path = Path(item)
        try:
            if not path.exists():
                raise FileNotFoundError(f"no such file or folder (INPUTS {item}); give videos, folders of videos, "
                                        "globs or a text file listing them")
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                video_file(path)
            elif path.is_file() and path.stat().st_size == 0:
                raise ValueError(f"the file is empty (INPUTS {item}); give videos or a text file listing them")
        except (FileNotFoundError, ValueError) as err:
            problems.append(err)
            continue
        return
    if problems:
        raise problems[0]


def clip_table(path: Path, option: str = "--data") -> Path:
    """A clip table folder (clips/*.parquet), as written by `gid preprocess`."""
    folder = input_dir(path, option, "a clip table folder from `gid preprocess`")
    if not (folder / "clips").is_dir() or not any((folder / "clips").glob("*.parquet")):
        raise FileNotFoundError(f"no clips/*.parquet in {folder} ({option} {folder}); run `gid preprocess ... "
                                f"--out {folder}` first")
    return folder
