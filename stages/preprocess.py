"""Preprocessing on Ray Data: video files → clips → optical flow → spectral volumes → Parquet.

One streaming Ray Data pipeline; the clip data never passes through the driver::

    sources ─► SourceDatasource  read tasks (0 CPU): one row per source (listed inputs or a manifest
                                 file, streamed row group by row group), one block per source
            ─► SourceStage       actor pool, one source per call: decode (datasets.clip_stream.iter_clips,
                                 one clip window in memory) → pipeline.clip_motion per clip (flow from
                                 frame 0, quality, spectral volume) → SourceWriter (datasets.clip_table_writer)
                                 writes the clip rows as Arrow-tensor Parquet shards into DIR/.pending/
            ─► driver            small rows only (source, counts, filter reasons, errors, sketch):
                                 ClipStore commits finished sources in groups (rename shards into clips/,
                                 append a done-log file), merges sketches → scales

Decoded frames stay inside the process that decoded them (numpy ``(T, H, W, 3)``): moving them
between stages would cost ``T·H·W·3`` bytes per clip (17.6 MiB at 150×256×160) of object-store and
network traffic for a decode step that is < 10 % of the work. Parallelism comes from sources; a long
video can be split into parts with a manifest's ``start``/``end`` columns.
"""
from __future__ import annotations

import glob
import logging
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from gid.datasets.clip_table_writer import SourceResult, SourceWriter, source_number
from gid.datasets.clip_table import clip_id, make_clip_row
from gid.datasets.clip_stream import VIDEO_EXTENSIONS, ClipSpec, VideoError, iter_clips
from gid.pipeline.clip_motion import clip_motion
from gid.pipeline.flow import FlowMethod, make_flow
from gid.pipeline.normalize import FrequencyStats
from gid.pipeline.clip_filters import QualityConfig
from gid.stages.ray_runtime import init_ray

LIST_SUFFIXES = (".txt", ".lst", ".list")
SOURCE_SCHEMA = pa.schema([("key", pa.string()), ("source", pa.string()), ("start", pa.float64()), ("end", pa.float64())])


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


def source_key(source: str, start: float = math.nan, end: float = math.nan) -> str:
    """The identity of one unit of work: the source, plus ``#start-end`` (seconds) for a part of it."""
    if math.isnan(start) and math.isnan(end):
        return source
    return f"{source}#{0.0 if math.isnan(start) else start:g}-{'' if math.isnan(end) else f'{end:g}'}"


