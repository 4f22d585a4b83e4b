"""`gid train renderer`: train the frame renderer (§5) into a bundle folder, on the shared machinery."""
from __future__ import annotations

from pathlib import Path

import typer

from gid.stages.cmd_train import (
    CHECKPOINT_EVERY, LOG_EVERY, LR_SCHEDULE, MAX_FAILURES, MAX_STEPS, MLFLOW_URI, NUM_WORKERS, OUT, SEED,
    THREADS_PER_WORKER, USE_GPU, WARMUP_STEPS, _report, train_app, train_config,
)


def register(app: typer.Typer) -> None:
    @train_app.command("renderer")
    def train_renderer(
        data: Path = typer.Option(..., "--data", help="Clip table with target frames (`gid preprocess "
                                                      "--target-frames N`): pairs (I_0, I_t, F_t)."),
        out: Path = OUT,
        config: str = typer.Option("tiny", "--config", help="Renderer preset: tiny (CPU) or paper "
                                                            "(ResNet-34 block counts, GPUs)."),
        vgg: Path = typer.Option(None, "--vgg", help="Local VGG-16 weights (torchvision state dict, .pth or "
                                                     ".safetensors) for the perceptual loss; without them the "
                                                     "weight-free L1 + SSIM + gradient loss is used."),
        focus: float = typer.Option(9.0, "--focus", help="Extra loss weight on pixels that change between I_0 and "
                                                         "I_t (moved or disoccluded)."),
        max_pairs: int = typer.Option(None, "--max-pairs", help="Use at most this many pairs (default: all)."),
        num_workers: int = NUM_WORKERS, use_gpu: bool = USE_GPU, max_steps: int = MAX_STEPS,
        batch_size: int = typer.Option(4, "--batch-size", help="Pairs per worker and step."),
        learning_rate: float = typer.Option(5e-4, "--learning-rate", help="AdamW learning rate."),
        checkpoint_every: int = CHECKPOINT_EVERY, log_every: int = LOG_EVERY, max_failures: int = MAX_FAILURES,
        mlflow_uri: str = MLFLOW_URI, seed: int = SEED, threads_per_worker: int = THREADS_PER_WORKER,
        lr_schedule: str = LR_SCHEDULE, warmup_steps: int = WARMUP_STEPS,
    ) -> None:
        """Train the frame renderer (§5): writes OUT/renderer (used by `gid animate` and `gid render`)."""
        from gid.pipeline.frame_renderer_losses import RenderLossConfig
        from gid.pipeline.renderer_training import RendererTask
        from gid.stages.training import fit

        from gid.datasets.validate import clip_table
        from gid.stages.options import at_least

        clip_table(data)
        at_least("--max-pairs", max_pairs, 1)
        loss = RenderLossConfig(focus=focus, vgg_path=str(vgg) if vgg else None)
        task = RendererTask(data, config, loss, max_pairs=max_pairs)
        cfg = train_config(max_steps, batch_size, learning_rate, checkpoint_every, log_every, num_workers, use_gpu,
                           max_failures, mlflow_uri, seed, threads_per_worker=threads_per_worker,
                           lr_schedule=lr_schedule, warmup_steps=warmup_steps)
        _report(fit(task, cfg, out))
