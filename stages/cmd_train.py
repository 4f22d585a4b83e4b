"""`gid train vae|motion`: train the motion model into a bundle folder (Ray Train + MLflow).

``train_app`` is shared: other modules add their models to it (`gid train renderer`), reusing the
option definitions below and :func:`train_config`.
"""
from __future__ import annotations

from pathlib import Path

import typer

from gid.pipeline.motion_training import DEFAULT_MOVING_WEIGHT

train_app = typer.Typer(help="Train the models of a bundle folder with Ray Train (tracked in MLflow).",
                        no_args_is_help=True)

DATA = typer.Option(..., "--data", help="Clip table folder (clips/*.parquet + freq_scales.json) from `gid preprocess`.")
OUT = typer.Option(..., "--out", help="Model bundle folder; the trained model goes into a sub-folder, "
                                      "checkpoints into OUT/checkpoints, MLflow into OUT/mlflow.db.")
CONFIG = typer.Option("tiny", "--config", help="Model size preset: tiny (CPU, minutes) or paper (256x160, GPUs).")
NUM_WORKERS = typer.Option(1, "--num-workers", help="Ray Train workers (data-parallel, one process each).")
THREADS_PER_WORKER = typer.Option(None, "--threads-per-worker",
                                  help="PyTorch threads of each worker (default: one per CPU Ray reserves for it, i.e. 1); "
                                       "e.g. --num-workers 1 --threads-per-worker 2 uses both cores of a 2-core machine.")
USE_GPU = typer.Option(False, "--use-gpu", help="One GPU per worker, nccl, bf16 autocast.")
MAX_STEPS = typer.Option(2000, "--max-steps", help="Optimizer steps in total (a resumed run counts from its start).")
CHECKPOINT_EVERY = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints (resume points).")
LOG_EVERY = typer.Option(20, "--log-every", help="Steps between MLflow loss logs.")
MAX_FAILURES = typer.Option(2, "--max-failures", help="Worker failures Ray Train recovers from (restart from the last checkpoint).")
MLFLOW_URI = typer.Option(None, "--mlflow-uri", help="MLflow tracking URI (default: sqlite file OUT/mlflow.db).")
SEED = typer.Option(0, "--seed", help="Random seed of initialisation and noise.")
LR_SCHEDULE = typer.Option("constant", "--lr-schedule",
                           help="Learning-rate schedule after warm-up: constant, cosine (decays to 0 at --max-steps) "
                                "or linear (likewise).")
WARMUP_STEPS = typer.Option(0, "--warmup-steps", help="Steps of linear learning-rate warm-up from 0.")


# `gid train vae|motion`: None takes the --config preset's measured recipe (gid.pipeline.motion_presets).
RECIPE = "default: the --config preset's recipe"
M_MAX_STEPS = typer.Option(None, "--max-steps", help=f"Optimizer steps in total (a resumed run counts from its start; {RECIPE}).")
M_BATCH_SIZE = typer.Option(None, "--batch-size", help=f"Clips per worker and step ({RECIPE}).")
M_LEARNING_RATE = typer.Option(None, "--learning-rate", help=f"AdamW learning rate ({RECIPE}).")
M_CHECKPOINT_EVERY = typer.Option(None, "--checkpoint-every", help=f"Steps between checkpoints (resume points; {RECIPE}).")
M_EMA_DECAY = typer.Option(None, "--ema-decay", help=f"Decay of the EMA weights that are saved ({RECIPE}).")
M_THREADS_PER_WORKER = typer.Option(None, "--threads-per-worker",
                                    help=f"PyTorch threads of each worker ({RECIPE}, capped at the machine's cores; "
                                         "tiny: 2, one worker with 2 threads being the fastest layout on 2 cores).")


def motion_train_config(config: str, task: str, use_gpu: bool, **options):
    """The TrainConfig of `gid train vae|motion`: the preset's recipe for ``task``, overridden by the flags given."""
    from gid.pipeline.motion_presets import get_preset, train_recipe
    from gid.pipeline.training_loop import TrainConfig

    fields = {"max_steps", "batch_size", "learning_rate", "checkpoint_every", "ema_decay", "threads_per_worker"}
    recipe = train_recipe(get_preset(config), task, use_gpu, **{k: v for k, v in options.items() if k in fields})
    return TrainConfig(use_gpu=use_gpu, **recipe, **{k: v for k, v in options.items() if k not in fields})


def train_config(max_steps: int, batch_size: int, learning_rate: float, checkpoint_every: int, log_every: int,
                 num_workers: int, use_gpu: bool, max_failures: int, mlflow_uri: str | None, seed: int, **options):
    """The TrainConfig of the shared options; ``options`` sets further TrainConfig fields (ema_decay, …)."""
    from gid.pipeline.training_loop import TrainConfig

    return TrainConfig(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                       checkpoint_every=checkpoint_every, log_every=log_every, num_workers=num_workers,
                       use_gpu=use_gpu, max_failures=max_failures, mlflow_uri=mlflow_uri, seed=seed, **options)


