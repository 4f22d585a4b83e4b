"""Training losses of the renderer (§5): L1, plus VGG perceptual loss or a weight-free substitute.

The paper trains its renderer with a VGG perceptual loss. gid never downloads weights, so:

- with a local VGG-16 checkpoint (``vgg_path``), the loss is ``l1·L1 + perceptual·Σ_l mean|φ_l(x) − φ_l(y)|``
  over the activations φ after relu1_2, relu2_2, relu3_3 and relu4_3 of ImageNet-normalised frames
  (Johnson et al. 2016). The checkpoint is torchvision's ``vgg16`` state dict (``features.N.*``
  names; ``classifier.*`` is ignored) as ``.pth`` or ``.safetensors``, or a ``save_pretrained``
  folder of :class:`VGG16Features`;
- without one, the weight-free substitute is ``l1·L1 + ssim·(1 − SSIM) + gradient·G`` with the
  multi-scale gradient loss ``G = Σ_s mean|∇(x − y)↓2^s|`` (s = 0…3), which rewards the sharp
  edges and textures that L1 alone averages away.

Both weight every pixel by ``1 + focus·m``, ``m`` = 1 where the target differs from the source frame
(moved or disoccluded pixels): most pixels of a frame are static and already exact after splatting,
so without the focus they dominate the mean and leave the decoder little gradient where it can help.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from gid.pipeline.image_quality import ssim_map

VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
PERCEPTUAL_TAPS = (3, 8, 15, 22)  # indices of relu1_2, relu2_2, relu3_3, relu4_3 in ``features``
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Features(ModelMixin, ConfigMixin):
    """The convolutional part of VGG-16 with torchvision's layer indices (``features.0`` … ``features.29``)."""

    @register_to_config
    def __init__(self, num_layers: int = PERCEPTUAL_TAPS[-1] + 1) -> None:
        super().__init__()
        layers, channels = [], 3
        for spec in VGG16_LAYERS:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, spec, 3, padding=1), nn.ReLU(inplace=False)]
                channels = spec
        self.features = nn.Sequential(*layers[:num_layers])
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` in [0, 1] → activations at :data:`PERCEPTUAL_TAPS`."""
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x, taps = (x - mean) / std, []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in PERCEPTUAL_TAPS:
                taps.append(x)
        return taps


def load_vgg16(path: str | Path, num_layers: int = PERCEPTUAL_TAPS[-1] + 1) -> VGG16Features:
    """VGG-16 features (the first ``num_layers`` of ``features``) from a local ``.pth``/``.safetensors``
    state dict or a save_pretrained folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no VGG-16 weights here; give a local torchvision vgg16 checkpoint "
                                "(.pth or .safetensors) or leave --vgg out to use the weight-free loss")
    if path.is_dir():
        return VGG16Features.from_pretrained(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model = VGG16Features(num_layers=num_layers)
    wanted = set(model.state_dict())
    state = {k: v for k, v in state.items() if k in wanted}
    missing = wanted - set(state)
    if missing:
        raise ValueError(f"{path}: not a VGG-16 checkpoint (missing {', '.join(sorted(missing)[:3])} …); "
                         "it needs torchvision's features.N.weight/bias names")
    model.load_state_dict(state)
    return model


def gradient_loss(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient L1 of ``x − y`` (``(B, C, H, W)``), pixel-weighted by ``weight (B, 1, H, W)``."""
    diff, total = x - y, x.new_zeros(())
    for _ in range(scales):
        dx = (diff[..., :, 1:] - diff[..., :, :-1]).abs() * weight[..., :, 1:]
        dy = (diff[..., 1:, :] - diff[..., :-1, :]).abs() * weight[..., 1:, :]
        total = total + dx.mean() + dy.mean()
        if min(diff.shape[-2:]) < 4:
            break
        diff, weight = F.avg_pool2d(diff, 2), F.avg_pool2d(weight, 2)
    return total


@dataclass
class RenderLossConfig:
    """Loss weights; ``vgg_path`` switches from the weight-free substitute to the perceptual loss."""

    l1: float = 1.0
    perceptual: float = 0.1
    ssim: float = 0.2
    gradient: float = 0.5
    focus: float = 9.0
    vgg_path: str | None = None


class RenderLoss(nn.Module):
    """``loss(pred, target, source) → (scalar, {part: float})`` for frames ``(B, 3, H, W)`` in [0, 1]."""

    def __init__(self, config: RenderLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or RenderLossConfig()
        self.vgg = load_vgg16(self.config.vgg_path) if self.config.vgg_path else None

    def forward(self, pred: torch.Tensor, target: torch.Tensor, source: torch.Tensor):
        cfg = self.config
        changed = ((target - source).abs().amax(dim=1, keepdim=True) > 1.5 / 255).to(pred.dtype)
        weight = 1.0 + cfg.focus * changed
        parts = {"l1": ((pred - target).abs() * weight).mean()}
        if self.vgg is not None:
            self.vgg.to(pred.device)
            taps = zip(self.vgg(pred), self.vgg(target))
            parts["perceptual"] = sum((a - b).abs().mean() for a, b in taps)
        else:
            parts["ssim"] = ((1.0 - ssim_map(pred, target)) * weight).mean()
            parts["gradient"] = gradient_loss(pred, target, weight)
        total = sum(getattr(cfg, name) * value for name, value in parts.items())
        return total, {name: float(value.detach()) for name, value in parts.items()}
