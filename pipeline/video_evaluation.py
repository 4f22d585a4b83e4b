"""Evaluating generated videos against real ones (paper §7) and, on synthetic data, against the true motion.

Inputs (all local folders):

- ``--real DIR`` / ``--fake DIR``: videos (``*.mp4``, ``*.mov``, ``*.mkv``, ``*.avi``, ``*.webm``)
  directly in DIR or in ``DIR/videos/`` — a `gid synth` folder and a `gid render` folder both
  qualify. Frames are center-cropped to 256×128 (after resizing to cover it) for the feature nets.
- ``--gt DIR`` (optional): the true motion of the images the fake videos were generated from,
  either a `gid synth` folder (``manifest.parquet`` + ``gt/*.npz``) or a folder of spectral
  volumes ``{id}.npy`` ``(K, 4, H, W)`` (``numpy.fft.rfft`` over the fake videos' T frames). A fake
  video belongs to the id equal to its file stem or to the longest id its stem starts with,
  followed by ``-`` or ``_`` (`gid render` names videos ``{stem}-{hash}.mp4``).

What is computed (each metric needs what it says; the rest is listed under ``skipped``, with why):

==================  ======================================  ===============================================
metric              needs                                   on
==================  ======================================  ===============================================
fid, kid_x100       ``--inception``                         every frame (or every ``frame_stride``-th)
sliding fid curve   ``--inception``                         30-frame windows, every 10 frames
fvd, fvd32          ``--i3d`` (Kinetics-400 I3D)            non-overlapping 16- / 32-frame windows
dtfvd, dtfvd32      ``--dt-i3d`` (Dynamic-Textures I3D)     same windows; curve over the 16-frame windows
motion_*            nothing (optical flow of the videos)    fake vs real videos' flow; amplitude vs ``--gt``
==================  ======================================  ===============================================

Each video is decoded once and turned into a record (features of the nets given, flow-based
motion statistics, amplitude error against the ground truth) by :class:`VideoEvaluator`; the
metrics are then computed from the records (:func:`motion_metrics`, :func:`distribution_metrics`).
All of it runs on one machine; ``gid.stages.evaluate`` maps :class:`VideoEvaluator` over many
videos on Ray Data and writes the report.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np


@dataclass
class EvalConfig:
    """What `gid eval` computes. Paths of weights are optional: metrics without them are skipped."""

    real: Path
    fake: Path
    out: Path = Path("results/eval")
    inception: Path | None = None
    i3d: Path | None = None
    dt_i3d: Path | None = None
    gt: Path | None = None
    crop_width: int = 256  # §7: 256×128 center crops
    crop_height: int = 128
    frame_stride: int = 1  # FID/KID on every n-th frame
    fid_window: int = 30  # §7 sliding-window FID
    fid_window_stride: int = 10
    fvd_frames: tuple[int, ...] = (16, 32)  # FVD and FVD32
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    flow: str = "dis-medium"
    max_frames: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    ray_min_videos: int = 64
    num_gpus_per_worker: float = 0.0
    mlflow_uri: str | None = None
    experiment: str = "gid-eval"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("real", "fake", "out", "inception", "i3d", "dt_i3d", "gt"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        if self.crop_width < 32 or self.crop_height < 32:
            raise ValueError(f"--crop must be at least 32x32, got {self.crop_width}x{self.crop_height}")
        for name in ("frame_stride", "fid_window", "fid_window_stride", "kid_subsets", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"--max-frames must be at least 2, got {self.max_frames}")
        for name in ("inception", "i3d", "dt_i3d"):
            path = getattr(self, name)
            if path is not None and not path.exists():
                raise FileNotFoundError(f"--{name.replace('_', '-')} {path}: no such file or folder "
                                        "(weights load from local files only; see docs/evaluate.md)")


def center_crop(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(T, H, W, 3)`` → ``(T, height, width, 3)``: resize (area) to cover the crop, then cut its center."""
    import cv2

    src_h, src_w = frames.shape[1:3]
    scale = max(width / src_w, height / src_h)
    if abs(scale - 1.0) > 1e-9:
        new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(f, (new_w, new_h), interpolation=interp) for f in frames])
    top = (frames.shape[1] - height) // 2
    left = (frames.shape[2] - width) // 2
    return np.ascontiguousarray(frames[:, top:top + height, left:left + width])


def _windows(num_frames: int, length: int) -> list[int]:
    """Starts of the non-overlapping ``length``-frame windows of a video."""
    return list(range(0, num_frames - length + 1, length))


