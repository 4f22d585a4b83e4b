"""Bulk rendering on Ray Data: many photos in, one MP4 per photo out, plus a Parquet manifest.

The run is one streaming Ray Data pipeline, so memory stays flat however many photos there are::

    items ──► read (tasks) ──► MotionRenderer (actor pool, GPU when asked) ──► encode (tasks) ──► driver
    paths,    decode photo,     batched motion sampling (DDIM, CFG, looping,     H.264 MP4        manifest shards,
    Parquet   fit to max side   §4.2 / §6) → per photo: resize motion (§5),                      errors/, progress,
    rows                        F_t = irfft(S) (§4.1), softsplat render (§5)                      MLflow throughput

Batching happens where it pays: the diffusion model samples the motion of ``batch_size`` photos in one
call (the photos are resized to the model's resolution), then each photo is rendered at its own size.
Encoding runs in CPU tasks so that a GPU actor never waits for the video encoder.

Between the stages photos, motion and frames travel as Ray tensor columns (one array per row;
fixed-shape when a batch's arrays agree, variable-shaped when photos differ in size), never as bytes.

Every item that fails (unreadable photo, a model error, an encoder error) becomes a row in
``OUT/errors/`` and ``status == "error"`` in the manifest; the run never stops for one bad photo.
A rerun skips every source whose manifest status is ``ok`` and whose video still exists. What is
read and written (items, the output layout, the manifest) is gid.datasets.render_inputs and
gid.datasets.render_outputs; the per-photo work is gid.pipeline.photo_render.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gid.datasets.render_inputs import collect_inputs, read_photos
from gid.datasets.render_outputs import (consolidate_manifest, done_sources, failure, manifest_rows, video_name,
                                         write_part, write_rendered)
from gid.pipeline.sampling import SAMPLING, check_sampling
from gid.stages.options import ADDRESS_HELP, GUIDANCE_HELP, SEED_HELP, STEPS_HELP, check_options, option

RENDERERS = ("auto", "splat", "learned")
NO_MOTION = np.zeros((0, 4, 0, 0), np.float32)  # the motion column of an item without a volume


@dataclass
class RenderConfig:
    """What `gid render` does; the defaults render 5 s videos at 30 fps on the local machine. Each
    :func:`~gid.stages.options.option` field is also the command's flag, help, default and range."""

    model: Path | None = option(None, "Model bundle folder from `gid train` (model_index.json, vae/, unet/, ...).")
    out: Path = option(Path("results/render"), "Folder for videos/, manifest.parquet and errors/.", required=True)
    frames: int = option(150, "Frames per video (T).", minimum=2)
    fps: float = option(30.0, "Frame rate of the videos.", positive=True)
    loop: bool = option(False, "Seamlessly looping motion (§6 universal guidance).", flag="--loop/--no-loop")
    amplify: float = option(1.0, "Scale the motion: >1 exaggerates, <1 calms it, 0 freezes it.")
    num_inference_steps: int = option(SAMPLING.num_inference_steps, STEPS_HELP, flag="--steps", minimum=1)
    guidance_scale: float = option(SAMPLING.guidance_scale, GUIDANCE_HELP, flag="--guidance-scale", aliases=("--guidance",))
    # each photo's noise: gid.pipeline.photo_render.photo_seed(seed, source), independent of batch and neighbours
    seed: int = option(0, SEED_HELP)
    num_gpus: int = option(0, "GPUs to use, one render actor each; 0 renders on CPU actors.", minimum=0)
    num_workers: int = option(1, "CPU render actors when --num-gpus is 0 (leave one CPU free).", minimum=1)
    batch_size: int = option(4, "Photos whose motion is sampled together in one model call.", minimum=1)
    max_side: int = option(512, "Shrink photos so their long side is at most this (px).", minimum=16)
    renderer: str = option("auto", "auto: the bundle's learned renderer if it has one, else softmax splatting; "
                                   "splat; learned.")
    spectral: bool = option(False, "Render the motion stored in clip tables (their `spectral` column) instead of "
                                   "sampling it.", flag="--spectral")
    save_motion: bool = option(False, "Also write each video's spectral volume (K, 4, h, w) as videos/NAME.npy; "
                                      "`gid eval` then measures motion exactly, without flow.", flag="--save-motion")
    image_column: str = option("image", "Column of Parquet inputs that holds encoded images.")
    address: str | None = option(None, ADDRESS_HELP)
    tracking_uri: str | None = option(None, "MLflow tracking URI; default $MLFLOW_TRACKING_URI, else "
                                            "sqlite:///OUT/mlflow.db.", flag="--mlflow-uri")
    experiment: str = "gid-render"
    progress: bool = True

    def __post_init__(self) -> None:
        check_sampling(self.num_inference_steps, self.guidance_scale)
        check_options(self)
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


# ---------------------------------------------------------------------------------------------- stages

