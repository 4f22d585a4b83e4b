"""Shared training machinery: Ray Train ``TorchTrainer`` + MLflow for every model of gid.

A model plugs in as a :class:`TrainingTask` (its data, model, loss and how to save it); :func:`fit`
runs it on ``num_workers`` Ray Train workers (gloo on CPU, nccl on GPUs) with

- data from a Ray Dataset, decoded once (``materialize``); a worker whose shard fits in
  ``in_memory_mib`` copies it into tensors once and draws shuffled batches from memory, a larger one
  streams it with ``iter_torch_batches`` every epoch;
- AdamW, gradient clipping, bf16 autocast on GPU, and an EMA copy of the weights
  (``θ_ema ← d·θ_ema + (1−d)·θ`` with ``d = min(ema_decay, (1+step)/(10+step))``);
- a step whose loss or gradient is not finite is skipped on every worker (no weight update),
  counted in the ``nan_steps`` metric, and never reaches a checkpoint (weights are checked before
  every save); ``max_nan_steps`` consecutive bad steps stop the run with a clear error;
- a checkpoint every ``checkpoint_every`` steps through ``ray.train.report`` (weights as safetensors,
  optimizer state, step, the task's config); Ray Train's ``FailureConfig`` restarts failed workers
  from the last one, and running the same command again resumes from it (a checkpoint written by
  another config is refused);
- no retries for deterministic errors: a user error (``ValueError``, ``FileNotFoundError``, …) in a
  worker ends the run at once, every worker agreeing on it before the next collective, and :func:`fit`
  raises it in the driver as it was (``FailureConfig`` restarts only processes that died). What can be
  known before Ray starts (data size against batch × workers, free disk) is checked before Ray starts;
- MLflow tracking (experiment ``gid-<task>``): the config as params, losses per ``log_every`` steps,
  the task's pictures and the final model as artifacts; the default store is the sqlite file
  ``OUT/mlflow.db`` with artifacts in ``OUT/mlartifacts``.

The final (EMA) weights are written by the driver with ``task.save(model, out)``, e.g. ``OUT/vae/``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "train_state.json"
USER_ERROR_FILE = "user_error.txt"  # written by a worker whose run ended on a user error, read by fit()
# Exceptions that are the user's to fix and that a restart would only repeat.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
LR_SCHEDULES = ("constant", "cosine", "linear")  # diffusers.optimization.get_scheduler names, all with warmup


@dataclass
class TrainConfig:
    """How to train (the model itself is configured by its task). Defaults suit a small CPU run."""

    max_steps: int = 2000
    batch_size: int = 8
    learning_rate: float = 2e-4
    lr_schedule: str = "constant"  # one of LR_SCHEDULES, after --warmup-steps of linear warm-up
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 200
    log_every: int = 20
    num_workers: int = 1
    threads_per_worker: int | None = None  # torch intra-op threads of each worker (None: Ray's, one per reserved CPU)
    use_gpu: bool = False
    mixed_precision: bool = True
    max_failures: int = 2
    max_nan_steps: int = 20
    seed: int = 0
    shuffle_buffer: int = 256
    cache_data: bool = True
    # A worker whose shard is at most this many MiB (decoded) copies it into tensors once and draws
    # its batches from memory: no Ray Data iteration per step. 0 streams every epoch from Ray Data.
    in_memory_mib: int = 2048
    mlflow_uri: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "checkpoint_every", "log_every", "num_workers", "max_nan_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if not 0 <= self.warmup_steps < self.max_steps:
            raise ValueError(f"--warmup-steps must be in [0, --max-steps), got {self.warmup_steps}")
        if self.in_memory_mib < 0:
            raise ValueError(f"in_memory_mib must be ≥ 0, got {self.in_memory_mib}")
        if self.max_failures < 0:
            raise ValueError(f"--max-failures must be ≥ 0, got {self.max_failures}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise ValueError(f"--threads-per-worker must be at least 1, got {self.threads_per_worker}")


class TrainingTask:
    """What :func:`fit` needs to know about one model. Subclasses are plain picklable objects.

    ``name`` names the bundle sub-folder, the Ray Train run and the MLflow experiment.
    """

    name: str = "model"

    def config_dict(self) -> dict[str, Any]:
        """The model's configuration: logged as MLflow params, and compared with a checkpoint's on resume."""
        raise TypeError(f"{type(self).__name__} must define config_dict()")

    def dataset(self):
        """The training rows as a ``ray.data.Dataset`` of numeric columns (clear errors for bad data)."""
        raise TypeError(f"{type(self).__name__} must define dataset()")

    def build_model(self):
        """A freshly initialised ``torch.nn.Module`` (on CPU)."""
        raise TypeError(f"{type(self).__name__} must define build_model()")

    def loss(self, model, batch: dict, step: int):
        """``(loss tensor, {name: float})`` for one batch of tensors on the worker's device."""
        raise TypeError(f"{type(self).__name__} must define loss()")

    def save(self, model, out: Path) -> Path:
        """Write the final model under ``out`` (e.g. ``out/vae`` with save_pretrained); return the folder."""
        raise TypeError(f"{type(self).__name__} must define save()")

    def data_size(self) -> tuple[int, str] | None:
        """``(number of training examples, where they are)`` if known without Ray, checked against
        batch × workers before Ray starts; default: None (not known)."""
        return None

    def setup(self, device) -> None:
        """Load frozen helpers (e.g. a trained VAE) on a worker before training; default: nothing."""

    def init_model(self, model, device) -> None:
        """Fill a fresh model before step 0 (e.g. from a previous stage); default: keep its init."""

    def trainable_parameters(self, model):
        """Parameters the optimizer updates; default: all."""
        return [p for p in model.parameters() if p.requires_grad]

    def visualize(self, model, out: Path) -> list[Path]:
        """Pictures of the trained model for MLflow (files written under ``out``); default: none."""
        return []


