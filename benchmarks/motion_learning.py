"""Does the motion model learn? `tiny` preset on synthetic plants with exact motion, on CPU.

Trains VAE → U-Net stage 1 → stage 2 (frequency attention) with `gid.stages.training.fit` (Ray
Train, 2 workers), then on held-out images (another synthetic seed) compares the per-frequency
amplitude error (gid.pipeline.motion_metrics) of sampled motion with

- the training-set mean: every pixel gets the mean amplitude of that pixel over the training clips;
- zero motion;
- the same architecture untrained (random U-Net on the trained VAE);

and, on the same seeds, frequency attention on vs off and looping guidance on vs off (seam error).
Prints a table and writes ``OUT/motion_learning.json`` and ``OUT/motion_learning.png``.

    python benchmarks/motion_learning.py --out /tmp/motion_learning
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def make_data(out: Path, name: str, count: int, seed: int, size: str, frames: int) -> Path:
    from gid.datasets.clips import synthetic_to_clips
    from gid.datasets.synthetic import SynthConfig, write_dataset

    width, height = (int(v) for v in size.split("x"))
    synth, data = out / f"synth_{name}", out / f"data_{name}"
    if not (data / "freq_scales.json").is_file():
        write_dataset(synth, count, SynthConfig(num_frames=frames, width=width, height=height), seed=seed, progress=False)
        synthetic_to_clips(synth, data)
    return data


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
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/motion_learning"))
    parser.add_argument("--train-videos", type=int, default=96)
    parser.add_argument("--test-videos", type=int, default=16)
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--vae-steps", type=int, default=300)
    parser.add_argument("--unet-steps", type=int, default=800)
    parser.add_argument("--stage2-steps", type=int, default=100)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--loop-strength", type=float, default=200.0)
    args = parser.parse_args()

    import ray
    import torch

    from gid.pipeline.motion_metrics import amplitude, amplitude_error, moving_mask, seam_error
    from gid.pipeline.motion_pipeline import MotionPipeline
    from gid.pipeline.normalize import load_scales
    from gid.pipeline.spectral import frequencies_hz
    from gid.pipeline.visualize import plot_spectra
    from gid.stages.motion_tasks import MotionTask, VAETask
    from gid.stages.training import TrainConfig, fit

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    train = make_data(out, "train", args.train_videos, 10, args.size, args.frames)
    test = make_data(out, "test", args.test_videos, 999, args.size, args.frames)
    bundle = out / "bundle"
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    timing = {}
    for label, make_task, cfg in (
        ("vae", lambda: VAETask(train, bundle), TrainConfig(max_steps=args.vae_steps, batch_size=4, learning_rate=1e-3,
                                                    checkpoint_every=100, num_workers=args.num_workers)),
        ("unet", lambda: MotionTask(train, bundle), TrainConfig(max_steps=args.unet_steps, batch_size=4, learning_rate=5e-4,
                                                        checkpoint_every=200, num_workers=args.num_workers)),
    ):
        tic = time.perf_counter()
        result = fit(make_task(), cfg, bundle)
        timing[label] = {"wall_s": time.perf_counter() - tic, "worker_cpu_s": result.metrics.get("worker_cpu_s")}
        print(f"{label}: {timing[label]}", flush=True)
    stage1 = MotionPipeline.from_bundle(bundle)
    untrained_state = MotionTask(train, bundle).build_model().state_dict()
    tic = time.perf_counter()
    result = fit(MotionTask(train, bundle, stage=2),
                 TrainConfig(max_steps=args.stage2_steps, batch_size=2, learning_rate=5e-4, checkpoint_every=50,
                             num_workers=args.num_workers), bundle)
    timing["stage2"] = {"wall_s": time.perf_counter() - tic, "worker_cpu_s": result.metrics.get("worker_cpu_s")}
    print(f"stage2: {timing['stage2']}", flush=True)
    stage2 = MotionPipeline.from_bundle(bundle)

    scales = load_scales(bundle / "freq_scales.json")
    held_out, training = load_clips(test, scales), load_clips(train, scales)
    gt = amplitude(held_out["spectral"])
    mask = moving_mask(held_out["spectral"])
    images = torch.from_numpy(held_out["image"])
    sample = dict(num_inference_steps=args.sample_steps, seed=0, progress=False)
    with torch.no_grad():
        spectra = {
            "stage 1 (freq. attention off)": stage1(images, **sample).numpy(),
            "stage 2 (freq. attention on)": stage2(images, **sample).numpy(),
            "stage 2, looping guidance": stage2(images, loop=True, loop_strength=args.loop_strength, **sample).numpy(),
        }
        stage1.unet.load_state_dict(untrained_state)
        spectra["untrained U-Net"] = stage1(images, **sample).numpy()
    amps = {"training-set mean": amplitude(training["spectral"]).mean(axis=0, keepdims=True),
            "zero motion": np.zeros_like(gt[:1])}
    amps.update({name: amplitude(s) for name, s in spectra.items()})
    report = {"timing": timing, "args": {k: str(v) for k, v in vars(args).items()}, "errors": {}}
    print(f"\n{'prediction':34s} {'all pixels':>11s} {'moving px':>10s} {'seam':>6s}")
    for name, amp in amps.items():
        all_px, moving = amplitude_error(amp, gt), amplitude_error(amp, gt, mask)
        seam = float(np.median(seam_error(spectra[name], args.frames))) if name in spectra else float("nan")
        report["errors"][name] = {"all": all_px.tolist(), "moving": moving.tolist(), "seam_median": seam}
        print(f"{name:34s} {all_px.mean():11.3f} {moving.mean():10.3f} {seam:6.2f}")
    print(f"{'ground truth':34s} {'':11s} {'':10s} {float(np.median(seam_error(held_out['spectral'], args.frames))):6.2f}")
    (out / "motion_learning.json").write_text(json.dumps(report, indent=1))
    hz = frequencies_hz(gt.shape[1], args.frames, 30.0)
    plot_spectra(out / "motion_learning.png", {n: np.array(e["moving"]) for n, e in report["errors"].items()}, hz,
                 "amplitude error on moving pixels (held-out images)")
    print(f"\nwrote {out / 'motion_learning.json'} and {out / 'motion_learning.png'}")


if __name__ == "__main__":
    main()
