"""Preprocessing on Ray Data: video files → clips → optical flow → spectral volumes → Parquet.

Streaming stages (each a gid function that also runs without Ray)::

    sources ─► decode (VideoClipDatasource read tasks: datasets.video_reader.iter_clips, one block per clip)
            ─► motion (actor pool: pipeline.clip_motion — flow from frame 0, quality, spectral volume)
            ─► driver: datasets.clip_store (atomic shards, errors, done markers, merged sketches)

Rows between stages have one flat schema: ``kind`` (``clip``, ``end``, ``filtered``, ``error``),
``source``, ``start_frame``, ``num_clips``, ``stage``, ``error``, ``reason`` and ``data`` (the clip's
frames ``(T, H, W, 3)`` uint8 bytes after decoding; the pickled clip row and sketch after motion).
Each file ends with an ``end`` row carrying its clip count and decode error, so the driver knows
when a source is complete, whatever order the actors finish in.
"""
from __future__ import annotations

import glob
import logging
import pickle
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from gid.datasets.clips import clip_id, encode_image, make_clip_row
from gid.datasets.video_reader import VIDEO_EXTENSIONS, ClipSpec, VideoError, iter_clips
from gid.pipeline.flow import FlowMethod, make_flow
from gid.pipeline.normalize import FrequencyStats
from gid.pipeline.clip_motion import clip_motion
from gid.pipeline.quality import QualityConfig
from gid.stages.ray_runtime import init_ray

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass
class PreprocessConfig:
    """Settings of one preprocessing output folder (paper §7 defaults: T=150, stride 10, 256×160, K=16)."""

    num_frames: int = 150
    stride: int = 10
    width: int = 256
    height: int = 160
    fps: float = 30.0
    num_freqs: int = 16
    flow: str = "dis"
    target_frames: int = 0
    quality: QualityConfig = field(default_factory=QualityConfig)

    def __post_init__(self) -> None:
        self.spec()  # validates frames, stride, size, fps
        if not 1 <= self.num_freqs <= self.num_frames // 2 + 1:
            raise ValueError(f"--num-freqs must be in [1, frames//2+1 = {self.num_frames // 2 + 1}], got {self.num_freqs}")
        if not 0 <= self.target_frames < self.num_frames:
            raise ValueError(f"--target-frames must be in [0, frames), got {self.target_frames}")
        make_flow(self.flow)  # unknown names fail here, before Ray starts

    def spec(self) -> ClipSpec:
        return ClipSpec(self.num_frames, self.stride, self.width, self.height, self.fps)

    def settings(self) -> dict[str, Any]:
        return asdict(self)


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (recursive, by video extension), globs, text files of paths, pyarrow URIs → sources.

    Names that do not exist are kept: they become ``open`` error records, not a crash.
    """
    out: list[str] = []
    for item in inputs:
        item = str(item)
        path = Path(item)
        if "://" in item:
            out.extend(_expand_uri(item))
        elif any(c in item for c in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            out.extend(m for m in matches if Path(m).is_file()) if matches else out.append(item)
        elif path.is_dir():
            out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            lines = [ln.strip() for ln in path.read_text().splitlines()]
            listed = [ln if "://" in ln or Path(ln).is_absolute() else str(path.parent / ln)
                      for ln in lines if ln and not ln.startswith("#")]
            out.extend(expand_inputs(listed))
        else:
            out.append(item)
    unique = list(dict.fromkeys(out))
    if not unique:
        raise ValueError(f"no videos found in {' '.join(map(str, inputs))} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    return unique


def _expand_uri(uri: str) -> list[str]:
    from pyarrow import fs

    scheme = uri.split("://", 1)[0]
    filesystem, path = fs.FileSystem.from_uri(uri)
    info = filesystem.get_file_info(path)
    if info.type != fs.FileType.Directory:
        return [uri]
    infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
    return sorted(f"{scheme}://{i.path}" for i in infos
                  if i.type == fs.FileType.File and Path(i.path).suffix.lower() in VIDEO_EXTENSIONS)


def _row(kind: str, source: str, **values: Any) -> dict[str, Any]:
    return {"kind": kind, "source": source, "start_frame": -1, "num_clips": 0, "stage": "", "error": "",
            "reason": "", "data": b"", **values}


def decode_source(item: dict[str, Any], spec: ClipSpec) -> Iterator[dict[str, Any]]:
    """Stage 1: one file → ``clip`` rows (frames as bytes), then one ``end`` row (count, decode error)."""
    source, count = item["source"], 0
    try:
        for start, frames in iter_clips(source, spec):
            yield _row("clip", source, start_frame=start, data=frames.tobytes())
            count += 1
    except VideoError as err:
        yield _row("end", source, num_clips=count, stage=err.stage, error=str(err))
        return
    except Exception as err:  # a broken file must not stop the run: record it
        yield _row("end", source, num_clips=count, stage="decode", error=f"{source}: {type(err).__name__}: {err}")
        return
    yield _row("end", source, num_clips=count)


class VideoClipDatasource(Datasource):
    """Stage 1 as a Ray Data source: each read task decodes its files once, streaming, one clip at a time
    (Ray's own ``read_videos`` yields single frames through decord, which does not fit clips).

    ``ray.data.read_datasource(VideoClipDatasource(paths, ClipSpec()))`` gives the rows of
    :func:`decode_source`: ``clip`` rows with the frames ``(T, H, W, 3)`` uint8 as bytes, then one
    ``end`` row per file.
    """

    def __init__(self, sources: list[str], spec: ClipSpec) -> None:
        self.sources, self.spec = list(sources), spec

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None) -> list[ReadTask]:
        groups = [g.tolist() for g in np.array_split(np.array(self.sources, dtype=object), max(1, min(parallelism, len(self.sources))))]
        spec = self.spec

        def read(files: list[str]) -> Iterator[pa.Table]:
            for source in files:
                for row in decode_source({"source": source}, spec):
                    yield pa.Table.from_pylist([row])

        return [ReadTask(lambda files=files: read(files),
                         BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=tuple(files)),
                         per_task_row_limit=per_task_row_limit)
                for files in groups if files]


def process_clip(source: str, start_frame: int, frames: np.ndarray, cfg: PreprocessConfig, flow: FlowMethod,
                 use_gpu: bool = False) -> tuple[dict[str, Any] | None, FrequencyStats | None, str | None]:
    """Stage 2 for one clip ``frames (T, H, W, 3)`` uint8: ``(clip row, sketch, None)`` or ``(None, None, reason)``."""
    motion = clip_motion(frames, flow, cfg.num_freqs, cfg.quality, use_gpu)
    if motion.quality.reason:
        return None, None, motion.quality.reason
    spectral = motion.spectral.astype("<f2")  # what the table stores, so the scales describe it
    extra = motion.quality.columns()
    motion_mean = extra.pop("motion_mean")
    if cfg.target_frames:
        ts = target_times(source, start_frame, cfg.num_frames, cfg.target_frames)
        extra["target_t"] = ts.tolist()
        extra["target_images"] = [encode_image(frames[t]) for t in ts]
        extra["target_flows"] = [np.ascontiguousarray(motion.trajectories[t], dtype="<f2").tobytes() for t in ts]
    row = make_clip_row(source, start_frame, cfg.fps, frames[0], spectral, cfg.num_frames, motion_mean, **extra)
    stats = FrequencyStats(num_freqs=cfg.num_freqs).update(spectral.astype(np.float32))
    return row, stats, None


def target_times(source: str, start_frame: int, num_frames: int, count: int) -> np.ndarray:
    """``count`` distinct sorted t in [1, T), seeded by the clip id: the same in every run."""
    rng = np.random.default_rng(int(clip_id(source, start_frame), 16))
    return np.sort(rng.choice(np.arange(1, num_frames), count, replace=False))


class MotionStage:
    """Stage 2 as a Ray Data actor: holds the flow method (a GPU net loads its weights once here)."""

    def __init__(self, cfg: PreprocessConfig, use_gpu: bool = False) -> None:
        self.cfg, self.use_gpu = cfg, use_gpu
        self.flow = make_flow(cfg.flow)
        self.shape = (cfg.num_frames, cfg.height, cfg.width, 3)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["kind"] != "clip":
            return row
        source, start = row["source"], int(row["start_frame"])
        try:
            frames = np.frombuffer(row["data"], dtype=np.uint8).reshape(self.shape)
            clip_row, stats, reason = process_clip(source, start, frames, self.cfg, self.flow, self.use_gpu)
        except Exception as err:  # one bad clip is an error record, never the end of the run
            return _row("error", source, start_frame=start, stage="flow", error=f"{source}@{start}: {type(err).__name__}: {err}")
        if reason:
            return _row("filtered", source, start_frame=start, reason=reason)
        return _row("clip", source, start_frame=start, data=pickle.dumps((clip_row, stats)))


@dataclass
class Summary:
    """What a run did (``videos_skipped``: done by an earlier run, not touched)."""

    videos_ok: int = 0
    videos_failed: int = 0
    videos_skipped: int = 0
    clips_written: int = 0
    clips_filtered: Counter = field(default_factory=Counter)
    errors: int = 0
    seconds: float = 0.0
    scales_written: bool = False

    def lines(self, out: Path) -> list[str]:
        filtered = sum(self.clips_filtered.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in self.clips_filtered.most_common()) or "none"
        return [
            f"videos: {self.videos_ok} ok, {self.videos_failed} failed, {self.videos_skipped} already done (skipped)",
            f"clips: {self.clips_written} written, {filtered} filtered ({reasons})",
            f"errors: {self.errors} record(s) in {out / 'errors'}" if self.errors else "errors: none",
            f"scales: {out / 'freq_scales.json'}" if self.scales_written else "scales: not written (no clip with motion yet)",
            f"time: {self.seconds:.1f} s",
        ]


def run_preprocess(inputs: list[str], out: str | Path, cfg: PreprocessConfig | None = None, *, workers: int = 0,
                   num_cpus: int | None = None, num_gpus: int | None = None, address: str | None = None,
                   rows_per_shard: int = 32, progress: bool = True) -> Summary:
    """Preprocess ``inputs`` into ``out`` (see gid.datasets.clip_store for the layout); resumable.

    Args:
        workers: motion (flow) actors; 0 = one per CPU of the cluster.
        num_cpus, num_gpus: resources of a local Ray started here (ignored when joining a cluster);
            with GPUs the spectral step runs on cupy.
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else a new local Ray).
    """
    import ray

    from gid.datasets.clip_store import ClipStore

    cfg = cfg or PreprocessConfig()
    start_time = time.perf_counter()
    sources = expand_inputs(inputs)
    store = ClipStore(out, cfg.settings(), rows_per_shard)
    todo = [s for s in sources if not store.is_done(s)]
    summary = Summary(videos_skipped=len(sources) - len(todo))
    use_gpu = bool(num_gpus)
    if use_gpu:
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise ValueError("--num-gpus needs cupy for the spectral step: pip install 'gid[gpu]'") from None
    started = init_ray(address, num_cpus=num_cpus, num_gpus=num_gpus) if todo else False
    try:
        if todo:
            _stream(todo, store, cfg, summary, workers, use_gpu, progress)
        summary.scales_written = store.write_scales(cfg.num_freqs) is not None and (store.root / "freq_scales.json").is_file()
    finally:
        if started:
            ray.shutdown()
    summary.seconds = time.perf_counter() - start_time
    return summary


def _stream(todo: list[str], store, cfg: PreprocessConfig, summary: Summary, workers: int, use_gpu: bool,
            progress: bool) -> None:
    """Run the Ray Data pipeline over ``todo`` and hand every result to ``store`` (a ClipStore)."""
    import ray
    import ray.data as rd
    from tqdm import tqdm

    context = rd.DataContext.get_current()
    data_logger = logging.getLogger("ray.data")
    saved = context.enable_progress_bars, context.target_max_block_size, data_logger.level
    context.enable_progress_bars = False  # one bar for the whole run (videos), below
    # Ray merges small outputs up to this size: one decoded clip per block spreads clips evenly over actors.
    context.target_max_block_size = cfg.num_frames * cfg.height * cfg.width * 3
    data_logger.setLevel(logging.WARNING)  # its per-dataset INFO lines would break the bar
    cpus = float(ray.cluster_resources().get("CPU", 1))
    gpus = float(ray.cluster_resources().get("GPU", 0)) if use_gpu else 0.0
    workers = workers or max(1, int(cpus))
    decoders = max(1, round(cpus / 4))
    # An actor and a decoder must fit together on the smallest node: fractions do not pack across nodes.
    node_cpus = min((n["Resources"]["CPU"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")), default=cpus)
    actor_cpus = max(0.1, min((cpus - 0.5 * decoders) / workers, node_cpus - 0.5))
    bar = tqdm(total=len(todo), unit="video", desc="preprocess", disable=not progress)
    try:
        ds = rd.read_datasource(VideoClipDatasource(todo, cfg.spec()), override_num_blocks=min(len(todo), 10_000),
                                num_cpus=0.5, compute=rd.TaskPoolStrategy(size=decoders))
        ds = ds.map(MotionStage, fn_constructor_kwargs={"cfg": cfg, "use_gpu": use_gpu}, num_cpus=actor_cpus,
                    num_gpus=(gpus / workers) if gpus else None, compute=rd.ActorPoolStrategy(size=workers))
        for row in ds.iter_rows():
            _collect(row, store, summary, bar)
    finally:
        bar.close()
        context.enable_progress_bars, context.target_max_block_size = saved[:2]
        data_logger.setLevel(saved[2])


def _collect(row: dict[str, Any], store, summary: Summary, bar) -> None:
    """Driver side: file one result row with ``store``; publish its source when complete."""
    source, kind, start = row["source"], row["kind"], int(row["start_frame"])
    if not store.accepts(source):
        return
    if source not in store.open:
        store.begin(source)
    if kind == "clip":
        clip_row, stats = pickle.loads(row["data"])
        store.add_clip(source, start, clip_row, stats, None)
    elif kind == "filtered":
        store.add_clip(source, start, None, None, row["reason"])
    elif kind == "error":
        store.add_error(source, row["stage"], row["error"], start)
    else:  # end of the file
        if row["error"]:
            store.add_error(source, row["stage"], row["error"])
        store.end_of_source(source, int(row["num_clips"]))
    if store.open[source].complete:
        done = store.finish(source)
        summary.videos_failed += bool(done.errors)
        summary.videos_ok += not done.errors
        summary.clips_written += done.written
        summary.clips_filtered.update(done.filtered)
        summary.errors += len(done.errors)
        bar.update(1)
        bar.set_postfix(clips=summary.clips_written, filtered=sum(summary.clips_filtered.values()),
                        failed=summary.videos_failed)
