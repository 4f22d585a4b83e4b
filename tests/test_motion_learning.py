"""The motion model learns, at the defaults: trained through `gid train`'s machinery (Ray Train `fit`)
on synthetic plants with exact motion, ONE sample per held-out image at the default sampling settings
(gid.pipeline.sampling) has a lower moving-pixel amplitude error, in pixels summed over k, than
predicting zero motion, and a lower one than the same model shown another image (shuffled
conditioning): the motion it predicts comes from reading its image.

CI budget: 32 training videos at 32×32, T = 60, K = 16; VAE VAE_STEPS and U-Net UNET_STEPS steps
(the tiny preset's learning rates and EMA, one worker with 2 threads, the data held in memory):
3 min 16 s on the 2-core VM, nearly idle. Measured there: one sample 1.56 px against zero motion
1.88 (0.83×), shuffled conditioning 1.67 (0.89× zero), the per-pixel training mean 1.50.
At this budget one sample does NOT beat the per-pixel training mean (1.04× of it), which the
issue's target asks for; benchmarks/motion_learning.py measures the full-size run (docs/motion.md).
Broken variants: 3 training steps each fail the zero-motion bound (0.94×); the model shown its
neighbour's image (shuffled conditioning, a model that ignores its image) measured 0.89× zero, above
``MARGIN_ZERO``, and is asserted to stay ``MARGIN_SHUFFLED`` above the real sample."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SIZE, FRAMES, TRAIN_VIDEOS, TEST_VIDEOS = (32, 32), 60, 32, 8
VAE_STEPS, UNET_STEPS = 800, 800
MARGIN_ZERO, MARGIN_SHUFFLED = 0.87, 0.97  # one sample's error must be below these fractions of the baselines'


def _clips(root, name, count, seed):
    from gid.datasets.clip_table import synthetic_to_clips
    from gid.datasets.synthetic import SynthConfig, write_dataset

    config = SynthConfig(num_frames=FRAMES, width=SIZE[0], height=SIZE[1])
    write_dataset(root / f"synth_{name}", count, config, seed=seed, progress=False)
    return synthetic_to_clips(root / f"synth_{name}", root / f"data_{name}")


def _amplitudes(data, scales):
    """Held-out images ``(N, 3, H, W)`` and their true amplitudes in px ``(N, K, H, W)``."""
    import pyarrow.parquet as pq

    from gid.datasets.clip_table import shard_paths
    from gid.pipeline.motion_metrics import amplitude_px
    from gid.pipeline.normalize import denormalize
    from gid.pipeline.motion_training import decode_batch

    table = pq.read_table(shard_paths(data)[0])
    batch = decode_batch(table, scales)
    return batch["image"], amplitude_px(denormalize(batch["spectral"], scales), FRAMES)


@pytest.mark.timeout(1200)  # 3× the time at half speed (3 min 16 s at full speed, taskset -c 0 doubles it)
def test_one_default_sample_beats_zero_motion_and_reads_its_image(tmp_path, ray_local):
    import mlflow
    import torch

    from gid.pipeline import GIDPipeline
    from gid.pipeline.motion_metrics import amplitude_error, amplitude_px, moving_mask
    from gid.pipeline.motion_presets import get_preset, train_recipe
    from gid.pipeline.motion_training import MotionTask, VAETask
    from gid.pipeline.training_loop import TrainConfig
    from gid.stages.training import fit

    train, test = _clips(tmp_path, "train", TRAIN_VIDEOS, seed=3), _clips(tmp_path, "test", TEST_VIDEOS, seed=4)
    bundle = tmp_path / "bundle"
    tiny = get_preset("tiny")
    runs = []
    for make_task, steps in ((VAETask, VAE_STEPS), (MotionTask, UNET_STEPS)):  # the U-Net task needs B/vae
        task = make_task(train, bundle)
        recipe = {**train_recipe(tiny, task.name), "max_steps": steps, "checkpoint_every": steps, "log_every": 100}
        runs.append(fit(task, TrainConfig(**recipe), bundle))
    # Each MLflow run has its sample visualisations: a spectrum plot and amplitude images.
    client = mlflow.MlflowClient(f"sqlite:///{bundle / 'mlflow.db'}")
    for run, name in zip(runs, ("vae", "motion")):
        assert sorted(a.path for a in client.list_artifacts(run.mlflow_run_id, "samples")) == [
            f"samples/{name}_amplitude.png", f"samples/{name}_spectrum.png"]
    pipe = GIDPipeline.from_pretrained(bundle)
    _, train_amp = _amplitudes(train, pipe.scales)
    images, truth = _amplitudes(test, pipe.scales)
    moving = moving_mask(truth)

    def error(amp):  # px, moving pixels, summed over k
        return float(amplitude_error(amp, truth, moving).sum())

    def sample(conditioning):  # one sample per image at the default sampling settings
        return amplitude_px(pipe(torch.from_numpy(conditioning), seed=0, progress=False).numpy(), FRAMES)

    errors = {"sample": error(sample(images)), "zero": error(np.zeros_like(truth[:1])),
              "mean": error(train_amp.mean(axis=0, keepdims=True)),
              "shuffled conditioning": error(sample(np.roll(images, 1, axis=0)))}
    print(errors)
    assert errors["sample"] < MARGIN_ZERO * errors["zero"], errors
    # the model's win comes from reading its image: shown another photo, the same model does worse
    assert errors["sample"] < MARGIN_SHUFFLED * errors["shuffled conditioning"], errors
