"""The image policy of gid.pipeline.images: every common kind of still converts or is refused clearly."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from gid.pipeline.images import fit_image, load_image


def _rgb(h=32, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_round_trips_exactly(tmp_path):
    image = _rgb()
    Image.fromarray(image).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, image)


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = (200, 10, 50)
    rgba[:10, :, 3] = 255  # top half opaque, bottom transparent
    rgba[10:, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[:10], np.broadcast_to([200, 10, 50], (10, 20, 3)))
    np.testing.assert_array_equal(out[10:], 255)


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "LA"])
def test_other_modes_become_rgb(tmp_path, mode):
    grey = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (24, 1))
    img = Image.fromarray(grey, "L").convert(mode)
    path = tmp_path / ("a.jpg" if mode == "CMYK" else "a.png")
    img.save(path)
    out = load_image(path)
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8
    expected = np.asarray(img.convert("RGB"))
    tolerance = 8 if mode == "CMYK" else 0  # JPEG is lossy
    assert np.abs(out.astype(int) - expected).max() <= tolerance


def test_16_bit_grey_is_rescaled_to_8_bits(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16).repeat(16, 0).repeat(8, 1)
    Image.fromarray(values).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode.startswith("I")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, [0, 8, 16], 0], [0, 100, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_float_tiff_in_unit_range_is_scaled(tmp_path):
    values = np.full((16, 16), 0.5, np.float32)
    Image.fromarray(values, "F").save(tmp_path / "a.tif")
    assert np.all(load_image(tmp_path / "a.tif") == 128)


def test_exif_rotation_is_applied(tmp_path):
    img = Image.fromarray(_rgb(20, 40))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    img.save(tmp_path / "a.jpg", exif=exif)
    assert load_image(tmp_path / "a.jpg").shape == (40, 20, 3)


def test_refusals_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(IsADirectoryError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "notes.png").write_text("this is text, not pixels")
    with pytest.raises(ValueError, match="notes.png: cannot be read as an image"):
        load_image(tmp_path / "notes.png")
    Image.fromarray(_rgb(1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(ValueError, match="too small"):
        load_image(tmp_path / "dot.png")
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="too large"):
        load_image(tmp_path / "big.png", max_pixels=1000)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("side", [9000, 20000])
def test_huge_header_is_refused_before_decoding(tmp_path, side):
    """A PNG whose header claims side x side pixels but holds almost no data is refused by size."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(10))) + _chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    with pytest.raises(ValueError, match="bomb.png: image is too large"):
        load_image(tmp_path / "bomb.png")


def test_truncated_jpeg_is_refused(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.jpg: cannot be read"):
        load_image(tmp_path / "cut.jpg")


def test_fit_image_keeps_aspect_and_even_size():
    out = fit_image(_rgb(603, 1001), max_side=500)
    assert out.shape[1] <= 500 and out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0
    assert abs(out.shape[1] / out.shape[0] - 1001 / 603) < 0.01
    small = _rgb(31, 45)
    np.testing.assert_array_equal(fit_image(small), small[:30, :44])  # never enlarged, only trimmed
