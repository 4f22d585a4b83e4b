"""One worker's optimisation, without Ray: the training configuration and the step.

- AdamW, a learning-rate schedule with linear warm-up (diffusers' ``get_scheduler``), gradient
  clipping, bf16 autocast on GPU, and an EMA copy of the weights
  (``θ_ema ← d·θ_ema + (1−d)·θ`` with ``d = min(ema_decay, (1+step)/(10+step))``);
- a step whose loss or gradient is not finite is skipped on every worker (no weight update) and
  counted; ``max_nan_steps`` consecutive bad steps stop the run with a clear error;
- a user error (:data:`USER_ERRORS`) in one worker's loss is known to every worker before the next
  collective, so none waits in an all-reduce for one that stopped.

With torch.distributed initialised (Ray Train's workers, gid.stages.training) the flags are
all-reduced; without it everything is local.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from gid.pipeline.training_checkpoints import restore_checkpoint, save_checkpoint
from gid.pipeline.training_task import TrainingTask

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


class EMA:
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


def any_rank(flag: bool, device) -> bool:
    """True on every worker if ``flag`` is True on any (a no-op with one worker)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


class TrainingLoop:
    """The optimisation state of one worker: the model, its EMA, AdamW and the learning-rate schedule.

    Build it on a fresh model (after ``task.init_model``), :meth:`restore` a checkpoint if resuming,
    wrap :attr:`model` for data parallelism if needed, then call :meth:`step` once per step.
    ``verbose`` prints skipped steps (one worker of many should).
    """

    def __init__(self, task: TrainingTask, model, cfg: TrainConfig, device, verbose: bool = True) -> None:
        import torch
        from diffusers.optimization import get_scheduler

        self.task, self.model, self.cfg, self.device, self.verbose = task, model, cfg, device, verbose
        self.ema = EMA(model, cfg.ema_decay)
        self.optimizer = torch.optim.AdamW(task.trainable_parameters(model), lr=cfg.learning_rate,
                                           weight_decay=cfg.weight_decay)
        self.lr_scheduler = get_scheduler("constant_with_warmup" if cfg.lr_schedule == "constant" else cfg.lr_schedule,
                                          self.optimizer, num_warmup_steps=cfg.warmup_steps,
                                          num_training_steps=cfg.max_steps)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.autocast = cfg.use_gpu and cfg.mixed_precision and device.type == "cuda"
        self.nan_steps, self.consecutive_bad = 0, 0
        self.logs: dict[str, float] = {}

    def restore(self, checkpoint: Path, nan_steps: int) -> None:
        """Continue from a checkpoint (gid.pipeline.training_checkpoints) with its count of skipped steps."""
        self.ema.shadow = restore_checkpoint(checkpoint, self.model, self.optimizer, self.lr_scheduler, self.device)
        self.nan_steps = nan_steps

    def save(self, folder: Path, state: dict[str, Any]) -> None:
        """Write a checkpoint of the current weights, EMA and optimizer into ``folder``."""
        save_checkpoint(folder, unwrap(self.model), self.ema.shadow, self.optimizer, self.lr_scheduler, state)

    def step(self, data: Iterator[dict], step: int) -> bool:
        """Step number ``step + 1`` on the next batch of ``data`` (a dict of tensors on the device).

        Returns False when another worker's batch or loss raised a user error: every worker stops
        there, and the one where it happened raises it.
        """
        import torch
        import torch.distributed as dist

        cfg, model = self.cfg, self.model
        model.train()
        failed = None
        try:
            batch = next(data)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                loss, parts = self.task.loss(model, batch, step)
        except USER_ERRORS as err:
            failed = err
        # All workers learn of a user error before backward's all-reduce, so none waits for one that stopped.
        if any_rank(failed is not None, self.device):
            if failed is not None:
                raise failed
            return False
        self.optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            finite = bool(torch.isfinite(grad_norm))
        flag = torch.tensor([1.0 if finite else 0.0], device=self.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        step += 1
        lr = self.lr_scheduler.get_last_lr()[0]
        if flag.item() > 0:
            self.optimizer.step()
            self.ema.update(unwrap(model), step)
            self.consecutive_bad = 0
            for key, value in {"loss": float(loss.detach()), "lr": lr, **parts}.items():
                self.logs[key] = self.logs.get(key, 0.0) + value
            self.logs["_n"] = self.logs.get("_n", 0) + 1
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.nan_steps += 1
            self.consecutive_bad += 1
            if self.verbose:
                print(f"gid: step {step}: non-finite loss or gradient, step skipped "
                      f"({self.nan_steps} so far)", flush=True)
            if self.consecutive_bad >= cfg.max_nan_steps:
                raise ValueError(f"{self.consecutive_bad} steps in a row had a non-finite loss or gradient; "
                                 "check the data for NaN/inf or lower --learning-rate")
        self.lr_scheduler.step()  # on skipped steps too: the schedule follows the step count
        return True

    def take_metrics(self) -> dict[str, float]:
        """The mean loss, learning rate and loss parts of the good steps since the last call."""
        n = max(self.logs.pop("_n", 0), 1)
        metrics = {k: v / n for k, v in self.logs.items()}
        self.logs = {}
        return metrics
