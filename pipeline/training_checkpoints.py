"""Training checkpoints on disk: weights and EMA weights as safetensors, optimizer and schedule state,
and ``train_state.json`` (step, non-finite steps, MLflow run, the task's config).

A checkpoint is only written with finite weights, only read when complete (a kill can cut a write
short), and only resumed by the same model config.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "train_state.json"
CHECKPOINT_FILES = ("model.safetensors", "ema.safetensors", "optimizer.pt", "lr_scheduler.pt", STATE_FILE)


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so tuples and lists compare equal after a checkpoint is read back."""
    return json.loads(json.dumps(data, default=str))


def all_finite(tensors) -> bool:
    import torch

    return all(bool(torch.isfinite(t).all()) for t in tensors)


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
    expected = jsonable(task_config)
    if state["task_config"] != expected:
        diff = sorted(k for k in set(expected) | set(state["task_config"])
                      if expected.get(k) != state["task_config"].get(k))
        raise ValueError(
            f"{checkpoint}: checkpoint was written by another model config (differs in {', '.join(diff)}); "
            "train into a new --out folder, or use the same config to resume")
    return state


def save_checkpoint(path: Path, model, ema_shadow: dict, optimizer, lr_scheduler, state: dict[str, Any]) -> None:
    """Write a checkpoint into the folder ``path``; RuntimeError (and nothing written) for non-finite weights."""
    import torch
    from safetensors.torch import save_file

    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    shadow = {k: v.contiguous().cpu() for k, v in ema_shadow.items()}
    if not (all_finite(weights.values()) and all_finite(shadow.values())):
        raise RuntimeError("refusing to checkpoint non-finite weights (a NaN step got through)")
    save_file(weights, str(path / "model.safetensors"))
    save_file(shadow, str(path / "ema.safetensors"))
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(lr_scheduler.state_dict(), path / "lr_scheduler.pt")
    (path / STATE_FILE).write_text(json.dumps(state, indent=1))


def restore_checkpoint(checkpoint: Path, model, optimizer, lr_scheduler, device) -> dict:
    """Load a checkpoint's weights, optimizer and schedule state in place; returns its EMA weights
    (on ``device``)."""
    import torch
    from safetensors.torch import load_file

    folder = str(checkpoint)
    model.load_state_dict(load_file(os.path.join(folder, "model.safetensors")))
    shadow = {k: v.to(device) for k, v in load_file(os.path.join(folder, "ema.safetensors")).items()}
    optimizer.load_state_dict(torch.load(os.path.join(folder, "optimizer.pt"), map_location=device, weights_only=True))
    lr_scheduler.load_state_dict(torch.load(os.path.join(folder, "lr_scheduler.pt"), weights_only=True))
    return shadow


def load_weights(checkpoint: str | Path, model, ema: bool = True):
    """Load a checkpoint's EMA (default) or raw weights into ``model``; returns the model."""
    from safetensors.torch import load_file

    name = "ema.safetensors" if ema else "model.safetensors"
    model.load_state_dict(load_file(str(Path(checkpoint) / name)))
    return model
