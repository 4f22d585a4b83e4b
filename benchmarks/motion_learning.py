"""Does the motion model learn? `tiny` preset on synthetic plants with exact motion, on CPU.

Trains VAE → U-Net stage 1 → stage 2 (frequency attention) with `gid.stages.training.fit` (Ray
Train; by default one worker with 2 threads, the fastest layout on a 2-core machine), then on
held-out images (another synthetic seed) compares the per-frequency amplitude error
(gid.pipeline.motion_metrics) of sampled motion with

- the training-set mean: every pixel gets the mean amplitude of that pixel over the training clips;
- the training-set mean spectrum: every pixel gets the same spectrum, the mean amplitude per
  frequency over all pixels of all training clips (the weaker baseline, blind to where things move);
- zero motion;
- the same architecture untrained (random U-Net on the trained VAE);
- two oracles that sample the true motion of the same held-out scenes (``generate_video``):
  ``unseen_seed=j`` redraws everything frame 0 does not show (what a perfect image-conditioned
  model would sample; also passed through the trained VAE, to show what the VAE alone costs),
  ``phase_seed=j`` only the phases (it also knows the hidden parameters);

and, on the same seeds, frequency attention on vs off, guidance w = 0 vs the paper's 1.75, and
looping guidance on vs off (seam error). Errors are given for one sample per image and for the
amplitude averaged over ``--samples`` samples per image: the sampler's estimate of the expected
amplitude, comparable with the training-set mean, which is such an estimate too. One sample also
carries the spread of the motion distribution: where the image leaves the frequency open, even the
oracle's single samples are barely better than the mean. The k ≥ 1 column leaves out k = 0, which is
≈ T·(mean − s(0)), i.e. set by where in its cycle each plant is at frame 0: no model can know it
(the oracles are no better than the mean there), and its error is 5× that of the other bins, so it
dominates the mean over k. Prints a table and writes ``OUT/motion_learning.json`` and ``OUT/motion_learning.png``.

    python benchmarks/motion_learning.py --out /tmp/motion_learning
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

TEST_SEED = 999  # the held-out videos; the training videos use seed 10


def synth_config(size: str, frames: int):
    """The ``SynthConfig`` of the benchmark's videos: ``size`` 'WxH', ``frames`` T."""
    from gid.datasets.synthetic import SynthConfig
    from gid.stages.options import parse_size

    width, height = parse_size(size)
    return SynthConfig(num_frames=frames, width=width, height=height)


def make_data(out: Path, name: str, count: int, seed: int, size: str, frames: int) -> Path:
    from gid.datasets.clips import synthetic_to_clips
    from gid.datasets.synthetic import write_dataset

    synth, data = out / f"synth_{name}", out / f"data_{name}"
    if not (data / "freq_scales.json").is_file():
        write_dataset(synth, count, synth_config(size, frames), seed=seed, progress=False)
        synthetic_to_clips(synth, data)
    return data


def redrawn(args, **seed: int) -> np.ndarray:
    """``(N, K, 4, H, W)``: the held-out videos of :func:`make_data` with part of their motion redrawn
    (``phase_seed=j`` or ``unseen_seed=j`` of ``generate_video``)."""
    from gid.datasets.synthetic import generate_video

    config = synth_config(args.size, args.frames)
    return np.stack([generate_video(TEST_SEED, i, config, **seed).spectral for i in range(args.test_videos)])


