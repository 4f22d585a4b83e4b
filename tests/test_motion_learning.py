"""The motion model learns: trained through `gid train`'s machinery on synthetic plants with exact motion,
its sampled motion on held-out images has a lower amplitude error than the training-set mean spectrum.

CI budget (1 800 VAE + 800 U-Net steps, one worker with 2 threads, T = 60): on the pixels that move, the
amplitude averaged over 4 samples per held-out image (the model's expected amplitude, like-for-like
with the mean) has a lower error than the training-set mean; over all pixels one sample beats the
mean too; on the moving pixels one sample beats zero motion (the trivial answer that wins over all
pixels), and its amplitude map follows where the ground truth moves (correlation).
benchmarks/motion_learning.py measures the longer run of docs/motion.md."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _clips(root, name, count, seed):
    from gid.datasets.clips import synthetic_to_clips
    from gid.datasets.synthetic import SynthConfig, write_dataset

    write_dataset(root / f"synth_{name}", count, SynthConfig(num_frames=60, width=64, height=48), seed=seed,
                  progress=False)
    return synthetic_to_clips(root / f"synth_{name}", root / f"data_{name}")


def _amplitudes(data, scales):
    import pyarrow.parquet as pq

    from gid.datasets.clips import shard_paths
    from gid.pipeline.motion_metrics import amplitude
    from gid.pipeline.normalize import denormalize
    from gid.stages.motion_tasks import decode_batch

    table = pq.read_table(shard_paths(data)[0])
    batch = decode_batch(table, scales)
    spec = denormalize(batch["spectral"], scales)
    return batch["image"], spec, amplitude(spec)


def test_trained_motion_beats_the_training_set_mean(tmp_path, ray_local):
    import mlflow
    import torch

    from gid.pipeline.motion_metrics import amplitude, amplitude_error, moving_mask
    from gid.pipeline.motion_pipeline import MotionPipeline
    from gid.pipeline.normalize import load_scales
    from gid.stages.motion_tasks import MotionTask, VAETask
    from gid.stages.training import TrainConfig, fit

    train, test = _clips(tmp_path, "train", 32, seed=3), _clips(tmp_path, "test", 6, seed=4)
    bundle = tmp_path / "bundle"
    runs = [fit(VAETask(train, bundle), TrainConfig(max_steps=1800, batch_size=4, learning_rate=2e-3,
                                                    checkpoint_every=1800, log_every=100, num_workers=1,
                                                    threads_per_worker=2), bundle),
            fit(MotionTask(train, bundle), TrainConfig(max_steps=800, batch_size=4, learning_rate=1e-3, ema_decay=0.995,
                                                       checkpoint_every=800, log_every=100, num_workers=1,
                                                       threads_per_worker=2), bundle)]
    # Each MLflow run has its sample visualisations: a spectrum plot and amplitude images.
    client = mlflow.MlflowClient(f"sqlite:///{bundle / 'mlflow.db'}")
    for run, name in zip(runs, ("vae", "motion")):
        assert sorted(a.path for a in client.list_artifacts(run.mlflow_run_id, "samples")) == [
            f"samples/{name}_amplitude.png", f"samples/{name}_spectrum.png"]
    scales = load_scales(bundle / "freq_scales.json")
    _, _, train_amp = _amplitudes(train, scales)
    images, gt_spec, gt_amp = _amplitudes(test, scales)
    pipe = MotionPipeline.from_bundle(bundle)
    samples = [amplitude(pipe(torch.from_numpy(images), num_inference_steps=20, guidance_scale=0.0, seed=seed,
                              progress=False).numpy()) for seed in (0, 1000, 2000, 3000)]
    sampled = samples[0]
    moving = moving_mask(gt_spec)
    mean_amp = train_amp.mean(axis=0, keepdims=True)
    total, truth = sampled[:, 1:].sum(axis=1), gt_amp[:, 1:].sum(axis=1)  # (N, H, W) amplitude over k ≥ 1
    errors = {"mean all": amplitude_error(mean_amp, gt_amp).mean(),
              "sample all": amplitude_error(sampled, gt_amp).mean(),
              "mean moving": amplitude_error(mean_amp, gt_amp, moving).mean(),
              "zero moving": amplitude_error(np.zeros_like(mean_amp), gt_amp, moving).mean(),
              "sample moving": amplitude_error(sampled, gt_amp, moving).mean(),
              "4 samples moving": amplitude_error(np.mean(samples, axis=0), gt_amp, moving).mean(),
              "correlation": np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(total, truth)])}
    print(errors)
    assert errors["4 samples moving"] < 0.92 * errors["mean moving"], errors
    assert errors["sample all"] < 0.9 * errors["mean all"], errors
    assert errors["sample moving"] < 0.95 * errors["zero moving"], errors
    assert errors["correlation"] > 0.4, errors
