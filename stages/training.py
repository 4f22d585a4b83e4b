"""Training on Ray Train + MLflow for every model of gid.

A model plugs in as a :class:`gid.pipeline.training_task.TrainingTask` (its data, model, loss and how
to save it); each step is gid.pipeline.training_loop (AdamW, EMA, non-finite steps skipped and
counted in the ``nan_steps`` metric) and each checkpoint gid.pipeline.training_checkpoints. :func:`fit`
runs it on ``num_workers`` Ray Train workers (gloo on CPU, nccl on GPUs) with

- data from a Ray Dataset, decoded once (``materialize``); a worker whose shard fits in
  ``in_memory_mib`` copies it into tensors once and draws shuffled batches from memory, a larger one
  streams it with ``iter_torch_batches`` every epoch;
- a checkpoint every ``checkpoint_every`` steps through ``ray.train.report`` (weights as safetensors,
  optimizer state, step, the task's config; weights are checked finite before every save); Ray
  Train's ``FailureConfig`` restarts failed workers from the last one, and running the same command
  again resumes from it (a checkpoint written by another config is refused);
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
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gid.pipeline.training_checkpoints import STATE_FILE, check_compatible, jsonable, latest_checkpoint, load_weights
from gid.pipeline.training_loop import USER_ERRORS, TrainConfig, TrainingLoop
from gid.pipeline.training_task import TrainingTask

USER_ERROR_FILE = "user_error.txt"  # written by a worker whose run ended on a user error, read by fit()


def _flatten(prefix: str, data: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(f"{prefix}{key}.", value))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


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


def _mlflow_experiment(uri: str, task_name: str, out: Path) -> str:
    import mlflow

    mlflow.set_tracking_uri(uri)
    name = f"gid-{task_name}"
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=(out / "mlartifacts" / task_name).as_uri())


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
    state = {"step": 0, "nan_steps": 0, "mlflow_run_id": None, "task_config": jsonable(task.config_dict())}
    checkpoint = latest_checkpoint(loop_config["run_dir"])  # on disk: see latest_checkpoint
    if checkpoint is None:
        task.init_model(model, device)
    loop = TrainingLoop(task, model, cfg, device, verbose=rank == 0)
    if checkpoint is not None:
        state = check_compatible(checkpoint, state["task_config"])
        loop.restore(checkpoint, state["nan_steps"])
    start_step = state["step"]
    loop.model = ray.train.torch.prepare_model(model)

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
    # Metrics reach MLflow only once their steps are in a checkpoint: a restart redoes the steps after
    # the last checkpoint, and logging those twice would duplicate them in the run's history.
    unlogged: list[tuple[dict[str, float], int]] = []
    step, tic, cpu_start = start_step, time.perf_counter(), time.process_time()
    data = batches()
    while step < cfg.max_steps:
        if not loop.step(data, step):
            return
        step += 1
        state["nan_steps"] = loop.nan_steps
        if progress is not None:
            progress.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            metrics = loop.take_metrics()
            metrics.update(nan_steps=state["nan_steps"], steps_per_s=cfg.log_every / (time.perf_counter() - tic))
            if rank == 0:
                unlogged.append((metrics, step))
            tic = time.perf_counter()
        else:
            metrics = None
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            state["step"] = step
            report = {"step": step, "start_step": start_step, "nan_steps": state["nan_steps"],
                      "worker_cpu_s": time.process_time() - cpu_start, **(metrics or {})}
            if rank == 0:
                with tempfile.TemporaryDirectory() as folder:
                    loop.save(Path(folder), state)
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
