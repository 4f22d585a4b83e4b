"""Bulk rendering on Ray Data: many photos in, one MP4 per photo out, plus a Parquet manifest.

The run is one streaming Ray Data pipeline, so memory stays flat however many photos there are::

    items ──► read (tasks) ──► MotionRenderer (actor pool, GPU when asked) ──► encode (tasks) ──► driver
    paths,    decode photo,     batched motion sampling (DDIM, CFG, looping,     H.264 MP4        manifest shards,
    Parquet   fit to max side   §4.2 / §6) → per photo: resize motion (§5),                      errors/, progress,
    rows                        F_t = irfft(S) (§4.1), softsplat render (§5)                      MLflow throughput

Batching happens where it pays: the diffusion model samples the motion of ``batch_size`` photos in one
call (the photos are resized to the model's resolution), then each photo is rendered at its own size.
Encoding runs in CPU tasks so that a GPU actor never waits for the video encoder.

Every item that fails (unreadable photo, a model error, an encoder error) becomes a row in
``OUT/errors/`` and ``status == "error"`` in the manifest; the run never stops for one bad photo.
A rerun skips every source whose manifest status is ``ok`` and whose video still exists.

Output layout::

    OUT/videos/{stem}-{hash}.mp4     one per source
    OUT/manifest/part-*.parquet      rows as they finish (source, video, seconds, status, ...)
    OUT/manifest.parquet             one row per source, the latest status (rewritten at the end)
    OUT/errors/part-*.parquet        source, stage (read, motion, render, encode), error
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gid.datasets.safe_paths import inside
from gid.pipeline.sampling import SAMPLING, check_sampling

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
RENDERERS = ("auto", "splat", "learned")
MANIFEST_COLUMNS = ("source", "video", "seconds", "status", "frames", "width", "height", "error", "run_id")


def photo_seed(seed: int, source: str) -> int:
    """The motion noise seed of one photo: ``seed`` mixed with a hash of the photo's source (path, or
    table and row), so a photo's motion depends neither on its batch nor on the photos beside it."""
    import zlib

    return (int(seed) * 1_000_003 + zlib.crc32(source.encode("utf-8", "surrogateescape"))) % 2**31


@dataclass
class RenderConfig:
    """What `gid render` does; the defaults render 5 s videos at 30 fps on the local machine."""

    model: Path | None = None  # a model bundle (see gid.pipeline.motion_pipeline); None with spectral=True
    out: Path = Path("results/render")
    frames: int = 150
    fps: float = 30.0
    loop: bool = False
    amplify: float = 1.0
    num_inference_steps: int = SAMPLING.num_inference_steps
    guidance_scale: float = SAMPLING.guidance_scale
    seed: int = 0  # each photo's noise comes from photo_seed(seed, source): independent of batch and neighbours
    num_gpus: int = 0  # 0: CPU actors; N > 0: N actors with one GPU each
    num_workers: int = 1  # CPU actors when num_gpus == 0
    batch_size: int = 4
    max_side: int = 512
    renderer: str = "auto"  # auto: the bundle's renderer/ if present, else softmax splatting
    save_motion: bool = False  # also write each video's spectral volume as videos/{name}.npy (gid eval uses it)
    spectral: bool = False  # render the `spectral` column of clip tables instead of sampling motion
    image_column: str = "image"
    address: str | None = None
    tracking_uri: str | None = None
    experiment: str = "gid-render"
    progress: bool = True

    def __post_init__(self) -> None:
        check_sampling(self.num_inference_steps, self.guidance_scale)
        if self.frames < 2:
            raise ValueError(f"--frames must be at least 2, got {self.frames}")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.num_gpus < 0 or self.num_workers < 1:
            raise ValueError(f"--num-gpus must be ≥ 0 and --num-workers ≥ 1, got {self.num_gpus}, {self.num_workers}")
        if self.renderer not in RENDERERS:
            raise ValueError(f"--renderer must be one of {', '.join(RENDERERS)}, got {self.renderer!r}")
        if self.amplify < 0:
            raise ValueError(f"--amplify must be ≥ 0 (1 keeps the predicted motion), got {self.amplify}")
        if self.spectral and self.loop:
            raise ValueError("--loop shapes sampled motion; it cannot be combined with --spectral (stored motion)")
        if not self.spectral:
            if self.model is None:
                raise ValueError("--model is required (a bundle folder from `gid train`), or pass --spectral "
                                 "to render the motion stored in clip tables")
            from gid.pipeline.motion_pipeline import read_bundle_config

            num_freqs = len(read_bundle_config(self.model).get("freq_scales", ()))
            if self.frames < 2 * (num_freqs - 1):
                raise ValueError(f"--frames {self.frames} cannot hold the model's {num_freqs} frequencies; "
                                 f"use at least {2 * (num_freqs - 1)}")
        if self.renderer == "learned" and (self.model is None or not (Path(self.model) / "renderer").is_dir()):
            raise FileNotFoundError(f"--renderer learned needs {self.model}/renderer/; train it with "
                                    "`gid train renderer --out BUNDLE`")