def _flatten(prefix: str, data: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so tuples and lists compare equal after a checkpoint is read back."""
    return json.loads(json.dumps(data, default=str))


CHECKPOINT_FILES = ("model.safetensors", "ema.safetensors", "optimizer.pt", "lr_scheduler.pt", STATE_FILE)


def _complete(folder: Path) -> bool:
    """Every file of a checkpoint is there and its safetensors are whole (a kill can cut an upload short)."""
    from gid.datasets.validate import safetensors_file

    if not all((folder / name).is_file() for name in CHECKPOINT_FILES):
        return False
    try:
        for name in CHECKPOINT_FILES[:2]:
            safetensors_file(folder / name, "checkpoint")
        json.loads((folder / STATE_FILE).read_text())["step"]
    except (ValueError, KeyError):
        return False
    return True


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The complete checkpoint folder with the highest step under a Ray Train run folder, or None.

    Read from disk, not from Ray Train's registry: a worker killed right after a checkpoint was written
    can take its report with it before the controller registers it, and Ray Train would then restart
    from an older checkpoint (and redo steps whose metrics MLflow already has).
    """
    run_dir = Path(run_dir)
    best, best_step = None, -1
    for state_path in run_dir.glob(f"checkpoint_*/{STATE_FILE}"):
        if not _complete(state_path.parent):
            continue
        step = json.loads(state_path.read_text())["step"]
        if step > best_step:
            best, best_step = state_path.parent, step
    return best


def check_compatible(checkpoint: Path, task_config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's training state; ValueError if it was written for another model config."""
    state = json.loads((Path(checkpoint) / STATE_FILE).read_text())
    expected = _jsonable(task_config)
    if state["task_config"] != expected:
        diff = sorted(k for k in set(expected) | set(state["task_config"])
                      if expected.get(k) != state["task_config"].get(k))
        raise ValueError(
            f"{checkpoint}: checkpoint was written by another model config (differs in {', '.join(diff)}); "
            "train into a new --out folder, or use the same config to resume")
    return state


def _all_finite(tensors) -> bool:
    import torch

    return all(bool(torch.isfinite(t).all()) for t in tensors)


class _EMA:
    """Exponential moving average of a model's floating-point state (weights and buffers)."""

    def __init__(self, model, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model, step: int) -> None:
        import torch

        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for key, value in model.state_dict().items():
                if value.is_floating_point():
                    self.shadow[key].mul_(d).add_(value.detach(), alpha=1 - d)
                else:
                    self.shadow[key].copy_(value)


def _memory_batches(shard, batch_size: int, device, seed: int, num_workers: int, shuffle: bool = True):
    """Endless batches of ``batch_size`` rows from a worker's whole shard, read once into tensors.

    With ``shuffle`` every epoch is a new permutation of the rows, else the shard's order (as
    streaming with ``shuffle_buffer=0``); the last incomplete batch is dropped, as when streaming.
    """
    import torch

    parts = list(shard.iter_torch_batches(batch_size=1024, device="cpu"))
    rows = sum(len(next(iter(p.values()))) for p in parts)
    if rows < batch_size:
        raise ValueError(f"each of the {num_workers} workers got fewer clips than --batch-size "
                         f"{batch_size}; use a smaller batch, fewer workers or more data")
    data = {key: torch.cat([p[key] for p in parts]).to(device) for key in parts[0]}
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(rows, generator=generator) if shuffle else torch.arange(rows)
        for start in range(0, rows - batch_size + 1, batch_size):
            pick = order[start:start + batch_size].to(device)
            yield {key: value[pick] for key, value in data.items()}


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _save_checkpoint(path: Path, model, ema: _EMA, optimizer, lr_scheduler, state: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save_file

    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    shadow = {k: v.contiguous().cpu() for k, v in ema.shadow.items()}
    if not (_all_finite(weights.values()) and _all_finite(shadow.values())):
        raise RuntimeError("refusing to checkpoint non-finite weights (a NaN step got through)")
    save_file(weights, str(path / "model.safetensors"))
    save_file(shadow, str(path / "ema.safetensors"))
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(lr_scheduler.state_dict(), path / "lr_scheduler.pt")
    (path / STATE_FILE).write_text(json.dumps(state, indent=1))


def load_weights(checkpoint: str | Path, model, ema: bool = True):
    """Load a checkpoint's EMA (default) or raw weights into ``model``; returns the model."""
    from safetensors.torch import load_file

    name = "ema.safetensors" if ema else "model.safetensors"
    model.load_state_dict(load_file(str(Path(checkpoint) / name)))
    return model


def _mlflow_experiment(uri: str, task_name: str, out: Path) -> str:
    import mlflow

    mlflow.set_tracking_uri(uri)
    name = f"gid-{task_name}"
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=(out / "mlartifacts" / task_name).as_uri())


def _any_rank(flag: bool, device) -> bool:
    """True on every worker if ``flag`` is True on any (a no-op with one worker)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def _train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker; a user error ends the run without a retry (module docstring)."""
    try:
        _train_steps(loop_config)
    except USER_ERRORS as err:
        # Returning (not raising) keeps FailureConfig from restarting the workers for the same error.
        Path(loop_config["user_error_file"]).write_text(f"{err}")


def _train_steps(loop_config: dict[str, Any]) -> None:
    import mlflow
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist
    from diffusers.optimization import get_scheduler
    from ray.experimental.tqdm_ray import tqdm

    task: TrainingTask = loop_config["task"]
    cfg: TrainConfig = loop_config["train"]
    rank = ray.train.get_context().get_world_rank()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed * 1000 + rank)
    if cfg.threads_per_worker:
        torch.set_num_threads(cfg.threads_per_worker)
    task.setup(device)
    model = task.build_model().to(device)
    state = {"step": 0, "nan_steps": 0, "mlflow_run_id": None, "task_config": _jsonable(task.config_dict())}
    checkpoint = latest_checkpoint(loop_config["run_dir"])  # on disk: see latest_checkpoint
    if checkpoint is None:
        task.init_model(model, device)
    ema = _EMA(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(task.trainable_parameters(model), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    lr_scheduler = get_scheduler("constant_with_warmup" if cfg.lr_schedule == "constant" else cfg.lr_schedule,
                                 optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.max_steps)
    if checkpoint is not None:
        from safetensors.torch import load_file

        folder = str(checkpoint)
        state = check_compatible(checkpoint, state["task_config"])
        model.load_state_dict(load_file(os.path.join(folder, "model.safetensors")))
        ema.shadow = {k: v.to(device) for k, v in load_file(os.path.join(folder, "ema.safetensors")).items()}
        optimizer.load_state_dict(torch.load(os.path.join(folder, "optimizer.pt"), map_location=device, weights_only=True))
        lr_scheduler.load_state_dict(torch.load(os.path.join(folder, "lr_scheduler.pt"), weights_only=True))
    start_step = state["step"]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model = ray.train.torch.prepare_model(model)
    autocast = cfg.use_gpu and cfg.mixed_precision and device.type == "cuda"

    if rank == 0:
        mlflow.set_tracking_uri(loop_config["mlflow_uri"])
        run = mlflow.start_run(run_id=state["mlflow_run_id"], experiment_id=loop_config["experiment_id"],
                               run_name=None if state["mlflow_run_id"] else task.name)
        if state["mlflow_run_id"] is None:
            mlflow.log_params({**_flatten("model.", task.config_dict()), **_flatten("train.", asdict(cfg))})
        state["mlflow_run_id"] = run.info.run_id

    def batches():
        shard = ray.train.get_dataset_shard("train")
        if loop_config["in_memory"]:
            yield from _memory_batches(shard, cfg.batch_size, device, cfg.seed * 1000 + rank, cfg.num_workers,
                                       shuffle=cfg.shuffle_buffer > 0)
            return
        while True:
            count = 0
            for batch in shard.iter_torch_batches(batch_size=cfg.batch_size, drop_last=True, device=device,
                                                  local_shuffle_buffer_size=cfg.shuffle_buffer or None):
                count += 1
                yield batch
            if count == 0:
                raise ValueError(f"each of the {cfg.num_workers} workers got fewer clips than --batch-size "
                                 f"{cfg.batch_size}; use a smaller batch, fewer workers or more data")

    progress = tqdm(total=cfg.max_steps, desc=f"train {task.name}") if rank == 0 else None
    if progress is not None:
        progress.update(start_step)
    logs: dict[str, float] = {}
    # Metrics reach MLflow only once their steps are in a checkpoint: a restart redoes the steps after
    # the last checkpoint, and logging those twice would duplicate them in the run's history.
    unlogged: list[tuple[dict[str, float], int]] = []
    consecutive_bad, step, tic, cpu_start = 0, start_step, time.perf_counter(), time.process_time()
    data = batches()
    while step < cfg.max_steps:
        model.train()
        failed = None
        try:
            batch = next(data)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                loss, parts = task.loss(model, batch, step)
        except USER_ERRORS as err:
            failed = err
        # All workers learn of a user error before backward's all-reduce, so none waits for one that stopped.
        if _any_rank(failed is not None, device):
            if failed is not None:
                raise failed
            return
        optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            finite = bool(torch.isfinite(grad_norm))
        flag = torch.tensor([1.0 if finite else 0.0], device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        step += 1
        lr = lr_scheduler.get_last_lr()[0]
        if flag.item() > 0:
            optimizer.step()
            ema.update(_unwrap(model), step)
            consecutive_bad = 0
            for key, value in {"loss": float(loss.detach()), "lr": lr, **parts}.items():
                logs[key] = logs.get(key, 0.0) + value
            logs["_n"] = logs.get("_n", 0) + 1
        else:
            optimizer.zero_grad(set_to_none=True)
            state["nan_steps"] += 1
            consecutive_bad += 1
            if rank == 0:
                print(f"gid: step {step}: non-finite loss or gradient, step skipped "
                      f"({state['nan_steps']} so far)", flush=True)
            if consecutive_bad >= cfg.max_nan_steps:
                raise ValueError(f"{consecutive_bad} steps in a row had a non-finite loss or gradient; "
                                 "check the data for NaN/inf or lower --learning-rate")
        lr_scheduler.step()  # on skipped steps too: the schedule follows the step count
        if progress is not None:
            progress.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            n = max(logs.pop("_n", 0), 1)
            metrics = {k: v / n for k, v in logs.items()}
            metrics.update(nan_steps=state["nan_steps"], steps_per_s=cfg.log_every / (time.perf_counter() - tic))
            if rank == 0:
                unlogged.append((metrics, step))
            logs, tic = {}, time.perf_counter()
        else:
            metrics = None
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            state["step"] = step
            report = {"step": step, "start_step": start_step, "nan_steps": state["nan_steps"],
                      "worker_cpu_s": time.process_time() - cpu_start, **(metrics or {})}
            if rank == 0:
                with tempfile.TemporaryDirectory() as folder:
                    _save_checkpoint(Path(folder), _unwrap(model), ema, optimizer, lr_scheduler, state)
                    ray.train.report(report, checkpoint=ray.train.Checkpoint.from_directory(folder))
                for logged, at in unlogged:
                    mlflow.log_metrics(logged, step=at)
                unlogged.clear()
            else:
                ray.train.report(report)
    if progress is not None:
        progress.close()
    if rank == 0:
        mlflow.end_run()


@dataclass
class FitResult:
    """What :func:`fit` produced: the final model folder, the last checkpoint and its metrics."""

    model_dir: Path
    checkpoint: Path
    metrics: dict[str, Any]
    mlflow_run_id: str


def check_data_size(task: TrainingTask, cfg: TrainConfig) -> None:
    """ValueError if each of ``num_workers`` workers would get fewer examples than ``batch_size``."""
    size = task.data_size()
    if size is None:
        return
    count, where = size
    per_worker = count // cfg.num_workers
    if per_worker < cfg.batch_size:
        hint = (f"use --batch-size {per_worker} or less" if per_worker >= 1 else "use fewer --num-workers")
        raise ValueError(f"{count} training examples give each of the {cfg.num_workers} worker(s) {per_worker}, "
                         f"fewer than --batch-size {cfg.batch_size} ({where}); {hint}, or give more data")


def _expected_output_bytes(task: TrainingTask) -> int:
    """Disk a run needs: 2 kept checkpoints of weights, EMA and AdamW's 2 moments, plus the final model."""
    params = sum(p.numel() * p.element_size() for p in task.build_model().parameters())
    return params * (2 * 4 + 1)


def fit(task: TrainingTask, cfg: TrainConfig, out: str | Path) -> FitResult:
    """Train ``task`` with Ray Train into ``out`` (checkpoints in ``out/checkpoints/<task.name>``).

    Reuses a running Ray session (or starts a local one). Running it again with the same ``out``
    resumes from the last checkpoint; ``max_steps`` counts from the start of the first run.
    """
    import mlflow
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from gid.datasets.validate import free_disk, output_dir
    from gid.stages.ray_runtime import init_ray

    out = output_dir(Path(out).resolve(), "--out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot write to {out}: {err.strerror or err}; choose a writable --out") from None
    storage = out / "checkpoints"
    previous = latest_checkpoint(storage / task.name)
    if previous is not None:
        check_compatible(previous, task.config_dict())
    check_data_size(task, cfg)
    free_disk(out, _expected_output_bytes(task), "the checkpoints and the trained model", "--out")
    user_error_file = storage / task.name / USER_ERROR_FILE
    user_error_file.parent.mkdir(parents=True, exist_ok=True)
    user_error_file.unlink(missing_ok=True)
    # Joins $RAY_ADDRESS if set, else a local Ray with disk spilling; reuses a running session. Before
    # task.dataset(): Ray Data's readers would otherwise start a default Ray without these settings.
    init_ray(log_to_driver=True)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # the workers show one bar: train steps
    dataset = task.dataset()
    in_memory = False
    if cfg.cache_data:
        dataset = dataset.materialize()
        size = dataset.size_bytes()
        in_memory = size is not None and size / cfg.num_workers <= cfg.in_memory_mib * 2 ** 20
    uri = cfg.mlflow_uri or f"sqlite:///{out / 'mlflow.db'}"
    experiment_id = _mlflow_experiment(uri, task.name, out)
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"task": task, "train": cfg, "mlflow_uri": uri, "experiment_id": experiment_id,
                           "in_memory": in_memory,
                           "user_error_file": str(user_error_file), "run_dir": str(storage / task.name)},
        torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu),
        run_config=ray.train.RunConfig(
            name=task.name, storage_path=str(storage),
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        datasets={"train": dataset},
    )
    result = trainer.fit()
    if user_error_file.is_file():
        message = user_error_file.read_text()
        user_error_file.unlink()
        raise ValueError(message)
    last = latest_checkpoint(storage / task.name)
    if last is None:
        raise RuntimeError(f"training of {task.name} finished without a checkpoint in {storage}")
    state = json.loads((last / STATE_FILE).read_text())
    model = load_weights(last, task.build_model())
    model_dir = task.save(model, out)
    # A client bound to the run, not the fluent API: a caller's mlflow.set_experiment() (another stage
    # run earlier in the same process) must not make resuming this run fail.
    client = mlflow.MlflowClient(tracking_uri=uri)
    with tempfile.TemporaryDirectory() as folder:
        for path in task.visualize(model, Path(folder)):
            client.log_artifact(state["mlflow_run_id"], str(path), artifact_path="samples")
    client.log_artifacts(state["mlflow_run_id"], str(model_dir), artifact_path=f"model/{model_dir.name}")
    metrics = {**(result.metrics or {}), "step": state["step"], "nan_steps": state["nan_steps"]}
    return FitResult(model_dir=model_dir, checkpoint=last, metrics=metrics, mlflow_run_id=state["mlflow_run_id"])