def read_batch(batch: dict[str, np.ndarray], image_column: str, spectral: bool, max_side: int,
               num_frames: int) -> dict[str, Any]:
    """Read stage (Ray task) over gid.datasets.render_inputs.read_photos: adds ``pixels``
    ``(H, W, 3)`` uint8 with its ``height`` and ``width``, with ``spectral`` the stored volume as
    ``motion`` ``(K, 4, h, w)`` float32 (else ``(0, 4, 0, 0)``), and ``error``."""
    images, motion, errors = read_photos(list(batch["path"]), list(batch["row"]), image_column, spectral, max_side,
                                         num_frames)
    return {"source": batch["source"], "name": batch["name"],
            "pixels": [np.zeros((0, 0, 3), np.uint8) if im is None else im for im in images],
            "height": np.array([0 if im is None else im.shape[0] for im in images], np.int64),
            "width": np.array([0 if im is None else im.shape[1] for im in images], np.int64),
            "motion": [NO_MOTION if spec is None else spec for spec in motion], "error": np.array(errors, dtype=object)}


class MotionRenderer:
    """Render stage (Ray actor) over gid.pipeline.photo_render.PhotoRenderer: loads the model once,
    then turns batches of photos into ``frames`` ``(T, H, W, 3)`` uint8 (``(0, 0, 0, 3)`` on error)
    and, with ``save_motion``, the ``spectral`` ``(K, 4, h, w)`` each was rendered from."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import torch

        from gid.pipeline.photo_render import PhotoRenderer

        self.cfg = RenderConfig(**{**cfg, "model": cfg["model"] and Path(cfg["model"]), "out": Path(cfg["out"])})
        self.device = torch.device("cuda" if self.cfg.num_gpus > 0 and torch.cuda.is_available() else "cpu")
        self.renderer = PhotoRenderer(self.cfg.model, self.device, frames=self.cfg.frames,
                                      num_inference_steps=self.cfg.num_inference_steps,
                                      guidance_scale=self.cfg.guidance_scale, loop=self.cfg.loop,
                                      amplify=self.cfg.amplify, seed=self.cfg.seed, renderer=self.cfg.renderer,
                                      sample=not self.cfg.spectral)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        errors = [str(e) for e in batch["error"]]
        images = [None if error else np.asarray(pixels) for pixels, error in zip(batch["pixels"], errors)]
        stored = [np.asarray(spec) for spec in batch["motion"]] if self.cfg.spectral else None
        done = self.renderer(images, [str(s) for s in batch["source"]], errors, stored, keep_motion=self.cfg.save_motion)
        return {"source": batch["source"], "name": batch["name"], "height": batch["height"], "width": batch["width"],
                "frames": [np.zeros((0, 0, 0, 3), np.uint8) if f is None else f for f in done.frames],
                "spectral": [NO_MOTION if m is None else m for m in done.motion],
                "error": np.array(done.errors, dtype=object), "render_s": np.array(done.seconds)}


def encode_batch(batch: dict[str, np.ndarray], out: str, fps: float) -> dict[str, np.ndarray]:
    """Encode stage (Ray task) over gid.datasets.render_outputs.write_rendered: frames →
    ``OUT/videos/*.mp4`` (with ``save_motion`` also the volume and its sidecar); rows for the manifest."""
    videos, num_frames, errors = [], [], list(batch["error"])
    for i, source in enumerate(batch["source"]):
        name, count = "", 0
        if not errors[i]:
            try:
                frames, spectral = np.asarray(batch["frames"][i]), np.asarray(batch["spectral"][i], np.float32)
                name, count = video_name(source, str(batch["name"][i])), len(frames)
                write_rendered(out, name, frames, fps, spectral if spectral.shape[0] else None)
            except Exception as err:  # noqa: BLE001
                errors[i] = failure("encode", err)
        videos.append(name)
        num_frames.append(count)
    return {"source": batch["source"], "video": np.array(videos, dtype=object), "frames": np.array(num_frames, np.int64),
            "height": batch["height"], "width": batch["width"], "error": np.array(errors, dtype=object),
            "render_s": batch["render_s"]}


# ---------------------------------------------------------------------------------------------- driver

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
                rows, error_rows = manifest_rows(batch, cfg.fps, run_id)
                failed += len(error_rows)
                rendered += len(rows) - len(error_rows)
                frames_total += sum(row["frames"] for row in rows if row["status"] == "ok")
                write_part(rows, out / "manifest", run_id, part)
                if error_rows:
                    write_part(error_rows, out / "errors", run_id, part)
                part += 1
                bar.update(len(rows))
                bar.set_postfix(failed=failed)
        seconds = time.perf_counter() - start
        if started:
            ray.shutdown()
    manifest = consolidate_manifest(out)
    summary = RenderSummary(rendered, failed, len(items) - len(todo), seconds, frames_total, manifest, run_id)
    mlflow.set_tracking_uri(cfg.tracking_uri or default_tracking_uri(out))
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=f"render-{run_id}"):
        mlflow.log_params({k: v for k, v in asdict(cfg).items() if k not in ("tracking_uri", "progress")})
        mlflow.log_metrics({"videos": rendered, "failed": failed, "skipped": summary.skipped, "wall_s": seconds,
                            "videos_per_s": summary.videos_per_s, "frames_per_s": summary.frames_per_s})
    return summary
