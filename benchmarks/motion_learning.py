"""Does the motion model learn, at the defaults? `tiny` preset on synthetic plants with exact motion, on CPU.

Trains VAE → U-Net stage 1 → stage 2 (frequency attention) with `gid.stages.training.fit` and the
tiny preset's recipe (what `gid train vae|motion --config tiny` uses with no flags; one Ray Train
worker with 2 threads). Stage 1 is trained in ``--curve-points`` segments, each resuming from the
last checkpoint, with one default sample per held-out image after each: the learning curve (error
against training seconds) goes to MLflow (experiment ``gid-motion-learning`` in ``OUT/bundle/mlflow.db``)
and to ``OUT/motion_learning_curve.png``.

Then, on held-out images (another synthetic seed), every figure is in pixels
(gid.pipeline.motion_metrics.amplitude_px) and for ONE sample per image at the default sampling
settings (gid.pipeline.sampling), averaged over ``--samples`` seeds: the moving-pixel amplitude
error summed over k, its ratio to the per-pixel training mean and to zero motion, the frequency hit
rate (strongest bin k ≥ 1 within ±1 of the truth's) and motion FD, against

- zero motion; the per-pixel training-set mean amplitude; the training-set mean spectrum (one
  spectrum for every pixel);
- the same architecture untrained (random U-Net on the trained VAE);
- stage 1 (frequency attention off) vs stage 2 (on), the paper's guidance w = 1.75, and looping
  guidance (its seam error and its amplitude cost on the same seed);
- oracles that sample the true motion of the same held-out scenes (``generate_video``):
  ``unseen_seed=j`` redraws everything frame 0 does not show (what a perfect image-conditioned
  model would sample; also through the trained VAE), ``phase_seed=j`` only the phases.

It also prints the training cost per step (worker CPU seconds) and, with ``--paper-cost``, one
training step and one DDIM step of the `paper` preset on this CPU. Writes ``OUT/motion_learning.json``
and the two plots.

    python benchmarks/motion_learning.py --out /tmp/motion_learning --paper-cost
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
    from gid.datasets.clip_table import synthetic_to_clips
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

    from gid.datasets.clip_table import shard_paths
    from gid.pipeline.normalize import denormalize
    from gid.pipeline.motion_training import decode_batch

    table = pa.concat_tables([pq.read_table(p) for p in shard_paths(data)])
    out = decode_batch(table, scales)
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


def step_cost(result, steps: int) -> dict[str, float]:
    """Wall and worker-CPU seconds of a :func:`gid.stages.training.fit` run of ``steps`` steps, per step."""
    cpu = result.metrics.get("worker_cpu_s")
    return {"worker_cpu_s_per_step": cpu / steps if cpu else float("nan")}


def paper_preset_cost(threads: int) -> dict[str, float]:
    """One training step of the `paper` VAE and U-Net (1 clip × 4 slices, 256×160, K = 16) and one
    DDIM step of sampling one image (K slices, w = 0), in CPU and wall seconds: what a GPU user scales from."""
    import torch

    from gid.pipeline.motion_presets import get_preset
    from gid.pipeline.unet import MotionUNet
    from gid.pipeline.vae import SpectralVAE, vae_loss

    torch.set_num_threads(threads)
    preset = get_preset("paper")
    width, height = preset.size
    vae = SpectralVAE(**preset.vae)
    f = vae.latent_factor
    unet = MotionUNet(sample_size=(height // f, width // f), latent_factor=f, num_freqs=16, freq_attention=False,
                      **preset.unet)
    x, image = torch.randn(4, 4, height, width), torch.rand(4, 3, height, width) * 2 - 1
    costs = {}

    def timed(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        costs[f"{name}_wall_s"], costs[f"{name}_cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu

    def vae_step():
        recon, posterior = vae(x)
        vae_loss(recon, posterior, x, moving_weight=30.0)[0].backward()

    def unet_step():
        z = torch.randn(4, vae.config.latent_channels, height // f, width // f)
        ((unet(z, torch.randint(0, 1000, (4,)), torch.arange(4), image) - z) ** 2).mean().backward()

    def sample_step():
        with torch.no_grad():
            z = torch.randn(16, vae.config.latent_channels, height // f, width // f)
            unet(z, torch.full((16,), 500), torch.arange(16), image[:1].expand(16, -1, -1, -1))

    timed("vae_train_step", vae_step)
    timed("unet_train_step", unet_step)
    timed("ddim_step_one_image", sample_step)
    costs["parameters_vae_M"] = sum(p.numel() for p in vae.parameters()) / 1e6
    costs["parameters_unet_M"] = sum(p.numel() for p in unet.parameters()) / 1e6
    return costs


def main() -> None:
    from gid.pipeline.sampling import SAMPLING

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/motion_learning"))
    parser.add_argument("--train-videos", type=int, default=96)
    parser.add_argument("--test-videos", type=int, default=16)
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--vae-steps", type=int, default=None, help="default: the tiny preset's recipe")
    parser.add_argument("--unet-steps", type=int, default=None, help="default: the tiny preset's recipe")
    parser.add_argument("--stage2-steps", type=int, default=None, help="default: the tiny preset's recipe")
    parser.add_argument("--curve-points", type=int, default=3,
                        help="evaluate the U-Net this many times during stage 1 (learning curve)")
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--threads-per-worker", type=int, default=None, help="default: the tiny preset's recipe")
    parser.add_argument("--sample-steps", type=int, default=SAMPLING.num_inference_steps)
    parser.add_argument("--guidance", type=float, default=SAMPLING.guidance_scale)
    parser.add_argument("--samples", type=int, default=4, help="samples (seeds) per image")
    parser.add_argument("--loop-strength", type=float, default=200.0)
    parser.add_argument("--paper-cost", action="store_true", help="also time one step of the paper preset on CPU")
    args = parser.parse_args()

    import mlflow
    import ray
    import torch

    from gid.pipeline import GIDPipeline
    from gid.pipeline.motion_metrics import (amplitude_error, amplitude_px, frequency_hit_rate, motion_fd,
                                             moving_mask, seam_error)
    from gid.pipeline.motion_presets import get_preset, train_recipe
    from gid.pipeline.normalize import load_scales
    from gid.pipeline.spectral import frequencies_hz
    from gid.pipeline.visualize import plot_spectra
    from gid.pipeline.motion_training import MotionTask, VAETask
    from gid.pipeline.training_loop import TrainConfig
    from gid.stages.training import fit

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    train = make_data(out, "train", args.train_videos, 10, args.size, args.frames)
    test = make_data(out, "test", args.test_videos, TEST_SEED, args.size, args.frames)
    bundle = out / "bundle"
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    preset = get_preset("tiny")

    def config(task: str, steps: int | None, **extra) -> TrainConfig:
        recipe = train_recipe(preset, task, max_steps=steps, threads_per_worker=args.threads_per_worker)
        return TrainConfig(num_workers=args.num_workers, **{**recipe, **extra})

    start, timing = time.perf_counter(), {}
    vae_cfg = config("vae", args.vae_steps)
    tic = time.perf_counter()
    result = fit(VAETask(train, bundle), vae_cfg, bundle)
    timing["vae"] = {"steps": vae_cfg.max_steps, "wall_s": time.perf_counter() - tic, **step_cost(result, vae_cfg.max_steps)}
    print(f"vae: {timing['vae']}", flush=True)

    scales = load_scales(train / "freq_scales.json")  # the data's scales, which the bundle records
    held_out, training = load_clips(test, scales), load_clips(train, scales)
    frames = held_out["num_frames"]
    gt = amplitude_px(held_out["spectral"], frames)
    mask = moving_mask(gt)
    images = torch.from_numpy(held_out["image"])
    sample = dict(num_inference_steps=args.sample_steps, progress=False)
    seeds = [1000 * i for i in range(args.samples)]
    training_amp = amplitude_px(training["spectral"], frames)  # (N, K, H, W)
    mean_amp = training_amp.mean(axis=0, keepdims=True)
    mean_spectrum = np.broadcast_to(training_amp.mean(axis=(0, 2, 3))[None, :, None, None], mean_amp.shape)
    baselines = {"per-pixel training mean": mean_amp, "training-set mean spectrum": mean_spectrum}

    # U-Net stage 1 in segments: each resumes from the last checkpoint; one default sample per image after each.
    unet_cfg = config("motion", args.unet_steps)
    points = sorted({int(round(unet_cfg.max_steps * (i + 1) / args.curve_points)) for i in range(args.curve_points)})
    mlflow.set_tracking_uri(f"sqlite:///{bundle / 'mlflow.db'}")
    mlflow.set_experiment("gid-motion-learning")
    curve, unet_wall, unet_cpu = [], 0.0, 0.0
    with mlflow.start_run(run_name="learning curve") as run:
        mlflow.log_params({"vae_steps": vae_cfg.max_steps, "unet_steps": unet_cfg.max_steps, "guidance": args.guidance,
                           "sample_steps": args.sample_steps, "size": args.size, "frames": frames})
        for steps in points:
            tic = time.perf_counter()
            result = fit(MotionTask(train, bundle), TrainConfig(**{**unet_cfg.__dict__, "max_steps": steps}), bundle)
            unet_wall += time.perf_counter() - tic
            unet_cpu += result.metrics.get("worker_cpu_s") or 0.0
            with torch.no_grad():
                amp = amplitude_px(GIDPipeline.from_pretrained(bundle)(images, guidance_scale=args.guidance, seed=0,
                                                                      **sample).numpy(), frames)
            error = float(amplitude_error(amp, gt, mask).sum())
            point = {"unet_steps": steps, "train_s": timing["vae"]["wall_s"] + unet_wall, "moving_px_error_sum": error,
                     "hit_rate": frequency_hit_rate(amp, gt, mask)}
            curve.append(point)
            mlflow.log_metrics({k: v for k, v in point.items() if k != "unet_steps"}, step=steps)
            print(f"learning curve: {point}", flush=True)
        learning_run = run.info.run_id
    timing["unet"] = {"steps": unet_cfg.max_steps, "wall_s": unet_wall,
                      "worker_cpu_s_per_step": unet_cpu / unet_cfg.max_steps}
    stage1 = GIDPipeline.from_pretrained(bundle)
    untrained_state = MotionTask(train, bundle).build_model().state_dict()
    stage2_cfg = config("motion_stage2", args.stage2_steps)
    tic = time.perf_counter()
    result = fit(MotionTask(train, bundle, stage=2), stage2_cfg, bundle)
    timing["stage2"] = {"steps": stage2_cfg.max_steps, "wall_s": time.perf_counter() - tic,
                        **step_cost(result, stage2_cfg.max_steps)}
    print(f"stage2: {timing['stage2']}", flush=True)
    stage2 = GIDPipeline.from_pretrained(bundle)

    default = dict(guidance_scale=args.guidance, **sample)
    tic = time.perf_counter()
    with torch.no_grad():
        spectra = {  # name → one volume per seed (seam error uses the first)
            "stage 1 (frequency attention off)": [stage1(images, seed=s, **default).numpy() for s in seeds],
            "stage 2 (frequency attention on)": [stage2(images, seed=s, **default).numpy() for s in seeds],
            "stage 2, w = 1.75 (paper)": [stage2(images, seed=0, **{**default, "guidance_scale": 1.75}).numpy()],
            "stage 2, looping guidance": [stage2(images, loop=True, loop_strength=args.loop_strength, seed=0,
                                                 **default).numpy()],
        }
        stage1.unet.load_state_dict(untrained_state)
        spectra["untrained U-Net (trained VAE)"] = [stage1(images, seed=s, **default).numpy() for s in seeds]
    timing["sampling_s"] = time.perf_counter() - tic
    timing["total_s"] = time.perf_counter() - start
    spectra["oracle: unseen parameters redrawn"] = [redrawn(args, unseen_seed=j + 1) for j in range(args.samples)]
    spectra["oracle: unseen redrawn, through the VAE"] = [
        through_vae(stage2.vae, volume, scales) for volume in spectra["oracle: unseen parameters redrawn"]]
    spectra["oracle: phases redrawn"] = [redrawn(args, phase_seed=j + 1) for j in range(args.samples)]
    amps = {**{name: [baseline] for name, baseline in baselines.items()}, "zero motion": [np.zeros_like(gt[:1])]}
    amps.update({name: [amplitude_px(v, frames) for v in volumes] for name, volumes in spectra.items()})

    report = {"timing": timing, "learning_curve": curve, "args": {k: str(v) for k, v in vars(args).items()},
              "rows": {}, "mlflow_run": learning_run}
    zero_error = float(amplitude_error(amps["zero motion"][0], gt, mask).sum())
    mean_error = float(amplitude_error(mean_amp, gt, mask).sum())
    n = args.samples
    print(f"\nheld-out moving pixels ({mask.mean():.0%} of all), amplitude error in px summed over k = 0..{gt.shape[1] - 1}; "
          f"one sample per image at the defaults (w = {args.guidance}, {args.sample_steps} DDIM steps), mean over "
          f"{n} seeds; hit = strongest bin (k ≥ 1) within ±1 of the truth's; FD = motion FD")
    print(f"{'prediction':42s} {'1 sample':>9s} {'/ mean':>7s} {'/ zero':>7s} {'hit':>6s} {'FD':>7s} "
          f"{'mean of ' + str(n):>10s} {'seam':>6s}")
    for name, amp in amps.items():
        single = [float(amplitude_error(a, gt, mask).sum()) for a in amp]
        hits = [frequency_hit_rate(a, gt, mask) for a in amp]
        fds = [motion_fd(a, gt, mask) for a in amp]
        averaged = float(amplitude_error(np.mean(amp, axis=0), gt, mask).sum())
        seam = float(np.median(seam_error(spectra[name][0], frames))) if name in spectra else float("nan")
        row = {"single": float(np.mean(single)), "single_per_seed": single, "hit_rate": float(np.mean(hits)),
               "motion_fd": float(np.mean(fds)), "averaged": averaged, "samples": len(amp), "seam_median": seam,
               "per_frequency_single": amplitude_error(amp[0], gt, mask).tolist()}
        if len(amp) > 1:
            row.update(per_image_summary(np.mean(amp, axis=0), gt, mask, baselines))
        report["rows"][name] = row
        print(f"{name:42s} {row['single']:9.3f} {row['single'] / mean_error:7.2f} {row['single'] / zero_error:7.2f} "
              f"{row['hit_rate']:6.1%} {row['motion_fd']:7.3f} {averaged if len(amp) > 1 else float('nan'):10.3f} "
              f"{seam:6.2f}")
    print(f"{'ground truth':42s} {'':9s} {'':7s} {'':7s} {'':6s} {'':7s} {'':10s} "
          f"{float(np.median(seam_error(held_out['spectral'], frames))):6.2f}")
    loop_cost = report["rows"]["stage 2, looping guidance"]["single"] - report["rows"]["stage 2 (frequency attention on)"]["single_per_seed"][0]
    print(f"looping guidance: seam {report['rows']['stage 2 (frequency attention on)']['seam_median']:.2f} → "
          f"{report['rows']['stage 2, looping guidance']['seam_median']:.2f}, amplitude cost {loop_cost:+.3f} px (same seed)")
    print(f"\ntraining cost (2 threads): VAE {timing['vae']['wall_s']:.0f} s for {timing['vae']['steps']} steps "
          f"({timing['vae']['worker_cpu_s_per_step'] * 1000:.0f} ms worker CPU per step), U-Net stage 1 "
          f"{timing['unet']['wall_s']:.0f} s for {timing['unet']['steps']} ({timing['unet']['worker_cpu_s_per_step'] * 1000:.0f} "
          f"ms), stage 2 {timing['stage2']['wall_s']:.0f} s for {timing['stage2']['steps']}; VAE + U-Net "
          f"{timing['vae']['wall_s'] + timing['unet']['wall_s']:.0f} s; sampling {timing['sampling_s']:.0f} s")
    if args.paper_cost:
        timing["paper_preset"] = paper_preset_cost(args.threads_per_worker or 2)
        print(f"paper preset on this CPU: {json.dumps({k: round(v, 2) for k, v in timing['paper_preset'].items()})}")
    (out / "motion_learning.json").write_text(json.dumps(report, indent=1))
    hz = frequencies_hz(gt.shape[1], frames, 30.0)
    baseline = np.array(report["rows"]["per-pixel training mean"]["per_frequency_single"])
    curves = {name: np.array(report["rows"][name]["per_frequency_single"]) / baseline for name in
              ("training-set mean spectrum", "zero motion", "untrained U-Net (trained VAE)",
               "stage 2 (frequency attention on)", "oracle: unseen parameters redrawn")}
    plot_spectra(out / "motion_learning.png", curves, hz, "held-out moving pixels, one sample",
                 ylabel="error / per-pixel training mean's error", log_y=False)
    plot_learning_curve(out / "motion_learning_curve.png", curve, mean_error, zero_error)
    print(f"\nwrote {out / 'motion_learning.json'}, {out / 'motion_learning.png'}, {out / 'motion_learning_curve.png'}; "
          f"MLflow run {learning_run} in {bundle / 'mlflow.db'}")


def plot_learning_curve(path: Path, curve: list[dict], mean_error: float, zero_error: float) -> Path:
    """Moving-pixel error of one default sample against training seconds, with the two baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=110)
    ax.plot([p["train_s"] for p in curve], [p["moving_px_error_sum"] for p in curve], "o-", label="model, 1 sample")
    ax.axhline(mean_error, color="gray", ls="--", label="per-pixel training mean")
    ax.axhline(zero_error, color="black", ls=":", label="zero motion")
    ax.set_xlabel("training seconds (VAE + U-Net stage 1)")
    ax.set_ylabel("moving-pixel error, px (sum over k)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