def through_vae(vae, spec: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``(N, K, 4, H, W)`` volumes encoded and decoded (posterior mode) by the trained VAE: what it keeps."""
    import torch

    from gid.pipeline.normalize import denormalize, normalize

    slices = torch.from_numpy(normalize(spec, scales).astype(np.float32))
    with torch.no_grad():
        decoded = torch.stack([vae(volume, sample_posterior=False)[0] for volume in slices])
    return denormalize(decoded.numpy(), scales)


def load_clips(data: Path, scales: np.ndarray) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gid.datasets.clips import shard_paths
    from gid.pipeline.normalize import denormalize
    from gid.stages.motion_tasks import decode_batch

    table = pa.concat_tables([pq.read_table(p) for p in shard_paths(data)])
    cols = ("image", "spectral", "num_freqs", "height", "width")
    out = decode_batch({c: np.asarray(table.column(c).to_pylist(), dtype=object) for c in cols}, scales)
    out["spectral"] = denormalize(out["spectral"], scales)
    out["num_frames"] = int(table.column("num_frames")[0].as_py())
    return out


def train_test_parser(description: str) -> argparse.ArgumentParser:
    """The ``--train`` / ``--test`` clip tables of the diagnostics that reuse this benchmark's data."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True, help="clip table to train on")
    parser.add_argument("--test", type=Path, required=True, help="held-out clip table")
    return parser


def load_train_test(train: Path, test: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The training table's frequency scales and both tables decoded with them (:func:`load_clips`)."""
    from gid.pipeline.normalize import load_scales

    scales = load_scales(train / "freq_scales.json")
    return scales, load_clips(train, scales), load_clips(test, scales)


def per_image_error(amp: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(N, 2)``: each image's moving-pixel amplitude error, mean over all k and over k ≥ 1.

    ``amp`` ``(N or 1, K, H, W)``, ``gt`` ``(N, K, H, W)``, ``mask`` ``(N, H, W)``.
    """
    from gid.pipeline.motion_metrics import amplitude_error

    amp = np.broadcast_to(amp, gt.shape)
    errors = [amplitude_error(amp[i:i + 1], gt[i:i + 1], mask[i:i + 1]) for i in range(len(gt))]
    return np.array([[e.mean(), e[1:].mean()] for e in errors])


def motion_amount(amp: np.ndarray) -> np.ndarray:
    """``(N,)``: Σ_{k ≥ 1} A_k over all pixels of each image of ``amp`` ``(N, K, H, W)``: how much it moves,
    whatever the frequency and wherever the motion lands."""
    return amp[:, 1:].sum(axis=(1, 2, 3))


def per_image_summary(amp: np.ndarray, gt: np.ndarray, mask: np.ndarray,
                      baselines: dict[str, np.ndarray]) -> dict[str, Any]:
    """How a prediction ``amp`` ``(N, K, H, W)`` fares image by image against each of ``baselines``
    (name → ``(1, K, H, W)``, e.g. the training-set mean).

    ``images_beating``: name → ``[all k, k ≥ 1]`` counts of images whose moving-pixel error is below
    that baseline's there; ``amount_slope`` / ``amount_correlation``: the log-log slope and the correlation
    of the predicted :func:`motion_amount` against the truth's over the images (slope 1: it scales with the truth).
    """
    errors = per_image_error(amp, gt, mask)
    wins = {name: (errors < per_image_error(baseline, gt, mask)).sum(axis=0).tolist() for name, baseline in baselines.items()}
    truth, predicted = motion_amount(gt), motion_amount(amp)
    return {"images_beating": wins,
            "amount_slope": float(np.polyfit(np.log(truth), np.log(np.maximum(predicted, 1e-9)), 1)[0]),
            "amount_correlation": float(np.corrcoef(truth, predicted)[0, 1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/motion_learning"))
    parser.add_argument("--train-videos", type=int, default=96)
    parser.add_argument("--test-videos", type=int, default=16)
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--vae-steps", type=int, default=2400)
    parser.add_argument("--unet-steps", type=int, default=1500)
    parser.add_argument("--stage2-steps", type=int, default=100)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--threads-per-worker", type=int, default=2, help="torch threads of each Ray Train worker")
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--samples", type=int, default=8, help="samples per image for the averaged-amplitude columns")
    parser.add_argument("--loop-strength", type=float, default=200.0)
    args = parser.parse_args()

    import ray
    import torch

    from gid.pipeline.motion_metrics import amplitude_error, amplitude_px, moving_mask, seam_error
    from gid.pipeline.motion_pipeline import MotionPipeline
    from gid.pipeline.normalize import load_scales
    from gid.pipeline.spectral import frequencies_hz
    from gid.pipeline.visualize import plot_spectra
    from gid.stages.motion_tasks import MotionTask, VAETask
    from gid.stages.training import TrainConfig, fit

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    train = make_data(out, "train", args.train_videos, 10, args.size, args.frames)
    test = make_data(out, "test", args.test_videos, TEST_SEED, args.size, args.frames)
    bundle = out / "bundle"
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    start, timing = time.perf_counter(), {}
    for label, make_task, cfg in (
        ("vae", lambda: VAETask(train, bundle), TrainConfig(max_steps=args.vae_steps, batch_size=4, learning_rate=2e-3,
                                                    checkpoint_every=400, num_workers=args.num_workers,
                                                    threads_per_worker=args.threads_per_worker)),
        ("unet", lambda: MotionTask(train, bundle), TrainConfig(max_steps=args.unet_steps, batch_size=4, learning_rate=1e-3,
                                                        ema_decay=0.995, checkpoint_every=500,
                                                        num_workers=args.num_workers,
                                                        threads_per_worker=args.threads_per_worker)),
    ):
        tic = time.perf_counter()
        result = fit(make_task(), cfg, bundle)
        timing[label] = {"wall_s": time.perf_counter() - tic, "worker_cpu_s": result.metrics.get("worker_cpu_s")}
        print(f"{label}: {timing[label]}", flush=True)
    stage1 = MotionPipeline.from_bundle(bundle)
    untrained_state = MotionTask(train, bundle).build_model().state_dict()
    tic = time.perf_counter()
    result = fit(MotionTask(train, bundle, stage=2),
                 TrainConfig(max_steps=args.stage2_steps, batch_size=2, learning_rate=5e-4, ema_decay=0.99,
                             checkpoint_every=50, num_workers=args.num_workers,
                             threads_per_worker=args.threads_per_worker), bundle)
    timing["stage2"] = {"wall_s": time.perf_counter() - tic, "worker_cpu_s": result.metrics.get("worker_cpu_s")}
    print(f"stage2: {timing['stage2']}", flush=True)
    stage2 = MotionPipeline.from_bundle(bundle)

    scales = load_scales(bundle / "freq_scales.json")
    held_out, training = load_clips(test, scales), load_clips(train, scales)
    gt = amplitude_px(held_out["spectral"], args.frames)
    mask = moving_mask(gt)
    images = torch.from_numpy(held_out["image"])
    sample = dict(num_inference_steps=args.sample_steps, progress=False)
    seeds = [1000 * i for i in range(args.samples)]
    tic = time.perf_counter()
    with torch.no_grad():
        spectra = {  # name → one volume per seed (seam error and the single-sample columns use the first)
            "stage 1 (freq. attention off), w = 0": [stage1(images, guidance_scale=0.0, seed=0, **sample).numpy()],
            "stage 2 (freq. attention on), w = 0": [stage2(images, guidance_scale=0.0, seed=s, **sample).numpy() for s in seeds],
            "stage 2, w = 1.75 (paper)": [stage2(images, guidance_scale=1.75, seed=0, **sample).numpy()],
            "stage 2, w = 0, looping guidance": [stage2(images, guidance_scale=0.0, loop=True,
                                                        loop_strength=args.loop_strength, seed=0, **sample).numpy()],
        }
        stage1.unet.load_state_dict(untrained_state)
        spectra["untrained U-Net, w = 0"] = [stage1(images, guidance_scale=0.0, seed=s, **sample).numpy() for s in seeds]
    timing["sampling_s"] = time.perf_counter() - tic
    timing["total_s"] = time.perf_counter() - start
    spectra["oracle: unseen parameters redrawn"] = [redrawn(args, unseen_seed=j + 1) for j in range(args.samples)]
    spectra["oracle: unseen parameters redrawn, through the VAE"] = [
        through_vae(stage2.vae, volume, scales) for volume in spectra["oracle: unseen parameters redrawn"]]
    spectra["oracle: phases redrawn"] = [redrawn(args, phase_seed=j + 1) for j in range(args.samples)]
    training_amp = amplitude_px(training["spectral"], args.frames)  # (N, K, H, W)
    mean_amp = training_amp.mean(axis=0, keepdims=True)
    mean_spectrum = np.broadcast_to(training_amp.mean(axis=(0, 2, 3))[None, :, None, None], mean_amp.shape)
    baselines = {"training-set mean": mean_amp, "training-set mean spectrum, every pixel": mean_spectrum}
    amps = {**{name: [baseline] for name, baseline in baselines.items()}, "zero motion": [np.zeros_like(gt[:1])]}
    amps.update({name: [amplitude_px(v, args.frames) for v in volumes] for name, volumes in spectra.items()})
    report = {"timing": timing, "args": {k: str(v) for k, v in vars(args).items()}, "errors": {}}
    n = args.samples
    print(f"\n{'prediction':50s} {'all px':>7s} {'moving':>7s} {'moving, mean of ' + str(n):>17s} "
          f"{'same, k ≥ 1':>12s} {'seam':>6s}")
    for name, amp in amps.items():
        all_px, moving = amplitude_error(amp[0], gt), amplitude_error(amp[0], gt, mask)
        averaged_amp = np.mean(amp, axis=0)
        averaged = amplitude_error(averaged_amp, gt, mask)
        seam = float(np.median(seam_error(spectra[name][0], args.frames))) if name in spectra else float("nan")
        report["errors"][name] = {"all": all_px.tolist(), "moving": moving.tolist(), "moving_averaged": averaged.tolist(),
                                  "samples": len(amp), "seam_median": seam}
        if len(amp) > 1:
            report["errors"][name].update(per_image_summary(averaged_amp, gt, mask, baselines))
        averaged_text = f"{averaged.mean():17.3f} {averaged[1:].mean():12.3f}" if len(amp) > 1 else f"{'':17s} {'':12s}"
        print(f"{name:50s} {all_px.mean():7.3f} {moving.mean():7.3f} {averaged_text} {seam:6.2f}")
    print(f"{'ground truth':50s} {'':7s} {'':7s} {'':17s} {'':12s} "
          f"{float(np.median(seam_error(held_out['spectral'], args.frames))):6.2f}")
    print(f"\nimage by image, amplitude averaged over {n} samples: held-out images (of {len(gt)}) beating the "
          f"per-pixel mean / the mean spectrum (moving px, all k; k ≥ 1), and the whole-image amount of motion against the truth's")
    for name, summary in report["errors"].items():
        if summary["samples"] > 1:
            wins = [f"{all_k:2d}; {k_1:2d}" for all_k, k_1 in summary["images_beating"].values()]
            print(f"  {name:50s} {' / '.join(wins)}   amount: log-log slope {summary['amount_slope']:.2f}, "
                  f"correlation {summary['amount_correlation']:.2f}")
    print(f"\ntiming: {json.dumps({k: v for k, v in timing.items()}, default=str)}")
    (out / "motion_learning.json").write_text(json.dumps(report, indent=1))
    hz = frequencies_hz(gt.shape[1], args.frames, 30.0)
    baseline = np.array(report["errors"]["training-set mean"]["moving_averaged"])
    curves = {name: np.array(report["errors"][name]["moving_averaged"]) / baseline for name in
              ("training-set mean spectrum, every pixel", "zero motion", "untrained U-Net, w = 0", "stage 2 (freq. attention on), w = 0",
               "oracle: unseen parameters redrawn, through the VAE", "oracle: unseen parameters redrawn")}
    plot_spectra(out / "motion_learning.png", curves, hz, f"held-out moving pixels, amplitude averaged over {n} samples",
                 ylabel="error / training-set mean's error", log_y=False)
    print(f"\nwrote {out / 'motion_learning.json'} and {out / 'motion_learning.png'}")


if __name__ == "__main__":
    main()
