"""`gid eval` on Ray Data: every video through :class:`gid.pipeline.video_evaluation.VideoEvaluator`
(in-process below ``ray_min_videos`` videos, where ``ray.init`` alone would cost seconds; an actor
pool above), then the metrics, plots, ``metrics.json`` and the MLflow run. What is computed and
from what: :mod:`gid.pipeline.video_evaluation`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gid.pipeline.video_evaluation import EvalConfig, VideoEvaluator, distribution_metrics, motion_metrics


class _RayVideoWorker:
    """Ray Data actor: loads the nets and the flow once, then turns video paths into records.

    A record travels as one Arrow tensor column per key (:attr:`VideoEvaluator.record_keys`); a key a
    video has no value for (a feature of windows it is too short for, the amplitude error of a video
    without ground truth) is an empty array, or an empty string for ``problem``.
    """

    def __init__(self, cfg: EvalConfig, gt_index: dict[str, Path] | None) -> None:
        self.evaluate = VideoEvaluator(cfg, gt_index)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [self.evaluate(Path(p), bool(f)) for p, f in zip(batch["path"], batch["fake"])]
        columns = {"path": batch["path"]}
        for key in self.evaluate.record_keys:
            empty = np.array("") if key == "problem" else np.zeros(0, np.float32)
            columns[key] = np.stack([np.asarray(r.get(key, empty)) for r in records])
        return columns


def _record_from_row(row: dict[str, Any]) -> dict[str, np.ndarray]:
    """The record of one output row of :class:`_RayVideoWorker`: empty values are absent keys."""
    return {k: np.asarray(v) for k, v in row.items() if k != "path" and np.asarray(v).size and not
            (k == "problem" and not str(v))}


def evaluate_videos(real_paths: list[Path], fake_paths: list[Path], cfg: EvalConfig,
                    gt_index: dict[str, Path] | None) -> tuple[list[dict], list[dict]]:
    """The :class:`VideoEvaluator` record of every video, real and fake (in order).

    In-process below ``cfg.ray_min_videos`` videos in all; otherwise a Ray Data ``map_batches`` over
    the paths in an actor pool (one actor per CPU, or per ``num_gpus_per_worker`` GPUs).
    """
    from tqdm import tqdm

    items = [(p, False) for p in real_paths] + [(p, True) for p in fake_paths]
    if len(items) < cfg.ray_min_videos:
        evaluator = VideoEvaluator(cfg, gt_index)
        records = [evaluator(p, f) for p, f in tqdm(items, desc="eval", unit="video", disable=not cfg.progress)]
    else:
        import ray

        from gid.stages.ray_runtime import init_ray

        init_ray()  # joins $RAY_ADDRESS if set, else a local Ray with disk spilling; reuses a running session
        resources = ray.cluster_resources()
        if cfg.num_gpus_per_worker > 0:
            workers = int(resources.get("GPU", 0) / cfg.num_gpus_per_worker)
            if workers < 1:
                raise ValueError(f"--num-gpus {cfg.num_gpus_per_worker} per worker, but the Ray cluster has "
                                 f"{resources.get('GPU', 0)} GPUs; lower --num-gpus or use --device cpu")
        else:
            workers = max(1, int(resources.get("CPU", 1)))
        dataset = ray.data.from_items([{"path": str(p), "fake": f} for p, f in items]).map_batches(
            _RayVideoWorker, fn_constructor_kwargs={"cfg": cfg, "gt_index": gt_index}, batch_size=1,
            concurrency=(1, workers), num_gpus=cfg.num_gpus_per_worker,
        )
        by_path = {row["path"]: _record_from_row(row) for row in tqdm(
            dataset.iter_rows(), total=len(items), desc="eval (Ray Data)", unit="video", disable=not cfg.progress)}
        records = [by_path[str(p)] for p, _ in items]
    return records[:len(real_paths)], records[len(real_paths):]


def log_to_mlflow(cfg: EvalConfig, report: dict) -> str:
    """Log params, scalar metrics, curves (as steps) and the output folder to an MLflow run; its id."""
    import mlflow

    mlflow.set_tracking_uri(cfg.mlflow_uri)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=f"eval {cfg.fake.name}") as run:
        mlflow.log_params({k: str(v) for k, v in report["inputs"].items()})
        mlflow.log_metrics({k: v for k, v in report["metrics"].items() if np.isfinite(v)})
        for name, curve in report["curves"].items():
            for start, value in zip(curve["start_frame"], curve["value"]):
                mlflow.log_metric(name, value, step=int(start))
        mlflow.log_artifacts(str(cfg.out))
        return run.info.run_id


def evaluate(cfg: EvalConfig) -> dict:
    """Run every metric the inputs allow; write ``metrics.json`` and PNG plots to ``cfg.out``.

    Returns the report written to ``metrics.json``: ``inputs``, ``metrics`` (flat name → value),
    ``per_frequency``, ``curves``, ``skipped`` (name → why), ``seconds``, ``plots``.
    """
    from gid.datasets.ground_truth import ground_truth_index
    from gid.datasets.video_io import list_videos
    from gid.pipeline.spectral import frequencies_hz
    from gid.pipeline.visualize import plot_curves, plot_magnitudes, plot_spectra

    real_paths = list_videos(cfg.real, "--real")
    fake_paths = list_videos(cfg.fake, "--fake")
    gt_index = ground_truth_index(cfg.gt) if cfg.gt is not None else None
    cfg.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    real, fake = evaluate_videos(real_paths, fake_paths, cfg, gt_index)
    seconds = {"videos": time.perf_counter() - start}
    metrics, per_frequency, skipped = motion_metrics(real, fake, gt_index is not None)
    dist, curves, dist_skipped = distribution_metrics(cfg, real, fake)
    metrics.update(dist)
    skipped.update(dist_skipped)

    plots = {}
    if curves:
        plots["sliding_windows"] = plot_curves(cfg.out / "sliding_windows.png", curves).name
    plots["motion_magnitude"] = plot_magnitudes(cfg.out / "motion_magnitude.png", [r["magnitude"] for r in fake],
                                                [r["magnitude"] for r in real]).name
    if "true_amplitude_px" in per_frequency:
        freqs = frequencies_hz(len(per_frequency["true_amplitude_px"]), int(fake[0]["num_frames"]), float(fake[0]["fps"]))
        per_frequency["frequency_hz"] = freqs.tolist()
        labels = {"true_amplitude_px": "ground truth", "fake_amplitude_px": "generated",
                  "real_amplitude_px": "real videos' flow", "fake_amplitude_error_px": "|error| generated",
                  "real_amplitude_error_px": "|error| real videos' flow (floor)"}
        plots["amplitude_spectra"] = plot_spectra(
            cfg.out / "amplitude_spectra.png",
            {label: np.asarray(per_frequency[key]) for key, label in labels.items() if key in per_frequency},
            freqs, "Oscillation amplitude per frequency, mean over pixels").name

    report = {
        "inputs": {"real": str(cfg.real), "fake": str(cfg.fake), "gt": str(cfg.gt) if cfg.gt else None,
                   "num_real": len(real_paths), "num_fake": len(fake_paths),
                   "crop": f"{cfg.crop_width}x{cfg.crop_height}", "flow": cfg.flow,
                   "inception": str(cfg.inception) if cfg.inception else None,
                   "i3d": str(cfg.i3d) if cfg.i3d else None, "dt_i3d": str(cfg.dt_i3d) if cfg.dt_i3d else None},
        "metrics": metrics, "per_frequency": per_frequency, "curves": curves, "skipped": skipped,
        "seconds": seconds, "plots": plots,
    }
    (cfg.out / "metrics.json").write_text(json.dumps(_finite(report), indent=1))
    if cfg.mlflow_uri:
        report["mlflow_run_id"] = log_to_mlflow(cfg, report)
        (cfg.out / "metrics.json").write_text(json.dumps(_finite(report), indent=1))
    return report


def _finite(value: Any) -> Any:
    """The report with NaN/inf floats as ``null`` (strict JSON) and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
