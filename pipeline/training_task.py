"""The training task: what the training loop (gid.pipeline.training_loop) and Ray Train
(gid.stages.training.fit) need to know about one model — its data, model, loss and how to save it."""
from __future__ import annotations

from pathlib import Path
from typing import Any


class TrainingTask:
    """What training needs to know about one model. Subclasses are plain picklable objects.

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
