"""LPIPS (Zhang et al. 2018), the VGG variant, from local weights: the perceptual distance of §7-style
frame comparisons ("LPIPS if weights are given").

    d(x, y) = Σ_l mean_{h,w} Σ_c w_{l,c} · (f̂_l(x) − f̂_l(y))²_{c,h,w},   f̂ = f / (‖f‖₂ over channels + 1e-10)

with f_l the VGG-16 activations after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 of the input
mapped to [−1, 1] and shifted/scaled by LPIPS's fixed ``(x − shift) / scale``, and w_l the learned
non-negative "lin" weights. Two local files are needed (nothing is downloaded):

- the VGG-16 backbone: torchvision's ``vgg16`` state dict (``features.N.*``), ``.pth`` or ``.safetensors``;
- the lin weights: the LPIPS release's ``weights/v0.1/vgg.pth`` (keys ``lin{l}.model.1.weight``,
  shapes ``(1, C_l, 1, 1)``), ``.pth`` or ``.safetensors``.

Or a folder written by ``LPIPS.save_pretrained`` (safetensors), which holds both.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from gid.pipeline.frame_renderer_losses import VGG16Features, load_vgg16

LPIPS_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in VGG-16 ``features``
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class LPIPS(ModelMixin, ConfigMixin):
    """LPIPS-VGG distance between image batches ``(B, 3, H, W)`` in [0, 1] → ``(B,)``."""

    @register_to_config
    def __init__(self) -> None:
        super().__init__()
        self.vgg = VGG16Features(num_layers=LPIPS_TAPS[-1] + 1)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in LPIPS_CHANNELS)
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised activations at :data:`LPIPS_TAPS` of ``x (B, 3, H, W)`` in [0, 1]."""
        shift = torch.tensor(LPIPS_SHIFT, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        scale = torch.tensor(LPIPS_SCALE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        h, taps = ((x * 2 - 1) - shift) / scale, []
        for i, layer in enumerate(self.vgg.features):
            h = layer(h)
            if i in LPIPS_TAPS:
                taps.append(h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS compares two (B, 3, H, W) batches, got {tuple(x.shape)} and {tuple(y.shape)}")
        total = x.new_zeros(x.shape[0])
        for lin, fx, fy in zip(self.lins, self.features(x), self.features(y)):
            total = total + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def load_lpips(path: str | Path, lin_path: str | Path | None = None) -> LPIPS:
    """LPIPS from a ``save_pretrained`` folder, or from a VGG-16 checkpoint plus the release's lin weights."""
    path = Path(path)
    if path.is_dir():
        return LPIPS.from_pretrained(path)
    if lin_path is None:
        raise ValueError(f"{path}: LPIPS needs the lin weights too (the release's weights/v0.1/vgg.pth), "
                         "or a folder written by LPIPS.save_pretrained")
    lin_path = Path(lin_path)
    if not lin_path.is_file():
        raise FileNotFoundError(f"{lin_path}: no LPIPS lin weights here")
    model = LPIPS()
    model.vgg = load_vgg16(path, num_layers=LPIPS_TAPS[-1] + 1)
    state = _state_dict(lin_path)
    for i, lin in enumerate(model.lins):
        key = f"lin{i}.model.1.weight"
        if key not in state or state[key].shape != lin.weight.shape:
            raise ValueError(f"{lin_path}: not LPIPS-VGG lin weights (needs {key} of shape {tuple(lin.weight.shape)})")
        lin.weight.data.copy_(state[key])
    return model.requires_grad_(False)
