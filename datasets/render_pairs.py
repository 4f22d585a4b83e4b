"""Renderer training pairs ``(I_0, I_t, F_t)`` from the clip table's target columns.

`gid preprocess --target-frames N` stores, per clip, N sampled frames ``t`` with their image and
the flow ``F_t`` from frame 0 (columns ``target_t``, ``target_images`` list<PNG>, ``target_flows``
tensor<float16>(N, 2, H, W); read through gid.datasets.clip_table.clip_arrays). Each target is one
pair. The splat metric ``Z`` needs the motion over the whole clip (``W(p) = mean_t ‖F_t(p)‖``), which
comes from the clip's spectral volume.

:func:`write_synthetic_render_clips` writes the same columns from `gid synth`'s generator with the
*exact* frames and trajectories, so a renderer can be trained and judged on perfect motion.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gid.datasets.clip_table import check_format, clip_arrays, make_clip_row, shard_paths, write_shard

TARGET_COLUMNS = ("target_t", "target_images", "target_flows")


def read_render_pairs(data_dir: str | Path, max_pairs: int | None = None) -> dict[str, np.ndarray]:
    """All pairs of a clip table, as arrays for a Ray Dataset.

    Returns:
        ``{"source": (N, H, W, 3) uint8, "target": (N, H, W, 3) uint8, "flow": (N, 2, H, W) float32,
        "metric": (N, 1, H, W) float32}`` with ``metric`` = ``Z`` of :func:`gid.pipeline.warping.splat_metric`.
    """
    import torch

    from gid.pipeline.warping import motion_metric, splat_metric
    from gid.pipeline.spectral import spectral_to_trajectories

    paths = shard_paths(data_dir)
    schema = pq.read_schema(paths[0])
    missing = [c for c in TARGET_COLUMNS if c not in schema.names]
    if missing:
        raise ValueError(f"{data_dir}: the clip table has no {', '.join(missing)} columns; renderer training needs "
                         "target frames: rerun `gid preprocess ... --target-frames 8`")
    out: dict[str, list] = {"source": [], "target": [], "flow": [], "metric": []}
    size = None
    for path in paths:
        table = pq.read_table(path, columns=["clip_id", "num_frames", "image", "spectral", *TARGET_COLUMNS])
        check_format(table.schema, path)
        clips = clip_arrays(table)
        for i, clip in enumerate(clips["clip_id"]):
            if size is None:
                size = clips["image"].shape[1:3]
            if clips["image"].shape[1:3] != size:
                raise ValueError(f"{path}: clip {clip} is {clips['image'].shape[2]}x{clips['image'].shape[1]} but "
                                 f"earlier clips are {size[1]}x{size[0]}; preprocess all clips at one --size")
            traj = spectral_to_trajectories(torch.from_numpy(clips["spectral"][i]), int(clips["num_frames"][i]))
            metric = splat_metric(motion_metric(traj)[None])[0].numpy()
            for image, flow in zip(clips["target_images"][i], clips["target_flows"][i]):
                out["source"].append(clips["image"][i])
                out["target"].append(image)
                out["flow"].append(flow)
                out["metric"].append(metric)
                if max_pairs is not None and len(out["flow"]) >= max_pairs:
                    return {k: np.stack(v) for k, v in out.items()}
    if not out["flow"]:
        raise ValueError(f"{data_dir}: no target frames in the clip table (preprocessed with --target-frames 0?)")
    return {k: np.stack(v) for k, v in out.items()}


def write_synthetic_render_clips(out_dir: str | Path, num_videos: int, config=None, seed: int = 0,
                                 target_frames: int = 8) -> Path:
    """Generate ``num_videos`` synthetic videos and write them as clips with exact target frames.

    Video ``i`` uses ``generate_video(seed, i, config)``; its ``target_frames`` targets are drawn
    without replacement from ``t = 1 … T−1`` (seeded). Writes ``out_dir/clips/render-00000.parquet``.
    """
    from tqdm import tqdm

    from gid.datasets.synthetic import SynthConfig, generate_video, video_id

    cfg = config or SynthConfig()
    if not 1 <= target_frames < cfg.num_frames:
        raise ValueError(f"--target-frames must be in [1, {cfg.num_frames}), got {target_frames}")
    rng = np.random.default_rng([seed, 7])
    rows = []
    for index in tqdm(range(num_videos), desc="synthetic pairs", unit="video"):
        video = generate_video(seed, index, cfg)
        ts = np.sort(rng.choice(np.arange(1, cfg.num_frames), target_frames, replace=False))
        motion = float(np.hypot(video.trajectories[:, 0], video.trajectories[:, 1]).mean())
        rows.append(make_clip_row(
            video_id(seed, index), 0, cfg.fps, video.frames[0], video.spectral, cfg.num_frames, motion,
            target_t=ts, target_images=video.frames[ts], target_flows=video.trajectories[ts]))
    out_dir = Path(out_dir)
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    write_shard(rows, out_dir / "clips" / "render-00000.parquet")
    return out_dir
