"""`gid interact --model` and `gid serve --model` with a small randomly initialised bundle."""
import io
import time

import numpy as np
import pytest
from PIL import Image

STEPS, T = 3, 32


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A random tiny-preset bundle written through the agreed save_pretrained APIs."""
    from gid.testing.bundles import write_random_bundle

    return write_random_bundle(tmp_path_factory.mktemp("bundle"), num_frames=T)


@pytest.fixture(scope="module")
def photo_png():
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 80)[None, :, None] * np.ones((60, 1, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + rng.normal(0, 20, (60, 80, 3)), 0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_predicted_motion_is_the_pipelines_with_progress(bundle, photo_png):
    import torch

    from gid.pipeline import GIDPipeline
    from gid.pipeline.motion_source import predict_motion

    image = np.asarray(Image.open(io.BytesIO(photo_png)))
    steps = []
    pipe = GIDPipeline.from_pretrained(bundle)
    source = predict_motion(pipe, image, STEPS, seed=4, callback=lambda s, n: steps.append((s, n)))
    assert steps == [(s, STEPS) for s in range(1, STEPS + 1)]
    expected = pipe(torch.tensor(image).permute(2, 0, 1)[None].float() / 255, num_inference_steps=STEPS, seed=4,
                    progress=False)[0].numpy()
    np.testing.assert_allclose(source.spectral, expected, rtol=1e-5, atol=1e-6)
    assert (source.num_frames, source.fps) == (T, 30.0) and source.spectral.shape[:2] == (16, 4)


def test_serve_predicts_uploaded_photos(bundle, photo_png):
    from fastapi.testclient import TestClient

    from gid.stages.serve import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(model=bundle, examples=0, work_side=64, steps=STEPS))) as client:
        assert client.get("/api/config").json()["model"] is True
        res = client.post("/api/photos", files={"photo": ("p.png", photo_png, "image/png")})
        assert res.status_code == 200, res.text
        pid = res.json()["id"]
        for _ in range(600):
            info = client.get(f"/api/photos/{pid}").json()
            if info["state"] != "running":
                break
            time.sleep(0.1)
        assert info["state"] == "ready", info
        assert info["progress"] == 1.0 and info["modes"] == 15
        basis = np.frombuffer(client.get(f"/api/photos/{pid}/basis.bin").content, "<f4")
        assert basis.size == 15 * 4 * 48 * 64 and np.isfinite(basis).all() and np.abs(basis).max() > 0


def test_interact_with_a_model(bundle, photo_png, tmp_path):
    from gid.datasets.video_io import read_video
    from gid.pipeline.poke import InteractConfig, interact

    (tmp_path / "p.png").write_bytes(photo_png)
    out = interact(InteractConfig(image=tmp_path / "p.png", out=tmp_path / "o.mp4", model=bundle, steps=STEPS,
                                  point=(40, 30), pull=(3, 0), frames=6), progress=False)
    frames, _ = read_video(out)
    assert frames.shape == (6, 60, 80, 3)
