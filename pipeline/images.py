"""The image policy: what `gid animate` (and every other single-photo entry point) accepts.

:func:`load_image` turns any common still image into ``(H, W, 3)`` uint8 RGB, or refuses it with a
message that names the file and says what to do:

============================  ==============================================================
input                         result
============================  ==============================================================
missing path / a folder       ``FileNotFoundError`` / ``IsADirectoryError``
not an image, truncated       ``ValueError`` ("cannot be read as an image")
smaller than 16 px a side     ``ValueError`` (a 1×1 image has no motion to show)
over 50 megapixels            ``ValueError`` before decoding (decompression bombs included)
EXIF-rotated JPEG             rotated upright (``ImageOps.exif_transpose``)
RGBA, LA, palette+alpha       composited over white
grey, 1-bit, palette, CMYK,   converted to RGB
YCbCr, LAB, HSV
16-bit / 32-bit grey, float   rescaled to 8 bits (16-bit: ``v/257``; float: ``[0, 1] → [0, 255]``)
animated GIF/WebP/TIFF        first frame
============================  ==============================================================

:func:`fit_image` is the resize policy for rendering: keep the aspect ratio, shrink (never enlarge)
so the long side is at most ``max_side``, then trim to even width and height (H.264 needs them).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MIN_SIDE = 16
MAX_PIXELS = 50_000_000


def _to_rgb8(img, path: Path) -> np.ndarray:
    """A decoded PIL image in any mode → ``(H, W, 3)`` uint8 RGB (see the module table)."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            arr = arr * 255.0 if np.nanmax(arr) <= 1.0 else arr
        elif mode.startswith("I;16") or np.nanmax(arr) > 255:
            arr = arr / 257.0
        grey = np.clip(np.nan_to_num(np.round(arr)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a still image as ``(H, W, 3)`` uint8 RGB, following the module's policy table.

    Args:
        path: any format Pillow reads (PNG, JPEG, TIFF, WebP, BMP, GIF, …).
        max_pixels: refuse images with more pixels than this (checked from the header, before decoding).

    Raises:
        FileNotFoundError, IsADirectoryError, ValueError: with a message naming ``path``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file; check the path")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not an image; give one image file")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ValueError(f"{path}: image is too large ({width}x{height} = {width * height / 1e6:.0f} MP, "
                                 f"limit {max_pixels / 1e6:.0f} MP); downscale it first")
            if min(width, height) < MIN_SIDE:
                raise ValueError(f"{path}: image is too small ({width}x{height}); gid needs at least "
                                 f"{MIN_SIDE} px on each side to show motion")
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return np.ascontiguousarray(_to_rgb8(img, path))
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: image is too large ({err}); downscale it first") from None
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: cannot be read as an image ({err}); give a PNG, JPEG, TIFF or WebP photo") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot be read as an image (corrupt or truncated: {err}); re-export it") from None


def fit_image(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Resize policy for rendering: ``(H, W, 3)`` → ``(H', W', 3)`` with the same aspect ratio.

    Shrinks with area averaging so ``max(H', W') ≤ max_side`` (never enlarges), then drops the last
    row/column if needed so H' and W' are even (H.264 yuv420p).
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if max_side < MIN_SIDE:
        raise ValueError(f"--max-side must be at least {MIN_SIDE}, got {max_side}")
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    height, width = image.shape[:2]
    return np.ascontiguousarray(image[: height - height % 2, : width - width % 2])