def check_manifest(path: str | Path) -> int:
    """Validate a manifest's schema (``source`` string, optional numeric ``start``/``end`` seconds) from its
    footer alone; returns its row count."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise ValueError(f"--manifest {path}: not a readable Parquet file ({err}); write one with a 'source' column") from None
    schema = meta.schema_arrow
    if "source" not in schema.names or not pa.types.is_string(schema.field("source").type):
        raise ValueError(f"--manifest {path}: needs a string column 'source' (it has {', '.join(schema.names)})")
    for name in ("start", "end"):
        if name in schema.names and not (pa.types.is_floating(schema.field(name).type) or pa.types.is_integer(schema.field(name).type)):
            raise ValueError(f"--manifest {path}: column {name!r} must hold seconds as numbers, not {schema.field(name).type}")
    return meta.metadata.num_rows


def _source_block(source: str, start: Any = None, end: Any = None) -> pa.Table:
    start = math.nan if start is None else float(start)
    end = math.nan if end is None else float(end)
    return pa.Table.from_pylist([{"key": source_key(source, start, end), "source": source, "start": start, "end": end}],
                                schema=SOURCE_SCHEMA)


class SourceDatasource(Datasource):
    """The work list as a Ray Data source: one block per source, so the actor pool balances sources.

    From a list (``sources``) or from a manifest Parquet file (``manifest``: ``source``, optional
    ``start``/``end`` seconds), which read tasks stream row group by row group: the driver never
    holds the list.
    """

    def __init__(self, sources: list[str] | None = None, manifest: str | None = None) -> None:
        self.sources, self.manifest = list(sources or []), manifest

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None) -> list[ReadTask]:
        if self.manifest is None:
            groups = [g.tolist() for g in np.array_split(np.array(self.sources, dtype=object),
                                                         max(1, min(parallelism, len(self.sources))))]
            return [ReadTask(lambda files=files: (_source_block(f) for f in files),
                             BlockMetadata(num_rows=len(files), size_bytes=None, exec_stats=None, input_files=None),
                             per_task_row_limit=per_task_row_limit) for files in groups if files]
        import pyarrow.parquet as pq

        manifest = self.manifest
        row_groups = pq.ParquetFile(manifest).num_row_groups
        groups = [g.tolist() for g in np.array_split(np.arange(row_groups), max(1, min(parallelism, row_groups)))]

        def read(group: list[int]) -> Iterator[pa.Table]:
            file = pq.ParquetFile(manifest)
            columns = [c for c in ("source", "start", "end") if c in file.schema_arrow.names]
            for index in group:
                for row in file.read_row_group(index, columns=columns).to_pylist():
                    yield _source_block(row["source"], row.get("start"), row.get("end"))

        return [ReadTask(lambda group=group: read(group),
                         BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=(manifest,)),
                         per_task_row_limit=per_task_row_limit) for group in groups if group]


def process_clip(source: str, start_frame: int, frames: np.ndarray, cfg: PreprocessConfig, flow: FlowMethod,
                 use_gpu: bool = False) -> tuple[dict[str, Any] | None, FrequencyStats | None, str | None]:
    """One clip ``frames (T, H, W, 3)`` uint8: ``(clip row, sketch, None)`` or ``(None, None, reason)``."""
    motion = clip_motion(frames, flow, cfg.num_freqs, cfg.quality, use_gpu)
    if motion.quality.reason:
        return None, None, motion.quality.reason
    spectral = motion.spectral.astype("<f2")  # what the table stores, so the scales describe it
    extra = motion.quality.columns()
    motion_mean = extra.pop("motion_mean")
    if cfg.target_frames:
        ts = target_times(source, start_frame, cfg.num_frames, cfg.target_frames)
        extra.update(target_t=ts, target_images=frames[ts], target_flows=motion.trajectories[ts])
    row = make_clip_row(source, start_frame, cfg.fps, frames[0], spectral, cfg.num_frames, motion_mean, **extra)
    stats = FrequencyStats(num_freqs=cfg.num_freqs).update(spectral)  # float16: counted by bit pattern
    return row, stats, None


def target_times(source: str, start_frame: int, num_frames: int, count: int) -> np.ndarray:
    """``count`` distinct sorted t in [1, T), seeded by the clip id: the same in every run."""
    rng = np.random.default_rng(int(clip_id(source, start_frame), 16))
    return np.sort(rng.choice(np.arange(1, num_frames), count, replace=False))


def process_source(key: str, source: str, start: float, end: float, cfg: PreprocessConfig, flow: FlowMethod,
                   out: str | Path, use_gpu: bool = False, rows_per_shard: int = 32) -> SourceResult:
    """Decode one source (or its ``[start, end)`` seconds), process every clip, write its shards into
    ``out/.pending``; returns the small result row for the driver. Broken files and failing clips
    become errors in the result, never exceptions."""
    writer = SourceWriter(out, key, rows_per_shard)
    result = SourceResult(key, "ok")
    clip_range = {"start": 0.0 if math.isnan(start) else start, "end": None if math.isnan(end) else end}
    try:
        for first, frames in iter_clips(source, cfg.spec(), **clip_range):
            try:
                row, stats, reason = process_clip(source, first, frames, cfg, flow, use_gpu)
            except Exception as err:  # one bad clip is an error record, never the end of the run
                result.errors.append({"source": key, "stage": "flow", "error": f"{source}@{first}: {type(err).__name__}: {err}"})
                continue
            if reason:
                result.filtered[reason] += 1
                continue
            writer.add(row)
            result.clips_written += 1
            result.stats = stats if result.stats is None else result.stats.merge(stats)
    except VideoError as err:
        result.errors.append({"source": key, "stage": err.stage, "error": str(err)})
    except Exception as err:  # a broken file must not stop the run: record it
        result.errors.append({"source": key, "stage": "decode", "error": f"{source}: {type(err).__name__}: {err}"})
    result.parts = writer.close()
    result.status = "failed" if result.errors else "ok"
    return result


class SourceStage:
    """The work of one source as a Ray Data actor (a GPU flow net loads its weights once here).

    ``done``: sorted ``uint64`` ids of finished sources (or a one-element list holding the ObjectRef of
    that array); those come back as ``skipped`` rows without being opened.
    """

    def __init__(self, cfg: PreprocessConfig, out: str, done: Any, use_gpu: bool = False, rows_per_shard: int = 32) -> None:
        if isinstance(done, list):
            import ray

            done = ray.get(done[0])
        self.cfg, self.out, self.done, self.use_gpu, self.rows_per_shard = cfg, out, done, use_gpu, rows_per_shard
        self.flow = make_flow(cfg.flow)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for key, source, start, end in zip(batch["key"], batch["source"], batch["start"], batch["end"]):
            number = np.uint64(source_number(str(key)))
            index = np.searchsorted(self.done, number)
            if index < len(self.done) and self.done[index] == number:
                rows.append(SourceResult(str(key), "skipped").to_row())
                continue
            rows.append(process_source(str(key), str(source), float(start), float(end), self.cfg, self.flow, self.out,
                                       self.use_gpu, self.rows_per_shard).to_row())
        return {name: np.array([r[name] for r in rows], dtype=object) for name in rows[0]}


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
    first_result: float = math.nan  # seconds from the start to the first finished source: Ray and actor start-up
    scales_written: bool = False

    def lines(self, out: Path) -> list[str]:
        filtered = sum(self.clips_filtered.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in self.clips_filtered.most_common()) or "none"
        return [
            f"videos: {self.videos_ok} ok, {self.videos_failed} failed, {self.videos_skipped} already done (skipped)",
            f"clips: {self.clips_written} written, {filtered} filtered ({reasons})",
            (f"errors: {self.errors} record(s) in {out / 'errors'}" if self.errors else "errors: none")
            + ("; rerun with --retry-failed to try the failed videos again" if self.videos_failed else ""),
            f"scales: {out / 'freq_scales.json'}" if self.scales_written else "scales: not written (no clip with motion yet)",
            f"time: {self.seconds:.1f} s" + (f" (first source done after {self.first_result:.1f} s)"
                                             if not math.isnan(self.first_result) else ""),
        ]


def run_preprocess(inputs: list[str], out: str | Path, cfg: PreprocessConfig | None = None, *, manifest: str | None = None,
                   workers: int = 0, num_cpus: int | None = None, num_gpus: int | None = None, address: str | None = None,
                   rows_per_shard: int = 32, progress: bool = True, retry_failed: bool = False) -> Summary:
    """Preprocess ``inputs`` (or the sources of a ``manifest`` Parquet file) into ``out`` (layout:
    gid.datasets.clip_table_writer); resumable.

    Args:
        manifest: a Parquet file with a ``source`` column and optional ``start``/``end`` seconds; its rows
            are streamed by Ray read tasks, never listed in the driver.
        workers: source actors; 0 = one per CPU of the cluster.
        num_cpus, num_gpus: resources of a local Ray started here (ignored when joining a cluster);
            with GPUs the spectral step runs on cupy.
        address: a Ray cluster to join (default: ``RAY_ADDRESS``, else a new local Ray).
        retry_failed: redo the sources an earlier run recorded as failed (default: a rerun skips every
            source in the done log, failed or not).
    """
    import ray

    from gid.datasets.clip_table_writer import ClipStore

    cfg = cfg or PreprocessConfig()
    start_time = time.perf_counter()
    if manifest is not None and inputs:
        raise ValueError(f"give videos or --manifest {manifest}, not both")
    total = check_manifest(manifest) if manifest is not None else None
    sources = expand_inputs(inputs) if manifest is None else []
    store = ClipStore(out, cfg.settings())
    store.clear_pending()
    done = store.done_ids(retry_failed)
    todo = [s for s in sources if not _is_done(done, source_key(s))]
    summary = Summary(videos_skipped=len(sources) - len(todo))
    use_gpu = bool(num_gpus)
    if use_gpu:
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise ValueError("--num-gpus needs cupy for the spectral step: pip install 'gid[gpu]'") from None
    work = bool(todo) or bool(total)
    started = init_ray(address, num_cpus=num_cpus, num_gpus=num_gpus) if work else False
    try:
        if work:
            datasource = SourceDatasource(manifest=str(manifest)) if manifest is not None else SourceDatasource(todo)
            _stream(datasource, total or len(todo), store, done, cfg, summary, workers, use_gpu, rows_per_shard, progress,
                    start_time)
            store.commit()
        summary.scales_written = store.write_scales(cfg.num_freqs) is not None and (store.root / "freq_scales.json").is_file()
    finally:
        store.commit()
        if started:
            ray.shutdown()
    store.clear_pending()
    summary.seconds = time.perf_counter() - start_time
    return summary


def _is_done(done: np.ndarray, key: str) -> bool:
    number = np.uint64(source_number(key))
    index = np.searchsorted(done, number)
    return bool(index < len(done) and done[index] == number)


def _stream(datasource: SourceDatasource, total: int, store, done: np.ndarray, cfg: PreprocessConfig, summary: Summary,
            workers: int, use_gpu: bool, rows_per_shard: int, progress: bool, start_time: float) -> None:
    """Run the Ray Data pipeline and hand every small result row to ``store`` (a ClipStore)."""
    import ray
    import ray.data as rd
    from tqdm import tqdm

    context = rd.DataContext.get_current()
    data_logger = logging.getLogger("ray.data")
    saved = context.enable_progress_bars, data_logger.level
    context.enable_progress_bars = False  # one bar for the whole run (videos), below
    data_logger.setLevel(logging.WARNING)  # its per-dataset INFO lines would break the bar
    cpus = float(ray.cluster_resources().get("CPU", 1))
    gpus = float(ray.cluster_resources().get("GPU", 0)) if use_gpu else 0.0
    workers = max(1, min(workers or int(cpus), total))  # no idle actors for fewer sources than CPUs
    # An actor must fit on the smallest node: fractions do not pack across nodes.
    node_cpus = min((n["Resources"]["CPU"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")), default=cpus)
    actor_cpus = max(0.1, min(cpus / workers, node_cpus))
    bar = tqdm(total=total, unit="video", desc="preprocess", disable=not progress)
    try:
        # A read task per source (up to 1000) keeps one source per block, so idle actors take the next source;
        # at most 2 run at once: uncapped 0-CPU tasks each start a Ray worker process that imports the whole
        # stack (50 of them at 53 sources) for a job of microseconds.
        ds = rd.read_datasource(datasource, num_cpus=0, concurrency=2, override_num_blocks=max(1, min(total, 1000)))
        ds = ds.map_batches(SourceStage, batch_size=1, batch_format="numpy", num_cpus=actor_cpus,
                            num_gpus=(gpus / workers) if gpus else None, compute=rd.ActorPoolStrategy(size=workers),
                            fn_constructor_kwargs={"cfg": cfg, "out": str(store.root), "done": [ray.put(done)],
                                                   "use_gpu": use_gpu, "rows_per_shard": rows_per_shard})
        for row in ds.iter_rows():
            if math.isnan(summary.first_result):
                summary.first_result = time.perf_counter() - start_time
            _collect(row, store, summary, bar)
    finally:
        bar.close()
        context.enable_progress_bars = saved[0]
        data_logger.setLevel(saved[1])


def _collect(row: dict[str, Any], store, summary: Summary, bar) -> None:
    """Driver side: count one source's result and hand it to ``store`` for the next commit."""
    result = SourceResult.from_row(row)
    if not store.record(result):
        return
    if result.status == "skipped":
        summary.videos_skipped += 1
    else:
        summary.videos_failed += result.status == "failed"
        summary.videos_ok += result.status == "ok"
        summary.clips_written += result.clips_written
        summary.clips_filtered.update(result.filtered)
        summary.errors += len(result.errors)
    bar.update(1)
    bar.set_postfix(clips=summary.clips_written, filtered=sum(summary.clips_filtered.values()), failed=summary.videos_failed)
