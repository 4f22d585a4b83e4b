"""Motion training tasks: clip decoding (Eq. 4), and clear errors for bad data folders and bundles."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from gid.datasets.clip_table import clip_table_info, make_clip_row, read_clip_arrays, write_shard
from gid.pipeline.normalize import denormalize, save_scales
from gid.pipeline.motion_training import MotionTask, VAETask, decode_batch, pick_slices


def _write_clips(folder, count: int, width: int = 64, height: int = 48, num_freqs: int = 16):
    rng = np.random.default_rng(0)
    rows = [make_clip_row(f"video{i}.mp4", 0, 30.0, rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                          rng.standard_normal((num_freqs, 4, height, width)).astype(np.float32), 150, 1.0)
            for i in range(count)]
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    write_shard(rows, folder / "clips" / "part-00000.parquet")
    save_scales(folder / "freq_scales.json", np.linspace(2.0, 0.5, num_freqs))
    return folder


def test_decode_batch_inverts_to_the_stored_clip(tmp_path):
    data = _write_clips(tmp_path / "d", 3)
    table = pq.read_table(data / "clips" / "part-00000.parquet")
    scales = np.linspace(2.0, 0.5, 16)
    batch = decode_batch(table, scales)
    assert batch["image"].shape == (3, 3, 48, 64) and batch["spectral"].shape == (3, 16, 4, 48, 64)
    stored = read_clip_arrays(data / "clips" / "part-00000.parquet", ["image", "spectral"])
    np.testing.assert_allclose(denormalize(batch["spectral"][1], scales), stored["spectral"][1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.round(batch["image"][1].transpose(1, 2, 0) * 255), stored["image"][1])
    ray_batch = {"image": np.array(table["image"].to_pylist(), dtype=object),  # as Ray Data's numpy batches hold it
                 "spectral": table["spectral"].combine_chunks().to_numpy_ndarray()}
    np.testing.assert_array_equal(decode_batch(ray_batch, scales)["spectral"], batch["spectral"])
    info = clip_table_info(data)
    assert info == {"num_frames": 150, "fps": 30.0, "num_freqs": 16, "height": 48, "width": 64, "num_clips": 3}


def test_pick_slices_takes_distinct_frequencies():
    import torch

    spec = torch.arange(16, dtype=torch.float32)[None, :, None, None, None].expand(5, 16, 4, 2, 2).clone()
    x, freq = pick_slices(spec, 4)
    assert x.shape == (20, 4, 2, 2) and freq.shape == (5, 4)
    assert all(len(set(row.tolist())) == 4 for row in freq)
    torch.testing.assert_close(x[:, 0, 0, 0], freq.flatten().float())  # slice k holds value k


def test_bad_data_folders_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        clip_table_info(tmp_path / "missing")
    (tmp_path / "empty" / "clips").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no Parquet shards"):
        clip_table_info(tmp_path / "empty")
    data = _write_clips(tmp_path / "rows0", 1)
    table = pq.read_table(data / "clips" / "part-00000.parquet").slice(0, 0)
    pq.write_table(table, data / "clips" / "part-00000.parquet")
    with pytest.raises(ValueError, match="no rows"):
        clip_table_info(data)
    odd = _write_clips(tmp_path / "odd", 1, width=36, height=36)
    with pytest.raises(ValueError, match="divisible by 8"):
        VAETask(odd, tmp_path / "bundle")
    with pytest.raises(FileNotFoundError, match="freq_scales.json"):
        (tmp_path / "noscales").mkdir()
        _write_clips(tmp_path / "noscales", 1)
        (tmp_path / "noscales" / "freq_scales.json").unlink()
        VAETask(tmp_path / "noscales", tmp_path / "bundle")


def test_motion_training_needs_the_earlier_stages(tmp_path):
    data = _write_clips(tmp_path / "d", 2)
    with pytest.raises(FileNotFoundError, match="gid train vae"):
        MotionTask(data, tmp_path / "bundle")
    (tmp_path / "bundle" / "vae").mkdir(parents=True)
    (tmp_path / "bundle" / "vae" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="motion --stage 1"):
        MotionTask(data, tmp_path / "bundle", stage=2)
    with pytest.raises(ValueError, match="--stage must be 1 or 2"):
        MotionTask(data, tmp_path / "bundle", stage=3)
    with pytest.raises(ValueError, match="--config must be one of tiny, paper"):
        VAETask(data, tmp_path / "bundle", preset="huge")


def test_motion_loss_regresses_the_velocity(tmp_path):
    """Stage-1 loss = MSE(U-Net output, v) with v = √ᾱ·ε − √(1−ᾱ)·z_0 (diffusers' get_velocity)."""
    import torch

    from gid.pipeline.motion_presets import get_preset
    from gid.pipeline.vae import SpectralVAE

    data = _write_clips(tmp_path / "d", 2)
    SpectralVAE(**get_preset("tiny").vae).save_pretrained(tmp_path / "bundle" / "vae")
    task = MotionTask(data, tmp_path / "bundle")
    task.setup("cpu")
    seen = {}

    def velocity(z0, noise, t):
        seen.update(z0=z0, noise=noise, t=t)
        return task._scheduler.__class__.get_velocity(task._scheduler, z0, noise, t)

    task._scheduler.get_velocity = velocity
    batch = {k: torch.from_numpy(v) for k, v in task._sample_clips(2).items()}
    outputs = []

    def model(zt, t, freq, cond):
        outputs.append(torch.randn_like(zt))
        return outputs[-1]

    loss, _ = task.loss(model, batch, 0)
    a = task._scheduler.alphas_cumprod[seen["t"]].reshape(-1, 1, 1, 1)
    v = a.sqrt() * seen["noise"] - (1 - a).sqrt() * seen["z0"]
    assert float(loss) == pytest.approx(float(((outputs[0] - v) ** 2).mean()), rel=1e-5)
    assert float(loss) != pytest.approx(float(((outputs[0] - seen["noise"]) ** 2).mean()), rel=1e-3)


def test_synth_clips_writes_the_exact_motion_as_a_training_table(tmp_path):
    """`gid synth OUT --clips` makes OUT a data folder `gid train` accepts, holding each video's exact motion."""
    import subprocess
    import sys

    from gid.datasets.synthetic import load_ground_truth
    from gid.pipeline.normalize import load_scales

    out = tmp_path / "s"
    run = subprocess.run([sys.executable, "-m", "gid.stages.cli", "synth", str(out), "-n", "2", "--frames", "16",
                          "--size", "64x48", "--clips"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert clip_table_info(out) == {"num_frames": 16, "fps": 30.0, "num_freqs": 9, "height": 48, "width": 64,
                                    "num_clips": 2}
    scales = load_scales(out / "freq_scales.json")
    batch = decode_batch(pq.read_table(sorted((out / "clips").glob("*.parquet"))[0]), scales)
    truth = load_ground_truth(sorted((out / "gt").glob("*.npz"))[0])  # K = 9 ≤ T/2 + 1 at T = 16
    np.testing.assert_allclose(denormalize(batch["spectral"][0], scales), truth["spectral"], rtol=2e-3, atol=2e-3)
    VAETask(out, tmp_path / "bundle")  # the training task accepts the folder as --data


def test_train_defaults_are_the_presets_measured_recipe():
    """`gid train vae|motion --config tiny` with no flags trains with the tiny recipe; a flag overrides one field."""
    import os

    from gid.pipeline.motion_presets import get_preset
    from gid.stages.cmd_train import motion_train_config

    tiny = get_preset("tiny").train
    for task in ("vae", "motion", "motion_stage2"):
        cfg = motion_train_config("tiny", task, False)
        for name, value in tiny[task].items():
            expected = min(value, os.cpu_count() or 1) if name == "threads_per_worker" else value
            assert getattr(cfg, name) == expected, (task, name)
    assert motion_train_config("tiny", "motion", False).ema_decay == 0.995
    cfg = motion_train_config("tiny", "vae", False, max_steps=7, seed=3)
    assert (cfg.max_steps, cfg.seed, cfg.learning_rate) == (7, 3, tiny["vae"]["learning_rate"])
    assert motion_train_config("tiny", "vae", True).threads_per_worker is None  # on GPUs Ray decides


def test_a_bundle_of_other_data_is_refused_naming_both_values(tmp_path):
    """Training into a bundle made for another K, T or size stops before any work, naming both values;
    so does loading a bundle whose frequency scales disagree with its U-Net."""
    import json

    from gid.pipeline import GIDPipeline
    from gid.testing.bundles import write_random_bundle

    data = _write_clips(tmp_path / "d", 2)  # T = 150, K = 16, 64x48

    def index_with(bundle, **changes):
        index = json.loads((bundle / "model_index.json").read_text())
        (bundle / "model_index.json").write_text(json.dumps({**index, **changes}))

    def unet_with(bundle, **changes):
        config = json.loads((bundle / "unet" / "config.json").read_text())
        (bundle / "unet" / "config.json").write_text(json.dumps({**config, **changes}))

    for key, change, shown in (("num_frames", lambda b: index_with(b, num_frames=60), "num_frames = 60"),
                               ("num_freqs", lambda b: index_with(b, freq_scales=[1.0] * 8), "num_freqs = 8"),
                               ("size", lambda b: unet_with(b, sample_size=[8, 8]), "size = [32, 32]")):
        bundle = write_random_bundle(tmp_path / f"b_{key}", num_frames=150)
        change(bundle)
        with pytest.raises(ValueError, match="the data") as err:
            VAETask(data, bundle)
        assert shown in str(err.value) and str(data) in str(err.value)
    bundle = write_random_bundle(tmp_path / "random", num_frames=30)
    index_with(bundle, freq_scales=[1.0] * 8)
    with pytest.raises(ValueError, match="8 frequency scales for a model with K = 16"):
        GIDPipeline.from_pretrained(bundle)


@pytest.mark.parametrize("steps, guidance, message", [(0, 0.0, "DDIM steps out of range"),
                                                       (1001, 0.0, "DDIM steps out of range"),
                                                       (25, -0.5, "guidance weight out of range"),
                                                       (25, float("nan"), "guidance weight out of range")])
def test_sampling_settings_out_of_range_are_refused(steps, guidance, message):
    from gid.pipeline.sampling import SAMPLING, SamplingConfig, check_sampling
    from gid.stages.bulk_render import RenderConfig

    check_sampling(SAMPLING.num_inference_steps, SAMPLING.guidance_scale)
    for make in (lambda: check_sampling(steps, guidance), lambda: SamplingConfig(steps, guidance),
                 lambda: RenderConfig(spectral=True, num_inference_steps=steps, guidance_scale=guidance)):
        with pytest.raises(ValueError, match=message):
            make()


def test_render_cli_reports_bad_guidance_in_one_line(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "gid.stages.cli", "render", str(tmp_path), "--spectral", "--out",
                          str(tmp_path / "o"), "--guidance-scale", "-1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("gid: error: guidance weight out of range (w = -1.0)")