# The flags `gid train vae` and `gid train motion` share, passed on to motion_train_config.
TRAINING_FLAGS = ("max_steps", "batch_size", "learning_rate", "checkpoint_every", "ema_decay", "threads_per_worker",
                  "log_every", "num_workers", "max_failures", "mlflow_uri", "seed", "lr_schedule", "warmup_steps")


def _fit_motion(task, config: str, use_gpu: bool, out: Path, flags: dict) -> None:
    """Train ``task`` with the preset's recipe overridden by the command's ``flags`` (its locals), and report."""
    from gid.stages.training import fit

    cfg = motion_train_config(config, task.name, use_gpu, **{name: flags[name] for name in TRAINING_FLAGS})
    _report(fit(task, cfg, out))


def _report(result) -> None:
    metrics = {k: round(v, 5) if isinstance(v, float) else v for k, v in result.metrics.items()}
    typer.echo(f"wrote {result.model_dir} (step {metrics.get('step')}, skipped non-finite steps: "
               f"{metrics.get('nan_steps', 0)}, MLflow run {result.mlflow_run_id})")


@train_app.command("vae")
def train_vae(
    data: Path = DATA, out: Path = OUT, config: str = CONFIG, num_workers: int = NUM_WORKERS,
    use_gpu: bool = USE_GPU, max_steps: int = M_MAX_STEPS, batch_size: int = M_BATCH_SIZE,
    learning_rate: float = M_LEARNING_RATE,
    checkpoint_every: int = M_CHECKPOINT_EVERY, log_every: int = LOG_EVERY, max_failures: int = MAX_FAILURES,
    mlflow_uri: str = MLFLOW_URI, seed: int = SEED, ema_decay: float = M_EMA_DECAY,
    threads_per_worker: int = M_THREADS_PER_WORKER, lr_schedule: str = LR_SCHEDULE, warmup_steps: int = WARMUP_STEPS,
    slices_per_clip: int = typer.Option(4, "--slices-per-clip", help="Random frequency slices of each clip per step."),
    moving_weight: float = typer.Option(
        DEFAULT_MOVING_WEIGHT, "--moving-weight",
        help="Weight the L1 loss towards pixels that move (1 + W on moving, 1 on static, rescaled to mean 1). "
             "0 = the paper's plain L1, which can decode sparse motion as all-zero (docs/motion.md)."),
) -> None:
    """Train the spectral VAE (§4.2): writes OUT/vae and OUT/model_index.json.

    With no step, batch, learning-rate, EMA or thread flags it uses the --config preset's measured recipe
    (tiny: 2 400 steps, 4 clips x 4 slices, lr 2e-3, 2 threads; docs/motion.md)."""
    from gid.pipeline.motion_training import VAETask

    task = VAETask(data, out, config, slices_per_clip=slices_per_clip, moving_weight=moving_weight)
    _fit_motion(task, config, use_gpu, out, locals())


@train_app.command("motion")
def train_motion(
    data: Path = DATA, out: Path = OUT, config: str = CONFIG,
    stage: int = typer.Option(1, "--stage", help="1: U-Net on single frequency slices; 2: add frequency "
                                                 "attention and fine-tune it on whole volumes (needs stage 1 in OUT)."),
    num_workers: int = NUM_WORKERS, use_gpu: bool = USE_GPU, max_steps: int = M_MAX_STEPS,
    batch_size: int = M_BATCH_SIZE, learning_rate: float = M_LEARNING_RATE,
    checkpoint_every: int = M_CHECKPOINT_EVERY, log_every: int = LOG_EVERY,
    max_failures: int = MAX_FAILURES, mlflow_uri: str = MLFLOW_URI, seed: int = SEED, ema_decay: float = M_EMA_DECAY,
    threads_per_worker: int = M_THREADS_PER_WORKER, lr_schedule: str = LR_SCHEDULE, warmup_steps: int = WARMUP_STEPS,
    slices_per_clip: int = typer.Option(4, "--slices-per-clip", help="Stage 1: random frequency slices of each clip per step."),
) -> None:
    """Train the motion U-Net (§4.2) on the VAE in OUT: writes OUT/unet, OUT/scheduler, OUT/model_index.json.

    With no step, batch, learning-rate, EMA or thread flags it uses the --config preset's measured recipe
    (tiny, stage 1: 1 500 steps, 4 clips x 4 slices, lr 1e-3, EMA 0.995, 2 threads; docs/motion.md)."""
    from gid.pipeline.motion_training import MotionTask

    task = MotionTask(data, out, config, stage=stage, slices_per_clip=slices_per_clip)
    _fit_motion(task, config, use_gpu, out, locals())


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
