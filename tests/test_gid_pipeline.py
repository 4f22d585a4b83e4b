"""`gid.pipeline.GIDPipeline`, the diffusers pipeline at the centre: its bundle layout, loading errors, and
the pre-GIDPipeline layout."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from gid.pipeline import GIDPipeline
from gid.testing.bundles import write_random_bundle
from gid.pipeline.normalize import save_scales

T = 30


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_random_bundle(tmp_path_factory.mktemp("gidpipe") / "b", num_frames=T, fps=24.0)


@pytest.fixture(scope="module")
def photo():
    yy, xx = np.mgrid[0:40, 0:60]
    return np.stack([xx * 4, yy * 6, 128 + 100 * np.sin(xx / 5)], -1).astype(np.uint8)


def test_save_and_load_round_trip_keeps_config_and_samples(bundle, photo, tmp_path):
    pipe = GIDPipeline.from_pretrained(bundle)
    index = json.loads((bundle / "model_index.json").read_text())
    assert index["_class_name"] == "GIDPipeline" and index["unet"] == ["gid.pipeline.unet", "MotionUNet"]
    assert (pipe.num_frames, pipe.fps, pipe.num_freqs, pipe.size) == (T, 24.0, 16, (48, 64))
    np.testing.assert_allclose(pipe.scales, np.linspace(2.0, 0.1, 16))
    assert pipe.renderer is None
    spec = pipe(photo, num_inference_steps=2, seed=3, progress=False)
    assert spec.shape == (1, 16, 4, 48, 64)
    pipe.save_pretrained(tmp_path / "copy")
    again = GIDPipeline.from_pretrained(tmp_path / "copy")
    torch.testing.assert_close(again(photo, num_inference_steps=2, seed=3, progress=False), spec)


def test_seeds_give_each_photo_its_own_noise_whatever_the_batch(bundle, photo):
    """A photo's motion depends on its own seed only: not on the batch size nor on its neighbours."""
    pipe = GIDPipeline.from_pretrained(bundle)
    other = photo[::-1].copy()
    together = pipe([photo, other, photo], num_inference_steps=2, seed=[7, 8, 9], batch_size=3, progress=False)
    alone = pipe(photo, num_inference_steps=2, seed=[7], progress=False)
    torch.testing.assert_close(together[0], alone[0], rtol=1e-4, atol=1e-4)  # batched convs round differently
    assert not torch.allclose(together[0], together[2])  # same photo, another seed: another sample
    generators = [torch.Generator().manual_seed(s) for s in (7, 8, 9)]
    torch.testing.assert_close(pipe([photo, other, photo], num_inference_steps=2, generator=generators,
                                    batch_size=2, progress=False), together, rtol=1e-4, atol=1e-4)


def test_animate_renders_the_photo_at_its_own_size(bundle, photo):
    frames = GIDPipeline.from_pretrained(bundle).animate(photo, num_frames=T, num_inference_steps=2, progress=False)
    assert frames.shape == (T, *photo.shape) and frames.dtype == np.uint8
    assert np.abs(frames[0].astype(int) - photo).mean() < 1.0  # F_0 = 0: frame 0 is the photo


@pytest.mark.parametrize("damage,message", [
    (lambda b: shutil.rmtree(b / "unet"), "has no unet/; run `gid train motion"),
    (lambda b: (b / "model_index.json").unlink(), "not a model bundle (no model_index.json)"),
    (lambda b: (b / "model_index.json").write_text("{"), "model_index.json: not valid JSON"),
    (lambda b: (b / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(
        (b / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()[:200]), "cannot load the model bundle"),
])
def test_broken_bundles_say_what_is_wrong(bundle, tmp_path, damage, message):
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    damage(broken)
    with pytest.raises((FileNotFoundError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        GIDPipeline.from_pretrained(broken)
    assert str(broken) in str(err.value)


def test_a_bundle_of_the_old_layout_loads_and_converts(bundle, photo, tmp_path):
    """Before GIDPipeline a bundle held bundle.json + freq_scales.json; it loads with the same motion,
    and save_pretrained writes the current layout."""
    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    (old / "model_index.json").unlink()
    (old / "bundle.json").write_text(json.dumps({"num_frames": T, "fps": 24.0, "num_freqs": 16, "size": [64, 48],
                                                 "latent_factor": 4, "preset": "tiny"}))
    save_scales(old / "freq_scales.json", np.linspace(2.0, 0.1, 16))
    pipe = GIDPipeline.from_pretrained(old)
    expected = GIDPipeline.from_pretrained(bundle)(photo, num_inference_steps=2, progress=False)
    torch.testing.assert_close(pipe(photo, num_inference_steps=2, progress=False), expected)
    pipe.save_pretrained(tmp_path / "new")
    assert json.loads((tmp_path / "new" / "model_index.json").read_text())["num_frames"] == T