@dataclass
class RenderSummary:
    """What one `gid render` run did."""

    rendered: int
    failed: int
    skipped: int
    seconds: float
    frames: int
    manifest: Path
    run_id: str

    @property
    def videos_per_s(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------- inputs

def collect_inputs(inputs: list[str | Path], image_column: str = "image", spectral: bool = False) -> list[dict[str, Any]]:
    """Expand INPUT arguments into items ``{source, path, row}`` (row = -1 for image files).

    Accepts image files, folders (searched recursively for images), and Parquet files with an
    ``image_column`` of encoded images (a clip table from `gid preprocess` is one). With ``spectral``,
    only Parquet inputs with a ``spectral`` column are accepted.
    """
    import pyarrow.parquet as pq

    from gid.datasets.clip_table import check_format

    items: list[dict[str, Any]] = []
    if not inputs:
        raise ValueError("give at least one INPUT: image files, folders of images, or Parquet files")
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder; give images, folders or Parquet files")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + (".parquet",)
                           and not p.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) or Parquet files in this folder")
            items.extend(collect_inputs(found, image_column, spectral))
        elif path.suffix.lower() == ".parquet":
            schema = pq.read_schema(path)
            needed = [image_column] + (["spectral", "num_freqs", "height", "width", "num_frames"] if spectral else [])
            missing = [c for c in needed if c not in schema.names]
            if spectral:
                check_format(schema, path)
            if missing:
                raise ValueError(f"{path}: Parquet input lacks column(s) {', '.join(missing)}; "
                                 f"it has {', '.join(schema.names)} (choose the image column with --image-column)")
            items.extend({"source": f"{path}#{i}", "path": str(path), "row": i, "name": name}
                         for i, name in enumerate(_row_names(path, schema.names)))
        elif spectral:
            raise ValueError(f"{path}: --spectral renders the motion stored in clip tables; give Parquet files")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            items.append({"source": str(path), "path": str(path), "row": -1, "name": path.stem})
        else:
            raise ValueError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}) or Parquet file")
    return items


def _row_names(path: Path, columns: list[str]) -> list[str]:
    """Readable names of a Parquet file's rows: ``{stem of source}-{start_frame}`` for clip tables
    (so videos are named after the video the photo came from), else ``{file stem}-{row}``."""
    import pyarrow.parquet as pq

    if "source" not in columns:
        return [f"{path.stem}-{i}" for i in range(pq.ParquetFile(path).metadata.num_rows)]
    table = pq.read_table(path, columns=[c for c in ("source", "start_frame") if c in columns]).to_pylist()
    return [f"{Path(str(r['source'])).stem}" + (f"-{r['start_frame']}" if "start_frame" in r else "") for r in table]


