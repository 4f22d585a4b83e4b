"""`gid serve` API through FastAPI's TestClient: uploads, limits, motion jobs and the modal basis."""
import io
import time

import numpy as np
import pytest
from PIL import Image

from gid.pipeline.dynamics import modal_basis
from gid.pipeline.warping import resize_spectral
from gid.stages.serve import ServeConfig, create_app


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    cfg = ServeConfig(examples=2, work_side=64, max_upload_bytes=200_000, max_pixels=1_000_000,
                      spectral_frames=32, spectral_fps=30.0)
    with TestClient(create_app(cfg)) as c:
        yield c


def png_bytes(width=80, height=60, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, format="PNG")
    return buf.getvalue()


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def wait_ready(client, pid, timeout=400):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        info = client.get(f"/api/photos/{pid}").json()
        if info["state"] != "running":
            return info
        time.sleep(0.05)
    raise AssertionError(f"motion job of {pid} did not finish in {timeout} s")


def test_page_and_config(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="poke"' in page.text and "app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/config").json() == {"model": False, "examples": 2, "max_upload_bytes": 200_000,
                                                "max_video_seconds": 30.0, "spectral_frames": 32, "spectral_fps": 30.0}


def test_upload_with_spectral_gives_the_modal_basis_at_the_working_size(client):
    rng = np.random.default_rng(1)
    spectral = rng.standard_normal((6, 4, 30, 40)).astype(np.float32)
    res = client.post("/api/photos", files={"photo": ("p.png", png_bytes(80, 60), "image/png"),
                                            "spectral": ("s.npy", npy_bytes(spectral), "application/octet-stream")})
    assert res.status_code == 200, res.text
    pid, width, height = res.json()["id"], res.json()["width"], res.json()["height"]
    assert (width, height) == (64, 48)  # fitted to work_side = 64, aspect kept
    info = wait_ready(client, pid)
    assert info["state"] == "ready" and info["modes"] == 5
    expected = modal_basis(resize_spectral(spectral, (48, 64)), 32, 30.0)
    np.testing.assert_allclose(info["omega"], expected.omega)
    basis = np.frombuffer(client.get(f"/api/photos/{pid}/basis.bin").content, "<f4").reshape(5, 4, 48, 64)
    np.testing.assert_allclose(basis[:, 0] + 1j * basis[:, 1], expected.shapes[:, 0], atol=1e-5)
    np.testing.assert_allclose(basis[:, 2] + 1j * basis[:, 3], expected.shapes[:, 1], atol=1e-5)
    image = np.asarray(Image.open(io.BytesIO(client.get(f"/api/photos/{pid}/image.png").content)))
    assert image.shape == (48, 64, 3)


def test_example_scene_carries_its_exact_motion(client):
    from gid.datasets.synthetic import SynthConfig, generate_video

    res = client.post("/api/examples/1")
    assert res.status_code == 200
    info = wait_ready(client, res.json()["id"])
    assert info["state"] == "ready" and info["modes"] == 15
    video = generate_video(1, 0, SynthConfig(num_frames=32, width=256, height=160))
    expected = modal_basis(resize_spectral(video.spectral, (40, 64)), 32, 30.0)
    basis = np.frombuffer(client.get(f"/api/photos/{res.json()['id']}/basis.bin").content, "<f4").reshape(15, 4, 40, 64)
    np.testing.assert_allclose(basis[:, 0] + 1j * basis[:, 1], expected.shapes[:, 0], atol=1e-4)
    assert client.post("/api/examples/2").status_code == 404


@pytest.mark.parametrize("files,status,message", [
    ({"photo": ("notes.txt", b"just some text", "text/plain")}, 400, "notes.txt: cannot be read as an image"),
    ({"photo": ("../..", b"just some text", "image/png")}, 400, "../..: cannot be read as an image"),
    ({"photo": ("big.png", b"x" * 200_001, "image/png")}, 413, "larger than the 0.191 MB upload limit"),
    ({"photo": ("empty.png", b"", "image/png")}, 400, "empty.png is empty"),
    ({"photo": ("tiny.png", png_bytes(4, 4), "image/png")}, 400, "too small"),
    ({"photo": ("p.png", png_bytes(), "image/png")}, 400, "no motion model"),
    ({"photo": ("p.png", png_bytes(), "image/png"), "spectral": ("s.npy", b"nope", "x")}, 400, "s.npy: not a .npy"),
    ({"photo": ("p.png", png_bytes(), "image/png"),
      "spectral": ("s.npy", npy_bytes(np.zeros((6, 2, 8, 8), np.float32)), "x")}, 400, "must have shape (K ≥ 2, 4, H, W)"),
    ({"photo": ("p.png", png_bytes(), "image/png"),
      "spectral": ("s.npy", npy_bytes(np.full((6, 4, 8, 8), np.nan, np.float32)), "x")}, 400, "finite floats"),
])
def test_bad_uploads_get_readable_errors(client, files, status, message):
    res = client.post("/api/photos", files=files)
    assert res.status_code == status, res.text
    assert message in res.json()["detail"]


def test_decompression_bomb_is_refused_before_decoding(client):
    """A 20000×20000 PNG of a few KB: refused from its header (400 MP > 1 MP limit)."""
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    assert len(buf.getvalue()) < 200_000
    res = client.post("/api/photos", files={"photo": ("bomb.png", buf.getvalue(), "image/png")})
    assert res.status_code == 400 and "too large" in res.json()["detail"]


def test_rgba_photo_is_converted(client):
    spectral = np.zeros((4, 4, 8, 8), np.float32)
    spectral[1, 0] = 1.0
    res = client.post("/api/photos", files={"photo": ("a.png", png_bytes(40, 40, "RGBA"), "image/png"),
                                            "spectral": ("s.npy", npy_bytes(spectral), "x")})
    assert res.status_code == 200 and wait_ready(client, res.json()["id"])["state"] == "ready"


def test_unknown_photo_and_basis_not_ready(client):
    assert "no photo" in client.get("/api/photos/nope").json()["detail"]
    assert client.get("/api/photos/nope/basis.bin").status_code == 404


def test_serve_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        ServeConfig(model=tmp_path)


def test_huge_request_is_refused_from_its_header(client):
    res = client.post("/api/photos", content=b"x" * 500_000, headers={"content-type": "multipart/form-data; boundary=x"})
    assert res.status_code == 413 and "larger than the 0.191 MB limit per file" in res.json()["detail"]