class VideoEvaluator:
    """Everything `gid eval` measures on one video, from one decode.

    ``__call__(path, fake)`` returns a record of arrays: ``num_frames``, ``fps``; the features of the
    nets given (``feat_inception`` ``(T', 2048)``, ``feat_i3d16`` / ``feat_i3d32`` / ``feat_dt16`` /
    ``feat_dt32`` ``(n_windows, D)``, ``T' = ceil(T / frame_stride)``); the motion statistics from the
    video's optical flow (``magnitude`` ``(H, W)`` = W(p), ``seam_px``, ``frame_seam``); and with a
    ground truth, ``amp_abs`` / ``amp_rel`` / ``amp_pred`` / ``amp_true`` ``(K,)`` and the motion FD
    descriptors ``amp_desc_pred`` / ``amp_desc_true`` ``(K,)``, or ``problem`` (why not). For a fake video a ``{stem}.npy`` spectral volume beside it replaces the flow in the
    amplitude error (``predicted`` = 1).
    """

    def __init__(self, cfg: EvalConfig, gt_index: dict[str, Path] | None = None) -> None:
        from gid.pipeline.flow import make_flow

        self.cfg = cfg
        self.gt_index = gt_index
        self.flow = make_flow(cfg.flow)
        self.nets = {}
        if any(p is not None for p in (cfg.inception, cfg.i3d, cfg.dt_i3d)):
            from gid.pipeline.feature_nets import load_feature_net

            for name, kind, path in (("inception", "inception", cfg.inception), ("i3d", "i3d", cfg.i3d),
                                     ("dt", "i3d", cfg.dt_i3d)):
                if path is not None:
                    self.nets[name] = load_feature_net(kind, path, cfg.device)

    @property
    def record_keys(self) -> list[str]:
        """Every key a record of this evaluator can hold (a video may lack some of them)."""
        keys = ["num_frames", "fps", "predicted", "magnitude", "seam_px", "frame_seam"]
        keys += ["feat_inception"] * ("inception" in self.nets)
        keys += [f"feat_{name}{length}" for name in ("i3d", "dt") if name in self.nets for length in self.cfg.fvd_frames]
        if self.gt_index is not None:
            keys += ["amp_abs", "amp_rel", "amp_pred", "amp_true", "amp_desc_pred", "amp_desc_true", "problem"]
        return keys

    def _run(self, net, batches: Iterable[np.ndarray]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for batch in batches:
                out.append(net(torch.from_numpy(batch).to(self.cfg.device)).float().cpu().numpy())
        return np.concatenate(out)

    def features(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Features of ``frames (T, H, W, 3)`` uint8 from the 256×128 center crops (§7)."""
        cfg = self.cfg
        video = center_crop(frames, cfg.crop_width, cfg.crop_height).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out: dict[str, np.ndarray] = {}
        if "inception" in self.nets:
            images = video[::cfg.frame_stride]
            out["feat_inception"] = self._run(self.nets["inception"], (
                images[i:i + cfg.batch_size] for i in range(0, len(images), cfg.batch_size)))
        for name in ("i3d", "dt"):
            for length in cfg.fvd_frames if name in self.nets else ():
                starts = _windows(len(video), length)
                if starts:
                    clips = np.stack([video[s:s + length].transpose(1, 0, 2, 3) for s in starts])  # (n, 3, L, h, w)
                    size = max(1, cfg.batch_size // length)
                    out[f"feat_{name}{length}"] = self._run(self.nets[name], (
                        clips[i:i + size] for i in range(0, len(clips), size)))
        return out

    def _amplitude(self, path: Path, traj: np.ndarray, predicted: np.ndarray | None) -> dict[str, np.ndarray]:
        import torch

        from gid.datasets.ground_truth import load_true_spectral, match_id
        from gid.pipeline.motion_metrics import amplitude_error, amplitude_px, motion_descriptors, moving_mask
        from gid.pipeline.warping import resize_flow, resize_spectral
        from gid.pipeline.spectral import trajectories_to_spectral

        key = match_id(path.stem, self.gt_index)
        if key is None:
            return {"problem": np.array(f"{path.name}: no ground-truth id matches")}
        true_spec, true_frames = load_true_spectral(self.gt_index[key])
        if true_frames is not None and true_frames != len(traj):
            return {"problem": np.array(f"{path.name}: {len(traj)} frames, its ground truth {true_frames}")}
        height, width = true_spec.shape[-2:]
        if predicted is None:
            traj = resize_flow(torch.from_numpy(np.ascontiguousarray(traj, np.float32)), (height, width)).numpy()
            pred_spec = trajectories_to_spectral(traj, true_spec.shape[0])
        elif predicted.shape[0] != true_spec.shape[0]:
            return {"problem": np.array(f"{path.name}: {predicted.shape[0]} frequencies in its .npy, "
                                        f"ground truth {true_spec.shape[0]}")}
        else:
            pred_spec = resize_spectral(predicted, (height, width))
        a_pred, a_true = amplitude_px(pred_spec[None], len(traj)), amplitude_px(true_spec[None], len(traj))
        err, true_amp = amplitude_error(a_pred, a_true), a_true.mean(axis=(0, 2, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(true_amp > 0, err / true_amp, np.nan)
        return {"amp_abs": err, "amp_rel": rel, "amp_pred": a_pred.mean(axis=(0, 2, 3)), "amp_true": true_amp,
                # motion FD descriptors, both pooled over the truth's moving pixels
                "amp_desc_pred": motion_descriptors(a_pred, moving_mask(a_true))[0],
                "amp_desc_true": motion_descriptors(a_true, moving_mask(a_true))[0]}

    def __call__(self, path: Path, fake: bool) -> dict[str, np.ndarray]:
        from gid.datasets.video_io import read_video
        from gid.pipeline.video_metrics import frame_seam_ratio, loop_seam_error, mean_motion_magnitude

        path = Path(path)
        frames, fps = read_video(path, max_frames=self.cfg.max_frames)
        record = {"num_frames": np.array(len(frames)), "fps": np.array(fps), **self.features(frames)}
        predicted = None
        sidecar = path.with_suffix(".npy")
        if fake and sidecar.is_file():
            predicted = np.load(sidecar).astype(np.float32)
            if predicted.ndim != 4 or predicted.shape[1] != 4:
                raise ValueError(f"{sidecar}: a predicted spectral volume must be (K, 4, H, W), got {predicted.shape}")
        record["predicted"] = np.array(int(predicted is not None))
        traj = self.flow.trajectories(frames)
        record["magnitude"] = mean_motion_magnitude(traj).astype(np.float32)
        record["seam_px"] = np.array(loop_seam_error(traj))
        record["frame_seam"] = np.array(frame_seam_ratio(frames))
        if self.gt_index is not None:
            record.update(self._amplitude(path, traj, predicted))
        return record


def _nanmean(values: Iterable[float]) -> float:
    """Mean of the finite values; NaN (``null`` in metrics.json) when there are none."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def motion_metrics(real: list[dict], fake: list[dict], with_gt: bool) -> tuple[dict, dict, dict]:
    """Motion metrics from the :class:`VideoEvaluator` records of the real and fake videos.

    Both sets' motion comes from the same optical flow (§3), so its error cancels in the
    distribution distance; the amplitude error of the real videos' flow against the ground truth
    (when their names match it) is the floor that flow error alone gives, reported beside the fake
    videos' error.

    Returns ``(metrics, per_frequency, skipped)``: flat scalars, per-frequency lists (for the spectra
    plot), and ``{metric: reason}`` for what could not be computed.
    """
    from gid.pipeline.video_metrics import motion_magnitude_distance

    metrics: dict[str, float] = {
        "motion_magnitude_w1_px": motion_magnitude_distance([r["magnitude"] for r in fake], [r["magnitude"] for r in real]),
        "motion_magnitude_mean_fake_px": float(np.mean([r["magnitude"].mean() for r in fake])),
        "motion_magnitude_mean_real_px": float(np.mean([r["magnitude"].mean() for r in real])),
        "loop_seam_fake_px": float(np.mean([r["seam_px"] for r in fake])),
        "loop_seam_real_px": float(np.mean([r["seam_px"] for r in real])),
        "frame_seam_ratio_fake": _nanmean(r["frame_seam"] for r in fake),
        "frame_seam_ratio_real": _nanmean(r["frame_seam"] for r in real),
    }
    per_frequency: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for label, records, metric in (("fake", fake, "motion_amplitude_error"), ("real", real, "motion_amplitude_error_floor")):
        paired = [r for r in records if "amp_abs" in r]
        problems = [str(r["problem"]) for r in records if "problem" in r]
        if not with_gt:
            skipped[metric] = "no --gt given (the per-pixel comparison needs the true motion)"
            continue
        if not paired:
            skipped[metric] = f"no {label} video has usable ground truth ({problems[0]})"
            continue
        abs_err = np.mean([r["amp_abs"] for r in paired], axis=0)
        rel_err = np.nanmean(np.stack([r["amp_rel"] for r in paired]), axis=0)
        metrics[f"{metric}_px"] = float(abs_err[1:].mean())
        metrics[f"{metric}_rel"] = float(np.nanmean(rel_err[1:]))
        metrics[f"{metric}_videos"] = float(len(paired))
        per_frequency[f"{label}_amplitude_error_px"] = abs_err.tolist()
        per_frequency[f"{label}_amplitude_error_rel"] = rel_err.tolist()
        per_frequency[f"{label}_amplitude_px"] = np.mean([r["amp_pred"] for r in paired], axis=0).tolist()
        per_frequency.setdefault("true_amplitude_px", np.mean([r["amp_true"] for r in paired], axis=0).tolist())
        if problems:
            per_frequency[f"{label}_without_ground_truth"] = problems
        fd_metric = "motion_fd" if label == "fake" else "motion_fd_floor"
        if len(paired) < 2:
            skipped[fd_metric] = f"needs at least 2 {label} videos with ground truth, got {len(paired)}"
        else:  # motion FD: Fréchet distance of per-video log-amplitude descriptors (gid.pipeline.motion_metrics)
            from gid.pipeline.video_metrics import frechet_feature_distance

            metrics[fd_metric] = frechet_feature_distance(np.stack([r["amp_desc_pred"] for r in paired]),
                                                          np.stack([r["amp_desc_true"] for r in paired]))
    predicted = sum(int(r["predicted"]) for r in fake)
    per_frequency["fake_motion_source"] = (f"predicted spectral volumes (.npy beside {predicted} videos)"
                                           if predicted else "optical flow of the fake videos")
    return metrics, per_frequency, skipped


def distribution_metrics(cfg: EvalConfig, real: list[dict], fake: list[dict]) -> tuple[dict, dict, dict]:
    """FID, KID, FVD(32), DTFVD(32) and the sliding-window curves from the records' features.

    A metric the features cannot support (too few windows or samples) is listed in ``skipped``
    with the reason instead of failing the whole evaluation.
    """
    from gid.pipeline.video_metrics import frechet_feature_distance, kernel_inception_distance, sliding_window_frechet

    metrics: dict[str, float] = {}
    curves: dict[str, dict] = {}
    skipped: dict[str, str] = {}

    def attempt(names: tuple[str, ...], compute) -> None:
        try:
            compute()
        except ValueError as err:
            for name in names:
                skipped[name] = str(err)

    def inception() -> None:
        a = np.concatenate([r["feat_inception"] for r in real])
        b = np.concatenate([r["feat_inception"] for r in fake])
        metrics["fid"] = frechet_feature_distance(a, b)
        metrics["kid_x100"], metrics["kid_x100_std"] = kernel_inception_distance(a, b, cfg.kid_subsets, cfg.kid_subset_size)

    def sliding_fid() -> None:
        starts, values = sliding_window_frechet(
            [r["feat_inception"] for r in real], [r["feat_inception"] for r in fake],
            max(1, cfg.fid_window // cfg.frame_stride), max(1, cfg.fid_window_stride // cfg.frame_stride))
        curves["sliding_fid"] = {"start_frame": (starts * cfg.frame_stride).tolist(), "value": values.tolist(),
                                 "window_frames": cfg.fid_window}

    if cfg.inception is None:
        skipped.update(dict.fromkeys(("fid", "kid_x100", "sliding_fid"), "no --inception weights given"))
    else:
        attempt(("fid", "kid_x100"), inception)
        attempt(("sliding_fid",), sliding_fid)
    for net, option, label in (("i3d", cfg.i3d, "fvd"), ("dt", cfg.dt_i3d, "dtfvd")):
        for length in cfg.fvd_frames:
            name, key = (label if length == 16 else f"{label}{length}"), f"feat_{net}{length}"
            if option is None:
                skipped[name] = f"no --{'i3d' if net == 'i3d' else 'dt-i3d'} weights given"
            elif not all(key in r for r in [*real, *fake]):
                skipped[name] = f"some videos are shorter than {length} frames"
            else:
                attempt((name,), lambda name=name, key=key: metrics.__setitem__(name, frechet_feature_distance(
                    np.concatenate([r[key] for r in real]), np.concatenate([r[key] for r in fake]))))

    def sliding_dtfvd() -> None:
        if not all("feat_dt16" in r for r in [*real, *fake]):
            raise ValueError("some videos are shorter than 16 frames")
        starts, values = sliding_window_frechet([r["feat_dt16"] for r in real], [r["feat_dt16"] for r in fake], 1, 1)
        curves["sliding_dtfvd"] = {"start_frame": (starts * 16).tolist(), "value": values.tolist(), "window_frames": 16}

    if cfg.dt_i3d is None:
        skipped["sliding_dtfvd"] = "no --dt-i3d weights given"
    else:
        attempt(("sliding_dtfvd",), sliding_dtfvd)
    return metrics, curves, skipped