def video_name(source: str, name: str) -> str:
    """``videos/{name}-{sha1(source)[:10]}.mp4``: readable, unique per source, and starting with the
    photo's (or its video's) id, which is how `gid eval --gt` matches videos to true motion."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    return f"videos/{name}-{digest}.mp4"


def _read_parquet_rows(path: str, rows: list[int], columns: list[str]) -> dict[int, dict[str, Any]]:
    """The given global row numbers of one Parquet file, reading only the row groups that hold them
    (a clip table's ``spectral`` as a ``(K, 4, H, W)`` float32 array, through gid.datasets.clip_table.clip_arrays)."""
    import pyarrow.parquet as pq

    from gid.datasets.clip_table import clip_arrays

    pf = pq.ParquetFile(path)
    starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    out: dict[int, dict[str, Any]] = {}
    for group in sorted({int(np.searchsorted(starts, r, side="right") - 1) for r in rows}):
        table = pf.read_row_group(group, columns=columns)
        tensors = clip_arrays(table, ["spectral"]) if "spectral" in columns else {}
        records = table.drop_columns(list(tensors)).to_pylist()
        for r in rows:
            if starts[group] <= r < starts[group + 1]:
                out[r] = {**records[r - starts[group]], **{k: v[r - starts[group]] for k, v in tensors.items()}}
    return out


def _failure(stage: str, err: BaseException) -> str:
    return f"{stage}: {type(err).__name__}: {err}"


# ---------------------------------------------------------------------------------------------- stages

def read_batch(batch: dict[str, np.ndarray], image_column: str, spectral: bool, max_side: int,
               num_frames: int) -> dict[str, Any]:
    """Read stage (Ray task): decode each photo, fit it to ``max_side`` (even sides, H.264).

    Adds ``pixels`` (raw ``(H, W, 3)`` uint8 bytes), ``height``, ``width``, and with ``spectral``
    the stored volume as ``motion`` (float32 bytes of ``(K, 4, h, w)``) with ``motion_shape``;
    a failure fills ``error`` instead. A stored volume of a T-frame clip is scaled by
    ``num_frames / T``: the inverse DFT divides by the length (§4.1), so this keeps the amplitudes
    in pixels when the video is rendered with another number of frames.
    """
    from gid.datasets.clip_table import decode_image
    from gid.pipeline.images import fit_image, load_image

    sources, paths, rows = list(batch["source"]), list(batch["path"]), [int(r) for r in batch["row"]]
    columns = [image_column] + (["spectral", "num_freqs", "height", "width", "num_frames"] if spectral else [])
    by_file: dict[str, dict[int, dict[str, Any]]] = {}
    pixels, heights, widths, motion, motion_shape, errors = [], [], [], [], [], []
    for path, row in zip(paths, rows):
        image, spec, error = None, None, ""
        try:
            if row < 0:
                image = load_image(path)
            else:
                if path not in by_file:
                    by_file[path] = _read_parquet_rows(path, [r for p, r in zip(paths, rows) if p == path], columns)
                record = by_file[path][row]
                data = record[image_column]
                if not isinstance(data, (bytes, bytearray)) or not data:
                    raise ValueError(f"{path} row {row}: column {image_column!r} holds no encoded image")
                try:
                    image = decode_image(data)
                except Exception as err:  # noqa: BLE001 - PIL raises several kinds
                    raise ValueError(f"{path} row {row}: column {image_column!r} cannot be read as an image ({err})") from None
                if spectral:
                    spec = record["spectral"] * (num_frames / record["num_frames"])
            image = fit_image(image, max_side)
        except Exception as err:  # noqa: BLE001 - one bad photo becomes an error row, never a crash
            error, image = _failure("read", err), None
        pixels.append(b"" if image is None else image.tobytes())
        heights.append(0 if image is None else image.shape[0])
        widths.append(0 if image is None else image.shape[1])
        motion.append(b"" if spec is None else np.ascontiguousarray(spec, np.float32).tobytes())
        motion_shape.append(np.zeros(4, np.int64) if spec is None else np.array(spec.shape, np.int64))
        errors.append(error)
    return {"source": np.array(sources, dtype=object), "name": batch["name"], "pixels": np.array(pixels, dtype=object),
            "height": np.array(heights, np.int64), "width": np.array(widths, np.int64),
            "motion": np.array(motion, dtype=object), "motion_shape": np.stack(motion_shape),
            "error": np.array(errors, dtype=object)}


class MotionRenderer:
    """Render stage (Ray actor): loads the model once, then turns batches of photos into frames.

    Motion of the whole batch is sampled in one call of the motion pipeline (images resized to the
    model's resolution); each photo is then rendered at its own size with its resized motion.
    Output per item: ``frames`` (raw ``(T, H, W, 3)`` uint8 bytes) or an ``error``.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        import torch

        self.cfg = RenderConfig(**{**cfg, "model": cfg["model"] and Path(cfg["model"]), "out": Path(cfg["out"])})
        self.device = torch.device("cuda" if self.cfg.num_gpus > 0 and torch.cuda.is_available() else "cpu")
        self.pipe = None
        if not self.cfg.spectral:
            from gid.pipeline import GIDPipeline

            self.pipe = GIDPipeline.from_pretrained(self.cfg.model, device=self.device)
        self.frame_renderer = None
        learned = self.cfg.model is not None and (Path(self.cfg.model) / "renderer").is_dir()
        if self.cfg.renderer == "learned" or (self.cfg.renderer == "auto" and learned):
            from gid.pipeline.frame_renderer import load_renderer

            self.frame_renderer = load_renderer(Path(self.cfg.model) / "renderer", self.device)

    def _sample(self, images: list[np.ndarray], seeds: list[int]) -> list["torch.Tensor"]:
        """Spectral volumes ``(K, 4, h', w')`` (pixels at the model's resolution) for a list of photos,
        sampled in one call with one noise seed per photo: photos of any size are brought to the
        model's ``(h', w')`` first."""
        spec = self.pipe(images, num_frames=self.cfg.frames, num_inference_steps=self.cfg.num_inference_steps,
                         guidance_scale=self.cfg.guidance_scale, loop=self.cfg.loop, amplify=self.cfg.amplify,
                         seed=seeds, batch_size=len(images), progress=False)
        return list(spec.float())

    def _render(self, image: np.ndarray, spec: "torch.Tensor") -> np.ndarray:
        """One photo ``(H, W, 3)`` and its motion ``(K, 4, h, w)`` → frames ``(T, H, W, 3)`` uint8."""
        from gid.pipeline.warping import render_video, resize_spectral
        from gid.pipeline.spectral import spectral_to_trajectories

        spec = resize_spectral(spec.to(self.device), (image.shape[0], image.shape[1]))
        trajectories = spectral_to_trajectories(spec, self.cfg.frames)
        return render_video(image, trajectories.float().cpu().numpy(), self.frame_renderer)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from gid.pipeline.spectral import scale_motion

        count = len(batch["source"])
        errors = list(batch["error"])
        images: dict[int, np.ndarray] = {}
        for i in range(count):
            if not errors[i]:
                images[i] = np.frombuffer(batch["pixels"][i], np.uint8).reshape(int(batch["height"][i]), int(batch["width"][i]), 3).copy()
        motion: dict[int, torch.Tensor] = {}
        if self.cfg.spectral:
            for i in images:
                spec = np.frombuffer(batch["motion"][i], np.float32).reshape(tuple(int(v) for v in batch["motion_shape"][i]))
                motion[i] = torch.from_numpy(scale_motion(spec, self.cfg.amplify).astype(np.float32))
        elif images:
            order = list(images)
            seeds = {i: photo_seed(self.cfg.seed, str(batch["source"][i])) for i in order}
            try:
                motion.update(zip(order, self._sample([images[i] for i in order], [seeds[i] for i in order])))
            except Exception:  # noqa: BLE001 - retry one by one, so one bad item fails alone
                for i in order:
                    try:
                        motion[i] = self._sample([images[i]], [seeds[i]])[0]
                    except Exception as err:  # noqa: BLE001
                        errors[i] = _failure("motion", err)
        frames, seconds, volumes = [], [], []
        for i in range(count):
            start, data = time.perf_counter(), b""
            if not errors[i]:
                try:
                    data = self._render(images[i], motion[i]).tobytes()
                except Exception as err:  # noqa: BLE001
                    errors[i] = _failure("render", err)
            frames.append(data)
            seconds.append(time.perf_counter() - start)
            keep = self.cfg.save_motion and not errors[i]
            volumes.append(np.ascontiguousarray(motion[i].cpu().numpy(), np.float32) if keep else np.zeros((0, 4, 0, 0), np.float32))
        return {"source": batch["source"], "name": batch["name"], "frames": np.array(frames, dtype=object),
                "height": batch["height"], "width": batch["width"], "error": np.array(errors, dtype=object),
                "render_s": np.array(seconds), "spectral": np.array([v.tobytes() for v in volumes], dtype=object),
                "spectral_shape": np.array([v.shape for v in volumes], np.int64)}


def motion_sidecar(shape: tuple[int, ...], num_frames: int, fps: float, video_size: tuple[int, int]) -> dict[str, Any]:
    """What a `--save-motion` ``.npy`` holds: its layout, T, fps, sizes and units (written as ``.motion.json``)."""
    num_freqs, _, height, width = shape
    return {"layout": "(K, 4, H, W): channels Re S_x, Im S_x, Re S_y, Im S_y of bins k = 0..K-1",
            "num_freqs": int(num_freqs), "num_frames": int(num_frames), "fps": float(fps),
            "size": [int(width), int(height)], "video_size": [int(video_size[0]), int(video_size[1])],
            "units": "S_k = numpy.fft.rfft over num_frames frames of each pixel's displacement, in pixels of the "
                     "volume's own W x H grid (resize with its displacements rescaled for the video); a pixel "
                     "moving by a*cos(2*pi*k*t/T + phi) has (2/T)*|S_k| = a px "
                     "(gid.pipeline.motion_metrics.amplitude_px)",
            "frequency_hz": [k * float(fps) / int(num_frames) for k in range(int(num_freqs))]}


def encode_batch(batch: dict[str, np.ndarray], out: str, fps: float) -> dict[str, np.ndarray]:
    """Encode stage (Ray task): frames → ``OUT/videos/*.mp4`` (H.264, atomic); rows for the manifest.

    With ``save_motion`` the spectral volume ``(K, 4, h, w)`` the video was rendered from (at the
    model's resolution, amplification applied) goes beside it as ``{video}.npy``, and what it holds
    as ``{video}.motion.json`` (:func:`motion_sidecar`).
    """
    from gid.datasets.video_io import atomic_path, write_video

    videos, num_frames, errors = [], [], list(batch["error"])
    for i, source in enumerate(batch["source"]):
        name, count = "", 0
        if not errors[i]:
            try:
                height, width = int(batch["height"][i]), int(batch["width"][i])
                frames = np.frombuffer(batch["frames"][i], np.uint8).reshape(-1, height, width, 3)
                name, count = video_name(source, str(batch["name"][i])), len(frames)
                shape = tuple(int(v) for v in batch["spectral_shape"][i])
                if shape[0]:
                    with atomic_path((Path(out) / name).with_suffix(".npy")) as tmp:
                        np.save(tmp, np.frombuffer(batch["spectral"][i], np.float32).reshape(shape))
                    with atomic_path((Path(out) / name).with_suffix(".motion.json")) as tmp:
                        Path(tmp).write_text(json.dumps(motion_sidecar(shape, len(frames), fps, (width, height))))
                write_video(Path(out) / name, frames, fps=fps)
            except Exception as err:  # noqa: BLE001
                errors[i] = _failure("encode", err)
        videos.append(name)
        num_frames.append(count)
    return {"source": batch["source"], "video": np.array(videos, dtype=object), "frames": np.array(num_frames, np.int64),
            "height": batch["height"], "width": batch["width"], "error": np.array(errors, dtype=object),
            "render_s": batch["render_s"]}


# ---------------------------------------------------------------------------------------------- driver

def read_manifest(out: str | Path) -> "pyarrow.Table | None":
    """All manifest rows written so far under ``out/manifest/``, latest last; None before the first run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted((Path(out) / "manifest").glob("part-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default") if parts else None


def done_sources(out: str | Path) -> set[str]:
    """Sources whose latest status is ``ok`` and whose video file still exists (a rerun skips them)."""
    table = read_manifest(out)
    if table is None:
        return set()
    latest = {row["source"]: row for row in table.to_pylist()}
    return {s for s, row in latest.items() if row["status"] == "ok" and inside(out, row["video"]).is_file()}


def _write_part(rows: list[dict[str, Any]], folder: Path, run_id: str, index: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gid.datasets.video_io import atomic_path

    with atomic_path(folder / f"part-{run_id}-{index:05d}.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)


def _consolidate(out: Path) -> Path:
    """Rewrite ``out/manifest.parquet``: one row per source, its latest status."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gid.datasets.video_io import atomic_path

    table = read_manifest(out)
    rows = list({row["source"]: row for row in table.to_pylist()}.values()) if table is not None else []
    with atomic_path(out / "manifest.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=None) if rows else pa.table({c: [] for c in MANIFEST_COLUMNS}), tmp)
    return out / "manifest.parquet"


def default_tracking_uri(out: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else the local SQLite store ``OUT/mlflow.db`` (as `gid train` does)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(out / 'mlflow.db').resolve()}"


def render_bulk(inputs: list[str | Path], cfg: RenderConfig) -> RenderSummary:
    """Render every input photo to ``cfg.out/videos/`` with Ray Data; see the module docstring."""
    import mlflow
    import ray
    from tqdm import tqdm

    from gid.stages.ray_runtime import init_ray

    out = Path(cfg.out)
    items = collect_inputs(inputs, cfg.image_column, cfg.spectral)
    try:
        for sub in ("videos", "manifest", "errors"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot write to {out}: {err.strerror or err}; choose a writable --out folder") from None
    done = done_sources(out)
    todo = [item for item in items if item["source"] not in done]
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    rendered = failed = frames_total = 0
    seconds = 0.0
    if todo:
        started = init_ray(cfg.address)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cfg.num_gpus == 0 and cfg.num_workers >= cpus:
            raise ValueError(f"--num-workers {cfg.num_workers} leaves no CPU for reading and encoding on a cluster "
                             f"with {cpus} CPUs; use at most {max(1, cpus - 1)}")
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        start = time.perf_counter()  # throughput counts the pipeline, not the Ray start-up
        use_gpu = cfg.num_gpus > 0
        ds = ray.data.from_items(todo, override_num_blocks=max(1, -(-len(todo) // cfg.batch_size)))
        ds = ds.map_batches(read_batch, batch_size=cfg.batch_size, batch_format="numpy",
                            fn_kwargs={"image_column": cfg.image_column, "spectral": cfg.spectral, "max_side": cfg.max_side,
                                       "num_frames": cfg.frames})
        cfg_dict = {**asdict(cfg), "model": cfg.model and str(cfg.model), "out": str(out)}
        # A render actor that dies (a killed process, a lost node) is restarted and its batch retried: Ray
        # Data's actor-pool defaults (max_restarts=-1, max_task_retries=-1); the fault drill checks them.
        ds = ds.map_batches(MotionRenderer, fn_constructor_kwargs={"cfg": cfg_dict}, batch_size=cfg.batch_size,
                            batch_format="numpy", num_gpus=1 if use_gpu else 0, num_cpus=1,
                            compute=ray.data.ActorPoolStrategy(size=cfg.num_gpus if use_gpu else cfg.num_workers))
        ds = ds.map_batches(encode_batch, batch_size=1, batch_format="numpy", fn_kwargs={"out": str(out), "fps": cfg.fps})
        part = 0
        with tqdm(total=len(todo), desc="render", unit="video", disable=not cfg.progress) as bar:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows, error_rows = [], []
                for i, source in enumerate(batch["source"]):
                    error = str(batch["error"][i])
                    ok = not error
                    rows.append({"source": str(source), "video": str(batch["video"][i]) if ok else "",
                                 "seconds": float(batch["frames"][i]) / cfg.fps, "status": "ok" if ok else "error",
                                 "frames": int(batch["frames"][i]), "width": int(batch["width"][i]),
                                 "height": int(batch["height"][i]), "error": error, "run_id": run_id})
                    if ok:
                        rendered += 1
                        frames_total += int(batch["frames"][i])
                    else:
                        failed += 1
                        error_rows.append({"source": str(source), "stage": error.split(":")[0], "error": error,
                                           "run_id": run_id})
                _write_part(rows, out / "manifest", run_id, part)
                if error_rows:
                    _write_part(error_rows, out / "errors", run_id, part)
                part += 1
                bar.update(len(rows))
                bar.set_postfix(failed=failed)
        seconds = time.perf_counter() - start
        if started:
            ray.shutdown()
    manifest = _consolidate(out)
    summary = RenderSummary(rendered, failed, len(items) - len(todo), seconds, frames_total, manifest, run_id)
    mlflow.set_tracking_uri(cfg.tracking_uri or default_tracking_uri(out))
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=f"render-{run_id}"):
        mlflow.log_params({k: v for k, v in asdict(cfg).items() if k not in ("tracking_uri", "progress")})
        mlflow.log_metrics({"videos": rendered, "failed": failed, "skipped": summary.skipped, "wall_s": seconds,
                            "videos_per_s": summary.videos_per_s, "frames_per_s": summary.frames_per_s})
    return summary
