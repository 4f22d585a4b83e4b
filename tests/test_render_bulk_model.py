"""`gid render --model B` with a small randomly initialised bundle: the Ray Data pipeline samples the
motion of a batch of photos of different sizes in one model call and writes what the in-process
GIDPipeline + renderer produce for each photo."""
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gid.datasets.video_io import read_video, write_video

FRAMES, STEPS = 30, 2


def psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A random tiny-preset bundle written through the agreed save_pretrained APIs."""
    from gid.testing.bundles import write_random_bundle

    return write_random_bundle(tmp_path_factory.mktemp("bundle"), num_frames=FRAMES)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("photos")
    for name, (h, w) in {"a": (48, 64), "b": (60, 80)}.items():
        base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
        Image.fromarray(np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


@pytest.mark.ray
def test_model_render_matches_in_process_pipeline(ray_local, bundle, photos, tmp_path):
    from gid.pipeline import GIDPipeline
    from gid.pipeline.images import load_image
    from gid.pipeline.warping import render_video, resize_spectral
    from gid.pipeline.spectral import spectral_to_trajectories
    from gid.pipeline.photo_render import photo_seed
    from gid.stages.bulk_render import RenderConfig, render_bulk

    cfg = RenderConfig(model=bundle, out=tmp_path / "out", frames=FRAMES, num_inference_steps=STEPS, batch_size=2,
                       save_motion=True, progress=False, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    summary = render_bulk([photos], cfg)
    assert (summary.rendered, summary.failed) == (2, 0)
    manifest = {r["source"]: r for r in pq.read_table(summary.manifest).to_pylist()}

    pipe = GIDPipeline.from_pretrained(bundle)
    images = [load_image(photos / f"{n}.png") for n in "ab"]
    # each photo's noise comes from its source: the same motion alone as beside another photo
    seeds = [photo_seed(0, str(photos / f"{n}.png")) for n in "ab"]
    spec = pipe(images, num_frames=FRAMES, num_inference_steps=STEPS, seed=seeds, batch_size=2, progress=False)
    alone = pipe(images[1:], num_frames=FRAMES, num_inference_steps=STEPS, seed=seeds[1:], progress=False)
    np.testing.assert_allclose(alone[0].numpy(), spec[1].numpy(), rtol=1e-4, atol=1e-4)
    assert seeds[0] != seeds[1] and not np.allclose(spec[0].numpy(), spec[1].numpy())
    for name, image, volume in zip("ab", images, spec):
        entry = manifest[str(photos / f"{name}.png")]
        assert entry["status"] == "ok" and (entry["height"], entry["width"]) == image.shape[:2]
        saved = np.load((cfg.out / entry["video"]).with_suffix(".npy"))
        sidecar = json.loads((cfg.out / entry["video"]).with_suffix(".motion.json").read_text())
        assert (sidecar["num_frames"], sidecar["fps"], sidecar["size"], sidecar["video_size"]) == (
            FRAMES, 30.0, [pipe.size[1], pipe.size[0]], [image.shape[1], image.shape[0]])
        assert sidecar["num_freqs"] == saved.shape[0] and "(2/T)*|S_k| = a px" in sidecar["units"]
        np.testing.assert_allclose(saved, volume.numpy(), rtol=1e-4, atol=1e-5)  # what the video was rendered from
        traj = spectral_to_trajectories(resize_spectral(volume, image.shape[:2]), FRAMES)
        write_video(tmp_path / "reference.mp4", render_video(image, traj.numpy()), fps=30)
        fake = read_video(cfg.out / entry["video"])[0]
        assert fake.shape == (FRAMES, *image.shape)
        assert psnr(fake, read_video(tmp_path / "reference.mp4")[0]) > 40
