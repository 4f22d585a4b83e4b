"""Renderer training (§5) as a training task (gid.pipeline.training_task) for gid.stages.training.fit.

Data: pairs ``(I_0, I_t, F_t)`` from a clip table with target frames (`gid preprocess
--target-frames N`, or :func:`gid.datasets.render_pairs.write_synthetic_render_clips` for exact
synthetic motion), read by :func:`gid.datasets.render_pairs.read_render_pairs`. Model:
:class:`gid.pipeline.frame_renderer.FrameRenderer`. Loss: :class:`gid.pipeline.frame_renderer_losses.RenderLoss`.
The final EMA weights go to ``OUT/renderer/`` (save_pretrained, safetensors).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from gid.pipeline.frame_renderer_losses import RenderLossConfig
from gid.pipeline.training_task import TrainingTask


def _frames(batch_images):
    """``(B, H, W, 3)`` uint8 tensor → ``(B, 3, H, W)`` float in [0, 1]."""
    return batch_images.permute(0, 3, 1, 2).float() / 255.0


class RendererTask(TrainingTask):
    """Trains a :class:`FrameRenderer` preset on the target-frame pairs of ``data_dir``."""

    name = "renderer"

    def __init__(self, data_dir: str | Path, preset: str = "tiny", loss: RenderLossConfig | None = None,
                 max_pairs: int | None = None) -> None:
        from gid.pipeline.frame_renderer import PRESETS

        if preset not in PRESETS:
            raise ValueError(f"--config must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.data_dir, self.preset, self.max_pairs = Path(data_dir), preset, max_pairs
        self.loss_config = loss or RenderLossConfig()
        if self.loss_config.vgg_path and not Path(self.loss_config.vgg_path).exists():
            raise FileNotFoundError(f"{self.loss_config.vgg_path}: no VGG-16 weights here (--vgg); "
                                    "leave --vgg out to train with the weight-free loss")
        self._loss = None
        self._preview: dict[str, np.ndarray] | None = None

    def data_size(self) -> tuple[int, str]:
        """Pairs = target frames over all clips (counted from the ``target_t`` column alone)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from gid.datasets.clip_table import shard_paths
        from gid.datasets.render_pairs import TARGET_COLUMNS

        paths = shard_paths(self.data_dir)
        missing = [c for c in TARGET_COLUMNS if c not in pq.read_schema(paths[0]).names]
        if missing:
            raise ValueError(f"the clip table has no {', '.join(missing)} columns (--data {self.data_dir}); "
                             "renderer training needs target frames: rerun `gid preprocess ... --target-frames 8`")
        pairs = sum(int(pc.sum(pc.list_value_length(pq.read_table(p, columns=["target_t"]).column(0))).as_py() or 0)
                    for p in paths)
        return (min(pairs, self.max_pairs) if self.max_pairs else pairs), f"--data {self.data_dir}"

    def config_dict(self) -> dict:
        from gid.pipeline.frame_renderer import PRESETS

        return {"preset": self.preset, **PRESETS[self.preset], "loss": asdict(self.loss_config)}

    def dataset(self):
        import ray.data

        from gid.datasets.render_pairs import read_render_pairs

        pairs = read_render_pairs(self.data_dir, self.max_pairs)
        self._preview = {k: v[:: max(1, len(v) // 4)][:4] for k, v in pairs.items()}
        rows = [{k: v[i] for k, v in pairs.items()} for i in range(len(pairs["flow"]))]
        return ray.data.from_items(rows)

    def build_model(self):
        from gid.pipeline.frame_renderer import FrameRenderer

        return FrameRenderer.from_preset(self.preset)

    def setup(self, device) -> None:
        from gid.pipeline.frame_renderer_losses import RenderLoss

        self._loss = RenderLoss(self.loss_config).to(device)

    def loss(self, model, batch: dict, step: int):
        source, target = _frames(batch["source"]), _frames(batch["target"])
        pred = model(source, batch["flow"].float(), batch["metric"].float())
        return self._loss(pred, target, source)

    def save(self, model, out: Path) -> Path:
        from gid.pipeline.motion_pipeline import write_bundle_config

        folder = Path(out) / "renderer"
        model.save_pretrained(folder)
        write_bundle_config(out, ("renderer",))
        return folder

    def visualize(self, model, out: Path) -> list[Path]:
        """``renderer.png``: rows of source | splat baseline | renderer | real frame for a few pairs."""
        import torch
        from PIL import Image

        from gid.pipeline.warping import splat_frames
        from gid.pipeline.visualize import contact_sheet

        if self._preview is None:
            return []
        p = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self._preview.items()}
        source, target = _frames(p["source"]), _frames(p["target"])
        model.eval()
        with torch.no_grad():
            base = splat_frames(source, p["flow"], p["metric"])[0]
            pred = model(source, p["flow"], p["metric"])
        tiles = []
        for i in range(len(source)):
            for image in (source[i], base[i], pred[i], target[i]):
                tiles.append((image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
        path = Path(out) / "renderer.png"
        Image.fromarray(contact_sheet(tiles, columns=4)).save(path)
        return [path]
